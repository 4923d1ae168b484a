"""``memorylab import``: ingest upstream results.tsv files and fork JSONL ledgers (idempotent)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..ingest.importer import import_files
from ..ledger.model import plural
from ..ledger.store import warn
from .common import Context, add_json_flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import", help="import results.tsv / JSONL history (idempotent)",
        description="Import upstream results.tsv files (extra columns, any column order, CRLF, blank lines "
                    "and odd statuses tolerated) or MemoryLab JSONL ledgers. Rows keep their file order as "
                    "their timeline. Importing the same file again adds nothing.")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="results.tsv or .jsonl files")
    p.add_argument("--family", help="family label for the imported runs")
    p.add_argument("--branch", help="branch label for the imported runs")
    p.add_argument("--dry-run", action="store_true", help="report what would be imported; write nothing")
    splits = p.add_mutually_exclusive_group()
    splits.add_argument("--no-split", action="store_true",
                        help="keep each file in one arena, even across re-baseline rows")
    splits.add_argument("--split-at", type=_rows, metavar="ROWS", default=(),
                        help="start a new arena at these 1-based data rows (comma-separated) instead of at the "
                             "re-baseline rows found automatically")
    add_json_flag(p)
    p.set_defaults(handler=run)


def _rows(text: str) -> tuple[int, ...]:
    """``--split-at 6,20``: 1-based data rows (each > 1: the first row starts the file's arena anyway)."""
    try:
        rows = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of row numbers: {text[:40]!r}") from None
    if not rows or any(not 2 <= r <= 10_000_000 for r in rows):
        raise argparse.ArgumentTypeError(f"rows must be numbers from 2 up: {text[:40]!r}")
    return rows


WARNINGS_SHOWN = 10  # warnings printed; --json has them all


def run(ctx: Context) -> int:
    args = ctx.args
    split = "none" if args.no_split else ("rows" if args.split_at else "auto")
    summary = import_files(ctx.store, ctx.history, args.paths, args.family, args.branch, args.dry_run,
                           split, args.split_at)
    data = summary.to_dict()
    verb = "would import" if args.dry_run else "imported"
    lines = [f"{verb} {summary.imported} of {summary.rows_read} rows from {plural(len(args.paths), 'file')}"]
    if summary.status_counts:
        lines.append("  by status: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.status_counts.items())))
    if summary.mapped_statuses:
        lines.append("  mapped statuses: " + ", ".join(f"{k} ({v})" for k, v in summary.mapped_statuses.items()))
    if summary.skipped:
        lines.append("  skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.skipped.items())))
    for name, arenas in summary.arenas.items():
        lines.append(f"  {name}: arena{'s' if len(arenas) != 1 else ''} {', '.join(arenas)}")
    for sp in summary.splits:
        lines.append(f"  split {sp['file']} at row {sp['row']} → new arena {sp['arena']} "
                     f"({sp['description'][:80]}); --no-split keeps one arena, --split-at ROWS states them")
    if summary.artifact_files:
        copied = "would copy" if summary.dry_run else "copied"
        lines.append(f"  {copied} {plural(summary.artifact_files, 'archived file')} (runs/<run_id>/) "
                     "into the store's archive")
    ctx.emit("\n".join(lines), data)
    if not ctx.json:  # warnings on stderr, as every command's: `import ... > log` keeps them in view
        for warning in summary.warnings[:WARNINGS_SHOWN]:
            warn(warning)
        if len(summary.warnings) > WARNINGS_SHOWN:
            warn(f"and {len(summary.warnings) - WARNINGS_SHOWN} more (import --json lists them all)")
    return 0
