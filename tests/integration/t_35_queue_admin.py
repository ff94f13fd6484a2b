"""t_35_queue_admin — `clearmta queue …` against a running contract server through its control
socket: a message to an unreachable relay is listed as deferred with its attempts and the
explanation of its last failure (text and --json), hold keeps a flush from delivering, release
and flush deliver, delete --bounce sends the sender a DSN and --silent does not, errors and
usage have their exit status, and with no server running the CLI says so and exits 1."""
import email
import email.policy
import json
import os
import re
import subprocess
import sys
import time
import unittest

from harness import (BIN, ServerTestCase, free_ports, login, make_message, send_transaction,
                     starttls, wait_until)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from smtp_test_server import SMTPTestServer  # noqa: E402

WAIT = 30.0        # fast retry: attempts 2 s, 4 s, ... apart
CLI_TIMEOUT = 30.0
QUIET = 3.0        # how long "nothing was delivered" is watched


class QueueAdminCase(ServerTestCase):
    CHECK_SCHEDULES = True

    def start_relayed(self, relay_port):
        return self.start_server(env={"CONTRACT_RELAY": "127.0.0.1:%d" % relay_port,
                                      "CONTRACT_FAST_RETRY": "1"})

    def start_relay(self, port, script=None):
        rec = os.path.join(self.mkdtemp(prefix="smtp-test-"), "received.jsonl")
        relay = SMTPTestServer(script or {}, rec, port=port).start()
        self.addCleanup(relay.stop)
        return relay

    def cli(self, srv, *args, conf=None):
        """Runs `clearmta ARGS` with -c after the subcommand; returns (status, stdout, stderr)."""
        conf = conf or os.path.join(srv.data_dir, "clearmta.conf")
        argv = [BIN, args[0], "-c", conf] + list(args[1:])
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=CLI_TIMEOUT)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8",
                                                                                  "replace")

    def queue_json(self, srv, *args):
        rc, out, err = self.cli(srv, "queue", *args, "--json")
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def submit(self, srv, rcpts, tag):
        c = self.connect(srv.sub_port)
        starttls(c)
        login(c)
        r = send_transaction(c, "alice@example.test", rcpts, make_message(tag))
        self.assertTrue(r.text.startswith("250"), r.text)
        c.cmd("QUIT")
        m = re.search(r"queued as ([0-9A-F]{16})\b", r.text)
        self.assertIsNotNone(m, r.text)
        return m.group(1)

    def wait_deferred(self, srv, qid):
        """Waits until qid's first recipient was tried and deferred; returns its JSON view."""
        def deferred():
            rc, out, _err = self.cli(srv, "queue", "show", qid, "--json")
            if rc != 0:
                return None
            rcpt = json.loads(out)["message"]["recipients"][0]
            return rcpt if rcpt["state"] == "deferred" and rcpt["attempts"] >= 1 else None
        rcpt = wait_until(deferred, WAIT, interval=0.3)
        self.assertTrue(rcpt, "%s never listed as deferred:\n%s"
                        % (qid, self.cli(srv, "queue", "list")[1]))
        return rcpt


