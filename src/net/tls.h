/* net/tls.h — the server's TLS context (OpenSSL 3): the configured certificate, or a
 * self-signed one generated into the data directory at first start; TLS 1.2 minimum.
 * RFC 3207 (STARTTLS), RFC 8314 (implicit TLS). */
#ifndef CLEARMTA_NET_TLS_H
#define CLEARMTA_NET_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Who the generated pair in <data_dir>/tls belongs to: the directory and its files may belong
 * to root or uid only; give: the server starts as root and will run as uid, so the pair is
 * given to uid:gid (through open descriptors, never by name). */
struct net_tls_owner {
    uid_t uid;
    gid_t gid;
    bool give;
};

/* Builds the context from cert_path/key_path, or, when both are "", from
 * <data_dir>/tls/{cert,key}.pem, generating them for hostname if missing and checking who may
 * have put them there (net/tls_pair.h); owner NULL: the effective user, nothing given. NULL
 * with a one-line reason in err on failure. */
SSL_CTX *net_tls_context(const char *cert_path, const char *key_path, const char *data_dir,
                         const char *hostname, const struct net_tls_owner *owner, char *err,
                         size_t errlen);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384 256 bits" for the log. */
void net_tls_describe(const SSL *ssl, char *out, size_t cap);

/* The last OpenSSL error as text (and the queue cleared). */
void net_tls_error(char *out, size_t cap);

#endif
