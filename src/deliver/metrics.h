/* deliver/metrics.h — what the delivery agent counts for /metrics: each recipient's outcome
 * (clearmta_deliveries_total{status,reason}) and each reply a remote server gave
 * (clearmta_remote_replies_total{code,enhanced,destination}). Counted on the event loop. */
#ifndef CLEARMTA_DELIVER_METRICS_H
#define CLEARMTA_DELIVER_METRICS_H

#include "base/metrics.h"
#include "reply/reply.h"

/* Remote replies keep this many label sets; the rest are counted as "other". */
#define DELIVER_METRICS_REMOTE_SERIES 200

extern struct base_metric deliver_metric_deliveries, deliver_metric_remote_replies;

/* Registers the families above (at server start). */
bool deliver_metrics_register(void);
/* status: "sent", "deferred" or "bounced"; reason: a reply/reason.h name or "delivered". */
void deliver_metrics_outcome(const char *status, const char *reason);
/* A reply of the server of destination (a domain or relay host). */
void deliver_metrics_remote_reply(const char *destination, const struct reply_parsed *r);

#endif
