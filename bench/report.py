"""bench/report.py — turns the bench summary into the Markdown table of bench/results/latest.md:
each figure for clearmta, Postfix, their ratio, the machine's ceiling, and the issue's target."""
import os
import platform
import subprocess
import time

CM, PF, CEIL = "clearmta", "Postfix", "smtp-sink"
ISSUE_MSGS = 20000  # the issue's message count for the 2 KB loads


def cmd_out(*args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def filesystem(data_dir):
    """Type, device and mount options; for ext4 also whether it has a journal, which changes
    what a sync and a file creation cost."""
    fields = cmd_out("findmnt", "-n", "-T", data_dir, "-o", "FSTYPE,SOURCE,OPTIONS").split()
    if len(fields) != 3:
        return "?"
    fstype, source, options = fields
    text = f"{fstype} on {source} ({options})"
    if fstype == "ext4":
        dev = os.path.basename(source)
        try:
            journal = any(e.startswith(dev + "-") for e in os.listdir("/proc/fs/jbd2"))
        except OSError:
            journal = False
        text += ", with journal" if journal else ", no journal"
    return text


def machine(data_dir):
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory": f"{mem_kb / 1048576:.1f} GiB",
        "kernel": platform.release(),
        "filesystem": filesystem(data_dir),
        "postfix": cmd_out("postconf", "-d", "-h", "mail_version"),
        "clearmta": cmd_out(os.path.join(root, "build", "clearmta"), "version"),
    }


def fmt_num(x):
    if x >= 100:
        return f"{x:,.0f}".replace(",", " ")
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def cell(summary, key, who):
    s = summary.get(key, {}).get(who)
    if s is None:
        return "—", None
    if s["n"] > 1 and s["min"] != s["max"]:
        return f"{fmt_num(s['median'])} ({fmt_num(s['min'])}–{fmt_num(s['max'])})", s["median"]
    return fmt_num(s["median"]), s["median"]


def fmt_ratio(r):
    return f"{r:.2f}" if r >= 0.1 else f"{r:.2g}"


def verdict(ok):
    return "✅" if ok else "❌"


class Table:
    def __init__(self, summary):
        self.summary = summary
        self.rows = []

    def row(self, label, key, ceiling_key=None, ceiling_who=CEIL, targets=()):
        """targets: (text, ok) pairs, ok(cm, pf, ceiling) on medians (None where missing)."""
        cm_text, cm = cell(self.summary, key, CM)
        pf_text, pf = cell(self.summary, key, PF)
        ceil_text, ceil = cell(self.summary, ceiling_key, ceiling_who) if ceiling_key \
            else ("—", None)
        ratio = fmt_ratio(cm / pf) if cm is not None and pf else "—"
        goals = [text if cm is None else f"{text} {verdict(ok(cm, pf, ceil))}"
                 for text, ok in targets]
        self.rows.append(f"| {label} | {cm_text} | {pf_text} | {ratio} | {ceil_text} | "
                         f"{'; '.join(goals)} |")

    def ratio_row(self, label, key, of_key, least):
        """clearmta's median of key over its median of of_key, and Postfix's, target ≥ least."""
        def ratio(who):
            a = self.summary.get(key, {}).get(who)
            b = self.summary.get(of_key, {}).get(who)
            return a["median"] / b["median"] if a and b and b["median"] else None
        cm, pf = ratio(CM), ratio(PF)
        cells = [f"{x:.2f}" if x is not None else "—" for x in (cm, pf)]
        goal = f"≥ {least:g}" + (f" {verdict(cm >= least)}" if cm is not None else "")
        self.rows.append(f"| {label} | {cells[0]} | {cells[1]} | — | — | {goal} |")

    def render(self):
        head = ["| figure | clearmta | Postfix | clearmta/Postfix | ceiling | target |",
                "|---|---|---|---|---|---|"]
        return "\n".join(head + self.rows)


def vs_postfix(times):
    """cm at least `times` Postfix's median (times < 1: at most, for costs)."""
    if times >= 1:
        return (f"≥ {times:g}× Postfix",
                lambda cm, pf, ceil: pf is not None and cm >= times * pf)
    return (f"≤ 1/{1 / times:g} of Postfix",
            lambda cm, pf, ceil: pf is not None and cm <= times * pf)


def at_most(limit, unit=""):
    """cm at most limit (an absolute figure)."""
    return (f"≤ {limit:g}{unit}", lambda cm, pf, ceil: cm <= limit)


def every_round(summary, key, better):
    """better(cm, pf) in each round (the rounds alternate, so the i-th figures pair up)."""
    cm = summary.get(key, {}).get(CM, {}).get("values")
    pf = summary.get(key, {}).get(PF, {}).get("values")
    return bool(cm) and bool(pf) and len(cm) == len(pf) and all(
        better(c, p) for c, p in zip(cm, pf))


# The targets of the performance issue (Performance 2), judged on the medians of one run.
RATE_TARGETS = {"2k_session": (vs_postfix(6),), "2k_conn": (vs_postfix(5),)}
CPU_TARGETS = {"2k_session": (at_most(0.25, " s"), vs_postfix(0.1)),
               "2k_conn": (at_most(0.25, " s"), vs_postfix(0.1)),
               "1m": (vs_postfix(0.25),)}


