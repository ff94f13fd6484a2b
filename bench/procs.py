"""bench/procs.py — what a server costs, read from /proc: CPU seconds and resident memory of a
process and all its descendants (Postfix is a master with many children, clearmta one process)."""
import os

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid):
    """Fields of /proc/PID/stat after the command name, or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return data[data.rindex(b")") + 2:].split()


def tree(root):
    """root and every descendant pid (a snapshot: processes come and go)."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _stat(int(name))
        if st is not None:
            children.setdefault(int(st[1]), []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(root):
    """User + system CPU of the tree, counting children already reaped (cutime, cstime), so a
    Postfix smtpd that exits between two readings is still counted in its master's figure."""
    total = 0
    for pid in tree(root):
        st = _stat(pid)
        if st is not None:
            # After the name: state ppid ... utime(11) stime(12) cutime(13) cstime(14).
            total += sum(int(x) for x in st[11:15])
    return total / _TICK


def _status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid):
    """Resident memory of one process in KiB (0 when it is gone)."""
    return _status_kb(pid, "VmRSS:")


def _pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_kb(root):
    """(RSS, PSS) in KiB summed over the tree. RSS counts a shared page once per process that
    maps it (the figure the issue asks for); PSS splits shared pages between them."""
    pids = tree(root)
    return (sum(_status_kb(p, "VmRSS:") for p in pids), sum(_pss_kb(p) for p in pids))
