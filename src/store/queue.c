/* store/queue.c — the durable queue: one file per message (taken from pool/, pre-created
 * empty files; tmp/ when the pool is empty) written from the loop thread, group commit on a sync thread (syncfs mode: renames into
 * queue/, then one syncfs per batch; fdatasync mode: per-file syncs, renames, one directory
 * sync), completions back to the loop through an eventfd, recovery at open that drops files
 * whose commit marker (size + check, queue_file.h) does not match. */
#include "store/queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "base/array.h"
#include "base/workq.h"
#include "limits_mta.h"
#include "store/deliver_local.h"
#include "store/direct.h"
#include "store/fault.h"
#include "store/maildir.h"
#include "store/queue_file.h"
#include "store/syncer.h"

#define WRITE_BUF (64 * 1024)
/* Message data pieces this large are written without a copy into the buffer. */
#define DIRECT_WRITE_MIN (16 * 1024)
/* Empty files kept ready in pool/: creating one can block on inode allocation (measured ~0.5-5
 * ms under load), which neither the loop thread nor the sync thread should wait for. Refilled
 * by a thread of its own. */
#define POOL_TARGET 64
#define TMP_NAME_MAX 24
#define COMMIT_THREADS 2
/* Write buffers kept for the next messages: no 64 KiB allocation per message. */
#define SPARE_BUFS 32

/* Where a message's file is, so that a failure removes exactly it. IN_MAILDIR: written once,
 * straight into Maildirs (store/direct.h), never a queue file. */
enum msg_place { IN_NOWHERE, IN_TMP, IN_QUEUE, IN_MAILDIR };

struct store_msg {
    struct store_queue *q;
    struct base_fifo_node node; /* in the commit work queue */
    char id[STORE_ID_LEN + 1];
    int tmp_dir_fd;              /* pool/ or tmp/: where the file is until the commit */
    char tmp_name[TMP_NAME_MAX]; /* its name there */
    struct store_direct *direct; /* written once into Maildirs, or NULL: a queue file */
    int fd;
    enum msg_place place;
    enum store_err err; /* sticky */
    char *buf;          /* write buffer, WRITE_BUF bytes; NULL once committed */
    size_t len;         /* bytes in buf */
    uint64_t flushed;   /* bytes written to the file */
    size_t size_off;    /* offset of the size digits in the header */
    uint64_t body_size;
    struct store_qf_hash hash; /* of the message bytes */
    store_commit_fn done;
    void *ctx;
};

struct pool_file {
    int fd;
    char name[TMP_NAME_MAX];
};

struct store_queue {
    int dir_fd, tmp_fd, pool_fd, queue_fd, lock_fd;
    enum store_sync_mode sync_mode;
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
    struct store_syncer *syncer; /* syncfs shared with the local delivery runner */
    /* The sync thread: takes every committed message waiting as one batch, hands the batch
     * back to the loop for the callbacks. */
    struct base_workq *commits;
    pthread_mutex_t mu;
    bool stopping;
    bool pool_started;
    pthread_t pool_thread;
    pthread_cond_t pool_cv; /* the pool ran low, or stopping */
    uint64_t last_id; /* under mu */
    struct pool_file pool[POOL_TARGET]; /* under mu */
    size_t pool_len;                    /* under mu */
    char *spare[SPARE_BUFS];            /* under mu: free write buffers */
    size_t n_spare;                     /* under mu */
    uint64_t pool_seq;                  /* sync thread only */
    atomic_uint_fast64_t pool_misses;   /* messages that had to create their file inline */
    /* The local runner: the sync thread hands it committed messages, close stops it. */
    pthread_mutex_t local_mu;
    struct store_local *local; /* under local_mu */
    /* Write once: all-local messages go straight into the Maildirs under md's root. */
    bool write_once;
    bool md_open;
    bool md_same_fs; /* the maildir root is on the queue's filesystem: one syncfs covers both */
    struct store_maildir md; /* names made on the loop thread; the root fd is shared */
    atomic_uint_fast64_t committed, commit_failed, batches, syncs, direct_msgs, direct_rcpts;
};

const char *store_strerror(enum store_err err)
{
    switch (err) {
#define STORE_ERR_CASE(name, text) \
    case name:                     \
        return text;
        STORE_ERRORS(STORE_ERR_CASE)
#undef STORE_ERR_CASE
    }
    return "unknown store error";
}

/* The message of a work queue node; NULL for NULL, so that loops can walk a batch:
 * for (m = first_msg(batch); m != NULL; m = next_msg(m)). */
static struct store_msg *msg_of(struct base_fifo_node *n)
{
    return n != NULL ? BASE_CONTAINER_OF(n, struct store_msg, node) : NULL;
}

static struct store_msg *first_msg(const struct base_fifo *batch)
{
    return msg_of(base_fifo_peek(batch));
}

static struct store_msg *next_msg(const struct store_msg *m)
{
    return msg_of(m->node.next);
}

