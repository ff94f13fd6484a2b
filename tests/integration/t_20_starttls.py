"""t_20_starttls — STARTTLS (RFC 3207) and implicit TLS (RFC 8314) against the real server: what
EHLO offers before and after TLS, the session reset after the handshake, the STARTTLS replies
(220 2.0.0, 454 4.7.0, 501 5.5.4, 503 5.5.1), command injection across the handshake
(CVE-2011-0411 class), the generated certificate and the protocol floor (TLS 1.2)."""
import os
import re
import shutil
import ssl
import subprocess
import time
import unittest
import warnings

from harness import (HOSTNAME, ServerTestCase, auth_server, dot_stuff, free_ports,
                     login, make_message, sasl_plain, split_trace_headers, starttls,
                     tls_client_context)


def ehlo_keywords(reply):
    """The extension keywords of an EHLO reply (first line is the host name)."""
    return [l[4:].split(" ")[0].upper() for l in reply.lines[1:]]


class StartTLS(ServerTestCase):
    def test_before_tls_starttls_offered_auth_not_then_both_swap(self):
        srv = auth_server(self)
        c = self.connect(srv.sub_port)
        r = c.ehlo()
        self.assertIn("STARTTLS", ehlo_keywords(r))
        self.assertNotIn("AUTH", ehlo_keywords(r), "AUTH offered before TLS: " + r.text)
        c.cmd("STARTTLS")
        c.expect("220 2.0.0", "Ready to start TLS")
        self.assertEqual(c.start_tls(), b"")
        r = c.ehlo()
        self.assertIn("AUTH PLAIN LOGIN", r.text)
        self.assertNotIn("STARTTLS", ehlo_keywords(r), "STARTTLS offered inside TLS")
        login(c)

    def test_session_reset_after_handshake(self):
        # An open transaction before STARTTLS is gone, and so is the EHLO: MAIL needs a new
        # EHLO first (RFC 3207 §4.2). The MX port also offers STARTTLS.
        srv = auth_server(self)
        c = self.connect(srv)
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.org>")
        c.expect("250 2.1.0")
        c.cmd("RCPT TO:<alice@example.test>")
        c.expect("250 2.1.5")
        c.cmd("STARTTLS")
        c.expect("220 2.0.0")
        self.assertEqual(c.start_tls(), b"")
        c.cmd("MAIL FROM:<sender@example.org>")
        c.expect("503 5.5.1", "HELO/EHLO first")
        c.cmd("RCPT TO:<alice@example.test>")
        c.expect("503 5.5.1")
        c.cmd("DATA")
        c.expect("503 5.5.1")
        r = c.ehlo()
        self.assertNotIn("STARTTLS", ehlo_keywords(r))
        self.assertNotIn("AUTH", ehlo_keywords(r), "the MX port offers AUTH inside TLS")
        # The transaction from before the handshake does not exist any more.
        c.cmd("RCPT TO:<alice@example.test>")
        c.expect("503 5.5.1", "need MAIL")
        msg = make_message("t20-after-tls")
        c.cmd("MAIL FROM:<sender@example.org>")
        c.expect("250 2.1.0")
        c.cmd("RCPT TO:<bob@example.test>")
        c.expect("250 2.1.5")
        c.cmd("DATA")
        c.expect("354")
        c.send(dot_stuff(msg))
        c.expect("250 2.0.0", "queued as")
        _rp, received, rest = split_trace_headers(srv.wait_mail("bob", 1)[0])
        self.assertEqual(rest, msg)
        self.assertIn(b"with ESMTPS", received, "Received does not record TLS")
        time.sleep(0.2)
        self.assertEqual(srv.maildir_files("alice"), [], "the pre-TLS transaction was delivered")

    def test_submission_after_tls_ehlo_required_before_auth(self):
        srv = auth_server(self)
        c = self.connect(srv.sub_port)
        c.ehlo()
        c.cmd("STARTTLS")
        c.expect("220 2.0.0")
        c.start_tls()
        c.cmd("AUTH PLAIN " + sasl_plain("alice", "alice-secret"))
        c.expect("503 5.5.1", "HELO/EHLO first")
        c.cmd("MAIL FROM:<alice@example.test>")
        c.expect("503 5.5.1")
        c.ehlo()
        login(c)

    def test_starttls_inside_tls_503(self):
        srv = auth_server(self)
        c = self.connect(srv.sub_port)
        starttls(c)
        c.cmd("STARTTLS")
        c.expect("503 5.5.1", "TLS already active")
        c.cmd("NOOP")
        c.expect("250 2.0.0")
        login(c)

    def test_starttls_with_argument_501(self):
        srv = auth_server(self)
        c = self.connect(srv.sub_port)
        c.ehlo()
        c.cmd("STARTTLS now")
        c.expect("501 5.5.4")
        c.cmd("NOOP")  # still plaintext, still talking
        c.expect("250 2.0.0")
        c.cmd("STARTTLS")
        c.expect("220 2.0.0")
        self.assertEqual(c.start_tls(), b"")
        c.ehlo()

    def test_no_starttls_listener_454_and_no_auth(self):
        mx, sub, plain = free_ports(3)
        srv = auth_server(self, ["listen submission 127.0.0.1:%d no-starttls" % plain],
                          ports=(mx, sub))
        c = self.connect(plain)
        r = c.ehlo()
        self.assertNotIn("STARTTLS", ehlo_keywords(r))
        self.assertNotIn("AUTH", ehlo_keywords(r))
        c.cmd("STARTTLS")
        c.expect("454 4.7.0", "TLS not available")
        # AUTH stays refused: it needs TLS, which this listener never has.
        c.cmd("AUTH PLAIN " + sasl_plain("alice", "alice-secret"))
        c.expect("538 5.7.11")
        c.cmd("MAIL FROM:<alice@example.test>")
        c.expect("530 5.7.0")
        c.cmd("QUIT")
        c.expect("221")


