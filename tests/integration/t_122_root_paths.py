"""t_122_root_paths — root, before it drops to the server's user, never follows a name that
user or another local user controls: a key.pem the server's user turned into a link to a root
file is replaced by a new key, not written through; a tls directory turned into a link to a
root-only directory is refused (its files are neither loaded nor given away); a log_file name
planted as a link (or a file of a third user) in a directory anyone may write is refused, and
the file behind is left as it was (these need root; skipped otherwise, saying why). And, as
any user: `clearmta passwd` leaves the users file 0600 whatever the umask or the old mode, and
a users file or config file open to others is refused with its mode and the chmod to run."""
import os
import pwd
import subprocess
import tempfile
import unittest

import harness
from harness import ServerTestCase

USER = "nobody"  # the server's user
STRANGER = 4242  # a local user who is neither root nor the server's user
VICTIM_TEXT = "ROOT-OWNED IMPORTANT CONTENT\n"


def as_uid(uid, gid, *argv):
    """Runs argv as uid:gid with no supplementary group (as a hostile local user would)."""
    subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups"]
                   + list(argv), check=True, timeout=30)


@unittest.skipUnless(os.geteuid() == 0,
                     "needs root: it checks what root does before dropping to the server's user")
class RootPathsTest(ServerTestCase):
    def setUp(self):
        self.pw = pwd.getpwnam(USER)
        self.work = self.mkdtemp()  # root's, 0700: config, server log, the victims
        self.data = self.mkdtemp()
        os.chown(self.data, self.pw.pw_uid, self.pw.pw_gid)
        os.chmod(self.data, 0o750)
        self.victim = os.path.join(self.work, "victim")
        with open(self.victim, "w") as f:
            f.write(VICTIM_TEXT)
        os.chmod(self.victim, 0o644)

    def as_user(self, *argv):
        as_uid(self.pw.pw_uid, self.pw.pw_gid, *argv)

    def start(self, extra=(), wait=True):
        return self.start_server(extra_config=["user %s" % USER] + list(extra),
                                 data_dir=self.data, work_dir=self.work, wait=wait)

    def victim_text(self):
        with open(self.victim) as f:
            return f.read()

    def test_planted_key_link_is_replaced_not_written_through(self):
        srv = self.start()
        self.finish_server(srv)
        tls = os.path.join(self.data, "tls")
        self.as_user("sh", "-c", "rm -f %s/cert.pem %s/key.pem && ln -s %s %s/key.pem"
                     % (tls, tls, self.victim, tls))
        srv = self.restart_server(srv)
        self.assertEqual(self.victim_text(), VICTIM_TEXT)
        self.assertEqual(os.stat(self.victim).st_uid, 0)
        st = os.lstat(os.path.join(tls, "key.pem"))
        self.assertTrue(os.path.isfile(os.path.join(tls, "key.pem")))
        self.assertFalse(os.path.islink(os.path.join(tls, "key.pem")))
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (self.pw.pw_uid, 0o600))
        c = self.connect(srv.sub_port)
        harness.starttls(c)  # the new pair works

    def test_tls_link_to_root_directory_is_refused(self):
        rootsvc = self.mkdtemp()  # another service's root-only pair
        key, cert = os.path.join(rootsvc, "key.pem"), os.path.join(rootsvc, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=other",
                        "-keyout", key, "-out", cert], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
        os.chmod(key, 0o600)
        self.as_user("ln", "-s", rootsvc, os.path.join(self.data, "tls"))
        srv = self.start()
        self.assertIn("TLS unavailable: %s/tls refused" % self.data, srv.log())
        for p in (rootsvc, key, cert):
            self.assertEqual(os.stat(p).st_uid, 0, p)
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        c = self.connect(srv.sub_port)
        c.ehlo()
        c.cmd("STARTTLS")
        c.expect("454")

    def world_writable_dir(self):
        d = self.mkdtemp()
        os.chmod(d, 0o1777)
        return d

    def test_planted_log_link_is_refused(self):
        log = os.path.join(self.world_writable_dir(), "clearmta.log")
        as_uid(self.pw.pw_uid, self.pw.pw_gid, "ln", "-s", self.victim, log)
        srv = self.start(["log_file %s" % log], wait=False)
        self.assertNotIn(srv.wait_exit(30), (0, None))
        self.assertIn("log file %s: " % log, srv.log())
        self.assertIn("symbolic link", srv.log())
        self.assertEqual(self.victim_text(), VICTIM_TEXT)

    def test_log_of_a_third_user_is_refused(self):
        log = os.path.join(self.world_writable_dir(), "clearmta.log")
        as_uid(STRANGER, STRANGER, "touch", log)
        srv = self.start(["log_file %s" % log], wait=False)
        self.assertNotIn(srv.wait_exit(30), (0, None))
        self.assertIn("log file %s refused: owned by another user" % log, srv.log())
        self.assertEqual(os.path.getsize(log), 0)

    def test_log_of_root_or_the_user_is_used(self):
        log = os.path.join(self.world_writable_dir(), "clearmta.log")
        as_uid(self.pw.pw_uid, self.pw.pw_gid, "touch", log)
        os.chmod(log, 0o640)
        srv = self.start(["log_file %s" % log])
        with open(log) as f:
            self.assertIn("running as %s" % USER, f.read())


class OpenModesTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="clearmta-it-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.dir], check=False)
        self.users = os.path.join(self.dir, "users")
        self.conf = os.path.join(self.dir, "clearmta.conf")
        with open(self.conf, "w") as f:
            f.write("domain example.test users alice\nusers_file users\n")
        os.chmod(self.conf, 0o644)

    def passwd(self, user):
        old = os.umask(0)
        try:
            subprocess.run([harness.BIN, "passwd", user, self.users], input=b"secret-pass\n",
                           check=True, capture_output=True, timeout=30)
        finally:
            os.umask(old)

    def check_config(self):
        return subprocess.run([harness.BIN, "check-config", "-c", self.conf],
                              capture_output=True, timeout=30)

    def test_passwd_writes_0600_and_loose_modes_are_refused(self):
        self.passwd("alice")
        self.assertEqual(os.stat(self.users).st_mode & 0o777, 0o600)
        self.assertEqual(self.check_config().returncode, 0)
        os.chmod(self.users, 0o644)
        p = self.check_config()
        self.assertEqual(p.returncode, 1)
        self.assertIn("users_file '%s': open to others (mode 0644" % self.users,
                      p.stdout.decode() + p.stderr.decode())
        self.assertIn("run: chmod 600 %s" % self.users, p.stdout.decode() + p.stderr.decode())
        self.passwd("alice")  # rewritten: back to 0600
        self.assertEqual(os.stat(self.users).st_mode & 0o777, 0o600)
        os.chmod(self.conf, 0o664)
        p = self.check_config()
        self.assertEqual(p.returncode, 1)
        self.assertIn("run: chmod go-w %s" % self.conf, p.stdout.decode() + p.stderr.decode())


if __name__ == "__main__":
    unittest.main()
