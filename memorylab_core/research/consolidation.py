"""Consolidation: every N runs, distil "works" and "avoid" rules from the ledger so far.

Each run contributes to the change classes it made — its knob moves (``MATRIX_LR down``), else its
categories (``[attention]``). At the consolidation points (run counts N, 2N, 3N ...) the rules are
rebuilt from the running totals and then stay fixed until the next point, so the agent sees a
stable rule set that changes a few times a night, and a replay always yields the same rules:

* **works** — a class with a kept run, a keep rate at least the ledger's overall keep rate
  r̄ = (keeps + 1)/(attempts + 2), and a total gain of at least the noise band; ranked by total gain;
* **avoid** — a class that failed at least twice and was never kept, and mistake cards seen at least
  twice (a crash that keeps coming back); ranked by failures, then recency.

Every rule carries its provenance: the runs it rests on and the point it was made at.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..policy.decisions import NOISE_BAND
from .mistakes import MistakeDeck, move_labels

CONSOLIDATE_EVERY = 10
WORKS_MIN_GAIN = NOISE_BAND
AVOID_MIN_FAILURES = 2
CARD_MIN_SEEN = 2
RULES_PER_KIND = 8
RUN_IDS_KEPT = 5


@dataclass(slots=True)
class ClassStats:
    """Running totals of one change class."""

    name: str
    attempts: int = 0
    keeps: int = 0
    failures: int = 0
    positive_gain: float = 0.0
    last_position: int = -1
    keep_runs: list = field(default_factory=list)
    fail_runs: list = field(default_factory=list)

    def add(self, outcome) -> None:
        run = outcome.run
        self.attempts += 1
        self.last_position = outcome.position
        if run.status == "keep":
            self.keeps += 1
            self.positive_gain += max(outcome.gain or 0.0, 0.0)
            self.keep_runs = (self.keep_runs + [run.run_id])[-RUN_IDS_KEPT:]
        else:
            self.failures += 1
            self.fail_runs = (self.fail_runs + [run.run_id])[-RUN_IDS_KEPT:]


def change_classes(outcome) -> list[str]:
    """The classes one run counts towards: its knob moves, else its categories."""
    moves = move_labels(outcome.run)
    return moves[:3] if moves else [f"[{c}]" for c in outcome.categories]


@dataclass
class Consolidator:
    """The consolidation fold: class totals, plus the rules made at the latest point."""

    classes: dict[str, ClassStats] = field(default_factory=dict)
    rules: list[dict] = field(default_factory=list)
    point: int = 0  # run count of the latest consolidation (0: none yet)
    attempts: int = 0
    keeps: int = 0
    # A batch replay that knows its end skips points whose rules would be replaced before anyone reads
    # them (set by research.fold / load_state); the rules at the last point are the same either way.
    skip_before: int = 0

    def expect(self, runs_at_end: int) -> None:
        """A batch will end at ``runs_at_end`` runs: only its last consolidation point matters."""
        self.skip_before = runs_at_end - runs_at_end % CONSOLIDATE_EVERY

    def add(self, outcome, runs_folded: int, deck: MistakeDeck) -> None:
        """Fold one run; consolidate when ``runs_folded`` reaches a multiple of N."""
        if outcome.attempt:
            self.attempts += 1
            self.keeps += outcome.run.status == "keep"
            for name in change_classes(outcome):
                self.classes.setdefault(name, ClassStats(name)).add(outcome)
        if runs_folded % CONSOLIDATE_EVERY == 0 and runs_folded >= self.skip_before:
            self.rules = distill(self.classes.values(), deck, runs_folded, (self.keeps + 1) / (self.attempts + 2))
            self.point = runs_folded


def distill(classes, deck: MistakeDeck, point: int, keep_rate: float) -> list[dict]:
    """The works/avoid rules of the totals as they stand at run count ``point``.

    ``keep_rate``: the ledger's overall (Laplace-smoothed) keep rate; a class that works keeps at least as often.
    """
    works = [c for c in classes
             if c.keeps and c.keeps >= keep_rate * c.attempts and c.positive_gain >= WORKS_MIN_GAIN]
    works.sort(key=lambda c: (-c.positive_gain, -c.keeps, c.name))
    avoid = [c for c in classes if c.failures >= AVOID_MIN_FAILURES and not c.keeps]
    avoid.sort(key=lambda c: (-c.failures, -c.last_position, c.name))
    rules = [_works_rule(c, point) for c in works[:RULES_PER_KIND]]
    rules += [_avoid_rule(c, point) for c in avoid[:RULES_PER_KIND]]
    rules += _card_rules(deck, point, {c.name for c in avoid})
    return rules


def _works_rule(c: ClassStats, point: int) -> dict:
    text = f"works: {c.name} ({c.keeps}/{c.attempts} kept, total gain {c.positive_gain:.4f})"
    return {"kind": "works", "subject": c.name, "text": text, "keeps": c.keeps, "failures": c.failures,
            "total_gain": round(c.positive_gain, 6), "run_ids": list(c.keep_runs), "made_at_run": point}


def _avoid_rule(c: ClassStats, point: int) -> dict:
    text = f"avoid: {c.name} ({c.failures} failures, never kept)"
    return {"kind": "avoid", "subject": c.name, "text": text, "keeps": 0, "failures": c.failures,
            "total_gain": 0.0, "run_ids": list(c.fail_runs), "made_at_run": point}


def _card_rules(deck: MistakeDeck, point: int, covered: set[str]) -> list[dict]:
    """Avoid rules from crash cards seen at least twice (regressions are covered by class rules)."""
    out = []
    for card in deck.ranked(point - 1):
        if card["seen"] < CARD_MIN_SEEN or card["type"] == "regression" or card["change_class"] in covered:
            continue
        out.append({"kind": "avoid", "subject": card["change_class"],
                    "text": f"avoid: {card['lesson']} (seen {card['seen']}×)", "keeps": 0,
                    "failures": card["seen"], "total_gain": 0.0, "run_ids": card["run_ids"],
                    "made_at_run": point, "card": card["key"]})
    return out[:RULES_PER_KIND]
