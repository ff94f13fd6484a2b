/* tests/unit/test_smtp_client_session.c — transcripts for the sans-I/O SMTP client session
 * (smtp/client_session.c): server bytes in, client bytes and callback events out, as readable
 * text. Every transcript is replayed whole, one octet at a time and in seeded random pieces; all
 * runs must give the same result. A small rule-driven server checks that PIPELINING on and off
 * give the same outcomes. RFC 5321, 2920, 1870, 6152, 6531, 3461, 3207, 4954, 9422, 3030. */
#include "unit.h"
#include "caps_text.h"
#include "transcript.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/client_session.h"
#include "smtp/command.h"

#define HELO_NAME "client.example.test"

#define GREET "220 mx.example.test ESMTP\r\n"
#define EHLO_C "EHLO " HELO_NAME "\r\n"
#define HELO_C "HELO " HELO_NAME "\r\n"
#define EHLO_ALL                   \
    "250-mx.example.test\r\n"      \
    "250-PIPELINING\r\n"           \
    "250-SIZE 10000\r\n"           \
    "250-8BITMIME\r\n"             \
    "250-ENHANCEDSTATUSCODES\r\n"  \
    "250-SMTPUTF8\r\n"             \
    "250 DSN\r\n"
#define READY_ALL "ready ESMTP PIPELINING SIZE=10000 8BITMIME SMTPUTF8 DSN ENHANCEDSTATUSCODES\n"
#define EHLO_MIN "250-mx.example.test\r\n250 ENHANCEDSTATUSCODES\r\n"
#define READY_MIN "ready ESMTP ENHANCEDSTATUSCODES\n"
#define MAIL_OK "250 2.1.0 Ok\r\n"
#define RCPT_OK "250 2.1.5 Ok\r\n"
#define DATA_GO "354 End data with <CR><LF>.<CR><LF>\r\n"
#define QUEUED "250 2.0.0 Ok: queued\r\n"
#define RSET_OK "250 2.0.0 Ok\r\n"
#define BYE "221 2.0.0 Bye\r\n"
#define BODY "hi\r\n"
#define MAIL_C "MAIL FROM:<s@src.test> SIZE=4\r\n"
#define MAIL_MIN_C "MAIL FROM:<s@src.test>\r\n"
#define RCPT_C(n) "RCPT TO:<r" #n "@dest.test>\r\n"
#define DATA_C "DATA\r\n"
#define BODY_C "hi\r\n.\r\n"
#define QUIT_C "QUIT\r\n"
#define RSET_C "RSET\r\n"
/* The server's half of a whole session of one message to one recipient, and our half. */
#define ONE_OK_S MAIL_OK RCPT_OK DATA_GO QUEUED BYE
#define ONE_OK_C MAIL_C RCPT_C(0) DATA_C BODY_C QUIT_C

/* ---- messages ---------------------------------------------------------------------------- */

static const struct smtp_client_rcpt rcpts[] = {
    {"r0@dest.test", 0, NULL}, {"r1@dest.test", 0, NULL}, {"r2@dest.test", 0, NULL},
    {"r3@dest.test", 0, NULL}, {"r4@dest.test", 0, NULL}, {"r5@dest.test", 0, NULL},
};

static struct smtp_client_message message(size_t n_rcpts)
{
    return (struct smtp_client_message){
        .sender = "s@src.test",
        .rcpts = rcpts,
        .n_rcpts = n_rcpts,
        .body = BODY,
        .body_len = sizeof BODY - 1,
    };
}

/* One recipient, body of len octets. */
static struct smtp_client_message message_of(const char *body, size_t len)
{
    struct smtp_client_message m = message(1);
    m.body = body;
    m.body_len = len;
    return m;
}

/* len octets of 'x' (malloc'd). */
static char *x_body(size_t len)
{
    char *body = malloc(len);
    assert_non_null(body);
    memset(body, 'x', len);
    return body;
}

/* ---- the fake caller ------------------------------------------------------------------- */

/* What the fake does; the defaults send msg at ready, the rest of it after a partial
 * transaction, and QUIT once every recipient was tried. */
struct setup {
    struct smtp_client_opts opts;
    const struct smtp_client_message *msg; /* NULL: QUIT at ready */
    bool idle;    /* do nothing at ready */
    bool tls_now; /* finish the TLS handshake from inside start_tls */
    size_t drain; /* consume at most this many output bytes at a time (0: all there is) */
    bool trace;   /* state changes are events too */
};

struct fake {
    const struct setup *su;
    struct smtp_client_callbacks cb; /* fake_cb, with trace when su->trace */
    struct smtp_client *c;
    struct text events, out;
    bool tls_pending;
    unsigned sends, results, closes;
    size_t max_pending; /* the most output ever waiting at once */
};

static const char *const failure_names[] = {
    [SMTP_CLIENT_REPLY] = "REPLY",
    [SMTP_CLIENT_PROTOCOL] = "PROTOCOL",
    [SMTP_CLIENT_TLS_UNAVAILABLE] = "TLS_UNAVAILABLE",
    [SMTP_CLIENT_AUTH_UNAVAILABLE] = "AUTH_UNAVAILABLE",
    [SMTP_CLIENT_TOO_BIG] = "TOO_BIG",
    [SMTP_CLIENT_NEEDS_SMTPUTF8] = "NEEDS_SMTPUTF8",
    [SMTP_CLIENT_NO_RECIPIENTS] = "NO_RECIPIENTS",
    [SMTP_CLIENT_BAD_ENVELOPE] = "BAD_ENVELOPE",
    [SMTP_CLIENT_TIMEOUT] = "TIMEOUT",
    [SMTP_CLIENT_CLOSED] = "CLOSED",
};

__attribute__((format(printf, 2, 3))) static void event(struct fake *f, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof line - 1);
    line[n++] = '\n';
    text_add(&f->events, line, (size_t)n);
}

/* "250 2.1.5" for a reply (its enhanced code when it has one), else the failure's name. */
static const char *result_str(const struct smtp_client_result *r, char *buf, size_t cap)
{
    if (r->failure != SMTP_CLIENT_REPLY) {
        assert_null(r->reply);
        return failure_names[r->failure];
    }
    assert_non_null(r->reply);
    const struct reply_status *st = &r->reply->status;
    if (st->cls)
        snprintf(buf, cap, "%d %d.%d.%d", r->reply->code, st->cls, st->subject, st->detail);
    else
        snprintf(buf, cap, "%d", r->reply->code);
    return buf;
}

static void fake_ready(void *ctx, const struct smtp_client_caps *k)
{
    struct fake *f = ctx;
    char line[256];
    event(f, "ready%s", caps_text(k, line, sizeof line));
    if (f->su->idle)
        return;
    if (f->su->msg) {
        f->sends++;
        smtp_client_send(f->c, f->su->msg, 0);
    } else {
        smtp_client_quit(f->c);
    }
}

static void fake_start_tls(void *ctx)
{
    struct fake *f = ctx;
    event(f, "start_tls");
    if (f->su->tls_now)
        smtp_client_tls_started(f->c);
    else
        f->tls_pending = true;
}

static void fake_rcpt(void *ctx, size_t i, const struct smtp_client_result *r)
{
    struct fake *f = ctx;
    char buf[32];
    assert_true(f->sends > f->results);
    event(f, "rcpt %zu: %s", i, result_str(r, buf, sizeof buf));
}

static void fake_message(void *ctx, const struct smtp_client_result *r, size_t n_tried)
{
    struct fake *f = ctx;
    char buf[32];
    f->results++;
    assert_int_equal(f->results, f->sends);
    event(f, "message: %s n=%zu", result_str(r, buf, sizeof buf), n_tried);
    if (f->su->idle || smtp_client_done(f->c))
        return;
    if (n_tried < f->su->msg->n_rcpts) {
        f->sends++;
        smtp_client_send(f->c, f->su->msg, n_tried);
    } else {
        smtp_client_quit(f->c);
    }
}

static void fake_data_rcpt(void *ctx, size_t i, const struct smtp_client_result *r)
{
    struct fake *f = ctx;
    char buf[32];
    assert_true(f->sends > f->results);
    event(f, "data rcpt %zu: %s", i, result_str(r, buf, sizeof buf));
}

static void fake_closed(void *ctx, const struct smtp_client_result *why)
{
    struct fake *f = ctx;
    char buf[32];
    assert_int_equal(f->closes++, 0);
    assert_int_equal(f->results, f->sends);
    event(f, "closed: %s", result_str(why, buf, sizeof buf));
}

static const struct smtp_client_callbacks fake_cb = {
    .ready = fake_ready,
    .start_tls = fake_start_tls,
    .rcpt_result = fake_rcpt,
    .message_result = fake_message,
    .data_rcpt_result = fake_data_rcpt,
    .closed = fake_closed,
};

static void fake_trace(void *ctx, const char *line)
{
    event(ctx, "%s", line);
}

static struct smtp_client_opts default_opts(void)
{
    return (struct smtp_client_opts){.helo_name = HELO_NAME};
}

/* Moves the session's output into f->out as a socket writer would, su->drain bytes at a time. */
static void drain(struct fake *f)
{
    for (;;) {
        size_t n;
        const char *p = smtp_client_output(f->c, &n);
        if (n > f->max_pending)
            f->max_pending = n;
        if (n == 0)
            return;
        if (f->su->drain && n > f->su->drain)
            n = f->su->drain;
        text_add(&f->out, p, n);
        smtp_client_consume_output(f->c, n);
    }
}

/* Sessions still open when a test fails (cmocka jumps out of it) are freed by teardown. */
static struct fake *live;

static struct fake *fake_open(const struct setup *su)
{
    struct fake *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->su = su;
    f->cb = fake_cb;
    if (su->trace)
        f->cb.trace = fake_trace;
    f->c = smtp_client_new(&su->opts, &f->cb, f);
    assert_non_null(f->c);
    live = f;
    return f;
}

static void fake_close(struct fake *f)
{
    live = NULL;
    smtp_client_free(f->c);
    free(f->events.p);
    free(f->out.p);
    free(f);
}

static int teardown(void **state)
{
    (void)state;
    if (live)
        fake_close(live);
    return 0;
}

/* How server bytes are cut into feeds. SPLIT_AT: two pieces, at split_at. */
enum split { SPLIT_WHOLE, SPLIT_OCTETS, SPLIT_RANDOM, SPLIT_AT };

static void feed(struct fake *f, const char *p, size_t n, enum split sp, uint32_t *seed,
                 size_t split_at)
{
    size_t pos = 0;
    while (pos < n) {
        size_t k = n - pos;
        if (sp == SPLIT_OCTETS)
            k = 1;
        else if (sp == SPLIT_RANDOM)
            k = 1 + next_random(seed) % 97;
        else if (sp == SPLIT_AT && pos < split_at)
            k = split_at - pos;
        if (k > n - pos)
            k = n - pos;
        smtp_client_feed(f->c, p + pos, k);
        drain(f);
        pos += k;
    }
}

/* Plays the server's side: segments separated by '\f' are fed in turn, the output drained and
 * a pending TLS handshake "done" between them; the segments "<timeout>" and "<lost>" stand for
 * the caller's timer and a dropped connection. */
static struct fake *play(const struct setup *su, const char *server, enum split sp,
                         uint32_t seed, size_t split_at)
{
    struct fake *f = fake_open(su);
    drain(f);
    const char *p = server;
    for (;;) {
        const char *ff = strchr(p, '\f');
        size_t n = ff ? (size_t)(ff - p) : strlen(p);
        if (n == 9 && memcmp(p, "<timeout>", 9) == 0)
            smtp_client_timeout(f->c);
        else if (n == 6 && memcmp(p, "<lost>", 6) == 0)
            smtp_client_connection_lost(f->c);
        else
            feed(f, p, n, sp, &seed, split_at);
        drain(f);
        if (f->tls_pending) {
            f->tls_pending = false;
            smtp_client_tls_started(f->c);
            drain(f);
        }
        if (!ff)
            break;
        p = ff + 1;
    }
    return f;
}

static void check(struct fake *f, const char *want_out, const char *want_events)
{
    assert_string_equal(text_str(&f->events), want_events);
    assert_string_equal(text_str(&f->out), want_out);
    assert_true(f->closes <= 1);
}

/* Runs a transcript whole, octet by octet and in random pieces: all must match. */
static void run(const struct setup *su, const char *server, const char *want_out,
                const char *want_events)
{
    static const enum split modes[] = {SPLIT_WHOLE, SPLIT_OCTETS, SPLIT_RANDOM, SPLIT_RANDOM};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        struct fake *f = play(su, server, modes[i], 2463534242u + (uint32_t)i * 7919u, 0);
        check(f, want_out, want_events);
        fake_close(f);
    }
}

static struct setup setup_with(const struct smtp_client_message *msg)
{
    return (struct setup){.opts = default_opts(), .msg = msg};
}

/* ---- the state machine as a dialog ------------------------------------------------------- */

static void feed_reply(void *ctx, const char *reply)
{
    struct fake *f = ctx;
    smtp_client_feed(f->c, reply, strlen(reply));
    drain(f);
}

/* One whole transaction without PIPELINING, one server reply at a time: the reply ("S:"), the
 * events and state changes it causes, then what the client sends ("C:"). Replayed whole and in
 * pieces, the events (state changes included) are the same. */
static void test_state_trace(void **state)
{
    (void)state;
    static const char *const server[] = {
        GREET, EHLO_MIN, MAIL_OK, RCPT_OK, DATA_GO, QUEUED, BYE,
    };
    struct smtp_client_message m = message(1);
    struct setup su = setup_with(&m);
    su.trace = true;
    struct fake *f = fake_open(&su);
    struct dialog d = {.events = &f->events, .out = &f->out, .in_prefix = "S: ",
                       .out_prefix = "C: "};
    drain(f);
    dialog_play(&d, server, sizeof server / sizeof server[0], feed_reply, f);
    assert_string_equal(text_str(&d.log),
                        "S: 220 mx.example.test ESMTP\n"
                        "   state GREETING -> EHLO\n"
                        "C: EHLO client.example.test\n"
                        "S: 250-mx.example.test\n"
                        "S: 250 ENHANCEDSTATUSCODES\n"
                        "   state EHLO -> READY\n"
                        "   ready ESMTP ENHANCEDSTATUSCODES\n"
                        "   state READY -> TRANSACTION\n"
                        "C: MAIL FROM:<s@src.test>\n"
                        "S: 250 2.1.0 Ok\n"
                        "C: RCPT TO:<r0@dest.test>\n"
                        "S: 250 2.1.5 Ok\n"
                        "   rcpt 0: 250 2.1.5\n"
                        "C: DATA\n"
                        "S: 354 End data with <CR><LF>.<CR><LF>\n"
                        "   state TRANSACTION -> BODY\n"
                        "   state BODY -> DATA_END\n"
                        "C: hi\n"
                        "C: .\n"
                        "S: 250 2.0.0 Ok: queued\n"
                        "   state DATA_END -> READY\n"
                        "   message: 250 2.0.0 n=1\n"
                        "   state READY -> QUIT\n"
                        "C: QUIT\n"
                        "S: 221 2.0.0 Bye\n"
                        "   state QUIT -> DONE\n"
                        "   closed: 221 2.0.0\n");
    run(&su, text_str(&d.in), text_str(&f->out), text_str(&f->events));
    dialog_free(&d);
    fake_close(f);
}

/* ---- greeting ------------------------------------------------------------------------------ */

static void test_greeting_220(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_ALL ONE_OK_S, EHLO_C ONE_OK_C,
        READY_ALL "rcpt 0: 250 2.1.5\n"
                  "message: 250 2.0.0 n=1\n"
                  "closed: 221 2.0.0\n");
}

static void test_greeting_multiline(void **state)
{
    (void)state;
    struct setup su = setup_with(NULL);
    run(&su, "220-mx.example.test ESMTP\r\n220-more words\r\n220 last\r\n" EHLO_MIN BYE,
        EHLO_C QUIT_C, READY_MIN "closed: 221 2.0.0\n");
}

/* 421: the server is gone, no QUIT. */
static void test_greeting_421(void **state)
{
    (void)state;
    struct setup su = setup_with(NULL);
    run(&su, "421 4.3.2 mx.example.test busy\r\n", "", "closed: 421 4.3.2\n");
}

