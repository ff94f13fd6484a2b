"""t_14_real_clients — real SMTP clients (swaks, curl; installed by `scripts/deps.sh test`)
against the server: what they send must be accepted and delivered, and their view of a
rejection must be the reply we meant."""
import os
import shutil
import subprocess
import unittest

from harness import ServerTestCase, make_message, split_trace_headers

CLIENT_TIMEOUT = 30


class RealClients(ServerTestCase):
    def need(self, tool):
        path = shutil.which(tool)
        if not path:
            self.skipTest("%s is not installed (scripts/deps.sh test installs it)" % tool)
        return path

    def run_client(self, argv):
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=CLIENT_TIMEOUT)
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def test_swaks_delivers(self):
        swaks = self.need("swaks")
        srv = self.start_server()
        rc, out = self.run_client([swaks, "--server", "127.0.0.1:%d" % srv.mx_port,
                                   "--helo", "client.example", "--from", "sender@example.org",
                                   "--to", "alice@example.test",
                                   "--header", "Subject: t14-swaks",
                                   "--body", "hello from swaks"])
        self.assertEqual(rc, 0, out)
        self.assertIn("250 2.0.0", out)
        msgs = srv.wait_mail("alice", 1)
        rest = split_trace_headers(msgs[0])[2]
        self.assertIn(b"Subject: t14-swaks\r\n", rest)
        self.assertIn(b"hello from swaks", rest)

    def test_swaks_unknown_user(self):
        swaks = self.need("swaks")
        srv = self.start_server()
        rc, out = self.run_client([swaks, "--server", "127.0.0.1:%d" % srv.mx_port,
                                   "--helo", "client.example", "--from", "sender@example.org",
                                   "--to", "nobody@example.test"])
        self.assertNotEqual(rc, 0, out)
        self.assertIn("550 5.1.1", out)
        self.assertEqual(srv.maildir_files("nobody"), [])

    def test_swaks_pipelining_two_recipients(self):
        swaks = self.need("swaks")
        srv = self.start_server()
        rc, out = self.run_client([swaks, "--server", "127.0.0.1:%d" % srv.mx_port,
                                   "--helo", "client.example", "--from", "sender@example.org",
                                   "--to", "alice@example.test,bob@example.test",
                                   "--pipeline",
                                   "--header", "Subject: t14-swaks-pipe",
                                   "--body", "pipelined"])
        self.assertEqual(rc, 0, out)
        for user in ("alice", "bob"):
            rest = split_trace_headers(srv.wait_mail(user, 1)[0])[2]
            self.assertIn(b"Subject: t14-swaks-pipe\r\n", rest)

    def test_curl_upload_delivers_byte_exact(self):
        curl = self.need("curl")
        srv = self.start_server()
        msg = make_message("t14-curl", extra_body=b".dot line\r\n")
        path = os.path.join(self.mkdtemp(), "message.eml")
        with open(path, "wb") as f:
            f.write(msg)
        rc, out = self.run_client([curl, "-sS", "--url", "smtp://127.0.0.1:%d/client.example"
                                   % srv.mx_port, "--mail-from", "sender@example.org",
                                   "--mail-rcpt", "alice@example.test", "--upload-file", path])
        self.assertEqual(rc, 0, out)
        self.assertDelivered(srv, "alice", msg)

    def test_curl_unknown_user(self):
        curl = self.need("curl")
        srv = self.start_server()
        path = os.path.join(self.mkdtemp(), "message.eml")
        with open(path, "wb") as f:
            f.write(make_message("t14-curl-unknown"))
        rc, out = self.run_client([curl, "-sS", "--url", "smtp://127.0.0.1:%d/client.example"
                                   % srv.mx_port, "--mail-from", "sender@example.org",
                                   "--mail-rcpt", "nobody@example.test", "--upload-file", path])
        self.assertNotEqual(rc, 0, out)
        self.assertIn("550", out)


if __name__ == "__main__":
    unittest.main()
