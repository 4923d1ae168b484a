"""The morning dashboard as one self-contained HTML file (inline CSS, inline SVG, a few lines of JS).

:func:`html_report` = :func:`~memorylab_core.dashboard.build_dashboard` + :func:`render_html`. The page
makes no network request: no external URL appears in it, and a Content-Security-Policy with
``default-src 'none'`` forbids any, while ``script-src`` admits only the page's own script by hash, so
even a string that escaped escaping could not run. The report data travels along as a JSON data
island (``#memorylab-data``) for anyone who wants the numbers behind the page.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from datetime import datetime

from .. import __version__
from ..index.journal_index import JournalIndex
from .charts import line_swatch, loss_chart, off_scale, progress_chart
from .dashboard import Dashboard, build_dashboard
from .html_assets import CSS, JS
from .html_sections import (
    board_card,
    champion_card,
    empty,
    extra_card,
    failures_card,
    fmt_val,
    lineage_card,
    queue_card,
    runs_card,
    section,
    stats,
    warnings,
    window_label,
)
from .htmltext import clip, esc, script_json
from .svg import glyph

NAV = (("champion", "Champion"), ("progress", "Progress"), ("queue", "Decisions"), ("board", "Challengers"),
       ("failures", "Failures"), ("lineage", "Lineage"), ("loss", "Loss curves"))


def html_report(history: JournalIndex, since_hours: float | None = 16.0, now: datetime | None = None,
                data: dict | None = None) -> str:
    """The dashboard page for the last ``since_hours`` (all time when None).

    With an all-arenas report (``report --arena all``) the page shows one labelled section per arena,
    each with its own headline, champion, progress chart (its own frontier: never one frontier across
    arenas), queue, board and lineage; the first arena's section also has the runs table and insights.
    """
    sections = (data or {}).get("arenas") or []
    if len(sections) > 1:
        dashes = [build_dashboard(history, since_hours, now, section) for section in sections]
        return render_html(dashes[0], dashes[1:])
    return render_html(build_dashboard(history, since_hours, now, data))


def csp() -> str:
    """The page's Content-Security-Policy: nothing may load; only this page's script may run."""
    digest = base64.b64encode(hashlib.sha256(JS.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; "
            "base-uri 'none'; form-action 'none'")


def _arena_core(dash: Dashboard) -> list[str]:
    """One arena's headline, champion, progress, queue, board, failures and lineage."""
    data = dash.data
    return [stats(data, dash.signals, dash.progress), champion_card(data, dash.champion_record, dash.progress),
            _progress_card(dash), queue_card(data),
            f'<div class="grid2">{board_card(data)}{failures_card(data["failure_clusters"])}</div>',
            lineage_card(data["lineages"], dash.descriptions)]


def _arena_heading(data: dict, number: int) -> str:
    return (f'<h2 class="arena" id="arena-{number}">Arena {esc(data.get("arena") or "default")} '
            f'<span class="muted">({data["total_runs"]:,} runs; compared only within this arena)</span></h2>')


def _other_arena(dash: Dashboard, number: int) -> str:
    """A further arena's section; its element ids are prefixed so that they stay unique on the page."""
    body = "".join(_arena_core(dash))
    body = re.sub(r'\b(id|for|aria-labelledby)="', rf'\1="a{number}-', body)
    body = body.replace('href="#', f'href="#a{number}-').replace("url(#", f"url(#a{number}-")
    return f'<section class="arena-section">{_arena_heading(dash.data, number)}{body}</section>'


def render_html(dash: Dashboard, others: Sequence[Dashboard] = ()) -> str:
    """The whole page: one arena, or (``others``) every arena in its own labelled section."""
    data = dash.data
    title = f"MemoryLab dashboard — {window_label(data)} — {data['generated_utc']}"
    head = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{csp()}">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<meta name="color-scheme" content="light dark"><title>{esc(title)}</title>'
            f"<style>{CSS}</style></head>")
    body = "".join([
        _masthead(data, dash), warnings(data), _arena_heading(data, 1) if others else "", *_arena_core(dash),
        _loss_card(dash), "".join(extra_card(e.key, e.title, e.content) for e in dash.extras),
        runs_card(dash.table, len(dash.runs), data, dash.number),
        "".join(_other_arena(other, n) for n, other in enumerate(others, 2)), _footer(data),
    ])
    return (f"{head}<body><main>{body}</main>"
            f'<script type="application/json" id="memorylab-data">{script_json(data)}</script>'
            f"<script>{JS}</script></body></html>\n")


