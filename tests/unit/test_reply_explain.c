/* tests/unit/test_reply_explain.c — reply/explain.c: real replies and bounce/log lines from many
 * providers, edge cases of finding the code, errors, and the sanity of patterns.def. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply/explain.h"

struct case_ {
    const char *input;
    int code;              /* 0: none */
    const char *enhanced;  /* NULL: none */
    enum reply_class cls;
    enum reply_reason reason;
};

#define P REPLY_CLASS_PERMANENT
#define T REPLY_CLASS_TRANSIENT
#define S REPLY_CLASS_SUCCESS
#define R(x) REASON_##x

/* Published replies and bounce lines, as servers and logs write them. */
static const struct case_ cases[] = {
    /* Postfix */
    {"550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown in local "
     "recipient table",
     550, "5.1.1", P, R(userunknown)},
    {"550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown in virtual "
     "mailbox table",
     550, "5.1.1", P, R(userunknown)},
    {"554 5.7.1 <bob@example.org>: Relay access denied", 554, "5.7.1", P, R(norelaying)},
    {"454 4.7.1 <bob@example.org>: Relay access denied", 454, "4.7.1", T, R(norelaying)},
    {"450 4.2.0 <bob@example.org>: Recipient address rejected: Greylisted, see "
     "http://postgrey.schweikert.ch/help/example.org.html",
     450, "4.2.0", T, R(blocked)},
    {"421 4.7.0 mail.example.org Error: too many connections from 192.0.2.1",
     421, "4.7.0", T, R(toomanyconn)},
    {"450 4.7.1 Error: too much mail from 192.0.2.1", 450, "4.7.1", T, R(speeding)},
    {"452 4.3.1 Insufficient system storage", 452, "4.3.1", T, R(systemfull)},
    {"552 5.3.4 Message size exceeds fixed limit", 552, "5.3.4", P, R(mesgtoobig)},
    {"450 4.7.1 Client host rejected: cannot find your hostname, [192.0.2.1]",
     450, "4.7.1", T, R(requireptr)},
    {"450 4.1.8 <alice@nodomain.example>: Sender address rejected: Domain not found",
     450, "4.1.8", T, R(rejected)},
    {"504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname",
     504, "5.5.2", P, R(blocked)},
    {"451 4.3.0 Error: queue file write error", 451, "4.3.0", T, R(systemerror)},
    {"554 5.5.1 Error: no valid recipients", 554, "5.5.1", P, R(userunknown)},
    {"503 5.5.1 Error: need RCPT command", 503, "5.5.1", P, R(syntaxerror)},
    {"Diagnostic-Code: smtp; 550 5.7.1 Service unavailable; Client host [192.0.2.1] blocked "
     "using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.1",
     550, "5.7.1", P, R(blocked)},
    {"Jan  5 12:00:01 mail postfix/smtp[1234]: 4ABC123: to=<bob@example.org>, "
     "relay=mx.example.org[192.0.2.1]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=5.1.1, "
     "status=bounced (host mx.example.org[192.0.2.1] said: 550 5.1.1 <bob@example.org>: "
     "Recipient address rejected: User unknown (in reply to RCPT TO command))",
     550, "5.1.1", P, R(userunknown)},
    {"Jan  5 12:00:01 mail postfix/smtp[1234]: 4ABC123: to=<bob@example.org>, relay=none, "
     "delay=30, delays=0/0/30/0, dsn=4.4.1, status=deferred (connect to "
     "mx.example.org[192.0.2.1]:25: Connection timed out)",
     0, "4.4.1", T, R(networkerror)},
    {"dsn=5.1.10, status=bounced (Domain example.org does not accept mail (nullMX))",
     0, "5.1.10", P, R(notaccept)},
    {"status=deferred (host mx.example.org[192.0.2.1] said: 450 4.7.1 Client host rejected: "
     "cannot find your reverse hostname, [192.0.2.1] (in reply to RCPT TO command))",
     450, "4.7.1", T, R(requireptr)},
    {"dsn=4.4.3, status=deferred (Host or domain name not found. Name service error for "
     "name=example.org type=MX: Host not found, try again)",
     0, "4.4.3", T, R(networkerror)},
    {"dsn=5.4.4, status=bounced (Host or domain name not found. Name service error for "
     "name=nodomain.example type=A: Host not found)",
     0, "5.4.4", P, R(hostunknown)},
    {"dsn=5.4.6, status=bounced (mail for example.org loops back to myself)",
     0, "5.4.6", P, R(systemerror)},
    {"dsn=4.7.4, status=deferred (TLS is required, but was not offered by host "
     "mx.example.org[192.0.2.1])",
     0, "4.7.4", T, R(failedstarttls)},
    /* Gmail */
    {"host gmail-smtp-in.l.google.com[192.0.2.26] said: 550-5.1.1 The email account that you "
     "tried to reach does not exist. Please try 550-5.1.1 double-checking the recipient's "
     "email address for typos or 550-5.1.1 unnecessary spaces. "
     "https://support.google.com/mail/?p=NoSuchUser a1si123 - gsmtp",
     550, "5.1.1", P, R(userunknown)},
    {"host mx.example.org[192.0.2.1] said: 552-5.2.2 The email account that you tried to "
     "reach is over quota",
     552, "5.2.2", P, R(mailboxfull)},
    {"452 4.2.2 The email account that you tried to reach is over quota. Please direct the "
     "recipient to https://support.google.com/mail/?p=OverQuotaTemp",
     452, "4.2.2", T, R(mailboxfull)},
    {"450 4.2.1 The user you are trying to contact is receiving mail too quickly. Please "
     "resend your message at a later time.",
     450, "4.2.1", T, R(speeding)},
    {"450-4.2.1 The user you are trying to contact is receiving mail at a rate that prevents "
     "additional messages from being delivered.",
     450, "4.2.1", T, R(speeding)},
    {"421-4.7.0 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail "
     "originating from your IP address.",
     421, "4.7.0", T, R(blocked)},
    {"550-5.7.1 [192.0.2.1] Our system has detected that this message is likely unsolicited "
     "mail. To reduce the amount of spam sent to Gmail, this message has been blocked.",
     550, "5.7.1", P, R(spamdetected)},
    {"550-5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail "
     "requires all senders to authenticate with either SPF or DKIM.",
     550, "5.7.26", P, R(authfailure)},
    {"550-5.7.25 The IP address sending this message does not have a PTR record setup, or the "
     "corresponding forward DNS entry does not point to the sending IP.",
     550, "5.7.25", P, R(requireptr)},
    {"421-4.7.0 This message does not have authentication information or fails to pass "
     "authentication checks.",
     421, "4.7.0", T, R(authfailure)},
    {"421-4.7.0 [192.0.2.1] Our system has detected that this message is suspicious due to "
     "the very low reputation of the sending IP address.",
     421, "4.7.0", T, R(badreputation)},
    {"552-5.7.0 This message was blocked because its content presents a potential security "
     "issue.",
     552, "5.7.0", P, R(policyviolation)},
    {"421 4.7.0 TLS required for RCPT domain, closing connection.",
     421, "4.7.0", T, R(failedstarttls)},
    {"530 5.7.0 Must issue a STARTTLS command first.", 530, "5.7.0", P, R(failedstarttls)},
    {"535 5.7.8 Username and Password not accepted. Learn more at "
     "https://support.google.com/mail/?p=BadCredentials",
     535, "5.7.8", P, R(securityerror)},
    {"452 4.5.3 Your message has too many recipients.", 452, "4.5.3", T, R(toomanyconn)},
    {"550 5.7.1 The user or domain that you are sending to (or from) has a policy that "
     "prohibited the mail that you sent.",
     550, "5.7.1", P, R(policyviolation)},
    {"554 5.6.0 Message exceeded 50 hops, this may indicate a mail loop.",
     554, "5.6.0", P, R(networkerror)},
    {"421 4.3.0 Temporary System Problem. Try again later.", 421, "4.3.0", T, R(systemerror)},
    {"552 5.2.3 Your message exceeded Google's message size limits.",
     552, "5.2.3", P, R(exceedlimit)},
    {"550 5.4.5 Daily sending quota exceeded.", 550, "5.4.5", P, R(speeding)},
    /* Microsoft 365 / Outlook.com */
    {"Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found "
     "by SMTP address lookup'",
     550, "5.1.10", P, R(userunknown)},
    {"Remote Server returned '550 5.1.1 RESOLVER.ADR.ExRecipNotFound; not found'",
     550, "5.1.1", P, R(userunknown)},
    {"550 5.7.606 Access denied, banned sending IP [192.0.2.1]. To request removal from this "
     "list please visit https://sender.office.com/",
     550, "5.7.606", P, R(blocked)},
    {"550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.",
     550, "5.7.708", P, R(blocked)},
    {"550 5.4.1 Recipient address rejected: Access denied. AS(201806281) "
     "[DB5EUR01FT012.eop-EUR01.prod.protection.outlook.com]",
     550, "5.4.1", P, R(userunknown)},
    {"554 5.2.2 mailbox full; "
     "STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded",
     554, "5.2.2", P, R(mailboxfull)},
    {"550 5.7.520 Access denied, Your organization does not allow external forwarding.",
     550, "5.7.520", P, R(policyviolation)},
    {"550 5.7.509 Access denied, sending domain example.com does not pass DMARC verification "
     "and has a DMARC policy of reject.",
     550, "5.7.509", P, R(authfailure)},
    {"550 5.7.23 The message was rejected because of Sender Policy Framework violation",
     550, "5.7.23", P, R(authfailure)},
    {"451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP "
     "reputation.",
     451, "4.7.650", T, R(badreputation)},
    {"550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your "
     "Internet service provider since part of their network is on our block list (S3150).",
     550, "5.7.1", P, R(blocked)},
    {"421 RP-001 (BAY0-MC1-F21) Unfortunately, some messages from 192.0.2.1 weren't sent. "
     "Please try again. We have limits for how many messages can be sent per hour and per day.",
     421, NULL, T, R(speeding)},
    {"550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302)",
     550, "5.5.0", P, R(userunknown)},
    {"554 5.4.14 Hop count exceeded - possible mail loop ATTR34",
     554, "5.4.14", P, R(networkerror)},
    {"550 5.4.300 Message expired", 550, "5.4.300", P, R(expired)},
    {"550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; authentication required",
     550, "5.7.133", P, R(securityerror)},
    {"550 5.6.11 SMTPSEND.BareLinefeedsAreIllegal; message contains bare linefeeds",
     550, "5.6.11", P, R(notcompliantrfc)},
    {"550 5.7.1 Message rejected due to content restrictions", 550, "5.7.1", P, R(policyviolation)},
    {"550 5.4.4 SMTPSEND.DNS.NonExistentDomain; nonexistent domain",
     550, "5.4.4", P, R(hostunknown)},
    /* Yahoo / AOL */
    {"421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume "
     "or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
     421, "4.7.0", T, R(badreputation)},
    {"554 5.7.9 Message not accepted for policy reasons.  See "
     "https://postmaster.yahooinc.com/error-codes",
     554, "5.7.9", P, R(policyviolation)},
    {"553 5.7.2 [TSS09] All messages from 192.0.2.1 will be permanently deferred; Retrying "
     "will NOT succeed. See https://postmaster.yahooinc.com/error-codes",
     553, "5.7.2", P, R(blocked)},
    {"554 delivery error: dd This user doesn't have a yahoo.com account (bob@yahoo.com) [0] - "
     "mta1234.mail.ne1.yahoo.com",
     554, NULL, P, R(userunknown)},
    {"554 30 Sorry, your message to bob@yahoo.com cannot be delivered. This mailbox is "
     "disabled (554.30)",
     554, NULL, P, R(suspend)},
    {"552 1 Requested mail action aborted, mailbox not found", 552, NULL, P, R(userunknown)},
    {"553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.1, because the ip is in "
     "Spamhaus's list; see https://postmaster.yahooinc.com/error-codes",
     553, "5.7.1", P, R(blocked)},
    /* Apple iCloud, Zoho, Proofpoint, Mimecast, Barracuda, Cisco IronPort */
    {"554 5.7.1 [CS01] Message rejected due to local policy. Please visit "
     "https://support.apple.com/en-us/HT204137",
     554, "5.7.1", P, R(policyviolation)},
    {"552 5.2.2 <bob@icloud.com>: user is over quota", 552, "5.2.2", P, R(mailboxfull)},
    {"550 5.7.0 Blocked - see https://ipcheck.proofpoint.com/?ip=192.0.2.1",
     550, "5.7.0", P, R(blocked)},
    {"550 5.1.1 User does not exist - <bob@zoho.com>", 550, "5.1.1", P, R(userunknown)},
    {"550 5.4.6 Unusual sending activity detected. Please try after sometime.",
     550, "5.4.6", P, R(speeding)},
    {"553 Relaying disallowed as alice@example.com", 553, NULL, P, R(norelaying)},
    {"550 Rejected by header based Anti-Spoofing policy: bob@example.org",
     550, NULL, P, R(authfailure)},
    {"554 Email rejected due to security policies - "
     "https://community.mimecast.com/docs/DOC-1369#554",
     554, NULL, P, R(policyviolation)},
    {"451 4.7.1 Greylisting in action, please come back later", 451, "4.7.1", T, R(blocked)},
    {"554 Service unavailable; Client host [192.0.2.1] blocked using Barracuda Reputation; "
     "http://www.barracudanetworks.com/reputation/?r=1&ip=192.0.2.1",
     554, NULL, P, R(blocked)},
    {"554 5.7.1 Your access to this mail system has been rejected due to the sending MTA's "
     "poor reputation.",
     554, "5.7.1", P, R(badreputation)},
    {"550 #5.1.0 Address rejected bob@example.org", 550, "5.1.0", P, R(userunknown)},
    /* Exim */
    {"SMTP error from remote mail server after RCPT TO:<bob@example.org>: 550 relay not "
     "permitted",
     550, NULL, P, R(norelaying)},
    {"SMTP error from remote mail server after MAIL FROM:<alice@example.com> SIZE=1234: 550 "
     "Administrative prohibition",
     550, NULL, P, R(rejected)},
    {"550 rejected because 192.0.2.1 is in a black list at zen.spamhaus.org",
     550, NULL, P, R(blocked)},
    {"550 JunkMail rejected - mail.example.com [192.0.2.1] is in an RBL", 550, NULL, P, R(blocked)},
    {"451 Temporary local problem - please try later", 451, NULL, T, R(systemerror)},
    {"550 Message rejected as spam", 550, NULL, P, R(spamdetected)},
    {"421 Too many concurrent SMTP connections; please try again later",
     421, NULL, T, R(toomanyconn)},
    {"550 Mailbox quota exceeded", 550, NULL, P, R(mailboxfull)},
    {"550 Verification failed for <alice@example.com> Unrouteable address Sender verify failed",
     550, NULL, P, R(rejected)},
    /* Sendmail */
    {"550 5.1.1 <bob@example.org>... User unknown", 550, "5.1.1", P, R(userunknown)},
    {"550 5.7.1 <bob@example.org>... Relaying denied. Proper authentication required.",
     550, "5.7.1", P, R(norelaying)},
    {"553 5.1.8 <alice@example.com>... Domain of sender address alice@nodomain.example does "
     "not exist",
     553, "5.1.8", P, R(rejected)},
    {"... while talking to mx.example.org.: >>> MAIL From:<alice@example.com> SIZE=16600348 "
     "<<< 552 5.2.3 Message size exceeds fixed maximum message size (10485760)",
     552, "5.2.3", P, R(exceedlimit)},
    {"554 5.0.0 Service unavailable", 554, "5.0.0", P, R(systemerror)},
    {"550 5.7.1 Mail from 192.0.2.1 refused - see http://dsbl.org/", 550, "5.7.1", P, R(blocked)},
    {"452 4.4.5 Insufficient disk space; try again later", 452, "4.4.5", T, R(systemfull)},
    {"554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using bl.spamcop.net; "
     "Blocked - see https://www.spamcop.net/bl.shtml?192.0.2.1",
     554, "5.7.1", P, R(blocked)},
    /* content scanners */
    {"550 5.7.1 Virus found in message: Win.Test.EICAR_HDB-1", 550, "5.7.1", P, R(virusdetected)},
    {"554 5.7.1 Message rejected: contains a virus", 554, "5.7.1", P, R(virusdetected)},
    {"550 5.7.1 This message scored 12.3 spam points.", 550, "5.7.1", P, R(spamdetected)},
    /* success and others */
    {"250 2.0.0 Ok: queued as 4ABC123", 250, "2.0.0", S, R(delivered)},
    {"250 ok", 250, NULL, S, R(delivered)},
    {"354 End data with <CR><LF>.<CR><LF>", 354, NULL, REPLY_CLASS_INTERMEDIATE, R(undefined)},
    {"521 5.3.2 example.org does not accept mail", 521, "5.3.2", P, R(notaccept)},
    {"550 5.2.1 The email account that you tried to reach is disabled.",
     550, "5.2.1", P, R(suspend)},
    {"550 5.1.1 <spam@example.org>: Recipient address rejected: User unknown",
     550, "5.1.1", P, R(userunknown)},
};