class ListHoldRelease(QueueAdminCase):
    def test_deferred_listing_then_hold_release_flush(self):
        relay_port = free_ports(1)[0]  # nothing listens there yet: connection refused
        srv = self.start_relayed(relay_port)
        qid = self.submit(srv, ["carol@remote.example"], "qadmin-list")
        rcpt = self.wait_deferred(srv, qid)

        # --json: stable fields, the failure and its explanation
        self.assertEqual(rcpt["address"], "carol@remote.example")
        self.assertTrue(rcpt["last_reply"], rcpt)
        self.assertTrue(rcpt["explanation"], rcpt)
        self.assertTrue(rcpt["reason"], rcpt)
        self.assertIsInstance(rcpt["next_try"], int)
        listing = self.queue_json(srv, "list")
        self.assertEqual(listing["command"], "list")
        self.assertEqual(listing["count"], 1)
        msg = listing["messages"][0]
        self.assertEqual(msg["id"], qid)
        self.assertEqual(msg["sender"], "alice@example.test")
        self.assertGreater(msg["size"], 0)
        self.assertFalse(msg["held"])

        # text: one block per message, recipient state, attempts, next try, reply, why
        rc, out, err = self.cli(srv, "queue", "list")
        self.assertEqual(rc, 0, err)
        self.assertIn(qid, out)
        self.assertIn("from <alice@example.test>", out)
        self.assertRegex(out, r"to <carol@remote\.example>  deferred, \d+ attempts?, next try")
        self.assertIn("last reply: ", out)
        self.assertRegex(out, r"why: [a-z]+: ")
        rc, out, err = self.cli(srv, "queue", "show", qid)
        self.assertEqual(rc, 0, err)
        self.assertIn("what to do: ", out)

        # hold: a flush does not deliver, even with a relay listening now
        rc, out, err = self.cli(srv, "queue", "hold", qid)
        self.assertEqual((rc, out), (0, "%s held\n" % qid), err)
        relay = self.start_relay(relay_port)
        rc, out, err = self.cli(srv, "queue", "flush")
        self.assertEqual(rc, 0, err)
        time.sleep(QUIET)
        self.assertEqual(relay.records(), [])
        self.assertTrue(self.queue_json(srv, "show", qid)["message"]["held"])
        rc, out, _err = self.cli(srv, "queue", "list")
        self.assertIn("HELD", out)

        # release and flush: delivered at once, the queue empties. Its retry time has passed,
        # so the release alone may already have sent it: then the flush finds nothing.
        rc, out, err = self.cli(srv, "queue", "release", qid)
        self.assertEqual((rc, out), (0, "%s released\n" % qid), err)
        rc, out, err = self.cli(srv, "queue", "flush", qid, "--json")
        if rc == 0:
            self.assertEqual(json.loads(out), {"command": "flush", "target": qid,
                                               "scheduled": 1})
        else:
            self.assertEqual((rc, err), (1, "no message %s in the queue\n" % qid))
            self.assertTrue(relay.records(), "flush found nothing, yet nothing was delivered")
        self.assertTrue(wait_until(lambda: relay.records(), WAIT), "not delivered after release")
        self.assertEqual(relay.records()[0]["rcpt_to"], ["carol@remote.example"])
        self.assertTrue(wait_until(lambda: self.queue_json(srv, "list")["count"] == 0, WAIT))
        rc, out, err = self.cli(srv, "queue", "list")
        self.assertEqual((rc, out), (0, "the queue is empty\n"), err)

        # status: totals and the destination learned from the refused connections
        status = self.queue_json(srv, "status")
        self.assertEqual(status["queue"]["messages"], 0)
        self.assertIsInstance(status["destinations"], list)
        for d in status["destinations"]:
            self.assertTrue({"name", "concurrency", "open", "backoff_until",
                             "messages_per_connection"} <= set(d), d)
        rc, out, err = self.cli(srv, "queue", "status")
        self.assertEqual(rc, 0, err)
        self.assertIn("destinations:", out)


