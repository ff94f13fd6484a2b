/* tests/unit/test_policy_authcheck.c — asynchronous verification: results through the eventfd,
 * cancel before and after the work, the bounded queue, oversized input, real worker threads,
 * successes remembered (answered without a worker) and failures not. */
#include "unit.h"

#include <poll.h>
#include <string.h>

#include "policy/authcheck.h"
#include "policy/users.h"

/* openssl passwd -6 -salt aliceSalt0123456 alice-secret */
#define ALICE_HASH "$6$aliceSalt0123456$8QyOFYChiWIYio8PSFPLSWfKCx3Z29wp8dBaxfUweEfrldvqB2L7." \
                   "qJsadR1LMx5DxAodRN4sBR7B5lcsMnsF0"

struct outcome {
    int calls;
    enum policy_auth_result result;
    int order; /* position among all callbacks */
};

static int callbacks_run;

static void done(void *ctx, enum policy_auth_result result)
{
    struct outcome *o = ctx;
    o->calls++;
    o->result = result;
    o->order = callbacks_run++;
}

static struct policy_users *users(void)
{
    static const char text[] = "alice:" ALICE_HASH "\n";
    struct policy_users *u = NULL;
    assert_int_equal(policy_users_load_buffer(text, sizeof text - 1, NULL, NULL, &u), 0);
    return u;
}

static bool readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) == 1;
}

static struct policy_authcheck *new_ac(unsigned threads)
{
    char err[128];
    struct policy_authcheck *ac = policy_authcheck_new(threads, err, sizeof err);
    if (ac == NULL)
        fail_msg("%s", err);
    return ac;
}

static void test_results_in_order(void **state)
{
    (void)state;
    struct policy_users *u = users();
    struct policy_authcheck *ac = new_ac(0);
    struct outcome ok = {0}, bad = {0}, unknown = {0};
    callbacks_run = 0;
    assert_non_null(policy_authcheck_submit(ac, u, "alice", "alice-secret", done, &ok));
    assert_non_null(policy_authcheck_submit(ac, u, "ALICE", "wrong", done, &bad));
    assert_non_null(policy_authcheck_submit(ac, u, "mallory", "alice-secret", done, &unknown));
    assert_false(readable(policy_authcheck_event_fd(ac), 0));
    policy_authcheck_process(ac); /* nothing finished: no callback, no blocking */
    assert_int_equal(callbacks_run, 0);
    assert_true(policy_authcheck_run_one(ac));
    assert_true(readable(policy_authcheck_event_fd(ac), 0));
    policy_authcheck_process(ac);
    assert_int_equal(ok.calls, 1);
    assert_int_equal(ok.result, POLICY_AUTH_OK);
    assert_false(readable(policy_authcheck_event_fd(ac), 0));
    assert_true(policy_authcheck_run_one(ac));
    assert_true(policy_authcheck_run_one(ac));
    assert_false(policy_authcheck_run_one(ac));
    policy_authcheck_process(ac);
    assert_int_equal(bad.calls, 1);
    assert_int_equal(bad.result, POLICY_AUTH_BAD);
    assert_int_equal(unknown.calls, 1);
    assert_int_equal(unknown.result, POLICY_AUTH_BAD);
    assert_int_equal(bad.order, 1);
    assert_int_equal(unknown.order, 2);
    policy_authcheck_process(ac); /* each callback runs once */
    assert_int_equal(ok.calls + bad.calls + unknown.calls, 3);
    policy_authcheck_free(ac);
    policy_users_free(u);
}