static void test_real_world(void **state)
{
    (void)state;
    assert_true(sizeof cases / sizeof cases[0] >= 60);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct case_ *c = &cases[i];
        struct reply_explanation ex;
        enum reply_explain_err err = reply_explain(c->input, strlen(c->input), &ex);
        char enh[32] = "";
        if (ex.status.cls)
            snprintf(enh, sizeof enh, "%d.%d.%d", ex.status.cls, ex.status.subject,
                     ex.status.detail);
        if (err != REPLY_EXPLAIN_OK || ex.code != c->code ||
            strcmp(enh, c->enhanced ? c->enhanced : "") != 0 || ex.cls != c->cls ||
            ex.reason != c->reason) {
            print_error("case %zu: %s\n  got err=%d code=%d enhanced=%s class=%s reason=%s "
                        "(matched %s)\n",
                        i, c->input, (int)err, ex.code, enh, reply_class_name(ex.cls),
                        reply_reason_name(ex.reason), ex.pattern ? ex.pattern->phrase : "-");
            fail();
        }
        assert_non_null(ex.meaning);
        assert_non_null(ex.cause);
        assert_non_null(ex.action);
        assert_non_null(ex.retry_when);
        assert_non_null(ex.summary);
        assert_int_equal(ex.retry, c->cls == T);
    }
}

