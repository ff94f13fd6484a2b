/* tests/unit/test_smtp_received.c — the Received: trace header (smtp/received.c): its exact
 * form with one and with many recipients, the protocol names of RFC 3848 and RFC 6531, the
 * IPv6 address literal of RFC 5321 §4.1.3, a buffer too small, and HELO names that are no
 * domain, which must not break the field. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "smtp/received.h"

#define WHEN 1700000000 /* Tue, 14 Nov 2023 22:13:20 +0000 */

static struct smtp_received base(void)
{
    return (struct smtp_received){
        .helo = "client.example.test",
        .client_addr = "192.0.2.1",
        .hostname = "mx.example.test",
        .queue_id = "QID1",
        .for_rcpt = "alice@example.test",
        .esmtp = true,
        .when = WHEN,
    };
}

static void expect_header(const struct smtp_received *r, const char *want)
{
    char out[2048];
    size_t n = smtp_received_format(out, sizeof out, r);
    assert_int_equal(n, strlen(want));
    assert_string_equal(out, want);
}

/* sendmail's messages: the uid the kernel vouched for, no client address or HELO. */
static void test_local_submission(void **state)
{
    (void)state;
    struct smtp_received r = base();
    r.local = true;
    r.local_uid = 1000;
    expect_header(&r, "Received: by mx.example.test (clearmta, from userid 1000)\r\n"
                      "\tid QID1 for <alice@example.test>; Tue, 14 Nov 2023 22:13:20 +0000\r\n");
    r.for_rcpt = NULL;
    expect_header(&r, "Received: by mx.example.test (clearmta, from userid 1000)\r\n"
                      "\tid QID1; Tue, 14 Nov 2023 22:13:20 +0000\r\n");
    char small[40];
    assert_int_equal(smtp_received_format(small, sizeof small, &r), 0);
}

static void test_one_recipient(void **state)
{
    (void)state;
    struct smtp_received r = base();
    expect_header(&r, "Received: from client.example.test ([192.0.2.1])\r\n"
                      "\tby mx.example.test (clearmta) with ESMTP id QID1\r\n"
                      "\tfor <alice@example.test>; Tue, 14 Nov 2023 22:13:20 +0000\r\n");
}

/* RFC 5321 §4.4: "for" names a recipient only when there is exactly one (privacy). */
static void test_many_recipients(void **state)
{
    (void)state;
    struct smtp_received r = base();
    r.for_rcpt = NULL;
    expect_header(&r, "Received: from client.example.test ([192.0.2.1])\r\n"
                      "\tby mx.example.test (clearmta) with ESMTP id QID1;\r\n"
                      "\tTue, 14 Nov 2023 22:13:20 +0000\r\n");
}

static void test_no_helo_name(void **state)
{
    (void)state;
    struct smtp_received r = base();
    r.helo = "";
    r.esmtp = false;
    r.when = 946684800; /* a single-digit day keeps its leading zero */
    expect_header(&r, "Received: from unknown ([192.0.2.1])\r\n"
                      "\tby mx.example.test (clearmta) with SMTP id QID1\r\n"
                      "\tfor <alice@example.test>; Sat, 01 Jan 2000 00:00:00 +0000\r\n");
}

/* The field as an RFC 5322 reader sees it: comments balanced (quoted-pairs skipped), and the
 * ";" before the date outside every comment, followed by the date alone. */
static void expect_sound_field(const char *field, const char *date)
{
    int depth = 0;
    const char *last_semicolon = NULL;
    for (const char *p = field; *p; p++) {
        if (depth > 0 && *p == '\\' && p[1]) {
            p++;
            continue;
        }
        if (*p == '(')
            depth++;
        else if (*p == ')')
            assert_true(--depth >= 0);
        else if (*p == ';' && depth == 0)
            last_semicolon = p;
    }
    assert_int_equal(depth, 0);
    assert_non_null(last_semicolon);
    assert_true(strncmp(last_semicolon + 1, " ", 1) == 0 || strncmp(last_semicolon + 1, "\r\n\t", 3) == 0);
    assert_non_null(strstr(last_semicolon, date));
}

/* RFC 5321 §4.4 with RFC 5322 §3.6.7: a name that is no domain or address literal must not
 * open a comment that hides the address, "by", "id", "for" and the date. */
static void test_helo_that_is_no_domain(void **state)
{
    (void)state;
    struct smtp_received r = base();
    r.helo = "evil(hidden;x";
    expect_header(&r, "Received: from unknown ([192.0.2.1] helo=evil\\(hidden;x)\r\n"
                      "\tby mx.example.test (clearmta) with ESMTP id QID1\r\n"
                      "\tfor <alice@example.test>; Tue, 14 Nov 2023 22:13:20 +0000\r\n");
    r.helo = "my_host";
    r.for_rcpt = NULL;
    expect_header(&r, "Received: from unknown ([192.0.2.1] helo=my_host)\r\n"
                      "\tby mx.example.test (clearmta) with ESMTP id QID1;\r\n"
                      "\tTue, 14 Nov 2023 22:13:20 +0000\r\n");
    static const char *const hostile[] = {
        "evil(hidden;x", "a)b", "x\\", "\\)", "((((", "))))", "a\\(b", "semi;colon",
        "[tag:a(b;c]", "[tag:a)b]", "\"quoted\"", "tab\there", "ctl\x01", "high\xff",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        r = base();
        r.helo = hostile[i];
        char out[1024];
        assert_true(smtp_received_format(out, sizeof out, &r) > 0);
        assert_true(strncmp(out, "Received: from unknown ([192.0.2.1] helo=", 41) == 0);
        expect_sound_field(out, "Tue, 14 Nov 2023 22:13:20 +0000");
        for (const char *p = out; *p; p++) /* one line per CRLF, every octet printable */
            assert_true((*p >= 0x20 && *p < 0x7f) || (*p == '\t' && p[-1] == '\n') ||
                        (*p == '\r' && p[1] == '\n') || (*p == '\n' && p[-1] == '\r'));
    }
}

