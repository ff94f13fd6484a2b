"""t_23_auth_limits — guessing passwords over AUTH: failures answered after a growing delay,
then 421 4.7.0 and a closed connection per client address (auth_fail_limit within
auth_fail_window), other addresses unaffected, a success or the window's end forgetting the
failures; the verifier's queue bound (454 4.7.0 beyond POLICY_AUTHCHECK_QUEUE verifications in
flight); and the log: one "auth: ..." line per attempt, never a password."""
import os
import re
import signal
import time
import unittest

from harness import (REPO, Conn, ConnectionClosed, ServerTestCase, auth_server, b64, free_ports,
                     login, sasl_plain, starttls)

OTHER_IP = "127.0.0.2"  # loopback too: another client address for the per-address limit


def authcheck_constant(name, default):
    """A #define of src/policy/authcheck.h, so the test follows the verifier's sizing."""
    try:
        with open(os.path.join(REPO, "src", "policy", "authcheck.h")) as f:
            m = re.search(r"^#define %s (\d+)u?\b" % name, f.read(), re.M)
        return int(m.group(1)) if m else default
    except OSError:
        return default


AUTHCHECK_QUEUE = authcheck_constant("POLICY_AUTHCHECK_QUEUE", 256)
AUTHCHECK_THREADS = authcheck_constant("POLICY_AUTHCHECK_THREADS", 2)
# SHA-512-crypt of "slow-secret" with a million rounds: about a second of the verifier's time.
SLOW_HASH = ("$6$rounds=1000000$clearmtaslowsalt$5Rx8oHWJeejowgbH0I1WfqKcFV0SiQXu6Z2Qg0v8JoX."
             "Z8dm3zCV.SAm1Mz16P/TW.fsRXEBhz/fkuVk7PpBX0")


class LimitCase(ServerTestCase):
    def session(self, srv, source=None):
        """A submission connection inside TLS, after EHLO (from source, if given)."""
        if source is None:
            c = self.connect(srv.sub_port)
        else:
            c = Conn(srv.sub_port, source=source)
            self.addCleanup(c.close)
            c.expect("220")
        starttls(c)
        return c

    def fail_once(self, c, password="wrong-1"):
        """One AUTH PLAIN with a wrong password; returns (reply, seconds it took)."""
        started = time.monotonic()
        c.cmd("AUTH PLAIN " + sasl_plain("alice", password))
        r = c.reply()
        return r, time.monotonic() - started

    def assertBlocked(self, c, what):
        c.cmd("AUTH PLAIN " + sasl_plain("alice", "alice-secret"))
        c.expect("421 4.7.0", "too many failed authentication attempts")
        self.assertTrue(c.closed(timeout=5), "%s: connection left open after 421" % what)


