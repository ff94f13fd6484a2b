"""t_54_lmtp — LMTP delivery (RFC 2033): `domain NAME lmtp unix:PATH` and `domain NAME lmtp
[HOST]:PORT`. The mx port accepts any local part of such a domain (or the listed users) and the
delivery agent takes the mail to the LMTP server, LHLO first; after the message the server
answers once per recipient and each answer is acted on: 250 delivered, 452 4.2.2 (mailbox full,
transient) deferred and retried, 552 5.2.2 bounced into the sender's Maildir with the plain-words
explanation. Against the scriptable test server in LMTP mode, and against Debian's Dovecot LMTP
(started here as root on a private config with a user over quota; skipped with the reason when
not root or Dovecot is missing or does not start)."""
import os
import pwd
import shutil
import signal
import subprocess
import time
import unittest

from harness import auth_server, free_ports, make_message, wait_until
from t_30_deliver import DeliverCase, SMTPTestServer

LMTP_DOMAIN = "lmtp.example"
FULL_EXPLAINED = "mailbox is full"  # the plain words reply/explain gives 5.2.2


class LmtpCase(DeliverCase):
    def start_lmtp(self, script, unix=True):
        """The test server in LMTP mode, on a Unix socket or a loopback port."""
        d = self.mkdtemp(prefix="lmtp-")
        rec = os.path.join(d, "received.jsonl")
        script = dict(script, lmtp=True)
        if unix:
            srv = SMTPTestServer(script, rec, unix_path=os.path.join(d, "lmtp.sock"))
        else:
            srv = SMTPTestServer(script, rec, port=free_ports(1)[0])
        srv.start()
        self.addCleanup(srv.stop)
        target = ("unix:" + srv.unix_path) if unix else "[127.0.0.1]:%d" % srv.port
        return srv, target

    def start_mta(self, target, extra=()):
        return auth_server(self, extra_config=[
            "domain %s lmtp %s" % (LMTP_DOMAIN, target), "retry_first 1", "retry_max 5",
            "queue_lifetime 600", "delay_warning 0"] + list(extra))

    def assertBounced552(self, srv, rcpt):
        report = self.wait_reports(srv, "alice")[0]
        text, _msg, rcpts, _orig = self.report_parts(report)
        self.assertEqual(len(rcpts), 1, rcpts)
        self.assertIn(rcpt, rcpts[0]["final-recipient"])
        self.assertEqual(rcpts[0]["status"], "5.2.2")
        self.assertIn("552", rcpts[0].get("diagnostic-code", ""))
        self.assertIn(FULL_EXPLAINED, text.lower())


class WithTestServer(LmtpCase):
    def test_per_recipient_replies_over_a_unix_socket(self):
        lmtp, target = self.start_lmtp({"data_end_by_address": {
            "full@lmtp.example": "552 5.2.2 <full@lmtp.example> Quota exceeded (mailbox for "
                                 "user is full)",
            "busy@lmtp.example": "452 4.2.2 <busy@lmtp.example> Quota exceeded"}})
        srv = self.start_mta(target)
        msg = make_message("lmtp-unix")
        self.submit(srv, ["ok@lmtp.example", "full@lmtp.example", "busy@lmtp.example"], msg)
        rec = self.wait_records(lmtp, 1)[0]
        self.assertTrue(rec["lhlo"], "the session must open with LHLO")
        self.assertEqual(rec["rcpt_to"],
                         ["ok@lmtp.example", "full@lmtp.example", "busy@lmtp.example"])
        self.assertRelayed(rec, msg)
        self.assertIsNotNone(srv.wait_log(r"to=<ok@lmtp\.example>, relay=unix:\S+, .*"
                                          r"dsn=2\.0\.0, status=sent"))
        self.assertIsNotNone(srv.wait_log(r"to=<busy@lmtp\.example>, .*dsn=4\.2\.2, "
                                          r"status=deferred"))
        self.assertBounced552(srv, "full@lmtp.example")
        # the deferred one is tried again, alone, and never bounced meanwhile
        recs = self.wait_records(lmtp, 2)
        self.assertEqual(recs[1]["rcpt_to"], ["busy@lmtp.example"])
        self.assertTrue(srv.queue_files(), "the deferred recipient must stay queued")
        self.assertEqual(len(srv.maildir_files("alice")), 1, "only the 5.2.2 bounces")

    def test_mx_accepts_any_local_part_and_tcp_delivers(self):
        lmtp, target = self.start_lmtp({}, unix=False)
        srv = self.start_mta(target)
        c = self.connect(srv)
        c.ehlo()
        msg = make_message("lmtp-tcp", rcpt="anyone@lmtp.example")
        self.transaction(c, "sender@example.org", ["Anyone@LMTP.example"], msg)
        c.cmd("QUIT")
        rec = self.wait_records(lmtp, 1)[0]
        self.assertTrue(rec["lhlo"])
        self.assertEqual(rec["rcpt_to"], ["Anyone@LMTP.example"])
        self.assertIsNotNone(srv.wait_log(r"to=<Anyone@LMTP\.example>, "
                                          r"relay=\S*\[127\.0\.0\.1\]:%d, .*status=sent"
                                          % lmtp.port))
        self.wait_queue_empty(srv)
        self.assertEqual(srv.maildir_files("anyone"), [], "never the Maildir writer")

    def test_users_lines_narrow_the_domain(self):
        lmtp, target = self.start_lmtp({})
        srv = self.start_mta(target, ["domain %s users dan" % LMTP_DOMAIN])
        c = self.connect(srv)
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.org>")
        c.expect("250")
        c.cmd("RCPT TO:<eve@lmtp.example>")
        c.expect("550 5.1.1")
        c.cmd("RCPT TO:<dan@lmtp.example>")
        c.expect("250 2.1.5")
        c.cmd("QUIT")

    def test_server_down_defers(self):
        d = self.mkdtemp(prefix="lmtp-")
        srv = self.start_mta("unix:" + os.path.join(d, "nothing.sock"))
        self.submit(srv, ["ok@lmtp.example"], make_message("lmtp-down"))
        self.assertIsNotNone(srv.wait_log(r"to=<ok@lmtp\.example>, .*status=deferred"))
        self.assertTrue(srv.queue_files())
        self.assertEqual(srv.maildir_files("alice"), [])


