"""t_11_replies — every reply-table situation reachable over the wire, with its exact basic and
enhanced code. Most cases are raw dialogs in dialogs/*.txt, one behaviour per file, replayed by
the small runner below (one server each); the cases that need volume (101 recipients, a
10 MiB message) are written out in Python.

Dialog syntax, one step a line ('#' starts a comment saying why the case matters):
  config LINE      extra config directive for this dialog's server (before any step)
  c -> TEXT        send TEXT plus CRLF
  c ~> TEXT        send TEXT as it is (no CRLF added)
  s <- PREFIX      the next reply, its first line with '-' read as ' ', starts with PREFIX
  s ~ WORDS        the last reply contains WORDS (any case)
  s closed         the server closes the connection without saying more
  mailbox USER N   after the dialog, USER's Maildir holds exactly N messages
  expect USER TEXT after the dialog, USER's only message is TEXT after Return-Path/Received
In TEXT, \\r \\n \\t \\0 \\xHH \\\\ are escapes and {{N*X}} is X repeated N times."""
import glob
import os
import re
import time
import unittest

from harness import (HERE, MAX_SIZE, ServerTestCase, exact_message, send_transaction,
                     split_trace_headers)

DIALOG_DIR = os.path.join(HERE, "dialogs")
_ESCAPES = {ord("r"): b"\r", ord("n"): b"\n", ord("t"): b"\t", ord("0"): b"\0",
            ord("\\"): b"\\"}


def unescape(text):
    text = re.sub(r"\{\{(\d+)\*(.+?)\}\}", lambda m: m.group(2) * int(m.group(1)), text)
    raw = text.encode("utf-8")
    out = bytearray()
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch != 0x5C:
            out.append(ch)
            i += 1
            continue
        nxt = raw[i + 1] if i + 1 < len(raw) else None
        if nxt in _ESCAPES:
            out += _ESCAPES[nxt]
            i += 2
        elif nxt == ord("x") and re.match(rb"[0-9a-fA-F]{2}", raw[i + 2:i + 4]):
            out.append(int(raw[i + 2:i + 4], 16))
            i += 4
        else:
            raise ValueError("bad escape in %r" % text)
    return bytes(out)


_STEP = re.compile(r"^(c ->|c ~>|s <-|s ~|s closed$|mailbox|expect|config)(?: (.*))?$")


def parse_dialog(path):
    """(config lines, steps) of a dialog file; steps are (kind, argument, line number)."""
    config, steps = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            m = _STEP.match(line)
            if not m:
                raise ValueError("%s:%d: not a dialog step: %r" % (path, n, line))
            kind, arg = m.group(1), m.group(2) or ""
            if kind == "config":
                if steps:
                    raise ValueError("%s:%d: config after the first step" % (path, n))
                config.append(arg)
            else:
                steps.append((kind, arg, n))
    return config, steps


class DialogTests(ServerTestCase):
    """One test per dialogs/*.txt file (added below)."""

    def run_dialog(self, path):
        config, steps = parse_dialog(path)
        srv = self.start_server(extra_config=config or None)
        conn = self.connect(srv, greet=False)
        last = None
        mailboxes, expects = {}, {}
        name = os.path.basename(path)
        for kind, arg, n in steps:
            where = "%s:%d" % (name, n)
            if kind == "c ->":
                conn.send(unescape(arg) + b"\r\n")
            elif kind == "c ~>":
                conn.send(unescape(arg))
            elif kind == "s <-":
                try:
                    last = conn.expect(arg)
                except AssertionError as e:
                    raise AssertionError("%s: %s" % (where, e)) from None
            elif kind == "s ~":
                self.assertIsNotNone(last, where + ": no reply yet")
                self.assertIn(arg.lower(), last.text.lower(), "%s: reply %r" % (where, last.text))
            elif kind == "s closed":
                self.assertTrue(conn.closed(timeout=5), where + ": connection still open")
            elif kind == "mailbox":
                user, count = arg.split()
                mailboxes[user] = int(count)
            elif kind == "expect":
                user, text = arg.split(" ", 1)
                expects[user] = unescape(text)
        conn.close()
        for user, text in expects.items():
            msgs = srv.wait_mail(user, 1)
            self.assertEqual(len(msgs), 1, "%s: %s got %d messages" % (name, user, len(msgs)))
            self.assertEqual(split_trace_headers(msgs[0])[2], text, name)
        for user, count in sorted(mailboxes.items(), key=lambda kv: -kv[1]):
            if count:
                srv.wait_mail(user, count)
            else:
                time.sleep(0.3)  # a wrongly queued message would be delivered by now
            got = len(srv.maildir_files(user))
            self.assertEqual(got, count, "%s: %s has %d messages, expected %d"
                             % (name, user, got, count))


