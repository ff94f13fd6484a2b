/* tests/unit/test_policy_config.c — clearmta.conf loader: defaults, every directive valid and
 * invalid, bounds at limit-1/limit/limit+1, problem reporting with line numbers, users files;
 * the Limit directives (config_limits.c) and the plan look-ups by user and by address. */
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/config.h"
#include "policy/users.h"

static struct policy_problems problems;

static size_t load(const char *text, struct policy_config *c)
{
    return policy_config_load_buffer("test.conf", text, strlen(text), c, &problems);
}

/* Loads text expecting exactly one problem on line; returns its message. */
static const char *load_one_problem(const char *text, unsigned line)
{
    struct policy_config c;
    size_t n = load(text, &c);
    policy_config_free(&c);
    if (n != 1)
        fail_msg("expected 1 problem for '%s', got %zu (first: %s)", text, n,
                 problems.count ? problems.items[0].message : "none");
    assert_int_equal(problems.items[0].line, line);
    assert_string_equal(problems.items[0].file, "test.conf");
    return problems.items[0].message;
}

static void load_ok(const char *text, struct policy_config *c)
{
    size_t n = load(text, c);
    if (n != 0)
        fail_msg("'%s': unexpected problem %s:%u: %s", text, problems.items[0].file,
                 problems.items[0].line, problems.items[0].message);
}

/* One line of configuration and the one problem it must report. */
struct problem_case {
    const char *line, *message;
};

static void expect_problems(const struct problem_case *bad, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *m = load_one_problem(bad[i].line, 1);
        if (strcmp(m, bad[i].message) != 0)
            fail_msg("'%s':\n got  '%s'\n want '%s'", bad[i].line, m, bad[i].message);
    }
}

static void expect_contains(const char *message, const char *part)
{
    if (strstr(message, part) == NULL)
        fail_msg("message '%s' lacks '%s'", message, part);
}

/* ---- routes, smart host, resolver, retry ---- */

static void test_routes(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("route b.example smtp:[127.0.0.1]:2600\n"
            "route A.Example smtp:Relay.Example.NET tls=required-verify # to the MX of relay\n"
            "route c.example smtp:[mx.c.example] tls=none\n"
            "route d.example smtp:[2001:DB8::1]:587\n", &c);
    assert_int_equal(c.n_routes, 4);
    assert_string_equal(c.routes[0].domain, "a.example"); /* sorted */
    assert_string_equal(c.routes[0].hop.host, "relay.example.net");
    assert_true(c.routes[0].hop.mx_lookup);
    assert_int_equal(c.routes[0].hop.port, 25);
    assert_int_equal(c.routes[0].hop.tls, POLICY_TLS_REQUIRED_VERIFY);
    assert_int_equal(c.routes[0].line, 2);
    const struct policy_route *r = policy_route_find(&c, "B.EXAMPLE");
    assert_non_null(r);
    assert_string_equal(r->hop.host, "127.0.0.1");
    assert_int_equal(r->hop.port, 2600);
    assert_false(r->hop.mx_lookup);
    assert_int_equal(r->hop.tls, POLICY_TLS_OPPORTUNISTIC);
    r = policy_route_find(&c, "c.example");
    assert_string_equal(r->hop.host, "mx.c.example");
    assert_false(r->hop.mx_lookup);
    assert_int_equal(r->hop.tls, POLICY_TLS_NONE);
    assert_string_equal(policy_route_find(&c, "d.example")->hop.host, "2001:db8::1");
    assert_null(policy_route_find(&c, "e.example"));
    assert_null(policy_route_find(&c, "sub.b.example"));
    policy_config_free(&c);
    assert_int_equal(c.n_routes, 0);
    assert_string_equal(policy_tls_name(POLICY_TLS_REQUIRED), "required");
}

