#!/usr/bin/env python3
"""check-layers.py — every `#include "folder/..."` under src/ is one that the
table "Layers: which folder may include which" in docs/architecture.md allows.

The table is read from the document itself, so the map and the check cannot
drift. Also checked: every folder under src/ has a row and every row names a
folder that exists; the table allows no cycle (a folder reaching itself
through others); no include climbs out of its folder with "../". Unit tests,
fuzz targets and benchmarks may include anything, so only src/ is read;
src/main.c (the program itself) may include any folder.

Run by scripts/check-style.sh; prints one line a problem, exits 1 if any."""
import os
import re
import sys

DOC = "docs/architecture.md"
SECTION = "## Layers: which folder may include which"

# Includes the table forbids but the tree still holds while the change that
# removes them is under way: (file, folder), each with a comment naming that
# change. Empty: every include under src/ keeps to the table. An entry that no
# longer matches any include is itself reported, so the list only shrinks.
NOT_YET_REMOVED = set()

INCLUDE = re.compile(r'^\s*#\s*include\s*(?:"([^"]+)"|<([^>]+)>)')


def read_table(problems):
    """{folder: set of folders it may include}, from the doc's section."""
    try:
        lines = open(DOC, encoding="utf-8").read().splitlines()
    except OSError as e:
        problems.append(f"layers: cannot read {DOC}: {e}")
        return {}
    try:
        start = lines.index(SECTION)
    except ValueError:
        problems.append(f'layers: {DOC} has no section "{SECTION}"')
        return {}
    table, seen_table = {}, False
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if not line.startswith("|"):
            if seen_table:
                break          # the first table of the section only
            continue
        seen_table = True
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or set(cells[0]) <= set("-: "):
            continue           # the separator row
        names = re.findall(r"`([^`]+)`", cells[0])
        if len(names) != 1:
            continue           # the header row
        folder = names[0].strip("/")
        if folder in table:
            problems.append(f"layers: {DOC}: folder {folder} has two rows")
        table[folder] = {n.strip("/") for n in re.findall(r"`([^`]+)`", cells[-1])}
    if not table:
        problems.append(f'layers: {DOC}: no table under "{SECTION}"')
    return table


def check_table(table, folders, problems):
    for f in sorted(folders - table.keys()):
        problems.append(f"layers: src/{f}/ has no row in the table in {DOC}")
    for f in sorted(table.keys() - folders):
        problems.append(f"layers: {DOC} has a row for {f}, but there is no src/{f}/")
    for f, allowed in sorted(table.items()):
        for t in sorted(allowed - table.keys()):
            problems.append(f"layers: {DOC}: {f} may include {t}, which has no row")
        if f in allowed:
            problems.append(f"layers: {DOC}: {f} lists itself (a folder always includes its own files)")
    # No cycle: depth-first search, reporting the first path that closes one.
    state = {}

    def visit(f, path):
        state[f] = "open"
        for t in sorted(table.get(f, ())):
            if t == f or t not in table:
                continue
            if state.get(t) == "open":
                cycle = path[path.index(t):] + [t]
                problems.append(f"layers: {DOC} allows a cycle: {' -> '.join(cycle)}")
            elif t not in state:
                visit(t, path + [t])
        state[f] = "done"

    for f in sorted(table):
        if f not in state:
            visit(f, [f])


def check_includes(table, folders, problems):
    used_exceptions = set()
    for root, dirs, files in os.walk("src"):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(root, name)
            parts = path.split(os.sep)
            here = parts[1] if len(parts) > 2 else None   # None: src/main.c
            with open(path, encoding="utf-8", errors="replace") as fh:
                for lineno, line in enumerate(fh, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    target = m.group(1) or m.group(2)
                    if m.group(1) and ".." in target.split("/"):
                        problems.append(f'layers: {path}:{lineno}: includes "{target}" '
                                        "(name the folder from src/, not ../)")
                        continue
                    if "/" not in target:
                        continue
                    there = target.split("/")[0]
                    if there not in folders or here is None or there == here:
                        continue
                    if there in table.get(here, ()):
                        continue
                    if (path, there) in NOT_YET_REMOVED:
                        used_exceptions.add((path, there))
                        continue
                    problems.append(f"layers: {path}:{lineno}: {here}/ includes {target}, "
                                    f"but {DOC} does not let {here} include {there}")
    for path, there in sorted(NOT_YET_REMOVED - used_exceptions):
        problems.append(f"layers: {path} no longer includes {there}/: "
                        "remove it from NOT_YET_REMOVED in scripts/check-layers.py")


def main():
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    problems = []
    folders = {d for d in os.listdir("src") if os.path.isdir(os.path.join("src", d))}
    table = read_table(problems)
    if table:
        check_table(table, folders, problems)
        check_includes(table, folders, problems)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
