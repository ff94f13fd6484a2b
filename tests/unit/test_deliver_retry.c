/* tests/unit/test_deliver_retry.c — the retry schedule (doubling, cap, jitter bounds, never 0),
 * queue lifetime and delay warning edges. */
#include "unit.h"

#include <limits.h>

#include "deliver/retry.h"

/* The bounds of the jittered wait around base, clipped at the cap. */
static void bounds(uint64_t base, uint64_t max, uint64_t *lo, uint64_t *hi)
{
    *lo = base - base / 5;
    *hi = base + base / 5 > max ? max : base + base / 5;
}

static void test_default_schedule(void **state)
{
    (void)state;
    const struct deliver_retry_policy *p = &deliver_retry_default;
    /* 300, 600, 1200, 2400, then the 3600 cap for every later attempt. */
    const uint64_t base[21] = {0,    300,  600,  1200, 2400, 3600, 3600, 3600, 3600, 3600, 3600,
                               3600, 3600, 3600, 3600, 3600, 3600, 3600, 3600, 3600, 3600};
    for (unsigned a = 1; a <= 20; a++) {
        uint64_t lo, hi;
        bounds(base[a], 3600, &lo, &hi);
        assert_int_equal(deliver_retry_next(p, a, 0), lo);
        assert_int_equal(deliver_retry_next(p, a, hi - lo), hi);
        assert_int_equal(deliver_retry_next(p, a, hi - lo + 1), lo); /* wraps, stays inside */
        for (uint64_t r = 1; r < 100000; r = r * 7 + 3) {
            uint64_t v = deliver_retry_next(p, a, r * 0x9e3779b97f4a7c15u);
            assert_in_range(v, lo, hi);
        }
    }
    assert_int_equal(deliver_retry_next(p, 1, 60), 300); /* 240 + 60 */
    /* at the cap the spread is downward only: never above max_interval_s */
    assert_int_equal(deliver_retry_next(p, 20, UINT64_MAX), 2880 + UINT64_MAX % 721);
}

static void test_edges(void **state)
{
    (void)state;
    const struct deliver_retry_policy *p = &deliver_retry_default;
    /* attempts 0 counts as 1; a huge count does not overflow or loop long */
    assert_int_equal(deliver_retry_next(p, 0, 0), deliver_retry_next(p, 1, 0));
    assert_int_equal(deliver_retry_next(p, UINT_MAX, 0), 2880);
    /* never 0, even with a zero policy */
    const struct deliver_retry_policy zero = {0, 0, 0, 0};
    for (unsigned a = 0; a < 5; a++)
        for (uint64_t r = 0; r < 5; r++)
            assert_int_equal(deliver_retry_next(&zero, a, r), 1);
    /* a cap below the first wait: the first wait is the cap */
    const struct deliver_retry_policy odd = {100, 10, 1000, 0};
    assert_in_range(deliver_retry_next(&odd, 3, 12345), 80, 100);
    /* a huge cap: doubling stops without overflow */
    const struct deliver_retry_policy big = {UINT_MAX, UINT_MAX, 0, 0};
    assert_in_range(deliver_retry_next(&big, 40, 7), (uint64_t)UINT_MAX - UINT_MAX / 5, UINT_MAX);
    assert_int_equal(deliver_retry_doubling(1, UINT64_MAX, 64), 1ull << 63);
    assert_int_equal(deliver_retry_doubling(1, UINT64_MAX, 200), UINT64_MAX);
    assert_int_equal(deliver_retry_doubling(UINT64_MAX / 2 + 1, UINT64_MAX, 3), UINT64_MAX);
    assert_int_equal(deliver_retry_doubling(60, 960, 0), 60);
    assert_int_equal(deliver_retry_doubling(60, 960, 5), 960);
    assert_int_equal(deliver_retry_doubling(60, 1000, 6), 1000);
}

static void test_fast_schedule(void **state)
{
    (void)state;
    const struct deliver_retry_policy *p = &deliver_retry_fast;
    assert_int_equal(p->first_s, 2);
    assert_int_equal(p->max_interval_s, 10);
    assert_int_equal(p->lifetime_s, 60);
    /* 2 (jitter rounds to 0), 4 → 4..4, 8 → 7..9, then 10 → 8..10 */
    assert_int_equal(deliver_retry_next(p, 1, 12345), 2);
    assert_int_equal(deliver_retry_next(p, 2, 12345), 4);
    for (uint64_t r = 0; r < 50; r++) {
        assert_in_range(deliver_retry_next(p, 3, r), 7, 9);
        assert_in_range(deliver_retry_next(p, 4, r), 8, 10);
        assert_in_range(deliver_retry_next(p, 9, r), 8, 10);
    }
}

static void test_expiry_edges(void **state)
{
    (void)state;
    const struct deliver_retry_policy *p = &deliver_retry_default;
    const int64_t arrival = 1715000000, life = 5 * 86400;
    assert_false(deliver_retry_expired(p, arrival, arrival));
    assert_false(deliver_retry_expired(p, arrival, arrival + life - 1));
    assert_true(deliver_retry_expired(p, arrival, arrival + life));
    assert_true(deliver_retry_expired(p, arrival, arrival + life + 1));
    assert_false(deliver_retry_expired(p, arrival, arrival - 3600)); /* clock went back */
    assert_false(deliver_retry_expired(p, INT64_MAX, INT64_MIN));
    assert_true(deliver_retry_expired(p, INT64_MIN, INT64_MAX));
    assert_int_equal(deliver_retry_give_up_at(p, arrival), arrival + life);
    assert_int_equal(deliver_retry_give_up_at(p, INT64_MAX - 5), INT64_MAX);

    const struct deliver_retry_policy *f = &deliver_retry_fast;
    assert_false(deliver_retry_expired(f, 100, 159));
    assert_true(deliver_retry_expired(f, 100, 160));
}

static void test_delay_warning(void **state)
{
    (void)state;
    const struct deliver_retry_policy *p = &deliver_retry_default;
    const int64_t arrival = 1715000000, warn = 4 * 3600, life = 5 * 86400;
    assert_false(deliver_retry_warn_delay(p, arrival, arrival + warn - 1, false));
    assert_true(deliver_retry_warn_delay(p, arrival, arrival + warn, false));
    assert_true(deliver_retry_warn_delay(p, arrival, arrival + warn + 1, false));
    assert_false(deliver_retry_warn_delay(p, arrival, arrival + warn + 1, true)); /* only once */
    assert_true(deliver_retry_warn_delay(p, arrival, arrival + life - 1, false));
    assert_false(deliver_retry_warn_delay(p, arrival, arrival + life, false)); /* bounce instead */
    assert_false(deliver_retry_warn_delay(p, arrival, arrival - 10, false));
    const struct deliver_retry_policy off = {300, 3600, 86400, 0};
    assert_false(deliver_retry_warn_delay(&off, arrival, arrival + 80000, false));
    /* a warning due after the lifetime is never sent */
    const struct deliver_retry_policy late = {300, 3600, 100, 200};
    assert_false(deliver_retry_warn_delay(&late, 0, 150, false));
    assert_false(deliver_retry_warn_delay(&late, 0, 250, false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_schedule),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_fast_schedule),
        cmocka_unit_test(test_expiry_edges),
        cmocka_unit_test(test_delay_warning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
