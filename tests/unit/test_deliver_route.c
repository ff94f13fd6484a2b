/* tests/unit/test_deliver_route.c — routing (local, static, smart host, literal, MX), MX
 * ordering and shuffling, DNS outcome statuses, and the c-ares resolver against a real dnsmasq
 * on loopback (skipped when dnsmasq cannot be started). */
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "deliver/resolver.h"
#include "deliver/route.h"
#include "policy/config.h"

/* ---- route_find ---- */

static void load(struct policy_config *c, const char *text)
{
    struct policy_problems p;
    size_t n = policy_config_load_buffer("route.conf", text, strlen(text), c, &p);
    if (n != 0)
        fail_msg("config problem: %s", p.items[0].message);
}

static const char routes_conf[] =
    "domain example.test users alice bob\n"
    "route example.org smtp:[127.0.0.1]:2600\n"
    "route Lists.Example.NET smtp:mx.provider.test tls=required\n"
    "route v6.test smtp:[2001:DB8::1]:587 tls=none\n";

/* An LMTP domain is local, yet routed by the agent: named apart from any SMTP destination. */
static void test_route_lmtp(void **state)
{
    (void)state;
    struct policy_config c;
    struct deliver_route r;
    load(&c, "domain sock.test lmtp unix:/run/dovecot/lmtp\n"
             "domain tcp.test lmtp [127.0.0.1]:24\n"
             "domain name.test lmtp [LMTP.example.test]:2424\n"
             "route other.test smtp:[127.0.0.1]:24\n");
    assert_true(deliver_route_find(&c, "Sock.Test", &r));
    assert_int_equal(r.kind, DELIVER_ROUTE_LMTP);
    assert_string_equal(deliver_route_kind_name(r.kind), "lmtp");
    assert_string_equal(r.destination, "lmtp:unix:/run/dovecot/lmtp");
    assert_string_equal(r.lookup, "");
    assert_string_equal(r.lmtp->socket, "/run/dovecot/lmtp");
    assert_null(r.hop);
    assert_true(deliver_route_find(&c, "tcp.test", &r));
    assert_int_equal(r.kind, DELIVER_ROUTE_LMTP);
    assert_string_equal(r.destination, "lmtp:[127.0.0.1]:24");
    assert_string_equal(r.lookup, "127.0.0.1");
    assert_int_equal(r.lmtp->port, 24);
    assert_true(deliver_route_find(&c, "name.test", &r));
    assert_string_equal(r.destination, "lmtp:[lmtp.example.test]:2424");
    assert_string_equal(r.lookup, "lmtp.example.test");
    assert_true(deliver_route_find(&c, "other.test", &r));
    assert_int_equal(r.kind, DELIVER_ROUTE_STATIC);
    assert_string_equal(r.destination, "[127.0.0.1]:24");
    policy_config_free(&c);
}

static void test_route_local_static_mx(void **state)
{
    (void)state;
    struct policy_config c;
    struct deliver_route r;
    load(&c, routes_conf);
    assert_true(deliver_route_find(&c, "EXAMPLE.test", &r));
    assert_int_equal(r.kind, DELIVER_ROUTE_LOCAL);
    assert_string_equal(r.destination, "");
    assert_true(deliver_route_find(&c, "example.org", &r));
    assert_int_equal(r.kind, DELIVER_ROUTE_STATIC);
    assert_string_equal(r.lookup, "127.0.0.1");
    assert_string_equal(r.destination, "[127.0.0.1]:2600");
    assert_int_equal(r.hop->port, 2600);
    assert_false(r.hop->mx_lookup);
    assert_int_equal(r.hop->tls, POLICY_TLS_OPPORTUNISTIC);
    assert_true(deliver_route_find(&c, "lists.example.net", &r));
    assert_int_equal(r.kind, DELIVER_ROUTE_STATIC);
    assert_true(r.hop->mx_lookup);
    assert_int_equal(r.hop->tls, POLICY_TLS_REQUIRED);
    assert_string_equal(r.destination, "mx.provider.test:25");
    assert_true(deliver_route_find(&c, "v6.test", &r));
    assert_string_equal(r.destination, "[2001:db8::1]:587");
    /* Only the exact domain: a subdomain looks up its own MX. */
    assert_true(deliver_route_find(&c, "sub.example.org", &r));
    assert_int_equal(r.kind, DELIVER_ROUTE_MX);
    assert_string_equal(r.lookup, "sub.example.org");
    assert_string_equal(r.destination, "sub.example.org");
    assert_true(deliver_route_find(&c, "Remote.TEST", &r));
    assert_string_equal(r.lookup, "remote.test");
    assert_string_equal(deliver_route_kind_name(r.kind), "mx");
    policy_config_free(&c);
}

