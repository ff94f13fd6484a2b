/* deliver/agent.c — the delivery agent: one attempt at a time per message, one connection at a
 * time per next hop, outcomes durable after each transaction, retries, bounces and the delay
 * warning. RFC 5321 §4.5.4 (retry), §6.1 (never bounce <>), §4.5.3.1.10 (452 too many
 * recipients). Routing is in agent_route.c, reports in agent_dsn.c, pacing in agent_pace.c,
 * `clearmta queue` in agent_admin.c. */
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deliver/agent_internal.h"
#include "deliver/metrics.h"
#include "policy/counters.h"
#include "reply/explain.h"
#include "reply/safe_text.h"
#include "store/flags.h"
#include "base/clock.h"
#include "store/lazysync.h"

void deliver_agent_logf(struct deliver_agent *a, const char *fmt, ...)
{
    if (a->o.log == NULL)
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap); /* a truncated line is still worth logging */
    va_end(ap);
    a->o.log(a->o.log_ctx, line);
}

uint64_t deliver_agent_random(struct deliver_agent *a)
{
    a->rng ^= a->rng << 13; /* xorshift64: spreading retries needs no cryptography */
    a->rng ^= a->rng >> 7;
    a->rng ^= a->rng << 17;
    return a->rng;
}

int64_t deliver_agent_now(void)
{
    return base_clock_steady(); /* ages, retries and backoffs never jump with the clock */
}

void deliver_agent_opts_from_config(struct deliver_agent_opts *o, const struct policy_config *cfg)
{
    o->cfg = cfg;
    o->retry = (struct deliver_retry_policy){
        .first_s = cfg->retry_first,
        .max_interval_s = cfg->retry_max,
        .lifetime_s = cfg->queue_lifetime,
        .delay_warning_s = cfg->delay_warning,
    };
    o->connect_timeout_s = cfg->delivery_timeout_connect;
    o->command_timeout_s = cfg->delivery_timeout_command;
    o->data_timeout_s = cfg->delivery_timeout_data;
    /* Backoffs follow the retry schedule, so a fast test config backs off fast too. */
    o->destination = cfg->retry_first < deliver_destination_defaults.backoff_first_s
                         ? deliver_destination_fast
                         : deliver_destination_defaults;
    o->destination.messages_per_connection = cfg->max_messages_per_connection;
    o->idle_timeout_s = cfg->connection_idle_timeout;
    o->max_connections = cfg->max_outbound_connections;
}

void deliver_agent_set_config(struct deliver_agent *a, const struct policy_config *cfg)
{
    a->o.cfg = cfg;
}

/* ---- outcomes ---- */

static void set_state(struct rcpt_out *rc, enum store_rcpt_state st, struct reply_status s,
                      const char *diag)
{
    rc->st = st;
    rc->status = s;
    snprintf(rc->diag, sizeof rc->diag, "%s", diag);
}

static enum store_rcpt_state state_of_use(enum reply_outcome_use use)
{
    switch (use) {
    case REPLY_USE_SENT:
        return STORE_RCPT_SENT;
    case REPLY_USE_DEFER:
        return STORE_RCPT_DEFERRED;
    case REPLY_USE_BOUNCE:
    case REPLY_USE_EXPIRE:
        break;
    }
    return STORE_RCPT_BOUNCED;
}

void deliver_agent_set_outcome(struct rcpt_out *rc, enum reply_outcome o, const char *diag)
{
    set_state(rc, state_of_use(reply_outcome_get(o)->use), reply_outcome_status(o), diag);
}

/* The outcome a reply gives: 2xx sent, 4xx deferred, 5xx bounced; the status is the reply's
 * own enhanced code, else the row of its class (RFC 3463 §3: X.0.0). */
static void outcome_from_reply(struct rcpt_out *rc, const struct reply_parsed *r)
{
    int cls = r->code / 100;
    struct reply_status s = r->status.cls == cls ? r->status
                                                 : reply_outcome_status(reply_outcome_of_class(cls));
    char diag[AGENT_DIAG_MAX];
    if (r->status.cls != 0)
        snprintf(diag, sizeof diag, "%d %d.%d.%d %s", r->code, r->status.cls,
                 r->status.subject, r->status.detail, r->text);
    else
        snprintf(diag, sizeof diag, "%d %s", r->code, r->text);
    set_state(rc, cls == 2 ? STORE_RCPT_SENT : cls == 5 ? STORE_RCPT_BOUNCED : STORE_RCPT_DEFERRED,
              s, diag);
}

