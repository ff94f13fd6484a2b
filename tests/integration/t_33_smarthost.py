"""t_33_smarthost — the smart host (relay provider) route: `relayhost [127.0.0.1]:PORT
tls=required auth=FILE rate=N/PERIOD` against a test server that offers STARTTLS and requires
AUTH (RFC 3207, RFC 4954). Mail goes over TLS after AUTH; wrong credentials defer (the 535 is
logged); no STARTTLS with tls=required defers with 4.7.x and sends nothing; rate= paces the
sending so that no rolling window of the period holds more than N messages."""
import os
import time
import unittest

from harness import auth_server, make_message
from t_30_deliver import DeliverCase

USER, PASSWORD = "relay-user", "relay secret:42"  # a password with a space and a colon
PROVIDER = {"starttls": True, "auth": {"user": USER, "password": PASSWORD},
            "auth_required": True}


class SmartHostCase(DeliverCase):
    def start_smarthost(self, script, password=PASSWORD, options="tls=required", extra=()):
        """A test relay (script) and a server whose relayhost logs in to it with USER and
        password from a 0600 credentials file."""
        relay = self.start_relay(script)
        creds = os.path.join(self.mkdtemp(prefix="creds-"), "relay.auth")
        fd = os.open(creds, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("# smart host login\n%s:%s\n" % (USER, password))
        srv = auth_server(self, extra_config=[
            "relayhost [127.0.0.1]:%d %s auth=%s" % (relay.port, options, creds),
            "retry_first 1", "retry_max 5", "queue_lifetime 600", "delay_warning 0"]
            + list(extra))
        return srv, relay


class Login(SmartHostCase):
    def test_delivered_over_tls_after_auth(self):
        srv, relay = self.start_smarthost(PROVIDER)
        msg = make_message("smarthost-auth")
        self.submit(srv, ["carol@remote.example"], msg)
        rec = self.wait_records(relay, 1)[0]
        self.assertTrue(rec["tls"], "delivered without STARTTLS")
        self.assertEqual(rec["auth"], USER)
        self.assertEqual(rec["mail_from"], "alice@example.test")
        self.assertRelayed(rec, msg)
        self.wait_queue_empty(srv)
        self.assertNotIn(PASSWORD, srv.log(), "the password must never be logged")

    def test_wrong_credentials_defer_with_the_535_logged(self):
        srv, relay = self.start_smarthost(PROVIDER, password="not-the-password")
        self.submit(srv, ["carol@remote.example"], make_message("smarthost-535"))
        self.assertIsNotNone(srv.wait_log(r"to=<carol@remote\.example>, .*status=deferred "
                                          r"\(.*535 5\.7\.8"))
        self.assertEqual(relay.records(), [])
        self.assertTrue(srv.queue_files(), "the message must stay queued")
        self.assertEqual(srv.maildir_files("alice"), [], "a login failure must not bounce")
        self.assertNotIn("not-the-password", srv.log())

    def test_tls_required_without_starttls_defers_4_7(self):
        srv, relay = self.start_smarthost({"auth": {"user": USER, "password": PASSWORD}})
        self.submit(srv, ["carol@remote.example"], make_message("smarthost-notls"))
        self.assertIsNotNone(srv.wait_log(r"to=<carol@remote\.example>, .*dsn=4\.7\.\d+, "
                                          r"status=deferred"))
        self.assertEqual(relay.records(), [], "nothing may be sent in clear")
        self.assertTrue(srv.queue_files(), "the message must stay queued")
        self.assertEqual(srv.maildir_files("alice"), [])


class Rate(SmartHostCase):
    N, PERIOD, MESSAGES = 5, 10.0, 8
    SLACK = 3.0  # seconds: the server's clock reads MAIL a little after the agent counted it

    def test_rate_paces_the_sending(self):
        srv, relay = self.start_smarthost(PROVIDER,
                                          options="tls=required rate=%d/%ds" % (self.N, self.PERIOD))
        t0 = time.monotonic()
        for i in range(self.MESSAGES):
            self.submit(srv, ["r%d@remote.example" % i], make_message("rate-%d" % i))
        recs = self.wait_records(relay, self.MESSAGES, timeout=3 * self.PERIOD)
        elapsed = time.monotonic() - t0
        self.assertEqual(sorted(r["rcpt_to"][0] for r in recs),
                         sorted("r%d@remote.example" % i for i in range(self.MESSAGES)))
        times = sorted(r["mail_time"] for r in recs)
        # No N+1 messages within one period: message i+N starts a period after message i.
        for i in range(len(times) - self.N):
            self.assertGreaterEqual(times[i + self.N] - times[i], self.PERIOD - self.SLACK,
                                    "more than %d messages within %.0f s: %r"
                                    % (self.N, self.PERIOD, times))
        # Paced, not stopped: the first N go at once, the rest in the next period.
        self.assertLess(times[self.N - 1] - times[0], self.PERIOD - self.SLACK, times)
        self.assertLess(elapsed, 4 * self.PERIOD, "pacing took far too long")
        self.wait_queue_empty(srv)
        self.assertEqual(srv.maildir_files("alice"), [], "pacing must not bounce")


if __name__ == "__main__":
    unittest.main()
