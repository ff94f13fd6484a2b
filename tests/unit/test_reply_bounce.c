/* tests/unit/test_reply_bounce.c — bounce reading per format family on small synthetic
 * messages: RFC 3464 reports (plain, base64, nested in a forward), plain-text reports in the
 * shapes of qmail, Exim, Gmail and DragonFly, auto-replies, ARF reports and non-bounces. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply/bounce.h"
#include "reply/mime.h"

static char arena[1 << 20];
static struct reply_bounce result;

static enum reply_bounce_kind parse(const char *msg)
{
    memset(&result, 0xa5, sizeof result); /* stale bytes must not leak into the result */
    return reply_bounce_parse(msg, strlen(msg), arena, sizeof arena, &result);
}

static const char DSN[] =
    "From: MAILER-DAEMON@mx.example.test (Mail Delivery System)\n"
    "To: alice@example.test\n"
    "Subject: Undelivered Mail Returned to Sender\n"
    "Content-Type: multipart/report; report-type=delivery-status;\n"
    "\tboundary=\"B1\"\n"
    "\n"
    "--B1\n"
    "Content-Type: text/plain\n"
    "\n"
    "I'm sorry to have to inform you that your message could not be delivered.\n"
    "--B1\n"
    "Content-Type: message/delivery-status\n"
    "\n"
    "Reporting-MTA: dns; mx.example.test\n"
    "\n"
    "Final-Recipient: rfc822; bob@example.org\n"
    "Action: failed\n"
    "Status: 5.1.1\n"
    "Remote-MTA: dns; mx.example.org\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.org>: Recipient address\n"
    "    rejected: User unknown in local recipient table\n"
    "\n"
    "Final-Recipient: rfc822; carol@example.org\n"
    "Action: delayed\n"
    "Status: 4.2.2\n"
    "Diagnostic-Code: smtp; 452 4.2.2 Mailbox full\n"
    "--B1\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "From: alice@example.test\n"
    "To: bob@example.org\n"
    "Subject: Lunch\n"
    "Message-ID: <lunch-1@example.test>\n"
    "\n"
    "Hello\n"
    "--B1--\n";

static void test_rfc3464(void **state)
{
    (void)state;
    assert_int_equal(parse(DSN), REPLY_BOUNCE_DSN);
    assert_int_equal(result.nrcpt, 2);
    const struct reply_bounce_rcpt *r = &result.rcpt[0];
    assert_string_equal(r->recipient, "bob@example.org");
    assert_string_equal(r->action, "failed");
    assert_string_equal(r->status, "5.1.1");
    assert_true(r->status_given);
    assert_int_equal(r->reply_code, 550);
    assert_string_equal(r->reason, "userunknown");
    assert_true(r->hard);
    assert_string_equal(r->remote_mta, "mx.example.org");
    assert_non_null(strstr(r->diag, "rejected: User unknown")); /* unfolded */
    r = &result.rcpt[1];
    assert_string_equal(r->action, "delayed");
    assert_string_equal(r->reason, "mailboxfull");
    assert_false(r->hard);
    assert_string_equal(result.message_id, "<lunch-1@example.test>");
    assert_string_equal(result.subject, "Lunch");
}

static void test_crlf_base64_and_nested(void **state)
{
    (void)state;
    /* the same report with CRLF line ends, its status part in base64, inside a forward */
    const char *status = "Final-Recipient: rfc822; dave@example.org\r\nAction: failed\r\n"
                         "Status: 5.2.2\r\nDiagnostic-Code: smtp; 552 5.2.2 Quota exceeded\r\n";
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char enc[512];
    size_t n = strlen(status), o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)status[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)status[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)status[i + 2];
        enc[o++] = b64[v >> 18 & 63];
        enc[o++] = b64[v >> 12 & 63];
        enc[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
        enc[o++] = i + 2 < n ? b64[v & 63] : '=';
        if (o % 76 == 0)
            enc[o++] = '\n';
    }
    enc[o] = '\0';
    char msg[4096];
    snprintf(msg, sizeof msg,
             "From: helpdesk@example.test\r\nSubject: Fwd: =?ISO-8859-1?Q?R=E9ponse?=\r\n"
             "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
             "--outer\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
             "--outer\r\nContent-Type: message/rfc822\r\n\r\n"
             "From: Mail Delivery Subsystem <MAILER-DAEMON@example.test>\r\n"
             "Subject: Returned mail\r\n"
             "Content-Type: multipart/report; report-type=delivery-status; boundary=\"in\"\r\n"
             "\r\n--in\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
             "--in\r\nContent-Type: message/delivery-status\r\n"
             "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--in--\r\n--outer--\r\n",
             enc);
    assert_int_equal(parse(msg), REPLY_BOUNCE_DSN);
    assert_int_equal(result.nrcpt, 1);
    assert_string_equal(result.rcpt[0].recipient, "dave@example.org");
    assert_string_equal(result.rcpt[0].status, "5.2.2");
    assert_string_equal(result.rcpt[0].reason, "mailboxfull");
}