/* The outcome of a failure without a reply; why: the connection's own reason, or "". */
static void outcome_from_failure(struct rcpt_out *rc, enum smtp_client_failure f,
                                 const char *why)
{
    const char *text = why[0] ? why : smtp_client_strerror(f);
    enum reply_outcome o = OUTCOME_CONNECTION_LOST;
    switch (f) {
    case SMTP_CLIENT_TOO_BIG:
        o = OUTCOME_TOO_BIG;
        break;
    case SMTP_CLIENT_NEEDS_SMTPUTF8:
        o = OUTCOME_NEEDS_SMTPUTF8;
        break;
    case SMTP_CLIENT_BAD_ENVELOPE:
        o = OUTCOME_BAD_ENVELOPE;
        break;
    case SMTP_CLIENT_TLS_UNAVAILABLE:
        o = OUTCOME_TLS_UNAVAILABLE;
        break;
    case SMTP_CLIENT_AUTH_UNAVAILABLE:
        o = OUTCOME_AUTH_UNAVAILABLE;
        break;
    case SMTP_CLIENT_PROTOCOL:
        o = OUTCOME_PROTOCOL_ERROR;
        break;
    case SMTP_CLIENT_REPLY:
    case SMTP_CLIENT_NO_RECIPIENTS:
    case SMTP_CLIENT_TIMEOUT:
    case SMTP_CLIENT_CLOSED:
        break;
    }
    deliver_agent_set_outcome(rc, o, text);
}

/* The outcome of a step of delivery d; a reply names d's host as the Remote-MTA. */
static void outcome_from_result(struct delivery *d, struct rcpt_out *rc,
                                const struct smtp_client_result *r, const char *why)
{
    if (r->failure == SMTP_CLIENT_REPLY && r->reply != NULL) {
        outcome_from_reply(rc, r->reply);
        rc->remote_mta = d->host;
        deliver_metrics_remote_reply(d->dest, r->reply);
    } else {
        outcome_from_failure(rc, r->failure, why);
    }
}

static const char *state_word(enum store_rcpt_state st)
{
    return st == STORE_RCPT_SENT ? "sent" : st == STORE_RCPT_BOUNCED ? "bounced" : "deferred";
}

/* The log line of one recipient's attempt. The reply is explained as its log line shows it:
 * one line, control bytes escaped. */
static void log_outcome(struct attempt *at, const struct rcpt_out *rc)
{
    struct deliver_agent *a = at->job->a;
    char diag[4 * AGENT_DIAG_MAX], input[sizeof diag + 16];
    reply_safe_text_buf(rc->diag, strlen(rc->diag), " ", diag, sizeof diag);
    snprintf(input, sizeof input, "%d.%d.%d %s", rc->status.cls, rc->status.subject,
             rc->status.detail, rc->expired ? "" : diag);
    struct reply_explanation ex;
    const char *reason = "undefined";
    if (rc->st == STORE_RCPT_SENT)
        reason = "delivered";
    else if (reply_explain(input, strlen(input), &ex) == REPLY_EXPLAIN_OK)
        reason = reply_reason_name(ex.reason);
    const struct store_qf *qf = &at->m.qf;
    deliver_agent_logf(a, "%s: to=<%s>, relay=%s, delay=%llds, attempt=%u, dsn=%d.%d.%d, "
                          "status=%s (%s) reason=%s",
                       qf->id, qf->env.rcpts[rc->idx].address, rc->relay ? rc->relay : "none",
                       (long long)(deliver_agent_now() - qf->env.arrival), at->job->attempts,
                       rc->status.cls, rc->status.subject, rc->status.detail,
                       state_word(rc->st), diag, reason ? reason : "undefined");
    deliver_metrics_outcome(state_word(rc->st), reason ? reason : "undefined");
}

/* What `queue list` shows of rc until the next attempt. */
static void remember(struct job *j, const struct rcpt_out *rc)
{
    if (rc->idx >= j->n_info)
        return;
    struct rcpt_info *info = &j->info[rc->idx];
    info->attempts++;
    info->last_status = rc->status;
    free(info->last_reply);
    info->last_reply = strdup(rc->diag); /* NULL when out of memory: shown as "" */
}

