"""t_02_docs — docs/replies.md is the reply table as `clearmta docs replies` prints it: the
generated page and the code never disagree (regenerate with `make docs`)."""
import os
import subprocess
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class GeneratedDocs(unittest.TestCase):
    def test_replies_md_matches_the_table(self):
        out = subprocess.run([os.environ["CLEARMTA_BIN"], "docs", "replies"], capture_output=True,
                             timeout=30, check=True).stdout
        with open(os.path.join(ROOT, "docs", "replies.md"), "rb") as f:
            committed = f.read()
        self.assertEqual(committed, out, "docs/replies.md is stale: run 'make docs'")



if __name__ == "__main__":
    unittest.main()