def throughput_rows(t, loads):
    for key, label, _size, count, _per_session in loads:
        n = f"{count:,}".replace(",", " ")
        t.row(f"{label} ({n} msgs): delivered msg/s (wall)", f"{key}.rate",
              f"{key}.rate", targets=RATE_TARGETS.get(key, ()))
        t.row(f"{label}: accepted msg/s (until the last 250)", f"{key}.accept_rate",
              f"{key}.accept_rate")
        if key in RATE_TARGETS:
            t.ratio_row(f"{label}: delivered / accepted rate (no growing backlog)",
                        f"{key}.rate", f"{key}.accept_rate", 0.95)
        t.row(f"{label}: CPU s per 1000 msgs (server)", f"{key}.cpu_per_1000",
              f"{key}.cpu_per_1000", targets=CPU_TARGETS.get(key, ()))


def render(summary, config):
    m = machine(config["data_dir"])
    t = Table(summary)
    throughput_rows(t, config["loads"])
    t.row(f"end-of-DATA → 250 p50, ms ({config['sessions']} sessions)", "latency.p50",
          "latency.p50")
    t.row(f"end-of-DATA → 250 p99, ms ({config['sessions']} sessions)", "latency.p99",
          "latency.p99",
          targets=(("≤ Postfix in every round",
                    lambda cm, pf, ceil: every_round(summary, "latency.p99",
                                                     lambda c, p: c < p)),))
    for n in config["idle"]:
        last = n == max(config["idle"])
        t.row(f"{n} idle connections: got the 220 banner", f"idle{n}.banners",
              targets=(("all served", lambda cm, pf, ceil, n=n: cm >= n),) if last else ())
        t.row(f"{n} idle connections: KiB RSS per served connection", f"idle{n}.rss_per_conn",
              targets=(("≤ 8 KiB", lambda cm, pf, ceil: cm <= 8),) if last else ())
        t.row(f"{n} idle connections: KiB PSS per served connection", f"idle{n}.pss_per_conn")
    n = f"{config['outbound_msgs']:,}".replace(",", " ")
    t.row(f"outbound: msg/s delivered to smtp-sink from a full queue ({n} msgs of 2 KB)",
          "outbound.rate", targets=(vs_postfix(4),))
    t.row("outbound: messages smtp-sink got (all must arrive)", "outbound.delivered",
          targets=(("all, exactly once", lambda cm, pf, ceil: cm == config["outbound_msgs"]),))
    t.row("outbound: CPU s per 1000 msgs (server)", "outbound.cpu_per_1000")
    t.row("outbound: SMTP sessions that carried them", "outbound.sessions")
    t.row("disk: 1-byte write + fdatasync per second", "disk.sync_rate", "disk.sync_rate",
          ceiling_who="ceiling")
    t.row("disk: 2 KB file create + unlink per second, no sync", "disk.churn_rate",
          "disk.churn_rate", ceiling_who="ceiling")
    scaled = [f"{label}: {count} messages instead of {ISSUE_MSGS}"
              for key, label, _s, count, _p in config["loads"]
              if key.startswith("2k") and count != ISSUE_MSGS]
    lines = [
        "# clearmta vs Postfix — latest `make bench`",
        "",
        f"{m['date']}; {m['cores']} cores ({m['cpu']}), {m['memory']} memory, kernel "
        f"{m['kernel']}; data directory filesystem: {m['filesystem']}.",
        f"clearmta: {m['clearmta'] or '?'}; Postfix {m['postfix']} (private instance, default "
        f"durability). {config['rounds']} rounds, alternating clearmta / Postfix / smtp-sink; "
        f"figures are median (min–max). Run took {config['elapsed']:.0f} s; load average "
        f"{config['load'][0]:.1f} at the start, {config['load'][1]:.1f} at the end (other "
        f"work on the machine shares its cores and disk).",
        "",
        t.render(),
        "",
        "Ceiling: Postfix's smtp-sink (speaks SMTP, stores nothing) under the same load, and the "
        "disk's sync and file creation rates. Delivered = Maildir files counted after the run; "
        "wall time runs from the start of the load to the last delivery. CPU = user + system "
        "of the server's processes only (all of Postfix's). Memory per connection = (RSS with "
        "the connections held − RSS of the freshly started server) / connections that got a "
        "banner, summed over the server's processes; PSS splits shared pages between "
        "processes. Outbound: each server's queue is filled while its relay (smtp-sink) is "
        "down, then the server is released (clearmta: one `clearmta queue flush`, no restart; "
        "Postfix restarted and flushed; both at their default concurrency) and timed until "
        "smtp-sink has counted every message; sessions are smtp-sink's count "
        "(bench/outbound.py).",
    ]
    if scaled:
        lines += ["", "Scaled to fit the 10-minute budget: " + "; ".join(scaled) + "."]
    return "\n".join(lines) + "\n"
