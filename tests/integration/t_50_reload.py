"""t_50_reload — SIGHUP re-reads the configuration: a new domain is in force for new sessions
while an open session goes on, listeners are opened and closed, a broken file is refused whole
(PATH:LINE in the log, not even its good lines applied); SIGUSR1 and SIGHUP reopen a log_file;
shutdown_timeout names the grace."""
import os
import signal
import socket
import unittest

import harness
from harness import ServerTestCase, send_transaction, make_message


class ReloadTest(ServerTestCase):
    @staticmethod
    def refused(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return False
        except ConnectionRefusedError:
            return True

    def rcpt(self, srv, address):
        c = self.connect(srv)
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.org>")
        c.expect("250")
        c.cmd("RCPT TO:<%s>" % address)
        r = c.reply()
        c.cmd("QUIT")
        return r.code

    def test_new_domain_for_new_sessions_open_session_goes_on(self):
        srv = self.start_server(extra_config=[])
        before = self.rcpt(srv, "carol@new.test")
        self.assertGreaterEqual(before, 500, "new.test is not a local domain yet")
        open_conn = self.connect(srv)
        open_conn.ehlo()
        open_conn.cmd("MAIL FROM:<sender@example.org>")
        open_conn.expect("250")
        srv.rewrite_config(["domain new.test users carol"])
        self.assertTrue(srv.reload(1), "no reload outcome in the log")
        self.assertIn("reload: %s in force" % srv.conf_path, srv.log())
        self.assertEqual(self.rcpt(srv, "carol@new.test"), 250)
        # The session opened before the reload finishes its transaction.
        open_conn.cmd("RCPT TO:<alice@example.test>")
        open_conn.expect("250")
        msg = make_message("open-session")
        open_conn.cmd("DATA")
        open_conn.expect("354")
        open_conn.send(harness.dot_stuff(msg))
        open_conn.expect("250")
        self.assertDelivered(srv, "alice", msg)
        self.assertTrue(srv.running())

    def test_broken_config_refused_whole(self):
        srv = self.start_server(extra_config=[])
        srv.rewrite_config(["domain new.test users carol", "max_recipients many"])
        self.assertTrue(srv.reload(1), "no reload outcome in the log")
        log = srv.log()
        bad_line = len(harness.contract_config(srv.mx_port, srv.sub_port, srv.data_dir,
                                               srv.extra_config).splitlines())
        self.assertIn("reload refused: %s:%d:" % (srv.conf_path, bad_line), log)
        self.assertNotIn("in force", log)
        # The good line before the error was not applied; the old configuration serves on.
        self.assertGreaterEqual(self.rcpt(srv, "carol@new.test"), 500)
        self.assertEqual(self.rcpt(srv, "bob@example.test"), 250)
        self.assertTrue(srv.running())

    def test_unreadable_config_refused(self):
        srv = self.start_server(extra_config=[])
        os.rename(srv.conf_path, srv.conf_path + ".gone")
        self.assertTrue(srv.reload(1), "no reload outcome in the log")
        self.assertIn("reload refused: ", srv.log())
        self.assertEqual(self.rcpt(srv, "bob@example.test"), 250)
        os.rename(srv.conf_path + ".gone", srv.conf_path)

    def test_listener_opened_and_closed(self):
        srv = self.start_server(extra_config=[])
        (extra_port,) = harness.free_ports(1)
        srv.rewrite_config(["listen mx 127.0.0.1:%d" % extra_port])
        self.assertTrue(srv.reload(1), "no reload outcome in the log")
        srv.wait_ready(port=extra_port, timeout=5)
        held = self.connect(extra_port)  # a session on the listener about to be removed
        held.ehlo()
        srv.rewrite_config([])
        self.assertTrue(srv.reload(2), "no reload outcome in the log")
        self.assertTrue(harness.wait_until(lambda: self.refused(extra_port), 5),
                        "the removed listener still accepts")
        held.cmd("NOOP")
        held.expect("250")
        srv.wait_ready()  # the kept listener still serves
        # The slot of the closed listener is reused once its session is gone.
        held.cmd("QUIT")
        held.expect("221")
        srv.rewrite_config(["listen mx 127.0.0.1:%d" % extra_port])
        self.assertTrue(srv.reload(3), "no reload outcome in the log")
        srv.wait_ready(port=extra_port, timeout=5)

    def test_log_file_reopened_on_usr1_and_hup(self):
        log = os.path.join(self.mkdtemp(), "clearmta.log")
        srv = self.start_server(extra_config=["log_file %s" % log])
        self.assertTrue(harness.wait_until(lambda: "clearmta ready" in open(log).read(), 5))
        for n, sig in enumerate((signal.SIGUSR1, signal.SIGHUP)):
            os.rename(log, "%s.%d" % (log, n))  # as logrotate moves it
            srv.signal(sig)
            self.assertTrue(harness.wait_until(lambda: os.path.exists(log), 5),
                            "signal %d did not reopen the log" % sig)
            c = self.connect(srv)
            c.ehlo()
            send_transaction(c, "sender@example.org", ["bob@example.test"],
                             make_message("t50-log-%d" % n))
            c.cmd("QUIT")
            self.assertTrue(harness.wait_until(lambda: "status=sent" in open(log).read(), 10),
                            "the delivery was not logged to the reopened file")
        self.assertIn("clearmta ready", open(log + ".0").read())

    def test_shutdown_timeout_closes_busy_session(self):
        srv = self.start_server(extra_config=["shutdown_timeout 1"])
        busy = self.connect(srv)
        busy.ehlo()
        for line, code in (("MAIL FROM:<sender@example.org>", "250"),
                           ("RCPT TO:<alice@example.test>", "250"), ("DATA", "354")):
            busy.cmd(line)
            busy.expect(code)  # in the middle of DATA: busy until the timeout
        srv.signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(8), 0, "no exit 0 within the 1 s shutdown_timeout")
        self.assertIn("grace period over", srv.log())
        try:
            busy.closed(timeout=2)
        except (AssertionError, socket.error):
            pass


if __name__ == "__main__":
    unittest.main()
