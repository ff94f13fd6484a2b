"""t_66_receipt_spf — SPF on receipt over the wire (RFC 7208 §8, RFC 7372): spf_check off, tag
and reject against the real server, its DNS from the test DNS server. reject: fail gives
550 5.7.23, a DNS timeout 451 4.7.24 (and another session goes on meanwhile), permerror and
softfail are accepted and tagged; a null MAIL FROM checks the HELO name; the listener option
overrides the global directive; an authenticated submission session is never checked;
check-config knows the directives and refuses the option on a submission listener. Hostile
DNS and local parts: an SPF TXT of 8 KB (over TCP after a truncated UDP answer) among 40 TXT
records (longer than the 4 KB a record is kept to: temperror, never the record evaluated cut),
a CNAME loop for SPF and DMARC, an include that never answers, %{l} macros that expand a
64-octet local part past 253 octets: each session ends in bounded time with a well-formed
result and the server keeps running."""
import os
import re
import smtplib
import ssl
import subprocess
import threading
import time
import unittest

from authdns import TestDNS
from harness import BIN, HOSTNAME, ServerTestCase, free_ports

HUGE_SPF = "v=spf1 " + " ".join("ip4:192.0.2.%d" % (i % 250) for i in range(600)) + " -all"
ZONE = {
    "pass.example": [{"TXT": "v=spf1 ip4:127.0.0.1 -all"}],
    "fail.example": [{"TXT": "v=spf1 -all"}],
    "soft.example": [{"TXT": "v=spf1 ~all"}],
    "perm.example": [{"TXT": "v=spf1 include:nowhere.example -all"}],
    "slow.example": ["TIMEOUT"],
    "helo-fail.example": [{"TXT": "v=spf1 -all"}],
    "huge.example": [{"TXT": [HUGE_SPF[i:i + 255] for i in range(0, len(HUGE_SPF), 255)]}] +
                    [{"TXT": "filler record %d %s" % (i, "x" * 200)} for i in range(40)],
    "loop.example": [{"CNAME": "loop2.example"}],
    "loop2.example": [{"CNAME": "loop.example"}],
    "_dmarc.loop.example": [{"CNAME": "_dmarc.loop2.example"}],
    "_dmarc.loop2.example": [{"CNAME": "_dmarc.loop.example"}],
    "slow-include.example": [{"TXT": "v=spf1 include:slow.example -all"}],
    "macro.example": [{"TXT": "v=spf1 exists:%{l}.%{l}.%{l}.%{l}.%{l}.%{d} "
                              "a:%{l1r-}.%{lr+}.%{d} -all"}],
}
LOCAL = "a-" + "b.c+" * 15 + "dd"  # 64 octets of dots, dashes and plus signs


def message(sender, tag):
    return ("From: <%s>\r\nTo: <alice@example.test>\r\nSubject: %s\r\n"
            "Message-ID: <%s@test>\r\n\r\nbody of %s\r\n" % (sender, tag, tag, tag)).encode()


