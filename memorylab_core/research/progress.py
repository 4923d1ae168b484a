"""Research progress per arena: improvement velocity (and, built on it, the phase of the search).

:class:`Velocity` is a sub-fold of the research memory (:mod:`.memory`). It counts GPU time over every
run of the arena (a run's ``metrics.training_seconds``; else the time since the previous run's
timestamp) and experiments over valid idea runs only, and after each idea it records a point
``(experiments, GPU seconds, champion val_bpb, tip val_bpb)``. The *champion* is the confirmed
champion of the arena (the registry's rule); the *tip* is the latest kept run. Velocity is the val_bpb
gained between two points, per GPU-hour and per experiment, over the whole epoch (since the latest
re-baseline, as gains are not comparable across one) and over the latest ``VELOCITY_WINDOW`` ideas.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..evidence.arenas import training_hour_unit
from ..ledger.model import Run

VELOCITY_WINDOW = 20  # ideas in the recent window (and in the window before it, for the trend)
MAX_GAP_SECONDS = 3600.0  # a gap between two timestamps longer than this is idle time, not training


def training_seconds(run: Run, previous_ts: float | None) -> float:
    """GPU time of one run: its ``training_seconds`` metric, else the gap since the previous run (capped)."""
    seconds = run.extra.get("training_seconds")
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds >= 0:
        return float(seconds)
    if run.ts is None or previous_ts is None:
        return 0.0
    return min(max(0.0, run.ts - previous_ts), MAX_GAP_SECONDS)


@dataclass
class Velocity:
    """GPU time and experiments since the epoch start, and the points velocity is measured between."""

    gpu_seconds: float = 0.0  # every run of the arena, since the first run
    ideas: int = 0  # valid idea runs
    last_ts: float | None = None
    epoch: list | None = None  # the point at the latest re-baseline: [ideas, gpu_seconds, champion, tip]
    tip: float | None = None  # val_bpb of the latest kept run of the epoch
    points: deque = field(default_factory=lambda: deque(maxlen=2 * VELOCITY_WINDOW + 1))

    def add(self, outcome, champion: Run | None, counts: bool) -> None:
        """Fold one run: ``champion`` is the arena's champion after it; ``counts``: a valid idea run."""
        run = outcome.run
        self.gpu_seconds += training_seconds(run, self.last_ts)
        self.last_ts = run.ts if run.ts is not None else self.last_ts
        if run.status == "keep" and run.val_bpb is not None and not run.replicate_of:
            self.tip = run.val_bpb
        champ = champion.val_bpb if champion is not None else None
        if outcome.new_epoch:
            self.epoch = [self.ideas, self.gpu_seconds, champ, self.tip]
            self.points.clear()
            self.points.append(tuple(self.epoch))
        elif counts:
            self.ideas += 1
            self.points.append((self.ideas, self.gpu_seconds, champ, self.tip))

    def champion_event(self, champion: Run | None) -> None:
        """A promotion or rollback changed the champion: the latest point carries the new one."""
        if self.points and champion is not None:
            ideas, seconds, _, tip = self.points[-1]
            self.points[-1] = (ideas, seconds, champion.val_bpb, tip)

    def view(self, arena: str | None = None) -> dict:
        """Velocity over the epoch and the recent window, from the champion and from the tip, and the trend;
        ``hour_unit`` says what the ``gpu_hours`` of ``arena``'s runs are (CPU-hours on a CPU arena)."""
        points = list(self.points)
        now = points[-1] if points else None
        recent = _span(points[-VELOCITY_WINDOW - 1] if len(points) > VELOCITY_WINDOW else (points or [None])[0], now)
        before = None
        if len(points) > 2 * VELOCITY_WINDOW:
            before = _span(points[0], points[VELOCITY_WINDOW])
        trend = None
        if recent and before and before["champion"]["per_gpu_hour"]:
            trend = round(recent["champion"]["per_gpu_hour"] / before["champion"]["per_gpu_hour"], 4)
        return {"history": _span(tuple(self.epoch) if self.epoch else None, now), "recent": recent,
                "previous_window": before, "window": VELOCITY_WINDOW, "trend": trend,
                "gpu_hours": round(self.gpu_seconds / 3600, 4), "experiments": self.ideas,
                "hour_unit": training_hour_unit(arena)}


def _span(start: tuple | None, end: tuple | None) -> dict | None:
    """Velocity between two points, or None when they are the same point (nothing to measure yet)."""
    if start is None or end is None or end[0] <= start[0]:
        return None
    experiments, hours = end[0] - start[0], (end[1] - start[1]) / 3600
    return {"experiments": experiments, "gpu_hours": round(hours, 4),
            "champion": _rates(start[2], end[2], experiments, hours),
            "tip": _rates(start[3], end[3], experiments, hours)}


def _rates(first: float | None, last: float | None, experiments: int, hours: float) -> dict:
    gained = None if first is None or last is None else round(first - last, 6)
    return {"gained": gained,
            "per_gpu_hour": None if gained is None or hours <= 0 else round(gained / hours, 6),
            "per_experiment": None if gained is None else round(gained / experiments, 8)}


