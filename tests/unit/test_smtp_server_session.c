/* tests/unit/test_smtp_server_session.c — transcripts for the sans-I/O SMTP server session
 * (smtp/server_session.c): client bytes in, reply lines, callback events and stored message
 * bytes out, as readable text. Every transcript is replayed whole, one octet at a time and in
 * seeded random pieces; all runs must give the same result. RFC 5321, 2920, 3030, 6531. */
#include "unit.h"
#include "transcript.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "reply/utf8.h"
#include "smtp/server_session.h"

#define HOST "mx.example.test"
#define EXT_ALL (SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8 | SMTP_EXT_DSN | \
                 SMTP_EXT_CHUNKING)

#define GREETING "220 " HOST " ESMTP clearmta ready\r\n"
#define HELO_IN "HELO client.example.test\r\n"
#define HELO_OUT "250 " HOST "\r\n"
#define EHLO_IN "EHLO client.example.test\r\n"
#define EHLO_OUT                 \
    "250-" HOST "\r\n"           \
    "250-PIPELINING\r\n"         \
    "250-SIZE 10485760\r\n"      \
    "250-8BITMIME\r\n"           \
    "250-ENHANCEDSTATUSCODES\r\n" \
    "250-SMTPUTF8\r\n"           \
    "250-CHUNKING\r\n"           \
    "250-DSN\r\n"               \
    "250 LIMITS RCPTMAX=100\r\n"
#define MAIL_IN "MAIL FROM:<sender@remote.test>\r\n"
#define MAIL_OUT "250 2.1.0 Sender <sender@remote.test> OK\r\n"
#define MAIL_EV "mail <sender@remote.test>\n"
#define ALICE_IN "RCPT TO:<alice@example.test>\r\n"
#define ALICE_OUT "250 2.1.5 Recipient <alice@example.test> OK\r\n"
#define ALICE_EV "rcpt <alice@example.test> mailbox=alice\n"
#define BOB_IN "RCPT TO:<bob@example.test>\r\n"
#define BOB_OUT "250 2.1.5 Recipient <bob@example.test> OK\r\n"
#define BOB_EV "rcpt <bob@example.test> mailbox=bob\n"
#define START_DATA "354 End data with <CR><LF>.<CR><LF>\r\n"
#define QUEUED(qid) "250 2.0.0 Ok: queued as " qid "\r\n"
#define BYE "221 2.0.0 Bye\r\n"
#define NEED_MAIL "503 5.5.1 Error: need MAIL command\r\n"
#define UNKNOWN "500 5.5.2 Error: command not recognized\r\n"
#define TOO_LONG "500 5.5.2 Error: line too long (the limit is 512 octets)\r\n"
#define BARE_LF "550 5.6.0 Error: message contains a bare <LF> or <CR> (line break without " \
                "CR LF), forbidden by RFC 5321 section 2.3.8\r\n"

/* ---- the fake caller ------------------------------------------------------------------- */

/* Which callbacks answer later (SMTP_PENDING); the driver resumes them. */
#define P_MAIL 0x1u
#define P_RCPT 0x2u
#define P_BEGIN 0x4u
#define P_END 0x8u

/* What the fake's callbacks decide. */
struct script {
    bool disk_full;   /* MAIL → 452 4.3.1 */
    bool write_fails; /* data_write returns an error */
    unsigned pending; /* P_* callbacks answer later */
    bool no_resume;   /* the driver never resumes: the test does it by hand */
    bool trace;       /* state changes are events too */
};

struct fake {
    struct script sc;
    struct smtp_server_opts opts;
    struct smtp_server_callbacks cb; /* fake_cb, with trace when sc.trace */
    struct smtp_server *s;
    struct text events;   /* one line per callback, "\n"-ended */
    struct text stored;   /* message bytes as data_write got them */
    struct text out;      /* reply bytes as the session produced them */
    size_t write_event_at; /* where the current "write …" event starts; SIZE_MAX: none */
    size_t write_total;
    unsigned queued;      /* messages committed, for queue ids QID1, QID2, … */
    bool held;            /* a decision is waiting for the driver to resume it */
    struct smtp_decision decision;
    unsigned replies;     /* on_reply calls */
    char last_line[80];   /* on_reply's command line, the last one */
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
    f->write_event_at = SIZE_MAX;
}

/* Returns the verdict for a callback: pending ones hold the decision for the driver. */
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
    event(f, "mail <%s>%s%s", cmd->path.mailbox, cmd->smtputf8 ? " smtputf8" : "",
          cmd->has_size ? " size" : "");
    d->reply = f->sc.disk_full ? REPLY_DISK_FULL : REPLY_SENDER_OK;
    set_detail(d, cmd->path.mailbox);
    return verdict(f, P_MAIL, d);
}

/* alice, bob and postmaster exist at example.test; other users do not; relay.test is relayed
 * to (a remote recipient, no mailbox); other domains are somebody else's (no relaying). */
static enum smtp_verdict fake_rcpt(void *ctx, const struct smtp_command *cmd,
                                   struct smtp_decision *d)
{
    struct fake *f = ctx;
    const struct smtp_path *p = &cmd->path;
    const char *box = NULL;
    if (p->is_postmaster) {
        box = "postmaster";
    } else if (strcasecmp(p->domain, "example.test") == 0) {
        static const char *const users[] = {"alice", "bob", "postmaster"};
        for (size_t i = 0; i < sizeof users / sizeof users[0]; i++)
            if (strcmp(p->local, users[i]) == 0)
                box = users[i];
        d->reply = REPLY_USER_UNKNOWN;
    } else if (strcasecmp(p->domain, "relay.test") == 0) {
        set_detail(d, p->mailbox);
        d->reply = REPLY_RCPT_OK;
        event(f, "rcpt <%s> remote notify=%u orcpt=%s", p->mailbox, cmd->notify,
              cmd->orcpt[0] ? cmd->orcpt : "-");
        return verdict(f, P_RCPT, d);
    } else {
        d->reply = REPLY_RELAY_DENIED;
    }
    set_detail(d, p->mailbox);
    if (box) {
        d->reply = REPLY_RCPT_OK;
        memcpy(d->mailbox, box, strlen(box) + 1);
        event(f, "rcpt <%s> mailbox=%s", p->mailbox, box);
    } else {
        event(f, "rcpt <%s> refused", p->mailbox);
    }
    return verdict(f, P_RCPT, d);
}

static enum smtp_verdict fake_data_begin(void *ctx, const struct smtp_envelope *env,
                                         struct smtp_decision *d)
{
    struct fake *f = ctx;
    event(f, "data_begin nrcpt=%zu", env->n_rcpts);
    d->reply = REPLY_START_DATA;
    return verdict(f, P_BEGIN, d);
}

/* Consecutive writes make one event, so the log does not depend on how input was split. */
static enum reply_id fake_write(void *ctx, const char *p, size_t n)
{
    struct fake *f = ctx;
    assert_true(n > 0);
    if (f->write_event_at == SIZE_MAX) {
        f->write_event_at = f->events.len;
        f->write_total = 0;
    }
    f->events.len = f->write_event_at;
    if (f->sc.write_fails) {
        text_add(&f->events, "write failed\n", 13);
        return REPLY_STORE_FAILED;
    }
    text_add(&f->stored, p, n);
    f->write_total += n;
    char line[64];
    int w = snprintf(line, sizeof line, "write %zu bytes\n", f->write_total);
    assert_true(w > 0 && (size_t)w < sizeof line);
    text_add(&f->events, line, (size_t)w);
    return REPLY_OK;
}

static enum smtp_verdict fake_data_end(void *ctx, struct smtp_decision *d)
{
    struct fake *f = ctx;
    char qid[16];
    event(f, "data_end");
    snprintf(qid, sizeof qid, "QID%u", ++f->queued);
    d->reply = REPLY_QUEUED;
    set_detail(d, qid);
    return verdict(f, P_END, d);
}

static void fake_abort(void *ctx)
{
    event(ctx, "abort");
}

static void fake_on_reply(void *ctx, const char *line, enum reply_id id, const char *detail)
{
    struct fake *f = ctx;
    (void)id;
    assert_non_null(detail);
    for (const char *c = line; *c; c++) /* no control byte; UTF-8 of SMTPUTF8 stays */
        assert_true((unsigned char)*c >= 0x20 && (unsigned char)*c != 0x7f);
    assert_true(reply_utf8_valid((const unsigned char *)line, strlen(line)));
    snprintf(f->last_line, sizeof f->last_line, "%s", line);
    f->replies++;
}

static void fake_over_limit(void *ctx, size_t refused)
{
    event(ctx, "over_limit %zu", refused);
}

static const struct smtp_server_callbacks fake_cb = {
    .mail = fake_mail,
    .rcpt = fake_rcpt,
    .data_begin = fake_data_begin,
    .data_write = fake_write,
    .data_end = fake_data_end,
    .data_abort = fake_abort,
    .on_reply = fake_on_reply,
    .rcpts_over_limit = fake_over_limit,
};

static void fake_trace(void *ctx, const char *line)
{
    event(ctx, "%s", line);
}

static struct smtp_server_opts default_opts(void)
{
    return (struct smtp_server_opts){
        .hostname = HOST,
        .max_message_size = 10485760,
        .max_recipients = 100,
        .max_errors = 10,
        .ext = EXT_ALL,
    };
}

/* ---- the driver ------------------------------------------------------------------------ */

/* Moves the session's pending output into f->out, as a socket writer would. */
/* Sends everything, as a client that reads: consuming the output lets the session answer the
 * commands it held back, so it is read again until none is left. */
static void drain(struct fake *f)
{
    size_t n;
    const char *p = smtp_server_output(f->s, &n);
    while (n > 0) {
        text_add(&f->out, p, n);
        smtp_server_consume_output(f->s, n);
        p = smtp_server_output(f->s, &n);
    }
}

/* Gives the held decision to the session, unless the test resumes by hand. */
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

static struct fake *fake_open(const struct script *sc, const struct smtp_server_opts *opts)
{
    struct fake *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->sc = *sc;
    f->opts = *opts;
    f->write_event_at = SIZE_MAX;
    f->cb = fake_cb;
    if (sc->trace)
        f->cb.trace = fake_trace;
    f->s = smtp_server_new(&f->opts, &f->cb, f);
    assert_non_null(f->s);
    smtp_server_start(f->s);
    drain(f);
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
    free(f->stored.p);
    free(f->out.p);
    free(f);
}