/* RFC 5321 §3.1: after a 554 greeting the server waits for QUIT. */
static void test_greeting_554(void **state)
{
    (void)state;
    struct setup su = setup_with(NULL);
    run(&su, "554 5.7.1 no mail from you\r\n", QUIT_C, "closed: 554 5.7.1\n");
}

static void test_greeting_450(void **state)
{
    (void)state;
    struct setup su = setup_with(NULL);
    run(&su, "450 try later\r\n", QUIT_C, "closed: 450\n");
}

static void test_greeting_not_220(void **state)
{
    (void)state;
    struct setup su = setup_with(NULL);
    run(&su, "250 hello\r\n", "", "closed: PROTOCOL\n");
    run(&su, "354 go on\r\n", "", "closed: PROTOCOL\n");
}

/* ---- EHLO / HELO -------------------------------------------------------------------------- */

/* EHLO 500/502: an RFC 821 server; HELO, and no extension is used. */
static void test_ehlo_500_helo(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    struct setup su = setup_with(&m);
    const char *out = EHLO_C HELO_C MAIL_MIN_C RCPT_C(0) DATA_C BODY_C QUIT_C;
    const char *ev = "ready\n"
                     "rcpt 0: 250\n"
                     "message: 250 n=1\n"
                     "closed: 221\n";
    run(&su, GREET "500 unknown command\r\n" "250 mx.example.test\r\n"
             "250 sender ok\r\n250 rcpt ok\r\n354 go\r\n250 queued\r\n221 bye\r\n", out, ev);
    run(&su, GREET "502 not implemented\r\n" "250 mx.example.test\r\n"
             "250 sender ok\r\n250 rcpt ok\r\n354 go\r\n250 queued\r\n221 bye\r\n", out, ev);
}

static void test_helo_refused(void **state)
{
    (void)state;
    struct setup su = setup_with(NULL);
    run(&su, GREET "502 no\r\n" "550 5.7.1 go away\r\n", EHLO_C HELO_C QUIT_C,
        "closed: 550 5.7.1\n");
    run(&su, GREET "502 no\r\n" "421 4.7.0 bye\r\n", EHLO_C HELO_C, "closed: 421 4.7.0\n");
    run(&su, GREET "502 no\r\n" "354 what\r\n", EHLO_C HELO_C, "closed: PROTOCOL\n");
}

static void test_ehlo_failures(void **state)
{
    (void)state;
    struct setup su = setup_with(NULL);
    run(&su, GREET "421 4.3.2 shutting down\r\n", EHLO_C, "closed: 421 4.3.2\n");
    run(&su, GREET "550 5.7.1 not you\r\n", EHLO_C QUIT_C, "closed: 550 5.7.1\n");
    run(&su, GREET "451 4.3.0 later\r\n", EHLO_C QUIT_C, "closed: 451 4.3.0\n");
    run(&su, GREET "501 5.5.4 bad name\r\n", EHLO_C QUIT_C, "closed: 501 5.5.4\n");
    run(&su, GREET "334 eh\r\n", EHLO_C, "closed: PROTOCOL\n");
}

/* ---- STARTTLS ------------------------------------------------------------------------------ */

#define EHLO_TLS "250-mx.example.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
#define EHLO_AFTER_TLS "250-mx.example.test\r\n250 PIPELINING\r\n"

static void test_starttls_opportunistic(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    struct setup su = setup_with(&m);
    su.opts.tls = SMTP_CLIENT_TLS_OPPORTUNISTIC;
    /* the caps are read again after the handshake (RFC 3207 §4.2) */
    run(&su, GREET EHLO_TLS "220 2.0.0 go ahead\r\n\f" EHLO_AFTER_TLS
             MAIL_OK RCPT_OK DATA_GO QUEUED BYE,
        EHLO_C "STARTTLS\r\n" EHLO_C MAIL_MIN_C RCPT_C(0) DATA_C BODY_C QUIT_C,
        "start_tls\n"
        "ready ESMTP PIPELINING\n"
        "rcpt 0: 250 2.1.5\n"
        "message: 250 2.0.0 n=1\n"
        "closed: 221 2.0.0\n");
}

/* RFC 3207 §4: refused, the client may go on in plaintext (opportunistic policy). */
static void test_starttls_refused_opportunistic(void **state)
{
    (void)state;
    struct setup su = setup_with(NULL);
    su.opts.tls = SMTP_CLIENT_TLS_OPPORTUNISTIC;
    run(&su, GREET EHLO_TLS "454 4.7.0 TLS not available\r\n" BYE,
        EHLO_C "STARTTLS\r\n" QUIT_C, "ready ESMTP PIPELINING STARTTLS\nclosed: 221 2.0.0\n");
    run(&su, GREET EHLO_TLS "502 5.5.1 no\r\n" BYE,
        EHLO_C "STARTTLS\r\n" QUIT_C, "ready ESMTP PIPELINING STARTTLS\nclosed: 221 2.0.0\n");
    run(&su, GREET EHLO_TLS "250 huh\r\n", EHLO_C "STARTTLS\r\n", "closed: PROTOCOL\n");
    run(&su, GREET EHLO_TLS "421 4.7.0 bye\r\n", EHLO_C "STARTTLS\r\n", "closed: 421 4.7.0\n");
}

static void test_starttls_not_offered(void **state)
{
    (void)state;
    struct setup su = setup_with(NULL);
    su.opts.tls = SMTP_CLIENT_TLS_OPPORTUNISTIC;
    run(&su, GREET EHLO_MIN BYE, EHLO_C QUIT_C, READY_MIN "closed: 221 2.0.0\n");
    su.opts.tls = SMTP_CLIENT_TLS_REQUIRED;
    run(&su, GREET EHLO_MIN, EHLO_C QUIT_C, "closed: TLS_UNAVAILABLE\n");
    /* HELO: no STARTTLS either */
    run(&su, GREET "500 eh?\r\n250 mx\r\n", EHLO_C HELO_C QUIT_C, "closed: TLS_UNAVAILABLE\n");
}

static void test_starttls_required(void **state)
{
    (void)state;
    struct setup su = setup_with(NULL);
    su.opts.tls = SMTP_CLIENT_TLS_REQUIRED;
    run(&su, GREET EHLO_TLS "220 go\r\n\f" EHLO_AFTER_TLS BYE,
        EHLO_C "STARTTLS\r\n" EHLO_C QUIT_C,
        "start_tls\nready ESMTP PIPELINING\nclosed: 221 2.0.0\n");
    run(&su, GREET EHLO_TLS "454 4.7.0 TLS not available\r\n",
        EHLO_C "STARTTLS\r\n" QUIT_C, "closed: 454 4.7.0\n");
    run(&su, GREET EHLO_TLS "554 5.7.0 no\r\n", EHLO_C "STARTTLS\r\n" QUIT_C,
        "closed: 554 5.7.0\n");
}

/* Policy NONE, or TLS already active (smtps): STARTTLS is never sent. */
static void test_starttls_not_wanted(void **state)
{
    (void)state;
    struct setup su = setup_with(NULL);
    run(&su, GREET EHLO_TLS BYE, EHLO_C QUIT_C,
        "ready ESMTP PIPELINING STARTTLS\nclosed: 221 2.0.0\n");
    su.opts.tls = SMTP_CLIENT_TLS_REQUIRED;
    su.opts.tls_active = true;
    run(&su, GREET EHLO_TLS BYE, EHLO_C QUIT_C,
        "ready ESMTP PIPELINING STARTTLS\nclosed: 221 2.0.0\n");
}

/* Bytes after the 220 to STARTTLS were not protected: a man in the middle could have put them
 * there (CVE-2011-0411 style response injection). They are dropped. */
static void test_starttls_injection_dropped(void **state)
{
    (void)state;
    struct setup su = setup_with(NULL);
    su.opts.tls = SMTP_CLIENT_TLS_REQUIRED;
    run(&su, GREET EHLO_TLS "220 go\r\n250-fake\r\n250 AUTH PLAIN\r\n\f" EHLO_AFTER_TLS BYE,
        EHLO_C "STARTTLS\r\n" EHLO_C QUIT_C,
        "start_tls\nready ESMTP PIPELINING\nclosed: 221 2.0.0\n");
}

/* The handshake done from inside start_tls: the rest of that feed is plaintext too, however
 * long, and is dropped. */
static void test_starttls_handshake_in_callback(void **state)
{
    (void)state;
    struct setup su = setup_with(NULL);
    su.opts.tls = SMTP_CLIENT_TLS_REQUIRED;
    su.tls_now = true;
    struct text t = {0};
    text_add(&t, GREET EHLO_TLS "220 go\r\n", sizeof GREET EHLO_TLS "220 go\r\n" - 1);
    text_add(&t, "250-fake\r\n", 10);
    for (int i = 0; i < 20000; i++) /* far more than the input buffer holds */
        text_add(&t, "250-X\r\n", 7);
    text_add(&t, "250 AUTH PLAIN\r\n", 16);
    struct fake *f = fake_open(&su);
    smtp_client_feed(f->c, t.p, t.len);
    drain(f);
    smtp_client_feed(f->c, EHLO_AFTER_TLS BYE, sizeof EHLO_AFTER_TLS BYE - 1);
    drain(f);
    check(f, EHLO_C "STARTTLS\r\n" EHLO_C QUIT_C,
          "start_tls\nready ESMTP PIPELINING\nclosed: 221 2.0.0\n");
    fake_close(f);
    free(t.p);
}

/* The caller runs the handshake later: input is not read meanwhile. */
static void test_starttls_handshake_later(void **state)
{
    (void)state;
    struct setup su = setup_with(NULL);
    su.opts.tls = SMTP_CLIENT_TLS_OPPORTUNISTIC;
    struct fake *f = fake_open(&su);
    smtp_client_feed(f->c, GREET EHLO_TLS "220 go\r\n", sizeof GREET EHLO_TLS "220 go\r\n" - 1);
    drain(f);
    assert_true(f->tls_pending);
    smtp_client_feed(f->c, "250 x\r\n", 7);
    smtp_client_tls_started(f->c);
    smtp_client_tls_started(f->c); /* a second call changes nothing */
    drain(f);
    smtp_client_feed(f->c, EHLO_AFTER_TLS BYE, sizeof EHLO_AFTER_TLS BYE - 1);
    drain(f);
    check(f, EHLO_C "STARTTLS\r\n" EHLO_C QUIT_C,
          "start_tls\nready ESMTP PIPELINING\nclosed: 221 2.0.0\n");
    fake_close(f);
}

static void test_starttls_timeout_in_handshake(void **state)
{
    (void)state;
    struct setup su = setup_with(NULL);
    su.opts.tls = SMTP_CLIENT_TLS_OPPORTUNISTIC;
    struct fake *f = fake_open(&su);
    smtp_client_feed(f->c, GREET EHLO_TLS "220 go\r\n", sizeof GREET EHLO_TLS "220 go\r\n" - 1);
    smtp_client_timeout(f->c);
    smtp_client_tls_started(f->c); /* too late: nothing happens */
    drain(f);
    check(f, EHLO_C "STARTTLS\r\n", "start_tls\nclosed: TIMEOUT\n");
    assert_true(smtp_client_done(f->c));
    fake_close(f);
}

/* ---- AUTH ------------------------------------------------------------------------------------ */

/* base64("\0alice\0alice-secret") */
#define PLAIN_IR "AGFsaWNlAGFsaWNlLXNlY3JldA=="

static struct setup auth_setup(const struct smtp_client_message *m)
{
    struct setup su = setup_with(m);
    su.opts.tls_active = true;
    su.opts.auth_user = "alice";
    su.opts.auth_pass = "alice-secret";
    return su;
}

static void test_auth_plain_235(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    struct setup su = auth_setup(&m);
    run(&su, GREET "250-mx\r\n250 AUTH LOGIN PLAIN\r\n" "235 2.7.0 Authentication successful\r\n"
             MAIL_OK RCPT_OK DATA_GO QUEUED BYE,
        EHLO_C "AUTH PLAIN " PLAIN_IR "\r\n" MAIL_MIN_C RCPT_C(0) DATA_C BODY_C QUIT_C,
        "ready ESMTP AUTH=PLAIN AUTH=LOGIN\n"
        "rcpt 0: 250 2.1.5\n"
        "message: 250 2.0.0 n=1\n"
        "closed: 221 2.0.0\n");
}

static void test_auth_plain_refused(void **state)
{
    (void)state;
    struct setup su = auth_setup(NULL);
    run(&su, GREET "250-mx\r\n250 AUTH PLAIN\r\n" "535 5.7.8 bad credentials\r\n",
        EHLO_C "AUTH PLAIN " PLAIN_IR "\r\n" QUIT_C, "closed: 535 5.7.8\n");
    run(&su, GREET "250-mx\r\n250 AUTH PLAIN\r\n" "454 4.7.0 try later\r\n",
        EHLO_C "AUTH PLAIN " PLAIN_IR "\r\n" QUIT_C, "closed: 454 4.7.0\n");
    run(&su, GREET "250-mx\r\n250 AUTH PLAIN\r\n" "421 4.7.0 too many\r\n",
        EHLO_C "AUTH PLAIN " PLAIN_IR "\r\n", "closed: 421 4.7.0\n");
    /* a challenge after an initial response: we have nothing more to say */
    run(&su, GREET "250-mx\r\n250 AUTH PLAIN\r\n" "334 \r\n",
        EHLO_C "AUTH PLAIN " PLAIN_IR "\r\n", "closed: PROTOCOL\n");
}

static void test_auth_login(void **state)
{
    (void)state;
    struct setup su = auth_setup(NULL);
    run(&su, GREET "250-mx\r\n250 AUTH=LOGIN\r\n" "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n"
             "235 2.7.0 ok\r\n" BYE,
        EHLO_C "AUTH LOGIN\r\n" "YWxpY2U=\r\n" "YWxpY2Utc2VjcmV0\r\n" QUIT_C,
        "ready ESMTP AUTH=LOGIN\nclosed: 221 2.0.0\n");
    run(&su, GREET "250-mx\r\n250 AUTH LOGIN\r\n" "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n"
             "535 5.7.8 no\r\n",
        EHLO_C "AUTH LOGIN\r\n" "YWxpY2U=\r\n" "YWxpY2Utc2VjcmV0\r\n" QUIT_C,
        "closed: 535 5.7.8\n");
    run(&su, GREET "250-mx\r\n250 AUTH LOGIN\r\n" "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n"
             "334 more?\r\n",
        EHLO_C "AUTH LOGIN\r\n" "YWxpY2U=\r\n" "YWxpY2Utc2VjcmV0\r\n", "closed: PROTOCOL\n");
    run(&su, GREET "250-mx\r\n250 AUTH LOGIN\r\n" "235 2.7.0 already?\r\n",
        EHLO_C "AUTH LOGIN\r\n", "closed: PROTOCOL\n");
}

static void test_auth_unavailable(void **state)
{
    (void)state;
    struct setup su = auth_setup(NULL);
    run(&su, GREET EHLO_MIN, EHLO_C QUIT_C, "closed: AUTH_UNAVAILABLE\n");
    run(&su, GREET "250-mx\r\n250 AUTH CRAM-MD5 GSSAPI\r\n", EHLO_C QUIT_C,
        "closed: AUTH_UNAVAILABLE\n");
    /* credentials never go out in plaintext */
    su.opts.tls_active = false;
    run(&su, GREET "250-mx\r\n250 AUTH PLAIN LOGIN\r\n", EHLO_C QUIT_C,
        "closed: AUTH_UNAVAILABLE\n");
    su.opts.tls = SMTP_CLIENT_TLS_OPPORTUNISTIC;
    run(&su, GREET "250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n" "454 4.7.0 no TLS\r\n",
        EHLO_C "STARTTLS\r\n" QUIT_C, "closed: AUTH_UNAVAILABLE\n");
}

