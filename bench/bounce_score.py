#!/usr/bin/env python3
"""bench/bounce_score.py — scores `clearmta explain --bounce --json` on the shared bounce set
against its expected-dev.tsv: reason and status agreement per family (lhost-postfix, rfc3464 …).

  python3 bench/bounce_score.py [--bin build/clearmta] [--set ../shared/bounces] [-v]

Status: real codes must match exactly, the set's own x.0.9xx codes by class. -v lists every
disagreement. Exits 0 (a score, not a test); prints a message and exits 0 when the set is
absent."""
import argparse
import collections
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def family(name):
    base = name.rsplit(".", 1)[0]
    head, _, tail = base.rpartition("-")
    return head if tail.isdigit() else base


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "clearmta"))
    ap.add_argument("--set", default=os.path.join(ROOT, "..", "shared", "bounces"))
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    tsv = os.path.join(a.set, "expected-dev.tsv")
    eml = os.path.join(a.set, "eml")
    if not os.path.exists(tsv):
        print("bounce_score: %s absent, nothing to score" % tsv)
        return 0
    t0 = time.monotonic()
    p = subprocess.run([a.bin, "explain", "--bounce", eml, "--json"], capture_output=True,
                       text=True, errors="replace", timeout=120)
    elapsed = time.monotonic() - t0
    got = collections.defaultdict(list)
    for line in p.stdout.splitlines():
        d = json.loads(line)
        # the messages of an mbox file ("file#2" …) are that file's results, in order
        got[os.path.relpath(d["file"], eml).split("#")[0]].append(d)
    rows = collections.defaultdict(lambda: [0, 0, 0, 0])  # reason ok, main, status ok, status n
    real = [0, 0]  # real codes only: matched exactly, rows
    bad = []
    with open(tsv) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            r = dict(zip(header, line.rstrip("\n").split("\t")))
            if r["group"] != "main":
                if r["group"] == "nostatus":
                    g = got.get(r["file"], [])
                    fam = rows["(nostatus)"]
                    fam[1] += 1
                    fam[0] += bool(g) and g[0]["reason"] == r["reason"]
                continue
            fam = rows[family(r["file"])]
            idx = int(r["recipient_index"])
            g = got.get(r["file"], [])
            d = g[idx] if idx < len(g) else None
            fam[1] += 1
            ok_reason = d is not None and d["reason"] == r["reason"]
            fam[0] += ok_reason
            want = r["status"]
            have = d["status"] if d else ""
            fam[3] += 1
            if r["status_kind"] == "real":
                ok_status = have == want
                real[0] += ok_status
                real[1] += 1
            else:
                ok_status = have[:1] == want[:1]
            fam[2] += ok_status
            if not (ok_reason and ok_status):
                bad.append((r["file"], idx, r["reason"], d["reason"] if d else "-", want, have,
                            (d or {}).get("reply", "")[:100]))
    tr = sum(v[0] for k, v in rows.items() if k != "(nostatus)")
    tm = sum(v[1] for k, v in rows.items() if k != "(nostatus)")
    ts = sum(v[2] for v in rows.values())
    tn = sum(v[3] for v in rows.values())
    print("%-26s %12s %12s" % ("family", "reason", "status"))
    for k in sorted(rows):
        v = rows[k]
        print("%-26s %5d/%-6d %5d/%-6d" % (k, v[0], v[1], v[2], v[3]))
    print("%-26s %5d/%-6d %5d/%-6d  reason %.1f %%  status %.1f %%" %
          ("TOTAL (main)", tr, tm, ts, tn, 100.0 * tr / max(tm, 1), 100.0 * ts / max(tn, 1)))
    print("real-code status (exact): %d/%d = %.1f %%" % (real[0], real[1],
                                                        100.0 * real[0] / max(real[1], 1)))
    files = len([n for n in os.listdir(eml) if n.endswith(".eml")])
    print("%d files in one process: %.3f s (exit %d, %d lines on stderr)" %
          (files, elapsed, p.returncode, len(p.stderr.splitlines())))
    if a.v:
        for b in bad:
            print("  %s[%d] want %s %s, got %s %s: %s" % (b[0], b[1], b[2], b[4], b[3], b[5],
                                                           b[6]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
