/* cli/sendmail_smtp.c — `sendmail -bs`: the SMTP server session on stdin/stdout, so that a
 * program speaking SMTP over a pipe (mutt, some MUAs) can submit; each accepted message goes
 * into the maildrop like any other sendmail message. RFC 5321. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/array.h"
#include "cli/cli.h"
#include "policy/config.h"
#include "server/server.h"
#include "smtp/server_session.h"
#include "store/maildrop.h"

struct pipe_session {
    const struct policy_config *cfg;
    struct smtp_server *s;
    char *sender;
    char **rcpts;
    size_t n_rcpts;
    char *msg;
    size_t len, cap;
    bool failed; /* storage refused the message */
};

static enum smtp_verdict on_mail(void *ctx, const struct smtp_command *cmd,
                                 struct smtp_decision *d)
{
    (void)ctx;
    smtp_decision_set_detail(d, cmd->path.mailbox);
    d->reply = REPLY_SENDER_OK;
    return SMTP_DECIDED;
}

/* A local user may send anywhere; in a local domain the user must exist. */
static enum smtp_verdict on_rcpt(void *ctx, const struct smtp_command *cmd,
                                 struct smtp_decision *d)
{
    struct pipe_session *p = ctx;
    smtp_decision_set_detail(d, cmd->path.mailbox);
    enum policy_rcpt_result r =
        server_pickup_classify(p->cfg, cmd->path.mailbox, d->mailbox, sizeof d->mailbox);
    d->reply = r == POLICY_RCPT_UNKNOWN_USER ? REPLY_USER_UNKNOWN : REPLY_RCPT_OK;
    return SMTP_DECIDED;
}

static void forget(struct pipe_session *p)
{
    for (size_t i = 0; i < p->n_rcpts; i++)
        free(p->rcpts[i]);
    free(p->rcpts);
    free(p->sender);
    free(p->msg);
    p->rcpts = NULL;
    p->n_rcpts = 0;
    p->sender = p->msg = NULL;
    p->len = p->cap = 0;
    p->failed = false;
}

static enum smtp_verdict on_data_begin(void *ctx, const struct smtp_envelope *env,
                                       struct smtp_decision *d)
{
    struct pipe_session *p = ctx;
    forget(p);
    p->sender = strdup(env->sender.mailbox);
    p->rcpts = calloc(env->n_rcpts, sizeof *p->rcpts);
    d->reply = REPLY_INTERNAL_ERROR;
    if (!p->sender || !p->rcpts)
        return SMTP_DECIDED;
    for (size_t i = 0; i < env->n_rcpts; i++) {
        if (!(p->rcpts[i] = strdup(env->rcpts[i].address)))
            return SMTP_DECIDED;
        p->n_rcpts++;
    }
    d->reply = REPLY_START_DATA;
    return SMTP_DECIDED;
}

static enum reply_id on_data_write(void *ctx, const char *data, size_t n)
{
    struct pipe_session *p = ctx;
    if (n > SIZE_MAX - p->len ||
        base_array_reserve((void **)&p->msg, &p->cap, p->len + n, 1, 65536) != BASE_OK) {
        p->failed = true;
        return REPLY_INTERNAL_ERROR;
    }
    memcpy(p->msg + p->len, data, n);
    p->len += n;
    return REPLY_OK;
}

static enum smtp_verdict on_data_end(void *ctx, struct smtp_decision *d)
{
    struct pipe_session *p = ctx;
    char name[STORE_MAILDROP_NAME_CAP];
    enum cli_poke poke;
    d->reply = REPLY_STORE_FAILED;
    if (!p->failed && cli_sendmail_drop(p->cfg, p->sender, p->rcpts, p->n_rcpts,
                                        p->msg ? p->msg : "", p->len, name, sizeof name,
                                        &poke) == EX_OK) {
        d->reply = REPLY_QUEUED;
        smtp_decision_set_detail(d, name);
    }
    forget(p);
    return SMTP_DECIDED;
}

static void on_data_abort(void *ctx)
{
    forget(ctx);
}

static bool flush_output(struct pipe_session *p)
{
    size_t n;
    const char *out = smtp_server_output(p->s, &n);
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, out, n);
        if (w <= 0)
            return false;
        smtp_server_consume_output(p->s, (size_t)w);
        out = smtp_server_output(p->s, &n);
    }
    return true;
}

int cli_sendmail_smtp(const struct policy_config *cfg, bool verbose)
{
    (void)verbose;
    struct smtp_server_opts opts = {
        .hostname = cfg->hostname,
        .max_message_size = cfg->max_message_size,
        .max_recipients = cfg->max_recipients,
        .max_errors = cfg->max_errors,
        .ext = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8,
        .bare_lf_normalize = true, /* a pipe from a local program, not the network */
        .auth = SMTP_AUTH_NEVER,
    };
    struct smtp_server_callbacks cb = {
        .mail = on_mail,
        .rcpt = on_rcpt,
        .data_begin = on_data_begin,
        .data_write = on_data_write,
        .data_end = on_data_end,
        .data_abort = on_data_abort,
    };
    struct pipe_session p = {.cfg = cfg};
    p.s = smtp_server_new(&opts, &cb, &p);
    if (!p.s)
        return EX_OSERR;
    smtp_server_start(p.s);
    char buf[16384];
    int rc = EX_OK;
    while (flush_output(&p) && !smtp_server_closing(p.s)) {
        size_t room = smtp_server_input_room(p.s);
        ssize_t r = read(STDIN_FILENO, buf, room < sizeof buf ? room : sizeof buf);
        if (r <= 0) {
            rc = r < 0 ? EX_IOERR : EX_OK; /* the client went away without QUIT */
            break;
        }
        smtp_server_feed(p.s, buf, (size_t)r);
    }
    forget(&p);
    smtp_server_free(p.s);
    return rc;
}
