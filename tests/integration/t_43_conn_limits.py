"""t_43_conn_limits — limits on how clients connect and talk: max_connections_per_ip (421 4.7.0
with max_sessions_per_minute_per_ip set too), max_sessions_per_minute_per_ip (the 4th session
of a client address in a minute gets 421 4.7.0, other addresses go on), max_commands_per_second
(a client flooding NOOPs is slowed, then gets 421 4.7.0; a client at a normal pace is not)."""
import time
import unittest

from harness import ClientThread, Conn, ServerTestCase, make_message, send_transaction

# Loopback addresses of their own, so the harness's readiness probe (from 127.0.0.1) does not
# use up a session of the client under test.
CLIENT = "127.0.0.3"
OTHER = "127.0.0.4"


class ConnLimits(ServerTestCase):
    def conn(self, srv, source=CLIENT, greet=True, timeout=10.0):
        c = Conn(srv.mx_port, source=source, timeout=timeout)
        self.addCleanup(c.close)
        if greet:
            c.expect("220")
        return c

    def session(self, srv, source=CLIENT):
        """One whole short session: greeting, EHLO, QUIT."""
        c = self.conn(srv, source)
        c.ehlo()
        c.cmd("QUIT")
        c.expect("221")
        self.assertTrue(c.closed())

    def test_sessions_per_minute_per_ip(self):
        srv = self.start_server(extra_config=["max_sessions_per_minute_per_ip 3"])
        for _ in range(3):
            self.session(srv)
        fourth = self.conn(srv, greet=False)
        fourth.expect("421 4.7.0")
        self.assertTrue(fourth.closed(), "connection left open after 421")
        # Refused sessions do not open the door: still refused, and still at once.
        again = self.conn(srv, greet=False)
        again.expect("421 4.7.0", timeout=5)
        # Another address is counted on its own.
        for _ in range(3):
            self.session(srv, OTHER)

    def test_connections_per_ip_with_session_rate(self):
        srv = self.start_server(extra_config=["max_connections_per_ip 2",
                                              "max_sessions_per_minute_per_ip 10"])
        held = [self.conn(srv) for _ in range(2)]
        third = self.conn(srv, greet=False)
        third.expect("421 4.7.0", "too many connections from your IP")
        self.assertTrue(third.closed())
        for c in held:
            c.cmd("NOOP")
            c.expect("250")

    def test_flooding_client_slowed_then_421(self):
        rate = 10
        srv = self.start_server(extra_config=["max_commands_per_second %d" % rate])
        normal = self.conn(srv, OTHER)
        flood = self.conn(srv, timeout=30.0)
        flood.ehlo()
        noops = 2000
        flood.send(b"NOOP\r\n" * noops)  # all at once: far over the rate
        # A client at a normal pace on the side, meanwhile: answered promptly, never cut.
        paced = ClientThread(self.paced_client, normal, rate)
        paced.start()
        started = time.monotonic()
        answered, last = 0, None
        while True:
            last = flood.reply(timeout=30)
            if last.code != 250:
                break
            answered += 1
            self.assertLess(answered, noops, "every NOOP answered: the flood was not limited")
        took = time.monotonic() - started
        self.assertTrue(last.first.startswith("421 4.7.0"), last.text)
        self.assertTrue(flood.closed(), "connection left open after 421")
        # Slowed first: at the rate, the answers before the 421 took their time (the server
        # gives a flooding client some seconds of delays before it gives up on it).
        self.assertGreater(took, 1.0, "421 after %d NOOPs in %.2f s: not slowed first"
                           % (answered, took))
        paced.join(30)
        self.assertFalse(paced.is_alive())
        if paced.error:
            raise paced.error

    def paced_client(self, c, rate):
        """NOOPs at half the rate, then a transaction: each answered at once, never cut."""
        c.ehlo()
        for i in range(10):
            started = time.monotonic()
            c.cmd("NOOP")
            c.expect("250")
            if time.monotonic() - started > 2.0:  # never held back like the flood
                raise AssertionError("NOOP %d of a paced client took %.2f s"
                                     % (i, time.monotonic() - started))
            time.sleep(2.0 / rate)
        r = send_transaction(c, "sender@example.org", ["alice@example.test"],
                             make_message("t43-paced"))
        self.assertTrue(r.first.startswith("250 2.0.0"), r.text)
        c.cmd("QUIT")
        c.expect("221")


if __name__ == "__main__":
    unittest.main()
