/* smtp/server_session.c — the server state machine, greeting to QUIT, without I/O.
 * RFC 5321 §3–4, RFC 2920, RFC 1870, RFC 6152, RFC 2034, RFC 6531, RFC 3030, RFC 3461.
 * Each command has a "may it run now?" check and a "do it" step; every reply names a row of
 * the reply table. Input is buffered (bounded) while a decision is pending, so pipelined
 * commands are answered in order. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply/safe_text.h"
#include "smtp/addr.h"
#include "smtp/data.h"
#include "smtp/server_session.h"
#include "smtp/trace.h"

/* The session's states: SMTP_TRACE_STATES (trace.h) makes enum state and state_names[]. */
#define STATES(X)                                                         \
    X(NEED_HELO) /* greeted, no HELO/EHLO yet */                          \
    X(READY)     /* HELO/EHLO done, no transaction */                     \
    X(MAIL)      /* MAIL accepted: RCPT, DATA, BDAT */                    \
    X(DATA)      /* reading DATA content */                               \
    X(BDAT)      /* reading a BDAT chunk's octets */                      \
    X(AUTH)      /* AUTH: waiting for the client's SASL response line */  \
    X(TLS)       /* STARTTLS accepted: waiting for the caller's handshake */

SMTP_TRACE_STATES(STATES);

/* Where an AUTH exchange stands (ST_AUTH). */
enum sasl_step { SASL_PLAIN, SASL_LOGIN_USER, SASL_LOGIN_PASS };

/* Which decision the session waits for. */
enum pending {
    PEND_NONE,
    PEND_MAIL,
    PEND_RCPT,
    PEND_DATA_BEGIN, /* after DATA */
    PEND_BDAT_BEGIN, /* after the first BDAT */
    PEND_DATA_END,
    PEND_AUTH,
};

struct smtp_server {
    const struct smtp_server_opts *opts;
    const struct smtp_server_callbacks *cb;
    void *ctx;

    enum state state;
    enum pending pending;
    bool esmtp, closing, shutting_down, discarding_line, tls;
    size_t discard_limit; /* the limit the line being discarded broke */
    unsigned errors;
    unsigned messages; /* accepted in this session, for max_messages_per_session */
    uint64_t commands; /* command lines handled, for the caller's rate limit */
    uint64_t command_limit; /* lines are handled while commands < command_limit */
    bool command_limited;   /* input waits for command_limit to rise */
    char *helo;
    char *auth_user;
    struct smtp_sasl_creds *creds; /* during AUTH only; wiped */
    enum sasl_step sasl_step;
    const char *sasl_mechanism;

    struct smtp_envelope *env;
    struct smtp_rcpt pending_rcpt; /* the RCPT awaiting its decision */
    struct smtp_data_reader reader;
    bool storing;   /* data_begin accepted: storage is open */
    bool bdat_used; /* this transaction uses BDAT */
    bool bdat_last;
    uint64_t bdat_size, bdat_left;
    enum reply_id bdat_refusal; /* chunk is read and discarded, then refused with this */
    enum reply_id write_failure; /* what data_write said when storage failed */
    bool bdat_refusing;

    char line[64]; /* the command being answered, for on_reply: reply/safe_text.h */

    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off, out_cap;
};

/* Every change of state goes through here, so that the trace shows the machine as it runs
 * (a state set to itself is no change and shows nothing). */
static void enter_state(struct smtp_server *s, enum state st)
{
    enum state old = s->state;
    s->state = st;
    if (old != st)
        smtp_trace_state(s->cb->trace, s->ctx, state_names[old], state_names[st]);
}

/* Input buffer: pipelined commands plus one partial line (or a block of message data). */
#define INPUT_CAP (LIMIT_PIPELINE_INPUT + LIMIT_AUTH_LINE)
/* Buffers above this are released when drained, so idle sessions stay small. */
#define IDLE_BUFFER_KEEP 1024

/* ---- output ---------------------------------------------------------------------------- */

static bool out_reserve(struct smtp_server *s, size_t need)
{
    if (s->out_off > 0 && s->out_off == s->out_len) {
        s->out_off = s->out_len = 0;
    }
    if (s->out_cap - s->out_len >= need)
        return true;
    size_t cap = s->out_cap ? s->out_cap : 256;
    while (cap - s->out_len < need)
        cap *= 2;
    char *p = realloc(s->out, cap);
    if (!p)
        return false;
    s->out = p;
    s->out_cap = cap;
    return true;
}

static bool counts_as_error(enum reply_id id)
{
    const struct reply_row *row = reply_row_get(id);
    return row->code >= 500;
}

static void send_reply(struct smtp_server *s, enum reply_id id, const char *detail);

/* One more error: at max_errors, 421 4.7.0 and close. */
static void count_error(struct smtp_server *s)
{
    if (++s->errors >= s->opts->max_errors)
        send_reply(s, REPLY_TOO_MANY_ERRORS, s->opts->hostname);
}

/* Tells the caller how many RCPTs the open transaction refused for a recipient limit. */
static void report_over_limit(struct smtp_server *s)
{
    if (!s->env || s->env->rcpts_over_limit == 0)
        return;
    if (s->cb->rcpts_over_limit)
        s->cb->rcpts_over_limit(s->ctx, s->env->rcpts_over_limit);
    s->env->rcpts_over_limit = 0;
}

static void send_reply_lines(struct smtp_server *s, enum reply_id id, const char *detail,
                             const char *const *more, size_t n_more)
{
    unsigned flags = REPLY_FMT_ENHANCED | (s->opts->soft_bounce ? REPLY_FMT_SOFT_BOUNCE : 0);
    size_t need = 512;
    for (;;) {
        if (!out_reserve(s, need)) {
            s->closing = true; /* out of memory: nothing sane left to say */
            return;
        }
        size_t n = reply_format(s->out + s->out_len, s->out_cap - s->out_len, id, detail,
                                more, n_more, flags);
        if (n > 0) {
            s->out_len += n;
            break;
        }
        need = (s->out_cap - s->out_len) * 2 + 512;
    }
    if (s->cb->on_reply)
        s->cb->on_reply(s->ctx, s->line, id, detail ? detail : "");
    if (reply_row_get(id)->code == 421 || id == REPLY_BYE) {
        s->closing = true;
        report_over_limit(s);
    } else if (counts_as_error(id)) {
        count_error(s);
    }
}

