"""Early abort: stop a run whose loss curve cannot catch the champion, calibrated on the arena's own history.

Every discarded run of a night burns its whole budget. A run far behind the champion's loss curve at
the same progress through its budget usually stays behind -- but not always: a shorter warmdown, a
longer warmup or a higher learning rate trains "behind" at high lr and overtakes when the lr anneals.
So the rule here never uses a fixed gap. It asks the arena's own history (docs/early_abort.md):

* **The gap.** At a checkpoint ``p`` (every :attr:`AbortRule.every` of the budget from
  :attr:`AbortRule.min_progress` on), the run's smoothed train loss minus the champion's **reference
  curve** at ``p``: the mean, at ``p``, of the curves of the runs the promotion policy uses as the
  champion's reference (its code's runs).
* **What history says a gap means.** For every valid finished run of the arena with a curve, ``x`` =
  its gap at ``p``, ``y`` = its final val_bpb minus the reference's val_bpb. A least-squares line
  ``y ~ a + b x`` predicts the final gap from the gap at ``p``; the **recovery** ``R`` is the most a
  competitive run (one that finished ahead of the reference, or in the better half of the history)
  finished better than that line predicted (the largest ``prediction - y``): late-crossing runs are
  exactly the ones with a large recovery, so the arena's schedule experiments widen the bound.
* **The bound.** A run is stopped when even ``margin`` times the largest recovery the arena ever showed
  leaves it behind the reference: ``a + b g - margin R > 0``, i.e. ``g > (margin R - a) / b``. Since
  ``margin >= 1``, the bound is above the gap at ``p`` of every history run that finished ahead of the
  reference: no run is stopped for a gap some earlier winner recovered from.
* **Near the bound: an audit.** The first checkpoint past the bound decides; a gap under
  :attr:`AbortRule.audit_near` times the bound runs to the end as an audit (:attr:`Stop.near`). A stopped run
  never joins the history, so stopping the runs nearest the bound would starve the calibration of the very
  recoveries that set it (docs/early_abort.md measures it).

With fewer than :attr:`AbortRule.min_history` such runs, or no positive relation between the gap at
``p`` and the final gap, a checkpoint has no bound and the rule stops nothing there (and says why).
Starved runs are never stopped for being behind (:func:`starved`), nor is a run whose lr schedule (the
step lines' ``lrm``) has differed from the champion's (:func:`schedule_differs`). Such runs still calibrate
the bound: their late crossings are the arena's evidence of how far an lr change can recover, and a peak-lr
change (invisible in ``lrm``) crosses the same way (docs/early_abort.md measures the alternative).
Crashes and NaNs keep train.py's own fast-fail. Everything here is pure: ``memorylab run`` (through
``ingest/watch.py``) and ``benchmarks/early_abort_replay.py`` call the same functions.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ..evidence.validity import SAME_COST, THROUGHPUT_FLOOR
from ..ledger.files import read_regular
from ..ledger.model import ABORT_MODES, plural

DEFAULT_MODE = "on"
ENV_MODE = "MEMORYLAB_EARLY_ABORT"
CONFIG_NAME = "early_abort.json"  # the store's setting: {"mode": ..., and any AbortRule key}
LRM_TOLERANCE = 0.02  # lr multipliers (printed with 2 decimals) further apart than this: another schedule
Curve = Sequence[tuple[float, float]]  # (progress in [0, 1], smoothed train loss), sorted by progress


@dataclass(frozen=True)
class AbortRule:
    """The rule's parameters (docs/early_abort.md says why each default)."""

    min_progress: float = 0.25  # no judgement before a quarter of the budget: early curves say little
    every: float = 0.05  # checkpoints at min_progress, +every, ... below 1
    min_history: int = 20  # valid finished runs with curves needed before a checkpoint has a bound
    margin: float = 1.5  # the bound leaves margin x the arena's largest recovery beyond prediction
    audit_every: int = 10  # "on": 1 in audit_every would-be stops keeps running, to measure false aborts
    audit_near: float = 1.5  # "on": a run first past its bound by less than audit_near x the bound runs to the end
    # as an audit: the runs nearest the bound are the ones a late recovery could save, and a stopped run never
    # joins the history that calibrates the bound

    def checkpoints(self) -> list[float]:
        count = int(math.floor((1.0 - self.min_progress) / self.every + 1e-9))
        return [round(self.min_progress + i * self.every, 4) for i in range(count)
                if self.min_progress + i * self.every < 1.0 - 1e-9]


