"""t_119_console_local_users — on loopback the console trusts a client without the token only
when its socket belongs to root, to the server's own user or to a user of http_local_users. A
client process that drops to nobody before connecting gets 401 on the page and the API, and its
POST delete (even with a valid CSRF token) changes nothing — the control socket still lists the
message — also when it closes its socket before the server (stopped meanwhile) reads the
request: the kernel then shows the closed end as uid 0's, which must not pass for root's; with
the http_password_file token (bearer or Basic) it is served; root needs no token.
`http_local_users nobody` lets it in and a reload without the line shuts it out again; a
server that dropped to nobody trusts nobody's clients as its own user's, and not another
uid's. An unknown name in http_local_users is a configuration error that names it. The uid
switches need root (skipped otherwise, saying why)."""
import base64
import http.client
import json
import os
import pwd
import signal
import socket
import subprocess
import time
import traceback
import unittest

from console_http import request
from harness import (BIN, ServerTestCase, free_ports, login, make_message, send_transaction,
                     starttls, wait_until, write_users_file)

NOBODY = "nobody"
OTHER_UID = 4242  # a uid with no user behind it: neither root, nor nobody, nor the server's
TOKEN = "console-token-0123456789"
CLI_TIMEOUT = 30.0
WAIT = 10.0
# A request sent and its socket closed at once is answered (or refused) within this; the
# server is on loopback and idle.
SETTLE = 1.0


def as_user(uid, fn):
    """Runs fn() in a forked child that drops to uid (and gid, no groups) before it makes any
    socket; returns what fn returned (JSON through a pipe)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into unittest
        status = 1
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            out = json.dumps({"uid": os.geteuid(), "result": fn()}).encode()
            os.write(w, out)
            status = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(status)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not data:
        raise AssertionError("the child as uid %d failed (status %d)" % (uid, status))
    got = json.loads(data)
    if got["uid"] != uid:
        raise AssertionError("the child runs as uid %r, not %d" % (got["uid"], uid))
    return got["result"]


def status_of(port, method, path, headers=None):
    """The status of one request on its own connection."""
    return request(port, method, path, body=b"" if method == "POST" else None,
                   headers=headers).status


def send_and_close(port, method, path, headers):
    """Sends one whole request and closes the socket at once, reading nothing; returns the
    client's port."""
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1:%d" % port,
             "Content-Length: 0"] + ["%s: %s" % kv for kv in headers.items()]
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    client_port = s.getsockname()[1]
    s.close()
    return client_port


