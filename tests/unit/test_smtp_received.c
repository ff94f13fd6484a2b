/* tests/unit/test_smtp_received.c — the Received: trace header (smtp/received.c): its exact
 * form with one and with many recipients, the protocol names of RFC 3848 and RFC 6531, the
 * IPv6 address literal of RFC 5321 §4.1.3, and a buffer too small. */
#include "unit.h"

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
    memset(helo, 'h', sizeof helo - 1);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
