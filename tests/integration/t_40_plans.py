"""t_40_plans — sending plans on one node (counters in memory): the contract server's
CONTRACT_PLAN_PER_HOUR plan (451 4.7.1 naming plan, limit and a UTC time; one count per user),
recipients per hour (452 4.5.3 for the extras only), over=permanent (550 5.7.1), a plan's
max-recipients, plan_network for MX clients, max_messages_per_session (421 4.7.0, then the
connection closes), LIMITS in EHLO (RFC 9422), a short window that frees up again, and
`clearmta limits show` (--json and text)."""
import datetime
import json
import re
import subprocess
import time
import unittest

from harness import (BIN, Conn, ServerTestCase, auth_server, dot_stuff, login, make_message,
                     split_trace_headers, starttls, wait_until)

# The replies of src/reply/codes.def (REPLY_PLAN_* rows) as they read once filled in.
HOURLY_DENIED = (r"^451 4\.7\.1 Hourly limit of %d messages for plan %s reached; "
                 r"try again after (\d\d):(\d\d) UTC$")
WINDOW_DENIED = (r"^451 4\.7\.1 Limit of %d messages per %d seconds for plan %s reached; "
                 r"try again after \d\d:\d\d(:\d\d)? UTC$")
SESSION_DONE = "421 4.7.0"
SESSION_DONE_TEXT = "too many messages in this session"


class PlanCase(ServerTestCase):
    def submit(self, srv, user="alice"):
        """A submission connection inside TLS, logged in as user (password user-secret)."""
        c = self.connect(srv.sub_port)
        starttls(c)
        login(c, user, user + "-secret")
        return c

    def send(self, c, sender, rcpts, tag):
        """One whole transaction that must be accepted; returns the message sent."""
        msg = make_message(tag, sender=sender, rcpt=rcpts[0])
        c.cmd("MAIL FROM:<%s>" % sender)
        c.expect("250 2.1.0")
        for r in rcpts:
            c.cmd("RCPT TO:<%s>" % r)
            c.expect("250 2.1.5")
        c.cmd("DATA")
        c.expect("354")
        c.send(dot_stuff(msg))
        c.expect("250 2.0.0")
        return msg

    def mail(self, c, sender):
        """MAIL FROM alone; returns the reply (the caller judges it)."""
        c.cmd("MAIL FROM:<%s>" % sender)
        return c.reply()

    def assertHourlyDenied(self, reply, limit, plan):
        m = re.match(HOURLY_DENIED % (limit, plan), reply.first)
        self.assertIsNotNone(m, "expected the hourly plan reply, got %r" % reply.text)
        # The first message leaves the rolling hour about an hour from now (a slot, one minute
        # for an hour, late at most): the time named must be in that range, on the UTC clock.
        named = int(m.group(1)) * 60 + int(m.group(2))
        now = datetime.datetime.now(datetime.timezone.utc)
        now_min = now.hour * 60 + now.minute
        ahead = (named - now_min) % (24 * 60)
        self.assertTrue(58 <= ahead <= 62, "retry time %s:%s is %d min from now (%s UTC)"
                        % (m.group(1), m.group(2), ahead, now.strftime("%H:%M")))


