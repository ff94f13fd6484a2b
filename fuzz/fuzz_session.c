/* fuzz/fuzz_session.c — libFuzzer target for the sans-I/O SMTP server session
 * (smtp/server_session.c), STARTTLS (RFC 3207) and AUTH (RFC 4954) included. Byte 0 picks
 * options (bare LF normalisation, a small size limit, which decisions are pending, refusals,
 * shutdown); byte 1 picks STARTTLS and AUTH offers and a timeout after the first piece, and
 * seeds the sizes of the pieces the rest is fed in. Pending decisions are resumed and the TLS
 * handshake is "run" between pieces. Checks: the output is a sequence of well-formed replies
 * (reply_parse), nothing follows a 221/421, storage callbacks come in order, nothing after a
 * STARTTLS line in the same piece is answered, SASL responses and credentials never reach
 * on_reply's line, state changes traced form one chain, unsent replies never pass
 * LIMIT_PENDING_OUTPUT by more than a reply, and without a handshake feeding
 * piecewise or octet by octet gives identical results. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "reply/reply.h"
#include "smtp/server_session.h"
#include "trace_chain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

#define OPT_NORMALIZE 0x01u
#define OPT_SMALL 0x02u   /* size limit 64, 3 recipients, 4 errors */
#define OPT_PEND_MAIL 0x04u
#define OPT_PEND_RCPT 0x08u
#define OPT_PEND_BEGIN 0x10u
#define OPT_PEND_END 0x20u
#define OPT_REFUSE 0x40u  /* MAIL: disk full for senders starting with 'f'; data_end: 451 */
#define OPT_SHUTDOWN 0x80u /* shutdown after the first piece */
/* Byte 1: option bits above, the seed of the piece sizes below (0: one piece). */
#define SEED_TIMEOUT 0x80u    /* the client times out after the first piece */
#define SEED_TLS 0x40u        /* STARTTLS offered and available; the handshake always works */
#define SEED_AUTH 0x20u       /* AUTH offered (after TLS and required before MAIL, or ...) */
#define SEED_AUTH_ALWAYS 0x10u /* ... in plaintext too, not required */
#define SEED_PIECES 0x0fu

struct bytes {
    char *p;
    size_t len, cap;
};

