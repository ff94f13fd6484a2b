/* tests/unit/test_smtp_submit.c — sendmail's message reader (smtp/submit.c): line ends made
 * CRLF (LF, CR, CRLF), the "." line with and without -i, NUL found; To/Cc/Bcc addresses with
 * display names, comments, quoted strings, groups and folding; Bcc removed, From/Date seen;
 * the header's end (a blank line added before a body given without one), "Name :" fields and
 * a leading mbox "From " line. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "smtp/submit.h"

static char *normalize(const char *in, bool ignore_dots, bool *nul)
{
    size_t len = strlen(in);
    char *out = malloc(2 * len + 3);
    size_t n = smtp_submit_normalize(in, len, ignore_dots, out, nul);
    out[n] = '\0';
    return out;
}

static void expect_normal(const char *in, bool ignore_dots, const char *want)
{
    bool nul;
    char *got = normalize(in, ignore_dots, &nul);
    assert_string_equal(got, want);
    assert_false(nul);
    free(got);
}

static void test_line_ends(void **state)
{
    (void)state;
    expect_normal("a\nb\r\nc\rd", true, "a\r\nb\r\nc\r\nd\r\n");
    expect_normal("", true, "");
    expect_normal("\n\n", true, "\r\n\r\n");
    expect_normal("one\n.\ntwo\n", false, "one\r\n");
    expect_normal("one\n.\ntwo\n", true, "one\r\n.\r\ntwo\r\n");
    expect_normal("one\n..\n.x\n", false, "one\r\n..\r\n.x\r\n");
    expect_normal("one\n.", false, "one\r\n");
    bool nul;
    size_t n = smtp_submit_normalize("a\0b\n", 4, true, (char[16]){0}, &nul);
    assert_true(nul);
    assert_int_equal(n, 5);
}

struct found {
    char text[1024];
};

static void collect(void *ctx, const char *addr, size_t len)
{
    struct found *f = ctx;
    size_t at = strlen(f->text);
    assert_true(at + len + 2 < sizeof f->text);
    memcpy(f->text + at, addr, len);
    memcpy(f->text + at + len, "|", 2);
}

static void expect_headers(const char *msg, const char *addrs, const char *out_want)
{
    struct found f = {{0}};
    struct smtp_submit_header_info info;
    size_t len = strlen(msg);
    char *out = malloc(len + 3); /* room for an added blank line and the NUL */
    size_t n = smtp_submit_headers(msg, len, collect, &f, out, &info);
    out[n] = '\0';
    assert_string_equal(f.text, addrs);
    if (out_want)
        assert_string_equal(out, out_want);
    free(out);
}

/* What the header of msg holds (no recipients wanted). */
static struct smtp_submit_header_info info_of(const char *msg)
{
    struct smtp_submit_header_info info;
    size_t len = strlen(msg);
    char *out = malloc(len + 2);
    assert_int_equal(smtp_submit_headers(msg, len, NULL, NULL, out, &info), len);
    free(out);
    return info;
}

static void test_recipients(void **state)
{
    (void)state;
    expect_headers("To: Alice <alice@example.test>, \"Doe, J\" <j@example.test>\r\n\r\nb\r\n",
                   "alice@example.test|j@example.test|", NULL);
    expect_headers("Cc: (the boss) boss@example.test (again), x@y.test\r\n\r\n",
                   "boss@example.test|x@y.test|", NULL);
    expect_headers("to: a@b.test,\r\n\tc@d.test\r\nCC: e@f.test\r\n\r\n",
                   "a@b.test|c@d.test|e@f.test|", NULL);
    expect_headers("To: undisclosed-recipients:;\r\n\r\n", "", NULL);
    expect_headers("To: team: a@b.test, C <c@d.test>; , e@f.test\r\n\r\n",
                   "a@b.test|c@d.test|e@f.test|", NULL);
    expect_headers("To: \"quoted local\"@example.test\r\n\r\n", "\"quoted local\"@example.test|",
                   NULL);
    expect_headers("To: <open@example.test\r\nTo: (open comment a@b\r\n\r\n", "", NULL);
    /* An angle left open after a closed one: the closed one is reported as it was read (the
     * open one used to move its start, reporting bytes past the value: found by
     * fuzz/fuzz_submit.c, kept in fuzz/corpus/fuzz_submit/angle-reopened). */
    expect_headers("To: <a@b.test> <then an angle left open to the end of the value\r\n\r\n",
                   "a@b.test|", NULL);
    /* Only To, Cc and Bcc; not Resent-To, not the body. */
    expect_headers("Resent-To: r@example.test\r\nX-To: x@example.test\r\n\r\nTo: body@x\r\n", "",
                   NULL);
}