static void test_qmail(void **state)
{
    (void)state;
    assert_int_equal(parse("From: MAILER-DAEMON@mx.example.test\n"
                           "To: alice@example.test\n"
                           "Subject: failure notice\n\n"
                           "Hi. This is the qmail-send program at mx.example.test.\n"
                           "I'm afraid I wasn't able to deliver your message to the following "
                           "addresses.\nThis is a permanent error; I've given up.\n\n"
                           "<erin@example.org>:\n"
                           "192.0.2.1 does not like recipient.\n"
                           "Remote host said: 550 5.1.1 No such user\n"
                           "Giving up on 192.0.2.1.\n\n"
                           "--- Below this line is a copy of the message.\n\n"
                           "To: erin@example.org\nMessage-ID: <q1@example.test>\n\nhi\n"),
                     REPLY_BOUNCE_DSN);
    assert_int_equal(result.nrcpt, 1);
    assert_string_equal(result.rcpt[0].recipient, "erin@example.org");
    assert_false(result.rcpt[0].status_given);
    assert_string_equal(result.rcpt[0].status, "5.1.1");
    assert_string_equal(result.rcpt[0].reason, "userunknown");
    assert_int_equal(result.rcpt[0].reply_code, 550);
}

static void test_exim(void **state)
{
    (void)state;
    assert_int_equal(parse("From: Mail Delivery System <Mailer-Daemon@mx.example.test>\n"
                           "To: alice@example.test\n"
                           "Subject: Mail delivery failed: returning message to sender\n\n"
                           "This message was created automatically by mail delivery software.\n\n"
                           "A message that you sent could not be delivered to one or more of its\n"
                           "recipients. This is a permanent error. The following address(es) "
                           "failed:\n\n"
                           "  frank@example.org\n"
                           "    host mx.example.org [192.0.2.2]\n"
                           "    SMTP error from remote mail server after RCPT TO:<frank@example.org>:\n"
                           "    552 5.2.2 Mailbox full\n\n"
                           "------ This is a copy of the message, including all the headers. ------\n"
                           "\nTo: frank@example.org\n\nhi\n"),
                     REPLY_BOUNCE_DSN);
    assert_int_equal(result.nrcpt, 1);
    assert_string_equal(result.rcpt[0].recipient, "frank@example.org");
    assert_string_equal(result.rcpt[0].reason, "mailboxfull");
    assert_string_equal(result.rcpt[0].status, "5.2.2");
}

static void test_gmail_and_words_only(void **state)
{
    (void)state;
    /* the address alone on its line, the reply paragraphs below it */
    assert_int_equal(parse("From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
                           "To: alice@example.test\n"
                           "Subject: Delivery Status Notification (Failure)\n\n"
                           "Delivery to the following recipient failed permanently:\n\n"
                           "     grace@example.org\n\n"
                           "Technical details of permanent failure:\n"
                           "The error that the other server returned was:\n"
                           "550 5.1.1 <grace@example.org>... User Unknown\n\n"
                           "----- Original message -----\n\nTo: grace@example.org\n\nhi\n"),
                     REPLY_BOUNCE_DSN);
    assert_int_equal(result.nrcpt, 1);
    assert_string_equal(result.rcpt[0].recipient, "grace@example.org");
    assert_string_equal(result.rcpt[0].reason, "userunknown");
    /* no code at all: the reason from the words, the likeliest code from the reason */
    assert_int_equal(parse("From: MAILER-DAEMON <>\nTo: alice@example.test\n"
                           "Subject: Mail delivery failed\n\n"
                           "There was an error delivering your mail to <heidi@example.org>.\n\n"
                           "The recipient's mailbox is full.\n\n"
                           "Message headers follow.\n\nTo: <heidi@example.org>\n"),
                     REPLY_BOUNCE_DSN);
    assert_string_equal(result.rcpt[0].recipient, "heidi@example.org");
    assert_string_equal(result.rcpt[0].reason, "mailboxfull");
    assert_string_equal(result.rcpt[0].status, "5.2.2");
    assert_int_equal(result.rcpt[0].reply_code, 0);
}