static void send_reply(struct smtp_server *s, enum reply_id id, const char *detail)
{
    send_reply_lines(s, id, detail, NULL, 0);
}

/* ---- transaction ----------------------------------------------------------------------- */

static void rcpt_clear(struct smtp_rcpt *r)
{
    free(r->address);
    free(r->mailbox);
    free(r->orcpt);
    memset(r, 0, sizeof *r);
}

static void abort_storage(struct smtp_server *s)
{
    if (s->storing && s->cb->data_abort)
        s->cb->data_abort(s->ctx);
    s->storing = false;
}

/* Ends the transaction (RSET, HELO/EHLO, end of message, failure): frees the envelope. */
static void transaction_reset(struct smtp_server *s)
{
    abort_storage(s);
    report_over_limit(s);
    if (s->env) {
        for (size_t i = 0; i < s->env->n_rcpts; i++)
            rcpt_clear(&s->env->rcpts[i]);
        free(s->env->rcpts);
        free(s->env);
        s->env = NULL;
    }
    rcpt_clear(&s->pending_rcpt);
    s->bdat_used = false;
    s->bdat_refusing = false;
    enter_state(s, s->helo ? ST_READY : ST_NEED_HELO);
}

static char *dup_string(const char *p)
{
    size_t n = strlen(p);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, p, n + 1);
    return d;
}

/* ---- decisions --------------------------------------------------------------------------- */

static bool accepted(const struct smtp_decision *d)
{
    enum reply_class cls = reply_class_of(reply_row_get(d->reply)->code);
    return cls == REPLY_CLASS_SUCCESS || cls == REPLY_CLASS_INTERMEDIATE;
}

static void begin_reading_message(struct smtp_server *s, enum state st)
{
    unsigned flags = s->opts->bare_lf_normalize ? SMTP_DATA_NORMALIZE_BARE : 0;
    smtp_data_init(&s->reader, s->opts->max_message_size, flags);
    s->write_failure = REPLY_STORE_FAILED;
    s->storing = true;
    enter_state(s, st);
}

static void decide_mail(struct smtp_server *s, const struct smtp_decision *d)
{
    if (accepted(d)) {
        enter_state(s, ST_MAIL);
    } else {
        transaction_reset(s);
    }
    send_reply(s, d->reply, d->detail);
}

/* A RCPT was refused 452 4.5.3 for a recipient limit. A pipelining client meets the limit in
 * good faith (RFC 5321 §4.5.3.1.10), so that is no error until rcpt_overshoot of them; each one
 * past it is. */
static void refused_over_limit(struct smtp_server *s)
{
    if (++s->env->rcpts_over_limit > s->opts->rcpt_overshoot && !s->closing)
        count_error(s);
}

/* NOTIFY of merged duplicates (RFC 3461 §4.1): every report one of them asked for is sent;
 * NEVER only when all said it. Absent means failures and delays, as deliver/dsn.c reads it. */
static unsigned merged_notify(unsigned a, unsigned b)
{
    const unsigned absent = SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY;
    if (a == b || b == SMTP_NOTIFY_NEVER)
        return a;
    if (a == SMTP_NOTIFY_NEVER)
        return b;
    return (a ? a : absent) | (b ? b : absent);
}

/* The recipient of the envelope that r would deliver to again: the same local mailbox, or the
 * same remote mailbox (smtp_addr_same_mailbox); NULL when r is a new one. */
static struct smtp_rcpt *same_recipient(const struct smtp_envelope *env, const struct smtp_rcpt *r)
{
    for (size_t i = 0; i < env->n_rcpts; i++) {
        struct smtp_rcpt *e = &env->rcpts[i];
        if (r->mailbox ? e->mailbox && strcmp(e->mailbox, r->mailbox) == 0
                       : !e->mailbox && smtp_addr_same_mailbox(e->address, r->address))
            return e;
    }
    return NULL;
}

/* r names a recipient already accepted: one delivery. It keeps the first RCPT's address and
 * ORCPT (a DSN reports one delivery, under one original recipient; the first ORCPT given if
 * the first RCPT had none) and the NOTIFY of both (merged_notify). */
static void merge_recipient(struct smtp_envelope *env, struct smtp_rcpt *into, struct smtp_rcpt *r)
{
    into->notify = merged_notify(into->notify, r->notify);
    if (!into->orcpt) {
        into->orcpt = r->orcpt;
        r->orcpt = NULL;
    }
    rcpt_clear(r);
    env->rcpts_merged++;
}

static void decide_rcpt(struct smtp_server *s, const struct smtp_decision *d)
{
    struct smtp_envelope *env = s->env;
    if (accepted(d)) {
        if (d->mailbox[0] != '\0' && !(s->pending_rcpt.mailbox = dup_string(d->mailbox))) {
            rcpt_clear(&s->pending_rcpt);
            send_reply(s, REPLY_INTERNAL_ERROR, NULL);
            return;
        }
        struct smtp_rcpt *same = same_recipient(env, &s->pending_rcpt);
        if (same) {
            merge_recipient(env, same, &s->pending_rcpt);
            send_reply(s, d->reply, d->detail); /* answered as any accepted RCPT */
            return;
        }
        if (env->n_rcpts == env->cap_rcpts) {
            size_t cap = env->cap_rcpts ? env->cap_rcpts * 2 : 4;
            struct smtp_rcpt *r = realloc(env->rcpts, cap * sizeof *r);
            if (!r) {
                rcpt_clear(&s->pending_rcpt);
                send_reply(s, REPLY_INTERNAL_ERROR, NULL);
                return;
            }
            env->rcpts = r;
            env->cap_rcpts = cap;
        }
        env->rcpts[env->n_rcpts++] = s->pending_rcpt;
        memset(&s->pending_rcpt, 0, sizeof s->pending_rcpt);
    } else {
        rcpt_clear(&s->pending_rcpt);
    }
    send_reply(s, d->reply, d->detail);
    if (d->reply == REPLY_TOO_MANY_RCPTS) /* the caller's own limit (a plan's) */
        refused_over_limit(s);
}

