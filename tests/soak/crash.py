#!/usr/bin/env python3
"""tests/soak/crash.py — the crash soak (not part of make test): 8 senders send without pause
(half on the MX port to local users, half on the submission port with STARTTLS and AUTH, to
local users and to a remote domain relayed to a test SMTP server), the server is killed with
SIGKILL at a random moment, its queue checked for half-written files, and restarted on the same
data; CYCLES times. At the end every acknowledged message (250 with a queue id) must have
reached each of its recipients (Maildir or relay); copies beyond one are counted as
duplicates (a delivery the kill cut short after the Maildir rename or the relay's 250, before
the queue recorded it: the documented window). Messages for local users only are written once
(straight into the Maildir, published in new/ before the 250, no queue file): their duplicates
are counted apart and must be 0, and their tmp/ leftovers are not messages.

    python3 tests/soak/crash.py [--cycles 200] [--max-seconds S] [--bin build/clearmta] [--seed N]
"""
import argparse
import collections
import os
import random
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, ".."))
import harness  # noqa: E402
from smtp_test_server import SMTPTestServer  # noqa: E402

SENDERS = 8


class Soak:
    def __init__(self, srv):
        self.srv = srv
        self.lock = threading.Lock()
        self.acked = {}  # tag -> recipients
        self.seq = 0

    def next_tag(self, t):
        with self.lock:
            self.seq += 1
            return "soak-%d-%06d" % (t, self.seq)

    def sender(self, t, stop):
        """Sends until the connection breaks (the kill) or stop is set."""
        submission = t % 2 == 1
        try:
            port = self.srv.sub_port if submission else self.srv.mx_port
            c = harness.Conn(port, timeout=10)
            c.expect("220")
            if submission:
                harness.starttls(c)
                harness.login(c)
            else:
                c.ehlo()
            while not stop.is_set():
                tag = self.next_tag(t)
                rcpts = [("alice", "bob")[self.seq % 2] + "@example.test"]
                if submission and self.seq % 3 == 0:
                    rcpts.append("carol@remote.example")
                msg = harness.make_message(tag, body_size=200 + self.seq % 5000,
                                           sender="alice@example.test")
                r = harness.send_transaction(c, "alice@example.test", rcpts, msg)
                if r.code == 250 and harness.queue_id(r):
                    with self.lock:
                        self.acked[tag] = rcpts
        except (OSError, AssertionError, harness.ConnectionClosed):
            return  # the server died under it

    def cycle(self, rng):
        stop = threading.Event()
        threads = [threading.Thread(target=self.sender, args=(t, stop), daemon=True)
                   for t in range(SENDERS)]
        for th in threads:
            th.start()
        time.sleep(rng.uniform(0.2, 1.5))
        self.srv.kill9()
        stop.set()
        for th in threads:
            th.join(15)


def delivered_counts(srv, relay):
    counts = collections.Counter()
    for user in ("alice", "bob"):
        for raw in srv.mailbox(user):
            tag = harness.message_tag(raw)
            if tag:
                counts[(tag, user + "@example.test")] += 1
    for rec in relay.records():
        tag = harness.message_tag(rec["data"].encode("latin-1"))
        for rcpt in rec["rcpt_to"]:
            counts[(tag, rcpt)] += 1
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--bin", default=os.path.join(harness.REPO, "build", "clearmta"))
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--max-seconds", type=float, default=0,
                    help="start no cycle after this many seconds (0: no limit)")
    a = ap.parse_args()
    harness.BIN = os.path.abspath(a.bin)
    rng = random.Random(a.seed)
    data = tempfile.mkdtemp(prefix="clearmta-crash-")
    relay = SMTPTestServer({}, os.path.join(data, "relay.jsonl"),
                           port=harness.free_ports(1)[0]).start()
    users = harness.write_users_file(os.path.join(data, "users"))
    srv = harness.Server(os.path.join(data, "srv"), work_dir=data, extra_config=[
        "users_file %s" % users, "relayhost [127.0.0.1]:%d" % relay.port,
        "retry_first 1", "retry_max 2"])
    os.makedirs(srv.data_dir, exist_ok=True)
    soak = Soak(srv)
    started = time.monotonic()
    problems = []
    cycles = 0
    try:
        for n in range(a.cycles):
            if a.max_seconds and time.monotonic() - started > a.max_seconds:
                break
            srv.start()
            # Restarted after a kill: the queue holds only whole files (a Maildir's tmp/ may
            # keep the file a kill cut short; Maildir readers ignore tmp/).
            p = [x for x in srv.queue_problems() if os.sep + "maildir" + os.sep not in x]
            if p:
                problems.append((n, p[:3]))
            soak.cycle(rng)
            cycles += 1
        srv.start()
        want = {(tag, r) for tag, rcpts in soak.acked.items() for r in rcpts}
        harness.wait_until(lambda: want <= set(delivered_counts(srv, relay)), 300, 3)
        counts = delivered_counts(srv, relay)
    finally:
        srv.stop()  # also when the soak itself failed: no server left behind
        relay.stop()
    lost = sorted(w for w in want if counts[w] == 0)
    dups = sum(c - 1 for w, c in counts.items() if w in want and c > 1)
    local_only = {tag for tag, rcpts in soak.acked.items()
                  if all(r.endswith("@example.test") for r in rcpts)}
    dups_once = sum(c - 1 for w, c in counts.items()
                    if w in want and c > 1 and w[0] in local_only)
    took = time.monotonic() - started
    print("crash soak: %d cycles of kill -9 in %.0f s (seed %d), %d senders" %
          (cycles, took, a.seed, SENDERS))
    print("  acknowledged messages %d (deliveries owed %d); lost %d; duplicate copies %d; "
          "queue problems after a kill: %d" % (len(soak.acked), len(want), len(lost), dups,
                                               len(problems)))
    print("  of which for local users only (the write-once path): messages %d, duplicate "
          "copies %d" % (len(local_only), dups_once))
    for w in lost[:10]:
        print("  lost: %s to %s" % w)
    for n, p in problems[:5]:
        print("  cycle %d: %s" % (n, p))
    ok = not lost and not problems and dups_once == 0
    print("RESULT %s (data in %s)" % ("ok" if ok else "FAILED", data))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
