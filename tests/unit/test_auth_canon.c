/* tests/unit/test_auth_canon.c — DKIM relaxed canonicalisation: the example of RFC 6376
 * §3.4.6, whitespace, folds, trailing empty lines, bare CR and LF, input fed one byte at a
 * time, and the split of a message into header fields. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "auth/canon.h"

struct sink {
    char buf[4096];
    size_t len;
};

static void sink_out(void *ctx, const char *p, size_t n)
{
    struct sink *s = ctx;
    assert_true(s->len + n < sizeof s->buf);
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = '\0';
}

/* The canonical body of in, fed whole and fed one octet at a time: both must agree. */
static void expect_body(const char *in, const char *want)
{
    struct sink whole = {0}, bytes = {0};
    struct auth_canon_body b;
    auth_canon_body_init(&b, sink_out, &whole);
    auth_canon_body_feed(&b, in, strlen(in));
    auth_canon_body_finish(&b);
    auth_canon_body_init(&b, sink_out, &bytes);
    for (size_t i = 0; in[i]; i++)
        auth_canon_body_feed(&b, in + i, 1);
    auth_canon_body_finish(&b);
    assert_string_equal(whole.buf, want);
    assert_string_equal(bytes.buf, want);
}

static void expect_header(const char *in, const char *want)
{
    char out[512];
    size_t n = auth_canon_header(in, strlen(in), true, out, sizeof out);
    assert_int_equal(n, strlen(want));
    assert_string_equal(out, want);
}

static void test_rfc6376_example(void **state)
{
    (void)state;
    expect_header("A: X\r\n", "a:X\r\n");
    expect_header("B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n");
    expect_body(" C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n");
}

static void test_headers(void **state)
{
    (void)state;
    expect_header("Subject:no space", "subject:no space\r\n");
    expect_header("SUBJECT:   \r\n", "subject:\r\n");
    expect_header("To: a,\r\n  b ,\r\n\tc\r\n", "to:a, b , c\r\n");
    expect_header("X-8: caf\xc3\xa9  \xc3\xa9t\xc3\xa9\r\n", "x-8:caf\xc3\xa9 \xc3\xa9t\xc3\xa9\r\n");
    char out[16];
    assert_int_equal(auth_canon_header("no colon here", 13, true, out, sizeof out), 0);
    /* cap must allow the input plus CRLF and NUL, whatever the result's length */
    assert_int_equal(auth_canon_header("A: 123456789012", 15, true, out, sizeof out), 0);
    assert_int_equal(auth_canon_header("A: 12345678901", 14, false, out, 17), 13);
    assert_string_equal(out, "a:12345678901");
}

static void test_bodies(void **state)
{
    (void)state;
    expect_body("", "");
    expect_body("\r\n\r\n", "");
    expect_body("  \r\n\t\r\n", "");
    expect_body("no final line end", "no final line end\r\n");
    expect_body("a\r\n\r\nb\r\n\r\n", "a\r\n\r\nb\r\n");
    expect_body("a  \r\n \r\nb", "a\r\n\r\nb\r\n"); /* inner blank lines stay, emptied */
    expect_body("  lead\r\n", " lead\r\n");
    expect_body(".dot\r\n..two\r\n", ".dot\r\n..two\r\n");
    expect_body("bare\rcr\r\n", "bare\rcr\r\n");
    expect_body("bare\nlf\r\n", "bare\nlf\r\n");
    expect_body("end cr\r", "end cr\r\r\n");
    expect_body("caf\xc3\xa9 \t\r\n", "caf\xc3\xa9\r\n");
}

static void test_fields_split(void **state)
{
    (void)state;
    const char *m = "From: a@b\r\nSubject: x\r\n folded\r\nX-Bad line\r\n\r\nbody\r\n";
    struct auth_field f[4];
    size_t n = 0, body = 0;
    auth_fields_split(m, strlen(m), f, 4, &n, &body);
    assert_int_equal(n, 3);
    assert_int_equal(f[0].len, 11);
    assert_true(auth_field_is(&f[0], "FROM"));
    assert_int_equal(f[1].len, strlen("Subject: x\r\n folded\r\n"));
    assert_int_equal(f[2].name_len, 0);
    assert_string_equal(m + body, "body\r\n");
    auth_fields_split(m, strlen(m), f, 1, &n, &body); /* more fields than room: counted */
    assert_int_equal(n, 3);
    const char *lf = "A: 1\nB: 2\n\nbody";
    auth_fields_split(lf, strlen(lf), f, 4, &n, &body);
    assert_int_equal(n, 2);
    assert_string_equal(lf + body, "body");
    const char *nobody = "A: 1\r\n B";
    auth_fields_split(nobody, strlen(nobody), f, 4, &n, &body);
    assert_int_equal(n, 1);
    assert_int_equal(f[0].len, strlen(nobody));
    assert_int_equal(body, strlen(nobody));
    auth_fields_split(" leading fold\r\n", 15, f, 4, &n, &body);
    assert_int_equal(n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc6376_example),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_fields_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
