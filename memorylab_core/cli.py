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
from .commands.common import Context
from .ledger.store import MemoryLabError


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
    parser.add_argument("--home", metavar="DIR", help="store root (overrides $MEMORYLAB_HOME)")
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
    while args and (args[0] == "--home" or args[0].startswith("--home=")):
        del args[: 2 if args[0] == "--home" else 1]
    return args[0] if args and args[0] in COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    ctx = Context(args)
    try:
        return int(args.handler(ctx) or 0)
    except MemoryLabError as exc:
        print(f"memorylab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("memorylab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `memorylab report | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
