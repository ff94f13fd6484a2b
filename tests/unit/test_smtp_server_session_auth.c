/* tests/unit/test_smtp_server_session_auth.c — transcripts for STARTTLS (RFC 3207) and AUTH
 * (RFC 4954 with SASL PLAIN, RFC 4616, and LOGIN) in the sans-I/O server session
 * (smtp/server_session.c): client bytes in, replies, callback events and logged lines out. */
#include "unit.h"
#include "transcript.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/server_session.h"

#define HOST "mx.example.test"

#define GREETING "220 " HOST " ESMTP clearmta ready\r\n"
#define EHLO_IN "EHLO client.example.test\r\n"
/* With opts.ext = 0 the EHLO reply is short; STARTTLS and AUTH follow the fixed keywords. */
#define EHLO_HEAD "250-" HOST "\r\n250-PIPELINING\r\n"
/* LIMITS (RFC 9422) ends every EHLO reply: max_recipients is always set. */
#define EHLO_LIMITS "250 LIMITS RCPTMAX=100\r\n"
#define EHLO_PLAIN EHLO_HEAD "250-ENHANCEDSTATUSCODES\r\n" EHLO_LIMITS
#define EHLO_TLS EHLO_HEAD "250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n" EHLO_LIMITS
#define EHLO_AUTH EHLO_HEAD "250-ENHANCEDSTATUSCODES\r\n250-AUTH PLAIN LOGIN\r\n" EHLO_LIMITS
#define EHLO_TLS_AUTH \
    EHLO_HEAD "250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n" EHLO_LIMITS
#define EHLO_LINE "250 [EHLO client.example.test]\n"

#define OK "250 2.0.0 Ok\r\n"
#define READY_TLS "220 2.0.0 Ready to start TLS\r\n"
#define TLS_ACTIVE "503 5.5.1 Error: TLS already active\r\n"
#define TLS_UNAVAILABLE "454 4.7.0 TLS not available due to temporary reason\r\n"
#define NO_ARGUMENT "501 5.5.4 Syntax error: no argument allowed\r\n"
#define NEED_HELO "503 5.5.1 Error: send HELO/EHLO first\r\n"
#define NEED_MAIL "503 5.5.1 Error: need MAIL command\r\n"
#define SENDER_OK(a) "250 2.1.0 Sender <" a "> OK\r\n"
#define TOO_LONG "500 5.5.2 Error: line too long (the limit is 12288 octets)\r\n"
#define UNKNOWN_AUTH_PARAM "555 5.5.4 Error: unsupported MAIL FROM/RCPT TO parameter: AUTH\r\n"

#define AUTH_OK "235 2.7.0 Authentication successful\r\n"
#define AUTH_FAILED "535 5.7.8 Error: authentication failed: username or password incorrect\r\n"
#define AUTH_REQUIRED "530 5.7.0 Authentication required\r\n"
#define ENCRYPTION_REQUIRED \
    "538 5.7.11 Encryption required for requested authentication mechanism\r\n"
#define AUTH_NOT_ENABLED "503 5.5.1 Error: authentication not enabled\r\n"
#define ALREADY_AUTHENTICATED "503 5.5.1 Error: already authenticated\r\n"
#define AUTH_IN_TRANSACTION "503 5.5.1 Error: AUTH not allowed during a mail transaction\r\n"
#define UNKNOWN_MECHANISM "504 5.5.4 Error: unrecognized authentication mechanism\r\n"
#define BAD_BASE64 "501 5.5.2 Error: cannot decode response (malformed base64)\r\n"
#define CANCELLED "501 5.7.0 Authentication cancelled\r\n"
#define TEMPFAIL "454 4.7.0 Temporary authentication failure, try again later\r\n"
#define TOO_MANY_FAILURES \
    "421 4.7.0 " HOST " Error: too many failed authentication attempts, closing connection\r\n"
#define CHALLENGE_PLAIN "334 \r\n"
#define CHALLENGE_USER "334 VXNlcm5hbWU6\r\n" /* "Username:" */
#define CHALLENGE_PASS "334 UGFzc3dvcmQ6\r\n" /* "Password:" */

/* SASL messages, base64 as clients send them. */
#define PLAIN_ALICE "AGFsaWNlAGFsaWNlLXNlY3JldA=="            /* "\0alice\0alice-secret" */
#define PLAIN_ALICE_WRONG "AGFsaWNlAHdyb25nLXNlY3JldA=="      /* "\0alice\0wrong-secret" */
#define PLAIN_ALICE_AS_BOB "Ym9iAGFsaWNlAGFsaWNlLXNlY3JldA=="  /* "bob\0alice\0alice-secret" */
#define PLAIN_ALICE_AS_ALICE "YWxpY2UAYWxpY2UAYWxpY2Utc2VjcmV0" /* "alice\0alice\0alice-secret" */
#define PLAIN_BOB "AGJvYgBib2Itc2VjcmV0"                      /* "\0bob\0bob-secret" */
#define PLAIN_TEMP "AHRlbXAAdGVtcC1zZWNyZXQ="                 /* "\0temp\0temp-secret" */
#define PLAIN_ANGRY "AGFuZ3J5AHgtc2VjcmV0"                    /* "\0angry\0x-secret" */
#define PLAIN_NO_PASS "AGFsaWNlAA=="                          /* "\0alice\0" */
#define LOGIN_ALICE "YWxpY2U="                                /* "alice" */
#define LOGIN_ALICE_PASS "YWxpY2Utc2VjcmV0"                   /* "alice-secret" */

#define AUTH_ALICE_EV "auth PLAIN authzid=<> user=<alice> pass=<alice-secret>\n"

/* ---- the fake caller ------------------------------------------------------------------- */

#define P_MAIL 0x1u
#define P_AUTH 0x2u

struct script {
    unsigned pending; /* P_* callbacks answer later */
    bool no_resume;   /* the driver never resumes: the test does it by hand */
};

