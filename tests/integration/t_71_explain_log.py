"""t_71_explain_log — `clearmta explain --log` on the built binary: delivery lines of Postfix,
Exim, Sendmail, OpenSMTPD, chasquid and clearmta logs, the JSON fields, --summary with the top
problems in words, other lines skipped, and exit 1 for a log without deliveries."""
import json
import os
import subprocess
import tempfile
import unittest

from harness import BIN

LOG = """\
Jan  2 03:04:05 mx postfix/smtp[1234]: 4F1A2B3C4D: to=<bob@example.org>, relay=mx.example.org[192.0.2.1]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=5.1.1, status=bounced (host mx.example.org[192.0.2.1] said: 550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown in local recipient table (in reply to RCPT TO command))
Jan  2 03:04:06 mx postfix/smtp[1234]: 5A1B2C3D4E: to=<carol@example.com>, relay=mx.example.com[192.0.2.2]:25, delay=301, dsn=4.7.1, status=deferred (host mx.example.com[192.0.2.2] said: 450 4.7.1 <carol@example.com>: Recipient address rejected: Greylisted, see http://postgrey.example/ (in reply to RCPT TO command))
Jan  2 03:04:06 mx postfix/smtp[1234]: 5A1B2C3D4F: to=<cathy@example.com>, relay=mx.example.com[192.0.2.2]:25, delay=301, dsn=4.7.1, status=deferred (host mx.example.com[192.0.2.2] said: 450 4.7.1 <cathy@example.com>: Recipient address rejected: Greylisted, see http://postgrey.example/ (in reply to RCPT TO command))
Jan  2 03:04:07 mx postfix/smtp[1234]: 6A1B2C3D4E: to=<dave@example.net>, relay=mx.example.net[192.0.2.3]:25, delay=0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as ABC)
Jan  2 03:04:08 mx postfix/qmgr[99]: 6A1B2C3D4E: removed
2026-01-02 03:04:05 1rABCD-000123-AB ** erin@example.org R=dnslookup T=remote_smtp H=mx.example.org [192.0.2.1]: SMTP error from remote mail server after RCPT TO:<erin@example.org>: 550 5.1.1 User unknown
Jan  2 03:04:05 mx sendmail[777]: x02ABC123456: to=<heidi@example.org>, delay=00:00:01, mailer=esmtp, relay=mx.example.org. [192.0.2.1], dsn=5.1.1, stat=User unknown
Jan  2 03:04:05 mx smtpd[555]: 1a2b3c4d5e6f7a8b mta delivery evpid=1a2b3c4d5e6f7a8b from=<a@example.test> to=<judy@example.org> rcpt=<-> source="192.0.2.9" relay="mx.example.org (192.0.2.1)" delay=1s result="PermFail" stat="550 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org"
2026/01/02 03:04:05 1a2b3c4d from=a@example.test to=kim@example.org failed permanently: 550 5.1.1 no such user
2026-01-02 03:04:05.123 9f8e7d6c: to=<leo@example.org>, relay=mx.example.org, delay=2s, attempt=1, dsn=5.2.2, status=bounced (552 5.2.2 Mailbox full) reason=mailboxfull
"""

FIELDS = ("timestamp", "queue_id", "recipient", "action", "status", "reply_code", "reply",
          "reason", "hardbounce", "remote_mta", "class", "retry", "meaning", "action_advice")


def run(args, data):
    return subprocess.run([BIN, "explain"] + args, input=data.encode(), capture_output=True,
                          timeout=60)


class Log(unittest.TestCase):
    def test_json_per_delivery_line(self):
        p = run(["--log", "-", "--json"], LOG)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = [json.loads(l) for l in p.stdout.decode().splitlines()]
        self.assertEqual(len(rows), 9)
        for r in rows:
            for f in FIELDS:
                self.assertIn(f, r)
        got = [(r["mta"], r["recipient"], r["reason"]) for r in rows]
        self.assertEqual(got, [
            ("postfix", "bob@example.org", "userunknown"),
            ("postfix", "carol@example.com", "blocked"),
            ("postfix", "cathy@example.com", "blocked"),
            ("postfix", "dave@example.net", "delivered"),
            ("exim", "erin@example.org", "userunknown"),
            ("sendmail", "heidi@example.org", "userunknown"),
            ("opensmtpd", "judy@example.org", "blocked"),
            ("chasquid", "kim@example.org", "userunknown"),
            ("clearmta", "leo@example.org", "mailboxfull"),
        ])
        self.assertEqual(rows[0]["queue_id"], "4F1A2B3C4D")
        self.assertEqual(rows[0]["status"], "5.1.1")
        self.assertTrue(rows[0]["hardbounce"])
        self.assertTrue(rows[1]["retry"])

    def test_summary(self):
        with tempfile.NamedTemporaryFile("w", suffix=".log") as f:
            f.write(LOG)
            f.flush()
            p = subprocess.run([BIN, "explain", "--log", f.name, "--summary"],
                               capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertIn("2 messages to example.com deferred (blocked): Greylisting", out)
        self.assertIn("4 messages to example.org bounced (userunknown)", out)
        self.assertIn("The queue retries them.", out)

    def test_no_delivery_line(self):
        p = run(["--log", "-"], "Jan  2 03:04:08 mx postfix/qmgr[99]: 6A1B2C3D4E: removed\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"no delivery line", p.stderr)

    def test_usage(self):
        self.assertEqual(run(["--summary", "550"], "").returncode, 2)
        self.assertEqual(run(["--log", "a", "b"], "").returncode, 2)


if __name__ == "__main__":
    unittest.main()
