/* store/deliver_local.c — the local delivery runner. One thread takes every message waiting,
 * writes one Maildir file per local recipient, then makes the whole batch durable with shared
 * syncs (data, new/ directories, queue updates) so delivery keeps up with group commit.
 * Order per batch: files synced → renamed into new/ → new/ synced → queue file updated or
 * removed → synced. A crash anywhere redelivers at worst, never loses or half-delivers.
 * In syncfs mode the syncs are the queue's shared syncfs (riding on the commit thread's when
 * they overlap), and the last one is deferred: the queue update is covered by the next sync
 * of either thread, or by one when the runner goes idle; losing it only redelivers. */
#include "store/deliver_local.h"

#include <errno.h>
#include <sys/file.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/fifo.h"
#include "store/fault.h"
#include "store/flags.h"
#include "store/maildir.h"
#include "store/queue_file.h"

/* Messages per batch: bounds the open files and memory of one batch; a batch still shares its
 * syncs across up to this many messages. */
#define BATCH_MAX 256
/* Waiting jobs that keep their queue file open: beyond this a backlog costs no descriptors (the
 * runner reopens by id), so a slow disk cannot make the server run out of them. */
#define HELD_FDS_MAX 1024
#define LOG_LINE_MAX (2 * STORE_QF_FIELD_MAX + 512)
/* Seconds between checks whether a held message was released: `queue release` reaches the
 * runner through the flag file only, and a stat per held message per second is cheap. */
#define HOLD_POLL_SECONDS 1

struct job {
    struct base_fifo_node node; /* in ready, retry or held */
    char id[STORE_ID_LEN + 1];
    int fd;      /* open on the queue file, or -1 */
    int64_t due; /* CLOCK_MONOTONIC seconds before which a retry waits */
};

struct store_local {
    struct store_local_cfg cfg;
    struct store_maildir md;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct base_fifo ready, retry; /* retry is in due order: one fixed backoff */
    struct base_fifo held;         /* held messages (store/flags.h), in due order too */
    int flags_fd;                 /* flags/, -1 when it cannot be opened: nothing is held */
    size_t held_fds;              /* jobs in ready with fd >= 0 */
    bool stopping;
    pthread_t thread;
    bool queue_unsynced; /* runner thread only: queue updates wait for the next syncfs */
    store_local_success_fn success; /* under mu; the runner copies it at each batch */
    void *success_ctx;
    atomic_uint_fast64_t delivered, deferred, batches, syncs, removed;
};

/* A message of the batch, its header parsed. */
struct loaded {
    struct job *job;
    struct store_qf qf;
    bool retry;           /* a local recipient failed: try again after the backoff */
    bool dirty;           /* recipient states were rewritten: needs a sync */
};

/* One local recipient of one message. */
struct attempt {
    struct loaded *msg;
    size_t rcpt;
    struct store_maildir_file f;
    char dir[STORE_MAILDIR_DIR_MAX]; /* where it goes: store_maildir_target; f.user points here */
    int err;          /* errno of the failed step, 0 while all is well */
    const char *step; /* which step failed */
};

/* ---- small helpers ---- */

static int64_t mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

/* The job of a FIFO node; NULL for NULL (an empty list's head). */
static struct job *job_of(struct base_fifo_node *n)
{
    return n != NULL ? BASE_CONTAINER_OF(n, struct job, node) : NULL;
}

static struct job *list_pop(struct base_fifo *l)
{
    return job_of(base_fifo_pop(l));
}

static void job_free(struct job *j)
{
    if (j->fd >= 0)
        close(j->fd);
    free(j);
}