static void test_vacation_feedback_and_none(void **state)
{
    (void)state;
    assert_int_equal(parse("From: ivan@example.org\nTo: alice@example.test\n"
                           "Auto-Submitted: auto-replied\nSubject: Away until May 5\n\n"
                           "I am away.\n"),
                     REPLY_BOUNCE_VACATION);
    assert_string_equal(result.rcpt[0].reason, "vacation");
    assert_string_equal(result.rcpt[0].recipient, "ivan@example.org");
    assert_int_equal(parse("From: abuse@example.org\nTo: alice@example.test\n"
                           "Subject: Feedback report\n"
                           "Content-Type: multipart/report; report-type=feedback-report; "
                           "boundary=\"F\"\n\n--F\nContent-Type: text/plain\n\nA complaint.\n"
                           "--F\nContent-Type: message/feedback-report\n\n"
                           "Feedback-Type: abuse\nUser-Agent: x/1\nVersion: 1\n"
                           "Original-Rcpt-To: <judy@example.org>\n"
                           "--F\nContent-Type: text/rfc822-headers\n\n"
                           "From: alice@example.test\nMessage-ID: <spam@example.test>\n--F--\n"),
                     REPLY_BOUNCE_FEEDBACK);
    assert_string_equal(result.feedback_type, "abuse");
    assert_string_equal(result.rcpt[0].recipient, "judy@example.org");
    assert_string_equal(result.rcpt[0].reason, "feedback");
    assert_string_equal(result.message_id, "<spam@example.test>");
    assert_int_equal(parse("From: bob@example.org\nTo: alice@example.test\nSubject: Lunch?\n\n"
                           "Shall we meet at noon? Write to carol@example.org too.\n"),
                     REPLY_BOUNCE_NONE);
    assert_int_equal(result.nrcpt, 0);
}

static void test_ses_json_and_transcript(void **state)
{
    (void)state;
    /* a JSON notification: the recipient's own object gives status and reply */
    assert_int_equal(parse("From: no-reply@sns.example.test\nTo: alice@example.test\n"
                           "Subject: Notification Message\n\n"
                           "{\"notificationType\":\"Bounce\",\"bounce\":{\"bouncedRecipients\":"
                           "[{\"emailAddress\":\"leo@example.org\",\"action\":\"failed\","
                           "\"status\":\"5.1.1\",\"diagnosticCode\":\"smtp; 550 5.1.1 user "
                           "unknown\"}]}}\n"),
                     REPLY_BOUNCE_DSN);
    assert_string_equal(result.rcpt[0].recipient, "leo@example.org");
    assert_string_equal(result.rcpt[0].status, "5.1.1");
    assert_string_equal(result.rcpt[0].reason, "userunknown");
    /* "unknown user" in answer to DATA is a filter's verdict on the message */
    assert_int_equal(parse("From: Mail Delivery Subsystem <MAILER-DAEMON@example.test>\n"
                           "To: alice@example.test\nSubject: Returned mail\n\n"
                           "----- The following addresses had permanent fatal errors -----\n"
                           "<mia@example.org>\n    (reason: 550 Unknown user mia@example.org)\n\n"
                           "----- Transcript of session follows -----\n"
                           "... while talking to mx.example.org.:\n>>> DATA\n"
                           "<<< 550 Unknown user mia@example.org\n"),
                     REPLY_BOUNCE_DSN);
    assert_string_equal(result.rcpt[0].recipient, "mia@example.org");
    assert_string_equal(result.rcpt[0].reason, "filtered");
}

