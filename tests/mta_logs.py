#!/usr/bin/env python3
"""tests/mta_logs.py — real delivery log lines of Postfix and OpenSMTPD for `clearmta explain
--log`: runs a private instance of each MTA (loopback only, its own directories; the system's
instance and configuration are never touched) relaying to tests/smtp_test_server.py, which
accepts one recipient, greylists one (450), refuses one (550 5.1.1) and refuses one message
after DATA (554 5.7.1); the MTA's own log lines for the four deliveries are written to
tests/integration/mta_logs/<mta>.log, the fixtures of t_72.

  sudo python3 tests/mta_logs.py [postfix] [opensmtpd]

Needs root (the MTAs' masters start as root) and the Debian package of each MTA: postfix
(scripts/deps.sh bench) and opensmtpd. The two packages conflict (each is the system's MTA):
run the script once with postfix installed, then install opensmtpd (with a policy-rc.d that
keeps its service from starting), run `tests/mta_logs.py opensmtpd`, and reinstall postfix.
OpenSMTPD runs in the foreground (-d) on its package's spool, which must be idle: the script
empties its queue afterwards. An MTA that is missing is skipped with a message."""
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "integration"))
from harness import free_ports  # noqa: E402
from smtp_test_server import SMTPTestServer  # noqa: E402

OUT = os.path.join(HERE, "integration", "mta_logs")
SENDER = "alice@example.test"
# recipient → what the test server answers (RCPT, or after DATA for the last)
RCPTS = {
    "bob@example.org": "250 2.1.5 Ok",
    "grey@example.org": "450 4.7.1 <grey@example.org>: Recipient address rejected: "
                        "Greylisted, try again later",
    "nobody@example.org": "550 5.1.1 <nobody@example.org>: Recipient address rejected: "
                          "User unknown in virtual mailbox table",
    "spam@example.net": "250 2.1.5 Ok",
}
DATA_END = {"example.net": "554 5.7.1 Message rejected as spam by content filter"}


def test_server():
    """One server per domain's next hop: example.org accepts the data, example.net refuses it."""
    servers = {}
    for dom in ("example.org", "example.net"):
        script = {"rcpt": "250 2.1.5 Ok",
                  "rcpt_by_address": {r: v for r, v in RCPTS.items() if r.endswith(dom)},
                  "data_end": DATA_END.get(dom, "250 2.0.0 Ok: queued as 4F1A2B3C4D")}
        srv = SMTPTestServer(script)
        srv.start()
        servers[dom] = srv
    return servers


def submit(port):
    for rcpt in RCPTS:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.sendmail(SENDER, [rcpt], "From: %s\r\nTo: %s\r\nSubject: mta_logs\r\n\r\n"
                       "A test message of tests/mta_logs.py.\r\n" % (SENDER, rcpt))


def wait_lines(path, want, seconds=60):
    """The delivery lines of the log once there are `want` of them (or after seconds)."""
    deadline = time.monotonic() + seconds
    lines = []
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path, errors="replace") as f:
                lines = [l for l in f if " to=" in l and ("status=" in l or "result=" in l)]
            if len(lines) >= want:
                time.sleep(2)  # the bounces to the sender, delivered locally, follow
                with open(path, errors="replace") as f:
                    lines = [l for l in f if " to=" in l and ("status=" in l or "result=" in l)]
                break
        time.sleep(0.5)
    return lines


def save(mta, lines):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, mta + ".log")
    with open(path, "w") as f:
        f.writelines(lines)
    print("mta_logs: %d %s lines in %s" % (len(lines), mta, os.path.relpath(path, ROOT)))


def postfix(servers):
    if not shutil.which("postfix", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
        print("mta_logs: postfix is not installed, skipped")
        return
    d = tempfile.mkdtemp(prefix="mta-logs-postfix-")
    os.chmod(d, 0o755)  # Postfix's daemons run as postfix and must reach their directories
    port = free_ports()[0]
    subprocess.run(["sh", os.path.join(ROOT, "bench", "postfix.sh"), "setup", d, str(port)],
                   check=True)
    etc = os.path.join(d, "etc")
    transport = os.path.join(etc, "transport")
    with open(transport, "w") as f:
        for dom, srv in servers.items():
            f.write("%s smtp:[127.0.0.1]:%d\n" % (dom, srv.port))
    subprocess.run(["postconf", "-c", etc, "-e", "transport_maps=texthash:" + transport,
                    "smtpd_relay_restrictions=permit_mynetworks, reject",
                    "smtpd_recipient_restrictions=permit_mynetworks, reject",
                    "smtp_tls_security_level=none", "bounce_queue_lifetime=0"], check=True)
    subprocess.run(["postfix", "-c", etc, "start"], check=True)
    try:
        submit(port)
        save("postfix", wait_lines(os.path.join(d, "maillog"), len(RCPTS)))
    finally:
        subprocess.run(["postfix", "-c", etc, "stop"], check=False)
        shutil.rmtree(d, ignore_errors=True)


def opensmtpd(servers):
    smtpd = shutil.which("smtpd") or "/usr/sbin/smtpd"
    if not os.path.exists(smtpd):
        print("mta_logs: opensmtpd is not installed, skipped")
        return
    d = tempfile.mkdtemp(prefix="mta-logs-opensmtpd-")
    port = free_ports()[0]
    conf = os.path.join(d, "smtpd.conf")
    with open(conf, "w") as f:
        f.write("queue ttl 60s\n")
        f.write("listen on 127.0.0.1 port %d\n" % port)
        for dom, srv in servers.items():
            f.write('action "%s" relay host smtp://127.0.0.1:%d\n' % (dom, srv.port))
            f.write('match from local for domain "%s" action "%s"\n' % (dom, dom))
    log = os.path.join(d, "smtpd.log")
    # -d: in the foreground, logging to stderr; -v for the "mta delivery" lines' details
    with open(log, "w") as out:
        p = subprocess.Popen([smtpd, "-d", "-f", conf], stdout=out, stderr=subprocess.STDOUT)
    try:
        time.sleep(2)
        submit(port)
        save("opensmtpd", wait_lines(log, len(RCPTS)))
    finally:
        p.terminate()
        p.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)
        # the spool is the package's own (/var/spool/smtpd): leave nothing queued behind
        spool = "/var/spool/smtpd/queue"
        for e in os.listdir(spool) if os.path.isdir(spool) else []:
            shutil.rmtree(os.path.join(spool, e), ignore_errors=True)


def main():
    which = sys.argv[1:] or ["postfix", "opensmtpd"]
    if os.geteuid() != 0:
        print("mta_logs: run as root (the MTAs' masters start as root)", file=sys.stderr)
        return 1
    servers = test_server()
    try:
        for mta in which:
            {"postfix": postfix, "opensmtpd": opensmtpd}[mta](servers)
    finally:
        for srv in servers.values():
            srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
