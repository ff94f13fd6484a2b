/* tests/unit/test_policy_counters_memory.c — the memory counters backend and the window
 * arithmetic it shares with Redis, on a fake clock: slot edges, the window end, exact
 * retry_after/age, reads, unlimited, overflow, clock jumps, LRU eviction, bad requests. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/counters_window.h"

struct clock {
    uint64_t now;
};

static uint64_t fake_now(void *ctx)
{
    return ((struct clock *)ctx)->now;
}

struct fixture {
    struct clock clock;
    struct policy_counters *c;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->c = policy_counters_memory_new(fake_now, &f->clock, 16);
    assert_non_null(f->c);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    policy_counters_free(f->c);
    free(f);
    return 0;
}

/* One decision at time t; the memory backend always decides at once. */
static struct policy_counters_result hit_at(struct fixture *f, uint64_t t, const char *key,
                                            uint64_t amount, uint64_t limit, uint64_t window_ms)
{
    f->clock.now = t;
    struct policy_counters_request req = {key, amount, limit, window_ms};
    struct policy_counters_result res;
    struct policy_counters_call *call = (struct policy_counters_call *)&res; /* must be reset */
    assert_true(policy_counters_hit(f->c, &req, &res, NULL, NULL, &call));
    assert_null(call);
    assert_int_equal(res.limit, limit);
    return res;
}

#define HOUR 3600000u /* slots of 60 s */
#define MIN 60000u    /* slots of 1 s */

static void test_backend_name(void **state)
{
    struct fixture *f = *state;
    assert_string_equal(policy_counters_backend(f->c), "memory");
    policy_counters_free(NULL);
    policy_counters_cancel(NULL);
}

static void test_slot_arithmetic(void **state)
{
    (void)state;
    assert_int_equal(counters_slot_ms(HOUR), 60000);
    assert_int_equal(counters_slot_ms(60), 1);
    assert_int_equal(counters_slot_ms(61), 2);  /* rounded up: 60 slots cover the window */
    assert_int_equal(counters_slot_ms(100), 2);
    assert_int_equal(counters_oldest_live(0, MIN, 1000), 0);
    assert_int_equal(counters_oldest_live(MIN, MIN, 1000), 0);
    assert_int_equal(counters_oldest_live(MIN + 999, MIN, 1000), 0);
    assert_int_equal(counters_oldest_live(MIN + 1000, MIN, 1000), 1);
    assert_int_equal(counters_until_leaves(0, 0, MIN, 1000), MIN + 1000);
    assert_int_equal(counters_until_leaves(0, MIN + 1000, MIN, 1000), 0);
    assert_int_equal(counters_until_leaves(UINT64_MAX / 1000, UINT64_MAX - 1, MIN, 1000), 1);
    assert_true(counters_fits(0, 0, 0));
    assert_true(counters_fits(UINT64_MAX, UINT64_MAX, 0));
    assert_true(counters_fits(2, 1, 3));
    assert_false(counters_fits(3, 1, 3));
    assert_false(counters_fits(0, 4, 3));
    assert_false(counters_fits(UINT64_MAX - 1, 2, UINT64_MAX));
    assert_int_equal(counters_add(UINT64_MAX - 1, 5), UINT64_MAX);
}

static void test_allowed_up_to_limit_then_denied(void **state)
{
    struct fixture *f = *state;
    for (uint64_t i = 1; i <= 3; i++) {
        struct policy_counters_result r = hit_at(f, 0, "plan:msg:alice", 1, 3, MIN);
        assert_int_equal(r.status, POLICY_COUNTERS_ALLOWED);
        assert_int_equal(r.count, i);
        assert_int_equal(r.retry_after_ms, MIN + 1000); /* slot 0 ends at 1000 */
    }
    struct policy_counters_result r = hit_at(f, 500, "plan:msg:alice", 1, 3, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_DENIED);
    assert_int_equal(r.count, 3);
    assert_int_equal(r.retry_after_ms, MIN + 1000 - 500);
    /* Denied hits are not counted. */
    r = hit_at(f, 600, "plan:msg:alice", 0, 3, MIN);
    assert_int_equal(r.count, 3);
}