class ContractPlan(PlanCase):
    """tests/contract-server.sh with CONTRACT_PLAN_PER_HOUR=3: the switch other tools rely on."""

    def test_fourth_message_in_the_hour_gets_451(self):
        srv = self.start_server(env={"CONTRACT_PLAN_PER_HOUR": "3"})
        c = self.submit(srv, "alice")
        for i in range(3):
            self.send(c, "alice@example.test", ["bob@example.test"], "t40-alice-%d" % i)
        r = self.mail(c, "alice@example.test")
        self.assertHourlyDenied(r, 3, "contract")
        # The session stays usable after the refusal.
        c.cmd("NOOP")
        c.expect("250")
        # A new session of the same user is on the same count.
        c2 = self.submit(srv, "alice")
        self.assertHourlyDenied(self.mail(c2, "alice@example.test"), 3, "contract")
        # bob's count is his own.
        b = self.submit(srv, "bob")
        for i in range(3):
            self.send(b, "bob@example.test", ["alice@example.test"], "t40-bob-%d" % i)
        self.assertHourlyDenied(self.mail(b, "bob@example.test"), 3, "contract")
        # The plan is the submission users': the MX port has none.
        mx = self.connect(srv)
        mx.ehlo()
        for i in range(4):
            self.send(mx, "sender@example.org", ["alice@example.test"], "t40-mx-%d" % i)
        self.assertEqual(len(srv.wait_mail("bob", 3)), 3)
        self.assertEqual(len(srv.wait_mail("alice", 7)), 7)
        # Each decision is logged with the account, the plan and the reply.
        line = srv.wait_log(r"limit: .*account=alice, plan=contract, .*count=3/3.*4\.7\.1",
                            timeout=5)
        self.assertIsNotNone(line, "no log line names alice, plan contract and 4.7.1")

    def test_limits_show_json(self):
        srv = self.start_server(env={"CONTRACT_PLAN_PER_HOUR": "3"})
        c = self.submit(srv, "alice")
        for i in range(2):
            self.send(c, "alice@example.test", ["bob@example.test"], "t40-show-%d" % i)
        p = subprocess.run([BIN, "limits", "-c", srv.conf_path, "show", "alice", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr.decode("utf-8", "replace"))
        doc = json.loads(p.stdout.decode())
        self.assertEqual((doc["account"], doc["plan"]["name"]), ("alice", "contract"), doc)
        counters = [(k["metric"], k["count"], k["limit"], k["window"]) for k in doc["counters"]]
        self.assertEqual(counters, [("messages", 2, 3, 3600)], doc)
        self.assertRegex(doc["counters"][0]["frees_at"], r"UTC$")
        # Text for people: the same counter in words.
        p = subprocess.run([BIN, "limits", "-c", srv.conf_path, "show", "alice"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr.decode("utf-8", "replace"))
        self.assertIn("2 of 3 messages", p.stdout.decode())


class PlanSettings(PlanCase):
    """Plans written in the test's own config."""

    def plan_server(self, plan, *extra):
        return auth_server(self, ["plan %s" % plan, "default_plan %s" % plan.split()[0]]
                           + list(extra))

    def test_recipients_per_hour_extras_get_452(self):
        srv = self.plan_server("rcpt recipients=5/hour")
        c = self.submit(srv)
        first = self.send(c, "alice@example.test",
                          ["alice@example.test", "bob@example.test", "postmaster@example.test"],
                          "t40-rcpt-1")
        c.cmd("MAIL FROM:<alice@example.test>")
        c.expect("250 2.1.0")
        for r in ("alice@example.test", "bob@example.test"):  # recipients 4 and 5
            c.cmd("RCPT TO:<%s>" % r)
            c.expect("250 2.1.5")
        c.cmd("RCPT TO:<postmaster@example.test>")  # the 6th in the hour
        c.expect("452 4.5.3")
        c.cmd("DATA")  # the earlier recipients stay
        c.expect("354")
        second = make_message("t40-rcpt-2", sender="alice@example.test")
        c.send(dot_stuff(second))
        c.expect("250 2.0.0")
        for user, want in (("alice", [first, second]), ("bob", [first, second]),
                           ("postmaster", [first])):
            got = [split_trace_headers(m)[2] for m in srv.wait_mail(user, len(want))]
            self.assertEqual(sorted(got), sorted(want), user)

    def test_plan_max_recipients_per_message(self):
        srv = self.plan_server("small max-recipients=2")
        c = self.submit(srv)
        c.cmd("MAIL FROM:<alice@example.test>")
        c.expect("250 2.1.0")
        for r in ("alice@example.test", "bob@example.test"):
            c.cmd("RCPT TO:<%s>" % r)
            c.expect("250 2.1.5")
        c.cmd("RCPT TO:<postmaster@example.test>")
        c.expect("452 4.5.3")
        c.cmd("RSET")
        c.expect("250")
        # Per message: the next transaction may again have two.
        self.send(c, "alice@example.test", ["alice@example.test", "bob@example.test"],
                  "t40-maxrcpt")

    def test_over_permanent_gets_550(self):
        srv = self.plan_server("strict messages=1/hour over=permanent")
        c = self.submit(srv)
        self.send(c, "alice@example.test", ["bob@example.test"], "t40-perm")
        r = self.mail(c, "alice@example.test")
        self.assertTrue(r.first.startswith("550 5.7.1"), r.text)
        self.assertIn("strict", r.text)

    def test_short_window_frees_up(self):
        srv = self.plan_server("short messages=2/5s")
        c = self.submit(srv)
        for i in range(2):
            self.send(c, "alice@example.test", ["bob@example.test"], "t40-short-%d" % i)
        r = self.mail(c, "alice@example.test")
        self.assertRegex(r.first, WINDOW_DENIED % (2, 5, "short"))

        def accepted():
            reply = self.mail(c, "alice@example.test")
            if reply.code == 250:
                return True
            self.assertTrue(reply.first.startswith("451 4.7.1"), reply.text)
            time.sleep(0.25)
            return False
        self.assertTrue(wait_until(accepted, 15, 0.05),
                        "a 5-second window did not free up within 15 s")
        c.cmd("RCPT TO:<bob@example.test>")
        c.expect("250 2.1.5")


class NetworkPlan(PlanCase):
    def test_mx_clients_of_a_network_share_its_plan(self):
        # plan_network: the MX clients of 127.0.0.0/24 are one account; 127.0.1.0/24 has none.
        srv = self.start_server(extra_config=["plan mxplan messages=2/hour",
                                              "plan_network 127.0.0.0/24 mxplan"])
        for source in ("127.0.0.1", "127.0.0.2"):
            c = Conn(srv.mx_port, source=source)
            self.addCleanup(c.close)
            c.expect("220")
            c.ehlo()
            self.send(c, "sender@example.org", ["alice@example.test"], "t40-net-" + source)
        self.assertHourlyDenied(self.mail(c, "sender@example.org"), 2, "mxplan")
        other = Conn(srv.mx_port, source="127.0.1.1")
        self.addCleanup(other.close)
        other.expect("220")
        other.ehlo()
        self.send(other, "sender@example.org", ["alice@example.test"], "t40-net-other")
        self.assertEqual(len(srv.wait_mail("alice", 3)), 3)


class SessionLimits(PlanCase):
    def test_max_messages_per_session(self):
        srv = self.start_server(extra_config=["max_messages_per_session 2"])
        c = self.connect(srv)
        ehlo = c.ehlo()
        self.assertIn("LIMITS RCPTMAX=100 MAILMAX=2", [l[4:] for l in ehlo.lines], ehlo.text)
        for i in range(2):
            self.send(c, "sender@example.org", ["alice@example.test"], "t40-sess-%d" % i)
        r = self.mail(c, "sender@example.org")
        self.assertTrue(r.first.startswith(SESSION_DONE), r.text)
        self.assertIn(SESSION_DONE_TEXT, r.text.lower())
        self.assertTrue(c.closed(), "connection left open after 421")
        self.assertEqual(len(srv.wait_mail("alice", 2)), 2)
        # A new connection may send again.
        c2 = self.connect(srv)
        c2.ehlo()
        self.send(c2, "sender@example.org", ["alice@example.test"], "t40-sess-again")

    def test_rset_does_not_reset_the_count(self):
        srv = self.start_server(extra_config=["max_messages_per_session 1"])
        c = self.connect(srv)
        c.ehlo()
        self.send(c, "sender@example.org", ["alice@example.test", "bob@example.test"],
                  "t40-one")
        c.cmd("RSET")
        c.expect("250")
        r = self.mail(c, "sender@example.org")
        self.assertTrue(r.first.startswith(SESSION_DONE), r.text)
        self.assertTrue(c.closed())

    def test_limits_without_mailmax(self):
        srv = self.start_server()
        c = self.connect(srv)
        ehlo = c.ehlo()
        keywords = [l[4:] for l in ehlo.lines]
        self.assertIn("LIMITS RCPTMAX=100", keywords, ehlo.text)


if __name__ == "__main__":
    unittest.main()
