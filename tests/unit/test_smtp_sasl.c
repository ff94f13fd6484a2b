/* tests/unit/test_smtp_sasl.c — strict base64, SASL PLAIN and LOGIN responses: RFC 4648 test
 * vectors, hostile input (junk, NUL, overlong fields, bad UTF-8), bounds at limit-1/limit/+1. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/sasl.h"

/* RFC 4648 §10 test vectors. */
static const struct {
    const char *plain, *b64;
} vectors[] = {
    {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
};

static void test_base64_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const char *p = vectors[i].plain, *b = vectors[i].b64;
        char enc[16];
        unsigned char dec[16];
        size_t n = 99;
        assert_int_equal(smtp_base64_encode((const unsigned char *)p, strlen(p), enc, sizeof enc),
                         strlen(b));
        assert_string_equal(enc, b);
        assert_true(smtp_base64_decode(b, strlen(b), dec, sizeof dec, &n));
        assert_int_equal(n, strlen(p));
        assert_memory_equal(dec, p, n);
        assert_int_equal(smtp_base64_decoded_len(b, strlen(b)), strlen(p));
    }
}

static void test_base64_all_bytes_roundtrip(void **state)
{
    (void)state;
    unsigned char in[256], out[256];
    char enc[400];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(255 - i);
    for (size_t len = 0; len <= sizeof in; len++) {
        size_t e = smtp_base64_encode(in, len, enc, sizeof enc), n = 0;
        assert_int_equal(e, (len + 2) / 3 * 4);
        assert_true(smtp_base64_decode(enc, e, out, sizeof out, &n));
        assert_int_equal(n, len);
        assert_memory_equal(in, out, len);
    }
}

static void test_base64_rejects(void **state)
{
    (void)state;
    const char *bad[] = {
        "Zg",       /* padding required */
        "Zg=",      /* length not a multiple of 4 */
        "Zm9v ",    /* whitespace */
        " Zm9v",    "Zm 9",     "Zm9v\r\n", "Zm9\nv",
        "Zg==Zg==", /* padding in the middle */
        "Zg==AAAA", "Z===",     "====",     "A===",
        "Zh==",     /* non-canonical: unused bits set */
        "Zm9=",     /* "fo" would be Zm8= ; 9 leaves bits set */
        "Zm-v",     "Zm_v",     /* base64url alphabet is not base64 */
        "Zm9v=",    "Zm9v====", "Zg=a",     "Z=g=",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char out[16];
        size_t n = 0;
        if (smtp_base64_decode(bad[i], strlen(bad[i]), out, sizeof out, &n))
            fail_msg("accepted '%s'", bad[i]);
    }
    /* every byte value outside the alphabet, in each position of a quad */
    for (unsigned ch = 0; ch < 256; ch++) {
        if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", (int)ch) &&
            ch != 0)
            continue;
        for (size_t pos = 0; pos < 4; pos++) {
            char q[4] = {'Q', 'U', 'J', 'D'};
            unsigned char out[3];
            size_t n;
            q[pos] = (char)ch; /* '=' too: "QUJ=" leaves bits of J set */
            assert_false(smtp_base64_decode(q, 4, out, sizeof out, &n));
        }
    }
}

static void test_base64_bounds(void **state)
{
    (void)state;
    unsigned char out[6];
    size_t n;
    assert_true(smtp_base64_decode("Zm9vYmFy", 8, out, 6, &n));
    assert_false(smtp_base64_decode("Zm9vYmFy", 8, out, 5, &n));
    assert_true(smtp_base64_decode("Zm9vYmE=", 8, out, 5, &n));
    assert_int_equal(n, 5);
    assert_false(smtp_base64_decode("Zm9vYmE=", 8, out, 4, &n));
    assert_true(smtp_base64_decode("", 0, out, 0, &n));
    assert_int_equal(n, 0);
    assert_int_equal(smtp_base64_decoded_len("Zm9", 3), 0);

    char enc[9];
    /* "foobar" needs 8 characters and a NUL */
    assert_int_equal(smtp_base64_encode((const unsigned char *)"foobar", 6, enc, 9), 8);
    assert_int_equal(smtp_base64_encode((const unsigned char *)"foobar", 6, enc, 8), 0);
    assert_string_equal(enc, "");
    assert_int_equal(smtp_base64_encode((const unsigned char *)"f", 1, enc, 5), 4);
    assert_int_equal(smtp_base64_encode((const unsigned char *)"f", 1, enc, 4), 0);
    assert_int_equal(smtp_base64_encode((const unsigned char *)"f", 1, enc, 0), 0);
    assert_int_equal(smtp_base64_encode((const unsigned char *)"", 0, enc, 1), 0);
    assert_int_equal(smtp_base64_encode((const unsigned char *)"x", (size_t)-1, enc, 9), 0);
}

