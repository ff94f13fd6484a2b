"""t_13_smuggling — SMTP smuggling (December 2023): a message whose text holds a fake end of
data ("\\n.\\n", "\\r.\\r\\n", ...) followed by a second transaction must stay one message. Only
CRLF.CRLF ends DATA; the server answers once for the whole payload (250 queued, or 550 5.6.0
for the bare line ends) and bob never receives the smuggled message. Also: dot-stuffed lines
arrive unstuffed, and BDAT content is never scanned for a terminator."""
import time
import unittest

from harness import ServerTestCase, dot_stuff, queue_id, send_transaction, split_trace_headers

FAKE_ENDS = {
    "lf_dot_lf": b"\n.\n",
    "lf_dot_crlf": b"\n.\r\n",
    "cr_dot_crlf": b"\r.\r\n",
    "crlf_dot_lf": b"\r\n.\n",
    "crlf_dot_cr": b"\r\n.\r",
    "cr_dot_cr": b"\r.\r",
}

SMUGGLED = (b"MAIL FROM:<evil@x>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
            b"From: <evil@x>\r\nSubject: smuggled\r\n\r\nevil payload\r\n")


class Smuggling(ServerTestCase):
    def smuggle(self, srv, name, fake_end):
        c = self.connect(srv)
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.org>")
        c.expect("250 2.1.0")
        c.cmd("RCPT TO:<alice@example.test>")
        c.expect("250 2.1.5")
        c.cmd("DATA")
        c.expect("354")
        payload = (b"From: <sender@example.org>\r\nSubject: t13-" + name.encode()
                   + b"\r\n\r\nhello" + fake_end + SMUGGLED + b".\r\nQUIT\r\n")
        c.send(payload)
        replies = []
        for _ in range(8):  # bounded: a smuggling server would send 5 replies before 221
            try:
                r = c.reply(timeout=10)
            except (AssertionError, OSError):
                break
            replies.append(r)
            if r.code == 221:
                break
        firsts = [r.first for r in replies]
        self.assertEqual(len(replies), 2, "%s: expected one final reply and 221, got %r"
                         % (name, firsts))
        final, bye = replies
        self.assertTrue(bye.first.startswith("221 2.0.0"), firsts)
        ok = final.first.startswith("250 2.0.0") and queue_id(final)
        self.assertTrue(ok or final.first.startswith("550 5.6.0"),
                        "%s: final reply %r" % (name, final.text))
        return final

    def check_no_smuggled_mail(self, srv, accepted):
        if accepted:
            msgs = srv.wait_mail("alice", 1)
            self.assertEqual(len(msgs), 1)
            rest = split_trace_headers(msgs[0])[2]
            self.assertIn(b"MAIL FROM:<evil@x>", rest, "the smuggled text left the message")
            self.assertIn(b"evil payload", rest)
        else:
            time.sleep(0.3)
            self.assertEqual(srv.maildir_files("alice"), [])
        time.sleep(0.3)
        self.assertEqual(srv.maildir_files("bob"), [], "bob received a smuggled message")

    def test_fake_end_of_data_rejected_by_default(self):
        for name, fake_end in FAKE_ENDS.items():
            with self.subTest(fake_end=name):
                srv = self.start_server()
                final = self.smuggle(srv, name, fake_end)
                # The default (bare_lf reject) refuses every one of these bare line ends.
                self.assertTrue(final.first.startswith("550 5.6.0"), final.text)
                self.check_no_smuggled_mail(srv, accepted=False)
                self.finish_server(srv)

    def test_fake_end_of_data_with_bare_lf_normalize(self):
        # Normalising bare line ends must not turn a fake terminator into a real one.
        for name, fake_end in FAKE_ENDS.items():
            with self.subTest(fake_end=name):
                srv = self.start_server(extra_config=["bare_lf normalize"])
                final = self.smuggle(srv, name, fake_end)
                self.assertTrue(final.first.startswith("250 2.0.0"), final.text)
                self.check_no_smuggled_mail(srv, accepted=True)
                self.finish_server(srv)

    def test_dot_stuffed_lines_arrive_unstuffed(self):
        srv = self.start_server()
        c = self.connect(srv)
        c.ehlo()
        msg = (b"Subject: t13-dots\r\n\r\n.\r\n..\r\n...\r\n. \r\n.x\r\n..x\r\nx.\r\n"
               b".\t\r\n" + b"." * 998 + b"\r\nEND\r\n")
        wire = dot_stuff(msg)
        self.assertIn(b"\r\n..\r\n", wire)
        r = send_transaction(c, "sender@example.org", ["alice@example.test"], msg)
        self.assertTrue(r.first.startswith("250 2.0.0"), r.text)
        self.assertDelivered(srv, "alice", msg)

    def test_bdat_content_is_never_scanned_for_a_terminator(self):
        srv = self.start_server()
        c = self.connect(srv)
        c.ehlo()
        content = (b"Subject: t13-bdat\r\n\r\nhello\r\n.\r\n" + SMUGGLED + b".\r\n..\r\n")
        c.cmd("MAIL FROM:<sender@example.org>")
        c.expect("250 2.1.0")
        c.cmd("RCPT TO:<alice@example.test>")
        c.expect("250 2.1.5")
        c.send(b"BDAT %d LAST\r\n" % len(content) + content + b"QUIT\r\n")
        c.expect("250 2.0.0", "queued as")
        c.expect("221 2.0.0")
        self.assertDelivered(srv, "alice", content)
        time.sleep(0.3)
        self.assertEqual(srv.maildir_files("bob"), [], "bob received a smuggled message")


if __name__ == "__main__":
    unittest.main()
