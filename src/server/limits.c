/* server/limits.c — limit checks of the running server: plan limits at MAIL, RCPT and the end of
 * data, greylisting at RCPT, sessions per minute per client at connect (policy/counters.h:
 * memory answers at once, Redis through the loop), and commands per second per session.
 *
 * A check is a list of counter hits made in order; the first refusal ends it. Hits made before
 * a refusal stay counted (a later limit of the same MAIL refusing leaves the earlier ones one
 * higher): counting one message too many is safe, admitting one too many is not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "net/log.h"
#include "server/server.h"
#include "policy/counters.h"
#include "policy/plan_check.h"

/* Keys a node keeps in memory (about 0.5 KiB each): every account, client and greylisting
 * triplet of a busy node; the least recently used go first beyond it. */
#define MEMORY_KEYS 100000u
/* A check holds at most every limit of a plan plus a greylisting hit. */
#define STEPS_MAX (3u * POLICY_PLAN_WINDOWS_MAX + 1u)
/* max_commands_per_second: a client whose input kept waiting for the rate this long is
 * disconnected. */
#define RATE_GIVE_UP_MS 10000u

enum check { CHECK_CONNECT, CHECK_MAIL, CHECK_RCPT, CHECK_DATA_END };
enum step_kind { STEP_PLAN, STEP_GREY, STEP_SESSION };

struct step {
    enum step_kind kind;
    const struct policy_plan_limit *limit; /* STEP_PLAN */
    uint64_t amount;
};

struct server_limits {
    struct policy_account account; /* of the open transaction, found at MAIL */
    bool size_counted;             /* bytes limits were hit at MAIL with SIZE= */
    char sender[LIMIT_PATH + 1];   /* of the open transaction, for greylisting */
    char rcpt[LIMIT_PATH + 1];     /* the recipient being greylisted */
    enum check check;
    struct step steps[STEPS_MAX];
    size_t n_steps, next;
    struct smtp_decision decision; /* what the check answers once every step passed */
    struct policy_counters_call *call;
    char key[POLICY_COUNTERS_KEY_MAX + 1];
};

static uint64_t clock_ms(void *ctx)
{
    (void)ctx;
    return server_now_ms();
}

bool server_limits_open(struct server *srv)
{
    const struct policy_counters_config *cc = &srv->cfg->counters;
    char err[256] = "out of memory";
    if (cc->kind == POLICY_COUNTERS_REDIS)
        srv->counters = policy_counters_redis_new(srv->base, cc->server,
                                                  cc->prefix[0] ? cc->prefix : NULL,
                                                  cc->timeout_ms, err, sizeof err);
    else
        srv->counters = policy_counters_memory_new(clock_ms, NULL, MEMORY_KEYS);
    if (!srv->counters) {
        net_log("fatal: counters: %s", err);
        return false;
    }
    deliver_agent_set_counters(srv->agent, srv->counters);
    net_log("limits: counters=%s%s%s, fail=%s, plans=%zu, greylisting=%s",
            policy_counters_backend(srv->counters),
            cc->kind == POLICY_COUNTERS_REDIS ? ", server=" : "",
            cc->kind == POLICY_COUNTERS_REDIS ? cc->server : "",
            cc->fail_closed ? "closed" : "open", srv->cfg->n_plans,
            srv->cfg->greylist.on ? "on" : "off");
    return true;
}

void server_limits_close(struct server *srv)
{
    policy_counters_free(srv->counters); /* cancels pending calls without their callbacks */
    srv->counters = NULL;
    server_limits_show_drop(srv);
}

static struct server_limits *limits_of(struct server_conn *c)
{
    if (!c->limits)
        c->limits = calloc(1, sizeof *c->limits);
    return c->limits;
}

void server_limits_forget(struct server_conn *c)
{
    if (c->throttle)
        event_free(c->throttle);
    c->throttle = NULL;
    if (!c->limits)
        return;
    if (c->limits->call)
        policy_counters_cancel(c->limits->call);
    free(c->limits);
    c->limits = NULL;
}