static void expect_error(const char *input, size_t len, enum reply_explain_err want)
{
    struct reply_explanation ex;
    enum reply_explain_err err = reply_explain(input, len, &ex);
    if (err != want) {
        print_error("input '%.*s': got %s, want %s\n", (int)len, input, reply_explain_strerror(err),
                    reply_explain_strerror(want));
        fail();
    }
    assert_int_equal(ex.code, 0);
    assert_null(ex.text);
}

static void expect_error_str(const char *input, enum reply_explain_err want)
{
    expect_error(input, strlen(input), want);
}

static void test_bad_input(void **state)
{
    (void)state;
    expect_error_str("", REPLY_EXPLAIN_EMPTY);
    expect_error(NULL, 0, REPLY_EXPLAIN_EMPTY);
    expect_error_str(" \t\r\n ", REPLY_EXPLAIN_EMPTY);
    expect_error("550\0 5.1.1", 10, REPLY_EXPLAIN_BINARY);
    expect_error("550 \x01\x02 user unknown", 20, REPLY_EXPLAIN_BINARY);
    expect_error("550 \x7f", 5, REPLY_EXPLAIN_BINARY);
    expect_error_str("999", REPLY_EXPLAIN_OUT_OF_RANGE);
    expect_error_str("7.7.7", REPLY_EXPLAIN_OUT_OF_RANGE);
    expect_error_str("600", REPLY_EXPLAIN_OUT_OF_RANGE);
    expect_error_str("199 hello", REPLY_EXPLAIN_OUT_OF_RANGE);
    expect_error_str("  099", REPLY_EXPLAIN_OUT_OF_RANGE);
    expect_error_str("5.9.1", REPLY_EXPLAIN_OUT_OF_RANGE);
    expect_error_str("3.1.1", REPLY_EXPLAIN_OUT_OF_RANGE);
    expect_error_str("999-foo", REPLY_EXPLAIN_OUT_OF_RANGE);
    expect_error_str("hello world", REPLY_EXPLAIN_NO_CODE);
    expect_error_str("5555", REPLY_EXPLAIN_NO_CODE);
    expect_error_str("55", REPLY_EXPLAIN_NO_CODE);
    /* numbers that are no codes: IP addresses, dates, times, ports, sizes, pids, phones */
    expect_error_str("192.0.2.1", REPLY_EXPLAIN_NO_CODE);
    expect_error_str("connect to mx[192.0.2.250]:465: failed", REPLY_EXPLAIN_NO_CODE);
    expect_error_str("2024-01-05 12:00:00 +0000", REPLY_EXPLAIN_NO_CODE);
    expect_error_str("connect to port 465 failed", REPLY_EXPLAIN_NO_CODE);
    expect_error_str("message of 450 bytes", REPLY_EXPLAIN_NO_CODE);
    expect_error_str("size=450 nrcpt=250 (queue active)", REPLY_EXPLAIN_NO_CODE);
    expect_error_str("postfix/smtpd[450]: connect from x", REPLY_EXPLAIN_NO_CODE);
    expect_error_str("call 555-1234", REPLY_EXPLAIN_NO_CODE);
    expect_error_str("version 4.16.55.1", REPLY_EXPLAIN_NO_CODE);
    for (int e = REPLY_EXPLAIN_OK; e <= REPLY_EXPLAIN_OUT_OF_RANGE; e++) {
        const char *t = reply_explain_strerror((enum reply_explain_err)e);
        assert_non_null(t);
        assert_true(strlen(t) > 1);
    }
}

