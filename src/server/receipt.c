/* server/receipt.c — mail authentication of mail received on MX listeners (never of AUTH
 * sessions): SPF when MAIL FROM arrives, DKIM and DMARC at the end of the message, through
 * deliver/authcheck.c on the loop (the session waits with SMTP_PENDING). spf_check reject
 * refuses an SPF fail (550 5.7.23) or temperror (451 4.7.24); dmarc_check enforce refuses a
 * DMARC fail under p=reject (550 5.7.26), a message without one readable From: field
 * (550 5.7.1), and files a DMARC fail under p=quarantine into the .Junk folder. The
 * message is held in memory (as signing.c holds it) and stored once checked: Received, our
 * Authentication-Results, then the message without forged Authentication-Results of our own
 * host name. RFC 7208 §8, RFC 7489 §6.6, RFC 7372, RFC 8601 §5. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/ar_strip.h"
#include "deliver/authcheck.h"
#include "net/log.h"
#include "server/server.h"

/* The Maildir++ folder of quarantined mail. */
#define JUNK_FOLDER ".Junk"
/* The Authentication-Results value kept: ample for 16 signatures. */
#define RESULTS_CAP 4096u

struct server_receipt {
    struct deliver_authcheck_run *run;      /* of the open transaction */
    struct smtp_command mail;               /* the MAIL being checked (its arg dropped) */
    struct store_envelope env;              /* kept from DATA until the message is stored */
    struct store_rcpt *rcpts;               /* env.rcpts, owned */
    const struct smtp_envelope *session_env; /* the session's, valid until the reply */
    char results[RESULTS_CAP];              /* Authentication-Results value, for the log */
};

static enum policy_spf_check spf_mode(const struct server_conn *c)
{
    return policy_listener_spf_check(c->srv->cfg, c->listener->conf);
}

static enum policy_dmarc_check dmarc_mode(const struct server_conn *c)
{
    return policy_listener_dmarc_check(c->srv->cfg, c->listener->conf);
}

/* Checks apply: an MX listener with spf_check or dmarc_check on, a session without AUTH. */
static bool applies(const struct server_conn *c)
{
    return smtp_server_auth_user(c->session) == NULL &&
           (spf_mode(c) != POLICY_SPF_OFF || dmarc_mode(c) != POLICY_DMARC_OFF);
}

/* The checker of the server, made at the first check (its resolver: the resolver directive). */
static struct deliver_authcheck *checker(struct server *srv)
{
    if (srv->receipt_checker == NULL) {
        char err[256] = "";
        srv->receipt_checker = deliver_authcheck_new(srv->base, srv->cfg->resolver, 3300, err,
                                                     sizeof err);
        if (srv->receipt_checker == NULL)
            net_log("receipt: cannot check mail authentication: %s", err);
    }
    return srv->receipt_checker;
}

void server_receipt_close(struct server *srv)
{
    deliver_authcheck_free(srv->receipt_checker);
    srv->receipt_checker = NULL;
}

static void drop_envelope(struct server_receipt *r)
{
    free(r->rcpts);
    r->rcpts = NULL;
    memset(&r->env, 0, sizeof r->env);
    r->session_env = NULL;
}

void server_receipt_forget(struct server_conn *c)
{
    if (c->receipt == NULL)
        return;
    deliver_authcheck_run_free(c->receipt->run);
    drop_envelope(c->receipt);
    free(c->receipt);
    c->receipt = NULL;
}

const char *server_receipt_results(const struct server_conn *c)
{
    return c->receipt ? c->receipt->results : "";
}

/* A new run for the transaction; NULL (logged) when checks cannot be made. */
static struct server_receipt *fresh(struct server_conn *c)
{
    struct deliver_authcheck *a = checker(c->srv);
    if (a == NULL)
        return NULL;
    if (c->receipt == NULL && (c->receipt = calloc(1, sizeof *c->receipt)) == NULL)
        return NULL;
    struct server_receipt *r = c->receipt;
    deliver_authcheck_run_free(r->run);
    drop_envelope(r);
    r->results[0] = '\0';
    r->run = deliver_authcheck_run_new(a);
    return r->run ? r : NULL;
}

/* ---- MAIL FROM: SPF ---- */

