"""The vocabulary's alternations, matched through a first-character index instead of one giant pattern.

The guard's vocabulary is a list of small regular-expression fragments (a knob's spellings, a
technique's names, a category's keywords). Joined into one alternation, they made patterns of up to
6,800 characters that every process compiled before reading its first description. An
:class:`Alternation` keeps the fragments apart: it indexes them by the characters a match can start
with (read from each fragment's text, without compiling it), finds the positions where a match may
start with one small scanner, and at each position tries, with one compiled pattern per starting
character, only the fragments that can start there. A character's pattern is compiled the first
time a text needs it, so ``check -d "raise matrix lr"`` compiles the fragments that start with
``r``, ``m`` and ``l``, not the whole vocabulary.

Matching is exactly that of ``re.compile(start + "(?:(?P<n0>f0)|(?P<n1>f1)|...)" + end)``: the same
leftmost matches, the same fragment (the first in order that matches), the same named groups (match
objects are real :class:`re.Match` objects over the whole text). The first-character index may only
over-approximate: a fragment whose first characters it cannot read is tried everywhere.
Standard library only.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterator

# Characters a fragment can start with; None stands for "any character" (not worth indexing).
Firsts = frozenset[str] | None
_ANY: Firsts = None
_DIGITS = frozenset(string.digits)
_QUANTIFIERS = "?*+{"


def first_chars(fragment: str) -> Firsts:
    """The characters a non-empty match of ``fragment`` can start with (lower-case patterns, no flags),
    or None when the fragment can start with any character (or uses syntax this reader skips).

    Zero-width parts (lookarounds, ``\\b``, ``^``) add nothing: they only narrow where a match can
    start, so ignoring them over-approximates, which is safe.
    """
    try:
        firsts, _, end = _alternation(fragment, 0)
    except (IndexError, ValueError):
        return _ANY
    return firsts if end == len(fragment) else _ANY


def _alternation(p: str, i: int) -> tuple[Firsts, bool, int]:
    """First characters, nullability and end of the alternation starting at ``p[i]`` (up to ``)`` or
    the end)."""
    firsts: Firsts = frozenset()
    nullable = False
    while True:
        branch, empty, i = _sequence(p, i)
        firsts = _union(firsts, branch)
        nullable = nullable or empty
        if i < len(p) and p[i] == "|":
            i += 1
            continue
        return firsts, nullable, i


def _sequence(p: str, i: int) -> tuple[Firsts, bool, int]:
    """First characters of a sequence of atoms: each atom's, until one that cannot match empty."""
    firsts: Firsts = frozenset()
    nullable = True
    while i < len(p) and p[i] not in "|)":
        atom, empty, i = _atom(p, i)
        i, optional = _quantifier(p, i)
        if nullable:
            firsts = _union(firsts, atom)
            nullable = empty or optional
    return firsts, nullable, i


def _atom(p: str, i: int) -> tuple[Firsts, bool, int]:
    """(first characters, can match empty, index after) of the atom at ``p[i]``."""
    ch = p[i]
    if ch == "(":
        return _group(p, i)
    if ch == "[":
        return _char_class(p, i)
    if ch == "\\":
        return _escape(p[i + 1]), p[i + 1] in "bBAZ", i + 2
    if ch in "^$":
        return frozenset(), True, i + 1
    if ch == ".":
        return _ANY, False, i + 1
    return frozenset(ch), False, i + 1


def _group(p: str, i: int) -> tuple[Firsts, bool, int]:
    """A group: capturing, ``(?:``, ``(?P<name>`` or a lookaround (zero width: nothing, nullable)."""
    head = re.match(r"\((\?(?::|P<\w+>|=|!|<=|<!))?", p[i:])
    if head.group(1) is None and p[i + 1 : i + 2] == "?":
        raise ValueError(p)  # inline flags, conditionals ...: not read
    lookaround = head.group(1) in ("?=", "?!", "?<=", "?<!")
    firsts, nullable, end = _alternation(p, i + head.end())
    if p[end] != ")":
        raise ValueError(p)
    return (frozenset(), True, end + 1) if lookaround else (firsts, nullable, end + 1)


def _char_class(p: str, i: int) -> tuple[Firsts, bool, int]:
    """``[...]``: its characters and ranges; a negated class or one with ``\\w`` / ``\\s`` is any."""
    j, chars = i + 1, set()
    negated = p[j] == "^"
    j += negated
    while p[j] != "]" or j == i + 1 + negated:
        if p[j] == "\\":
            escaped = _escape(p[j + 1])
            if escaped is _ANY:
                negated = True
            else:
                chars |= escaped
            j += 2
        elif p[j + 1] == "-" and p[j + 2] != "]":
            chars |= {chr(c) for c in range(ord(p[j]), ord(p[j + 2]) + 1)}
            j += 3
        else:
            chars.add(p[j])
            j += 1
    return (_ANY if negated else frozenset(chars)), False, j + 1


