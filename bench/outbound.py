"""bench/outbound.py — outbound delivery rate: messages/second that clearmta's delivery agent and
Postfix's smtp(8) client hand to smtp-sink on loopback, from a queue already full.

Each server is first given OUTBOUND_MSGS 2 KB messages for bob@remote.example while its relay
(the smtp-sink port) is down, so all of them wait in its queue. Then smtp-sink starts, the
server is released (clearmta: its attempts failed with "connection refused" and it keeps
running: one `clearmta queue flush`; Postfix: restarted without defer_transports, then
`postqueue -f`; both relay with their default concurrency) and the clock runs until smtp-sink
has counted every message, and the SMTP sessions that carried them. Injection is not timed:
only delivery is.
clearmta gets its messages on the submission port (STARTTLS + AUTH as alice, as the test
contract requires for relaying); Postfix on its smtpd port from 127.0.0.0/8 (mynetworks).
Run by bench.py (`make bench`), or alone as root: python3 bench/outbound.py (prints JSON).
Knobs: BENCH_OUTBOUND_MSGS (2000), BENCH_OUTBOUND_ROUNDS (3)."""
import json
import os
import re
import smtplib
import ssl
import subprocess
import threading
import time

import bench
import procs

MSGS = bench.env_int("BENCH_OUTBOUND_MSGS", 2000)
CLEARMTA = os.environ.get("CLEARMTA_BIN") or os.path.join(bench.ROOT, "build", "clearmta")
ROUNDS = bench.env_int("BENCH_OUTBOUND_ROUNDS", 3)
RCPT = "bob@remote.example"
INJECT_SESSIONS = 4
PER_SESSION = 500          # messages per injecting connection: few TLS handshakes, as the
                           # submission port takes 10 a second per address
INJECT_TIMEOUT = 120       # seconds for all messages to be queued
DRAIN_TIMEOUT = 120        # seconds for smtp-sink to count them all once released
STALL = 10                 # seconds without a new message end the wait early (a figure is
                           # still reported, with the count that arrived)


def message(i):
    """Message i: about 2 KB, numbered in its Subject."""
    body = b"x" * 76 + b"\r\n"
    return (b"From: <alice@example.test>\r\nTo: <" + RCPT.encode() + b">\r\nSubject: outbound "
            + str(i).encode() + b"\r\n\r\n" + body * 25)