static void copy_string(char *out, size_t cap, const char *s)
{
    size_t n = strnlen(s, cap - 1);
    memcpy(out, s, n);
    out[n] = '\0';
}

static bool client_address(const struct server_conn *c, struct sockaddr_storage *ss)
{
    return policy_parse_address(c->addr, ss);
}

/* ---- one decision ------------------------------------------------------------------------ */

/* The request of a step; false (and *res UNAVAILABLE) when its key cannot be made. */
static bool request_for(struct server_conn *c, const struct step *st,
                        struct policy_counters_request *req, struct policy_counters_result *res)
{
    const struct policy_config *cfg = c->srv->cfg;
    struct server_limits *lim = c->limits;
    struct sockaddr_storage ss;
    size_t n = 0;
    *req = (struct policy_counters_request){.key = lim->key, .amount = st->amount};
    switch (st->kind) {
    case STEP_PLAN:
        n = policy_plan_key(lim->key, sizeof lim->key, st->limit, lim->account.name);
        req->limit = st->limit->limit;
        req->window_ms = (uint64_t)st->limit->window * 1000;
        break;
    case STEP_GREY:
        if (client_address(c, &ss))
            n = policy_greylist_key(lim->key, sizeof lim->key, &cfg->greylist,
                                    (const struct sockaddr *)&ss, lim->sender, lim->rcpt);
        req->limit = 0; /* every attempt is counted: only the age of the first matters */
        req->window_ms = (uint64_t)cfg->greylist.expire * 1000;
        break;
    case STEP_SESSION:
        if (client_address(c, &ss))
            n = policy_session_key(lim->key, sizeof lim->key, (const struct sockaddr *)&ss);
        req->limit = cfg->max_sessions_per_minute_per_ip;
        req->window_ms = 60000;
        break;
    }
    if (n > 0)
        return true;
    memset(res, 0, sizeof *res);
    res->status = POLICY_COUNTERS_UNAVAILABLE;
    res->limit = req->limit;
    copy_string(res->error, sizeof res->error, "no counter key for this client or address");
    snprintf(lim->key, sizeof lim->key, "-");
    return false;
}

static const char *status_name(enum policy_counters_status st)
{
    switch (st) {
    case POLICY_COUNTERS_ALLOWED: return "allowed";
    case POLICY_COUNTERS_DENIED: return "denied";
    case POLICY_COUNTERS_UNAVAILABLE: return "unavailable";
    }
    return "?";
}

/* One line per decision: who, which plan, which counter, where it stands, what was answered. */
static void log_decision(const struct server_conn *c, const struct step *st,
                         const struct policy_counters_result *res, enum reply_id refusal,
                         const char *detail)
{
    const struct server_limits *lim = c->limits;
    const struct policy_config *cfg = c->srv->cfg;
    char reply[600] = "";
    if (refusal != REPLY_OK) {
        size_t n = reply_format(reply, sizeof reply, refusal,
                                reply_row_get(refusal)->code == 421 ? cfg->hostname : detail,
                                NULL, 0, REPLY_FMT_ENHANCED);
        while (n > 0 && (reply[n - 1] == '\n' || reply[n - 1] == '\r'))
            reply[--n] = '\0';
    }
    bool plan = st->kind == STEP_PLAN;
    char failure[200] = "", age[40] = "";
    if (res->status == POLICY_COUNTERS_UNAVAILABLE)
        snprintf(failure, sizeof failure, " (%s), fail=%s", res->error,
                 cfg->counters.fail_closed && st->kind != STEP_SESSION ? "closed" : "open");
    if (st->kind == STEP_GREY)
        snprintf(age, sizeof age, ", age=%llums", (unsigned long long)res->age_ms);
    net_log("limit: [%s] account=%s, plan=%s, counter=%s, count=%llu/%llu%s, status=%s%s%s%s",
            c->addr, plan ? lim->account.name : c->addr, plan ? lim->account.plan->name : "-",
            lim->key, (unsigned long long)res->count, (unsigned long long)res->limit, age,
            status_name(res->status), failure, refusal != REPLY_OK ? ", reply=" : "", reply);
}