def _masthead(data: dict, dash: Dashboard) -> str:
    extras = tuple((e.key.replace("_", "-"), e.title) for e in dash.extras)
    links = "".join(f'<a href="#{anchor}">{esc(name)}</a>' for anchor, name in (*NAV, *extras, ("runs", "Runs")))
    return (f'<header class="top"><h1>MemoryLab · morning dashboard</h1>'
            f'<span class="sub">arena {esc(data.get("arena") or "default")} · {esc(window_label(data))} · '
            f'generated {esc(data["generated_utc"])} · {data["total_runs"]:,} runs in this arena{_others(data)}'
            f'</span></header><nav class="toc">{links}</nav>')


def _others(data: dict) -> str:
    """The other arenas, named apart (their runs are never drawn on this arena's frontier)."""
    others = data.get("other_arenas") or []
    if not others:
        return ""
    return " · other arenas (report --arena KEY): " + esc(", ".join(o["arena"] for o in others[:5]))


def _legend() -> str:
    return ('<div class="legend">'
            f"<span>{glyph('keep')} kept</span><span>{glyph('discard')} discarded</span>"
            f"<span>{glyph('crash')} crashed (no val_bpb: top band)</span>"
            '<span><svg class="swatch" width="28" height="10" viewBox="0 0 28 10" aria-hidden="true">'
            '<path class="frontier" d="M1 8H12V2H27"/></svg> champion frontier</span>'
            "<span class='muted'>hover a mark for its run; click it to find the run below</span></div>")


def _progress_card(dash: Dashboard) -> str:
    if not dash.runs:
        hint = "" if dash.data.get("since_hours") is None else " Run with --all for the whole history."
        return section("progress", "Progress", empty(f"No runs in this window ({window_label(dash.data)}).{hint}"))
    linked = {run.index for run in dash.table}
    chart = progress_chart(dash.runs, dash.start_best, linked, dash.numbers, dash.changes)
    first, last = dash.number(dash.runs[0]), dash.number(dash.runs[-1])
    count, limit, worst = off_scale(dash.runs, dash.start_best, dash.changes)
    pinned = (f" ▲ {count:,} run{' is' if count == 1 else 's are'} above {limit:.4g} (worst {worst:.4g}), "
              "drawn on the top edge so they do not squash the scale." if count else "")
    caption = (f'<p class="muted">Experiments #{first:,}–#{last:,} ({len(dash.runs):,} runs). Labels name the runs '
               "that made a new champion (the promotion policy's, as every view names it); the frontier starts from "
               f"the champion at the window start.{pinned}</p>")
    return section("progress", f"Progress ({window_label(dash.data)})", _legend() + chart + caption)


def _loss_card(dash: Dashboard) -> str:
    if not dash.curves:
        return section("loss", "Loss curves",
                       empty("No archived sidecar with a loss curve (runs/<run_id>/summary.json) for the champion "
                             "or the latest runs."))
    items = []
    for number, curve in enumerate(dash.curves):
        role = "champion" if curve.champion else f"#{dash.number(curve.run)}"
        items.append(f"<span>{line_swatch(curve, number)} <strong>{esc(role)}</strong> "
                     f"<code>{esc(curve.run.run_id)}</code> {fmt_val(curve.run.val_bpb, 4)} "
                     f"<span class='muted'>{esc(clip(curve.run.description, 48))}</span></span>")
    legend = f'<div class="legend vertical">{"".join(items)}</div>'
    return section("loss", "Loss curves (smoothed train loss)",
                   f'<div class="loss-wrap">{loss_chart(dash.curves)}{legend}</div>')


def _footer(data: dict) -> str:
    return (f"<footer>MemoryLab {esc(__version__)} · report data embedded as JSON "
            f"(<code>#memorylab-data</code>) · {esc(data['generated_utc'])}</footer>")
