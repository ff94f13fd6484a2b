"""t_37_adaptive — the delivery agent learns from a destination's replies (issue "Deliver",
item 3): a greeting "421 4.7.0 too many connections" halves the destination's concurrency and
starts a backoff, both visible in `clearmta queue status --json`; the message is delivered
once the destination accepts again, and success is counted toward growing back. A server that
stops answering is given up after delivery_timeout_command and the message is retried."""
import json
import unittest

from harness import auth_server, make_message, wait_until
from t_30_deliver import RETRY_WAIT, DeliverCase
from t_35_queue_admin import QueueAdminCase


class Adaptive(DeliverCase, QueueAdminCase):
    def destination(self, srv):
        """The relay's destination in `queue status --json`, or None before the first try."""
        rc, out, err = self.cli(srv, "queue", "status", "--json")
        self.assertEqual(rc, 0, err)
        dests = json.loads(out)["destinations"]
        return dests[0] if dests else None

    def test_421_too_many_connections_lowers_concurrency_and_backs_off(self):
        srv, relay = self.start_pair({"sessions": [
            {"greeting": "421 4.7.0 Too many connections from your IP, try again later"},
            {}]})
        msg = make_message("adaptive-421")
        self.submit(srv, ["carol@remote.example"], msg)
        self.assertIsNotNone(srv.wait_log(r"to=<carol@remote\.example>, .*attempt=1, .*"
                                          r"status=deferred \(421 4\.7\.0 Too many connections"))
        d = wait_until(lambda: self.destination(srv), RETRY_WAIT, interval=0.2)
        self.assertTrue(d, "no destination in queue status")
        # Learned from the 421: concurrency halved from its start of 5, a backoff with the
        # reply as its reason (or already over, when the retry came first).
        self.assertLess(d["concurrency"], 5, d)
        self.assertGreaterEqual(d["concurrency"], 1, d)
        if d["backoff_until"] is not None:
            self.assertIn("421 4.7.0", d["backoff_reason"], d)
        # The destination accepts again: the retry delivers, once.
        self.assertRelayed(self.wait_records(relay, 1)[0], msg)
        self.wait_queue_empty(srv)
        after = self.destination(srv)
        self.assertEqual(after["failures"], 0, after)
        self.assertIsNone(after["backoff_until"], after)
        self.assertEqual(len(relay.records()), 1)

    def test_silent_server_times_out_and_the_retry_delivers(self):
        relay = self.start_relay({"sessions": [{"rcpt": "hang"}, {}]})
        srv = auth_server(self, extra_config=["relayhost [127.0.0.1]:%d" % relay.port,
                                              "retry_first 1", "retry_max 2",
                                              "delivery_timeout_command 2"])
        msg = make_message("adaptive-timeout")
        self.submit(srv, ["carol@remote.example"], msg)
        self.assertIsNotNone(srv.wait_log(r"to=<carol@remote\.example>, .*attempt=1, .*"
                                          r"status=deferred"))
        self.assertRelayed(self.wait_records(relay, 1)[0], msg)
        self.wait_queue_empty(srv)
        self.assertEqual(len(relay.records()), 1)


if __name__ == "__main__":
    unittest.main()
