/* tests/unit/test_base_lru.c — the LRU table: get refreshes and peek does not, put creates
 * zeroed values and evicts the least recently used when full, remove and drop_oldest, binary
 * keys, aligned values, and a long random run against a simple model of the same rules. */
#include "unit.h"

#include <stdalign.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/lru.h"

struct value {
    uint64_t n;
    double d; /* alignment: a value must hold any type */
};

static struct value *put(struct base_lru *t, const char *key, bool want_created)
{
    void *v = NULL;
    bool created = !want_created;
    assert_int_equal(base_lru_put(t, key, strlen(key), &v, &created), BASE_OK);
    assert_non_null(v);
    assert_true(created == want_created);
    assert_int_equal((uintptr_t)v % alignof(max_align_t), 0);
    return v;
}

static struct value *get(struct base_lru *t, const char *key)
{
    return base_lru_get(t, key, strlen(key));
}

static void test_put_get(void **state)
{
    (void)state;
    struct base_lru *t = base_lru_new(4, sizeof(struct value));
    assert_non_null(t);
    assert_null(get(t, "a"));
    assert_null(base_lru_oldest(t));
    struct value *a = put(t, "a", true);
    assert_int_equal(a->n, 0); /* zeroed */
    a->n = 1;
    a->d = 0.5;
    assert_ptr_equal(put(t, "a", false), a); /* the same entry, kept */
    assert_ptr_equal(get(t, "a"), a);
    assert_int_equal(get(t, "a")->n, 1);
    assert_null(get(t, "A"));
    assert_null(get(t, "ab"));
    assert_null(base_lru_get(t, "a", 0));
    assert_int_equal(base_lru_count(t), 1);
    base_lru_free(t);
    base_lru_free(NULL);
    assert_null(base_lru_new(0, 8));
}

static void test_eviction_order(void **state)
{
    (void)state;
    struct base_lru *t = base_lru_new(3, sizeof(struct value));
    put(t, "a", true)->n = 1;
    put(t, "b", true)->n = 2;
    put(t, "c", true)->n = 3;
    assert_int_equal(((struct value *)base_lru_oldest(t))->n, 1);
    /* peek leaves the order alone: a stays the oldest. */
    assert_non_null(base_lru_peek(t, "a", 1));
    assert_int_equal(((struct value *)base_lru_oldest(t))->n, 1);
    /* get refreshes a: b is now the oldest and goes first. */
    assert_non_null(get(t, "a"));
    put(t, "d", true)->n = 4;
    assert_int_equal(base_lru_count(t), 3);
    assert_null(get(t, "b"));
    /* put of an existing key refreshes it too: c goes next. */
    put(t, "a", false);
    put(t, "e", true);
    assert_null(get(t, "c"));
    assert_non_null(get(t, "a"));
    assert_non_null(get(t, "d"));
    assert_non_null(get(t, "e"));
    assert_int_equal(base_lru_count(t), 3);
    base_lru_free(t);
}

static void test_remove_and_drop(void **state)
{
    (void)state;
    struct base_lru *t = base_lru_new(8, sizeof(struct value));
    put(t, "a", true)->n = 1;
    put(t, "b", true)->n = 2;
    put(t, "c", true)->n = 3;
    assert_true(base_lru_remove(t, "b", 1));
    assert_false(base_lru_remove(t, "b", 1));
    assert_int_equal(base_lru_count(t), 2);
    base_lru_drop_oldest(t); /* a */
    assert_null(get(t, "a"));
    assert_int_equal(((struct value *)base_lru_oldest(t))->n, 3);
    base_lru_drop_oldest(t);
    assert_int_equal(base_lru_count(t), 0);
    assert_null(base_lru_oldest(t));
    base_lru_drop_oldest(t); /* empty: nothing */
    put(t, "b", true); /* a removed key comes back as a new, zeroed entry */
    assert_int_equal(get(t, "b")->n, 0);
    base_lru_free(t);
}

static void test_binary_keys(void **state)
{
    (void)state;
    struct base_lru *t = base_lru_new(4, 0); /* no value at all: a set */
    const unsigned char k1[] = {0, 0, 1}, k2[] = {0, 0, 2}, k3[] = {0, 0};
    void *v;
    assert_int_equal(base_lru_put(t, k1, sizeof k1, &v, NULL), BASE_OK);
    assert_int_equal(base_lru_put(t, k2, sizeof k2, &v, NULL), BASE_OK);
    assert_int_equal(base_lru_put(t, k3, sizeof k3, &v, NULL), BASE_OK);
    assert_int_equal(base_lru_put(t, "", 0, &v, NULL), BASE_OK); /* the empty key */
    assert_int_equal(base_lru_count(t), 4);
    assert_non_null(base_lru_peek(t, k1, sizeof k1));
    assert_non_null(base_lru_peek(t, k3, sizeof k3));
    assert_non_null(base_lru_peek(t, "", 0));
    assert_true(base_lru_remove(t, k2, sizeof k2));
    assert_null(base_lru_peek(t, k2, sizeof k2));
    base_lru_free(t);
}

/* The model: keys 0..K-1, a use stamp per present key; the least recently used has the
 * smallest stamp. */
#define K 300
#define CAP 64

struct model {
    bool present[K];
    uint64_t stamp[K], clock;
    size_t count;
};

static void model_use(struct model *m, unsigned k)
{
    m->stamp[k] = ++m->clock;
}

static unsigned model_oldest(const struct model *m)
{
    unsigned best = K;
    for (unsigned k = 0; k < K; k++)
        if (m->present[k] && (best == K || m->stamp[k] < m->stamp[best]))
            best = k;
    return best;
}

static void test_random_against_model(void **state)
{
    (void)state;
    struct base_lru *t = base_lru_new(CAP, sizeof(uint64_t));
    struct model m = {0};
    srand(1234);
    for (int step = 0; step < 200000; step++) {
        unsigned k = (unsigned)rand() % K;
        uint64_t key = k * 0x9E3779B97F4A7C15ull; /* 8 binary bytes */
        uint64_t *v;
        switch (rand() % 4) {
        case 0: /* get */
            v = base_lru_get(t, &key, sizeof key);
            assert_true((v != NULL) == m.present[k]);
            if (v != NULL) {
                assert_true(*v == k);
                model_use(&m, k);
            }
            break;
        case 1: { /* put */
            bool created;
            void *p;
            if (!m.present[k] && m.count == CAP) {
                m.present[model_oldest(&m)] = false;
                m.count--;
            }
            assert_int_equal(base_lru_put(t, &key, sizeof key, &p, &created), BASE_OK);
            assert_true(created == !m.present[k]);
            v = p;
            if (created) {
                assert_true(*v == 0);
                *v = k;
                m.present[k] = true;
                m.count++;
            }
            model_use(&m, k);
            break;
        }
        case 2: /* remove */
            assert_true(base_lru_remove(t, &key, sizeof key) == m.present[k]);
            if (m.present[k])
                m.count--;
            m.present[k] = false;
            break;
        default: /* peek, and the oldest */
            v = base_lru_peek(t, &key, sizeof key);
            assert_true((v != NULL) == m.present[k]);
            v = base_lru_oldest(t);
            unsigned old = model_oldest(&m);
            assert_true((v == NULL) == (old == K));
            if (v != NULL)
                assert_true(*v == old);
        }
        assert_int_equal(base_lru_count(t), m.count);
        assert_true(m.count <= CAP);
    }
    base_lru_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get),
        cmocka_unit_test(test_eviction_order),
        cmocka_unit_test(test_remove_and_drop),
        cmocka_unit_test(test_binary_keys),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
