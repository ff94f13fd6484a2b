/* tests/unit/test_auth_spf.c — SPF evaluation (auth/spf.c) driven by a table standing in for
 * DNS: every mechanism, include and redirect, exp=, the 10-term and 2-void limits, temperror
 * and the HELO identity; the evaluator asks for one look-up at a time and is re-run. */
#include "unit.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/spf.h"

struct rr {
    const char *name;
    enum auth_dns_type type;
    enum auth_dns_status st;
    const char *data[4];
};

static const struct rr zone[] = {
    {"example.com", AUTH_DNS_TXT, AUTH_DNS_OK,
     {"v=spf1 ip4:192.0.2.0/24 include:inc.example.com a:host.example.com mx "
      "ptr:ptr.example.com exists:%{i}.ex.example.com -all exp=exp.example.com"}},
    {"inc.example.com", AUTH_DNS_TXT, AUTH_DNS_OK, {"v=spf1 ip6:2001:db8::/32 -all"}},
    {"host.example.com", AUTH_DNS_A, AUTH_DNS_OK, {"198.51.100.7"}},
    {"example.com", AUTH_DNS_MX, AUTH_DNS_OK, {"10 mx.example.com"}},
    {"mx.example.com", AUTH_DNS_A, AUTH_DNS_OK, {"198.51.100.25"}},
    {"9.113.0.203.in-addr.arpa", AUTH_DNS_PTR, AUTH_DNS_OK, {"h.ptr.example.com"}},
    {"h.ptr.example.com", AUTH_DNS_A, AUTH_DNS_OK, {"203.0.113.9"}},
    {"10.1.1.1.ex.example.com", AUTH_DNS_A, AUTH_DNS_OK, {"127.0.0.2"}},
    {"exp.example.com", AUTH_DNS_TXT, AUTH_DNS_OK, {"%{i} is not one of %{d}'s hosts"}},
    {"redir.example", AUTH_DNS_TXT, AUTH_DNS_OK, {"v=spf1 redirect=example.com"}},
    {"two.example", AUTH_DNS_TXT, AUTH_DNS_OK, {"v=spf1 -all", "v=spf1 +all"}},
    {"bad.example", AUTH_DNS_TXT, AUTH_DNS_OK, {"v=spf1 frobnicate -all"}},
    {"servfail.example", AUTH_DNS_TXT, AUTH_DNS_TEMPFAIL, {NULL}},
    {"voids.example", AUTH_DNS_TXT, AUTH_DNS_OK,
     {"v=spf1 a:n1.voids.example a:n2.voids.example a:n3.voids.example +all"}},
    {"many.example", AUTH_DNS_TXT, AUTH_DNS_OK,
     {"v=spf1 a a a a a a a a a a a +all"}},
    {"many.example", AUTH_DNS_A, AUTH_DNS_OK, {"192.0.2.200"}},
    {"helo.example", AUTH_DNS_TXT, AUTH_DNS_OK, {"v=spf1 ip4:10.9.9.9 ~all"}},
    {"incnone.example", AUTH_DNS_TXT, AUTH_DNS_OK, {"v=spf1 include:nothing.example -all"}},
};

static void dns(struct auth_spf *s, const char *name, enum auth_dns_type type)
{
    for (size_t i = 0; i < sizeof zone / sizeof zone[0]; i++) {
        if (zone[i].type == type && strcasecmp(zone[i].name, name) == 0) {
            size_t n = 0, lens[4];
            while (n < 4 && zone[i].data[n]) {
                lens[n] = strlen(zone[i].data[n]);
                n++;
            }
            auth_spf_answer(s, name, type, zone[i].st, zone[i].data, lens, n);
            return;
        }
    }
    auth_spf_answer(s, name, type, AUTH_DNS_NXDOMAIN, NULL, NULL, 0);
}

