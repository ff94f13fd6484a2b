/* fuzz/fuzz_client_session.c — libFuzzer target for the sans-I/O SMTP client session
 * (smtp/client_session.c) fed hostile server replies. Byte 0 picks options (TLS policy, AUTH,
 * recipient limit, handshake inside the callback, timeout or loss at the end, small drains),
 * byte 1 the message (recipients, 8BITMIME, SMTPUTF8, DSN, a large body, bad or UTF-8
 * recipients), byte 2 seeds the sizes of the pieces the rest is fed in. Checks: the output is
 * only well-formed command lines and exactly the dot-stuffed message data after DATA, or BDAT
 * chunks (a server offering CHUNKING) whose data joined is the message's lines or, when a chunk
 * was refused, a prefix of them; callbacks are
 * consistent (one message_result per send, closed once, nothing after it); the traced state
 * changes form one chain ending in DONE before closed; feeding piecewise or octet by octet gives
 * identical results. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "limits_mta.h"
#include "smtp/client_session.h"
#include "smtp/command.h"
#include "trace_chain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

#define OPT_TLS_MASK 0x03u /* 0 none, 1 opportunistic, 2 required, 3 already TLS */
#define OPT_AUTH 0x04u
#define OPT_MAX2 0x08u     /* at most 2 recipients per transaction */
#define OPT_TLS_NOW 0x10u  /* tls_started from inside start_tls */
#define OPT_TIMEOUT 0x20u
#define OPT_LOST 0x40u
#define OPT_DRAIN7 0x80u   /* the output drains 7 bytes at a time */

#define MSG_RCPTS 0x03u    /* 1..4 recipients */
#define MSG_8BIT 0x04u
#define MSG_UTF8 0x08u
#define MSG_DSN 0x10u
#define MSG_BIG 0x20u      /* a body over one 64 KiB chunk */
#define MSG_BAD_RCPT 0x40u
#define MSG_UTF8_RCPT 0x80u

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

static void bytes_str(struct bytes *b, const char *s)
{
    bytes_add(b, s, strlen(s));
}

struct fake {
    unsigned opts;
    const struct smtp_client_message *msg;
    struct smtp_client *c;
    struct bytes out, events;
    unsigned sends, results, readies;
    bool closed, tls_pending, tls_seen;
    size_t first;     /* first recipient of the transaction in progress */
    uint8_t seen[8];  /* rcpt_result reported, by index, in this transaction */
    struct trace_chain trace;
};

/* The option byte is full: LMTP rides on a pair that says nothing about replies. */
static bool speaks_lmtp(const struct fake *f)
{
    return (f->opts & (OPT_MAX2 | OPT_DRAIN7)) == (OPT_MAX2 | OPT_DRAIN7);
}