static void logf_line(struct store_local *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void logf_line(struct store_local *l, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    va_list ap;
    if (l->cfg.log == NULL)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* A truncated line is still worth logging; the bound only protects the buffer. */
    if (n >= 0)
        l->cfg.log(l->cfg.log_ctx, line);
}

static const char *errno_text(int e, char *buf, size_t cap)
{
    return strerror_r(e, buf, cap);
}

static void fail(struct attempt *a, int e, const char *step)
{
    a->err = e;
    a->step = step;
}

/* ---- loading queue files ---- */

enum load_result { LOAD_OK, LOAD_DROP, LOAD_RETRY, LOAD_HOLD };

static enum load_result load(struct store_local *l, struct job *j, struct loaded *m)
{
    char eb[128];
    m->job = j;
    if (store_flags_get(l->flags_fd, j->id, STORE_FLAG_HOLD))
        return LOAD_HOLD;
    if (j->fd < 0) {
        j->fd = openat(l->cfg.queue_fd, j->id, O_RDWR | O_CLOEXEC);
        if (j->fd < 0) {
            if (errno == ENOENT) /* removed meanwhile, e.g. by an administrator */
                return LOAD_DROP;
            logf_line(l, "%s: cannot open queue file: %s", j->id, errno_text(errno, eb, sizeof eb));
            return LOAD_RETRY;
        }
    }
    enum store_err err = store_qf_read(j->fd, &m->qf);
    if (err == STORE_OK && strcmp(m->qf.id, j->id) != 0) {
        store_qf_free(&m->qf);
        err = STORE_ERR_CORRUPT;
    }
    if (err == STORE_ERR_CORRUPT) {
        logf_line(l, "%s: queue file corrupt, left in the queue for inspection", j->id);
        return LOAD_DROP;
    }
    if (err != STORE_OK) {
        logf_line(l, "%s: cannot read queue file: %s", j->id, store_strerror(err));
        return LOAD_RETRY;
    }
    return LOAD_OK;
}

static bool wants_local(const struct store_qf *qf, size_t i)
{
    return qf->env.rcpts[i].local_user != NULL && qf->state[i] == STORE_RCPT_PENDING;
}

/* ---- the steps of a batch ---- */

static void write_files(struct store_local *l, struct loaded *msgs, size_t n_msgs,
                        struct attempt *att, size_t *n_att)
{
    char prefix[STORE_QF_FIELD_MAX + 32];
    size_t k = 0;
    for (size_t m = 0; m < n_msgs; m++) {
        const struct store_qf *qf = &msgs[m].qf;
        /* The sender holds no control characters (checked by the parser): no header injection. */
        size_t plen;
        bool prefix_ok = store_maildir_return_path(prefix, sizeof prefix, qf->env.sender, &plen);
        for (size_t i = 0; i < qf->env.n_rcpts; i++) {
            if (!wants_local(qf, i))
                continue;
            struct attempt *a = &att[k++];
            a->msg = &msgs[m];
            a->rcpt = i;
            a->f.fd = -1;
            if (!prefix_ok) {
                fail(a, ENAMETOOLONG, "Return-Path too long");
                continue;
            }
            if (!store_maildir_target(qf->env.rcpts[i].local_user, qf->env.folder, a->dir,
                                      sizeof a->dir)) {
                fail(a, ENAMETOOLONG, "Maildir folder name too long");
                continue;
            }
            int e = store_maildir_write(&l->md, a->dir, prefix, plen, msgs[m].job->fd,
                                        qf->header_len, qf->size, &a->f);
            if (e != 0)
                fail(a, e, "maildir write failed");
        }
    }
    *n_att = k;
}

/* One syncfs covering every write of this thread so far: the shared one when there is one. */
static int local_syncfs(struct store_local *l, enum store_fault_op op)
{
    bool ran = true;
    int e = l->cfg.syncer != NULL ? store_syncer_sync(l->cfg.syncer, op, &ran)
                                  : store_io_syncfs(op, l->md.root_fd);
    if (ran)
        atomic_fetch_add(&l->syncs, 1);
    if (e == 0)
        l->queue_unsynced = false;
    return e;
}

static bool any_alive(const struct attempt *att, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (att[i].err == 0)
            return true;
    return false;
}

static void sync_files(struct store_local *l, struct attempt *att, size_t n)
{
    int shared = 0;
    if (any_alive(att, n) && l->cfg.sync_mode == STORE_SYNC_SYNCFS)
        shared = local_syncfs(l, STORE_FAULT_MAILDIR_SYNC);
    for (size_t i = 0; i < n; i++) {
        struct attempt *a = &att[i];
        if (a->err != 0)
            continue;
        int e = shared;
        if (l->cfg.sync_mode != STORE_SYNC_SYNCFS) {
            e = store_maildir_fdatasync(&a->f);
            atomic_fetch_add(&l->syncs, 1);
        }
        if (e != 0) {
            fail(a, e, "maildir sync failed");
            store_maildir_discard(&l->md, &a->f);
        }
    }
}

static void publish_files(struct store_local *l, struct attempt *att, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct attempt *a = &att[i];
        if (a->err != 0)
            continue;
        int e = store_maildir_publish(&l->md, &a->f);
        if (e != 0) {
            fail(a, e, "maildir rename failed");
            store_maildir_discard(&l->md, &a->f);
        }
    }
}