/* How input is cut into feeds: whole, octet by octet, or random pieces of 1..97 octets. */
enum split { SPLIT_WHOLE, SPLIT_OCTETS, SPLIT_RANDOM };

/* Feeds len bytes as a network reader would: never more than input_room, resuming held
 * decisions after each piece, stopping once the session closes. */
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
            assert_true(f->held && f->sc.no_resume == false);
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

/* Readable form of bytes for failure messages. */
static void print_escaped(const char *label, const char *s, size_t n)
{
    fprintf(stderr, "%s: \"", label);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n' && i > 0 && s[i - 1] == '\r')
            fprintf(stderr, "\\n\"\n    \"");
        else if (c == '\r')
            fprintf(stderr, "\\r");
        else if (c == '\n')
            fprintf(stderr, "\\n");
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

static void expect_out(struct fake *f, const char *want)
{
    expect_bytes("replies", "by hand", text_str(&f->out), f->out.len, want, strlen(want));
}

static void expect_events(struct fake *f, const char *want)
{
    expect_bytes("events", "by hand", text_str(&f->events), f->events.len, want, strlen(want));
}

/* ---- transcripts ----------------------------------------------------------------------- */

struct transcript {
    struct script sc;
    bool has_opts;
    struct smtp_server_opts opts; /* default_opts() unless has_opts */
    const char *in;
    size_t in_len;      /* 0: strlen(in) */
    const char *out;    /* every reply, greeting included */
    const char *events; /* NULL: not checked */
    const char *stored; /* NULL: not checked */
    size_t stored_len;  /* 0: strlen(stored) */
    bool open;          /* the session must still be open at the end (else closing) */
};

static void run_one(const struct transcript *t, enum split mode, uint32_t seed)
{
    char run[48];
    static const char *const names[] = {"whole", "octets", "random"};
    snprintf(run, sizeof run, "%s, seed %u", names[mode], (unsigned)seed);
    struct smtp_server_opts opts = t->has_opts ? t->opts : default_opts();
    struct fake *f = fake_open(&t->sc, &opts);
    size_t in_len = t->in_len ? t->in_len : strlen(t->in);
    feed_split(f, t->in, in_len, mode, seed);

    expect_bytes("replies", run, text_str(&f->out), f->out.len, t->out, strlen(t->out));
    if (t->events)
        expect_bytes("events", run, text_str(&f->events), f->events.len, t->events,
                     strlen(t->events));
    if (t->stored) {
        size_t n = t->stored_len ? t->stored_len : strlen(t->stored);
        expect_bytes("stored", run, text_str(&f->stored), f->stored.len, t->stored, n);
    }
    if (t->open)
        assert_false(smtp_server_closing(f->s));
    else
        assert_true(smtp_server_closing(f->s));
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

/* ---- the state machine as a dialog ------------------------------------------------------- */

static void feed_line(void *ctx, const char *line)
{
    feed(ctx, line);
}

/* One whole transaction, one command (or the message) at a time: the client's lines ("C:"), the
 * events and state changes they cause, then the replies ("S:"). Replayed whole and in pieces,
 * the events (state changes included) are the same. */
static void test_state_trace(void **state)
{
    (void)state;
    static const char *const client[] = {
        EHLO_IN, MAIL_IN, ALICE_IN, "DATA\r\n", "Subject: hi\r\n\r\nbody\r\n.\r\n", "QUIT\r\n",
    };
    struct script sc = {.trace = true};
    struct smtp_server_opts opts = default_opts();
    struct fake *f = fake_open(&sc, &opts);
    struct dialog d = {.events = &f->events, .out = &f->out, .in_prefix = "C: ",
                       .out_prefix = "S: "};
    dialog_after(&d); /* the greeting */
    dialog_play(&d, client, sizeof client / sizeof client[0], feed_line, f);
    assert_string_equal(text_str(&d.log),
                        "S: 220 mx.example.test ESMTP clearmta ready\n"
                        "C: EHLO client.example.test\n"
                        "   state NEED_HELO -> READY\n"
                        "S: 250-mx.example.test\n"
                        "S: 250-PIPELINING\n"
                        "S: 250-SIZE 10485760\n"
                        "S: 250-8BITMIME\n"
                        "S: 250-ENHANCEDSTATUSCODES\n"
                        "S: 250-SMTPUTF8\n"
                        "S: 250-CHUNKING\n"
                        "S: 250-DSN\n"
                        "S: 250 LIMITS RCPTMAX=100\n"
                        "C: MAIL FROM:<sender@remote.test>\n"
                        "   mail <sender@remote.test>\n"
                        "   state READY -> MAIL\n"
                        "S: 250 2.1.0 Sender <sender@remote.test> OK\n"
                        "C: RCPT TO:<alice@example.test>\n"
                        "   rcpt <alice@example.test> mailbox=alice\n"
                        "S: 250 2.1.5 Recipient <alice@example.test> OK\n"
                        "C: DATA\n"
                        "   data_begin nrcpt=1\n"
                        "   state MAIL -> DATA\n"
                        "S: 354 End data with <CR><LF>.<CR><LF>\n"
                        "C: Subject: hi\n"
                        "C: \n"
                        "C: body\n"
                        "C: .\n"
                        "   write 21 bytes\n"
                        "   state DATA -> MAIL\n"
                        "   data_end\n"
                        "   state MAIL -> READY\n"
                        "S: 250 2.0.0 Ok: queued as QID1\n"
                        "C: QUIT\n"
                        "S: 221 2.0.0 Bye\n");
    check(&(struct transcript){.sc = sc, .in = text_str(&d.in), .out = text_str(&f->out),
                               .events = text_str(&f->events)});
    dialog_free(&d);
    fake_close(f);
}

/* ---- session start and simple commands --------------------------------------------------- */

static void test_greeting(void **state)
{
    (void)state;
    check(&(struct transcript){.in = "", .out = GREETING, .events = "", .open = true});
}

static void test_ehlo_lists_extensions(void **state)
{
    (void)state;
    check(&(struct transcript){.in = EHLO_IN, .out = GREETING EHLO_OUT, .open = true});
}

static void test_ehlo_without_optional_extensions(void **state)
{
    (void)state;
    struct smtp_server_opts o = default_opts();
    o.ext = 0;
    check(&(struct transcript){
        .has_opts = true, .opts = o, .in = EHLO_IN, .open = true,
        .out = GREETING "250-" HOST "\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n"
               "250 LIMITS RCPTMAX=100\r\n"});
}

static void test_helo(void **state)
{
    (void)state;
    check(&(struct transcript){.in = HELO_IN, .out = GREETING HELO_OUT, .open = true});
}

static void test_quit_closes(void **state)
{
    (void)state;
    /* nothing after QUIT is read */
    check(&(struct transcript){
        .in = HELO_IN "QUIT\r\nNOOP\r\n", .out = GREETING HELO_OUT BYE, .events = ""});
}

/* Real clients send names like "my_host"; one printable token is recorded, not judged. */
static void test_helo_tolerates_sloppy_names(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = "EHLO DESKTOP_1\r\nHELO two words\r\nHELO [192.0.2.1]\r\n", .open = true,
        .out = GREETING EHLO_OUT "501 5.5.4 Syntax error: one domain argument required\r\n"
        HELO_OUT});
}

static void test_helo_name_is_kept(void **state)
{
    (void)state;
    struct script sc = {0};
    struct smtp_server_opts o = default_opts();
    struct fake *f = fake_open(&sc, &o);
    assert_string_equal(smtp_server_helo(f->s), "");
    assert_false(smtp_server_esmtp(f->s));
    feed(f, EHLO_IN);
    assert_string_equal(smtp_server_helo(f->s), "client.example.test");
    assert_true(smtp_server_esmtp(f->s));
    feed(f, "HELO other.example.test\r\n");
    assert_string_equal(smtp_server_helo(f->s), "other.example.test");
    assert_false(smtp_server_esmtp(f->s));
    fake_close(f);
}

static void test_noop(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = "NOOP\r\nnoop anything\r\n", .open = true,
        .out = GREETING "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"});
}

static void test_vrfy_neither_confirms_nor_denies(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = HELO_IN "VRFY alice\r\nVRFY nobody\r\n", .open = true,
        .out = GREETING HELO_OUT
        "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"
        "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"});
}

static void test_help_is_multiline(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = "HELP\r\n", .open = true,
        .out = GREETING
        "214-2.0.0 clearmta: see RFC 5321; commands:\r\n"
        "214-2.0.0 HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP\r\n"
        "214 2.0.0 'clearmta explain CODE' explains any reply\r\n"});
}

static void test_expn_turn_not_implemented(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = HELO_IN "EXPN staff\r\nTURN\r\nETRN example.test\r\n", .open = true,
        .out = GREETING HELO_OUT
        "502 5.5.1 Error: command not implemented\r\n"
        "502 5.5.1 Error: command not implemented\r\n"
        "502 5.5.1 Error: command not implemented\r\n"});
}

static void test_unknown_command(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = "FOO bar\r\nMAILX FROM:<a@b.test>\r\n\r\n", .open = true,
        .out = GREETING UNKNOWN UNKNOWN UNKNOWN});
}

/* ---- command order (RFC 5321 §4.1.4: 503) ------------------------------------------------ */

static void test_mail_before_helo(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = MAIL_IN, .out = GREETING "503 5.5.1 Error: send HELO/EHLO first\r\n",
        .events = "", .open = true});
}

static void test_rcpt_before_mail(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = HELO_IN ALICE_IN, .out = GREETING HELO_OUT NEED_MAIL, .events = "",
        .open = true});
}

static void test_data_before_mail(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = HELO_IN "DATA\r\n", .out = GREETING HELO_OUT NEED_MAIL, .events = "",
        .open = true});
}

static void test_data_without_rcpt(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = HELO_IN MAIL_IN "DATA\r\n", .events = MAIL_EV, .open = true,
        .out = GREETING HELO_OUT MAIL_OUT "503 5.5.1 Error: need RCPT command\r\n"});
}

