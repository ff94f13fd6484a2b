"""t_31_mx — MX routing through real DNS: a dnsmasq test server (tests/dns-server.sh) on a
loopback port answers the look-ups c-ares makes. MX preference and fallback to the next MX when
the best one refuses, implicit MX (an A record only), null MX (RFC 7505) → 5.1.10 bounce,
NXDOMAIN → 5.1.2 bounce, a refused look-up → deferred 4.4.3. RFC 5321 §5.1.

MX targets listen on port 25 in real life; here `route DOMAIN smtp:HOST:PORT` (no brackets:
look up HOST's MX, then use PORT) sends a test domain through the MX records of HOST to the test
servers' port. Direct MX routing (no route line) is tested only for outcomes that never connect.
The MX hosts have addresses 127.0.0.1 (test server A), 127.0.0.2 (test server B, same port)
and 127.0.0.3 (nothing listens: connection refused)."""
import os
import random
import signal
import socket
import struct
import subprocess
import unittest

from harness import REPO, auth_server, free_ports, make_message, wait_until
from t_30_deliver import DeliverCase

DNS_SCRIPT = os.path.join(REPO, "tests", "dns-server.sh")
RETRY_WAIT = 30.0

RECORDS = """\
# MX preference: both hosts up, the best (A) must get the mail.
mx-host=prefset.test,best.prefset.test,10
mx-host=prefset.test,second.prefset.test,20
host-record=best.prefset.test,127.0.0.1
host-record=second.prefset.test,127.0.0.2
# Fallback: the best refuses connections, the next one (A) takes the mail.
mx-host=fallset.test,dead.fallset.test,5
mx-host=fallset.test,alive.fallset.test,50
host-record=dead.fallset.test,127.0.0.3
host-record=alive.fallset.test,127.0.0.1
# Implicit MX: no MX record, an address only (RFC 5321 §5.1).
host-record=amx.test,127.0.0.1
# Null MX (RFC 7505): the domain accepts no mail.
mx-host=nullmx.test,.,0
host-record=nullmx.test,127.0.0.1
"""


def dns_query(port, name, qtype):
    """One UDP query to 127.0.0.1:port; returns (rcode, answer count)."""
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        s.sendto(q, ("127.0.0.1", port))
        data = s.recv(4096)
    if len(data) < 12 or data[:2] != q[:2]:
        raise OSError("bad DNS answer")
    return data[3] & 15, struct.unpack(">H", data[6:8])[0]


class DNSServer:
    """tests/dns-server.sh on a free loopback port, serving RECORDS."""

    def __init__(self, work_dir):
        self.port = free_ports(1)[0]
        self.records = os.path.join(work_dir, "records.conf")
        with open(self.records, "w") as f:
            f.write(RECORDS)
        self.log_path = os.path.join(work_dir, "dns.log")
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(["sh", DNS_SCRIPT, str(self.port), self.records],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)

        def ready():
            if self.proc.poll() is not None:
                return "exited"
            try:
                return dns_query(self.port, "amx.test", 1) == (0, 1)
            except OSError:
                return False
        state = wait_until(ready, 10.0, interval=0.1)
        if self.proc.poll() == 3:
            raise unittest.SkipTest("dnsmasq is not installed")
        if state is not True:
            self.stop()
            with open(self.log_path, errors="replace") as f:
                raise AssertionError("test DNS server did not answer:\n" + f.read())
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class MXCase(DeliverCase):
    def setUp(self):
        self.dns = DNSServer(self.mkdtemp(prefix="dns-test-")).start()
        self.addCleanup(self.dns.stop)
        # Test server A on 127.0.0.1 and B on 127.0.0.2, both on A's port.
        self.relay_a = self.start_relay()
        self.relay_b = self.start_relay(host="127.0.0.2", port=self.relay_a.port)
        port = self.relay_a.port
        self.srv = auth_server(self, extra_config=[
            "resolver 127.0.0.1:%d" % self.dns.port,
            "route pref.example smtp:prefset.test:%d" % port,
            "route fall.example smtp:fallset.test:%d" % port,
            "route implicit.example smtp:amx.test:%d" % port,
            "retry_first 2", "retry_max 10", "queue_lifetime 60", "delay_warning 0"])

    def assertOneReport(self, rcpt, status, log_status="bounced"):
        """The one report in alice's Maildir says rcpt failed with status; the log agrees."""
        text, _msg, rcpts, _orig = self.report_parts(self.wait_reports(self.srv)[0])
        self.assertEqual(len(rcpts), 1, rcpts)
        f = rcpts[0]
        self.assertRegex(f.get("final-recipient", ""),
                         r"(?i)^rfc822;\s*%s$" % rcpt.replace(".", r"\."))
        self.assertEqual(f.get("action", "").lower(), "failed")
        self.assertEqual(f.get("status"), status)
        self.assertIn(rcpt, text)
        self.assertGreater(len(text.strip()), 80, "the human part explains nothing: %r" % text)
        self.assertIsNotNone(self.srv.wait_log(r"to=<%s>, .*dsn=%s, status=%s"
                                               % (rcpt.replace(".", r"\."),
                                                  status.replace(".", r"\."), log_status)))
        self.wait_queue_empty(self.srv)
        return text


