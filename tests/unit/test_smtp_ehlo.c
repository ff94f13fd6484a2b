/* tests/unit/test_smtp_ehlo.c — the EHLO reply reader (smtp/ehlo.c): reply text in, the offered
 * extensions out as one readable line. Keywords, their case, SIZE and LIMITS values at and past
 * their bounds, missing values, and junk. RFC 1869, 1870, 4954, 9422. */
#include "unit.h"
#include "caps_text.h"

#include <stdio.h>
#include <string.h>

#include "reply/reply.h"
#include "smtp/ehlo.h"

/* Reads text (len bytes: NULs allowed) into caps that start out as garbage, since the reader
 * must fill them from scratch; returns them as a line. */
static const char *read_text(const char *text, size_t len, char *line, size_t cap)
{
    struct smtp_client_caps k;
    memset(&k, 0xa5, sizeof k);
    smtp_ehlo_parse(text, len, &k);
    return caps_text(&k, line, cap) + 1; /* without the space before ESMTP */
}

static void expect_text(const char *text, const char *want)
{
    char line[256];
    assert_string_equal(read_text(text, strlen(text), line, sizeof line), want);
}

/* The same through reply_parse, as the client session reads a server's reply. */
static void expect_reply(const char *wire, const char *want)
{
    static struct reply_parsed r; /* 4 KiB of text: not on the stack */
    size_t used;
    char line[256];
    assert_int_equal(reply_parse(wire, strlen(wire), &r, &used), REPLY_PARSE_OK);
    assert_int_equal(used, strlen(wire));
    assert_string_equal(read_text(r.text, r.text_len, line, sizeof line), want);
}

/* Keywords are case-insensitive; AUTH=… is the pre-RFC 4954 form; junk is ignored. */
static void test_keywords(void **state)
{
    (void)state;
    expect_reply("250-mx.example.test Hello\r\n"
                 "250-pipelining\r\n"
                 "250-Size 52428800\r\n"
                 "250-8bitmime\r\n"
                 "250-smtputf8\r\n"
                 "250-dsn\r\n"
                 "250-chunking\r\n"
                 "250-enhancedstatuscodes\r\n"
                 "250-auth=LOGIN\r\n"
                 "250-AUTH plain CRAM-MD5\r\n"
                 "250-LIMITS RCPTMAX=50 MAILMAX=1000\r\n"
                 "250-X-UNKNOWN foo\r\n"
                 "250-\r\n"
                 "250-PIPELININGX\r\n"
                 "250 BINARYMIME\r\n",
                 "ESMTP PIPELINING SIZE=52428800 8BITMIME SMTPUTF8 DSN CHUNKING "
                 "ENHANCEDSTATUSCODES AUTH=PLAIN AUTH=LOGIN RCPTMAX=50 MAILMAX=1000");
    expect_reply("250-mx.example.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
                 "ESMTP PIPELINING STARTTLS");
    expect_text("mx\npIpElInInG\nStartTLS\nAuth Plain\nlimits rcptmax=5 mailmax=6",
                "ESMTP PIPELINING STARTTLS AUTH=PLAIN RCPTMAX=5 MAILMAX=6");
}

/* The first line names the server: what follows the name there is no keyword. */
static void test_first_line_only(void **state)
{
    (void)state;
    expect_reply("250 mx.example.test PIPELINING\r\n", "ESMTP");
    expect_text("", "ESMTP");
    expect_text("mx.example.test", "ESMTP");
    expect_text("PIPELINING\nSIZE 5", "ESMTP SIZE=5");
    expect_text("\n\n\n", "ESMTP");
}

/* RFC 1870 §4: SIZE without a number, or with junk, announces no fixed limit. */
static void test_size(void **state)
{
    (void)state;
    expect_reply("250-mx\r\n250 SIZE\r\n", "ESMTP SIZE=0");
    expect_reply("250-mx\r\n250 SIZE lots\r\n", "ESMTP SIZE=0");
    expect_text("mx\nSIZE 0", "ESMTP SIZE=0");
    expect_text("mx\nSIZE 1", "ESMTP SIZE=1");
    expect_text("mx\nSIZE 10M", "ESMTP SIZE=0");
    expect_text("mx\nSIZE -1", "ESMTP SIZE=0");
    expect_text("mx\nSIZE +5", "ESMTP SIZE=0");
    expect_text("mx\nSIZE 0x10", "ESMTP SIZE=0");
    expect_text("mx\nSIZE 007", "ESMTP SIZE=7");
    expect_text("mx\nSIZE\t\t4096", "ESMTP SIZE=4096");
    expect_text("mx\n  SIZE 4096  ", "ESMTP SIZE=4096");
    expect_text("mx\nSIZE 100 200", "ESMTP SIZE=100"); /* only the first parameter counts */
    expect_text("mx\nsize 100", "ESMTP SIZE=100");
    expect_text("mx\nSIZE 100\nSIZE", "ESMTP SIZE=0"); /* the last SIZE line counts */
    expect_text("mx\nSIZEX 100", "ESMTP");
    expect_text("mx\nSIZE=100", "ESMTP");
}

/* SIZE saturates at UINT64_MAX: a number too large for 64 bits is still "very large", never a
 * wrapped small limit that would refuse every message. */
