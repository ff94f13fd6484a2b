/* tests/unit/test_auth_ar_strip.c — removal of forged Authentication-Results (auth/ar_strip.c):
 * only fields of our authserv-id go (any case, comments and folding before it), folded fields
 * go whole, other ids and look-alike names stay, the body is never touched, LF line ends. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "auth/ar_strip.h"

static void expect_strip(const char *in, const char *out, size_t n_removed)
{
    char *buf = strdup(in);
    size_t removed = 99;
    size_t len = auth_ar_strip(buf, strlen(buf), "mx.example.test", &removed);
    if (len != strlen(out) || memcmp(buf, out, len) != 0)
        fail_msg("got '%.*s', want '%s'", (int)len, buf, out);
    assert_int_equal(removed, n_removed);
    free(buf);
}

static void test_ours_removed(void **state)
{
    (void)state;
    expect_strip("Authentication-Results: mx.example.test; spf=pass\r\nFrom: a@b\r\n\r\nx\r\n",
                 "From: a@b\r\n\r\nx\r\n", 1);
    expect_strip("From: a@b\r\nauthentication-results :  (c (nested\\)) ) MX.Example.Test;\r\n"
                 "\tdkim=pass header.d=b\r\n dmarc=pass\r\nTo: c@d\r\n\r\n",
                 "From: a@b\r\nTo: c@d\r\n\r\n", 1);
    expect_strip("Authentication-Results: mx.example.test 1; none\r\n"
                 "Authentication-Results: mx.example.test\r\n\r\n", "\r\n", 2);
    expect_strip("X: 1\nAuthentication-Results: mx.example.test; none\nY: 2\n\nbody\n",
                 "X: 1\nY: 2\n\nbody\n", 1);
    /* the authserv-id is a value (RFC 8601 §2.2, RFC 2045): a quoted-string claims it too */
    expect_strip("Authentication-Results: \"mx.example.test\"; spf=pass\r\nX: 1\r\n\r\n",
                 "X: 1\r\n\r\n", 1);
    expect_strip("Authentication-Results: (c) \"MX.example.\\test\" 1; dkim=pass\r\n\r\n",
                 "\r\n", 1);
}

static void test_others_kept(void **state)
{
    (void)state;
    const char *keep[] = {
        "Authentication-Results: other.example; spf=pass\r\n\r\n",
        "Authentication-Results: mx.example.test.evil; spf=pass\r\n\r\n",
        "Authentication-Results: sub.mx.example.test; spf=pass\r\n\r\n",
        "Authentication-Results-Original: mx.example.test; spf=pass\r\n\r\n",
        "X-Authentication-Results: mx.example.test; spf=pass\r\n\r\n",
        "Authentication-Results: (mx.example.test) other.example; spf=pass\r\n\r\n",
        /* in the body: not a header field */
        "Subject: s\r\n\r\nAuthentication-Results: mx.example.test; spf=pass\r\n",
        "\r\nAuthentication-Results: mx.example.test; spf=pass\r\n",
        "Authentication-Results:\r\n\r\n",
        "Authentication-Results: \"mx.example.test.evil\"; spf=pass\r\n\r\n",
        "Authentication-Results: \"\"; spf=pass\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        expect_strip(keep[i], keep[i], 0);
}

static void test_authserv_id(void **state)
{
    (void)state;
    char id[16];
    const char *v = " (a (b) c) mx.example.test; spf=pass";
    assert_int_equal(auth_ar_authserv_id(v, strlen(v), id, sizeof id), 15);
    assert_string_equal(id, "mx.example.test");
    v = " \r\n\tlonger.than.sixteen.example;";
    assert_int_equal(auth_ar_authserv_id(v, strlen(v), id, sizeof id), 15); /* cut */
    v = " mx.example.test\x01x; spf=pass"; /* a control character ends the id */
    assert_int_equal(auth_ar_authserv_id(v, strlen(v), id, sizeof id), 15);
    char nul[] = "Authentication-Results: mx.example.test\0x; spf=pass\r\n\r\n";
    size_t removed = 0;
    assert_int_equal(auth_ar_strip(nul, sizeof nul - 1, "mx.example.test", &removed), 2);
    assert_int_equal(removed, 1); /* claims our id, then garbage: it goes */
    v = " \"mx.exa\\\"mple\"; spf=pass"; /* quoted-pair unescaped */
    assert_int_equal(auth_ar_authserv_id(v, strlen(v), id, sizeof id), 11);
    assert_string_equal(id, "mx.exa\"mple");
    v = " (unterminated comment";
    assert_int_equal(auth_ar_authserv_id(v, strlen(v), id, sizeof id), 0);
    assert_string_equal(id, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ours_removed),
        cmocka_unit_test(test_others_kept),
        cmocka_unit_test(test_authserv_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
