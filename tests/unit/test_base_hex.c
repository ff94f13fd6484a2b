/* tests/unit/test_base_hex.c — hex digit values: every byte value, both cases, and the
 * characters around the digit ranges that a careless range check would let through. */
#include "unit.h"

#include "base/hex.h"

static void test_digits(void **state)
{
    (void)state;
    const char *upper = "0123456789ABCDEF", *lower = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        assert_int_equal(base_hex_value(upper[i]), i);
        assert_int_equal(base_hex_value(lower[i]), i);
    }
}

static void test_non_digits(void **state)
{
    (void)state;
    int digits = 0;
    for (int c = -128; c < 128; c++) {
        int v = base_hex_value((char)c);
        assert_true(v >= -1 && v <= 15);
        digits += v >= 0;
    }
    assert_int_equal(digits, 22); /* 0-9, A-F, a-f and nothing else */
    const char *near = "/:@G`g+x \xff";
    for (const char *p = near; *p != '\0'; p++)
        assert_int_equal(base_hex_value(*p), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digits),
        cmocka_unit_test(test_non_digits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