struct fake {
    struct script sc;
    struct smtp_server_opts opts;
    struct smtp_server *s;
    struct text events; /* one line per callback */
    struct text out;    /* reply bytes */
    struct text lines;  /* one "CODE [line]" per on_reply call, the line escaped */
    bool held;
    struct smtp_decision decision;
    const struct smtp_sasl_creds *creds; /* as the auth callback last saw them */
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

static enum smtp_verdict verdict(struct fake *f, unsigned which, const struct smtp_decision *d)
{
    if (!(f->sc.pending & which))
        return SMTP_DECIDED;
    assert_false(f->held);
    f->decision = *d;
    f->held = true;
    return SMTP_PENDING;
}

static void set_detail(struct smtp_decision *d, const char *detail)
{
    size_t n = strlen(detail);
    assert_true(n < sizeof d->detail);
    memcpy(d->detail, detail, n + 1);
}

static enum smtp_verdict fake_mail(void *ctx, const struct smtp_command *cmd,
                                   struct smtp_decision *d)
{
    struct fake *f = ctx;
    event(f, "mail <%s>%s%s", cmd->path.mailbox, cmd->auth[0] ? " auth=" : "", cmd->auth);
    d->reply = REPLY_SENDER_OK;
    set_detail(d, cmd->path.mailbox);
    return verdict(f, P_MAIL, d);
}

static enum smtp_verdict fake_rcpt(void *ctx, const struct smtp_command *cmd,
                                   struct smtp_decision *d)
{
    struct fake *f = ctx;
    event(f, "rcpt <%s>", cmd->path.mailbox);
    d->reply = REPLY_RCPT_OK;
    set_detail(d, cmd->path.mailbox);
    return SMTP_DECIDED;
}

static enum smtp_verdict fake_data_begin(void *ctx, const struct smtp_envelope *env,
                                         struct smtp_decision *d)
{
    struct fake *f = ctx;
    event(f, "data_begin nrcpt=%zu", env->n_rcpts);
    d->reply = REPLY_START_DATA;
    return SMTP_DECIDED;
}

static enum reply_id fake_write(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    (void)p;
    assert_true(n > 0);
    return REPLY_OK;
}

static enum smtp_verdict fake_data_end(void *ctx, struct smtp_decision *d)
{
    event(ctx, "data_end");
    d->reply = REPLY_QUEUED;
    set_detail(d, "QID1");
    return SMTP_DECIDED;
}

static void fake_abort(void *ctx)
{
    event(ctx, "abort");
}

/* alice/alice-secret and bob/bob-secret exist; "temp" meets a broken credential store;
 * "angry" has failed too often (421); every other pair is wrong. */
static enum smtp_verdict fake_auth(void *ctx, const char *mechanism,
                                   const struct smtp_sasl_creds *c, struct smtp_decision *d)
{
    struct fake *f = ctx;
    f->creds = c;
    if (strlen(c->pass) <= 64)
        event(f, "auth %s authzid=<%s> user=<%s> pass=<%s>", mechanism, c->authzid, c->user,
              c->pass);
    else
        event(f, "auth %s authzid=<%s> user=<%s> pass=<%zu octets>", mechanism, c->authzid,
              c->user, strlen(c->pass));
    char want[sizeof c->user + 8];
    snprintf(want, sizeof want, "%s-secret", c->user);
    if (strcmp(c->user, "temp") == 0) {
        d->reply = REPLY_AUTH_TEMPFAIL;
    } else if (strcmp(c->user, "angry") == 0) {
        d->reply = REPLY_AUTH_TOO_MANY_FAILURES;
        set_detail(d, HOST);
    } else if ((strcmp(c->user, "alice") == 0 || strcmp(c->user, "bob") == 0) &&
               strcmp(c->pass, want) == 0) {
        d->reply = REPLY_AUTH_OK;
    } else {
        d->reply = REPLY_AUTH_FAILED;
    }
    return verdict(f, P_AUTH, d);
}

/* Logs what a log line would show: the code and the command line, control bytes escaped. */
static void fake_on_reply(void *ctx, const char *line, enum reply_id id, const char *detail)
{
    struct fake *f = ctx;
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%d [", reply_row_get(id)->code);
    assert_true(n > 0);
    text_add(&f->lines, buf, (size_t)n);
    assert_non_null(detail);
    for (const char *c = line; *c; c++) {
        unsigned char ch = (unsigned char)*c;
        if (ch >= 0x20 && ch < 0x7f) {
            text_add(&f->lines, c, 1);
        } else {
            n = snprintf(buf, sizeof buf, "\\x%02x", ch);
            text_add(&f->lines, buf, (size_t)n);
        }
    }
    text_add(&f->lines, "]\n", 2);
}

static const struct smtp_server_callbacks fake_cb = {
    .mail = fake_mail,
    .rcpt = fake_rcpt,
    .data_begin = fake_data_begin,
    .data_write = fake_write,
    .data_end = fake_data_end,
    .data_abort = fake_abort,
    .auth = fake_auth,
    .on_reply = fake_on_reply,
};

/* The MX profile: STARTTLS offered, AUTH never. */
static struct smtp_server_opts mx_opts(void)
{
    return (struct smtp_server_opts){
        .hostname = HOST,
        .max_message_size = 10485760,
        .max_recipients = 100,
        .max_errors = 20,
        .ext = 0,
        .offer_starttls = true,
        .tls_available = true,
        .auth = SMTP_AUTH_NEVER,
    };
}

/* The submission profile: STARTTLS, then AUTH, required before MAIL. */
static struct smtp_server_opts submission_opts(void)
{
    struct smtp_server_opts o = mx_opts();
    o.auth = SMTP_AUTH_AFTER_TLS;
    o.require_auth = true;
    return o;
}

/* AUTH offered in plaintext too, not required. */
static struct smtp_server_opts always_opts(void)
{
    struct smtp_server_opts o = mx_opts();
    o.auth = SMTP_AUTH_ALWAYS;
    return o;
}

/* ---- the driver ------------------------------------------------------------------------ */

static void drain(struct fake *f)
{
    size_t n;
    const char *p = smtp_server_output(f->s, &n);
    text_add(&f->out, p, n);
    smtp_server_consume_output(f->s, n);
}

static void auto_resume(struct fake *f)
{
    while (f->held && !f->sc.no_resume) {
        f->held = false;
        struct smtp_decision d = f->decision;
        smtp_server_resume(f->s, &d);
        drain(f);
    }
}

/* Sessions still open when a test fails (cmocka jumps out of it) are closed by teardown. */
static struct fake *live[4];

/* implicit_tls: TLS is up from the start, as on an implicit-TLS listener. */
static struct fake *fake_open(const struct script *sc, const struct smtp_server_opts *opts,
                              bool implicit_tls)
{
    struct fake *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->sc = *sc;
    f->opts = *opts;
    f->s = smtp_server_new(&f->opts, &fake_cb, f);
    assert_non_null(f->s);
    smtp_server_start(f->s);
    drain(f);
    if (implicit_tls)
        smtp_server_tls_started(f->s);
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++) {
        if (!live[i]) {
            live[i] = f;
            return f;
        }
    }
    fail_msg("too many sessions open at once");
    return NULL;
}

static void fake_close(struct fake *f)
{
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
        if (live[i] == f)
            live[i] = NULL;
    smtp_server_free(f->s);
    free(f->events.p);
    free(f->out.p);
    free(f->lines.p);
    free(f);
}

enum split { SPLIT_WHOLE, SPLIT_OCTETS, SPLIT_RANDOM };

/* Feeds len bytes as a network reader would: never more than input_room, resuming held
 * decisions after each piece. A transcript fed this way must not go on past STARTTLS, whose
 * trailing bytes depend on the split by design. */
static void feed_split(struct fake *f, const char *in, size_t len, enum split mode, uint32_t seed)
{
    uint32_t rnd = seed ? seed : 1;
    size_t pos = 0;
    while (pos < len && !smtp_server_closing(f->s)) {
        size_t piece = len - pos;
        if (mode == SPLIT_OCTETS)
            piece = 1;
        else if (mode == SPLIT_RANDOM)
            piece = 1 + next_random(&rnd) % 97;
        if (piece > len - pos)
            piece = len - pos;
        size_t room = smtp_server_input_room(f->s);
        if (room == 0) {
            if (smtp_server_wants_tls(f->s))
                fail_msg("input follows STARTTLS in a split transcript");
            assert_true(f->held && !f->sc.no_resume);
            auto_resume(f);
            continue;
        }
        if (piece > room)
            piece = room;
        smtp_server_feed(f->s, in + pos, piece);
        pos += piece;
        drain(f);
        auto_resume(f);
    }
}

static void feed(struct fake *f, const char *in)
{
    feed_split(f, in, strlen(in), SPLIT_WHOLE, 0);
}

/* The TLS handshake as the caller runs it once wants_tls says so: no input is taken before. */
static void handshake(struct fake *f)
{
    assert_true(smtp_server_wants_tls(f->s));
    assert_int_equal(smtp_server_input_room(f->s), 0);
    size_t before = f->out.len;
    smtp_server_tls_started(f->s);
    drain(f);
    assert_int_equal(f->out.len, before); /* nothing is answered on its own */
    assert_true(smtp_server_tls(f->s));
    assert_false(smtp_server_wants_tls(f->s));
    assert_true(smtp_server_input_room(f->s) > 0);
}

static void print_escaped(const char *label, const char *s, size_t n)
{
    fprintf(stderr, "%s: \"", label);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n' && i > 0 && s[i - 1] == '\r')
            fprintf(stderr, "\\n\"\n    \"");
        else if (c == '\n')
            fprintf(stderr, "\\n\"\n    \"");
        else if (c == '\r')
            fprintf(stderr, "\\r");
        else if (c >= 0x20 && c < 0x7f)
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
    fprintf(stderr, "\"\n");
}

static void expect_bytes(const char *what, const char *run, const char *got, size_t got_len,
                         const char *want, size_t want_len)
{
    if (got_len == want_len && memcmp(got, want, got_len) == 0)
        return;
    fprintf(stderr, "%s differs (%s)\n", what, run);
    print_escaped("  want", want, want_len);
    print_escaped("  got ", got, got_len);
    fail_msg("%s differs (%s)", what, run);
}

static void expect_text(const char *what, struct text *t, const char *want)
{
    expect_bytes(what, "by hand", text_str(t), t->len, want, strlen(want));
}

/* ---- transcripts ----------------------------------------------------------------------- */

struct transcript {
    struct script sc;
    const struct smtp_server_opts *opts;
    bool implicit_tls;  /* TLS is up from the start */
    const char *in;
    size_t in_len;      /* 0: strlen(in) */
    const char *out;    /* every reply, greeting included */
    const char *events; /* NULL: not checked */
    const char *lines;  /* on_reply log after the greeting; NULL: not checked */
    const char *user;   /* smtp_server_auth_user at the end; NULL: not authenticated */
    bool closing;       /* the session must be closing at the end */
};

static void run_one(const struct transcript *t, enum split mode, uint32_t seed)
{
    char run[48];
    static const char *const names[] = {"whole", "octets", "random"};
    snprintf(run, sizeof run, "%s, seed %u", names[mode], (unsigned)seed);
    struct fake *f = fake_open(&t->sc, t->opts, t->implicit_tls);
    size_t in_len = t->in_len ? t->in_len : strlen(t->in);
    feed_split(f, t->in, in_len, mode, seed);

    expect_bytes("replies", run, text_str(&f->out), f->out.len, t->out, strlen(t->out));
    if (t->events)
        expect_bytes("events", run, text_str(&f->events), f->events.len, t->events,
                     strlen(t->events));
    const char *lines = text_str(&f->lines);
    static const char greeting_line[] = "220 []\n";
    assert_true(strncmp(lines, greeting_line, sizeof greeting_line - 1) == 0);
    if (t->lines)
        expect_bytes("on_reply lines", run, lines + sizeof greeting_line - 1,
                     f->lines.len - (sizeof greeting_line - 1), t->lines, strlen(t->lines));
    if (strstr(lines, "secret") || strstr(lines, "c2VjcmV0") || strstr(lines, "NlY3JldA"))
        fail_msg("a password reached on_reply (%s): %s", run, lines);
    if (t->user) {
        assert_non_null(smtp_server_auth_user(f->s));
        assert_string_equal(smtp_server_auth_user(f->s), t->user);
    } else {
        assert_null(smtp_server_auth_user(f->s));
    }
    assert_int_equal(smtp_server_closing(f->s), t->closing);
    fake_close(f);
}

/* Replays the transcript whole, octet by octet and in eight random splits. */
static void check(const struct transcript *t)
{
    run_one(t, SPLIT_WHOLE, 0);
    run_one(t, SPLIT_OCTETS, 0);
    for (uint32_t seed = 1; seed <= 8; seed++)
        run_one(t, SPLIT_RANDOM, seed * 2654435761u);
}

/* Inputs built at run time; teardown frees them even when a test fails. */
static char *built[4];

/* A buffer of n copies of fill between head and tail, for the line-limit cases. */
static char *build(const char *head, char fill, size_t n, const char *tail, size_t *len)
{
    size_t h = strlen(head), t = strlen(tail), slot = 0;
    while (slot < sizeof built / sizeof built[0] && built[slot])
        slot++;
    assert_true(slot < sizeof built / sizeof built[0]);
    char *p = malloc(h + n + t + 1);
    assert_non_null(p);
    built[slot] = p;
    memcpy(p, head, h);
    memset(p + h, fill, n);
    memcpy(p + h + n, tail, t + 1);
    *len = h + n + t;
    return p;
}

/* ---- EHLO keywords ------------------------------------------------------------------------ */

static void test_ehlo_lists_starttls_when_offered_and_available(void **state)
{
    (void)state;
    struct smtp_server_opts o = mx_opts();
    check(&(struct transcript){.opts = &o, .in = EHLO_IN, .out = GREETING EHLO_TLS});
    o.offer_starttls = false;
    check(&(struct transcript){.opts = &o, .in = EHLO_IN, .out = GREETING EHLO_PLAIN});
    o.offer_starttls = true;
    o.tls_available = false;
    check(&(struct transcript){.opts = &o, .in = EHLO_IN, .out = GREETING EHLO_PLAIN});
}

static void test_ehlo_never_lists_starttls_inside_tls(void **state)
{
    (void)state;
    struct smtp_server_opts o = mx_opts();
    check(&(struct transcript){
        .opts = &o, .implicit_tls = true, .in = EHLO_IN, .out = GREETING EHLO_PLAIN});
}

/* AUTH PLAIN LOGIN: never on the MX profile, only inside TLS on submission, always if told. */
static void test_ehlo_lists_auth_per_offer(void **state)
{
    (void)state;
    struct smtp_server_opts o = mx_opts();
    o.ext = SMTP_EXT_AUTH; /* the offer decides, not this bit */
    check(&(struct transcript){.opts = &o, .in = EHLO_IN, .out = GREETING EHLO_TLS});
    check(&(struct transcript){
        .opts = &o, .implicit_tls = true, .in = EHLO_IN, .out = GREETING EHLO_PLAIN});
    o.auth = SMTP_AUTH_AFTER_TLS;
    check(&(struct transcript){.opts = &o, .in = EHLO_IN, .out = GREETING EHLO_TLS});
    check(&(struct transcript){
        .opts = &o, .implicit_tls = true, .in = EHLO_IN, .out = GREETING EHLO_AUTH});
    o.auth = SMTP_AUTH_ALWAYS;
    check(&(struct transcript){.opts = &o, .in = EHLO_IN, .out = GREETING EHLO_TLS_AUTH});
    check(&(struct transcript){
        .opts = &o, .implicit_tls = true, .in = EHLO_IN, .out = GREETING EHLO_AUTH});
}

static void test_ehlo_keyword_order_with_all_extensions(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    o.ext = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8 | SMTP_EXT_DSN |
            SMTP_EXT_CHUNKING;
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN,
        .out = GREETING "250-" HOST "\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n250-8BITMIME\r\n"
               "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n250-DSN\r\n"
               "250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n" EHLO_LIMITS});
}