@dataclass(frozen=True)
class HistoryRun:
    """A finished valid run of the arena: its loss curve and final val_bpb."""

    run_id: str
    curve: Curve
    val_bpb: float
    lrm: Curve = ()  # its lr multiplier by progress (the sidecar curve's ``lrm``), when recorded: the champion's
    # schedule, for :func:`schedule_differs`


@dataclass(frozen=True)
class Checkpoint:
    """The bound at one progress point: stop when the run's gap to the reference curve exceeds ``bound``."""

    progress: float
    reference_loss: float | None
    n: int  # history runs that calibrated it
    bound: float | None  # None: no judgement here (``why`` says so)
    slope: float | None = None
    intercept: float | None = None
    recovery: float | None = None
    why: str | None = None

    def to_dict(self) -> dict:
        return {"progress": self.progress, "reference_loss": _r6(self.reference_loss), "n": self.n,
                "bound": _r6(self.bound), "slope": _r6(self.slope), "intercept": _r6(self.intercept),
                "recovery": _r6(self.recovery), "why": self.why}


@dataclass(frozen=True)
class Plan:
    """Everything a watched run is judged by, fixed before it starts."""

    rule: AbortRule
    reference_run: str | None
    reference_n: int
    reference_val_bpb: float | None
    reference_tokens_per_sec: float | None
    reference_params_M: float | None
    history: int  # history runs with curves
    checkpoints: tuple[Checkpoint, ...] = ()
    note: str | None = None  # why the rule stops nothing for this run, when it cannot
    reference_lrm: Curve = ()  # the reference run's lr multiplier by progress (its step lines' ``lrm``), if known

    @property
    def engaged(self) -> bool:
        return any(c.bound is not None for c in self.checkpoints)

    def describe(self) -> str:
        """One line for the terminal: what the rule will do for this run."""
        if not self.engaged:
            return f"early abort inactive: {self.note or 'no checkpoint has a bound'}"
        live = [c for c in self.checkpoints if c.bound is not None]
        return (f"early abort armed: {len(live)} checkpoints from {live[0].progress:.0%} against champion "
                f"{self.reference_run}'s reference curve (calibrated on {self.history} runs)")


@dataclass(frozen=True)
class Stop:
    """A checkpoint's verdict that the run cannot catch the reference."""

    progress: float
    step: int | None
    loss: float
    reference_loss: float
    gap: float
    bound: float
    predicted_gap: float
    history: int
    near: bool = False  # past the bound by less than ``AbortRule.audit_near`` x it: an audit, not a stop

    def reason(self, reference_run: str | None) -> str:
        return (f"at {self.progress:.0%} of its budget the loss {self.loss:.4f} is {self.gap:+.4f} behind champion "
                f"{reference_run}'s reference curve ({self.reference_loss:.4f}); the arena's {self.history} runs say a "
                f"run over {self.bound:+.4f} behind there never finishes ahead"
                + ("; it was close to that bound, so it runs on as an audit" if self.near else ""))

    def to_dict(self) -> dict:
        return {"progress": self.progress, "step": self.step, "loss": _r6(self.loss),
                "reference_loss": _r6(self.reference_loss), "gap": _r6(self.gap), "bound": _r6(self.bound),
                "predicted_gap": _r6(self.predicted_gap), "history_runs": self.history, "near_bound": self.near}


