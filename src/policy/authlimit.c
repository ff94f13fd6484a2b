/* policy/authlimit.c — failed AUTH attempts per client address: a base/lru.h table of records,
 * each a ring of the last `limit` failure times, ordered by last failure (eviction, expiry). */
#include "policy/authlimit.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "base/lru.h"

#define KEY_LEN 16

/* The value of one address in the table (the key is its 16-byte form, make_key). */
struct record {
    unsigned n, next;             /* times kept; ring slot of the next failure */
    uint64_t last;                /* time of the newest failure */
    uint64_t times[];             /* limit entries */
};

/* The table is ordered by last failure (failures refresh an address, lookups do not), so its
 * least recently used entry is the one to expire or evict first. */
struct policy_authlimit {
    unsigned limit;
    uint64_t window_ms;
    size_t max_entries;
    struct base_lru *records;
};

/* IPv4 (also IPv4-mapped IPv6) → ::ffff:a.b.c.d; IPv6 → its /64; anything else → all ones. */
static void make_key(const char *ip, unsigned char key[KEY_LEN])
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct in6_addr a6;
    if (inet_pton(AF_INET, ip, key + 12) == 1) {
        memcpy(key, mapped, sizeof mapped);
    } else if (inet_pton(AF_INET6, ip, &a6) == 1) {
        memcpy(key, &a6, KEY_LEN);
        if (memcmp(key, mapped, sizeof mapped) != 0)
            memset(key + 8, 0, 8);
    } else {
        memset(key, 0xff, KEY_LEN);
    }
}

static const struct record *find(const struct policy_authlimit *lim, const char *ip)
{
    unsigned char key[KEY_LEN];
    make_key(ip, key);
    return base_lru_peek(lim->records, key, KEY_LEN);
}

static bool in_window(const struct policy_authlimit *lim, uint64_t t, uint64_t now)
{
    return t > now || now - t < lim->window_ms;
}

/* Forgets addresses whose last failure left the window, and the oldest beyond the bound. */
static void expire(struct policy_authlimit *lim, uint64_t now, size_t keep)
{
    const struct record *r;
    while ((r = base_lru_oldest(lim->records)) != NULL &&
           (!in_window(lim, r->last, now) || base_lru_count(lim->records) > keep))
        base_lru_drop_oldest(lim->records);
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
    lim->records = base_lru_new(lim->max_entries,
                                sizeof(struct record) + limit * sizeof(uint64_t));
    if (lim->records == NULL) {
        free(lim);
        return NULL;
    }
    return lim;
}

void policy_authlimit_free(struct policy_authlimit *lim)
{
    if (lim == NULL)
        return;
    base_lru_free(lim->records);
    free(lim);
}

void policy_authlimit_failed(struct policy_authlimit *lim, const char *ip, uint64_t now_ms)
{
    unsigned char key[KEY_LEN];
    make_key(ip, key);
    if (base_lru_peek(lim->records, key, KEY_LEN) == NULL)
        expire(lim, now_ms, lim->max_entries - 1);
    void *value;
    if (base_lru_put(lim->records, key, KEY_LEN, &value, NULL) != BASE_OK)
        return;
    struct record *r = value; /* zeroed when new; now the most recent */
    r->times[r->next] = now_ms;
    r->next = (r->next + 1) % lim->limit;
    if (r->n < lim->limit)
        r->n++;
    r->last = now_ms;
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
    unsigned char key[KEY_LEN];
    make_key(ip, key);
    base_lru_remove(lim->records, key, KEY_LEN);
}

size_t policy_authlimit_tracked(const struct policy_authlimit *lim)
{
    return base_lru_count(lim->records);
}
