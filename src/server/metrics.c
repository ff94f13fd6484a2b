/* server/metrics.c — the server's metric families and their counting: replies by code and
 * enhanced code at the one place every reply of a session is reported (transaction.c's
 * on_reply) and at the refusals without a session (server.c); gauges read when scraped. */
#include "server/metrics.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "deliver/agent.h"
#include "deliver/metrics.h"
#include "server/server.h"

struct base_metric server_metric_replies = {
    .name = "clearmta_smtp_replies_total",
    .help = "Replies the SMTP server sent, by code and enhanced code",
    .kind = BASE_METRIC_COUNTER,
    .labels = {"code", "enhanced"},
    .max_series = REPLY__COUNT,
};

static struct base_metric accepted = {
    .name = "clearmta_messages_accepted_total",
    .help = "Messages accepted into the queue (250 queued as ...)",
    .kind = BASE_METRIC_COUNTER,
    .max_series = 1,
};

static const uint64_t data_reply_bounds[] = {1000,   5000,   10000,   25000,   50000,  100000,
                                             250000, 500000, 1000000, 2500000, 5000000, 10000000};
static struct base_metric data_reply = {
    .name = "clearmta_smtp_data_reply_seconds",
    .help = "Time from the end of a message's data to the server's reply (the durable commit)",
    .kind = BASE_METRIC_HISTOGRAM,
    .max_series = 1,
    .bounds_us = data_reply_bounds,
    .n_bounds = sizeof data_reply_bounds / sizeof data_reply_bounds[0],
};

static struct base_metric connections = {
    .name = "clearmta_connections",
    .help = "SMTP connections open now, by listener (kind:port)",
    .kind = BASE_METRIC_GAUGE,
    .labels = {"listener"},
    .max_series = POLICY_LISTENERS_MAX * 2,
};

static struct base_metric queue_messages = {
    .name = "clearmta_queue_messages",
    .help = "Messages in the queue with a remote recipient still to deliver",
    .kind = BASE_METRIC_GAUGE,
    .max_series = 1,
};

static struct base_metric queue_oldest = {
    .name = "clearmta_queue_oldest_seconds",
    .help = "Age of the oldest of those messages (0 when there is none)",
    .kind = BASE_METRIC_GAUGE,
    .max_series = 1,
};

static struct base_metric dest_concurrency = {
    .name = "clearmta_destination_concurrency",
    .help = "Connections open now to each destination (the first ones seen; the rest as other)",
    .kind = BASE_METRIC_GAUGE,
    .labels = {"destination"},
    .max_series = 200,
};

static struct base_metric local_deliveries = {
    .name = "clearmta_local_deliveries_total",
    .help = "Deliveries of local recipients into their Maildir (sent), and attempts that "
            "failed and wait for a retry (deferred); read from the store when scraped",
    .kind = BASE_METRIC_COUNTER,
    .labels = {"status"},
    .max_series = 2,
};

static struct base_metric plan_messages = {
    .name = "clearmta_plan_messages_total",
    .help = "Messages accepted from accounts on each plan",
    .kind = BASE_METRIC_COUNTER,
    .labels = {"plan"},
    .max_series = 64,
};

static struct base_metric limit_refusals = {
    .name = "clearmta_limit_refusals_total",
    .help = "Commands and connections refused by a limit (plans, greylisting, rates, "
            "connection counts), by the reply's name",
    .kind = BASE_METRIC_COUNTER,
    .labels = {"limit"},
    .max_series = 32,
};

static struct base_metric *const families[] = {
    &server_metric_replies, &accepted,         &data_reply,   &connections,    &queue_messages,
    &queue_oldest,          &dest_concurrency, &plan_messages, &limit_refusals,
    &local_deliveries,
};

/* Each reply's series, found once; [1]: as soft_bounce sends it (5xx as 4xx). */
static struct base_metric_series *reply_series[2][REPLY__COUNT];

bool server_metrics_open(void)
{
    memset(reply_series, 0, sizeof reply_series);
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (!base_metric_register(families[i]))
            return false;
    return deliver_metrics_register();
}