static int by_user(const void *x, const void *y)
{
    const struct attempt *a = *(const struct attempt *const *)x;
    const struct attempt *b = *(const struct attempt *const *)y;
    return strcmp(a->f.user, b->f.user);
}

/* One fsync per distinct new/ directory. If it fails the files in it are removed again, so the
 * retry does not deliver twice. */
static void sync_new_dirs(struct store_local *l, struct attempt *att, size_t n)
{
    if (l->cfg.sync_mode == STORE_SYNC_SYNCFS) {
        /* syncfs writes the directory blocks too: one for every new/ of the batch. */
        int e = any_alive(att, n) ? local_syncfs(l, STORE_FAULT_MAILDIR_SYNC) : 0;
        for (size_t i = 0; e != 0 && i < n; i++) {
            if (att[i].err == 0) {
                fail(&att[i], e, "maildir sync failed");
                store_maildir_discard(&l->md, &att[i].f);
            }
        }
        return;
    }
    struct attempt **order = malloc((n > 0 ? n : 1) * sizeof *order);
    size_t k = 0;
    if (order == NULL) {
        for (size_t i = 0; i < n; i++) {
            if (att[i].err == 0) {
                fail(&att[i], ENOMEM, "maildir sync failed");
                store_maildir_discard(&l->md, &att[i].f);
            }
        }
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (att[i].err == 0)
            order[k++] = &att[i];
    qsort(order, k, sizeof *order, by_user);
    for (size_t g = 0; g < k;) {
        size_t end = g + 1;
        while (end < k && strcmp(order[end]->f.user, order[g]->f.user) == 0)
            end++;
        int e = store_maildir_sync_new(&l->md, order[g]->f.user);
        atomic_fetch_add(&l->syncs, 1);
        for (size_t i = g; e != 0 && i < end; i++) {
            fail(order[i], e, "maildir sync failed");
            store_maildir_discard(&l->md, &order[i]->f);
        }
        g = end;
    }
    free(order);
}

/* Takes the final states another writer (the delivery agent) recorded on disk into qf. */
static void merge_disk_states(int fd, struct store_qf *qf)
{
    struct store_qf now;
    if (store_qf_read(fd, &now) != STORE_OK)
        return;
    if (now.env.n_rcpts == qf->env.n_rcpts)
        for (size_t i = 0; i < qf->env.n_rcpts; i++)
            if (now.state[i] != STORE_RCPT_PENDING && qf->state[i] == STORE_RCPT_PENDING)
                qf->state[i] = now.state[i];
    store_qf_free(&now);
}

/* Marks delivered recipients "sent", or removes the queue file when none is left pending. */
static void update_queue(struct store_local *l, struct loaded *msgs, size_t n_msgs,
                         struct attempt *att, size_t n_att)
{
    char eb[128];
    bool dir_dirty = false, files_dirty = false;
    size_t a = 0;
    for (size_t m = 0; m < n_msgs; m++) {
        struct store_qf *qf = &msgs[m].qf;
        size_t first = a;
        while (a < n_att && att[a].msg == &msgs[m]) {
            if (att[a].err == 0)
                qf->state[att[a].rcpt] = STORE_RCPT_SENT;
            else
                msgs[m].retry = true;
            a++;
        }
        /* The delivery agent records remote outcomes in the same file: under the lock, take
         * its states from disk before deciding whether anything is left pending. */
        int fd = msgs[m].job->fd;
        while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
            ;
        merge_disk_states(fd, qf);
        bool pending = false;
        for (size_t i = 0; i < qf->env.n_rcpts; i++)
            pending = pending || qf->state[i] == STORE_RCPT_PENDING;
        if (!pending && unlinkat(l->cfg.queue_fd, qf->id, 0) == 0) {
            flock(fd, LOCK_UN);
            atomic_fetch_add(&l->removed, 1);
            dir_dirty = true;
            continue;
        }
        for (size_t i = first; i < a; i++) {
            if (att[i].err != 0)
                continue;
            enum store_err err = store_qf_set_state(msgs[m].job->fd,
                                                    qf->state_off[att[i].rcpt], STORE_RCPT_SENT);
            if (err != STORE_OK)
                logf_line(l, "%s: cannot record delivery to <%s> (%s): it may be repeated",
                          qf->id, qf->env.rcpts[att[i].rcpt].address, store_strerror(err));
            msgs[m].dirty = true;
            files_dirty = true;
        }
        flock(fd, LOCK_UN);
    }
    if (l->cfg.sync_mode == STORE_SYNC_SYNCFS) {
        l->queue_unsynced = l->queue_unsynced || dir_dirty || files_dirty;
        return;
    }
    if (dir_dirty) {
        int e = store_io_fsync(STORE_FAULT_SYNC, l->cfg.queue_fd);
        atomic_fetch_add(&l->syncs, 1);
        if (e != 0)
            logf_line(l, "queue directory sync failed: %s", errno_text(e, eb, sizeof eb));
    }
    for (size_t m = 0; files_dirty && m < n_msgs; m++) {
        if (!msgs[m].dirty)
            continue;
        int e = store_io_fdatasync(STORE_FAULT_SYNC, msgs[m].job->fd);
        atomic_fetch_add(&l->syncs, 1);
        if (e != 0)
            logf_line(l, "%s: queue file sync failed: %s", msgs[m].qf.id,
                      errno_text(e, eb, sizeof eb));
    }
}

/* One line per recipient, as Postfix logs a delivery. */
static void report(struct store_local *l, struct attempt *att, size_t n)
{
    char eb[128];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    for (size_t i = 0; i < n; i++) {
        const struct store_qf *qf = &att[i].msg->qf;
        double delay = (double)(now.tv_sec - qf->env.arrival) + (double)now.tv_nsec / 1e9;
        if (delay < 0)
            delay = 0;
        const char *to = qf->env.rcpts[att[i].rcpt].address;
        if (att[i].err == 0) {
            atomic_fetch_add(&l->delivered, 1);
            logf_line(l, "%s: to=<%s>, relay=local, delay=%.2f, dsn=2.0.0, status=sent "
                      "(delivered to maildir%s%s)", qf->id, to, delay,
                      qf->env.folder ? " folder " : "", qf->env.folder ? qf->env.folder : "");
        } else {
            atomic_fetch_add(&l->deferred, 1);
            logf_line(l, "%s: to=<%s>, relay=local, delay=%.2f, dsn=4.3.0, status=deferred "
                      "(%s: %s)", qf->id, to, delay, att[i].step,
                      errno_text(att[i].err, eb, sizeof eb));
        }
    }
}

/* Calls the hook once per message for its delivered recipients that asked for NOTIFY=SUCCESS.
 * att is in message order (write_files), so each message's recipients are one run. */
static void notify_success(struct store_local *l, store_local_success_fn fn, void *ctx,
                           const struct attempt *att, size_t n_att)
{
    if (fn == NULL || n_att == 0)
        return;
    size_t *idx = malloc(n_att * sizeof *idx);
    if (idx == NULL) {
        logf_line(l, "local delivery: out of memory: success reports of this batch not sent");
        return;
    }
    for (size_t a = 0; a < n_att;) {
        const struct loaded *m = att[a].msg;
        size_t k = 0;
        for (; a < n_att && att[a].msg == m; a++)
            if (att[a].err == 0 && (m->qf.env.rcpts[att[a].rcpt].notify & STORE_NOTIFY_SUCCESS))
                idx[k++] = att[a].rcpt;
        if (k > 0)
            fn(ctx, &m->qf, idx, k, m->job->fd);
    }
    free(idx);
}

static size_t count_attempts(const struct loaded *msgs, size_t n)
{
    size_t k = 0;
    for (size_t m = 0; m < n; m++)
        for (size_t i = 0; i < msgs[m].qf.env.n_rcpts; i++)
            k += wants_local(&msgs[m].qf, i);
    return k;
}

/* Delivers what it can of jobs[0..n); the jobs to try again go to retry, held ones to held. */
static void run_batch(struct store_local *l, struct job **jobs, size_t n, struct base_fifo *retry,
                      struct base_fifo *held)
{
    pthread_mutex_lock(&l->mu);
    store_local_success_fn success = l->success;
    void *success_ctx = l->success_ctx;
    pthread_mutex_unlock(&l->mu);
    struct loaded *msgs = calloc(n, sizeof *msgs);
    size_t n_msgs = 0;
    for (size_t i = 0; i < n; i++) {
        enum load_result r = msgs != NULL ? load(l, jobs[i], &msgs[n_msgs]) : LOAD_RETRY;
        if (r == LOAD_OK)
            n_msgs++;
        else if (r == LOAD_RETRY)
            base_fifo_push(retry, &jobs[i]->node);
        else if (r == LOAD_HOLD)
            base_fifo_push(held, &jobs[i]->node);
        else
            job_free(jobs[i]);
    }
    size_t n_att = count_attempts(msgs, n_msgs);
    struct attempt *att = calloc(n_att > 0 ? n_att : 1, sizeof *att);
    if (att != NULL) {
        write_files(l, msgs, n_msgs, att, &n_att);
        sync_files(l, att, n_att);
        publish_files(l, att, n_att);
        sync_new_dirs(l, att, n_att);
        update_queue(l, msgs, n_msgs, att, n_att);
        report(l, att, n_att);
        notify_success(l, success, success_ctx, att, n_att);
    }
    atomic_fetch_add(&l->batches, 1);
    for (size_t m = 0; m < n_msgs; m++) {
        store_qf_free(&msgs[m].qf);
        if (msgs[m].retry || att == NULL)
            base_fifo_push(retry, &msgs[m].job->node);
        else
            job_free(msgs[m].job);
    }
    free(att);
    free(msgs);
}

/* ---- the thread ---- */

static bool due(const struct base_fifo *list)
{
    const struct job *head = job_of(base_fifo_peek(list));
    return head != NULL && head->due <= mono_seconds();
}

static void wait_for_work(struct store_local *l)
{
    while (!l->stopping && base_fifo_empty(&l->ready) && !due(&l->retry) && !due(&l->held)) {
        const struct job *next = job_of(base_fifo_peek(&l->retry));
        const struct job *held = job_of(base_fifo_peek(&l->held));
        if (next == NULL || (held != NULL && held->due < next->due))
            next = held;
        if (next == NULL) {
            pthread_cond_wait(&l->cv, &l->mu);
        } else {
            struct timespec ts = {.tv_sec = (time_t)next->due};
            pthread_cond_timedwait(&l->cv, &l->mu, &ts);
        }
    }
}

/* Parks the jobs of from in to, due after delay seconds, without their descriptors: thousands
 * of waiting files hold none. */
static void park(struct base_fifo *from, struct base_fifo *to, int64_t delay)
{
    int64_t at = mono_seconds() + delay;
    for (struct job *j; (j = list_pop(from)) != NULL;) {
        if (j->fd >= 0)
            close(j->fd);
        j->fd = -1;
        j->due = at;
        base_fifo_push(to, &j->node);
    }
}

/* Going idle (or stopping): the deferred queue updates get their sync now. A failure only
 * means a possible redelivery, so it is logged and not retried in a loop. */
static void flush_queue_updates(struct store_local *l)
{
    char eb[128];
    int e = local_syncfs(l, STORE_FAULT_SYNC);
    if (e != 0)
        logf_line(l, "queue sync failed: %s", errno_text(e, eb, sizeof eb));
    l->queue_unsynced = false;
}

static void *runner_main(void *arg)
{
    struct store_local *l = arg;
    struct job *batch[BATCH_MAX];
    pthread_mutex_lock(&l->mu);
    for (;;) {
        if (l->queue_unsynced && base_fifo_empty(&l->ready)) {
            pthread_mutex_unlock(&l->mu);
            flush_queue_updates(l);
            pthread_mutex_lock(&l->mu);
        }
        wait_for_work(l);
        if (l->stopping)
            break;
        while (due(&l->retry))
            base_fifo_push(&l->ready, base_fifo_pop(&l->retry));
        while (due(&l->held))
            base_fifo_push(&l->ready, base_fifo_pop(&l->held));
        size_t n = 0;
        while (n < BATCH_MAX && !base_fifo_empty(&l->ready)) {
            batch[n] = list_pop(&l->ready);
            l->held_fds -= batch[n++]->fd >= 0;
        }
        pthread_mutex_unlock(&l->mu);

        struct base_fifo again, held;
        base_fifo_init(&again);
        base_fifo_init(&held);
        run_batch(l, batch, n, &again, &held);

        pthread_mutex_lock(&l->mu);
        park(&again, &l->retry, (int64_t)l->cfg.retry_seconds);
        park(&held, &l->held, HOLD_POLL_SECONDS);
    }
    pthread_mutex_unlock(&l->mu);
    if (l->queue_unsynced)
        flush_queue_updates(l);
    return NULL;
}

static void free_list(struct base_fifo *list)
{
    for (struct job *j; (j = list_pop(list)) != NULL;)
        job_free(j);
}

static void local_free(struct store_local *l)
{
    free_list(&l->ready);
    free_list(&l->retry);
    free_list(&l->held);
    if (l->flags_fd >= 0)
        close(l->flags_fd);
    store_maildir_close(&l->md);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l);
}

