/* tests/unit/test_reply_reply.c — the reply table's consistency (every codes.def row), reply
 * formatting byte for byte, the reply parser (limits at -1/at/+1, hostile bytes, every cut
 * point) and enhanced status parsing (src/reply/reply.c, src/reply/reason.c). */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "reply/reason.h"
#include "reply/reply.h"

/* ---- table consistency ---------------------------------------------------------------- */

static void assert_text(const char *s)
{
    assert_non_null(s);
    assert_true(s[0] != '\0');
    for (const char *p = s; *p != '\0'; p++) /* ASCII, no control characters */
        assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
}

static void assert_reason(const char *name)
{
    enum reply_reason r;
    if (!reply_reason_from_name(name, &r))
        fail_msg("unknown reason name '%s'", name);
}

static void test_basic_table(void **state)
{
    (void)state;
    assert_true(reply_basic_count > 40);
    for (size_t i = 0; i < reply_basic_count; i++) {
        const struct reply_basic *b = &reply_basic_table[i];
        assert_in_range(b->code, 200, 599);
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(reply_basic_table[j].code, b->code);
        assert_text(b->source);
        assert_text(b->title);
        assert_text(b->meaning);
        assert_text(b->cause);
        assert_text(b->action);
        assert_text(b->admin);
        assert_reason(b->reason);
        assert_ptr_equal(reply_basic_find(b->code), b);
    }
    assert_null(reply_basic_find(-1));
    assert_null(reply_basic_find(0));
    assert_null(reply_basic_find(249));
    assert_null(reply_basic_find(600));
    assert_null(reply_basic_find(1000));
    assert_int_equal(reply_basic_find(550)->code, 550);
}

