"""t_52_sendmail — `clearmta sendmail` / `mailq` for local programs, on a server with no
submission listener: every option of sendmail(8) the issue names, sysexits codes, the maildrop
while the server is down (listed by mailq, delivered exactly once after start), -bs, the argv[0]
names, and bad input (bare LF, NUL, over-size, unreadable config)."""
import os
import subprocess
import time
import unittest

import harness
from harness import ServerTestCase

EX_USAGE, EX_DATAERR, EX_NOUSER, EX_UNAVAILABLE, EX_CONFIG = 64, 65, 67, 69, 78


class SendmailTest(ServerTestCase):
    def setUp(self):
        self.data = self.mkdtemp()
        self.work = self.mkdtemp()
        self.srv = harness.Server(self.data, work_dir=self.work, extra_config=[],
                                  ports=(harness.free_ports(1)[0], 0))
        self.addCleanup(self._finish_server, self.srv)
        self.srv.command()  # writes the config file

    def sendmail(self, args, stdin=b"", argv0=None):
        cmd = [harness.BIN, "sendmail", "-C", self.srv.conf_path] + list(args)
        if argv0:
            cmd = [argv0, "-C", self.srv.conf_path] + list(args)
        return subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=30)

    def maildrop(self):
        d = os.path.join(self.data, "queue", "maildrop")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def start(self):
        self.srv.start()
        return self.srv

    def test_server_down_maildrop_then_delivered_exactly_once(self):
        msg = b"Subject: t52-down\nTo: alice@example.test\n\nwritten while down\n"
        p = self.sendmail(["-t"], msg)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(self.maildrop()), 1)
        q = subprocess.run([harness.BIN, "mailq", "-C", self.srv.conf_path],
                           stdout=subprocess.PIPE, timeout=30)
        self.assertIn(b"not running", q.stdout)
        self.assertIn(b"<alice@example.test>", q.stdout)
        bp = self.sendmail(["-bp"])
        self.assertIn(b"<alice@example.test>", bp.stdout)
        srv = self.start()
        self.assertTrue(srv.wait_mail("alice", 1, timeout=10), "not delivered after start")
        time.sleep(3)  # two pickup rounds: a second copy would show now
        self.assertEqual(len(srv.maildir_files("alice")), 1)
        self.assertEqual(self.maildrop(), [])
        q = subprocess.run([harness.BIN, "mailq", "-C", self.srv.conf_path],
                           stdout=subprocess.PIPE, timeout=30)
        self.assertNotIn(b"alice@example.test", q.stdout)
        self.assertNotIn(b"not running", q.stdout)

    def test_server_up_options(self):
        srv = self.start()
        p = self.sendmail(["-f", "bounce@example.org", "-F", "Cron Daemon", "-v", "alice"],
                          b"Subject: t52-up\n\nbody line\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"picks it up now", p.stderr)
        (content,) = [m for m in self.wait_mailbox(srv, "alice", 1)]
        self.assertIn(b"Return-Path: <bounce@example.org>\r\n", content)
        self.assertIn(b"From: Cron Daemon <bounce@example.org>\r\n", content)
        self.assertRegex(content, rb"Received: by mx\.example\.test \(clearmta, from userid "
                                  rb"%d\)" % os.getuid())
        self.assertIn(b"body line\r\n", content)

    def wait_mailbox(self, srv, user, count):
        self.assertTrue(srv.wait_mail(user, count, timeout=10), "no mail for %s" % user)
        return srv.mailbox(user)

    def test_t_reads_to_cc_bcc_and_removes_bcc(self):
        srv = self.start()
        msg = (b"From: Me <me@example.org>\r\nTo: \"Doe, A\" <alice@example.test>\r\n"
               b"Cc: (comment) bob@example.test\r\nBcc: undisclosed:\r\n postmaster@example.test;\r\n"
               b"Subject: t52-t\r\n\r\nhi\r\n")
        p = self.sendmail(["-t", "-oi"], msg)
        self.assertEqual(p.returncode, 0, p.stderr)
        for user in ("alice", "bob", "postmaster"):
            (content,) = self.wait_mailbox(srv, user, 1)
            self.assertNotIn(b"Bcc", content)
            self.assertIn(b"From: Me <me@example.org>\r\n", content)  # kept, -F not needed

    def test_dot_line_and_i(self):
        srv = self.start()
        self.assertEqual(self.sendmail(["-bm", "alice"], b"Subject: a\n\none\n.\ntwo\n").returncode,
                         0)
        self.assertEqual(self.sendmail(["-i", "bob"], b"Subject: b\n\none\n.\ntwo\n").returncode, 0)
        (a,) = self.wait_mailbox(srv, "alice", 1)
        (b,) = self.wait_mailbox(srv, "bob", 1)
        self.assertTrue(a.endswith(b"one\r\n"), a)
        self.assertTrue(b.endswith(b"one\r\n.\r\ntwo\r\n"), b)

    def test_bare_lf_normalised(self):
        srv = self.start()
        self.assertEqual(self.sendmail(["alice"], b"Subject: lf\n\na\nb\rc\n").returncode, 0)
        (content,) = self.wait_mailbox(srv, "alice", 1)
        self.assertTrue(content.endswith(b"\r\na\r\nb\r\nc\r\n"), content)
        self.assertNotRegex(content, rb"[^\r]\n")

    def test_bs_dialog(self):
        srv = self.start()
        dialog = (b"EHLO me\r\nMAIL FROM:<me@example.org>\r\nRCPT TO:<nobody-here@example.test>\r\n"
                  b"RCPT TO:<alice@example.test>\r\nDATA\r\nSubject: bs\r\n\r\nvia -bs\r\n.\r\n"
                  b"QUIT\r\n")
        p = self.sendmail(["-bs"], dialog)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertTrue(out.startswith("220 "), out)
        self.assertIn("550 5.1.1", out)
        self.assertIn("250 2.0.0 Ok: queued as D", out)
        self.assertIn("221 ", out)
        (content,) = self.wait_mailbox(srv, "alice", 1)
        self.assertIn(b"via -bs\r\n", content)

    def test_argv0_names_and_flush(self):
        srv = self.start()
        links = self.mkdtemp()
        for name in ("sendmail", "mailq"):
            os.symlink(harness.BIN, os.path.join(links, name))
        p = self.sendmail(["alice"], b"Subject: argv0\n\nx\n", argv0=os.path.join(links, "sendmail"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.wait_mailbox(srv, "alice", 1)
        q = subprocess.run([os.path.join(links, "mailq"), "-C", srv.conf_path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertEqual(self.sendmail(["-q"]).returncode, 0)
        # Options other sendmail programs take are ignored.
        p = self.sendmail(["-oem", "-N", "never", "-X", "/dev/null", "-odb", "bob"], b"x\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.wait_mailbox(srv, "bob", 1)

    @unittest.skipUnless(os.geteuid() == 0, "needs root: submits as another user (nobody)")
    def test_other_user_submits_and_is_named(self):
        import pwd
        nobody = pwd.getpwnam("nobody")
        srv = self.start()
        self.assertEqual(self.sendmail(["bob"], b"Subject: root\n\nx\n").returncode, 0)
        for d in (self.data, os.path.join(self.data, "queue")):
            os.chmod(d, 0o711)  # as make install leaves the spool: reachable, not listable
        os.chmod(self.work, 0o755)
        os.chmod(self.srv.conf_path, 0o644)
        p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=%d" % nobody.pw_gid,
                            "--clear-groups", harness.BIN, "sendmail", "-C", self.srv.conf_path,
                            "alice"], input=b"Subject: nobody\n\nx\n", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        (content,) = self.wait_mailbox(srv, "alice", 1)
        self.assertIn(b"(clearmta, from userid %d)" % nobody.pw_uid, content)

    def test_hostile_maildrop_file_set_aside(self):
        srv = self.start()
        self.assertEqual(self.sendmail(["bob"], b"Subject: first\n\nx\n").returncode, 0)
        srv.wait_mail("bob", 1)
        d = os.path.join(self.data, "queue", "maildrop")
        name = "D" + "0" * 32
        with open(os.path.join(d, name), "wb") as f:
            f.write(b"clearmta-maildrop 1\nR <alice@example.test>\n\nno sender line\n")
        os.symlink("/etc/passwd", os.path.join(d, "D" + "1" * 32))
        self.assertTrue(harness.wait_until(
            lambda: os.path.exists(os.path.join(d, "bad-" + name)), 10), self.maildrop())
        self.assertTrue(harness.wait_until(
            lambda: os.path.lexists(os.path.join(d, "bad-D" + "1" * 32)), 10), self.maildrop())
        self.assertIn("not a maildrop file", srv.log())
        self.assertEqual(srv.maildir_files("alice"), [])
        self.assertTrue(srv.running())

    def test_flush_without_server(self):
        self.assertEqual(self.sendmail(["-q"]).returncode, EX_UNAVAILABLE)

    def test_refusals(self):
        self.assertEqual(self.sendmail([], b"Subject: none\n\nx\n").returncode, EX_USAGE)
        self.assertEqual(self.sendmail(["-t"], b"Subject: none\n\nx\n").returncode, EX_USAGE)
        p = self.sendmail(["nosuchuser@example.test"], b"x\n")
        self.assertEqual(p.returncode, EX_NOUSER)
        self.assertIn(b"nosuchuser@example.test", p.stderr)
        self.assertEqual(self.sendmail(["alice"], b"Subject: nul\n\na\x00b\n").returncode,
                         EX_DATAERR)
        self.assertEqual(self.maildrop(), [])

    def test_oversize_leaves_no_file(self):
        self.srv.extra_config = ["max_message_size 2000"]
        self.srv.command()
        p = self.sendmail(["alice"], b"Subject: big\n\n" + (b"x" * 80 + b"\n") * 30)
        self.assertEqual(p.returncode, EX_DATAERR, p.stderr)
        self.assertEqual(self.maildrop(), [])
        p = self.sendmail(["alice"], b"Subject: huge\n\n" + b"y" * 100000)
        self.assertEqual(p.returncode, EX_DATAERR, p.stderr)
        self.assertEqual(self.maildrop(), [])

    def test_unreadable_config(self):
        os.chmod(self.srv.conf_path, 0)
        p = subprocess.run([harness.BIN, "sendmail", "-C", self.srv.conf_path + ".missing",
                            "alice"], input=b"x\n", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        self.assertIn(b".missing", p.stderr)


if __name__ == "__main__":
    unittest.main()
