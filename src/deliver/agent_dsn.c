/* deliver/agent_dsn.c — the delivery agent's reports to senders, queued like any message from
 * <>: failures (bounces), the one delay warning, "relayed" and "delivered" success reports,
 * and the report of a message an administrator deleted. Never for the null sender (RFC 5321
 * §6.1). RFC 3464, RFC 3461 §4.1, §5.2.2, §6.2. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/dkim_sign.h"
#include "deliver/agent_internal.h"
#include "deliver/dsn.h"
#include "policy/recipients.h"
#include "store/flags.h"

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

static void report_committed(void *ctx, enum store_err err, const char *queue_id)
{
    struct deliver_agent *a = ctx;
    if (err != STORE_OK) {
        deliver_agent_logf(a, "bounce: cannot queue a bounce: %s", store_strerror(err));
        return;
    }
    deliver_agent_logf(a, "%s: from=<>, bounce queued", queue_id);
    deliver_agent_submit(a, queue_id); /* does nothing unless the sender is remote */
}

static void inject(struct deliver_agent *a, const struct store_qf *qf, const char *report,
                   size_t len, const char *what)
{
    char mailbox[POLICY_MAILBOX_CAP];
    struct store_rcpt rcpt = {
        .address = qf->env.sender,
        .local_user = local_mailbox(a->o.cfg, qf->env.sender, mailbox, sizeof mailbox),
        .notify = STORE_NOTIFY_NEVER,
    };
    struct store_envelope env = {.sender = "", .rcpts = &rcpt, .n_rcpts = 1,
                                 .body = STORE_BODY_8BITMIME, .arrival = deliver_agent_now()};
    struct store_msg *msg = NULL;
    /* Reports from a signing domain are signed like submitted mail: receivers that check
     * DMARC would otherwise refuse the bounce of the domain's own mail. */
    char *sig = NULL;
    size_t sig_len = 0;
    if (a->o.dkim != NULL &&
        auth_dkim_signers_sign(a->o.dkim, report, len, deliver_agent_now(), &sig, &sig_len) !=
            AUTH_OK)
        sig_len = 0;
    enum store_err err = store_msg_begin(a->o.queue, &env, &msg);
    if (err == STORE_OK && sig_len > 0)
        err = store_msg_write(msg, sig, sig_len);
    free(sig);
    if (err == STORE_OK)
        err = store_msg_write(msg, report, len);
    if (err != STORE_OK) {
        if (msg != NULL)
            store_msg_abort(msg);
        deliver_agent_logf(a, "%s: cannot queue the %s to <%s>: %s", qf->id, what,
                           qf->env.sender, store_strerror(err));
        return;
    }
    deliver_agent_logf(a, "%s: sender %s: %s", qf->id, what, store_msg_id(msg));
    store_msg_commit(msg, report_committed, a);
}

/* The message a report is about: its header, and its bytes (NULL when unreadable). */
struct original {
    const struct store_qf *qf;
    const char *body;
    size_t body_len;
};

/* Builds and queues the report of dr[0..n) for the message o; what names it in the log
 * ("non-delivery notification"), word in the line for <> ("bounce", "delay warning"); seed
 * picks the MIME boundary. */
static void send_report(struct deliver_agent *a, const struct original *o,
                        const struct deliver_dsn_rcpt *dr, size_t n, const char *what,
                        const char *word, uint64_t seed)
{
    const struct store_qf *qf = o->qf;
    if (n > 0 && qf->env.sender[0] == '\0')
        deliver_agent_logf(a, "%s: sender is <>: no %s for %zu recipient(s)", qf->id, word, n);
    if (n == 0 || qf->env.sender[0] == '\0')
        return;
    struct deliver_dsn_input in = {
        .reporting_mta = a->o.cfg->hostname, .queue_id = qf->id, .sender = qf->env.sender,
        .envid = qf->env.envid, .ret = qf->env.ret, .arrival = qf->env.arrival,
        .message = o->body, .message_len = o->body_len, .rcpts = dr, .n_rcpts = n};
    char *report = NULL;
    size_t len = 0;
    enum deliver_dsn_err e = deliver_dsn_build(&in, deliver_agent_now(), seed, &report, &len);
    if (e == DELIVER_DSN_OK)
        inject(a, qf, report, len, what);
    else if (e != DELIVER_DSN_ERR_NOTHING_TO_REPORT)
        deliver_agent_logf(a, "%s: cannot build the %s: %s", qf->id, what,
                           deliver_dsn_strerror(e));
    free(report);
}

/* Which of the attempt's recipients a report covers. */
typedef bool (*rcpt_pick)(const struct rcpt_out *rc);

static bool pick_bounced(const struct rcpt_out *rc)
{
    return rc->st == STORE_RCPT_BOUNCED;
}

static bool pick_deferred(const struct rcpt_out *rc)
{
    return rc->st == STORE_RCPT_DEFERRED;
}

static bool pick_relayed(const struct rcpt_out *rc)
{
    return rc->st == STORE_RCPT_SENT && rc->relayed;
}

