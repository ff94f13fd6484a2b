"""t_30_deliver — remote delivery by the agent inside `clearmta serve`: the contract server
with CONTRACT_RELAY (every other domain to a scriptable test SMTP server on loopback) and
CONTRACT_FAST_RETRY (retries after 2 s doubling to 10 s). Happy path byte-exact, 550 bounces
into the sender's Maildir as an RFC 3464 report, 5xx to MAIL or at end of DATA bounces every
recipient, 450, 421, 4xx to MAIL and a dropped connection retried, 452 "too many recipients"
splits, and no bounce ever for the null sender. DeliverCase holds the helpers of t_30 … t_36."""
import email
import email.policy
import os
import sys
import unittest

from harness import (ServerTestCase, auth_server, dot_stuff, free_ports, make_message,
                     message_tag, split_trace_headers, starttls, login, wait_until)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from smtp_test_server import SMTPTestServer  # noqa: E402

RETRY_WAIT = 30.0  # fast retry: 2 s, then 4 s, ... with a spread of 20 %


class DeliverCase(ServerTestCase):
    """Helpers for the delivery tests (t_30 … t_36 import this class; it has no tests)."""

    CHECK_SCHEDULES = True

    def start_relay(self, script=None, host="127.0.0.1", port=None):
        """A scriptable test SMTP server on host:port (None: a free port of this module's port
        slot, see harness.free_ports), stopped at cleanup."""
        rec = os.path.join(self.mkdtemp(prefix="smtp-test-"), "received.jsonl")
        port = free_ports(1)[0] if port is None else port
        relay = SMTPTestServer(script or {}, rec, port=port, host=host).start()
        self.addCleanup(relay.stop)
        return relay

    def start_pair(self, script=None, env=None):
        """The test SMTP server (script) and the contract server relaying to it."""
        relay = self.start_relay(script)
        srv_env = {"CONTRACT_RELAY": "127.0.0.1:%d" % relay.port, "CONTRACT_FAST_RETRY": "1"}
        srv_env.update(env or {})
        srv = self.start_server(env=srv_env)
        return srv, relay

    def submit(self, srv, rcpts, message, sender="alice@example.test", mail_params="",
               rcpt_params=None):
        """Submits message as alice (STARTTLS + AUTH); rcpt_params: {address: "NOTIFY=…"}."""
        c = self.login_submission(srv)
        r = self.transaction(c, sender, rcpts, message, mail_params, rcpt_params)
        c.cmd("QUIT")
        return r

    def login_submission(self, srv):
        """A connection to the submission port, inside TLS, logged in as alice."""
        c = self.connect(srv.sub_port)
        starttls(c)
        login(c)
        return c

    def transaction(self, c, sender, rcpts, message, mail_params="", rcpt_params=None):
        """One accepted transaction on c; returns the final Reply."""
        c.cmd("MAIL FROM:<%s>%s" % (sender, (" " + mail_params) if mail_params else ""))
        c.expect("250 2.1.0")
        for r in rcpts:
            params = (rcpt_params or {}).get(r)
            c.cmd("RCPT TO:<%s>%s" % (r, (" " + params) if params else ""))
            c.expect("250 2.1.5")
        c.cmd("DATA")
        c.expect("354")
        c.send(dot_stuff(message))
        r = c.reply()
        self.assertTrue(r.text.startswith("250"), r.text)
        return r

    def wait_records(self, relay, count, timeout=RETRY_WAIT):
        ok = wait_until(lambda: len(relay.records()) >= count, timeout)
        recs = relay.records()
        self.assertTrue(ok, "test server got %d transaction(s), expected %d" % (len(recs), count))
        return recs

    def wait_queue_empty(self, srv, timeout=RETRY_WAIT):
        self.assertTrue(wait_until(lambda: not srv.queue_files(), timeout),
                        "queue still holds %s" % srv.queue_files())

    def assertRelayed(self, rec, message):
        """The data received is our Received header followed by the message, byte for byte."""
        data = rec["data"].encode("latin-1")
        self.assertTrue(data.startswith(b"Received: "), data[:200])
        _rp, _rcv, rest = split_trace_headers(b"Return-Path: <x>\r\n" + data)
        self.assertEqual(rest, message)

    def wait_reports(self, srv, user="alice", count=1, timeout=RETRY_WAIT):
        """The first count reports (DSNs) in user's Maildir, parsed. A report is made here, not
        received: Return-Path <> and no Received header."""
        out = []
        for raw in srv.wait_mail(user, count, timeout=timeout)[:count]:
            self.assertTrue(raw.startswith(b"Return-Path: <>\r\n"), raw[:100])
            self.assertNotIn(b"\r\nReceived: ", raw.split(b"\r\n\r\n", 1)[0])
            out.append(email.message_from_bytes(raw, policy=email.policy.compat32))
        return out

    def report_parts(self, report):
        """(human text, per-message fields, [per-recipient fields], third part) of an RFC 3464
        report, after checking its MIME structure (RFC 6522)."""
        self.assertEqual(report.get_content_type(), "multipart/report")
        self.assertEqual(report.get_param("report-type"), "delivery-status")
        parts = report.get_payload()
        self.assertIn(len(parts), (2, 3), [p.get_content_type() for p in parts])
        self.assertEqual(parts[0].get_content_type(), "text/plain")
        text = parts[0].get_payload(decode=True).decode("utf-8", "replace")
        self.assertEqual(parts[1].get_content_type(), "message/delivery-status")
        blocks = [dict((k.lower(), v) for k, v in b.items()) for b in parts[1].get_payload()]
        self.assertGreaterEqual(len(blocks), 2, "no per-recipient fields")
        return text, blocks[0], blocks[1:], (parts[2] if len(parts) == 3 else None)