static void test_cancel(void **state)
{
    (void)state;
    struct policy_users *u = users();
    struct policy_authcheck *ac = new_ac(0);
    struct outcome a = {0}, b = {0}, c = {0};
    const char *pw = "alice-secret";
    struct policy_authcheck_job *ja = policy_authcheck_submit(ac, u, "alice", pw, done, &a);
    assert_non_null(policy_authcheck_submit(ac, u, "alice", pw, done, &b));
    struct policy_authcheck_job *jc = policy_authcheck_submit(ac, u, "alice", pw, done, &c);
    policy_authcheck_cancel(ja); /* still queued */
    assert_true(policy_authcheck_run_one(ac));
    assert_true(policy_authcheck_run_one(ac));
    assert_true(policy_authcheck_run_one(ac));
    policy_authcheck_cancel(jc); /* verified, callback not yet run */
    policy_authcheck_cancel(NULL);
    policy_authcheck_process(ac);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 1);
    assert_int_equal(c.calls, 0);
    policy_authcheck_free(ac);
    policy_users_free(u);
}

static void test_queue_bound(void **state)
{
    (void)state;
    struct policy_users *u = users();
    struct policy_authcheck *ac = new_ac(0);
    static struct outcome o[POLICY_AUTHCHECK_QUEUE + 1];
    memset(o, 0, sizeof o);
    struct policy_authcheck_job *first = NULL;
    for (unsigned i = 0; i < POLICY_AUTHCHECK_QUEUE; i++) {
        struct policy_authcheck_job *j = policy_authcheck_submit(ac, u, "alice", "x", done, &o[i]);
        assert_non_null(j);
        if (i == 0)
            first = j;
    }
    /* limit + 1 is refused at once */
    assert_null(policy_authcheck_submit(ac, u, "alice", "x", done, &o[POLICY_AUTHCHECK_QUEUE]));
    /* a cancelled job holds its place until processed */
    policy_authcheck_cancel(first);
    assert_null(policy_authcheck_submit(ac, u, "alice", "x", done, &o[POLICY_AUTHCHECK_QUEUE]));
    assert_true(policy_authcheck_run_one(ac)); /* the cancelled one: no crypt */
    policy_authcheck_process(ac);
    assert_int_equal(o[0].calls, 0);
    assert_non_null(policy_authcheck_submit(ac, u, "alice", "x", done, &o[POLICY_AUTHCHECK_QUEUE]));
    assert_null(policy_authcheck_submit(ac, u, "alice", "x", done, &o[0]));
    /* freeing with jobs queued runs no callback and leaks nothing */
    policy_authcheck_free(ac);
    for (unsigned i = 0; i <= POLICY_AUTHCHECK_QUEUE; i++)
        assert_int_equal(o[i].calls, 0);
    policy_users_free(u);
}

static void test_oversize_and_no_users(void **state)
{
    (void)state;
    struct policy_users *u = users();
    struct policy_authcheck *ac = new_ac(0);
    struct outcome long_user = {0}, long_pass = {0}, max_user = {0}, no_users = {0};
    char user[400], pass[1100];
    memset(user, 'a', sizeof user - 1);
    user[sizeof user - 1] = '\0';
    memset(pass, 'p', sizeof pass - 1);
    pass[sizeof pass - 1] = '\0';
    assert_non_null(policy_authcheck_submit(ac, u, user, "alice-secret", done, &long_user));
    assert_non_null(policy_authcheck_submit(ac, u, "alice", pass, done, &long_pass));
    user[LIMIT_PATH] = '\0'; /* the longest that fits */
    assert_non_null(policy_authcheck_submit(ac, u, user, "alice-secret", done, &max_user));
    assert_non_null(policy_authcheck_submit(ac, NULL, "alice", "alice-secret", done, &no_users));
    while (policy_authcheck_run_one(ac))
        ;
    policy_authcheck_process(ac);
    assert_int_equal(long_user.result, POLICY_AUTH_BAD);
    assert_int_equal(long_pass.result, POLICY_AUTH_BAD);
    assert_int_equal(max_user.result, POLICY_AUTH_BAD);
    assert_int_equal(no_users.result, POLICY_AUTH_BAD);
    assert_int_equal(long_user.calls + long_pass.calls + max_user.calls + no_users.calls, 4);
    policy_authcheck_free(ac);
    policy_users_free(u);
}