static void on_spf(void *ctx, struct deliver_authcheck_run *run)
{
    struct server_conn *c = ctx;
    struct server_receipt *r = c->receipt;
    const struct auth_spf *spf = deliver_authcheck_run_spf(run);
    enum auth_spf_result res = auth_spf_result(spf);
    struct smtp_decision d;
    memset(&d, 0, sizeof d);
    d.reply = REPLY_SENDER_OK;
    smtp_decision_set_detail(&d, r->mail.path.mailbox);
    net_log("receipt: [%s] spf=%s domain=%s (%s)", c->addr, auth_spf_result_name(res),
            auth_spf_domain(spf), auth_spf_reason(spf));
    bool reject = spf_mode(c) == POLICY_SPF_REJECT;
    if (reject && res == AUTH_SPF_FAIL) {
        d.reply = REPLY_SPF_FAIL;
        smtp_decision_set_detail(&d, auth_spf_domain(spf));
    } else if (reject && res == AUTH_SPF_TEMPERROR) {
        d.reply = REPLY_SPF_TEMPERROR;
        smtp_decision_set_detail(&d, auth_spf_domain(spf));
    } else if (server_limits_mail(c, &r->mail, &d) == SMTP_PENDING) {
        return; /* the limits answer the session themselves */
    }
    smtp_server_resume(c->session, &d);
    server_conn_update(c);
}

enum smtp_verdict server_receipt_mail(struct server_conn *c, const struct smtp_command *cmd,
                                      struct smtp_decision *d)
{
    struct server_receipt *r = applies(c) ? fresh(c) : NULL;
    if (r == NULL)
        return server_limits_mail(c, cmd, d);
    r->mail = *cmd;
    r->mail.arg = NULL; /* points into the session's line: not kept */
    r->mail.arg_len = 0;
    const char *from = cmd->path.is_null ? "" : cmd->path.mailbox;
    enum auth_err err = deliver_authcheck_spf(r->run, c->addr, smtp_server_helo(c->session),
                                              from, c->srv->cfg->hostname, on_spf, c);
    if (err != AUTH_OK) {
        net_log("receipt: [%s] SPF not checked: %s", c->addr, auth_strerror(err));
        return server_limits_mail(c, cmd, d);
    }
    return SMTP_PENDING;
}

/* ---- DATA: the message held, then DKIM and DMARC ---- */

bool server_receipt_holds(struct server_conn *c)
{
    return applies(c) && c->receipt != NULL && c->receipt->run != NULL;
}

void server_receipt_keep(struct server_conn *c, const struct store_envelope *se,
                         struct store_rcpt *rcpts, const struct smtp_envelope *env)
{
    struct server_receipt *r = c->receipt;
    drop_envelope(r);
    r->env = *se;
    r->rcpts = rcpts;
    r->session_env = env;
    c->msg_checking = true;
}

/* Writes the Authentication-Results field, folded after each ";" (RFC 8601 §2.2 allows CFWS
 * there). */
static enum store_err write_results(struct store_msg *m, const char *value)
{
    static const char name[] = "Authentication-Results: ";
    enum store_err err = store_msg_write(m, name, sizeof name - 1);
    for (const char *p = value; err == STORE_OK && *p != '\0';) {
        const char *semi = strstr(p, "; ");
        size_t n = semi ? (size_t)(semi - p) + 1 : strlen(p);
        err = store_msg_write(m, p, n);
        if (err == STORE_OK && semi != NULL)
            err = store_msg_write(m, "\r\n\t", 3);
        p += semi ? n + 1 : n;
    }
    return err == STORE_OK ? store_msg_write(m, "\r\n", 2) : err;
}

/* Stores the checked message: the queue file with its folder and results, Received, our
 * Authentication-Results, the message without forged ones. REPLY_OK or the failure reply. */
static enum reply_id store_checked(struct server_conn *c, const char *folder)
{
    struct server_receipt *r = c->receipt;
    r->env.folder = folder;
    r->env.auth_results = r->results;
    enum reply_id reply = server_transaction_open(c, &r->env, r->session_env);
    if (reply != REPLY_OK)
        return reply;
    size_t removed = 0;
    struct server_signing_buf *b = &c->msg_held;
    b->len = auth_ar_strip(b->p, b->len, c->srv->cfg->hostname, &removed);
    if (removed > 0)
        net_log("receipt: %s: removed %zu Authentication-Results field(s) claiming %s",
                store_msg_id(c->msg), removed, c->srv->cfg->hostname);
    enum store_err err = write_results(c->msg, r->results);
    if (err == STORE_OK && b->len > 0)
        err = store_msg_write(c->msg, b->p, b->len);
    server_signing_forget(c);
    return err == STORE_OK ? REPLY_OK
                           : (err == STORE_ERR_NOSPACE ? REPLY_DISK_FULL : REPLY_STORE_FAILED);
}

