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
import os
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from .textnorm import MENTION_META, MENTIONS, NUMBER_WORDS, VERB_WORDS, proposal_parts, strip_outcome_notes
from .vocabulary import CODE_LITERALS, CONSTANT_ALIASES, IDENTIFIER_ALIASES, SPLIT_CONSTANTS, VALUE_KNOB

__all__ = ["code_fingerprint", "diff_constants", "train_defaults", "text_changes", "merge_changes", "DIRECTIONS"]

DIRECTIONS = ("up", "down", "changed", "added", "removed")

_CONSTANT_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
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


def diff_constants(old_source: str | None, new_source: str, profile: str | None = None) -> list[dict]:
    """What changed in train.py between ``old_source`` and ``new_source``, wherever the edit is.

    * **Constants**: ``UPPER_CASE = <literal>`` at the top level, with the *effective* value for the
      active ``profile`` (``if PROFILE == "cpu":`` blocks override the defaults when the profile is
      ``cpu``; default: ``$AUTORESEARCH_PROFILE``, else ``gpu``). The literal may use simple
      arithmetic (``2**19``), tuples/lists/dicts and strings; anything else is ignored in both files.
      Tuples the vocabulary splits (``ADAM_BETAS`` → ``ADAM_BETA1``, ``ADAM_BETA2``) give one fact each.
    * **Literals in code**: a number inside a statement of a class or function (``4 * config.n_embd``
      in ``MLP``, ``softcap = 15.0``, ``min(it / 300, 1)`` in the momentum schedule) that changed while
      the statement kept its shape. Named by the vocabulary (``MLP_RATIO``, ``SOFTCAP_VALUE`` ...) or
      else ``Scope.target`` (``CausalSelfAttention.ve_gate_channels``).

    Returns ``[]`` when there is no parent (``old_source`` is None) or either file does not parse.
    Nothing is executed. Facts: constants in the order of the new file, removed constants, literals.
    """
    if old_source is None:
        return []
    old, new = _read_source(old_source, profile), _read_source(new_source, profile)
    if old is None or new is None:
        return []
    facts = []
    for name, value in new[0].items():
        facts.extend(_split(_constant_fact(name, old[0].get(name, _MISSING), value)))
    for name, value in old[0].items():
        if name not in new[0] and value is not _OPAQUE:
            facts.append({"name": name, "old": value, "new": None, "direction": "removed", "source": "diff"})
    seen = {f["name"] for f in facts}
    for fact in _literal_facts(old[1], new[1]):
        if fact["name"] not in seen:
            facts.append(fact)
            seen.add(fact["name"])
    return facts


def train_defaults(source: str, profile: str | None = None) -> dict[str, Any]:
    """The operating point a train.py starts from: its effective constants for ``profile`` plus the
    values the vocabulary names inside its code (MLP ratio, softcap, ...), under canonical names."""
    read = _read_source(source, profile)
    if read is None:
        return {}
    out: dict[str, Any] = {}
    for name, value in read[0].items():
        for fact in _split({"name": CONSTANT_ALIASES.get(name, name), "old": None, "new": value}):
            if fact["new"] is not _OPAQUE and isinstance(fact["new"], (int, float, str)):
                out[fact["name"]] = fact["new"]
    for (scope, target, _, _), values in read[1].items():
        for i, (keyword, value) in enumerate(values):
            name = _code_name(scope, target, keyword, i)
            if name and name not in out:
                out[name] = value
    return out


def _split(fact: dict | None) -> list[dict]:
    """A tuple constant the vocabulary splits into knobs of their own (ADAM_BETAS → beta1, beta2)."""
    if not fact:
        return []
    names = SPLIT_CONSTANTS.get(fact["name"])
    if not names:
        return [fact]
    old, new = fact.get("old"), fact.get("new")
    out = []
    for i, name in enumerate(names):
        a = old[i] if isinstance(old, list) and i < len(old) else None
        b = new[i] if isinstance(new, list) and i < len(new) else None
        if b is not None and a != b:
            out.append({"name": name, "old": a, "new": b, "direction": _direction(a, b) if a is not None else "changed",
                        "source": fact.get("source", "diff")})
    return out


def _active_profile(profile: str | None) -> str:
    return (profile or os.environ.get("AUTORESEARCH_PROFILE") or "gpu").strip().lower()


def _read_source(source: str, profile: str | None) -> tuple[dict[str, Any], dict] | None:
    """(effective top-level constants, literals in code) of ``source``; None if it does not parse."""
    try:
        tree = ast.parse(str(source).lstrip("\ufeff"))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    constants: dict[str, Any] = {}
    _fold_constants(tree.body, constants, _active_profile(profile), conditional=False)
    literals: dict = {}
    try:
        _collect_literals(tree.body, "", literals)
    except RecursionError:
        literals = {}
    return constants, literals


def _profile_test(test: ast.expr) -> tuple[str, bool] | None:
    """``PROFILE == "cpu"`` → ("cpu", True); ``PROFILE != "cpu"`` → ("cpu", False); else None."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and len(test.comparators) == 1):
        return None
    left, right = test.left, test.comparators[0]
    if isinstance(right, ast.Name) and isinstance(left, ast.Constant):
        left, right = right, left
    if not (isinstance(left, ast.Name) and left.id == "PROFILE" and isinstance(right, ast.Constant)
            and isinstance(right.value, str)):
        return None
    if isinstance(test.ops[0], ast.Eq):
        return right.value.lower(), True
    if isinstance(test.ops[0], ast.NotEq):
        return right.value.lower(), False
    return None


def _fold_constants(body: list[ast.stmt], found: dict[str, Any], profile: str, conditional: bool) -> None:
    """Top-level constants in order; a profile branch applies when it matches ``profile``; names set
    under any other condition are opaque (their value depends on the machine)."""
    for stmt in body:
        if isinstance(stmt, ast.If):
            branch = _profile_test(stmt.test)
            if branch is not None:
                name, equal = branch
                _fold_constants(stmt.body if (name == profile) == equal else stmt.orelse, found, profile, conditional)
            else:
                _fold_constants(stmt.body, found, profile, True)
                _fold_constants(stmt.orelse, found, profile, True)
            continue
        for name, node in _assignments(stmt):
            found[name] = _OPAQUE if conditional else _safe_literal(node)


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_MAX_LITERAL_STATEMENTS = 20_000  # a train.py is ~1k statements; beyond this the rest is ignored


def _collect_literals(body: list[ast.stmt], scope: str, out: dict) -> None:
    """Numbers in statements inside classes / functions, keyed by (scope, target, shape, occurrence)."""
    for stmt in body:
        if len(out) >= _MAX_LITERAL_STATEMENTS:
            return
        if isinstance(stmt, _SCOPES):
            _collect_literals(stmt.body, f"{scope}.{stmt.name}" if scope else stmt.name, out)
            continue
        inner = [b for b in (getattr(stmt, f, None) for f in ("body", "orelse", "finalbody")) if isinstance(b, list)]
        if inner and not isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr, ast.Return)):
            for block in inner:
                _collect_literals(block, scope, out)
            for handler in getattr(stmt, "handlers", []) or []:
                _collect_literals(handler.body, scope, out)
            continue
        if not scope:
            continue
        numbers = _numbers(stmt)
        if not numbers:
            continue
        target = _target(stmt)
        shape = ast.dump(_blank(stmt), annotate_fields=False)
        key = (scope, target, shape, 0)
        while key in out:
            key = (scope, target, shape, key[3] + 1)
        out[key] = numbers


def _target(stmt: ast.stmt) -> str:
    if isinstance(stmt, ast.Assign):
        return ast.unparse(stmt.targets[0])[:80]
    if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        return ast.unparse(stmt.target)[:80]
    return "return" if isinstance(stmt, ast.Return) else "expr"


def _numbers(stmt: ast.stmt) -> list[tuple[str | None, int | float]]:
    """(keyword it is the value of, or None; number) for each numeric literal, in source order."""
    keywords = {id(k.value): k.arg for k in ast.walk(stmt) if isinstance(k, ast.keyword)}
    found = []
    for node in ast.walk(stmt):
        if isinstance(node, ast.Constant) and _is_number(node.value) and not isinstance(node.value, bool):
            found.append((getattr(node, "lineno", 0), getattr(node, "col_offset", 0), keywords.get(id(node)),
                          node.value))
    found.sort(key=lambda item: (item[0], item[1]))
    return [(kw, value) for _, _, kw, value in found]


class _Blank(ast.NodeTransformer):
    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if _is_number(node.value) and not isinstance(node.value, bool):
            return ast.Constant(value="#")
        return node


def _blank(stmt: ast.stmt) -> ast.AST:
    import copy
    return _Blank().visit(copy.deepcopy(stmt))


def _code_name(scope: str, target: str, keyword: str | None, position: int) -> str | None:
    """The vocabulary's name for a literal in code, or None."""
    where = f"{scope}:{target}".lower()
    for scope_re, target_re, keyword_name, name in CODE_LITERALS:
        if keyword_name is not None and keyword != keyword_name:
            continue
        if re.search(scope_re, scope.lower()) and re.search(target_re, where):
            return name
    return None


