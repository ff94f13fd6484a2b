"""t_53_install — `make install` into a temporary DESTDIR: the tree (binary, sendmail and mailq
names, man pages that render without warnings, the unit), the unit passing
`systemd-analyze verify`, the installed configuration passing check-config and kept on
reinstall once edited; `make uninstall` removes all but the configuration."""
import os
import shutil
import subprocess
import unittest

import harness

PREFIX = "/usr/local"
TREE = ["usr/local/sbin/clearmta", "usr/local/sbin/sendmail", "usr/local/bin/mailq",
        "usr/local/share/man/man8/clearmta.8", "usr/local/share/man/man8/sendmail.8",
        "usr/local/share/man/man8/mailq.8", "usr/local/share/man/man5/clearmta.conf.5",
        "usr/local/lib/systemd/system/clearmta.service"]
CONF = "etc/clearmta/clearmta.conf"


class InstallTest(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(os.path.join(harness.REPO, "build", "clearmta")):
            self.skipTest("no build/clearmta (make all first)")
        self.dest = harness.tempfile.mkdtemp(prefix="clearmta-install-")
        self.addCleanup(shutil.rmtree, self.dest, True)

    def make(self, target):
        p = subprocess.run(["make", "-s", "-C", harness.REPO, target, "PREFIX=" + PREFIX,
                            "DESTDIR=" + self.dest], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout.decode())
        return p.stdout.decode()

    def path(self, rel):
        return os.path.join(self.dest, rel)

    def test_install_tree_reinstall_uninstall(self):
        self.make("install")
        for rel in TREE + [CONF]:
            self.assertTrue(os.path.exists(self.path(rel)), rel)
        self.assertEqual(os.readlink(self.path("usr/local/sbin/sendmail")), "clearmta")
        self.assertEqual(os.path.realpath(self.path("usr/local/bin/mailq")),
                         os.path.realpath(self.path("usr/local/sbin/clearmta")))
        self.assertEqual(os.stat(self.path("usr/local/sbin/clearmta")).st_mode & 0o7777, 0o755)
        # The installed names are the program.
        out = subprocess.run([self.path("usr/local/bin/mailq"), "-C", self.path(CONF)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertIn(b"not running", out.stdout + out.stderr)
        # The installed example passes check-config.
        p = subprocess.run([self.path("usr/local/sbin/clearmta"), "check-config", "-c",
                            self.path(CONF)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.path("usr/local/lib/systemd/system/clearmta.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/local/sbin/clearmta serve -c /etc/clearmta/clearmta.conf",
                      unit)
        # An edited configuration survives a reinstall.
        with open(self.path(CONF), "a") as f:
            f.write("# edited by the administrator\n")
        self.assertIn("left as it is", self.make("install"))
        with open(self.path(CONF)) as f:
            self.assertIn("# edited by the administrator", f.read())
        self.make("uninstall")
        for rel in TREE:
            self.assertFalse(os.path.lexists(self.path(rel)), rel)
        self.assertTrue(os.path.exists(self.path(CONF)))

    def test_man_pages_render_without_warnings(self):
        if not shutil.which("man"):
            self.skipTest("no man(1) here")
        self.make("install")
        for rel in TREE:
            if "/man/" not in rel or rel.endswith("mailq.8"):
                continue
            p = subprocess.run(["man", "--warnings", "-l", self.path(rel)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                               env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
            self.assertEqual(p.returncode, 0, rel)
            self.assertEqual(p.stderr.decode(), "", "warnings for %s" % rel)
            self.assertIn(b"NAME", p.stdout)

    def test_unit_verifies(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("no systemd-analyze here")
        self.make("install")
        # The unit as installed, but run from the DESTDIR: verify checks that ExecStart exists
        # and that the Documentation= pages open (from the DESTDIR's man tree).
        with open(self.path("usr/local/lib/systemd/system/clearmta.service")) as f:
            unit = f.read().replace("ExecStart=/usr/local/sbin/",
                                    "ExecStart=%s/usr/local/sbin/" % self.dest)
        check = os.path.join(self.dest, "clearmta.service")
        with open(check, "w") as f:
            f.write(unit)
        p = subprocess.run(["systemd-analyze", "verify", check], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120,
                           env=dict(os.environ, MANPATH=self.path("usr/local/share/man")))
        self.assertEqual(p.returncode, 0, p.stdout.decode())
        self.assertEqual(p.stdout.decode(), "")


if __name__ == "__main__":
    unittest.main()
