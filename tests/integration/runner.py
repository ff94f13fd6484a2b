"""tests/integration/runner.py — discovers tests/integration/t_*.py (unittest), runs them
against the built binary ($CLEARMTA_BIN) and prints 'RESULT N passed, N failed'.
Arguments select test files by prefix (e.g. `runner.py t_30 t_4`); none runs them all."""
import os
import sys
import unittest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
if os.environ.get("CLEARMTA_BIN"):  # the tests change directories: make it absolute
    os.environ["CLEARMTA_BIN"] = os.path.abspath(os.environ["CLEARMTA_BIN"])
patterns = ["%s*.py" % p for p in sys.argv[1:]] or ["t_*.py"]
suite = unittest.TestSuite()
for pattern in patterns:
    suite.addTests(unittest.defaultTestLoader.discover(here, pattern=pattern, top_level_dir=here))
result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
print("RESULT %d passed, %d failed" % (result.testsRun - bad - len(result.skipped), bad))
sys.exit(0 if bad == 0 else 1)
