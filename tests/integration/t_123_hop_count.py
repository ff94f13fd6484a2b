"""t_123_hop_count — mail-loop detection (RFC 5321 §6.3): a message carrying more Received:
fields than max_hops (100 by default) is refused at the end of DATA or BDAT LAST with 554 5.4.6,
nothing is delivered and one reject line is logged; at the limit it is accepted. Received-SPF:
fields, folded lines and Received: lines in the body do not count."""
import time
import unittest

from harness import ServerTestCase, send_transaction


def looping_message(tag, hops):
    """A message with hops Received: fields (folded, as real ones are) and look-alikes that do
    not count."""
    trace = b"".join(b"Received: from relay%d.example.org by relay%d.example.org;\r\n"
                     b"\tSun, 6 Dec 2026 10:00:00 +0000\r\n" % (i, i + 1) for i in range(hops))
    return (trace + b"Received-SPF: pass\r\nX-Received: by x\r\nFrom: <sender@example.org>\r\n"
            b"Subject: " + tag.encode() + b"\r\n\r\nReceived: in the body\r\nhello\r\n")


class HopCount(ServerTestCase):
    def send_data(self, srv, tag, hops):
        c = self.connect(srv)
        c.ehlo()
        r = send_transaction(c, "sender@example.org", ["alice@example.test"],
                             looping_message(tag, hops))
        c.cmd("QUIT")
        c.expect("221")
        return r

    def send_bdat(self, srv, tag, hops):
        c = self.connect(srv)
        c.ehlo()
        content = looping_message(tag, hops)
        half = len(content) // 2
        c.cmd("MAIL FROM:<sender@example.org>")
        c.expect("250 2.1.0")
        c.cmd("RCPT TO:<alice@example.test>")
        c.expect("250 2.1.5")
        c.send(b"BDAT %d\r\n" % half + content[:half])
        c.expect("250 2.0.0")
        c.send(b"BDAT %d LAST\r\n" % (len(content) - half) + content[half:])
        r = c.reply(timeout=10)
        c.cmd("QUIT")
        c.expect("221")
        return r

    def assert_refused(self, srv, r, hops, limit):
        self.assertTrue(r.first.startswith("554 5.4.6"), r.text)
        self.assertIn("%d Received: fields, the limit is %d" % (hops, limit), r.first)
        self.assertIn("mail loop", r.first)

    def test_default_limit_data_and_bdat(self):
        srv = self.start_server()
        for send in (self.send_data, self.send_bdat):
            with self.subTest(send=send.__name__):
                r = send(srv, "t123-at-limit-" + send.__name__, 100)
                self.assertTrue(r.first.startswith("250 2.0.0"), r.text)
                r = send(srv, "t123-over-" + send.__name__, 101)
                self.assert_refused(srv, r, 101, 100)
        srv.wait_mail("alice", 2)
        time.sleep(0.5)
        msgs = srv.mailbox("alice")
        self.assertEqual(len(msgs), 2, "a message over the limit was delivered")
        for m in msgs:
            self.assertIn(b"t123-at-limit-", m)
        self.assertTrue(srv.wait_log(r"reject: .*554 5\.4\.6"))
        rejects = [l for l in srv.log().splitlines() if "reject:" in l and "5.4.6" in l]
        self.assertEqual(len(rejects), 2, rejects)

    def test_lower_limit(self):
        srv = self.start_server(extra_config=["max_hops 10"])
        r = self.send_data(srv, "t123-ten", 10)
        self.assertTrue(r.first.startswith("250 2.0.0"), r.text)
        r = self.send_data(srv, "t123-eleven", 11)
        self.assert_refused(srv, r, 11, 10)
        r = self.send_bdat(srv, "t123-eleven-bdat", 11)
        self.assert_refused(srv, r, 11, 10)
        srv.wait_mail("alice", 1)
        time.sleep(0.5)
        msgs = srv.mailbox("alice")
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"t123-ten", msgs[0])


if __name__ == "__main__":
    unittest.main()