/* A used_with list is "NNN NNN ...": each code has a BASIC row and a class in ->classes. */
static void assert_used_with(const struct reply_enhanced *e)
{
    const char *s = e->used_with;
    size_t len = strlen(s);
    assert_true(len >= 3 && len % 4 == 3);
    for (size_t i = 0; i < len; i += 4) {
        assert_true(i + 3 == len || s[i + 3] == ' ');
        int code = (s[i] - '0') * 100 + (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
        const struct reply_basic *b = reply_basic_find(code);
        if (b == NULL)
            fail_msg("X.%d.%d used with %d, which has no BASIC row", e->subject, e->detail, code);
        if (strchr(e->classes, s[i]) == NULL)
            fail_msg("X.%d.%d used with %d, but classes are \"%s\"", e->subject, e->detail,
                     code, e->classes);
    }
}

static void test_enhanced_table(void **state)
{
    (void)state;
    assert_true(reply_enhanced_count >= 81);
    for (size_t i = 0; i < reply_enhanced_count; i++) {
        const struct reply_enhanced *e = &reply_enhanced_table[i];
        assert_in_range(e->subject, 0, 7);
        assert_in_range(e->detail, 0, 999);
        for (size_t j = 0; j < i; j++)
            assert_false(reply_enhanced_table[j].subject == e->subject &&
                         reply_enhanced_table[j].detail == e->detail);
        /* classes: one or more of 2, 4, 5 in ascending order */
        assert_true(e->classes[0] != '\0');
        for (const char *c = e->classes; *c != '\0'; c++) {
            assert_non_null(strchr("245", *c));
            assert_true(c == e->classes || c[-1] < c[0]);
        }
        assert_text(e->title);
        assert_text(e->source);
        assert_text(e->meaning);
        assert_text(e->cause);
        assert_text(e->action);
        assert_text(e->admin);
        assert_reason(e->reason);
        assert_used_with(e);
        assert_ptr_equal(reply_enhanced_find(e->subject, e->detail), e);
    }
    assert_null(reply_enhanced_find(-1, 0));
    assert_null(reply_enhanced_find(8, 0));
    assert_null(reply_enhanced_find(1, -1));
    assert_null(reply_enhanced_find(1, 64));
    assert_null(reply_enhanced_find(7, 606)); /* Microsoft-private, not registered */
    assert_string_equal(reply_enhanced_find(7, 26)->title, "Multiple authentication checks failed");
    assert_string_equal(reply_enhanced_find(1, 10)->title, "Recipient address has null MX");
}

static void test_reply_rows(void **state)
{
    (void)state;
    for (int i = 0; i < REPLY__COUNT; i++) {
        const struct reply_row *r = reply_row_get((enum reply_id)i);
        assert_non_null(r);
        assert_int_equal(r->id, i);
        assert_int_equal(strncmp(r->name, "REPLY_", 6), 0);
        assert_non_null(reply_basic_find(r->code));
        assert_true(r->text[0] != '\0');
        assert_true(r->when[0] != '\0');
        const char *hole = strstr(r->text, "{}");
        if (hole != NULL && strstr(hole + 2, "{}") != NULL)
            fail_msg("%s has more than one {}", r->name);
        if (r->enhanced[0] == '\0')
            continue;
        struct reply_status st;
        size_t used = 0;
        if (!reply_status_parse(r->enhanced, strlen(r->enhanced), &st, &used) ||
            used != strlen(r->enhanced))
            fail_msg("%s: bad enhanced code '%s'", r->name, r->enhanced);
        if (st.cls != r->code / 100)
            fail_msg("%s: %d with %s", r->name, r->code, r->enhanced);
        const struct reply_enhanced *e = reply_enhanced_find(st.subject, st.detail);
        if (e == NULL || strchr(e->classes, '0' + st.cls) == NULL)
            fail_msg("%s: %s is not registered for class %d", r->name, r->enhanced, st.cls);
    }
    assert_null(reply_row_get(REPLY__COUNT));
    assert_null(reply_row_get((enum reply_id)-1));
}

/* Every delivery outcome's class matches its use: a deferral is 4.x.x, a bounce 5.x.x, a
 * delivery 2.x.x, and a queue-lifetime expiry keeps the transient class (RFC 3463 X.4.7). */
static void test_outcome_rows(void **state)
{
    (void)state;
    static const int class_of_use[] = {[REPLY_USE_SENT] = 2, [REPLY_USE_DEFER] = 4,
                                       [REPLY_USE_BOUNCE] = 5, [REPLY_USE_EXPIRE] = 4};
    for (int i = 0; i < OUTCOME__COUNT; i++) {
        const struct reply_outcome_row *o = reply_outcome_get((enum reply_outcome)i);
        assert_non_null(o);
        assert_int_equal(o->id, i);
        assert_int_equal(strncmp(o->name, "OUTCOME_", 8), 0);
        assert_true(o->when[0] != '\0');
        if (o->cls != class_of_use[o->use])
            fail_msg("%s: %d.%d.%d does not fit its use", o->name, o->cls, o->subject, o->detail);
        if (reply_enhanced_find(o->subject, o->detail) == NULL)
            fail_msg("%s: X.%d.%d is not registered", o->name, o->subject, o->detail);
        struct reply_status st = reply_outcome_status((enum reply_outcome)i);
        assert_int_equal(st.cls, o->cls);
        assert_int_equal(st.subject, o->subject);
        assert_int_equal(st.detail, o->detail);
    }
    assert_null(reply_outcome_get(OUTCOME__COUNT));
    assert_int_equal(reply_outcome_status(OUTCOME__COUNT).cls, 0);
    assert_int_equal(reply_outcome_of_class(2), OUTCOME_REMOTE_ACCEPTED);
    assert_int_equal(reply_outcome_of_class(4), OUTCOME_REMOTE_TRANSIENT);
    assert_int_equal(reply_outcome_of_class(5), OUTCOME_REMOTE_PERMANENT);
    assert_int_equal(reply_outcome_get(OUTCOME_EXPIRED)->use, REPLY_USE_EXPIRE);
    assert_int_equal(reply_outcome_get(OUTCOME_NO_CONNECTION)->use, REPLY_USE_DEFER);
}

static void test_reasons(void **state)
{
    (void)state;
    for (int i = 0; i < REASON__COUNT; i++) {
        const char *name = reply_reason_name((enum reply_reason)i);
        assert_non_null(name);
        enum reply_reason r;
        assert_true(reply_reason_from_name(name, &r));
        assert_int_equal(r, i);
    }
    assert_string_equal(reply_reason_name(REASON_mesgtoobig), "mesgtoobig");
    assert_null(reply_reason_name(REASON__COUNT));
    assert_null(reply_reason_name((enum reply_reason)-1));
    enum reply_reason r = REASON_undefined;
    assert_false(reply_reason_from_name("emailtoolarge", &r));
    assert_false(reply_reason_from_name("", &r));
    assert_false(reply_reason_from_name(NULL, &r));
    assert_int_equal(r, REASON_undefined);
}

static void test_classes_and_digits(void **state)
{
    (void)state;
    assert_int_equal(reply_class_of(199), REPLY_CLASS_INVALID);
    assert_int_equal(reply_class_of(200), REPLY_CLASS_SUCCESS);
    assert_int_equal(reply_class_of(354), REPLY_CLASS_INTERMEDIATE);
    assert_int_equal(reply_class_of(421), REPLY_CLASS_TRANSIENT);
    assert_int_equal(reply_class_of(599), REPLY_CLASS_PERMANENT);
    assert_int_equal(reply_class_of(600), REPLY_CLASS_INVALID);
    assert_int_equal(reply_class_of(-250), REPLY_CLASS_INVALID);
    assert_string_equal(reply_class_name(REPLY_CLASS_TRANSIENT), "transient");
    assert_string_equal(reply_class_name(REPLY_CLASS_PERMANENT), "permanent");
    assert_string_equal(reply_class_name(REPLY_CLASS_INVALID), "invalid");
    for (int d = -1; d <= 10; d++) {
        assert_true((reply_first_digit_meaning(d) != NULL) == (d >= 2 && d <= 5));
        bool second = d == 0 || d == 1 || d == 2 || d == 5;
        assert_true((reply_second_digit_meaning(d) != NULL) == second);
        assert_true((reply_subject_meaning(d) != NULL) == (d >= 0 && d <= 7));
    }
}

/* ---- enhanced status parsing ---------------------------------------------------------- */

struct status_case {
    const char *in;
    bool ok;
    int cls, subject, detail;
    size_t used;
};

static const struct status_case status_cases[] = {
    {"5.1.1", true, 5, 1, 1, 5},
    {"5.1.10", true, 5, 1, 10, 6},
    {"5.7.26", true, 5, 7, 26, 6},
    {"4.7.0", true, 4, 7, 0, 5},
    {"2.0.0 Ok", true, 2, 0, 0, 5},
    {"5.1.1\tUser unknown", true, 5, 1, 1, 5},
    {"5.0.0", true, 5, 0, 0, 5},
    {"5.999.999", true, 5, 999, 999, 9},
    {"5.1", false, 0, 0, 0, 0},
    {"5.1.", false, 0, 0, 0, 0},
    {"6.1.1", false, 0, 0, 0, 0},
    {"3.1.1", false, 0, 0, 0, 0},
    {"5.01.1", false, 0, 0, 0, 0}, /* leading zeros: one code, one spelling */
    {"5.1.01", false, 0, 0, 0, 0},
    {"5.00.0", false, 0, 0, 0, 0},
    {"5.1.1x", false, 0, 0, 0, 0},
    {"5.1.1.", false, 0, 0, 0, 0},
    {"5.1.1,", false, 0, 0, 0, 0},
    {"5.1000.1", false, 0, 0, 0, 0},
    {"5.1.1000", false, 0, 0, 0, 0},
    {"5..1", false, 0, 0, 0, 0},
    {".1.1", false, 0, 0, 0, 0},
    {"55.1.1", false, 0, 0, 0, 0},
    {" 5.1.1", false, 0, 0, 0, 0},
    {"5-1-1", false, 0, 0, 0, 0},
    {"", false, 0, 0, 0, 0},
};

static void test_status_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof status_cases / sizeof status_cases[0]; i++) {
        const struct status_case *c = &status_cases[i];
        struct reply_status st = {9, 9, 9};
        size_t used = 99;
        bool ok = reply_status_parse(c->in, strlen(c->in), &st, &used);
        if (ok != c->ok)
            fail_msg("'%s': got %d", c->in, ok);
        if (ok) {
            assert_int_equal(st.cls, c->cls);
            assert_int_equal(st.subject, c->subject);
            assert_int_equal(st.detail, c->detail);
            assert_int_equal(used, c->used);
        } else {
            assert_int_equal(st.cls, 9); /* untouched */
            assert_int_equal(used, 99);
        }
    }
    /* the length bounds the parse: "5.1.10" cut to 5 bytes is 5.1.1 */
    struct reply_status st;
    size_t used;
    assert_true(reply_status_parse("5.1.10", 5, &st, &used));
    assert_int_equal(st.detail, 1);
    assert_false(reply_status_parse("5.1.1", 4, &st, &used));
    assert_false(reply_status_parse(NULL, 0, &st, &used));
    assert_true(reply_status_parse("4.2.2", 5, &st, NULL));
}