/* ---- PLAIN ---- */

static enum smtp_sasl_err plain(const char *msg, size_t len, struct smtp_sasl_creds *c)
{
    memset(c, 'x', sizeof *c);
    return smtp_sasl_plain((const unsigned char *)msg, len, c);
}

static void assert_wiped(const struct smtp_sasl_creds *c)
{
    static const struct smtp_sasl_creds zero;
    assert_memory_equal(c, &zero, sizeof zero);
}

static void test_plain_valid(void **state)
{
    (void)state;
    struct smtp_sasl_creds c;
    assert_int_equal(plain("\0alice\0alice-secret", 19, &c), SMTP_SASL_OK);
    assert_string_equal(c.authzid, "");
    assert_string_equal(c.user, "alice");
    assert_string_equal(c.pass, "alice-secret");
    assert_true(smtp_sasl_authzid_ok(&c));
    assert_int_equal(plain("Alice\0alice\0pw", 14, &c), SMTP_SASL_OK);
    assert_string_equal(c.authzid, "Alice");
    assert_true(smtp_sasl_authzid_ok(&c));
    assert_int_equal(plain("bob\0alice\0pw", 12, &c), SMTP_SASL_OK);
    assert_false(smtp_sasl_authzid_ok(&c)); /* proxy authorization */
    /* UTF-8 user and password; spaces and other printable bytes kept as they are */
    const char u8[] = "\0j\xc3\xbcrgen\0p \xe2\x82\xac w:d";
    assert_int_equal(plain(u8, sizeof u8 - 1, &c), SMTP_SASL_OK);
    assert_string_equal(c.user, "j\xc3\xbcrgen");
    assert_string_equal(c.pass, "p \xe2\x82\xac w:d");
    smtp_sasl_wipe(&c);
    assert_wiped(&c);
}

static void test_plain_malformed(void **state)
{
    (void)state;
    struct smtp_sasl_creds c;
    static const struct {
        const char *msg;
        size_t len;
    } bad[] = {
        {"", 0},
        {"alice", 5},                   /* no NUL */
        {"\0alice", 6},                 /* one NUL */
        {"\0alice\0", 7},               /* empty password */
        {"\0\0secret", 8},              /* empty user */
        {"\0\0", 2},
        {"\0alice\0se\0cret", 14},      /* NUL inside the password */
        {"\0alice\0secret\0", 14},      /* trailing NUL */
        {"\0\xc3\0pw", 5},              /* truncated UTF-8 in user */
        {"\0alice\0\xff", 8},           /* invalid byte in password */
        {"\xc0\xaf\0alice\0pw", 11},    /* overlong in authzid */
        {"\0\xed\xa0\x80\0pw", 7},      /* surrogate */
        {"\0\xf4\x90\x80\x80\0pw", 8},  /* above U+10FFFF */
        {"\0\xe0\x80\x80\0pw", 7},      /* overlong 3-byte */
        {"\0\xf0\x80\x80\x80\0pw", 8},  /* overlong 4-byte */
        {"\0a\x80\0pw", 5},             /* lone continuation */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum smtp_sasl_err e = plain(bad[i].msg, bad[i].len, &c);
        if (e != SMTP_SASL_MALFORMED)
            fail_msg("case %zu: %s", i, smtp_sasl_strerror(e));
        assert_wiped(&c);
    }
    /* the largest code point and a 4-byte sequence are fine */
    assert_int_equal(plain("\0\xf4\x8f\xbf\xbf\0\xf0\x9f\x98\x80", 10, &c), SMTP_SASL_OK);
}

/* Builds authzid NUL user NUL pass with fields of the given lengths. */
static size_t build_plain(unsigned char *buf, size_t z, size_t u, size_t p)
{
    size_t n = 0;
    memset(buf + n, 'z', z);
    n += z;
    buf[n++] = '\0';
    memset(buf + n, 'u', u);
    n += u;
    buf[n++] = '\0';
    memset(buf + n, 'p', p);
    return n + p;
}

