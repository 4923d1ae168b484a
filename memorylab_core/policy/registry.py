"""Champion / challengers / lineages / failure clusters, derived from the folded runs.

Run-centric: two runs of one commit are two entries. The champion is the kept run with the lowest
val_bpb (ties go to the earlier run); a discarded or crashed run is never champion, nor is a replicate
(a rerun of a champion's code feeds its reference mean, it is not a new idea). Once the ledger holds
``champion_change`` events (written by ``run``, ``replicate`` and ``champion --rollback``; see
promotion.py), the champion is the run the latest event designates, unless a kept run logged after
that event has a lower val_bpb; the event also names the confirmed champion. Lineages follow
commit ancestry: a kept run extends the latest earlier kept run whose commit is its parent commit;
runs without git provenance (imported results.tsv rows) extend the latest earlier kept run of the
same branch and family, which is how upstream's single-branch loop builds on its last keep.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..evidence.crashes import is_bug_crash
from ..ledger import codec
from ..ledger.model import Event, Run
from ..novelty.guard import idea_key

CHALLENGERS = 5
LINEAGES = 5
CHAMPION_EVENT = "champion_change"
CLUSTER_RUN_IDS = 50  # run ids a failure cluster lists (its most recent); ``count`` has them all


def is_candidate(run: Run) -> bool:
    """A run that can hold the championship: kept, with a measured val_bpb, and not a replicate."""
    return run.status == "keep" and run.val_bpb is not None and not run.replicate_of


def is_measured(run: Run) -> bool:
    return run.status != "crash" and run.val_bpb is not None


def code_key(run: Run) -> str:
    """What makes two runs replicates: the same arena and the same train.py (fingerprint), else the same
    commit. Runs of one commit in two arenas measured different things: never one replicate group."""
    if run.code_fingerprint:
        return f"{run.arena}|fp:{run.code_fingerprint}"
    if run.commit:
        return f"{run.arena}|commit:{run.commit}"
    return "run:" + run.run_id


def is_evidence(run: Run) -> bool:
    """Whether a run may stand as evidence about an idea: not starved by a busy machine (validity)."""
    return run.validity != "confounded"


def counts_against_idea(run: Run) -> bool:
    """Whether a failed run is evidence against its idea: valid (not starved) and not a plain bug crash."""
    return is_evidence(run) and not is_bug_crash(run)


def cluster_key(arena: str, idea: str) -> str:
    """A failure cluster's key: failures of one idea in one arena (arenas never pool)."""
    return f"{arena}\x1f{idea}"


def takes_over(run: Run, current: Run | None) -> bool:
    """THE champion rule, run by run: a candidate beats the current champion with a lower val_bpb
    (ties stay with the earlier run). A ``champion_change`` event designating a candidate replaces the
    champion outright; later runs are then judged against it by this same rule."""
    return is_candidate(run) and (current is None or run.val_bpb < current.val_bpb)


def latest_champion_event(runs: Sequence[Run], events: Sequence[Event]) -> tuple[Event, Run] | None:
    """The latest ``champion_change`` event whose designated run is a candidate among ``runs``.

    ``events`` are the events on ``runs``' timeline: a caller asking about an earlier moment passes
    only the events logged by then.
    """
    by_id = None
    for event in reversed(events):
        if event.event_type != CHAMPION_EVENT:
            continue
        by_id = by_id if by_id is not None else {r.run_id: r for r in runs if is_candidate(r)}
        run = by_id.get(str(event.data.get("run_id")))
        if run is not None:
            return event, run
    return None


def champion(runs: Sequence[Run], events: Sequence[Event] = ()) -> Run | None:
    """The champion: the latest event's run unless a better kept run came after it; else the best kept run.

    ``runs``: in ledger order, any selection that holds every candidate (all runs, or a
    :class:`RegistryFold`'s ``notable`` runs); ``events``: see :func:`latest_champion_event`.
    """
    found = latest_champion_event(runs, events) if events else None
    best, start = (found[1], found[0].runs_before) if found else (None, 0)
    for run in runs:
        if run.index >= start and takes_over(run, best):
            best = run
    return best


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


