"""bench/limits.py — what sending limits cost (issue 9): counter decisions per second in memory
and through Redis (bench/counters_bench.c, built here), and the MAIL → 250 latency at SESSIONS
concurrent submission sessions (smtplib, STARTTLS + AUTH, one thread each) on the contract
server with no plan, a plan counted in memory, and a plan counted in Redis
(tests/redis-server.sh). Prints the figures; with --append FILE adds them to FILE as a Markdown
section (bench/run.sh: bench/results/latest.md). Loopback only; every wait is bounded and every
server started here is stopped, whatever happens.
Knobs (environment): LIMITS_MAILS (4000 per configuration and round), LIMITS_SESSIONS (20),
LIMITS_ROUNDS (3)."""
import glob
import os
import shutil
import signal
import smtplib
import ssl
import statistics
import subprocess
import sys
import threading
import time

import bench
import latency

ROOT = bench.ROOT
WORK = os.path.join(ROOT, "build", "bench", "limits")
MAILS = bench.env_int("LIMITS_MAILS", 4000)
SESSIONS = bench.env_int("LIMITS_SESSIONS", 20)
ROUNDS = bench.env_int("LIMITS_ROUNDS", 3)
PLAN = "100000000"  # messages per hour: never reached, so every MAIL is counted and allowed
REPLY_TIMEOUT = 30
# (key, label, contract-server.sh environment; "redis" is replaced by the Redis address)
CONFIGS = [
    ("none", "no plan", {}),
    ("memory", "plan in memory", {"CONTRACT_PLAN_PER_HOUR": PLAN}),
    ("redis", "plan in Redis", {"CONTRACT_PLAN_PER_HOUR": PLAN, "CONTRACT_REDIS": "redis"}),
]


class Redis:
    """A redis-server through tests/redis-server.sh (start waits for PING, stop is bounded)."""

    def __init__(self):
        self.port = bench.free_port()
        self.dir = os.path.join(WORK, "redis-server")  # not a CONFIGS key: those dirs are wiped
        self.script = os.path.join(ROOT, "tests", "redis-server.sh")

    def start(self):
        subprocess.run(["sh", self.script, "start", str(self.port), self.dir], check=True,
                       timeout=30)

    def stop(self):
        subprocess.run(["sh", self.script, "stop", self.dir], timeout=30)

    def address(self):
        return "127.0.0.1:%d" % self.port


class Server:
    """tests/contract-server.sh with the given environment, on fresh ports and a fresh dir."""

    def __init__(self, key, env):
        self.mx, self.sub = bench.free_port(), bench.free_port()
        self.dir = os.path.join(WORK, key)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.log = open(os.path.join(WORK, key + ".log"), "ab")
        self.proc = subprocess.Popen(
            ["sh", os.path.join(ROOT, "tests", "contract-server.sh"), str(self.mx),
             str(self.sub), self.dir], stdout=self.log, stderr=subprocess.STDOUT,
            env=dict(os.environ, **env))
        if not bench.wait_banner(self.mx):
            self.stop()
            raise RuntimeError("clearmta (%s) did not start: see %s.log" % (key, self.dir))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the contract server's certificate is self-signed
    return ctx