DOVECOT_CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = lmtp
ssl = no
listen = 127.0.0.1
auth_username_format = %Ln
mail_location = maildir:{d}/mail/%n
first_valid_uid = 1
postmaster_address = postmaster@lmtp.example
hostname = lmtp.example
mail_plugins = quota
passdb {{
  driver = passwd-file
  args = {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
}}
plugin {{
  quota = maildir:User quota
  quota_rule = *:storage=100M
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""


class WithDovecot(LmtpCase):
    """Debian's dovecot-lmtpd on a private config: user "ok" and user "full", whose quota
    (1 KiB) any message exceeds."""

    def start_dovecot(self):
        if os.geteuid() != 0:
            self.skipTest("Dovecot runs as root here and this test is not root")
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        if not os.path.exists(binary) or not os.path.exists("/usr/lib/dovecot/lmtp"):
            self.skipTest("Dovecot LMTP is not installed (dovecot-core, dovecot-lmtpd)")
        d = self.mkdtemp(prefix="dv-")
        os.chmod(d, 0o755)  # the mail user and Dovecot's own users walk through it
        nobody = pwd.getpwnam("nobody")
        for sub in ("run", "state", "mail"):
            os.mkdir(os.path.join(d, sub))
        os.chown(os.path.join(d, "mail"), nobody.pw_uid, nobody.pw_gid)
        with open(os.path.join(d, "users"), "w") as f:
            ids = "%d:%d" % (nobody.pw_uid, nobody.pw_gid)
            f.write("ok:{PLAIN}x:%s::%s/mail/ok::\n" % (ids, d))
            f.write("full:{PLAIN}x:%s::%s/mail/full::userdb_quota_rule=*:storage=1\n" % (ids, d))
        port = free_ports(1)[0]
        conf = os.path.join(d, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(DOVECOT_CONF.format(d=d, port=port))
        proc = subprocess.Popen([binary, "-F", "-c", conf], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        self.addCleanup(self.stop_dovecot, proc)
        sock = os.path.join(d, "run", "lmtp")
        if not wait_until(lambda: os.path.exists(sock) or proc.poll() is not None, 10):
            self.skipTest("Dovecot did not open its LMTP socket within 10 s")
        if proc.poll() is not None:
            self.skipTest("Dovecot did not start: %s"
                          % proc.stderr.read().decode("utf-8", "replace")[-500:])
        return d, sock, port

    @staticmethod
    def stop_dovecot(proc):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stderr.close()

    def dovecot_mail(self, d, user):
        new = os.path.join(d, "mail", user, "new")
        return [os.path.join(new, n) for n in os.listdir(new)] if os.path.isdir(new) else []

    def test_delivered_and_quota_bounce_over_the_socket(self):
        d, sock, _port = self.start_dovecot()
        srv = self.start_mta("unix:" + sock)
        msg = make_message("dovecot-unix", body_size=4000)
        self.submit(srv, ["ok@lmtp.example", "full@lmtp.example"], msg)
        self.assertTrue(wait_until(lambda: self.dovecot_mail(d, "ok"), 20),
                        "nothing in Dovecot's maildir of ok")
        with open(self.dovecot_mail(d, "ok")[0], "rb") as f:
            self.assertIn(b"dovecot-unix", f.read())
        self.assertBounced552(srv, "full@lmtp.example")
        self.assertEqual(self.dovecot_mail(d, "full"), [])
        self.wait_queue_empty(srv)

    def test_delivered_over_tcp(self):
        d, _sock, port = self.start_dovecot()
        srv = self.start_mta("[127.0.0.1]:%d" % port)
        self.submit(srv, ["ok@lmtp.example"], make_message("dovecot-tcp"))
        self.assertTrue(wait_until(lambda: self.dovecot_mail(d, "ok"), 20),
                        "nothing in Dovecot's maildir of ok")
        self.assertIsNotNone(srv.wait_log(r"to=<ok@lmtp\.example>, .*status=sent"))
        self.wait_queue_empty(srv)


if __name__ == "__main__":
    unittest.main()
