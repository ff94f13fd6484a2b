"""t_86_receipt_results_syntax — the Authentication-Results field written on receipt parses by
the ABNF of RFC 8601 §2.2 (values are RFC 2045 tokens or quoted-strings: a header.b holding
'/' or '=' is quoted), and a forged field claiming our authserv-id as a quoted-string is removed
like the plain one."""
import os
import re
import smtplib
import unittest

from authdns import TestDNS
from harness import HOSTNAME, ServerTestCase, wait_until

ZONE = {
    "odd.example": [{"TXT": "v=spf1 ip4:127.0.0.1 -all"}],
    "_dmarc.odd.example": [{"TXT": "v=DMARC1; p=none"}],
}

# RFC 2045 token: CHAR but SPACE, CTLs and tspecials
TOKEN = r'[^\x00-\x20\x7f()<>@,;:\\"/\[\]?=]+'
QUOTED = r'"(?:[^"\\\r\n]|\\.)*"'
VALUE = "(?:%s|%s)" % (TOKEN, QUOTED)
CFWS = r'(?:[ \t]|\r\n[ \t]|\([^()]*\))*'
PVALUE = r"(?:%s|(?:%s)?@%s|%s)" % (VALUE, TOKEN, TOKEN, TOKEN)
RESINFO = (r";{c}{tok}{c}={c}{tok}(?:{c}reason{c}={c}{val})?"
           r"(?:{c}{tok}\.{tok}{c}={c}{pv})*").format(c=CFWS, tok=TOKEN, val=VALUE, pv=PVALUE)
FIELD = re.compile(r"^Authentication-Results:{c}({val})(?:{c}[0-9]+)?{c}(?:(?:{r})+|;{c}none){c}$"
                   .format(c=CFWS, val=VALUE, r=RESINFO))


def results(msg):
    return [f.rstrip("\r") for f in
            re.findall(r"^Authentication-Results:.*(?:\r?\n[ \t].*)*", msg, re.M)]


def message(tag, extra=""):
    return ("%sFrom: <x@odd.example>\r\nTo: <alice@example.test>\r\nSubject: %s\r\n"
            "Message-ID: <%s@test>\r\n\r\nbody of %s\r\n" % (extra, tag, tag, tag)).encode()


class ResultsSyntax(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = TestDNS(ZONE)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def delivered(self, srv, tag):
        root = srv.maildir("alice")

        def find():
            for sub in ("new", "cur"):
                d = os.path.join(root, sub)
                for name in os.listdir(d) if os.path.isdir(d) else []:
                    with open(os.path.join(d, name), "rb") as f:
                        data = f.read()
                    if ("Subject: %s\r\n" % tag).encode() in data:
                        return data.decode()
            return None
        msg = wait_until(find, 10)
        self.assertIsNotNone(msg, "%s not delivered\n%s" % (tag, srv.log()))
        return msg

    def test_values_are_tokens_or_quoted(self):
        srv = self.start_server(extra_config=["resolver %s" % self.dns.resolver,
                                              "spf_check tag", "dmarc_check tag"])
        # a signature whose b= starts with tspecials; it cannot verify, but is reported
        sig = ("DKIM-Signature: v=1; a=rsa-sha256; d=odd.example; s=sel; c=relaxed/relaxed;\r\n"
               "\th=from:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
               "\tb=ab/cd=ef+gh/ijklmnopqrstuvwxyz0123456789\r\n")
        forged = ('Authentication-Results: "%s"; dmarc=pass header.from=odd.example\r\n'
                  "Authentication-Results: (x) \"%s\" 1; dkim=pass\r\n"
                  % (HOSTNAME, HOSTNAME.upper()))
        with smtplib.SMTP("127.0.0.1", srv.mx_port, timeout=30) as s:
            s.sendmail("x@odd.example", ["alice@example.test"], message("odd", forged + sig))
        msg = self.delivered(srv, "odd")
        ar = results(msg)
        self.assertEqual(len(ar), 1, msg)  # both forged fields removed
        self.assertRegex(srv.log(), r"removed 2 Authentication-Results field\(s\) claiming")
        self.assertRegex(ar[0], FIELD, ar[0])
        self.assertIn('header.b="ab/cdef+"', ar[0])  # the first 8 base64 characters
        self.assertIn("spf=pass smtp.mailfrom=odd.example", ar[0])
        self.assertIn("header.d=odd.example header.s=sel", ar[0])


if __name__ == "__main__":
    unittest.main()