/* ---- STARTTLS (RFC 3207) ------------------------------------------------------------------ */

static void test_starttls_ready_then_handshake(void **state)
{
    (void)state;
    struct smtp_server_opts o = submission_opts();
    struct script sc = {0};
    struct fake *f = fake_open(&sc, &o, false);
    assert_false(smtp_server_wants_tls(f->s));
    smtp_server_feed(f->s, EHLO_IN "STARTTLS\r\n", strlen(EHLO_IN "STARTTLS\r\n"));
    /* the 220 must reach the client in plaintext before the handshake */
    assert_false(smtp_server_wants_tls(f->s));
    assert_int_equal(smtp_server_input_room(f->s), 0);
    drain(f);
    expect_text("replies", &f->out, GREETING EHLO_TLS READY_TLS);
    assert_true(smtp_server_wants_tls(f->s));
    assert_false(smtp_server_closing(f->s));
    assert_false(smtp_server_tls(f->s));
    handshake(f);
    assert_string_equal(smtp_server_helo(f->s), ""); /* RFC 3207 §4.2: EHLO is forgotten */
    assert_false(smtp_server_esmtp(f->s));
    feed(f, EHLO_IN);
    expect_text("replies", &f->out, GREETING EHLO_TLS READY_TLS EHLO_AUTH);
    expect_text("on_reply lines", &f->lines,
                "220 []\n" EHLO_LINE "220 [STARTTLS]\n" EHLO_LINE);
    fake_close(f);
}

