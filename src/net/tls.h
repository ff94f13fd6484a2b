/* net/tls.h — the server's TLS context (OpenSSL 3): the configured certificate, or a
 * self-signed one generated into the data directory at first start; TLS 1.2 minimum.
 * RFC 3207 (STARTTLS), RFC 8314 (implicit TLS). */
#ifndef CLEARMTA_NET_TLS_H
#define CLEARMTA_NET_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

/* Builds the context from cert_path/key_path, or, when both are "", from
 * <data_dir>/tls/{cert,key}.pem, generating them for hostname if missing. NULL with a one-line
 * reason in err on failure. */
SSL_CTX *net_tls_context(const char *cert_path, const char *key_path, const char *data_dir,
                         const char *hostname, char *err, size_t errlen);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384 256 bits" for the log. */
void net_tls_describe(const SSL *ssl, char *out, size_t cap);

/* The last OpenSSL error as text (and the queue cleared). */
void net_tls_error(char *out, size_t cap);

#endif
