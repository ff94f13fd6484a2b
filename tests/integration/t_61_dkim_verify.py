"""t_61_dkim_verify — `clearmta auth dkim-verify` (RFC 6376 §6, RFC 8463, RFC 8301) against
signatures made by Debian's dkimpy, an outside signer: rsa-sha256 and ed25519-sha256 in every
canonicalisation pass, tampered copies fail, a missing key is permerror, SERVFAIL and silence
temperror (within about 10 s), rsa-sha1 never passes, an unsigned message gives []. Keys are
served by tests/dns_test_server.py on loopback; a key record over 512 octets comes over TCP."""
import base64
import json
import re
import os
import subprocess
import time
import unittest

from authdns import TestDNS, debian_module
from harness import BIN, ServerTestCase

dkim = debian_module("dkim")
nacl_signing = debian_module("nacl.signing")

MESSAGE = (b"From: Joe SixPack <joe@football.example.com>\r\n"
           b"To: Suzie Q <suzie@shopping.example.net>\r\n"
           b"Subject: Is dinner ready?\r\n"
           b"  (folded)\r\n"
           b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
           b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
           b"\r\n"
           b"Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\n"
           b"caf\xc3\xa9\r\n.dot\r\n\r\n\r\n")


def rsa_key(d, bits):
    """(PKCS#1 PEM private key, p= value) made by the openssl command, not by our code."""
    path = os.path.join(d, "rsa%d.pem" % bits)
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", path, str(bits)],
                   check=True, capture_output=True, timeout=60)
    der = subprocess.run(["openssl", "rsa", "-in", path, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True, timeout=60).stdout
    with open(path, "rb") as f:
        return f.read(), base64.b64encode(der).decode()


@unittest.skipIf(dkim is None or nacl_signing is None, "python3-dkim is not installed")
class Verify(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.dir = tempfile.mkdtemp(prefix="clearmta-dkimv-")
        cls.rsa, rsa_p = rsa_key(cls.dir, 2048)
        cls.big, big_p = rsa_key(cls.dir, 4096)  # its record needs TCP: > 512 octets
        cls.short, short_p = rsa_key(cls.dir, 512)
        ed = nacl_signing.SigningKey.generate()
        cls.ed = base64.b64encode(bytes(ed))
        ed_p = base64.b64encode(bytes(ed.verify_key)).decode()
        cls.mine = os.path.join(cls.dir, "mine.pem")
        out = subprocess.run([BIN, "dkim", "keygen", "--domain", "football.example.com",
                              "--selector", "mine", "--type", "ed25519", "--out", cls.mine],
                             check=True, capture_output=True, timeout=60).stdout.decode()
        mine = cls.mine_record = out.split('"')[1]
        zone = {
            "mine._domainkey.football.example.com": [{"TXT": mine}],
            "rsa._domainkey.football.example.com": [{"TXT": "v=DKIM1; k=rsa; p=" + rsa_p}],
            "big._domainkey.football.example.com": [{"TXT": "v=DKIM1; k=rsa; p=" + big_p}],
            "short._domainkey.football.example.com": [{"TXT": "v=DKIM1; p=" + short_p}],
            "ed._domainkey.football.example.com": [{"TXT": "v=DKIM1; k=ed25519; p=" + ed_p}],
            "revoked._domainkey.football.example.com": [{"TXT": "v=DKIM1; p="}],
            "broken._domainkey.football.example.com": ["SERVFAIL"],
            "silent._domainkey.football.example.com": ["TIMEOUT"],
            "football.example.com": [{"A": "192.0.2.1"}],
        }
        cls.dns = TestDNS(zone)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        import shutil
        shutil.rmtree(cls.dir, ignore_errors=True)

    def verify(self, message, timeout=30):
        out = subprocess.run([BIN, "auth", "dkim-verify", "--json", "--resolver",
                              self.dns.resolver, "-"], input=message,
                             capture_output=True, timeout=timeout)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def signed(self, selector, key, alg=b"rsa-sha256", canon=(b"relaxed", b"relaxed"),
               message=MESSAGE, **kw):
        sig = dkim.sign(message, selector, b"football.example.com", key,
                        canonicalize=canon, signature_algorithm=alg, **kw)
        return sig + message

    def result(self, message):
        got = self.verify(message)
        self.assertEqual(len(got), 1, got)
        self.assertEqual(got[0]["domain"], "football.example.com")
        return got[0]["result"]

    def test_rsa_every_canonicalisation_passes(self):
        for canon in ((b"relaxed", b"relaxed"), (b"simple", b"simple"),
                      (b"relaxed", b"simple"), (b"simple", b"relaxed")):
            with self.subTest(canon=canon):
                got = self.verify(self.signed(b"rsa", self.rsa, canon=canon))
                self.assertEqual(got, [{"domain": "football.example.com", "selector": "rsa",
                                        "algorithm": "rsa-sha256", "result": "pass",
                                        "reason": "good signature"}])

    def test_ed25519_passes(self):
        for canon in ((b"relaxed", b"relaxed"), (b"simple", b"simple")):
            with self.subTest(canon=canon):
                msg = self.signed(b"ed", self.ed, alg=b"ed25519-sha256", canon=canon)
                self.assertEqual(self.result(msg), "pass")

    def test_lf_line_ends_and_body_length_pass(self):
        msg = self.signed(b"rsa", self.rsa, length=True)
        self.assertIn(b" l=", msg.split(b"\r\n\r\n")[0])
        self.assertEqual(self.result(msg.replace(b"\r\n", b"\n")), "pass")
        # l= covers what was signed; what is appended after it is not signed (RFC 6376 §8.2)
        self.assertEqual(self.result(msg + b"appended\r\n"), "pass")

    def test_tampered_copies_fail(self):
        for alg, sel, key in ((b"rsa-sha256", b"rsa", self.rsa),
                              (b"ed25519-sha256", b"ed", self.ed)):
            msg = self.signed(sel, key, alg=alg)
            with self.subTest(alg=alg, part="body"):
                self.assertEqual(self.result(msg.replace(b"hungry", b"angry!")), "fail")
            with self.subTest(alg=alg, part="header"):
                self.assertEqual(self.result(msg.replace(b"dinner", b"lunch!")), "fail")
            with self.subTest(alg=alg, part="added From"):
                self.assertNotEqual(self.result(b"From: eve@evil.example\r\n" + msg), "pass")

    def test_key_record_problems(self):
        msg = self.signed(b"rsa", self.rsa)
        cases = {b"nosuch": "permerror", b"revoked": "permerror", b"broken": "temperror"}
        for sel, want in cases.items():
            with self.subTest(selector=sel):
                self.assertEqual(self.result(msg.replace(b"s=rsa;", b"s=%s;" % sel, 1)), want)
        with self.subTest("rsa signature, ed25519 key"):
            self.assertEqual(self.result(msg.replace(b"s=rsa;", b"s=ed;", 1)), "permerror")

    def test_short_rsa_key_and_rsa_sha1_never_pass(self):
        self.assertEqual(self.result(self.signed(b"short", self.short)), "permerror")
        sha1 = self.signed(b"rsa", self.rsa, alg=b"rsa-sha1")
        self.assertIn(b"a=rsa-sha1", sha1)
        self.assertNotEqual(self.result(sha1), "pass")

    def test_key_over_512_octets_comes_over_tcp(self):
        self.assertEqual(self.result(self.signed(b"big", self.big)), "pass")

    def test_unanswered_key_query_is_temperror_after_about_10_s(self):
        msg = self.signed(b"rsa", self.rsa).replace(b"s=rsa;", b"s=silent;", 1)
        start = time.monotonic()
        self.assertEqual(self.result(msg), "temperror")
        self.assertLess(time.monotonic() - start, 14)

    def test_unsigned_and_several_signatures(self):
        self.assertEqual(self.verify(MESSAGE), [])
        two = self.signed(b"ed", self.ed, alg=b"ed25519-sha256",
                          message=self.signed(b"rsa", self.rsa))
        got = self.verify(two)
        self.assertEqual([(g["selector"], g["result"]) for g in got],
                         [("ed", "pass"), ("rsa", "pass")])

    def test_malformed_signatures_are_permerror(self):
        msg = self.signed(b"rsa", self.rsa)
        for old, new in ((rb"\bv=1;", b"v=2;"), (rb"\bd=football.example.com;", b"d=;"),
                         (rb"\bb=", b"b=!!!"), (rb"\bh=[^;]*;", b"h=to:subject;")):
            with self.subTest(change=new):
                got = self.verify(re.sub(old, new, msg, count=1))
                self.assertEqual(len(got), 1)
                self.assertIn(got[0]["result"], ("permerror", "neutral"), got)

    def test_clearmta_signed_messages_verify(self):
        signed = subprocess.run([BIN, "dkim", "sign", "--domain", "football.example.com",
                                 "--selector", "mine", "--key", self.mine, "-"], input=MESSAGE,
                                check=True, capture_output=True, timeout=60).stdout
        self.assertEqual(self.result(signed), "pass")
        self.assertTrue(dkim.verify(signed, dnsfunc=lambda q, timeout=5: self.zone_txt(q)))
        # --repeat measures verification alone, the key answers given from memory.
        cost = subprocess.run([BIN, "auth", "dkim-verify", "--resolver", self.dns.resolver,
                               "--repeat", "3", "-"], input=signed, capture_output=True,
                              timeout=60)
        self.assertEqual(cost.returncode, 0, cost.stderr)
        self.assertRegex(cost.stdout.decode(), r"^[0-9.]+ us per message of [0-9]+ bytes with "
                                               r"1 signature\(s\) \(3 verifications\)\n$")
        # Under another selector's key the same signature must not verify.
        self.assertEqual(self.result(signed.replace(b"s=mine;", b"s=ed;", 1)), "fail")

    def zone_txt(self, qname):
        return self.mine_record.encode() if qname.startswith(b"mine.") else None


if __name__ == "__main__":
    unittest.main()
