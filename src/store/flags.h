/* store/flags.h — durable per-message flags set by the administrator or the delivery agent:
 * empty files <queue_dir>/flags/<ID>.<flag>, beside queue/, so that a flag survives a restart
 * and an administrator can see (and remove) it with ls. */
#ifndef CLEARMTA_STORE_FLAGS_H
#define CLEARMTA_STORE_FLAGS_H

#include <stdbool.h>

#include "store/queue.h"

enum store_flag {
    STORE_FLAG_HOLD,  /* `queue hold`: no delivery attempt, remote or local, until released */
    STORE_FLAG_WARNED /* the sender got its delay warning: never a second one */
};

/* Opens (creating it when missing, durably) the flags/ directory beside the queue/ directory
 * open on queue_fd, into *flags_fd (the caller closes it; -1 on error). Errors: IO, NOSPACE,
 * NOMEM. */
enum store_err store_flags_open(int queue_fd, int *flags_fd);

/* True when flag f is set for message id. A flag that cannot be read counts as not set; a
 * bad id is never flagged. */
bool store_flags_get(int flags_fd, const char *id, enum store_flag f);

/* Sets (on) or clears flag f of message id, durably (the directory is synced) before
 * returning. Setting a set flag or clearing a clear one is fine. Errors: INVALID (bad id), IO,
 * NOSPACE. */
enum store_err store_flags_set(int flags_fd, const char *id, enum store_flag f, bool on);

/* Clears every flag of message id (it left the queue). Not synced: a flag left behind by a
 * crash is removed by store_flags_sweep. */
void store_flags_forget(int flags_fd, const char *id);

/* Removes the flags of messages no longer in queue/ (queue ids are never reused, so this is
 * tidiness, not correctness). */
void store_flags_sweep(int flags_fd, int queue_fd);

#endif
