"""Folds kept in the index's ``folds`` table, one per arena, brought forward from the newer rows only.

A stored fold is derived state (tagged JSON, see ledger/codec.py) with the number of runs and events
it covers. Loading one decodes it, folds the arena's runs and events logged since (merged by journal
offset) and stores it back, so a view costs what the journal gained, not its length. A fold that is
missing, unreadable, of another class or version, or ahead of the index (a rebuilt index) starts empty.
Folds are objects with ``add_run(run)`` and ``add_event(event)``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..index.journal_index import JournalIndex
from ..ledger import codec
from ..ledger.model import Event, Run


def load_fold(history: JournalIndex, name: str, arena: str, empty: Callable[[], Any], classes: tuple[type, ...],
              use_cache: bool = True, prepare: Callable[[Any, int], None] | None = None,
              start: Callable[[JournalIndex, str], int] | None = None) -> Any:
    """The fold ``name`` of ``arena`` as of everything ``history`` holds.

    ``empty`` makes a fresh fold (its class and ``version`` attribute, if any, must match the stored
    one); ``classes`` are the classes its JSON may decode into; ``prepare(state, new_runs)`` runs
    before the new rows are folded; ``start(history, arena)``, for a fold that only depends on recent
    runs, gives the first run index a fresh fold must see (it still sees every event). ``use_cache=False``
    folds everything afresh and stores nothing.
    """
    db, key = history.db, f"{name}:{arena}"
    state, runs_done, events_done = stored(db, key, empty, classes) if use_cache else (None, 0, 0)
    first = runs_done
    if state is None or runs_done > len(history.runs) or events_done > len(history.events):
        state, events_done = empty(), 0
        first = start(history, arena) if start is not None else 0
    new_runs = history.arena_indexes(arena, first)
    new_events = history.events_in(arena, history.events[events_done:])
    if prepare is not None:
        prepare(state, len(new_runs))
    fold_into(state, history.runs.stream(new_runs), new_events)
    if use_cache and (runs_done != len(history.runs) or events_done != len(history.events)):
        with contextlib.suppress(sqlite3.Error):  # a read-only index: the next command folds again
            db.execute("INSERT OR REPLACE INTO folds(name, runs, events, data) VALUES (?, ?, ?, ?)",
                       (key, len(history.runs), len(history.events), codec.dumps(state)))
    return state


def stored(db: sqlite3.Connection, key: str, empty: Callable[[], Any],
           classes: tuple[type, ...]) -> tuple[Any | None, int, int]:
    """(fold, runs covered, events covered) as stored under ``key``; (None, 0, 0) when unusable."""
    row = db.execute("SELECT runs, events, data FROM folds WHERE name = ?", (key,)).fetchone()
    if row is None:
        return None, 0, 0
    try:
        state = codec.loads(row[2], classes)
    except codec.CodecError:
        return None, 0, 0
    fresh = empty()
    if type(state) is not type(fresh) or getattr(state, "version", None) != getattr(fresh, "version", None):
        return None, 0, 0
    return state, row[0], row[1]


def fold_into(state: Any, runs: Iterable[Run], events: Sequence[Event]) -> None:
    """Fold runs and events (each in journal order) into ``state``, merged by journal offset."""
    i = 0
    for run in runs:
        while i < len(events) and events[i].offset < run.offset:
            state.add_event(events[i])
            i += 1
        state.add_run(run)
    for event in events[i:]:
        state.add_event(event)