@dataclass
class Lineage:
    """A chain of kept runs, root first."""

    runs: list[Run]

    @property
    def best(self) -> Run:
        return min(self.runs, key=lambda r: (r.val_bpb, r.index))

    @property
    def improvement(self) -> float:
        return self.runs[0].val_bpb - self.best.val_bpb

    def to_dict(self) -> dict:
        return {
            "root": self.runs[0].run_id,
            "tip": self.runs[-1].run_id,
            "length": len(self.runs),
            "start_val_bpb": self.runs[0].val_bpb,
            "best_val_bpb": self.best.val_bpb,
            "best_run_id": self.best.run_id,
            "improvement": round(self.improvement, 6),
            "chain": [{"run_id": r.run_id, "commit": r.short_commit, "val_bpb": r.val_bpb} for r in self.runs],
        }


def lineage_parents(runs: Sequence[Run]) -> dict[int, int]:
    """Map kept-run index → the kept run it extends (see module docstring)."""
    parents: dict[int, int] = {}
    last_by_commit: dict[str, int] = {}
    last_by_group: dict[tuple, int] = {}
    for run in runs:
        if not is_candidate(run):
            continue
        group = (run.branch, run.family, run.source if not run.commit else None)
        parent = last_by_commit.get(run.parent_commit or "") if run.parent_commit else None
        if parent is None and not run.parent_commit:
            parent = last_by_group.get(group)
        if parent is not None:
            parents[run.index] = parent
        if run.commit:
            last_by_commit[run.commit] = run.index
        last_by_group[group] = run.index
    return parents


