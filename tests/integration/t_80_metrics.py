"""t_80_metrics — GET /metrics of a running server: the Prometheus text format 0.0.4 (its
Content-Type, # HELP and # TYPE with the full names, `promtool check metrics` from Debian's
prometheus package), and exact counter values after a scripted SMTP session: one 550 5.1.1,
one message accepted, each reply of the dialogue counted once, one DATA-to-reply observation,
the local delivery; under soft_bounce the reply as sent (450 4.1.1); the connection gauge
while a session is open."""
import shutil
import subprocess
import unittest

from console_http import ConsoleCase, parse_metrics
from harness import free_ports

PROMTOOL_TIMEOUT = 30.0


def replies(m):
    """{(code, enhanced): value} of clearmta_smtp_replies_total."""
    return {(dict(k[1])["code"], dict(k[1])["enhanced"]): v for k, v in m.items()
            if k[0] == "clearmta_smtp_replies_total"}


def value(m, name, **labels):
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


class Metrics(ConsoleCase):
    def test_format_and_promtool(self):
        srv = self.start_console()
        self.session_with_one_unknown(srv)
        r = self.get("/metrics")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        text = r.text()
        for name, kind in [("clearmta_smtp_replies_total", "counter"),
                           ("clearmta_messages_accepted_total", "counter"),
                           ("clearmta_deliveries_total", "counter"),
                           ("clearmta_remote_replies_total", "counter"),
                           ("clearmta_queue_messages", "gauge"),
                           ("clearmta_queue_oldest_seconds", "gauge"),
                           ("clearmta_destination_concurrency", "gauge"),
                           ("clearmta_plan_messages_total", "counter"),
                           ("clearmta_limit_refusals_total", "counter"),
                           ("clearmta_local_deliveries_total", "counter"),
                           ("clearmta_connections", "gauge"),
                           ("clearmta_smtp_data_reply_seconds", "histogram")]:
            self.assertIn("# TYPE %s %s\n" % (name, kind), text)
            self.assertRegex(text, r"# HELP %s \S" % name)
        parse_metrics(text)  # every other line is a sample
        promtool = shutil.which("promtool")
        if not promtool:
            raise unittest.SkipTest("promtool missing (Debian prometheus, scripts/deps.sh test)")
        p = subprocess.run([promtool, "check", "metrics"], input=r.body, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=PROMTOOL_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stdout.decode("utf-8", "replace") + text)

    def test_exact_counts_after_a_session(self):
        srv = self.start_console()
        before = self.metrics()  # the start-up probe's 220 and 221 are in here already
        self.session_with_one_unknown(srv)
        after = self.metrics()
        grown = {k: v - replies(before).get(k, 0.0) for k, v in replies(after).items()
                 if v != replies(before).get(k, 0.0)}
        self.assertEqual(grown, {("220", ""): 1, ("250", ""): 1, ("250", "2.1.0"): 1,
                                 ("550", "5.1.1"): 1, ("250", "2.1.5"): 1, ("354", ""): 1,
                                 ("250", "2.0.0"): 1, ("221", "2.0.0"): 1})
        self.assertEqual(replies(after)[("550", "5.1.1")], 1)
        self.assertEqual(value(after, "clearmta_messages_accepted_total"), 1)
        self.assertEqual(value(after, "clearmta_smtp_data_reply_seconds_count"), 1)
        self.assertEqual(value(after, "clearmta_smtp_data_reply_seconds_bucket", le="+Inf"), 1)
        self.assertGreater(value(after, "clearmta_smtp_data_reply_seconds_sum"), 0)
        self.assertEqual(value(after, "clearmta_limit_refusals_total", limit="GREYLISTED"), 0)
        # alice's copy reaches her Maildir: counted by the store's local delivery
        srv.wait_mail("alice", 1)
        m = self.metrics()
        self.assertEqual(value(m, "clearmta_local_deliveries_total", status="sent"), 1)
        self.assertEqual(value(m, "clearmta_local_deliveries_total", status="deferred"), 0)

    def test_soft_bounce_counts_what_was_sent(self):
        port = free_ports(1)[0]
        self.http_port = port
        srv = self.start_server(extra_config=["listen http 127.0.0.1:%d" % port,
                                              "soft_bounce yes"])
        c = self.connect(srv)
        c.cmd("EHLO client.example")
        c.expect("250")
        c.cmd("MAIL FROM:<sender@example.org>")
        c.expect("250")
        c.cmd("RCPT TO:<nobody@example.test>")
        c.expect("450 4.1.1")  # 550 5.1.1 turned temporary
        m = replies(self.metrics())
        self.assertEqual(m.get(("450", "4.1.1")), 1)
        self.assertNotIn(("550", "5.1.1"), m)

    def test_connection_gauge(self):
        srv = self.start_console()
        c = self.connect(srv)
        c2 = self.connect(srv.sub_port)
        m = self.metrics()
        self.assertEqual(value(m, "clearmta_connections", listener="mx:%d" % srv.mx_port), 1)
        self.assertEqual(value(m, "clearmta_connections",
                               listener="submission:%d" % srv.sub_port), 1)
        c.cmd("QUIT")
        c.expect("221")
        c2.cmd("QUIT")
        c2.expect("221")
        self.assertTrue(c.closed() and c2.closed())
        m = self.metrics()
        self.assertEqual(value(m, "clearmta_connections", listener="mx:%d" % srv.mx_port), 0)


if __name__ == "__main__":
    unittest.main()