static void test_window_end_exact(void **state)
{
    struct fixture *f = *state;
    hit_at(f, 999, "k", 1, 1, MIN); /* the last ms of slot 0 */
    /* Never early: the hit stays a full window after it happened. */
    struct policy_counters_result r = hit_at(f, 999 + MIN - 1, "k", 1, 1, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_DENIED);
    assert_int_equal(r.retry_after_ms, 2);
    r = hit_at(f, 999 + MIN, "k", 1, 1, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_DENIED);
    assert_int_equal(r.retry_after_ms, 1);
    /* At most one slot late: gone when slot 0 ended a window ago. */
    r = hit_at(f, 1000 + MIN, "k", 1, 1, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_ALLOWED);
    assert_int_equal(r.count, 1);
}

static void test_slot_boundaries(void **state)
{
    struct fixture *f = *state;
    hit_at(f, 0, "k", 1, 0, MIN);    /* slot 0 */
    hit_at(f, 1000, "k", 1, 0, MIN); /* slot 1, its first ms */
    hit_at(f, 1999, "k", 1, 0, MIN); /* slot 1, its last ms */
    assert_int_equal(hit_at(f, MIN + 999, "k", 0, 0, MIN).count, 3);
    assert_int_equal(hit_at(f, MIN + 1000, "k", 0, 0, MIN).count, 2);
    assert_int_equal(hit_at(f, MIN + 1999, "k", 0, 0, MIN).count, 2);
    assert_int_equal(hit_at(f, MIN + 2000, "k", 0, 0, MIN).count, 0);
}

static void test_retry_after_needs_several_slots(void **state)
{
    struct fixture *f = *state;
    hit_at(f, 0, "k", 1, 3, MIN);     /* slot 0 */
    hit_at(f, 5000, "k", 1, 3, MIN);  /* slot 5 */
    hit_at(f, 10000, "k", 1, 3, MIN); /* slot 10 */
    /* 2 more need 2 of the 3 gone: slot 5 leaves at 6000 + window. */
    struct policy_counters_result r = hit_at(f, 20000, "k", 2, 3, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_DENIED);
    assert_int_equal(r.retry_after_ms, 6000 + MIN - 20000);
    /* 3 more: all of them. */
    r = hit_at(f, 20000, "k", 3, 3, MIN);
    assert_int_equal(r.retry_after_ms, 11000 + MIN - 20000);
    /* And when the wait is over, it fits. */
    r = hit_at(f, 6000 + MIN, "k", 2, 3, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_ALLOWED);
    assert_int_equal(r.count, 3);
    /* ALLOWED: until the oldest used slot (10) leaves. */
    assert_int_equal(r.retry_after_ms, 11000 + MIN - (6000 + MIN));
}

static void test_amount_over_limit_never_fits(void **state)
{
    struct fixture *f = *state;
    struct policy_counters_result r = hit_at(f, 0, "k", 4, 3, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_DENIED);
    assert_int_equal(r.retry_after_ms, MIN);
    assert_int_equal(r.count, 0);
    hit_at(f, 0, "k", 1, 3, MIN);
    r = hit_at(f, 0, "k", 4, 3, MIN);
    assert_int_equal(r.retry_after_ms, MIN);
}

static void test_amount_zero_reads(void **state)
{
    struct fixture *f = *state;
    struct policy_counters_result r = hit_at(f, 100, "unknown", 0, 5, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_ALLOWED);
    assert_int_equal(r.count, 0);
    assert_int_equal(r.retry_after_ms, 0);
    assert_int_equal(r.age_ms, 0);
    hit_at(f, 100, "k", 5, 5, MIN);
    r = hit_at(f, 300, "k", 0, 5, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_ALLOWED); /* 5 + 0 <= 5 */
    assert_int_equal(r.count, 5);
    assert_int_equal(r.age_ms, 200);
    r = hit_at(f, 300, "k", 0, 5, MIN);
    assert_int_equal(r.count, 5);
    /* A read at a lower limit reports DENIED with the time until it is back under. */
    r = hit_at(f, 300, "k", 0, 4, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_DENIED);
    assert_int_equal(r.retry_after_ms, 1000 + MIN - 300);
}

static void test_limit_zero_unlimited(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(hit_at(f, (uint64_t)i, "k", 1000, 0, MIN).status,
                         POLICY_COUNTERS_ALLOWED);
    assert_int_equal(hit_at(f, 1000, "k", 0, 0, MIN).count, 1000000);
}

