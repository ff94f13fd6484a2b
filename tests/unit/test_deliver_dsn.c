/* tests/unit/test_deliver_dsn.c — DSN reports parsed back: MIME structure, RFC 3464 fields,
 * CRLF, RET/ENVID/ORCPT/NOTIFY handling, hostile replies and addresses, and the wording. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/dsn.h"
#include "store/queue.h"

/* ---- a minimal MIME reader ---------------------------------------------------------------- */

#define MAX_PARTS 8

struct part {
    char type[128];     /* Content-Type value, unfolded */
    char cte[32];
    const char *body;   /* into the report */
    size_t body_len;
};

struct parsed {
    char *raw;
    size_t len;
    char header[8192];  /* the top-level header, unfolded: "Name: value\n" per field */
    char boundary[128];
    struct part parts[MAX_PARTS];
    size_t n_parts;
};

/* Every line ends in CRLF; no CR or LF stands alone. */
static void assert_crlf_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r') {
            assert_true(i + 1 < n);
            assert_int_equal(s[i + 1], '\n');
        } else if (s[i] == '\n') {
            assert_true(i > 0);
            assert_int_equal(s[i - 1], '\r');
        }
    }
}

/* Unfolds the header section starting at s into out; returns the offset of the body. */
static size_t unfold_header(const char *s, size_t n, char *out, size_t cap)
{
    size_t i = 0, o = 0;
    while (i < n) {
        const char *eol = memmem(s + i, n - i, "\r\n", 2);
        assert_non_null(eol);
        size_t len = (size_t)(eol - (s + i));
        if (len == 0)
            return i + 2;
        bool folded = s[i] == ' ' || s[i] == '\t';
        if (folded) {
            assert_true(o > 0);
            o--; /* drop the '\n' of the previous line */
        }
        assert_true(o + len + 2 < cap);
        memcpy(out + o, s + i, len);
        o += len;
        out[o++] = '\n';
        out[o] = '\0';
        i += len + 2;
    }
    fail_msg("header without end");
    return n;
}

/* The value of field `name` in an unfolded header, copied into buf; false when absent. */
static bool field(const char *header, const char *name, char *buf, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = header; *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = len - (size_t)(v - p);
            assert_true(vl < cap);
            memcpy(buf, v, vl);
            buf[vl] = '\0';
            return true;
        }
        p += len + (eol ? 1 : 0);
    }
    return false;
}

static void parse(struct parsed *m, char *raw, size_t len)
{
    memset(m, 0, sizeof *m);
    m->raw = raw;
    m->len = len;
    assert_int_equal(strlen(raw), len);
    assert_crlf_only(raw, len);
    size_t body = unfold_header(raw, len, m->header, sizeof m->header);
    char ct[512];
    assert_true(field(m->header, "Content-Type", ct, sizeof ct));
    assert_non_null(strstr(ct, "multipart/report"));
    assert_non_null(strstr(ct, "report-type=delivery-status"));
    const char *b = strstr(ct, "boundary=\"");
    assert_non_null(b);
    b += strlen("boundary=\"");
    const char *e = strchr(b, '"');
    assert_non_null(e);
    snprintf(m->boundary, sizeof m->boundary, "%.*s", (int)(e - b), b);

    char delim[160];
    snprintf(delim, sizeof delim, "\r\n--%s", m->boundary);
    size_t dl = strlen(delim);
    const char *p = memmem(raw + body, len - body, delim, dl);
    assert_non_null(p);
    for (;;) {
        p += dl;
        if (p[0] == '-' && p[1] == '-') { /* the close delimiter */
            assert_string_equal(p, "--\r\n");
            break;
        }
        assert_true(p[0] == '\r' && p[1] == '\n');
        p += 2;
        assert_true(m->n_parts < MAX_PARTS);
        struct part *pt = &m->parts[m->n_parts++];
        char ph[1024];
        size_t rest = len - (size_t)(p - raw);
        size_t hb = unfold_header(p, rest, ph, sizeof ph);
        assert_true(field(ph, "Content-Type", pt->type, sizeof pt->type));
        assert_true(field(ph, "Content-Transfer-Encoding", pt->cte, sizeof pt->cte));
        pt->body = p + hb;
        const char *next = memmem(pt->body, len - (size_t)(pt->body - raw), delim, dl);
        assert_non_null(next);
        pt->body_len = (size_t)(next - pt->body);
        p = next;
    }
}

/* The text of part i as a NUL-terminated copy (freed by the caller). */
static char *part_text(const struct parsed *m, size_t i)
{
    assert_true(i < m->n_parts);
    char *s = malloc(m->parts[i].body_len + 1);
    assert_non_null(s);
    memcpy(s, m->parts[i].body, m->parts[i].body_len);
    s[m->parts[i].body_len] = '\0';
    return s;
}

/* Group n of the delivery-status part (0: the per-message fields, then one per recipient),
 * unfolded into out. */
