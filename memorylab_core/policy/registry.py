"""Champion / challengers / lineages / failure clusters, derived from the folded runs.

Run-centric: two runs of one commit are two entries. The champion is the kept run with the lowest
val_bpb (ties go to the earlier run); a discarded or crashed run is never champion, nor is a replicate
(a rerun of a champion's code feeds its reference mean, it is not a new idea). Once the ledger holds
``champion_change`` events (written by ``run``, ``replicate`` and ``champion --rollback``; see
promotion.py), the champion is the run the latest event designates, unless a kept run logged after
that event has a lower val_bpb; the event also names the confirmed champion. An event counts only
when the run it names is a candidate (:func:`designated`, also the research timeline's rule). Lineages follow
commit ancestry: a kept run extends the latest earlier kept run whose commit is its parent commit;
runs without git provenance (imported results.tsv rows) extend the latest earlier kept run of the
same branch and family, which is how upstream's single-branch loop builds on its last keep.
"""

from __future__ import annotations

import heapq
import json
import math
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import NamedTuple

from ..evidence.crashes import is_no_evidence_crash
from ..evidence.validity import NOT_EVIDENCE
from ..ledger import codec
from ..ledger.model import Event, Run
from ..novelty.guard import idea_key

CHALLENGERS = 5
LINEAGES = 5
CHAIN_STEPS = 50  # the newest steps of a lineage its document carries (``length`` counts them all)
CHAMPION_EVENT = "champion_change"
CLUSTER_RUN_IDS = 50  # run ids a failure cluster lists (its most recent); ``count`` has them all


def is_candidate(run: Run) -> bool:
    """A run that can hold the championship: kept, with a measured val_bpb, not a replicate, and not
    confounded (a starved run measured the machine: it is never champion, whatever its status says)."""
    return run.status == "keep" and run.val_bpb is not None and not run.replicate_of and is_evidence(run)


def is_measured(run: Run) -> bool:
    return run.status != "crash" and run.val_bpb is not None


def code_key(run: Run) -> str:
    """What makes two runs replicates: the same arena and the same train.py (fingerprint), else the same
    commit. Runs of one commit in two arenas measured different things: never one replicate group. An imported
    row has no fingerprint, and ledgers whose author never committed give every experiment one commit, so
    there the description must match too."""
    if run.code_fingerprint:
        return f"{run.arena}|fp:{run.code_fingerprint}"
    if run.commit and run.source.startswith("import"):
        return f"{run.arena}|commit:{run.commit}|{' '.join(run.description.lower().split())}"
    if run.commit:
        return f"{run.arena}|commit:{run.commit}"
    return "run:" + run.run_id


def is_evidence(run: Run) -> bool:
    """Whether a run may stand as evidence about an idea: not starved by a busy machine, and it ran
    (validity: not in :data:`~memorylab_core.evidence.validity.NOT_EVIDENCE`)."""
    return run.validity not in NOT_EVIDENCE


def counts_against_idea(run: Run) -> bool:
    """Whether a failed run is evidence against its idea: valid (not starved) and not a crash that is no evidence
    (a plain bug, out of memory, the machine: ``evidence.crashes``)."""
    return is_evidence(run) and not is_no_evidence_crash(run)


def cluster_key(arena: str, idea: str) -> str:
    """A failure cluster's key: failures of one idea in one arena (arenas never pool)."""
    return f"{arena}\x1f{idea}"


def takes_over(run: Run, current: Run | None) -> bool:
    """THE champion rule, run by run: a candidate beats the current champion with a lower val_bpb
    (ties stay with the earlier run). A ``champion_change`` event designating a candidate replaces the
    champion outright; later runs are then judged against it by this same rule."""
    return is_candidate(run) and (current is None or run.val_bpb < current.val_bpb)