def session(port, user, count, samples, errors):
    """One submission session: log in, then count times MAIL (timed) and RSET."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=REPLY_TIMEOUT) as s:
            s.ehlo("bench.example.test")
            s.starttls(context=client_context())
            s.ehlo("bench.example.test")
            s.login(user, user + "-secret")
            sender = "%s@example.test" % user
            for _ in range(count):
                t0 = time.perf_counter()
                code, text = s.mail(sender)
                took = time.perf_counter() - t0
                if code != 250:
                    raise RuntimeError("MAIL answered %d %s" % (code, text.decode()))
                samples.append(took)
                s.rset()
    except Exception as e:  # reported with the figures, never lost
        errors.append(repr(e))


def mail_latency(port):
    """p50, p99 of MAIL → 250 in ms over SESSIONS threads (alice and bob alternately)."""
    samples, errors = [], []
    quotas = [MAILS // SESSIONS + (1 if i < MAILS % SESSIONS else 0) for i in range(SESSIONS)]
    threads = [threading.Thread(target=session, daemon=True,
                                args=(port, ("alice", "bob")[i % 2], q, samples, errors))
               for i, q in enumerate(quotas)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 300
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        errors.append("sessions still running after 300 s")
    samples.sort()
    return {"p50": latency.percentile(samples, 50) * 1000,
            "p99": latency.percentile(samples, 99) * 1000,
            "mails": len(samples), "errors": errors[:3]}


def counters_bench(redis):
    """The lines bench/counters_bench prints (built here from bench/counters_bench.c and the
    counter sources), run against our Redis."""
    source = os.path.join(ROOT, "bench", "counters_bench.c")
    binary = os.path.join(WORK, "counters_bench")
    # The counters and the bottom module they build on (base/: LRU table, hashing).
    sources = sorted(glob.glob(os.path.join(ROOT, "src", "policy", "counters_*.c")) +
                     glob.glob(os.path.join(ROOT, "src", "base", "*.c")))
    subprocess.run(["gcc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-I" + os.path.join(ROOT, "src"),
                    source] + sources + ["-o", binary, "-levent_core", "-lhiredis", "-lpthread"],
                   check=True, timeout=120)
    out = subprocess.run([binary, "--redis", redis.address()], stdout=subprocess.PIPE,
                         check=True, timeout=300).stdout.decode()
    return [line for line in out.splitlines() if line.strip()]


def measure(redis):
    """{key: {"p50": [...], "p99": [...]}} over ROUNDS rounds, configurations alternating."""
    figures = {key: {"p50": [], "p99": []} for key, _, _ in CONFIGS}
    for rnd in range(1, ROUNDS + 1):
        for key, label, env in CONFIGS:
            env = {k: (redis.address() if v == "redis" else v) for k, v in env.items()}
            srv = Server(key, env)
            try:
                r = mail_latency(srv.sub)
            finally:
                srv.stop()
            if r["errors"]:
                raise RuntimeError("%s: %s" % (label, "; ".join(r["errors"])))
            bench.log("limits round %d, %s: MAIL p50 %.2f ms, p99 %.2f ms (%d MAILs)"
                      % (rnd, label, r["p50"], r["p99"], r["mails"]))
            figures[key]["p50"].append(r["p50"])
            figures[key]["p99"].append(r["p99"])
    return figures


def cell(values):
    return "%.2f (%.2f–%.2f)" % (statistics.median(values), min(values), max(values))


def render(figures, counter_lines):
    labels = [label for _, label, _ in CONFIGS]
    out = ["", "## Limits: what a plan costs per MAIL", "",
           "`bench/limits.py`: %d submission sessions (smtplib, STARTTLS + AUTH as alice and "
           "bob) send %d MAIL + RSET in all per configuration; MAIL → 250 in ms, median "
           "(min–max) of %d rounds. The plan (%s messages/hour) is never reached, so every "
           "MAIL is counted and allowed; Redis is a local redis-server on loopback."
           % (SESSIONS, MAILS, ROUNDS, PLAN), "",
           "| figure | " + " | ".join(labels) + " |",
           "|---|" + "---|" * len(labels)]
    base = {p: statistics.median(figures["none"][p]) for p in ("p50", "p99")}
    for p in ("p50", "p99"):
        out.append("| MAIL → 250 %s, ms | " % p
                   + " | ".join(cell(figures[key][p]) for key, _, _ in CONFIGS) + " |")
    for p in ("p50", "p99"):
        out.append("| added to MAIL %s vs no plan, ms | " % p + " | ".join(
            "%+.2f" % (statistics.median(figures[key][p]) - base[p]) for key, _, _ in CONFIGS)
            + " |")
    out += ["", "Counter decisions per second (`bench/counters_bench.c`, the counters called "
            "directly; Redis on loopback):", "", "```"] + counter_lines + ["```"]
    return "\n".join(out) + "\n"


def main():
    append_to = None
    if len(sys.argv) == 3 and sys.argv[1] == "--append":
        append_to = sys.argv[2]
    elif len(sys.argv) != 1:
        sys.exit("usage: limits.py [--append FILE]")
    if not shutil.which("redis-server"):
        sys.exit("limits: redis-server missing (scripts/deps.sh installs it)")
    # bench/run.sh's timeout sends SIGTERM: leave through the finally below, stopping Redis.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("limits: terminated"))
    os.makedirs(WORK, exist_ok=True)
    redis = Redis()
    try:
        redis.start()
        counter_lines = counters_bench(redis)
        for line in counter_lines:
            bench.log("counters: " + line)
        figures = measure(redis)
    finally:
        redis.stop()
    text = render(figures, counter_lines)
    print(text)
    if append_to:
        with open(append_to, "a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
