"""t_41_redis_fleet — counters shared through Redis (tests/redis-server.sh on a loopback port):
two contract servers (CONTRACT_REDIS, CONTRACT_PLAN_PER_HOUR=50) accept exactly 50 of 60
messages together and share greylisting; Redis stopped or frozen mid-run → fail=open accepts
and logs it, fail=closed answers 451 4.7.1 "cannot be checked", both without hanging; counting
resumes once Redis is back. Every redis-server started here is stopped in every path (cleanups)."""
import os
import shutil
import signal
import subprocess
import time
import unittest

from harness import (REPO, ClientThread, ServerTestCase, auth_server, dot_stuff, free_ports,
                     login, make_message, starttls, wait_until)

REDIS_SCRIPT = os.path.join(REPO, "tests", "redis-server.sh")
PLAN_DENIED = r"^451 4\.7\.1 Hourly limit of %d messages for plan contract reached"
UNCHECKED = ("451 4.7.1", "cannot be checked")
# Bound on any reply while Redis is gone: the counters' timeout (200 ms by default) plus slack
# for a loaded machine. A hang would show as the harness's 10 s reply timeout.
NO_HANG = 5.0


class Redis:
    """One redis-server started through tests/redis-server.sh (pid file in its dir)."""

    def __init__(self, case):
        self.port = free_ports(1)[0]
        self.dir = case.mkdtemp("clearmta-redis-")
        self.address = "127.0.0.1:%d" % self.port
        case.addCleanup(self.stop)  # before starting: a half-started server is stopped too
        self.start()

    def script(self, *args):
        subprocess.run(["sh", REDIS_SCRIPT] + list(args), check=True, timeout=30,
                       stdout=subprocess.DEVNULL)

    def start(self):
        self.script("start", str(self.port), self.dir)

    def stop(self):
        self.resume()  # a frozen server would only die at SIGKILL
        self.script("stop", self.dir)

    def pid(self):
        """The pid of the pid file while it is still this redis-server (pids get reused)."""
        try:
            with open(os.path.join(self.dir, "redis.pid")) as f:
                pid = int(f.read().strip())
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                return pid if b"redis-server" in f.read() else None
        except (OSError, ValueError):
            return None

    def kill9(self):
        os.kill(self.pid(), signal.SIGKILL)

    def freeze(self):
        """SIGSTOP: the port still accepts and the connection stays, but nothing answers."""
        os.kill(self.pid(), signal.SIGSTOP)

    def resume(self):
        pid = self.pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def keys(self):
        out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--scan"],
                             stdout=subprocess.PIPE, timeout=10).stdout
        return out.decode().split()


class FleetCase(ServerTestCase):
    def setUp(self):
        if not shutil.which("redis-server"):
            self.fail("redis-server is not installed (scripts/deps.sh test installs it)")

    def submit(self, srv, user="alice"):
        c = self.connect(srv.sub_port)
        starttls(c)
        login(c, user, user + "-secret")
        return c

    def try_mail(self, c, sender="alice@example.test"):
        """MAIL FROM, timed; a 250 is followed by RSET (the count is taken at MAIL)."""
        started = time.monotonic()
        c.cmd("MAIL FROM:<%s>" % sender)
        r = c.reply()
        took = time.monotonic() - started
        if r.code == 250:
            c.cmd("RSET")
            c.expect("250")
        return r, took

    def send_or_refused(self, c, tag):
        """A whole transaction; returns None when delivered, else the MAIL reply."""
        c.cmd("MAIL FROM:<alice@example.test>")
        r = c.reply()
        if r.code != 250:
            return r
        c.cmd("RCPT TO:<bob@example.test>")
        c.expect("250 2.1.5")
        c.cmd("DATA")
        c.expect("354")
        c.send(dot_stuff(make_message(tag, sender="alice@example.test", rcpt="bob@example.test")))
        c.expect("250 2.0.0")
        return None

    def contract_node(self, redis, per_hour):
        return self.start_server(env={"CONTRACT_PLAN_PER_HOUR": str(per_hour),
                                      "CONTRACT_REDIS": redis.address})


