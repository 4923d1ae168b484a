"""Every run of the ledger as a sequence that is decoded a chunk at a time, on first use.

Most commands touch a handful of runs (the newest ones, the runs a novelty verdict cites) and a few
derived aggregates; only exports and dashboards walk every run. So the history cache does not hold
100,000 run objects: it holds each run's ledger offset plus the runs of the last, incomplete chunk.
Complete chunks of :data:`CHUNK_RUNS` runs are pickled once, to ``cache/runs/<generation>-<k>.pickle``,
and unpickled only when a command reads one of their runs. ``generation`` names one replay of the
ledger, so files left by an older replay are never mistaken for this one's. A chunk file that is
missing or does not fit is decoded from the ledger itself (and written again): losing cache files
costs time, never correctness.
"""

from __future__ import annotations

import contextlib
import json
import os
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..novelty.guard import idea_key
from . import cachefile
from .model import Run, run_from_record
from .store import MemoryLabError, Store

CHUNK_RUNS = 2048
RUNS_DIR = "runs"


def fold_run(record: dict, index: int, offset: int) -> Run:
    """The :class:`Run` for a ledger record, with the fields the fold derives (its idea key)."""
    run = run_from_record(record, index, offset)
    run.idea_key = idea_key(run)
    return run


class RunTable(Sequence[Run]):
    """Runs in ledger order: ``table[i]`` is the run whose ``index`` is ``i``."""

    def __init__(self, store: Store, generation: str, offsets: bytes = b"", tail: list[Run] | None = None):
        self.store = store
        self.generation = generation
        self.offsets = array("q")
        self.offsets.frombytes(offsets)
        self.tail: list[Run] = tail or []  # runs after the last complete chunk
        self._chunks: dict[int, list[Run]] = {}  # decoded complete chunks
        self._unsaved: set[int] = set()  # complete chunks without a valid file yet
        self._fresh = not offsets  # a new replay: files of older generations are garbage

    # -- state kept in the history cache ----------------------------------------------------------
    def state(self) -> tuple[str, bytes, list[Run]]:
        return self.generation, self.offsets.tobytes(), self.tail

    @classmethod
    def from_state(cls, store: Store, state: object) -> RunTable | None:
        """The table described by :meth:`state`, or None when ``state`` does not hold together."""
        if not (isinstance(state, tuple) and len(state) == 3 and isinstance(state[1], bytes)):
            return None
        generation, offsets, tail = state
        table = cls(store, str(generation), offsets, list(tail))
        if len(table.tail) != len(table.offsets) % CHUNK_RUNS:
            return None
        return table

    # -- building ---------------------------------------------------------------------------------
    def append(self, run: Run) -> None:
        """Add the next run (``run.index`` must equal ``len(self)``)."""
        self.offsets.append(run.offset)
        self.tail.append(run)
        if len(self.tail) == CHUNK_RUNS:
            k = len(self.offsets) // CHUNK_RUNS - 1
            self._chunks[k], self.tail = self.tail, []
            self._unsaved.add(k)

    def save(self) -> None:
        """Write chunk files not written yet and remove other generations' files (best effort)."""
        folder = self.store.cache_dir / RUNS_DIR
        for k in sorted(self._unsaved):
            cachefile.save(folder / self._chunk_name(k), self._chunks[k])
        if self._unsaved or self._fresh:
            self._remove_stale(folder)
        self._unsaved.clear()
        self._fresh = False

    def _remove_stale(self, folder: Path) -> None:
        prefix = f"{self.generation}-"
        try:
            names = os.listdir(folder)
        except OSError:
            return
        for name in names:
            if not name.startswith(prefix) and name.endswith(".pickle"):
                with contextlib.suppress(OSError):
                    os.unlink(folder / name)

    def _chunk_name(self, k: int) -> str:
        return f"{self.generation}-{k}.pickle"

    # -- reading ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, item):
        if isinstance(item, slice):
            return [self[i] for i in range(*item.indices(len(self)))]
        i = item + len(self) if item < 0 else item
        if not 0 <= i < len(self):
            raise IndexError("run index out of range")
        k, pos = divmod(i, CHUNK_RUNS)
        return self.tail[pos] if k == self._complete() else self._chunk(k)[pos]

    def __iter__(self) -> Iterator[Run]:
        for k in range(self._complete()):
            yield from self._chunk(k)
        yield from self.tail

    def __reversed__(self) -> Iterator[Run]:
        yield from reversed(self.tail)
        for k in reversed(range(self._complete())):
            yield from reversed(self._chunk(k))

    def _complete(self) -> int:
        return len(self.offsets) // CHUNK_RUNS

    def _chunk(self, k: int) -> list[Run]:
        chunk = self._chunks.get(k)
        if chunk is None:
            chunk = self._load_chunk(k)
            if chunk is None:
                chunk = self._decode_chunk(k)
                cachefile.save(self.store.cache_dir / RUNS_DIR / self._chunk_name(k), chunk)
            self._chunks[k] = chunk
        return chunk

    def _load_chunk(self, k: int) -> list[Run] | None:
        chunk = cachefile.load(self.store.cache_dir / RUNS_DIR / self._chunk_name(k))
        first, last = k * CHUNK_RUNS, (k + 1) * CHUNK_RUNS - 1
        if (isinstance(chunk, list) and len(chunk) == CHUNK_RUNS and isinstance(chunk[0], Run)
                and isinstance(chunk[-1], Run) and chunk[0].index == first
                and chunk[0].offset == self.offsets[first] and chunk[-1].offset == self.offsets[last]):
            return chunk
        return None

    def _decode_chunk(self, k: int) -> list[Run]:
        """Chunk ``k`` read back from the ledger (its runs start at the recorded offsets)."""
        first = k * CHUNK_RUNS
        wanted = {self.offsets[i]: i for i in range(first, first + CHUNK_RUNS)}
        start = self.offsets[first]
        stop = self.offsets[first + CHUNK_RUNS] if first + CHUNK_RUNS < len(self) else None
        with open(self.store.ledger_path, "rb") as fh:
            fh.seek(start)
            data = fh.read(None if stop is None else stop - start)
        chunk: list[Run] = []
        pos = 0
        while len(chunk) < CHUNK_RUNS:
            nl = data.find(b"\n", pos)
            end = len(data) if nl < 0 else nl
            index = wanted.get(start + pos)
            if index is not None:
                chunk.append(fold_run(self._record_at(data[pos:end]), index, start + pos))
            if nl < 0:
                break
            pos = nl + 1
        if len(chunk) != CHUNK_RUNS:
            raise self._stale()
        return chunk

    def _record_at(self, raw: bytes) -> dict:
        try:
            record = json.loads(raw)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise self._stale()
        return record

    def _stale(self) -> MemoryLabError:
        return MemoryLabError(f"{self.store.ledger_path.name} no longer matches the history cache (edited or "
                              "replaced while this command ran?); run the command again")
