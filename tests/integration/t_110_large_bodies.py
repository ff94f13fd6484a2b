"""t_110_large_bodies — message bodies of megabytes over a real socket, cut into pieces of odd
sizes so that a line, a stuffed dot, a CRLF and the terminator fall across the server's reads:
each message arrives byte-exact in the Maildir (dots unstuffed, a line of 5000 octets kept
whole), a transaction pipelined in the same write as the end of data is read as commands, a NUL
deep inside a large body refuses the message while a NUL after the terminator is no part of
it, and a bare LF far into a large body is refused."""
import unittest

from harness import ServerTestCase, dot_stuff, make_message

SENDER = "sender@example.org"
# Piece sizes that match no buffer size of the server: each read ends at another place.
PIECES = (1, 7, 65537, 3, 131071, 2, 40000, 1, 99991)


def varied_body(tag, size):
    """A CRLF message of about size octets: lines from 0 to 998 octets, every seventh starting
    with a dot (some with two), and one line of 5000 octets."""
    lines = []
    total = 0
    i = 0
    while total < size:
        n = (i * 389) % 999
        text = (b"%d:" % i + b"abcdefghij" * 100)[:n]
        if i % 7 == 0:
            text = b"." + text
        if i % 21 == 0:
            text = b"." + text
        if i == 500:
            text = b"L" * 5000
        lines.append(text + b"\r\n")
        total += len(lines[-1])
        i += 1
    return make_message(tag, extra_body=b"".join(lines))


def send_in_pieces(conn, data):
    """Writes data in pieces of PIECES' sizes, in turn."""
    pos = 0
    k = 0
    while pos < len(data):
        n = PIECES[k % len(PIECES)]
        conn.send(data[pos:pos + n])
        pos += n
        k += 1


class LargeBodies(ServerTestCase):
    def open_data(self, conn, rcpt="alice@example.test"):
        conn.cmd("MAIL FROM:<%s>" % SENDER)
        conn.expect("250 2.1.0")
        conn.cmd("RCPT TO:<%s>" % rcpt)
        conn.expect("250 2.1.5")
        conn.cmd("DATA")
        conn.expect("354")

    def test_bodies_cut_anywhere_arrive_exact_and_pipelined_commands_follow(self):
        srv = self.start_server()
        c = self.connect(srv)
        c.ehlo()
        first = varied_body("t110-first", 3 * 1024 * 1024)
        second = varied_body("t110-second", 1024 * 1024 + 17)
        self.open_data(c)
        # The second transaction's commands come in the same write as the first's end.
        send_in_pieces(c, dot_stuff(first) + b"MAIL FROM:<%s>\r\n" % SENDER.encode())
        c.expect("250 2.0.0", timeout=60)
        c.expect("250 2.1.0")
        c.cmd("RCPT TO:<bob@example.test>")
        c.expect("250 2.1.5")
        c.cmd("DATA")
        c.expect("354")
        send_in_pieces(c, dot_stuff(second))
        c.expect("250 2.0.0", timeout=60)
        c.cmd("QUIT")
        c.expect("221")
        self.assertDelivered(srv, "alice", first)
        self.assertDelivered(srv, "bob", second)

    def test_a_nul_inside_a_large_body_refuses_it_and_one_after_the_end_does_not(self):
        srv = self.start_server()
        c = self.connect(srv)
        c.ehlo()
        body = varied_body("t110-nul", 2 * 1024 * 1024)
        at = len(body) - 300000
        nul_inside = body[:at] + b"\0" + body[at:]
        self.open_data(c)
        send_in_pieces(c, dot_stuff(nul_inside))
        c.expect("550 5.6.0", contains="NUL", timeout=60)
        # A NUL right after the terminator belongs to the next command, not to the message.
        clean = varied_body("t110-clean", 1024 * 1024)
        self.open_data(c)
        send_in_pieces(c, dot_stuff(clean) + b"NOOP\0\r\n")
        c.expect("250 2.0.0", timeout=60)
        r = c.reply()
        self.assertFalse(r.first.startswith("250"), "a NOOP with a NUL: %r" % r.text)
        c.cmd("QUIT")
        c.expect("221")
        self.assertDelivered(srv, "alice", clean)

    def test_a_bare_lf_far_into_a_large_body_refuses_it(self):
        srv = self.start_server()
        c = self.connect(srv)
        c.ehlo()
        body = varied_body("t110-bare", 2 * 1024 * 1024)
        at = body.index(b"\r\n", len(body) - 200000)
        self.open_data(c)
        send_in_pieces(c, dot_stuff(body[:at] + b"\n" + body[at + 2:]))
        c.expect("550 5.6.0", contains="bare", timeout=60)
        c.cmd("QUIT")
        c.expect("221")
        self.assertEqual(srv.maildir_files("alice"), [])


if __name__ == "__main__":
    unittest.main()