static void test_no_overflow(void **state)
{
    struct fixture *f = *state;
    struct policy_counters_result r = hit_at(f, 0, "k", UINT64_MAX - 1, UINT64_MAX, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_ALLOWED);
    r = hit_at(f, 0, "k", 2, UINT64_MAX, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_DENIED);
    assert_int_equal(r.count, UINT64_MAX - 1);
    r = hit_at(f, 0, "k", 1, UINT64_MAX, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_ALLOWED);
    assert_int_equal(r.count, UINT64_MAX);
    /* Unlimited: the count stops at UINT64_MAX, in one slot and across slots. */
    hit_at(f, 0, "u", UINT64_MAX, 0, MIN);
    r = hit_at(f, 0, "u", UINT64_MAX, 0, MIN);
    assert_int_equal(r.count, UINT64_MAX);
    r = hit_at(f, 5000, "u", UINT64_MAX, 0, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_ALLOWED);
    assert_int_equal(r.count, UINT64_MAX);
    r = hit_at(f, 5000, "u", 1, UINT64_MAX, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_DENIED);
    assert_int_equal(r.retry_after_ms, 1000 + MIN - 5000);
}

static void test_age(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(hit_at(f, 1234, "grey", 1, 0, HOUR).age_ms, 0);
    assert_int_equal(hit_at(f, 1734, "grey", 0, 0, HOUR).age_ms, 500);
    /* Exact, not rounded to a slot (60 s here), and grows with later hits too. */
    assert_int_equal(hit_at(f, 301234, "grey", 1, 0, HOUR).age_ms, 300000);
    /* Once both hits have left, the count is 0 and so is the age... */
    struct policy_counters_result r = hit_at(f, 359999 + HOUR, "grey", 0, 0, HOUR);
    assert_int_equal(r.count, 1);
    r = hit_at(f, 360000 + HOUR, "grey", 0, 0, HOUR);
    assert_int_equal(r.count, 0);
    assert_int_equal(r.age_ms, 0);
    /* ...and the next hit starts again. */
    r = hit_at(f, 360000 + HOUR, "grey", 1, 0, HOUR);
    assert_int_equal(r.age_ms, 0);
    assert_int_equal(hit_at(f, 360007 + HOUR, "grey", 0, 0, HOUR).age_ms, 7);
}

static void test_age_survives_while_counted(void **state)
{
    struct fixture *f = *state;
    hit_at(f, 0, "k", 1, 0, MIN);
    hit_at(f, 30000, "k", 1, 0, MIN);
    /* The first hit has left but the count never dropped to 0. */
    struct policy_counters_result r = hit_at(f, MIN + 5000, "k", 0, 0, MIN);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.age_ms, MIN + 5000);
}

static void test_clock_still_and_backwards(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 10; i++)
        hit_at(f, 5000, "k", 1, 10, MIN);
    assert_int_equal(hit_at(f, 5000, "k", 1, 10, MIN).status, POLICY_COUNTERS_DENIED);
    /* A clock stepping back reads as not moving: nothing is lost or counted twice. */
    struct policy_counters_result r = hit_at(f, 10, "k", 0, 10, MIN);
    assert_int_equal(r.count, 10);
    assert_int_equal(r.age_ms, 0);
    assert_int_equal(r.retry_after_ms, 6000 + MIN - 5000);
}

static void test_huge_jump_forward(void **state)
{
    struct fixture *f = *state;
    hit_at(f, 0, "k", 3, 3, MIN);
    struct policy_counters_result r = hit_at(f, UINT64_MAX / 2, "k", 3, 3, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_ALLOWED);
    assert_int_equal(r.count, 3);
    r = hit_at(f, UINT64_MAX - 1, "k", 1, 3, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_ALLOWED);
    assert_int_equal(r.count, 1);
    /* The slot's end is past UINT64_MAX: saturated, not wrapped to a tiny wait. */
    assert_int_equal(r.retry_after_ms, 1);
    r = hit_at(f, UINT64_MAX, "k", 3, 3, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_DENIED);
    assert_int_equal(r.count, 1);
}