static void test_threads(void **state)
{
    (void)state;
    struct policy_users *u = users();
    struct policy_authcheck *ac = new_ac(POLICY_AUTHCHECK_THREADS);
    enum { N = 12 };
    struct outcome o[N];
    memset(o, 0, sizeof o);
    struct policy_authcheck_job *jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = policy_authcheck_submit(ac, u, "alice", i % 2 ? "wrong" : "alice-secret", done,
                                          &o[i]);
        assert_non_null(jobs[i]);
    }
    policy_authcheck_cancel(jobs[N - 1]); /* queued or running: either way no callback */
    int expected = N - 1, got = 0;
    for (int waits = 0; got < expected && waits < 200; waits++) {
        if (readable(policy_authcheck_event_fd(ac), 100))
            policy_authcheck_process(ac);
        got = 0;
        for (int i = 0; i < N; i++)
            got += o[i].calls;
    }
    assert_int_equal(got, expected);
    for (int i = 0; i < N - 1; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].result, i % 2 ? POLICY_AUTH_BAD : POLICY_AUTH_OK);
    }
    /* jobs still running when freed: the workers finish them, no callback */
    struct outcome late = {0};
    assert_non_null(policy_authcheck_submit(ac, u, "alice", "alice-secret", done, &late));
    policy_authcheck_free(ac);
    assert_int_equal(late.calls, 0);
    assert_int_equal(o[N - 1].calls, 0);
    policy_users_free(u);
}

static void test_new_bounds(void **state)
{
    (void)state;
    char err[128] = "";
    assert_null(policy_authcheck_new(17, err, sizeof err));
    assert_non_null(strstr(err, "16"));
    struct policy_authcheck *ac = policy_authcheck_new(16, err, sizeof err);
    assert_non_null(ac);
    policy_authcheck_free(ac);
    policy_authcheck_free(NULL);
}

/* After a success the same name and password are answered without a worker (no job waits),
 * still through the eventfd; a wrong password always needs one, and is never remembered. */
static void test_success_remembered(void **state)
{
    (void)state;
    struct policy_users *u = users();
    struct policy_authcheck *ac = new_ac(0);
    struct outcome first = {0}, again = {0}, wrong = {0}, wrong_again = {0}, cancelled = {0};
    assert_non_null(policy_authcheck_submit(ac, u, "alice", "alice-secret", done, &first));
    assert_true(policy_authcheck_run_one(ac));
    policy_authcheck_process(ac);
    assert_int_equal(first.result, POLICY_AUTH_OK);

    assert_non_null(policy_authcheck_submit(ac, u, "Alice", "alice-secret", done, &again));
    assert_false(policy_authcheck_run_one(ac)); /* nothing for a worker */
    assert_true(readable(policy_authcheck_event_fd(ac), 0));
    assert_int_equal(again.calls, 0); /* never from inside submit */
    policy_authcheck_process(ac);
    assert_int_equal(again.calls, 1);
    assert_int_equal(again.result, POLICY_AUTH_OK);

    for (int i = 0; i < 2; i++) {
        struct outcome *o = i ? &wrong_again : &wrong;
        assert_non_null(policy_authcheck_submit(ac, u, "alice", "alice-secreT", done, o));
        assert_true(policy_authcheck_run_one(ac));
        policy_authcheck_process(ac);
        assert_int_equal(o->result, POLICY_AUTH_BAD);
    }

    struct policy_authcheck_job *j =
        policy_authcheck_submit(ac, u, "alice", "alice-secret", done, &cancelled);
    policy_authcheck_cancel(j);
    policy_authcheck_process(ac);
    assert_int_equal(cancelled.calls, 0);
    policy_authcheck_free(ac);
    policy_users_free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_in_order),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_queue_bound),
        cmocka_unit_test(test_oversize_and_no_users),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_new_bounds),
        cmocka_unit_test(test_success_remembered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