static enum auth_spf_result check(const char *ip, const char *from, char *exp, size_t cap)
{
    struct auth_spf *s = auth_spf_new(ip, "mail.example.net", from, "mx.test", 0);
    assert_non_null(s);
    const char *name;
    enum auth_dns_type type;
    unsigned lookups = 0;
    while (auth_spf_run(s, &name, &type) == AUTH_SPF_NEED) {
        assert_true(++lookups < 100);
        dns(s, name, type);
    }
    enum auth_spf_result r = auth_spf_result(s);
    if (exp != NULL)
        snprintf(exp, cap, "%s", auth_spf_explanation(s));
    auth_spf_free(s);
    return r;
}

static void test_mechanisms(void **state)
{
    (void)state;
    char exp[256];
    assert_int_equal(check("192.0.2.55", "a@example.com", NULL, 0), AUTH_SPF_PASS);
    assert_int_equal(check("2001:db8::1", "a@example.com", NULL, 0), AUTH_SPF_PASS);
    assert_int_equal(check("198.51.100.7", "a@example.com", NULL, 0), AUTH_SPF_PASS);
    assert_int_equal(check("198.51.100.25", "a@example.com", NULL, 0), AUTH_SPF_PASS);
    assert_int_equal(check("203.0.113.9", "a@example.com", NULL, 0), AUTH_SPF_PASS);
    assert_int_equal(check("10.1.1.1", "a@example.com", NULL, 0), AUTH_SPF_PASS);
    assert_int_equal(check("::ffff:192.0.2.1", "a@example.com", NULL, 0), AUTH_SPF_PASS);
    assert_int_equal(check("10.1.1.2", "a@example.com", exp, sizeof exp), AUTH_SPF_FAIL);
    assert_string_equal(exp, "10.1.1.2 is not one of example.com's hosts");
    assert_int_equal(check("10.1.1.2", "a@redir.example", exp, sizeof exp), AUTH_SPF_FAIL);
    assert_string_equal(exp, "10.1.1.2 is not one of example.com's hosts");
}

static void test_errors_and_limits(void **state)
{
    (void)state;
    assert_int_equal(check("10.0.0.1", "a@two.example", NULL, 0), AUTH_SPF_PERMERROR);
    assert_int_equal(check("10.0.0.1", "a@bad.example", NULL, 0), AUTH_SPF_PERMERROR);
    assert_int_equal(check("10.0.0.1", "a@servfail.example", NULL, 0), AUTH_SPF_TEMPERROR);
    assert_int_equal(check("10.0.0.1", "a@nowhere.example", NULL, 0), AUTH_SPF_NONE);
    assert_int_equal(check("10.0.0.1", "a@voids.example", NULL, 0), AUTH_SPF_PERMERROR);
    assert_int_equal(check("10.0.0.1", "a@many.example", NULL, 0), AUTH_SPF_PERMERROR);
    assert_int_equal(check("10.0.0.1", "a@incnone.example", NULL, 0), AUTH_SPF_PERMERROR);
    assert_int_equal(check("10.0.0.1", "a@nolabel", NULL, 0), AUTH_SPF_NONE);
    assert_null(auth_spf_new("not-an-ip", "h", "a@b.c", NULL, 0));
}

static void test_helo_identity(void **state)
{
    (void)state;
    struct auth_spf *s = auth_spf_new("10.9.9.9", "helo.example", "", NULL, 0);
    const char *name;
    enum auth_dns_type type;
    while (auth_spf_run(s, &name, &type) == AUTH_SPF_NEED)
        dns(s, name, type);
    assert_int_equal(auth_spf_result(s), AUTH_SPF_PASS);
    assert_string_equal(auth_spf_domain(s), "helo.example");
    assert_string_equal(auth_spf_result_name(auth_spf_result(s)), "pass");
    auth_spf_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mechanisms),
        cmocka_unit_test(test_errors_and_limits),
        cmocka_unit_test(test_helo_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
