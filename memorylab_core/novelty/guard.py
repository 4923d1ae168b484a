"""The novelty guard: has this idea been tried, and did it fail?

Three signals, in order of precedence (see docs/novelty.md for the full rules):

1. **Code identity** — a proposal whose train.py fingerprint equals an earlier run's is a
   ``duplicate_run``.
2. **Change signature** — the proposal's moves (knob + direction + values, from the diff and the
   description) against earlier moves of the same knob: an overlapping move in the same direction
   as a failed run is a ``repeat_failure`` (the opposite direction is not); the same move as a kept
   run is a ``known_success``; a further step beyond a kept move is an ``incremental_followup``.
   Reverting a kept change all the way counts as repeating a failure (the kept run showed the old
   value was worse), and a failure goes stale once a later kept run moved into its range.
3. **Text similarity** — cosine over IDF-weighted tokens (outcome notes stripped) against runs the
   change signature cannot speak for: a failed run at or above the threshold makes a
   ``repeat_failure``, a kept one a ``known_success`` (or ``incremental_followup`` for a variant or
   when the text names a follow-up). Otherwise the idea is ``novel``.

:class:`NoveltyIndex` is built incrementally (``add`` once per run in ledger order, cost proportional
to the run's own text) into tables of the store's SQLite index.
``classify`` looks at candidates only: runs sharing a knob, a fingerprint or an informative token.
"""

from __future__ import annotations

import heapq
import json
import math
import re
import sqlite3
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from itertools import takewhile

from ..evidence.arenas import lineage
from ..evidence.crashes import is_no_evidence_crash
from ..evidence.validity import NOT_EVIDENCE
from ..ledger.model import Run, plural
from .changes import is_vocabulary_knob, merge_changes, text_changes
from .lookup import Alternation
from .textnorm import (
    CATEGORY_ALIASES,
    is_baseline,
    is_paragraph,
    is_rerun,
    names_followup,
    proposal_core,
    strip_outcome_notes,
    tokens,
)
from .vocabulary import KIND_OF, ORDERED_VALUES, PARENT, RAMPS, REMOVED_AS_VALUE, UPSTREAM_DEFAULTS, category_aliases

CLASSES = ("novel", "known_success", "incremental_followup", "repeat_failure", "duplicate_run")
POLICY: dict[str, dict[str, str]] = {
    "explore": dict(zip(CLASSES, ("allow", "block", "block", "block", "block"), strict=True)),
    "exploit": dict(zip(CLASSES, ("caution", "allow", "allow", "block", "block"), strict=True)),
    "replicate": dict(zip(CLASSES, ("block", "allow", "allow", "block", "allow"), strict=True)),
}
DEFAULT_THRESHOLD = 0.5
KNOWN_SUCCESS_SIMILARITY = 0.85  # text at least this close to a kept run is the same idea, not a variant
_TEXT_CANDIDATES = 200  # exact cosine is computed for this many best dot products
_COMMON_DF = 0.5  # in a history of >= _COMMON_MIN docs, tokens in more than half of them are ignored
_COMMON_MIN = 200
_MIN_SHARED = 2  # a text match needs two shared content words (one common word is noise)
_SHORT_QUERY_WORDS = 8  # up to this many content words a description is terse: the threshold holds whole
_LONG_QUERY_FLOOR = 0.3  # the lowest threshold a long description falls to (length_threshold)
_PAIR_SPAN = 8  # rows of one commit run on several machines sit together: at most this many apart
_FAIL, _KEEP, _NEUTRAL = "f", "k", "n"
IN_PLACE = "in place"  # a move's start for a technique added again where the operating point has it (reshapes)
_VOID = "v"  # a confounded run (starved training): it measured nothing, so the guard never matches it
_INF = math.inf


@dataclass
class Proposal:
    """The idea being checked: its description plus code signals computed by the caller."""

    description: str
    tags: tuple[str, ...] = ()
    family: str | None = None
    hypothesis: str | None = None
    code_fingerprints: tuple[str, ...] = ()
    changes: tuple[dict, ...] = ()
    context: str | None = None  # the arena whose operating point the proposal moves from
    # The commit a row already run was made at (a ledger replayed): without code fingerprints, the same
    # commit with the same moves as an earlier row, nothing kept since, is that row run again (another GPU).
    commit: str | None = None


@dataclass
class Match:
    """An earlier run the verdict rests on (or the closest ones, for a novel idea)."""

    run_id: str
    index: int
    score: float
    status: str
    val_bpb: float | None
    description: str
    signals: list[str] = field(default_factory=list)
    reason: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class NoveltyResult:
    """The guard's verdict: class, policy decision for the mode, and the evidence."""

    classification: str
    decision: str
    mode: str
    threshold: float
    matches: list[Match] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    matched_part: str | None = None

    def to_dict(self) -> dict:
        return {
            "classification": self.classification,
            "decision": self.decision,
            "mode": self.mode,
            "threshold": self.threshold,
            "matched_part": self.matched_part,
            "reasons": list(self.reasons),
            "matches": [m.to_dict() for m in self.matches],
        }


# --- helpers on runs and facts ------------------------------------------------------------------


def run_outcome(run: Run) -> str:
    """``f`` (evidence the idea failed), ``k`` (kept), ``n`` (no evidence either way) or ``v`` (confounded,
    or an imported row that never ran: no measurement at all, invisible to every match, so re-running its
    commit is never a duplicate)."""
    if run.validity in NOT_EVIDENCE:
        return _VOID
    if run.status == "keep":
        return _KEEP
    if run.status == "discard":
        return _FAIL
    if run.status == "crash":
        return _NEUTRAL if is_no_evidence_crash(run) else _FAIL
    return _NEUTRAL


@lru_cache(maxsize=8192)
def _text_facts(description: str) -> tuple[dict, ...]:
    """Cached text facts (callers must not mutate them; merge_changes copies)."""
    return tuple(text_changes(description))


def run_facts(run: Run) -> list[dict]:
    """A run's change signature: its stored facts, filled from its description."""
    return merge_changes(list(run.change_signature), list(_text_facts(run.description or "")))


def text_tokens(description: str, tags: Sequence[str] = (), family: str | None = None,
                hypothesis: str | None = None) -> set[str]:
    """The token set compared by text similarity (outcome notes stripped first)."""
    parts = [proposal_core(strip_outcome_notes(description)), " ".join(tags or ()), family or ""]
    if hypothesis:
        parts.append(strip_outcome_notes(hypothesis))
    return set(tokens(" ".join(parts)))


# Words that name no knob by themselves: "DAMPING_FACTOR" is the damping, "INNER_BATCH_SEQS" the batch.
_FILLER_WORDS = frozenset(("FACTOR", "VALUE", "COEF", "COEFF", "COEFFICIENT", "PARAM", "PARAMETER", "SETTING"))
_GENERIC_WORDS = frozenset(("LR", "RATE", "SIZE", "STEPS", "STEP", "SCALE", "RATIO", "WEIGHT", "DECAY", "MIN", "MAX",
                            "NUM", "N", "INIT", "DIM", "ALPHA", "BETA", "GAMMA", "EPS", "MOMENTUM", "WD", "FRAC",
                            "FRACTION", "START", "END", "COUNT", "LEN", "LENGTH", "MODE", "TYPE", "K", "TOP", "STD"))
# Words that make a name the setting *of* another: ``X0_LAMBDAS_LR`` is not ``X0_LAMBDAS`` (a unit word such as
# FRAC is no such word: ``DAGGER_TRIGGER_FRAC`` is the trigger, nor is INIT: a learned scalar's only setting is
# its initial value, so ``QK_GAIN=5`` sets ``QK_GAIN_INIT``).
_SETTING_WORDS = frozenset(("LR", "RATE", "WD", "DECAY", "BETA", "BETA1", "BETA2", "BETAS", "EPS", "MOMENTUM",
                            "STD"))


def same_own_knob(a: str, b: str) -> bool:
    """Whether two knob names outside the vocabulary name one knob: the words of one (fillers such as
    FACTOR dropped) are all words of the other, and they share a word that names a thing, not only a
    generic LR or SCALE (``HESSIAN_DAMPING`` and ``GPTQ_HESSIAN_DAMPING``; not ``LR`` and ``TTT_LR``), and the
    longer name adds no setting word (``X0_LAMBDAS_LR`` is the learning rate *of* ``X0_LAMBDAS``)."""
    wa, wb = (set(name.split("_")) - _FILLER_WORDS for name in (a, b))
    small, large = (wa, wb) if len(wa) <= len(wb) else (wb, wa)
    return bool(small) and small <= large and bool(small - _GENERIC_WORDS) and not (large - small) & _SETTING_WORDS


def technique_of(knob: str) -> str | None:
    """The technique a knob is a setting of (``EMA_DECAY`` → ``EMA``, ``TTT_LR`` → ``TTT``): its
    vocabulary parent, else a technique its name starts with; None for a knob of its own."""
    if knob in PARENT:
        return PARENT[knob]
    head = knob.split("_", 1)[0]
    return head if head != knob and KIND_OF.get(head) == "comp" else None


