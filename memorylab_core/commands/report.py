"""``memorylab report``: the morning report (markdown, plus the HTML dashboard with ``--html``),
written to reports/ or --output."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from ..ingest.runs import utc_stamp
from ..ledger.store import MemoryLabError, atomic_write_text
from ..render.html_report import html_report
from ..render.report import render_markdown, report_data
from .common import Context, add_json_flag, positive_float


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="write the morning report",
        description="Build the morning report for the last --since-hours (default 16) and write it to "
                    "reports/latest.md plus reports/<UTC stamp>.md, or to --output.")
    window = p.add_mutually_exclusive_group()
    window.add_argument("--since-hours", type=positive_float, default=16.0,
                        help="report window in hours (default 16)")
    window.add_argument("--all", action="store_true", help="report on all time")
    p.add_argument("--output", "-o", type=Path, help="write the report here instead of reports/ ('-' = stdout)")
    p.add_argument("--html", action="store_true",
                   help="also write the self-contained HTML dashboard (reports/latest.html + reports/<stamp>.html); "
                        "with --output, write only the HTML there")
    add_json_flag(p)
    p.set_defaults(handler=run)


def write_report(ctx: Context, since_hours: float | None, output: Path | None = None,
                 now: datetime | None = None, data: dict | None = None, html: bool = False) -> list[Path]:
    """Render the report and write it; returns the written paths (none for stdout).

    ``html``: also write the dashboard beside the markdown; with ``output``, the dashboard alone goes there.
    """
    now = now or datetime.now(timezone.utc)
    data = data if data is not None else report_data(ctx.history, since_hours, now)
    page = html_report(ctx.history, since_hours, now, data) if html else None
    text = page if page is not None and output is not None else render_markdown(data)
    if output is not None and str(output) == "-":
        print(text, end="")
        return []
    if output is not None:
        if output.is_dir():
            raise MemoryLabError(f"--output {output} is a directory; give a file path")
        atomic_write_text(output, text)
        return [output]
    ctx.store.ensure()
    latest = ctx.store.reports_dir / "latest.md"
    stamped = ctx.store.reports_dir / f"{utc_stamp(now)}.md"
    atomic_write_text(stamped, text)
    atomic_write_text(latest, text)
    if page is None:
        return [latest, stamped]
    atomic_write_text(stamped.with_suffix(".html"), page)
    atomic_write_text(latest.with_suffix(".html"), page)
    return [latest, stamped, latest.with_suffix(".html"), stamped.with_suffix(".html")]


def run(ctx: Context) -> int:
    args = ctx.args
    since = None if args.all else args.since_hours
    now = datetime.now(timezone.utc)
    data = report_data(ctx.history, since, now)
    if ctx.json:
        to_stdout = args.output is not None and str(args.output) == "-"
        paths = [] if to_stdout else write_report(ctx, since, args.output, now, data, args.html)
        ctx.emit("", {**data, "written": [str(p) for p in paths]})
        return 0
    paths = write_report(ctx, since, args.output, now, data, args.html)
    for path in paths[:1] + [p for p in paths[1:] if p.name == "latest.html"]:
        print(f"report written: {path}")
    return 0