static void ev(struct fake *f, const char *s, int n)
{
    char num[16];
    size_t k = sizeof num;
    unsigned v = (unsigned)n;
    do {
        num[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    bytes_str(&f->events, s);
    bytes_add(&f->events, num + k, sizeof num - k);
    bytes_add(&f->events, "\n", 1);
}

static int code_of(const struct smtp_client_result *r)
{
    CHECK((r->failure == SMTP_CLIENT_REPLY) == (r->reply != NULL));
    if (r->reply) {
        CHECK(r->reply->code >= 200 && r->reply->code <= 599);
        CHECK(r->reply->text_len < REPLY_TEXT_MAX && r->reply->text[r->reply->text_len] == '\0');
        return r->reply->code;
    }
    CHECK(smtp_client_strerror(r->failure) != NULL);
    return -(int)r->failure;
}

static void send_from(struct fake *f, size_t first)
{
    f->sends++;
    f->first = first;
    memset(f->seen, 0, sizeof f->seen);
    smtp_client_send(f->c, f->msg, first);
}

static void cb_ready(void *ctx, const struct smtp_client_caps *caps)
{
    struct fake *f = ctx;
    CHECK(!f->closed && f->readies++ == 0);
    ev(f, "ready ", caps->pipelining);
    send_from(f, 0);
}

static void cb_start_tls(void *ctx)
{
    struct fake *f = ctx;
    CHECK(!f->closed && f->readies == 0);
    f->tls_seen = true;
    ev(f, "start_tls ", 0);
    if (f->opts & OPT_TLS_NOW)
        smtp_client_tls_started(f->c);
    else
        f->tls_pending = true;
}

static void cb_rcpt(void *ctx, size_t i, const struct smtp_client_result *r)
{
    struct fake *f = ctx;
    CHECK(!f->closed && f->sends == f->results + 1);
    CHECK(i >= f->first && i < f->msg->n_rcpts && !f->seen[i]);
    f->seen[i] = 1;
    ev(f, "rcpt ", code_of(r));
}

static void cb_message(void *ctx, const struct smtp_client_result *r, size_t n_tried)
{
    struct fake *f = ctx;
    CHECK(!f->closed && ++f->results == f->sends);
    CHECK(n_tried > f->first && n_tried <= f->msg->n_rcpts);
    for (size_t i = n_tried; i < f->msg->n_rcpts; i++)
        CHECK(!f->seen[i]); /* nothing reported beyond what the transaction covered */
    ev(f, "message ", code_of(r));
    if (smtp_client_done(f->c))
        return;
    if (n_tried < f->msg->n_rcpts)
        send_from(f, n_tried);
    else
        smtp_client_quit(f->c);
}

static void cb_closed(void *ctx, const struct smtp_client_result *why)
{
    struct fake *f = ctx;
    CHECK(!f->closed && f->results == f->sends);
    CHECK(strcmp(f->trace.state, "DONE") == 0); /* the trace said so first */
    f->closed = true;
    ev(f, "closed ", code_of(why));
}

static void cb_trace(void *ctx, const char *line)
{
    struct fake *f = ctx;
    CHECK(strcmp(f->trace.state, "DONE") != 0); /* nothing leaves DONE */
    trace_chain_add(&f->trace, "GREETING", line);
}

static const struct smtp_client_callbacks callbacks = {
    .ready = cb_ready,
    .start_tls = cb_start_tls,
    .rcpt_result = cb_rcpt,
    .message_result = cb_message,
    .closed = cb_closed,
    .trace = cb_trace,
};

static void drain(struct fake *f)
{
    for (;;) {
        size_t n;
        const char *p = smtp_client_output(f->c, &n);
        CHECK(n <= 4 * 64 * 1024);
        if (n == 0)
            return;
        if ((f->opts & OPT_DRAIN7) && n > 7)
            n = 7;
        bytes_add(&f->out, p, n);
        smtp_client_consume_output(f->c, n);
    }
}

/* ---- the message ------------------------------------------------------------------------- */

static const char small_body[] = "Subject: x\r\n\r\n.\r\n..x\r\nline\n.bare LF\r.bare CR\r\n.";
static char big_body[70000];

static void make_big_body(void)
{
    if (big_body[0])
        return;
    static const char lines[] = "Subject: big\r\n";
    memcpy(big_body, lines, sizeof lines - 1);
    for (size_t i = sizeof lines - 1; i < sizeof big_body; i++)
        big_body[i] = (i % 61 == 0) ? '\n' : (i % 61 == 60) ? '\r' : (i % 61 == 1) ? '.' : 'b';
}

/* What the message data must look like on the wire: after DATA (dots), or in BDAT chunks. */
static void wire_lines(const char *b, size_t n, bool dots, struct bytes *out)
{
    bool line_start = true;
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '\r' || b[i] == '\n') {
            if (b[i] == '\r' && i + 1 < n && b[i + 1] == '\n')
                i++;
            bytes_add(out, "\r\n", 2);
            line_start = true;
            continue;
        }
        if (dots && line_start && b[i] == '.')
            bytes_add(out, ".", 1);
        bytes_add(out, &b[i], 1);
        line_start = false;
    }
    if (!line_start)
        bytes_add(out, "\r\n", 2);
    if (dots)
        bytes_add(out, ".\r\n", 3);
}

/* The message data as each path sends it. */
struct want {
    struct bytes data, chunks;
};

/* ---- the output check -------------------------------------------------------------------- */

static bool starts(const char *p, size_t n, const char *word)
{
    size_t w = strlen(word);
    return n >= w && memcmp(p, word, w) == 0;
}

static bool base64_line(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || c == '=';
        if (!ok)
            return false;
    }
    return n > 0;
}

