/* tests/unit/test_policy_authlimit.c — failed-AUTH limiting with explicit times: window edges,
 * the delay sequence, success clearing, IPv6 /64 grouping, the memory bound and eviction. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "policy/authlimit.h"

#define WINDOW 600000u /* ms: the default 10 minutes */

static void test_block_after_limit(void **state)
{
    (void)state;
    struct policy_authlimit *lim = policy_authlimit_new(5, WINDOW, 0);
    assert_non_null(lim);
    const char *ip = "192.0.2.1";
    assert_false(policy_authlimit_blocked(lim, ip, 0));
    assert_int_equal(policy_authlimit_failures(lim, ip, 0), 0);
    for (unsigned i = 0; i < 4; i++) {
        policy_authlimit_failed(lim, ip, 1000 + i);
        assert_int_equal(policy_authlimit_failures(lim, ip, 1000 + i), i + 1);
        assert_false(policy_authlimit_blocked(lim, ip, 1000 + i)); /* limit - 1 */
    }
    policy_authlimit_failed(lim, ip, 2000);
    assert_true(policy_authlimit_blocked(lim, ip, 2000)); /* limit */
    policy_authlimit_failed(lim, ip, 2001);
    assert_true(policy_authlimit_blocked(lim, ip, 2001)); /* limit + 1 */
    assert_int_equal(policy_authlimit_failures(lim, ip, 2001), 5); /* capped at limit */
    /* other addresses are not affected */
    assert_false(policy_authlimit_blocked(lim, "192.0.2.2", 2001));
    assert_false(policy_authlimit_blocked(lim, "2001:db8::1", 2001));
    policy_authlimit_free(lim);
    policy_authlimit_free(NULL);
    assert_null(policy_authlimit_new(0, WINDOW, 0));
}

static void test_window_edges(void **state)
{
    (void)state;
    struct policy_authlimit *lim = policy_authlimit_new(2, WINDOW, 0);
    const char *ip = "198.51.100.7";
    policy_authlimit_failed(lim, ip, 10000);
    policy_authlimit_failed(lim, ip, 20000);
    assert_true(policy_authlimit_blocked(lim, ip, 20000));
    /* the first failure expires exactly WINDOW ms later */
    assert_true(policy_authlimit_blocked(lim, ip, 10000 + WINDOW - 1));
    assert_false(policy_authlimit_blocked(lim, ip, 10000 + WINDOW));
    assert_int_equal(policy_authlimit_failures(lim, ip, 10000 + WINDOW), 1);
    assert_int_equal(policy_authlimit_failures(lim, ip, 20000 + WINDOW - 1), 1);
    assert_int_equal(policy_authlimit_failures(lim, ip, 20000 + WINDOW), 0);
    /* sliding: a new failure counts with the one still inside */
    policy_authlimit_failed(lim, ip, 10000 + WINDOW);
    assert_true(policy_authlimit_blocked(lim, ip, 10000 + WINDOW));
    assert_false(policy_authlimit_blocked(lim, ip, 20000 + WINDOW));
    /* a time before the failures (never with a monotonic clock) still counts them */
    assert_int_equal(policy_authlimit_failures(lim, ip, 0), 2);
    policy_authlimit_free(lim);
}

static void test_delay_sequence(void **state)
{
    (void)state;
    struct policy_authlimit *lim = policy_authlimit_new(10, WINDOW, 0);
    const char *ip = "203.0.113.9";
    const unsigned expect[] = {0, 500, 1000, 2000, 4000, 5000, 5000, 5000, 5000, 5000, 5000};
    assert_int_equal(policy_authlimit_delay_ms(lim, ip, 0), 0);
    for (unsigned i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        policy_authlimit_failed(lim, ip, 100 * i);
        unsigned d = policy_authlimit_delay_ms(lim, ip, 100 * i);
        if (d != expect[i])
            fail_msg("failure %u: delay %u, expected %u", i + 1, d, expect[i]);
    }
    /* the delay falls as failures leave the window */
    assert_int_equal(policy_authlimit_delay_ms(lim, ip, WINDOW + 100 * 7), 1000);
    assert_int_equal(policy_authlimit_delay_ms(lim, ip, WINDOW + 100 * 10), 0);
    policy_authlimit_free(lim);
}

