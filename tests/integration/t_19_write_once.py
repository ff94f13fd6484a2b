"""t_19_write_once — mail for local mailboxes only is written once, straight into the Maildirs:
when the 250 arrives the message is already in new/ of every recipient (hard links: one file),
with no queue file; a SIGKILL in the middle of traffic loses no acknowledged message, leaves no
partial file in new/ and, after the restart, none of our tmp/ files (another program's tmp/
file stays); a failure at the end of DATA (fault injection on the link, sync and rename of the
write-once path) answers 451/452 and leaves nothing in tmp/ or new/."""
import os
import time
import unittest

from harness import (ServerTestCase, make_message, message_tag, send_transaction,
                     split_trace_headers, wait_until)
from storeload import copies, fault_server, send_then_kill

USERS = ("alice", "bob")
THREADS = 4
PER_THREAD = 60
KILL_AFTER = 100
SEND_TIMEOUT = 90
SETTLE_TIMEOUT = 30
STORE_FAILURES = ("452 4.3.1", "451 4.3.0")


def tmp_files(srv, user):
    d = os.path.join(srv.maildir(user), "tmp")
    try:
        return sorted(os.listdir(d))
    except FileNotFoundError:
        return []


def prime_maildirs(case, srv):
    """One message per user through the queue: the local runner creates the Maildirs (the
    write-once path takes Maildirs that exist)."""
    c = case.connect(srv)
    c.ehlo()
    for u in USERS:
        r = send_transaction(c, "sender@example.org", ["%s@example.test" % u],
                             make_message("t19-prime-" + u))
        case.assertEqual(r.code, 250, r.text)
    c.cmd("QUIT")
    c.expect("221")
    for u in USERS:
        srv.wait_mail(u, 1)
    wait_until(lambda: not srv.queue_files(), 10)


class WriteOnce(ServerTestCase):
    def test_in_new_before_the_250_without_a_queue_file(self):
        srv = self.start_server()
        prime_maildirs(self, srv)
        c = self.connect(srv)
        c.ehlo()
        for i in range(5):
            tag = "t19-once-%d" % i
            r = send_transaction(c, "sender@example.org", ["alice@example.test",
                                                           "bob@example.test"],
                                 make_message(tag, body_size=100 * i))
            self.assertEqual(r.code, 250, r.text)
            # No waiting: the 250 came after the rename into new/ and its sync.
            for u in USERS:
                found = [m for m in srv.mailbox(u, ("new",))
                         if message_tag(split_trace_headers(m)[2]) == tag]
                self.assertEqual(len(found), 1, "%s: %s not in new/ at the 250" % (u, tag))
                self.assertTrue(found[0].startswith(b"Return-Path: <sender@example.org>\r\n"))
            self.assertEqual(srv.queue_files(), [], "a queue file for an all-local message")
        paths = [p for u in USERS for p in srv.maildir_files(u, ("new",)) if "t19" not in p]
        linked = [p for p in paths if os.stat(p).st_nlink == 2]
        self.assertEqual(len(linked), 10, "alice's and bob's copies are one file, hard-linked")
        self.assertIn("relay=local", srv.log())
        self.assertEqual(srv.queue_problems(), [])

    def test_kill9_loses_nothing_acknowledged_and_leaves_no_tmp_file_of_ours(self):
        srv = self.start_server()
        prime_maildirs(self, srv)
        foreign = os.path.join(srv.maildir("alice"), "tmp", "1700000000.M1P1.other-mda")
        with open(foreign, "wb") as f:
            f.write(b"being written by another program")
        acked, attempted, _ = send_then_kill(
            self, srv, THREADS, PER_THREAD, KILL_AFTER, SEND_TIMEOUT, "t19-crash",
            lambda t, i: list(USERS) if i % 3 == 0 else [USERS[(t + i) % 2]],
            lambda i: 2000 + 997 * i)

        # Every acknowledged message is whole in new/ before any restart: nothing to recover.
        def check(when):
            found, problems = copies(srv, USERS, attempted, skip_prefix="t19-prime")
            for tag, (qid, rcpts) in sorted(acked.items()):
                for r in rcpts:
                    if found[r][tag] != 1:
                        problems.append("%s: acknowledged %s (%s): %d copies for %s"
                                        % (when, tag, qid, found[r][tag], r))
            self.assertEqual(problems, [])
        check("before the restart")
        self.restart_server(srv)
        wait_until(lambda: not srv.queue_files(), SETTLE_TIMEOUT, 0.1)
        check("after the restart")
        ours = [n for u in USERS for n in tmp_files(srv, u) if n.startswith("clearmta-")]
        self.assertEqual(ours, [], "our tmp/ files survived the restart")
        self.assertTrue(os.path.exists(foreign), "another program's tmp/ file was removed")
        self.assertEqual(srv.queue_files(), [])

    def check_failure(self, spec):
        """The Maildirs exist (made here), so the message takes the write-once path, where the
        fault (counted from the server's start) hits it."""
        srv = fault_server(self, spec)
        for u in USERS:
            os.makedirs(os.path.join(srv.maildir(u), "tmp"), exist_ok=True)
            os.makedirs(os.path.join(srv.maildir(u), "new"), exist_ok=True)
            os.makedirs(os.path.join(srv.maildir(u), "cur"), exist_ok=True)
        c = self.connect(srv)
        c.ehlo()
        r = send_transaction(c, "sender@example.org", ["alice@example.test", "bob@example.test"],
                             make_message("t19-fault", body_size=1000))
        self.assertTrue(r.first.startswith(STORE_FAILURES), "%s: %r" % (spec, r.text))
        c.cmd("QUIT")
        c.expect("221")
        time.sleep(0.3)
        for u in USERS:
            self.assertEqual(srv.maildir_files(u), [], "%s: %s got it anyway" % (spec, u))
            self.assertEqual(tmp_files(srv, u), [], "%s: left in %s's tmp/" % (spec, u))
        self.assertEqual(srv.queue_files(), [])

    def test_link_failure(self):
        self.check_failure("link=EIO")

    def test_rename_into_new_failure(self):
        # Bob's rename from tmp/ into new/: alice's file is in new/ already, and must go again.
        self.check_failure("maildir_rename=EIO@1")

    def test_move_into_the_maildir_failure(self):
        # The pool file the message was written into cannot go into alice's new/.
        self.check_failure("rename=EIO")

    def test_sync_failure(self):
        self.check_failure("sync=EIO")


if __name__ == "__main__":
    unittest.main()
