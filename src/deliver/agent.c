/* deliver/agent.c — the delivery agent: one attempt at a time per message, one connection per
 * destination, outcomes durable after each transaction, retries, bounces from <> (RFC 3464).
 * RFC 5321 §4.5.4 (retry), §6.1 (never bounce <>), §4.5.3.1.10 (452 too many recipients). */
#include <arpa/inet.h>
#include <event2/event.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deliver/agent.h"
#include "deliver/dsn.h"
#include "deliver/outbound.h"
#include "deliver/route.h"
#include "policy/recipients.h"
#include "reply/explain.h"
#include "store/remote.h"

/* Destinations remembered at once (LRU beyond): far above the hops a slice routes to. */
#define AGENT_DESTINATIONS_MAX 10000
/* Longest diagnostic kept per recipient (a reply's text is at most REPLY_TEXT_MAX). */
#define AGENT_DIAG_MAX (REPLY_TEXT_MAX + 16)
#define AGENT_RELAY_MAX (2 * LIMIT_DOMAIN + 16)

struct rcpt_out {
    size_t idx;                  /* index in the queue file */
    enum store_rcpt_state st;    /* PENDING: no outcome yet in this attempt */
    struct reply_status status;
    char diag[AGENT_DIAG_MAX];
    const char *relay;           /* the delivery's relay text */
    bool recorded;               /* logged (and written when final) */
    bool expired;                /* given up by us (4.4.7), whatever the last reply said */
};

struct attempt;

/* One destination of an attempt: one connection. */
struct delivery {
    struct attempt *at;
    struct delivery *next;
    char dest[DELIVER_DESTINATION_NAME_MAX + 1];
    char relay[AGENT_RELAY_MAX];
    struct sockaddr_storage ss;
    socklen_t sslen;
    struct smtp_client_opts copts;
    struct deliver_outbound *out;
    struct smtp_client_rcpt *crcpts;
    size_t *map; /* crcpts[i] is at->rc[map[i]] */
    size_t n;
    struct smtp_client_message msg;
    size_t first; /* first recipient of the transaction in progress */
    unsigned conn_messages;
    bool acquired;
};

struct job;

struct attempt {
    struct job *job;
    struct store_remote_msg m;
    struct rcpt_out *rc;
    size_t n_rc;
    struct delivery *dl;
    size_t running; /* deliveries whose connection is open */
    /* Scratch of n_rc entries each, for the lists record() takes and writes. */
    struct rcpt_out **list;
    size_t *idx;
    enum store_rcpt_state *st;
    int64_t not_before; /* a destination backs off until then */
};

struct job {
    struct deliver_agent *a;
    struct job *prev, *next;
    char id[STORE_ID_LEN + 1];
    unsigned attempts;
    bool again; /* submitted while an attempt ran */
    struct event *timer;
    struct attempt *at;
};

struct deliver_agent {
    struct deliver_agent_opts o;
    int dir_fd;
    SSL_CTX *tls;
    struct deliver_destination_table *dests;
    struct job *jobs;
    uint64_t rng;
};