static void decide_data_begin(struct smtp_server *s, const struct smtp_decision *d)
{
    if (accepted(d))
        begin_reading_message(s, ST_DATA);
    send_reply(s, d->reply, d->detail);
}

static void decide_bdat_begin(struct smtp_server *s, const struct smtp_decision *d)
{
    if (accepted(d)) {
        begin_reading_message(s, ST_BDAT);
    } else {
        s->bdat_refusing = true;
        s->bdat_refusal = d->reply;
        enter_state(s, ST_BDAT);
    }
}

static void decide_data_end(struct smtp_server *s, const struct smtp_decision *d)
{
    if (accepted(d) && s->messages < UINT_MAX)
        s->messages++;
    transaction_reset(s);
    send_reply(s, d->reply, d->detail);
}

static void sasl_end(struct smtp_server *s)
{
    if (s->creds) {
        smtp_sasl_wipe(s->creds);
        free(s->creds);
        s->creds = NULL;
    }
    if (s->state == ST_AUTH)
        enter_state(s, s->helo ? ST_READY : ST_NEED_HELO);
}

static void decide_auth(struct smtp_server *s, const struct smtp_decision *d)
{
    if (accepted(d) && s->creds && !(s->auth_user = dup_string(s->creds->user))) {
        sasl_end(s);
        send_reply(s, REPLY_AUTH_TEMPFAIL, NULL);
        return;
    }
    sasl_end(s);
    send_reply(s, d->reply, d->detail);
}

static void decided(struct smtp_server *s, const struct smtp_decision *d)
{
    enum pending p = s->pending;
    s->pending = PEND_NONE;
    switch (p) {
    case PEND_MAIL: decide_mail(s, d); break;
    case PEND_RCPT: decide_rcpt(s, d); break;
    case PEND_DATA_BEGIN: decide_data_begin(s, d); break;
    case PEND_BDAT_BEGIN: decide_bdat_begin(s, d); break;
    case PEND_DATA_END: decide_data_end(s, d); break;
    case PEND_AUTH: decide_auth(s, d); break;
    case PEND_NONE: break;
    }
}

/* Asks a callback; applies its decision now or when the caller resumes. */
static void ask(struct smtp_server *s, enum pending what,
                enum smtp_verdict verdict, struct smtp_decision *d)
{
    s->pending = what;
    if (verdict == SMTP_DECIDED)
        decided(s, d);
}

static void decision_init(struct smtp_decision *d)
{
    memset(d, 0, sizeof *d);
    d->reply = REPLY_INTERNAL_ERROR;
}

/* ---- message end ------------------------------------------------------------------------- */

static int emit_to_storage(void *ctx, const char *p, size_t n)
{
    struct smtp_server *s = ctx;
    enum reply_id failure = s->cb->data_write(s->ctx, p, n);
    if (failure == REPLY_OK)
        return 0;
    s->write_failure = failure;
    return -1;
}

/* The message is complete: refuse it for what the reader found, or commit it. */
static void finish_message(struct smtp_server *s)
{
    const struct smtp_data_reader *r = &s->reader;
    enum reply_id refusal = REPLY_OK;
    if (r->nul)
        refusal = REPLY_NUL_BYTE;
    else if (r->bare_lf)
        refusal = REPLY_BARE_LF;
    else if (r->too_big)
        refusal = REPLY_SIZE_EXCEEDED;
    else if (r->emit_failed)
        refusal = s->write_failure;
    else if (s->opts->max_hops > 0 && r->hops.count > s->opts->max_hops)
        refusal = REPLY_TOO_MANY_HOPS;
    if (refusal != REPLY_OK) {
        char hops[80];
        snprintf(hops, sizeof hops, "%u Received: fields, the limit is %u", r->hops.count,
                 s->opts->max_hops);
        transaction_reset(s);
        send_reply(s, refusal, refusal == REPLY_TOO_MANY_HOPS ? hops : NULL);
        return;
    }
    struct smtp_decision d;
    decision_init(&d);
    s->storing = false; /* from here on the caller owns the stored message's fate */
    ask(s, PEND_DATA_END, s->cb->data_end(s->ctx, &d), &d);
}

static void finish_bdat_chunk(struct smtp_server *s)
{
    if (s->bdat_refusing) {
        s->bdat_refusing = false;
        transaction_reset(s);
        send_reply(s, s->bdat_refusal, NULL);
        return;
    }
    if (s->reader.too_big) {
        transaction_reset(s);
        send_reply(s, REPLY_SIZE_EXCEEDED, NULL);
        return;
    }
    if (s->bdat_last) {
        smtp_data_feed_chunk(&s->reader, "", 0, true, emit_to_storage, s);
        enter_state(s, ST_MAIL);
        finish_message(s);
        return;
    }
    enter_state(s, ST_MAIL);
    char octets[24];
    snprintf(octets, sizeof octets, "%llu", (unsigned long long)s->bdat_size);
    send_reply(s, REPLY_CHUNK_OK, octets);
}

/* ---- commands ---------------------------------------------------------------------------- */

static enum reply_id parse_error_reply(enum smtp_cmd_err err)
{
    switch (err) {
    case SMTP_CMD_OK: return REPLY_OK;
    case SMTP_CMD_UNKNOWN_VERB: return REPLY_UNKNOWN_COMMAND;
    case SMTP_CMD_NOT_IMPLEMENTED: return REPLY_NOT_IMPLEMENTED;
    case SMTP_CMD_SYNTAX: return REPLY_SYNTAX;
    case SMTP_CMD_BAD_SENDER: return REPLY_BAD_SENDER_SYNTAX;
    case SMTP_CMD_BAD_RECIPIENT: return REPLY_BAD_RCPT_SYNTAX;
    case SMTP_CMD_EIGHT_BIT_PATH: return REPLY_EIGHT_BIT_PATH;
    case SMTP_CMD_UNKNOWN_PARAM: return REPLY_UNKNOWN_PARAM;
    case SMTP_CMD_PARAM_UNSUPPORTED: return REPLY_PARAM_NOT_SUPPORTED;
    case SMTP_CMD_BAD_PARAM_VALUE: return REPLY_SYNTAX;
    }
    return REPLY_SYNTAX;
}

