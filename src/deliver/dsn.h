/* deliver/dsn.h — delivery status notifications: the multipart/report a sender gets when its
 * message failed, is delayed, or (when asked) was delivered, with a plain-words explanation per
 * recipient. RFC 3464, RFC 3461 §4 and §6, RFC 6522, RFC 3463, RFC 3834, RFC 6533. Pure. */
#ifndef CLEARMTA_DELIVER_DSN_H
#define CLEARMTA_DELIVER_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reply/reply.h"

#define DELIVER_DSN_ERRORS(X)                                                              \
    X(DELIVER_DSN_OK, "ok")                                                                \
    X(DELIVER_DSN_ERR_INVALID,                                                             \
      "bad report input: reporting MTA or queue id missing or malformed, or no sender")    \
    X(DELIVER_DSN_ERR_NULL_SENDER,                                                         \
      "the message has the null sender <>: no report is ever sent for it")                \
    X(DELIVER_DSN_ERR_NOTHING_TO_REPORT,                                                   \
      "no recipient asked for this report (NOTIFY)")                                       \
    X(DELIVER_DSN_ERR_BOUNDARY, "no MIME boundary found that the content does not hold")   \
    X(DELIVER_DSN_ERR_TOO_BIG, "the report would be too large")                            \
    X(DELIVER_DSN_ERR_NOMEM, "out of memory")

enum deliver_dsn_err {
#define X(name, text) name,
    DELIVER_DSN_ERRORS(X)
#undef X
};
/* Never NULL. */
const char *deliver_dsn_strerror(enum deliver_dsn_err err);

/* RFC 3464 §2.3.3 action values. */
enum deliver_dsn_action {
    DELIVER_DSN_FAILED,
    DELIVER_DSN_DELAYED,
    DELIVER_DSN_DELIVERED,
    DELIVER_DSN_RELAYED, /* handed to a server that will not send DSNs (RFC 3461 §5.2.2) */
    DELIVER_DSN_EXPANDED /* delivered to an alias or list that forwards it (RFC 3461 §6.2.4) */
};
/* "failed", "delayed", …; "unknown" out of range. */
const char *deliver_dsn_action_name(enum deliver_dsn_action a);

/* Whether a recipient with these NOTIFY bits (STORE_NOTIFY_* of store/queue.h, 0 = NOTIFY not
 * given) gets a report for action a (RFC 3461 §4.1): NEVER: none; SUCCESS: delivered, relayed,
 * expanded; FAILURE: failed; DELAY: delayed. Without NOTIFY: failed and delayed (the delay
 * warning is the MTA's choice; we send it). */
bool deliver_dsn_wanted(unsigned notify, enum deliver_dsn_action a);

struct deliver_dsn_rcpt {
    const char *final_recipient; /* the address delivery was tried to */
    const char *orcpt;           /* ORCPT as received, "addr-type;xtext", or NULL */
    unsigned notify;             /* STORE_NOTIFY_* bits; recipients not wanting this report
                                  * (deliver_dsn_wanted) are left out of it */
    enum deliver_dsn_action action;
    struct reply_status status;  /* cls 0: taken from the diagnostic's enhanced code, else its
                                  * basic code's class (X.0.0, RFC 3463 §3), else the action's */
    const char *remote_mta;      /* the server that replied, host name, or NULL (local) */
    const char *diagnostic;      /* the reply as received (multi-line with CRLF or LF), or our
                                  * own reply text for a local failure; NULL when none */
    int64_t last_attempt;        /* unix time, 0 = unknown */
    int64_t will_retry_until;    /* DELAYED: when the queue gives up; 0 = unknown */
};

struct deliver_dsn_input {
    const char *reporting_mta; /* our host name: letters, digits, '.', '-', '_', or [literal] */
    const char *queue_id;      /* letters, digits, '-', '_' */
    const char *sender;        /* envelope sender, the report's To; "" or "<>": refused */
    const char *envid;         /* ENVID as received (xtext), or NULL */
    int ret;                   /* enum store_ret: FULL returns the message, else headers */
    int64_t arrival;           /* unix time */
    const char *message;       /* the original message (header and body, CRLF), or NULL */
    size_t message_len;
    size_t return_limit;       /* RET=FULL returns messages up to this size, longer ones as
                                * headers only; 0 = no limit */
    const struct deliver_dsn_rcpt *rcpts;
    size_t n_rcpts;
};

/* Builds the report message (RFC 5322 header and MIME body, CRLF line ends) to send from <>
 * to in->sender: a text/plain part explaining each recipient's outcome in plain words (from
 * the reply table through reply_explain) and quoting the server's reply; the
 * message/delivery-status part; the original message (message/rfc822, RET=FULL and a failed
 * recipient) or its header (text/rfc822-headers), omitted when in->message is NULL. `now` is
 * the report's date; boundary_seed (any random value) picks the MIME boundary, re-picked
 * while the content holds it. Control bytes in addresses, host names and replies never reach
 * the output as line breaks; prose is wrapped at 78 columns.
 * On DELIVER_DSN_OK *out is a malloc'd, NUL-terminated buffer of *out_len bytes (the caller
 * frees it); otherwise *out is NULL. Errors: INVALID, NULL_SENDER, NOTHING_TO_REPORT, BOUNDARY,
 * TOO_BIG, NOMEM. */
enum deliver_dsn_err deliver_dsn_build(const struct deliver_dsn_input *in, int64_t now,
                                       uint64_t boundary_seed, char **out, size_t *out_len);

/* Formats t (unix time, UTC) as an RFC 5322 date, "Tue, 07 May 2024 10:00:00 +0000", into buf
 * (at least DELIVER_DSN_DATE_MAX bytes). Times before 1970 or after 9999 are clamped. */
#define DELIVER_DSN_DATE_MAX 40
void deliver_dsn_format_date(int64_t t, char *buf);

#endif
