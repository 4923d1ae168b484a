"""Health of an unattended loop: circuit breaker, plateau, anomaly detectors, alerts.

Everything is counted in experiments (not hours) and derived from the ledger: the crash-streak
breaker is recomputed from runs and recorded ``breaker_reset`` events, so a restart cannot lose
its state; :class:`Timeline` is the incremental fold behind ``status``; alerts carry ids keyed by
their cause (the run that started it), so one cause is one alert however many commands or runs see it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..evidence.roles import Account, is_experiment
from ..ledger.model import Event, Run, plural
from ..policy.registry import CHAMPION_EVENT, code_key, takes_over


def crash_streak(runs: Sequence[Run]) -> int:
    """Consecutive crashes at the end of the ledger."""
    streak = 0
    for run in reversed(runs):
        if run.status != "crash":
            break
        streak += 1
    return streak


def is_keep_of_idea(run: Run) -> bool:
    """A kept run that ends a "since the last keep" count: a kept idea or baseline, not a replicate."""
    return run.status == "keep" and not run.replicate_of and run.role != "replicate"


KEEP_OF_IDEA_SQL = "status = 'keep' AND replicate_of IS NULL AND role != 'replicate'"  # the same, on index rows


def ideas_since_last_keep(runs: Sequence[Run]) -> int:
    """Experiments (ideas) logged after the last kept run (every idea when nothing was kept)."""
    count = 0
    for run in reversed(runs):
        if is_keep_of_idea(run):
            return count
        count += is_experiment(run)
    return count


# -- circuit breaker (counted in experiments, derived from the ledger) ------------------------------

BREAKER_WARN = 3  # consecutive crashes: check warns and names the last good commit
BREAKER_OPEN = 5  # consecutive crashes: check blocks (exit 2 under --fail-on-similar) until a success or reset
BREAKER_STATES = ("closed", "warning", "open")
RESET_EVENT = "breaker_reset"
PROBE_COOLDOWN_S = 600.0  # after the breaker opens, one probe run is let through after this cool-down ...
PROBE_BACKOFF = 2.0  # ... multiplied by this for each failed probe (a crash while open) ...
PROBE_COOLDOWN_MAX_S = 8 * 3600.0  # ... up to this


def breaker_state(streak: int) -> str:
    """closed below BREAKER_WARN crashes in a row, warning from it, open from BREAKER_OPEN."""
    if streak >= BREAKER_OPEN:
        return "open"
    return "warning" if streak >= BREAKER_WARN else "closed"


@dataclass
class Breaker:
    """THE circuit breaker: crashes in a row since the last run that did not crash or the last
    recorded ``breaker_reset``, folded from the journal (so a restart cannot lose it)."""

    streak: int = 0
    first_crash: str | None = None
    last_reset: dict | None = None
    last_crash_ts: float | None = None  # when the latest crash of the streak was logged (the probe's clock)
    last_good: Run | None = None  # the latest kept idea or baseline: what a reset goes back to
    rolled_back_to: dict | None = None  # a champion rollback since then (commit, run_id): the reset target instead

    def add_run(self, run: Run) -> None:
        if run.status == "crash":
            self.streak += 1
            self.first_crash = self.first_crash or run.run_id
            self.last_crash_ts = run.ts if run.ts is not None else self.last_crash_ts
        else:
            self.streak, self.first_crash, self.last_crash_ts = 0, None, None
        if is_keep_of_idea(run):
            self.last_good, self.rolled_back_to = run, None

    def add_event(self, event: Event) -> None:
        if event.event_type == RESET_EVENT:
            self.reset(event)
        elif event.event_type == CHAMPION_EVENT and event.data.get("source") == "rollback":
            self.rolled_back_to = {"commit": event.data.get("commit"), "run_id": event.data.get("run_id")}

    def reset(self, event: Event) -> None:
        self.streak, self.first_crash, self.last_crash_ts = 0, None, None
        self.last_reset = _event_brief(event)

    def info(self) -> dict:
        good = self.rolled_back_to or {"commit": self.last_good.commit if self.last_good else None,
                                       "run_id": self.last_good.run_id if self.last_good else None}
        info = breaker_info(self.streak, self.first_crash, good, self.last_reset)
        info["probe"] = probe_schedule(self.streak, self.last_crash_ts)
        return info


def load_breaker(history, arena: str) -> Breaker:
    """The arena's breaker as of everything ``history`` (a ledger JournalIndex) holds: a small fold of its
    own in the index, so ``check`` need not decode the whole research memory to show it."""
    from .folds import load_fold  # the stored-fold machinery needs the index; the Breaker class does not

    return load_fold(history, "breaker", arena, Breaker, (Breaker, Run), start=_breaker_start)


def _breaker_start(history, arena: str) -> int:
    """A fresh breaker needs no run before the arena's latest kept idea or baseline: that run sets
    ``last_good`` and ends any streak, and what came before it cannot show through."""
    row = history.db.execute(f"SELECT max(idx) FROM runs WHERE arena = ? AND {KEEP_OF_IDEA_SQL}", (arena,)).fetchone()
    return row[0] or 0


def probe_schedule(streak: int, last_crash_ts: float | None) -> dict | None:
    """The half-open probe of an open breaker: the cool-down (seconds) and when one probe run may go.

    Each crash after the one that opened the breaker is a failed probe and multiplies the cool-down by
    PROBE_BACKOFF (capped at PROBE_COOLDOWN_MAX_S). None while the breaker is not open; ``probe_after_ts``
    is None when the crash has no timestamp (then only a success or a reset closes the breaker).
    """
    if streak < BREAKER_OPEN:
        return None
    failed = streak - BREAKER_OPEN
    cooldown = min(PROBE_COOLDOWN_S * PROBE_BACKOFF ** failed, PROBE_COOLDOWN_MAX_S)
    after = None if last_crash_ts is None else last_crash_ts + cooldown
    return {"failed_probes": failed, "cooldown_seconds": cooldown, "probe_after_ts": after,
            "probe_after_utc": None if after is None else _utc(after)}


def _utc(ts: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def half_open(info: dict, now: float) -> bool:
    """Whether an open breaker lets one probe run through now (its cool-down has passed)."""
    probe = info.get("probe")
    return (info["state"] == "open" and probe is not None and probe["probe_after_ts"] is not None
            and now >= probe["probe_after_ts"])


def breaker_info(streak: int, first_crash: str | None, good: dict, reset: dict | None) -> dict:
    """The breaker document shared by ``check``, ``status`` and the Prometheus export. ``good``: the commit and
    run id a reset goes back to (the latest kept idea, or the champion a later rollback chose)."""
    return {"state": breaker_state(streak), "streak": streak, "warn_at": BREAKER_WARN, "open_at": BREAKER_OPEN,
            "first_crash_run_id": first_crash, "last_good_commit": good.get("commit"),
            "last_good_run_id": good.get("run_id"), "last_reset": reset}


def breaker_message(info: dict, now: float | None = None) -> str | None:
    """One line for a warning or open breaker (None when closed); the reset target comes first.

    With ``now``, an open breaker whose probe cool-down has passed reads HALF-OPEN (one probe allowed)."""
    if info["state"] == "closed":
        return None
    target = info["last_good_commit"]
    reset_to = f"git reset --hard {target[:12]} (last good commit)" if target else "no kept run to reset to"
    if info["state"] == "warning":
        return f"circuit breaker WARNING after {info['streak']} crashes in a row: {reset_to}, then fix the cause"
    probe = info.get("probe") or {}
    if now is not None and half_open(info, now):
        return (f"circuit breaker HALF-OPEN after {info['streak']} crashes in a row: one probe run is allowed "
                f"({reset_to}, fix the cause first); if it crashes the next cool-down is "
                f"{min(probe['cooldown_seconds'] * PROBE_BACKOFF, PROBE_COOLDOWN_MAX_S) / 60:.0f} min")
    when = (f"; one probe run is allowed from {probe['probe_after_utc']} (cool-down "
            f"{probe['cooldown_seconds'] / 60:.0f} min)" if probe.get("probe_after_utc") else "")
    return (f"circuit breaker OPEN after {info['streak']} crashes in a row: {reset_to}; runs are blocked until one "
            f"succeeds or the operator runs 'memorylab status --reset-breaker --reason TEXT'{when}")


def _event_brief(event: Event | None) -> dict | None:
    if event is None:
        return None
    return {"event_id": event.event_id, "timestamp_utc": event.timestamp, "reason": event.data.get("reason")}


# -- the timeline fold: counts, streaks, plateau, episodes ------------------------------------------

PLATEAU_RUNS = 15  # experiments without an improvement before the loop counts as on a plateau
PLATEAU_WINDOW = 20  # experiments over which the improvement rate is measured
RECENT_RUNS = 20
CLUSTER_MIN = 3  # crashes of one kind ...
CLUSTER_GAP = 10  # ... each within this many experiments of the previous one form a cluster
MEMORY_NEAR_FRACTION = 0.9  # peak memory at this fraction of the device's capacity
CREEP_RISES = 3  # kept runs in a row, each with a higher peak memory than the keep before it
DRIFT_WORSENINGS = 4  # idea runs in a row, each with a worse val_bpb than the idea before it


@dataclass
class Timeline:
    """Run counts, champion, streaks, plateau and anomaly episodes, folded run by run."""

    runs: int = 0
    account: Account = field(default_factory=Account)  # the counts every view shows (evidence/roles.py)
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT_RUNS))  # the latest outcomes
    champion: Run | None = None
    since_keep: int = 0
    crash_streak: int = 0
    breaker_fold: Breaker = field(default_factory=Breaker)
    last_improvement: dict | None = None  # {position, run_id, timestamp_utc, ts, val_bpb}
    reference: float | None = None  # champion-at-the-time (since the last re-baseline)
    epoch_start: int = 0
    window: deque = field(default_factory=lambda: deque(maxlen=PLATEAU_WINDOW + 1))
    clusters: dict = field(default_factory=dict)  # error kind -> {start, start_position, count, last}
    memory: dict | None = None  # the latest run with a known memory fraction
    memory_episode: str | None = None  # first run of the current near-capacity streak
    baseline_memory: dict | None = None  # {run_id, memory_gb} of the epoch's kept baseline
    creep: dict | None = None  # rising peak memory over consecutive kept runs: {start, start_gb, last, last_gb, rises}
    drift: dict | None = None  # worsening val_bpb over consecutive ideas: {start, start_val, last, last_val, worse}

    def add(self, outcome) -> None:
        """Fold one run's outcome (``outcome.ref_after`` is the reference after it)."""
        run, position = outcome.run, outcome.position
        self.runs += 1
        self.account.add(run)
        tried = self.account.tried  # the plateau counts experiments, not replicates, baselines or starved runs
        self.recent.append(outcome)
        self._streaks(run)
        if takes_over(run, self.champion):
            self.champion = run
        if outcome.new_epoch:
            self.epoch_start = tried
        if outcome.improved:
            self.last_improvement = {"position": position, "ideas": tried, "run_id": run.run_id,
                                     "timestamp_utc": run.timestamp, "ts": run.ts, "val_bpb": run.val_bpb}
        self.reference = outcome.ref_after
        self.window.append((tried, run.ts, outcome.ref_after))
        if run.status == "crash":
            self._cluster(run.error_kind or "unknown", run, position)
        self._memory(run, position)
        self._creep(run, outcome.new_epoch)
        self._drift(run)

    def _creep(self, run: Run, new_epoch: bool) -> None:
        """Peak memory of consecutive kept runs (those that measured it): a chain while it keeps rising."""
        if not is_keep_of_idea(run) or run.memory_gb is None:
            return
        if new_epoch:
            self.baseline_memory = {"run_id": run.run_id, "memory_gb": run.memory_gb}
        chain = self.creep
        if chain is not None and not new_epoch and run.memory_gb > chain["last_gb"]:
            chain.update(last=run.run_id, last_gb=run.memory_gb, rises=chain["rises"] + 1)
        else:
            self.creep = {"start": run.run_id, "start_gb": run.memory_gb, "last": run.run_id,
                          "last_gb": run.memory_gb, "rises": 0}

    def _drift(self, run: Run) -> None:
        """val_bpb of consecutive measured idea runs: a chain while each is worse than the one before."""
        if not is_experiment(run) or run.val_bpb is None:
            return
        chain = self.drift
        if chain is not None and run.val_bpb > chain["last_val"]:
            chain.update(last=run.run_id, last_val=run.val_bpb, worse=chain["worse"] + 1)
        else:
            self.drift = {"start": run.run_id, "start_val": run.val_bpb, "last": run.run_id,
                          "last_val": run.val_bpb, "worse": 0}

    def _streaks(self, run: Run) -> None:
        self.crash_streak = self.crash_streak + 1 if run.status == "crash" else 0
        self.breaker_fold.add_run(run)
        if is_keep_of_idea(run):
            self.since_keep = 0
        elif is_experiment(run):
            self.since_keep += 1

    def champion_event(self, run: Run) -> None:
        """A recorded ``champion_change`` (promotion, rollback) designated ``run``: it is champion and reference.

        The caller resolves the event with the registry's rule (``policy.registry.designated``: only a
        candidate is ever designated); a later kept run with a lower val_bpb still takes over (``add``).
        """
        self.champion = run
        self.reference = run.val_bpb

    def _cluster(self, kind: str, run: Run, position: int) -> None:
        chain = self.clusters.get(kind)
        if chain is None or position - chain["last"] > CLUSTER_GAP:
            chain = self.clusters[kind] = {"start": run.run_id, "start_position": position, "count": 0}
        chain["count"] += 1
        chain["last"] = position

    def _memory(self, run: Run, position: int) -> None:
        capacity = run.extra.get("device_memory_mb")
        if run.memory_gb is None or not capacity:
            return
        fraction = run.memory_gb * 1024 / capacity
        self.memory = {"run_id": run.run_id, "position": position, "memory_gb": run.memory_gb,
                       "device_memory_mb": capacity, "fraction": round(fraction, 4)}
        near = fraction >= MEMORY_NEAR_FRACTION
        self.memory_episode = (self.memory_episode or run.run_id) if near else None

    # -- views ----------------------------------------------------------------------------------
    def breaker(self) -> dict:
        return self.breaker_fold.info()

    def plateau(self) -> dict:
        """Experiments (ideas) since the last improvement, and the improvement rate over the last window."""
        last = self.last_improvement
        tried = self.account.tried
        since = tried - last["ideas"] if last else tried
        points = [p for p in self.window if p[0] >= self.epoch_start and p[2] is not None]
        gained = per_hour = per_experiment = None
        if len(points) >= 2:
            (p0, t0, r0), (p1, t1, r1) = points[0], points[-1]
            gained = round(r0 - r1, 6)
            per_experiment = round(gained / (p1 - p0), 8) if p1 > p0 else None
            if t0 is not None and t1 is not None and t1 - t0 >= 180:
                per_hour = round(gained / ((t1 - t0) / 3600), 6)
        return {"experiments_since_improvement": since, "on_plateau": since >= PLATEAU_RUNS and self.runs > 0,
                "plateau_runs": PLATEAU_RUNS, "last_improvement": _strip_ts(last), "window": PLATEAU_WINDOW,
                "window_runs": len(points), "improvement_in_window": gained,
                "improvement_per_experiment": per_experiment, "improvement_per_hour": per_hour}


