/* store/queue.h — the durable message queue: one file per message, group commit (one sync for
 * every message that finished within the same few ms), recovery, the local delivery runner
 * that moves committed messages into Maildirs, and write once (all-local mail goes straight
 * into the Maildirs in the same group commit). Principle "Durable before 250" (DESIGN.md). */
#ifndef CLEARMTA_STORE_QUEUE_H
#define CLEARMTA_STORE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_queue;
struct store_msg;

/* Errors of the store; store_strerror() gives the text. The caller maps NOSPACE to 452 4.3.1 and
 * the others to 451 4.3.0 (a transient failure: the client keeps the message). */
#define STORE_ERRORS(X)                                                            \
    X(STORE_OK, "ok")                                                              \
    X(STORE_ERR_NOSPACE, "no space left on the queue filesystem")                  \
    X(STORE_ERR_IO, "queue I/O error")                                             \
    X(STORE_ERR_NOMEM, "out of memory")                                            \
    X(STORE_ERR_CORRUPT, "queue file corrupt")                                     \
    X(STORE_ERR_CLOSED, "queue closed")                                            \
    X(STORE_ERR_INVALID, "envelope or message not storable")                       \
    X(STORE_ERR_BUSY, "queue directory in use by another process")

enum store_err {
#define STORE_ERR_ENUM(name, text) name,
    STORE_ERRORS(STORE_ERR_ENUM)
#undef STORE_ERR_ENUM
};

/* Never NULL; "unknown store error" for a value outside the enum. */
const char *store_strerror(enum store_err err);

/* DSN NOTIFY bits (RFC 3461 §4.1). */
#define STORE_NOTIFY_NEVER 1u
#define STORE_NOTIFY_SUCCESS 2u
#define STORE_NOTIFY_FAILURE 4u
#define STORE_NOTIFY_DELAY 8u

struct store_rcpt {
    const char *address;    /* mailbox as received, "local@domain" */
    const char *local_user; /* mailbox name under the maildir root for local delivery, NULL = remote
                             * (kept in the queue for the later delivery agent). No '/', not
                             * starting with '.', no control characters, at most 255 bytes. */
    unsigned notify;        /* STORE_NOTIFY_* bits, 0 = not given */
    const char *orcpt;      /* DSN ORCPT "type;xtext" or NULL */
};

enum store_ret { STORE_RET_NONE = 0, STORE_RET_FULL = 1, STORE_RET_HDRS = 2 };
enum store_body { STORE_BODY_NONE = 0, STORE_BODY_7BIT = 1, STORE_BODY_8BITMIME = 2,
                  STORE_BODY_BINARYMIME = 3 };

/* Addresses (sender, rcpt address) may hold any byte but control characters (< 0x20, 0x7F):
 * RFC 5321 allows none in a path, and they would let a sender forge Maildir headers. Other
 * strings are stored escaped whatever they hold. */
struct store_envelope {
    const char *sender; /* "" = null sender <> */
    const struct store_rcpt *rcpts;
    size_t n_rcpts;     /* 1 .. LIMIT_RECIPIENTS_MAX */
    const char *envid;  /* or NULL */
    int ret;            /* enum store_ret */
    int body;           /* enum store_body */
    bool smtputf8;
    const char *client_addr; /* or NULL */
    const char *helo;        /* or NULL */
    const char *auth_user;   /* or NULL */
    int64_t arrival;         /* unix seconds */
    /* Checks on receipt: the Maildir++ folder local recipients get the message in (".Junk"
     * for DMARC quarantine; see store_qf_folder_ok), NULL for the inbox; the
     * Authentication-Results value recorded, or NULL. */
    const char *folder;
    const char *auth_results;
};

/* How a batch is made durable. SYNCFS (the default) issues one syncfs(2) per batch, covering
 * data and directory entries: measured 2-4x faster than fdatasync per file on ext4, but it also
 * flushes other writers' data on the same filesystem and reports an error for the whole batch.
 * FDATASYNC syncs each file, then the queue directory. */
enum store_sync_mode { STORE_SYNC_SYNCFS = 0, STORE_SYNC_FDATASYNC = 1 };

struct store_opts {
    const char *queue_dir;    /* created if missing (with parents) */
    const char *maildir_root; /* created if missing; needed when deliver_local */
    const char *hostname;     /* for Maildir file names; NULL = gethostname() */
    bool deliver_local;       /* start the local delivery runner */
    void (*log)(void *ctx, const char *line); /* thread-safe one-line logger, no trailing
                                               * newline; NULL = no logging */
    void *log_ctx;
    enum store_sync_mode sync_mode;
    unsigned retry_seconds;   /* local delivery retry after a failure; 0 = 30 */
    bool write_once;          /* with deliver_local: a message for local mailboxes only goes
                               * straight into their Maildirs, no queue file (store/direct.h) */
};

