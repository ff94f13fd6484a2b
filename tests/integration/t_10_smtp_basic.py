"""t_10_smtp_basic — a real SMTP client (smtplib) against `clearmta serve` on the test contract:
byte-exact local delivery behind Return-Path and Received, several recipients, ESMTP options
(SIZE, 8BITMIME, SMTPUTF8, DSN) and the "queued as ID" reply that the log echoes."""
import email.generator
import email.message
import io
import re
import smtplib
import time
import unittest

from harness import (DELIVERY_TIMEOUT, HOSTNAME, MAX_SIZE, ServerTestCase, make_message,
                     queue_id, split_trace_headers)

SENDER = "sender@example.org"


def smtplib_bytes(msg):
    """The bytes smtplib.send_message puts on the wire for msg (before dot-stuffing)."""
    buf = io.BytesIO()
    g = email.generator.BytesGenerator(buf)
    g.flatten(msg, linesep="\r\n")
    data = buf.getvalue()
    return data if data.endswith(b"\r\n") else data + b"\r\n"


class BasicDelivery(ServerTestCase):
    def smtp(self, srv):
        s = smtplib.SMTP("127.0.0.1", srv.mx_port, local_hostname="client.example", timeout=10)
        self.addCleanup(s.close)
        return s

    def test_send_message_delivered_byte_exact(self):
        srv = self.start_server()
        msg = email.message.Message()
        msg["From"] = SENDER
        msg["To"] = "alice@example.test"
        msg["Subject"] = "byte-exact delivery"
        msg["Message-ID"] = "<t10-exact@it.example>"
        msg.set_payload(
            "Line one.\n"
            ".A line that starts with a dot (stuffed on the wire, unstuffed in the mailbox)\n"
            "..Two dots\n"
            ".\n"
            "trailing spaces   \n"
            "\n"
            + "y" * 990 + "\n"
            "last line\n")
        sent = smtplib_bytes(msg)
        with self.smtp(srv) as s:
            refused = s.send_message(msg)
            self.assertEqual(refused, {})
        delivered = srv.wait_mail("alice", 1)
        self.assertEqual(len(delivered), 1)
        return_path, received, rest = split_trace_headers(delivered[0])
        self.assertEqual(return_path, b"Return-Path: <" + SENDER.encode() + b">\r\n")
        self.assertIn(b"from client.example", received)
        self.assertIn(b"[127.0.0.1]", received)
        self.assertIn(b"by " + HOSTNAME.encode(), received)
        self.assertIn(b"for <alice@example.test>", received)
        self.assertEqual(rest, sent)

    def test_many_recipients_each_delivered(self):
        srv = self.start_server()
        body = make_message("t10-many", rcpt="alice@example.test")
        with self.smtp(srv) as s:
            refused = s.sendmail(SENDER, ["alice@example.test", "bob@example.test",
                                          "postmaster@example.test"], body)
            self.assertEqual(refused, {})
        for user in ("alice", "bob", "postmaster"):
            self.assertDelivered(srv, user, body, count=1)

    def test_esmtp_extensions_advertised(self):
        srv = self.start_server()
        with self.smtp(srv) as s:
            code, _ = s.ehlo()
            self.assertEqual(code, 250)
            for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "smtputf8",
                        "dsn"):
                self.assertTrue(s.has_extn(ext), "EHLO lacks " + ext)
            self.assertEqual(s.esmtp_features["size"], str(MAX_SIZE))

    def test_size_and_8bitmime(self):
        srv = self.start_server()
        body = make_message("t10-8bit", extra_body="Grüße, Ça va? 日本語\r\n".encode("utf-8")
                            + b"raw latin-1: \xe9\xe8\r\n")
        with self.smtp(srv) as s:
            s.ehlo()
            code, resp = s.mail(SENDER, ["SIZE=%d" % len(body), "BODY=8BITMIME"])
            self.assertEqual(code, 250, resp)
            self.assertEqual(s.rcpt("alice@example.test")[0], 250)
            code, resp = s.data(body)
            self.assertEqual(code, 250, resp)
        self.assertDelivered(srv, "alice", body)

    def test_smtputf8(self):
        srv = self.start_server()
        with self.smtp(srv) as s:
            s.ehlo()
            code, resp = s.mail("jörg@example.org", ["SMTPUTF8"])
            self.assertEqual(code, 250, resp)
            self.assertTrue(resp.startswith(b"2.1.0"), resp)
            # A UTF-8 local part in a local domain that names no user.
            code, resp = s.rcpt("zoë@example.test")
            self.assertEqual(code, 550, resp)
            self.assertTrue(resp.startswith(b"5.1.1"), resp)
            self.assertIn(b"User unknown", resp)
            code, resp = s.rcpt("alice@example.test")
            self.assertEqual(code, 250, resp)
            body = ("From: <jörg@example.org>\r\nTo: <alice@example.test>\r\n"
                    "Subject: t10-utf8 ✓\r\n\r\nhéllo\r\nEND t10-utf8\r\n").encode("utf-8")
            code, resp = s.data(body)
            self.assertEqual(code, 250, resp)
        msgs = srv.wait_mail("alice", 1)
        return_path, received, rest = split_trace_headers(msgs[0])
        self.assertEqual(return_path, "Return-Path: <jörg@example.org>\r\n".encode("utf-8"))
        self.assertIn(b"UTF8SMTP", received)
        self.assertEqual(rest, body)

    def test_dsn_parameters_accepted(self):
        srv = self.start_server()
        body = make_message("t10-dsn")
        with self.smtp(srv) as s:
            s.ehlo()
            code, resp = s.mail(SENDER, ["RET=HDRS", "ENVID=QQ314159+2Bx"])
            self.assertEqual(code, 250, resp)
            code, resp = s.rcpt("alice@example.test",
                                ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;alice@example.test"])
            self.assertEqual(code, 250, resp)
            code, resp = s.rcpt("bob@example.test", ["NOTIFY=NEVER"])
            self.assertEqual(code, 250, resp)
            code, resp = s.data(body)
            self.assertEqual(code, 250, resp)
        self.assertDelivered(srv, "alice", body)
        self.assertDelivered(srv, "bob", body)

    def test_queued_id_in_reply_and_log(self):
        srv = self.start_server()
        ids = []
        with self.smtp(srv) as s:
            for i in range(2):
                s.ehlo()
                self.assertEqual(s.mail(SENDER)[0], 250)
                self.assertEqual(s.rcpt("alice@example.test")[0], 250)
                started = time.monotonic()
                code, resp = s.data(make_message("t10-id-%d" % i))
                self.assertEqual(code, 250, resp)
                text = resp.decode()
                self.assertTrue(text.startswith("2.0.0 Ok: queued as "), text)
                qid = queue_id(text)
                self.assertIsNotNone(qid, "no 16-hex-digit queue id in %r" % text)
                ids.append(qid)
        self.assertNotEqual(ids[0], ids[1], "two messages got the same queue id")
        msgs = srv.wait_mail("alice", 2)
        self.assertLess(time.monotonic() - started, DELIVERY_TIMEOUT + 1)
        trace_ids = sorted(re.search(rb" id ([0-9A-F]{16})", split_trace_headers(m)[1]).group(1)
                           .decode() for m in msgs)
        self.assertEqual(trace_ids, sorted(ids), "Received headers do not carry the queue ids")
        for qid in ids:
            self.assertIsNotNone(srv.wait_log(r"\b%s: .*from=<%s>" % (qid, re.escape(SENDER))),
                                 "no log line with queue id %s and the sender" % qid)
            self.assertIsNotNone(
                srv.wait_log(r"\b%s: .*to=<alice@example\.test>.*status=sent" % qid),
                "no delivery log line '%s: to=<alice@example.test>, ... status=sent'" % qid)


if __name__ == "__main__":
    unittest.main()