/* ---- formatting ----------------------------------------------------------------------- */

static void assert_format(enum reply_id id, const char *detail, const char *const *more,
                          size_t n_more, unsigned flags, const char *want)
{
    char buf[2048];
    size_t n = reply_format(buf, sizeof buf, id, detail, more, n_more, flags);
    size_t want_len = strlen(want);
    if (n != want_len || memcmp(buf, want, n) != 0)
        fail_msg("got '%.*s' (%zu), want '%s' (%zu)", (int)n, buf, n, want, want_len);
}

static void test_format_single(void **state)
{
    (void)state;
    assert_format(REPLY_OK, NULL, NULL, 0, 0, "250 Ok\r\n");
    assert_format(REPLY_OK, NULL, NULL, 0, REPLY_FMT_ENHANCED, "250 2.0.0 Ok\r\n");
    assert_format(REPLY_USER_UNKNOWN, "bob@example.test", NULL, 0, REPLY_FMT_ENHANCED,
                  "550 5.1.1 <bob@example.test>: Recipient address rejected: User unknown\r\n");
    assert_format(REPLY_USER_UNKNOWN, "bob@example.test", NULL, 0, 0,
                  "550 <bob@example.test>: Recipient address rejected: User unknown\r\n");
    /* no detail: "{}" is left out */
    assert_format(REPLY_GREETING, NULL, NULL, 0, REPLY_FMT_ENHANCED,
                  "220  ESMTP clearmta ready\r\n");
    assert_format(REPLY_GREETING, "", NULL, 0, 0, "220  ESMTP clearmta ready\r\n");
    assert_format(REPLY_GREETING, "mx.example.test", NULL, 0, REPLY_FMT_ENHANCED,
                  "220 mx.example.test ESMTP clearmta ready\r\n");
    assert_format(REPLY_START_DATA, NULL, NULL, 0, REPLY_FMT_ENHANCED,
                  "354 End data with <CR><LF>.<CR><LF>\r\n");
    assert_format(REPLY_QUEUED, "4bG2xk0Zz1", NULL, 0, REPLY_FMT_ENHANCED,
                  "250 2.0.0 Ok: queued as 4bG2xk0Zz1\r\n");
}

