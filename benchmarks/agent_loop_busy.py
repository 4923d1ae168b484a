#!/usr/bin/env python3
"""A short real agent loop of program.md (issue 24): a baseline, one replicate and three ideas, with the
real cpu-profile train.py of this checkout, every ``run`` with ``--rerun-confounded``, ``git`` followed
mechanically (``advance`` keeps the commit; ``reset`` and ``stay`` drop it: this loop moves on).

    python benchmarks/agent_loop_busy.py [--budget 10] [--nice 10] [--replicates 1] [--hog]

With ``--hog`` six ideas run, every other one beside a 2-process CPU hog (two busy loops started just
before the ``run`` and stopped after it): the issue-24 measurement of confounded runs, keeps among
them, the noise level learned, and MemoryLab's overhead per iteration on a busy machine.

Needs the cpu data prepared (``AUTORESEARCH_PROFILE=cpu python prepare.py``, or ``$AUTORESEARCH_CACHE``).
Prints each command's last lines, then every run's role, validity, status, val_bpb and CPU share, the
champion events, MemoryLab's overhead per run (its wall time minus the training's own ``duration_s``)
and the final ``status`` and ``guide``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trainrun import Hog  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
IDEAS = (("MATRIX_LR = 0.04", "MATRIX_LR = 0.05", "MATRIX_LR 0.04 -> 0.05"),
         ("WARMDOWN_RATIO = 0.5", "WARMDOWN_RATIO = 0.6", "WARMDOWN_RATIO 0.5 -> 0.6"),
         ("SCALAR_LR = 0.5", "SCALAR_LR = 0.4", "SCALAR_LR 0.5 -> 0.4"),
         ("EMBEDDING_LR = 0.6", "EMBEDDING_LR = 0.8", "EMBEDDING_LR 0.6 -> 0.8"),
         ("WEIGHT_DECAY = 0.2", "WEIGHT_DECAY = 0.1", "WEIGHT_DECAY 0.2 -> 0.1"),
         ("UNEMBEDDING_LR = 0.004", "UNEMBEDDING_LR = 0.006", "UNEMBEDDING_LR 0.004 -> 0.006"))


class Loop:
    """The scratch repository the agent works in, and the wall time its MemoryLab commands took."""

    def __init__(self, repo: Path, budget: float, nice: int):
        self.repo, self.walls = repo, []
        self.env = {**os.environ, "AUTORESEARCH_PROFILE": "cpu", "AUTORESEARCH_TIME_BUDGET": str(budget)}
        self.train = ["--timeout", "1800", "--quiet", "--", "nice", "-n", str(nice), sys.executable, "train.py"]
        repo.mkdir(parents=True)
        for name in ("train.py", "prepare.py"):
            shutil.copy(ROOT / name, repo / name)
        (repo / ".gitignore").write_text("results/\n__pycache__/\n")
        for args in (("init", "-q", "-b", "autoresearch/busy"), ("config", "user.email", "agent@example.com"),
                     ("config", "user.name", "agent"), ("add", "-A"), ("commit", "-q", "-m", "baseline")):
            self.git(*args)

    def git(self, *args: str) -> None:
        subprocess.run(["git", *args], cwd=self.repo, check=True, capture_output=True)

    def memorylab(self, *args: str, timed: bool = True) -> dict:
        """Run a MemoryLab command; print its last lines; return its MEMORYLAB_RESULT (or {})."""
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(ROOT / "memorylab.py"), *args], cwd=self.repo, env=self.env,
                              capture_output=True, text=True)
        if timed:
            self.walls.append(time.perf_counter() - start)
        print(f"$ memorylab {' '.join(args[:3])} -> exit {proc.returncode}")
        print("\n".join(proc.stdout.splitlines()[-6:]))
        lines = [x for x in proc.stdout.splitlines() if x.startswith("MEMORYLAB_RESULT ")]
        return json.loads(lines[-1].split(" ", 1)[1]) if lines else {}

    def idea(self, old: str, new: str, message: str) -> None:
        """Edit train.py, commit, run, and follow ``git``."""
        path = self.repo / "train.py"
        path.write_text(path.read_text().replace(old, new, 1))
        self.git("commit", "-q", "-am", message)
        if self.memorylab("run", "--rerun-confounded", *self.train).get("git") != "advance":
            self.git("reset", "-q", "--hard", "HEAD~1")

    def summary(self) -> None:
        records = [json.loads(line) for line in (self.repo / "results/memorylab/experiments.jsonl").read_text()
                   .splitlines()]
        runs = [r for r in records if r.get("record_type") != "event"]
        for r in runs:
            print(f"run {r['role']:<9} {r['validity']:<10} {r['status']:<7} {r['metrics'].get('val_bpb')} "
                  f"cpu_share {(r.get('contention') or {}).get('cpu_share')}")
        print("champion events:", [e.get("run_id") for e in records if e.get("record_type") == "event"])
        training = sum(r["launch"]["duration_s"] for r in runs if r.get("launch"))
        print(f"memorylab wall {sum(self.walls):.1f} s, training {training:.1f} s, overhead "
              f"{(sum(self.walls) - training) / len(runs):.2f} s per run ({len(runs)} runs)")
        self.memorylab("status", timed=False)
        self.memorylab("guide", timed=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=10.0, help="training budget in CPU-seconds (default 10)")
    parser.add_argument("--nice", type=int, default=10, help="nice level of the training process (default 10)")
    parser.add_argument("--replicates", type=int, default=1, help="replicates of the baseline (default 1)")
    parser.add_argument("--hog", action="store_true",
                        help="six ideas, every other one beside a 2-process CPU hog (default: three ideas, no hog)")
    args = parser.parse_args()
    loop = Loop(Path(tempfile.mkdtemp(prefix="memorylab-loop-")) / "repo", args.budget, args.nice)
    loop.memorylab("run", "-d", "baseline", "--rerun-confounded", *loop.train)
    loop.memorylab("replicate", "HEAD", "--n", str(args.replicates), *loop.train)
    for i, (old, new, message) in enumerate(IDEAS if args.hog else IDEAS[:3]):
        if args.hog and i % 2 == 0:
            print(f"-- beside a 2-process CPU hog: {message}")
            with Hog(2):
                loop.idea(old, new, message)
        else:
            loop.idea(old, new, message)
    loop.summary()
    return 0


if __name__ == "__main__":
    sys.exit(main())
