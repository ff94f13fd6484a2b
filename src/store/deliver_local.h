/* store/deliver_local.h — the local delivery runner: a thread that delivers committed messages
 * to their local recipients' Maildirs in batches, records the outcome in the queue file, and
 * tells a hook which delivered recipients asked for a success report (RFC 3461 §4.1). */
#ifndef CLEARMTA_STORE_DELIVER_LOCAL_H
#define CLEARMTA_STORE_DELIVER_LOCAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "store/queue.h"
#include "store/queue_file.h"
#include "store/syncer.h"

struct store_local;

struct store_local_cfg {
    int queue_fd;             /* the queue/ directory; borrowed, must outlive the runner */
    const char *maildir_root; /* used during store_local_start() only */
    const char *hostname;     /* used during store_local_start() only */
    enum store_sync_mode sync_mode;
    struct store_syncer *syncer; /* the queue's shared syncfs, borrowed; used in SYNCFS mode when
                                  * the maildir root is on the queue's filesystem */
    unsigned retry_seconds;   /* delay before a failed local delivery is tried again */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
};

/* Starts the thread. On failure err holds one line. Errors: IO, NOSPACE, NOMEM. */
enum store_err store_local_start(const struct store_local_cfg *cfg, struct store_local **out,
                                 char *err, size_t errlen);

/* Queues queue file id (a valid queue id) for delivery; the runner takes fd (open on the queue file, read-write),
 * or opens the file itself when fd is -1. Thread-safe. Returns false (and closes fd) when out
 * of memory: the message stays queued on disk for the next start. */
bool store_local_submit(struct store_local *l, const char *id, int fd);

/* Called on the runner thread once per message of a batch whose local recipients rcpts[0..n)
 * (indices into qf->env.rcpts) asked for NOTIFY=SUCCESS and are now delivered, after their
 * states are recorded (a crash before the report is queued loses the report, never the mail).
 * qf is valid during the call only; fd is open on the queue file, readable (message bytes from
 * qf->header_len, qf->size of them) even when the file was removed meanwhile; not to be closed. */
typedef void (*store_local_success_fn)(void *ctx, const struct store_qf *qf, const size_t *rcpts,
                                       size_t n, int fd);

/* Installs (fn NULL: removes) the hook for the batches that start from now on. Thread-safe. */
void store_local_set_success_hook(struct store_local *l, store_local_success_fn fn, void *ctx);

/* Finishes the batch in progress, stops the thread and frees l. Undelivered messages stay
 * queued on disk. */
void store_local_stop(struct store_local *l);

/* Adds the runner's counters (delivered, deferred, deliver_batches, deliver_syncs, removed). */
void store_local_stats(struct store_local *l, struct store_stats *out);

#endif
