#!/usr/bin/env python3
"""tests/soak/flood.py — the flood soak (not part of make test): CONNECTIONS connections from
many loopback addresses behaving like slowloris (a byte of EHLO every few seconds, never a
whole line), at most HELD open at once, while a steady stream of real messages is sent and
delivered. Reports the real messages' latency (connect to 250, and to the Maildir), how the
flood was answered (220 then shed, 421 at connect), and the server's peak resident memory
against its session_memory budget.

    python3 tests/soak/flood.py [--connections 20000] [--held 3000] [--rate 5]
                                [--max-connections 1000] [--bin build/clearmta]
"""
import argparse
import asyncio
import os
import resource
import smtplib
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402  (the integration harness: server start, messages, Maildir)
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
import procs  # noqa: E402  (memory of a process, as the benchmarks read it)


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100.0 * len(s)))]


class Flood:
    def __init__(self, port, total, held):
        self.port, self.total, self.held = port, total, held
        self.started = 0
        self.greeted = 0     # got 220: held as slowloris until shed
        self.refused = 0     # got 421 at connect
        self.shed = 0        # held, then closed by the server (421 stress/timeout or EOF)
        self.outlasted = 0   # held until it gave up itself
        self.other = 0       # anything else (connect errors, silence)
        self.codes = {}

    async def one(self, i, sem):
        source = "127.%d.%d.%d" % (10 + i // 62500, (i // 250) % 250, 1 + i % 250)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.port, local_addr=(source, 0)), 10)
        except (OSError, asyncio.TimeoutError):
            self.other += 1
            sem.release()
            return
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            code = line[:9].decode("ascii", "replace")
            self.codes[code] = self.codes.get(code, 0) + 1
            if line.startswith(b"421"):
                self.refused += 1
                return
            if not line.startswith(b"220"):
                self.other += 1
                return
            self.greeted += 1
            for b in b"EHLO slow.example":  # a byte at a time, never the CRLF
                writer.write(bytes([b]))
                await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(512), 4)
                except asyncio.TimeoutError:
                    continue
                if not data or data.startswith(b"421"):
                    self.shed += 1
                    return
            self.outlasted += 1  # dripped its whole line out: it gives up itself
        except (OSError, asyncio.TimeoutError):
            self.other += 1
        finally:
            writer.close()
            sem.release()

    async def run(self):
        sem = asyncio.Semaphore(self.held)
        tasks = []
        for i in range(self.total):
            await sem.acquire()
            self.started += 1
            tasks.append(asyncio.ensure_future(self.one(i, sem)))
            if i % 100 == 99:
                await asyncio.sleep(0.05)  # about 2000 connections per second at most
        await asyncio.gather(*tasks)


def real_mail(port, srv, stop, rate, results):
    """One message every 1/rate s from 127.0.0.1 until stop is set; latencies in seconds."""
    n = 0
    while not stop.is_set():
        n += 1
        tag = "flood-real-%d" % n
        t0 = time.monotonic()
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
                s.ehlo("real.example")
                s.sendmail("sender@example.org", ["alice@example.test"],
                           harness.make_message(tag))
            results["accepted"].append((tag, time.monotonic() - t0, t0))
        except (smtplib.SMTPException, OSError) as e:
            results["failed"].append((tag, repr(e)))
        stop.wait(max(0.0, 1.0 / rate - (time.monotonic() - t0)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=20000)
    ap.add_argument("--held", type=int, default=3000)
    ap.add_argument("--rate", type=float, default=5.0, help="real messages per second")
    ap.add_argument("--max-connections", type=int, default=1000)
    ap.add_argument("--memory", default="64M", help="session_memory")
    ap.add_argument("--bin", default=os.path.join(harness.REPO, "build", "clearmta"))
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    harness.BIN = os.path.abspath(a.bin)
    data = tempfile.mkdtemp(prefix="clearmta-flood-")
    srv = harness.Server(data, extra_config=["max_connections %d" % a.max_connections,
                                             "max_connections_per_ip 20",
                                             "session_memory %s" % a.memory])
    srv.start()
    stop = threading.Event()
    results = {"accepted": [], "failed": []}
    sender = threading.Thread(target=real_mail, args=(srv.mx_port, srv, stop, a.rate, results))
    peak = [0]

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], procs.rss_kb(srv.proc.pid))
            stop.wait(0.5)
    sampler = threading.Thread(target=sample)
    flood = Flood(srv.mx_port, a.connections, a.held)
    t0 = time.monotonic()
    sender.start()
    sampler.start()
    try:
        asyncio.run(flood.run())
    finally:
        took = time.monotonic() - t0
        stop.set()
        sender.join()
        sampler.join()
    accepted = results["accepted"]
    delivered = harness.wait_until(
        lambda: len(srv.maildir_files("alice")) >= len(accepted), 60)
    arrivals = len(srv.maildir_files("alice"))
    log = srv.log()
    srv.stop()
    lat = [x[1] for x in accepted]
    print("flood soak: %d connections (at most %d at once) in %.0f s, max_connections %d, "
          "session_memory %s" % (flood.started, a.held, took, a.max_connections, a.memory))
    print("  flood: 220 then held %d (shed by the server %d, gave up first %d), 421 at "
          "connect %d, other %d" % (flood.greeted, flood.shed, flood.outlasted, flood.refused,
                                    flood.other))
    print("  first reply lines: %s" % ", ".join("%s x%d" % kv for kv in
                                                 sorted(flood.codes.items())))
    print("  real messages: %d accepted, %d failed, %d in the Maildir; latency to 250: "
          "p50 %.3f s, p95 %.3f s, max %.3f s" % (len(accepted), len(results["failed"]),
                                                   arrivals, percentile(lat, 50),
                                                   percentile(lat, 95), max(lat or [0])))
    print("  server peak RSS %d kB; stress began %d time(s); idle-before-EHLO closed %d"
          % (peak[0], log.count("stress: begins"), log.count("closed to make room")))
    for tag, err in results["failed"][:5]:
        print("  failed %s: %s" % (tag, err))
    ok = not results["failed"] and delivered and flood.other == 0
    print("RESULT %s (data in %s)" % ("ok" if ok else "FAILED", data))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
