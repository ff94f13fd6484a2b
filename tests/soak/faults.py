#!/usr/bin/env python3
"""tests/soak/faults.py — the fault soak (not part of make test; root: it mounts filesystems).
Senders send without pause (half on the MX port to local users, half on the submission port with
STARTTLS and AUTH to local users and to a remote domain relayed to a test SMTP server) while the
store fails under them, in three parts:

  tmpfs  the data directory on a small tmpfs that a filler file fills to the last byte and then
         frees again, --fills times (release build);
  ro     the data directory on an ext4 image mounted errors=remount-ro; the kernel is told the
         filesystem has an error (/sys/fs/ext4/<dev>/trigger_fs_error), so it turns read-only
         under the running server, open files included; then the server is stopped, the image
         checked (e2fsck) and mounted read-write again, and the server restarted on it (release
         build). A plain `mount -o remount,ro` is refused (EBUSY) while the server holds files
         open for writing, so an administrator cannot do this to a running server; a failing
         disk can;
  eio    the testing build's fault points (CLEARMTA_FAULT, src/store/fault.h): EIO on every
         sync, rename, write, hard link and queue update of the queue and the Maildirs in turn,
         then on a single call of each, one server run per fault on the same data; then a run
         without faults.

Each part passes when: no reply is 5xx (a failing store says 4xx), no server crashed or left a
sanitizer report, the server accepts mail again once the fault is gone, and every message that
got 250 reached every recipient (Maildir or relay) or is still queued, whole.

    python3 tests/soak/faults.py [--parts tmpfs,ro,eio] [--fills 6] [--bin build/clearmta]
                                 [--testing-bin build/asan/clearmta]
"""
import argparse
import collections
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, ".."))
import harness  # noqa: E402
from smtp_test_server import SMTPTestServer  # noqa: E402

SENDERS = 6
PAUSE = 0.01  # seconds between a sender's messages
LOCAL_USERS = ("alice", "bob")
REMOTE = "carol@remote.example"
PERSISTENT_FAULTS = ("sync", "rename", "write", "maildir_write", "maildir_sync",
                     "maildir_rename", "link", "queue_update")
SINGLE_FAULTS = ("sync=EIO@40", "rename=EIO@40", "maildir_sync=EIO@40", "maildir_rename=EIO@40",
                 "link=EIO@20", "queue_update=EIO@20")