static void test_plain_field_bounds(void **state)
{
    (void)state;
    struct smtp_sasl_creds c;
    static unsigned char buf[4096];
    const size_t zmax = sizeof c.authzid - 1, umax = sizeof c.user - 1, pmax = sizeof c.pass - 1;
    size_t n = build_plain(buf, zmax, umax, pmax);
    assert_int_equal(smtp_sasl_plain(buf, n, &c), SMTP_SASL_OK);
    assert_int_equal(strlen(c.authzid), zmax);
    assert_int_equal(strlen(c.user), umax);
    assert_int_equal(strlen(c.pass), pmax);
    n = build_plain(buf, zmax + 1, 1, 1);
    assert_int_equal(smtp_sasl_plain(buf, n, &c), SMTP_SASL_TOO_LONG);
    assert_wiped(&c);
    n = build_plain(buf, 0, umax + 1, 1);
    assert_int_equal(smtp_sasl_plain(buf, n, &c), SMTP_SASL_TOO_LONG);
    n = build_plain(buf, 0, 1, pmax + 1);
    assert_int_equal(smtp_sasl_plain(buf, n, &c), SMTP_SASL_TOO_LONG);
    assert_wiped(&c);
    n = build_plain(buf, 0, 1, pmax - 1);
    assert_int_equal(smtp_sasl_plain(buf, n, &c), SMTP_SASL_OK);
}

static void test_plain_response(void **state)
{
    (void)state;
    struct smtp_sasl_creds c;
    /* "\0alice\0alice-secret" */
    const char *ok = "AGFsaWNlAGFsaWNlLXNlY3JldA==";
    assert_int_equal(smtp_sasl_plain_response(ok, strlen(ok), &c), SMTP_SASL_OK);
    assert_string_equal(c.user, "alice");
    assert_string_equal(c.pass, "alice-secret");
    memset(&c, 'x', sizeof c);
    assert_int_equal(smtp_sasl_plain_response("*", 1, &c), SMTP_SASL_CANCELLED);
    assert_wiped(&c);
    assert_int_equal(smtp_sasl_plain_response("=", 1, &c), SMTP_SASL_MALFORMED);
    assert_int_equal(smtp_sasl_plain_response("", 0, &c), SMTP_SASL_MALFORMED);
    assert_int_equal(smtp_sasl_plain_response("**", 2, &c), SMTP_SASL_BAD_BASE64);
    assert_int_equal(smtp_sasl_plain_response("AGFsaWNl", 8, &c), SMTP_SASL_MALFORMED);
    assert_int_equal(smtp_sasl_plain_response("AGFsaWNlAGFsaWNlLXNlY3JldA", 26, &c),
                     SMTP_SASL_BAD_BASE64);
    assert_int_equal(smtp_sasl_plain_response("AGFsaWNlAGFsaWNlLXNlY3JldA== ", 29, &c),
                     SMTP_SASL_BAD_BASE64);
    /* "\0alice\0se\0cret": NUL smuggled into the password */
    assert_int_equal(smtp_sasl_plain_response("AGFsaWNlAHNlAGNyZXQ=", 20, &c),
                     SMTP_SASL_MALFORMED);

    /* the longest decodable message and one byte more */
    static unsigned char msg[4096];
    static char line[8192];
    size_t n = build_plain(msg, sizeof c.authzid - 1, sizeof c.user - 1, sizeof c.pass - 1);
    size_t e = smtp_base64_encode(msg, n, line, sizeof line);
    assert_int_equal(smtp_sasl_plain_response(line, e, &c), SMTP_SASL_OK);
    n = build_plain(msg, sizeof c.authzid - 1, sizeof c.user - 1, sizeof c.pass);
    e = smtp_base64_encode(msg, n, line, sizeof line);
    assert_int_equal(smtp_sasl_plain_response(line, e, &c), SMTP_SASL_TOO_LONG);
    /* a huge line is refused by length, whatever it holds */
    memset(line, 'A', sizeof line);
    assert_int_equal(smtp_sasl_plain_response(line, sizeof line, &c), SMTP_SASL_TOO_LONG);
}

