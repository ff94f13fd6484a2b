"""t_69_receipt_cache — the answers of the checks on receipt are kept for their TTL and shared
by sessions: after one message from a domain, the DNS server goes away and the next message
from that domain is still checked in full (SPF, DKIM key, DMARC record from the cache), while a
domain never looked up gets 451 4.7.24 (spf_check reject: its DNS failed)."""
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest

from authdns import TestDNS
from harness import BIN, ServerTestCase, wait_until


def message(sender, tag):
    return ("From: <%s>\r\nTo: <alice@example.test>\r\nSubject: %s\r\n"
            "Message-ID: <%s@test>\r\n\r\nbody of %s\r\n" % (sender, tag, tag, tag)).encode()


class ReceiptCache(ServerTestCase):
    def test_answers_outlive_the_dns_server(self):
        d = tempfile.mkdtemp(prefix="clearmta-cache-")
        self.addCleanup(shutil.rmtree, d, True)
        key = os.path.join(d, "k.pem")
        out = subprocess.run([BIN, "dkim", "keygen", "--domain", "cached.example", "--selector",
                              "s", "--type", "ed25519", "--out", key], check=True,
                             capture_output=True, timeout=60).stdout.decode()
        dns = TestDNS({
            "cached.example": [{"TXT": "v=spf1 ip4:127.0.0.1 -all"}],
            "_dmarc.cached.example": [{"TXT": "v=DMARC1; p=reject"}],
            "s._domainkey.cached.example": [{"TXT": out.split('"')[1]}],
            "other.example": [{"TXT": "v=spf1 ip4:127.0.0.1 -all"}],
        })
        stopped = False
        try:
            srv = self.start_server(extra_config=["resolver %s" % dns.resolver,
                                                  "spf_check reject", "dmarc_check enforce"])

            def send(tag):
                signed = subprocess.run(
                    [BIN, "dkim", "sign", "--domain", "cached.example", "--selector", "s",
                     "--key", key, "-"], input=message("a@cached.example", tag), check=True,
                    capture_output=True, timeout=60).stdout
                with smtplib.SMTP("127.0.0.1", srv.mx_port, timeout=30) as s:
                    s.sendmail("a@cached.example", ["alice@example.test"], signed)

            def results(tag):
                def find():
                    for m in srv.mailbox("alice"):
                        if ("Subject: %s\r\n" % tag).encode() in m:
                            return m.decode()
                    return None
                msg = wait_until(find, 10)
                self.assertIsNotNone(msg, srv.log())
                return re.search(r"^Authentication-Results:.*(?:\r?\n[ \t].*)*", msg,
                                 re.M).group(0)

            send("first")
            first = results("first")
            dns.stop()
            stopped = True
            send("second")
            second = results("second")
            for ar in (first, second):
                self.assertIn("spf=pass smtp.mailfrom=cached.example", ar)
                self.assertIn("dkim=pass header.d=cached.example header.s=s", ar)
                self.assertIn("dmarc=pass header.from=cached.example", ar)
            t0 = time.monotonic()
            with smtplib.SMTP("127.0.0.1", srv.mx_port, timeout=30) as s:
                s.ehlo()
                code, text = s.mail("a@other.example")
            self.assertEqual((code, text.decode()[:6]), (451, "4.7.24"))
            self.assertLess(time.monotonic() - t0, 25)
        finally:
            if not stopped:
                dns.stop()


if __name__ == "__main__":
    unittest.main()