static void test_route_relayhost_and_literal(void **state)
{
    (void)state;
    struct policy_config c;
    struct deliver_route r;
    load(&c, "domain example.test users alice\nroute example.org smtp:[127.0.0.1]:2600\n");
    assert_true(deliver_route_find(&c, "[192.0.2.7]", &r));
    assert_int_equal(r.kind, DELIVER_ROUTE_LITERAL);
    assert_string_equal(r.lookup, "192.0.2.7");
    assert_string_equal(r.destination, "[192.0.2.7]:25");
    assert_true(deliver_route_find(&c, "[IPv6:2001:db8:0::2]", &r));
    assert_int_equal(r.kind, DELIVER_ROUTE_LITERAL);
    assert_string_equal(r.lookup, "2001:db8::2");
    policy_config_free(&c);

    load(&c, "domain example.test users alice\nroute example.org smtp:[127.0.0.1]:2600\n"
             "relayhost [smtp.relay.test]:587 tls=required\n");
    assert_true(deliver_route_find(&c, "example.test", &r));
    assert_int_equal(r.kind, DELIVER_ROUTE_LOCAL);
    assert_true(deliver_route_find(&c, "example.org", &r)); /* a route beats the relay host */
    assert_int_equal(r.kind, DELIVER_ROUTE_STATIC);
    assert_true(deliver_route_find(&c, "gmail.test", &r));
    assert_int_equal(r.kind, DELIVER_ROUTE_RELAYHOST);
    assert_string_equal(r.lookup, "smtp.relay.test");
    assert_string_equal(r.destination, "[smtp.relay.test]:587");
    assert_true(deliver_route_find(&c, "[192.0.2.7]", &r));
    assert_int_equal(r.kind, DELIVER_ROUTE_RELAYHOST);
    policy_config_free(&c);
}

static void test_route_bad_domains(void **state)
{
    (void)state;
    struct policy_config c;
    struct deliver_route r = {.kind = DELIVER_ROUTE_MX};
    char longname[LIMIT_DOMAIN + 2];
    load(&c, "");
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_false(deliver_route_find(&c, "", &r));
    assert_false(deliver_route_find(&c, longname, &r));
    longname[LIMIT_DOMAIN] = '\0';
    assert_true(deliver_route_find(&c, longname, &r)); /* exactly the limit */
    assert_false(deliver_route_find(&c, "[300.1.1.1]", &r));
    assert_true(deliver_route_find(&c, "LOCALHOST", &r)); /* the default local domain */
    assert_int_equal(r.kind, DELIVER_ROUTE_LOCAL);
    policy_config_free(&c);
}

/* ---- MX order ---- */

static void fill(struct deliver_mx *m, const char *host, unsigned short pref)
{
    snprintf(m->host, sizeof m->host, "%s", host);
    m->preference = pref;
}

static void test_mx_order(void **state)
{
    (void)state;
    struct deliver_mx m[6];
    fill(&m[0], "c", 30);
    fill(&m[1], "a1", 10);
    fill(&m[2], "b", 20);
    fill(&m[3], "a2", 10);
    fill(&m[4], "a3", 10);
    fill(&m[5], "z", 0);
    deliver_route_order_mx(m, 6, 42);
    assert_string_equal(m[0].host, "z");
    for (size_t i = 1; i <= 3; i++) {
        assert_int_equal(m[i].preference, 10);
        assert_int_equal(m[i].host[0], 'a');
    }
    assert_string_equal(m[4].host, "b");
    assert_string_equal(m[5].host, "c");
    deliver_route_order_mx(m, 0, 1); /* nothing to do, nothing touched */
    deliver_route_order_mx(m, 1, 1);
    assert_string_equal(m[0].host, "z");
}

