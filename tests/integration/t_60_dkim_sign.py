"""t_60_dkim_sign — DKIM signing (RFC 6376, RFC 8463): mail that alice submits after AUTH is
signed with the contract's CONTRACT_DKIM key, and Debian's dkimpy (an outside verifier, not
our code) verifies the delivered Maildir file as stored, with CRLF or LF line ends, for rsa and
ed25519 keys and for awkward messages; a forged From on the MX port is never signed."""
import os
import re
import subprocess
import unittest

from authdns import debian_module
from harness import (BIN, ServerTestCase, auth_server, login, make_message, send_transaction,
                     starttls)
from t_30_deliver import DeliverCase

dkim = debian_module("dkim")

# Messages that trip canonicalisation: folded and spaced headers, 8-bit text, lines starting
# with a dot (stuffed on the wire, unstuffed in the store), trailing blank lines and spaces.
MESSAGES = {
    "folded": (b"From: Alice Example <alice@example.test>\r\n"
               b"To: bob@example.test\r\n"
               b"Subject: a subject that is folded\r\n"
               b"   across   two\tlines  \r\n"
               b"Date: Sun, 6 Dec 2026 08:00:00 +0000\r\n"
               b"Message-ID: <folded@example.test>\r\n"
               b"\r\n"
               b"body   with  spaces \t \r\nsecond line\r\n"),
    "eightbit": ("From: \"Ren\u00e9, the sender\" <alice@example.test>\r\n"
                 "To: bob@example.test\r\n"
                 "Subject: caf\u00e9\r\n"
                 "MIME-Version: 1.0\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: 8bit\r\n"
                 "\r\n"
                 "d\u00e9j\u00e0 vu \u2014 na\u00efve\r\n").encode("utf-8"),
    "dots": (b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: dots\r\n\r\n"
             b".leading dot\r\n..two dots\r\n.\r\nend\r\n"),
    "trailing": (b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: blank\r\n\r\n"
                 b"text\r\n\r\n\r\n  \r\n\r\n"),
    "empty_body": b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: empty\r\n\r\n",
}


def keygen(case, kind, domain="example.test"):
    d = case.mkdtemp()
    key = os.path.join(d, "%s.pem" % kind)
    out = subprocess.run([BIN, "dkim", "keygen", "--domain", domain, "--selector",
                          "sel-" + kind, "--type", kind, "--out", key],
                         capture_output=True, timeout=60, check=True)
    text = out.stdout.decode()
    name = text.split()[0].rstrip(".")
    record = "".join(re.findall(r'"([^"]*)"', text))
    return key, name, record


