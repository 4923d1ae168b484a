"""Research memory: one incremental fold of the ledger behind ``insights``, ``guide`` and ``status``.

:class:`ResearchState` replays runs (and events) in ledger order. For each run it first works out
the :class:`Outcome` every view needs — its categories, the champion at the time, the gain, whether
it improved — and then hands that outcome to each sub-fold: the timeline (health), the category
book (insights), the mistake deck and the consolidator. The state is small (bounded lists and
per-category / per-class totals), so it is stored in the index (``folds`` table, tagged JSON) with
the number of runs and events it covers, and folded forward from the index's newer rows only:
``guide`` on a 100,000-run journal reads a few kilobytes of state, not the whole history. It is
derived; :func:`fold` over ``history.runs`` / ``history.events`` gives the same state (tested).

"Champion at the time" (the reference for gains) is the best kept val_bpb since the last kept
*baseline*: a re-baseline (new hardware, new config) starts a new epoch, since numbers before it are
not comparable with numbers after it.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar

from ..evidence.arenas import DEFAULT_ARENA, current_arena
from ..evidence.crashes import is_no_evidence_crash
from ..evidence.roles import Account, is_experiment
from ..index.journal_index import JournalIndex
from ..ledger.model import Event, Run
from ..ledger.store import Store
from ..novelty.categories import run_categories
from ..novelty.textnorm import strip_outcome_notes
from ..policy.registry import CHAMPION_EVENT, designated, is_candidate, is_evidence
from .consolidation import ClassStats, Consolidator
from .contradictions import ContradictionBook
from .folds import fold_into, load_fold
from .health import Breaker, Timeline
from .insights import CategoryBook, CategoryStats
from .mistakes import Card, MistakeDeck
from .progress import Velocity

STATE_VERSION = 16  # bump whenever the fold or its state changes: older stored folds are refolded
FAILED_IDEAS_KEPT = 100


@dataclass(slots=True)
class Outcome:
    """What one run means for the research memory (computed once, shared by every sub-fold)."""

    run: Run
    position: int  # experiment number: the run's place in the fold (0-based)
    categories: tuple[str, ...]
    ref_before: float | None  # champion at the time (since the last re-baseline), before this run
    ref_after: float | None
    gain: float | None  # ref_before − val_bpb: positive when the run beat the champion at the time
    attempt: bool  # an experiment (evidence.roles.is_experiment) that is not a baseline: counts for statistics
    improved: bool  # set a new reference (a new best, or a re-baseline)
    new_epoch: bool  # a kept baseline: the reference restarts here


def outcome_of(run: Run, position: int, reference: float | None) -> Outcome:
    """Classify one run against the reference before it."""
    baseline = run.role == "baseline"  # by structure (evidence/roles.py), never by a word in the description
    val = run.val_bpb
    measured_keep = is_candidate(run)
    new_epoch = measured_keep and (baseline or reference is None)
    improved = new_epoch or (measured_keep and val < reference)
    gain = None if baseline or val is None or reference is None else reference - val
    attempt = not baseline and is_experiment(run)
    return Outcome(run, position, run_categories(run) if attempt else (), reference,
                   val if improved else reference, gain, attempt, improved, new_epoch)


def idea_label(run: Run) -> str:
    """A short label of what a run changed: ``MATRIX_LR 0.04→0.05``, else its description."""
    parts = []
    for fact in run.change_signature:
        old, new = fact.get("old"), fact.get("new")
        if old is not None and new is not None and len(f"{old}{new}") <= 24:
            parts.append(f"{fact['name']} {old}→{new}")
        elif fact.get("name"):
            parts.append(f"{fact['name']} {fact.get('direction')}" + (f" {new}" if new is not None else ""))
    text = " + ".join(parts[:3]) if parts else " ".join(strip_outcome_notes(run.description).split())
    return text if len(text) <= 80 else text[:79] + "…"


@dataclass
class ResearchState:
    """The whole research memory as of ``runs`` folded runs (see the module docstring)."""

    version: int = STATE_VERSION
    timeline: Timeline = field(default_factory=Timeline)
    book: CategoryBook = field(default_factory=CategoryBook)
    deck: MistakeDeck = field(default_factory=MistakeDeck)
    consolidator: Consolidator = field(default_factory=Consolidator)
    failed_ideas: OrderedDict = field(default_factory=OrderedDict)  # label -> brief, most recent last
    corrupt_lines: int = 0
    arena: str = DEFAULT_ARENA  # the arena this state folds (one state per arena)
    velocity: Velocity = field(default_factory=Velocity)  # val_bpb gained per GPU-hour and per experiment
    contradictions: ContradictionBook = field(default_factory=ContradictionBook)  # kept here, failed there
    # The arena's runs by id, for champion events (set by fold / load_state for each command; not stored).
    find_run: ClassVar[Callable[[str], Run | None] | None] = None

    @property
    def runs(self) -> int:
        return self.timeline.runs

    def add_run(self, run: Run) -> Outcome:
        """Fold one run (ledger order).

        A confounded run (evidence/validity.py) is counted on the timeline but is evidence for nothing:
        no insight, mistake card, rule or failed idea. A bug crash (evidence/crashes.py) makes a mistake
        card about code, never evidence against the idea.
        """
        outcome = outcome_of(run, self.timeline.runs, self.timeline.reference)
        context = self.timeline.champion.run_id if self.timeline.champion is not None else None
        self.timeline.add(outcome)
        self.velocity.add(outcome, self.timeline.champion, outcome.attempt)
        if not is_evidence(run):
            self.consolidator.add(replace(outcome, attempt=False), self.timeline.runs, self.deck)
            return outcome
        if not is_no_evidence_crash(run):
            self.book.add(outcome)
        if outcome.attempt:
            self.contradictions.add(outcome, context, idea_label(run))
        self.deck.add(outcome)
        self.consolidator.add(outcome if not is_no_evidence_crash(run) else replace(outcome, attempt=False),
                              self.timeline.runs, self.deck)
        self._note_idea(outcome)
        return outcome

    def add_event(self, event: Event) -> None:
        """Fold one event (ledger order): breaker resets and champion changes matter here.

        A champion event moves the champion exactly when the registry says it does
        (``policy.registry.designated``): one naming a confounded run (an older store) changes nothing.
        """
        self.timeline.breaker_fold.add_event(event)  # resets and rollbacks, by the breaker's own rule
        if event.event_type == CHAMPION_EVENT and self.find_run is not None:
            run = designated(event, self.find_run)
            if run is not None:
                self.timeline.champion_event(run)
                self.velocity.champion_event(run)

    def _note_idea(self, outcome: Outcome) -> None:
        if not outcome.attempt:
            return
        run = outcome.run
        label = idea_label(run)
        if run.status == "keep":
            self.failed_ideas.pop(label, None)
            return
        if is_no_evidence_crash(run):  # a typo, an OOM or a killed machine says nothing about the idea
            return
        entry = self.failed_ideas.pop(label, None) or {"label": label, "count": 0}
        entry.update(count=entry["count"] + 1, status=run.status, run_id=run.run_id, position=outcome.position)
        self.failed_ideas[label] = entry
        while len(self.failed_ideas) > FAILED_IDEAS_KEPT:
            self.failed_ideas.popitem(last=False)


def fold(runs: Sequence[Run], events: Sequence[Event] = ()) -> ResearchState:
    """The research state of a folded history (runs and events merged by journal offset)."""
    state = ResearchState()
    state.find_run = {r.run_id: r for r in runs}.get
    state.consolidator.expect(len(runs))
    fold_into(state, runs, sorted(events, key=lambda e: e.offset))
    return state


# -- the stored fold: forward from the runs and events it covers ----------------------------------------

FOLD_NAME = "research"
_STATE_CLASSES = (ResearchState, Outcome, Timeline, Breaker, CategoryBook, CategoryStats, MistakeDeck, Card,
                  Consolidator, ClassStats, Run, Event, Velocity, Account,
                  ContradictionBook)


def load_state(store: Store, use_cache: bool = True, history: JournalIndex | None = None,
               arena: str | None = None) -> ResearchState:
    """The research state of one arena of ``store`` (the current arena when ``arena`` is None): the fold
    stored in its index plus the arena's runs and events since. Arenas never pool: each has its own fold.

    ``use_cache=False`` folds everything afresh (the stored fold must always equal that; tested).
    """
    if history is None:
        history = JournalIndex.load(store, use_cache=use_cache, quiet=True)
    else:
        history.refresh()  # the caller may have appended since it loaded (status --reset-breaker)
    arena = arena or current_arena(history, None, os.environ)

    def find_run(run_id: str) -> Run | None:  # an indexed lookup, only when a champion event is folded
        run = history.get(run_id)
        return run if run is not None and run.arena == arena else None

    def prepare(state: ResearchState, new_runs: int) -> None:
        state.consolidator.expect(state.runs + new_runs)
        state.corrupt_lines = len(history.corrupt)
        state.arena = arena
        state.find_run = find_run

    return load_fold(history, FOLD_NAME, arena, ResearchState, _STATE_CLASSES, use_cache, prepare)


MAX_SUMMARY_BYTES = 16 * 1024 * 1024


def curve_loader(store: Store):
    """A function run_id → the loss curve in the run's archived ``summary.json`` (None when absent)."""

    def load(run_id: str) -> list | None:
        data = store.read_run_json(run_id, "summary.json", MAX_SUMMARY_BYTES)
        curve = data.get("loss_curve") if isinstance(data, dict) else None
        return curve if isinstance(curve, list) else None

    return load
