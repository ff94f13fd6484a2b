/* tests/unit/test_auth_spf_record.c — SPF record syntax (auth/spf_record.c): the version
 * check, each mechanism with qualifiers, domain-specs and dual CIDR lengths, modifiers, and
 * every malformed form that must give permerror. */
#include "unit.h"

#include <string.h>

#include "auth/spf_record.h"

static struct auth_spf_record parse_ok(const char *text)
{
    struct auth_spf_record r;
    enum auth_err e = auth_spf_record_parse(text, strlen(text), &r);
    if (e != AUTH_OK)
        fail_msg("'%s': %s", text, auth_strerror(e));
    return r;
}

static void parse_bad(const char *text)
{
    struct auth_spf_record r;
    enum auth_err e = auth_spf_record_parse(text, strlen(text), &r);
    auth_spf_record_free(&r);
    if (e != AUTH_ERR_SYNTAX)
        fail_msg("'%s' parsed (%s)", text, auth_strerror(e));
}

static void test_version(void **state)
{
    (void)state;
    assert_true(auth_spf_is_record("v=spf1", 6));
    assert_true(auth_spf_is_record("V=SpF1 -all", 11));
    assert_false(auth_spf_is_record("v=spf10", 7));
    assert_false(auth_spf_is_record("v=spf", 5));
    assert_false(auth_spf_is_record(" v=spf1", 7));
}

static void test_mechanisms(void **state)
{
    (void)state;
    struct auth_spf_record r = parse_ok("v=spf1 ip4:192.0.2.0/24 -ip6:2001:db8::/32 ~a "
                                        "?mx:example.com/24//64 ptr include:_spf.example.com "
                                        "exists:%{i}.bl.example.org a//0 +all "
                                        "redirect=_spf.example.net exp=why.%{d} other=x");
    assert_int_equal(r.n, 9);
    assert_int_equal(r.terms[0].kind, AUTH_SPF_IP4);
    assert_int_equal(r.terms[0].cidr4, 24);
    assert_int_equal(r.terms[0].ip[0], 192);
    assert_int_equal(r.terms[1].kind, AUTH_SPF_IP6);
    assert_int_equal(r.terms[1].qualifier, AUTH_SPF_FAIL);
    assert_int_equal(r.terms[1].cidr6, 32);
    assert_int_equal(r.terms[2].qualifier, AUTH_SPF_SOFTFAIL);
    assert_null(r.terms[2].spec);
    assert_int_equal(r.terms[3].qualifier, AUTH_SPF_NEUTRAL);
    assert_int_equal(r.terms[3].cidr4, 24);
    assert_int_equal(r.terms[3].cidr6, 64);
    assert_int_equal(r.terms[3].spec_len, strlen("example.com"));
    assert_int_equal(r.terms[4].kind, AUTH_SPF_PTR);
    assert_int_equal(r.terms[5].kind, AUTH_SPF_INCLUDE);
    assert_int_equal(r.terms[6].kind, AUTH_SPF_EXISTS);
    assert_int_equal(r.terms[7].cidr4, 32);
    assert_int_equal(r.terms[7].cidr6, 0);
    assert_int_equal(r.terms[8].kind, AUTH_SPF_ALL);
    assert_true(r.has_redirect);
    assert_true(r.has_exp);
    assert_int_equal(r.exp.spec_len, strlen("why.%{d}"));
    auth_spf_record_free(&r);
    r = parse_ok("v=spf1");
    assert_int_equal(r.n, 0);
    auth_spf_record_free(&r);
    r = parse_ok("v=spf1   -all   ");
    assert_int_equal(r.n, 1);
    auth_spf_record_free(&r);
}

static void test_malformed(void **state)
{
    (void)state;
    parse_bad("v=spf1 foo");
    parse_bad("v=spf1 foo:bar");
    parse_bad("v=spf1 all:x");
    parse_bad("v=spf1 include");
    parse_bad("v=spf1 include:");
    parse_bad("v=spf1 ip4:192.0.2.300");
    parse_bad("v=spf1 ip4:192.0.2.0/33");
    parse_bad("v=spf1 ip4:192.0.2.0/");
    parse_bad("v=spf1 ip6:2001:db8::/129");
    parse_bad("v=spf1 a/33");
    parse_bad("v=spf1 a//129");
    parse_bad("v=spf1 a/024");
    parse_bad("v=spf1 a:example.123");
    parse_bad("v=spf1 a:foo-");
    parse_bad("v=spf1 exists:%{x}.example.com");
    parse_bad("v=spf1 exists:%{c}.example.com"); /* c only in explanations */
    parse_bad("v=spf1 exists:%{l0r+-}a.%{o}"); /* found by fuzz_spf_record */
    parse_bad("v=spf1 exists:%{d00}.example.com");
    parse_bad("v=spf1 redirect=a.example redirect=b.example");
    parse_bad("v=spf1 exp=a.example exp=b.example");
    parse_bad("v=spf1 other=%");
    parse_bad("v=spf1 -");
    parse_bad("v=spf10 -all");
    struct auth_spf_record r;
    assert_int_equal(auth_spf_record_parse("v=spf1 a\0b", 10, &r), AUTH_ERR_SYNTAX);
    auth_spf_record_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_mechanisms),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