/* ---- queue ids ---- */

/* Microseconds since the epoch, forced above the last id: unique, and sorting by arrival as
 * long as the clock does not step back (then still unique, see recovery's floor). */
static void hex_id(uint64_t v, char out[STORE_ID_LEN + 1])
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = STORE_ID_LEN; i-- > 0; v >>= 4)
        out[i] = hex[v & 15];
    out[STORE_ID_LEN] = '\0';
}

static void next_id(struct store_queue *q, char out[STORE_ID_LEN + 1])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    pthread_mutex_lock(&q->mu);
    uint64_t v = now > q->last_id ? now : q->last_id + 1;
    q->last_id = v;
    pthread_mutex_unlock(&q->mu);
    hex_id(v, out);
}

static uint64_t id_value(const char *id)
{
    uint64_t v = 0;
    for (size_t i = 0; i < STORE_ID_LEN; i++)
        v = v << 4 | (uint64_t)(id[i] <= '9' ? id[i] - '0' : id[i] - 'A' + 10);
    return v;
}

/* ---- completions ---- */

/* On the loop thread, from the work queue's drain: the commit's callback. */
static void commit_done(void *ctx, struct base_fifo_node *n)
{
    (void)ctx;
    struct store_msg *m = msg_of(n);
    if (m->done != NULL)
        m->done(m->ctx, m->err, m->id);
    store_direct_free(m->direct);
    free(m);
}

/* A commit the work queue still held when it was freed (never: the sync thread finishes every
 * batch and close drains them); its file is left for recovery to judge. */
static void commit_discard(void *ctx, struct base_fifo_node *n)
{
    (void)ctx;
    struct store_msg *m = msg_of(n);
    if (m->fd >= 0)
        close(m->fd);
    store_direct_free(m->direct);
    free(m);
}

void store_queue_process(struct store_queue *q)
{
    base_workq_drain(q->commits);
}

int store_queue_event_fd(struct store_queue *q) { return base_workq_event_fd(q->commits); }

/* ---- the sync thread ---- */

/* Records the failure and removes whatever of the message exists. */
static void msg_fail(struct store_msg *m, int e)
{
    struct store_queue *q = m->q;
    if (m->err == STORE_OK)
        m->err = store_err_from_errno(e);
    if (m->place == IN_TMP)
        unlinkat(m->tmp_dir_fd, m->tmp_name, 0);
    else if (m->place == IN_QUEUE)
        unlinkat(q->queue_fd, m->id, 0);
    else if (m->place == IN_MAILDIR)
        store_direct_discard(m->direct);
    m->place = IN_NOWHERE;
}

/* Renames the batch's files from pool/ or tmp/ into queue/ under their ids. */
static bool rename_batch(struct store_queue *q, struct base_fifo *batch)
{
    bool renamed = false;
    for (struct store_msg *m = first_msg(batch); m != NULL; m = next_msg(m)) {
        if (m->err != STORE_OK || m->direct != NULL)
            continue;
        int e = store_io_renameat(STORE_FAULT_RENAME, m->tmp_dir_fd, m->tmp_name, q->queue_fd,
                                  m->id);
        if (e != 0) {
            msg_fail(m, e);
            continue;
        }
        m->place = IN_QUEUE;
        renamed = true;
    }
    return renamed;
}

/* Every message of the batch still alive fails with e. */
static void fail_alive(struct base_fifo *batch, int e)
{
    for (struct store_msg *m = first_msg(batch); m != NULL; m = next_msg(m)) {
        if (m->err == STORE_OK)
            msg_fail(m, e);
    }
}

/* One sync for the whole batch; on failure every message still alive fails. */
static void sync_one(struct store_queue *q, struct base_fifo *batch, bool syncfs)
{
    bool ran = true;
    int e = syncfs ? store_syncer_sync(q->syncer, STORE_FAULT_SYNC, &ran)
                   : store_io_fsync(STORE_FAULT_SYNC, q->queue_fd);
    if (ran)
        atomic_fetch_add(&q->syncs, 1);
    if (e != 0)
        fail_alive(batch, e);
}

/* ---- write once: the batch's messages that go straight into Maildirs ---- */

/* Fails every message of the batch written once that is still alive. */
static void fail_direct(struct base_fifo *batch, int e)
{
    for (struct store_msg *m = first_msg(batch); m != NULL; m = next_msg(m))
        if (m->err == STORE_OK && m->direct != NULL)
            msg_fail(m, e);
}

/* Before the data sync: the links (or copies) for the further recipients. True when a message
 * written once is still alive. */
static bool link_direct(struct store_queue *q, struct base_fifo *batch)
{
    bool alive = false;
    for (struct store_msg *m = first_msg(batch); m != NULL; m = next_msg(m)) {
        if (m->err != STORE_OK || m->direct == NULL)
            continue;
        int e = store_direct_link(m->direct, &q->md, m->fd);
        if (e != 0)
            msg_fail(m, e);
        alive = alive || e == 0;
    }
    return alive;
}

