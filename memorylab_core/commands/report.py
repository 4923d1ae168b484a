"""``memorylab report``: the morning report (markdown, plus the HTML dashboard with ``--html``),
written to reports/ or --output."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from ..ledger.model import utc_stamp
from ..ledger.store import MemoryLabError, atomic_write_text, os_reason, write_derived
from ..render.report import all_arenas_data, render_markdown, report_data
from .common import Context, add_arena_flag, add_json_flag, hours, is_stdout, output_path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="write the morning report",
        description="Build the morning report for the last --since-hours (default 16) and write it to "
                    "reports/latest.md plus reports/<UTC stamp>.md, or to --output.")
    window = p.add_mutually_exclusive_group()
    window.add_argument("--since-hours", type=hours, default=16.0,
                        help="report window in hours (default 16)")
    window.add_argument("--all", action="store_true", help="report on all time")
    p.add_argument("--output", "-o", type=output_path, help="write the report here instead of reports/ ('-' = stdout)")
    p.add_argument("--html", action="store_true",
                   help="also write the self-contained HTML dashboard (reports/latest.html + reports/<stamp>.html); "
                        "with --output, write only the HTML there")
    add_arena_flag(p, all_allowed=True)
    add_json_flag(p)
    p.set_defaults(handler=run)


def write_report(ctx: Context, since_hours: float | None, output: Path | None = None,
                 now: datetime | None = None, data: dict | None = None, html: bool = False) -> list[Path]:
    """Render the report and write it; returns the written paths (none for stdout).

    ``html``: also write the dashboard beside the markdown; with ``output``, the dashboard alone goes there.
    An explicit ``output`` is checked first (never a file of the store, a directory or a device) and a
    failure to write it is an error; the copies under reports/ are derived files, so a store that
    cannot take them (read-only, disk full) gets a warning and the command still succeeds.
    """
    target = ctx.store.check_output_path(output) if output is not None and not is_stdout(output) else None
    now = now or datetime.now(timezone.utc)
    data = data if data is not None else arena_report(ctx, since_hours, now)
    page = _dashboard(ctx, since_hours, now, data) if html else None
    text = page if page is not None and output is not None else render_markdown(data)
    if is_stdout(output):
        print(text, end="")
        return []
    if target is not None:
        try:
            atomic_write_text(target, text)
        except OSError as exc:
            raise MemoryLabError(f"cannot write the report to {output}: {os_reason(exc)}") from exc
        return [target]
    return _write_to_reports(ctx, now, text, page)


def _dashboard(ctx: Context, since_hours: float | None, now: datetime, data: dict) -> str:
    """The HTML dashboard; its modules (charts, SVG, assets) load only for ``--html``."""
    from ..render.html_report import html_report

    return html_report(ctx.history, since_hours, now, data)


def _write_to_reports(ctx: Context, now: datetime, text: str, page: str | None) -> list[Path]:
    """reports/latest.md + reports/<stamp>.md (and the .html pair); a failure is a warning."""
    latest = ctx.store.reports_dir / "latest.md"
    stamped = ctx.store.reports_dir / f"{utc_stamp(now)}.md"
    files = [(stamped, text), (latest, text)]
    if page is not None:
        files += [(stamped.with_suffix(".html"), page), (latest.with_suffix(".html"), page)]

    def write_all() -> None:
        ctx.store.ensure()
        for path, content in files:
            atomic_write_text(path, content)

    if not write_derived(f"{ctx.store.reports_dir}/latest.md", write_all, "the report was built",
                         "print it with -o - or write it elsewhere with -o FILE"):
        return []
    order = [latest, stamped] + ([latest.with_suffix(".html"), stamped.with_suffix(".html")] if page else [])
    return order


def arena_report(ctx: Context, since_hours: float | None, now: datetime) -> dict:
    """The report data of the arena asked for (``--arena``; ``all``: every arena, each apart)."""
    if ctx.all_arenas:
        return all_arenas_data(ctx.history, since_hours, now)
    return report_data(ctx.history, since_hours, now, ctx.arena)


def run(ctx: Context) -> int:
    args = ctx.args
    since = None if args.all else args.since_hours
    now = datetime.now(timezone.utc)
    data = arena_report(ctx, since, now)
    if ctx.json:
        paths = [] if is_stdout(args.output) else write_report(ctx, since, args.output, now, data, args.html)
        ctx.emit("", {**data, "written": [str(p) for p in paths]})
        return 0
    paths = write_report(ctx, since, args.output, now, data, args.html)
    for path in paths[:1] + [p for p in paths[1:] if p.name == "latest.html"]:
        print(f"report written: {path}")
    return 0
