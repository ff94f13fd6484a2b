/* base/workq.c — the work queue of workq.h: one mutex and condition variable over two FIFOs
 * (waiting for a worker, waiting for the owner), an eventfd to wake the owner's loop. */
#include "base/workq.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct base_workq {
    struct base_workq_cfg cfg;
    int event_fd;
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* pending gained a job, or stopping */
    struct base_fifo pending; /* waiting for a worker; under mu */
    struct base_fifo done;    /* waiting for base_workq_drain; under mu */
    size_t n_jobs;           /* submitted or completed, not yet drained; under mu */
    bool stopping;           /* under mu */
    unsigned n_threads;      /* started and not yet joined; owner only */
    pthread_t *threads;
};

static void wake_owner(struct base_workq *q)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the owner is woken anyway. */
    if (write(q->event_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        return;
}

/* Under mu: moves the next batch of pending into batch. */
static void take_batch(struct base_workq *q, struct base_fifo *batch)
{
    base_fifo_init(batch);
    if (q->cfg.batch_max == 0) {
        base_fifo_append(batch, &q->pending);
        return;
    }
    for (size_t n = 0; n < q->cfg.batch_max && !base_fifo_empty(&q->pending); n++)
        base_fifo_push(batch, base_fifo_pop(&q->pending));
}

/* Runs batch (outside mu) and posts it as finished. */
static void run_batch(struct base_workq *q, struct base_fifo *batch)
{
    q->cfg.run(q->cfg.ctx, batch);
    pthread_mutex_lock(&q->mu);
    base_fifo_append(&q->done, batch);
    pthread_mutex_unlock(&q->mu);
    wake_owner(q);
}

static void *worker_main(void *arg)
{
    struct base_workq *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (base_fifo_empty(&q->pending) && !q->stopping)
            pthread_cond_wait(&q->cv, &q->mu);
        if (base_fifo_empty(&q->pending) || (q->stopping && !q->cfg.finish_on_stop))
            break;
        struct base_fifo batch;
        take_batch(q, &batch);
        pthread_mutex_unlock(&q->mu);
        run_batch(q, &batch);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

bool base_workq_run_one(struct base_workq *q)
{
    struct base_fifo batch;
    pthread_mutex_lock(&q->mu);
    take_batch(q, &batch);
    pthread_mutex_unlock(&q->mu);
    if (base_fifo_empty(&batch))
        return false;
    run_batch(q, &batch);
    return true;
}

enum base_err base_workq_new(const struct base_workq_cfg *cfg, struct base_workq **out,
                             char *err, size_t errlen)
{
    char eb[128];
    *out = NULL;
    if (cfg->threads > BASE_WORKQ_THREADS_MAX || cfg->run == NULL || cfg->done == NULL) {
        (void)snprintf(err, errlen, "work queue: at most %u threads, and run and done given",
                       BASE_WORKQ_THREADS_MAX);
        return BASE_ERR_INVALID;
    }
    struct base_workq *q = calloc(1, sizeof *q);
    pthread_t *threads = calloc(cfg->threads > 0 ? cfg->threads : 1, sizeof *threads);
    if (q == NULL || threads == NULL) {
        free(q);
        free(threads);
        (void)snprintf(err, errlen, "work queue: out of memory");
        return BASE_ERR_NOMEM;
    }
    q->cfg = *cfg;
    q->threads = threads;
    base_fifo_init(&q->pending);
    base_fifo_init(&q->done);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->event_fd < 0) {
        (void)snprintf(err, errlen, "eventfd: %s", strerror_r(errno, eb, sizeof eb));
        base_workq_free(q);
        return BASE_ERR_SYSTEM;
    }
    for (; q->n_threads < cfg->threads; q->n_threads++) {
        int e = pthread_create(&q->threads[q->n_threads], NULL, worker_main, q);
        if (e != 0) {
            (void)snprintf(err, errlen, "cannot start a thread: %s",
                           strerror_r(e, eb, sizeof eb));
            base_workq_free(q);
            return BASE_ERR_SYSTEM;
        }
    }
    *out = q;
    return BASE_OK;
}

void base_workq_stop(struct base_workq *q)
{
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    for (unsigned i = 0; i < q->n_threads; i++)
        pthread_join(q->threads[i], NULL);
    q->n_threads = 0;
}

void base_workq_free(struct base_workq *q)
{
    if (q == NULL)
        return;
    base_workq_stop(q);
    struct base_fifo *left[] = {&q->pending, &q->done};
    for (size_t i = 0; i < sizeof left / sizeof left[0]; i++) {
        for (struct base_fifo_node *job; (job = base_fifo_pop(left[i])) != NULL;)
            if (q->cfg.discard != NULL)
                q->cfg.discard(q->cfg.ctx, job);
    }
    if (q->event_fd >= 0)
        close(q->event_fd);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q->threads);
    free(q);
}

int base_workq_event_fd(const struct base_workq *q)
{
    return q->event_fd;
}

enum base_err base_workq_submit(struct base_workq *q, struct base_fifo_node *job)
{
    enum base_err rc = BASE_OK;
    pthread_mutex_lock(&q->mu);
    if (q->stopping) {
        rc = BASE_ERR_CLOSED;
    } else if (q->cfg.max_jobs != 0 && q->n_jobs >= q->cfg.max_jobs) {
        rc = BASE_ERR_FULL;
    } else {
        base_fifo_push(&q->pending, job);
        q->n_jobs++;
        pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void base_workq_complete(struct base_workq *q, struct base_fifo_node *job)
{
    pthread_mutex_lock(&q->mu);
    base_fifo_push(&q->done, job);
    q->n_jobs++;
    pthread_mutex_unlock(&q->mu);
    wake_owner(q);
}

void base_workq_drain(struct base_workq *q)
{
    uint64_t v;
    if (read(q->event_fd, &v, sizeof v) < 0 && errno != EAGAIN)
        return;
    struct base_fifo finished;
    base_fifo_init(&finished);
    pthread_mutex_lock(&q->mu);
    base_fifo_append(&finished, &q->done);
    pthread_mutex_unlock(&q->mu);
    for (struct base_fifo_node *job; (job = base_fifo_pop(&finished)) != NULL;) {
        q->cfg.done(q->cfg.ctx, job);
        /* Counted until its callback has run, so a callback cannot overfill the queue. */
        pthread_mutex_lock(&q->mu);
        q->n_jobs--;
        pthread_mutex_unlock(&q->mu);
    }
}
