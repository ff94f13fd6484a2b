/* tests/unit/test_base_workq.c — the work queue: FIFO order through one worker and through
 * base_workq_run_one, batches, many jobs over several workers, the bound, jobs handed back
 * without running, and stopping with jobs still waiting (discarded, or finished first). */
#include "unit.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/workq.h"

struct job {
    struct base_fifo_node node;
    size_t index;
    size_t value; /* index * index once run */
    bool ran;
};

/* What the callbacks saw; the run side is written by the workers. */
struct seen {
    atomic_size_t runs, batches, largest_batch;
    size_t done[64], n_done, total_done;
    size_t discarded;
    bool in_order;
    struct base_workq *q;        /* for the done callback that submits again */
    struct job *resubmit;        /* submitted from the first done callback, then NULL */
    /* A gate the worker waits at before running the job with index 0. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool gated, gate_open, first_started;
};

static struct job *job_of(struct base_fifo_node *n)
{
    return BASE_CONTAINER_OF(n, struct job, node);
}

static void wait_gate(struct seen *s)
{
    pthread_mutex_lock(&s->mu);
    s->first_started = true;
    pthread_cond_broadcast(&s->cv);
    while (!s->gate_open)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

static void run(void *ctx, struct base_fifo *batch)
{
    struct seen *s = ctx;
    size_t n = 0;
    for (struct base_fifo_node *node = base_fifo_peek(batch); node != NULL; node = node->next) {
        struct job *j = job_of(node);
        if (s->gated && j->index == 0)
            wait_gate(s);
        j->value = j->index * j->index;
        j->ran = true;
        n++;
    }
    atomic_fetch_add(&s->runs, n);
    atomic_fetch_add(&s->batches, 1);
    size_t largest = atomic_load(&s->largest_batch);
    while (n > largest && !atomic_compare_exchange_weak(&s->largest_batch, &largest, n))
        ;
}

static void done(void *ctx, struct base_fifo_node *node)
{
    struct seen *s = ctx;
    struct job *j = job_of(node);
    if (j->ran)
        assert_int_equal(j->value, j->index * j->index);
    if (s->n_done > 0 && s->done[(s->n_done - 1) % 64] + 1 != j->index)
        s->in_order = false;
    s->done[s->n_done++ % 64] = j->index;
    s->total_done++;
    if (s->resubmit != NULL) {
        /* A callback may submit: drain holds no lock while it calls back. */
        assert_int_equal(base_workq_submit(s->q, &s->resubmit->node), BASE_OK);
        s->resubmit = NULL;
    }
}

static void discard(void *ctx, struct base_fifo_node *node)
{
    struct seen *s = ctx;
    (void)node;
    s->discarded++;
}

static void seen_init(struct seen *s)
{
    memset(s, 0, sizeof *s);
    s->in_order = true;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
}

static struct base_workq *make(struct seen *s, unsigned threads, size_t max_jobs,
                               size_t batch_max, bool finish_on_stop)
{
    seen_init(s);
    struct base_workq_cfg cfg = {
        .threads = threads,
        .max_jobs = max_jobs,
        .batch_max = batch_max,
        .finish_on_stop = finish_on_stop,
        .run = run,
        .done = done,
        .discard = discard,
        .ctx = s,
    };
    char err[128] = "";
    struct base_workq *q = NULL;
    assert_int_equal(base_workq_new(&cfg, &q, err, sizeof err), BASE_OK);
    assert_non_null(q);
    s->q = q;
    return q;
}

/* n jobs numbered from 0, the first `submit` of them submitted to q. */
static struct job *jobs_new(struct base_workq *q, size_t n, size_t submit)
{
    struct job *jobs = calloc(n, sizeof *jobs);
    assert_non_null(jobs);
    for (size_t i = 0; i < n; i++)
        jobs[i].index = i;
    for (size_t i = 0; i < submit; i++)
        assert_int_equal(base_workq_submit(q, &jobs[i].node), BASE_OK);
    return jobs;
}

static bool readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) == 1;
}

