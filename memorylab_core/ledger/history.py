"""One fold over the ledger: every command's view of history comes from here.

:class:`History` replays ``experiments.jsonl`` once, in ledger order, into compact
:class:`~memorylab_core.model.Run` and :class:`~memorylab_core.model.Event` objects and the
aggregates commands read: run id and commit lookups, the novelty index and the registry fold
(kept runs, replicate groups, failure clusters). The fold is cached in ``cache/history.pickle``
keyed by the ledger offset it covers and fingerprints of the ledger bytes (see cachefile.py), so a
command reads only the lines appended since the last command. The runs themselves live in a
:class:`~memorylab_core.runtable.RunTable` whose complete chunks sit in their own files and are
decoded only when a command touches them, so loading the cache costs little more on a 100,000-run
ledger than on a 1,000-run one. The caches are disposable: delete them, or let a mismatch (the
ledger was replaced, truncated or edited) trigger a full replay; they are never a second source of truth.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from ..novelty.guard import NoveltyIndex
from ..policy.registry import RegistryFold, snapshot
from . import cachefile
from .model import Event, Run, event_from_record
from .runtable import RunTable, fold_run
from .store import LedgerLine, Store, warn

CACHE_VERSION = 5  # 5: runs in a chunked RunTable, registry fold
CACHE_NAME = "history.pickle"
_MAX_REPORTED_CORRUPT = 5


class RunIds:
    """Run id -> first index with it (ids are unique in practice), commit -> index of its latest run."""

    def __init__(self) -> None:
        self.by_id: dict[str, int] = {}
        self.commits: dict[str, int] = {}

    def add(self, run: Run) -> None:
        self.by_id.setdefault(run.run_id, run.index)
        if run.commit:
            self.commits[run.commit] = run.index


# The parts of the fold besides the runs and events: how to make an empty one and fold one run into
# it. Each is pickled apart in the cache and decoded only when a command reads it (``check`` never
# reads the registry, ``report`` never reads the novelty index).
_SECTIONS: dict[str, tuple[type, Callable[[Any, Run, RunTable], None]]] = {
    "ids": (RunIds, lambda ids, run, runs: ids.add(run)),
    "novelty": (NoveltyIndex, lambda index, run, runs: index.add(run)),
    "registry": (RegistryFold, lambda fold, run, runs: fold.add(run, runs)),
}


class History:
    """All runs and events of one store, folded in ledger order."""

    def __init__(self, store: Store, runs: RunTable | None = None):
        self.store = store
        self.runs = runs if runs is not None else RunTable(store, os.urandom(6).hex())
        self.events: list[Event] = []
        self._live: dict[str, object] = {name: kind() for name, (kind, _) in _SECTIONS.items()}
        self._blobs: dict[str, bytes] = {}  # sections still pickled, as the cache file held them
        self._cached_runs = 0  # runs the pickled sections cover
        self.corrupt: list[tuple[int, str]] = []  # (line number, problem)
        self.offset = 0  # bytes of the ledger folded so far (always at a line boundary)
        self.line_no = 0
        self._cached_lines = -1  # ledger lines the cache file covers (-1: no valid cache was read)

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def load(cls, store: Store, use_cache: bool = True, quiet: bool = False) -> History:
        """The folded history of ``store``, from the cache when it is still valid."""
        history = cls._from_cache(store) if use_cache else None
        if history is None:
            history = cls(store)
        history.refresh()
        if use_cache:
            history.save_cache_if_due()
        if not quiet:
            history.report_corrupt()
        return history

    def refresh(self, locked: bool = False) -> bool:
        """Fold any lines appended since the last fold. Returns True when something was read.

        ``locked``: the caller already holds the store's exclusive lock (flock locks belong to an
        open file, so taking the shared lock again from the same process would deadlock).
        """
        read = self.store.read_lines if locked else self.store.read_new_lines
        lines, offset, line_no = read(self.offset, self.line_no)
        self._fold(lines)
        moved = offset != self.offset
        self.offset, self.line_no = offset, line_no
        return moved

    def _fold(self, lines: Iterable[LedgerLine]) -> None:
        for line in lines:
            if line.record is None:
                self.corrupt.append((line.line_no, line.problem or "unreadable"))
                continue
            self.apply(line.record, line.offset)

    def apply(self, record: dict, offset: int) -> Run | Event:
        """Fold one record into the state (ledger order)."""
        if record.get("record_type") == "event":
            event = event_from_record(record, len(self.events), offset)
            event.runs_before = len(self.runs)
            self.events.append(event)
            return event
        run = fold_run(record, len(self.runs), offset)
        self.runs.append(run)
        for name, section in self._live.items():
            _SECTIONS[name][1](section, run, self.runs)
        return run

    # -- sections: decoded from the cache on first use, then brought up to date -----------------------
    @property
    def by_id(self) -> dict[str, int]:
        """Run id -> index of the first run with it."""
        return self._section("ids").by_id

    @property
    def commits(self) -> dict[str, int]:
        """Commit -> index of its latest run."""
        return self._section("ids").commits

    @property
    def novelty(self) -> NoveltyIndex:
        return self._section("novelty")

    @property
    def registry(self) -> RegistryFold:
        return self._section("registry")

    def _section(self, name: str):
        section = self._live.get(name)
        if section is None:
            kind, add = _SECTIONS[name]
            section, start = cachefile.loads(self._blobs.pop(name, b"")), self._cached_runs
            if type(section) is not kind:
                section, start = kind(), 0
            for index in range(start, len(self.runs)):
                add(section, self.runs[index], self.runs)
            self._live[name] = section
        return section

    def report_corrupt(self) -> None:
        """Warn (stderr) about ledger lines that were skipped because they are not valid records."""
        for line_no, problem in self.corrupt[:_MAX_REPORTED_CORRUPT]:
            warn(f"{self.store.ledger_path.name} line {line_no}: {problem}; line skipped")
        if len(self.corrupt) > _MAX_REPORTED_CORRUPT:
            warn(f"... and {len(self.corrupt) - _MAX_REPORTED_CORRUPT} more corrupt ledger lines skipped")

    # -- cache ----------------------------------------------------------------------------------
    _STATE = ("events", "corrupt", "line_no")

    def save_cache_if_due(self) -> None:
        """Rewrite the cache once it lags the ledger by a thousandth of its lines (at least one line).

        Rewriting a 100,000-run cache costs far more than folding a few new lines, so a command that
        appended one run leaves the cache a little behind and the next commands fold the gap; the gap
        stays a fixed fraction of the ledger, and so does the cost of refolding it.
        """
        lag = self.line_no - self._cached_lines
        if self._cached_lines < 0 or lag >= max(1, self.line_no // 1000):
            self.save_cache()

    def save_cache(self) -> None:
        """Write the folded state beside the ledger (best effort: a failure only costs speed)."""
        if not self.store.exists() or self.line_no == self._cached_lines:
            return
        self.runs.save()
        state = {name: getattr(self, name) for name in self._STATE}
        state.update(version=CACHE_VERSION, key=cachefile.ledger_key(self.store, self.offset),
                     runs=self.runs.state(), sections=self._pickled_sections())
        cachefile.save(self.store.cache_dir / CACHE_NAME, state)
        self._cached_lines = self.line_no

    def _pickled_sections(self) -> dict[str, bytes]:
        """Each section pickled on its own, so a command loads only the sections it reads."""
        current = len(self.runs) == self._cached_runs
        return {name: self._blobs[name] if current and name in self._blobs else cachefile.dumps(self._section(name))
                for name in _SECTIONS}

    @classmethod
    def _from_cache(cls, store: Store) -> History | None:
        state = cachefile.load(store.cache_dir / CACHE_NAME)
        if not isinstance(state, dict) or state.get("version") != CACHE_VERSION:
            return None
        if not cachefile.matches_ledger(store, state.get("key")):
            return None
        runs = RunTable.from_state(store, state.get("runs"))
        if runs is None:
            return None
        sections = state.get("sections")
        if not isinstance(sections, dict) or set(sections) != set(_SECTIONS):
            return None
        history = cls(store, runs)
        for name in cls._STATE:
            setattr(history, name, state[name])
        history._live, history._blobs, history._cached_runs = {}, sections, len(runs)
        history.offset = state["key"][0]
        history._cached_lines = history.line_no
        return history

    # -- lookups --------------------------------------------------------------------------------
    def get(self, run_id: str) -> Run | None:
        index = self.by_id.get(run_id)
        return self.runs[index] if index is not None else None

    def snapshot(self) -> dict:
        """The registry document (``champion_challenger.json``) for everything folded so far."""
        return snapshot(self.registry, self.events, len(self.runs))

    def record(self, run: Run | Event) -> dict:
        """The full ledger record behind a folded run or event."""
        record = self.store.read_record_at(run.offset)
        return record if record is not None else {}

    def run_records(self) -> list[dict]:
        """Every valid run record, in ledger order, read in one sequential pass (for exports)."""
        lines, _, _ = self.store.read_new_lines(0, 0)
        return [line.record for line in lines
                if line.record is not None and line.record.get("record_type") != "event"]

    def find(self, ref: str) -> Run | None:
        """A run by exact id, else by unique id prefix, else the latest run on a commit (prefix)."""
        if ref in self.by_id:
            return self.runs[self.by_id[ref]]
        by_prefix = [run_id for run_id in self.by_id if run_id.startswith(ref)]
        if len(by_prefix) == 1:
            return self.runs[self.by_id[by_prefix[0]]]
        if len(ref) >= 4:
            on_commit = [i for commit, i in self.commits.items() if commit.startswith(ref)]
            if on_commit:
                return self.runs[max(on_commit)]
        return None