static void test_window_is_part_of_the_key(void **state)
{
    struct fixture *f = *state;
    hit_at(f, 0, "k", 2, 0, MIN);
    assert_int_equal(hit_at(f, 0, "k", 1, 0, HOUR).count, 1);
    assert_int_equal(hit_at(f, 0, "k", 0, 0, MIN).count, 2);
}

static void test_uneven_window(void **state)
{
    struct fixture *f = *state;
    /* 100 ms in slots of 2 ms: a hit at 1 (slot 0, ends at 2) stays until 102. */
    hit_at(f, 1, "k", 1, 1, 100);
    assert_int_equal(hit_at(f, 101, "k", 1, 1, 100).status, POLICY_COUNTERS_DENIED);
    assert_int_equal(hit_at(f, 101, "k", 1, 1, 100).retry_after_ms, 1);
    assert_int_equal(hit_at(f, 102, "k", 1, 1, 100).status, POLICY_COUNTERS_ALLOWED);
    /* The smallest window: 60 ms, slots of 1 ms. */
    hit_at(f, 0, "small", 1, 1, 60);
    assert_int_equal(hit_at(f, 60, "small", 1, 1, 60).status, POLICY_COUNTERS_DENIED);
    assert_int_equal(hit_at(f, 61, "small", 1, 1, 60).status, POLICY_COUNTERS_ALLOWED);
}

static void test_keys_are_distinct_bytes(void **state)
{
    struct fixture *f = *state;
    hit_at(f, 0, "grey:\xff\x01:a", 1, 0, MIN);
    hit_at(f, 0, "grey:\xff\x01:b", 2, 0, MIN);
    assert_int_equal(hit_at(f, 0, "grey:\xff\x01:a", 0, 0, MIN).count, 1);
    assert_int_equal(hit_at(f, 0, "grey:\xff\x01:", 0, 0, MIN).count, 0);
}

static void test_lru_eviction(void **state)
{
    (void)state;
    struct fixture f = {{0}, NULL};
    struct policy_counters *c = f.c = policy_counters_memory_new(fake_now, &f.clock, 2);
    assert_non_null(c);
    hit_at(&f, 0, "a", 1, 0, MIN);
    hit_at(&f, 1, "b", 1, 0, MIN);
    hit_at(&f, 2, "a", 1, 0, MIN); /* a is now the most recent */
    hit_at(&f, 3, "c", 1, 0, MIN); /* full: b goes */
    assert_int_equal(hit_at(&f, 4, "a", 0, 0, MIN).count, 2);
    assert_int_equal(hit_at(&f, 4, "c", 0, 0, MIN).count, 1);
    assert_int_equal(hit_at(&f, 4, "b", 0, 0, MIN).count, 0); /* dropped: counts 0 again */
    /* Reads and refusals of unknown keys do not take a place. */
    hit_at(&f, 5, "d", 5, 3, MIN);
    assert_int_equal(hit_at(&f, 6, "a", 0, 0, MIN).count, 2);
    assert_int_equal(hit_at(&f, 6, "c", 0, 0, MIN).count, 1);
    policy_counters_free(c);
}

static void test_many_keys(void **state)
{
    (void)state;
    struct fixture f = {{0}, NULL};
    struct policy_counters *c = f.c = policy_counters_memory_new(fake_now, &f.clock, 0);
    assert_non_null(c);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "rate:%d", i);
        hit_at(&f, (uint64_t)i, key, (uint64_t)i % 7 + 1, 0, HOUR);
    }
    for (int i = 0; i < 5000; i += 97) {
        snprintf(key, sizeof key, "rate:%d", i);
        assert_int_equal(hit_at(&f, 6000, key, 0, 0, HOUR).count, (uint64_t)i % 7 + 1);
    }
    policy_counters_free(c);
}

/* A reference model, written independently of the ring: every allowed hit with its time; a
 * hit at t counts at T while the end of its slot is less than a window before T. */
struct model {
    uint64_t t[4000], amount[4000];
    size_t n;
};

static uint64_t model_count(const struct model *m, uint64_t at, uint64_t window, uint64_t slot)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < m->n; i++)
        if ((m->t[i] / slot + 1) * slot + window > at)
            sum += m->amount[i];
    return sum;
}