def velocity_phrase(view: dict) -> str:
    """One line: the champion's recent and whole-epoch velocity, with units (no missing values shown)."""
    parts = []
    for name, label in (("recent", f"last {view['window']} ideas"), ("history", "since baseline")):
        span = view[name]
        rate = span["champion"] if span else {}
        rates = []
        if rate.get("per_gpu_hour") is not None:
            rates.append(f"{rate['per_gpu_hour']:.4f} val_bpb/{view.get('hour_unit', 'GPU-hour')}")
        if rate.get("per_experiment") is not None:
            rates.append(f"{rate['per_experiment']:.5f} val_bpb/idea")
        if rates:
            parts.append(f"{label}: {', '.join(rates)}")
    if not parts:
        return "velocity   not measurable yet (needs a baseline and one idea)"
    trend = "" if view["trend"] is None else f" · trend ×{view['trend']:.2f}"
    return "velocity   " + " · ".join(parts) + trend


# -- phase: what the search is doing now, from its recent ideas ------------------------------------

PHASE_WINDOW = 10  # latest ideas whose novelty mix, keep rate and crashes decide the phase
PHASES = ("starting", "exploring", "exploiting", "plateaued", "recovering")
RECOVERING_STREAK = 3  # crashes in a row (the breaker's warning level)
EXPLORING_NOVEL_SHARE = 0.5  # at least this share of the recent ideas (with a known class) is novel
EXPLOITING_KEEP_RATE = 0.2  # without a known novelty class: a keep rate from this is exploiting
STALL_GAIN = 0.002  # a full recent window gaining less than the noise band counts as plateaued
ADVICE = {
    "starting": "replicate the baseline (memorylab replicate HEAD) to measure the noise, then try a first idea",
    "recovering": "fix the crash cause from the last good commit first",
    "plateaued": "make a structural change (architecture, radical or combined), not a knob tweak",
    "exploring": "broad search: keep changes small enough to attribute",
    "exploiting": "refine the champion; under trend ×0.50 plan a structural change",
}


def phase_of(timeline, velocity: dict) -> dict:
    """The phase of the search now, its signals and a one-line explanation with advice."""
    ideas = [o.run for o in timeline.recent if o.attempt][-PHASE_WINDOW:]
    known = [r for r in ideas if r.novelty_class]
    novel = sum(r.novelty_class == "novel" for r in known)
    keeps, crashes = sum(r.status == "keep" for r in ideas), sum(r.status == "crash" for r in ideas)
    plateau, streak = timeline.plateau(), timeline.breaker_fold.streak
    recent = velocity.get("recent") or {}
    gained = (recent.get("champion") or {}).get("gained")
    signals = {"ideas": len(ideas), "novel": novel, "known_class": len(known), "keeps": keeps, "crashes": crashes,
               "keep_rate": round(keeps / len(ideas), 4) if ideas else None, "crash_streak": streak,
               "experiments_since_improvement": plateau["experiments_since_improvement"],
               "velocity_trend": velocity.get("trend"), "recent_gain": gained}
    full = recent.get("experiments", 0) >= velocity.get("window", 0) > 0
    name = _phase_name(signals, plateau["on_plateau"], full)
    return {"phase": name, "advice": ADVICE[name], "signals": signals, "line": phase_line(name, signals)}


def _phase_name(s: dict, on_plateau: bool, full_window: bool) -> str:
    """The phase rule (docs/insights.md, "Phase"): the first that holds of starting, recovering, plateaued,
    exploring."""
    if not s["ideas"] and not on_plateau:
        return "starting"
    if s["crash_streak"] >= RECOVERING_STREAK or (s["crashes"] >= 2 and 2 * s["crashes"] >= s["ideas"]):
        return "recovering"
    if on_plateau or (full_window and s["recent_gain"] is not None and s["recent_gain"] < STALL_GAIN):
        return "plateaued"
    if s["known_class"]:
        novel_enough = s["novel"] >= EXPLORING_NOVEL_SHARE * s["known_class"]
    else:
        novel_enough = s["ideas"] > 0 and s["keeps"] < EXPLOITING_KEEP_RATE * s["ideas"]
    return "exploring" if novel_enough else "exploiting"


def phase_line(name: str, s: dict) -> str:
    """The phase in one line: its evidence (with units) and what to do."""
    if name == "starting":
        why = "no idea tried since the baseline yet"
    elif name == "recovering":
        why = f"{s['crash_streak']} crashes in a row, {s['crashes']} of the last {s['ideas']} ideas"
    elif name == "plateaued":
        why = f"{s['experiments_since_improvement']} ideas since the last improvement"
        if s["recent_gain"] is not None:
            why += f", {s['recent_gain']:.4f} val_bpb gained recently"
    else:
        mix = f"{s['novel']}/{s['known_class']} novel" if s["known_class"] else "novelty unrecorded"
        why = f"{mix}, {100 * (s['keep_rate'] or 0):.0f}% kept of the last {s['ideas']} ideas"
        if s["velocity_trend"] is not None:
            why += f", trend ×{s['velocity_trend']:.2f}"
    return f"phase      {name}: {why} — {ADVICE[name]}"