static void agent_log(struct deliver_agent *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void agent_log(struct deliver_agent *a, const char *fmt, ...)
{
    if (a->o.log == NULL)
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    a->o.log(a->o.log_ctx, line);
}

static uint64_t next_random(struct deliver_agent *a)
{
    a->rng ^= a->rng << 13; /* xorshift64: spreading retries needs no cryptography */
    a->rng ^= a->rng >> 7;
    a->rng ^= a->rng << 17;
    return a->rng;
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
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
    /* Backoffs follow the retry schedule, so a fast test config backs off fast too. */
    o->destination = cfg->retry_first < deliver_destination_defaults.backoff_first_s
                         ? deliver_destination_fast
                         : deliver_destination_defaults;
}

/* ---- outcomes ---- */

static void set_outcome(struct rcpt_out *rc, enum store_rcpt_state st, struct reply_status s,
                        const char *diag)
{
    rc->st = st;
    rc->status = s;
    snprintf(rc->diag, sizeof rc->diag, "%s", diag);
}

static struct reply_status status_of(int cls, int subject, int detail)
{
    return (struct reply_status){.cls = cls, .subject = subject, .detail = detail};
}

/* The outcome a reply gives: 2xx sent, 4xx deferred, 5xx bounced; the status is the reply's
 * enhanced code, else X.0.0 of its class (RFC 3463 §3). */
static void outcome_from_reply(struct rcpt_out *rc, const struct reply_parsed *r)
{
    int cls = r->code / 100;
    struct reply_status s = r->status.cls == cls ? r->status : status_of(cls, 0, 0);
    char diag[AGENT_DIAG_MAX];
    if (r->status.cls != 0)
        snprintf(diag, sizeof diag, "%d %d.%d.%d %s", r->code, r->status.cls,
                 r->status.subject, r->status.detail, r->text);
    else
        snprintf(diag, sizeof diag, "%d %s", r->code, r->text);
    set_outcome(rc, cls == 2 ? STORE_RCPT_SENT
                    : cls == 5 ? STORE_RCPT_BOUNCED : STORE_RCPT_DEFERRED, s, diag);
}

/* The outcome of a failure without a reply; why: the connection's own reason, or "". */
static void outcome_from_failure(struct rcpt_out *rc, enum smtp_client_failure f,
                                 const char *why)
{
    const char *text = why[0] ? why : smtp_client_strerror(f);
    switch (f) {
    case SMTP_CLIENT_TOO_BIG:
        set_outcome(rc, STORE_RCPT_BOUNCED, status_of(5, 3, 4), text);
        return;
    case SMTP_CLIENT_NEEDS_SMTPUTF8:
        set_outcome(rc, STORE_RCPT_BOUNCED, status_of(5, 6, 7), text);
        return;
    case SMTP_CLIENT_BAD_ENVELOPE:
        set_outcome(rc, STORE_RCPT_BOUNCED, status_of(5, 1, 3), text);
        return;
    case SMTP_CLIENT_TLS_UNAVAILABLE:
        set_outcome(rc, STORE_RCPT_DEFERRED, status_of(4, 7, 4), text);
        return;
    case SMTP_CLIENT_AUTH_UNAVAILABLE:
        set_outcome(rc, STORE_RCPT_DEFERRED, status_of(4, 7, 0), text);
        return;
    case SMTP_CLIENT_PROTOCOL:
        set_outcome(rc, STORE_RCPT_DEFERRED, status_of(4, 5, 0), text);
        return;
    case SMTP_CLIENT_REPLY:
    case SMTP_CLIENT_NO_RECIPIENTS:
    case SMTP_CLIENT_TIMEOUT:
    case SMTP_CLIENT_CLOSED:
        break;
    }
    set_outcome(rc, STORE_RCPT_DEFERRED, status_of(4, 4, 2), text);
}

static void outcome_from_result(struct rcpt_out *rc, const struct smtp_client_result *r,
                                const char *why)
{
    if (r->failure == SMTP_CLIENT_REPLY && r->reply != NULL)
        outcome_from_reply(rc, r->reply);
    else
        outcome_from_failure(rc, r->failure, why);
}

static const char *state_word(enum store_rcpt_state st)
{
    return st == STORE_RCPT_SENT ? "sent" : st == STORE_RCPT_BOUNCED ? "bounced" : "deferred";
}

/* The log line of one recipient's attempt. Control bytes of the reply become spaces. */
static void log_outcome(struct attempt *at, const struct rcpt_out *rc)
{
    struct deliver_agent *a = at->job->a;
    char diag[AGENT_DIAG_MAX], input[AGENT_DIAG_MAX + 16];
    size_t n = strlen(rc->diag);
    for (size_t i = 0; i < n; i++)
        diag[i] = (unsigned char)rc->diag[i] < 0x20 || rc->diag[i] == 0x7f ? ' ' : rc->diag[i];
    diag[n] = '\0';
    snprintf(input, sizeof input, "%d.%d.%d %s", rc->status.cls, rc->status.subject,
             rc->status.detail, rc->expired ? "" : diag);
    struct reply_explanation ex;
    const char *reason = "undefined";
    if (rc->st == STORE_RCPT_SENT)
        reason = "delivered";
    else if (reply_explain(input, strlen(input), &ex) == REPLY_EXPLAIN_OK)
        reason = reply_reason_name(ex.reason);
    const struct store_qf *qf = &at->m.qf;
    agent_log(a, "%s: to=<%s>, relay=%s, delay=%llds, attempt=%u, dsn=%d.%d.%d, status=%s (%s) "
                 "reason=%s",
              qf->id, qf->env.rcpts[rc->idx].address, rc->relay ? rc->relay : "none",
              (long long)(now_s() - qf->env.arrival), at->job->attempts, rc->status.cls,
              rc->status.subject, rc->status.detail, state_word(rc->st), diag,
              reason ? reason : "undefined");
}

/* Logs the outcomes of rc[lo..hi) not yet recorded and writes the final ones to the queue
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
        log_outcome(at, rc);
        if (rc->st != STORE_RCPT_DEFERRED) {
            idx[k] = rc->idx;
            st[k++] = rc->st;
        }
    }
    if (k == 0)
        return;
    bool removed;
    enum store_err err = store_remote_record(at->job->a->dir_fd, &at->m, idx, st, k, &removed);
    if (err != STORE_OK)
        agent_log(at->job->a, "%s: cannot record delivery outcome (%s): it may be repeated",
                  at->m.qf.id, store_strerror(err));
}

/* ---- bounces ---- */

/* The mailbox of a local sender, or NULL for a remote one. */
static const char *local_mailbox(const struct policy_config *cfg, const char *address, char *out,
                                 size_t cap)
{
    const char *at = strrchr(address, '@');
    char local[LIMIT_LOCAL_PART + 1];
    if (at == NULL || (size_t)(at - address) >= sizeof local)
        return NULL;
    memcpy(local, address, (size_t)(at - address));
    local[at - address] = '\0';
    return policy_rcpt_lookup(cfg, local, at + 1, out, cap) == POLICY_RCPT_LOCAL ? out : NULL;
}

static void bounce_committed(void *ctx, enum store_err err, const char *queue_id)
{
    struct deliver_agent *a = ctx;
    if (err != STORE_OK) {
        agent_log(a, "bounce: cannot queue a bounce: %s", store_strerror(err));
        return;
    }
    agent_log(a, "%s: from=<>, bounce queued", queue_id);
    deliver_agent_submit(a, queue_id); /* does nothing unless the sender is remote */
}

static void inject_bounce(struct deliver_agent *a, const struct store_qf *qf, const char *report,
                          size_t len)
{
    char mailbox[POLICY_MAILBOX_CAP];
    struct store_rcpt rcpt = {
        .address = qf->env.sender,
        .local_user = local_mailbox(a->o.cfg, qf->env.sender, mailbox, sizeof mailbox),
        .notify = STORE_NOTIFY_NEVER,
    };
    struct store_envelope env = {.sender = "", .rcpts = &rcpt, .n_rcpts = 1,
                                 .body = STORE_BODY_8BITMIME, .arrival = now_s()};
    struct store_msg *msg = NULL;
    enum store_err err = store_msg_begin(a->o.queue, &env, &msg);
    if (err == STORE_OK)
        err = store_msg_write(msg, report, len);
    if (err != STORE_OK) {
        if (msg != NULL)
            store_msg_abort(msg);
        agent_log(a, "%s: cannot queue the bounce to <%s>: %s", qf->id, qf->env.sender,
                  store_strerror(err));
        return;
    }
    agent_log(a, "%s: sender non-delivery notification: %s", qf->id, store_msg_id(msg));
    store_msg_commit(msg, bounce_committed, a);
}

/* One report for the recipients of this attempt that bounced. Never for <> (RFC 5321 §6.1). */
static void send_bounce(struct attempt *at)
{
    struct deliver_agent *a = at->job->a;
    const struct store_qf *qf = &at->m.qf;
    struct deliver_dsn_rcpt *dr = calloc(at->n_rc, sizeof *dr);
    size_t n = 0;
    if (dr == NULL) {
        agent_log(a, "%s: cannot build the bounce: out of memory", qf->id);
        return;
    }
    for (size_t i = 0; i < at->n_rc; i++) {
        const struct rcpt_out *rc = &at->rc[i];
        if (rc->st != STORE_RCPT_BOUNCED)
            continue;
        const struct store_rcpt *r = &qf->env.rcpts[rc->idx];
        dr[n++] = (struct deliver_dsn_rcpt){
            .final_recipient = r->address, .orcpt = r->orcpt, .notify = r->notify,
            .action = DELIVER_DSN_FAILED, .status = rc->status, .remote_mta = NULL,
            .diagnostic = rc->diag, .last_attempt = now_s()};
    }
    if (n > 0 && qf->env.sender[0] == '\0')
        agent_log(a, "%s: sender is <>: no bounce for %zu failed recipient(s)", qf->id, n);
    if (n == 0 || qf->env.sender[0] == '\0') {
        free(dr);
        return;
    }
    struct deliver_dsn_input in = {
        .reporting_mta = a->o.cfg->hostname, .queue_id = qf->id, .sender = qf->env.sender,
        .envid = qf->env.envid, .ret = qf->env.ret, .arrival = qf->env.arrival,
        .message = at->m.body, .message_len = at->m.body_len, .rcpts = dr, .n_rcpts = n};
    char *report = NULL;
    size_t len = 0;
    enum deliver_dsn_err e = deliver_dsn_build(&in, now_s(), next_random(a), &report, &len);
    if (e == DELIVER_DSN_OK)
        inject_bounce(a, qf, report, len);
    else if (e != DELIVER_DSN_ERR_NOTHING_TO_REPORT)
        agent_log(a, "%s: cannot build the bounce: %s", qf->id, deliver_dsn_strerror(e));
    free(report);
    free(dr);
}

/* ---- jobs ---- */

static void job_fire(evutil_socket_t fd, short what, void *arg);

static struct job *job_find(struct deliver_agent *a, const char *id)
{
    for (struct job *j = a->jobs; j != NULL; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}

static void job_free(struct job *j)
{
    struct deliver_agent *a = j->a;
    if (j->prev)
        j->prev->next = j->next;
    else
        a->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    event_free(j->timer);
    free(j);
}

static void job_schedule(struct job *j, uint64_t seconds)
{
    struct timeval tv = {.tv_sec = (time_t)seconds};
    evtimer_add(j->timer, &tv);
}

bool deliver_agent_submit(struct deliver_agent *a, const char *queue_id)
{
    if (!store_qf_valid_id(queue_id, strlen(queue_id)))
        return false;
    struct job *j = job_find(a, queue_id);
    if (j != NULL) {
        if (j->at != NULL)
            j->again = true;
        else
            job_schedule(j, 0);
        return true;
    }
    j = calloc(1, sizeof *j);
    if (j == NULL || (j->timer = evtimer_new(a->o.base, job_fire, j)) == NULL) {
        free(j);
        return false;
    }
    j->a = a;
    memcpy(j->id, queue_id, STORE_ID_LEN + 1);
    j->next = a->jobs;
    if (a->jobs)
        a->jobs->prev = j;
    a->jobs = j;
    job_schedule(j, 0);
    return true;
}

static void attempt_free(struct attempt *at)
{
    for (struct delivery *d = at->dl, *next; d != NULL; d = next) {
        next = d->next;
        deliver_outbound_free(d->out);
        free(d->crcpts);
        free(d->map);
        free(d);
    }
    store_remote_close(&at->m);
    free(at->rc);
    free(at->list);
    free(at->idx);
    free(at->st);
    free(at);
}

/* The attempt is over: expire what is too old, bounce, and schedule the next attempt. */
static void attempt_end(struct attempt *at)
{
    struct job *j = at->job;
    struct deliver_agent *a = j->a;
    int64_t now = now_s();
    bool deferred = false;
    bool expired = deliver_retry_expired(&a->o.retry, at->m.qf.env.arrival, now);
    struct rcpt_out **late = at->list;
    size_t n_late = 0;
    for (size_t i = 0; i < at->n_rc; i++) {
        struct rcpt_out *rc = &at->rc[i];
        if (rc->st != STORE_RCPT_DEFERRED && rc->st != STORE_RCPT_PENDING)
            continue;
        if (!expired) {
            deferred = true;
            continue;
        }
        char diag[AGENT_DIAG_MAX];
        snprintf(diag, sizeof diag, "%s", rc->diag);
        set_outcome(rc, STORE_RCPT_BOUNCED, status_of(4, 4, 7), diag[0] ? diag
                    : "delivery time expired");
        rc->recorded = false;
        rc->expired = true;
        late[n_late++] = rc;
    }
    if (n_late > 0)
        agent_log(a, "%s: queue lifetime of %u s over: giving up on %zu recipient(s)",
                  at->m.qf.id, a->o.retry.lifetime_s, n_late);
    record(at, late, n_late);
    send_bounce(at);
    int64_t not_before = at->not_before;
    attempt_free(at);
    j->at = NULL;
    if (j->again) {
        j->again = false;
        job_schedule(j, 0);
    } else if (deferred) {
        uint64_t wait = deliver_retry_next(&a->o.retry, j->attempts, next_random(a));
        if (not_before > now && (uint64_t)(not_before - now) > wait)
            wait = (uint64_t)(not_before - now);
        job_schedule(j, wait);
    } else {
        job_schedule(j, 0); /* the sweep: the file goes once nothing is pending */
    }
}

/* ---- one delivery (connection) ---- */

static void delivery_finished(void *ctx)
{
    struct delivery *d = ctx;
    struct attempt *at = d->at;
    if (d->acquired) {
        struct deliver_destination *dst = deliver_destination_table_find(at->job->a->dests,
                                                                         d->dest);
        if (dst)
            deliver_destination_release(dst);
        d->acquired = false;
    }
    deliver_outbound_free(d->out);
    d->out = NULL;
    if (--at->running == 0)
        attempt_end(at);
}

static struct rcpt_out *d_rcpt(struct delivery *d, size_t i)
{
    return &d->at->rc[d->map[i]];
}

static void d_ready(void *ctx, const struct smtp_client_caps *caps)
{
    struct delivery *d = ctx;
    (void)caps;
    d->first = 0;
    smtp_client_send(deliver_outbound_session(d->out), &d->msg, 0);
}

static void d_rcpt_result(void *ctx, size_t i, const struct smtp_client_result *r)
{
    struct delivery *d = ctx;
    if (i >= d->n)
        return;
    bool ok = r->failure == SMTP_CLIENT_REPLY && r->reply && r->reply->code / 100 == 2;
    if (!ok)
        outcome_from_result(d_rcpt(d, i), r, "");
    if (r->reply && !ok)
        deliver_destination_on_reply(
            deliver_destination_table_find(d->at->job->a->dests, d->dest), r->reply,
            d->conn_messages, now_s());
}

static void d_message_result(void *ctx, const struct smtp_client_result *r, size_t n_tried)
{
    struct delivery *d = ctx;
    struct deliver_destination *dst = deliver_destination_table_find(d->at->job->a->dests,
                                                                      d->dest);
    if (n_tried > d->n)
        n_tried = d->n;
    struct rcpt_out **rcs = d->at->list;
    size_t k = 0;
    for (size_t i = d->first; i < n_tried; i++) {
        struct rcpt_out *rc = d_rcpt(d, i);
        if (rc->st == STORE_RCPT_PENDING && r->failure != SMTP_CLIENT_NO_RECIPIENTS)
            outcome_from_result(rc, r, deliver_outbound_error(d->out));
        rcs[k++] = rc;
    }
    if (r->reply && dst)
        deliver_destination_on_reply(dst, r->reply, d->conn_messages, now_s());
    if (r->reply && r->reply->code / 100 == 2)
        d->conn_messages++;
    record(d->at, rcs, k);
    struct smtp_client *s = deliver_outbound_session(d->out);
    if (n_tried > d->first && n_tried < d->n && !smtp_client_done(s)) {
        d->first = n_tried; /* "too many recipients": the rest in a further transaction */
        smtp_client_send(s, &d->msg, n_tried);
        return;
    }
    smtp_client_quit(s);
}

static void d_closed(void *ctx, const struct smtp_client_result *why)
{
    struct delivery *d = ctx;
    struct deliver_destination *dst = deliver_destination_table_find(d->at->job->a->dests,
                                                                      d->dest);
    int64_t now = now_s();
    const char *err = deliver_outbound_error(d->out);
    if (dst && deliver_outbound_connect_failed(d->out))
        deliver_destination_on_connect_failed(dst, err, now);
    else if (dst && why->reply && why->reply->code / 100 != 2)
        deliver_destination_on_reply(dst, why->reply, d->conn_messages, now);
    struct rcpt_out **rcs = d->at->list;
    char text[AGENT_DIAG_MAX];
    if (deliver_outbound_connect_failed(d->out))
        snprintf(text, sizeof text, "connect to %s: %s", d->relay, err);
    else
        snprintf(text, sizeof text, "%s", err);
    size_t k = 0;
    for (size_t i = 0; i < d->n; i++) {
        struct rcpt_out *rc = d_rcpt(d, i);
        if (rc->st != STORE_RCPT_PENDING)
            continue;
        if (why->reply && why->reply->code / 100 == 2) /* QUIT answered: never sent */
            set_outcome(rc, STORE_RCPT_DEFERRED, status_of(4, 4, 0), "not sent");
        else if (deliver_outbound_connect_failed(d->out))
            set_outcome(rc, STORE_RCPT_DEFERRED, status_of(4, 4, 1), text);
        else
            outcome_from_result(rc, why, text);
        if (rc->st != STORE_RCPT_DEFERRED) { /* the session ended before it: never final */
            rc->st = STORE_RCPT_DEFERRED;
            rc->status.cls = 4;
        }
        rcs[k++] = rc;
    }
    record(d->at, rcs, k);
}

/* ---- routing ---- */

static enum smtp_client_tls client_tls(enum policy_tls t)
{
    switch (t) {
    case POLICY_TLS_NONE:
        return SMTP_CLIENT_TLS_NONE;
    case POLICY_TLS_OPPORTUNISTIC:
        return SMTP_CLIENT_TLS_OPPORTUNISTIC;
    case POLICY_TLS_REQUIRED:
    case POLICY_TLS_REQUIRED_VERIFY: /* certificate verification: not in this slice */
        break;
    }
    return SMTP_CLIENT_TLS_REQUIRED;
}

static bool numeric_address(const char *host, unsigned short port, struct sockaddr_storage *ss,
                            socklen_t *len)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *len = sizeof *v4;
        return true;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *len = sizeof *v6;
        return true;
    }
    return false;
}