static void test_format_soft_bounce(void **state)
{
    (void)state;
    const unsigned both = REPLY_FMT_ENHANCED | REPLY_FMT_SOFT_BOUNCE;
    assert_format(REPLY_USER_UNKNOWN, "bob@example.test", NULL, 0, both,
                  "450 4.1.1 <bob@example.test>: Recipient address rejected: User unknown\r\n");
    assert_format(REPLY_RELAY_DENIED, "x@other.test", NULL, 0, REPLY_FMT_SOFT_BOUNCE,
                  "454 <x@other.test>: Relay access denied\r\n");
    assert_format(REPLY_TOO_MANY_RCPTS, NULL, NULL, 0, both,
                  "452 4.5.3 Error: too many recipients\r\n");
    assert_format(REPLY_OK, NULL, NULL, 0, both, "250 2.0.0 Ok\r\n");
    const char *const more[] = {"line two"};
    assert_format(REPLY_SYNTAX, "bad", more, 1, both,
                  "401-4.5.4 Syntax error: bad\r\n401 4.5.4 line two\r\n");
}

static void test_format_multi(void **state)
{
    (void)state;
    const char *const ehlo[] = {"PIPELINING", "SIZE 10485760", "8BITMIME"};
    /* the EHLO row has no enhanced code, so none appears even when asked for */
    assert_format(REPLY_HELO_OK, "mx.example.test", ehlo, 3, REPLY_FMT_ENHANCED,
                  "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n"
                  "250 8BITMIME\r\n");
    const char *const help[] = {"HELO EHLO", "MAIL RCPT DATA"};
    assert_format(REPLY_HELP, NULL, help, 2, REPLY_FMT_ENHANCED,
                  "214-2.0.0 clearmta: see RFC 5321; commands:\r\n214-2.0.0 HELO EHLO\r\n"
                  "214 2.0.0 MAIL RCPT DATA\r\n");
    assert_format(REPLY_HELP, NULL, help, 2, 0,
                  "214-clearmta: see RFC 5321; commands:\r\n214-HELO EHLO\r\n"
                  "214 MAIL RCPT DATA\r\n");
    const char *const with_null[] = {NULL};
    assert_format(REPLY_HELP, NULL, with_null, 1, 0,
                  "214-clearmta: see RFC 5321; commands:\r\n214 \r\n");
}

