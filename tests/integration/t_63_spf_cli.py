"""t_63_spf_cli — the exact behaviour of `clearmta auth spf` the issue fixes (RFC 7208): the
first word of the plain output is the result, --json gives {"result", "domain",
"explanation"} with the exp= text only on a fail, exit 0 for every result, --mail-from ""
checks the HELO identity, a record over 512 octets arrives truncated over UDP and is fetched
over TCP, a DNS error on a PTR name's addresses skips that name, and an unanswered query gives
temperror after about 10 s."""
import json
import subprocess
import time
import unittest

from authdns import TestDNS
from harness import BIN
BIG = "v=spf1 " + " ".join("ip4:198.51.100.%d" % i for i in range(1, 60)) + " ip4:192.0.2.9 -all"

ZONE = {
    "pass.example": [{"TXT": "v=spf1 ip4:192.0.2.0/24 -all"}],
    "fail.example": [{"TXT": "v=spf1 -all exp=why.fail.example"}],
    "why.fail.example": [{"TXT": "%{i} may not send for %{d}"}],
    "soft.example": [{"TXT": "v=spf1 ~all"}],
    "helo.example": [{"TXT": "v=spf1 ip4:192.0.2.7 -all"}],
    "big.example": [{"TXT": BIG}],
    "ptr.example": [{"TXT": "v=spf1 ptr -all"}],
    "7.2.0.192.in-addr.arpa": [{"PTR": "broken.ptr.example"}, {"PTR": "good.ptr.example"}],
    "broken.ptr.example": ["SERVFAIL"],
    "good.ptr.example": [{"A": "192.0.2.7"}],
    "slow.example": ["TIMEOUT"],
}


class SpfCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = TestDNS(ZONE)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def spf(self, ip, mail_from, helo="mx.client.example", json_out=True):
        args = [BIN, "auth", "spf", "--ip", ip, "--helo", helo, "--mail-from", mail_from,
                "--resolver", self.dns.resolver] + (["--json"] if json_out else [])
        out = subprocess.run(args, capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout) if json_out else out.stdout.decode()

    def test_json_and_plain_forms(self):
        self.assertEqual(self.spf("192.0.2.1", "a@pass.example"),
                         {"result": "pass", "domain": "pass.example", "explanation": ""})
        got = self.spf("192.0.2.1", "a@fail.example")
        self.assertEqual(got, {"result": "fail", "domain": "fail.example",
                               "explanation": "192.0.2.1 may not send for fail.example"})
        self.assertEqual(self.spf("192.0.2.1", "a@soft.example")["explanation"], "")
        for ip, sender, word in (("192.0.2.1", "a@pass.example", "pass"),
                                 ("192.0.2.1", "a@fail.example", "fail"),
                                 ("192.0.2.1", "a@soft.example", "softfail"),
                                 ("192.0.2.1", "a@nothing.example", "none")):
            self.assertEqual(self.spf(ip, sender, json_out=False).split()[0], word)

    def test_empty_mail_from_checks_the_helo_name(self):
        got = self.spf("192.0.2.7", "", helo="helo.example")
        self.assertEqual((got["result"], got["domain"]), ("pass", "helo.example"))
        self.assertEqual(self.spf("192.0.2.8", "", helo="helo.example")["result"], "fail")

    def test_record_over_512_octets_comes_over_tcp(self):
        self.assertGreater(len(BIG), 512)
        self.assertEqual(self.spf("192.0.2.9", "a@big.example")["result"], "pass")
        self.assertEqual(self.spf("192.0.2.10", "a@big.example")["result"], "fail")

    def test_dns_error_on_a_ptr_name_skips_it(self):
        self.assertEqual(self.spf("192.0.2.7", "a@ptr.example")["result"], "pass")

    def test_unanswered_query_is_temperror_after_about_10_s(self):
        start = time.monotonic()
        self.assertEqual(self.spf("192.0.2.1", "a@slow.example")["result"], "temperror")
        self.assertLess(time.monotonic() - start, 14)

    def test_bad_address_is_a_usage_error(self):
        out = subprocess.run([BIN, "auth", "spf", "--ip", "999.1.1.1", "--helo", "h.example",
                              "--mail-from", "a@b.example"], capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 2)


if __name__ == "__main__":
    unittest.main()
