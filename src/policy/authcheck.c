/* policy/authcheck.c — a bounded queue of password verifications served by worker threads,
 * results back to the loop through an eventfd (mutex + lists, as store/queue.c does commits). */
#include "policy/authcheck.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "smtp/sasl.h"

#define THREADS_MAX 16u

struct policy_authcheck_job {
    struct policy_authcheck *ac;
    struct policy_authcheck_job *next;
    const struct policy_users *users;
    policy_authcheck_fn *done;
    void *ctx;
    enum policy_auth_result result;
    bool cancelled; /* written by the loop thread under mu; workers read it under mu */
    bool oversize;  /* user or pass did not fit: verify as an unknown user */
    char user[sizeof ((struct smtp_sasl_creds *)0)->user];
    char pass[sizeof ((struct smtp_sasl_creds *)0)->pass];
};

struct job_list {
    struct policy_authcheck_job *head, **tail;
};

struct policy_authcheck {
    int event_fd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job_list pending; /* waiting for a worker */
    struct job_list done;    /* waiting for their callback */
    bool stopping;
    unsigned n_threads;
    pthread_t threads[THREADS_MAX];
    size_t in_flight; /* submitted, not yet freed; loop thread only */
};

static void list_init(struct job_list *l)
{
    l->head = NULL;
    l->tail = &l->head;
}

static void list_push(struct job_list *l, struct policy_authcheck_job *j)
{
    j->next = NULL;
    *l->tail = j;
    l->tail = &j->next;
}

static struct policy_authcheck_job *list_pop(struct job_list *l)
{
    struct policy_authcheck_job *j = l->head;
    if (j != NULL) {
        l->head = j->next;
        if (l->head == NULL)
            l->tail = &l->head;
    }
    return j;
}

static void job_free(struct policy_authcheck_job *j)
{
    explicit_bzero(j, sizeof *j);
    free(j);
}

/* ---- workers ---- */

static void wake_loop(struct policy_authcheck *ac)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the loop is woken anyway. */
    if (write(ac->event_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        return;
}

/* Verifies one job taken from pending (cancelled jobs skip the crypt) and posts it as done. */
static void work(struct policy_authcheck *ac, struct policy_authcheck_job *j, bool skip)
{
    if (!skip)
        j->result = j->oversize ? policy_users_verify(j->users, "", "")
                                : policy_users_verify(j->users, j->user, j->pass);
    explicit_bzero(j->pass, sizeof j->pass);
    pthread_mutex_lock(&ac->mu);
    list_push(&ac->done, j);
    pthread_mutex_unlock(&ac->mu);
    wake_loop(ac);
}

static void *worker_main(void *arg)
{
    struct policy_authcheck *ac = arg;
    pthread_mutex_lock(&ac->mu);
    for (;;) {
        while (ac->pending.head == NULL && !ac->stopping)
            pthread_cond_wait(&ac->cv, &ac->mu);
        if (ac->stopping)
            break;
        struct policy_authcheck_job *j = list_pop(&ac->pending);
        bool skip = j->cancelled;
        pthread_mutex_unlock(&ac->mu);
        work(ac, j, skip);
        pthread_mutex_lock(&ac->mu);
    }
    pthread_mutex_unlock(&ac->mu);
    return NULL;
}

#ifdef CLEARMTA_TESTING
bool policy_authcheck_run_one(struct policy_authcheck *ac)
{
    pthread_mutex_lock(&ac->mu);
    struct policy_authcheck_job *j = list_pop(&ac->pending);
    bool skip = j != NULL && j->cancelled;
    pthread_mutex_unlock(&ac->mu);
    if (j != NULL)
        work(ac, j, skip);
    return j != NULL;
}
#endif

/* ---- the loop side ---- */

static void stop_workers(struct policy_authcheck *ac)
{
    pthread_mutex_lock(&ac->mu);
    ac->stopping = true;
    pthread_cond_broadcast(&ac->cv);
    pthread_mutex_unlock(&ac->mu);
    for (unsigned i = 0; i < ac->n_threads; i++)
        pthread_join(ac->threads[i], NULL);
    ac->n_threads = 0;
}

struct policy_authcheck *policy_authcheck_new(unsigned threads, char *err, size_t errlen)
{
    if (threads > THREADS_MAX) {
        snprintf(err, errlen, "authcheck: at most %u threads", THREADS_MAX);
        return NULL;
    }
    struct policy_authcheck *ac = calloc(1, sizeof *ac);
    if (ac == NULL) {
        snprintf(err, errlen, "authcheck: out of memory");
        return NULL;
    }
    list_init(&ac->pending);
    list_init(&ac->done);
    pthread_mutex_init(&ac->mu, NULL);
    pthread_cond_init(&ac->cv, NULL);
    ac->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ac->event_fd < 0) {
        snprintf(err, errlen, "authcheck: eventfd: %s", strerror(errno));
        policy_authcheck_free(ac);
        return NULL;
    }
    for (; ac->n_threads < threads; ac->n_threads++) {
        int e = pthread_create(&ac->threads[ac->n_threads], NULL, worker_main, ac);
        if (e != 0) {
            snprintf(err, errlen, "authcheck: cannot start a thread: %s", strerror(e));
            policy_authcheck_free(ac);
            return NULL;
        }
    }
    return ac;
}

void policy_authcheck_free(struct policy_authcheck *ac)
{
    if (ac == NULL)
        return;
    stop_workers(ac);
    struct job_list *lists[] = {&ac->pending, &ac->done};
    for (size_t i = 0; i < 2; i++) {
        struct policy_authcheck_job *j;
        while ((j = list_pop(lists[i])) != NULL)
            job_free(j);
    }
    if (ac->event_fd >= 0)
        close(ac->event_fd);
    pthread_mutex_destroy(&ac->mu);
    pthread_cond_destroy(&ac->cv);
    free(ac);
}

int policy_authcheck_event_fd(const struct policy_authcheck *ac)
{
    return ac->event_fd;
}

void policy_authcheck_process(struct policy_authcheck *ac)
{
    uint64_t v;
    if (read(ac->event_fd, &v, sizeof v) < 0 && errno != EAGAIN)
        return;
    pthread_mutex_lock(&ac->mu);
    struct policy_authcheck_job *j = ac->done.head;
    list_init(&ac->done);
    pthread_mutex_unlock(&ac->mu);
    while (j != NULL) {
        struct policy_authcheck_job *next = j->next;
        /* Read now: an earlier callback of this batch may have cancelled this job. */
        if (!j->cancelled)
            j->done(j->ctx, j->result);
        job_free(j);
        ac->in_flight--;
        j = next;
    }
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
    if (ac->in_flight >= POLICY_AUTHCHECK_QUEUE)
        return NULL;
    struct policy_authcheck_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    j->ac = ac;
    j->users = users;
    j->done = done;
    j->ctx = ctx;
    j->oversize = !copy_bounded(j->user, sizeof j->user, user) ||
                  !copy_bounded(j->pass, sizeof j->pass, pass);
    if (j->oversize)
        explicit_bzero(j->pass, sizeof j->pass);
    ac->in_flight++;
    pthread_mutex_lock(&ac->mu);
    list_push(&ac->pending, j);
    pthread_cond_signal(&ac->cv);
    pthread_mutex_unlock(&ac->mu);
    return j;
}

void policy_authcheck_cancel(struct policy_authcheck_job *job)
{
    if (job == NULL)
        return;
    pthread_mutex_lock(&job->ac->mu);
    job->cancelled = true;
    pthread_mutex_unlock(&job->ac->mu);
}
