"""Ledger exports: JSONL (the records), CSV (flat columns), TSV (upstream results.tsv), Prometheus.

Every format is derived from the folded history plus, where whole records are needed, the ledger
lines they point at. The TSV export reproduces upstream's ``results.tsv`` byte for byte for native
runs; imported rows come back exactly as they were read (their original five fields are kept).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence

from ..ledger.model import Run, memory_gb_of, shown_status
from ..ledger.store import TSV_HEADER

CSV_COLUMNS = (
    "run_id", "timestamp_utc", "status", "val_bpb", "memory_gb", "commit", "branch", "family", "tags",
    "description", "hypothesis", "novelty", "next_action", "error_kind", "error_summary", "source",
)


def tsv_field(text: str) -> str:
    """A description made safe for one TSV field: tabs, newlines and other line breaks → spaces."""
    return " ".join(str(text).replace("\t", " ").splitlines()).strip()


def _fmt_or(value: float | None, digits: int, fallback: str) -> str:
    return fallback if value is None else f"{value:.{digits}f}"


def tsv_row(record: dict) -> str:
    """Upstream's results.tsv row (commit, val_bpb, memory_gb, status, description) for one record."""
    raw = (record.get("import") or {}).get("raw")
    if isinstance(raw, dict) and all(k in raw for k in ("commit", "val_bpb", "memory_gb", "status")):
        fields = [raw["commit"], raw["val_bpb"], raw["memory_gb"], raw["status"], raw.get("description", "")]
        return "\t".join(tsv_field(f) for f in fields) + "\n"
    metrics = record.get("metrics") or {}
    crashed = record.get("status") == "crash"
    val = metrics.get("val_bpb") if isinstance(metrics.get("val_bpb"), (int, float)) else None
    mem = memory_gb_of(metrics)  # the fork stores peak_vram_mb alone
    val_text = "0.000000" if crashed else _fmt_or(val, 6, "0.000000")
    mem_text = "0.0" if crashed else _fmt_or(mem, 1, "0.0")
    commit = (record.get("commit") or "0000000")[:7]
    status = shown_status(record.get("status"), record.get("role"))
    return f"{commit}\t{val_text}\t{mem_text}\t{status}\t{tsv_field(record.get('description', ''))}\n"


def export_tsv(records: Iterable[dict]) -> str:
    return TSV_HEADER + "".join(tsv_row(r) for r in records)


def export_jsonl(records: Iterable[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)


def _csv_values(run: Run) -> list:
    return [
        run.run_id, run.timestamp or "", run.shown_status, "" if run.val_bpb is None else f"{run.val_bpb:.6f}",
        "" if run.memory_gb is None else f"{run.memory_gb:.3f}", run.commit or "", run.branch or "",
        run.family or "", ",".join(run.tags), run.description, run.hypothesis or "", run.novelty_class or "",
        run.next_action or "", run.error_kind or "", run.error_summary or "", run.source,
    ]


def export_csv(runs: Sequence[Run]) -> str:
    """RFC 4180 CSV (quoted where needed, so commas, quotes and newlines in text survive)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for run in runs:
        writer.writerow(_csv_values(run))
    return buffer.getvalue()
