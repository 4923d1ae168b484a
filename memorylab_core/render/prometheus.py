"""Prometheus text exposition (format 0.0.4) of the ledger's headline numbers.

Written for node_exporter's textfile collector (``export --format prometheus --output FILE``, an
atomic rename) or any scraper. Names follow Prometheus conventions: a ``memorylab_`` prefix, base
units (seconds, bytes), ``_total`` for counters. A metric without a value yet (no champion on an
empty ledger) is left out rather than exported as NaN.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..evidence.roles import Account
from ..ledger.model import Event, Run
from ..policy.registry import champion
from ..research.health import BREAKER_STATES, crash_streak, half_open, ideas_since_last_keep

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


Sample = tuple[str, str, str, dict, float]  # (metric name, type, help, labels, value)


def _health_samples(breaker: dict | None, alerts: Sequence[dict] | None, plateau: dict | None,
                    now: float) -> list[Sample]:
    """Breaker state (a state set: one sample per state, 1 for the current one), alerts, plateau."""
    if breaker is None:
        return []
    state = "half_open" if half_open(breaker, now) else breaker["state"]
    out = [("memorylab_breaker_state", "gauge",
            "Crash-streak circuit breaker: 1 for the current state (closed, warning, open, half_open: an open "
            "breaker whose cool-down passed lets one probe run through), else 0.",
            {"state": s}, int(s == state)) for s in (*BREAKER_STATES, "half_open")]
    if alerts is not None:
        by_severity = {s: sum(1 for a in alerts if a["severity"] == s) for s in ("critical", "warning", "info")}
        out += [("memorylab_alerts", "gauge", "Active health alerts (one per cause) by severity.",
                 {"severity": s}, n) for s, n in by_severity.items()]
    if plateau is not None:
        out.append(("memorylab_experiments_since_last_improvement", "gauge",
                    "Experiments since the champion-at-the-time last improved.", {},
                    plateau["experiments_since_improvement"]))
    return out


def _velocity_samples(velocity: dict | None) -> list[Sample]:
    """Improvement velocity (research.progress) by window and basis; a rate not measurable yet is left out."""
    out: list[Sample] = []
    for window in ("recent", "history"):
        span = (velocity or {}).get(window)
        for basis in ("champion", "tip"):
            rates = span[basis] if span else {}
            for key, name, unit in (("per_gpu_hour", "memorylab_velocity_val_bpb_per_gpu_hour", "GPU-hour"),
                                    ("per_experiment", "memorylab_velocity_val_bpb_per_experiment", "experiment")):
                if rates.get(key) is not None:
                    out.append((name, "gauge", f"val_bpb gained per {unit} (window: recent ideas or since the "
                                "baseline; basis: confirmed champion or latest kept run).",
                                {"window": window, "basis": basis}, rates[key]))
    return out


def _run_samples(runs: Sequence[Run], events: Sequence[Event], now: float) -> list[Sample]:
    """Counts, streaks, keep rate, champion and latest measurements of one arena's runs."""
    account = Account()
    for run in runs:
        account.add(run)
    out: list[Sample] = [("memorylab_runs_total", "counter", "Runs by status (not_run: imported, never ran).",
                          {"status": s}, n) for s, n in sorted(account.statuses.items())]
    out.append(("memorylab_crash_streak", "gauge", "Consecutive crashed runs at the end of the arena's runs.", {},
                crash_streak(runs)))
    out.append(("memorylab_experiments_since_last_keep", "gauge",
                "Experiments (ideas) logged since the last kept run (every idea when none was kept).", {},
                ideas_since_last_keep(runs)))
    if account.keep_rate is not None:
        out.append(("memorylab_keep_rate", "gauge", "Fraction of experiments (ideas) that were kept (the account "
                    "status and the report show).", {}, account.keep_rate))
    if runs and runs[-1].ts is not None:
        out.append(("memorylab_last_run_timestamp_seconds", "gauge", "Unix time of the last logged run.", {},
                    runs[-1].ts))
    return out + _champion_samples(runs, events, now)


def _champion_samples(runs: Sequence[Run], events: Sequence[Event], now: float) -> list[Sample]:
    out: list[Sample] = []
    champ = champion(runs, events)
    last_measured = _last(runs, lambda r: r.val_bpb is not None)
    last_mem = _last(runs, lambda r: r.memory_gb is not None)
    if champ is not None:
        out.append(("memorylab_best_val_bpb", "gauge", "val_bpb of the champion (lowest kept run).",
                    {"run_id": champ.run_id}, champ.val_bpb))
        if champ.ts is not None:
            out.append(("memorylab_seconds_since_last_improvement", "gauge",
                        "Seconds since the champion run was logged.", {}, max(0.0, now - champ.ts)))
    if last_measured is not None:
        out.append(("memorylab_last_val_bpb", "gauge", "val_bpb of the latest run that measured one.",
                    {"run_id": last_measured.run_id, "status": last_measured.status}, last_measured.val_bpb))
    if last_mem is not None:
        out.append(("memorylab_last_peak_memory_bytes", "gauge", "Peak accelerator memory of the latest run.",
                    {"run_id": last_mem.run_id}, round(last_mem.memory_gb * _GB)))
    return out


def _render(samples: Sequence[Sample]) -> str:
    """Samples grouped into metric families (HELP and TYPE once per name, in first-seen order)."""
    families: dict[str, tuple[str, str, list[tuple[dict, float]]]] = {}
    for name, kind, help_text, labels, value in samples:
        families.setdefault(name, (kind, help_text, []))[2].append((labels, value))
    out: list[str] = []
    for name, (kind, help_text, items) in families.items():
        out += _family(name, kind, help_text, items)
    return "\n".join(out) + "\n"


def arena_samples(runs: Sequence[Run], events: Sequence[Event] = (), now: float | None = None,
                  alerts: Sequence[dict] | None = None, plateau: dict | None = None, breaker: dict | None = None,
                  arena: str | None = None, velocity: dict | None = None) -> list[Sample]:
    """One arena's samples, each labelled ``arena`` when given (arenas are never pooled into one number)."""
    now = time.time() if now is None else now
    samples = _run_samples(runs, events, now) + _health_samples(breaker, alerts, plateau, now)
    samples += _velocity_samples(velocity)
    if arena is None:
        return samples
    return [(name, kind, text, {"arena": arena, **labels}, value) for name, kind, text, labels, value in samples]


def exposition(runs: Sequence[Run], corrupt_lines: int = 0, now: float | None = None, events: Sequence[Event] = (),
               alerts: Sequence[dict] | None = None, plateau: dict | None = None, breaker: dict | None = None,
               arena: str | None = None, velocity: dict | None = None) -> str:
    """The metrics document of one set of runs. ``alerts`` (health.alerts), ``plateau`` (Timeline.plateau),
    ``breaker`` (Timeline.breaker) and ``velocity`` (Velocity.view) are optional."""
    return exposition_of([arena_samples(runs, events, now, alerts, plateau, breaker, arena, velocity)], corrupt_lines)


def exposition_of(per_arena: Sequence[Sequence[Sample]], corrupt_lines: int = 0) -> str:
    """The metrics document of several arenas' samples (each labelled with its arena)."""
    corrupt: Sample = ("memorylab_ledger_corrupt_lines", "gauge", "Ledger lines skipped as unreadable.", {},
                       corrupt_lines)
    return _render([s for samples in per_arena for s in samples] + [corrupt])
