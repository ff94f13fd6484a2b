"""bench/bench.py — measures clearmta beside a private Postfix on this machine, with Postfix's
smtp-sink and the disk's sync rate as ceilings, and writes bench/results/latest.md.
Run through bench/run.sh (root, raised fd limit). Every load goes to 127.0.0.1, every wait is
bounded. Knobs (environment): BENCH_ROUNDS, BENCH_MSGS, BENCH_MSGS_PER_CONN, BENCH_BIG_MSGS,
BENCH_SESSIONS, BENCH_IDLE (e.g. "1000 5000 10000"), BENCH_LATENCY_MSGS, BENCH_SERVERS (default
"clearmta postfix"), BENCH_OUTBOUND_MSGS, BENCH_OUTBOUND_ROUNDS (bench/outbound.py)."""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

import idle_conns
import latency
import procs
import report

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.path.join(ROOT, "build", "bench")
SENDER, RCPT = "bench@example.test", "alice@example.test"


def env_int(name, default):
    return int(os.environ.get(name, default))


ROUNDS = env_int("BENCH_ROUNDS", 3)
SESSIONS = env_int("BENCH_SESSIONS", 20)
MSGS = env_int("BENCH_MSGS", 20000)
MSGS_PER_CONN = env_int("BENCH_MSGS_PER_CONN", 10000)  # 20 000 would not fit in 10 minutes
BIG_MSGS = env_int("BENCH_BIG_MSGS", 200)
LATENCY_MSGS = env_int("BENCH_LATENCY_MSGS", 2000)
IDLE = [int(n) for n in os.environ.get("BENCH_IDLE", "1000 5000 10000").split()]
SOURCE_TIMEOUT = 300    # seconds for one smtp-source run
DELIVERY_TIMEOUT = 120  # seconds after smtp-source for the last Maildir file to appear
START_TIMEOUT = 15      # seconds for a server to send its first banner

