"""t_120_session_bounds — what one client can make a session hold or write, over real sockets:
30 clients that pipeline 300 KB of HELP each and read nothing leave the server's resident memory
bounded (the replies wait in the kernel's socket buffers, the commands in the session's bounded
input) and every client still gets all its replies, in order, once it reads; an EHLO name that
is no domain cannot turn the Received: field into a comment; RCPTs past max_recipients end the
session only after the overshoot limit, logged once per transaction; duplicate recipients in
one transaction are delivered once."""
import os
import sys
import threading
import time
import unittest

from harness import (Conn, ServerTestCase, make_message, dot_stuff, send_transaction,
                     split_trace_headers, wait_until)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import procs  # noqa: E402  (a process's resident memory, as the benchmarks and soaks read it)

FLOOD_CLIENTS = 30
FLOOD_LINES = 60000
HELP_REPLY = (b"214-2.0.0 clearmta: see RFC 5321; commands:\r\n"
              b"214-2.0.0 HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP\r\n"
              b"214 2.0.0 'clearmta explain CODE' explains any reply\r\n")
# Without the bound a session answered each 64 KiB of input it read at once, about 2 MB of
# replies; the kernel's socket buffers take the first few MB of a connection (tcp_wmem), so a
# flood longer than that is what shows the process's own share: 9 MB of replies per client
# made the release build grow by about 67 MB (30 clients) and the sanitizer build by more.
# With the bound a session holds its input (64 KiB) and 16 KiB of replies. The bound is
# generous: allocator and sanitizer overheads vary.
FLOOD_GROWTH_KB = 32 * 1024
SAMPLE_SECONDS = 3.0


def send_unread(conn, data):
    """Sends what the socket takes without blocking; returns how much."""
    conn.sock.setblocking(False)
    sent = 0
    try:
        while sent < len(data):
            sent += conn.sock.send(data[sent:])
    except BlockingIOError:
        pass
    conn.sock.setblocking(True)
    return sent


def read_exactly(conn, n, timeout=30.0):
    deadline = time.monotonic() + timeout
    conn.sock.settimeout(timeout)
    got = bytearray(conn.buf)
    conn.buf = b""
    while len(got) < n and time.monotonic() < deadline:
        chunk = conn.sock.recv(1 << 20)
        if not chunk:
            break
        got += chunk
    conn.buf = bytes(got[n:])
    return bytes(got[:n])


class HelpFlood(ServerTestCase):
    def test_unread_replies_keep_memory_bounded(self):
        srv = self.start_server(extra_config=["session_memory 1M"])
        conns = []
        for i in range(FLOOD_CLIENTS):
            c = Conn(srv.mx_port, source="127.0.12.%d" % (1 + i), timeout=30)
            self.addCleanup(c.close)
            c.expect("220")
            conns.append(c)
        before_kb = procs.rss_kb(srv.proc.pid)
        flood = b"HELP\n" * FLOOD_LINES
        sent = [send_unread(c, flood) for c in conns]
        peak_kb = before_kb
        end = time.monotonic() + SAMPLE_SECONDS
        while time.monotonic() < end:
            peak_kb = max(peak_kb, procs.rss_kb(srv.proc.pid))
            time.sleep(0.05)
        self.assertLess(peak_kb - before_kb, FLOOD_GROWTH_KB,
                        "resident memory grew from %d to %d kB" % (before_kb, peak_kb))
        # Each client now reads: all its replies, in order, while it sends the rest of its flood.
        for c, n in zip(conns, sent):
            c.sock.settimeout(30)
            rest = threading.Thread(target=c.sock.sendall, args=(flood[n:],))
            rest.start()
            got = read_exactly(c, FLOOD_LINES * len(HELP_REPLY))
            rest.join()
            self.assertEqual(got, HELP_REPLY * FLOOD_LINES)
            c.cmd("QUIT")
            c.expect("221")


def comment_depths(field):
    """(depth at the end, positions of the ";" outside every comment) of a header field, as an
    RFC 5322 reader sees it: comments nest, quoted-pairs are skipped."""
    depth, semicolons, i = 0, [], 0
    while i < len(field):
        ch = field[i:i + 1]
        if depth and ch == b"\\":
            i += 2
            continue
        if ch == b"(":
            depth += 1
        elif ch == b")":
            depth -= 1
        elif ch == b";" and depth == 0:
            semicolons.append(i)
        i += 1
    return depth, semicolons