static void test_format_sanitises(void **state)
{
    (void)state;
    /* a detail cannot end the line or start a reply of its own */
    assert_format(REPLY_SYNTAX, "a\r\n250 b\x01\x7f\t", NULL, 0, REPLY_FMT_ENHANCED,
                  "501 5.5.4 Syntax error: a??250 b???\r\n");
    const char *const more[] = {"X\r\n250 2.0.0 forged", "\x1b[31m"};
    assert_format(REPLY_HELO_OK, "h", more, 2, 0,
                  "250-h\r\n250-X??250 2.0.0 forged\r\n250 ?[31m\r\n");
    /* 8-bit text (SMTPUTF8 addresses) is kept */
    assert_format(REPLY_RCPT_OK, "j\xc3\xb6rg@example.test", NULL, 0, REPLY_FMT_ENHANCED,
                  "250 2.1.5 Recipient <j\xc3\xb6rg@example.test> OK\r\n");
    /* only the row's own "{}" is a hole; one in the detail is text */
    assert_format(REPLY_SYNTAX, "{}", NULL, 0, 0, "501 Syntax error: {}\r\n");
}

static void test_format_cap(void **state)
{
    (void)state;
    const char *want = "550 5.1.1 <bob@example.test>: Recipient address rejected: User unknown\r\n";
    size_t len = strlen(want);
    char buf[256];
    memset(buf, 'Z', sizeof buf);
    assert_int_equal(reply_format(buf, len, REPLY_USER_UNKNOWN, "bob@example.test", NULL, 0,
                                  REPLY_FMT_ENHANCED),
                     len);
    assert_memory_equal(buf, want, len);
    assert_int_equal(buf[len], 'Z');
    for (size_t cap = 0; cap < len; cap++) {
        memset(buf, 'Z', sizeof buf);
        assert_int_equal(reply_format(buf, cap, REPLY_USER_UNKNOWN, "bob@example.test", NULL, 0,
                                      REPLY_FMT_ENHANCED),
                         0);
        for (size_t i = 0; i < sizeof buf; i++)
            assert_int_equal(buf[i], 'Z');
    }
    assert_int_equal(reply_format(buf, sizeof buf, REPLY__COUNT, NULL, NULL, 0, 0), 0);
    assert_int_equal(reply_format(buf, sizeof buf, REPLY_HELP, NULL, NULL, 2, 0), 0);
    assert_int_equal(reply_format(NULL, 100, REPLY_OK, NULL, NULL, 0, 0), 0);
}

/* Every row formatted and parsed back gives its code, its enhanced code and its text. */
static void test_format_parse_round_trip(void **state)
{
    (void)state;
    const char *const more[] = {"second", "third"};
    for (int i = 0; i < REPLY__COUNT; i++) {
        const struct reply_row *r = reply_row_get((enum reply_id)i);
        for (size_t n_more = 0; n_more <= 2; n_more += 2) {
            char buf[1024];
            size_t n = reply_format(buf, sizeof buf, r->id, "detail", more, n_more,
                                    REPLY_FMT_ENHANCED);
            assert_true(n > 0);
            struct reply_parsed p;
            size_t used;
            assert_int_equal(reply_parse(buf, n, &p, &used), REPLY_PARSE_OK);
            assert_int_equal(used, n);
            assert_int_equal(p.code, r->code);
            assert_int_equal(p.lines, 1 + n_more);
            assert_false(p.bare_lf);
            char want[64];
            if (r->enhanced[0] != '\0') {
                snprintf(want, sizeof want, "%d.%d.%d", p.status.cls, p.status.subject,
                         p.status.detail);
                assert_string_equal(want, r->enhanced);
            } else {
                assert_int_equal(p.status.cls, 0);
            }
            if (n_more > 0)
                assert_non_null(strstr(p.text, "\nsecond\nthird"));
        }
    }
}

/* ---- parsing -------------------------------------------------------------------------- */

