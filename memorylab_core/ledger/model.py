"""Compact in-memory views of ledger records.

The ledger (``experiments.jsonl``) holds full records: one JSON object per line. Most commands need
only a handful of fields from every record (status, val_bpb, description, fingerprints ...), so the
history fold turns each record into a small :class:`Run` (or :class:`Event`), stored as one row of
the index (``index/db.py``). ``Run.offset`` points back at
the full record in the ledger for commands that need everything (``show``, packets, reports).
"""

from __future__ import annotations

import json
import math
import operator
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

SCHEMA_VERSION = 1

STATUSES = ("keep", "discard", "crash")
NOVELTY_CLASSES = ("novel", "known_success", "incremental_followup", "repeat_failure", "duplicate_run")
MODES = ("explore", "exploit", "replicate")
NEXT_ACTIONS = (
    "promote",
    "branch_followup",
    "replicate",
    "retry",
    "abandon",
    "fix_and_retry",
    "investigate_crash",
)
PRIORITIES = ("high", "medium", "low")
# The early abort (policy/early_abort.py): its modes, and what it did to a run (the record's early_abort.action):
# "stopped" (killed, a discard without val_bpb), "shadow" (shadow mode's would-be stop, left to finish),
# "audit" (an "on" stop left to finish, to measure false aborts)
ABORT_MODES = ("off", "shadow", "on")
ABORT_ACTIONS = ("stopped", "shadow", "audit")
# The change taxonomy (novelty/categories.py assigns them): a record's ``categories`` name only these.
CATEGORIES: tuple[str, ...] = (
    "architecture",
    "attention",
    "activation",
    "optimizer",
    "learning_rate",
    "schedule",
    "batch_size",
    "initialization",
    "regularization",
    "normalization",
    "embedding",
    "numerical",
    "simplification",
    "combination",
    "radical",
)
TRAIN_FILE = "train.py"  # the file the agent edits: fingerprinted, diffed and archived as a patch


def parse_utc(stamp: str | None) -> float | None:
    """Seconds since the epoch for an ISO-8601 UTC stamp, or None when absent or unparseable."""
    if not stamp:
        return None
    try:
        dt = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def utc_stamp(now: datetime) -> str:
    """A compact UTC stamp for names: ``20261205T010203Z`` (run ids, stamped report files)."""
    return now.strftime("%Y%m%dT%H%M%SZ")


def is_val_bpb(value: float) -> bool:
    """Whether ``value`` can be a val_bpb measurement: within the schema's (0, 100), and at least 0.000001,
    the least value results.tsv's six decimals show (below it prints as 0.000000, upstream's crash mark)."""
    return 1e-6 <= value < 100


def finite_float(value: Any) -> float | None:
    """``value`` as a finite float, or None (missing, non-numeric, NaN and inf all become None)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def memory_gb_of(metrics: dict) -> float | None:
    """A record's peak memory in GB: ``memory_gb``, else ``peak_vram_mb`` / 1024 (what train.py prints and the
    published fork stores alone); None when neither is a finite number."""
    memory_gb = finite_float(metrics.get("memory_gb"))
    if memory_gb is None:
        peak_mb = finite_float(metrics.get("peak_vram_mb"))
        memory_gb = peak_mb / 1024 if peak_mb is not None else None
    return memory_gb


def fmt_number(value: float | None, digits: int = 6, signed: bool = False, missing: str = "—") -> str:
    """A metric for people: fixed decimals (``+`` sign when ``signed``), ``missing`` for no value."""
    if value is None:
        return missing
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 run``, ``2 runs``: a count with its noun in the right number."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


GAIN_SIGN = "+ = lower val_bpb, better"  # the one sign convention of every gain/gap/moved column, and its label


def gain(value: float | None, reference: float | None) -> float | None:
    """How much better ``value`` is than ``reference`` in val_bpb: ``reference - value``, positive when lower
    (better). Every gain, gap and "moved" number a view shows is this, labelled with :data:`GAIN_SIGN`."""
    if value is None or reference is None:
        return None
    return round(reference - value, 6)


def lineage_gain(lineage: dict) -> str:
    """What a lineage (``Lineage.to_dict()``) achieved, in words: ``improved 0.0100 val_bpb over 3 kept runs``."""
    if lineage["length"] <= 1:
        return "a single kept run"
    if not lineage["improvement"] or lineage["improvement"] <= 0:
        return f"no improvement over {lineage['length']} kept runs"
    return f"improved {lineage['improvement']:.6f} val_bpb over {lineage['length']} kept runs"


# C0 controls but newline and tab, DEL, C1 controls, line/paragraph separators and bidi overrides/isolates:
# stored text holding them could move the cursor, recolour or hide output, or reorder what is shown.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def show_controls(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\u202e``): what the terminal
    and the markdown report print, so a description cannot recolour, hide or reorder what a reader sees."""
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown_status(status: object, role: object) -> str:
    """A run's status as every view shows it: ``not run`` for a row that never ran (an imported ``missing``
    row: role ``not_run``, stored as a discard without a value, evidence/roles.py), else its status."""
    return "not run" if role == "not_run" else str(status or "")


