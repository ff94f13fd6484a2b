/* tests/unit/test_policy_plan_check.c — plan accounts, counter keys, the wording and reply of
 * limit refusals, greylisting keys and waits (policy/plan_check.c). */
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/counters.h"
#include "policy/plan_check.h"

static struct sockaddr_storage addr(const char *text)
{
    struct sockaddr_storage ss;
    assert_true(policy_parse_address(text, &ss));
    return ss;
}

static const struct sockaddr *sa(const struct sockaddr_storage *ss)
{
    return (const struct sockaddr *)ss;
}

static struct policy_plan_limit limit(enum policy_plan_metric m, uint64_t n, unsigned window)
{
    return (struct policy_plan_limit){.metric = m, .limit = n, .window = window};
}

/* 2026-11-25 14:00:00 UTC */
#define NOON_2 ((time_t)1795615200)

static void test_limit_words(void **state)
{
    (void)state;
    char out[128];
    struct policy_plan_limit l = limit(POLICY_PLAN_MESSAGES, 1000, 3600);
    assert_int_equal(policy_plan_limit_words(out, sizeof out, &l), 29);
    assert_string_equal(out, "Hourly limit of 1000 messages");
    l = limit(POLICY_PLAN_RECIPIENTS, 1, 86400);
    policy_plan_limit_words(out, sizeof out, &l);
    assert_string_equal(out, "Daily limit of 1 recipient");
    l = limit(POLICY_PLAN_BYTES, 5000000, 60);
    policy_plan_limit_words(out, sizeof out, &l);
    assert_string_equal(out, "Limit of 5000000 bytes per 60 seconds");
    assert_int_equal(policy_plan_limit_words(out, 10, &l), 0);
}

static void test_refusal_text_and_reply(void **state)
{
    (void)state;
    struct policy_plan p = {.name = "trial"};
    struct policy_plan_limit l = limit(POLICY_PLAN_MESSAGES, 1000, 3600);
    char d[256];
    /* 14:00:00 + 5 min exactly: 14:05 */
    assert_int_equal(policy_plan_refusal(&p, &l, 300000, NOON_2, d, sizeof d), REPLY_PLAN_LIMIT);
    assert_string_equal(d, "Hourly limit of 1000 messages for plan trial reached; "
                           "try again after 14:05 UTC");
    /* a part of a minute rounds up: never name a time at which the client is refused again */
    policy_plan_refusal(&p, &l, 300001, NOON_2, d, sizeof d);
    assert_string_equal(d, "Hourly limit of 1000 messages for plan trial reached; "
                           "try again after 14:06 UTC");
    policy_plan_refusal(&p, &l, 0, NOON_2 + 1, d, sizeof d);
    assert_string_equal(d, "Hourly limit of 1000 messages for plan trial reached; "
                           "try again after 14:01 UTC");
    /* beyond a day the date is named */
    struct policy_plan_limit week = limit(POLICY_PLAN_MESSAGES, 10, 7 * 86400);
    policy_plan_refusal(&p, &week, 2ull * 86400 * 1000, NOON_2, d, sizeof d);
    assert_string_equal(d, "Limit of 10 messages per 604800 seconds for plan trial reached; "
                           "try again after 2026-11-27 14:00 UTC");
    struct policy_plan_limit r = limit(POLICY_PLAN_RECIPIENTS, 5000, 3600);
    assert_int_equal(policy_plan_refusal(&p, &r, 1000, NOON_2, d, sizeof d),
                     REPLY_PLAN_RCPT_LIMIT);
    struct policy_plan_limit b = limit(POLICY_PLAN_BYTES, 1000, 86400);
    assert_int_equal(policy_plan_refusal(&p, &b, 1000, NOON_2, d, sizeof d), REPLY_PLAN_LIMIT);
    assert_string_equal(d, "Daily limit of 1000 bytes for plan trial reached; "
                           "try again after 14:01 UTC");
    p.permanent = true;
    assert_int_equal(policy_plan_refusal(&p, &l, 1000, NOON_2, d, sizeof d),
                     REPLY_PLAN_LIMIT_PERMANENT);
    assert_int_equal(policy_plan_refusal(&p, &r, 1000, NOON_2, d, sizeof d),
                     REPLY_PLAN_LIMIT_PERMANENT);
    /* a short buffer is cut, never overrun */
    char small[12];
    policy_plan_refusal(&p, &l, 1000, NOON_2, small, sizeof small);
    assert_string_equal(small, "Hourly limi");
}