class Load:
    """SENDERS threads sending until stopped; every reply that ends a message is counted under
    the current window's name, every 250 with a queue id remembered with its recipients."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.lock = threading.Lock()
        self.acked = {}  # tag -> recipients
        self.acked_in = {}  # tag -> the window of its 250
        self.replies = collections.defaultdict(collections.Counter)  # window -> code -> n
        self.bad = []    # 5xx replies: (window, tag, text)
        self.window = "before"
        self.seq = 0
        self.srv = None
        self.stop = threading.Event()
        self.threads = []

    def count(self, code, tag, text):
        with self.lock:
            self.replies[self.window][code] += 1
            if code >= 500:
                self.bad.append((self.window, tag, text))

    def transaction(self, c, t, submission):
        with self.lock:
            self.seq += 1
            seq = self.seq
        tag = "%s-%d-%06d" % (self.prefix, t, seq)
        rcpts = [LOCAL_USERS[seq % 2] + "@example.test"]
        if submission and seq % 3 == 0:
            rcpts.append(REMOTE)
        steps = ["MAIL FROM:<alice@example.test>"] + ["RCPT TO:<%s>" % r for r in rcpts]
        for step in steps + ["DATA"]:
            c.cmd(step)
            r = c.reply()
            if r.code >= 400:
                self.count(r.code, tag, r.text)
                if r.code == 421:
                    raise harness.ConnectionClosed("421")
                c.cmd("RSET")
                c.reply()
                return r.code
        c.send(harness.dot_stuff(harness.make_message(tag, body_size=200 + seq % 5000,
                                                      sender="alice@example.test")))
        r = c.reply()
        self.count(r.code, tag, r.text)
        if r.code == 250 and harness.queue_id(r):
            with self.lock:
                self.acked[tag] = rcpts
                self.acked_in[tag] = self.window
        return r.code

    def sender(self, t):
        submission = t % 2 == 1
        while not self.stop.is_set():
            c = None
            try:
                srv = self.srv
                c = harness.Conn(srv.sub_port if submission else srv.mx_port, timeout=15)
                r = c.reply()
                if r.code != 220:
                    self.count(r.code, "connect", r.text)
                    raise harness.ConnectionClosed(r.text)
                if submission:
                    harness.starttls(c)
                    harness.login(c)
                else:
                    c.ehlo()
                while not self.stop.is_set():
                    # Paced, so that the mail itself does not fill the small filesystems.
                    code = self.transaction(c, t, submission)
                    time.sleep(0.05 if code >= 400 else PAUSE)
            except (OSError, AssertionError, harness.ConnectionClosed):
                time.sleep(0.1)  # the server closed, went away or refused: connect again
            finally:
                if c is not None:
                    c.close()

    def start(self, srv):
        self.srv = srv
        self.stop.clear()
        self.threads = [threading.Thread(target=self.sender, args=(t,), daemon=True)
                        for t in range(SENDERS)]
        for th in self.threads:
            th.start()

    def finish(self):
        self.stop.set()
        for th in self.threads:
            th.join(30)

    def set_window(self, name):
        with self.lock:
            self.window = name


def delivered_counts(srv, relay, prefix):
    counts = collections.Counter()
    for user in LOCAL_USERS:
        for raw in srv.mailbox(user):
            tag = harness.message_tag(raw)
            if tag and tag.startswith(prefix + "-"):
                counts[(tag, user + "@example.test")] += 1
    for rec in relay.records():
        tag = harness.message_tag(rec["data"].encode("latin-1"))
        if tag and tag.startswith(prefix + "-"):
            for rcpt in rec["rcpt_to"]:
                counts[(tag, rcpt)] += 1
    return counts


def queued_tags(srv):
    tags = set()
    for path in srv.queue_files():
        if harness.queue_file_problem(path):
            continue
        with open(path, "rb") as f:
            tags.add(harness.message_tag(f.read().split(b"\n\n", 1)[-1]))
    return tags


class Part:
    """One part's server settings, its load and its verdict."""

    def __init__(self, name, scratch, relay, users):
        self.name = name
        self.scratch = scratch
        self.relay = relay
        self.users = users
        self.load = Load(name)
        self.problems = []
        self.started = time.monotonic()
        self.notes = []
        self.dups_by_window = collections.Counter()

    def server(self, data_dir, extra=(), env=None):
        return harness.Server(data_dir, work_dir=self.scratch, env=env, extra_config=[
            "users_file %s" % self.users, "relayhost [127.0.0.1]:%d" % self.relay.port,
            "retry_first 1", "retry_max 2"] + list(extra))

    def stop_server(self, srv, what):
        rc, killed = srv.stop()
        if killed or rc != 0:
            self.problems.append("%s: exit %s%s" % (what, rc, " after SIGKILL" if killed else ""))
        if srv.sanitizer_report():
            self.problems.append("%s: sanitizer report in %s" % (what, srv.log_path))

    def start_loaded(self, srv):
        """Starts srv on a new data directory, the load on it, and 3 s of mail before the
        fault."""
        os.makedirs(srv.data_dir)
        srv.start()
        self.load.start(srv)
        self.run_window("before", 3)

    def run_window(self, name, seconds):
        self.load.set_window(name)
        time.sleep(seconds)

    def verify(self, srv):
        """After the load: waits for the deliveries, then checks every acknowledged message."""
        want = {(tag, r) for tag, rcpts in self.load.acked.items() for r in rcpts}
        harness.wait_until(lambda: want <= set(delivered_counts(srv, self.relay, self.name)),
                           120, 2)
        counts = delivered_counts(srv, self.relay, self.name)
        queued = queued_tags(srv)
        missing = sorted(w for w in want if counts[w] == 0)
        lost = [w for w in missing if w[0] not in queued]
        dups = sum(c - 1 for w, c in counts.items() if w in want and c > 1)
        self.dups_by_window = collections.Counter()
        for w, c in counts.items():
            if w in want and c > 1:
                self.dups_by_window[self.load.acked_in[w[0]]] += c - 1
        half = srv.queue_problems()
        half = [p for p in half if os.sep + "maildir" + os.sep not in p]
        if lost:
            self.problems.append("lost %d, e.g. %s" % (len(lost), lost[:3]))
        if half:
            self.problems.append("queue problems: %s" % half[:3])
        if self.load.bad:
            self.problems.append("%d replies 5xx, e.g. %s" % (len(self.load.bad),
                                                            self.load.bad[:3]))
        after = self.load.replies.get("after", {})
        if not after.get(250):
            self.problems.append("no message accepted once the fault was gone")
        return len(want), len(missing) - len(lost), dups, len(lost)

    def report(self, owed, queued, dups, lost):
        took = time.monotonic() - self.started
        print("fault soak, part %s: %.0f s, %d messages acknowledged (%d deliveries owed), "
              "lost %d, still queued %d, duplicate copies %d" %
              (self.name, took, len(self.load.acked), owed, lost, queued, dups))
        for window, codes in self.load.replies.items():
            dups = self.dups_by_window.get(window)
            print("  %-22s %s%s" % (window + ":", ", ".join(
                "%d×%d" % (n, code) for code, n in sorted(codes.items())),
                "; duplicate copies %d" % dups if dups else ""))
        for n in self.notes:
            print("  " + n)
        for p in self.problems:
            print("  PROBLEM " + p)
        return not self.problems


