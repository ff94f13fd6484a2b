/* smtp/server_session.h — the sans-I/O SMTP server session: fed bytes, it produces reply bytes
 * and asks its caller, through callbacks, to decide on senders and recipients and to store
 * the message. It never touches a socket, a file or the clock. RFC 5321, RFC 1869/5321 EHLO,
 * RFC 2920 PIPELINING, RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 2034 ENHANCEDSTATUSCODES,
 * RFC 6531 SMTPUTF8, RFC 3030 CHUNKING, RFC 3461 DSN.
 *
 * Decisions may be asynchronous (a counter in Redis, a group commit): a callback that cannot
 * decide at once returns SMTP_PENDING; the session then stops processing input (keeping what
 * arrives, up to a bound) until the caller calls smtp_server_resume() with the decision. */
#ifndef CLEARMTA_SMTP_SERVER_SESSION_H
#define CLEARMTA_SMTP_SERVER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reply/reply.h"
#include "smtp/command.h"
#include "smtp/sasl.h"

struct smtp_server;

/* When a listener offers AUTH (RFC 4954). */
enum smtp_auth_offer {
    SMTP_AUTH_NEVER,     /* MX: AUTH is refused with 503 5.5.1 */
    SMTP_AUTH_AFTER_TLS, /* submission: offered once TLS is active, else 538 5.7.11 */
    SMTP_AUTH_ALWAYS,    /* offered in plaintext too (explicitly configured) */
};

struct smtp_server_opts {
    const char *hostname;      /* ours, in greeting, EHLO and 421 replies */
    uint64_t max_message_size; /* SIZE advertised and enforced */
    unsigned max_recipients;   /* RCPT beyond this: 452 4.5.3 */
    unsigned max_errors;       /* protocol errors before 421 4.7.0 and close */
    unsigned max_hops;         /* more Received: fields: 554 5.4.6 at the end (0: not counted) */
    /* RCPTs refused 452 4.5.3 in one transaction (past max_recipients, or a caller's own
     * recipient limit) that are no error; each one past them counts toward max_errors. */
    unsigned rcpt_overshoot;
    unsigned ext;              /* SMTP_EXT_* offered in EHLO */
    bool bare_lf_normalize;    /* turn bare CR/LF into CRLF instead of rejecting (550 5.6.0) */
    bool soft_bounce;          /* 5xx → 4xx on every reply (testing a configuration) */
    bool offer_starttls;       /* STARTTLS offered in plaintext sessions (RFC 3207) */
    bool tls_available;        /* the server has a working TLS context */
    enum smtp_auth_offer auth; /* AUTH PLAIN LOGIN offered when */
    bool require_auth;         /* MAIL before AUTH: 530 5.7.0 (submission) */
    /* MAIL after this many accepted messages: 421 4.7.0 and close (0: no limit); advertised
     * with max_recipients in EHLO as LIMITS MAILMAX= RCPTMAX= (RFC 9422). */
    unsigned max_messages_per_session;
};

/* A decision on a MAIL, RCPT, DATA/BDAT start or message end. */
struct smtp_decision {
    enum reply_id reply;          /* the reply to send; its class says accepted or not */
    char detail[LIMIT_PATH + 64]; /* "{}" of the reply row (address, queue id); "" for none */
    char mailbox[LIMIT_PATH + 1]; /* RCPT accepted for local delivery: the mailbox; "" = remote */
};

enum smtp_verdict { SMTP_DECIDED, SMTP_PENDING };

/* Sets d's detail to text, cut to fit. */
void smtp_decision_set_detail(struct smtp_decision *d, const char *text);

/* One accepted recipient of the open transaction. */
struct smtp_rcpt {
    char *address; /* "local@domain" or "postmaster" */
    char *mailbox; /* local mailbox, NULL for a remote recipient */
    unsigned notify;
    char *orcpt; /* NULL when absent */
};