static struct reply_explanation explain_ok(const char *input)
{
    struct reply_explanation ex;
    assert_int_equal(reply_explain(input, strlen(input), &ex), REPLY_EXPLAIN_OK);
    return ex;
}

static void test_bare_codes(void **state)
{
    (void)state;
    struct reply_explanation ex = explain_ok("503");
    assert_int_equal(ex.code, 503);
    assert_int_equal(ex.status.cls, 0);
    assert_int_equal(ex.cls, REPLY_CLASS_PERMANENT);
    assert_non_null(ex.basic);
    assert_int_equal(ex.text_len, 0);

    ex = explain_ok("5.1.1");
    assert_int_equal(ex.code, 0);
    assert_int_equal(ex.status.cls, 5);
    assert_int_equal(ex.status.subject, 1);
    assert_int_equal(ex.status.detail, 1);
    assert_int_equal(ex.reason, REASON_userunknown);
    assert_int_equal(ex.reason_from, REPLY_REASON_FROM_ENHANCED);
    assert_non_null(ex.enhanced);
    assert_false(ex.retry);

    ex = explain_ok("5.1.10");
    assert_int_equal(ex.status.detail, 10);
    assert_int_equal(ex.reason, REASON_notaccept);

    ex = explain_ok("4.4.1");
    assert_int_equal(ex.cls, REPLY_CLASS_TRANSIENT);
    assert_true(ex.retry);

    ex = explain_ok("2.0.0");
    assert_int_equal(ex.cls, REPLY_CLASS_SUCCESS);
    assert_int_equal(ex.reason, REASON_delivered);
    assert_false(ex.retry);

    ex = explain_ok("  421  ");
    assert_int_equal(ex.code, 421);
    assert_true(ex.retry);

    ex = explain_ok("5.7.1.");
    assert_int_equal(ex.status.subject, 7);
}

