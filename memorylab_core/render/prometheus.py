"""Prometheus text exposition (format 0.0.4) of the ledger's headline numbers.

Written for node_exporter's textfile collector (``export --format prometheus --output FILE``, an
atomic rename) or any scraper. Names follow Prometheus conventions: a ``memorylab_`` prefix, base
units (seconds, bytes), ``_total`` for counters. A metric without a value yet (no champion on an
empty ledger) is left out rather than exported as NaN.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..ledger.model import Event, Run
from ..policy.registry import champion
from ..research.health import BREAKER_STATES, crash_streak, runs_since_last_keep

_GB = 1024**3


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _family(name: str, kind: str, help_text: str, samples: list[tuple[dict, float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        label_text = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels.items())
        lines.append(f"{name}{{{label_text}}} {_number(value)}" if label_text else f"{name} {_number(value)}")
    return lines


def _last(runs: Sequence[Run], predicate) -> Run | None:
    return next((r for r in reversed(runs) if predicate(r)), None)


def _health_families(breaker: dict | None, alerts: Sequence[dict] | None, plateau: dict | None) -> list[str]:
    """Breaker state (a state set: one sample per state, 1 for the current one), alerts, plateau."""
    if breaker is None:
        return []
    state = breaker["state"]
    out = _family("memorylab_breaker_state", "gauge",
                  "Crash-streak circuit breaker: 1 for the current state (closed, warning, open), else 0.",
                  [({"state": s}, int(s == state)) for s in BREAKER_STATES])
    if alerts is not None:
        by_severity = {s: sum(1 for a in alerts if a["severity"] == s) for s in ("critical", "warning", "info")}
        out += _family("memorylab_alerts", "gauge", "Active health alerts (one per cause) by severity.",
                       [({"severity": s}, n) for s, n in by_severity.items()])
    if plateau is not None:
        out += _family("memorylab_experiments_since_last_improvement", "gauge",
                       "Experiments since the champion-at-the-time last improved.",
                       [({}, plateau["experiments_since_improvement"])])
    return out


def exposition(runs: Sequence[Run], corrupt_lines: int = 0, now: float | None = None, events: Sequence[Event] = (),
               alerts: Sequence[dict] | None = None, plateau: dict | None = None, breaker: dict | None = None) -> str:
    """The metrics document. ``alerts`` (health.alerts), ``plateau`` (Timeline.plateau) and ``breaker``
    (Timeline.breaker) are optional."""
    now = time.time() if now is None else now
    counts = {s: 0 for s in ("keep", "discard", "crash")}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    champ = champion(runs, events)
    last_measured = _last(runs, lambda r: r.val_bpb is not None)
    last_mem = _last(runs, lambda r: r.memory_gb is not None)
    out: list[str] = []
    out += _family("memorylab_runs_total", "counter", "Runs in the ledger by status.",
                   [({"status": s}, n) for s, n in sorted(counts.items())])
    out += _family("memorylab_crash_streak", "gauge", "Consecutive crashed runs at the end of the ledger.",
                   [({}, crash_streak(runs))])
    out += _family("memorylab_experiments_since_last_keep", "gauge",
                   "Runs logged since the last kept run (all runs when none was kept).",
                   [({}, runs_since_last_keep(runs))])
    out += _family("memorylab_ledger_corrupt_lines", "gauge", "Ledger lines skipped as unreadable.",
                   [({}, corrupt_lines)])
    out += _health_families(breaker, alerts, plateau)
    if runs:
        out += _family("memorylab_keep_rate", "gauge", "Fraction of runs that were kept.",
                       [({}, counts["keep"] / len(runs))])
        if runs[-1].ts is not None:
            out += _family("memorylab_last_run_timestamp_seconds", "gauge", "Unix time of the last logged run.",
                           [({}, runs[-1].ts)])
    if champ is not None:
        out += _family("memorylab_best_val_bpb", "gauge", "val_bpb of the champion (lowest kept run).",
                       [({"run_id": champ.run_id}, champ.val_bpb)])
        if champ.ts is not None:
            out += _family("memorylab_seconds_since_last_improvement", "gauge",
                           "Seconds since the champion run was logged.", [({}, max(0.0, now - champ.ts))])
    if last_measured is not None:
        out += _family("memorylab_last_val_bpb", "gauge", "val_bpb of the latest run that measured one.",
                       [({"run_id": last_measured.run_id, "status": last_measured.status}, last_measured.val_bpb)])
    if last_mem is not None:
        out += _family("memorylab_last_peak_memory_bytes", "gauge", "Peak accelerator memory of the latest run.",
                       [({"run_id": last_mem.run_id}, round(last_mem.memory_gb * _GB))])
    return "\n".join(out) + "\n"
