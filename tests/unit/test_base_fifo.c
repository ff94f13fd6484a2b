/* tests/unit/test_base_fifo.c — the intrusive FIFO: order, pop and peek on empty, append of
 * one list to another (empty on either side), reuse after a list became empty. */
#include "unit.h"

#include "base/fifo.h"

struct item {
    int value;
    struct base_fifo_node node; /* not first: BASE_CONTAINER_OF must subtract the offset */
};

static int value_of(struct base_fifo_node *n)
{
    return n != NULL ? BASE_CONTAINER_OF(n, struct item, node)->value : -1;
}

static void test_order(void **state)
{
    (void)state;
    struct item items[5];
    struct base_fifo f;
    base_fifo_init(&f);
    assert_true(base_fifo_empty(&f));
    assert_null(base_fifo_pop(&f));
    assert_null(base_fifo_peek(&f));
    for (int round = 0; round < 2; round++) { /* a list emptied by pops works again */
        for (int i = 0; i < 5; i++) {
            items[i].value = i;
            base_fifo_push(&f, &items[i].node);
        }
        assert_false(base_fifo_empty(&f));
        assert_int_equal(value_of(base_fifo_peek(&f)), 0);
        for (int i = 0; i < 5; i++)
            assert_int_equal(value_of(base_fifo_pop(&f)), i);
        assert_true(base_fifo_empty(&f));
    }
}

static void test_append(void **state)
{
    (void)state;
    struct item items[6];
    struct base_fifo a, b;
    base_fifo_init(&a);
    base_fifo_init(&b);
    base_fifo_append(&a, &b); /* both empty */
    assert_true(base_fifo_empty(&a));
    for (int i = 0; i < 6; i++) {
        items[i].value = i;
        base_fifo_push(i < 3 ? &a : &b, &items[i].node);
    }
    base_fifo_append(&a, &b);
    assert_true(base_fifo_empty(&b));
    base_fifo_push(&b, base_fifo_pop(&a)); /* the tail of b still works after being emptied */
    base_fifo_append(&b, &a);               /* onto a non-empty list */
    assert_true(base_fifo_empty(&a));
    int want[] = {0, 1, 2, 3, 4, 5};
    for (int i = 0; i < 6; i++)
        assert_int_equal(value_of(base_fifo_pop(&b)), want[i]);
    assert_null(base_fifo_pop(&b));
    base_fifo_push(&a, &items[0].node); /* and a after being appended away */
    assert_int_equal(value_of(base_fifo_pop(&a)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_append),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