/* Equal preferences are shuffled: the same seed gives the same order, and over many seeds each
 * host comes first sometimes. */
static void test_mx_shuffle(void **state)
{
    (void)state;
    unsigned first[3] = {0};
    for (uint64_t seed = 0; seed < 300; seed++) {
        struct deliver_mx m[3], again[3];
        fill(&m[0], "h0", 5);
        fill(&m[1], "h1", 5);
        fill(&m[2], "h2", 5);
        memcpy(again, m, sizeof m);
        deliver_route_order_mx(m, 3, seed);
        deliver_route_order_mx(again, 3, seed);
        assert_memory_equal(m, again, sizeof m);
        first[m[0].host[1] - '0']++;
    }
    for (size_t i = 0; i < 3; i++)
        assert_in_range(first[i], 50, 150);
}

static void test_null_mx(void **state)
{
    (void)state;
    struct deliver_mx m[2];
    fill(&m[0], "", 0);
    assert_true(deliver_route_is_null_mx(m, 1));
    fill(&m[0], ".", 0);
    assert_true(deliver_route_is_null_mx(m, 1));
    fill(&m[1], "mx.test", 10);
    assert_false(deliver_route_is_null_mx(m, 2)); /* RFC 7505 §3: misconfigured, not null */
    fill(&m[0], "mx.test", 0);
    assert_false(deliver_route_is_null_mx(m, 1));
    assert_false(deliver_route_is_null_mx(m, 0));
}

static void expect_status(enum deliver_dns_outcome o, int cls, int subject, int detail)
{
    struct reply_status st = reply_outcome_status(deliver_dns_outcome_row(o));
    assert_int_equal(st.cls, cls);
    assert_int_equal(st.subject, subject);
    assert_int_equal(st.detail, detail);
    assert_non_null(reply_enhanced_find(subject, detail)); /* a registered code */
    assert_true(strlen(deliver_dns_outcome_text(o)) > 0);
}

static void test_outcome_status(void **state)
{
    (void)state;
    expect_status(DELIVER_DNS_NULL_MX, 5, 1, 10);
    expect_status(DELIVER_DNS_NXDOMAIN, 5, 1, 2);
    expect_status(DELIVER_DNS_NO_HOST, 5, 1, 2);
    expect_status(DELIVER_DNS_MX_UNRESOLVED, 5, 4, 4);
    expect_status(DELIVER_DNS_TEMPFAIL, 4, 4, 3);
    assert_int_equal(deliver_dns_outcome_row(DELIVER_DNS_OK), OUTCOME_ROUTE_TEMPFAIL);
}

/* ---- the resolver against dnsmasq ---- */

static const char dns_records[] =
    "mx-host=example.test,mx1.example.test,10\n"
    "mx-host=example.test,mx2.example.test,10\n"
    "mx-host=example.test,mx3.example.test,20\n"
    "host-record=mx1.example.test,127.0.0.1\n"
    "host-record=mx2.example.test,127.0.0.2,::1\n"
    "host-record=mx3.example.test,127.0.0.3\n"
    "host-record=implicit.test,127.0.0.4\n"
    "mx-host=nullmx.test,.,0\n"
    "mx-host=dangling.test,nowhere.dangling.test,5\n"
    "txt-record=noaddr.test,\"no mail here\"\n";

struct dns_fixture {
    pid_t pid;
    char server[32];  /* "127.0.0.1:PORT" of dnsmasq */
    char closed[32];  /* a loopback port where nothing answers */
    char dir[64];
};

/* A loopback port free for UDP and TCP at the moment (the kernel picks it). */
static unsigned short free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    unsigned short port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* True once something holds the UDP port (dnsmasq is listening). */
static bool port_taken(unsigned short port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    bool taken = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno == EADDRINUSE;
    if (fd >= 0)
        close(fd);
    return taken;
}