/* Fills d's destination, address and session options for a recipient's domain; false with
 * the recipient's outcome set when it cannot be routed now. */
static bool route_rcpt(struct deliver_agent *a, const char *address, struct delivery *d,
                       struct rcpt_out *rc)
{
    const char *at = strrchr(address, '@');
    struct deliver_route r;
    if (at == NULL || !deliver_route_find(a->o.cfg, at + 1, &r)) {
        set_outcome(rc, STORE_RCPT_BOUNCED, status_of(5, 1, 2), "bad destination domain");
        return false;
    }
    const char *host = r.kind == DELIVER_ROUTE_LITERAL ? r.lookup : r.hop ? r.hop->host : "";
    unsigned short port = r.hop ? r.hop->port : 25;
    bool direct = (r.kind == DELIVER_ROUTE_LITERAL ||
                   ((r.kind == DELIVER_ROUTE_STATIC || r.kind == DELIVER_ROUTE_RELAYHOST) &&
                    !r.hop->mx_lookup)) &&
                  numeric_address(host, port, &d->ss, &d->sslen);
    if (!direct) { /* MX and host-name next hops wait for the resolver to be wired in */
        set_outcome(rc, STORE_RCPT_DEFERRED, status_of(4, 4, 3),
                    r.kind == DELIVER_ROUTE_LOCAL ? "domain is local now"
                                                  : "no route: DNS look-ups not available yet");
        return false;
    }
    snprintf(d->dest, sizeof d->dest, "%s", r.destination);
    snprintf(d->relay, sizeof d->relay, "%s[%s]:%u", host, host, port);
    d->copts = (struct smtp_client_opts){
        .helo_name = a->o.cfg->hostname,
        .tls = r.hop ? client_tls(r.hop->tls) : SMTP_CLIENT_TLS_OPPORTUNISTIC,
    };
    if (r.kind == DELIVER_ROUTE_RELAYHOST && a->o.cfg->relayhost.auth) {
        d->copts.auth_user = a->o.cfg->relayhost.auth_user;
        d->copts.auth_pass = a->o.cfg->relayhost.auth_password;
    }
    return true;
}