static void test_sendmail_shapes(void **state)
{
    (void)state;
    /* Sendmail V5: "554 <rcpt>... reason" lines, one per recipient, in order */
    assert_int_equal(parse("From: Mail Delivery Subsystem <MAILER-DAEMON@example.test>\n"
                           "To: alice@example.test\nSubject: Returned mail: User unknown\n\n"
                           "   ----- Transcript of session follows -----\n"
                           "550 example.net (smtp)... 550 Host unknown\n"
                           "554 <nina@example.net>... 550 Host unknown (Authoritative answer)\n"
                           "554 <omar@example.org>... User unknown\n"
                           "   ----- Unsent message follows -----\nTo: nina@example.net\n"),
                     REPLY_BOUNCE_DSN);
    assert_int_equal(result.nrcpt, 2);
    assert_string_equal(result.rcpt[0].recipient, "nina@example.net");
    assert_string_equal(result.rcpt[0].reason, "hostunknown");
    assert_string_equal(result.rcpt[1].recipient, "omar@example.org");
    /* "User unknown" with no status and no stage: a filter's words, not a missing mailbox */
    assert_string_equal(result.rcpt[1].reason, "filtered");
    /* refused in answer to MAIL FROM: the sender is refused, whatever the words say */
    assert_int_equal(parse("From: Mail Delivery System <Mailer-Daemon@example.test>\n"
                           "To: alice@example.test\nSubject: Mail delivery failed\n\n"
                           "  pat@example.org\n"
                           "    SMTP error from remote mail server after MAIL FROM:<alice@"
                           "example.test>:\n    550 5.1.0 Unknown user\n"),
                     REPLY_BOUNCE_DSN);
    assert_string_equal(result.rcpt[0].reason, "rejected");
    /* a status part without Diagnostic-Code: the reply quoted in the words counts */
    assert_int_equal(parse("From: Mailer Daemon <MAILER-DAEMON@example.test>\n"
                           "To: alice@example.test\nSubject: Delivery status notification\n"
                           "Content-Type: multipart/mixed; boundary=\"x\"\n\n--x\n"
                           "Content-Type: text/plain\n\n"
                           "quinn@example.org: 552 5.2.2 Mailbox full\n\n--x\n"
                           "Content-Type: message/delivery-status\n\n"
                           "Reporting-MTA: dns; example.test\n\n"
                           "Final-Recipient: rfc822; quinn@example.org\nAction: failed\n"
                           "Status: 5.0.0\n\n--x--\n"),
                     REPLY_BOUNCE_DSN);
    assert_string_equal(result.rcpt[0].reason, "mailboxfull");
    assert_string_equal(result.rcpt[0].status, "5.2.2");
    /* unlabelled ISO-2022-JP text is read as such */
    assert_int_equal(parse("From: MAILER-DAEMON@example.test\nTo: alice@example.test\n"
                           "Subject: Returned mail\n\n"
                           "<ren@example.jp>: \x1b$B%f!<%6!<\x1b(B unknown user\n"),
                     REPLY_BOUNCE_DSN);
    assert_non_null(strstr(result.rcpt[0].diag, "\xe3\x83\xa6\xe3\x83\xbc"));
}

static void test_carrier_shapes(void **state)
{
    (void)state;
    /* a Japanese carrier: 8-bit UTF-8 subject ("mail error notice"), a labelled recipient */
    assert_int_equal(parse("From: no-reply@example.jp\nTo: alice@example.test\n"
                           "Subject: \xe3\x83\xa1\xe3\x83\xbc\xe3\x83\xab\xe3\x82\xa8"
                           "\xe3\x83\xa9\xe3\x83\xbc\xe9\x80\x9a\xe7\x9f\xa5\n\n"
                           "Your mail sent on: Thu, 29 Apr 2013 23:45:22 +0900\n"
                           "     Could not be delivered to: <sam@example.jp>\n"
                           "     As their mailbox is full.\n"),
                     REPLY_BOUNCE_DSN);
    assert_string_equal(result.rcpt[0].recipient, "sam@example.jp");
    assert_string_equal(result.rcpt[0].reason, "mailboxfull");
    /* a message bounced back to its own sender names the sender */
    assert_int_equal(parse("From: MAILER-DAEMON@example.test\nTo: tom@example.test\n"
                           "Subject: failure notice\n\n<tom@example.test>:\n"
                           "Remote host said: 552 Error: disk quota exceeded\n"),
                     REPLY_BOUNCE_DSN);
    assert_string_equal(result.rcpt[0].recipient, "tom@example.test");
    /* the words before the address on its line ("Unknown user: rcpt") are its reply */
    assert_int_equal(parse("From: \"Postmaster\" <postmaster@example.test>\n"
                           "To: alice@example.test\nSubject: Undeliverable Mail\n\n"
                           "Unknown user: una@example.org\n\nOriginal message follows.\n\n"
                           "To: una@example.org\n"),
                     REPLY_BOUNCE_DSN);
    assert_string_equal(result.rcpt[0].recipient, "una@example.org");
    assert_string_equal(result.rcpt[0].reason, "userunknown");
}