/* A transcript that ends with STARTTLS is the same however it is split. */
static void test_starttls_split_feeding(void **state)
{
    (void)state;
    struct smtp_server_opts o = mx_opts();
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "NOOP\r\nSTARTTLS\r\n",
        .out = GREETING EHLO_TLS OK READY_TLS,
        .lines = EHLO_LINE "250 [NOOP]\n220 [STARTTLS]\n"});
}

/* RFC 3207 §4.2 (CVE-2011-0411): commands pipelined behind STARTTLS in plaintext are never
 * executed, neither before nor after the handshake. */
static void test_starttls_drops_pipelined_noop(void **state)
{
    (void)state;
    struct smtp_server_opts o = mx_opts();
    struct script sc = {0};
    struct fake *f = fake_open(&sc, &o, false);
    feed(f, EHLO_IN "STARTTLS\r\nNOOP\r\n");
    expect_text("replies", &f->out, GREETING EHLO_TLS READY_TLS);
    handshake(f);
    feed(f, "NOOP\r\n");
    expect_text("replies", &f->out, GREETING EHLO_TLS READY_TLS OK);
    expect_text("on_reply lines", &f->lines,
                "220 []\n" EHLO_LINE "220 [STARTTLS]\n250 [NOOP]\n");
    fake_close(f);
}

static void test_starttls_drops_pipelined_mail(void **state)
{
    (void)state;
    struct smtp_server_opts o = mx_opts();
    struct script sc = {0};
    struct fake *f = fake_open(&sc, &o, false);
    feed(f, EHLO_IN "STARTTLS\r\nMAIL FROM:<a@b.test>\r\n");
    expect_text("replies", &f->out, GREETING EHLO_TLS READY_TLS);
    handshake(f);
    expect_text("events", &f->events, "");
    feed(f, "MAIL FROM:<a@b.test>\r\n"); /* as after the greeting */
    feed(f, EHLO_IN "MAIL FROM:<a@b.test>\r\n");
    expect_text("replies", &f->out,
                GREETING EHLO_TLS READY_TLS NEED_HELO EHLO_PLAIN SENDER_OK("a@b.test"));
    expect_text("events", &f->events, "mail <a@b.test>\n");
    fake_close(f);
}

/* Between the 220 and the handshake the session takes no input; bytes pushed anyway (a
 * caller bug) are not read as commands. */
static void test_no_input_between_ready_and_handshake(void **state)
{
    (void)state;
    struct smtp_server_opts o = mx_opts();
    struct script sc = {0};
    struct fake *f = fake_open(&sc, &o, false);
    feed(f, EHLO_IN "STARTTLS\r\n");
    assert_int_equal(smtp_server_input_room(f->s), 0);
    smtp_server_feed(f->s, "NOOP\r\nMAIL FROM:<a@b.test>\r\n", 28);
    drain(f);
    assert_int_equal(smtp_server_input_room(f->s), 0);
    assert_true(smtp_server_wants_tls(f->s));
    handshake(f);
    feed(f, "NOOP\r\n");
    expect_text("replies", &f->out, GREETING EHLO_TLS READY_TLS OK);
    expect_text("events", &f->events, "");
    fake_close(f);
}

/* After the handshake: no HELO name, no transaction, nothing from before. */
static void test_session_after_tls_is_as_after_greeting(void **state)
{
    (void)state;
    struct smtp_server_opts o = mx_opts();
    struct script sc = {0};
    struct fake *f = fake_open(&sc, &o, false);
    feed(f, EHLO_IN "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nSTARTTLS\r\n");
    expect_text("replies", &f->out,
                GREETING EHLO_TLS SENDER_OK("a@b.test")
                "250 2.1.5 Recipient <c@d.test> OK\r\n" READY_TLS);
    handshake(f);
    assert_string_equal(smtp_server_helo(f->s), "");
    f->out.len = 0;
    feed(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\n" EHLO_IN
            "RCPT TO:<c@d.test>\r\nDATA\r\nBDAT 0 LAST\r\n");
    expect_text("replies", &f->out, NEED_HELO NEED_MAIL EHLO_PLAIN NEED_MAIL NEED_MAIL NEED_MAIL);
    expect_text("events", &f->events, "mail <a@b.test>\nrcpt <c@d.test>\n");
    assert_string_equal(smtp_server_helo(f->s), "client.example.test");
    fake_close(f);
}

static void test_starttls_with_argument(void **state)
{
    (void)state;
    struct smtp_server_opts o = mx_opts();
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "STARTTLS now\r\nNOOP\r\n",
        .out = GREETING EHLO_TLS NO_ARGUMENT OK,
        .lines = EHLO_LINE "501 [STARTTLS now]\n250 [NOOP]\n"});
}

static void test_starttls_inside_tls(void **state)
{
    (void)state;
    struct smtp_server_opts o = mx_opts();
    check(&(struct transcript){
        .opts = &o, .implicit_tls = true, .in = EHLO_IN "STARTTLS\r\nNOOP\r\n",
        .out = GREETING EHLO_PLAIN TLS_ACTIVE OK});
    struct script sc = {0};
    struct fake *f = fake_open(&sc, &o, false);
    feed(f, EHLO_IN "STARTTLS\r\n");
    handshake(f);
    feed(f, "STARTTLS\r\n" EHLO_IN "STARTTLS\r\n");
    expect_text("replies", &f->out, GREETING EHLO_TLS READY_TLS TLS_ACTIVE EHLO_PLAIN TLS_ACTIVE);
    fake_close(f);
}

static void test_starttls_not_offered(void **state)
{
    (void)state;
    struct smtp_server_opts o = mx_opts();
    o.offer_starttls = false;
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "STARTTLS\r\nNOOP\r\n",
        .out = GREETING EHLO_PLAIN TLS_UNAVAILABLE OK});
    o.offer_starttls = true;
    o.tls_available = false;
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "STARTTLS\r\nNOOP\r\n",
        .out = GREETING EHLO_PLAIN TLS_UNAVAILABLE OK});
}

