/* tests/unit/test_smtp_utf8.c — the UTF-8 decoder against RFC 3629 §4's table: every boundary
 * of every row, overlong forms, surrogates, beyond U+10FFFF, truncation, code points. */
#include "unit.h"

#include <string.h>

#include "smtp/utf8.h"

static size_t len_of(const char *bytes, size_t n, uint32_t *cp)
{
    return smtp_utf8_char((const unsigned char *)bytes, n, cp);
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
        assert_true(smtp_utf8_valid((const unsigned char *)ok[i].bytes, ok[i].n));
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
        assert_false(smtp_utf8_valid((const unsigned char *)bad[i].bytes, bad[i].n));
    }
    assert_int_equal(smtp_utf8_char((const unsigned char *)"a", 0, NULL), 0);
}

static void test_strings(void **state)
{
    (void)state;
    const char *mixed = "J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x98\x80";
    assert_true(smtp_utf8_valid((const unsigned char *)mixed, strlen(mixed)));
    assert_true(smtp_utf8_valid((const unsigned char *)"", 0));
    /* Valid up to the last byte, which starts a sequence that is cut. */
    assert_false(smtp_utf8_valid((const unsigned char *)mixed, strlen(mixed) - 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_well_formed_boundaries),
        cmocka_unit_test(test_ill_formed),
        cmocka_unit_test(test_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
