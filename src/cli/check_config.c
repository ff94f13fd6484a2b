/* cli/check_config.c — `clearmta check-config [-c FILE]`: lists every problem in a config file
 * as FILE:LINE: message, or summarises the effective configuration. */
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "policy/config.h"
#include "policy/users.h"
#include "server/server.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: clearmta check-config [-c FILE]\n"
                 "Checks FILE (or, without -c, the embedded defaults) and prints the effective\n"
                 "configuration; exits 1 when the file has problems.\n");
}

static void print_problems(const struct policy_problems *p, size_t total)
{
    for (size_t i = 0; i < p->count; i++) {
        const struct policy_problem *pr = &p->items[i];
        if (pr->line > 0)
            fprintf(stderr, "%s:%u: %s\n", pr->file, pr->line, pr->message);
        else
            fprintf(stderr, "%s: %s\n", pr->file, pr->message);
    }
    if (p->dropped > 0)
        fprintf(stderr, "... and %zu more problems\n", p->dropped);
    fprintf(stderr, "%zu problem%s found\n", total, total == 1 ? "" : "s");
}

/* What the listener offers, as the session will: STARTTLS, and AUTH after TLS or before. */
static const char *listener_offers(const struct policy_listener *l)
{
    static char buf[64];
    const char *tls = l->kind == POLICY_LISTEN_SUBMISSIONS ? "tls=implicit"
                      : l->starttls                        ? "starttls=yes"
                                                           : "starttls=no";
    const char *auth = !l->auth ? "auth=no" : l->auth_plaintext ? "auth=yes (also without TLS)"
                      : l->kind == POLICY_LISTEN_SUBMISSIONS ? "auth=yes"
                                                             : "auth=after-tls";
    snprintf(buf, sizeof buf, "%s %s", tls, auth);
    return buf;
}

/* "listen KIND ADDR:PORT WHAT" with ADDR as the directive writes it, without the line end. */
static void print_address(const char *kind, const char *host, unsigned port, const char *what)
{
    if (host[0] == '\0')
        printf("%-24s %s *:%u %s", "listen", kind, port, what);
    else if (strchr(host, ':') != NULL)
        printf("%-24s %s [%s]:%u %s", "listen", kind, host, port, what);
    else
        printf("%-24s %s %s:%u %s", "listen", kind, host, port, what);
}

/* Each listener with what it offers and, for mx, the checks on receipt that apply to it. */
static void print_listener(const struct policy_config *c, const struct policy_listener *l)
{
    print_address(policy_listen_kind_name(l->kind), l->host, l->port, listener_offers(l));
    if (l->kind == POLICY_LISTEN_MX)
        printf(" spf_check=%s dmarc_check=%s",
               policy_spf_check_name(policy_listener_spf_check(c, l)),
               policy_dmarc_check_name(policy_listener_dmarc_check(c, l)));
    printf("\n");
}

/* The console: who may use it without the token (local users on loopback) and with it. */
static void print_http(const struct policy_config *c)
{
    if (c->http.port == 0)
        return;
    print_address("http", c->http.host, c->http.port,
                  c->http.password_file[0] ? "(console; others with the token)"
                                           : "(console; trusted local users only)");
    printf("\n");
    printf("%-24s root, the server's user", "http local users");
    for (size_t i = 0; i < c->http.n_local_uids; i++) {
        const struct passwd *pw = getpwuid(c->http.local_uids[i]);
        printf(", %s (uid %lu)", pw ? pw->pw_name : "?", (unsigned long)c->http.local_uids[i]);
    }
    printf("\n");
    if (c->http.name[0])
        printf("%-24s %s\n", "http_name", c->http.name);
}

/* The AUTH settings; never a password hash. */
static void print_auth(const struct policy_config *c)
{
    if (c->tls_cert[0] != '\0') {
        printf("%-24s %s\n", "tls_cert", c->tls_cert);
        printf("%-24s %s\n", "tls_key", c->tls_key);
    } else {
        printf("%-24s %s\n", "tls_cert", "(self-signed, generated in data_dir)");
    }
    if (c->users_file[0] != '\0')
        printf("%-24s %s (%zu user%s)\n", "users_file", c->users_file,
               policy_users_count(c->users), policy_users_count(c->users) == 1 ? "" : "s");
    else
        printf("%-24s %s\n", "users_file", "(none: AUTH is not offered)");
    printf("%-24s %s\n", "sender_ownership", c->sender_ownership ? "yes" : "no");
    printf("%-24s %u\n", "auth_fail_limit", c->auth_fail_limit);
    printf("%-24s %u\n", "auth_fail_window", c->auth_fail_window);
}