/* STARTTLS inside a transaction ends it (what was received is discarded), then 220. */
static void test_starttls_inside_transaction(void **state)
{
    (void)state;
    struct smtp_server_opts o = mx_opts();
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nSTARTTLS\r\n",
        .out = GREETING EHLO_TLS SENDER_OK("a@b.test")
               "250 2.1.5 Recipient <c@d.test> OK\r\n" READY_TLS,
        .events = "mail <a@b.test>\nrcpt <c@d.test>\n"});
    /* a chunk already stored is discarded */
    check(&(struct transcript){
        .opts = &o,
        .in = EHLO_IN "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nBDAT 5\r\nhelloSTARTTLS\r\n",
        .out = GREETING EHLO_TLS SENDER_OK("a@b.test")
               "250 2.1.5 Recipient <c@d.test> OK\r\n250 2.0.0 5 octets received\r\n" READY_TLS,
        .events = "mail <a@b.test>\nrcpt <c@d.test>\ndata_begin nrcpt=1\nabort\n"});
}

/* ---- AUTH refused by order or offer (RFC 4954 §4) ------------------------------------------ */

static void test_auth_not_enabled(void **state)
{
    (void)state;
    struct smtp_server_opts o = mx_opts();
    check(&(struct transcript){
        .opts = &o, .implicit_tls = true, .in = EHLO_IN "AUTH PLAIN " PLAIN_ALICE "\r\n",
        .out = GREETING EHLO_PLAIN AUTH_NOT_ENABLED, .events = "",
        .lines = EHLO_LINE "503 [AUTH PLAIN]\n"});
}

static void test_auth_before_tls_needs_encryption(void **state)
{
    (void)state;
    struct smtp_server_opts o = submission_opts();
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "AUTH PLAIN " PLAIN_ALICE "\r\nAUTH LOGIN\r\n",
        .out = GREETING EHLO_TLS ENCRYPTION_REQUIRED ENCRYPTION_REQUIRED, .events = "",
        .lines = EHLO_LINE "538 [AUTH PLAIN]\n538 [AUTH LOGIN]\n"});
}

static void test_auth_before_ehlo(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    check(&(struct transcript){
        .opts = &o, .in = "AUTH PLAIN " PLAIN_ALICE "\r\n", .out = GREETING NEED_HELO,
        .events = "", .lines = "503 [AUTH PLAIN]\n"});
}

static void test_auth_after_success(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "AUTH PLAIN " PLAIN_ALICE "\r\nAUTH PLAIN " PLAIN_BOB "\r\n",
        .out = GREETING EHLO_TLS_AUTH AUTH_OK ALREADY_AUTHENTICATED, .events = AUTH_ALICE_EV,
        .user = "alice"});
}

static void test_auth_inside_transaction(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "MAIL FROM:<a@b.test>\r\nAUTH PLAIN " PLAIN_ALICE "\r\n",
        .out = GREETING EHLO_TLS_AUTH SENDER_OK("a@b.test") AUTH_IN_TRANSACTION,
        .events = "mail <a@b.test>\n"});
}

static void test_auth_unknown_mechanism(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    check(&(struct transcript){
        .opts = &o,
        .in = EHLO_IN "AUTH CRAM-MD5\r\nAUTH CRAM-MD5 abcd\r\nAUTH\r\nAUTH PLAIN " PLAIN_ALICE
              "\r\n",
        .out = GREETING EHLO_TLS_AUTH UNKNOWN_MECHANISM UNKNOWN_MECHANISM
               "501 5.5.4 Syntax error: argument required\r\n" AUTH_OK,
        .events = AUTH_ALICE_EV, .user = "alice",
        .lines = EHLO_LINE "504 [AUTH CRAM-MD5]\n504 [AUTH CRAM-MD5]\n501 [AUTH]\n"
                 "235 [AUTH PLAIN]\n"});
}

/* ---- AUTH PLAIN (RFC 4616) --------------------------------------------------------------- */

static void test_auth_plain_initial_response(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "AUTH PLAIN " PLAIN_ALICE "\r\n",
        .out = GREETING EHLO_TLS_AUTH AUTH_OK, .events = AUTH_ALICE_EV, .user = "alice",
        .lines = EHLO_LINE "235 [AUTH PLAIN]\n"});
    /* the mechanism name is case-insensitive; the callback always gets "PLAIN" */
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "AUTH plain " PLAIN_ALICE "\r\n",
        .out = GREETING EHLO_TLS_AUTH AUTH_OK, .events = AUTH_ALICE_EV, .user = "alice",
        .lines = EHLO_LINE "235 [AUTH plain]\n"});
    /* spaces before the mechanism: the line kept is the verb and the mechanism, one space
     * between, never the response (fuzz finds: the line kept was "AUTH ", and with hundreds of
     * spaces the mechanism fell out of the 64 octets kept) */
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "AUTH   PLAIN " PLAIN_ALICE "\r\n",
        .out = GREETING EHLO_TLS_AUTH AUTH_OK, .events = AUTH_ALICE_EV, .user = "alice",
        .lines = EHLO_LINE "235 [AUTH PLAIN]\n"});
    char many[400];
    int n = snprintf(many, sizeof many, "%sAUTH%0*d PLAIN %s\r\n", EHLO_IN, 200, 0,
                     PLAIN_ALICE);
    assert_true(n > 0 && (size_t)n < sizeof many);
    for (char *p = strstr(many, "AUTH") + 4; *p == '0'; p++)
        *p = ' ';
    check(&(struct transcript){
        .opts = &o, .in = many,
        .out = GREETING EHLO_TLS_AUTH AUTH_OK, .events = AUTH_ALICE_EV, .user = "alice",
        .lines = EHLO_LINE "235 [AUTH PLAIN]\n"});
}

static void test_auth_plain_challenge(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "AUTH PLAIN\r\n" PLAIN_ALICE "\r\nNOOP\r\n",
        .out = GREETING EHLO_TLS_AUTH CHALLENGE_PLAIN AUTH_OK OK, .events = AUTH_ALICE_EV,
        .user = "alice", .lines = EHLO_LINE "334 [AUTH PLAIN]\n235 []\n250 [NOOP]\n"});
}

/* RFC 4954 §4: "=" is an empty initial response, which is no valid PLAIN message. */
static void test_auth_plain_empty_initial_response(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "AUTH PLAIN =\r\nNOOP\r\n",
        .out = GREETING EHLO_TLS_AUTH BAD_BASE64 OK, .events = "",
        .lines = EHLO_LINE "501 [AUTH PLAIN]\n250 [NOOP]\n"});
}

static void test_auth_plain_malformed_message(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    check(&(struct transcript){
        .opts = &o,
        .in = EHLO_IN "AUTH PLAIN " LOGIN_ALICE "\r\nAUTH PLAIN " PLAIN_NO_PASS "\r\nNOOP\r\n",
        .out = GREETING EHLO_TLS_AUTH BAD_BASE64 BAD_BASE64 OK, .events = ""});
}

/* Acting for another identity (an authzid other than the user) is not offered: refused
 * without asking the credential store. The user's own name as authzid is fine. */
static void test_auth_plain_authzid(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "AUTH PLAIN " PLAIN_ALICE_AS_BOB "\r\n",
        .out = GREETING EHLO_TLS_AUTH AUTH_FAILED, .events = ""});
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "AUTH PLAIN " PLAIN_ALICE_AS_ALICE "\r\n",
        .out = GREETING EHLO_TLS_AUTH AUTH_OK, .user = "alice",
        .events = "auth PLAIN authzid=<alice> user=<alice> pass=<alice-secret>\n"});
}

