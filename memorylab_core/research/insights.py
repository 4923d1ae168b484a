"""Per-category outcome statistics: what kinds of change pay off, and which are dead ends.

Everything here is a replay of the ledger in order (see :mod:`memorylab_core.research`): each run
that is an *attempt* (not a baseline, not an operator interrupt) updates the statistics of each of
its categories. Because the numbers are rebuilt from the ledger, asking twice gives the same answer:
nothing is decayed or mutated by reading. The formulas and constants are documented in
``docs/insights.md``; in short:

* **gain** of a run = champion-at-the-time val_bpb − the run's val_bpb (positive = better);
* **smoothed keep probability** p = (keeps + S·r̄) / (attempts + S), a Beta prior of strength S
  centred on the ledger's overall keep rate r̄;
* **expected gain per attempt** E = p · ĝ, with ĝ the category's mean positive keep gain shrunk
  towards the ledger-wide mean ḡ;
* **association weight** w ← W·tanh((w·λ^Δ + η·s) / W), where s ∈ [−1, 1] is a bounded signal of
  the run's outcome and Δ the experiments since the category's last update (decay per experiment,
  never per hour);
* **promising score** = E·(1 + w/W) + an exploration bonus for under-tried categories.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from ..evidence.crashes import crash_class
from ..ledger.model import CATEGORIES
from ..policy.decisions import NOISE_BAND

# Signal and weight (association) constants.
GAIN_SCALE = 5 * NOISE_BAND  # a gain of this size gives tanh(1) ≈ 0.76 of the full keep signal
WEIGHT_MAX = 2.0  # W: weights live in (−W, W)
LEARNING_RATE = 0.5  # η: one run moves a weight by at most ≈ η
DECAY = 0.99  # λ per experiment: half-life ≈ 69 experiments (about a night of runs)

# Keep-probability prior and ranking constants.
PRIOR_STRENGTH = 4.0  # S: pseudo-attempts of the Beta prior
GAIN_PRIOR_WEIGHT = 1.0  # M: pseudo-keeps pulling a category's mean gain towards the global one
EXPLORATION = 1.0  # C: weight of the exploration bonus
DEAD_END_MIN_ATTEMPTS = 4
DEAD_END_GAIN_FRACTION = 0.5  # dead when E ≤ this fraction of the ledger-wide expected gain
NEAR_MISSES_KEPT = 12
SURPRISES_KEPT = 12
SURPRISE_LOW_P = 0.2  # a keep in a category this unlikely to keep is a surprise
SURPRISE_HIGH_P = 0.6  # a failure in a category this likely to keep is a surprise
SURPRISE_MIN_ATTEMPTS = 3
SURPRISE_GAIN_MULTIPLE = 3.0  # a keep gaining this many times the mean keep gain so far


def outcome_signal(status: str, gain: float | None, error_kind: str | None = None) -> float:
    """The bounded learning signal s ∈ [−1, 1] of one run (one broken run cannot pin a weight).

    keep: 0.25 + 0.75·tanh(max(gain, 0)/G); discard: −0.25 − 0.5·tanh(max(−gain, 0)/G);
    crash: −0.75 when the idea failed (NaN, time budget: ``evidence.crashes`` class ``fundamental``), −0.5
    for an unexplained error (a crash that is no evidence against its idea never reaches this book).
    """
    if status == "keep":
        return 0.25 + 0.75 * math.tanh(max(gain or 0.0, 0.0) / GAIN_SCALE)
    if status == "discard":
        return -0.25 - 0.5 * math.tanh(max(-(gain or 0.0), 0.0) / GAIN_SCALE)
    return -0.75 if crash_class(error_kind) == "fundamental" else -0.5


def decayed(weight: float, since: int) -> float:
    """``weight`` after ``since`` more experiments (λ^Δ; Δ ≤ 0 leaves it as it is)."""
    return weight * DECAY ** max(since, 0)


def update_weight(weight: float, signal: float, since: int = 0) -> float:
    """w ← W·tanh((w·λ^Δ + η·s)/W): soft-capped, so no run or streak can push |w| past W."""
    return WEIGHT_MAX * math.tanh((decayed(weight, since) + LEARNING_RATE * signal) / WEIGHT_MAX)


def keep_probability(keeps: int, attempts: int, prior_rate: float) -> float:
    """Posterior mean of a Beta(S·r̄, S·(1−r̄)) prior after ``keeps`` out of ``attempts``."""
    return (keeps + PRIOR_STRENGTH * prior_rate) / (attempts + PRIOR_STRENGTH)


def shrunk_gain(positive_gain_sum: float, gains: int, global_mean: float) -> float:
    """Mean positive keep gain, shrunk towards the ledger-wide mean by M pseudo-keeps."""
    return (positive_gain_sum + GAIN_PRIOR_WEIGHT * global_mean) / (gains + GAIN_PRIOR_WEIGHT)


def exploration_bonus(attempts: int, total_attempts: int, unit: float) -> float:
    """C·unit·sqrt(ln(N+1)/(n+1)): large for categories tried rarely compared with the rest (UCB-style)."""
    return EXPLORATION * unit * math.sqrt(math.log(total_attempts + 1) / (attempts + 1))


@dataclass(slots=True)
class CategoryStats:
    """Running totals of one category."""

    name: str
    attempts: int = 0
    keeps: int = 0
    discards: int = 0
    crashes: int = 0
    gains: int = 0  # keeps with a measured gain
    gain_sum: float = 0.0
    positive_gain_sum: float = 0.0
    best_gain: float | None = None
    best_run_id: str | None = None
    near_misses: int = 0
    last_position: int | None = None
    last_run_id: str | None = None
    last_timestamp: str | None = None
    weight: float = 0.0
    weight_position: int = 0  # experiment number at which ``weight`` was last updated

    def add(self, position: int, run, gain: float | None, signal: float, near_miss: bool) -> None:
        """Fold one attempt of this category."""
        self.attempts += 1
        if run.status == "keep":
            self.keeps += 1
            if gain is not None:
                self.gains += 1
                self.gain_sum += gain
                self.positive_gain_sum += max(gain, 0.0)
                if self.best_gain is None or gain > self.best_gain:
                    self.best_gain, self.best_run_id = gain, run.run_id
        elif run.status == "crash":
            self.crashes += 1
        else:
            self.discards += 1
        self.near_misses += int(near_miss)
        self.last_position, self.last_run_id, self.last_timestamp = position, run.run_id, run.timestamp
        self.weight = update_weight(self.weight, signal, position - self.weight_position)
        self.weight_position = position


@dataclass
class CategoryBook:
    """The insights fold: per-category stats plus near-misses and surprises, in ledger order."""

    stats: dict[str, CategoryStats] = field(default_factory=lambda: {c: CategoryStats(c) for c in CATEGORIES})
    attempts: int = 0  # attempts with or without a category
    uncategorized: int = 0
    keeps: int = 0
    gains: int = 0
    positive_gain_sum: float = 0.0
    near_misses: deque = field(default_factory=lambda: deque(maxlen=NEAR_MISSES_KEPT))
    surprises: deque = field(default_factory=lambda: deque(maxlen=SURPRISES_KEPT))

    # -- ledger-wide priors ---------------------------------------------------------------------
    @property
    def prior_rate(self) -> float:
        """r̄ = (keeps + 1)/(attempts + 2): the overall keep rate, Laplace-smoothed."""
        return (self.keeps + 1) / (self.attempts + 2)

    @property
    def mean_gain(self) -> float:
        """ḡ: mean positive gain of kept runs (0 before the first measured keep)."""
        return self.positive_gain_sum / self.gains if self.gains else 0.0

    def probability(self, name: str) -> float:
        s = self.stats[name]
        return keep_probability(s.keeps, s.attempts, self.prior_rate)

    def expected_gain(self, name: str) -> float:
        s = self.stats[name]
        return self.probability(name) * shrunk_gain(s.positive_gain_sum, s.gains, self.mean_gain)

    # -- fold -----------------------------------------------------------------------------------
    def add(self, outcome) -> None:
        """Fold one run's :class:`~memorylab_core.research.Outcome` (non-attempts are ignored)."""
        if not outcome.attempt:
            return
        run, gain = outcome.run, outcome.gain
        near = run.status == "discard" and gain is not None and -gain <= NOISE_BAND
        self._note_surprise(outcome)
        signal = outcome_signal(run.status, gain, run.error_kind)
        for name in outcome.categories:
            self.stats[name].add(outcome.position, run, gain, signal, near)
        self.attempts += 1
        self.uncategorized += int(not outcome.categories)
        if run.status == "keep":
            self.keeps += 1
            if gain is not None:
                self.gains += 1
                self.positive_gain_sum += max(gain, 0.0)
        if near:
            self.near_misses.append(_brief(outcome, gain))

    def _note_surprise(self, outcome) -> None:
        """Record a run whose outcome the statistics before it did not expect."""
        run, gain, cats = outcome.run, outcome.gain, outcome.categories
        tried = [c for c in cats if self.stats[c].attempts >= SURPRISE_MIN_ATTEMPTS]
        reason = None
        if run.status == "keep":
            if gain is not None and self.gains >= 3 and self.mean_gain > 0 and gain >= (
                    SURPRISE_GAIN_MULTIPLE * self.mean_gain):
                reason = f"gain {gain:.4f} is {gain / self.mean_gain:.1f}× the mean keep gain so far"
            elif tried and max(self.probability(c) for c in tried) <= SURPRISE_LOW_P:
                reason = f"kept although {'/'.join(tried)} rarely kept (p ≤ {SURPRISE_LOW_P})"
        elif tried and min(self.probability(c) for c in tried) >= SURPRISE_HIGH_P:
            reason = f"{run.status} although {'/'.join(tried)} usually kept (p ≥ {SURPRISE_HIGH_P})"
        if reason:
            self.surprises.append({**_brief(outcome, gain), "reason": reason})


