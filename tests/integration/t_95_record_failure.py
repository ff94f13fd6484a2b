"""t_95_record_failure — a delivery whose outcome cannot be written to the queue file (EIO on
every queue update: the testing build's fault point queue_update, src/store/fault.h) may be
repeated, as the log says, but by the retry schedule: not at once, again and again. Found by the
fault soak (tests/soak/faults.py): the relay got up to 197 copies of one message in 3 s."""
import time
import unittest

from harness import auth_server, is_testing_build, make_message, wait_until
from t_30_deliver import DeliverCase

WATCH = 3.0  # seconds of repeats watched after the first copy
# retry_first 1 / retry_max 2: at most one try a second, so a few copies in WATCH seconds.
MOST_COPIES = 5


class RecordFailure(DeliverCase):
    # The delivery agent sweeps the file at once when no recipient is left deferred in memory
    # (deliver/agent.c, attempt_end); a failed record leaves the recipient pending on disk, so
    # the sweep then waits the retry delay rather than delivering it again at once, in a loop.
    def test_unrecorded_delivery_is_repeated_by_the_retry_schedule(self):
        if not is_testing_build():
            self.skipTest("the binary has no fault injection (not a -DCLEARMTA_TESTING build)")
        # dave is deferred, so the file stays and carol's outcome must be written in it (a
        # message with nothing left pending is removed instead, which the fault does not hit)
        relay = self.start_relay({"rcpt_by_address": {"dave@remote.example": "450 4.2.1 busy"}})
        srv = auth_server(self, env={"CLEARMTA_FAULT": "queue_update=EIO"}, extra_config=[
            "relayhost [127.0.0.1]:%d" % relay.port, "retry_first 1", "retry_max 2"])
        r = self.submit(srv, ["carol@remote.example", "dave@remote.example"],
                        make_message("t95-repeat"))
        self.assertEqual(r.code, 250, r.text)
        self.assertTrue(wait_until(lambda: relay.records(), 30), "never delivered")
        time.sleep(WATCH)
        copies = len(relay.records())
        self.assertIn("cannot record delivery outcome", srv.log())
        self.assertLessEqual(copies, MOST_COPIES,
                             "%d copies in %.0f s: repeated at once, not by the retry schedule"
                             % (copies, WATCH))


if __name__ == "__main__":
    unittest.main()