/* STARTTLS first, then AUTH with the caps read inside TLS. */
static void test_auth_after_starttls(void **state)
{
    (void)state;
    struct setup su = auth_setup(NULL);
    su.opts.tls_active = false;
    su.opts.tls = SMTP_CLIENT_TLS_REQUIRED;
    run(&su, GREET "250-mx\r\n250 STARTTLS\r\n" "220 go\r\n\f" "250-mx\r\n250 AUTH PLAIN\r\n"
             "235 2.7.0 ok\r\n" BYE,
        EHLO_C "STARTTLS\r\n" EHLO_C "AUTH PLAIN " PLAIN_IR "\r\n" QUIT_C,
        "start_tls\nready ESMTP AUTH=PLAIN\nclosed: 221 2.0.0\n");
}

static void test_new_refuses_bad_opts(void **state)
{
    (void)state;
    static const char *const bad_names[] = {"", "a b", "a\r\nQUIT", "caf\xc3\xa9", NULL};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        struct smtp_client_opts o = default_opts();
        o.helo_name = bad_names[i];
        assert_null(smtp_client_new(&o, &fake_cb, NULL));
    }
    char long_name[LIMIT_DOMAIN + 4];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    struct smtp_client_opts o = default_opts();
    o.helo_name = long_name;
    assert_null(smtp_client_new(&o, &fake_cb, NULL));
    long_name[LIMIT_DOMAIN + 2] = '\0';
    struct smtp_client *c = smtp_client_new(&o, &fake_cb, NULL);
    assert_non_null(c);
    smtp_client_free(c);
    o = default_opts();
    o.auth_user = "alice";
    assert_null(smtp_client_new(&o, &fake_cb, NULL)); /* no password */
    o.auth_pass = "";
    assert_null(smtp_client_new(&o, &fake_cb, NULL));
    char long_pass[1100];
    memset(long_pass, 'p', sizeof long_pass - 1);
    long_pass[sizeof long_pass - 1] = '\0';
    o.auth_pass = long_pass;
    assert_null(smtp_client_new(&o, &fake_cb, NULL));
    long_pass[1023] = '\0'; /* the longest password the server side reads */
    c = smtp_client_new(&o, &fake_cb, NULL);
    assert_non_null(c);
    smtp_client_free(c);
    smtp_client_free(NULL);
}

/* The longest credentials still make one well-formed AUTH line. */
static void test_auth_longest_credentials(void **state)
{
    (void)state;
    char user[LIMIT_PATH + 1], pass[1024];
    memset(user, 'u', sizeof user - 1);
    user[sizeof user - 1] = '\0';
    memset(pass, 'p', sizeof pass - 1);
    pass[sizeof pass - 1] = '\0';
    struct setup su = auth_setup(NULL);
    su.opts.auth_user = user;
    su.opts.auth_pass = pass;
    struct fake *f = play(&su, GREET "250-mx\r\n250 AUTH PLAIN\r\n235 ok\r\n" BYE, SPLIT_WHOLE,
                          1, 0);
    const char *out = text_str(&f->out);
    const char *auth = strstr(out, "AUTH PLAIN ");
    assert_non_null(auth);
    const char *eol = strstr(auth, "\r\n");
    assert_non_null(eol);
    assert_int_equal((size_t)(eol - auth), 11 + 4 * ((2 + LIMIT_PATH + 1023 + 2) / 3));
    assert_string_equal(text_str(&f->events), "ready ESMTP AUTH=PLAIN\nclosed: 221 2.0.0\n");
    fake_close(f);
}

/* ---- MAIL ----------------------------------------------------------------------------------- */

/* The pipelined batch gets answers for RCPT and DATA too; they are ignored, RSET follows. */
static void test_mail_refused_pipelined(void **state)
{
    (void)state;
    struct smtp_client_message m = message(2);
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_ALL "451 4.3.0 try later\r\n" "503 5.5.1 need MAIL\r\n"
             "503 5.5.1 need MAIL\r\n" "503 5.5.1 need MAIL\r\n" RSET_OK BYE,
        EHLO_C MAIL_C RCPT_C(0) RCPT_C(1) DATA_C RSET_C QUIT_C,
        READY_ALL "message: 451 4.3.0 n=2\nclosed: 221 2.0.0\n");
    run(&su, GREET EHLO_ALL "550 5.7.1 sender refused\r\n" "503 5.5.1 need MAIL\r\n"
             "503 5.5.1 need MAIL\r\n" "503 5.5.1 need MAIL\r\n" RSET_OK BYE,
        EHLO_C MAIL_C RCPT_C(0) RCPT_C(1) DATA_C RSET_C QUIT_C,
        READY_ALL "message: 550 5.7.1 n=2\nclosed: 221 2.0.0\n");
}

/* Without PIPELINING no RCPT follows a refused MAIL. */
static void test_mail_refused_one_by_one(void **state)
{
    (void)state;
    struct smtp_client_message m = message(2);
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_MIN "451 4.3.0 try later\r\n" RSET_OK BYE,
        EHLO_C MAIL_MIN_C RSET_C QUIT_C, READY_MIN "message: 451 4.3.0 n=2\nclosed: 221 2.0.0\n");
    run(&su, GREET EHLO_MIN "550 5.7.1 no\r\n" RSET_OK BYE, EHLO_C MAIL_MIN_C RSET_C QUIT_C,
        READY_MIN "message: 550 5.7.1 n=2\nclosed: 221 2.0.0\n");
}

static void test_mail_421(void **state)
{
    (void)state;
    struct smtp_client_message m = message(2);
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_ALL "421 4.3.2 shutting down\r\n",
        EHLO_C MAIL_C RCPT_C(0) RCPT_C(1) DATA_C,
        READY_ALL "message: 421 4.3.2 n=2\nclosed: 421 4.3.2\n");
    run(&su, GREET EHLO_MIN "421 4.3.2 shutting down\r\n", EHLO_C MAIL_MIN_C,
        READY_MIN "message: 421 4.3.2 n=2\nclosed: 421 4.3.2\n");
}

/* RSET itself refused or answered 421: the message keeps the MAIL outcome. */
static void test_rset_refused(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_MIN "451 4.3.0 later\r\n" "500 5.5.2 what RSET\r\n",
        EHLO_C MAIL_MIN_C RSET_C QUIT_C,
        READY_MIN "message: 451 4.3.0 n=1\nclosed: 500 5.5.2\n");
    run(&su, GREET EHLO_MIN "451 4.3.0 later\r\n" "421 4.3.2 bye\r\n", EHLO_C MAIL_MIN_C RSET_C,
        READY_MIN "message: 451 4.3.0 n=1\nclosed: 421 4.3.2\n");
    run(&su, GREET EHLO_MIN "451 4.3.0 later\r\n" "354 eh\r\n", EHLO_C MAIL_MIN_C RSET_C,
        READY_MIN "message: 451 4.3.0 n=1\nclosed: PROTOCOL\n");
}

/* ---- RCPT ------------------------------------------------------------------------------------- */

static void test_rcpt_mixed(void **state)
{
    (void)state;
    struct smtp_client_message m = message(4);
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK "450 4.2.1 mailbox busy\r\n"
             "550 5.1.1 no such user\r\n" "553 5.1.3 bad address\r\n" DATA_GO QUEUED BYE,
        EHLO_C MAIL_C RCPT_C(0) RCPT_C(1) RCPT_C(2) RCPT_C(3) DATA_C BODY_C QUIT_C,
        READY_ALL "rcpt 0: 250 2.1.5\n"
                  "rcpt 1: 450 4.2.1\n"
                  "rcpt 2: 550 5.1.1\n"
                  "rcpt 3: 553 5.1.3\n"
                  "message: 250 2.0.0 n=4\n"
                  "closed: 221 2.0.0\n");
    run(&su, GREET EHLO_MIN MAIL_OK "450 4.2.1 mailbox busy\r\n" RCPT_OK
             "550 5.1.1 no such user\r\n" RCPT_OK DATA_GO QUEUED BYE,
        EHLO_C MAIL_MIN_C RCPT_C(0) RCPT_C(1) RCPT_C(2) RCPT_C(3) DATA_C BODY_C QUIT_C,
        READY_MIN "rcpt 0: 450 4.2.1\n"
                  "rcpt 1: 250 2.1.5\n"
                  "rcpt 2: 550 5.1.1\n"
                  "rcpt 3: 250 2.1.5\n"
                  "message: 250 2.0.0 n=4\n"
                  "closed: 221 2.0.0\n");
}

/* RFC 5321 §4.5.3.1.10: 452 4.5.3 after some accepted recipients: the rest go in a further
 * transaction, not to the bounce. */
static void test_rcpt_452_after_accepted(void **state)
{
    (void)state;
    struct smtp_client_message m = message(4);
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK RCPT_OK "452 4.5.3 Error: too many recipients\r\n"
             "452 4.5.3 Error: too many recipients\r\n" DATA_GO QUEUED
             MAIL_OK RCPT_OK RCPT_OK DATA_GO QUEUED BYE,
        EHLO_C MAIL_C RCPT_C(0) RCPT_C(1) RCPT_C(2) RCPT_C(3) DATA_C BODY_C
               MAIL_C RCPT_C(2) RCPT_C(3) DATA_C BODY_C QUIT_C,
        READY_ALL "rcpt 0: 250 2.1.5\n"
                  "rcpt 1: 250 2.1.5\n"
                  "message: 250 2.0.0 n=2\n"
                  "rcpt 2: 250 2.1.5\n"
                  "rcpt 3: 250 2.1.5\n"
                  "message: 250 2.0.0 n=4\n"
                  "closed: 221 2.0.0\n");
    /* without PIPELINING, the RCPTs after the 452 are not even sent */
    run(&su, GREET EHLO_MIN MAIL_OK RCPT_OK "452 4.5.3 too many\r\n" DATA_GO QUEUED
             MAIL_OK RCPT_OK RCPT_OK RCPT_OK DATA_GO QUEUED BYE,
        EHLO_C MAIL_MIN_C RCPT_C(0) RCPT_C(1) DATA_C BODY_C
               MAIL_MIN_C RCPT_C(1) RCPT_C(2) RCPT_C(3) DATA_C BODY_C QUIT_C,
        READY_MIN "rcpt 0: 250 2.1.5\n"
                  "message: 250 2.0.0 n=1\n"
                  "rcpt 1: 250 2.1.5\n"
                  "rcpt 2: 250 2.1.5\n"
                  "rcpt 3: 250 2.1.5\n"
                  "message: 250 2.0.0 n=4\n"
                  "closed: 221 2.0.0\n");
}

/* Older servers say "too many recipients" only in words. A 452 about something else
 * (4.3.1 disk full) is a failure of that recipient. */
static void test_rcpt_452_wording(void **state)
{
    (void)state;
    struct smtp_client_message m = message(3);
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_MIN MAIL_OK RCPT_OK "452 Too Many Recipients received\r\n" DATA_GO
             QUEUED MAIL_OK RCPT_OK "452 4.3.1 Insufficient system storage\r\n" DATA_GO QUEUED BYE,
        EHLO_C MAIL_MIN_C RCPT_C(0) RCPT_C(1) DATA_C BODY_C
               MAIL_MIN_C RCPT_C(1) RCPT_C(2) DATA_C BODY_C QUIT_C,
        READY_MIN "rcpt 0: 250 2.1.5\n"
                  "message: 250 2.0.0 n=1\n"
                  "rcpt 1: 250 2.1.5\n"
                  "rcpt 2: 452 4.3.1\n"
                  "message: 250 2.0.0 n=3\n"
                  "closed: 221 2.0.0\n");
}

/* 452 4.5.3 for the first recipient: nothing accepted, so it is that recipient's failure. */
static void test_rcpt_452_first(void **state)
{
    (void)state;
    struct smtp_client_message m = message(2);
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_ALL MAIL_OK "452 4.5.3 too many recipients\r\n" RCPT_OK DATA_GO QUEUED
             BYE,
        EHLO_C MAIL_C RCPT_C(0) RCPT_C(1) DATA_C BODY_C QUIT_C,
        READY_ALL "rcpt 0: 452 4.5.3\n"
                  "rcpt 1: 250 2.1.5\n"
                  "message: 250 2.0.0 n=2\n"
                  "closed: 221 2.0.0\n");
}

/* 421 in the middle of a pipelined batch: answered RCPTs are reported, the rest share the 421
 * through message_result; nothing more is sent. */
static void test_rcpt_421_mid_batch(void **state)
{
    (void)state;
    struct smtp_client_message m = message(3);
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK "421 4.7.0 too many errors\r\n",
        EHLO_C MAIL_C RCPT_C(0) RCPT_C(1) RCPT_C(2) DATA_C,
        READY_ALL "rcpt 0: 250 2.1.5\n"
                  "message: 421 4.7.0 n=3\n"
                  "closed: 421 4.7.0\n");
    run(&su, GREET EHLO_MIN MAIL_OK RCPT_OK "421 4.7.0 too many errors\r\n",
        EHLO_C MAIL_MIN_C RCPT_C(0) RCPT_C(1),
        READY_MIN "rcpt 0: 250 2.1.5\n"
                  "message: 421 4.7.0 n=3\n"
                  "closed: 421 4.7.0\n");
}

/* No recipient accepted: with PIPELINING DATA was sent and gets 554; without, it is not sent.
 * Both end in RSET and NO_RECIPIENTS. */
static void test_rcpt_all_refused(void **state)
{
    (void)state;
    struct smtp_client_message m = message(2);
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_ALL MAIL_OK "550 5.1.1 no\r\n" "550 5.1.1 no\r\n"
             "554 5.5.1 Error: no valid recipients\r\n" RSET_OK BYE,
        EHLO_C MAIL_C RCPT_C(0) RCPT_C(1) DATA_C RSET_C QUIT_C,
        READY_ALL "rcpt 0: 550 5.1.1\n"
                  "rcpt 1: 550 5.1.1\n"
                  "message: NO_RECIPIENTS n=2\n"
                  "closed: 221 2.0.0\n");
    run(&su, GREET EHLO_ALL MAIL_OK "550 5.1.1 no\r\n" "550 5.1.1 no\r\n"
             "503 5.5.1 need RCPT\r\n" RSET_OK BYE,
        EHLO_C MAIL_C RCPT_C(0) RCPT_C(1) DATA_C RSET_C QUIT_C,
        READY_ALL "rcpt 0: 550 5.1.1\n"
                  "rcpt 1: 550 5.1.1\n"
                  "message: NO_RECIPIENTS n=2\n"
                  "closed: 221 2.0.0\n");
    run(&su, GREET EHLO_MIN MAIL_OK "550 5.1.1 no\r\n" "450 4.2.0 later\r\n" RSET_OK BYE,
        EHLO_C MAIL_MIN_C RCPT_C(0) RCPT_C(1) RSET_C QUIT_C,
        READY_MIN "rcpt 0: 550 5.1.1\n"
                  "rcpt 1: 450 4.2.0\n"
                  "message: NO_RECIPIENTS n=2\n"
                  "closed: 221 2.0.0\n");
}

/* RFC 2920 §3.1: DATA accepted although no recipient was: an empty message ends it. */
static void test_rcpt_all_refused_data_accepted(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_ALL MAIL_OK "550 5.1.1 no\r\n" DATA_GO "554 5.5.1 no recipients\r\n" BYE,
        EHLO_C MAIL_C RCPT_C(0) DATA_C ".\r\n" QUIT_C,
        READY_ALL "rcpt 0: 550 5.1.1\n"
                  "message: NO_RECIPIENTS n=1\n"
                  "closed: 221 2.0.0\n");
    /* the same after a refused MAIL */
    run(&su, GREET EHLO_ALL "451 4.3.0 later\r\n" "503 need MAIL\r\n" DATA_GO QUEUED BYE,
        EHLO_C MAIL_C RCPT_C(0) DATA_C ".\r\n" QUIT_C,
        READY_ALL "message: 451 4.3.0 n=1\nclosed: 221 2.0.0\n");
    run(&su, GREET EHLO_ALL MAIL_OK "550 5.1.1 no\r\n" DATA_GO "421 4.3.0 bye\r\n",
        EHLO_C MAIL_C RCPT_C(0) DATA_C ".\r\n",
        READY_ALL "rcpt 0: 550 5.1.1\n"
                  "message: NO_RECIPIENTS n=1\n"
                  "closed: 421 4.3.0\n");
}