static void test_data_after_rejected_rcpts(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = HELO_IN MAIL_IN "RCPT TO:<nobody@example.test>\r\nRCPT TO:<x@other.test>\r\n"
              "DATA\r\n",
        .events = MAIL_EV "rcpt <nobody@example.test> refused\nrcpt <x@other.test> refused\n",
        .open = true,
        .out = GREETING HELO_OUT MAIL_OUT
        "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown\r\n"
        "554 5.7.1 <x@other.test>: Relay access denied\r\n"
        "554 5.5.1 Error: no valid recipients\r\n"});
}

static void test_nested_mail(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = HELO_IN MAIL_IN MAIL_IN, .events = MAIL_EV, .open = true,
        .out = GREETING HELO_OUT MAIL_OUT "503 5.5.1 Error: nested MAIL command\r\n"});
}

static void test_rset_ends_transaction(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = HELO_IN MAIL_IN ALICE_IN "RSET\r\n" BOB_IN "DATA\r\n" MAIL_IN,
        .events = MAIL_EV ALICE_EV MAIL_EV, .open = true,
        .out = GREETING HELO_OUT MAIL_OUT ALICE_OUT "250 2.0.0 Reset state\r\n" NEED_MAIL
        NEED_MAIL MAIL_OUT});
}

static void test_helo_resets_transaction(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = HELO_IN MAIL_IN ALICE_IN HELO_IN BOB_IN,
        .events = MAIL_EV ALICE_EV, .open = true,
        .out = GREETING HELO_OUT MAIL_OUT ALICE_OUT HELO_OUT NEED_MAIL});
}

/* ---- line lengths (RFC 5321 §4.5.3.1.4) -------------------------------------------------- */

/* head padded with pad octets to total octets, CRLF included. */
static char *padded_line(const char *head, size_t total, char pad)
{
    size_t h = strlen(head);
    assert_true(total >= h + 2);
    char *p = malloc(total + 1);
    assert_non_null(p);
    memcpy(p, head, h);
    memset(p + h, pad, total - h - 2);
    memcpy(p + total - 2, "\r\n", 3);
    return p;
}

static void test_command_line_limit(void **state)
{
    (void)state;
    char *l511 = padded_line("NOOP ", 511, 'x');
    char *l512 = padded_line("NOOP ", 512, 'x');
    char *l513 = padded_line("NOOP ", 513, 'x');
    size_t n = 511 + 512 + 513 + 6;
    char *in = malloc(n + 1);
    assert_non_null(in);
    snprintf(in, n + 1, "%s%s%sNOOP\r\n", l511, l512, l513);
    check(&(struct transcript){
        .in = in, .open = true,
        .out = GREETING "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n" TOO_LONG "250 2.0.0 Ok\r\n"});
    free(in);
    free(l511);
    free(l512);
    free(l513);
}

/* MAIL and RCPT lines may be longer (extension parameters): up to LIMIT_MAIL_RCPT_LINE. */
static void test_mail_line_limit(void **state)
{
    (void)state;
    char *at = padded_line("MAIL FROM:<sender@remote.test>", LIMIT_MAIL_RCPT_LINE, ' ');
    char *over = padded_line("MAIL FROM:<sender@remote.test>", LIMIT_MAIL_RCPT_LINE + 1, ' ');
    size_t n = strlen(HELO_IN) + 2 * LIMIT_MAIL_RCPT_LINE + 1 + strlen("RSET\r\n");
    char *in = malloc(n + 1);
    assert_non_null(in);
    snprintf(in, n + 1, "%s%sRSET\r\n%s", HELO_IN, at, over);
    check(&(struct transcript){
        .in = in, .events = MAIL_EV, .open = true,
        .out = GREETING HELO_OUT MAIL_OUT "250 2.0.0 Reset state\r\n"
               "500 5.5.2 Error: line too long (the limit is 1100 octets)\r\n"});
    free(in);
    free(at);
    free(over);
}

/* A 5000-octet line arriving in pieces, its LF last: one reply, after the LF, then the
 * session goes on. */
static void test_long_line_without_lf(void **state)
{
    (void)state;
    struct script sc = {0};
    struct smtp_server_opts o = default_opts();
    struct fake *f = fake_open(&sc, &o);
    char chunk[1000];
    memset(chunk, 'A', sizeof chunk);
    for (int i = 0; i < 5; i++) {
        smtp_server_feed(f->s, chunk, sizeof chunk);
        drain(f);
        expect_out(f, GREETING);
    }
    smtp_server_feed(f->s, "\r\nNOOP\r\n", 8);
    drain(f);
    expect_out(f, GREETING TOO_LONG "250 2.0.0 Ok\r\n");
    assert_int_equal(smtp_server_input_room(f->s), LIMIT_PIPELINE_INPUT);
    fake_close(f);
}

/* ---- argument errors ----------------------------------------------------------------------- */

static void test_syntax_errors(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = "HELO\r\n" HELO_IN MAIL_IN ALICE_IN "DATA now\r\nRSET all\r\nQUIT now\r\n",
        .events = MAIL_EV ALICE_EV, .open = true,
        .out = GREETING "501 5.5.4 Syntax error: one domain argument required\r\n" HELO_OUT
        MAIL_OUT ALICE_OUT
        "501 5.5.4 Syntax error: no argument allowed\r\n"
        "501 5.5.4 Syntax error: no argument allowed\r\n"
        "501 5.5.4 Syntax error: no argument allowed\r\n"});
}

static void test_bad_sender(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = HELO_IN "MAIL FROM:<a@@b.test>\r\nMAIL FROM:sender@remote.test\r\n"
              "MAIL TO:<sender@remote.test>\r\n",
        .events = "", .open = true,
        .out = GREETING HELO_OUT
        "501 5.1.7 Bad sender address syntax\r\n"
        "501 5.1.7 Bad sender address syntax\r\n"
        "501 5.5.4 Syntax error: expected FROM:\r\n"});
}

static void test_bad_recipient(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = HELO_IN MAIL_IN "RCPT TO:<alice@>\r\nRCPT TO:alice@example.test\r\n",
        .events = MAIL_EV, .open = true,
        .out = GREETING HELO_OUT MAIL_OUT
        "501 5.1.3 Bad recipient address syntax\r\n"
        "501 5.1.3 Bad recipient address syntax\r\n"});
}

static void test_unknown_parameter(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = HELO_IN "MAIL FROM:<sender@remote.test> XFOO=1\r\n" MAIL_IN
              "RCPT TO:<alice@example.test> XBAR\r\n",
        .events = MAIL_EV, .open = true,
        .out = GREETING HELO_OUT
        "555 5.5.4 Error: unsupported MAIL FROM/RCPT TO parameter: XFOO\r\n" MAIL_OUT
        "555 5.5.4 Error: unsupported MAIL FROM/RCPT TO parameter: XBAR\r\n"});
}

static void test_body_binarymime_not_supported(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = EHLO_IN "MAIL FROM:<sender@remote.test> BODY=BINARYMIME\r\n"
              "MAIL FROM:<sender@remote.test> BODY=8BITMIME\r\n",
        .events = MAIL_EV, .open = true,
        .out = GREETING EHLO_OUT
        "504 5.5.4 Error: parameter value not supported: BODY=BINARYMIME\r\n" MAIL_OUT});
}

/* Hostile octets on command lines get a clear 5xx and the session goes on. */
static void test_garbage_in_command_lines(void **state)
{
    (void)state;
    static const char in[] = "\xff\xfe\x80\r\n"
                             "NO\0OP\r\n"
                             "NOOP\rNOOP\r\n"
                             "\x1b[31mHELO x\r\n" HELO_IN
                             "MAIL FROM:<s\xc3\xbc@remote.test>\r\n"
                             "MAIL FROM:<s\xff@remote.test> SMTPUTF8\r\n"
                             "NOOP\r\n";
    check(&(struct transcript){
        .in = in, .in_len = sizeof in - 1, .events = "", .open = true,
        .out = GREETING UNKNOWN
        "501 5.5.4 Syntax error: NUL or CR inside a command line\r\n"
        "501 5.5.4 Syntax error: NUL or CR inside a command line\r\n"
        UNKNOWN HELO_OUT
        "553 5.6.7 Error: address holds non-ASCII characters; use SMTPUTF8\r\n"
        "501 5.1.7 Bad sender address syntax\r\n"
        "250 2.0.0 Ok\r\n"});
}

/* ---- MAIL and RCPT decisions --------------------------------------------------------------- */

static void test_user_unknown(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = HELO_IN MAIL_IN "RCPT TO:<nobody@example.test>\r\n" ALICE_IN,
        .events = MAIL_EV "rcpt <nobody@example.test> refused\n" ALICE_EV, .open = true,
        .out = GREETING HELO_OUT MAIL_OUT
        "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown\r\n"
        ALICE_OUT});
}

static void test_relay_denied(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = HELO_IN MAIL_IN "RCPT TO:<friend@elsewhere.test>\r\n",
        .events = MAIL_EV "rcpt <friend@elsewhere.test> refused\n", .open = true,
        .out = GREETING HELO_OUT MAIL_OUT
        "554 5.7.1 <friend@elsewhere.test>: Relay access denied\r\n"});
}

static void test_postmaster_without_domain(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = HELO_IN "MAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\n",
        .events = "mail <>\nrcpt <postmaster> mailbox=postmaster\n", .open = true,
        .out = GREETING HELO_OUT "250 2.1.0 Sender <> OK\r\n"
        "250 2.1.5 Recipient <postmaster> OK\r\n"});
}

/* RFC 5321 §4.5.3.1.8: 100 recipients must be accepted; the 101st gets 452 and the message
 * still goes to the first 100. */
