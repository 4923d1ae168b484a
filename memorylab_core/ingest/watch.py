"""Watching a run as it trains: its step lines, parsed as they stream, judged by the early-abort rule.

train.py prints one line per optimizer step, ``\\r``-terminated (docs/train.md, "What memorylab run
reads"): ``step 00042 (25.3%) | loss: 5.123456 | lrm: 1.00 | dt: 365ms | tok/sec: 5,608 | ...``.
``memorylab run`` reads the step number, the progress through the budget, the smoothed train loss,
the lr multiplier and tokens/s from it, and the ``parameters: N`` line printed before training (the
model's cost).
Nothing else; a line that does not parse is ignored, so a train.py without step lines is simply
never judged.

:class:`Watcher` is fed the output bytes (the launcher's ``on_output``) and answers ``stop_requested``
(the launcher's ``should_stop``) once a checkpoint's verdict says stop in ``on`` mode. In ``shadow``
mode, and in ``on`` mode for a run just past its bound (``Stop.near``) or in the audited share of would-be
stops, it records the verdict and lets the run finish.
"""

from __future__ import annotations

import re
import statistics
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from ..index.journal_index import JournalIndex
from ..policy.early_abort import (
    AbortRule,
    HistoryRun,
    Plan,
    Stop,
    audited,
    curve_of,
    judge,
    plan,
    schedule_differs,
    starved,
)
from ..policy.promotion import sample_of
from ..policy.registry import champion
from ..research.memory import curve_loader

STEP_LINE = re.compile(r"^step\s+(\d+)\s+\(\s*([0-9.]+)%\)\s*\|\s*loss:\s*([-+0-9.eE]+|nan|inf)"
                       r"(?:\s*\|\s*lrm:\s*([0-9.]+))?(?:.*?\btok/sec:\s*([0-9,.]+))?")
PARAMS_LINE = re.compile(r"^parameters:\s*([0-9,]+)")
THROUGHPUT_STEPS = 10  # tokens/s of a run: the median over its newest step lines
RUN_LOG_LIMIT = 64_000_000  # bytes of an archived run.log read for its lr schedule
HISTORY_RUNS = 200  # the arena's newest valid finished runs the rule is calibrated on


class LineSplitter:
    """Complete output lines (``\\n`` or ``\\r`` ends one) from a byte stream fed in arbitrary chunks."""

    def __init__(self) -> None:
        self._carry = ""

    def feed(self, data: bytes) -> list[str]:
        text = self._carry + data.decode("utf-8", errors="replace")
        pieces = text.replace("\r", "\n").split("\n")
        self._carry = pieces.pop()[-1000:]
        return pieces


class StepLine(NamedTuple):
    """The numbers ``run`` reads from one step line."""

    step: int
    progress: float  # through the budget, 0..1
    loss: float  # smoothed train loss
    lrm: float | None  # the lr multiplier of the schedule, when printed
    tokens_per_sec: float | None


def parse_step(line: str) -> StepLine | None:
    """The numbers of one step line (docs/train.md, "What memorylab run reads"), else None."""
    match = STEP_LINE.match(line.strip())
    if not match:
        return None
    step, pct, loss, lrm, tps = match.groups()
    try:
        return StepLine(int(step), float(pct) / 100.0, float(loss), float(lrm) if lrm else None,
                        float(tps.replace(",", "")) if tps else None)
    except ValueError:
        return None


def lrm_schedule(log_text: str) -> list[tuple[float, float]]:
    """(progress, lr multiplier) of every step line of a run.log that prints ``lrm``: a run's lr schedule."""
    points = []
    for line in log_text.replace("\r", "\n").split("\n"):
        parsed = parse_step(line) if line.startswith("step") else None
        if parsed is not None and parsed.lrm is not None:
            points.append((parsed.progress, parsed.lrm))
    return sorted(points)