class BruteForce(LimitCase):
    def test_failures_answered_535_after_a_growing_delay(self):
        srv = auth_server(self, ["auth_fail_limit 3", "auth_fail_window 60"])
        c = self.session(srv)
        replies, times = [], []
        for i in range(3):
            try:
                r, took = self.fail_once(c, "wrong-%d" % i)
            except ConnectionClosed as e:
                self.fail("failure %d: connection closed (%s)" % (i + 1, e))
            replies.append(r.first)
            times.append(took)
        # The delay grows: none for the first, then 0.5 s doubling (docs/clearmta.conf.5.md).
        self.assertGreater(times[2], times[0] + 0.3, "failure times %r" % times)
        self.assertGreater(times[1], times[0], "failure times %r" % times)
        # "After N failed AUTH attempts ... further attempts are answered 421": the N-th
        # failure itself is still an ordinary 535.
        for i, first in enumerate(replies):
            self.assertTrue(first.startswith("535 5.7.8"),
                            "failure %d of 3 (limit 3) answered %r; all replies: %r"
                            % (i + 1, first, replies))
        self.assertBlocked(c, "4th attempt on the same connection")

    def test_after_the_limit_even_the_right_password_gets_421(self):
        srv = auth_server(self, ["auth_fail_limit 3", "auth_fail_window 60"])
        for i in range(3):  # each failure on its own connection: the limit is per address
            c = self.session(srv)
            r, _ = self.fail_once(c, "wrong-%d" % i)
            if i < 2:
                self.assertTrue(r.first.startswith("535 5.7.8"), r.text)
            c.close()
        c = self.session(srv)
        started = time.monotonic()
        self.assertBlocked(c, "new connection with the right password")
        self.assertLess(time.monotonic() - started, 3, "the refusal was delayed like a failure")
        self.assertIsNotNone(srv.wait_log(
            r"auth: \[127\.0\.0\.1\] user=alice, mechanism=PLAIN, status=refused", timeout=5))
        self.assertIsNotNone(srv.wait_log(r"auth: \[127\.0\.0\.1\] blocked", timeout=5),
                             "the block is not logged")
        # LOGIN is refused alike, once its password arrives.
        c = self.session(srv)
        c.cmd("AUTH LOGIN " + b64("alice"))
        c.expect("334")
        c.cmd(b64("alice-secret"))
        c.expect("421 4.7.0")
        self.assertTrue(c.closed(timeout=5))
        # Another client address is not affected.
        other = self.session(srv, source=OTHER_IP)
        login(other)
        other.cmd("MAIL FROM:<alice@example.test>")
        other.expect("250 2.1.0")

    def test_failures_leave_the_window(self):
        srv = auth_server(self, ["auth_fail_limit 2", "auth_fail_window 2"])
        for i in range(2):
            c = self.session(srv)
            self.fail_once(c, "wrong-%d" % i)
            c.close()
        last_failure = time.monotonic()
        self.assertBlocked(self.session(srv), "inside the window")
        time.sleep(max(0.0, last_failure + 2.3 - time.monotonic()))
        c = self.session(srv)
        login(c)

    def test_success_forgets_the_failures(self):
        srv = auth_server(self, ["auth_fail_limit 3", "auth_fail_window 60"])
        c = self.session(srv)
        for i in range(2):
            r, _ = self.fail_once(c, "wrong-%d" % i)
            self.assertTrue(r.first.startswith("535 5.7.8"), r.text)
        login(c)
        c = self.session(srv)
        for i in range(2):
            r, took = self.fail_once(c, "again-%d" % i)
            self.assertTrue(r.first.startswith("535 5.7.8"), r.text)
        login(c)


class VerifierOverload(LimitCase):
    def test_beyond_the_verifier_queue_454_then_retry_works(self):
        # Slow verifications hold every verifier thread; AUTHCHECK_QUEUE more arrive at once:
        # the ones beyond the bound are answered 454 4.7.0 at once instead of queueing, the
        # rest succeed. AUTH in plaintext (auth-plaintext listener) keeps the sessions cheap.
        n_slow, n_fast = AUTHCHECK_THREADS, AUTHCHECK_QUEUE + 4
        mx, sub, plain = free_ports(3)
        srv = auth_server(self, ["listen submission 127.0.0.1:%d auth-plaintext" % plain,
                                 "max_connections_per_ip %d" % (n_slow + n_fast + 20),
                                 "auth_fail_limit 100"],
                          users_extra=["slow:" + SLOW_HASH], ports=(mx, sub))
        conns = []
        for _ in range(n_slow + n_fast):
            c = self.connect(plain)
            c.ehlo()
            conns.append(c)
        slow, fast = conns[:n_slow], conns[n_slow:]
        for c in slow:
            c.cmd("AUTH PLAIN " + sasl_plain("slow", "slow-secret"))
        time.sleep(0.1)  # the verifier threads have taken the slow jobs
        for c in fast:
            c.cmd("AUTH PLAIN " + sasl_plain("alice", "alice-secret"))
        codes = [c.reply(timeout=10).first[:9] for c in fast]
        for c in slow:
            c.expect("235 2.7.0", timeout=10)
        tempfail = codes.count("454 4.7.0")
        self.assertGreaterEqual(tempfail, 1, "no 454 with %d verifications in flight: %r"
                                % (n_slow + n_fast, sorted(set(codes))))
        self.assertEqual(codes.count("235 2.7.0") + tempfail, n_fast, sorted(set(codes)))
        self.assertLessEqual(codes.count("235 2.7.0"), AUTHCHECK_QUEUE - n_slow)
        # Refused for overload is not a failure: the same client logs in when it retries.
        c = fast[codes.index("454 4.7.0")]
        login(c)
        c.cmd("MAIL FROM:<alice@example.test>")
        c.expect("250 2.1.0")