def designated(event: Event, find: Callable[[str], Run | None]) -> Run | None:
    """THE champion-event rule: the run a ``champion_change`` event makes champion, or None when it changes
    nothing. ``find`` looks a run id up among the runs of the event's arena.

    The event counts only when the run it names (``run_id``) is a candidate (:func:`is_candidate`): an
    event naming a confounded run, a replicate, a discard or an unknown run is skipped, and the champion
    stays what the events and runs before it made it. Stores written before issue 24 hold events that
    name confounded runs; the registry and the research timeline both read them through this function.
    """
    if event.event_type != CHAMPION_EVENT:
        return None
    run = find(str(event.data.get("run_id") or ""))
    return run if run is not None and is_candidate(run) else None


def latest_champion_event(runs: Sequence[Run], events: Sequence[Event]) -> tuple[Event, Run] | None:
    """The latest ``champion_change`` event that designates a run among ``runs`` (:func:`designated`).

    ``events`` are the events on ``runs``' timeline: a caller asking about an earlier moment passes
    only the events logged by then.
    """
    by_id = None
    for event in reversed(events):
        if event.event_type != CHAMPION_EVENT:
            continue
        by_id = by_id if by_id is not None else {r.run_id: r for r in runs}
        run = designated(event, by_id.get)
        if run is not None:
            return event, run
    return None


def champion(runs: Sequence[Run], events: Sequence[Event] = ()) -> Run | None:
    """The champion: the latest event's run unless a better kept run came after it; else the best kept run.

    ``runs``: in ledger order, one arena's runs (all of them, or its :meth:`RegistryFold.notable_in`);
    ``events``: see :func:`latest_champion_event`.
    """
    found = latest_champion_event(runs, events) if events else None
    best, start = (found[1], found[0].runs_before) if found else (None, 0)
    for run in runs:
        if run.index >= start and takes_over(run, best):
            best = run
    return best


def champion_changes(runs: Sequence[Run], events: Sequence[Event] = ()) -> list[tuple[Run, Run]]:
    """Every change of champion in ``runs`` (one arena, ledger order) by the rules of :func:`champion`, in
    order: ``(the run after which it changed, the new champion)``. An event designates its run outright (the
    change falls after the last run before the event: a rollback names an older run); a run takes over by
    :func:`takes_over`. The last change's champion is :func:`champion`'s."""
    find = {r.run_id: r for r in runs}.get
    pending = sorted((e for e in events if e.event_type == CHAMPION_EVENT), key=lambda e: e.runs_before)
    out: list[tuple[Run, Run]] = []
    best, last, k = None, None, 0

    def apply_events(before: int) -> None:
        nonlocal best, k
        while k < len(pending) and pending[k].runs_before <= before:
            chosen = designated(pending[k], find)
            if chosen is not None and chosen is not best and last is not None:
                best = chosen
                out.append((last, chosen))
            k += 1

    for run in runs:
        apply_events(run.index)
        if takes_over(run, best):
            best = run
            out.append((run, run))
        last = run
    apply_events(math.inf)
    return out


def confirmed_champion(runs: Sequence[Run], events: Sequence[Event] = ()) -> Run | None:
    """The confirmed champion named by the latest champion event; without one, the first kept run (baseline)."""
    found = latest_champion_event(runs, events) if events else None
    if found is not None:
        wanted = str(found[0].data.get("confirmed_run_id") or "")
        confirmed = next((r for r in runs if r.run_id == wanted and is_candidate(r)), None)
        if confirmed is not None:
            return confirmed
    return next((r for r in runs if is_candidate(r)), None)


def challengers(runs: Sequence[Run], n: int = CHALLENGERS, events: Sequence[Event] = ()) -> list[Run]:
    """The best kept runs other than the champion, best first (ties: earlier first)."""
    champ = champion(runs, events)
    return heapq.nsmallest(n, (r for r in runs if is_candidate(r) and r is not champ), key=_rank)


def _rank(run: Run) -> tuple[float, int]:
    return run.val_bpb, run.index


class Step(NamedTuple):
    """One kept run on a lineage: what the views show of it (read from the index's columns, not decoded)."""

    index: int
    run_id: str
    commit: str | None
    val_bpb: float

    @property
    def short_commit(self) -> str:
        return (self.commit or "")[:7]