static void test_rcpt_3xx_is_protocol_error(void **state)
{
    (void)state;
    struct smtp_client_message m = message(2);
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK "354 what\r\n",
        EHLO_C MAIL_C RCPT_C(0) RCPT_C(1) DATA_C,
        READY_ALL "rcpt 0: 250 2.1.5\n"
                  "message: PROTOCOL n=2\n"
                  "closed: PROTOCOL\n");
    run(&su, GREET EHLO_ALL "354 what\r\n", EHLO_C MAIL_C RCPT_C(0) RCPT_C(1) DATA_C,
        READY_ALL "message: PROTOCOL n=2\nclosed: PROTOCOL\n");
}

/* A recipient that cannot go on a command line is reported in its place, never sent. */
static void test_rcpt_bad_envelope(void **state)
{
    (void)state;
    struct smtp_client_rcpt r[] = {
        {"r0@dest.test", 0, NULL},
        {"evil@dest.test>\r\nRSET", 0, NULL},
        {"r2@dest.test", 0, "rfc822;a b"},
        {NULL, 0, NULL},
        {"r4@dest.test", 0, NULL},
    };
    struct smtp_client_message m = message(0);
    m.rcpts = r;
    m.n_rcpts = 5;
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK RCPT_OK DATA_GO QUEUED BYE,
        EHLO_C MAIL_C RCPT_C(0) RCPT_C(4) DATA_C BODY_C QUIT_C,
        READY_ALL "rcpt 0: 250 2.1.5\n"
                  "rcpt 1: BAD_ENVELOPE\n"
                  "rcpt 2: BAD_ENVELOPE\n"
                  "rcpt 3: BAD_ENVELOPE\n"
                  "rcpt 4: 250 2.1.5\n"
                  "message: 250 2.0.0 n=5\n"
                  "closed: 221 2.0.0\n");
    run(&su, GREET EHLO_MIN MAIL_OK RCPT_OK RCPT_OK DATA_GO QUEUED BYE,
        EHLO_C MAIL_MIN_C RCPT_C(0) RCPT_C(4) DATA_C BODY_C QUIT_C,
        READY_MIN "rcpt 0: 250 2.1.5\n"
                  "rcpt 1: BAD_ENVELOPE\n"
                  "rcpt 2: BAD_ENVELOPE\n"
                  "rcpt 3: BAD_ENVELOPE\n"
                  "rcpt 4: 250 2.1.5\n"
                  "message: 250 2.0.0 n=5\n"
                  "closed: 221 2.0.0\n");
    /* only bad ones */
    m.rcpts = r + 1;
    m.n_rcpts = 2;
    run(&su, GREET EHLO_MIN MAIL_OK RSET_OK BYE, EHLO_C MAIL_MIN_C RSET_C QUIT_C,
        READY_MIN "rcpt 0: BAD_ENVELOPE\n"
                  "rcpt 1: BAD_ENVELOPE\n"
                  "message: NO_RECIPIENTS n=2\n"
                  "closed: 221 2.0.0\n");
}

/* A bad sender or ENVID: nothing is sent for the message. */
static void test_sender_bad_envelope(void **state)
{
    (void)state;
    struct smtp_client_message m = message(2);
    struct setup su = setup_with(&m);
    m.sender = "a@b\nRSET";
    run(&su, GREET EHLO_ALL BYE, EHLO_C QUIT_C,
        READY_ALL "message: BAD_ENVELOPE n=2\nclosed: 221 2.0.0\n");
    m.sender = NULL;
    run(&su, GREET EHLO_ALL BYE, EHLO_C QUIT_C,
        READY_ALL "message: BAD_ENVELOPE n=2\nclosed: 221 2.0.0\n");
    char long_path[LIMIT_PATH + 2];
    memset(long_path, 'a', sizeof long_path - 1);
    long_path[sizeof long_path - 1] = '\0';
    m.sender = long_path;
    run(&su, GREET EHLO_ALL BYE, EHLO_C QUIT_C,
        READY_ALL "message: BAD_ENVELOPE n=2\nclosed: 221 2.0.0\n");
    m.sender = "s@src.test";
    m.envid = "a=b";
    run(&su, GREET EHLO_ALL BYE, EHLO_C QUIT_C,
        READY_ALL "message: BAD_ENVELOPE n=2\nclosed: 221 2.0.0\n");
    m.envid = "";
    run(&su, GREET EHLO_ALL BYE, EHLO_C QUIT_C,
        READY_ALL "message: BAD_ENVELOPE n=2\nclosed: 221 2.0.0\n");
}

/* ---- DATA ------------------------------------------------------------------------------------ */

static void test_data_refused(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK "451 4.3.0 local error\r\n" RSET_OK BYE,
        EHLO_C MAIL_C RCPT_C(0) DATA_C RSET_C QUIT_C,
        READY_ALL "rcpt 0: 250 2.1.5\nmessage: 451 4.3.0 n=1\nclosed: 221 2.0.0\n");
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK "554 5.7.1 no\r\n" RSET_OK BYE,
        EHLO_C MAIL_C RCPT_C(0) DATA_C RSET_C QUIT_C,
        READY_ALL "rcpt 0: 250 2.1.5\nmessage: 554 5.7.1 n=1\nclosed: 221 2.0.0\n");
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK "421 4.3.2 bye\r\n",
        EHLO_C MAIL_C RCPT_C(0) DATA_C,
        READY_ALL "rcpt 0: 250 2.1.5\nmessage: 421 4.3.2 n=1\nclosed: 421 4.3.2\n");
    run(&su, GREET EHLO_MIN MAIL_OK RCPT_OK "451 4.3.0 local error\r\n" RSET_OK BYE,
        EHLO_C MAIL_MIN_C RCPT_C(0) DATA_C RSET_C QUIT_C,
        READY_MIN "rcpt 0: 250 2.1.5\nmessage: 451 4.3.0 n=1\nclosed: 221 2.0.0\n");
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK "250 2.0.0 eh\r\n",
        EHLO_C MAIL_C RCPT_C(0) DATA_C,
        READY_ALL "rcpt 0: 250 2.1.5\nmessage: PROTOCOL n=1\nclosed: PROTOCOL\n");
}

/* Every final reply after the message data. */
static void test_final_replies(void **state)
{
    (void)state;
    static const struct {
        const char *reply, *event, *tail_out, *tail_ev;
    } cases[] = {
        {"250 2.0.0 Ok: queued as X\r\n", "250 2.0.0", QUIT_C, "closed: 221 2.0.0\n"},
        {"452 4.3.1 Insufficient system storage\r\n", "452 4.3.1", QUIT_C, "closed: 221 2.0.0\n"},
        {"552 5.3.4 Message too big\r\n", "552 5.3.4", QUIT_C, "closed: 221 2.0.0\n"},
        {"554 5.7.1 Spam\r\n", "554 5.7.1", QUIT_C, "closed: 221 2.0.0\n"},
        {"451 4.3.0 Error\r\n", "451 4.3.0", QUIT_C, "closed: 221 2.0.0\n"},
        {"421 4.4.2 timeout\r\n", "421 4.4.2", "", "closed: 421 4.4.2\n"},
        {"354 again?\r\n", "PROTOCOL", "", "closed: PROTOCOL\n"},
    };
    struct smtp_client_message m = message(1);
    struct setup su = setup_with(&m);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char server[512], out[512], ev[512];
        snprintf(server, sizeof server, GREET EHLO_ALL MAIL_OK RCPT_OK DATA_GO "%s" BYE,
                 cases[i].reply);
        snprintf(out, sizeof out, EHLO_C MAIL_C RCPT_C(0) DATA_C BODY_C "%s", cases[i].tail_out);
        snprintf(ev, sizeof ev, READY_ALL "rcpt 0: 250 2.1.5\nmessage: %s n=1\n%s",
                 cases[i].event, cases[i].tail_ev);
        run(&su, server, out, ev);
    }
}

/* Two messages on one connection, the second sent from the first one's message_result. */
static void test_two_messages(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    struct setup su = setup_with(&m);
    su.opts.max_rcpts = 1;
    m.n_rcpts = 2; /* two transactions of one recipient each */
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK DATA_GO QUEUED MAIL_OK "550 5.1.1 no\r\n"
             "554 5.5.1 no valid recipients\r\n" RSET_OK BYE,
        EHLO_C MAIL_C RCPT_C(0) DATA_C BODY_C MAIL_C RCPT_C(1) DATA_C RSET_C QUIT_C,
        READY_ALL "rcpt 0: 250 2.1.5\n"
                  "message: 250 2.0.0 n=1\n"
                  "rcpt 1: 550 5.1.1\n"
                  "message: NO_RECIPIENTS n=2\n"
                  "closed: 221 2.0.0\n");
}

/* ---- SIZE, SMTPUTF8, 8BITMIME, DSN ------------------------------------------------------------ */

/* RFC 1870 §6.1: a message over the server's SIZE is not sent (5.3.4 for the caller). */
static void test_size_too_big(void **state)
{
    (void)state;
    struct smtp_client_message m = message(3);
    struct setup su = setup_with(&m);
    run(&su, GREET "250-mx\r\n250 SIZE 3\r\n" BYE, EHLO_C QUIT_C,
        "ready ESMTP SIZE=3\nmessage: TOO_BIG n=3\nclosed: 221 2.0.0\n");
    /* exactly the limit goes */
    run(&su, GREET "250-mx\r\n250 SIZE 4\r\n" MAIL_OK RCPT_OK RCPT_OK RCPT_OK DATA_GO QUEUED BYE,
        EHLO_C MAIL_C RCPT_C(0) RCPT_C(1) RCPT_C(2) DATA_C BODY_C QUIT_C,
        "ready ESMTP SIZE=4\n"
        "rcpt 0: 250 2.1.5\nrcpt 1: 250 2.1.5\nrcpt 2: 250 2.1.5\n"
        "message: 250 2.0.0 n=3\nclosed: 221 2.0.0\n");
    /* SIZE 0: no limit, SIZE= still declared */
    run(&su, GREET "250-mx\r\n250 SIZE 0\r\n" MAIL_OK RCPT_OK RCPT_OK RCPT_OK DATA_GO QUEUED BYE,
        EHLO_C MAIL_C RCPT_C(0) RCPT_C(1) RCPT_C(2) DATA_C BODY_C QUIT_C,
        "ready ESMTP SIZE=0\n"
        "rcpt 0: 250 2.1.5\nrcpt 1: 250 2.1.5\nrcpt 2: 250 2.1.5\n"
        "message: 250 2.0.0 n=3\nclosed: 221 2.0.0\n");
}

static void test_smtputf8(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    m.smtputf8 = true;
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_MIN BYE, EHLO_C QUIT_C,
        READY_MIN "message: NEEDS_SMTPUTF8 n=1\nclosed: 221 2.0.0\n");
    run(&su, GREET EHLO_ALL ONE_OK_S,
        EHLO_C "MAIL FROM:<s@src.test> SIZE=4 SMTPUTF8\r\n" RCPT_C(0) DATA_C BODY_C QUIT_C,
        READY_ALL "rcpt 0: 250 2.1.5\nmessage: 250 2.0.0 n=1\nclosed: 221 2.0.0\n");
    /* a UTF-8 address needs it even when the flag was not set */
    struct smtp_client_rcpt r = {"j\xc3\xb6rg@dest.test", 0, NULL};
    m.smtputf8 = false;
    m.rcpts = &r;
    run(&su, GREET EHLO_MIN BYE, EHLO_C QUIT_C,
        READY_MIN "message: NEEDS_SMTPUTF8 n=1\nclosed: 221 2.0.0\n");
    run(&su, GREET EHLO_ALL ONE_OK_S,
        EHLO_C "MAIL FROM:<s@src.test> SIZE=4 SMTPUTF8\r\n" "RCPT TO:<j\xc3\xb6rg@dest.test>\r\n"
               DATA_C BODY_C QUIT_C,
        READY_ALL "rcpt 0: 250 2.1.5\nmessage: 250 2.0.0 n=1\nclosed: 221 2.0.0\n");
    m.rcpts = rcpts;
    m.sender = "\xc3\xa9@src.test";
    run(&su, GREET EHLO_MIN BYE, EHLO_C QUIT_C,
        READY_MIN "message: NEEDS_SMTPUTF8 n=1\nclosed: 221 2.0.0\n");
}

/* 8BITMIME offered: BODY=8BITMIME. Not offered: sent anyway without BODY= (our documented
 * choice, as Postfix). */
static void test_8bitmime(void **state)
{
    (void)state;
    static const char body8[] = "caf\xc3\xa9\r\n";
    struct smtp_client_message m = message(1);
    m.eightbit = true;
    m.body = body8;
    m.body_len = sizeof body8 - 1;
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_ALL ONE_OK_S,
        EHLO_C "MAIL FROM:<s@src.test> SIZE=7 BODY=8BITMIME\r\n" RCPT_C(0) DATA_C
               "caf\xc3\xa9\r\n.\r\n" QUIT_C,
        READY_ALL "rcpt 0: 250 2.1.5\nmessage: 250 2.0.0 n=1\nclosed: 221 2.0.0\n");
    run(&su, GREET EHLO_MIN ONE_OK_S,
        EHLO_C MAIL_MIN_C RCPT_C(0) DATA_C "caf\xc3\xa9\r\n.\r\n" QUIT_C,
        READY_MIN "rcpt 0: 250 2.1.5\nmessage: 250 2.0.0 n=1\nclosed: 221 2.0.0\n");
}

static void test_dsn_params(void **state)
{
    (void)state;
    struct smtp_client_rcpt r[] = {
        {"r0@dest.test", SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY,
         "rfc822;orig@dest.test"},
        {"r1@dest.test", SMTP_NOTIFY_NEVER, NULL},
        {"r2@dest.test", SMTP_NOTIFY_NEVER | SMTP_NOTIFY_SUCCESS, NULL},
        {"r3@dest.test", SMTP_NOTIFY_DELAY, "rfc822;x+2By@dest.test"},
    };
    struct smtp_client_message m = message(4);
    m.rcpts = r;
    m.ret = 2;
    m.envid = "QID123+2Bx";
    struct setup su = setup_with(&m);
    const char *ev = "rcpt 0: 250 2.1.5\nrcpt 1: 250 2.1.5\nrcpt 2: 250 2.1.5\n"
                     "rcpt 3: 250 2.1.5\nmessage: 250 2.0.0 n=4\nclosed: 221 2.0.0\n";
    char want[1024];
    snprintf(want, sizeof want, "%s%s", READY_ALL, ev);
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK RCPT_OK RCPT_OK RCPT_OK DATA_GO QUEUED BYE,
        EHLO_C "MAIL FROM:<s@src.test> SIZE=4 RET=HDRS ENVID=QID123+2Bx\r\n"
               "RCPT TO:<r0@dest.test> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;orig@dest.test\r\n"
               "RCPT TO:<r1@dest.test> NOTIFY=NEVER\r\n"
               "RCPT TO:<r2@dest.test> NOTIFY=NEVER\r\n"
               "RCPT TO:<r3@dest.test> NOTIFY=DELAY ORCPT=rfc822;x+2By@dest.test\r\n"
               DATA_C BODY_C QUIT_C,
        want);
    m.ret = 1;
    snprintf(want, sizeof want, "%s%s", READY_MIN, ev);
    /* without DSN, none of the DSN parameters */
    run(&su, GREET EHLO_MIN MAIL_OK RCPT_OK RCPT_OK RCPT_OK RCPT_OK DATA_GO QUEUED BYE,
        EHLO_C MAIL_MIN_C RCPT_C(0) RCPT_C(1) RCPT_C(2) RCPT_C(3) DATA_C BODY_C QUIT_C, want);
    run(&su, GREET "250-mx\r\n250 DSN\r\n" MAIL_OK RCPT_OK RCPT_OK RCPT_OK RCPT_OK DATA_GO QUEUED
             BYE,
        EHLO_C "MAIL FROM:<s@src.test> RET=FULL ENVID=QID123+2Bx\r\n"
               "RCPT TO:<r0@dest.test> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;orig@dest.test\r\n"
               "RCPT TO:<r1@dest.test> NOTIFY=NEVER\r\n"
               "RCPT TO:<r2@dest.test> NOTIFY=NEVER\r\n"
               "RCPT TO:<r3@dest.test> NOTIFY=DELAY ORCPT=rfc822;x+2By@dest.test\r\n"
               DATA_C BODY_C QUIT_C,
        "ready ESMTP DSN\n"
        "rcpt 0: 250 2.1.5\nrcpt 1: 250 2.1.5\nrcpt 2: 250 2.1.5\n"
        "rcpt 3: 250 2.1.5\nmessage: 250 2.0.0 n=4\nclosed: 221 2.0.0\n");
}