/* syncfs mode, when the Maildirs are on another filesystem than the queue: their own syncfs. */
static int sync_maildirs(struct store_queue *q)
{
    atomic_fetch_add(&q->syncs, 1);
    return store_io_syncfs(STORE_FAULT_SYNC, q->md.root_fd);
}

/* After the data sync: every message written once goes into new/. True when one did. */
static bool publish_renames(struct store_queue *q, struct base_fifo *batch)
{
    bool published = false;
    for (struct store_msg *m = first_msg(batch); m != NULL; m = next_msg(m)) {
        if (m->err != STORE_OK || m->direct == NULL)
            continue;
        int e = store_direct_publish(m->direct, &q->md, m->flushed);
        if (e != 0)
            msg_fail(m, e);
        published = published || e == 0;
    }
    return published;
}

/* The new/ directories a sync of the root does not cover (all of them in fdatasync mode). */
static void sync_new_dirs(struct store_queue *q, struct base_fifo *batch)
{
    bool all = q->sync_mode != STORE_SYNC_SYNCFS;
    for (struct store_msg *m = first_msg(batch); m != NULL; m = next_msg(m)) {
        if (m->err != STORE_OK || m->direct == NULL)
            continue;
        int e = store_direct_sync_new(m->direct, all);
        atomic_fetch_add(&q->syncs, all);
        if (e != 0)
            msg_fail(m, e);
    }
}

/* After the data sync: every message written once goes into new/, and the new/ entries are made
 * durable (the Maildirs' own syncfs, or each new/ directory in fdatasync mode). */
static void publish_direct(struct store_queue *q, struct base_fifo *batch)
{
    if (!publish_renames(q, batch))
        return;
    if (q->sync_mode == STORE_SYNC_SYNCFS) {
        int e = sync_maildirs(q);
        if (e != 0)
            fail_direct(batch, e);
    }
    sync_new_dirs(q, batch);
}

/* A batch's renames into new/, run by the syncer between the data sync and the next one. */
struct publish_step {
    struct store_queue *q;
    struct base_fifo *batch;
    bool published;
};

static void publish_step_run(void *ctx, int data_err)
{
    struct publish_step *p = ctx;
    if (data_err != 0)
        fail_alive(p->batch, data_err);
    else
        p->published = publish_renames(p->q, p->batch);
}

/* syncfs mode, Maildirs on the queue's filesystem: the data sync, the renames into new/ and the
 * sync of those entries, through the shared syncer, which starts the second sync with the next
 * batch's data in it. */
static void sync_and_publish(struct store_queue *q, struct base_fifo *batch)
{
    struct publish_step p = {q, batch, false};
    struct store_syncer_step step = {.run = publish_step_run, .ctx = &p};
    unsigned syncs;
    int e = store_syncer_sync_twice(q->syncer, STORE_FAULT_SYNC, &step, &syncs);
    atomic_fetch_add(&q->syncs, syncs);
    if (!p.published)
        return;
    if (e != 0)
        fail_direct(batch, e);
    sync_new_dirs(q, batch);
}

/* syncfs mode: rename first, then ONE syncfs, which writes the data, the inodes and the
 * directory blocks of the filesystem together. A crash before it completes can leave a file in
 * queue/ with any part of its bytes: its commit marker then does not match and recovery drops
 * it; nobody was told 250 for it. fdatasync mode: fdatasync does not cover the directory entry,
 * so each file is synced, renamed, then the queue directory is synced (as before).
 * Messages written once have no commit marker: their data is synced (by the same sync) before
 * they are renamed into new/, and the new/ entries get a sync of their own: on the queue's
 * filesystem the next shared one, which the syncer starts right after the renames and which
 * also carries the next batch's data (sync_and_publish); else publish_direct's. */
static void make_durable(struct store_queue *q, struct base_fifo *batch)
{
    bool direct = link_direct(q, batch);
    if (q->sync_mode == STORE_SYNC_SYNCFS) {
        bool renamed = rename_batch(q, batch);
        if (direct && q->md_same_fs) {
            sync_and_publish(q, batch);
            return;
        }
        if (renamed)
            sync_one(q, batch, true);
        if (direct) {
            int e = sync_maildirs(q);
            if (e != 0)
                fail_direct(batch, e);
            publish_direct(q, batch);
        }
        return;
    }
    for (struct store_msg *m = first_msg(batch); m != NULL; m = next_msg(m)) {
        if (m->err != STORE_OK)
            continue;
        int e = store_io_fdatasync(STORE_FAULT_SYNC, m->fd);
        atomic_fetch_add(&q->syncs, 1);
        if (e != 0)
            msg_fail(m, e);
    }
    if (rename_batch(q, batch))
        sync_one(q, batch, false);
    if (direct)
        publish_direct(q, batch);
}

