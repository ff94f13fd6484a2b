"""t_17_limits — lifecycle and connection limits: graceful SIGTERM (a transaction in flight
finishes, then 421 4.3.2; an idle session gets 421 4.3.2 at once), the idle and data timeouts
(421 4.4.2), and the per-IP (421 4.7.0) and global (421 4.3.2) connection limits."""
import signal
import socket
import time
import unittest

from harness import (ServerTestCase, dot_stuff, make_message, queue_id, split_trace_headers,
                     wait_until)


class Shutdown(ServerTestCase):
    def sigterm(self, srv):
        srv.signal(signal.SIGTERM)
        self.assertIsNotNone(srv.wait_log(r"shutdown: signal 15", timeout=5),
                             "the server did not log the SIGTERM")

    def test_sigterm_lets_open_transaction_finish(self):
        srv = self.start_server()
        c = self.connect(srv)
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.org>")
        c.expect("250 2.1.0")
        c.cmd("RCPT TO:<alice@example.test>")
        c.expect("250 2.1.5")
        self.sigterm(srv)
        # Nothing is said while the transaction is open.
        self.assertFalse(c.closed(timeout=0.5), "the open transaction was cut")
        msg = make_message("t17-sigterm")
        c.cmd("DATA")
        c.expect("354")
        c.send(dot_stuff(msg))
        r = c.expect("250 2.0.0")
        self.assertIsNotNone(queue_id(r), r.text)
        c.cmd("NOOP")
        c.expect("421 4.3.2", "shutting down")
        self.assertTrue(c.closed(), "connection left open after 421")
        # The listener is closed: no new sessions during shutdown.
        self.assertIsNotNone(srv.wait_exit(10), "server still running after its last session")
        self.assertEqual(srv.proc.returncode, 0)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", srv.mx_port), timeout=2).close()
        # The acknowledged message is delivered now or by the next start.
        if not srv.maildir_files("alice"):
            self.restart_server(srv)
        msgs = srv.wait_mail("alice", 1)
        self.assertEqual(split_trace_headers(msgs[0])[2], msg)

    def test_sigterm_idle_session_gets_421_at_once(self):
        srv = self.start_server()
        idle = self.connect(srv)
        idle.ehlo()
        fresh = self.connect(srv)  # greeted, not even EHLO yet
        started = time.monotonic()
        self.sigterm(srv)
        idle.expect("421 4.3.2", timeout=3)
        fresh.expect("421 4.3.2", timeout=3)
        self.assertLess(time.monotonic() - started, 3)
        self.assertTrue(idle.closed())
        self.assertTrue(fresh.closed())
        self.assertIsNotNone(srv.wait_exit(10), "server still running with no sessions")
        self.assertEqual(srv.proc.returncode, 0)

    def test_quit_is_answered_during_shutdown(self):
        srv = self.start_server()
        c = self.connect(srv)
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.org>")
        c.expect("250 2.1.0")
        self.sigterm(srv)
        c.cmd("QUIT")
        c.expect("221 2.0.0")
        self.assertTrue(c.closed())
        self.assertIsNotNone(srv.wait_exit(10))


class Timeouts(ServerTestCase):
    def test_idle_timeout_421_4_4_2(self):
        srv = self.start_server(extra_config=["timeout_command 2"])
        c = self.connect(srv)
        c.ehlo()
        started = time.monotonic()
        r = c.expect("421 4.4.2", "timeout", timeout=6)
        elapsed = time.monotonic() - started
        self.assertGreater(elapsed, 1.5, "timed out too early: %r" % r.text)
        self.assertLess(elapsed, 4.5)
        self.assertTrue(c.closed())

    def test_activity_resets_the_idle_timeout(self):
        srv = self.start_server(extra_config=["timeout_command 2"])
        c = self.connect(srv)
        for _ in range(4):  # 4 s of activity, never 2 s of silence
            time.sleep(1)
            c.cmd("NOOP")
            c.expect("250 2.0.0")

    def test_data_timeout_421_4_4_2(self):
        srv = self.start_server(extra_config=["timeout_data 2"])
        c = self.connect(srv)
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.org>")
        c.expect("250 2.1.0")
        c.cmd("RCPT TO:<alice@example.test>")
        c.expect("250 2.1.5")
        c.cmd("DATA")
        c.expect("354")
        c.send(b"Subject: t17-data-timeout\r\n\r\npart of a message\r\n")
        c.expect("421 4.4.2", timeout=6)
        self.assertTrue(c.closed())
        time.sleep(0.3)
        self.assertEqual(srv.maildir_files("alice"), [])
        self.assertEqual(srv.queue_problems(), [])


class ConnectionLimits(ServerTestCase):
    def test_fourth_connection_per_ip_refused(self):
        srv = self.start_server(extra_config=["max_connections_per_ip 3"])
        conns = [self.connect(srv) for _ in range(3)]
        fourth = self.connect(srv, greet=False)
        fourth.expect("421 4.7.0", "too many connections from your IP")
        self.assertTrue(fourth.closed())
        for c in conns:  # the three still work
            c.cmd("NOOP")
            c.expect("250 2.0.0")
        # A slot freed by QUIT can be used again.
        conns[0].cmd("QUIT")
        conns[0].expect("221 2.0.0")
        self.assertTrue(conns[0].closed())

        def greeted():
            c = self.connect(srv, greet=False)
            return c if c.reply().code == 220 else None
        self.assertIsNotNone(wait_until(greeted, 5, 0.1), "no slot after a QUIT")

    def test_global_connection_limit(self):
        srv = self.start_server(extra_config=["max_connections 2"])
        a = self.connect(srv)
        b = self.connect(srv)
        for c in (a, b):  # past EHLO: stress mode may not give their places away
            c.ehlo()
        third = self.connect(srv, greet=False)
        third.expect("421 4.3.2", "too many connections")
        self.assertTrue(third.closed())
        for c in (a, b):
            c.cmd("NOOP")
            c.expect("250 2.0.0")


if __name__ == "__main__":
    unittest.main()