def inject(port, sender, count, login):
    """Queues count messages for RCPT through INJECT_SESSIONS parallel connections; login:
    STARTTLS + AUTH as alice first (clearmta's submission port). Raises on any refusal."""
    errors = []

    def worker(first, n):
        try:
            for start in range(first, first + n, PER_SESSION):
                with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
                    if login:
                        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                        ctx.check_hostname = False
                        ctx.verify_mode = ssl.CERT_NONE
                        s.starttls(context=ctx)
                        s.login("alice", "alice-secret")
                    for i in range(start, min(start + PER_SESSION, first + n)):
                        s.sendmail(sender, [RCPT], message(i))
        except (OSError, smtplib.SMTPException) as e:
            errors.append(e)

    share = -(-count // INJECT_SESSIONS)
    threads = [threading.Thread(target=worker, args=(k * share, min(share, count - k * share)))
               for k in range(INJECT_SESSIONS) if k * share < count]
    for t in threads:
        t.start()
    for t in threads:
        t.join(INJECT_TIMEOUT)
    if errors or any(t.is_alive() for t in threads):
        raise RuntimeError(f"injection failed: {errors[:3]}")


class CountingSink:
    """smtp-sink -c on a fixed port: its running counter ("... mesg=N") goes to a file."""

    def __init__(self, port, work):
        self.port = port
        self.out = os.path.join(work, "outbound-sink.out")
        self.proc = None

    def start(self):
        with open(self.out, "wb") as f:
            self.proc = subprocess.Popen(["smtp-sink", "-c", "-u", "nobody", "-m", "1000",
                                          f"127.0.0.1:{self.port}", "1000"],
                                         stdout=f, stderr=subprocess.STDOUT)
        if not bench.wait_banner(self.port):
            self.stop()
            raise RuntimeError("smtp-sink did not start")

    def counters(self):
        """(messages received, sessions ended) so far; the wait_banner probe is one session
        and sent no message."""
        with open(self.out, "rb") as f:
            f.seek(max(0, os.path.getsize(self.out) - 200))
            found = re.findall(rb"sess=(\d+) quit=\d+ mesg=(\d+)", f.read())
        return (int(found[-1][1]), int(found[-1][0])) if found else (0, 0)

    def count(self):
        return self.counters()[0]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


class Clearmta:
    name = "clearmta"

    def __init__(self, sink_port):
        self.sink_port = sink_port
        self.port, self.sub_port = bench.free_port(), bench.free_port()
        self.gen = 0
        self.dir = None
        self.proc = None

    def prepare(self):
        """A fresh server with MSGS messages queued for the (down) relay, each tried once and
        deferred (next try in 5 minutes); left running."""
        self.dir = bench.fresh_dir("clearmta-outbound", self)
        self.start()
        inject(self.sub_port, "alice@example.test", MSGS, login=True)
        deadline = time.monotonic() + INJECT_TIMEOUT
        while self.deferred() < MSGS and time.monotonic() < deadline:
            time.sleep(0.2)

    def deferred(self):
        with open(os.path.join(bench.WORK, "clearmta.log"), "rb") as f:
            return len(re.findall(rb"to=<" + RCPT.encode() + rb">, .*status=deferred", f.read()))

    def start(self):
        env = dict(os.environ, CONTRACT_RELAY=f"127.0.0.1:{self.sink_port}")
        with open(os.path.join(bench.WORK, "clearmta.log"), "ab") as log:
            self.proc = subprocess.Popen(
                ["sh", os.path.join(bench.ROOT, "tests", "contract-server.sh"), str(self.port),
                 str(self.sub_port), self.dir], stdout=log, stderr=subprocess.STDOUT, env=env)
        with open(os.path.join(bench.WORK, "clearmta.pid"), "w") as f:
            f.write(f"{self.proc.pid}\n")  # for run.sh's trap if we die
        if not bench.wait_banner(self.port):
            self.stop()
            raise RuntimeError("clearmta did not start (see build/bench/clearmta.log)")

    def release(self):
        """One `clearmta queue flush`: the queue goes out without a restart."""
        subprocess.run([CLEARMTA, "queue", "-c", os.path.join(self.dir, "clearmta.conf"),
                        "flush"], check=True, stdout=subprocess.DEVNULL, timeout=60)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def root_pid(self):
        return self.proc.pid  # contract-server.sh execs clearmta


class Postfix:
    name = "Postfix"

    def __init__(self, sink_port):
        self.sink_port = sink_port
        self.port = bench.free_port()
        self.gen = 0
        self.dir = None

    def _script(self, *args):
        subprocess.run(["sh", os.path.join(bench.HERE, "postfix.sh"), *args], check=True,
                       stdout=subprocess.DEVNULL, timeout=60)

    def _conf(self, *settings):
        subprocess.run(["postconf", "-c", os.path.join(self.dir, "etc"), "-e", *settings],
                       check=True, timeout=30)

    def prepare(self):
        # The directory name starts with "postfix." so that run.sh's trap stops it.
        self.dir = bench.fresh_dir("postfix.outbound", self)
        self._script("setup", self.dir, str(self.port))
        # Relay for 127.0.0.0/8 to the sink; smtp deferred while the messages come in.
        self._conf(f"relayhost = [127.0.0.1]:{self.sink_port}",
                   "smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination",
                   "defer_transports = smtp")
        self._script("start", self.dir)
        if not bench.wait_banner(self.port):
            raise RuntimeError(f"Postfix did not start (see {self.dir}/maillog)")
        inject(self.port, "bench@example.test", MSGS, login=False)
        self.stop()
        self._conf("defer_transports =")

    def release(self):
        self._script("start", self.dir)
        subprocess.run(["postqueue", "-c", os.path.join(self.dir, "etc"), "-f"], check=True,
                       timeout=60)

    def stop(self):
        pid = self.root_pid()
        self._script("stop", self.dir)
        deadline = time.monotonic() + 15
        while pid and os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.1)

    def root_pid(self):
        try:
            with open(os.path.join(self.dir, "queue", "pid", "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None


def drain(server, sink):
    """Releases server's queue into a fresh sink; returns msg/s, CPU s per 1000 (what the
    server used from the release on, a restart included), count and SMTP sessions."""
    sink.start()
    try:
        pid = server.root_pid()
        cpu0 = procs.cpu_seconds(pid) if pid else 0.0
        t0 = time.monotonic()
        server.release()
        deadline = t0 + DRAIN_TIMEOUT
        got, last_change = 0, t0
        while got < MSGS and time.monotonic() < min(deadline, last_change + STALL):
            time.sleep(0.02)
            n = sink.count()
            if n != got:
                got, last_change = n, time.monotonic()
        elapsed = max(last_change - t0, 1e-3)  # to the last message smtp-sink counted
        cpu = procs.cpu_seconds(server.root_pid()) - (cpu0 if server.root_pid() == pid else 0)
    finally:
        server.stop()
        sink.stop()
    # Sessions ended, less the start-up probe; the server's QUIT ended the others.
    sessions = max(sink.counters()[1] - 1, 0)
    return {"rate": got / elapsed, "cpu_per_1000": cpu / max(got, 1) * 1000, "delivered": got,
            "sessions": sessions}


def measure(results, log, names=("clearmta", "postfix")):
    """ROUNDS rounds of each server in names, alternating; adds outbound.rate,
    outbound.cpu_per_1000 and outbound.delivered per server to results (bench.add)."""
    sink_port = bench.free_port()
    sink = CountingSink(sink_port, bench.WORK)
    servers = [cls(sink_port) for cls in (Clearmta, Postfix) if cls.name.lower() in names]
    for rnd in range(1, ROUNDS + 1):
        for server in servers:
            try:
                server.prepare()
                r = drain(server, sink)
            finally:
                server.stop()
            log(f"round {rnd} outbound: {server.name} {r['rate']:.0f} msg/s to smtp-sink "
                f"({r['delivered']}/{MSGS}) over {r['sessions']} sessions, "
                f"{r['cpu_per_1000']:.2f} CPU s/1000")
            for field in ("rate", "cpu_per_1000", "delivered", "sessions"):
                bench.add(results, f"outbound.{field}", server.name, r[field])


def main():
    os.makedirs(bench.WORK, exist_ok=True)
    results = {}
    names = os.environ.get("BENCH_SERVERS", "clearmta postfix").lower().split()
    measure(results, bench.log, names)
    print(json.dumps(bench.summarize(results), indent=1))


if __name__ == "__main__":
    main()