def owned_settings(facts: list[dict]) -> tuple[list[dict], set[str]]:
    """The techniques whose own settings ``facts`` move up or down (``TTT_EPOCHS`` 3→2: TTT), which a
    setting moved from its value shows to be in place, and ``facts`` less those techniques named bare beside
    it ("ttt_epochs 3→2 to clear the overrun: TTT dominates eval" names where the setting lives, adding
    nothing). "add EMA with decay 0.999" moves no setting up or down, so it still adds EMA."""
    moved = {technique_of(str(f.get("name"))) for f in facts if f.get("direction") in ("up", "down")}
    owners = {owner for owner in moved if owner and KIND_OF.get(owner) == "comp"}  # not a category (OPTIMIZER)
    if not owners:
        return facts, set()
    bare = [f for f in facts if f.get("name") in owners and f.get("direction") == "added" and f.get("new") is None]
    return [f for f in facts if not any(f is b for b in bare)], owners


def _states_a_move(fact: dict) -> bool:
    """Whether a fact moves a knob from a value ("MATRIX_LR 0.04->0.05", "raise depth"), not only names one
    ("TTT LR=1e-3"). A baseline by role that states a move (a file whose first row is already an experiment),
    or a later "re-baseline" that changes anything, is read as a run, not as the operating point."""
    return fact.get("old") is not None or fact.get("direction") in ("up", "down")


def absent_owners(facts: list[dict], point: dict) -> list[dict]:
    """``facts`` plus the technique a setting belongs to where the operating point lacks it: "EMA decay=0.99"
    where no EMA is in place adds EMA (at that decay), so it repeats a failed "EMA decay=0.999" as the
    same technique added. Only a setting set to a value ("changed", no start) adds its technique."""
    named = {str(f.get("name")) for f in facts}
    out = list(facts)
    for fact in facts:
        owner = technique_of(str(fact.get("name")))
        if (owner and owner not in named and KIND_OF.get(owner) == "comp" and fact.get("direction") == "changed"
                and fact.get("old") is None and point.get(owner) in (None, "removed")):
            out.append({"name": owner, "old": None, "new": None, "direction": "added", "source": "setting"})
            named.add(owner)
    return out


def read_owners(facts: list[dict], point: dict) -> tuple[list[dict], set[str]]:
    """``facts`` as the techniques their settings belong to make them (:func:`owned_settings`, then
    :func:`absent_owners`), with ``point`` updated in place to hold the techniques a tuned setting shows to
    be there; and those techniques (the caller records them in its state). One reading for runs and
    proposals alike."""
    facts, owners = owned_settings(facts)
    point.update({owner: "added" for owner in owners - point.keys()})
    return absent_owners(facts, point), owners


def is_baseline_run(run: Run) -> bool:
    """Whether ``run`` set its context's starting point: its role says so and it was kept (an imported
    file's first row or re-baseline, whatever its words: "PR #1758 seed (CaseOps + TTT)"), or its
    description does. What a baseline names is the operating point, not a move; a first row that was
    discarded tried something."""
    return (run.role == "baseline" and run.status == "keep") or is_baseline(run.description)


def run_words(run: Run) -> tuple[str, ...]:
    """The text tokens the index keeps for ``run``, sorted: none for a baseline or a run that is no
    evidence either way (see :func:`run_outcome`)."""
    if is_baseline_run(run) or run_outcome(run) == _NEUTRAL:
        return ()
    return tuple(sorted(text_tokens(run.description, run.tags, run.family, run.hypothesis)))


