/* store/syncer.h — one syncfs(2) shared by the store's threads (commit and local delivery): a
 * caller whose writes are done waits for a syncfs that STARTED after them, and runs one itself
 * when none is in progress. Group commit across threads: under load the delivery runner's
 * syncs ride on the commit thread's and the other way round. A caller that needs two syncs with
 * work between them (a batch's data, then its renames into new/, then those entries) hands the
 * work to the syncer: whichever thread starts the next sync after the first runs it, so one
 * syncfs carries one batch's renames and the next batch's data. */
#ifndef CLEARMTA_STORE_SYNCER_H
#define CLEARMTA_STORE_SYNCER_H

#include <stdbool.h>
#include <stdint.h>

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

/* Work between two syncs; the caller's, on its stack: the syncer only links it while it waits. */
struct store_syncer_step {
    /* Called once, without the syncer's lock, by the thread that starts the first sync after
     * the one covering the caller's writes; data_err is that sync's result (0: durable). */
    void (*run)(void *ctx, int data_err);
    void *ctx;
    /* the syncer's */
    uint64_t after;  /* run before a sync numbered above this */
    uint64_t ran_in; /* the sync it ran before; 0: not yet */
    int data_err, sync_err;
    struct store_syncer_step *next;
};

/* Like store_syncer_sync, then step->run, then a sync that started after it: returns once that
 * one is done, with its errno (0 when step->run's changes are on stable storage). *syncs counts
 * the syncfs this caller issued. Thread-safe. */
int store_syncer_sync_twice(struct store_syncer *s, enum store_fault_op op,
                            struct store_syncer_step *step, unsigned *syncs);

#endif