static void test_parse_valid(void **state)
{
    (void)state;
    struct reply_parsed p;
    size_t used;

    const char *s = "250 OK\r\n";
    assert_int_equal(reply_parse(s, strlen(s), &p, &used), REPLY_PARSE_OK);
    assert_int_equal(used, 8);
    assert_int_equal(p.code, 250);
    assert_int_equal(p.lines, 1);
    assert_int_equal(p.status.cls, 0);
    assert_string_equal(p.text, "OK");
    assert_int_equal(p.text_len, 2);
    assert_false(p.bare_lf || p.eight_bit || p.truncated);

    s = "250 2.1.5 Ok\r\n";
    assert_int_equal(reply_parse(s, strlen(s), &p, &used), REPLY_PARSE_OK);
    assert_int_equal(p.status.cls, 2);
    assert_int_equal(p.status.subject, 1);
    assert_int_equal(p.status.detail, 5);
    assert_string_equal(p.text, "Ok");

    /* a status whose class differs from the code is text, not status */
    s = "550 4.1.1 x\r\n";
    assert_int_equal(reply_parse(s, strlen(s), &p, &used), REPLY_PARSE_OK);
    assert_int_equal(p.status.cls, 0);
    assert_string_equal(p.text, "4.1.1 x");

    s = "250-mx.example.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
    assert_int_equal(reply_parse(s, strlen(s), &p, &used), REPLY_PARSE_OK);
    assert_int_equal(used, strlen(s));
    assert_int_equal(p.lines, 3);
    assert_string_equal(p.text, "mx.example.test\nPIPELINING\n8BITMIME");

    s = "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
        "550-5.1.1 Please try double-checking the recipient's email address.\r\n"
        "550 5.1.1 https://support.google.com/mail/?p=NoSuchUser\r\n";
    assert_int_equal(reply_parse(s, strlen(s), &p, &used), REPLY_PARSE_OK);
    assert_int_equal(p.code, 550);
    assert_int_equal(p.status.subject, 1);
    assert_string_equal(p.text, "The email account that you tried to reach does not exist.\n"
                                "Please try double-checking the recipient's email address.\n"
                                "https://support.google.com/mail/?p=NoSuchUser");

    /* a later line with another status keeps it as text */
    s = "550-5.1.1 a\r\n550 5.7.1 b\r\n";
    assert_int_equal(reply_parse(s, strlen(s), &p, &used), REPLY_PARSE_OK);
    assert_string_equal(p.text, "a\n5.7.1 b");

    /* only the first reply is taken */
    s = "250 OK\r\n221 Bye\r\n";
    assert_int_equal(reply_parse(s, strlen(s), &p, &used), REPLY_PARSE_OK);
    assert_int_equal(used, 8);
    assert_int_equal(reply_parse(s + used, strlen(s) - used, &p, &used), REPLY_PARSE_OK);
    assert_int_equal(p.code, 221);

    s = "250\r\n";
    assert_int_equal(reply_parse(s, strlen(s), &p, &used), REPLY_PARSE_OK);
    assert_int_equal(p.text_len, 0);
    assert_string_equal(p.text, "");

    s = "250-\r\n250 x\r\n";
    assert_int_equal(reply_parse(s, strlen(s), &p, &used), REPLY_PARSE_OK);
    assert_int_equal(p.lines, 2);
    assert_string_equal(p.text, "\nx");

    s = "250 OK\n";
    assert_int_equal(reply_parse(s, strlen(s), &p, &used), REPLY_PARSE_OK);
    assert_int_equal(used, 7);
    assert_true(p.bare_lf);
    assert_string_equal(p.text, "OK");

    s = "250-a\n250 b\r\n";
    assert_int_equal(reply_parse(s, strlen(s), &p, &used), REPLY_PARSE_OK);
    assert_true(p.bare_lf);

    s = "250 caf\xc3\xa9\r\n";
    assert_int_equal(reply_parse(s, strlen(s), &p, &used), REPLY_PARSE_OK);
    assert_true(p.eight_bit);
    assert_string_equal(p.text, "caf\xc3\xa9");
}

struct bad_case {
    const char *in;
    size_t len; /* 0: strlen */
    enum reply_parse_err want;
    size_t used;
};

