"""t_84_prometheus — a real Prometheus (Debian's prometheus package) scrapes a running server's
/metrics: the target is up with no scrape error, and a query returns the count of messages the
server accepted. Skipped, saying why, when the prometheus binary is missing or cannot start."""
import json
import os
import shutil
import signal
import subprocess
import unittest
import urllib.parse
import urllib.request

from console_http import ConsoleCase
from harness import free_ports, wait_until

PROMETHEUS = shutil.which("prometheus")
WAIT = 60.0
STOP_TIMEOUT = 10.0


class Scrape(ConsoleCase):
    def query(self, port, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
            return json.loads(r.read().decode())

    @unittest.skipIf(not PROMETHEUS, "prometheus missing (Debian prometheus, scripts/deps.sh test)")
    def test_prometheus_scrapes(self):
        srv = self.start_console()
        self.session_with_one_unknown(srv)
        work = self.mkdtemp(prefix="prometheus-")
        prom_port = free_ports(1)[0]
        conf = os.path.join(work, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: clearmta\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % self.http_port)
        log = open(os.path.join(work, "prometheus.log"), "wb")
        proc = subprocess.Popen([PROMETHEUS, "--config.file=" + conf,
                                 "--storage.tsdb.path=" + os.path.join(work, "data"),
                                 "--web.listen-address=127.0.0.1:%d" % prom_port],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=work)
        log.close()

        def stop():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.addCleanup(stop)

        def ready():
            if proc.poll() is not None:
                return "exited"
            try:
                return self.query(prom_port, "/api/v1/status/buildinfo")["status"] == "success"
            except OSError:
                return None
        state = wait_until(ready, WAIT, interval=0.5)
        if state != True:  # noqa: E712 (a string says why)
            with open(os.path.join(work, "prometheus.log"), "rb") as f:
                tail = f.read()[-2000:].decode("utf-8", "replace")
            raise unittest.SkipTest("prometheus cannot run here (%s): %s" % (state, tail))

        def scraped():
            t = self.query(prom_port, "/api/v1/targets")["data"]["activeTargets"]
            return t and t[0]["health"] == "up" and t[0]

        target = wait_until(scraped, WAIT, interval=0.5)
        self.assertTrue(target, self.query(prom_port, "/api/v1/targets"))
        self.assertEqual(target["lastError"], "")
        q = urllib.parse.urlencode({"query": "clearmta_messages_accepted_total"})
        result = self.query(prom_port, "/api/v1/query?" + q)["data"]["result"]
        self.assertEqual([r["value"][1] for r in result], ["1"])
        q = urllib.parse.urlencode({"query": 'clearmta_smtp_replies_total{code="550"}'})
        result = self.query(prom_port, "/api/v1/query?" + q)["data"]["result"]
        self.assertEqual([(r["metric"]["enhanced"], r["value"][1]) for r in result],
                         [("5.1.1", "1")])


if __name__ == "__main__":
    unittest.main()
