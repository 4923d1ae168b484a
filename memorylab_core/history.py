"""One fold over the ledger: every command's view of history comes from here.

:class:`History` replays ``experiments.jsonl`` once into compact :class:`~memorylab_core.model.Run`
and :class:`~memorylab_core.model.Event` objects plus incremental indexes (run id lookup, the
novelty index). The folded state is cached in ``cache/history.pickle`` keyed by the ledger offset it
covers and fingerprints of the ledger bytes, so a command on a 100,000-run ledger reads only the
lines appended since the last command. The cache is disposable: delete it, or let a mismatch (the
ledger was replaced, truncated or edited) trigger a full replay; it is never a second source of truth.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import pickle
from collections.abc import Iterable

from .model import Event, Run, event_from_record, run_from_record
from .novelty import NoveltyIndex, idea_key
from .store import LedgerLine, Store, atomic_write_bytes, warn

CACHE_VERSION = 4  # 4: Event.runs_before
CACHE_NAME = "history.pickle"
_FINGERPRINT_BYTES = 4096
_MAX_REPORTED_CORRUPT = 5


class _SafeUnpickler(pickle.Unpickler):
    """Loads only plain containers and MemoryLab's own classes: a doctored cache cannot run code."""

    _BUILTINS = {"set", "frozenset", "dict", "list", "tuple", "int", "float", "str", "bytes", "bool"}

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle hook
        if module == "builtins" and name in self._BUILTINS:
            return super().find_class(module, name)
        if module == "collections" and name in ("defaultdict", "Counter", "OrderedDict", "deque"):
            return super().find_class(module, name)
        if module.startswith("memorylab_core.") and not name.startswith("_"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"forbidden global {module}.{name} in history cache")


class History:
    """All runs and events of one store, folded in ledger order."""

    def __init__(self, store: Store):
        self.store = store
        self.runs: list[Run] = []
        self.events: list[Event] = []
        self.by_id: dict[str, int] = {}
        self.novelty = NoveltyIndex()
        self.corrupt: list[tuple[int, str]] = []  # (line number, problem)
        self.offset = 0  # bytes of the ledger folded so far (always at a line boundary)
        self.line_no = 0

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def load(cls, store: Store, use_cache: bool = True, quiet: bool = False) -> History:
        """The folded history of ``store``, from the cache when it is still valid."""
        history = cls._from_cache(store) if use_cache else None
        if history is None:
            history = cls(store)
        changed = history.refresh()
        if use_cache and changed:
            history.save_cache()
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
        run = run_from_record(record, len(self.runs), offset)
        self.runs.append(run)
        self.by_id.setdefault(run.run_id, run.index)
        run.idea_key = idea_key(run)
        self.novelty.add(run)
        return run

    def report_corrupt(self) -> None:
        """Warn (stderr) about ledger lines that were skipped because they are not valid records."""
        for line_no, problem in self.corrupt[:_MAX_REPORTED_CORRUPT]:
            warn(f"{self.store.ledger_path.name} line {line_no}: {problem}; line skipped")
        if len(self.corrupt) > _MAX_REPORTED_CORRUPT:
            warn(f"... and {len(self.corrupt) - _MAX_REPORTED_CORRUPT} more corrupt ledger lines skipped")

    # -- cache ----------------------------------------------------------------------------------
    def _cache_key(self) -> dict:
        return {
            "version": CACHE_VERSION,
            "offset": self.offset,
            "head": hashlib.sha1(self.store.head_bytes(min(self.offset, _FINGERPRINT_BYTES))).hexdigest(),
            "tail": hashlib.sha1(self.store.bytes_before(self.offset, _FINGERPRINT_BYTES)).hexdigest(),
        }

    def save_cache(self) -> None:
        """Write the folded state beside the ledger (best effort: a failure only costs speed)."""
        state = {
            "key": self._cache_key(),
            "runs": self.runs,
            "events": self.events,
            "by_id": self.by_id,
            "novelty": self.novelty,
            "corrupt": self.corrupt,
            "line_no": self.line_no,
        }
        with contextlib.suppress(OSError):
            data = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
            atomic_write_bytes(self.store.cache_dir / CACHE_NAME, data)

    @classmethod
    def _from_cache(cls, store: Store) -> History | None:
        path = store.cache_dir / CACHE_NAME
        try:
            data = path.read_bytes()
            state = _SafeUnpickler(io.BytesIO(data)).load()
        except Exception:  # noqa: BLE001 - any unreadable cache simply means "replay the ledger"
            return None
        history = cls(store)
        key = state.get("key") if isinstance(state, dict) else None
        if not isinstance(key, dict) or key.get("version") != CACHE_VERSION:
            return None
        history.offset = int(key.get("offset", -1))
        if history.offset < 0 or history.offset > store.ledger_size() or key != history._cache_key():
            return None
        history.runs = state["runs"]
        history.events = state["events"]
        history.by_id = state["by_id"]
        history.novelty = state["novelty"]
        history.corrupt = state["corrupt"]
        history.line_no = state["line_no"]
        return history

    # -- lookups --------------------------------------------------------------------------------
    def get(self, run_id: str) -> Run | None:
        index = self.by_id.get(run_id)
        return self.runs[index] if index is not None else None

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
        by_prefix = [r for r in self.runs if r.run_id.startswith(ref)]
        if len({r.run_id for r in by_prefix}) == 1:
            return by_prefix[-1]
        if len(ref) >= 4:
            on_commit = [r for r in self.runs if r.commit and r.commit.startswith(ref)]
            if on_commit:
                return on_commit[-1]
        return None