/* Opens (creating the layout), takes an exclusive lock on the queue directory, removes partial
 * tmp files, removes queue files whose commit marker does not match (never acknowledged, see
 * queue_file.h) and schedules every other queued message for local delivery. On failure *out is
 * NULL and err holds one line. Errors: IO, NOSPACE, NOMEM, BUSY (locked by another process). */
enum store_err store_queue_open(const struct store_opts *o, struct store_queue **out, char *err,
                                size_t errlen);

/* Waits for commits in flight and runs their callbacks, stops the threads, frees q. Every
 * message must have been committed or aborted before. Pending local deliveries stay queued on
 * disk and are resumed by the next open. */
void store_queue_close(struct store_queue *q);

/* An eventfd, readable when completions wait: the loop watches it and calls
 * store_queue_process(). Owned by q. */
int store_queue_event_fd(struct store_queue *q);

/* On the loop thread: runs the commit callbacks that are ready. Never blocks. */
void store_queue_process(struct store_queue *q);

/* Free bytes for unprivileged users on the queue filesystem (statvfs), for 452 4.3.1. */
enum store_err store_queue_free_space(struct store_queue *q, uint64_t *bytes);

/* Counters, for monitoring and tests. */
struct store_stats {
    uint64_t committed;       /* commits that reached STORE_OK */
    uint64_t commit_failed;   /* commits that reported an error */
    uint64_t commit_batches;  /* batches handled by the sync thread */
    uint64_t commit_syncs;    /* sync calls (syncfs/fdatasync/fsync) made for commits */
    uint64_t pool_misses;     /* messages whose tmp file was created inline (pool empty) */
    uint64_t pool_ready;      /* empty files in pool/ ready to be taken now */
    uint64_t direct;          /* messages written once, straight into Maildirs */
    uint64_t delivered;       /* local recipients delivered into a Maildir (both ways) */
    uint64_t deferred;        /* local delivery attempts that failed (retried later) */
    uint64_t deliver_batches; /* batches handled by the local delivery runner */
    uint64_t deliver_syncs;   /* sync calls made by the local delivery runner */
    uint64_t removed;         /* queue files removed once no recipient was pending */
};
void store_queue_stats(struct store_queue *q, struct store_stats *out);
struct store_qf;
/* Installs the local delivery runner's success hook (a store_local_success_fn of
 * store/deliver_local.h, called on the runner's thread for the delivered local recipients that
 * asked for NOTIFY=SUCCESS); fn NULL removes it. Nothing without local delivery. Thread-safe. */
void store_queue_set_success_hook(struct store_queue *q,
                                  void (*fn)(void *ctx, const struct store_qf *qf,
                                             const size_t *rcpts, size_t n, int fd),
                                  void *ctx);

/* Starts a message: takes an empty file from the pool (or creates one) and writes the envelope;
 * with write_once, a message for existing local Maildirs only is created in the first one's
 * tmp/ instead (store/direct.h) and its commit publishes it into new/. The envelope is copied; the
 * caller's strings may go away after the call. Errors: INVALID (envelope not storable, see
 * struct store_envelope), NOSPACE, IO, NOMEM, CLOSED. */
enum store_err store_msg_begin(struct store_queue *q, const struct store_envelope *env,
                               struct store_msg **out);

/* The queue id: 16 characters [0-9A-F], unique in this queue, sorting by arrival. */
const char *store_msg_id(const struct store_msg *m);

/* Appends message bytes (already CRLF, unstuffed). Buffered (64 KiB), written through to the tmp
 * file as the buffer fills. Errors are sticky: after one, later calls return it too and the
 * commit reports it. Errors: NOSPACE, IO, INVALID (past LIMIT_MESSAGE_SIZE_MAX). */
enum store_err store_msg_write(struct store_msg *m, const char *p, size_t n);

/* Called once per commit, on the loop thread, from store_queue_process(). queue_id is valid
 * during the call only. */
typedef void (*store_commit_fn)(void *ctx, enum store_err err, const char *queue_id);

/* Consumes m. done runs later, after data and directory entry are durable (STORE_OK) or after a
 * failure (then nothing of the message is kept). Never blocks on a sync. */
void store_msg_commit(struct store_msg *m, store_commit_fn done, void *ctx);

/* Consumes m: discards the message and unlinks its tmp file. */
void store_msg_abort(struct store_msg *m);

#endif
