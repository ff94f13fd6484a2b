/* smtp/client_session.c — the client state machine for outbound delivery, greeting to QUIT,
 * without I/O. RFC 5321 §3–4, RFC 1869, RFC 2920, RFC 1870, RFC 6152, RFC 6531, RFC 3461,
 * RFC 3207, RFC 4954, RFC 9422 (LIMITS), RFC 2033 (LMTP), RFC 3030 (CHUNKING). The EHLO reply is
 * read by ehlo.c. */

/* Choices the RFCs leave open:
 * - An 8-bit body to a peer that does not offer 8BITMIME is sent anyway, without BODY=, as
 *   Postfix does by default: RFC 6152 §3 would have us convert it to 7 bits or bounce it, but
 *   converting breaks signatures and almost every server takes 8-bit data; a strict one refuses
 *   the message with a reply that reaches the sender.
 * - SMTPUTF8 needed (flag, or a non-ASCII address) and not offered: not sent (5.6.7; RFC 6531 §3.2
 *   allows no downgrade of addresses).
 * - A bare CR or LF in the stored message goes out as CRLF, so no receiver can read an end of
 *   data inside the message (SMTP smuggling); clearmta's server never stores one anyway.
 * - A reply while message data is still going out, other than 421, fails the message with that
 *   reply and ends the session: the server is no longer reading data, and the rest of the data
 *   must never reach it as commands.
 * - A server offering CHUNKING gets the message in BDAT chunks instead of DATA (RFC 3030), line
 *   ends made CRLF and a last CRLF added as with DATA, so the bytes it stores are the same; not
 *   over LMTP. A 4xx/5xx to a chunk fails the message with that reply (no further chunk goes,
 *   §2), then RSET.
 * Replies are expected in the order the commands went out (RFC 2920 §3.1): with PIPELINING,
 * MAIL, the RCPTs and DATA go out as one batch, or MAIL, the RCPTs and the BDAT chunks as the
 * output drains (RFC 3030 §4.2); without it, one command per reply. Both paths share the same
 * step cursors (sent, answered), so they give the same outcomes. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "limits_mta.h"
#include "smtp/client_session.h"
#include "smtp/command.h"
#include "smtp/data.h"
#include "smtp/ehlo.h"
#include "smtp/sasl.h"
#include "smtp/trace.h"

/* The session's states: SMTP_TRACE_STATES (trace.h) makes enum state and state_names[]. */
#define STATES(X)                                                                                \
    X(GREETING)    /* connected: waiting for the 220 */                                          \
    X(EHLO)        /* EHLO sent */                                                               \
    X(HELO)        /* HELO sent after EHLO got 500/502 */                                        \
    X(STARTTLS)    /* STARTTLS sent */                                                           \
    X(TLS)         /* STARTTLS got 220: the caller runs the handshake; input is not read */      \
    X(AUTH)        /* AUTH sent; auth_step says where the exchange stands */                     \
    X(READY)       /* no transaction: waiting for smtp_client_send() or smtp_client_quit() */    \
    X(TRANSACTION) /* MAIL, RCPTs, DATA going out and being answered */                          \
    X(BODY)        /* DATA got 354: message data goes out as the output drains */               \
    X(DATA_END)    /* message data sent: waiting for the final reply */                          \
    X(RSET)        /* RSET after a transaction that ended without message data */                \
    X(QUIT)        /* QUIT sent */                                                               \
    X(DONE)        /* closed() reported */

SMTP_TRACE_STATES(STATES);

enum auth_step { AUTH_WANT_USER, AUTH_WANT_PASS, AUTH_WANT_RESULT };

/* Message data produced per refill; also how much a pipelined batch may queue before it waits
 * for the output to drain (RFC 2920 §3.1 leaves the batch size to the client), and the most
 * message data one BDAT chunk carries. */
#define OUTPUT_CHUNK (64 * 1024)
/* The longest BDAT command line: "BDAT", a 64-bit size, " LAST", CRLF. */
#define BDAT_LINE_MAX 32
/* Refill once less than this is waiting, so the data already produced is rarely moved. */
#define OUTPUT_REFILL (OUTPUT_CHUNK / 16)
/* A caller that never drains the output ends the session here instead of growing it. */
#define OUTPUT_MAX (4 * OUTPUT_CHUNK)
/* reply_parse() decides within REPLY_LINES_MAX lines of REPLY_LINE_MAX octets, so one reply
 * never needs more; replies are acted on as soon as they are complete. */
#define INPUT_CAP (REPLY_LINES_MAX * REPLY_LINE_MAX)
/* Buffers above this are released when drained, so idle sessions stay small. */
#define IDLE_BUFFER_KEEP 1024
/* The longest line we build: AUTH PLAIN with the longest credentials, base64-encoded. */
#define LINE_CAP 2048

struct smtp_client {
    struct smtp_client_opts opts;
    const struct smtp_client_callbacks *cb;
    void *ctx;

    enum state state;
    enum auth_step auth_step;
    bool tls;
    bool oom;        /* a buffer could not grow: the session ends as if the connection dropped */
    bool processing; /* inside process(): a nested feed only appends */
    struct smtp_client_caps caps;