def _r6(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


# -- curves ------------------------------------------------------------------------------------------------

def curve_of(points: object, key: str = "loss") -> list[tuple[float, float]]:
    """Finite (progress, ``key``) pairs of a sidecar's ``loss_curve`` (list of objects), sorted by progress:
    the loss curve, or with ``key="lrm"`` the lr schedule (absent in sidecars older than issue 27)."""
    if not isinstance(points, list):
        return []
    out = []
    for point in points:
        if not isinstance(point, Mapping):
            continue
        x, y = point.get("progress"), point.get(key)
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool) \
                and math.isfinite(x) and math.isfinite(y):
            out.append((float(x), float(y)))
    out.sort()
    return out


def loss_at(curve: Curve, progress: float) -> float | None:
    """The curve's loss at ``progress`` by linear interpolation; None outside the points it covers."""
    if not curve or progress < curve[0][0] or progress > curve[-1][0]:
        return None
    lo, hi = 0, len(curve) - 1
    while hi - lo > 1:  # binary search for the bracketing points
        mid = (lo + hi) // 2
        if curve[mid][0] <= progress:
            lo = mid
        else:
            hi = mid
    (x0, y0), (x1, y1) = curve[lo], curve[hi]
    if x1 <= x0:
        return y0 if progress <= x0 else y1
    return y0 + (y1 - y0) * (progress - x0) / (x1 - x0)


def mean_loss_at(curves: Iterable[Curve], progress: float) -> float | None:
    """The reference curve at ``progress``: the mean of the curves that cover it."""
    values = [v for c in curves if (v := loss_at(c, progress)) is not None]
    return sum(values) / len(values) if values else None


# -- calibration -------------------------------------------------------------------------------------------

def _fit(points: Sequence[tuple[float, float]]) -> tuple[float, float, float] | None:
    """Least squares ``y ~ a + b x`` over every run, and the largest recovery ``max(a + b x - y)`` over the runs
    that finished in the better half or ahead (``y <= max(median y, 0)``); None without a positive slope.

    The recovery asks "how far ahead of the line can a run that ends up competitive finish?": the scatter of
    clear losers around the line (a big loser's gap at 25 % says little about how big) answers another
    question and would only widen the bound. Every run that finished ahead is always in the set."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx <= 0:
        return None
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    if b <= 0:
        return None
    a = my - b * mx
    cut = max(sorted(y for _, y in points)[(n - 1) // 2], 0.0)
    return a, b, max(0.0, max(a + b * x - y for x, y in points if y <= cut))


def calibrate_at(progress: float, reference: Sequence[Curve], reference_val: float,
                 history: Sequence[HistoryRun], rule: AbortRule) -> Checkpoint:
    """The bound on the gap to the reference curve at ``progress``, from the history's gaps and outcomes."""
    ref_loss = mean_loss_at(reference, progress)
    if ref_loss is None:
        return Checkpoint(progress, None, 0, None, why="the reference curve does not reach this point")
    points = [(loss - ref_loss, run.val_bpb - reference_val) for run in history
              if (loss := loss_at(run.curve, progress)) is not None]
    if len(points) < rule.min_history:
        return Checkpoint(progress, ref_loss, len(points), None,
                          why=f"too little history: {plural(len(points), 'valid finished run')} with curves, "
                              f"needs {rule.min_history}")
    fit = _fit(points)
    if fit is None:
        return Checkpoint(progress, ref_loss, len(points), None,
                          why="no positive relation between the gap here and the final gap")
    a, b, recovery = fit
    bound = max((rule.margin * recovery - a) / b, 0.0)
    return Checkpoint(progress, ref_loss, len(points), bound, b, a, recovery)


