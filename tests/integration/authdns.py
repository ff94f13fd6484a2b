"""tests/integration/authdns.py — the test DNS server of the mail authentication tests
(tests/dns_test_server.py) started on a free loopback port with a zone, and stopped; and the
Debian Python modules (python3-dkim, python3-yaml) found also from a Python outside Debian's."""
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

from harness import REPO, free_ports

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
