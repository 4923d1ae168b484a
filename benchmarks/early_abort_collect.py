#!/usr/bin/env python3
"""Collect real cpu-profile runs of varied train.py edits for the early-abort replay (issue 27).

Each edit is a list of exact (old, new) text replacements applied to a copy of this checkout's
train.py in a scratch folder; the copy trains once (``AUTORESEARCH_PROFILE=cpu``) with the summary
sidecar, and one JSON line per run is appended to ``OUT/runs.jsonl``: the edit's name, val_bpb (null
on a crash), training and wall seconds, and the sidecar's ``loss_curve``. The order is fixed (the
baseline and its replicates first, then the edits in a seeded shuffle), and a run already in
``runs.jsonl`` is skipped, so an interrupted collection resumes where it stopped.
``benchmarks/early_abort_replay.py --runs OUT/runs.jsonl`` replays them through the abort rule.

With ``--climb`` the collection is a night as an agent runs it: each edit applies to the current
champion's train.py (a constant an earlier keep moved gets the edit's value; a code edit that no longer
applies is skipped), and a run whose val_bpb beats the mean of the champion's runs becomes the champion
(the replay's keep rule); more ideas (``MORE_EDITS``) and then a second round (``ROUND_TWO``) make a
~100-run night. Each row records the champion it was applied to.

Run (hours; one run at a time): ``AUTORESEARCH_CACHE=/tmp/cache-x python benchmarks/early_abort_collect.py
--out /tmp/ea-runs [--climb]`` (``--threads 1`` by default, to leave a shared machine's other core alone;
the data is prepared first with ``prepare.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_MLP = "return self.c_proj(F.relu(self.c_fc(x)).square())"
EDITS: list[tuple[str, list[tuple[str, str]]]] = [
    ("matrix_lr 0.02", [("MATRIX_LR = 0.04 ", "MATRIX_LR = 0.02 ")]),
    ("matrix_lr 0.06", [("MATRIX_LR = 0.04 ", "MATRIX_LR = 0.06 ")]),
    ("matrix_lr 0.08", [("MATRIX_LR = 0.04 ", "MATRIX_LR = 0.08 ")]),
    ("matrix_lr 0.12", [("MATRIX_LR = 0.04 ", "MATRIX_LR = 0.12 ")]),
    ("matrix_lr 0.01", [("MATRIX_LR = 0.04 ", "MATRIX_LR = 0.01 ")]),
    ("matrix_lr 0.3", [("MATRIX_LR = 0.04 ", "MATRIX_LR = 0.3 ")]),
    ("embedding_lr 0.3", [("EMBEDDING_LR = 0.6 ", "EMBEDDING_LR = 0.3 ")]),
    ("embedding_lr 1.0", [("EMBEDDING_LR = 0.6 ", "EMBEDDING_LR = 1.0 ")]),
    ("unembedding_lr 0.008", [("UNEMBEDDING_LR = 0.004 ", "UNEMBEDDING_LR = 0.008 ")]),
    ("unembedding_lr 0.002", [("UNEMBEDDING_LR = 0.004 ", "UNEMBEDDING_LR = 0.002 ")]),
    ("unembedding_lr 0.03", [("UNEMBEDDING_LR = 0.004 ", "UNEMBEDDING_LR = 0.03 ")]),
    ("scalar_lr 0.25", [("SCALAR_LR = 0.5 ", "SCALAR_LR = 0.25 ")]),
    ("weight_decay 0", [("WEIGHT_DECAY = 0.2 ", "WEIGHT_DECAY = 0.0 ")]),
    ("weight_decay 0.4", [("WEIGHT_DECAY = 0.2 ", "WEIGHT_DECAY = 0.4 ")]),
    ("adam betas 0.9,0.95", [("ADAM_BETAS = (0.8, 0.95)", "ADAM_BETAS = (0.9, 0.95)")]),
    ("adam betas 0.7,0.99", [("ADAM_BETAS = (0.8, 0.95)", "ADAM_BETAS = (0.7, 0.99)")]),
    ("warmdown 0.2", [("WARMDOWN_RATIO = 0.5 ", "WARMDOWN_RATIO = 0.2 ")]),
    ("warmdown 0.3", [("WARMDOWN_RATIO = 0.5 ", "WARMDOWN_RATIO = 0.3 ")]),
    ("warmdown 0.7", [("WARMDOWN_RATIO = 0.5 ", "WARMDOWN_RATIO = 0.7 ")]),
    ("warmdown 0.9", [("WARMDOWN_RATIO = 0.5 ", "WARMDOWN_RATIO = 0.9 ")]),
    ("no warmdown", [("WARMDOWN_RATIO = 0.5 ", "WARMDOWN_RATIO = 0.0 ")]),
    ("warmup 0.05", [("WARMUP_RATIO = 0.0 ", "WARMUP_RATIO = 0.05 ")]),
    ("warmup 0.2", [("WARMUP_RATIO = 0.0 ", "WARMUP_RATIO = 0.2 ")]),
    ("final lr frac 0.1", [("FINAL_LR_FRAC = 0.0", "FINAL_LR_FRAC = 0.1")]),
    ("final lr frac 0.3", [("FINAL_LR_FRAC = 0.0", "FINAL_LR_FRAC = 0.3")]),
    ("depth 3", [("    DEPTH = 4", "    DEPTH = 3")]),
    ("depth 5", [("    DEPTH = 4", "    DEPTH = 5")]),
    ("depth 6", [("    DEPTH = 4", "    DEPTH = 6")]),
    ("depth 2", [("    DEPTH = 4", "    DEPTH = 2")]),
    ("width 192 (aspect 48)", [("    ASPECT_RATIO = 32 ", "    ASPECT_RATIO = 48 ")]),
    ("head dim 32", [("    HEAD_DIM = 64", "    HEAD_DIM = 32")]),
    ("batch 2^12", [("    TOTAL_BATCH_SIZE = 2**11", "    TOTAL_BATCH_SIZE = 2**12"),
                    ("    DEVICE_BATCH_SIZE = 8 ", "    DEVICE_BATCH_SIZE = 16 ")]),
    ("batch 2^10", [("    TOTAL_BATCH_SIZE = 2**11", "    TOTAL_BATCH_SIZE = 2**10"),
                    ("    DEVICE_BATCH_SIZE = 8 ", "    DEVICE_BATCH_SIZE = 4 ")]),
    ("gelu mlp", [(_MLP, "return self.c_proj(F.gelu(self.c_fc(x)))")]),
    ("relu mlp (no square)", [(_MLP, "return self.c_proj(F.relu(self.c_fc(x)))")]),
    ("silu mlp", [(_MLP, "return self.c_proj(F.silu(self.c_fc(x)))")]),
    ("softcap 30", [("softcap = 15.0", "softcap = 30.0")]),
    ("softcap 5", [("softcap = 15.0", "softcap = 5.0")]),
    ("window pattern L", [('WINDOW_PATTERN = "SSSL"', 'WINDOW_PATTERN = "L"')]),
    ("window pattern SL", [('WINDOW_PATTERN = "SSSL"', 'WINDOW_PATTERN = "SL"')]),
    ("muon momentum 0.9 flat", [("return (1 - frac) * 0.85 + frac * 0.95", "return 0.9")]),
    ("matrix_lr 0.06 + warmdown 0.3", [("MATRIX_LR = 0.04 ", "MATRIX_LR = 0.06 "),
                                       ("WARMDOWN_RATIO = 0.5 ", "WARMDOWN_RATIO = 0.3 ")]),
    ("depth 5 + matrix_lr 0.03", [("    DEPTH = 4", "    DEPTH = 5"), ("MATRIX_LR = 0.04 ", "MATRIX_LR = 0.03 ")]),
    ("embedding_lr 1.0 + warmdown 0.7", [("EMBEDDING_LR = 0.6 ", "EMBEDDING_LR = 1.0 "),
                                         ("WARMDOWN_RATIO = 0.5 ", "WARMDOWN_RATIO = 0.7 ")]),
]
# More ideas for --climb (a longer night): smaller moves around the defaults, where keeps and
# discards are close and a curve rule is tempted most.
MORE_EDITS: list[tuple[str, list[tuple[str, str]]]] = [
    ("matrix_lr 0.05", [("MATRIX_LR = 0.04 ", "MATRIX_LR = 0.05 ")]),
    ("matrix_lr 0.03", [("MATRIX_LR = 0.04 ", "MATRIX_LR = 0.03 ")]),
    ("embedding_lr 0.45", [("EMBEDDING_LR = 0.6 ", "EMBEDDING_LR = 0.45 ")]),
    ("unembedding_lr 0.006", [("UNEMBEDDING_LR = 0.004 ", "UNEMBEDDING_LR = 0.006 ")]),
    ("scalar_lr 1.0", [("SCALAR_LR = 0.5 ", "SCALAR_LR = 1.0 ")]),
    ("weight_decay 0.1", [("WEIGHT_DECAY = 0.2 ", "WEIGHT_DECAY = 0.1 ")]),
    ("adam betas 0.85,0.95", [("ADAM_BETAS = (0.8, 0.95)", "ADAM_BETAS = (0.85, 0.95)")]),
    ("adam betas 0.8,0.9", [("ADAM_BETAS = (0.8, 0.95)", "ADAM_BETAS = (0.8, 0.9)")]),
    ("warmdown 0.6", [("WARMDOWN_RATIO = 0.5 ", "WARMDOWN_RATIO = 0.6 ")]),
    ("final lr frac 0.05", [("FINAL_LR_FRAC = 0.0", "FINAL_LR_FRAC = 0.05")]),
    ("softcap 10", [("softcap = 15.0", "softcap = 10.0")]),
    ("softcap 20", [("softcap = 15.0", "softcap = 20.0")]),
    ("width 64 (aspect 16)", [("    ASPECT_RATIO = 32 ", "    ASPECT_RATIO = 16 ")]),
    ("muon momentum 0.95 flat", [("return (1 - frac) * 0.85 + frac * 0.95", "return 0.95")]),
]
# A second round for --climb, run after the first (a night of ~100 runs, as the synthetic nights): other values
# of the same knobs and a few initialisation and optimizer details.
ROUND_TWO: list[tuple[str, list[tuple[str, str]]]] = [
    ("matrix_lr 0.07", [("MATRIX_LR = 0.04 ", "MATRIX_LR = 0.07 ")]),
    ("matrix_lr 0.045", [("MATRIX_LR = 0.04 ", "MATRIX_LR = 0.045 ")]),
    ("embedding_lr 0.8", [("EMBEDDING_LR = 0.6 ", "EMBEDDING_LR = 0.8 ")]),
    ("embedding_lr 0.5", [("EMBEDDING_LR = 0.6 ", "EMBEDDING_LR = 0.5 ")]),
    ("unembedding_lr 0.005", [("UNEMBEDDING_LR = 0.004 ", "UNEMBEDDING_LR = 0.005 ")]),
    ("unembedding_lr 0.0035", [("UNEMBEDDING_LR = 0.004 ", "UNEMBEDDING_LR = 0.0035 ")]),
    ("scalar_lr 0.35", [("SCALAR_LR = 0.5 ", "SCALAR_LR = 0.35 ")]),
    ("scalar_lr 0.7", [("SCALAR_LR = 0.5 ", "SCALAR_LR = 0.7 ")]),
    ("weight_decay 0.3", [("WEIGHT_DECAY = 0.2 ", "WEIGHT_DECAY = 0.3 ")]),
    ("weight_decay 0.05", [("WEIGHT_DECAY = 0.2 ", "WEIGHT_DECAY = 0.05 ")]),
    ("warmdown 0.4", [("WARMDOWN_RATIO = 0.5 ", "WARMDOWN_RATIO = 0.4 ")]),
    ("warmdown 0.8", [("WARMDOWN_RATIO = 0.5 ", "WARMDOWN_RATIO = 0.8 ")]),
    ("final lr frac 0.2", [("FINAL_LR_FRAC = 0.0", "FINAL_LR_FRAC = 0.2")]),
    ("warmup 0.02", [("WARMUP_RATIO = 0.0 ", "WARMUP_RATIO = 0.02 ")]),
    ("warmup 0.1", [("WARMUP_RATIO = 0.0 ", "WARMUP_RATIO = 0.1 ")]),
    ("aspect 12", [("    ASPECT_RATIO = 32 ", "    ASPECT_RATIO = 12 ")]),
    ("aspect 24", [("    ASPECT_RATIO = 32 ", "    ASPECT_RATIO = 24 ")]),
    ("depth 3 (round two)", [("    DEPTH = 4", "    DEPTH = 3")]),
    ("depth 5 (round two)", [("    DEPTH = 4", "    DEPTH = 5")]),
    ("head dim 16", [("    HEAD_DIM = 64", "    HEAD_DIM = 16")]),
    ("head dim 128", [("    HEAD_DIM = 64", "    HEAD_DIM = 128")]),
    ("softcap 12", [("softcap = 15.0", "softcap = 12.0")]),
    ("softcap 8", [("softcap = 15.0", "softcap = 8.0")]),
    ("window pattern SSL", [('WINDOW_PATTERN = "SSSL"', 'WINDOW_PATTERN = "SSL"')]),
    ("muon momentum 0.85 flat", [("return (1 - frac) * 0.85 + frac * 0.95", "return 0.85")]),
    ("muon momentum ramp 100 steps", [("frac = min(step / 300, 1.0)", "frac = min(step / 100, 1.0)")]),
    ("muon ns steps 3", [("beta2=0.95, ns_steps=5", "beta2=0.95, ns_steps=3")]),
    ("muon beta2 0.99", [("beta2=0.95, ns_steps=5", "beta2=0.99, ns_steps=5")]),
    ("x0 lambda init 0.3", [("self.x0_lambdas.fill_(0.1)", "self.x0_lambdas.fill_(0.3)")]),
    ("x0 lambda init 0", [("self.x0_lambdas.fill_(0.1)", "self.x0_lambdas.fill_(0.0)")]),
    ("resid lambda init 0.8", [("self.resid_lambdas.fill_(1.0)", "self.resid_lambdas.fill_(0.8)")]),
    ("lm_head init std 0.01", [("std=0.001)", "std=0.01)")]),
    ("embedding init std 0.5", [("weight, std=1.0)", "weight, std=0.5)")]),
    ("batch 2^10 + matrix_lr 0.03", [("    TOTAL_BATCH_SIZE = 2**11", "    TOTAL_BATCH_SIZE = 2**10"),
                                     ("    DEVICE_BATCH_SIZE = 8 ", "    DEVICE_BATCH_SIZE = 4 "),
                                     ("MATRIX_LR = 0.04 ", "MATRIX_LR = 0.03 ")]),
    ("adam betas 0.75,0.95", [("ADAM_BETAS = (0.8, 0.95)", "ADAM_BETAS = (0.75, 0.95)")]),
    ("x0 scalars beta1 0.9", [("betas=(0.96, 0.95)", "betas=(0.9, 0.95)")]),
    ("warmdown 0.6 + final lr frac 0.1", [("WARMDOWN_RATIO = 0.5 ", "WARMDOWN_RATIO = 0.6 "),
                                          ("FINAL_LR_FRAC = 0.0", "FINAL_LR_FRAC = 0.1")]),
    ("matrix_lr 0.05 + embedding_lr 0.7", [("MATRIX_LR = 0.04 ", "MATRIX_LR = 0.05 "),
                                           ("EMBEDDING_LR = 0.6 ", "EMBEDDING_LR = 0.7 ")]),
    ("depth 6 + aspect 12", [("    DEPTH = 4", "    DEPTH = 6"), ("    ASPECT_RATIO = 32 ", "    ASPECT_RATIO = 12 ")]),
]
BASELINE_SEEDS = (42, 43, 44)


def plan(seed: int, climb: bool = False) -> list[tuple[str, list[tuple[str, str]], int]]:
    """The runs in collection order: the baseline's replicates first, then the edits shuffled (with ``climb``, then
    the second round shuffled: the first rounds keep their order whatever the second holds)."""
    edits = list(EDITS) + (MORE_EDITS if climb else [])
    random.Random(seed).shuffle(edits)
    second = list(ROUND_TWO) if climb else []
    random.Random(seed + 1).shuffle(second)
    baseline = [(f"baseline seed {s}", [], s) for s in BASELINE_SEEDS]
    return baseline + [(name, repl, 42) for name, repl in edits + second]


_CONSTANT = re.compile(r"(\s*[A-Z_]+ = )(\S+)\s*")


def edited_source(source: str, replacements: list[tuple[str, str]], name: str, climb: bool = False) -> str | None:
    """``source`` with the edit applied. With ``climb`` the source is the current champion's, where an earlier
    keep may have moved the constant: then the constant's line gets the edit's value whatever it holds
    (None when the edit no longer applies, e.g. a code change after another one was kept)."""
    for old, new in replacements:
        if source.count(old) == 1:
            source = source.replace(old, new)
            continue
        moved = _CONSTANT.fullmatch(old) if climb else None
        pattern = re.compile("^" + re.escape(moved.group(1)) + r"\S+", re.M) if moved else None
        if pattern is None or len(pattern.findall(source)) != 1:
            if climb:
                return None
            raise SystemExit(f"edit {name!r}: {old!r} occurs {source.count(old)} times in train.py")
        source = pattern.sub(new.rstrip(), source)
    return source


def run_one(work: Path, name: str, source: str, seed: int, env: dict, timeout: float) -> dict:
    (work / "train.py").write_text(source)
    summary = work / "summary.json"
    summary.unlink(missing_ok=True)
    started = time.monotonic()
    with open(work / "run.log", "w") as log:
        proc = subprocess.run([sys.executable, "train.py"], cwd=work, stdout=log, stderr=subprocess.STDOUT,
                              env={**env, "AUTORESEARCH_SEED": str(seed), "AUTORESEARCH_SUMMARY_PATH": str(summary)},
                              timeout=timeout, check=False)
    wall = time.monotonic() - started
    data = json.loads(summary.read_text()) if summary.exists() else {}
    return {"name": name, "seed": seed, "exit_code": proc.returncode, "val_bpb": data.get("val_bpb"),
            "status": data.get("status"), "training_seconds": data.get("training_seconds"),
            "wall_seconds": round(wall, 1), "num_steps": data.get("num_steps"),
            "num_params_M": data.get("num_params_M"), "tokens_per_sec": data.get("tokens_per_sec"),
            "contention": data.get("contention"), "time_budget": data.get("time_budget"),
            "loadavg": os.getloadavg()[0], "loss_curve": data.get("loss_curve") or []}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for runs.jsonl (and the scratch copy)")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for training (default 1)")
    p.add_argument("--seed", type=int, default=27, help="shuffle seed of the edit order")
    p.add_argument("--limit", type=int, help="stop after this many runs in total")
    p.add_argument("--climb", action="store_true",
                   help="a night as an agent runs it: each edit applies to the current champion (a run that beats "
                        "the champion's mean val_bpb is kept and becomes it), with more ideas (MORE_EDITS)")
    p.add_argument("--source", type=Path, default=ROOT, help="folder with the train.py and prepare.py to edit and run "
                                                             "(default: this checkout)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / "work"
    work.mkdir(exist_ok=True)
    shutil.copy(args.source / "prepare.py", work / "prepare.py")
    env = {**os.environ, "AUTORESEARCH_PROFILE": "cpu", "OMP_NUM_THREADS": str(args.threads), "PYTHONUNBUFFERED": "1"}
    subprocess.run([sys.executable, "prepare.py"], cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
    out = args.out / "runs.jsonl"
    lines = out.read_text().splitlines() if out.exists() else []
    rows = {row["name"]: row for row in map(json.loads, filter(str.strip, lines))}
    champion = Champion((args.source / "train.py").read_text())
    for i, (name, replacements, seed) in enumerate(plan(args.seed, args.climb)):
        if args.limit is not None and i >= args.limit:
            break
        source = edited_source(champion.source, replacements, name, args.climb)
        if source is None:
            print(f"{i + 1:3d} {name:34s} skipped: does not apply to champion {champion.name!r}", flush=True)
            continue
        row = rows.get(name)
        if row is None:
            row = {**run_one(work, name, source, seed, env, timeout=900), "champion": champion.name}
            with open(out, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(f"{i + 1:3d} {name:34s} val_bpb {row['val_bpb']} steps {row['num_steps']} "
                  f"wall {row['wall_seconds']} s load {row['loadavg']:.1f}", flush=True)
        if args.climb:
            champion.update(name, source, row.get("val_bpb"), is_replicate=not replacements)
    return 0


class Champion:
    """The keep rule of a --climb night: a run that beats the mean of the champion's runs becomes the champion."""

    def __init__(self, source: str) -> None:
        self.name, self.source, self.values = "baseline", source, []

    def update(self, name: str, source: str, val_bpb: float | None, is_replicate: bool) -> None:
        if val_bpb is None:
            return
        if is_replicate:
            self.values.append(val_bpb)
        elif not self.values or val_bpb < statistics.mean(self.values):
            self.name, self.source, self.values = name, source, [val_bpb]


if __name__ == "__main__":
    sys.exit(main())
