"""Chart primitives for inline SVG: scales, nice ticks, axes, marks, step and polylines.

Pure functions that return SVG markup strings; no state, no I/O. The dashboard composes them into
charts (:mod:`memorylab_core.charts`). Colours are not set here: every element carries a class and
the page's CSS paints it, so dark mode and print styles reach the charts too. Every text passed in is
escaped with :func:`~memorylab_core.htmltext.esc`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .htmltext import esc

Point = tuple[float, float]

# Mark shapes by run status: shape and colour both carry the status (colour comes from the CSS class).
MARK_SIZE = {"keep": 4.2, "discard": 2.3, "crash": 3.2}


@dataclass(frozen=True)
class Scale:
    """Linear map from a data domain [d0, d1] to a pixel range [r0, r1] (either may be reversed)."""

    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, value: float) -> float:
        if self.d1 == self.d0:
            return (self.r0 + self.r1) / 2
        return self.r0 + (value - self.d0) * (self.r1 - self.r0) / (self.d1 - self.d0)

    def clamp(self, value: float) -> float:
        """The pixel position of ``value`` held inside the range."""
        lo, hi = sorted((self.r0, self.r1))
        return min(hi, max(lo, self(value)))


def num(value: float) -> str:
    """A coordinate with one decimal and no trailing ``.0`` (keeps thousands of marks compact)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def nice_step(span: float, count: int) -> float:
    """A round tick step (1, 2, 2.5 or 5 × 10^k) giving about ``count`` intervals over ``span``."""
    if span <= 0 or count < 1:
        return 1.0
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values inside [lo, hi]."""
    if hi < lo:
        lo, hi = hi, lo
    step = nice_step(hi - lo, count)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, k = [], 0
    while first + k * step <= hi + step * 1e-9 and k < 100:
        ticks.append(round(first + k * step, 12))
        k += 1
    return ticks


def decimals_for(step: float) -> int:
    """Fewest decimals that write ``step`` (and so every tick on its grid) exactly: 0.025 → 3."""
    for digits in range(0, 10):
        scaled = step * 10 ** digits
        if abs(scaled - round(scaled)) < 1e-6 * max(1.0, scaled):
            return digits
    return 10


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted-able ``values`` (linear interpolation); values must be non-empty."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def robust_extent(values: Sequence[float], must_include: Iterable[float] = (), q: float = 0.95,
                  pad: float = 0.06) -> tuple[float, float]:
    """A value range showing the bulk of ``values`` and all of ``must_include``, padded.

    The top is cut at the ``q`` quantile plus a margin so one exploded run (val_bpb 7 among values
    near 1) does not squash everything else into a line; values above it are drawn at the edge.
    """
    keep = list(must_include)
    pool = list(values) + keep
    if not pool:
        return 0.0, 1.0
    lo = min(pool)
    body_top = quantile(values, q) if values else lo
    hi = max([body_top, *keep]) if keep else body_top
    hi = min(max(pool), hi + 0.25 * (hi - lo))
    if hi - lo < 1e-9:
        span = abs(lo) * 0.01 or 0.01
        return lo - span, hi + span
    margin = (hi - lo) * pad
    return lo - margin, hi + margin


def tag(name: str, attrs: dict[str, object], body: str = "") -> str:
    """One SVG element; attribute values are escaped, ``None`` values are left out."""
    parts = "".join(f' {key.replace("_", "-")}="{esc(value)}"' for key, value in attrs.items() if value is not None)
    return f"<{name}{parts}>{body}</{name}>" if body else f"<{name}{parts}/>"


def title(text: str) -> str:
    """A hover tooltip (escaped)."""
    return f"<title>{esc(text)}</title>" if text else ""


def mark(status: str, x: float, y: float, tooltip: str = "", extra: str = "") -> str:
    """The mark of one run: keep ● (circle), discard ■ (square), crash ✕ (cross); class ``mark <status>``.

    ``extra`` is a raw, already-safe attribute string (e.g. ``data-i="12"``).
    """
    body = title(tooltip)
    size = MARK_SIZE.get(status, MARK_SIZE["discard"])
    attrs = f' class="mark {esc(status)}"{" " + extra if extra else ""}'
    if status == "keep":
        return f'<circle{attrs} cx="{num(x)}" cy="{num(y)}" r="{size}">{body}</circle>'
    if status == "crash":
        d = f"M{num(x - size)} {num(y - size)}l{2 * size} {2 * size}m0 {-2 * size}l{-2 * size} {2 * size}"
        return f'<path{attrs} d="{d}">{body}</path>'
    return (f'<rect{attrs} x="{num(x - size)}" y="{num(y - size)}" width="{2 * size:g}" '
            f'height="{2 * size:g}">{body}</rect>')


def glyph(status: str, size: float = 14) -> str:
    """A small standalone SVG of a status mark (drawn in a 10-unit box), for legends and tiles."""
    inner = mark(status, 5, 5).replace('class="mark ', 'class="glyph ')
    return (f'<svg class="glyph-svg" width="{size:g}" height="{size:g}" viewBox="0 0 10 10" '
            f'aria-hidden="true">{inner}</svg>')


def polyline(points: Sequence[Point]) -> str:
    """Path data through ``points``."""
    if not points:
        return ""
    head, *rest = points
    return f"M{num(head[0])} {num(head[1])}" + "".join(f"L{num(x)} {num(y)}" for x, y in rest)


def step_line(points: Sequence[Point], x_end: float) -> str:
    """Path data of a step function: level from each point until the next, then a vertical drop."""
    if not points:
        return ""
    d = [f"M{num(points[0][0])} {num(points[0][1])}"]
    for x, y in points[1:]:
        d.append(f"H{num(x)}V{num(y)}")
    d.append(f"H{num(max(x_end, points[-1][0]))}")
    return "".join(d)


def y_axis(scale: Scale, ticks: Sequence[float], x0: float, x1: float, fmt: Callable[[float], str]) -> str:
    """Horizontal grid lines with value labels left of ``x0``."""
    out = []
    for value in ticks:
        y = num(scale(value))
        out.append(f'<line class="grid" x1="{num(x0)}" x2="{num(x1)}" y1="{y}" y2="{y}"/>'
                   f'<text class="tick" x="{num(x0 - 6)}" y="{y}" dy="0.32em" text-anchor="end">'
                   f"{esc(fmt(value))}</text>")
    return "".join(out)


def x_axis(scale: Scale, ticks: Sequence[float], y0: float, y1: float, fmt: Callable[[float], str]) -> str:
    """Vertical grid lines with value labels below ``y1``."""
    out = []
    for value in ticks:
        x = num(scale(value))
        out.append(f'<line class="grid" x1="{x}" x2="{x}" y1="{num(y0)}" y2="{num(y1)}"/>'
                   f'<text class="tick" x="{x}" y="{num(y1 + 16)}" text-anchor="middle">{esc(fmt(value))}</text>')
    return "".join(out)


def text(x: float, y: float, body: str, cls: str = "label", anchor: str = "start", rotate: float = 0) -> str:
    """An escaped text label, optionally rotated about its anchor point."""
    transform = f' transform="rotate({rotate:g} {num(x)} {num(y)})"' if rotate else ""
    return (f'<text class="{esc(cls)}" x="{num(x)}" y="{num(y)}" text-anchor="{anchor}"{transform}>'
            f"{esc(body)}</text>")
