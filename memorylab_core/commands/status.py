"""``memorylab status``: a one-screen health dashboard; ``--reset-breaker`` records an operator reset."""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

from ..evidence.crashes import stated_crash_kind
from ..evidence.roles import account_line
from ..ledger.model import event_record, plural
from ..ledger.store import MemoryLabError, warn
from ..policy.estimates import history_headline
from ..policy.verdict import history_standing, noise_alert, standing_phrase
from ..render.report import early_abort_view, window_runs
from ..research.health import RESET_EVENT, alerts, half_open, is_busy
from ..research.memory import ResearchState, curve_loader, load_state
from ..research.progress import phase_of, velocity_phrase
from .common import Context, add_arena_flag, add_json_flag

TONIGHT_HOURS = 16.0  # "tonight" for the early abort's figures: the report's default window


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status", help="health dashboard: counts, champion, streaks, breaker, alerts",
        description="One screen: run counts and keep rate, champion, last run, crash streak, experiments since "
                    "the last keep and improvement, circuit breaker, plateau, memory and alerts. "
                    "--reset-breaker --reason TEXT records an operator reset of the crash-streak breaker.")
    p.add_argument("--reset-breaker", action="store_true",
                   help="record a breaker_reset event: crashes before it stop counting (needs --reason)")
    p.add_argument("--reason", help="why the breaker is reset (recorded in the ledger)")
    add_arena_flag(p)
    add_json_flag(p)
    p.set_defaults(handler=run)


def reset_event(state: ResearchState, reason: str, now: datetime) -> dict:
    """The ledger event recording an operator's breaker reset."""
    info = state.timeline.breaker()
    return event_record({
        "record_type": "event", "event_type": RESET_EVENT, "reason": reason, "arena": state.arena,
        "breaker_before": {"state": info["state"], "streak": info["streak"],
                           "first_crash_run_id": info["first_crash_run_id"]},
    }, now)


def status_data(ctx: Context, state: ResearchState, now: float) -> dict:
    """Everything the dashboard shows."""
    tl = state.timeline
    last = tl.recent[-1] if tl.recent else None
    improvement = tl.last_improvement
    hours = None
    if improvement and improvement.get("ts") is not None:
        hours = round(max(0.0, now - improvement["ts"]) / 3600, 2)
    verdict = history_standing(ctx.history, state.arena)
    return {
        "arena": state.arena, **tl.account.to_dict(), "verdict": verdict,
        "headline": history_headline(ctx.history, state.arena),
        "champion": _brief(tl.champion),
        "last_run": None if last is None else _last_run(last.run),
        "crash_streak": tl.crash_streak, "experiments_since_last_keep": tl.since_keep,
        "hours_since_last_improvement": hours, "plateau": tl.plateau(),
        "breaker": {**(breaker := tl.breaker()), "half_open": half_open(breaker, now)},
        "velocity": (velocity := state.velocity.view(state.arena)), "phase": phase_of(tl, velocity),
        "memory": tl.memory, "corrupt_lines": state.corrupt_lines,
        "alerts": alerts(tl, curve_loader(ctx.store), noise_alert(verdict, state.arena), now),
        "early_abort": early_abort_view(ctx.history, state.arena, window_runs(
            ctx.history, state.arena, TONIGHT_HOURS, datetime.fromtimestamp(now, timezone.utc))),
    }


def _brief(run) -> dict | None:
    if run is None:
        return None
    return {"run_id": run.run_id, "commit": run.commit, "val_bpb": run.val_bpb, "description": run.description,
            "timestamp_utc": run.timestamp}


def run(ctx: Context) -> int:
    args = ctx.args
    if args.reason is not None and not args.reset_breaker:
        raise MemoryLabError("--reason goes with --reset-breaker")
    state = load_state(ctx.store, history=ctx.history, arena=ctx.arena)
    reset = None
    if args.reset_breaker:
        if not (args.reason or "").strip():
            raise MemoryLabError("--reset-breaker needs --reason TEXT (it is recorded in the ledger)")
        if not state.timeline.breaker()["streak"]:  # a scripted reset must not grow the ledger for nothing
            warn("the breaker is closed and counts no crash: nothing to reset, nothing recorded")
        else:
            reset = reset_event(state, args.reason.strip(), datetime.now(timezone.utc))
            ctx.store.ensure()
            ctx.store.append(reset)
            state = load_state(ctx.store, history=ctx.history, arena=ctx.arena)
    data = status_data(ctx, state, time.time())
    data["reset"] = reset
    ctx.emit(render(data), data)
    return 0


def _val(value: float | None) -> str:
    return "—" if value is None else f"{value:.6f}"


def _commit(commit: str | None) -> str:
    """``abc1234  `` (the short commit and a gap), nothing when unknown."""
    return f"commit {commit[:7]}  " if commit else ""


