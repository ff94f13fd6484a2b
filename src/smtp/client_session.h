/* smtp/client_session.h — the sans-I/O SMTP client session, mirror of the server session: fed
 * the server's bytes, it produces the bytes to send and reports every reply it gets, so the
 * delivery agent can act on each one. RFC 5321, RFC 1869 EHLO (HELO fallback on 500/502),
 * RFC 2920 PIPELINING, RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 3461 DSN,
 * RFC 3207 STARTTLS, RFC 4954 AUTH PLAIN/LOGIN, RFC 2033 LMTP, RFC 3030 CHUNKING. It never touches a socket, a
 * file or the clock: the caller owns timeouts (RFC 5321 §4.5.3.2) and calls
 * smtp_client_timeout(). */
#ifndef CLEARMTA_SMTP_CLIENT_SESSION_H
#define CLEARMTA_SMTP_CLIENT_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reply/reply.h"
#include "smtp/ehlo.h" /* struct smtp_client_caps: what the server offered in its EHLO reply */

struct smtp_client;

enum smtp_client_tls { SMTP_CLIENT_TLS_NONE, SMTP_CLIENT_TLS_OPPORTUNISTIC, SMTP_CLIENT_TLS_REQUIRED };

struct smtp_client_opts {
    const char *helo_name;     /* our name in EHLO/HELO */
    enum smtp_client_tls tls;  /* STARTTLS policy */
    bool tls_active;           /* the connection is already TLS (implicit TLS, smtps) */
    const char *auth_user;     /* AUTH PLAIN (or LOGIN) after EHLO when set; NULL: no AUTH */
    const char *auth_pass;
    unsigned max_rcpts;        /* recipients per transaction (0: no limit of ours) */
    bool lmtp;                 /* speak LMTP (RFC 2033): LHLO, no HELO fallback, and one reply
                                * per accepted recipient after the message data */
};

/* One recipient of a message to send. */
struct smtp_client_rcpt {
    const char *address;
    unsigned notify;   /* SMTP_NOTIFY_* bits (command.h), 0: none */
    const char *orcpt; /* "rfc822;…" or NULL */
};

/* A message to send: envelope and the message bytes as stored (CRLF lines, not dot-stuffed:
 * the session stuffs them, and sends a bare CR or LF as CRLF). The caller keeps everything
 * alive until the message's outcome. */
struct smtp_client_message {
    const char *sender; /* "" for <> */
    const struct smtp_client_rcpt *rcpts;
    size_t n_rcpts;
    bool eightbit;     /* BODY=8BITMIME wanted (a peer without 8BITMIME gets the body anyway) */
    bool smtputf8;     /* SMTPUTF8 needed (UTF-8 header; a non-ASCII address implies it) */
    int ret;           /* 0 none, 1 FULL, 2 HDRS */
    const char *envid; /* or NULL */
    const char *body;
    size_t body_len;
};

/* Why a step failed without a reply from the server, or why a message was not attempted. */
#define SMTP_CLIENT_FAILURES(X)                                                                  \
    X(SMTP_CLIENT_REPLY, "the server replied")               /* see the reply */                  \
    X(SMTP_CLIENT_PROTOCOL, "malformed or out-of-sequence reply from the server") /* transient */ \
    X(SMTP_CLIENT_TLS_UNAVAILABLE, "TLS required but not offered")                                \
    X(SMTP_CLIENT_AUTH_UNAVAILABLE, "AUTH wanted but not offered, no shared mechanism, or no TLS") \
    X(SMTP_CLIENT_TOO_BIG, "message larger than the server's SIZE: not sent")   /* 5.3.4 */       \
    X(SMTP_CLIENT_NEEDS_SMTPUTF8, "SMTPUTF8 needed, not offered: not sent")     /* 5.6.7 */       \
    X(SMTP_CLIENT_NO_RECIPIENTS, "every recipient was refused: no message data sent")             \
    X(SMTP_CLIENT_BAD_ENVELOPE, "address or parameter unfit for a command line: not sent")        \
    X(SMTP_CLIENT_TIMEOUT, "the caller's timer fired")                                            \
    X(SMTP_CLIENT_CLOSED, "the connection dropped (or the session ran out of memory)")

enum smtp_client_failure {
#define X(name, text) name,
    SMTP_CLIENT_FAILURES(X)
#undef X
};

/* Never NULL; "unknown client failure" for a value outside the enum. */
const char *smtp_client_strerror(enum smtp_client_failure f);

/* The outcome of a step: the failure kind and, when a reply came, the parsed reply. The reply
 * belongs to the session and is valid only during the callback that receives it. */
struct smtp_client_result {
    enum smtp_client_failure failure;
    const struct reply_parsed *reply; /* NULL unless failure == SMTP_CLIENT_REPLY */
};

/* Callbacks may call smtp_client_send(), _quit(), _tls_started(), _timeout() and
 * _connection_lost(), never smtp_client_free(); trace may call none of them. Each may be NULL. */
