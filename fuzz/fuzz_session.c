/* fuzz/fuzz_session.c — libFuzzer target for the sans-I/O SMTP server session
 * (smtp/server_session.c). Byte 0 picks options (bare LF normalisation, a small size limit,
 * which decisions are pending, refusals, shutdown); byte 1 seeds the sizes of the pieces the
 * rest is fed in (its top bit: a timeout after the first piece). Pending decisions are
 * resumed between pieces. Checks: the output is a sequence of well-formed replies
 * (reply_parse), nothing follows a 221/421, storage callbacks come in order, and feeding
 * piecewise or octet by octet gives identical results. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "reply/reply.h"
#include "smtp/server_session.h"

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
#define SEED_TIMEOUT 0x80u /* in byte 1: the client times out after the first piece */

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
    struct smtp_server *s;
    struct bytes out, stored;
    unsigned calls;        /* callbacks made, as a cheap event digest */
    bool storing;          /* between an accepted data_begin and data_end/abort */
    bool begin_asked;      /* data_begin was asked; its decision says whether storage opens */
    bool held;
    bool closed; /* the session was closing when the run ended */
    struct smtp_decision decision;
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

static void drain(struct fake *f)
{
    size_t n;
    const char *p = smtp_server_output(f->s, &n);
    bytes_add(&f->out, p, n);
    smtp_server_consume_output(f->s, n);
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

static const struct smtp_server_callbacks callbacks = {
    .mail = cb_mail, .rcpt = cb_rcpt, .data_begin = cb_begin_wrap, .data_write = cb_write,
    .data_end = cb_end, .data_abort = cb_abort, .on_reply = NULL,
};

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
        size_t piece = octets ? 1 : (seed == 0 ? n - pos : 1 + next_random(&rnd) % 200);
        if (piece > n - pos)
            piece = n - pos;
        size_t room = smtp_server_input_room(f->s);
        if (room == 0) {
            CHECK(f->held); /* only a pending decision may stop input */
            resume(f);
            continue;
        }
        if (piece > room)
            piece = room;
        smtp_server_feed(f->s, (const char *)in + pos, piece);
        pos += piece;
        drain(f);
        if (first && (f->opts & OPT_SHUTDOWN))
            smtp_server_shutdown(f->s); /* possibly while a decision is pending */
        if (first && (seed & SEED_TIMEOUT))
            smtp_server_timeout(f->s);
        first = false;
        drain(f);
        resume(f);
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
        .ext = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8 | SMTP_EXT_DSN |
               SMTP_EXT_CHUNKING,
        .bare_lf_normalize = (opts & OPT_NORMALIZE) != 0,
        .soft_bounce = false,
    };
    struct fake a = {.opts = opts}, b = {.opts = opts};
    run(&a, &o, data + 2, size - 2, false, seed);
    run(&b, &o, data + 2, size - 2, true, seed);
    check_output(&a.out, a.closed);
    check_output(&b.out, b.closed);
    /* Where input is cut must not matter (a shutdown or timeout lands after the first piece,
     * so there it may). */
    if (!(opts & OPT_SHUTDOWN) && !(seed & SEED_TIMEOUT)) {
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