/* Domains and IPv4/IPv6 address literals are written as the client gave them. */
static void test_helo_domain_and_literals_kept(void **state)
{
    (void)state;
    static const char *const names[] = {
        "client.example.test", "localhost", "[192.0.2.9]", "[IPv6:2001:db8::2]", "xn--bcher-kva.example",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct smtp_received r = base();
        r.helo = names[i];
        char out[1024], want[512];
        assert_true(smtp_received_format(out, sizeof out, &r) > 0);
        snprintf(want, sizeof want, "Received: from %s ([192.0.2.1])\r\n", names[i]);
        assert_true(strncmp(out, want, strlen(want)) == 0);
        expect_sound_field(out, "Tue, 14 Nov 2023 22:13:20 +0000");
    }
}

/* RFC 3848 (ESMTP, ESMTPA, ESMTPS, ESMTPSA) and RFC 6531 §3.7.3 (UTF8SMTP…). */
static void test_protocol_names(void **state)
{
    (void)state;
    static const struct {
        bool esmtp, tls, auth, utf8;
        const char *name;
    } cases[] = {
        {false, false, false, false, " with SMTP id"},
        {true, false, false, false, " with ESMTP id"},
        {true, true, false, false, " with ESMTPS id"},
        {true, false, true, false, " with ESMTPA id"},
        {true, true, true, false, " with ESMTPSA id"},
        {true, false, false, true, " with UTF8SMTP id"},
        {true, true, false, true, " with UTF8SMTPS id"},
        {true, false, true, true, " with UTF8SMTPA id"},
        {true, true, true, true, " with UTF8SMTPSA id"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct smtp_received r = base();
        r.esmtp = cases[i].esmtp;
        r.tls = cases[i].tls;
        r.auth = cases[i].auth;
        r.utf8 = cases[i].utf8;
        char out[512];
        assert_true(smtp_received_format(out, sizeof out, &r) > 0);
        assert_non_null(strstr(out, cases[i].name));
    }
}

/* RFC 5321 §4.1.3: an IPv6 address literal is written "[IPv6:…]". */
static void test_ipv6_client(void **state)
{
    (void)state;
    struct smtp_received r = base();
    r.client_addr = "2001:db8::1";
    char out[512];
    assert_true(smtp_received_format(out, sizeof out, &r) > 0);
    assert_non_null(strstr(out, "([IPv6:2001:db8::1])\r\n"));
}

static void test_buffer_too_small(void **state)
{
    (void)state;
    struct smtp_received r = base();
    char out[512];
    size_t n = smtp_received_format(out, sizeof out, &r);
    assert_true(n > 0);
    char small[512];
    assert_int_equal(smtp_received_format(small, n, &r), 0);     /* no room for the NUL */
    assert_int_equal(smtp_received_format(small, 10, &r), 0);
    assert_int_equal(smtp_received_format(small, n + 1, &r), n); /* exactly enough */
    assert_memory_equal(small, out, n);
}

/* Longest names the protocol allows still fit a modest buffer, every line CRLF-ended. */
static void test_long_names(void **state)
{
    (void)state;
    char helo[256], rcpt[257];
    for (size_t i = 0; i < sizeof helo - 1; i++) /* four labels of 63: the longest domain */
        helo[i] = i % 64 == 63 ? '.' : 'h';
    helo[sizeof helo - 1] = '\0';
    memset(rcpt, 'r', sizeof rcpt - 1);
    rcpt[100] = '@';
    rcpt[sizeof rcpt - 1] = '\0';
    struct smtp_received r = base();
    r.helo = helo;
    r.for_rcpt = rcpt;
    char out[1024];
    size_t n = smtp_received_format(out, sizeof out, &r);
    assert_true(n > 512);
    assert_true(strncmp(out + strlen("Received: from "), helo, strlen(helo)) == 0);
    assert_int_equal(strlen(out), n);
    for (size_t i = 0; i < n; i++)
        if (out[i] == '\n')
            assert_true(i > 0 && out[i - 1] == '\r');
    assert_memory_equal(out + n - 2, "\r\n", 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_recipient),
        cmocka_unit_test(test_local_submission),
        cmocka_unit_test(test_many_recipients),
        cmocka_unit_test(test_no_helo_name),
        cmocka_unit_test(test_protocol_names),
        cmocka_unit_test(test_ipv6_client),
        cmocka_unit_test(test_buffer_too_small),
        cmocka_unit_test(test_long_names),
        cmocka_unit_test(test_helo_that_is_no_domain),
        cmocka_unit_test(test_helo_domain_and_literals_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
