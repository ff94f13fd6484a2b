"""tests/integration/runner.py — discovers tests/integration/t_*.py (unittest), runs them
against the built binary ($CLEARMTA_BIN) and prints 'RESULT N passed, N failed'."""
import os
import sys
import unittest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
suite = unittest.defaultTestLoader.discover(here, pattern="t_*.py", top_level_dir=here)
result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
print("RESULT %d passed, %d failed" % (result.testsRun - bad - len(result.skipped), bad))
sys.exit(0 if bad == 0 else 1)