static void test_too_many_recipients(void **state)
{
    (void)state;
    struct text in = {0}, out = {0}, ev = {0};
    text_add(&in, HELO_IN MAIL_IN, strlen(HELO_IN MAIL_IN));
    text_add(&out, GREETING HELO_OUT MAIL_OUT, strlen(GREETING HELO_OUT MAIL_OUT));
    text_add(&ev, MAIL_EV, strlen(MAIL_EV));
    for (int i = 0; i < 101; i++) {
        char line[128];
        int n = snprintf(line, sizeof line, "RCPT TO:<r%d@relay.test>\r\n", i);
        text_add(&in, line, (size_t)n);
        if (i < 100) {
            n = snprintf(line, sizeof line, "250 2.1.5 Recipient <r%d@relay.test> OK\r\n", i);
            text_add(&out, line, (size_t)n);
            n = snprintf(line, sizeof line, "rcpt <r%d@relay.test> remote notify=0 orcpt=-\n", i);
            text_add(&ev, line, (size_t)n);
        }
    }
    static const char tail_in[] = "DATA\r\nSubject: many\r\n\r\nhi\r\n.\r\n";
    static const char tail_out[] = "452 4.5.3 Error: too many recipients\r\n" START_DATA
        QUEUED("QID1");
    static const char tail_ev[] =
        "data_begin nrcpt=100\nwrite 21 bytes\ndata_end\nover_limit 1\n";
    text_add(&in, tail_in, strlen(tail_in));
    text_add(&out, tail_out, strlen(tail_out));
    text_add(&ev, tail_ev, strlen(tail_ev));
    check(&(struct transcript){.in = text_str(&in), .out = text_str(&out),
                               .events = text_str(&ev), .stored = "Subject: many\r\n\r\nhi\r\n",
                               .open = true});
    free(in.p);
    free(out.p);
    free(ev.p);
}

#define TOO_MANY_RCPTS "452 4.5.3 Error: too many recipients\r\n"
#define TOO_MANY_ERRORS "421 4.7.0 " HOST " Error: too many errors, closing connection\r\n"

/* RCPTs past the limit get 452 and are no error up to rcpt_overshoot of them (a pipelining
 * client meets the limit in good faith); each one past it is, until max_errors closes the
 * session. The caller hears of them once, with their number. */
static void test_rcpt_overshoot_counts_errors_past_its_limit(void **state)
{
    (void)state;
    struct smtp_server_opts o = default_opts();
    o.max_recipients = 1;
    o.rcpt_overshoot = 3;
    o.max_errors = 2;
    check(&(struct transcript){
        .has_opts = true, .opts = o,
        .in = HELO_IN MAIL_IN ALICE_IN BOB_IN BOB_IN BOB_IN BOB_IN BOB_IN BOB_IN,
        .out = GREETING HELO_OUT MAIL_OUT ALICE_OUT TOO_MANY_RCPTS TOO_MANY_RCPTS TOO_MANY_RCPTS
            TOO_MANY_RCPTS TOO_MANY_RCPTS TOO_MANY_ERRORS,
        .events = MAIL_EV ALICE_EV "over_limit 5\n"});
    /* Within the overshoot: no error, one report when the transaction ends (RSET), a new
     * count for the next transaction. */
    o.max_errors = 1;
    check(&(struct transcript){
        .has_opts = true, .opts = o,
        .in = HELO_IN MAIL_IN ALICE_IN BOB_IN BOB_IN BOB_IN "RSET\r\n" MAIL_IN ALICE_IN BOB_IN
            "RSET\r\n",
        .out = GREETING HELO_OUT MAIL_OUT ALICE_OUT TOO_MANY_RCPTS TOO_MANY_RCPTS TOO_MANY_RCPTS
            "250 2.0.0 Reset state\r\n" MAIL_OUT ALICE_OUT TOO_MANY_RCPTS "250 2.0.0 Reset state\r\n",
        .events = MAIL_EV ALICE_EV "over_limit 3\n" MAIL_EV ALICE_EV "over_limit 1\n",
        .open = true});
}

static void test_size_parameter_over_limit(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = EHLO_IN "MAIL FROM:<sender@remote.test> SIZE=10485761\r\n"
              "MAIL FROM:<sender@remote.test> SIZE=10485760\r\n",
        .events = "mail <sender@remote.test> size\n", .open = true,
        .out = GREETING EHLO_OUT
        "552 5.3.4 Error: message size exceeds fixed maximum message size\r\n" MAIL_OUT});
}

static void test_disk_full_at_mail(void **state)
{
    (void)state;
    check(&(struct transcript){
        .sc = {.disk_full = true}, .in = HELO_IN MAIL_IN ALICE_IN,
        .events = MAIL_EV, .open = true,
        .out = GREETING HELO_OUT "452 4.3.1 Error: insufficient system storage\r\n" NEED_MAIL});
}

/* RFC 6531: UTF-8 paths only in a transaction whose MAIL carried SMTPUTF8. */
static void test_smtputf8_sender(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = EHLO_IN "MAIL FROM:<\xc3\xbc@x.test>\r\n"
              "MAIL FROM:<\xc3\xbc@x.test> SMTPUTF8\r\n"
              "RCPT TO:<alice@example.test>\r\n"
              "RCPT TO:<\xc3\xa9@example.test>\r\n",
        .events = "mail <\xc3\xbc@x.test> smtputf8\n" ALICE_EV
                  "rcpt <\xc3\xa9@example.test> refused\n",
        .open = true,
        .out = GREETING EHLO_OUT
        "553 5.6.7 Error: address holds non-ASCII characters; use SMTPUTF8\r\n"
        "250 2.1.0 Sender <\xc3\xbc@x.test> OK\r\n" ALICE_OUT
        "550 5.1.1 <\xc3\xa9@example.test>: Recipient address rejected: User unknown\r\n"});
}

static void test_utf8_recipient_without_smtputf8(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = EHLO_IN MAIL_IN "RCPT TO:<\xc3\xa9@example.test>\r\n" ALICE_IN,
        .events = MAIL_EV ALICE_EV, .open = true,
        .out = GREETING EHLO_OUT MAIL_OUT
        "553 5.6.7 Error: address holds non-ASCII characters; use SMTPUTF8\r\n" ALICE_OUT});
}

/* soft_bounce: every permanent refusal becomes temporary, so nothing is lost while a new
 * configuration is tried. */
static void test_soft_bounce(void **state)
{
    (void)state;
    struct smtp_server_opts o = default_opts();
    o.soft_bounce = true;
    check(&(struct transcript){
        .has_opts = true, .opts = o,
        .in = HELO_IN MAIL_IN "RCPT TO:<nobody@example.test>\r\nRCPT TO:<x@other.test>\r\n"
              "FOO\r\n",
        .open = true,
        .out = GREETING HELO_OUT MAIL_OUT
        "450 4.1.1 <nobody@example.test>: Recipient address rejected: User unknown\r\n"
        "454 4.7.1 <x@other.test>: Relay access denied\r\n"
        "400 4.5.2 Error: command not recognized\r\n"});
}

/* ---- messages ---------------------------------------------------------------------------- */

#define TXN_IN HELO_IN MAIL_IN ALICE_IN BOB_IN "DATA\r\n"
#define TXN_OUT GREETING HELO_OUT MAIL_OUT ALICE_OUT BOB_OUT START_DATA
#define TXN_EV MAIL_EV ALICE_EV BOB_EV "data_begin nrcpt=2\n"

static void test_message_queued(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = TXN_IN "Subject: hi\r\n\r\nHello.\r\n.\r\n" MAIL_IN ALICE_IN
              "DATA\r\nsecond\r\n.\r\nQUIT\r\n",
        .events = TXN_EV "write 23 bytes\ndata_end\n" MAIL_EV ALICE_EV
                  "data_begin nrcpt=1\nwrite 8 bytes\ndata_end\n",
        .stored = "Subject: hi\r\n\r\nHello.\r\nsecond\r\n",
        .out = TXN_OUT QUEUED("QID1") MAIL_OUT ALICE_OUT START_DATA QUEUED("QID2") BYE});
}

static void test_dot_unstuffing(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = TXN_IN "..\r\n...two\r\n.x\r\n a.\r\n.\r\n",
        .events = TXN_EV "write 18 bytes\ndata_end\n",
        .stored = ".\r\n..two\r\nx\r\n a.\r\n",
        .out = TXN_OUT QUEUED("QID1"), .open = true});
}

static void test_empty_message(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = TXN_IN ".\r\n", .events = TXN_EV "data_end\n", .stored = "",
        .out = TXN_OUT QUEUED("QID1"), .open = true});
}

/* RFC 2920: a whole batch in one packet is answered in order. */
static void test_pipelined_batch(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = EHLO_IN MAIL_IN ALICE_IN "RCPT TO:<nobody@example.test>\r\n" BOB_IN
              "DATA\r\nbody\r\n.\r\nQUIT\r\n",
        .events = MAIL_EV ALICE_EV "rcpt <nobody@example.test> refused\n" BOB_EV
                  "data_begin nrcpt=2\nwrite 6 bytes\ndata_end\n",
        .out = GREETING EHLO_OUT MAIL_OUT ALICE_OUT
        "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown\r\n"
        BOB_OUT START_DATA QUEUED("QID1") BYE});
}

static void test_message_over_size_limit(void **state)
{
    (void)state;
    struct smtp_server_opts o = default_opts();
    o.max_message_size = 10;
    check(&(struct transcript){
        .has_opts = true, .opts = o,
        .in = TXN_IN "0123456789\r\nabc\r\n.\r\nNOOP\r\n",
        .events = TXN_EV "write 10 bytes\nabort\n", .stored = "0123456789",
        .out = TXN_OUT "552 5.3.4 Error: message size exceeds fixed maximum message size\r\n"
        "250 2.0.0 Ok\r\n",
        .open = true});
}

static void test_message_at_size_limit(void **state)
{
    (void)state;
    struct smtp_server_opts o = default_opts();
    o.max_message_size = 12;
    check(&(struct transcript){
        .has_opts = true, .opts = o, .in = TXN_IN "0123456789\r\n.\r\n",
        .events = TXN_EV "write 12 bytes\ndata_end\n", .stored = "0123456789\r\n",
        .out = TXN_OUT QUEUED("QID1"), .open = true});
}

static void test_write_failure(void **state)
{
    (void)state;
    check(&(struct transcript){
        .sc = {.write_fails = true}, .in = TXN_IN "line\r\n.\r\nNOOP\r\n",
        .events = TXN_EV "write failed\nabort\n", .stored = "", .open = true,
        .out = TXN_OUT "451 4.3.0 Error: queue file write error, try again later\r\n"
        "250 2.0.0 Ok\r\n"});
}