def _brief(outcome, gain: float | None) -> dict:
    run = outcome.run
    return {"run_id": run.run_id, "position": outcome.position, "status": run.status, "val_bpb": run.val_bpb,
            "gain": None if gain is None else round(gain, 6), "commit": run.short_commit or None,
            "description": run.description, "categories": list(outcome.categories)}


# -- views -----------------------------------------------------------------------------------------

def category_rows(book: CategoryBook, experiments: int) -> list[dict]:
    """One row per category (taxonomy order) with every number the insights table shows."""
    rows = []
    for name in CATEGORIES:
        s = book.stats[name]
        rows.append({
            "category": name,
            "attempts": s.attempts,
            "keeps": s.keeps,
            "discards": s.discards,
            "crashes": s.crashes,
            "keep_probability": round(book.probability(name), 4),
            "mean_gain": round(s.gain_sum / s.gains, 6) if s.gains else None,
            "best_gain": None if s.best_gain is None else round(s.best_gain, 6),
            "best_run_id": s.best_run_id,
            "expected_gain": round(book.expected_gain(name), 6),
            "weight": round(decayed(s.weight, experiments - 1 - s.weight_position), 4),
            "near_misses": s.near_misses,
            "last_tried": None if s.last_run_id is None else {
                "position": s.last_position, "run_id": s.last_run_id, "timestamp_utc": s.last_timestamp,
                "experiments_ago": experiments - 1 - s.last_position},
        })
    return rows