/* Refuses the checked message with reply (detail in its text): nothing is stored. */
static void refuse(struct server_conn *c, struct smtp_decision *d, enum reply_id reply,
                   const char *detail)
{
    server_transaction_discard(c);
    drop_envelope(c->receipt);
    d->reply = reply;
    smtp_decision_set_detail(d, detail);
}

static void on_message(void *ctx, struct deliver_authcheck_run *run)
{
    struct server_conn *c = ctx;
    struct server_receipt *r = c->receipt;
    const struct auth_dmarc *dm = deliver_authcheck_run_dmarc(run);
    deliver_authcheck_results(run, c->srv->cfg->hostname, r->results, sizeof r->results);
    bool enforce = dmarc_mode(c) == POLICY_DMARC_ENFORCE && dm != NULL &&
                   auth_dmarc_result(dm) == AUTH_DMARC_FAIL;
    enum auth_dmarc_policy policy = dm ? auth_dmarc_policy(dm) : AUTH_DMARC_P_UNSET;
    /* No author domain (no From: field, several, or one we cannot read): RFC 7489 §6.6.1 leaves
     * such messages out of DMARC ("typically rejected": RFC 5322 §3.6 forbids them), so DMARC
     * itself can only say permerror. Accepting them would let anyone past p=reject by adding
     * a second From: or a From: we cannot read, since the reader's mail program still shows
     * an address. Postfix with OpenDMARC refuses them only when told to (RequiredHeaders for
     * the field counts and a From: without a domain, RejectMultiValueFrom for several
     * addresses of different domains); enforce here always refuses a message with no single
     * readable From: field, and evaluates every domain of a From: naming several addresses
     * (§6.6.1: the strictest failing policy applies), which needs no refusal of its own. tag
     * records dmarc=permerror and delivers. */
    const struct auth_from *from = deliver_authcheck_run_from(run);
    bool no_author = dmarc_mode(c) == POLICY_DMARC_ENFORCE && from->status != AUTH_FROM_OK;
    struct smtp_decision d;
    memset(&d, 0, sizeof d);
    if (no_author) {
        net_log("receipt: [%s] from=<%s> refused: %s, no author domain for DMARC: %s", c->addr,
                c->msg_sender ? c->msg_sender : "", auth_from_status_text(from->status),
                r->results);
        refuse(c, &d, REPLY_DMARC_NO_AUTHOR, auth_from_status_text(from->status));
    } else if (enforce && policy == AUTH_DMARC_P_REJECT) {
        net_log("receipt: [%s] from=<%s> refused by the DMARC policy of %s: %s", c->addr,
                c->msg_sender ? c->msg_sender : "", auth_dmarc_from_domain(dm), r->results);
        refuse(c, &d, REPLY_DMARC_REJECT, auth_dmarc_from_domain(dm));
    } else {
        bool junk = enforce && policy == AUTH_DMARC_P_QUARANTINE;
        d.reply = store_checked(c, junk ? JUNK_FOLDER : NULL);
        drop_envelope(r);
        if (d.reply != REPLY_OK) {
            server_transaction_discard(c);
        } else if (server_limits_data_end(c, &d) == SMTP_PENDING) {
            return; /* committing, or the limits decide */
        }
    }
    smtp_server_resume(c->session, &d);
    server_conn_update(c);
}

enum smtp_verdict server_receipt_data_end(struct server_conn *c, struct smtp_decision *d)
{
    struct server_receipt *r = c->receipt;
    bool dmarc = dmarc_mode(c) != POLICY_DMARC_OFF;
    const struct server_signing_buf *b = &c->msg_held;
    enum auth_err err = dmarc ? deliver_authcheck_message(r->run, b->p ? b->p : "", b->len, true,
                                                          on_message, c)
                              : AUTH_ERR_NO_SIGNER; /* SPF alone: nothing more to look up */
    if (err == AUTH_OK)
        return SMTP_PENDING;
    if (dmarc)
        net_log("receipt: [%s] DKIM and DMARC not checked: %s", c->addr, auth_strerror(err));
    deliver_authcheck_results(r->run, c->srv->cfg->hostname, r->results, sizeof r->results);
    d->reply = store_checked(c, NULL);
    drop_envelope(r);
    if (d->reply != REPLY_OK) {
        server_transaction_discard(c);
        return SMTP_DECIDED;
    }
    return server_limits_data_end(c, d);
}
