/* tests/unit/test_base_array.c — growing arrays: the first allocation, doubling, room already
 * there, a need beyond one doubling, and sizes that would overflow (nothing changes). */
#include "unit.h"

#include <stdint.h>
#include <stdlib.h>

#include "base/array.h"

static void test_first_and_doubling(void **state)
{
    (void)state;
    int *items = NULL;
    size_t cap = 0;
    assert_int_equal(base_array_reserve((void **)&items, &cap, 1, sizeof *items, 4), BASE_OK);
    assert_non_null(items);
    assert_int_equal(cap, 4);
    for (size_t i = 0; i < 4; i++)
        items[i] = (int)i;
    assert_int_equal(base_array_reserve((void **)&items, &cap, 4, sizeof *items, 4), BASE_OK);
    assert_int_equal(cap, 4); /* room enough: nothing moves */
    assert_int_equal(base_array_reserve((void **)&items, &cap, 5, sizeof *items, 4), BASE_OK);
    assert_int_equal(cap, 8);
    assert_int_equal(items[3], 3); /* kept across the realloc */
    assert_int_equal(base_array_reserve((void **)&items, &cap, 100, sizeof *items, 4), BASE_OK);
    assert_int_equal(cap, 128);
    free(items);

    items = NULL;
    cap = 0;
    assert_int_equal(base_array_reserve((void **)&items, &cap, 1, sizeof *items, 0), BASE_OK);
    assert_int_equal(cap, 1); /* a first of 0 counts as 1 */
    free(items);
}

static void test_overflow_changes_nothing(void **state)
{
    (void)state;
    char *items = malloc(8);
    assert_non_null(items);
    size_t cap = 8;
    assert_int_equal(base_array_reserve((void **)&items, &cap, SIZE_MAX, 1, 8), BASE_ERR_NOMEM);
    assert_int_equal(cap, 8);
    assert_int_equal(base_array_reserve((void **)&items, &cap, SIZE_MAX / 16 + 1, 32, 8),
                     BASE_ERR_NOMEM);
    assert_int_equal(cap, 8);
    assert_non_null(items); /* still the caller's */
    free(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_and_doubling),
        cmocka_unit_test(test_overflow_changes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
