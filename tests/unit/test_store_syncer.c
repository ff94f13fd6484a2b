/* tests/unit/test_store_syncer.c — the shared syncfs with work between two syncs: the step runs
 * once, after a sync that covers the caller's writes (its error reaches the step) and before
 * the sync whose error the caller gets; under threads every step runs exactly once, before its
 * caller returns, and the plain syncs go on beside the two-step ones. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "store/fault.h"
#include "store/syncer.h"

struct record {
    int runs;
    int data_err;
};

static void record_run(void *ctx, int data_err)
{
    struct record *r = ctx;
    r->runs++;
    r->data_err = data_err;
}

static struct store_syncer *syncer_on_tmp(int *fd)
{
    *fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(*fd >= 0);
    struct store_syncer *s = store_syncer_new(*fd);
    assert_non_null(s);
    return s;
}

/* Alone: two syncs, the step between them; a fault on the nth sync shows which one is which. */
static void run_alone(const char *fault, int want_data_err, int want_err)
{
    int fd;
    struct store_syncer *s = syncer_on_tmp(&fd);
    struct record r = {0, -1};
    struct store_syncer_step step = {.run = record_run, .ctx = &r};
    unsigned syncs = 0;
    assert_int_equal(store_fault_set(fault), 0);
    int e = store_syncer_sync_twice(s, STORE_FAULT_SYNC, &step, &syncs);
    store_fault_set(NULL);
    assert_int_equal(r.runs, 1);
    assert_int_equal(r.data_err, want_data_err);
    assert_int_equal(e, want_err);
    assert_int_equal(syncs, 2);
    store_syncer_free(s);
    close(fd);
}

static void test_step_between_two_syncs(void **state)
{
    (void)state;
    run_alone(NULL, 0, 0);
}

static void test_first_sync_failure_reaches_the_step(void **state)
{
    (void)state;
    run_alone("sync=EIO@1", EIO, 0);
}

static void test_second_sync_failure_reaches_the_caller(void **state)
{
    (void)state;
    run_alone("sync=EIO@2", 0, EIO);
}

#define THREADS 4
#define ROUNDS 50

struct worker {
    struct store_syncer *s;
    bool twice;
    unsigned syncs;
    int bad; /* steps that did not run exactly once before their caller returned */
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        if (!w->twice) {
            bool ran;
            assert_int_equal(store_syncer_sync(w->s, STORE_FAULT_SYNC, &ran), 0);
            w->syncs += ran;
            continue;
        }
        struct record r = {0, -1};
        struct store_syncer_step step = {.run = record_run, .ctx = &r};
        unsigned syncs;
        assert_int_equal(store_syncer_sync_twice(w->s, STORE_FAULT_SYNC, &step, &syncs), 0);
        w->syncs += syncs;
        w->bad += r.runs != 1 || r.data_err != 0;
    }
    return NULL;
}

static void test_threads_share_syncs_and_run_every_step_once(void **state)
{
    (void)state;
    int fd;
    struct store_syncer *s = syncer_on_tmp(&fd);
    struct worker w[THREADS + 1];
    pthread_t t[THREADS + 1];
    for (int i = 0; i <= THREADS; i++) {
        w[i] = (struct worker){s, i < THREADS, 0, 0}; /* the last one: plain syncs */
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    unsigned total = 0;
    for (int i = 0; i <= THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].bad, 0);
        total += w[i].syncs;
    }
    print_message("%d two-step and %d plain callers: %u syncs\n", THREADS * ROUNDS, ROUNDS,
                  total);
    assert_true(total >= 2 && total <= 2 * THREADS * ROUNDS + ROUNDS);
    store_syncer_free(s);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_between_two_syncs),
        cmocka_unit_test(test_first_sync_failure_reaches_the_step),
        cmocka_unit_test(test_second_sync_failure_reaches_the_caller),
        cmocka_unit_test(test_threads_share_syncs_and_run_every_step_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