enum store_err store_local_start(const struct store_local_cfg *cfg, struct store_local **out,
                                 char *err, size_t errlen)
{
    char eb[128];
    pthread_condattr_t ca;
    *out = NULL;
    struct store_local *l = calloc(1, sizeof *l);
    if (l == NULL) {
        (void)snprintf(err, errlen, "local delivery: out of memory");
        return STORE_ERR_NOMEM;
    }
    l->cfg = *cfg;
    base_fifo_init(&l->ready);
    base_fifo_init(&l->retry);
    base_fifo_init(&l->held);
    if (store_flags_open(cfg->queue_fd, &l->flags_fd) != STORE_OK && cfg->log != NULL)
        cfg->log(cfg->log_ctx, "warning: queue flags directory unavailable: hold is ignored");
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    int e = store_maildir_open(&l->md, cfg->maildir_root, cfg->hostname);
    l->cfg.maildir_root = l->cfg.hostname = NULL; /* the caller's, used during this call only */
    struct stat q_st, md_st;
    /* The shared syncfs covers the maildirs only on the queue's filesystem. */
    if (e == 0 && (fstat(cfg->queue_fd, &q_st) != 0 || fstat(l->md.root_fd, &md_st) != 0 ||
                   q_st.st_dev != md_st.st_dev))
        l->cfg.syncer = NULL;
    if (e == 0)
        e = pthread_create(&l->thread, NULL, runner_main, l);
    if (e != 0) {
        /* A truncated error text is still an error text: the result needs no check. */
        (void)snprintf(err, errlen, "maildir root %s: %s", cfg->maildir_root,
                       errno_text(e, eb, sizeof eb));
        local_free(l);
        return store_err_from_errno(e);
    }
    *out = l;
    return STORE_OK;
}

