"""bench/fanout.py — many destinations, one slow (issue 16): with 10 destinations of which one
answers slowly (1 s before each reply), do the other nine still get >= 90 % of their unimpeded
rate?

clearmta routes d0.example … d8.example (`route DOMAIN smtp:[127.0.0.1]:PORT tls=none`) to nine
smtp-sink instances and slow.example to a sink of our own (asyncio, on a thread here) that
waits SLOW_DELAY seconds before every reply, greeting included. Each round runs twice,
alternating: "unimpeded" queues FANOUT_FAST messages for each of the nine only; "one slow"
queues the same plus FANOUT_SLOW messages for slow.example, interleaved with the others so that
they stand early in the queue. The messages are queued while every sink is down (each attempt
fails and defers), then the sinks start and one `clearmta queue flush` releases the queue. A
fast destination's rate is its messages over the time from the release to its last message at
its sink; the nine's rate is all their messages over the time to the last of them. Every
message must arrive exactly once: the sinks' counts are compared with what was queued (once the
nine have all of theirs, the slow sink answers at once, so that its backlog arrives too and is
counted). Prints the figures; with --append FILE adds a Markdown section to FILE
(bench/run.sh: bench/results/latest.md). Loopback only; every wait is bounded and every server
started here is stopped. Knobs: FANOUT_FAST (300 per fast destination), FANOUT_SLOW (300),
FANOUT_ROUNDS (3)."""
import argparse
import asyncio
import concurrent.futures
import os
import re
import shutil
import signal
import smtplib
import statistics
import subprocess
import sys
import threading
import time

import bench
import limits
import outbound

WORK = os.path.join(bench.ROOT, "build", "bench", "fanout")
FAST = bench.env_int("FANOUT_FAST", 300)
SLOW = bench.env_int("FANOUT_SLOW", 300)
ROUNDS = bench.env_int("FANOUT_ROUNDS", 3)
N_FAST = 9
SLOW_DELAY = 1.0          # seconds before each reply of the slow destination
TARGET = 0.90             # the nine's rate with the slow one vs without
INJECT_SESSIONS = 4
INJECT_TIMEOUT = 180      # seconds for every message to be queued and deferred once
DRAIN_TIMEOUT = 180       # seconds for every sink to count all of its messages once released
STALL = 20                # seconds without a new message anywhere end the wait early


def fast_domain(k):
    return f"d{k}.example"


SLOW_DOMAIN = "slow.example"


