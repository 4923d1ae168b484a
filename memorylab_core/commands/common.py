"""What every command shares: the store/history context and output helpers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..ledger.store import Store, resolve_root, workspace_root

if TYPE_CHECKING:
    from ..ledger.history import History


class Context:
    """One command invocation: parsed args, the store, and the history folded on first use."""

    def __init__(self, args: argparse.Namespace, cwd: Path | None = None):
        self.args = args
        self.cwd = Path(cwd or Path.cwd()).resolve()
        self.store = Store(resolve_root(getattr(args, "home", None), self.cwd), workspace_root(self.cwd))
        self._history: History | None = None

    @property
    def history(self) -> History:
        if self._history is None:
            from ..ledger.history import History  # commands that never read history skip its imports

            self._history = History.load(self.store)
        return self._history

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def emit(self, text: str, data: object) -> None:
        """Print ``data`` as JSON under ``--json``, else the human ``text``."""
        if self.json:
            print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        elif text:
            print(text)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def unit_float(text: str) -> float:
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1]: {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value

