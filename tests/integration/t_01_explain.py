"""t_01_explain — `clearmta explain` on the built binary: replies as arguments and on standard
input (multi-line replies grouped), the stable JSON fields, JSON escaping, bad input (exit 1)
and usage errors (exit 2), and a few hundred lines in one run."""
import json
import os
import subprocess
import unittest

from harness import BIN

STABLE = ("code", "enhanced", "class", "retry", "reason", "meaning", "cause", "action")
CLASSES = {"success", "intermediate", "transient", "permanent"}
REASONS = set("""userunknown mailboxfull mesgtoobig exceedlimit norelaying securityerror
authfailure blocked spamdetected virusdetected policyviolation rejected filtered hostunknown
networkerror systemerror systemfull toomanyconn speeding expired syntaxerror notaccept hasmoved
contenterror requireptr badreputation failedstarttls suspend onhold mailererror
notcompliantrfc delivered undefined""".split())

GMAIL_MULTILINE = [
    "550-5.1.1 The email account that you tried to reach does not exist. Please try",
    "550-5.1.1 double-checking the recipient's email address for typos or",
    "550-5.1.1 unnecessary spaces. Learn more at",
    "550 5.1.1  https://support.google.com/mail/?p=NoSuchUser a1si123 - gsmtp",
]

# (line, code, enhanced, class, reason): a sample of real replies and log lines
SAMPLES = [
    ("550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown in local recipient table",
     550, "5.1.1", "permanent", "userunknown"),
    ("host mx.example.org[192.0.2.1] said: 552-5.2.2 The email account that you tried to reach is over quota",
     552, "5.2.2", "permanent", "mailboxfull"),
    ("554 5.7.1 <bob@example.org>: Relay access denied", 554, "5.7.1", "permanent", "norelaying"),
    ("Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'",
     550, "5.1.10", "permanent", "userunknown"),
    ("smtp; 550 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
     550, "5.7.1", "permanent", "blocked"),
    ("421 4.7.0 mail.example.org Error: too many connections from 192.0.2.1", 421, "4.7.0", "transient",
     "toomanyconn"),
    ("450 4.2.1 The user you are trying to contact is receiving mail too quickly.", 450, "4.2.1", "transient",
     "speeding"),
    ("450 4.2.0 <bob@example.org>: Recipient address rejected: Greylisted", 450, "4.2.0", "transient", "blocked"),
    ("dsn=4.4.1, status=deferred (connect to mx.example.org[192.0.2.1]:25: Connection timed out)",
     None, "4.4.1", "transient", "networkerror"),
    ("552 5.3.4 Message size exceeds fixed limit", 552, "5.3.4", "permanent", "mesgtoobig"),
    ("550 5.7.1 Virus found in message", 550, "5.7.1", "permanent", "virusdetected"),
    ("250 2.0.0 Ok: queued as 4ABC123", 250, "2.0.0", "success", "delivered"),
    ("354 End data with <CR><LF>.<CR><LF>", 354, None, "intermediate", "undefined"),
    ("503", 503, None, "permanent", "syntaxerror"),
    ("5.7.1", None, "5.7.1", "permanent", "blocked"),
]


def run(args, stdin=b""):
    return subprocess.run([BIN, "explain"] + list(args), input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)


def json_lines(out):
    return [json.loads(line) for line in out.decode("utf-8").splitlines()]


