"""tests/integration/console_http.py — helpers for the console tests (t_80 … t_84): a contract
server with its HTTP listener on a free port (CONTRACT_HTTP), plain HTTP requests with any Host
and headers, and /metrics parsed into {(name, ((label, value), ...)): value}. Standard library."""
import http.client
import os
import re
import sys

from harness import (PORT_TRIES, PortTaken, ServerTestCase, dot_stuff, free_ports, login,
                     make_message, send_transaction, starttls)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from smtp_test_server import SMTPTestServer  # noqa: E402

HTTP_TIMEOUT = 10.0

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """The samples of a Prometheus text exposition; comments skipped."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise AssertionError("not a sample line: %r" % line)
        labels = tuple(sorted(LABEL.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def text(self):
        return self.body.decode("utf-8", "replace")


def request(port, method, path, body=None, headers=None, host=None):
    """One request on its own connection; Host is 127.0.0.1:port unless given."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        c.putheader("Host", host if host is not None else "127.0.0.1:%d" % port)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        data = body.encode() if isinstance(body, str) else body
        if data is not None:
            c.putheader("Content-Length", str(len(data)))
        c.endheaders(data)
        r = c.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        c.close()


class ConsoleCase(ServerTestCase):
    """A contract server with the console on self.http_port."""

    def start_console(self, env=None):
        for attempt in range(1, PORT_TRIES + 1):
            # One call for all three: ports picked apart may repeat (each pick frees its socket).
            mx_port, sub_port, self.http_port = free_ports(3)
            e = {"CONTRACT_HTTP": str(self.http_port)}
            e.update(env or {})
            try:
                return self.start_server(env=e, ports=(mx_port, sub_port))
            except PortTaken:
                if attempt == PORT_TRIES:
                    raise

    def start_relayed_console(self, relay_reply=None):
        """A console server relaying to a test SMTP server that answers every RCPT with
        relay_reply (None: no relay listens, connections are refused); returns (srv, port)."""
        relay_port = free_ports(1)[0]
        if relay_reply:
            rec = os.path.join(self.mkdtemp(), "received.jsonl")
            relay = SMTPTestServer({"rcpt": relay_reply}, rec, port=relay_port).start()
            self.addCleanup(relay.stop)
        srv = self.start_console(env={"CONTRACT_RELAY": "127.0.0.1:%d" % relay_port,
                                      "CONTRACT_FAST_RETRY": "1"})
        return srv, relay_port

    def submit_remote(self, srv, tag):
        """alice submits a message for carol@remote.example; returns its queue id."""
        c = self.connect(srv.sub_port)
        starttls(c)
        login(c)
        r = send_transaction(c, "alice@example.test", ["carol@remote.example"],
                             make_message(tag))
        c.cmd("QUIT")
        return r.text.split()[-1]

    def session_token(self):
        """The CSRF token the page sets, and the headers that carry it on an action."""
        token = self.get("/").header("Set-Cookie").split(";")[0].split("=")[1]
        return token, {"Cookie": "clearmta_csrf=" + token, "X-CSRF-Token": token}

    def get(self, path, **kw):
        return request(self.http_port, "GET", path, **kw)

    def post(self, path, body=b"", **kw):
        return request(self.http_port, "POST", path, body=body, **kw)

    def metrics(self):
        r = self.get("/metrics")
        self.assertEqual(r.status, 200, r.text())
        return parse_metrics(r.text())

    def session_with_one_unknown(self, srv):
        """EHLO, MAIL, RCPT unknown (550 5.1.1), RCPT alice, DATA, the message, QUIT."""
        c = self.connect(srv)
        c.cmd("EHLO client.example")
        c.expect("250")
        c.cmd("MAIL FROM:<sender@example.org>")
        c.expect("250 2.1.0")
        c.cmd("RCPT TO:<nobody@example.test>")
        c.expect("550 5.1.1")
        c.cmd("RCPT TO:<alice@example.test>")
        c.expect("250 2.1.5")
        c.cmd("DATA")
        c.expect("354")
        c.send(dot_stuff(make_message("console-metrics")))
        c.expect("250 2.0.0")
        c.cmd("QUIT")
        c.expect("221 2.0.0")
        c.close()
