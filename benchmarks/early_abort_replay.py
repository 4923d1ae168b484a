#!/usr/bin/env python3
"""Replay finished runs, in order, through the early-abort rule: what would it have saved, and what lost?

Each run is judged only by the runs before it, exactly as ``memorylab run`` judges a new run: the rule
(:mod:`memorylab_core.policy.early_abort`) is calibrated on the earlier finished runs and the current
champion's reference runs, and the run's loss curve is fed, as train.py's step lines, to the same
:class:`~memorylab_core.ingest.watch.Watcher` that follows a live run. The champion moves as the keep rule
moves it: a finished run whose val_bpb beats the reference (the mean of the champion code's runs) becomes
the champion; runs of the champion's code (the baseline's seeds) join its reference.

Two replays:

* **shadow**: every run finishes and joins the history (what ``--early-abort shadow`` records);
* **on**: a stopped run never finishes, so it joins no history and cannot become champion (what
  ``--early-abort on`` does: a run just past its bound (``AbortRule.audit_near``) and 1 in ``audit_every``
  other would-be stops, chosen by a hash of the run's name, run to the end and save nothing).

Reported per replay: training time saved (share of all training time), runs stopped, and *keeps stopped*
(stopped runs whose final val_bpb beat the reference they were judged against: false aborts). A third,
**leave-one-out**, judges each run by all the others (their history and their final champion): not
in order, but what the rule does once an arena has a night behind it, when a set is too small for the
in-order replay to reach ``min_history``.

Beside them, **hindsight** rows (:func:`ceiling`): what stopping, at 25 %, every run that finishes more than
k x the seed noise behind its reference would save, knowing how each ends -- the most a rule that spares
noise-level keeps could save on these runs.

Input: ``--runs FILE`` (JSON lines from ``benchmarks/early_abort_collect.py``: name, val_bpb,
training_seconds, loss_curve) or ``--store DIR`` (a MemoryLab store: one arena's runs with archived
sidecars, in ledger order). ``benchmarks/early_abort_sim.py`` runs the same replay on synthetic nights.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memorylab_core.ingest.watch import Watcher  # noqa: E402
from memorylab_core.policy import early_abort as ea  # noqa: E402


@dataclass(frozen=True)
class Trial:
    """One finished training run: its code (replicates share it), final val_bpb, curve and training time."""

    name: str
    code: str
    val_bpb: float
    curve: tuple[tuple[float, float], ...]
    training_seconds: float
    effect: float | None = None  # simulations only: the idea's true effect on val_bpb (negative helps)
    lrm: tuple[tuple[float, float], ...] = ()  # its lr multiplier by progress (step lines' lrm), when known


@dataclass
class Result:
    runs: int = 0
    judged: int = 0  # runs judged with an engaged plan
    stopped: int = 0
    keeps_stopped: int = 0  # stopped runs that finished ahead of their reference (false aborts)
    keeps: int = 0
    audited: int = 0  # "on": would-be stops left running by the audit share (AbortRule.audit_every)
    near: int = 0  # runs first past a bound inside the near-bound band (AbortRule.audit_near): they finish
    helpful_stopped: int = 0  # simulations: stopped ideas whose true effect helps
    lost_gain: float = 0.0  # simulations: true val_bpb gain of the stopped keeps that truly help
    training_seconds: float = 0.0
    judged_seconds: float = 0.0  # training time of the judged runs (the rule could act on these only)
    saved_seconds: float = 0.0
    stops: list[dict] = field(default_factory=list)

    @property
    def saved_share(self) -> float:
        return self.saved_seconds / self.training_seconds if self.training_seconds else 0.0

    def add_stop(self, trial: Trial, progress: float, ahead: bool, ref_val: float | None,
                 stop: ea.Stop | None = None) -> None:
        """Count a run stopped at ``progress`` (``ahead``: it would have finished ahead of ``ref_val``)."""
        self.stopped += 1
        self.keeps_stopped += ahead
        self.saved_seconds += (1.0 - progress) * trial.training_seconds
        helpful = trial.effect is not None and trial.effect < 0
        self.helpful_stopped += helpful
        self.lost_gain += -trial.effect if helpful and ahead else 0.0
        self.stops.append({"run": trial.name, "progress": progress, "gap": round(stop.gap, 4) if stop else None,
                           "bound": round(stop.bound, 4) if stop else None, "val_bpb": trial.val_bpb,
                           "reference_val_bpb": None if ref_val is None else round(ref_val, 6), "keep": ahead})

    def to_dict(self) -> dict:
        return {"runs": self.runs, "judged": self.judged, "stopped": self.stopped, "audited": self.audited,
                "near_bound": self.near,
                "keeps": self.keeps,
                "keeps_stopped": self.keeps_stopped, "helpful_stopped": self.helpful_stopped,
                "lost_gain": round(self.lost_gain, 6), "training_seconds": round(self.training_seconds, 1),
                "judged_seconds": round(self.judged_seconds, 1),
                "saved_seconds": round(self.saved_seconds, 1), "saved_share": round(self.saved_share, 4),
                "stops": self.stops}


def step_lines(trial: Trial) -> bytes:
    """The trial's curve as train.py prints it (``\\r``-terminated step lines)."""
    lines = []
    for i, (p, loss) in enumerate(trial.curve):
        lrm = ea.loss_at(trial.lrm, p)
        lines.append(f"step {i:05d} ({100 * p:.3f}%) | loss: {loss:.6f}" + (f" | lrm: {lrm:.2f}" if lrm is not None
                                                                           else "") + "\r")
    return "".join(lines).encode()