class ImplicitTLS(ServerTestCase):
    def start(self):
        mx, sub, tls_port = free_ports(3)
        srv = auth_server(self, ["listen submissions 127.0.0.1:%d" % tls_port], ports=(mx, sub))
        return srv, tls_port

    def test_greeting_inside_tls_auth_offered_starttls_503(self):
        srv, port = self.start()
        c = self.connect(port, greet=False)
        c.start_tls()
        c.expect("220", HOSTNAME)
        self.assertIn(c.sock.version(), ("TLSv1.2", "TLSv1.3"))
        r = c.ehlo()
        self.assertIn("AUTH PLAIN LOGIN", r.text)
        self.assertNotIn("STARTTLS", ehlo_keywords(r))
        c.cmd("STARTTLS")
        c.expect("503 5.5.1", "TLS already active")
        c.cmd("MAIL FROM:<alice@example.test>")
        c.expect("530 5.7.0")
        login(c)
        c.cmd("MAIL FROM:<alice@example.test>")
        c.expect("250 2.1.0")
        self.assertIsNotNone(srv.wait_log(r"tls: \[127\.0\.0\.1\] TLSv1\.[23] ", timeout=5))

    def test_plaintext_client_on_implicit_port_gets_nothing(self):
        srv, port = self.start()
        c = self.connect(port, greet=False)
        c.send(b"EHLO client.example\r\n")
        self.assertTrue(c.closed(timeout=5), "the server answered or kept a plaintext client")
        self.assertIsNotNone(srv.wait_log(r"tls: handshake failed with \[127\.0\.0\.1\]",
                                          timeout=5))
        # The listener goes on serving.
        c2 = self.connect(port, greet=False)
        c2.start_tls()
        c2.expect("220")

    def test_silent_clients_do_not_hold_a_handshake_open(self):
        # A client that never sends its ClientHello (implicit TLS, or after 220 to STARTTLS)
        # is dropped at the command timeout, like an idle session.
        mx, sub, port = free_ports(3)
        srv = auth_server(self, ["listen submissions 127.0.0.1:%d" % port, "timeout_command 1"],
                          ports=(mx, sub))
        silent = self.connect(port, greet=False)
        c = self.connect(srv.sub_port)
        c.ehlo()
        c.cmd("STARTTLS")
        c.expect("220 2.0.0")
        started = time.monotonic()
        self.assertTrue(silent.closed(timeout=6), "implicit-TLS client never sent a hello")
        self.assertTrue(c.closed(timeout=6), "STARTTLS client never sent a hello")
        self.assertLess(time.monotonic() - started, 6)