def part_tmpfs(a, scratch, relay, users):
    p = Part("tmpfs", scratch, relay, users)
    mnt = os.path.join(scratch, "tmpfs")
    os.makedirs(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % a.tmpfs_mb, "tmpfs", mnt],
                   check=True)
    srv = p.server(os.path.join(mnt, "srv"), extra=["min_free_disk 1M"])
    try:
        p.start_loaded(srv)
        filler = os.path.join(mnt, "filler")
        for n in range(a.fills):
            fill(filler)
            p.run_window("full", 3)
            if not srv.running():
                p.problems.append("the server died with the disk full (fill %d)" % n)
                break
            os.unlink(filler)
            p.run_window("freed", 3)
        p.run_window("after", 3)
        p.load.finish()
        result = p.verify(srv)
        p.notes.append("tmpfs of %d MiB filled and freed %d times; %d MiB used at the end" %
                       (a.tmpfs_mb, a.fills, used_mb(mnt)))
    finally:
        p.load.finish()
        p.stop_server(srv, "server")
        subprocess.run(["umount", mnt])
    return p.report(*result)


def fill(path):
    """Appends to path until the filesystem has not one byte left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)


def used_mb(path):
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize // (1 << 20)


def loop_device(mnt):
    with open("/proc/mounts") as f:
        for line in f:
            dev, where = line.split()[:2]
            if where == mnt:
                return os.path.basename(os.path.realpath(dev))
    raise RuntimeError("%s is not mounted" % mnt)


def part_ro(a, scratch, relay, users):
    p = Part("ro", scratch, relay, users)
    img, mnt = os.path.join(scratch, "ext4.img"), os.path.join(scratch, "ext4")
    os.makedirs(mnt)
    subprocess.run(["truncate", "-s", "%dM" % a.ext4_mb, img], check=True)
    subprocess.run(["mkfs.ext4", "-q", img], check=True)
    mount = ["mount", "-o", "loop,errors=remount-ro", img, mnt]
    subprocess.run(mount, check=True)
    srv = p.server(os.path.join(mnt, "srv"), extra=["min_free_disk 1M"])
    try:
        p.start_loaded(srv)
        p.load.set_window("read-only")
        with open("/sys/fs/ext4/%s/trigger_fs_error" % loop_device(mnt), "w") as f:
            f.write("fault soak\n")
        time.sleep(6)
        if not srv.running():
            p.problems.append("the server died when the filesystem turned read-only")
        p.load.set_window("stopping")
        p.stop_server(srv, "server on the read-only filesystem")
        subprocess.run(["umount", mnt], check=True)
        fsck = subprocess.run(["e2fsck", "-fy", img], capture_output=True, text=True)
        p.notes.append("e2fsck after the error: exit %d" % fsck.returncode)
        subprocess.run(mount, check=True)
        srv.start()
        p.run_window("after", 4)
        p.load.finish()
        result = p.verify(srv)
    finally:
        p.load.finish()
        p.stop_server(srv, "server after the remount")
        subprocess.run(["umount", mnt])
    return p.report(*result)


def start_with_fault(p, data_dir, spec):
    """A testing-build server failing spec on the existing data; when spec stops it from starting
    (the store syncs at startup too), the first call after startup that lets it start."""
    tries = [spec] if "@" in spec else [spec] + ["%s@%d" % (spec, n) for n in range(1, 9)]
    for attempt in tries:
        srv = p.server(data_dir, env={"CLEARMTA_FAULT": attempt})
        srv.start(wait=False)
        try:
            srv.wait_ready()
            return srv, attempt
        except AssertionError:
            srv.stop()
            if srv.sanitizer_report():
                p.problems.append("start with %s: sanitizer report in %s" % (attempt,
                                                                            srv.log_path))
    p.problems.append("no start with CLEARMTA_FAULT %s" % spec)
    return None, None


def part_eio(a, scratch, relay, users):
    harness.BIN = os.path.abspath(a.testing_bin)
    p = Part("eio", scratch, relay, users)
    if not harness.is_testing_build():
        p.problems.append("%s has no fault points (not a testing build)" % a.testing_bin)
        return p.report(0, 0, 0, 0)
    data_dir = os.path.join(scratch, "data")
    os.makedirs(data_dir)
    srv = p.server(data_dir)
    srv.start()
    p.load.start(srv)
    try:
        p.run_window("before", 3)
        specs = ["%s=EIO" % op for op in PERSISTENT_FAULTS] + list(SINGLE_FAULTS)
        for spec in specs:
            p.load.set_window("switching")
            p.stop_server(srv, "server before %s" % spec)
            srv, used = start_with_fault(p, data_dir, spec)
            if srv is None:
                continue
            p.load.srv = srv
            p.run_window(used, 3)
            if not srv.running():
                p.problems.append("the server died under %s" % used)
        p.load.set_window("switching")
        if srv is not None:
            p.stop_server(srv, "server after the faults")
        srv = p.server(data_dir)
        srv.start()
        p.load.srv = srv
        p.run_window("after", 3)
        p.load.finish()
        result = p.verify(srv)
    finally:
        p.load.finish()
        if srv is not None:
            p.stop_server(srv, "server without faults")
    return p.report(*result)


PARTS = {"tmpfs": part_tmpfs, "ro": part_ro, "eio": part_eio}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", default="tmpfs,ro,eio")
    ap.add_argument("--fills", type=int, default=6)
    ap.add_argument("--tmpfs-mb", type=int, default=256)
    ap.add_argument("--ext4-mb", type=int, default=256)
    ap.add_argument("--bin", default=os.path.join(harness.REPO, "build", "clearmta"))
    ap.add_argument("--testing-bin", default=os.path.join(harness.REPO, "build", "asan",
                                                          "clearmta"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("the fault soak mounts filesystems: run it as root")
        return 2
    scratch = tempfile.mkdtemp(prefix="clearmta-faults-")
    relay = SMTPTestServer({}, os.path.join(scratch, "relay.jsonl"),
                           port=harness.free_ports(1)[0]).start()
    users = harness.write_users_file(os.path.join(scratch, "users"))
    ok = True
    try:
        for name in a.parts.split(","):
            harness.BIN = os.path.abspath(a.bin)
            part_dir = os.path.join(scratch, name)
            os.makedirs(part_dir)
            ok = PARTS[name](a, part_dir, relay, users) and ok
    finally:
        relay.stop()
    print("RESULT %s (data in %s)" % ("ok" if ok else "FAILED", scratch))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
