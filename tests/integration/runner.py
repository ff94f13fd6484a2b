"""tests/integration/runner.py — runs the integration test modules (tests/integration/t_*.py,
unittest) against the built binary ($CLEARMTA_BIN), several modules at once: one run_module.py
subprocess per module, the longest modules started first. Each module's output is printed whole
when it finishes; at the end come the slowest tests, every module's wall time and the line
'RESULT N passed, N failed' (skipped tests are not counted as passed).
Arguments select modules by file-name prefix (e.g. `runner.py t_30 t_4`); none runs them all.
-j N (or $TEST_JOBS) sets how many modules run at once; a module still running after
MODULE_TIMEOUT seconds is killed with everything it started and counts as a failure."""
import argparse
import fnmatch
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "run_module.py")
MODULE_TIMEOUT = 15 * 60
KILL_TIMEOUT = 10
POLL_INTERVAL = 0.1
SLOWEST = 10
# Modules that take longest (t_32 waits out a 60 s expiry), started first so that they do not
# end the run alone; the others follow, biggest file first.
SLOW_FIRST = ("t_32", "t_30", "t_11", "t_21", "t_23")


def default_jobs():
    """The tests mostly wait on sockets and timers, so more modules than cores run at once."""
    return max(4, 2 * (os.cpu_count() or 1))


def select_modules(prefixes):
    """Module names of the t_*.py files matching any prefix, the SLOW_FIRST ones first (in
    that order), then the biggest file first."""
    patterns = ["%s*.py" % p for p in prefixes] or ["t_*.py"]
    names = [n for n in os.listdir(HERE)
             if n.startswith("t_") and any(fnmatch.fnmatch(n, p) for p in patterns)]

    def rank(name):
        hint = [i for i, h in enumerate(SLOW_FIRST) if name.startswith(h)]
        return (hint[0] if hint else len(SLOW_FIRST), -os.path.getsize(os.path.join(HERE, name)),
                name)
    return [n[:-3] for n in sorted(names, key=rank)]


class ModuleRun:
    """One run_module.py subprocess, in its own session so that a kill reaches every process
    it started; its stdout and stderr go to one file in tmp. slot/slots: its port slot (see
    harness.free_ports), which no other module running at the same time has. Once finished:
    passed, failed, skipped, timings ([(test id, seconds)]), wall, and problem (why the
    module counts as one failure beyond its report, or None)."""

    def __init__(self, module, tmp, slot, slots):
        self.module = module
        self.slot = slot
        self.report_path = os.path.join(tmp, module + ".json")
        self.out_path = os.path.join(tmp, module + ".out")
        self.started = time.monotonic()
        env = dict(os.environ, CLEARMTA_TEST_PORT_SLOT="%d/%d" % (slot, slots))
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-u", WORKER, module, self.report_path],
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)

    def poll(self):
        """True once the module has finished or was killed for taking too long."""
        if self.proc.poll() is None:
            if time.monotonic() - self.started < MODULE_TIMEOUT:
                return False
            self.kill()
            self.finish("killed after %d s (the module timeout)" % MODULE_TIMEOUT)
        else:
            self.finish(None)
        return True

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=KILL_TIMEOUT)

    def finish(self, problem):
        self.wall = time.monotonic() - self.started
        self.problem = problem
        self.passed = self.failed = self.skipped = 0
        self.timings = []
        try:
            with open(self.report_path) as f:
                r = json.load(f)
            self.passed = r["run"] - r["failed"] - r["skipped"]
            self.failed, self.skipped, self.timings = r["failed"], r["skipped"], r["timings"]
        except (OSError, ValueError, KeyError):
            self.problem = problem or "exited with status %s without a report" % (
                self.proc.returncode)
        if self.problem:
            self.failed += 1

    def summary(self):
        line = "%s: %d passed, %d failed, %d skipped in %.1f s" % (
            self.module, self.passed, self.failed, self.skipped, self.wall)
        return line + ("; " + self.problem if self.problem else "")

    def print_output(self):
        with open(self.out_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        sys.stdout.write("==== %s ====\n%s%s" % (self.module, text,
                                                  "" if text.endswith("\n") else "\n"))
        if self.problem:
            sys.stdout.write("FAIL %s\n" % self.summary())
        sys.stdout.flush()


def run_all(modules, jobs, tmp):
    """Runs the modules, at most jobs at once; returns the finished ModuleRuns."""
    pending = list(modules)
    jobs = min(jobs, len(pending)) or 1  # as many port slots as modules can run at once
    running, finished = [], []
    try:
        while pending or running:
            while pending and len(running) < jobs:
                taken = {r.slot for r in running}
                slot = min(set(range(jobs)) - taken)
                running.append(ModuleRun(pending.pop(0), tmp, slot, jobs))
            for run in [r for r in running if r.poll()]:
                running.remove(run)
                finished.append(run)
                run.print_output()
            time.sleep(POLL_INTERVAL)
    finally:
        for run in running:
            run.kill()
    return finished


def print_totals(finished):
    """The slowest tests, every module's wall time and the RESULT line; returns the failures."""
    timings = sorted((t for run in finished for t in run.timings), key=lambda t: -t[1])
    print("==== slowest tests ====")
    for test_id, seconds in timings[:SLOWEST]:
        print("%7.1f s  %s" % (seconds, test_id))
    print("==== modules by wall time ====")
    for run in sorted(finished, key=lambda r: -r.wall):
        print("%7.1f s  %s" % (run.wall, run.summary()))
    failed = sum(run.failed for run in finished)
    print("RESULT %d passed, %d failed" % (sum(run.passed for run in finished), failed))
    return failed


def main():
    ap = argparse.ArgumentParser(description="Runs the integration test modules in parallel.")
    ap.add_argument("prefixes", nargs="*", help="run only the t_*.py files starting so")
    ap.add_argument("-j", "--jobs", type=int,
                    default=int(os.environ.get("TEST_JOBS") or default_jobs()),
                    help="modules run at once (default $TEST_JOBS, else %d)" % default_jobs())
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # kills the modules
    if os.environ.get("CLEARMTA_BIN"):  # the tests change directories: make it absolute
        os.environ["CLEARMTA_BIN"] = os.path.abspath(os.environ["CLEARMTA_BIN"])
    with tempfile.TemporaryDirectory(prefix="clearmta-runner-") as tmp:
        finished = run_all(select_modules(args.prefixes), max(1, args.jobs), tmp)
        failed = print_totals(finished)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