class Injection(ServerTestCase):
    """Commands pipelined behind STARTTLS in the same write arrive before the handshake; they
    must be thrown away, never answered or executed inside TLS."""

    def inject(self, port, junk):
        c = self.connect(port)
        c.ehlo()
        c.send(b"STARTTLS\r\n" + junk)
        c.expect("220 2.0.0")
        leftover = c.start_tls()
        self.assertEqual(leftover, b"", "plaintext replies after 220: %r" % leftover)
        c.cmd("EHLO client.example")
        r = c.reply()
        self.assertTrue(len(r.lines) > 1 and r.lines[0].startswith("250-"),
                        "the first reply inside TLS is not the EHLO reply: %r" % r.text)
        return c

    def test_noop_behind_starttls_is_dropped(self):
        srv = auth_server(self)
        for port in (srv.sub_port, srv.mx_port):
            with self.subTest(port=port):
                c = self.inject(port, b"NOOP\r\n")
                c.cmd("NOOP")
                c.expect("250 2.0.0")
                c.cmd("QUIT")
                c.expect("221")  # nothing queued up before the QUIT's reply

    def test_rset_mail_behind_starttls_is_dropped(self):
        srv = auth_server(self)
        c = self.inject(srv.mx_port, b"RSET\r\nMAIL FROM:<x@y>\r\n")
        c.cmd("RCPT TO:<alice@example.test>")
        c.expect("503 5.5.1", "need MAIL")  # the injected MAIL never ran
        c.cmd("QUIT")
        c.expect("221")
        c = self.inject(srv.sub_port, b"RSET\r\nMAIL FROM:<x@y>\r\n")
        login(c)
        c.cmd("RCPT TO:<alice@example.test>")
        c.expect("503 5.5.1", "need MAIL")
        c.cmd("QUIT")
        c.expect("221")

    def test_auth_behind_starttls_is_dropped(self):
        srv = auth_server(self)
        c = self.inject(srv.sub_port, ("AUTH PLAIN %s\r\n" % sasl_plain("alice", "alice-secret"))
                        .encode())
        c.cmd("MAIL FROM:<alice@example.test>")
        c.expect("530 5.7.0")  # the injected AUTH did not log the session in
        login(c)


class Certificate(ServerTestCase):
    def fetch_der(self, port):
        c = self.connect(port)
        starttls(c)
        der = c.sock.getpeercert(binary_form=True)
        version = c.sock.version()
        c.cmd("QUIT")
        c.expect("221")
        c.close()
        return der, version

    def test_generated_certificate_names_the_hostname(self):
        openssl = shutil.which("openssl")
        if not openssl:
            self.skipTest("openssl is not installed")
        name = "tls-it.example.test"
        srv = auth_server(self, ["hostname %s" % name])
        der, version = self.fetch_der(srv.sub_port)
        self.assertIn(version, ("TLSv1.2", "TLSv1.3"))
        self.assertIsNotNone(srv.wait_log(r"tls: \[127\.0\.0\.1\] TLSv1\.3 ", timeout=5),
                             "no 'tls: [127.0.0.1] TLSv1.3 ...' log line")
        p = subprocess.run([openssl, "x509", "-inform", "DER", "-noout", "-subject", "-ext",
                            "subjectAltName"], input=der, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
        text = p.stdout.decode()
        self.assertEqual(p.returncode, 0, text)
        self.assertRegex(text, r"subject=\s*CN\s*=\s*%s\b" % re.escape(name))
        self.assertIn("DNS:%s" % name, text)
        # It is the file generated into DATA_DIR/tls, key readable by the owner only.
        with open(os.path.join(srv.data_dir, "tls", "cert.pem")) as f:
            self.assertEqual(ssl.PEM_cert_to_DER_cert(f.read()), der)
        key_mode = os.stat(os.path.join(srv.data_dir, "tls", "key.pem")).st_mode & 0o777
        self.assertEqual(key_mode & 0o077, 0, "key.pem mode %o" % key_mode)
        # Generated at the first start only: a restart serves the same certificate.
        self.finish_server(srv)
        self.restart_server(srv)
        self.assertEqual(self.fetch_der(srv.sub_port)[0], der)

    def test_tls12_accepted_tls11_refused(self):
        srv = auth_server(self)
        c = self.connect(srv.sub_port)
        c.ehlo()
        c.cmd("STARTTLS")
        c.expect("220 2.0.0")
        c.start_tls(tls_client_context(maximum=ssl.TLSVersion.TLSv1_2))
        self.assertEqual(c.sock.version(), "TLSv1.2")
        c.ehlo()
        login(c)
        # A client that cannot go beyond TLS 1.1 (if this OpenSSL can still build one).
        try:
            with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is the point
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx = tls_client_context(minimum=ssl.TLSVersion.TLSv1,
                                         maximum=ssl.TLSVersion.TLSv1_1)
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError) as e:
            self.skipTest("this OpenSSL cannot build a TLS 1.1 client: %s" % e)
        old = self.connect(srv.sub_port)
        old.ehlo()
        old.cmd("STARTTLS")
        old.expect("220 2.0.0")
        try:
            old.start_tls(ctx)
        except ssl.SSLError as e:
            if "NO_PROTOCOLS_AVAILABLE" in str(e) or "no protocols available" in str(e):
                self.skipTest("this OpenSSL refuses to offer TLS 1.1: %s" % e)
        except OSError:
            pass
        else:
            self.fail("TLS handshake at %s succeeded" % old.sock.version())
        self.assertIsNotNone(srv.wait_log(r"tls: handshake failed with \[127\.0\.0\.1\]",
                                          timeout=5))


if __name__ == "__main__":
    unittest.main()