/* The longest credentials struct smtp_sasl_creds holds reach the callback. */
static void test_auth_plain_longest_credentials(void **state)
{
    (void)state;
    unsigned char msg[1 + LIMIT_PATH + 1 + 1023];
    size_t n = 0;
    msg[n++] = '\0';
    memset(msg + n, 'u', LIMIT_PATH);
    n += LIMIT_PATH;
    msg[n++] = '\0';
    memset(msg + n, 'p', 1023);
    n += 1023;
    char b64[4 * sizeof msg / 3 + 8];
    assert_true(smtp_base64_encode(msg, n, b64, sizeof b64) > 0);
    char in[sizeof b64 + 64];
    snprintf(in, sizeof in, EHLO_IN "AUTH PLAIN %s\r\n", b64);
    char user[LIMIT_PATH + 1];
    memset(user, 'u', LIMIT_PATH);
    user[LIMIT_PATH] = '\0';
    char events[LIMIT_PATH + 128];
    snprintf(events, sizeof events, "auth PLAIN authzid=<> user=<%s> pass=<1023 octets>\n", user);
    struct smtp_server_opts o = always_opts();
    check(&(struct transcript){
        .opts = &o, .in = in, .out = GREETING EHLO_TLS_AUTH AUTH_FAILED, .events = events});
}

/* ---- AUTH LOGIN ------------------------------------------------------------------------- */

static void test_auth_login(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "AUTH LOGIN\r\n" LOGIN_ALICE "\r\n" LOGIN_ALICE_PASS "\r\n",
        .out = GREETING EHLO_TLS_AUTH CHALLENGE_USER CHALLENGE_PASS AUTH_OK,
        .events = "auth LOGIN authzid=<> user=<alice> pass=<alice-secret>\n", .user = "alice",
        .lines = EHLO_LINE "334 [AUTH LOGIN]\n334 []\n235 []\n"});
}

static void test_auth_login_initial_response(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "AUTH LOGIN " LOGIN_ALICE "\r\n" LOGIN_ALICE_PASS "\r\n",
        .out = GREETING EHLO_TLS_AUTH CHALLENGE_PASS AUTH_OK,
        .events = "auth LOGIN authzid=<> user=<alice> pass=<alice-secret>\n", .user = "alice",
        .lines = EHLO_LINE "334 [AUTH LOGIN]\n235 []\n"});
}

/* ---- cancelled and malformed exchanges -------------------------------------------------- */

/* "*" at any step cancels (RFC 4954 §4); the session is back to commands. */
static void test_auth_cancelled(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    static const char *const inputs[] = {
        EHLO_IN "AUTH PLAIN *\r\nNOOP\r\n",
        EHLO_IN "AUTH PLAIN\r\n*\r\nNOOP\r\n",
        EHLO_IN "AUTH LOGIN\r\n*\r\nNOOP\r\n",
        EHLO_IN "AUTH LOGIN\r\n" LOGIN_ALICE "\r\n*\r\nNOOP\r\n",
        EHLO_IN "AUTH LOGIN " LOGIN_ALICE "\r\n*\r\nNOOP\r\n",
    };
    static const char *const outputs[] = {
        GREETING EHLO_TLS_AUTH CANCELLED OK,
        GREETING EHLO_TLS_AUTH CHALLENGE_PLAIN CANCELLED OK,
        GREETING EHLO_TLS_AUTH CHALLENGE_USER CANCELLED OK,
        GREETING EHLO_TLS_AUTH CHALLENGE_USER CHALLENGE_PASS CANCELLED OK,
        GREETING EHLO_TLS_AUTH CHALLENGE_PASS CANCELLED OK,
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        check(&(struct transcript){.opts = &o, .in = inputs[i], .out = outputs[i], .events = ""});
}

static void test_auth_bad_base64(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    static const char *const inputs[] = {
        EHLO_IN "AUTH PLAIN AGFsaWNl!\r\nNOOP\r\n",     /* outside the alphabet */
        EHLO_IN "AUTH PLAIN AGFsaWNlAGFsaWN\r\nNOOP\r\n", /* not a multiple of 4 */
        EHLO_IN "AUTH PLAIN\r\nAGFs aWNl\r\nNOOP\r\n",  /* a space inside */
        EHLO_IN "AUTH LOGIN YWxpY2V=\r\nNOOP\r\n",      /* non-canonical padding bits */
        EHLO_IN "AUTH LOGIN\r\n=\r\nNOOP\r\n",          /* an empty user name */
        EHLO_IN "AUTH LOGIN\r\n" LOGIN_ALICE "\r\nYWxp\tY2U=\r\nNOOP\r\n",
    };
    static const char *const outputs[] = {
        GREETING EHLO_TLS_AUTH BAD_BASE64 OK,
        GREETING EHLO_TLS_AUTH BAD_BASE64 OK,
        GREETING EHLO_TLS_AUTH CHALLENGE_PLAIN BAD_BASE64 OK,
        GREETING EHLO_TLS_AUTH BAD_BASE64 OK,
        GREETING EHLO_TLS_AUTH CHALLENGE_USER BAD_BASE64 OK,
        GREETING EHLO_TLS_AUTH CHALLENGE_USER CHALLENGE_PASS BAD_BASE64 OK,
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        check(&(struct transcript){.opts = &o, .in = inputs[i], .out = outputs[i], .events = ""});
}

/* ---- the credential store's decisions ---------------------------------------------------- */

/* A refusal leaves the session unauthenticated: MAIL still needs AUTH, which may be retried. */
static void test_auth_refused_then_retried(void **state)
{
    (void)state;
    struct smtp_server_opts o = submission_opts();
    check(&(struct transcript){
        .opts = &o, .implicit_tls = true,
        .in = EHLO_IN "AUTH PLAIN " PLAIN_ALICE_WRONG "\r\nMAIL FROM:<alice@example.test>\r\n"
              "AUTH PLAIN " PLAIN_ALICE "\r\nMAIL FROM:<alice@example.test>\r\n",
        .out = GREETING EHLO_AUTH AUTH_FAILED AUTH_REQUIRED AUTH_OK
               SENDER_OK("alice@example.test"),
        .events = "auth PLAIN authzid=<> user=<alice> pass=<wrong-secret>\n" AUTH_ALICE_EV
                  "mail <alice@example.test>\n",
        .user = "alice"});
}

static void test_require_auth(void **state)
{
    (void)state;
    struct smtp_server_opts o = submission_opts();
    check(&(struct transcript){
        .opts = &o, .implicit_tls = true,
        .in = EHLO_IN "MAIL FROM:<alice@example.test>\r\nAUTH PLAIN " PLAIN_ALICE "\r\n"
              "MAIL FROM:<alice@example.test>\r\n",
        .out = GREETING EHLO_AUTH AUTH_REQUIRED AUTH_OK SENDER_OK("alice@example.test"),
        .events = AUTH_ALICE_EV "mail <alice@example.test>\n", .user = "alice",
        .lines = EHLO_LINE "530 [MAIL FROM:<alice@example.test>]\n235 [AUTH PLAIN]\n"
                 "250 [MAIL FROM:<alice@example.test>]\n"});
}

/* A pending decision holds pipelined commands until it is given. */
static void test_auth_pending(void **state)
{
    (void)state;
    struct smtp_server_opts o = submission_opts();
    check(&(struct transcript){
        .sc = {.pending = P_AUTH}, .opts = &o, .implicit_tls = true,
        .in = EHLO_IN "AUTH LOGIN\r\n" LOGIN_ALICE "\r\n" LOGIN_ALICE_PASS "\r\n"
              "MAIL FROM:<alice@example.test>\r\n",
        .out = GREETING EHLO_AUTH CHALLENGE_USER CHALLENGE_PASS AUTH_OK
               SENDER_OK("alice@example.test"),
        .events = "auth LOGIN authzid=<> user=<alice> pass=<alice-secret>\n"
                  "mail <alice@example.test>\n",
        .user = "alice", .lines = EHLO_LINE "334 [AUTH LOGIN]\n334 []\n235 []\n"
                                  "250 [MAIL FROM:<alice@example.test>]\n"});
}

static void test_auth_pending_by_hand(void **state)
{
    (void)state;
    struct smtp_server_opts o = submission_opts();
    struct script sc = {.pending = P_AUTH, .no_resume = true};
    struct fake *f = fake_open(&sc, &o, true);
    feed(f, EHLO_IN "AUTH PLAIN " PLAIN_ALICE "\r\nMAIL FROM:<alice@example.test>\r\n");
    expect_text("replies", &f->out, GREETING EHLO_AUTH);
    assert_true(smtp_server_pending(f->s));
    assert_null(smtp_server_auth_user(f->s));
    /* the credentials stay readable until the decision is given */
    assert_string_equal(f->creds->user, "alice");
    assert_string_equal(f->creds->pass, "alice-secret");
    f->held = false;
    struct smtp_decision d = f->decision;
    assert_int_equal(d.reply, REPLY_AUTH_OK);
    smtp_server_resume(f->s, &d);
    drain(f);
    assert_false(smtp_server_pending(f->s));
    expect_text("replies", &f->out, GREETING EHLO_AUTH AUTH_OK SENDER_OK("alice@example.test"));
    assert_non_null(smtp_server_auth_user(f->s));
    assert_string_equal(smtp_server_auth_user(f->s), "alice");
    fake_close(f);
}

static void test_auth_tempfail(void **state)
{
    (void)state;
    struct smtp_server_opts o = submission_opts();
    check(&(struct transcript){
        .opts = &o, .implicit_tls = true,
        .in = EHLO_IN "AUTH PLAIN " PLAIN_TEMP "\r\nMAIL FROM:<a@b.test>\r\n",
        .out = GREETING EHLO_AUTH TEMPFAIL AUTH_REQUIRED,
        .events = "auth PLAIN authzid=<> user=<temp> pass=<temp-secret>\n"});
}

static void test_auth_decision_closes(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "AUTH PLAIN " PLAIN_ANGRY "\r\nNOOP\r\n",
        .out = GREETING EHLO_TLS_AUTH TOO_MANY_FAILURES, .closing = true,
        .events = "auth PLAIN authzid=<> user=<angry> pass=<x-secret>\n"});
    check(&(struct transcript){
        .sc = {.pending = P_AUTH}, .opts = &o, .in = EHLO_IN "AUTH PLAIN " PLAIN_ANGRY
                                                     "\r\nNOOP\r\n",
        .out = GREETING EHLO_TLS_AUTH TOO_MANY_FAILURES, .closing = true});
}

