"""A writer process for the PostgreSQL tests: ``log`` N runs in a loop, printing each recorded id.

Usage: ``python pg_writer.py REPO N TAG`` with ``MEMORYLAB_HOME`` (a postgresql:// URL) and
``MEMORYLAB_INDEX_DIR`` (the simulated host's index) set. Prints ``OK <run_id>`` after each ``log``
that exited 0 and ``ERR <line>`` after one that failed, flushed, so a test can kill it at any moment
and know what was confirmed.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memorylab_core.cli import main  # noqa: E402

SUMMARY = "---\nval_bpb:          {val:.6f}\ntraining_seconds: 300.1\npeak_vram_mb:     1000.0\n"


def one_log(repo: Path, tag: str, i: int) -> tuple[int, str, str]:
    token = uuid.uuid4().hex
    log = repo / f"run-{tag}-{i}.log"
    log.write_text(f"run_token: {token}\n" + SUMMARY.format(val=1.0 - (hash(token) % 1000) / 1e5))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["log", "-d", f"writer {tag} idea {i} {token[:6]}", "--status", "discard", "--log", str(log),
                     "--skip-archive", "--json"])
    log.unlink()
    return code, out.getvalue(), err.getvalue()


def run(repo: Path, count: int, tag: str) -> None:
    import os

    os.chdir(repo)
    for i in range(count):
        code, out, err = one_log(repo, tag, i)
        if code == 0:
            print("OK", json.loads(out)["run_id"], flush=True)
        else:
            print("ERR", (err.strip().splitlines() or ["?"])[-1], flush=True)


if __name__ == "__main__":
    run(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
