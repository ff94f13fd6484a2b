/* policy/config_delivery.c — the outbound directives of clearmta.conf(5): static routes, the
 * smart host (relayhost, its credentials file and rate), the DNS resolver, and the check that
 * the retry settings make a schedule. */
#include "policy/config_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- routes ---- */

static int route_cmp(const void *a, const void *b)
{
    return strcmp(((const struct policy_route *)a)->domain,
                  ((const struct policy_route *)b)->domain);
}

const char *policy_tls_name(enum policy_tls tls)
{
    switch (tls) {
    case POLICY_TLS_NONE: return "none";
    case POLICY_TLS_OPPORTUNISTIC: return "opportunistic";
    case POLICY_TLS_REQUIRED: return "required";
    case POLICY_TLS_REQUIRED_VERIFY: return "required-verify";
    }
    return "?";
}

static bool parse_tls(const char *word, enum policy_tls *out)
{
    static const enum policy_tls all[] = {POLICY_TLS_NONE, POLICY_TLS_OPPORTUNISTIC,
                                          POLICY_TLS_REQUIRED, POLICY_TLS_REQUIRED_VERIFY};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(word, policy_tls_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    }
    return false;
}

/* "[HOST]:PORT", "[HOST]", "HOST:PORT" or "HOST" (module comment in config.h); HOST in
 * brackets is a host name or numeric IP, without them a host name whose MX is looked up. */
