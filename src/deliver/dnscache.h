/* deliver/dnscache.h — a small cache of DNS answers as text for mail authentication (SPF,
 * DKIM keys, DMARC records): each answer kept for its TTL (RFC 2181 §8; negative answers per
 * RFC 2308), at most a fixed number of answers, the least recently used forgotten first. */
#ifndef CLEARMTA_DELIVER_DNSCACHE_H
#define CLEARMTA_DELIVER_DNSCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/dns.h"

/* An answer is kept at most this long whatever its TTL says, and one larger than
 * DELIVER_DNSCACHE_ANSWER_MAX octets of records is not kept at all. */
#define DELIVER_DNSCACHE_TTL_MAX 3600u
#define DELIVER_DNSCACHE_ANSWER_MAX 16384u
#define DELIVER_DNSCACHE_RECORDS_MAX 32u

struct deliver_dnscache;

/* A cache of at most max_entries answers (>= 1). NULL when out of memory. */
struct deliver_dnscache *deliver_dnscache_new(size_t max_entries);
void deliver_dnscache_free(struct deliver_dnscache *c); /* NULL is fine */

/* A cached answer: records point into the cache, valid until the next put or free. */
struct deliver_dnscache_answer {
    enum auth_dns_status status;
    size_t n;
    const char *records[DELIVER_DNSCACHE_RECORDS_MAX];
    size_t lens[DELIVER_DNSCACHE_RECORDS_MAX];
};

/* The answer for name (case-insensitive) and type, when one is kept and has not expired at
 * now (seconds, any monotonic clock); an expired one is forgotten. */
bool deliver_dnscache_get(struct deliver_dnscache *c, const char *name, int type, int64_t now,
                          struct deliver_dnscache_answer *out);

/* Keeps an answer for ttl seconds from now (capped at DELIVER_DNSCACHE_TTL_MAX). Failures
 * for now (TEMPFAIL), ttl 0 and answers too large are not kept; out of memory keeps nothing. */
void deliver_dnscache_put(struct deliver_dnscache *c, const char *name, int type, int64_t now,
                          uint32_t ttl, enum auth_dns_status status, const char *const *records,
                          const size_t *lens, size_t n);

size_t deliver_dnscache_count(const struct deliver_dnscache *c);

#endif