def lineages(runs: Sequence[Run], n: int = LINEAGES) -> list[Lineage]:
    """The ``n`` lineages (root → leaf chains of kept runs) with the best val_bpb, best first."""
    parents = lineage_parents(runs)
    has_child = set(parents.values())
    by_index: dict[int, Run] = {}
    best_on_path: dict[int, tuple[float, int]] = {}  # best (val_bpb, index) from the root down to each run
    for run in runs:
        if is_candidate(run):
            by_index[run.index] = run
            parent = parents.get(run.index)
            rank = _rank(run)
            best_on_path[run.index] = rank if parent is None else min(rank, best_on_path[parent])
    leaves = [(best_on_path[i], order, i) for order, i in enumerate(by_index) if i not in has_child]
    chains = []
    for _, _, leaf in heapq.nsmallest(n, leaves):
        chain, cursor = [], leaf
        while cursor is not None:
            chain.append(by_index[cursor])
            cursor = parents.get(cursor)
        chains.append(Lineage(chain[::-1]))
    return chains


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
CREATE TABLE IF NOT EXISTS registry_notable (idx INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS registry_failures (key TEXT PRIMARY KEY, arena TEXT NOT NULL, count INTEGER NOT NULL,
    last_index INTEGER NOT NULL, last_crash INTEGER, data TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS registry_failures_count ON registry_failures(arena, count, last_index);
"""


class RegistryFold:
    """What the registry, the decision rules and the gain estimates read, folded run by run.

    ``notable``: in ledger order, every candidate plus every measured run whose code was measured more
    than once (a replicate group), which is all that :func:`champion`, :func:`challengers`,
    :func:`lineages` and the promotion estimates look at; failure clusters by idea key. Both grow with
    kept runs and ideas, not with the ledger, so views need not scan every run. Kept in the index's
    ``registry_*`` tables (or a private in-memory database); ``runs[i]`` gives the run with index i.
    """

    def __init__(self, runs: Sequence[Run], db: sqlite3.Connection | None = None) -> None:
        if db is None:  # a private fold; the store's index has these tables already
            db = sqlite3.connect(":memory:", isolation_level=None)
            db.executescript(REGISTRY_DDL)
        self.db = db
        self.runs = runs
        self._notable: list[Run] | None = None
        self._by_arena: dict[str, list[Run]] = {}  # notable_in, per arena, until the next mark
        self._clusters: dict[str, FailureCluster] = {}  # touched by this fold, written by flush()
        self._codes: dict[str, list | None] = {}  # code key -> [first run index, replicated?] (read or touched)
        self._marks: set[int] = set()  # runs that became notable in this fold

    @classmethod
    def of(cls, runs: Sequence[Run]) -> RegistryFold:
        """The fold of ``runs`` (ledger order, ``runs[i].index == i``) in a private database."""
        fold = cls(runs)
        for run in runs:
            fold.add(run)
        return fold

    def add(self, run: Run) -> None:
        """Fold ``run`` in; ``self.runs[i]`` must give the earlier run with index ``i``."""
        if run.status in ("discard", "crash") and counts_against_idea(run):
            key = run.idea_key or idea_key(run)
            if key:
                self._add_failure(cluster_key(run.arena, key), run)
        if not is_measured(run):
            return
        key = code_key(run)
        code = self._codes.get(key)
        if code is None:
            row = self.db.execute("SELECT first_idx, replicated FROM registry_codes WHERE key = ?", (key,)).fetchone()
            code = self._codes[key] = list(row) if row else None
        if code is None:
            self._codes[key] = [run.index, 0]
            if is_candidate(run):
                self._mark(run.index)
            return
        if not code[1]:
            code[1] = 1
            self._mark(code[0])
        self._mark(run.index)

    def _mark(self, index: int) -> None:
        self._marks.add(index)
        self._notable = None
        self._by_arena.clear()

    def _add_failure(self, key: str, run: Run) -> None:
        cluster = self._clusters.get(key) or self._stored_cluster(key) or FailureCluster(key)
        cluster.add(run)
        self._clusters[key] = cluster

    def flush(self) -> None:
        """Write the failure clusters this fold touched (every read of them flushes first)."""
        if self._codes:
            self.db.executemany("INSERT OR REPLACE INTO registry_codes(key, first_idx, replicated) VALUES (?, ?, ?)",
                                [(k, c[0], c[1]) for k, c in self._codes.items() if c is not None])
            self._codes.clear()
        if self._marks:
            self.db.executemany("INSERT OR IGNORE INTO registry_notable(idx) VALUES (?)", [(i,) for i in self._marks])
            self._marks.clear()
        if self._clusters:
            self.db.executemany("INSERT OR REPLACE INTO registry_failures(key, arena, count, last_index, last_crash, "
                                "data) VALUES (?, ?, ?, ?, ?, ?)",
                                [(c.key, c.arena, c.count, c.last_index, c.last_crash_index, codec.dumps(c))
                                 for c in self._clusters.values()])
            self._clusters.clear()

    @property
    def notable(self) -> list[Run]:
        if self._notable is None:
            self.flush()
            listed = getattr(self.runs, "listed_in", None)  # the index's RunTable: one join
            if listed is not None and self.runs.db is self.db:
                self._notable = listed("registry_notable")
            else:
                indexes = [r[0] for r in self.db.execute("SELECT idx FROM registry_notable ORDER BY idx")]
                self._notable = [self.runs[i] for i in indexes]
        return self._notable

    def notable_in(self, arena: str) -> list[Run]:
        """The notable runs of one arena, in ledger order (what that arena's champion and noise read)."""
        found = self._by_arena.get(arena)
        if found is None:
            self.flush()
            listed = getattr(self.runs, "listed_in", None)  # the index's RunTable: one join
            if listed is not None and self._has_runs():
                found = listed("registry_notable", arena)
            else:
                found = [r for r in self.notable if r.arena == arena]
            self._by_arena[arena] = found
        return found

    def _has_runs(self) -> bool:
        """Whether this fold's database holds the runs table (the store's index) to join with."""
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


def _cluster(data: str) -> FailureCluster | None:
    try:
        cluster = codec.loads(data, (FailureCluster,))
    except codec.CodecError:
        return None
    return cluster if isinstance(cluster, FailureCluster) else None


def _index(run: Run) -> int:
    return run.index


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
        "lineages": [lin.to_dict() for lin in lineages(runs)],
        "failure_clusters": [c.to_dict() for c in fold.clusters(arena=arena)],
    }


def snapshot(fold: RegistryFold, events: Sequence[Event], total_runs: int, arenas: Sequence[str],
             current: str | None = None, kept: Mapping[str, dict] | None = None) -> dict:
    """The registry as written to ``champion_challenger.json`` (derived; rewritten after each log).

    The top-level champion fields are the current arena's (``current``, else the first); ``arenas``
    holds every arena's standing, each apart. ``kept``: standings still true from the previous
    snapshot (arenas nothing was added to), reused instead of recomputed.
    """
    kept = kept or {}
    standings = {arena: kept.get(arena) or arena_standing(fold, events, arena) for arena in arenas}
    main = standings.get(current or "") or (standings[arenas[0]] if arenas else arena_standing(fold, events, ""))
    return {
        "generated_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "runs": total_runs,
        **{k: v for k, v in main.items()},
        "arenas": standings,
    }
