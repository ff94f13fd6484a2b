/* tests/unit/test_store_lazysync.c — the sync nobody waits for: a request leads to a syncfs soon,
 * requests made meanwhile share one, free runs the one still asked for, a failure is logged;
 * descriptors handed over are closed by the thread, and by free at the latest. */
#include "unit.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store/fault.h"
#include "store/lazysync.h"

static int open_tmp(void)
{
    int fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

static void wait_count(struct store_lazysync *s, uint64_t n)
{
    for (int i = 0; i < 500 && store_lazysync_count(s) < n; i++)
        usleep(10000);
    assert_true(store_lazysync_count(s) >= n);
}

static void test_request_leads_to_a_sync(void **state)
{
    (void)state;
    int fd = open_tmp();
    struct store_lazysync *s;
    assert_int_equal(store_lazysync_new(fd, NULL, NULL, &s), STORE_OK);
    usleep(20000);
    assert_int_equal(store_lazysync_count(s), 0); /* nothing asked, nothing done */
    store_lazysync_request(s);
    wait_count(s, 1);
    store_lazysync_free(s);
    close(fd);
}

static void test_requests_share_syncs(void **state)
{
    (void)state;
    int fd = open_tmp();
    struct store_lazysync *s;
    assert_int_equal(store_lazysync_new(fd, NULL, NULL, &s), STORE_OK);
    for (int i = 0; i < 200; i++)
        store_lazysync_request(s);
    wait_count(s, 1);
    uint64_t n = store_lazysync_count(s);
    assert_true(n < 200); /* requests made during a sync share the next one */
    store_lazysync_free(s);
    close(fd);
}

/* fcntl(F_GETFD) on a closed descriptor fails with EBADF. */
static bool is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static void test_handed_descriptors_are_closed(void **state)
{
    (void)state;
    int fd = open_tmp();
    struct store_lazysync *s;
    assert_int_equal(store_lazysync_new(fd, NULL, NULL, &s), STORE_OK);
    int fds[100];
    for (int i = 0; i < 100; i++) { /* more than one batch of the thread */
        fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(fds[i] >= 0);
    }
    for (int i = 0; i < 100; i++)
        store_lazysync_close(s, fds[i]);
    for (int i = 0; i < 500 && (is_open(fds[0]) || is_open(fds[99])); i++)
        usleep(10000);
    assert_false(is_open(fds[0]));
    assert_false(is_open(fds[99]));
    assert_int_equal(store_lazysync_count(s), 0); /* closing is not syncing */
    int last = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(last >= 0);
    store_lazysync_close(s, last);
    store_lazysync_free(s); /* at once: the one handed over last is closed too */
    assert_false(is_open(last));
    close(fd);
}

static char logged[256];

static void log_line(void *ctx, const char *line)
{
    (void)ctx;
    snprintf(logged, sizeof logged, "%s", line);
}

static void test_free_runs_the_sync_asked_for_and_logs_its_failure(void **state)
{
    (void)state;
    int fd = open_tmp();
    struct store_lazysync *s;
    assert_int_equal(store_fault_set("sync=EIO"), 0);
    assert_int_equal(store_lazysync_new(fd, log_line, NULL, &s), STORE_OK);
    store_lazysync_request(s);
    store_lazysync_free(s); /* at once: the sync still asked for runs, and its failure is logged */
    store_fault_set(NULL);
    assert_non_null(strstr(logged, "queue sync of delivery outcomes failed"));
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_leads_to_a_sync),
        cmocka_unit_test(test_requests_share_syncs),
        cmocka_unit_test(test_handed_descriptors_are_closed),
        cmocka_unit_test(test_free_runs_the_sync_asked_for_and_logs_its_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