@unittest.skipIf(dkim is None, "python3-dkim (dkimpy) is not installed")
class Signing(ServerTestCase):
    def server(self, kind):
        key, name, record = keygen(self, kind)
        self.assertEqual(oct(os.stat(key).st_mode & 0o777), "0o600")
        self.assertEqual(name, "sel-%s._domainkey.example.test" % kind)
        self.assertTrue(record.startswith("v=DKIM1; k=%s; p=" % kind), record)
        srv = self.start_server(env={"CONTRACT_DKIM": "sel-%s:%s" % (kind, key)})
        self.records = {name.encode(): record.encode()}
        return srv

    def dns(self, qname, timeout=5):
        return self.records.get(qname.rstrip(b"."))

    def submit(self, srv, message):
        c = self.connect(srv.sub_port)
        starttls(c)
        login(c)
        send_transaction(c, "alice@example.test", ["bob@example.test"], message)

    def check_signed(self, srv, kind, messages):
        for i, (label, message) in enumerate(messages.items()):
            self.submit(srv, message)
            srv.wait_mail("bob", count=i + 1)
        for stored in self.files(srv):
            with open(stored, "rb") as f:
                content = f.read()
            self.assertEqual(content.count(b"DKIM-Signature:"), 1, content[:600])
            self.assertIn(b"a=%s-sha256" % kind.encode(), content)
            self.assertIn(b"d=example.test", content)
            self.assertIn(b"h=from:", content)
            self.assertTrue(dkim.verify(content, dnsfunc=self.dns), content[:800])
            lf = content.replace(b"\r\n", b"\n")
            self.assertTrue(dkim.verify(lf, dnsfunc=self.dns), "LF copy of %s" % stored)
            tampered = content.replace(b"\r\nTo: bob@", b"\r\nTo: eve@", 1)
            self.assertNotEqual(tampered, content)
            self.assertFalse(dkim.verify(tampered, dnsfunc=self.dns))
            self.assertFalse(dkim.verify(content + b"more\r\n", dnsfunc=self.dns))

    def files(self, srv):
        return srv.maildir_files("bob")

    def test_rsa_signatures_verify_with_dkimpy(self):
        srv = self.server("rsa")
        self.check_signed(srv, "rsa", MESSAGES)

    def test_ed25519_signatures_verify_with_dkimpy(self):
        srv = self.server("ed25519")
        self.check_signed(srv, "ed25519", MESSAGES)

    def test_from_oversigned_so_an_added_from_fails(self):
        srv = self.server("rsa")
        self.submit(srv, MESSAGES["folded"])
        srv.wait_mail("bob")
        with open(self.files(srv)[0], "rb") as f:
            content = f.read()
        self.assertRegex(content, rb"h=from:from:")
        i = content.index(b"From:")
        forged = content[:i] + b"From: mallory@example.test\r\n" + content[i:]
        self.assertFalse(dkim.verify(forged, dnsfunc=self.dns))

    def test_forged_from_on_the_mx_port_is_never_signed(self):
        srv = self.server("rsa")
        c = self.connect(srv.mx_port)
        c.ehlo()
        send_transaction(c, "alice@example.test", ["bob@example.test"],
                         MESSAGES["folded"])
        srv.wait_mail("bob")
        with open(self.files(srv)[0], "rb") as f:
            self.assertNotIn(b"DKIM-Signature", f.read())

    def test_other_from_domain_is_not_signed(self):
        srv = self.server("ed25519")
        self.submit(srv, b"From: alice@other.example\r\nTo: bob@example.test\r\n\r\nhi\r\n")
        srv.wait_mail("bob")
        with open(self.files(srv)[0], "rb") as f:
            self.assertNotIn(b"DKIM-Signature", f.read())


@unittest.skipIf(dkim is None, "python3-dkim (dkimpy) is not installed")
class Reports(DeliverCase):
    def test_bounce_from_a_signing_host_name_is_signed(self):
        # The reports' From is MAILER-DAEMON@<hostname>: signed when that domain has a key.
        key, name, record = keygen(self, "ed25519", domain="mx.example.test")
        bad = "nobody@remote.example"
        relay = self.start_relay({"rcpt_by_address": {bad: "550 5.1.1 No such user here"}})
        srv = auth_server(self, extra_config=[
            "relayhost [127.0.0.1]:%d" % relay.port,
            "dkim_sign mx.example.test selector=sel-ed25519 key=%s" % key])
        self.submit(srv, [bad], make_message("signed-bounce"))
        raw = srv.wait_mail("alice")[0]
        self.assertEqual(raw.count(b"DKIM-Signature:"), 1, raw[:600])
        self.assertIn(b"d=mx.example.test", raw)
        records = {name.encode(): record.encode()}
        self.assertTrue(dkim.verify(raw, dnsfunc=lambda q, timeout=5: records.get(q.rstrip(b"."))))


class Keygen(ServerTestCase):
    def test_unreadable_key_stops_the_server_with_a_reason(self):
        d = self.mkdtemp()
        srv = self.start_server(env={"CONTRACT_DKIM": "s:%s/missing.pem" % d}, wait=False)
        rc = srv.wait_exit(30)
        self.assertNotEqual(rc, 0)
        self.assertIn("dkim_sign example.test", srv.log())


if __name__ == "__main__":
    unittest.main()
