/* reply/bounce_reason.h — the reason of one bounced recipient by the conventions of the reason
 * vocabulary: the SMTP stage a reply answered, the report's diagnostic type, and the documented
 * error codes of large mail providers refine what the reply's code and words say. */
#ifndef CLEARMTA_REPLY_BOUNCE_REASON_H
#define CLEARMTA_REPLY_BOUNCE_REASON_H

#include <stdbool.h>
#include <stddef.h>

#include "reply/explain.h"

/* The SMTP command a reply answered, as a report names it. */
enum reply_bounce_stage {
    REPLY_STAGE_NONE,    /* the report does not say */
    REPLY_STAGE_CONNECT, /* the greeting, EHLO or HELO */
    REPLY_STAGE_MAIL,    /* MAIL FROM: the sender was refused */
    REPLY_STAGE_RCPT,    /* RCPT TO: the recipient was refused */
    REPLY_STAGE_DATA     /* DATA or the end of the message: the content was refused */
};

/* The stage the last command named in s[0..n) points at ("after RCPT TO:", "(in reply to end of
 * DATA command)", ">>> MAIL FROM:", qmail's "does not like recipient" …). */
enum reply_bounce_stage reply_bounce_stage(const char *s, size_t n);

/* What decides a recipient's reason besides the reply's own code and words. */
struct reply_bounce_facts {
    const char *diag;         /* the remote reply or the MTA's words */
    const char *status;       /* the enhanced status so far ("" when none) */
    const char *action;       /* failed, delayed … as the report gave it ("" when none) */
    const char *remote_mta;   /* "" when unknown */
    const char *recipient;
    enum reply_bounce_stage stage;
    bool diag_unix;           /* a local delivery program: X-Unix diagnostic, Exim's "pipe to |" */
    bool status_given;        /* the report carried a Status field */
    const char *category;     /* the reporting MTA's own class of the failure ("" when none) */
    const struct reply_explanation *ex; /* the explanation of diag, or NULL */
};

/* The reason (a reply/reason.h name) for reason_so_far and the facts. */
const char *reply_bounce_reason(const char *reason_so_far, const struct reply_bounce_facts *f);

/* The reason a provider's documented error code or message in diag names, when the remote host
 * or the recipient's domain belongs to that provider (Cox, Spectrum, Orange, KDDI/au, Zoho);
 * NULL otherwise. */
const char *reply_bounce_provider_reason(const char *remote_mta, const char *recipient,
                                         const char *diag);

#endif
