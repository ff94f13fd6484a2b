"""t_115_tls_resume — outbound TLS session resumption (RFC 8446 §2.2): the delivery agent keeps
the session a destination gave it and offers it on the next connection there. Messages relayed
one after the other, each over a connection of its own (connection_idle_timeout 0: no reuse of
the connection itself), to a test server offering STARTTLS: the second handshake resumes. A
server that refuses resumption (no tickets, and it cannot read the one offered) still gets the
mail over a full handshake, and the session kept before is offered again afterwards."""
import unittest

from harness import auth_server, make_message
from t_30_deliver import DeliverCase


class Resumption(DeliverCase):
    def relay(self, script, count):
        """count messages to a relay running script, each submitted once the one before has
        arrived; returns whether each connection's handshake resumed."""
        relay = self.start_relay(script)
        srv = auth_server(self, extra_config=[
            "relayhost [127.0.0.1]:%d" % relay.port, "connection_idle_timeout 0",
            "retry_first 1", "retry_max 5", "queue_lifetime 600", "delay_warning 0"])
        for i in range(count):
            self.submit(srv, ["carol%d@remote.example" % i], make_message("resume-%d" % i))
            self.wait_records(relay, i + 1)
        self.wait_queue_empty(srv)
        recs = relay.records()
        self.assertEqual([r["rcpt_to"] for r in recs],
                         [["carol%d@remote.example" % i] for i in range(count)])
        self.assertEqual([r["session"] for r in recs], list(range(count)),
                         "one connection per message")
        self.assertEqual([r["tls"] for r in recs], [True] * count)
        return [r["tls_resumed"] for r in recs]

    def test_second_connection_resumes(self):
        self.assertEqual(self.relay({"starttls": True}, 3), [False, True, True])

    def test_server_refusing_resumption_gets_a_full_handshake(self):
        # Connection 1 offers the session of connection 0 to a server that cannot use it and
        # issues none; connection 2, to a server that can, resumes that session still.
        script = {"starttls": True, "sessions": [{}, {"tls_resumption": False}, {}]}
        self.assertEqual(self.relay(script, 3), [False, False, True])


if __name__ == "__main__":
    unittest.main()
