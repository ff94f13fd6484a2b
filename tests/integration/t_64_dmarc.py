"""t_64_dmarc — `clearmta auth check` (RFC 7489, RFC 8601): the DMARC scenarios of RFC 7489
with SPF and DKIM results made over the test DNS server: aligned SPF, aligned DKIM, neither,
relaxed against strict alignment, sp= for subdomains, the organizational domain of
a.b.example.co.uk through the public suffix list, no record; and the JSON fields of auth check
(dmarc_policy "" without record, one dkim= per signature in authentication_results)."""
import json
import os
import subprocess
import unittest

from authdns import TestDNS
from harness import BIN, ServerTestCase


def message(from_addr):
    return ("From: Someone <%s>\r\nTo: bob@example.net\r\nSubject: dmarc\r\n"
            "Date: Sun, 6 Dec 2026 08:00:00 +0000\r\n\r\nbody\r\n" % from_addr).encode()


class Dmarc(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.dir = tempfile.mkdtemp(prefix="clearmta-dmarc-")
        cls.keys = {}
        zone = {
            "example.com": [{"TXT": "v=spf1 ip4:192.0.2.1 -all"}],
            "_dmarc.example.com": [{"TXT": "v=DMARC1; p=reject; sp=quarantine; "
                                           "rua=mailto:dmarc@example.com"}],
            "other.example": [{"TXT": "v=spf1 ip4:192.0.2.1 -all"}],
            "strict.example": [{"TXT": "v=spf1 -all"}],
            "sub.strict.example": [{"TXT": "v=spf1 ip4:192.0.2.1 -all"}],
            "_dmarc.strict.example": [{"TXT": "v=DMARC1; p=reject; aspf=s; adkim=s"}],
            "_dmarc.example.co.uk": [{"TXT": "v=DMARC1; p=quarantine"}],
            "co.uk": [{"TXT": "v=DMARC1; p=reject"}],
            "none.example": [{"TXT": "v=spf1 ip4:192.0.2.1 -all"}],
            "broken.example": [{"TXT": "v=spf1 ip4:192.0.2.1 -all"}],
            "_dmarc.broken.example": ["SERVFAIL"],
        }
        for domain in ("example.com", "mail.example.com", "strict.example",
                       "sub.strict.example"):
            key = os.path.join(cls.dir, domain + ".pem")
            out = subprocess.run([BIN, "dkim", "keygen", "--domain", domain, "--selector", "s",
                                  "--type", "ed25519", "--out", key], check=True,
                                 capture_output=True, timeout=60).stdout.decode()
            zone["s._domainkey." + domain] = [{"TXT": out.split('"')[1]}]
            cls.keys[domain] = key
        cls.dns = TestDNS(zone)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        import shutil
        shutil.rmtree(cls.dir, ignore_errors=True)

    def signed(self, msg, domain):
        return subprocess.run([BIN, "dkim", "sign", "--domain", domain, "--selector", "s",
                               "--key", self.keys[domain], "-"], input=msg, check=True,
                              capture_output=True, timeout=60).stdout

    def check(self, msg, ip="192.0.2.1", mail_from="x@example.com"):
        out = subprocess.run([BIN, "auth", "check", "--json", "--resolver", self.dns.resolver,
                              "--ip", ip, "--helo", "mx.client.example", "--mail-from",
                              mail_from, "-"], input=msg, capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def test_aligned_spf_passes(self):
        got = self.check(message("user@example.com"))
        self.assertEqual((got["spf"], got["dmarc"]), ("pass", "pass"))
        self.assertEqual(got["dkim"], [])
        ar = got["authentication_results"]
        self.assertIn("spf=pass smtp.mailfrom=example.com", ar)
        self.assertIn("dkim=none", ar)
        self.assertIn("dmarc=pass header.from=example.com", ar)

    def test_aligned_dkim_passes_without_spf(self):
        got = self.check(self.signed(message("user@example.com"), "example.com"),
                         mail_from="x@nothing.example")
        self.assertEqual(got["spf"], "none")
        self.assertEqual(got["dkim"], [{"domain": "example.com", "selector": "s",
                                        "result": "pass"}])
        self.assertEqual(got["dmarc"], "pass")
        self.assertEqual(got["authentication_results"].count("dkim="), 1)

    def test_neither_aligned_fails_with_p(self):
        got = self.check(self.signed(message("user@example.com"), "strict.example"),
                         mail_from="x@other.example")
        self.assertEqual((got["spf"], got["dmarc"], got["dmarc_policy"]),
                         ("pass", "fail", "reject"))
        got = self.check(message("user@example.com"), ip="192.0.2.99")
        self.assertEqual((got["spf"], got["dmarc"], got["dmarc_policy"]),
                         ("fail", "fail", "reject"))

    def test_relaxed_alignment_and_sp_for_subdomains(self):
        got = self.check(message("user@mail.example.com"))  # SPF for example.com: relaxed
        self.assertEqual(got["dmarc"], "pass")
        got = self.check(self.signed(message("user@example.com"), "mail.example.com"),
                         mail_from="x@nothing.example")
        self.assertEqual(got["dmarc"], "pass")  # d=mail.example.com aligns relaxed
        got = self.check(message("user@mail.example.com"), ip="192.0.2.99")
        self.assertEqual((got["dmarc"], got["dmarc_policy"]), ("fail", "quarantine"))

    def test_strict_alignment(self):
        got = self.check(message("user@strict.example"), mail_from="x@sub.strict.example")
        self.assertEqual((got["spf"], got["dmarc"]), ("pass", "fail"))
        got = self.check(self.signed(message("user@strict.example"), "sub.strict.example"),
                         mail_from="x@nothing.example")
        self.assertEqual((got["dkim"][0]["result"], got["dmarc"]), ("pass", "fail"))
        got = self.check(self.signed(message("user@strict.example"), "strict.example"),
                         mail_from="x@nothing.example")
        self.assertEqual(got["dmarc"], "pass")

    def test_organizational_domain_through_the_public_suffix_list(self):
        got = self.check(message("user@a.b.example.co.uk"), mail_from="x@nothing.example")
        self.assertEqual((got["dmarc"], got["dmarc_policy"]), ("fail", "quarantine"))

    def test_no_record_and_dns_failure(self):
        got = self.check(message("user@none.example"), mail_from="x@none.example")
        self.assertEqual((got["spf"], got["dmarc"], got["dmarc_policy"]), ("pass", "none", ""))
        self.assertIn("dmarc=none", got["authentication_results"])
        got = self.check(message("user@broken.example"), mail_from="x@broken.example")
        self.assertEqual(got["dmarc"], "temperror")


if __name__ == "__main__":
    unittest.main()
