"""t_118_outside_text — text from outside never reaches the log or a terminal raw, over real
sockets: a remote server whose greeting is a multi-line 554 with a forged log line and terminal
escapes (ESC, BEL, C1) neither forges a log line nor puts an ESC in the log, `queue list` and
`explain --bounce` show such text escaped (`\\xHH`), a multi-line reply one indented line per
line, while `--json` keeps it as received; a client's hostile command line is logged escaped.
And `clearmta sendmail` through the real binary: headerless input stays body, `Bcc :` (space
before the colon, RFC 5322 §4.5) is a recipient and removed, `From :` is seen."""
import json
import os
import re
import subprocess
import unittest

import harness
from harness import BIN, Conn, ServerTestCase, wait_until
from t_30_deliver import DeliverCase
from t_31_mx import DNSServer

FORGED = "2026-12-06T00:00:00.000Z clearmta: FORGED: to=<boss@example.test>, status=sent"
# The greeting of both MX hosts: the test server writes "554-" before all lines but the last.
GREETING = ("554 first line\n554 " + FORGED +
            "\n554 \x1b[31mRED\x1b[0m \x1b]0;owned\x07 \xc2\x9b2J \x9b end")
RECORDS = ("mx-host=evil.test,mx1.evil.test,10\nhost-record=mx1.evil.test,127.0.0.1\n"
           "mx-host=evil.test,mx2.evil.test,20\nhost-record=mx2.evil.test,127.0.0.2\n"
           "host-record=amx.test,127.0.0.1\n")  # amx.test: what DNSServer asks to see it up
LOG_LINE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z clearmta: ")
TERMINAL_CONTROLS = (b"\x1b", b"\x07", b"\x9b", b"\xc2\x9b")


def run(argv, stdin=b""):
    p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr


class OutsideTextCase(ServerTestCase):
    def log_bytes(self, srv):
        with open(srv.log_path, "rb") as f:
            return f.read()

    def assertCleanLog(self, srv):
        """Every line of the log is one event of the server: none forged, no terminal control."""
        log = self.log_bytes(srv)
        for c in TERMINAL_CONTROLS:
            self.assertNotIn(c, log)
        self.assertNotIn(b"\r", log)
        for line in log.splitlines():
            if line.startswith(b"==") or not line.strip():
                continue  # a sanitizer's report is checked by the harness
            self.assertRegex(line, LOG_LINE)
            self.assertFalse(line.startswith(FORGED[:24].encode()), line)

    def assertCleanText(self, out):
        for c in TERMINAL_CONTROLS:
            self.assertNotIn(c, out)

    def explain(self, content, *args):
        """`clearmta explain ARGS FILE` on a file holding content: its output, checked clean."""
        path = os.path.join(self.mkdtemp(), "input")
        with open(path, "wb") as f:
            f.write(content)
        rc, out, err = run([BIN, "explain"] + list(args) + [path])
        self.assertEqual(rc, 0, err)
        self.assertCleanText(out)
        return out


