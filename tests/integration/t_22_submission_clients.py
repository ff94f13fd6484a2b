"""t_22_submission_clients — real mail clients submitting through STARTTLS + AUTH and implicit
TLS: Python smtplib (starttls/login, SMTP_SSL), swaks, openssl s_client, curl (smtp:// with
--ssl-reqd, smtps://) and msmtp (GnuTLS + GNU SASL). Each message must reach bob's Maildir. A
test is skipped only when its tool is not installed (scripts/deps.sh test installs them)."""
import os
import shutil
import smtplib
import subprocess
import unittest

from harness import (ServerTestCase, auth_server, free_ports, make_message, sasl_plain,
                     split_trace_headers, tls_client_context)

CLIENT_TIMEOUT = 30


class SubmissionClients(ServerTestCase):
    def need(self, tool):
        path = shutil.which(tool)
        if not path:
            self.skipTest("%s is not installed (scripts/deps.sh test installs it)" % tool)
        return path

    def run_client(self, argv, stdin=None):
        p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=CLIENT_TIMEOUT)
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def message_file(self, msg):
        path = os.path.join(self.mkdtemp(), "message.eml")
        with open(path, "wb") as f:
            f.write(msg)
        return path

    def implicit_tls_server(self):
        mx, sub, port = free_ports(3)
        srv = auth_server(self, ["listen submissions 127.0.0.1:%d" % port], ports=(mx, sub))
        return srv, port

    def assertDeliveredToBob(self, srv, msg=None, contains=None):
        _rp, received, rest = split_trace_headers(srv.wait_mail("bob", 1)[0])
        if msg is not None:
            self.assertEqual(rest, msg)
        if contains is not None:
            self.assertIn(contains, rest)
        self.assertIn(b"with ESMTPSA", received, "not recorded as TLS + AUTH: %r" % received)
        return rest

    # ---- Python smtplib ----

    def test_smtplib_starttls_login(self):
        srv = auth_server(self)
        msg = make_message("t22-smtplib", sender="alice@example.test", rcpt="bob@example.test")
        with smtplib.SMTP("127.0.0.1", srv.sub_port, timeout=10) as s:
            s.ehlo("client.example")
            self.assertTrue(s.has_extn("starttls"))
            self.assertFalse(s.has_extn("auth"))
            s.starttls(context=tls_client_context())
            s.ehlo("client.example")
            self.assertIn("PLAIN", s.esmtp_features["auth"].upper())
            self.assertEqual(s.login("alice", "alice-secret")[0], 235)
            self.assertEqual(s.sendmail("alice@example.test", ["bob@example.test"], msg), {})
        self.assertDeliveredToBob(srv, msg)

    def test_smtplib_login_refused_with_wrong_password(self):
        srv = auth_server(self)
        with smtplib.SMTP("127.0.0.1", srv.sub_port, timeout=10) as s:
            s.starttls(context=tls_client_context())
            with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
                s.login("alice", "not-the-secret")
            self.assertEqual(cm.exception.smtp_code, 535)
            with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
                s.sendmail("alice@example.test", ["bob@example.test"], b"Subject: x\r\n\r\nx\r\n")
            self.assertEqual(cm.exception.smtp_code, 530)

    def test_smtplib_login_without_starttls_is_refused(self):
        srv = auth_server(self)
        with smtplib.SMTP("127.0.0.1", srv.sub_port, timeout=10) as s:
            s.ehlo("client.example")
            # smtplib will not even try: AUTH is not advertised before TLS.
            with self.assertRaises(smtplib.SMTPNotSupportedError):
                s.login("alice", "alice-secret")
            code, _ = s.docmd("AUTH", "PLAIN " + sasl_plain("alice", "alice-secret"))
            self.assertEqual(code, 538)

    def test_smtplib_ssl_implicit_tls(self):
        srv, port = self.implicit_tls_server()
        msg = make_message("t22-smtp-ssl", sender="alice@example.test", rcpt="bob@example.test")
        with smtplib.SMTP_SSL("127.0.0.1", port, timeout=10, context=tls_client_context()) as s:
            s.ehlo("client.example")
            self.assertFalse(s.has_extn("starttls"))
            self.assertEqual(s.login("alice", "alice-secret")[0], 235)
            self.assertEqual(s.sendmail("alice@example.test", ["bob@example.test"], msg), {})
        self.assertDeliveredToBob(srv, msg)

    # ---- swaks ----

    def test_swaks_tls_auth_login(self):
        swaks = self.need("swaks")
        srv = auth_server(self)
        rc, out = self.run_client([swaks, "--server", "127.0.0.1:%d" % srv.sub_port, "--tls",
                                   "--auth", "LOGIN", "--auth-user", "alice",
                                   "--auth-password", "alice-secret",
                                   "--helo", "client.example",
                                   "--from", "alice@example.test", "--to", "bob@example.test",
                                   "--header", "Subject: t22-swaks", "--body", "via swaks"])
        self.assertEqual(rc, 0, out)
        self.assertIn("235 2.7.0", out)
        rest = self.assertDeliveredToBob(srv, contains=b"Subject: t22-swaks\r\n")
        self.assertIn(b"via swaks", rest)

    def test_swaks_tls_auth_plain_wrong_password(self):
        swaks = self.need("swaks")
        srv = auth_server(self)
        rc, out = self.run_client([swaks, "--server", "127.0.0.1:%d" % srv.sub_port, "--tls",
                                   "--auth", "PLAIN", "--auth-user", "alice",
                                   "--auth-password", "wrong-secret",
                                   "--from", "alice@example.test", "--to", "bob@example.test"])
        self.assertNotEqual(rc, 0, out)
        self.assertIn("535 5.7.8", out)

    # ---- openssl s_client ----

    def test_openssl_s_client_starttls(self):
        openssl = self.need("openssl")
        srv = auth_server(self)
        msg = make_message("t22-s-client", sender="alice@example.test", rcpt="bob@example.test")
        # s_client does EHLO + STARTTLS itself, then copies stdin into the TLS session.
        script = (b"EHLO client.example\r\n"
                  b"AUTH PLAIN " + sasl_plain("alice", "alice-secret").encode() + b"\r\n"
                  b"MAIL FROM:<alice@example.test>\r\n"
                  b"RCPT TO:<bob@example.test>\r\n"
                  b"DATA\r\n" + msg + b".\r\n"
                  b"QUIT\r\n")
        rc, out = self.run_client([openssl, "s_client", "-starttls", "smtp", "-connect",
                                   "127.0.0.1:%d" % srv.sub_port, "-quiet"], stdin=script)
        self.assertIn("235 2.7.0", out)
        self.assertIn("queued as", out)
        self.assertIn("221 2.0.0", out)
        self.assertDeliveredToBob(srv, msg)

    # ---- curl ----

    def test_curl_smtp_ssl_reqd(self):
        curl = self.need("curl")
        srv = auth_server(self)
        msg = make_message("t22-curl", sender="alice@example.test", rcpt="bob@example.test",
                           extra_body=b".leading dot\r\n")
        rc, out = self.run_client([curl, "-sS", "--ssl-reqd", "--insecure",
                                   "--url", "smtp://127.0.0.1:%d/client.example" % srv.sub_port,
                                   "--user", "alice:alice-secret",
                                   "--mail-from", "alice@example.test",
                                   "--mail-rcpt", "bob@example.test",
                                   "--upload-file", self.message_file(msg)])
        self.assertEqual(rc, 0, out)
        self.assertDeliveredToBob(srv, msg)

    def test_curl_smtps_implicit_tls(self):
        curl = self.need("curl")
        srv, port = self.implicit_tls_server()
        msg = make_message("t22-curl-smtps", sender="alice@example.test", rcpt="bob@example.test")
        rc, out = self.run_client([curl, "-sS", "--insecure",
                                   "--url", "smtps://127.0.0.1:%d/client.example" % port,
                                   "--user", "bob:bob-secret",
                                   "--mail-from", "bob@example.test",
                                   "--mail-rcpt", "bob@example.test",
                                   "--upload-file", self.message_file(msg)])
        self.assertEqual(rc, 0, out)
        self.assertDeliveredToBob(srv, msg)

    def test_curl_sender_not_owned(self):
        curl = self.need("curl")
        srv = auth_server(self)
        rc, out = self.run_client([curl, "-sS", "--ssl-reqd", "--insecure",
                                   "--url", "smtp://127.0.0.1:%d/client.example" % srv.sub_port,
                                   "--user", "alice:alice-secret",
                                   "--mail-from", "bob@example.test",
                                   "--mail-rcpt", "bob@example.test",
                                   "--upload-file", self.message_file(b"Subject: x\r\n\r\nx\r\n")])
        self.assertNotEqual(rc, 0, out)
        self.assertIn("553", out)
        self.assertEqual(srv.maildir_files("bob"), [])

    # ---- msmtp ----

    def test_msmtp_starttls_auth(self):
        msmtp = self.need("msmtp")
        srv = auth_server(self)
        work = self.mkdtemp()
        conf = os.path.join(work, "msmtprc")
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # msmtp insists
        with os.fdopen(fd, "w") as f:
            f.write("defaults\n"
                    "logfile %s\n"
                    "account default\n"
                    "host 127.0.0.1\n"
                    "port %d\n"
                    "domain client.example\n"
                    "tls on\n"
                    "tls_starttls on\n"
                    "tls_certcheck off\n"
                    "auth on\n"
                    "user alice\n"
                    "password alice-secret\n"
                    "from alice@example.test\n" % (os.path.join(work, "msmtp.log"), srv.sub_port))
        msg = make_message("t22-msmtp", sender="alice@example.test", rcpt="bob@example.test")
        rc, out = self.run_client([msmtp, "-C", conf, "-a", "default", "bob@example.test"],
                                  stdin=msg)
        self.assertEqual(rc, 0, out)
        self.assertDeliveredToBob(srv, msg)


if __name__ == "__main__":
    unittest.main()