static void reply_parse_error(struct smtp_server *s, enum smtp_cmd_err err,
                              const struct smtp_command *cmd)
{
    send_reply(s, parse_error_reply(err), cmd->err_detail[0] ? cmd->err_detail : "malformed command");
}

static bool auth_offered(const struct smtp_server *s)
{
    return s->opts->auth == SMTP_AUTH_ALWAYS || (s->opts->auth == SMTP_AUTH_AFTER_TLS && s->tls);
}

static bool starttls_offered(const struct smtp_server *s)
{
    return !s->tls && s->opts->offer_starttls && s->opts->tls_available;
}

/* The extensions this session advertises now: they decide which parameters are known. */
static unsigned session_ext(const struct smtp_server *s)
{
    unsigned ext = s->opts->ext & ~SMTP_EXT_AUTH;
    if (auth_offered(s))
        ext |= SMTP_EXT_AUTH;
    if (s->env && s->env->smtputf8)
        ext |= SMTP_EXT_UTF8_TRANSACTION;
    return ext;
}

/* RFC 9422 §4.1: limit values are at most 6 digits; a larger limit is no limit a client could
 * run into, so the largest value is advertised instead. */
static unsigned limit_value(unsigned v)
{
    return v > 999999 ? 999999 : v;
}

/* "LIMITS RCPTMAX=100 MAILMAX=5" (RFC 9422): the limits a client can avoid running into. */
static bool limits_keyword(const struct smtp_server *s, char *out, size_t cap)
{
    unsigned rcpt = s->opts->max_recipients, mail = s->opts->max_messages_per_session;
    if (rcpt == 0 && mail == 0)
        return false;
    int n = snprintf(out, cap, "LIMITS");
    if (n > 0 && rcpt > 0)
        n += snprintf(out + n, cap - (size_t)n, " RCPTMAX=%u", limit_value(rcpt));
    if (n > 0 && (size_t)n < cap && mail > 0)
        n += snprintf(out + n, cap - (size_t)n, " MAILMAX=%u", limit_value(mail));
    return n > 0 && (size_t)n < cap;
}

static void do_helo(struct smtp_server *s, const struct smtp_command *cmd, bool ehlo)
{
    char *name = malloc(cmd->arg_len + 1);
    if (!name) {
        send_reply(s, REPLY_INTERNAL_ERROR, NULL);
        return;
    }
    memcpy(name, cmd->arg, cmd->arg_len);
    name[cmd->arg_len] = '\0';
    free(s->helo);
    s->helo = name;
    s->esmtp = ehlo;
    transaction_reset(s); /* RFC 5321 §4.1.4: HELO/EHLO imply RSET */
    if (!ehlo) {
        send_reply(s, REPLY_HELO_OK, s->opts->hostname);
        return;
    }
    const char *lines[13];
    size_t n = 0;
    char size_line[40], limits_line[64];
    unsigned ext = s->opts->ext;
    lines[n++] = "PIPELINING";
    if (ext & SMTP_EXT_SIZE) {
        snprintf(size_line, sizeof size_line, "SIZE %llu",
                 (unsigned long long)s->opts->max_message_size);
        lines[n++] = size_line;
    }
    if (ext & SMTP_EXT_8BITMIME)
        lines[n++] = "8BITMIME";
    lines[n++] = "ENHANCEDSTATUSCODES";
    if (ext & SMTP_EXT_SMTPUTF8)
        lines[n++] = "SMTPUTF8";
    if (ext & SMTP_EXT_CHUNKING)
        lines[n++] = "CHUNKING";
    if (ext & SMTP_EXT_BINARYMIME)
        lines[n++] = "BINARYMIME";
    if (ext & SMTP_EXT_DSN)
        lines[n++] = "DSN";
    if (starttls_offered(s))
        lines[n++] = "STARTTLS";
    if (auth_offered(s))
        lines[n++] = "AUTH PLAIN LOGIN";
    if (limits_keyword(s, limits_line, sizeof limits_line))
        lines[n++] = limits_line;
    send_reply_lines(s, REPLY_HELO_OK, s->opts->hostname, lines, n);
}

static void do_mail(struct smtp_server *s, const struct smtp_command *cmd)
{
    if (s->opts->max_messages_per_session > 0 &&
        s->messages >= s->opts->max_messages_per_session) {
        send_reply(s, REPLY_TOO_MANY_MESSAGES, s->opts->hostname); /* 421: closes */
        return;
    }
    if (s->opts->require_auth && !s->auth_user) {
        send_reply(s, REPLY_AUTH_REQUIRED, NULL);
        return;
    }
    if (cmd->has_size && (s->opts->ext & SMTP_EXT_SIZE) && cmd->size > s->opts->max_message_size) {
        send_reply(s, REPLY_SIZE_EXCEEDED, NULL);
        return;
    }
    struct smtp_envelope *env = calloc(1, sizeof *env);
    if (!env) {
        send_reply(s, REPLY_INTERNAL_ERROR, NULL);
        return;
    }
    env->sender = cmd->path;
    env->has_size = cmd->has_size;
    env->size = cmd->size;
    env->body = cmd->body;
    env->smtputf8 = cmd->smtputf8;
    env->ret = cmd->ret;
    memcpy(env->envid, cmd->envid, sizeof env->envid);
    s->env = env;
    struct smtp_decision d;
    decision_init(&d);
    ask(s, PEND_MAIL, s->cb->mail(s->ctx, cmd, &d), &d);
}

static void do_rcpt(struct smtp_server *s, const struct smtp_command *cmd)
{
    s->env->rcpt_attempts++;
    if (s->env->n_rcpts + s->env->rcpts_merged >= s->opts->max_recipients) {
        send_reply(s, REPLY_TOO_MANY_RCPTS, NULL);
        refused_over_limit(s);
        return;
    }
    struct smtp_rcpt *r = &s->pending_rcpt;
    rcpt_clear(r);
    r->notify = cmd->notify;
    r->address = dup_string(cmd->path.mailbox);
    if (cmd->orcpt[0] != '\0')
        r->orcpt = dup_string(cmd->orcpt);
    if (!r->address || (cmd->orcpt[0] != '\0' && !r->orcpt)) {
        rcpt_clear(r);
        send_reply(s, REPLY_INTERNAL_ERROR, NULL);
        return;
    }
    struct smtp_decision d;
    decision_init(&d);
    ask(s, PEND_RCPT, s->cb->rcpt(s->ctx, cmd, &d), &d);
}