/* "BDAT <size>" or "BDAT <size> LAST" (len octets without CRLF): the size, or -1. */
static long long bdat_size(const char *p, size_t len, bool *last)
{
    if (!starts(p, len, "BDAT "))
        return -1;
    size_t i = 5;
    long long v = 0;
    for (; i < len && p[i] >= '0' && p[i] <= '9' && i < 5 + 12; i++)
        v = v * 10 + (p[i] - '0');
    *last = len == i + 5 && memcmp(p + i, " LAST", 5) == 0;
    return i > 5 && (*last || i == len) ? v : -1;
}

/* The output is command lines, each whole message data right after a DATA line, or ".\r\n"
 * (data accepted for no recipient), or a prefix of the data when the session ended inside it;
 * or BDAT chunks of at most 64 KiB whose data, joined per transaction, is a prefix of the
 * message's lines, all of them once a LAST chunk went. */
static void check_output(const struct fake *f, const struct want *w)
{
    const struct bytes *data = &w->data;
    const char *o = f->out.p;
    size_t n = f->out.len, pos = 0, joined = 0;
    bool after_data = false, quit = false;
    while (pos < n) {
        CHECK(!quit); /* nothing after QUIT */
        const char *p = o + pos;
        size_t left = n - pos;
        if (after_data) {
            after_data = false;
            if (left >= data->len && memcmp(p, data->p, data->len) == 0) {
                pos += data->len;
                continue;
            }
            if (starts(p, left, ".\r\n")) {
                pos += 3;
                continue;
            }
            if (left < data->len && memcmp(p, data->p, left) == 0 && smtp_client_done(f->c))
                return; /* cut off: the server stopped reading the data */
        }
        const char *lf = memchr(p, '\n', left);
        CHECK(lf != NULL);
        size_t len = (size_t)(lf - p);
        CHECK(len >= 1 && p[len - 1] == '\r');
        len--;
        CHECK(len + 2 <= LIMIT_AUTH_LINE);
        CHECK(!memchr(p, '\r', len) && !memchr(p, '\0', len));
        bool last = false;
        long long chunk = bdat_size(p, len, &last);
        if (chunk >= 0) {
            CHECK(!speaks_lmtp(f) && chunk <= 64 * 1024);
            size_t c = (size_t)chunk;
            pos += len + 2;
            CHECK(n - pos >= c && joined + c <= w->chunks.len &&
                  memcmp(o + pos, w->chunks.p + joined, c) == 0);
            joined += c;
            CHECK(!last || joined == w->chunks.len);
            pos += c;
            continue;
        }
        if (starts(p, len, "MAIL FROM:<"))
            joined = 0; /* a new transaction */
        if (starts(p, len, "MAIL FROM:<") || starts(p, len, "RCPT TO:<"))
            CHECK(len + 2 <= LIMIT_MAIL_RCPT_LINE);
        else if (starts(p, len, "DATA") && len == 4)
            after_data = true;
        else if (starts(p, len, "QUIT") && len == 4)
            quit = true;
        else
            CHECK((starts(p, len, "EHLO ") || starts(p, len, "HELO ")) ||
                  (speaks_lmtp(f) && starts(p, len, "LHLO ")) ||
                  (len == 8 && starts(p, len, "STARTTLS")) || (len == 4 && starts(p, len, "RSET")) ||
                  starts(p, len, "AUTH PLAIN ") || (len == 10 && starts(p, len, "AUTH LOGIN")) ||
                  base64_line(p, len));
        pos += len + 2;
    }
}

/* ---- the run ----------------------------------------------------------------------------- */

