"""Command-line entry point: argparse wiring, error handling and exit codes.

Each subcommand lives in ``memorylab_core/commands/<name>.py`` and exposes ``register(subparsers)``;
this module only assembles them. Exit codes: 0 success, 1 a clear one-line error (nothing written),
2 ``check --fail-on-similar`` blocked by the mode policy (and the codes documented per command).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .commands import COMMANDS
from .commands.common import Context
from .store import MemoryLabError


class Parser(argparse.ArgumentParser):
    """argparse with the contract's exit code: a usage error is a one-line message and exit 1."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(1, f"memorylab: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> Parser:
    parser = Parser(
        prog="memorylab",
        description="MemoryLab: the research ledger, novelty guard and morning report for autoresearch.",
        epilog="Store: $MEMORYLAB_HOME, else <repo>/results/memorylab. Docs: docs/memorylab_api.md",
    )
    parser.add_argument("--version", action="version", version=f"memorylab {__version__}")
    parser.add_argument("--home", metavar="DIR", help="store root (overrides $MEMORYLAB_HOME)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
