"""t_67_receipt_dmarc — DKIM and DMARC on receipt over the wire (RFC 7489 §6.6, RFC 8601,
RFC 7372): dmarc_check enforce refuses p=reject with 550 5.7.26 and files p=quarantine into
the mailbox's .Junk folder (made with tmp/new/cur); tag records dmarc=fail and delivers; a
signed, aligned message passes with dkim=pass header.d/header.s/header.b; Authentication-
Results appears exactly once, a forged one claiming our host name is removed while another
authserv-id's stays, one claiming it as a quoted-string too; the field parses by the ABNF of
RFC 8601 §2.2 (a header.b holding '/' or '=' is a quoted-string, as RFC 2045 tokens hold
neither); `clearmta queue show` and the log line show the results."""
import json
import os
import re
import smtplib
import subprocess
import unittest

from authdns import DkimZone
from harness import BIN, HOSTNAME, ServerTestCase, free_ports, wait_until

ZONE = {
    "rej.example": [{"TXT": "v=spf1 -all"}],
    "_dmarc.rej.example": [{"TXT": "v=DMARC1; p=reject"}],
    "quar.example": [{"TXT": "v=spf1 -all"}],
    "_dmarc.quar.example": [{"TXT": "v=DMARC1; p=quarantine"}],
    "good.example": [{"TXT": "v=spf1 ip4:127.0.0.1 -all"}],
    "_dmarc.good.example": [{"TXT": "v=DMARC1; p=reject"}],
    "signed.example": [{"TXT": "v=spf1 -all"}],
    "_dmarc.signed.example": [{"TXT": "v=DMARC1; p=reject"}],
    "odd.example": [{"TXT": "v=spf1 ip4:127.0.0.1 -all"}],
    "_dmarc.odd.example": [{"TXT": "v=DMARC1; p=none"}],
}

# RFC 8601 §2.2 with RFC 2045 tokens (CHAR but SPACE, CTLs and tspecials) and quoted-strings
TOKEN = r'[^\x00-\x20\x7f()<>@,;:\\"/\[\]?=]+'
VALUE = r'(?:%s|"(?:[^"\\\r\n]|\\.)*")' % TOKEN
CFWS = r'(?:[ \t]|\r\n[ \t]|\([^()]*\))*'
PVALUE = r"(?:%s|(?:%s)?@%s)" % (VALUE, TOKEN, TOKEN)
RESINFO = (r";{c}{t}{c}={c}{t}(?:{c}reason{c}={c}{v})?(?:{c}{t}\.{t}{c}={c}{pv})*"
           .format(c=CFWS, t=TOKEN, v=VALUE, pv=PVALUE))
AR_FIELD = re.compile(r"^Authentication-Results:{c}{v}(?:{c}[0-9]+)?{c}(?:(?:{r})+|;{c}none){c}$"
                      .format(c=CFWS, v=VALUE, r=RESINFO))


def message(sender, tag, extra=""):
    return ("%sFrom: <%s>\r\nTo: <alice@example.test>\r\nSubject: %s\r\n"
            "Message-ID: <%s@test>\r\n\r\nbody of %s\r\n" % (extra, sender, tag, tag, tag)).encode()


def results(msg):
    return re.findall(r"^Authentication-Results:.*(?:\r?\n[ \t].*)*", msg, re.M)


