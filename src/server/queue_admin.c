/* server/queue_admin.c — `clearmta queue …` answered on the control socket: list, show, flush,
 * hold, release, delete, status; text for people, one JSON object per command for tools (field
 * names documented in docs/queue.md). RFC 8259 (JSON). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "deliver/agent.h"
#include "server/queue_admin.h"
#include "net/control.h"
#include "reply/explain.h"
#include "reply/safe_text.h"

static const char usage_text[] =
    "usage: clearmta queue list [--json]\n"
    "       clearmta queue show ID [--json]\n"
    "       clearmta queue flush [ID|DOMAIN] [--json]\n"
    "       clearmta queue hold ID | release ID [--json]\n"
    "       clearmta queue delete ID --bounce|--silent [--json]\n"
    "       clearmta queue status [--json]\n";

/* Recipient states of deliver_agent_rcpt_view, counted by `queue status`. */
static const char *const states[] = {"local", "queued", "sending", "deferred", "sent", "bounced"};
#define N_STATES (sizeof states / sizeof states[0])

struct listing {
    struct net_control_request *req;
    bool json, detail, summary_only;
    int64_t now;
    size_t messages, held;
    size_t by_state[N_STATES];
};

/* ---- formatting helpers ------------------------------------------------------------------ */

enum time_style {
    TIME_TEXT,  /* 2026-11-25 18:02:07 UTC */
    TIME_CLOCK, /* 18:02:07 UTC */
    TIME_JSON   /* 2026-11-25T18:02:07Z (RFC 3339) */
};

/* t as UTC ("?" when it cannot be shown). */
static void fmt_time(int64_t t, enum time_style style, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    size_t n = 0;
    if (gmtime_r(&tt, &tm)) {
        switch (style) {
        case TIME_TEXT:
            n = strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
            break;
        case TIME_CLOCK:
            n = strftime(buf, cap, "%H:%M:%S UTC", &tm);
            break;
        case TIME_JSON:
            n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
            break;
        }
    }
    if (n == 0)
        snprintf(buf, cap, "?");
}

/* A duration in words: "45 s", "3 min", "2 h 5 min", "4 d 3 h". */
static void fmt_span(int64_t s, char *buf, size_t cap)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        snprintf(buf, cap, "%" PRId64 " s", s);
    else if (s < 3600)
        snprintf(buf, cap, "%" PRId64 " min", s / 60);
    else if (s < 86400)
        snprintf(buf, cap, "%" PRId64 " h %" PRId64 " min", s / 3600, s / 60 % 60);
    else
        snprintf(buf, cap, "%" PRId64 " d %" PRId64 " h", s / 86400, s / 3600 % 24);
}

/* True when s starts like a reply line: "451 ", "550-", or a bare code. */
static bool is_reply_line(const char *s)
{
    return s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' &&
           s[2] <= '9' && (s[3] == ' ' || s[3] == '-' || s[3] == '\0');
}

/* Explains the recipient's last reply. A failure that is not a reply ("connect to
 * host[ip]:port: Connection refused") is explained by its enhanced status, so that numbers in
 * it (a port such as 450) are never taken for a reply code. */
static bool explain_rcpt(const struct deliver_agent_rcpt_view *rc, struct reply_explanation *ex)
{
    const char *reply = rc->last_reply ? rc->last_reply : "";
    if (is_reply_line(reply))
        return reply_explain(reply, strlen(reply), ex) == REPLY_EXPLAIN_OK;
    if (rc->last_status.cls) {
        char code[32];
        int n = snprintf(code, sizeof code, "%d.%d.%d", rc->last_status.cls,
                         rc->last_status.subject, rc->last_status.detail);
        return n > 0 && (size_t)n < sizeof code &&
               reply_explain(code, (size_t)n, ex) == REPLY_EXPLAIN_OK;
    }
    return reply[0] && reply_explain(reply, strlen(reply), ex) == REPLY_EXPLAIN_OK;
}

static bool is_pending(const char *state)
{
    return strcmp(state, "queued") == 0 || strcmp(state, "deferred") == 0 ||
           strcmp(state, "local") == 0;
}

/* ---- text -------------------------------------------------------------------------------- */

static bool control_put(void *ctx, const char *p, size_t n)
{
    return net_control_write(ctx, p, n);
}

