/* deliver/dnscache.c — the answers of mail authentication look-ups kept for their TTL in a
 * bounded LRU table (base/lru.c); each value points to one allocation holding the records. */
#include "deliver/dnscache.h"

#include <stdlib.h>
#include <string.h>

#include "base/lru.h"
#include "limits_mta.h"

/* One kept answer: the records one after another in text[]. */
struct kept {
    int64_t expires;
    enum auth_dns_status status;
    size_t n;
    size_t lens[DELIVER_DNSCACHE_RECORDS_MAX];
    char text[];
};

struct deliver_dnscache {
    struct base_lru *table; /* key: type octet + lower-case name; value: struct kept * */
    size_t max_entries;
};

struct deliver_dnscache *deliver_dnscache_new(size_t max_entries)
{
    struct deliver_dnscache *c = calloc(1, sizeof *c);
    if (c == NULL || (c->table = base_lru_new(max_entries, sizeof(struct kept *))) == NULL) {
        free(c);
        return NULL;
    }
    c->max_entries = max_entries;
    return c;
}

void deliver_dnscache_free(struct deliver_dnscache *c)
{
    if (c == NULL)
        return;
    for (struct kept **k; (k = base_lru_oldest(c->table)) != NULL;) {
        free(*k);
        base_lru_drop_oldest(c->table);
    }
    base_lru_free(c->table);
    free(c);
}

/* The key of name and type; 0 when the name is too long to be a DNS name. */
static size_t make_key(char *key, size_t cap, const char *name, int type)
{
    size_t n = strlen(name);
    if (n + 1 > cap)
        return 0;
    key[0] = (char)(unsigned char)type;
    for (size_t i = 0; i < n; i++)
        key[i + 1] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] + 32) : name[i];
    return n + 1;
}

bool deliver_dnscache_get(struct deliver_dnscache *c, const char *name, int type, int64_t now,
                          struct deliver_dnscache_answer *out)
{
    char key[LIMIT_DOMAIN + 2];
    size_t klen = make_key(key, sizeof key, name, type);
    struct kept **v = klen ? base_lru_get(c->table, key, klen) : NULL;
    if (v == NULL)
        return false;
    struct kept *k = *v;
    if (now >= k->expires) {
        free(k);
        base_lru_remove(c->table, key, klen);
        return false;
    }
    out->status = k->status;
    out->n = k->n;
    const char *p = k->text;
    for (size_t i = 0; i < k->n; i++) {
        out->records[i] = p;
        out->lens[i] = k->lens[i];
        p += k->lens[i] + 1;
    }
    return true;
}

void deliver_dnscache_put(struct deliver_dnscache *c, const char *name, int type, int64_t now,
                          uint32_t ttl, enum auth_dns_status status, const char *const *records,
                          const size_t *lens, size_t n)
{
    char key[LIMIT_DOMAIN + 2];
    size_t klen = make_key(key, sizeof key, name, type), total = 0;
    if (klen == 0 || ttl == 0 || status == AUTH_DNS_TEMPFAIL || n > DELIVER_DNSCACHE_RECORDS_MAX)
        return;
    for (size_t i = 0; i < n; i++) {
        total += lens[i] + 1;
        if (total > DELIVER_DNSCACHE_ANSWER_MAX)
            return;
    }
    struct kept *k = malloc(sizeof *k + total + 1);
    if (k == NULL)
        return;
    k->expires = now + (ttl < DELIVER_DNSCACHE_TTL_MAX ? ttl : DELIVER_DNSCACHE_TTL_MAX);
    k->status = status;
    k->n = n;
    char *p = k->text;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, records[i], lens[i]);
        p[lens[i]] = '\0';
        k->lens[i] = lens[i];
        p += lens[i] + 1;
    }
    struct kept **old = base_lru_peek(c->table, key, klen);
    if (old != NULL) {
        free(*old);
        base_lru_remove(c->table, key, klen);
    }
    if (base_lru_count(c->table) >= c->max_entries) { /* the oldest goes: its answer first */
        struct kept **oldest = base_lru_oldest(c->table);
        free(*oldest);
        base_lru_drop_oldest(c->table);
    }
    struct kept **slot = NULL;
    if (base_lru_put(c->table, key, klen, (void **)&slot, NULL) != BASE_OK) {
        free(k);
        return;
    }
    *slot = k;
}

size_t deliver_dnscache_count(const struct deliver_dnscache *c)
{
    return base_lru_count(c->table);
}