def _history(trial: Trial) -> ea.HistoryRun:
    return ea.HistoryRun(trial.name, trial.curve, trial.val_bpb)  # the champion's schedule: Trial.lrm


def replay(trials: Sequence[Trial], rule: ea.AbortRule, deployed: bool, baseline_only: bool = False) -> Result:
    """Judge each trial by the trials before it; ``deployed``: stopped trials never finish (no history);
    ``baseline_only``: the champion stays the first code (every trial is an edit of the same baseline)."""
    out = Result()
    history: list[ea.HistoryRun] = []
    champion: Trial | None = None
    reference: list[ea.HistoryRun] = []
    for trial in trials:
        out.runs += 1
        out.training_seconds += trial.training_seconds
        ref_val = statistics.mean(r.val_bpb for r in reference) if reference else None
        ahead = ref_val is None or trial.val_bpb < ref_val
        stop = None
        action = None
        if champion is not None:
            plan = ea.plan(rule, champion.name, reference, history, reference_lrm=champion.lrm)
            if plan.engaged:
                out.judged += 1
                out.judged_seconds += trial.training_seconds
                watcher = Watcher(plan, "on" if deployed else "shadow", trial.name, trial.training_seconds)
                watcher.feed(step_lines(trial))
                stop, action = watcher.verdict, watcher.action
        if stop is not None and stop.near:
            out.near += 1  # just past the bound: it runs to the end in "on" (an audit), so shadow counts no stop
        elif action == "audit":
            out.audited += 1  # "on" keeps 1 in audit_every would-be stops running: no saving, it finishes
        elif stop is not None:
            out.add_stop(trial, stop.progress, ahead, ref_val, stop)
            if deployed:
                continue
        history.append(_history(trial))
        if champion is not None and trial.code == champion.code:
            reference.append(_history(trial))
        elif ahead:
            out.keeps += champion is not None
            if champion is None or not baseline_only:
                champion, reference = trial, [_history(trial)]
    return out


def _final_reference(trials: Sequence[Trial], baseline_only: bool) -> tuple[Trial | None, list[ea.HistoryRun]]:
    """The champion after ``trials`` in order under the keep rule (the first code with ``baseline_only``), and
    its reference runs."""
    champion, reference = None, []
    for trial in trials:
        if champion is not None and trial.code == champion.code:
            reference.append(_history(trial))
        elif not reference or (not baseline_only and trial.val_bpb < statistics.mean(r.val_bpb for r in reference)):
            champion, reference = trial, [_history(trial)]
    return champion, reference


