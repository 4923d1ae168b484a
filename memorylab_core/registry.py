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

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .model import Event, Run
from .novelty import idea_key

CHALLENGERS = 5
LINEAGES = 5
CHAMPION_EVENT = "champion_change"


def is_candidate(run: Run) -> bool:
    """A run that can hold the championship: kept, with a measured val_bpb, and not a replicate."""
    return run.status == "keep" and run.val_bpb is not None and not run.replicate_of


def latest_champion_event(runs: Sequence[Run], events: Sequence[Event]) -> tuple[Event, Run] | None:
    """The latest ``champion_change`` event within ``runs``' timeline whose designated run is a candidate."""
    by_id = None
    for event in reversed(events):
        if event.event_type != CHAMPION_EVENT or event.runs_before > len(runs):
            continue
        by_id = by_id if by_id is not None else {r.run_id: r for r in runs}
        run = by_id.get(str(event.data.get("run_id")))
        if run is not None and is_candidate(run):
            return event, run
    return None


def champion(runs: Sequence[Run], events: Sequence[Event] = ()) -> Run | None:
    """The champion: the latest event's run unless a better kept run came after it; else the best kept run."""
    found = latest_champion_event(runs, events) if events else None
    best, start = (found[1], found[0].runs_before) if found else (None, 0)
    for run in runs[start:]:
        if is_candidate(run) and (best is None or run.val_bpb < best.val_bpb):
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
    ranked = sorted((r for r in runs if is_candidate(r) and r is not champ), key=lambda r: (r.val_bpb, r.index))
    return ranked[:n]


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
    chains = []
    for run in runs:
        if not is_candidate(run) or run.index in has_child:
            continue
        chain, cursor, seen = [], run.index, set()
        while cursor is not None and cursor not in seen:
            seen.add(cursor)
            chain.append(runs[cursor])
            cursor = parents.get(cursor)
        chains.append(Lineage(list(reversed(chain))))
    chains.sort(key=lambda lin: (lin.best.val_bpb, lin.best.index))
    return chains[:n]


@dataclass
class FailureCluster:
    """Failed runs (discard or crash) that tried the same idea."""

    key: str
    runs: list[Run] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.runs)

    def to_dict(self) -> dict:
        crashes = sum(1 for r in self.runs if r.status == "crash")
        return {
            "key": self.key,
            "count": self.count,
            "crashes": crashes,
            "discards": self.count - crashes,
            "run_ids": [r.run_id for r in self.runs],
            "example": self.runs[-1].description,
            "error_kinds": sorted({r.error_kind for r in self.runs if r.error_kind}),
            "last_seen": self.runs[-1].timestamp,
        }


def failure_clusters(runs: Sequence[Run], min_count: int = 2) -> list[FailureCluster]:
    """Groups of failed runs sharing an idea key, largest (then most recent) first."""
    groups: dict[str, FailureCluster] = {}
    for run in runs:
        if run.status in ("discard", "crash"):
            key = run.idea_key or idea_key(run)
            if key:
                groups.setdefault(key, FailureCluster(key)).runs.append(run)
    clusters = [c for c in groups.values() if c.count >= min_count]
    clusters.sort(key=lambda c: (-c.count, -c.runs[-1].index))
    return clusters


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


def snapshot(runs: Sequence[Run], events: Sequence[Event] = ()) -> dict:
    """The registry as written to ``champion_challenger.json`` (derived; rewritten after each log)."""
    return {
        "generated_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "runs": len(runs),
        "champion": run_brief(champion(runs, events)),
        "confirmed_champion": run_brief(confirmed_champion(runs, events)),
        "challengers": [run_brief(r) for r in challengers(runs, events=events)],
        "lineages": [lin.to_dict() for lin in lineages(runs)],
        "failure_clusters": [c.to_dict() for c in failure_clusters(runs)],
    }