static const struct bad_case bad_cases[] = {
    {"250-a\r\n251 b\r\n", 0, REPLY_PARSE_CODE_MISMATCH, 14},
    {"250-a\r\n550 b\r\n", 0, REPLY_PARSE_CODE_MISMATCH, 14},
    {"250text\r\n", 0, REPLY_PARSE_BAD_SEPARATOR, 9},
    {"250_x\r\n", 0, REPLY_PARSE_BAD_SEPARATOR, 7},
    {"25\r\n", 0, REPLY_PARSE_BAD_CODE, 4},
    {"\r\n", 0, REPLY_PARSE_BAD_CODE, 2},
    {"abc def\r\n", 0, REPLY_PARSE_BAD_CODE, 9},
    {"650 x\r\n", 0, REPLY_PARSE_BAD_CODE, 7},
    {"150 x\r\n", 0, REPLY_PARSE_BAD_CODE, 7},
    {"2a0 x\r\n", 0, REPLY_PARSE_BAD_CODE, 7},
    {"250-a\r\nxyz\r\n", 0, REPLY_PARSE_BAD_CODE, 12},
    {"250 a\0b\r\nnext", 9 + 4, REPLY_PARSE_BAD_BYTE, 9},
    {"250 a\0", 6, REPLY_PARSE_BAD_BYTE, 6},
    {"\0", 1, REPLY_PARSE_BAD_BYTE, 1},
    {"250 a\rb\r\n", 0, REPLY_PARSE_BAD_BYTE, 9},
    {"250-a\r\n250 a\r\r\n", 0, REPLY_PARSE_BAD_BYTE, 15},
};

static void test_parse_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        struct reply_parsed p;
        size_t used = 12345;
        size_t len = c->len != 0 ? c->len : strlen(c->in);
        enum reply_parse_err err = reply_parse(c->in, len, &p, &used);
        if (err != c->want || used != c->used)
            fail_msg("case %zu: got %s, %zu; want %s, %zu", i, reply_parse_strerror(err), used,
                     reply_parse_strerror(c->want), c->used);
    }
}

/* A line of `content` bytes ("250 " then 'a's) followed by `end`. */
static size_t make_line(char *buf, size_t content, const char *end)
{
    memcpy(buf, "250 ", 4);
    memset(buf + 4, 'a', content - 4);
    memcpy(buf + content, end, strlen(end));
    return content + strlen(end);
}

static void test_parse_line_limit(void **state)
{
    (void)state;
    static char buf[2 * REPLY_LINE_MAX];
    struct reply_parsed p;
    size_t used;
    size_t n;

    n = make_line(buf, REPLY_LINE_MAX - 2, "\r\n"); /* 512 octets with CRLF */
    assert_int_equal(reply_parse(buf, n, &p, &used), REPLY_PARSE_OK);
    assert_int_equal(used, REPLY_LINE_MAX);
    assert_int_equal(p.text_len, REPLY_LINE_MAX - 6);

    n = make_line(buf, REPLY_LINE_MAX - 1, "\r\n"); /* 513 */
    assert_int_equal(reply_parse(buf, n, &p, &used), REPLY_PARSE_LINE_TOO_LONG);
    assert_int_equal(used, n);

    n = make_line(buf, REPLY_LINE_MAX - 1, "\n"); /* 512 with a bare LF */
    assert_int_equal(reply_parse(buf, n, &p, &used), REPLY_PARSE_OK);
    assert_true(p.bare_lf);

    n = make_line(buf, REPLY_LINE_MAX, "\n"); /* 513 with a bare LF */
    assert_int_equal(reply_parse(buf, n, &p, &used), REPLY_PARSE_LINE_TOO_LONG);

    /* no line end yet: waiting is right up to the limit, not beyond */
    n = make_line(buf, REPLY_LINE_MAX - 1, "");
    assert_int_equal(reply_parse(buf, n, &p, &used), REPLY_PARSE_INCOMPLETE);
    assert_int_equal(used, 0);
    n = make_line(buf, REPLY_LINE_MAX - 1, "\r");
    assert_int_equal(reply_parse(buf, n, &p, &used), REPLY_PARSE_LINE_TOO_LONG);
    n = make_line(buf, REPLY_LINE_MAX - 2, "\r");
    assert_int_equal(reply_parse(buf, n, &p, &used), REPLY_PARSE_INCOMPLETE);
    n = make_line(buf, REPLY_LINE_MAX, "");
    assert_int_equal(reply_parse(buf, n, &p, &used), REPLY_PARSE_LINE_TOO_LONG);
    assert_int_equal(used, n);
    n = make_line(buf, 2 * REPLY_LINE_MAX - 2, "");
    assert_int_equal(reply_parse(buf, n, &p, &used), REPLY_PARSE_LINE_TOO_LONG);
}

/* `count` lines "250-x" and, when `last`, a final "250 y". */
static size_t make_lines(char *buf, size_t count, bool last)
{
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        memcpy(buf + n, "250-x\r\n", 7);
        n += 7;
    }
    if (last) {
        memcpy(buf + n, "250 y\r\n", 7);
        n += 7;
    }
    return n;
}