class ReceivedFrom(ServerTestCase):
    def test_ehlo_name_cannot_hide_the_rest_of_received(self):
        srv = self.start_server()
        c = self.connect(srv)
        c.ehlo("evil(hidden;x")
        r = send_transaction(c, "sender@example.org", ["alice@example.test"],
                             make_message("t120-helo"))
        self.assertEqual(r.code, 250, r.text)
        msg = srv.wait_mail("alice", 1)[0]
        _rp, received, _rest = split_trace_headers(msg)
        self.assertTrue(received.startswith(
            b"Received: from unknown ([127.0.0.1] helo=evil\\(hidden;x)\r\n\tby "
            b"mx.example.test (clearmta) with ESMTP id "), received)
        depth, semicolons = comment_depths(received)
        self.assertEqual(depth, 0, received)
        self.assertEqual(len(semicolons), 1, received)  # the one before the date
        self.assertRegex(received[semicolons[0]:], rb"^; \w{3}, \d\d \w{3} \d{4} ")
        self.assertIn(b"for <alice@example.test>", received[:semicolons[0]])


class RecipientOvershoot(ServerTestCase):
    def test_overshoot_ends_the_session_and_is_logged_once(self):
        # 2 recipients, 30 more answered 452 as no error, then 10 errors (max_errors): the 40th
        # extra RCPT gets its 452 and the 421 that closes; the server stops reading after it.
        srv = self.start_server(extra_config=["max_recipients 2", "max_recipients_overshoot 30"])
        c = self.connect(srv)
        c.ehlo()
        c.send(b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<alice@example.test>\r\n"
               b"RCPT TO:<bob@example.test>\r\n" + b"RCPT TO:<alice@example.test>\r\n" * 100)
        for _ in range(3):
            c.expect("250")
        for _ in range(40):
            c.expect("452 4.5.3")
        c.expect("421 4.7.0")
        self.assertTrue(c.closed())
        self.assertTrue(wait_until(lambda: "disconnect from" in srv.log(), 10))
        over = [l for l in srv.log().splitlines() if "too many recipients" in l]
        self.assertEqual(len(over), 1, over)
        self.assertIn("reject: RCPT from [127.0.0.1]: 452 4.5.3 Error: too many recipients "
                      "(40 RCPT refused in this transaction)", over[0])

    def test_within_the_overshoot_the_message_goes_through(self):
        srv = self.start_server(extra_config=["max_recipients 1"])
        c = self.connect(srv)
        c.ehlo()
        c.send(b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<alice@example.test>\r\n" +
               b"RCPT TO:<bob@example.test>\r\n" * 50 + b"DATA\r\n")
        c.expect("250")
        c.expect("250")
        for _ in range(50):
            c.expect("452 4.5.3")
        c.expect("354")
        c.send(dot_stuff(make_message("t120-overshoot")))
        c.expect("250")
        srv.wait_mail("alice", 1)
        self.assertTrue(wait_until(
            lambda: "(50 RCPT refused in this transaction)" in srv.log(), 10), srv.log())
        self.assertEqual(srv.log().count("too many recipients"), 1)


class DuplicateRecipients(ServerTestCase):
    def test_one_copy_per_mailbox(self):
        srv = self.start_server()
        c = self.connect(srv)
        c.ehlo()
        rcpts = ("alice@example.test", "ALICE@example.test", '"alice"@example.test',
                 "alice@EXAMPLE.TEST", "bob@example.test")
        r = send_transaction(c, "sender@example.org", rcpts, make_message("t120-dup"))
        self.assertEqual(r.code, 250, r.text)
        srv.wait_mail("bob", 1)
        srv.wait_mail("alice", 1)
        # a second copy would come with the first: give it a moment to show up
        self.assertFalse(wait_until(lambda: len(srv.maildir_files("alice")) > 1, 1.0))
        self.assertEqual(len(srv.maildir_files("alice")), 1)
        self.assertEqual(len(srv.maildir_files("bob")), 1)
        self.assertRegex(srv.log(), r"nrcpt=5\b")  # the log counts the RCPTs accepted


if __name__ == "__main__":
    unittest.main()
