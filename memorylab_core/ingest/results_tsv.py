"""Tolerant reader of upstream ``results.tsv`` files (commit, val_bpb, memory_gb, status, description).

Files written by agents in the wild drift from the 5-column format: columns reordered or added, CRLF
line ends, a UTF-8 BOM, blank lines, a description containing a tab, a row cut short, a header
repeated where two files were concatenated. :func:`read_results_tsv` reads what it can and reports
the rest as warnings (``"line 7: ..."``); it never raises on malformed content. Import into the
store is built on top of this (idempotent there, keyed by the row contents).
"""

from __future__ import annotations

import math
from pathlib import Path

COLUMNS = ("commit", "val_bpb", "memory_gb", "status", "description")
SKIPPED_ROW = "; row skipped"  # ends every warning about a data row that was dropped
_HEADER_ALIASES = {
    "commit": ("commit", "commit_hash", "hash", "sha", "git_commit"),
    "val_bpb": ("val_bpb", "valbpb", "bpb", "val_bpb_", "metric"),
    "memory_gb": ("memory_gb", "memory", "mem_gb", "memory_(gb)", "vram_gb", "peak_vram_gb", "peak_memory_gb"),
    "status": ("status", "outcome", "result", "decision"),
    # Best first: a ledger with several text columns (a multi-agent harness writes the proposal as
    # ``hypothesis`` and what was implemented as ``notes``) is described by the proposal; where another
    # text column states the changes far more often, that one is (:func:`_proposal_column`).
    "description": ("description", "desc", "idea", "change", "proposal", "hypothesis", "reasoning", "rationale",
                    "notes"),
}
_CANONICAL = {alias: name for name, aliases in _HEADER_ALIASES.items() for alias in aliases}
_TEXT_COLUMNS = _HEADER_ALIASES["description"]