static void print_domain(const struct policy_domain *d)
{
    switch (d->kind) {
    case POLICY_DOMAIN_CATCH_ALL:
        printf("%-24s %s catch-all -> %s\n", "domain", d->name, d->catch_all);
        break;
    case POLICY_DOMAIN_USERS:
        printf("%-24s %s", "domain", d->name);
        if (d->lmtp.set && d->lmtp.socket[0] != '\0')
            printf(" lmtp unix:%s,", d->lmtp.socket);
        else if (d->lmtp.set)
            printf(" lmtp [%s]:%u,", d->lmtp.host, (unsigned)d->lmtp.port);
        if (d->lmtp.set && d->n_users == 0)
            printf(" any user\n");
        else
            printf(" %zu user%s\n", d->n_users, d->n_users == 1 ? "" : "s");
        break;
    }
}

/* "[host]:port" or "host:port (MX)", with the TLS mode. */
static void print_nexthop(const char *label, const char *domain, const struct policy_nexthop *h)
{
    printf("%-24s %s%s%s%s%s:%u%s tls=%s", label, domain, domain[0] != '\0' ? " smtp:" : "",
           h->mx_lookup ? "" : "[", h->host, h->mx_lookup ? "" : "]", h->port,
           h->mx_lookup ? " (MX look-up)" : "", policy_tls_name(h->tls));
}

/* Routing and retries; the smart-host password is never shown. */
/* The agent's cap on outbound connections: as set, or what `serve` derives from the hard
 * descriptor limit (the soft one is raised to it at start). */
static void print_outbound_cap(const struct policy_config *c)
{
    if (c->max_outbound_connections > 0) {
        printf("%-24s %u\n", "max_outbound_connections", c->max_outbound_connections);
        return;
    }
    struct rlimit rl;
    unsigned long long nofile = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        nofile = rl.rlim_max == RLIM_INFINITY ? 1ull << 20 : (unsigned long long)rl.rlim_max;
    printf("%-24s %u (from the descriptor limit %llu)\n", "max_outbound_connections",
           server_capacity_outbound(nofile, 0), nofile);
}

static void print_delivery(const struct policy_config *c)
{
    for (size_t i = 0; i < c->n_routes; i++) {
        print_nexthop("route", c->routes[i].domain, &c->routes[i].hop);
        printf("\n");
    }
    const struct policy_relayhost *rh = &c->relayhost;
    if (rh->set) {
        print_nexthop("relayhost", "", &rh->hop);
        if (rh->auth)
            printf(" auth=%s (user %s)", rh->auth_file, rh->auth_user);
        if (rh->rate > 0)
            printf(" rate=%u per %u s", rh->rate, rh->rate_period);
        printf("\n");
    } else {
        printf("%-24s %s\n", "relayhost", "(none: remote mail goes to each domain's MX)");
    }
    printf("%-24s %s\n", "resolver", c->resolver[0] != '\0' ? c->resolver : "(/etc/resolv.conf)");
    printf("%-24s %s\n", "spf_check", policy_spf_check_name(c->spf_check));
    printf("%-24s %s\n", "dmarc_check", policy_dmarc_check_name(c->dmarc_check));
    printf("%-24s %u\n", "retry_first", c->retry_first);
    printf("%-24s %u\n", "retry_max", c->retry_max);
    printf("%-24s %u\n", "queue_lifetime", c->queue_lifetime);
    printf("%-24s %u%s\n", "delay_warning", c->delay_warning,
           c->delay_warning == 0 ? " (no warnings)" : "");
    print_outbound_cap(c);
}

/* A window as written in the config: second, minute, hour, day, or Ns. */
static void print_window(unsigned seconds)
{
    static const struct {
        unsigned seconds;
        const char *name;
    } named[] = {{1, "second"}, {60, "minute"}, {3600, "hour"}, {86400, "day"}};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        if (named[i].seconds == seconds) {
            printf("%s", named[i].name);
            return;
        }
    }
    printf("%us", seconds);
}

/* One plan line: its limits as written, and how many users and networks are on it. */
static void print_plan(const struct policy_config *c, size_t index)
{
    const struct policy_plan *p = &c->plans[index];
    size_t users = 0, networks = 0;
    for (size_t i = 0; i < c->n_plan_users; i++)
        users += c->plan_users[i].plan == index;
    for (size_t i = 0; i < c->n_plan_networks; i++)
        networks += c->plan_networks[i].plan == index;
    printf("%-24s %s", "plan", p->name);
    for (size_t i = 0; i < p->n_limits; i++) {
        printf(" %s=%llu/", policy_plan_metric_name(p->limits[i].metric),
               (unsigned long long)p->limits[i].limit);
        print_window(p->limits[i].window);
    }
    if (p->max_recipients > 0)
        printf(" max-recipients=%u", p->max_recipients);
    if (p->max_message_size > 0)
        printf(" max-message-size=%llu", (unsigned long long)p->max_message_size);
    printf(" over=%s (%zu user%s, %zu network%s)\n", p->permanent ? "permanent" : "temporary",
           users, users == 1 ? "" : "s", networks, networks == 1 ? "" : "s");
}