/* The work queue's run callback, on the sync thread: everything committed since the last
 * batch is one batch (the next accumulates meanwhile); the queue then hands it back to the
 * loop for the callbacks. */
static void commit_batch(void *ctx, struct base_fifo *batch)
{
    struct store_queue *q = ctx;
    make_durable(q, batch);
    atomic_fetch_add(&q->batches, 1);
    /* Close stops the runner while commits may still run: it is taken under local_mu, and a
     * message committed after it stopped stays queued on disk for the next open. */
    pthread_mutex_lock(&q->local_mu);
    for (struct store_msg *m = first_msg(batch); m != NULL; m = next_msg(m)) {
        if (m->err != STORE_OK) {
            atomic_fetch_add(&q->commit_failed, 1);
        } else if (m->direct != NULL) {
            atomic_fetch_add(&q->committed, 1);
            atomic_fetch_add(&q->direct_msgs, 1);
            atomic_fetch_add(&q->direct_rcpts, store_direct_rcpts(m->direct));
            store_direct_report(m->direct, m->id, q->log, q->log_ctx);
        } else {
            atomic_fetch_add(&q->committed, 1);
            if (q->local != NULL) {
                store_local_submit(q->local, m->id, m->fd); /* takes the fd */
                m->fd = -1;
            }
        }
        if (m->fd >= 0)
            close(m->fd);
        m->fd = -1;
    }
    pthread_mutex_unlock(&q->local_mu);
}

/* ---- the pool of empty tmp files ---- */

/* Tops the pool up, on the pool thread. A failure (e.g. ENOSPC) just stops: store_msg_begin
 * then creates its file inline and reports the error to its client. */
