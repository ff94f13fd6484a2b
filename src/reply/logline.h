/* reply/logline.h — reads one delivery line of a mail log (Postfix, Sendmail, Exim, OpenSMTPD,
 * chasquid, clearmta): time stamp, queue id, recipient, outcome, status, relay and the remote
 * reply, explained with reply_explain(). */
#ifndef CLEARMTA_REPLY_LOGLINE_H
#define CLEARMTA_REPLY_LOGLINE_H

#include <stdbool.h>
#include <stddef.h>

#include "reply/explain.h"

enum reply_log_outcome {
    REPLY_LOG_DELIVERED,
    REPLY_LOG_DEFERRED,
    REPLY_LOG_BOUNCED,
    REPLY_LOG_EXPIRED
};

/* Every pointer points into the line given to reply_log_parse(), or to static text. */
struct reply_log_entry {
    const char *mta; /* "postfix", "sendmail", "exim", "opensmtpd", "chasquid", "clearmta" */
    const char *stamp, *queue_id, *recipient, *relay, *reply;
    size_t stamp_len, queue_id_len, recipient_len, relay_len, reply_len;
    enum reply_log_outcome outcome;
    struct reply_status status; /* dsn= or the reply's code; cls 0 when none */
    const char *reason;         /* reply/reason.h name, "delivered" for deliveries */
    bool explained;             /* ex is valid (it points into the line) */
    struct reply_explanation ex;
};

/* Reads line[0..len) (no line end). True when it is a delivery line of a known MTA, *out
 * filled; false for every other line (connections, queue entries, noise). No I/O, no
 * allocation. */
bool reply_log_parse(const char *line, size_t len, struct reply_log_entry *out);

/* "delivered", "deferred", "bounced", "expired". */
const char *reply_log_outcome_name(enum reply_log_outcome o);

#endif
