"""bench/tls.py — TLS figures for clearmta: resident memory per idle TLS connection (after
STARTTLS and EHLO, and on the implicit-TLS port) and full TLS handshakes per second.
Usage: python3 bench/tls.py BINARY  (starts its own server on loopback, stops it at the end)."""
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

import procs

HERE = os.path.dirname(os.path.abspath(__file__))


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, deadline=10.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start on port %d" % port)


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def read_reply(f):
    while True:
        line = f.readline()
        if not line or line[3:4] != b"-":
            return line


def idle_starttls(ctx, port, n):
    conns = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        f = s.makefile("rb")
        read_reply(f)
        s.sendall(b"EHLO bench.example\r\n")
        read_reply(f)
        s.sendall(b"STARTTLS\r\n")
        read_reply(f)
        t = ctx.wrap_socket(s)
        t.sendall(b"EHLO bench.example\r\n")
        tf = t.makefile("rb")
        read_reply(tf)
        conns.append((t, tf))
    return conns


def handshakes(ctx, port, seconds, threads):
    counts = [0] * threads
    stop = time.time() + seconds

    def worker(i):
        while time.time() < stop:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            t = ctx.wrap_socket(s)
            t.recv(512)  # the 220 greeting arrives once the handshake is done
            t.close()
            counts[i] += 1

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) / seconds


def main():
    binary = sys.argv[1]
    n = int(os.environ.get("TLS_IDLE", "1000"))
    raise_fd_limit()
    d = tempfile.mkdtemp(prefix="clearmta-tls-")
    mx, sub, smtps = free_port(), free_port(), free_port()
    conf = os.path.join(d, "clearmta.conf")
    with open(conf, "w") as f:
        f.write("hostname bench.example\nlisten mx 127.0.0.1:%d\nlisten submission 127.0.0.1:%d\n"
                "listen submissions 127.0.0.1:%d\ndata_dir %s\nmax_connections_per_ip 100000\n"
                "domain example.test users alice\n" % (mx, sub, smtps, d))
        if os.geteuid() == 0:
            f.write("user root\n")  # the temp dir is root's: no drop to clearmta
    log = open(os.path.join(d, "log"), "w")
    srv = subprocess.Popen([binary, "serve", "-c", conf], stderr=log,
                           preexec_fn=raise_fd_limit)
    try:
        wait_port(mx)
        ctx = client_context()
        time.sleep(0.5)
        before = procs.rss_kb(srv.pid)
        conns = idle_starttls(ctx, mx, n)
        time.sleep(0.5)
        after = procs.rss_kb(srv.pid)
        print("idle TLS connections (STARTTLS + EHLO): %d, resident memory per connection: %.1f KiB"
              % (n, (after - before) / n))
        for t, _ in conns:
            t.close()
        time.sleep(0.5)
        rate = handshakes(ctx, smtps, 5.0, 2)
        print("implicit-TLS handshakes per second (2 client threads, 5 s): %.0f" % rate)
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(timeout=30)


if __name__ == "__main__":
    main()