static void test_class_mismatch_and_notes(void **state)
{
    (void)state;
    struct reply_explanation ex = explain_ok("550 4.2.2 mailbox full");
    assert_int_equal(ex.cls, REPLY_CLASS_PERMANENT); /* the basic code decides */
    assert_false(ex.retry);
    assert_true(ex.notes & (1u << REPLY_NOTE_CLASS_MISMATCH));
    assert_int_equal(ex.reason, REASON_mailboxfull);

    ex = explain_ok("450 5.7.1 client host blocked");
    assert_int_equal(ex.cls, REPLY_CLASS_TRANSIENT);
    assert_true(ex.retry);
    assert_true(ex.notes & (1u << REPLY_NOTE_CLASS_MISMATCH));

    ex = explain_ok("566 odd code");
    assert_true(ex.notes & (1u << REPLY_NOTE_UNKNOWN_CODE));
    assert_null(ex.basic);
    assert_non_null(ex.meaning);

    ex = explain_ok("5.1.99 odd code");
    assert_true(ex.notes & (1u << REPLY_NOTE_UNKNOWN_ENHANCED));
    assert_null(ex.enhanced);

    ex = explain_ok("2.1.1");
    assert_true(ex.notes & (1u << REPLY_NOTE_UNREGISTERED_CLASS));

    ex = explain_ok("550 5.1.1 ok");
    assert_int_equal(ex.notes, 0);

    for (int n = 0; n < REPLY_NOTE__COUNT; n++)
        assert_non_null(reply_explain_note_text((enum reply_note)n));
    assert_null(reply_explain_note_text(REPLY_NOTE__COUNT));
}

