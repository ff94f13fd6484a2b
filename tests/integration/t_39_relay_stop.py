"""t_39_relay_stop — after an outage the relay comes back slow to answer, then dies while every
connection to it waits for its final reply. The destination was marked unreachable (its
concurrency down to one); its first connection to get through gives it back its connections at
once, so the other messages do not wait behind that connection's slow transaction. When the
relay stops, the agent hears each connection close at once (the test relay closes all it
accepted, as a dying process does) rather than after the data timeout, and every message
reaches the relay that comes back in its place."""
import re
import time
import unittest

from harness import wait_until
from t_30_deliver import DeliverCase
from t_35_queue_admin import QueueAdminCase
import t_38_queue_release as t38  # the module, not its class: its tests are not run here

N_MESSAGES = 60
SESSIONS = 6
CLOSE_WAIT = 20.0  # far below the data timeout (600 s) the agent would otherwise wait
CLOSED = r"status=deferred \(connection closed by the server\)"


class RelayStop(DeliverCase, QueueAdminCase):
    start_outage = t38.QueueRelease.start_outage
    submit_many = t38.QueueRelease.submit_many
    wait_all_deferred = t38.QueueRelease.wait_all_deferred
    flush = t38.QueueRelease.flush
    assertEachOnce = t38.QueueRelease.assertEachOnce

    def test_relay_stopped_while_every_connection_waits_for_its_reply(self):
        srv, port = self.start_outage(fast_retry=True)
        tags = self.submit_many(srv, n=N_MESSAGES, sessions=SESSIONS)
        self.wait_all_deferred(srv, len(tags))
        # Each transaction's final reply waits far longer than the test: when the relay stops,
        # every connection is in the middle of a transaction.
        first = self.start_relay(port=port, script={"data_end_delay": 3600})
        self.flush(srv)
        self.assertTrue(wait_until(lambda: first.sessions >= 5, 30, interval=0.1),
                        "the agent did not connect to the relay")
        time.sleep(1.0)  # every connection the agent opened is in the middle of its transaction
        in_flight = first.sessions
        first.stop()
        closed = wait_until(lambda: len(re.findall(CLOSED, srv.log())) >= in_flight, CLOSE_WAIT,
                            interval=0.2)
        self.assertTrue(closed, "of %d connections open when the relay stopped, only %d closed"
                        % (in_flight, len(re.findall(CLOSED, srv.log()))))
        self.assertEachOnce(self.start_relay(port=port), tags)
        self.assertNotIn("BUG:", srv.log())


if __name__ == "__main__":
    unittest.main()
