"""t_90_descriptors — the server under a small descriptor limit (256, set with prlimit): it
lowers max_connections to what the descriptors allow and says so; 300 slow clients leave it
answering the next one with 421 4.3.2 at once (never silence); mail flows again when they
leave. With the budget switched off (testing build), accept(2) itself runs out of descriptors:
the spare descriptor still answers 421 4.3.2, and the server does not spin on EMFILE."""
import os
import re
import time
import unittest

from harness import (BIN, Conn, Server, ServerTestCase, is_testing_build, make_message,
                     send_transaction)

LIMIT = 256
CLIENTS = 300


class LimitedServer(Server):
    """A server started under prlimit --nofile=LIMIT:LIMIT (soft and hard)."""

    def command(self):
        return ["prlimit", "--nofile=%d:%d" % (LIMIT, LIMIT)] + super().command()


def client_source(i):
    """Clients come from many loopback addresses (five each), as a flood would, so that the
    per-address limits of stress mode are not what refuses them."""
    return "127.0.%d.%d" % (1 + i // 1000, 1 + (i // 5) % 250)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Descriptors(ServerTestCase):
    def start_limited(self, env=None, extra=()):
        srv = LimitedServer(self.mkdtemp(), extra_config=list(extra), env=env)
        self.addCleanup(self._finish_server, srv)
        srv.start()
        return srv

    def hold_clients(self, srv, n):
        """Opens n clients; each greeted one says EHLO and stays. Returns (held, refusals)."""
        held, refusals = [], []
        for i in range(n):
            c = Conn(srv.mx_port, source=client_source(i), timeout=10)
            self.addCleanup(c.close)
            r = c.reply()
            if r.code == 220:
                c.ehlo()
                held.append(c)
            else:
                refusals.append(r.first)
                c.close()
        return held, refusals

    def mail_flows(self, srv, tag):
        c = self.connect(srv)
        c.ehlo()
        msg = make_message(tag)
        r = send_transaction(c, "sender@example.org", ["alice@example.test"], msg)
        self.assertEqual(r.code, 250, r.text)
        c.cmd("QUIT")
        self.assertDelivered(srv, "alice", msg)

    def test_budget_lowers_max_connections_and_answers_421(self):
        srv = self.start_limited()
        m = re.search(r"capacity: %d descriptors .*max_connections (\d+) \(lowered" % LIMIT,
                      srv.log())
        self.assertIsNotNone(m, "no capacity line in the log:\n" + srv.log())
        max_conns = int(m.group(1))
        self.assertLess(max_conns, LIMIT)
        held, refusals = self.hold_clients(srv, CLIENTS)
        self.assertEqual(len(held), max_conns)
        self.assertEqual(len(refusals), CLIENTS - max_conns)
        for first in refusals:
            self.assertTrue(first.startswith("421 4.3.2"), first)
        # The next client is told at once, not left waiting for a greeting.
        late = Conn(srv.mx_port, source="127.0.9.1", timeout=1.0)
        self.addCleanup(late.close)
        late.expect("421 4.3.2", "too many connections")
        self.assertTrue(late.closed(), "connection left open after 421")
        # The held clients are served all along.
        for c in held[:5]:
            c.cmd("NOOP")
            c.expect("250")
        for c in held:
            c.close()
        self.mail_flows(srv, "t90-after-flood")

    def test_accept_out_of_descriptors_uses_the_spare(self):
        if not is_testing_build(BIN):
            self.skipTest("needs the testing build (CLEARMTA_TEST_DESCRIPTOR_BUDGET)")
        srv = self.start_limited(env={"CLEARMTA_TEST_DESCRIPTOR_BUDGET": "off"})
        held, refusals = self.hold_clients(srv, CLIENTS)
        self.assertGreater(len(held), 0)
        self.assertGreater(len(refusals), 0, "accept never ran out of descriptors")
        for first in refusals:
            self.assertTrue(first.startswith("421 4.3.2"), first)
        late = Conn(srv.mx_port, source="127.0.9.2", timeout=1.0)
        self.addCleanup(late.close)
        late.expect("421 4.3.2")
        # Out of descriptors with clients waiting in the backlog, the loop must not spin.
        waiting = [Conn(srv.mx_port, source="127.0.9.3", timeout=10) for _ in range(3)]
        for c in waiting:
            self.addCleanup(c.close)
            c.expect("421 4.3.2")
        before = cpu_seconds(srv.proc.pid)
        time.sleep(2)
        self.assertLess(cpu_seconds(srv.proc.pid) - before, 1.0, "server spins out of descriptors")
        for c in held:
            c.close()
        self.mail_flows(srv, "t90-after-emfile")


if __name__ == "__main__":
    unittest.main()