static void test_parse_line_count(void **state)
{
    (void)state;
    static char buf[(REPLY_LINES_MAX + 2) * 7];
    struct reply_parsed p;
    size_t used;
    size_t n;

    n = make_lines(buf, REPLY_LINES_MAX - 1, true);
    assert_int_equal(reply_parse(buf, n, &p, &used), REPLY_PARSE_OK);
    assert_int_equal(p.lines, REPLY_LINES_MAX);
    assert_int_equal(used, n);

    n = make_lines(buf, REPLY_LINES_MAX, true);
    assert_int_equal(reply_parse(buf, n, &p, &used), REPLY_PARSE_TOO_MANY_LINES);
    assert_int_equal(used, REPLY_LINES_MAX * 7);

    /* known to be too long before the last line arrives */
    n = make_lines(buf, REPLY_LINES_MAX, false);
    assert_int_equal(reply_parse(buf, n, &p, &used), REPLY_PARSE_TOO_MANY_LINES);

    n = make_lines(buf, REPLY_LINES_MAX - 1, false);
    assert_int_equal(reply_parse(buf, n, &p, &used), REPLY_PARSE_INCOMPLETE);
}

static void test_parse_truncates_text(void **state)
{
    (void)state;
    static char buf[12 * REPLY_LINE_MAX];
    size_t n = 0;
    for (int i = 0; i < 11; i++) {
        n += make_line(buf + n, 500, "\r\n");
        buf[n - 500 - 2 + 3] = '-';
    }
    n += make_line(buf + n, 500, "\r\n");
    struct reply_parsed p;
    size_t used;
    assert_int_equal(reply_parse(buf, n, &p, &used), REPLY_PARSE_OK);
    assert_int_equal(used, n);
    assert_int_equal(p.lines, 12);
    assert_true(p.truncated);
    assert_int_equal(p.text_len, REPLY_TEXT_MAX - 1);
    assert_int_equal(p.text[REPLY_TEXT_MAX - 1], '\0');
    assert_int_equal(strlen(p.text), REPLY_TEXT_MAX - 1);
}

/* Every prefix of a valid reply is incomplete, never an error and never a reply. */
static void test_parse_every_cut(void **state)
{
    (void)state;
    const char *replies[] = {
        "250-mx.example.test Hello\r\n250-SIZE 10485760\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
        "421-4.7.0 Try again later,\n421 4.7.0 closing connection.\n",
        "250\r\n",
    };
    for (size_t r = 0; r < sizeof replies / sizeof replies[0]; r++) {
        const char *s = replies[r];
        size_t len = strlen(s);
        struct reply_parsed p;
        size_t used;
        for (size_t cut = 0; cut < len; cut++) {
            used = 77;
            if (reply_parse(s, cut, &p, &used) != REPLY_PARSE_INCOMPLETE || used != 0)
                fail_msg("reply %zu cut at %zu", r, cut);
        }
        assert_int_equal(reply_parse(s, len, &p, &used), REPLY_PARSE_OK);
        assert_int_equal(used, len);
    }
}

static void test_parse_strerror(void **state)
{
    (void)state;
    const enum reply_parse_err all[] = {
#define X(name, text) name,
        REPLY_PARSE_ERRORS(X)
#undef X
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *s = reply_parse_strerror(all[i]);
        assert_true(s[0] != '\0');
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, reply_parse_strerror(all[j]));
    }
    assert_string_equal(reply_parse_strerror(REPLY_PARSE_OK), "ok");
    assert_non_null(reply_parse_strerror((enum reply_parse_err)99));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_table),
        cmocka_unit_test(test_enhanced_table),
        cmocka_unit_test(test_reply_rows),
        cmocka_unit_test(test_outcome_rows),
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_classes_and_digits),
        cmocka_unit_test(test_status_parse),
        cmocka_unit_test(test_format_single),
        cmocka_unit_test(test_format_soft_bounce),
        cmocka_unit_test(test_format_multi),
        cmocka_unit_test(test_format_sanitises),
        cmocka_unit_test(test_format_cap),
        cmocka_unit_test(test_format_parse_round_trip),
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_line_limit),
        cmocka_unit_test(test_parse_line_count),
        cmocka_unit_test(test_parse_truncates_text),
        cmocka_unit_test(test_parse_every_cut),
        cmocka_unit_test(test_parse_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