/* ---- starting an attempt ---- */

static struct delivery *delivery_for(struct attempt *at, const struct delivery *proto)
{
    for (struct delivery *d = at->dl; d != NULL; d = d->next)
        if (strcmp(d->dest, proto->dest) == 0)
            return d;
    struct delivery *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    *d = *proto;
    d->at = at;
    d->crcpts = calloc(at->n_rc, sizeof *d->crcpts);
    d->map = calloc(at->n_rc, sizeof *d->map);
    if (!d->crcpts || !d->map) {
        free(d->crcpts);
        free(d->map);
        free(d);
        return NULL;
    }
    d->next = at->dl;
    at->dl = d;
    return d;
}

static bool group_rcpts(struct attempt *at)
{
    struct deliver_agent *a = at->job->a;
    for (size_t i = 0; i < at->n_rc; i++) {
        struct rcpt_out *rc = &at->rc[i];
        const struct store_rcpt *r = &at->m.qf.env.rcpts[rc->idx];
        struct delivery proto;
        memset(&proto, 0, sizeof proto);
        if (!route_rcpt(a, r->address, &proto, rc))
            continue;
        struct delivery *d = delivery_for(at, &proto);
        if (d == NULL)
            return false;
        d->crcpts[d->n] = (struct smtp_client_rcpt){.address = r->address, .notify = r->notify,
                                                    .orcpt = r->orcpt};
        d->map[d->n++] = i;
    }
    return true;
}