/* Logs the outcomes of rcs[0..n) not yet recorded and writes the final ones to the queue
 * file, durably, before the delivery moves on. */
static void record(struct attempt *at, struct rcpt_out **rcs, size_t n)
{
    size_t *idx = at->idx;
    enum store_rcpt_state *st = at->st;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct rcpt_out *rc = rcs[i];
        if (rc->recorded || rc->st == STORE_RCPT_PENDING)
            continue;
        rc->recorded = true;
        at->recorded_any = true;
        log_outcome(at, rc);
        remember(at->job, rc);
        if (rc->st != STORE_RCPT_DEFERRED) {
            idx[k] = rc->idx;
            st[k++] = rc->st;
        }
    }
    if (k == 0)
        return;
    bool removed;
    struct deliver_agent *a = at->job->a;
    enum store_err err = store_remote_record(a->dir_fd, &at->m, idx, st, k, &removed);
    store_lazysync_request(a->outcome_sync);
    if (err != STORE_OK) {
        at->record_failed = true;
        deliver_agent_logf(a, "%s: cannot record delivery outcome (%s): it may be repeated",
                           at->m.qf.id, store_strerror(err));
    }
    if (removed && (at->job->held || at->job->warned))
        store_flags_forget(a->flags_fd, at->m.qf.id); /* else none to forget (cached flags) */
}

/* Records every outcome of the attempt not yet recorded. */
static void record_all(struct attempt *at)
{
    for (size_t i = 0; i < at->n_rc; i++)
        at->list[i] = &at->rc[i];
    record(at, at->list, at->n_rc);
}

/* ---- jobs ---- */

static void job_fire(evutil_socket_t fd, short what, void *arg);