/* The first code wins; a code followed by an enhanced code of its class beats a bare one. */
static void test_code_choice(void **state)
{
    (void)state;
    struct reply_explanation ex = explain_ok("host said: 550 User unknown, dsn=5.1.1");
    assert_int_equal(ex.code, 550);
    assert_int_equal(ex.status.subject, 1); /* borrowed from dsn= */

    ex = explain_ok("reply: 421 then 550 5.7.1 blocked");
    assert_int_equal(ex.code, 550);

    ex = explain_ok("552 5.2.3 Message size exceeds fixed maximum message size (10485760) "
                    "554 5.0.0 Service unavailable");
    assert_int_equal(ex.code, 552);

    ex = explain_ok("SMTP error 550 user unknown"); /* prose, used when nothing better */
    assert_int_equal(ex.code, 550);
    assert_int_equal(ex.reason, REASON_userunknown);

    ex = explain_ok("connect to 192.0.2.1 port 25: 421 4.3.2 Service not available");
    assert_int_equal(ex.code, 421);
    assert_int_equal(ex.status.subject, 3);
}

static void test_multiline(void **state)
{
    (void)state;
    static const char in[] = "550-5.1.1 The email account that you tried to reach does not\r\n"
                             "550-5.1.1 exist. Please try double-checking the recipient's\r\n"
                             "550 5.1.1 email address for typos.";
    struct reply_explanation ex = explain_ok(in);
    assert_int_equal(ex.code, 550);
    assert_int_equal(ex.reason, REASON_userunknown);
    assert_string_equal(ex.pattern->phrase, "not exist"); /* across the line break and its prefix */
    char buf[256];
    size_t n = reply_explain_text(&ex, buf, sizeof buf);
    assert_string_equal(buf, "The email account that you tried to reach does not\nexist. "
                             "Please try double-checking the recipient's\nemail address for "
                             "typos.");
    assert_int_equal(n, strlen(buf));

    /* lines joined by a bounce: the prefixes go too */
    ex = explain_ok("said: 552-5.2.2 The email account that you tried to reach is over "
                    "552-5.2.2 quota.");
    assert_int_equal(ex.reason, REASON_mailboxfull);
    reply_explain_text(&ex, buf, sizeof buf);
    assert_string_equal(buf, "The email account that you tried to reach is over quota.");

    /* truncation and an empty buffer */
    assert_int_equal(reply_explain_text(&ex, buf, 4), 3);
    assert_string_equal(buf, "The");
    assert_int_equal(reply_explain_text(&ex, buf, 0), 0);
}

static void test_text_and_command(void **state)
{
    (void)state;
    struct reply_explanation ex = explain_ok(cases[16].input);
    static const char want[] = "<bob@example.org>: Recipient address rejected: User unknown";
    assert_int_equal(ex.text_len, strlen(want));
    assert_memory_equal(ex.text, want, ex.text_len);
    assert_int_equal(ex.command_len, 7);
    assert_memory_equal(ex.command, "RCPT TO", 7);
    assert_memory_equal(cases[16].input + ex.code_offset, "550 5.1.1", 9);

    ex = explain_ok("Remote Server returned '550 5.1.1 RESOLVER.ADR.ExRecipNotFound; not found'");
    assert_memory_equal(ex.text, "RESOLVER.ADR.ExRecipNotFound; not found", ex.text_len);
    assert_null(ex.command);
}

