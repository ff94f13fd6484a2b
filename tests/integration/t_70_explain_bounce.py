"""t_70_explain_bounce — `clearmta explain --bounce` on the built binary: one message on standard
input, a directory, an mbox, JSON Lines fields, exit 1 for a message that is not a bounce, and
the whole shared bounce set (../shared/bounces, skipped when absent) without a crash or timeout."""
import json
import os
import subprocess
import tempfile
import unittest

from harness import BIN

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(ROOT, "..", "shared", "bounces", "eml")
FIELDS = ("recipient", "action", "status", "reply_code", "reply", "reason", "hardbounce",
          "remote_mta", "message_id", "subject", "class", "retry", "meaning", "action_advice")

QMAIL = b"""From: MAILER-DAEMON@mx.example.test
To: alice@example.test
Subject: failure notice

Hi. This is the qmail-send program at mx.example.test.
I'm afraid I wasn't able to deliver your message to the following addresses.

<bob@example.org>:
Remote host said: 550 5.1.1 No such user

--- Below this line is a copy of the message.

To: bob@example.org
Message-ID: <m1@example.test>
Subject: Lunch

hi
"""

NOT_A_BOUNCE = b"From: bob@example.org\nTo: alice@example.test\nSubject: Lunch?\n\nNoon?\n"


def run(args, data=None):
    return subprocess.run([BIN, "explain"] + args, input=data, capture_output=True, timeout=60)


class Bounce(unittest.TestCase):
    def test_one_message_json(self):
        p = run(["--bounce", "-", "--json"], QMAIL)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.decode().splitlines()
        self.assertEqual(len(lines), 1)
        d = json.loads(lines[0])
        for f in FIELDS:
            self.assertIn(f, d)
        self.assertEqual(d["recipient"], "bob@example.org")
        self.assertEqual(d["reason"], "userunknown")
        self.assertEqual(d["status"], "5.1.1")
        self.assertEqual(d["reply_code"], 550)
        self.assertTrue(d["hardbounce"])
        self.assertEqual(d["message_id"], "<m1@example.test>")

    def test_text_output(self):
        p = run(["--bounce", "-"], QMAIL)
        self.assertEqual(p.returncode, 0)
        out = p.stdout.decode()
        self.assertIn("bob@example.org", out)
        self.assertIn("userunknown", out)
        self.assertIn("What to do:", out)

    def test_not_a_bounce(self):
        p = run(["--bounce", "-", "--json"], NOT_A_BOUNCE)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, b"")
        self.assertIn(b"not a bounce", p.stderr)

    def test_directory_and_mbox(self):
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "new"))
            for i in range(3):
                with open(os.path.join(d, "new", "m%d" % i), "wb") as f:
                    f.write(QMAIL)
            p = run(["--bounce", d, "--json"])
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(len(p.stdout.splitlines()), 3)
            mbox = os.path.join(d, "mbox")
            with open(mbox, "wb") as f:
                for _ in range(2):
                    f.write(b"From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n" + QMAIL + b"\n")
            p = run(["--bounce", mbox, "--json"])
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(len(p.stdout.splitlines()), 2)

    def test_usage(self):
        self.assertEqual(run(["--bounce", "a", "b"]).returncode, 2)

    def test_shared_set(self):
        if not os.path.isdir(SHARED):
            self.skipTest("../shared/bounces absent")
        p = run(["--bounce", SHARED, "--json"])
        self.assertIn(p.returncode, (0, 1))
        self.assertFalse(p.stderr.count(b"AddressSanitizer"))
        for line in p.stdout.splitlines():
            json.loads(line)


if __name__ == "__main__":
    unittest.main()