def _strip_ts(entry: dict | None) -> dict | None:
    return None if entry is None else {k: v for k, v in entry.items() if k != "ts"}


# -- anomaly detectors and alerts -------------------------------------------------------------------

SPIKE_WINDOW = 5  # loss points forming the baseline (their median)
SPIKE_RELATIVE = 0.05  # a spike rises this fraction ...
SPIKE_ABSOLUTE = 0.05  # ... and this many nats above the baseline
SPIKE_MIN_PROGRESS = 0.02  # ignore the first 2% of training (the loss falls steeply there)
LOSS_RUNS_CHECKED = 3  # latest runs whose archived loss curves are read
_SEVERITY = {"critical": 0, "warning": 1, "info": 2}


def loss_spikes(curve: Sequence[dict]) -> list[dict]:
    """Spikes in a sidecar loss curve: a point well above the median of the points before it.

    A point counts when progress ≥ SPIKE_MIN_PROGRESS and loss ≥ median·(1 + SPIKE_RELATIVE) and
    loss − median ≥ SPIKE_ABSOLUTE; neighbouring spike points merge into one spike (its peak).
    """
    import statistics  # one median per spike check; the module is slow to import

    points = [p for p in curve if isinstance(p, dict) and _finite(p.get("loss"))]
    spikes: list[dict] = []
    last_index = -2
    for i in range(SPIKE_WINDOW, len(points)):
        loss = float(points[i]["loss"])
        base = statistics.median(float(p["loss"]) for p in points[i - SPIKE_WINDOW:i])
        progress = points[i].get("progress")
        if _finite(progress) and float(progress) < SPIKE_MIN_PROGRESS:
            continue
        if loss >= base * (1 + SPIKE_RELATIVE) and loss - base >= SPIKE_ABSOLUTE:
            spike = {"step": points[i].get("step"), "progress": progress, "loss": loss, "baseline": round(base, 6)}
            if spikes and i == last_index + 1:
                if loss > spikes[-1]["loss"]:
                    spikes[-1] = {**spike, "baseline": spikes[-1]["baseline"]}
            else:
                spikes.append(spike)
            last_index = i
    return spikes


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _alert(alert_id: str, severity: str, message: str, **detail) -> dict:
    return {"id": alert_id, "severity": severity, "message": message, **detail}