void server_metrics_close(void)
{
    base_metrics_clear();
    memset(reply_series, 0, sizeof reply_series);
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The limit a refusal stands for, or NULL when the reply is none of them. */
static const char *limit_of(enum reply_id id)
{
    switch (id) {
    case REPLY_PLAN_LIMIT:
    case REPLY_PLAN_LIMIT_PERMANENT:
    case REPLY_PLAN_RCPT_LIMIT:
    case REPLY_LIMITS_UNAVAILABLE:
    case REPLY_GREYLISTED:
    case REPLY_TOO_MANY_MESSAGES:
    case REPLY_TOO_MANY_SESSIONS_IP:
    case REPLY_TOO_FAST:
    case REPLY_TOO_MANY_CONNECTIONS:
    case REPLY_TOO_MANY_CONNECTIONS_IP:
    case REPLY_AUTH_TOO_MANY_FAILURES:
        return reply_row_get(id)->name + sizeof "REPLY_" - 1;
    default:
        return NULL;
    }
}

static struct base_metric_series *series_of(enum reply_id id, bool soft_bounce)
{
    struct base_metric_series **s = &reply_series[soft_bounce][id];
    if (!*s) {
        const struct reply_row *row = reply_row_get(id);
        bool soft = soft_bounce && row->code >= 500;
        char code[16], enhanced[32];
        snprintf(code, sizeof code, "%d", soft ? row->code - 100 : row->code);
        snprintf(enhanced, sizeof enhanced, "%s", row->enhanced);
        if (soft && enhanced[0] == '5')
            enhanced[0] = '4';
        const char *values[] = {code, enhanced};
        *s = base_metric_series(&server_metric_replies, values);
    }
    return *s;
}

void server_metrics_reply(struct server_conn *c, enum reply_id id)
{
    if ((unsigned)id >= REPLY__COUNT)
        return;
    base_metric_add_local(series_of(id, c && c->listener->opts.soft_bounce), 1);
    if (id == REPLY_QUEUED) {
        base_metric_add_local(base_metric_series(&accepted, NULL), 1);
        const char *plan = c ? server_limits_plan(c) : NULL;
        if (plan)
            base_metric_add_local(base_metric_series(&plan_messages, &plan), 1);
    }
    const char *limit = limit_of(id);
    if (limit)
        base_metric_add_local(base_metric_series(&limit_refusals, &limit), 1);
    if (c && c->data_end_us) {
        uint64_t now = now_us();
        base_metric_observe_us(&data_reply, base_metric_series(&data_reply, NULL),
                               now > c->data_end_us ? now - c->data_end_us : 0);
        c->data_end_us = 0;
    }
}

void server_metrics_data_end(struct server_conn *c)
{
    c->data_end_us = now_us();
}

/* ---- gauges ------------------------------------------------------------------------------ */

static void on_destination(void *ctx, const struct deliver_destination *d)
{
    (void)ctx;
    if (d->in_use == 0)
        return;
    const char *name = d->name;
    base_metric_add_local(base_metric_series(&dest_concurrency, &name), d->in_use);
}

void server_metrics_collect(struct server *srv)
{
    base_metric_zero(&connections);
    for (struct server_conn *c = srv->conns; c; c = c->next) {
        char name[32];
        snprintf(name, sizeof name, "%s:%u", policy_listen_kind_name(c->listener->conf->kind),
                 c->listener->conf->port);
        const char *v = name;
        base_metric_add_local(base_metric_series(&connections, &v), 1);
    }
    if (srv->agent) {
        int64_t oldest = 0, now = (int64_t)time(NULL);
        size_t count = deliver_agent_queue_size(srv->agent, &oldest);
        base_metric_set(base_metric_series(&queue_messages, NULL), (int64_t)count);
        base_metric_set(base_metric_series(&queue_oldest, NULL),
                        oldest && now > oldest ? now - oldest : 0);
    }
    if (srv->queue) {
        struct store_stats st = {0};
        store_queue_stats(srv->queue, &st);
        const char *sent = "sent", *deferred = "deferred";
        base_metric_set(base_metric_series(&local_deliveries, &sent), (int64_t)st.delivered);
        base_metric_set(base_metric_series(&local_deliveries, &deferred), (int64_t)st.deferred);
    }
    base_metric_zero(&dest_concurrency);
    if (srv->agent)
        deliver_agent_destinations(srv->agent, on_destination, NULL);
}
