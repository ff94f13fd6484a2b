/* tests/unit/test_base_io.c — base_write_all: a write larger than a pipe holds goes out whole
 * in pieces, a write interrupted by a signal goes on, a broken descriptor is an error; and every
 * base error has a text. */
#include "unit.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/io.h"

#define BIG (1024 * 1024) /* 16 pipe buffers: many partial writes */

struct reader {
    int fd;
    size_t got;
    unsigned char sum;
};

static void *read_all(void *arg)
{
    struct reader *r = arg;
    char buf[4096];
    for (ssize_t n; (n = read(r->fd, buf, sizeof buf)) > 0;) {
        for (ssize_t i = 0; i < n; i++)
            r->sum = (unsigned char)(r->sum + (unsigned char)buf[i]);
        r->got += (size_t)n;
        usleep(100); /* keep the pipe full so that writes come back short */
    }
    return NULL;
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* *state: whether signals interrupt the write. */
static void test_write_through_pipe(void **state)
{
    bool interrupt = *(const bool *)*state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    unsigned char *data = malloc(BIG), sum = 0;
    assert_non_null(data);
    for (size_t i = 0; i < BIG; i++) {
        data[i] = (unsigned char)(i * 7);
        sum = (unsigned char)(sum + data[i]);
    }
    struct reader r = {.fd = p[0]};
    /* The reader starts with SIGALRM blocked: the signals go to the writing thread. */
    sigset_t alarm_only;
    sigemptyset(&alarm_only);
    sigaddset(&alarm_only, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alarm_only, NULL);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, read_all, &r), 0);
    pthread_sigmask(SIG_UNBLOCK, &alarm_only, NULL);
    alarms = 0;
    if (interrupt) {
        /* Without SA_RESTART a signal makes a blocked write return short or fail with EINTR. */
        struct sigaction sa = {.sa_handler = on_alarm};
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval every_ms = {{0, 1000}, {0, 1000}};
        setitimer(ITIMER_REAL, &every_ms, NULL);
    }
    assert_int_equal(base_write_all(p[1], data, BIG), BASE_OK);
    if (interrupt) {
        struct itimerval off = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &off, NULL);
        signal(SIGALRM, SIG_IGN); /* one may still be on its way */
        assert_true(alarms > 0);
    }
    close(p[1]);
    pthread_join(t, NULL);
    close(p[0]);
    assert_int_equal(r.got, BIG);
    assert_int_equal(r.sum, sum);
    free(data);
}

static void test_errors(void **state)
{
    (void)state;
    assert_int_equal(base_write_all(-1, "x", 1), BASE_ERR_IO);
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(base_write_all(p[1], "x", 1), BASE_ERR_IO); /* EPIPE */
    close(p[1]);
    assert_int_equal(base_write_all(-1, "", 0), BASE_OK); /* nothing to write */
}

static void test_strerror(void **state)
{
    (void)state;
#define CHECK_TEXT(name, text) assert_string_equal(base_strerror(name), text);
    BASE_ERRORS(CHECK_TEXT)
#undef CHECK_TEXT
    assert_string_equal(base_strerror((enum base_err)999), "unknown base error");
}

int main(void)
{
    static bool partial_writes = false, interrupted = true;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_write_through_pipe, &partial_writes),
        cmocka_unit_test_prestate(test_write_through_pipe, &interrupted),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
