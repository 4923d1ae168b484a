"""One training run, end to end: launch it, judge how it ended, and hand it to the record builder.

``memorylab run`` and ``memorylab replicate`` share this. The run happens in a pending folder inside
the store (``<store>/pending/<stamp>-<token>/``): the run id is only allocated, under the ledger lock,
when the finished run is logged, and :func:`memorylab_core.runs.commit_run` then copies run.log and
summary.json into ``runs/<run_id>/``. On an interrupt the pending folder is deleted: nothing is
recorded. A pending folder left behind (MemoryLab itself was SIGKILLed) holds no record and can be
deleted.

The child gets ``AUTORESEARCH_SUMMARY_PATH`` (the pending folder's summary.json, so a sidecar from an
earlier run can never be picked up), a fresh ``AUTORESEARCH_RUN_TOKEN`` (log and sidecar pair up),
``AUTORESEARCH_SEED`` when a seed is given, and ``PYTHONUNBUFFERED=1`` so its progress streams.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from ..evidence import logparse
from ..ledger.model import finite_float
from ..ledger.store import Store, warn
from .launcher import LaunchResult, launch
from .watch import LineSplitter, Watcher

PENDING_DIR = "pending"
RESULT_PREFIX = "MEMORYLAB_RESULT "
_PROGRESS_CHARS = 110


@dataclass
class TrainSpec:
    """How to run training once."""

    command: list[str]
    cwd: Path
    timeout_s: float
    grace_s: float
    seed: int | None = None
    progress: bool = True
    timeout_clock: str = "wall"  # "cpu": the limit counts CPU seconds per CPU (launcher.Deadline)


@dataclass
class Outcome:
    """How one training run ended, judged from the exit status, the sidecar and the log."""

    folder: Path
    token: str
    spec: TrainSpec
    result: LaunchResult
    crashed: bool
    failure: str | None  # MemoryLab's own account of a crash the log may not show (timeout, signal ...)
    val_bpb: float | None
    summary_ok: bool  # summary.json exists and is a readable JSON object
    watcher: Watcher | None = None  # the early-abort watcher that followed the run, if any

    @property
    def stopped(self) -> bool:
        """Stopped early by the abort rule: a discard without a val_bpb, not a crash."""
        return self.result.stopped

    @property
    def log_path(self) -> Path:
        return self.folder / "run.log"

    @property
    def summary_path(self) -> Path | None:
        return self.folder / "summary.json" if self.summary_ok else None

    def launch_info(self) -> dict:
        """The ``launch`` field of the record: what ran and how it ended."""
        return {
            "command": list(self.spec.command),
            "exit_code": self.result.returncode,
            "signal": self.result.signal_name,
            "timed_out": self.result.timed_out,
            "timeout_s": self.spec.timeout_s,
            "timeout_clock": self.spec.timeout_clock,
            "duration_s": round(self.result.duration_s, 1),
            "failure": self.failure,
            "stopped_early": self.result.stopped,
        }


def pending_folder(store: Store) -> Path:
    """A fresh folder for a run in progress."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = store.root / PENDING_DIR / f"{stamp}-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True, exist_ok=False)
    return folder


def child_env(folder: Path, token: str, seed: int | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"AUTORESEARCH_SUMMARY_PATH": str(folder / "summary.json"), "AUTORESEARCH_RUN_TOKEN": token,
                "PYTHONUNBUFFERED": "1"})
    if seed is not None:
        env["AUTORESEARCH_SEED"] = str(seed)
    return env


class Progress:
    """A short progress line on the terminal: the latest ``step ...`` line of the log, rate-limited.

    On a terminal it rewrites one line every second; otherwise (an agent capturing output) it prints
    a line every ``quiet_s`` seconds, so a 5-minute run costs the agent's context a dozen lines.
    """

    def __init__(self, stream: TextIO | None = None, quiet_s: float = 30.0):
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = 1.0 if self.tty else quiet_s
        self.started = time.monotonic()
        self.last_print = self.started
        self.latest = ""
        self.splitter = LineSplitter()

    def feed(self, data: bytes) -> None:
        pieces = self.splitter.feed(data)
        for piece in reversed(pieces):
            if piece.strip().startswith("step"):
                self.latest = piece.strip()
                break
        now = time.monotonic()
        if self.latest and now - self.last_print >= self.every:
            self.last_print = now
            self._show(now)

    def _show(self, now: float) -> None:
        elapsed = int(now - self.started)
        line = f"[memorylab {elapsed // 60:02d}:{elapsed % 60:02d}] {self.latest}"[:_PROGRESS_CHARS]
        if self.tty:
            self.stream.write("\r" + line.ljust(_PROGRESS_CHARS))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.latest:
            self.stream.write("\n")
            self.stream.flush()


WatcherFactory = Callable[[str], "Watcher | None"]  # run token -> the run's early-abort watcher (or none)


