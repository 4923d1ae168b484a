"""Command-line entry point: argparse wiring, error handling and exit codes.

Each subcommand lives in ``memorylab_core/commands/<name>.py`` and exposes ``register(subparsers)``;
this module only assembles them. Exit codes: 0 success, 1 a clear one-line error (nothing written),
2 ``check --fail-on-similar`` blocked by the mode policy (and the codes documented per command).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence

from . import __version__
from .commands import COMMANDS, load
from .commands.common import Context, location, silence_stdout, terminal_output
from .ledger.store import is_sqlite_error, on_one_line, storage_reason, warn


class Parser(argparse.ArgumentParser):
    """argparse with the contract's exit code: a usage error is a one-line message and exit 1."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(1, f"memorylab: error: {message} (see '{self.prog} --help')\n")


class _Unparsed(Exception):
    """A one-command parser could not parse the arguments; the full parser will say why."""


class _TrialParser(Parser):
    """A :class:`Parser` that reports a usage error by raising :class:`_Unparsed` instead of exiting."""

    def error(self, message: str):  # type: ignore[override]
        raise _Unparsed(message)


def build_parser(commands: Iterable[str] = COMMANDS, parser_class: type[Parser] = Parser) -> Parser:
    """The parser with the given commands (all by default, in ``--help`` order)."""
    parser = parser_class(
        prog="memorylab",
        description="MemoryLab: the research ledger, novelty guard and morning report for autoresearch.",
        epilog="Store: $MEMORYLAB_HOME, else <repo>/results/memorylab. Docs: docs/memorylab_api.md",
    )
    parser.add_argument("--version", action="version", version=f"memorylab {__version__}")
    parser.add_argument("--home", metavar="DIR|URL", type=location,
                        help="store root, or a postgresql:// URL for a journal shared by several hosts "
                             "(overrides $MEMORYLAB_HOME)")
    parser.add_argument("--index-dir", metavar="DIR", type=location,
                        help="this host's local directory for a PostgreSQL store's index, reports and run "
                             "archive (overrides $MEMORYLAB_INDEX_DIR; default under $XDG_CACHE_HOME)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=parser_class)
    sub.required = True
    for name in commands:
        load(name).register(sub)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """``argv`` parsed as the full parser would, importing only the named command's module if possible.

    Loading every command module (and all they import) to run one command was a large part of each
    command's start-up. A parser with just the named command differs from the full one only in the
    commands it offers, so whenever it accepts ``argv`` its result is the full parser's. Anything
    else (``--help``, ``--version``, no or an unknown command, any usage error) is left to the full
    parser, which prints its usual output.
    """
    name = _named_command(argv)
    if name is not None:
        try:
            return build_parser([name], _TrialParser).parse_args(argv)
        except _Unparsed:
            pass
    return build_parser().parse_args(argv)


def _named_command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names in its first position (after any ``--home DIR``), or None."""
    args = list(argv)
    while args and (args[0] in ("--home", "--index-dir") or args[0].startswith(("--home=", "--index-dir="))):
        del args[: 2 if args[0] in ("--home", "--index-dir") else 1]
    return args[0] if args and args[0] in COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code.

    Every failure is one line on stderr: a :class:`MemoryLabError`, an OS error (disk full, read-only
    store) or an SQLite error exits 1, which promises that nothing was appended; should one come after
    this process appended records, it is a warning naming them instead (exit 0). A damaged index is
    discarded, and a command that may simply run again does so once on an index folded afresh.
    Ctrl-C exits 130 with one line, a closed stdout (``| head``) exits quietly. Terminal output
    escapes control characters.
    """
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        ctx = Context(args)
        with terminal_output(stdout=not (ctx.json or getattr(args, "raw_stdout", False))):
            return _run(ctx)
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `memorylab list | head -1`
        silence_stdout()
        return 0


INTERRUPTED = "memorylab: interrupted"


def _run(ctx: Context) -> int:
    try:
        code = _handle(ctx)
        for note in ctx.store.notes:
            warn(note)
        return code
    except KeyboardInterrupt:
        if not ctx.store.appended:
            raise
        print(f"{INTERRUPTED} (after recording {_ids(ctx.store.appended)}: kept)", file=sys.stderr)
        return 130
    except Exception as exc:
        message = storage_failure(ctx, exc)
        if ctx.store.appended:  # the files derived after an append may not have been written
            warn(f"{message} (after recording {_ids(ctx.store.appended)}: kept; results.tsv, "
                 "champion_challenger.json and the report may lag until the next write: 'memorylab export -f tsv "
                 "-o results.tsv' rebuilds results.tsv now)")
            return 0
        print(f"memorylab: error: {on_one_line(message)}", file=sys.stderr)
        return 1


def _handle(ctx: Context) -> int:
    """Run the command; when its index failed (not merely locked) and the command may simply run again,
    discard the index and run it once more, on an index folded afresh from the journal."""
    ctx.require_store()
    try:
        return int(ctx.args.handler(ctx) or 0)
    except Exception as exc:
        if not (_index_damage(exc) and ctx.may_repeat()):
            raise
        warn(f"the index failed ({exc}); running the command again on an index folded afresh")
        ctx.discard_index()
    return int(ctx.args.handler(ctx) or 0)


def storage_failure(ctx: Context, exc: Exception) -> str:
    """The one line a storage failure becomes (:func:`storage_reason`; anything else is re-raised). A
    damaged index is discarded here, so the next command rebuilds it from the journal."""
    reason = storage_reason(exc)
    if reason is None or isinstance(exc, BrokenPipeError):
        raise exc
    if not is_sqlite_error(exc):
        return reason
    if _index_damage(exc):
        ctx.discard_index()
        return f"{reason}; it is discarded and the next command rebuilds it from the journal"
    return f"the index is busy ({exc}); try again"


def _index_damage(exc: BaseException) -> bool:
    """Whether ``exc`` is the index failing for any reason but a lock held by another command."""
    from .index.db import is_busy

    return is_sqlite_error(exc) and not is_busy(exc)


def _ids(ids: list[str], shown: int = 5) -> str:
    return ", ".join(ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


if __name__ == "__main__":
    sys.exit(main())
