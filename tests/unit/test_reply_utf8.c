/* tests/unit/test_reply_utf8.c — the UTF-8 decoder against RFC 3629 §4's table: every boundary
 * of every row, overlong forms, surrogates, beyond U+10FFFF, truncation, code points, and the
 * byte-by-byte resynchronisation that DSN text cleaning relies on. */
#include "unit.h"

#include <string.h>

#include "reply/utf8.h"

static size_t len_of(const char *bytes, size_t n, uint32_t *cp)
{
    return reply_utf8_char((const unsigned char *)bytes, n, cp);
}

static void test_well_formed_boundaries(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t n;
        uint32_t cp;
    } ok[] = {
        {"\x00", 1, 0x0},          {"\x7f", 1, 0x7f},           {"\xc2\x80", 2, 0x80},
        {"\xdf\xbf", 2, 0x7ff},    {"\xe0\xa0\x80", 3, 0x800},  {"\xed\x9f\xbf", 3, 0xd7ff},
        {"\xee\x80\x80", 3, 0xe000}, {"\xef\xbf\xbf", 3, 0xffff},
        {"\xf0\x90\x80\x80", 4, 0x10000}, {"\xf4\x8f\xbf\xbf", 4, 0x10ffff},
        {"\xc3\xa9", 2, 0xe9},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint32_t cp = 0xffffffffu;
        assert_int_equal(len_of(ok[i].bytes, ok[i].n, &cp), ok[i].n);
        assert_int_equal(cp, ok[i].cp);
        assert_true(reply_utf8_valid((const unsigned char *)ok[i].bytes, ok[i].n));
    }
}

static void test_ill_formed(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t n;
    } bad[] = {
        {"\x80", 1},             {"\xbf", 1},             {"\xc0\x80", 2}, /* overlong NUL */
        {"\xc1\xbf", 2},         {"\xe0\x9f\xbf", 3},     {"\xed\xa0\x80", 3}, /* surrogate */
        {"\xf0\x8f\xbf\xbf", 4}, {"\xf4\x90\x80\x80", 4}, {"\xf5\x80\x80\x80", 4},
        {"\xff", 1},             {"\xc3\x28", 2},         {"\xe2\x82", 2}, /* truncated */
        {"\xf0\x9f\x98", 3},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t cp = 7;
        assert_int_equal(len_of(bad[i].bytes, bad[i].n, &cp), 0);
        assert_int_equal(cp, 7); /* untouched on failure */
        assert_false(reply_utf8_valid((const unsigned char *)bad[i].bytes, bad[i].n));
    }
    assert_int_equal(reply_utf8_char((const unsigned char *)"a", 0, NULL), 0);
}

static void test_strings(void **state)
{
    (void)state;
    const char *mixed = "J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x98\x80";
    assert_true(reply_utf8_valid((const unsigned char *)mixed, strlen(mixed)));
    assert_true(reply_utf8_valid((const unsigned char *)"", 0));
    /* Valid up to the last byte, which starts a sequence that is cut. */
    assert_false(reply_utf8_valid((const unsigned char *)mixed, strlen(mixed) - 1));
}

/* Every shortest-form violation: a value that fits in fewer octets never decodes (RFC 3629 §3
 * "MUST NOT"), whatever the lead byte. */
static void test_overlong(void **state)
{
    (void)state;
    static const char *const overlong[] = {
        "\xc0\x80", "\xc0\xaf", "\xc1\x80", "\xc1\xbf",                 /* 2 octets for < 0x80 */
        "\xe0\x80\x80", "\xe0\x80\xaf", "\xe0\x9f\xbf",                 /* 3 for < 0x800 */
        "\xf0\x80\x80\x80", "\xf0\x80\x80\xaf", "\xf0\x8f\xbf\xbf",     /* 4 for < 0x10000 */
    };
    for (size_t i = 0; i < sizeof overlong / sizeof overlong[0]; i++) {
        const char *b = overlong[i];
        assert_int_equal(len_of(b, strlen(b), NULL), 0);
    }
}