def leave_one_out(trials: Sequence[Trial], rule: ea.AbortRule, baseline_only: bool = False) -> Result:
    """Each trial judged by all the others (history and final champion): the rule with a full night behind it.

    Not the in-order replay: a small set of real runs says little in order (the rule needs ``min_history``
    runs before it judges anything), so this shows what it would do once the arena has that history."""
    out = Result()
    for i, trial in enumerate(trials):
        others = [t for j, t in enumerate(trials) if j != i]
        champion, reference = _final_reference(others, baseline_only)
        out.runs += 1
        out.training_seconds += trial.training_seconds
        if champion is None or champion.code == trial.code:
            continue
        plan = ea.plan(rule, champion.name, reference, [_history(t) for t in others], reference_lrm=champion.lrm)
        if not plan.engaged:
            continue
        out.judged += 1
        out.judged_seconds += trial.training_seconds
        watcher = Watcher(plan, "shadow", trial.name, trial.training_seconds)
        watcher.feed(step_lines(trial))
        stop = watcher.verdict
        ref_val = statistics.mean(r.val_bpb for r in reference)
        out.keeps += trial.val_bpb < ref_val
        if stop is not None:
            out.add_stop(trial, stop.progress, trial.val_bpb < ref_val, ref_val, stop)
    return out


def ceiling(trials: Sequence[Trial], sigmas: float, baseline_only: bool = False) -> Result:
    """A hindsight ceiling: stop at the first checkpoint (25 %) every run that finishes more than ``sigmas`` x the
    seed noise behind its reference, knowing its final val_bpb (the no-abort trajectory).

    The seed noise is the standard deviation of the first code's replicates (the baseline's seeds). A run
    that finishes within the noise of the reference cannot be told from a keep even by its own final
    val_bpb, so with ``sigmas`` 2 this is about the most any rule can save without stopping noise-level keeps:
    a target above it asks a rule to stop runs that are, to the measurement, as good as a keep."""
    first = [t.val_bpb for t in trials if trials and t.code == trials[0].code]
    noise = statistics.stdev(first) if len(first) >= 2 else 0.0
    out = Result()
    champion, ref_vals = None, []
    start = ea.AbortRule().min_progress
    for trial in trials:
        out.runs += 1
        out.training_seconds += trial.training_seconds
        ref_val = statistics.mean(ref_vals) if ref_vals else None
        ahead = ref_val is None or trial.val_bpb < ref_val
        if champion is not None and trial.code != champion.code:
            out.judged += 1
            out.judged_seconds += trial.training_seconds
            if trial.val_bpb - ref_val > sigmas * noise:
                out.add_stop(trial, start, ahead, ref_val)
        if champion is not None and trial.code == champion.code:
            ref_vals.append(trial.val_bpb)
        elif ahead:
            out.keeps += champion is not None
            if champion is None or not baseline_only:
                champion, ref_vals = trial, [trial.val_bpb]
    return out


def load_runs(path: Path) -> list[Trial]:
    """Trials from ``early_abort_collect.py``'s runs.jsonl (crashes and curve-less runs left out)."""
    trials = []
    for line in path.read_text().splitlines():
        row = json.loads(line) if line.strip() else {}
        curve = tuple(ea.curve_of(row.get("loss_curve")))
        if row.get("val_bpb") is None or len(curve) < 2:
            continue
        code = "baseline" if row["name"].startswith("baseline") else row["name"]
        trials.append(Trial(row["name"], code, float(row["val_bpb"]), curve,
                            float(row.get("training_seconds") or row.get("time_budget") or 60.0),
                            lrm=tuple(ea.curve_of(row.get("loss_curve"), "lrm"))))
    return trials


