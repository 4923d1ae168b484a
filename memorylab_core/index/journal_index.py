"""The journal, indexed: every command's view of the store's history comes from here.

:class:`JournalIndex` brings the store's index (``index.sqlite``, see db.py) up to date with the
journal -- folding only the lines appended since the last command -- and reads it: the runs (a
:class:`RunTable`, decoded row by row on first use), the events, the skipped lines, and the folded
sections views read (the novelty index, the registry fold). Data flows one way: journal → index →
views; nothing here writes the journal.
"""

from __future__ import annotations

import contextlib
import gc
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from ..ledger.journal import FileJournal, JournalStat, LedgerLine, line_chunks, split_lines
from ..ledger.model import Event, Run, event_from_record
from ..ledger.store import MemoryLabError, Store, warn
from ..novelty.guard import NOVELTY_DDL, NoveltyIndex
from ..policy.registry import REGISTRY_DDL, RegistryFold, snapshot
from . import db as ix
from .prepare import prepared

SECTIONS_DDL = NOVELTY_DDL + REGISTRY_DDL
T = TypeVar("T")
_LINE_NO = len(Run.ROW_COLUMNS) + 1  # where a run's index row (prepare.run_row) holds its line number
READ_CHUNK = 8 << 20  # journal bytes parsed per step of a fold
READ_ROWS = 5000  # records fetched per step of a fold keyed by sequence number
_MAX_REPORTED_CORRUPT = 5
_KEEP_DECODED = 50_000  # decoded runs a fold keeps in memory (about 1 KB each)
_RUN_SELECT = ", ".join((*Run.ROW_COLUMNS, "data"))  # what Run.from_row reads
_RUN_INSERT = (f"INSERT INTO runs({_RUN_SELECT}, line_no, tags, categories, knobs, import_key) "
               f"VALUES ({', '.join('?' * (len(Run.ROW_COLUMNS) + 6))})")