static void stop_dnsmasq(struct dns_fixture *f)
{
    char path[128];
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
    }
    snprintf(path, sizeof path, "%s/records.conf", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);
}

static pid_t spawn_dnsmasq(const char *conf, unsigned short port)
{
    char port_arg[32], conf_arg[160], user_arg[80];
    struct passwd *pw = getpwuid(getuid());
    snprintf(port_arg, sizeof port_arg, "--port=%u", port);
    snprintf(conf_arg, sizeof conf_arg, "--conf-file=%s", conf);
    snprintf(user_arg, sizeof user_arg, "--user=%s", pw != NULL ? pw->pw_name : "root");
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execlp("dnsmasq", "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
               "--no-resolv", "--no-hosts", "--no-poll", "--listen-address=127.0.0.1",
               "--bind-interfaces", "--local=/test/", "--pid-file=", port_arg, conf_arg,
               user_arg, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int setup_dns(void **state)
{
    struct dns_fixture *f = calloc(1, sizeof *f);
    char conf[128];
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/clearmta-dns-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(conf, sizeof conf, "%s/records.conf", f->dir);
    FILE *fp = fopen(conf, "w");
    if (fp == NULL || fputs(dns_records, fp) < 0 || fclose(fp) != 0) {
        stop_dnsmasq(f);
        return -1;
    }
    unsigned short port = free_port(), closed = free_port();
    snprintf(f->server, sizeof f->server, "127.0.0.1:%u", port);
    snprintf(f->closed, sizeof f->closed, "127.0.0.1:%u", closed);
    f->pid = port != 0 ? spawn_dnsmasq(conf, port) : -1;
    /* Up to 5 s for it to listen; an exited child means no dnsmasq here. */
    for (int i = 0; f->pid > 0 && i < 100 && !port_taken(port); i++) {
        if (waitpid(f->pid, NULL, WNOHANG) == f->pid)
            f->pid = -1;
        else
            usleep(50000);
    }
    if (f->pid > 0 && !port_taken(port)) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
        f->pid = -1;
    }
    *state = f;
    return 0;
}

static int teardown_dns(void **state)
{
    stop_dnsmasq(*state);
    return 0;
}

struct answer {
    int calls;
    struct deliver_mx_result res;
};

static void on_answer(void *ctx, const struct deliver_mx_result *res)
{
    struct answer *a = ctx;
    a->calls++;
    a->res = *res;
}

static void never_called(void *ctx, const struct deliver_mx_result *res)
{
    (void)ctx;
    (void)res;
    fail_msg("a cancelled look-up called back");
}

/* Runs the loop until *calls turns non-zero: c-ares may keep its socket watched after the
 * answer, so "nothing pending" never comes. Bounded: each round waits for some event, and a
 * running query always has its timeout timer. */
static void run_until(struct event_base *base, const int *calls)
{
    for (int i = 0; i < 10000 && *calls == 0; i++)
        event_base_loop(base, EVLOOP_ONCE);
}

/* The fixture's dnsmasq; skips the test (before anything is allocated) without one. */
static struct dns_fixture *need_dns(void **state)
{
    struct dns_fixture *f = *state;
    if (f->pid <= 0)
        skip(); /* dnsmasq not installed or could not start */
    return f;
}

static struct deliver_resolver *resolver_for(struct event_base *base, const char *server)
{
    char err[160];
    struct deliver_resolver *r = deliver_resolver_new(base, server, 1000, err, sizeof err);
    if (r == NULL)
        fail_msg("%s", err);
    return r;
}

static void lookup_mx(struct deliver_resolver *r, struct event_base *base, const char *domain,
                      uint64_t seed, struct answer *a)
{
    memset(a, 0, sizeof *a);
    assert_int_equal(deliver_resolver_lookup_mx(r, domain, seed, on_answer, a, NULL),
                     DELIVER_RESOLVER_OK);
    assert_int_equal(a->calls, 0); /* never from inside the call */
    run_until(base, &a->calls);
    assert_int_equal(a->calls, 1);
}

static void expect_outcome(const struct answer *a, enum deliver_dns_outcome o, int cls,
                           int detail)
{
    if (a->res.outcome != o)
        fail_msg("outcome '%s', expected '%s' (%s)", deliver_dns_outcome_text(a->res.outcome),
                 deliver_dns_outcome_text(o), a->res.detail);
    assert_int_equal(reply_outcome_status(a->res.row).cls, cls);
    assert_int_equal(reply_outcome_status(a->res.row).detail, detail);
    assert_int_equal(a->res.n_hosts, 0);
}

static void test_resolver_mx(void **state)
{
    struct dns_fixture *f = need_dns(state);
    struct event_base *base = event_base_new();
    struct deliver_resolver *r = resolver_for(base, f->server);
    struct answer a;
    bool mx1_first = false, mx2_first = false;
    for (uint64_t seed = 0; seed < 16; seed++) {
        lookup_mx(r, base, "example.test", seed, &a);
        assert_int_equal(a.res.outcome, DELIVER_DNS_OK);
        assert_false(a.res.implicit_mx);
        assert_int_equal(a.res.n_hosts, 3);
        assert_int_equal(a.res.hosts[0].preference, 10);
        assert_int_equal(a.res.hosts[1].preference, 10);
        assert_string_equal(a.res.hosts[2].name, "mx3.example.test");
        assert_int_equal(a.res.hosts[2].n_addrs, 1);
        mx1_first |= strcmp(a.res.hosts[0].name, "mx1.example.test") == 0;
        mx2_first |= strcmp(a.res.hosts[0].name, "mx2.example.test") == 0;
        const struct deliver_mx_host *mx2 =
            &a.res.hosts[strcmp(a.res.hosts[0].name, "mx2.example.test") == 0 ? 0 : 1];
        assert_int_equal(mx2->n_addrs, 2); /* A and AAAA */
    }
    assert_true(mx1_first && mx2_first);
    deliver_resolver_free(r);
    event_base_free(base);
}

static void test_resolver_implicit_and_failures(void **state)
{
    struct dns_fixture *f = need_dns(state);
    struct event_base *base = event_base_new();
    struct deliver_resolver *r = resolver_for(base, f->server);
    struct answer a;
    lookup_mx(r, base, "implicit.test", 1, &a);
    assert_int_equal(a.res.outcome, DELIVER_DNS_OK);
    assert_true(a.res.implicit_mx);
    assert_int_equal(a.res.n_hosts, 1);
    assert_string_equal(a.res.hosts[0].name, "implicit.test");
    assert_int_equal(a.res.hosts[0].addrs[0].family, AF_INET);
    assert_memory_equal(a.res.hosts[0].addrs[0].bytes, "\x7f\x00\x00\x04", 4);

    lookup_mx(r, base, "nullmx.test", 1, &a);
    expect_outcome(&a, DELIVER_DNS_NULL_MX, 5, 10);
    lookup_mx(r, base, "nx.test", 1, &a);
    expect_outcome(&a, DELIVER_DNS_NXDOMAIN, 5, 2);
    lookup_mx(r, base, "noaddr.test", 1, &a);
    expect_outcome(&a, DELIVER_DNS_NO_HOST, 5, 2);
    lookup_mx(r, base, "dangling.test", 1, &a);
    expect_outcome(&a, DELIVER_DNS_MX_UNRESOLVED, 5, 4);
    deliver_resolver_free(r);
    event_base_free(base);
}

static void test_resolver_host(void **state)
{
    struct dns_fixture *f = need_dns(state);
    struct event_base *base = event_base_new();
    struct deliver_resolver *r = resolver_for(base, f->server);
    struct answer a = {0};
    assert_int_equal(deliver_resolver_lookup_host(r, "mx2.example.test", on_answer, &a, NULL),
                     DELIVER_RESOLVER_OK);
    run_until(base, &a.calls);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.res.outcome, DELIVER_DNS_OK);
    assert_int_equal(a.res.n_hosts, 1);
    assert_int_equal(a.res.hosts[0].n_addrs, 2);
    memset(&a, 0, sizeof a);
    assert_int_equal(deliver_resolver_lookup_host(r, "nx.test", on_answer, &a, NULL),
                     DELIVER_RESOLVER_OK);
    run_until(base, &a.calls);
    expect_outcome(&a, DELIVER_DNS_NXDOMAIN, 5, 2);
    memset(&a, 0, sizeof a); /* a numeric host needs no DNS but is answered the same way */
    assert_int_equal(deliver_resolver_lookup_host(r, "127.0.0.9", on_answer, &a, NULL),
                     DELIVER_RESOLVER_OK);
    run_until(base, &a.calls);
    assert_int_equal(a.res.outcome, DELIVER_DNS_OK);
    assert_int_equal(a.res.hosts[0].n_addrs, 1);
    assert_memory_equal(a.res.hosts[0].addrs[0].bytes, "\x7f\x00\x00\x09", 4);
    assert_int_equal(deliver_resolver_lookup_host(r, "", on_answer, &a, NULL),
                     DELIVER_RESOLVER_ERR_NAME);
    assert_int_equal(deliver_resolver_lookup_mx(r, "bad name", 0, on_answer, &a, NULL),
                     DELIVER_RESOLVER_ERR_NAME);
    deliver_resolver_free(r);
    event_base_free(base);
}