/* Applies one result; false when it refused (the check is over, lim->decision says how). */
static bool apply(struct server_conn *c, const struct policy_counters_result *res)
{
    const struct policy_config *cfg = c->srv->cfg;
    struct server_limits *lim = c->limits;
    const struct step *st = &lim->steps[lim->next++];
    enum reply_id refusal = REPLY_OK;
    char detail[sizeof lim->decision.detail] = "";
    switch (res->status) {
    case POLICY_COUNTERS_ALLOWED:
        if (st->kind == STEP_GREY) {
            unsigned wait = policy_greylist_wait(&cfg->greylist, res->age_ms);
            if (wait > 0) {
                refusal = REPLY_GREYLISTED;
                snprintf(detail, sizeof detail, "%u", wait);
            }
        }
        break;
    case POLICY_COUNTERS_DENIED:
        if (st->kind == STEP_PLAN)
            refusal = policy_plan_refusal(lim->account.plan, st->limit, res->retry_after_ms,
                                          time(NULL), detail, sizeof detail);
        else
            refusal = REPLY_TOO_MANY_SESSIONS_IP;
        break;
    case POLICY_COUNTERS_UNAVAILABLE:
        /* A connection is never refused for it: 451 is no greeting, and the plan and
         * greylisting checks that follow apply fail=closed themselves. */
        if (cfg->counters.fail_closed && st->kind != STEP_SESSION)
            refusal = REPLY_LIMITS_UNAVAILABLE;
        break;
    }
    log_decision(c, st, res, refusal, detail);
    if (refusal == REPLY_OK)
        return true;
    lim->decision.reply = refusal;
    copy_string(lim->decision.detail, sizeof lim->decision.detail, detail);
    lim->decision.mailbox[0] = '\0';
    return false;
}

static void on_counted(void *ctx, const struct policy_counters_result *res);

/* Runs the steps left; true when the check is over, false when a counters call is pending. */
static bool run(struct server_conn *c)
{
    struct server_limits *lim = c->limits;
    while (lim->next < lim->n_steps) {
        struct policy_counters_request req;
        struct policy_counters_result res;
        if (request_for(c, &lim->steps[lim->next], &req, &res) &&
            !policy_counters_hit(c->srv->counters, &req, &res, on_counted, c, &lim->call))
            return false;
        if (!apply(c, &res))
            return true;
    }
    return true;
}

static bool accepted(enum reply_id id)
{
    enum reply_class cls = reply_class_of(reply_row_get(id)->code);
    return cls == REPLY_CLASS_SUCCESS || cls == REPLY_CLASS_INTERMEDIATE;
}

/* The check is over: its verdict for the session; at the end of data, the commit. */
static enum smtp_verdict conclude(struct server_conn *c, struct smtp_decision *d)
{
    *d = c->limits->decision;
    if (c->limits->check != CHECK_DATA_END)
        return SMTP_DECIDED;
    if (accepted(d->reply))
        return server_transaction_commit(c);
    server_transaction_discard(c);
    return SMTP_DECIDED;
}

static void on_counted(void *ctx, const struct policy_counters_result *res)
{
    struct server_conn *c = ctx;
    struct server_limits *lim = c->limits;
    lim->call = NULL;
    if (apply(c, res) && !run(c))
        return; /* the next call is pending */
    if (lim->check == CHECK_CONNECT) {
        server_conn_admit(c, lim->decision.reply);
        return;
    }
    struct smtp_decision d;
    if (conclude(c, &d) == SMTP_PENDING)
        return;
    smtp_server_resume(c->session, &d); /* may start the next check, or close c: */
    server_conn_update(c);                 /* nothing of lim is used after this */
}

