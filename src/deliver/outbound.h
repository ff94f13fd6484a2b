/* deliver/outbound.h — one outbound SMTP connection on the event loop: non-blocking connect,
 * the client session's bytes over TCP or TLS (STARTTLS, RFC 3207), timeouts (RFC 5321
 * §4.5.3.2), closing. The delivery agent decides; this file only moves bytes. */
#ifndef CLEARMTA_DELIVER_OUTBOUND_H
#define CLEARMTA_DELIVER_OUTBOUND_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "smtp/client_session.h"

struct event_base;
struct deliver_outbound;

struct deliver_outbound_cfg {
    struct event_base *base;
    SSL_CTX *tls;            /* client context for STARTTLS; NULL: STARTTLS fails */
    /* The server's host name: sent as SNI (unless numeric), and with a verifying context the
     * name the certificate must be valid for. NULL: none. */
    const char *host;
    unsigned connect_timeout_s, command_timeout_s, data_timeout_s;
};

/* A client TLS context, TLS 1.2 or later. verify false: no certificate check (RFC 7435:
 * opportunistic security, and "required" without verification). verify true: the chain must
 * lead to the system's trust store and the certificate must be valid for cfg.host (a
 * connection without a host then fails). NULL with the reason in err. */
SSL_CTX *deliver_outbound_tls_context(bool verify, char *err, size_t errlen);

/* Connects to sa (TCP, or AF_UNIX for an LMTP server's socket) and runs a client session with
 * opts and cb (called with ctx; the start_tls callback is handled here). finished(ctx) is
 * called once, from the loop, after the session reported closed() and the socket is closed:
 * the caller may then free the connection. NULL when out of memory or the socket cannot be
 * created (err says why). */
struct deliver_outbound *deliver_outbound_open(const struct deliver_outbound_cfg *cfg,
                                               const struct sockaddr *sa, socklen_t salen,
                                               const struct smtp_client_opts *opts,
                                               const struct smtp_client_callbacks *cb,
                                               void (*finished)(void *ctx), void *ctx,
                                               char *err, size_t errlen);

/* Hands the connection (between messages) to a new owner: cb and finished(ctx) from now on
 * (the start_tls callback stays handled here). */
void deliver_outbound_set_owner(struct deliver_outbound *o, const struct smtp_client_callbacks *cb,
                                void (*finished)(void *ctx), void *ctx);

/* Sends what the session has to send, from the loop: for a command given to the session
 * outside its callbacks (a message on an idle connection, QUIT when it has idled too long). */
void deliver_outbound_wake(struct deliver_outbound *o);

/* The session, for smtp_client_send() and smtp_client_quit() from the callbacks. */
struct smtp_client *deliver_outbound_session(struct deliver_outbound *o);

/* Why the connection failed without a reply (connect refused, timeout, TLS), "" otherwise. */
const char *deliver_outbound_error(const struct deliver_outbound *o);

/* True when the session ended before it was ready because no connection was made. */
bool deliver_outbound_connect_failed(const struct deliver_outbound *o);

/* True when the TLS handshake failed because the server's certificate did not verify;
 * deliver_outbound_error() then holds "TLS certificate verification failed for HOST: why". */
bool deliver_outbound_verify_failed(const struct deliver_outbound *o);

/* Closes everything without callbacks. NULL is fine. */
void deliver_outbound_free(struct deliver_outbound *o);

#endif
