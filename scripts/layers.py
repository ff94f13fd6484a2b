#!/usr/bin/env python3
"""scripts/layers.py — the include graph of src/ by module, checked against the layering of
docs/architecture.md: which module may include which, and no cycle between modules.

  python3 scripts/layers.py          prints "module -> modules it includes", exits 1 on a
                                     broken rule or a cycle (each one said on its own line)
  python3 scripts/layers.py --quiet  prints only the problems"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")

# What each module may include, besides itself and the top-level headers of src/ (limits).
# From the bottom up: a module includes only modules below it.
ALLOWED = {
    "base": set(),
    "reply": set(),
    "smtp": {"reply", "base"},
    "store": {"reply", "base"},
    "policy": {"reply", "smtp", "base"},
    "net": {"reply", "base"},
    "auth": {"base"},
    "deliver": {"reply", "smtp", "store", "policy", "net", "auth", "base"},
    "server": {"reply", "smtp", "store", "policy", "net", "deliver", "auth", "base"},
    "cli": {"reply", "smtp", "store", "policy", "net", "deliver", "server", "auth", "base"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"', re.M)


def graph(src=SRC):
    """{module: {included module: [files that include it]}} for every directory of src."""
    out = {}
    for module in sorted(os.listdir(src)):
        d = os.path.join(src, module)
        if not os.path.isdir(d):
            continue
        edges = out.setdefault(module, {})
        for name in sorted(os.listdir(d)):
            if not name.endswith((".c", ".h", ".def")):
                continue
            with open(os.path.join(d, name), encoding="utf-8", errors="replace") as f:
                for target in INCLUDE.findall(f.read()):
                    if target != module:
                        edges.setdefault(target, []).append("%s/%s" % (module, name))
    return out


def cycles(g):
    """Each cycle between modules once, as a list of modules (depth-first search)."""
    found, seen = [], set()

    def visit(node, path):
        if node in path:
            cycle = path[path.index(node):]
            key = frozenset(cycle)
            if key not in seen:
                seen.add(key)
                found.append(cycle + [node])
            return
        for nxt in sorted(g.get(node, {})):
            visit(nxt, path + [node])

    for module in sorted(g):
        visit(module, [])
    return found


def problems(g):
    out = []
    for module, edges in sorted(g.items()):
        if module not in ALLOWED:
            out.append("module %s is not in the layering (scripts/layers.py, "
                       "docs/architecture.md)" % module)
            continue
        for target, files in sorted(edges.items()):
            if target not in ALLOWED[module]:
                out.append("%s must not include %s (%s)" % (module, target, ", ".join(files)))
    for c in cycles(g):
        out.append("cycle: %s" % " -> ".join(c))
    return out


def main():
    g = graph()
    if "--quiet" not in sys.argv:
        for module, edges in sorted(g.items()):
            print("%-8s -> %s" % (module, " ".join(sorted(edges)) or "(nothing)"))
    bad = problems(g)
    for p in bad:
        print("layers: " + p, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