def _escape(ch: str) -> Firsts:
    """``\\d`` digits, ``\\b``-style anchors nothing, ``\\w`` / ``\\s`` (and other classes) any, else the
    character itself (``\\.``, ``\\^``)."""
    if ch == "d":
        return _DIGITS
    if ch in "bBAZ":
        return frozenset()
    if ch.isalpha():
        return _ANY
    return frozenset(ch)


def _quantifier(p: str, i: int) -> tuple[int, bool]:
    """Skip a quantifier at ``p[i]``; (index after it, whether it allows zero repeats)."""
    if i >= len(p) or p[i] not in _QUANTIFIERS:
        return i, False
    if p[i] == "{":
        end = p.index("}", i)
        low = p[i + 1 : end].split(",")[0]
        optional, i = (not low or int(low) == 0), end + 1
    else:
        optional, i = p[i] in "?*", i + 1
    if i < len(p) and p[i] in "?+":  # lazy / possessive modifier
        i += 1
    return i, optional


def _union(a: Firsts, b: Firsts) -> Firsts:
    return _ANY if a is _ANY or b is _ANY else a | b


class Alternation:
    """``re.compile(start + "(?:(?P<name>fragment)|...)" + end)``, matched through a first-character index.

    ``fragments`` are ``(group name, pattern)`` in priority order; ``start`` is a zero-width condition
    on where a match may begin (``(?<![a-z0-9])``), ``end`` one on where it may end. Offers the
    pattern methods the guard uses: :meth:`finditer`, :meth:`search`, :meth:`sub`, :meth:`fullmatch`.
    """

    def __init__(self, fragments: list[tuple[str, str]], start: str = "", end: str = "") -> None:
        self._fragments, self._start, self._end = fragments, start, end
        self._by_char: dict[str, list[int]] = {}
        self._anywhere: list[int] = []
        self._scanner: re.Pattern[str] | None = None  # set by _index, on the first match
        self._compiled: dict[str, re.Pattern[str] | None] = {}

    def _index(self) -> re.Pattern[str]:
        """Index the fragments by first character (once, on first use: a module that only imports the
        vocabulary pays nothing), and return the scanner for positions where a match may start."""
        if self._scanner is None:
            for i, (_, pattern) in enumerate(self._fragments):
                firsts = first_chars(pattern)
                if firsts is _ANY:
                    self._anywhere.append(i)
                else:
                    for ch in firsts:
                        self._by_char.setdefault(ch, []).append(i)
            chars = "".join(_class_char(c) for c in sorted(self._by_char))
            self._scanner = re.compile(self._start + ("" if self._anywhere else f"(?=[{chars}])"))
        return self._scanner

    def _pattern(self, ch: str) -> re.Pattern[str] | None:
        """The alternation of the fragments that can start with ``ch`` (compiled on first use), or None."""
        if ch not in self._compiled:
            chosen = sorted({*self._by_char.get(ch, ()), *self._anywhere})
            alternatives = "|".join(f"(?P<{self._fragments[i][0]}>{self._fragments[i][1]})" for i in chosen)
            self._compiled[ch] = re.compile(f"(?:{alternatives}){self._end}") if chosen else None
        return self._compiled[ch]

    def _match_at(self, text: str, pos: int, full: bool = False) -> re.Match[str] | None:
        if pos >= len(text):
            return None
        ch = text[pos]
        pattern = self._compiled[ch] if ch in self._compiled else self._pattern(ch)
        if pattern is None:
            return None
        return pattern.fullmatch(text, pos) if full else pattern.match(text, pos)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """Non-overlapping matches, left to right (as ``re.finditer``; no fragment matches empty)."""
        pos, scanner = 0, self._index()
        while (start := scanner.search(text, pos)) is not None:
            found = self._match_at(text, start.start())
            if found is not None and found.end() > found.start():
                yield found
                pos = found.end()
            else:
                pos = start.start() + 1

    def search(self, text: str) -> re.Match[str] | None:
        """The leftmost match, or None."""
        return next(self.finditer(text), None)

    def sub(self, replace: Callable[[re.Match[str]], str], text: str) -> str:
        """``text`` with every match replaced by ``replace(match)``."""
        out, last = [], 0
        for found in self.finditer(text):
            out += (text[last : found.start()], replace(found))
            last = found.end()
        return "".join(out) + text[last:] if out else text

    def fullmatch(self, text: str) -> re.Match[str] | None:
        """A match of the whole ``text`` (the start condition holding at 0), or None."""
        if not text or self._index().match(text) is None:
            return None
        return self._match_at(text, 0, full=True)


def _class_char(ch: str) -> str:
    """``ch`` written safely inside a character class."""
    return "\\" + ch if ch in "\\]^-[" else ch
