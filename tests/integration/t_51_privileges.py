"""t_51_privileges — started as root with `user NAME` the server binds a privileged port and
reads a root-only key, then runs every thread as NAME (all four uids and gids, no other group)
and everything it creates belongs to NAME; an unknown user or a data_dir of someone else stops
it with the name or the exact chown. Needs root (skipped otherwise, saying why)."""
import grp
import os
import pwd
import socket
import subprocess
import unittest

import harness
from harness import ServerTestCase, send_transaction, make_message

USER = "nobody"  # exists on every Debian system; never owns the test's files otherwise


def privileged_port():
    """A free loopback port below 1024 of this module's port slot."""
    slot, slots = harness.port_slot()
    for port in range(600 + 2 * slot, 1024, 2 * slots):
        if harness.port_is_free(port):
            return port
    raise unittest.SkipTest("no free loopback port below 1024")


def ids(pid):
    """{task id: (Uid fields, Gid fields, Groups)} from /proc/PID/task/*/status."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        fields = {}
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.split()
        out[tid] = (fields["Uid"], fields["Gid"], fields.get("Groups", []))
    return out


@unittest.skipUnless(os.geteuid() == 0, "needs root: it tests the drop from root to a user")
class PrivilegesTest(ServerTestCase):
    def setUp(self):
        self.pw = pwd.getpwnam(USER)
        self.group = grp.getgrgid(self.pw.pw_gid).gr_name
        self.work = self.mkdtemp()  # root's: config, log, root-only key
        self.data = self.mkdtemp()
        os.chown(self.data, self.pw.pw_uid, self.pw.pw_gid)
        os.chmod(self.data, 0o750)

    def root_only_pair(self):
        key, cert = os.path.join(self.work, "key.pem"), os.path.join(self.work, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=mx.example.test", "-keyout", key, "-out", cert],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=60)
        os.chmod(key, 0o600)
        return key, cert

    def start(self, extra, wait=True):
        port = privileged_port()
        (sub,) = harness.free_ports(1)
        return self.start_server(extra_config=extra, data_dir=self.data, work_dir=self.work,
                                 ports=(port, sub), wait=wait)

    def owner(self, path):
        return os.lstat(path).st_uid

    def test_runs_as_user_after_binding_and_reading_keys(self):
        key, cert = self.root_only_pair()
        srv = self.start(["user %s" % USER, "tls_cert %s" % cert, "tls_key %s" % key])
        self.assertLess(srv.mx_port, 1024)
        self.assertIn("running as %s (uid %d" % (USER, self.pw.pw_uid), srv.log())
        uid, gid = str(self.pw.pw_uid), str(self.pw.pw_gid)
        tasks = ids(srv.proc.pid)
        self.assertGreater(len(tasks), 1, "the server runs threads")
        for tid, (uids, gids, groups) in tasks.items():
            self.assertEqual(uids, [uid] * 4, "task %s uids" % tid)
            self.assertEqual(gids, [gid] * 4, "task %s gids" % tid)
            self.assertIn(groups, ([], [gid]), "task %s supplementary groups" % tid)
        # STARTTLS with the root-only key read before the drop.
        c = self.connect(srv.sub_port)
        harness.starttls(c)
        c.close()
        msg = make_message("t51-owned")
        c = self.connect(srv)
        c.ehlo()
        send_transaction(c, "sender@example.org", ["alice@example.test"], msg)
        c.cmd("QUIT")
        srv.wait_mail("alice")
        made = [os.path.join(root, n) for root, dirs, files in os.walk(self.data)
                for n in dirs + files]
        self.assertTrue(any(p.endswith("control.sock") for p in made), made)
        for p in made:
            self.assertEqual(self.owner(p), self.pw.pw_uid, "%s is not %s's" % (p, USER))

    def test_generated_certificate_belongs_to_user(self):
        srv = self.start(["user %s" % USER])
        for leaf in ("tls", "tls/cert.pem", "tls/key.pem"):
            self.assertEqual(self.owner(os.path.join(self.data, leaf)), self.pw.pw_uid, leaf)
        c = self.connect(srv.sub_port)
        harness.starttls(c)

    def test_unknown_user_exits_naming_it(self):
        srv = self.start(["user no-such-user-t51"], wait=False)
        rc = srv.wait_exit(10)
        self.assertNotIn(rc, (0, None))
        self.assertIn("user no-such-user-t51", srv.log())

    def test_data_dir_of_another_owner_says_what_to_chown(self):
        os.chown(self.data, 0, 0)
        srv = self.start(["user %s" % USER], wait=False)
        rc = srv.wait_exit(10)
        self.assertNotIn(rc, (0, None))
        self.assertIn("run: chown -R %s:%s %s" % (USER, self.group, self.data), srv.log())

    def test_root_file_inside_data_dir_says_what_to_chown(self):
        os.mkdir(os.path.join(self.data, "queue"))  # left by a run as root
        srv = self.start(["user %s" % USER], wait=False)
        self.assertNotIn(srv.wait_exit(10), (0, None))
        self.assertIn("run: chown -R %s:%s %s" % (USER, self.group, self.data), srv.log())

    def test_default_user_is_clearmta_as_root(self):
        try:
            pwd.getpwnam("clearmta")
            self.skipTest("a user clearmta exists here; the missing-user case cannot be seen")
        except KeyError:
            pass
        cwd = self.mkdtemp()
        with open(os.path.join(cwd, "empty.conf"), "w") as f:
            f.write("listen mx 127.0.0.1:%d\ndata_dir %s\n" % (harness.free_ports(1)[0], self.data))
        p = subprocess.run([harness.BIN, "serve", "-c", os.path.join(cwd, "empty.conf")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30, cwd=cwd)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"user clearmta", p.stdout)


if __name__ == "__main__":
    unittest.main()