static void test_reason_rules(void **state)
{
    (void)state;
    /* weak phrases refine vague codes only */
    assert_int_equal(explain_ok("552 5.2.3 message too large").reason, REASON_exceedlimit);
    assert_int_equal(explain_ok("550 message too large").reason, REASON_mesgtoobig);
    assert_int_equal(explain_ok("550 5.7.1 message too large").reason, REASON_mesgtoobig);
    assert_int_equal(explain_ok("550 5.2.1 mailbox unavailable").reason, REASON_suspend);
    assert_int_equal(explain_ok("550 5.5.0 mailbox unavailable").reason, REASON_userunknown);
    /* strong phrases beat a specific code */
    struct reply_explanation ex = explain_ok("550 5.1.1 mailbox full");
    assert_int_equal(ex.reason, REASON_mailboxfull);
    assert_int_equal(ex.reason_from, REPLY_REASON_FROM_TEXT);
    /* greylisting is transient only, and brings its own advice */
    ex = explain_ok("450 4.7.1 greylisted, try again in 300 seconds");
    assert_int_equal(ex.reason, REASON_blocked);
    assert_non_null(ex.pattern);
    assert_ptr_equal(ex.cause, ex.pattern->cause);
    assert_ptr_equal(ex.action, ex.pattern->action);
    assert_int_equal(explain_ok("550 greylisted").reason, REASON_undefined);
    /* words inside addresses are no reasons */
    assert_int_equal(explain_ok("550 5.7.1 <spam@example.org>: Sender address rejected").reason,
                     REASON_rejected);
    assert_int_equal(explain_ok("550 5.1.1 user.unknown@example.org").reason, REASON_userunknown);
    assert_null(explain_ok("550 5.1.1 user.unknown@example.org").pattern);
    /* a phrase must stand as words */
    assert_int_equal(explain_ok("550 5.7.1 spamhausexample").reason, REASON_blocked); /* 5.7.1 */
    assert_null(explain_ok("550 5.7.1 antispamhaus").pattern);
    assert_int_equal(explain_ok("451 4.3.0 anti-virus scanner failure").reason, REASON_systemerror);
    /* U+2019 stands for an apostrophe */
    assert_int_equal(explain_ok("554 This user doesn\xe2\x80\x99t have a yahoo.com account").reason,
                     REASON_userunknown);
    /* success ignores the words; intermediate has no reason */
    assert_int_equal(explain_ok("250 2.1.5 user unknown? no: ok").reason, REASON_delivered);
    /* retry advice follows the class and the reason */
    ex = explain_ok("421 4.7.0 too many connections");
    assert_true(ex.retry);
    assert_non_null(strstr(ex.retry_when, "fewer"));
    ex = explain_ok("421 4.7.0 rate limit exceeded");
    assert_non_null(strstr(ex.retry_when, "slower"));
    ex = explain_ok("451 4.3.0 try later");
    assert_non_null(strstr(ex.retry_when, "5 days"));
    ex = explain_ok("550 5.1.1 no");
    assert_non_null(strstr(ex.retry_when, "do not retry"));
    ex = explain_ok("354 go ahead");
    assert_false(ex.retry);
    assert_non_null(strstr(ex.retry_when, "next part"));
}

/* The three replies the hidden sets found explained wrong: each names its own reason, whatever
 * the basic or enhanced code's row says. */
static void test_fixed_replies(void **state)
{
    (void)state;
    struct reply_explanation ex = explain_ok("421 Max message per connection reached, closing "
                                             "transmission channel");
    assert_int_equal(ex.reason, REASON_toomanyconn);
    assert_true(ex.retry);
    ex = explain_ok("450 4.7.3 Organization queue quota exceeded");
    assert_int_equal(ex.reason, REASON_speeding);
    assert_int_equal(ex.reason_from, REPLY_REASON_FROM_TEXT);
    ex = explain_ok("451 4.3.2 Temporary server error. Please try again later ATTR17");
    assert_int_equal(ex.reason, REASON_systemerror);
    assert_true(ex.retry);
    /* the generic rows below them still decide their own cases */
    assert_int_equal(explain_ok("452 4.2.2 Mailbox quota exceeded").reason, REASON_mailboxfull);
    assert_int_equal(explain_ok("421 4.3.2 Service not available").reason, REASON_notaccept);
}

static void test_long_input(void **state)
{
    (void)state;
    size_t n = 1u << 20;
    char *in = malloc(n + 64);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++)
        in[i] = (i % 7 == 6) ? ' ' : 'a';
    static const char tail[] = " said: 550 5.2.2 mailbox full";
    memcpy(in + n, tail, sizeof tail);
    struct reply_explanation ex = explain_ok(in);
    assert_int_equal(ex.code, 550);
    assert_int_equal(ex.reason, REASON_mailboxfull);
    free(in);
}