/* The open transaction, valid from MAIL to its end. */
struct smtp_envelope {
    struct smtp_path sender;
    bool has_size;
    uint64_t size;
    enum smtp_body body;
    bool smtputf8;
    enum smtp_ret ret;
    char envid[LIMIT_ENVID + 1];
    /* Accepted recipients, one per final mailbox: a RCPT that names a local mailbox already
     * accepted, or the same remote mailbox (smtp_addr_same_mailbox: domain without case, the
     * local part unquoted), is answered as any other and merged into the first (its NOTIFY
     * joins the first's, the first ORCPT stays), so the message is delivered once. */
    struct smtp_rcpt *rcpts;
    size_t n_rcpts;
    size_t cap_rcpts;
    size_t rcpts_merged;  /* accepted RCPTs merged so (they count toward max_recipients) */
    size_t rcpt_attempts; /* RCPT commands seen, accepted or not */
    size_t rcpts_over_limit; /* RCPTs refused 452 4.5.3 for a recipient limit, not yet reported */
};

struct smtp_server_callbacks {
    /* MAIL FROM, syntax and SIZE already checked. Accept with REPLY_SENDER_OK. */
    enum smtp_verdict (*mail)(void *ctx, const struct smtp_command *cmd, struct smtp_decision *d);
    /* RCPT TO, syntax and recipient count already checked. Accept with REPLY_RCPT_OK, setting
     * d->mailbox for local delivery. */
    enum smtp_verdict (*rcpt)(void *ctx, const struct smtp_command *cmd, struct smtp_decision *d);
    /* The message starts (DATA, or the first BDAT): open storage for the envelope. Accept with
     * REPLY_START_DATA (DATA) or any 2xx/3xx; anything else refuses. */
    enum smtp_verdict (*data_begin)(void *ctx, const struct smtp_envelope *env, struct smtp_decision *d);
    /* Message bytes, unstuffed, in order. Returns REPLY_OK, or the reply that refuses the
     * message at its end because storage failed (451 4.3.0, 452 4.3.1); later bytes are not
     * passed on. */
    enum reply_id (*data_write)(void *ctx, const char *p, size_t n);
    /* The whole message arrived and passed the checks: make it durable. Accept with REPLY_QUEUED
     * and the queue id as detail. */
    enum smtp_verdict (*data_end)(void *ctx, struct smtp_decision *d);
    /* The message is refused after data_begin accepted it: discard what was stored. */
    void (*data_abort)(void *ctx);
    /* AUTH credentials were received (mechanism "PLAIN" or "LOGIN"). Accept with
     * REPLY_AUTH_OK; refuse with REPLY_AUTH_FAILED, REPLY_AUTH_TEMPFAIL or a 421. creds are
     * wiped once the decision is given: copy what a pending decision needs. */
    enum smtp_verdict (*auth)(void *ctx, const char *mechanism, const struct smtp_sasl_creds *creds,
                              struct smtp_decision *d);
    /* Every reply the session sends, for logging (optional). line: the command it answers
     * (NUL-ended, control bytes escaped by reply/safe_text.h, cut at 63 bytes, may be "";
     * SASL responses are never shown). */
    void (*on_reply)(void *ctx, const char *line, enum reply_id id, const char *detail);
    /* The transaction ends (message, RSET, HELO, STARTTLS, the session's close or end) after
     * refused RCPTs with 452 4.5.3 for a recipient limit: one call with their number, so
     * that they make one log line rather than one each (optional). */
    void (*rcpts_over_limit)(void *ctx, size_t refused);
    /* Each change of the session's state, for transcripts and debugging (optional): one line
     * "state OLD -> NEW" (NUL-ended, valid during the call) with the names of the states in
     * server_session.c: NEED_HELO, READY, MAIL, DATA, BDAT, AUTH, TLS. Called just after the
     * change, in the middle of a step: it must not call into the session. */
    void (*trace)(void *ctx, const char *line);
};

