"""tests/integration/authdns.py — the test DNS server of the mail authentication tests
(tests/dns_test_server.py) started on a free loopback port with a zone, and stopped; the
same with a DKIM key's record for a test class (DkimZone); and the Debian Python modules
(python3-dkim, python3-yaml) found also from a Python outside Debian's."""
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

from harness import BIN, REPO, free_ports

DNS_SERVER = os.path.join(REPO, "tests", "dns_test_server.py")


def debian_module(name):
    """import name, looking in Debian's dist-packages too (pyenv Pythons do not); None when
    the package is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if "/usr/lib/python3/dist-packages" not in sys.path:
            sys.path.append("/usr/lib/python3/dist-packages")
        try:
            return importlib.import_module(name)
        except ImportError:
            return None


class TestDNS:
    """A running test DNS server answering from zone (dns_test_server.py's form)."""

    def __init__(self, zone):
        self.dir = tempfile.mkdtemp(prefix="clearmta-dns-")
        path = os.path.join(self.dir, "zone.json")
        with open(path, "w") as f:
            json.dump(zone, f)
        self.port = free_ports(1)[0]
        self.proc = subprocess.Popen([sys.executable, DNS_SERVER, str(self.port), path],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if self.proc.stdout.readline().strip() != b"ready":
            self.stop()
            raise AssertionError("the test DNS server did not start")

    @property
    def resolver(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)



class DkimZone:
    """A mixin of test cases: for the class, a test DNS server answering ZONE and the record
    of an ed25519 key made by `clearmta dkim keygen` for DKIM_SELECTOR of DKIM_DOMAIN (cls.key
    its path, cls.dns the server, cls.dir a scratch directory removed at the end)."""
    ZONE = {}
    DKIM_DOMAIN = "example.test"
    DKIM_SELECTOR = "s"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = tempfile.mkdtemp(prefix="clearmta-dkimzone-")
        cls.key = os.path.join(cls.dir, "%s.pem" % cls.DKIM_SELECTOR)
        out = subprocess.run([BIN, "dkim", "keygen", "--domain", cls.DKIM_DOMAIN, "--selector",
                              cls.DKIM_SELECTOR, "--type", "ed25519", "--out", cls.key],
                             check=True, capture_output=True, timeout=60).stdout.decode()
        zone = dict(cls.ZONE)
        zone["%s._domainkey.%s" % (cls.DKIM_SELECTOR, cls.DKIM_DOMAIN)] = [
            {"TXT": out.split('"')[1]}]
        cls.dns = TestDNS(zone)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        super().tearDownClass()