def alerts(timeline: Timeline, curve_for: Callable[[str], list | None] | None = None,
           noise: dict | None = None, now: float | None = None) -> list[dict]:
    """Active alerts, one per cause: the id names the cause (its first run), so it never repeats.

    ``noise``: the noise alert of the arena's standing (:func:`~memorylab_core.policy.verdict.noise_alert`);
    ``now``: the clock, so an open breaker whose cool-down has passed reads half-open, as ``check`` sees it.
    """
    out = [noise] if noise else []
    info = timeline.breaker()
    if info["state"] != "closed":
        out.append(_alert(f"crash_streak:{info['first_crash_run_id']}",
                          "critical" if info["state"] == "open" else "warning", breaker_message(info, now),
                          streak=info["streak"]))
    plateau = timeline.plateau()
    if plateau["on_plateau"] and timeline.champion is not None:
        since = plateau["last_improvement"]["run_id"] if plateau["last_improvement"] else "start"
        out.append(_alert(f"plateau:{since}", "warning",
                          f"{plural(plateau['experiments_since_improvement'], 'experiment')} without an improvement: "
                          "try a larger or combined change", experiments=plateau["experiments_since_improvement"]))
    out += _cluster_alerts(timeline)
    out += _confound_alerts(timeline)
    out += _memory_alert(timeline)
    out += _creep_alert(timeline) + _drift_alert(timeline)
    if curve_for is not None:
        out += _loss_alert(timeline, curve_for)
    out.sort(key=lambda a: (_SEVERITY[a["severity"]], a["id"]))
    return out