/* The null sender. */
static void test_null_sender(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    m.sender = "";
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_MIN ONE_OK_S, EHLO_C "MAIL FROM:<>\r\n" RCPT_C(0) DATA_C BODY_C QUIT_C,
        READY_MIN "rcpt 0: 250 2.1.5\nmessage: 250 2.0.0 n=1\nclosed: 221 2.0.0\n");
}

/* ---- recipient limits (RFC 9422 RCPTMAX, our max_rcpts) ---------------------------------------- */

static void test_limits_rcptmax(void **state)
{
    (void)state;
    struct smtp_client_message m = message(5);
    struct setup su = setup_with(&m);
    run(&su, GREET "250-mx\r\n250-PIPELINING\r\n250 LIMITS RCPTMAX=2\r\n"
             MAIL_OK RCPT_OK RCPT_OK DATA_GO QUEUED
             MAIL_OK RCPT_OK "550 5.1.1 no\r\n" DATA_GO QUEUED
             MAIL_OK RCPT_OK DATA_GO QUEUED BYE,
        EHLO_C MAIL_MIN_C RCPT_C(0) RCPT_C(1) DATA_C BODY_C
               MAIL_MIN_C RCPT_C(2) RCPT_C(3) DATA_C BODY_C
               MAIL_MIN_C RCPT_C(4) DATA_C BODY_C QUIT_C,
        "ready ESMTP PIPELINING RCPTMAX=2\n"
        "rcpt 0: 250 2.1.5\nrcpt 1: 250 2.1.5\nmessage: 250 2.0.0 n=2\n"
        "rcpt 2: 250 2.1.5\nrcpt 3: 550 5.1.1\nmessage: 250 2.0.0 n=4\n"
        "rcpt 4: 250 2.1.5\nmessage: 250 2.0.0 n=5\n"
        "closed: 221 2.0.0\n");
    /* our own limit, lower than the server's, wins; and the other way round */
    su.opts.max_rcpts = 3;
    const char *server3 = GREET "250-mx\r\n250 LIMITS RCPTMAX=4\r\n"
                          MAIL_OK RCPT_OK RCPT_OK RCPT_OK DATA_GO QUEUED
                          MAIL_OK RCPT_OK RCPT_OK DATA_GO QUEUED BYE;
    const char *out3 = EHLO_C MAIL_MIN_C RCPT_C(0) RCPT_C(1) RCPT_C(2) DATA_C BODY_C
                       MAIL_MIN_C RCPT_C(3) RCPT_C(4) DATA_C BODY_C QUIT_C;
    run(&su, server3, out3,
        "ready ESMTP RCPTMAX=4\n"
        "rcpt 0: 250 2.1.5\nrcpt 1: 250 2.1.5\nrcpt 2: 250 2.1.5\nmessage: 250 2.0.0 n=3\n"
        "rcpt 3: 250 2.1.5\nrcpt 4: 250 2.1.5\nmessage: 250 2.0.0 n=5\n"
        "closed: 221 2.0.0\n");
    su.opts.max_rcpts = 5;
    run(&su, GREET "250-mx\r\n250 LIMITS RCPTMAX=3\r\n"
             MAIL_OK RCPT_OK RCPT_OK RCPT_OK DATA_GO QUEUED
             MAIL_OK RCPT_OK RCPT_OK DATA_GO QUEUED BYE,
        out3,
        "ready ESMTP RCPTMAX=3\n"
        "rcpt 0: 250 2.1.5\nrcpt 1: 250 2.1.5\nrcpt 2: 250 2.1.5\nmessage: 250 2.0.0 n=3\n"
        "rcpt 3: 250 2.1.5\nrcpt 4: 250 2.1.5\nmessage: 250 2.0.0 n=5\n"
        "closed: 221 2.0.0\n");
}

/* ---- message data: dot-stuffing (RFC 5321 §4.5.2) ------------------------------------------ */

/* The message's lines on the wire: CRLF for every line end, a final CRLF when missing, and with
 * dots, a leading '.' doubled (DATA); without, as BDAT sends them. */
static void reference_lines(const char *b, size_t n, bool dots, struct text *out)
{
    bool line_start = true;
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '\r' || b[i] == '\n') {
            if (b[i] == '\r' && i + 1 < n && b[i + 1] == '\n')
                i++;
            text_add(out, "\r\n", 2);
            line_start = true;
            continue;
        }
        if (dots && line_start && b[i] == '.')
            text_add(out, ".", 1);
        text_add(out, &b[i], 1);
        line_start = false;
    }
    if (!line_start)
        text_add(out, "\r\n", 2);
}

/* What the message data must look like on the wire: the reference the session is held to. */
static void reference_stuff(const char *b, size_t n, struct text *out)
{
    reference_lines(b, n, true, out);
    text_add(out, ".\r\n", 3);
}

/* Sends body (one recipient, no SIZE) and checks the data on the wire. */
static void check_body(const char *body, size_t len, size_t drain_step, const char *segments)
{
    struct smtp_client_message m = message(1);
    m.body = body;
    m.body_len = len;
    struct setup su = setup_with(&m);
    su.drain = drain_step;
    struct text want = {0};
    text_add(&want, EHLO_C MAIL_MIN_C RCPT_C(0) DATA_C, sizeof EHLO_C MAIL_MIN_C RCPT_C(0) DATA_C - 1);
    reference_stuff(body, len, &want);
    text_add(&want, QUIT_C, sizeof QUIT_C - 1);
    static const enum split modes[] = {SPLIT_WHOLE, SPLIT_OCTETS, SPLIT_RANDOM};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        struct fake *f = play(&su, segments, modes[i], 99, 0);
        assert_int_equal(f->out.len, want.len);
        assert_memory_equal(f->out.p, want.p, want.len);
        assert_string_equal(text_str(&f->events),
                            READY_MIN "rcpt 0: 250 2.1.5\nmessage: 250 2.0.0 n=1\n"
                                      "closed: 221 2.0.0\n");
        assert_true(f->max_pending <= 64 * 1024 + 64);
        fake_close(f);
    }
    free(want.p);
}

#define PLAIN_SESSION GREET EHLO_MIN MAIL_OK RCPT_OK DATA_GO "\f" QUEUED BYE

static void test_dot_stuffing(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "",
        ".",
        ".\r\n",
        "..x\r\n",
        "a\r\n.\r\nb\r\n",
        "a\r\n..\r\n",
        ".\r\n.\r\n.",
        "no final line break",
        "line\r\n.last without CRLF",
        "bare\nLF\n.dot after bare LF\n",
        "bare\rCR\r.dot after bare CR\r",
        "\r\n.\r\n",        /* the end of data inside the message: stuffed */
        "a\n.\r\nb",         /* SMTP smuggling shapes: never an end of data */
        "a\r\n.\nb\r\n",
        "a\r.\r\nb",
        "x\r\r\n.\r\n",
        "\r",
        "\n",
        "\r\n",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        for (size_t d = 0; d < 3; d++)
            check_body(bodies[i], strlen(bodies[i]), (size_t[]){0, 1, 3}[d], PLAIN_SESSION);
}

/* Hand-written expectations for a few: the reference itself is checked. */
static void test_dot_stuffing_transcript(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    m.body = ".\r\n..x\r\nend";
    m.body_len = strlen(m.body);
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_MIN ONE_OK_S,
        EHLO_C MAIL_MIN_C RCPT_C(0) DATA_C "..\r\n...x\r\nend\r\n.\r\n" QUIT_C,
        READY_MIN "rcpt 0: 250 2.1.5\nmessage: 250 2.0.0 n=1\nclosed: 221 2.0.0\n");
    m.body = "";
    m.body_len = 0;
    run(&su, GREET EHLO_MIN ONE_OK_S, EHLO_C MAIL_MIN_C RCPT_C(0) DATA_C ".\r\n" QUIT_C,
        READY_MIN "rcpt 0: 250 2.1.5\nmessage: 250 2.0.0 n=1\nclosed: 221 2.0.0\n");
    m.body = "a\nb\r.c";
    m.body_len = strlen(m.body);
    run(&su, GREET EHLO_MIN ONE_OK_S,
        EHLO_C MAIL_MIN_C RCPT_C(0) DATA_C "a\r\nb\r\n..c\r\n.\r\n" QUIT_C,
        READY_MIN "rcpt 0: 250 2.1.5\nmessage: 250 2.0.0 n=1\nclosed: 221 2.0.0\n");
}

/* Dot lines right at the edge of a 64 KiB chunk of output, before and after it. */
static void test_dot_at_chunk_edges(void **state)
{
    (void)state;
    size_t cap = 2 * 65536 + 64;
    char *body = malloc(cap);
    assert_non_null(body);
    for (size_t k = 65516; k <= 65540; k++) {
        memset(body, 'x', k);
        memcpy(body + k, "\r\n.y\r\n.\r\n", 9);
        size_t len = k + 9;
        check_body(body, len, 0, PLAIN_SESSION);
        check_body(body, len, 65535, PLAIN_SESSION);
        /* the same with the dot line as the very last, without CRLF */
        memcpy(body + k, "\r\n.", 3);
        check_body(body, k + 3, 0, PLAIN_SESSION);
    }
    free(body);
}

/* 3 MB of lines of random length, many starting with '.', drained in several ways. */
static void test_body_3mb(void **state)
{
    (void)state;
    size_t len = 3u * 1024 * 1024;
    char *body = malloc(len);
    assert_non_null(body);
    uint32_t seed = 12345;
    size_t pos = 0;
    while (pos < len) {
        size_t line = next_random(&seed) % 120;
        bool dot = next_random(&seed) % 3 == 0;
        for (size_t i = 0; i < line && pos < len; i++)
        {
            body[pos] = (i == 0 && dot) ? '.' : (char)('a' + (pos % 26));
            pos++;
        }
        if (pos < len)
            body[pos++] = '\r';
        if (pos < len)
            body[pos++] = '\n';
    }
    body[len - 1] = '.'; /* ends without CRLF, with a dot */
    check_body(body, len, 0, PLAIN_SESSION);
    check_body(body, len, 4093, PLAIN_SESSION);
    check_body(body, len, 65536 + 7, PLAIN_SESSION);
    free(body);
}

static void test_awaiting_data_end(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    struct setup su = setup_with(&m);
    struct fake *f = play(&su, GREET EHLO_MIN MAIL_OK RCPT_OK, SPLIT_WHOLE, 1, 0);
    assert_false(smtp_client_awaiting_data_end(f->c));
    smtp_client_feed(f->c, DATA_GO, sizeof DATA_GO - 1);
    drain(f);
    assert_true(smtp_client_awaiting_data_end(f->c));
    smtp_client_feed(f->c, QUEUED, sizeof QUEUED - 1);
    assert_false(smtp_client_awaiting_data_end(f->c));
    fake_close(f);
}

/* A reply while the data is still going out: the server stopped reading it. The message fails
 * with that reply, the rest of the data is never sent, the session ends. */
static void test_reply_during_data(void **state)
{
    (void)state;
    size_t len = 200000;
    char *body = x_body(len);
    struct smtp_client_message m = message_of(body, len);
    struct setup su = setup_with(&m);
    static const struct {
        const char *reply, *events;
    } cases[] = {
        {"552 5.3.4 too big\r\n", "message: 552 5.3.4 n=1\nclosed: 552 5.3.4\n"},
        {"421 4.4.2 timeout\r\n", "message: 421 4.4.2 n=1\nclosed: 421 4.4.2\n"},
        {"250 2.0.0 early\r\n", "message: PROTOCOL n=1\nclosed: PROTOCOL\n"},
        {"<timeout>", "message: TIMEOUT n=1\nclosed: TIMEOUT\n"},
        {"<lost>", "message: CLOSED n=1\nclosed: CLOSED\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fake *f = fake_open(&su);
        smtp_client_feed(f->c, GREET EHLO_MIN MAIL_OK RCPT_OK DATA_GO,
                         sizeof GREET EHLO_MIN MAIL_OK RCPT_OK DATA_GO - 1);
        size_t n;
        const char *p = smtp_client_output(f->c, &n);
        text_add(&f->out, p, n); /* the commands and the first chunk of data */
        smtp_client_consume_output(f->c, n);
        size_t sent = f->out.len;
        if (strcmp(cases[i].reply, "<timeout>") == 0)
            smtp_client_timeout(f->c);
        else if (strcmp(cases[i].reply, "<lost>") == 0)
            smtp_client_connection_lost(f->c);
        else
            smtp_client_feed(f->c, cases[i].reply, strlen(cases[i].reply));
        drain(f);
        assert_int_equal(f->out.len, sent); /* nothing more, not even QUIT */
        assert_true(sent < len);
        char want[256];
        snprintf(want, sizeof want, READY_MIN "rcpt 0: 250 2.1.5\n%s", cases[i].events);
        assert_string_equal(text_str(&f->events), want);
        assert_true(smtp_client_done(f->c));
        fake_close(f);
    }
    free(body);
}

/* ---- malformed replies ------------------------------------------------------------------------- */

/* Runs server bytes (which may hold NUL) whole, octet by octet and in random pieces. */
static void run_bytes(const struct setup *su, const char *data, size_t len, const char *want_out,
                      const char *want_events)
{
    static const enum split modes[] = {SPLIT_WHOLE, SPLIT_OCTETS, SPLIT_RANDOM};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        uint32_t seed = 777;
        struct fake *f = fake_open(su);
        feed(f, data, len, modes[i], &seed, 0);
        check(f, want_out, want_events);
        fake_close(f);
    }
}

#define BYTES(s) {s, sizeof s - 1}

static void test_malformed_replies(void **state)
{
    (void)state;
    static const struct {
        const char *p;
        size_t n;
    } bad[] = {
        BYTES("250-mx\r\n251 wrong continuation code\r\n"),
        BYTES("garbage\r\n"),
        BYTES("600 out of range\r\n"),
        BYTES("199 too low\r\n"),
        BYTES("250 nul\0inside\r\n"),
        BYTES("250-mx\r\n250 nul\0\r\n"),
        BYTES("250 bare\rCR\r\n"),
        BYTES("250-bare\rCR\r\n250 x\r\n"),
        BYTES("2500 no separator\r\n"),
        BYTES("25\r\n"),
        BYTES("250_x\r\n"),
        BYTES("\r\n"),
        BYTES("\0"),
    };
    struct setup su = setup_with(NULL);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char server[128];
        assert_true(sizeof GREET - 1 + bad[i].n <= sizeof server);
        memcpy(server, GREET, sizeof GREET - 1);
        memcpy(server + sizeof GREET - 1, bad[i].p, bad[i].n);
        run_bytes(&su, server, sizeof GREET - 1 + bad[i].n, EHLO_C, "closed: PROTOCOL\n");
    }
    /* in the greeting itself */
    run_bytes(&su, "220-a\r\n221 b\r\n", 15, "", "closed: PROTOCOL\n");
    run_bytes(&su, "\0\0\0", 3, "", "closed: PROTOCOL\n");
}

static void test_malformed_long(void **state)
{
    (void)state;
    struct setup su = setup_with(NULL);
    /* a line over 512 octets */
    char line[700];
    memcpy(line, "250 ", 4);
    memset(line + 4, 'x', 600);
    memcpy(line + 604, "\r\n", 3);
    char server[1024];
    snprintf(server, sizeof server, GREET "%s", line);
    run(&su, server, EHLO_C, "closed: PROTOCOL\n");
    /* more lines than any reply may have */
    struct text t = {0};
    text_add(&t, GREET, sizeof GREET - 1);
    for (int i = 0; i < 120; i++)
        text_add(&t, "250-KEYWORD\r\n", 13);
    text_add(&t, "250 END\r\n", 9);
    run(&su, text_str(&t), EHLO_C, "closed: PROTOCOL\n");
    free(t.p);
    /* a server that never ends its line: refused after 512 octets, not buffered forever */
    struct fake *f = fake_open(&su);
    char junk[4096];
    memset(junk, 'a', sizeof junk);
    smtp_client_feed(f->c, junk, sizeof junk);
    drain(f);
    check(f, "", "closed: PROTOCOL\n");
    smtp_client_feed(f->c, junk, sizeof junk); /* ignored once done */
    fake_close(f);
}

