"""t_15_crash — "durable before 250": several connections send small messages, the server is
killed with SIGKILL in the middle, restarted on the same data dir, and every message that got
250 must reach its Maildirs, whole. Duplicates can only come from deliveries the kill cut
short; they are counted and reported (at most one extra copy per message)."""
import collections
import sys
import threading
import unittest

from harness import (ClientThread, Conn, ServerTestCase, dot_stuff, is_complete, make_message,
                     message_tag, queue_id, split_trace_headers, wait_until)

THREADS = 4
PER_THREAD = 80
KILL_AFTER = 150       # acknowledgements before the SIGKILL
SEND_TIMEOUT = 90      # for the whole send phase
SETTLE_TIMEOUT = 30    # for the restarted server to deliver everything


class CrashRecovery(ServerTestCase):
    def test_kill9_mid_traffic_loses_no_acknowledged_message(self):
        srv = self.start_server()
        lock = threading.Lock()
        acked = {}      # tag -> (queue id, recipients)
        attempted = {}  # tag -> recipients, for every message whose data was sent
        stop = threading.Event()

        def worker(t):
            try:
                c = Conn(srv.mx_port)
            except OSError:
                return
            try:
                c.expect("220")
                c.ehlo()
                for i in range(PER_THREAD):
                    if stop.is_set():
                        return
                    tag = "crash-%d-%03d" % (t, i)
                    rcpts = ["alice", "bob"] if i % 10 == 0 else [("alice", "bob")[(t + i) % 2]]
                    c.send(b"MAIL FROM:<sender@example.org>\r\n"
                           + b"".join(b"RCPT TO:<%s@example.test>\r\n" % r.encode()
                                      for r in rcpts) + b"DATA\r\n")
                    c.expect("250 2.1.0")
                    for _ in rcpts:
                        c.expect("250 2.1.5")
                    c.expect("354")
                    with lock:
                        attempted[tag] = rcpts
                    c.send(dot_stuff(make_message(tag, body_size=300 + 37 * i)))
                    r = c.reply()
                    if r.code != 250:
                        raise AssertionError("%s: %r" % (tag, r.text))
                    qid = queue_id(r)
                    if not qid:
                        raise AssertionError("%s: no queue id in %r" % (tag, r.text))
                    with lock:
                        acked[tag] = (qid, rcpts)
            except (OSError, AssertionError) as e:
                # After the kill every connection breaks; before it, nothing may.
                if not stop.is_set():
                    raise AssertionError("before the kill: %s" % e) from None
            finally:
                c.close()

        workers = [ClientThread(worker, t) for t in range(THREADS)]
        for w in workers:
            w.start()
        reached = wait_until(lambda: len(acked) >= KILL_AFTER
                             or not any(w.is_alive() for w in workers), SEND_TIMEOUT, 0.002)
        n_at_kill = len(acked)
        stop.set()  # first: from here on a broken connection is expected
        srv.kill9()
        for w in workers:
            w.join(15)
            self.assertFalse(w.is_alive(), "a client thread hung after the kill")
            if w.error:
                raise w.error
        self.assertTrue(reached and n_at_kill >= KILL_AFTER,
                        "only %d messages acknowledged before the kill" % n_at_kill)
        self.assertLess(len(acked), THREADS * PER_THREAD, "the kill came after all traffic")

        self.restart_server(srv)
        want = collections.Counter()
        for _tag, (_qid, rcpts) in acked.items():
            for r in rcpts:
                want[r] += 1

        def delivered():
            found = collections.defaultdict(collections.Counter)
            for user in ("alice", "bob"):
                for m in srv.mailbox(user):
                    found[user][message_tag(split_trace_headers(m)[2])] += 1
            return found

        def settled():
            f = delivered()
            missing = [t for t, (_q, rc) in acked.items() for r in rc if f[r][t] == 0]
            return not missing and not srv.queue_files()
        wait_until(settled, SETTLE_TIMEOUT, 0.1)

        found = delivered()
        problems, duplicates, extra = [], 0, 0
        for user in ("alice", "bob"):
            for m in srv.mailbox(user):
                rest = split_trace_headers(m)[2]
                tag = message_tag(rest)
                if tag not in attempted:
                    problems.append("%s: a message nobody sent: %r" % (user, rest[:80]))
                elif not is_complete(rest, tag):
                    problems.append("%s: half-written copy of %s (%d bytes)"
                                    % (user, tag, len(rest)))
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
        # A Maildir tmp file from a delivery the kill cut short is normal Maildir life (readers
        # ignore tmp/); a half-written queue file after recovery is not.
        bad_queue = [p for p in leftovers if "/maildir/" not in p]
        self.assertEqual(problems, [])
        self.assertEqual(bad_queue, [])
        self.assertEqual(queue_left, [], "messages still queued after %d s" % SETTLE_TIMEOUT)


if __name__ == "__main__":
    unittest.main()
