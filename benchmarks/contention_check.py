"""Real training runs with and without a CPU hog, judged by MemoryLab's confound detector.

    python benchmarks/contention_check.py [--runs 6] [--budget 20] [--hogs 2]

Trains the cpu profile of this checkout's train.py ``--runs`` times with a short budget (the data must
be prepared: ``AUTORESEARCH_PROFILE=cpu python prepare.py``), the same code every time. Runs 1 and 2
are quiet (they give the arena its typical throughput); after that every other run has ``--hogs``
busy-loop processes competing for the cores. Each run is logged with its sidecar into a scratch
store, and the table shows what the detector (evidence/validity.py) said about it: a hit is a hog run
marked ``confounded``, a miss a hog run marked valid, a false alarm a quiet run marked confounded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def train(budget: float, summary: Path, log: Path) -> None:
    env = {**os.environ, "AUTORESEARCH_PROFILE": "cpu", "AUTORESEARCH_TIME_BUDGET": str(budget),
           "AUTORESEARCH_SUMMARY_PATH": str(summary)}
    with open(log, "w") as fh:
        subprocess.run([sys.executable, "train.py"], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                       check=True)


def log_run(store: Path, i: int, summary: Path, log: Path) -> dict:
    env = {**os.environ, "MEMORYLAB_HOME": str(store)}
    status = "keep" if i == 0 else "discard"
    description = "baseline" if i == 0 else f"same code again, run {i + 1}"
    subprocess.run([sys.executable, str(ROOT / "memorylab.py"), "log", "-d", description, "--status", status,
                    "--log", str(log), "--summary", str(summary), "--skip-archive"], env=env, check=True,
                   capture_output=True)
    lines = (store / "experiments.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--budget", type=float, default=20.0)
    parser.add_argument("--hogs", type=int, default=2)
    args = parser.parse_args()
    print("| run | hog | tok/s | steps | cpu_share | load avg end | validity | cause |")
    print("|---:|---|---:|---:|---:|---:|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        store, summary, log = Path(tmp) / "store", Path(tmp) / "summary.json", Path(tmp) / "run.log"
        for i in range(args.runs):
            hog = i >= 2 and i % 2 == 0
            hog_command = [sys.executable, "-c", "while True: pass"]
            hogs = [subprocess.Popen(hog_command) for _ in range(args.hogs if hog else 0)]
            try:
                train(args.budget, summary, log)
            finally:
                for proc in hogs:
                    proc.kill()
                    proc.wait()
            record = log_run(store, i, summary, log)
            sidecar = json.loads(summary.read_text())
            contention = sidecar.get("contention") or {}
            validity = record.get("validity")
            state = validity.get("status") if isinstance(validity, dict) else validity
            causes = (record.get("confound") or {}).get("causes") or []
            print(f"| {i + 1} | {'yes' if hog else 'no'} | {sidecar.get('tokens_per_sec')} "
                  f"| {sidecar.get('num_steps')} | {contention.get('cpu_share')} | {contention.get('loadavg_end')} "
                  f"| {state} "
                  f"| {'; '.join(causes)[:120]} |", flush=True)


if __name__ == "__main__":
    main()
