"""Time MemoryLab commands as whole processes on synthetic ledgers of 1k / 10k / 100k runs.

    python benchmarks/bench_memorylab.py [--sizes 1000 10000 100000] [--repeat 5]

Each ledger holds varied, realistic records (descriptions built from real knob phrasing, change
signatures, crashes with errors, decision packets) written straight to ``experiments.jsonl``. For
every size the script times, as separate ``python memorylab.py ...`` processes run from a scratch git
repo: ``check`` with a cold index (the first command after the journal appeared: it builds
``index.sqlite``) and warm, ``report``, ``guide`` / ``insights`` / ``status`` with their stored research
fold cold and warm, ``log`` (which appends, so each repetition adds one run) each followed by a
``guide`` that folds the new line, and ``check`` / ``import`` of a 100,000-character description.
Prints a markdown table: median and max wall time in ms, and the largest peak RSS in MiB.
``--small`` writes compact records (about 200 bytes instead of about 1 KB) for the 1,000,000-run size.
``--arena KEY`` stamps every synthetic record with that arena: with the arena a ``log`` here gets
(``cpu/cpu`` for the fake cpu-profile runs it logs), the logged runs join the big history's arena
instead of starting their own, so ``log`` and the views work on the whole history.
``--unique-descriptions`` appends the run number to every description (``"matrix LR 0.04 -> 0.05 v123"``):
the default records repeat about 150 descriptions, which the novelty guard's per-description caches
read only once, while real agents write a new one for nearly every run.
``--full-records`` gives each record what ``log`` writes beside those fields (archive paths, the
sidecar's setup and contention, arena, role, validity, the verdict's reasons, a decision packet with
its verdict and champion comparison): about 3 KB a record, the size of a real one, instead of 1 KB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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


def full_record(i: int, rng: random.Random, t0: float) -> dict:
    """A :func:`synthetic_record` with the rest of what ``log`` writes (about 3 KB, like a real record)."""
    record = synthetic_record(i, rng, t0)
    run_id, champion = record["run_id"], f"{rng.getrandbits(28):07x}"
    record["artifacts"] = {name: f"runs/{run_id}/{file}" for name, file in (
        ("run_log", "run.log"), ("summary", "summary.json"), ("train_patch", "train.patch"),
        ("decision_packet", "decision_packet.json"), ("decision_packet_md", "decision_packet.md"))}
    record["metrics"].update(total_seconds=325.9, total_tokens_M=499.6, num_params_M=50.3, depth=8,
                             tokens_per_sec=round(rng.gauss(1.6e6, 2e4)), device="cuda", profile="gpu")
    record["setup"] = {"profile": "gpu", "device": "cuda", "device_name": "NVIDIA H100 80GB HBM3",
                       "device_class": "H100 SXM", "data_id": "9d8e7f6a55", "time_budget": 300.0,
                       "max_seq_len": 2048, "eval_tokens": 20971520}
    record["contention"] = {"cpu_threads": 8, "cpu_share": round(rng.uniform(0.1, 0.3), 3),
                            "gpu_other_processes": 0, "gpu_throttle_reasons": []}
    record.update(arena="gpu/h100-sxm/300s/seq2048/eval20971520/data-9d8e7f6a55", role="idea",
                  validity="valid" if record["status"] != "crash" else "unknown", host="gpu-node-1",
                  categories=["learning_rate"] if record["change_signature"] else [])
    reasons = [f"{s['name']} {s['direction']} {s['old']}→{s['new']}: no earlier run made this move (or only its "
               "opposite)" for s in record["change_signature"]]
    reasons.append("no earlier description reaches text similarity 0.50")
    record["novelty_guard"].update(threshold=0.5, matched_part=None, reasons=reasons)
    reference = {"run_id": champion, "commit": f"{rng.getrandbits(160):040x}", "branch": record["branch"],
                 "val_bpb": 0.99, "memory_gb": 44.0, "description": "matrix LR 0.04 -> 0.05",
                 "timestamp_utc": record["timestamp_utc"]}
    record["decision_packet"].update(
        status=record["status"], hypothesis_status="refuted",
        verdict={"champion": champion, "reference_val_bpb": 0.99, "reference_n": 1, "gain": -0.01, "sigma": 0.002,
                 "noise_source": "default", "noise_groups": 0, "source": "policy"},
        comparison={"prior_champion": reference, "current_champion": reference, "is_new_champion": False,
                    "delta_val_bpb": 0.01, "delta_memory_gb": 0.0},
        novelty={"classification": "novel", "decision": "allow", "matched_runs": [], "reasons": reasons})
    return record


def small_record(i: int, rng: random.Random, t0: float) -> dict:
    """A compact record (about 200 bytes): the fields the index and the views read, nothing else."""
    name, words, values = rng.choice(KNOBS)
    old, new = rng.sample(values, 2)
    status = rng.choice(["keep", "discard", "discard", "discard", "crash"])
    record = {"schema_version": 1, "run_id": f"r{i:07d}", "timestamp_utc": time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + i * 300)), "status": status,
        "description": f"{words} {old} -> {new}",
        "metrics": {"val_bpb": None if status == "crash" else round(0.99 + rng.gauss(0, 0.01), 6)}}
    return record


def build_ledger(store: Path, n: int, small: bool = False, arena: str | None = None, unique: bool = False,
                 full: bool = False) -> None:
    store.mkdir(parents=True, exist_ok=True)
    rng = random.Random(n)
    t0 = time.time() - n * 300
    make = small_record if small else full_record if full else synthetic_record
    with open(store / "experiments.jsonl", "w") as fh:
        for i in range(n):
            record = make(i, rng, t0)
            if arena:
                record["arena"] = arena
            if unique:
                record["description"] += f" v{i}"
            fh.write(json.dumps(record, separators=(",", ":")) + "\n")


PEAK_RSS: dict[str, float] = {}


def timed(args: list[str], cwd: Path, env: dict, label: str = "") -> float:
    """Wall time in ms of one ``python memorylab.py ...`` process; its peak RSS goes to PEAK_RSS[label]."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "memorylab.py"), *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = (time.perf_counter() - start) * 1000
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 2):
        raise SystemExit(f"memorylab {' '.join(args)} failed: {err.strip()}")
    PEAK_RSS[label] = max(PEAK_RSS.get(label, 0.0), usage.ru_maxrss / 1024)
    return elapsed


