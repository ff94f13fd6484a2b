"""t_36_bounces — what a bounce says and to whom (RFC 3464, RFC 3461, RFC 6522, RFC 3834): sent
from <>, multipart/report with report-type=delivery-status, a human part that explains in the
reply table's plain words (the same as `clearmta explain`) and quotes the remote reply, the
per-message and per-recipient fields (ENVID echoed, Original-Recipient from ORCPT, Remote-MTA,
Diagnostic-Code), the original headers for RET=HDRS or the whole message for RET=FULL; no
report for NOTIFY=NEVER; none ever for mail from <> (t_30). NOTIFY=SUCCESS (RFC 3461 §5.2.2,
§6.2): a relay without DSN → one "relayed" report from us; a relay with DSN → NOTIFY passed on
and no report; a local delivery → a "delivered" report."""
import json
import subprocess
import time
import unittest

from harness import BIN, make_message
from t_30_deliver import DeliverCase

BAD = "nobody@remote.example"
REFUSAL = "550 5.1.1 No such user here"


def explain(reply):
    """`clearmta explain --json reply`: the reply table's plain words for it."""
    out = subprocess.run([BIN, "explain", "--json", reply], stdout=subprocess.PIPE, check=True,
                         timeout=30).stdout
    return json.loads(out)


def words(text):
    """text with every run of white space as one space (the report wraps its lines)."""
    return " ".join(text.split())


class BounceCase(DeliverCase):
    def bounce_for(self, tag, mail_params="", rcpt_params=None, others=("carol@remote.example",)):
        """Submits a message to BAD (refused with REFUSAL) and others (accepted); returns the
        message and the parsed report alice gets."""
        srv, relay = self.start_pair({"rcpt_by_address": {BAD: REFUSAL}})
        msg = make_message(tag, body_size=2000)
        self.submit(srv, [BAD] + list(others), msg, mail_params=mail_params,
                    rcpt_params={BAD: rcpt_params} if rcpt_params else None)
        report = self.wait_reports(srv)[0]
        self.wait_queue_empty(srv)
        self.assertEqual(len(srv.maildir_files("alice")), 1, "one report per failure")
        return srv, relay, msg, report


class Structure(BounceCase):
    def test_report_fields_and_plain_words(self):
        _srv, _relay, _msg, report = self.bounce_for(
            "bounce-fields", mail_params="RET=HDRS ENVID=env-id-42",
            rcpt_params="NOTIFY=FAILURE ORCPT=rfc822;Nobody+40remote.example")
        self.assertIn("alice@example.test", report["To"])
        self.assertTrue(report["From"], "no From header")
        self.assertEqual(report["Auto-Submitted"], "auto-replied")  # RFC 3834 §5
        self.assertTrue(report["Subject"])
        text, msg_fields, rcpts, original = self.report_parts(report)

        # The human part: the address, the table's meaning and advice, the remote reply.
        flat = words(text)
        x = explain(REFUSAL)
        self.assertIn(BAD, flat)
        self.assertIn(words(x["meaning"]), flat)
        self.assertIn(words(x["action"]), flat)
        self.assertIn(REFUSAL, flat)
        self.assertNotIn("carol@remote.example", text, "a delivered recipient is not reported")

        # Per-message fields (RFC 3464 §2.2).
        self.assertEqual(msg_fields.get("reporting-mta"), "dns; mx.example.test")
        self.assertEqual(msg_fields.get("original-envelope-id"), "env-id-42")
        self.assertTrue(msg_fields.get("arrival-date"), msg_fields)

        # Per-recipient fields (RFC 3464 §2.3).
        self.assertEqual(len(rcpts), 1, rcpts)
        f = rcpts[0]
        self.assertRegex(f.get("original-recipient", ""),
                         r"^rfc822;\s*Nobody(@|\+40)remote\.example$")
        self.assertRegex(f.get("final-recipient", ""), r"^rfc822;\s*nobody@remote\.example$")
        self.assertEqual(f.get("action"), "failed")
        self.assertEqual(f.get("status"), "5.1.1")
        self.assertEqual(f.get("diagnostic-code"), "smtp; " + REFUSAL)
        self.assertTrue(f.get("last-attempt-date"), f)
        # The reply came from the relay: it is named (RFC 3464 §2.3.5).
        self.assertRegex(f.get("remote-mta", ""), r"^dns;\s*\[?127\.0\.0\.1\b", f)

        # RET=HDRS: the original header only (RFC 3461 §4.3, RFC 6522 §3).
        self.assertIsNotNone(original, "no third part")
        self.assertEqual(original.get_content_type(), "text/rfc822-headers")
        headers = original.get_payload(decode=True)
        self.assertIn(b"Subject: bounce-fields", headers)
        self.assertNotIn(b"first line of bounce-fields", headers)

    def test_ret_full_returns_the_whole_message(self):
        _srv, _relay, _msg, report = self.bounce_for("bounce-full", mail_params="RET=FULL")
        _text, _msg_fields, _rcpts, original = self.report_parts(report)
        self.assertIsNotNone(original, "no third part")
        self.assertEqual(original.get_content_type(), "message/rfc822")
        inner = original.get_payload()[0].as_bytes()
        self.assertIn(b"Subject: bounce-full", inner)
        self.assertIn(b"END bounce-full", inner, "the body was not returned whole")


