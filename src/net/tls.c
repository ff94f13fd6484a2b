/* net/tls.c — the TLS server context: its settings, the configured certificate or the
 * self-signed pair of a fresh install (net/tls_pair.c). */
#include <openssl/err.h>
#include <stdio.h>
#include <unistd.h>

#include "net/tls.h"
#include "net/tls_pair.h"

void net_tls_error(char *out, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(out, cap, "unknown TLS error");
    else
        ERR_error_string_n(e, out, cap);
    ERR_clear_error();
}

void net_tls_describe(const SSL *ssl, char *out, size_t cap)
{
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    int bits = c ? SSL_CIPHER_get_bits(c, NULL) : 0;
    snprintf(out, cap, "%s %s %d bits", SSL_get_version(ssl), c ? SSL_CIPHER_get_name(c) : "-",
             bits);
}

SSL_CTX *net_tls_context(const char *cert_path, const char *key_path, const char *data_dir,
                         const char *hostname, const struct net_tls_owner *owner, char *err,
                         size_t errlen)
{
    err[0] = '\0';
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        net_tls_error(err, errlen);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    /* TLS 1.2: forward-secret AEAD suites only; TLS 1.3 suites are OpenSSL's defaults. */
    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL:!MD5:!DSS");
    /* Idle TLS connections give back their 34 KiB of record buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Key exchange: X25519 first (the cheapest, and what clients send a key share for), then
     * the NIST curves; the same set as OpenSSL's default, stated here. */
    if (SSL_CTX_set1_groups_list(ctx, "X25519:P-256:X448:P-521:P-384") != 1) {
        net_tls_error(err, errlen);
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* No resumption: with an EC key a resumed handshake saves only the signature (about
     * 0.03 ms; the key exchange is done either way), and tickets would need a ticket key that
     * lives as long as the process. Submission clients rarely resume across connections. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    struct net_tls_owner self = {.uid = geteuid(), .gid = getegid(), .give = false};
    if (cert_path[0] == '\0') {
        if (!net_tls_pair_use(ctx, data_dir, hostname, owner ? owner : &self, err, errlen)) {
            SSL_CTX_free(ctx);
            return NULL;
        }
    } else if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1 ||
               SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1 ||
               SSL_CTX_check_private_key(ctx) != 1) {
        char why[256];
        net_tls_error(why, sizeof why);
        snprintf(err, errlen, "certificate %s / key %s: %s", cert_path, key_path, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}
