"""t_100_relay_chunking — the delivery agent sends BDAT chunks (RFC 3030) to a server that offers
CHUNKING: byte-exact in one chunk or in several, a 5xx to the LAST chunk bounces, a 4xx to a
chunk defers and the retry delivers, a server without CHUNKING still gets DATA; and clearmta's
own server, which offers CHUNKING, receives relayed mail byte-exact."""
import re
import unittest

from harness import make_message
from t_30_deliver import DeliverCase

CHUNK_MAX = 64 * 1024


class Chunking(DeliverCase):
    def test_one_chunk_byte_exact(self):
        srv, relay = self.start_pair({"chunking": True})
        msg = make_message("bdat-one", body_size=3000, extra_body=b".leading dot\r\n..two\r\n")
        self.submit(srv, ["carol@remote.example"], msg)
        rec = self.wait_records(relay, 1)[0]
        self.assertEqual(rec["chunks"], 1)
        self.assertRelayed(rec, msg)
        self.assertIsNotNone(srv.wait_log(r"to=<carol@remote\.example>, .*status=sent "
                                          r"\(250 2\.0\.0 Ok: queued\) reason=delivered"))
        self.wait_queue_empty(srv)

    def test_large_message_in_several_chunks(self):
        srv, relay = self.start_pair({"chunking": True})
        msg = make_message("bdat-big", body_size=5 * CHUNK_MAX, extra_body=b".dot\r\n")
        self.submit(srv, ["carol@remote.example", "dave@remote.example"], msg)
        rec = self.wait_records(relay, 1)[0]
        self.assertGreaterEqual(rec["chunks"], 5)
        self.assertEqual(sorted(rec["rcpt_to"]), ["carol@remote.example", "dave@remote.example"])
        self.assertRelayed(rec, msg)
        self.wait_queue_empty(srv)

    def test_5xx_to_the_last_chunk_bounces(self):
        srv, relay = self.start_pair({"chunking": True, "data_end": "554 5.6.0 Content rejected"})
        self.submit(srv, ["carol@remote.example"], make_message("bdat-554"))
        _text, _msg, rcpts, _orig = self.report_parts(self.wait_reports(srv)[0])
        self.assertEqual([f["status"] for f in rcpts], ["5.6.0"])
        self.assertIsNotNone(srv.wait_log(r"to=<carol@remote\.example>, .*dsn=5\.6\.0, "
                                          r"status=bounced \(554 5\.6\.0 Content rejected\)"))
        self.assertEqual(len(relay.records()), 1, "a 5xx must not be retried")
        self.wait_queue_empty(srv)

    def test_4xx_to_a_chunk_defers_and_the_retry_delivers(self):
        srv, relay = self.start_pair({"chunking": True, "sessions": [
            {"bdat": "452 4.3.1 Insufficient system storage"}, {}]})
        msg = make_message("bdat-452", body_size=2 * CHUNK_MAX)
        self.submit(srv, ["carol@remote.example"], msg)
        self.assertIsNotNone(srv.wait_log(r"to=<carol@remote\.example>, .*attempt=1, "
                                          r"dsn=4\.3\.1, status=deferred"))
        rec = self.wait_records(relay, 1)[0]
        self.assertEqual(rec["session"], 1)
        self.assertRelayed(rec, msg)
        self.assertIsNotNone(srv.wait_log(r"attempt=2, dsn=2\.0\.0, status=sent"))
        self.wait_queue_empty(srv)
        self.assertEqual(srv.maildir_files("alice"), [], "a deferral must not bounce")

    def test_without_chunking_data_is_used(self):
        srv, relay = self.start_pair()
        msg = make_message("bdat-none", extra_body=b".dot\r\n")
        self.submit(srv, ["carol@remote.example"], msg)
        rec = self.wait_records(relay, 1)[0]
        self.assertEqual(rec["chunks"], 0)
        self.assertRelayed(rec, msg)


class ToClearmta(DeliverCase):
    def test_relayed_to_clearmta_byte_exact(self):
        receiver = self.start_server(extra_config=["domain remote.example users carol"])
        c = self.connect(receiver.mx_port)
        self.assertRegex(c.ehlo().text, r"(?m)^250[ -]CHUNKING$")
        c.cmd("QUIT")
        srv = self.start_server(env={"CONTRACT_RELAY": "127.0.0.1:%d" % receiver.mx_port,
                                     "CONTRACT_FAST_RETRY": "1"})
        small = make_message("bdat-own", extra_body=b".dot\r\n", rcpt="carol@remote.example")
        big = make_message("bdat-own-big", body_size=3 * CHUNK_MAX, extra_body=b".\r\n",
                           rcpt="carol@remote.example")
        self.submit(srv, ["carol@remote.example"], small)
        self.submit(srv, ["carol@remote.example"], big)
        self.assertIsNotNone(srv.wait_log(r"to=<carol@remote\.example>, .*status=sent.*\n"
                                          r"(.*\n)*.*to=<carol@remote\.example>, .*status=sent"))
        got = sorted(receiver.wait_mail("carol", 2), key=len)
        for raw, want in zip(got, (small, big)):
            head, sep, _rest = raw.partition(want)
            self.assertEqual(sep, want, "message not found whole")
            self.assertTrue(raw.endswith(want))
            self.assertEqual(len(re.findall(rb"\r\nReceived: ", b"\r\n" + head)), 2, head)
        self.wait_queue_empty(srv)


if __name__ == "__main__":
    unittest.main()