static void pool_fill(struct store_queue *q)
{
    for (;;) {
        pthread_mutex_lock(&q->mu);
        bool full = q->pool_len == POOL_TARGET || q->stopping;
        pthread_mutex_unlock(&q->mu);
        if (full)
            return;
        struct pool_file pf;
        /* "p" + 16 hex digits: never a queue id, so never mistaken for one. */
        pf.name[0] = 'p';
        hex_id(q->pool_seq++, pf.name + 1);
        pf.fd = openat(q->pool_fd, pf.name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (pf.fd < 0)
            return;
        pthread_mutex_lock(&q->mu);
        q->pool[q->pool_len++] = pf; /* only this thread adds: there is room */
        pthread_mutex_unlock(&q->mu);
    }
}

/* Gives m an empty file from pool/ when there is one. */
static bool take_pooled(struct store_queue *q, struct store_msg *m)
{
    pthread_mutex_lock(&q->mu);
    bool got = q->pool_len > 0;
    if (got) {
        struct pool_file *pf = &q->pool[--q->pool_len];
        m->fd = pf->fd;
        m->tmp_dir_fd = q->pool_fd;
        memcpy(m->tmp_name, pf->name, sizeof m->tmp_name);
        if (q->pool_len <= POOL_TARGET / 2)
            pthread_cond_signal(&q->pool_cv);
    }
    pthread_mutex_unlock(&q->mu);
    return got;
}

/* Gives m an empty file: from pool/, else created inline in tmp/. Returns 0 or an errno. */
static int take_file(struct store_queue *q, struct store_msg *m)
{
    if (take_pooled(q, m))
        return 0;
    atomic_fetch_add(&q->pool_misses, 1);
    m->tmp_dir_fd = q->tmp_fd;
    memcpy(m->tmp_name, m->id, sizeof m->id);
    m->fd = openat(q->tmp_fd, m->tmp_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    return m->fd < 0 ? errno : 0;
}

static void pool_drain(struct store_queue *q)
{
    while (q->pool_len > 0) {
        struct pool_file *pf = &q->pool[--q->pool_len];
        close(pf->fd);
        unlinkat(q->pool_fd, pf->name, 0);
    }
}

static void *pool_main(void *arg)
{
    struct store_queue *q = arg;
    pthread_mutex_lock(&q->mu);
    while (!q->stopping) {
        if (q->pool_len > POOL_TARGET / 2) {
            pthread_cond_wait(&q->pool_cv, &q->mu);
            continue;
        }
        pthread_mutex_unlock(&q->mu);
        pool_fill(q);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* ---- messages ---- */

static void msg_flush(struct store_msg *m)
{
    if (m->err != STORE_OK || m->len == 0)
        return;
    int e = store_io_write_all(STORE_FAULT_WRITE, m->fd, m->buf, m->len);
    if (e != 0)
        m->err = store_err_from_errno(e);
    m->flushed += m->len;
    m->len = 0;
}

/* Gathers small pieces in the buffer; a large one goes out at once, uncopied, behind what the
 * buffer holds (one writev). */
static void msg_append(struct store_msg *m, const char *p, size_t n)
{
    if (m->err != STORE_OK)
        return;
    if (n < DIRECT_WRITE_MIN && n <= WRITE_BUF - m->len) {
        memcpy(m->buf + m->len, p, n);
        m->len += n;
        return;
    }
    int e = store_io_write2_all(STORE_FAULT_WRITE, m->fd, m->buf, m->len, p, n);
    if (e != 0)
        m->err = store_err_from_errno(e);
    m->flushed += m->len + n;
    m->len = 0;
}

/* A WRITE_BUF buffer: a spare one, else a new one (NULL when out of memory). */
static char *buf_get(struct store_queue *q)
{
    pthread_mutex_lock(&q->mu);
    char *b = q->n_spare > 0 ? q->spare[--q->n_spare] : NULL;
    pthread_mutex_unlock(&q->mu);
    return b != NULL ? b : malloc(WRITE_BUF);
}

/* Keeps b for the next message, or frees it when enough are kept. NULL is fine. */
static void buf_put(struct store_queue *q, char *b)
{
    if (b == NULL)
        return;
    pthread_mutex_lock(&q->mu);
    bool kept = q->n_spare < SPARE_BUFS;
    if (kept)
        q->spare[q->n_spare++] = b;
    pthread_mutex_unlock(&q->mu);
    if (!kept)
        free(b);
}

static void msg_free(struct store_msg *m)
{
    if (m->fd >= 0)
        close(m->fd);
    store_direct_free(m->direct);
    buf_put(m->q, m->buf);
    free(m);
}

/* Write once when env allows it: m's file starts with the Return-Path line; it is a pool/ file
 * (moved into the first recipient's tmp/ at the commit) when the Maildirs share the queue's
 * filesystem, else created in that tmp/. STORE_OK with m->direct NULL: take the queue path (no
 * pool file, and the Maildir does not exist yet: the local runner creates it). */
static enum store_err begin_direct(struct store_queue *q, const struct store_envelope *env,
                                   struct store_msg *m)
{
    char line[STORE_QF_FIELD_MAX + 32];
    size_t len;
    int e = store_direct_begin(&q->md, env, &m->direct);
    if (e != 0)
        return e == EINVAL ? STORE_ERR_INVALID : store_err_from_errno(e);
    if (q->md_same_fs && take_pooled(q, m)) {
        store_direct_adopt(m->direct, m->tmp_dir_fd, m->tmp_name);
    } else if ((e = store_direct_create(m->direct, &m->fd)) != 0) {
        store_direct_free(m->direct);
        m->direct = NULL;
        return e == ENOENT ? STORE_OK : store_err_from_errno(e);
    }
    m->place = IN_MAILDIR;
    if (!store_maildir_return_path(line, sizeof line, env->sender, &len))
        return STORE_ERR_INVALID;
    msg_append(m, line, len);
    return m->err;
}

enum store_err store_msg_begin(struct store_queue *q, const struct store_envelope *env,
                               struct store_msg **out)
{
    char *hdr = NULL;
    size_t hlen;
    enum store_err err;

    *out = NULL;
    if (q->stopping)
        return STORE_ERR_CLOSED;
    struct store_msg *m = calloc(1, sizeof *m);
    if (m == NULL)
        return STORE_ERR_NOMEM;
    m->q = q;
    m->fd = -1;
    m->buf = buf_get(q);
    if (m->buf == NULL) {
        err = STORE_ERR_NOMEM;
        goto fail;
    }
    next_id(q, m->id);
    if (q->write_once && store_direct_eligible(env)) {
        err = begin_direct(q, env, m);
        if (err != STORE_OK)
            goto fail;
        if (m->direct != NULL) {
            *out = m;
            return STORE_OK;
        }
    }
    err = store_qf_format(env, m->id, &hdr, &hlen, &m->size_off);
    if (err != STORE_OK)
        goto fail;
    store_qf_hash_init(&m->hash);
    int e = take_file(q, m);
    if (e != 0) {
        err = store_err_from_errno(e);
        goto fail;
    }
    m->place = IN_TMP;
    msg_append(m, hdr, hlen);
    err = m->err;
    if (err != STORE_OK)
        goto fail;
    free(hdr);
    *out = m;
    return STORE_OK;
fail:
    free(hdr);
    msg_fail(m, 0);
    msg_free(m);
    return err;
}

const char *store_msg_id(const struct store_msg *m) { return m->id; }

enum store_err store_msg_write(struct store_msg *m, const char *p, size_t n)
{
    if (m->err != STORE_OK)
        return m->err;
    if (n > LIMIT_MESSAGE_SIZE_MAX - m->body_size) {
        m->err = STORE_ERR_INVALID;
        return m->err;
    }
    m->body_size += n;
    if (m->direct == NULL)
        store_qf_hash_update(&m->hash, p, n);
    msg_append(m, p, n);
    return m->err;
}

/* The header went out with a zero size and check: write the commit marker now that every
 * message byte is written (in the buffer while the header is still there, else in the file),
 * before the sync that makes it durable. */
static void msg_seal(struct store_msg *m)
{
    char seal[STORE_QF_SEAL_LEN];
    store_qf_seal(m->body_size, store_qf_hash_final(&m->hash), seal);
    if (m->flushed == 0) {
        memcpy(m->buf + m->size_off, seal, sizeof seal);
        return;
    }
    int e = store_io_pwrite_all(STORE_FAULT_WRITE, m->fd, seal, sizeof seal, m->size_off);
    if (e != 0)
        m->err = store_err_from_errno(e);
}

void store_msg_commit(struct store_msg *m, store_commit_fn done, void *ctx)
{
    struct store_queue *q = m->q;
    m->done = done;
    m->ctx = ctx;
    if (m->err == STORE_OK && m->direct == NULL)
        msg_seal(m);
    msg_flush(m);
    buf_put(q, m->buf);
    m->buf = NULL;
    if (m->err != STORE_OK) {
        msg_fail(m, 0);
        close(m->fd);
        m->fd = -1;
        atomic_fetch_add(&q->commit_failed, 1);
        /* The callback still runs later, from store_queue_process(). */
        base_workq_complete(q->commits, &m->node);
        return;
    }
    /* Unbounded (max_jobs 0) and only closed by store_queue_close, after the last commit. */
    (void)base_workq_submit(q->commits, &m->node);
}

void store_msg_abort(struct store_msg *m)
{
    msg_fail(m, 0);
    msg_free(m);
}

/* ---- open, recovery, close ---- */

static enum store_err open_error(char *err, size_t errlen, const char *what, const char *path,
                                 int e)
{
    char eb[128];
    /* A truncated error text is still an error text: the result needs no check. */
    (void)snprintf(err, errlen, "%s %s: %s", what, path != NULL ? path : "",
                   strerror_r(e, eb, sizeof eb));
    return store_err_from_errno(e);
}

static int open_subdir(int dir_fd, const char *name, int *out)
{
    if (mkdirat(dir_fd, name, 0700) != 0 && errno != EEXIST)
        return errno;
    *out = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return *out < 0 ? errno : 0;
}

/* Calls fn for every entry of the directory open on dir_fd except "." and "..". */
static int for_each_entry(int dir_fd, void (*fn)(void *ctx, const char *name), void *ctx)
{
    int fd = dup(dir_fd);
    if (fd < 0)
        return errno;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        close(fd);
        return e;
    }
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            fn(ctx, de->d_name);
    closedir(d);
    return 0;
}

/* A file in tmp/ or pool/ is a message whose commit never completed (or an unused pool
 * file): it must never be delivered. ctx points at the directory's fd. */
static void remove_tmp(void *ctx, const char *name)
{
    const int *dir_fd = ctx;
    unlinkat(*dir_fd, name, 0);
}

struct id_set {
    char (*ids)[STORE_ID_LEN + 1];
    size_t n, cap;
    bool oom;
};

static void collect_id(void *ctx, const char *name)
{
    struct id_set *s = ctx;
    if (!store_qf_valid_id(name, strlen(name)) || s->oom)
        return;
    if (base_array_reserve((void **)&s->ids, &s->cap, s->n + 1, sizeof *s->ids, 64) !=
        BASE_OK) {
        s->oom = true;
        return;
    }
    memcpy(s->ids[s->n++], name, STORE_ID_LEN + 1);
}

static int cmp_id(const void *a, const void *b) { return strcmp(a, b); }

static void queue_log(struct store_queue *q, const char *id, const char *what)
{
    char line[128];
    if (q->log == NULL)
        return;
    (void)snprintf(line, sizeof line, "%s: %s", id, what);
    q->log(q->log_ctx, line);
}

/* False when the file in queue/ was never acknowledged (its header is not whole on disk, or its
 * commit marker does not match its bytes: the batch sync did not complete; store_qf_verify
 * gives the argument): it is removed. Unreadable files stay for an administrator; the
 * delivery runner leaves them alone too. */
static bool recover_one(struct store_queue *q, const char *id)
{
    int fd = openat(q->queue_fd, id, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno != ENOENT;
    enum store_err err;
    enum store_qf_state st = store_qf_verify(fd, &err);
    close(fd);
    if (st != STORE_QF_UNSEALED)
        return true;
    unlinkat(q->queue_fd, id, 0);
    queue_log(q, id, "removed unacknowledged queue file (commit did not complete)");
    return false;
}

/* Every complete queued message: raise the id floor above it and, with local delivery,
 * schedule it in arrival order. Incomplete ones are removed. */
static enum store_err recover_queue(struct store_queue *q, char *err, size_t errlen)
{
    struct id_set s = {0};
    int e = for_each_entry(q->queue_fd, collect_id, &s);
    if (e == 0 && s.oom)
        e = ENOMEM;
    if (e != 0) {
        free(s.ids);
        return open_error(err, errlen, "scanning queue", "", e);
    }
    if (s.n > 0)
        qsort(s.ids, s.n, sizeof *s.ids, cmp_id);
    for (size_t i = 0; i < s.n; i++) {
        uint64_t v = id_value(s.ids[i]);
        if (v > q->last_id)
            q->last_id = v;
        if (recover_one(q, s.ids[i]) && q->local != NULL)
            store_local_submit(q->local, s.ids[i], -1);
    }
    free(s.ids);
    return STORE_OK;
}

static void queue_free(struct store_queue *q)
{
    /* First the local runner: its success reports are commits, which need the threads below.
     * The sync thread may be handing it a message meanwhile: taken away under local_mu. */
    pthread_mutex_lock(&q->local_mu);
    struct store_local *local = q->local;
    q->local = NULL;
    pthread_mutex_unlock(&q->local_mu);
    if (local != NULL)
        store_local_stop(local);
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    pthread_cond_signal(&q->pool_cv);
    pthread_mutex_unlock(&q->mu);
    if (q->commits != NULL)
        base_workq_stop(q->commits); /* the sync thread finishes every commit in flight */
    if (q->pool_started)
        pthread_join(q->pool_thread, NULL);
    pool_drain(q);
    while (q->n_spare > 0)
        free(q->spare[--q->n_spare]);
    store_syncer_free(q->syncer);
    if (q->commits != NULL)
        store_queue_process(q);
    base_workq_free(q->commits);
    int *fds[] = {&q->tmp_fd, &q->pool_fd, &q->queue_fd, &q->lock_fd, &q->dir_fd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (*fds[i] >= 0)
            close(*fds[i]);
    if (q->md_open)
        store_maildir_close(&q->md);
    pthread_mutex_destroy(&q->mu);
    pthread_mutex_destroy(&q->local_mu);
    pthread_cond_destroy(&q->pool_cv);
    free(q);
}

/* The layout and the lock: queue_dir/{lock,tmp,pool,queue}, durable before any message. */
static enum store_err open_layout(struct store_queue *q, const char *dir, char *err,
                                  size_t errlen)
{
    int e = store_io_mkdirs(dir, 0700);
    if (e != 0)
        return open_error(err, errlen, "creating queue directory", dir, e);
    q->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (q->dir_fd < 0)
        return open_error(err, errlen, "opening queue directory", dir, errno);
    q->lock_fd = openat(q->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (q->lock_fd < 0)
        return open_error(err, errlen, "opening lock file in", dir, errno);
    /* Two servers on one queue would deliver everything twice. */
    if (flock(q->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK)
            return open_error(err, errlen, "locking queue directory", dir, errno);
        (void)snprintf(err, errlen, "queue directory %s: in use by another process", dir);
        return STORE_ERR_BUSY;
    }
    e = open_subdir(q->dir_fd, "tmp", &q->tmp_fd);
    if (e == 0)
        e = open_subdir(q->dir_fd, "pool", &q->pool_fd);
    if (e == 0)
        e = open_subdir(q->dir_fd, "queue", &q->queue_fd);
    if (e == 0)
        e = store_io_fsync(STORE_FAULT_SYNC, q->dir_fd);
    if (e != 0)
        return open_error(err, errlen, "preparing queue directory", dir, e);
    return STORE_OK;
}

/* The Maildirs as the queue sees them (write once, and the crash leftovers of every writer of
 * the store): opened, compared with the queue's filesystem, and our leftovers removed from
 * every tmp/ (files of this host older than this start, store_maildir_clean_tmp). */
static enum store_err open_maildirs(struct store_queue *q, const struct store_opts *o,
                                    const char *hostname, char *err, size_t errlen)
{
    int e = store_maildir_open(&q->md, o->maildir_root, hostname);
    if (e != 0)
        return open_error(err, errlen, "opening maildir root", o->maildir_root, e);
    q->md_open = true;
    struct stat q_st, md_st;
    q->md_same_fs = fstat(q->queue_fd, &q_st) == 0 && fstat(q->md.root_fd, &md_st) == 0 &&
                    q_st.st_dev == md_st.st_dev;
    q->write_once = o->write_once;
    size_t removed = 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (store_maildir_clean_tmp(&q->md, &now, &removed) == 0 && removed > 0) {
        char line[96];
        (void)snprintf(line, sizeof line, "removed %zu partial Maildir tmp files of ours",
                       removed);
        if (q->log != NULL)
            q->log(q->log_ctx, line);
    }
    return STORE_OK;
}

static enum store_err start_local(struct store_queue *q, const struct store_opts *o, char *err,
                                  size_t errlen)
{
    char host[256];
    const char *hostname = o->hostname;
    if (hostname == NULL) {
        if (gethostname(host, sizeof host) != 0)
            memcpy(host, "localhost", sizeof "localhost");
        host[sizeof host - 1] = '\0';
        hostname = host;
    }
    if (o->maildir_root == NULL) {
        (void)snprintf(err, errlen, "local delivery needs a maildir root");
        return STORE_ERR_INVALID;
    }
    enum store_err rc = open_maildirs(q, o, hostname, err, errlen);
    if (rc != STORE_OK)
        return rc;
    struct store_local_cfg cfg = {
        .queue_fd = q->queue_fd,
        .maildir_root = o->maildir_root,
        .hostname = hostname,
        .sync_mode = o->sync_mode,
        .syncer = q->syncer,
        .retry_seconds = o->retry_seconds != 0 ? o->retry_seconds : 30,
        .log = o->log,
        .log_ctx = o->log_ctx,
    };
    return store_local_start(&cfg, &q->local, err, errlen);
}

enum store_err store_queue_open(const struct store_opts *o, struct store_queue **out, char *err,
                                size_t errlen)
{
    enum store_err rc;
    *out = NULL;
    if (o->queue_dir == NULL) {
        (void)snprintf(err, errlen, "no queue directory given");
        return STORE_ERR_INVALID;
    }
    struct store_queue *q = calloc(1, sizeof *q);
    if (q == NULL) {
        (void)snprintf(err, errlen, "out of memory");
        return STORE_ERR_NOMEM;
    }
    q->dir_fd = q->tmp_fd = q->pool_fd = q->queue_fd = q->lock_fd = -1;
    q->sync_mode = o->sync_mode;
    q->log = o->log;
    q->log_ctx = o->log_ctx;
    pthread_mutex_init(&q->mu, NULL);
    pthread_mutex_init(&q->local_mu, NULL);
    pthread_cond_init(&q->pool_cv, NULL);

    rc = open_layout(q, o->queue_dir, err, errlen);
    if (rc != STORE_OK)
        goto fail;
    q->syncer = store_syncer_new(q->queue_fd);
    if (q->syncer == NULL) {
        rc = open_error(err, errlen, "opening queue", o->queue_dir, ENOMEM);
        goto fail;
    }
    int e = for_each_entry(q->tmp_fd, remove_tmp, &q->tmp_fd);
    if (e == 0)
        e = for_each_entry(q->pool_fd, remove_tmp, &q->pool_fd);
    if (e != 0) {
        rc = open_error(err, errlen, "cleaning tmp in", o->queue_dir, e);
        goto fail;
    }
    /* Sync threads, each taking every commit waiting as one batch (group commit); close waits
     * for the batches in flight. Two, so that a batch fills and starts its syncs while the one
     * before is still in its own (a batch written once waits for two syncs in a row); the
     * shared syncer lets one syncfs serve both. */
    struct base_workq_cfg commits = {
        .threads = COMMIT_THREADS,
        .batch_max = 0,
        .finish_on_stop = true,
        .run = commit_batch,
        .done = commit_done,
        .discard = commit_discard,
        .ctx = q,
    };
    char why[160];
    enum base_err be = base_workq_new(&commits, &q->commits, why, sizeof why);
    if (be != BASE_OK) {
        (void)snprintf(err, errlen, "starting sync thread: %s", why);
        rc = be == BASE_ERR_NOMEM ? STORE_ERR_NOMEM : STORE_ERR_IO;
        goto fail;
    }
    if (o->deliver_local && (rc = start_local(q, o, err, errlen)) != STORE_OK)
        goto fail;
    rc = recover_queue(q, err, errlen);
    if (rc != STORE_OK)
        goto fail;
    e = pthread_create(&q->pool_thread, NULL, pool_main, q);
    if (e != 0) {
        rc = open_error(err, errlen, "starting pool thread", NULL, e);
        goto fail;
    }
    q->pool_started = true;
    *out = q;
    return STORE_OK;
fail:
    queue_free(q);
    return rc;
}

void store_queue_close(struct store_queue *q)
{
    if (q != NULL)
        queue_free(q);
}

enum store_err store_queue_free_space(struct store_queue *q, uint64_t *bytes)
{
    struct statvfs sv;
    if (fstatvfs(q->queue_fd, &sv) != 0)
        return store_err_from_errno(errno);
    *bytes = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    return STORE_OK;
}

void store_queue_set_success_hook(struct store_queue *q, store_local_success_fn fn, void *ctx)
{
    if (q->local != NULL)
        store_local_set_success_hook(q->local, fn, ctx);
}

void store_queue_stats(struct store_queue *q, struct store_stats *out)
{
    memset(out, 0, sizeof *out);
    out->committed = atomic_load(&q->committed);
    out->commit_failed = atomic_load(&q->commit_failed);
    out->commit_batches = atomic_load(&q->batches);
    out->commit_syncs = atomic_load(&q->syncs);
    out->pool_misses = atomic_load(&q->pool_misses);
    out->direct = atomic_load(&q->direct_msgs);
    out->delivered = atomic_load(&q->direct_rcpts);
    pthread_mutex_lock(&q->mu);
    out->pool_ready = q->pool_len;
    pthread_mutex_unlock(&q->mu);
    pthread_mutex_lock(&q->local_mu);
    if (q->local != NULL)
        store_local_stats(q->local, out);
    pthread_mutex_unlock(&q->local_mu);
}
