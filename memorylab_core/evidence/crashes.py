"""Crash lessons: is a crash a bug in the code, or evidence about the idea?

* ``bug`` -- the code did not run as written: syntax, import, shape (tensor size mismatch) and name
  errors (``NameError``, ``UnboundLocalError``, ``AttributeError``). Fixing the typo says nothing
  about whether the idea works, so a bug crash is a mistake card about code, never a failure of the
  idea (no "avoid" rule, no failure cluster).
* ``fundamental`` -- the idea ran and failed: out of memory, NaN / divergence, timeout. These are
  evidence against the idea at that size or setting.
* ``unknown`` -- anything else (an assertion, a runtime error without a known cause).
"""

from __future__ import annotations

import re

BUG_KINDS = frozenset(("syntax", "import", "shape", "name"))
FUNDAMENTAL_KINDS = frozenset(("oom", "nan", "timeout"))
_NAME_ERROR = re.compile(r"\b(?:NameError|UnboundLocalError|AttributeError)\b")


def crash_class(kind: str | None, summary: str | None = None) -> str:
    """``bug``, ``fundamental`` or ``unknown`` for a crash's error kind (and summary line)."""
    if kind in BUG_KINDS or (summary and _NAME_ERROR.search(summary)):
        return "bug"
    if kind in FUNDAMENTAL_KINDS:
        return "fundamental"
    return "unknown"


def is_bug_crash(run) -> bool:
    """Whether a folded run is a crash caused by a plain bug in the code."""
    return run.status == "crash" and crash_class(run.error_kind, run.error_summary) == "bug"