class Notify(BounceCase):
    def test_notify_never_sends_no_report(self):
        srv, relay = self.start_pair({"rcpt_by_address": {BAD: REFUSAL}})
        self.submit(srv, [BAD, "carol@remote.example"], make_message("notify-never"),
                    rcpt_params={BAD: "NOTIFY=NEVER"})
        self.assertIsNotNone(srv.wait_log(r"to=<nobody@remote\.example>, .*dsn=5\.1\.1, "
                                          r"status=bounced"))
        self.wait_records(relay, 1)
        self.wait_queue_empty(srv)
        time.sleep(1)  # a report would be queued and delivered locally within this
        self.assertEqual(srv.maildir_files("alice"), [], "NOTIFY=NEVER got a report")

    def test_notify_success_only_gets_no_failure_report(self):
        srv, _relay = self.start_pair({"rcpt_by_address": {BAD: REFUSAL}})
        self.submit(srv, [BAD], make_message("notify-success"),
                    rcpt_params={BAD: "NOTIFY=SUCCESS"})
        self.assertIsNotNone(srv.wait_log(r"to=<nobody@remote\.example>, .*status=bounced"))
        self.wait_queue_empty(srv)
        time.sleep(1)
        self.assertEqual(srv.maildir_files("alice"), [], "NOTIFY=SUCCESS got a failure report")


class Success(DeliverCase):
    """NOTIFY=SUCCESS: who reports the success, and what the report says."""

    def success_report(self, srv, count):
        """The one report alice gets, checked: from <>, nothing failed, count recipients."""
        report = self.wait_reports(srv)[0]
        self.wait_queue_empty(srv)
        time.sleep(1)  # a second report would be delivered locally within this
        self.assertEqual(len(srv.maildir_files("alice")), 1, "one report per message")
        text, msg_fields, rcpts, original = self.report_parts(report)
        self.assertEqual(len(rcpts), count, rcpts)
        self.assertEqual(msg_fields.get("reporting-mta"), "dns; mx.example.test")
        if original is not None:  # a success never returns the whole message
            self.assertEqual(original.get_content_type(), "text/rfc822-headers")
        return text, msg_fields, rcpts

    def test_relay_without_dsn_gets_one_relayed_report(self):
        srv, relay = self.start_pair()
        to = ["carol@remote.example", "dave@remote.example"]
        self.submit(srv, to, make_message("success-relayed"), mail_params="ENVID=env-ok-1",
                    rcpt_params={a: "NOTIFY=SUCCESS,FAILURE" for a in to})
        rec = self.wait_records(relay, 1)[0]
        for a in to:  # the peer offered no DSN: nothing to pass on
            self.assertNotIn("NOTIFY", rec["rcpt_params"].get(a, ""), rec["rcpt_params"])
        _text, msg_fields, rcpts = self.success_report(srv, 2)
        self.assertEqual(msg_fields.get("original-envelope-id"), "env-ok-1")
        self.assertEqual(sorted(f.get("final-recipient", "").split(";")[-1].strip()
                                for f in rcpts), to)
        for f in rcpts:
            self.assertEqual(f.get("action"), "relayed")
            self.assertEqual(f.get("status"), "2.0.0")
            self.assertEqual(f.get("diagnostic-code"), "smtp; 250 2.0.0 Ok: queued")
            self.assertRegex(f.get("remote-mta", ""), r"^dns;\s*\[?127\.0\.0\.1\b", f)

    def test_relay_with_dsn_takes_notify_over(self):
        srv, relay = self.start_pair({"dsn": True})
        to = "carol@remote.example"
        self.submit(srv, [to], make_message("success-passed-on"),
                    rcpt_params={to: "NOTIFY=SUCCESS"})
        rec = self.wait_records(relay, 1)[0]
        self.assertIn("NOTIFY=SUCCESS", rec["rcpt_params"].get(to, ""), rec["rcpt_params"])
        self.wait_queue_empty(srv)
        time.sleep(1)
        self.assertEqual(srv.maildir_files("alice"), [], "the relay reports, not us")

    def test_no_notify_gets_no_success_report(self):
        srv, relay = self.start_pair()
        self.submit(srv, ["carol@remote.example", "bob@example.test"],
                    make_message("success-unasked"))
        self.wait_records(relay, 1)
        srv.wait_mail("bob", 1)
        self.wait_queue_empty(srv)
        time.sleep(1)
        self.assertEqual(srv.maildir_files("alice"), [], "a report nobody asked for")

    def test_local_delivery_gets_a_delivered_report(self):
        srv, _relay = self.start_pair()
        self.submit(srv, ["bob@example.test"], make_message("success-local"),
                    rcpt_params={"bob@example.test": "NOTIFY=SUCCESS"})
        srv.wait_mail("bob", 1)
        _text, _msg_fields, rcpts = self.success_report(srv, 1)
        self.assertRegex(rcpts[0].get("final-recipient", ""), r"^rfc822;\s*bob@example\.test$")
        self.assertEqual(rcpts[0].get("action"), "delivered")
        self.assertEqual(rcpts[0].get("status"), "2.0.0")


if __name__ == "__main__":
    unittest.main()