/* The whole submission dialog: STARTTLS, then AUTH, then mail. */
static void test_submission_dialog(void **state)
{
    (void)state;
    struct smtp_server_opts o = submission_opts();
    struct script sc = {0};
    struct fake *f = fake_open(&sc, &o, false);
    feed(f, EHLO_IN "AUTH PLAIN " PLAIN_ALICE "\r\nMAIL FROM:<alice@example.test>\r\n"
                    "STARTTLS\r\n");
    handshake(f);
    feed(f, EHLO_IN "MAIL FROM:<alice@example.test>\r\nAUTH PLAIN " PLAIN_ALICE "\r\n"
                    "MAIL FROM:<alice@example.test>\r\n");
    expect_text("replies", &f->out,
                GREETING EHLO_TLS ENCRYPTION_REQUIRED AUTH_REQUIRED READY_TLS EHLO_AUTH
                AUTH_REQUIRED AUTH_OK SENDER_OK("alice@example.test"));
    expect_text("events", &f->events, AUTH_ALICE_EV "mail <alice@example.test>\n");
    assert_string_equal(smtp_server_auth_user(f->s), "alice");
    fake_close(f);
}

/* RFC 3207 §4.2: after the handshake the server discards what it learnt from the client in
 * plaintext; an identity proven there is not carried into the TLS session. */
static void test_auth_forgotten_after_starttls(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    struct script sc = {0};
    struct fake *f = fake_open(&sc, &o, false);
    feed(f, EHLO_IN "AUTH PLAIN " PLAIN_ALICE "\r\nSTARTTLS\r\n");
    expect_text("replies", &f->out, GREETING EHLO_TLS_AUTH AUTH_OK READY_TLS);
    handshake(f);
    assert_null(smtp_server_auth_user(f->s));
    feed(f, EHLO_IN "AUTH PLAIN " PLAIN_BOB "\r\n");
    expect_text("replies", &f->out,
                GREETING EHLO_TLS_AUTH AUTH_OK READY_TLS EHLO_AUTH AUTH_OK);
    fake_close(f);
}

/* ---- the AUTH= MAIL parameter (RFC 4954 §5) ---------------------------------------------- */

static void test_mail_auth_parameter_only_when_advertised(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "MAIL FROM:<a@b.test> AUTH=<>\r\n",
        .out = GREETING EHLO_TLS_AUTH SENDER_OK("a@b.test"),
        .events = "mail <a@b.test> auth=<>\n"});
    o = mx_opts();
    o.ext = SMTP_EXT_AUTH;
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "MAIL FROM:<a@b.test> AUTH=<>\r\n",
        .out = GREETING EHLO_TLS UNKNOWN_AUTH_PARAM, .events = ""});
    o.auth = SMTP_AUTH_AFTER_TLS; /* before TLS AUTH is not advertised */
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "MAIL FROM:<a@b.test> AUTH=<>\r\n",
        .out = GREETING EHLO_TLS UNKNOWN_AUTH_PARAM, .events = ""});
    check(&(struct transcript){
        .opts = &o, .implicit_tls = true,
        .in = EHLO_IN "MAIL FROM:<a@b.test> AUTH=alice+40example.test\r\n",
        .out = GREETING EHLO_AUTH SENDER_OK("a@b.test"),
        .events = "mail <a@b.test> auth=alice+40example.test\n"});
}

/* ---- what reaches logs -------------------------------------------------------------------- */

/* on_reply's line is "sanitised" (server_session.h): the mechanism name is no exception. */
static void test_auth_line_sanitised(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "AUTH \x1b[2J\x7f\r\n",
        .out = GREETING EHLO_TLS_AUTH UNKNOWN_MECHANISM,
        .lines = EHLO_LINE "504 [AUTH \\x1B[2J\\x7F]\n"});
}

/* An AUTH line refused before do_auth (a stray CR, too long) must not log its initial
 * response either: the base64 holds the password. */
static void test_refused_auth_line_hides_initial_response(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    check(&(struct transcript){
        .opts = &o, .in = EHLO_IN "AUTH PLAIN " PLAIN_ALICE "\r\r\nNOOP\r\n",
        .out = GREETING EHLO_TLS_AUTH "501 5.5.4 Syntax error: NUL or CR inside a command line\r\n"
               OK,
        .events = "", .lines = EHLO_LINE "501 [AUTH PLAIN]\n250 [NOOP]\n"});
}

