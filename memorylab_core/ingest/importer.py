"""Bring existing history in: upstream ``results.tsv`` files and MemoryLab-fork JSONL ledgers.

Import is idempotent: every results.tsv row gets an ``import_key`` = sha256 of (file name, raw row
text), and a row whose key is already in the ledger is skipped (a file holds each row once: exact repeats
are left out), so blank lines or rows added or removed elsewhere in the file never make a row new; a
JSONL record whose run id (or event id) is already in the ledger is skipped too. Keys written before
round 3 session 10 also held the row's line number; a row whose key of that form is in the ledger is
skipped as well. Rows are appended in file order, so an imported ledger keeps its original timeline.
Odd statuses are kept verbatim in ``original_status`` and mapped to the nearest of keep/discard/crash;
``0.000000`` val_bpb on a crash becomes null.

Input that is not text in a known format (compressed, binary, a TSV without the results.tsv header,
a JSONL file without one JSON object) refuses the whole import with one line. Rows that do not make
a valid record (:mod:`memorylab_core.ledger.schema`) are skipped with a warning each; TSV text fields
longer than the schema allows are cut to :data:`~memorylab_core.ledger.schema.MAX_TEXT` characters.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..evidence.arenas import arenas_by_row, import_base, split_points
from ..evidence.crashes import described_kind
from ..evidence.logparse import stated_kind
from ..index.journal_index import JournalIndex
from ..ledger.migration import archived_files, write_archive
from ..ledger.model import CATEGORIES, SCHEMA_VERSION, STATUSES, finite_float, is_val_bpb
from ..ledger.schema import MAX_METRIC, MAX_TEXT, as_written, is_commit, record_problem
from ..ledger.store import MemoryLabError, Store, is_safe_run_id, write_derived
from ..novelty import changes
from .results_tsv import SKIPPED_ROW, decode_text, has_header, other_text, parse_results_lines, text_lines

# Upstream agents write many words for three outcomes. Order matters: first match wins.
_STATUS_WORDS = (
    # A crash word may follow the stage it names: ``preflight_crash``, ``runtime_error``, ``cuda_oom``,
    # ``harness_abort``.
    ("crash", r"(?:[a-z0-9]+[ _-])?(?:crash\w*|error\w*|oom|exception|abort\w*)|fail\w*|timeout|timed[ _-]?out|nan|"
              r"diverg\w*|broken"),
    ("keep", r"keep|kept|accept\w*|improv\w*|best|baseline|new[ _-]?best|advance\w*|promot\w*|success\w*"),
    ("discard", r"discard\w*|revert\w*|reject\w*|worse|no[ _-]?gain|drop\w*|neutral|regress\w*"),
)
# Statuses of rows that never ran: imported as not-evidence (role and validity ``not_run``, evidence/roles.py).
_NEVER_RAN = r"missing|skip\w*|pending|queued|planned|todo|cancell?ed|not[ _-]?(?:run|started)|never[ _-]?ran"


def never_ran(raw: str) -> bool:
    """Whether a raw status word says the row never ran (``missing``, ``skipped``, ``pending`` ...)."""
    return re.fullmatch(rf"(?:{_NEVER_RAN})(?:[ _-].*)?", (raw or "").strip().lower()) is not None


def _not_run(record: dict, raw_status: str) -> dict:
    """``record`` marked as a row that never ran when its raw status says so (else unchanged): shown,
    but never an experiment, a failure or evidence (evidence/roles.py, evidence/validity.py)."""
    if never_ran(raw_status):
        record["role"], record["validity"] = "not_run", "not_run"
    return record


def map_status(raw: str) -> tuple[str, bool]:
    """Nearest status for a raw status word, and whether it was mapped (not already canonical)."""
    word = (raw or "").strip().lower()
    if word in STATUSES:
        return word, False
    for status, pattern in _STATUS_WORDS:
        if re.fullmatch(rf"(?:{pattern})(?:[ _-].*)?", word):
            return status, True
    return "discard", True


@dataclass
class ImportSummary:
    """What an import did, per file and overall (the ``--json`` output)."""

    files: list[dict] = field(default_factory=list)
    rows_read: int = 0
    imported: int = 0  # runs
    events: int = 0  # events (champion changes, rollbacks, breaker resets) from JSONL journals
    skipped: Counter = field(default_factory=Counter)
    status_counts: Counter = field(default_factory=Counter)
    mapped_statuses: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    splits: list[dict] = field(default_factory=list)  # where a file started a new arena (re-baselines)
    arenas: dict = field(default_factory=dict)  # file name -> the arenas its rows went to
    artifact_files: int = 0  # files of the imported runs' runs/<id>/ folders copied into the archive
    dry_run: bool = False
    legacy_keys: dict = field(default_factory=dict)  # import key -> the key an older import gave that row

    def to_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "rows_read": self.rows_read,
            "imported": self.imported,
            "events": self.events,
            "skipped": dict(self.skipped),
            "status_counts": dict(self.status_counts),
            "mapped_statuses": dict(self.mapped_statuses),
            "files": self.files,
            "arenas": self.arenas,
            "splits": self.splits,
            "artifact_files": self.artifact_files,
            "warnings": self.warnings,
        }


def _key(name: str, line: int, raw: str, summary: ImportSummary) -> str:
    """A row's import key: its file name and exact text (noting in ``summary`` the key older imports gave it,
    which also held its line number)."""
    key = hashlib.sha256(f"{name}\0{raw}".encode()).hexdigest()
    summary.legacy_keys[key] = hashlib.sha256(f"{name}\0{line}\0{raw}".encode()).hexdigest()
    return key


def _run_id(key: str, commit: str | None) -> str:
    tail = re.sub(r"[^A-Za-z0-9]", "", commit or "")[:7] or "nocommit"
    return f"imp-{key[:10]}-{tail}"


def tsv_record(row: dict, path: Path, family: str | None, branch: str | None, now: str,
               summary: ImportSummary) -> dict:
    """A ledger record for one results.tsv row (see module docstring for the mapping)."""
    raw_status = str(row.get("status") or "")
    status, _ = map_status(raw_status)
    key = _key(path.name, row["line"], row["raw"]["line"], summary)
    where = f"{path.name} line {row['line']}"
    ran = status != "crash" and not never_ran(raw_status)  # upstream writes 0.000000 for a crash's val_bpb
    val = _measured(row, "val_bpb", where, summary, ran)
    memory = _measured(row, "memory_gb", where, summary, ran)
    description = _capped(str(row.get("description") or "").strip(), where, summary) or "(no description)"
    raw_fields = {name: _capped(value, where, summary, quiet=True) for name, value in row["raw"]["fields"].items()}
    commit = row.get("commit") or None
    return _not_run({
        "schema_version": SCHEMA_VERSION,
        "record_type": "run",
        "run_id": _run_id(key, commit),
        "timestamp_utc": row_time(row.get("extra") or {}, now),
        "imported_utc": now,
        "branch": branch,
        "commit": commit if is_commit(commit) else None,
        "parent_commit": None,
        "family": family,
        "status": status,
        "original_status": _capped(raw_status, where, summary) if raw_status.lower() != status else None,
        "mode": "explore",
        "description": description,
        "hypothesis": None,
        "tags": [],
        "notes": None,
        "metrics": {"val_bpb": val, "memory_gb": memory},
        "error": _noted_cause(status, raw_status, description, row, where, summary),
        "artifacts": {},
        "code_fingerprint": None,
        "change_signature": changes.merge_changes([], changes.text_changes(description)),
        "source": f"import:{path.name}",
        "import": {"file": path.name, "line": row["line"], "key": key, "raw": raw_fields,
                   "extra": {k: _capped(v, where, summary, quiet=True) for k, v in (row.get("extra") or {}).items()}},
        "import_key": key,
        "novelty_guard": None,
        "decision_packet": None,
    }, raw_status)


# What a measurement can be: no real run has a val_bpb outside (0, 100), or a negative memory.
_METRIC_RANGE: dict[str, Callable[[float], bool]] = {"val_bpb": is_val_bpb,
                                                     "memory_gb": lambda v: 0 <= v < MAX_METRIC}


def _measured(row: dict, name: str, where: str, summary: ImportSummary, ran: bool) -> float | None:
    """A metric cell as a number in its range, else None; on a run that completed, a number out of range or
    not finite ("-0.5", "nan", "1e999") is one warning, as a cell that is no number at all already is
    (``results_tsv``)."""
    return _metric_value(name, row.get(name), str(row["raw"]["fields"].get(name) or "").strip(), where,
                         summary, ran)


def _metric_value(name: str, value: object, text: str, where: str, summary: ImportSummary,
                  ran: bool) -> float | None:
    number = finite_float(value)
    if number is not None and _METRIC_RANGE[name](number):
        return number
    if ran and text and _is_float(text):
        summary.warnings.append(f"{where}: {name} {text[:40]!r} is not a measurement; imported without a value")
    return None


def _lifted_metrics(out: dict, where: str, summary: ImportSummary) -> None:
    """Another tool's run line with ``val_bpb`` / ``memory_gb`` at the top level rather than under ``metrics``:
    they move there (a kept run with its value is a measured run), checked as a results.tsv cell is."""
    metrics = dict(out["metrics"]) if isinstance(out.get("metrics"), dict) else {}
    ran = out.get("status") != "crash" and out.get("role") != "not_run"
    for name in _METRIC_RANGE:
        if name in out and metrics.get(name) is None:
            raw = out.pop(name)
            text = str(raw).strip() if isinstance(raw, (int, float, str)) and not isinstance(raw, bool) else ""
            if raw is not None and not _is_float(text):
                summary.warnings.append(f"{where}: {name} {str(raw)[:40]!r} is not a number; imported without it")
            metrics[name] = _metric_value(name, raw, text, where, summary, ran)
    if metrics:
        out["metrics"] = metrics


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _noted_cause(status: str, raw_status: str, description: str, row: dict, where: str,
                 summary: ImportSummary) -> dict | None:
    """The error of a crash row whose description states only its idea while its status word
    (``harness_abort``, ``infra_error``) or another text column (``notes``: "infrastructure sync failure")
    blames the environment: an ``infra`` crash, no evidence against the idea, as if the description had said
    so (evidence/crashes.py). None for any other row."""
    if status != "crash" or described_kind(description):
        return None
    for said in (re.sub(r"[_-]+", " ", raw_status), other_text(row)):
        if described_kind(said) == "infra":
            return {"summary": _capped(said, where, summary, quiet=True), "source": "import", "kind": "infra"}
    return None


TIME_COLUMNS = ("timestamp_utc", "timestamp", "datetime", "time", "date", "started", "created_at")
_EPOCH = re.compile(r"\d{9,10}(?:\.\d+)?")


def row_time(extra: dict, now: str) -> str | None:
    """When a results.tsv row ran, from a time column some agents add (:data:`TIME_COLUMNS`, by header name):
    ISO-8601 (an offset is honoured, none means UTC) or Unix seconds, as a UTC stamp; None when the row has
    none, it does not parse, or it is not before the import (a clock that ran ahead is no evidence of when)."""
    cells = {name.strip().lower(): value for name, value in extra.items()}
    text = next((cells[name].strip() for name in TIME_COLUMNS if str(cells.get(name) or "").strip()), "")
    try:
        if _EPOCH.fullmatch(text):
            moment = datetime.fromtimestamp(float(text), timezone.utc)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00")) if 10 <= len(text) <= 40 else None
    except (ValueError, OverflowError, OSError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    if moment.year < 2000 or moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ") > now:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _capped(text: str, where: str, summary: ImportSummary, quiet: bool = False) -> str:
    """``text`` cut to :data:`MAX_TEXT` characters (with a warning unless ``quiet``)."""
    if len(text) <= MAX_TEXT:
        return text
    if not quiet:
        summary.warnings.append(f"{where}: a field of {len(text)} characters was cut to {MAX_TEXT}")
    return text[:MAX_TEXT]


def jsonl_records(path: Path, text: str, family: str | None, branch: str | None, now: str,
                  summary: ImportSummary) -> list[dict]:
    """Records from a MemoryLab (fork) JSONL journal; lines that are no valid record are reported and skipped.

    A line that already passes the schema (a MemoryLab export or journal) is kept as it is: its run
    or event id, source and everything else, so an export round-trips exactly; only a metric another tool
    wrote at the top level (``val_bpb``, ``memory_gb``) moves under ``metrics``, where every view reads it.
    Other run lines are repaired where that is safe (status words mapped, a missing run id derived from the line, family
    and branch filled in) and then must pass the schema; what still does not is skipped with a warning.
    """
    out, objects = [], 0
    for line_no, line in enumerate(text_lines(text), 1):
        if not line.strip():
            continue
        summary.rows_read += 1
        rec = _json_object(line)
        if rec is None:
            _skip(summary, "malformed", f"{path.name} line {line_no}: not a JSON object")
            continue
        objects += 1
        if rec.get("record_type") != "event" and any(name in rec for name in _METRIC_RANGE):
            _lifted_metrics(rec, f"{path.name} line {line_no}", summary)  # valid or not: a value belongs in metrics
        if record_problem(rec, len(line)) is not None and rec.get("record_type") != "event":
            rec = _repaired(rec, _key(path.name, line_no, line, summary), path, family, branch, now, summary,
                            f"{path.name} line {line_no}")
        problem = record_problem(rec)
        if problem is not None:
            _skip(summary, "invalid", f"{path.name} line {line_no}: {problem}")
            continue
        out.append(rec)
    if not objects:
        raise MemoryLabError(f"cannot import {path}: it holds no JSON objects")
    return out


def _json_object(line: str) -> dict | None:
    try:
        rec = json.loads(line, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None
    return _with_error_kind(as_written(rec)) if isinstance(rec, dict) else None


def _with_error_kind(rec: dict) -> dict:
    """A crash's error ``kind`` read from its text when the writer (the fork) recorded none: the same
    words ``log`` reads (``classify_error``), so an imported shape error is a bug, an OOM fundamental."""
    error = rec.get("error")
    if isinstance(error, dict) and "kind" not in error and (kind := stated_kind(error)):
        error["kind"] = kind
    return rec


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _repaired(rec: dict, key: str, path: Path, family: str | None, branch: str | None, now: str,
              summary: ImportSummary, where: str) -> dict:
    """A fork's (or another tool's) run record brought to the schema where that is safe (the schema judges
    the result)."""
    status, _ = map_status(str(rec.get("status") or ""))
    out = _not_run({**rec, "status": status, "import_key": key, "source": f"import:{path.name}"},
                   str(rec.get("status") or ""))
    _lifted_metrics(out, where, summary)
    out.setdefault("schema_version", SCHEMA_VERSION)
    out.setdefault("imported_utc", now)
    if not is_safe_run_id(out.get("run_id")):
        commit = out.get("commit") if isinstance(out.get("commit"), str) else None
        out["run_id"] = _run_id(key, commit)
    if isinstance(out.get("categories"), list):  # another tool's vocabulary: the views count only ours
        out["categories"] = [c for c in out["categories"] if c in CATEGORIES]
    if family and not out.get("family"):
        out["family"] = family
    if branch and not out.get("branch"):
        out["branch"] = branch
    return out


def _skip(summary: ImportSummary, why: str, warning: str) -> None:
    summary.skipped[why] += 1
    summary.warnings.append(f"{warning}; row skipped")


# Magic numbers of formats people pass by mistake: refused before anything is parsed.
_MAGIC = ((b"\x1f\x8b", "gzip-compressed data"), (b"PK\x03\x04", "a zip archive"), (b"\x7fELF", "an ELF binary"),
          (b"BZh", "bzip2-compressed data"), (b"\xfd7zXZ\x00", "xz-compressed data"),
          (b"\x28\xb5\x2f\xfd", "zstd-compressed data"), (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
          (b"%PDF", "a PDF document"), (b"SQLite format 3\x00", "an SQLite database"))
_MAX_CONTROL_SHARE = 0.01  # text has tabs and newlines, not other control characters


def source_text(path: Path) -> tuple[str, list[str]]:
    """The text of an import source, or a one-line :class:`MemoryLabError` when it is not text."""
    if not path.is_file():
        raise MemoryLabError(f"cannot import {path}: not a file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MemoryLabError(f"cannot import {path}: {exc.strerror or exc}") from None
    for magic, what in _MAGIC:
        if raw.startswith(magic):
            raise MemoryLabError(f"cannot import {path}: it is {what}, not a results.tsv or JSONL text file")
    if b"\x00" in raw:
        raise MemoryLabError(f"cannot import {path}: it holds NUL bytes (binary data, not text)")
    text, warnings = decode_text(raw, path.name)
    odd = text.count("\ufffd") + sum(1 for ch in text if ch < " " and ch not in "\t\n\r\f")
    if odd > _MAX_CONTROL_SHARE * max(len(text), 1):
        raise MemoryLabError(f"cannot import {path}: it is binary data (invalid UTF-8 or control bytes), not text")
    return text, warnings


def _is_jsonl(path: Path, text: str) -> bool:
    return path.suffix.lower() in (".jsonl", ".ndjson") or text.lstrip()[:1] == "{"


def read_source(path: Path, family: str | None, branch: str | None, now: str,
                summary: ImportSummary) -> list[dict]:
    """Candidate records of one file: JSONL (by extension, or a first ``{``) or results.tsv."""
    text, warnings = source_text(path)
    summary.warnings += warnings
    if _is_jsonl(path, text):
        return jsonl_records(path, text, family, branch, now, summary)
    lines = text_lines(text)
    if not has_header(lines):
        raise MemoryLabError(f"cannot import {path}: no results.tsv header (commit, val_bpb, memory_gb, status, "
                             "description) on its first line, and not JSONL")
    rows, warnings = parse_results_lines(lines)
    dropped = sum(1 for w in warnings if w.endswith(SKIPPED_ROW))
    summary.warnings += [f"{path.name}: {w}" for w in warnings]
    if dropped:
        summary.skipped["malformed"] += dropped
    summary.rows_read += len(rows) + dropped
    return [tsv_record(row, path, family, branch, now, summary) for row in _once(rows, path.name, summary)]


def _once(rows: list[dict], name: str, summary: ImportSummary) -> list[dict]:
    """The rows of one results.tsv with exact repeats (same commit, val_bpb and description, and the same
    cells in any column beyond upstream's five: one run logged twice) left out, one warning each
    (``skipped.duplicate``): a repeat is no replicate. Rows that differ in a column of their own (an
    experiment id, a timestamp) are separate runs, even when a ledger without commits gives two crashes
    one description."""
    seen: dict[tuple, int] = {}
    out = []
    for row in rows:
        key = tuple(str(row.get(name) or "").strip() for name in ("commit", "val_bpb", "description")) + \
            tuple(sorted((str(k), str(v).strip()) for k, v in (row.get("extra") or {}).items()))
        first = seen.setdefault(key, row["line"])
        if first != row["line"]:
            _skip(summary, "duplicate", f"{name} line {row['line']} repeats line {first} (same commit, val_bpb and "
                                        "description: one run logged twice, imported once)")
            continue
        out.append(row)
    return out


def assign_arenas(records: list[dict], path: Path, family: str | None, split: str, rows: Sequence[int],
                  summary: ImportSummary) -> None:
    """Give one file's run records without an arena theirs: the file's arena, split at re-baselines.

    ``split``: ``auto`` (at each re-baseline row, see evidence/arenas.py), ``none``, or ``rows`` (at the
    given 0-based rows). The first row of each arena is its baseline. Records with an arena keep it.
    """
    runs = [r for r in records if r.get("record_type") != "event" and not r.get("arena")]
    if not runs:
        return
    base = import_base(family, path.name)
    splits = split_points([(str(r.get("status")), finite_float((r.get("metrics") or {}).get("val_bpb")),
                            str(r.get("description") or "")) for r in runs], base, split, rows)
    starts = {0} | {sp.row for sp in splits}
    for i, (record, arena) in enumerate(zip(runs, arenas_by_row(len(runs), base, splits), strict=True)):
        record["arena"] = arena
        if i in starts and not record.get("role") and not record.get("replicate_of"):
            record["role"] = "baseline"
    summary.arenas[path.name] = list(dict.fromkeys(r["arena"] for r in runs))
    summary.splits += [{"file": path.name, "row": sp.row + 1, "arena": sp.arena, "description": sp.description}
                       for sp in splits]


def import_files(store: Store, history: JournalIndex, paths: list[Path], family: str | None = None,
                 branch: str | None = None, dry_run: bool = False, split: str = "auto",
                 split_rows: Sequence[int] = ()) -> ImportSummary:
    """Import ``paths`` into ``store`` (everything or nothing per call; idempotent).

    A source that is not text in a known format refuses the whole call before anything is written.
    Already present (by import key, run id or event id) is skipped, so importing twice adds nothing.
    Each file's rows form their own arena, split at re-baselines (:func:`assign_arenas`); ``split_rows``
    are 1-based data rows (``import --split-at``).
    """
    summary = ImportSummary(dry_run=dry_run)
    names = Counter(path.name for path in paths)
    if any(n > 1 for n in names.values()):
        raise MemoryLabError(f"two files are named {next(n for n, c in names.items() if c > 1)}: an imported file is "
                             "known by its name (its arena, and which rows are already imported), so two machines' "
                             "ledgers need two names: cp gpu1/results.tsv gpu1-results.tsv")
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    candidates, archive = [], {}
    for path in paths:
        records = read_source(path, family, branch, now, summary)
        assign_arenas(records, path, family, split, [r - 1 for r in split_rows], summary)
        candidates += records
        archive.update(source_archive(path, records))
        summary.files.append({"path": str(path), "rows": len(records)})
    if not dry_run:
        store.ensure()
    with store.lock(shared=dry_run):  # a dry run writes nothing: not even a lock file where no store is yet
        history.refresh(locked=not dry_run)
        fresh = _fresh(candidates, history, summary)
        summary.imported = sum(1 for rec in fresh if rec.get("record_type") != "event")
        files = {str(rec["run_id"]): archive[rec["run_id"]] for rec in fresh if rec.get("run_id") in archive}
        summary.artifact_files = sum(len(named) for named in files.values())
        if fresh and not dry_run:
            store.append_many_locked(fresh, files if not store.is_file else None)
            if store.is_file:
                write_derived("the run archive", lambda: write_archive(store, files),
                              f"{summary.imported} imported runs are recorded")
            history.refresh(locked=True)
            store.write_registry(history.snapshot, "the import is recorded")
    return summary


def source_archive(path: Path, records: list[dict]) -> dict[str, dict[str, bytes]]:
    """run id → {file name → bytes} of a JSONL journal's runs that have a ``runs/<run_id>/`` folder
    beside it (a MemoryLab or fork store read from its ``experiments.jsonl``); {} for a results.tsv."""
    if not _is_jsonl(path, "") or not records:
        return {}
    source = Store(path.parent, path.parent)
    found = {}
    for rec in records:
        run_id = rec.get("run_id")
        if rec.get("record_type") != "event" and is_safe_run_id(run_id):
            files = archived_files(source, run_id)
            if files:
                found[run_id] = files
    return found


def _fresh(candidates: list[dict], history: JournalIndex, summary: ImportSummary) -> list[dict]:
    """The candidates not in the store yet, in file order; counts them by status."""
    runs_in = [rec for rec in candidates if rec.get("record_type") != "event"]
    wanted = [k for r in runs_in if isinstance(k := r.get("import_key"), str) and k]
    older = [summary.legacy_keys[k] for k in wanted if k in summary.legacy_keys]
    keys, runs = history.stored_imports([*wanted, *older], (str(r["run_id"]) for r in runs_in))
    stored_ids, seen = set(runs), {}  # seen: run id -> content of the row this call imported under it
    events = {e.event_id for e in history.events}
    fresh = []
    for rec in candidates:
        if rec.get("record_type") == "event":
            if rec["event_id"] in events:
                summary.skipped["already_imported"] += 1
                continue
            events.add(rec["event_id"])
            summary.events += 1
        else:
            key = rec.get("import_key") or None
            legacy = summary.legacy_keys.get(key) if key else None
            if key and (key in keys or (legacy is not None and legacy in keys)):
                summary.skipped["already_imported"] += 1
                continue
            content = key or hashlib.sha256(json.dumps(rec, sort_keys=True, default=str).encode()).hexdigest()
            if rec["run_id"] in runs:
                if rec["run_id"] in stored_ids or seen.get(rec["run_id"]) == content:  # the same run again
                    summary.skipped["already_imported"] += 1
                    continue
                # another run under an id this call already used: kept under an id of its own, never dropped
                renamed = _run_id(content, rec.get("commit"))
                summary.warnings.append(f"run id {rec['run_id']} is used by two different rows; the later one is "
                                        f"imported as {renamed}")
                rec = {**rec, "run_id": renamed}
            if key:
                keys.add(key)
            runs.add(rec["run_id"])
            seen[rec["run_id"]] = content
            status = "not run" if rec.get("role") == "not_run" else rec["status"]
            summary.status_counts[status] += 1
            if rec.get("original_status"):
                summary.mapped_statuses[f"{rec['original_status']} -> {status}"] += 1
        fresh.append(rec)
    return fresh