@dataclass(slots=True)
class Run:
    """One experiment run, reduced to what views need. Built by :func:`memorylab_core.index.records.run_from_record`."""

    index: int  # position among runs in ledger order (0-based); the run's timeline position
    offset: int  # byte offset of the full record in experiments.jsonl
    run_id: str
    timestamp: str | None
    ts: float | None  # epoch seconds of timestamp_utc
    status: str
    val_bpb: float | None
    memory_gb: float | None
    description: str
    tags: tuple[str, ...] = ()
    family: str | None = None
    hypothesis: str | None = None
    branch: str | None = None
    commit: str | None = None
    parent_commit: str | None = None
    code_fingerprint: str | None = None
    change_signature: tuple[dict, ...] = ()
    categories: tuple[str, ...] = ()
    error_summary: str | None = None
    error_kind: str | None = None
    novelty_class: str | None = None
    next_action: str | None = None
    source: str = "native"  # "native" (logged here) or "import:<path>"
    replicate_of: str | None = None
    seed: int | None = None
    idea_key: str | None = None  # canonical idea key (novelty.idea_key), set by the history fold
    extra: dict = field(default_factory=dict)  # small, view-specific fields (e.g. original_status)
    arena: str = "default"  # what this run is comparable with (evidence/arenas.py); also in extra["arena"]
    role: str = "idea"  # baseline, idea, replicate, rerun or import (evidence/roles.py)
    validity: str = "valid"  # valid, confounded or unknown (evidence/validity.py)

    @property
    def shown_status(self) -> str:
        """The status every view shows (:func:`shown_status`)."""
        return shown_status(self.status, self.role)

    @property
    def short_commit(self) -> str:
        return (self.commit or "")[:7]

    # The index stores a run as columns (ROW_COLUMNS, which users query) plus one JSON array of the
    # remaining fields (REST_FIELDS), so decoding a row parses only the small remainder.
    ROW_COLUMNS = ("idx", "offset", "run_id", "timestamp_utc", "ts", "status", "val_bpb", "memory_gb", "description",
                   "family", "branch", "commit_sha", "parent_commit", "code_fingerprint", "novelty_class",
                   "next_action", "source", "replicate_of", "idea_key", "arena", "role", "validity")
    REST_FIELDS = ("hypothesis", "change_signature", "error_summary", "error_kind", "seed", "extra", "tags",
                   "categories")

    def row_values(self) -> tuple:
        """The values of :data:`ROW_COLUMNS`, then the JSON text of :data:`REST_FIELDS`."""
        rest = _ROW_ENCODER.encode(_rest_values(self))
        return (*_column_values(self), rest)

    @classmethod
    def from_row(cls, row: tuple) -> Run:
        """The run stored by :meth:`row_values` (its columns in order, then the JSON remainder)."""
        (index, offset, run_id, timestamp, ts, status, val_bpb, memory_gb, description, family, branch, commit,
         parent, fingerprint, novelty_class, next_action, source, replicate_of, key, arena, role, validity,
         rest) = row
        hypothesis, signature, error_summary, error_kind, seed, extra, tags, categories = json.loads(rest)
        return cls(index, offset, run_id, timestamp, ts, status, val_bpb, memory_gb, description, tuple(tags), family,
                   hypothesis, branch, commit, parent, fingerprint, tuple(signature), tuple(categories),
                   error_summary, error_kind, novelty_class, next_action, source, replicate_of, seed, key, extra,
                   arena, role, validity)


_column_values = operator.attrgetter("index", "offset", "run_id", "timestamp", "ts", "status", "val_bpb", "memory_gb",
                                     "description", "family", "branch", "commit", "parent_commit", "code_fingerprint",
                                     "novelty_class", "next_action", "source", "replicate_of", "idea_key",
                                     "arena", "role", "validity")
_rest_values = operator.attrgetter(*Run.REST_FIELDS)
_ROW_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))  # one encoder: dumps() builds one a call


@dataclass(slots=True)
class Event:
    """A non-run ledger entry: champion change, rollback, breaker reset, ... (``record_type: event``)."""

    index: int  # position among events in ledger order
    offset: int
    event_id: str
    event_type: str
    timestamp: str | None
    ts: float | None
    data: dict
    runs_before: int = 0  # runs folded before this event: places it on the runs' timeline


def event_record(body: dict, now: datetime | None = None) -> dict:
    """A complete ledger record for an event body: schema, id, timestamp and host added.

    Every event (champion changes, rollbacks, breaker resets) gets the same envelope, so the fold
    and the views read them alike.
    """
    import uuid  # only events need it; it costs every command's start-up otherwise

    now = now or datetime.now(timezone.utc)
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": f"ev-{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}",
        "timestamp_utc": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "host": os.uname().nodename,
        **body,
    }


def event_from_record(record: dict, index: int, offset: int) -> Event:
    """Reduce an event record (``record_type == "event"``) to an :class:`Event`."""
    return Event(
        index=index,
        offset=offset,
        event_id=str(record.get("event_id") or f"event-{offset}"),
        event_type=str(record.get("event_type") or "unknown"),
        timestamp=record.get("timestamp_utc"),
        ts=parse_utc(record.get("timestamp_utc")),
        data={k: v for k, v in record.items() if k not in ("record_type", "event_id", "event_type")},
    )


def clean_tags(raw: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Tags from a comma/space separated string or a list: trimmed, lowercased, de-duplicated."""
    if raw is None:
        return ()
    parts = raw.replace(",", " ").split() if isinstance(raw, str) else [p for t in raw for p in t.split(",")]
    seen: dict[str, None] = {}
    for part in parts:
        tag = part.strip().lower()
        if tag:
            seen.setdefault(tag, None)
    return tuple(seen)
