#!/usr/bin/env python3
"""bench/explain_speed.py — speed of `clearmta explain` on one core: the shared bounce set in one
process (--bounce), a generated mail log of every supported MTA (--log, --log --summary) and one
reply per line (--stdin). Each run is one single-threaded process; its CPU time (user + system,
from wait4) gives the lines per second of one core, the wall time is shown beside it (on a
shared machine the two differ). Best of --runs runs. Reads nothing but the built binary and
../shared/bounces (skipped when absent); --append adds a Markdown section to a results file.

  python3 bench/explain_speed.py [--bin build/clearmta] [--lines 1000000] [--runs 3]
                                 [--append bench/results/latest.md]"""
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


def timed_once(cmd, stdin_path=None):
    """(wall seconds, cpu seconds) of one run of cmd."""
    with open(os.devnull, "wb") as out, open(stdin_path or os.devnull, "rb") as inp:
        t = time.monotonic()
        p = subprocess.Popen(cmd, stdin=inp, stdout=out, stderr=subprocess.DEVNULL)
        _, _, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t
    return wall, ru.ru_utime + ru.ru_stime


def timed(cmd, runs, stdin_path=None):
    """The best (lowest CPU) of runs runs."""
    return min((timed_once(cmd, stdin_path) for _ in range(runs)), key=lambda r: r[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "clearmta"))
    ap.add_argument("--lines", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--append", help="add the figures as a Markdown section to this file")
    a = ap.parse_args()
    rows = []  # (what, count, unit, wall, cpu)
    eml = os.path.join(ROOT, "..", "shared", "bounces", "eml")
    if os.path.isdir(eml):
        n = sum(len([x for x in f if x.endswith(".eml")]) for _, _, f in os.walk(eml))
        wall, cpu = timed([a.bin, "explain", "--bounce", eml, "--json"], a.runs)
        rows.append(("explain --bounce --json (the shared set, one process)", n, "messages",
                     wall, cpu))
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
            wall, cpu = timed([a.bin, "explain"] + cmd, a.runs, path)
            rows.append((label, a.lines, "lines", wall, cpu))
    for what, n, unit, wall, cpu in rows:
        print("%s: %d %s in %.3f s CPU = %.0f %s/s on one core (wall %.3f s)" %
              (what, n, unit, cpu, n / max(cpu, 1e-9), unit, wall))
    if a.append:
        with open(a.append, "a") as f:
            f.write("\n## explain: bounces, logs and replies on one core\n\n")
            f.write("`python3 bench/explain_speed.py` — best of %d runs; CPU time (user + system) "
                    "of the single-threaded process, wall time beside it (machine load %.1f)."
                    "\n\n" % (a.runs, os.getloadavg()[0]))
            f.write("| input | count | CPU s | per second (one core) | wall s |\n")
            f.write("|---|---:|---:|---:|---:|\n")
            for what, n, unit, wall, cpu in rows:
                f.write("| %s | %d %s | %.3f | %.0f | %.3f |\n" %
                        (what, n, unit, cpu, n / max(cpu, 1e-9), wall))
    return 0


if __name__ == "__main__":
    sys.exit(main())
