"""What every command shares: the store/history context and output helpers."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..ledger.model import show_controls
from ..ledger.store import MemoryLabError, Store, open_store

if TYPE_CHECKING:
    from ..index.journal_index import JournalIndex


CREATES_STORE = frozenset({"init", "log", "run", "import"})  # commands that make a store where none is
REPEATS_INPUTS = frozenset({"log", "run", "replicate", "import", "migrate"})  # read or run things once only


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # what a file name's undecodable bytes become

class Context:
    """One command invocation: parsed args, the store, and the history folded on first use."""

    def __init__(self, args: argparse.Namespace, cwd: Path | None = None):
        self.args = args
        self.cwd = Path(cwd or Path.cwd()).resolve()
        self.store: Store = open_store(getattr(args, "home", None), self.cwd, getattr(args, "index_dir", None))
        self._history: JournalIndex | None = None

    @property
    def history(self) -> JournalIndex:
        if self._history is None:
            from ..index.journal_index import JournalIndex  # commands that never read history skip its imports

            self._history = JournalIndex.load(self.store)
        return self._history

    @property
    def store_label(self) -> str:
        """The store this command reads, as ``--json`` names it: the root folder, or the database URL
        (without its password)."""
        return str(self.store.root) if self.store.is_file else self.store.journal.label

    def require_store(self) -> None:
        """A one-line error when the command reads a store that does not exist (a file store without its
        ledger, a database without the journal's table): a mistyped ``--home`` is not an empty history
        (``check`` would pass a guard it never ran). ``init`` and the commands that record a first run
        create the store instead."""
        if getattr(self.args, "command", None) in CREATES_STORE:
            return
        if not self.store.is_file:
            if not self.store.journal.initialised():
                raise MemoryLabError(f"no MemoryLab journal in {self.store.journal.label}: check --home / "
                                     "$MEMORYLAB_HOME, or create it with 'memorylab --home URL init'")
            return
        if not self.store.exists():
            raise MemoryLabError(f"no MemoryLab store at {self.store.root} (no {self.store.ledger_path.name}): "
                                 "check --home / $MEMORYLAB_HOME, or create it with 'memorylab init'")

    def may_repeat(self) -> bool:
        """Whether the command can simply run again after its index failed: nothing recorded, nothing
        printed yet, and no inputs it reads or runs only once (a pipe, a training run)."""
        return (not self.store.appended
                and getattr(self.args, "command", None) not in REPEATS_INPUTS
                and not getattr(sys.stdout, "written", True))

    def discard_index(self) -> None:
        """Drop the history and its index file (after the index failed): the next read folds afresh."""
        from ..index import db

        if self._history is not None:
            self._history.discard()
            self._history = None
        elif (location := db.index_location(self.store)) is not None:  # it failed while loading
            db.discard(location)

    @property
    def arena(self) -> str:
        """The arena this command shows: ``--arena``, else the current one (evidence.arenas.current_arena)."""
        import os

        from ..evidence.arenas import current_arena

        requested = getattr(self.args, "arena", None)
        if requested == "all" and not getattr(self.args, "arena_all_allowed", False):
            raise MemoryLabError(f"'{self.args.command}' shows one arena at a time: name it with --arena "
                                 f"(arenas: {self._known_arenas()}); 'all' is for list, report and champion")
        if requested and requested != "all" and self.history.arena_count(requested) == 0 and self.history.runs:
            raise MemoryLabError(f"no runs in arena {requested!r}; arenas: {self._known_arenas()}")
        return current_arena(self.history, requested if requested != "all" else None, os.environ)

    def _known_arenas(self) -> str:
        return ", ".join(a for a, _, _ in self.history.arenas()[:8]) or "none yet"

    @property
    def all_arenas(self) -> bool:
        """Whether the command was asked for every arena (``--arena all``)."""
        return getattr(self.args, "arena", None) == "all"

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def labelled(self, data: object) -> object:
        """``data`` with the ``store`` it was read from: a key of an object, of each row of a list."""
        if isinstance(data, dict):
            return {"store": self.store_label, **data}
        if isinstance(data, list):
            return [self.labelled(row) for row in data]
        return data

    def emit(self, text: str, data: object) -> None:
        """Print ``data`` as JSON under ``--json`` (labelled with its store), else the human ``text``."""
        try:
            if self.json:
                text = json.dumps(self.labelled(data), indent=2, ensure_ascii=False, default=str)
                # a path's undecodable bytes (surrogate escapes) as JSON escapes: the output stays valid UTF-8
                print(_LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text))
            elif text:
                print(text)
            sys.stdout.flush()
        except BrokenPipeError:  # `check ... | head -1`: the reader left, but the exit code (a block is 2) still counts
            silence_stdout()


def silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


def add_arena_flag(parser: argparse.ArgumentParser, all_allowed: bool = False, help_text: str | None = None) -> None:
    """``--arena KEY``: the arena to show (default: the current one; see docs/evidence.md)."""
    extra = "; 'all' shows every arena, each apart" if all_allowed else ""
    help_text = help_text or f"arena to show (default: the current arena{extra})"
    parser.add_argument("--arena", metavar="KEY", type=arena_key, help=help_text)
    parser.set_defaults(arena_all_allowed=all_allowed)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


# -- numeric arguments: one set of argparse types, each with sane bounds --------------------------------------
MAX_HOURS = 24.0 * 366 * 100  # a century: any report window or age filter
MAX_SECONDS = 30.0 * 24 * 3600  # a month: any training timeout or grace period
MAX_ROWS = 1_000_000  # rows any listing may ask for
MAX_REPLICATES = 100  # replicate --n: each one is a full training run


def location(text: str) -> str:
    """An argparse type for a store, index folder or target: a path or URL, never empty (an empty
    ``--home`` or ``--to`` would quietly mean the default store)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path or URL: name the directory or postgresql:// URL")
    return text


def output_path(text: str) -> Path:
    """An argparse type for ``--output``: a file path (``-`` for stdout), never empty (an unset variable)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path: name the file to write, or - for stdout")
    return Path(text)


def arena_key(text: str) -> str:
    """An argparse type for ``--arena``: never empty (an unset variable would quietly mean the current arena)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty arena: name one (status lists them), or leave --arena out")
    return text


def bounded_int(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type: an integer in [lo, hi], else a one-line usage error (exit 1)."""
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text[:40]!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}: {text[:40]!r}")
        return value
    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


def bounded_float(lo: float, hi: float, lo_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in [lo, hi] (``(lo, hi]`` with ``lo_open``); NaN and inf refused."""
    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text[:40]!r}") from None
        if not math.isfinite(value) or not (lo < value if lo_open else lo <= value) or value > hi:
            raise argparse.ArgumentTypeError(f"must be a number in {'(' if lo_open else '['}{lo:g}, {hi:g}]: "
                                             f"{text[:40]!r}")
        return value
    parse.__name__ = "number"
    return parse


positive_int = bounded_int(1, MAX_ROWS)
shown_count = bounded_int(1, 10_000)  # closest runs / history rows a command shows
replicate_count = bounded_int(1, MAX_REPLICATES)
seed_int = bounded_int(0, 2**32 - 1)
hours = bounded_float(0, MAX_HOURS, lo_open=True)
seconds = bounded_float(0, MAX_SECONDS, lo_open=True)
unit_float = bounded_float(0, 1, lo_open=True)
positive_float = bounded_float(0, 1e6, lo_open=True)


# -- terminal output ---------------------------------------------------------------------------------------

class TerminalStream(io.TextIOBase):
    """A text stream that escapes control characters on their way to ``raw`` (the printing boundary),
    or passes them unchanged (``escape=False``: JSON, data); ``written`` says whether anything was."""

    def __init__(self, raw: TextIO, escape: bool = True):
        super().__init__()
        self.raw = raw
        self.escape = escape
        self.written = False

    def write(self, text: str) -> int:
        self.raw.write(show_controls(text) if self.escape else text)
        self.written = self.written or bool(text)
        return len(text)

    def flush(self) -> None:
        self.raw.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.raw.isatty()

    def fileno(self) -> int:
        return self.raw.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.raw, "encoding", "utf-8")


@contextlib.contextmanager
def terminal_output(stdout: bool) -> Iterator[None]:
    """Escape control characters in everything printed to stderr, and to stdout when ``stdout`` (off
    for ``--json`` and for data streams such as ``export``, which stay byte-exact)."""
    saved = sys.stdout, sys.stderr
    sys.stderr = TerminalStream(sys.stderr)
    sys.stdout = TerminalStream(sys.stdout, escape=stdout)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        sys.stdout, sys.stderr = saved


def is_stdout(path: Path | None) -> bool:
    """Whether an ``--output`` value means standard output (``-``)."""
    return path is not None and str(path) == "-"