/* A malformed reply inside a transaction fails the message too. */
static void test_malformed_in_transaction(void **state)
{
    (void)state;
    struct smtp_client_message m = message(2);
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK "250-ok\r\n550 mismatch\r\n",
        EHLO_C MAIL_C RCPT_C(0) RCPT_C(1) DATA_C,
        READY_ALL "rcpt 0: 250 2.1.5\nmessage: PROTOCOL n=2\nclosed: PROTOCOL\n");
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK RCPT_OK DATA_GO "hello?\r\n",
        EHLO_C MAIL_C RCPT_C(0) RCPT_C(1) DATA_C BODY_C,
        READY_ALL "rcpt 0: 250 2.1.5\nrcpt 1: 250 2.1.5\nmessage: PROTOCOL n=2\n"
                  "closed: PROTOCOL\n");
    /* a reply of the wrong kind: 250 to DATA */
    struct smtp_client_message one = message(1);
    su.msg = &one;
    run(&su, GREET EHLO_MIN MAIL_OK RCPT_OK RCPT_OK,
        EHLO_C MAIL_MIN_C RCPT_C(0) DATA_C,
        READY_MIN "rcpt 0: 250 2.1.5\nmessage: PROTOCOL n=1\nclosed: PROTOCOL\n");
}

/* A reply when none is expected: a server giving up, or a broken one. */
static void test_unexpected_reply_when_idle(void **state)
{
    (void)state;
    struct setup su = setup_with(NULL);
    su.idle = true;
    run(&su, GREET EHLO_MIN "421 4.4.2 idle timeout\r\n", EHLO_C,
        READY_MIN "closed: 421 4.4.2\n");
    run(&su, GREET EHLO_MIN "554 5.0.0 go\r\n", EHLO_C, READY_MIN "closed: 554 5.0.0\n");
    run(&su, GREET EHLO_MIN "250 hello\r\n", EHLO_C, READY_MIN "closed: PROTOCOL\n");
}

/* ---- timeouts, lost connections, API misuse ----------------------------------------------- */

static void test_timeout_and_lost(void **state)
{
    (void)state;
    struct smtp_client_message m = message(2);
    struct setup su = setup_with(&m);
    run(&su, "<timeout>", "", "closed: TIMEOUT\n");
    run(&su, GREET "\f<lost>", EHLO_C, "closed: CLOSED\n");
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK "\f<timeout>", EHLO_C MAIL_C RCPT_C(0) RCPT_C(1) DATA_C,
        READY_ALL "rcpt 0: 250 2.1.5\nmessage: TIMEOUT n=2\nclosed: TIMEOUT\n");
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK RCPT_OK DATA_GO "\f<lost>",
        EHLO_C MAIL_C RCPT_C(0) RCPT_C(1) DATA_C BODY_C,
        READY_ALL "rcpt 0: 250 2.1.5\nrcpt 1: 250 2.1.5\nmessage: CLOSED n=2\nclosed: CLOSED\n");
    /* after a refused MAIL, waiting for RSET's reply: the message keeps the MAIL outcome */
    run(&su, GREET EHLO_MIN "550 5.7.1 no\r\n\f<lost>", EHLO_C MAIL_MIN_C RSET_C,
        READY_MIN "message: 550 5.7.1 n=2\nclosed: CLOSED\n");
    /* after QUIT, the server just closes */
    su.msg = NULL;
    run(&su, GREET EHLO_MIN "\f<lost>", EHLO_C QUIT_C, READY_MIN "closed: CLOSED\n");
    /* a second timeout or loss after the end changes nothing */
    run(&su, GREET EHLO_MIN BYE "\f<lost>\f<timeout>", EHLO_C QUIT_C,
        READY_MIN "closed: 221 2.0.0\n");
}

static void test_quit_replies(void **state)
{
    (void)state;
    struct setup su = setup_with(NULL);
    run(&su, GREET EHLO_MIN "500 what\r\n", EHLO_C QUIT_C, READY_MIN "closed: 500\n");
    run(&su, GREET EHLO_MIN "421 4.3.2 bye\r\n", EHLO_C QUIT_C, READY_MIN "closed: 421 4.3.2\n");
    run(&su, GREET EHLO_MIN "221 2.0.0 bye\r\n250 more?\r\n", EHLO_C QUIT_C,
        READY_MIN "closed: 221 2.0.0\n");
}

static void test_api_misuse(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    struct setup su = setup_with(NULL);
    su.idle = true;
    struct fake *f = fake_open(&su);
    /* before ready: send and quit are ignored */
    smtp_client_send(f->c, &m, 0);
    smtp_client_quit(f->c);
    smtp_client_tls_started(f->c);
    drain(f);
    assert_int_equal(f->out.len, 0);
    smtp_client_feed(f->c, GREET EHLO_MIN, sizeof GREET EHLO_MIN - 1);
    drain(f);
    /* first beyond the list: nothing to send */
    f->sends++;
    smtp_client_send(f->c, &m, 1);
    /* a transaction in progress: a second send is ignored */
    f->sends++;
    smtp_client_send(f->c, &m, 0);
    smtp_client_send(f->c, &m, 0);
    smtp_client_quit(f->c);
    size_t n;
    smtp_client_output(f->c, &n);
    smtp_client_consume_output(f->c, n + 100); /* more than there is */
    text_add(&f->out, MAIL_MIN_C, sizeof MAIL_MIN_C - 1);
    smtp_client_output(f->c, &n);
    assert_int_equal(n, 0);
    smtp_client_connection_lost(f->c);
    /* after the end every send gets CLOSED at once */
    f->sends++;
    smtp_client_send(f->c, &m, 0);
    check(f, EHLO_C MAIL_MIN_C,
          READY_MIN "message: NO_RECIPIENTS n=1\n"
                    "message: CLOSED n=1\n"
                    "closed: CLOSED\n"
                    "message: CLOSED n=1\n");
    fake_close(f);
}

/* ---- split feeding --------------------------------------------------------------------------- */

/* One session with every kind of step, fed in two pieces cut at every position. */
static void test_split_every_position(void **state)
{
    (void)state;
    struct smtp_client_message m = message(4);
    struct setup su = setup_with(&m);
    const char *server = GREET EHLO_ALL MAIL_OK RCPT_OK "550-5.1.1 no such\r\n550 5.1.1 user\r\n"
                         RCPT_OK "452 4.5.3 too many recipients\r\n" DATA_GO QUEUED
                         MAIL_OK RCPT_OK DATA_GO "451-4.3.0 local\r\n451 4.3.0 error\r\n" BYE;
    const char *out = EHLO_C MAIL_C RCPT_C(0) RCPT_C(1) RCPT_C(2) RCPT_C(3) DATA_C BODY_C
                      MAIL_C RCPT_C(3) DATA_C BODY_C QUIT_C;
    const char *ev = READY_ALL "rcpt 0: 250 2.1.5\n"
                               "rcpt 1: 550 5.1.1\n"
                               "rcpt 2: 250 2.1.5\n"
                               "message: 250 2.0.0 n=3\n"
                               "rcpt 3: 250 2.1.5\n"
                               "message: 451 4.3.0 n=4\n"
                               "closed: 221 2.0.0\n";
    run(&su, server, out, ev);
    size_t n = strlen(server);
    for (size_t k = 0; k <= n; k++) {
        struct fake *f = play(&su, server, SPLIT_AT, 1, k);
        check(f, out, ev);
        fake_close(f);
    }
}

/* ---- PIPELINING on and off: the same outcomes ---------------------------------------------- */

/* A tiny server: replies by rule (first unused rule whose prefix matches the command line),
 * else as a plain server would. */
struct rule {
    const char *prefix, *reply;
};

struct mini_server {
    const struct rule *rules;
    bool used[16];
    const char *ehlo;
    size_t rcpt_limit; /* per transaction; 0: none */
    bool mail, in_data, gone;
    size_t rcpts;
    size_t read; /* client output read so far */
    struct text replies;
};

static const char *mini_default(struct mini_server *s, const char *line)
{
    if (strncmp(line, "EHLO", 4) == 0)
        return s->ehlo;
    if (strncmp(line, "MAIL", 4) == 0)
        return s->mail ? "503 5.5.1 nested MAIL\r\n" : MAIL_OK;
    if (strncmp(line, "RCPT", 4) == 0 && s->mail && s->rcpt_limit && s->rcpts >= s->rcpt_limit)
        return "452 4.5.3 Error: too many recipients\r\n";
    if (strncmp(line, "RCPT", 4) == 0)
        return s->mail ? RCPT_OK : "503 5.5.1 need MAIL\r\n";
    if (strncmp(line, "DATA", 4) == 0)
        return !s->mail ? "503 5.5.1 need MAIL\r\n"
                        : s->rcpts == 0 ? "554 5.5.1 no valid recipients\r\n" : DATA_GO;
    if (strncmp(line, "RSET", 4) == 0)
        return RSET_OK;
    if (strncmp(line, "QUIT", 4) == 0)
        return BYE;
    if (strcmp(line, ".") == 0)
        return QUEUED;
    return "500 5.5.2 what?\r\n";
}

static void mini_line(struct mini_server *s, const char *line)
{
    if (s->gone)
        return;
    if (s->in_data && strcmp(line, ".") != 0)
        return;
    const char *reply = NULL;
    for (size_t i = 0; s->rules[i].prefix && !reply; i++) {
        if (!s->used[i] && strncmp(line, s->rules[i].prefix, strlen(s->rules[i].prefix)) == 0) {
            s->used[i] = true;
            reply = s->rules[i].reply;
        }
    }
    if (!reply)
        reply = mini_default(s, line);
    text_add(&s->replies, reply, strlen(reply));
    bool ok = reply[0] == '2';
    if (strncmp(line, "MAIL", 4) == 0 && ok)
        s->mail = true;
    if (strncmp(line, "RCPT", 4) == 0 && ok)
        s->rcpts++;
    if (strncmp(line, "DATA", 4) == 0 && reply[0] == '3')
        s->in_data = true;
    if (strcmp(line, ".") == 0 || strncmp(line, "RSET", 4) == 0) {
        s->in_data = s->mail = false;
        s->rcpts = 0;
    }
    if (strncmp(reply, "421", 3) == 0 || strncmp(line, "QUIT", 4) == 0)
        s->gone = true;
}

/* Talks with the client until neither side has anything more to say; returns the events. */
static char *converse(const struct setup *su, const struct rule *rules, const char *ehlo,
                      size_t rcpt_limit)
{
    struct mini_server s = {.rules = rules, .ehlo = ehlo, .rcpt_limit = rcpt_limit};
    struct fake *f = fake_open(su);
    text_add(&s.replies, GREET, sizeof GREET - 1);
    for (int rounds = 0; rounds < 100000; rounds++) {
        if (s.replies.len > 0) {
            size_t n = s.replies.len;
            s.replies.len = 0;
            char *copy = malloc(n);
            assert_non_null(copy);
            memcpy(copy, s.replies.p, n);
            smtp_client_feed(f->c, copy, n);
            free(copy);
        }
        drain(f);
        char *eol;
        while ((eol = memchr(f->out.p + s.read, '\n', f->out.len - s.read)) != NULL) {
            size_t len = (size_t)(eol - (f->out.p + s.read));
            char line[1200];
            assert_true(len >= 1 && len < sizeof line && eol[-1] == '\r');
            memcpy(line, f->out.p + s.read, len - 1);
            line[len - 1] = '\0';
            s.read += len + 1;
            mini_line(&s, line);
        }
        if (s.replies.len == 0)
            break;
    }
    char *events = strdup(text_str(&f->events));
    assert_non_null(events);
    fake_close(f);
    free(s.replies.p);
    return events;
}

static void test_pipelining_same_outcomes(void **state)
{
    (void)state;
    static const struct {
        struct rule rules[6];
        const char *events;
        size_t rcpt_limit; /* the server's, per transaction */
    } cases[] = {
        {{{NULL, NULL}},
         "rcpt 0: 250 2.1.5\nrcpt 1: 250 2.1.5\nrcpt 2: 250 2.1.5\nrcpt 3: 250 2.1.5\n"
         "message: 250 2.0.0 n=4\nclosed: 221 2.0.0\n", 0},
        {{{"MAIL", "451 4.3.0 later\r\n"}, {NULL, NULL}},
         "message: 451 4.3.0 n=4\nclosed: 221 2.0.0\n", 0},
        {{{"MAIL", "553 5.7.1 sender refused\r\n"}, {NULL, NULL}},
         "message: 553 5.7.1 n=4\nclosed: 221 2.0.0\n", 0},
        {{{"RCPT TO:<r1", "550 5.1.1 no\r\n"}, {"RCPT TO:<r3", "450 4.2.1 busy\r\n"},
          {NULL, NULL}},
         "rcpt 0: 250 2.1.5\nrcpt 1: 550 5.1.1\nrcpt 2: 250 2.1.5\nrcpt 3: 450 4.2.1\n"
         "message: 250 2.0.0 n=4\nclosed: 221 2.0.0\n", 0},
        {{{"RCPT", "550 5.1.1 no\r\n"}, {"RCPT", "550 5.1.1 no\r\n"},
          {"RCPT", "550 5.1.1 no\r\n"}, {"RCPT", "550 5.1.1 no\r\n"}, {NULL, NULL}},
         "rcpt 0: 550 5.1.1\nrcpt 1: 550 5.1.1\nrcpt 2: 550 5.1.1\nrcpt 3: 550 5.1.1\n"
         "message: NO_RECIPIENTS n=4\nclosed: 221 2.0.0\n", 0},
        {{{NULL, NULL}},
         "rcpt 0: 250 2.1.5\nrcpt 1: 250 2.1.5\nmessage: 250 2.0.0 n=2\n"
         "rcpt 2: 250 2.1.5\nrcpt 3: 250 2.1.5\nmessage: 250 2.0.0 n=4\nclosed: 221 2.0.0\n", 2},
        {{{"DATA", "451 4.3.0 local error\r\n"}, {NULL, NULL}},
         "rcpt 0: 250 2.1.5\nrcpt 1: 250 2.1.5\nrcpt 2: 250 2.1.5\nrcpt 3: 250 2.1.5\n"
         "message: 451 4.3.0 n=4\nclosed: 221 2.0.0\n", 0},
        {{{"RCPT TO:<r2", "421 4.7.0 too many errors\r\n"}, {NULL, NULL}},
         "rcpt 0: 250 2.1.5\nrcpt 1: 250 2.1.5\nmessage: 421 4.7.0 n=4\nclosed: 421 4.7.0\n", 0},
        {{{".", "554 5.7.1 spam\r\n"}, {NULL, NULL}},
         "rcpt 0: 250 2.1.5\nrcpt 1: 250 2.1.5\nrcpt 2: 250 2.1.5\nrcpt 3: 250 2.1.5\n"
         "message: 554 5.7.1 n=4\nclosed: 221 2.0.0\n", 0},
        {{{"RSET", "500 no\r\n"}, {"RCPT", "550 5.1.1 no\r\n"}, {"RCPT", "550 5.1.1 no\r\n"},
          {"RCPT", "550 5.1.1 no\r\n"}, {"RCPT", "550 5.1.1 no\r\n"}, {NULL, NULL}},
         "rcpt 0: 550 5.1.1\nrcpt 1: 550 5.1.1\nrcpt 2: 550 5.1.1\nrcpt 3: 550 5.1.1\n"
         "message: NO_RECIPIENTS n=4\nclosed: 500\n", 0},
    };
    struct smtp_client_message m = message(4);
    struct setup su = setup_with(&m);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *with = converse(&su, cases[i].rules, EHLO_ALL, cases[i].rcpt_limit);
        char *without = converse(&su, cases[i].rules, EHLO_MIN, cases[i].rcpt_limit);
        char want[1024];
        snprintf(want, sizeof want, READY_ALL "%s", cases[i].events);
        assert_string_equal(with, want);
        snprintf(want, sizeof want, READY_MIN "%s", cases[i].events);
        assert_string_equal(without, want);
        free(with);
        free(without);
    }
    /* with RCPTMAX and a bad recipient in the list */
    struct smtp_client_rcpt r[] = {
        {"r0@dest.test", 0, NULL}, {"bad\r\n", 0, NULL}, {"r2@dest.test", 0, NULL},
        {"r3@dest.test", 0, NULL}, {"r4@dest.test", 0, NULL},
    };
    m.rcpts = r;
    m.n_rcpts = 5;
    static const struct rule none[] = {{"RCPT TO:<r3", "550 5.1.1 no\r\n"}, {NULL, NULL}};
    const char *want = "rcpt 0: 250 2.1.5\nrcpt 1: BAD_ENVELOPE\nmessage: 250 2.0.0 n=2\n"
                       "rcpt 2: 250 2.1.5\nrcpt 3: 550 5.1.1\nmessage: 250 2.0.0 n=4\n"
                       "rcpt 4: 250 2.1.5\nmessage: 250 2.0.0 n=5\nclosed: 221 2.0.0\n";
    char *with = converse(&su, none, "250-mx\r\n250-PIPELINING\r\n250 LIMITS RCPTMAX=2\r\n", 0);
    char *without = converse(&su, none, "250-mx\r\n250 LIMITS RCPTMAX=2\r\n", 0);
    char buf[1024];
    snprintf(buf, sizeof buf, "ready ESMTP PIPELINING RCPTMAX=2\n%s", want);
    assert_string_equal(with, buf);
    snprintf(buf, sizeof buf, "ready ESMTP RCPTMAX=2\n%s", want);
    assert_string_equal(without, buf);
    free(with);
    free(without);
}

