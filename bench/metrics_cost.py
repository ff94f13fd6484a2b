"""bench/metrics_cost.py — what the metrics cost per accepted message: builds and runs
bench/metrics_bench.c (the registry and the delivery agent's counting functions themselves),
then sets the figure beside clearmta's CPU per message from the table bench.py wrote. Prints the
section; with --append FILE adds it to FILE (bench/run.sh: bench/results/latest.md)."""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.path.join(ROOT, "build", "bench")


def run_bench():
    binary = os.path.join(WORK, "metrics_bench")
    os.makedirs(WORK, exist_ok=True)
    src = [os.path.join(HERE, "metrics_bench.c"), os.path.join(ROOT, "src", "base", "metrics.c"),
           os.path.join(ROOT, "src", "deliver", "metrics.c")]
    subprocess.run(["gcc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-I" + os.path.join(ROOT, "src")]
                   + src + ["-o", binary, "-lpthread"], check=True, timeout=120)
    out = subprocess.run([binary], stdout=subprocess.PIPE, check=True, timeout=300).stdout
    return [l for l in out.decode().splitlines() if l.strip()]


def cpu_per_message_us(table):
    """clearmta's CPU per message (µs) of the 2 KB, many-per-session row, or None."""
    m = re.search(r"CPU s per 1000 msgs \(server\) \| ([0-9.]+)", table)
    return float(m.group(1)) * 1000.0 if m else None


def main():
    append_to = sys.argv[2] if len(sys.argv) == 3 and sys.argv[1] == "--append" else None
    lines = run_bench()
    ns = float(re.search(r"([0-9]+) ns per message on one thread", lines[0]).group(1))
    table = ""
    if append_to and os.path.exists(append_to):
        with open(append_to) as f:
            table = f.read()
    cpu = cpu_per_message_us(table)
    share = ("%.3f %% of clearmta's %.0f µs of CPU per accepted message (the table above)"
             % (ns / 10.0 / cpu, cpu) if cpu else "no CPU figure in the table to compare with")
    text = ("\n## Metrics: what counting costs\n\n`bench/metrics_cost.py` runs "
            "`bench/metrics_bench.c`: the metric operations of one accepted message (a reply "
            "counted per command of its session, the accepted counter, the end-of-DATA clock "
            "and histogram, the delivery outcome and the remote reply through "
            "deliver/metrics.c), timed over 2 000 000 messages. %.0f ns per message: %s.\n\n"
            "```\n%s\n```\n" % (ns, share, "\n".join(lines)))
    print(text)
    if append_to:
        with open(append_to, "a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
