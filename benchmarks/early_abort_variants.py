#!/usr/bin/env python3
"""Variants of the early-abort rule that were measured and not adopted, on the same three data sets.

The default rule (memorylab_core/policy/early_abort.py) stops a run whose gap to the champion's curve is
beyond ``margin`` x the largest recovery any competitive history run showed. Two ways to save more were
tried, each on the 94-run climbing night and the 47 one-edit runs (benchmarks/data/) and on 30 synthetic
nights of ``early_abort_sim.py``:

* **consecutive checkpoints**: a smaller margin, but the gap must be over the bound at ``k`` checkpoints
  in a row (a noisy single checkpoint cannot stop a run);
* **a sigma bound**: ``z`` x the root-mean-square residual of the competitive runs instead of
  ``margin`` x their largest residual (a prediction interval rather than a worst case; it gives up the
  guarantee that no run is stopped for a gap an earlier winner recovered from).

The variants are applied by wrapping the rule's own functions for the duration of a measurement (nothing
in memorylab_core changes). ``python benchmarks/early_abort_variants.py`` prints one table.
"""

from __future__ import annotations

import math
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import early_abort_replay as replay_mod  # noqa: E402
import early_abort_sim as sim_mod  # noqa: E402

from memorylab_core.ingest import watch  # noqa: E402
from memorylab_core.policy import early_abort as ea  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"


def sigma_fit(z: float):
    """``_fit`` with z x the RMS residual of the competitive runs as the recovery (used with margin 1)."""
    def fit(points):
        base = ea_fit(points)
        if base is None:
            return None
        a, b, _ = base
        cut = max(sorted(y for _, y in points)[(len(points) - 1) // 2], 0.0)
        residuals = [a + b * x - y for x, y in points if y <= cut]
        return a, b, z * math.sqrt(sum(r * r for r in residuals) / len(residuals))
    return fit


def consecutive(k: int):
    """``Watcher._checkpoint`` that keeps a verdict only once ``k`` checkpoints in a row said stop."""
    def checkpoint(self, cp, step, progress, loss):
        before = self.verdict
        watcher_checkpoint(self, cp, step, progress, loss)
        if self.verdict is not None and before is None:
            self.streak = getattr(self, "streak", 0) + 1
            if self.streak < k:
                self.verdict, self.action = None, None
        elif self.verdict is None:
            self.streak = 0
    return checkpoint


ea_fit = ea._fit
watcher_checkpoint = watch.Watcher._checkpoint


@contextmanager
def variant(fit=None, k: int = 1):
    ea._fit = fit or ea_fit
    watch.Watcher._checkpoint = consecutive(k) if k > 1 else watcher_checkpoint
    try:
        yield
    finally:
        ea._fit, watch.Watcher._checkpoint = ea_fit, watcher_checkpoint


VARIANTS = (("margin 2 (the default until near-bound audits)", 2.0, None, 1), ("margin 1.5", 1.5, None, 1),
            ("margin 1.5, 2 checkpoints in a row", 1.5, None, 2), ("margin 1, 2 in a row", 1.0, None, 2),
            ("margin 1, 3 in a row", 1.0, None, 3), ("sigma bound, z 3", 1.0, sigma_fit(3), 1),
            ("sigma bound, z 4", 1.0, sigma_fit(4), 1))


def main() -> int:
    climb = replay_mod.load_runs(DATA / "early_abort_cpu_climb.jsonl")
    one_edit = replay_mod.load_runs(DATA / "early_abort_cpu_runs.jsonl")
    model = sim_mod.Model()
    nights = [sim_mod.night(model, 27 * 1_000_003 + j) for j in range(30)]
    print("| variant | climb, on: saved | keeps stopped | 47 one-edit in order: saved | keeps stopped | "
          "leave-one-out: saved | keeps stopped | 30 synthetic nights: saved | keeps stopped |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, margin, fit, k in VARIANTS:
        rule = replace(ea.AbortRule(), margin=margin, audit_near=1.0)  # as measured: before near-bound audits
        with variant(fit, k):
            on = replay_mod.replay(climb, rule, deployed=True)
            order = replay_mod.replay(one_edit, rule, deployed=False, baseline_only=True)
            loo = replay_mod.leave_one_out(one_edit, rule, baseline_only=True)
            sim = sim_mod._row(label, [(sim_mod.replay(t, rule, deployed=False), s) for t, s in nights])
        print(f"| {label} | {on.saved_share:.1%} | {on.keeps_stopped} of {on.keeps} | {order.saved_share:.1%} | "
              f"{order.keeps_stopped} of {order.keeps} | {loo.saved_share:.1%} | {loo.keeps_stopped} of {loo.keeps} | "
              f"{sim['saved_share']:.1%} | {sim['keeps_stopped'] / sim['keeps']:.1%} of keeps |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
