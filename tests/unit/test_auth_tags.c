/* tests/unit/test_auth_tags.c — the tag=value list parser (auth/tags.c): RFC 6376 §3.2's
 * syntax with folding whitespace, empty values, a final ';', and every malformed form:
 * duplicate names, bad names, 8-bit and control octets, AUTH_TAGS_MAX at limit and limit + 1. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "auth/tags.h"

static void parse_ok(const char *text, struct auth_tags *t)
{
    assert_int_equal(auth_tags_parse(text, strlen(text), t), AUTH_OK);
}

static void parse_err(const char *text, enum auth_err want)
{
    struct auth_tags t;
    assert_int_equal(auth_tags_parse(text, strlen(text), &t), want);
}

static void test_valid(void **state)
{
    (void)state;
    struct auth_tags t;
    parse_ok(" v=1; a=rsa-sha256;\r\n\tb=abc\r\n def ;p=;x_1 = 2 ;", &t);
    assert_int_equal(t.n, 5);
    assert_true(auth_tag_is(auth_tags_get(&t, "v"), "1"));
    assert_true(auth_tag_is(auth_tags_get(&t, "a"), "rsa-sha256"));
    const struct auth_tag *b = auth_tags_get(&t, "b");
    assert_int_equal(b->value_len, strlen("abc\r\n def"));
    char out[16];
    assert_int_equal(auth_tag_squeeze(b, out, sizeof out), 6);
    assert_string_equal(out, "abcdef");
    assert_int_equal(auth_tag_squeeze(b, out, 6), 0); /* does not fit with its NUL */
    assert_int_equal(auth_tags_get(&t, "p")->value_len, 0);
    assert_true(auth_tag_is(auth_tags_get(&t, "x_1"), "2"));
    assert_null(auth_tags_get(&t, "V")); /* names are case-sensitive */
    assert_null(auth_tags_get(&t, "x"));
    parse_ok("", &t);
    assert_int_equal(t.n, 0);
    parse_ok("  \r\n ", &t);
    assert_int_equal(t.n, 0);
    parse_ok("a=b", &t);
    assert_int_equal(t.n, 1);
    parse_ok("a=", &t);
    assert_int_equal(t.n, 1);
}

static void test_invalid(void **state)
{
    (void)state;
    parse_err("a=1; a=2", AUTH_ERR_SYNTAX);
    parse_err("=1", AUTH_ERR_SYNTAX);
    parse_err("1a=1", AUTH_ERR_SYNTAX);
    parse_err("a-b=1", AUTH_ERR_SYNTAX);
    parse_err("a", AUTH_ERR_SYNTAX);
    parse_err("a=1;;b=2", AUTH_ERR_SYNTAX);
    parse_err("a=caf\xc3\xa9", AUTH_ERR_SYNTAX);
    parse_err("a=x\x01y", AUTH_ERR_SYNTAX);
    parse_err("a b=1", AUTH_ERR_SYNTAX);
    struct auth_tags t;
    assert_int_equal(auth_tags_parse("a=1\0b=2", 7, &t), AUTH_ERR_SYNTAX);
}

static void test_limit(void **state)
{
    (void)state;
    char text[1024];
    size_t n = 0;
    for (unsigned i = 0; i < AUTH_TAGS_MAX; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "t%u=%u;", i, i);
    struct auth_tags t;
    assert_int_equal(auth_tags_parse(text, n, &t), AUTH_OK);
    assert_int_equal(t.n, AUTH_TAGS_MAX);
    n += (size_t)snprintf(text + n, sizeof text - n, "one=more");
    assert_int_equal(auth_tags_parse(text, n, &t), AUTH_ERR_TOO_BIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
