/* policy/authlimit.c — failed AUTH attempts per client address: a hash table of records, each a
 * ring of the last `limit` failure times, and a list by last failure for eviction and expiry. */
#include "policy/authlimit.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/hash.h"

struct record {
    struct record *chain;         /* next in the bucket */
    struct record *older, *newer; /* by last failure: lim->oldest ... lim->newest */
    unsigned char key[16];
    unsigned n, next;             /* times kept; ring slot of the next failure */
    uint64_t last;                /* time of the newest failure */
    uint64_t times[];             /* limit entries */
};

struct policy_authlimit {
    unsigned limit;
    uint64_t window_ms;
    size_t max_entries, count;
    uint64_t seed;                /* hash seed: clients choose their addresses */
    struct record **buckets;
    size_t mask;
    struct record *oldest, *newest;
};

/* IPv4 (also IPv4-mapped IPv6) → ::ffff:a.b.c.d; IPv6 → its /64; anything else → all ones. */
static void make_key(const char *ip, unsigned char key[16])
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct in6_addr a6;
    if (inet_pton(AF_INET, ip, key + 12) == 1) {
        memcpy(key, mapped, sizeof mapped);
    } else if (inet_pton(AF_INET6, ip, &a6) == 1) {
        memcpy(key, &a6, 16);
        if (memcmp(key, mapped, sizeof mapped) != 0)
            memset(key + 8, 0, 8);
    } else {
        memset(key, 0xff, 16);
    }
}

static size_t bucket_of(const struct policy_authlimit *lim, const unsigned char key[16])
{
    uint64_t h = base_fnv1a(BASE_FNV1A_OFFSET ^ lim->seed, key, 16);
    return (size_t)(h ^ h >> 32) & lim->mask;
}

static struct record *find(const struct policy_authlimit *lim, const char *ip)
{
    unsigned char key[16];
    make_key(ip, key);
    for (struct record *r = lim->buckets[bucket_of(lim, key)]; r != NULL; r = r->chain)
        if (memcmp(r->key, key, 16) == 0)
            return r;
    return NULL;
}

static bool in_window(const struct policy_authlimit *lim, uint64_t t, uint64_t now)
{
    return t > now || now - t < lim->window_ms;
}

/* ---- the list by last failure ---- */

static void unlink_list(struct policy_authlimit *lim, struct record *r)
{
    *(r->older != NULL ? &r->older->newer : &lim->oldest) = r->newer;
    *(r->newer != NULL ? &r->newer->older : &lim->newest) = r->older;
    r->older = r->newer = NULL;
}

static void append_list(struct policy_authlimit *lim, struct record *r)
{
    r->older = lim->newest;
    *(lim->newest != NULL ? &lim->newest->newer : &lim->oldest) = r;
    lim->newest = r;
}

static void drop(struct policy_authlimit *lim, struct record *r)
{
    struct record **p = &lim->buckets[bucket_of(lim, r->key)];
    while (*p != r)
        p = &(*p)->chain;
    *p = r->chain;
    unlink_list(lim, r);
    free(r);
    lim->count--;
}

/* Forgets addresses whose last failure left the window, and the oldest beyond the bound. */
static void expire(struct policy_authlimit *lim, uint64_t now, size_t keep)
{
    while (lim->oldest != NULL && (!in_window(lim, lim->oldest->last, now) || lim->count > keep))
        drop(lim, lim->oldest);
}

/* ---- public ---- */

struct policy_authlimit *policy_authlimit_new(unsigned limit, uint64_t window_ms,
                                              size_t max_entries)
{
    if (limit == 0)
        return NULL;
    struct policy_authlimit *lim = calloc(1, sizeof *lim);
    if (lim == NULL)
        return NULL;
    lim->limit = limit;
    lim->window_ms = window_ms;
    lim->max_entries = max_entries != 0 ? max_entries : POLICY_AUTHLIMIT_ENTRIES;
    size_t n = 64;
    while (n < lim->max_entries && n < POLICY_AUTHLIMIT_ENTRIES)
        n *= 2; /* about one record per bucket when full */
    lim->mask = n - 1;
    lim->buckets = calloc(n, sizeof *lim->buckets);
    if (getrandom(&lim->seed, sizeof lim->seed, GRND_NONBLOCK) != (ssize_t)sizeof lim->seed)
        lim->seed = (uint64_t)(uintptr_t)lim; /* weaker, but never blocks start-up */
    if (lim->buckets == NULL) {
        free(lim);
        return NULL;
    }
    return lim;
}

void policy_authlimit_free(struct policy_authlimit *lim)
{
    if (lim == NULL)
        return;
    while (lim->oldest != NULL)
        drop(lim, lim->oldest);
    free(lim->buckets);
    free(lim);
}

void policy_authlimit_failed(struct policy_authlimit *lim, const char *ip, uint64_t now_ms)
{
    struct record *r = find(lim, ip);
    if (r == NULL) {
        expire(lim, now_ms, lim->max_entries - 1);
        r = calloc(1, sizeof *r + lim->limit * sizeof r->times[0]);
        if (r == NULL)
            return;
        make_key(ip, r->key);
        struct record **head = &lim->buckets[bucket_of(lim, r->key)];
        r->chain = *head;
        *head = r;
        lim->count++;
    } else {
        unlink_list(lim, r);
    }
    r->times[r->next] = now_ms;
    r->next = (r->next + 1) % lim->limit;
    if (r->n < lim->limit)
        r->n++;
    r->last = now_ms;
    append_list(lim, r);
}

unsigned policy_authlimit_failures(const struct policy_authlimit *lim, const char *ip,
                                   uint64_t now_ms)
{
    const struct record *r = find(lim, ip);
    unsigned n = 0;
    for (unsigned i = 0; r != NULL && i < r->n; i++)
        n += in_window(lim, r->times[i], now_ms);
    return n;
}

bool policy_authlimit_blocked(const struct policy_authlimit *lim, const char *ip, uint64_t now_ms)
{
    return policy_authlimit_failures(lim, ip, now_ms) >= lim->limit;
}

unsigned policy_authlimit_delay_ms(const struct policy_authlimit *lim, const char *ip,
                                   uint64_t now_ms)
{
    unsigned n = policy_authlimit_failures(lim, ip, now_ms);
    unsigned delay = POLICY_AUTHLIMIT_DELAY_FIRST_MS;
    if (n <= 1)
        return 0;
    for (unsigned i = 2; i < n && delay < POLICY_AUTHLIMIT_DELAY_MAX_MS; i++)
        delay *= 2;
    return delay < POLICY_AUTHLIMIT_DELAY_MAX_MS ? delay : POLICY_AUTHLIMIT_DELAY_MAX_MS;
}

void policy_authlimit_succeeded(struct policy_authlimit *lim, const char *ip)
{
    struct record *r = find(lim, ip);
    if (r != NULL)
        drop(lim, r);
}

size_t policy_authlimit_tracked(const struct policy_authlimit *lim)
{
    return lim->count;
}