/* DATA and BDAT need a transaction with at least one accepted recipient. */
static enum reply_id message_start_refusal(const struct smtp_server *s)
{
    if (s->state != ST_MAIL)
        return REPLY_NEED_MAIL;
    if (s->env->n_rcpts == 0)
        return s->env->rcpt_attempts ? REPLY_NO_VALID_RCPTS : REPLY_NEED_RCPT;
    return REPLY_OK;
}

static void do_data(struct smtp_server *s)
{
    enum reply_id refusal = message_start_refusal(s);
    if (refusal == REPLY_OK && s->bdat_used)
        refusal = REPLY_DATA_AFTER_BDAT;
    if (refusal != REPLY_OK) {
        send_reply(s, refusal, NULL);
        return;
    }
    struct smtp_decision d;
    decision_init(&d);
    ask(s, PEND_DATA_BEGIN, s->cb->data_begin(s->ctx, s->env, &d), &d);
}

static void do_bdat(struct smtp_server *s, const struct smtp_command *cmd)
{
    s->bdat_size = s->bdat_left = cmd->chunk_size;
    s->bdat_last = cmd->last;
    enum reply_id refusal = message_start_refusal(s);
    if (refusal != REPLY_OK) {
        /* RFC 3030 §2: the chunk's octets are read and discarded, then refused. */
        s->bdat_refusing = true;
        s->bdat_refusal = refusal;
        enter_state(s, ST_BDAT);
        return;
    }
    if (s->bdat_used) {
        enter_state(s, ST_BDAT);
        return;
    }
    s->bdat_used = true;
    struct smtp_decision d;
    decision_init(&d);
    ask(s, PEND_BDAT_BEGIN, s->cb->data_begin(s->ctx, s->env, &d), &d);
}

static void do_starttls(struct smtp_server *s)
{
    if (s->tls) {
        send_reply(s, REPLY_TLS_ALREADY_ACTIVE, NULL);
        return;
    }
    if (!starttls_offered(s)) {
        send_reply(s, REPLY_TLS_NOT_AVAILABLE, NULL);
        return;
    }
    transaction_reset(s);
    send_reply(s, REPLY_READY_TLS, NULL);
    enter_state(s, ST_TLS); /* process() drops whatever follows in plaintext */
}

static void ask_auth(struct smtp_server *s)
{
    struct smtp_decision d;
    decision_init(&d);
    ask(s, PEND_AUTH, s->cb->auth(s->ctx, s->sasl_mechanism, s->creds, &d), &d);
}

/* One SASL message (the initial response or a response line), base64 as sent. */
static void sasl_message(struct smtp_server *s, const char *b64, size_t len)
{
    if (len == 1 && b64[0] == '*') {
        sasl_end(s);
        send_reply(s, REPLY_AUTH_CANCELLED, NULL);
        return;
    }
    unsigned char msg[LIMIT_AUTH_LINE]; /* base64 decodes to 3/4 of the line at most */
    size_t n = 0;
    bool empty = len == 1 && b64[0] == '='; /* RFC 4954 §4: a zero-length initial response */
    if (!empty && !smtp_base64_decode(b64, len, msg, sizeof msg, &n)) {
        sasl_end(s);
        send_reply(s, REPLY_AUTH_BAD_BASE64, NULL);
        return;
    }
    struct smtp_sasl_creds *c = s->creds;
    bool ok = true;
    switch (s->sasl_step) {
    case SASL_PLAIN:
        ok = smtp_sasl_plain(msg, n, c) == SMTP_SASL_OK;
        break;
    case SASL_LOGIN_USER:
    case SASL_LOGIN_PASS: {
        char *field = s->sasl_step == SASL_LOGIN_USER ? c->user : c->pass;
        size_t cap = s->sasl_step == SASL_LOGIN_USER ? sizeof c->user : sizeof c->pass;
        ok = n > 0 && n < cap && !memchr(msg, '\0', n);
        if (ok) {
            memcpy(field, msg, n);
            field[n] = '\0';
        }
        break;
    }
    }
    explicit_bzero(msg, sizeof msg);
    if (!ok) {
        sasl_end(s);
        send_reply(s, REPLY_AUTH_BAD_BASE64, NULL);
        return;
    }
    if (s->sasl_step == SASL_PLAIN && !smtp_sasl_authzid_ok(c)) {
        sasl_end(s); /* acting for another identity is not offered */
        send_reply(s, REPLY_AUTH_FAILED, NULL);
        return;
    }
    if (s->sasl_step == SASL_LOGIN_USER) {
        s->sasl_step = SASL_LOGIN_PASS;
        enter_state(s, ST_AUTH);
        send_reply(s, REPLY_AUTH_CHALLENGE, SMTP_SASL_LOGIN_PASS_CHALLENGE);
        return;
    }
    ask_auth(s);
}

static enum reply_id auth_refusal(const struct smtp_server *s)
{
    if (!auth_offered(s))
        return s->opts->auth == SMTP_AUTH_AFTER_TLS ? REPLY_ENCRYPTION_REQUIRED
                                                    : REPLY_AUTH_NOT_ENABLED;
    if (s->state == ST_NEED_HELO)
        return REPLY_NEED_HELO;
    if (s->auth_user)
        return REPLY_ALREADY_AUTHENTICATED;
    if (s->state == ST_MAIL)
        return REPLY_AUTH_IN_TRANSACTION;
    return REPLY_OK;
}

