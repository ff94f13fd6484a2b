/* store/remote.h — the store side of remote delivery: finding queued messages with remote
 * recipients still pending, reading one, and recording each recipient's outcome durably in
 * place, under flock(2) because the local delivery runner updates the same files. */
#ifndef CLEARMTA_STORE_REMOTE_H
#define CLEARMTA_STORE_REMOTE_H

#include <stdbool.h>
#include <stddef.h>

#include "store/lazysync.h"
#include "store/queue_file.h"

/* One queued message open for remote delivery. */
struct store_remote_msg {
    int fd;             /* the queue file, read-write */
    struct store_qf qf; /* header as last read; states refreshed by store_remote_record */
    char *body;         /* the message bytes (malloc'd, qf.size bytes; NULL when empty) */
    size_t body_len;
    bool removed;       /* store_remote_record unlinked the file */
};

/* True when recipient i is remote (no local mailbox) and still pending. */
bool store_remote_pending(const struct store_qf *qf, size_t i);

/* Opens <queue_dir>/queue into *dir_fd, the directory for the calls below (the caller closes
 * it; -1 on error). Errors: IO (also a missing directory), NOMEM. */
enum store_err store_remote_open_dir(const char *queue_dir, int *dir_fd);

/* Calls fn for each queue file in dir_fd holding at least one pending remote recipient. Files
 * that cannot be read are skipped. Errors: IO (the directory cannot be listed), NOMEM. */
enum store_err store_remote_scan(int dir_fd, void (*fn)(void *ctx, const char *id), void *ctx);

/* Opens and reads queue file id (header and body). *gone is set when the file no longer
 * exists (delivered and removed meanwhile): STORE_OK then, and m needs no closing.
 * Errors: CORRUPT (also an id that is not a queue id or a file whose id differs), IO, NOMEM. */
enum store_err store_remote_load(int dir_fd, const char *id, struct store_remote_msg *m,
                                 bool *gone);

/* Records outcomes: when the message has a local recipient, under an exclusive flock on the
 * file and after re-reading the recipient states (the local runner may have changed them; it
 * touches no other file); writes st[k] for recipient idx[k] (SENT or BOUNCED; a deferred
 * recipient stays PENDING on disk, as the local runner removes files with nothing pending);
 * when no recipient is pending any more, unlinks the file instead of writing (*removed,
 * m->removed). Nothing is synced here: the caller asks a store_lazysync (store/lazysync.h) for
 * one sync per batch of records. A power failure before it can repeat those deliveries, never
 * lose one; a process crash loses nothing (the writes are in the page cache). m->qf's states
 * are updated. n may be 0 (idx, st NULL): only the removal check. Errors: INVALID (an index out
 * of range: nothing written), NOSPACE, IO, CORRUPT, NOMEM. */
enum store_err store_remote_record(int dir_fd, struct store_remote_msg *m, const size_t *idx,
                                   const enum store_rcpt_state *st, size_t n, bool *removed);

/* Every queue id in dir_fd, oldest first (ids sort by arrival), into *ids (malloc'd, *n
 * entries; the caller frees it). Errors: IO, NOMEM. */
enum store_err store_remote_list(int dir_fd, char (**ids)[STORE_ID_LEN + 1], size_t *n);

/* Reads the header of queue file id only, into qf (the caller frees it with store_qf_free
 * unless *gone). Errors: as store_remote_load. */
enum store_err store_remote_peek(int dir_fd, const char *id, struct store_qf *qf, bool *gone);

/* Removes the message (`queue delete`): under the file's exclusive flock, takes the states now
 * on disk into m->qf (the caller reports the recipients still pending), unlinks the file and
 * syncs the directory. Errors: IO (also when it was removed meanwhile), CORRUPT, NOMEM. */
enum store_err store_remote_remove(int dir_fd, struct store_remote_msg *m);

/* Closes the file and frees what m holds. Safe on a zeroed m with fd -1. */
void store_remote_close(struct store_remote_msg *m);

/* As store_remote_close, but the descriptor of a file store_remote_record removed is closed
 * by s's thread (store_lazysync_close): its last close frees the file's blocks, which can wait
 * for the disk, and the event loop must not. s NULL: as store_remote_close. */
void store_remote_close_deferred(struct store_remote_msg *m, struct store_lazysync *s);

#endif