static enum smtp_verdict start(struct server_conn *c, enum check check, struct smtp_decision *d)
{
    struct server_limits *lim = c->limits;
    lim->check = check;
    lim->decision = *d;
    lim->next = 0;
    if (!run(c))
        return SMTP_PENDING;
    return conclude(c, d);
}

static void add_step(struct server_limits *lim, enum step_kind kind,
                     const struct policy_plan_limit *l, uint64_t amount)
{
    if (lim->n_steps < STEPS_MAX)
        lim->steps[lim->n_steps++] = (struct step){.kind = kind, .limit = l, .amount = amount};
}

/* ---- the checks -------------------------------------------------------------------------- */

/* Nothing is configured that counts: no state, no cost. */
static bool nothing_counted(const struct policy_config *cfg)
{
    return cfg->n_plans == 0 && !cfg->greylist.on;
}

/* A message larger than a bytes limit of its plan can never be sent under it: that is a size
 * refusal (552 5.3.4), not a "try again after". */
static bool over_message_size(const struct policy_plan *p, uint64_t size)
{
    if (p->max_message_size > 0 && size > p->max_message_size)
        return true;
    for (size_t i = 0; i < p->n_limits; i++)
        if (p->limits[i].metric == POLICY_PLAN_BYTES && size > p->limits[i].limit)
            return true;
    return false;
}

static void find_account(struct server_conn *c, struct policy_account *a)
{
    const char *user = smtp_server_auth_user(c->session);
    struct sockaddr_storage ss;
    if (user)
        policy_account_for_user(c->srv->cfg, user, a);
    else if (client_address(c, &ss))
        policy_account_for_address(c->srv->cfg, (const struct sockaddr *)&ss, a);
    else
        memset(a, 0, sizeof *a);
}

enum smtp_verdict server_limits_mail(struct server_conn *c, const struct smtp_command *cmd,
                                  struct smtp_decision *d)
{
    if (nothing_counted(c->srv->cfg))
        return SMTP_DECIDED;
    struct server_limits *lim = limits_of(c);
    if (!lim) {
        d->reply = REPLY_INTERNAL_ERROR;
        return SMTP_DECIDED;
    }
    find_account(c, &lim->account);
    copy_string(lim->sender, sizeof lim->sender, cmd->path.is_null ? "" : cmd->path.mailbox);
    lim->size_counted = false;
    lim->n_steps = 0;
    const struct policy_plan *p = lim->account.plan;
    if (!p)
        return SMTP_DECIDED;
    if (cmd->has_size && over_message_size(p, cmd->size)) {
        d->reply = REPLY_SIZE_EXCEEDED;
        return SMTP_DECIDED;
    }
    for (size_t i = 0; i < p->n_limits; i++) {
        const struct policy_plan_limit *l = &p->limits[i];
        if (l->metric == POLICY_PLAN_MESSAGES)
            add_step(lim, STEP_PLAN, l, 1);
        else if (l->metric == POLICY_PLAN_BYTES && cmd->has_size)
            add_step(lim, STEP_PLAN, l, cmd->size);
    }
    lim->size_counted = cmd->has_size;
    return start(c, CHECK_MAIL, d);
}

/* Greylisting is for strangers: MX clients without AUTH; mail to the postmaster always goes
 * through (RFC 5321 §4.5.1: it must be reachable). */
static bool greylisted(const struct server_conn *c, const struct smtp_command *cmd)
{
    return c->srv->cfg->greylist.on && c->listener->conf->kind == POLICY_LISTEN_MX &&
           !smtp_server_auth_user(c->session) && !cmd->path.is_postmaster &&
           strcasecmp(cmd->path.local, "postmaster") != 0;
}