def plan(rule: AbortRule, reference_run: str | None, reference: Sequence[HistoryRun],
         history: Sequence[HistoryRun], reference_tokens_per_sec: float | None = None,
         reference_params_M: float | None = None, reference_lrm: Curve = ()) -> Plan:
    """Calibrate every checkpoint for a run about to start.

    ``reference``: the champion's reference runs (the promotion policy's sample of its code) with
    curves; ``history``: the arena's valid finished runs with curves (newest last); ``reference_lrm``:
    the champion's lr multiplier by progress (:func:`schedule_differs`).
    """
    base = {"rule": rule, "reference_run": reference_run, "reference_n": len(reference), "history": len(history),
            "reference_tokens_per_sec": reference_tokens_per_sec, "reference_params_M": reference_params_M,
            "reference_lrm": tuple(reference_lrm)}
    if not reference:
        return Plan(reference_val_bpb=None, **base,
                    note="no champion with a loss curve in this arena yet" if reference_run is None
                    else f"champion {reference_run} has no archived loss curve")
    reference_val = sum(r.val_bpb for r in reference) / len(reference)
    curves = [r.curve for r in reference]
    checkpoints = tuple(calibrate_at(p, curves, reference_val, history, rule) for p in rule.checkpoints())
    note = None
    if not any(c.bound is not None for c in checkpoints):
        note = next((c.why for c in checkpoints if c.why), "no checkpoint has a bound")
    return Plan(reference_val_bpb=reference_val, checkpoints=checkpoints, note=note, **base)


# -- judging a run ------------------------------------------------------------------------------------------

def starved(plan: Plan, tokens_per_sec: float | None, params_M: float | None) -> bool:
    """Whether the run trains far slower than the reference for the same model cost (evidence/validity.py's
    throughput floor): then it is behind because the machine is busy, and it is never stopped for that.

    A different model cost (``num_params_M`` beyond :data:`SAME_COST`) is slow by design, not starved.
    Unknown throughput on either side: not starved.
    """
    ref = plan.reference_tokens_per_sec
    if tokens_per_sec is None or not ref:
        return False
    other_cost = params_M is not None and bool(plan.reference_params_M) and \
        abs(params_M - plan.reference_params_M) > SAME_COST * max(params_M, plan.reference_params_M)
    return not other_cost and tokens_per_sec < THROUGHPUT_FLOOR * ref


def schedule_differs(plan: Plan, progress: float, lrm: float | None) -> bool:
    """Whether the run's lr multiplier at ``progress`` is not the champion's there: a warmup, warmdown or final-lr
    change. Such a run trains behind at high lr and may overtake as it anneals, so once its schedule has
    differed it is never stopped (:data:`LRM_TOLERANCE`). Unknown on either side: not different."""
    if lrm is None:
        return False
    reference = loss_at(plan.reference_lrm, progress)
    return reference is not None and abs(lrm - reference) > LRM_TOLERANCE


def judge(checkpoint: Checkpoint, loss: float, step: int | None, history: int, near: float = 1.0) -> Stop | None:
    """A :class:`Stop` when the run's loss at the checkpoint is over its bound, else None; ``near``: a gap under
    ``near`` x the bound makes it a near-bound verdict (``Stop.near``)."""
    if checkpoint.bound is None or checkpoint.reference_loss is None or not math.isfinite(loss):
        return None
    gap = loss - checkpoint.reference_loss
    if gap <= checkpoint.bound:
        return None
    predicted = (checkpoint.intercept or 0.0) + (checkpoint.slope or 0.0) * gap
    return Stop(checkpoint.progress, step, loss, checkpoint.reference_loss, gap, checkpoint.bound, predicted, history,
                gap < near * checkpoint.bound)


def audited(token: str, rule: AbortRule) -> bool:
    """Whether a would-be stop keeps running to the end (1 in ``audit_every``, fixed by the run token)."""
    if rule.audit_every <= 0:
        return False
    digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % rule.audit_every == 0


def resolve_mode(flag: str | None, env: Mapping[str, str], stored: str | None = None) -> str:
    """``--early-abort``, else ``$MEMORYLAB_EARLY_ABORT``, else the store's setting, else :data:`DEFAULT_MODE`.
    Raises ValueError."""
    value = (flag or env.get(ENV_MODE) or stored or DEFAULT_MODE).strip().lower()
    if value not in ABORT_MODES:
        raise ValueError(f"early abort mode must be one of {'|'.join(ABORT_MODES)}, got {value[:40]!r}")
    return value