def _add_dialog_tests():
    for path in sorted(glob.glob(os.path.join(DIALOG_DIR, "*.txt"))):
        base = os.path.splitext(os.path.basename(path))[0]

        def test(self, path=path):
            self.run_dialog(path)
        test.__name__ = "test_dialog_" + base
        test.__doc__ = "dialogs/%s.txt" % base
        setattr(DialogTests, test.__name__, test)


_add_dialog_tests()


class VolumeReplies(ServerTestCase):
    def test_101st_recipient_452_first_100_delivered(self):
        # 100 distinct recipients: the local part compares without case, so case variants
        # of alice (32), bob (8) and postmaster (60) are 100 different addresses.
        def variants(word, n):
            out = []
            for mask in range(1 << len(word)):
                out.append("".join(c.upper() if mask >> i & 1 else c for i, c in enumerate(word)))
                if len(out) == n:
                    return out
            raise ValueError(word)
        rcpts = ([v + "@example.test" for v in variants("alice", 32)]
                 + [v + "@example.test" for v in variants("bob", 8)]
                 + [v + "@example.test" for v in variants("postmaster", 61)])
        self.assertEqual(len(set(rcpts)), 101)
        srv = self.start_server()
        c = self.connect(srv)
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.org>")
        c.expect("250 2.1.0")
        for r in rcpts[:100]:
            c.cmd("RCPT TO:<%s>" % r)
            c.expect("250 2.1.5")
        c.cmd("RCPT TO:<%s>" % rcpts[100])
        c.expect("452 4.5.3", "too many recipients")
        c.cmd("DATA")
        c.expect("354")
        msg = b"Subject: t11-100\r\n\r\nto a hundred\r\n"
        c.send(msg + b".\r\n")
        r = c.expect("250 2.0.0", "queued as")
        qid = re.search(r"queued as (\S+)", r.text).group(1)
        self.assertIsNotNone(srv.wait_log(r"\b%s: .*nrcpt=100\b" % re.escape(qid)),
                             "the log does not show 100 recipients for " + qid)
        # Every mailbox gets the message: once (duplicates merged) or once per address.
        for user, n in (("alice", 32), ("bob", 8), ("postmaster", 60)):
            msgs = srv.wait_mail(user, 1)
            time.sleep(0.2)
            msgs = srv.mailbox(user)
            self.assertIn(len(msgs), (1, n), "%s got %d copies" % (user, len(msgs)))
            for m in msgs:
                self.assertEqual(split_trace_headers(m)[2], msg)

    def test_actual_size_limit_and_one_over(self):
        srv = self.start_server()
        c = self.connect(srv)
        c.ehlo()
        at_limit = exact_message("t11-at-limit", MAX_SIZE)
        r = send_transaction(c, "sender@example.org", ["alice@example.test"], at_limit)
        self.assertTrue(r.first.startswith("250 2.0.0"), r.text)
        over = exact_message("t11-over-limit", MAX_SIZE + 1)
        r = send_transaction(c, "sender@example.org", ["bob@example.test"], over)
        self.assertTrue(r.first.startswith("552 5.3.4"), r.text)
        c.cmd("NOOP")
        c.expect("250 2.0.0")
        self.assertDelivered(srv, "alice", at_limit)
        time.sleep(0.3)
        self.assertEqual(srv.maildir_files("bob"), [], "the oversized message was delivered")


if __name__ == "__main__":
    unittest.main()