def drop_index(store: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (store / f"index.sqlite{suffix}").unlink(missing_ok=True)


def drop_research_fold(store: Path) -> None:
    import sqlite3

    db = sqlite3.connect(store / "index.sqlite")
    db.execute("DELETE FROM folds")
    db.commit()
    db.close()


def bench_size(n: int, repeat: int, work: Path, small: bool = False, arena: str | None = None,
               unique: bool = False, full: bool = False) -> list[tuple[str, list[float]]]:
    store = work / f"store{n}"
    build_ledger(store, n, small, arena, unique, full)
    repo = make_repo(work / f"repo{n}")
    # Measure as users run it: with bytecode caching (some shells export PYTHONDONTWRITEBYTECODE).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["MEMORYLAB_HOME"] = str(store)
    timed(["--help"], repo, env)  # compile the bytecode once, outside the timings
    check = ["check", "-d", "increase matrix LR 0.04 -> 0.05", "--tags", "optimizer"]
    report = ["report", "--output", str(work / "report.md")]

    def row(name: str, args: list[str], times: int = repeat) -> tuple[str, list[float]]:
        return name, [timed(args, repo, env, f"{n}:{name}") for _ in range(times)]

    rows = [row("check (cold index: builds index.sqlite)", check, 1), row("check", check)]
    rows.append(row("report", report))
    for command in ("guide", "insights", "status"):  # research-memory views: their own stored fold
        drop_research_fold(store)
        rows.append(row(f"{command} (research fold cold)", [command], 1))
        rows.append(row(command, [command]))
    log_times, guide_times = [], []
    for i in range(repeat):
        log, summary = fake_run(repo, 0.99 + i * 1e-4)
        log_times.append(timed(["log", "-d", f"bench run {i}", "--status", "discard", "--log", str(log),
                                "--summary", str(summary)], repo, env, f"{n}:log"))
        guide_times.append(timed(["guide"], repo, env, f"{n}:guide (right after a log)"))
    rows.append(("log", log_times))
    rows.append(("guide (right after a log)", guide_times))
    long_text = " ".join(f"raise matrix lr {k / 1000:.3f} -> {(k + 1) / 1000:.3f} with SSSL window"
                         for k in range(2000))[:100_000]
    rows.append(row("check -d <100,000 characters>", ["check", "-d", long_text]))
    tsv = work / f"long{n}.tsv"
    tsv.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n" + f"abcdef1\t1.0\t1.0\tdiscard\t{long_text}\n")
    rows.append(row("import <1 row, 100,000-character description>", ["import", str(tsv)], 1))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--small", action="store_true", help="compact records (for 1,000,000 runs)")
    parser.add_argument("--arena", help="stamp every synthetic record with this arena (e.g. cpu/cpu)")
    parser.add_argument("--unique-descriptions", action="store_true", help="no two runs share a description")
    parser.add_argument("--full-records", action="store_true", help="records of a real one's size (about 3 KB)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]} · {os.cpu_count()} cores · {sys.platform}")
    print("| runs | command | median ms | max ms | peak RSS MiB |\n|---:|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            for name, times in bench_size(n, args.repeat, Path(tmp), args.small, args.arena,
                                          args.unique_descriptions, args.full_records):
                rss = PEAK_RSS.get(f"{n}:{name}", 0.0)
                print(f"| {n:,} | {name} | {statistics.median(times):.0f} | {max(times):.0f} | {rss:.0f} |",
                      flush=True)


if __name__ == "__main__":
    main()