struct smtp_client_callbacks {
    /* EHLO (and STARTTLS, AUTH) done: the session is ready for a message. Call
     * smtp_client_send() now or later, or smtp_client_quit(). Called once per session. */
    void (*ready)(void *ctx, const struct smtp_client_caps *caps);
    /* STARTTLS got its 220: run the handshake, then call smtp_client_tls_started(). Bytes the
     * server sent after the 220 are dropped: they were not protected (CVE-2011-0411). */
    void (*start_tls)(void *ctx);
    /* The outcome of RCPT i of the current message (index into message->rcpts): the server's
     * reply, or SMTP_CLIENT_BAD_ENVELOPE for a recipient that cannot be put on a command line
     * (control characters, too long), never sent. Not called for recipients whose reply did not
     * come (MAIL refused, 421, connection lost) nor for those from a "too many recipients" 452
     * on (see n_tried). */
    void (*rcpt_result)(void *ctx, size_t i, const struct smtp_client_result *r);
    /* The current message is done: its MAIL/DATA outcome (the final reply after the message
     * data, the failing MAIL/DATA reply, or a failure kind: NO_RECIPIENTS when every recipient
     * was refused, TOO_BIG / NEEDS_SMTPUTF8 / BAD_ENVELOPE (sender or ENVID) when nothing was
     * sent, PROTOCOL / TIMEOUT / CLOSED). Called once per smtp_client_send(), after the session
     * is ready for the next one. Each recipient in [first, n_tried) has as outcome its
     * rcpt_result if that was not a 2xx, else this result. n_tried is an index into
     * message->rcpts, one past the last recipient this transaction covered: when it is less
     * than n_rcpts (max_rcpts, RCPTMAX, or 452 4.5.3 "too many recipients"), the caller sends
     * the rest in a further transaction with smtp_client_send(msg, n_tried). */
    void (*message_result)(void *ctx, const struct smtp_client_result *r, size_t n_tried);
    /* LMTP only (RFC 2033 §4.2): the reply after the message data for recipient i, one per
     * recipient whose RCPT got a 2xx, in RCPT order, before message_result. It is that
     * recipient's outcome (a 2xx: delivered). The message_result that follows carries the last
     * 2xx of these replies if any, else the last of them; or, when they stop short (421, lost
     * connection, timeout), that failure, the outcome of the recipients still without one. */
    void (*data_rcpt_result)(void *ctx, size_t i, const struct smtp_client_result *r);
    /* The session ended, reported once: before ready (greeting refused, EHLO/HELO/STARTTLS/AUTH
     * failed) with why, after QUIT with the reply to QUIT, or at any time on a 421, a malformed
     * reply, a timeout or a lost connection. */
    void (*closed)(void *ctx, const struct smtp_client_result *why);
    /* Each change of the session's state, for transcripts and debugging: one line "state OLD
     * -> NEW" (NUL-ended, valid during the call) with the names of the states in
     * client_session.c: GREETING, EHLO, HELO, STARTTLS, TLS, AUTH, READY, TRANSACTION, BODY,
     * DATA_END, RSET, QUIT, DONE. Called just after the change, before the callbacks the same
     * step makes (ready, message_result, closed …), in the middle of that step. */
    void (*trace)(void *ctx, const char *line);
};

/* A new session waiting for the greeting. opts is copied, its strings are not: they must
 * outlive the session. NULL when out of memory or when opts cannot be used: helo_name missing,
 * longer than LIMIT_DOMAIN + 2 or holding a byte outside printable ASCII or a space; auth_user
 * without auth_pass, or either longer than the SASL fields of smtp/sasl.h. */
struct smtp_client *smtp_client_new(const struct smtp_client_opts *opts,
                                    const struct smtp_client_callbacks *cb, void *ctx);
void smtp_client_free(struct smtp_client *c);

/* Server bytes in; replies are parsed with reply_parse() and acted on. Ignored once done. */
void smtp_client_feed(struct smtp_client *c, const char *data, size_t len);

/* Bytes to write, and how many were written. Message data is produced as the output drains
 * (64 KiB at a time), so the buffer stays bounded whatever the message size. */
const char *smtp_client_output(struct smtp_client *c, size_t *len);
void smtp_client_consume_output(struct smtp_client *c, size_t n);

/* Starts a transaction for msg (after ready or after the previous message_result).
 * first: the index of the first recipient to cover (a follow-up transaction after a partial
 * one). Uses PIPELINING when offered, and BDAT instead of DATA when CHUNKING is (not over
 * LMTP). A message the server cannot take (SIZE, SMTPUTF8) or whose sender/ENVID cannot be
 * sent gets its message_result at once with n_tried = n_rcpts; so does every message once the session is done (SMTP_CLIENT_CLOSED). Ignored while another
 * transaction, or the opening (greeting … AUTH), is in progress. */
void smtp_client_send(struct smtp_client *c, const struct smtp_client_message *msg, size_t first);

/* The TLS handshake after STARTTLS succeeded: EHLO again (RFC 3207 §4.2). */
void smtp_client_tls_started(struct smtp_client *c);
/* Sends QUIT when the session is ready (no transaction); ignored otherwise. */
void smtp_client_quit(struct smtp_client *c);
/* The caller's timer fired / the connection dropped: whatever is in progress fails with
 * SMTP_CLIENT_TIMEOUT / SMTP_CLIENT_CLOSED, then closed(). */
void smtp_client_timeout(struct smtp_client *c);
void smtp_client_connection_lost(struct smtp_client *c);

/* True after closed() was reported: the caller closes the socket once output is flushed. */
bool smtp_client_done(const struct smtp_client *c);

/* True while waiting for message data's final reply, after DATA or the LAST BDAT chunk (the
 * caller uses the 10-minute timeout of RFC 5321 §4.5.3.2.6 instead of the command timeout). */
bool smtp_client_awaiting_data_end(const struct smtp_client *c);

#endif