/* ---- line limits (RFC 4954 §4: 12288 octets) -------------------------------------------- */

/* 12288 octets with CRLF pass the length check (and then fail as base64); 12289 do not. */
static void test_auth_line_limit(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    static const char head[] = EHLO_IN "AUTH PLAIN ";
    size_t fill = LIMIT_AUTH_LINE - (sizeof "AUTH PLAIN " - 1) - 2, len;
    char *in = build(head, 'A', fill, "\r\nNOOP\r\n", &len);
    check(&(struct transcript){
        .opts = &o, .in = in, .in_len = len, .out = GREETING EHLO_TLS_AUTH BAD_BASE64 OK,
        .events = ""});
    in = build(head, 'A', fill + 1, "\r\nNOOP\r\n", &len);
    check(&(struct transcript){
        .opts = &o, .in = in, .in_len = len, .out = GREETING EHLO_TLS_AUTH TOO_LONG OK,
        .events = ""});
}

/* The line of a too-long AUTH command is logged without the response it carries. */
static void test_auth_line_too_long_hides_response(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    static const char head[] = EHLO_IN "AUTH PLAIN ";
    size_t len;
    char *in = build(head, 'Q', 20000, "\r\nNOOP\r\n", &len);
    struct script sc = {0};
    static const enum split modes[] = {SPLIT_WHOLE, SPLIT_OCTETS, SPLIT_RANDOM};
    for (size_t i = 0; i < 3; i++) {
        struct fake *f = fake_open(&sc, &o, false);
        feed_split(f, in, len, modes[i], 7);
        expect_text("replies", &f->out, GREETING EHLO_TLS_AUTH TOO_LONG OK);
        if (strstr(text_str(&f->lines), "QQQQ"))
            fail_msg("the AUTH response reached on_reply: %s", text_str(&f->lines));
        fake_close(f);
    }
}

/* A response without LF past the limit gets one 500 once the LF comes, and ends the AUTH
 * exchange: the next line is a command again. */
static void test_sasl_response_without_lf(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    struct script sc = {0};
    struct fake *f = fake_open(&sc, &o, false);
    feed(f, EHLO_IN "AUTH PLAIN\r\n");
    size_t len;
    char *big = build("", 'A', 20000, "", &len);
    feed(f, big);
    expect_text("replies", &f->out, GREETING EHLO_TLS_AUTH CHALLENGE_PLAIN);
    feed(f, "\r\nNOOP\r\n");
    expect_text("replies", &f->out, GREETING EHLO_TLS_AUTH CHALLENGE_PLAIN TOO_LONG OK);
    expect_text("on_reply lines", &f->lines,
                "220 []\n" EHLO_LINE "334 [AUTH PLAIN]\n500 []\n250 [NOOP]\n");
    expect_text("events", &f->events, "");
    fake_close(f);
}

/* A response line of 12288 octets with CRLF is read (and fails as base64); a longer one gets
 * 500 however the bytes arrive, with or without the LF in the same piece. */
static void test_sasl_response_limit_split_independent(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    size_t len;
    char *in = build(EHLO_IN "AUTH PLAIN\r\n", 'A', LIMIT_AUTH_LINE - 2, "\r\nNOOP\r\n", &len);
    check(&(struct transcript){
        .opts = &o, .in = in, .in_len = len,
        .out = GREETING EHLO_TLS_AUTH CHALLENGE_PLAIN BAD_BASE64 OK, .events = ""});
    in = build(EHLO_IN "AUTH PLAIN\r\n", 'A', LIMIT_AUTH_LINE - 1, "\r\nNOOP\r\n", &len);
    check(&(struct transcript){
        .opts = &o, .in = in, .in_len = len,
        .out = GREETING EHLO_TLS_AUTH CHALLENGE_PLAIN TOO_LONG OK, .events = ""});
    in = build(EHLO_IN "AUTH PLAIN\r\n", 'A', 20000, "\r\nNOOP\r\n", &len);
    check(&(struct transcript){
        .opts = &o, .in = in, .in_len = len,
        .out = GREETING EHLO_TLS_AUTH CHALLENGE_PLAIN TOO_LONG OK, .events = ""});
}

static void test_timeout_during_auth(void **state)
{
    (void)state;
    struct smtp_server_opts o = always_opts();
    struct script sc = {0};
    struct fake *f = fake_open(&sc, &o, false);
    feed(f, EHLO_IN "AUTH LOGIN\r\n" LOGIN_ALICE "\r\n");
    smtp_server_timeout(f->s);
    drain(f);
    expect_text("replies", &f->out,
                GREETING EHLO_TLS_AUTH CHALLENGE_USER CHALLENGE_PASS
                "421 4.4.2 " HOST " Error: timeout exceeded, closing connection\r\n");
    expect_text("on_reply lines", &f->lines,
                "220 []\n" EHLO_LINE "334 [AUTH LOGIN]\n334 []\n421 []\n");
    assert_true(smtp_server_closing(f->s));
    assert_null(smtp_server_auth_user(f->s));
    fake_close(f);
}

static int close_leftovers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
        if (live[i])
            fake_close(live[i]);
    for (size_t i = 0; i < sizeof built / sizeof built[0]; i++) {
        free(built[i]);
        built[i] = NULL;
    }
    return 0;
}

int main(void)
{
/* every test closes what a failure left open */
#define T(f) cmocka_unit_test_teardown(f, close_leftovers)
    const struct CMUnitTest tests[] = {
        T(test_ehlo_lists_starttls_when_offered_and_available),
        T(test_ehlo_never_lists_starttls_inside_tls),
        T(test_ehlo_lists_auth_per_offer),
        T(test_ehlo_keyword_order_with_all_extensions),
        T(test_starttls_ready_then_handshake),
        T(test_starttls_split_feeding),
        T(test_starttls_drops_pipelined_noop),
        T(test_starttls_drops_pipelined_mail),
        T(test_no_input_between_ready_and_handshake),
        T(test_session_after_tls_is_as_after_greeting),
        T(test_starttls_with_argument),
        T(test_starttls_inside_tls),
        T(test_starttls_not_offered),
        T(test_starttls_inside_transaction),
        T(test_auth_not_enabled),
        T(test_auth_before_tls_needs_encryption),
        T(test_auth_before_ehlo),
        T(test_auth_after_success),
        T(test_auth_inside_transaction),
        T(test_auth_unknown_mechanism),
        T(test_auth_plain_initial_response),
        T(test_auth_plain_challenge),
        T(test_auth_plain_empty_initial_response),
        T(test_auth_plain_malformed_message),
        T(test_auth_plain_authzid),
        T(test_auth_plain_longest_credentials),
        T(test_auth_login),
        T(test_auth_login_initial_response),
        T(test_auth_cancelled),
        T(test_auth_bad_base64),
        T(test_auth_refused_then_retried),
        T(test_require_auth),
        T(test_auth_pending),
        T(test_auth_pending_by_hand),
        T(test_auth_tempfail),
        T(test_auth_decision_closes),
        T(test_submission_dialog),
        T(test_auth_forgotten_after_starttls),
        T(test_mail_auth_parameter_only_when_advertised),
        T(test_auth_line_sanitised),
        T(test_refused_auth_line_hides_initial_response),
        T(test_auth_line_limit),
        T(test_auth_line_too_long_hides_response),
        T(test_sasl_response_without_lf),
        T(test_sasl_response_limit_split_independent),
        T(test_timeout_during_auth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
