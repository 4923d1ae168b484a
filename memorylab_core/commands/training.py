"""What ``run`` and ``replicate`` share: training flags, the default command and timeout, one logged run."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..ingest import timebudget
from ..ingest.experiment import Outcome, TrainSpec, WatcherFactory, discard_folder, pending_folder, train
from ..ingest.launcher import KILL_GRACE_S, Interrupted, deferred_signals
from ..ingest.runs import RecordHook, RunRequest, archived, commit_run, gather
from ..ledger.store import MemoryLabError, warn
from .common import Context, seconds

EXIT_CRASHED = 3  # the run was recorded, as a crash (the training command failed or timed out)
EXIT_BLOCKED = 2  # refused before training: the novelty guard's mode policy blocks the idea (as check's exit 2)


def add_training_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=seconds, metavar="S",
                        help="wall-clock limit per run in seconds (default: 2 × the profile's time budget + 120)")
    parser.add_argument("--grace", type=seconds, default=KILL_GRACE_S, metavar="S",
                        help=f"seconds between SIGTERM and SIGKILL when killing a run (default {KILL_GRACE_S:g})")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.epilog = ("Everything after '--' is the training command, passed on untouched "
                     "(default: this Python running train.py).")
    _take_command_after_dashes(parser)


def _take_command_after_dashes(parser: argparse.ArgumentParser) -> None:
    """Everything after the first ``--`` becomes ``train_command``, unseen by argparse.

    argparse would otherwise read the command's own flags (``--val``) as ours, or swallow our flags
    after a positional (``replicate RUN_ID --n 3 -- CMD``) into a REMAINDER argument.
    """
    base = type(parser)

    class CommandParser(base):  # type: ignore[misc, valid-type]
        def parse_known_args(self, args=None, namespace=None):  # argparse calls this for the subcommand
            args = list(sys.argv[1:] if args is None else args)
            command: list[str] = []
            if "--" in args:
                cut = args.index("--")
                args, command = args[:cut], args[cut + 1:]
            parsed, extras = super().parse_known_args(args, namespace)
            parsed.train_command = command
            return parsed, extras

    parser.__class__ = CommandParser


def training_command(raw: Sequence[str] | None) -> list[str]:
    return list(raw or []) or [sys.executable, "train.py"]


def training_spec(ctx: Context) -> tuple[TrainSpec, timebudget.Budget]:
    """The command, timeout and options of this invocation (the budget says where the timeout came from)."""
    args = ctx.args
    where = ctx.cwd if (ctx.cwd / "prepare.py").exists() else ctx.store.workspace
    command = training_command(args.train_command)
    python = command[0] if Path(command[0]).name.startswith("python") else None
    budget = timebudget.resolve(os.environ, where, python)
    spec = TrainSpec(command=command, cwd=ctx.cwd, timeout_s=args.timeout or budget.timeout_s, grace_s=args.grace,
                     progress=not args.quiet, timeout_clock="wall" if args.timeout else budget.clock)
    return spec, budget


def announce(spec: TrainSpec, budget: timebudget.Budget, explicit_timeout: bool) -> None:
    """One line on stderr before training: what runs and under which limit."""
    limit = "--timeout" if explicit_timeout else f"2 × {budget.budget_s:g} s {budget.profile} budget + 120 s"
    if spec.timeout_clock == "cpu":
        limit += "; CPU seconds per CPU, so a run slowed by other load gets its longer wall time"
    print(f"memorylab: training: {' '.join(spec.command)} (limit {spec.timeout_s:g} s: {limit})", file=sys.stderr)


def run_training(ctx: Context, spec: TrainSpec, seed: int | None = None, dry_run: bool = False,
                 watch: WatcherFactory | None = None) -> Outcome:
    """Train once in a pending folder of the store (a temp folder outside it for a dry run); ``watch`` builds
    the early-abort watcher that follows it (``run`` only).

    Interrupts and start failures leave nothing behind.
    """
    if dry_run:
        folder = Path(tempfile.mkdtemp(prefix="memorylab-dry-run-"))
    else:
        ctx.store.ensure()
        folder = pending_folder(ctx.store)
    try:
        return train(replace(spec, seed=seed), folder, watch)
    except Interrupted:
        discard_folder(folder)
        raise
    except OSError as exc:
        discard_folder(folder)
        raise MemoryLabError(f"cannot start {spec.command[0]!r}: {exc.strerror or exc}") from exc


def log_outcome(ctx: Context, outcome: Outcome, request: RunRequest, hook: RecordHook) -> tuple[dict, object]:
    """Record a finished run (signals wait until the write is done); the pending folder goes away after."""
    request.log_path = outcome.log_path
    request.summary_path = outcome.summary_path
    request.extra = {**request.extra, "launch": outcome.launch_info()}
    if outcome.spec.seed is not None:
        request.extra["seed_env"] = outcome.spec.seed
    with deferred_signals():
        try:
            inputs = gather(request)
            record, run = commit_run(ctx.store, ctx.history, inputs, hook=hook)
        except MemoryLabError as exc:
            raise MemoryLabError(f"{exc} (the run's files are kept in {outcome.folder})") from exc
        if archived(ctx.store, record):
            discard_folder(outcome.folder)
        else:
            warn(f"run {record['run_id']} is recorded; its archive is incomplete, so its files are kept in "
                 f"{outcome.folder}")
    return record, run


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=10,
                             env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def head_subject(cwd: Path) -> str | None:
    """The subject line of HEAD's commit message (the default description of a run)."""
    return _git(cwd, "log", "-1", "--format=%s", "HEAD", "--")


def head_commit(cwd: Path, rev: str) -> str | None:
    """The full sha a git revision (``HEAD``, a branch, a short sha) names, or None."""
    if not rev or rev.startswith("-"):
        return None
    return _git(cwd, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")


def interrupted(exc: Interrupted, recorded: str = "nothing was recorded") -> int:
    print(f"memorylab: interrupted by {exc}: the training process group was killed; {recorded}", file=sys.stderr)
    return exc.exit_code