static void test_nul_in_body(void **state)
{
    (void)state;
    static const char in[] = TXN_IN "a\0b\r\n.\r\n" BOB_IN;
    check(&(struct transcript){
        .in = in, .in_len = sizeof in - 1, .events = TXN_EV "write 5 bytes\nabort\n",
        .stored = "a\0b\r\n", .stored_len = 5, .open = true,
        .out = TXN_OUT "550 5.6.0 Error: message contains NUL characters\r\n" NEED_MAIL});
}

static void test_bare_lf_rejected(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = TXN_IN "one\ntwo\r\n.\r\nNOOP\r\n", .events = TXN_EV "write 9 bytes\nabort\n",
        .out = TXN_OUT BARE_LF "250 2.0.0 Ok\r\n", .open = true});
}

static void test_bare_lf_normalized(void **state)
{
    (void)state;
    struct smtp_server_opts o = default_opts();
    o.bare_lf_normalize = true;
    check(&(struct transcript){
        .has_opts = true, .opts = o, .in = TXN_IN "one\ntwo\rthree\r\n.\r\n",
        .events = TXN_EV "write 17 bytes\ndata_end\n", .stored = "one\r\ntwo\r\nthree\r\n",
        .out = TXN_OUT QUEUED("QID1"), .open = true});
}

/* SMTP smuggling: a line end other than CRLF before the dot must neither end the message nor
 * let the following MAIL run as a command. The whole thing is one message, refused for its
 * bare line ends; no second transaction appears. */
static void check_smuggling(const char *fake_end, const char *stored_end)
{
    static const char fmt[] = "Subject: s\r\n\r\nhello%sMAIL FROM:<evil@x.test>\r\n"
                              "RCPT TO:<bob@example.test>\r\nDATA\r\nevil\r\n";
    char body[512], stored[512], in[1024], events[256];
    int n = snprintf(body, sizeof body, fmt, fake_end);
    assert_true(n > 0 && (size_t)n < sizeof body);
    n = snprintf(stored, sizeof stored, fmt, stored_end);
    assert_true(n > 0 && (size_t)n < sizeof stored);
    n = snprintf(in, sizeof in, "%s%s.\r\nQUIT\r\n", HELO_IN MAIL_IN ALICE_IN "DATA\r\n", body);
    assert_true(n > 0 && (size_t)n < sizeof in);
    n = snprintf(events, sizeof events, "%s%s%s%zu bytes\nabort\n", MAIL_EV, ALICE_EV,
                 "data_begin nrcpt=1\nwrite ", strlen(stored));
    assert_true(n > 0 && (size_t)n < sizeof events);
    check(&(struct transcript){
        .in = in, .events = events, .stored = stored,
        .out = GREETING HELO_OUT MAIL_OUT ALICE_OUT START_DATA BARE_LF BYE});
}

static void test_smuggling_lf_dot_lf(void **state)
{
    (void)state;
    check_smuggling("\n.\n", "\n.\n");
}

static void test_smuggling_cr_dot_crlf(void **state)
{
    (void)state;
    check_smuggling("\r.\r\n", "\r.\r\n");
}

static void test_smuggling_lf_dot_crlf(void **state)
{
    (void)state;
    check_smuggling("\n.\r\n", "\n.\r\n");
}

/* After a real CRLF the dot is a leading dot (unstuffed); the bare LF after it ends nothing. */
static void test_smuggling_crlf_dot_lf(void **state)
{
    (void)state;
    check_smuggling("\r\n.\n", "\r\n\n");
}

/* ---- pending decisions ------------------------------------------------------------------- */

/* Every callback answers later; the driver resumes after each piece of input. The replies
 * are the same as with immediate answers. */
static void test_all_decisions_pending(void **state)
{
    (void)state;
    check(&(struct transcript){
        .sc = {.pending = P_MAIL | P_RCPT | P_BEGIN | P_END},
        .in = TXN_IN "text\r\n.\r\nBDAT 1\r\nx" MAIL_IN ALICE_IN "BDAT 3 LAST\r\nabcQUIT\r\n",
        .events = TXN_EV "write 6 bytes\ndata_end\n" MAIL_EV ALICE_EV
                  "data_begin nrcpt=1\nwrite 3 bytes\ndata_end\n",
        .stored = "text\r\nabc",
        .out = TXN_OUT QUEUED("QID1") NEED_MAIL MAIL_OUT ALICE_OUT QUEUED("QID2") BYE});
}

/* RFC 2920: a QUIT pipelined behind the end of data waits for the message's decision, and
 * the replies keep their order; input waiting meanwhile takes room from input_room. */
static void test_pending_data_end_holds_pipelined_quit(void **state)
{
    (void)state;
    struct script sc = {.pending = P_END, .no_resume = true};
    struct smtp_server_opts o = default_opts();
    struct fake *f = fake_open(&sc, &o);
    feed(f, TXN_IN "body\r\n.\r\nQUIT\r\n");
    expect_out(f, TXN_OUT);
    expect_events(f, TXN_EV "write 6 bytes\ndata_end\n");
    assert_true(smtp_server_pending(f->s));
    assert_false(smtp_server_closing(f->s));
    assert_int_equal(smtp_server_input_room(f->s), LIMIT_PIPELINE_INPUT - 6);

    feed(f, "NOOP\r\n"); /* after QUIT: must never be answered */
    assert_int_equal(smtp_server_input_room(f->s), LIMIT_PIPELINE_INPUT - 12);
    expect_out(f, TXN_OUT);

    assert_true(f->held);
    f->held = false;
    smtp_server_resume(f->s, &f->decision);
    drain(f);
    expect_out(f, TXN_OUT QUEUED("QID1") BYE);
    assert_false(smtp_server_pending(f->s));
    assert_true(smtp_server_closing(f->s));
    assert_int_equal(smtp_server_input_room(f->s), 0);
    fake_close(f);
}

/* While a decision is pending the session takes at most LIMIT_PIPELINE_INPUT octets. */
static void test_input_room_runs_out_while_pending(void **state)
{
    (void)state;
    struct script sc = {.pending = P_RCPT, .no_resume = true};
    struct smtp_server_opts o = default_opts();
    struct fake *f = fake_open(&sc, &o);
    feed(f, HELO_IN MAIL_IN ALICE_IN);
    assert_true(smtp_server_pending(f->s));
    size_t fed = 0;
    while (smtp_server_input_room(f->s) > 0) {
        size_t room = smtp_server_input_room(f->s);
        size_t n = room < 6 ? room : 6;
        smtp_server_feed(f->s, "NOOP\r\n", n);
        fed += n;
    }
    assert_int_equal(fed, LIMIT_PIPELINE_INPUT);
    drain(f);
    expect_out(f, GREETING HELO_OUT MAIL_OUT);
    f->held = false;
    smtp_server_resume(f->s, &f->decision);
    drain(f);
    /* ALICE_OUT, then one reply per NOOP until the error-free NOOPs run out */
    assert_int_equal(f->out.len, strlen(GREETING HELO_OUT MAIL_OUT ALICE_OUT) +
                                     (LIMIT_PIPELINE_INPUT / 6) * strlen("250 2.0.0 Ok\r\n"));
    assert_int_equal(smtp_server_input_room(f->s), LIMIT_PIPELINE_INPUT - LIMIT_PIPELINE_INPUT % 6);
    fake_close(f);
}

#define HELP_OUT                                                         \
    "214-2.0.0 clearmta: see RFC 5321; commands:\r\n"                        \
    "214-2.0.0 HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP\r\n"  \
    "214 2.0.0 'clearmta explain CODE' explains any reply\r\n"

/* A client that pipelines short commands and reads nothing: the session answers until its
 * unsent replies pass LIMIT_PENDING_OUTPUT and keeps the other lines in its bounded input;
 * each time the client has read everything, the next lines are answered; in the end every
 * line got its reply, in order. */
static void test_unread_replies_stay_bounded(void **state)
{
    (void)state;
    struct script sc = {0};
    struct smtp_server_opts o = default_opts();
    struct fake *f = fake_open(&sc, &o);
    size_t lines = 0;
    while (smtp_server_input_room(f->s) >= 6) {
        smtp_server_feed(f->s, "HELP\r\n", 6);
        lines++;
    }
    assert_true(lines > 10000);
    size_t reply_len = strlen(HELP_OUT), answered = 0, rounds = 0;
    for (;;) {
        size_t n;
        const char *p = smtp_server_output(f->s, &n);
        if (n == 0)
            break;
        assert_true(n <= LIMIT_PENDING_OUTPUT + reply_len);
        assert_true(smtp_server_memory(f->s) < 3 * LIMIT_PIPELINE_INPUT);
        assert_int_equal(n % reply_len, 0);
        for (size_t i = 0; i < n; i += reply_len)
            assert_memory_equal(p + i, HELP_OUT, reply_len);
        answered += n / reply_len;
        /* half of it read: nothing more is answered until the rest is */
        smtp_server_consume_output(f->s, n / 2);
        size_t left;
        (void)smtp_server_output(f->s, &left);
        assert_int_equal(left, n - n / 2);
        smtp_server_consume_output(f->s, left);
        rounds++;
    }
    assert_int_equal(answered, lines);
    assert_true(rounds > 10);
    assert_int_equal(smtp_server_input_room(f->s), LIMIT_PIPELINE_INPUT);
    fake_close(f);
}

static size_t unsent(const struct fake *f)
{
    size_t n;
    (void)smtp_server_output(f->s, &n);
    return n;
}