static void test_route_invalid(void **state)
{
    (void)state;
    static const struct {
        const char *line, *part;
    } bad[] = {
        {"route", "takes a domain"},
        {"route a.example", "takes a domain"},
        {"route -a.example smtp:[127.0.0.1]:25", "not a domain name"},
        {"route a.example lmtp:[127.0.0.1]:25", "smtp:"},
        {"route a.example smtp:[127.0.0.1]:0", "not a next hop"},
        {"route a.example smtp:[127.0.0.1]:65536", "not a next hop"},
        {"route a.example smtp:[127.0.0.1]:x", "not a next hop"},
        {"route a.example smtp:[127.0.0.1", "not a next hop"},
        {"route a.example smtp:[127.0.0.1]x", "not a next hop"},
        {"route a.example smtp:127.0.0.1:25", "not a next hop"}, /* numeric needs brackets */
        {"route a.example smtp:2001:db8::1", "not a next hop"},
        {"route a.example smtp:[bad_host]:25", "not a next hop"},
        {"route a.example smtp:", "not a next hop"},
        {"route a.example smtp:[127.0.0.1]:25 tls=maybe", "tls takes"},
        {"route a.example smtp:[127.0.0.1]:25 auth=x", "unknown option"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_contains(load_one_problem(bad[i].line, 1), bad[i].part);
    expect_contains(load_one_problem("route a.example smtp:[127.0.0.1]:25\n"
                                     "route A.example smtp:[127.0.0.2]:25\n", 2),
                    "already routed on line 1");
    /* Bounds: port 1 and 65535 are fine. */
    struct policy_config c;
    load_ok("route a.example smtp:[127.0.0.1]:1\nroute b.example smtp:[127.0.0.1]:65535\n", &c);
    policy_config_free(&c);
}

static void test_routes_max(void **state)
{
    (void)state;
    size_t cap = (POLICY_ROUTES_MAX + 1) * 48;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = 0;
    for (unsigned i = 0; i < POLICY_ROUTES_MAX + 1; i++)
        len += (size_t)snprintf(text + len, cap - len, "route d%u.example smtp:[127.0.0.1]:25\n",
                                i);
    struct policy_config c;
    size_t n = policy_config_load_buffer("test.conf", text, len, &c, &problems);
    assert_int_equal(n, 1);
    assert_int_equal(problems.items[0].line, POLICY_ROUTES_MAX + 1);
    expect_contains(problems.items[0].message, "POLICY_ROUTES_MAX");
    assert_int_equal(c.n_routes, POLICY_ROUTES_MAX);
    assert_non_null(policy_route_find(&c, "d1023.example"));
    policy_config_free(&c);
    free(text);
}

static void test_relayhost(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("", &c);
    assert_false(c.relayhost.set);
    policy_config_free(&c);
    load_ok("relayhost [smtp.provider.example]:587 tls=required rate=1000/hour\n", &c);
    assert_true(c.relayhost.set);
    assert_string_equal(c.relayhost.hop.host, "smtp.provider.example");
    assert_int_equal(c.relayhost.hop.port, 587);
    assert_false(c.relayhost.hop.mx_lookup);
    assert_int_equal(c.relayhost.hop.tls, POLICY_TLS_REQUIRED);
    assert_false(c.relayhost.auth);
    assert_int_equal(c.relayhost.rate, 1000);
    assert_int_equal(c.relayhost.rate_period, 3600);
    policy_config_free(&c);
    assert_false(c.relayhost.set);
    load_ok("relayhost relay.example rate=1/second", &c);
    assert_true(c.relayhost.hop.mx_lookup);
    assert_int_equal(c.relayhost.hop.port, 25);
    assert_int_equal(c.relayhost.rate_period, 1);
    policy_config_free(&c);
    load_ok("relayhost [127.0.0.1]:2600 rate=1000000/minute", &c);
    assert_int_equal(c.relayhost.rate, POLICY_RATE_MAX);
    assert_int_equal(c.relayhost.rate_period, 60);
    policy_config_free(&c);
    static const struct {
        const char *line, *part;
    } bad[] = {
        {"relayhost", "takes [HOST]:PORT"},
        {"relayhost [127.0.0.1]:99999", "not a next hop"},
        {"relayhost [127.0.0.1]:25 rate=0/hour", "rate takes"},
        {"relayhost [127.0.0.1]:25 rate=1000001/hour", "rate takes"},
        {"relayhost [127.0.0.1]:25 rate=10/week", "rate takes"},
        {"relayhost [127.0.0.1]:25 rate=/hour", "rate takes"},
        {"relayhost [127.0.0.1]:25 rate=10", "rate takes"},
        {"relayhost [127.0.0.1]:25 tls=always", "tls takes"},
        {"relayhost [127.0.0.1]:25 speed=1", "unknown option"},
        {"relayhost [127.0.0.1]:25 auth=", "unknown option"},
        {"relayhost [127.0.0.1]:25 auth=/nonexistent/clearmta-auth", "cannot open"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_contains(load_one_problem(bad[i].line, 1), bad[i].part);
    expect_contains(load_one_problem("relayhost [a.example]\nrelayhost [b.example]\n", 2),
                    "already set on line 1");
}

static void test_resolver_directive(void **state)
{
    (void)state;
    static const struct {
        const char *value, *stored;
    } good[] = {
        {"127.0.0.1", "127.0.0.1:53"},       {"127.0.0.1:5353", "127.0.0.1:5353"},
        {"::1", "[::1]:53"},                 {"[::1]", "[::1]:53"},
        {"[2001:DB8::5]:65535", "[2001:db8::5]:65535"},
    };
    struct policy_config c;
    load_ok("", &c);
    assert_string_equal(c.resolver, "");
    policy_config_free(&c);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char line[96];
        snprintf(line, sizeof line, "resolver %s\n", good[i].value);
        load_ok(line, &c);
        assert_string_equal(c.resolver, good[i].stored);
        policy_config_free(&c);
    }
    const char *bad[] = {"resolver dns.example", "resolver 127.0.0.1:0",
                         "resolver 127.0.0.1:65536", "resolver [127.0.0.1]:53",
                         "resolver [::1", "resolver 1.2.3", "resolver [::1]x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_contains(load_one_problem(bad[i], 1), "not IP[:PORT]");
    expect_contains(load_one_problem("resolver", 1), "exactly one value");
}

static void test_retry_settings(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("", &c);
    assert_int_equal(c.retry_first, 300);
    assert_int_equal(c.retry_max, 3600);
    assert_int_equal(c.queue_lifetime, 432000);
    assert_int_equal(c.delivery_timeout_connect, 30);
    assert_int_equal(c.delivery_timeout_command, 300);
    assert_int_equal(c.delivery_timeout_data, 600);
    assert_int_equal(c.delay_warning, 14400);
    policy_config_free(&c);
    load_ok("retry_first 2\nretry_max 10\nqueue_lifetime 60\ndelay_warning 0\n", &c);
    assert_int_equal(c.retry_first, 2);
    assert_int_equal(c.retry_max, 10);
    assert_int_equal(c.queue_lifetime, 60);
    assert_int_equal(c.delay_warning, 0);
    policy_config_free(&c);
    load_ok("retry_first 86400\nretry_max 86400\nqueue_lifetime 2592000\n"
            "delay_warning 2591999\n", &c);
    policy_config_free(&c);
    expect_contains(load_one_problem("retry_first 0", 1), "at least 1");
    expect_contains(load_one_problem("retry_max 86401", 1), "POLICY_RETRY_INTERVAL_MAX");
    expect_contains(load_one_problem("queue_lifetime 59", 1), "at least 60");
    expect_contains(load_one_problem("queue_lifetime 2592001", 1), "POLICY_QUEUE_LIFETIME_MAX");
    expect_contains(load_one_problem("# x\nretry_first 7200\n", 2), "retry_max (3600) is below");
    expect_contains(load_one_problem("retry_first 600\nretry_max 300\n", 2), "below retry_first");
    expect_contains(load_one_problem("queue_lifetime 3600\n", 1), "delay_warning (14400)");
    expect_contains(load_one_problem("delay_warning 432000\n", 1), "not below queue_lifetime");
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
    (void)state;
    struct policy_config c;
    assert_true(policy_config_defaults(&c));
    assert_true(c.hostname[0] != '\0');
    assert_int_equal(c.n_listeners, 2);
    assert_int_equal(c.listeners[0].kind, POLICY_LISTEN_MX);
    assert_string_equal(c.listeners[0].host, "127.0.0.1");
    assert_int_equal(c.listeners[0].port, 2525);
    assert_int_equal(c.listeners[1].kind, POLICY_LISTEN_SUBMISSION);
    assert_string_equal(c.listeners[1].host, "127.0.0.1");
    assert_int_equal(c.listeners[1].port, 2587);
    assert_string_equal(c.data_dir, "./var/clearmta");
    assert_string_equal(c.queue_dir, "./var/clearmta/queue");
    assert_string_equal(c.maildir_root, "./var/clearmta/maildir");
    assert_int_equal(c.n_domains, 1);
    assert_string_equal(c.domains[0].name, "localhost");
    assert_int_equal(c.domains[0].kind, POLICY_DOMAIN_CATCH_ALL);
    assert_string_equal(c.domains[0].catch_all, "postmaster");
    assert_int_equal(c.max_message_size, LIMIT_MESSAGE_SIZE_DEFAULT);
    assert_int_equal(c.max_recipients, LIMIT_RECIPIENTS_DEFAULT);
    assert_int_equal(c.max_connections, LIMIT_CONNECTIONS_DEFAULT);
    assert_int_equal(c.max_connections_per_ip, LIMIT_CONNECTIONS_PER_IP_DEFAULT);
    assert_int_equal(c.max_errors, LIMIT_SESSION_ERRORS_DEFAULT);
    assert_int_equal(c.max_recipients_overshoot, LIMIT_RCPT_OVERSHOOT_DEFAULT);
    assert_int_equal(c.max_hops, LIMIT_HOPS_DEFAULT);
    assert_int_equal(c.timeout_command, LIMIT_TIMEOUT_COMMAND_DEFAULT);
    assert_int_equal(c.timeout_data, LIMIT_TIMEOUT_DATA_DEFAULT);
    assert_int_equal(c.shutdown_grace, LIMIT_SHUTDOWN_GRACE);
    assert_int_equal(c.min_free_disk, LIMIT_MIN_FREE_DISK_DEFAULT);
    assert_false(c.bare_lf_normalize);
    assert_false(c.soft_bounce);
    assert_false(c.log_syslog);
    /* mx: STARTTLS, no AUTH; submission: STARTTLS, AUTH once TLS is up */
    assert_true(c.listeners[0].starttls);
    assert_false(c.listeners[0].auth);
    assert_false(c.listeners[0].auth_plaintext);
    assert_true(c.listeners[1].starttls);
    assert_true(c.listeners[1].auth);
    assert_false(c.listeners[1].auth_plaintext);
    assert_string_equal(c.tls_cert, "");
    assert_string_equal(c.tls_key, "");
    assert_string_equal(c.users_file, "");
    assert_null(c.users);
    assert_true(c.sender_ownership);
    assert_int_equal(c.auth_fail_limit, POLICY_AUTH_FAIL_LIMIT_DEFAULT);
    assert_int_equal(c.auth_fail_window, POLICY_AUTH_FAIL_WINDOW_DEFAULT);
    policy_config_free(&c);
    policy_config_free(&c); /* twice is safe */
}

static void test_empty_and_comments_equal_defaults(void **state)
{
    (void)state;
    struct policy_config c, d;
    load_ok("", &c);
    assert_int_equal(c.n_domains, 1);
    policy_config_free(&c);
    assert_true(policy_config_defaults(&d));
    load_ok("# only a comment\n\n   \t\n# another\r\n", &c);
    assert_string_equal(c.hostname, d.hostname);
    assert_int_equal(c.n_listeners, d.n_listeners);
    assert_int_equal(c.n_domains, 1);
    assert_int_equal(c.max_recipients, d.max_recipients);
    policy_config_free(&c);
    policy_config_free(&d);
}

static void test_comments_crlf_and_last_line(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("max_recipients 50 # trailing comment\r\n\tmax_errors\t3\t\r\ntimeout_data 7", &c);
    assert_int_equal(c.max_recipients, 50);
    assert_int_equal(c.max_errors, 3);
    assert_int_equal(c.timeout_data, 7);
    policy_config_free(&c);
}

/* ---- scalar directives ---- */

/* user NAME: 32 bytes pass, 33 do not; no shell or path characters. */
static void test_run_user(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("# no user line\n", &c);
    assert_string_equal(c.run_user, "");
    policy_config_free(&c);
    load_ok("log_file /var/log/clearmta.log\n", &c);
    assert_string_equal(c.log_file, "/var/log/clearmta.log");
    policy_config_free(&c);
    load_ok("user Debian-exim_2.x\n", &c);
    assert_string_equal(c.run_user, "Debian-exim_2.x");
    policy_config_free(&c);
    char line[64] = "user ";
    memset(line + 5, 'u', 33);
    line[5 + 33] = '\0';
    expect_contains(load_one_problem(line, 1), "user");
    line[5 + 32] = '\0';
    load_ok(line, &c);
    assert_int_equal(strlen(c.run_user), 32);
    policy_config_free(&c);
    const char *bad[] = {"user -root", "user a/b", "user a:b", "user", "user a b",
                         "user \xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_contains(load_one_problem(bad[i], 1), "user");
}

static void test_hostname(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("hostname mx1.Example-Mail.test\n", &c);
    assert_string_equal(c.hostname, "mx1.Example-Mail.test");
    policy_config_free(&c);
    const char *bad[] = {"hostname -a.test", "hostname a-.test", "hostname a..test",
                         "hostname a.test.", "hostname a_b.test", "hostname [127.0.0.1]",
                         "hostname \xc3\xa9.test", "hostname", "hostname a b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_contains(load_one_problem(bad[i], 1), "hostname");
    char label64[100] = "hostname ";
    memset(label64 + 9, 'a', 64);
    label64[73] = '\0';
    load_one_problem(label64, 1);
    label64[72] = '\0'; /* 63 octets: fine */
    load_ok(label64, &c);
    policy_config_free(&c);
}

static void test_dirs_follow_data_dir(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("data_dir /srv/mail\n", &c);
    assert_string_equal(c.data_dir, "/srv/mail");
    assert_string_equal(c.queue_dir, "/srv/mail/queue");
    assert_string_equal(c.maildir_root, "/srv/mail/maildir");
    policy_config_free(&c);
    /* explicit dirs win whatever the line order */
    load_ok("queue_dir /q\ndata_dir /d\nmaildir_root /m\n", &c);
    assert_string_equal(c.queue_dir, "/q");
    assert_string_equal(c.maildir_root, "/m");
    assert_string_equal(c.data_dir, "/d");
    policy_config_free(&c);
    expect_contains(load_one_problem("data_dir", 1), "exactly one value");
    expect_contains(load_one_problem("queue_dir a b", 1), "exactly one value");
}

/* A line of exactly POLICY_CONFIG_LINE_MAX bytes: "keyword /ddd...". */
static void longest_line(char *text, const char *keyword)
{
    size_t klen = strlen(keyword);
    memcpy(text, keyword, klen);
    memcpy(text + klen, " /", 2);
    memset(text + klen + 2, 'd', POLICY_CONFIG_LINE_MAX - klen - 2);
    text[POLICY_CONFIG_LINE_MAX] = '\0';
}

/* The longest path a line can hold still fits its field, and data_dir's derived dirs too. */
static void test_longest_paths(void **state)
{
    (void)state;
    struct policy_config c;
    char text[POLICY_CONFIG_LINE_MAX + 1];
    longest_line(text, "data_dir");
    load_ok(text, &c);
    assert_int_equal(strlen(c.data_dir), POLICY_CONFIG_LINE_MAX - strlen("data_dir "));
    assert_int_equal(strlen(c.maildir_root), strlen(c.data_dir) + strlen("/maildir"));
    policy_config_free(&c);
    longest_line(text, "maildir_root");
    load_ok(text, &c);
    assert_int_equal(strlen(c.maildir_root), POLICY_CONFIG_LINE_MAX - strlen("maildir_root "));
    policy_config_free(&c);
}

struct bound_case {
    const char *keyword;
    unsigned long long min, max;
    size_t offset;
    bool wide;
};

#define CFG(f) offsetof(struct policy_config, f)
static const struct bound_case bounds[] = {
    {"max_message_size", 1, LIMIT_MESSAGE_SIZE_MAX, CFG(max_message_size), true},
    {"max_recipients", 1, LIMIT_RECIPIENTS_MAX, CFG(max_recipients), false},
    {"max_recipients_overshoot", 0, LIMIT_RCPT_OVERSHOOT_MAX, CFG(max_recipients_overshoot),
     false},
    {"max_connections", 1, POLICY_CONNECTIONS_MAX, CFG(max_connections), false},
    {"max_connections_per_ip", 1, POLICY_CONNECTIONS_MAX, CFG(max_connections_per_ip), false},
    {"max_errors", 1, POLICY_ERRORS_MAX, CFG(max_errors), false},
    {"max_hops", LIMIT_HOPS_MIN, LIMIT_HOPS_MAX, CFG(max_hops), false},
    {"timeout_command", 1, POLICY_TIMEOUT_MAX, CFG(timeout_command), false},
    {"timeout_data", 1, POLICY_TIMEOUT_MAX, CFG(timeout_data), false},
    {"min_free_disk", 0, POLICY_MIN_FREE_DISK_MAX, CFG(min_free_disk), true},
    {"shutdown_grace", 0, POLICY_SHUTDOWN_GRACE_MAX, CFG(shutdown_grace), false},
    {"auth_fail_limit", 1, POLICY_AUTH_FAIL_LIMIT_MAX, CFG(auth_fail_limit), false},
    {"auth_fail_window", 1, POLICY_AUTH_FAIL_WINDOW_MAX, CFG(auth_fail_window), false},
    {"delivery_timeout_connect", 1, POLICY_TIMEOUT_MAX, CFG(delivery_timeout_connect), false},
    {"delivery_timeout_command", 1, POLICY_TIMEOUT_MAX, CFG(delivery_timeout_command), false},
    {"delivery_timeout_data", 1, POLICY_TIMEOUT_MAX, CFG(delivery_timeout_data), false},
};

static unsigned long long field_value(const struct policy_config *c, const struct bound_case *b)
{
    const char *p = (const char *)c + b->offset;
    return b->wide ? *(const uint64_t *)(const void *)p : *(const unsigned *)(const void *)p;
}

static void check_value(const struct bound_case *b, unsigned long long v, bool ok)
{
    char text[128];
    struct policy_config c;
    snprintf(text, sizeof text, "\n%s %llu\n", b->keyword, v);
    if (ok) {
        load_ok(text, &c);
        assert_int_equal(field_value(&c, b), v);
        policy_config_free(&c);
    } else {
        const char *m = load_one_problem(text, 2);
        expect_contains(m, b->keyword);
    }
}

static void test_number_bounds(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        const struct bound_case *b = &bounds[i];
        if (b->min > 0)
            check_value(b, b->min - 1, false);
        check_value(b, b->min, true);
        check_value(b, b->min + 1, true);
        check_value(b, b->max - 1, true);
        check_value(b, b->max, true);
        check_value(b, b->max + 1, false);
    }
    expect_contains(load_one_problem("max_recipients 10001", 1), "LIMIT_RECIPIENTS_MAX");
    expect_contains(load_one_problem("max_message_size 2147483649", 1), "LIMIT_MESSAGE_SIZE_MAX");
    expect_contains(load_one_problem("max_recipients 0", 1), "at least 1");
}

static void test_number_syntax(void **state)
{
    (void)state;
    const char *bad[] = {"max_recipients -1", "max_recipients +5", "max_recipients 1.5",
                         "max_recipients 10k", "max_recipients x", "max_recipients 0x10",
                         "max_message_size 10T", "max_message_size 10MB", "max_message_size M",
                         "max_message_size", "max_message_size 1 2",
                         "max_recipients 99999999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        load_one_problem(bad[i], 1);
    struct policy_config c;
    load_ok("max_message_size 10M\nmin_free_disk 1g\n", &c);
    assert_int_equal(c.max_message_size, 10485760);
    assert_int_equal(c.min_free_disk, 1073741824ull);
    policy_config_free(&c);
    load_ok("max_message_size 2G\nmin_free_disk 512k\nmax_recipients 007", &c);
    assert_int_equal(c.max_message_size, LIMIT_MESSAGE_SIZE_MAX);
    assert_int_equal(c.min_free_disk, 524288);
    assert_int_equal(c.max_recipients, 7);
    policy_config_free(&c);
    /* a suffix that overflows is above the bound, not wrapped around */
    expect_contains(load_one_problem("min_free_disk 99999999999999999G", 1), "above its bound");
}

static void test_choices(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("bare_lf normalize\nsoft_bounce yes\nvrfy no\nlog syslog\nsender_ownership no\n", &c);
    assert_false(c.sender_ownership);
    assert_true(c.bare_lf_normalize);
    assert_true(c.soft_bounce);
    assert_true(c.log_syslog);
    policy_config_free(&c);
    load_ok("bare_lf reject\nsoft_bounce no\nlog stderr\nsender_ownership yes\n", &c);
    assert_true(c.sender_ownership);
    assert_false(c.bare_lf_normalize);
    assert_false(c.soft_bounce);
    assert_false(c.log_syslog);
    policy_config_free(&c);
    const char *bad[] = {"bare_lf yes", "bare_lf", "soft_bounce on", "soft_bounce YES",
                         "vrfy yes", "vrfy", "log file", "log stderr syslog",
                         "sender_ownership", "sender_ownership off", "sender_ownership yes no"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        load_one_problem(bad[i], 1);
}

static void test_unknown_and_duplicate(void **state)
{
    (void)state;
    expect_contains(load_one_problem("tls_certificate /x", 1),
                    "unknown directive 'tls_certificate'");
    expect_contains(load_one_problem("Hostname x", 1), "unknown directive");
    expect_contains(load_one_problem("alias a b", 1), "unknown directive");
    expect_contains(load_one_problem("max_errors 3\n\nmax_errors 4\n", 3),
                    "already set on line 1");
}

/* ---- listen ---- */

static void test_listen(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("listen mx *:25\nlisten submission [::1]:587\nlisten submissions 192.0.2.7:465\n"
            "listen mx [2001:DB8:0::1]:25\n", &c);
    assert_int_equal(c.n_listeners, 4); /* the defaults are replaced */
    assert_int_equal(c.listeners[0].kind, POLICY_LISTEN_MX);
    assert_string_equal(c.listeners[0].host, "");
    assert_int_equal(c.listeners[0].port, 25);
    assert_int_equal(c.listeners[1].kind, POLICY_LISTEN_SUBMISSION);
    assert_string_equal(c.listeners[1].host, "::1");
    assert_int_equal(c.listeners[2].kind, POLICY_LISTEN_SUBMISSIONS);
    assert_string_equal(c.listeners[2].host, "192.0.2.7");
    assert_int_equal(c.listeners[2].port, 465);
    assert_string_equal(c.listeners[3].host, "2001:db8::1");
    assert_string_equal(policy_listen_kind_name(c.listeners[2].kind), "submissions");
    policy_config_free(&c);

    const char *bad[] = {"listen", "listen mx", "listen smtp 127.0.0.1:25", "listen mx 127.0.0.1",
                         "listen mx 127.0.0.1:0", "listen mx 127.0.0.1:65536", "listen mx :25",
                         "listen mx 127.0.0.256:25", "listen mx ::1:25", "listen mx [::1]25",
                         "listen mx [127.0.0.1]:25", "listen mx [::1:25", "listen mx *:x",
                         "listen mx localhost:25", "listen mx 127.0.0.1:25 extra",
                         "listen mx 127.0.0.1:25 auth-plaintext",
                         "listen submissions 127.0.0.1:465 no-starttls",
                         "listen submissions 127.0.0.1:465 auth-plaintext",
                         "listen submission 127.0.0.1:587 auth-plaintext no-auth",
                         "listen submission 127.0.0.1:587 no-auth auth-plaintext",
                         "listen submission 127.0.0.1:587 NO-AUTH",
                         "listen submission 127.0.0.1:587 no-tls",
                         "listen mx [*]:25", "listen mx 127.0.0.1:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_contains(load_one_problem(bad[i], 1), "listen");
    load_ok("listen mx 127.0.0.1:65535\n", &c);
    assert_int_equal(c.listeners[0].port, 65535);
    policy_config_free(&c);
    expect_contains(load_one_problem("listen mx *:25\nlisten submission 0.0.0.0:25\n"
                                     "listen submission *:25\n", 3), "already used on line 1");
}

static void test_listen_max(void **state)
{
    (void)state;
    char text[2048];
    size_t n = 0;
    for (unsigned i = 0; i <= POLICY_LISTENERS_MAX; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "listen mx 127.0.0.1:%u\n", 1000 + i);
    expect_contains(load_one_problem(text, POLICY_LISTENERS_MAX + 1), "POLICY_LISTENERS_MAX");
    /* exactly the maximum is fine */
    struct policy_config c;
    *strrchr(text, 'l') = '\0';
    load_ok(text, &c);
    assert_int_equal(c.n_listeners, POLICY_LISTENERS_MAX);
    policy_config_free(&c);
}

/* listen http: the console's listener, replaced like the others by the first listen line;
 * http_password_file and http_name. */
static void test_listen_http(void **state)
{
    (void)state;
    struct policy_config c;
    assert_true(policy_config_defaults(&c));
    assert_string_equal(c.http.host, "127.0.0.1");
    assert_int_equal(c.http.port, POLICY_HTTP_PORT_DEFAULT);
    policy_config_free(&c);
    load_ok("listen mx 127.0.0.1:25\n", &c);
    assert_int_equal(c.http.port, 0); /* a file with listen lines names its console itself */
    policy_config_free(&c);
    load_ok("listen http [::1]:8080\nlisten mx 127.0.0.1:25\nhttp_name mta.example.org\n", &c);
    assert_string_equal(c.http.host, "::1");
    assert_int_equal(c.http.port, 8080);
    assert_int_equal(c.n_listeners, 1);
    assert_string_equal(c.http.name, "mta.example.org");
    policy_config_free(&c);
    expect_contains(load_one_problem("listen http 127.0.0.1:1\nlisten http 127.0.0.1:2\n", 2),
                    "one console listener");
    expect_contains(load_one_problem("listen mx 127.0.0.1:25\nlisten http 127.0.0.1:25\n", 2),
                    "already used");
    expect_contains(load_one_problem("listen http 127.0.0.1:0\n", 1), "ADDRESS:PORT");
    expect_contains(load_one_problem("listen http 127.0.0.1:80 no-auth\n", 1), "no options");
    expect_contains(load_one_problem("http_name bad_name!\n", 1), "http_name");
}

/* http_local_users: names resolved to uids when the file is read; an unknown or malformed
 * name, no name, or more than POLICY_HTTP_LOCAL_USERS_MAX names are problems. */
static void test_http_local_users(void **state)
{
    (void)state;
    const struct passwd *nobody = getpwnam("nobody");
    assert_non_null(nobody);
    uid_t nobody_uid = nobody->pw_uid;
    struct policy_config c;
    load_ok("listen http 127.0.0.1:8025\n", &c);
    assert_int_equal(c.http.n_local_uids, 0);
    policy_config_free(&c);
    load_ok("http_local_users root nobody\n", &c);
    assert_int_equal(c.http.n_local_uids, 2);
    assert_int_equal(c.http.local_uids[0], 0);
    assert_int_equal(c.http.local_uids[1], nobody_uid);
    policy_config_free(&c);
    static const struct {
        const char *text;
        unsigned line;
        const char *says;
    } cases[] = {
        {"http_local_users root no-such-user-clearmta\n", 1,
         "no user 'no-such-user-clearmta' on this system"},
        {"http_local_users -root\n", 1, "not a user name"},
        {"http_local_users\n", 1, "one or more user names"},
        {"http_local_users root\nhttp_local_users nobody\n", 2, "http_local_users"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_contains(load_one_problem(cases[i].text, cases[i].line), cases[i].says);
    /* limit - 1, limit, limit + 1 names */
    for (unsigned n = POLICY_HTTP_LOCAL_USERS_MAX - 1; n <= POLICY_HTTP_LOCAL_USERS_MAX + 1; n++) {
        char text[1024];
        size_t len = (size_t)snprintf(text, sizeof text, "http_local_users");
        for (unsigned i = 0; i < n; i++)
            len += (size_t)snprintf(text + len, sizeof text - len, " nobody");
        snprintf(text + len, sizeof text - len, "\n");
        if (n > POLICY_HTTP_LOCAL_USERS_MAX) {
            expect_contains(load_one_problem(text, 1), "POLICY_HTTP_LOCAL_USERS_MAX");
            continue;
        }
        load_ok(text, &c);
        assert_int_equal(c.http.n_local_uids, n);
        assert_int_equal(c.http.local_uids[n - 1], nobody_uid);
        policy_config_free(&c);
    }
}

static void test_listen_options(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("listen mx *:25 no-starttls\n"
            "listen mx *:26 no-auth\n"
            "listen submission *:587 auth-plaintext\n"
            "listen submission *:588 no-auth no-starttls\n"
            "listen submission *:589 no-starttls auth-plaintext # tests only\n"
            "listen submissions *:465\n"
            "listen submissions *:466 no-auth\n"
            "listen submission *:590\n", &c);
    assert_int_equal(c.n_listeners, 8);
    const struct {
        bool starttls, auth, plaintext;
    } want[] = {{false, false, false}, {true, false, false}, {true, true, true},
                {false, false, false}, {false, true, true},  {false, true, false},
                {false, false, false}, {true, true, false}};
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(c.listeners[i].starttls, want[i].starttls);
        assert_int_equal(c.listeners[i].auth, want[i].auth);
        assert_int_equal(c.listeners[i].auth_plaintext, want[i].plaintext);
    }
    policy_config_free(&c);
    expect_contains(load_one_problem("listen mx *:25 auth-plaintext", 1), "never offer AUTH");
    expect_contains(load_one_problem("listen submissions *:465 no-starttls", 1),
                    "TLS from the first byte");
    expect_contains(load_one_problem("listen submission *:587 no-auth auth-plaintext", 1),
                    "contradict");
    expect_contains(load_one_problem("listen submission *:587 starttls", 1),
                    "unknown option 'starttls'");
}

static void test_tls_paths(void **state)
{
    (void)state;
    struct policy_config c;
    size_t n = policy_config_load_buffer("/etc/clearmta/clearmta.conf",
                                         "tls_cert certs/mx.pem\ntls_key /keys/mx.key\n",
                                         strlen("tls_cert certs/mx.pem\ntls_key /keys/mx.key\n"),
                                         &c, &problems);
    assert_int_equal(n, 0);
    assert_string_equal(c.tls_cert, "/etc/clearmta/certs/mx.pem");
    assert_string_equal(c.tls_key, "/keys/mx.key");
    policy_config_free(&c);
    load_ok("tls_key k.pem\ntls_cert c.pem\n", &c); /* relative to a name without directory */
    assert_string_equal(c.tls_cert, "c.pem");
    policy_config_free(&c);
    expect_contains(load_one_problem("max_errors 3\ntls_cert c.pem\n", 2),
                    "tls_cert is set but tls_key is not");
    expect_contains(load_one_problem("tls_key k.pem\n", 1), "tls_key is set but tls_cert is not");
    expect_contains(load_one_problem("tls_cert a b\ntls_key k\n", 1), "exactly one value");
    expect_contains(load_one_problem("tls_cert a\ntls_key k\ntls_cert b\n", 3), "already set");
}

/* ---- domains ---- */

static const struct policy_domain *domain(const struct policy_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_domains; i++)
        if (strcmp(c->domains[i].name, name) == 0)
            return &c->domains[i];
    fail_msg("no domain %s", name);
    return NULL;
}

static void test_domain_users(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("domain Example.TEST users bob Alice postmaster\n"
            "domain example.test users carol alice\n"
            "domain other.test catch-all Admin\n", &c);
    assert_int_equal(c.n_domains, 3);
    /* sorted by name */
    assert_string_equal(c.domains[0].name, "example.test");
    assert_string_equal(c.domains[1].name, "localhost");
    assert_string_equal(c.domains[2].name, "other.test");
    const struct policy_domain *d = domain(&c, "example.test");
    assert_int_equal(d->kind, POLICY_DOMAIN_USERS);
    assert_int_equal(d->n_users, 4); /* alice listed twice, kept once */
    assert_string_equal(d->users[0], "alice");
    assert_string_equal(d->users[1], "bob");
    assert_string_equal(d->users[2], "carol");
    assert_string_equal(d->users[3], "postmaster");
    d = domain(&c, "other.test");
    assert_int_equal(d->kind, POLICY_DOMAIN_CATCH_ALL);
    assert_string_equal(d->catch_all, "admin");
    policy_config_free(&c);
}

static void test_domain_replaces_default_localhost(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("domain LOCALHOST users root\n", &c);
    assert_int_equal(c.n_domains, 1);
    assert_int_equal(c.domains[0].kind, POLICY_DOMAIN_USERS);
    assert_int_equal(c.domains[0].n_users, 1);
    policy_config_free(&c);
    load_ok("domain localhost catch-all me\n", &c);
    assert_int_equal(c.n_domains, 1);
    assert_string_equal(c.domains[0].catch_all, "me");
    policy_config_free(&c);
}

static void test_domain_literals(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("domain [192.0.2.1] users a\ndomain [ipv6:2001:DB8:0:0::1] users b\n", &c);
    assert_int_equal(c.n_domains, 3);
    domain(&c, "[192.0.2.1]");
    domain(&c, "[IPv6:2001:db8::1]");
    policy_config_free(&c);
    const char *bad[] = {"domain [192.0.2] users a", "domain [::1] users a",
                         "domain [IPv6:192.0.2.1] users a", "domain [x:y] users a",
                         "domain [192.0.2.1 users a", "domain [] users a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_contains(load_one_problem(bad[i], 1), "address literal");
}

static void test_domain_invalid(void **state)
{
    (void)state;
    const char *bad[] = {"domain", "domain a.test", "domain a.test users",
                         "domain a.test roles x", "domain a.test catch-all",
                         "domain a.test catch-all a b", "domain a.test users-file",
                         "domain a.test users-file a b", "domain -a.test users x",
                         "domain a..test users x", "domain a.test users ../x",
                         "domain a.test users .x", "domain a.test users a/b",
                         "domain a.test users alice@a.test", "domain a.test users \"q\"",
                         "domain a.test users a\\b", "domain a.test catch-all .x",
                         "domain a.test catch-all x/y", "domain a.test catch-all x@y"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_contains(load_one_problem(bad[i], 1), "");
    /* a user as long as a local part may be is fine, one more is not */
    char text[600];
    memcpy(text, "domain a.test users ", 20);
    memset(text + 20, 'u', LIMIT_LOCAL_PART);
    text[20 + LIMIT_LOCAL_PART] = '\0';
    struct policy_config c;
    load_ok(text, &c);
    policy_config_free(&c);
    memcpy(text + 20 + LIMIT_LOCAL_PART, "u", 2);
    load_one_problem(text, 1);
    memcpy(text, "domain a.test catch-all ", 24);
    memset(text + 24, 'u', LIMIT_LOCAL_PART + 1);
    text[24 + LIMIT_LOCAL_PART + 1] = '\0';
    load_one_problem(text, 1);
}

static void test_domain_lmtp(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("domain Mail.TEST lmtp unix:/run/dovecot/lmtp\n"
            "domain tcp.test lmtp [LMTP.Example.TEST]:24\n"
            "domain ip.test lmtp [127.0.0.1]:2424\n"
            "domain six.test lmtp [::1]:24\n"
            "domain listed.test users bob\n"
            "domain listed.test lmtp unix:/s\n"
            "domain listed.test users alice\n", &c);
    const struct policy_domain *d = domain(&c, "mail.test");
    assert_true(d->lmtp.set);
    assert_int_equal(d->kind, POLICY_DOMAIN_USERS);
    assert_int_equal(d->n_users, 0);
    assert_string_equal(d->lmtp.socket, "/run/dovecot/lmtp");
    assert_string_equal(d->lmtp.host, "");
    d = domain(&c, "tcp.test");
    assert_string_equal(d->lmtp.socket, "");
    assert_string_equal(d->lmtp.host, "lmtp.example.test");
    assert_int_equal(d->lmtp.port, 24);
    assert_string_equal(domain(&c, "ip.test")->lmtp.host, "127.0.0.1");
    assert_int_equal(domain(&c, "ip.test")->lmtp.port, 2424);
    assert_string_equal(domain(&c, "six.test")->lmtp.host, "::1");
    d = domain(&c, "listed.test"); /* users lines narrow it, in any order */
    assert_true(d->lmtp.set);
    assert_string_equal(d->lmtp.socket, "/s");
    assert_int_equal(d->n_users, 2);
    assert_false(domain(&c, "localhost")->lmtp.set);
    policy_config_free(&c);
    /* a path as long as a socket address holds is fine, one more is not */
    char text[300];
    int n = snprintf(text, sizeof text, "domain a.test lmtp unix:/");
    memset(text + n, 'p', POLICY_LMTP_PATH_MAX - 1);
    text[n + POLICY_LMTP_PATH_MAX - 1] = '\0';
    load_ok(text, &c);
    assert_int_equal(strlen(domain(&c, "a.test")->lmtp.socket), POLICY_LMTP_PATH_MAX);
    policy_config_free(&c);
    memcpy(text + n + POLICY_LMTP_PATH_MAX - 1, "p", 2);
    expect_contains(load_one_problem(text, 1), "is not unix:PATH");
    const char *bad[] = {"domain a.test lmtp", "domain a.test lmtp unix:",
                         "domain a.test lmtp unix:/a b", "domain a.test lmtp 127.0.0.1:24",
                         "domain a.test lmtp [127.0.0.1]", "domain a.test lmtp [127.0.0.1]:",
                         "domain a.test lmtp [127.0.0.1]:0", "domain a.test lmtp [127.0.0.1]:65536",
                         "domain a.test lmtp [127.0.0.1]:24x", "domain a.test lmtp [-bad]:24",
                         "domain a.test lmtp [a.test]x:24", "domain a.test lmtp smtp:[a.test]:24",
                         "domain a.test lmtp [a.test:24"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_contains(load_one_problem(bad[i], 1), "a.test");
    expect_contains(load_one_problem("domain a.test lmtp unix:/a\ndomain a.test lmtp [b.test]:24\n",
                                     2),
                    "the LMTP server of a domain is defined once");
    expect_contains(load_one_problem("domain a.test lmtp unix:/a\ndomain a.test catch-all x\n",
                                     2),
                    "already defined on line 1");
}

static void test_domain_catch_all_conflict(void **state)
{
    (void)state;
    expect_contains(load_one_problem("domain a.test catch-all x\n"
                                     "max_errors 3\ndomain A.test users y\n", 3),
                    "already defined on line 1");
    expect_contains(load_one_problem("domain a.test users y\ndomain a.test catch-all x\n", 2),
                    "already defined on line 1");
}

/* ---- problems ---- */

static void test_multiple_problems_in_order(void **state)
{
    (void)state;
    struct policy_config c;
    const char *text = "hostname ok.test\n"           /* 1 */
                       "bogus\n"                      /* 2 */
                       "# comment\n"                  /* 3 */
                       "domain x.test catch-all a\n"  /* 4 */
                       "max_recipients 0\n"           /* 5 */
                       "domain x.test users b\n"      /* 6: conflicts with 4 */
                       "\n"                           /* 7 */
                       "listen mx nowhere\n"          /* 8 */
                       "data_dir /d\n";               /* 9 */
    size_t n = load(text, &c);
    assert_int_equal(n, 4);
    assert_int_equal(problems.count, 4);
    assert_int_equal(problems.dropped, 0);
    assert_int_equal(problems.items[0].line, 2);
    assert_int_equal(problems.items[1].line, 5);
    assert_int_equal(problems.items[2].line, 6);
    assert_int_equal(problems.items[3].line, 8);
    /* the valid lines still took effect */
    assert_string_equal(c.hostname, "ok.test");
    assert_string_equal(c.queue_dir, "/d/queue");
    policy_config_free(&c);
    /* p may be NULL: only the count comes back */
    n = policy_config_load_buffer("x", text, strlen(text), &c, NULL);
    assert_int_equal(n, 4);
    policy_config_free(&c);
}

static void test_problems_capped(void **state)
{
    (void)state;
    struct policy_config c;
    size_t lines = POLICY_PROBLEMS_MAX + 36, len = 0;
    char *text = malloc(lines * 8);
    assert_non_null(text);
    for (size_t i = 0; i < lines; i++)
        len += (size_t)snprintf(text + len, lines * 8 - len, "bad%zu\n", i % 1000);
    size_t n = policy_config_load_buffer("t", text, len, &c, &problems);
    assert_int_equal(n, lines);
    assert_int_equal(problems.count, POLICY_PROBLEMS_MAX);
    assert_int_equal(problems.dropped, 36);
    assert_int_equal(problems.items[POLICY_PROBLEMS_MAX - 1].line, POLICY_PROBLEMS_MAX);
    policy_config_free(&c);
    free(text);
}

static void test_overlong_lines(void **state)
{
    (void)state;
    struct policy_config c;
    size_t cap = 3 * POLICY_CONFIG_LINE_MAX + 100;
    char *text = malloc(cap);
    assert_non_null(text);
    /* line 1: exactly POLICY_CONFIG_LINE_MAX bytes (a comment) plus CRLF: fine */
    size_t n = 0;
    text[n++] = '#';
    memset(text + n, 'x', POLICY_CONFIG_LINE_MAX - 1);
    n += POLICY_CONFIG_LINE_MAX - 1;
    memcpy(text + n, "\r\n", 2);
    n += 2;
    /* line 2: one byte more: a problem */
    memset(text + n, 'y', POLICY_CONFIG_LINE_MAX + 1);
    n += POLICY_CONFIG_LINE_MAX + 1;
    text[n++] = '\n';
    memcpy(text + n, "max_errors 2\n", 13);
    n += 13;
    /* line 4: overlong without a final newline */
    memset(text + n, 'z', POLICY_CONFIG_LINE_MAX + 50);
    n += POLICY_CONFIG_LINE_MAX + 50;
    size_t found = policy_config_load_buffer("t", text, n, &c, &problems);
    assert_int_equal(found, 2);
    assert_int_equal(problems.items[0].line, 2);
    expect_contains(problems.items[0].message, "longer than 4096");
    assert_int_equal(problems.items[1].line, 4);
    assert_int_equal(c.max_errors, 2);
    policy_config_free(&c);
    free(text);
}

static void test_binary_junk(void **state)
{
    (void)state;
    struct policy_config c;
    static const char junk[] = "max_errors 2\0\n\x01\x02\x03\n\xff\xfe\xfd\n\x7f\n"
                               "domain a.test users \xc3\xa9l\xc3\xa8ve\n\x1b[31m\n";
    size_t n = policy_config_load_buffer("t", junk, sizeof junk - 1, &c, &problems);
    /* NUL, control bytes, an unknown (escaped) keyword, DEL, ESC */
    assert_int_equal(n, 5);
    expect_contains(problems.items[0].message, "0x00");
    assert_int_equal(problems.items[2].line, 3);
    expect_contains(problems.items[2].message, "\\xff");
    assert_int_equal(problems.items[4].line, 6);
    /* the UTF-8 user on line 5 is accepted byte-exact */
    assert_int_equal(domain(&c, "a.test")->n_users, 1);
    assert_string_equal(domain(&c, "a.test")->users[0], "\xc3\xa9l\xc3\xa8ve");
    policy_config_free(&c);
    /* pseudo-random bytes never crash the loader */
    unsigned seed = 12345;
    char buf[4096];
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (char)(seed >> 16);
        }
        policy_config_load_buffer("t", buf, sizeof buf, &c, &problems);
        policy_config_free(&c);
    }
}

/* ---- limits: plans, members, counters, greylisting ---- */

/* Asserts problem i of the last load: its line and its exact message. */
static void expect_problem(size_t i, unsigned line, const char *message)
{
    assert_true(i < problems.count);
    assert_int_equal(problems.items[i].line, line);
    assert_string_equal(problems.items[i].message, message);
}

static struct sockaddr_in v4(const char *ip)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
    return sa;
}

static struct sockaddr_in6 v6(const char *ip)
{
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
    assert_int_equal(inet_pton(AF_INET6, ip, &sa.sin6_addr), 1);
    return sa;
}

/* The name of the plan of an IPv4 or IPv6 client address, or "-". */
static const char *plan_of(const struct policy_config *c, const char *ip)
{
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    const struct policy_plan *p;
    if (strchr(ip, ':') != NULL) {
        a6 = v6(ip);
        p = policy_plan_for_address(c, (const struct sockaddr *)&a6);
    } else {
        a4 = v4(ip);
        p = policy_plan_for_address(c, (const struct sockaddr *)&a4);
    }
    return p != NULL ? p->name : "-";
}

static const char *plan_of_user(const struct policy_config *c, const char *user)
{
    const struct policy_plan *p = policy_plan_for_user(c, user);
    return p != NULL ? p->name : "-";
}

static void test_limits_defaults(void **state)
{
    (void)state;
    struct policy_config c;
    assert_true(policy_config_defaults(&c));
    assert_int_equal(c.n_plans, 0);
    assert_int_equal(c.n_plan_users, 0);
    assert_int_equal(c.n_plan_networks, 0);
    assert_string_equal(c.default_plan, "");
    assert_int_equal(c.counters.kind, POLICY_COUNTERS_MEMORY);
    assert_false(c.counters.fail_closed);
    assert_int_equal(c.counters.timeout_ms, 200);
    assert_string_equal(c.counters.prefix, "clearmta:");
    assert_false(c.greylist.on);
    assert_int_equal(c.greylist.delay, 300);
    assert_int_equal(c.greylist.expire, 86400);
    assert_int_equal(c.greylist.v4_prefix, 24);
    assert_int_equal(c.greylist.v6_prefix, 64);
    assert_int_equal(c.max_messages_per_session, 0);
    assert_int_equal(c.max_sessions_per_minute_per_ip, 0);
    assert_int_equal(c.max_commands_per_second, 0);
    assert_string_equal(plan_of_user(&c, "alice"), "-");
    assert_string_equal(plan_of(&c, "127.0.0.1"), "-");
    assert_null(policy_plan_for_address(&c, NULL));
    assert_string_equal(policy_plan_metric_name(POLICY_PLAN_MESSAGES), "messages");
    assert_string_equal(policy_plan_metric_name(POLICY_PLAN_RECIPIENTS), "recipients");
    assert_string_equal(policy_plan_metric_name(POLICY_PLAN_BYTES), "bytes");
    policy_config_free(&c);
}

static void test_plan(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("plan Trial messages=1000/hour messages=5000/day recipients=10/60s bytes=10M/hour "
            "max-recipients=50 max-message-size=5M over=permanent\n"
            "plan per-sec_2 messages=1/second recipients=2/minute bytes=1/604800s\n"
            "plan small max-recipients=1 # comment\n"
            "plan big max-message-size=1k\n", &c);
    assert_int_equal(c.n_plans, 4);
    const struct policy_plan *p = &c.plans[0];
    assert_string_equal(p->name, "trial");
    assert_int_equal(p->line, 1);
    assert_int_equal(p->n_limits, 4);
    assert_int_equal(p->limits[0].metric, POLICY_PLAN_MESSAGES);
    assert_int_equal(p->limits[0].limit, 1000);
    assert_int_equal(p->limits[0].window, 3600);
    assert_int_equal(p->limits[1].metric, POLICY_PLAN_MESSAGES);
    assert_int_equal(p->limits[1].limit, 5000);
    assert_int_equal(p->limits[1].window, 86400);
    assert_int_equal(p->limits[2].metric, POLICY_PLAN_RECIPIENTS);
    assert_int_equal(p->limits[2].limit, 10);
    assert_int_equal(p->limits[2].window, 60);
    assert_int_equal(p->limits[3].metric, POLICY_PLAN_BYTES);
    assert_int_equal(p->limits[3].limit, 10485760);
    assert_int_equal(p->limits[3].window, 3600);
    assert_int_equal(p->max_recipients, 50);
    assert_int_equal(p->max_message_size, 5242880);
    assert_true(p->permanent);
    p = &c.plans[1];
    assert_string_equal(p->name, "per-sec_2");
    assert_int_equal(p->limits[0].window, 1);
    assert_int_equal(p->limits[1].window, 60);
    assert_int_equal(p->limits[2].window, POLICY_PLAN_WINDOW_MAX);
    assert_false(p->permanent);
    assert_int_equal(p->max_recipients, 0);
    assert_int_equal(p->max_message_size, 0);
    assert_int_equal(c.plans[2].n_limits, 0);
    assert_int_equal(c.plans[2].max_recipients, 1);
    assert_int_equal(c.plans[3].max_message_size, 1024);
    /* Plans alone put nobody on a plan. */
    assert_string_equal(plan_of_user(&c, "alice"), "-");
    policy_config_free(&c);
    assert_int_equal(c.n_plans, 0);
    assert_null(c.plans);

    /* Four windows per metric; the bounds of every number. */
    load_ok("plan w messages=1/1s messages=2/2s messages=3/3s messages=4/4s "
            "recipients=1000000000/day bytes=1125899906842624/hour bytes=1G/day "
            "max-recipients=100 max-message-size=10M over=temporary\n", &c);
    assert_int_equal(c.plans[0].n_limits, 7);
    assert_int_equal(c.plans[0].limits[4].limit, 1000000000);
    assert_int_equal(c.plans[0].limits[5].limit, 1ull << 50);
    assert_int_equal(c.plans[0].limits[6].limit, 1ull << 30);
    policy_config_free(&c);
}

static void test_plan_invalid(void **state)
{
    (void)state;
    static const struct problem_case bad[] = {
        {"plan", "plan takes a name and limits: messages=N/PERIOD, recipients=N/PERIOD, "
                 "bytes=SIZE/PERIOD, max-recipients=N, max-message-size=SIZE, "
                 "over=temporary|permanent"},
        {"plan a.b messages=1/hour", "plan: 'a.b' is not a plan name (1-32 letters, digits, '_' "
                                     "or '-')"},
        {"plan abcdefghijklmnopqrstuvwxyz0123456 messages=1/hour",
         "plan: 'abcdefghijklmnopqrstuvwxyz0123456' is not a plan name (1-32 letters, digits, "
         "'_' or '-')"},
        {"plan a", "plan a sets no limit (messages=, recipients=, bytes=, max-recipients= or "
                   "max-message-size=)"},
        {"plan a over=permanent", "plan a sets no limit (messages=, recipients=, bytes=, "
                                  "max-recipients= or max-message-size=)"},
        {"plan a messages=0/hour", "plan a: messages takes N/PERIOD (N 1-1000000000; PERIOD "
                                   "second, minute, hour, day or 1s-604800s), not '0/hour'"},
        {"plan a bytes=1x/hour", "plan a: bytes takes SIZE/PERIOD (SIZE with k, M or G, "
                                 "1-1125899906842624; PERIOD second, minute, hour, day or "
                                 "1s-604800s), not '1x/hour'"},
        {"plan a messages=1/hour messages=2/3600s",
         "plan a: messages per 3600 s is already limited (one limit per window)"},
        {"plan a recipients=1/1s recipients=1/2s recipients=1/3s recipients=1/4s "
         "recipients=1/5s", "plan a: more than 4 recipients limits (POLICY_PLAN_WINDOWS_MAX)"},
        {"plan a max-recipients=0", "plan a: max-recipients takes a number 1-10000, not '0'"},
        {"plan a max-recipients=1 max-recipients=2", "plan a: max-recipients is given twice"},
        {"plan a max-message-size=3G", "plan a: max-message-size takes a size (k, M or G "
                                       "allowed) 1-2147483648, not '3G'"},
        {"plan a messages=1/hour over=never", "plan a: over takes temporary or permanent, not "
                                              "'never'"},
        {"plan a messages=1/hour limit=5", "plan a: unknown setting 'limit=5' (messages=, "
                                           "recipients=, bytes=, max-recipients=, "
                                           "max-message-size=, over=)"},
    };
    expect_problems(bad, sizeof bad / sizeof bad[0]);
    /* Every malformed limit, with the same message shape. */
    static const char *const limits[] = {
        "messages=1000000001/hour", "messages=1/week", "messages=1/0s", "messages=1/604801s",
        "messages=1/hours", "messages=/hour", "messages=1k/hour", "messages=1", "messages=",
        "messages=1/", "messages=1/s", "messages=-1/hour", "bytes=1125899906842625/day",
        "recipients=1/60", "messages=99999999999999999999999/hour",
    };
    char line[128];
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        snprintf(line, sizeof line, "plan a %s", limits[i]);
        expect_contains(load_one_problem(line, 1), "takes");
    }
    /* All problems of a line, each once; the plan is still declared (no "no plan" follows). */
    struct policy_config c;
    assert_int_equal(load("plan a messages=x over=y\nplan_user alice a\n", &c), 2);
    policy_config_free(&c);
    expect_contains(problems.items[0].message, "messages takes");
    expect_contains(problems.items[1].message, "over takes");
    /* Names are unique whatever their case. */
    assert_string_equal(load_one_problem("plan Gold messages=1/hour\nplan gOLD messages=2/hour\n",
                                         2), "plan gold is already defined on line 1");
}

static void test_plans_max(void **state)
{
    (void)state;
    char text[(POLICY_PLANS_MAX + 1) * 40];
    size_t len = 0;
    for (unsigned i = 0; i <= POLICY_PLANS_MAX; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "plan p%u messages=%u/hour\n", i,
                                i + 1);
    struct policy_config c;
    assert_int_equal(load(text, &c), 1);
    expect_problem(0, POLICY_PLANS_MAX + 1, "plan: more than 64 plans (POLICY_PLANS_MAX)");
    assert_int_equal(c.n_plans, POLICY_PLANS_MAX);
    policy_config_free(&c);
}

/* A plan lowers the global per-message limits; raising them is refused, in any line order. */
static void test_plan_against_globals(void **state)
{
    (void)state;
    struct policy_config c;
    assert_int_equal(load("plan big max-recipients=101 max-message-size=11M\n", &c), 2);
    policy_config_free(&c);
    expect_problem(0, 1, "plan big: max-recipients 101 is above max_recipients 100 (a plan can "
                         "only lower it)");
    expect_problem(1, 1, "plan big: max-message-size 11534336 is above max_message_size "
                         "10485760 (a plan can only lower it)");
    load_ok("plan big max-recipients=101 max-message-size=11M\nmax_recipients 101\n"
            "max_message_size 11M\n", &c);
    policy_config_free(&c);
    load_ok("plan big max-recipients=100 max-message-size=10M\n", &c);
    policy_config_free(&c);
}

static void test_plan_user(void **state)
{
    (void)state;
    struct policy_config c;
    /* Plans may be declared after the lines that name them. */
    load_ok("plan_user Alice@Example.TEST premium\n"
            "plan_user bob standard\n"
            "plan_user carol.x+tag_1-2 premium\n"
            "default_plan Trial\n"
            "plan trial messages=1000/hour\n"
            "plan standard messages=1500/hour\n"
            "plan premium messages=3000/hour\n", &c);
    assert_int_equal(c.n_plan_users, 3);
    assert_string_equal(c.plan_users[0].user, "alice@example.test"); /* sorted, lower case */
    assert_string_equal(c.plan_users[1].user, "bob");
    assert_string_equal(c.default_plan, "trial");
    assert_string_equal(plan_of_user(&c, "alice@example.test"), "premium");
    assert_string_equal(plan_of_user(&c, "ALICE@example.Test"), "premium");
    assert_string_equal(plan_of_user(&c, "BOB"), "standard");
    assert_string_equal(plan_of_user(&c, "carol.x+tag_1-2"), "premium");
    assert_string_equal(plan_of_user(&c, "dave"), "trial"); /* default_plan */
    assert_string_equal(plan_of_user(&c, ""), "trial");
    assert_string_equal(plan_of_user(&c, NULL), "trial");
    char longest[LIMIT_PATH + 8];
    memset(longest, 'a', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    assert_string_equal(plan_of_user(&c, longest), "trial");
    policy_config_free(&c);
    assert_int_equal(c.n_plan_users, 0);
    assert_string_equal(c.default_plan, "");

    /* Without default_plan, users not listed have no plan. */
    load_ok("plan p messages=1/hour\nplan_user alice p\n", &c);
    assert_string_equal(plan_of_user(&c, "alice"), "p");
    assert_string_equal(plan_of_user(&c, "bob"), "-");
    policy_config_free(&c);
}

static void test_plan_user_invalid(void **state)
{
    (void)state;
    assert_string_equal(load_one_problem("plan_user alice\n", 1),
                        "plan_user takes a user (as in the users file) and a plan name");
    assert_string_equal(load_one_problem("plan p messages=1/hour\nplan_user alice p x\n", 2),
                        "plan_user takes a user (as in the users file) and a plan name");
    assert_string_equal(load_one_problem("plan p messages=1/hour\nplan_user a/b p\n", 2),
                        "plan_user: 'a/b' is not a user name (as in the users file: 1-255 "
                        "letters, digits, '.', '_', '-', '+' or '@')");
    assert_string_equal(load_one_problem("plan_user alice gold!\n", 1),
                        "plan_user: 'gold!' is not a plan name (1-32 letters, digits, '_' or "
                        "'-')");
    assert_string_equal(load_one_problem("plan p messages=1/hour\nplan_user alice gold\n", 2),
                        "plan_user alice: no plan named 'gold'");
    assert_string_equal(load_one_problem("plan p messages=1/hour\nplan_user alice p\n"
                                         "plan_user ALICE p\n", 3),
                        "plan_user alice is already on line 2");
    assert_string_equal(load_one_problem("default_plan x\nplan p messages=1/hour\n", 1),
                        "default_plan: no plan named 'x'");
    assert_string_equal(load_one_problem("default_plan\n", 1), "default_plan takes one plan name");
    assert_string_equal(load_one_problem("default_plan a b\n", 1),
                        "default_plan takes one plan name");
    assert_string_equal(load_one_problem("default_plan a.b\n", 1),
                        "default_plan: 'a.b' is not a plan name (1-32 letters, digits, '_' or "
                        "'-')");
    assert_string_equal(load_one_problem("plan p messages=1/hour\ndefault_plan p\n"
                                         "default_plan p\n", 3),
                        "default_plan is already set on line 2");
}

static void test_plan_network(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("plan wide messages=1/hour\nplan narrow messages=2/hour\nplan host messages=3/hour\n"
            "plan v6 messages=4/hour\nplan v6narrow messages=5/hour\nplan all messages=6/hour\n"
            "plan_network 10.0.0.0/8 wide\n"
            "plan_network 10.1.0.0/16 narrow\n"
            "plan_network 10.1.2.3/32 host\n"
            "plan_network 2001:DB8::/32 v6\n"
            "plan_network 2001:db8:1::/48 v6narrow\n"
            "plan_network 0.0.0.0/0 all\n"
            "plan_network ::ffff:192.0.2.0/120 host\n", &c);
    assert_int_equal(c.n_plan_networks, 7);
    assert_string_equal(plan_of(&c, "10.2.0.1"), "wide");
    assert_string_equal(plan_of(&c, "10.1.0.1"), "narrow");
    assert_string_equal(plan_of(&c, "10.1.255.255"), "narrow");
    assert_string_equal(plan_of(&c, "10.1.2.3"), "host");
    assert_string_equal(plan_of(&c, "10.1.2.4"), "narrow");
    assert_string_equal(plan_of(&c, "11.0.0.1"), "all");
    assert_string_equal(plan_of(&c, "192.0.2.77"), "host"); /* the mapped network is IPv4 */
    assert_string_equal(plan_of(&c, "192.0.3.1"), "all");
    /* IPv4-mapped client addresses count as IPv4. */
    assert_string_equal(plan_of(&c, "::ffff:10.1.2.3"), "host");
    assert_string_equal(plan_of(&c, "::ffff:10.9.9.9"), "wide");
    assert_string_equal(plan_of(&c, "2001:db8:2::1"), "v6");
    assert_string_equal(plan_of(&c, "2001:db8:1:ffff::1"), "v6narrow");
    assert_string_equal(plan_of(&c, "2001:db9::1"), "-"); /* 0.0.0.0/0 is IPv4 only */
    assert_string_equal(plan_of(&c, "::1"), "-");
    /* The matching line itself, for counters keyed by network. */
    struct sockaddr_in6 mapped = v6("::ffff:10.1.9.9");
    const struct policy_plan_network *net =
        policy_plan_network_for_address(&c, (const struct sockaddr *)&mapped);
    assert_non_null(net);
    assert_int_equal(net->family, AF_INET);
    assert_int_equal(net->prefix, 16);
    assert_memory_equal(net->addr, "\x0a\x01\x00\x00", 4);
    assert_string_equal(c.plans[net->plan].name, "narrow");
    /* Other address families have no plan. */
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_null(policy_plan_for_address(&c, &un));
    /* Networks are no user's plan. */
    assert_string_equal(plan_of_user(&c, "10.1.2.3"), "-");
    policy_config_free(&c);
    assert_null(c.plan_networks);

    /* Prefixes that are not byte-aligned. */
    load_ok("plan p messages=1/hour\nplan_network 192.0.2.128/25 p\nplan_network 2001:db8::/33 p\n",
            &c);
    assert_string_equal(plan_of(&c, "192.0.2.127"), "-");
    assert_string_equal(plan_of(&c, "192.0.2.128"), "p");
    assert_string_equal(plan_of(&c, "192.0.2.255"), "p");
    assert_string_equal(plan_of(&c, "2001:db8:7fff::1"), "p");
    assert_string_equal(plan_of(&c, "2001:db8:8000::1"), "-");
    policy_config_free(&c);
}

static void test_plan_network_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {"10.0.0.0", "10.0.0.0/33", "2001:db8::/129", "x/8",
                                      "10.0.0.0/", "/8", "10.0.0.0/8/8", "10.0.0/8",
                                      "10.0.0.0/-1", "[::1]/128", "10.0.0.0/8x",
                                      "1234567890123456789012345678901234567890123456/8"};
    char line[160];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(line, sizeof line, "plan p messages=1/hour\nplan_network %s p\n", bad[i]);
        char want[200];
        snprintf(want, sizeof want, "plan_network: '%s' is not a network (IPv4 ADDRESS/0-32 or "
                 "IPv6 ADDRESS/0-128)", bad[i]);
        assert_string_equal(load_one_problem(line, 2), want);
    }
    assert_string_equal(load_one_problem("plan p messages=1/hour\nplan_network 10.1.2.3/8 p\n", 2),
                        "plan_network: 10.1.2.3/8 has host bits set (the network is 10.0.0.0/8)");
    assert_string_equal(load_one_problem("plan p messages=1/hour\n"
                                         "plan_network 2001:db8::1/64 p\n", 2),
                        "plan_network: 2001:db8::1/64 has host bits set (the network is "
                        "2001:db8::/64)");
    assert_string_equal(load_one_problem("plan p messages=1/hour\nplan_network 1.2.3.4/0 p\n", 2),
                        "plan_network: 1.2.3.4/0 has host bits set (the network is 0.0.0.0/0)");
    assert_string_equal(load_one_problem("plan p messages=1/hour\nplan_network 10.0.0.1/31 p\n",
                                         2),
                        "plan_network: 10.0.0.1/31 has host bits set (the network is "
                        "10.0.0.0/31)");
    assert_string_equal(load_one_problem("plan_network 10.0.0.0/8 gold\n", 1),
                        "plan_network 10.0.0.0/8: no plan named 'gold'");
    assert_string_equal(load_one_problem("plan_network 10.0.0.0/8\n", 1),
                        "plan_network takes a network (ADDRESS/PREFIX) and a plan name");
    /* The same network twice, even written differently (mapped form, other case). */
    assert_string_equal(load_one_problem("plan p messages=1/hour\nplan_network 192.0.2.0/24 p\n"
                                         "plan_network ::FFFF:192.0.2.0/120 p\n", 3),
                        "plan_network 192.0.2.0/24 is already on line 2");
    /* The same address with another prefix is another network. */
    struct policy_config c;
    load_ok("plan p messages=1/hour\nplan_network 10.0.0.0/8 p\nplan_network 10.0.0.0/16 p\n",
            &c);
    policy_config_free(&c);
}

static void test_counters(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("counters memory\n", &c);
    assert_int_equal(c.counters.kind, POLICY_COUNTERS_MEMORY);
    policy_config_free(&c);
    load_ok("counters redis 127.0.0.1:6380 fail=closed timeout=10000 prefix=fleet-1:\n", &c);
    assert_int_equal(c.counters.kind, POLICY_COUNTERS_REDIS);
    assert_string_equal(c.counters.server, "127.0.0.1:6380");
    assert_true(c.counters.fail_closed);
    assert_int_equal(c.counters.timeout_ms, 10000);
    assert_string_equal(c.counters.prefix, "fleet-1:");
    policy_config_free(&c);
    load_ok("counters redis [::1]:6379 timeout=1 fail=open\n", &c);
    assert_string_equal(c.counters.server, "[::1]:6379");
    assert_false(c.counters.fail_closed);
    assert_int_equal(c.counters.timeout_ms, 1);
    assert_string_equal(c.counters.prefix, "clearmta:");
    policy_config_free(&c);
    load_ok("counters redis 127.0.0.1\n", &c); /* Redis's default port */
    assert_string_equal(c.counters.server, "127.0.0.1:6379");
    assert_int_equal(c.counters.timeout_ms, 200);
    policy_config_free(&c);
    char prefix[128];
    snprintf(prefix, sizeof prefix, "counters redis 127.0.0.1:1 prefix=%.63s\n",
             "0123456789012345678901234567890123456789012345678901234567890123456789");
    load_ok(prefix, &c);
    assert_int_equal(strlen(c.counters.prefix), 63);
    policy_config_free(&c);

    static const struct problem_case bad[] = {
        {"counters", "counters takes memory, or redis HOST:PORT [fail=open|closed] [timeout=MS] "
                     "[prefix=P]"},
        {"counters disk", "counters takes memory, or redis HOST:PORT [fail=open|closed] "
                          "[timeout=MS] [prefix=P]"},
        {"counters redis", "counters takes memory, or redis HOST:PORT [fail=open|closed] "
                           "[timeout=MS] [prefix=P]"},
        {"counters memory fail=open", "counters memory takes no options"},
        {"counters redis localhost:6379", "counters redis: 'localhost:6379' is not HOST:PORT "
                                          "(numeric IPv4, or IPv6 in brackets; port 1-65535)"},
        {"counters redis 127.0.0.1:0", "counters redis: '127.0.0.1:0' is not HOST:PORT (numeric "
                                       "IPv4, or IPv6 in brackets; port 1-65535)"},
        {"counters redis 127.0.0.1:6379 fail=maybe", "counters redis: fail takes open or closed, "
                                                     "not 'maybe'"},
        {"counters redis 127.0.0.1:6379 timeout=0", "counters redis: timeout takes a number "
                                                    "1-10000, not '0'"},
        {"counters redis 127.0.0.1:6379 timeout=10001", "counters redis: timeout takes a number "
                                                        "1-10000, not '10001'"},
        {"counters redis 127.0.0.1:6379 prefix=", "counters redis: prefix takes 1-63 printable "
                                                  "ASCII characters, not ''"},
        {"counters redis 127.0.0.1:6379 prefix=\xc3\xa9", "counters redis: prefix takes 1-63 "
                                                          "printable ASCII characters, not "
                                                          "'\\xc3\\xa9'"},
        {"counters redis 127.0.0.1:6379 db=2", "counters redis: unknown option 'db=2' "
                                               "(fail=open|closed, timeout=MS, prefix=P)"},
        {"counters redis 127.0.0.1:6379 fail=open fail=closed", "counters redis: fail is given "
                                                                "twice"},
    };
    expect_problems(bad, sizeof bad / sizeof bad[0]);
    snprintf(prefix, sizeof prefix, "counters redis 127.0.0.1:1 prefix=%.64s\n",
             "0123456789012345678901234567890123456789012345678901234567890123456789");
    expect_contains(load_one_problem(prefix, 1), "prefix takes 1-63");
    /* Every bad option is reported; a bad line changes nothing. */
    assert_int_equal(load("counters redis 127.0.0.1 fail=x timeout=y\n", &c), 2);
    assert_int_equal(c.counters.kind, POLICY_COUNTERS_MEMORY);
    policy_config_free(&c);
    assert_string_equal(load_one_problem("counters memory\ncounters memory\n", 2),
                        "counters is already set on line 1");
}

static void test_greylisting(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("greylisting off\n", &c);
    assert_false(c.greylist.on);
    policy_config_free(&c);
    load_ok("greylisting on\n", &c);
    assert_true(c.greylist.on);
    assert_int_equal(c.greylist.delay, 300);
    assert_int_equal(c.greylist.expire, 86400);
    assert_int_equal(c.greylist.v4_prefix, 24);
    assert_int_equal(c.greylist.v6_prefix, 64);
    policy_config_free(&c);
    load_ok("greylisting on delay=2 expire=3 networks=32/128\n", &c);
    assert_true(c.greylist.on);
    assert_int_equal(c.greylist.delay, 2);
    assert_int_equal(c.greylist.expire, 3);
    assert_int_equal(c.greylist.v4_prefix, 32);
    assert_int_equal(c.greylist.v6_prefix, 128);
    policy_config_free(&c);
    load_ok("greylisting on delay=86400 expire=2592000 networks=8/16\n", &c);
    assert_int_equal(c.greylist.v4_prefix, 8);
    assert_int_equal(c.greylist.v6_prefix, 16);
    policy_config_free(&c);

    static const struct problem_case bad[] = {
        {"greylisting", "greylisting takes off, or on [delay=SECONDS] [expire=SECONDS] "
                        "[networks=V4/V6]"},
        {"greylisting yes", "greylisting takes off, or on [delay=SECONDS] [expire=SECONDS] "
                            "[networks=V4/V6]"},
        {"greylisting off delay=1", "greylisting off takes no options"},
        {"greylisting on delay=0", "greylisting: delay takes a number 1-86400, not '0'"},
        {"greylisting on delay=86401", "greylisting: delay takes a number 1-86400, not '86401'"},
        {"greylisting on expire=0", "greylisting: expire takes a number 1-2592000, not '0'"},
        {"greylisting on expire=2592001", "greylisting: expire takes a number 1-2592000, not "
                                          "'2592001'"},
        {"greylisting on delay=600 expire=600", "greylisting: expire (600) must be longer than "
                                                "delay (600), or no retry could pass"},
        {"greylisting on expire=60", "greylisting: expire (60) must be longer than delay (300), "
                                     "or no retry could pass"},
        {"greylisting on networks=24", "greylisting: networks takes V4/V6 prefix lengths "
                                       "(8-32/16-128, e.g. 24/64), not '24'"},
        {"greylisting on delay=1 delay=2", "greylisting: delay is given twice"},
        {"greylisting on wait=5", "greylisting: unknown option 'wait=5' (delay=SECONDS, "
                                  "expire=SECONDS, networks=V4/V6)"},
    };
    expect_problems(bad, sizeof bad / sizeof bad[0]);
    static const char *const networks[] = {"7/64", "33/64", "24/15", "24/129", "/64", "24/",
                                           "x/64", "24/64/1", "123456789/64"};
    char line[64];
    for (size_t i = 0; i < sizeof networks / sizeof networks[0]; i++) {
        snprintf(line, sizeof line, "greylisting on networks=%s", networks[i]);
        expect_contains(load_one_problem(line, 1), "networks takes V4/V6");
    }
    assert_int_equal(load("greylisting on delay=x expire=y\n", &c), 2);
    assert_false(c.greylist.on);
    policy_config_free(&c);
}

/* stress: on by default; each option at its bounds; low under high. */
static void test_stress(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("", &c);
    assert_true(c.stress.on);
    assert_int_equal(c.stress.high, 80);
    assert_int_equal(c.stress.low, 60);
    assert_int_equal(c.stress.timeout, 10);
    assert_int_equal(c.stress.per_ip, 10);
    assert_true(c.session_memory == 512ull << 20);
    policy_config_free(&c);
    load_ok("stress off\nsession_memory 1M\n", &c);
    assert_false(c.stress.on);
    assert_true(c.session_memory == 1ull << 20);
    policy_config_free(&c);
    load_ok("stress on high=100 low=99 timeout=3600 per_ip=1048576\n", &c);
    assert_true(c.stress.on);
    assert_int_equal(c.stress.high, 100);
    assert_int_equal(c.stress.low, 99);
    assert_int_equal(c.stress.timeout, 3600);
    assert_int_equal(c.stress.per_ip, 1048576);
    policy_config_free(&c);
    load_ok("tls_handshake_timeout 3600\ntls_handshakes_per_second 100000\n", &c);
    assert_int_equal(c.tls_handshake_timeout, 3600);
    assert_int_equal(c.tls_handshakes_per_second, 100000);
    policy_config_free(&c);
    load_ok("tls_handshake_timeout 1\ntls_handshakes_per_second 0\n", &c);
    assert_int_equal(c.tls_handshake_timeout, 1);
    assert_int_equal(c.tls_handshakes_per_second, 0);
    policy_config_free(&c);
    load_ok("stress on high=2 low=1 timeout=1 per_ip=1\n", &c);
    assert_int_equal(c.stress.high, 2);
    assert_int_equal(c.stress.low, 1);
    policy_config_free(&c);
    static const struct problem_case bad[] = {
        {"stress", "stress takes off, or on [high=PERCENT] [low=PERCENT] [timeout=SECONDS] "
                   "[per_ip=N]"},
        {"stress off high=5", "stress off takes no options"},
        {"stress on high=1", "stress: high takes a number 2-100, not '1'"},
        {"stress on high=101", "stress: high takes a number 2-100, not '101'"},
        {"stress on low=0", "stress: low takes a number 1-99, not '0'"},
        {"stress on timeout=0", "stress: timeout takes a number 1-3600, not '0'"},
        {"stress on timeout=3601", "stress: timeout takes a number 1-3600, not '3601'"},
        {"stress on per_ip=0", "stress: per_ip takes a number 1-1048576, not '0'"},
        {"stress on per_ip=1048577", "stress: per_ip takes a number 1-1048576, not '1048577'"},
        {"stress on high=50 low=50", "stress: low (50) must be under high (50), or stress "
                                     "would never end"},
        {"stress on low=1 low=2", "stress: low is given twice"},
        {"stress on slow=1", "stress: unknown option 'slow=1' (high=PERCENT, low=PERCENT, "
                             "timeout=SECONDS, per_ip=N)"},
        {"session_memory 1048575", "session_memory must be at least 1048576"},
        {"tls_handshake_timeout 0", "tls_handshake_timeout must be at least 1"},
        {"tls_handshake_timeout 3601", "tls_handshake_timeout 3601 is above its bound 3600 "
                                       "(POLICY_TIMEOUT_MAX)"},
        {"tls_handshakes_per_second 100001", "tls_handshakes_per_second 100001 is above its "
                                             "bound 100000 "
                                             "(POLICY_TLS_HANDSHAKES_PER_SECOND_MAX)"},
    };
    expect_problems(bad, sizeof bad / sizeof bad[0]);
    assert_int_equal(load("stress on high=x low=y\n", &c), 2);
    assert_true(c.stress.on);
    assert_int_equal(c.stress.high, 80); /* a bad line changes nothing */
    policy_config_free(&c);
}

static void test_session_limits(void **state)
{
    (void)state;
    struct policy_config c;
    load_ok("max_messages_per_session 100000\nmax_sessions_per_minute_per_ip 100000\n"
            "max_commands_per_second 10000\n", &c);
    assert_int_equal(c.max_messages_per_session, 100000);
    assert_int_equal(c.max_sessions_per_minute_per_ip, 100000);
    assert_int_equal(c.max_commands_per_second, 10000);
    policy_config_free(&c);
    load_ok("max_messages_per_session 0\nmax_sessions_per_minute_per_ip 1\n"
            "max_commands_per_second 0\n", &c);
    assert_int_equal(c.max_messages_per_session, 0);
    assert_int_equal(c.max_sessions_per_minute_per_ip, 1);
    policy_config_free(&c);
    assert_string_equal(load_one_problem("max_messages_per_session 100001\n", 1),
                        "max_messages_per_session 100001 is above its bound 100000 "
                        "(POLICY_SESSION_MESSAGES_MAX)");
    assert_string_equal(load_one_problem("max_sessions_per_minute_per_ip 100001\n", 1),
                        "max_sessions_per_minute_per_ip 100001 is above its bound 100000 "
                        "(POLICY_SESSIONS_PER_MINUTE_MAX)");
    assert_string_equal(load_one_problem("max_commands_per_second 10001\n", 1),
                        "max_commands_per_second 10001 is above its bound 10000 "
                        "(POLICY_COMMANDS_PER_SECOND_MAX)");
    assert_string_equal(load_one_problem("max_commands_per_second -1\n", 1),
                        "max_commands_per_second: '-1' is not a number");
    assert_string_equal(load_one_problem("max_messages_per_session 1\n"
                                         "max_messages_per_session 2\n", 2),
                        "max_messages_per_session is already set on line 1");
}

/* Problems found after reading (unknown plans, duplicates) still come out in line order. */
static void test_limits_problems_in_order(void **state)
{
    (void)state;
    struct policy_config c;
    size_t n = load("plan_user alice gold\n"           /* 1: no such plan */
                    "plan p messages=1/hour\n"
                    "plan_network 10.0.0.0/8 silver\n" /* 3: no such plan */
                    "default_plan bronze\n"            /* 4: no such plan */
                    "plan_user ALICE p\n"              /* 5: alice twice */
                    "plan q messages=0/hour\n"         /* 6: bad limit */
                    "plan_network 10.0.0.0/8 p\n"      /* 7: network twice */
                    "max_recipients 0\n",              /* 8: bound */
                    &c);
    policy_config_free(&c);
    assert_int_equal(n, 7);
    expect_problem(0, 1, "plan_user alice: no plan named 'gold'");
    expect_problem(1, 3, "plan_network 10.0.0.0/8: no plan named 'silver'");
    expect_problem(2, 4, "default_plan: no plan named 'bronze'");
    expect_problem(3, 5, "plan_user alice is already on line 1");
    expect_contains(problems.items[4].message, "plan q: messages takes");
    assert_int_equal(problems.items[4].line, 6);
    expect_problem(5, 7, "plan_network 10.0.0.0/8 is already on line 3");
    expect_problem(6, 8, "max_recipients must be at least 1");
}

static void test_plan_members_max(void **state)
{
    (void)state;
    size_t cap = (size_t)(POLICY_PLAN_MEMBERS_MAX + 1) * 64 + 64;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = (size_t)snprintf(text, cap, "plan p messages=1/hour\n");
    for (unsigned i = 0; i <= POLICY_PLAN_MEMBERS_MAX; i++)
        len += (size_t)snprintf(text + len, cap - len,
                                "plan_user u%u p\nplan_network 10.%u.%u.%u/32 p\n", i, i >> 16,
                                (i >> 8) & 0xff, i & 0xff);
    struct policy_config c;
    size_t n = policy_config_load_buffer("test.conf", text, len, &c, &problems);
    free(text);
    assert_int_equal(n, 2);
    expect_problem(0, 2 + 2 * POLICY_PLAN_MEMBERS_MAX,
                   "plan_user: more than 100000 lines (POLICY_PLAN_MEMBERS_MAX)");
    expect_problem(1, 3 + 2 * POLICY_PLAN_MEMBERS_MAX,
                   "plan_network: more than 100000 lines (POLICY_PLAN_MEMBERS_MAX)");
    assert_int_equal(c.n_plan_users, POLICY_PLAN_MEMBERS_MAX);
    assert_int_equal(c.n_plan_networks, POLICY_PLAN_MEMBERS_MAX);
    assert_string_equal(plan_of_user(&c, "u99999"), "p");
    assert_string_equal(plan_of_user(&c, "u100000"), "-");
    assert_string_equal(plan_of(&c, "10.1.134.159"), "p"); /* 99999 */
    assert_string_equal(plan_of(&c, "10.1.134.160"), "-");
    policy_config_free(&c);
}

/* ---- files ---- */

static char tmpdir[64];

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void write_secret(const char *name, const char *text, mode_t mode)
{
    char path[256];
    write_file(name, text);
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    assert_int_equal(chmod(path, mode), 0);
}

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/clearmta-config-XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static size_t load_path(const char *name, struct policy_config *c)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return policy_config_load(path, c, &problems);
}

static void test_file_and_relative_users_file(void **state)
{
    (void)state;
    struct policy_config c;
    write_file("users", "# the staff\nalice\n  Bob   # trailing comment\n\r\npostmaster\n");
    char sub[128];
    snprintf(sub, sizeof sub, "%s/sub", tmpdir);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_file("sub/more", "carol\n");
    char text[512];
    snprintf(text, sizeof text, "domain example.test users-file users\n"
                                "domain example.test users-file sub/more\n"
                                "domain abs.test users-file %s/users\n", tmpdir);
    write_file("clearmta.conf", text);
    size_t n = load_path("clearmta.conf", &c);
    if (n != 0)
        fail_msg("%s:%u: %s", problems.items[0].file, problems.items[0].line,
                 problems.items[0].message);
    const struct policy_domain *d = domain(&c, "example.test");
    assert_int_equal(d->n_users, 4);
    assert_string_equal(d->users[0], "alice");
    assert_string_equal(d->users[1], "bob");
    assert_string_equal(d->users[2], "carol");
    assert_int_equal(domain(&c, "abs.test")->n_users, 3);
    policy_config_free(&c);
}

static void test_users_file_problems(void **state)
{
    (void)state;
    struct policy_config c;
    write_file("badusers", "alice\nbob carol\n\n../etc\nok\n");
    write_file("c2.conf", "max_errors 1\ndomain a.test users-file badusers\nmax_errors 2\n"
                          "domain b.test users-file missing\ndomain c.test users-file .\n");
    size_t n = load_path("c2.conf", &c);
    assert_int_equal(n, 5);
    char expect[256];
    snprintf(expect, sizeof expect, "%s/badusers", tmpdir);
    assert_string_equal(problems.items[0].file, expect);
    assert_int_equal(problems.items[0].line, 2);
    expect_contains(problems.items[0].message, "one user per line");
    assert_string_equal(problems.items[1].file, expect);
    assert_int_equal(problems.items[1].line, 4);
    assert_int_equal(problems.items[2].line, 3);
    expect_contains(problems.items[2].message, "already set on line 1");
    assert_int_equal(problems.items[3].line, 4);
    expect_contains(problems.items[3].message, "No such file");
    assert_int_equal(problems.items[4].line, 5);
    expect_contains(problems.items[4].message, "not a regular file");
    policy_config_free(&c);
}

/* openssl passwd -6 -salt aliceSalt0123456 alice-secret */
#define ALICE_HASH "$6$aliceSalt0123456$8QyOFYChiWIYio8PSFPLSWfKCx3Z29wp8dBaxfUweEfrldvqB2L7." \
                   "qJsadR1LMx5DxAodRN4sBR7B5lcsMnsF0"

static void test_users_file_auth(void **state)
{
    (void)state;
    struct policy_config c;
    write_secret("auth-users", "# AUTH users\nalice:" ALICE_HASH "\nbob:" ALICE_HASH
                               ":bob@example.test\n", 0640);
    write_file("auth.conf", "domain example.test users alice bob\nusers_file auth-users\n");
    size_t n = load_path("auth.conf", &c);
    if (n != 0)
        fail_msg("%s:%u: %s", problems.items[0].file, problems.items[0].line,
                 problems.items[0].message);
    char expect[256];
    snprintf(expect, sizeof expect, "%s/auth-users", tmpdir);
    assert_string_equal(c.users_file, expect);
    assert_non_null(c.users);
    assert_int_equal(policy_users_count(c.users), 2);
    assert_int_equal(policy_users_verify(c.users, "alice", "alice-secret"), POLICY_AUTH_OK);
    assert_true(policy_users_owns_sender(c.users, &c, "alice", "alice", "example.test"));
    policy_config_free(&c);
    assert_null(c.users);
}

/* With a users file, plan_user names one of its users: a typo would leave a customer on the
 * default plan unnoticed. */
static void test_plan_user_users_file(void **state)
{
    (void)state;
    struct policy_config c;
    write_secret("plan-users", "alice:" ALICE_HASH "\n", 0600);
    write_file("plan.conf", "plan p messages=1/hour\nplan_user ALICE p\nplan_user bob p\n"
                            "users_file plan-users\n");
    assert_int_equal(load_path("plan.conf", &c), 1);
    expect_problem(0, 3, "plan_user bob: no such user in users_file");
    policy_config_free(&c);
}

/* sendmail's load, as any local user: the AUTH users_file and a relayhost's auth= file are
 * never opened (missing here: the server's load reports both), the rest is read as always. */
static void test_client_load_opens_no_secret(void **state)
{
    (void)state;
    struct policy_config c;
    write_file("client-users", "alice\n");
    write_file("client.conf", "domain example.test users-file client-users\n"
                              "users_file missing-auth-users\n"
                              "relayhost [127.0.0.1]:25 tls=required auth=missing-auth\n"
                              "plan p messages=1/hour\nplan_user alice p\n"
                              "max_message_size 1000000\n");
    assert_int_equal(load_path("client.conf", &c), 2);
    expect_contains(problems.items[0].message, "cannot open");
    expect_contains(problems.items[1].message, "cannot open");
    policy_config_free(&c);
    char path[256];
    snprintf(path, sizeof path, "%s/client.conf", tmpdir);
    size_t n = policy_config_load_client(path, &c, &problems);
    if (n != 0)
        fail_msg("%s:%u: %s", problems.items[0].file, problems.items[0].line,
                 problems.items[0].message);
    assert_null(c.users);
    assert_int_equal(domain(&c, "example.test")->n_users, 1);
    assert_int_equal(c.max_message_size, 1000000);
    assert_string_equal(c.relayhost.auth_password, "");
    policy_config_free(&c);
}

static void test_users_file_auth_problems(void **state)
{
    (void)state;
    struct policy_config c;
    write_secret("auth-bad", "alice:" ALICE_HASH "\nbob:$1$md5$xxxxxxxxxxxxxxxxxxxxxx\n"
                             "carol\nalice:" ALICE_HASH "\n", 0600);
    write_file("auth-bad.conf", "max_errors 2\nusers_file auth-bad\nmax_errors 3\n"
                                "tls_cert x.pem\n");
    size_t n = load_path("auth-bad.conf", &c);
    assert_int_equal(n, 5);
    char expect[256];
    snprintf(expect, sizeof expect, "%s/auth-bad", tmpdir);
    /* users-file problems first (anchored at the users_file line), in their file order */
    assert_string_equal(problems.items[0].file, expect);
    assert_int_equal(problems.items[0].line, 2);
    expect_contains(problems.items[0].message, "not a supported crypt(3) hash");
    assert_null(strstr(problems.items[0].message, "xxxx")); /* never the hash */
    assert_int_equal(problems.items[1].line, 3);
    expect_contains(problems.items[1].message, "USER:HASH");
    assert_int_equal(problems.items[2].line, 4);
    expect_contains(problems.items[2].message, "already listed on line 1");
    assert_int_equal(problems.items[3].line, 3);
    expect_contains(problems.items[3].message, "already set on line 1");
    assert_int_equal(problems.items[4].line, 4);
    expect_contains(problems.items[4].message, "tls_key is not");
    /* the good lines are loaded all the same; c is freed whatever happened */
    assert_int_equal(policy_users_count(c.users), 1);
    policy_config_free(&c);

    write_file("auth-missing.conf", "users_file nowhere\n");
    n = load_path("auth-missing.conf", &c);
    assert_int_equal(n, 1);
    expect_contains(problems.items[0].message, "No such file");
    assert_null(c.users);
    policy_config_free(&c);
    expect_contains(load_one_problem("users_file", 1), "exactly one value");
}

/* The users file holds password hashes and decides who owns sender addresses: group or others
 * may not write it and others may not read it; the config file names what root opens: group
 * or others may not write it. Each refusal names the file, its mode and the chmod to run. */
static void test_open_modes_refused(void **state)
{
    (void)state;
    struct policy_config c;
    char path[256];
    static const mode_t users_bad[] = {0644, 0604, 0620, 0602};
    write_file("modes.conf", "domain example.test users alice\nusers_file modes-users\n");
    for (size_t i = 0; i < sizeof users_bad / sizeof users_bad[0]; i++) {
        write_secret("modes-users", "alice:" ALICE_HASH "\n", users_bad[i]);
        assert_int_equal(load_path("modes.conf", &c), 1);
        snprintf(path, sizeof path, "users_file '%s/modes-users': open to others (mode %04o",
                 tmpdir, (unsigned)users_bad[i]);
        expect_contains(problems.items[0].message, path);
        snprintf(path, sizeof path, "run: chmod 600 %s/modes-users", tmpdir);
        expect_contains(problems.items[0].message, path);
        assert_null(c.users);
        policy_config_free(&c);
    }
    write_secret("modes-users", "alice:" ALICE_HASH "\n", 0640);
    assert_int_equal(load_path("modes.conf", &c), 0);
    policy_config_free(&c);

    static const mode_t conf_bad[] = {0664, 0646, 0666};
    for (size_t i = 0; i < sizeof conf_bad / sizeof conf_bad[0]; i++) {
        write_secret("modes.conf", "domain example.test users alice\n", conf_bad[i]);
        assert_int_equal(load_path("modes.conf", &c), 1);
        snprintf(path, sizeof path, "run: chmod go-w %s/modes.conf", tmpdir);
        expect_contains(problems.items[0].message, path);
        expect_contains(problems.items[0].message, "group or others may write it");
        policy_config_free(&c);
    }
    write_secret("modes.conf", "domain example.test users alice\n", 0644);
    assert_int_equal(load_path("modes.conf", &c), 0);
    policy_config_free(&c);
}

/* The credentials file is relative to the config file and must not be open to others. */
static void test_relayhost_auth_file(void **state)
{
    (void)state;
    struct policy_config c;
    write_secret("relay-auth", "# provider account\n\nmailer@example.test:s3cret: with space\r\n",
                 0600);
    write_file("relay.conf", "relayhost [127.0.0.1]:2600 tls=required auth=relay-auth\n");
    size_t n = load_path("relay.conf", &c);
    if (n != 0)
        fail_msg("%s", problems.items[0].message);
    assert_true(c.relayhost.auth);
    assert_string_equal(c.relayhost.auth_user, "mailer@example.test");
    assert_string_equal(c.relayhost.auth_password, "s3cret: with space");
    assert_non_null(strstr(c.relayhost.auth_file, "/relay-auth"));
    policy_config_free(&c);
    assert_string_equal(c.relayhost.auth_password, ""); /* wiped */

    static const struct {
        const char *content;
        mode_t mode;
        const char *part;
    } bad[] = {
        {"u:p\n", 0644, "open to others"},
        {"u:p\n", 0620, "open to others"},
        {"no colon\n", 0600, "one line user:password"},
        {":nouser\n", 0600, "one line user:password"},
        {"nopass:\n", 0600, "one line user:password"},
        {"a:b\nc:d\n", 0600, "one line user:password"},
        {"# only a comment\n", 0600, "one line user:password"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_secret("relay-auth", bad[i].content, bad[i].mode);
        n = load_path("relay.conf", &c);
        assert_int_equal(n, 1);
        assert_int_equal(problems.items[0].line, 1);
        expect_contains(problems.items[0].message, bad[i].part);
        assert_false(c.relayhost.set);
        policy_config_free(&c);
    }
    write_secret("relay-auth", "u:p\n", 0640); /* a group of the mail system may read it */
    write_file("relay.conf", "relayhost [127.0.0.1]:2600 tls=none auth=relay-auth\n");
    n = load_path("relay.conf", &c);
    assert_int_equal(n, 1);
    expect_contains(problems.items[0].message, "password in clear");
    policy_config_free(&c);
}

static void test_missing_config_file(void **state)
{
    (void)state;
    struct policy_config c;
    size_t n = load_path("does-not-exist.conf", &c);
    assert_int_equal(n, 1);
    assert_int_equal(problems.items[0].line, 0);
    expect_contains(problems.items[0].message, "cannot open");
    /* c holds the defaults and can be freed */
    assert_int_equal(c.n_domains, 1);
    policy_config_free(&c);
    n = policy_config_load(tmpdir, &c, &problems);
    assert_int_equal(n, 1);
    expect_contains(problems.items[0].message, "not a regular file");
    policy_config_free(&c);
}

static void test_example_config(void **state)
{
    (void)state;
    struct policy_config c;
    size_t n = policy_config_load("examples/clearmta.conf", &c, &problems);
    if (n == 1 && problems.items[0].line == 0)
        skip(); /* run from elsewhere than the repository root */
    assert_int_equal(n, 0);
    const struct policy_domain *d = domain(&c, "example.test");
    assert_int_equal(d->n_users, 3);
    assert_int_equal(c.max_message_size, 10485760);
    assert_int_equal(c.max_recipients, 100);
    /* The four plans of the issue, nobody on them, limits otherwise off. */
    assert_int_equal(c.n_plans, 4);
    static const char *const names[] = {"trial", "standard", "premium", "professional"};
    static const uint64_t per_hour[] = {1000, 1500, 3000, 5000};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(c.plans[i].name, names[i]);
        assert_int_equal(c.plans[i].limits[0].metric, POLICY_PLAN_MESSAGES);
        assert_int_equal(c.plans[i].limits[0].limit, per_hour[i]);
        assert_int_equal(c.plans[i].limits[0].window, 3600);
    }
    assert_int_equal(c.plans[2].limits[1].window, 86400);
    assert_null(policy_plan_for_user(&c, "alice"));
    assert_int_equal(c.counters.kind, POLICY_COUNTERS_MEMORY);
    assert_false(c.greylist.on);
    assert_int_equal(c.max_messages_per_session, 0);
    policy_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_run_user),
        cmocka_unit_test(test_empty_and_comments_equal_defaults),
        cmocka_unit_test(test_comments_crlf_and_last_line),
        cmocka_unit_test(test_hostname),
        cmocka_unit_test(test_dirs_follow_data_dir),
        cmocka_unit_test(test_longest_paths),
        cmocka_unit_test(test_number_bounds),
        cmocka_unit_test(test_number_syntax),
        cmocka_unit_test(test_choices),
        cmocka_unit_test(test_unknown_and_duplicate),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_listen_max),
        cmocka_unit_test(test_listen_options),
        cmocka_unit_test(test_listen_http),
        cmocka_unit_test(test_http_local_users),
        cmocka_unit_test(test_tls_paths),
        cmocka_unit_test(test_domain_users),
        cmocka_unit_test(test_domain_replaces_default_localhost),
        cmocka_unit_test(test_domain_literals),
        cmocka_unit_test(test_domain_invalid),
        cmocka_unit_test(test_domain_catch_all_conflict),
        cmocka_unit_test(test_domain_lmtp),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_route_invalid),
        cmocka_unit_test(test_routes_max),
        cmocka_unit_test(test_relayhost),
        cmocka_unit_test(test_resolver_directive),
        cmocka_unit_test(test_retry_settings),
        cmocka_unit_test(test_limits_defaults),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_plan_invalid),
        cmocka_unit_test(test_plans_max),
        cmocka_unit_test(test_plan_against_globals),
        cmocka_unit_test(test_plan_user),
        cmocka_unit_test(test_plan_user_invalid),
        cmocka_unit_test(test_plan_network),
        cmocka_unit_test(test_plan_network_invalid),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_greylisting),
        cmocka_unit_test(test_stress),
        cmocka_unit_test(test_session_limits),
        cmocka_unit_test(test_limits_problems_in_order),
        cmocka_unit_test(test_plan_members_max),
        cmocka_unit_test(test_multiple_problems_in_order),
        cmocka_unit_test(test_problems_capped),
        cmocka_unit_test(test_overlong_lines),
        cmocka_unit_test(test_binary_junk),
        cmocka_unit_test(test_file_and_relative_users_file),
        cmocka_unit_test(test_users_file_problems),
        cmocka_unit_test(test_users_file_auth),
        cmocka_unit_test(test_users_file_auth_problems),
        cmocka_unit_test(test_plan_user_users_file),
        cmocka_unit_test(test_open_modes_refused),
        cmocka_unit_test(test_client_load_opens_no_secret),
        cmocka_unit_test(test_relayhost_auth_file),
        cmocka_unit_test(test_missing_config_file),
        cmocka_unit_test(test_example_config),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
