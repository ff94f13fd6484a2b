/* server/transaction.c — the session's callbacks: sender and recipient decisions from policy,
 * the checks on receipt (server/receipt.c), the message into the store, its commit answered
 * when it is durable, rejections logged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/log.h"
#include "server/metrics.h"
#include "server/server.h"
#include "policy/recipients.h"
#include "policy/users.h"
#include "reply/safe_text.h"
#include "smtp/received.h"
#include "base/clock.h"

/* Free space is read at every MAIL: one statvfs costs about a microsecond, and a cached figure
 * lets a fast client past the threshold. An unreadable figure counts as enough. */
static uint64_t free_space(struct server *srv)
{
    uint64_t bytes = UINT64_MAX;
    store_queue_free_space(srv->queue, &bytes);
    return bytes;
}

static enum smtp_verdict on_mail(void *ctx, const struct smtp_command *cmd, struct smtp_decision *d)
{
    struct server_conn *c = ctx;
    if (free_space(c->srv) < c->srv->cfg->min_free_disk) {
        d->reply = REPLY_DISK_FULL;
        return SMTP_DECIDED;
    }
    const struct policy_config *cfg = c->srv->cfg;
    const char *user = smtp_server_auth_user(c->session);
    const struct smtp_path *p = &cmd->path;
    smtp_decision_set_detail(d, p->mailbox);
    if (user && cfg->sender_ownership &&
        !policy_users_owns_sender(cfg->users, cfg, user, p->is_null ? NULL : p->local,
                                  p->domain)) {
        d->reply = REPLY_SENDER_NOT_OWNED;
        return SMTP_DECIDED;
    }
    d->reply = REPLY_SENDER_OK;
    return server_receipt_mail(c, cmd, d); /* SPF, then the limits */
}

static enum smtp_verdict on_rcpt(void *ctx, const struct smtp_command *cmd, struct smtp_decision *d)
{
    struct server_conn *c = ctx;
    const struct smtp_path *p = &cmd->path;
    smtp_decision_set_detail(d, p->mailbox);
    switch (policy_rcpt_lookup(c->srv->cfg, p->local, p->is_postmaster ? "" : p->domain,
                               d->mailbox, sizeof d->mailbox)) {
    case POLICY_RCPT_LOCAL:
    case POLICY_RCPT_LMTP: /* no mailbox: queued for the delivery agent */
        d->reply = REPLY_RCPT_OK;
        break;
    case POLICY_RCPT_UNKNOWN_USER:
        d->reply = REPLY_USER_UNKNOWN;
        break;
    case POLICY_RCPT_NOT_LOCAL: /* relaying is for authenticated users only */
        d->reply = smtp_server_auth_user(c->session) ? REPLY_RCPT_OK : REPLY_RELAY_DENIED;
        break;
    }
    return d->reply == REPLY_RCPT_OK ? server_limits_rcpt(c, cmd, d) : SMTP_DECIDED;
}

static enum reply_id store_failure_reply(enum store_err err)
{
    return err == STORE_ERR_NOSPACE ? REPLY_DISK_FULL : REPLY_STORE_FAILED;
}

static enum store_err write_received(struct server_conn *c, const struct smtp_envelope *env)
{
    char header[1024];
    struct smtp_received r = {
        .helo = smtp_server_helo(c->session),
        .client_addr = c->addr,
        .hostname = c->srv->cfg->hostname,
        .queue_id = store_msg_id(c->msg),
        .for_rcpt = env->n_rcpts == 1 ? env->rcpts[0].address : NULL,
        .esmtp = smtp_server_esmtp(c->session),
        .tls = smtp_server_tls(c->session),
        .auth = smtp_server_auth_user(c->session) != NULL,
        .utf8 = env->smtputf8,
        .when = time(NULL),
    };
    size_t n = smtp_received_format(header, sizeof header, &r);
    if (n == 0) { /* an absurdly long recipient: leave the "for" clause out */
        r.for_rcpt = NULL;
        n = smtp_received_format(header, sizeof header, &r);
    }
    return store_msg_write(c->msg, header, n);
}

enum reply_id server_transaction_open(struct server_conn *c, const struct store_envelope *se,
                                      const struct smtp_envelope *env)
{
    enum store_err err = store_msg_begin(c->srv->queue, se, &c->msg);
    if (err == STORE_OK)
        err = write_received(c, env);
    if (err == STORE_OK)
        return REPLY_OK;
    if (c->msg)
        store_msg_abort(c->msg);
    c->msg = NULL;
    net_log("store: cannot start a message from [%s]: %s", c->addr, store_strerror(err));
    return store_failure_reply(err);
}