    /* The transaction. Steps: 0 MAIL, 1 … end-first the RCPTs, then DATA or the BDAT chunks. */
    const struct smtp_client_message *msg;
    size_t first, end; /* recipients covered: [first, end) */
    size_t tried_end;  /* n_tried to report: end, or where a "too many recipients" 452 cut it */
    size_t accepted;   /* RCPTs that got a 2xx */
    size_t *lmtp_ok;   /* LMTP: the recipients that got a 2xx, in order (accepted of them) */
    size_t lmtp_cap, lmtp_next; /* lmtp_next: the next of them whose data reply is awaited */
    bool lmtp_any_ok;  /* LMTP: a data reply was a 2xx */
    size_t sent;       /* next step to send */
    size_t answered;   /* next step whose reply is awaited */
    size_t jump_from;  /* RCPT steps from here on were never sent (SIZE_MAX: none) */
    bool utf8;         /* MAIL carries SMTPUTF8 */
    bool mail_failed, stopped;
    bool have_outcome; /* the message's outcome is known before its last reply */
    enum smtp_client_failure outcome;
    struct reply_parsed outcome_reply; /* when outcome == SMTP_CLIENT_REPLY */
    size_t body_pos;                   /* message data consumed so far */
    bool bdat;                         /* the message goes in BDAT chunks (RFC 3030) */
    bool chunk_failed;                 /* BDAT: a chunk got a 4xx/5xx: none more goes */
    size_t last_chunk;                 /* BDAT: the step of the LAST chunk once sent, else 0 */
    struct smtp_data_stuffer stuffer;

    struct reply_parsed reply; /* the reply being acted on */
    char *in;
    size_t in_off, in_len, in_cap;
    char *out;
    size_t out_off, out_len, out_cap;
};

const char *smtp_client_strerror(enum smtp_client_failure f)
{
    switch (f) {
#define X(name, text) \
    case name: return text;
        SMTP_CLIENT_FAILURES(X)
#undef X
    }
    return "unknown client failure";
}

/* Every change of state goes through here, so that the trace shows the machine as it runs
 * (a state set to itself is no change and shows nothing). */
static void enter_state(struct smtp_client *c, enum state st)
{
    enum state old = c->state;
    c->state = st;
    if (old != st)
        smtp_trace_state(c->cb->trace, c->ctx, state_names[old], state_names[st]);
}

/* ---- results and callbacks ------------------------------------------------------------- */

static struct smtp_client_result failure(enum smtp_client_failure f)
{
    return (struct smtp_client_result){f, NULL};
}

static struct smtp_client_result reply_result(const struct smtp_client *c)
{
    return (struct smtp_client_result){SMTP_CLIENT_REPLY, &c->reply};
}

static void report_rcpt(struct smtp_client *c, size_t i, struct smtp_client_result r)
{
    if (c->cb->rcpt_result)
        c->cb->rcpt_result(c->ctx, i, &r);
}

static void report_message(struct smtp_client *c, struct smtp_client_result r, size_t n_tried)
{
    if (c->cb->message_result)
        c->cb->message_result(c->ctx, &r, n_tried);
}

static bool in_transaction(enum state st)
{
    return st == ST_TRANSACTION || st == ST_BODY || st == ST_DATA_END || st == ST_RSET;
}

/* The message's outcome decided before its last reply (MAIL or DATA refused, no recipient). */
static void set_outcome(struct smtp_client *c, enum smtp_client_failure f)
{
    c->have_outcome = true;
    c->outcome = f;
    if (f == SMTP_CLIENT_REPLY)
        c->outcome_reply = c->reply;
}

static struct smtp_client_result outcome(const struct smtp_client *c)
{
    if (c->outcome == SMTP_CLIENT_REPLY)
        return (struct smtp_client_result){SMTP_CLIENT_REPLY, &c->outcome_reply};
    return failure(c->outcome);
}

/* ---- output ---------------------------------------------------------------------------- */

static size_t out_pending(const struct smtp_client *c)
{
    return c->out_len - c->out_off;
}

static void out_release(struct smtp_client *c)
{
    if (c->out)
        explicit_bzero(c->out, c->out_cap); /* it may have carried credentials */
    free(c->out);
    c->out = NULL;
    c->out_cap = c->out_len = c->out_off = 0;
}

/* Room for need more bytes after out_len, with the pending bytes moved to the front. */
static bool out_reserve(struct smtp_client *c, size_t need)
{
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, out_pending(c));
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_cap - c->out_len >= need)
        return true;
    if (need > OUTPUT_MAX - c->out_len) {
        c->oom = true;
        return false;
    }
    size_t cap = c->out_cap ? c->out_cap : 256;
    while (cap - c->out_len < need)
        cap *= 2;
    if (cap > OUTPUT_MAX)
        cap = OUTPUT_MAX;
    char *p = realloc(c->out, cap);
    if (!p) {
        c->oom = true;
        return false;
    }
    c->out = p;
    c->out_cap = cap;
    return true;
}

