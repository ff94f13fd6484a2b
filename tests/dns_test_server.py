#!/usr/bin/env python3
"""tests/dns_test_server.py PORT ZONE.json — a test DNS server on 127.0.0.1:PORT (UDP and TCP)
for the mail authentication tests, answering only from ZONE.json, in the zone-data form of the
RFC 7208 test suite: {"name": [{"TXT": "text" | ["str", "str"]}, {"A": "192.0.2.1"},
{"AAAA": "2001:db8::1"}, {"MX": [10, "host"]}, {"PTR": "host"}, {"CNAME": "host"},
"TIMEOUT" (never answers), "SERVFAIL"], ...}; SPF records are served as TXT. A name absent
from the zone gets NXDOMAIN; a name without the asked type an empty answer, or none at all when
it lists TIMEOUT; a CNAME is followed within the zone. A UDP answer over
512 bytes (no EDNS) goes out truncated (TC) with nothing in it, so the client asks over TCP.
Prints "ready" once listening; stop it with SIGTERM."""
import ipaddress
import json
import socket
import socketserver
import struct
import sys
import threading

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SPF": 99}


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("utf-8", "surrogateescape")
            out += bytes([min(len(raw), 63)]) + raw[:63]
    return out + b"\0"


def read_name(msg, off):
    labels = []
    jumped, end, hops = False, off, 0
    while True:
        n = msg[off]
        if n & 0xC0 == 0xC0:  # a pointer (clients do not compress questions, but may)
            if not jumped:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumped, hops = True, hops + 1
            if hops > 20:
                raise ValueError("pointer loop")
            continue
        off += 1
        if n == 0:
            break
        labels.append(msg[off:off + n].decode("utf-8", "surrogateescape"))
        off += n
    return ".".join(labels), (end if jumped else off)


def rdata(rtype, value):
    if rtype in ("TXT", "SPF"):
        strings = value if isinstance(value, list) else [value]
        out = b""
        for s in strings:
            raw = s.encode("utf-8", "surrogateescape")
            for i in range(0, max(len(raw), 1), 255):
                chunk = raw[i:i + 255]
                out += bytes([len(chunk)]) + chunk
        return out
    if rtype == "A":
        return ipaddress.IPv4Address(value).packed
    if rtype == "AAAA":
        return ipaddress.IPv6Address(value).packed
    if rtype == "MX":
        return struct.pack("!H", int(value[0])) + encode_name(value[1])
    if rtype in ("PTR", "CNAME", "NS"):
        return encode_name(value)
    raise ValueError(rtype)


class Zone:
    def __init__(self, data):
        self.names = {}
        for name, records in data.items():
            self.names[name.lower().rstrip(".")] = records

    def answer(self, query):
        """The reply to query, or None for no reply at all (TIMEOUT)."""
        qid, flags, _qd = struct.unpack("!HHH", query[:6])
        name, off = read_name(query, 12)
        qtype, _qclass = struct.unpack("!HH", query[off:off + 4])
        question = query[12:off + 4]
        rd = flags & 0x0100
        answers, count, rcode = b"", 0, 0
        # A CNAME is followed, as a recursive server does: its target's records come along.
        for _hop in range(8):
            records = self.names.get(name.lower().rstrip("."))
            if records is None:
                rcode = 3 if count == 0 else 0
                break
            if "SERVFAIL" in records:
                return self.reply(qid, rd, 2, question, b"", 0)
            found, target = self.records(name, records, qtype)
            if not found and target is None and "TIMEOUT" in records:
                return None  # this type times out; the name's other types answer
            answers += found[0] if found else b""
            count += found[1] if found else 0
            if target is None:
                break
            name = target
        return self.reply(qid, rd, rcode, question, answers, count)

    @staticmethod
    def records(name, records, qtype):
        """((bytes, count) of name's records of qtype or None, CNAME target or None)."""
        out, count, target = b"", 0, None
        for rec in records:
            if not isinstance(rec, dict):
                continue
            for rtype, value in rec.items():
                if rtype == "CNAME" and qtype != 5:
                    target = value
                    rtype_num = 5
                elif TYPES.get(rtype) == qtype:
                    rtype_num = qtype
                else:
                    continue
                data = rdata(rtype, value)
                out += encode_name(name) + struct.pack("!HHIH", rtype_num, 1, 60, len(data)) + data
                count += 1
        return ((out, count) if count else None), target

    @staticmethod
    def reply(qid, rd, rcode, question, answers, count):
        flags = 0x8400 | rd | 0x0080 | rcode  # QR, AA, RD copied, RA
        return struct.pack("!HHHHHH", qid, flags, 1, count, 0, 0) + question + answers


def truncated(reply):
    qid, flags = struct.unpack("!HH", reply[:4])
    _name, off = read_name(reply, 12)
    return struct.pack("!HHHHHH", qid, flags | 0x0200, 1, 0, 0, 0) + reply[12:off + 4]


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    with open(path) as f:
        zone = Zone(json.load(f))

    class UDP(socketserver.BaseRequestHandler):
        def handle(self):
            data, sock = self.request
            try:
                out = zone.answer(data)
            except (ValueError, IndexError, struct.error):
                return
            if out is not None:
                sock.sendto(out if len(out) <= 512 else truncated(out), self.client_address)

    class TCP(socketserver.BaseRequestHandler):
        def handle(self):
            conn = self.request
            conn.settimeout(10)
            try:
                while True:
                    head = conn.recv(2)
                    if len(head) < 2:
                        return
                    (n,) = struct.unpack("!H", head)
                    data = b""
                    while len(data) < n:
                        chunk = conn.recv(n - len(data))
                        if not chunk:
                            return
                        data += chunk
                    out = zone.answer(data)
                    if out is None:
                        continue
                    conn.sendall(struct.pack("!H", len(out)) + out)
            except (OSError, ValueError, IndexError, struct.error):
                return

    class UDPServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
        daemon_threads = True
        allow_reuse_address = True

    class TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
        daemon_threads = True
        allow_reuse_address = True

    udp = UDPServer(("127.0.0.1", port), UDP)
    tcp = TCPServer(("127.0.0.1", port), TCP)
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    print("ready", flush=True)
    udp.serve_forever()


if __name__ == "__main__":
    main()