/* Message content is taken while replies wait: only command lines are held back. */
static void test_message_content_flows_while_replies_wait(void **state)
{
    (void)state;
    struct script sc = {0};
    struct smtp_server_opts o = default_opts();
    struct fake *f = fake_open(&sc, &o);
    /* NOOPs until MAIL, RCPT and DATA are still answered and the 354 passes the mark */
    static const char noop_out[] = "250 2.0.0 Ok\r\n";
    size_t target = LIMIT_PENDING_OUTPUT - 1 - strlen(MAIL_OUT ALICE_OUT);
    smtp_server_feed(f->s, HELO_IN, strlen(HELO_IN));
    while (unsent(f) + strlen(noop_out) <= target)
        smtp_server_feed(f->s, "NOOP\r\n", 6);
    smtp_server_feed(f->s, MAIL_IN ALICE_IN "DATA\r\n", strlen(MAIL_IN ALICE_IN "DATA\r\n"));
    assert_true(smtp_server_in_data(f->s));
    assert_true(unsent(f) >= LIMIT_PENDING_OUTPUT);
    char body[4096];
    for (size_t i = 0; i < sizeof body; i += 8)
        memcpy(body + i, "abcdef\r\n", 8);
    for (int i = 0; i < 64; i++)
        smtp_server_feed(f->s, body, sizeof body);
    assert_int_equal(f->stored.len, 64 * sizeof body);
    smtp_server_feed(f->s, ".\r\nNOOP\r\n", 9);
    size_t before = f->out.len;
    drain(f);
    assert_memory_equal(f->out.p + f->out.len - strlen(QUEUED("QID1") "250 2.0.0 Ok\r\n"),
                        QUEUED("QID1") "250 2.0.0 Ok\r\n", strlen(QUEUED("QID1") "250 2.0.0 Ok\r\n"));
    assert_true(f->out.len > before);
    fake_close(f);
}

/* data_begin's view of the envelope: one line per recipient. */
static enum smtp_verdict envelope_begin(void *ctx, const struct smtp_envelope *env,
                                        struct smtp_decision *d)
{
    struct fake *f = ctx;
    event(f, "data_begin nrcpt=%zu merged=%zu", env->n_rcpts, env->rcpts_merged);
    for (size_t i = 0; i < env->n_rcpts; i++)
        event(f, "  <%s> mailbox=%s notify=%u orcpt=%s", env->rcpts[i].address,
              env->rcpts[i].mailbox ? env->rcpts[i].mailbox : "-", env->rcpts[i].notify,
              env->rcpts[i].orcpt ? env->rcpts[i].orcpt : "-");
    d->reply = REPLY_START_DATA;
    return SMTP_DECIDED;
}

/* RCPTs that name a mailbox already accepted are answered 250 and delivered once: local ones
 * by their mailbox, remote ones by address (domain without case, local part unquoted, its
 * case kept). The first RCPT's ORCPT stays (or the first one given), NOTIFY joins. */
static void test_duplicate_recipients_merge(void **state)
{
    (void)state;
    struct script sc = {0};
    struct smtp_server_opts o = default_opts();
    struct fake *f = fake_open(&sc, &o);
    f->cb.data_begin = envelope_begin;
    static const char *const rcpts[] = {
        "<alice@example.test>", "<alice@EXAMPLE.TEST>", "<postmaster>",
        "<postmaster@example.test>", "<r@relay.test> NOTIFY=NEVER",
        "<r@RELAY.test> NOTIFY=SUCCESS ORCPT=rfc822;r@orig.test",
        "<\"r\"@relay.test> NOTIFY=DELAY ORCPT=rfc822;other@orig.test", "<R@relay.test>",
    };
    feed(f, EHLO_IN MAIL_IN);
    for (size_t i = 0; i < sizeof rcpts / sizeof rcpts[0]; i++) {
        char line[160];
        snprintf(line, sizeof line, "RCPT TO:%s\r\n", rcpts[i]);
        feed(f, line);
        assert_int_equal(smtp_server_rcpt_count(f->s), i + 1);
    }
    feed(f, "DATA\r\n");
    const char *ev = text_str(&f->events);
    const char *begin = strstr(ev, "data_begin");
    assert_non_null(begin);
    assert_string_equal(begin,
                        "data_begin nrcpt=4 merged=4\n"
                        "  <alice@example.test> mailbox=alice notify=0 orcpt=-\n"
                        "  <postmaster> mailbox=postmaster notify=0 orcpt=-\n"
                        "  <r@relay.test> mailbox=- notify=10 orcpt=rfc822;r@orig.test\n"
                        "  <R@relay.test> mailbox=- notify=0 orcpt=-\n");
    /* every RCPT was answered as accepted */
    const char *p = text_str(&f->out);
    size_t ok = 0;
    for (const char *q = p; (q = strstr(q, "250 2.1.5 ")) != NULL; q++)
        ok++;
    assert_int_equal(ok, sizeof rcpts / sizeof rcpts[0]);
    fake_close(f);
    /* merged RCPTs count toward max_recipients as the RCPTs they were */
    o.max_recipients = 2;
    f = fake_open(&sc, &o);
    feed(f, HELO_IN MAIL_IN ALICE_IN ALICE_IN ALICE_IN);
    expect_out(f, GREETING HELO_OUT MAIL_OUT ALICE_OUT ALICE_OUT TOO_MANY_RCPTS);
    fake_close(f);
}

static void test_data_begin_refused(void **state)
{
    (void)state;
    struct script sc = {.pending = P_BEGIN, .no_resume = true};
    struct smtp_server_opts o = default_opts();
    struct fake *f = fake_open(&sc, &o);
    feed(f, TXN_IN);
    expect_out(f, GREETING HELO_OUT MAIL_OUT ALICE_OUT BOB_OUT);
    struct smtp_decision d = {.reply = REPLY_STORE_FAILED};
    f->held = false;
    smtp_server_resume(f->s, &d);
    drain(f);
    expect_out(f, GREETING HELO_OUT MAIL_OUT ALICE_OUT BOB_OUT
                  "451 4.3.0 Error: queue file write error, try again later\r\n");
    feed(f, "RSET\r\n");
    expect_out(f, GREETING HELO_OUT MAIL_OUT ALICE_OUT BOB_OUT
                  "451 4.3.0 Error: queue file write error, try again later\r\n"
                  "250 2.0.0 Reset state\r\n");
    expect_events(f, TXN_EV);
    fake_close(f);
}

/* ---- the end of a session ---------------------------------------------------------------- */

static void test_too_many_errors(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = "A\r\nB\r\nC\r\nD\r\nE\r\nF\r\nG\r\nH\r\nI\r\nJ\r\nNOOP\r\n",
        .out = GREETING UNKNOWN UNKNOWN UNKNOWN UNKNOWN UNKNOWN UNKNOWN UNKNOWN UNKNOWN
        UNKNOWN UNKNOWN "421 4.7.0 " HOST " Error: too many errors, closing connection\r\n"});
}

static void test_timeout(void **state)
{
    (void)state;
    struct script sc = {0};
    struct smtp_server_opts o = default_opts();
    struct fake *f = fake_open(&sc, &o);
    feed(f, TXN_IN "partial body\r\n");
    smtp_server_timeout(f->s);
    drain(f);
    expect_out(f, TXN_OUT "421 4.4.2 " HOST " Error: timeout exceeded, closing connection\r\n");
    expect_events(f, TXN_EV "write 14 bytes\nabort\n");
    assert_true(smtp_server_closing(f->s));
    assert_int_equal(smtp_server_input_room(f->s), 0);
    smtp_server_timeout(f->s); /* a second timer firing says nothing more */
    smtp_server_shutdown(f->s);
    drain(f);
    expect_out(f, TXN_OUT "421 4.4.2 " HOST " Error: timeout exceeded, closing connection\r\n");
    fake_close(f);
}

#define SHUTDOWN "421 4.3.2 " HOST " Service shutting down, closing transmission channel\r\n"

static void test_shutdown_idle(void **state)
{
    (void)state;
    struct script sc = {0};
    struct smtp_server_opts o = default_opts();
    struct fake *f = fake_open(&sc, &o);
    feed(f, HELO_IN);
    smtp_server_shutdown(f->s);
    drain(f);
    expect_out(f, GREETING HELO_OUT SHUTDOWN);
    assert_true(smtp_server_closing(f->s));
    fake_close(f);
}

/* A transaction in flight is allowed to finish; the next MAIL is refused. */
static void test_shutdown_in_transaction(void **state)
{
    (void)state;
    struct script sc = {0};
    struct smtp_server_opts o = default_opts();
    struct fake *f = fake_open(&sc, &o);
    feed(f, HELO_IN MAIL_IN);
    smtp_server_shutdown(f->s);
    drain(f);
    expect_out(f, GREETING HELO_OUT MAIL_OUT);
    assert_false(smtp_server_closing(f->s));
    feed(f, ALICE_IN "DATA\r\nbody\r\n.\r\n");
    expect_out(f, GREETING HELO_OUT MAIL_OUT ALICE_OUT START_DATA QUEUED("QID1"));
    assert_false(smtp_server_closing(f->s));
    feed(f, MAIL_IN);
    expect_out(f, GREETING HELO_OUT MAIL_OUT ALICE_OUT START_DATA QUEUED("QID1") SHUTDOWN);
    assert_true(smtp_server_closing(f->s));
    fake_close(f);
}

/* Feeding after the session closed changes nothing. */
static void test_feed_after_close_ignored(void **state)
{
    (void)state;
    struct script sc = {0};
    struct smtp_server_opts o = default_opts();
    struct fake *f = fake_open(&sc, &o);
    feed(f, "QUIT\r\n");
    smtp_server_feed(f->s, "NOOP\r\n", 6);
    drain(f);
    expect_out(f, GREETING BYE);
    fake_close(f);
}

/* Output larger than the idle buffer is released once sent; asking for output afterwards
 * must still be well-defined (clang's UBSan flagged "NULL + 0" here; found by fuzz_session). */
static void test_output_after_large_output_sent(void **state)
{
    (void)state;
    struct script sc = {0};
    struct smtp_server_opts o = default_opts();
    struct fake *f = fake_open(&sc, &o);
    for (int i = 0; i < 200; i++)
        smtp_server_feed(f->s, "NOOP\r\n", 6);
    drain(f);
    assert_int_equal(f->out.len, strlen(GREETING) + 200 * strlen("250 2.0.0 Ok\r\n"));
    size_t n = 1;
    (void)smtp_server_output(f->s, &n);
    assert_int_equal(n, 0);
    smtp_server_consume_output(f->s, 0);
    feed(f, "NOOP\r\n");
    assert_int_equal(f->out.len, strlen(GREETING) + 201 * strlen("250 2.0.0 Ok\r\n"));
    fake_close(f);
}

