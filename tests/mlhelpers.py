"""Helpers for driving MemoryLab the way an agent does: a scratch git repo, fake runs, the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from memorylab_core.cli import main

PROJECT = Path(__file__).resolve().parent.parent
MEMORYLAB = PROJECT / "memorylab.py"
# A stand-in for train.py (tests/fake_train.py), run with this interpreter: `memorylab run -- PY FAKE ...`
FAKE = str(PROJECT / "tests" / "fake_train.py")
PY = sys.executable
# The shared fixtures sit beside the clone (../shared); a user's clone has none and those tests skip.
REAL_LEDGER_DIR = PROJECT.parent / "shared" / "fixtures" / "real-ledgers"
REAL_LEDGERS = sorted(p for p in REAL_LEDGER_DIR.glob("*.tsv") if p.name != "labels.tsv")

TRAIN_TEMPLATE = '''"""A toy train.py with upstream-style constants."""

DEPTH = {depth}
MATRIX_LR = {matrix_lr}
TOTAL_BATCH_SIZE = {batch}
WARMDOWN_RATIO = {warmdown}
ACTIVATION = "{activation}"


def main():
    return DEPTH * MATRIX_LR
'''

DEFAULTS = {"depth": 8, "matrix_lr": 0.04, "batch": "2**19", "warmdown": 0.5, "activation": "relu2"}

SUMMARY_BLOCK = """---
val_bpb:          {val:.6f}
training_seconds: 300.1
total_seconds:    325.9
peak_vram_mb:     {mem:.1f}
mfu_percent:      39.80
total_tokens_M:   499.6
num_steps:        953
num_params_M:     50.3
depth:            8
"""


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


def ml(*args: str, cwd: Path | None = None) -> Result:
    """Run the CLI in-process (fast) from ``cwd``."""
    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    try:
        if cwd:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse --help / usage errors
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(old)
    return Result(code, out.getvalue(), err.getvalue())


def ml_proc(*args: str, cwd: Path, env: dict | None = None, timeout: float = 60) -> Result:
    """Run the CLI as a separate process, as an agent's shell would."""
    proc = subprocess.run([sys.executable, str(MEMORYLAB), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    return Result(proc.returncode, proc.stdout, proc.stderr)


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def make_repo(path: Path) -> Path:
    """A git repo on branch ``autoresearch/test`` with a baseline train.py committed."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "autoresearch/test")
    git(path, "config", "user.email", "agent@example.com")
    git(path, "config", "user.name", "Agent")
    git(path, "config", "commit.gpgsign", "false")
    (path / ".gitignore").write_text("results/\nrun.log\nsummary.json\nresults.tsv\n")
    write_train(path)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "baseline")
    return path


def write_train(repo: Path, **overrides) -> None:
    (repo / "train.py").write_text(TRAIN_TEMPLATE.format(**{**DEFAULTS, **overrides}))


def commit_change(repo: Path, message: str, **overrides) -> str:
    """Edit train.py's constants and commit, as the agent does before training."""
    write_train(repo, **overrides)
    git(repo, "commit", "-q", "-am", message)
    return git(repo, "rev-parse", "HEAD")


CPU_SETUP = {"profile": "cpu", "device": "cpu", "device_name": "cpu", "device_class": "cpu", "data_id": "3f2a1c9e77",
             "time_budget": 60.0, "max_seq_len": 256, "eval_tokens": 262144, "tokens_per_sec": 6500.0,
             "num_steps": 177, "num_params_M": 3.4,
             "contention": {"cpu_threads": 2, "process_cpu_percent": 190.0, "cpu_share": 0.95,
                            "loadavg_start": 1.0, "loadavg_end": 2.0, "cpu_count": 2}}
GPU_SETUP = {"profile": "gpu", "device": "cuda", "device_name": "NVIDIA H100 80GB HBM3", "device_class": "H100 SXM",
             "data_id": "9d8e7f6a55", "time_budget": 300.0, "max_seq_len": 2048, "eval_tokens": 20971520,
             "tokens_per_sec": 1.6e6, "num_steps": 953, "num_params_M": 50.3,
             "contention": {"cpu_threads": 8, "cpu_share": 0.2, "gpu_other_processes": 0, "gpu_throttle_reasons": []}}


def fake_run(repo: Path, val: float | None, mem_mb: float = 45060.2, crash: str | None = None,
             sidecar: bool = True, token: str | None = None, setup: dict | None = None) -> tuple[Path, Path]:
    """Write run.log (+ summary.json) as train.py would. ``crash`` = a traceback's last line; ``setup``:
    sidecar fields train.py adds (comparability and contention, e.g. :data:`CPU_SETUP`)."""
    token = token or uuid.uuid4().hex
    log = repo / "run.log"
    summary = repo / "summary.json"
    lines = [f"run_token: {token}", "seed: 42", "step 00001 | loss 9.01"]
    if crash:
        lines += ["Traceback (most recent call last):", '  File "train.py", line 10, in <module>',
                  "    main()", crash]
        log.write_text("\n".join(lines) + "\n")
        data = {"status": "crash", "error": crash, "run_token": token, "val_bpb": None}
    else:
        log.write_text("\n".join(lines) + "\n" + SUMMARY_BLOCK.format(val=val, mem=mem_mb))
        data = {"status": "ok", "val_bpb": val, "peak_vram_mb": mem_mb, "run_token": token, "seed": 42,
                "training_seconds": 300.1, "num_steps": 953, "device": "cpu", "profile": "cpu",
                "loss_curve": [{"step": 1, "progress": 0.0, "loss": 9.0, "tokens_per_sec": 1000.0}]}
    data.update(setup or {})
    if sidecar:
        summary.write_text(json.dumps(data))
    elif summary.exists():
        summary.unlink()
    return log, summary


def log_run(repo: Path, description: str, status: str, val: float | None = None, *extra: str,
            crash: str | None = None, sidecar: bool = True, setup: dict | None = None) -> Result:
    log, summary = fake_run(repo, val, crash=crash, sidecar=sidecar, setup=setup)
    args = ["log", "--description", description, "--status", status, "--log", str(log), "--json", *extra]
    if sidecar:
        args += ["--summary", str(summary)]
    return ml(*args, cwd=repo)


def ledger(repo: Path) -> Path:
    return repo / "results" / "memorylab" / "experiments.jsonl"


def records(repo: Path) -> list[dict]:
    return [json.loads(line) for line in ledger(repo).read_text().splitlines() if line.strip()]