class RunTable(Sequence[Run]):
    """The index's runs in journal order: ``table[i]`` is the run whose ``index`` is ``i``.

    Rows are decoded on first use and kept for the rest of the command, so a view that reads the
    newest runs or the few runs a verdict cites costs what it reads, not the journal's length.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._decoded: dict[int, Run] = {}
        self._pending: list[tuple] = []
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def resync(self, keep_decoded: bool) -> None:
        """Re-read the row count (another command may have folded lines); drop decoded runs after a rebuild."""
        self._len = self.db.execute("SELECT coalesce(max(idx), -1) + 1 FROM runs").fetchone()[0]
        if not keep_decoded:
            self._decoded.clear()

    def append(self, run: Run, row: tuple) -> None:
        """Add the next run and its index row (``prefold.run_row``; buffered: :meth:`flush` writes the rows)."""
        self._pending.append(row)
        self._decoded[run.index] = run
        self._len += 1

    def flush(self) -> None:
        if self._pending:
            self.db.executemany(_RUN_INSERT, self._pending)
            self._pending.clear()
        if len(self._decoded) > _KEEP_DECODED:  # a long fold: its runs are rows now, decoded again if read
            self._decoded.clear()

    def __getitem__(self, item):
        if isinstance(item, slice):
            start, stop, step = item.indices(self._len)
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            return self._range(start, stop)
        i = item + self._len if item < 0 else item
        if not 0 <= i < self._len:
            raise IndexError("run index out of range")
        run = self._decoded.get(i)
        if run is None:
            row = self.db.execute(f"SELECT {_RUN_SELECT} FROM runs WHERE idx = ?", (i,)).fetchone()
            if row is None:
                raise sqlite3.DatabaseError("the index lost a run (a damaged page)")
            run = self._decoded[i] = Run.from_row(row)
        return run

    def take(self, indexes: Sequence[int]) -> list[Run]:
        """The runs at ``indexes`` (in that order), fetched in as few queries as possible."""
        decoded = self._decoded
        missing = [i for i in indexes if i not in decoded]
        for start in range(0, len(missing), 500):
            chunk = missing[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(f"SELECT {_RUN_SELECT} FROM runs WHERE idx IN ({marks})", chunk):
                decoded[row[0]] = Run.from_row(row)
        try:
            return [decoded[i] for i in indexes]
        except KeyError:
            raise sqlite3.DatabaseError("the index lost a run (a damaged page)") from None

    def stream(self, indexes: Sequence[int]) -> Iterator[Run]:
        """The runs at ``indexes`` (ascending), decoded a batch at a time and not kept: what a fold over
        a long stretch reads, so it holds one batch in memory instead of every run."""
        for start in range(0, len(indexes), 4096):
            chunk = indexes[start:start + 4096]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT {_RUN_SELECT} FROM runs WHERE idx IN ({marks}) ORDER BY idx", chunk)
            yield from (self._decoded.get(row[0]) or Run.from_row(row) for row in rows)

    def _range(self, start: int, stop: int) -> list[Run]:
        if stop <= start:
            return []
        if all(i in self._decoded for i in range(start, stop)) if stop - start <= 64 else False:
            return [self._decoded[i] for i in range(start, stop)]
        rows = self.db.execute(f"SELECT {_RUN_SELECT} FROM runs WHERE idx >= ? AND idx < ? ORDER BY idx", (start, stop))
        return [self._decoded.get(row[0]) or Run.from_row(row) for row in rows]

    def __iter__(self) -> Iterator[Run]:
        for start in range(0, self._len, 4096):
            yield from self._range(start, min(start + 4096, self._len))

    def __reversed__(self) -> Iterator[Run]:
        stop, batch = self._len, 64  # newest first, in growing batches: most readers stop early
        while stop > 0:
            start = max(0, stop - batch)
            yield from reversed(self._range(start, stop))
            stop, batch = start, min(batch * 4, 4096)

    def where(self, sql: str, params: Sequence = (), limit: int | None = None) -> list[Run]:
        """Runs whose index row matches ``sql`` (a WHERE clause over the runs table's columns), newest first."""
        query = f"SELECT idx FROM runs WHERE {sql} ORDER BY idx DESC LIMIT ?"
        indexes = [r[0] for r in self.db.execute(query, (*params, -1 if limit is None else limit))]
        return self.take(indexes)


class JournalIndex:
    """All runs and events of one store, as folded into its index."""

    def __init__(self, store: Store, db: sqlite3.Connection, location: Path | None = None):
        self.store = store
        self.location = location  # the index file (None: in memory)
        self._attach(db)
        self._healed = False

    def _attach(self, db: sqlite3.Connection) -> None:
        """Read from ``db`` from now on (views are loaded by the next :meth:`refresh`)."""
        self.db = db
        self.runs = RunTable(db)
        self.events: list[Event] = []
        self._novelty: NoveltyIndex | None = None
        self._registry: RegistryFold | None = None
        self._view: tuple = ()  # (generation, seen) of the index state the in-memory views show

    def _load_views(self) -> None:
        """Point the in-memory views at the index's current state (one read snapshot)."""
        db = self.db
        db.execute("BEGIN")
        try:
            view = (ix.get_meta(db, "generation"), ix.get_meta(db, "seen"))
            self.runs.resync(keep_decoded=bool(self._view) and view[0] == self._view[0])
            self.events = [_event(row) for row in db.execute(
                "SELECT idx, offset, event_id, event_type, timestamp_utc, ts, runs_before, data FROM events "
                "ORDER BY idx")]
        finally:
            ix.rollback(db)  # a read: ending it is all that is needed, and cannot fail twice
        self._novelty = self._registry = None
        self._view = view

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def load(cls, store: Store, use_cache: bool = True, quiet: bool = False) -> JournalIndex:
        """The folded history of ``store``: its index, brought up to date with the journal.

        ``use_cache=False`` folds the whole journal into a private in-memory index instead (tests and
        checks that the index equals a fresh fold).
        """
        db, location = ix.open_db(store, SECTIONS_DDL) if use_cache else (ix.fresh_db(SECTIONS_DDL), None)
        history = cls(store, db, location)
        history.refresh()
        if not quiet:
            history.healing(history.report_corrupt)
        return history

    def refresh(self, locked: bool = False) -> bool:
        """Fold whatever the journal gained since the index last saw it. Returns True when it moved.

        ``locked`` is accepted for callers that hold the journal lock; the fold never needs it
        (appends write whole lines, and a line without its newline is left for later). An index that
        fails with anything but a lock held elsewhere is rebuilt (:meth:`heal`).
        """
        try:
            return self._refresh(locked)
        except sqlite3.DatabaseError as exc:
            self.heal(exc)
            return True

    def heal(self, exc: sqlite3.DatabaseError) -> None:
        """The index is a cache: after ``exc`` (a damaged page, disk full, a planted constraint), discard
        its file and fold the journal into a fresh one, once per command; if that fails too, fold into
        memory. One warning says which. A lock held elsewhere, or a second failure, is re-raised."""
        if ix.is_busy(exc) or self._healed:
            raise exc
        self._healed, damaged = True, self.location
        self.discard()
        db, self.location = ix.open_db(self.store, SECTIONS_DDL) if damaged else (ix.fresh_db(SECTIONS_DDL), None)
        self._attach(db)
        try:
            self._refresh(False)
        except sqlite3.DatabaseError as again:
            if ix.is_busy(again) or self.location is None:
                raise
            warn(f"index {self.location} unusable ({again}); using an in-memory index for this command")
            self.discard()
            self.location = None
            self._attach(ix.fresh_db(SECTIONS_DDL))
            self._refresh(False)
            return
        if self.location is not None:  # (open_db warned already when it fell back to memory)
            warn(f"index {damaged} failed ({exc}); rebuilt it from the journal")

    def healing(self, step: Callable[[], T]) -> T:
        """``step()``, a read of the index that writes nothing else; if the index fails under it (not a
        lock), the index is rebuilt (:meth:`heal`) and ``step`` runs once more. What writers use
        between reading their input and appending, so a damaged index never costs a training run."""
        try:
            return step()
        except sqlite3.DatabaseError as exc:
            self.heal(exc)
        return step()

    def discard(self) -> None:
        """Close the index and remove its file, so this or the next command folds the journal afresh."""
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
        if self.location is not None:
            ix.discard(self.location)

    def _refresh(self, locked: bool) -> bool:
        if not isinstance(self.store.journal, FileJournal):
            return self._refresh_by_seq(locked)
        del locked
        stat = JournalStat.of(self.store.ledger_path)
        appends, self.store.appends = self.store.appends, []
        if stat is not None and not appends and ix.get_meta(self.db, "seen") == stat.key():
            if (ix.get_meta(self.db, "generation"), stat.key()) == self._view:
                return False
            self._load_views()  # another command folded the new lines already
            return True
        self.db.execute("BEGIN IMMEDIATE")
        try:
            with cycle_collection_paused():
                moved = self._sync(stat, appends)
            self.db.execute("COMMIT")
        except BaseException:
            ix.rollback(self.db)
            raise
        self._load_views()
        return moved

    def _sync(self, stat: JournalStat | None, appends: list) -> bool:
        """Bring the index up to date (inside the write transaction). True when anything changed."""
        db = self.db
        if ix.get_meta(db, "version") != ix.INDEX_VERSION:
            ix.reset(db)
        offset, line_no = int(ix.get_meta(db, "offset", 0)), int(ix.get_meta(db, "line_no", 0))
        seen = ix.get_meta(db, "seen", "")
        for before, after in appends:  # our own appends: the bytes they added are new lines only
            if seen == before.key():
                seen = after.key()
        if stat is None:
            if offset:
                ix.reset(db)
                return True
            return False
        if seen == stat.key() and offset <= stat.size:
            trusted = True
        else:
            trusted = (ix.get_meta(db, "journal") == ix.journal_identity(stat) and offset <= stat.size
                       and ix.verify_prefix(db, self.store, offset))
        rebuilt = False
        if not trusted:
            rebuilt = bool(offset) or bool(ix.get_meta(db, "journal"))
            ix.reset(db)
            offset, line_no = 0, 0
        self.runs.resync(keep_decoded=trusted and self._view[:1] == (ix.get_meta(db, "generation"),))
        self._novelty = self._registry = None  # re-read: another command may have folded lines meanwhile
        new_offset, line_no = self._fold_bytes(offset, line_no, stat.size)
        ix.set_meta(db, offset=new_offset, line_no=line_no, seen=stat.key(), journal=ix.journal_identity(stat))
        return rebuilt or new_offset != offset

    def _fold_bytes(self, offset: int, line_no: int, size: int) -> tuple[int, int]:
        """Fold the complete lines in journal bytes ``offset..size``; returns the new offset and line count."""
        n_events = self.db.execute("SELECT count(*) FROM events").fetchone()[0]
        novelty, registry = self.novelty, self.registry
        try:
            for start, data in line_chunks(self.store.ledger_path, offset, size, READ_CHUNK):
                lines, line_no = split_lines(data, start, line_no)
                n_events = self._fold_items(prepared(lines, len(self.runs)), n_events, novelty, registry)
                ix.extend_blocks(self.db, self.store, start, start + len(data), data)
                offset = start + len(data)
        except OSError as exc:
            raise MemoryLabError(f"cannot read {self.store.ledger_path}: {exc.strerror}") from None
        return offset, line_no

    def _fold_items(self, items: Iterable[tuple], n_events: int, novelty: NoveltyIndex,
                    registry: RegistryFold) -> int:
        """Fold prepared journal lines (``prepare.prepared``, either journal) into the index; returns the
        new event count."""
        skipped, arenas = [], {}
        items = list(items)
        first_lines = self._recorded_ids(item[4].run_id for item in items if item[0] == "run")
        for item in items:
            kind = item[0]
            if kind == "run":
                _, row, facts, words, run = item
                line_no = row[_LINE_NO]
                if run.run_id in first_lines:  # e.g. two journals concatenated: the first record counts
                    skipped.append((line_no, run.offset, f"run id {run.run_id} is already recorded at line "
                                                         f"{first_lines[run.run_id]} (the first record counts)"))
                    continue
                first_lines[run.run_id] = line_no
                run.index = len(self.runs)  # prepared lines number their runs in a row: a skipped copy shifts them
                self.runs.append(run, (run.index, *row[1:]))
                arenas[run.arena] = (arenas.get(run.arena, (0, 0))[0] + 1, run.index)
                novelty.add(run, facts, words)
                registry.add(run)
            elif kind == "event":
                self._add_event(LedgerLine(item[1], item[2], item[3], None), n_events, registry)
                n_events += 1
            else:
                skipped.append(item[1:])
        self.runs.flush()
        novelty.flush()
        registry.flush()
        self.db.executemany("INSERT OR REPLACE INTO skipped(line_no, offset, problem) VALUES (?, ?, ?)", skipped)
        self.db.executemany("INSERT INTO arenas(arena, runs, last_idx) VALUES (?, ?, ?) ON CONFLICT(arena) DO UPDATE "
                            "SET runs = runs + excluded.runs, last_idx = excluded.last_idx",
                            [(a, n, last) for a, (n, last) in arenas.items()])
        return n_events

    def _recorded_ids(self, run_ids: Iterable[str]) -> dict[str, int]:
        """{run id: line of its first record} of those of ``run_ids`` the index already holds."""
        wanted, found = sorted(set(run_ids)), {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            found.update(self.db.execute(f"SELECT run_id, min(line_no) FROM runs WHERE run_id IN "
                                         f"({','.join('?' * len(chunk))}) GROUP BY run_id", chunk))
        return found

    # -- a journal keyed by sequence number (PostgreSQL) --------------------------------------------
    def _refresh_by_seq(self, locked: bool) -> bool:
        """:meth:`refresh` for a journal whose positions are sequence numbers.

        The index keeps the journal's id, the last folded ``seq`` and how many rows it folded. One
        query (the id and the highest seq) says whether anything is new; if so, the folded prefix is
        verified (same journal id, and as many rows with ``seq <= last`` as were folded: the table is
        append-only by trigger, and appends commit in seq order under the advisory lock) and the new
        rows are folded; any mismatch rebuilds the index. A reader that cannot reach the server keeps
        the local index and says it may be stale; a writer (``locked``) gets the one-line error.
        """
        from ..ledger.pgjournal import PostgresUnreachable

        journal = self.store.journal
        try:
            journal_id, top = journal.head()
        except PostgresUnreachable as exc:
            if locked:
                raise
            if not ix.get_meta(self.db, "journal"):  # nothing folded here yet: no local copy to show
                raise PostgresUnreachable(f"{exc}; this host has no local copy of the journal") from None
            self._warn_stale(exc)
            if not self._view:  # a fresh index: show what the local index holds
                self._load_views()
            return False
        db = self.db
        if (ix.get_meta(db, "journal") or None) == journal_id and int(ix.get_meta(db, "offset", 0)) == top:
            if self._view[:1] == (ix.get_meta(db, "generation"),) and ix.get_meta(db, "seen") == self._view[1]:
                return False
            self._load_views()
            return True
        db.execute("BEGIN IMMEDIATE")
        try:
            with cycle_collection_paused():
                moved = self._sync_by_seq(journal_id, top)
            db.execute("COMMIT")
        except BaseException:
            ix.rollback(db)
            raise
        self._load_views()
        return moved

    def _sync_by_seq(self, journal_id: str | None, top: int) -> bool:
        db, journal = self.db, self.store.journal
        if ix.get_meta(db, "version") != ix.INDEX_VERSION:
            ix.reset(db)
        last, rows = int(ix.get_meta(db, "offset", 0)), int(ix.get_meta(db, "line_no", 0))
        intact = (ix.get_meta(db, "journal") or None) == journal_id and last <= top and \
            (not last or journal.count_upto(last) == rows)
        rebuilt = not intact and bool(last or ix.get_meta(db, "journal"))
        if not intact:
            ix.reset(db)
            last, rows = 0, 0
        self.runs.resync(keep_decoded=intact and self._view[:1] == (ix.get_meta(db, "generation"),))
        self._novelty = self._registry = None
        start = last
        n_events = db.execute("SELECT count(*) FROM events").fetchone()[0]
        novelty, registry = self.novelty, self.registry
        while last < top:
            lines, end, _ = journal.read_from(last, 0, READ_ROWS)
            if not lines:
                break
            n_events = self._fold_items(prepared(lines, len(self.runs)), n_events, novelty, registry)
            last, rows = end, rows + len(lines)
        ix.set_meta(db, offset=last, line_no=rows, seen=f"{journal_id}:{last}", journal=journal_id or "")
        return rebuilt or last != start

    def _warn_stale(self, exc: Exception) -> None:
        """Note once per command that the views come from the local index alone (the CLI prints the
        note when the command succeeds: a write that then fails says only why it failed)."""
        when = ix.get_meta(self.db, "offset", 0)
        note = f"{exc}; showing this host's local index (up to journal seq {when}), possibly stale"
        if note not in self.store.notes:
            self.store.notes.append(note)

    def _add_event(self, line: LedgerLine, index: int, registry: RegistryFold) -> None:
        event = event_from_record(line.record, index, line.offset)
        event.runs_before = len(self.runs)
        registry.add_event(event)
        self.db.execute("INSERT INTO events(idx, line_no, offset, event_id, event_type, timestamp_utc, ts, "
                        "runs_before, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (index, line.line_no, line.offset, event.event_id, event.event_type, event.timestamp,
                         event.ts, len(self.runs), json.dumps(event.data, ensure_ascii=True)))

    # -- sections -------------------------------------------------------------------------------
    @property
    def novelty(self) -> NoveltyIndex:
        if self._novelty is None:
            self._novelty = NoveltyIndex(self.db)
        return self._novelty

    @property
    def registry(self) -> RegistryFold:
        if self._registry is None:
            self._registry = RegistryFold(self.runs, self.db)
        return self._registry

    @property
    def corrupt(self) -> list[tuple[int, str]]:
        """(line number, problem) of every journal line skipped because it is not a valid record."""
        return list(self.db.execute("SELECT line_no, problem FROM skipped ORDER BY line_no"))

    def report_corrupt(self) -> None:
        """Warn (stderr) about journal lines that were skipped because they are not valid records."""
        rows = self.db.execute("SELECT line_no, problem FROM skipped ORDER BY line_no LIMIT ?",
                               (_MAX_REPORTED_CORRUPT + 1,)).fetchall()
        for line_no, problem in rows[:_MAX_REPORTED_CORRUPT]:
            warn(f"{self.store.journal.where(line_no)}: {problem}; line skipped")
        if len(rows) > _MAX_REPORTED_CORRUPT:
            total = self.db.execute("SELECT count(*) FROM skipped").fetchone()[0]
            warn(f"... and {total - _MAX_REPORTED_CORRUPT} more corrupt journal lines skipped")

    # -- lookups --------------------------------------------------------------------------------
    def get(self, run_id: str) -> Run | None:
        row = self.db.execute("SELECT min(idx) FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return self.runs[row[0]] if row and row[0] is not None else None

    def stored_imports(self, keys: Iterable[str], run_ids: Iterable[str]) -> tuple[set[str], set[str]]:
        """Which of ``keys`` (import keys) and ``run_ids`` the index already holds: what makes a second
        import of a file add nothing. Indexed lookups, so the cost follows the input, not the store."""
        found_keys = {k for k in dict.fromkeys(keys) if self.db.execute(
            "SELECT 1 FROM runs WHERE import_key = ? LIMIT 1", (k,)).fetchone()}
        found_ids = {r for r in dict.fromkeys(run_ids) if self.has_run_id(r)}
        return found_keys, found_ids

    def has_run_id(self, run_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM runs WHERE run_id = ? LIMIT 1", (run_id,)).fetchone() is not None

    def latest_on_commit(self, commit: str) -> Run | None:
        row = self.db.execute("SELECT max(idx) FROM runs WHERE commit_sha = ?", (commit,)).fetchone()
        return self.runs[row[0]] if row and row[0] is not None else None

    def snapshot(self) -> dict:
        """The registry document (``champion_challenger.json``) for everything folded so far: every
        arena's standing computed from the index (never carried over from the file on disk)."""
        arenas = [a for a, _, _ in self.arenas()]
        return snapshot(self.registry, self.events, len(self.runs), arenas, self.newest_arena(native=True))

    # -- arenas (what is comparable: evidence/arenas.py) ----------------------------------------
    def arenas(self) -> list[tuple[str, int, int]]:
        """(arena, runs, newest run index) of every arena, the most recently used first."""
        return [tuple(r) for r in self.db.execute("SELECT arena, runs, last_idx FROM arenas ORDER BY last_idx DESC")]

    def newest_arena(self, native: bool = False, prefix: str | None = None) -> str | None:
        """The arena of the newest run (``native``: logged here, not imported; ``prefix``: whose key starts so)."""
        where, params = ["1"], []
        if native:
            where.append("source = 'native'")
        if prefix:
            where.append("(arena = ? OR arena GLOB ?)")
            params += [prefix, _prefix_pattern(prefix + "/")]
        row = self.db.execute(f"SELECT arena FROM runs WHERE {' AND '.join(where)} ORDER BY idx DESC LIMIT 1",
                              params).fetchone()
        return row[0] if row else None

    def recent_arenas(self, branch: str | None, limit: int = 50) -> list[str]:
        """Arenas of native runs, those with runs on ``branch`` first, then the most recently used first
        (read from the ``runs_native_arena`` index, not the table: a log at 100,000 runs stays cheap)."""
        rows = self.db.execute("SELECT arena, max(branch IS ?) AS mine, max(idx) AS last FROM runs "
                               "WHERE source = 'native' GROUP BY arena ORDER BY mine DESC, last DESC LIMIT ?",
                               (branch, limit))
        return [row[0] for row in rows]

    def arena_runs(self, arena: str, start: int = 0) -> list[Run]:
        """The runs of ``arena`` with index >= ``start``, in ledger order (cost: that arena's rows)."""
        return self.runs.take(self.arena_indexes(arena, start))

    def arena_indexes(self, arena: str, start: int = 0) -> list[int]:
        """The indexes of :meth:`arena_runs` (``self.runs.stream`` reads them without keeping them)."""
        rows = self.db.execute("SELECT idx FROM runs WHERE arena = ? AND idx >= ? ORDER BY idx", (arena, start))
        return [r[0] for r in rows]

    def arena_count(self, arena: str) -> int:
        row = self.db.execute("SELECT runs FROM arenas WHERE arena = ?", (arena,)).fetchone()
        return row[0] if row else 0

    def events_in(self, arena: str, events: Sequence[Event] | None = None) -> list[Event]:
        """The events that concern ``arena``: those naming it, those about one of its runs, and those
        naming no arena and no run (a breaker reset applies everywhere)."""
        events = self.events if events is None else events
        ids = {str(e.data["run_id"]) for e in events if e.data.get("run_id") and not e.data.get("arena")}
        owner = {}
        for start in range(0, len(ids), 500):
            chunk = sorted(ids)[start:start + 500]
            marks = ",".join("?" * len(chunk))
            owner.update(self.db.execute(f"SELECT run_id, arena FROM runs WHERE run_id IN ({marks})", chunk))
        return [e for e in events if _event_arena(e, owner) in (arena, None)]

    def record(self, run: Run | Event) -> dict:
        """The full journal record behind a folded run or event."""
        record = self.store.read_record_at(run.offset)
        return record if record is not None else {}

    def run_records(self) -> list[dict]:
        """Every valid run record, in journal order, read in one sequential pass (for exports)."""
        lines, _, _ = self.store.read_lines(0, 0)
        return [line.record for line in lines
                if line.record is not None and line.record.get("record_type") != "event"]

    def find(self, ref: str) -> Run | None:
        """A run by exact id, else by unique id prefix, else the latest run on a commit (prefix)."""
        exact = self.get(ref)
        if exact is not None:
            return exact
        pattern = _prefix_pattern(ref)
        ids = [r[0] for r in self.db.execute(
            "SELECT DISTINCT run_id FROM runs WHERE run_id GLOB ? LIMIT 2", (pattern,))]
        if len(ids) == 1:
            return self.get(ids[0])
        if len(ref) >= 4:
            row = self.db.execute("SELECT max(idx) FROM runs WHERE commit_sha GLOB ?", (pattern,)).fetchone()
            if row and row[0] is not None:
                return self.runs[row[0]]
        return None

    def prefix_matches(self, ref: str, limit: int = 3) -> tuple[int, list[str]]:
        """How many run ids start with ``ref``, and the first ``limit`` of them."""
        pattern = _prefix_pattern(ref)
        count = self.db.execute("SELECT count(DISTINCT run_id) FROM runs WHERE run_id GLOB ?", (pattern,)).fetchone()[0]
        ids = [r[0] for r in self.db.execute(
            "SELECT DISTINCT run_id FROM runs WHERE run_id GLOB ? ORDER BY run_id LIMIT ?", (pattern, limit))]
        return count, ids


@contextlib.contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a fold. A fold allocates millions of short-lived
    objects (decoded records) and keeps its runs, and the collector's passes over them cost about a
    tenth of a cold build; reference counting frees them all the same, and what cycles there are
    are collected when it is back on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _event_arena(event: Event, owner: dict) -> str | None:
    """The arena an event concerns: its own ``arena`` field, else its run's; None for store-wide events."""
    if event.data.get("arena"):
        return str(event.data["arena"])
    run_id = event.data.get("run_id")
    return owner.get(str(run_id), "") if run_id else None


def _prefix_pattern(ref: str) -> str:
    """A GLOB pattern matching strings that start with ``ref`` (its own glob characters escaped)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in ref) + "*"


def _event(row: tuple) -> Event:
    idx, offset, event_id, event_type, timestamp, ts, runs_before, data = row
    return Event(index=idx, offset=offset, event_id=event_id, event_type=event_type, timestamp=timestamp, ts=ts,
                 data=json.loads(data), runs_before=runs_before)