@dataclass
class Lineage:
    """A chain of kept runs (:class:`Run` or :class:`Step`): its newest :data:`CHAIN_STEPS` steps
    (``runs``, tip last), its root, its best run and how many runs it holds."""

    runs: list[Run | Step]
    root: Run | Step
    best: Run | Step
    length: int

    @classmethod
    def of(cls, chain: Sequence[Run | Step]) -> Lineage:
        """The lineage of a whole chain, root first."""
        return cls(list(chain[-CHAIN_STEPS:]), chain[0], min(chain, key=_rank), len(chain))

    def to_dict(self) -> dict:
        return {
            "root": self.root.run_id,
            "tip": self.runs[-1].run_id,
            "length": self.length,
            "start_val_bpb": self.root.val_bpb,
            "best_val_bpb": self.best.val_bpb,
            "best_run_id": self.best.run_id,
            "improvement": round(self.root.val_bpb - self.best.val_bpb, 6),
            "chain": [{"run_id": r.run_id, "commit": r.short_commit, "val_bpb": r.val_bpb} for r in self.runs],
        }


@dataclass(slots=True)
class FailureCluster:
    """Failed runs (discard or crash) that tried the same idea, tallied as they are folded."""

    key: str  # cluster_key(arena, idea)
    count: int = 0
    crashes: int = 0
    run_ids: list[str] = field(default_factory=list)  # the most recent CLUSTER_RUN_IDS
    example: str = ""
    error_kinds: set[str] = field(default_factory=set)
    last_seen: str | None = None
    last_index: int = -1
    last_crash_index: int | None = None  # decisions: "crashed again like ..."

    def add(self, run: Run) -> None:
        self.count += 1
        self.run_ids.append(run.run_id)
        del self.run_ids[:-CLUSTER_RUN_IDS]
        self.example, self.last_seen, self.last_index = run.description, run.timestamp, run.index
        if run.error_kind:
            self.error_kinds.add(run.error_kind)
        if run.status == "crash":
            self.crashes += 1
            self.last_crash_index = run.index

    @property
    def arena(self) -> str:
        return self.key.split("\x1f", 1)[0] if "\x1f" in self.key else ""

    @property
    def idea(self) -> str:
        return self.key.split("\x1f", 1)[-1]

    def to_dict(self) -> dict:
        return {
            "key": self.idea,
            "arena": self.arena,
            "count": self.count,
            "crashes": self.crashes,
            "discards": self.count - self.crashes,
            "run_ids": list(self.run_ids),
            "example": self.example,
            "error_kinds": sorted(self.error_kinds),
            "last_seen": self.last_seen,
        }


REGISTRY_DDL = """
CREATE TABLE IF NOT EXISTS registry_codes (key TEXT PRIMARY KEY, first_idx INTEGER NOT NULL,
    replicated INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS registry_notable (idx INTEGER PRIMARY KEY, arena TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS registry_notable_arena ON registry_notable(arena, idx);
CREATE TABLE IF NOT EXISTS registry_candidates (idx INTEGER PRIMARY KEY, arena TEXT NOT NULL, val REAL NOT NULL,
    parent INTEGER, best_val REAL NOT NULL, best_idx INTEGER NOT NULL, leaf INTEGER NOT NULL, depth INTEGER NOT NULL,
    root INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS registry_candidates_rank ON registry_candidates(arena, val, idx);
CREATE INDEX IF NOT EXISTS registry_candidates_leaves ON registry_candidates(arena, best_val, best_idx, idx)
    WHERE leaf = 1;
CREATE TABLE IF NOT EXISTS registry_heads (key TEXT PRIMARY KEY, idx INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS registry_champions (arena TEXT PRIMARY KEY, idx INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS registry_failures (key TEXT PRIMARY KEY, arena TEXT NOT NULL, count INTEGER NOT NULL,
    last_index INTEGER NOT NULL, last_crash INTEGER, data TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS registry_failures_count ON registry_failures(arena, count, last_index);
"""
_MAX_CODES = 250_000  # code keys a fresh fold keeps in memory (about 50 MB) before it looks them up
_EVENT_RUN_FIELDS = ("run_id", "confirmed_run_id", "prior_champion")  # the runs a champion event names