class RemoteReplyTest(OutsideTextCase, DeliverCase):
    def setUp(self):
        self.dns = DNSServer(self.mkdtemp(prefix="dns-test-"))
        with open(self.dns.records, "w") as f:
            f.write(RECORDS)
        self.dns.start()
        self.addCleanup(self.dns.stop)
        script = {"greeting": GREETING}
        self.mx1 = self.start_relay(script)
        self.mx2 = self.start_relay(script, host="127.0.0.2", port=self.mx1.port)
        self.srv = self.start_server(extra_config=[
            "resolver 127.0.0.1:%d" % self.dns.port,
            "route evil.example smtp:evil.test:%d" % self.mx1.port,
            "retry_first 600", "delay_warning 0"])

    def test_forged_reply_in_log_and_queue_list(self):
        srv = self.srv
        rc, _out, err = run([BIN, "sendmail", "-C", srv.conf_path_in_use(), "-f",
                             "alice@example.test", "carol@evil.example"],
                            b"Subject: t118\n\nhello\n")
        self.assertEqual(rc, 0, err)
        self.assertTrue(srv.wait_log(r"trying the next address"), srv.log())
        self.assertTrue(srv.wait_log(r"to=<carol@evil\.example>.*status=deferred"), srv.log())
        self.assertCleanLog(srv)
        log = self.log_bytes(srv)
        # The reply's lines joined by spaces on the one line, its escapes shown as text.
        self.assertIn(b"554 first line " + FORGED.encode() + b" \\x1B[31mRED\\x1B[0m "
                      b"\\x1B]0;owned\\x07 \\xC2\\x9B2J \\x9B end; trying the next address", log)
        self.assertIn(b"status=deferred (554 first line " + FORGED.encode(), log)

        conf = srv.conf_path_in_use()
        rc, out, err = run([BIN, "queue", "-c", conf, "list"])
        self.assertEqual(rc, 0, err)
        self.assertCleanText(out)
        indent = b"\n" + b" " * 18
        self.assertIn(b"      last reply: 554 first line" + indent + FORGED.encode() + indent +
                      b"\\x1B[31mRED\\x1B[0m \\x1B]0;owned\\x07 \\xC2\\x9B2J \\x9B end\n", out)
        # JSON keeps the reply as received, escaped as JSON.
        rc, out, err = run([BIN, "queue", "-c", conf, "list", "--json"])
        self.assertEqual(rc, 0, err)
        self.assertCleanText(out)
        (msg,) = json.loads(out)["messages"]
        (rcpt,) = msg["recipients"]
        self.assertIn("\n" + FORGED + "\n\x1b[31mRED", rcpt["last_reply"])


class ClientTextTest(OutsideTextCase):
    def test_hostile_command_logged_escaped(self):
        """The command line of a refused command is logged with its control bytes escaped."""
        srv = self.start_server()
        c = Conn(srv.mx_port)
        c.expect("220")
        c.ehlo("client.example")
        c.send(b"MAIL FROM:<a\x1b[31m\x07@x\x9b.test>\r\n")
        r = c.reply()
        self.assertGreaterEqual(r.code, 500, r)
        c.cmd("QUIT")
        c.close()
        self.assertTrue(srv.wait_log(r"reject: MAIL FROM:<a\\x1B\[31m\\x07@x\\x9B\.test> from"),
                        srv.log())
        self.assertCleanLog(srv)


BOUNCE = (b"From: MAILER-DAEMON@x.test\r\nTo: alice@example.test\r\nSubject: Undelivered\r\n"
          b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
          b"--B\r\nContent-Type: text/plain\r\n\r\nsorry \x1b]0;pwn\x07 \x1b[2J\r\n"
          b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x.test\r\n\r\n"
          b"Final-Recipient: rfc822; bob\x1b[31m@x.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
          b"Remote-MTA: dns; mx\x07.x.test\r\n"
          b"Diagnostic-Code: smtp; 550 5.1.1 \x1b]0;owned\x07 no such user "
          b"=?utf-8?b?G10wO293bmVkBw==?=\r\n\r\n"
          b"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <m\x1b@x.test>\r\n"
          b"Subject: =?utf-8?b?G10wO293bmVkBw==?= hi \x1b[2J\r\n\r\n--B--\r\n")


POSTFIX_LOG = (b"Dec  6 10:00:00 mail postfix/smtp[123]: 4ABCDEF: to=<bob@x\x1b[31m.test>, "
               b"relay=mx.x.test[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=5.1.1, "
               b"status=bounced (host mx.x.test[192.0.2.1] said: 550 5.1.1 \x1b]0;owned\x07 "
               b"\xc2\x9b2J no such user (in reply to RCPT TO command))\n")

# (input, explain's options, what its text output must hold)
EXPLAIN_CASES = [
    (BOUNCE, ["--bounce"], [b"  Reply:         550 5.1.1 \\x1B]0;owned\\x07 no such user",
                            b"  Remote MTA:    mx\\x07.x.test\n",
                            b"\\x1B[2J\"\n",  # the subject, quoted, ends the Message line
                            b"\\x1B]0;owned\\x07 hi"]),  # its decoded encoded-word
    (POSTFIX_LOG, ["--log"], [b" bob@x\\x1B[31m.test: bounced",
                              b"\\x1B]0;owned\\x07 \\xC2\\x9B2J no such user"]),
    (POSTFIX_LOG, ["--summary", "--log"], [b"1 message to x\\x1B[31m.test bounced"]),
]