/* Creates a session; opts and cb must outlive it. NULL when out of memory. */
struct smtp_server *smtp_server_new(const struct smtp_server_opts *opts,
                                    const struct smtp_server_callbacks *cb, void *ctx);
void smtp_server_free(struct smtp_server *s);

/* Queues the greeting (220). */
void smtp_server_start(struct smtp_server *s);

/* Queues reply id (a 421; detail: the host name) and closes: instead of the greeting (a
 * client over a connection rate), or between commands (over the command rate), dropping the
 * open transaction. */
void smtp_server_refuse(struct smtp_server *s, enum reply_id id);

/* How many more input bytes the session takes now (0: stop reading until it resumes). */
size_t smtp_server_input_room(const struct smtp_server *s);

/* Bytes the session holds now: itself and its input and output buffers (a memory budget). */
size_t smtp_server_memory(const struct smtp_server *s);

/* Feeds bytes from the client (at most input_room). Processes them until they run out, a
 * decision is pending or the session closes. */
void smtp_server_feed(struct smtp_server *s, const char *data, size_t len);

/* Gives the decision a callback left pending, then goes on with buffered input. */
void smtp_server_resume(struct smtp_server *s, const struct smtp_decision *d);
bool smtp_server_pending(const struct smtp_server *s);

/* Reply bytes waiting to be sent: a pointer to them and their length; consume what was sent.
 * Past LIMIT_PENDING_OUTPUT unsent bytes the session takes no more command lines; consuming
 * the last of its output makes it take the lines it held back, so the output may grow again
 * (and callbacks run) inside smtp_server_consume_output(): read the output again after it. */
const char *smtp_server_output(const struct smtp_server *s, size_t *len);
void smtp_server_consume_output(struct smtp_server *s, size_t n);

/* True once the session has said its last word (221, 421): flush the output, then close. */
bool smtp_server_closing(const struct smtp_server *s);

/* True while message data is being received (the caller uses the data timeout). */
bool smtp_server_in_data(const struct smtp_server *s);

/* The client was silent too long: 421 4.4.2 and close. */
void smtp_server_timeout(struct smtp_server *s);

/* The server is shutting down: an idle session gets 421 4.3.2 now; a session inside a
 * transaction finishes it, and its next command gets 421 4.3.2. */
void smtp_server_shutdown(struct smtp_server *s);

/* STARTTLS was accepted: once the output is flushed the caller runs the TLS handshake and
 * then calls smtp_server_tls_started(). Input is not taken meanwhile, and whatever the client
 * sent after STARTTLS in plaintext has been discarded (RFC 3207 §4.2, CVE-2011-0411). */
bool smtp_server_wants_tls(const struct smtp_server *s);

/* TLS is up (after STARTTLS, or from the start on an implicit-TLS listener): the session
 * returns to its state after the greeting, forgetting HELO/EHLO and any transaction. */
void smtp_server_tls_started(struct smtp_server *s);
bool smtp_server_tls(const struct smtp_server *s);

/* RCPTs accepted in the open transaction, merged duplicates included (0 without one). */
size_t smtp_server_rcpt_count(const struct smtp_server *s);

/* Command lines handled so far (SASL response lines included, message content not): the
 * caller measures the client's command rate with it. */
uint64_t smtp_server_commands(const struct smtp_server *s);

/* The caller's command rate limit: command lines are handled only while smtp_server_commands()
 * is below limit (UINT64_MAX, the default: always); later lines wait in the input buffer
 * (message content is never held). Setting it handles the lines it now allows. */
void smtp_server_set_command_limit(struct smtp_server *s, uint64_t limit);
/* True when input waits because of the command limit. */
bool smtp_server_command_limited(const struct smtp_server *s);

/* The authenticated user, or NULL. */
const char *smtp_server_auth_user(const struct smtp_server *s);

/* The HELO/EHLO name given ("" before it) and whether EHLO was used. */
const char *smtp_server_helo(const struct smtp_server *s);
bool smtp_server_esmtp(const struct smtp_server *s);

#endif
