/* store/lazysync.h — a sync nobody waits for: a thread runs syncfs(2) on a filesystem when
 * asked, one at a time, every request made meanwhile folded into the next one. For writes whose
 * loss in a power failure costs a repetition, never a message: the delivery agent's outcome
 * records (store/remote.h), which would otherwise cost the event loop an fsync per transaction. */
#ifndef CLEARMTA_STORE_LAZYSYNC_H
#define CLEARMTA_STORE_LAZYSYNC_H

#include <stdint.h>

#include "store/queue.h"

struct store_lazysync;

/* fd: a descriptor on the filesystem, borrowed (it must outlive s). log: thread-safe, for a
 * failed sync (NULL: none). Errors: NOMEM, IO (the thread cannot start). */
enum store_err store_lazysync_new(int fd, void (*log)(void *ctx, const char *line),
                                  void *log_ctx, struct store_lazysync **out);

/* Asks for a syncfs covering every write this thread finished before the call; returns at once.
 * Thread-safe. */
void store_lazysync_request(struct store_lazysync *s);

/* Closes fd on the thread, soon, and before the sync of a request made after this call. For
 * the descriptor of a file already unlinked: its last close frees the file's blocks, which on
 * a filesystem mounted with online discard waits for the disk. Thread-safe; takes fd over. */
void store_lazysync_close(struct store_lazysync *s, int fd);

/* syncfs calls made so far (for tests and monitoring). */
uint64_t store_lazysync_count(struct store_lazysync *s);

/* Runs the sync still asked for, stops the thread, frees s. NULL is fine. */
void store_lazysync_free(struct store_lazysync *s);

#endif