static void test_plan_key(void **state)
{
    (void)state;
    char k[POLICY_COUNTERS_KEY_MAX + 1];
    struct policy_plan_limit l = limit(POLICY_PLAN_MESSAGES, 1000, 3600);
    assert_int_equal(policy_plan_key(k, sizeof k, &l, "alice@example.test"), 32);
    assert_string_equal(k, "plan:msg:3600:alice@example.test");
    l = limit(POLICY_PLAN_RECIPIENTS, 5, 86400);
    policy_plan_key(k, sizeof k, &l, "[192.0.2.0/24]");
    assert_string_equal(k, "plan:rcpt:86400:[192.0.2.0/24]");
    l = limit(POLICY_PLAN_BYTES, 5, 60);
    policy_plan_key(k, sizeof k, &l, "bob");
    assert_string_equal(k, "plan:bytes:60:bob");
    assert_int_equal(policy_plan_key(k, 10, &l, "bob"), 0);
}

static void set_network(struct policy_plan_network *n, const char *text, unsigned prefix,
                        size_t plan)
{
    memset(n, 0, sizeof *n);
    if (strchr(text, ':')) {
        n->family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, n->addr), 1);
    } else {
        n->family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, n->addr), 1);
    }
    n->prefix = prefix;
    n->plan = plan;
}

static void test_account_for_address(void **state)
{
    (void)state;
    struct policy_plan plans[2] = {{.name = "trial"}, {.name = "premium"}};
    struct policy_plan_network nets[3];
    set_network(&nets[0], "192.0.2.0", 24, 0);
    set_network(&nets[1], "192.0.2.128", 25, 1);
    set_network(&nets[2], "2001:db8::", 32, 1);
    struct policy_config c;
    memset(&c, 0, sizeof c);
    c.plans = plans;
    c.n_plans = 2;
    c.plan_networks = nets;
    c.n_plan_networks = 3;
    struct policy_account a;
    struct sockaddr_storage ss = addr("192.0.2.7");
    policy_account_for_address(&c, sa(&ss), &a);
    assert_ptr_equal(a.plan, &plans[0]);
    assert_string_equal(a.name, "[192.0.2.0/24]");
    ss = addr("192.0.2.200"); /* the longest prefix wins */
    policy_account_for_address(&c, sa(&ss), &a);
    assert_ptr_equal(a.plan, &plans[1]);
    assert_string_equal(a.name, "[192.0.2.128/25]");
    ss = addr("::ffff:192.0.2.9"); /* IPv4-mapped counts as IPv4 */
    policy_account_for_address(&c, sa(&ss), &a);
    assert_string_equal(a.name, "[192.0.2.0/24]");
    ss = addr("2001:db8:1::5");
    policy_account_for_address(&c, sa(&ss), &a);
    assert_string_equal(a.name, "[2001:db8::/32]");
    ss = addr("198.51.100.1");
    policy_account_for_address(&c, sa(&ss), &a);
    assert_null(a.plan);
    assert_string_equal(a.name, "");
    policy_account_for_address(&c, NULL, &a);
    assert_null(a.plan);
}

