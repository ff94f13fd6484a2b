/* store/deliver_local.h — the local delivery runner: a thread that delivers committed messages
 * to their local recipients' Maildirs in batches and records the outcome in the queue file. */
#ifndef CLEARMTA_STORE_DELIVER_LOCAL_H
#define CLEARMTA_STORE_DELIVER_LOCAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "store/queue.h"
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

/* Finishes the batch in progress, stops the thread and frees l. Undelivered messages stay
 * queued on disk. */
void store_local_stop(struct store_local *l);

/* Adds the runner's counters (delivered, deferred, deliver_batches, deliver_syncs, removed). */
void store_local_stats(struct store_local *l, struct store_stats *out);

#endif