def _cluster_alerts(timeline: Timeline) -> list[dict]:
    out = []
    for kind, chain in sorted(timeline.clusters.items()):
        if chain["count"] >= CLUSTER_MIN and timeline.runs - 1 - chain["last"] <= CLUSTER_GAP:
            out.append(_alert(f"crash_cluster:{kind}:{chain['start']}", "warning",
                              f"{chain['count']} {kind} crashes close together since {chain['start']}: "
                              "find the common cause before the next run", count=chain["count"]))
    return out


CONFOUND_RUNS_CHECKED = 5  # confounded runs among the latest few raise an alert each ...
BUSY_RUNS = 8  # ... unless most of the latest BUSY_RUNS runs (at least BUSY_MIN) were: then one busy-machine alert
BUSY_MIN = 2


def _range(values: list[float], fmt: str) -> str:
    low, high = min(values), max(values)
    return format(low, fmt) if low == high else f"{format(low, fmt)}–{format(high, fmt)}"


def busy_machine(runs: Sequence[Run], arena: str) -> dict | None:
    """One alert for a busy machine: most of the arena's latest :data:`BUSY_RUNS` runs were starved
    (confounded). It names the cause with the measured CPU shares and throughputs and says what to
    change; ``status``, ``guide`` and the report lead with it instead of one retry per run."""
    last = list(runs)[-BUSY_RUNS:]
    starved = [r for r in last if r.validity == "confounded"]
    if len(starved) < BUSY_MIN or 2 * len(starved) <= len(last):
        return None
    facts = [r.extra.get("throughput") or {} for r in starved]
    shares = [f["cpu_share"] for f in facts if isinstance(f.get("cpu_share"), (int, float))]
    rates = [f["tokens_per_sec"] for f in facts if isinstance(f.get("tokens_per_sec"), (int, float))]
    quiet = [(r.extra.get("throughput") or {}).get("tokens_per_sec") for r in last if r.validity == "valid"]
    quiet = [q for q in quiet if isinstance(q, (int, float))]
    measured = []
    if shares:
        measured.append(f"CPU share {_range(shares, '.2f')} of the training threads' capacity (floor 0.60)")
    if rates:
        measured.append(f"{_range(rates, ',.0f')} tok/s" + (f" vs {_range(quiet, ',.0f')} tok/s in this window's "
                                                            "valid runs" if quiet else ""))
    cause = "; ".join(measured) or "; ".join(starved[-1].extra.get("confound") or []) or "starved training"
    return _alert(f"busy_machine:{arena}:{starved[0].run_id}", "critical",
                  f"busy machine: {len(starved)} of the last {plural(len(last), 'run')} were starved ({cause}). "
                  "They measured the load, not the ideas: nothing was kept and they do not enter σ. Stop or pause "
                  "the other load (uptime, top), or run when the machine is quiet; then re-run the same commit "
                  "(git stay) before trying a new idea",
                  runs=len(last), confounded=len(starved), cpu_shares=shares, tokens_per_sec=rates,
                  run_ids=[r.run_id for r in starved])