static void out_add(struct smtp_client *c, const char *p, size_t n)
{
    if (!out_reserve(c, n))
        return;
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

/* A command line is built whole, then queued whole: the output never holds half a command. */
struct line {
    char buf[LINE_CAP];
    size_t len;
    bool overflow;
};

static void line_add(struct line *l, const char *p, size_t n)
{
    if (l->overflow || n > sizeof l->buf - l->len) {
        l->overflow = true;
        return;
    }
    memcpy(l->buf + l->len, p, n);
    l->len += n;
}

static void line_str(struct line *l, const char *s)
{
    line_add(l, s, strlen(s));
}

static void line_num(struct line *l, uint64_t v)
{
    char digits[24];
    size_t n = sizeof digits;
    do {
        digits[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    line_add(l, digits + n, sizeof digits - n);
}

/* Appends base64 of n bytes of p. */
static void line_base64(struct line *l, const void *p, size_t n)
{
    if (l->overflow)
        return;
    size_t w = smtp_base64_encode(p, n, l->buf + l->len, sizeof l->buf - l->len);
    if (w == 0 && n > 0)
        l->overflow = true;
    l->len += w;
}

static void send_line(struct smtp_client *c, struct line *l)
{
    line_add(l, "\r\n", 2);
    if (l->overflow) /* cannot happen: every field was checked against its limit */
        c->oom = true;
    else
        out_add(c, l->buf, l->len);
}

static void send_command(struct smtp_client *c, const char *verb)
{
    struct line l = {.len = 0};
    line_str(&l, verb);
    send_line(c, &l);
}

static void send_hello(struct smtp_client *c, const char *verb)
{
    struct line l = {.len = 0};
    line_str(&l, verb);
    line_add(&l, " ", 1);
    line_str(&l, c->opts.helo_name);
    send_line(c, &l);
}

/* ---- ending ------------------------------------------------------------------------------ */

/* Ends the session: the transaction in progress gets its message_result (its outcome if
 * already known, else why), then closed(why). RFC 5321 §3.1/§4.1.1.10: QUIT where the server
 * still reads commands and the session ended by our choice or its refusal; never after a 421
 * (the server is gone), a malformed reply, a timeout or a lost connection. */
static void end_session(struct smtp_client *c, struct smtp_client_result why, bool quit)
{
    enum state was = c->state;
    if (was == ST_DONE)
        return;
    enter_state(c, ST_DONE);
    if (was == ST_BODY) { /* the server stopped reading data: it must not get the rest */
        c->out_off = c->out_len = 0;
    }
    if (quit)
        send_command(c, "QUIT");
    /* LMTP replies cut short: the recipients still waiting have no outcome but why */
    bool lmtp_cut = c->opts.lmtp && was == ST_DATA_END && c->lmtp_next > 0;
    if (in_transaction(was))
        report_message(c, c->have_outcome && !lmtp_cut ? outcome(c) : why, c->tried_end);
    if (c->cb->closed)
        c->cb->closed(c->ctx, &why);
}

static void protocol_error(struct smtp_client *c)
{
    end_session(c, failure(SMTP_CLIENT_PROTOCOL), false);
}

/* A buffer could not grow: what is queued may lack its last command, so nothing more goes out
 * and the session ends as a dropped connection would. */
static void settle(struct smtp_client *c)
{
    if (c->oom && c->state != ST_DONE)
        end_session(c, failure(SMTP_CLIENT_CLOSED), false);
}

/* ---- opening: greeting, EHLO/HELO, STARTTLS, AUTH ----------------------------------------- */

static enum reply_class reply_cls(const struct smtp_client *c)
{
    return reply_class_of(c->reply.code);
}

static bool is_failure(const struct smtp_client *c)
{
    enum reply_class k = reply_cls(c);
    return k == REPLY_CLASS_TRANSIENT || k == REPLY_CLASS_PERMANENT;
}

static void become_ready(struct smtp_client *c)
{
    enter_state(c, ST_READY);
    if (c->cb->ready)
        c->cb->ready(c->ctx, &c->caps);
}

/* Sends one AUTH LOGIN response: the user name or the password, base64 (RFC 4954 §4). */
static void send_secret(struct smtp_client *c, const char *secret)
{
    struct line l = {.len = 0};
    line_base64(&l, secret, strlen(secret));
    send_line(c, &l);
    explicit_bzero(&l, sizeof l);
}

/* AUTH PLAIN with its initial response, base64 of "\0user\0pass" (RFC 4616 §2). */
static void send_auth_plain(struct smtp_client *c)
{
    unsigned char msg[sizeof ((struct smtp_sasl_creds *)0)->user +
                      sizeof ((struct smtp_sasl_creds *)0)->pass + 2];
    size_t ulen = strlen(c->opts.auth_user), plen = strlen(c->opts.auth_pass);
    msg[0] = '\0';
    memcpy(msg + 1, c->opts.auth_user, ulen); /* lengths checked by smtp_client_new */
    msg[1 + ulen] = '\0';
    memcpy(msg + 2 + ulen, c->opts.auth_pass, plen);
    struct line l = {.len = 0};
    line_str(&l, "AUTH PLAIN ");
    line_base64(&l, msg, 2 + ulen + plen);
    send_line(c, &l);
    explicit_bzero(msg, sizeof msg);
    explicit_bzero(&l, sizeof l);
}

/* Credentials go out only inside TLS; PLAIN is preferred (one round trip). */
static void start_auth(struct smtp_client *c)
{
    if (!c->opts.auth_user) {
        become_ready(c);
        return;
    }
    if (!c->tls || !(c->caps.auth_plain || c->caps.auth_login)) {
        end_session(c, failure(SMTP_CLIENT_AUTH_UNAVAILABLE), true);
        return;
    }
    enter_state(c, ST_AUTH);
    if (c->caps.auth_plain) {
        send_auth_plain(c);
        c->auth_step = AUTH_WANT_RESULT;
    } else {
        send_command(c, "AUTH LOGIN");
        c->auth_step = AUTH_WANT_USER;
    }
}

/* After EHLO/HELO: STARTTLS by policy (RFC 3207 §4), then AUTH, then ready. */
static void after_hello(struct smtp_client *c)
{
    if (!c->tls && c->opts.tls != SMTP_CLIENT_TLS_NONE) {
        if (c->caps.starttls) {
            enter_state(c, ST_STARTTLS);
            send_command(c, "STARTTLS");
            return;
        }
        if (c->opts.tls == SMTP_CLIENT_TLS_REQUIRED) {
            end_session(c, failure(SMTP_CLIENT_TLS_UNAVAILABLE), true);
            return;
        }
    }
    start_auth(c);
}

/* RFC 2033 §4.1: LMTP opens with LHLO, which works as EHLO does. */
static const char *hello_verb(const struct smtp_client *c)
{
    return c->opts.lmtp ? "LHLO" : "EHLO";
}

static void on_greeting(struct smtp_client *c)
{
    if (c->reply.code == 220) {
        enter_state(c, ST_EHLO);
        send_hello(c, hello_verb(c));
    } else if (is_failure(c)) {
        end_session(c, reply_result(c), true); /* RFC 5321 §3.1: 554, then QUIT */
    } else {
        protocol_error(c);
    }
}

static void on_ehlo(struct smtp_client *c)
{
    if (reply_cls(c) == REPLY_CLASS_SUCCESS) {
        smtp_ehlo_parse(c->reply.text, c->reply.text_len, &c->caps);
        after_hello(c);
    } else if (!c->opts.lmtp && (c->reply.code == 500 || c->reply.code == 502)) {
        /* RFC 5321 §3.2: no ESMTP. LMTP has no HELO (RFC 2033 §4.1): a refused LHLO ends it */
        enter_state(c, ST_HELO);
        send_hello(c, "HELO");
    } else if (is_failure(c)) {
        end_session(c, reply_result(c), true);
    } else {
        protocol_error(c);
    }
}

static void on_helo(struct smtp_client *c)
{
    if (reply_cls(c) == REPLY_CLASS_SUCCESS) {
        memset(&c->caps, 0, sizeof c->caps);
        after_hello(c);
    } else if (is_failure(c)) {
        end_session(c, reply_result(c), true);
    } else {
        protocol_error(c);
    }
}

static void on_starttls(struct smtp_client *c)
{
    if (c->reply.code == 220) {
        enter_state(c, ST_TLS);
        if (c->cb->start_tls)
            c->cb->start_tls(c->ctx);
    } else if (!is_failure(c)) {
        protocol_error(c);
    } else if (c->opts.tls == SMTP_CLIENT_TLS_REQUIRED) {
        end_session(c, reply_result(c), true);
    } else {
        start_auth(c); /* RFC 3207 §4: the client may go on without TLS */
    }
}

static void on_auth(struct smtp_client *c)
{
    if (c->reply.code == 334 && c->auth_step == AUTH_WANT_USER) {
        c->auth_step = AUTH_WANT_PASS;
        send_secret(c, c->opts.auth_user);
    } else if (c->reply.code == 334 && c->auth_step == AUTH_WANT_PASS) {
        c->auth_step = AUTH_WANT_RESULT;
        send_secret(c, c->opts.auth_pass);
    } else if (reply_cls(c) == REPLY_CLASS_SUCCESS && c->auth_step == AUTH_WANT_RESULT) {
        become_ready(c);
    } else if (is_failure(c)) {
        end_session(c, reply_result(c), true);
    } else {
        protocol_error(c); /* a challenge we have no answer for, or success too early */
    }
}

/* ---- the transaction: checks and commands ------------------------------------------------ */

static bool has_8bit(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

/* A path may hold spaces (quoted local parts) and UTF-8, never a control character. */
static bool path_ok(const char *s)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return n <= LIMIT_PATH;
}

/* xtext (RFC 3461 §4): printable ASCII other than space and '='. */
static bool xtext_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~' || s[i] == '=')
            return false;
    return n > 0 && n <= max;
}

static bool rcpt_ok(const struct smtp_client_rcpt *r)
{
    return path_ok(r->address) && (!r->orcpt || xtext_ok(r->orcpt, LIMIT_ORCPT));
}

static size_t data_step(const struct smtp_client *c)
{
    return 1 + (c->end - c->first);
}

static bool is_rcpt_step(const struct smtp_client *c, size_t s)
{
    return s >= 1 && s < data_step(c);
}

static size_t rcpt_of(const struct smtp_client *c, size_t s)
{
    return c->first + s - 1;
}

/* The recipients one transaction may carry: ours (max_rcpts) and the server's (RCPTMAX). */
static size_t covered_end(const struct smtp_client *c, const struct smtp_client_message *m,
                          size_t first)
{
    unsigned limit = c->opts.max_rcpts;
    if (c->caps.rcptmax && (limit == 0 || c->caps.rcptmax < limit))
        limit = c->caps.rcptmax;
    if (limit == 0 || m->n_rcpts - first <= limit)
        return m->n_rcpts;
    return first + limit;
}

/* RFC 6531 §3.4: SMTPUTF8 when asked for, or when a path of the transaction is not ASCII. */
static bool needs_utf8(const struct smtp_client_message *m, size_t first, size_t end)
{
    bool utf8 = m->smtputf8 || (m->sender && has_8bit(m->sender));
    for (size_t i = first; i < end; i++)
        utf8 = utf8 || (m->rcpts[i].address && has_8bit(m->rcpts[i].address));
    return utf8;
}

/* Why the message cannot go to this server at all, if it cannot. */
static bool refused_locally(const struct smtp_client *c, const struct smtp_client_message *m,
                            size_t first, bool utf8, enum smtp_client_failure *why)
{
    if (first >= m->n_rcpts)
        *why = SMTP_CLIENT_NO_RECIPIENTS;
    else if (!path_ok(m->sender) || (m->envid && !xtext_ok(m->envid, LIMIT_ENVID)))
        *why = SMTP_CLIENT_BAD_ENVELOPE;
    else if (c->caps.has_size && c->caps.size > 0 && m->body_len > c->caps.size)
        *why = SMTP_CLIENT_TOO_BIG; /* RFC 1870 §6.1: do not send what the server cannot take */
    else if (utf8 && !c->caps.smtputf8)
        *why = SMTP_CLIENT_NEEDS_SMTPUTF8;
    else
        return false;
    return true;
}

static void send_mail(struct smtp_client *c)
{
    const struct smtp_client_message *m = c->msg;
    struct line l = {.len = 0};
    line_str(&l, "MAIL FROM:<");
    line_str(&l, m->sender);
    line_str(&l, ">");
    if (c->caps.has_size) {
        line_str(&l, " SIZE=");
        line_num(&l, m->body_len);
    }
    if (m->eightbit && c->caps.eightbitmime)
        line_str(&l, " BODY=8BITMIME");
    if (c->utf8)
        line_str(&l, " SMTPUTF8");
    if (c->caps.dsn && (m->ret == 1 || m->ret == 2))
        line_str(&l, m->ret == 1 ? " RET=FULL" : " RET=HDRS");
    if (c->caps.dsn && m->envid) {
        line_str(&l, " ENVID=");
        line_str(&l, m->envid);
    }
    send_line(c, &l);
}

static void line_notify(struct line *l, unsigned notify)
{
    static const struct { unsigned bit; const char *name; } names[] = {
        {SMTP_NOTIFY_SUCCESS, "SUCCESS"}, {SMTP_NOTIFY_FAILURE, "FAILURE"},
        {SMTP_NOTIFY_DELAY, "DELAY"},
    };
    if (notify & SMTP_NOTIFY_NEVER) { /* RFC 3461 §4.1: NEVER stands alone */
        line_str(l, " NOTIFY=NEVER");
        return;
    }
    const char *sep = " NOTIFY=";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (notify & names[i].bit) {
            line_str(l, sep);
            line_str(l, names[i].name);
            sep = ",";
        }
    }
}

static void send_rcpt(struct smtp_client *c, const struct smtp_client_rcpt *r)
{
    struct line l = {.len = 0};
    line_str(&l, "RCPT TO:<");
    line_str(&l, r->address);
    line_str(&l, ">");
    if (c->caps.dsn) {
        line_notify(&l, r->notify);
        if (r->orcpt) {
            line_str(&l, " ORCPT=");
            line_str(&l, r->orcpt);
        }
    }
    send_line(c, &l);
}

/* ---- the transaction: steps ------------------------------------------------------------- */

/* Moves the answered cursor over steps that get no reply: RCPTs never sent because they cannot
 * go on a command line (reported here, in order), and those cut off by a refused MAIL or a
 * "too many recipients" 452. */
static void skip_unsent(struct smtp_client *c)
{
    while (c->state == ST_TRANSACTION) {
        if (c->answered == c->jump_from) {
            c->answered = data_step(c);
        } else if (c->answered < c->sent && is_rcpt_step(c, c->answered) &&
                   !rcpt_ok(&c->msg->rcpts[rcpt_of(c, c->answered)])) {
            size_t i = rcpt_of(c, c->answered++);
            if (!c->mail_failed && !c->stopped)
                report_rcpt(c, i, failure(SMTP_CLIENT_BAD_ENVELOPE));
        } else {
            break;
        }
    }
}

/* The next BDAT chunk (RFC 3030 §2): up to OUTPUT_CHUNK octets of message data with the line
 * ends the DATA path gives, no dot-stuffing; LAST on the one that ends the message, which gets a
 * final CRLF when the message lacks one. */
static void send_chunk(struct smtp_client *c)
{
    if (c->sent == data_step(c)) {
        c->body_pos = 0;
        smtp_data_stuff_init(&c->stuffer);
        c->stuffer.dots = false;
    }
    size_t left = c->msg->body_len - c->body_pos;
    /* each input octet makes at most two (a bare LF becomes CRLF); then the final CRLF, and
     * the 3 octets of room smtp_data_stuff() wants to go on */
    size_t cap = left < (OUTPUT_CHUNK - 5) / 2 ? 2 * left + 5 : OUTPUT_CHUNK;
    if (!out_reserve(c, BDAT_LINE_MAX + cap))
        return;
    char *data = c->out + c->out_len + BDAT_LINE_MAX;
    size_t used = 0, w = 0;
    if (left > 0) /* an empty body may come as NULL: no pointer arithmetic on it */
        w = smtp_data_stuff(&c->stuffer, c->msg->body + c->body_pos, left, &used, data, cap - 2);
    c->body_pos += used;
    bool last = c->body_pos == c->msg->body_len;
    if (last && !c->stuffer.line_start) {
        data[w++] = '\r';
        data[w++] = '\n';
    }
    struct line l = {.len = 0};
    line_str(&l, "BDAT ");
    line_num(&l, w);
    if (last) {
        line_str(&l, " LAST");
        c->last_chunk = c->sent;
    }
    line_add(&l, "\r\n", 2); /* l.len <= BDAT_LINE_MAX: the data moves towards the front */
    memmove(c->out + c->out_len + l.len, data, w);
    memcpy(c->out + c->out_len, l.buf, l.len);
    c->out_len += l.len + w;
}

/* Every reply is in and nothing more will be sent: the transaction ended without message data
 * (MAIL or DATA refused, or no recipient accepted). RSET, then the outcome. */
static void check_complete(struct smtp_client *c)
{
    skip_unsent(c);
    if (c->state != ST_TRANSACTION || c->answered < c->sent || c->sent < data_step(c))
        return;
    if (!c->mail_failed && c->accepted > 0 &&
        (c->bdat ? !c->chunk_failed && c->last_chunk == 0 : c->sent == data_step(c)))
        return; /* DATA or a chunk still to go: the output is full */
    if (!c->have_outcome)
        set_outcome(c, SMTP_CLIENT_NO_RECIPIENTS);
    enter_state(c, ST_RSET);
    send_command(c, "RSET");
}

/* Sends the steps that may go now: with PIPELINING as many as the output holds (RFC 2920
 * §3.1: DATA ends the batch), without it one per reply. DATA is not sent once every reply is
 * in and no recipient was accepted. */
static void pump(struct smtp_client *c)
{
    while (c->state == ST_TRANSACTION && !c->oom &&
           (c->bdat ? c->last_chunk == 0 : c->sent <= data_step(c))) {
        skip_unsent(c);
        if (c->caps.pipelining ? out_pending(c) >= OUTPUT_CHUNK : c->answered < c->sent)
            break;
        size_t s = c->sent;
        if (s == 0) {
            send_mail(c);
        } else if (is_rcpt_step(c, s)) {
            if (c->mail_failed || c->stopped) {
                c->jump_from = s;
                c->sent = data_step(c);
                continue;
            }
            if (rcpt_ok(&c->msg->rcpts[rcpt_of(c, s)]))
                send_rcpt(c, &c->msg->rcpts[rcpt_of(c, s)]);
        } else if (c->mail_failed || c->chunk_failed ||
                   (c->answered == c->sent && c->accepted == 0)) {
            break;
        } else if (c->bdat) {
            send_chunk(c);
        } else {
            send_command(c, "DATA");
        }
        c->sent++;
    }
    check_complete(c);
}

/* RFC 5321 §4.5.3.1.10: 452 (4.5.3) "too many recipients" is not a failure of the recipient;
 * older servers say so only in words. */
static bool too_many_recipients(const struct reply_parsed *r)
{
    if (r->code != 452)
        return false;
    if (r->status.cls == 4 && r->status.subject == 5 && r->status.detail == 3)
        return true;
    static const char words[] = "too many recipients";
    for (size_t i = 0; i + sizeof words - 1 <= r->text_len; i++)
        if (strncasecmp(r->text + i, words, sizeof words - 1) == 0)
            return true;
    return false;
}

static void on_mail_reply(struct smtp_client *c)
{
    if (reply_cls(c) == REPLY_CLASS_SUCCESS)
        return;
    if (!is_failure(c)) {
        protocol_error(c);
        return;
    }
    c->mail_failed = true;
    set_outcome(c, SMTP_CLIENT_REPLY);
}

static void on_rcpt_reply(struct smtp_client *c, size_t i)
{
    enum reply_class k = reply_cls(c);
    if (k == REPLY_CLASS_INTERMEDIATE) {
        protocol_error(c);
    } else if (c->mail_failed || c->stopped) {
        /* answers to RCPTs the server never took: the recipients are retried or failed with
         * the message */
    } else if (k == REPLY_CLASS_SUCCESS) {
        if (c->opts.lmtp) /* room for every recipient was reserved in smtp_client_send() */
            c->lmtp_ok[c->accepted] = i;
        c->accepted++;
        report_rcpt(c, i, reply_result(c));
    } else if (too_many_recipients(&c->reply) && c->accepted > 0) {
        c->stopped = true; /* this one and the rest go in a further transaction */
        c->tried_end = i;
    } else {
        report_rcpt(c, i, reply_result(c));
    }
}

static void fill_body(struct smtp_client *c);

static void on_data_reply(struct smtp_client *c)
{
    if (c->reply.code == 354) {
        if (c->mail_failed || c->accepted == 0) {
            /* RFC 2920 §3.1: DATA went out in the batch and was taken anyway; an empty message
             * ends it, and the server has no recipient to deliver it to */
            if (!c->have_outcome)
                set_outcome(c, SMTP_CLIENT_NO_RECIPIENTS);
            enter_state(c, ST_DATA_END);
            out_add(c, ".\r\n", 3);
            return;
        }
        enter_state(c, ST_BODY);
        c->body_pos = 0;
        smtp_data_stuff_init(&c->stuffer);
        fill_body(c);
    } else if (!is_failure(c)) {
        protocol_error(c);
    } else if (!c->have_outcome) {
        set_outcome(c, c->accepted == 0 ? SMTP_CLIENT_NO_RECIPIENTS : SMTP_CLIENT_REPLY);
    }
}

static void finish_message(struct smtp_client *c, struct smtp_client_result r);

/* The reply to BDAT chunk step s: 2xx to the LAST one ends the message; a 4xx/5xx fails it
 * (RFC 3030 §2), and RSET follows once every step sent is answered (check_complete). */
static void on_chunk_reply(struct smtp_client *c, size_t s)
{
    enum reply_class k = reply_cls(c);
    if (k != REPLY_CLASS_SUCCESS && !is_failure(c)) {
        protocol_error(c);
        return;
    }
    bool no_recipient = c->mail_failed || c->accepted == 0;
    if (k == REPLY_CLASS_SUCCESS && !no_recipient) {
        if (s == c->last_chunk && !c->chunk_failed)
            finish_message(c, c->have_outcome ? outcome(c) : reply_result(c));
        return;
    }
    /* refused, or taken with no recipient to deliver it to: the message failed */
    c->chunk_failed = true;
    if (!c->have_outcome)
        set_outcome(c, no_recipient || k == REPLY_CLASS_SUCCESS ? SMTP_CLIENT_NO_RECIPIENTS
                                                                 : SMTP_CLIENT_REPLY);
}

static void on_unexpected(struct smtp_client *c)
{
    /* a reply to no command: a server giving up (4xx/5xx), or a broken one */
    if (is_failure(c))
        end_session(c, reply_result(c), false);
    else
        protocol_error(c);
}

static void on_transaction(struct smtp_client *c)
{
    skip_unsent(c);
    if (c->answered >= c->sent) {
        on_unexpected(c);
        return;
    }
    size_t s = c->answered++;
    if (s == 0)
        on_mail_reply(c);
    else if (is_rcpt_step(c, s))
        on_rcpt_reply(c, rcpt_of(c, s));
    else if (c->bdat)
        on_chunk_reply(c, s);
    else
        on_data_reply(c);
    pump(c);
}

/* The transaction is over: the session is ready before the caller hears the outcome, so it may
 * send the next message from its callback. */
static void finish_message(struct smtp_client *c, struct smtp_client_result r)
{
    enter_state(c, ST_READY);
    c->msg = NULL;
    report_message(c, r, c->tried_end);
}

/* RFC 2033 §4.2: one reply per accepted recipient, in RCPT order. The message's result is the
 * last 2xx of them (the message went somewhere), else the last reply. */
static void on_lmtp_data_end(struct smtp_client *c)
{
    size_t i = c->lmtp_ok[c->lmtp_next++];
    bool ok = reply_cls(c) == REPLY_CLASS_SUCCESS;
    if (c->cb->data_rcpt_result) {
        struct smtp_client_result r = reply_result(c);
        c->cb->data_rcpt_result(c->ctx, i, &r);
    }
    if (ok || !c->lmtp_any_ok)
        set_outcome(c, SMTP_CLIENT_REPLY);
    c->lmtp_any_ok = c->lmtp_any_ok || ok;
    if (c->lmtp_next == c->accepted)
        finish_message(c, outcome(c));
}

static void on_data_end(struct smtp_client *c)
{
    if (!is_failure(c) && reply_cls(c) != REPLY_CLASS_SUCCESS) {
        protocol_error(c);
        return;
    }
    if (c->opts.lmtp && c->accepted > 0 && (c->lmtp_next > 0 || !c->have_outcome)) {
        on_lmtp_data_end(c);
        return;
    }
    finish_message(c, c->have_outcome ? outcome(c) : reply_result(c));
}

static void on_rset(struct smtp_client *c)
{
    if (reply_cls(c) == REPLY_CLASS_SUCCESS)
        finish_message(c, outcome(c));
    else if (is_failure(c))
        end_session(c, reply_result(c), true);
    else
        protocol_error(c);
}

static void on_quit(struct smtp_client *c)
{
    end_session(c, reply_result(c), false);
}

/* ---- message data (RFC 5321 §4.1.1.4, §4.5.2; the stuffing is data.c's) ------------------- */

/* Produces message data while little is waiting; after the last of it, CRLF if the message did
 * not end with one, then ".\r\n". */
static void fill_body(struct smtp_client *c)
{
    if (c->state != ST_BODY || c->oom || out_pending(c) >= OUTPUT_REFILL)
        return;
    if (!out_reserve(c, OUTPUT_CHUNK - out_pending(c)))
        return;
    size_t room = OUTPUT_CHUNK - out_pending(c), left = c->msg->body_len - c->body_pos;
    size_t used = 0, w = 0;
    if (left > 0) /* an empty body may come as NULL: no pointer arithmetic on it */
        w = smtp_data_stuff(&c->stuffer, c->msg->body + c->body_pos, left, &used,
                            c->out + c->out_len, room);
    c->body_pos += used;
    c->out_len += w;
    if (c->body_pos < c->msg->body_len || room - w < 5)
        return;
    c->out_len += smtp_data_stuff_end(&c->stuffer, c->out + c->out_len, room - w);
    enter_state(c, ST_DATA_END);
}

/* ---- input ------------------------------------------------------------------------------- */

/* What each state does with a complete reply; a 421 is handled before (it ends any state). */
static void (*const on_reply[])(struct smtp_client *) = {
    [ST_GREETING] = on_greeting,
    [ST_EHLO] = on_ehlo,
    [ST_HELO] = on_helo,
    [ST_STARTTLS] = on_starttls,
    [ST_TLS] = on_unexpected, /* not reached: input is not read during the handshake */
    [ST_AUTH] = on_auth,
    [ST_READY] = on_unexpected,
    [ST_TRANSACTION] = on_transaction,
    [ST_BODY] = on_unexpected,
    [ST_DATA_END] = on_data_end,
    [ST_RSET] = on_rset,
    [ST_QUIT] = on_quit,
    [ST_DONE] = on_unexpected, /* not reached: input is ignored once done */
};

static void process(struct smtp_client *c)
{
    c->processing = true;
    while (c->state != ST_DONE && c->state != ST_TLS && !c->oom && c->in_off < c->in_len) {
        size_t used;
        enum reply_parse_err err =
            reply_parse(c->in + c->in_off, c->in_len - c->in_off, &c->reply, &used);
        if (err == REPLY_PARSE_INCOMPLETE)
            break;
        if (err != REPLY_PARSE_OK) {
            c->in_off = c->in_len;
            protocol_error(c);
            break;
        }
        c->in_off += used;
        if (c->reply.code == 421) /* RFC 5321 §3.8: the server is closing, whatever we sent */
            end_session(c, reply_result(c), false);
        else
            on_reply[c->state](c);
    }
    c->processing = false;
    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
}

/* Appends what fits of data; returns the bytes taken (0: the buffer is full or cannot grow). */
static size_t in_append(struct smtp_client *c, const char *data, size_t len)
{
    if (c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    size_t take = len < INPUT_CAP - c->in_len ? len : INPUT_CAP - c->in_len;
    if (c->in_cap - c->in_len < take) {
        size_t cap = c->in_cap ? c->in_cap : IDLE_BUFFER_KEEP;
        while (cap - c->in_len < take)
            cap *= 2;
        if (cap > INPUT_CAP)
            cap = INPUT_CAP;
        char *p = realloc(c->in, cap);
        if (!p) {
            c->oom = true;
            return 0;
        }
        c->in = p;
        c->in_cap = cap;
    }
    if (take > 0)
        memcpy(c->in + c->in_len, data, take);
    c->in_len += take;
    return take;
}

/* ---- public ------------------------------------------------------------------------------ */

static bool helo_name_ok(const char *s)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    return n > 0 && n <= LIMIT_DOMAIN + 2; /* a domain or an address literal "[…]" */
}

static bool credentials_ok(const struct smtp_client_opts *o)
{
    if (!o->auth_user)
        return true;
    return o->auth_pass && o->auth_user[0] && o->auth_pass[0] &&
           strlen(o->auth_user) < sizeof ((struct smtp_sasl_creds *)0)->user &&
           strlen(o->auth_pass) < sizeof ((struct smtp_sasl_creds *)0)->pass;
}

struct smtp_client *smtp_client_new(const struct smtp_client_opts *opts,
                                    const struct smtp_client_callbacks *cb, void *ctx)
{
    if (!helo_name_ok(opts->helo_name) || !credentials_ok(opts))
        return NULL;
    struct smtp_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->opts = *opts;
    c->cb = cb;
    c->ctx = ctx;
    c->tls = opts->tls_active;
    c->state = ST_GREETING; /* where the session starts: no change, nothing to trace */
    return c;
}

void smtp_client_free(struct smtp_client *c)
{
    if (!c)
        return;
    free(c->in);
    free(c->lmtp_ok);
    out_release(c);
    free(c);
}

void smtp_client_feed(struct smtp_client *c, const char *data, size_t len)
{
    /* during the handshake (ST_TLS) plaintext must not be read: it would pass for replies
     * sent under TLS (STARTTLS response injection, CVE-2011-0411); nor the rest of this feed
     * if the caller finished the handshake from inside start_tls */
    bool tls = c->tls;
    while (len > 0 && c->state != ST_DONE && c->state != ST_TLS && !c->oom && c->tls == tls) {
        size_t take = in_append(c, data, len);
        if (take == 0) {
            if (!c->oom) /* a full buffer without one complete reply cannot be a valid reply */
                protocol_error(c);
            break;
        }
        data += take;
        len -= take;
        if (!c->processing)
            process(c);
    }
    settle(c);
}

const char *smtp_client_output(struct smtp_client *c, size_t *len)
{
    fill_body(c);
    settle(c);
    *len = out_pending(c);
    return c->out ? c->out + c->out_off : "";
}

void smtp_client_consume_output(struct smtp_client *c, size_t n)
{
    if (n > out_pending(c))
        n = out_pending(c);
    c->out_off += n;
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->out_cap > IDLE_BUFFER_KEEP && !in_transaction(c->state))
            out_release(c); /* kept within a transaction: its data refills it */
    }
    pump(c);
    fill_body(c);
    settle(c);
}

