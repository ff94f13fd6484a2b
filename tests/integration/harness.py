"""tests/integration/harness.py — shared helpers for the integration tests: free loopback ports,
starting and stopping a real `clearmta serve` on its own temp data dir, a raw-socket SMTP dialog,
test messages that prove their own completeness, and Maildir/queue inspection.
Python 3 standard library only. Every wait is bounded."""
import base64
import json
import os
import re
import stat
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("CLEARMTA_BIN") or os.path.join(REPO, "build", "asan", "clearmta")
CONTRACT_SCRIPT = os.path.join(REPO, "tests", "contract-server.sh")

# The test contract of DESIGN.md.
HOSTNAME = "mx.example.test"
DOMAIN = "example.test"
USERS = ("alice", "bob", "postmaster")
MAX_SIZE = 10485760
MAX_RCPTS = 100

START_TIMEOUT = 10.0     # the port must accept within this
STOP_TIMEOUT = 10.0      # SIGTERM, then SIGKILL after this
REPLY_TIMEOUT = 10.0     # one SMTP reply
DELIVERY_TIMEOUT = 10.0  # a queued message reaches its Maildir
MAX_REPLY_BYTES = 1 << 20

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer", "AddressSanitizer:DEADLYSIGNAL")


def port_slot():
    """(slot, slots) from $CLEARMTA_TEST_PORT_SLOT, "SLOT/SLOTS": tests/integration/runner.py
    gives each module running at the same time as others its own slot. (0, 1) when unset."""
    slot, _, slots = os.environ.get("CLEARMTA_TEST_PORT_SLOT", "0/1").partition("/")
    return int(slot), int(slots)