class Watcher:
    """Follows one run's step lines and applies the plan's checkpoints to them.

    ``mode``: ``on`` (stop), ``shadow`` (record what it would have done); ``token``: the run token
    (fixes whether an ``on`` stop is one of the audited share left running); ``arena``: the arena the plan
    was calibrated in (a run stopped early has no sidecar to say it).
    """

    def __init__(self, plan: Plan, mode: str, token: str, budget_s: float | None, arena: str | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.plan, self.mode, self.token, self.budget_s, self.arena = plan, mode, token, budget_s, arena
        self.clock = clock
        self.splitter = LineSplitter()
        self.pending = [c for c in plan.checkpoints if c.bound is not None]
        self.last: tuple[int, float, float] | None = None  # (step, progress, loss) of the previous step line
        self.throughput: deque[float] = deque(maxlen=THROUGHPUT_STEPS)
        self.params_M: float | None = None
        self.verdict: Stop | None = None
        self.action: str | None = None  # "stopped", "shadow" or "audit" once a checkpoint said stop
        self.starved_at: list[float] = []  # checkpoints skipped because the run was starved there
        self.schedule_changed_at: float | None = None  # progress where its lr schedule left the champion's
        self.steps_seen = 0
        self.busy_s = 0.0  # time spent parsing and judging (the watching overhead)

    @property
    def stop_requested(self) -> bool:
        return self.action == "stopped"

    def feed(self, data: bytes) -> None:
        started = self.clock()
        for line in self.splitter.feed(data):
            self._line(line)
        self.busy_s += self.clock() - started

    def _line(self, line: str) -> None:
        parsed = parse_step(line)
        if parsed is None:
            params = PARAMS_LINE.match(line.strip())
            if params:
                self.params_M = int(params.group(1).replace(",", "")) / 1e6
            return
        step, progress, loss, lrm, tps = parsed
        self.steps_seen += 1
        if tps is not None:
            self.throughput.append(tps)
        if self.schedule_changed_at is None and schedule_differs(self.plan, progress, lrm):
            self.schedule_changed_at = progress
        while self.pending and self.verdict is None and progress >= self.pending[0].progress:
            self._checkpoint(self.pending.pop(0), step, progress, loss)
        self.last = (step, progress, loss)

    def tokens_per_sec(self) -> float | None:
        return statistics.median(self.throughput) if self.throughput else None

    def _checkpoint(self, checkpoint, step: int, progress: float, loss: float) -> None:
        """Judge the run's loss at the checkpoint, interpolated between the step lines around it."""
        if self.last is not None and progress > self.last[1]:
            _, p0, l0 = self.last
            loss = l0 + (loss - l0) * (checkpoint.progress - p0) / (progress - p0)
        if self.schedule_changed_at is not None:
            return  # another lr schedule: its curve may cross the champion's late
        if starved(self.plan, self.tokens_per_sec(), self.params_M):
            self.starved_at.append(checkpoint.progress)
            return
        verdict = judge(checkpoint, loss, step, self.plan.history, self.plan.rule.audit_near)
        if verdict is None:
            return
        self.verdict = verdict
        if self.mode == "shadow":
            self.action = "shadow"
        else:  # just past the bound, or the audit share: it runs to the end, and its outcome calibrates the rule
            self.action = "audit" if verdict.near or audited(self.token, self.plan.rule) else "stopped"

    def metrics(self) -> dict:
        """What the step lines measured up to the last one seen (a run stopped early has no summary block)."""
        out: dict = {}
        if self.last is not None:
            out["num_steps"] = self.last[0] + 1
            if self.budget_s:
                out["training_seconds"] = round(self.last[1] * self.budget_s, 1)
        tps = self.tokens_per_sec()
        if tps is not None:
            out["tokens_per_sec"] = round(tps, 1)
        if self.params_M is not None:
            out["num_params_M"] = round(self.params_M, 1)
        return out

    def record(self) -> dict | None:
        """The record's ``early_abort`` field: what the rule did (None when it never said stop)."""
        stop = self.verdict
        if stop is None:
            return None
        saved = (1.0 - stop.progress) * self.budget_s if self.budget_s else None
        return {"mode": self.mode, "action": self.action, **stop.to_dict(),
                "reference_run": self.plan.reference_run, "reference_n": self.plan.reference_n,
                "reference_val_bpb": round(self.plan.reference_val_bpb, 6),
                "budget_seconds": self.budget_s,
                "saved_training_seconds": round(saved, 1) if saved is not None and self.action == "stopped" else 0.0,
                "would_save_training_seconds": round(saved, 1) if saved is not None and not stop.near else None,
                "reason": stop.reason(self.plan.reference_run)}


def plan_for(history: JournalIndex, arena: str, rule: AbortRule) -> Plan:
    """Calibrate the rule for a run about to train in ``arena``: the champion's reference runs (the promotion
    policy's sample of its code) and the arena's newest valid finished runs, with their archived curves."""
    notable = history.registry.notable_in(arena)
    tip = champion(notable, history.events)
    load = curve_loader(history.store)

    def with_curves(runs, schedules: bool = False) -> list[HistoryRun]:
        """The runs with an archived curve; ``schedules``: with their lr schedule too (only the champion's is
        read, so the up to 200 history runs skip it)."""
        out = []
        for run in runs:
            points = load(run.run_id)
            curve = curve_of(points)
            if len(curve) >= 2 and run.val_bpb is not None:
                lrm = tuple(curve_of(points, "lrm")) if schedules else ()
                out.append(HistoryRun(run.run_id, curve, run.val_bpb, lrm))
        return out

    measured = history.runs.where("arena = ? AND status != 'crash' AND val_bpb IS NOT NULL "
                                  "AND validity != 'confounded'", (arena,), limit=HISTORY_RUNS)
    reference_ids = set(sample_of(tip, notable).run_ids) if tip is not None else set()
    reference = [r for r in notable if r.run_id in reference_ids]
    curves = with_curves(reference, schedules=True)
    # The champion's schedule: its sidecar curve's lrm, else (older sidecars) its archived run.log's step lines.
    schedule = next((r.lrm for r in curves if r.lrm), None) or \
        next((lrm for r in reference if (lrm := lrm_schedule(_run_log(history.store, r.run_id)))), [])
    facts = [r.extra.get("throughput") or {} for r in reference]
    tps = [f["tokens_per_sec"] for f in facts if f.get("tokens_per_sec")]
    params = [f["num_params_M"] for f in facts if f.get("num_params_M")]
    return plan(rule, tip.run_id if tip is not None else None, curves, with_curves(reversed(measured)),
                statistics.median(tps) if tps else None, statistics.median(params) if params else None, schedule)


def _run_log(store, run_id: str) -> str:
    """A run's archived run.log (for its lr schedule); empty when absent or unreadable."""
    raw = store.read_run_file(run_id, "run.log", RUN_LOG_LIMIT)
    return "" if raw is None else raw.decode("utf-8", "replace")


def arena_fits(arena: str, profile: str, budget_s: float) -> bool:
    """Whether a run of ``profile`` with a ``budget_s`` budget can belong to ``arena`` (``profile/device/<N>s/...``,
    evidence/arenas.py): a smoke run with another budget must not be judged against the arena's curves."""
    parts = arena.split("/")
    if parts[0] != profile:
        return False
    budgets = [part[:-1] for part in parts[1:] if part.endswith("s") and part[:-1].replace(".", "", 1).isdigit()]
    return not budgets or float(budgets[0]) == float(budget_s)
