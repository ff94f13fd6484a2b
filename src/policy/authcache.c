/* policy/authcache.c — successful password verifications remembered for a few minutes, under
 * keyed hashes (HMAC-SHA256, a per-process random key) of name, password and stored hash; a
 * base/lru.h table behind a mutex. */
#include "policy/authcache.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/lru.h"

#define MAC_BYTES 32u /* SHA-256 */

struct policy_authcache {
    pthread_mutex_t lock;
    struct base_lru *table; /* key: the MAC; value: uint64_t expiry (monotonic ms) */
    const struct policy_users *users; /* the table the entries were verified against */
    EVP_MAC *hmac;
    unsigned char key[32];
};

struct policy_authcache *policy_authcache_new(void)
{
    struct policy_authcache *c = calloc(1, sizeof *c);
    if (c == NULL || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return NULL;
    }
    c->table = base_lru_new(POLICY_AUTHCACHE_ENTRIES, sizeof(uint64_t));
    c->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (c->table == NULL || c->hmac == NULL ||
        getrandom(c->key, sizeof c->key, 0) != (ssize_t)sizeof c->key) {
        policy_authcache_free(c);
        return NULL;
    }
    return c;
}

void policy_authcache_free(struct policy_authcache *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->lock);
    base_lru_free(c->table);
    EVP_MAC_free(c->hmac);
    explicit_bzero(c, sizeof *c);
    free(c);
}

/* The entry's key for user/pass; false when the user is unknown (nothing to cache) or the
 * MAC failed. Each field is preceded by its length, so no two triples share an input. */
static bool mac_of(const struct policy_authcache *c, const struct policy_users *users,
                   const char *user, const char *pass, unsigned char out[MAC_BYTES])
{
    const char *name = policy_users_name(users, user);
    const char *hash = policy_users_hash(users, user);
    if (name == NULL || hash == NULL)
        return false;
    const char *fields[3] = {name, pass, hash};
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(c->hmac);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                           OSSL_PARAM_construct_end()};
    bool ok = ctx && EVP_MAC_init(ctx, c->key, sizeof c->key, params) == 1;
    for (size_t i = 0; ok && i < 3; i++) {
        uint64_t len = strlen(fields[i]);
        ok = EVP_MAC_update(ctx, (const unsigned char *)&len, sizeof len) == 1 &&
             EVP_MAC_update(ctx, (const unsigned char *)fields[i], len) == 1;
    }
    size_t outlen = 0;
    ok = ok && EVP_MAC_final(ctx, out, &outlen, MAC_BYTES) == 1 && outlen == MAC_BYTES;
    EVP_MAC_CTX_free(ctx); /* wipes its copy of the state */
    return ok;
}

/* With the lock held: entries verified against another users table are forgotten. */
static void follow_users(struct policy_authcache *c, const struct policy_users *users)
{
    if (c->users == users)
        return;
    while (base_lru_count(c->table) > 0)
        base_lru_drop_oldest(c->table);
    c->users = users;
}

bool policy_authcache_hit(struct policy_authcache *c, const struct policy_users *users,
                          const char *user, const char *pass, uint64_t now_ms)
{
    unsigned char mac[MAC_BYTES];
    if (!mac_of(c, users, user, pass, mac))
        return false;
    bool hit = false;
    pthread_mutex_lock(&c->lock);
    follow_users(c, users);
    uint64_t *expiry = base_lru_get(c->table, mac, sizeof mac);
    if (expiry != NULL && now_ms < *expiry)
        hit = true;
    else if (expiry != NULL)
        base_lru_remove(c->table, mac, sizeof mac);
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void policy_authcache_store(struct policy_authcache *c, const struct policy_users *users,
                            const char *user, const char *pass, uint64_t now_ms)
{
    unsigned char mac[MAC_BYTES];
    if (!mac_of(c, users, user, pass, mac))
        return;
    pthread_mutex_lock(&c->lock);
    follow_users(c, users);
    void *value;
    if (base_lru_put(c->table, mac, sizeof mac, &value, NULL) == BASE_OK) {
        uint64_t expiry = now_ms + POLICY_AUTHCACHE_TTL_MS;
        memcpy(value, &expiry, sizeof expiry);
    }
    pthread_mutex_unlock(&c->lock);
}

size_t policy_authcache_count(struct policy_authcache *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = base_lru_count(c->table);
    pthread_mutex_unlock(&c->lock);
    return n;
}