def _literal_facts(old: dict, new: dict) -> list[dict]:
    facts = []
    for key, values in new.items():
        before = old.get(key)
        if before is None or len(before) != len(values):
            continue
        scope, target = key[0], key[1]
        for i, ((keyword, a), (_, b)) in enumerate(zip(before, values, strict=True)):
            direction = _direction(a, b)
            if direction is None:
                continue
            name = _code_name(scope, target, keyword, i) or _readable(scope, target, keyword)
            facts.append({"name": name, "old": a, "new": b, "direction": direction, "source": "diff",
                          "where": f"{scope}: {target}"})
    return facts


def _readable(scope: str, target: str, keyword: str | None) -> str:
    """``CausalSelfAttention.ve_gate_channels``: the class (or function) and what is assigned."""
    owner = scope.split(".")[0]
    leaf = re.sub(r"^self\.", "", target) if target not in ("expr", "return") else (keyword or target)
    leaf = re.sub(r"[^A-Za-z0-9_.]+", "_", leaf).strip("_.") or "literal"
    return f"{owner}.{leaf}"


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


def fact_text(fact: dict) -> str:
    """A change fact as check and reports print it, never showing an unknown value:
    "MATRIX_LR up 0.04 → 0.05", "DEPTH changed → 6", "SOFTCAP removed", "MLP_RATIO down 4 → 3 (in MLP.__init__)"."""
    name, direction = fact.get("name"), fact.get("direction") or "changed"
    old, new = fact.get("old"), fact.get("new")
    if old is not None and new is not None:
        values = f" {_show(old)} → {_show(new)}"
    elif new is not None:
        values = f" → {_show(new)}"
    elif old is not None and direction != "removed":
        values = f" from {_show(old)}"
    else:
        values = ""
    where = f" (in {fact['where'].split(':')[0]})" if fact.get("where") else ""
    return f"{name} {direction}{values}{where}"


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def merge_changes(diff: list[dict], text: list[dict]) -> list[dict]:
    """The change signature of a run: every diff fact, plus text facts for knobs the diff lacks.

    The diff is what actually changed in train.py, so it wins; the description fills in what the
    diff cannot show (code-level changes such as the activation, or runs without a parent).
    Facts without a name are dropped; the result holds at most one fact per name from the text.
    """
    merged = [dict(f) for f in diff or () if isinstance(f, dict) and f.get("name")]
    seen = {f["name"] for f in merged}
    values = {(repr(f.get("old")), repr(f.get("new"))) for f in merged if f.get("old") is not None}
    for fact in text or ():
        if not (isinstance(fact, dict) and fact.get("name")):
            continue
        if fact.get("old") is not None and (repr(fact.get("old")), repr(fact.get("new"))) in values:
            continue  # the diff's change, misnamed by the text ("MLP 4x -> 3x" read as a width)
        if fact["name"] not in seen:
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


_WORDNUM = "|".join(sorted(NUMBER_WORDS, key=len, reverse=True))
_NUMBER = (
    r"(?<![\w.^*/])-?(?:(?:\d+\s*/\s*\d+|\d*\.\d+(?:e[-+]?\d+)?|\d+(?:\.\d*)?(?:e[-+]?\d+)?)"
    r"(?:\s*(?:\^|\*\*)\s*-?\d+)?(?:\s*[km](?![a-z]))?(?:\s*(?:%|percent(?![a-z])|x(?![a-z0-9])|×))?"
    rf"|\b(?:{_WORDNUM})\b)"
)
_ARROW = r"\s*(?:->|-->|–>|—>|→|⟶|➔|➝|=>|⇒|(?:\b(?:up|down)\s+)?\bto\b|\binto\b)\s*"
_FILL = r"^[\s:=(]*(?:[a-z]+\s+){0,2}?"
_PAIR_RE = re.compile(rf"{_FILL}(?:from\s+)?(?P<a>{_NUMBER}){_ARROW}(?P<b>{_NUMBER})")
_BY_RE = re.compile(rf"{_FILL}by\s+(?P<a>{_NUMBER})|^\s*[x×]\s*(?P<x>\d+(?:\.\d+)?)(?![\w.])")
_ONE_RE = re.compile(rf"{_FILL}(?:to\s+|=\s*|of\s+)?(?P<a>{_NUMBER})")
_PRE_RE = re.compile(rf"(?P<a>{_NUMBER})\s*(?:(?:peak|max(?:imum)?)\s+)?$")  # "1.3e-3 peak LR": its value
_INSTEAD_RE = re.compile(rf"\s*(?:instead\s+of|rather\s+than|in\s+place\s+of)\s+(?P<a>{_NUMBER})")
_MULTIPLE_RE = re.compile(r"half|quarter|\d+(?:\.\d+)?\s*[x×]")
_MULTIPLE_VALUED = frozenset({"MLP_RATIO"})  # knobs whose value is written as a multiple ("4x MLP")
_UNDONE_RE = re.compile(r"\s*(increase|decrease|raise|cut|bump|boost)\b")
# A clause that opens with one of these states the situation, not the change ("Since depth 10 worked, ...",
# "Instead of raising LR, ...", "Previous experiments with beta1=0.9 failed, ...").
_LEADING_CONTEXT_RE = re.compile(
    r"(?:since|given|because|as|now\s+that|after|building\s+on|on\s+top\s+of|instead\s+of|rather\s+than|while|"
    r"with|unlike|following|based\s+on|previous(?:ly)?|earlier|last\s+time)\b")
_TOKEN_COUNT_NAMES = frozenset({"TOTAL", "TOKENS", "TOTAL_TOKENS", "BATCH_TOKENS"})  # words of the batch, in tokens
# an optimizer right before its knob owns it, across the words that say which value of it ("Muon final
# momentum", "Adam's peak learning rate", "SGD optimizer's momentum")
_OWNER_RE = re.compile(r"(?:'s)?(?:\s+(?:optimi[sz]er(?:'s)?|final|peak|initial|start(?:ing)?|end|max(?:imum)?|"
                       r"min(?:imum)?|base|target|inner))*\s*$")
_ANY_NUMBER_RE = re.compile(r"\d")
_BARE_VALUE_RE = re.compile(rf"\s*{_NUMBER}\s*")
_BARE_PAIR_RE = re.compile(rf"(?P<a>{_NUMBER}){_ARROW}(?P<b>{_NUMBER})")
_CLAUSE_SPLIT_RE = re.compile(r"\s*(?:;|,(?!\d{3}\b)|\s\+\s|(?<=[a-z)]{2})\+(?=[a-z0-9(])|\bplus\b|\bas well as\b)\s*")
_PIECE_SPLIT_RE = re.compile(r"\s+(?:and|&|then)\s+")
# Purpose verbs: "... to increase the number of optimizer updates" says why, not what changed.
_PURPOSE = ("avoid|fix|match|compensate|keep|improve|increase|reduce|decrease|maintain|allow|accelerate|"
            r"stabili[sz]e|prevent|recover|spend|start|find|explore|make|get|give|trade|speed|enable|shift|move|"
            "alternate|test|see|train|encourage|boost|slow|extend|strengthen|fit|save|free|preserve|capture|"
            "learn|let|reach|squeeze|follow|help|balance|offset|limit|exploit|achieve|push|check|probe|isolate|"
            "verify|confirm|smooth|stay|use|gain|lower|raise|provide|ensure")
_CONTEXT_RE = re.compile(
    r"\s(?:after|at|with|for|on|given|under|when|while|since|because|due\s+to|so\s+that|"
    rf"to\s+(?:(?:further|potentially|better|also|more|slightly)\s+)?(?:{_PURPOSE})|compared\s+to|relative\s+to|"
    r"vs\.?|versus|across)\s"
)
# A move made to hold something else fixed, or as the means of another move: incidental to the row's idea.
_COMPENSATION_RE = re.compile(
    r"\s(?:to\s+(?:compensate|offset|match)|so\s+that|to\s+(?:keep|maintain|preserve|hold)\s+(?:[\w-]+\s+){0,3}?"
    r"(?:constant|fixed|same|unchanged|equal|similar|width|params?|parameters|size|n_embd|dim|flops|compute|budget|"
    r"tokens)\b)")
_MEANS_RE = re.compile(r"\sby\s+(?=[a-z]+ing\b)")
_SWAP_VERB_RE = re.compile(r"\b(?:replac\w*|swap\w*|substitut\w*|trad\w*|exchang\w*)\b")
_TURN_RE = re.compile(r"\b(?:turn|switch)\s*$")
_REORDER_RE = re.compile(r"instead\s+of|in\s+place\s+of|rather\s+than|\bover\b|replac(?:es|ing)\b|supersed")
_WORD_RE = re.compile(r"[a-z]+")
# A number followed by one of these counts something else ("training completed 1525 steps").
_UNIT_AFTER_RE = re.compile(r"\s*(?:steps?|iter(?:ation)?s?|seconds?|secs?|s|min(?:ute)?s?|hours?|h|"
                      r"params?|parameters?|[kmg]b|gib|mib|epochs?)(?![a-z])")