/* Text from outside (a remote reply, an address, a header) as the terminal may show it: each
 * further line of a multi-line reply on its own line indented by indent, control bytes as
 * "\xHH" (reply/safe_text.h). */
static void text_outside(struct net_control_request *req, const char *s, const char *indent)
{
    char newline[32];
    snprintf(newline, sizeof newline, "\n%s", indent);
    reply_safe_text(s, strlen(s), newline, control_put, req);
}

static void text_next_try(struct net_control_request *req, const struct deliver_agent_rcpt_view *rc,
                          int64_t now)
{
    if (!is_pending(rc->state))
        return;
    char span[32], at[40];
    if (rc->next_try == 0) {
        net_control_printf(req, ", no try scheduled");
    } else if (rc->next_try <= now) {
        net_control_printf(req, ", next try now");
    } else {
        fmt_span(rc->next_try - now, span, sizeof span);
        fmt_time(rc->next_try, TIME_CLOCK, at, sizeof at);
        net_control_printf(req, ", next try in %s (%s)", span, at);
    }
}

static void text_rcpt(struct listing *l, const struct deliver_agent_rcpt_view *rc)
{
    struct net_control_request *req = l->req;
    net_control_printf(req, "  to <");
    text_outside(req, rc->address, "");
    net_control_printf(req, ">  %s, %u attempt%s", rc->state, rc->attempts,
                       rc->attempts == 1 ? "" : "s");
    text_next_try(req, rc, l->now);
    net_control_write(req, "\n", 1);
    if (rc->last_reply && rc->last_reply[0]) {
        net_control_printf(req, "      last reply: ");
        text_outside(req, rc->last_reply, "                  ");
        net_control_write(req, "\n", 1);
    }
    struct reply_explanation ex;
    if (!explain_rcpt(rc, &ex))
        return;
    net_control_printf(req, "      why: %s: %s\n", reply_reason_name(ex.reason), ex.summary);
    if (!l->detail)
        return;
    net_control_printf(req, "      meaning: %s\n", ex.meaning);
    net_control_printf(req, "      likely cause: %s\n", ex.cause);
    net_control_printf(req, "      what to do: %s\n", ex.action);
    net_control_printf(req, "      retry: %s%s\n", ex.retry ? "yes: " : "no: ", ex.retry_when);
}

static void text_message(struct listing *l, const struct deliver_agent_msg_view *m)
{
    struct net_control_request *req = l->req;
    char age[32], at[40];
    fmt_span(l->now - m->arrival, age, sizeof age);
    fmt_time(m->arrival, TIME_TEXT, at, sizeof at);
    if (l->messages > 1)
        net_control_write(req, "\n", 1);
    net_control_printf(req, "%s  %" PRIu64 " bytes  from <", m->id, m->size);
    text_outside(req, m->sender, "");
    net_control_printf(req, ">%s%s\n", m->held ? "  HELD" : "",
                       m->warned ? "  (delay warning sent)" : "");
    net_control_printf(req, "  arrived %s (%s ago)\n", at, age);
    if (m->auth_results[0]) {
        net_control_printf(req, "  authentication: ");
        text_outside(req, m->auth_results, "");
        net_control_write(req, "\n", 1);
    }
    if (m->folder[0])
        net_control_printf(req, "  local copies go to folder %s\n", m->folder);
    for (size_t i = 0; i < m->n_rcpts; i++)
        text_rcpt(l, &m->rcpts[i]);
}

/* ---- JSON -------------------------------------------------------------------------------- */

static void json_field_str(struct net_control_request *req, const char *name, const char *v)
{
    net_control_printf(req, ",\"%s\":", name);
    net_control_json_string(req, v);
}

static void json_time(struct net_control_request *req, const char *name, int64_t t)
{
    char at[40];
    if (t == 0) {
        net_control_printf(req, ",\"%s\":null,\"%s_utc\":null", name, name);
        return;
    }
    fmt_time(t, TIME_JSON, at, sizeof at);
    net_control_printf(req, ",\"%s\":%" PRId64 ",\"%s_utc\":\"%s\"", name, t, name, at);
}