static uint32_t next_random(uint32_t *s)
{
    uint32_t x = *s ? *s : 1;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

static void run(struct fake *f, const uint8_t *in, size_t n, uint32_t seed, bool octets)
{
    static const enum smtp_client_tls policies[] = {
        SMTP_CLIENT_TLS_NONE, SMTP_CLIENT_TLS_OPPORTUNISTIC, SMTP_CLIENT_TLS_REQUIRED,
        SMTP_CLIENT_TLS_REQUIRED};
    struct smtp_client_opts o = {
        .helo_name = "client.example.test",
        .tls = policies[f->opts & OPT_TLS_MASK],
        .tls_active = (f->opts & OPT_TLS_MASK) == 3,
        .auth_user = (f->opts & OPT_AUTH) ? "alice" : NULL,
        .auth_pass = "alice-secret",
        .max_rcpts = (f->opts & OPT_MAX2) ? 2 : 0,
        .lmtp = speaks_lmtp(f),
    };
    f->c = smtp_client_new(&o, &callbacks, f);
    CHECK(f->c != NULL);
    drain(f);
    size_t pos = 0;
    while (pos < n) {
        size_t k = octets ? 1 : 1 + next_random(&seed) % 64;
        if (k > n - pos)
            k = n - pos;
        smtp_client_feed(f->c, (const char *)in + pos, k);
        drain(f);
        if (f->tls_pending) {
            f->tls_pending = false;
            smtp_client_tls_started(f->c);
            drain(f);
        }
        pos += k;
    }
    if (f->opts & OPT_TIMEOUT)
        smtp_client_timeout(f->c);
    if (f->opts & OPT_LOST)
        smtp_client_connection_lost(f->c);
    drain(f);
    if (smtp_client_done(f->c))
        CHECK(f->closed && f->results == f->sends);
    else
        CHECK(!f->closed && f->results + 1 >= f->sends);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    unsigned opts = data[0], m = data[1];
    uint32_t seed = data[2] * 2654435761u;
    data += 3;
    size -= 3;
    make_big_body();

    struct smtp_client_rcpt rcpts[4] = {
        {"r0@dest.test", 0, NULL}, {"r1@dest.test", 0, NULL},
        {"r2@dest.test", 0, NULL}, {"r3@dest.test", 0, NULL},
    };
    if (m & MSG_DSN) {
        rcpts[0].notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE;
        rcpts[0].orcpt = "rfc822;r0@dest.test";
        rcpts[1].notify = SMTP_NOTIFY_NEVER;
    }
    if (m & MSG_BAD_RCPT)
        rcpts[1].address = "bad@dest.test>\r\nRSET";
    if (m & MSG_UTF8_RCPT)
        rcpts[2].address = "j\xc3\xb6rg@dest.test";
    struct smtp_client_message msg = {
        .sender = "s@src.test",
        .rcpts = rcpts,
        .n_rcpts = 1 + (m & MSG_RCPTS),
        .eightbit = (m & MSG_8BIT) != 0,
        .smtputf8 = (m & MSG_UTF8) != 0,
        .ret = (m & MSG_DSN) ? 2 : 0,
        .envid = (m & MSG_DSN) ? "QID1" : NULL,
        .body = (m & MSG_BIG) ? big_body : small_body,
        .body_len = (m & MSG_BIG) ? sizeof big_body : sizeof small_body - 1,
    };
    static struct want want_small, want_big;
    if (want_small.data.len == 0) {
        wire_lines(small_body, sizeof small_body - 1, true, &want_small.data);
        wire_lines(small_body, sizeof small_body - 1, false, &want_small.chunks);
        wire_lines(big_body, sizeof big_body, true, &want_big.data);
        wire_lines(big_body, sizeof big_body, false, &want_big.chunks);
    }
    const struct want *want = (m & MSG_BIG) ? &want_big : &want_small;

    struct fake a = {.opts = opts, .msg = &msg}, b = {.opts = opts, .msg = &msg};
    run(&a, data, size, seed, false);
    check_output(&a, want);
    run(&b, data, size, seed, true);
    check_output(&b, want);
    /* plaintext after STARTTLS's 220 is dropped up to the end of its piece, so the runs may
     * differ once a handshake happened; and with a body over one chunk, a reply in the same
     * piece as the 354 comes while data is still going out (an early reply), later it is the
     * final reply */
    if (!a.tls_seen && !b.tls_seen && !(m & MSG_BIG)) {
        CHECK(a.out.len == b.out.len &&
              (a.out.len == 0 || memcmp(a.out.p, b.out.p, a.out.len) == 0));
        CHECK(a.events.len == b.events.len &&
              (a.events.len == 0 || memcmp(a.events.p, b.events.p, a.events.len) == 0));
    }
    smtp_client_free(a.c);
    smtp_client_free(b.c);
    free(a.out.p);
    free(a.events.p);
    free(b.out.p);
    free(b.events.p);
    return 0;
}