/* Nothing listens on the server's port: a failure for now, 4.4.3, never a bounce. */
static void test_resolver_tempfail(void **state)
{
    struct dns_fixture *f = need_dns(state);
    struct event_base *base = event_base_new();
    struct deliver_resolver *r = resolver_for(base, f->closed);
    struct answer a;
    lookup_mx(r, base, "example.test", 1, &a);
    expect_outcome(&a, DELIVER_DNS_TEMPFAIL, 4, 3);
    assert_true(strlen(a.res.detail) > 0);
    deliver_resolver_free(r);
    event_base_free(base);
}

/* A caller that goes away: no callback, no leak (ASan); freeing the resolver with look-ups in
 * flight calls nobody back either. */
static void test_resolver_cancel(void **state)
{
    struct dns_fixture *f = need_dns(state);
    struct event_base *base = event_base_new();
    struct deliver_resolver *r = resolver_for(base, f->server);
    struct deliver_lookup *l = NULL;
    struct answer a = {0};
    assert_int_equal(deliver_resolver_lookup_mx(r, "example.test", 1, never_called, NULL, &l),
                     DELIVER_RESOLVER_OK);
    deliver_resolver_cancel(l);
    assert_int_equal(deliver_resolver_lookup_mx(r, "implicit.test", 1, on_answer, &a, NULL),
                     DELIVER_RESOLVER_OK);
    run_until(base, &a.calls);
    assert_int_equal(a.calls, 1);
    assert_int_equal(deliver_resolver_lookup_mx(r, "example.test", 1, never_called, NULL, NULL),
                     DELIVER_RESOLVER_OK);
    deliver_resolver_free(r);
    event_base_free(base);
}

static void test_resolver_bad_server(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    char err[160];
    assert_null(deliver_resolver_new(base, "not-an-address", 0, err, sizeof err));
    assert_non_null(strstr(err, "not-an-address"));
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_local_static_mx),
        cmocka_unit_test(test_route_lmtp),
        cmocka_unit_test(test_route_relayhost_and_literal),
        cmocka_unit_test(test_route_bad_domains),
        cmocka_unit_test(test_mx_order),
        cmocka_unit_test(test_mx_shuffle),
        cmocka_unit_test(test_null_mx),
        cmocka_unit_test(test_outcome_status),
        cmocka_unit_test(test_resolver_bad_server),
    };
    const struct CMUnitTest dns_tests[] = {
        cmocka_unit_test(test_resolver_mx),
        cmocka_unit_test(test_resolver_implicit_and_failures),
        cmocka_unit_test(test_resolver_host),
        cmocka_unit_test(test_resolver_tempfail),
        cmocka_unit_test(test_resolver_cancel),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed + cmocka_run_group_tests_name("resolver (dnsmasq)", dns_tests, setup_dns,
                                                teardown_dns);
}
