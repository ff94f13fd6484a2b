/* tests/unit/test_reply_bounce_reason.c — a bounced recipient's reason by the SMTP stage, the
 * diagnostic type and providers' codes: the stage finder, the "unknown user" rule, MAIL FROM
 * and greeting refusals, local programs, transient replies in final reports, Cox, Spectrum,
 * Orange, KDDI and Zoho codes; and whole reports that carry the stage in their words. */
#include "unit.h"

#include <string.h>

#include "reply/bounce.h"
#include "reply/bounce_reason.h"

static void test_stage(void **state)
{
    (void)state;
    assert_int_equal(reply_bounce_stage("", 0), REPLY_STAGE_NONE);
    const struct {
        const char *text;
        enum reply_bounce_stage stage;
    } cases[] = {
        {"550 5.1.1 no such user (in reply to RCPT TO command)", REPLY_STAGE_RCPT},
        {"550 5.7.1 spam (in reply to end of DATA command)", REPLY_STAGE_DATA},
        {"SMTP error from remote mail server after end of data: 550 no", REPLY_STAGE_DATA},
        {"SMTP error from remote mail server after MAIL FROM:<a@b> SIZE=10: 550 no",
         REPLY_STAGE_MAIL},
        {"SMTP error from remote mail server after EHLO mx.example: 550 Rejected",
         REPLY_STAGE_CONNECT},
        {"SMTP error after RCPT TO:<a@b>: 550 no, then DATA", REPLY_STAGE_DATA},
        {"host mx.example[192.0.2.1] refused to talk to me: 421 Service not available",
         REPLY_STAGE_CONNECT},
        {"192.0.2.1 does not like recipient. Remote host said: 550 no", REPLY_STAGE_RCPT},
        {"550 5.1.1 User Unknown [RCPT_TO]", REPLY_STAGE_RCPT},
        {"554 5.7.0 Header error (state 18).", REPLY_STAGE_DATA},
        /* words, not commands: a DATABASE, "the data", "mail from this host" */
        {"550 DATABASE error: the data of mail from this host", REPLY_STAGE_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(reply_bounce_stage(cases[i].text, strlen(cases[i].text)),
                         cases[i].stage);
}

static const char *decide(const char *reason, const char *diag, const char *status,
                          enum reply_bounce_stage stage)
{
    struct reply_bounce_facts f = {.diag = diag, .status = status, .action = "failed",
                                   .remote_mta = "", .recipient = "bob@example.org",
                                   .stage = stage, .status_given = status[0] != '\0'};
    return reply_bounce_reason(reason, &f);
}

static void test_unknown_user_by_stage(void **state)
{
    (void)state;
    /* a missing mailbox when the status says so or RCPT TO was refused */
    assert_string_equal(decide("userunknown", "550 5.1.1 User unknown", "5.1.1", REPLY_STAGE_DATA),
                        "userunknown");
    assert_string_equal(decide("userunknown", "550 User unknown", "5.2.1", REPLY_STAGE_RCPT),
                        "userunknown");
    /* after DATA or where the report does not say: a filter refused the message */
    assert_string_equal(decide("userunknown", "550 User unknown", "5.2.1", REPLY_STAGE_DATA),
                        "filtered");
    assert_string_equal(decide("userunknown", "550 No such user", "", REPLY_STAGE_NONE),
                        "filtered");
    /* the reporting MTA's own directory words stand without a stage */
    assert_string_equal(decide("userunknown", "The recipient name is not recognized", "",
                               REPLY_STAGE_NONE),
                        "userunknown");
    /* refused at MAIL FROM: the sender */
    assert_string_equal(decide("userunknown", "550 User unknown", "5.0.0", REPLY_STAGE_MAIL),
                        "rejected");
    assert_string_equal(decide("undefined", "550 5.7.1 Access denied", "5.7.1", REPLY_STAGE_MAIL),
                        "rejected");
    /* refused at the greeting without a word of why: blocked */
    assert_string_equal(decide("onhold", "550 Rejected", "5.0.0", REPLY_STAGE_CONNECT), "blocked");
    /* "553 mx.example.com does not exist": the domain, not the mailbox */
    assert_string_equal(decide("userunknown", "553 mx.example.com does not exist", "",
                               REPLY_STAGE_DATA),
                        "hostunknown");
    assert_string_equal(decide("userunknown", "550 bob@example.org does not exist", "5.1.1",
                               REPLY_STAGE_RCPT),
                        "userunknown");
}

static void test_programs_and_transient(void **state)
{
    (void)state;
    struct reply_bounce_facts f = {.diag = "71", .status = "4.5.0", .action = "delayed",
                                   .remote_mta = "", .recipient = "bob@example.org",
                                   .diag_unix = true, .status_given = true};
    assert_string_equal(reply_bounce_reason("syntaxerror", &f), "mailererror");
    f.diag = "mailbox is full";
    assert_string_equal(reply_bounce_reason("mailboxfull", &f), "mailboxfull");
    /* a final report quoting a transient reply of no lasting cause: the queue gave up */
    f = (struct reply_bounce_facts){.diag = "undefined here", .status = "4.0.0", .action = "failed",
                                    .remote_mta = "", .recipient = "bob@example.org",
                                    .status_given = true};
    assert_string_equal(reply_bounce_reason("undefined", &f), "expired");
    /* the reporting MTA's own class (PowerMTA) decides over the words and the stage */
    f = (struct reply_bounce_facts){.diag = "554 delivery error: dd This user doesn't have an "
                                            "account", .status = "5.0.0", .action = "failed",
                                    .remote_mta = "", .recipient = "bob@example.org",
                                    .status_given = true, .category = "bad-mailbox"};
    assert_string_equal(reply_bounce_reason("filtered", &f), "userunknown");
    f.category = "no-such-category";
    assert_string_equal(reply_bounce_reason("filtered", &f), "filtered");
}

static void test_providers(void **state)
{
    (void)state;
    const struct {
        const char *mta, *rcpt, *diag, *reason; /* reason NULL: no provider's verdict */
    } cases[] = {
        /* Cox: the AUP# code decides over the words */
        {"cxr.mx.a.cloudfilter.net", "a@cox.net", "550 5.1.0 <x@y> sender rejected. AUP#CDRBL",
         "blocked"},
        {"", "a@cox.net", "550 sender rejected", "rejected"},
        /* Spectrum: four digits in a documented range */
        {"", "a@charter.net", "550 no AUP#In-1310", "toomanyconn"},
        {"", "a@charter.net", "550 no AUP#In-9999", NULL},
        /* Orange: the host named in the words, the code ending the OFR label */
        {"", "a@example.fr", "host smtp.wanadoo.fr [192.0.2.1]: 550 5.2.0 Mail rejete. OFR_506 [506]",
         "spamdetected"},
        {"smtp-in.orange.fr", "a@example.fr", "550 5.1.1 Invalid recipient. OFR004_416",
         "userunknown"},
        /* KDDI: the address before ": User unknown" makes the difference */
        {"lsean.ezweb.ne.jp.", "a@ezweb.ne.jp", "550 : User unknown", "filtered"},
        {"msmx.au.com", "a@au.com", "550 <a@au.com>: User unknown", "userunknown"},
        {"mx.zoho.com", "a@example.com", "541 5.4.1 Mail rejected by destination domain",
         "rejected"},
        /* elsewhere the same words decide nothing */
        {"mx.example.net", "a@example.net", "550 : User unknown", NULL},
        {"mx.notcox.net.example", "a@example.net", "AUP#CXBL", NULL},
        {"", "", "", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = reply_bounce_provider_reason(cases[i].mta, cases[i].rcpt, cases[i].diag);
        if (cases[i].reason)
            assert_string_equal(got, cases[i].reason);
        else
            assert_null(got);
    }
}

static char arena[1 << 18];
static struct reply_bounce result;

#define HEAD                                                                                \
    "From: MAILER-DAEMON@mx.example.test (Mail Delivery System)\n"                           \
    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
#define STATUS_PART(status)                                                                  \
    "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.test\n\n"  \
    "Final-Recipient: rfc822; bob@example.org\nAction: failed\nStatus: " status "\n"

static const char *first_reason(const char *msg)
{
    assert_int_equal(reply_bounce_parse(msg, strlen(msg), arena, sizeof arena, &result),
                     REPLY_BOUNCE_DSN);
    return result.rcpt[0].reason;
}

static void test_whole_reports(void **state)
{
    (void)state;
    /* Postfix wraps the reply: the stage is on the continuation line that names the address */
    assert_string_equal(first_reason("Subject: Undelivered Mail Returned to Sender\n" HEAD
                                     "--B\nContent-Type: text/plain\n\n"
                                     "<bob@example.org>: host mx.example.org[192.0.2.1] said: 550 "
                                     "5.2.1\n<bob@example.org>... User Unknown (in reply to RCPT "
                                     "TO command)\n\n" STATUS_PART("5.2.1")
                                     "Diagnostic-Code: smtp; 550 5.2.1 <bob@example.org>... User "
                                     "Unknown\n\n--B--\n"),
                        "userunknown");
    /* Sendmail cut a multi-line reply to its first line; the transcript has it whole */
    assert_string_equal(first_reason("Subject: Returned mail: see transcript for details\n" HEAD
                                     "--B\n\n   ----- Transcript of session follows -----\n"
                                     "... while talking to mx.example.org.:\n>>> DATA\n"
                                     "<<< 552-5.7.0 This message was blocked because its content "
                                     "presents a potential\n<<< 552 5.7.0 security issue. Please "
                                     "visit the guidelines.\n" STATUS_PART("5.7.0")
                                     "Diagnostic-Code: SMTP; 552-5.7.0 This message was blocked "
                                     "because its content presents a potential\n\n--B--\n"),
                        "policyviolation");
    assert_non_null(strstr(result.rcpt[0].diag, "security issue"));
    /* refused at MAIL FROM: the sender's reason, with the table's words for it */
    assert_string_equal(first_reason("Subject: Undelivered Mail Returned to Sender\n" HEAD
                                     "--B\nContent-Type: text/plain\n\n"
                                     "<bob@example.org>: host mx.example.org[192.0.2.1] said: 550 "
                                     "5.7.1 Access denied (in reply to MAIL FROM command)\n\n"
                                     STATUS_PART("5.7.1")
                                     "Diagnostic-Code: smtp; 550 5.7.1 Access denied\n\n--B--\n"),
                        "rejected");
    assert_true(result.rcpt[0].explained);
    assert_ptr_equal(result.rcpt[0].ex.cause, reply_reason_info(REASON_rejected)->cause);
    assert_ptr_equal(result.rcpt[0].ex.action, reply_reason_info(REASON_rejected)->action);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage),
        cmocka_unit_test(test_unknown_user_by_stage),
        cmocka_unit_test(test_programs_and_transient),
        cmocka_unit_test(test_providers),
        cmocka_unit_test(test_whole_reports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
