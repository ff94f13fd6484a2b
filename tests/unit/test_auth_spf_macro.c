/* tests/unit/test_auth_spf_macro.c — SPF macro expansion (auth/spf_macro.c) against the
 * examples of RFC 7208 §7.4, plus escapes, URL-encoding, %{p} on demand and malformed forms. */
#include "unit.h"

#include <string.h>

#include "auth/spf_macro.h"

static const struct auth_spf_macro_values v4 = {
    .s = "strong-bad@email.example.com", .l = "strong-bad", .o = "email.example.com",
    .d = "email.example.com", .i = "192.0.2.3", .c = "192.0.2.3", .p = "unknown",
    .v = "in-addr", .h = "mx.example.org", .r = "mx.example.net", .t = 1700000000};

static void expect(const struct auth_spf_macro_values *v, const char *in, bool exp,
                   const char *want)
{
    char out[512];
    size_t n = 0;
    bool needs_p = false;
    assert_int_equal(auth_spf_macro_expand(in, strlen(in), v, exp, out, sizeof out, &n,
                                           &needs_p), AUTH_OK);
    assert_false(needs_p);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void expect_err(const char *in, bool exp)
{
    char out[512];
    size_t n = 0;
    bool needs_p = false;
    assert_int_equal(auth_spf_macro_expand(in, strlen(in), &v4, exp, out, sizeof out, &n,
                                           &needs_p), AUTH_ERR_SYNTAX);
}

static void test_rfc7208_examples(void **state)
{
    (void)state;
    expect(&v4, "%{s}", false, "strong-bad@email.example.com");
    expect(&v4, "%{o}", false, "email.example.com");
    expect(&v4, "%{d}", false, "email.example.com");
    expect(&v4, "%{d4}", false, "email.example.com");
    expect(&v4, "%{d3}", false, "email.example.com");
    expect(&v4, "%{d2}", false, "example.com");
    expect(&v4, "%{d1}", false, "com");
    expect(&v4, "%{dr}", false, "com.example.email");
    expect(&v4, "%{d2r}", false, "example.email");
    expect(&v4, "%{l}", false, "strong-bad");
    expect(&v4, "%{l-}", false, "strong.bad");
    expect(&v4, "%{lr}", false, "strong-bad");
    expect(&v4, "%{lr-}", false, "bad.strong");
    expect(&v4, "%{l1r-}", false, "strong");
    expect(&v4, "%{ir}.%{v}._spf.%{d2}", false, "3.2.0.192.in-addr._spf.example.com");
    expect(&v4, "%{lr-}.lp._spf.%{d2}", false, "bad.strong.lp._spf.example.com");
    expect(&v4, "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", false,
           "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
    expect(&v4, "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", false,
           "3.2.0.192.in-addr.strong.lp._spf.example.com");
    expect(&v4, "%{d2}.trusted-domains.example.net", false,
           "example.com.trusted-domains.example.net");
    struct auth_spf_macro_values v6 = v4;
    v6.i = "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1"; /* 2001:db8::cb01 */
    v6.v = "ip6";
    expect(&v6, "%{ir}.%{v}._spf.%{d2}", false,
           "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
}

static void test_escapes_and_exp(void **state)
{
    (void)state;
    expect(&v4, "a%%b%_c%-d", false, "a%b c%20d");
    expect(&v4, "%{S}", false, "strong-bad%40email.example.com");
    expect(&v4, "%{c} %{r} %{t}", true, "192.0.2.3 mx.example.net 1700000000");
    expect(&v4, "%{d5}", false, "email.example.com"); /* more parts than there are */
    expect_err("%{c}", false);
    expect_err("%{t}", false);
    expect_err("%{d0}", false);
    expect_err("%{x}", false);
    expect_err("%{d", false);
    expect_err("%", false);
    expect_err("%x", false);
    expect_err("%{d2r!}", false);
}

static void test_p_on_demand_and_room(void **state)
{
    (void)state;
    struct auth_spf_macro_values v = v4;
    v.p = NULL;
    char out[8];
    size_t n = 0;
    bool needs_p = false;
    assert_int_equal(auth_spf_macro_expand("x.%{p}", 6, &v, false, out, sizeof out, &n,
                                           &needs_p), AUTH_OK);
    assert_true(needs_p);
    assert_int_equal(auth_spf_macro_expand("%{d}", 4, &v4, false, out, sizeof out, &n,
                                           &needs_p), AUTH_ERR_TOO_BIG);
    assert_int_equal(auth_spf_macro_expand("1234567", 7, &v4, false, out, sizeof out, &n,
                                           &needs_p), AUTH_OK);
    assert_int_equal(auth_spf_macro_expand("12345678", 8, &v4, false, out, sizeof out, &n,
                                           &needs_p), AUTH_ERR_TOO_BIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7208_examples),
        cmocka_unit_test(test_escapes_and_exp),
        cmocka_unit_test(test_p_on_demand_and_room),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