_STEP_UNIT_RE = re.compile(r"\s*(?:steps?|iter(?:ation)?s?)(?![a-z])")
# Knobs measured in seconds: beside them, "1800s" is a value, not a count of something else.
_SECONDS_KNOBS = frozenset({"TIME_BUDGET"})
_SECONDS_RE = re.compile(r"(\d)\s*(?:s|secs?|seconds?)(?![a-z])")
# Compiled once: each runs for most journal lines a fold reads (re's own cache costs a lookup a call).
_PARTICIPLE_RE = re.compile(r"\s*(?:is\s+|was\s+)?([a-z]+)")
_FULL_TAIL_RE = re.compile(r"\bfull\s*$")
_PERCENT_RE = re.compile(r"%|percent")
_SPACE_RE = re.compile(r"\s+")
_SUFFIX_RE = re.compile(r"(?:%|percent|x|×)$")
_INT_RE = re.compile(r"-?\d+")


_MAX_TEXT = 20_000  # characters of a description read for facts: they come early; keeps check bounded


def text_changes(text: str) -> list[dict]:
    """Change facts read from a free-text description (``"source": "text"``), one per knob.

    Knob names are canonical (``MATRIX_LR``, ``DEPTH``, ``TOTAL_BATCH_SIZE``, ``WARMDOWN_RATIO``,
    ``ACTIVATION`` ...; see ``vocabulary.KNOBS`` and ``textnorm.KNOB_ALIASES``). Outcome notes are
    ignored. Only the first ``_MAX_TEXT`` characters are read. A paragraph is read by the narrowest of
    its parts that names a change (its head, then its first sentence: ``textnorm.proposal_parts``), so
    the knobs its rationale cites are not read as moves. Never raises.
    """
    original = str(text or "")[:_MAX_TEXT]
    stripped = strip_outcome_notes(original)
    for part in proposal_parts(stripped):
        facts = _facts_of(part, original)
        if facts:
            return facts
    return []


def _facts_of(stripped: str, original: str) -> list[dict]:
    """:func:`text_changes` of one part of a description (``original``: the whole text, for its notes)."""
    raw = unicodedata.normalize("NFKC", stripped)
    clean = raw.lower()
    clean = _stated_starts(_expand_shorthand(clean.translate(_GREEK) if not clean.isascii() else clean))
    techniques = _technique_names(raw)
    facts: list[dict] = []
    context: list[dict] = []
    glosses: list[dict] = []
    for clause, aside in _clauses(clean):
        found = _clause_facts(clause, techniques)
        if aside and _piece_verb(clause) is None and not _SWITCH_RE.search(clause):
            # "warmdown ratio 1.0 (pure cosine decay)": what the move means, not a second move
            glosses.extend(f for f in found if f["name"] in _CATEGORY_NAMES)
            found = [f for f in found if f["name"] not in _CATEGORY_NAMES]
        (context if _LEADING_CONTEXT_RE.match(clause) else facts).extend(found)
    facts = facts or glosses or context  # "Since depth 10 worked, try wd 0.1": the leading clause is the situation
    facts = _shared_head(facts, clean) if any(f["name"] not in _KNOWN_NAMES for f in facts) else facts
    if all(fact.get("incidental") for fact in facts):  # a compensation with nothing to compensate is the change
        facts = [{k: v for k, v in fact.items() if k != "incidental"} for fact in facts]
    return _dedupe(_start_from_note(facts, original))


# "(0.6 still better)", "(5 still optimal)": the outcome note names the value the run started from ("(0.05 is
# better)" alone may name another candidate, a paired run's value, so "still" is required)
_DECIMAL = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"  # a plain number in a note ("0.6", "1e-3")
_BETTER_VALUE_RE = re.compile(rf"\(\s*({_DECIMAL})\s+(?:is\s+)?still\s+(?:better|optimal|best)\b", re.IGNORECASE)


# "(1.1855 worse than gain=1.5=1.1846)", "(1.1892 vs clip=0.3=1.1838)", "(1.1787 default 1.5 better)": the
# outcome note compares with the value the run started from, named by a setting or as the default
_COMPARED_VALUE_RE = re.compile(rf"\b(?:(?:worse|better)\s+than|vs\.?|versus)\s+[a-z_]+\s*=\s*({_DECIMAL})|"
                                rf"\bdefault\s+(?:[a-z_]+\s*=\s*)?({_DECIMAL})\s+(?:is\s+)?better\b", re.IGNORECASE)


def _start_from_note(facts: list[dict], text: str) -> list[dict]:
    """A lone "set X to v" whose outcome note says which value is still better ("emb init std=0.5 (0.6 still
    better)"), or which setting it did worse than ("VRL qk_gain=2.25 (worse than gain=1.5)"), moved X from
    that value: the note says where the run started, so the move has a direction."""
    if len(facts) != 1 or facts[0].get("old") is not None or not _is_number(facts[0].get("new")):
        return facts  # (checked first: the notes are looked for only where they could apply)
    notes = _BETTER_VALUE_RE.findall(text) + [a or b for a, b in _COMPARED_VALUE_RE.findall(text)]
    if len(notes) != 1:
        return facts
    old, fact = _parse_number(notes[0]), facts[0]
    if not _is_number(old) or old == fact["new"]:
        return facts
    return [{**fact, "old": old, "direction": _direction(old, fact["new"])}]


_KNOWN_NAMES = frozenset(meta[0] for meta in MENTION_META.values())
_CATEGORY_NAMES = frozenset(meta[0] for meta in MENTION_META.values() if meta[1] == "cat")
_SWITCH_RE = re.compile(r"\b(?:switch\w*|swap\w*|replac\w*|substitut\w*|instead)\b")


def is_vocabulary_knob(name: str) -> bool:
    """Whether ``name`` is a knob the vocabulary names (else one read from an identifier or a phrase)."""
    return name in _KNOWN_NAMES


def _shared_head(facts: list[dict], text: str) -> list[dict]:
    """A one-word knob the vocabulary does not know is the knob it names with the head of a knob named
    elsewhere in ``text``: in "3x LR increase (matrix 0.001->0.003, scalar 0.01->0.03)" the items are the
    matrix and scalar LRs (``MATRIX_LR``, ``SCALAR_LR``), as "matrix and scalar LR" would be."""
    heads = {" ".join(m.group().split()[i:]) for m in MENTIONS.finditer(text) for i in range(len(m.group().split()))}
    out = []
    for fact in facts:
        word = fact["name"].lower()
        if fact["name"] not in _KNOWN_NAMES and word.isalpha():
            named = (MENTIONS.fullmatch(f"{word} {head}") for head in sorted(heads))
            found = next((m for m in named if m), None)
            if found is not None and MENTION_META[found.lastgroup][1] == "num":
                fact = dict(fact, name=MENTION_META[found.lastgroup][0])
        out.append(fact)
    return out


# Shorthand agents write, spelled out for the parser: "6L 768w" (6 layers, width 768), "top-2" (routing
# top_k), "8 experts" (a count before its name), and Adam's betas as tuples: "ADAM_BETAS from
# (0.8, 0.95) to (0.9, 0.98)" is two moves.
_LAYER_COUNTS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|sixteen"
_TUPLE = r"\(\s*(\d*\.?\d+)\s*,\s*(\d*\.?\d+)\s*\)"
# A parameter group's own setting written after it: "weight decay 0.01 to embeddings", "betas (0.9, 0.95) for
# resid_params", "WD on lm_head" name the group's setting, spelled with the group first ("embeddings weight
# decay 0.01") so that it reads as "x0_lambdas LR" does (:func:`_owned`).
_OWNER = (r"(?:[a-z][a-z0-9]*(?:_[a-z0-9]+)+|embeddings?|embeds?|lm[\s_]head|unembedding|biases|norms|gains|scalars|"
          r"lambdas)")
_GROUP_SETTING = (r"lr|learning\s+rate|weight\s+decay|wd|(?:adam[\s_-]*)?betas?[12]?|(?:adam[\s_-]*)?eps(?:ilon)?|"
                  r"init(?:\s+std)?")
_NET = r"(?:model|network|net|transformer)"
_NOT_SIZED = r"(?![a-z])(?!\s+(?:depth|n_layers?|num_layers|layers?|\d))"  # "shallower model depth 3": the depth