static void json_rcpt(struct listing *l, const struct deliver_agent_rcpt_view *rc)
{
    struct net_control_request *req = l->req;
    net_control_write(req, "{\"address\":", 11);
    net_control_json_string(req, rc->address);
    json_field_str(req, "state", rc->state);
    net_control_printf(req, ",\"attempts\":%u", rc->attempts);
    json_time(req, "next_try", is_pending(rc->state) ? rc->next_try : 0);
    json_field_str(req, "last_reply", rc->last_reply && rc->last_reply[0] ? rc->last_reply : NULL);
    if (rc->last_status.cls)
        net_control_printf(req, ",\"status\":\"%d.%d.%d\"", rc->last_status.cls,
                           rc->last_status.subject, rc->last_status.detail);
    else
        net_control_write(req, ",\"status\":null", 14);
    struct reply_explanation ex;
    bool explained = explain_rcpt(rc, &ex);
    json_field_str(req, "reason", explained ? reply_reason_name(ex.reason) : NULL);
    json_field_str(req, "explanation", explained ? ex.summary : NULL);
    if (l->detail) {
        json_field_str(req, "meaning", explained ? ex.meaning : NULL);
        json_field_str(req, "cause", explained ? ex.cause : NULL);
        json_field_str(req, "action", explained ? ex.action : NULL);
        json_field_str(req, "retry_when", explained ? ex.retry_when : NULL);
    }
    net_control_write(req, "}", 1);
}

static void json_message(struct listing *l, const struct deliver_agent_msg_view *m)
{
    struct net_control_request *req = l->req;
    if (l->messages > 1)
        net_control_write(req, ",", 1);
    net_control_write(req, "{\"id\":", 6);
    net_control_json_string(req, m->id);
    json_time(req, "arrival", m->arrival);
    net_control_printf(req, ",\"age_seconds\":%" PRId64 ",\"size\":%" PRIu64,
                       l->now > m->arrival ? l->now - m->arrival : 0, m->size);
    json_field_str(req, "sender", m->sender);
    json_field_str(req, "authentication_results", m->auth_results[0] ? m->auth_results : NULL);
    json_field_str(req, "folder", m->folder[0] ? m->folder : NULL);
    net_control_printf(req, ",\"held\":%s,\"delay_warning_sent\":%s,\"recipients\":[",
                       m->held ? "true" : "false", m->warned ? "true" : "false");
    for (size_t i = 0; i < m->n_rcpts; i++) {
        if (i > 0)
            net_control_write(req, ",", 1);
        json_rcpt(l, &m->rcpts[i]);
    }
    net_control_write(req, "]}", 2);
}

/* {"command":"list","now":N,"messages":[ or {"command":"show","now":N,"message": */
static void json_prefix(struct listing *l)
{
    net_control_printf(l->req, "{\"command\":\"%s\",\"now\":%" PRId64 ",%s",
                       l->detail ? "show" : "list", l->now,
                       l->detail ? "\"message\":" : "\"messages\":[");
}

static void on_message(void *ctx, const struct deliver_agent_msg_view *m)
{
    struct listing *l = ctx;
    l->messages++;
    if (l->json && !l->summary_only && l->messages == 1)
        json_prefix(l); /* only now: an error answer must not start with JSON */
    l->held += m->held;
    for (size_t i = 0; i < m->n_rcpts; i++)
        for (size_t s = 0; s < N_STATES; s++)
            if (strcmp(m->rcpts[i].state, states[s]) == 0)
                l->by_state[s]++;
    if (l->summary_only)
        return;
    if (l->json)
        json_message(l, m);
    else
        text_message(l, m);
}

/* ---- commands ---------------------------------------------------------------------------- */

/* Answers an agent error; true when there was none. */
static bool admin_failed(struct net_control_request *req, enum deliver_agent_admin_err err,
                         const char *id)
{
    switch (err) {
    case DELIVER_AGENT_ADMIN_OK:
        return false;
    case DELIVER_AGENT_ADMIN_NOT_FOUND:
        if (id)
            net_control_printf(req, "no message %s in the queue\n", id);
        else
            net_control_printf(req, "nothing in the queue\n");
        break;
    case DELIVER_AGENT_ADMIN_IO:
        net_control_printf(req, "the queue could not be read or written (see the server log)\n");
        break;
    case DELIVER_AGENT_ADMIN_NOMEM:
        net_control_printf(req, "the server is out of memory\n");
        break;
    }
    net_control_finish(req, 1);
    return true;
}

