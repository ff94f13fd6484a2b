/* policy/authcheck.c — password verifications on a base/workq.h work queue: bounded, served by
 * worker threads, results back to the loop through its eventfd; secrets wiped once used.
 * Successes are remembered a few minutes (policy/authcache.h): a client logging in again with
 * the same password is answered from the loop thread, without a worker or a crypt. */
#include "policy/authcheck.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/workq.h"
#include "policy/authcache.h"
#include "smtp/sasl.h"

#define THREADS_MAX 16u

struct policy_authcheck_job {
    struct base_fifo_node node; /* in the work queue */
    const struct policy_users *users;
    policy_authcheck_fn *done;
    void *ctx;
    enum policy_auth_result result;
    atomic_bool cancelled; /* set on the loop thread, read by the worker and the loop */
    bool oversize;  /* user or pass did not fit: verify as an unknown user */
    char user[sizeof ((struct smtp_sasl_creds *)0)->user];
    char pass[sizeof ((struct smtp_sasl_creds *)0)->pass];
};

struct policy_authcheck {
    struct base_workq *wq;
    struct policy_authcache *cache; /* shared by the workers (it locks) */
};

static struct policy_authcheck_job *job_of(struct base_fifo_node *n)
{
    return BASE_CONTAINER_OF(n, struct policy_authcheck_job, node);
}

static void job_free(struct policy_authcheck_job *j)
{
    explicit_bzero(j, sizeof *j);
    free(j);
}

/* ---- the work queue's callbacks ---- */

/* On a worker: verifies one job (a cancelled one skips the crypt), remembers a success, and
 * wipes the password. */
static void verify(void *ctx, struct base_fifo *batch)
{
    struct policy_authcheck *ac = ctx;
    struct policy_authcheck_job *j = job_of(base_fifo_peek(batch));
    if (!atomic_load(&j->cancelled)) {
        j->result = j->oversize ? policy_users_verify(j->users, "", "")
                                : policy_users_verify(j->users, j->user, j->pass);
        if (j->result == POLICY_AUTH_OK)
            policy_authcache_store(ac->cache, j->users, j->user, j->pass, base_clock_mono_ms());
    }
    explicit_bzero(j->pass, sizeof j->pass);
}

/* On the loop thread: the session's callback, unless the session went away meanwhile. */
static void answer(void *ctx, struct base_fifo_node *n)
{
    (void)ctx;
    struct policy_authcheck_job *j = job_of(n);
    /* Read now: an earlier callback of this drain may have cancelled this job. */
    if (!atomic_load(&j->cancelled))
        j->done(j->ctx, j->result);
    job_free(j);
}

static void discard(void *ctx, struct base_fifo_node *n)
{
    (void)ctx;
    job_free(job_of(n));
}

#ifdef CLEARMTA_TESTING
bool policy_authcheck_run_one(struct policy_authcheck *ac)
{
    return base_workq_run_one(ac->wq);
}
#endif

/* ---- the loop side ---- */

struct policy_authcheck *policy_authcheck_new(unsigned threads, char *err, size_t errlen)
{
    if (threads > THREADS_MAX) {
        snprintf(err, errlen, "authcheck: at most %u threads", THREADS_MAX);
        return NULL;
    }
    struct policy_authcheck *ac = calloc(1, sizeof *ac);
    ac->cache = ac ? policy_authcache_new() : NULL;
    if (ac == NULL || ac->cache == NULL) {
        snprintf(err, errlen, "authcheck: out of memory");
        free(ac);
        return NULL;
    }
    /* One job per run: each crypt is long enough for the other worker to take the next. */
    struct base_workq_cfg cfg = {
        .threads = threads,
        .max_jobs = POLICY_AUTHCHECK_QUEUE,
        .batch_max = 1,
        .run = verify,
        .done = answer,
        .discard = discard,
        .ctx = ac,
    };
    char why[160];
    if (base_workq_new(&cfg, &ac->wq, why, sizeof why) != BASE_OK) {
        snprintf(err, errlen, "authcheck: %s", why);
        policy_authcache_free(ac->cache);
        free(ac);
        return NULL;
    }
    return ac;
}

void policy_authcheck_free(struct policy_authcheck *ac)
{
    if (ac == NULL)
        return;
    base_workq_free(ac->wq);
    policy_authcache_free(ac->cache);
    free(ac);
}

int policy_authcheck_event_fd(const struct policy_authcheck *ac)
{
    return base_workq_event_fd(ac->wq);
}

void policy_authcheck_process(struct policy_authcheck *ac)
{
    base_workq_drain(ac->wq);
}

/* Copies s into a buffer of cap bytes; false when it does not fit. */
static bool copy_bounded(char *out, size_t cap, const char *s)
{
    size_t len = strnlen(s, cap);
    if (len == cap)
        return false;
    memcpy(out, s, len + 1);
    return true;
}

struct policy_authcheck_job *policy_authcheck_submit(struct policy_authcheck *ac,
                                                     const struct policy_users *users,
                                                     const char *user, const char *pass,
                                                     policy_authcheck_fn *done, void *ctx)
{
    struct policy_authcheck_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    j->users = users;
    j->done = done;
    j->ctx = ctx;
    atomic_init(&j->cancelled, false);
    j->oversize = !copy_bounded(j->user, sizeof j->user, user) ||
                  !copy_bounded(j->pass, sizeof j->pass, pass);
    if (j->oversize)
        explicit_bzero(j->pass, sizeof j->pass);
    /* A remembered success needs no worker (an HMAC, microseconds): the answer still comes
     * from policy_authcheck_process, as the session expects. */
    if (!j->oversize &&
        policy_authcache_hit(ac->cache, users, j->user, j->pass, base_clock_mono_ms())) {
        j->result = POLICY_AUTH_OK;
        explicit_bzero(j->pass, sizeof j->pass);
        base_workq_complete(ac->wq, &j->node);
        return j;
    }
    /* FULL: POLICY_AUTHCHECK_QUEUE jobs are submitted and not yet handed back. */
    if (base_workq_submit(ac->wq, &j->node) != BASE_OK) {
        job_free(j);
        return NULL;
    }
    return j;
}

void policy_authcheck_cancel(struct policy_authcheck_job *job)
{
    if (job == NULL)
        return;
    atomic_store(&job->cancelled, true);
}