static void status_group(const struct parsed *m, size_t n, char *out, size_t cap)
{
    char *st = part_text(m, 1);
    const char *p = st;
    for (size_t g = 0; g < n; g++) {
        p = strstr(p, "\r\n\r\n");
        assert_non_null(p);
        p += 4;
    }
    const char *end = strstr(p, "\r\n\r\n");
    size_t len = end ? (size_t)(end - p) + 2 : strlen(p);
    char *tmp = malloc(len + 3);
    assert_non_null(tmp);
    memcpy(tmp, p, len);
    memcpy(tmp + len, "\r\n", 3); /* the empty line unfold_header stops at */
    unfold_header(tmp, len + 2, out, cap);
    free(tmp);
    free(st);
}

/* The text with every run of white space (line breaks and indents of wrapped prose) made one
 * space, so that phrases can be found wherever the wrapping broke them. In place. */
static char *squash(char *t)
{
    size_t o = 0;
    for (size_t i = 0; t[i]; i++) {
        bool ws = t[i] == ' ' || t[i] == '\r' || t[i] == '\n';
        if (ws && o > 0 && t[o - 1] == ' ')
            continue;
        t[o++] = ws ? ' ' : t[i];
    }
    t[o] = '\0';
    return t;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---- fixtures ----------------------------------------------------------------------------- */

static const char MESSAGE[] = "From: Alice <alice@example.test>\r\n"
                              "To: bob@example.org\r\n"
                              "Subject: the plan\r\n"
                              "\r\n"
                              "Hello Bob,\r\n"
                              "see you.\r\n";

static const int64_t ARRIVAL = 1715000000; /* Mon, 06 May 2024 12:53:20 */
static const int64_t NOW = 1715076100;     /* Tue, 07 May 2024 10:01:40 */

static struct deliver_dsn_input input(const struct deliver_dsn_rcpt *r, size_t n)
{
    return (struct deliver_dsn_input){
        .reporting_mta = "mail.example.test",
        .queue_id = "0123456789ABCDEF",
        .sender = "alice@example.test",
        .ret = STORE_RET_NONE,
        .arrival = ARRIVAL,
        .message = MESSAGE,
        .message_len = sizeof MESSAGE - 1,
        .rcpts = r,
        .n_rcpts = n,
    };
}

static struct deliver_dsn_rcpt failed_rcpt(void)
{
    return (struct deliver_dsn_rcpt){
        .final_recipient = "bob@example.org",
        .action = DELIVER_DSN_FAILED,
        .remote_mta = "mx.example.org",
        .diagnostic = "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown",
        .last_attempt = NOW - 100,
    };
}

static void build_ok(const struct deliver_dsn_input *in, uint64_t seed, struct parsed *m)
{
    char *out = NULL;
    size_t len = 0;
    enum deliver_dsn_err err = deliver_dsn_build(in, NOW, seed, &out, &len);
    if (err != DELIVER_DSN_OK)
        fail_msg("build: %s", deliver_dsn_strerror(err));
    parse(m, out, len);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_structure_failed(void **state)
{
    (void)state;
    struct deliver_dsn_rcpt r = failed_rcpt();
    struct deliver_dsn_input in = input(&r, 1);
    struct parsed m;
    build_ok(&in, 1, &m);
    char v[512];
    assert_true(field(m.header, "From", v, sizeof v));
    assert_string_equal(v, "Mail Delivery System <MAILER-DAEMON@mail.example.test>");
    assert_true(field(m.header, "To", v, sizeof v));
    assert_string_equal(v, "<alice@example.test>");
    assert_true(field(m.header, "Subject", v, sizeof v));
    assert_string_equal(v, "Undelivered Mail Returned to Sender");
    assert_true(field(m.header, "Date", v, sizeof v));
    assert_string_equal(v, "Tue, 07 May 2024 10:01:40 +0000");
    assert_true(field(m.header, "Message-ID", v, sizeof v));
    assert_string_equal(v, "<0123456789ABCDEF.1715076100@mail.example.test>");
    assert_true(field(m.header, "Auto-Submitted", v, sizeof v));
    assert_string_equal(v, "auto-replied");
    assert_true(field(m.header, "MIME-Version", v, sizeof v));
    assert_string_equal(v, "1.0");

    assert_int_equal(m.n_parts, 3);
    assert_string_equal(m.parts[0].type, "text/plain; charset=utf-8");
    assert_string_equal(m.parts[1].type, "message/delivery-status");
    assert_string_equal(m.parts[2].type, "text/rfc822-headers");
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(m.parts[i].cte, "7bit");

    char g[2048];
    status_group(&m, 0, g, sizeof g); /* the per-message fields */
    assert_true(field(g, "Reporting-MTA", v, sizeof v));
    assert_string_equal(v, "dns; mail.example.test");
    assert_true(field(g, "Arrival-Date", v, sizeof v));
    assert_string_equal(v, "Mon, 06 May 2024 12:53:20 +0000");
    assert_false(field(g, "Original-Envelope-Id", v, sizeof v));
    status_group(&m, 1, g, sizeof g);
    assert_true(field(g, "Final-Recipient", v, sizeof v));
    assert_string_equal(v, "rfc822; bob@example.org");
    assert_false(field(g, "Original-Recipient", v, sizeof v));
    assert_true(field(g, "Action", v, sizeof v));
    assert_string_equal(v, "failed");
    assert_true(field(g, "Status", v, sizeof v));
    assert_string_equal(v, "5.1.1");
    assert_true(field(g, "Remote-MTA", v, sizeof v));
    assert_string_equal(v, "dns; mx.example.org");
    assert_true(field(g, "Diagnostic-Code", v, sizeof v));
    assert_string_equal(v, "smtp; 550 5.1.1 <bob@example.org>: Recipient address rejected: "
                           "User unknown");
    assert_true(field(g, "Last-Attempt-Date", v, sizeof v));
    assert_string_equal(v, "Tue, 07 May 2024 10:00:00 +0000");
    assert_false(field(g, "Will-Retry-Until", v, sizeof v));

    /* RET absent: the header of the original, without its body. */
    char *h = part_text(&m, 2);
    assert_string_equal(h, "From: Alice <alice@example.test>\r\nTo: bob@example.org\r\n"
                           "Subject: the plan\r\n");
    free(h);
    free(m.raw);
}

static void test_human_part_wording(void **state)
{
    (void)state;
    struct deliver_dsn_rcpt r = failed_rcpt();
    struct deliver_dsn_input in = input(&r, 1);
    struct parsed m;
    build_ok(&in, 1, &m);
    char *t = part_text(&m, 0);
    assert_non_null(strstr(t, "This is the mail system at mail.example.test."));
    assert_non_null(strstr(t, "<bob@example.org>: could not be delivered."));
    assert_non_null(strstr(t, "The recipient address does not exist."));
    assert_non_null(strstr(t, "Likely cause: "));
    assert_non_null(strstr(t, "What you can do: Check the spelling."));
    assert_non_null(strstr(t, "The server mx.example.org said:\r\n"));
    assert_non_null(strstr(t, "      550 5.1.1 <bob@example.org>: Recipient address rejected:"));
    assert_non_null(strstr(t, "Queue ID 0123456789ABCDEF, received Mon, 06 May 2024"));
    assert_null(strstr(t, "Given up")); /* a permanent failure was not retried */
    /* Our prose wraps at 78 columns. */
    for (const char *p = t; *p;) {
        const char *eol = strstr(p, "\r\n");
        assert_non_null(eol);
        assert_true(eol - p <= 78);
        p = eol + 2;
    }
    free(t);
    free(m.raw);
}

static void test_mailbox_full_delayed(void **state)
{
    (void)state;
    struct deliver_dsn_rcpt r = {
        .final_recipient = "bob@example.org",
        .action = DELIVER_DSN_DELAYED,
        .remote_mta = "mx.example.org",
        .diagnostic = "452-4.2.2 The email account that you tried to reach is over quota.\r\n"
                      "452 4.2.2 Please direct the recipient to the help page.",
        .last_attempt = NOW - 60,
        .will_retry_until = ARRIVAL + 5 * 86400,
    };
    struct deliver_dsn_input in = input(&r, 1);
    in.ret = STORE_RET_FULL; /* not for a delay: headers only */
    struct parsed m;
    build_ok(&in, 7, &m);
    char v[512], g[2048];
    assert_true(field(m.header, "Subject", v, sizeof v));
    assert_string_equal(v, "Delayed Mail (still being retried)");
    assert_int_equal(m.n_parts, 3);
    assert_string_equal(m.parts[2].type, "text/rfc822-headers");
    status_group(&m, 1, g, sizeof g);
    assert_true(field(g, "Action", v, sizeof v));
    assert_string_equal(v, "delayed");
    assert_true(field(g, "Status", v, sizeof v));
    assert_string_equal(v, "4.2.2");
    assert_true(field(g, "Will-Retry-Until", v, sizeof v));
    assert_string_equal(v, "Sat, 11 May 2024 12:53:20 +0000");
    /* A multi-line reply is one line of text in the Diagnostic-Code. */
    assert_true(field(g, "Diagnostic-Code", v, sizeof v));
    assert_string_equal(v, "smtp; 452 4.2.2 The email account that you tried to reach is over "
                           "quota. Please direct the recipient to the help page.");
    char *t = part_text(&m, 0);
    /* The reply quoted as received, line by line. */
    assert_non_null(strstr(t, "\r\n      452-4.2.2 The email account that you tried to reach"));
    assert_non_null(strstr(t, "\r\n      452 4.2.2 Please direct the recipient to the help page."));
    squash(t);
    assert_non_null(strstr(t, "<bob@example.org>: not delivered yet; clearmta is still trying."));
    assert_non_null(strstr(t, "The recipient's mailbox is full."));
    assert_non_null(strstr(t, "Next: clearmta will keep trying until Sat, 11 May 2024 12:53:20 "
                              "+0000. You need not send the message again; if it still fails "
                              "then, you will get another report."));
    assert_non_null(strstr(t, "reach the recipient another way"));
    free(t);
    free(m.raw);
}

static void test_ret_full_and_limit(void **state)
{
    (void)state;
    struct deliver_dsn_rcpt r = failed_rcpt();
    struct deliver_dsn_input in = input(&r, 1);
    in.ret = STORE_RET_FULL;
    struct parsed m;
    build_ok(&in, 1, &m);
    assert_int_equal(m.n_parts, 3);
    assert_string_equal(m.parts[2].type, "message/rfc822");
    char *body = part_text(&m, 2);
    assert_string_equal(body, MESSAGE);
    free(body);
    free(m.raw);

    in.return_limit = sizeof MESSAGE - 2; /* one byte too small */
    build_ok(&in, 1, &m);
    assert_string_equal(m.parts[2].type, "text/rfc822-headers");
    char *t = squash(part_text(&m, 0));
    assert_non_null(strstr(t, "too large to return in full"));
    free(t);
    free(m.raw);

    in.return_limit = sizeof MESSAGE - 1; /* exactly fits */
    build_ok(&in, 1, &m);
    assert_string_equal(m.parts[2].type, "message/rfc822");
    free(m.raw);

    in.ret = STORE_RET_HDRS;
    in.return_limit = 0;
    build_ok(&in, 1, &m);
    assert_string_equal(m.parts[2].type, "text/rfc822-headers");
    free(m.raw);

    in.message = NULL; /* nothing to return: two parts */
    in.message_len = 0;
    build_ok(&in, 1, &m);
    assert_int_equal(m.n_parts, 2);
    free(m.raw);
}

static void test_returned_content_normalised(void **state)
{
    (void)state;
    struct deliver_dsn_rcpt r = failed_rcpt();
    struct deliver_dsn_input in = input(&r, 1);
    static const char bare[] = "Subject: bare\nX-A: 1\rX-B: 2\n\nbody\nline";
    in.message = bare;
    in.message_len = sizeof bare - 1;
    struct parsed m;
    build_ok(&in, 1, &m); /* parse() checks that every line ends in CRLF */
    char *h = part_text(&m, 2);
    assert_string_equal(h, "Subject: bare\r\nX-A: 1\r\nX-B: 2\r\n");
    free(h);
    free(m.raw);

    in.ret = STORE_RET_FULL;
    build_ok(&in, 1, &m);
    char *full = part_text(&m, 2);
    assert_string_equal(full, "Subject: bare\r\nX-A: 1\r\nX-B: 2\r\n\r\nbody\r\nline\r\n");
    free(full);
    free(m.raw);

    static const char headless[] = "\r\nbody only\r\n";
    in.ret = STORE_RET_HDRS;
    in.message = headless;
    in.message_len = sizeof headless - 1;
    build_ok(&in, 1, &m);
    assert_int_equal(m.parts[2].body_len, 0);
    free(m.raw);

    static const char truncated[] = "Subject: no end";
    in.message = truncated;
    in.message_len = sizeof truncated - 1;
    build_ok(&in, 1, &m);
    h = part_text(&m, 2);
    assert_string_equal(h, "Subject: no end\r\n");
    free(h);
    free(m.raw);
}

static void test_envid_and_orcpt(void **state)
{
    (void)state;
    struct deliver_dsn_rcpt r = failed_rcpt();
    r.orcpt = "rfc822;bob+2Bold@example.org";
    struct deliver_dsn_input in = input(&r, 1);
    in.envid = "QQ314+2B159";
    struct parsed m;
    build_ok(&in, 1, &m);
    char g[2048], v[512];
    status_group(&m, 0, g, sizeof g);
    assert_true(field(g, "Original-Envelope-Id", v, sizeof v));
    assert_string_equal(v, "QQ314+159");
    status_group(&m, 1, g, sizeof g);
    assert_true(field(g, "Original-Recipient", v, sizeof v));
    assert_string_equal(v, "rfc822; bob+old@example.org");
    free(m.raw);

    /* xtext that would decode to a line break stays encoded; a malformed ORCPT is left out. */
    r.orcpt = "rfc822;x+0D+0ABcc:+20evil@example.org";
    in.envid = "A+0D+0AB";
    build_ok(&in, 1, &m);
    status_group(&m, 0, g, sizeof g);
    assert_true(field(g, "Original-Envelope-Id", v, sizeof v));
    assert_string_equal(v, "A+0D+0AB");
    status_group(&m, 1, g, sizeof g);
    assert_true(field(g, "Original-Recipient", v, sizeof v));
    assert_string_equal(v, "rfc822; x+0D+0ABcc:+20evil@example.org");
    free(m.raw);

    r.orcpt = "no-semicolon";
    build_ok(&in, 1, &m);
    status_group(&m, 1, g, sizeof g);
    assert_false(field(g, "Original-Recipient", v, sizeof v));
    free(m.raw);
}

static void test_notify_rules(void **state)
{
    (void)state;
    const unsigned N = STORE_NOTIFY_NEVER, S = STORE_NOTIFY_SUCCESS, F = STORE_NOTIFY_FAILURE,
                   D = STORE_NOTIFY_DELAY;
    /* absent: failure and delay */
    assert_true(deliver_dsn_wanted(0, DELIVER_DSN_FAILED));
    assert_true(deliver_dsn_wanted(0, DELIVER_DSN_DELAYED));
    assert_false(deliver_dsn_wanted(0, DELIVER_DSN_DELIVERED));
    assert_false(deliver_dsn_wanted(0, DELIVER_DSN_RELAYED));
    assert_false(deliver_dsn_wanted(0, DELIVER_DSN_EXPANDED));
    /* NEVER: nothing, whatever else is set */
    for (int a = DELIVER_DSN_FAILED; a <= DELIVER_DSN_EXPANDED; a++) {
        assert_false(deliver_dsn_wanted(N, (enum deliver_dsn_action)a));
        assert_false(deliver_dsn_wanted(N | S | F | D, (enum deliver_dsn_action)a));
    }
    assert_true(deliver_dsn_wanted(S, DELIVER_DSN_DELIVERED));
    assert_true(deliver_dsn_wanted(S, DELIVER_DSN_RELAYED));
    assert_true(deliver_dsn_wanted(S, DELIVER_DSN_EXPANDED));
    assert_false(deliver_dsn_wanted(S, DELIVER_DSN_FAILED));
    assert_false(deliver_dsn_wanted(S, DELIVER_DSN_DELAYED));
    assert_true(deliver_dsn_wanted(F, DELIVER_DSN_FAILED));
    assert_false(deliver_dsn_wanted(F, DELIVER_DSN_DELAYED));
    assert_false(deliver_dsn_wanted(F, DELIVER_DSN_DELIVERED));
    assert_true(deliver_dsn_wanted(D, DELIVER_DSN_DELAYED));
    assert_false(deliver_dsn_wanted(D, DELIVER_DSN_FAILED));
    assert_true(deliver_dsn_wanted(S | F, DELIVER_DSN_FAILED));
    assert_true(deliver_dsn_wanted(S | F, DELIVER_DSN_DELIVERED));

    /* The builder applies them per recipient. */
    struct deliver_dsn_rcpt r = failed_rcpt();
    r.notify = N;
    struct deliver_dsn_input in = input(&r, 1);
    char *out = (char *)1;
    size_t len = 99;
    assert_int_equal(deliver_dsn_build(&in, NOW, 1, &out, &len),
                     DELIVER_DSN_ERR_NOTHING_TO_REPORT);
    assert_null(out);
    assert_int_equal(len, 0);
    r.notify = S; /* failed, but only success asked for */
    assert_int_equal(deliver_dsn_build(&in, NOW, 1, &out, &len),
                     DELIVER_DSN_ERR_NOTHING_TO_REPORT);
    r.action = DELIVER_DSN_DELAYED;
    r.notify = F;
    assert_int_equal(deliver_dsn_build(&in, NOW, 1, &out, &len),
                     DELIVER_DSN_ERR_NOTHING_TO_REPORT);
    in.n_rcpts = 0;
    assert_int_equal(deliver_dsn_build(&in, NOW, 1, &out, &len),
                     DELIVER_DSN_ERR_NOTHING_TO_REPORT);
}

static void test_success_reports(void **state)
{
    (void)state;
    const enum deliver_dsn_action actions[] = {DELIVER_DSN_DELIVERED, DELIVER_DSN_RELAYED,
                                               DELIVER_DSN_EXPANDED};
    const char *names[] = {"delivered", "relayed", "expanded"};
    const char *words[] = {"<bob@example.org>: delivered.", "passed on (relayed)",
                           "forwards to other addresses"};
    for (size_t i = 0; i < 3; i++) {
        struct deliver_dsn_rcpt r = {
            .final_recipient = "bob@example.org",
            .notify = STORE_NOTIFY_SUCCESS,
            .action = actions[i],
            .remote_mta = "mx.example.org",
            .diagnostic = "250 2.0.0 Ok: queued as 4Vb1x",
        };
        struct deliver_dsn_input in = input(&r, 1);
        in.ret = STORE_RET_FULL; /* never the full message in a success report */
        struct parsed m;
        build_ok(&in, i, &m);
        char v[512], g[2048];
        assert_true(field(m.header, "Subject", v, sizeof v));
        assert_string_equal(v, "Successful Mail Delivery Report");
        assert_string_equal(m.parts[2].type, "text/rfc822-headers");
        status_group(&m, 1, g, sizeof g);
        assert_true(field(g, "Action", v, sizeof v));
        assert_string_equal(v, names[i]);
        assert_true(field(g, "Status", v, sizeof v));
        assert_string_equal(v, "2.0.0");
        char *t = squash(part_text(&m, 0));
        assert_non_null(strstr(t, words[i]));
        assert_null(strstr(t, "Likely cause"));
        free(t);
        free(m.raw);
    }
}

static void test_null_sender_refused(void **state)
{
    (void)state;
    struct deliver_dsn_rcpt r = failed_rcpt();
    struct deliver_dsn_input in = input(&r, 1);
    char *out = (char *)1;
    size_t len = 5;
    in.sender = "";
    assert_int_equal(deliver_dsn_build(&in, NOW, 1, &out, &len), DELIVER_DSN_ERR_NULL_SENDER);
    assert_null(out);
    assert_int_equal(len, 0);
    in.sender = "<>";
    assert_int_equal(deliver_dsn_build(&in, NOW, 1, &out, &len), DELIVER_DSN_ERR_NULL_SENDER);
}

static void test_invalid_input(void **state)
{
    (void)state;
    struct deliver_dsn_rcpt r = failed_rcpt();
    char *out;
    size_t len;
    struct deliver_dsn_input in = input(&r, 1);
    assert_int_equal(deliver_dsn_build(NULL, NOW, 1, &out, &len), DELIVER_DSN_ERR_INVALID);
    in.sender = NULL;
    assert_int_equal(deliver_dsn_build(&in, NOW, 1, &out, &len), DELIVER_DSN_ERR_INVALID);
    in = input(&r, 1);
    in.reporting_mta = "mail.example.test\r\nBcc: x";
    assert_int_equal(deliver_dsn_build(&in, NOW, 1, &out, &len), DELIVER_DSN_ERR_INVALID);
    in.reporting_mta = "";
    assert_int_equal(deliver_dsn_build(&in, NOW, 1, &out, &len), DELIVER_DSN_ERR_INVALID);
    in = input(&r, 1);
    in.queue_id = "ab cd";
    assert_int_equal(deliver_dsn_build(&in, NOW, 1, &out, &len), DELIVER_DSN_ERR_INVALID);
    in = input(&r, 1);
    in.rcpts = NULL;
    assert_int_equal(deliver_dsn_build(&in, NOW, 1, &out, &len), DELIVER_DSN_ERR_INVALID);
    in = input(&r, 1);
    in.message = NULL; /* a length without bytes */
    assert_int_equal(deliver_dsn_build(&in, NOW, 1, &out, &len), DELIVER_DSN_ERR_INVALID);
    in = input(&r, 1);
    in.reporting_mta = "[192.0.2.1]"; /* an address literal is fine */
    assert_int_equal(deliver_dsn_build(&in, NOW, 1, &out, &len), DELIVER_DSN_OK);
    free(out);
}

/* A line of the report that starts a header field named `name` (at any level). */
static bool has_field_line(const char *raw, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = raw; p; p = strstr(p, "\r\n")) {
        if (p != raw)
            p += 2;
        if (strncasecmp(p, name, nl) == 0)
            return true;
    }
    return false;
}

static void test_no_injection(void **state)
{
    (void)state;
    struct deliver_dsn_rcpt r = failed_rcpt();
    r.final_recipient = "bob@example.org\r\nBcc: victim1@example.net";
    r.remote_mta = "mx.example.org\r\nBcc: victim2@example.net";
    r.diagnostic = "550 5.1.1 nope\r\nBcc: victim3@example.net\r\n\r\n"
                   "--=_clearmta_0000000000000000\r\nContent-Type: text/html\r\n\r\n<b>x</b>\x1b[31m\x7f";
    struct deliver_dsn_input in = input(&r, 1);
    in.sender = "alice@example.test>\r\nBcc: victim4@example.net\r\nX: <";
    struct parsed m;
    build_ok(&in, 3, &m); /* parse() checks CRLF and the MIME structure */
    assert_int_equal(m.n_parts, 3);
    assert_false(has_field_line(m.raw, "Bcc:"));
    assert_false(has_field_line(m.raw, "Content-Type: text/html"));
    assert_null(strchr(m.raw, '\x1b'));
    assert_null(strchr(m.raw, '\x7f'));
    char v[512];
    assert_true(field(m.header, "To", v, sizeof v));
    assert_string_equal(v, "<alice@example.test>??Bcc: victim4@example.net??X: <>");
    /* The header holds only our fields. */
    size_t fields = count(m.header, "\n");
    assert_int_equal(fields, 9);
    free(m.raw);
}

static void test_boundary_repicked(void **state)
{
    (void)state;
    struct deliver_dsn_rcpt r = failed_rcpt();
    struct deliver_dsn_input in = input(&r, 1);
    struct parsed m;
    build_ok(&in, 99, &m);
    char first[128];
    snprintf(first, sizeof first, "%s", m.boundary);
    free(m.raw);

    /* The same seed with a message (RET=FULL) and a reply that both hold that boundary. */
    char msg[512], diag[256];
    snprintf(msg, sizeof msg, "Subject: x\r\n\r\n--%s\r\nContent-Type: text/html\r\n\r\nx\r\n",
             first);
    snprintf(diag, sizeof diag, "550 5.1.1 --%s--", first);
    r.diagnostic = diag;
    in.ret = STORE_RET_FULL;
    in.message = msg;
    in.message_len = strlen(msg);
    build_ok(&in, 99, &m);
    assert_string_not_equal(m.boundary, first);
    assert_int_equal(m.n_parts, 3);
    assert_string_equal(m.parts[2].type, "message/rfc822");
    free(m.raw);
}

static void test_multi_recipient_mix(void **state)
{
    (void)state;
    struct deliver_dsn_rcpt r[4] = {
        failed_rcpt(),
        {.final_recipient = "carol@example.net", .action = DELIVER_DSN_DELAYED,
         .remote_mta = "mx.example.net", .diagnostic = "451 4.7.1 Greylisted, try again later",
         .will_retry_until = ARRIVAL + 432000},
        /* delivered, but no SUCCESS asked for: left out */
        {.final_recipient = "dave@example.com", .action = DELIVER_DSN_DELIVERED,
         .diagnostic = "250 2.0.0 ok"},
        /* given up after temporary failures: failed with a 4.x.x status */
        {.final_recipient = "erin@example.com", .action = DELIVER_DSN_FAILED,
         .status = {4, 4, 7},
         .diagnostic = "connect to mx.example.com[192.0.2.7]:25: Connection timed out"},
    };
    struct deliver_dsn_input in = input(r, 4);
    in.ret = STORE_RET_FULL;
    struct parsed m;
    build_ok(&in, 5, &m);
    char v[512], g[2048];
    assert_true(field(m.header, "Subject", v, sizeof v));
    assert_string_equal(v, "Undelivered Mail Returned to Sender");
    assert_string_equal(m.parts[2].type, "message/rfc822");
    char *st = part_text(&m, 1);
    assert_int_equal(count(st, "Final-Recipient:"), 3);
    assert_null(strstr(st, "dave@example.com"));
    free(st);
    status_group(&m, 1, g, sizeof g);
    assert_true(field(g, "Action", v, sizeof v));
    assert_string_equal(v, "failed");
    status_group(&m, 2, g, sizeof g);
    assert_true(field(g, "Final-Recipient", v, sizeof v));
    assert_string_equal(v, "rfc822; carol@example.net");
    assert_true(field(g, "Action", v, sizeof v));
    assert_string_equal(v, "delayed");
    assert_true(field(g, "Will-Retry-Until", v, sizeof v));
    assert_false(field(g, "Last-Attempt-Date", v, sizeof v));
    status_group(&m, 3, g, sizeof g);
    assert_true(field(g, "Status", v, sizeof v));
    assert_string_equal(v, "4.4.7");
    assert_false(field(g, "Remote-MTA", v, sizeof v));
    assert_true(field(g, "Diagnostic-Code", v, sizeof v));
    assert_string_equal(v, "X-clearmta; connect to mx.example.com[192.0.2.7]:25: Connection "
                           "timed out");
    char *t = squash(part_text(&m, 0));
    assert_non_null(strstr(t, "could not be delivered to one or more"));
    assert_non_null(strstr(t, "<bob@example.org>: could not be delivered."));
    assert_non_null(strstr(t, "<carol@example.net>: not delivered yet"));
    assert_non_null(strstr(t, "<erin@example.com>: could not be delivered."));
    assert_non_null(strstr(t, "Given up: "));
    assert_non_null(strstr(t, "The mail system at mail.example.test reported:"));
    assert_null(strstr(t, "dave@"));
    free(t);
    free(m.raw);
}

static void test_status_derivation(void **state)
{
    (void)state;
    struct {
        enum deliver_dsn_action action;
        struct reply_status status;
        const char *diag, *want;
    } cases[] = {
        {DELIVER_DSN_FAILED, {0, 0, 0}, "550 no such user here", "5.0.0"},
        {DELIVER_DSN_FAILED, {0, 0, 0}, NULL, "5.0.0"},
        {DELIVER_DSN_DELAYED, {0, 0, 0}, NULL, "4.0.0"},
        {DELIVER_DSN_DELAYED, {0, 0, 0}, "421 mx busy", "4.0.0"},
        {DELIVER_DSN_FAILED, {5, 7, 1}, "550 5.1.1 nope", "5.7.1"}, /* the caller's wins */
        {DELIVER_DSN_FAILED, {9, 1, 1}, "550 5.1.1 nope", "5.1.1"}, /* invalid: ignored */
        {DELIVER_DSN_FAILED, {0, 0, 0}, "554-5.7.1 first\n554 5.7.1 second", "5.7.1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct deliver_dsn_rcpt r = {.final_recipient = "bob@example.org",
                                     .action = cases[i].action, .status = cases[i].status,
                                     .diagnostic = cases[i].diag};
        struct deliver_dsn_input in = input(&r, 1);
        struct parsed m;
        build_ok(&in, i, &m);
        char g[2048], v[512];
        status_group(&m, 1, g, sizeof g);
        assert_true(field(g, "Status", v, sizeof v));
        assert_string_equal(v, cases[i].want);
        assert_int_equal(field(g, "Diagnostic-Code", v, sizeof v), cases[i].diag != NULL);
        free(m.raw);
    }
}

static void assert_lines_within(const char *raw, size_t max)
{
    for (const char *p = raw; *p;) {
        const char *eol = strstr(p, "\r\n");
        assert_non_null(eol);
        assert_true((size_t)(eol - p) <= max);
        p = eol + 2;
    }
}

static void test_long_reply_folded(void **state)
{
    (void)state;
    char diag[3000];
    int n = snprintf(diag, sizeof diag, "550 5.7.1 see https://example.org/");
    memset(diag + n, 'a', 2500);
    diag[n + 2500] = '\0';
    struct deliver_dsn_rcpt r = failed_rcpt();
    r.diagnostic = diag;
    struct deliver_dsn_input in = input(&r, 1);
    struct parsed m;
    build_ok(&in, 1, &m);
    assert_lines_within(m.raw, 998);
    free(m.raw);
}

/* Found by fuzz_dsn: hostile fields without white space cannot be folded; they are cut so that
 * no line passes 998 octets (a '+' in a UTF-8 address grows sixfold as \x{2B}). */
static void test_long_fields_bounded(void **state)
{
    (void)state;
    static char rcpt[1200], orcpt[1200], envid[1600], mta[1300], sender[1600];
    memset(rcpt, '+', sizeof rcpt - 1);
    memcpy(rcpt, "\xc3\xb6", 2);
    memset(orcpt, 'o', sizeof orcpt - 1);
    memcpy(orcpt, "rfc822;", 7);
    memset(envid, 'e', sizeof envid - 1);
    memset(mta, 'm', sizeof mta - 1);
    memset(sender, 's', sizeof sender - 1);
    struct deliver_dsn_rcpt r = failed_rcpt();
    r.final_recipient = rcpt;
    r.orcpt = orcpt;
    r.remote_mta = mta;
    struct deliver_dsn_input in = input(&r, 1);
    in.envid = envid;
    in.sender = sender;
    struct parsed m;
    build_ok(&in, 1, &m);
    assert_lines_within(m.raw, 998);
    char g[8192], v[2048];
    status_group(&m, 1, g, sizeof g);
    assert_true(field(g, "Final-Recipient", v, sizeof v));
    assert_true(strncmp(v, "utf-8; \\x{F6}\\x{2B}\\x{2B}", 25) == 0);
    free(m.raw);
}

static void test_utf8_address(void **state)
{
    (void)state;
    struct deliver_dsn_rcpt r = failed_rcpt();
    r.final_recipient = "j\xc3\xb6rg+x@example.org";
    struct deliver_dsn_input in = input(&r, 1);
    struct parsed m;
    build_ok(&in, 1, &m);
    char g[2048], v[512];
    status_group(&m, 1, g, sizeof g);
    assert_true(field(g, "Final-Recipient", v, sizeof v));
    assert_string_equal(v, "utf-8; j\\x{F6}rg\\x{2B}x@example.org");
    assert_string_equal(m.parts[0].cte, "8bit");
    assert_string_equal(m.parts[1].cte, "7bit");
    char *t = squash(part_text(&m, 0));
    assert_non_null(strstr(t, "<j\xc3\xb6rg+x@example.org>: could not be delivered."));
    free(t);
    free(m.raw);

    /* Invalid UTF-8 never passes through. */
    r.final_recipient = "bad\xff\xc3(x@example.org";
    build_ok(&in, 1, &m);
    assert_null(strchr(m.raw, '\xff'));
    status_group(&m, 1, g, sizeof g);
    assert_true(field(g, "Final-Recipient", v, sizeof v));
    assert_string_equal(v, "rfc822; bad?" "?(x@example.org");
    free(m.raw);
}

static void test_date_format(void **state)
{
    (void)state;
    char buf[DELIVER_DSN_DATE_MAX];
    deliver_dsn_format_date(0, buf);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 +0000");
    deliver_dsn_format_date(951782400, buf);
    assert_string_equal(buf, "Tue, 29 Feb 2000 00:00:00 +0000");
    deliver_dsn_format_date(951868799, buf);
    assert_string_equal(buf, "Tue, 29 Feb 2000 23:59:59 +0000");
    deliver_dsn_format_date(4107542400, buf);
    assert_string_equal(buf, "Mon, 01 Mar 2100 00:00:00 +0000");
    deliver_dsn_format_date(NOW, buf);
    assert_string_equal(buf, "Tue, 07 May 2024 10:01:40 +0000");
    deliver_dsn_format_date(-5, buf);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 +0000");
    deliver_dsn_format_date(INT64_MAX, buf);
    assert_string_equal(buf, "Fri, 31 Dec 9999 23:59:59 +0000");
}

static void test_strings(void **state)
{
    (void)state;
    for (int e = DELIVER_DSN_OK; e <= DELIVER_DSN_ERR_NOMEM; e++)
        assert_non_null(deliver_dsn_strerror((enum deliver_dsn_err)e));
    assert_string_equal(deliver_dsn_strerror((enum deliver_dsn_err)99), "unknown DSN error");
    assert_string_equal(deliver_dsn_action_name(DELIVER_DSN_FAILED), "failed");
    assert_string_equal(deliver_dsn_action_name(DELIVER_DSN_EXPANDED), "expanded");
    assert_string_equal(deliver_dsn_action_name((enum deliver_dsn_action)42), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure_failed),
        cmocka_unit_test(test_human_part_wording),
        cmocka_unit_test(test_mailbox_full_delayed),
        cmocka_unit_test(test_ret_full_and_limit),
        cmocka_unit_test(test_returned_content_normalised),
        cmocka_unit_test(test_envid_and_orcpt),
        cmocka_unit_test(test_notify_rules),
        cmocka_unit_test(test_success_reports),
        cmocka_unit_test(test_null_sender_refused),
        cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_no_injection),
        cmocka_unit_test(test_boundary_repicked),
        cmocka_unit_test(test_multi_recipient_mix),
        cmocka_unit_test(test_status_derivation),
        cmocka_unit_test(test_long_reply_folded),
        cmocka_unit_test(test_long_fields_bounded),
        cmocka_unit_test(test_utf8_address),
        cmocka_unit_test(test_date_format),
        cmocka_unit_test(test_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
