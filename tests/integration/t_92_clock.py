"""t_92_clock — a step of the wall clock (simulated through the testing build's clock hook,
CLEARMTA_TEST_CLOCK_FILE) neither expires the queue early nor stalls retries: a message
deferred by a relay that answers 451 is retried on its schedule after the clock jumps two days
forward (no 4.4.7 bounce although the queue lifetime is 60 s) and again after it jumps back a
day; the server's timeouts (monotonic) are unaffected too."""
import os
import re
import unittest

from harness import BIN, auth_server, is_testing_build, make_message, wait_until
from t_30_deliver import DeliverCase

DAY = 86400
FOREVER = {"rcpt": "451 4.3.0 Try again later"}


class ClockStep(DeliverCase):
    def setUp(self):
        if not is_testing_build(BIN):
            self.skipTest("needs the testing build (CLEARMTA_TEST_CLOCK_FILE)")

    def step(self, seconds):
        with open(self.clock_file + ".tmp", "w") as f:
            f.write("%d\n" % seconds)
        os.replace(self.clock_file + ".tmp", self.clock_file)

    def attempts(self, srv):
        return len(re.findall(r"to=<carol@remote\.example>, .*status=deferred", srv.log()))

    def test_jumps_neither_expire_nor_stall(self):
        self.clock_file = os.path.join(self.mkdtemp(), "clock")
        self.step(0)
        relay = self.start_relay(FOREVER)
        srv = auth_server(self, extra_config=[
            "relayhost [127.0.0.1]:%d" % relay.port, "retry_first 1", "retry_max 2",
            "queue_lifetime 60", "delay_warning 0", "timeout_command 30"],
            env={"CLEARMTA_TEST_CLOCK_FILE": self.clock_file})
        self.submit(srv, ["carol@remote.example"], make_message("t92-clock"))
        self.assertTrue(wait_until(lambda: self.attempts(srv) >= 1, 15), srv.log())
        idle = self.connect(srv)
        self.step(2 * DAY)  # forward: every message would look two days old
        before = self.attempts(srv)
        self.assertTrue(wait_until(lambda: self.attempts(srv) >= before + 3, 20),
                        "retries stalled after the clock went forward")
        self.step(-DAY)  # back: retry times and backoffs would lie a day ahead
        before = self.attempts(srv)
        self.assertTrue(wait_until(lambda: self.attempts(srv) >= before + 3, 20),
                        "retries stalled after the clock went back")
        self.assertNotIn("4.4.7", srv.log(), "the queue expired early")
        self.assertNotIn("queue lifetime", srv.log())
        self.assertTrue(srv.queue_files(), "the message left the queue")
        self.assertEqual(srv.maildir_files("alice"), [], "a report was sent")
        # The idle client was not timed out by either jump (timeout_command 30 s).
        idle.cmd("NOOP")
        idle.expect("250")


if __name__ == "__main__":
    unittest.main()