def read_config(root: Path) -> tuple[str | None, AbortRule]:
    """The store's ``early_abort.json``: (its mode or None, the rule with its overrides). Raises ValueError."""
    path = root / CONFIG_NAME
    if not path.exists():
        return None, AbortRule()
    try:
        data = json.loads(read_regular(path).decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    except RecursionError:
        raise ValueError(f"cannot read {path}: nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object")
    kinds = {f.name: f.type for f in fields(AbortRule)}
    unknown = sorted(set(data) - set(kinds) - {"mode"})
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}")
    values = {}
    for key, value in data.items():
        if key == "mode":
            continue
        whole = kinds[key] == "int"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value < 0 or (whole and int(value) != value):
            raise ValueError(f"{path}: {key} must be a non-negative {'integer' if whole else 'number'}, got {value!r}")
        values[key] = int(value) if whole else float(value)
    rule = replace(AbortRule(), **values)
    if not 0 < rule.min_progress < 1 or not 0 < rule.every < 1 or rule.margin < 1 or rule.min_history < 3 \
            or rule.audit_near < 1:
        raise ValueError(f"{path}: needs 0 < min_progress < 1, 0 < every < 1, margin >= 1, min_history >= 3, "
                         f"audit_near >= 1")
    mode = data.get("mode")
    return (resolve_mode(str(mode), {}) if mode is not None else None), rule


# -- what the ledger says about it --------------------------------------------------------------------------

@dataclass
class Tally:
    """Early aborts over some runs: what the report, ``status`` and the dashboard show."""

    stopped: int = 0
    saved_seconds: float = 0.0
    shadow: int = 0  # would-be stops in shadow mode (they finished)
    audits: int = 0  # would-be stops left running in "on" mode
    false_aborts: int = 0  # would-be stops (shadow or audit) that finished ahead of the reference
    judged: int = 0  # finished would-be stops (shadow + audit) with a final val_bpb
    run_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"stopped": self.stopped, "saved_training_seconds": round(self.saved_seconds, 1),
                "shadow": self.shadow, "audits": self.audits, "audited_finished": self.judged,
                "false_aborts": self.false_aborts,
                "false_abort_rate": round(self.false_aborts / self.judged, 4) if self.judged else None}

    def phrase(self) -> str | None:
        """``stopped 3 runs early, saving 2.1 min of training; ...``, None when nothing happened."""
        parts = []
        if self.stopped:
            parts.append(f"stopped {self.stopped} run{'s' if self.stopped != 1 else ''} early, saving "
                         f"{self.saved_seconds / 60:.1f} min of training")
        if self.shadow or self.audits:
            rate = f"{self.false_aborts} of {self.judged} finished ahead (false aborts)" if self.judged \
                else "none finished yet"
            parts.append(f"{self.shadow + self.audits} would-be stops left running (shadow {self.shadow}, "
                         f"audit {self.audits}): {rate}")
        return "; ".join(parts) or None


def tally(runs: Iterable) -> Tally:
    """Count the ``early_abort`` facts of runs (``Run.extra['early_abort']``)."""
    out = Tally()
    for run in runs:
        info = run.extra.get("early_abort")
        if not isinstance(info, Mapping):
            continue
        action = info.get("action")
        if action == "stopped":
            out.stopped += 1
            saved = info.get("saved_training_seconds")
            out.saved_seconds += saved if isinstance(saved, (int, float)) else 0.0
            out.run_ids.append(run.run_id)
        elif action in ("shadow", "audit"):
            out.shadow += action == "shadow"
            out.audits += action == "audit"
            ref = info.get("reference_val_bpb")
            if run.val_bpb is not None and isinstance(ref, (int, float)):
                out.judged += 1
                out.false_aborts += run.val_bpb < ref
    return out
