"""t_65_check_domain — `clearmta check-domain`: on a test zone, a domain with everything in
place gets no problem; a domain whose SPF record needs 11 DNS look-ups, whose configured DKIM
selector has no key record and which has no DMARC record gets each problem explained with its
fix and the record to publish (the DKIM record from the configured key); the sending address's
PTR is checked forward-confirmed."""
import os
import subprocess
import unittest

from authdns import TestDNS
from harness import BIN, ServerTestCase

INCLUDES = " ".join("include:i%d.bad.example" % i for i in range(1, 12))


class CheckDomain(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.dir = tempfile.mkdtemp(prefix="clearmta-checkdomain-")
        keys = {}
        for domain in ("good.example", "bad.example"):
            key = os.path.join(cls.dir, domain + ".pem")
            out = subprocess.run([BIN, "dkim", "keygen", "--domain", domain, "--selector", "s1",
                                  "--out", key], check=True, capture_output=True,
                                 timeout=60).stdout.decode()
            keys[domain] = (key, "".join(out.split('"')[1::2]))
        cls.bad_record = keys["bad.example"][1]
        cls.conf = os.path.join(cls.dir, "clearmta.conf")
        with open(cls.conf, "w") as f:
            f.write("dkim_sign good.example selector=s1 key=%s\n" % keys["good.example"][0])
            f.write("dkim_sign bad.example selector=s1 key=%s\n" % keys["bad.example"][0])
        zone = {
            "good.example": [{"MX": [10, "mail.good.example"]},
                             {"TXT": "v=spf1 ip4:192.0.2.10 -all"}],
            "mail.good.example": [{"A": "192.0.2.10"}],
            "10.2.0.192.in-addr.arpa": [{"PTR": "mail.good.example"}],
            "s1._domainkey.good.example": [{"TXT": keys["good.example"][1]}],
            "_dmarc.good.example": [{"TXT": "v=DMARC1; p=reject; rua=mailto:d@good.example"}],
            "_mta-sts.good.example": [{"TXT": "v=STSv1; id=20261206"}],
            "_smtp._tls.good.example": [{"TXT": "v=TLSRPTv1; rua=mailto:tls@good.example"}],
            "bad.example": [{"MX": [10, "mail.bad.example"]},
                            {"TXT": "v=spf1 %s -all" % INCLUDES}],
            "11.2.0.192.in-addr.arpa": [{"PTR": "elsewhere.example"}],
            "elsewhere.example": [{"A": "198.51.100.1"}],
        }
        for i in range(1, 12):
            zone["i%d.bad.example" % i] = [{"TXT": "v=spf1 ip4:203.0.113.%d -all" % i}]
        cls.dns = TestDNS(zone)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        import shutil
        shutil.rmtree(cls.dir, ignore_errors=True)

    def run_check(self, domain, ip):
        out = subprocess.run([BIN, "check-domain", domain, "--ip", ip, "-c", self.conf,
                              "--resolver", self.dns.resolver], capture_output=True, timeout=120)
        return out.returncode, out.stdout.decode()

    def test_a_domain_in_order_has_no_problem(self):
        rc, out = self.run_check("good.example", "192.0.2.10")
        self.assertEqual(rc, 0, out)
        self.assertIn("0 problems", out)
        self.assertNotIn("FAIL", out)
        self.assertRegex(out, r"OK +SPF .*authorises the sending address")
        self.assertRegex(out, r"OK +DKIM .*matches the configured key")
        self.assertRegex(out, r"OK +DMARC .*p=reject")
        self.assertRegex(out, r"OK +PTR .*forward-confirmed")
        self.assertRegex(out, r"OK +MTA-STS")
        self.assertRegex(out, r"OK +TLS-RPT")

    def test_each_problem_with_its_fix(self):
        rc, out = self.run_check("bad.example", "192.0.2.11")
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"FAIL +SPF .*more than 10 DNS look-ups")
        self.assertIn("fix: replace include:", out)
        self.assertRegex(out, r"FAIL +DKIM .*no key record at s1._domainkey.bad.example")
        self.assertIn('publish: s1._domainkey.bad.example. IN TXT "%s"' % self.bad_record, out)
        self.assertRegex(out, r"FAIL +DMARC .*no DMARC record")
        self.assertIn('publish: _dmarc.bad.example. IN TXT "v=DMARC1; p=none;', out)
        self.assertRegex(out, r"FAIL +PTR .*does not resolve back")
        self.assertIn("4 problems", out)


if __name__ == "__main__":
    unittest.main()
