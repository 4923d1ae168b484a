"""What the training benchmarks share: one cpu-profile train.py run read back from its sidecar, and a CPU hog.

Used by train_noise.py, train_speed.py and agent_loop_busy.py (run them from the repository root or
from benchmarks/; each puts this folder on sys.path).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_train(checkout: Path | str = REPO, budget: float = 0, seed: int = 0, cache: str | None = None) -> dict:
    """One ``train.py`` run of ``checkout`` on the cpu profile (``budget`` CPU seconds, 0 = the profile's own;
    ``cache`` = its AUTORESEARCH_CACHE): the sidecar without its loss curve, plus the process's wall time
    (``process_wall_seconds``) and the load average before it (``loadavg_before``)."""
    with tempfile.TemporaryDirectory() as tmp:
        summary = os.path.join(tmp, "summary.json")
        env = dict(os.environ, AUTORESEARCH_PROFILE="cpu", AUTORESEARCH_SUMMARY_PATH=summary,
                   AUTORESEARCH_SEED=str(seed))
        if cache:
            env["AUTORESEARCH_CACHE"] = cache
        if budget:
            env["AUTORESEARCH_TIME_BUDGET"] = str(budget)
        load_before = os.getloadavg()[0]
        t0 = time.time()
        proc = subprocess.run([sys.executable, "train.py"], cwd=checkout, env=env, capture_output=True, text=True)
        wall = time.time() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{checkout}: train.py failed (exit {proc.returncode}): "
                             f"{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
        with open(summary) as f:
            result = json.load(f)
    result.pop("loss_curve", None)
    result.update(process_wall_seconds=round(wall, 1), loadavg_before=round(load_before, 2))
    return result


class Hog:
    """``procs`` busy-looping processes (one core each) for the duration of a ``with`` block: a machine
    shared with other jobs. Only the processes it started are ended."""

    def __init__(self, procs: int = 2):
        self.procs, self.running = procs, []

    def __enter__(self) -> Hog:
        self.running = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.procs)]
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.running:
            proc.kill()
        for proc in self.running:
            proc.wait()