static void test_on_reply_sees_command(void **state)
{
    (void)state;
    struct script sc = {0};
    struct smtp_server_opts o = default_opts();
    struct fake *f = fake_open(&sc, &o);
    assert_int_equal(f->replies, 1);
    assert_string_equal(f->last_line, "");
    feed(f, HELO_IN "MAIL FROM:<a\x01@b.test>\r\n");
    assert_int_equal(f->replies, 3);
    assert_string_equal(f->last_line, "MAIL FROM:<a\\x01@b.test>");
    feed(f, EHLO_IN);
    assert_int_equal(f->replies, 4); /* a multi-line reply is one reply */
    fake_close(f);
}

/* ---- BDAT (RFC 3030) ---------------------------------------------------------------------- */

#define CHUNKED_IN EHLO_IN MAIL_IN ALICE_IN
#define CHUNKED_OUT GREETING EHLO_OUT MAIL_OUT ALICE_OUT
#define CHUNKED_EV MAIL_EV ALICE_EV "data_begin nrcpt=1\n"

static void test_bdat_chunks(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = CHUNKED_IN "BDAT 5\r\nhelloBDAT 0 LAST\r\nQUIT\r\n",
        .events = CHUNKED_EV "write 5 bytes\ndata_end\n", .stored = "hello",
        .out = CHUNKED_OUT "250 2.0.0 5 octets received\r\n" QUEUED("QID1") BYE});
}

static void test_bdat_single_last_chunk(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = CHUNKED_IN "BDAT 12 LAST\r\nline\r\nline\r\nNOOP\r\n",
        .events = CHUNKED_EV "write 12 bytes\ndata_end\n", .stored = "line\r\nline\r\n",
        .out = CHUNKED_OUT QUEUED("QID1") "250 2.0.0 Ok\r\n", .open = true});
}

/* Loop detection: at max_hops Received: fields the message is queued, one more and it is
 * refused 554 5.4.6 at its end and aborted (the body's Received: line never counts). */
#define HOPS_TRACE "Received: from a\r\nRECEIVED: from b\r\n\tby c\r\nReceived-SPF: pass\r\n"
#define HOPS_BODY "\r\nReceived: body\r\n.\r\n"
#define TOO_MANY_HOPS "554 5.4.6 Error: too many hops (3 Received: fields, the limit is 2): " \
                      "this message is probably in a mail loop\r\n"

static void test_hops_at_limit_queued(void **state)
{
    (void)state;
    struct transcript t = {
        .in = TXN_IN HOPS_TRACE HOPS_BODY "QUIT\r\n", .has_opts = true,
        .out = TXN_OUT QUEUED("QID1") BYE};
    t.opts = default_opts();
    t.opts.max_hops = 2;
    check(&t);
}

static void test_hops_over_limit_refused(void **state)
{
    (void)state;
    struct transcript t = {
        .in = TXN_IN "Received: x\r\n" HOPS_TRACE HOPS_BODY BOB_IN, .has_opts = true,
        .open = true, .out = TXN_OUT TOO_MANY_HOPS NEED_MAIL};
    t.opts = default_opts();
    t.opts.max_hops = 2;
    check(&t);
    t.in = CHUNKED_IN "BDAT 13\r\nReceived: x\r\nBDAT 81 LAST\r\n" HOPS_TRACE
           "\r\nReceived: body\r\n" BOB_IN;
    t.out = CHUNKED_OUT "250 2.0.0 13 octets received\r\n" TOO_MANY_HOPS NEED_MAIL;
    check(&t);
}

/* RFC 3030 §2: a refused BDAT's octets are still read, and never taken as commands. */
static void test_bdat_without_mail(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = EHLO_IN "BDAT 6\r\nQUIT\r\nNOOP\r\n", .events = "", .open = true,
        .out = GREETING EHLO_OUT NEED_MAIL "250 2.0.0 Ok\r\n"});
}

static void test_bdat_without_rcpt(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = EHLO_IN MAIL_IN "BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n", .events = MAIL_EV,
        .open = true,
        .out = GREETING EHLO_OUT MAIL_OUT "503 5.5.1 Error: need RCPT command\r\n"
        "250 2.0.0 Ok\r\n"});
}

static void test_bdat_then_data(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = CHUNKED_IN "BDAT 3\r\nabcDATA\r\nBDAT 3 LAST\r\ndef",
        .events = CHUNKED_EV "write 6 bytes\ndata_end\n", .stored = "abcdef", .open = true,
        .out = CHUNKED_OUT "250 2.0.0 3 octets received\r\n"
        "503 5.5.1 Error: DATA cannot follow BDAT in one transaction\r\n" QUEUED("QID1")});
}

static void test_bdat_content_never_executed(void **state)
{
    (void)state;
    static const char chunk[] = "QUIT\r\nRSET\r\nMAIL FROM:<evil@x.test>\r\n.\r\n";
    char in[512];
    int n = snprintf(in, sizeof in, "%sBDAT %zu LAST\r\n%sNOOP\r\n", CHUNKED_IN,
                     strlen(chunk), chunk);
    assert_true(n > 0 && (size_t)n < sizeof in);
    char ev[256];
    n = snprintf(ev, sizeof ev, "%swrite %zu bytes\ndata_end\n", CHUNKED_EV, strlen(chunk));
    assert_true(n > 0 && (size_t)n < sizeof ev);
    check(&(struct transcript){
        .in = in, .events = ev, .stored = chunk, .open = true,
        .out = CHUNKED_OUT QUEUED("QID1") "250 2.0.0 Ok\r\n"});
}

static void test_bdat_over_size_limit(void **state)
{
    (void)state;
    struct smtp_server_opts o = default_opts();
    o.max_message_size = 4;
    check(&(struct transcript){
        .has_opts = true, .opts = o, .in = CHUNKED_IN "BDAT 3\r\nabcBDAT 3\r\ndefNOOP\r\n",
        .events = CHUNKED_EV "write 4 bytes\nabort\n", .stored = "abcd", .open = true,
        .out = GREETING "250-" HOST "\r\n250-PIPELINING\r\n250-SIZE 4\r\n250-8BITMIME\r\n"
        "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n250-DSN\r\n"
        "250 LIMITS RCPTMAX=100\r\n"
        MAIL_OUT ALICE_OUT "250 2.0.0 3 octets received\r\n"
        "552 5.3.4 Error: message size exceeds fixed maximum message size\r\n"
        "250 2.0.0 Ok\r\n"});
}

static void test_bdat_bare_lf_rejected(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = CHUNKED_IN "BDAT 5 LAST\r\na\nb\r\n", .events = CHUNKED_EV "write 5 bytes\nabort\n",
        .out = CHUNKED_OUT BARE_LF, .open = true});
}

static void test_rset_between_chunks_aborts(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = CHUNKED_IN "BDAT 2\r\nabRSET\r\nBDAT 2 LAST\r\ncd",
        .events = CHUNKED_EV "write 2 bytes\nabort\n", .open = true,
        .out = CHUNKED_OUT "250 2.0.0 2 octets received\r\n250 2.0.0 Reset state\r\n" NEED_MAIL});
}

/* Once the first BDAT chunk opened storage, the envelope given to data_begin is final: a RCPT
 * between chunks is refused with 503 5.5.1 (as Postfix does) and never reaches the rcpt
 * callback, and the message goes to the recipients data_begin saw. (Found by fuzz_session.) */
static void test_rcpt_between_chunks_refused(void **state)
{
    (void)state;
    struct script sc = {0};
    struct smtp_server_opts o = default_opts();
    struct fake *f = fake_open(&sc, &o);
    feed(f, CHUNKED_IN "BDAT 3\r\nabc" BOB_IN);
    expect_events(f, CHUNKED_EV "write 3 bytes\n");
    static const char before[] = CHUNKED_OUT "250 2.0.0 3 octets received\r\n";
    const char *out = text_str(&f->out);
    assert_true(strncmp(out, before, strlen(before)) == 0);
    assert_true(strncmp(out + strlen(before), "503 5.5.1 ", 10) == 0);
    feed(f, "BDAT 0 LAST\r\n");
    expect_events(f, CHUNKED_EV "write 3 bytes\ndata_end\n");
    fake_close(f);
}

/* BDAT before HELO is refused like any BDAT outside a transaction, and must not count as a
 * greeting: MAIL afterwards still needs HELO/EHLO first. */
static void test_bdat_before_helo_keeps_helo_required(void **state)
{
    (void)state;
    check(&(struct transcript){
        .in = "BDAT 4\r\nabcd" MAIL_IN, .events = "", .open = true,
        .out = GREETING NEED_MAIL "503 5.5.1 Error: send HELO/EHLO first\r\n"});
}

/* A timeout while a decision is pending closes the session; the decision that arrives later
 * must be dropped: no reply after the 421, no crash. */
static void check_timeout_while_pending(unsigned which, const char *in, const char *out)
{
    struct script sc = {.pending = which, .no_resume = true};
    struct smtp_server_opts o = default_opts();
    struct fake *f = fake_open(&sc, &o);
    feed(f, in);
    assert_true(smtp_server_pending(f->s));
    smtp_server_timeout(f->s);
    drain(f);
    f->held = false;
    smtp_server_resume(f->s, &f->decision);
    drain(f);
    expect_out(f, out);
    assert_true(smtp_server_closing(f->s));
    fake_close(f);
}

#define TIMEOUT "421 4.4.2 " HOST " Error: timeout exceeded, closing connection\r\n"

static void test_timeout_while_data_end_pending(void **state)
{
    (void)state;
    check_timeout_while_pending(P_END, TXN_IN "x\r\n.\r\n", TXN_OUT TIMEOUT);
}

static void test_timeout_while_rcpt_pending(void **state)
{
    (void)state;
    check_timeout_while_pending(P_RCPT, HELO_IN MAIL_IN ALICE_IN,
                                GREETING HELO_OUT MAIL_OUT TIMEOUT);
}

/* ---- session limits: max_messages_per_session and LIMITS (RFC 9422) ---------------------- */

#define TOO_MANY_MESSAGES \
    "421 4.7.0 " HOST " Error: too many messages in this session; reconnect to send more\r\n"
