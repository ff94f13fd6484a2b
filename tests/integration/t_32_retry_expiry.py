"""t_32_retry_expiry — the retry schedule end to end (RFC 5321 §4.5.4.1, RFC 3464): a relay that
answers 451 forever gets the sender one "delayed" report after delay_warning, and a failure
report with 4.4.7 quoting the last reply when the queue lifetime is over; a relay that answers
4xx once delivers on the retry, each recipient exactly once. Tiny schedules: retries after 1 s
doubling to 2 s, delay warning after 4 s, lifetime 60 s (the smallest the config allows)."""
import re
import time
import unittest

from harness import auth_server, make_message, wait_until
from t_30_deliver import DeliverCase

LIFETIME = 60
WARNING = 4
FOREVER = {"rcpt": "451 4.3.0 Try again later"}


class RetryCase(DeliverCase):
    def start_relayed(self, script, delay_warning=0):
        """A test relay (script) and a server sending all remote mail to it on the schedule."""
        relay = self.start_relay(script)
        srv = auth_server(self, extra_config=[
            "relayhost [127.0.0.1]:%d" % relay.port, "retry_first 1", "retry_max 2",
            "queue_lifetime %d" % LIFETIME, "delay_warning %d" % delay_warning])
        return srv, relay

    def one_report(self, srv, timeout):
        """The one report in alice's Maildir: (text, its one recipient's fields)."""
        report = self.wait_reports(srv, count=1, timeout=timeout)[0]
        text, _msg, rcpts, _orig = self.report_parts(report)
        self.assertEqual(len(rcpts), 1, rcpts)
        self.assertRegex(rcpts[0].get("final-recipient", ""),
                         r"(?i)^rfc822;\s*carol@remote\.example$")
        self.assertIn("carol@remote.example", text)
        return text, rcpts[0]


class Expiry(RetryCase):
    def test_delay_warning_after_delay_warning_seconds(self):
        srv, _relay = self.start_relayed(FOREVER, delay_warning=WARNING)
        t0 = time.monotonic()
        self.submit(srv, ["carol@remote.example"], make_message("retry-warn"))
        _text, f = self.one_report(srv, timeout=30)
        self.assertGreaterEqual(time.monotonic() - t0, WARNING - 1, "warned too early")
        self.assertEqual(f.get("action", "").lower(), "delayed", f)
        self.assertRegex(f.get("status", ""), r"^4\.\d{1,3}\.\d{1,3}$")
        self.assertRegex(f.get("diagnostic-code", ""), r"(?i)^smtp;\s*451 4\.3\.0 Try again")
        self.assertTrue(srv.queue_files(), "a delay warning must not end delivery")
        time.sleep(2 * WARNING)
        self.assertEqual(len(srv.maildir_files("alice")), 1, "one warning only")

    def test_expiry_bounces_with_4_4_7(self):
        srv, relay = self.start_relayed(FOREVER)
        t0 = time.monotonic()
        self.submit(srv, ["carol@remote.example"], make_message("retry-expire"))
        _text, f = self.one_report(srv, timeout=LIFETIME + 40)
        self.assertGreaterEqual(time.monotonic() - t0, LIFETIME - 2, "bounced before expiry")
        self.assertEqual(f.get("action", "").lower(), "failed", f)
        self.assertEqual(f.get("status"), "4.4.7")
        self.assertRegex(f.get("diagnostic-code", ""), r"(?i)^smtp;\s*451 4\.3\.0")
        self.assertIsNotNone(srv.wait_log(r"to=<carol@remote\.example>, .*dsn=4\.4\.7, "
                                          r"status=bounced"))
        self.wait_queue_empty(srv)
        # Retried on the schedule (1 s doubling to 2 s) the whole time, not given up early.
        attempts = len(re.findall(r"to=<carol@remote\.example>, .*attempt=", srv.log()))
        self.assertGreaterEqual(attempts, 10, "too few attempts in %d s" % LIFETIME)
        self.assertEqual(relay.records(), [])


class Retry(RetryCase):
    def test_451_at_end_of_data_then_250_delivers_exactly_once(self):
        srv, relay = self.start_relayed({"sessions": [{"data_end": "451 4.3.0 Local problem"},
                                                      {}]})
        msg = make_message("retry-once")
        self.submit(srv, ["carol@remote.example", "dave@remote.example"], msg)
        self.assertIsNotNone(srv.wait_log(r"to=<carol@remote\.example>, .*attempt=1, "
                                          r"dsn=4\.3\.0, status=deferred \(451 4\.3\.0"))
        ok = wait_until(lambda: [r for r in relay.records() if r["reply"].startswith("250")],
                        30)
        self.assertTrue(ok, "not delivered on retry: %r" % relay.records())
        self.wait_queue_empty(srv)
        time.sleep(3)  # a duplicate would come within the retry schedule
        done = [r for r in relay.records() if r["reply"].startswith("250")]
        self.assertEqual(len(done), 1, done)
        self.assertEqual(sorted(done[0]["rcpt_to"]),
                         ["carol@remote.example", "dave@remote.example"])
        self.assertRelayed(done[0], msg)
        self.assertEqual(srv.maildir_files("alice"), [], "a deferral must not bounce")

    def test_recipient_deferred_once_is_retried_alone(self):
        srv, relay = self.start_relayed({"sessions": [
            {"rcpt_by_address": {"dave@remote.example": "451 4.2.0 Greylisted"}}, {}]})
        msg = make_message("retry-alone")
        self.submit(srv, ["carol@remote.example", "dave@remote.example"], msg)
        recs = self.wait_records(relay, 2)
        self.wait_queue_empty(srv)
        time.sleep(3)
        recs = relay.records()
        self.assertEqual([r["rcpt_to"] for r in recs],
                         [["carol@remote.example"], ["dave@remote.example"]],
                         "each recipient exactly once, the deferred one on the retry")
        for r in recs:
            self.assertRelayed(r, msg)
        self.assertIsNotNone(srv.wait_log(r"to=<dave@remote\.example>, .*attempt=2, "
                                          r"dsn=2\.0\.0, status=sent"))
        self.assertEqual(srv.maildir_files("alice"), [])


if __name__ == "__main__":
    unittest.main()