def _is_num(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# Spellings of categorical values, in priority order: (canonical value, pattern).
_VALUE_ROWS = [(value, pattern) for _, value, pattern in (*category_aliases(), *CATEGORY_ALIASES)
               if value not in (None, "*")]
_CATEGORY_VALUES = Alternation([(f"v{i}", pattern) for i, (_, pattern) in enumerate(_VALUE_ROWS)])


def _canon(value: object) -> str | None:
    """A comparable form of a categorical value ("ReLU^2", "relu2", "relu²" all read "relu2")."""
    if value is None:
        return None
    if _is_num(value):
        return repr(float(value))
    if isinstance(value, (list, dict)):
        return repr(value)
    text = unicodedata.normalize("NFKC", str(value)).strip().lower()
    named = _CATEGORY_VALUES.fullmatch(text)
    return _VALUE_ROWS[int(named.lastgroup[1:])][0] if named else text


def _close(a: float, b: float) -> bool:
    """Equal up to rounding, relative to the values: Adam's epsilon 1e-10 and 1e-9 are different values."""
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def fact_key(fact: dict) -> str:
    """``KNOB:direction`` or ``KNOB=value``: one fact as a short, stable key."""
    name, direction = fact.get("name"), fact.get("direction")
    if direction == "changed" and fact.get("new") is not None:
        return f"{name}={_canon(fact['new'])}"
    return f"{name}:{direction}"


def idea_key(run: Run, facts: list[dict] | None = None) -> str:
    """A canonical short key of the run's idea, used to cluster failures.

    ``"MATRIX_LR:up"`` (or several facts joined with ``+``) when the run has a change signature,
    ``"baseline"`` for baselines, else the first three content tokens of the description, sorted.
    ``facts``: :func:`run_facts` of the run, when the caller has them.
    """
    if is_baseline(run.description) and not run.change_signature:
        return "baseline"
    facts = run_facts(run) if facts is None else facts
    if facts:
        return "+".join(sorted({fact_key(f) for f in facts})[:4])
    words = [t for t in tokens(strip_outcome_notes(run.description)) if t not in ("up", "down")]
    return " ".join(sorted(dict.fromkeys(words))[:3]) or "misc"


# --- moves ------------------------------------------------------------------------------------
#
# A move is a tuple (stored as JSON): ("n", knob, direction, p, q) for numeric knobs (direction
# up/down, or None for "set to q" when the start is unknown; p/q start and end values or None),
# ("c", knob, direction, new, old) for categorical ones (direction changed/added/removed). A fact that
# sets a knob to the value it already has is not a move: to_move returns ("=", knob, value).


def to_move(fact: dict, state: dict) -> tuple | None:
    """Resolve one change fact into a move, filling a missing start value from the operating point
    (``state``: knob → current value)."""
    name, direction = str(fact.get("name")), fact.get("direction")
    old, new, factor = fact.get("old"), fact.get("new"), fact.get("factor")
    if direction in ("added", "removed") and not (_is_num(old) and _is_num(new)):
        current = state.get(name)
        if direction == "removed" and _is_num(current) and float(current) > 0:
            return ("n", name, "down", float(current), 0.0)  # "no warmdown": a number removed is set to zero
        if direction == "added" and _is_num(new):
            if current is None and float(new) > 0:  # added where it is absent: up from off, at any strength
                return ("n", name, "up", 0.0, float(new))
            return _numeric_move(name, None, None, new, None, current)
        return ("c", name, direction, _canon(new), _canon(old))
    if _is_num(old) or _is_num(new) or direction in ("up", "down"):
        return _numeric_move(name, direction, old, new, factor, _value_at(state, name))
    current = state.get(name)
    old_c = _canon(old) if old is not None else current if isinstance(current, str) else None
    new_c = _canon(new)
    if new_c is not None and new_c == old_c:
        return ("=", name, new_c)
    return ("c", name, direction or "changed", new_c, old_c)


def _names_the_current(resolved: list[tuple], description: str | None) -> bool:
    """Whether the proposal only names settings the configuration already has, as a re-run does
    ("MATRIX_LR=0.04" where it is 0.04, "switch to SwiGLU" where SwiGLU is kept). In a paragraph a kind
    named in place is where a change goes ("add F.rms_norm on V", "sandwich RMSNorm on the branch
    outputs"), not the change: there only a number already in place counts."""
    if not resolved:
        return False
    return not is_paragraph(description) or any(_is_num(m[2]) for m in resolved)


def _removal_as_value(move: tuple, point: dict) -> tuple | None:
    """A proposal removing a component also moves its strength to the end of its range (vocabulary's
    ``REMOVED_AS_VALUE``: a cap up without bound, a scaled path down to zero), so it meets earlier moves of
    that value; stored removals stay removals, and a component already removed has no strength left."""
    removes = move[:3] == ("c", move[1], "removed") and point.get(move[1]) != "removed"
    knob, direction = REMOVED_AS_VALUE.get(move[1], (None, None)) if removes else (None, None)
    if knob is None:
        return None
    current = _value_at(point, knob)
    end = 0.0 if direction == "down" and _is_num(current) and float(current) > 0 else None
    return _numeric_move(knob, direction, None, end, None, current)


def ramp_start_moves(moves: list[tuple], point: dict) -> list[tuple]:
    """``moves`` plus, for each ramp of zero steps (vocabulary's ``RAMPS``: cut by this proposal or already
    at zero), its start moved to its end value: with no ramp the two are one value. "no momentum warmup" is
    also "momentum start 0.85 → 0.95", "constant momentum 0.80" also "momentum start 0.85 → 0.80", and once
    the warmup is gone, "momentum 0.85 → 0.87" moves the start too. Runs and proposals alike."""
    out = list(moves)
    for ramp, (start_knob, end_knob) in RAMPS.items():
        cut = any(m[0] == "n" and m[1] == ramp and m[2] == "down" and m[4] == 0.0 for m in moves)
        if not (cut or point.get(ramp) in (0.0, "removed")) or any(m[1] == start_knob for m in moves):
            continue
        end = next((m[4] for m in moves if m[0] == "n" and m[1] == end_knob and m[4] is not None),
                   _value_at(point, end_knob))
        implied = _numeric_move(start_knob, None, None, end, None, _value_at(point, start_knob))
        if implied and implied[0] == "n":
            out.append(implied)
    return out


def _value_at(state: dict, name: str) -> object:
    """The knob's value at the operating point. A parameter group's own weight decay that no run set is 0:
    upstream train.py decays only the Muon matrices (``WEIGHT_DECAY``); its AdamW groups have none."""
    value = state.get(name)
    if value is None and name.endswith("_WEIGHT_DECAY"):
        return 0.0
    return value


def _numeric_move(name, direction, old, new, factor, current) -> tuple | None:
    """Start value: the fact's own (``old``, or ``new / factor`` for "halve to V"), else the operating
    point. An operating point that would turn an explicit "up"/"down" into a no-op, or into the other
    way ("raise scalar_lr to 0.05" where upstream's default is 0.5), is stale (another branch, other
    defaults): the start is then unknown."""
    p = float(old) if _is_num(old) else None
    if p is None and _is_num(new) and _is_num(factor) and factor > 0:
        p = float(new) / factor
    if p is None and _is_num(current):
        p = float(current)
        if _is_num(new) and _close(p, float(new)):
            if direction not in ("up", "down"):
                return ("=", name, float(new))
            p = None
        elif _is_num(new) and direction in ("up", "down") and (float(new) > p) != (direction == "up"):
            p = None
    q = float(new) if _is_num(new) else (p * factor if p is not None and _is_num(factor) else None)
    if p is not None and q is not None:
        if _close(p, q):
            return ("=", name, q)
        return ("n", name, "up" if q > p else "down", p, q)
    if direction in ("up", "down"):
        return ("n", name, direction, p, q)
    return ("n", name, None, None, q) if q is not None else None


def _unset_default(move: tuple, state: dict) -> tuple:
    """A value equal to an untouched *default* is still a move (the default may not be this history's);
    only a value some run set makes a no-op, even one a proposal "raises" to ("raise the embedding LR to 0.8"
    where a kept run set it to 0.8: the stale-start reading of ``_numeric_move`` is for defaults only)."""
    known = move[1] in state and state[move[1]][1] is not None
    if move[0] == "n" and move[3] is None and known and _is_num(move[4]) and _is_num(state[move[1]][0]) \
            and _close(float(state[move[1]][0]), move[4]):
        return ("=", move[1], move[4])
    if move[0] != "=" or known:
        return move
    value = move[2]
    return ("n", move[1], None, None, value) if _is_num(value) else ("c", move[1], "changed", value, None)


def _interval(move: tuple) -> tuple[float, float]:
    _, _, direction, p, q = move[:5]
    if direction == "up":
        return (-_INF if p is None else p, _INF if q is None else q)
    return (-_INF if q is None else q, _INF if p is None else p)


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    lo, hi = max(a[0], b[0]), min(a[1], b[1])
    if math.isinf(lo) or math.isinf(hi):
        return hi > lo
    return hi - lo > 1e-9 * max(abs(lo), abs(hi))


def move_text(move: tuple) -> str:
    """Human form of a move, never showing an unknown value: "MATRIX_LR up 0.04→0.05",
    "MATRIX_LR up to 0.05", "DEPTH down", "ACTIVATION relu2→swiglu", "ACTIVATION → swiglu",
    "SOFTCAP removed"."""
    if move[0] == "=":
        return f"{move[1]} stays {_fmt(move[2])}"
    if move[0] == "n":
        _, name, direction, p, q = move[:5]
        if p is not None and q is not None:
            return f"{name} {direction or 'set'} {_fmt(p)}→{_fmt(q)}"
        if q is not None:
            return f"{name} {direction + ' to' if direction else 'set to'} {_fmt(q)}"
        if p is not None:
            return f"{name} {direction or 'changed'} from {_fmt(p)}"
        return f"{name} {direction or 'changed'}"
    _, name, direction, new, old = move[:5]
    if direction == "changed":
        if new is None:
            return f"{name} changed" + (f" from {old}" if old is not None else "")
        return f"{name} {old}→{new}" if old is not None else f"{name} → {new}"
    return f"{name} {direction}"


def _fmt(value: object) -> str:
    if isinstance(value, str):
        return value
    if not _is_num(value):
        return str(value)
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def repeats(prop: tuple, failed: tuple) -> bool:
    """Whether a proposed move is the same idea as a failed move of the same knob made from the same
    operating point: the same direction at any magnitude (overlapping ranges; a step starting where the
    failed one ended, or beyond, is new ground unless it pushes a failed chain on: :func:`pushed_on`), the
    same target when a direction is unknown, the same new value or the same component added / removed."""
    if prop[0] != failed[0]:  # a component added with a value ("conv mixer on 3/4 of the layers") vs without
        return ("added" in (prop[2], failed[2]) and prop[4] != IN_PLACE) or (prop[0] == "n" and failed[2] == "changed")
    if prop[0] == "c":
        ordered = _ordered_direction(prop), _ordered_direction(failed)
        if all(ordered) and prop[4] == failed[4]:  # an ordered category, from the same value
            return ordered[0] == ordered[1]
        return prop[2] == failed[2] and prop[3] == failed[3]
    if failed[2] is None and prop[2] is not None:
        failed = _started_at(failed, prop[3])
    pd, fd = prop[2], failed[2]
    if pd is None or fd is None:
        return prop[4] is not None and failed[4] is not None and _close(prop[4], failed[4])
    return pd == fd and _overlap(_interval(prop), _interval(failed))


def _returned_to(prop: tuple, kept_moves: list[tuple]) -> bool:
    """Whether a numeric proposal starts where the knob stood before its last keep, not where that keep
    left it: a re-baseline or revert put it back ("Muon LR 0.04 → 0.06" on a new machine's baseline after
    "0.03 → 0.02" was kept), so failures made from that start before the keep hold again."""
    ends = [m[4] for m in kept_moves if m[0] == "n" and m[4] is not None]
    return prop[0] == "n" and prop[3] is not None and bool(ends) and not any(_close(prop[3], e) for e in ends)


def _same_start(prop: tuple, failed: tuple) -> bool:
    return failed[0] == "n" and failed[3] is not None and _close(prop[3], failed[3])


def pushed_on(failed_oldest_first: list[tuple]) -> list[tuple]:
    """The failed numeric moves of one knob since its last keep that push a direction on from where the
    knob stood before them (the oldest failure's start: nothing moved it since): per direction, each
    failure that way from there or from where an earlier push that way ended ("enable_looping_at
    0.35→0.22", then "0.22→0.15"; "1.5→1.45" and "1.5→1.4", then "1.4→1.35"). The failed values were never
    undone where they ran, so a proposal that goes on from a push's end the same way repeats it; a failure
    that turns back ("0.2→0.21" after "0.5→0.2") starts from no such point, so going on from there is new
    ground."""
    numeric = [m for m in failed_oldest_first if m[0] == "n" and m[2] in ("up", "down")]
    if not numeric or numeric[0][3] is None:
        return []
    pushes: list[tuple] = []
    for move in numeric:
        starts = [numeric[0][3], *(m[4] for m in pushes if m[2] == move[2] and m[4] is not None)]
        if move[3] is not None and any(_close(move[3], s) for s in starts):
            pushes.append(move)
    return pushes


def bracketed_by(prop: tuple, failed: list[tuple[int, tuple]]) -> list[tuple[int, tuple]]:
    """For a value set with no known start ("decay=3500"), the nearest failed value on each side of it among
    ``failed`` (``(index, move)``, all made from the operating point the proposal starts from): wherever that
    point lies, one of the two moved the knob the same way ("decay=3000" and "decay=8000" both failed: 3500
    goes down like 3000 if the knob stands above 3500, up like 8000 if below). Empty unless both sides hold
    one. Only values set without a start count: a failure that names its start shows where the knob stood, and
    a proposal setting it there moves nothing."""
    numeric = [(idx, e) for idx, e in failed if e[0] == "n" and e[4] is not None]
    if prop[0] != "n" or prop[2] is not None or prop[4] is None or _generic_name(prop[1]) \
            or any(e[3] is not None and _close(e[3], prop[4]) for _, e in numeric):
        return []
    values = [(idx, e) for idx, e in numeric if e[3] is None and not _close(e[4], prop[4])]
    below = [item for item in values if item[1][4] < prop[4]]
    above = [item for item in values if item[1][4] > prop[4]]
    if not below or not above:
        return []
    return [max(below, key=lambda item: item[1][4]), min(above, key=lambda item: item[1][4])]


def _generic_name(knob: str) -> bool:
    """A name a description coins for whatever it tunes ("α=0.1", "init 0.7"): two rows that set it may set
    different things."""
    return knob in _GENERIC_WORDS or knob == "INIT_SCALE"


def goes_on_from(prop: tuple, chain: list[tuple]) -> tuple | None:
    """The move of ``chain`` (:func:`pushed_on`) the proposal goes on from: it starts where that move
    ended and moves the same way. None when it goes on from none."""
    if prop[0] != "n" or prop[3] is None:
        return None
    return next((m for m in chain if m[2] == prop[2] and m[4] is not None and _close(prop[3], m[4])), None)


def _started_at(move: tuple, start: float | None) -> tuple:
    """A numeric move whose start was unknown ("set X to 0.1" with no value of X known yet), read as a move
    from ``start``: the proposal's start, which is where the failure started too, since failures are only
    read back to the knob's last keep (nothing moved the knob in between)."""
    q = move[4]
    if start is None or q is None or _close(start, q):
        return move
    return ("n", move[1], "up" if q > start else "down", start, q)


def _ordered_direction(move: tuple) -> int:
    """+1 / -1 for a change of an ordered category (:data:`vocabulary.ORDERED_VALUES`) up / down its
    order, 0 for a change that keeps its place, an unordered knob or an unknown value."""
    order = ORDERED_VALUES.get(move[1])
    if order is None or move[0] != "c" or move[2] != "changed":
        return 0
    old, new = order(move[4]), order(move[3])
    return 0 if old is None or new is None else (new > old) - (new < old)


def in_place(move: tuple, point: dict) -> bool:
    """The move adds a component the operating point already has, or names the value a category
    already has: beside another change, naming what is in place ("MoE HEAD_DIM=32" after MoE was kept,
    "Muon: disable nesterov" when Muon is the optimizer) is context, not a change."""
    if move[0] != "c":
        return False
    if move[2] == "added":  # at strength zero it is not there ("label smoothing 0.1" failed from 0: still off)
        return point.get(move[1]) not in (None, "removed", 0.0)
    if move[2] == "removed":  # "(without NorMuon)" after a kept run disabled it
        return point.get(move[1]) == "removed"
    return move[2] == "changed" and move[3] is not None and point.get(move[1]) == move[3]


def reshapes(move: tuple) -> tuple:
    """A technique "added" without a value where the operating point already has it, marked :data:`IN_PLACE`:
    alone, it names another form of it ("scalar VE gate", "shared VE embedding" where value embeddings and
    their gate are in place), so it repeats no failed *setting* of it (the gate's scale, its channels), as a
    plain "added" would (:func:`repeats`), and after a keep of it is a variant of the kept technique (a
    follow-up), not the keep re-applied, unless its words re-propose the kept run (:meth:`NoveltyIndex._verdict`).
    A failed run that only names what is in place stores no move (:meth:`NoveltyIndex.add`): its words are its
    evidence."""
    if move[0] == "c" and move[2] == "added" and move[3] is None:
        return ("c", move[1], "added", None, IN_PLACE)
    return move


def same_as_kept(prop: tuple, kept: tuple) -> bool:
    """The proposal re-applies the kept move itself (same direction and target)."""
    if prop[0] != kept[0]:
        return False
    if prop[0] == "c":
        return prop[2] == kept[2] and prop[3] == kept[3] and prop[4] != IN_PLACE
    return (prop[2] == kept[2] and prop[4] is not None and kept[4] is not None and _close(prop[4], kept[4])
            and prop[3] is not None)


def _same_move(prop: tuple, earlier: tuple) -> bool:
    """The same move as an earlier one: the same knob, direction, start and target where known (for
    categories: the same change to the same value)."""
    if prop[0] != earlier[0] or prop[1] != earlier[1] or prop[2] != earlier[2]:
        return False
    if prop[0] == "c":
        return prop[3] == earlier[3]
    (p, q), (p0, q0) = prop[3:5], earlier[3:5]
    same_start = p is None or p0 is None or _close(p, p0)
    return same_start and (q is None and q0 is None or (q is not None and q0 is not None and _close(q, q0)))


def builds_on_keep(prop: tuple, kept: tuple) -> bool:
    """A follow-up of a kept move of the same knob: any re-tune of a number whose last move was kept
    (either direction, partial reverts included); for categories, any other value or a step back to the
    value the keep replaced (GELU after a kept SiLU re-tunes the kept choice), except across the gated /
    plain divide of an MLP (:data:`_GATED`: SwiGLU after a kept SiLU is a technique of its own)."""
    if prop[0] == "n" or kept[0] == "n":
        return True
    if prop[1] in ORDERED_VALUES and prop[2] == kept[2] == "changed":  # any re-tune of an ordered category
        return True
    if kept[2] in ("added", "removed"):
        return prop[2] in ("added", "removed")
    if prop[2] == "changed" and _GATED.get(prop[1]) and (prop[3] in _GATED[prop[1]]) != (kept[3] in _GATED[prop[1]]):
        return False  # a gated MLP after a kept plain activation (or back) is another technique
    return prop[2] in ("removed", "changed")


_GATED = {"ACTIVATION": frozenset({"swiglu", "geglu", "reglu"})}  # gated MLPs: a structure, not an activation
_MAX_EVIDENCE = 8  # earlier runs kept per kind of evidence and move
_SAME_WORDS = 0.8  # Jaccard of content words at which a proposal re-proposes a kept run (_re_proposed)
_EPOCH_READ = 5000  # moves of one knob read back to its last keep, at most (bounds a verdict's cost)
_TURN_BACK_READ = 200  # older failures of one knob read for a move that turns back from its keep, at most
_RELATION_SCORE = {"repeat": 1.0, "between": 1.0, "same": 1.0, "further": 0.9, "parent": 0.85, "noop": 1.0}


@dataclass
class _Evidence:
    """One earlier run behind a verdict (index, score, signals, reason)."""

    index: int
    score: float
    signals: list[str]
    reason: str


def context_of(run: Run) -> str:
    """The comparable-run group a run's operating point belongs to: its arena's lineage (an imported file's
    re-baselines continue one history of ideas: evidence/arenas.py ``lineage``), else its family."""
    return lineage(str((run.extra or {}).get("arena") or run.family or ""))


def defaults_for(run: Run) -> dict[str, object]:
    """The operating point before an arena's first run: the train.py defaults that run recorded
    (``train_defaults``), else upstream train.py's (an imported history, or a record from before the
    field existed)."""
    recorded = (run.extra or {}).get("train_defaults")
    return dict(recorded) if isinstance(recorded, dict) and recorded else dict(UPSTREAM_DEFAULTS)


NOVELTY_DDL = """
CREATE TABLE IF NOT EXISTS novelty_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS novelty_runs (idx INTEGER PRIMARY KEY, outcome TEXT NOT NULL, fingerprint TEXT,
    moved INTEGER NOT NULL, tokens TEXT, ctx TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS novelty_runs_fp ON novelty_runs(fingerprint) WHERE fingerprint IS NOT NULL;
CREATE INDEX IF NOT EXISTS novelty_runs_keeps ON novelty_runs(ctx, idx) WHERE outcome = 'k';
CREATE TABLE IF NOT EXISTS novelty_moves (ctx TEXT NOT NULL, knob TEXT NOT NULL, idx INTEGER NOT NULL,
    moves TEXT NOT NULL, PRIMARY KEY (ctx, knob, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS novelty_postings (token TEXT NOT NULL, idx INTEGER NOT NULL,
    PRIMARY KEY (token, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS novelty_df (token TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS novelty_state (ctx TEXT NOT NULL, knob TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (ctx, knob)) WITHOUT ROWID;
"""
_POSTINGS_READ = 50_000  # newest postings read per query word: bounds check on a huge history
_SEEDED = ""  # state row marking a context whose defaults were written
_ENV_DOWN = "#environment-down"  # state row: the context's unchanged configuration crashed, nothing completed since
_MARKERS = (_SEEDED, _ENV_DOWN)


class NoveltyIndex:
    """Incremental index over the ledger for the novelty guard, kept in SQLite tables (``novelty_*``).

    ``add`` every run once, in ledger order; ``classify`` a proposal against everything added. The
    tables are inverted indexes -- fingerprint → runs, (context, knob) → runs with a move on it,
    token → runs (text) -- so a verdict reads only its candidates, whatever the ledger's length.
    The **operating point** (``novelty_state``) is each knob's current value per context
    (:func:`context_of`): the defaults at the context's first run, then every kept change (and every
    start value a description states), each with the run that set it. Built on the store's index
    (``index/db.py``), or on a private in-memory database when constructed without one.

    A context starts from the defaults its first run recorded (``train_defaults``: train.py's constants
    at that run's commit, written by ``log`` on an arena's first native run), else from
    :data:`vocabulary.UPSTREAM_DEFAULTS` (imported histories, and runs logged before the field existed):
    the index depends on the journal alone.
    """

    def __init__(self, db: sqlite3.Connection | None = None) -> None:
        if db is None:  # a private index; the store's index has these tables already
            db = sqlite3.connect(":memory:", isolation_level=None)
            db.executescript(NOVELTY_DDL)
        self.db = db
        meta = dict(db.execute("SELECT key, value FROM novelty_meta"))
        self.size = int(meta.get("size", 0))
        self.n_docs = int(meta.get("docs", 0))
        self._states: dict[str, dict[str, list]] = {}  # context → knob → [value, run index or None]
        self._own_knobs: dict[str, set[str]] = {}  # context → knob names outside the vocabulary seen there
        self._df: dict[str, int] = {}  # per-command cache of document frequencies
        self._pending: dict[str, list] = {"runs": [], "moves": [], "postings": []}
        self._pending_df: Counter[str] = Counter()  # token -> documents added since the last flush
        self._dirty_state: set[tuple[str, str]] = set()

    def __len__(self) -> int:
        return self.size

    # -- operating points -------------------------------------------------------------------------
    @property
    def state(self) -> dict[str, dict[str, list]]:
        """Every context's operating point (reads the whole state table: for tests and debugging)."""
        self.flush()
        out: dict[str, dict[str, list]] = {}
        for ctx, knob, value in self.db.execute("SELECT ctx, knob, value FROM novelty_state ORDER BY ctx, knob"):
            out.setdefault(ctx, {})[knob] = json.loads(value)
        return out

    def context_state(self, ctx: str) -> dict[str, list]:
        """knob → [current value, index of the run that set it (None: a default)] in ``ctx``."""
        found = self._states.get(ctx)
        if found is None:
            self.flush()
            found = {k: json.loads(v) for k, v in
                     self.db.execute("SELECT knob, value FROM novelty_state WHERE ctx = ?", (ctx,))}
            self._states[ctx] = found
        return found

    def operating_point(self, ctx: str) -> dict[str, object]:
        """knob → current value in ``ctx`` (what a bare "SCALAR_LR 0.7" moves from)."""
        return {k: v[0] for k, v in self.context_state(ctx).items() if k not in _MARKERS}

    def _seed(self, ctx: str, run: Run) -> dict[str, list]:
        state = self.context_state(ctx)
        if _SEEDED not in state:
            defaults = defaults_for(run)
            for knob, value in defaults.items():
                self._put(ctx, knob, float(value) if _is_num(value) else _canon(value), None)
            self._put(ctx, _SEEDED, 1, None)
        return state

    def _put(self, ctx: str, knob: str, value: object, index: int | None) -> None:
        state = self.context_state(ctx)
        if value is None:
            state.pop(knob, None)
        else:
            state[knob] = [value, index]
        self._dirty_state.add((ctx, knob))

    def _known_names(self, ctx: str, facts: list[dict], remember: bool = True) -> list[dict]:
        """``facts`` with each knob the vocabulary lacks named as the same knob was named before in ``ctx``
        ("damping factor" after "GPTQ Hessian damping": :func:`same_own_knob`), so two spellings of one
        knob are one knob. ``remember``: the names are this context's from now on (a run, not a proposal)."""
        if not facts:
            return facts
        seen = self._own_knobs.get(ctx)
        if seen is None:
            self.flush()
            rows = self.db.execute("SELECT DISTINCT knob FROM novelty_moves WHERE ctx = ?", (ctx,))
            seen = {k for (k,) in rows if not is_vocabulary_knob(k)}
            seen |= {k for k in self.context_state(ctx) if k not in _MARKERS and not is_vocabulary_knob(k)}
            self._own_knobs[ctx] = seen
        out = []
        for fact in facts:
            name = str(fact.get("name"))
            if not is_vocabulary_knob(name) and name not in seen:
                earlier = min((k for k in seen if same_own_knob(name, k)), key=len, default=None)
                if earlier is not None:
                    fact = dict(fact, name=earlier)
                elif remember:
                    seen.add(name)
            out.append(fact)
        return out

    # -- building -------------------------------------------------------------------------------
    def add(self, run: Run, facts: list[dict] | None = None, words: tuple[str, ...] | None = None) -> None:
        """Fold one run in (ledger order; ``run.index`` must be the next position). ``facts`` and
        ``words``: :func:`run_facts` and :func:`run_words` of the run, when the caller has them."""
        index = run.index
        if index < self.size:
            raise ValueError(f"run index {index} was already added (the index holds {self.size} runs)")
        ctx = context_of(run)
        first = _SEEDED not in self.context_state(ctx)
        state = self._seed(ctx, run)
        outcome = self._environment(ctx, run, run_outcome(run))
        self.size = index + 1
        if outcome == _VOID:
            self._store(index, outcome, None, [], (), ctx)
            return
        facts = self._known_names(ctx, run_facts(run) if facts is None else facts)
        moves: list[tuple] = []
        if is_baseline_run(run) and (first or not facts or is_baseline(run.description)) \
                and not any(_states_a_move(f) for f in facts):
            for fact in facts:
                name, new = str(fact.get("name")), fact.get("new")
                if new is not None:
                    self._put(ctx, name, float(new) if _is_num(new) else _canon(new), index)
                owner = technique_of(name)
                if owner and owner not in state:  # "TTT LR=1e-3" in a baseline: TTT is in place
                    self._put(ctx, owner, "added", index)
        else:
            self._stated_starts(ctx, facts, index)
            point = {k: v[0] for k, v in state.items()}
            facts, owners = read_owners(facts, point)
            for owner in owners - state.keys():  # a setting tuned shows its technique in place
                self._put(ctx, owner, "added", None)
            moves = ramp_start_moves([m for m in (to_move(f, point) for f in facts) if m and m[0] != "="], point)
            if outcome != _KEEP:  # naming a technique already in place is context, not its failure
                moves = [m for m in moves if not in_place(m, point)]
            if outcome == _FAIL:  # nor is a move made only to compensate for another, or as its means
                incidental = {f["name"] for f in _text_facts(run.description or "") if f.get("incidental")}
                moves = [m for m in moves if m[1] not in incidental]
            self._advance_state(ctx, moves, outcome, index)
            if outcome == _NEUTRAL:
                moves = []
        self._store(index, outcome, run.code_fingerprint, moves, run_words(run) if words is None else words, ctx)

    def _environment(self, ctx: str, run: Run, outcome: str) -> str:
        """``outcome``, except that a crash while the environment is down is no evidence: a crash of the
        unchanged configuration (a baseline or a re-run) takes it down, and the next run of the context
        that completes (kept or discarded) brings it back. What killed the baseline kills the ideas too."""
        if run.status != "crash":
            if run.status in ("keep", "discard") and _ENV_DOWN in self.context_state(ctx):
                self._put(ctx, _ENV_DOWN, None, None)
            return outcome
        if is_baseline_run(run) or (is_rerun(run.description) and not run_facts(run)):
            self._put(ctx, _ENV_DOWN, 1, run.index)  # the unchanged configuration crashed
        return _NEUTRAL if outcome == _FAIL and _ENV_DOWN in self.context_state(ctx) else outcome

    def _stated_starts(self, ctx: str, facts: list[dict], index: int) -> None:
        """A start value a description states ("depth 4 -> 6") corrects the operating point: the
        defaults may not be this history's."""
        state = self.context_state(ctx)
        for fact in facts:
            old, name = fact.get("old"), str(fact.get("name"))
            if old is None or fact.get("direction") not in ("up", "down", "changed"):
                continue
            value = float(old) if _is_num(old) else _canon(old)
            if name not in state or state[name][0] != value:
                self._put(ctx, name, value, index)

    def _advance_state(self, ctx: str, moves: list[tuple], outcome: str, index: int) -> None:
        """Kept moves set the knob's value; a failure reveals a start value not known yet."""
        state = self.context_state(ctx)
        for move in moves:
            name = move[1]
            start, end = (move[3], move[4]) if move[0] == "n" else (move[4], move[3])
            if outcome == _KEEP:
                if move[0] == "c" and move[2] in ("added", "removed") and end is None:
                    self._put(ctx, name, move[2], index)
                else:
                    self._put(ctx, name, end, index)
            elif start is not None and name not in state:
                self._put(ctx, name, start, index)

    def _store(self, index: int, outcome: str, fingerprint: str | None, moves: list[tuple],
               words: tuple[str, ...], ctx: str) -> None:
        pending = self._pending
        pending["runs"].append((index, outcome, fingerprint or None, 1 if moves else 0,
                                " ".join(words) if words else None, ctx))
        if moves:
            by_knob: dict[str, list[tuple]] = {}
            for move in moves:
                by_knob.setdefault(move[1], []).append(move)
            pending["moves"].extend((ctx, knob, index, json.dumps(ms)) for knob, ms in by_knob.items())
        if words:
            self.n_docs += 1
            pending["postings"].extend((w, index) for w in words)
            self._pending_df.update(words)
            self._df.clear()
        if len(pending["runs"]) >= 1024:
            self.flush()

    def flush(self) -> None:
        """Write what :meth:`add` buffered (every read of the tables flushes first)."""
        pending, db = self._pending, self.db
        if not (pending["runs"] or self._dirty_state):
            return
        db.executemany("INSERT INTO novelty_runs(idx, outcome, fingerprint, moved, tokens, ctx) "
                       "VALUES (?, ?, ?, ?, ?, ?)", pending["runs"])
        db.executemany("INSERT INTO novelty_moves(ctx, knob, idx, moves) VALUES (?, ?, ?, ?)", pending["moves"])
        db.executemany("INSERT INTO novelty_postings(token, idx) VALUES (?, ?)", pending["postings"])
        db.executemany("INSERT INTO novelty_df(token, df) VALUES (?, ?) ON CONFLICT(token) DO UPDATE "
                       "SET df = df + excluded.df", self._pending_df.items())
        self._pending_df.clear()
        dirty = [(c, k, self._states.get(c, {}).get(k)) for c, k in self._dirty_state]
        db.executemany("INSERT OR REPLACE INTO novelty_state(ctx, knob, value) VALUES (?, ?, ?)",
                       [(c, k, json.dumps(v)) for c, k, v in dirty if v is not None])
        db.executemany("DELETE FROM novelty_state WHERE ctx = ? AND knob = ?",
                       [(c, k) for c, k, v in dirty if v is None])
        db.executemany("INSERT INTO novelty_meta(key, value) VALUES (?, ?) "
                       "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       (("size", self.size), ("docs", self.n_docs)))
        for rows in pending.values():
            rows.clear()
        self._dirty_state.clear()

    # -- reading the tables -----------------------------------------------------------------------
    def outcome(self, index: int) -> str:
        self.flush()
        row = self.db.execute("SELECT outcome FROM novelty_runs WHERE idx = ?", (index,)).fetchone()
        return row[0] if row else _NEUTRAL

    def _knob_moves(self, ctx: str, knob: str, limit: int = _EPOCH_READ):
        """(run index, that run's moves of ``knob``, its outcome) in ``ctx``, newest first."""
        rows = self.db.execute("SELECT m.idx, m.moves, r.outcome FROM novelty_moves m JOIN novelty_runs r "
                               "ON r.idx = m.idx WHERE m.ctx = ? AND m.knob = ? ORDER BY m.idx DESC LIMIT ?",
                               (ctx, knob, limit))
        for idx, moves, outcome in rows:
            yield idx, [tuple(m) for m in json.loads(moves)], outcome

    def _last_keep(self, ctx: str) -> int | None:
        row = self.db.execute("SELECT max(idx) FROM novelty_runs WHERE ctx = ? AND outcome = 'k'", (ctx,)).fetchone()
        return row[0] if row else None

    def _has_context(self, ctx: str) -> bool:
        return _SEEDED in self.context_state(ctx)

    def _newest_context(self) -> str:
        row = self.db.execute("SELECT ctx FROM novelty_runs ORDER BY idx DESC LIMIT 1").fetchone()
        return row[0] if row else ""

    def _same_code(self, fingerprint: str) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT idx FROM novelty_runs WHERE fingerprint = ?", (fingerprint,))]

    def _doc_freq(self, words) -> dict[str, int]:
        missing = [w for w in words if w not in self._df]
        for chunk in _chunks(missing, 500):
            marks = ",".join("?" * len(chunk))
            found = dict(self.db.execute(f"SELECT token, df FROM novelty_df WHERE token IN ({marks})", chunk))
            for word in chunk:
                self._df[word] = found.get(word, 0)
        return {w: self._df[w] for w in words}

    def _postings(self, word: str, exclude_moved: bool) -> list[int]:
        sql = ("SELECT p.idx FROM novelty_postings p JOIN novelty_runs r ON r.idx = p.idx WHERE p.token = ? AND "
               "r.moved = 0 ORDER BY p.idx DESC LIMIT ?") if exclude_moved else (
               "SELECT idx FROM novelty_postings WHERE token = ? ORDER BY idx DESC LIMIT ?")
        return [r[0] for r in self.db.execute(sql, (word, _POSTINGS_READ))]

    def _doc_tokens(self, indexes: list[int]) -> dict[int, tuple[str, ...]]:
        out: dict[int, tuple[str, ...]] = {}
        for chunk in _chunks(indexes, 500):
            marks = ",".join("?" * len(chunk))
            for idx, words in self.db.execute(f"SELECT idx, tokens FROM novelty_runs WHERE idx IN ({marks})", chunk):
                out[idx] = tuple(words.split(" ")) if words else ()
        return out

    # -- classifying ----------------------------------------------------------------------------
    def classify(self, proposal: Proposal, runs: Sequence[Run], mode: str = "explore",
                 threshold: float = DEFAULT_THRESHOLD, limit: int = 5) -> NoveltyResult:
        """Classify ``proposal`` against every run added so far; ``runs[i]`` is the run with index i."""
        if mode not in POLICY:
            raise ValueError(f"unknown mode {mode!r}: expected one of {', '.join(POLICY)}")
        threshold = float(threshold)
        self.flush()
        cls, evidence, reasons, part = self._verdict(proposal, threshold, runs)
        matches = [m for m in (_match(runs, e) for e in evidence[: max(int(limit), 0)]) if m]
        return NoveltyResult(cls, POLICY[mode][cls], mode, threshold, matches, reasons, part)

    def proposal_context(self, proposal: Proposal) -> str:
        """The proposal's context: given, else its family when that names a known context, else the
        newest run's (the current arena)."""
        for ctx in (proposal.context, proposal.family):
            if ctx is not None and self._has_context(str(ctx)):
                return str(ctx)
        return proposal.context or self._newest_context()

    def _verdict(self, proposal: Proposal, threshold: float,
                 runs: Sequence[Run]) -> tuple[str, list[_Evidence], list[str], str | None]:
        if self.size == 0:
            return "novel", [], ["no runs in history yet: nothing to compare against"], None
        duplicate = self._duplicates(proposal)
        if duplicate:
            return "duplicate_run", duplicate, [
                f"train.py is identical (whitespace-normalised) to {plural(len(duplicate), 'earlier run')}"], None
        ctx = self.proposal_context(proposal)
        if not self._has_context(ctx):
            return "novel", [], [f"the first run of context {ctx!r}: nothing comparable yet"], None
        best = self._last_keep(ctx)
        if is_baseline(proposal.description):
            return "duplicate_run", self._current_best(best, "re-baseline of the current best config"), [
                "a re-baseline re-runs the current configuration" + (f" (best so far: run {_label(runs, best)})"
                                                                      if best is not None else "")], None
        point, state = self.operating_point(ctx), self.context_state(ctx)
        stated = merge_changes(list(proposal.changes), list(_text_facts(proposal.description or "")))
        facts, _ = read_owners(self._known_names(ctx, stated, remember=False), point)
        resolved = [_unset_default(m, state) for m in (to_move(f, point) for f in facts) if m]
        if not all(in_place(m, point) for m in resolved):  # beside anything else, a technique in place is context
            resolved = [m for m in resolved if not in_place(m, point)]
        else:  # alone, it names another form of it ("softplus VE gate" where the VE gate is in place)
            resolved = [reshapes(m) for m in resolved]
        moves = ramp_start_moves([m for m in resolved if m[0] != "="], point)
        moves += [m for m in (_removal_as_value(m, point) for m in moves) if m]
        rerun = is_rerun(proposal.description)
        if not moves and (rerun or _names_the_current(resolved, proposal.description)):
            if resolved and not rerun:
                text_cls, text_evidence, text_reasons = self._by_text(proposal, threshold, True, runs)
                if text_cls in ("repeat_failure", "incremental_followup"):
                    return text_cls, text_evidence, text_reasons, None
            return self._rerun(ctx, [m for m in resolved if m[0] == "="], best, runs)
        again = self._same_run(ctx, proposal, moves, facts, runs)
        if again:
            return "duplicate_run", again, [again[0].reason], None
        reshaped = bool(moves) and all(m[0] == "c" and m[4] == IN_PLACE for m in moves)
        if reshaped and is_paragraph(proposal.description):
            # in a paragraph, techniques in place name where the change goes ("freeze tok_emb during TTT"):
            # the change is in its words
            text_cls, text_evidence, text_reasons = self._by_text(proposal, threshold, False, runs)
            return text_cls, text_evidence, text_reasons, None
        cls, evidence, reasons, part = self._by_changes(ctx, moves, runs)
        if cls == "incremental_followup" and reshaped:
            again = self._re_proposed(proposal, evidence)  # a kept technique named alone is a variant of it,
            if again:  # unless the words re-propose the kept run itself
                return "known_success", again, [again[0].reason], None
        if cls != "novel":
            return cls, evidence, reasons, part
        text_cls, text_evidence, text_reasons = self._by_text(proposal, threshold, bool(facts), runs)
        return text_cls, text_evidence, reasons + text_reasons, None

    def _re_proposed(self, proposal: Proposal, kept: list[_Evidence]) -> list[_Evidence]:
        """The kept runs a follow-up rests on (``kept``) whose words the proposal repeats (the same content
        words, give or take one in five: Jaccard ≥ :data:`_SAME_WORDS`): it re-proposes that run, not a variant."""
        query = set(text_tokens(proposal.description, proposal.tags, proposal.family, proposal.hypothesis))
        docs = self._doc_tokens([e.index for e in kept]) if query else {}
        same = [i for i, words in ((i, set(w)) for i, w in docs.items())
                if len(query & words) >= _SAME_WORDS * len(query | words)]
        return [_Evidence(i, 1.0, ["text_identity"], "the same words as that kept run: it re-proposes it")
                for i in sorted(same, reverse=True)]

    def _current_best(self, best: int | None, why: str) -> list[_Evidence]:
        return [] if best is None else [_Evidence(best, 1.0, ["operating_point", "rerun"], why)]

    def _rerun(self, ctx: str, noops: list[tuple], best: int | None,
               runs: Sequence[Run]) -> tuple[str, list[_Evidence], list[str], str | None]:
        """No knob moves: a re-run or re-verification of the current configuration."""
        state, evidence, reasons = self.context_state(ctx), [], []
        for noop in noops:
            setter = state.get(noop[1], [None, None])[1]
            where = f"set by run {_label(runs, setter)}" if setter is not None else "the default"
            reasons.append(f"{move_text(noop)}: already the current value ({where})")
            if setter is not None:
                evidence.append(_Evidence(setter, 1.0, ["operating_point", f"{noop[1]}=current"],
                                          f"that run set {noop[1]} to {_fmt(noop[2])}, its current value"))
        if not evidence:
            evidence = self._current_best(best, "the current best configuration, re-run")
        if not reasons:
            reasons = ["a re-run / re-verification with no change of logic"]
        return "duplicate_run", _dedupe_evidence(evidence), reasons, None

    def _duplicates(self, proposal: Proposal) -> list[_Evidence]:
        same: set[int] = set()
        for fp in proposal.code_fingerprints or ():
            if fp:
                same.update(self._same_code(fp))
        found = sorted(same, reverse=True)
        return [_Evidence(i, 1.0, ["code_identity"], "train.py is byte-identical after normalising "
                          f"whitespace (that run was {_outcome_word(self.outcome(i))})") for i in found]

    def _same_run(self, ctx: str, proposal: Proposal, moves: list[tuple], facts: list[dict],
                  runs: Sequence[Run]) -> list[_Evidence]:
        """The earlier run this one repeats as a run, not as an idea: the same moves (and no other knob
        named) with nothing kept that moved the operating point since, and either the same commit (a row
        without code identity: the same change run on a second machine) or words that say it is a re-run
        ("retry", "re-run"). Newest first; [] when there is none."""
        commit = proposal.commit if not proposal.code_fingerprints else None
        retry = is_rerun(proposal.description)
        if not moves or not (commit or retry):
            return []
        names = {str(f.get("name")) for f in facts}
        for idx in self._same_moves(ctx, moves):
            run = runs[idx] if 0 <= idx < len(runs) else None
            if run is None or {str(f.get("name")) for f in run_facts(run)} != names:
                continue
            if commit and not run.code_fingerprint and self._run_again(runs, idx, commit):
                why = f"the same commit ({run.short_commit}) and the same change as that run, nothing kept since"
                return [_Evidence(idx, 1.0, ["commit_identity"], why)]
            if retry:
                return [_Evidence(idx, 1.0, ["rerun"], "a re-run of that run's change, nothing kept since")]
        return []

    def _same_moves(self, ctx: str, moves: list[tuple]) -> list[int]:
        """Runs of ``ctx`` that made every one of ``moves`` (:func:`_same_move`) since the newest kept run
        that moved the operating point (that run included), newest first."""
        since = self._last_moving_keep(ctx)
        found: set[int] | None = None
        for move in moves:
            newer = takewhile(lambda item: item[0] >= since, self._knob_moves(ctx, move[1]))
            same = {idx for idx, earlier, _ in newer if any(_same_move(move, e) for e in earlier)}
            found = same if found is None else found & same
        return sorted(found or (), reverse=True)

    def _run_again(self, runs: Sequence[Run], idx: int, commit: str) -> bool:
        """Whether the proposal runs run ``idx``'s commit again right after it: that commit was new at
        ``idx`` (the row before it ran another one) and every row since is on it. Where rows stay on one
        commit while their changes differ (an agent that commits rarely), the commit names no code."""
        if self.size - idx > _PAIR_SPAN or (idx > 0 and runs[idx - 1].commit == commit):
            return False
        return all(runs[j].commit == commit for j in range(idx, self.size))

    def _last_moving_keep(self, ctx: str) -> int:
        """The newest kept run of ``ctx`` that moved a knob (a kept re-run or baseline moves nothing), or -1."""
        row = self.db.execute("SELECT idx FROM novelty_runs WHERE ctx = ? AND outcome = 'k' AND moved = 1 "
                              "ORDER BY idx DESC LIMIT 1", (ctx,)).fetchone()
        return row[0] if row else -1

    # -- change signature -------------------------------------------------------------------------
    def _by_changes(self, ctx: str, moves: list[tuple],
                    runs: Sequence[Run]) -> tuple[str, list[_Evidence], list[str], str | None]:
        verdicts = [(move, self._move_evidence(ctx, move)) for move in moves]
        classes = [_move_class(found) for _, found in verdicts]
        if "repeat_failure" in classes:
            cls = "repeat_failure"
        elif classes and all(c == "known_success" for c in classes):
            cls = "known_success"
        elif any(c in ("known_success", "incremental_followup") for c in classes):
            cls = "incremental_followup"
        else:
            cls = "novel"
        reasons, evidence = [], []
        for (move, found), move_cls in zip(verdicts, classes, strict=True):
            reasons.append(_move_reason(move, move_cls, found, runs))
            if move_cls == cls or (cls == "incremental_followup" and move_cls == "known_success"):
                evidence.extend(_move_evidence_items(move, found, move_cls))
        part = "; ".join(move_text(m) for m, c in zip(moves, classes, strict=True) if c == "repeat_failure")
        return cls, _dedupe_evidence(evidence), reasons, part or None

    def _move_evidence(self, ctx: str, move: tuple) -> dict[str, list[tuple[int, str, tuple]]]:
        """Earlier moves of the same knob in ``ctx`` since its last keep, newest first.

        ``fail``: failed moves the proposal repeats (same direction from the same operating point);
        ``same`` / ``further``: the last kept move, re-applied or built on; ``parent``: a kept
        technique this knob tunes. Failures older than the knob's last keep are stale: that keep moved
        the operating point.
        """
        found: dict[str, list] = {"fail": [], "same": [], "further": [], "parent": []}
        failed: list[tuple[int, tuple]] = []  # every failed move since the knob's last keep, newest first
        returned = False  # past a keep the knob has since left: only failures from the same start count
        for idx, earlier_moves, outcome in self._knob_moves(ctx, move[1]):
            if outcome == _KEEP and not returned:
                for earlier in earlier_moves:
                    if same_as_kept(move, earlier):
                        found["same"].append((idx, "same", earlier))
                    elif builds_on_keep(move, earlier):
                        found["further"].append((idx, "further", earlier))
                returned = not found["same"] and _returned_to(move, earlier_moves)
                if not returned:
                    if not any(e[0] == "n" and e[2] == move[2] for e in earlier_moves):  # turns back from the keep
                        found["fail"].extend(self._failed_from_the_same_start(ctx, move, idx))
                    break
                continue
            if returned:
                if outcome == _FAIL and len(found["fail"]) < _MAX_EVIDENCE:
                    found["fail"].extend((idx, "repeat", e) for e in earlier_moves if _same_start(move, e)
                                         and repeats(move, e))
                continue
            if outcome == _FAIL:
                failed.extend((idx, e) for e in earlier_moves)
                if len(found["fail"]) < _MAX_EVIDENCE:
                    found["fail"].extend((idx, "repeat", e) for e in earlier_moves if repeats(move, e))
        if not found["fail"] and failed:
            pushed = goes_on_from(move, pushed_on([e for _, e in reversed(failed)]))
            found["fail"].extend((idx, "repeat", e) for idx, e in failed if e is pushed)
        if not found["fail"]:
            found["fail"].extend((idx, "between", e) for idx, e in bracketed_by(move, failed))
        parent = PARENT.get(move[1])
        if parent and not (found["fail"] or found["same"] or found["further"]):
            for idx, earlier_moves, outcome in self._knob_moves(ctx, parent):
                if outcome == _KEEP:
                    found["parent"].extend((idx, "parent", e) for e in earlier_moves if e[2] != "removed")
                    break
        return found

    def _failed_from_the_same_start(self, ctx: str, move: tuple, before: int) -> list[tuple[int, str, tuple]]:
        """Failures older than the knob's last keep (index ``before``) that made the proposal's move from the
        value the keep set again: the same move from the same operating point, whatever changed between."""
        if move[0] != "n" or move[3] is None:
            return []
        start = f", {json.dumps(move[3])}, "  # the start as the stored move writes it: rows without it are not read
        rows = self.db.execute("SELECT m.idx, m.moves FROM novelty_moves m JOIN novelty_runs r ON r.idx = m.idx "
                               "WHERE m.ctx = ? AND m.knob = ? AND m.idx < ? AND r.outcome = ? AND instr(m.moves, ?) "
                               "ORDER BY m.idx DESC LIMIT ?", (ctx, move[1], before, _FAIL, start, _TURN_BACK_READ))
        out = []
        for idx, moves in rows:
            out.extend((idx, "repeat", e) for e in map(tuple, json.loads(moves)) if _same_start(move, e)
                       and repeats(move, e))
            if len(out) >= _MAX_EVIDENCE:
                break
        return out

    # -- text similarity --------------------------------------------------------------------------
    def _by_text(self, proposal: Proposal, threshold: float, has_facts: bool,
                 runs: Sequence[Run]) -> tuple[str, list[_Evidence], list[str]]:
        query = text_tokens(proposal.description, proposal.tags, proposal.family, proposal.hypothesis)
        if not query:
            return "novel", [], ["the description has no content words to compare"]
        scored = self._text_scores(query, exclude_moved=has_facts)
        threshold = length_threshold(threshold, len(query))
        above = self._same_direction([(s, i) for s, i in scored if s >= threshold], query)
        if not above:
            best = f"; closest {scored[0][0]:.2f}" if scored else ""
            evidence = [_Evidence(i, round(s, 4), ["text_similarity"], "closest description (below the threshold)")
                        for s, i in scored[:_MAX_EVIDENCE]]
            if scored and scored[0][0] >= threshold:  # close in words, but they move the other way
                return "novel", evidence, [f"the closest descriptions (text similarity {scored[0][0]:.2f} ≥ "
                                           f"{threshold:.2f}) move the other way, so none of them is this idea"]
            return "novel", evidence, [f"no earlier description reaches text similarity {threshold:.2f}{best}"]
        score, best = above[0]
        earlier = runs[best].description if 0 <= best < len(runs) else None
        cls = self._text_class(score, best, proposal.description, earlier)
        evidence = [_Evidence(i, round(s, 4), ["text_similarity"], f"description similarity {s:.2f} ≥ {threshold:.2f}; "
                              f"that run was {_outcome_word(self.outcome(i))}") for s, i in above[:_MAX_EVIDENCE]]
        return cls, evidence, [f"{cls}: description {score:.2f} similar (threshold {threshold:.2f}) to run "
                               f"{_label(runs, best)} ({_outcome_word(self.outcome(best))})"]

    def _same_direction(self, above: list[tuple[float, int]], query: set[str]) -> list[tuple[float, int]]:
        """``above`` without failed runs whose words move the opposite way ("lower the qk gain" is not a
        repeat of a failed "raise the qk gain": the opposite direction of a failure is new ground)."""
        direction = _text_direction(query)
        if direction is None or not above:
            return above
        docs = self._doc_tokens([i for _, i in above])
        return [(s, i) for s, i in above if _text_direction(docs.get(i, ())) in (None, direction)
                or self.outcome(i) != _FAIL]

    def _text_class(self, score: float, best: int, description: str, earlier: str | None = None) -> str:
        """The class a text match gives. Words as close as a kept run's with other numbers ("short window
        seq_len/4 to seq_len/8" after a kept "seq_len/2 to seq_len/4") take the kept idea further: a
        follow-up, not the same idea again."""
        outcome = self.outcome(best)
        if outcome == _FAIL:
            return "repeat_failure"
        if outcome != _KEEP:  # the closest run said nothing about the idea (a bug or infrastructure crash)
            return "novel"
        if (score >= KNOWN_SUCCESS_SIMILARITY and not names_followup(description)
                and (earlier is None or _numbers_in(description) == _numbers_in(earlier))):
            return "known_success"
        return "incremental_followup"

    def _text_scores(self, query: set[str], exclude_moved: bool) -> list[tuple[float, int]]:
        """(cosine, run index) of the best candidates, best first, newest first among ties."""
        n_docs = self.n_docs
        weights = {t: self._idf(df, n_docs) ** 2 for t, df in self._doc_freq(query).items()}
        weights = {t: w for t, w in weights.items() if w > 0}
        if not weights:
            return []
        acc: dict[int, float] = {}
        for word, weight in weights.items():
            for i in self._postings(word, exclude_moved):
                acc[i] = acc.get(i, 0.0) + weight
        top = heapq.nlargest(_TEXT_CANDIDATES, acc.items(), key=_second)
        docs = self._doc_tokens([i for i, _ in top])
        df = self._doc_freq({t for tokens in docs.values() for t in tokens})
        q_norm = math.sqrt(sum(weights.values()))
        need = min(_MIN_SHARED, len(weights))
        scored = []
        for i, dot in top:
            tokens = docs.get(i, ())
            if len(weights.keys() & set(tokens)) >= need:
                norm = math.sqrt(sum(self._idf(df[t], n_docs) ** 2 for t in tokens)) or 1.0
                scored.append((dot / (q_norm * norm), i))
        scored.sort(key=_score_then_recent, reverse=True)
        return [(min(s, 1.0), i) for s, i in scored]

    @staticmethod
    def _idf(df: int, n_docs: int) -> float:
        """Smoothed IDF; 0 for words in more than half of a large history (they tell runs apart poorly)."""
        if n_docs >= _COMMON_MIN and df > _COMMON_DF * n_docs:
            return 0.0
        return math.log(1.0 + (n_docs + 1) / (df + 1))


def length_threshold(threshold: float, n_words: int) -> float:
    """The text-similarity threshold for a description of ``n_words`` content words. Two wordings of one idea
    share about as many content words (its name, its place) however long they are, so the cosine of two long
    paraphrases is diluted by every word around them: past :data:`_SHORT_QUERY_WORDS` words the threshold falls
    as the square root of the length, to :data:`_LONG_QUERY_FLOOR` (a paragraph hypothesis); a terse
    description keeps ``threshold`` whole (docs/novelty.md §2)."""
    if n_words <= _SHORT_QUERY_WORDS:
        return threshold
    return max(min(threshold, _LONG_QUERY_FLOOR), threshold * math.sqrt(_SHORT_QUERY_WORDS / n_words))


def _chunks(items: list, size: int):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _second(item: tuple) -> float:
    return item[1]


def _score_then_recent(item: tuple[float, int]) -> tuple[float, int]:
    return (round(item[0], 9), item[1])


def _text_direction(words) -> str | None:
    """``up`` or ``down`` when a description's tokens move one way only, else None."""
    found = {"up", "down"}.intersection(words)
    return found.pop() if len(found) == 1 else None


def _outcome_word(outcome: str) -> str:
    return {_FAIL: "a failure", _KEEP: "kept"}.get(outcome, "without evidence (infrastructure crash)")


def _move_class(found: dict) -> str:
    if found["fail"]:
        return "repeat_failure"
    if found["same"]:
        return "known_success"
    return "incremental_followup" if found["further"] or found["parent"] else "novel"


def _evidence_key(found: dict, move_cls: str) -> str | None:
    if move_cls == "incremental_followup":
        return "further" if found["further"] else "parent"
    return {"repeat_failure": "fail", "known_success": "same"}.get(move_cls)


def _move_evidence_items(move: tuple, found: dict, move_cls: str) -> list[_Evidence]:
    key = _evidence_key(found, move_cls)
    items = []
    for idx, rel, earlier in found.get(key, []) if key else []:
        signals = ["change_signature", f"{move[1]}:{move[2] or 'set'}", rel]
        items.append(_Evidence(idx, _RELATION_SCORE[rel], signals, _relation_reason(move, earlier, rel)))
    return items


def _relation_reason(move: tuple, earlier: tuple, rel: str) -> str:
    this, that = move_text(move), move_text(earlier)
    if rel == "repeat":
        if move[0] == earlier[0] == "n" and move[3] is not None and earlier[3] is not None \
                and not _close(move[3], earlier[3]):  # a push going on from where a failed chain left the knob
            return f"that run ({that}) failed; {this} goes on the same way from where it left the knob"
        return f"that run ({that}) failed; {this} moves the same way from the same operating point"
    if rel == "between":
        return (f"that run ({that}) failed, and so did one on the other side of {_fmt(move[4])}: wherever the knob "
                f"stands, {this} moves it the way one of them did")
    if rel == "same":
        return f"that run kept the same move ({that})"
    if rel == "parent":
        return f"that run kept {that}; {this} tunes that kept technique"
    return f"that run kept {that}, the knob's last move; {this} builds on it"


_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")


def _numbers_in(description: str) -> list[str]:
    """The numbers a description states, outcome notes left out, in order."""
    return _NUMBER_RE.findall(strip_outcome_notes(description))


def _label(runs: Sequence[Run], index: int) -> str:
    """How reasons name a run: its id (and commit when it has one)."""
    if 0 <= index < len(runs):
        run = runs[index]
        return f"{run.run_id} ({run.short_commit})" if run.commit and run.commit not in run.run_id else run.run_id
    return f"#{index}"


def _move_reason(move: tuple, move_cls: str, found: dict, runs: Sequence[Run]) -> str:
    if move_cls == "novel":
        return f"{move_text(move)}: no earlier run made this move (or only its opposite)"
    key = _evidence_key(found, move_cls)
    names = ", ".join(_label(runs, idx) for idx, _, _ in found[key][:5])
    return f"{move_text(move)}: {move_cls} of {'run' if ',' not in names else 'runs'} {names}"


def _dedupe_evidence(items: list[_Evidence]) -> list[_Evidence]:
    """One entry per run (the strongest), strongest first, newest first among equals."""
    best: dict[int, _Evidence] = {}
    for item in items:
        if item.index not in best or item.score > best[item.index].score:
            best[item.index] = item
    return sorted(best.values(), key=lambda e: (-e.score, -e.index))


def _match(runs: Sequence[Run], ev: _Evidence) -> Match | None:
    if not 0 <= ev.index < len(runs):
        return None
    run = runs[ev.index]
    return Match(run.run_id, ev.index, ev.score, run.status, run.val_bpb, run.description, ev.signals, ev.reason)
