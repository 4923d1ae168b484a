#!/usr/bin/env python3
"""The cost of watching a run (issue 27): per step line, and per run (calibrating the rule before training).

* **Per step**: :class:`~memorylab_core.ingest.watch.Watcher.feed` on train.py's real step-line format,
  one line per call as the launcher delivers them (a chunk per ``select`` wake-up), with an armed plan:
  microseconds per line, against a step of the cpu profile (~365 ms on one core) and of the gpu profile
  (300 s / 953 steps = 315 ms on an H100).
* **Per run**: what ``run`` does before training: read the archived ``summary.json`` of ``--runs``
  history runs (200-point curves, the sidecar's limit) and calibrate the 15 checkpoints
  (:func:`~memorylab_core.policy.early_abort.plan`), against one run's budget.

Run: ``python benchmarks/early_abort_overhead.py`` (seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memorylab_core.ingest.watch import Watcher  # noqa: E402
from memorylab_core.policy import early_abort as ea  # noqa: E402

POINTS = 200


def sidecar(rng: random.Random, offset: float) -> dict:
    curve = [{"step": i, "progress": round(i / (POINTS - 1), 5),
              "loss": round(4.2 + 4.1 * (1 - i / (POINTS - 1)) ** 2 + offset + rng.gauss(0, 0.01), 6),
              "tokens_per_sec": 5600.0} for i in range(POINTS)]
    return {"val_bpb": 1.9 + offset / 2.4, "loss_curve": curve}


def per_run(runs: int, repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds to load ``runs`` sidecars and calibrate a plan."""
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(runs):
            path = Path(tmp) / f"{i}.json"
            path.write_text(json.dumps(sidecar(rng, rng.uniform(-0.02, 0.5))))
            paths.append(path)
        times = []
        for _ in range(repeats):
            started, cpu = time.perf_counter(), time.process_time()
            history = []
            for i, path in enumerate(paths):
                data = json.loads(path.read_text())
                history.append(ea.HistoryRun(str(i), ea.curve_of(data["loss_curve"]), data["val_bpb"]))
            plan = ea.plan(ea.AbortRule(), "0", history[:1], history)
            times.append((time.perf_counter() - started, time.process_time() - cpu))
            assert plan.engaged
    return sorted(times)[len(times) // 2]


def per_line(lines: int) -> tuple[float, float]:
    """(wall, CPU) seconds per step line fed to an armed watcher (one line per feed, no checkpoint stops it)."""
    history = [ea.HistoryRun(str(i), [(0.0, 8.0 + d), (1.0, 4.0 + d)], 1.0 + d / 2)
               for i, d in enumerate(x / 100 for x in range(30))]
    plan = ea.plan(ea.AbortRule(), "0", history[:1], history)
    watcher = Watcher(plan, "on", "token", 60.0)
    chunks = [(f"\rstep {i:05d} ({100 * i / lines:.1f}%) | loss: {7.99 - 4.0 * i / lines:.6f} | lrm: 1.00 | "
               f"dt: 365ms | tok/sec: 5,608 | mfu: n/a | epoch: 1 | remaining: 34s    ").encode()
              for i in range(lines)]
    started, cpu = time.perf_counter(), time.process_time()
    for chunk in chunks:
        watcher.feed(chunk)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert watcher.steps_seen == lines - 1 and not watcher.stop_requested  # the last line is still partial
    return elapsed / lines, cpu / lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=200, help="history runs read and calibrated on (run's limit: 200)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    (line_wall, line_cpu), (run_wall, run_cpu) = per_line(args.lines), per_run(args.runs, args.repeats)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"per step line: {line_wall * 1e6:.1f} µs wall, {line_cpu * 1e6:.1f} µs CPU = {line_cpu / 0.365:.4%} of a "
          f"365 ms cpu step, {line_cpu / 0.315:.4%} of a 315 ms gpu step")
    print(f"per run: {run_wall * 1000:.0f} ms wall, {run_cpu * 1000:.0f} ms CPU to read {args.runs} sidecars and "
          f"calibrate = {run_cpu / 60:.3%} of a 60 s cpu budget, {run_cpu / 300:.3%} of a 300 s gpu budget (CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