/* Many recipients: the pipelined batch is bounded by the output, not by the count. */
static void test_pipelining_many_recipients(void **state)
{
    (void)state;
    enum { N = 5000 };
    struct smtp_client_rcpt *r = calloc(N, sizeof *r);
    char (*addr)[48] = calloc(N, sizeof *addr);
    assert_non_null(r);
    assert_non_null(addr);
    for (size_t i = 0; i < N; i++) {
        snprintf(addr[i], sizeof addr[i], "recipient-number-%zu@dest.example.test", i);
        r[i].address = addr[i];
    }
    struct smtp_client_message m = message(0);
    m.rcpts = r;
    m.n_rcpts = N;
    struct setup su = setup_with(&m);
    static const struct rule none[] = {{NULL, NULL}};
    char *with = converse(&su, none, EHLO_ALL, 0);
    char *without = converse(&su, none, EHLO_MIN, 0);
    /* identical after the ready line */
    assert_string_equal(strchr(with, '\n'), strchr(without, '\n'));
    assert_non_null(strstr(with, "message: 250 2.0.0 n=5000\nclosed: 221 2.0.0\n"));
    free(with);
    free(without);
    /* the server takes 1000 per transaction: the 452 comes long after the first batch */
    with = converse(&su, none, EHLO_ALL, 1000);
    without = converse(&su, none, EHLO_MIN, 1000);
    assert_string_equal(strchr(with, '\n'), strchr(without, '\n'));
    for (int i = 1; i <= 5; i++) {
        char want[64];
        snprintf(want, sizeof want, "message: 250 2.0.0 n=%d\n", i * 1000);
        assert_non_null(strstr(with, want));
    }
    free(with);
    free(without);
    /* MAIL refused: every answer to the batch is ignored, nothing is reported per recipient */
    static const struct rule mail_refused[] = {{"MAIL", "451 4.3.0 later\r\n"}, {NULL, NULL}};
    with = converse(&su, mail_refused, EHLO_ALL, 0);
    without = converse(&su, mail_refused, EHLO_MIN, 0);
    assert_string_equal(strchr(with, '\n'), "\nmessage: 451 4.3.0 n=5000\nclosed: 221 2.0.0\n");
    assert_string_equal(strchr(without, '\n'), strchr(with, '\n'));
    free(with);
    free(without);
    free(r);
    free(addr);
}

/* A caller that does not drain: the pipelined batch stops at 64 KiB of output. All of it
 * answered, one reply more is one too many. */
static void test_pipelining_window(void **state)
{
    (void)state;
    enum { N = 5000 };
    struct smtp_client_rcpt *r = calloc(N, sizeof *r);
    assert_non_null(r);
    for (size_t i = 0; i < N; i++)
        r[i].address = "recipient@dest.example.test";
    struct smtp_client_message m = message(0);
    m.rcpts = r;
    m.n_rcpts = N;
    struct setup su = setup_with(&m);
    struct fake *f = fake_open(&su);
    smtp_client_feed(f->c, GREET EHLO_ALL, sizeof GREET EHLO_ALL - 1);
    size_t n;
    const char *p = smtp_client_output(f->c, &n);
    assert_true(n >= 64 * 1024 && n < 64 * 1024 + 128);
    size_t rcpt_lines = 0;
    for (const char *q = p; (q = memmem(q, n - (size_t)(q - p), "RCPT TO:", 8)) != NULL; q++)
        rcpt_lines++;
    assert_true(rcpt_lines > 1000 && rcpt_lines < N);
    smtp_client_feed(f->c, MAIL_OK, sizeof MAIL_OK - 1);
    for (size_t i = 0; i < rcpt_lines; i++)
        smtp_client_feed(f->c, RCPT_OK, sizeof RCPT_OK - 1);
    assert_false(smtp_client_done(f->c)); /* waiting for the output to drain */
    smtp_client_feed(f->c, RCPT_OK, sizeof RCPT_OK - 1);
    assert_true(smtp_client_done(f->c));
    char want[128];
    snprintf(want, sizeof want, "rcpt %zu: 250 2.1.5\nmessage: PROTOCOL n=%d\nclosed: PROTOCOL\n",
             rcpt_lines - 1, N);
    const char *ev = text_str(&f->events);
    assert_string_equal(ev + strlen(ev) - strlen(want), want);
    fake_close(f);
    /* exactly as many recipients as fill the window: every reply is in, DATA waits for the
     * output to drain */
    m.n_rcpts = rcpt_lines;
    f = fake_open(&su);
    smtp_client_feed(f->c, GREET EHLO_ALL MAIL_OK, sizeof GREET EHLO_ALL MAIL_OK - 1);
    for (size_t i = 0; i < rcpt_lines; i++)
        smtp_client_feed(f->c, RCPT_OK, sizeof RCPT_OK - 1);
    p = smtp_client_output(f->c, &n);
    assert_null(memmem(p, n, DATA_C, sizeof DATA_C - 1));
    drain(f);
    smtp_client_feed(f->c, DATA_GO QUEUED BYE, sizeof DATA_GO QUEUED BYE - 1);
    drain(f);
    const char *out = text_str(&f->out);
    assert_string_equal(out + strlen(out) - sizeof DATA_C BODY_C QUIT_C + 1, DATA_C BODY_C QUIT_C);
    snprintf(want, sizeof want, "message: 250 2.0.0 n=%zu\nclosed: 221 2.0.0\n", rcpt_lines);
    ev = text_str(&f->events);
    assert_string_equal(ev + strlen(ev) - strlen(want), want);
    fake_close(f);
    free(r);
}

/* ---- LMTP (RFC 2033) ---------------------------------------------------------------------- */

#define LHLO_C "LHLO " HELO_NAME "\r\n"

static struct setup setup_lmtp(const struct smtp_client_message *msg)
{
    struct setup su = setup_with(msg);
    su.opts.lmtp = true;
    return su;
}

/* §4.1: LHLO, not EHLO; one message to one recipient reads one reply after the data. */
static void test_lmtp_one(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    struct setup su = setup_lmtp(&m);
    run(&su, GREET EHLO_ALL ONE_OK_S, LHLO_C ONE_OK_C,
        READY_ALL "rcpt 0: 250 2.1.5\n"
                  "data rcpt 0: 250 2.0.0\n"
                  "message: 250 2.0.0 n=1\n"
                  "closed: 221 2.0.0\n");
}

/* §4.2: one reply per accepted recipient, in RCPT order, refused recipients skipped; a
 * mailbox-full refusal of one does not touch the others. */
static void test_lmtp_per_recipient(void **state)
{
    (void)state;
    struct smtp_client_message m = message(4);
    struct setup su = setup_lmtp(&m);
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK "550 5.1.1 no such user\r\n" RCPT_OK RCPT_OK DATA_GO
             "250 2.0.0 r0 Saved\r\n" "552 5.2.2 Mailbox is full\r\n"
             "452 4.2.2 Quota exceeded\r\n" BYE,
        LHLO_C MAIL_C RCPT_C(0) RCPT_C(1) RCPT_C(2) RCPT_C(3) DATA_C BODY_C QUIT_C,
        READY_ALL "rcpt 0: 250 2.1.5\n"
                  "rcpt 1: 550 5.1.1\n"
                  "rcpt 2: 250 2.1.5\n"
                  "rcpt 3: 250 2.1.5\n"
                  "data rcpt 0: 250 2.0.0\n"
                  "data rcpt 2: 552 5.2.2\n"
                  "data rcpt 3: 452 4.2.2\n"
                  "message: 250 2.0.0 n=4\n"
                  "closed: 221 2.0.0\n");
    /* every one refused: the message's result is the last refusal */
    struct smtp_client_message m2 = message(2);
    su = setup_lmtp(&m2);
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK RCPT_OK DATA_GO "452 4.2.2 Quota exceeded\r\n"
             "552 5.2.2 Mailbox is full\r\n" BYE,
        LHLO_C MAIL_C RCPT_C(0) RCPT_C(1) DATA_C BODY_C QUIT_C,
        READY_ALL "rcpt 0: 250 2.1.5\n"
                  "rcpt 1: 250 2.1.5\n"
                  "data rcpt 0: 452 4.2.2\n"
                  "data rcpt 1: 552 5.2.2\n"
                  "message: 552 5.2.2 n=2\n"
                  "closed: 221 2.0.0\n");
}

/* The connection drops after some of the replies: those without one get the loss, never the
 * 2xx of another recipient (they would count as delivered). */
static void test_lmtp_cut_short(void **state)
{
    (void)state;
    struct smtp_client_message m = message(2);
    struct setup su = setup_lmtp(&m);
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK RCPT_OK DATA_GO "250 2.0.0 Saved\r\n\f<lost>",
        LHLO_C MAIL_C RCPT_C(0) RCPT_C(1) DATA_C BODY_C,
        READY_ALL "rcpt 0: 250 2.1.5\n"
                  "rcpt 1: 250 2.1.5\n"
                  "data rcpt 0: 250 2.0.0\n"
                  "message: CLOSED n=2\n"
                  "closed: CLOSED\n");
    /* a 3xx or a 421 among them */
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK RCPT_OK DATA_GO "250 2.0.0 Saved\r\n354 what\r\n",
        LHLO_C MAIL_C RCPT_C(0) RCPT_C(1) DATA_C BODY_C,
        READY_ALL "rcpt 0: 250 2.1.5\n"
                  "rcpt 1: 250 2.1.5\n"
                  "data rcpt 0: 250 2.0.0\n"
                  "message: PROTOCOL n=2\n"
                  "closed: PROTOCOL\n");
    run(&su, GREET EHLO_ALL MAIL_OK RCPT_OK RCPT_OK DATA_GO "421 4.3.2 going down\r\n",
        LHLO_C MAIL_C RCPT_C(0) RCPT_C(1) DATA_C BODY_C,
        READY_ALL "rcpt 0: 250 2.1.5\n"
                  "rcpt 1: 250 2.1.5\n"
                  "message: 421 4.3.2 n=2\n"
                  "closed: 421 4.3.2\n");
}

/* §4.1: LMTP has no HELO: a refused LHLO ends the session. Two messages on one connection
 * each read their own replies. */
static void test_lmtp_lhlo_refused_and_two(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    struct setup su = setup_lmtp(&m);
    run(&su, GREET "500 5.5.1 unknown command\r\n", LHLO_C QUIT_C, "closed: 500 5.5.1\n");
    struct setup su2 = setup_lmtp(NULL);
    su2.idle = true;
    struct fake *f = play(&su2, GREET EHLO_MIN, SPLIT_WHOLE, 1, 0);
    for (int k = 0; k < 2; k++) {
        f->sends++;
        smtp_client_send(f->c, &m, 0);
        drain(f);
        feed_reply(f, MAIL_OK RCPT_OK DATA_GO);
        feed_reply(f, k == 0 ? "452 4.2.2 full\r\n" : "250 2.0.0 ok\r\n");
    }
    assert_string_equal(text_str(&f->events), READY_MIN "rcpt 0: 250 2.1.5\n"
                                              "data rcpt 0: 452 4.2.2\n"
                                              "message: 452 4.2.2 n=1\n"
                                              "rcpt 0: 250 2.1.5\n"
                                              "data rcpt 0: 250 2.0.0\n"
                                              "message: 250 2.0.0 n=1\n");
    fake_close(f);
}

static void test_strerror(void **state)
{
    (void)state;
    for (int f = SMTP_CLIENT_REPLY; f <= SMTP_CLIENT_CLOSED; f++) {
        const char *s = smtp_client_strerror((enum smtp_client_failure)f);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown client failure");
    }
    assert_string_equal(smtp_client_strerror((enum smtp_client_failure)99), "unknown client failure");
}

/* ---- CHUNKING: BDAT instead of DATA (RFC 3030) ------------------------------------------------ */

#define EHLO_CHUNKING "250-mx.example.test\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n"
#define READY_CHUNKING "ready ESMTP PIPELINING 8BITMIME CHUNKING\n"
#define EHLO_CHUNKING_ONLY "250-mx.example.test\r\n250 CHUNKING\r\n"
#define READY_CHUNKING_ONLY "ready ESMTP CHUNKING\n"
#define CHUNK_OK "250 2.0.0 Ok: queued\r\n"
#define ONE_OK_EV "rcpt 0: 250 2.1.5\nmessage: 250 2.0.0 n=1\nclosed: 221 2.0.0\n"

/* A message that fits in one chunk goes as BDAT <size> LAST, pipelined with MAIL and RCPT
 * (RFC 3030 §4.2), or one command per reply without PIPELINING. */
static void test_bdat_one_chunk(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    struct setup su = setup_with(&m);
    run(&su, GREET EHLO_CHUNKING MAIL_OK RCPT_OK CHUNK_OK BYE,
        EHLO_C MAIL_MIN_C RCPT_C(0) "BDAT 4 LAST\r\nhi\r\n" QUIT_C, READY_CHUNKING ONE_OK_EV);
    run(&su, GREET EHLO_CHUNKING_ONLY MAIL_OK RCPT_OK CHUNK_OK BYE,
        EHLO_C MAIL_MIN_C RCPT_C(0) "BDAT 4 LAST\r\nhi\r\n" QUIT_C, READY_CHUNKING_ONLY ONE_OK_EV);
    m.eightbit = true; /* 8BITMIME mail needs no BINARYMIME to go in chunks */
    m.body = "caf\xc3\xa9\r\n";
    m.body_len = 7;
    run(&su, GREET EHLO_CHUNKING MAIL_OK RCPT_OK CHUNK_OK BYE,
        EHLO_C "MAIL FROM:<s@src.test> BODY=8BITMIME\r\n" RCPT_C(0)
            "BDAT 7 LAST\r\ncaf\xc3\xa9\r\n" QUIT_C,
        READY_CHUNKING ONE_OK_EV);
}

/* Without PIPELINING the session waits for each reply: nothing of BDAT goes before the RCPT's
 * answer, and a refused MAIL gets no RCPT nor chunk. */
static void test_bdat_one_by_one(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    struct setup su = setup_with(&m);
    struct fake *f = play(&su, GREET EHLO_CHUNKING_ONLY MAIL_OK, SPLIT_WHOLE, 1, 0);
    assert_string_equal(text_str(&f->out), EHLO_C MAIL_MIN_C RCPT_C(0));
    fake_close(f);
    run(&su, GREET EHLO_CHUNKING_ONLY "451 4.3.0 later\r\n" RSET_OK BYE,
        EHLO_C MAIL_MIN_C RSET_C QUIT_C,
        READY_CHUNKING_ONLY "message: 451 4.3.0 n=1\nclosed: 221 2.0.0\n");
}

