"""t_121_maildrop_local — the maildrop and `clearmta sendmail` against hostile local users.
Another uid (4242) fills the maildrop with sparse files of nearly the largest allowed size that
are no maildrop files (each with an empty directory at its bad- name) and Unix sockets with
maildrop names: the pickup settles each once (set aside or removed, logged once), and mail
still flows. Root's mailq reads a 1 GiB sparse maildrop file without taking its size in
memory. Root's sendmail follows no symbolic link the server's account planted at queue/maildrop
or queue/, and changes no directory there. An ordinary user's sendmail works with a 0600
users_file and relayhost auth= file in the config; refused the control socket (0600), mailq and
sendmail -q say it needs root (EX_NOPERM) instead of "not running", sendmail -v says the server
picks the message up within 2 s, and it does. The server makes the maildrop at start; a user's
sendmail that finds none and may not make it says so. A server dropping to nobody refuses a data
directory whose queue/ is a symbolic link. The uid switches need root (skipped otherwise,
saying why)."""
import os
import pwd
import subprocess
import tempfile
import time
import unittest

import harness
import t_52_sendmail
from harness import ServerTestCase, wait_until, write_users_file

OTHER_UID = 4242  # a uid with no user behind it: an ordinary local user
EX_NOPERM, EX_TEMPFAIL = 77, 75
ENVELOPE_MAX = 1000 * 261 + 64  # STORE_MAILDROP_ENVELOPE_MAX of maildrop.h
CLI_TIMEOUT = 60
SCAN_S = 2  # SERVER_PICKUP_INTERVAL_S
ROOT = os.geteuid() == 0


def as_uid(uid, argv, stdin=b""):
    """Runs argv as uid (gid the same, no groups) through setpriv."""
    cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"] + list(argv)
    return subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=CLI_TIMEOUT)


def junk_name(i):
    return "D%032x" % (0xabc000 + i)


