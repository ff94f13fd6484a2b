"""t_116_auth_cache — the cache of successful password checks (policy/authcache.c) never lets in
a password the users file no longer holds: after logins that put alice's password in the cache,
the file is rewritten with a new password and reloaded (SIGHUP); the old password is refused
(535 5.7.8) and the new one accepted. A wrong password is refused every time (failures are
never cached), and no password reaches the log."""
import os
import signal
import unittest

from harness import (ServerTestCase, auth_server, sasl_plain, starttls, wait_until,
                     write_users_file)


class AuthCache(ServerTestCase):
    def auth(self, srv, user, password):
        """The reply code to AUTH PLAIN user/password on a new submission connection."""
        c = self.connect(srv.sub_port)
        starttls(c)
        c.cmd("AUTH PLAIN " + sasl_plain(user, password))
        code = c.reply().code
        c.cmd("QUIT")
        c.close()
        return code

    def test_changed_password_in_reloaded_file_wins_over_the_cache(self):
        srv = auth_server(self)
        for _ in range(3):
            self.assertEqual(self.auth(srv, "alice", "alice-secret"), 235)
        self.assertEqual(self.auth(srv, "ALICE", "alice-secret"), 235)  # names fold
        write_users_file(os.path.join(srv.data_dir, "users"),
                         (("alice", "renewed-secret"), ("bob", "bob-secret")))
        srv.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: "in force for new sessions" in srv.log(), 10),
                        "no reload in the log")
        self.assertEqual(self.auth(srv, "alice", "alice-secret"), 535)
        self.assertEqual(self.auth(srv, "alice", "renewed-secret"), 235)
        self.assertEqual(self.auth(srv, "alice", "renewed-secret"), 235)
        log = srv.log()
        for secret in ("alice-secret", "renewed-secret"):
            self.assertNotIn(secret, log)

    def test_wrong_password_refused_every_time(self):
        srv = auth_server(self, extra_config=["auth_fail_limit 10"])
        self.assertEqual(self.auth(srv, "bob", "bob-secret"), 235)
        for _ in range(3):
            self.assertEqual(self.auth(srv, "bob", "bob-secreT"), 535)
        self.assertEqual(self.auth(srv, "bob", "bob-secret"), 235)


if __name__ == "__main__":
    unittest.main()