def train(spec: TrainSpec, folder: Path, watch: WatcherFactory | None = None) -> Outcome:
    """Run training once in ``folder`` and judge the outcome. Raises launcher.Interrupted / OSError.

    ``watch``: builds the run's early-abort :class:`Watcher` from its token; the watcher reads the
    streamed output and may stop the run (docs/early_abort.md).
    """
    token = uuid.uuid4().hex
    progress = Progress() if spec.progress else None
    watcher = watch(token) if watch is not None else None
    sinks = [s.feed for s in (progress, watcher) if s is not None]
    try:
        result = launch(spec.command, env=child_env(folder, token, spec.seed), cwd=spec.cwd,
                        log_path=folder / "run.log", timeout_s=spec.timeout_s, grace_s=spec.grace_s,
                        on_output=(lambda data: [feed(data) for feed in sinks]) if sinks else None,
                        should_stop=(lambda: watcher.stop_requested) if watcher is not None else None,
                        clock=spec.timeout_clock)
    finally:
        if progress:
            progress.close()
    outcome = judge(spec, folder, token, result)
    outcome.watcher = watcher
    return outcome


def judge(spec: TrainSpec, folder: Path, token: str, result: LaunchResult) -> Outcome:
    """Crash or success, from the exit status, the sidecar and the log's summary block."""
    sidecar, summary_ok = _read_sidecar(folder / "summary.json")
    if sidecar is not None and sidecar.get("run_token") not in (None, token):  # not written for this run
        os.replace(folder / "summary.json", folder / "summary.foreign.json")  # kept, never read as this run's
        warn(f"the sidecar's run_token {str(sidecar.get('run_token'))[:12]}… is not the one this run was given "
             f"({token[:12]}…): it is set aside as summary.foreign.json and the log's summary block is read")
        sidecar, summary_ok = None, False
    log_text = logparse.read_text_lenient(folder / "run.log") if (folder / "run.log").exists() else ""
    val = _reported_val(sidecar, log_text)
    failure = _failure(spec, result, sidecar, log_text, val)
    crashed = not result.stopped and (failure is not None or result.returncode != 0
                                      or (sidecar or {}).get("status") == "crash")
    if result.stopped:
        with open(folder / "run.log", "a", encoding="utf-8") as log:
            log.write("\n[memorylab] stopped early: its loss curve cannot catch the champion's reference\n")
    if failure:
        with open(folder / "run.log", "a", encoding="utf-8") as log:
            log.write(f"\n[memorylab] {failure}\n")
    return Outcome(folder, token, spec, result, crashed, failure, None if crashed else val, summary_ok)


def _read_sidecar(path: Path) -> tuple[dict | None, bool]:
    if not path.exists():
        return None, False
    try:
        return logparse.load_sidecar(path), True
    except (logparse.LogInputError, OSError):
        return None, False


def _reported_val(sidecar: dict | None, log_text: str) -> float | None:
    value = finite_float((sidecar or {}).get("val_bpb"))
    if value is None and log_text:
        value = finite_float(logparse.parse_summary_block(log_text).get("val_bpb"))
    return value


def _failure(spec: TrainSpec, result: LaunchResult, sidecar: dict | None, log_text: str,
             val: float | None) -> str | None:
    """A crash explanation when the log itself will not show one."""
    if result.stopped:
        return None  # the early abort killed it on purpose: a discard, judged by the watcher
    if result.timed_out:
        if spec.timeout_clock == "cpu":
            return (f"TimeoutError: training exceeded its limit of {spec.timeout_s:g} CPU seconds per CPU, or "
                    f"stopped using the CPU, after {result.duration_s:.0f} s; memorylab killed its process group")
        return (f"TimeoutError: training exceeded the wall-clock limit of {spec.timeout_s:g} s; "
                "memorylab killed its process group")
    if result.returncode < 0:
        return f"RuntimeError: training was killed by {result.signal_name} (exit {result.returncode})"
    if result.returncode != 0:
        if "Traceback (most recent call last)" in log_text or (sidecar or {}).get("error"):
            return None  # train.py's own traceback / sidecar error says what happened
        return f"RuntimeError: training exited with code {result.returncode} without a traceback"
    if (sidecar or {}).get("status") == "crash":
        return None
    if val is None:
        return "RuntimeError: training exited 0 without reporting a finite val_bpb"
    return None


def discard_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    parent = folder.parent
    if parent.name == PENDING_DIR:
        with contextlib.suppress(OSError):
            parent.rmdir()  # only when empty: other agents' runs may be pending there


def result_line(data: dict) -> str:
    """The machine-readable last line for agents: ``MEMORYLAB_RESULT {json}``."""
    return RESULT_PREFIX + json.dumps(data, separators=(",", ":"), ensure_ascii=True, default=str)


def apply_failure(record: dict, failure: str | None) -> None:
    """Let MemoryLab's account (timeout, signal) be the crash summary; the log tail stays as extracted."""
    if not failure or record.get("status") != "crash":
        return
    error = record.get("error") if isinstance(record.get("error"), dict) else {}
    error["summary"] = failure
    error["kind"] = logparse.classify_error(failure) or error.get("kind")
    record["error"] = error