def free_ports(n=1):
    """n distinct loopback ports that were free a moment ago (bound to port 0 together), all
    of this module's port slot: (port // 2) % slots == slot (the kernel hands out odd ports to
    bind(), hence // 2). Modules running at the same time never pick the same port so."""
    slot, slots = port_slot()
    socks = []
    ports = []
    try:
        for _ in range(50 * slots * n):  # about slots tries per port
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)  # held until the end, so that bind() never hands it out again
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if (port // 2) % slots == slot:
                ports.append(port)
                if len(ports) == n:
                    return ports
        raise AssertionError("no %d free loopback ports of port slot %d/%d" % (n, slot, slots))
    finally:
        for s in socks:
            s.close()


class PortTaken(AssertionError):
    """The server could not listen: a port free when picked was taken meanwhile (by a server
    or client of a test running beside, which bound port 0 without port slots)."""


PORT_TRIES = 3  # starts with fresh ports when the picked ones were taken meanwhile


def port_is_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_until(pred, timeout, interval=0.05):
    """Polls pred until it returns something true or timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def contract_config(mx_port, sub_port, data_dir, extra=()):
    """The same settings tests/contract-server.sh writes, plus extra directive lines."""
    lines = [
        "# Written by tests/integration/harness.py: the test contract of DESIGN.md.",
        "hostname %s" % HOSTNAME,
        "listen mx 127.0.0.1:%d" % mx_port,
    ]
    if sub_port:
        lines.append("listen submission 127.0.0.1:%d" % sub_port)
    lines += [
        "data_dir %s" % data_dir,
        "maildir_root %s/maildir" % data_dir,
        "domain %s users %s" % (DOMAIN, " ".join(USERS)),
        "max_message_size %d" % MAX_SIZE,
        "max_recipients %d" % MAX_RCPTS,
    ]
    if os.geteuid() == 0:
        # Tests run in root-owned temp dirs: stay root rather than drop to clearmta (t_51).
        lines.append("user root")
    # An extra line replaces the contract's line for the same (non-repeatable) directive.
    replaced = {l.split()[0] for l in extra if l.split()} - {"listen", "domain"}
    lines = [l for l in lines if l.split()[0] not in replaced] + list(extra)
    return "\n".join(lines) + "\n"


def is_testing_build(path=BIN):
    """True when the binary was built with -DCLEARMTA_TESTING (fault injection compiled in)."""
    try:
        with open(path, "rb") as f:
            return b"store_fault_set" in f.read()
    except OSError:
        return False


# ---- the server process --------------------------------------------------------------------

class Server:
    """One clearmta process. With extra_config None it runs tests/contract-server.sh; otherwise
    it writes the contract config plus the extra lines itself. work_dir holds the config and the
    log (stdout+stderr, appended across restarts); data_dir holds queue and maildirs."""

    def __init__(self, data_dir, work_dir=None, extra_config=None, env=None, ports=None,
                 argv=None, cwd=None):
        self.data_dir = data_dir
        self.work_dir = work_dir or data_dir
        self.extra_config = extra_config
        self.env_extra = dict(env or {})
        self.mx_port, self.sub_port = ports or free_ports(2)
        self.argv = argv
        self.cwd = cwd
        self.proc = None
        self.log_path = os.path.join(self.work_dir, "server.log")
        self.conf_path = os.path.join(self.work_dir, "clearmta.conf")
        self.sigkilled = False

    def command(self):
        if self.argv is not None:
            return list(self.argv)
        if self.extra_config is None:
            return ["sh", CONTRACT_SCRIPT, str(self.mx_port), str(self.sub_port), self.data_dir]
        self.write_config()
        return [BIN, "serve", "-c", self.conf_path]

    def write_config(self):
        """The config file, 0644 whatever the umask: the server refuses one that group or
        others may write."""
        with open(self.conf_path, "w") as f:
            f.write(contract_config(self.mx_port, self.sub_port, self.data_dir, self.extra_config))
        os.chmod(self.conf_path, 0o644)

    def start(self, wait=True):
        if not os.path.exists(BIN):
            raise unittest.SkipTest("no server binary at %s (set CLEARMTA_BIN)" % BIN)
        env = dict(os.environ)
        env["CLEARMTA_BIN"] = BIN
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        env.update(self.env_extra)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, env=env, cwd=self.cwd or self.work_dir)
        finally:
            log.close()
        self.sigkilled = False
        if wait:
            self.wait_ready()
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, port=None, timeout=START_TIMEOUT):
        """Waits until the MX port greets with 220 and says 221 to QUIT (so the probe
        connection is gone before the test starts counting connections)."""
        port = port or self.mx_port
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.running():
                log = self.log()
                failure = PortTaken if "Address already in use" in log else AssertionError
                raise failure("server exited with %r before accepting on port %d:\n%s"
                              % (self.proc.returncode, port, log))
            try:
                c = Conn(port, timeout=max(0.5, deadline - time.monotonic()))
            except OSError as e:
                last = e
                time.sleep(0.05)
                continue
            try:
                c.expect("220")
                c.cmd("QUIT")
                c.expect("221")
                return
            finally:
                c.close()
        raise AssertionError("server did not accept on port %d within %.0f s (%s):\n%s"
                             % (port, timeout, last, self.log()))

    def signal(self, sig):
        if self.running():
            self.proc.send_signal(sig)

    def rewrite_config(self, extra):
        """Writes the config file anew with extra lines (as start does), for a reload."""
        self.extra_config = list(extra)
        self.write_config()

    def reload(self, count):
        """SIGHUP; True once the log holds count reload outcomes (applied or refused)."""
        self.signal(signal.SIGHUP)
        return wait_until(lambda: self.log().count("in force for new sessions")
                          + self.log().count("the running configuration stays") >= count, 10)

    def kill9(self):
        if self.running():
            self.proc.kill()
            self.sigkilled = True
        if self.proc is not None:
            self.proc.wait(timeout=STOP_TIMEOUT)

    def stop(self):
        """SIGTERM, wait, SIGKILL. Returns (exit code, True if SIGKILL was needed)."""
        if self.proc is None:
            return None, False
        if self.proc.poll() is not None:
            return self.proc.returncode, self.sigkilled
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT)
            return rc, False
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.sigkilled = True
            self.proc.wait(timeout=STOP_TIMEOUT)
            return self.proc.returncode, True

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def unscheduled_recipients(self):
        """Queued or deferred recipients of messages not held that have no next try, from
        `clearmta queue list --json` on the running server: [(queue id, address, state)].
        There must never be any (a recipient would wait for a restart)."""
        p = subprocess.run([BIN, "queue", "-c", self.conf_path_in_use(), "list", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        if p.returncode != 0:
            raise AssertionError("queue list failed: %s" % p.stderr.decode("utf-8", "replace"))
        out = []
        for m in json.loads(p.stdout)["messages"]:
            for r in m["recipients"]:
                if r["state"] in ("queued", "deferred") and r["next_try"] is None and not m["held"]:
                    out.append((m["id"], r["address"], r["state"]))
        return out

    def conf_path_in_use(self):
        """The config file the server runs with (the contract script writes its own)."""
        if self.extra_config is None and self.argv is None:
            return os.path.join(self.data_dir, "clearmta.conf")
        return self.conf_path

    def sanitizer_report(self):
        text = self.log()
        return text if any(m in text for m in SANITIZER_MARKS) else ""

    def wait_log(self, pattern, timeout=DELIVERY_TIMEOUT):
        """Waits until a log line matches the regex; returns the match or None."""
        rx = re.compile(pattern, re.M)
        return wait_until(lambda: rx.search(self.log()), timeout)

    # -- maildirs and queue --
    def maildir(self, user):
        return os.path.join(self.data_dir, "maildir", user)

    def maildir_files(self, user, subdirs=("new", "cur")):
        out = []
        for sub in subdirs:
            d = os.path.join(self.maildir(user), sub)
            try:
                names = sorted(os.listdir(d))
            except FileNotFoundError:
                continue
            out += [os.path.join(d, n) for n in names if not n.startswith(".")]
        return out

    def mailbox(self, user, subdirs=("new", "cur")):
        """The messages of user's Maildir as bytes, in file-name order."""
        out = []
        for p in self.maildir_files(user, subdirs):
            with open(p, "rb") as f:
                out.append(f.read())
        return out

    def wait_mail(self, user, count=1, timeout=DELIVERY_TIMEOUT):
        """Waits until user's Maildir holds at least count messages; returns them."""
        ok = wait_until(lambda: len(self.maildir_files(user)) >= count, timeout)
        msgs = self.mailbox(user)
        if not ok:
            raise AssertionError("%s has %d message(s), expected %d within %.0f s"
                                 % (user, len(msgs), count, timeout))
        return msgs

    def queue_dir(self):
        return os.path.join(self.data_dir, "queue")

    def queue_problems(self):
        """Half-written traces in the queue and the Maildirs: files in any tmp directory, and
        queue files whose length does not match their header's size field."""
        problems = []
        for root in (self.queue_dir(), os.path.join(self.data_dir, "maildir")):
            for dirpath, _dirs, files in os.walk(root):
                for name in files:
                    path = os.path.join(dirpath, name)
                    try:
                        mode = os.lstat(path).st_mode
                    except FileNotFoundError:
                        continue  # a running server delivered and removed it meanwhile
                    if not stat.S_ISREG(mode):
                        continue  # the control socket lives in the queue directory
                    if os.path.basename(dirpath) == "tmp":
                        problems.append("leftover tmp file %s (%d bytes)"
                                        % (path, os.path.getsize(path)))
                    elif root == self.queue_dir():
                        why = queue_file_problem(path)
                        if why:
                            problems.append("%s: %s" % (path, why))
        return problems

    def queue_files(self):
        """Complete-or-not queue files (files that start with the queue magic)."""
        out = []
        for dirpath, _dirs, files in os.walk(self.queue_dir()):
            for name in files:
                path = os.path.join(dirpath, name)
                try:
                    with open(path, "rb") as f:
                        if f.read(16) == b"clearmta-queue 1":
                            out.append(path)
                except OSError:
                    pass
        return out


def queue_file_problem(path):
    """'' when path is not a queue file or is complete; else what is wrong with it."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return ""  # removed meanwhile (delivered): nothing half-written
    except OSError as e:
        return "unreadable: %s" % e
    if not data.startswith(b"clearmta-queue 1\n"):
        return ""
    end = data.find(b"\n\n")
    if end < 0:
        return "no end of header"
    m = re.search(rb"^size (\d+)$", data[:end], re.M)
    if not m:
        return "no size field"
    want = int(m.group(1))
    have = len(data) - (end + 2)
    return "" if want == have else "size field says %d, file holds %d" % (want, have)


# ---- raw SMTP --------------------------------------------------------------------------------

class Reply:
    def __init__(self, lines):
        self.lines = lines          # str lines without CRLF
        self.code = int(lines[0][:3])
        # first line with its separator normalised: "250 2.1.0 Sender <a@b> OK"
        self.first = lines[0][:3] + " " + lines[0][4:] if len(lines[0]) > 3 else lines[0]
        self.text = "\n".join(lines)

    def __repr__(self):
        return "Reply(%r)" % self.text


class ConnectionClosed(AssertionError):
    pass


class Conn:
    """A raw SMTP client connection to 127.0.0.1: send bytes, read whole replies."""

    def __init__(self, port, timeout=REPLY_TIMEOUT, source=None):
        # source: a local address to connect from (another 127.0.0.0/8 address is another
        # client IP for per-IP limits)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.transcript = []

    @staticmethod
    def _bytes(data):
        return data.encode("utf-8") if isinstance(data, str) else data

    def send(self, data):
        data = self._bytes(data)
        self.transcript.append("c -> %r" % data[:200])
        self.sock.sendall(data)

    def cmd(self, line):
        self.send(self._bytes(line) + b"\r\n")

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no reply within %.0f s" % self.timeout)
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        if len(self.buf) > MAX_REPLY_BYTES:
            raise AssertionError("reply larger than %d bytes" % MAX_REPLY_BYTES)
        return True

    def reply(self, timeout=None):
        """Reads one complete (possibly multi-line) reply."""
        deadline = time.monotonic() + (timeout or self.timeout)
        lines = []
        while True:
            i = self.buf.find(b"\r\n")
            if i < 0:
                if self.eof or not self._fill(deadline):
                    raise ConnectionClosed("connection closed; partial reply %r after %r"
                                           % (self.buf, lines))
                continue
            raw, self.buf = self.buf[:i], self.buf[i + 2:]
            line = raw.decode("utf-8", "replace")
            if not re.match(r"^[2-5]\d\d([ -]|$)", line):
                raise AssertionError("malformed reply line %r" % line)
            if lines and line[:3] != lines[0][:3]:
                raise AssertionError("reply code changed inside a multi-line reply: %r" % line)
            lines.append(line)
            if len(line) == 3 or line[3] == " ":
                r = Reply(lines)
                self.transcript.append("s <- %s" % r.first)
                return r

    def expect(self, prefix, contains=None, timeout=None):
        r = self.reply(timeout)
        if not r.first.startswith(prefix):
            raise AssertionError("expected a reply starting %r, got %r\n%s"
                                 % (prefix, r.text, "\n".join(self.transcript[-12:])))
        if contains and contains.lower() not in r.text.lower():
            raise AssertionError("reply %r lacks %r" % (r.text, contains))
        return r

    def closed(self, timeout=REPLY_TIMEOUT):
        """True when the server closes the connection within timeout with nothing more said."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            if self.buf:
                return False
            try:
                self._fill(deadline)
            except socket.timeout:
                return False
            except OSError:
                return True
        return not self.buf

    def ehlo(self, name="client.example"):
        self.cmd("EHLO " + name)
        return self.expect("250")

    def start_tls(self, context=None):
        """Runs the TLS handshake on this connection (after '220' to STARTTLS, or at once on an
        implicit-TLS port); later sends and replies go through TLS. Returns the plaintext the
        server had sent past the last reply read (b'' when it kept quiet, as it must)."""
        leftover, self.buf = self.buf, b""
        self.sock.settimeout(self.timeout)
        self.sock = (context or tls_client_context()).wrap_socket(self.sock)
        self.transcript.append("-- TLS %s" % self.sock.version())
        return leftover

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def queue_id(reply):
    """The queue id of a '250 2.0.0 Ok: queued as ID' reply (16 upper-case hex, store/queue.h)."""
    m = re.search(r"queued as ([0-9A-F]{16})\b", reply.text if isinstance(reply, Reply) else reply)
    return m.group(1) if m else None


# ---- messages --------------------------------------------------------------------------------

def make_message(tag, body_size=0, sender="sender@example.org", rcpt="alice@example.test",
                 extra_body=b""):
    """A CRLF message whose Subject and Message-ID carry tag and whose last line is 'END tag':
    a copy that ends in that line is complete. body_size pads the body to about that size."""
    t = tag.encode()
    head = (b"From: <" + sender.encode() + b">\r\nTo: <" + rcpt.encode() + b">\r\n"
            b"Subject: " + t + b"\r\nMessage-ID: <" + t + b"@it.example>\r\n"
            b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\n")
    body = b"first line of " + t + b"\r\n" + extra_body
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n"
    if body_size > len(body):
        body += line * ((body_size - len(body)) // len(line) + 1)
    return head + body + b"END " + t + b"\r\n"


def exact_message(tag, size, sender="sender@example.org", rcpt="alice@example.test"):
    """A make_message-style message of exactly size octets (lines of at most 1000 octets)."""
    head = make_message(tag, sender=sender, rcpt=rcpt)
    end = b"END " + tag.encode() + b"\r\n"
    head = head[:-len(end)]
    fill = size - len(head) - len(end)
    if fill < 3:
        raise ValueError("size %d too small for a tagged message" % size)
    lines = []
    while fill > 0:
        n = min(1000, fill)
        if fill - n in (1, 2):  # never leave a remainder too short for "x\r\n"
            n -= 3
        lines.append(b"x" * (n - 2) + b"\r\n")
        fill -= n
    out = head + b"".join(lines) + end
    assert len(out) == size, (len(out), size)
    return out


def dot_stuff(message):
    """The DATA form of a CRLF message: leading dots doubled, then the terminator."""
    out = message if message.endswith(b"\r\n") else message + b"\r\n"
    out = re.sub(rb"(?m)^\.", b"..", out)
    return out + b".\r\n"


def message_tag(content):
    m = re.search(rb"^Subject: (\S+)\r\n", content, re.M)
    return m.group(1).decode() if m else None


def is_complete(content, tag):
    return content.endswith(b"END " + tag.encode() + b"\r\n")


def split_trace_headers(content):
    """Splits a delivered message into (Return-Path line, Received header, rest). The store adds
    exactly these two, in this order, before the message as received."""
    nl = content.find(b"\r\n")
    if nl < 0 or not content.startswith(b"Return-Path: "):
        raise AssertionError("first line is not Return-Path: %r" % content[:120])
    return_path = content[:nl + 2]
    rest = content[nl + 2:]
    if not rest.startswith(b"Received: "):
        raise AssertionError("second header is not Received: %r" % rest[:200])
    pos = rest.find(b"\r\n") + 2
    while rest[pos:pos + 1] in (b" ", b"\t"):
        nxt = rest.find(b"\r\n", pos)
        if nxt < 0:
            raise AssertionError("unterminated Received header")
        pos = nxt + 2
    return return_path, rest[:pos], rest[pos:]


def send_transaction(conn, sender, rcpts, message, mail_params=""):
    """MAIL, RCPT..., DATA, message (stuffed here), one reply each; returns the final Reply.
    Fails unless every step is accepted."""
    conn.cmd("MAIL FROM:<%s>%s" % (sender, (" " + mail_params) if mail_params else ""))
    conn.expect("250 2.1.0")
    for r in rcpts:
        conn.cmd("RCPT TO:<%s>" % r)
        conn.expect("250 2.1.5")
    conn.cmd("DATA")
    conn.expect("354")
    conn.send(dot_stuff(message))
    return conn.reply()


# ---- test case base ------------------------------------------------------------------------

class ServerTestCase(unittest.TestCase):
    """Starts servers in temp dirs, closes connections, stops servers (SIGTERM, then SIGKILL),
    prints the server log when the test failed and fails it on any sanitizer report. With
    CHECK_SCHEDULES (the delivery tests), a server still running at the end of its test must
    have no queued or deferred recipient without a next try."""

    CHECK_SCHEDULES = False

    def mkdtemp(self, prefix="clearmta-it-"):
        d = tempfile.mkdtemp(prefix=prefix)
        self.addCleanup(self._remove_dir, d)
        return d

    def _remove_dir(self, d):
        if self._test_ok():
            shutil.rmtree(d, ignore_errors=True)
        else:
            sys.stderr.write("\n[kept %s for inspection]\n" % d)

    def _test_ok(self):
        """False once this test (or one of its subtests) has a failure or error recorded.
        (_Outcome.success cannot tell: each cleanup starts with it reset.)"""
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is None:
            return False
        for t, _ in list(result.failures) + list(result.errors):
            if t is self or getattr(t, "test_case", None) is self:
                return False
        return True

    def start_server(self, extra_config=None, env=None, data_dir=None, work_dir=None,
                     wait=True, **kw):
        for attempt in range(1, PORT_TRIES + 1):
            srv = Server(data_dir or self.mkdtemp(), work_dir=work_dir,
                         extra_config=extra_config, env=env, **kw)
            self.addCleanup(self._finish_server, srv)
            try:
                srv.start(wait=wait)
                return srv
            except PortTaken:
                if "ports" in kw or attempt == PORT_TRIES:
                    raise  # the caller's own ports: only the caller can pick others

    def restart_server(self, srv, wait=True):
        """Starts srv again (same ports, dirs and config) after it stopped; the cleanup that
        start_server registered stops the new process too."""
        srv.start(wait=wait)
        return srv

    def finish_server(self, srv):
        """Stops srv now with the checks of the cleanup (which then finds it stopped)."""
        self._finish_server(srv)

    def _finish_server(self, srv):
        if srv.proc is None or srv.proc is getattr(srv, "finished_proc", None):
            return
        srv.finished_proc = srv.proc
        was_running = srv.running()
        unscheduled = []
        if was_running and self.CHECK_SCHEDULES and self._test_ok():
            unscheduled = srv.unscheduled_recipients()
        rc, killed = srv.stop()
        report = srv.sanitizer_report()
        failed = not self._test_ok()
        if failed or report:
            sys.stderr.write("\n==== server log %s ====\n%s==== end of server log ====\n"
                             % (srv.log_path, srv.log()[-20000:]))
        if report:
            self.fail("sanitizer report in the server log (printed above)")
        if unscheduled:
            self.fail("recipients left with no next try: %s" % unscheduled[:10])
        if was_running and killed:
            self.fail("server did not exit within %.0f s of SIGTERM" % STOP_TIMEOUT)
        if was_running and rc != 0:
            self.fail("server exited with status %r after SIGTERM" % rc)

    def connect(self, srv_or_port, greet=True, timeout=REPLY_TIMEOUT):
        port = srv_or_port if isinstance(srv_or_port, int) else srv_or_port.mx_port
        c = Conn(port, timeout=timeout)
        self.addCleanup(c.close)
        if greet:
            c.expect("220")
        return c

    def assertDelivered(self, srv, user, message, count=1):
        """user's Maildir holds count messages, each the message exactly after the trace."""
        msgs = srv.wait_mail(user, count)
        self.assertEqual(len(msgs), count, "%s got %d messages" % (user, len(msgs)))
        for m in msgs:
            _rp, _rcv, rest = split_trace_headers(m)
            self.assertEqual(rest, message)
        return msgs


class ClientThread(threading.Thread):
    """A thread that records its exception, for tests that drive several connections."""

    def __init__(self, target, *args):
        super().__init__(daemon=True)
        self._target_fn = target
        self._args = args
        self.error = None

    def run(self):
        try:
            self._target_fn(*self._args)
        except BaseException as e:  # reported by the test, never lost
            self.error = e


# ---- TLS and AUTH (t_20 .. t_23) -------------------------------------------------------------

AUTH_USERS = (("alice", "alice-secret"), ("bob", "bob-secret"))
_hashes = {}


def crypt_hash(password):
    """A SHA-512-crypt hash of password, made as tests/contract-server.sh makes them (openssl
    passwd -6); cached per password, so a test run costs one openssl call per password."""
    if password not in _hashes:
        out = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password.encode(),
                             stdout=subprocess.PIPE, check=True, timeout=10).stdout
        _hashes[password] = out.decode().strip()
    return _hashes[password]


def write_users_file(path, users=AUTH_USERS, extra_lines=()):
    """A users file (mode 0600): USER:HASH for each (user, password), then extra_lines as is."""
    lines = ["%s:%s" % (u, crypt_hash(p)) for u, p in users] + list(extra_lines)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def tls_client_context(minimum=None, maximum=None):
    """A client context that accepts any certificate (the server's is self-signed)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


def b64(data):
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def sasl_plain(user, password, authzid=""):
    """The base64 PLAIN message (RFC 4616): authzid NUL user NUL password."""
    return b64("%s\0%s\0%s" % (authzid, user, password))


def starttls(conn, ehlo_name="client.example"):
    """EHLO, STARTTLS, handshake, EHLO again on an open (greeted) connection; returns the
    EHLO reply inside TLS."""
    conn.ehlo(ehlo_name)
    conn.cmd("STARTTLS")
    conn.expect("220 2.0.0")
    leftover = conn.start_tls()
    if leftover:
        raise AssertionError("plaintext after 220 to STARTTLS: %r" % leftover)
    return conn.ehlo(ehlo_name)


def login(conn, user="alice", password="alice-secret"):
    """AUTH PLAIN with an initial response; fails unless 235 2.7.0."""
    conn.cmd("AUTH PLAIN " + sasl_plain(user, password))
    return conn.expect("235 2.7.0")


def auth_server(case, extra_config=(), users=AUTH_USERS, users_extra=(), **kw):
    """Starts the contract server (case: a ServerTestCase) plus a users file with users (alice/
    alice-secret, bob/bob-secret by default; users_extra: further raw lines) and extra config
    lines, as tests/contract-server.sh does; the file is DATA_DIR/users."""
    data_dir = case.mkdtemp()
    path = write_users_file(os.path.join(data_dir, "users"), users, users_extra)
    return case.start_server(extra_config=["users_file %s" % path] + list(extra_config),
                             data_dir=data_dir, **kw)