static void test_size_bounds(void **state)
{
    (void)state;
    expect_text("mx\nSIZE 18446744073709551614", "ESMTP SIZE=18446744073709551614");
    expect_text("mx\nSIZE 18446744073709551615", "ESMTP SIZE=18446744073709551615");
    expect_text("mx\nSIZE 18446744073709551616", "ESMTP SIZE=18446744073709551615");
    expect_text("mx\nSIZE 99999999999999999999999999", "ESMTP SIZE=18446744073709551615");
    expect_reply("250-mx\r\n250 SIZE 99999999999999999999999999\r\n",
                 "ESMTP SIZE=18446744073709551615");
    char big[600] = "mx\nSIZE ";
    size_t n = strlen(big);
    memset(big + n, '9', sizeof big - n - 1);
    big[sizeof big - 1] = '\0';
    expect_text(big, "ESMTP SIZE=18446744073709551615");
}

/* RFC 9422 §4: unknown or malformed LIMITS parameters are ignored, and 0 is no limit. */
static void test_limits(void **state)
{
    (void)state;
    expect_reply("250-mx\r\n250 LIMITS RCPTMAX=0 MAILMAX=x RCPTMAX RCPTMAX= FOO=3 =4 MAILMAX=7\r\n",
                 "ESMTP MAILMAX=7");
    expect_reply("250-mx\r\n250 LIMITS RCPTMAX=99999999999\r\n", "ESMTP RCPTMAX=4294967295");
    expect_text("mx\nLIMITS RCPTMAX=4294967294", "ESMTP RCPTMAX=4294967294");
    expect_text("mx\nLIMITS RCPTMAX=4294967295", "ESMTP RCPTMAX=4294967295");
    expect_text("mx\nLIMITS RCPTMAX=4294967296", "ESMTP RCPTMAX=4294967295");
    expect_text("mx\nLIMITS RCPTMAX=1 MAILMAX=1", "ESMTP RCPTMAX=1 MAILMAX=1");
    expect_text("mx\nLIMITS", "ESMTP");
    expect_text("mx\nLIMITS RCPTMAX=5x MAILMAX==5 RCPTMAX=-1", "ESMTP");
    expect_text("mx\nLIMITS RCPTMAX=5 RCPTMAX=9", "ESMTP RCPTMAX=9");
    expect_text("mx\nLIMITS\tRCPTMAX=5\tMAILMAX=6", "ESMTP RCPTMAX=5 MAILMAX=6");
    expect_text("mx\nLIMITSX RCPTMAX=5", "ESMTP");
    expect_text("mx\nRCPTMAX=5", "ESMTP"); /* a parameter without its keyword */
}

/* RFC 4954 §3: AUTH lists mechanisms; only PLAIN and LOGIN are ours. */
static void test_auth(void **state)
{
    (void)state;
    expect_text("mx\nAUTH", "ESMTP");
    expect_text("mx\nAUTH=", "ESMTP");
    expect_text("mx\nAUTH CRAM-MD5 XOAUTH2", "ESMTP");
    expect_text("mx\nAUTH LOGIN", "ESMTP AUTH=LOGIN");
    expect_text("mx\nAUTH\tlogin\tPlain", "ESMTP AUTH=PLAIN AUTH=LOGIN");
    expect_text("mx\nAUTH=PLAIN LOGIN", "ESMTP AUTH=PLAIN AUTH=LOGIN");
    expect_text("mx\nauth=login", "ESMTP AUTH=LOGIN");
    expect_text("mx\nAUTH PLAINX LOGINX", "ESMTP");
    expect_text("mx\nAUTHX PLAIN", "ESMTP");
}

/* Lines that are no keyword of ours change nothing. */
static void test_junk(void **state)
{
    (void)state;
    expect_text("mx\nPIPELININGX\n8BITMIMEX\nDSNX\nX-PIPELINING\nPIPELINING-X\nPIPE LINING",
                "ESMTP");
    expect_text("mx\nSTARTTLS now please", "ESMTP STARTTLS"); /* parameters are ignored */
    expect_text("mx\n   \n\t\n", "ESMTP");
    expect_text("mx\n\xc3\xa9t\xc3\xa9\n\xff\xfe\nDSN", "ESMTP DSN");
    expect_text("mx\nPIPELINING\r\nDSN", "ESMTP DSN"); /* "PIPELINING\r" is another word */
    static const char nul[] = "mx\nPIPE\0LINING\nDSN\0\n8BITMIME";
    char line[256];
    assert_string_equal(read_text(nul, sizeof nul - 1, line, sizeof line), "ESMTP 8BITMIME");
    /* Only len bytes are read: a keyword beyond them is not seen. */
    assert_string_equal(read_text("mx\nDSN\nPIPELINING", 6, line, sizeof line), "ESMTP DSN");
    char lng[4096];
    memset(lng, 'A', sizeof lng);
    memcpy(lng, "mx\n", 3);
    memcpy(lng + sizeof lng - 5, "\nDSN", 4);
    assert_string_equal(read_text(lng, sizeof lng - 1, line, sizeof line), "ESMTP DSN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keywords),
        cmocka_unit_test(test_first_line_only),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_size_bounds),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_junk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
