/* base/workq.h — a small work queue: worker threads take jobs from a bounded FIFO and run them
 * off the event loop; finished jobs go back to the owner's thread through an eventfd that the
 * owner watches with its own loop (base knows no libevent), and base_workq_drain() hands them
 * to the owner one by one. */
#ifndef CLEARMTA_BASE_WORKQ_H
#define CLEARMTA_BASE_WORKQ_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "base/fifo.h"

/* Worker threads one queue may have: far above what any caller needs on the machines we run
 * on; a bound keeps a bad configuration from exhausting the process. */
#define BASE_WORKQ_THREADS_MAX 64u

struct base_workq;

/* A job is a struct base_fifo_node embedded in the caller's struct (BASE_CONTAINER_OF gets it
 * back). The queue links it while it holds it; the caller allocates and frees it. */

/* On a worker thread: runs the jobs taken in one go, oldest first (1..batch_max of them). It
 * must leave batch as it is: the queue hands the same jobs back, in that order. */
typedef void base_workq_run_fn(void *ctx, struct base_fifo *batch);

/* On the owner's thread, from base_workq_drain(): one finished job, in the order jobs finished.
 * The job is the callback's from then on (it frees it). */
typedef void base_workq_job_fn(void *ctx, struct base_fifo_node *job);

struct base_workq_cfg {
    unsigned threads;       /* 0..BASE_WORKQ_THREADS_MAX; 0: jobs run only through
                             * base_workq_run_one (tests) */
    size_t max_jobs;        /* jobs submitted (or completed) and not yet drained; beyond,
                             * submit says BASE_ERR_FULL. 0: no bound */
    size_t batch_max;       /* jobs one run call takes; 0: every job waiting (group commit) */
    bool finish_on_stop;    /* stopping runs the jobs still waiting (else they never run) */
    base_workq_run_fn *run; /* required */
    base_workq_job_fn *done;    /* required */
    base_workq_job_fn *discard; /* frees a job that will never reach done (still waiting, or
                                 * finished and not drained, when the queue is freed); NULL:
                                 * such jobs are just forgotten */
    void *ctx;              /* passed to every callback */
};

/* Creates the eventfd and starts the threads. On failure *out is NULL and err holds one line
 * (with the system's reason). Errors: INVALID (threads above the maximum, run or done NULL),
 * NOMEM, SYSTEM (no eventfd, or a thread did not start). */
enum base_err base_workq_new(const struct base_workq_cfg *cfg, struct base_workq **out,
                             char *err, size_t errlen);

/* Stops (base_workq_stop), passes every job not drained to discard, closes the eventfd, frees
 * q. Callbacks other than discard do not run. Safe on NULL. */
void base_workq_free(struct base_workq *q);

/* Stops taking jobs and joins the threads: a job running finishes; jobs waiting run first
 * when finish_on_stop, else they stay queued until base_workq_free discards them. Finished
 * jobs can still be drained. Later submits say BASE_ERR_CLOSED. Idempotent. */
void base_workq_stop(struct base_workq *q);

/* Readable when finished jobs wait: the owner's loop watches it and calls base_workq_drain().
 * Owned by q. */
int base_workq_event_fd(const struct base_workq *q);

/* Queues job (not in any FIFO) for a worker. Any thread. Errors: FULL (max_jobs not yet
 * drained), CLOSED (stopped); the job is then still the caller's. */
enum base_err base_workq_submit(struct base_workq *q, struct base_fifo_node *job);

/* Hands job straight to the finished ones without running it (a job that failed before it
 * needed a worker), so that its done callback still comes from base_workq_drain(). Counts
 * towards max_jobs but is never refused. Any thread. */
void base_workq_complete(struct base_workq *q, struct base_fifo_node *job);

/* On the owner's thread: clears the eventfd and calls done for every finished job. Never
 * blocks on a worker. A done callback may submit again. */
void base_workq_drain(struct base_workq *q);

/* Runs the oldest waiting batch on the calling thread (as a worker would) and posts it as
 * finished. False when no job was waiting. For queues with 0 threads (tests). */
bool base_workq_run_one(struct base_workq *q);

#endif
