"""bench/latency.py — end-of-DATA latency: SESSIONS concurrent SMTP sessions to 127.0.0.1:PORT
send COUNT messages in all; for each, the time from sending the body's final "\\r\\n.\\r\\n" to
reading the 250 reply. Reports p50 and p99 in milliseconds.
Usage: latency.py PORT [COUNT [SESSIONS [SIZE]]]  (prints one JSON line)."""
import asyncio
import json
import sys
import time

TIMEOUT = 30.0  # seconds for any one reply: a stuck server fails the run instead of hanging it


async def reply(reader):
    """Reads one (possibly multi-line) reply; returns its code."""
    while True:
        line = await asyncio.wait_for(reader.readline(), TIMEOUT)
        if len(line) < 4:
            raise ConnectionError(f"bad reply line {line!r}")
        if line[3:4] != b"-":
            return int(line[:3])


async def expect(reader, want):
    code = await reply(reader)
    if code != want:
        raise ConnectionError(f"expected {want}, got {code}")


def make_body(size):
    head = (b"From: bench@example.test\r\nTo: alice@example.test\r\n"
            b"Subject: latency\r\n\r\n")
    line = b"x" * 76 + b"\r\n"
    lines = max(1, (size - len(head)) // len(line))
    return head + line * lines + b".\r\n"   # the body ends with CRLF, so ".\r\n" ends DATA


async def session(port, quota, body, samples):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await expect(reader, 220)
        writer.write(b"EHLO bench.example.test\r\n")
        await expect(reader, 250)
        for _ in range(quota):
            writer.write(b"MAIL FROM:<bench@example.test>\r\n")
            await expect(reader, 250)
            writer.write(b"RCPT TO:<alice@example.test>\r\n")
            await expect(reader, 250)
            writer.write(b"DATA\r\n")
            await expect(reader, 354)
            t0 = time.perf_counter()
            writer.write(body)
            await expect(reader, 250)
            samples.append(time.perf_counter() - t0)
        writer.write(b"QUIT\r\n")
        await reply(reader)
    finally:
        writer.close()


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


async def run_async(port, count, sessions, size):
    samples = []
    body = make_body(size)
    quotas = [count // sessions + (1 if i < count % sessions else 0) for i in range(sessions)]
    results = await asyncio.gather(*(session(port, q, body, samples) for q in quotas),
                                   return_exceptions=True)
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    return samples, errors


def measure(port, count=2000, sessions=20, size=2048):
    samples, errors = asyncio.run(run_async(port, count, sessions, size))
    samples.sort()
    return {"messages": len(samples), "errors": errors[:3],
            "p50_ms": percentile(samples, 50) * 1000, "p99_ms": percentile(samples, 99) * 1000}


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: latency.py PORT [COUNT [SESSIONS [SIZE]]]")
    args = [int(a) for a in sys.argv[1:]]
    print(json.dumps(measure(*args)))


if __name__ == "__main__":
    main()