static void delivery_start(struct attempt *at, struct delivery *d)
{
    struct deliver_agent *a = at->job->a;
    const struct store_envelope *env = &at->m.qf.env;
    int64_t now = now_s();
    for (size_t i = 0; i < d->n; i++)
        d_rcpt(d, i)->relay = d->relay;
    struct deliver_destination *dst = NULL;
    char why[AGENT_DIAG_MAX] = "out of memory";
    if (deliver_destination_table_get(a->dests, d->dest, now, &dst) == DELIVER_DESTINATION_OK &&
        !deliver_destination_acquire(dst, now)) {
        snprintf(why, sizeof why, "destination %s backing off%s%s", d->dest,
                 dst->why[0] ? ": " : "", dst->why);
        if (dst->backoff_until > at->not_before)
            at->not_before = dst->backoff_until;
        dst = NULL;
    }
    d->acquired = dst != NULL;
    d->msg = (struct smtp_client_message){
        .sender = env->sender, .rcpts = d->crcpts, .n_rcpts = d->n,
        .eightbit = env->body == STORE_BODY_8BITMIME, .smtputf8 = env->smtputf8,
        .ret = env->ret, .envid = env->envid, .body = at->m.body, .body_len = at->m.body_len};
    static const struct smtp_client_callbacks cb = {
        .ready = d_ready, .rcpt_result = d_rcpt_result, .message_result = d_message_result,
        .closed = d_closed};
    struct deliver_outbound_cfg oc = {
        .base = a->o.base, .tls = a->tls,
        .connect_timeout_s = a->o.connect_timeout_s ? a->o.connect_timeout_s : 30,
        .command_timeout_s = a->o.command_timeout_s ? a->o.command_timeout_s : 300,
        .data_timeout_s = a->o.data_timeout_s ? a->o.data_timeout_s : 600};
    if (d->acquired)
        d->out = deliver_outbound_open(&oc, (struct sockaddr *)&d->ss, d->sslen, &d->copts, &cb,
                                       delivery_finished, d, why, sizeof why);
    if (d->out != NULL) {
        at->running++;
        return;
    }
    if (d->acquired)
        deliver_destination_release(dst);
    d->acquired = false;
    for (size_t i = 0; i < d->n; i++)
        set_outcome(d_rcpt(d, i), STORE_RCPT_DEFERRED, status_of(4, 4, 1), why);
}