def load_store(root: Path, arena: str | None) -> list[Trial]:
    """Trials from a store: the arena's (default: the newest run's) measured valid runs with archived curves."""
    from memorylab_core.index.journal_index import JournalIndex
    from memorylab_core.ledger.store import open_store

    history = JournalIndex.load(open_store(str(root), root, None))
    arena = arena or history.newest_arena()
    trials = []
    for run in history.arena_runs(arena):
        summary = history.store.read_run_json(run.run_id, "summary.json") or {}
        curve = tuple(ea.curve_of(summary.get("loss_curve")))
        if run.val_bpb is None or run.validity == "confounded" or len(curve) < 2 or run.status == "crash":
            continue
        code = run.code_fingerprint or run.commit or run.run_id
        trials.append(Trial(run.run_id, code, run.val_bpb, curve, float(summary.get("training_seconds") or 0.0),
                            lrm=tuple(ea.curve_of(summary.get("loss_curve"), "lrm"))))
    return trials


def report(trials: Sequence[Trial], rule: ea.AbortRule, baseline_only: bool = False) -> dict:
    return {"rule": rule.__dict__, "trials": len(trials),
            "shadow": replay(trials, rule, deployed=False, baseline_only=baseline_only).to_dict(),
            "on": replay(trials, rule, deployed=True, baseline_only=baseline_only).to_dict(),
            "leave-one-out": leave_one_out(trials, rule, baseline_only).to_dict()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--runs", type=Path, help="runs.jsonl from benchmarks/early_abort_collect.py")
    source.add_argument("--store", type=Path, help="a MemoryLab store (MEMORYLAB_HOME)")
    p.add_argument("--arena", help="with --store: the arena to replay (default: the newest run's)")
    p.add_argument("--min-history", type=int, default=ea.AbortRule.min_history)
    p.add_argument("--margin", type=float, nargs="+", default=[ea.AbortRule.margin],
                   help="one or more margins (a sweep)")
    p.add_argument("--baseline-only", action="store_true",
                   help="the champion stays the baseline (for sets of one-edit variants of one baseline, like "
                        "early_abort_collect.py's: a big keep would otherwise make every later variant a loser)")
    p.add_argument("--first", type=int, help="replay only the first N runs (a shorter night)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.first is not None and args.first < 1:
        p.error("--first must be at least 1")
    trials = load_runs(args.runs) if args.runs else load_store(args.store, args.arena)
    trials = trials[:args.first] if args.first else trials
    results = [report(trials, replace(ea.AbortRule(), margin=m, min_history=args.min_history), args.baseline_only)
               for m in args.margin]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{len(trials)} finished runs with curves; min_history {args.min_history}")
    print("| margin | replay | judged | stopped | keeps | keeps stopped | training time saved | of the judged runs' |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for res in results:
        for name in ("shadow", "on", "leave-one-out"):
            r = res[name]
            print(f"| {res['rule']['margin']:g} | {name} | {r['judged']} | {r['stopped']} | {r['keeps']} | "
                  f"{r['keeps_stopped']} | {r['saved_share']:.1%} ({r['saved_seconds'] / 60:.1f} of "
                  f"{r['training_seconds'] / 60:.1f} min) | "
                  f"{r['saved_seconds'] / r['judged_seconds'] if r['judged_seconds'] else 0:.1%} |")
    for sigmas in (0, 1, 2, 3):
        c = ceiling(trials, sigmas, args.baseline_only)
        judged_share = c.saved_seconds / c.judged_seconds if c.judged_seconds else 0.0
        print(f"| hindsight | stop at 25 % every run finishing > {sigmas} x seed noise behind | {c.judged} | "
              f"{c.stopped} | {c.keeps} | 0 | {c.saved_share:.1%} | {judged_share:.1%} |")
    for stop in results[0]["on"]["stops"] + [{**s, "run": f"{s['run']} (leave-one-out)"}
                                              for s in results[0]["leave-one-out"]["stops"]]:
        print(f"  stopped {stop['run']!r} at {stop['progress']:.0%}: gap {stop['gap']:+.4f} > bound "
              f"{stop['bound']:+.4f}; final {stop['val_bpb']:.4f} vs reference {stop['reference_val_bpb']:.4f}"
              + (" (a KEEP)" if stop["keep"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