/* The bytes in chunks are the lines DATA would carry, without dot-stuffing: a line starting with
 * '.' stays as it is, bare CR and LF become CRLF, a final CRLF is added when missing. */
static void test_bdat_line_ends(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    struct setup su = setup_with(&m);
    m.body = ".\r\n..x\nend";
    m.body_len = strlen(m.body);
    run(&su, GREET EHLO_CHUNKING MAIL_OK RCPT_OK CHUNK_OK BYE,
        EHLO_C MAIL_MIN_C RCPT_C(0) "BDAT 13 LAST\r\n.\r\n..x\r\nend\r\n" QUIT_C,
        READY_CHUNKING ONE_OK_EV);
    m.body = "";
    m.body_len = 0;
    run(&su, GREET EHLO_CHUNKING MAIL_OK RCPT_OK CHUNK_OK BYE,
        EHLO_C MAIL_MIN_C RCPT_C(0) "BDAT 0 LAST\r\n" QUIT_C, READY_CHUNKING ONE_OK_EV);
}

/* The reply to the LAST chunk is the message's: a 4xx defers it, a 5xx fails it, RSET follows
 * either; 421 ends the session; a 354 is no reply to BDAT. */
static void test_bdat_replies(void **state)
{
    (void)state;
    static const struct {
        const char *reply, *event, *tail_out, *tail_ev;
    } cases[] = {
        {"451 4.3.0 Error\r\n" RSET_OK, "451 4.3.0", RSET_C QUIT_C, "closed: 221 2.0.0\n"},
        {"552 5.3.4 Message too big\r\n" RSET_OK, "552 5.3.4", RSET_C QUIT_C,
         "closed: 221 2.0.0\n"},
        {"554 5.7.1 Spam\r\n" RSET_OK, "554 5.7.1", RSET_C QUIT_C, "closed: 221 2.0.0\n"},
        {"421 4.4.2 timeout\r\n", "421 4.4.2", "", "closed: 421 4.4.2\n"},
        {"354 go on\r\n", "PROTOCOL", "", "closed: PROTOCOL\n"},
    };
    struct smtp_client_message m = message(1);
    struct setup su = setup_with(&m);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char server[512], out[512], ev[512];
        snprintf(server, sizeof server, GREET EHLO_CHUNKING MAIL_OK RCPT_OK "%s" BYE,
                 cases[i].reply);
        snprintf(out, sizeof out, EHLO_C MAIL_MIN_C RCPT_C(0) "BDAT 4 LAST\r\nhi\r\n%s",
                 cases[i].tail_out);
        snprintf(ev, sizeof ev, READY_CHUNKING "rcpt 0: 250 2.1.5\nmessage: %s n=1\n%s",
                 cases[i].event, cases[i].tail_ev);
        run(&su, server, out, ev);
    }
}

/* Every recipient refused: the pipelined chunk is answered with an error (or, by a careless
 * server, taken): no recipient got the message either way. A refused MAIL keeps its reply. */
static void test_bdat_no_recipient(void **state)
{
    (void)state;
    struct smtp_client_message m = message(2);
    struct setup su = setup_with(&m);
    const char *out = EHLO_C MAIL_MIN_C RCPT_C(0) RCPT_C(1) "BDAT 4 LAST\r\nhi\r\n" RSET_C QUIT_C;
    run(&su, GREET EHLO_CHUNKING MAIL_OK "550 5.1.1 no\r\n" "550 5.1.1 no\r\n"
             "554 5.5.1 no valid recipients\r\n" RSET_OK BYE,
        out, READY_CHUNKING "rcpt 0: 550 5.1.1\nrcpt 1: 550 5.1.1\n"
                            "message: NO_RECIPIENTS n=2\nclosed: 221 2.0.0\n");
    run(&su, GREET EHLO_CHUNKING MAIL_OK "550 5.1.1 no\r\n" "550 5.1.1 no\r\n" CHUNK_OK RSET_OK BYE,
        out, READY_CHUNKING "rcpt 0: 550 5.1.1\nrcpt 1: 550 5.1.1\n"
                            "message: NO_RECIPIENTS n=2\nclosed: 221 2.0.0\n");
    run(&su, GREET EHLO_CHUNKING "550 5.7.1 sender refused\r\n" "503 5.5.1 need MAIL\r\n"
             "503 5.5.1 need MAIL\r\n" "503 5.5.1 need MAIL\r\n" RSET_OK BYE,
        out, READY_CHUNKING "message: 550 5.7.1 n=2\nclosed: 221 2.0.0\n");
    /* one of two accepted: the chunk's reply is the message's */
    run(&su, GREET EHLO_CHUNKING MAIL_OK "550 5.1.1 no\r\n" RCPT_OK CHUNK_OK BYE,
        EHLO_C MAIL_MIN_C RCPT_C(0) RCPT_C(1) "BDAT 4 LAST\r\nhi\r\n" QUIT_C,
        READY_CHUNKING "rcpt 0: 550 5.1.1\nrcpt 1: 250 2.1.5\n"
                       "message: 250 2.0.0 n=2\nclosed: 221 2.0.0\n");
}

/* Reads the BDAT chunks in out (after the commands before them): their data joined into data,
 * their count returned; each is at most 64 KiB and only the last says LAST. */
static size_t read_chunks(const struct text *out, size_t from, struct text *data)
{
    size_t pos = from, n = 0;
    bool last = false;
    while (!last) {
        assert_true(pos + 5 <= out->len);
        assert_memory_equal(out->p + pos, "BDAT ", 5);
        char *end;
        unsigned long long size = strtoull(out->p + pos + 5, &end, 10);
        last = strncmp(end, " LAST\r\n", 7) == 0;
        size_t line = (size_t)(end - (out->p + pos)) + (last ? 7 : 2);
        assert_true(last || strncmp(end, "\r\n", 2) == 0);
        assert_true(size <= 64 * 1024);
        pos += line;
        assert_true(pos + size <= out->len);
        text_add(data, out->p + pos, (size_t)size);
        pos += (size_t)size;
        n++;
    }
    assert_int_equal(out->len - pos, sizeof QUIT_C - 1); /* then QUIT only */
    return n;
}

/* A large message goes in several chunks, the last with LAST; drained in several ways the
 * output never holds much more than a chunk, and the bytes are the reference's. */
static void test_bdat_many_chunks(void **state)
{
    (void)state;
    size_t len = 300000;
    char *body = malloc(len);
    assert_non_null(body);
    for (size_t i = 0; i < len; i++)
        body[i] = i % 70 == 69 ? '\n' : i % 70 == 0 ? '.' : (char)('a' + i % 26);
    struct smtp_client_message m = message(1);
    m.body = body;
    m.body_len = len;
    struct text want = {0};
    reference_lines(body, len, false, &want);
    const size_t drains[] = {0, 4093, 65536 + 7};
    for (size_t d = 0; d < 3; d++) {
        struct setup su = setup_with(&m);
        su.drain = drains[d];
        struct fake *f = play(&su, GREET EHLO_CHUNKING MAIL_OK RCPT_OK "250 2.0.0 chunk\r\n"
                                   "250 2.0.0 chunk\r\n" "250 2.0.0 chunk\r\n"
                                   "250 2.0.0 chunk\r\n" CHUNK_OK BYE,
                              SPLIT_RANDOM, 7, 0);
        struct text data = {0};
        size_t head = sizeof EHLO_C MAIL_MIN_C RCPT_C(0) - 1;
        size_t chunks = read_chunks(&f->out, head, &data);
        assert_int_equal(want.len, 304287); /* a CRLF for each of the 4 285 LFs, and a last */
        assert_int_equal(chunks, 5);         /* four full chunks and the LAST */
        assert_int_equal(data.len, want.len);
        assert_memory_equal(data.p, want.p, want.len);
        assert_string_equal(text_str(&f->events), READY_CHUNKING ONE_OK_EV);
        assert_true(f->max_pending <= 2 * 64 * 1024 + 64);
        free(data.p);
        fake_close(f);
    }
    free(want.p);
    free(body);
}

/* Short bodies of every shape: one LAST chunk holding the reference lines, whatever the body
 * ends with (the dot-stuffing set, without stuffing). */
static void test_bdat_bodies(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "", "a", ".", "\r", "\n", "\r\n", ".\r\n", "ab", "a\n", "a\r", "..x\r\n",
        "no final line break", "bare\nLF\n.dot after bare LF\n", "\r\n.\r\n", "x\r\r\n.\r\n",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        size_t len = strlen(bodies[i]);
        struct smtp_client_message m = message_of(bodies[i], len);
        struct setup su = setup_with(&m);
        struct text want = {0}, data = {0};
        reference_lines(bodies[i], len, false, &want);
        struct fake *f = play(&su, GREET EHLO_CHUNKING MAIL_OK RCPT_OK CHUNK_OK BYE,
                              SPLIT_WHOLE, 1, 0);
        size_t head = sizeof EHLO_C MAIL_MIN_C RCPT_C(0) - 1;
        assert_int_equal(read_chunks(&f->out, head, &data), 1);
        assert_int_equal(data.len, want.len);
        if (want.len > 0)
            assert_memory_equal(data.p, want.p, want.len);
        assert_string_equal(text_str(&f->events), READY_CHUNKING ONE_OK_EV);
        free(want.p);
        free(data.p);
        fake_close(f);
    }
}

/* RFC 3030 §2: after a 4xx/5xx to a chunk no further chunk goes (here without PIPELINING, where
 * each waits for the reply before it). */
static void test_bdat_refused_chunk_stops(void **state)
{
    (void)state;
    size_t len = 100000;
    char *body = x_body(len);
    struct smtp_client_message m = message_of(body, len);
    struct setup su = setup_with(&m);
    struct fake *f = play(&su, GREET EHLO_CHUNKING_ONLY MAIL_OK RCPT_OK
                               "552 5.3.4 too big\r\n" RSET_OK BYE, SPLIT_WHOLE, 1, 0);
    size_t head = sizeof EHLO_C MAIL_MIN_C RCPT_C(0) - 1;
    assert_memory_equal(f->out.p + head, "BDAT 65534\r\n", 12);
    size_t first = head + 12 + 65534;
    assert_int_equal(f->out.len, first + sizeof RSET_C QUIT_C - 1);
    assert_memory_equal(f->out.p + first, RSET_C QUIT_C, sizeof RSET_C QUIT_C - 1);
    assert_string_equal(text_str(&f->events), READY_CHUNKING_ONLY "rcpt 0: 250 2.1.5\n"
                                              "message: 552 5.3.4 n=1\nclosed: 221 2.0.0\n");
    fake_close(f);
    free(body);
}

/* The data timeout applies once the LAST chunk is out, until its reply. */
static void test_bdat_awaiting_data_end(void **state)
{
    (void)state;
    struct smtp_client_message m = message(1);
    struct setup su = setup_with(&m);
    struct fake *f = play(&su, GREET EHLO_CHUNKING_ONLY MAIL_OK, SPLIT_WHOLE, 1, 0);
    assert_false(smtp_client_awaiting_data_end(f->c));
    smtp_client_feed(f->c, RCPT_OK, sizeof RCPT_OK - 1);
    assert_false(smtp_client_awaiting_data_end(f->c)); /* the chunk is not out yet */
    drain(f);
    assert_true(smtp_client_awaiting_data_end(f->c));
    smtp_client_feed(f->c, CHUNK_OK, sizeof CHUNK_OK - 1);
    assert_false(smtp_client_awaiting_data_end(f->c));
    fake_close(f);
}

/* Two messages on one connection in chunks; LMTP keeps DATA even when CHUNKING is offered. */
static void test_bdat_two_messages_and_lmtp(void **state)
{
    (void)state;
    struct smtp_client_message m = message(2);
    struct setup su = setup_with(&m);
    su.opts.max_rcpts = 1;
    run(&su, GREET EHLO_CHUNKING MAIL_OK RCPT_OK CHUNK_OK MAIL_OK RCPT_OK CHUNK_OK BYE,
        EHLO_C MAIL_MIN_C RCPT_C(0) "BDAT 4 LAST\r\nhi\r\n" MAIL_MIN_C RCPT_C(1)
            "BDAT 4 LAST\r\nhi\r\n" QUIT_C,
        READY_CHUNKING "rcpt 0: 250 2.1.5\nmessage: 250 2.0.0 n=1\n"
                       "rcpt 1: 250 2.1.5\nmessage: 250 2.0.0 n=2\nclosed: 221 2.0.0\n");
    su.opts.max_rcpts = 0;
    su.opts.lmtp = true;
    m.n_rcpts = 1;
    run(&su, GREET EHLO_CHUNKING MAIL_OK RCPT_OK DATA_GO QUEUED BYE,
        "LHLO " HELO_NAME "\r\n" MAIL_MIN_C RCPT_C(0) DATA_C BODY_C QUIT_C,
        READY_CHUNKING "rcpt 0: 250 2.1.5\ndata rcpt 0: 250 2.0.0\nmessage: 250 2.0.0 n=1\n"
                       "closed: 221 2.0.0\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_teardown(name, teardown)
        T(test_state_trace),
        T(test_greeting_220),
        T(test_greeting_multiline),
        T(test_greeting_421),
        T(test_greeting_554),
        T(test_greeting_450),
        T(test_greeting_not_220),
        T(test_ehlo_500_helo),
        T(test_helo_refused),
        T(test_ehlo_failures),
        T(test_starttls_opportunistic),
        T(test_starttls_refused_opportunistic),
        T(test_starttls_not_offered),
        T(test_starttls_required),
        T(test_starttls_not_wanted),
        T(test_starttls_injection_dropped),
        T(test_starttls_handshake_later),
        T(test_starttls_handshake_in_callback),
        T(test_starttls_timeout_in_handshake),
        T(test_auth_plain_235),
        T(test_auth_plain_refused),
        T(test_auth_login),
        T(test_auth_unavailable),
        T(test_auth_after_starttls),
        T(test_new_refuses_bad_opts),
        T(test_auth_longest_credentials),
        T(test_mail_refused_pipelined),
        T(test_mail_refused_one_by_one),
        T(test_mail_421),
        T(test_rset_refused),
        T(test_rcpt_mixed),
        T(test_rcpt_452_after_accepted),
        T(test_rcpt_452_wording),
        T(test_rcpt_452_first),
        T(test_rcpt_421_mid_batch),
        T(test_rcpt_all_refused),
        T(test_rcpt_all_refused_data_accepted),
        T(test_rcpt_3xx_is_protocol_error),
        T(test_rcpt_bad_envelope),
        T(test_sender_bad_envelope),
        T(test_data_refused),
        T(test_final_replies),
        T(test_two_messages),
        T(test_size_too_big),
        T(test_smtputf8),
        T(test_8bitmime),
        T(test_dsn_params),
        T(test_null_sender),
        T(test_limits_rcptmax),
        T(test_dot_stuffing),
        T(test_dot_stuffing_transcript),
        T(test_dot_at_chunk_edges),
        T(test_body_3mb),
        T(test_awaiting_data_end),
        T(test_reply_during_data),
        T(test_malformed_replies),
        T(test_malformed_long),
        T(test_malformed_in_transaction),
        T(test_unexpected_reply_when_idle),
        T(test_timeout_and_lost),
        T(test_quit_replies),
        T(test_api_misuse),
        T(test_split_every_position),
        T(test_pipelining_same_outcomes),
        T(test_pipelining_many_recipients),
        T(test_pipelining_window),
        T(test_lmtp_one),
        T(test_lmtp_per_recipient),
        T(test_lmtp_cut_short),
        T(test_lmtp_lhlo_refused_and_two),
        T(test_strerror),
        T(test_bdat_one_chunk),
        T(test_bdat_one_by_one),
        T(test_bdat_line_ends),
        T(test_bdat_replies),
        T(test_bdat_no_recipient),
        T(test_bdat_many_chunks),
        T(test_bdat_bodies),
        T(test_bdat_refused_chunk_stops),
        T(test_bdat_awaiting_data_end),
        T(test_bdat_two_messages_and_lmtp),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
