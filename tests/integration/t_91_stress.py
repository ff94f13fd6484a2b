"""t_91_stress — stress mode: past the high-water mark the log says so, a silent client is
timed out after the short stress timeout (not the normal 300 s), an address holding per_ip
connections is refused with 421 4.7.0, and at the connection limit the oldest client idle
before EHLO gives its place to a new one (421 4.3.2 "server busy"); below the low-water mark
stress ends and the normal rules are back."""
import time
import unittest

from harness import Conn, ServerTestCase, make_message, send_transaction, wait_until


class Stress(ServerTestCase):
    def conn(self, srv, source, greet=True, timeout=10.0):
        c = Conn(srv.mx_port, source=source, timeout=timeout)
        self.addCleanup(c.close)
        if greet:
            c.expect("220")
        return c

    def busy(self, srv, n, first=0):
        """n clients from addresses of their own, each past EHLO."""
        clients = []
        for i in range(n):
            c = self.conn(srv, "127.0.3.%d" % (first + i + 1))
            c.ehlo()
            clients.append(c)
        return clients

    def test_stress_timeouts_per_ip_and_end(self):
        srv = self.start_server(extra_config=[
            "max_connections 20", "stress on high=50 low=1 timeout=3 per_ip=3"])
        held = self.busy(srv, 9)
        self.assertNotIn("stress: begins", srv.log())
        # The tenth connection reaches the high-water mark.
        held += self.busy(srv, 1, first=9)
        self.assertTrue(wait_until(lambda: "stress: begins at 10 connections" in srv.log(), 5),
                        srv.log())
        # per_ip: three from one address, the fourth is refused.
        same = [self.conn(srv, "127.0.4.2") for _ in range(3)]
        fourth = self.conn(srv, "127.0.4.2", greet=False)
        fourth.expect("421 4.7.0", "from your IP")
        # Every client that stays silent gets the stress timeout, not the normal 300 s.
        silent = self.conn(srv, "127.0.4.1", timeout=15)
        started = time.monotonic()
        for c in [silent, held[0]] + same:
            c.expect("421 4.4.2", timeout=15)
        self.assertLess(time.monotonic() - started, 10, "the stress timeout was not in force")
        self.assertTrue(silent.closed())
        # All gone, under the low-water mark: stress ends, the normal timeout is back.
        self.assertTrue(wait_until(lambda: "stress: ends" in srv.log(), 10), srv.log())
        quiet = self.conn(srv, "127.0.4.3", timeout=5)
        with self.assertRaises(OSError):
            quiet.reply(timeout=5)  # nothing said: no timeout after 3 s any more
        more = [self.conn(srv, "127.0.4.4") for _ in range(4)]  # per_ip back to 100
        more[3].ehlo()
        msg = make_message("t91-after-stress")
        r = send_transaction(more[3], "sender@example.org", ["alice@example.test"], msg)
        self.assertEqual(r.code, 250, r.text)
        self.assertDelivered(srv, "alice", msg)

    def test_idle_before_ehlo_makes_room(self):
        srv = self.start_server(extra_config=[
            "max_connections 10", "stress on high=50 low=20 timeout=60 per_ip=5"])
        idle = [self.conn(srv, "127.0.5.%d" % (i + 1)) for i in range(3)]  # never say EHLO
        working = self.busy(srv, 7)
        self.assertTrue(wait_until(lambda: "stress: begins" in srv.log(), 5), srv.log())
        # At the limit: a new client is served, and the oldest idle one is let go.
        newcomer = self.conn(srv, "127.0.5.100")
        newcomer.ehlo()
        idle[0].expect("421 4.3.2", "server busy")
        self.assertTrue(idle[0].closed())
        self.assertIn("idle before EHLO, closed to make room", srv.log())
        for c in working[:2]:
            c.cmd("NOOP")
            c.expect("250")
        # Everyone past EHLO: no more room, the next client is refused at once.
        for c in idle[1:]:
            c.ehlo()
        late = self.conn(srv, "127.0.5.101", greet=False)
        late.expect("421 4.3.2", "too many connections")


if __name__ == "__main__":
    unittest.main()
