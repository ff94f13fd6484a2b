/* policy/counters_window.h — what the counters backends share: the backend vtable behind
 * struct policy_counters, request validation and the slot arithmetic of the sliding window
 * (see counters.h). Internal to policy/counters_*.c and their tests. */
#ifndef CLEARMTA_POLICY_COUNTERS_WINDOW_H
#define CLEARMTA_POLICY_COUNTERS_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#include "policy/counters.h"

/* One backend. hit() is called with a request already validated; cancel() may be NULL for a
 * backend that never leaves a call pending. */
struct counters_ops {
    const char *name;
    bool (*hit)(struct policy_counters *c, const struct policy_counters_request *req,
                struct policy_counters_result *res, policy_counters_cb *cb, void *ctx,
                struct policy_counters_call **call);
    void (*cancel)(struct policy_counters_call *call);
    void (*free)(struct policy_counters *c);
};

/* The head of every backend's struct (backends embed it first). */
struct policy_counters {
    const struct counters_ops *ops;
    uint64_t failures; /* UNAVAILABLE results delivered */
};

/* The head of every pending call, so that policy_counters_cancel finds its backend. */
struct policy_counters_call {
    const struct counters_ops *ops;
};

/* Slot length: window_ms / POLICY_COUNTERS_SLOTS rounded up, so that POLICY_COUNTERS_SLOTS
 * slots always cover the window even when it does not divide evenly. */
uint64_t counters_slot_ms(uint64_t window_ms);

/* Slot number (floor(now / slot_ms)) of the oldest slot still in the window at now. A slot
 * stays while it ended less than window_ms ago, so a hit is never dropped early; at most
 * POLICY_COUNTERS_SLOTS + 1 slots are live at once. */
uint64_t counters_oldest_live(uint64_t now, uint64_t window_ms, uint64_t slot_ms);

/* Milliseconds from now until slot `slot` leaves the window (0 if it already has). */
uint64_t counters_until_leaves(uint64_t slot, uint64_t now, uint64_t window_ms,
                               uint64_t slot_ms);

/* Whether count + amount stays <= limit (limit 0: always), without overflowing. */
bool counters_fits(uint64_t count, uint64_t amount, uint64_t limit);

/* a + b, stopping at UINT64_MAX instead of wrapping. */
uint64_t counters_add(uint64_t a, uint64_t b);

/* Fills res as UNAVAILABLE with the reason (printf-style, truncated to fit). */
void counters_unavailable(struct policy_counters_result *res, uint64_t limit, const char *fmt,
                          ...) __attribute__((format(printf, 3, 4)));

#endif