def is_busy(alert: dict) -> bool:
    """Whether an alert is the busy-machine alert (the views lead with it)."""
    return alert["id"].startswith("busy_machine:")


def _confound_alerts(timeline: Timeline) -> list[dict]:
    """A busy machine is one alert (:func:`busy_machine`); else each starved run among the latest few whose code
    no later valid run has decided (once one has, re-running the starved one would waste a run)."""
    runs = [outcome.run for outcome in timeline.recent]
    busy = busy_machine(runs, runs[-1].arena if runs else "")
    if busy is not None:
        return [busy]
    out = []
    checked = runs[-CONFOUND_RUNS_CHECKED:]
    for i, run in enumerate(checked):
        decided = any(code_key(later) == code_key(run) and later.validity != "confounded" for later in checked[i + 1:])
        if run.validity == "confounded" and not decided:
            causes = "; ".join(run.extra.get("confound") or []) or "its training was starved"
            out.append(_alert(f"confounded:{run.run_id}", "warning",
                              f"{run.run_id} is confounded ({causes}): it is no evidence; re-run it on a quiet "
                              "machine", run_id=run.run_id))
    return out


def _memory_alert(timeline: Timeline) -> list[dict]:
    mem = timeline.memory
    if not timeline.memory_episode or mem is None:
        return []
    return [_alert(f"memory_near_capacity:{timeline.memory_episode}", "warning",
                   f"peak memory {mem['memory_gb']:.1f} GB is {100 * mem['fraction']:.0f}% of the device's "
                   f"{mem['device_memory_mb'] / 1024:.1f} GB: the next size increase may OOM",
                   fraction=mem["fraction"])]