static void print_unlimited(const char *label, unsigned n)
{
    printf("%-24s %u%s\n", label, n, n == 0 ? " (unlimited)" : "");
}

/* Plans, who is on them, the counters backend, greylisting and the session rates. */
static void print_limits(const struct policy_config *c)
{
    for (size_t i = 0; i < c->n_plans; i++)
        print_plan(c, i);
    printf("%-24s %s\n", "default_plan",
           c->default_plan[0] != '\0' ? c->default_plan
                                      : "(none: users without plan_user have no plan)");
    const struct policy_counters_config *cc = &c->counters;
    if (cc->kind == POLICY_COUNTERS_REDIS)
        printf("%-24s redis %s fail=%s timeout=%u prefix=%s\n", "counters", cc->server,
               cc->fail_closed ? "closed" : "open", cc->timeout_ms, cc->prefix);
    else
        printf("%-24s %s\n", "counters", "memory");
    const struct policy_greylist_config *g = &c->greylist;
    if (g->on)
        printf("%-24s on delay=%u expire=%u networks=%u/%u\n", "greylisting", g->delay,
               g->expire, g->v4_prefix, g->v6_prefix);
    else
        printf("%-24s %s\n", "greylisting", "off");
    print_unlimited("max_messages_per_session", c->max_messages_per_session);
    print_unlimited("max_sessions_per_minute_per_ip", c->max_sessions_per_minute_per_ip);
    print_unlimited("max_commands_per_second", c->max_commands_per_second);
}

static void print_summary(const char *source, const struct policy_config *c)
{
    printf("%s: ok\n", source);
    printf("%-24s %s\n", "hostname", c->hostname);
    for (size_t i = 0; i < c->n_listeners; i++)
        print_listener(c, &c->listeners[i]);
    print_http(c);
    for (size_t i = 0; i < c->n_domains; i++)
        print_domain(&c->domains[i]);
    printf("%-24s %s\n", "data_dir", c->data_dir);
    printf("%-24s %s\n", "queue_dir", c->queue_dir);
    printf("%-24s %s\n", "maildir_root", c->maildir_root);
    printf("%-24s %llu\n", "max_message_size", (unsigned long long)c->max_message_size);
    printf("%-24s %u\n", "max_recipients", c->max_recipients);
    printf("%-24s %u\n", "max_hops", c->max_hops);
    printf("%-24s %u\n", "max_connections", c->max_connections);
    printf("%-24s %u\n", "max_connections_per_ip", c->max_connections_per_ip);
    printf("%-24s %u\n", "max_errors", c->max_errors);
    printf("%-24s %u\n", "timeout_command", c->timeout_command);
    printf("%-24s %u\n", "timeout_data", c->timeout_data);
    printf("%-24s %llu\n", "min_free_disk", (unsigned long long)c->min_free_disk);
    printf("%-24s %s\n", "bare_lf", c->bare_lf_normalize ? "normalize" : "reject");
    printf("%-24s %s\n", "soft_bounce", c->soft_bounce ? "yes" : "no");
    printf("%-24s %s\n", "vrfy", "no");
    printf("%-24s %s\n", "log", c->log_syslog ? "syslog" : "stderr");
    printf("%-24s %u\n", "shutdown_grace", c->shutdown_grace);
    print_auth(c);
    print_delivery(c);
    print_limits(c);
}

int cli_check_config(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "-c") != 0 || i + 1 == argc || path != NULL) {
            usage(stderr);
            return 2;
        }
        path = argv[++i];
    }

    static struct policy_problems problems; /* ~33 KiB: kept off the stack */
    struct policy_config config;
    size_t n;
    if (path != NULL) {
        n = policy_config_load(path, &config, &problems);
    } else {
        n = policy_config_defaults(&config) ? 0 : 1;
        if (n > 0)
            fprintf(stderr, "clearmta: out of memory\n");
    }
    if (n > 0 && path != NULL)
        print_problems(&problems, n);
    else if (n == 0)
        print_summary(path != NULL ? path : "embedded defaults", &config);
    policy_config_free(&config);
    return n > 0 ? 1 : 0;
}
