/* base/lru.c — the table of lru.h: chained buckets (a power of two of them, about one entry
 * each when full) and a doubly linked list by last use; each entry is one allocation holding
 * its links, its value and then its key. */
#include "base/lru.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/hash.h"

struct node {
    struct node *chain;         /* next in the bucket */
    struct node *older, *newer; /* by last use: t->oldest ... t->newest */
    uint64_t hash;
    size_t key_len;
    max_align_t value[];        /* value_size bytes, then the key */
};

struct base_lru {
    size_t max_entries, count;
    size_t value_size;
    uint64_t seed; /* clients choose the keys: a fixed hash would let them fill one chain */
    size_t mask;
    struct node **buckets;
    struct node *oldest, *newest;
};

static const unsigned char *key_of(const struct base_lru *t, const struct node *n)
{
    return (const unsigned char *)n->value + t->value_size;
}

static uint64_t hash_key(const struct base_lru *t, const void *key, size_t key_len)
{
    uint64_t h = base_fnv1a(BASE_FNV1A_OFFSET ^ t->seed, key, key_len);
    return h ^ h >> 32; /* the mask keeps low bits: fold the better mixed high ones in */
}

static struct node *find(const struct base_lru *t, const void *key, size_t key_len)
{
    uint64_t h = hash_key(t, key, key_len);
    for (struct node *n = t->buckets[h & t->mask]; n != NULL; n = n->chain)
        if (n->hash == h && n->key_len == key_len && memcmp(key_of(t, n), key, key_len) == 0)
            return n;
    return NULL;
}

/* ---- the list by last use ---- */

static void unlink_use(struct base_lru *t, struct node *n)
{
    *(n->older != NULL ? &n->older->newer : &t->oldest) = n->newer;
    *(n->newer != NULL ? &n->newer->older : &t->newest) = n->older;
    n->older = n->newer = NULL;
}

static void append_use(struct base_lru *t, struct node *n)
{
    n->older = t->newest;
    *(t->newest != NULL ? &t->newest->newer : &t->oldest) = n;
    t->newest = n;
}

static void drop(struct base_lru *t, struct node *n)
{
    struct node **p = &t->buckets[n->hash & t->mask];
    while (*p != n)
        p = &(*p)->chain;
    *p = n->chain;
    unlink_use(t, n);
    t->count--;
    free(n);
}

/* ---- public ---- */

struct base_lru *base_lru_new(size_t max_entries, size_t value_size)
{
    if (max_entries == 0 || value_size > SIZE_MAX / 2)
        return NULL;
    struct base_lru *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->max_entries = max_entries;
    t->value_size = value_size;
    size_t n = 16;
    while (n < max_entries && n < BASE_LRU_BUCKETS_MAX)
        n *= 2;
    t->mask = n - 1;
    t->buckets = calloc(n, sizeof *t->buckets);
    if (t->buckets == NULL) {
        free(t);
        return NULL;
    }
    if (getrandom(&t->seed, sizeof t->seed, GRND_NONBLOCK) != (ssize_t)sizeof t->seed)
        t->seed = (uint64_t)(uintptr_t)t; /* weaker, but never blocks start-up */
    return t;
}

void base_lru_free(struct base_lru *t)
{
    if (t == NULL)
        return;
    while (t->oldest != NULL)
        drop(t, t->oldest);
    free(t->buckets);
    free(t);
}

void *base_lru_peek(const struct base_lru *t, const void *key, size_t key_len)
{
    struct node *n = find(t, key, key_len);
    return n != NULL ? n->value : NULL;
}

void *base_lru_get(struct base_lru *t, const void *key, size_t key_len)
{
    struct node *n = find(t, key, key_len);
    if (n == NULL)
        return NULL;
    unlink_use(t, n);
    append_use(t, n);
    return n->value;
}

enum base_err base_lru_put(struct base_lru *t, const void *key, size_t key_len, void **value,
                           bool *created)
{
    void *found = base_lru_get(t, key, key_len);
    if (created != NULL)
        *created = false;
    if (found != NULL) {
        *value = found;
        return BASE_OK;
    }
    if (key_len > SIZE_MAX - sizeof(struct node) - t->value_size)
        return BASE_ERR_NOMEM;
    /* Allocated before anything is forgotten, so that a failure changes nothing. */
    struct node *n = calloc(1, sizeof *n + t->value_size + key_len);
    if (n == NULL)
        return BASE_ERR_NOMEM;
    if (t->count >= t->max_entries)
        drop(t, t->oldest);
    n->hash = hash_key(t, key, key_len);
    n->key_len = key_len;
    if (key_len > 0)
        memcpy((unsigned char *)n->value + t->value_size, key, key_len);
    struct node **head = &t->buckets[n->hash & t->mask];
    n->chain = *head;
    *head = n;
    append_use(t, n);
    t->count++;
    *value = n->value;
    if (created != NULL)
        *created = true;
    return BASE_OK;
}

bool base_lru_remove(struct base_lru *t, const void *key, size_t key_len)
{
    struct node *n = find(t, key, key_len);
    if (n != NULL)
        drop(t, n);
    return n != NULL;
}

void *base_lru_oldest(const struct base_lru *t)
{
    return t->oldest != NULL ? t->oldest->value : NULL;
}

void base_lru_drop_oldest(struct base_lru *t)
{
    if (t->oldest != NULL)
        drop(t, t->oldest);
}

size_t base_lru_count(const struct base_lru *t)
{
    return t->count;
}
