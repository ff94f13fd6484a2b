"""bench/fold_stacks.py — turns `perf script` output (stdin) into folded stacks, one line per
distinct stack "thread;outermost;...;innermost COUNT" (the input of common flame graph tools).
With --top it reads folded stacks instead and prints the 40 functions with the most samples
on their own (self) and with their callees (total), as percentages of all samples."""
import collections
import re
import sys

FRAME = re.compile(r"^\s*[0-9a-f]+\s+(.+?)\s+\((.*)\)\s*$")


def fold(lines):
    stacks = collections.Counter()
    comm, frames = None, []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if comm is not None:
                stacks[";".join([comm] + frames[::-1])] += 1
            comm, frames = None, []
        elif not line[0].isspace():
            comm = line.split()[0]
        else:
            m = FRAME.match(line)
            if m:
                sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
                frames.append(sym if sym != "[unknown]" else "[%s]" % m.group(2).split("/")[-1])
    if comm is not None:
        stacks[";".join([comm] + frames[::-1])] += 1
    for stack, n in stacks.most_common():
        print("%s %d" % (stack, n))


def top(lines):
    self_n, total_n, all_n = collections.Counter(), collections.Counter(), 0
    for line in lines:
        stack, _, n = line.rstrip("\n").rpartition(" ")
        if not stack:
            continue
        n = int(n)
        frames = stack.split(";")
        all_n += n
        self_n[frames[-1]] += n
        for f in set(frames[1:]):
            total_n[f] += n
    print("samples: %d" % all_n)
    print("%-8s %-8s %s" % ("self %", "total %", "function"))
    for f, n in self_n.most_common(40):
        print("%7.2f  %7.2f  %s" % (100.0 * n / all_n, 100.0 * total_n[f] / all_n, f))
    print()
    print("%-8s %s" % ("total %", "function (with callees)"))
    for f, n in total_n.most_common(40):
        print("%7.2f  %s" % (100.0 * n / all_n, f))


if __name__ == "__main__":
    (top if "--top" in sys.argv[1:] else fold)(sys.stdin)
