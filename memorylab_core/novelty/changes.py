"""Change facts: what an experiment changed, from the train.py diff and from its description.

A *change fact* is a small JSON-friendly dict::

    {"name": "MATRIX_LR", "old": 0.04, "new": 0.05, "direction": "up", "source": "diff"}

``direction`` is one of ``up``, ``down`` (numeric moves), ``changed`` (a new value whose direction is
not known or not numeric, e.g. the activation), ``added`` / ``removed`` (a constant or component
appeared / disappeared). Facts taken from text may carry ``"factor"`` (``halve`` → 0.5, ``double`` →
2) when the text gives a ratio but not both values.

* :func:`code_fingerprint` — identity of a train.py up to whitespace.
* :func:`diff_constants` — top-level constants (``NAME = <literal>``) that changed between two files,
  read with :mod:`ast` and a small safe evaluator (nothing is executed).
* :func:`text_changes` — the same facts read from free text such as "matrix LR 0.04 → 0.05",
  "halve batch size", "SwiGLU instead of ReLU²" (knob aliases live in :mod:`memorylab_core.textnorm`).
* :func:`merge_changes` — a run's change signature: diff facts win, text facts fill the gaps.

Standard library only.
"""

from __future__ import annotations

import ast
import hashlib
import math
import re
import unicodedata
from typing import Any

from ..lazyre import lazy
from .textnorm import CATEGORY_ALIASES, KNOB_ALIASES, NUMBER_WORDS, VERB_WORDS, strip_outcome_notes
from .vocabulary import category_aliases, knob_aliases

__all__ = ["code_fingerprint", "diff_constants", "text_changes", "merge_changes", "DIRECTIONS"]

DIRECTIONS = ("up", "down", "changed", "added", "removed")

_CONSTANT_NAME = lazy(r"^[A-Z][A-Z0-9_]*$")
_MAX_DEPTH = 24
_MAX_ITEMS = 4096
_MAX_STR = 10_000
_MAX_INT_BITS = 256
_OPAQUE = object()  # a constant whose value is not a safe literal
_MISSING = object()  # a constant absent from the old file


def code_fingerprint(source: str) -> str:
    """sha256 hex of ``source`` with whitespace normalised.

    CRLF / CR become LF, a leading BOM and trailing whitespace on each line are dropped, blank lines
    are removed and the text ends with exactly one newline, so two train.py files that differ only
    in such whitespace share a fingerprint. Indentation and spacing inside lines still count.
    """
    text = str(source).lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    body = "\n".join(line.rstrip() for line in text.split("\n") if line.strip())
    return hashlib.sha256((body + "\n").encode("utf-8", "surrogatepass")).hexdigest()


def diff_constants(old_source: str | None, new_source: str) -> list[dict]:
    """Top-level constants that differ between ``old_source`` and ``new_source``.

    Only ``UPPER_CASE = <literal>`` assignments count, where the literal may use simple arithmetic
    (``2**19``, ``0.5 * 3``), tuples/lists/dicts of literals and strings. Constants assigned
    anything else (calls, names, conditionals) are ignored in both files. Returns ``[]`` when there
    is no parent (``old_source`` is None: nothing to compare against) or either file does not parse.
    Facts come in the order the names appear in the new file, then removed names.
    """
    if old_source is None:
        return []
    old, new = _constants(old_source), _constants(new_source)
    if old is None or new is None:
        return []
    facts = []
    for name, value in new.items():
        fact = _constant_fact(name, old.get(name, _MISSING), value)
        if fact:
            facts.append(fact)
    for name, value in old.items():
        if name not in new and value is not _OPAQUE:
            facts.append({"name": name, "old": value, "new": None, "direction": "removed", "source": "diff"})
    return facts



