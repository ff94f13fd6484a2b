"""t_15_crash — "durable before 250": several connections send small messages, the server is
killed with SIGKILL in the middle, restarted on the same data dir, and every message that got
250 must reach its Maildirs, whole. Duplicates can only come from deliveries the kill cut
short; they are counted and reported (at most one extra copy per message). Most messages are
written once (straight into the Maildirs) once the first ones made the Maildirs; the restart
removes the tmp/ files the kill left, so nothing half-written stays anywhere."""
import sys
import unittest

from harness import ServerTestCase, wait_until
from storeload import copies, send_then_kill

THREADS = 4
PER_THREAD = 80
KILL_AFTER = 150       # acknowledgements before the SIGKILL
SEND_TIMEOUT = 90      # for the whole send phase
SETTLE_TIMEOUT = 30    # for the restarted server to deliver everything
USERS = ("alice", "bob")


class CrashRecovery(ServerTestCase):
    def test_kill9_mid_traffic_loses_no_acknowledged_message(self):
        srv = self.start_server()
        acked, attempted, n_at_kill = send_then_kill(
            self, srv, THREADS, PER_THREAD, KILL_AFTER, SEND_TIMEOUT, "crash",
            lambda t, i: list(USERS) if i % 10 == 0 else [USERS[(t + i) % 2]],
            lambda i: 300 + 37 * i)

        self.restart_server(srv)

        def settled():
            f = copies(srv, USERS, attempted)[0]
            missing = [t for t, (_q, rc) in acked.items() for r in rc if f[r][t] == 0]
            return not missing and not srv.queue_files()
        wait_until(settled, SETTLE_TIMEOUT, 0.1)

        found, problems = copies(srv, USERS, attempted)
        duplicates, extra = 0, 0
        for user in USERS:
            for tag, n in found[user].items():
                if n > 2:
                    problems.append("%s: %d copies of %s" % (user, n, tag))
                duplicates += n - 1
                if tag in attempted and tag not in acked:
                    extra += 1
        for tag, (qid, rcpts) in sorted(acked.items()):
            for r in rcpts:
                if found[r][tag] == 0:
                    problems.append("acknowledged %s (queued as %s) never reached %s"
                                    % (tag, qid, r))
        leftovers = srv.queue_problems()
        queue_left = srv.queue_files()
        sys.stderr.write("\n[t_15] %d acknowledged (%d at the kill), %d sent without an answer, "
                         "%d delivered though unanswered, %d duplicate copies, "
                         "%d maildir/queue leftovers, %d queue files left\n"
                         % (len(acked), n_at_kill, len(attempted) - len(acked), extra,
                            duplicates, len(leftovers), len(queue_left)))
        for p in leftovers:
            sys.stderr.write("[t_15] leftover: %s\n" % p)
        # The kill leaves tmp/ files (Maildir and queue); the restart removes every one.
        self.assertEqual(problems, [])
        self.assertEqual(leftovers, [])
        self.assertEqual(queue_left, [], "messages still queued after %d s" % SETTLE_TIMEOUT)


if __name__ == "__main__":
    unittest.main()