bool store_local_submit(struct store_local *l, const char *id, int fd)
{
    struct job *j = NULL;
    if (store_qf_valid_id(id, strnlen(id, STORE_ID_LEN + 1)))
        j = calloc(1, sizeof *j);
    if (j == NULL) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    memcpy(j->id, id, STORE_ID_LEN);
    j->fd = fd;
    pthread_mutex_lock(&l->mu);
    bool hold = fd >= 0 && l->held_fds < HELD_FDS_MAX;
    if (!hold)
        j->fd = -1;
    l->held_fds += hold;
    base_fifo_push(&l->ready, &j->node);
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (fd >= 0 && !hold)
        close(fd); /* j may be gone already: decided under the lock */
    return true;
}

void store_local_set_success_hook(struct store_local *l, store_local_success_fn fn, void *ctx)
{
    pthread_mutex_lock(&l->mu);
    l->success = fn;
    l->success_ctx = ctx;
    pthread_mutex_unlock(&l->mu);
}

void store_local_stop(struct store_local *l)
{
    pthread_mutex_lock(&l->mu);
    l->stopping = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    local_free(l);
}

void store_local_stats(struct store_local *l, struct store_stats *out)
{
    out->delivered += atomic_load(&l->delivered);
    out->deferred += atomic_load(&l->deferred);
    out->deliver_batches += atomic_load(&l->batches);
    out->deliver_syncs += atomic_load(&l->syncs);
    out->removed += atomic_load(&l->removed);
}
