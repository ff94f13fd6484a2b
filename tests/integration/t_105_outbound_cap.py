"""t_105_outbound_cap — the delivery agent's global cap on its own outbound connections
(max_outbound_connections, issue 17 §1): with many destinations, each allowed several
connections, and a full queue released at once, the test SMTP servers (one per destination,
counting the connections open across all of them) never see more than the cap at once, and
every message arrives exactly once. check-config and the start-up log show the cap, set or
derived from the descriptor limit, and `queue status` what is open of it."""
import os
import re
import unittest

from harness import auth_server, free_ports, make_message, message_tag, wait_until
from t_30_deliver import DeliverCase  # puts tests/ on the path, for smtp_test_server
from t_35_queue_admin import QueueAdminCase
from smtp_test_server import ConnectionGauge, SMTPTestServer  # noqa: E402

N_DEST = 8        # destinations, each with its own test server
PER_DEST = 15     # messages for each
CAP = 3           # max_outbound_connections: far below N_DEST × a destination's 5 at start
DRAIN_WAIT = 120  # seconds for the whole queue once released


class OutboundCap(DeliverCase, QueueAdminCase):
    def start_counted_relay(self, port, gauge):
        """A test SMTP server on port that counts its connections in gauge, taking a little
        time per message so that connections overlap and the cap is what bounds them."""
        rec = os.path.join(self.mkdtemp(prefix="smtp-test-"), "received.jsonl")
        relay = SMTPTestServer({"data_end_delay": 0.02}, rec, port=port, gauge=gauge).start()
        self.addCleanup(relay.stop)
        return relay

    def start_routed(self, ports, cap=CAP):
        routes = ["route d%d.example smtp:[127.0.0.1]:%d tls=none" % (k, p)
                  for k, p in enumerate(ports)]
        extra = routes + ["retry_first 2", "retry_max 10"]
        if cap:
            extra.append("max_outbound_connections %d" % cap)
        return auth_server(self, extra_config=extra)

    def test_many_destinations_never_open_more_connections_than_the_cap(self):
        ports = free_ports(N_DEST)  # nothing listens while the queue fills
        srv = self.start_routed(ports)
        tags = {}
        c = self.login_submission(srv)
        for i in range(N_DEST * PER_DEST):
            k = i % N_DEST
            tag = "cap-%d-%03d" % (k, i)
            tags[tag] = k
            self.transaction(c, "alice@example.test", ["user%d@d%d.example" % (i, k)],
                             make_message(tag, body_size=500))
        c.cmd("QUIT")
        self.assertTrue(wait_until(lambda: srv.log().count("status=deferred") >= len(tags),
                                   60, interval=0.2), "not every message was tried first")
        gauge = ConnectionGauge()
        relays = [self.start_counted_relay(p, gauge) for p in ports]
        rc, _, err = self.cli(srv, "queue", "flush")
        self.assertEqual(rc, 0, err)

        def arrived():
            return sum(len(r.records()) for r in relays)
        self.assertTrue(wait_until(lambda: arrived() >= len(tags), DRAIN_WAIT, interval=0.2),
                        "%d of %d messages arrived" % (arrived(), len(tags)))
        self.wait_queue_empty(srv)
        for k, relay in enumerate(relays):
            got = sorted(message_tag(r["data"].encode("latin-1")) for r in relay.records())
            self.assertEqual(got, sorted(t for t, d in tags.items() if d == k),
                             "destination %d: each of its messages exactly once" % k)
        self.assertLessEqual(gauge.peak, CAP, "more outbound connections than the cap")
        self.assertGreaterEqual(gauge.peak, 2, "the connections never overlapped: no test")
        self.assertRegex(srv.log(), r"capacity: .*max_outbound_connections %d\b" % CAP)
        status = self.queue_json(srv, "status")["outbound"]
        self.assertEqual(status["max"], CAP)
        self.assertLessEqual(status["open"], CAP)
        self.assertEqual(status["waiting"], 0)
        rc, out, err = self.cli(srv, "queue", "status")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"outbound: \d connections? open of %d \(max_outbound" % CAP)
        self.assertNotIn("BUG:", srv.log())

    def test_check_config_shows_the_cap_set_or_derived(self):
        srv = self.start_routed(free_ports(1))
        rc, out, err = self.cli(srv, "check-config")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"(?m)^max_outbound_connections +%d$" % CAP)
        self.finish_server(srv)
        srv = self.start_routed(free_ports(1), cap=0)
        rc, out, err = self.cli(srv, "check-config")
        self.assertEqual(rc, 0, err)
        m = re.search(r"(?m)^max_outbound_connections +(\d+) \(from the descriptor limit \d+\)$",
                      out)
        self.assertIsNotNone(m, out)
        self.assertRegex(srv.log(), r"max_outbound_connections %s\b" % m.group(1))


if __name__ == "__main__":
    unittest.main()