static void test_account_for_user(void **state)
{
    (void)state;
    static const char conf[] = "plan trial messages=1000/hour\n"
                               "plan premium messages=3000/hour recipients=9000/hour\n"
                               "plan_user bob premium\n"
                               "default_plan trial\n";
    struct policy_config c;
    struct policy_problems pr;
    assert_int_equal(policy_config_load_buffer("t.conf", conf, sizeof conf - 1, &c, &pr), 0);
    struct policy_account a;
    policy_account_for_user(&c, "Bob", &a); /* user names are case-insensitive */
    assert_non_null(a.plan);
    assert_string_equal(a.plan->name, "premium");
    assert_string_equal(a.name, "bob");
    policy_account_for_user(&c, "alice", &a); /* no plan_user line: the default plan */
    assert_string_equal(a.plan->name, "trial");
    assert_string_equal(a.name, "alice");
    policy_account_for_user(&c, "", &a);
    assert_null(a.plan);
    policy_account_for_user(&c, NULL, &a);
    assert_null(a.plan);
    char big[POLICY_ACCOUNT_CAP + 1];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    policy_account_for_user(&c, big, &a);
    assert_null(a.plan);
    policy_config_free(&c);
    /* without default_plan a user without plan_user is not counted */
    static const char conf2[] = "plan trial messages=1/hour\nplan_user bob trial\n";
    assert_int_equal(policy_config_load_buffer("t.conf", conf2, sizeof conf2 - 1, &c, &pr), 0);
    policy_account_for_user(&c, "alice", &a);
    assert_null(a.plan);
    assert_string_equal(a.name, "");
    policy_config_free(&c);
}

static void test_greylist(void **state)
{
    (void)state;
    struct policy_greylist_config g = {.on = true, .delay = 300, .expire = 86400,
                                       .v4_prefix = 24, .v6_prefix = 64};
    char k[POLICY_COUNTERS_KEY_MAX + 1];
    struct sockaddr_storage ss = addr("192.0.2.77");
    assert_true(policy_greylist_key(k, sizeof k, &g, sa(&ss), "Sender@Other.TEST",
                                    "Bob@Example.test") > 0);
    assert_string_equal(k, "grey:192.0.2.0/24:sender@other.test:bob@example.test");
    ss = addr("2001:db8:1:2:3:4:5:6");
    policy_greylist_key(k, sizeof k, &g, sa(&ss), "", "bob@example.test");
    assert_string_equal(k, "grey:2001:db8:1:2::/64::bob@example.test");
    char big[600];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(policy_greylist_key(k, sizeof k, &g, sa(&ss), big, big), 0);
    assert_int_equal(policy_greylist_wait(&g, 0), 300);
    assert_int_equal(policy_greylist_wait(&g, 1), 300);       /* 299.999 s left: say 300 */
    assert_int_equal(policy_greylist_wait(&g, 299999), 1);    /* at least one */
    assert_int_equal(policy_greylist_wait(&g, 300000), 0);
    assert_int_equal(policy_greylist_wait(&g, 900000), 0);
}

static void test_session_key(void **state)
{
    (void)state;
    char k[128];
    struct sockaddr_storage ss = addr("192.0.2.77");
    policy_session_key(k, sizeof k, sa(&ss));
    assert_string_equal(k, "sess:192.0.2.77");
    ss = addr("2001:db8:1:2:3:4:5:6");
    policy_session_key(k, sizeof k, sa(&ss));
    assert_string_equal(k, "sess:2001:db8:1:2::/64");
    ss = addr("::ffff:10.0.0.1");
    policy_session_key(k, sizeof k, sa(&ss));
    assert_string_equal(k, "sess:10.0.0.1");
    assert_int_equal(policy_session_key(k, 8, sa(&ss)), 0);
    struct sockaddr_storage bad;
    assert_false(policy_parse_address("not-an-ip", &bad));
    assert_false(policy_parse_address("", &bad));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_words),
        cmocka_unit_test(test_refusal_text_and_reply),
        cmocka_unit_test(test_plan_key),
        cmocka_unit_test(test_account_for_address),
        cmocka_unit_test(test_account_for_user),
        cmocka_unit_test(test_greylist),
        cmocka_unit_test(test_session_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