static void bytes_add(struct bytes *b, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap - b->len < n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        CHECK(b->p != NULL);
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

struct fake {
    unsigned opts;
    uint8_t seed;
    struct smtp_server *s;
    struct bytes out, stored;
    unsigned calls;        /* callbacks made, as a cheap event digest */
    bool storing;          /* between an accepted data_begin and data_end/abort */
    bool begin_asked;      /* data_begin was asked; its decision says whether storage opens */
    bool held;
    bool closed; /* the session was closing when the run ended */
    struct smtp_decision decision;
    unsigned handshakes;   /* TLS handshakes run */
    bool tls_wait;         /* a 220 to STARTTLS was sent, the handshake not run yet */
    bool authenticated;    /* a 235 was sent */
    bool sasl_open;        /* the last reply was a 334: the next line is a SASL response */
    bool creds_fresh;      /* the auth callback ran since the last reply */
    char mechanism[8];     /* as the auth callback got it */
    struct trace_chain trace;
};

static enum smtp_verdict answer(struct fake *f, unsigned pend_opt, struct smtp_decision *d)
{
    if (!(f->opts & pend_opt))
        return SMTP_DECIDED;
    CHECK(!f->held);
    f->decision = *d;
    f->held = true;
    return SMTP_PENDING;
}

static void copy_detail(struct smtp_decision *d, const char *s)
{
    size_t n = strlen(s);
    CHECK(n < sizeof d->detail);
    memcpy(d->detail, s, n + 1);
}

static enum smtp_verdict cb_mail(void *ctx, const struct smtp_command *cmd, struct smtp_decision *d)
{
    struct fake *f = ctx;
    f->calls++;
    CHECK(!f->storing);
    /* submission (AUTH after TLS) requires AUTH before MAIL */
    CHECK(!(f->seed & SEED_AUTH) || (f->seed & SEED_AUTH_ALWAYS) ||
          smtp_server_auth_user(f->s) != NULL);
    bool refuse = (f->opts & OPT_REFUSE) && cmd->path.local[0] == 'f';
    d->reply = refuse ? REPLY_DISK_FULL : REPLY_SENDER_OK;
    copy_detail(d, cmd->path.mailbox);
    return answer(f, OPT_PEND_MAIL, d);
}

static enum smtp_verdict cb_rcpt(void *ctx, const struct smtp_command *cmd, struct smtp_decision *d)
{
    struct fake *f = ctx;
    f->calls++;
    CHECK(!f->storing);
    const struct smtp_path *p = &cmd->path;
    copy_detail(d, p->mailbox);
    if (p->is_postmaster || (strcasecmp(p->domain, "example.test") == 0 && p->local[0] != 'n')) {
        d->reply = REPLY_RCPT_OK;
        memcpy(d->mailbox, "box", 4);
    } else {
        d->reply = p->domain[0] == 'e' ? REPLY_USER_UNKNOWN : REPLY_RELAY_DENIED;
    }
    return answer(f, OPT_PEND_RCPT, d);
}

static enum smtp_verdict cb_begin(void *ctx, const struct smtp_envelope *env,
                                  struct smtp_decision *d)
{
    struct fake *f = ctx;
    f->calls++;
    CHECK(!f->storing && env->n_rcpts > 0);
    d->reply = REPLY_START_DATA;
    f->begin_asked = true;
    return answer(f, OPT_PEND_BEGIN, d);
}

static enum reply_id cb_write(void *ctx, const char *p, size_t n)
{
    struct fake *f = ctx;
    CHECK(f->storing && n > 0);
    bytes_add(&f->stored, p, n);
    return REPLY_OK;
}

static enum smtp_verdict cb_end(void *ctx, struct smtp_decision *d)
{
    struct fake *f = ctx;
    f->calls++;
    CHECK(f->storing);
    f->storing = false;
    d->reply = (f->opts & OPT_REFUSE) ? REPLY_STORE_FAILED : REPLY_QUEUED;
    copy_detail(d, "QID");
    return answer(f, OPT_PEND_END, d);
}

static void cb_abort(void *ctx)
{
    struct fake *f = ctx;
    f->calls++;
    CHECK(f->storing);
    f->storing = false;
}

/* data_begin's decision, immediate or resumed, opens storage when it accepts. */
static void note_begin(struct fake *f, const struct smtp_decision *d)
{
    if (!f->begin_asked)
        return;
    f->begin_asked = false;
    int code = reply_row_get(d->reply)->code;
    if (code >= 200 && code < 400)
        f->storing = true;
}

/* Reads everything: each time the output is consumed the session answers the commands it held
 * back for it (LIMIT_PENDING_OUTPUT), which never holds more than that plus one reply. */
static void drain(struct fake *f)
{
    size_t n;
    const char *p = smtp_server_output(f->s, &n);
    while (n > 0) {
        CHECK(n <= LIMIT_PENDING_OUTPUT + 1024);
        bytes_add(&f->out, p, n);
        smtp_server_consume_output(f->s, n);
        p = smtp_server_output(f->s, &n);
    }
}

static void resume(struct fake *f)
{
    while (f->held) {
        f->held = false;
        struct smtp_decision d = f->decision;
        if (!smtp_server_closing(f->s)) /* a closed session ignores late decisions */
            note_begin(f, &d);
        else
            f->begin_asked = false;
        smtp_server_resume(f->s, &d);
        drain(f);
    }
}

/* An immediate data_begin decision is known inside the callback; a pending one at resume. */
static enum smtp_verdict cb_begin_wrap(void *ctx, const struct smtp_envelope *env,
                                       struct smtp_decision *d)
{
    struct fake *f = ctx;
    enum smtp_verdict v = cb_begin(ctx, env, d);
    if (v == SMTP_DECIDED)
        note_begin(f, d);
    return v;
}

/* The credential store: password "ok" passes; users starting with 't' meet a broken store
 * (454), with 'x' have failed too often (421); users starting with 'p' are answered later. */
static enum smtp_verdict cb_auth(void *ctx, const char *mechanism,
                                 const struct smtp_sasl_creds *c, struct smtp_decision *d)
{
    struct fake *f = ctx;
    f->calls++;
    CHECK(f->seed & SEED_AUTH);
    CHECK((f->seed & SEED_AUTH_ALWAYS) || smtp_server_tls(f->s));
    CHECK(smtp_server_auth_user(f->s) == NULL); /* no second AUTH after a success */
    CHECK(strcmp(mechanism, "PLAIN") == 0 || strcmp(mechanism, "LOGIN") == 0);
    CHECK(c->user[0] != '\0' && c->pass[0] != '\0' && smtp_sasl_authzid_ok(c));
    memcpy(f->mechanism, mechanism, 6);
    f->creds_fresh = true;
    if (c->user[0] == 't') {
        d->reply = REPLY_AUTH_TEMPFAIL;
    } else if (c->user[0] == 'x') {
        d->reply = REPLY_AUTH_TOO_MANY_FAILURES;
        copy_detail(d, "mx.example.test");
    } else {
        d->reply = strcmp(c->pass, "ok") == 0 ? REPLY_AUTH_OK : REPLY_AUTH_FAILED;
    }
    if (c->user[0] != 'p')
        return SMTP_DECIDED;
    CHECK(!f->held);
    f->decision = *d;
    f->held = true;
    return SMTP_PENDING;
}

/* What a log line would show. A SASL response line, and the AUTH command beyond its
 * mechanism, never appear: so no credential, encoded or decoded, reaches the logs. */
static void cb_on_reply(void *ctx, const char *line, enum reply_id id, const char *detail)
{
    struct fake *f = ctx;
    CHECK(line != NULL && detail != NULL);
    if (f->sasl_open)
        CHECK(line[0] == '\0');
    if (f->creds_fresh) /* the reply to the message that carried the password */
        CHECK(line[0] == '\0' ||
              (strncasecmp(line, "AUTH ", 5) == 0 &&
               strcasecmp(line + 5 + strspn(line + 5, " "), f->mechanism) == 0));
    f->creds_fresh = false;
    int code = reply_row_get(id)->code;
    /* After the 220 to STARTTLS no command is answered until the handshake: only a timeout
     * or a shutdown may still speak (a 421 to no command line). */
    if (f->tls_wait)
        CHECK(code == 421 && line[0] == '\0');
    if (id == REPLY_READY_TLS)
        f->tls_wait = true;
    f->sasl_open = code == 334;
    if (id == REPLY_AUTH_OK)
        f->authenticated = true;
}

static void cb_trace(void *ctx, const char *line)
{
    struct fake *f = ctx;
    trace_chain_add(&f->trace, "NEED_HELO", line);
}

static const struct smtp_server_callbacks callbacks = {
    .mail = cb_mail, .rcpt = cb_rcpt, .data_begin = cb_begin_wrap, .data_write = cb_write,
    .data_end = cb_end, .data_abort = cb_abort, .auth = cb_auth, .on_reply = cb_on_reply,
    .trace = cb_trace,
};

/* The session waits for the handshake: its 220 must be the last thing it said (nothing
 * that followed STARTTLS in the same piece was answered), and it takes no input. */
static void handshake(struct fake *f)
{
    if (!smtp_server_wants_tls(f->s))
        return;
    char ready[64];
    size_t n = reply_format(ready, sizeof ready, REPLY_READY_TLS, NULL, NULL, 0,
                            REPLY_FMT_ENHANCED);
    CHECK(n > 0 && (f->seed & SEED_TLS) && !smtp_server_tls(f->s));
    CHECK(f->out.len >= n && memcmp(f->out.p + f->out.len - n, ready, n) == 0);
    CHECK(smtp_server_input_room(f->s) == 0 && !smtp_server_pending(f->s));
    size_t before = f->out.len;
    smtp_server_tls_started(f->s);
    f->tls_wait = false;
    drain(f);
    CHECK(f->out.len == before && smtp_server_tls(f->s) && !smtp_server_wants_tls(f->s));
    CHECK(smtp_server_helo(f->s)[0] == '\0');
    f->handshakes++;
}

static uint32_t next_random(uint32_t *st)
{
    uint32_t x = *st;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *st = x;
    return x;
}

/* One run: octets == true feeds one octet at a time, else pieces sized from seed. */
static void run(struct fake *f, const struct smtp_server_opts *o, const uint8_t *in, size_t n,
                bool octets, uint8_t seed)
{
    uint32_t rnd = 0x9e3779b9u ^ seed;
    f->s = smtp_server_new(o, &callbacks, f);
    CHECK(f->s != NULL);
    smtp_server_start(f->s);
    drain(f);
    size_t pos = 0;
    bool first = true;
    while (pos < n && !smtp_server_closing(f->s)) {
        size_t piece = octets ? 1
                              : ((seed & SEED_PIECES) == 0 ? n - pos : 1 + next_random(&rnd) % 200);
        if (piece > n - pos)
            piece = n - pos;
        size_t room = smtp_server_input_room(f->s);
        if (room == 0) {
            CHECK(f->held || smtp_server_wants_tls(f->s)); /* nothing else stops input */
            resume(f);
            handshake(f);
            continue;
        }
        if (piece > room)
            piece = room;
        smtp_server_feed(f->s, (const char *)in + pos, piece);
        pos += piece;
        drain(f);
        handshake(f);
        if (first && (f->opts & OPT_SHUTDOWN))
            smtp_server_shutdown(f->s); /* possibly while a decision is pending */
        if (first && (seed & SEED_TIMEOUT))
            smtp_server_timeout(f->s);
        first = false;
        drain(f);
        resume(f);
        handshake(f);
        CHECK(!f->tls_wait || smtp_server_closing(f->s)); /* the caller runs the handshake */
        CHECK(smtp_server_auth_user(f->s) == NULL || f->authenticated);
    }
    resume(f);
    CHECK(!smtp_server_pending(f->s));
    f->closed = smtp_server_closing(f->s);
    smtp_server_free(f->s);
    f->s = NULL;
}

/* The output must be complete, well-formed replies, nothing may follow a 221 or 421, and a
 * session that closed said one of them last. */
static void check_output(const struct bytes *out, bool closed)
{
    static struct reply_parsed parsed;
    size_t pos = 0;
    bool last_word = false;
    while (pos < out->len) {
        size_t used = 0;
        CHECK(!last_word);
        enum reply_parse_err err = reply_parse(out->p + pos, out->len - pos, &parsed, &used);
        CHECK(err == REPLY_PARSE_OK);
        CHECK(!parsed.bare_lf && used > 0);
        if (parsed.code == 221 || parsed.code == 421)
            last_word = true;
        pos += used;
    }
    CHECK(!closed || last_word);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned opts = data[0];
    uint8_t seed = data[1];
    struct smtp_server_opts o = {
        .hostname = "mx.example.test",
        .max_message_size = (opts & OPT_SMALL) ? 64 : 10485760,
        .max_recipients = (opts & OPT_SMALL) ? 3 : 100,
        .max_errors = (opts & OPT_SMALL) ? 4 : 10,
        .max_hops = (opts & OPT_SMALL) ? 1 : 100,
        .max_messages_per_session = (opts & OPT_SMALL) ? 2 : 0,
        .ext = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8 | SMTP_EXT_DSN |
               SMTP_EXT_CHUNKING,
        .bare_lf_normalize = (opts & OPT_NORMALIZE) != 0,
        .soft_bounce = false,
        .offer_starttls = (seed & SEED_TLS) != 0,
        .tls_available = (seed & SEED_TLS) != 0,
        .auth = !(seed & SEED_AUTH)          ? SMTP_AUTH_NEVER
                : (seed & SEED_AUTH_ALWAYS) ? SMTP_AUTH_ALWAYS
                                            : SMTP_AUTH_AFTER_TLS,
        .require_auth = (seed & SEED_AUTH) && !(seed & SEED_AUTH_ALWAYS),
    };
    struct fake a = {.opts = opts, .seed = seed}, b = {.opts = opts, .seed = seed};
    run(&a, &o, data + 2, size - 2, false, seed);
    run(&b, &o, data + 2, size - 2, true, seed);
    check_output(&a.out, a.closed);
    check_output(&b.out, b.closed);
    /* Where input is cut must not matter (a shutdown or timeout lands after the first piece,
     * so there it may; what followed STARTTLS in its piece is discarded by design). */
    if (!(opts & OPT_SHUTDOWN) && !(seed & SEED_TIMEOUT) && a.handshakes == 0 &&
        b.handshakes == 0) {
        CHECK(a.out.len == b.out.len && memcmp(a.out.p, b.out.p, a.out.len) == 0);
        CHECK(a.stored.len == b.stored.len &&
              (a.stored.len == 0 || memcmp(a.stored.p, b.stored.p, a.stored.len) == 0));
        CHECK(a.calls == b.calls);
    }
    free(a.out.p);
    free(a.stored.p);
    free(b.out.p);
    free(b.stored.p);
    return 0;
}
