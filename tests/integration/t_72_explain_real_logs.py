"""t_72_explain_real_logs — `clearmta explain --log` on lines the real MTAs wrote: a private
Postfix and a private OpenSMTPD relaying to tests/smtp_test_server.py, which accepted one
recipient, greylisted one, refused one at RCPT TO and one after DATA (the fixtures in
tests/integration/mta_logs/, made by `sudo python3 tests/mta_logs.py`). Each delivery line
gives its recipient, outcome, status, reason, queue id and the reply as the MTA quoted it."""
import json
import os
import subprocess
import unittest

from harness import BIN

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "mta_logs")

# recipient → (outcome, status, reason, reply starts with)
WANT = {
    "bob@example.org": ("delivered", "2.0.0", "delivered", "250 2.0.0 Ok"),
    "grey@example.org": ("deferred", "4.7.1", "blocked", "450 4.7.1"),
    "nobody@example.org": ("bounced", "5.1.1", "userunknown", "550 5.1.1"),
    "spam@example.net": ("bounced", "5.7.1", "spamdetected", "554 5.7.1"),
}


def explain(path, *args):
    p = subprocess.run([BIN, "explain", "--log", path, "--json"] + list(args),
                       capture_output=True, timeout=60)
    return p, [json.loads(l) for l in p.stdout.decode().splitlines()]


class RealLogs(unittest.TestCase):
    def check(self, mta):
        path = os.path.join(FIXTURES, mta + ".log")
        p, rows = explain(path)
        self.assertEqual(p.returncode, 0, p.stderr)
        # every line of the fixture is a delivery line the MTA wrote
        with open(path) as f:
            self.assertEqual(len(rows), len(f.read().splitlines()))
        by_rcpt = {r["recipient"]: r for r in rows}
        for rcpt, (outcome, status, reason, reply) in WANT.items():
            r = by_rcpt[rcpt]
            self.assertEqual((r["mta"], r["outcome"], r["status"], r["reason"]),
                             (mta, outcome, status, reason), rcpt)
            self.assertTrue(r["reply"].startswith(reply), r["reply"])
            self.assertTrue(r["queue_id"], rcpt)
            self.assertEqual(r["hardbounce"], reason == "userunknown", rcpt)
            self.assertEqual(r["retry"], outcome == "deferred", rcpt)
            self.assertNotIn("(in reply to", r["reply"])
        return rows

    def test_postfix(self):
        rows = self.check("postfix")
        self.assertTrue(all(r["timestamp"] for r in rows))
        # the bounces to the sender, delivered by Postfix's own virtual(8)
        local = [r for r in rows if r["recipient"] == "alice@example.test"]
        self.assertTrue(all(r["outcome"] == "delivered" for r in local))

    def test_opensmtpd(self):
        rows = self.check("opensmtpd")
        self.assertTrue(all(r["remote_mta"].startswith("127.0.0.1") for r in rows))

    def test_summary_in_words(self):
        p = subprocess.run([BIN, "explain", "--log", os.path.join(FIXTURES, "postfix.log"),
                            "--summary"], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertIn("1 message to example.org deferred (blocked): Greylisting", out)
        self.assertIn("1 message to example.org bounced (userunknown)", out)
        self.assertIn("1 message to example.net bounced (spamdetected)", out)


if __name__ == "__main__":
    unittest.main()