class HappyPath(DeliverCase):
    def test_submitted_mail_reaches_the_remote_server_byte_exact(self):
        srv, relay = self.start_pair()
        msg = make_message("deliver-happy", body_size=3000, extra_body=b".leading dot\r\n")
        self.submit(srv, ["carol@remote.example"], msg)
        rec = self.wait_records(relay, 1)[0]
        self.assertEqual(rec["mail_from"], "alice@example.test")
        self.assertEqual(rec["rcpt_to"], ["carol@remote.example"])
        self.assertRelayed(rec, msg)
        self.assertIsNotNone(srv.wait_log(
            r"to=<carol@remote\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, delay=\d+s, "
            r"attempt=1, dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: queued\) reason=delivered"))
        self.wait_queue_empty(srv)
        self.assertNotIn("commit failed", srv.log())

    def test_local_and_remote_recipients_of_one_message(self):
        srv, relay = self.start_pair()
        msg = make_message("deliver-mixed")
        self.submit(srv, ["bob@example.test", "carol@remote.example"], msg)
        self.assertRelayed(self.wait_records(relay, 1)[0], msg)
        self.assertDelivered(srv, "bob", msg)
        self.wait_queue_empty(srv)

    def test_starttls_is_used_when_offered(self):
        srv, relay = self.start_pair({"starttls": True})
        msg = make_message("deliver-tls")
        self.submit(srv, ["carol@remote.example"], msg)
        rec = self.wait_records(relay, 1)[0]
        self.assertTrue(rec["tls"], "delivered without STARTTLS")
        self.assertRelayed(rec, msg)