class MaildropLocalTest(ServerTestCase):
    setUp = t_52_sendmail.SendmailTest.setUp  # a config written, no server started yet

    def open_to_local_users(self):
        """Modes as make install leaves them: the spool reachable, the maildrop 01733."""
        md = os.path.join(self.data, "queue", "maildrop")
        os.makedirs(md, exist_ok=True)
        for d in (self.data, os.path.join(self.data, "queue")):
            os.chmod(d, 0o711)
        os.chmod(md, 0o1733)
        os.chmod(self.work, 0o755)
        os.chmod(self.srv.conf_path, 0o644)
        return md

    def sendmail(self, args, stdin=b"", uid=None):
        argv = [harness.BIN, "sendmail", "-C", self.srv.conf_path] + list(args)
        if uid is not None:
            return as_uid(uid, argv, stdin)
        return subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=CLI_TIMEOUT)

    @unittest.skipUnless(ROOT, "needs root: the junk is made by another uid (4242)")
    def test_junk_is_settled_once_and_mail_flows(self):
        md = self.open_to_local_users()
        srv = self.srv.start()
        size = harness.MAX_SIZE + ENVELOPE_MAX  # passes the size check
        script = """
import os, socket, sys
d, size = sys.argv[1], int(sys.argv[2])
for i in range(60):
    n = "D%032x" % (0xabc000 + i)
    if i < 20:
        os.mkdir(os.path.join(d, "bad-" + n))  # its set-aside name taken
    if i < 45:
        with open(os.path.join(d, n), "wb") as f:
            f.truncate(size)
    else:
        s = socket.socket(socket.AF_UNIX)
        s.bind(os.path.join(d, n))
        s.close()
"""
        p = as_uid(OTHER_UID, ["python3", "-c", script, md, str(size)])
        self.assertEqual(p.returncode, 0, p.stderr)
        names = [junk_name(i) for i in range(60)]
        self.assertTrue(wait_until(lambda: not any(os.path.lexists(os.path.join(md, n))
                                                   for n in names), 8 * SCAN_S),
                        sorted(os.listdir(md))[:10])
        self.assertEqual(self.sendmail(["alice"], b"Subject: t121\n\nafter the junk\n")
                         .returncode, 0)
        srv.wait_mail("alice", 1, timeout=10)
        time.sleep(2 * SCAN_S + 0.5)  # two more scans: nothing about the junk logged again
        log = srv.log()
        for n in names:
            self.assertEqual(log.count("pickup: %s:" % n), 1, n)
        self.assertIn("removed (maildrop/bad-%s is taken)" % names[0], log)
        self.assertIn("kept as maildrop/bad-%s" % names[30], log)
        self.assertIn("kept as maildrop/bad-%s" % names[50], log)  # a socket
        self.assertTrue(srv.running())

    def test_mailq_reads_no_huge_file(self):
        self.assertEqual(self.sendmail(["alice"], b"Subject: waiting\n\nx\n").returncode, 0)
        md = os.path.join(self.data, "queue", "maildrop")
        with open(os.path.join(md, junk_name(1)), "wb") as f:
            f.truncate(1 << 30)  # sparse: no blocks, 1 GiB to whoever reads it
        with tempfile.TemporaryFile() as f:
            proc = subprocess.Popen([harness.BIN, "mailq", "-C", self.srv.conf_path], stdout=f,
                                    stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not the test's
            proc.returncode = os.waitstatus_to_exitcode(status)
            f.seek(0)
            out = f.read()
        self.assertEqual(proc.returncode, 0, out)
        self.assertIn(b"1 message(s) in the maildrop", out)
        self.assertIn(b"<alice@example.test>", out)
        # ru_maxrss in KiB; the sanitizer build's own footprint is a few tens of MiB.
        self.assertLess(usage.ru_maxrss, 256 * 1024)

    @unittest.skipUnless(ROOT, "needs root: root's sendmail against the server's account")
    def test_root_sendmail_follows_no_link(self):
        nobody = pwd.getpwnam("nobody")
        target = self.mkdtemp()
        os.chmod(target, 0o755)
        queue = os.path.join(self.data, "queue")
        os.mkdir(queue, 0o711)
        os.chown(queue, nobody.pw_uid, nobody.pw_gid)
        link = os.path.join(queue, "maildrop")
        os.symlink(target, link)
        os.lchown(link, nobody.pw_uid, nobody.pw_gid)
        p = self.sendmail(["alice"], b"Subject: cron\n\nout\n")
        self.assertEqual(p.returncode, EX_TEMPFAIL, p.stderr)
        self.assertIn(b"cannot open", p.stderr)
        self.assertEqual(os.listdir(target), [])
        # queue/ itself a link to a root directory: no maildrop made in it, its mode kept.
        os.unlink(link)
        os.rmdir(queue)
        os.symlink(target, queue)
        os.lchown(queue, nobody.pw_uid, nobody.pw_gid)
        p = self.sendmail(["alice"], b"Subject: cron\n\nout\n")
        self.assertEqual(p.returncode, EX_TEMPFAIL, p.stderr)
        self.assertEqual(os.listdir(target), [])
        st = os.stat(target)
        self.assertEqual((st.st_mode & 0o7777, st.st_uid), (0o755, 0))

    @unittest.skipUnless(ROOT, "needs root: runs sendmail as another uid (4242)")
    def test_ordinary_user_with_secret_files(self):
        users = os.path.join(self.work, "auth-users")
        write_users_file(users)
        creds = os.path.join(self.work, "relay-auth")
        with open(creds, "w") as f:
            f.write("relayuser:relaypass\n")
        os.chmod(creds, 0o600)
        self.srv.extra_config = ["users_file %s" % users,
                                 "relayhost [127.0.0.1]:%d tls=required auth=%s"
                                 % (harness.free_ports(1)[0], creds)]
        self.srv.command()
        queue = os.path.join(self.data, "queue")
        os.makedirs(queue, 0o711)
        for d in (self.data, queue):
            os.chmod(d, 0o711)
        os.chmod(self.work, 0o755)
        os.chmod(self.srv.conf_path, 0o644)
        # No maildrop yet, and this user may not make it: said plainly.
        p = self.sendmail(["alice"], b"Subject: early\n\nx\n", uid=OTHER_UID)
        self.assertEqual(p.returncode, EX_TEMPFAIL, p.stderr)
        self.assertIn(b"the server makes it when it starts", p.stderr)
        md = self.open_to_local_users()
        p = self.sendmail(["alice"], b"Subject: cron\n\nfrom an ordinary user\n",
                          uid=OTHER_UID)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn(b"users_file", p.stderr)
        self.assertEqual(len([n for n in os.listdir(md) if n.startswith("D")]), 1)

    def test_server_makes_the_maildrop(self):
        srv = self.srv.start()
        st = os.stat(os.path.join(self.data, "queue", "maildrop"))
        self.assertEqual(st.st_mode & 0o7777, 0o1733)
        self.assertNotIn("warning: pickup", srv.log())

    @unittest.skipUnless(ROOT, "needs root: runs mailq and sendmail as another uid (4242)")
    def test_control_socket_refused_is_not_down(self):
        self.open_to_local_users()
        srv = self.srv.start()
        q = as_uid(OTHER_UID, [harness.BIN, "mailq", "-C", self.srv.conf_path])
        self.assertEqual(q.returncode, EX_NOPERM, q.stderr)
        self.assertIn(b"needs root", q.stderr)
        self.assertNotIn(b"not running", q.stdout + q.stderr)
        p = self.sendmail(["-q"], uid=OTHER_UID)
        self.assertEqual(p.returncode, EX_NOPERM, p.stderr)
        self.assertIn(b"needs root", p.stderr)
        p = self.sendmail(["-v", "alice"], b"Subject: v\n\nx\n", uid=OTHER_UID)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"within %d s" % SCAN_S, p.stderr)
        self.assertNotIn(b"not running", p.stderr)
        srv.wait_mail("alice", 1, timeout=10)
        # Root may: the queue is listed, not the maildrop of a server "not running".
        q = subprocess.run([harness.BIN, "mailq", "-C", self.srv.conf_path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=CLI_TIMEOUT)
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertNotIn(b"not running", q.stdout)

    @unittest.skipUnless(ROOT, "needs root: the server drops to nobody")
    def test_server_refuses_linked_queue_dir(self):
        nobody = pwd.getpwnam("nobody")
        elsewhere = self.mkdtemp()
        os.chown(elsewhere, nobody.pw_uid, nobody.pw_gid)
        os.chown(self.data, nobody.pw_uid, nobody.pw_gid)
        os.chmod(self.data, 0o750)
        queue = os.path.join(self.data, "queue")
        os.symlink(elsewhere, queue)
        os.lchown(queue, nobody.pw_uid, nobody.pw_gid)
        self.srv.extra_config = ["user nobody"]
        self.srv.command()
        self.srv.start(wait=False)
        self.assertIsNotNone(self.srv.wait_exit(20), "the server started on a linked queue/")
        self.assertIn("%s: a symbolic link" % queue, self.srv.log())


if __name__ == "__main__":
    unittest.main()