def _creep_alert(timeline: Timeline) -> list[dict]:
    """Peak memory rising over CREEP_RISES or more kept runs in a row (id: the chain's first run)."""
    chain = timeline.creep
    if chain is None or chain["rises"] < CREEP_RISES:
        return []
    base = timeline.baseline_memory
    since = ""
    growth = None
    if base and base["memory_gb"] > 0:
        growth = round(chain["last_gb"] - base["memory_gb"], 3)
        since = (f"; {growth:+.2f} GB ({100 * growth / base['memory_gb']:+.0f}%) since the baseline "
                 f"{base['run_id']}")
    return [_alert(f"memory_creep:{chain['start']}", "warning",
                   f"peak memory rose over {chain['rises'] + 1} kept runs in a row, {chain['start_gb']:.2f} GB "
                   f"({chain['start']}) to {chain['last_gb']:.2f} GB ({chain['last']}){since}: check what "
                   "each keep costs in memory before the next size increase",
                   rises=chain["rises"], start_gb=chain["start_gb"], last_gb=chain["last_gb"],
                   growth_since_baseline_gb=growth)]


def _drift_alert(timeline: Timeline) -> list[dict]:
    """val_bpb of idea runs worsening DRIFT_WORSENINGS or more times in a row (id: the chain's first run)."""
    chain = timeline.drift
    if chain is None or chain["worse"] < DRIFT_WORSENINGS:
        return []
    return [_alert(f"val_drift:{chain['start']}", "warning",
                   f"val_bpb worsened over {chain['worse'] + 1} experiments in a row, {chain['start_val']:.6f} "
                   f"({chain['start']}) to {chain['last_val']:.6f} ({chain['last']}): the search is drifting; "
                   "go back to the champion and change one thing at a time",
                   worsenings=chain["worse"], start_val_bpb=chain["start_val"], last_val_bpb=chain["last_val"])]


def _loss_alert(timeline: Timeline, curve_for: Callable[[str], list | None]) -> list[dict]:
    """Loss spikes in the trailing runs' curves; one alert for a streak of spiky runs (its first run)."""
    streak: list[tuple[str, list]] = []
    for outcome in list(timeline.recent)[-LOSS_RUNS_CHECKED:]:
        run = outcome.run
        curve = curve_for(run.run_id)
        if curve is None:
            continue
        spikes = loss_spikes(curve)
        streak = streak + [(run.run_id, spikes)] if spikes else []
    if not streak:
        return []
    first, latest = streak[0][0], streak[-1]
    top = max(latest[1], key=lambda s: s["loss"] - s["baseline"])
    return [_alert(f"loss_spike:{first}", "warning",
                   f"loss spiked to {top['loss']:.3f} (baseline {top['baseline']:.3f}) at step {top['step']} of "
                   f"{latest[0]}: lower the LR or add warmup before building on it", spikes=len(latest[1]))]
