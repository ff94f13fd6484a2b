"""bench/idle_conns.py — holds N idle SMTP connections to 127.0.0.1:PORT, counts those that got
their 220 banner, and measures the server's resident memory while they are held.

Connections come from loopback source addresses 127.0.1.1, 127.0.1.2, ... (at most PER_SOURCE
each), since the contract server allows 100 connections per client address, as a real MX would.
Usage: idle_conns.py PORT N SERVER_PID  (prints one JSON line)."""
import errno
import json
import os
import resource
import selectors
import socket
import sys
import time

import procs

PER_SOURCE = 50
BATCH = 250            # connects in flight before we let the server catch up
CONNECT_PAUSE = 0.02   # seconds of banner reading between batches
QUIET_SECONDS = 3.0    # stop waiting once no banner came for this long...
TOTAL_SECONDS = 60.0   # ...or after this long in all
SETTLE_SECONDS = 0.5   # before reading the server's memory


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard == resource.RLIM_INFINITY else min(hard, max(soft, need))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def source_address(i):
    k = i // PER_SOURCE + 1
    return f"127.0.{1 + k // 250}.{1 + k % 250}"


class Holder:
    """The client side: sockets, their state, and a selector that reads banners."""

    def __init__(self, port):
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.socks = []
        self.banners = 0
        self.failed = 0
        self.last_banner = time.monotonic()

    def open(self, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socks.append(s)
        s.setblocking(False)
        try:
            s.bind((source_address(i), 0))
            rc = s.connect_ex(("127.0.0.1", self.port))
        except OSError:
            self.failed += 1
            return
        if rc not in (0, errno.EINPROGRESS):
            self.failed += 1
            return
        self.sel.register(s, selectors.EVENT_READ)

    def poll(self, timeout):
        for key, _ in self.sel.select(timeout):
            s = key.fileobj
            self.sel.unregister(s)
            try:
                data = s.recv(512)
            except OSError:
                data = b""
            if data.startswith(b"220"):
                self.banners += 1
                self.last_banner = time.monotonic()
            else:
                self.failed += 1  # refused (421), reset, or closed without a banner

    def close(self):
        for s in self.socks:
            s.close()
        self.sel.close()


def hold(port, n, server_pid, log=None):
    """Opens n connections, waits for banners, measures memory, closes. Returns a dict."""
    limit = raise_fd_limit(n + 64)
    if limit < n + 16:
        raise RuntimeError(f"fd limit {limit} too low for {n} connections")
    rss0, pss0 = procs.memory_kb(server_pid)
    h = Holder(port)
    start = time.monotonic()
    try:
        for i in range(n):
            h.open(i)
            if (i + 1) % BATCH == 0:
                h.poll(CONNECT_PAUSE)
        opened = time.monotonic()
        while h.banners + h.failed < n:
            now = time.monotonic()
            if now - max(h.last_banner, opened) > QUIET_SECONDS or now - start > TOTAL_SECONDS:
                break
            h.poll(0.2)
        elapsed = time.monotonic() - start
        time.sleep(SETTLE_SECONDS)
        rss1, pss1 = procs.memory_kb(server_pid)
        nproc = len(procs.tree(server_pid))
    finally:
        h.close()
    served = max(h.banners, 1)
    result = {
        "n": n, "banners": h.banners, "failed": h.failed, "seconds": round(elapsed, 2),
        "rss_kb": rss1, "rss_delta_kb": rss1 - rss0, "pss_delta_kb": pss1 - pss0,
        "rss_per_conn_kb": (rss1 - rss0) / served, "pss_per_conn_kb": (pss1 - pss0) / served,
        "processes": nproc,
    }
    if log:
        log(f"idle {n}: {h.banners} banners, {h.failed} failed, "
            f"{result['rss_per_conn_kb']:.1f} KiB RSS/conn, {nproc} processes")
    return result


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: idle_conns.py PORT N SERVER_PID")
    print(json.dumps(hold(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))))


if __name__ == "__main__":
    main()