static void cmd_list(struct deliver_agent *a, struct net_control_request *req, const char *id,
                     bool json)
{
    struct listing l = {.req = req, .json = json, .detail = id != NULL,
                        .now = base_clock_steady()};
    size_t count = 0;
    if (admin_failed(req, deliver_agent_list(a, id, on_message, &l, &count), id))
        return;
    if (json && l.messages == 0)
        json_prefix(&l);
    if (json && id)
        net_control_write(req, "}\n", 2);
    else if (json)
        net_control_printf(req, "],\"count\":%zu}\n", l.messages);
    else if (l.messages == 0)
        net_control_write(req, "the queue is empty\n", 19);
    else if (!id)
        net_control_printf(req, "\n%zu message%s\n", l.messages, l.messages == 1 ? "" : "s");
    net_control_finish(req, 0);
}

static void cmd_flush(struct deliver_agent *a, struct net_control_request *req, const char *target,
                      bool json)
{
    size_t count = 0;
    enum deliver_agent_admin_err err = deliver_agent_flush(a, target, &count);
    if (err == DELIVER_AGENT_ADMIN_NOT_FOUND && target && strchr(target, '.')) {
        net_control_printf(req, "no message for domain %s in the queue\n", target);
        net_control_finish(req, 1);
        return;
    }
    if (admin_failed(req, err, target))
        return;
    if (json) {
        net_control_write(req, "{\"command\":\"flush\",\"target\":", 28);
        net_control_json_string(req, target);
        net_control_printf(req, ",\"scheduled\":%zu}\n", count);
    } else {
        net_control_printf(req, "%zu message%s scheduled for delivery now\n", count,
                           count == 1 ? "" : "s");
    }
    net_control_finish(req, 0);
}

/* hold, release, delete: one message, one word of result (done), delete says how (bounce). */
static void cmd_one(struct net_control_request *req, const char *command, const char *id,
                    enum deliver_agent_admin_err err, const char *done, int bounce, bool json)
{
    if (admin_failed(req, err, id))
        return;
    if (json) {
        net_control_printf(req, "{\"command\":\"%s\",\"id\":", command);
        net_control_json_string(req, id);
        net_control_printf(req, ",\"result\":\"%s\"", done);
        if (bounce >= 0)
            net_control_printf(req, ",\"bounce\":%s", bounce ? "true" : "false");
        net_control_write(req, "}\n", 2);
    } else {
        net_control_printf(req, "%s %s%s\n", id, done,
                           bounce < 0 ? "" : bounce ? " (the sender gets a failure notice)"
                                                    : " silently");
    }
    net_control_finish(req, 0);
}

/* Answers a usage error. */
static void usage_error(struct net_control_request *req, const char *msg)
{
    net_control_write(req, msg, strlen(msg));
    net_control_finish(req, 2);
}

static void cmd_delete(struct deliver_agent *a, struct net_control_request *req, int argc,
                       char **argv, bool json)
{
    const char *id = NULL;
    bool bounce = false, silent = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--bounce") == 0) {
            bounce = true;
        } else if (strcmp(argv[i], "--silent") == 0) {
            silent = true;
        } else if (!id && argv[i][0] != '-') {
            id = argv[i];
        } else {
            usage_error(req, usage_text);
            return;
        }
    }
    if (!id)
        usage_error(req, usage_text);
    else if (bounce && silent)
        usage_error(req, "give either --bounce or --silent, not both\n");
    else if (!bounce && !silent)
        usage_error(req, "queue delete needs --bounce (the sender gets a failure notice) or "
                         "--silent (no notice)\n");
    else
        cmd_one(req, "delete", id, deliver_agent_delete(a, id, bounce), "deleted", bounce, json);
}

struct dest_listing {
    struct net_control_request *req;
    bool json;
    int64_t now;
    size_t n;
};

