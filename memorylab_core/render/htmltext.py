"""Escaping for the HTML dashboard: text, attributes, and JSON embedded in a ``<script>`` block.

Every string that reaches the page from the ledger (descriptions, tags, notes, errors, hypotheses,
run ids, commits) was typed by an agent or imported from a file, so it is treated as hostile: it goes
through :func:`esc` (element text and attribute values, HTML and inline SVG alike) or
:func:`script_json` (data islands). Nothing user-supplied is ever placed in a URL, a style or code.
"""

from __future__ import annotations

import json
import math
import re

# C0/C1 control characters (other than tab, newline, carriage return), DEL and the bidirectional controls are
# shown as escapes (``\x07``, ``\u202e``), as the terminal and the markdown report show them: a stray byte from
# a crash log cannot upset the parser, and a description cannot reorder what a reader sees.
_CONTROLS = (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029,
             *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_SPECIAL = re.compile("[&<>\"'\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# What html.escape(quote=True) produces, plus the controls; a table instead of the html module keeps
# that import (and its entity table) out of start-up.
_ESCAPES = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", ord('"'): "&quot;", ord("'"): "&#x27;",
            **{code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" for code in _CONTROLS}}
_SCRIPT = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def esc(value: object) -> str:
    """``value`` as text that is safe in element content and in quoted attribute values.

    ``& < > " '`` become character references; most strings have none, so they are returned as they are
    (the check is one regex scan, which keeps 10,000 chart marks cheap)."""
    text = "" if value is None else str(value)
    if not _SPECIAL.search(text):
        return text
    return text.translate(_ESCAPES)


def clip(text: object, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis (not yet escaped)."""
    value = " ".join(("" if text is None else str(text)).split())
    return value if len(value) <= limit else value[: max(1, limit - 1)].rstrip() + "…"


def script_json(data: object) -> str:
    """JSON for a ``<script type="application/json">`` block that no string inside can break out of.

    ``<``, ``>`` and ``&`` become ``\\u`` escapes (so ``</script>`` and ``<!--`` cannot appear), and so do
    U+2028/U+2029 (line terminators in older JavaScript). The result still parses as the same JSON.
    """
    text = json.dumps(_finite(data), ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
    return text.translate(_SCRIPT)


def _finite(value: object) -> object:
    """``value`` with NaN/inf floats replaced by None (they are not JSON), containers walked."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