class Explain(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(BIN, os.X_OK):
            raise unittest.SkipTest("no binary at %s (set CLEARMTA_BIN)" % BIN)

    def check_stable(self, obj):
        for key in STABLE:
            self.assertIn(key, obj)
        self.assertTrue(obj["code"] is None or isinstance(obj["code"], int))
        self.assertTrue(obj["enhanced"] is None or isinstance(obj["enhanced"], str))
        self.assertIn(obj["class"], CLASSES)
        self.assertIsInstance(obj["retry"], bool)
        self.assertEqual(obj["retry"], obj["class"] == "transient")
        self.assertIn(obj["reason"], REASONS)
        for key in ("meaning", "cause", "action"):
            self.assertIsInstance(obj[key], str)
            self.assertTrue(obj[key])

    def test_arguments_human(self):
        r = run(["550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown"])
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        for label in ("Code:", "Enhanced code:", "Class:", "Reason:", "Meaning:", "Likely cause:",
                      "What to do:", "Retry:"):
            self.assertIn(label, out)
        self.assertIn("userunknown", out)
        self.assertIn("Bad destination mailbox address", out)
        self.assertIn("no: do not retry", out)

    def test_arguments_are_joined(self):
        r = run(["--json", "550", "5.1.1", "User", "unknown"])
        self.assertEqual(r.returncode, 0, r.stderr)
        (obj,) = json_lines(r.stdout)
        self.assertEqual((obj["code"], obj["enhanced"], obj["reason"]), (550, "5.1.1", "userunknown"))
        self.assertEqual(obj["text"], "User unknown")

    def test_option_after_words(self):
        r = run(["421", "4.7.0", "too", "many", "connections", "--json"])
        self.assertEqual(r.returncode, 0, r.stderr)
        (obj,) = json_lines(r.stdout)
        self.assertEqual(obj["reason"], "toomanyconn")
        self.assertTrue(obj["retry"])
        self.assertIn("fewer", obj["retry_when"])

    def test_samples_json(self):
        for line, code, enhanced, cls, reason in SAMPLES:
            with self.subTest(line=line):
                r = run(["--json", line])
                self.assertEqual(r.returncode, 0, r.stderr)
                (obj,) = json_lines(r.stdout)
                self.check_stable(obj)
                self.assertEqual((obj["code"], obj["enhanced"], obj["class"], obj["reason"]),
                                 (code, enhanced, cls, reason))

    def test_multiline_argument(self):
        r = run(["--json", "\n".join(GMAIL_MULTILINE)])
        self.assertEqual(r.returncode, 0, r.stderr)
        (obj,) = json_lines(r.stdout)
        self.assertEqual(obj["reason"], "userunknown")
        self.assertNotIn("550-", obj["text"])
        self.assertIn("double-checking", obj["text"])

    def test_stdin_groups_multiline_replies(self):
        lines = GMAIL_MULTILINE + ["250 2.0.0 OK", "452-4.2.2 The email account that you tried to reach is",
                                   "452 4.2.2 over quota."]
        r = run(["--stdin", "--json"], ("\r\n".join(lines) + "\r\n").encode())
        self.assertEqual(r.returncode, 0, r.stderr)
        objs = json_lines(r.stdout)
        self.assertEqual([(o["code"], o["reason"]) for o in objs],
                         [(550, "userunknown"), (250, "delivered"), (452, "mailboxfull")])
        for o in objs:
            self.check_stable(o)

    def test_stdin_unfinished_group(self):
        r = run(["--stdin", "--json"], b"550-5.1.1 no such\n550-5.1.1 user here\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        (obj,) = json_lines(r.stdout)
        self.assertEqual(obj["reason"], "userunknown")
        self.assertEqual(obj["text"], "no such\nuser here")

    def test_stdin_group_interrupted_by_other_code(self):
        r = run(["--stdin", "--json"], b"550-5.7.1 first line\n421 4.3.2 Service shutting down\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([o["code"] for o in json_lines(r.stdout)], [550, 421])

    def test_stdin_bad_lines_reported_and_run_goes_on(self):
        r = run(["--stdin", "--json"], b"550 5.1.1 user unknown\n999\n\x01\x02\nhello\n250 ok\n")
        self.assertEqual(r.returncode, 1)
        objs = json_lines(r.stdout)
        self.assertEqual(len(objs), 5)
        self.assertEqual(objs[0]["code"], 550)
        self.assertIn("out of range", objs[1]["error"])
        self.assertEqual(objs[1]["line"], 2)
        self.assertIn("binary", objs[2]["error"])
        self.assertIn("no reply code", objs[3]["error"])
        self.assertEqual(objs[4]["code"], 250)

    def test_stdin_bad_line_human_goes_to_stderr(self):
        r = run(["--stdin"], b"250 ok\n7.7.7\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"line 2", r.stderr)
        self.assertIn(b"Reason:", r.stdout)

    def test_stdin_blank_lines_skipped_and_empty_input(self):
        r = run(["--stdin", "--json"], b"\n  \n250 ok\n\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(json_lines(r.stdout)), 1)
        r = run(["--stdin"], b"")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr)

    def test_json_escaping(self):
        raw = b'550 5.1.1 "quoted" back\\slash\ttab caf\xe9 \xc3\xa9t\xc3\xa9 user unknown\n'
        r = run(["--stdin", "--json"], raw)
        self.assertEqual(r.returncode, 0, r.stderr)
        (obj,) = json_lines(r.stdout)
        self.assertEqual(obj["text"], '"quoted" back\\slash tab caf\ufffd \u00e9t\u00e9 user unknown')
        bad = run(["--stdin", "--json"], b'\x1b[31m"x"\n')
        (err,) = json_lines(bad.stdout)
        self.assertEqual(err["input"], '\x1b[31m"x"')

    def test_bad_arguments_exit_1(self):
        for arg in ("", "   ", "999", "7.7.7", "600", "\x01binary", "hello world", "192.0.2.1"):
            with self.subTest(arg=arg):
                r = run([arg])
                self.assertEqual(r.returncode, 1)
                self.assertEqual(r.stdout, b"")
                self.assertTrue(r.stderr.startswith(b"clearmta explain: "))

    def test_usage_errors_exit_2(self):
        for args in ([], ["--json"], ["--bogus", "550"], ["--stdin", "550"]):
            with self.subTest(args=args):
                r = run(args)
                self.assertEqual(r.returncode, 2)
                self.assertTrue(r.stderr)
        r = run(["--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"--stdin", r.stdout)
        r = run(["--", "-550 odd"])  # "--" ends the options
        self.assertEqual(r.returncode, 1)

    def test_hundreds_of_lines(self):
        lines = []
        for i in range(400):
            line, code, enhanced, cls, reason = SAMPLES[i % len(SAMPLES)]
            lines.append(line)
        r = run(["--stdin", "--json"], ("\n".join(lines) + "\n").encode())
        self.assertEqual(r.returncode, 0, r.stderr)
        objs = json_lines(r.stdout)
        self.assertEqual(len(objs), 400)
        for i, obj in enumerate(objs):
            line, code, enhanced, cls, reason = SAMPLES[i % len(SAMPLES)]
            self.check_stable(obj)
            self.assertEqual((obj["code"], obj["reason"]), (code, reason))
        human = run(["--stdin"], ("\n".join(lines) + "\n").encode())
        self.assertEqual(human.returncode, 0)
        self.assertEqual(human.stdout.count(b"\nReason:") + human.stdout.startswith(b"Reason:"), 400)


if __name__ == "__main__":
    unittest.main()
