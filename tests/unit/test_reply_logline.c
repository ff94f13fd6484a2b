/* tests/unit/test_reply_logline.c — delivery lines of each MTA's log, read into recipient,
 * outcome, status, queue id and reason; lines that are not deliveries refused; hostile lines
 * (cut, unbalanced, huge) read without overrun. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "reply/logline.h"

static struct reply_log_entry e;

static bool parse(const char *line)
{
    return reply_log_parse(line, strlen(line), &e);
}

static void expect(const char *line, const char *mta, const char *qid, const char *rcpt,
                   enum reply_log_outcome outcome, const char *reason, int cls)
{
    if (!parse(line)) {
        print_error("not read: %s\n", line);
        fail();
    }
    assert_string_equal(e.mta, mta);
    assert_int_equal(e.queue_id_len, strlen(qid));
    assert_memory_equal(e.queue_id, qid, strlen(qid));
    assert_int_equal(e.recipient_len, strlen(rcpt));
    assert_memory_equal(e.recipient, rcpt, strlen(rcpt));
    assert_int_equal(e.outcome, outcome);
    assert_string_equal(e.reason, reason);
    assert_int_equal(e.status.cls, cls);
}

static void test_each_mta(void **state)
{
    (void)state;
    expect("Jan  2 03:04:05 mx postfix/smtp[1]: 4F1A2B3C4D: to=<bob@example.org>, "
           "relay=mx.example.org[192.0.2.1]:25, delay=1, dsn=5.1.1, status=bounced (host "
           "mx.example.org[192.0.2.1] said: 550 5.1.1 User unknown (in reply to RCPT TO command))",
           "postfix", "4F1A2B3C4D", "bob@example.org", REPLY_LOG_BOUNCED, "userunknown", 5);
    assert_int_equal(e.stamp_len, 15);
    assert_int_equal(e.ex.code, 550);
    expect("Jan  2 03:04:06 mx postfix/smtp[1]: 5A1B: to=<carol@example.com>, relay=x, dsn=4.7.1, "
           "status=deferred (host x said: 450 4.7.1 Greylisted, see http://postgrey.example/)",
           "postfix", "5A1B", "carol@example.com", REPLY_LOG_DEFERRED, "blocked", 4);
    expect("Jan  2 03:04:07 mx postfix/smtp[1]: 6A1B: to=<dave@example.net>, relay=x, dsn=2.0.0, "
           "status=sent (250 2.0.0 Ok)",
           "postfix", "6A1B", "dave@example.net", REPLY_LOG_DELIVERED, "delivered", 2);
    expect("2026-01-02 03:04:05 1rABCD-000123-AB ** erin@example.org R=dnslookup T=remote_smtp "
           "H=mx.example.org [192.0.2.1]: SMTP error from remote mail server after RCPT "
           "TO:<erin@example.org>: 552 5.2.2 Mailbox full",
           "exim", "1rABCD-000123-AB", "erin@example.org", REPLY_LOG_BOUNCED, "mailboxfull", 5);
    expect("2026-01-02 03:04:05 1rABCD-000124-AB == frank@example.org R=dnslookup T=remote_smtp "
           "defer (-53): retry time not reached for any host",
           "exim", "1rABCD-000124-AB", "frank@example.org", REPLY_LOG_DEFERRED, "undefined", 4);
    expect("Jan  2 03:04:05 mx sendmail[7]: x02ABC123456: to=<heidi@example.org>, delay=00:00:01, "
           "mailer=esmtp, relay=mx.example.org. [192.0.2.1], dsn=5.1.1, stat=User unknown",
           "sendmail", "x02ABC123456", "heidi@example.org", REPLY_LOG_BOUNCED, "userunknown", 5);
    expect("Jan  2 03:04:05 mx sendmail[7]: x02ABC123457: to=<ivan@example.org>, mailer=esmtp, "
           "dsn=4.0.0, stat=Deferred: Connection refused by mx.example.org.",
           "sendmail", "x02ABC123457", "ivan@example.org", REPLY_LOG_DEFERRED, "networkerror", 4);
    expect("Jan  2 03:04:05 mx smtpd[5]: 1a2b3c4d5e6f7a8b mta delivery evpid=1a2b3c4d5e6f7a8b "
           "from=<a@example.test> to=<judy@example.org> rcpt=<-> source=\"192.0.2.9\" "
           "relay=\"mx.example.org (192.0.2.1)\" delay=1s result=\"TempFail\" stat=\"421 4.7.0 "
           "Too many connections\"",
           "opensmtpd", "1a2b3c4d5e6f7a8b", "judy@example.org", REPLY_LOG_DEFERRED, "toomanyconn",
           4);
    expect("2026/01/02 03:04:05 1a2b3c4d from=a@example.test to=kim@example.org failed "
           "permanently: 550 5.1.1 no such user",
           "chasquid", "1a2b3c4d", "kim@example.org", REPLY_LOG_BOUNCED, "userunknown", 5);
    expect("2026-01-02 03:04:05 9f8e7d6c: to=<leo@example.org>, relay=mx.example.org, delay=2s, "
           "attempt=1, dsn=5.2.2, status=bounced (552 5.2.2 Mailbox full) reason=mailboxfull",
           "clearmta", "9f8e7d6c", "leo@example.org", REPLY_LOG_BOUNCED, "mailboxfull", 5);
}

static void test_not_deliveries(void **state)
{
    (void)state;
    assert_false(parse(""));
    assert_false(parse("Jan  2 03:04:08 mx postfix/qmgr[99]: 6A1B2C3D4E: removed"));
    assert_false(parse("Jan  2 03:04:08 mx postfix/smtpd[9]: connect from x[192.0.2.1]"));
    assert_false(parse("2026-01-02 03:04:05 1rABCD-000123-AB <= a@example.test H=x P=esmtp"));
    assert_false(parse("to="));
}

static void test_hostile(void **state)
{
    (void)state;
    /* cut fields, unbalanced brackets and quotes, every prefix of a real line */
    const char *line = "Jan  2 03:04:05 mx postfix/smtp[1]: 4F: to=<bob@example.org>, relay=x, "
                       "dsn=5.1.1, status=bounced (host x said: 550 5.1.1 unknown)";
    size_t n = strlen(line);
    for (size_t k = 0; k <= n; k++) {
        char *copy = malloc(k ? k : 1);
        assert_non_null(copy);
        memcpy(copy, line, k);
        reply_log_parse(copy, k, &e);
        free(copy);
    }
    assert_true(parse("x to=<unterminated status=bounced (") || true);
    size_t big = 1 << 20;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, 'a', big);
    memcpy(huge, "to=<", 4);
    reply_log_parse(huge, big, &e);
    free(huge);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_mta),
        cmocka_unit_test(test_not_deliveries),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
