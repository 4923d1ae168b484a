"""Mistake cards: lessons from crashes and clearly bad runs, so the agent does not repeat them.

A card says what went wrong (its *type*), which change caused it, the evidence (error summary or
the val_bpb regression), a one-line lesson, how often it was seen and when first and last. Cards
are de-duplicated by key — the type plus the change class (knob and direction, else the
categories); syntax and import errors are about the edit, not the idea, so each is one card.

The deck is bounded (``MAX_CARDS``), but a new lesson always gets in: when the deck is full the
*stalest* card (seen longest ago, in experiments) is evicted. Cards are ranked by a recency-weighted
score Σ λ_c^(experiments since each sighting), so a card seen often and recently ranks first and an
old one fades however often it was once seen. Everything is replayed from the ledger (deterministic).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..evidence.crashes import crash_class, crash_kind, stated_crash_kind
from ..ledger.model import GAIN_SIGN
from ..policy.decisions import NOISE_BAND

MAX_CARDS = 20
RECENCY_DECAY = 0.95  # λ_c per experiment: a sighting 14 experiments ago weighs ≈ 0.5
REGRESSION_BAND = 5 * NOISE_BAND  # a discard this much worse than the champion is a lesson, not noise
EVIDENCE_CHARS = 200
RUN_IDS_KEPT = 5

# crash kind (evidence.crashes.crash_kind) → card type
CRASH_TYPES = {"oom": "oom", "nan": "nan", "timeout": "time_budget", "syntax": "syntax", "import": "import",
               "name": "name", "shape": "shape", "assertion": "assertion"}
TYPE_TITLES = {
    "oom": "out of memory", "nan": "NaN / divergence", "time_budget": "time budget exceeded",
    "syntax": "compile / syntax error", "import": "import error", "name": "undefined name",
    "shape": "shape error", "assertion": "assertion failed", "crash": "runtime error", "regression": "regression",
}
# Types about the edit rather than the idea: one card each, whatever the change was.
EDIT_TYPES = frozenset({"syntax", "import", "name"})
LESSONS = {
    "oom": "{change} ran out of memory: lower DEVICE_BATCH_SIZE (keep TOTAL_BATCH_SIZE) or shrink it",
    "nan": "{change} diverged: take a smaller step (lower LR, add warmup) and keep softcap / QK-norm",
    "time_budget": "{change} overran the time budget: a change must pay for itself within the budget",
    "syntax": "an edit did not compile: run `python -m py_compile train.py` before training",
    "import": "an import failed: use only packages already installed",
    "name": "an edit used a name it never defined (NameError / AttributeError): check renamed or removed names",
    "shape": "{change} broke tensor shapes: keep model_dim = n_head × head_dim and MLP in/out consistent",
    "assertion": "{change} broke an assert of train.py: keep the config consistent (n_embd divisible by n_head)",
    "crash": "{change} crashed: read the log tail, fix the bug or drop the idea",
    "regression": "{change} made val_bpb worse by {loss:.4f}: do not repeat it in the same direction",
}


def change_class(run, categories: tuple[str, ...]) -> str:
    """A short, stable name for the kind of change: knob moves, else categories, else 'unclassified'."""
    moves = move_labels(run)
    if moves:
        return " + ".join(moves[:3])
    if categories:
        return " + ".join(f"[{c}]" for c in categories[:3])
    return "unclassified change"


def move_labels(run) -> list[str]:
    """The run's knob moves as sorted labels: ``MATRIX_LR up``, ``SOFTCAP removed``, ``ACTIVATION=silu``."""
    return sorted({move_label(fact) for fact in run.change_signature if fact.get("name")})


def move_label(fact: dict) -> str:
    """One change fact as a label (a categorical value is named, a numeric move by its direction)."""
    direction = fact.get("direction") or "changed"
    new = fact.get("new")
    if direction == "changed" and isinstance(new, (str, int, float)) and len(str(new)) <= 16:
        return f"{fact['name']}={new}"
    return f"{fact['name']} {direction}"