static enum smtp_verdict on_data_begin(void *ctx, const struct smtp_envelope *env,
                                       struct smtp_decision *d)
{
    struct server_conn *c = ctx;
    struct store_rcpt *rcpts = calloc(env->n_rcpts, sizeof *rcpts);
    char *sender = strdup(env->sender.mailbox);
    c->msg_remote = false;
    if (!rcpts || !sender) {
        free(rcpts);
        free(sender);
        d->reply = REPLY_INTERNAL_ERROR;
        return SMTP_DECIDED;
    }
    for (size_t i = 0; i < env->n_rcpts; i++) {
        rcpts[i].address = env->rcpts[i].address;
        rcpts[i].local_user = env->rcpts[i].mailbox;
        rcpts[i].notify = env->rcpts[i].notify; /* SMTP_NOTIFY_* and STORE_NOTIFY_* agree */
        rcpts[i].orcpt = env->rcpts[i].orcpt;
        c->msg_remote = c->msg_remote || rcpts[i].local_user == NULL;
    }
    struct store_envelope se = {
        .sender = sender,
        .rcpts = rcpts,
        .n_rcpts = env->n_rcpts,
        .envid = env->envid[0] ? env->envid : NULL,
        .ret = (int)env->ret,
        .body = (int)env->body,
        .smtputf8 = env->smtputf8,
        .client_addr = c->addr,
        .helo = smtp_server_helo(c->session),
        .auth_user = smtp_server_auth_user(c->session),
        .arrival = base_clock_steady(), /* the agent measures ages on this clock */
    };
    server_signing_begin(c);
    if (server_receipt_holds(c)) {
        /* Checked at its end: stored then, with the results (server/receipt.c). */
        server_receipt_keep(c, &se, rcpts, env);
    } else {
        d->reply = server_transaction_open(c, &se, env);
        free(rcpts);
        if (d->reply != REPLY_OK) {
            free(sender);
            server_signing_forget(c);
            return SMTP_DECIDED;
        }
    }
    free(c->msg_sender);
    c->msg_sender = sender;
    c->msg_rcpts = env->n_rcpts + env->rcpts_merged; /* nrcpt=: RCPTs accepted, as answered */
    c->msg_size = 0;
    d->reply = REPLY_START_DATA;
    return SMTP_DECIDED;
}

static enum reply_id on_data_write(void *ctx, const char *p, size_t n)
{
    struct server_conn *c = ctx;
    c->msg_size += n;
    if (c->msg_signing || c->msg_checking)
        return server_signing_write(c, p, n);
    enum store_err err = store_msg_write(c->msg, p, n);
    return err == STORE_OK ? REPLY_OK : store_failure_reply(err);
}

static void commit_done(void *ctx, enum store_err err, const char *queue_id)
{
    struct server_conn *c = ctx;
    c->committing = false;
    const char *results = server_receipt_results(c);
    if (err == STORE_OK)
        net_log("%s: client=[%s], from=<%s>, size=%llu, nrcpt=%zu%s%s%s", queue_id, c->addr,
                c->msg_sender ? c->msg_sender : "", (unsigned long long)c->msg_size, c->msg_rcpts,
                results[0] ? ", auth=(" : "", results, results[0] ? ")" : "");
    else
        net_log("store: commit failed for a message from [%s]: %s", c->addr, store_strerror(err));
    if (err == STORE_OK && c->msg_remote && c->srv->agent)
        deliver_agent_submit(c->srv->agent, queue_id);
    if (c->dead) { /* the client left before we could answer */
        server_transaction_forget(c);
        free(c);
        return;
    }
    struct smtp_decision d;
    memset(&d, 0, sizeof d);
    d.reply = err == STORE_OK ? REPLY_QUEUED : store_failure_reply(err);
    if (err == STORE_OK)
        smtp_decision_set_detail(&d, queue_id);
    smtp_server_resume(c->session, &d);
    server_conn_update(c);
}

enum smtp_verdict server_transaction_commit(struct server_conn *c)
{
    server_signing_finish(c);
    struct store_msg *m = c->msg;
    c->msg = NULL;
    c->committing = true;
    store_msg_commit(m, commit_done, c);
    return SMTP_PENDING;
}

/* The checks on receipt come first (DKIM, DMARC), then plan limits (message size, bytes
 * counted at the end); they commit when passed. */
static enum smtp_verdict on_data_end(void *ctx, struct smtp_decision *d)
{
    struct server_conn *c = ctx;
    server_metrics_data_end(c);
    if (c->msg_checking)
        return server_receipt_data_end(c, d);
    return server_limits_data_end(c, d);
}

void server_transaction_discard(struct server_conn *c)
{
    server_signing_forget(c);
    if (c->msg)
        store_msg_abort(c->msg);
    c->msg = NULL;
}

static void on_data_abort(void *ctx)
{
    server_transaction_discard(ctx);
}

/* ---- AUTH ---- */

uint64_t server_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void auth_answer(struct server_conn *c, enum reply_id id)
{
    struct smtp_decision d;
    memset(&d, 0, sizeof d);
    d.reply = id;
    if (reply_row_get(id)->code == 421)
        smtp_decision_set_detail(&d, c->srv->cfg->hostname);
    smtp_server_resume(c->session, &d);
    server_conn_update(c);
}

static void on_auth_delay_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    auth_answer(arg, REPLY_AUTH_FAILED); /* the next attempt, if over the limit, gets 421 */
}