/* AUTH mechanism [initial-response] (RFC 4954 §4). */
static void do_auth(struct smtp_server *s, const struct smtp_command *cmd)
{
    size_t mech_len = 0;
    while (mech_len < cmd->arg_len && cmd->arg[mech_len] != ' ')
        mech_len++;
    enum reply_id refusal = auth_refusal(s);
    if (refusal != REPLY_OK) {
        send_reply(s, refusal, NULL);
        return;
    }
    if (mech_len == 5 && strncasecmp(cmd->arg, "PLAIN", 5) == 0) {
        s->sasl_mechanism = "PLAIN";
        s->sasl_step = SASL_PLAIN;
    } else if (mech_len == 5 && strncasecmp(cmd->arg, "LOGIN", 5) == 0) {
        s->sasl_mechanism = "LOGIN";
        s->sasl_step = SASL_LOGIN_USER;
    } else {
        send_reply(s, REPLY_AUTH_UNKNOWN_MECHANISM, NULL);
        return;
    }
    s->creds = calloc(1, sizeof *s->creds);
    if (!s->creds) {
        send_reply(s, REPLY_AUTH_TEMPFAIL, NULL);
        return;
    }
    enter_state(s, ST_AUTH);
    const char *initial = cmd->arg + mech_len;
    size_t initial_len = cmd->arg_len - mech_len;
    while (initial_len > 0 && *initial == ' ') {
        initial++;
        initial_len--;
    }
    if (initial_len > 0) {
        sasl_message(s, initial, initial_len);
        return;
    }
    /* PLAIN: an empty challenge; LOGIN: "Username:". */
    send_reply(s, REPLY_AUTH_CHALLENGE,
               s->sasl_step == SASL_PLAIN ? "" : SMTP_SASL_LOGIN_USER_CHALLENGE);
}

static void do_help(struct smtp_server *s)
{
    static const char *const lines[] = {
        "HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP",
        "'clearmta explain CODE' explains any reply",
    };
    send_reply_lines(s, REPLY_HELP, NULL, lines, sizeof lines / sizeof lines[0]);
}

/* Sequence checks that come before argument syntax (RFC 5321 §4.1.4: 503 for bad order). */
static enum reply_id sequence_refusal(const struct smtp_server *s, enum smtp_verb verb)
{
    switch (verb) {
    case SMTP_VERB_MAIL:
        if (s->state == ST_NEED_HELO)
            return REPLY_NEED_HELO;
        if (s->state == ST_MAIL)
            return REPLY_NESTED_MAIL;
        return REPLY_OK;
    case SMTP_VERB_RCPT:
        if (s->state != ST_MAIL)
            return REPLY_NEED_MAIL;
        return s->bdat_used ? REPLY_RCPT_AFTER_BDAT : REPLY_OK;
    default:
        return REPLY_OK;
    }
}

static void remember_line(struct smtp_server *s, const char *line, size_t len)
{
    char auth[sizeof s->line];
    if (len > 5 && strncasecmp(line, "AUTH ", 5) == 0) {
        /* "AUTH PLAIN <initial response>": the response holds the password; keep the verb and
         * the mechanism only, one space between them however many the client put (hundreds
         * would push the mechanism out of the remembered line). */
        size_t mech = 5;
        while (mech < len && line[mech] == ' ')
            mech++;
        const char *end = memchr(line + mech, ' ', len - mech);
        size_t mech_len = (end ? (size_t)(end - line) : len) - mech;
        if (mech_len > sizeof auth - 5)
            mech_len = sizeof auth - 5;
        memcpy(auth, line, 5);
        memcpy(auth + 5, line + mech, mech_len);
        line = auth;
        len = 5 + mech_len;
    }
    reply_safe_text_buf(line, len, " ", s->line, sizeof s->line);
}

/* RFC 5321 §4.5.3.1.4: 512 octets; MAIL/RCPT carry extension parameters (RFC 3461 allows
 * longer lines), AUTH carries a SASL initial response (RFC 4954 §4: 12288 octets). */
static size_t line_limit(const char *line, size_t len)
{
    if (len >= 4 && (strncasecmp(line, "MAIL", 4) == 0 || strncasecmp(line, "RCPT", 4) == 0))
        return LIMIT_MAIL_RCPT_LINE;
    if (len >= 4 && strncasecmp(line, "AUTH", 4) == 0)
        return LIMIT_AUTH_LINE;
    return LIMIT_COMMAND_LINE;
}

/* HELO/EHLO names that are not valid domains ("my_host", "DESKTOP_1") are common from real
 * clients, and the name is only recorded, never trusted: a single token of printable ASCII is
 * accepted; anything else stays a syntax error. Received: shows such a name only inside its
 * comment, escaped (smtp/received.c). */
static bool tolerable_helo(const struct smtp_command *cmd)
{
    if ((cmd->verb != SMTP_VERB_HELO && cmd->verb != SMTP_VERB_EHLO) || !cmd->arg)
        return false;
    for (size_t i = 0; i < cmd->arg_len; i++)
        if (cmd->arg[i] <= ' ' || cmd->arg[i] > '~')
            return false;
    return cmd->arg_len > 0 && cmd->arg_len <= LIMIT_DOMAIN;
}

static void send_line_too_long(struct smtp_server *s, size_t limit)
{
    char text[24];
    snprintf(text, sizeof text, "%zu", limit);
    send_reply(s, REPLY_LINE_TOO_LONG, text);
}