class Routing(MXCase):
    def test_best_mx_gets_the_mail(self):
        msg = make_message("mx-pref")
        self.submit(self.srv, ["carol@pref.example"], msg)
        rec = self.wait_records(self.relay_a, 1)[0]
        self.assertEqual(rec["rcpt_to"], ["carol@pref.example"])
        self.assertRelayed(rec, msg)
        self.wait_queue_empty(self.srv)
        self.assertEqual(self.relay_b.records(), [], "the second MX got mail the best one took")

    def test_next_mx_when_the_best_refuses(self):
        msg = make_message("mx-fallback")
        self.submit(self.srv, ["carol@fall.example"], msg)
        rec = self.wait_records(self.relay_a, 1)[0]
        self.assertEqual(rec["rcpt_to"], ["carol@fall.example"])
        self.assertRelayed(rec, msg)
        self.assertIsNotNone(self.srv.wait_log(r"to=<carol@fall\.example>, .*status=sent"))
        self.assertNotRegex(self.srv.log(), r"to=<carol@fall\.example>, .*status=deferred",
                            "the next MX must be tried in the same attempt")
        self.wait_queue_empty(self.srv)

    def test_implicit_mx_from_an_address_record(self):
        msg = make_message("mx-implicit")
        self.submit(self.srv, ["carol@implicit.example"], msg)
        self.assertRelayed(self.wait_records(self.relay_a, 1)[0], msg)
        self.wait_queue_empty(self.srv)


class DNSOutcomes(MXCase):
    def test_null_mx_bounces_with_5_1_10(self):
        self.submit(self.srv, ["carol@nullmx.test"], make_message("mx-null"))
        self.assertOneReport("carol@nullmx.test", "5.1.10")
        self.assertEqual(self.relay_a.records(), [], "a null MX domain must not be connected to")

    def test_nxdomain_bounces_with_5_1_2(self):
        self.submit(self.srv, ["carol@nowhere.test"], make_message("mx-nxdomain"))
        self.assertOneReport("carol@nowhere.test", "5.1.2")

    def test_refused_lookup_defers_with_4_4_3(self):
        # dnsmasq has no upstream server: a name outside .test gets REFUSED, a DNS failure.
        self.submit(self.srv, ["carol@elsewhere.invalid"], make_message("mx-refused"))
        self.assertIsNotNone(self.srv.wait_log(
            r"to=<carol@elsewhere\.invalid>, .*dsn=4\.4\.3, status=deferred"))
        self.assertTrue(self.srv.queue_files(), "the message must stay queued")
        self.assertEqual(self.srv.maildir_files("alice"), [], "a deferral must not bounce")


if __name__ == "__main__":
    unittest.main()