class Bounces(DeliverCase):
    def parse_bounce(self, srv):
        return self.wait_reports(srv)[0]

    def test_550_bounces_to_the_sender_and_others_are_delivered(self):
        srv, relay = self.start_pair(
            {"rcpt_by_address": {"nobody@remote.example": "550 5.1.1 No such user here"}})
        msg = make_message("deliver-550")
        self.submit(srv, ["nobody@remote.example", "carol@remote.example"], msg)
        rec = self.wait_records(relay, 1)[0]
        self.assertEqual(rec["rcpt_to"], ["carol@remote.example"])
        bounce = self.parse_bounce(srv)
        self.assertEqual(bounce.get_content_type(), "multipart/report")
        self.assertEqual(bounce.get_param("report-type"), "delivery-status")
        parts = bounce.get_payload()
        self.assertEqual(parts[0].get_content_type(), "text/plain")
        text = parts[0].get_payload(decode=True).decode("utf-8", "replace")
        self.assertIn("nobody@remote.example", text)
        self.assertIn("No such user here", text)
        self.assertEqual(parts[1].get_content_type(), "message/delivery-status")
        fields = "\n".join(str(p) for p in parts[1].get_payload())
        self.assertRegex(fields, r"(?i)Final-Recipient: rfc822;\s*nobody@remote\.example")
        self.assertRegex(fields, r"(?i)Action: failed")
        self.assertRegex(fields, r"(?i)Status: 5\.1\.1")
        self.assertRegex(fields, r"(?i)Diagnostic-Code: smtp;\s*550 5\.1\.1")
        self.assertNotIn("carol@remote.example", fields)
        self.assertIsNotNone(srv.wait_log(r"to=<nobody@remote\.example>, .*dsn=5\.1\.1, "
                                          r"status=bounced \(550 5\.1\.1 No such user here\) "
                                          r"reason=userunknown"))
        self.wait_queue_empty(srv)

    def test_550_on_mail_bounces_every_recipient(self):
        srv, relay = self.start_pair({"mail": "554 5.7.1 Sender refused"})
        self.submit(srv, ["carol@remote.example", "dave@remote.example"], make_message("m554"))
        bounce = self.parse_bounce(srv)
        fields = "\n".join(str(p) for p in bounce.get_payload()[1].get_payload())
        self.assertIn("carol@remote.example", fields)
        self.assertIn("dave@remote.example", fields)
        self.assertEqual(relay.records(), [])

    def test_5xx_at_end_of_data_bounces_every_recipient(self):
        srv, relay = self.start_pair({"data_end": "554 5.6.0 Content rejected"})
        self.submit(srv, ["carol@remote.example", "dave@remote.example"], make_message("d554"))
        _text, _msg, rcpts, _orig = self.report_parts(self.parse_bounce(srv))
        self.assertEqual(sorted(f["final-recipient"] for f in rcpts),
                         ["rfc822; carol@remote.example", "rfc822; dave@remote.example"])
        self.assertEqual({f["status"] for f in rcpts}, {"5.6.0"})
        self.assertEqual(len(relay.records()), 1, "a 5xx must not be retried")
        self.wait_queue_empty(srv)

    def test_the_null_sender_never_gets_a_bounce(self):
        srv, relay = self.start_pair(
            {"rcpt_by_address": {"nobody@remote.example": "550 5.1.1 No such user"}})
        self.submit(srv, ["nobody@remote.example"], make_message("deliver-null"), sender="")
        self.assertIsNotNone(srv.wait_log(r"sender is <>: no bounce", timeout=RETRY_WAIT))
        self.wait_queue_empty(srv)
        self.assertEqual(srv.maildir_files("alice"), [])
        self.assertNotRegex(srv.log(), r"from=<>, bounce queued")