def _one(text: str | None, width: int = 60) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _breaker_state(br: dict) -> str:
    """``closed``, ``warning``, ``open`` (with when the probe may go) or ``half-open`` (one probe allowed)."""
    probe = br.get("probe")
    if br.get("half_open"):
        return "half-open: one probe run allowed"
    if br["state"] == "open" and probe and probe["probe_after_utc"]:
        return (f"open (one probe run from {probe['probe_after_utc']}, "
                f"cool-down {probe['cooldown_seconds'] / 60:.0f} min)")
    return br["state"]


def _last_run(run) -> dict:
    """The newest run's line: its brief, status and gain, and (a run stopped early has no val_bpb) where it was
    stopped and the training time that saved."""
    stop = run.extra.get("early_abort") or {}
    stopped = stop.get("action") == "stopped"
    return {**_brief(run), "status": run.shown_status, "gain": (run.extra.get("verdict") or {}).get("gain"),
            "crash_kind": stated_crash_kind(run.error_kind, run.error_summary, run.description)
            if run.status == "crash" else None,
            "stopped_early": {"progress": stop.get("progress"),
                              "saved_training_seconds": stop.get("saved_training_seconds")} if stopped else None}


def render(data: dict) -> str:
    """The one-screen terminal dashboard."""
    champ, last = data["champion"], data["last_run"]
    roles = ", ".join(f"{n} {role}" for role, n in sorted(data["roles"].items()))
    lines = [f"MemoryLab status — arena {data['arena']}"]
    lines += [f"!! {a['message']}" for a in data["alerts"] if is_busy(a)]  # a busy machine leads
    lines += [account_line(data),
             f"runs       {plural(data['runs'], 'run')} of every role" + (f" ({roles})" if roles else "")]
    if data.get("reset"):
        before = data["reset"]["breaker_before"]
        lines.append(f"breaker reset recorded ({before['state']}, {plural(before['streak'], 'crash', 'crashes')} "
                     "before it)")
    verdict = data.get("verdict")
    lines.append(data["headline"])  # "champion X: confirmed / unconfirmed ..." (every view's words)
    if champ and verdict:
        lines.append(f"           {_commit(champ['commit'])}{_one(champ['description'])}")
        lines.append(f"           {standing_phrase(verdict)}")
    if last:
        gain = "" if last["gain"] is None else f" (gain {last['gain']:+.6f} over the reference)"
        stop = last.get("stopped_early")
        outcome = _val(last["val_bpb"]) if not stop else \
            f"(stopped early at {stop['progress']:.0%} of its budget, {stop['saved_training_seconds']:.0f} s saved)"
        if last["status"] == "crash":  # a crash has no val_bpb: say what it died of, never a bare dash
            outcome = f"({last['crash_kind'] or 'cause unknown'})"
        lines.append(f"last run   {last['status']} {outcome}{gain}  {_commit(last['commit'])}"
                     f"{_one(last['description'])}")
    plateau = data["plateau"]
    hours = data["hours_since_last_improvement"]
    lines.append(f"streaks    crash streak {data['crash_streak']} · "
                 f"{plural(data['experiments_since_last_keep'], 'experiment')} (ideas) since the last keep · "
                 f"{plateau['experiments_since_improvement']} since the last improvement"
                 + ("" if hours is None else f" ({hours:.1f} h)"))
    br = data["breaker"]
    lines.append(f"breaker    {_breaker_state(br)} ({plural(br['streak'], 'crash', 'crashes')} counted; warns at "
                 f"{br['warn_at']}, opens at {br['open_at']} crashes in a row)")
    rate_h = plateau["improvement_per_hour"]
    if plateau["improvement_in_window"] is not None:
        lines.append(f"progress   {plateau['improvement_in_window']:.4f} bpb over the last {plateau['window_runs']} "
                     "runs" + ("" if rate_h is None else f" · {rate_h:.4f} bpb/h"))
    abort = data["early_abort"]
    lines.append(f"early abort {abort['phrase'] or 'no run stopped'} (last {TONIGHT_HOURS:g} h)"
                 + (f"; audit (all time): {abort['audit_phrase']}" if abort["audit_phrase"] else ""))
    lines.append(data["phase"]["line"])
    lines.append(velocity_phrase(data["velocity"]))
    mem = data["memory"]
    if mem:
        lines.append(f"memory     last peak {mem['memory_gb']:.1f} GB = {100 * mem['fraction']:.0f}% of the device "
                     f"({mem['device_memory_mb'] / 1024:.1f} GB)")
    if data["corrupt_lines"]:
        lines.append(f"ledger     {data['corrupt_lines']} corrupt lines skipped")
    lines.append("alerts     " + ("none" if not data["alerts"] else f"{len(data['alerts'])}"))
    lines += [f"  [{a['severity']}] {a['id']}: {_one(a['message'], 100)}" for a in data["alerts"]]
    return "\n".join(lines)