class ReceiptSpf(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = TestDNS(ZONE)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def server(self, *lines, port=None):
        extra = ["resolver %s" % self.dns.resolver] + list(lines)
        return self.start_server(extra_config=extra)

    def mail_reply(self, port, sender, helo="client.example"):
        """The reply to MAIL FROM:<sender> on a fresh session (then QUIT)."""
        with smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=30) as s:
            s.ehlo()
            return s.mail(sender)

    def send(self, port, sender, tag, helo="client.example"):
        with smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=30) as s:
            s.sendmail(sender, ["alice@example.test"], message(sender or "x@" + helo, tag))

    def delivered(self, srv, tag, count=1):
        msgs = srv.wait_mail("alice", count)
        mine = [m for m in msgs if ("Subject: %s\r\n" % tag).encode() in m]
        self.assertEqual(len(mine), 1, msgs)
        return mine[0].decode()

    def results(self, msg):
        return re.findall(r"^Authentication-Results:.*(?:\r?\n[ \t].*)*", msg, re.M)

    def test_hostile_answers_and_local_parts(self):
        srv = self.server("spf_check tag", "dmarc_check tag")
        cases = [("x@huge.example", "huge", "spf=temperror"), ("x@loop.example", "loop", "spf="),
                 ("x@slow-include.example", "slow", "spf=temperror"),
                 ("%s@macro.example" % LOCAL, "macro", "spf=")]
        for n, (sender, tag, result) in enumerate(cases, 1):
            with self.subTest(sender=sender):
                started = time.monotonic()
                self.send(srv.mx_port, sender, tag)
                self.assertLess(time.monotonic() - started, 30)
                self.assertTrue(srv.running(), srv.log())
                ar = self.results(self.delivered(srv, tag, n))
                self.assertEqual(len(ar), 1, ar)
                self.assertIn(result, ar[0])
                self.assertNotRegex(ar[0], r"[^\x20-\x7e\r\n\t]")

    def test_off_by_default_adds_nothing(self):
        srv = self.server()
        self.send(srv.mx_port, "x@fail.example", "off")
        msg = self.delivered(srv, "off")
        self.assertEqual(self.results(msg), [])
        self.assertNotIn("receipt:", srv.log())

    def test_tag_accepts_and_records(self):
        srv = self.server("spf_check tag")
        self.send(srv.mx_port, "x@fail.example", "tag")
        msg = self.delivered(srv, "tag")
        ar = self.results(msg)
        self.assertEqual(len(ar), 1, msg)
        self.assertTrue(ar[0].startswith("Authentication-Results: %s;" % HOSTNAME), ar)
        self.assertIn("spf=fail smtp.mailfrom=fail.example", ar[0])
        self.assertNotIn("dkim=", ar[0])  # dmarc_check off: SPF only
        # and in the log line of the message
        self.assertRegex(srv.log(), r"client=\[127\.0\.0\.1\].*auth=\(%s; spf=fail"
                         % re.escape(HOSTNAME))

    def test_reject_modes(self):
        srv = self.server("spf_check reject")
        code, text = self.mail_reply(srv.mx_port, "x@fail.example")
        self.assertEqual(code, 550)
        self.assertEqual(text.decode(), "5.7.23 SPF validation failed: fail.example does not "
                         "authorize this client to send its mail; the owner of that domain "
                         "must add the sending server to its SPF record")
        self.assertEqual(self.mail_reply(srv.mx_port, "x@pass.example")[0], 250)
        # permerror (a broken record) and softfail: accepted, tagged
        self.send(srv.mx_port, "x@perm.example", "perm")
        self.assertIn("spf=permerror smtp.mailfrom=perm.example",
                      self.results(self.delivered(srv, "perm"))[0])
        self.send(srv.mx_port, "x@soft.example", "soft")
        self.assertIn("spf=softfail", self.results(self.delivered(srv, "soft", 2))[0])
        # <>: the HELO identity (RFC 7208 §2.3)
        code, text = self.mail_reply(srv.mx_port, "", helo="helo-fail.example")
        self.assertEqual((code, text.decode()[:6]), (550, "5.7.23"))
        self.send(srv.mx_port, "", "null", helo="pass.example")
        self.assertIn("spf=pass smtp.helo=pass.example",
                      self.results(self.delivered(srv, "null", 3))[0])

    def test_dns_timeout_is_451_and_stalls_no_one(self):
        srv = self.server("spf_check reject")
        out = {}

        def slow():
            t0 = time.monotonic()
            out["reply"] = self.mail_reply(srv.mx_port, "x@slow.example")
            out["seconds"] = time.monotonic() - t0
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        self.send(srv.mx_port, "x@pass.example", "meanwhile")
        self.delivered(srv, "meanwhile")
        self.assertTrue(t.is_alive(), "the slow check ended before the other session")
        self.assertLess(time.monotonic() - t0, 5)
        t.join(40)
        code, text = out["reply"]
        self.assertEqual(code, 451)
        self.assertTrue(text.decode().startswith("4.7.24 SPF validation error: the SPF check "
                                                 "of slow.example could not be completed"), text)
        self.assertGreater(out["seconds"], 3)

    def test_listener_option_overrides(self):
        strict = free_ports(1)[0]
        srv = self.server("listen mx 127.0.0.1:%d spf_check=reject" % strict)
        self.assertEqual(self.mail_reply(srv.mx_port, "x@fail.example")[0], 250)
        self.assertEqual(self.mail_reply(strict, "x@fail.example")[0], 550)

    def test_authenticated_submission_is_not_checked(self):
        d = self.mkdtemp()
        users = os.path.join(d, "users")
        pw = subprocess.run(["openssl", "passwd", "-6", "alice-secret"], check=True,
                            capture_output=True, timeout=30).stdout.decode().strip()
        with open(users, "w") as f:
            f.write("alice:%s\n" % pw)
        os.chmod(users, 0o600)
        srv = self.server("spf_check reject", "dmarc_check enforce", "users_file %s" % users,
                          "sender_ownership no")
        with smtplib.SMTP("127.0.0.1", srv.sub_port, timeout=30) as s:
            s.starttls(context=ssl._create_unverified_context())
            s.ehlo()
            s.login("alice", "alice-secret")
            s.sendmail("x@fail.example", ["alice@example.test"], message("x@fail.example", "sub"))
        msg = self.delivered(srv, "sub")
        self.assertEqual(self.results(msg), [])
        self.assertNotIn("receipt: [", srv.log())

    def test_check_config(self):
        d = self.mkdtemp()
        path = os.path.join(d, "c.conf")
        with open(path, "w") as f:
            f.write("listen mx 127.0.0.1:2525 spf_check=reject dmarc_check=tag\n"
                    "spf_check tag\ndmarc_check enforce\n")
        r = subprocess.run([BIN, "check-config", "-c", path], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        for bad, words in (("listen submission 127.0.0.1:2587 spf_check=reject\n", "mx listeners"),
                           ("spf_check enforce\n", "spf_check takes off, tag or reject"),
                           ("dmarc_check reject\n", "dmarc_check takes off, tag or enforce"),
                           ("listen mx 127.0.0.1:2525 dmarc_check=maybe\n", "dmarc_check=")):
            with open(path, "w") as f:
                f.write(bad)
            r = subprocess.run([BIN, "check-config", "-c", path], capture_output=True,
                               timeout=30)
            self.assertNotEqual(r.returncode, 0, bad)
            self.assertIn(words, (r.stdout + r.stderr).decode(), bad)


if __name__ == "__main__":
    unittest.main()
