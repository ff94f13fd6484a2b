/* deliver/metrics.c — the delivery agent's metric families and their counting calls. */
#include "deliver/metrics.h"

#include <stdio.h>

struct base_metric deliver_metric_deliveries = {
    .name = "clearmta_deliveries_total",
    .help = "Delivery attempts of remote recipients by outcome (sent, deferred, bounced) and "
            "reason (the reply table's bounce reason)",
    .kind = BASE_METRIC_COUNTER,
    .labels = {"status", "reason"},
    .max_series = 128, /* 3 states x the reply table's reasons */
};

struct base_metric deliver_metric_remote_replies = {
    .name = "clearmta_remote_replies_total",
    .help = "Replies of remote servers to deliveries, by code, enhanced code and destination "
            "(the first destinations seen; later ones count as other)",
    .kind = BASE_METRIC_COUNTER,
    .labels = {"code", "enhanced", "destination"},
    .max_series = DELIVER_METRICS_REMOTE_SERIES,
};

bool deliver_metrics_register(void)
{
    return base_metric_register(&deliver_metric_deliveries) &&
           base_metric_register(&deliver_metric_remote_replies);
}

void deliver_metrics_outcome(const char *status, const char *reason)
{
    const char *values[] = {status, reason};
    base_metric_add_local(base_metric_series(&deliver_metric_deliveries, values), 1);
}

void deliver_metrics_remote_reply(const char *destination, const struct reply_parsed *r)
{
    char code[8], enhanced[16] = "";
    snprintf(code, sizeof code, "%d", r->code);
    if (r->status.cls)
        snprintf(enhanced, sizeof enhanced, "%d.%d.%d", r->status.cls, r->status.subject,
                 r->status.detail);
    const char *values[] = {code, enhanced, destination};
    base_metric_add_local(base_metric_series(&deliver_metric_remote_replies, values), 1);
}