/* The report lines of the attempt's recipients that pick chooses, with action. */
static void send_for_attempt(struct attempt *at, rcpt_pick pick, enum deliver_dsn_action action,
                             const char *what, const char *word)
{
    struct deliver_agent *a = at->job->a;
    const struct store_qf *qf = &at->m.qf;
    struct deliver_dsn_rcpt *dr = calloc(at->n_rc ? at->n_rc : 1, sizeof *dr);
    if (dr == NULL) {
        deliver_agent_logf(a, "%s: cannot build the %s: out of memory", qf->id, what);
        return;
    }
    size_t n = 0;
    int64_t now = deliver_agent_now();
    for (size_t i = 0; i < at->n_rc; i++) {
        const struct rcpt_out *rc = &at->rc[i];
        if (!pick(rc))
            continue;
        const struct store_rcpt *r = &qf->env.rcpts[rc->idx];
        dr[n++] = (struct deliver_dsn_rcpt){
            .final_recipient = r->address, .orcpt = r->orcpt, .notify = r->notify,
            .action = action, .status = rc->status, .remote_mta = rc->remote_mta,
            .diagnostic = rc->diag, .last_attempt = now,
            .will_retry_until = action == DELIVER_DSN_DELAYED
                                    ? deliver_retry_give_up_at(&a->o.retry, qf->env.arrival)
                                    : 0};
    }
    struct original o = {.qf = qf, .body = at->m.body, .body_len = at->m.body_len};
    send_report(a, &o, dr, n, what, word, deliver_agent_random(a));
    free(dr);
}

void deliver_agent_send_bounce(struct attempt *at)
{
    send_for_attempt(at, pick_bounced, DELIVER_DSN_FAILED, "non-delivery notification",
                     "bounce");
}

/* Most relayed recipients did not ask for SUCCESS: checked first, so that the common case
 * neither builds a report nor logs "no report for <>" for every relayed bounce. */
void deliver_agent_send_relayed(struct attempt *at)
{
    bool wanted = false;
    for (size_t i = 0; i < at->n_rc && !wanted; i++)
        wanted = pick_relayed(&at->rc[i]) &&
                 deliver_dsn_wanted(at->m.qf.env.rcpts[at->rc[i].idx].notify,
                                    DELIVER_DSN_RELAYED);
    if (wanted)
        send_for_attempt(at, pick_relayed, DELIVER_DSN_RELAYED, "delivery notification",
                         "success report");
}

/* RFC 3461 §4.1 leaves the delay warning of a recipient without NOTIFY to the MTA: we send it
 * (deliver_dsn_wanted), as Postfix does, since a sender waiting hours deserves to know. The
 * flag is set before the report is queued: a crash in between loses the warning rather than
 * sending it twice. */
void deliver_agent_send_delay_warning(struct attempt *at)
{
    struct job *j = at->job;
    enum store_err err = store_flags_set(j->a->flags_fd, j->id, STORE_FLAG_WARNED, true);
    if (err != STORE_OK) {
        deliver_agent_logf(j->a, "%s: cannot record the delay warning (%s): not sent", j->id,
                           store_strerror(err));
        return;
    }
    j->warned = true;
    send_for_attempt(at, pick_deferred, DELIVER_DSN_DELAYED, "delay notification",
                     "delay warning");
}

void deliver_agent_send_deleted(struct deliver_agent *a, const struct store_remote_msg *m)
{
    const struct store_qf *qf = &m->qf;
    struct deliver_dsn_rcpt *dr = calloc(qf->env.n_rcpts ? qf->env.n_rcpts : 1, sizeof *dr);
    if (dr == NULL) {
        deliver_agent_logf(a, "%s: cannot build the deletion notification: out of memory",
                           qf->id);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < qf->env.n_rcpts; i++) {
        if (qf->state[i] != STORE_RCPT_PENDING)
            continue;
        const struct store_rcpt *r = &qf->env.rcpts[i];
        dr[n++] = (struct deliver_dsn_rcpt){
            .final_recipient = r->address, .orcpt = r->orcpt, .notify = r->notify,
            .action = DELIVER_DSN_FAILED, .status = reply_outcome_status(OUTCOME_DELETED),
            .diagnostic = "deleted from the queue by the administrator",
            .last_attempt = deliver_agent_now()};
    }
    struct original o = {.qf = qf, .body = m->body, .body_len = m->body_len};
    send_report(a, &o, dr, n, "non-delivery notification", "bounce", deliver_agent_random(a));
    free(dr);
}

/* The message bytes of qf from fd (malloc'd), or NULL: the report then goes without them. */
static char *read_original(const struct store_qf *qf, int fd)
{
    size_t len = (size_t)qf->size;
    char *buf = malloc(len + 1);
    for (size_t got = 0; buf != NULL && got < len;) {
        ssize_t r = pread(fd, buf + got, len - got, (off_t)(qf->header_len + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            return NULL;
        }
        got += (size_t)r;
    }
    return buf;
}

/* On the local runner's thread: only what is safe there is used (the read-only config, the
 * thread-safe queue and logger); the boundary seed comes from the clock, not the agent's
 * generator, which belongs to the loop thread. */
void deliver_agent_send_delivered(void *ctx, const struct store_qf *qf, const size_t *rcpts,
                                  size_t n, int fd)
{
    struct deliver_agent *a = ctx;
    if (qf->env.sender[0] == '\0') {
        deliver_agent_logf(a, "%s: sender is <>: no success report for %zu recipient(s)",
                           qf->id, n);
        return;
    }
    struct deliver_dsn_rcpt *dr = calloc(n ? n : 1, sizeof *dr);
    char *body = read_original(qf, fd);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = deliver_agent_now();
    for (size_t i = 0; dr != NULL && i < n; i++) {
        const struct store_rcpt *r = &qf->env.rcpts[rcpts[i]];
        dr[i] = (struct deliver_dsn_rcpt){
            .final_recipient = r->address, .orcpt = r->orcpt, .notify = r->notify,
            .action = DELIVER_DSN_DELIVERED, .status = reply_outcome_status(OUTCOME_DELIVERED),
            .last_attempt = now};
    }
    struct original o = {.qf = qf, .body = body, .body_len = body ? (size_t)qf->size : 0};
    if (dr != NULL)
        send_report(a, &o, dr, n, "delivery notification", "success report",
                    (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec);
    else
        deliver_agent_logf(a, "%s: cannot build the delivery notification: out of memory",
                           qf->id);
    free(body);
    free(dr);
}
