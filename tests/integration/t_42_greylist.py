"""t_42_greylist — greylisting on the MX port (`greylisting on delay=2`): a new (client network,
sender, recipient) triplet gets 451 4.7.1 "Greylisted, retry in N seconds", an early retry too,
a retry after the delay 250; other triplets and other client networks are greylisted on their
own; postmaster and authenticated submission are never greylisted; off by default."""
import re
import time
import unittest

from harness import (Conn, ServerTestCase, auth_server, login, make_message, send_transaction,
                     starttls, wait_until)

DELAY = 2
GREYLISTED = r"^451 4\.7\.1 Greylisted, retry in (\d+) seconds?$"
SAME_NETWORK = "127.0.0.2"   # in 127.0.0.0/24 with 127.0.0.1 (the default IPv4 /24)
OTHER_NETWORK = "127.0.1.1"  # another /24


class Greylist(ServerTestCase):
    def server(self, *extra):
        return auth_server(self, ["greylisting on delay=%d" % DELAY] + list(extra))

    def mx(self, srv, source=None):
        c = Conn(srv.mx_port, source=source)
        self.addCleanup(c.close)
        c.expect("220")
        c.ehlo()
        return c

    def rcpt(self, c, sender, rcpt):
        """MAIL + RCPT; returns the RCPT reply and leaves the transaction reset."""
        c.cmd("MAIL FROM:<%s>" % sender)
        c.expect("250 2.1.0")
        c.cmd("RCPT TO:<%s>" % rcpt)
        r = c.reply()
        c.cmd("RSET")
        c.expect("250")
        return r

    def assertGreylisted(self, r):
        m = re.match(GREYLISTED, r.first)
        self.assertIsNotNone(m, "expected the greylisting reply, got %r" % r.text)
        self.assertTrue(1 <= int(m.group(1)) <= DELAY, r.text)

    def wait_passed(self, srv, sender, rcpt, source=None):
        """Retries the triplet every 0.3 s until accepted (bounded); returns the last reply."""
        def passed():
            r = self.rcpt(self.mx(srv, source), sender, rcpt)
            if r.code != 250:
                self.assertGreylisted(r)
            return r if r.code == 250 else None
        return wait_until(passed, DELAY + 8, 0.3)

    def test_first_attempt_greylisted_then_accepted_after_the_delay(self):
        srv = self.server()
        c = self.mx(srv)
        first = time.monotonic()
        self.assertGreylisted(self.rcpt(c, "sender@example.org", "alice@example.test"))
        self.assertGreylisted(self.rcpt(c, "sender@example.org", "alice@example.test"))
        r = self.wait_passed(srv, "sender@example.org", "alice@example.test")
        self.assertIsNotNone(r, "still greylisted %d s after the delay" % 8)
        self.assertTrue(r.first.startswith("250 2.1.5"), r.text)
        self.assertGreater(time.monotonic() - first, DELAY - 0.5, "accepted before the delay")
        # Once passed, the triplet stays passed, and the message goes through.
        c = self.mx(srv)
        msg = make_message("t42-passed")
        r = send_transaction(c, "sender@example.org", ["alice@example.test"], msg)
        self.assertTrue(r.first.startswith("250 2.0.0"), r.text)
        self.assertDelivered(srv, "alice", msg)
        # The same network shares the triplet; another network starts afresh.
        self.assertEqual(self.rcpt(self.mx(srv, SAME_NETWORK), "sender@example.org",
                                   "alice@example.test").code, 250)
        self.assertGreylisted(self.rcpt(self.mx(srv, OTHER_NETWORK), "sender@example.org",
                                        "alice@example.test"))

    def test_each_triplet_on_its_own(self):
        srv = self.server()
        c = self.mx(srv)
        self.assertGreylisted(self.rcpt(c, "sender@example.org", "alice@example.test"))
        self.assertIsNotNone(self.wait_passed(srv, "sender@example.org", "alice@example.test"))
        # Another sender, another recipient: new triplets, greylisted although one passed.
        self.assertGreylisted(self.rcpt(c, "other@example.org", "alice@example.test"))
        self.assertGreylisted(self.rcpt(c, "sender@example.org", "bob@example.test"))
        # Case does not make a new triplet.
        self.assertEqual(self.rcpt(c, "Sender@Example.ORG", "alice@EXAMPLE.test").code, 250)

    def test_postmaster_never_greylisted(self):
        srv = self.server()
        c = self.mx(srv)
        r = self.rcpt(c, "sender@example.org", "postmaster@example.test")
        self.assertTrue(r.first.startswith("250 2.1.5"), r.text)

    def test_authenticated_submission_never_greylisted(self):
        srv = self.server()
        c = self.connect(srv.sub_port)
        starttls(c)
        login(c)
        for rcpt in ("bob@example.test", "alice@example.test"):
            r = self.rcpt(c, "alice@example.test", rcpt)
            self.assertTrue(r.first.startswith("250 2.1.5"), r.text)

    def test_unknown_user_is_550_not_greylisted(self):
        # Greylisting must not hide that a mailbox does not exist (and must not remember it).
        srv = self.server()
        r = self.rcpt(self.mx(srv), "sender@example.org", "nobody@example.test")
        self.assertTrue(r.first.startswith("550 5.1.1"), r.text)

    def test_off_by_default(self):
        srv = self.start_server()
        r = self.rcpt(self.mx(srv), "sender@example.org", "alice@example.test")
        self.assertTrue(r.first.startswith("250 2.1.5"), r.text)


if __name__ == "__main__":
    unittest.main()