def _constant_fact(name: str, before: Any, after: Any) -> dict | None:
    if after is _OPAQUE or before is _OPAQUE:
        return None
    if before is _MISSING:
        return {"name": name, "old": None, "new": after, "direction": "added", "source": "diff"}
    direction = _direction(before, after)
    if direction is None:
        return None
    return {"name": name, "old": before, "new": after, "direction": direction, "source": "diff"}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _direction(old: Any, new: Any) -> str | None:
    """up / down for numbers, changed for any other difference, None when equal."""
    if _is_number(old) and _is_number(new):
        if new > old:
            return "up"
        return "down" if new < old else None
    if type(old) is type(new) and old == new:
        return None
    return "changed"


def _constants(source: str) -> dict[str, Any] | None:
    """Top-level ``NAME = value`` constants of ``source`` (``_OPAQUE`` for non-literals); None if unparseable."""
    try:
        tree = ast.parse(str(source).lstrip("\ufeff"))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    found: dict[str, Any] = {}
    for stmt in tree.body:
        for name, node in _assignments(stmt):
            found[name] = _safe_literal(node)
    return found


def _assignments(stmt: ast.stmt) -> list[tuple[str, ast.expr]]:
    if isinstance(stmt, ast.Assign):
        names = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
        return [(n, stmt.value) for n in names if _CONSTANT_NAME.match(n)]
    if isinstance(stmt, ast.AnnAssign) and stmt.value is not None and isinstance(stmt.target, ast.Name):
        return [(stmt.target.id, stmt.value)] if _CONSTANT_NAME.match(stmt.target.id) else []
    return []


class _NotLiteral(Exception):
    """The expression is not a safe literal."""


def _safe_literal(node: ast.expr) -> Any:
    try:
        return _literal(node, 0)
    except (_NotLiteral, ArithmeticError, ValueError, TypeError, RecursionError, MemoryError):
        return _OPAQUE


def _literal(node: ast.expr, depth: int) -> Any:
    """Evaluate literals and simple arithmetic only; everything else raises :class:`_NotLiteral`."""
    if depth > _MAX_DEPTH:
        raise _NotLiteral
    if isinstance(node, ast.Constant):
        return _constant(node.value)
    if isinstance(node, ast.UnaryOp):
        return _unary(node.op, _literal(node.operand, depth + 1))
    if isinstance(node, ast.BinOp):
        return _binary(node.op, _literal(node.left, depth + 1), _literal(node.right, depth + 1))
    if isinstance(node, (ast.Tuple, ast.List)):
        if len(node.elts) > _MAX_ITEMS:
            raise _NotLiteral
        return [_literal(e, depth + 1) for e in node.elts]
    if isinstance(node, ast.Dict):
        return _dict(node, depth)
    raise _NotLiteral