struct job *deliver_agent_job_find(struct deliver_agent *a, const char *id)
{
    for (struct job *j = a->jobs; j != NULL; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}

static void attempt_free(struct attempt *at)
{
    for (struct delivery *d = at->dl, *next; d != NULL; d = next) {
        next = d->next;
        deliver_agent_delivery_free(d);
    }
    store_remote_close_deferred(&at->m, at->job->a->outcome_sync);
    free(at->rc);
    free(at->list);
    free(at->idx);
    free(at->st);
    free(at);
}

void deliver_agent_job_abort(struct job *j)
{
    if (j->at != NULL)
        attempt_free(j->at);
    j->at = NULL;
}

void deliver_agent_job_free(struct job *j)
{
    struct deliver_agent *a = j->a;
    deliver_agent_unblock_job(j);
    deliver_agent_job_abort(j);
    if (j->prev)
        j->prev->next = j->next;
    else
        a->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    event_free(j->timer);
    for (size_t i = 0; i < j->n_info; i++)
        free(j->info[i].last_reply);
    free(j->info);
    free(j);
}

void deliver_agent_job_schedule(struct job *j, uint64_t seconds)
{
    struct timeval tv = {.tv_sec = (time_t)seconds};
    evtimer_add(j->timer, &tv);
    j->next_try = deliver_agent_now() + (int64_t)seconds;
}

void deliver_agent_job_cancel(struct job *j)
{
    evtimer_del(j->timer);
    j->next_try = 0;
}

#ifdef CLEARMTA_TESTING
/* Connections to dest held by deliveries and by the idle list (what its in_use must count),
 * and deliveries woken to take one, about to try. */
static unsigned connections_held(const struct deliver_agent *a, const char *dest,
                                 unsigned *woken)
{
    unsigned n = 0;
    *woken = 0;
    for (const struct job *j = a->jobs; j != NULL; j = j->next)
        for (const struct delivery *d = j->at ? j->at->dl : NULL; d != NULL; d = d->next) {
            if (strcmp(d->dest, dest) != 0)
                continue;
            n += d->acquired;
            *woken += d->wake != NULL && event_pending(d->wake, EV_TIMEOUT, NULL);
        }
    for (const struct idle_conn *ic = a->idle; ic != NULL; ic = ic->next)
        n += strcmp(ic->dest, dest) == 0;
    return n;
}

/* A delivery waiting for a connection is woken when one of its destination's connections is
 * given back: one must be open or about to be, and each counted one must exist, or nothing
 * ever wakes it. */
static void check_waiters(struct deliver_agent *a)
{
    const char *checked = NULL; /* waiters mostly share a destination: one count will do */
    for (const struct delivery *w = a->waiters; w != NULL; w = w->wnext) {
        if (checked != NULL && strcmp(checked, w->dest) == 0)
            continue;
        checked = w->dest;
        const struct deliver_destination *dst = deliver_destination_table_find(a->dests, w->dest);
        unsigned woken, held = connections_held(a, w->dest, &woken);
        /* a waiter for a global place is woken by any connection given back */
        bool global = w->waiting_global && a->out_open + a->out_woken > 0;
        if (dst != NULL && (held + woken > 0 || global) && held == dst->in_use)
            continue;
        deliver_agent_logf(a, "%s: BUG: waits for a connection to %s that nothing will give "
                              "back (%u counted open, %u held; %s, %u open in all, %u woken)",
                           w->at->m.qf.id, w->dest, dst ? dst->in_use : 0, held,
                           w->waiting_global ? "for a global place" : "for its destination",
                           a->out_open, a->out_woken);
        abort();
    }
}
#endif

void deliver_agent_check_schedules(struct deliver_agent *a)
{
#ifdef CLEARMTA_TESTING
    for (const struct job *j = a->jobs; j != NULL; j = j->next) {
        if (j->held || j->at != NULL || evtimer_pending(j->timer, NULL))
            continue;
        deliver_agent_logf(a, "%s: BUG: no attempt running and no next try scheduled", j->id);
        abort();
    }
    check_waiters(a);
#else
    (void)a;
#endif
}

bool deliver_agent_submit(struct deliver_agent *a, const char *queue_id)
{
    if (!store_qf_valid_id(queue_id, strlen(queue_id)))
        return false;
    struct job *j = deliver_agent_job_find(a, queue_id);
    if (j != NULL) {
        if (j->at != NULL)
            j->again = true;
        else
            deliver_agent_job_schedule(j, 0);
        return true;
    }
    j = calloc(1, sizeof *j);
    if (j == NULL || (j->timer = evtimer_new(a->o.base, job_fire, j)) == NULL) {
        free(j);
        return false;
    }
    j->a = a;
    memcpy(j->id, queue_id, STORE_ID_LEN + 1);
    j->held = store_flags_get(a->flags_fd, j->id, STORE_FLAG_HOLD);
    j->warned = store_flags_get(a->flags_fd, j->id, STORE_FLAG_WARNED);
    j->next = a->jobs;
    if (a->jobs)
        a->jobs->prev = j;
    a->jobs = j;
    deliver_agent_job_schedule(j, 0);
    return true;
}

/* ---- the end of an attempt ---- */

/* Recipients still deferred when the queue lifetime is over bounce with 4.4.7, keeping the
 * last reply as the diagnostic. True when any recipient stays deferred. */
static bool expire(struct attempt *at, int64_t now, bool *expired)
{
    struct deliver_agent *a = at->job->a;
    *expired = deliver_retry_expired(&a->o.retry, at->m.qf.env.arrival, now);
    bool deferred = false;
    struct rcpt_out **late = at->list;
    size_t n_late = 0;
    for (size_t i = 0; i < at->n_rc; i++) {
        struct rcpt_out *rc = &at->rc[i];
        if (rc->st != STORE_RCPT_DEFERRED && rc->st != STORE_RCPT_PENDING)
            continue;
        if (!*expired) {
            deferred = true;
            continue;
        }
        char diag[AGENT_DIAG_MAX];
        snprintf(diag, sizeof diag, "%s", rc->diag);
        deliver_agent_set_outcome(rc, OUTCOME_EXPIRED, diag[0] ? diag : "delivery time expired");
        rc->recorded = false;
        rc->expired = true;
        late[n_late++] = rc;
    }
    if (n_late > 0)
        deliver_agent_logf(a, "%s: queue lifetime of %u s over: giving up on %zu recipient(s)",
                           at->m.qf.id, a->o.retry.lifetime_s, n_late);
    record(at, late, n_late);
    return deferred;
}

/* The attempt is over: expire what is too old, bounce, warn, and schedule the next attempt. */
static void attempt_end(struct attempt *at)
{
    struct job *j = at->job;
    struct deliver_agent *a = j->a;
    int64_t now = deliver_agent_now();
    bool expired;
    bool deferred = expire(at, now, &expired);
    deliver_agent_send_bounce(at);
    deliver_agent_send_relayed(at);
    if (deferred && deliver_retry_warn_delay(&a->o.retry, at->m.qf.env.arrival, now, j->warned))
        deliver_agent_send_delay_warning(at);
    int64_t not_before = at->not_before;
    bool postponed = at->postponed, recorded = at->recorded_any;
    bool record_failed = at->record_failed, removed = at->m.removed;
    memcpy(j->blocked_on, at->postponed_on, sizeof j->blocked_on);
    attempt_free(at);
    j->at = NULL;
    if (removed) { /* every recipient settled and the file gone: no sweep to run */
        deliver_agent_job_free(j);
        deliver_agent_check_schedules(a);
        return;
    }
    if (postponed && !recorded && j->attempts > 0)
        j->attempts--; /* nothing was tried: not an attempt */
    uint64_t wait = deliver_retry_next(&a->o.retry, j->attempts, deliver_agent_random(a));
    if (j->held) {
        deliver_agent_job_cancel(j);
    } else if (j->again) {
        j->again = false;
        deliver_agent_job_schedule(j, 0);
    } else if (postponed && deferred) {
        /* Tried again when a waiter's room is free, and by the retry schedule at the latest,
         * should that never come. */
        deliver_agent_block(j);
        deliver_agent_job_schedule(j, wait);
    } else if (deferred) {
        if (not_before > now && (uint64_t)(not_before - now) > wait)
            wait = (uint64_t)(not_before - now);
        deliver_agent_job_schedule(j, wait);
    } else {
        /* The sweep: the file goes once nothing is pending. When an outcome could not be
         * written the file still names the recipient pending, and the sweep would deliver it
         * again at once, in a loop while the fault lasts: it waits the retry delay instead
         * (a repetition per retry, as the log line says). */
        deliver_agent_job_schedule(j, record_failed ? wait : 0);
    }
    deliver_agent_check_schedules(a);
}

void deliver_agent_attempt_release(struct attempt *at)
{
    if (--at->running == 0)
        attempt_end(at);
}

/* ---- one connection of a delivery ---- */

static struct deliver_destination *d_dest(struct delivery *d)
{
    return deliver_destination_table_find(d->at->job->a->dests, d->dest);
}

static struct rcpt_out *d_rcpt(struct delivery *d, size_t i)
{
    return &d->at->rc[d->map[i]];
}

void deliver_agent_delivery_done(struct delivery *d)
{
    deliver_agent_dest_release(d);
    struct rcpt_out **rcs = d->at->list;
    for (size_t i = 0; i < d->n; i++)
        rcs[i] = d_rcpt(d, i);
    record(d->at, rcs, d->n);
    deliver_agent_attempt_release(d->at);
}

void deliver_agent_delivery_finished(void *ctx)
{
    struct delivery *d = ctx;
    deliver_outbound_free(d->out);
    d->out = NULL;
    if (d->reconnect) {
        d->reconnect = false;
        deliver_agent_delivery_reconnect(d);
        return;
    }
    if (d->next_candidate && deliver_agent_delivery_next(d))
        return;
    deliver_agent_delivery_done(d);
}

static void d_ready(void *ctx, const struct smtp_client_caps *caps)
{
    struct delivery *d = ctx;
    d->mailmax = caps->mailmax;
    d->relay_reports = !caps->dsn;
    d->ready = true;
    d->first = 0;
    struct deliver_destination *dst = d_dest(d);
    if (dst != NULL) {
        deliver_destination_on_connected(dst);
        /* An unreachable destination gets its connections back: the waiters behind this one
         * may go now, not when its message is done, which may take long. */
        deliver_agent_wake_waiters(d->at->job->a, dst);
    }
    smtp_client_send(deliver_outbound_session(d->out), &d->msg, 0);
}

static void d_rcpt_result(void *ctx, size_t i, const struct smtp_client_result *r)
{
    struct delivery *d = ctx;
    d->answered = true;
    if (i >= d->n)
        return;
    bool ok = r->failure == SMTP_CLIENT_REPLY && r->reply && r->reply->code / 100 == 2;
    if (!ok)
        outcome_from_result(d, d_rcpt(d, i), r, "");
    struct deliver_destination *dst = d_dest(d);
    if (r->reply && !ok && dst)
        deliver_destination_on_reply(dst, r->reply, d->conn_messages, deliver_agent_now());
}

/* LMTP (RFC 2033 §4.2): the reply after the message data for one recipient is its outcome:
 * delivered, deferred (452 4.2.2 mailbox full) or bounced (552 5.2.2), like any reply. */
static void d_data_rcpt_result(void *ctx, size_t i, const struct smtp_client_result *r)
{
    struct delivery *d = ctx;
    d->answered = true;
    if (i < d->n)
        outcome_from_result(d, d_rcpt(d, i), r, "");
}

static void d_message_result(void *ctx, const struct smtp_client_result *r, size_t n_tried)
{
    struct delivery *d = ctx;
    struct deliver_destination *dst = d_dest(d);
    d->answered = true;
    if (n_tried > d->n)
        n_tried = d->n;
    struct rcpt_out **rcs = d->at->list;
    size_t k = 0;
    for (size_t i = d->first; i < n_tried; i++) {
        struct rcpt_out *rc = d_rcpt(d, i);
        if (rc->st == STORE_RCPT_PENDING && r->failure != SMTP_CLIENT_NO_RECIPIENTS)
            outcome_from_result(d, rc, r, deliver_outbound_error(d->out));
        rc->relayed = rc->st == STORE_RCPT_SENT && d->relay_reports;
        rcs[k++] = rc;
    }
    if (r->reply && dst)
        deliver_destination_on_reply(dst, r->reply, d->conn_messages, deliver_agent_now());
    bool accepted = r->reply && r->reply->code / 100 == 2;
    if (accepted)
        d->conn_messages++;
    d->last_sent = accepted;
    for (size_t i = 0; i < k; i++)
        d->last_sent = d->last_sent && rcs[i]->st == STORE_RCPT_SENT;
    record(d->at, rcs, k);
    struct smtp_client *s = deliver_outbound_session(d->out);
    if (n_tried > d->first && n_tried < d->n && !smtp_client_done(s)) {
        d->first = n_tried; /* "too many recipients": the rest in a further transaction */
        smtp_client_send(s, &d->msg, n_tried);
        return;
    }
    if (dst != NULL)
        deliver_agent_wake_waiters(d->at->job->a, dst); /* room for more connections? */
    if (deliver_agent_hand_over(d)) {
        deliver_agent_delivery_done(d); /* the connection lives on with the next message */
        return;
    }
    smtp_client_quit(s);
}

/* Why the connection to the current candidate failed. */
static void candidate_failure(struct delivery *d, char *text, size_t cap)
{
    const char *err = deliver_outbound_error(d->out);
    if (deliver_outbound_connect_failed(d->out))
        snprintf(text, cap, "connect to %s: %s", d->relay, err);
    else
        snprintf(text, cap, "%s", err);
}

/* The diagnostic of a failed connection: with several addresses tried, says so. */
static void failure_text(struct delivery *d, char *text, size_t cap)
{
    char last[AGENT_DIAG_MAX - DELIVER_DESTINATION_NAME_MAX - 128]; /* room for the prefix */
    candidate_failure(d, last, sizeof last);
    if (d->n_cand > 1 && !d->ready)
        snprintf(text, cap, "no connection to any of the %zu addresses of %s; last: %s",
                 d->n_cand, d->dest, last);
    else
        snprintf(text, cap, "%s", last);
}

/* The session ended before EHLO was done: connect failure, timeout, TLS failure or a refusing
 * greeting or EHLO. True when the next address is to be tried instead (RFC 5321 §5.1). */
static bool try_next(struct delivery *d, const struct smtp_client_result *why)
{
    if (d->ready || d->cur + 1 >= d->n_cand)
        return false;
    char text[AGENT_DIAG_MAX];
    if (why->reply != NULL)
        snprintf(text, sizeof text, "%d %s", why->reply->code, why->reply->text);
    else
        candidate_failure(d, text, sizeof text);
    deliver_agent_logf(d->at->job->a, "%s: %s: %s; trying the next address", d->at->m.qf.id,
                       d->relay, text);
    d->next_candidate = true;
    return true;
}

static void d_closed(void *ctx, const struct smtp_client_result *why)
{
    struct delivery *d = ctx;
    if (try_next(d, why))
        return;
    if (d->reused && !d->answered && why->reply == NULL) {
        /* The peer closed the connection while it idled, before our message: not the
         * message's failure nor the destination's; a new connection takes it. */
        d->reconnect = true;
        return;
    }
    struct deliver_destination *dst = d_dest(d);
    int64_t now = deliver_agent_now();
    const char *err = deliver_outbound_error(d->out);
    bool connect_failed = deliver_outbound_connect_failed(d->out);
    bool verify_failed = deliver_outbound_verify_failed(d->out);
    if (dst && (connect_failed || verify_failed))
        deliver_destination_on_connect_failed(dst, err, now);
    else if (dst && why->reply && why->reply->code / 100 != 2)
        deliver_destination_on_reply(dst, why->reply, d->conn_messages, now);
    char text[AGENT_DIAG_MAX];
    failure_text(d, text, sizeof text);
    struct rcpt_out **rcs = d->at->list;
    size_t k = 0;
    for (size_t i = 0; i < d->n; i++) {
        struct rcpt_out *rc = d_rcpt(d, i);
        if (rc->st != STORE_RCPT_PENDING)
            continue;
        if (why->reply && why->reply->code / 100 == 2) /* QUIT answered: never sent */
            deliver_agent_set_outcome(rc, OUTCOME_NOT_SENT, "not sent");
        else if (verify_failed)
            deliver_agent_set_outcome(rc, OUTCOME_TLS_VERIFY_FAILED, text);
        else if (connect_failed)
            deliver_agent_set_outcome(rc, OUTCOME_NO_CONNECTION, text);
        else
            outcome_from_result(d, rc, why, text);
        if (rc->st != STORE_RCPT_DEFERRED) { /* the session ended before it: never final */
            rc->st = STORE_RCPT_DEFERRED;
            rc->status.cls = 4;
        }
        rcs[k++] = rc;
    }
    record(d->at, rcs, k);
}

const struct smtp_client_callbacks deliver_agent_client_cb = {
    .ready = d_ready, .rcpt_result = d_rcpt_result, .message_result = d_message_result,
    .data_rcpt_result = d_data_rcpt_result, .closed = d_closed};

/* ---- starting an attempt ---- */

static bool attempt_load(struct job *j, struct attempt *at, bool *drop)
{
    bool gone = false;
    enum store_err err = store_remote_load(j->a->dir_fd, j->id, &at->m, &gone);
    *drop = gone || err == STORE_ERR_CORRUPT;
    if (err != STORE_OK) {
        deliver_agent_logf(j->a, "%s: cannot read queue file for delivery: %s", j->id,
                           store_strerror(err));
        return false;
    }
    if (gone)
        return false;
    const struct store_qf *qf = &at->m.qf;
    size_t n = qf->env.n_rcpts;
    at->rc = calloc(n, sizeof *at->rc);
    at->list = calloc(n, sizeof *at->list);
    at->idx = calloc(n, sizeof *at->idx);
    at->st = calloc(n, sizeof *at->st);
    if (j->info == NULL && (j->info = calloc(n, sizeof *j->info)) != NULL)
        j->n_info = n;
    if (!at->rc || !at->list || !at->idx || !at->st)
        return false;
    for (size_t i = 0; i < qf->env.n_rcpts; i++)
        if (store_remote_pending(qf, i))
            at->rc[at->n_rc++].idx = i;
    *drop = at->n_rc == 0;
    return at->n_rc > 0;
}

/* Nothing is left for us: remove the file if nothing is pending for the local runner either.
 * Both writers decide under the file's lock from the states on disk, so whichever finishes
 * last removes it. */
static void sweep(struct job *j, struct attempt *at)
{
    bool removed = false;
    if (at->m.fd >= 0) {
        store_remote_record(j->a->dir_fd, &at->m, NULL, NULL, 0, &removed);
        store_lazysync_request(j->a->outcome_sync);
    }
    if (removed)
        store_flags_forget(j->a->flags_fd, j->id);
}

static void job_fire(evutil_socket_t fd, short what, void *arg)
{
    struct job *j = arg;
    (void)fd;
    (void)what;
    j->next_try = 0;
    deliver_agent_unblock_job(j); /* fired by a flush or a submit meanwhile */
    if (j->at != NULL || j->held)
        return; /* a held message waits for `queue release` */
    struct attempt *at = calloc(1, sizeof *at);
    bool drop = false;
    struct deliver_agent *a = j->a;
    if (at == NULL) {
        deliver_agent_job_schedule(j, deliver_retry_next(&a->o.retry, j->attempts,
                                                         deliver_agent_random(a)));
        return;
    }
    at->job = j;
    at->m.fd = -1;
    j->again = false;
    if (!attempt_load(j, at, &drop)) {
        if (drop)
            sweep(j, at);
        attempt_free(at);
        if (drop)
            deliver_agent_job_free(j);
        else
            deliver_agent_job_schedule(j, deliver_retry_next(&a->o.retry, ++j->attempts,
                                                             deliver_agent_random(a)));
        return;
    }
    j->at = at;
    j->attempts++;
    at->running = 1; /* held while starting, so no delivery ends the attempt early */
    if (deliver_agent_group(at))
        for (struct delivery *d = at->dl; d != NULL; d = d->next)
            deliver_agent_delivery_start(d);
    record_all(at); /* routing failures and backoffs */
    deliver_agent_attempt_release(at);
}

/* ---- life cycle ---- */

static void recover(void *ctx, const char *id)
{
    deliver_agent_submit(ctx, id);
}

/* The optional parts: TLS contexts, the resolver, the flags directory. Each missing one is a
 * warning: the agent still delivers what does not need it. */
static void open_optional(struct deliver_agent *a)
{
    char err[256];
    a->tls = deliver_outbound_tls_context(false, err, sizeof err);
    if (a->tls == NULL)
        deliver_agent_logf(a, "warning: outbound TLS unavailable: %s", err);
    a->tls_verify = deliver_outbound_tls_context(true, err, sizeof err);
    if (a->tls_verify == NULL)
        deliver_agent_logf(a, "warning: outbound TLS with verification unavailable: %s", err);
    a->resolver = deliver_resolver_new(a->o.base, a->o.cfg->resolver, 0, err, sizeof err);
    if (a->resolver == NULL)
        deliver_agent_logf(a, "warning: DNS resolver unavailable (MX routes defer): %s", err);
    enum store_err e = store_flags_open(a->dir_fd, &a->flags_fd);
    if (e != STORE_OK)
        deliver_agent_logf(a, "warning: queue flags directory: %s (hold and delay warnings "
                              "are not durable)", store_strerror(e));
    else
        store_flags_sweep(a->flags_fd, a->dir_fd);
}

struct deliver_agent *deliver_agent_new(const struct deliver_agent_opts *o, char *err,
                                        size_t errlen)
{
    struct deliver_agent *a = calloc(1, sizeof *a);
    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->o = *o;
    a->flags_fd = -1;
    deliver_agent_set_max_connections(a, o->max_connections ? o->max_connections
                                                            : DELIVER_AGENT_CONNECTIONS_DEFAULT);
    a->rng = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ull;
    enum store_err e = store_remote_open_dir(o->cfg->queue_dir, &a->dir_fd);
    if (e != STORE_OK) {
        snprintf(err, errlen, "queue directory %s/queue: %s", o->cfg->queue_dir,
                 store_strerror(e));
        free(a);
        return NULL;
    }
    if (store_lazysync_new(a->dir_fd, o->log, o->log_ctx, &a->outcome_sync) != STORE_OK) {
        snprintf(err, errlen, "cannot start the queue sync thread");
        close(a->dir_fd);
        free(a);
        return NULL;
    }
    open_optional(a);
    if (deliver_destination_table_new(&o->destination, AGENT_DESTINATIONS_MAX, &a->dests) !=
        DELIVER_DESTINATION_OK) {
        snprintf(err, errlen, "bad destination settings or out of memory");
        deliver_agent_free(a);
        return NULL;
    }
    if (store_remote_scan(a->dir_fd, recover, a) != STORE_OK)
        deliver_agent_logf(a, "warning: cannot scan the queue for remote recipients");
    return a;
}

void deliver_agent_set_counters(struct deliver_agent *a, struct policy_counters *c)
{
    a->counters = c;
}

void deliver_agent_free(struct deliver_agent *a)
{
    if (a == NULL)
        return;
    deliver_agent_idle_free_all(a);
    while (a->jobs)
        deliver_agent_job_free(a->jobs);
    deliver_destination_table_free(a->dests);
    deliver_resolver_free(a->resolver);
    policy_counters_free(a->own_counters);
    if (a->tls)
        SSL_CTX_free(a->tls);
    if (a->tls_verify)
        SSL_CTX_free(a->tls_verify);
    if (a->flags_fd >= 0)
        close(a->flags_fd);
    store_lazysync_free(a->outcome_sync); /* the last records' sync, before dir_fd goes */
    if (a->dir_fd >= 0)
        close(a->dir_fd);
    free(a);
}
