"""Bring existing history in: upstream ``results.tsv`` files and MemoryLab-fork JSONL ledgers.

Import is idempotent: every row gets an ``import_key`` = sha256 of (file name, line number, raw row
text); a row whose key is already in the ledger is skipped. Rows are appended in file order, so an
imported ledger keeps its original timeline. Odd statuses are kept verbatim in ``original_status``
and mapped to the nearest of keep/discard/crash; ``0.000000`` val_bpb on a crash becomes null.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..ledger.history import History
from ..ledger.model import SCHEMA_VERSION, STATUSES, finite_float
from ..ledger.store import MemoryLabError, Store, atomic_write_json, is_safe_run_id
from ..novelty import changes
from .results_tsv import SKIPPED_ROW, read_results_tsv

# Upstream agents write many words for three outcomes. Order matters: first match wins.
_STATUS_WORDS = (
    ("crash", r"crash\w*|error\w*|fail\w*|oom|timeout|timed[ _-]?out|nan|diverg\w*|broken|exception"),
    ("keep", r"keep|kept|accept\w*|improv\w*|best|baseline|new[ _-]?best|advance\w*|promot\w*|success\w*"),
    ("discard", r"discard\w*|revert\w*|reject\w*|worse|no[ _-]?gain|drop\w*|skip\w*|neutral|regress\w*"),
)


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
    imported: int = 0
    skipped: Counter = field(default_factory=Counter)
    status_counts: Counter = field(default_factory=Counter)
    mapped_statuses: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False

    def to_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "rows_read": self.rows_read,
            "imported": self.imported,
            "skipped": dict(self.skipped),
            "status_counts": dict(self.status_counts),
            "mapped_statuses": dict(self.mapped_statuses),
            "files": self.files,
            "warnings": self.warnings,
        }


def _key(name: str, line: int, raw: str) -> str:
    return hashlib.sha256(f"{name}\0{line}\0{raw}".encode()).hexdigest()


def _run_id(key: str, commit: str | None) -> str:
    tail = re.sub(r"[^A-Za-z0-9]", "", commit or "")[:7] or "nocommit"
    return f"imp-{key[:10]}-{tail}"


def tsv_record(row: dict, path: Path, family: str | None, branch: str | None, now: str) -> dict:
    """A ledger record for one results.tsv row (see module docstring for the mapping)."""
    raw_status = str(row.get("status") or "")
    status, _ = map_status(raw_status)
    val = finite_float(row.get("val_bpb"))
    if status == "crash" or (val is not None and val <= 0):
        val = None  # upstream writes 0.000000 for crashes; no real run has val_bpb <= 0
    key = _key(path.name, row["line"], row["raw"]["line"])
    description = str(row.get("description") or "").strip() or "(no description)"
    return {
        "schema_version": SCHEMA_VERSION,
        "record_type": "run",
        "run_id": _run_id(key, row.get("commit")),
        "timestamp_utc": None,
        "imported_utc": now,
        "branch": branch,
        "commit": row.get("commit") or None,
        "parent_commit": None,
        "family": family,
        "status": status,
        "original_status": raw_status if raw_status.lower() != status else None,
        "mode": "explore",
        "description": description,
        "hypothesis": None,
        "tags": [],
        "notes": None,
        "metrics": {"val_bpb": val, "memory_gb": finite_float(row.get("memory_gb"))},
        "error": None,
        "artifacts": {},
        "code_fingerprint": None,
        "change_signature": changes.merge_changes([], changes.text_changes(description)),
        "source": f"import:{path.name}",
        "import": {"file": path.name, "line": row["line"], "key": key, "raw": row["raw"]["fields"],
                   "extra": row.get("extra") or {}},
        "import_key": key,
        "novelty_guard": None,
        "decision_packet": None,
    }


def jsonl_records(path: Path, family: str | None, branch: str | None, now: str,
                  summary: ImportSummary) -> list[dict]:
    """Records from a MemoryLab (fork) JSONL ledger; unreadable lines are reported and skipped."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            summary.rows_read += 1
            try:
                rec = json.loads(line)
            except ValueError:
                summary.skipped["malformed"] += 1
                summary.warnings.append(f"{path.name} line {line_no}: not valid JSON, skipped")
                continue
            if not isinstance(rec, dict):
                summary.skipped["malformed"] += 1
                continue
            key = _key(path.name, line_no, line.rstrip("\n"))
            status, _ = map_status(str(rec.get("status") or ""))
            rec = {**rec, "status": status, "import_key": key, "source": f"import:{path.name}"}
            rec.setdefault("schema_version", SCHEMA_VERSION)
            rec.setdefault("imported_utc", now)
            if not is_safe_run_id(str(rec.get("run_id") or "")):
                rec["run_id"] = _run_id(key, rec.get("commit"))
            if family and not rec.get("family"):
                rec["family"] = family
            if branch and not rec.get("branch"):
                rec["branch"] = branch
            out.append(rec)
    return out


def read_source(path: Path, family: str | None, branch: str | None, now: str,
                summary: ImportSummary) -> list[dict]:
    """Candidate records of one file (TSV or JSONL by extension/content)."""
    if not path.is_file():
        raise MemoryLabError(f"cannot import {path}: not a file")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return jsonl_records(path, family, branch, now, summary)
    rows, warnings = read_results_tsv(path)
    dropped = sum(1 for w in warnings if w.endswith(SKIPPED_ROW))
    summary.warnings += [f"{path.name}: {w}" for w in warnings]
    if dropped:
        summary.skipped["malformed"] += dropped
    summary.rows_read += len(rows) + dropped
    return [tsv_record(row, path, family, branch, now) for row in rows]


def import_files(store: Store, history: History, paths: list[Path], family: str | None = None,
                 branch: str | None = None, dry_run: bool = False) -> ImportSummary:
    """Import ``paths`` into ``store`` (everything or nothing per call; idempotent)."""
    summary = ImportSummary(dry_run=dry_run)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    candidates = []
    for path in paths:
        before = len(candidates)
        candidates += read_source(path, family, branch, now, summary)
        summary.files.append({"path": str(path), "rows": len(candidates) - before})
    if not dry_run:
        store.ensure()
    with store.lock():
        history.refresh(locked=True)
        seen = {r.extra.get("import_key") for r in history.runs if r.extra.get("import_key")}
        taken = history.run_ids()
        fresh = []
        for rec in candidates:
            if rec["import_key"] in seen:
                summary.skipped["already_imported"] += 1
                continue
            seen.add(rec["import_key"])
            while rec["run_id"] in taken:
                rec["run_id"] += "x"
            taken.add(rec["run_id"])
            fresh.append(rec)
            summary.status_counts[rec["status"]] += 1
            if rec.get("original_status"):
                summary.mapped_statuses[f"{rec['original_status']} -> {rec['status']}"] += 1
        summary.imported = len(fresh)
        if fresh and not dry_run:
            store.append_many_locked(fresh)
            history.refresh(locked=True)
            atomic_write_json(store.registry_path, history.snapshot())
    return summary