static void test_success_clears(void **state)
{
    (void)state;
    struct policy_authlimit *lim = policy_authlimit_new(3, WINDOW, 0);
    const char *ip = "192.0.2.55";
    policy_authlimit_failed(lim, ip, 1);
    policy_authlimit_failed(lim, ip, 2);
    assert_int_equal(policy_authlimit_tracked(lim), 1);
    policy_authlimit_succeeded(lim, ip);
    assert_int_equal(policy_authlimit_failures(lim, ip, 3), 0);
    assert_int_equal(policy_authlimit_delay_ms(lim, ip, 3), 0);
    assert_int_equal(policy_authlimit_tracked(lim), 0);
    policy_authlimit_succeeded(lim, ip); /* nothing to clear */
    policy_authlimit_succeeded(lim, "not an address");
    policy_authlimit_free(lim);
}

static void test_address_grouping(void **state)
{
    (void)state;
    struct policy_authlimit *lim = policy_authlimit_new(2, WINDOW, 0);
    /* one /64: different interface identifiers share the record */
    policy_authlimit_failed(lim, "2001:db8:1:2::1", 1);
    policy_authlimit_failed(lim, "2001:DB8:1:2:ffff:eeee:dddd:cccc", 2);
    assert_true(policy_authlimit_blocked(lim, "2001:db8:1:2::99", 3));
    assert_false(policy_authlimit_blocked(lim, "2001:db8:1:3::1", 3));
    /* IPv4-mapped IPv6 is the IPv4 address, and only it */
    policy_authlimit_failed(lim, "::ffff:192.0.2.1", 4);
    policy_authlimit_failed(lim, "192.0.2.1", 5);
    assert_true(policy_authlimit_blocked(lim, "192.0.2.1", 6));
    assert_false(policy_authlimit_blocked(lim, "192.0.2.2", 6));
    /* text that is no address: one shared record, no crash */
    policy_authlimit_failed(lim, "", 7);
    policy_authlimit_failed(lim, "unix:/run/x", 8);
    assert_true(policy_authlimit_blocked(lim, "garbage", 9));
    assert_int_equal(policy_authlimit_tracked(lim), 3);
    policy_authlimit_free(lim);
}

static void test_bounded_and_eviction(void **state)
{
    (void)state;
    struct policy_authlimit *lim = policy_authlimit_new(2, WINDOW, 100);
    char ip[32];
    for (unsigned i = 0; i < 1000; i++) {
        snprintf(ip, sizeof ip, "10.0.%u.%u", i / 256, i % 256);
        policy_authlimit_failed(lim, ip, 1000 + i);
        assert_true(policy_authlimit_tracked(lim) <= 100);
    }
    assert_int_equal(policy_authlimit_tracked(lim), 100);
    /* the oldest were forgotten, the newest kept */
    assert_int_equal(policy_authlimit_failures(lim, "10.0.0.0", 2000), 0);
    assert_int_equal(policy_authlimit_failures(lim, "10.0.3.231", 2000), 1); /* i = 999 */
    assert_int_equal(policy_authlimit_failures(lim, "10.0.3.132", 2000), 1); /* i = 900 */
    assert_int_equal(policy_authlimit_failures(lim, "10.0.3.131", 2000), 0); /* i = 899 */
    /* a repeat failure makes an address the newest, so it survives eviction */
    policy_authlimit_failed(lim, "10.0.3.132", 2001);
    for (unsigned i = 0; i < 99; i++) {
        snprintf(ip, sizeof ip, "172.16.0.%u", i);
        policy_authlimit_failed(lim, ip, 2002 + i);
    }
    assert_true(policy_authlimit_blocked(lim, "10.0.3.132", 2200));
    assert_int_equal(policy_authlimit_failures(lim, "10.0.3.133", 2200), 0);
    /* expired records go when a new address fails */
    policy_authlimit_failed(lim, "192.0.2.1", 2001 + WINDOW + 200);
    assert_int_equal(policy_authlimit_tracked(lim), 1);
    policy_authlimit_free(lim);
}

static void test_default_bound(void **state)
{
    (void)state;
    struct policy_authlimit *lim = policy_authlimit_new(5, WINDOW, 0);
    char ip[48];
    for (unsigned i = 0; i < POLICY_AUTHLIMIT_ENTRIES + 10; i++) {
        snprintf(ip, sizeof ip, "2001:db8:%x:%x::1", i >> 16, i & 0xffff);
        policy_authlimit_failed(lim, ip, i);
    }
    assert_int_equal(policy_authlimit_tracked(lim), POLICY_AUTHLIMIT_ENTRIES);
    policy_authlimit_free(lim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_after_limit),
        cmocka_unit_test(test_window_edges),
        cmocka_unit_test(test_delay_sequence),
        cmocka_unit_test(test_success_clears),
        cmocka_unit_test(test_address_grouping),
        cmocka_unit_test(test_bounded_and_eviction),
        cmocka_unit_test(test_default_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
