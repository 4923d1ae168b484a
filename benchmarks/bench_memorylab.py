"""Time MemoryLab commands as whole processes on synthetic ledgers of 1k / 10k / 100k runs.

    python benchmarks/bench_memorylab.py [--sizes 1000 10000 100000] [--repeat 5]

Each ledger holds varied, realistic records (descriptions built from real knob phrasing, change
signatures, crashes with errors, decision packets) written straight to ``experiments.jsonl``. For
every size the script times, as separate ``python memorylab.py ...`` processes run from a scratch git
repo: ``check`` and ``report`` with a cold cache (first command after the ledger appeared) and warm,
``guide`` / ``insights`` / ``status`` with their research cache cold and warm, and ``log`` (which
appends, so each repetition adds one run) each followed by a ``guide`` that folds the new line.
Prints a markdown table (median and max wall time in ms).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from mlhelpers import fake_run, make_repo  # noqa: E402

KNOBS = [
    ("MATRIX_LR", "matrix LR", [0.02, 0.03, 0.04, 0.05, 0.06, 0.08]),
    ("DEPTH", "depth", [4, 6, 8, 10, 12]),
    ("WARMDOWN_RATIO", "warmdown", [0.3, 0.4, 0.5, 0.6, 0.7]),
    ("WEIGHT_DECAY", "weight decay", [0.0, 0.1, 0.2, 0.3]),
    ("EMBEDDING_LR", "embedding LR", [0.3, 0.6, 0.9, 1.2]),
    ("TOTAL_BATCH_SIZE", "total batch size", [2**17, 2**18, 2**19, 2**20]),
    ("ASPECT_RATIO", "aspect ratio", [48, 64, 80, 96]),
]
FREEFORM = [
    "SwiGLU instead of ReLU^2", "remove value embeddings", "add QK-norm to the MLP", "logit softcap 15 -> 30",
    "sliding window pattern SSSL -> SSLL", "NorMuon off", "cautious weight decay off", "untie embeddings",
    "zero-init the output projections", "rotary base 10000 -> 50000", "x0 scalars init 0.1",
]
ERRORS = ["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
          "RuntimeError: mat1 and mat2 shapes cannot be multiplied (64x512 and 768x512)",
          "FAIL: loss is nan at step 120", "SyntaxError: invalid syntax"]


def synthetic_record(i: int, rng: random.Random, t0: float) -> dict:
    """One varied, realistic ledger record."""
    if rng.random() < 0.75:
        name, words, values = rng.choice(KNOBS)
        old, new = rng.sample(values, 2)
        description = f"{words} {old} -> {new}"
        signature = [{"name": name, "old": old, "new": new, "direction": "up" if new > old else "down",
                      "source": "diff"}]
    else:
        description, signature = rng.choice(FREEFORM), []
    roll = rng.random()
    status = "keep" if roll < 0.15 else "crash" if roll > 0.88 else "discard"
    val = None if status == "crash" else round(1.0 - i * 1e-6 + rng.gauss(0, 0.01), 6)
    error = None
    if status == "crash":
        summary = rng.choice(ERRORS)
        error = {"summary": summary, "tail": "Traceback (most recent call last):\n  ...\n" + summary,
                 "source": "run.log", "kind": "oom" if "memory" in summary else "runtime"}
    commit = f"{rng.getrandbits(160):040x}"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 + i * 300)) + ".000000Z"
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t0 + i * 300)) + f"-{commit[:7]}"
    return {
        "schema_version": 1, "record_type": "run", "run_id": run_id, "timestamp_utc": stamp,
        "branch": f"autoresearch/agent{i % 4}", "commit": commit, "parent_commit": f"{rng.getrandbits(160):040x}",
        "family": rng.choice(["optimizer", "architecture", "schedule", None]), "status": status, "mode": "explore",
        "description": description, "hypothesis": None, "tags": [], "notes": None,
        "metrics": {"val_bpb": val, "memory_gb": 44.0, "peak_vram_mb": 45060.2, "num_steps": 953,
                    "training_seconds": 300.1, "mfu_percent": 39.8},
        "error": error, "artifacts": {}, "code_fingerprint": f"{rng.getrandbits(256):064x}",
        "change_signature": signature, "run_token": f"{rng.getrandbits(128):032x}", "seed": 42,
        "source": "native",
        "novelty_guard": {"classification": "novel", "decision": "allow", "mode": "explore", "matches": [],
                          "reasons": ["no earlier run matches"]},
        "decision_packet": {"run_id": run_id, "next_action": "abandon", "priority": "low", "rule": "D3",
                            "rationale": "worse than the champion beyond noise: move on"},
    }


def build_ledger(store: Path, n: int) -> None:
    store.mkdir(parents=True, exist_ok=True)
    rng = random.Random(n)
    t0 = time.time() - n * 300
    with open(store / "experiments.jsonl", "w") as fh:
        for i in range(n):
            fh.write(json.dumps(synthetic_record(i, rng, t0), separators=(",", ":")) + "\n")


def timed(args: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "memorylab.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode not in (0, 2):
        raise SystemExit(f"memorylab {' '.join(args)} failed: {proc.stderr.strip()}")
    return elapsed


def bench_size(n: int, repeat: int, work: Path) -> list[tuple[str, list[float]]]:
    store = work / f"store{n}"
    build_ledger(store, n)
    repo = make_repo(work / f"repo{n}")
    # Measure as users run it: with bytecode caching (some shells export PYTHONDONTWRITEBYTECODE).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["MEMORYLAB_HOME"] = str(store)
    check = ["check", "-d", "increase matrix LR 0.04 -> 0.05", "--tags", "optimizer"]
    report = ["report", "--output", str(work / "report.md")]
    rows = [("check (cold cache)", [timed(check, repo, env)])]
    rows.append(("check", [timed(check, repo, env) for _ in range(repeat)]))
    shutil.rmtree(store / "cache", ignore_errors=True)
    rows.append(("report (cold cache)", [timed(report, repo, env)]))
    rows.append(("report", [timed(report, repo, env) for _ in range(repeat)]))
    for command in ("guide", "insights", "status"):  # research-memory views: their own small cache
        (store / "cache" / "research.pickle").unlink(missing_ok=True)
        rows.append((f"{command} (cold cache)", [timed([command], repo, env)]))
        rows.append((command, [timed([command], repo, env) for _ in range(repeat)]))
    log_times, guide_times = [], []
    for i in range(repeat):
        log, summary = fake_run(repo, 0.99 + i * 1e-4)
        log_times.append(timed(["log", "-d", f"bench run {i}", "--status", "discard", "--log", str(log),
                                "--summary", str(summary)], repo, env))
        guide_times.append(timed(["guide"], repo, env))
    rows.append(("log", log_times))
    rows.append(("guide (right after a log)", guide_times))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]} · {os.cpu_count()} cores · {sys.platform}")
    print("| runs | command | median ms | max ms |\n|---:|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            for name, times in bench_size(n, args.repeat, Path(tmp)):
                print(f"| {n:,} | {name} | {statistics.median(times):.0f} | {max(times):.0f} |", flush=True)


if __name__ == "__main__":
    main()