def is_dead_end(row: dict, book: CategoryBook) -> bool:
    """Enough attempts, no keeps, and an expected gain well below the ledger-wide one (r̄·ḡ)."""
    threshold = DEAD_END_GAIN_FRACTION * book.prior_rate * book.mean_gain
    return (row["attempts"] >= DEAD_END_MIN_ATTEMPTS and row["keeps"] == 0
            and book.expected_gain(row["category"]) <= threshold * (1 + 1e-9))


def promising(rows: list[dict], book: CategoryBook, limit: int = 5) -> list[dict]:
    """Categories ranked by E·(1 + w/W) + exploration bonus; dead ends excluded."""
    unit = book.prior_rate * book.mean_gain
    ranked = []
    for row in rows:
        if is_dead_end(row, book):
            continue
        bonus = exploration_bonus(row["attempts"], book.attempts, unit)
        score = row["expected_gain"] * (1 + row["weight"] / WEIGHT_MAX) + bonus
        ranked.append({"category": row["category"], "score": round(score, 6),
                       "expected_gain": row["expected_gain"], "exploration_bonus": round(bonus, 6),
                       "weight": row["weight"], "attempts": row["attempts"], "keeps": row["keeps"]})
    ranked.sort(key=lambda r: (-r["score"], r["attempts"], r["category"]))
    return ranked[:limit] if book.attempts else []


def dead_ends(rows: list[dict], book: CategoryBook) -> list[dict]:
    """Dead-end categories, most attempted first."""
    dead = [{"category": r["category"], "attempts": r["attempts"], "crashes": r["crashes"],
             "expected_gain": r["expected_gain"], "weight": r["weight"]} for r in rows if is_dead_end(r, book)]
    dead.sort(key=lambda r: (-r["attempts"], r["category"]))
    return dead


def insights_view(book: CategoryBook, position: int, plateau: dict | None = None, account: dict | None = None) -> dict:
    """The ``insights`` document: the arena's account (``Account.to_dict()``: the same run and experiment
    counts as ``status``), the category table (``position``: runs folded, the decay's clock), rankings,
    near-misses, surprises. ``attempts`` are the experiments the categories score (bug crashes are not)."""
    rows = category_rows(book, position)
    return {
        **(account or {}),
        "runs": position,
        "attempts": book.attempts,
        "uncategorized_attempts": book.uncategorized,
        "prior_keep_rate": round(book.prior_rate, 4),
        "mean_keep_gain": round(book.mean_gain, 6),
        "categories": rows,
        "promising": promising(rows, book),
        "dead_ends": dead_ends(rows, book),
        "near_misses": list(reversed(book.near_misses)),
        "plateau": plateau,
        "surprises": list(reversed(book.surprises)),
        "constants": constants(),
    }


def constants() -> dict:
    """The constants behind the numbers (also in docs/insights.md)."""
    return {"noise_band": NOISE_BAND, "gain_scale": GAIN_SCALE, "weight_max": WEIGHT_MAX,
            "learning_rate": LEARNING_RATE, "decay_per_experiment": DECAY, "prior_strength": PRIOR_STRENGTH,
            "gain_prior_weight": GAIN_PRIOR_WEIGHT, "exploration": EXPLORATION,
            "dead_end_min_attempts": DEAD_END_MIN_ATTEMPTS, "dead_end_gain_fraction": DEAD_END_GAIN_FRACTION}