/* The first wait after which amount fits: candidates are the times slots leave. */
static uint64_t model_retry(const struct model *m, uint64_t now, uint64_t amount,
                            uint64_t limit, uint64_t window, uint64_t slot)
{
    uint64_t best = UINT64_MAX;
    for (size_t i = 0; i < m->n; i++) {
        uint64_t leaves = (m->t[i] / slot + 1) * slot + window;
        if (leaves > now && leaves - now < best &&
            model_count(m, leaves, window, slot) + amount <= limit)
            best = leaves - now;
    }
    return best;
}

static void test_against_a_model(void **state)
{
    struct fixture *f = *state;
    static struct model m;
    const uint64_t window = 6000, slot = 100, limit = 10;
    uint64_t now = 1000, seed = 42;
    m.n = 0;
    for (int step = 0; step < 3000; step++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        now += (seed >> 33) % 400; /* often 0: several hits in one slot */
        uint64_t amount = (seed >> 20) % 4;
        uint64_t before = model_count(&m, now, window, slot);
        struct policy_counters_result r = hit_at(f, now, "model", amount, limit, window);
        if (before + amount <= limit) {
            assert_int_equal(r.status, POLICY_COUNTERS_ALLOWED);
            assert_true(m.n < 4000);
            m.t[m.n] = now;
            m.amount[m.n++] = amount;
        } else {
            assert_int_equal(r.status, POLICY_COUNTERS_DENIED);
            assert_int_equal(r.retry_after_ms,
                             amount > limit ? window
                                            : model_retry(&m, now, amount, limit, window, slot));
        }
        assert_int_equal(r.count, model_count(&m, now, window, slot));
    }
    /* The promise: in no rolling window do the counted hits exceed the limit. */
    for (size_t i = 0; i < m.n; i++) {
        uint64_t sum = 0;
        for (size_t j = 0; j <= i; j++)
            if (m.t[i] - m.t[j] < window)
                sum += m.amount[j];
        assert_true(sum <= limit);
    }
}

static void test_bad_requests(void **state)
{
    struct fixture *f = *state;
    struct policy_counters_request req = {NULL, 1, 1, MIN};
    struct policy_counters_result res;
    assert_true(policy_counters_hit(f->c, &req, &res, NULL, NULL, NULL));
    assert_int_equal(res.status, POLICY_COUNTERS_UNAVAILABLE);
    assert_non_null(strstr(res.error, "empty key"));
    req.key = "";
    assert_true(policy_counters_hit(f->c, &req, &res, NULL, NULL, NULL));
    assert_int_equal(res.status, POLICY_COUNTERS_UNAVAILABLE);

    char key[POLICY_COUNTERS_KEY_MAX + 2];
    memset(key, 'k', sizeof key - 1);
    key[POLICY_COUNTERS_KEY_MAX + 1] = '\0';
    req.key = key;
    assert_true(policy_counters_hit(f->c, &req, &res, NULL, NULL, NULL));
    assert_int_equal(res.status, POLICY_COUNTERS_UNAVAILABLE);
    assert_non_null(strstr(res.error, "longer than 700"));
    key[POLICY_COUNTERS_KEY_MAX] = '\0'; /* exactly the maximum */
    assert_true(policy_counters_hit(f->c, &req, &res, NULL, NULL, NULL));
    assert_int_equal(res.status, POLICY_COUNTERS_ALLOWED);

    req.key = "k";
    req.window_ms = POLICY_COUNTERS_SLOTS - 1;
    assert_true(policy_counters_hit(f->c, &req, &res, NULL, NULL, NULL));
    assert_int_equal(res.status, POLICY_COUNTERS_UNAVAILABLE);
    assert_non_null(strstr(res.error, "window"));
    req.window_ms = 0;
    assert_true(policy_counters_hit(f->c, &req, &res, NULL, NULL, NULL));
    assert_int_equal(res.status, POLICY_COUNTERS_UNAVAILABLE);
    assert_int_equal(policy_counters_failures(f->c), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backend_name, setup, teardown),
        cmocka_unit_test(test_slot_arithmetic),
        cmocka_unit_test_setup_teardown(test_allowed_up_to_limit_then_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_end_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slot_boundaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_needs_several_slots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_amount_over_limit_never_fits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_amount_zero_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit_zero_unlimited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_age_survives_while_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_still_and_backwards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_jump_forward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_is_part_of_the_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uneven_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_are_distinct_bytes, setup, teardown),
        cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test_setup_teardown(test_against_a_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