void smtp_client_send(struct smtp_client *c, const struct smtp_client_message *msg, size_t first)
{
    if (c->state == ST_DONE) {
        report_message(c, failure(SMTP_CLIENT_CLOSED), msg->n_rcpts);
        return;
    }
    if (c->state != ST_READY)
        return;
    size_t end = first < msg->n_rcpts ? covered_end(c, msg, first) : msg->n_rcpts;
    bool utf8 = needs_utf8(msg, first, end);
    enum smtp_client_failure why;
    if (refused_locally(c, msg, first, utf8, &why)) {
        report_message(c, failure(why), msg->n_rcpts);
        return;
    }
    if (c->opts.lmtp && end - first > c->lmtp_cap) {
        size_t *p = realloc(c->lmtp_ok, (end - first) * sizeof *p);
        if (p == NULL) {
            c->oom = true;
            settle(c);
            report_message(c, failure(SMTP_CLIENT_CLOSED), msg->n_rcpts);
            return;
        }
        c->lmtp_ok = p;
        c->lmtp_cap = end - first;
    }
    c->lmtp_next = 0;
    c->lmtp_any_ok = false;
    c->msg = msg;
    c->utf8 = utf8;
    c->first = first;
    c->end = c->tried_end = end;
    c->accepted = c->sent = c->answered = 0;
    c->jump_from = SIZE_MAX;
    c->mail_failed = c->stopped = c->have_outcome = false;
    c->bdat = c->caps.chunking && !c->opts.lmtp;
    c->chunk_failed = false;
    c->last_chunk = 0;
    enter_state(c, ST_TRANSACTION);
    pump(c);
    settle(c);
}

