"""t_81_http_security — the HTTP listener as an attacker meets it: a Host that is not the
server's (DNS rebinding) gets 403, localhost and the address pass; queue actions without the
session's CSRF token, with a wrong one or one the server never issued get 403 and change
nothing, a GET on an action 405; oversized headers (400, as evhttp answers), an oversized body (413) and
malformed requests (400) are answered and SMTP keeps serving; slow clients that never finish
their request do not stop others and are dropped after the timeout; a client not on loopback
needs the http_password_file token, as a bearer token or as HTTP Basic's password, over the TLS
that a listener off loopback speaks (reached through this host's own non-loopback address)."""
import base64
import http.client
import json
import os
import socket
import ssl
import time
import unittest

from console_http import ConsoleCase, request
from harness import free_ports, wait_until

SLOW_CLIENTS = 20


class HostGuard(ConsoleCase):
    def test_host_header(self):
        self.start_console()
        p = self.http_port
        self.assertEqual(self.get("/").status, 200)
        self.assertEqual(self.get("/", host="localhost:%d" % p).status, 200)
        for host in ["evil.example", "evil.example:%d" % p, "127.0.0.1", "localhost",
                     "127.0.0.1:1", "127.0.0.1:%d.evil.example" % p, ""]:
            with self.subTest(host=host):
                r = self.get("/api/queue", host=host)
                self.assertEqual(r.status, 403, r.text())
        self.assertEqual(self.get("/metrics", host="attacker.example:%d" % p).status, 403)

    def test_headers_of_the_page(self):
        self.start_console()
        r = self.get("/")
        self.assertEqual(r.status, 200)
        csp = r.header("Content-Security-Policy")
        self.assertIn("default-src 'self'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertEqual(r.header("X-Frame-Options"), "DENY")
        cookie = r.header("Set-Cookie")
        self.assertRegex(cookie, r"^clearmta_csrf=[0-9a-f]{32}; Path=/; SameSite=Strict$")
        self.assertNotIn(b"<script>", r.body)  # no inline script: the CSP would block it
        self.assertNotIn(b"style=", r.body)


class Csrf(ConsoleCase):
    def test_actions_need_the_session_token(self):
        srv = self.start_console()
        qid = "0123456789ABCDEF"
        token, good = self.session_token()
        path = "/api/queue/%s/hold" % qid
        cases = {
            "no token": {},
            "cookie only": {"Cookie": "clearmta_csrf=" + token},
            "header only": {"X-CSRF-Token": token},
            "wrong header": {"Cookie": "clearmta_csrf=" + token, "X-CSRF-Token": "0" * 32},
            "never issued": {"Cookie": "clearmta_csrf=" + "a" * 32, "X-CSRF-Token": "a" * 32},
        }
        for name, headers in cases.items():
            with self.subTest(name):
                r = self.post(path, headers=headers)
                self.assertEqual(r.status, 403, r.text())
        self.assertEqual(self.get(path).status, 405)
        r = self.post(path, headers=good)
        self.assertEqual(r.status, 404, r.text())  # past the token: no such message
        self.assertIn("no message", r.text())
        for bad in ["../x", "a%20b", "x;y", "-x"]:
            with self.subTest(id=bad):
                self.assertIn(self.post("/api/queue/%s/hold" % bad, headers=good).status,
                              (400, 404))
        self.assertEqual(self.post("/api/queue/%s/explode" % qid, headers=good).status, 404)
        self.assertTrue(srv.running())

    def test_refused_action_changes_nothing(self):
        srv, _ = self.start_relayed_console()
        qid = self.submit_remote(srv, "csrf-nothing")
        r = self.post("/api/queue/%s/hold" % qid, headers={"X-CSRF-Token": "b" * 32})
        self.assertEqual(r.status, 403)
        listing = json.loads(self.get("/api/queue").text())
        self.assertEqual([m["held"] for m in listing["messages"] if m["id"] == qid], [False])


class Limits(ConsoleCase):
    def smtp_still_serves(self, srv):
        c = self.connect(srv)
        c.cmd("NOOP")
        c.expect("250")
        c.cmd("QUIT")
        c.expect("221")

    def test_oversized_and_malformed(self):
        srv = self.start_console()
        r = self.get("/api/queue", headers={"X-Big": "a" * 20000})
        self.assertEqual(r.status, 400)
        # the body is refused from its Content-Length, before it is sent (sending it would
        # race the server's close)
        s = socket.create_connection(("127.0.0.1", self.http_port), timeout=10)
        try:
            s.sendall(b"POST /api/explain HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                      b"Content-Length: %d\r\n\r\n" % (self.http_port, 1024 * 1024 + 1))
            self.assertRegex(s.recv(4096), rb"^HTTP/1\.1 413 ")
        finally:
            s.close()
        self.assertEqual(self.post("/api/explain", body=b"x" * (1024 * 1024)).status, 400)
        for raw in [b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
                    b"\x00\x01\x02\r\n\r\n", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
                    b"POST /api/explain HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n"]:
            with self.subTest(raw=raw[:30]):
                s = socket.create_connection(("127.0.0.1", self.http_port), timeout=10)
                try:
                    s.sendall(raw)
                    data = s.recv(4096)
                finally:
                    s.close()
                if data:  # an answer is a 4xx; a closed connection is fine too
                    self.assertRegex(data, rb"^HTTP/1\.[01] 4\d\d ")
        self.smtp_still_serves(srv)
        self.assertEqual(self.get("/api/queue").status, 200)

    def test_slow_clients(self):
        srv = self.start_console()
        slow = []
        for _ in range(SLOW_CLIENTS):
            s = socket.create_connection(("127.0.0.1", self.http_port), timeout=10)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % self.http_port)
            slow.append(s)
        self.addCleanup(lambda: [s.close() for s in slow])
        started = time.monotonic()
        self.assertEqual(self.get("/metrics").status, 200)
        self.smtp_still_serves(srv)
        self.assertLess(time.monotonic() - started, 5.0)
        # the server drops them after its timeout (10 s)
        def all_closed():
            for s in slow:
                s.settimeout(0.2)
                try:
                    if s.recv(1) != b"":
                        return False
                except socket.timeout:
                    return False
                except OSError:
                    pass
            return True
        self.assertTrue(wait_until(all_closed, 30.0, interval=0.5))


def outgoing_address():
    """This host's address towards the outside (no packet is sent), or None."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))
        addr = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if addr.startswith("127.") else addr


class Token(ConsoleCase):
    def test_clients_not_on_loopback_need_the_token(self):
        addr = outgoing_address()
        if not addr:
            raise unittest.SkipTest("this host has no address but loopback to connect from")
        port = free_ports(1)[0]
        work = self.mkdtemp()
        token_file = os.path.join(work, "http-token")
        token = "s3cret-token-0123456789"
        with open(token_file, "w") as f:
            f.write(token + "\n")
        os.chmod(token_file, 0o600)
        self.start_server(extra_config=["listen http 0.0.0.0:%d" % port,
                                        "http_password_file %s" % token_file])
        host = "%s:%d" % (addr, port)

        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the server's self-signed certificate

        def ask(headers, address=addr):
            c = http.client.HTTPSConnection(address, port, timeout=10, context=ctx)
            try:
                c.request("GET", "/api/queue",
                          headers=dict(headers, Host="%s:%d" % (address, port)))
                r = c.getresponse()
                r.read()
                return r.status, r.getheader("WWW-Authenticate")
            finally:
                c.close()

        def basic(user, password):
            return {"Authorization": "Basic " + base64.b64encode(
                ("%s:%s" % (user, password)).encode()).decode()}
        self.assertEqual(ask({}), (401, 'Basic realm="clearmta", charset="UTF-8"'))
        self.assertEqual(ask({"Authorization": "Bearer wrong-token-0123456789"})[0], 401)
        self.assertEqual(ask({"Authorization": "Bearer " + token[:-1]})[0], 401)
        self.assertEqual(ask({"Authorization": "Bearer " + token + "x"})[0], 401)
        self.assertEqual(ask({"Authorization": "Bearer " + token})[0], 200)
        self.assertEqual(ask(basic("admin", token))[0], 200)
        self.assertEqual(ask(basic("admin", "nope"))[0], 401)
        self.assertEqual(ask({"Authorization": "Basic %%%%"})[0], 401)
        self.assertEqual(ask({}, address="127.0.0.1")[0], 200)  # loopback: no token
        # off loopback the listener speaks TLS only: plain HTTP gets no answer
        s = socket.create_connection((addr, port), timeout=10)
        try:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: %s\r\n\r\n" % host.encode())
            self.assertNotRegex(s.recv(4096), rb"^HTTP/1\.1 200")
        except OSError:
            pass  # reset: the handshake failed
        finally:
            s.close()


if __name__ == "__main__":
    unittest.main()