/* Drains as the owner's loop would until `want` jobs came back in all. */
static void drain_until(struct base_workq *q, struct seen *s, size_t want)
{
    while (s->total_done < want) {
        assert_true(readable(base_workq_event_fd(q), 10000));
        base_workq_drain(q);
    }
}

static void test_order_one_worker(void **state)
{
    (void)state;
    struct seen s;
    struct base_workq *q = make(&s, 1, 0, 1, false);
    struct job *jobs = jobs_new(q, 200, 200);
    drain_until(q, &s, 200);
    assert_true(s.in_order);
    assert_int_equal(atomic_load(&s.runs), 200);
    assert_int_equal(atomic_load(&s.largest_batch), 1);
    base_workq_free(q);
    assert_int_equal(s.discarded, 0);
    free(jobs);
}

static void test_run_one_and_eventfd(void **state)
{
    (void)state;
    struct seen s;
    struct base_workq *q = make(&s, 0, 0, 1, false);
    struct job *jobs = jobs_new(q, 4, 3);
    s.resubmit = &jobs[3];
    assert_false(readable(base_workq_event_fd(q), 0));
    base_workq_drain(q); /* nothing finished: no callback, no blocking */
    assert_int_equal(s.total_done, 0);
    assert_true(base_workq_run_one(q));
    assert_true(readable(base_workq_event_fd(q), 0));
    base_workq_drain(q);
    assert_int_equal(s.total_done, 1); /* job 0, whose callback submitted job 3 */
    assert_false(readable(base_workq_event_fd(q), 0));
    while (base_workq_run_one(q))
        ;
    base_workq_drain(q);
    assert_int_equal(s.total_done, 4);
    assert_true(s.in_order); /* 1, 2, then 3 behind them */
    base_workq_free(q);
    free(jobs);
}

static void test_batches(void **state)
{
    (void)state;
    struct seen s;
    struct base_workq *q = make(&s, 0, 0, 0, false); /* 0: everything waiting */
    struct job *jobs = jobs_new(q, 7, 7);
    assert_true(base_workq_run_one(q));
    assert_false(base_workq_run_one(q));
    assert_int_equal(atomic_load(&s.batches), 1);
    assert_int_equal(atomic_load(&s.largest_batch), 7);
    base_workq_drain(q);
    assert_int_equal(s.total_done, 7);
    base_workq_free(q);
    free(jobs);

    q = make(&s, 0, 0, 3, false); /* at most 3 per run */
    jobs = jobs_new(q, 10, 10);
    while (base_workq_run_one(q))
        ;
    assert_int_equal(atomic_load(&s.batches), 4); /* 3 + 3 + 3 + 1 */
    assert_int_equal(atomic_load(&s.largest_batch), 3);
    base_workq_drain(q);
    assert_int_equal(s.total_done, 10);
    assert_true(s.in_order);
    base_workq_free(q);
    free(jobs);
}

static void test_many_jobs_many_workers(void **state)
{
    (void)state;
    enum { N = 20000 };
    struct seen s;
    struct base_workq *q = make(&s, 4, 0, 1, false);
    struct job *jobs = jobs_new(q, N, N);
    drain_until(q, &s, N);
    assert_int_equal(s.total_done, N); /* each exactly once: done asserted each value */
    assert_int_equal(atomic_load(&s.runs), N);
    for (size_t i = 0; i < N; i++)
        assert_true(jobs[i].ran);
    base_workq_free(q);
    assert_int_equal(s.discarded, 0);
    free(jobs);
}

static void test_bounded(void **state)
{
    (void)state;
    struct seen s;
    struct base_workq *q = make(&s, 0, 3, 1, false);
    struct job *jobs = jobs_new(q, 6, 3);
    assert_int_equal(base_workq_submit(q, &jobs[3].node), BASE_ERR_FULL);
    assert_true(base_workq_run_one(q));
    /* Run but not yet handed back: still counted. */
    assert_int_equal(base_workq_submit(q, &jobs[3].node), BASE_ERR_FULL);
    base_workq_drain(q);
    assert_int_equal(base_workq_submit(q, &jobs[3].node), BASE_OK);
    assert_int_equal(base_workq_submit(q, &jobs[4].node), BASE_ERR_FULL);
    /* A job handed straight back is counted too, but never refused. */
    base_workq_complete(q, &jobs[4].node);
    assert_true(readable(base_workq_event_fd(q), 0));
    base_workq_drain(q);
    assert_int_equal(s.total_done, 2);
    assert_false(jobs[4].ran);
    base_workq_stop(q);
    assert_int_equal(base_workq_submit(q, &jobs[5].node), BASE_ERR_CLOSED);
    base_workq_free(q);
    assert_int_equal(s.discarded, 3); /* 1, 2 and 3: waiting, never run */
    assert_int_equal(atomic_load(&s.runs), 1);
    free(jobs);
}