enum smtp_verdict server_limits_rcpt(struct server_conn *c, const struct smtp_command *cmd,
                                  struct smtp_decision *d)
{
    struct server_limits *lim = c->limits;
    if (!lim || nothing_counted(c->srv->cfg))
        return SMTP_DECIDED;
    const struct policy_plan *p = lim->account.plan;
    if (p && p->max_recipients > 0 && smtp_server_rcpt_count(c->session) >= p->max_recipients) {
        d->reply = REPLY_TOO_MANY_RCPTS;
        return SMTP_DECIDED;
    }
    lim->n_steps = 0;
    if (greylisted(c, cmd)) {
        copy_string(lim->rcpt, sizeof lim->rcpt, cmd->path.mailbox);
        add_step(lim, STEP_GREY, NULL, 1);
    }
    for (size_t i = 0; p && i < p->n_limits; i++)
        if (p->limits[i].metric == POLICY_PLAN_RECIPIENTS)
            add_step(lim, STEP_PLAN, &p->limits[i], 1);
    if (lim->n_steps == 0)
        return SMTP_DECIDED;
    return start(c, CHECK_RCPT, d);
}

enum smtp_verdict server_limits_data_end(struct server_conn *c, struct smtp_decision *d)
{
    struct server_limits *lim = c->limits;
    const struct policy_plan *p = lim ? lim->account.plan : NULL;
    if (!p)
        return server_transaction_commit(c);
    if (over_message_size(p, c->msg_size)) {
        server_transaction_discard(c);
        d->reply = REPLY_SIZE_EXCEEDED;
        return SMTP_DECIDED;
    }
    lim->n_steps = 0;
    for (size_t i = 0; i < p->n_limits && !lim->size_counted; i++)
        if (p->limits[i].metric == POLICY_PLAN_BYTES)
            add_step(lim, STEP_PLAN, &p->limits[i], c->msg_size);
    d->reply = REPLY_QUEUED; /* stands for "passed": the commit gives the real reply */
    return start(c, CHECK_DATA_END, d);
}

bool server_limits_connect(struct server_conn *c, enum reply_id *admission)
{
    *admission = REPLY_OK;
    if (c->srv->cfg->max_sessions_per_minute_per_ip == 0)
        return true;
    struct server_limits *lim = limits_of(c);
    if (!lim)
        return true; /* out of memory: this limit is protection, not a promise */
    lim->n_steps = 0;
    add_step(lim, STEP_SESSION, NULL, 1);
    lim->check = CHECK_CONNECT;
    lim->decision.reply = REPLY_OK;
    lim->next = 0;
    if (!run(c))
        return false;
    *admission = lim->decision.reply;
    return true;
}

/* A token bucket of one second's worth of commands, refilled continuously: a client may burst
 * up to the rate, then goes at the rate; the commands it sends beyond wait in the session. */
uint64_t server_limits_command_rate(struct server_conn *c, bool *refuse)
{
    uint64_t rate = c->srv->cfg->max_commands_per_second;
    *refuse = false;
    if (rate == 0)
        return 0;
    uint64_t now = server_now_ms(), total = smtp_server_commands(c->session);
    uint64_t full = rate * 1000;
    if (!c->rate_started) {
        c->rate_started = true;
        c->rate_tokens = full;
        c->rate_last_ms = now;
        c->rate_commands = total;
    }
    uint64_t spent = (total - c->rate_commands) * 1000;
    c->rate_tokens = c->rate_tokens > spent ? c->rate_tokens - spent : 0;
    c->rate_commands = total;
    c->rate_tokens += (now - c->rate_last_ms) * rate;
    if (c->rate_tokens > full)
        c->rate_tokens = full;
    c->rate_last_ms = now;
    smtp_server_set_command_limit(c->session, total + c->rate_tokens / 1000);
    if (!smtp_server_command_limited(c->session)) {
        c->rate_over_since_ms = 0;
        return 0;
    }
    if (c->rate_over_since_ms == 0)
        c->rate_over_since_ms = now;
    else if (now - c->rate_over_since_ms >= RATE_GIVE_UP_MS)
        *refuse = true;
    /* the commands just allowed used their whole tokens: the next one is this far away */
    return (1000 - c->rate_tokens % 1000 + rate - 1) / rate;
}

const char *server_limits_plan(const struct server_conn *c)
{
    return c->limits && c->limits->account.plan ? c->limits->account.plan->name : NULL;
}