class Departures(LimitCase):
    """Clients that leave, or a server that stops, while a verification or a failure delay is
    pending: no crash, no sanitizer report, a clean exit."""

    def slow_server(self):
        mx, sub, plain = free_ports(3)
        srv = auth_server(self, ["listen submission 127.0.0.1:%d auth-plaintext" % plain],
                          users_extra=["slow:" + SLOW_HASH], ports=(mx, sub))
        return srv, plain

    def test_client_leaves_during_verification_and_during_failure_delay(self):
        srv, plain = self.slow_server()
        c = self.connect(plain)
        c.ehlo()
        c.cmd("AUTH PLAIN " + sasl_plain("slow", "slow-secret"))
        c.close()  # the verification is still running
        c = self.connect(plain)
        c.ehlo()
        self.fail_once(c)  # the first failure is answered at once
        c.cmd("AUTH PLAIN " + sasl_plain("alice", "wrong-2"))
        time.sleep(0.1)  # verified by now; the 0.5 s delay runs
        c.close()
        time.sleep(1.5)  # the slow job and the delay timer both end with their sessions gone
        c = self.connect(plain)
        c.ehlo()
        login(c)
        self.assertTrue(srv.running())

    def test_sigterm_during_verification(self):
        srv, plain = self.slow_server()
        c = self.connect(plain)
        c.ehlo()
        c.cmd("AUTH PLAIN " + sasl_plain("slow", "slow-secret"))
        time.sleep(0.1)
        started = time.monotonic()
        srv.signal(signal.SIGTERM)
        # The pending AUTH is answered, and the next command gets the shutdown's 421 (as after
        # a transaction in flight, t_17), then the server goes.
        c.expect("235 2.7.0", timeout=8)
        c.cmd("NOOP")
        c.expect("421 4.3.2", timeout=5)
        self.assertTrue(c.closed(timeout=5))
        self.assertIsNotNone(srv.wait_exit(8), "server still running 8 s after SIGTERM")
        self.assertEqual(srv.proc.returncode, 0)
        self.assertLess(time.monotonic() - started, 8)


class Logging(LimitCase):
    SECRETS = ("alice-secret", "bob-secret", "Wr0ng-Guess-1", "Wr0ng-Guess-2")

    def test_failures_logged_passwords_never(self):
        srv = auth_server(self, ["auth_fail_limit 10", "auth_fail_window 60"])
        c = self.session(srv)
        c.cmd("AUTH PLAIN " + sasl_plain("alice", "Wr0ng-Guess-1"))
        c.expect("535 5.7.8")
        c.cmd("AUTH LOGIN")
        c.expect("334")
        c.cmd(b64("bob"))
        c.expect("334")
        c.cmd(b64("Wr0ng-Guess-2"))
        c.expect("535 5.7.8")
        login(c)
        c2 = self.session(srv)
        c2.cmd("AUTH LOGIN " + b64("bob"))
        c2.expect("334")
        c2.cmd(b64("bob-secret"))
        c2.expect("235 2.7.0")
        self.assertIsNotNone(srv.wait_log(r"auth: \[127\.0\.0\.1\] user=bob, status=ok",
                                          timeout=5))
        log = srv.log()
        self.assertRegex(log, r"auth: \[127\.0\.0\.1\] user=alice, status=failed")
        self.assertRegex(log, r"auth: \[127\.0\.0\.1\] user=bob, status=failed")
        self.assertEqual(len(re.findall(r"auth: .*status=failed", log)), 2, log)
        self.assertNoSecrets(log)

    def test_malformed_auth_lines_do_not_log_credentials(self):
        # Lines the server refuses before looking at AUTH's argument (a NUL or CR inside, a
        # line over the limit) are still AUTH lines: the rejection log must not copy their
        # base64 credentials.
        srv = auth_server(self)
        c = self.session(srv)
        cred = sasl_plain("alice", "alice-secret").encode()
        for line in (b"AUTH PLAIN " + cred + b"\x00",
                     b"AUTH PLAIN " + cred + b"\rX",
                     b"AUTH PLAIN " + cred + b" " + b"A" * 13000):
            c.send(line + b"\r\n")
            self.assertIn(c.reply().code, (500, 501))
        login(c)
        self.assertIsNotNone(srv.wait_log(r"user=alice, status=ok", timeout=5))
        self.assertNoSecrets(srv.log())

    def assertNoSecrets(self, log):
        for secret in self.SECRETS:
            for form in [secret, b64(secret)] + [sasl_plain(u, secret) for u in ("alice", "bob")]:
                lines = [l for l in log.splitlines() if form in l]
                self.assertFalse(lines, "password %r (as %r) is in the log:\n%s"
                                 % (secret, form, "\n".join(lines)))


if __name__ == "__main__":
    unittest.main()
