/* net/tls_resume.h — TLS session resumption for outbound connections: a client context keeps
 * the last session each destination gave it (a TLS 1.3 ticket, RFC 8446 §4.6.1, or a TLS 1.2
 * session, RFC 5077 / RFC 5246 §7.4.1.2) and offers it on the next connection to the same
 * destination, which then skips the certificate exchange and the server's signature. A server
 * that refuses the offer simply does a full handshake. Bounded (NET_TLS_RESUME_DESTINATIONS,
 * the least recently used destination goes first) and expiring (the server's ticket lifetime,
 * at most NET_TLS_RESUME_MAX_AGE_S). One event-loop thread uses a context's cache. */
#ifndef CLEARMTA_NET_TLS_RESUME_H
#define CLEARMTA_NET_TLS_RESUME_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

/* Destinations remembered per context (a session holds the peer's certificate: a few KiB). */
#define NET_TLS_RESUME_DESTINATIONS 1024u
/* A session is offered at most this long after it was received. */
#define NET_TLS_RESUME_MAX_AGE_S 3600u
/* The longest destination key kept; longer ones are never cached. */
#define NET_TLS_RESUME_KEY_MAX 400u

/* Gives client context ctx a session cache, freed with ctx. Sessions are kept apart per
 * context, so a session from a context that does not verify certificates is never offered by
 * one that does. False when out of memory (ctx then works without resumption). */
bool net_tls_resume_enable(SSL_CTX *ctx);

/* Before the handshake of ssl (made from an enabled context): names its destination — the
 * server name checked or sent as SNI, its address and port — so the session it receives is
 * kept under that key, and offers the session kept for that key if it has not expired. True
 * when a session was offered. Without an enabled context, or with a key longer than
 * NET_TLS_RESUME_KEY_MAX, nothing is offered or kept. */
bool net_tls_resume_offer(SSL *ssl, const char *destination);

/* The destination key of a connected socket: "NAME [ADDRESS]:PORT" (NAME "" when the server
 * has none). False when the peer's address cannot be read or the key does not fit in cap. */
bool net_tls_resume_destination(int fd, const char *name, char *out, size_t cap);

/* Destinations with a session kept by ctx (0 when not enabled). For tests and metrics. */
size_t net_tls_resume_count(SSL_CTX *ctx);

#endif
