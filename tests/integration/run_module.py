"""tests/integration/run_module.py MODULE REPORT — runs one integration test module (unittest,
verbose, on stdout) and writes REPORT: JSON with its counts and each test's duration in
seconds. runner.py starts one of these per module, in parallel."""
import json
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


class TimedResult(unittest.TextTestResult):
    """A verbose result that also records how long each test took (setUp to cleanups)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timings = []
        self._started = None

    def startTest(self, test):
        self._started = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        self.timings.append((test.id(), time.monotonic() - self._started))


def main(module, report_path):
    sys.path.insert(0, HERE)
    suite = unittest.defaultTestLoader.loadTestsFromName(module)
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=TimedResult)
    result = runner.run(suite)
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    report = {"run": result.testsRun, "failed": bad, "skipped": len(result.skipped),
              "timings": result.timings}
    with open(report_path, "w") as f:
        json.dump(report, f)
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: run_module.py MODULE REPORT")
    sys.exit(main(sys.argv[1], sys.argv[2]))