static bool attempt_load(struct job *j, struct attempt *at, bool *drop)
{
    bool gone = false;
    enum store_err err = store_remote_load(j->a->dir_fd, j->id, &at->m, &gone);
    *drop = gone || err == STORE_ERR_CORRUPT;
    if (err != STORE_OK) {
        agent_log(j->a, "%s: cannot read queue file for delivery: %s", j->id, store_strerror(err));
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
    if (at->m.fd >= 0)
        store_remote_record(j->a->dir_fd, &at->m, NULL, NULL, 0, &removed);
}

static void job_fire(evutil_socket_t fd, short what, void *arg)
{
    struct job *j = arg;
    (void)fd;
    (void)what;
    if (j->at != NULL)
        return;
    struct attempt *at = calloc(1, sizeof *at);
    bool drop = false;
    if (at == NULL) {
        job_schedule(j, deliver_retry_next(&j->a->o.retry, j->attempts, next_random(j->a)));
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
            job_free(j);
        else
            job_schedule(j, deliver_retry_next(&j->a->o.retry, ++j->attempts, next_random(j->a)));
        return;
    }
    j->at = at;
    j->attempts++;
    at->running = 1; /* held while starting, so no delivery ends the attempt early */
    if (group_rcpts(at))
        for (struct delivery *d = at->dl; d != NULL; d = d->next)
            delivery_start(at, d);
    for (size_t i = 0; i < at->n_rc; i++)
        at->list[i] = &at->rc[i];
    record(at, at->list, at->n_rc); /* routing failures and backoffs */
    if (--at->running == 0)
        attempt_end(at);
}

/* ---- life cycle ---- */

static void recover(void *ctx, const char *id)
{
    deliver_agent_submit(ctx, id);
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
    a->rng = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ull;
    enum store_err e = store_remote_open_dir(o->cfg->queue_dir, &a->dir_fd);
    if (e != STORE_OK) {
        snprintf(err, errlen, "queue directory %s/queue: %s", o->cfg->queue_dir,
                 store_strerror(e));
        free(a);
        return NULL;
    }
    char terr[256];
    a->tls = deliver_outbound_tls_context(terr, sizeof terr);
    if (a->tls == NULL)
        agent_log(a, "warning: outbound TLS unavailable: %s", terr);
    if (deliver_destination_table_new(&o->destination, AGENT_DESTINATIONS_MAX, &a->dests) !=
        DELIVER_DESTINATION_OK) {
        snprintf(err, errlen, "bad destination settings or out of memory");
        deliver_agent_free(a);
        return NULL;
    }
    if (store_remote_scan(a->dir_fd, recover, a) != STORE_OK)
        agent_log(a, "warning: cannot scan the queue for remote recipients");
    return a;
}

void deliver_agent_free(struct deliver_agent *a)
{
    if (a == NULL)
        return;
    while (a->jobs) {
        struct job *j = a->jobs;
        if (j->at)
            attempt_free(j->at);
        job_free(j);
    }
    deliver_destination_table_free(a->dests);
    if (a->tls)
        SSL_CTX_free(a->tls);
    if (a->dir_fd >= 0)
        close(a->dir_fd);
    free(a);
}
