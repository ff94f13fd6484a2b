/* policy/authcache.h — a short-lived cache of successful password verifications, so a client
 * that logs in again and again (one message per connection) pays crypt(3)'s milliseconds once
 * per POLICY_AUTHCACHE_TTL_MS, as Dovecot's auth cache does. Failures are never cached.
 *
 * What is kept is no password: each entry's key is HMAC-SHA256 under a random key drawn when
 * the cache is made (never written anywhere) of the user's name as stored, the password, and
 * the user's stored hash. So a changed password in the users file (a new hash) misses at once,
 * and a removed user too; and a new users table (the file reloaded) empties the cache. Bounded
 * (POLICY_AUTHCACHE_ENTRIES, the least recently used goes first). Thread-safe: the password
 * checking workers share one. */
#ifndef CLEARMTA_POLICY_AUTHCACHE_H
#define CLEARMTA_POLICY_AUTHCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "policy/users.h"

/* Entries kept: one per user and password verified within the TTL (about 100 bytes each). */
#define POLICY_AUTHCACHE_ENTRIES 4096u
/* A success is trusted this long; then the next login costs a crypt again. */
#define POLICY_AUTHCACHE_TTL_MS (300u * 1000u)

struct policy_authcache;

/* NULL when out of memory or no random key could be drawn. */
struct policy_authcache *policy_authcache_new(void);

/* Wipes and frees. Safe on NULL. */
void policy_authcache_free(struct policy_authcache *c);

/* True when user/pass verified OK against users (this same table, the user's hash unchanged)
 * less than POLICY_AUTHCACHE_TTL_MS before now_ms (a monotonic clock). A users table other
 * than the one of the entries empties the cache first. */
bool policy_authcache_hit(struct policy_authcache *c, const struct policy_users *users,
                          const char *user, const char *pass, uint64_t now_ms);

/* Remembers that user/pass verified OK against users at now_ms. Call it only after
 * policy_users_verify returned POLICY_AUTH_OK. Out of memory: nothing remembered. */
void policy_authcache_store(struct policy_authcache *c, const struct policy_users *users,
                            const char *user, const char *pass, uint64_t now_ms);

/* Entries held now (for tests). */
size_t policy_authcache_count(struct policy_authcache *c);

#endif
