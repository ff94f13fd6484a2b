/* policy/counters_memory.c — the in-process counters backend for one node: a base/lru.h table
 * of (key, window) → a ring of slot counts, bounded by max_keys with the least recently used
 * key dropped first. The window arithmetic is in counters_window.c. */
#include <stdlib.h>
#include <string.h>

#include "base/lru.h"
#include "policy/counters_window.h"

/* A slot stays live until it ended window_ms ago, so up to SLOTS + 1 are live at once. */
#define RING (POLICY_COUNTERS_SLOTS + 1u)
/* max_keys 0: enough for every plan, rate and greylist key of a busy node (~0.5 KiB each). */
#define DEFAULT_MAX_KEYS 100000u
/* A table key: the window's length, then the key's bytes. */
#define TABLE_KEY_MAX (sizeof(uint64_t) + POLICY_COUNTERS_KEY_MAX)

/* The slots of one key. A key with another window is another key: the same name asked with
 * a new window starts from zero rather than reading slots of a different length. */
struct window {
    uint64_t window_ms, slot_ms;
    uint64_t newest;       /* the newest slot number the ring holds */
    uint64_t last_ms;      /* latest time seen: the clock is never allowed to step back */
    uint64_t first_ms;     /* time of the first hit since the count was last 0 */
    uint64_t counts[RING]; /* counts[s % RING] for slots newest - RING + 1 .. newest */
};

struct memory_counters {
    struct policy_counters base;
    uint64_t (*now_ms)(void *clock_ctx);
    void *clock_ctx;
    struct base_lru *windows; /* (window_ms, key) → struct window, by last use */
};

/* ---- the table ---- */

/* The table key of (key, window_ms) in out (TABLE_KEY_MAX bytes); its length. */
static size_t table_key(unsigned char *out, const char *key, size_t len, uint64_t window_ms)
{
    memcpy(out, &window_ms, sizeof window_ms);
    memcpy(out + sizeof window_ms, key, len);
    return sizeof window_ms + len;
}

/* ---- one window ---- */

/* Moves the ring to now's slot, clearing the slots it passes; returns now, never earlier
 * than a time already seen. */
static uint64_t advance(struct window *w, uint64_t now)
{
    if (now < w->last_ms)
        now = w->last_ms;
    w->last_ms = now;
    uint64_t cur = now / w->slot_ms;
    uint64_t passed = cur - w->newest;
    if (passed >= RING)
        memset(w->counts, 0, sizeof w->counts);
    else
        for (uint64_t s = w->newest + 1; s <= cur; s++)
            w->counts[s % RING] = 0;
    w->newest = cur;
    return now;
}

/* Milliseconds until enough of the oldest slots leave for `need` to be freed. */
static uint64_t until_freed(const struct window *w, uint64_t lo, uint64_t now, uint64_t need)
{
    uint64_t freed = 0;
    for (uint64_t s = lo; s <= w->newest; s++) {
        freed = counters_add(freed, w->counts[s % RING]);
        if (freed >= need)
            return counters_until_leaves(s, now, w->window_ms, w->slot_ms);
    }
    return w->window_ms; /* not reached: need <= the sum of these slots */
}

/* Decides req at now (after advance) and counts it when allowed and `apply`. */
static void decide(struct window *w, const struct policy_counters_request *req, uint64_t now,
                   bool apply, struct policy_counters_result *res)
{
    /* advance() keeps newest - lo <= SLOTS, so every live slot is in the ring. */
    uint64_t lo = counters_oldest_live(now, w->window_ms, w->slot_ms);
    uint64_t count = 0, oldest_used = UINT64_MAX;
    for (uint64_t s = lo; s <= w->newest; s++) {
        count = counters_add(count, w->counts[s % RING]);
        if (w->counts[s % RING] != 0 && oldest_used == UINT64_MAX)
            oldest_used = s;
    }
    memset(res, 0, sizeof *res);
    res->limit = req->limit;
    if (!counters_fits(count, req->amount, req->limit)) {
        res->status = POLICY_COUNTERS_DENIED;
        res->retry_after_ms = req->amount > req->limit
                                  ? w->window_ms /* can never fit */
                                  : until_freed(w, lo, now, count - (req->limit - req->amount));
    } else {
        res->status = POLICY_COUNTERS_ALLOWED;
        if (apply && req->amount > 0) {
            if (count == 0)
                w->first_ms = now;
            uint64_t *slot = &w->counts[w->newest % RING];
            *slot = counters_add(*slot, req->amount);
            count = counters_add(count, req->amount);
            if (oldest_used == UINT64_MAX)
                oldest_used = w->newest;
        }
        if (count != 0)
            res->retry_after_ms =
                counters_until_leaves(oldest_used, now, w->window_ms, w->slot_ms);
    }
    res->count = count;
    res->age_ms = count != 0 ? now - w->first_ms : 0;
}

/* ---- the backend ---- */

static bool memory_hit(struct policy_counters *c, const struct policy_counters_request *req,
                       struct policy_counters_result *res, policy_counters_cb *cb, void *ctx,
                       struct policy_counters_call **call)
{
    (void)cb, (void)ctx, (void)call; /* always decided at once */
    struct memory_counters *m = (struct memory_counters *)c;
    uint64_t now = m->now_ms(m->clock_ctx);
    unsigned char key[TABLE_KEY_MAX];
    /* At most POLICY_COUNTERS_KEY_MAX: policy_counters_hit validated it. */
    size_t key_len = table_key(key, req->key, strnlen(req->key, POLICY_COUNTERS_KEY_MAX),
                               req->window_ms);
    struct window *w = base_lru_get(m->windows, key, key_len);
    if (w == NULL) {
        /* A key that is not there counts 0: reads and refusals need no entry, so they cannot
         * push real counts out of a full table. */
        struct window empty = {.window_ms = req->window_ms,
                               .slot_ms = counters_slot_ms(req->window_ms),
                               .newest = now / counters_slot_ms(req->window_ms),
                               .last_ms = now};
        decide(&empty, req, now, false, res);
        if (res->status != POLICY_COUNTERS_ALLOWED || req->amount == 0)
            return true;
        void *value;
        if (base_lru_put(m->windows, key, key_len, &value, NULL) != BASE_OK) {
            counters_unavailable(res, req->limit, "counters: out of memory");
            return true;
        }
        w = value; /* the least recently used key was dropped for it if the table was full */
        *w = empty;
    }
    now = advance(w, now);
    decide(w, req, now, true, res);
    return true;
}

static void memory_free(struct policy_counters *c)
{
    struct memory_counters *m = (struct memory_counters *)c;
    base_lru_free(m->windows);
    free(m);
}

static const struct counters_ops memory_ops = {
    .name = "memory",
    .hit = memory_hit,
    .cancel = NULL,
    .free = memory_free,
};

struct policy_counters *policy_counters_memory_new(uint64_t (*now_ms)(void *clock_ctx),
                                                   void *clock_ctx, size_t max_keys)
{
    struct memory_counters *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->base.ops = &memory_ops;
    m->now_ms = now_ms;
    m->clock_ctx = clock_ctx;
    m->windows = base_lru_new(max_keys != 0 ? max_keys : DEFAULT_MAX_KEYS, sizeof(struct window));
    if (m->windows == NULL) {
        free(m);
        return NULL;
    }
    return &m->base;
}
