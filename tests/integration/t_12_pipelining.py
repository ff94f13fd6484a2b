"""t_12_pipelining — RFC 2920: whole command batches in one write get their replies in exact
order; back-to-back messages in one write; message ends and the next commands sharing (or
split across) packets; a batch far larger than one read."""
import threading
import time
import unittest

from harness import ServerTestCase, dot_stuff, make_message, queue_id, split_trace_headers

SENDER = "sender@example.org"


def expect_all(test, conn, prefixes):
    replies = []
    for p in prefixes:
        r = conn.reply()
        replies.append(r)
        test.assertTrue(r.first.startswith(p), "reply %d: expected %r, got %r (all so far: %r)"
                        % (len(replies), p, r.text, [x.first for x in replies]))
    return replies


class Pipelining(ServerTestCase):
    def test_whole_transaction_in_one_write(self):
        srv = self.start_server()
        c = self.connect(srv)
        c.send(b"EHLO client.example\r\n"
               b"MAIL FROM:<sender@example.org>\r\n"
               b"RCPT TO:<alice@example.test>\r\n"
               b"RCPT TO:<nobody@example.test>\r\n"
               b"RCPT TO:<bob@example.test>\r\n"
               b"DATA\r\n")
        expect_all(self, c, ["250 mx.example.test", "250 2.1.0", "250 2.1.5", "550 5.1.1",
                             "250 2.1.5", "354"])
        msg = make_message("t12-one-write")
        c.send(dot_stuff(msg) + b"QUIT\r\n")
        r, _bye = expect_all(self, c, ["250 2.0.0", "221 2.0.0"])
        self.assertIsNotNone(queue_id(r), r.text)
        self.assertTrue(c.closed())
        self.assertDelivered(srv, "alice", msg)
        self.assertDelivered(srv, "bob", msg)
        self.assertEqual(srv.maildir_files("nobody"), [])

    def test_message_data_in_the_same_write_as_data(self):
        # Not what RFC 2920 asks of a client (it should wait for 354), but what broken and
        # hostile clients do: the bytes after DATA are message text once DATA is accepted.
        srv = self.start_server()
        c = self.connect(srv)
        c.ehlo()
        msg = make_message("t12-eager")
        c.send(b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
               + dot_stuff(msg) + b"QUIT\r\n")
        expect_all(self, c, ["250 2.1.0", "250 2.1.5", "354", "250 2.0.0", "221 2.0.0"])
        self.assertDelivered(srv, "alice", msg)

    def test_two_messages_back_to_back_in_one_write(self):
        srv = self.start_server()
        c = self.connect(srv)
        c.ehlo()
        m1 = make_message("t12-b2b-1", extra_body=b".leading dot\r\n")
        m2 = make_message("t12-b2b-2", rcpt="bob@example.test")
        batch = (b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
                 + dot_stuff(m1)
                 + b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
                 + dot_stuff(m2) + b"QUIT\r\n")
        c.send(batch)
        replies = expect_all(self, c, ["250 2.1.0", "250 2.1.5", "354", "250 2.0.0",
                                       "250 2.1.0", "250 2.1.5", "354", "250 2.0.0",
                                       "221 2.0.0"])
        ids = [queue_id(replies[3]), queue_id(replies[7])]
        self.assertTrue(all(ids), [r.text for r in replies])
        self.assertNotEqual(ids[0], ids[1])
        self.assertDelivered(srv, "alice", m1)
        self.assertDelivered(srv, "bob", m2)

    def test_end_of_data_straddles_packets(self):
        # The terminator CRLF.CRLF is cut at every position, the next batch follows in the
        # same packet as its second half; Nagle is off, with pauses so the cuts reach the
        # server as separate reads.
        srv = self.start_server()
        c = self.connect(srv)
        c.ehlo()
        term = b"\r\n.\r\n"
        msgs = []
        c.send(b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        expect_all(self, c, ["250 2.1.0", "250 2.1.5", "354"])
        for cut in range(0, len(term) + 1):
            msg = make_message("t12-cut-%d" % cut)
            msgs.append(msg)
            body = dot_stuff(msg)[:-len(b".\r\n")]
            self.assertTrue(body.endswith(b"\r\n"))
            wire = body[:-2] + term  # body's last CRLF is the terminator's first
            split = len(body) - 2 + cut
            c.send(wire[:split])
            time.sleep(0.05)
            nxt = b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
            c.send(wire[split:] + nxt)
            r, _m, _r, _d = expect_all(self, c, ["250 2.0.0", "250 2.1.0", "250 2.1.5", "354"])
            self.assertIsNotNone(queue_id(r), r.text)
        # Close the last transaction with a message whose tail shares a packet with QUIT.
        last = make_message("t12-cut-last")
        msgs.append(last)
        c.send(dot_stuff(last) + b"QUIT\r\n")
        expect_all(self, c, ["250 2.0.0", "221 2.0.0"])
        got = srv.wait_mail("alice", len(msgs))
        self.assertEqual(len(got), len(msgs))
        self.assertEqual(sorted(split_trace_headers(m)[2] for m in got), sorted(msgs))

    def test_large_batch_replies_in_order(self):
        # 5000 commands in one write, far beyond one read (and the session's input bound):
        # the server must pause reading, not drop or reorder. A reader thread keeps our side
        # from deadlocking as RFC 2920 §3 asks of clients.
        srv = self.start_server()
        c = self.connect(srv)
        c.ehlo()
        n = 5000
        batch = b"".join(b"NOOP %d\r\n" % i if i % 2 else b"RSET\r\n" for i in range(n))
        batch += b"QUIT\r\n"
        replies, errors = [], []

        def reader():
            try:
                for _ in range(n + 1):
                    replies.append(c.reply(timeout=30))
            except Exception as e:  # reported below
                errors.append(e)
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        c.send(batch)
        t.join(60)
        self.assertFalse(t.is_alive(), "replies stalled after %d" % len(replies))
        self.assertEqual(errors, [])
        self.assertEqual(len(replies), n + 1)
        for i, r in enumerate(replies[:n]):
            self.assertTrue(r.first.startswith("250 2.0.0"), "reply %d: %r" % (i, r.text))
            want = "Ok" if i % 2 else "Reset"
            self.assertIn(want, r.text, "reply %d out of order: %r" % (i, r.text))
        self.assertTrue(replies[n].first.startswith("221 2.0.0"))


if __name__ == "__main__":
    unittest.main()