static void on_destination(void *ctx, const struct deliver_destination *d)
{
    struct dest_listing *l = ctx;
    struct net_control_request *req = l->req;
    char line[512];
    deliver_destination_describe(d, l->now, line, sizeof line);
    l->n++;
    if (!l->json) {
        net_control_write(req, "  ", 2);
        text_outside(req, line, "    "); /* the backoff's reason may quote a reply */
        net_control_write(req, "\n", 1);
        return;
    }
    bool backing_off = d->backoff_until > l->now;
    net_control_write(req, l->n > 1 ? ",{\"name\":" : "{\"name\":", l->n > 1 ? 9 : 8);
    net_control_json_string(req, d->name);
    net_control_printf(req, ",\"concurrency\":%u,\"concurrency_max\":%u,\"open\":%u,"
                            "\"messages_per_connection\":%u,\"successes\":%u,\"failures\":%u",
                       d->limit, d->cfg.concurrency_max, d->in_use, d->per_conn, d->successes,
                       d->failures);
    json_time(req, "backoff_until", backing_off ? d->backoff_until : 0);
    json_field_str(req, "backoff_reason", backing_off && d->why[0] ? d->why : NULL);
    json_field_str(req, "description", line);
    net_control_write(req, "}", 1);
}

static void cmd_status(struct deliver_agent *a, struct net_control_request *req, bool json)
{
    struct listing l = {.req = req, .summary_only = true, .now = base_clock_steady()};
    size_t count = 0;
    if (admin_failed(req, deliver_agent_list(a, NULL, on_message, &l, &count), NULL))
        return;
    struct deliver_agent_outbound out;
    deliver_agent_outbound_use(a, &out);
    if (json) {
        net_control_printf(req, "{\"command\":\"status\",\"now\":%" PRId64 ",\"queue\":{"
                                "\"messages\":%zu,\"held\":%zu,\"recipients\":{",
                           l.now, l.messages, l.held);
        for (size_t s = 0; s < N_STATES; s++)
            net_control_printf(req, "%s\"%s\":%zu", s ? "," : "", states[s], l.by_state[s]);
        net_control_printf(req, "}},\"outbound\":{\"open\":%u,\"max\":%u,\"waiting\":%zu},"
                                "\"destinations\":[", out.open, out.max, out.waiting);
    } else {
        net_control_printf(req, "queue: %zu message%s (%zu held); recipients:", l.messages,
                           l.messages == 1 ? "" : "s", l.held);
        for (size_t s = 0; s < N_STATES; s++)
            net_control_printf(req, "%s %zu %s", s ? "," : "", l.by_state[s], states[s]);
        net_control_printf(req, "\noutbound: %u connection%s open of %u "
                                "(max_outbound_connections), %zu waiting for one\n"
                                "destinations:\n",
                           out.open, out.open == 1 ? "" : "s", out.max, out.waiting);
    }
    struct dest_listing d = {.req = req, .json = json, .now = l.now};
    deliver_agent_destinations(a, on_destination, &d);
    if (json)
        net_control_write(req, "]}\n", 3);
    else if (d.n == 0)
        net_control_write(req, "  none yet (no remote delivery since the server started)\n", 57);
    net_control_finish(req, 0);
}

/* The "queue" handler: argv[1] is the subcommand. */
static void queue_command(void *ctx, struct net_control_request *req, int argc, char **argv,
                          bool json)
{
    struct deliver_agent *a = ctx;
    const char *sub = argc > 1 ? argv[1] : "";
    const char *arg = argc > 2 ? argv[2] : NULL;
    if (strcmp(sub, "delete") == 0) {
        cmd_delete(a, req, argc, argv, json);
        return;
    }
    bool one = strcmp(sub, "show") == 0 || strcmp(sub, "hold") == 0 ||
               strcmp(sub, "release") == 0;
    bool none = strcmp(sub, "list") == 0 || strcmp(sub, "status") == 0;
    bool optional = strcmp(sub, "flush") == 0;
    if (!((one && argc == 3) || (none && argc == 2) || (optional && argc <= 3)) ||
        (arg && arg[0] == '-')) {
        usage_error(req, usage_text);
        return;
    }
    if (strcmp(sub, "list") == 0 || strcmp(sub, "show") == 0)
        cmd_list(a, req, arg, json);
    else if (strcmp(sub, "flush") == 0)
        cmd_flush(a, req, arg, json);
    else if (strcmp(sub, "hold") == 0)
        cmd_one(req, "hold", arg, deliver_agent_hold(a, arg), "held", -1, json);
    else if (strcmp(sub, "release") == 0)
        cmd_one(req, "release", arg, deliver_agent_release(a, arg), "released", -1, json);
    else
        cmd_status(a, req, json);
}

bool server_queue_admin_register(struct net_control *ctl, struct deliver_agent *a)
{
    return net_control_register(ctl, "queue", queue_command, a);
}