def _constant(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        if isinstance(value, str) and len(value) > _MAX_STR:
            raise _NotLiteral
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise _NotLiteral


def _dict(node: ast.Dict, depth: int) -> dict:
    if len(node.keys) > _MAX_ITEMS or any(k is None for k in node.keys):
        raise _NotLiteral
    out = {}
    for key, value in zip(node.keys, node.values, strict=True):
        k = _literal(key, depth + 1)
        if not isinstance(k, str):
            raise _NotLiteral
        out[k] = _literal(value, depth + 1)
    return out


def _unary(op: ast.unaryop, value: Any) -> Any:
    if _is_number(value) and isinstance(op, ast.USub):
        return -value
    if _is_number(value) and isinstance(op, ast.UAdd):
        return value
    raise _NotLiteral


def _binary(op: ast.operator, left: Any, right: Any) -> Any:
    if _is_number(left) and _is_number(right):
        return _checked(_numeric(op, left, right))
    if isinstance(op, ast.Add) and type(left) is type(right) and isinstance(left, (str, list)):
        return _sized(left + right)
    if isinstance(op, ast.Mult):
        if isinstance(left, (str, list)) and type(right) is int and 0 <= right * len(left) <= _MAX_STR:
            return left * right
        if isinstance(right, (str, list)) and type(left) is int and 0 <= left * len(right) <= _MAX_STR:
            return right * left
    raise _NotLiteral


def _numeric(op: ast.operator, a: int | float, b: int | float) -> int | float:
    if isinstance(op, ast.Add):
        return a + b
    if isinstance(op, ast.Sub):
        return a - b
    if isinstance(op, ast.Mult):
        return a * b
    if isinstance(op, ast.Div):
        return a / b
    if isinstance(op, ast.FloorDiv):
        return a // b
    if isinstance(op, ast.Mod):
        return a % b
    if isinstance(op, ast.Pow):
        return _power(a, b)
    raise _NotLiteral


def _power(a: int | float, b: int | float) -> int | float:
    """``a ** b`` with guards against huge results (``10**10**10``) and complex numbers."""
    if isinstance(a, int) and isinstance(b, int) and b >= 0:
        if b > 4096 or max(abs(a), 1).bit_length() * b > _MAX_INT_BITS:
            raise _NotLiteral
        return a**b
    result = math.pow(a, b)  # raises ValueError for complex results, OverflowError when huge
    return result


def _checked(value: int | float) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise _NotLiteral
    if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
        raise _NotLiteral
    return value


def _sized(value: Any) -> Any:
    if len(value) > _MAX_STR:
        raise _NotLiteral
    return value


def merge_changes(diff: list[dict], text: list[dict]) -> list[dict]:
    """The change signature of a run: every diff fact, plus text facts for knobs the diff lacks.

    The diff is what actually changed in train.py, so it wins; the description fills in what the
    diff cannot show (code-level changes such as the activation, or runs without a parent).
    Facts without a name are dropped; the result holds at most one fact per name from the text.
    """
    merged = [dict(f) for f in diff or () if isinstance(f, dict) and f.get("name")]
    seen = {f["name"] for f in merged}
    for fact in text or ():
        if isinstance(fact, dict) and fact.get("name") and fact["name"] not in seen:
            merged.append(dict(fact))
            seen.add(fact["name"])
    return merged


# --- facts from text ----------------------------------------------------------------------------
#
# The text is cleaned (outcome notes stripped, NFKC, lower case), cut into clauses (parenthetical
# groups are clauses of their own; ";", ",", " + " separate clauses), context qualifiers are cut off
# ("after 3x MLP", "at batch 2^13", "with Muon": they describe the situation, not the change), and
# each clause is split on "and" into pieces. In a piece, every knob mention takes the values that
# follow it ("0.04 -> 0.05", "from 8 to 4", "to 0.03", "8x") or directly precede it ("5% warmup"),
# and the edit verb before it ("lower", "halve", "remove"; a piece without one inherits the verb of
# the piece before, so "halve device and total batch" halves both). Categorical knobs (activation,
# optimizer, precision, window pattern) collect the value names in the piece and order them by the
# connecting words ("A -> B", "B instead of A", "replace A with B").

_B, _E = r"(?<![a-z0-9])", r"(?![a-z0-9])"


def _mention_regex() -> tuple[re.Pattern, dict[str, tuple[str, str, str | None]]]:
    """One alternation of every alias; the boundary checks sit outside it so that positions inside a
    word are rejected once, not once per alternative (Python's re has no alternation trie)."""
    parts, meta = [], {}
    for i, (name, kind, pattern) in enumerate((*knob_aliases(), *KNOB_ALIASES)):
        parts.append(f"(?P<k{i}>{pattern})")
        meta[f"k{i}"] = (name, kind, None)
    for i, (name, value, pattern) in enumerate((*category_aliases(), *CATEGORY_ALIASES)):
        parts.append(f"(?P<c{i}>{pattern})")
        meta[f"c{i}"] = (name, "cat", value)
    return lazy(f"{_B}(?=[a-z])(?:{'|'.join(parts)}){_E}"), meta


_MENTION_RE, _MENTION_META = _mention_regex()

_WORDNUM = "|".join(sorted(NUMBER_WORDS, key=len, reverse=True))
_NUMBER = (
    r"(?<![\w.^*/])-?(?:(?:\d+\s*/\s*\d+|\d*\.\d+(?:e[-+]?\d+)?|\d+(?:\.\d*)?(?:e[-+]?\d+)?)"
    r"(?:\s*(?:\^|\*\*)\s*-?\d+)?(?:\s*[km](?![a-z]))?(?:\s*(?:%|percent(?![a-z])|x(?![a-z0-9])|×))?"
    rf"|\b(?:{_WORDNUM})\b)"
)
_ARROW = r"\s*(?:->|-->|–>|—>|→|⟶|➔|➝|=>|⇒|(?:\b(?:up|down)\s+)?\bto\b|\binto\b)\s*"
_FILL = r"^[\s:=(]*(?:[a-z]+\s+){0,2}?"
_PAIR_RE = lazy(rf"{_FILL}(?:from\s+)?(?P<a>{_NUMBER}){_ARROW}(?P<b>{_NUMBER})")
_BY_RE = lazy(rf"{_FILL}by\s+(?P<a>{_NUMBER})|^\s*[x×]\s*(?P<x>\d+(?:\.\d+)?)(?![\w.])")
_ONE_RE = lazy(rf"{_FILL}(?:to\s+|=\s*|of\s+)?(?P<a>{_NUMBER})")
_PRE_RE = lazy(rf"(?P<a>{_NUMBER})\s*$")
_BARE_PAIR_RE = lazy(rf"(?P<a>{_NUMBER}){_ARROW}(?P<b>{_NUMBER})")
_CLAUSE_SPLIT_RE = lazy(r"\s*(?:;|,(?!\d{3}\b)|\s\+\s|\bplus\b|\bas well as\b)\s*")
_PIECE_SPLIT_RE = lazy(r"\s+(?:and|&|then)\s+")
_CONTEXT_RE = lazy(
    r"\s(?:after|at|with|for|on|given|under|when|while|since|because|due\s+to|so\s+that|"
    r"to\s+(?:avoid|fix|match|compensate|keep)|compared\s+to|relative\s+to|vs\.?|versus|across)\s"
)
_SWAP_VERB_RE = lazy(r"\b(?:replac\w*|swap\w*|substitut\w*|trad\w*|exchang\w*)\b")
_TURN_RE = lazy(r"\b(?:turn|switch)\s*$")
_REORDER_RE = lazy(r"instead\s+of|in\s+place\s+of|rather\s+than|\bover\b|replac(?:es|ing)\b|supersed")
_WORD_RE = lazy(r"[a-z]+")


def text_changes(text: str) -> list[dict]:
    """Change facts read from a free-text description (``"source": "text"``), one per knob.

    Knob names are canonical (``MATRIX_LR``, ``DEPTH``, ``TOTAL_BATCH_SIZE``, ``WARMDOWN_RATIO``,
    ``ACTIVATION`` ...; see ``textnorm.KNOB_ALIASES``). Outcome notes are ignored. Never raises.
    """
    clean = unicodedata.normalize("NFKC", strip_outcome_notes(text)).lower()
    facts: list[dict] = []
    for clause in _clauses(clean):
        facts.extend(_clause_facts(clause))
    return _dedupe(facts)


def _clauses(text: str) -> list[str]:
    """Top-level text and each parenthetical group, split on clause separators. [...] tags are dropped."""
    if "(" not in text and "[" not in text:
        return [c.strip() for c in _CLAUSE_SPLIT_RE.split(text) if c.strip()]
    main, groups, depth, start, opener = [], [], 0, 0, ""
    for i, ch in enumerate(text):
        if ch in "([":
            if depth == 0:
                start, opener = i, ch
            depth += 1
        elif ch in ")]" and depth:
            depth -= 1
            if depth == 0:
                if opener == "(":
                    groups.append(text[start + 1 : i])
                main.append(" ")
        elif depth == 0:
            main.append(ch)
    if depth:
        main.append(text[start:])
    parts = ["".join(main), *groups]
    return [c.strip() for part in parts for c in _CLAUSE_SPLIT_RE.split(part) if c.strip()]


def _cut_context(clause: str) -> str:
    """Drop a trailing context qualifier ("... after 3x MLP", "... at batch 2^13", "... with Muon")."""
    for m in _CONTEXT_RE.finditer(clause):
        word, before = m.group().split()[0], clause[: m.start()]
        if word in ("with", "for") and _SWAP_VERB_RE.search(before):
            continue
        if word == "on" and _TURN_RE.search(before):
            continue
        return before
    return clause


def _clause_facts(clause: str) -> list[dict]:
    pieces = _repair_coordination(_PIECE_SPLIT_RE.split(_cut_context(clause)))
    facts, verb = [], None
    for piece in pieces:
        piece_facts, verb = _piece_facts(piece, verb)
        facts.extend(piece_facts)
    return facts


def _repair_coordination(pieces: list[str]) -> list[str]:
    """"halve device and total batch" → "halve device batch", "total batch" (shared head noun)."""
    out = list(pieces)
    for i in range(len(out) - 1):
        words = _WORD_RE.findall(out[i])
        if not words or len(words) > 3 or _MENTION_RE.search(out[i]) or words[-1] in VERB_WORDS:
            continue
        nxt = _MENTION_RE.search(out[i + 1])
        if nxt:
            out[i] = f"{out[i]} {nxt.group().split()[-1]}"
    return out


def _piece_verb(text: str) -> tuple[str, float | None] | None:
    for word in reversed(_WORD_RE.findall(text)):
        if word in VERB_WORDS:
            return VERB_WORDS[word]
    return None


def _verb(pre: str, post: str) -> tuple[str, float | None] | None:
    """The edit verb before a mention, or a participle right after it ("depth increased to 10")."""
    found = _piece_verb(pre)
    if found:
        return found
    m = re.match(r"\s*(?:is\s+|was\s+)?([a-z]+)", post)
    if m and m.group(1).endswith("ed") and m.group(1) in VERB_WORDS:
        return VERB_WORDS[m.group(1)]
    return None


def _piece_facts(piece: str, inherited: tuple | None) -> tuple[list[dict], tuple | None]:
    mentions = list(_MENTION_RE.finditer(piece))
    if not mentions:
        fact = _bare_power_pair(piece) or _unknown_knob(piece)
        return ([fact] if fact else []), _piece_verb(piece) or inherited
    if any(VERB_WORDS.get(w, ("",))[0] == "keep" for w in _WORD_RE.findall(piece)):
        return [], inherited
    facts, cats, first_verb = [], {}, None
    for idx, m in enumerate(mentions):
        name, kind, value = _MENTION_META[m.lastgroup]
        pre = piece[mentions[idx - 1].end() if idx else 0 : m.start()]
        post = piece[m.end() : mentions[idx + 1].start() if idx + 1 < len(mentions) else len(piece)]
        verb = _verb(pre, post) or (inherited if idx == 0 else None)
        first_verb = first_verb or verb
        if kind == "cat":
            cats.setdefault(name, []).append((m, value, verb, post))
            continue
        fact = _numeric_fact(name, kind, pre if idx == 0 else "", post, verb)
        if fact:
            facts.append(fact)
    for name, items in cats.items():
        fact = _categorical_fact(name, items, piece)
        if fact:
            facts.append(fact)
    return facts, first_verb or inherited


def _values(pre: str, post: str) -> tuple[Any, Any, str | None]:
    """(old, new, by-text) from the text after a mention, or a value right before it."""
    m = _PAIR_RE.match(post)
    if m:
        return _parse_number(m.group("a")), _parse_number(m.group("b")), None
    m = _BY_RE.match(post)
    if m:
        return None, None, m.group("a") or f"{m.group('x')}x"
    m = _ONE_RE.match(post)
    if m:
        return None, _parse_number(m.group("a")), None
    m = _PRE_RE.search(pre) if pre else None
    return None, (_parse_number(m.group("a")) if m else None), None


def _numeric_fact(name: str, kind: str, pre: str, post: str, verb: tuple | None) -> dict | None:
    meaning, factor = verb or (None, None)
    old, new, by = _values(pre, post)
    if by is not None and meaning is None and by.endswith("x"):  # "LR x2": the multiplier says which way
        value = _parse_number(by)
        meaning = "up" if _is_number(value) and value > 1 else "down"
    if by is not None:
        factor = _by_factor(by, meaning)
    if name == "WARMDOWN_RATIO" and old is None and new is None and re.search(r"\bfull\s*$", pre):
        new = 1.0  # "full anneal": the whole budget is warmdown
    if meaning == "revert" and old is not None and new is not None:
        old, new = new, old
    direction = _numeric_direction(kind, meaning, old, new)
    if direction is None:
        return None
    fact = {"name": name, "old": old, "new": new, "direction": direction, "source": "text"}
    if factor and (old is None or new is None):
        fact["factor"] = factor
    return fact


def _numeric_direction(kind: str, meaning: str | None, old: Any, new: Any) -> str | None:
    if old is not None and new is not None:
        return _direction(old, new) if _is_number(old) and _is_number(new) else None
    if new is not None:
        if meaning in ("up", "down"):
            return meaning
        return "down" if meaning == "remove" else "changed"
    if meaning in ("up", "down"):
        return meaning
    if meaning == "remove":
        return "removed"
    if meaning == "add" or (kind == "comp" and meaning in (None, "set")):
        return "added"
    return None


def _by_factor(text: str, meaning: str | None) -> float | None:
    """"by 20%" / "by 2x" as a multiplicative factor in the verb's direction."""
    value = _parse_number(text)
    if not _is_number(value) or value <= 0 or meaning not in ("up", "down"):
        return None
    if re.search(r"%|percent", text) or value < 1:
        return 1 + value if meaning == "up" else max(1 - value, 0.0)
    return value if meaning == "up" else 1 / value


def _categorical_fact(name: str, items: list[tuple], piece: str) -> dict | None:
    verb = items[0][2]
    meaning = verb[0] if verb else None
    named = [(m, _category_value(m, v)) for m, v, _, _ in items if v is not None]
    named = [pair for i, pair in enumerate(named) if i == 0 or pair[1] != named[i - 1][1]]
    if not named:
        return _window_fact(items, meaning) if name == "WINDOW_PATTERN" else None
    if len(named) == 1:
        value = named[0][1]
        if meaning == "remove" and name != "WINDOW_PATTERN":
            return {"name": name, "old": value, "new": None, "direction": "removed", "source": "text"}
        return {"name": name, "old": None, "new": value, "direction": "changed", "source": "text"}
    (m0, v0), (m1, v1) = named[0], named[1]
    old, new = (v1, v0) if _REORDER_RE.search(piece[m0.end() : m1.start()]) else (v0, v1)
    if meaning == "revert":
        old, new = new, old
    if old == new:
        return None
    return {"name": name, "old": old, "new": new, "direction": "changed", "source": "text"}


def _category_value(match: re.Match, value: str) -> str:
    if value == "*":  # a window pattern written out: "SSSL", "sl pattern"
        return re.match(r"[sl]+", match.group()).group().upper()
    return value


def _window_fact(items: list[tuple], meaning: str | None) -> dict | None:
    """A window mention without a pattern: a window size ("sliding window to 1/4 context"),
    "no sliding window" (all long), or more full-attention layers."""
    m, _, verb, post = items[0]
    letters = _PATTERN_AFTER_RE.match(post)
    if letters:  # "set WINDOW_PATTERN to L"
        return {"name": "WINDOW_PATTERN", "old": None, "new": letters.group(1).upper(), "direction": "changed",
                "source": "text"}
    fact = _numeric_fact("SHORT_WINDOW", "num", "", post, verb)
    if fact and (fact["new"] is not None or fact["old"] is not None):
        return fact
    if meaning == "remove":
        return {"name": "WINDOW_PATTERN", "old": None, "new": "L", "direction": "changed", "source": "text"}
    if re.match(r"(?:full|global|long)", m.group()):
        return {"name": "WINDOW_PATTERN", "old": None, "new": None, "direction": "changed", "source": "text"}
    return None


_PATTERN_AFTER_RE = lazy(r"^\s*(?:to|=|:)?\s*[\"']?([sl]{1,8})[\"']?(?![a-z0-9])")
_UNKNOWN_KNOB_RE = lazy(
    rf"(?P<name>(?:[a-z][a-z0-9_]*\s+){{0,2}}[a-z][a-z0-9_]*)\s*[:=]?\s*(?P<a>{_NUMBER}){_ARROW}(?P<b>{_NUMBER})")


def _unknown_knob(piece: str) -> dict | None:
    """"x0 lambda init 0.1 -> 0.2": a knob the alias table does not know, named after its words."""
    m = _UNKNOWN_KNOB_RE.search(piece)
    if not m:
        return None
    words = [w for w in m.group("name").split() if w not in VERB_WORDS and w not in ("from", "the", "a", "of")]
    old, new = _parse_number(m.group("a")), _parse_number(m.group("b"))
    if not words or not (_is_number(old) and _is_number(new)) or old == new:
        return None
    return {"name": "_".join(words).upper(), "old": old, "new": new, "direction": _direction(old, new),
            "source": "text"}


def _bare_power_pair(piece: str) -> dict | None:
    """"2^17 → 2^16" with no knob named: token counts that large are the total batch size."""
    m = _BARE_PAIR_RE.search(piece)
    if not m:
        return None
    old, new = _parse_number(m.group("a")), _parse_number(m.group("b"))
    if not all(isinstance(v, int) and v >= 1024 and v & (v - 1) == 0 for v in (old, new)) or old == new:
        return None
    return {"name": "TOTAL_BATCH_SIZE", "old": old, "new": new, "direction": _direction(old, new),
            "source": "text"}


def _parse_number(token: str) -> int | float | None:
    """"0.04", "2^19", "2**19", "16K", "5%", "30 percent", "4x", "1/4", "two" → a number."""
    t = re.sub(r"\s+", "", token.strip())
    if t in NUMBER_WORDS:
        return NUMBER_WORDS[t]
    percent = t.endswith(("%", "percent"))
    t = re.sub(r"(?:%|percent|x|×)$", "", t)
    scale = 1
    if t[-1:] in ("k", "m"):
        scale = {"k": 1024, "m": 1024 * 1024}[t[-1]]
        t = t[:-1]
    try:
        value = _plain_number(t)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    if scale != 1 and not (isinstance(value, int) and value > 0 and value & (value - 1) == 0):
        scale = 1000 if scale == 1024 else 1_000_000
    value = value * scale
    if percent:
        return round(value / 100, 12)
    return value


def _plain_number(t: str) -> int | float:
    for sep in ("**", "^"):
        if sep in t:
            base, exp = t.split(sep, 1)
            b, e = _plain_number(base), int(exp)
            if abs(e) > 64:
                raise ValueError(t)
            return b**e if e >= 0 else float(b) ** e
    if "/" in t:
        num, den = t.split("/", 1)
        return int(num) / int(den)
    if re.fullmatch(r"-?\d+", t):
        return int(t)
    return float(t)


def _dedupe(facts: list[dict]) -> list[dict]:
    """One fact per knob: the most informative one (values beat bare directions), in first-seen order."""
    best: dict[str, dict] = {}
    for fact in facts:
        current = best.get(fact["name"])
        if current is None or _informative(fact) > _informative(current):
            best[fact["name"]] = fact
    order = list(dict.fromkeys(f["name"] for f in facts))
    return [best[name] for name in order]


def _informative(fact: dict) -> int:
    return (2 * (fact["old"] is not None) + 2 * (fact["new"] is not None)
            + (fact["direction"] != "changed") + ("factor" in fact))