static bool parse_nexthop(const char *text, struct policy_nexthop *h)
{
    char s[LIMIT_DOMAIN + 16]; /* "[" host "]:" port; longer is not a next hop */
    size_t len = strlen(text);
    if (len >= sizeof s)
        return false;
    memcpy(s, text, len + 1);
    char *host = s, *port = NULL;
    h->mx_lookup = s[0] != '[';
    if (!h->mx_lookup) {
        char *close = strchr(s, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            return false;
        *close = '\0';
        host = s + 1;
        port = close[1] == ':' ? close + 2 : NULL;
    } else if ((port = strchr(s, ':')) != NULL) {
        *port++ = '\0'; /* a second ':' (bare IPv6) fails the port check below */
    }
    uint64_t p = 25;
    if (port != NULL && (!policy_conf_number(port, false, &p) || p == 0 || p > 65535))
        return false;
    h->port = (unsigned short)p;
    if (!h->mx_lookup && policy_conf_canonical_ip(host, h->host, sizeof h->host))
        return true;
    if (!policy_conf_hostname_valid(host) ||
        policy_conf_canonical_ip(host, h->host, sizeof h->host))
        return false; /* a numeric address needs brackets: it has no MX to look up */
    memcpy(h->host, host, strlen(host) + 1);
    policy_conf_lower(h->host);
    return true;
}

/* "tls=WORD"; false when opt is not a tls option (nothing reported), true when it was one
 * (reported if its value is bad). */
static bool tls_option(struct loader *ld, const char *keyword, const char *opt,
                       struct policy_nexthop *h, bool *ok)
{
    if (strncmp(opt, "tls=", 4) != 0)
        return false;
    if (!parse_tls(opt + 4, &h->tls)) {
        policy_conf_problem(ld,
                "%s: tls takes none, opportunistic, required or required-verify, not '%s'",
                keyword, policy_conf_show(opt + 4).s);
        *ok = false;
    }
    return true;
}

static bool read_nexthop(struct loader *ld, const char *keyword, const char *text,
                         struct policy_nexthop *h)
{
    h->tls = POLICY_TLS_OPPORTUNISTIC;
    if (parse_nexthop(text, h))
        return true;
    policy_conf_problem(ld,
            "%s: '%s' is not a next hop ([HOST]:PORT, or HOST:PORT to look up HOST's MX; "
            "numeric addresses in brackets; port 1-65535)", keyword, policy_conf_show(text).s);
    return false;
}

void policy_delivery_route(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    (void)d;
    char *domain = policy_conf_token(cur), *target = policy_conf_token(cur);
    struct policy_route r = {.line = ld->line};
    bool ok = true;
    if (domain == NULL || target == NULL) {
        policy_conf_problem(ld, "route takes a domain, smtp:[HOST]:PORT and optionally tls=MODE");
        return;
    }
    if (!policy_conf_hostname_valid(domain)) {
        policy_conf_problem(ld, "route: '%s' is not a domain name", policy_conf_show(domain).s);
        return;
    }
    memcpy(r.domain, domain, strlen(domain) + 1);
    policy_conf_lower(r.domain);
    if (strncmp(target, "smtp:", 5) != 0) {
        policy_conf_problem(ld, "route: '%s' does not start with smtp: (the only transport)",
                policy_conf_show(target).s);
        return;
    }
    if (!read_nexthop(ld, "route", target + 5, &r.hop))
        return;
    for (char *opt = policy_conf_token(cur); opt != NULL && ok; opt = policy_conf_token(cur))
        if (!tls_option(ld, "route", opt, &r.hop, &ok)) {
            policy_conf_problem(ld, "route: unknown option '%s' (tls=MODE)",
                    policy_conf_show(opt).s);
            ok = false;
        }
    if (!ok)
        return;
    for (size_t i = 0; i < ld->c->n_routes; i++) {
        if (strcmp(ld->c->routes[i].domain, r.domain) == 0) {
            policy_conf_problem(ld, "route: %s is already routed on line %u", r.domain,
                    ld->c->routes[i].line);
            return;
        }
    }
    if (ld->c->n_routes == POLICY_ROUTES_MAX) {
        policy_conf_problem(ld, "route: more than %u routes (POLICY_ROUTES_MAX)",
                POLICY_ROUTES_MAX);
        return;
    }
    struct policy_route *nr = realloc(ld->c->routes, (ld->c->n_routes + 1) * sizeof *nr);
    if (nr == NULL) {
        policy_conf_oom(ld);
        return;
    }
    ld->c->routes = nr;
    nr[ld->c->n_routes++] = r;
}

const struct policy_route *policy_route_find(const struct policy_config *c, const char *domain)
{
    struct policy_route probe;
    size_t len = strlen(domain);
    if (len >= sizeof probe.domain || c->n_routes == 0)
        return NULL;
    memcpy(probe.domain, domain, len + 1);
    policy_conf_lower(probe.domain);
    return bsearch(&probe, c->routes, c->n_routes, sizeof probe, route_cmp);
}

/* ---- smart host ---- */

/* "rate=N/PERIOD": policy_conf_rate's periods, as plans write them. */
static bool parse_rate(const char *v, struct policy_relayhost *rh)
{
    uint64_t n;
    unsigned window;
    if (!policy_conf_rate(v, false, POLICY_RATE_MAX, &n, &window))
        return false;
    rh->rate = (unsigned)n;
    rh->rate_period = window;
    return true;
}

/* The one "user:password" line of a smart-host credentials file (blank lines and '#' comments
 * aside). Whitespace is part of the password, so lines are not tokenised. */
static bool parse_credentials(const char *data, size_t len, struct policy_relayhost *rh)
{
    size_t found = 0;
    for (const char *line = data, *end; line < data + len; line = end + 1) {
        end = memchr(line, '\n', (size_t)(data + len - line));
        if (end == NULL)
            end = data + len;
        size_t n = (size_t)(end - line);
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (n == 0 || line[0] == '#')
            continue;
        const char *colon = memchr(line, ':', n);
        size_t ulen = colon != NULL ? (size_t)(colon - line) : 0, plen = n - ulen - 1;
        if (colon == NULL || ulen == 0 || ulen >= POLICY_AUTH_FIELD_CAP || plen == 0 ||
            plen >= POLICY_AUTH_FIELD_CAP || memchr(line, '\0', n) != NULL || ++found > 1)
            return false;
        memcpy(rh->auth_user, line, ulen);
        rh->auth_user[ulen] = '\0';
        memcpy(rh->auth_password, colon + 1, plen);
        rh->auth_password[plen] = '\0';
    }
    return found == 1;
}

/* auth=FILE: resolved against the config directory; group or others may not write it and
 * others may not read it (0600 or 0640), as it holds a password in clear. */
static bool load_credentials(struct loader *ld, const char *path, struct policy_relayhost *rh)
{
    char err[POLICY_PATH_CAP + 160];
    size_t len;
    if (!policy_conf_resolve_path(ld->config_name, path, rh->auth_file, sizeof rh->auth_file)) {
        policy_conf_problem(ld, "relayhost: auth path is longer than %u bytes",
                POLICY_PATH_CAP - 1);
        return false;
    }
    if (ld->client) /* a client never relays: the password stays where it is */
        return true;
    char *data = policy_conf_read_file(rh->auth_file, POLICY_MODE_SECRET, &len, err, sizeof err);
    if (data == NULL) {
        policy_conf_problem(ld, "relayhost: auth file '%s': %s", policy_conf_show(rh->auth_file).s,
                err);
        return false;
    }
    bool ok = parse_credentials(data, len, rh);
    explicit_bzero(data, len);
    free(data);
    if (!ok)
        policy_conf_problem(ld,
                "relayhost: auth file '%s' must hold one line user:password (each 1-%u "
                "bytes)", policy_conf_show(rh->auth_file).s, POLICY_AUTH_FIELD_CAP - 1);
    return ok;
}

static bool relayhost_option(struct loader *ld, const char *opt, struct policy_relayhost *rh)
{
    bool ok = true;
    if (tls_option(ld, "relayhost", opt, &rh->hop, &ok))
        return ok;
    if (strncmp(opt, "auth=", 5) == 0 && opt[5] != '\0') {
        rh->auth = load_credentials(ld, opt + 5, rh);
        return rh->auth;
    }
    if (strncmp(opt, "rate=", 5) == 0) {
        if (parse_rate(opt + 5, rh))
            return true;
        policy_conf_problem(ld,
                "relayhost: rate takes N/second, N/minute, N/hour or N/day with N 1-%u, not "
                "'%s'", POLICY_RATE_MAX, policy_conf_show(opt + 5).s);
        return false;
    }
    policy_conf_problem(ld, "relayhost: unknown option '%s' (tls=MODE, auth=FILE, rate=N/PERIOD)",
            policy_conf_show(opt).s);
    return false;
}

void policy_delivery_relayhost(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    (void)d;
    char *target = policy_conf_token(cur);
    struct policy_relayhost rh = {0};
    bool ok = true;
    if (target == NULL) {
        policy_conf_problem(ld,
                "relayhost takes [HOST]:PORT and options tls=MODE, auth=FILE, rate=N/PERIOD");
        return;
    }
    if (!read_nexthop(ld, "relayhost", target, &rh.hop))
        return;
    for (char *opt = policy_conf_token(cur); opt != NULL && ok; opt = policy_conf_token(cur))
        ok = relayhost_option(ld, opt, &rh);
    if (ok && rh.auth && rh.hop.tls == POLICY_TLS_NONE) {
        policy_conf_problem(ld, "relayhost: auth= with tls=none would send the password in clear");
        ok = false;
    }
    if (ok) {
        rh.set = true;
        ld->c->relayhost = rh;
    }
    explicit_bzero(&rh, sizeof rh);
}

/* ---- resolver ---- */

/* The DNS server, stored as c-ares takes it. */
void policy_delivery_resolver(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    char *v = policy_conf_one_value(ld, d, cur);
    if (v != NULL && !policy_conf_ip_port(v, 53, ld->c->resolver, sizeof ld->c->resolver))
        policy_conf_problem(ld, "resolver: '%s' is not IP[:PORT] (numeric IPv4, or IPv6 in "
                            "brackets with a port; port 1-65535)", policy_conf_show(v).s);
}

/* ---- after the whole file ---- */

/* Sorted once after reading, so look-ups can bisect. */
static void finish_routes(struct loader *ld)
{
    if (ld->c->n_routes > 1)
        qsort(ld->c->routes, ld->c->n_routes, sizeof ld->c->routes[0], route_cmp);
}

/* The line of the setting first when it was set, else of other: where a problem between two
 * settings is reported. */
static unsigned either_line(const struct loader *ld, const char *first, const char *other)
{
    unsigned line = policy_conf_directive_line(ld, first);
    return line != 0 ? line : policy_conf_directive_line(ld, other);
}

/* The retry settings must make a schedule: the cap not below the first wait, a warning before
 * the give-up. */
static void finish_retry(struct loader *ld)
{
    const struct policy_config *c = ld->c;
    if (c->retry_max < c->retry_first) {
        ld->line = ld->anchor = either_line(ld, "retry_max", "retry_first");
        policy_conf_problem(ld, "retry_max (%u) is below retry_first (%u)", c->retry_max,
                c->retry_first);
    }
    if (c->delay_warning != 0 && c->delay_warning >= c->queue_lifetime) {
        ld->line = ld->anchor = either_line(ld, "delay_warning", "queue_lifetime");
        policy_conf_problem(ld,
                "delay_warning (%u) is not below queue_lifetime (%u): no warning would be "
                "sent (0 turns warnings off)", c->delay_warning, c->queue_lifetime);
    }
}

void policy_delivery_finish(struct loader *ld)
{
    finish_routes(ld);
    finish_retry(ld);
}