void smtp_client_tls_started(struct smtp_client *c)
{
    if (c->state != ST_TLS)
        return;
    c->tls = true;
    c->in_off = c->in_len = 0; /* nothing read before the handshake counts after it */
    memset(&c->caps, 0, sizeof c->caps);
    enter_state(c, ST_EHLO);
    send_hello(c, hello_verb(c)); /* RFC 3207 §4.2: forget what was learned before TLS */
    settle(c);
}

void smtp_client_quit(struct smtp_client *c)
{
    if (c->state != ST_READY)
        return;
    enter_state(c, ST_QUIT);
    send_command(c, "QUIT");
    settle(c);
}

void smtp_client_timeout(struct smtp_client *c)
{
    end_session(c, failure(SMTP_CLIENT_TIMEOUT), false);
}

void smtp_client_connection_lost(struct smtp_client *c)
{
    end_session(c, failure(SMTP_CLIENT_CLOSED), false);
}

bool smtp_client_done(const struct smtp_client *c)
{
    return c->state == ST_DONE;
}

bool smtp_client_awaiting_data_end(const struct smtp_client *c)
{
    return c->state == ST_DATA_END || (c->state == ST_TRANSACTION && c->bdat &&
                                       c->last_chunk != 0 && out_pending(c) == 0);
}
