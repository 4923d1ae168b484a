"""How much val_bpb moves with the machine's load: the same commit, the cpu profile, runs alone and
beside a CPU hog, alternating (issue 22).

    python benchmarks/train_noise.py [--runs 3] [--hog-procs 2] [--budget 0] [--seed 42] [--json OUT]

Needs prepared cpu-profile data in $AUTORESEARCH_CACHE (`AUTORESEARCH_PROFILE=cpu python prepare.py`).
Runs `python train.py` from the repo root, alone, then beside --hog-procs busy-looping Python
processes, alone, beside, ... (--runs of each), with one seed, so the only difference between the
two conditions is the other load. Prints one line per run (val_bpb, steps, training seconds on the
budget's clock, wall training seconds, the process wall time, CPU share, load average) and, per
condition, val_bpb mean and sd, then the gap between the conditions' means. A shared machine is
never idle: "alone" means without the hog, and the load average column says what else was running.
"""

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trainrun import Hog, run_train  # noqa: E402


def describe(label: str, i: int, r: dict) -> str:
    c = r.get("contention") or {}
    nan = float("nan")
    return (f"{label:6s} #{i}: val_bpb {r['val_bpb']:.4f}  steps {r['num_steps']:4d}  "
            f"training_s {r['training_seconds']:6.1f} ({r.get('budget_clock', 'wall')})  "
            f"wall_training_s {r.get('wall_training_seconds', r['training_seconds']):6.1f}  "
            f"process_wall_s {r['process_wall_seconds']:6.1f}  cpu_share {c.get('cpu_share', nan):.2f}  "
            f"tok/s {r['tokens_per_sec']:7.0f}  load {r['loadavg_before']:.2f}->{c.get('loadavg_end', nan):.2f}")


def summarize(runs: dict[str, list[dict]]) -> dict:
    """Per condition: val_bpb mean / sd, mean steps, wall seconds, CPU share, load; and the gap."""
    out = {}
    for label, rs in runs.items():
        vals = [r["val_bpb"] for r in rs]
        out[label] = {
            "n": len(rs),
            "val_bpb_mean": statistics.mean(vals),
            "val_bpb_sd": statistics.stdev(vals) if len(vals) > 1 else None,
            "steps_mean": statistics.mean(r["num_steps"] for r in rs),
            "wall_training_seconds_mean": statistics.mean(r.get("wall_training_seconds", 0.0) for r in rs),
            "process_wall_seconds_mean": statistics.mean(r["process_wall_seconds"] for r in rs),
            "cpu_share_mean": statistics.mean((r.get("contention") or {}).get("cpu_share", 0.0) for r in rs),
            "tokens_per_sec_mean": statistics.mean(r["tokens_per_sec"] for r in rs),
            "loadavg_mean": statistics.mean(r["loadavg_before"] for r in rs),
        }
    if runs.get("alone") and runs.get("hog"):
        out["gap_val_bpb"] = out["hog"]["val_bpb_mean"] - out["alone"]["val_bpb_mean"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per condition")
    ap.add_argument("--hog-procs", type=int, default=2, help="busy-looping processes beside the 'hog' runs")
    ap.add_argument("--budget", type=float, default=0, help="AUTORESEARCH_TIME_BUDGET; 0 = the profile's own")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json", help="also write every run and the summary there")
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {"alone": [], "hog": []}
    print(f"train_noise: {args.runs}+{args.runs} runs, hog {args.hog_procs} procs, cpus {os.cpu_count()}, "
          f"budget {args.budget or 'profile'}", flush=True)
    for i in range(args.runs):
        for label in ("alone", "hog"):
            with Hog(args.hog_procs if label == "hog" else 0):
                result = run_train(budget=args.budget, seed=args.seed)
            runs[label].append(result)
            print(describe(label, i, result), flush=True)
    summary = summarize(runs)
    for label in ("alone", "hog"):
        s = summary[label]
        sd = "n/a" if s["val_bpb_sd"] is None else f"{s['val_bpb_sd']:.4f}"
        print(f"{label:6s}: val_bpb mean {s['val_bpb_mean']:.4f} sd {sd}  steps {s['steps_mean']:.0f}  "
              f"wall_training_s {s['wall_training_seconds_mean']:.0f}  "
              f"process_wall_s {s['process_wall_seconds_mean']:.0f}  cpu_share {s['cpu_share_mean']:.2f}  "
              f"tok/s {s['tokens_per_sec_mean']:.0f}  load {s['loadavg_mean']:.2f}")
    print(f"gap: mean(hog) - mean(alone) = {summary['gap_val_bpb']:+.4f} bpb")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "summary": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