class ExplainTest(OutsideTextCase):
    def test_bounce_and_log_text_escaped(self):
        for content, args, wants in EXPLAIN_CASES:
            with self.subTest(args=args):
                out = self.explain(content, *args)
                for want in wants:
                    self.assertIn(want, out)

    def test_bounce_json_as_received(self):
        out = self.explain(BOUNCE, "--json", "--bounce")
        (rec,) = [json.loads(l) for l in out.splitlines()]
        self.assertIn("\x1b]0;owned\x07 no such user", rec["reply"])
        self.assertIn("\x1b]0;owned\x07 hi", rec["subject"])


class SendmailHeaderTest(ServerTestCase):
    def setUp(self):
        self.srv = self.start_server()

    def sendmail(self, args, stdin):
        rc, _out, err = run([BIN, "sendmail", "-C", self.srv.conf_path_in_use()] + args, stdin)
        self.assertEqual(rc, 0, err)

    @staticmethod
    def header_and_body(msg):
        head, sep, body = msg.partition(b"\r\n\r\n")
        return head, body if sep else None

    def test_headerless_input_stays_body(self):
        self.sendmail(["-f", "a@example.org", "alice"], b"just a body line\nsecond\n")
        (msg,) = self.srv.wait_mail("alice", 1)
        head, body = self.header_and_body(msg)
        self.assertIsNotNone(body, msg)
        self.assertNotIn(b"just a body line", head)
        self.assertIn(b"\r\nMessage-ID: <", head)
        self.assertEqual(body, b"just a body line\r\nsecond\r\n")

    def test_mbox_from_line_dropped(self):
        self.sendmail(["-f", "a@example.org", "alice"],
                      b"From a@example.org Sun Dec  6 12:00:00 2026\nSubject: t118 mbox\n\nhi\n")
        (msg,) = self.srv.wait_mail("alice", 1)
        head, body = self.header_and_body(msg)
        self.assertNotIn(b"\nFrom a@example.org Sun", msg)
        self.assertIn(b"\r\nSubject: t118 mbox", head)
        self.assertEqual(body, b"hi\r\n")

    def test_mailq_shows_envelope_safely(self):
        """mailq with the server down prints the maildrop's envelope: a C1 character that a
        local user put in -f is shown escaped."""
        self.finish_server(self.srv)  # stopped, with the harness's checks
        self.sendmail(["-f", b"x\xc2\x9b[2J@example.org", "alice"], b"Subject: t118 mailq\n\nhi\n")
        rc, out, err = run([BIN, "mailq", "-C", self.srv.conf_path_in_use()])
        self.assertEqual(rc, 0, err)
        self.assertIn(b"not running", out)
        self.assertNotIn(b"\xc2\x9b", out)
        self.assertIn(b"from <x\\xC2\\x9B[2J@example.org>", out)

    def test_space_before_colon(self):
        self.sendmail(["-t", "-f", "a@example.org"],
                      b"From : Me <me@example.org>\nTo: alice@example.test\n"
                      b"Bcc : bob@example.test\nSubject: t118 bcc\n\nbody\n")
        (to_alice,) = self.srv.wait_mail("alice", 1)
        (to_bob,) = self.srv.wait_mail("bob", 1)
        for msg in (to_alice, to_bob):
            head, _body = self.header_and_body(msg)
            self.assertNotIn(b"Bcc", head)
            self.assertNotIn(b"bob@example.test", head)
            self.assertEqual(len(re.findall(rb"(?mi)^From[ \t]*:", head)), 1, head)
            self.assertIn(b"\r\nFrom : Me <me@example.org>\r\n", head)


if __name__ == "__main__":
    unittest.main()
