/* base/lru.h — a bounded hash table that forgets the least recently used entry when full:
 * byte-string keys, fixed-size values kept inline, every operation O(1) (plus the key's
 * length). For tables whose keys clients choose (addresses): the hash is seeded at random. */
#ifndef CLEARMTA_BASE_LRU_H
#define CLEARMTA_BASE_LRU_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

/* Buckets one table may have: beyond, chains grow longer instead of the bucket array. */
#define BASE_LRU_BUCKETS_MAX (1u << 20)

struct base_lru;

/* At most max_entries (>= 1) entries of value_size bytes each; values are aligned for any
 * type. Memory: one allocation per entry (value + key + a few words) and the buckets. NULL
 * when max_entries is 0 or out of memory. */
struct base_lru *base_lru_new(size_t max_entries, size_t value_size);

/* Frees every entry and the table. Safe on NULL. */
void base_lru_free(struct base_lru *t);

/* The value stored under key (key_len bytes, any bytes), or NULL. Leaves the order alone. */
void *base_lru_peek(const struct base_lru *t, const void *key, size_t key_len);

/* As base_lru_peek, and makes the entry the most recently used. */
void *base_lru_get(struct base_lru *t, const void *key, size_t key_len);

/* The value under key, made the most recently used, in *value. When key was not there a new
 * entry is made with its value zeroed (*created true, when created is not NULL); if the table
 * was full the least recently used entry is forgotten for it. The pointer stays valid until
 * the entry is forgotten. Errors: NOMEM (nothing changed). */
enum base_err base_lru_put(struct base_lru *t, const void *key, size_t key_len, void **value,
                           bool *created);

/* Forgets the entry under key; false when there was none. */
bool base_lru_remove(struct base_lru *t, const void *key, size_t key_len);

/* The value of the least recently used entry, or NULL when the table is empty. */
void *base_lru_oldest(const struct base_lru *t);

/* Forgets the least recently used entry; nothing when the table is empty. */
void base_lru_drop_oldest(struct base_lru *t);

/* Entries held now (0 .. max_entries). */
size_t base_lru_count(const struct base_lru *t);

#endif