def kernel_entry(client_port, server_port):
    """(state, uid, inode) of the client's end in /proc/net/tcp, or None."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1].split(":"), fields[2].split(":")
            if int(local[1], 16) == client_port and int(remote[1], 16) == server_port:
                return int(fields[3], 16), int(fields[7]), int(fields[9])
    return None


TCP_FIN_WAIT2, TCP_TIME_WAIT = 5, 6


def bearer():
    return {"Authorization": "Bearer " + TOKEN}


def basic():
    return {"Authorization": "Basic " + base64.b64encode(("admin:" + TOKEN).encode()).decode()}


@unittest.skipUnless(os.geteuid() == 0,
                     "needs root: its clients switch to other uids before connecting")
class LocalUsers(ServerTestCase):
    def setUp(self):
        self.nobody = pwd.getpwnam(NOBODY).pw_uid

    def token_file(self, work):
        path = os.path.join(work, "http-token")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(TOKEN + "\n")
        return path

    def start(self, extra=(), user_lines=()):
        """A server with the console, the token file, AUTH and a relay host that refuses
        connections (so that submitted mail stays queued)."""
        mx, sub, self.http_port, dead = free_ports(4)
        data = self.mkdtemp()
        users = write_users_file(os.path.join(data, "users"))
        self.base_config = ["users_file %s" % users, "listen http 127.0.0.1:%d" % self.http_port,
                            "http_password_file %s" % self.token_file(data),
                            "relayhost [127.0.0.1]:%d" % dead] + list(extra)
        self.srv = self.start_server(extra_config=self.base_config + list(user_lines),
                                     data_dir=data, ports=(mx, sub))
        return self.srv

    def submit(self, tag):
        c = self.connect(self.srv.sub_port)
        starttls(c)
        login(c)
        r = send_transaction(c, "alice@example.test", ["carol@remote.example"],
                             make_message(tag))
        self.assertTrue(r.text.startswith("250"), r.text)
        c.cmd("QUIT")
        return r.text.split()[-1]

    def queued_ids(self):
        """The queue as the control socket lists it (clearmta queue list)."""
        p = subprocess.run([BIN, "queue", "-c", self.srv.conf_path, "list", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=CLI_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return {m["id"] for m in json.loads(p.stdout.decode())["messages"]}

    def csrf(self):
        """The CSRF token root's page gets, and the headers that carry it on an action."""
        r = request(self.http_port, "GET", "/")
        self.assertEqual(r.status, 200, r.text())
        token = r.header("Set-Cookie").split(";")[0].split("=")[1]
        return {"Cookie": "clearmta_csrf=" + token, "X-CSRF-Token": token}

    def closed_before_read(self, path, headers):
        """nobody POSTs path and closes its socket while the server is stopped, so that the
        server reads the request only once the kernel has left the client's end closed;
        returns that end's (state, uid, inode) as the kernel showed it."""
        port = self.http_port

        def closed(client_port):
            e = kernel_entry(client_port, port)
            return e if e and e[0] in (TCP_FIN_WAIT2, TCP_TIME_WAIT) else None
        self.srv.signal(signal.SIGSTOP)
        try:
            client_port = as_user(self.nobody, lambda: send_and_close(port, "POST", path,
                                                                      headers))
            entry = wait_until(lambda: closed(client_port), WAIT)
        finally:
            self.srv.signal(signal.SIGCONT)
        self.assertTrue(entry, "the closed client's end never left ESTABLISHED")
        return entry

    def test_other_users_need_the_token(self):
        self.start()
        qid = self.submit("local-users")
        self.assertIn(qid, self.queued_ids())
        port = self.http_port
        action = self.csrf()
        delete = "/api/queue/%s/delete?mode=silent" % qid

        # root: no token needed
        self.assertEqual(status_of(port, "GET", "/api/queue"), 200)

        # nobody without the token: refused everywhere, nothing deleted
        got = as_user(self.nobody, lambda: [
            status_of(port, "GET", "/"),
            status_of(port, "GET", "/api/queue"),
            status_of(port, "GET", "/metrics"),
            status_of(port, "POST", delete, action)])
        self.assertEqual(got, [401, 401, 401, 401])
        self.assertIn(qid, self.queued_ids())

        # the same delete sent and the socket closed before the server reads it: the kernel
        # keeps the closed end as a TIME_WAIT entry of uid 0, which must not pass for root's
        entry = self.closed_before_read(delete, action)
        self.assertEqual(entry[1:], (0, 0), "the kernel's entry: uid 0, no inode")
        time.sleep(SETTLE)
        self.assertIn(qid, self.queued_ids())

        # nobody with the token: served as a remote client would be
        got = as_user(self.nobody, lambda: [
            status_of(port, "GET", "/api/queue", bearer()),
            status_of(port, "GET", "/api/queue", basic()),
            status_of(port, "GET", "/api/queue", {"Authorization": "Bearer wrong-token-0000"})])
        self.assertEqual(got, [200, 200, 401])
        self.assertIn(qid, self.queued_ids())

        # and a request sent with the token and closed as above is carried out: the refusal
        # above was no lost request
        self.closed_before_read(delete, dict(action, **bearer()))
        self.assertTrue(wait_until(lambda: qid not in self.queued_ids(), WAIT),
                        "the delete with the token was not carried out")

    def test_http_local_users_and_reload(self):
        extra = ["http_local_users %s" % NOBODY]
        self.start(user_lines=extra)
        port = self.http_port
        qid = self.submit("local-users-listed")
        got = as_user(self.nobody, lambda: [
            status_of(port, "GET", "/api/queue"),
            status_of(port, "GET", "/")])
        self.assertEqual(got, [200, 200])
        # a uid not named still needs the token
        self.assertEqual(as_user(OTHER_UID, lambda: status_of(port, "GET", "/api/queue")), 401)

        # a reload without the line: nobody is a stranger again
        self.srv.rewrite_config(self.base_config)
        self.assertTrue(self.srv.reload(1), self.srv.log())
        self.assertIn("in force", self.srv.log())
        action = self.csrf()
        got = as_user(self.nobody, lambda: [
            status_of(port, "GET", "/api/queue"),
            status_of(port, "POST", "/api/queue/%s/delete?mode=silent" % qid, action)])
        self.assertEqual(got, [401, 401])
        self.assertIn(qid, self.queued_ids())

    def test_the_servers_own_user(self):
        """Dropped to nobody, the server trusts nobody's clients (its own user) and root's,
        not another uid's."""
        work = self.mkdtemp()  # root's: config and log
        data = self.mkdtemp()
        os.chown(data, self.nobody, pwd.getpwnam(NOBODY).pw_gid)
        os.chmod(data, 0o750)
        mx, sub, port = free_ports(3)
        self.start_server(extra_config=["user %s" % NOBODY, "listen http 127.0.0.1:%d" % port],
                          data_dir=data, work_dir=work, ports=(mx, sub))
        self.assertEqual(status_of(port, "GET", "/api/queue"), 200)
        self.assertEqual(as_user(self.nobody, lambda: status_of(port, "GET", "/api/queue")), 200)
        self.assertEqual(as_user(OTHER_UID, lambda: status_of(port, "GET", "/api/queue")), 401)


class Config(ServerTestCase):
    def test_unknown_user_is_a_config_error(self):
        work = self.mkdtemp()
        path = os.path.join(work, "clearmta.conf")
        with open(path, "w") as f:
            f.write("listen http 127.0.0.1:8025\nhttp_local_users root no-such-user-clearmta\n")
        p = subprocess.run([BIN, "check-config", "-c", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=CLI_TIMEOUT)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("%s:2: http_local_users: no user 'no-such-user-clearmta' on this system"
                      % path, p.stderr.decode() + p.stdout.decode())


if __name__ == "__main__":
    unittest.main()
