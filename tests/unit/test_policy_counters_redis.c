/* tests/unit/test_policy_counters_redis.c — the Redis counters backend against a real
 * redis-server the test starts on a free loopback port: limits, the fleet sharing one count,
 * reads, age, timeouts, Redis killed and restarted, cancel and free with calls pending. */
#include "unit.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "policy/counters.h"

#define WAIT_MS 5000u /* bound of every wait: a broken backend fails the test, never hangs it */

struct redis_proc {
    pid_t pid;
    int port;
    char dir[64];
    char server[32]; /* "127.0.0.1:PORT" */
};

static struct redis_proc redis;
static struct event_base *base;

/* ---- the redis-server ---- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static bool answers_ping(int port)
{
    struct timeval tv = {0, 200000};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", port, tv);
    bool ok = false;
    if (rc != NULL && rc->err == 0) {
        redisReply *rep = redisCommand(rc, "PING");
        ok = rep != NULL && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
        freeReplyObject(rep);
    }
    redisFree(rc);
    return ok;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts redis-server on redis.port; fails (not skips) when it is missing or never answers. */
static void start_redis(void)
{
    char port[16];
    snprintf(port, sizeof port, "%d", redis.port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
        int null = open("/dev/null", O_WRONLY); /* not freopen: it would flush our buffer */
        if (null >= 0)
            dup2(null, STDOUT_FILENO);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save",
               "", "--appendonly", "no", "--dir", redis.dir, (char *)NULL);
        _exit(127);
    }
    redis.pid = pid;
    for (unsigned waited = 0; !answers_ping(redis.port); waited += 20) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            redis.pid = 0;
            fail_msg("redis-server exited (status %d): is it installed?", status);
        }
        if (waited > WAIT_MS)
            fail_msg("redis-server on port %d does not answer PING", redis.port);
        sleep_ms(20);
    }
}

static void stop_redis(void)
{
    if (redis.pid > 0) {
        kill(redis.pid, SIGKILL);
        waitpid(redis.pid, NULL, 0);
        redis.pid = 0;
    }
}