def read_results_tsv(path: str | Path) -> tuple[list[dict], list[str]]:
    """Rows and warnings of a results.tsv file.

    Each row: ``commit`` (str), ``val_bpb`` (float, or None when empty, non-numeric or not positive —
    upstream writes 0.000000 for crashes), ``memory_gb`` (float or None), ``status`` (raw text,
    stripped), ``description`` (str), ``extra`` (unknown columns by header name) and ``line`` (1-based
    line number in the file), and ``raw`` (``line``: the row's text; ``fields``: the five upstream
    cells as written). An unreadable file gives no rows and one warning.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        return [], [f"{path}: cannot read ({exc.strerror or exc})"]
    text, warnings = decode_text(raw, str(path))
    rows, more = parse_results_lines(text_lines(text))
    return rows, warnings + more


def text_lines(text: str) -> list[str]:
    """The lines of ``text``, ended by ``\n`` or ``\r\n`` only. ``str.splitlines`` also ends a line at
    U+2028/U+2029, NEL, a lone CR and \x1c-\x1e: a description holding one would split its row in two,
    and the second half could forge a row of its own (Python's csv module reads it as one row too)."""
    lines = text.split("\n")
    if lines and not lines[-1]:
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def decode_text(raw: bytes, name: str) -> tuple[str, list[str]]:
    """``raw`` as text: UTF-8 without a BOM, invalid bytes replaced (with a warning)."""
    text = raw.decode("utf-8-sig", errors="replace")
    warnings = [f"{name}: invalid UTF-8 replaced"] if "\ufffd" in text and b"\xef\xbf\xbd" not in raw else []
    return text, warnings


def has_header(lines: list[str]) -> bool:
    """Whether the first non-blank line is a results.tsv header (at least two known columns, one status)."""
    first = next((line for line in lines if line.strip()), None)
    return first is not None and _looks_like_header(first.split("\t"))


def parse_results_lines(lines: list[str]) -> tuple[list[dict], list[str]]:
    """Parse the lines of a results.tsv (see :func:`read_results_tsv`)."""
    rows: list[dict] = []
    warnings: list[str] = []
    header: list[str] | None = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cells = line.split("\t")
        if _looks_like_header(cells):
            if header is not None:
                warnings.append(f"line {number}: repeated header skipped")
            header = _header(cells, number, warnings) if header is None else header
            continue
        if header is None:
            header = list(COLUMNS)
            warnings.append(f"line {number}: no header line; assuming the upstream column order {'/'.join(COLUMNS)}")
        row = _row(cells, header, number, warnings)
        if row is not None:
            rows.append(row)
    return _proposal_column(rows, warnings), warnings


_PROPOSAL_SAMPLE = 100  # rows read to tell which text column states the changes
_PROPOSAL_MARGIN = 2.0  # another column must state a change this many times as often to be the proposal


def _proposal_column(rows: list[dict], warnings: list[str]) -> list[dict]:
    """``rows`` described by the text column that states their changes. The header's rank picks the
    description column; when another text column names a knob move or technique in at least
    :data:`_PROPOSAL_MARGIN` times as many rows (a ``reasoning`` column holding "higher LR + fewer NS steps"
    beside a ``description`` holding "worse convergence"), that column is the proposal and the other is
    kept as an extra, with a warning saying so. The raw row, and so the import key, is unchanged."""
    others = [name for name in (rows[0]["extra"] if rows else {}) if _normalise(name) in _TEXT_COLUMNS]
    if not others:
        return rows
    from ..novelty.changes import text_changes  # only files with several text columns

    sample = rows[:_PROPOSAL_SAMPLE]

    def states(text: object) -> int:
        return int(bool(str(text or "").strip() and text_changes(str(text))))

    current = sum(states(r["description"]) for r in sample)
    best, count = max(((name, sum(states(r["extra"].get(name)) for r in sample)) for name in others),
                      key=lambda item: item[1])
    if count < _PROPOSAL_MARGIN * max(current, 1):
        return rows
    warnings.append(f"the proposals are read from column {best!r}: it states a change in {count} of {len(sample)} "
                    f"rows, 'description' in {current}")
    for row in rows:
        proposal = str(row["extra"].pop(best, "") or "").strip()  # a short row may stop before it
        row["extra"]["description"], row["description"] = row["description"], proposal
    return rows


def _looks_like_header(cells: list[str]) -> bool:
    names = {_normalise(c) for c in cells}
    return len(names & set(_CANONICAL)) >= 2 and "status" in {_CANONICAL.get(n) for n in names}


def _normalise(cell: str) -> str:
    return "_".join(cell.strip().lower().split())


def _header(cells: list[str], number: int, warnings: list[str]) -> list[str]:
    header, seen = [], set()
    text_column = _best_text_column(cells)
    for cell in cells:
        name = _CANONICAL.get(_normalise(cell), cell.strip() or f"column_{len(header) + 1}")
        if name == "description" and _normalise(cell) != text_column:
            name = cell.strip()  # another text column (``notes`` beside ``hypothesis``): kept as an extra
        if name in seen:
            warnings.append(f"line {number}: duplicate column {cell.strip()!r}; the first one is used")
            name = f"{name}_{len(header) + 1}"
        seen.add(name)
        header.append(name)
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        warnings.append(f"line {number}: header lacks {', '.join(missing)}")
    return header


def _best_text_column(cells: list[str]) -> str | None:
    """The normalised name of the header's description column: the best-ranked of its text columns."""
    present = {_normalise(cell) for cell in cells}
    return next((name for name in _TEXT_COLUMNS if name in present), None)


def other_text(row: dict) -> str:
    """A row's text columns other than its description (``notes`` beside ``hypothesis``), joined: what
    an import reads for a crash's cause when the description states only the idea."""
    extra = {_normalise(name): value for name, value in (row.get("extra") or {}).items()}
    return "\n".join(str(extra[name]).strip() for name in _TEXT_COLUMNS if str(extra.get(name) or "").strip())


def _row(cells: list[str], header: list[str], number: int, warnings: list[str]) -> dict | None:
    if len(cells) == 1 and len(header) > 1:
        warnings.append(f"line {number}: not tab-separated ({_clip(cells[0])}){SKIPPED_ROW}")
        return None
    values = _fit(cells, header, number, warnings)
    row = {
        "commit": values.get("commit", "").strip(),
        "val_bpb": _metric(values.get("val_bpb", ""), "val_bpb", number, warnings, positive=True),
        "memory_gb": _metric(values.get("memory_gb", ""), "memory_gb", number, warnings, positive=False),
        "status": values.get("status", "").strip(),
        "description": values.get("description", "").strip(),
        "extra": {k: v for k, v in values.items() if k not in COLUMNS},
        "line": number,
        # The row as written, so an import can be keyed on it and exported back unchanged.
        "raw": {"line": "\t".join(cells), "fields": {c: values.get(c, "") for c in COLUMNS}},
    }
    if not row["status"]:
        warnings.append(f"line {number}: no status")
    return row


def _fit(cells: list[str], header: list[str], number: int, warnings: list[str]) -> dict[str, str]:
    """Cells by column name. Surplus cells join the description when it is the last column."""
    if len(cells) > len(header):
        if header[-1] == "description":
            cells = cells[: len(header) - 1] + ["\t".join(cells[len(header) - 1 :])]
            warnings.append(f"line {number}: description contains tabs; kept them")
        else:
            warnings.append(f"line {number}: {len(cells) - len(header)} cell(s) beyond the header ignored")
            cells = cells[: len(header)]
    elif len(cells) < len(header):
        warnings.append(f"line {number}: {len(cells)} of {len(header)} columns")
    return dict(zip(header, cells, strict=False))


def _metric(text: str, name: str, number: int, warnings: list[str], positive: bool) -> float | None:
    text = text.strip()
    if not text or text.lower() in ("-", "—", "na", "n/a", "none", "null", "nan"):
        return None
    try:
        value = float(text)
    except ValueError:
        warnings.append(f"line {number}: {name} {_clip(text)!r} is not a number")
        return None
    if not math.isfinite(value) or (positive and value <= 0):
        return None
    return value


def _clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
