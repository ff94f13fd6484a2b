/* reply/bounce.h — reads one bounce message: RFC 3464 delivery reports (also nested) and the
 * plain-text reports of MTAs and mail services, auto-replies (RFC 3834) and ARF feedback
 * reports (RFC 5965); per recipient: address, action, status, remote reply, reason. */
#ifndef CLEARMTA_REPLY_BOUNCE_H
#define CLEARMTA_REPLY_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>

#include "reply/explain.h"

#define REPLY_BOUNCE_RCPT_MAX 64    /* recipients reported per message; more are dropped */
#define REPLY_BOUNCE_ADDR_MAX 256   /* RFC 5321 §4.5.3.1.3 path limit */
#define REPLY_BOUNCE_DIAG_MAX 1024  /* remote reply kept per recipient */
#define REPLY_BOUNCE_FIELD_MAX 256  /* Message-ID, subject, sender, date, remote MTA */

enum reply_bounce_kind {
    REPLY_BOUNCE_NONE,     /* not a bounce, auto-reply or feedback report */
    REPLY_BOUNCE_DSN,      /* a delivery report (standard or not) */
    REPLY_BOUNCE_VACATION, /* an auto-reply */
    REPLY_BOUNCE_FEEDBACK  /* an ARF feedback report */
};

struct reply_bounce_rcpt {
    char recipient[REPLY_BOUNCE_ADDR_MAX];
    char action[16];               /* failed, delayed, delivered, relayed, expanded */
    char status[16];               /* "5.1.1"; the likeliest code when the report has none */
    bool status_given;             /* the status came from the report itself */
    bool diag_unix;                /* a local delivery program: X-Unix diagnostic, "pipe to |" */
    char category[32];             /* the reporting MTA's own class (X-PowerMTA-BounceCategory) */
    char diag[REPLY_BOUNCE_DIAG_MAX]; /* the remote reply or the MTA's words */
    char remote_mta[REPLY_BOUNCE_FIELD_MAX];
    const char *reason;            /* a reply/reason.h name, "vacation" or "feedback" */
    bool hard;                     /* a hard bounce: the address itself is wrong */
    int reply_code;                /* 0 when none */
    bool explained;                /* ex holds the explanation of diag */
    struct reply_explanation ex;   /* points into diag: valid while this struct lives */
};

struct reply_bounce {
    enum reply_bounce_kind kind;
    char feedback_type[32];
    char message_id[REPLY_BOUNCE_FIELD_MAX]; /* of the returned message */
    char subject[REPLY_BOUNCE_FIELD_MAX];
    char sender[REPLY_BOUNCE_FIELD_MAX];
    char date[REPLY_BOUNCE_FIELD_MAX];
    size_t nrcpt;
    struct reply_bounce_rcpt rcpt[REPLY_BOUNCE_RCPT_MAX];
};

/* Reads msg[0..len) (RFC 5322, LF or CRLF). arena[0..cap) holds decoded text while parsing
 * (3 x len is plenty; less only cuts text). Fills *out (which is large: allocate it once and
 * reuse it). No I/O but iconv's charset tables; allocates nothing. Returns out->kind;
 * REPLY_BOUNCE_NONE when the message is none of the kinds. */
enum reply_bounce_kind reply_bounce_parse(const char *msg, size_t len, char *arena, size_t cap,
                                          struct reply_bounce *out);

/* "failed" etc. or "" for the kinds. */
const char *reply_bounce_kind_name(enum reply_bounce_kind kind);

#endif