/* Runs one command on a blocking connection; returns its integer answer (0 otherwise). */
static long long redis_command(const char *cmd)
{
    struct timeval tv = {1, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", redis.port, tv);
    assert_true(rc != NULL && rc->err == 0);
    redisReply *rep = redisCommand(rc, cmd);
    assert_non_null(rep);
    long long v = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
    freeReplyObject(rep);
    redisFree(rc);
    return v;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(redis.dir, sizeof redis.dir, "/tmp/clearmta-redis-XXXXXX");
    if (mkdtemp(redis.dir) == NULL)
        return -1;
    redis.port = free_port();
    snprintf(redis.server, sizeof redis.server, "127.0.0.1:%d", redis.port);
    start_redis();
    base = event_base_new();
    return base != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    stop_redis();
    rmdir(redis.dir);
    event_base_free(base);
    return 0;
}

/* ---- the loop ---- */

struct waiter {
    int calls;
    struct policy_counters_result res;
    struct policy_counters *free_me; /* freed from inside the callback when set */
};

static void on_result(void *ctx, const struct policy_counters_result *res)
{
    struct waiter *w = ctx;
    w->calls++;
    w->res = *res;
    if (w->free_me != NULL) {
        policy_counters_free(w->free_me);
        w->free_me = NULL;
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    *(bool *)arg = true;
}

/* Runs the loop until *calls reaches n or ms pass; returns whether it did. */
static bool run_until(const int *calls, int n, unsigned ms)
{
    bool late = false;
    struct event *deadline = evtimer_new(base, on_deadline, &late);
    struct timeval tv = {ms / 1000, (long)(ms % 1000) * 1000};
    evtimer_add(deadline, &tv);
    while (*calls < n && !late)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(deadline);
    return *calls >= n;
}

static struct policy_counters *new_backend(const char *prefix, unsigned timeout_ms)
{
    char err[160] = "";
    struct policy_counters *c =
        policy_counters_redis_new(base, redis.server, prefix, timeout_ms, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(err, "");
    return c;
}

/* One decision, waited for: it must be pending and answered from the loop. */
static struct policy_counters_result hit(struct policy_counters *c, const char *key,
                                         uint64_t amount, uint64_t limit, uint64_t window_ms)
{
    struct policy_counters_request req = {key, amount, limit, window_ms};
    struct waiter w = {0};
    struct policy_counters_result res;
    struct policy_counters_call *call = NULL;
    assert_false(policy_counters_hit(c, &req, &res, on_result, &w, &call));
    assert_non_null(call);
    assert_int_equal(w.calls, 0); /* never from inside hit() */
    assert_true(run_until(&w.calls, 1, WAIT_MS));
    assert_int_equal(w.res.limit, limit);
    return w.res;
}

/* Hits until Redis answers (after a restart the reconnect takes up to a second). */
static struct policy_counters_result hit_until_answered(struct policy_counters *c,
                                                        const char *key)
{
    struct policy_counters_result r;
    for (unsigned waited = 0; waited < WAIT_MS; waited += 50) {
        r = hit(c, key, 1, 0, 60000);
        if (r.status != POLICY_COUNTERS_UNAVAILABLE)
            return r;
        sleep_ms(50);
    }
    fail_msg("redis counters never came back: %s", r.error);
    return r;
}

#define MIN 60000u

/* ---- tests ---- */

static void test_new_rejects_bad_servers(void **state)
{
    (void)state;
    static const char *bad[] = {"localhost:6379", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",
                                "127.0.0.1:65536", "127.0.0.1:6x", "::1:6379", "[::1]:",
                                "[]:6379", ":6379", "[127.0.0.1]:6379"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[160] = "";
        assert_null(policy_counters_redis_new(base, bad[i], NULL, 0, err, sizeof err));
        assert_non_null(strstr(err, "expected"));
    }
    char prefix[80];
    memset(prefix, 'p', sizeof prefix - 1);
    prefix[sizeof prefix - 1] = '\0';
    char err[160] = "";
    assert_null(policy_counters_redis_new(base, "127.0.0.1:1", prefix, 0, err, sizeof err));
    assert_non_null(strstr(err, "prefix"));
    struct policy_counters *c = policy_counters_redis_new(base, "[::1]:6379", NULL, 0, NULL, 0);
    assert_non_null(c);
    assert_string_equal(policy_counters_backend(c), "redis");
    policy_counters_free(c);
}

static void test_allowed_up_to_limit_then_denied(void **state)
{
    (void)state;
    struct policy_counters *c = new_backend(NULL, 0);
    for (uint64_t i = 1; i <= 3; i++) {
        struct policy_counters_result r = hit(c, "limit:alice", 1, 3, MIN);
        assert_int_equal(r.status, POLICY_COUNTERS_ALLOWED);
        assert_int_equal(r.count, i);
        assert_true(r.retry_after_ms > MIN && r.retry_after_ms <= MIN + 1000);
    }
    struct policy_counters_result r = hit(c, "limit:alice", 1, 3, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_DENIED);
    assert_int_equal(r.count, 3);
    assert_true(r.retry_after_ms > MIN - 5000 && r.retry_after_ms <= MIN + 1000);
    r = hit(c, "limit:alice", 2, 4, MIN); /* 3 + 2 > 4: the one slot must leave */
    assert_int_equal(r.status, POLICY_COUNTERS_DENIED);
    r = hit(c, "limit:alice", 5, 4, MIN); /* can never fit */
    assert_int_equal(r.status, POLICY_COUNTERS_DENIED);
    assert_int_equal(r.retry_after_ms, MIN);
    r = hit(c, "limit:alice", 1000, 0, MIN); /* unlimited */
    assert_int_equal(r.status, POLICY_COUNTERS_ALLOWED);
    assert_int_equal(r.count, 1003);
    assert_int_equal(policy_counters_failures(c), 0);
    /* One hash per key and window: its slots and "first", expiring a window + a slot on. */
    long long fields = redis_command("HLEN clearmta:limit:alice:60000");
    assert_true(fields >= 2 && fields <= 5); /* 4 counted hits, in one slot or a few */
    assert_int_equal(redis_command("HEXISTS clearmta:limit:alice:60000 first"), 1);
    long long ttl = redis_command("PTTL clearmta:limit:alice:60000");
    assert_true(ttl > MIN - 5000 && ttl <= MIN + 1000);
    policy_counters_free(c);
}

static void test_fleet_shares_the_count(void **state)
{
    (void)state;
    struct policy_counters *a = new_backend(NULL, 0);
    struct policy_counters *b = new_backend(NULL, 0);
    int allowed = 0;
    for (int i = 0; i < 30; i++) {
        allowed += hit(a, "fleet:plan", 1, 50, MIN).status == POLICY_COUNTERS_ALLOWED;
        allowed += hit(b, "fleet:plan", 1, 50, MIN).status == POLICY_COUNTERS_ALLOWED;
    }
    assert_int_equal(allowed, 50);
    assert_int_equal(hit(a, "fleet:plan", 0, 50, MIN).count, 50);
    /* Another prefix is another fleet. */
    struct policy_counters *other = new_backend("other:", 0);
    assert_int_equal(hit(other, "fleet:plan", 0, 50, MIN).count, 0);
    policy_counters_free(other);
    policy_counters_free(a);
    policy_counters_free(b);
}

static void test_concurrent_calls_never_exceed(void **state)
{
    (void)state;
    struct policy_counters *c = new_backend(NULL, 2000);
    enum { N = 200 };
    struct waiter w = {0};
    struct waiter each[N];
    struct policy_counters_request req = {"burst", 1, 50, MIN};
    struct policy_counters_result res;
    memset(each, 0, sizeof each);
    for (int i = 0; i < N; i++)
        assert_false(policy_counters_hit(c, &req, &res, on_result, &each[i], NULL));
    int allowed = 0, denied = 0;
    for (unsigned waited = 0; waited < WAIT_MS && allowed + denied < N; waited += 10) {
        w.calls = 0;
        run_until(&w.calls, 1, 10);
        allowed = denied = 0;
        for (int i = 0; i < N; i++) {
            assert_true(each[i].calls <= 1);
            allowed += each[i].calls == 1 && each[i].res.status == POLICY_COUNTERS_ALLOWED;
            denied += each[i].calls == 1 && each[i].res.status == POLICY_COUNTERS_DENIED;
        }
    }
    assert_int_equal(allowed, 50);
    assert_int_equal(denied, N - 50);
    policy_counters_free(c);
}

static void test_amount_zero_reads_and_age_grows(void **state)
{
    (void)state;
    struct policy_counters *c = new_backend(NULL, 0);
    struct policy_counters_result r = hit(c, "grey:net:s:r", 0, 1, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_ALLOWED);
    assert_int_equal(r.count, 0);
    assert_int_equal(r.age_ms, 0);
    assert_int_equal(r.retry_after_ms, 0);
    r = hit(c, "grey:net:s:r", 1, 0, MIN);
    assert_int_equal(r.count, 1);
    assert_true(r.age_ms < 1000);
    sleep_ms(120);
    r = hit(c, "grey:net:s:r", 0, 0, MIN);
    assert_int_equal(r.count, 1);
    assert_true(r.age_ms >= 110 && r.age_ms < WAIT_MS);
    /* A read at a limit already reached says DENIED and counts nothing. */
    r = hit(c, "grey:net:s:r", 0, 1, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_ALLOWED);
    r = hit(c, "grey:net:s:r", 1, 1, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_DENIED);
    assert_int_equal(hit(c, "grey:net:s:r", 0, 0, MIN).count, 1);
    /* The window is part of the key. */
    assert_int_equal(hit(c, "grey:net:s:r", 0, 0, 2 * MIN).count, 0);
    policy_counters_free(c);
}

static void test_short_window_frees_up(void **state)
{
    (void)state;
    struct policy_counters *c = new_backend(NULL, 0);
    /* 600 ms in slots of 10 ms. */
    struct policy_counters_result r = hit(c, "short", 1, 1, 600);
    assert_int_equal(r.status, POLICY_COUNTERS_ALLOWED);
    r = hit(c, "short", 1, 1, 600);
    assert_int_equal(r.status, POLICY_COUNTERS_DENIED);
    assert_true(r.retry_after_ms > 0 && r.retry_after_ms <= 610);
    sleep_ms((unsigned)r.retry_after_ms + 5);
    r = hit(c, "short", 1, 1, 600);
    assert_int_equal(r.status, POLICY_COUNTERS_ALLOWED);
    assert_int_equal(r.count, 1);
    /* 6 s in slots of 100 ms, hits 1 s apart: one more waits for the first to leave, two
     * more for both. */
    hit(c, "two-slots", 1, 2, 6000);
    sleep_ms(1000);
    hit(c, "two-slots", 1, 2, 6000);
    r = hit(c, "two-slots", 1, 2, 6000);
    assert_int_equal(r.status, POLICY_COUNTERS_DENIED);
    assert_true(r.retry_after_ms > 0 && r.retry_after_ms <= 5100);
    r = hit(c, "two-slots", 2, 2, 6000);
    assert_int_equal(r.status, POLICY_COUNTERS_DENIED);
    assert_true(r.retry_after_ms >= 5500 && r.retry_after_ms <= 6100);
    policy_counters_free(c);
}

static void test_key_bytes_and_bad_requests(void **state)
{
    (void)state;
    struct policy_counters *c = new_backend(NULL, 0);
    assert_int_equal(hit(c, "bytes:\xff\x01 \r\n*3", 2, 0, MIN).count, 2);
    assert_int_equal(hit(c, "bytes:\xff\x01 \r\n*3", 0, 0, MIN).count, 2);
    char key[POLICY_COUNTERS_KEY_MAX + 2];
    memset(key, 'k', sizeof key - 1);
    key[POLICY_COUNTERS_KEY_MAX] = '\0';
    assert_int_equal(hit(c, key, 1, 0, MIN).count, 1); /* the longest key */
    key[POLICY_COUNTERS_KEY_MAX] = 'k';
    key[POLICY_COUNTERS_KEY_MAX + 1] = '\0';
    struct policy_counters_request req = {key, 1, 0, MIN};
    struct policy_counters_result res;
    struct policy_counters_call *call = (struct policy_counters_call *)&res;
    assert_true(policy_counters_hit(c, &req, &res, on_result, NULL, &call));
    assert_null(call);
    assert_int_equal(res.status, POLICY_COUNTERS_UNAVAILABLE);
    req.key = "k";
    req.amount = (1ull << 53);
    assert_true(policy_counters_hit(c, &req, &res, on_result, NULL, NULL));
    assert_int_equal(res.status, POLICY_COUNTERS_UNAVAILABLE);
    req.amount = 1;
    req.window_ms = 10;
    assert_true(policy_counters_hit(c, &req, &res, on_result, NULL, NULL));
    assert_int_equal(res.status, POLICY_COUNTERS_UNAVAILABLE);
    assert_int_equal(policy_counters_failures(c), 3);
    policy_counters_free(c);
}

static void test_script_flushed(void **state)
{
    (void)state;
    struct policy_counters *c = new_backend(NULL, 0);
    assert_int_equal(hit(c, "flush", 1, 0, MIN).count, 1);
    assert_int_equal(hit(c, "flush", 1, 0, MIN).count, 2); /* by now through EVALSHA */
    redis_command("SCRIPT FLUSH");
    assert_int_equal(hit(c, "flush", 1, 0, MIN).count, 3); /* NOSCRIPT: sent again as EVAL */
    assert_int_equal(hit(c, "flush", 1, 0, MIN).count, 4);
    assert_int_equal(policy_counters_failures(c), 0);
    policy_counters_free(c);
}

static void test_redis_error_is_unavailable(void **state)
{
    (void)state;
    struct policy_counters *c = new_backend(NULL, 0);
    redis_command("SET clearmta:wrongtype:60000 x");
    struct policy_counters_result r = hit(c, "wrongtype", 1, 5, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_UNAVAILABLE);
    assert_non_null(strstr(r.error, "redis: WRONGTYPE"));
    assert_int_equal(r.limit, 5);
    assert_int_equal(policy_counters_failures(c), 1);
    policy_counters_free(c);
}

static void test_cancel(void **state)
{
    (void)state;
    struct policy_counters *c = new_backend(NULL, 0);
    struct policy_counters_request req = {"cancel", 1, 0, MIN};
    struct policy_counters_result res;
    struct waiter w = {0}, other = {0};
    struct policy_counters_call *call;
    assert_false(policy_counters_hit(c, &req, &res, on_result, &w, &call));
    assert_false(policy_counters_hit(c, &req, &res, on_result, &other, NULL));
    policy_counters_cancel(call);
    assert_true(run_until(&other.calls, 1, WAIT_MS));
    int none = 0;
    run_until(&none, 1, 100);
    assert_int_equal(w.calls, 0);
    policy_counters_free(c);
}

static void test_free_with_calls_pending(void **state)
{
    (void)state;
    struct policy_counters *c = new_backend(NULL, 0);
    struct policy_counters_request req = {"pending", 1, 0, MIN};
    struct policy_counters_result res;
    struct waiter w = {0};
    for (int i = 0; i < 10; i++)
        assert_false(policy_counters_hit(c, &req, &res, on_result, &w, NULL));
    policy_counters_free(c); /* before the connection is even made */
    c = new_backend(NULL, 0);
    hit(c, "pending", 1, 0, MIN); /* connected now */
    for (int i = 0; i < 10; i++)
        assert_false(policy_counters_hit(c, &req, &res, on_result, &w, NULL));
    policy_counters_free(c); /* requests in flight */
    int none = 0;
    run_until(&none, 1, 100);
    assert_int_equal(w.calls, 0);
}

static void test_free_from_the_callback(void **state)
{
    (void)state;
    struct policy_counters *c = new_backend(NULL, 0);
    hit(c, "reentrant", 1, 0, MIN);
    struct policy_counters_request req = {"reentrant", 1, 0, MIN};
    struct policy_counters_result res;
    struct waiter w = {.free_me = c}, later = {0};
    assert_false(policy_counters_hit(c, &req, &res, on_result, &w, NULL));
    assert_false(policy_counters_hit(c, &req, &res, on_result, &later, NULL));
    assert_true(run_until(&w.calls, 1, WAIT_MS));
    assert_null(w.free_me);
    int none = 0;
    run_until(&none, 1, 100);
    assert_int_equal(later.calls, 0);
}

static void test_no_answer_times_out(void **state)
{
    (void)state;
    struct policy_counters *c = new_backend(NULL, 100);
    hit(c, "stopped", 1, 0, MIN);
    kill(redis.pid, SIGSTOP);
    struct policy_counters_result r = hit(c, "stopped", 1, 0, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_UNAVAILABLE);
    assert_string_equal(r.error, "redis: no answer within 100 ms");
    struct policy_counters_request req = {"stopped", 1, 0, MIN};
    struct policy_counters_result res;
    struct waiter w = {0};
    assert_false(policy_counters_hit(c, &req, &res, on_result, &w, NULL));
    kill(redis.pid, SIGCONT);
    /* The late answers arrive and are ignored: exactly one callback each. */
    assert_true(run_until(&w.calls, 1, WAIT_MS));
    int none = 0;
    run_until(&none, 1, 200);
    assert_int_equal(w.calls, 1);
    r = hit(c, "stopped", 0, 0, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_ALLOWED);
    assert_int_equal(r.count, 3); /* the timed-out hits were counted by Redis all the same */
    assert_int_equal(policy_counters_failures(c), w.res.status == POLICY_COUNTERS_UNAVAILABLE
                                                      ? 2 : 1);
    policy_counters_free(c);
}

static void test_stuck_redis_is_dropped(void **state)
{
    (void)state;
    struct policy_counters *c = new_backend(NULL, 100);
    hit(c, "stuck", 1, 0, MIN);
    kill(redis.pid, SIGSTOP);
    /* Timeouts with no answer for 4 timeouts (at least 1 s): the connection is re-made, so
     * calls stop piling up in it; after that, calls fail without waiting for a timeout. */
    bool dropped = false;
    for (int i = 0; i < 40 && !dropped; i++) {
        struct policy_counters_result r = hit(c, "stuck", 1, 0, MIN);
        assert_int_equal(r.status, POLICY_COUNTERS_UNAVAILABLE);
        dropped = strstr(r.error, "connection dropped") != NULL;
    }
    kill(redis.pid, SIGCONT);
    assert_true(dropped);
    assert_int_equal(hit_until_answered(c, "stuck").status, POLICY_COUNTERS_ALLOWED);
    policy_counters_free(c);
}

static void test_redis_killed_and_restarted(void **state)
{
    (void)state;
    struct policy_counters *c = new_backend(NULL, 300);
    struct policy_counters *freed_in_cb = new_backend(NULL, 300);
    assert_int_equal(hit(c, "restart", 1, 0, MIN).status, POLICY_COUNTERS_ALLOWED);
    hit(freed_in_cb, "restart", 0, 0, MIN);
    struct policy_counters_request req = {"restart", 1, 0, MIN};
    struct policy_counters_result res;
    struct waiter w = {0}, w2 = {.free_me = freed_in_cb};
    assert_false(policy_counters_hit(c, &req, &res, on_result, &w, NULL));
    assert_false(policy_counters_hit(freed_in_cb, &req, &res, on_result, &w2, NULL));
    stop_redis();
    /* In flight when it died (or answered just before): one answer, within the timeout. */
    assert_true(run_until(&w.calls, 1, 1000));
    assert_true(run_until(&w2.calls, 1, 1000));
    /* While it is down: UNAVAILABLE from the loop, at once. */
    struct policy_counters_result r = hit(c, "restart", 1, 0, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_UNAVAILABLE);
    assert_non_null(strstr(r.error, "redis: "));
    assert_true(policy_counters_failures(c) >= 1);
    /* Reconnect attempts (once a second) fail quietly. */
    sleep_ms(1100);
    w.calls = 0;
    run_until(&w.calls, 1, 200);
    assert_int_equal(hit(c, "restart", 1, 0, MIN).status, POLICY_COUNTERS_UNAVAILABLE);
    start_redis(); /* the same port, empty */
    struct policy_counters_result back = hit_until_answered(c, "restart");
    assert_int_equal(back.status, POLICY_COUNTERS_ALLOWED);
    assert_int_equal(back.count, 1);
    assert_int_equal(hit(c, "restart", 1, 0, MIN).count, 2);
    policy_counters_free(c);
}

static void test_never_connected(void **state)
{
    (void)state;
    char server[32];
    snprintf(server, sizeof server, "127.0.0.1:%d", free_port());
    struct policy_counters *c = policy_counters_redis_new(base, server, NULL, 100, NULL, 0);
    assert_non_null(c);
    struct policy_counters_result r = hit(c, "nowhere", 1, 10, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_UNAVAILABLE);
    assert_non_null(strstr(r.error, "redis: "));
    r = hit(c, "nowhere", 1, 10, MIN);
    assert_int_equal(r.status, POLICY_COUNTERS_UNAVAILABLE);
    assert_int_equal(policy_counters_failures(c), 2);
    policy_counters_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_bad_servers),
        cmocka_unit_test(test_allowed_up_to_limit_then_denied),
        cmocka_unit_test(test_fleet_shares_the_count),
        cmocka_unit_test(test_concurrent_calls_never_exceed),
        cmocka_unit_test(test_amount_zero_reads_and_age_grows),
        cmocka_unit_test(test_short_window_frees_up),
        cmocka_unit_test(test_key_bytes_and_bad_requests),
        cmocka_unit_test(test_script_flushed),
        cmocka_unit_test(test_redis_error_is_unavailable),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_free_with_calls_pending),
        cmocka_unit_test(test_free_from_the_callback),
        cmocka_unit_test(test_no_answer_times_out),
        cmocka_unit_test(test_stuck_redis_is_dropped),
        cmocka_unit_test(test_redis_killed_and_restarted),
        cmocka_unit_test(test_never_connected),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