def card_type(run, gain: float | None) -> str | None:
    """The card type of a run, or None when the run teaches nothing (kept, noise, interrupted)."""
    if run.status == "crash":
        if crash_class(run.error_kind, run.error_summary) == "infra":
            return None  # the machine or the operator stopped it: no lesson about code or idea
        return CRASH_TYPES.get(crash_kind(run.error_kind, run.error_summary), "crash")
    if run.status == "discard" and gain is not None and -gain > REGRESSION_BAND:
        return "regression"
    return None


@dataclass(slots=True)
class Card:
    """One lesson. ``score`` is the recency-weighted sighting count as of ``last_position``."""

    key: str
    type: str
    change_class: str
    change: str
    evidence: str
    lesson: str
    seen: int
    first_seen: dict
    last_seen: dict
    run_ids: list[str]
    score: float = 1.0

    @property
    def last_position(self) -> int:
        return self.last_seen["position"]

    def score_at(self, position: int) -> float:
        """The recency-weighted score as of experiment ``position``."""
        return self.score * RECENCY_DECAY ** max(position - self.last_position, 0)

    def to_dict(self, position: int) -> dict:
        return {"key": self.key, "type": self.type, "title": TYPE_TITLES[self.type],
                "change_class": self.change_class, "change": self.change, "evidence": self.evidence,
                "lesson": self.lesson, "seen": self.seen, "first_seen": self.first_seen,
                "last_seen": self.last_seen, "run_ids": list(self.run_ids),
                "score": round(self.score_at(position), 4)}


@dataclass
class MistakeDeck:
    """The mistake-card fold."""

    cards: dict[str, Card] = field(default_factory=dict)
    evicted: int = 0

    def add(self, outcome) -> Card | None:
        """Fold one run; returns the card it created or updated (None when it teaches nothing)."""
        run = outcome.run
        kind = card_type(run, outcome.gain)
        if kind is None:
            return None
        cls = change_class(run, outcome.categories)
        key = kind if kind in EDIT_TYPES else f"{kind}|{cls}"
        sighting = {"run_id": run.run_id, "position": outcome.position, "timestamp_utc": run.timestamp}
        evidence = _evidence(run, outcome)
        card = self.cards.get(key)
        if card is None:
            self._make_room()
            card = Card(key, kind, cls, run.description, evidence, _lesson(kind, cls, outcome.gain), 0,
                        sighting, sighting, [])
            self.cards[key] = card
        else:
            card.score = card.score_at(outcome.position) + 1.0
            card.change, card.evidence = run.description, evidence
            card.lesson = _lesson(kind, cls, outcome.gain)
        card.seen += 1
        card.last_seen = sighting
        card.run_ids = (card.run_ids + [run.run_id])[-RUN_IDS_KEPT:]
        return card

    def _make_room(self) -> None:
        """Evict the stalest card when full, so a new lesson is never locked out."""
        if len(self.cards) < MAX_CARDS:
            return
        stalest = min(self.cards.values(), key=lambda c: (c.last_position, c.seen, c.key))
        del self.cards[stalest.key]
        self.evicted += 1

    def ranked(self, position: int, limit: int | None = None) -> list[dict]:
        """Cards by recency-weighted score (then most recent), as of experiment ``position``."""
        order = sorted(self.cards.values(), key=lambda c: (-c.score_at(position), -c.last_position, c.key))
        return [c.to_dict(position) for c in order[:limit]]


def _evidence(run, outcome) -> str:
    if run.status == "crash":
        kind = stated_crash_kind(run.error_kind, run.error_summary, run.description)
        text = run.error_summary or (f"crash ({kind})" if kind else f"crash: {run.description}")
    else:
        text = (f"val_bpb {run.val_bpb:.6f} vs champion {outcome.ref_before:.6f} "
                f"(gain {outcome.gain:+.6f}, {GAIN_SIGN})")
    flat = " ".join(str(text).split())
    return flat if len(flat) <= EVIDENCE_CHARS else flat[: EVIDENCE_CHARS - 1] + "…"


def _lesson(kind: str, cls: str, gain: float | None) -> str:
    return LESSONS[kind].format(change=cls, loss=-(gain or 0.0))
