"""Regular expressions compiled on first use instead of at import.

Every command starts a fresh process, and MemoryLab's modules hold about a hundred patterns: compiling
them all at import was a measurable share of each command's start-up, although most commands use few
of them (``report`` uses none; see "Start-up cost" in docs/architecture.md). :func:`lazy` returns a
stand-in with the compiled pattern's interface that compiles on the first attribute access. It then
stores the compiled pattern's methods on itself, so later calls are plain attribute look-ups and cost
the same as calls on a pattern compiled at import. Matching is exactly :func:`re.compile`'s.
"""

from __future__ import annotations

import re
from typing import Any

# Attributes of a compiled pattern copied onto the stand-in after the first use.
_BOUND = ("search", "match", "fullmatch", "sub", "subn", "split", "findall", "finditer", "scanner",
          "pattern", "flags", "groups", "groupindex")


class LazyPattern:
    """``re.compile(pattern, flags)``, deferred until the pattern is first used."""

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self._args = (pattern, flags)

    def __getattr__(self, name: str) -> Any:
        # Reached only for attributes not set yet, i.e. once per name in _BOUND, on first use.
        if name.startswith("__") or name == "_args":
            raise AttributeError(name)
        compiled = re.compile(*self._args)
        for attr in _BOUND:
            setattr(self, attr, getattr(compiled, attr))
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"lazy({self._args[0]!r}, {self._args[1]!r})"


def lazy(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """A pattern that behaves as ``re.compile(pattern, flags)`` but compiles on first use."""
    return LazyPattern(pattern, flags)  # type: ignore[return-value]  # duck-typed stand-in
