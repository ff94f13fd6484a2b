"""t_117_dmarc_from — DMARC does not fail open on the From: field (RFC 7489 §6.6.1, RFC 5322
§3.6), over the wire under dmarc_check enforce: a forged From: of a p=reject domain is refused
with 550 5.7.26 however many header fields come before it (62, 100, past the 1,000 the DKIM
verifier reads) and however long its folded display name; a From: naming a passing domain and
a failing one is refused for the failing one; a message without one readable From: field (two
From: fields of one domain or of two, none, group syntax) is refused with 550 5.7.1; tag
records dmarc=permerror for it and delivers; a legitimate message with 100 header fields is
accepted. And mail submitted after AUTH with 100 header fields before its From: is signed, and
the stored copy verifies with clearmta's own verifier."""
import json
import smtplib
import subprocess
import unittest

from authdns import DkimZone
from harness import (BIN, ServerTestCase, auth_server, login, send_transaction, starttls,
                     wait_until)

ZONE = {
    "bank.example": [{"TXT": "v=spf1 -all"}],
    "_dmarc.bank.example": [{"TXT": "v=DMARC1; p=reject"}],
    "spoofer.example": [{"TXT": "v=spf1 +all"}],
    "good.example": [{"TXT": "v=spf1 ip4:127.0.0.1 -all"}],
    "_dmarc.good.example": [{"TXT": "v=DMARC1; p=reject"}],
}

NO_AUTHOR = ("5.7.1 Message refused: it has %s; it needs exactly one From: field with valid "
             "addresses, whose domains DMARC can check")


def message(from_fields, tag, pad=0):
    """A message with the given From: lines (each without CRLF), pad X-Pad fields first."""
    head = "".join("X-Pad-%d: x\r\n" % i for i in range(pad))
    head += "".join(f + "\r\n" for f in from_fields)
    return ("%sTo: <alice@example.test>\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\n"
            "click here, %s\r\n" % (head, tag, tag, tag)).encode()


LONG_FROM = ('From: "Bank' + " security team" * 300 + '"\r\n <security@bank.example>')


class DmarcFrom(DkimZone, ServerTestCase):
    ZONE = ZONE
    DKIM_DOMAIN = "example.test"
    DKIM_SELECTOR = "s117"

    def server(self, mode):
        return self.start_server(extra_config=["resolver %s" % self.dns.resolver,
                                               "spf_check tag", "dmarc_check %s" % mode])

    def send(self, srv, sender, data):
        """The reply to the message: (code, text)."""
        with smtplib.SMTP("127.0.0.1", srv.mx_port, timeout=30) as s:
            s.ehlo("mail.spoofer.example")
            self.assertEqual(s.mail(sender)[0], 250)
            self.assertEqual(s.rcpt("alice@example.test")[0], 250)
            code, text = s.data(data)
            return code, text.decode()

    def delivered(self, srv, tag):
        def find():
            for data in srv.mailbox("alice"):
                if ("Subject: %s\r\n" % tag).encode() in data:
                    return data.decode(errors="replace")
            return None
        msg = wait_until(find, 10)
        self.assertIsNotNone(msg, "%s not delivered\n%s" % (tag, srv.log()))
        return msg

    def assert_dmarc_reject(self, srv, data, sender="x@spoofer.example"):
        code, text = self.send(srv, sender, data)
        self.assertEqual(code, 550, text)
        self.assertTrue(text.startswith("5.7.26 DMARC policy of bank.example rejects"), text)

    def test_forged_from_refused_however_the_header_looks(self):
        srv = self.server("enforce")
        bank = "From: Bank <security@bank.example>"
        for pad in (0, 62, 100, 1200):
            with self.subTest(pad=pad):
                self.assert_dmarc_reject(srv, message([bank], "pad%d" % pad, pad))
        self.assert_dmarc_reject(srv, message([LONG_FROM], "long"))
        self.assertGreater(len(LONG_FROM), 4096)
        # one address passes DMARC (SPF of good.example), the other fails under p=reject: the
        # strictest applies, in either order
        for tag, field in (("two", "From: a@good.example, b@bank.example"),
                           ("owt", "From: <b@bank.example>, A <a@good.example>")):
            self.assert_dmarc_reject(srv, message([field], tag), sender="a@good.example")
        self.assertEqual(srv.mailbox("alice"), [])

    def test_no_single_readable_from_refused(self):
        srv = self.server("enforce")
        cases = {
            "dup-same": (["From: Bank <security@bank.example>"] * 2, "several From: fields"),
            "dup-other": (["From: a@good.example", "From: security@bank.example"],
                          "several From: fields"),
            "dup-padded": (["From: a@good.example"] + ["X-Pad: y"] * 80 +
                           ["From: security@bank.example"], "several From: fields"),
            "none": ([], "no From: field"),
            "group": (["From: Bank: security@bank.example;"],
                      "no readable address with a domain in From:"),
        }
        for tag, (fields, why) in cases.items():
            with self.subTest(tag=tag):
                code, text = self.send(srv, "a@good.example", message(fields, tag))
                self.assertEqual(code, 550, text)
                self.assertEqual(text, NO_AUTHOR % why)
        self.assertRegex(srv.log(), r"refused: several From: fields, no author domain for DMARC")
        self.assertEqual(srv.mailbox("alice"), [])
        # a legitimate message with 100 header fields still passes
        code, text = self.send(srv, "a@good.example",
                               message(["From: A <a@good.example>"], "legit", 100))
        self.assertEqual(code, 250, text)
        self.assertIn("dmarc=pass header.from=good.example", self.delivered(srv, "legit"))

    def test_tag_records_permerror(self):
        srv = self.server("tag")
        code, text = self.send(srv, "a@good.example",
                               message(["From: a@good.example", "From: a@good.example"], "dup"))
        self.assertEqual(code, 250, text)
        self.assertRegex(self.delivered(srv, "dup"), r"dmarc=permerror header\.from=unknown")

    def test_signs_a_message_of_many_fields(self):
        srv = auth_server(self, extra_config=[
            "dkim_sign example.test selector=s117 key=%s" % self.key])
        c = self.connect(srv.sub_port)
        starttls(c)
        login(c)
        data = message(["From: Alice <alice@example.test>"], "signed", 100)
        send_transaction(c, "alice@example.test", ["bob@example.test"], data)
        srv.wait_mail("bob")
        path = srv.maildir_files("bob")[0]
        with open(path, "rb") as f:
            stored = f.read()
        self.assertEqual(stored.count(b"DKIM-Signature:"), 1, stored[:800])
        out = subprocess.run([BIN, "auth", "dkim-verify", path, "--json", "--resolver",
                              self.dns.resolver], capture_output=True, timeout=60)
        result = json.loads(out.stdout)
        self.assertEqual(result[0]["result"], "pass", out)
        self.assertEqual(result[0]["domain"], "example.test")


if __name__ == "__main__":
    unittest.main()
