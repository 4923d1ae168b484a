"""``memorylab import``: ingest upstream results.tsv files and fork JSONL ledgers (idempotent)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..ingest.importer import import_files
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
    add_json_flag(p)
    p.set_defaults(handler=run)


def run(ctx: Context) -> int:
    args = ctx.args
    summary = import_files(ctx.store, ctx.history, args.paths, args.family, args.branch, args.dry_run)
    data = summary.to_dict()
    verb = "would import" if args.dry_run else "imported"
    lines = [f"{verb} {summary.imported} of {summary.rows_read} rows from {len(args.paths)} file(s)"]
    if summary.status_counts:
        lines.append("  by status: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.status_counts.items())))
    if summary.mapped_statuses:
        lines.append("  mapped statuses: " + ", ".join(f"{k} ({v})" for k, v in summary.mapped_statuses.items()))
    if summary.skipped:
        lines.append("  skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.skipped.items())))
    lines += [f"  warning: {w}" for w in summary.warnings[:10]]
    ctx.emit("\n".join(lines), data)
    return 0