static void *stop_thread(void *arg)
{
    base_workq_stop(arg);
    return NULL;
}

/* Job 0 is running when the queue stops, jobs 1..4 wait. *state: finish_on_stop. */
static void test_stop_with_waiting_jobs(void **state)
{
    bool finish_on_stop = *(const bool *)*state;
    struct seen s;
    struct base_workq *q = make(&s, 1, 5, 1, finish_on_stop);
    s.gated = true; /* before any job: the worker reads it when it takes job 0 */
    struct job *jobs = jobs_new(q, 6, 5);
    pthread_mutex_lock(&s.mu);
    while (!s.first_started)
        pthread_cond_wait(&s.cv, &s.mu);
    pthread_mutex_unlock(&s.mu);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_thread, q), 0);
    /* FULL until the stop has begun, CLOSED after: only then may job 0 finish. */
    enum base_err e;
    while ((e = base_workq_submit(q, &jobs[5].node)) == BASE_ERR_FULL)
        usleep(1000);
    assert_int_equal(e, BASE_ERR_CLOSED);
    pthread_mutex_lock(&s.mu);
    s.gate_open = true;
    pthread_cond_broadcast(&s.cv);
    pthread_mutex_unlock(&s.mu);
    pthread_join(t, NULL);
    /* Finished jobs can still be drained after the stop. */
    base_workq_drain(q);
    base_workq_free(q);
    if (finish_on_stop) {
        assert_int_equal(atomic_load(&s.runs), 5);
        assert_int_equal(s.total_done, 5);
        assert_true(s.in_order);
        assert_int_equal(s.discarded, 0);
    } else {
        assert_int_equal(atomic_load(&s.runs), 1);
        assert_int_equal(s.total_done, 1);
        assert_int_equal(s.discarded, 4);
        for (size_t i = 1; i < 5; i++)
            assert_false(jobs[i].ran);
    }
    free(jobs);
}

static void test_free_discards_undrained(void **state)
{
    (void)state;
    struct seen s;
    struct base_workq *q = make(&s, 0, 0, 1, false);
    struct job *jobs = jobs_new(q, 3, 3);
    assert_true(base_workq_run_one(q)); /* finished, never drained */
    base_workq_free(q);
    assert_int_equal(s.total_done, 0);
    assert_int_equal(s.discarded, 3);
    base_workq_free(NULL);
    free(jobs);
}

static void test_invalid(void **state)
{
    (void)state;
    struct seen s;
    seen_init(&s);
    struct base_workq_cfg cfg = {.threads = BASE_WORKQ_THREADS_MAX + 1, .run = run,
                                 .done = done, .ctx = &s};
    char err[128] = "";
    struct base_workq *q = (struct base_workq *)&s;
    assert_int_equal(base_workq_new(&cfg, &q, err, sizeof err), BASE_ERR_INVALID);
    assert_null(q);
    assert_true(strlen(err) > 0);
    cfg.threads = 1;
    cfg.run = NULL;
    assert_int_equal(base_workq_new(&cfg, &q, err, sizeof err), BASE_ERR_INVALID);
}

int main(void)
{
    static bool discard_waiting = false, finish_waiting = true;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_one_worker),
        cmocka_unit_test(test_run_one_and_eventfd),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_many_jobs_many_workers),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test_prestate(test_stop_with_waiting_jobs, &discard_waiting),
        cmocka_unit_test_prestate(test_stop_with_waiting_jobs, &finish_waiting),
        cmocka_unit_test(test_free_discards_undrained),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