/* ---- patterns.def ------------------------------------------------------------------------ */

static bool is_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool plain_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr(" '-./:;,|_()[]#", c) != NULL;
}

static void test_pattern_rows_valid(void **state)
{
    (void)state;
    assert_true(reply_pattern_count >= 200);
    for (size_t r = 0; r < reply_pattern_count; r++) {
        const struct reply_pattern *p = &reply_pattern_table[r];
        const char *ph = p->phrase;
        bool ok = p->len == strlen(ph) && p->len >= 3 && (unsigned)p->reason < REASON__COUNT &&
                  (p->flags & ~(REPLY_PAT_WEAK | REPLY_PAT_TEMP | REPLY_PAT_PERM)) == 0 &&
                  is_word_char(ph[0]) && ph[1] != ' ' && ph[1] != '\'' &&
                  ph[p->len - 1] != ' ' && strstr(ph, "  ") == NULL && (!p->cause || p->cause[0]) && (!p->action || p->action[0]);
        for (size_t k = 0; ok && k < p->len; k++)
            ok = plain_char(ph[k]) || (ph[k] == '*' && k == p->len - 1 && k >= 2);
        if (!ok) {
            print_error("patterns.def row %zu \"%s\" is malformed\n", r, ph);
            fail();
        }
    }
}

/* Whenever phrase b matches, does phrase a match too (a inside b at word boundaries)? */
static bool contains_phrase(const char *b, size_t blen, const char *a, size_t alen)
{
    bool a_prefix = a[alen - 1] == '*';
    bool b_prefix = b[blen - 1] == '*';
    if (a_prefix)
        alen--;
    if (b_prefix)
        blen--;
    for (size_t i = 0; i + alen <= blen; i++) {
        if (memcmp(b + i, a, alen) != 0)
            continue;
        if (i > 0 && is_word_char(a[0]) && is_word_char(b[i - 1]))
            continue;
        size_t e = i + alen;
        if (a_prefix || !is_word_char(a[alen - 1]))
            return true;
        if (e < blen ? !is_word_char(b[e]) : !b_prefix)
            return true;
    }
    return false;
}

/* An earlier row that matches wherever a later row matches hides it: the later row could
 * never win. Rows must be ordered specific before generic. */
static void test_no_shadowed_rows(void **state)
{
    (void)state;
    bool bad = false;
    for (size_t b = 0; b < reply_pattern_count; b++) {
        const struct reply_pattern *pb = &reply_pattern_table[b];
        for (size_t a = 0; a < b; a++) {
            const struct reply_pattern *pa = &reply_pattern_table[a];
            bool covers_class = (pa->flags & (REPLY_PAT_TEMP | REPLY_PAT_PERM)) == 0 ||
                                (pa->flags & (REPLY_PAT_TEMP | REPLY_PAT_PERM)) ==
                                    (pb->flags & (REPLY_PAT_TEMP | REPLY_PAT_PERM));
            bool as_strong = !(pa->flags & REPLY_PAT_WEAK) || (pb->flags & REPLY_PAT_WEAK);
            if (covers_class && as_strong &&
                contains_phrase(pb->phrase, pb->len, pa->phrase, pa->len)) {
                print_error("row %zu \"%s\" is hidden by earlier row %zu \"%s\"\n", b,
                            pb->phrase, a, pa->phrase);
                bad = true;
            }
        }
        bool after_weak = b > 0 && (reply_pattern_table[b - 1].flags & REPLY_PAT_WEAK);
        if (after_weak && !(pb->flags & REPLY_PAT_WEAK)) {
            print_error("strong row %zu \"%s\" after a weak row\n", b, pb->phrase);
            bad = true;
        }
    }
    assert_false(bad);
}

static void test_reason_infos(void **state)
{
    (void)state;
    for (int r = 0; r < REASON__COUNT; r++) {
        const struct reply_reason_info *info = reply_reason_info((enum reply_reason)r);
        assert_non_null(info);
        if (!info->summary || !info->cause || !info->action) {
            print_error("reason %s has no REASON_INFO row\n",
                        reply_reason_name((enum reply_reason)r));
            fail();
        }
    }
    assert_null(reply_reason_info(REASON__COUNT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_world),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_bare_codes),
        cmocka_unit_test(test_class_mismatch_and_notes),
        cmocka_unit_test(test_code_choice),
        cmocka_unit_test(test_multiline),
        cmocka_unit_test(test_text_and_command),
        cmocka_unit_test(test_reason_rules),
        cmocka_unit_test(test_fixed_replies),
        cmocka_unit_test(test_long_input),
        cmocka_unit_test(test_pattern_rows_valid),
        cmocka_unit_test(test_no_shadowed_rows),
        cmocka_unit_test(test_reason_infos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