class Fleet(FleetCase):
    def test_two_nodes_share_one_hourly_limit(self):
        # 30 messages through each node, two sessions per node sending at the same time: the
        # count is atomic across the fleet, so exactly 50 are accepted and 10 refused.
        redis = Redis(self)
        nodes = [self.contract_node(redis, 50) for _ in range(2)]
        refused = [[] for _ in range(4)]
        workers = []
        for w in range(4):
            c = self.submit(nodes[w % 2])
            workers.append(ClientThread(self.send_many, c, 15, "t41-%d" % w, refused[w]))
        for t in workers:
            t.start()
        for t in workers:
            t.join(120)
            self.assertFalse(t.is_alive(), "a sender is stuck")
            if t.error:
                raise t.error
        replies = [r for rs in refused for r in rs]
        self.assertEqual(len(replies), 10, [r.first for r in replies])
        for r in replies:
            self.assertRegex(r.first, PLAN_DENIED % 50)
        for k, node in enumerate(nodes):
            want = 30 - len(refused[k]) - len(refused[k + 2])
            self.assertEqual(len(node.wait_mail("bob", want)), want, "node %d" % k)
        self.assertTrue(any(k.startswith("clearmta:") for k in redis.keys()), redis.keys())

    def test_greylisting_shared_by_the_fleet(self):
        # A triplet greylisted by one node is known to the other: an early retry there is still
        # greylisted, a retry after the delay there is accepted.
        redis = Redis(self)
        extra = ["counters redis %s" % redis.address, "greylisting on delay=2"]
        a, b = auth_server(self, extra), auth_server(self, extra)
        self.assertTrue(self.mx_rcpt(a).first.startswith("451 4.7.1 Greylisted"))
        self.assertTrue(self.mx_rcpt(b).first.startswith("451 4.7.1 Greylisted"))
        r = wait_until(lambda: self.mx_rcpt(b).code == 250, 10, 0.3)
        self.assertTrue(r, "node b still greylists 10 s after node a saw the triplet")

    def mx_rcpt(self, srv):
        """MAIL + RCPT on srv's MX port in a new session; returns the RCPT reply."""
        c = self.connect(srv)
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.org>")
        c.expect("250 2.1.0")
        c.cmd("RCPT TO:<alice@example.test>")
        r = c.reply()
        c.close()
        return r

    def send_many(self, c, n, tag, refused):
        for i in range(n):
            r = self.send_or_refused(c, "%s-%d" % (tag, i))
            if r is not None:
                refused.append(r)