static void handle_line(struct smtp_server *s, const char *line, size_t len)
{
    s->commands++;
    remember_line(s, line, len);
    if (len + 2 > line_limit(line, len)) {
        send_line_too_long(s, line_limit(line, len));
        return;
    }
    if (memchr(line, '\0', len) || memchr(line, '\r', len)) {
        send_reply(s, REPLY_SYNTAX, "NUL or CR inside a command line");
        return;
    }
    struct smtp_command cmd;
    enum smtp_cmd_err err = smtp_command_parse(line, len, session_ext(s), &cmd);
    if (err == SMTP_CMD_UNKNOWN_VERB) {
        send_reply(s, REPLY_UNKNOWN_COMMAND, NULL);
        return;
    }
    if (s->shutting_down && s->state != ST_MAIL && cmd.verb != SMTP_VERB_QUIT) {
        send_reply(s, REPLY_SHUTTING_DOWN, s->opts->hostname);
        return;
    }
    enum reply_id refusal = sequence_refusal(s, cmd.verb);
    if (refusal != REPLY_OK) {
        send_reply(s, refusal, NULL);
        return;
    }
    if (err == SMTP_CMD_SYNTAX && tolerable_helo(&cmd))
        err = SMTP_CMD_OK;
    if (err != SMTP_CMD_OK) {
        reply_parse_error(s, err, &cmd);
        return;
    }
    switch (cmd.verb) {
    case SMTP_VERB_HELO: do_helo(s, &cmd, false); break;
    case SMTP_VERB_EHLO: do_helo(s, &cmd, true); break;
    case SMTP_VERB_MAIL: do_mail(s, &cmd); break;
    case SMTP_VERB_RCPT: do_rcpt(s, &cmd); break;
    case SMTP_VERB_DATA: do_data(s); break;
    case SMTP_VERB_BDAT: do_bdat(s, &cmd); break;
    case SMTP_VERB_RSET:
        transaction_reset(s);
        send_reply(s, REPLY_RESET, NULL);
        break;
    case SMTP_VERB_NOOP: send_reply(s, REPLY_OK, NULL); break;
    case SMTP_VERB_QUIT: send_reply(s, REPLY_BYE, NULL); break;
    case SMTP_VERB_VRFY: send_reply(s, REPLY_VRFY_CANNOT, NULL); break;
    case SMTP_VERB_HELP: do_help(s); break;
    case SMTP_VERB_STARTTLS: do_starttls(s); break;
    case SMTP_VERB_AUTH: do_auth(s, &cmd); break;
    case SMTP_VERB_EXPN:
    case SMTP_VERB_TURN:
    case SMTP_VERB_ETRN:
    case SMTP_VERB_ATRN:
    case SMTP_VERB_SEND:
    case SMTP_VERB_SOML:
    case SMTP_VERB_SAML:
        send_reply(s, REPLY_NOT_IMPLEMENTED, NULL);
        break;
    case SMTP_VERB_UNKNOWN:
        send_reply(s, REPLY_UNKNOWN_COMMAND, NULL);
        break;
    }
}

/* ---- input ------------------------------------------------------------------------------- */

/* Consumes message octets from buf; returns how many. */
static size_t consume_message(struct smtp_server *s, const char *buf, size_t n)
{
    if (s->state == ST_DATA) {
        size_t used = smtp_data_feed(&s->reader, buf, n, emit_to_storage, s);
        if (s->reader.done) {
            enter_state(s, ST_MAIL);
            finish_message(s);
        }
        return used;
    }
    size_t take = n < s->bdat_left ? n : (size_t)s->bdat_left;
    if (!s->bdat_refusing && s->storing)
        smtp_data_feed_chunk(&s->reader, buf, take, false, emit_to_storage, s);
    s->bdat_left -= take;
    return take;
}

/* Consumes one command line from buf if complete; returns bytes used (0: need more). */
static size_t consume_line(struct smtp_server *s, const char *buf, size_t n)
{
    const char *lf = memchr(buf, '\n', n);
    if (!lf) {
        if (n > LIMIT_AUTH_LINE) {
            if (!s->discarding_line) { /* the line's start, for the log (never a SASL response) */
                remember_line(s, buf, s->state == ST_AUTH ? 0 : n);
                s->discard_limit = s->state == ST_AUTH ? LIMIT_AUTH_LINE : line_limit(buf, n);
            }
            s->discarding_line = true; /* the reply is sent once the line ends */
            return n;
        }
        return 0;
    }
    size_t used = (size_t)(lf - buf) + 1;
    size_t len = used - 1;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    if (s->discarding_line) {
        s->discarding_line = false;
        sasl_end(s);
        send_line_too_long(s, s->discard_limit);
    } else if (s->state == ST_AUTH) {
        s->commands++;
        s->line[0] = '\0'; /* a SASL response is never shown, not even in logs */
        if (len + 2 > LIMIT_AUTH_LINE) {
            sasl_end(s);
            send_line_too_long(s, LIMIT_AUTH_LINE);
        } else {
            sasl_message(s, buf, len);
        }
    } else {
        handle_line(s, buf, len);
    }
    return used;
}

/* Consumes what it can of buf[0..n) (command lines, message data); returns the octets used. */
static size_t consume(struct smtp_server *s, const char *buf, size_t n)
{
    size_t pos = 0;
    s->command_limited = false;
    while (!s->closing && s->pending == PEND_NONE && s->state != ST_TLS) {
        if (s->state == ST_BDAT && s->bdat_left == 0) { /* "BDAT 0 LAST" or a chunk just read */
            finish_bdat_chunk(s);
            continue;
        }
        if (pos >= n)
            break;
        if (s->state != ST_DATA && s->state != ST_BDAT) {
            if (s->commands >= s->command_limit) {
                s->command_limited = true;
                break;
            }
            /* Replies the client has not read yet: the next lines wait in the input until
             * smtp_server_consume_output() drains them (message content goes on: it is
             * answered once, at its end). */
            if (s->out_len - s->out_off >= LIMIT_PENDING_OUTPUT)
                break;
        }
        size_t used = (s->state == ST_DATA || s->state == ST_BDAT)
                          ? consume_message(s, buf + pos, n - pos)
                          : consume_line(s, buf + pos, n - pos);
        if (used == 0)
            break;
        pos += used;
    }
    if (s->closing || s->state == ST_TLS)
        pos = n; /* nothing after the last word, or plaintext after STARTTLS, is read */
    return pos;
}

/* Consumes the held input and keeps what is left of it. */
static void process(struct smtp_server *s)
{
    size_t pos = consume(s, s->in, s->in_len);
    if (pos > 0 && pos < s->in_len)
        memmove(s->in, s->in + pos, s->in_len - pos);
    s->in_len -= pos;
    if (s->in_len == 0 && s->in_cap > IDLE_BUFFER_KEEP) {
        free(s->in);
        s->in = NULL;
        s->in_cap = 0;
    }
}

/* ---- public ------------------------------------------------------------------------------ */

struct smtp_server *smtp_server_new(const struct smtp_server_opts *opts,
                                    const struct smtp_server_callbacks *cb, void *ctx)
{
    struct smtp_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->opts = opts;
    s->cb = cb;
    s->ctx = ctx;
    s->state = ST_NEED_HELO; /* where the session starts: no change, nothing to trace */
    s->command_limit = UINT64_MAX;
    return s;
}

void smtp_server_free(struct smtp_server *s)
{
    if (!s)
        return;
    transaction_reset(s);
    sasl_end(s);
    free(s->auth_user);
    free(s->helo);
    free(s->in);
    free(s->out);
    free(s);
}