static void test_feedback_shapes(void **state)
{
    (void)state;
    /* several Original-Rcpt-To fields: one record each */
    assert_int_equal(parse("From: abuse@example.org\nSubject: report\n"
                           "Content-Type: multipart/report; report-type=feedback-report; "
                           "boundary=\"F\"\n\n--F\nContent-Type: message/feedback-report\n\n"
                           "Feedback-Type: abuse\nOriginal-Rcpt-To: vic@example.org\n"
                           "Original-Rcpt-To: <wes@example.net>\n--F--\n"),
                     REPLY_BOUNCE_FEEDBACK);
    assert_int_equal(result.nrcpt, 2);
    assert_string_equal(result.rcpt[1].recipient, "wes@example.net");
    /* an "unsubscribe" mail is an opt-out, even when sent automatically */
    assert_int_equal(parse("From: xena@example.org\nSubject: unsubscribe\n"
                           "Auto-Submitted: auto-replied\n\nunsubscribe\n"),
                     REPLY_BOUNCE_FEEDBACK);
    assert_string_equal(result.feedback_type, "opt-out");
    assert_string_equal(result.rcpt[0].recipient, "xena@example.org");
    /* a bounce notification wrapped as an escaped JSON string */
    assert_int_equal(parse("From: no-reply@sns.example.test\nSubject: Notification\n\n"
                           "{\"Message\" : \"{\\\"notificationType\\\":\\\"Bounce\\\","
                           "\\\"bouncedRecipients\\\":[{\\\"emailAddress\\\":\\\"yan@example.org"
                           "\\\",\\\"status\\\":\\\"5.1.1\\\"}]}\"}\n"),
                     REPLY_BOUNCE_DSN);
    assert_string_equal(result.rcpt[0].recipient, "yan@example.org");
    assert_string_equal(result.rcpt[0].status, "5.1.1");
}

/* Found by fuzz_bounce: a charset conversion that filled the output and then met a byte the
 * charset cannot read wrote one byte past the end. Every output size is tried. */
static void test_encoded_word_fills_output(void **state)
{
    (void)state;
    const char *in = "=?shift_jis?Q?=82=A0=82=A0=FF=FF?= x";
    for (size_t cap = 1; cap < 24; cap++) {
        char *out = malloc(cap);
        assert_non_null(out);
        size_t n = reply_mime_decode_words(in, strlen(in), out, cap);
        assert_true(n < cap);
        assert_int_equal(out[n], '\0');
        free(out);
    }
    char out[64];
    reply_mime_decode_words(in, strlen(in), out, sizeof out);
    assert_string_equal(out, "\xe3\x81\x82\xe3\x81\x82?? x");
}

static void test_hostile(void **state)
{
    (void)state;
    /* a boundary that never comes, bad base64, a header line far over any limit, NULs */
    size_t big = 300000;
    char *msg = malloc(big + 512);
    assert_non_null(msg);
    int n = snprintf(msg, 512, "From: MAILER-DAEMON@x\nSubject: Undeliverable\n"
                               "Content-Type: multipart/report; boundary=nope\nX-Long: ");
    memset(msg + n, 'a', big);
    size_t len = (size_t)n + big;
    const char *tail = "\n\n--other\nContent-Transfer-Encoding: base64\n\n!!!*\0\xff=\n"
                       "<kim@example.org>: 550 5.1.1 unknown\n";
    memcpy(msg + len, tail, 80);
    len += 80;
    memset(&result, 0, sizeof result);
    reply_bounce_parse(msg, len, arena, sizeof arena, &result);
    assert_true(result.nrcpt <= REPLY_BOUNCE_RCPT_MAX);
    /* a tiny arena only cuts text */
    char small[16];
    reply_bounce_parse(DSN, strlen(DSN), small, sizeof small, &result);
    assert_int_equal(result.nrcpt, 2);
    free(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3464),
        cmocka_unit_test(test_crlf_base64_and_nested),
        cmocka_unit_test(test_qmail),
        cmocka_unit_test(test_exim),
        cmocka_unit_test(test_gmail_and_words_only),
        cmocka_unit_test(test_vacation_feedback_and_none),
        cmocka_unit_test(test_ses_json_and_transcript),
        cmocka_unit_test(test_sendmail_shapes),
        cmocka_unit_test(test_carrier_shapes),
        cmocka_unit_test(test_feedback_shapes),
        cmocka_unit_test(test_encoded_word_fills_output),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
