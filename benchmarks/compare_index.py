"""Fold one journal with two versions of the code and compare the indexes they build, row for row.

    python benchmarks/compare_index.py BEFORE_ROOT AFTER_ROOT JOURNAL [--work DIR]

``BEFORE_ROOT`` / ``AFTER_ROOT``: checkouts of the project (e.g. ``git worktree add /tmp/before main``).
Each builds the index of ``JOURNAL`` cold, in its own process, in a store of its own under ``--work``
(the journal is hard-linked there, or copied across file systems). Then every table of the two
``index.sqlite`` files is compared: the schema, the row counts and every row (sorted, so the order
SQLite returns them in does not matter). The only rows allowed to differ are ``meta``'s
``generation`` (a random token each rebuild draws) and ``journal`` / ``seen`` (the journal file's
inode and ctime, which a copy changes). Prints each build's CPU time and the first differences; exits 1 when
the indexes differ. A speed change that must not change a result (docs/benchmarks.md) is checked so.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

BUILD = """
import resource, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from memorylab_core.index.journal_index import JournalIndex
from memorylab_core.ledger.store import Store
JournalIndex.load(Store(Path(sys.argv[2])), quiet=True)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(f"{usage.ru_utime + usage.ru_stime:.2f}")
"""
FILE_META = ("generation", "journal", "seen")  # meta rows that name the rebuild or the file, not the journal's content


def place(journal: Path, store: Path) -> None:
    """A store at ``store`` whose journal is ``journal`` (hard-linked, else copied)."""
    store.mkdir(parents=True)
    target = store / "experiments.jsonl"
    try:
        os.link(journal, target)
    except OSError:
        shutil.copyfile(journal, target)


def build(root: Path, store: Path) -> float:
    """Build ``store``'s index with the code at ``root`` (a fresh process); returns its CPU seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORYLAB_")}
    out = subprocess.run([sys.executable, "-c", BUILD, str(root), str(store)], env=env, capture_output=True,
                         text=True, check=True)
    return float(out.stdout.split()[-1])


def table_rows(db: sqlite3.Connection) -> dict[str, list[tuple]]:
    """Every table's schema and rows (sorted; :data:`FILE_META` left out)."""
    out: dict[str, list[tuple]] = {"sqlite_master": sorted(db.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE type IN ('table', 'index')"))}
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall():
        rows = db.execute(f'SELECT * FROM "{name}"').fetchall()
        if name == "meta":
            rows = [r for r in rows if r[0] not in FILE_META]
        out[name] = sorted(rows, key=repr)
    return out


def differences(a: dict[str, list[tuple]], b: dict[str, list[tuple]], shown: int = 5) -> list[str]:
    """Lines naming what differs between two :func:`table_rows` results (empty when they are equal)."""
    found = []
    for name in sorted(set(a) | set(b)):
        left, right = a.get(name), b.get(name)
        if left == right:
            continue
        if left is None or right is None:
            found.append(f"table {name}: only in {'after' if left is None else 'before'}")
            continue
        found.append(f"table {name}: {len(left)} rows before, {len(right)} after")
        only_left, only_right = set(left) - set(right), set(right) - set(left)
        found += [f"  before only: {row!r}"[:300] for row in sorted(only_left, key=repr)[:shown]]
        found += [f"  after only: {row!r}"[:300] for row in sorted(only_right, key=repr)[:shown]]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("journal", type=Path)
    parser.add_argument("--work", type=Path, help="where the two stores go (default: a temporary folder)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="compare-index-", dir=args.work))
    try:
        tables, roots = {}, {"before": args.before, "after": args.after}
        for label in roots:
            place(args.journal.resolve(), work / label)
        for label, root in roots.items():
            cpu = build(root.resolve(), work / label)
            db = sqlite3.connect(work / label / "index.sqlite")
            tables[label] = table_rows(db)
            db.close()
            rows = sum(len(r) for r in tables[label].values())
            print(f"{label}: {root} built {rows:,} rows in {cpu:.2f} s of CPU")
        found = differences(tables["before"], tables["after"])
        print("\n".join(found) if found else f"identical: {len(tables['after'])} tables, every row equal")
        return 1 if found else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
