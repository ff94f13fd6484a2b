/* store/syncer.h — one syncfs(2) shared by the store's threads (commit and local delivery): a
 * caller whose writes are done waits for a syncfs that STARTED after them, and runs one itself
 * when none is in progress. Group commit across threads: under load the delivery runner's
 * syncs ride on the commit thread's and the other way round. */
#ifndef CLEARMTA_STORE_SYNCER_H
#define CLEARMTA_STORE_SYNCER_H

#include <stdbool.h>

#include "store/fault.h"

struct store_syncer;

/* fd: any descriptor on the filesystem to sync, borrowed (must outlive the syncer). NULL when
 * out of memory. */
struct store_syncer *store_syncer_new(int fd);
void store_syncer_free(struct store_syncer *s);

/* Returns once every write this thread finished before the call is on stable storage: 0, or
 * the errno of the syncfs that covered them. op is the fault point when this caller issues the
 * syncfs; *ran tells whether it did (for the sync counters). Thread-safe. */
int store_syncer_sync(struct store_syncer *s, enum store_fault_op op, bool *ran);

#endif