class RegistryFold:
    """What the registry, the decision rules and the gain estimates read, folded run by run and event by event.

    Three things, kept in the index's ``registry_*`` tables (or a private in-memory database):

    * **Notable runs** (``notable_in``): per arena, in ledger order, a selection that gives
      :func:`champion`, :func:`confirmed_champion` and :func:`challengers` -- now and at any earlier
      moment -- and the promotion estimates the same answers as every run of the arena would: every
      run that was ever champion (the champion line, folded with :func:`takes_over` and the champion
      events), every run a champion event names, every measured run whose code was measured more than
      once (the replicate groups that set the noise level), and the ``CHALLENGERS + 1`` best kept
      runs. It grows with champion changes and replicates, not with the ledger or the kept runs.
    * **Lineages** (``lineages``): each kept run's parent (see the module docstring), the best run on
      its path from the root and whether it is a leaf, so the best lineages are one indexed query.
    * **Failure clusters** by arena and idea key.

    ``runs[i]`` gives the run with index i (a list, or the index's RunTable). A champion event counts
    for the run it names when that run was logged before it (what ``run``, ``replicate`` and
    ``champion --rollback`` write).
    """

    def __init__(self, runs: Sequence[Run], db: sqlite3.Connection | None = None) -> None:
        if db is None:  # a private fold; the store's index has these tables already
            db = sqlite3.connect(":memory:", isolation_level=None)
            db.executescript(REGISTRY_DDL)
        self.db = db
        self.runs = runs
        self._by_arena: dict[str, list[Run]] = {}  # notable_in, per arena, until the next change
        self._clusters: dict[str, FailureCluster] = {}  # touched by this fold, written by flush()
        self._codes: dict[str, list | None] = {}  # code key -> [first run index, replicated?] (read or touched)
        self._dirty_codes: set[str] = set()
        # While the codes table is empty at the start (a fresh fold), every code key is in memory:
        # an unknown key needs no lookup. Past _MAX_CODES keys the memory is given up again.
        self._all_codes = db.execute("SELECT NOT EXISTS (SELECT 1 FROM registry_codes)").fetchone()[0] == 1
        self._marks: dict[int, str] = {}  # runs that became notable in this fold -> their arena
        # idx -> [arena, val, parent, best_val, best_idx, leaf, depth, root] (read or touched)
        self._candidates: dict[int, list] = {}
        self._heads: dict[str, int | None] = {}  # lineage heads (read or touched), see _lineage_heads
        self._champions: dict[str, int | None] = {}  # arena -> champion run index (read or touched)
        self._ids: dict[str, int] = {}  # run id -> index of the latest candidate with it, folded here

    @classmethod
    def of(cls, runs: Sequence[Run], events: Sequence[Event] = ()) -> RegistryFold:
        """The fold of ``runs`` (ledger order, ``runs[i].index == i``) and their ``events``, in a private
        database."""
        fold = cls(runs)
        pending = sorted(events, key=lambda e: (e.runs_before, e.index))
        at = 0
        for run in runs:
            while at < len(pending) and pending[at].runs_before <= run.index:
                fold.add_event(pending[at])
                at += 1
            fold.add(run)
        for event in pending[at:]:
            fold.add_event(event)
        return fold

    def add(self, run: Run) -> None:
        """Fold ``run`` in; ``self.runs[i]`` must give the earlier run with index ``i``."""
        if run.status in ("discard", "crash") and counts_against_idea(run):
            key = run.idea_key or idea_key(run)
            if key:
                self._add_failure(cluster_key(run.arena, key), run)
        if not is_measured(run):
            return
        if is_candidate(run):
            self._add_candidate(run)
        key = code_key(run)
        code = self._codes.get(key)
        if code is None and not self._all_codes:
            row = self.db.execute("SELECT first_idx, replicated FROM registry_codes WHERE key = ?", (key,)).fetchone()
            code = self._codes[key] = list(row) if row else None
        if code is None:
            self._codes[key] = [run.index, 0]
            self._dirty_codes.add(key)
            return
        if not code[1]:
            code[1] = 1
            self._dirty_codes.add(key)
            self._mark(code[0], run.arena)  # same code key, same arena
        self._mark(run.index, run.arena)

    def add_event(self, event: Event) -> None:
        """Fold a journal event in: a champion event makes the candidate it names champion of its arena."""
        if event.event_type != CHAMPION_EVENT:
            return
        for name in _EVENT_RUN_FIELDS:
            run = self._candidate_named(event.data.get(name))
            if run is not None:
                self._mark(run.index, run.arena)
        champ = designated(event, self._candidate_named)
        if champ is not None:
            self._champions[champ.arena] = champ.index

    def _add_candidate(self, run: Run) -> None:
        arena = run.arena
        self._ids[run.run_id] = run.index
        current = self._champion_index(arena)
        if takes_over(run, self.runs[current] if current is not None else None):
            self._champions[arena] = run.index
            self._mark(run.index, arena)
        by_commit, by_group = _lineage_heads(run)
        parent = self._head(by_commit) if run.parent_commit else self._head(by_group)
        best, depth, root = (run.val_bpb, run.index), 0, run.index
        if parent is not None:
            above = self._candidate_row(parent)
            above[5] = 0
            best, depth, root = min(best, (above[3], above[4])), above[6] + 1, above[7]
        self._candidates[run.index] = [arena, run.val_bpb, parent, best[0], best[1], 1, depth, root]
        if run.commit:
            self._heads[_commit_head(arena, run.commit)] = run.index
        self._heads[by_group] = run.index
        self._by_arena.pop(arena, None)

    def _champion_index(self, arena: str) -> int | None:
        if arena not in self._champions:
            row = self.db.execute("SELECT idx FROM registry_champions WHERE arena = ?", (arena,)).fetchone()
            self._champions[arena] = row[0] if row else None
        return self._champions[arena]

    def _head(self, key: str | None) -> int | None:
        if key is None:
            return None
        if key not in self._heads:
            row = self.db.execute("SELECT idx FROM registry_heads WHERE key = ?", (key,)).fetchone()
            self._heads[key] = row[0] if row else None
        return self._heads[key]

    def _candidate_row(self, index: int) -> list:
        row = self._candidates.get(index)
        if row is None:
            found = self.db.execute("SELECT arena, val, parent, best_val, best_idx, leaf, depth, root "
                                    "FROM registry_candidates WHERE idx = ?", (index,)).fetchone()
            row = self._candidates[index] = list(found)
        return row

    def _candidate_named(self, run_id) -> Run | None:
        """The latest candidate logged so far with id ``run_id`` (None when there is none)."""
        if not isinstance(run_id, str) or not run_id:
            return None
        index = self._ids.get(run_id)
        if index is not None:
            return self.runs[index]
        if not self._has_runs():
            return None
        rows = self.db.execute("SELECT idx FROM runs WHERE run_id = ? ORDER BY idx DESC", (run_id,))
        return next((run for run in self._take([r[0] for r in rows]) if is_candidate(run)), None)

    def _mark(self, index: int, arena: str) -> None:
        self._marks[index] = arena
        self._by_arena.pop(arena, None)

    def _add_failure(self, key: str, run: Run) -> None:
        cluster = self._clusters.get(key) or self._stored_cluster(key) or FailureCluster(key)
        cluster.add(run)
        self._clusters[key] = cluster

    def flush(self) -> None:
        """Write what this fold touched (every read flushes first)."""
        db = self.db
        if self._dirty_codes:
            db.executemany("INSERT OR REPLACE INTO registry_codes(key, first_idx, replicated) VALUES (?, ?, ?)",
                           [(k, *self._codes[k]) for k in self._dirty_codes])
            self._dirty_codes.clear()
        if not self._all_codes or len(self._codes) > _MAX_CODES:
            self._all_codes = False
            self._codes.clear()
        if self._marks:
            db.executemany("INSERT OR IGNORE INTO registry_notable(idx, arena) VALUES (?, ?)", self._marks.items())
            self._marks.clear()
        if self._candidates:
            db.executemany("INSERT OR REPLACE INTO registry_candidates(idx, arena, val, parent, best_val, best_idx, "
                           "leaf, depth, root) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [(i, *row) for i, row in self._candidates.items()])
            self._candidates.clear()
        for table, items in (("registry_heads(key", self._heads), ("registry_champions(arena", self._champions)):
            rows = [(k, i) for k, i in items.items() if i is not None]
            if rows:
                db.executemany(f"INSERT OR REPLACE INTO {table}, idx) VALUES (?, ?)", rows)
            items.clear()
        if self._clusters:
            db.executemany("INSERT OR REPLACE INTO registry_failures(key, arena, count, last_index, last_crash, "
                           "data) VALUES (?, ?, ?, ?, ?, ?)",
                           [(c.key, c.arena, c.count, c.last_index, c.last_crash_index, codec.dumps(c))
                            for c in self._clusters.values()])
            self._clusters.clear()

    def notable_in(self, arena: str) -> list[Run]:
        """The notable runs of one arena, in ledger order (what that arena's champion and noise read)."""
        found = self._by_arena.get(arena)
        if found is None:
            self.flush()
            marked = self.db.execute("SELECT idx FROM registry_notable WHERE arena = ?", (arena,))
            best = self.db.execute("SELECT idx FROM registry_candidates WHERE arena = ? ORDER BY val, idx LIMIT ?",
                                   (arena, CHALLENGERS + 1))
            found = self._take(sorted({r[0] for r in marked} | {r[0] for r in best}))
            self._by_arena[arena] = found
        return found

    def lineages(self, arena: str, n: int = LINEAGES) -> list[Lineage]:
        """The ``n`` lineages (root → leaf chains of kept runs) of ``arena`` with the best val_bpb on them,
        best first (ties: the earlier best run, then the earlier leaf)."""
        self.flush()
        leaves = self.db.execute(
            "SELECT idx, best_idx, depth, root FROM registry_candidates WHERE arena = ? AND leaf = 1 "
            "ORDER BY best_val, best_idx, idx LIMIT ?", (arena, n)).fetchall()
        tail = ("WITH RECURSIVE up(idx, parent, depth) AS (SELECT idx, parent, 0 FROM registry_candidates "
                "WHERE idx = ? UNION ALL SELECT c.idx, c.parent, up.depth + 1 FROM registry_candidates c "
                "JOIN up ON c.idx = up.parent WHERE up.depth < ?) SELECT idx FROM up ORDER BY depth DESC")
        chains = []
        for leaf, best, depth, root in leaves:  # the newest steps, the root and the best: what a lineage shows
            path = [r[0] for r in self.db.execute(tail, (leaf, CHAIN_STEPS - 1))]
            steps = self._steps([root, best, *path])
            chains.append(Lineage(steps[2:], steps[0], steps[1], depth + 1))
        return chains

    def _steps(self, indexes: list[int]) -> list[Run | Step]:
        """The runs at ``indexes`` as lineage steps: the index's columns where there is one (nothing decoded)."""
        if not self._has_runs():
            return [self.runs[i] for i in indexes]
        marks = ",".join("?" * len(set(indexes)))
        found = {row[0]: Step(*row) for row in self.db.execute(
            f"SELECT idx, run_id, commit_sha, val_bpb FROM runs WHERE idx IN ({marks})", sorted(set(indexes)))}
        return [found[i] for i in indexes]

    def _take(self, indexes: list[int]) -> list[Run]:
        take = getattr(self.runs, "take", None)  # the index's RunTable: batched reads
        return take(indexes) if take is not None else [self.runs[i] for i in indexes]

    def _has_runs(self) -> bool:
        """Whether this fold's database holds the runs table (the store's index) to look runs up in."""
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone() \
            is not None

    def cluster(self, key: str) -> FailureCluster | None:
        self.flush()
        return self._stored_cluster(key)

    def _stored_cluster(self, key: str) -> FailureCluster | None:
        row = self.db.execute("SELECT data FROM registry_failures WHERE key = ?", (key,)).fetchone()
        return _cluster(row[0]) if row else None

    def clusters(self, min_count: int = 2, limit: int | None = None, arena: str | None = None) -> list[FailureCluster]:
        """Clusters of at least ``min_count`` failed runs (of ``arena``; every arena's when None), largest
        (then most recent) first."""
        self.flush()
        where, params = ("arena = ? AND ", (arena,)) if arena is not None else ("", ())
        rows = self.db.execute(f"SELECT data FROM registry_failures WHERE {where}count >= ? ORDER BY count DESC, "
                               "last_index DESC LIMIT ?", (*params, min_count, -1 if limit is None else limit))
        return [c for c in (_cluster(r[0]) for r in rows) if c is not None]

    def crash_like(self, key: str | None, arena: str | None = None) -> Run | None:
        """The latest crash of the idea ``key`` (a :func:`cluster_key`, or an idea key with its ``arena``)."""
        self.flush()
        if arena is not None and key:
            key = cluster_key(arena, key)
        row = self.db.execute("SELECT last_crash FROM registry_failures WHERE key = ?", (key or "",)).fetchone()
        return self.runs[row[0]] if row and row[0] is not None and 0 <= row[0] < len(self.runs) else None


def _lineage_heads(run: Run) -> tuple[str | None, str]:
    """The lineage head keys ``run`` extends: its parent commit's latest kept run (None without a parent
    commit), and its group's -- runs without git provenance extend the latest kept run of their branch
    and family (and source)."""
    group = json.dumps(["group", run.arena, run.branch, run.family, run.source if not run.commit else None])
    return (_commit_head(run.arena, run.parent_commit) if run.parent_commit else None), group


def _commit_head(arena: str, commit: str) -> str:
    return json.dumps(["commit", arena, commit])


def _cluster(data: str) -> FailureCluster | None:
    try:
        cluster = codec.loads(data, (FailureCluster,))
    except codec.CodecError:
        return None
    return cluster if isinstance(cluster, FailureCluster) else None


def run_brief(run: Run | None) -> dict | None:
    """The few fields of a run that registry views and packets show."""
    if run is None:
        return None
    return {
        "run_id": run.run_id,
        "commit": run.commit,
        "branch": run.branch,
        "val_bpb": run.val_bpb,
        "memory_gb": run.memory_gb,
        "description": run.description,
        "timestamp_utc": run.timestamp,
    }


def arena_standing(fold: RegistryFold, events: Sequence[Event], arena: str) -> dict:
    """One arena's registry: champion, confirmed champion, challengers, lineages and failure clusters."""
    runs = fold.notable_in(arena)
    return {
        "arena": arena,
        "champion": run_brief(champion(runs, events)),
        "confirmed_champion": run_brief(confirmed_champion(runs, events)),
        "challengers": [run_brief(r) for r in challengers(runs, events=events)],
        "lineages": [lin.to_dict() for lin in fold.lineages(arena)],
        "failure_clusters": [c.to_dict() for c in fold.clusters(arena=arena)],
    }


def snapshot(fold: RegistryFold, events: Sequence[Event], total_runs: int, arenas: Sequence[str],
             current: str | None = None) -> dict:
    """The registry as written to ``champion_challenger.json`` (derived; rewritten after each log).

    The top-level champion fields are the current arena's (``current``, else the first); ``arenas``
    holds every arena's standing, each apart.
    """
    standings = {arena: arena_standing(fold, events, arena) for arena in arenas}
    main = standings.get(current or "") or (standings[arenas[0]] if arenas else arena_standing(fold, events, ""))
    return {
        "generated_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "runs": total_runs,
        **{k: v for k, v in main.items()},
        "arenas": standings,
    }