class RedisFailure(FleetCase):
    def test_fail_open_accepts_logs_and_resumes(self):
        redis = Redis(self)
        srv = self.contract_node(redis, 3)
        c = self.submit(srv)
        for _ in range(3):
            self.assertEqual(self.try_mail(c)[0].code, 250)
        self.assertRegex(self.try_mail(c)[0].first, PLAN_DENIED % 3)

        redis.stop()
        for _ in range(5):  # over the plan, but nothing can be counted: accepted
            r, took = self.try_mail(c)
            self.assertEqual(r.code, 250, r.text)
            self.assertLess(took, NO_HANG)
        self.assertIsNotNone(srv.wait_log(r"limit: .*status=unavailable.*fail=open", 5),
                             "no log line says the limit was skipped (fail open)")
        # Mail goes through end to end meanwhile.
        self.assertIsNone(self.send_or_refused(c, "t41-open"))
        srv.wait_mail("bob", 1)

        redis.start()  # empty: the counts start again from 0
        self.assertPlanCountsAgain(c, 3)

    def test_fail_open_when_redis_freezes(self):
        redis = Redis(self)
        srv = self.contract_node(redis, 3)
        c = self.submit(srv)
        self.assertEqual(self.try_mail(c)[0].code, 250)
        redis.freeze()  # the connection stays up, answers never come: the call's timeout
        r, took = self.try_mail(c)
        self.assertEqual(r.code, 250, r.text)
        self.assertLess(took, NO_HANG)
        redis.resume()
        self.assertPlanCountsAgain(c, 3)

    def test_redis_killed_with_calls_in_flight(self):
        # Four sessions keep MAILing while Redis dies (SIGKILL, as in a crash): the calls in
        # flight and those after get an answer (fail open: 250) within the bound, none is lost
        # or answered twice, and the server stays healthy (no sanitizer report at the end).
        redis = Redis(self)
        srv = self.contract_node(redis, 1000000)
        stop_at = time.monotonic() + 3.0
        workers = [ClientThread(self.mail_until, self.submit(srv), stop_at) for _ in range(4)]
        for t in workers:
            t.start()
        time.sleep(1.0)
        redis.kill9()
        for t in workers:
            t.join(30)
            self.assertFalse(t.is_alive(), "a session is stuck")
            if t.error:
                raise t.error
        self.assertIsNotNone(srv.wait_log(r"limit: .*status=unavailable.*fail=open", 5))
        redis.start()
        c = self.submit(srv)
        self.assertTrue(wait_until(lambda: redis.keys() if self.try_mail(c)[0].code == 250
                                   else None, 15, 0.3), "nothing counted after Redis came back")

    def mail_until(self, c, stop_at):
        while time.monotonic() < stop_at:
            r, took = self.try_mail(c)
            if r.code != 250 or took >= NO_HANG:
                raise AssertionError("MAIL answered %r after %.1f s" % (r.text, took))

    def closed_server(self, redis):
        return auth_server(self, ["plan contract messages=50/hour", "default_plan contract",
                                  "counters redis %s fail=closed timeout=200" % redis.address])

    def test_fail_closed_refuses_and_recovers(self):
        redis = Redis(self)
        srv = self.closed_server(redis)
        c = self.submit(srv)
        self.assertEqual(self.try_mail(c)[0].code, 250)
        redis.stop()
        for _ in range(3):
            r, took = self.try_mail(c)
            self.assertTrue(r.first.startswith(UNCHECKED[0]), r.text)
            self.assertIn(UNCHECKED[1], r.text)
            self.assertLess(took, NO_HANG)
        self.assertIsNotNone(srv.wait_log(r"limit: .*status=unavailable.*fail=closed", 5),
                             "no log line says mail was refused (fail closed)")
        redis.start()
        self.assertTrue(wait_until(lambda: self.try_mail(c)[0].code == 250, 15, 0.3),
                        "MAIL still refused 15 s after Redis came back")

    def test_fail_closed_when_redis_freezes(self):
        redis = Redis(self)
        srv = self.closed_server(redis)
        c = self.submit(srv)
        self.assertEqual(self.try_mail(c)[0].code, 250)
        redis.freeze()
        r, took = self.try_mail(c)
        self.assertTrue(r.first.startswith(UNCHECKED[0]), r.text)
        self.assertLess(took, NO_HANG)
        # Other sessions are not held up by the frozen Redis.
        other = self.connect(srv)
        other.cmd("NOOP")
        other.expect("250")
        redis.resume()
        self.assertTrue(wait_until(lambda: self.try_mail(c)[0].code == 250, 15, 0.3),
                        "MAIL still refused 15 s after Redis answered again")

    def assertPlanCountsAgain(self, c, limit):
        """Once Redis is back, the plan's limit bites again: a 451 comes within a bounded
        number of MAILs (those accepted before the reconnection plus `limit` counted ones)."""
        def refused():
            r, took = self.try_mail(c)
            self.assertLess(took, NO_HANG)
            if r.code == 250:
                return None
            self.assertRegex(r.first, PLAN_DENIED % limit)
            return r
        r = wait_until(refused, 20, 0.2)
        self.assertIsNotNone(r, "the plan was not enforced again within 20 s of Redis's return")


if __name__ == "__main__":
    unittest.main()