static void test_bcc_removed(void **state)
{
    (void)state;
    expect_headers("From: me@x.test\r\nBcc: hidden@example.test,\r\n more@example.test\r\n"
                   "Subject: s\r\n\r\nBcc: in the body stays\r\n",
                   "hidden@example.test|more@example.test|",
                   "From: me@x.test\r\nSubject: s\r\n\r\nBcc: in the body stays\r\n");
    struct smtp_submit_header_info info = info_of("Date: x\r\nfrom: y\r\n\r\n");
    assert_true(info.has_from);
    assert_true(info.has_date);
    assert_false(info.has_message_id);
    assert_int_equal(info.header_len, 18);
}

/* The header ends at the first line that is neither a field nor a continuation: a blank line
 * is added there, so headerless input stays body. */
static void test_header_end_added(void **state)
{
    (void)state;
    expect_headers("just a body line\r\nsecond\r\n", "", "\r\njust a body line\r\nsecond\r\n");
    expect_headers("Subject: s\r\nthis is body: not a field\r\n", "",
                   "Subject: s\r\n\r\nthis is body: not a field\r\n");
    expect_headers("Subject: a\r\n b\r\nTo: x@y.test\r\nbody\r\n", "x@y.test|",
                   "Subject: a\r\n b\r\nTo: x@y.test\r\n\r\nbody\r\n");
    expect_headers(" indented first line\r\n", "", "\r\n indented first line\r\n");
    expect_headers(": no name\r\n", "", "\r\n: no name\r\n");
    expect_headers("Na\x01me: control in the name\r\n", "",
                   "\r\nNa\x01me: control in the name\r\n");
    /* Fields only, a blank line already there, nothing at all: nothing added. */
    expect_headers("Subject: x\r\n", "", "Subject: x\r\n");
    expect_headers("Subject: x\r\n\r\nbody\r\n", "", "Subject: x\r\n\r\nbody\r\n");
    expect_headers("", "", "");
    /* After the end, "To:" is body: no recipient from it. */
    expect_headers("hello\r\nTo: late@example.test\r\n", "",
                   "\r\nhello\r\nTo: late@example.test\r\n");
}

/* Obsolete syntax (RFC 5322 §4.5): space or tab before the colon. */
static void test_space_before_colon(void **state)
{
    (void)state;
    expect_headers("Bcc : alice@example.test\r\nFrom : me@x.test\r\nTo\t: bob@example.test\r\n"
                   "\r\nb\r\n",
                   "alice@example.test|bob@example.test|",
                   "From : me@x.test\r\nTo\t: bob@example.test\r\n\r\nb\r\n");
    struct smtp_submit_header_info info =
        info_of("From  : y\r\nDate\t: x\r\nMessage-ID : <a@b>\r\n\r\n");
    assert_true(info.has_from);
    assert_true(info.has_date);
    assert_true(info.has_message_id);
}

/* An mbox envelope line at the start is dropped; "From :" is a field, kept. */
static void test_mbox_from_line(void **state)
{
    (void)state;
    expect_headers("From alice@example.test Sun Dec  6 12:00:00 2026\r\nSubject: s\r\n\r\nb\r\n",
                   "", "Subject: s\r\n\r\nb\r\n");
    expect_headers("From a Sun Dec  6 12:00:00 2026\r\nFrom b\r\nbody\r\n", "", "\r\nbody\r\n");
    expect_headers("From a@b.test\r\n", "", "");
    assert_true(info_of("From : me@x.test\r\n\r\n").has_from);
    /* Only at the start: further down it is a line that ends the header. */
    expect_headers("Subject: s\r\nFrom x\r\n", "", "Subject: s\r\n\r\nFrom x\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_ends),
        cmocka_unit_test(test_recipients),
        cmocka_unit_test(test_bcc_removed),
        cmocka_unit_test(test_header_end_added),
        cmocka_unit_test(test_space_before_colon),
        cmocka_unit_test(test_mbox_from_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