class Retries(DeliverCase):
    def test_450_then_250_is_delivered_on_retry(self):
        srv, relay = self.start_pair({"sessions": [{"rcpt": "450 4.2.1 Mailbox busy"}, {}]})
        msg = make_message("deliver-450")
        self.submit(srv, ["carol@remote.example"], msg)
        self.assertIsNotNone(srv.wait_log(r"to=<carol@remote\.example>, .*attempt=1, dsn=4\.2\.1, "
                                          r"status=deferred \(450 4\.2\.1 Mailbox busy\)"))
        self.assertRelayed(self.wait_records(relay, 1)[0], msg)
        self.assertIsNotNone(srv.wait_log(r"attempt=2, dsn=2\.0\.0, status=sent"))
        self.wait_queue_empty(srv)
        self.assertEqual(srv.maildir_files("alice"), [], "a deferral must not bounce")

    def test_421_defers_and_the_retry_delivers(self):
        srv, relay = self.start_pair({"sessions": [{"mail": "421 4.7.0 Too busy, go away"}, {}]})
        msg = make_message("deliver-421")
        self.submit(srv, ["carol@remote.example"], msg)
        self.assertIsNotNone(srv.wait_log(r"to=<carol@remote\.example>, .*attempt=1, .*"
                                          r"status=deferred \(421 4\.7\.0 Too busy"))
        self.assertRelayed(self.wait_records(relay, 1)[0], msg)
        self.wait_queue_empty(srv)

    def test_4xx_to_mail_defers_and_the_retry_delivers(self):
        srv, relay = self.start_pair({"sessions": [{"mail": "451 4.3.2 Not accepting now"}, {}]})
        msg = make_message("deliver-mail451")
        self.submit(srv, ["carol@remote.example", "dave@remote.example"], msg)
        self.assertIsNotNone(srv.wait_log(r"to=<dave@remote\.example>, .*attempt=1, "
                                          r"dsn=4\.3\.2, status=deferred"))
        rec = self.wait_records(relay, 1)[0]
        self.assertEqual(sorted(rec["rcpt_to"]), ["carol@remote.example", "dave@remote.example"])
        self.assertRelayed(rec, msg)
        self.wait_queue_empty(srv)

    def test_connection_dropped_during_data_is_retried(self):
        srv, relay = self.start_pair({"sessions": [{"data": "close"}, {}]})
        msg = make_message("deliver-drop")
        self.submit(srv, ["carol@remote.example"], msg)
        self.assertIsNotNone(srv.wait_log(r"to=<carol@remote\.example>, .*attempt=1, .*"
                                          r"status=deferred"))
        self.assertRelayed(self.wait_records(relay, 1)[0], msg)
        self.wait_queue_empty(srv)
        self.assertEqual(srv.maildir_files("alice"), [], "a dropped connection must not bounce")

    def test_452_after_two_recipients_splits_into_transactions(self):
        srv, relay = self.start_pair({"rcpt_max": 2})
        rcpts = ["r%d@remote.example" % i for i in range(5)]
        msg = make_message("deliver-452")
        self.submit(srv, rcpts, msg)
        recs = self.wait_records(relay, 3)
        got = [r for rec in recs for r in rec["rcpt_to"]]
        self.assertEqual(sorted(got), sorted(rcpts))
        self.assertEqual([len(rec["rcpt_to"]) for rec in recs], [2, 2, 1])
        self.assertEqual({rec["session"] for rec in recs}, {0}, "one connection")
        for rec in recs:
            self.assertRelayed(rec, msg)
        self.wait_queue_empty(srv)
        self.assertNotRegex(srv.log(), r"status=deferred")

    def test_connection_refused_defers(self):
        srv, relay = self.start_pair()
        relay.stop()
        self.submit(srv, ["carol@remote.example"], make_message("deliver-refused"))
        self.assertIsNotNone(srv.wait_log(r"to=<carol@remote\.example>, .*dsn=4\.4\.1, "
                                          r"status=deferred \(connect to .*refused"))
        self.assertTrue(srv.queue_files(), "the message must stay queued")

    def test_queued_remote_mail_is_delivered_after_a_restart(self):
        srv, relay = self.start_pair({"sessions": [{"rcpt": "451 4.3.0 Later"}, {}]})
        msg = make_message("deliver-restart")
        self.submit(srv, ["carol@remote.example"], msg)
        self.assertIsNotNone(srv.wait_log(r"status=deferred \(451"))
        self.finish_server(srv)
        self.restart_server(srv)
        self.assertRelayed(self.wait_records(relay, 1)[0], msg)
        self.wait_queue_empty(srv)


class QueueDrain(DeliverCase):
    def test_a_full_queue_drains_without_waiting_for_retries(self):
        # After an outage of the relay, the whole queue goes as soon as it is back: messages
        # beyond the destination's connections wait for one, not for the retry schedule
        # (retry_first is 300 s here). 300: more than the agent keeps waiting in memory.
        port = free_ports(1)[0]  # the relay is down while the messages come in
        srv = auth_server(self, extra_config=["relayhost [127.0.0.1]:%d" % port])
        tags = ["drain-%d" % i for i in range(300)]
        c = self.login_submission(srv)
        for tag in tags:
            self.transaction(c, "alice@example.test", ["carol@remote.example"],
                             make_message(tag))
        c.cmd("QUIT")
        self.assertTrue(wait_until(lambda: srv.log().count("status=deferred") >= len(tags), 60))
        self.finish_server(srv)
        relay = self.start_relay(port=port)
        self.restart_server(srv)
        recs = self.wait_records(relay, len(tags), timeout=60)
        got = sorted(message_tag(r["data"].encode("latin-1")) for r in recs)
        self.assertEqual(got, sorted(tags))
        self.wait_queue_empty(srv)


if __name__ == "__main__":
    unittest.main()