class ReceiptDmarc(DkimZone, ServerTestCase):
    ZONE = ZONE
    DKIM_DOMAIN = "signed.example"
    DKIM_SELECTOR = "s"

    def server(self, *lines):
        return self.start_server(extra_config=["resolver %s" % self.dns.resolver,
                                               "spf_check tag"] + list(lines))

    def send(self, port, sender, data, rcpts=("alice@example.test",)):
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.sendmail(sender, list(rcpts), data)

    def delivered(self, srv, tag, subdir=""):
        root = os.path.join(srv.maildir("alice"), subdir)

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
        self.assertIsNotNone(msg, "%s not delivered to %s\n%s" % (tag, root, srv.log()))
        return msg

    def test_enforce_reject_and_quarantine(self):
        srv = self.server("dmarc_check enforce")
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            self.send(srv.mx_port, "x@rej.example", message("x@rej.example", "rej"))
        self.assertEqual(cm.exception.smtp_code, 550)
        self.assertEqual(cm.exception.smtp_error.decode(),
                         "5.7.26 DMARC policy of rej.example rejects this message: neither SPF "
                         "nor DKIM passed for that domain of the From: address; its owner must "
                         "make SPF or DKIM of its mail pass and align")
        self.assertRegex(srv.log(), r"refused by the DMARC policy of rej\.example")

        self.send(srv.mx_port, "x@quar.example", message("x@quar.example", "quar"))
        msg = self.delivered(srv, "quar", ".Junk")
        for sub in ("tmp", "new", "cur"):
            self.assertTrue(os.path.isdir(os.path.join(srv.maildir("alice"), ".Junk", sub)))
        ar = results(msg)
        self.assertEqual(len(ar), 1, msg)
        self.assertIn("dmarc=fail (p=quarantine) header.from=quar.example", ar[0])
        self.assertRegex(srv.log(), r"delivered to maildir folder \.Junk")
        # not in the inbox; the refused one nowhere
        inbox = b"".join(srv.mailbox("alice"))
        self.assertNotIn(b"Subject: quar", inbox)
        self.assertNotIn(b"Subject: rej", inbox)

        self.send(srv.mx_port, "x@good.example", message("x@good.example", "good"))
        ar = results(self.delivered(srv, "good"))
        self.assertEqual(len(ar), 1)
        self.assertIn("spf=pass smtp.mailfrom=good.example", ar[0])
        self.assertIn("dkim=none", ar[0])
        self.assertIn("dmarc=pass header.from=good.example", ar[0])

    def test_tag_delivers_failures(self):
        srv = self.server("dmarc_check tag")
        self.send(srv.mx_port, "x@rej.example", message("x@rej.example", "tagged"))
        ar = results(self.delivered(srv, "tagged"))
        self.assertIn("dmarc=fail (p=reject) header.from=rej.example", ar[0])

    def test_signed_aligned_passes(self):
        srv = self.server("dmarc_check enforce")
        signed = subprocess.run([BIN, "dkim", "sign", "--domain", "signed.example", "--selector",
                                 "s", "--key", self.key, "-"],
                                input=message("x@signed.example", "signed"), check=True,
                                capture_output=True, timeout=60).stdout
        b = re.search(rb"\bb=([A-Za-z0-9+/]{8})", signed.replace(b"\r\n\t", b"")).group(1)
        self.send(srv.mx_port, "x@signed.example", signed)
        msg = self.delivered(srv, "signed")
        ar = results(msg)
        self.assertEqual(len(ar), 1, msg)
        self.assertIn("spf=fail smtp.mailfrom=signed.example", ar[0])
        b = b.decode() if b"/" not in b else '"%s"' % b.decode()  # '/': a quoted-string
        self.assertIn("dkim=pass header.d=signed.example header.s=s header.b=%s" % b, ar[0])
        self.assertIn("dmarc=pass header.from=signed.example", ar[0])
        # the stored copy still verifies (our fields sit above the signed ones)
        path = os.path.join(self.dir, "stored.eml")
        with open(path, "wb") as f:
            f.write(msg.encode())
        out = subprocess.run([BIN, "auth", "dkim-verify", path, "--json", "--resolver",
                              self.dns.resolver], capture_output=True, timeout=60)
        self.assertEqual(json.loads(out.stdout)[0]["result"], "pass", out)

    def test_forged_results_removed_others_kept(self):
        srv = self.server("dmarc_check tag")
        forged = ("Authentication-Results: %s; dkim=pass header.d=good.example;\r\n"
                  "\tdmarc=pass header.from=good.example\r\n"
                  "Authentication-Results: (relay) other.example; spf=pass\r\n"
                  "authentication-results:  MX.EXAMPLE.TEST ; spf=pass\r\n" % HOSTNAME)
        self.send(srv.mx_port, "x@rej.example", message("x@rej.example", "forged", forged))
        msg = self.delivered(srv, "forged")
        ar = results(msg)
        ours = [a for a in ar if re.match(r"(?i)authentication-results:\s*%s\b" %
                                          re.escape(HOSTNAME), a)]
        self.assertEqual(len(ours), 1, ar)
        self.assertIn("dmarc=fail", ours[0])
        self.assertIn("Authentication-Results: (relay) other.example; spf=pass", msg)
        self.assertNotIn("dmarc=pass header.from=good.example", msg)
        self.assertRegex(srv.log(), r"removed 2 Authentication-Results field\(s\) claiming")

    def test_field_syntax_and_quoted_forgery(self):
        srv = self.server("dmarc_check tag")
        # a signature whose b= starts with tspecials: it cannot verify, but is reported
        sig = ("DKIM-Signature: v=1; a=rsa-sha256; d=odd.example; s=sel; c=relaxed/relaxed;\r\n"
               "\th=from:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
               "\tb=ab/cd=ef+gh/ijklmnopqrstuvwxyz0123456789\r\n")
        forged = ('Authentication-Results: "%s"; dmarc=pass header.from=odd.example\r\n'
                  'Authentication-Results: (x) "%s" 1; dkim=pass\r\n' % (HOSTNAME, HOSTNAME.upper()))
        self.send(srv.mx_port, "x@odd.example", message("x@odd.example", "odd", forged + sig))
        ar = [f.rstrip("\r") for f in results(self.delivered(srv, "odd"))]
        self.assertEqual(len(ar), 1, ar)  # both forged fields removed
        self.assertRegex(srv.log(), r"removed 2 Authentication-Results field\(s\) claiming")
        self.assertRegex(ar[0], AR_FIELD)
        self.assertIn('header.b="ab/cdef+"', ar[0])  # the first 8 base64 characters
        self.assertIn("spf=pass smtp.mailfrom=odd.example", ar[0])

    def test_off_leaves_message_alone(self):
        srv = self.start_server(extra_config=["resolver %s" % self.dns.resolver])
        forged = "Authentication-Results: %s; dmarc=pass\r\n" % HOSTNAME
        self.send(srv.mx_port, "x@rej.example", message("x@rej.example", "plain", forged))
        msg = self.delivered(srv, "plain")
        self.assertEqual(len(results(msg)), 1)  # not ours to judge: no check ran

    def test_queue_show_has_results(self):
        closed = free_ports(1)[0]  # nothing listens: the LMTP delivery stays deferred
        srv = self.server("dmarc_check tag", "domain lmtp.example lmtp [127.0.0.1]:%d" % closed,
                          "retry_first 60")
        with smtplib.SMTP("127.0.0.1", srv.mx_port, timeout=30) as s:
            s.ehlo()
            self.assertEqual(s.mail("x@good.example")[0], 250)
            self.assertEqual(s.rcpt("carol@lmtp.example")[0], 250)
            code, text = s.data(message("x@good.example", "queued"))
        self.assertEqual(code, 250)
        qid = re.search(rb"queued as ([0-9A-F]{16})", text).group(1).decode()

        def show():
            r = subprocess.run([BIN, "queue", "show", qid, "--json", "-c", srv.conf_path],
                               capture_output=True, timeout=30)
            return json.loads(r.stdout) if r.returncode == 0 else None
        view = wait_until(show, 10)
        self.assertIsNotNone(view)
        ar = view["message"]["authentication_results"]
        self.assertTrue(ar.startswith("%s; spf=pass smtp.mailfrom=good.example" % HOSTNAME), ar)
        self.assertIn("dmarc=pass", ar)
        r = subprocess.run([BIN, "queue", "show", qid, "-c", srv.conf_path],
                           capture_output=True, timeout=30)
        self.assertIn("authentication: %s; spf=pass" % HOSTNAME, r.stdout.decode())


if __name__ == "__main__":
    unittest.main()
