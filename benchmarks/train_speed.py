"""Side-by-side cpu-profile throughput of two train.py checkouts (issue 15), alternating runs.

    python benchmarks/train_speed.py --old DIR_OLD:CACHE_OLD --new DIR_NEW:CACHE_NEW \
        [--budget 30] [--pairs 3] [--hog] [--seed 42]

Each DIR holds a train.py + prepare.py; CACHE is the AUTORESEARCH_CACHE prepared by that DIR's
prepare.py (the cpu profile). Runs old, new, old, new, ... with the same command
(`python train.py`, AUTORESEARCH_PROFILE=cpu, AUTORESEARCH_TIME_BUDGET=budget) and prints one line
per run from the sidecar: tokens/s, steps, val_bpb, total seconds, wall seconds, load average.
--hog runs a busy-looping Python process (one core) for the whole measurement: "under load".

Since issue 22 the cpu profile's tokens_per_sec counts tokens per second of its budget's clock (CPU
seconds per thread), while older sidecars count tokens per wall second. The comparison is made in
one unit, tokens per CPU second per thread (`cpu_tok/s`): a wall-clock sidecar's tokens/s divided by
its `contention.cpu_share`. That unit does not depend on what else the machine runs.
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trainrun import Hog, run_train  # noqa: E402


def cpu_tokens_per_sec(s):
    """Tokens per CPU second per thread: the sidecar's own figure on the cpu clock, else tokens per wall
    second over the share of its threads' capacity the process got."""
    if s.get("budget_clock") == "cpu":
        return s["tokens_per_sec"]
    return s["tokens_per_sec"] / s["contention"]["cpu_share"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--budget", type=float, default=30, help="seconds; 0 = the profile's own budget")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--hog", action="store_true")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    results = {"old": [], "new": []}
    with Hog(1 if args.hog else 0):
        for i in range(args.pairs):
            for label in ("old", "new"):
                checkout, cache = getattr(args, label).split(":")
                load = os.getloadavg()[0]
                s = run_train(checkout, args.budget, args.seed, cache)
                results[label].append(s)
                print(f"pair {i} {label}: cpu_tok/s {cpu_tokens_per_sec(s):.0f} "
                      f"(clock {s.get('budget_clock', 'wall')}, share {s['contention']['cpu_share']:.2f}) "
                      f"tok/s {s['tokens_per_sec']:.0f} steps {s['num_steps']} "
                      f"val_bpb {s['val_bpb']:.4f} total_s {s['total_seconds']:.1f} "
                      f"wall_s {s['process_wall_seconds']:.1f} "
                      f"load {load:.2f}", flush=True)
    for label, runs in results.items():
        tps = [cpu_tokens_per_sec(r) for r in runs]
        print(f"{label}: cpu_tok/s median {statistics.median(tps):.0f} (runs {', '.join(f'{t:.0f}' for t in tps)}); "
              f"wall median {statistics.median(r['process_wall_seconds'] for r in runs):.1f}s")
    ratio = statistics.median(cpu_tokens_per_sec(r) for r in results["new"]) / statistics.median(
        cpu_tokens_per_sec(r) for r in results["old"])
    print(f"new/old cpu_tok/s: {ratio:.2f}x{' (under a CPU hog)' if args.hog else ''}")


if __name__ == "__main__":
    main()
