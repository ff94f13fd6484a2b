/* policy/counters.h — rate counters behind one interface: sliding-window counts per key for
 * plans, connection rates and greylisting; in memory for one node (counters_memory.c) or in
 * Redis for a fleet (counters_redis.c). A decision is one call; the memory backend answers at
 * once, Redis through the event loop in one round trip.
 *
 * The window: `window_ms` is divided into POLICY_COUNTERS_SLOTS equal slots; a hit is counted
 * in the slot of its time, and the count of a key is the sum of the slots that ended less
 * than window_ms ago (up to POLICY_COUNTERS_SLOTS + 1 slots). A hit thus leaves the count between window_ms and window_ms + one slot
 * after it happened: never early, so a limit is never exceeded in any rolling window, and at
 * most window_ms / POLICY_COUNTERS_SLOTS late (1 minute for an hour). */
#ifndef CLEARMTA_POLICY_COUNTERS_H
#define CLEARMTA_POLICY_COUNTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

#define POLICY_COUNTERS_SLOTS 60u
/* Longest key, e.g. "plan:msg:3600:alice@example.test" or "grey:192.0.2.0/24:<s>:<r>". */
#define POLICY_COUNTERS_KEY_MAX 700u

/* What a counters call came to. */
enum policy_counters_status {
    POLICY_COUNTERS_ALLOWED,     /* under the limit: the amount was counted */
    POLICY_COUNTERS_DENIED,      /* count + amount would exceed the limit: nothing counted */
    POLICY_COUNTERS_UNAVAILABLE  /* the backend did not answer in time or failed (Redis down):
                                  * nothing counted; the caller applies fail open/closed */
};

struct policy_counters_result {
    enum policy_counters_status status;
    uint64_t count;       /* the key's count in the window after the call (as known) */
    uint64_t limit;       /* as asked */
    /* ALLOWED/DENIED: milliseconds until enough of the count leaves the window for `amount`
     * more to fit (DENIED), or until the oldest slot leaves it (ALLOWED; 0 when empty). */
    uint64_t retry_after_ms;
    /* Milliseconds since the key's first hit, exact (not rounded to a slot), counted from the
     * first hit after the key's count was last 0; 0 when the count is 0 (greylisting). */
    uint64_t age_ms;
    char error[128];      /* UNAVAILABLE: why, for the log */
};

/* One request: add `amount` to `key` if the count in the window stays <= limit.
 * amount 0 only reads (limits show, greylist checks). limit 0 means no limit (always
 * allowed). */
struct policy_counters_request {
    const char *key;      /* 1..POLICY_COUNTERS_KEY_MAX bytes, any bytes but NUL */
    uint64_t amount;
    uint64_t limit;
    uint64_t window_ms;   /* >= POLICY_COUNTERS_SLOTS */
};

typedef void policy_counters_cb(void *ctx, const struct policy_counters_result *res);

struct policy_counters;
struct policy_counters_call; /* a pending call, to cancel */

/* A memory backend. now_ms gives the time (monotonic milliseconds); tests pass their own
 * clock. max_keys bounds memory (0: 100000; keys idle longest are dropped first when full; a
 * dropped key counts 0 again). NULL when out of memory. */
struct policy_counters *policy_counters_memory_new(uint64_t (*now_ms)(void *clock_ctx),
                                                   void *clock_ctx, size_t max_keys);

/* A Redis backend (hiredis async on base). server "HOST:PORT" (numeric IPv4 or [IPv6]),
 * prefix put before every key ("clearmta:" when NULL), timeout_ms bounds each call (a call
 * not answered by then gets UNAVAILABLE; 0: 500). The connection is made in the background
 * and re-made after failures; calls made while it is down get UNAVAILABLE at once (from the
 * loop). Time is Redis's own clock (TIME inside the script), so a fleet shares one window.
 * NULL with the reason in err. */
struct policy_counters *policy_counters_redis_new(struct event_base *base, const char *server,
                                                  const char *prefix, unsigned timeout_ms,
                                                  char *err, size_t errlen);

/* Frees the backend; pending calls are cancelled without callback. NULL is fine. */
void policy_counters_free(struct policy_counters *c);

/* "memory" or "redis". */
const char *policy_counters_backend(const struct policy_counters *c);

/* Makes one decision. Returns true when it was decided at once (memory backend): *res holds
 * it and cb is never called. Returns false when it is pending: cb(ctx, res) will be called
 * exactly once from the event loop (never from inside this call) unless cancelled through
 * *call (may be NULL), which stays valid until the callback starts. A request with a bad key
 * or window is decided at once as UNAVAILABLE with the reason. */
bool policy_counters_hit(struct policy_counters *c, const struct policy_counters_request *req,
                         struct policy_counters_result *res, policy_counters_cb *cb, void *ctx,
                         struct policy_counters_call **call);

/* The callback of a pending call will not be called. */
void policy_counters_cancel(struct policy_counters_call *call);

/* Failed (UNAVAILABLE) decisions since start, for the log and `clearmta limits show`. */
uint64_t policy_counters_failures(const struct policy_counters *c);

#endif
