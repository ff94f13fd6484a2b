/* server/ipcount.c — a chained hash table of address → connection count; entries go when their
 * count drops to zero, so the table holds only addresses connected now. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "server/ipcount.h"

#define BUCKETS 4096 /* power of two; chains stay short up to tens of thousands of clients */
#define ADDR_MAX 64

struct entry {
    struct entry *next;
    unsigned count;
    char addr[ADDR_MAX];
};

struct server_ipcount {
    struct entry *buckets[BUCKETS];
};

static size_t bucket_of(const char *addr)
{
    return (size_t)base_fnv1a_str(BASE_FNV1A_OFFSET, addr) & (BUCKETS - 1);
}

struct server_ipcount *server_ipcount_new(void)
{
    return calloc(1, sizeof(struct server_ipcount));
}

void server_ipcount_free(struct server_ipcount *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < BUCKETS; i++) {
        struct entry *e = t->buckets[i];
        while (e) {
            struct entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(t);
}

bool server_ipcount_add(struct server_ipcount *t, const char *addr, unsigned limit)
{
    size_t len = strlen(addr);
    if (len >= ADDR_MAX)
        return false;
    struct entry **head = &t->buckets[bucket_of(addr)];
    for (struct entry *e = *head; e; e = e->next) {
        if (strcmp(e->addr, addr) == 0) {
            if (e->count >= limit)
                return false;
            e->count++;
            return true;
        }
    }
    if (limit == 0)
        return false;
    struct entry *e = calloc(1, sizeof *e);
    if (!e)
        return false;
    memcpy(e->addr, addr, len + 1);
    e->count = 1;
    e->next = *head;
    *head = e;
    return true;
}

void server_ipcount_remove(struct server_ipcount *t, const char *addr)
{
    struct entry **link = &t->buckets[bucket_of(addr)];
    for (struct entry *e = *link; e; link = &e->next, e = e->next) {
        if (strcmp(e->addr, addr) == 0) {
            if (--e->count == 0) {
                *link = e->next;
                free(e);
            }
            return;
        }
    }
}