void smtp_server_start(struct smtp_server *s)
{
    send_reply(s, REPLY_GREETING, s->opts->hostname);
}

void smtp_server_refuse(struct smtp_server *s, enum reply_id id)
{
    if (s->closing)
        return;
    s->line[0] = '\0';
    s->pending = PEND_NONE; /* a decision arriving later is ignored */
    s->command_limited = false;
    transaction_reset(s);
    send_reply(s, id, s->opts->hostname);
    s->closing = true; /* whatever the row's code, nothing follows */
}

size_t smtp_server_memory(const struct smtp_server *s)
{
    return sizeof *s + s->in_cap + s->out_cap;
}

size_t smtp_server_input_room(const struct smtp_server *s)
{
    if (s->closing || s->state == ST_TLS || s->in_len >= LIMIT_PIPELINE_INPUT)
        return 0;
    return LIMIT_PIPELINE_INPUT - s->in_len;
}

/* Holds data after the held input, growing the buffer up to INPUT_CAP; false when out of
 * memory (the session then ends). */
static bool hold_input(struct smtp_server *s, const char *data, size_t len)
{
    if (s->in_cap - s->in_len < len) {
        size_t cap = s->in_cap ? s->in_cap : IDLE_BUFFER_KEEP;
        while (cap < s->in_len + len)
            cap *= 2;
        if (cap > INPUT_CAP) {
            /* The caller read past input_room: keep what fits, never more. */
            cap = INPUT_CAP;
            if (s->in_len + len > cap)
                len = cap - s->in_len;
        }
        char *p = realloc(s->in, cap);
        if (!p) {
            send_reply(s, REPLY_INTERNAL_ERROR, NULL);
            s->closing = true;
            return false;
        }
        s->in = p;
        s->in_cap = cap;
    }
    memcpy(s->in + s->in_len, data, len);
    s->in_len += len;
    return true;
}

void smtp_server_feed(struct smtp_server *s, const char *data, size_t len)
{
    if (s->closing || len == 0)
        return;
    if (s->in_len == 0) {
        /* Nothing held: read the caller's buffer in place (a message body is never copied
         * here) and hold only what is left, a partial line or what waits for a decision. */
        size_t used = consume(s, data, len);
        if (used < len && !s->closing)
            (void)hold_input(s, data + used, len - used);
        return;
    }
    if (hold_input(s, data, len))
        process(s);
}

void smtp_server_resume(struct smtp_server *s, const struct smtp_decision *d)
{
    if (s->pending == PEND_NONE)
        return;
    decided(s, d);
    process(s);
}

bool smtp_server_pending(const struct smtp_server *s)
{
    return s->pending != PEND_NONE;
}

const char *smtp_server_output(const struct smtp_server *s, size_t *len)
{
    *len = s->out_len - s->out_off;
    return s->out ? s->out + s->out_off : "";
}

void smtp_server_consume_output(struct smtp_server *s, size_t n)
{
    if (n > s->out_len - s->out_off)
        n = s->out_len - s->out_off;
    s->out_off += n;
    if (s->out_off < s->out_len)
        return;
    s->out_off = s->out_len = 0;
    /* The commands held back while replies waited (LIMIT_PENDING_OUTPUT) are taken now. */
    if (s->in_len > 0 && !s->closing && s->pending == PEND_NONE)
        process(s);
    if (s->out_len == 0 && s->out_cap > IDLE_BUFFER_KEEP) {
        free(s->out);
        s->out = NULL;
        s->out_cap = 0;
    }
}

bool smtp_server_closing(const struct smtp_server *s)
{
    return s->closing;
}

bool smtp_server_in_data(const struct smtp_server *s)
{
    return s->state == ST_DATA || s->state == ST_BDAT;
}

void smtp_server_timeout(struct smtp_server *s)
{
    if (s->closing)
        return;
    s->line[0] = '\0';
    s->pending = PEND_NONE; /* a decision arriving later is ignored */
    transaction_reset(s);
    send_reply(s, REPLY_TIMEOUT, s->opts->hostname);
}

void smtp_server_shutdown(struct smtp_server *s)
{
    s->shutting_down = true;
    bool busy = s->pending != PEND_NONE || s->state == ST_MAIL || s->state == ST_DATA ||
                s->state == ST_BDAT || s->in_len > 0;
    if (!busy && !s->closing) {
        s->line[0] = '\0';
        send_reply(s, REPLY_SHUTTING_DOWN, s->opts->hostname);
    }
}

bool smtp_server_wants_tls(const struct smtp_server *s)
{
    return s->state == ST_TLS && !s->closing && s->out_len == s->out_off;
}

void smtp_server_tls_started(struct smtp_server *s)
{
    s->tls = true;
    s->pending = PEND_NONE;
    /* RFC 3207 §4.2: all knowledge obtained from the client before TLS is discarded. */
    free(s->auth_user);
    s->auth_user = NULL;
    free(s->helo);
    s->helo = NULL;
    s->esmtp = false;
    transaction_reset(s); /* state: as after the greeting */
    s->in_len = 0;
}

bool smtp_server_tls(const struct smtp_server *s)
{
    return s->tls;
}

size_t smtp_server_rcpt_count(const struct smtp_server *s)
{
    return s->env ? s->env->n_rcpts + s->env->rcpts_merged : 0;
}

uint64_t smtp_server_commands(const struct smtp_server *s)
{
    return s->commands;
}

void smtp_server_set_command_limit(struct smtp_server *s, uint64_t limit)
{
    s->command_limit = limit;
    if (!s->closing && s->pending == PEND_NONE)
        process(s);
}

bool smtp_server_command_limited(const struct smtp_server *s)
{
    return s->command_limited;
}

const char *smtp_server_auth_user(const struct smtp_server *s)
{
    return s->auth_user;
}

const char *smtp_server_helo(const struct smtp_server *s)
{
    return s->helo ? s->helo : "";
}

bool smtp_server_esmtp(const struct smtp_server *s)
{
    return s->esmtp;
}

void smtp_decision_set_detail(struct smtp_decision *d, const char *text)
{
    size_t n = strnlen(text, sizeof d->detail - 1);
    memcpy(d->detail, text, n);
    d->detail[n] = '\0';
}
