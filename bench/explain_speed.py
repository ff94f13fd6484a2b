#!/usr/bin/env python3
"""bench/explain_speed.py — speed of `clearmta explain` on one core: the shared bounce set in one
process (--bounce), a generated mail log of every supported MTA (--log, --log --summary) and one
reply per line (--stdin). Prints lines per second; reads nothing but the built binary and
../shared/bounces (skipped when absent).

  python3 bench/explain_speed.py [--bin build/clearmta] [--lines 1000000]"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LOG = [
    "Jan  2 03:04:05 mx postfix/smtp[1234]: 4F1A2B3C4D: to=<bob@example.org>, relay=mx.example.org[192.0.2.1]:25, delay=1.2, dsn=5.1.1, status=bounced (host mx.example.org[192.0.2.1] said: 550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown in local recipient table (in reply to RCPT TO command))",
    "Jan  2 03:04:06 mx postfix/smtp[1234]: 5A1B2C3D4E: to=<carol@example.com>, relay=mx.example.com[192.0.2.2]:25, delay=301, dsn=4.7.1, status=deferred (host mx.example.com[192.0.2.2] said: 450 4.7.1 <carol@example.com>: Recipient address rejected: Greylisted (in reply to RCPT TO command))",
    "Jan  2 03:04:07 mx postfix/smtp[1234]: 6A1B2C3D4E: to=<dave@example.net>, relay=mx.example.net[192.0.2.3]:25, delay=0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as ABC)",
    "Jan  2 03:04:08 mx postfix/qmgr[99]: 6A1B2C3D4E: removed",
    "2026-01-02 03:04:05 1rABCD-000123-AB ** erin@example.org R=dnslookup T=remote_smtp H=mx.example.org [192.0.2.1]: SMTP error from remote mail server after RCPT TO:<erin@example.org>: 550 5.1.1 User unknown",
    "Jan  2 03:04:05 mx sendmail[777]: x02ABC123456: to=<heidi@example.org>, delay=00:00:01, mailer=esmtp, relay=mx.example.org. [192.0.2.1], dsn=5.1.1, stat=User unknown",
    "Jan  2 03:04:05 mx smtpd[555]: 1a2b3c4d5e6f7a8b mta delivery evpid=1a2b3c4d5e6f7a8b from=<a@example.test> to=<judy@example.org> rcpt=<-> source=\"192.0.2.9\" relay=\"mx.example.org (192.0.2.1)\" delay=1s result=\"PermFail\" stat=\"550 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org\"",
    "2026/01/02 03:04:05 1a2b3c4d from=a@example.test to=kim@example.org failed permanently: 550 5.1.1 no such user",
    "2026-01-02 03:04:05.123 9f8e7d6c: to=<leo@example.org>, relay=mx.example.org, delay=2s, attempt=1, dsn=5.2.2, status=bounced (552 5.2.2 Mailbox full) reason=mailboxfull",
]
REPLIES = [
    "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown in local recipient table",
    "452 4.2.2 The email account that you tried to reach is over quota",
    "421 4.7.0 Try again later, closing connection.",
    "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
    "250 2.0.0 Ok: queued as 4F1A2B3C4D",
]


def timed(cmd, stdin=None):
    t = time.monotonic()
    with open(os.devnull, "wb") as out:
        subprocess.run(cmd, stdin=stdin, stdout=out, stderr=subprocess.DEVNULL, check=False,
                       timeout=600)
    return time.monotonic() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "clearmta"))
    ap.add_argument("--lines", type=int, default=1000000)
    a = ap.parse_args()
    eml = os.path.join(ROOT, "..", "shared", "bounces", "eml")
    if os.path.isdir(eml):
        n = sum(len(f) for _, _, f in os.walk(eml))
        s = timed([a.bin, "explain", "--bounce", eml, "--json"])
        print("explain --bounce: %d messages in %.3f s (one process)" % (n, s))
    else:
        print("explain --bounce: ../shared/bounces absent, skipped")
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "mail.log")
        with open(log, "w") as f:
            for i in range(a.lines):
                f.write(LOG[i % len(LOG)] + "\n")
        rep = os.path.join(d, "replies.txt")
        with open(rep, "w") as f:
            for i in range(a.lines):
                f.write(REPLIES[i % len(REPLIES)] + "\n")
        for label, cmd, path in (
                ("explain --log --summary", ["--log", log, "--summary"], None),
                ("explain --log --json", ["--log", log, "--json"], None),
                ("explain --stdin --json", ["--stdin", "--json"], rep)):
            if path:
                with open(path, "rb") as f:
                    s = timed([a.bin, "explain"] + cmd, stdin=f)
            else:
                s = timed([a.bin, "explain"] + cmd)
            print("%s: %d lines in %.2f s = %.0f lines/s" % (label, a.lines, s, a.lines / s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
