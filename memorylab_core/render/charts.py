"""The dashboard's two charts as inline SVG: research progress and training-loss curves.

Progress follows upstream autoresearch's ``progress.png``: x is the experiment number, y is val_bpb
(lower is better, so better is lower on the page), one mark per run, and the champion frontier as a
step line. Crashes have no val_bpb, so they sit on their own band above the plot instead of
stretching the scale; values far above the bulk (exploded runs) are pinned to the top edge and
counted. Only the runs that moved the frontier get text labels, chosen so labels never overlap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..ledger.model import Run
from . import svg
from .htmltext import clip, esc

WIDTH, HEIGHT = 1100, 430
LEFT, RIGHT, TOP, BOTTOM = 64, 22, 12, 34
BAND = 24  # height of the crash band
GAP = 10  # between the crash band and the plot
LABEL_ANGLE = 28  # degrees; labels run from lower-left up to their mark
LABEL_FONT_PX = 10.5
LABEL_CHAR_PX = 5.9
LABEL_SPACING = 12.5  # minimum distance between two parallel labels, in px
MAX_LABEL_CHARS = 46
MAX_LABELS = 16  # rotated labels besides the champion's; the biggest improvements win
TOOLTIP_CHARS = 110


@dataclass
class Frontier:
    """Champion frontier steps, in order: (the run where the champion changed, the new champion's val_bpb)."""

    start: float | None
    steps: list[tuple[Run, float]]
    champion: Run | None = None  # the champion the last step made (its label); the step's run when None


def frontier(runs: Sequence[Run], start: float | None,
             changes: Sequence[tuple[Run, Run]] | None = None) -> Frontier:
    """The champion's changes within ``runs`` (``changes``: :func:`..policy.registry.champion_changes`, the
    promotion policy's champion, as every other view names it), from ``start`` (its val_bpb before the window).
    Without ``changes``: the kept runs that beat every earlier kept run (upstream's frontier)."""
    if changes is not None:
        shown = {run.index for run in runs}
        inside = [(at, champ) for at, champ in changes if at.index in shown and champ.val_bpb is not None]
        return Frontier(start, [(at, champ.val_bpb) for at, champ in inside], inside[-1][1] if inside else None)
    best, steps = start, []
    for run in runs:
        if run.status == "keep" and run.val_bpb is not None and (best is None or run.val_bpb < best):
            best = run.val_bpb
            steps.append((run, run.val_bpb))
    return Frontier(start, steps)


def tooltip(run: Run, number: int | None = None) -> str:
    """The hover text of a run's mark; ``number``: the run's place in its arena (1-based)."""
    value = f"{run.val_bpb:.6f}" if run.val_bpb is not None else "no val_bpb"
    head = f"#{number or run.index + 1} {run.status} · {value} · {run.run_id}"
    body = run.description if run.status != "crash" else f"{run.description} — {run.error_summary or 'crash'}"
    return f"{head}\n{clip(body, TOOLTIP_CHARS)}"


@dataclass
class _Layout:
    """Pixel geometry of the progress chart, fixed once the data is known."""

    x: svg.Scale
    y: svg.Scale
    plot_top: float
    plot_bottom: float
    band: tuple[float, float] | None  # crash band (top, bottom)
    numbers: Mapping[int, int]  # run index -> its experiment number in its arena (1-based)

    def number(self, run: Run) -> int:
        return self.numbers.get(run.index, run.index + 1)

    def px(self, run: Run) -> float:
        """The x of a run: its experiment number in its arena."""
        return self.x(self.number(run))


def _layout(runs: Sequence[Run], front: Frontier, numbers: Mapping[int, int] | None = None) -> _Layout:
    has_crash = any(r.status == "crash" or r.val_bpb is None for r in runs)
    band = (TOP, TOP + BAND) if has_crash else None
    plot_top = TOP + BAND + GAP if has_crash else TOP
    plot_bottom = HEIGHT - BOTTOM
    values = [r.val_bpb for r in runs if r.val_bpb is not None]
    must = [v for _, v in front.steps] + ([front.start] if front.start is not None else [])
    lo, hi = svg.robust_extent(values, must)
    lo -= (hi - lo) * 0.05  # room under the best run for the champion's label
    numbers = numbers or {}
    first, last = (numbers.get(r.index, r.index + 1) for r in (runs[0], runs[-1]))
    pad = max(0.5, (last - first) * 0.01)
    x = svg.Scale(first - pad, last + pad, LEFT, WIDTH - RIGHT)
    y = svg.Scale(lo, hi, plot_bottom, plot_top)
    return _Layout(x, y, plot_top, plot_bottom, band, numbers)


def progress_chart(runs: Sequence[Run], start: float | None = None, linked: set[int] | None = None,
                   numbers: Mapping[int, int] | None = None, changes: Sequence[tuple[Run, Run]] | None = None) -> str:
    """The progress chart of ``runs`` (non-empty, ledger order, one arena) as one ``<svg>`` element.

    ``start`` is the champion's val_bpb before the first of ``runs`` (the frontier starts there);
    ``linked`` holds run indexes that have a row ``#r<index>`` in the page's runs table; ``numbers``
    maps a run's index to its experiment number in its arena (the x axis; default: its ledger place);
    ``changes``: the champion's changes (see :func:`frontier`).
    """
    front = frontier(runs, start, changes)
    lay = _layout(runs, front, numbers)
    parts = [_frame(lay), _axes(lay), _frontier_line(front, lay), _marks(runs, lay, linked or set()),
             _labels(front, lay)]
    summary = (f"Progress chart: {len(runs)} runs, {len(front.steps)} new champions; "
               f"lower val_bpb is better")
    return (f'<svg id="progress" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="{esc(summary)}" preserveAspectRatio="xMidYMid meet">'
            f"<title>{esc(summary)}</title>{''.join(parts)}</svg>")


def _frame(lay: _Layout) -> str:
    out = [f'<rect class="plot-bg" x="{LEFT}" y="{svg.num(lay.plot_top)}" width="{WIDTH - LEFT - RIGHT}" '
           f'height="{svg.num(lay.plot_bottom - lay.plot_top)}"/>']
    if lay.band:
        top, bottom = lay.band
        out.append(f'<rect class="band" x="{LEFT}" y="{top}" width="{WIDTH - LEFT - RIGHT}" height="{bottom - top}"/>')
        out.append(svg.text(LEFT - 6, (top + bottom) / 2 + 3.5, "crash", "tick band-label", "end"))
    return "".join(out)


def _axes(lay: _Layout) -> str:
    y_ticks = svg.nice_ticks(lay.y.d0, lay.y.d1, 6)
    digits = svg.decimals_for(y_ticks[1] - y_ticks[0]) if len(y_ticks) > 1 else 4
    x_ticks = [t for t in svg.nice_ticks(lay.x.d0, lay.x.d1, 10) if t == int(t) and t >= 1]
    out = [svg.y_axis(lay.y, y_ticks, LEFT, WIDTH - RIGHT, lambda v: f"{v:.{digits}f}"),
           svg.x_axis(lay.x, x_ticks, lay.plot_top, lay.plot_bottom, lambda v: f"{v:,.0f}")]
    mid = (lay.plot_top + lay.plot_bottom) / 2
    out.append(svg.text(14, mid, "val_bpb (lower is better)", "axis-title", "middle", -90))
    out.append(svg.text(WIDTH - RIGHT, HEIGHT - 2, "experiment #", "axis-title", "end"))
    return "".join(out)


def _frontier_line(front: Frontier, lay: _Layout) -> str:
    points = [(lay.px(run), lay.y(value)) for run, value in front.steps]
    if front.start is not None:
        points.insert(0, (float(LEFT), lay.y(front.start)))
    if not points:
        return ""
    return f'<path class="frontier" d="{svg.step_line(points, WIDTH - RIGHT)}"/>'


def _mark_y(run: Run, lay: _Layout) -> float:
    if run.val_bpb is None:
        top, bottom = lay.band or (lay.plot_top, lay.plot_top)
        jitter = ((run.index * 37) % 9 - 4) * 1.6  # spread stacked crashes a little, deterministically
        return (top + bottom) / 2 + jitter
    return lay.y.clamp(run.val_bpb) if run.val_bpb > lay.y.d1 else lay.y(run.val_bpb)


def _marks(runs: Sequence[Run], lay: _Layout, linked: set[int]) -> str:
    """One mark per run; kept runs are drawn last so they sit on top of the discards."""
    order = sorted(runs, key=lambda r: (r.status == "keep", r.index))
    out = ['<g class="marks">']
    for run in order:
        mark = svg.mark(run.status, lay.px(run), _mark_y(run, lay), tooltip(run, lay.number(run)),
                        f'data-i="{run.index}"')
        out.append(f'<a href="#r{run.index}">{mark}</a>' if run.index in linked else mark)
    out.append("</g>")
    return "".join(out)


def off_scale(runs: Sequence[Run], start: float | None = None,
              changes: Sequence[tuple[Run, Run]] | None = None) -> tuple[int, float | None, float | None]:
    """Runs whose val_bpb lies above the chart's range (drawn on its top edge): count, limit, worst."""
    lay = _layout(runs, frontier(runs, start, changes))
    above = [r.val_bpb for r in runs if r.val_bpb is not None and r.val_bpb > lay.y.d1]
    return len(above), lay.y.d1, max(above) if above else None


def _labels(front: Frontier, lay: _Layout) -> str:
    """The champion's label, then rotated labels for the other frontier steps, biggest improvements
    first, each kept only if it overlaps no label already placed."""
    if not front.steps:
        return ""
    angle = math.radians(LABEL_ANGLE)
    sin, cos = math.sin(angle), math.cos(angle)
    candidates, previous = [], front.start
    for run, value in front.steps[:-1]:
        candidates.append((previous - value if previous is not None else float("inf"), run, value))
        previous = value
    placed: list[tuple[float, float, float]] = []
    out = ['<g class="labels">', _champion_label(front, lay)]
    for _, run, value in sorted(candidates, key=lambda c: -c[0]):
        label = _place_label(run, lay.px(run), lay.y(value), lay, placed, sin, cos)
        if label:
            out.append(label)
        if len(placed) >= MAX_LABELS:
            break
    out.append("</g>")
    return "".join(out)


def _champion_label(front: Frontier, lay: _Layout) -> str:
    """A ring round the champion and a horizontal label just under its level, on the wider side of it.

    Nothing is drawn below the champion's level except the rare discard that measured better, so the
    label cannot hide marks or cross other labels (those rise above their runs)."""
    run, value = front.steps[-1]
    champ = front.champion or run
    if champ.index in lay.numbers or front.champion is None:  # ring the champion's own mark when it is shown
        run = champ
    x, y = lay.px(run), lay.y(value)
    left_room, right_room = x - 12 - LEFT, WIDTH - RIGHT - x - 12
    anchor, ax = ("end", x - 10) if left_room >= right_room else ("start", x + 10)
    text = clip(f"★ champion {value:.4f} · {champ.description or champ.run_id}",
                int(max(left_room, right_room) / LABEL_CHAR_PX))
    ring = f'<circle class="champ-ring" cx="{svg.num(x)}" cy="{svg.num(y)}" r="8"/>'
    return ring + svg.text(ax, min(y + 17, lay.plot_bottom - 3), text, "label champ-label", anchor)


def _place_label(run: Run, x: float, y: float, lay: _Layout, placed: list[tuple[float, float, float]],
                 sin: float, cos: float) -> str:
    """A label rising to the upper right of its mark, or, without room there (near the right edge),
    ending just below-left of it. Empty when it would overlap a label already placed."""
    above = (x + 7, y - 7, "start", min((WIDTH - RIGHT - x - 7) / cos, (y - 7 - lay.plot_top) / sin))
    below = (x - 6, y + 11, "end", min((x - 6 - LEFT) / cos, (lay.plot_bottom - y - 11) / sin))
    for ax, ay, anchor, room in (above, below):
        chars = min(MAX_LABEL_CHARS, int(room / LABEL_CHAR_PX))
        if chars < 10:
            continue
        text = clip(run.description or run.run_id, chars)
        along = ax * cos - ay * sin  # position along the label direction
        length = len(text) * LABEL_CHAR_PX
        span = (along, along + length) if anchor == "start" else (along - length, along)
        across = ax * sin + ay * cos  # position across it: parallel labels closer than this overlap
        if any(abs(across - n) < LABEL_SPACING and span[0] < t1 + 4 and t0 < span[1] + 4 for n, t0, t1 in placed):
            return ""
        placed.append((across, *span))
        return svg.text(ax, ay, text, "label", anchor, -LABEL_ANGLE)
    return ""


LOSS_WIDTH, LOSS_HEIGHT = 560, 260
LOSS_LEFT, LOSS_RIGHT, LOSS_TOP, LOSS_BOTTOM = 50, 18, 10, 40


@dataclass
class Curve:
    """One run's sampled training loss: (progress through the time budget in [0, 1], loss) points."""

    run: Run
    points: list[tuple[float, float]]
    champion: bool = False

    @property
    def css(self) -> str:
        """Line style class: the champion is solid and bold, the others numbered (colour + dash)."""
        return "champ" if self.champion else "other"


def curve_points(loss_curve: object) -> list[tuple[float, float]]:
    """Finite (progress, loss) points from a sidecar's ``loss_curve`` (progress from step if absent)."""
    if not isinstance(loss_curve, list):
        return []
    rows = [p for p in loss_curve if isinstance(p, dict)]
    steps = [p.get("step") for p in rows if isinstance(p.get("step"), (int, float))]
    last_step = max(steps) if steps else 0
    points = []
    for p in rows:
        x, y = p.get("progress"), p.get("loss")
        if not isinstance(x, (int, float)) and isinstance(p.get("step"), (int, float)) and last_step:
            x = p["step"] / last_step
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isfinite(x) and math.isfinite(y):
            points.append((min(1.0, max(0.0, float(x))), float(y)))
    return sorted(points)


def loss_chart(curves: Sequence[Curve]) -> str:
    """Loss against budget progress for a few runs. The scale fits the last three quarters of the budget,
    where runs differ; the steep first quarter is cut at the top edge."""
    late = [y for c in curves for x, y in c.points if x >= 0.25] or [y for c in curves for _, y in c.points]
    lo, hi = min(late), max(late)
    margin = (hi - lo) * 0.08 or 0.05
    bottom, top = LOSS_HEIGHT - LOSS_BOTTOM, LOSS_TOP
    x = svg.Scale(0.0, 1.0, LOSS_LEFT, LOSS_WIDTH - LOSS_RIGHT)
    y = svg.Scale(lo - margin, hi + margin, bottom, top)
    y_ticks = svg.nice_ticks(y.d0, y.d1, 5)
    digits = svg.decimals_for(y_ticks[1] - y_ticks[0]) if len(y_ticks) > 1 else 2
    parts = [f'<rect class="plot-bg" x="{LOSS_LEFT}" y="{top}" width="{LOSS_WIDTH - LOSS_LEFT - LOSS_RIGHT}" '
             f'height="{bottom - top}"/>',
             svg.y_axis(y, y_ticks, LOSS_LEFT, LOSS_WIDTH - LOSS_RIGHT, lambda v: f"{v:.{digits}f}"),
             svg.x_axis(x, [0, 0.25, 0.5, 0.75, 1.0], top, bottom, lambda v: f"{v:.0%}"),
             svg.text((LOSS_LEFT + LOSS_WIDTH - LOSS_RIGHT) / 2, LOSS_HEIGHT - 3, "share of the time budget",
                      "axis-title", "middle"),
             f'<clipPath id="loss-clip"><rect x="{LOSS_LEFT}" y="{top}" width="{LOSS_WIDTH - LOSS_LEFT - LOSS_RIGHT}" '
             f'height="{bottom - top}"/></clipPath><g clip-path="url(#loss-clip)">']
    ordered = sorted(enumerate(curves), key=lambda item: item[1].champion)  # champion drawn last, on top
    for number, curve in ordered:
        d = svg.polyline([(x(px), y(py)) for px, py in curve.points])
        parts.append(f'<path class="curve {curve.css} n{number}" d="{d}">'
                     f"{svg.title(f'{curve.run.run_id}: {clip(curve.run.description, 80)}')}</path>")
    parts.append("</g>")
    label = f"Training loss of {len(curves)} runs"
    return (f'<svg class="chart loss" viewBox="0 0 {LOSS_WIDTH} {LOSS_HEIGHT}" role="img" aria-label="{esc(label)}">'
            f"<title>{esc(label)}</title>{''.join(parts)}</svg>")


def line_swatch(curve: Curve, number: int) -> str:
    """A short sample of a curve's line style, for the legend."""
    return (f'<svg class="swatch" width="28" height="10" viewBox="0 0 28 10" aria-hidden="true">'
            f'<path class="curve {curve.css} n{number}" d="M1 5H27"/></svg>')
