"""t_82_http_api — the console's JSON API against a running server: /api/explain answers the
same JSON as `clearmta explain --json` (form-encoded query, '+' a space) and a whole bounce
POSTed as `clearmta explain --bounce --json` does; /api/queue lists a message deferred by a
relay that answers 451 with each recipient's state and last reply; hold and release through
the API with the session's token; /api/limits and /api/traffic (the deferral counted as an
outbound 4xx, the relay's reply among the top replies with its explanation)."""
import json
import subprocess
import unittest
import urllib.parse

from console_bounce import BOUNCE
from console_http import ConsoleCase
from harness import BIN, wait_until

WAIT = 30.0
CLI_TIMEOUT = 30.0


def cli_json_lines(*args, stdin=None):
    p = subprocess.run([BIN, "explain", "--json"] + list(args), input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=CLI_TIMEOUT)
    return [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]


class Explain(ConsoleCase):
    def test_same_json_as_the_cli(self):
        self.start_console()
        for reply in ["550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown",
                      "421 4.7.28 Our system has detected an unusual rate of mail",
                      "452 4.2.2 Mailbox full", "5.7.1",
                      "Dec  6 10:00:00 mx postfix/smtp[123]: 4F1A2: to=<bob@gmail.com>, "
                      "relay=mx.gmail.example[192.0.2.1]:25, delay=1, dsn=4.7.28, "
                      "status=deferred (host mx.gmail.example[192.0.2.1] said: 421-4.7.28 "
                      "Unusual rate of unsolicited mail (in reply to end of DATA command))"]:
            with self.subTest(reply=reply):
                r = self.get("/api/explain?" + urllib.parse.urlencode({"q": reply}))
                self.assertEqual(r.status, 200, r.text())
                self.assertEqual(r.header("Content-Type"), "application/json")
                self.assertEqual(json.loads(r.text()), cli_json_lines(reply)[0])
        # '+' is a space, %2B a plus
        r = json.loads(self.get("/api/explain?q=550+5.1.1+no+such+user").text())
        self.assertEqual((r["code"], r["enhanced"], r["text"]), (550, "5.1.1", "no such user"))
        self.assertEqual(self.get("/api/explain").status, 400)
        r = self.get("/api/explain?q=hello")
        self.assertEqual(r.status, 400)
        self.assertIn("error", json.loads(r.text()))

    def test_whole_bounce(self):
        self.start_console()
        r = self.post("/api/explain", body=BOUNCE)
        self.assertEqual(r.status, 200, r.text())
        got = json.loads(r.text())
        self.assertEqual(got["kind"], "bounce")
        want = cli_json_lines("--bounce", "-", stdin=BOUNCE.encode())
        self.assertEqual(len(got["recipients"]), 1)
        for g, w in zip(got["recipients"], want):
            g.pop("file")
            w.pop("file")
            self.assertEqual(g, w)
        rc = got["recipients"][0]
        self.assertEqual((rc["recipient"], rc["status"], rc["reason"]),
                         ("ghost@remote.example", "5.1.1", "userunknown"))
        # a reply POSTed is explained as one
        r = json.loads(self.post("/api/explain", body="451 4.7.1 try later").text())
        self.assertEqual(r["code"], 451)


class Queue(ConsoleCase):
    CHECK_SCHEDULES = True

    def test_deferred_relay_hold_release_traffic(self):
        srv, relay_port = self.start_relayed_console("451 4.7.1 Greylisted, try again later")
        qid = self.submit_remote(srv, "api-queue")

        def deferred():
            q = json.loads(self.get("/api/queue").text())
            for m in q["messages"]:
                if m["id"] == qid and m["recipients"][0]["state"] == "deferred":
                    return m
            return None
        m = wait_until(deferred, WAIT, interval=0.3)
        self.assertTrue(m, self.get("/api/queue").text())
        rc = m["recipients"][0]
        self.assertEqual(rc["address"], "carol@remote.example")
        self.assertIn("451 4.7.1", rc["last_reply"])
        self.assertTrue(rc["explanation"])

        # the same in /metrics: the queue, the deferral and the relay's reply
        m = self.metrics()
        self.assertEqual(m[("clearmta_queue_messages", ())], 1)
        self.assertGreaterEqual(m[("clearmta_queue_oldest_seconds", ())], 0)
        deferred_total = sum(v for (name, labels), v in m.items()
                             if name == "clearmta_deliveries_total"
                             and dict(labels)["status"] == "deferred")
        self.assertGreaterEqual(deferred_total, 1)
        remote = {dict(labels)["destination"]: v for (name, labels), v in m.items()
                  if name == "clearmta_remote_replies_total"
                  and dict(labels)["code"] == "451" and dict(labels)["enhanced"] == "4.7.1"}
        self.assertEqual(len(remote), 1, remote)
        self.assertIn("127.0.0.1", list(remote)[0])  # the relay host is the destination
        self.assertGreaterEqual(sum(remote.values()), 1)

        _, auth = self.session_token()
        r = self.post("/api/queue/%s/hold" % qid, headers=auth)
        self.assertEqual(r.status, 200, r.text())
        self.assertEqual(json.loads(r.text())["result"], "held")
        q = json.loads(self.get("/api/queue").text())
        self.assertEqual([x["held"] for x in q["messages"] if x["id"] == qid], [True])
        r = self.post("/api/queue/%s/release" % qid, headers=auth)
        self.assertEqual(json.loads(r.text())["result"], "released")
        q = json.loads(self.get("/api/queue").text())
        self.assertEqual([x["held"] for x in q["messages"] if x["id"] == qid], [False])
        self.assertEqual(self.post("/api/queue/%s/delete" % qid, headers=auth).status, 400)

        t = json.loads(self.get("/api/traffic").text())
        self.assertEqual(len(t["minutes"]), 60)
        self.assertGreaterEqual(sum(mm["out"][1] for mm in t["minutes"]), 1)
        self.assertGreaterEqual(sum(mm["in"][0] for mm in t["minutes"]), 1)
        top = t["top"][0]
        self.assertEqual((top["code"], top["enhanced"]), ("451", "4.7.1"))
        self.assertTrue(top["explanation"])
        r = self.post("/api/queue/%s/delete?mode=silent" % qid, headers=auth)
        self.assertEqual(json.loads(r.text())["result"], "deleted")


class Limits(ConsoleCase):
    def test_limits(self):
        self.start_console(env={"CONTRACT_PLAN_PER_HOUR": "5"})
        o = json.loads(self.get("/api/limits").text())
        self.assertEqual(o["plans"][0]["name"], "contract")
        u = json.loads(self.get("/api/limits?subject=alice").text())
        self.assertEqual(u["plan"]["name"], "contract")
        self.assertEqual(u["counters"][0]["limit"], 5)
        self.assertEqual(self.get("/api/limits?subject=a+b").status, 400)
        self.assertEqual(self.post("/api/limits").status, 405)
        self.assertEqual(self.get("/api/nothing").status, 404)


if __name__ == "__main__":
    unittest.main()
