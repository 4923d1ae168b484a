"""Helpers for research-memory tests: ledger-like runs and events built in memory (no store, no git)."""

from __future__ import annotations

from memorylab_core.index.records import run_from_record
from memorylab_core.ledger.model import Event, Run, event_from_record

T0 = 1_763_000_000.0  # a fixed epoch second: tests never depend on the wall clock


def stamp(ts: float) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_run(i: int, status: str, val: float | None = None, description: str = "tweak", *,
             tags: tuple[str, ...] = (), signature: tuple[dict, ...] = (), categories: tuple[str, ...] | None = None,
             error_kind: str | None = None, error: str | None = None, ts: float | None = None,
             memory_gb: float | None = None, device_memory_mb: float | None = None, commit: str | None = None) -> Run:
    """One folded run at ledger position ``i`` (offset 100·i, so events can be placed between runs)."""
    metrics = {"val_bpb": val if status != "crash" else None, "memory_gb": memory_gb}
    if device_memory_mb is not None:
        metrics["device_memory_mb"] = device_memory_mb
    record = {
        "run_id": f"run{i:05d}", "status": status, "description": description, "tags": list(tags),
        "metrics": metrics, "change_signature": list(signature),
        "timestamp_utc": stamp(ts if ts is not None else T0 + 300 * i),
        "commit": commit or f"{i:07d}abc",
    }
    if categories is not None:
        record["categories"] = list(categories)
    if status == "crash":
        record["error"] = {"summary": error or f"{error_kind or 'runtime'} failure", "kind": error_kind}
    return run_from_record(record, i, 100 * i)


def make_event(after_run: int, event_type: str = "breaker_reset", reason: str = "fixed") -> Event:
    """An event placed just after run ``after_run`` in ledger order."""
    record = {"record_type": "event", "event_type": event_type, "event_id": f"evt{after_run}", "reason": reason,
              "timestamp_utc": stamp(T0 + 300 * after_run + 1)}
    return event_from_record(record, 0, 100 * after_run + 50)


def sig(name: str, direction: str, old=None, new=None) -> dict:
    return {"name": name, "old": old, "new": new, "direction": direction, "source": "diff"}
