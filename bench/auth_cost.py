#!/usr/bin/env python3
"""bench/auth_cost.py — the per-message cost of mail authentication: DKIM signing (rsa-2048,
ed25519; `clearmta dkim sign --repeat N`), DKIM verification (`clearmta auth dkim-verify
--repeat N`, the key answer fetched once from the test DNS server, then kept) of a 2 KB message,
and of the whole check on receipt: one SMTP session sends MESSAGES signed 2 KB messages to a
local mailbox with spf_check/dmarc_check off, then tag (SPF, DKIM, DMARC; answers from the test
DNS server on loopback, then from the cache). Prints the figures; with --append FILE adds them
to FILE as a Markdown section (bench/run.sh: bench/results/latest.md). Loopback only; every
server started here is stopped. Knobs (environment): AUTH_REPEAT (2000), AUTH_MESSAGES (500),
AUTH_ROUNDS (3)."""
import argparse
import json
import os
import re
import shutil
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DNS_SERVER = os.path.join(ROOT, "tests", "dns_test_server.py")
REPEAT = int(os.environ.get("AUTH_REPEAT", "2000"))
MESSAGES = int(os.environ.get("AUTH_MESSAGES", "500"))
ROUNDS = int(os.environ.get("AUTH_ROUNDS", "3"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message_2k(domain):
    head = ("From: Alice <alice@%s>\r\nTo: <alice@example.test>\r\nSubject: cost\r\n"
            "Date: Sun, 6 Dec 2026 08:00:00 +0000\r\nMessage-ID: <cost@%s>\r\n\r\n"
            % (domain, domain))
    line = "The quick brown fox jumps over the lazy dog, again and again.\r\n"
    body = line * ((2048 - len(head)) // len(line) + 1)
    return (head + body)[:2046].encode() + b"\r\n"


def us_per_message(out):
    m = re.search(r"([0-9.]+) us per message", out)
    if not m:
        raise RuntimeError("no figure in %r" % out)
    return float(m.group(1))


def median_range(xs):
    return statistics.median(xs), min(xs), max(xs)


def fmt(t):
    return "%.1f (%.1f–%.1f)" % t


class DNS:
    def __init__(self, zone, d):
        path = os.path.join(d, "zone.json")
        with open(path, "w") as f:
            json.dump(zone, f)
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, DNS_SERVER, str(self.port), path],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if self.proc.stdout.readline().strip() != b"ready":
            self.stop()
            raise RuntimeError("the test DNS server did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stdout.close()


def receipt_run(binary, d, resolver, mode, msg):
    """Seconds for MESSAGES messages over one session, checks off or tagged."""
    data = os.path.join(d, "data-" + mode)
    conf = os.path.join(d, "clearmta-%s.conf" % mode)
    port = free_port()
    with open(conf, "w") as f:
        f.write("hostname mx.example.test\nlisten mx 127.0.0.1:%d\ndata_dir %s\n"
                "maildir_root %s/maildir\ndomain example.test users alice\n"
                "resolver %s\nspf_check %s\ndmarc_check %s\n%s"
                % (port, data, data, resolver, mode, mode,
                   "user root\n" if os.geteuid() == 0 else ""))
    log = open(os.path.join(d, "server-%s.log" % mode), "wb")
    srv = subprocess.Popen([binary, "serve", "-c", conf], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or srv.poll() is not None:
                    raise RuntimeError("the server did not start (%s)" % mode)
                time.sleep(0.05)
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
            s.sendmail("alice@signed.example", ["alice@example.test"], msg)  # warms the cache
            t0 = time.monotonic()
            for _ in range(MESSAGES):
                s.sendmail("alice@signed.example", ["alice@example.test"], msg)
            return time.monotonic() - t0
    finally:
        srv.terminate()
        try:
            srv.wait(15)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait(5)
        log.close()


def measure(binary):
    d = tempfile.mkdtemp(prefix="clearmta-authcost-")
    dns = None
    try:
        zone = {"signed.example": [{"TXT": "v=spf1 ip4:127.0.0.1 -all"}],
                "_dmarc.signed.example": [{"TXT": "v=DMARC1; p=reject"}]}
        keys = {}
        for kind in ("rsa", "ed25519"):
            key = os.path.join(d, kind + ".pem")
            out = subprocess.run([binary, "dkim", "keygen", "--domain", "signed.example",
                                  "--selector", kind, "--type", kind, "--out", key], check=True,
                                 capture_output=True, timeout=120).stdout.decode()
            zone["%s._domainkey.signed.example" % kind] = [
                {"TXT": "".join(re.findall(r'"([^"]*)"', out))}]
            keys[kind] = key
        dns = DNS(zone, d)
        resolver = "127.0.0.1:%d" % dns.port
        msg = message_2k("signed.example")
        plain = os.path.join(d, "plain.eml")
        with open(plain, "wb") as f:
            f.write(msg)
        fig = {"sign": {}, "verify": {}}
        signed = {}
        for kind, key in keys.items():
            sign = ([binary, "dkim", "sign", "--domain", "signed.example", "--selector", kind,
                     "--key", key])
            signed[kind] = subprocess.run(sign + [plain], check=True, capture_output=True,
                                          timeout=120).stdout
            path = os.path.join(d, "signed-%s.eml" % kind)
            with open(path, "wb") as f:
                f.write(signed[kind])
            check = json.loads(subprocess.run(
                [binary, "auth", "dkim-verify", "--json", "--resolver", resolver, path],
                check=True, capture_output=True, timeout=120).stdout)
            if [c["result"] for c in check] != ["pass"]:
                raise RuntimeError("the %s signature does not verify: %r" % (kind, check))
            s, v = [], []
            for _ in range(ROUNDS):
                s.append(us_per_message(subprocess.run(
                    sign + ["--repeat", str(REPEAT), plain], check=True, capture_output=True,
                    timeout=600).stdout.decode()))
                v.append(us_per_message(subprocess.run(
                    [binary, "auth", "dkim-verify", "--resolver", resolver, "--repeat",
                     str(REPEAT), path], check=True, capture_output=True,
                    timeout=600).stdout.decode()))
            fig["sign"][kind], fig["verify"][kind] = median_range(s), median_range(v)
        off, tag = [], []
        for _ in range(ROUNDS):
            off.append(receipt_run(binary, d, resolver, "off", signed["ed25519"]))
            tag.append(receipt_run(binary, d, resolver, "tag", signed["ed25519"]))
        fig["receipt_off"] = median_range([t / MESSAGES * 1e3 for t in off])
        fig["receipt_tag"] = median_range([t / MESSAGES * 1e3 for t in tag])
        fig["size"] = len(msg)
        return fig
    finally:
        if dns:
            dns.stop()
        shutil.rmtree(d, ignore_errors=True)


def markdown(fig):
    off, tag = fig["receipt_off"], fig["receipt_tag"]
    lines = [
        "", "## Mail authentication: what signing, verifying and checking cost per message", "",
        "`bench/auth_cost.py`: a %d-byte message; signing and verification are %d runs in one "
        "process (`clearmta dkim sign --repeat`, `clearmta auth dkim-verify --repeat`, the key "
        "record fetched once), µs per message, median (min–max) of %d rounds. The check on "
        "receipt: one SMTP session sends %d ed25519-signed messages to a local mailbox, "
        "spf_check and dmarc_check off, then tag (SPF, DKIM, DMARC; DNS answers from the test "
        "DNS server on loopback, then from the cache), ms per message from MAIL to 250."
        % (fig["size"], REPEAT, ROUNDS, MESSAGES), "",
        "| figure | rsa-2048 | ed25519 |", "|---|---|---|",
        "| DKIM signing, µs per message | %s | %s |" % (fmt(fig["sign"]["rsa"]),
                                                      fmt(fig["sign"]["ed25519"])),
        "| DKIM verification, µs per message | %s | %s |" % (fmt(fig["verify"]["rsa"]),
                                                            fmt(fig["verify"]["ed25519"])),
        "", "| check on receipt | ms per message |", "|---|---|",
        "| spf_check off, dmarc_check off | %.2f (%.2f–%.2f) |" % off,
        "| spf_check tag, dmarc_check tag | %.2f (%.2f–%.2f) |" % tag,
        "| added by the checks | %+.2f |" % (tag[0] - off[0]), ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "clearmta"))
    ap.add_argument("--append", help="add the Markdown section to this file")
    a = ap.parse_args()
    text = markdown(measure(a.bin))
    print(text)
    if a.append:
        with open(a.append, "a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