#define ONE_MSG_IN MAIL_IN ALICE_IN "DATA\r\nx\r\n.\r\n"
#define ONE_MSG_OUT(qid) MAIL_OUT ALICE_OUT START_DATA QUEUED(qid)

static struct smtp_server_opts mailmax_opts(unsigned n)
{
    struct smtp_server_opts o = default_opts();
    o.max_messages_per_session = n;
    return o;
}

/* limit-1, limit, limit+1: two accepted messages, the third MAIL gets 421 and the session
 * closes; pipelined commands after it are never read. */
static void test_max_messages_per_session(void **state)
{
    (void)state;
    check(&(struct transcript){
        .has_opts = true, .opts = mailmax_opts(2),
        .in = HELO_IN ONE_MSG_IN ONE_MSG_IN MAIL_IN ALICE_IN,
        .out = GREETING HELO_OUT ONE_MSG_OUT("QID1") ONE_MSG_OUT("QID2") TOO_MANY_MESSAGES});
}

/* The transaction under way always finishes; RSET, refused messages and a fresh EHLO do not
 * count or reset the count. */
static void test_max_messages_counts_accepted_only(void **state)
{
    (void)state;
    check(&(struct transcript){
        .has_opts = true, .opts = mailmax_opts(1),
        .in = HELO_IN MAIL_IN "RSET\r\n" MAIL_IN ALICE_IN "DATA\r\nx\ny\r\n.\r\n"
              ONE_MSG_IN "RSET\r\n" EHLO_IN MAIL_IN,
        .out = GREETING HELO_OUT MAIL_OUT "250 2.0.0 Reset state\r\n" MAIL_OUT ALICE_OUT
               START_DATA BARE_LF ONE_MSG_OUT("QID1") "250 2.0.0 Reset state\r\n"
               "250-" HOST "\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n250-8BITMIME\r\n"
               "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n250-DSN\r\n"
               "250 LIMITS RCPTMAX=100 MAILMAX=1\r\n" TOO_MANY_MESSAGES});
}

static void test_limits_keyword(void **state)
{
    (void)state;
    struct smtp_server_opts o = default_opts();
    o.ext = 0;
    o.max_recipients = 1234567; /* RFC 9422: at most six digits */
    o.max_messages_per_session = 5;
    check(&(struct transcript){
        .has_opts = true, .opts = o, .in = EHLO_IN, .open = true,
        .out = GREETING "250-" HOST "\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n"
               "250 LIMITS RCPTMAX=999999 MAILMAX=5\r\n"});
    o.max_recipients = 0;
    check(&(struct transcript){
        .has_opts = true, .opts = o, .in = EHLO_IN, .open = true,
        .out = GREETING "250-" HOST "\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n"
               "250 LIMITS MAILMAX=5\r\n"});
    o.max_messages_per_session = 0;
    check(&(struct transcript){
        .has_opts = true, .opts = o, .in = EHLO_IN HELO_IN, .open = true,
        .out = GREETING "250-" HOST "\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n"
               HELO_OUT});
}

/* A connection refused before its greeting (sessions per minute) says 421 and nothing else. */
static void test_refuse_instead_of_greeting(void **state)
{
    (void)state;
    struct smtp_server_opts o = default_opts();
    struct fake f = {.write_event_at = SIZE_MAX};
    struct smtp_server *s = smtp_server_new(&o, &fake_cb, &f);
    assert_non_null(s);
    smtp_server_refuse(s, REPLY_TOO_MANY_SESSIONS_IP);
    size_t n;
    const char *p = smtp_server_output(s, &n);
    const char *want = "421 4.7.0 " HOST " Error: too many connections from your IP address in "
                       "the last minute, try again later\r\n";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(p, want, n);
    assert_true(smtp_server_closing(s));
    assert_int_equal(smtp_server_input_room(s), 0);
    assert_int_equal(f.replies, 1);
    smtp_server_free(s);
}

/* What the caller's limits read: recipients of the open transaction, command lines. */
static void test_rcpt_count_and_commands(void **state)
{
    (void)state;
    struct script sc = {0};
    struct smtp_server_opts o = default_opts();
    struct fake *f = fake_open(&sc, &o);
    assert_int_equal(smtp_server_rcpt_count(f->s), 0);
    assert_int_equal(smtp_server_commands(f->s), 0);
    feed(f, HELO_IN MAIL_IN ALICE_IN "RCPT TO:<nobody@example.test>\r\n" BOB_IN);
    assert_int_equal(smtp_server_rcpt_count(f->s), 2);
    assert_int_equal(smtp_server_commands(f->s), 5);
    feed(f, "DATA\r\nline\r\nline\r\n.\r\n"); /* message lines are not commands */
    assert_int_equal(smtp_server_rcpt_count(f->s), 0);
    assert_int_equal(smtp_server_commands(f->s), 6);
    fake_close(f);
}

/* The caller's command rate limit: lines beyond it wait, whole, until it rises; message content
 * is never held. */
static void test_command_limit_holds_lines(void **state)
{
    (void)state;
    struct script sc = {0};
    struct smtp_server_opts o = default_opts();
    struct fake *f = fake_open(&sc, &o);
    smtp_server_set_command_limit(f->s, 2);
    assert_false(smtp_server_command_limited(f->s));
    feed(f, HELO_IN "NOOP\r\nNOOP\r\n" MAIL_IN);
    expect_out(f, GREETING HELO_OUT "250 2.0.0 Ok\r\n");
    assert_true(smtp_server_command_limited(f->s));
    assert_int_equal(smtp_server_commands(f->s), 2);
    smtp_server_set_command_limit(f->s, 4); /* handles what waited */
    drain(f);
    expect_out(f, GREETING HELO_OUT "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n" MAIL_OUT);
    assert_false(smtp_server_command_limited(f->s));
    feed(f, ALICE_IN "DATA\r\n" "NOOP\r\n.\r\n");
    /* RCPT is the 5th line: held; DATA content would pass, but DATA itself waits */
    assert_true(smtp_server_command_limited(f->s));
    smtp_server_set_command_limit(f->s, 6);
    drain(f);
    assert_false(smtp_server_command_limited(f->s));
    expect_out(f, GREETING HELO_OUT "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n" MAIL_OUT ALICE_OUT
               START_DATA QUEUED("QID1"));
    assert_int_equal(smtp_server_commands(f->s), 6); /* "NOOP" inside the message is content */
    fake_close(f);
}

static int close_leftovers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
        if (live[i])
            fake_close(live[i]);
    return 0;
}

int main(void)
{
/* every test closes what a failure left open */
#define T(f) cmocka_unit_test_teardown(f, close_leftovers)
    const struct CMUnitTest tests[] = {
        T(test_state_trace),
        T(test_greeting),
        T(test_ehlo_lists_extensions),
        T(test_ehlo_without_optional_extensions),
        T(test_helo),
        T(test_quit_closes),
        T(test_helo_tolerates_sloppy_names),
        T(test_helo_name_is_kept),
        T(test_noop),
        T(test_vrfy_neither_confirms_nor_denies),
        T(test_help_is_multiline),
        T(test_expn_turn_not_implemented),
        T(test_unknown_command),
        T(test_mail_before_helo),
        T(test_rcpt_before_mail),
        T(test_data_before_mail),
        T(test_data_without_rcpt),
        T(test_data_after_rejected_rcpts),
        T(test_nested_mail),
        T(test_rset_ends_transaction),
        T(test_helo_resets_transaction),
        T(test_command_line_limit),
        T(test_mail_line_limit),
        T(test_long_line_without_lf),
        T(test_syntax_errors),
        T(test_bad_sender),
        T(test_bad_recipient),
        T(test_unknown_parameter),
        T(test_body_binarymime_not_supported),
        T(test_garbage_in_command_lines),
        T(test_user_unknown),
        T(test_relay_denied),
        T(test_postmaster_without_domain),
        T(test_too_many_recipients),
        T(test_rcpt_overshoot_counts_errors_past_its_limit),
        T(test_size_parameter_over_limit),
        T(test_disk_full_at_mail),
        T(test_smtputf8_sender),
        T(test_utf8_recipient_without_smtputf8),
        T(test_soft_bounce),
        T(test_message_queued),
        T(test_dot_unstuffing),
        T(test_empty_message),
        T(test_pipelined_batch),
        T(test_message_over_size_limit),
        T(test_message_at_size_limit),
        T(test_write_failure),
        T(test_nul_in_body),
        T(test_bare_lf_rejected),
        T(test_bare_lf_normalized),
        T(test_smuggling_lf_dot_lf),
        T(test_smuggling_cr_dot_crlf),
        T(test_smuggling_lf_dot_crlf),
        T(test_smuggling_crlf_dot_lf),
        T(test_all_decisions_pending),
        T(test_pending_data_end_holds_pipelined_quit),
        T(test_input_room_runs_out_while_pending),
        T(test_unread_replies_stay_bounded),
        T(test_message_content_flows_while_replies_wait),
        T(test_duplicate_recipients_merge),
        T(test_data_begin_refused),
        T(test_too_many_errors),
        T(test_timeout),
        T(test_shutdown_idle),
        T(test_shutdown_in_transaction),
        T(test_feed_after_close_ignored),
        T(test_on_reply_sees_command),
        T(test_bdat_chunks),
        T(test_bdat_single_last_chunk),
        T(test_hops_at_limit_queued),
        T(test_hops_over_limit_refused),
        T(test_bdat_without_mail),
        T(test_bdat_without_rcpt),
        T(test_bdat_then_data),
        T(test_bdat_content_never_executed),
        T(test_bdat_over_size_limit),
        T(test_bdat_bare_lf_rejected),
        T(test_rset_between_chunks_aborts),
        T(test_rcpt_between_chunks_refused),
        T(test_max_messages_per_session),
        T(test_max_messages_counts_accepted_only),
        T(test_limits_keyword),
        T(test_refuse_instead_of_greeting),
        T(test_rcpt_count_and_commands),
        T(test_command_limit_holds_lines),
        T(test_bdat_before_helo_keeps_helo_required),
        T(test_timeout_while_data_end_pending),
        /* last: a regression here may end the process (NULL envelope, NULL + 0) */
        T(test_timeout_while_rcpt_pending),
        T(test_output_after_large_output_sent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
