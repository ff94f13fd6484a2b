"""t_93_tls_abuse — TLS as an attacker uses it: a client silent after STARTTLS, or dripping its
ClientHello a byte at a time, is closed after tls_handshake_timeout; an address beginning more
than tls_handshakes_per_second handshakes is cut off (both follow a reload); TLS alerts,
truncated records and plaintext where a record belongs end the connection cleanly (the
sanitizer build checks for leaks and crashes); renegotiation (openssl s_client "R") is refused. The STARTTLS pipelining
case (CVE-2011-0411) is covered by t_13 and t_20."""
import shutil
import socket
import ssl
import subprocess
import time
import unittest

from harness import Conn, ServerTestCase, auth_server, starttls

# A TLS 1.2 ClientHello's record header and the first bytes of its handshake header.
HELLO_START = bytes.fromhex("16030100c8010000c40303")


class TLSAbuse(ServerTestCase):
    def plain(self, srv, source="127.0.0.1"):
        """A submission connection right after 220 to STARTTLS, still in plaintext."""
        c = Conn(srv.sub_port, source=source, timeout=10)
        self.addCleanup(c.close)
        c.expect("220")
        c.ehlo()
        c.cmd("STARTTLS")
        c.expect("220 2.0.0")
        return c

    def assert_served(self, srv):
        c = self.connect(srv.sub_port)
        starttls(c)
        c.cmd("QUIT")
        c.expect("221")

    def test_handshake_timeout_silent_and_dripping(self):
        srv = auth_server(self, ["tls_handshake_timeout 2"])
        silent = self.plain(srv)
        started = time.monotonic()
        self.assertTrue(silent.closed(timeout=10), "silent handshake left open")
        self.assertLess(time.monotonic() - started, 8)
        drip = self.plain(srv)
        started = time.monotonic()
        closed = False
        for b in HELLO_START * 4:  # one byte every 0.5 s: never idle for the timeout
            try:
                drip.sock.send(bytes([b]))
            except OSError:
                closed = True
                break
            time.sleep(0.5)
            if time.monotonic() - started > 12:
                break
        self.assertTrue(closed or ends(drip), "dripped handshake left open")
        self.assertLess(time.monotonic() - started, 10)
        self.assertIsNotNone(srv.wait_log(r"tls: handshake with \[127\.0\.0\.1\] not done in 2 s",
                                          timeout=5))
        self.assert_served(srv)

    def test_handshakes_per_second_per_address(self):
        srv = auth_server(self, ["tls_handshakes_per_second 3"])
        for _ in range(3):
            c = Conn(srv.sub_port, source="127.0.6.1", timeout=10)
            self.addCleanup(c.close)
            c.expect("220")
            starttls(c)
        fourth = self.plain(srv, source="127.0.6.1")
        with self.assertRaises((OSError, ssl.SSLError)):
            fourth.start_tls()
            fourth.ehlo()
        self.assertIn("over tls_handshakes_per_second 3: closed", srv.log())
        # Another address is not affected; the same one again after the second.
        other = Conn(srv.sub_port, source="127.0.6.2", timeout=10)
        self.addCleanup(other.close)
        other.expect("220")
        starttls(other)
        time.sleep(1.1)
        again = Conn(srv.sub_port, source="127.0.6.1", timeout=10)
        self.addCleanup(again.close)
        again.expect("220")
        starttls(again)

    def test_reload_applies_new_handshake_limits(self):
        srv = auth_server(self, ["tls_handshakes_per_second 10", "tls_handshake_timeout 30"])
        srv.rewrite_config(srv.extra_config[:1] +
                           ["tls_handshakes_per_second 2", "tls_handshake_timeout 2"])
        self.assertTrue(srv.reload(1), "no reload outcome in the log")
        self.assertIn("in force for new sessions", srv.log())
        for _ in range(2):
            c = Conn(srv.sub_port, source="127.0.6.3", timeout=10)
            self.addCleanup(c.close)
            c.expect("220")
            starttls(c)
        third = self.plain(srv, source="127.0.6.3")
        with self.assertRaises((OSError, ssl.SSLError)):
            third.start_tls()
            third.ehlo()
        self.assertIn("over tls_handshakes_per_second 2: closed", srv.log())
        silent = self.plain(srv, source="127.0.6.4")
        started = time.monotonic()
        self.assertTrue(silent.closed(timeout=20), "silent handshake left open")
        self.assertLess(time.monotonic() - started, 15, "the old 30 s timeout still applies")

    def test_alerts_truncated_records_and_plaintext(self):
        srv = auth_server(self)
        cases = {
            "alert": bytes.fromhex("15030300020228"),          # fatal handshake_failure
            "truncated": HELLO_START + b"\x00" * 20,           # then the client goes away
            "plaintext": b"EHLO after.starttls\r\nMAIL FROM:<a@b>\r\n",
            "oversized": bytes.fromhex("1603014801") + b"\x00" * 64,  # length over 2^14
        }
        for name, data in cases.items():
            with self.subTest(name):
                c = self.plain(srv)
                c.sock.sendall(data)
                if name == "truncated":
                    c.sock.shutdown(socket.SHUT_WR)
                self.assertTrue(ends(c), "%s: connection left open" % name)
                c.close()
        self.assertTrue(srv.wait_log(r"tls: handshake failed with \[127\.0\.0\.1\]", timeout=5))
        self.assert_served(srv)

    def test_renegotiation_refused(self):
        openssl = shutil.which("openssl")
        if not openssl:
            self.skipTest("openssl is not installed")
        srv = auth_server(self)
        p = subprocess.Popen([openssl, "s_client", "-connect", "127.0.0.1:%d" % srv.sub_port,
                              "-starttls", "smtp", "-tls1_2", "-crlf"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        try:
            for line in (b"EHLO renegotiating.example\n", b"R\n", b"NOOP\n"):  # R: renegotiate
                try:
                    p.stdin.write(line)
                    p.stdin.flush()
                except BrokenPipeError:
                    break  # s_client gave up: the server refused
                time.sleep(1)
            out = p.communicate(timeout=15)[0].decode("utf-8", "replace")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertIn("RENEGOTIATING", out)
        self.assertRegex(out, r"(?i)no.renegotiation|alert|errno|closed|error",
                         "renegotiation seemed to succeed:\n" + out[-2000:])
        self.assertEqual(srv.log().count("tls: [127.0.0.1] TLSv1.2"), 1, srv.log())
        self.assert_served(srv)


def ends(c, timeout=10):
    """True when the server closes c within timeout (whatever TLS alert it sends first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c.sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            if not c.sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except OSError:
            return True
    return False


if __name__ == "__main__":
    unittest.main()
