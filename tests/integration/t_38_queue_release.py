"""t_38_queue_release — a queue released after an outage (issue "queue-release"): messages
deferred while the relay was down all arrive, exactly once, after one `queue flush`, without a
restart and over few connections; the same when the relay first sheds load with "421 4.7.0 too
many connections", and when it is killed halfway and comes back. After each scenario every
deferred recipient has its next try scheduled."""
import re
import threading
import time
import unittest

from harness import ClientThread, free_ports, login, make_message, message_tag, starttls, wait_until
from t_30_deliver import DeliverCase
from t_35_queue_admin import QueueAdminCase

N_MESSAGES = 500
SESSIONS = 10
RELEASE_WAIT = 90.0  # the bound for the whole queue after the flush
BODY = 2000


class QueueRelease(DeliverCase, QueueAdminCase):
    def start_outage(self, fast_retry=False):
        """The contract server relaying to a port where nothing listens yet, and the port."""
        port = free_ports(1)[0]
        env = {"CONTRACT_RELAY": "127.0.0.1:%d" % port}
        if fast_retry:
            env["CONTRACT_FAST_RETRY"] = "1"
        return self.start_server(env=env), port

    def submit_many(self, srv, n=N_MESSAGES, sessions=SESSIONS):
        """n messages for user@remote.test as alice, over `sessions` parallel sessions;
        returns their tags."""
        tags = ["release-%04d" % i for i in range(n)]

        def one_session(part):
            c = self.login_submission(srv)
            for tag in part:
                self.transaction(c, "alice@example.test", ["user@remote.test"],
                                 make_message(tag, body_size=BODY))
            c.cmd("QUIT")

        threads = [ClientThread(one_session, tags[k::sessions]) for k in range(sessions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
            self.assertFalse(t.is_alive(), "a submission session did not finish")
            if t.error:
                raise t.error
        return tags

    def wait_all_deferred(self, srv, n):
        """Waits until every message had its first attempt, deferred."""
        ok = wait_until(lambda: len(re.findall(r"to=<user@remote\.test>, .*status=deferred",
                                               srv.log())) >= n, 120, interval=0.5)
        self.assertTrue(ok, "not every message was tried and deferred")

    def flush(self, srv):
        rc, out, err = self.cli(srv, "queue", "flush")
        self.assertEqual(rc, 0, err)
        return out

    def assertEachOnce(self, relay, tags, timeout=RELEASE_WAIT, dup_allowed=0):
        """Every tag arrives within timeout; at most dup_allowed of them twice or more."""
        want = set(tags)

        def seen():
            return {message_tag(r["data"].encode("latin-1")) for r in relay.records()} & want
        wait_until(lambda: len(seen()) == len(want), timeout, interval=0.5)
        missing = want - seen()
        self.assertFalse(missing, "%d message(s) never arrived, e.g. %s"
                         % (len(missing), sorted(missing)[:5]))
        counts = {}
        for r in relay.records():
            t = message_tag(r["data"].encode("latin-1"))
            counts[t] = counts.get(t, 0) + 1
        dups = [t for t, c in counts.items() if c > 1]
        self.assertLessEqual(len(dups), dup_allowed, "delivered more than once: %s" % dups[:10])

    def sessions_used(self, relay):
        return len({r["session"] for r in relay.records()})

    def test_flush_after_outage_delivers_every_message_once_over_few_connections(self):
        srv, port = self.start_outage()
        tags = self.submit_many(srv)
        self.wait_all_deferred(srv, len(tags))
        relay = self.start_relay(port=port)
        self.flush(srv)
        self.assertEachOnce(relay, tags)
        self.wait_queue_empty(srv)
        # Few connections, each carrying many messages (100 each by default).
        self.assertLessEqual(self.sessions_used(relay), len(tags) // 10,
                             "%d sessions for %d messages" % (relay.sessions, len(tags)))
        self.assertNotIn("BUG:", srv.log())

    def test_flush_while_the_relay_sheds_load_with_421(self):
        srv, port = self.start_outage(fast_retry=True)
        tags = self.submit_many(srv, n=200)
        self.wait_all_deferred(srv, len(tags))
        relay = self.start_relay(port=port, script={"busy_until": time.time() + 4})
        self.flush(srv)
        self.assertEachOnce(relay, tags)
        self.wait_queue_empty(srv)
        self.assertRegex(srv.log(), r"status=deferred \(421 4\.7\.0 Too many connections")
        self.assertLessEqual(self.sessions_used(relay), len(tags) // 5)

    def test_relay_killed_halfway_and_restarted(self):
        srv, port = self.start_outage(fast_retry=True)
        tags = self.submit_many(srv, n=300)
        self.wait_all_deferred(srv, len(tags))
        first = self.start_relay(port=port, script={"data_end_delay": 0.01})
        self.flush(srv)
        self.assertTrue(wait_until(lambda: len(first.records()) >= len(tags) // 2, RELEASE_WAIT,
                                   interval=0.1), "the first half never arrived")
        first.stop()
        time.sleep(1)
        second = self.start_relay(port=port)
        got = first.records()

        class Both:
            @staticmethod
            def records():
                return got + second.records()
        # A message whose 250 was lost with the connection is sent again: at most one per
        # connection open when the relay died (20 at most).
        self.assertEachOnce(Both, tags, dup_allowed=20)
        self.wait_queue_empty(srv)
        self.assertNotIn("BUG:", srv.log())


if __name__ == "__main__":
    unittest.main()
