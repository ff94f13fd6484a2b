"""t_87_held_memory — checks on receipt hold each message in memory until its end; all sessions
together hold at most 32 messages of the size limit: with max_message_size 1000000, 33
sessions each 900 KB into their DATA, one of them is answered 451 (try again later) while the
others are stored, and the server keeps serving."""
import socket
import unittest

from authdns import TestDNS
from harness import ServerTestCase, wait_until

SESSIONS = 33
CHUNK = (b"x" * 998 + b"\r\n") * 900  # 900 KB of lines


def reply(f):
    """The code of one (possibly multi-line) SMTP reply read from file f."""
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return int(line[:3])


def unread(pid, port):
    """Bytes that arrived on port for process pid and that it has not read yet."""
    total = 0
    for table in ("tcp", "tcp6"):
        with open("/proc/%d/net/%s" % (pid, table)) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    total += int(fields[4].split(":")[1], 16)
    return total


class HeldMemory(ServerTestCase):
    def test_held_messages_are_bounded(self):
        dns = TestDNS({})
        self.addCleanup(dns.stop)
        srv = self.start_server(extra_config=["resolver %s" % dns.resolver, "spf_check tag", "dmarc_check tag",
                                              "max_message_size 1000000"])
        sessions = []
        try:
            for i in range(SESSIONS):
                s = socket.create_connection(("127.0.0.1", srv.mx_port), timeout=60)
                f = s.makefile("rb")
                sessions.append((s, f))
                self.assertEqual(reply(f), 220)
                for line, code in ((b"EHLO client.example", 250),
                                   (b"MAIL FROM:<x@sender.example>", 250),
                                   (b"RCPT TO:<alice@example.test>", 250), (b"DATA", 354)):
                    s.sendall(line + b"\r\n")
                    self.assertEqual(reply(f), code, line)
                s.sendall(b"Subject: held %d\r\n\r\n" % i + CHUNK)
            # every session's 900 KB read (held) before any ends
            self.assertTrue(wait_until(lambda: unread(srv.proc.pid, srv.mx_port) == 0, 30))
            codes = []
            for s, f in sessions:
                s.sendall(b".\r\n")
                codes.append(reply(f))
        finally:
            for s, f in sessions:
                f.close()
                s.close()
        self.assertIn(451, codes, srv.log())
        self.assertGreaterEqual(codes.count(250), SESSIONS - 2, codes)
        self.assertRegex(srv.log(), r"messages held in memory reach \d+ bytes: try again later")
        self.assertTrue(srv.running())


if __name__ == "__main__":
    unittest.main()