class Delete(QueueAdminCase):
    def test_delete_bounce_notifies_and_silent_does_not(self):
        relay_port = free_ports(1)[0]
        self.start_relay(relay_port, {"rcpt_by_address": {
            "dave@remote.example": "450 4.2.1 Mailbox busy, try again later"}})
        srv = self.start_relayed(relay_port)
        bounced = self.submit(srv, ["dave@remote.example"], "qadmin-bounce")
        silent = self.submit(srv, ["dave@remote.example"], "qadmin-silent")
        rcpt = self.wait_deferred(srv, bounced)
        self.assertIn("450 4.2.1", rcpt["last_reply"])
        self.assertEqual(rcpt["status"], "4.2.1")
        self.wait_deferred(srv, silent)
        flushed = self.queue_json(srv, "flush", "remote.example")
        self.assertEqual((flushed["command"], flushed["target"]), ("flush", "remote.example"))
        self.assertIn(flushed["scheduled"], (1, 2))  # one may be in flight right now
        rc, _out, err = self.cli(srv, "queue", "flush", "nowhere.example")
        self.assertEqual((rc, err), (1, "no message for domain nowhere.example in the queue\n"))

        rc, out, err = self.cli(srv, "queue", "delete", bounced)
        self.assertEqual(rc, 2)
        self.assertIn("--bounce", err)
        self.assertIn("--silent", err)
        rc, _out, err = self.cli(srv, "queue", "delete", bounced, "--bounce", "--silent")
        self.assertEqual(rc, 2, err)

        rc, out, err = self.cli(srv, "queue", "delete", silent, "--silent")
        self.assertEqual(rc, 0, err)
        self.assertIn("deleted", out)
        deleted = self.queue_json(srv, "delete", bounced, "--bounce")
        self.assertEqual(deleted, {"command": "delete", "id": bounced, "result": "deleted",
                                   "bounce": True})

        raw = srv.wait_mail("alice", 1, timeout=WAIT)[0]
        report = email.message_from_bytes(raw, policy=email.policy.compat32)
        self.assertEqual(report.get_content_type(), "multipart/report")
        fields = "\n".join(str(p) for p in report.get_payload()[1].get_payload())
        self.assertRegex(fields, r"(?i)Final-Recipient: rfc822;\s*dave@remote\.example")
        self.assertRegex(fields, r"(?i)Action: failed")
        time.sleep(QUIET)
        self.assertEqual(len(srv.mailbox("alice")), 1, "the silent delete sent a notice")
        self.assertEqual(self.queue_json(srv, "list")["count"], 0)

        rc, out, err = self.cli(srv, "queue", "delete", bounced, "--bounce")
        self.assertEqual(rc, 1)
        self.assertEqual(err, "no message %s in the queue\n" % bounced)
        for sub in (["show", "0000000000000000"], ["hold", "0000000000000000"],
                    ["release", "0000000000000000"], ["flush", "0000000000000000"]):
            rc, out, err = self.cli(srv, "queue", *sub)
            self.assertEqual(rc, 1, sub)
            self.assertIn("no message 0000000000000000 in the queue", err)


class Usage(QueueAdminCase):
    def test_usage_errors(self):
        srv = self.start_server()
        for args in (["queue"], ["queue", "frob"], ["queue", "show"], ["queue", "list", "x"]):
            rc, out, err = self.cli(srv, *args)
            self.assertEqual(rc, 2, args)
            self.assertIn("usage: clearmta queue", err)
            self.assertEqual(out, "")
        rc, out, err = self.cli(srv, "queue", "list")
        self.assertEqual((rc, out), (0, "the queue is empty\n"), err)

    def test_socket_left_by_a_crash_is_replaced(self):
        srv = self.start_server()
        sock = os.path.join(srv.queue_dir(), "control.sock")
        self.assertEqual(os.stat(sock).st_mode & 0o777, 0o600)
        srv.kill9()
        self.assertTrue(os.path.exists(sock))  # nobody listens on it now
        rc, _out, err = self.cli(srv, "queue", "list")
        self.assertEqual(rc, 1)
        self.assertIn("no clearmta server is running", err)
        self.restart_server(srv)
        rc, out, err = self.cli(srv, "queue", "list")
        self.assertEqual((rc, out), (0, "the queue is empty\n"), err)
        self.finish_server(srv)
        self.assertFalse(os.path.exists(sock), "a clean stop removes the socket")

    def test_limits_is_forwarded(self):
        srv = self.start_server()
        rc, out, err = self.cli(srv, "limits", "show", "--json")
        if "unknown command 'limits'" in err:
            self.skipTest("the server does not answer 'limits' yet")
        self.assertEqual(rc, 0, err)
        json.loads(out)

    def test_no_server_running(self):
        data = self.mkdtemp()
        conf = os.path.join(data, "clearmta.conf")
        with open(conf, "w") as f:
            f.write("data_dir %s\n" % data)
        for args in (["queue", "list"], ["limits", "show"]):
            p = subprocess.run([BIN, args[0], "-c", conf] + args[1:], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=CLI_TIMEOUT)
            self.assertEqual(p.returncode, 1)
            self.assertEqual(p.stdout, b"")
            self.assertIn(b"no clearmta server is running (no control socket at %s/queue/"
                          b"control.sock)" % data.encode(), p.stderr)


if __name__ == "__main__":
    unittest.main()
