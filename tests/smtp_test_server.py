#!/usr/bin/env python3
"""tests/smtp_test_server.py — a scriptable SMTP (or LMTP, RFC 2033) server for testing
clearmta's delivery agent (Python 3.11+ standard library, asyncio). Every reply can be scripted
per command and per recipient; every transaction received is recorded as one JSON line.

  python3 tests/smtp_test_server.py --port P --script FILE [--record FILE] [--starttls]
                                    [--auth USER:PASSWORD]

or, from a test:  srv = SMTPTestServer(script, record_path); srv.start(); ...; srv.stop()
(unix_path=PATH listens on that Unix socket instead of host:port; gauge=ConnectionGauge(),
shared by several servers, counts the connections open at once across them.)

The script (JSON) holds defaults and optional per-connection overrides:
  {"starttls": false,                     offer STARTTLS (self-signed cert, openssl CLI)
   "tls_resumption": true,                false: this session's TLS context issues no
                                          tickets and cannot use earlier ones (a server
                                          that refuses resumption: every handshake is full)
   "greeting": "220 test.example ESMTP",
   "ehlo": null,                          a reply for EHLO instead of 250 + extensions
   "mail": "250 2.1.0 Ok",
   "rcpt": "250 2.1.5 Ok",                default RCPT reply
   "rcpt_by_address": {"bad@x": "550 5.1.1 No such user"},
   "rcpt_max": 0,                         >0: "452 4.5.3 Too many recipients" after N accepted
   "data": "354 Go ahead",
   "data_end": "250 2.0.0 Ok: queued",
   "auth": null,                          {"user": U, "password": P}: offer AUTH PLAIN LOGIN
                                          (after STARTTLS when STARTTLS is offered) and accept
                                          only these credentials (else 535 5.7.8)
   "auth_required": false,                MAIL before a successful AUTH gets 530 5.7.0
   "dsn": false,                          offer DSN (RFC 3461) in the EHLO reply
   "chunking": false,                     offer CHUNKING (RFC 3030): BDAT chunks are read, each
   "bdat": "250 2.0.0 Chunk accepted",    but the LAST gets this reply (a 4xx/5xx drops the
                                          transaction); the LAST gets data_end, as "." does
   "rcpt_delay": 0, "data_end_delay": 0,  seconds to wait before each RCPT / end-of-data reply
                                          (a slow server)
   "busy_until": 0,                       Unix time before which every connection is greeted
   "busy_greeting": "421 4.7.0 ...",      with busy_greeting (a server shedding load)
   "lmtp": false,                         speak LMTP: LHLO only (EHLO/HELO get 500), and after
                                          the data one reply per accepted recipient:
   "data_end_by_address": {"full@x": "552 5.2.2 Mailbox full"}   (others get data_end)
   "sessions": [{...}, {...}]}            connection n (0-based) uses sessions[n] over the
                                          defaults; connections past the list use the last
A reply "421 ..." is sent and the connection closed; "close" drops it without a reply;
"hang" never answers (the client's timeout fires). A record line:
  {"session": n, "tls": bool, "tls_resumed": bool, "mail_from": "...", "rcpt_to": [...accepted...],
   "rcpt_params": {address: "NOTIFY=… ORCPT=…" (the parameters after the path, as sent)},
   "data": "<latin-1 text of the unstuffed message>", "reply": "250 ...",
   "auth": "user" or null, "mail_time": unix time of MAIL, "end_time": unix time of the final
   "." (before any data_end_delay), "lhlo": bool (the session opened with LHLO),
   "replies": {address: the reply after the data} (LMTP), "chunks": BDAT chunks of the
   message (0: it came with DATA)}
"""
import argparse
import asyncio
import base64
import binascii
import json
import os
import ssl
import subprocess
import tempfile
import threading
import time