static void on_auth_checked(void *ctx, enum policy_auth_result result)
{
    struct server_conn *c = ctx;
    struct server *srv = c->srv;
    c->auth_job = NULL;
    if (result == POLICY_AUTH_OK) {
        policy_authlimit_succeeded(srv->authlimit, c->addr);
        net_log("auth: [%s] user=%s, status=ok", c->addr, c->auth_user);
        auth_answer(c, REPLY_AUTH_OK);
        return;
    }
    if (result == POLICY_AUTH_TEMPFAIL) {
        net_log("auth: [%s] user=%s, status=tempfail", c->addr, c->auth_user);
        auth_answer(c, REPLY_AUTH_TEMPFAIL);
        return;
    }
    uint64_t now = server_now_ms();
    policy_authlimit_failed(srv->authlimit, c->addr, now);
    unsigned delay = policy_authlimit_delay_ms(srv->authlimit, c->addr, now);
    net_log("auth: [%s] user=%s, status=failed, failures=%u, delay=%ums", c->addr, c->auth_user,
            policy_authlimit_failures(srv->authlimit, c->addr, now), delay);
    if (policy_authlimit_blocked(srv->authlimit, c->addr, now))
        net_log("auth: [%s] blocked: %u failures within %u s; further attempts get 421 4.7.0",
                c->addr, srv->cfg->auth_fail_limit, srv->cfg->auth_fail_window);
    struct timeval tv = {.tv_sec = delay / 1000, .tv_usec = (delay % 1000) * 1000};
    if (!c->auth_delay)
        c->auth_delay = evtimer_new(srv->base, on_auth_delay_over, c);
    if (!c->auth_delay || evtimer_add(c->auth_delay, &tv) < 0)
        on_auth_delay_over(-1, 0, c);
}

static enum smtp_verdict on_auth(void *ctx, const char *mechanism,
                                 const struct smtp_sasl_creds *creds, struct smtp_decision *d)
{
    struct server_conn *c = ctx;
    struct server *srv = c->srv;
    /* the name is the client's: shown as reply/safe_text.h makes it */
    reply_safe_text_buf(creds->user, strlen(creds->user), " ", c->auth_user,
                        sizeof c->auth_user);
    if (policy_authlimit_blocked(srv->authlimit, c->addr, server_now_ms())) {
        net_log("auth: [%s] user=%s, mechanism=%s, status=refused (too many failures)", c->addr,
                c->auth_user, mechanism);
        d->reply = REPLY_AUTH_TOO_MANY_FAILURES;
        smtp_decision_set_detail(d, srv->cfg->hostname);
        return SMTP_DECIDED;
    }
    c->auth_job = policy_authcheck_submit(srv->authcheck, srv->cfg->users, creds->user,
                                          creds->pass, on_auth_checked, c);
    if (!c->auth_job) {
        d->reply = REPLY_AUTH_TEMPFAIL;
        return SMTP_DECIDED;
    }
    return SMTP_PENDING;
}

/* The reply as one line for the log. */
static int log_text(char *text, size_t cap, enum reply_id id, const char *detail)
{
    size_t n = reply_format(text, cap, id, detail, NULL, 0, REPLY_FMT_ENHANCED);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    return (int)n;
}

/* Rejections are logged with the exact reply sent; RCPTs over a recipient limit once per
 * transaction (on_rcpts_over_limit). */
static void on_reply(void *ctx, const char *line, enum reply_id id, const char *detail)
{
    struct server_conn *c = ctx;
    server_metrics_reply(c, id);
    if (reply_row_get(id)->code < 400 || id == REPLY_TOO_MANY_RCPTS)
        return;
    char text[1024];
    int n = log_text(text, sizeof text, id, detail);
    net_log("reject: %s from [%s]: %.*s", line[0] ? line : "-", c->addr, n, text);
}

static void on_rcpts_over_limit(void *ctx, size_t refused)
{
    struct server_conn *c = ctx;
    char text[128];
    int n = log_text(text, sizeof text, REPLY_TOO_MANY_RCPTS, NULL);
    net_log("reject: RCPT from [%s]: %.*s (%zu RCPT refused in this transaction)", c->addr, n,
            text, refused);
}

void server_transaction_callbacks(struct smtp_server_callbacks *cb)
{
    cb->mail = on_mail;
    cb->rcpt = on_rcpt;
    cb->data_begin = on_data_begin;
    cb->data_write = on_data_write;
    cb->data_end = on_data_end;
    cb->data_abort = on_data_abort;
    cb->auth = on_auth;
    cb->on_reply = on_reply;
    cb->rcpts_over_limit = on_rcpts_over_limit;
}

void server_transaction_forget(struct server_conn *c)
{
    on_data_abort(c);
    server_receipt_forget(c);
    policy_authcheck_cancel(c->auth_job);
    c->auth_job = NULL;
    if (c->auth_delay)
        event_free(c->auth_delay);
    c->auth_delay = NULL;
    free(c->msg_sender);
    c->msg_sender = NULL;
}