# (key, label, message bytes, total messages, many messages per session?)
LOADS = [
    ("2k_session", f"2 KB × {SESSIONS} sessions, many per session", 2048, MSGS, True),
    ("2k_conn", f"2 KB × {SESSIONS} sessions, one per connection", 2048, MSGS_PER_CONN, False),
    ("1m", f"1 MB × {SESSIONS} sessions", 1048576, BIG_MSGS, True),
]


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_banner(port, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                if s.recv(512).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def count_files(path):
    try:
        with os.scandir(path) as it:
            return sum(1 for _ in it)
    except FileNotFoundError:
        return 0


def fresh_dir(name, server):
    """A new data directory per server start. Old ones are removed by run.sh after the report:
    deleting tens of thousands of files takes long on some disks and slows file creation for
    a while after (ext4 without a journal scans recently freed inodes)."""
    server.gen += 1
    path = os.path.join(WORK, "data", f"{name}.{server.gen}")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


class Clearmta:
    name = "clearmta"

    def __init__(self):
        self.dir = None
        self.gen = 0
        self.port = free_port()
        self.proc = None
        self.logf = None

    def start(self, connections=None):
        """connections: the clients to be held at once, when more than stress mode's high-water
        mark of the default max_connections allows (the server sized as README.md says)."""
        self.dir = fresh_dir("clearmta", self)
        self.logf = open(os.path.join(WORK, "clearmta.log"), "ab")
        env = dict(os.environ)
        if connections:
            env["CONTRACT_MAX_CONNECTIONS"] = str(2 * connections)
        self.proc = subprocess.Popen(
            ["sh", os.path.join(ROOT, "tests", "contract-server.sh"), str(self.port),
             str(free_port()), self.dir], stdout=self.logf, stderr=subprocess.STDOUT, env=env)
        with open(os.path.join(WORK, "clearmta.pid"), "w") as f:
            f.write(f"{self.proc.pid}\n")  # for run.sh's trap if we die
        if not wait_banner(self.port):
            self.stop()
            raise RuntimeError("clearmta did not start (see build/bench/clearmta.log)")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        try:
            os.unlink(os.path.join(WORK, "clearmta.pid"))
        except FileNotFoundError:
            pass
        if self.logf:
            self.logf.close()
            self.logf = None

    def root_pid(self):
        return self.proc.pid  # contract-server.sh execs clearmta: same pid

    def maildir(self):
        return os.path.join(self.dir, "maildir", "alice", "new")


class Postfix:
    name = "Postfix"

    def __init__(self):
        self.dir = None
        self.gen = 0
        self.port = free_port()

    def _script(self, *args):
        subprocess.run(["sh", os.path.join(HERE, "postfix.sh"), *args], check=True,
                       stdout=subprocess.DEVNULL, timeout=60)

    def start(self):
        self.dir = fresh_dir("postfix", self)
        self._script("setup", self.dir, str(self.port))
        self._script("start", self.dir)
        if not wait_banner(self.port):
            self.stop()
            raise RuntimeError(f"Postfix did not start (see {self.dir}/maillog)")

    def stop(self):
        if not self.dir:
            return
        pid = self._master()
        self._script("stop", self.dir)
        deadline = time.monotonic() + 15
        while pid and os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.1)

    def _master(self):
        if not self.dir:
            return None
        try:
            with open(os.path.join(self.dir, "queue", "pid", "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def root_pid(self):
        return self._master()

    def maildir(self):
        return os.path.join(self.dir, "maildir", "alice", "new")


class Sink:
    """smtp-sink: speaks SMTP, stores nothing: the protocol ceiling on loopback."""
    name = "smtp-sink"

    def __init__(self):
        self.port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["smtp-sink", "-u", "nobody", "-m", "1000",
                                      f"127.0.0.1:{self.port}", "1000"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_banner(self.port):
            self.stop()
            raise RuntimeError("smtp-sink did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def root_pid(self):
        return self.proc.pid

    def maildir(self):
        return None


def run_load(server, size, count, per_session):
    """One smtp-source run; returns messages/s (delivered, wall), messages/s (accepted), CPU
    seconds per 1000 messages and the delivered count. Delivered files stay where they are:
    deleting thousands of files between runs would slow the next run's file creation (ext4
    scans recently freed inodes), which no real mail server sees."""
    box = server.maildir()
    before = count_files(box) if box else 0
    os.sync()  # the previous run's dirty pages are not this run's cost
    cmd = ["smtp-source", "-s", str(SESSIONS), "-m", str(count), "-l", str(size),
           "-f", SENDER, "-t", RCPT]
    if per_session:
        cmd.append("-d")
    cmd.append(f"127.0.0.1:{server.port}")
    cpu0 = procs.cpu_seconds(server.root_pid())
    t0 = time.monotonic()
    src = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         timeout=SOURCE_TIMEOUT)
    t_accept = time.monotonic()
    if src.returncode != 0:
        log(f"{server.name}: smtp-source exited {src.returncode}: "
            f"{src.stderr.decode(errors='replace').strip()[:300]}")
    delivered = count if box is None and src.returncode == 0 else 0
    t_done = t_accept
    if box:
        deadline = t_accept + DELIVERY_TIMEOUT
        while True:
            delivered = count_files(box) - before
            t_done = time.monotonic()
            if delivered >= count or t_done > deadline:
                break
            time.sleep(0.05)
    time.sleep(0.3)  # trailing work (queue file removal, logging) is part of the cost
    cpu = procs.cpu_seconds(server.root_pid()) - cpu0
    return {
        "rate": delivered / (t_done - t0),
        "accept_rate": count / (t_accept - t0) if src.returncode == 0 else 0.0,
        "cpu_per_1000": cpu / max(delivered, 1) * 1000,
        "delivered": delivered, "count": count,
    }


def disk_sync_rate(path, seconds=2.0):
    """One-byte write + fdatasync per iteration on the data directory's filesystem."""
    name = os.path.join(path, "sync-probe")
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    n = 0
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            os.write(fd, b"x")
            os.fdatasync(fd)
            n += 1
        return n / (time.monotonic() - t0)
    finally:
        os.close(fd)
        os.unlink(name)


def file_churn_rate(path, seconds=2.0):
    """2 KB files created, written, closed and unlinked per second, no sync: the inode work
    every queued message costs, whatever its durability."""
    d = os.path.join(path, "churn-probe")
    os.makedirs(d, exist_ok=True)
    data = b"x" * 2048
    n = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        name = os.path.join(d, str(n))
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, data)
        os.close(fd)
        os.unlink(name)
        n += 1
    rate = n / (time.monotonic() - t0)
    os.rmdir(d)
    return rate


def add(results, key, server, value):
    results.setdefault(key, {}).setdefault(server, []).append(value)


def throughput(servers, results):
    for server in servers:  # not measured: spawns Postfix's processes, warms caches
        run_load(server, 2048, 200, True)
    for rnd in range(1, ROUNDS + 1):
        for key, label, size, count, per_session in LOADS:
            for server in servers:
                r = run_load(server, size, count, per_session)
                log(f"round {rnd} {label}: {server.name} {r['rate']:.0f} msg/s delivered "
                    f"({r['delivered']}/{count}), {r['accept_rate']:.0f} msg/s accepted, "
                    f"{r['cpu_per_1000']:.2f} CPU s/1000")
                for field in ("rate", "accept_rate", "cpu_per_1000", "delivered"):
                    add(results, f"{key}.{field}", server.name, r[field])
        for server in servers:
            r = latency.measure(server.port, LATENCY_MSGS, SESSIONS, 2048)
            if r["errors"]:
                log(f"{server.name}: latency errors {r['errors']}")
            log(f"round {rnd} latency: {server.name} p50 {r['p50_ms']:.2f} ms, "
                f"p99 {r['p99_ms']:.2f} ms")
            add(results, "latency.p50", server.name, r["p50_ms"])
            add(results, "latency.p99", server.name, r["p99_ms"])


def connections(servers, results):
    """Each size on a freshly started server, so memory left from earlier work is not
    counted as free."""
    for n in IDLE:
        for server in servers:
            server.stop()
            if isinstance(server, Clearmta):
                server.start(connections=n)
            else:
                server.start()
            time.sleep(0.5)
            r = idle_conns.hold(server.port, n, server.root_pid(), log=log)
            add(results, f"idle{n}.banners", server.name, r["banners"])
            add(results, f"idle{n}.rss_per_conn", server.name, r["rss_per_conn_kb"])
            add(results, f"idle{n}.pss_per_conn", server.name, r["pss_per_conn_kb"])
            add(results, f"idle{n}.processes", server.name, r["processes"])


def outbound_rates(wanted, results):
    """Outbound delivery to smtp-sink (bench/outbound.py, imported here because it imports this
    module). A failure there is logged and leaves the other figures standing."""
    import outbound
    try:
        outbound.measure(results, log, wanted)
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        log(f"outbound: failed: {e}")
    return outbound.MSGS


def summarize(results):
    out = {}
    for key, per_server in results.items():
        out[key] = {name: {"median": statistics.median(v), "min": min(v), "max": max(v),
                           "n": len(v), "values": v} for name, v in per_server.items()}
    return out


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench: terminated"))
    os.makedirs(WORK, exist_ok=True)
    started = time.monotonic()
    load_start = os.getloadavg()[0]
    results = {}
    wanted = os.environ.get("BENCH_SERVERS", "clearmta postfix").lower().split()
    servers = [cls() for cls in (Clearmta, Postfix) if cls.name.lower() in wanted]
    sink = Sink()
    running = []
    try:
        for server in [sink] + servers:
            server.start()
            running.append(server)
        log(", ".join(f"{s.name} :{s.port}" for s in running))
        add(results, "disk.sync_rate", "ceiling", disk_sync_rate(WORK))
        add(results, "disk.churn_rate", "ceiling", file_churn_rate(WORK))
        log(f"disk: {results['disk.sync_rate']['ceiling'][0]:.0f} fdatasync/s, "
            f"{results['disk.churn_rate']['ceiling'][0]:.0f} file create+unlink/s")
        throughput(servers + [sink], results)
        sink.stop()
        running.remove(sink)
        connections(servers, results)
    finally:
        for server in running:
            server.stop()
    outbound_msgs = outbound_rates(wanted, results)
    elapsed = time.monotonic() - started
    summary = summarize(results)
    with open(os.path.join(WORK, "results.json"), "w") as f:
        json.dump({"raw": results, "summary": summary}, f, indent=1)
    config = {"rounds": ROUNDS, "sessions": SESSIONS, "loads": LOADS, "idle": IDLE,
              "outbound_msgs": outbound_msgs,
              "latency_msgs": LATENCY_MSGS, "elapsed": elapsed, "data_dir": WORK,
              "load": (load_start, os.getloadavg()[0])}
    text = report.render(summary, config)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "latest.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