class SlowSink:
    """An SMTP sink that answers every line (and the greeting) after SLOW_DELAY seconds,
    counting the messages it accepted; pipelined commands are answered in order."""

    def __init__(self, port):
        self.port = port
        self.delay = SLOW_DELAY
        self.count = 0
        self.loop = None
        self.thread = None
        self.server = None

    async def session(self, reader, writer):
        async def reply(text):
            await asyncio.sleep(self.delay)
            writer.write(text)
            await writer.drain()
        try:
            await reply(b"220 slow.example ESMTP\r\n")
            while True:
                line = await asyncio.wait_for(reader.readline(), 60)
                if not line:
                    return
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    await reply(b"250-slow.example\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    await reply(b"354 go on\r\n")
                    while True:  # a long line is read whole or the session ends
                        data = await asyncio.wait_for(reader.readline(), 60)
                        if not data or data == b".\r\n":
                            break
                    if not data:
                        return
                    self.count += 1
                    await reply(b"250 2.0.0 ok\r\n")
                elif verb == b"QUIT":
                    await reply(b"221 bye\r\n")
                    return
                else:
                    await reply(b"250 ok\r\n")
        except (OSError, asyncio.TimeoutError, asyncio.LimitOverrunError, ValueError,
                asyncio.CancelledError):
            pass  # cancelled: stop() with the session open
        finally:
            writer.close()

    def start(self):
        self.count = 0
        self.delay = SLOW_DELAY
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def serve():
            self.server = await asyncio.start_server(self.session, "127.0.0.1", self.port,
                                                     limit=1 << 20)
            ready.set()

        def run():
            self.loop.run_until_complete(serve())
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError("the slow sink did not start")

    def stop(self):
        if self.loop is None:
            return

        async def shutdown():
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.loop = None


class Sinks:
    """Nine counting smtp-sinks and the slow sink, on fixed ports for the whole run."""

    def __init__(self):
        self.fast = []
        for k in range(N_FAST):
            s = outbound.CountingSink(bench.free_port(), WORK)
            s.out = os.path.join(WORK, f"sink-{k}.out")
            self.fast.append(s)
        self.slow = SlowSink(bench.free_port())

    def start(self):
        for s in self.fast:
            s.start()
        self.slow.start()

    def stop(self):
        for s in self.fast:
            s.stop()
        self.slow.stop()


class Server(outbound.Clearmta):
    """clearmta with a route per destination, on fresh ports and a fresh data directory;
    release and stop as bench/outbound.py's."""

    def __init__(self, sinks, key):  # noqa: super().__init__ would pick ports of its own
        self.mx, self.sub = bench.free_port(), bench.free_port()
        self.gen = 0
        self.dir = os.path.join(WORK, key)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.conf = os.path.join(self.dir, "clearmta.conf")
        self.logpath = os.path.join(WORK, key + ".log")
        users = os.path.join(self.dir, "users")
        pw = subprocess.run(["openssl", "passwd", "-6", "alice-secret"], check=True,
                            capture_output=True, text=True, timeout=30).stdout.strip()
        with open(users, "w") as f:
            f.write(f"alice:{pw}\n")
        os.chmod(users, 0o600)
        routes = [f"route {fast_domain(k)} smtp:[127.0.0.1]:{s.port} tls=none"
                  for k, s in enumerate(sinks.fast)]
        routes.append(f"route {SLOW_DOMAIN} smtp:[127.0.0.1]:{sinks.slow.port} tls=none")
        lines = ["hostname mx.example.test", f"listen mx 127.0.0.1:{self.mx}",
                 f"listen submission 127.0.0.1:{self.sub}", f"data_dir {self.dir}",
                 f"maildir_root {self.dir}/maildir", "domain example.test users alice",
                 f"users_file {users}"] + routes
        if os.getuid() == 0:
            lines.append("user root")  # the data directories are root's
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen([outbound.CLEARMTA, "serve", "-c", self.conf],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if not bench.wait_banner(self.mx):
            self.stop()
            raise RuntimeError(f"clearmta did not start: see {self.logpath}")

    def deferred(self):
        with open(self.logpath, "rb") as f:
            return len(re.findall(rb"status=deferred", f.read()))

    def stop(self):
        super().stop()
        self.log.close()


def message(i, rcpt):
    body = b"x" * 76 + b"\r\n"
    return (b"From: <alice@example.test>\r\nTo: <" + rcpt.encode() + b">\r\nSubject: fanout "
            + str(i).encode() + b"\r\n\r\n" + body * 25)


def recipients(with_slow):
    """The queue's order: one message per destination in turn while each has some left, so
    the slow destination's messages stand among the first."""
    counts = [FAST] * N_FAST + ([SLOW] if with_slow else [])
    domains = [fast_domain(k) for k in range(N_FAST)] + [SLOW_DOMAIN]
    order = []
    while any(counts):
        for k, left in enumerate(counts):
            if left:
                order.append(f"user{len(order)}@{domains[k]}")
                counts[k] -= 1
    return order


def inject(port, rcpts):
    """Queues one message per recipient over INJECT_SESSIONS parallel submission sessions
    (STARTTLS + AUTH as alice); raises on any refusal."""
    def session(part):
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
            s.starttls(context=limits.client_context())
            s.login("alice", "alice-secret")
            for i, rcpt in part:
                s.sendmail("alice@example.test", [rcpt], message(i, rcpt))

    numbered = list(enumerate(rcpts))
    with concurrent.futures.ThreadPoolExecutor(INJECT_SESSIONS) as pool:
        parts = [pool.submit(session, numbered[k::INJECT_SESSIONS])
                 for k in range(INJECT_SESSIONS)]
        for part in parts:
            part.result(timeout=INJECT_TIMEOUT)


def run_once(sinks, with_slow, rnd):
    """Queues, releases and measures one configuration; returns its figures."""
    key = f"{'slow' if with_slow else 'unimpeded'}-{rnd}"
    rcpts = recipients(with_slow)
    server = Server(sinks, key)
    try:
        inject(server.sub, rcpts)
        deadline = time.monotonic() + INJECT_TIMEOUT
        while server.deferred() < len(rcpts) and time.monotonic() < deadline:
            time.sleep(0.2)
        sinks.start()
        try:
            t0 = time.monotonic()
            server.release()
            done = [None] * N_FAST
            last_change, seen = t0, -1
            want_slow = SLOW if with_slow else 0
            while time.monotonic() < t0 + DRAIN_TIMEOUT and time.monotonic() < last_change + STALL:
                now = time.monotonic()
                counts = [s.count() for s in sinks.fast]
                for k, n in enumerate(counts):
                    if done[k] is None and n >= FAST:
                        done[k] = now - t0
                total = sum(counts) + sinks.slow.count
                if total != seen:
                    seen, last_change = total, now
                if all(done):
                    sinks.slow.delay = 0  # the rest of its backlog goes fast, to be counted
                if all(done) and sinks.slow.count >= want_slow:
                    break
                time.sleep(0.02)
            time.sleep(1.0)  # a duplicate arriving late is still counted
            counts = [s.count() for s in sinks.fast]
            slow_count = sinks.slow.count
        finally:
            sinks.stop()
    finally:
        server.stop()
    exact = all(n == FAST for n in counts) and slow_count == want_slow
    times = [t if t is not None else float("inf") for t in done]
    nine = N_FAST * FAST / max(times) if all(done) else 0.0
    per_dest = [FAST / t if t else 0.0 for t in times]
    return {"nine": nine, "per_dest": per_dest, "exact": exact, "counts": counts,
            "slow_count": slow_count, "slow_wanted": want_slow}


def render(rounds):
    ratios = [r["slow"]["nine"] / r["unimpeded"]["nine"] if r["unimpeded"]["nine"] else 0.0
              for r in rounds]
    worst = [min(s / u if u else 0.0 for s, u in zip(r["slow"]["per_dest"],
                                                     r["unimpeded"]["per_dest"]))
             for r in rounds]
    exact = all(r[c]["exact"] for r in rounds for c in ("slow", "unimpeded"))
    med = statistics.median(ratios)
    lines = [
        "",
        "## Many destinations, one slow (bench/fanout.py)",
        "",
        f"Ten static routes to sinks on loopback: nine smtp-sink, one answering "
        f"{SLOW_DELAY:g} s after every command. {FAST} messages of 2 KB for each of the nine "
        f"(\"unimpeded\"), then the same plus {SLOW} for the slow one, interleaved; queued while "
        f"the sinks were down, released with one `clearmta queue flush`. Rate: messages over the "
        f"time from the release to the last of them at the sinks. {len(rounds)} rounds, "
        f"the two runs in turn (which goes first alternates).",
        "",
        "| figure | " + " | ".join(f"round {i + 1}" for i in range(len(rounds)))
        + " | median | target |",
        "|---|" + "---|" * len(rounds) + "---|---|",
        "| the nine, unimpeded, msg/s | " + " | ".join(
            f"{r['unimpeded']['nine']:.0f}" for r in rounds)
        + f" | {statistics.median(r['unimpeded']['nine'] for r in rounds):.0f} | |",
        "| the nine, one slow beside them, msg/s | " + " | ".join(
            f"{r['slow']['nine']:.0f}" for r in rounds)
        + f" | {statistics.median(r['slow']['nine'] for r in rounds):.0f} | |",
        "| **ratio** | " + " | ".join(f"{x:.0%}" for x in ratios)
        + f" | **{med:.0%}** | ≥ {TARGET:.0%} {'✅' if med >= TARGET else '❌'} |",
        "| worst single fast destination's ratio | " + " | ".join(f"{x:.0%}" for x in worst)
        + f" | {statistics.median(worst):.0%} | |",
        "| every message arrived exactly once | " + " | ".join(
            "yes" if r["slow"]["exact"] and r["unimpeded"]["exact"] else "**no**" for r in rounds)
        + f" | | all {'✅' if exact else '❌'} |",
        "",
    ]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--append", metavar="FILE", help="add the section to FILE (latest.md)")
    args = ap.parse_args()
    if not shutil.which("smtp-sink"):
        sys.exit("fanout: smtp-sink missing (scripts/deps.sh bench installs it)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("fanout: terminated"))
    os.makedirs(WORK, exist_ok=True)
    sinks = Sinks()
    rounds = []
    for rnd in range(1, ROUNDS + 1):
        r = {}
        for with_slow in ((False, True) if rnd % 2 else (True, False)):  # alternating
            key = "slow" if with_slow else "unimpeded"
            r[key] = run_once(sinks, with_slow, rnd)
            bench.log(f"round {rnd} fanout {key}: the nine {r[key]['nine']:.0f} msg/s, "
                      f"counts {r[key]['counts']} slow {r[key]['slow_count']}/"
                      f"{r[key]['slow_wanted']}")
        rounds.append(r)
    text = render(rounds)
    print(text)
    if args.append:
        with open(args.append, "a", encoding="utf-8") as out:
            out.write(text)


if __name__ == "__main__":
    main()
