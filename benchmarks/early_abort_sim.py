#!/usr/bin/env python3
"""Synthetic nights with loss curves, replayed through the early-abort rule at several settings.

A sibling of ``promotion_sim.py`` (whose idea stream has no curves). Each night is a baseline with
``baseline_replicates`` seeds, then ideas tried on the branch tip, kept when their observed val_bpb beats
the reference (the mean of the champion code's runs). Model (defaults; docs/benchmarks.md prints its
table):

* **Effects.** An idea helps with probability ``p_help`` (by Exp(mean ``help_mean``) val_bpb), is broken
  with probability ``p_broken`` (hurts by U(``broken_low``, ``broken_high``): the clear losers early abort
  is for), else hurts by |N(0, ``hurt_sd``)|. Observed val_bpb adds seed noise N(0, ``noise_sd``).
* **Curves.** Smoothed train loss at progress p: ``base(p) + tip(p) + own(p) + N(0, curve_sd)``, where
  base(p) = 4.2 + 4.1 (1 - p)^2, and an idea's own component is ``loss_per_bpb * effect * (r + (1 - r) p)``
  with r ~ U(0.3, 1.7): its final effect shows early at a random strength (bigger or smaller than at
  the end, as lr and size changes do). ``tip(p)`` sums the components of the ideas kept so far.
* **Schedule ideas** (``p_schedule`` of ideas: warmup / warmdown / lr-peak edits) add ``s * tent(p)``, a
  tent rising to s at p = 0.7 and back to 0 at p = 1, with s ~ U(-0.05, 0.25): mostly *behind* at mid
  run with high lr, overtaking as the lr anneals. A helpful schedule idea is behind for most of the run
  and crosses late: what a fixed-gap rule stops. A share ``p_visible`` of them (warmup, warmdown and
  final-lr edits) changes the lr multiplier the step lines print (here: a 20 % warmup); the others (the
  peak lr) leave it as the champion's (no warmup, 50 % warmdown to 0), and only the history protects them.

Each setting replays the same nights (``early_abort_replay.replay``) twice: as ``shadow`` (every run
finishes, so all settings see the same trajectory) and as ``on`` (a stopped run never finishes: it never
joins the history that calibrates the bound, nor becomes champion), and reports per night: training
time saved, runs stopped, keeps stopped (false aborts), helpful ideas stopped, their true gain lost, and how many
schedule ideas were stopped. A **naive** row stops any run more than ``naive_gap`` behind the
reference curve at a checkpoint from 25%, whatever the history says.

Run: ``python benchmarks/early_abort_sim.py`` (``--nights``, ``--json``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from early_abort_replay import Result, Trial, replay  # noqa: E402

from memorylab_core.policy import early_abort as ea  # noqa: E402

POINTS = 41  # curve points per run (progress 0, 0.025, ..., 1)


@dataclass(frozen=True)
class Model:
    runs: int = 100
    baseline_replicates: int = 3
    p_help: float = 0.25
    help_mean: float = 0.004
    p_broken: float = 0.15
    broken_low: float = 0.03
    broken_high: float = 0.4
    hurt_sd: float = 0.006
    p_schedule: float = 0.2
    p_visible: float = 0.5  # schedule ideas whose lr multiplier (the step lines' lrm) shows the change
    noise_sd: float = 0.003
    curve_sd: float = 0.01
    loss_per_bpb: float = 2.4  # train loss (nats) per val_bpb: ln 2 x bytes per token on these tokenizers
    budget_s: float = 300.0
    naive_gap: float = 0.05


def _effect(rng: random.Random, m: Model) -> float:
    u = rng.random()
    if u < m.p_help:
        return -rng.expovariate(1.0 / m.help_mean)
    if u < m.p_help + m.p_broken:
        return rng.uniform(m.broken_low, m.broken_high)
    return abs(rng.gauss(0.0, m.hurt_sd))


def _tent(p: float) -> float:
    return p / 0.7 if p <= 0.7 else (1.0 - p) / 0.3


def _lrm(p: float, warmup: float = 0.0) -> float:
    """The lr multiplier at progress ``p``: linear warmup, then constant, then a 50 % warmdown to 0."""
    if p < warmup:
        return p / warmup
    return 1.0 if p < 0.5 else (1.0 - p) / 0.5


def night(m: Model, seed: int) -> tuple[list[Trial], set[str]]:
    """One night's trials (no abort: the tip moves as the keep rule moves it) and its schedule ideas' names."""
    rng = random.Random(seed)
    grid = [i / (POINTS - 1) for i in range(POINTS)]
    tip_curve = [0.0] * POINTS
    tip_val, trials, schedule = 1.0, [], set()
    reference: list[float] = []
    for i in range(m.runs):
        baseline = i < m.baseline_replicates
        effect = 0.0 if baseline else _effect(rng, m)
        r = rng.uniform(0.3, 1.7)
        own = [m.loss_per_bpb * effect * (r + (1 - r) * p) for p in grid]
        name = f"baseline {i}" if baseline else f"idea {i}"
        warmup = 0.0
        if not baseline and rng.random() < m.p_schedule:
            s = rng.uniform(-0.05, 0.25)
            own = [o + s * _tent(p) for o, p in zip(own, grid, strict=True)]
            schedule.add(name)
            warmup = 0.2 if rng.random() < m.p_visible else 0.0
        curve = tuple((p, 4.2 + 4.1 * (1 - p) ** 2 + t + o + rng.gauss(0.0, m.curve_sd))
                      for p, t, o in zip(grid, tip_curve, own, strict=True))
        val = tip_val + effect + rng.gauss(0.0, m.noise_sd)
        trials.append(Trial(name, "baseline" if baseline else name, val, curve, m.budget_s,
                            None if baseline else effect, tuple((p, _lrm(p, warmup)) for p in grid)))
        if baseline:
            reference.append(val)
        elif val < sum(reference) / len(reference):
            tip_val += effect
            tip_curve = [t + o for t, o in zip(tip_curve, own, strict=True)]
            reference = [val]
    return trials, schedule


def naive(trials: list[Trial], gap: float | None) -> Result:
    """Stop any run more than ``gap`` behind the champion's curve at a checkpoint from 25% (no history);
    ``gap`` None: the oracle, stopping at 25% exactly the runs that will not finish ahead (the ceiling)."""
    out = Result()
    champion, ref_vals = None, []
    for trial in trials:
        out.runs += 1
        out.training_seconds += trial.training_seconds
        ref_val = sum(ref_vals) / len(ref_vals) if ref_vals else None
        ahead = ref_val is None or trial.val_bpb < ref_val
        if champion is not None and gap is None and not ahead:
            out.add_stop(trial, 0.25, ahead, ref_val)
        elif champion is not None and gap is not None:
            first = next((p for p in ea.AbortRule().checkpoints()
                          if ea.loss_at(trial.curve, p) - ea.loss_at(champion.curve, p) > gap), None)
            if first is not None:
                out.add_stop(trial, first, ahead, ref_val)
        if champion is not None and trial.code == champion.code:
            ref_vals.append(trial.val_bpb)
        elif ahead:
            out.keeps += champion is not None
            champion, ref_vals = trial, [trial.val_bpb]
    return out


SETTINGS = (("margin 1.5, audit_near 1.5 (default)", {}), ("margin 2, audit_near 1.5", {"margin": 2.0}),
            ("margin 1.5, audit_near 2", {"audit_near": 2.0}),
            ("margin 1, audit_near 2", {"margin": 1.0, "audit_near": 2.0}),
            ("margin 1.5, min_history 10", {"min_history": 10}), ("margin 1.5, min_history 30", {"min_history": 30}),
            ("margin 2, no near-bound audits (the old default)", {"margin": 2.0, "audit_near": 1.0}),
            ("margin 1, no near-bound audits", {"margin": 1.0, "audit_near": 1.0}))


def study(m: Model, nights: int, seed: int) -> list[dict]:
    """Every setting (and the naive rule) over the same nights, replayed as ``shadow`` (every run finishes) and
    as ``on`` (a stopped run never finishes, so it never calibrates the bound): per-night means."""
    generated = [night(m, seed * 1_000_003 + k) for k in range(nights)]
    rows = []
    for label, overrides in SETTINGS:
        rule = replace(ea.AbortRule(), **overrides)
        for mode in ("shadow", "on"):
            results = [(replay(trials, rule, deployed=mode == "on"), sched) for trials, sched in generated]
            rows.append(_row(f"{label}, {mode}", results))
    rows.append(_row(f"naive: stop beyond {m.naive_gap:g} behind", [(naive(t, m.naive_gap), s)
                                                                      for t, s in generated]))
    rows.append(_row("oracle: every eventual non-keep at 25% (ceiling)", [(naive(t, None), s) for t, s in generated]))
    return rows


def _row(label: str, results: list[tuple[Result, set[str]]]) -> dict:
    n = len(results)
    total = sum(r.training_seconds for r, _ in results)
    return {"setting": label, "saved_share": sum(r.saved_seconds for r, _ in results) / total,
            "stopped": sum(r.stopped for r, _ in results) / n, "keeps": sum(r.keeps for r, _ in results) / n,
            "keeps_stopped": sum(r.keeps_stopped for r, _ in results) / n,
            "helpful_stopped": sum(r.helpful_stopped for r, _ in results) / n,
            "lost_gain": sum(r.lost_gain for r, _ in results) / n,
            "schedule_stopped": sum(sum(s["run"] in sched for s in r.stops) for r, sched in results) / n}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nights", type=int, default=100)
    p.add_argument("--seed", type=int, default=27)
    p.add_argument("--p-broken", type=float, default=Model.p_broken, help="share of clear losers among ideas")
    p.add_argument("--p-schedule", type=float, default=Model.p_schedule, help="share of schedule ideas")
    p.add_argument("--p-visible", type=float, default=Model.p_visible,
                   help="share of schedule ideas whose lr multiplier shows the change")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    started = time.perf_counter()
    model = Model(p_broken=args.p_broken, p_schedule=args.p_schedule, p_visible=args.p_visible)
    rows = study(model, args.nights, args.seed)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("| setting | training time saved | runs stopped | keeps | keeps stopped (false aborts) | "
          "helpful ideas stopped | true gain lost (val_bpb) | schedule ideas stopped |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['setting']} | {r['saved_share']:.1%} | {r['stopped']:.1f} | {r['keeps']:.1f} | "
              f"{r['keeps_stopped']:.3f} | {r['helpful_stopped']:.3f} | {r['lost_gain']:.5f} | "
              f"{r['schedule_stopped']:.2f} |")
    print(f"\n{args.nights} nights of {model.runs} runs per setting (p_broken {model.p_broken:g}, p_schedule "
          f"{model.p_schedule:g}, p_visible {model.p_visible:g}), seed {args.seed}, "
          f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
