"""t_94_memory — the session memory budget (session_memory 1M, the smallest allowed): clients
that open messages fill it, then DATA gets 452 4.3.1 while the messages already open finish
with 250; idle connections fill what is left, then a new client gets 421 4.3.2; once the
clients go, mail is taken again. The bounds on what one session may hold (pipelined input,
AUTH lines, replies a client does not read) are checked too."""
import unittest

from harness import Conn, ServerTestCase, make_message, dot_stuff

CLIENTS = 24


class MemoryBudget(ServerTestCase):
    def open_message(self, srv, i):
        """A client with a message open (354 to DATA), or the reply that refused DATA."""
        c = Conn(srv.mx_port, source="127.0.7.%d" % (1 + i), timeout=10)
        self.addCleanup(c.close)
        greeting = c.reply()
        if greeting.code != 220:
            return c, greeting
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.org>")
        c.expect("250")
        c.cmd("RCPT TO:<alice@example.test>")
        c.expect("250")
        c.cmd("DATA")
        return c, c.reply()

    def test_budget_refuses_data_then_connections_and_recovers(self):
        srv = self.start_server(extra_config=["session_memory 1M"])
        sending, refused = [], []
        for i in range(CLIENTS):
            c, r = self.open_message(srv, i)
            (sending if r.code == 354 else refused).append((c, r))
        self.assertGreater(len(sending), 3)
        self.assertGreater(len(refused), 0, "the budget never refused DATA")
        for _c, r in refused:  # at DATA, or at connect once even that did not fit
            self.assertTrue(r.first.startswith(("452 4.3.1", "421 4.3.2")), r.text)
        self.assertTrue(refused[0][1].first.startswith("452 4.3.1"), refused[0][1].text)
        self.assertIn("session_memory 1048576 reached", srv.log())
        # Idle connections take what is left; then a new client is told 421 4.3.2.
        idle, last = [], None
        for i in range(2000):
            c = Conn(srv.mx_port, source="127.0.8.%d" % (1 + i % 250), timeout=10)
            self.addCleanup(c.close)
            last = c.reply()
            if last.code != 220:
                break
            idle.append(c)
        self.assertTrue(last.first.startswith("421 4.3.2"), last.text)
        # The messages already open finish.
        for k, (c, _r) in enumerate(sending):
            msg = make_message("t94-open-%d" % k)
            c.send(dot_stuff(msg))
            c.expect("250")
            c.cmd("QUIT")
            c.expect("221")
        for c in idle:
            c.close()
        for c, _r in refused:
            c.close()
        # Memory is back: a new message is taken.
        c, r = self.open_message(srv, 250)
        self.assertEqual(r.code, 354, r.text)
        msg = make_message("t94-after")
        c.send(dot_stuff(msg))
        c.expect("250")
        self.assertIn("memory back under session_memory", srv.log())
        srv.wait_mail("alice", len(sending) + 1)

    def test_one_session_is_bounded(self):
        srv = self.start_server(extra_config=[])
        # 4 MB of pipelined NOOPs from a client that never reads: the server stops reading and
        # its memory does not follow (the input is bounded, replies wait for the client).
        c = self.connect(srv)
        c.sock.setblocking(False)
        sent = 0
        chunk = b"NOOP\r\n" * 10000
        try:
            while sent < 4 << 20:
                sent += c.sock.send(chunk)
        except BlockingIOError:
            pass
        self.assertLess(sent, 4 << 20, "the server read 4 MB it could not answer")
        with open("/proc/%d/status" % srv.proc.pid) as f:
            rss_kb = int([l for l in f if l.startswith("VmRSS")][0].split()[1])
        self.assertLess(rss_kb, 512 * 1024, "resident memory %d kB" % rss_kb)
        # An AUTH-length line beyond its bound is refused, not stored.
        d = self.connect(srv)
        d.ehlo()
        d.send(b"NOOP " + b"x" * 100000 + b"\r\n")
        r = d.reply()
        self.assertEqual(r.code // 100, 5, r.text)


if __name__ == "__main__":
    unittest.main()
