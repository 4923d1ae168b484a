#!/usr/bin/env python3
"""MemoryLab's overhead per ``run`` iteration: ``memorylab run -- python tests/fake_train.py`` (novelty check,
launch, judge, decide, log, archive) against the bare fake trainer, alternating, on a scratch repo and store.

Usage: ``python benchmarks/run_overhead.py N CODE_DIR [CODE_DIR ...]``: N iterations per checkout, each
iteration a new commit (an idea), the checkouts alternating so that a shared machine's load hits them
alike. The trainer takes ~0.1 s, so ``run``'s wall time minus the bare trainer's is MemoryLab's own cost.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE / "tests"))
from mlhelpers import CPU_SETUP, FAKE, PY, commit_change, make_repo  # noqa: E402


class Checkout:
    """One checkout's ``memorylab run`` timed in its own scratch repo and store."""

    def __init__(self, code: Path, root: Path):
        self.code, self.repo = code, make_repo(root / "repo")
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # each checkout's own package
        self.calls = root / "calls.json"
        self.calls.write_text(json.dumps([{**CPU_SETUP, "val_bpb": 1.0 + 0.001 * (i % 7)} for i in range(1000)]))
        checks = (code / "memorylab_core" / "commands" / "check.py").read_text()
        self.flags = ["--allow-blocked"] if "def verdict(" in checks else []  # run's novelty check (issue 24)
        self.overheads: list[float] = []
        self.run("-d", "baseline")

    def run(self, *args: str) -> float:
        """Seconds of one ``memorylab run`` of the fake trainer."""
        start = time.perf_counter()
        command = [PY, str(self.code / "memorylab.py"), "run", "--quiet", *args,
                   "--", PY, FAKE, "--extra-by-call", str(self.calls)]
        proc = subprocess.run(command, cwd=self.repo, capture_output=True, text=True, env=self.env)
        if proc.returncode != 0:
            raise SystemExit(f"{self.code} run {args}: {proc.stdout[-1500:]}{proc.stderr[-1500:]}")
        return time.perf_counter() - start

    def bare(self) -> float:
        """Seconds of the fake trainer alone (with a sidecar path, as ``run`` gives it)."""
        start = time.perf_counter()
        subprocess.run([PY, FAKE, "--val", "1.0"], cwd=self.repo, capture_output=True,
                       env={**self.env, "AUTORESEARCH_SUMMARY_PATH": str(self.repo / "s.json")})
        return time.perf_counter() - start

    def iteration(self, i: int) -> None:
        """Commit an idea, time the bare trainer and ``run``, then reset (the idea is discarded)."""
        commit_change(self.repo, f"DEPTH 8 -> {9 + i}", depth=9 + i)
        bare = self.bare()
        self.overheads.append(self.run(*self.flags) - bare)
        subprocess.run(["git", "-C", str(self.repo), "reset", "-q", "--hard", "HEAD~1"], check=True)


def main(argv: list[str]) -> int:
    n, codes = int(argv[0]), [Path(c).resolve() for c in argv[1:]]
    root = Path(tempfile.mkdtemp(prefix="memorylab-overhead-"))
    checkouts = [Checkout(code, root / str(k)) for k, code in enumerate(codes)]
    for i in range(n):
        for checkout in checkouts:
            checkout.iteration(i)
    for checkout in checkouts:
        over = checkout.overheads
        print(f"{checkout.code}: overhead per run iteration median {statistics.median(over):.3f} s "
              f"(min {min(over):.3f}, max {max(over):.3f}; n = {len(over)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
