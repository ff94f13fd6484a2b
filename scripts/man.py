#!/usr/bin/env python3
"""scripts/man.py — turns a man page written in docs/*.md into roff (man(7)), so that the
installed pages and docs/ are one text. Knows the subset those pages use: "# name(N)" title,
"##"/"###" sections, paragraphs, indented code blocks, "`term`" + ": text" definition lists,
"|" tables, "- " lists, `code` and *emphasis*.

  python3 scripts/man.py docs/clearmta.conf.5.md > clearmta.conf.5"""
import re
import sys

DATE = "2026"
SOURCE = "clearmta"


def escape(text):
    """Roff-safe text: backslashes doubled, dashes as minus where they are options."""
    text = text.replace("\\", "\\e")
    text = text.replace("-", "\\-")
    return text


def inline(text):
    """`code` in bold, *emphasis* in italics, the rest escaped."""
    out = []
    for i, part in enumerate(re.split(r"(`[^`]*`)", text)):
        if i % 2 == 1:
            out.append("\\fB" + escape(part[1:-1]) + "\\fR")
            continue
        pieces = re.split(r"(\*[^*\s][^*]*\*)", part)
        for j, p in enumerate(pieces):
            out.append("\\fI" + escape(p[1:-1]) + "\\fR" if j % 2 == 1 else escape(p))
    return "".join(out)


def line_out(text):
    """A text line that cannot be taken for a request (leading . or ')."""
    text = text.strip()
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def table(rows, out):
    """A table as a tagged list: its first column the tag, the others "Header: value", so
    that it fits any page width without tbl(1)."""
    cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
    cells = [r for r in cells if not all(re.fullmatch(r":?-+:?", c) for c in r)]
    if len(cells) < 2:
        return
    head = cells[0]
    for r in cells[1:]:
        out.append(".TP")
        out.append(line_out(inline(r[0])))
        rest = ["%s: %s" % (h, c) for h, c in zip(head[1:], r[1:]) if c]
        out.append(line_out(inline("; ".join(rest))))


def convert(md):
    lines = md.splitlines()
    out = []
    m = re.match(r"#\s+(\S+)\((\d)\)", lines[0]) if lines else None
    if not m:
        raise SystemExit("man.py: the first line must be '# name(N)'")
    name, section = m.group(1), m.group(2)
    out.append('.TH "%s" "%s" "%s" "%s" "clearmta"' % (name.upper(), section, DATE, SOURCE))
    i = 1
    para_open = False
    section = ""
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            para_open = False
            i += 1
            continue
        if line.startswith("### "):
            out.append(".SS " + inline(line[4:].strip()))
            para_open = False
        elif line.startswith("## "):
            section = line[3:].strip().upper()
            out.append(".SH " + inline(section))
            para_open = False
        elif line.startswith("    "):
            block = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                block.append(lines[i][4:])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            out.append(".PP")
            out.append(".nf")
            out.append(".RS 4")
            out.extend(line_out(escape(b)) if b.strip() else "" for b in block)
            out.append(".RE")
            out.append(".fi")
            para_open = False
            continue
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(lines[i])
                i += 1
            table(rows, out)
            para_open = False
            continue
        elif i + 1 < len(lines) and lines[i + 1].startswith(": "):
            out.append(".TP")
            out.append(line_out(inline(line)))
            i += 1
            first = True
            while i < len(lines) and (lines[i].startswith(": ") or
                                      (lines[i].startswith("  ") and lines[i].strip())):
                text = lines[i][2:]
                out.append(line_out(inline(text)))
                first = False
                i += 1
            del first
            para_open = False
            continue
        elif line.startswith("- "):
            out.append(".IP \\(bu 2")
            out.append(line_out(inline(line[2:])))
            para_open = True
        else:
            if not para_open:
                out.append(".PP")
                para_open = True
            if section == "NAME":  # "name \- what", as whatis(1) and lexgrog read it
                line = line.replace(" \u2014 ", " - ")
            out.append(line_out(inline(line)))
        i += 1
    return "\n".join(o for o in out if o != "") + "\n"


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: man.py PAGE.md")
    with open(sys.argv[1], encoding="utf-8") as f:
        sys.stdout.write(convert(f.read()))


if __name__ == "__main__":
    main()
