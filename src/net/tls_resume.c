/* net/tls_resume.c — client TLS sessions kept per destination (a base/lru.h table hung on the
 * SSL_CTX as ex_data), captured by the new-session callback (TLS 1.3 tickets arrive after the
 * handshake) and offered with SSL_set_session. */
#include "net/tls_resume.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "base/lru.h"

struct kept {
    SSL_SESSION *session; /* one reference, ours */
};

static int ctx_index = -1; /* SSL_CTX ex_data: the table */
static int ssl_index = -1; /* SSL ex_data: the destination key, malloc'd */
static pthread_once_t indexes_once = PTHREAD_ONCE_INIT;

/* Frees every kept session, then the table. */
static void table_free(struct base_lru *t)
{
    for (struct kept *k; (k = base_lru_oldest(t)) != NULL; base_lru_drop_oldest(t))
        SSL_SESSION_free(k->session);
    base_lru_free(t);
}

static void free_table(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                       void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    if (ptr != NULL)
        table_free(ptr);
}

static void free_key(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    OPENSSL_free(ptr);
}

static void make_indexes(void)
{
    ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_table);
    ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_key);
}

/* Still worth offering: resumable, and neither its lifetime nor our maximum age is over. */
static bool fresh(const SSL_SESSION *s)
{
    time_t now = time(NULL), born = (time_t)SSL_SESSION_get_time(s);
    long lifetime = SSL_SESSION_get_timeout(s);
    if (lifetime < 0 || lifetime > (long)NET_TLS_RESUME_MAX_AGE_S)
        lifetime = NET_TLS_RESUME_MAX_AGE_S;
    return SSL_SESSION_is_resumable(s) == 1 && now >= born && now - born < lifetime;
}

/* OpenSSL hands each new session of a connection here; returning 1 keeps its reference. */
static int on_new_session(SSL *ssl, SSL_SESSION *session)
{
    struct base_lru *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);
    const char *key = SSL_get_ex_data(ssl, ssl_index);
    if (t == NULL || key == NULL || !fresh(session))
        return 0;
    size_t len = strlen(key);
    struct kept *k = base_lru_get(t, key, len);
    if (k == NULL && base_lru_count(t) == NET_TLS_RESUME_DESTINATIONS) {
        struct kept *oldest = base_lru_oldest(t); /* put would forget it without freeing */
        SSL_SESSION_free(oldest->session);
        base_lru_drop_oldest(t);
    }
    if (k == NULL && base_lru_put(t, key, len, (void **)&k, NULL) != BASE_OK)
        return 0;
    SSL_SESSION_free(k->session); /* the destination's previous session, if any */
    k->session = session;
    return 1;
}

bool net_tls_resume_enable(SSL_CTX *ctx)
{
    pthread_once(&indexes_once, make_indexes);
    if (ctx_index < 0 || ssl_index < 0)
        return false;
    struct base_lru *t = base_lru_new(NET_TLS_RESUME_DESTINATIONS, sizeof(struct kept));
    if (t == NULL || SSL_CTX_set_ex_data(ctx, ctx_index, t) != 1) {
        base_lru_free(t);
        return false;
    }
    /* Kept by us, keyed by destination: OpenSSL's own client cache is keyed by session id. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    return true;
}

bool net_tls_resume_offer(SSL *ssl, const char *destination)
{
    if (ctx_index < 0)
        return false;
    struct base_lru *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);
    size_t len = strnlen(destination, NET_TLS_RESUME_KEY_MAX + 1);
    if (t == NULL || len > NET_TLS_RESUME_KEY_MAX)
        return false;
    char *key = OPENSSL_strndup(destination, len);
    if (key == NULL || SSL_set_ex_data(ssl, ssl_index, key) != 1) {
        OPENSSL_free(key);
        return false;
    }
    struct kept *k = base_lru_get(t, destination, len);
    if (k == NULL)
        return false;
    if (!fresh(k->session)) {
        SSL_SESSION_free(k->session);
        base_lru_remove(t, destination, len);
        return false;
    }
    return SSL_set_session(ssl, k->session) == 1;
}

bool net_tls_resume_destination(int fd, const char *name, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char addr[INET6_ADDRSTRLEN];
    unsigned port;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return false;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
        port = ntohs(sin->sin_port);
        if (!inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof addr))
            return false;
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
        port = ntohs(sin6->sin6_port);
        if (!inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof addr))
            return false;
    } else {
        return false;
    }
    int n = snprintf(out, cap, "%s [%s]:%u", name, addr, port);
    return n >= 0 && (size_t)n < cap;
}

size_t net_tls_resume_count(SSL_CTX *ctx)
{
    struct base_lru *t = ctx_index < 0 ? NULL : SSL_CTX_get_ex_data(ctx, ctx_index);
    return t != NULL ? base_lru_count(t) : 0;
}