_SHORTHAND: tuple[tuple[str, re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    # (a substring every match holds, pattern, spelled out)
    # "7L/3x", "9L/384d/3x": a configuration written as slashed shorthand is a list, not a division
    ("/", re.compile(r"(?<=\d[lxdhk])/(?=\d)"), " + "),
    ("", re.compile(rf"(?<![\w])({_GROUP_SETTING})(\s*(?:\([^()]*\)|[=:]?\s*[-\d.e^]+))?\s+(?:to|for|on)\s+"
                    rf"(?:the\s+|all\s+)?({_OWNER})(?![\w])"), r"\3 \1\2"),
    ("", re.compile(r"(?<![\w.])(\d+)l(?![a-z0-9])"), r"depth \1"),
    ("tie", re.compile(r"(?<![a-z])un[\s-]?tie[ds]?(?![a-z])"), "remove tied"),  # "untie embeddings"
    ("", re.compile(r"(?<![\w.])(\d+)w(?![a-z0-9])"), r"width \1"),
    # "depth from 3 to 6 layers": the unit ends a move already named, so the start stays the start
    ("layer", re.compile(r"(depth|n_layers?|num_layers|layers)((?:\s+from)?\s+\d+\s*(?:to|->|→)\s*\d+)[\s-]layers?"
                         r"(?![\w-])"), r"\1\2"),
    ("layer", re.compile(rf"(?<![\w.])(\d+|{_LAYER_COUNTS})[\s-]layers?(?=\s+(?:model|net(?:work)?|transformer|gpt)\b|"
                         r"\s*$|\s*[,;(])"), r"depth \1"),  # "two layer model", "4-layer net": the depth
    ("", re.compile(r"(?<![\w.])(\d{3,5})d(?![a-z0-9])"), r"width \1"),  # "10L 512d"
    ("", re.compile(r"(?<![\w.])d(\d{3,5})(?![\w.])"), r"width \1"),  # "9L d576"
    ("mlp", re.compile(r"(?<![a-z])mlp(\d+(?:\.\d+)?)x(?![\w.])"), r"mlp \1x"),  # "9L MLP3.5x"
    ("mlp", re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*x[\s-]*mlp(?![a-z])"), r"mlp \1x"),  # "11L 3xMLP", "3x MLP"
    # "LeakyReLU(0.5)^2": the activation, and its negative slope as a setting of its own
    ("relu", re.compile(r"(leaky[\s_-]*relu)\s*\(\s*(\d*\.?\d+)\s*\)\s*((?:\^|\*\*)\s*2|²)?"),
     r"\1\3 + leaky_slope=\2"),
    # "Muon 0.99": a number in Muon's momentum range right after the optimizer is its momentum
    ("muon", re.compile(r"(?<![a-z])muon\s+(0?\.(?:8|9)\d*)(?![\w.])"), r"muon momentum \1"),
    # "ReluSquared gating", "GELU-gated MLP": the activation inside a gate is a gated MLP of that kind
    ("gat", re.compile(r"(?<![a-z])(?:(relu[\s_-]?(?:squared|sq|\^?2|²))|(gelu)|(silu|swish))[\s-]+"
                       r"gat(?:ing|ed)(?![a-z])"),
     lambda m: "reglu" if m.group(1) else "geglu" if m.group(2) else "swiglu"),
    # "SwiGLU 4x", "ReluSquared 6x": a multiple right after the MLP's activation is its hidden width
    ("", re.compile(r"(?<![a-z])((?:swi|ge|re)glu|relu[\s_-]?(?:squared|sq|\^?2|²)|gelu|silu)\s+(\d+(?:\.\d+)?)\s*x"
                    r"(?=\s*(?:$|[—–\-(,;:+]|mlp|hidden|ffn|width|expansion)(?![a-z]))"), r"\1 + mlp \2x"),
    ("dim", re.compile(r"(?<![\w.])(\d{2,5})[\s-]?dim(?:ension)?(?:al)?(?![a-z0-9_])(?!\s*(?:[a-z-]+\s+)?heads?\b)"),
     r"width \1"),  # "depth=4 640-dim", not "64-dim heads"
    # "top-2" routes to two experts; "top-100 (most frequent) tokens" is a selection of tokens, not routing
    ("top", re.compile(r"(?<![a-z0-9])top[\s_-]?(\d+)(?![\w.])(?!\s*(?:most\b|frequent|tokens?\b|words?\b|"
                       r"bigrams?\b|layers?\b|blocks?\b|rows?\b|columns?\b|singular|eigen|values?\b|logits?\b|%|"
                       r"percent|candidates?\b|positions?\b|heads?\b|channels?\b))"), r"top_k \1"),
    # "fixed Muon momentum 0.95": the momentum without its warmup ramp
    ("momentum", re.compile(r"(?<![a-z])(?:constant|fixed)\s+(muon\s+)?momentum(?![a-z_])"),
     r"no \1momentum warmup, \1momentum"),
    # "constant weight decay", "no WD decay": the weight decay keeps its full value (its floor is all of it)
    ("", re.compile(r"(?<![a-z])(?:constant|fixed)\s+(?:muon\s+)?(wd|weight\s+decay)(?![a-z_])"),
     r"wd floor 100%, \1"),
    ("decay", re.compile(r"(?<![a-z])no\s+(?:wd|weight\s+decay)\s+(?:decay|schedule|annealing)(?![a-z])"),
     "wd floor 100%"),
    # "make the model deeper", "a shallower network": the depth; "make the warmdown shorter": shorten it
    ("deeper", re.compile(rf"(?<![a-z])(?:make\s+(?:the\s+)?{_NET}\s+deeper|go\s+deeper|deeper\s+{_NET})"
                          rf"{_NOT_SIZED}"), "more layers"),
    ("shallower", re.compile(rf"(?<![a-z])(?:make\s+(?:the\s+)?{_NET}\s+shallower|shallower\s+{_NET})"
                             rf"{_NOT_SIZED}"), "fewer layers"),
    ("make", re.compile(r"(?<![a-z])make\s+(?:the\s+)?([a-z_][a-z0-9_ ]{0,30}?)\s+(shorter|longer)(?![a-z])"),
     lambda m: f"{'shorten' if m.group(2) == 'shorter' else 'lengthen'} the {m.group(1)}"),
    # "ScheduleFree AdamW for embeddings": that parameter group's optimizer, never the model's
    ("for", re.compile(r"(?<![a-z])(?:adamw?|sgd|lion|adafactor)\s+(for\s+(?:the\s+)?(?:embeddings?|embedding\s+table|"
                       r"wte|lm[\s_]?head|unembedding|scalars?|biases|norms?|gains?|value[\s_]embeds?))(?![a-z])"),
     r"\1"),
    ("kv", re.compile(r"(?<![\w.])(\d+)\s*kv(?![a-z])"), r"num_kv_heads=\1"),  # "8H/4KV", "2KV": the KV heads
    # "... in the 5-layer 384-dim full-attention stack": the model the change is made in, not a change
    ("the", re.compile(r"\s(?:in|on\s+top\s+of|on|of|for|to|from)\s+the\s+[^,;()]{0,100}?\b(?:stack|model|"
                       r"config(?:uration)?|setup)(?![a-z])"), ""),
    ("lrs", re.compile(r"(?<![a-z])lrs(?![a-z])"), "lr"),  # "matrix and scalar LRs": one LR each
    ("rates", re.compile(r"(?<![a-z])learning rates(?![a-z])"), "learning rate"),
    # a share of the run: "from 50% of the run to the final 20%" is 0.5 -> 0.2
    ("%", re.compile(r"(\d\s*%)\s+of\s+(?:the\s+)?(?:run|training|budget|steps|time)(?![a-z])"), r"\1"),
    ("%", re.compile(r"(?<![a-z])(?:the\s+)?(?:final|last)\s+(\d+(?:\.\d+)?\s*%)"), r"\1"),
    ("experts", re.compile(r"(?<![\w.])(\d+)\s+experts(?![a-z0-9])"), r"experts \1"),
    ("beta", re.compile(rf"({_OWNER}\s+)?adam[\s_-]*betas?\s*(?:from\s*)?[=:]?\s*{_TUPLE}\s*(?:->|→|=>|to)\s*{_TUPLE}"),
     r"\1beta1 \2 -> \4; \1beta2 \3 -> \5"),
    ("beta", re.compile(rf"({_OWNER}\s+)?(?:adam[\s_-]*)?betas?\s*(?:to\s*)?[=:]?\s*{_TUPLE}"),
     r"\1beta1 \2; \1beta2 \3"),
    ("adam", re.compile(rf"({_OWNER}\s+)?adam(?:w)?\s*{_TUPLE}"), r"\1beta1 \2; \1beta2 \3"),  # "Adam (0.9, 0.95)"
    # "8 heads at dim 64", "8 heads x 64d": the head dim (the head count follows from it at a fixed width)
    ("head", re.compile(r"(?<![\w.])\d+\s*heads?\s*(?:at\s+dim(?:ension)?|x|×)\s*(\d+)\s*(?:d|dim)?(?![\w.])"),
     r"head_dim \1"),
)


# Greek letters as hyperparameters are written: "Adam β2 0.95 -> 0.99", "ε 1e-10 -> 1e-8".
_GREEK = str.maketrans({"β": "beta", "ε": "eps", "λ": "lambda", "α": "alpha", "γ": "gamma", "μ": "mu", "θ": "theta",
                        "τ": "tau", "σ": "sigma", "η": "lr"})


# "(base=0.0378)", "(was 15)", "(from 0.04)", "(vs 4096 in 0018)": a note stating where a setting starts
# (a zero-led number there is a run's id: "(vs 0009 mean)")
_STATED_START_RE = re.compile(rf"(?:({_DECIMAL})\s*)?\(\s*(?:base(?:line)?|was|prev(?:ious)?|old|from|current|vs\.?|"
                              rf"versus)\s*[=:]?\s*(?!0\d)({_DECIMAL})(?:\s+(?:in|at|on|of)\s+[^()]*)?\s*\)")


def _stated_starts(text: str) -> str:
    """A value with a note of its start reads as a move: "tied_embed_lr=0.03774 (base=0.03786)" is
    "tied_embed_lr=0.03786 -> 0.03774"; a note after no value is dropped, never read as a knob "BASE"."""
    return _STATED_START_RE.sub(lambda m: f"{m[2]} -> {m[1]}" if m[1] else " ", text)


# A knob's name with its value glued on ("warmdown300", "model_dim544", "rope200k", "BigramHash8192"): split
# when the letters are a name the vocabulary knows, so "float16" or "int8" stay words. A component's glued
# digits split only as a size (four or more): "ema997" is a decay of 0.997, not 997.
_GLUED_RE = re.compile(r"(?<![\w.])([a-z][a-z_]*[a-z])(\d+(?:\.\d+)?(?:\^\d+)?k?)(?![\w.])")


def _unglue(m: re.Match) -> str:
    """One :data:`_GLUED_RE` match, split into name and value where the name is a knob the vocabulary knows."""
    name, value = m.groups()
    known = next((k for k in MENTIONS.finditer(name) if k.start() == 0 and k.end() == len(name)), None)
    if known is None or len(name) < 3 or (value.startswith("0") and "." not in value):
        return m.group()
    numeric = MENTION_META[known.lastgroup][1] == "num"
    return f"{name} {value}" if numeric or len(value) >= 4 else m.group()


def _expand_shorthand(text: str) -> str:
    """``text`` with the shorthand of :data:`_SHORTHAND` written out, and values glued to a name split off."""
    for needle, pattern, replacement in _SHORTHAND:
        if needle in text and pattern.search(text):  # most texts hold none: a search skips sub's set-up
            text = pattern.sub(replacement, text)
    return _GLUED_RE.sub(_unglue, text) if _GLUED_RE.search(text) else text


def _clauses(text: str) -> list[tuple[str, bool]]:
    """Top-level text and each parenthetical group, split on clause separators, each with whether it is
    an aside (from a parenthetical group). [...] tags are dropped."""
    if "(" not in text and "[" not in text:
        return [(c.strip(), False) for c in _CLAUSE_SPLIT_RE.split(_join_lists(text)) if c.strip()]
    main, groups, depth, start, opener = [], [], 0, 0, ""
    for i, ch in enumerate(text):
        if ch in "([":
            if depth == 0:
                start, opener = i, ch
            depth += 1
        elif ch in ")]" and depth:
            depth -= 1
            if depth == 0:
                group = text[start + 1 : i]
                if opener == "(" and (_BARE_VALUE_RE.fullmatch(group) or _BARE_PAIR_RE.fullmatch(group.strip())):
                    # "shorter window (256)", "halve VE LR (0.8 -> 0.4)": the knob's values
                    main.append(f" {group} ")
                    continue
                if opener == "(":
                    groups.append(group)
                main.append(" ")
        elif depth == 0:
            main.append(ch)
    if depth:
        main.append(text[start:])
    parts = [("".join(main), False), *((group, True) for group in groups)]
    return [(c.strip(), aside) for part, aside in parts for c in _CLAUSE_SPLIT_RE.split(_join_lists(part)) if c.strip()]


# A list of bare items ("embedding, matrix, and scalar learning rates", "depth, width and heads") is one
# clause: its commas join items the verb before the list reaches. An item is one to three words: no verb,
# number or context word; the list must end in "and" ("X, Y, and Z" or "X, Y and Z").
_LIST_COMMA_RE = re.compile(r",(?!\d{3}\b)")
_LIST_ITEM_RE = re.compile(r"[a-z][a-z0-9_-]*(?:\s+[a-z][a-z0-9_-]*){0,2}")
_LIST_AND_RE = re.compile(r"\s*(?:and|&)\s+")
_LIST_STOP = frozenset({"after", "at", "with", "for", "on", "given", "under", "when", "while", "since", "because",
                        "to", "vs", "versus", "across", "but", "so", "then", "which", "that", "is", "was", "in",
                        "of", "from", "by", "as", "than", "into", "via", "plus", "and", "or"})


def _join_lists(text: str) -> str:
    """``text`` with the commas of a coordinated list ("lower A, B, and C") written as " and "."""
    if "," not in text or ("and" not in text and "&" not in text):
        return text
    segments = _LIST_COMMA_RE.split(text)
    joins: list[bool] = []
    chain = 0  # bare items since the last comma that is not a list's
    for seg in segments[1:]:
        seg = seg.strip()
        if _list_end(seg) and (chain or not _LIST_AND_RE.match(seg)):  # "X, Y, and Z" / "X, Y and Z"
            joins.extend([True] * (chain + 1))
            chain = 0
        elif _is_item(seg):
            chain += 1
        else:
            joins.extend([False] * (chain + 1))
            chain = 0
    joins.extend([False] * chain)
    if not any(joins):
        return text
    out = [segments[0]]
    for seg, join in zip(segments[1:], joins, strict=True):
        item = seg.strip()
        lead = _LIST_AND_RE.match(item)  # "X, Y, and Z": the Oxford comma's "and" is the join
        out.append(" and " + item[lead.end() if lead else 0:] if join else "," + seg)
    return "".join(out)


def _is_item(text: str) -> bool:
    """One to three plain words, none a verb or a context word: an item of a list."""
    return (_LIST_ITEM_RE.fullmatch(text) is not None
            and not any(w in VERB_WORDS or w in _LIST_STOP for w in text.split()))


def _list_end(segment: str) -> bool:
    """Whether ``segment`` ends a list: "and Z ..." or "Y and Z ..." with Y an item."""
    m = _LIST_AND_RE.search(segment)
    return m is not None and (m.start() == 0 or _is_item(segment[: m.start()]))


# A technique the vocabulary does not know, named in CamelCase ("ScheduleFree", "LayerScale", "DeepNorm"):
# a component of its own, added or removed by its verb, or added when a piece starts with it
# ("LayerScale on the residual branches"). Names inside parentheses are context, not the change.
_CAMEL_RE = re.compile(r"(?<![\w-])(?:[A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+|[A-Z]{2,}(?!s\b)[a-z][A-Za-z0-9]*)(?![\w])")
_BRACKETED_RE = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")


def _technique_names(raw: str) -> re.Pattern[str] | None:
    """A pattern of the CamelCase names in ``raw`` the vocabulary does not know (lower case), or None."""
    if not _CAMEL_RE.search(raw):
        return None
    names = set()
    for word in _CAMEL_RE.findall(_BRACKETED_RE.sub(" ", raw)):
        low = word.lower()
        if not any(m.start() == 0 and m.end() == len(low) for m in MENTIONS.finditer(low)):
            names.add(re.escape(low))
    return re.compile(rf"(?<![\w-])(?:{'|'.join(sorted(names))})(?![\w])") if names else None


def _cut_context(clause: str, techniques: re.Pattern[str] | None = None) -> str:
    """Drop a trailing context qualifier ("... after 3x MLP", "... at batch 2^13", "... with Muon"); a
    qualifier word inside a knob's name ("step size *for* the orthogonalized optimizer") is not one,
    nor one that nothing named before it could qualify ("A/B with MUON_NS_STEPS=0": the change)."""
    if not _CONTEXT_RE.search(clause):
        return clause
    mentions = _mentions_in(clause, techniques)
    names = [(m.start(), m.end()) for m, *_ in mentions]
    for m in _CONTEXT_RE.finditer(clause):
        word, before = m.group().split()[0], clause[: m.start()]
        if word in ("with", "for") and _SWAP_VERB_RE.search(before):
            continue
        if word == "on" and _TURN_RE.search(before):
            continue
        if any(start <= m.start() < end for start, end in names):
            continue
        if not any(s < m.start() for s, _ in names) and not _ANY_NUMBER_RE.search(_RUN_REFERENCE_RE.sub(" ", before)):
            continue  # nothing named or valued (a cited run is neither) before it: what follows is the change
        if word == "with" and _names_a_setting(before, mentions, m.start()):
            continue  # "Muon with momentum 0.97": naming the setting, then the change
        return before
    return clause


def _clause_facts(clause: str, techniques: re.Pattern[str] | None) -> list[dict]:
    """A clause's facts; those of a means ("more heads *by reducing* HEAD_DIM") or of a compensation
    ("ASPECT_RATIO 64 -> 52 *to keep* the width": the piece the phrase follows) are marked ``incidental``."""
    means = _MEANS_RE.search(clause) if " by " in clause else None
    if means:
        return (_part_facts(clause[: means.start()], techniques)
                + _incidental(_part_facts(clause[means.end():], techniques)))
    per_piece = _part_facts(clause, techniques, by_piece=True)
    if (" to " in clause or " so " in clause) and _COMPENSATION_RE.search(clause):
        last = max((i for i, facts in enumerate(per_piece) if facts), default=None)
        if last is not None:
            per_piece[last] = _incidental(per_piece[last])
    return [fact for facts in per_piece for fact in facts]


def _incidental(facts: list[dict]) -> list[dict]:
    return [dict(fact, incidental=True) for fact in facts]


def _part_facts(text: str, techniques: re.Pattern[str] | None, by_piece: bool = False) -> list:
    """The facts of ``text`` (context cut, split into pieces on "and"); ``by_piece``: one list per piece."""
    pieces = _repair_coordination(_PIECE_SPLIT_RE.split(_cut_context(text, techniques)))
    out, verb = [], None
    for piece in pieces:
        piece_facts, verb = _piece_facts(piece, verb, techniques)
        out.append(piece_facts)
    return out if by_piece else [fact for facts in out for fact in facts]


def _names_a_setting(before: str, mentions: list, end: int) -> bool:
    """Whether ``before`` (the text up to ``end``) only names a category's value ("Muon", "SwiGLU"): no
    edit verb, no number, no other knob. What follows "with" is then the change, not its context."""
    named = [kind for m, _, kind, _ in mentions if m.start() < end]
    return (all(kind == "cat" for kind in named) and not _ANY_NUMBER_RE.search(before)
            and not any(word in VERB_WORDS for word in _WORD_RE.findall(before)))


def _repair_coordination(pieces: list[str]) -> list[str]:
    """"halve device and total batch" → "halve device batch", "total batch"; "lower embedding and matrix and
    scalar learning rate" → "... embedding learning rate", "matrix learning rate", ...: a piece that names
    nothing shares the head noun of the next piece that does (the longest one that makes it a knob's name,
    else the last word)."""
    out = list(pieces)
    for i in range(len(out) - 1):
        words = _WORD_RE.findall(out[i])
        if not words or len(words) > 3 or MENTIONS.search(out[i]) or words[-1] in VERB_WORDS:
            continue
        nxt = next((m for m in map(MENTIONS.search, out[i + 1:]) if m), None)
        if nxt:
            out[i] = _with_head(out[i], nxt.group().split())
    return out


def _with_head(piece: str, named: list[str]) -> str:
    """``piece`` followed by the longest tail of the knob name ``named`` that makes its last word part of
    a knob's name ("matrix" + "learning rate"), else by the name's last word ("device" + "batch")."""
    piece = piece.rstrip()
    last_word = len(piece) - len(piece.split()[-1])
    for start in range(1, len(named)):
        candidate = f"{piece} {' '.join(named[start:])}"
        if any(m.start() <= last_word and m.end() == len(candidate) for m in MENTIONS.finditer(candidate)):
            return candidate
    return f"{piece} {named[-1]}"


def _piece_verb(text: str) -> tuple[str, float | None] | None:
    for word in reversed(_WORD_RE.findall(text)):
        if word in VERB_WORDS:
            return VERB_WORDS[word]
    return None


def _verb(pre: str, post: str) -> tuple[str, float | None] | None:
    """The edit verb before a mention, or a participle right after it ("depth increased to 10"). A verb
    whose object ended before the mention is not its verb: in "add bias to linear layers" the layers are
    where the bias goes, not what is added ("go down to 4 layers", "the number of layers" are the knob's)."""
    words = _WORD_RE.findall(pre)
    for i in range(len(words) - 1, -1, -1):
        if words[i] == "but":
            break  # "speed up the MPS path but eval timed out with batch_size=1": another clause's verb
        if words[i] in VERB_WORDS:
            if not _object_ended(words[i + 1:]):
                return VERB_WORDS[words[i]]
            break
    m = _PARTICIPLE_RE.match(post)
    if m and (m.group(1).endswith("ed") or m.group(1) == "off") and m.group(1) in VERB_WORDS:
        return VERB_WORDS[m.group(1)]  # "depth increased to 10", "VE off"
    if m and m.group(1) == "on" and not post[m.end():].strip():
        return VERB_WORDS["enable"]  # "qk-norm on" (the last word: "softcap on logits" is no toggle)
    return None


_PLACE_WORDS = frozenset({"to", "into", "in", "on", "onto", "for", "across", "at", "inside", "within", "from"})
_FUNCTION_WORDS = frozenset({"the", "a", "an", "of", "all", "each", "every", "its", "their", "this", "that"})


def _object_ended(between: list[str]) -> bool:
    """Whether the words between a verb and a mention hold an object of the verb followed by a place
    ("bias to"): a content word, then a preposition of place."""
    content = False
    for word in between:
        if word in _PLACE_WORDS and content:
            return True
        content = content or (word not in _FUNCTION_WORDS and word not in _PLACE_WORDS)
    return False


def _piece_facts(piece: str, inherited: tuple | None,
                 techniques: re.Pattern[str] | None = None) -> tuple[list[dict], tuple | None]:
    mentions = _mentions_in(piece, techniques)
    if any(name in _SECONDS_KNOBS for _, name, _, _ in mentions):
        piece = _SECONDS_RE.sub(r"\1", piece)
        mentions = _mentions_in(piece, techniques)
    if not mentions:
        fact = _bare_power_pair(piece)  # a bare "2^17 → 2^16" is the batch; "eval tokens 2^20 -> 2^21" names its knob
        named = _unknown_knob(piece)
        fact = named if named and (fact is None or named["name"] not in _TOKEN_COUNT_NAMES) else fact
        return ([fact] if fact else []), _piece_verb(piece) or inherited
    kept = _kept_part(piece, inherited)
    if kept is not None:
        if not kept:
            return [], _KEEP
        piece, mentions = kept, _mentions_in(kept, techniques)
    facts, cats, first_verb, modifier = [], {}, None, None
    for idx, (m, name, kind, value) in enumerate(mentions):
        pre = piece[mentions[idx - 1][0].end() if idx else 0 : m.start()]
        post = piece[m.end() : mentions[idx + 1][0].start() if idx + 1 < len(mentions) else len(piece)]
        verb = _verb(pre, post) or (inherited if idx == 0 else None)
        if verb is None and kind == "num" and modifier and not pre.strip():
            verb = modifier  # "wider SwiGLU MLP": the size word before a named kind sizes the noun after it
        modifier = verb if kind in ("cat", "tech") and verb and verb[0] in ("up", "down") else None
        if verb and verb[0] in ("up", "down") and _PHASE_RE.search(name) and _MANNER_RE.search(pre):
            verb = VERB_WORDS["set"]  # "less aggressive cooldown": its shape changed, not (we know) its length
        elif verb is None and name == "WARMDOWN_RATIO" and _DELAY_RE.search(pre):
            verb = VERB_WORDS["shorten"]  # "delay the warmdown": it starts later and ends with the run
        elif verb and _other_dimension(name, pre):
            verb = None  # "wider two layer model": wider is no more layers
        first_verb = first_verb or verb
        if kind == "cat":
            owner = name == "OPTIMIZER" and idx + 1 < len(mentions) and mentions[idx + 1][2] != "cat"
            if owner and _OWNER_RE.match(post):
                continue  # "Adam learning rate", "Adam's epsilon": the optimizer owns the knob, it is not changed
            if name.endswith("OPTIMIZER") and _OPTIMIZER_AS_MODIFIER_RE.match(post):
                continue  # an optimizer named in passing ("so each chunk runs ~6 SGD steps")
            cats.setdefault(name, []).append((m, value, verb, post))
            continue
        if kind == "tech" and verb is None and pre.strip():
            continue  # a technique named in passing, neither added nor removed
        fact = _numeric_fact(name, "comp" if kind == "tech" else kind, pre if idx == 0 else "", post, verb)
        if fact:
            facts.append(_sequences(fact, m.group()))
    for name, items in cats.items():
        if name == "WINDOW_PATTERN":
            facts.extend(_window_sizes(items))
        fact = _categorical_fact(name, items, piece)
        if fact:
            facts.append(fact)
    return facts, first_verb or inherited


def _window_sizes(items: list[tuple]) -> list[dict]:
    """The window sizes a piece that also names a pattern sets: "SSSL short_window=512" is the pattern and the
    short window's size (a pattern alone says nothing of the size)."""
    if all(value is None for _, value, _, _ in items):
        return []
    sizes = (_numeric_fact("SHORT_WINDOW", "num", "", post, verb) for _, value, verb, post in items if value is None)
    return [fact for fact in sizes if fact and fact["new"] is not None]


def _sequences(fact: dict, named: str) -> dict:
    """A plain "batch" / "batch size" of fewer than 1024 is sequences per device step, not tokens per
    step ("batch=32"): the device batch. "total batch", "tokens per step" stay the total."""
    if fact["name"] != "TOTAL_BATCH_SIZE" or named.startswith(("total", "tokens")):
        return fact
    values = [v for v in (fact.get("old"), fact.get("new")) if v is not None]
    if values and all(_is_number(v) and 0 < v < 1024 for v in values):
        return dict(fact, name="DEVICE_BATCH_SIZE")
    return fact


# "more / less" before a manner word compares how a schedule phase runs, not how long it is: "a less
# aggressive cooldown" may be a longer or a gentler one. (Of a size, "less aggressive weight decay", it is
# the size.)
_MANNER_RE = re.compile(r"\b(?:more|less)\s+(?:aggressive|gentle|steep|sharp|abrupt|smooth|harsh|conservative)\s*$")
_PHASE_RE = re.compile(r"WARMUP|WARMDOWN|COOLDOWN")
_WIDTH_WORDS = frozenset({"wider", "widen", "widened", "narrower", "narrow"})
_DEPTH_WORDS = frozenset({"deeper", "shallower"})


def _other_dimension(name: str, pre: str) -> bool:
    """Whether the edit verb before a knob names another dimension than the knob's: "wider" / "narrower"
    say nothing of the depth, "deeper" / "shallower" nothing of a width."""
    verb = next((w for w in reversed(_WORD_RE.findall(pre)) if w in VERB_WORDS), None)
    return (verb in _WIDTH_WORDS and name == "DEPTH") or (verb in _DEPTH_WORDS and name != "DEPTH")


_DELAY_RE = re.compile(r"\b(?:delay(?:ed|ing|s)?|postpon\w*)\b")
_KEEP = VERB_WORDS["keep"]
# A verb that keeps what follows it: "raise LR but keep depth 8", "WARMDOWN 0.5 -> 0.4 keeping no warmup".
_KEEPING = frozenset({"keep", "keeps", "keeping", "hold", "holds", "holding", "retain", "retains", "retaining",
                      "preserve", "preserving", "same"})  # "depth 8→12 same width": the width stays


_BUT_RE = re.compile(r"\bbut\b")
# A keep word after a cited run or a determiner names an earlier keep, not what stays: "re-apply exp_003's kept
# EMA decay 0.9965 -> 0.998", "revive the orphaned exp_003 keep: EMA_DECAY 0.9965 to 0.998".
_RUN_REFERENCE = r"(?:exp(?:eriment)?|run|trial|job|iter)_?\d+"  # a name for an earlier run: "exp_081", "run_12"
_NAMED_KEEP_RE = re.compile(rf"(?:{_RUN_REFERENCE}(?:'s)?|\b(?:the|a|an|its|their|his|her|that|this|whose)"
                            r"(?:\s+[a-z]+)?)\s*$")


def _kept_part(piece: str, inherited: tuple | None) -> str | None:
    """What of ``piece`` is a change when it says something stays as it is: the text before a keeping verb
    ("raise LR but" of "raise LR but keep depth 8"), or after a "but" that follows it ("lower min_lr 0.02 ->
    0.004" of "keep the cosine shape but lower min_lr 0.02 -> 0.004"); "" when nothing is changed ("depth
    unchanged", "keep X at 4", or a piece without a verb of its own after one that kept: "keeping no warmup
    and zero final LR"); None when the piece keeps nothing. Identifiers are no words here ("int8_keep_float")."""
    text = _IDENT_RE.sub(lambda m: " " * len(m.group()), piece) if "_" in piece else piece
    for m in _WORD_RE.finditer(text):
        if VERB_WORDS.get(m.group(), ("",))[0] == "keep" and not _NAMED_KEEP_RE.search(piece, 0, m.start()):
            but = _BUT_RE.search(text, m.end())
            if but and _mentions_in(piece[but.end():]):
                return piece[but.end():]
            return piece[: m.start()] if m.group() in _KEEPING and MENTIONS.search(piece[: m.start()]) else ""
    if inherited == _KEEP and not any(w in VERB_WORDS for w in _WORD_RE.findall(text)):
        return ""
    return None


# A knob the vocabulary does not know, written as an identifier: "grad_accum_steps", "MUON_NS_STEPS"
# (snake case), or any name assigned a number ("AR=128"). Not a call ("f_x(") or an attribute
# ("tok_emb.weight"), and not a metric the run reports.
_IDENT_RE = re.compile(r"(?<![\w.])(?:[a-z][a-z0-9]*(?:_[a-z0-9]+)+|[a-z][a-z0-9]*(?=\s*=\s*-?\.?\d))(?![\w(]|\.[a-z])")
_METRIC_NAMES = frozenset(("val_bpb", "val_loss", "train_loss", "train_bpb", "peak_vram", "peak_vram_mb", "memory_gb",
                           "tok_per_sec", "tokens_per_sec", "num_steps", "num_params", "total_tokens", "mfu",
                           "bpb", "loss", "steps", "params", "tokens", "time", "seed"))


# A name for an earlier run ("exp_081", "run_12", "trial_7"): a citation, never a knob.
_RUN_REFERENCE_RE = re.compile(_RUN_REFERENCE)
_COUNT_PREFIX_RE = re.compile(r"(?:num|n)_(?=[a-z])")


def _identifier(m: re.Match) -> tuple[re.Match, str, str, str | None]:
    """An identifier no vocabulary entry spans: the knob its name is after a count prefix
    ("num_kv_heads" is the kv heads), else a numeric knob named after itself."""
    word = m.group()
    prefix = _COUNT_PREFIX_RE.match(word)
    if prefix:
        rest = word[prefix.end():]
        known = next((k for k in MENTIONS.finditer(rest) if k.start() == 0 and k.end() == len(rest)), None)
        if known is not None and MENTION_META[known.lastgroup][1] != "cat":
            return (m, *MENTION_META[known.lastgroup])
    return (m, IDENTIFIER_ALIASES.get(word.upper(), word.upper()), "num", None)


def _mentions_in(piece: str, techniques: re.Pattern[str] | None = None) -> list[tuple[re.Match, str, str, str | None]]:
    """Knob mentions in ``piece``, in text order: (match, knob, kind, category value). Vocabulary
    names first; an identifier the vocabulary does not know is a numeric knob named after itself
    (upper case), so "increase grad_accum_steps to 16" moves GRAD_ACCUM_STEPS up like any knob; a
    technique named in CamelCase (``techniques``, from :func:`_technique_names`) is of kind ``tech``."""
    found = [(m, *MENTION_META[m.lastgroup]) for m in MENTIONS.finditer(piece)]
    if "_" not in piece and "=" not in piece and techniques is None:
        return _owned(piece, found)
    spans = [(m.start(), m.end()) for m, *_ in found]
    extra = [_identifier(m) for m in _IDENT_RE.finditer(piece)
             if m.group() not in _METRIC_NAMES and not _RUN_REFERENCE_RE.fullmatch(m.group())
             and not any(a < m.end() and m.start() < b for a, b in spans)]
    extra += [(m, m.group().upper(), "tech", None) for m in (techniques.finditer(piece) if techniques else ())
              if not any(a < m.end() and m.start() < b for a, b in spans)]
    return _owned(piece, _parameters_of_knobs(piece, sorted(found + extra, key=lambda item: item[0].start())
                                              if extra else found))


_PARAMETER_GAP_RE = re.compile(r"\s*\(?\s*")
_ASSIGNED_RE = re.compile(r"\s*[=:]\s*-?\.?\d")


def _parameters_of_knobs(piece: str, mentions: list) -> list:
    """An assigned identifier right after a numeric knob is that knob's own parameter: "grad clip max_norm=1.0"
    and "gradient clipping max_norm=5.0" set ``GRAD_CLIP``, not a knob ``MAX_NORM`` of their own."""
    out: list = []
    for item in mentions:
        m, name, kind, _ = item
        prev = out[-1] if out else None
        if (prev is not None and prev[2] == "num" and kind == "num" and m.re is _IDENT_RE
                and _PARAMETER_GAP_RE.fullmatch(piece, prev[0].end(), m.start())
                and _ASSIGNED_RE.match(piece, m.end())):
            out[-1] = (m, prev[1], prev[2], prev[3])
            continue
        out.append(item)
    return out


# Settings every parameter group has: its learning rate, Adam's betas and epsilon, weight decay, init.
_GROUP_SETTINGS = frozenset({"LR", "ADAM_BETA1", "ADAM_BETA2", "ADAM_BETAS", "ADAM_EPS", "WEIGHT_DECAY", "INIT_SCALE"})
# The settings of an optimizer a component owns: a group's (but its init) and a plain "momentum", which
# upstream's vocabulary reads as Muon's and becomes the component's MOMENTUM.
_OPTIMIZER_SETTINGS = (_GROUP_SETTINGS - {"INIT_SCALE"}) | {"MUON_MOMENTUM"}
_OWNED_SETTING_NAMES = {"MUON_MOMENTUM": "MOMENTUM"}
# An optimizer's name before one of these nouns describes the training, it changes nothing ("SGD steps").
_OPTIMIZER_AS_MODIFIER_RE = re.compile(r"[\s-]*(?:steps?|updates?|iterations?|epochs?|passes|count|ce|loss)\b")
_OPTIMIZER_GAP_RE = re.compile(r"(?:'s)?\s+(?:(?:inner(?:[\s-]loop)?|optimi[sz]er)\s+)*(?:from\s+)?")
_OWNER_GAP_RE = re.compile(r"(?:'s)?\s+(?:([a-z]+)\s+)?")  # a word between may say how ("normal init")
# Parameter groups named by a plain word ("embeddings weight decay"), in one spelling each.
_GROUP_NOUN_RE = re.compile(r"(?<![\w])(embeddings?|embeds?|lm[\s_]head|unembedding|biases|norms|gains|scalars|lambdas)"
                            r"(?:'s)?\s+$")
_GROUP_NOUNS = {"embeddings": "embedding", "embeds": "embedding", "embed": "embedding", "lm head": "lm_head",
                "biases": "bias", "norms": "norm", "gains": "gain", "scalars": "scalar", "lambdas": "lambda"}


def _owned(piece: str, mentions: list) -> list:
    """``mentions`` with a group setting named right after a knob or component that owns it merged into
    one knob of that owner: "x0_lambdas LR" is ``X0_LAMBDAS_LR``, "value embedding LR" ``VALUE_EMBEDS_LR``,
    "x0_params Adam beta2" ``X0_LAMBDAS_ADAM_BETA2``, "value embeddings init std" ``VALUE_EMBEDS_INIT_SCALE``:
    neither the owner nor the model-wide setting moves. An optimizer named right after a component is that
    component's own ("TTT SGD optimizer", "TTT optimizer from SGD to AdamW": ``TTT_OPTIMIZER``), and so are
    the optimizer's settings named after it in the clause ("(lr=0.005, momentum=0.9)": ``TTT_LR``,
    ``TTT_MOMENTUM``): the model's optimizer, LR and Muon momentum do not move."""
    out: list = []
    owner = None  # the component whose optimizer this clause names
    for item in mentions:
        m, name, kind, value = item
        prev = out[-1] if out else None
        if owner and (name == "OPTIMIZER" or name in _OPTIMIZER_SETTINGS and "muon" not in m.group().lower()):
            out.append((m, f"{owner}_{_OWNED_SETTING_NAMES.get(name, name)}", kind, value))
            continue
        if (name == "OPTIMIZER" and prev is not None and prev[2] == "comp"
                and _OPTIMIZER_GAP_RE.fullmatch(piece, prev[0].end(), m.start())):
            owner = prev[1]
            out[-1] = (m, f"{owner}_OPTIMIZER", kind, value)
            continue
        gap = _OWNER_GAP_RE.fullmatch(piece, prev[0].end(), m.start()) if prev is not None else None
        if (name in _GROUP_SETTINGS and gap and prev[2] in ("num", "comp") and prev[1] not in _GROUP_SETTINGS
                and not (gap.group(1) and (gap.group(1) in VERB_WORDS or gap.group(1) in _LIST_STOP))):
            out[-1] = (m, f"{prev[1]}_{name}", "num", None)
            continue
        group = _GROUP_NOUN_RE.search(piece, 0, m.start()) if name in _GROUP_SETTINGS else None
        if group and (prev is None or prev[0].end() <= group.start()):
            item = (m, f"{_GROUP_NOUNS.get(group.group(1), group.group(1)).upper()}_{name}", "num", None)
        out.append(item)
    return out


def _counts_steps(name: str) -> bool:
    """Whether a knob's value is a number of steps ("Muon momentum warmup 100 steps", "NS_STEPS 4 iterations"):
    beside it a count of steps is its value, not a count of something else."""
    return name.endswith(("_STEPS", "_ITERS", "_WARMUP"))


def _values(pre: str, post: str, name: str = "") -> tuple[Any, Any, str | None]:
    """(old, new, by-text) from the text after a mention, or a value right before it. A hyphen glued to
    the name is no minus sign ("depth-3 checkpoint" is depth 3)."""
    if post[:1] == "-" and post[1:2].isdigit():
        post = " " + post[1:]
    m = _PAIR_RE.match(post)
    if m:
        return _parse_number(m.group("a")), _parse_number(m.group("b")), None
    m = _BY_RE.match(post)
    if m:
        return None, None, m.group("a") or f"{m.group('x')}x"
    m, before = _INSTEAD_RE.match(post), _PRE_RE.search(pre) if pre else None
    if m and before:  # "four heads instead of two": the value before the knob is the new one
        return _parse_number(m.group("a")), _parse_number(before.group("a")), None
    m = _ONE_RE.match(post)
    if m and (not _UNIT_AFTER_RE.match(post, m.end()) or (_counts_steps(name) and _STEP_UNIT_RE.match(post, m.end()))):
        instead = _INSTEAD_RE.match(post, m.end())  # "depth 8 instead of 6": the old value follows
        return _parse_number(instead.group("a")) if instead else None, _parse_number(m.group("a")), None
    m = _PRE_RE.search(pre) if pre else None
    if m and _MULTIPLE_RE.fullmatch(m.group("a")) and not (name in _MULTIPLE_VALUED and m.group("a")[0].isdigit()):
        # "half batch", "2x batch": a multiple of where it stands ("4x MLP" is the MLP ratio's value)
        value = _parse_number(m.group("a").rstrip("x×"))
        return None, None, f"{value}x"
    return None, (_parse_number(m.group("a")) if m else None), None


# "muon lr down 25%", "embedding lr up 20%", "matrix lr -25%": a change relative to where the knob stands
_RELATIVE_RE = re.compile(r"^\s*(?:(?P<d>up|down)\s+(?:by\s+)?|(?P<s>[+\-−])\s*)(?P<p>\d+(?:\.\d+)?)\s*%")


def _numeric_fact(name: str, kind: str, pre: str, post: str, verb: tuple | None) -> dict | None:
    meaning, factor = verb or (None, None)
    relative = _RELATIVE_RE.match(post)
    if relative:
        down = relative.group("d") == "down" or relative.group("s") in ("-", "−")
        meaning = meaning if meaning in ("up", "down") else ("down" if down else "up")
        return {"name": name, "old": None, "new": None, "direction": meaning, "source": "text",
                "factor": _by_factor(f"{relative.group('p')}%", meaning)}
    old, new, by = _values(pre, post, name)
    if by is not None and meaning is None and by.endswith("x"):  # "LR x2": the multiplier says which way
        value = _parse_number(by)
        meaning = "up" if _is_number(value) and value > 1 else "down"
    if by is not None:
        factor = _by_factor(by, meaning)
    if name == "WARMDOWN_RATIO" and old is None and new is None and _FULL_TAIL_RE.search(pre):
        new = 1.0  # "full anneal": the whole budget is warmdown
    if meaning == "revert" and old is not None and new is not None:
        old, new = new, old
    elif meaning == "revert" and old is None and new is None:  # "undo the depth increase": the other way
        undone = _UNDONE_RE.match(post)
        meaning = ({"up": "down", "down": "up"}.get(VERB_WORDS.get(undone.group(1), ("",))[0])
                   if undone else None) or meaning
    direction = _numeric_direction("num" if name in VALUE_KNOB else kind, meaning, old, new)
    if direction is None:
        return None
    if kind == "comp" and name in VALUE_KNOB and (_is_number(old) or _is_number(new)):
        name = VALUE_KNOB[name]
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
        if kind == "comp" and meaning in (None, "set", "add"):
            return "added"  # "label smoothing 0.1": the technique, at a strength ("softcap 30" is a value)
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
    if text.endswith(("x", "×")) and value < 1:  # "0.5x": a multiplier under one is the factor itself
        return value
    if _PERCENT_RE.search(text) or value < 1:
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
        old, new = _short_pattern_pair(named[0][0], piece) if name == "WINDOW_PATTERN" else (None, value)
        return {"name": name, "old": old, "new": new or value, "direction": "changed", "source": "text"}
    (m0, v0), (m1, v1) = named[0], named[1]
    old, new = (v1, v0) if _REORDER_RE.search(piece[m0.end() : m1.start()]) else (v0, v1)
    if meaning == "revert":
        old, new = new, old
    if old == new:
        return None
    return {"name": name, "old": old, "new": new, "direction": "changed", "source": "text"}


_PATTERN_BEFORE_RE = re.compile(r"(?<![a-z0-9])[\"']?([sl]{1,8})[\"']?\s*(?:->|→|=>|\bto)\s*[\"']?$")
_PATTERN_BEYOND_RE = re.compile(r"^[\"']?\s*(?:->|→|=>|to)\s*[\"']?([sl]{1,8})[\"']?(?![a-z0-9])")


def _short_pattern_pair(match: re.Match, piece: str) -> tuple[str | None, str | None]:
    """(old, new) of a window pattern whose other side is too short to be named alone: "L -> SL" (old
    L), "SSSL to L" (new L); (None, None) when there is none."""
    before = _PATTERN_BEFORE_RE.search(piece, 0, match.start())
    if before:
        return before.group(1).upper(), None
    beyond = _PATTERN_BEYOND_RE.match(piece[match.end():])
    value = _category_value(match, "*") if re.fullmatch(r"[sl]+", match.group()) else None
    return (value, beyond.group(1).upper()) if beyond and value else (None, None)


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


_PATTERN_AFTER_RE = re.compile(r"^\s*(?:to|=|:)?\s*[\"']?([sl]{1,8})[\"']?(?![a-z0-9])")
_UNKNOWN_KNOB_RE = re.compile(  # (?<![a-z]): a name starts at a word's first letter (the leftmost match does anyway)
    rf"(?<![a-z])(?P<name>(?:[a-z][a-z0-9_]*\s+){{0,2}}[a-z][a-z0-9_]*)\s*[:=]?\s*(?P<a>{_NUMBER}){_ARROW}(?P<b>{_NUMBER})")


_MAX_UNKNOWN_PIECE = 400  # "x0 lambda init 0.1 -> 0.2" is short; the regex backtracks over long words


def _unknown_knob(piece: str) -> dict | None:
    """"x0 lambda init 0.1 -> 0.2": a knob the alias table does not know, named after its words."""
    m = _UNKNOWN_KNOB_RE.search(piece[:_MAX_UNKNOWN_PIECE])
    if not m:
        return None
    words = [w for w in m.group("name").split() if w not in VERB_WORDS and w not in ("from", "the", "a", "of")]
    old, new = _parse_number(m.group("a")), _parse_number(m.group("b"))
    if not words or not (_is_number(old) and _is_number(new)) or old == new or "seed" in words:
        return None  # a seed is no knob: another seed runs the same idea again (textnorm.is_rerun)
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
    t = _SPACE_RE.sub("", token.strip())
    if t in NUMBER_WORDS:
        return NUMBER_WORDS[t]
    percent = t.endswith(("%", "percent"))
    t = _SUFFIX_RE.sub("", t)
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
    if _INT_RE.fullmatch(t):
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