static void test_login_field(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(smtp_sasl_login_field("Ym9i", 4, out, sizeof out), SMTP_SASL_OK);
    assert_string_equal(out, "bob");
    /* exactly cap - 1 bytes fit; one more does not */
    assert_int_equal(smtp_sasl_login_field("Ym9i", 4, out, 4), SMTP_SASL_OK);
    assert_string_equal(out, "bob");
    memset(out, 'x', sizeof out);
    assert_int_equal(smtp_sasl_login_field("Ym9i", 4, out, 3), SMTP_SASL_TOO_LONG);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[2], 0);
    assert_int_equal(out[3], 'x'); /* nothing beyond cap is touched */
    assert_int_equal(smtp_sasl_login_field("Ym9i", 4, out, 0), SMTP_SASL_TOO_LONG);
    assert_int_equal(smtp_sasl_login_field("*", 1, out, sizeof out), SMTP_SASL_CANCELLED);
    assert_int_equal(smtp_sasl_login_field("=", 1, out, sizeof out), SMTP_SASL_MALFORMED);
    assert_int_equal(smtp_sasl_login_field("", 0, out, sizeof out), SMTP_SASL_MALFORMED);
    assert_int_equal(smtp_sasl_login_field("AA==", 4, out, sizeof out), SMTP_SASL_MALFORMED);
    assert_int_equal(smtp_sasl_login_field("Ym9iAA==", 8, out, sizeof out), SMTP_SASL_MALFORMED);
    assert_int_equal(smtp_sasl_login_field("Ym9", 3, out, sizeof out), SMTP_SASL_BAD_BASE64);
    assert_int_equal(smtp_sasl_login_field("Ym9i\r", 5, out, sizeof out), SMTP_SASL_BAD_BASE64);
    /* LOGIN keeps non-UTF-8 bytes: old clients send Latin-1 */
    assert_int_equal(smtp_sasl_login_field("/w==", 4, out, sizeof out), SMTP_SASL_OK);
    assert_int_equal((unsigned char)out[0], 0xff);
    /* the challenges decode to what clients expect */
    unsigned char dec[16];
    size_t n;
    assert_true(smtp_base64_decode(SMTP_SASL_LOGIN_USER_CHALLENGE,
                                   strlen(SMTP_SASL_LOGIN_USER_CHALLENGE), dec, sizeof dec, &n));
    assert_memory_equal(dec, "Username:", n);
    assert_true(smtp_base64_decode(SMTP_SASL_LOGIN_PASS_CHALLENGE,
                                   strlen(SMTP_SASL_LOGIN_PASS_CHALLENGE), dec, sizeof dec, &n));
    assert_memory_equal(dec, "Password:", n);
}

static void test_strerror(void **state)
{
    (void)state;
#define X(name, text) assert_string_equal(smtp_sasl_strerror(name), text);
    SMTP_SASL_ERRORS(X)
#undef X
    assert_string_equal(smtp_sasl_strerror((enum smtp_sasl_err)99), "unknown SASL error");
}

/* Random bytes through every entry point: no crash, no read beyond the input (ASan). */
static void test_random_junk(void **state)
{
    (void)state;
    uint32_t seed = 12345;
    for (int round = 0; round < 20000; round++) {
        unsigned char buf[64];
        size_t len = (size_t)(round % 64);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            /* mostly alphabet characters, so some inputs decode */
            unsigned r = seed >> 16;
            buf[i] = r % 4 ? (unsigned char)"AGFsaWNl=+/*"[r % 12] : (unsigned char)(r >> 3);
        }
        unsigned char *copy = malloc(len ? len : 1); /* exact size: ASan sees overreads */
        assert_non_null(copy);
        memcpy(copy, buf, len);
        struct smtp_sasl_creds c;
        char field[8];
        smtp_sasl_plain(copy, len, &c);
        smtp_sasl_plain_response((const char *)copy, len, &c);
        smtp_sasl_login_field((const char *)copy, len, field, sizeof field);
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_all_bytes_roundtrip),
        cmocka_unit_test(test_base64_rejects),
        cmocka_unit_test(test_base64_bounds),
        cmocka_unit_test(test_plain_valid),
        cmocka_unit_test(test_plain_malformed),
        cmocka_unit_test(test_plain_field_bounds),
        cmocka_unit_test(test_plain_response),
        cmocka_unit_test(test_login_field),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_random_junk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