/* UTF-16 surrogates U+D800..U+DFFF are not characters; both ends and the middle. */
static void test_surrogates(void **state)
{
    (void)state;
    static const char *const surrogate[] = {
        "\xed\xa0\x80", "\xed\xad\xbf", "\xed\xae\x80", "\xed\xbf\xbf",
        "\xed\xa0\x80\xed\xb0\x80", /* a CESU-8 pair */
    };
    for (size_t i = 0; i < sizeof surrogate / sizeof surrogate[0]; i++) {
        const char *b = surrogate[i];
        assert_int_equal(len_of(b, strlen(b), NULL), 0);
    }
    uint32_t cp = 0;
    assert_int_equal(len_of("\xed\x9f\xbf", 3, &cp), 3); /* U+D7FF, just below */
    assert_int_equal(cp, 0xd7ff);
    assert_int_equal(len_of("\xee\x80\x80", 3, &cp), 3); /* U+E000, just above */
    assert_int_equal(cp, 0xe000);
}

/* Above U+10FFFF: F4 with a second octet past 8F, leads F5..F7 (4 octets), and the old 5- and
 * 6-octet forms (F8..FD), FE and FF. */
static void test_beyond_unicode(void **state)
{
    (void)state;
    static const char *const beyond[] = {
        "\xf4\x90\x80\x80", "\xf4\xbf\xbf\xbf", "\xf5\x80\x80\x80", "\xf7\xbf\xbf\xbf",
        "\xf8\x88\x80\x80\x80", "\xfb\xbf\xbf\xbf\xbf", "\xfc\x84\x80\x80\x80\x80",
        "\xfd\xbf\xbf\xbf\xbf\xbf", "\xfe", "\xff",
    };
    for (size_t i = 0; i < sizeof beyond / sizeof beyond[0]; i++) {
        const char *b = beyond[i];
        assert_int_equal(len_of(b, strlen(b), NULL), 0);
    }
}

/* A sequence cut short, by the end of the buffer or by a byte that is no continuation, fails
 * at every length; avail bounds the read even when more bytes follow in memory. */
static void test_truncated(void **state)
{
    (void)state;
    static const char *const whole[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) {
        size_t n = strlen(whole[i]);
        for (size_t cut = 1; cut < n; cut++) {
            assert_int_equal(len_of(whole[i], cut, NULL), 0);
            char broken[8];
            memcpy(broken, whole[i], n);
            broken[cut] = 'A'; /* the sequence stops early inside a longer buffer */
            assert_int_equal(len_of(broken, n, NULL), 0);
        }
        assert_int_equal(len_of(whole[i], n, NULL), n);
    }
}

/* How deliver/dsn.c walks hostile text: a failed decode skips one byte and decoding resumes at
 * the next, so valid characters after garbage survive, and C1 controls (U+0080..U+009F) come
 * back as their code points so the caller can drop them. */
static void test_resync(void **state)
{
    (void)state;
    const char *text = "a\xc3\x28\xe2\x82\xac\xc2\x85\xed\xa0\x80z";
    const unsigned char *s = (const unsigned char *)text;
    size_t len = strlen(text);
    uint32_t seen[16];
    size_t n_seen = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t k = reply_utf8_char(s + i, len - i, &cp);
        seen[n_seen++] = k == 0 ? 0xfffd : cp;
        i += k ? k : 1;
    }
    static const uint32_t want[] = {'a', 0xfffd, '(', 0x20ac, 0x85, 0xfffd, 0xfffd, 0xfffd, 'z'};
    assert_int_equal(n_seen, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n_seen; i++)
        assert_int_equal(seen[i], want[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_well_formed_boundaries),
        cmocka_unit_test(test_ill_formed),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_overlong),
        cmocka_unit_test(test_surrogates),
        cmocka_unit_test(test_beyond_unicode),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_resync),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
