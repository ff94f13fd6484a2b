"""t_83_console_browser — the console in headless Chromium driven by Selenium (Debian chromium,
chromium-driver, python3-selenium): the explain box with a reply and with a whole bounce, the
queue table after a deferred relay, a hold/release round trip from its buttons, the traffic
charts drawn after traffic, no console errors, no request leaving loopback (Chromium's
performance log), no page wider than a phone's screen. Saves a screenshot and prints its path.
Skipped with the reason when Chromium, its driver or Selenium is missing."""
import json
import os
import shutil
import sys
import tempfile
import unittest

from console_bounce import BOUNCE
from console_http import ConsoleCase
from harness import wait_until

try:
    from selenium import webdriver
except ImportError:  # Debian's package, when python3 is not Debian's own interpreter
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from selenium import webdriver
    except ImportError:
        webdriver = None

WAIT = 30.0
CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")


def browser(profile):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-first-run", "--disable-background-networking", "--disable-sync",
              "--disable-component-update", "--disable-default-apps",
              "--window-size=1200,1000", "--user-data-dir=" + profile]:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    from selenium.webdriver.chrome.service import Service
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


@unittest.skipIf(webdriver is None or not CHROMIUM or not DRIVER,
                 "chromium, chromium-driver or python3-selenium missing (scripts/deps.sh test)")
class Console(ConsoleCase):
    def setUp(self):
        self.driver = browser(self.mkdtemp(prefix="chromium-"))
        self.addCleanup(self.driver.quit)

    def wait(self, pred, what):
        ok = wait_until(lambda: self._try(pred), WAIT, interval=0.2)
        self.assertTrue(ok, "%s never happened; page:\n%s" % (what, self.driver.find_element(
            "css selector", "main").text[:3000]))
        return ok

    @staticmethod
    def _try(pred):
        try:
            return pred()
        except Exception:  # the element may be replaced while we read it
            return None

    def screenshot(self, page):
        """Saved where it outlives the test ($CONSOLE_SCREENSHOT_DIR, else the temp dir)."""
        shot = os.path.join(os.environ.get("CONSOLE_SCREENSHOT_DIR") or tempfile.gettempdir(),
                            "clearmta-console-%s.png" % page)
        self.driver.save_screenshot(shot)
        sys.stderr.write("\nscreenshot: %s\n" % shot)

    def text(self, css):
        return self.driver.find_element("css selector", css).text

    def test_console(self):
        srv, _ = self.start_relayed_console("451 4.7.1 Greylisted, try again later")
        qid = self.submit_remote(srv, "browser")
        d = self.driver
        origin = "http://127.0.0.1:%d" % self.http_port
        d.get(origin + "/")

        # explain: a reply
        self.assertEqual(self.text("#explain-result"), "")
        box = d.find_element("css selector", "#explain-input")
        box.send_keys("550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown")
        d.find_element("css selector", "#explain-submit").click()
        self.wait(lambda: "Retry: no" in self.text("#explain-result"), "the explanation")
        result = self.text("#explain-result")
        self.assertIn("What to do", result)
        self.assertIn("do not retry unchanged", result)
        self.assertEqual(self.text("#explain-result .code"), "550")
        self.assertEqual(self.text("#explain-result .enhanced"), "5.1.1")

        # explain: a whole bounce
        d.execute_script("arguments[0].value = arguments[1]", box, BOUNCE)
        d.find_element("css selector", "#explain-submit").click()
        self.wait(lambda: "ghost@remote.example" in self.text("#explain-result"), "the bounce")
        self.assertIn("userunknown", self.text("#explain-result"))
        self.screenshot("explain")

        # the queue after a deferred relay
        d.find_element("css selector", "#nav-queue").click()
        row = "#queue-table tr[data-id='%s']" % qid

        def deferred_row():
            d.find_element("css selector", "#queue-refresh").click()
            t = self.text(row)
            return "carol@remote.example" in t and "deferred" in t and "451" in t
        self.wait(deferred_row, "the deferred recipient in the queue table")

        # hold and release from the buttons
        d.find_element("css selector", row + " button[data-action='hold']").click()
        self.wait(lambda: d.find_element("css selector", row).get_attribute("data-held") == "yes",
                  "the message held")
        d.find_element("css selector", row + " button[data-action='release']").click()
        self.wait(lambda: d.find_element("css selector", row).get_attribute("data-held") == "no",
                  "the message released")
        q = json.loads(self.get("/api/queue").text())
        self.assertEqual([m["held"] for m in q["messages"] if m["id"] == qid], [False])

        # the charts, after that traffic
        d.find_element("css selector", "#nav-traffic").click()
        self.wait(lambda: d.find_elements("css selector", "#chart-in rect") and
                  d.find_elements("css selector", "#chart-out rect.c4"), "the charts drawn")
        self.assertIn("451", self.text("#top-replies"))
        self.screenshot("traffic")

        # readable on a phone: nothing wider than the screen
        d.set_window_size(390, 844)
        d.find_element("css selector", "#nav-explain").click()
        self.assertLessEqual(d.execute_script("return document.documentElement.scrollWidth"),
                             d.execute_script("return window.innerWidth") + 1)

        # no console errors, no request to any other host
        errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
        self.assertEqual(errors, [])
        urls = []
        for entry in d.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg["method"] == "Network.requestWillBeSent":
                url = msg["params"]["request"]["url"]
                if url.split(":", 1)[0] in ("http", "https", "ws", "wss", "ftp"):
                    urls.append(url)  # the browser's own chrome:// pages are no network
        self.assertTrue(urls)
        self.assertEqual([u for u in urls if not u.startswith(origin + "/")], [])


if __name__ == "__main__":
    unittest.main()
