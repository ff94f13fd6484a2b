"""t_03_layers — the include graph of src/ keeps the layering of docs/architecture.md: each
module includes only the modules below it, and no two modules include each other
(scripts/layers.py holds the rules)."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "scripts"))
import layers  # noqa: E402


class Layers(unittest.TestCase):
    def test_the_tree_keeps_the_rules(self):
        self.assertEqual(layers.problems(layers.graph()), [])

    def test_every_module_is_in_the_map(self):
        with open(os.path.join(layers.ROOT, "docs", "architecture.md"), encoding="utf-8") as f:
            doc = f.read()
        for module in layers.graph():
            self.assertIn("| `%s` |" % module, doc, "docs/architecture.md does not place %s"
                          % module)

    def test_a_cycle_and_a_forbidden_include_are_found(self):
        with tempfile.TemporaryDirectory() as src:
            for module, text in (("reply", '#include "smtp/x.h"\n'),
                                 ("smtp", '#include "reply/y.h"\n'),
                                 ("net", '#include "store/z.h"\n')):
                os.mkdir(os.path.join(src, module))
                with open(os.path.join(src, module, "a.c"), "w") as f:
                    f.write(text)
            found = layers.problems(layers.graph(src))
        self.assertIn("reply must not include smtp (reply/a.c)", found)
        self.assertIn("net must not include store (net/a.c)", found)
        self.assertTrue(any(p.startswith("cycle: ") and "reply" in p and "smtp" in p
                            for p in found), found)


if __name__ == "__main__":
    unittest.main()