DEFAULTS = {
    "starttls": False,
    "tls_resumption": True,
    "greeting": "220 test.example ESMTP smtp_test_server",
    "ehlo": None,
    "mail": "250 2.1.0 Ok",
    "rcpt": "250 2.1.5 Ok",
    "rcpt_by_address": {},
    "rcpt_max": 0,
    "data": "354 End data with <CR><LF>.<CR><LF>",
    "data_end": "250 2.0.0 Ok: queued",
    "auth": None,
    "auth_required": False,
    "dsn": False,
    "chunking": False,
    "bdat": "250 2.0.0 Chunk accepted",
    "rcpt_delay": 0,
    "data_end_delay": 0,
    "busy_until": 0,
    "busy_greeting": "421 4.7.0 Too many connections, try again later",
    "lmtp": False,
    "data_end_by_address": {},
    "sessions": [],
}
MAX_LINE = 4096
MAX_DATA = 64 * 1024 * 1024


def self_signed(directory):
    """A key and certificate for CN=test.example, made by the openssl CLI."""
    key, cert = os.path.join(directory, "key.pem"), os.path.join(directory, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=test.example"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return cert, key


class Hangup(Exception):
    pass


class ConnectionGauge:
    """Connections open now and the most open at once, counted by every SMTPTestServer given
    it (each on its own thread): what a client's global cap on connections must stay under."""

    def __init__(self):
        self._lock = threading.Lock()
        self.open = 0
        self.peak = 0

    def opened(self):
        """Counts a new connection; returns the token its closed() takes."""
        with self._lock:
            self.open += 1
            self.peak = max(self.peak, self.open)
        return [True]

    def closed(self, token):
        """Counts the connection of token closed, once however often it is called: at QUIT,
        before the 221 (the client may connect again the moment it reads it, and this
        server's thread may see its close only later), and when the session ends."""
        with self._lock:
            if token[0]:
                token[0] = False
                self.open -= 1


class SMTPTestServer:
    def __init__(self, script=None, record_path=None, port=0, host="127.0.0.1", unix_path=None,
                 gauge=None):
        self.unix_path = unix_path
        self.gauge = gauge  # a ConnectionGauge, possibly shared by several servers, or None
        self.script = dict(DEFAULTS)
        self.script.update(script or {})
        self.record_path = record_path
        self.host, self.port = host, port
        self.sessions = 0
        self.loop = None
        self.thread = None
        self._server = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._writers = set()  # every connection accepted: stop() closes them all
        self._tls = None
        if any(s.get("starttls") for s in [self.script] + list(self.script["sessions"])):
            self._tmp = tempfile.TemporaryDirectory(prefix="smtp-test-tls-")
            cert, key = self_signed(self._tmp.name)
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(cert, key)
            # Its own ticket keys (it cannot read the other's tickets) and none issued.
            self._tls_no_resumption = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls_no_resumption.load_cert_chain(cert, key)
            self._tls_no_resumption.num_tickets = 0
            self._tls_no_resumption.options |= ssl.OP_NO_TICKET

    # -- scripting --
    def settings(self, n):
        s = dict(self.script)
        if self.script["sessions"]:
            s.update(self.script["sessions"][min(n, len(self.script["sessions"]) - 1)])
        return s

    def record(self, entry):
        if not self.record_path:
            return
        with self._lock, open(self.record_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    # -- the protocol --
    async def reply(self, w, text):
        """Sends a scripted reply; raises Hangup for 421/close, waits forever for hang."""
        if text == "hang":
            await asyncio.sleep(3600)
        if text == "close":
            raise Hangup()
        lines = text.split("\n")
        code = lines[0][:3]
        out = "".join("%s-%s\r\n" % (code, l[4:]) for l in lines[:-1]) + lines[-1] + "\r\n"
        w.write(out.encode("latin-1"))
        await w.drain()
        if code == "421":
            raise Hangup()

    async def read_line(self, r):
        line = await r.readline()
        if not line:
            raise Hangup()
        if len(line) > MAX_LINE:
            raise Hangup()
        return line.decode("latin-1").rstrip("\r\n")

    async def read_data(self, r):
        chunks, size = [], 0
        while True:
            line = await r.readline()
            if not line:
                raise Hangup()
            if line == b".\r\n":
                return b"".join(chunks)
            if line.startswith(b"."):
                line = line[1:]
            size += len(line)
            if size > MAX_DATA:
                raise Hangup()
            chunks.append(line)

    async def end_of_data(self, w, s, entry):
        """The end of the message data (".", or the LAST chunk): records the transaction with
        its data_end reply, then sends that reply (one per recipient over LMTP)."""
        rcpts = entry["rcpt_to"]
        entry["tls_resumed"] = bool(entry["tls"]) and w.get_extra_info("ssl_object").session_reused
        entry["reply"] = s["data_end"]
        entry["end_time"] = time.time()
        # RFC 2033 §4.2: one reply per accepted recipient, in RCPT order
        replies = {a: s["data_end_by_address"].get(a, s["data_end"]) for a in rcpts}
        if s["lmtp"]:
            entry["replies"] = replies
        if s["data_end_delay"]:
            await asyncio.sleep(s["data_end_delay"])
        # Recorded before the reply (whatever it is: tests look at "reply"), so a client
        # killed after our 250 finds the transaction on record.
        self.record(entry)
        if s["lmtp"]:
            for a in rcpts:
                await self.reply(w, replies[a])
        else:
            await self.reply(w, s["data_end"])

    @staticmethod
    def bdat_args(arg):
        """(size, last) of "BDAT <size> [LAST]" (RFC 3030 §2); size None when malformed."""
        words = arg.split()
        if not 1 <= len(words) <= 2 or not words[0].isdigit() or int(words[0]) > MAX_DATA:
            return None, False
        if len(words) == 2 and words[1].upper() != "LAST":
            return None, False
        return int(words[0]), len(words) == 2

    @staticmethod
    def path_of(arg):
        start, end = arg.find("<"), arg.find(">")
        return arg[start + 1:end] if 0 <= start < end else arg.strip()

    @staticmethod
    def params_of(arg):
        """The ESMTP parameters after the path, as sent."""
        end = arg.find(">")
        return arg[end + 1:].strip() if end >= 0 else ""

    @staticmethod
    def b64(text):
        """Decoded base64 as latin-1 text; None when it is not base64."""
        try:
            return base64.b64decode(text.strip(), validate=True).decode("latin-1")
        except (binascii.Error, ValueError):
            return None

    async def challenge(self, r, w, prompt):
        """One 334 round of AUTH: sends prompt (base64), returns the decoded answer; None when
        the client cancelled ("*") or sent something that is not base64."""
        await self.reply(w, "334 " + base64.b64encode(prompt.encode()).decode())
        line = await self.read_line(r)
        return None if line == "*" else self.b64(line)

    async def auth(self, r, w, s, arg):
        """AUTH PLAIN / LOGIN (RFC 4954, RFC 4616); returns the user name on success."""
        words = arg.split()
        mech = words[0].upper() if words else ""
        initial = words[1] if len(words) > 1 else None
        if mech == "PLAIN":
            text = self.b64(initial) if initial else await self.challenge(r, w, "")
            parts = text.split("\0") if text is not None else []
            user, password = (parts[1], parts[2]) if len(parts) == 3 else (None, None)
        elif mech == "LOGIN":
            user = self.b64(initial) if initial else await self.challenge(r, w, "Username:")
            password = await self.challenge(r, w, "Password:") if user is not None else None
        else:
            await self.reply(w, "504 5.5.4 Unrecognized authentication type")
            return None
        if user is None or password is None:
            await self.reply(w, "501 5.5.2 Cannot decode the response")
            return None
        if user != s["auth"].get("user") or password != s["auth"].get("password"):
            await self.reply(w, "535 5.7.8 Authentication credentials invalid")
            return None
        await self.reply(w, "235 2.7.0 Authentication successful")
        return user

    def accepted(self, r, w):
        """Keeps the connection, before its session runs, for stop() to close: a session
        cancelled before it started would never close it, and its client would wait for a
        reply that never comes, as it would not from a server that died."""
        self._writers.add(w)
        return self.session(r, w)

    async def session(self, r, w):
        gauged = self.gauge.opened() if self.gauge else None
        try:
            await self._session(r, w, gauged)
        finally:
            if gauged:
                self.gauge.closed(gauged)

    async def _session(self, r, w, gauged=None):
        n = self.sessions
        self.sessions += 1
        s = self.settings(n)
        tls = False
        lhlo = False
        user = None
        mail, rcpts, params, mail_time, chunks = None, [], {}, 0.0, []
        # AUTH is offered inside TLS when STARTTLS is (as real submission servers do).
        def auth_offered():
            return bool(s["auth"]) and user is None and (tls or not s["starttls"])
        try:
            busy = time.time() < s["busy_until"]
            await self.reply(w, s["busy_greeting"] if busy else s["greeting"])
            while True:
                line = await self.read_line(r)
                verb = line[:4].upper()
                arg = line[4:]
                if verb in ("EHLO", "HELO", "LHLO"):
                    mail, rcpts = None, []
                    if (verb == "LHLO") != bool(s["lmtp"]):
                        await self.reply(w, "500 5.5.1 Command unrecognized")
                        continue
                    lhlo = verb == "LHLO"
                    if s["ehlo"]:
                        await self.reply(w, s["ehlo"])
                        continue
                    ext = ["test.example", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES",
                           "SIZE 52428800"]
                    if s["dsn"]:
                        ext.append("DSN")
                    if s["chunking"]:
                        ext.append("CHUNKING")
                    if s["starttls"] and not tls and self._tls:
                        ext.append("STARTTLS")
                    if auth_offered():
                        ext.append("AUTH PLAIN LOGIN")
                    await self.reply(w, "\n".join("250 " + e for e in ext))
                elif verb == "STAR" and line.upper() == "STARTTLS" and s["starttls"] and not tls:
                    await self.reply(w, "220 2.0.0 Ready to start TLS")
                    await w.start_tls(self._tls if s["tls_resumption"]
                                      else self._tls_no_resumption)
                    tls = True
                    mail, rcpts = None, []
                elif verb == "AUTH" and auth_offered():
                    user = await self.auth(r, w, s, arg)
                elif verb == "MAIL":
                    mail, rcpts, params, mail_time = None, [], {}, time.time()
                    chunks = []
                    if s["auth_required"] and user is None:
                        await self.reply(w, "530 5.7.0 Authentication required")
                        continue
                    await self.reply(w, s["mail"])
                    if s["mail"].startswith("2"):
                        mail = self.path_of(arg)
                elif verb == "RCPT":
                    addr = self.path_of(arg)
                    text = s["rcpt_by_address"].get(addr, s["rcpt"])
                    if s["rcpt_max"] and len(rcpts) >= s["rcpt_max"]:
                        text = "452 4.5.3 Too many recipients"
                    if s["rcpt_delay"]:
                        await asyncio.sleep(s["rcpt_delay"])
                    await self.reply(w, text)
                    if text.startswith("2"):
                        rcpts.append(addr)
                        params[addr] = self.params_of(arg)
                elif verb == "DATA":
                    if mail is None or not rcpts:
                        await self.reply(w, "503 5.5.1 Bad sequence of commands")
                        continue
                    await self.reply(w, s["data"])
                    if not s["data"].startswith("3"):
                        continue
                    data = await self.read_data(r)
                    entry = {"session": n, "tls": tls, "mail_from": mail, "rcpt_to": rcpts,
                             "rcpt_params": params, "data": data.decode("latin-1"),
                             "auth": user, "mail_time": mail_time, "lhlo": lhlo, "chunks": 0}
                    await self.end_of_data(w, s, entry)
                    mail, rcpts = None, []
                elif verb == "BDAT" and s["chunking"]:
                    size, last = self.bdat_args(arg)
                    if size is None:
                        await self.reply(w, "501 5.5.4 Syntax: BDAT size [LAST]")
                        raise Hangup()  # where the chunk ends is unknown: no way on
                    chunk = await r.readexactly(size)
                    if mail is None or not rcpts:
                        await self.reply(w, "503 5.5.1 Bad sequence of commands")
                        continue
                    chunks.append(chunk)
                    if last:
                        entry = {"session": n, "tls": tls, "mail_from": mail, "rcpt_to": rcpts,
                                 "rcpt_params": params,
                                 "data": b"".join(chunks).decode("latin-1"), "auth": user,
                                 "mail_time": mail_time, "lhlo": lhlo, "chunks": len(chunks)}
                        await self.end_of_data(w, s, entry)
                        mail, rcpts = None, []
                        continue
                    await self.reply(w, s["bdat"])
                    if not s["bdat"].startswith("2"):
                        mail, rcpts = None, []
                elif verb == "RSET":
                    mail, rcpts = None, []
                    await self.reply(w, "250 2.0.0 Ok")
                elif verb == "NOOP":
                    await self.reply(w, "250 2.0.0 Ok")
                elif verb == "QUIT":
                    if gauged:
                        self.gauge.closed(gauged)
                    await self.reply(w, "221 2.0.0 Bye")
                    break
                else:
                    await self.reply(w, "502 5.5.1 Command not implemented")
        except (Hangup, ConnectionError, asyncio.IncompleteReadError, ssl.SSLError,
                asyncio.CancelledError):
            pass  # cancelled: stop() with the session open (an idle client connection)
        finally:
            w.close()

    # -- running --
    async def _main(self):
        if self.unix_path:
            self._server = await asyncio.start_unix_server(self.accepted, self.unix_path)
        else:
            self._server = await asyncio.start_server(self.accepted, self.host, self.port)
            self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        async with self._server:
            await self._server.serve_forever()

    def start(self):
        """Runs the server on its own thread; returns once it listens (self.port)."""
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("test SMTP server did not start")
        return self

    def _run(self):
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except asyncio.CancelledError:
            pass
        # Sessions cancelled by stop() finish here, before the loop closes under them.
        pending = asyncio.all_tasks(self.loop)
        for t in pending:
            t.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self._close_all())

    async def _close_all(self):
        """Closes every connection and waits until each socket is closed: a close the loop had
        not yet carried out when it stopped would otherwise never happen."""
        for w in self._writers:
            w.close()
        closed = asyncio.gather(*(w.wait_closed() for w in self._writers), return_exceptions=True)
        try:
            await asyncio.wait_for(closed, 5)
        except asyncio.TimeoutError:
            pass  # a TLS close the peer never answers: its socket goes with the loop

    def stop(self):
        if self.loop and self._server and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._server.close)
            self.loop.call_soon_threadsafe(self._cancel_all)
        if self.thread:
            self.thread.join(10)
        if self.loop and not self.loop.is_running():
            self.loop.close()
        if self._tls:
            self._tmp.cleanup()

    def _cancel_all(self):
        for t in asyncio.all_tasks(self.loop):
            t.cancel()

    def records(self):
        """The transactions recorded so far. A line the server is still writing (no newline yet)
        is not one of them."""
        if not self.record_path or not os.path.exists(self.record_path):
            return []
        with open(self.record_path, encoding="utf-8") as f:
            return [json.loads(l) for l in f if l.endswith("\n") and l.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--script", help="JSON script (see the module docstring)")
    ap.add_argument("--record", help="JSON lines file for the transactions received")
    ap.add_argument("--starttls", action="store_true", help="offer STARTTLS")
    ap.add_argument("--auth", metavar="USER:PASSWORD",
                    help="offer AUTH and require it before MAIL with these credentials")
    a = ap.parse_args()
    script = {}
    if a.script:
        with open(a.script, encoding="utf-8") as f:
            script = json.load(f)
    if a.starttls:
        script["starttls"] = True
    if a.auth:
        user, _, password = a.auth.partition(":")
        script.update(auth={"user": user, "password": password}, auth_required=True)
    srv = SMTPTestServer(script, a.record, a.port)
    srv.loop = asyncio.new_event_loop()
    try:
        srv.loop.run_until_complete(srv._main())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
