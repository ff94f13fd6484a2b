/* server/console_traffic.c — the traffic charts' data: replies per minute by class (2xx, 4xx,
 * 5xx) for the last hour, sent (inbound sessions) and received (deliveries), and the remote
 * replies most seen in that hour with their explanation. A ring of 60 minutes filled every
 * 10 s (and before each answer) from what the metrics' totals grew by: nothing is counted
 * twice on the hot paths. */
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "reply/explain.h"
#include "reply/json.h"
#include "server/http_internal.h"
#include "server/metrics.h"
#include "server/server.h"

#define TOP_MAX 10
#define TICK_S 10

/* 0, 1, 2 for a 2xx, 4xx, 5xx code label; -1 for the others (3xx, "other"). */
static int class_index(const char *code)
{
    return code[0] == '2' ? 0 : code[0] == '4' ? 1 : code[0] == '5' ? 2 : -1;
}

/* Totals by class of family m (its code label first), and each series' own in per (when
 * given, m's max_series + 1 entries). */
static void totals(struct base_metric *m, uint64_t by_class[3], uint64_t *per)
{
    memset(by_class, 0, 3 * sizeof by_class[0]);
    size_t n = atomic_load_explicit(&m->n_series, memory_order_acquire);
    for (size_t i = 0; m->series && i <= m->max_series; i++) {
        if (i >= n && i < m->max_series)
            continue;
        uint64_t v = base_metric_value(&m->series[i]);
        int c = class_index(m->series[i].values[0]);
        if (c >= 0)
            by_class[c] += v;
        if (per)
            per[i] = v;
    }
}

void http_traffic_sample(struct http_traffic *t)
{
    uint64_t in[3], out[3], remote[DELIVER_METRICS_REMOTE_SERIES + 1] = {0};
    totals(&server_metric_replies, in, NULL);
    totals(&deliver_metric_remote_replies, out, remote);
    int64_t minute = (int64_t)time(NULL) / 60;
    struct http_traffic_minute *m = &t->m[minute % 60];
    if (m->minute != minute) {
        memset(m, 0, sizeof *m);
        m->minute = minute;
    }
    if (!t->started) {
        t->started = true;
        memcpy(t->last_in, in, sizeof in);
        memcpy(t->last_out, out, sizeof out);
        memcpy(t->last_remote, remote, sizeof remote);
        return;
    }
    for (int c = 0; c < 3; c++) {
        m->in[c] += in[c] - t->last_in[c];
        m->out[c] += out[c] - t->last_out[c];
    }
    for (size_t i = 0; i <= DELIVER_METRICS_REMOTE_SERIES; i++)
        m->remote[i] += (uint32_t)(remote[i] - t->last_remote[i]);
    memcpy(t->last_in, in, sizeof in);
    memcpy(t->last_out, out, sizeof out);
    memcpy(t->last_remote, remote, sizeof remote);
}

static bool put(void *ctx, const char *p, size_t n)
{
    return evbuffer_add(ctx, p, n) == 0;
}

static void json_string(struct evbuffer *out, const char *s)
{
    reply_json_string(s, strlen(s), put, out);
}

/* The top remote replies of the hour: destination, code, enhanced code, count, explanation. */
static void json_top(struct http_traffic *t, int64_t now_minute, struct evbuffer *out)
{
    static uint64_t sum[DELIVER_METRICS_REMOTE_SERIES + 1];
    memset(sum, 0, sizeof sum);
    for (size_t k = 0; k < 60; k++)
        if (t->m[k].minute > now_minute - 60)
            for (size_t i = 0; i <= DELIVER_METRICS_REMOTE_SERIES; i++)
                sum[i] += t->m[k].remote[i];
    struct base_metric *m = &deliver_metric_remote_replies;
    evbuffer_add(out, ",\"top\":[", 8);
    for (int shown = 0; shown < TOP_MAX && m->series; shown++) {
        size_t best = 0;
        for (size_t i = 1; i <= DELIVER_METRICS_REMOTE_SERIES; i++)
            if (sum[i] > sum[best])
                best = i;
        if (sum[best] == 0)
            break;
        const struct base_metric_series *s = &m->series[best];
        char reply[2 * BASE_METRIC_VALUE_MAX];
        snprintf(reply, sizeof reply, "%s %s", s->values[0], s->values[1]);
        struct reply_explanation ex;
        bool explained = reply_explain(reply, strlen(reply), &ex) == REPLY_EXPLAIN_OK;
        evbuffer_add_printf(out, "%s{\"destination\":", shown ? "," : "");
        json_string(out, s->values[2]);
        evbuffer_add(out, ",\"code\":", 8);
        json_string(out, s->values[0]);
        evbuffer_add(out, ",\"enhanced\":", 12);
        json_string(out, s->values[1]);
        evbuffer_add_printf(out, ",\"count\":%" PRIu64 ",\"reason\":", sum[best]);
        json_string(out, explained ? reply_reason_name(ex.reason) : "");
        evbuffer_add(out, ",\"explanation\":", 15);
        json_string(out, explained ? ex.summary : "");
        evbuffer_add(out, "}", 1);
        sum[best] = 0;
    }
    evbuffer_add(out, "]", 1);
}

void http_traffic_json(struct http_traffic *t, struct evbuffer *out)
{
    int64_t now_minute = (int64_t)time(NULL) / 60;
    evbuffer_add_printf(out, "{\"now\":%" PRId64 ",\"classes\":[\"2xx\",\"4xx\",\"5xx\"],"
                             "\"minutes\":[", (int64_t)time(NULL));
    for (int64_t k = now_minute - 59; k <= now_minute; k++) {
        const struct http_traffic_minute *m = &t->m[k % 60];
        bool here = m->minute == k;
        evbuffer_add_printf(out,
                            "%s{\"t\":%" PRId64 ",\"in\":[%" PRIu64 ",%" PRIu64 ",%" PRIu64
                            "],\"out\":[%" PRIu64 ",%" PRIu64 ",%" PRIu64 "]}",
                            k > now_minute - 59 ? "," : "", k * 60, here ? m->in[0] : 0,
                            here ? m->in[1] : 0, here ? m->in[2] : 0, here ? m->out[0] : 0,
                            here ? m->out[1] : 0, here ? m->out[2] : 0);
    }
    evbuffer_add(out, "]", 1);
    json_top(t, now_minute, out);
    evbuffer_add(out, "}\n", 2);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http_traffic_sample(arg);
}

bool http_traffic_open(struct server_http *h)
{
    struct timeval tv = {.tv_sec = TICK_S};
    h->traffic.tick = event_new(h->srv->base, -1, EV_PERSIST, on_tick, &h->traffic);
    if (!h->traffic.tick || event_add(h->traffic.tick, &tv) != 0)
        return false;
    http_traffic_sample(&h->traffic);
    return true;
}

void http_traffic_close(struct server_http *h)
{
    if (h->traffic.tick)
        event_free(h->traffic.tick);
    h->traffic.tick = NULL;
}
