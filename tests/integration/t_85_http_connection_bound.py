"""t_85_http_connection_bound — a listener off loopback holds at most HTTP_CONNECTIONS_MAX (64)
connections: a crowd of idle TCP clients that never start TLS does not take more descriptors
than that (the rest wait in the kernel's backlog) and SMTP keeps serving; once they leave the
console answers again, and connections still open when the server stops end cleanly. Over that
TLS the session cookie is Secure. Request shapes: two Host fields get 403 whichever comes
first; a target in absolute-form is judged by its authority (another host: 403; this one:
served), "//metrics" is no authority but a path; Host is case-insensitive; two Content-Length fields get 400 and the connection closes, so what follows
on it is never read as a request."""
import http.client
import os
import smtplib
import socket
import ssl
import unittest

import t_81_http_security as http_security
from console_http import ConsoleCase
from harness import ServerTestCase, free_ports, wait_until

CONNECTIONS_MAX = 64
CROWD = CONNECTIONS_MAX + 36


def connections(pid, port):
    """The TCP connections to port that process pid holds a descriptor of (not its listener),
    counted by inode: the kernel writes /proc/net/tcp a page at a time, and sockets opened or
    closed meanwhile (by tests running beside this one) can make it show an entry twice."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for name in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, name))
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    held = set()
    for table in ("tcp", "tcp6"):
        with open("/proc/%d/net/%s" % (pid, table)) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] != "0A" and fields[9] in inodes:
                    held.add(fields[9])
    return len(held)


class ConnectionBound(ServerTestCase):
    def test_idle_crowd_is_bounded(self):
        addr = http_security.outgoing_address()
        if not addr:
            raise unittest.SkipTest("this host has no address but loopback to connect from")
        port = free_ports(1)[0]
        srv = self.start_server(extra_config=["listen http 0.0.0.0:%d" % port])

        def held():
            return connections(srv.proc.pid, port)
        crowd = []
        try:
            for _ in range(CROWD):
                crowd.append(socket.create_connection((addr, port), timeout=10))
            # the server accepts up to the bound, then stops
            self.assertTrue(wait_until(lambda: held() >= CONNECTIONS_MAX, 10), held())
            self.assertFalse(wait_until(lambda: held() > CONNECTIONS_MAX, 1.0), held())
            with smtplib.SMTP("127.0.0.1", srv.mx_port, timeout=10) as s:
                self.assertEqual(s.noop()[0], 250)
        finally:
            for s in crowd:
                s.close()

        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the server's self-signed certificate

        def page():
            c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
            try:
                c.request("GET", "/", headers={"Host": "127.0.0.1:%d" % port})
                r = c.getresponse()
                r.read()
                return r.status, r.getheader("Set-Cookie")
            except OSError:
                return None
            finally:
                c.close()
        answer = wait_until(page, 15)
        self.assertIsNotNone(answer, srv.log())
        self.assertEqual(answer[0], 200)
        self.assertRegex(answer[1], r"^clearmta_csrf=[0-9a-f]{32}; Path=/; SameSite=Strict; Secure$")
        self.assertTrue(wait_until(lambda: held() == 0, 15), held())

        # connections still open when the server stops end with it, cleanly
        tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
        idle = [socket.create_connection((addr, port), timeout=10) for _ in range(3)]
        try:
            self.assertTrue(wait_until(lambda: held() == 4, 10), held())
            self.assertEqual(srv.stop(), (0, False), srv.log())
            self.assertNotIn("Sanitizer", srv.log())
        finally:
            tls.close()
            for s in idle:
                s.close()


class RequestShapes(ConsoleCase):
    def test_host_fields_and_absolute_form(self):
        self.start_console()
        p = self.http_port
        here = "127.0.0.1:%d" % p
        self.assertEqual(self.get("/api/queue", host="LOCALHOST:%d" % p).status, 200)
        for first, second in ((here, "evil.example"), ("evil.example", here), (here, here)):
            with self.subTest(hosts=(first, second)):
                r = self.get("/api/queue", host=first, headers={"Host": second})
                self.assertEqual(r.status, 403, r.text())
        self.assertEqual(self.get("http://evil.example/api/queue").status, 403)
        self.assertEqual(self.get("http://evil.example:%d/api/queue" % p).status, 403)
        self.assertEqual(self.get("http://%s/api/queue" % here, host="evil.example").status, 200)
        self.assertIn(self.get("//metrics").status, (400, 404))

        s = socket.create_connection(("127.0.0.1", p), timeout=10)
        try:
            s.sendall(b"POST /api/explain HTTP/1.1\r\nHost: %s\r\nContent-Length: 3\r\n"
                      b"Content-Length: 40\r\n\r\n550GET /metrics HTTP/1.1\r\nHost: %s\r\n\r\n"
                      % (here.encode(), here.encode()))
            answer = b""
            while True:
                part = s.recv(65536)
                if not part:
                    break
                answer += part
        finally:
            s.close()
        self.assertRegex(answer, rb"^HTTP/1\.1 400 ")
        self.assertEqual(answer.count(b"HTTP/1.1 "), 1, answer)


if __name__ == "__main__":
    unittest.main()
