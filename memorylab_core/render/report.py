"""The morning report: what happened in the last N hours, as data and as markdown.

:func:`report_data` gathers everything from the history (one fold); :func:`render_markdown` turns it
into the document a human skims over coffee. The HTML dashboard and ``--json`` reuse the same data.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timezone

from ..evidence.roles import Account, account_line
from ..index.journal_index import JournalIndex
from ..ledger.model import GAIN_SIGN, Run, fmt_number, gain, lineage_gain, plural, show_controls
from ..policy.decisions import queued
from ..policy.early_abort import tally
from ..policy.estimates import champion_headline, standings
from ..policy.promotion import sample_of, store_policy
from ..policy.registry import challengers, champion, confirmed_champion, run_brief
from ..policy.verdict import noise_alert, standing, standing_phrase
from ..research.health import busy_machine, is_busy
from ..research.progress import velocity_phrase
from .report_promotion import promotion_section

RECENT_ROWS = 25
QUEUE_ROWS = 15
_PRIORITY_ORDER = {"high": 0, "medium": 1, "low": 2}


def window_runs(history: JournalIndex, arena: str, since_hours: float | None, now: datetime) -> list[Run]:
    """The arena's runs logged within the last ``since_hours`` (all its runs when None), by each run's
    own timestamp: imported rows without times, wherever they sit in the journal, never hide them."""
    if since_hours is None:
        return history.arena_runs(arena)
    cutoff = now.timestamp() - since_hours * 3600
    return history.runs.where("arena = ? AND ts >= ?", (arena, cutoff))[::-1]


def early_abort_view(history: JournalIndex, arena: str, window: Sequence[Run]) -> dict:
    """What the early abort did (policy/early_abort.py): runs stopped and training time saved in the window, and
    the audit over every run of the arena (would-be stops left running, and how many finished ahead)."""
    # the literal LIKE is the partial index runs_early_abort's own WHERE, so SQLite reads only those rows
    audited = history.runs.where("""arena = ? AND data LIKE '%"early_abort"%'""", (arena,))
    window_tally, audit = tally(window), tally(audited)
    return {**window_tally.to_dict(), "phrase": window_tally.phrase(), "all_time": audit.to_dict(),
            "audit_phrase": audit.phrase() if audit.shadow or audit.audits else None}


def _queue(history: JournalIndex, window: Sequence[Run]) -> list[dict]:
    """Open decisions of the window (policy.decisions.queued): high priority first, newest first within one;
    one row per commit (its newest run's: a valid re-run of a confounded run replaces its retry).

    The packets' action and priority are folded into the index; only the rows shown are read in full
    (for their rationale)."""
    items, fixed, seen = [], set(), set()  # fixed: idea keys with a later run that did not crash
    for run in reversed(window[-500:]):
        packet = {"next_action": run.next_action, "priority": run.extra.get("priority", "low")}
        entry = queued(run, packet, bool(run.idea_key) and run.idea_key in fixed)
        if run.status != "crash" and run.idea_key and run.validity != "confounded":
            fixed.add(run.idea_key)
        key = run.commit or run.idea_key or run.run_id  # one row per commit: its newest run decides
        if key in seen:
            entry = None
        seen.add(key)
        if entry is not None:
            items.append((_PRIORITY_ORDER.get(entry[1], 3), -run.index, run, entry))
    items.sort(key=lambda item: item[:2])
    return [{"run_id": run.run_id, "next_action": action, "priority": priority,
             "rationale": _why(history.record(run).get("decision_packet")),
             "description": run.description, "index": run.index}
            for _, _, run, (action, priority) in items[:QUEUE_ROWS]]


def _why(packet: object) -> str:
    """A packet's reason: MemoryLab's ``rationale``, else the ``summary`` the fork's packets carry."""
    if not isinstance(packet, dict):
        return ""
    return str(packet.get("rationale") or packet.get("summary") or "")


def report_data(history: JournalIndex, since_hours: float | None = 16.0, now: datetime | None = None,
                arena: str | None = None) -> dict:
    """Everything the morning report shows for one arena (the current one by default), as plain data."""
    import os

    from ..evidence.arenas import current_arena

    now = now or datetime.now(timezone.utc)
    arena = arena or current_arena(history, None, os.environ)
    notable, events = history.registry.notable_in(arena), history.events_in(arena)
    window = window_runs(history, arena, since_hours, now)
    widened = None
    if not window and since_hours is not None and history.arena_count(arena):
        # an empty window over a non-empty arena (imported rows have no times, or a quiet night): show the
        # arena's whole history, saying so, rather than a report that looks empty
        widened, since_hours, window = since_hours, None, history.arena_runs(arena)
    start = window[0].index if window else len(history.runs)
    champ = champion(notable, events)
    champ_before = champion([r for r in notable if r.index < start], [e for e in events if e.runs_before <= start])
    # No champion at the window start (a first night, --all, an import): the move is measured from the arena's
    # first champion, its baseline, set in the window
    first = champ_before or confirmed_champion(notable, ())
    policy = store_policy(history.store.root)
    account = Account()
    for run in window:
        account.add(run)
    promo = standings(notable, events, policy)
    return {
        "generated_utc": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "arena": arena,
        "other_arenas": [{"arena": a, "runs": n} for a, n, _ in history.arenas() if a != arena],
        "since_hours": since_hours,
        "widened_from_hours": widened,
        "total_runs": history.arena_count(arena),
        "window_runs": len(window),
        "counts": dict(account.statuses),
        "roles": dict(account.roles),
        "experiments": account.tried,
        "keep_rate": account.keep_rate,
        "account": account.to_dict(),
        "busy_machine": busy_machine(window, arena),
        "confounded": [{"run_id": r.run_id, "causes": r.extra.get("confound") or []}
                       for r in window if r.validity == "confounded"],
        "champion": run_brief(champ),
        "verdict": standing(notable, events, policy),
        "champion_at_window_start": run_brief(champ_before),
        "champion_gain_from": run_brief(first),
        "champion_gain": gain(champ.val_bpb if champ else None, first.val_bpb if first else None),
        "new_champion_in_window": champ is not None and champ.index >= start,
        "decision_queue": _queue(history, window),
        "challengers": [_with_reference(r, notable) for r in challengers(notable, events=events)],
        "promotion": promo,
        "headline": champion_headline(promo),
        "lineages": [lin.to_dict() for lin in history.registry.lineages(arena)],
        "failure_clusters": [c.to_dict() for c in history.registry.clusters(limit=10, arena=arena)],
        "recent": [_recent_row(r, window) for r in window[-RECENT_ROWS:]][::-1],
        "corrupt_lines": len(history.corrupt),
        **_research(history, arena, standing(notable, events, policy)),
        "early_abort": early_abort_view(history, arena, window),
    }


def _research(history: JournalIndex, arena: str, verdict: dict | None) -> dict:
    """From the arena's research fold: its improvement velocity, and the alerts ``status`` raises (the breaker, a
    busy machine, crash clusters, the noise level...): the morning reader sees what stopped or slowed the loop."""
    try:
        from ..research.health import alerts
        from ..research.memory import curve_loader, load_state
    except ImportError:  # the research memory is optional to the report
        return {"velocity": None, "alerts": []}
    state = load_state(history.store, history=history, arena=arena)
    return {"velocity": state.velocity.view(arena),
            "alerts": alerts(state.timeline, curve_loader(history.store), noise_alert(verdict, arena), time.time())}


def _with_reference(run: Run, runs: Sequence[Run]) -> dict:
    """A challenger with its code's reference (the mean of its runs, as the champion's is measured): the board
    compares like with like, never one lucky run with the champion's mean."""
    sample = sample_of(run, runs)
    return {**run_brief(run), "reference_val_bpb": round(sample.mean, 6) if sample.n else run.val_bpb,
            "reference_n": sample.n or 1}


def challenger_gain(challenger: dict, data: dict) -> float | None:
    """A challenger's gain over the champion's reference (+ = better), from its own reference."""
    return gain(challenger.get("reference_val_bpb", challenger["val_bpb"]), reference_val(data))


def verdict_gain(run: Run) -> float | None:
    """The run's gain over the champion's reference as its decision packet's verdict measured it (the policy's
    number: every view shows this one, never its own difference to a single run)."""
    return (run.extra.get("verdict") or {}).get("gain")


def reference_val(data: dict) -> float | None:
    """The champion's reference val_bpb as the policy measures it (the mean of its code's runs), else its own run's
    value: what challengers are measured against."""
    verdict = data.get("verdict") or {}
    if verdict.get("reference_val_bpb") is not None:
        return verdict["reference_val_bpb"]
    return data["champion"]["val_bpb"] if data.get("champion") else None


def _recent_row(run: Run, runs: Sequence[Run]) -> dict:
    return {
        "run_id": run.run_id,
        "timestamp_utc": run.timestamp,
        "commit": run.short_commit,
        "status": run.shown_status,
        "val_bpb": run.val_bpb,
        "gain": verdict_gain(run),
        "role": run.role,
        "memory_gb": run.memory_gb,
        "description": run.description,
        "next_action": run.next_action,
        "error": run.error_summary,
    }


def md_cell(text: object) -> str:
    """Text made safe for one markdown table cell (no line breaks, pipes, raw HTML, or links a renderer would
    make live: ``[x](javascript:...)``)."""
    value = " ".join(str(text if text is not None else "").split())
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value.replace("|", "\\|").replace("`", "\\`").replace("[", "\\[").replace("]", "\\]")


def window_label(data: dict) -> str:
    """The report's window in words: ``last 16 h``, ``all time``, or, when the report widened an empty
    window to the arena's whole history (imported rows have no times), ``all time, none in the last 16 h``."""
    hours, widened = data.get("since_hours"), data.get("widened_from_hours")
    if hours is not None:
        return f"last {hours:g} h"
    return "all time" if widened is None else f"all time, none in the last {widened:g} h"


def all_arenas_data(history: JournalIndex, since_hours: float | None, now: datetime | None = None) -> dict:
    """The report of every arena, each apart (``report --arena all``)."""
    sections = [report_data(history, since_hours, now, arena) for arena, _, _ in history.arenas()]
    generated = sections[0]["generated_utc"] if sections else (now or datetime.now(timezone.utc)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    return {"generated_utc": generated, "since_hours": since_hours, "arenas": sections}


def render_markdown(data: dict) -> str:
    """The report document: one arena, or (``arenas``) every arena under its own heading, control characters
    from run text shown as escapes (``ledger.model.show_controls``)."""
    out = [f"# MemoryLab morning report — {data['generated_utc']}", ""]
    if "arenas" in data:
        for section in data["arenas"]:
            out += [f"# Arena {md_cell(section['arena'])}", ""] + _arena_sections(section)
        if not data["arenas"]:
            out += ["No runs yet.", ""]
    else:
        out += _arena_sections(data)
    return show_controls("\n".join(out).rstrip() + "\n")  # a file people `cat`: no raw control characters


def _arena_sections(data: dict) -> list[str]:
    out = _headline(data) + _champion_section(data) + promotion_section(data, md_cell) + _queue_section(data)
    out += _challenger_section(data)
    return out + _lineage_section(data) + _failure_section(data) + _recent_section(data)


def _headline(data: dict) -> list[str]:
    c = data["counts"]
    never_ran = f" · {c['not_run']} not run" if c.get("not_run") else ""
    others = data.get("other_arenas") or []
    busy = data.get("busy_machine")
    lines = [
        f"## Headline ({window_label(data)})",
        "",
        *([f"- **Busy machine:** {md_cell(busy['message'])}"] if busy else []),
        f"- **Arena:** {md_cell(data['arena'])}" + (
            f" (other arenas, reported apart with `--arena all`: "
            f"{', '.join(md_cell(o['arena']) + ' — ' + plural(o['runs'], 'run') for o in others[:5])})"
            if others else ""),
        f"- **Experiments:** {md_cell(account_line(data['account']))}",
        f"- **Runs:** {data['window_runs']} in this window ({c['keep']} keep · {c['discard']} discard · "
        f"{c['crash']} crash{never_ran}; roles: {_roles(data['roles'])}); "
        f"{plural(data['total_runs'], 'run')} in this arena",
    ]
    if data.get("velocity"):
        lines.append(f"- **Velocity:** {md_cell(velocity_phrase(data['velocity']).split(None, 1)[1])}")
    abort = data.get("early_abort") or {}
    if abort.get("phrase") or abort.get("audit_phrase"):
        lines.append(f"- **Early abort:** {md_cell(abort.get('phrase') or 'no run stopped in this window')}"
                     + (f" (audit, all time: {md_cell(abort['audit_phrase'])})" if abort.get("audit_phrase") else ""))
    for alert in data.get("alerts") or []:  # what status raises: the breaker, crash clusters, starved runs...
        if not is_busy(alert):  # a busy machine is one line, above
            lines.append(f"- **Alert ({alert['severity']}):** {md_cell(alert['message'])}")
    if data["corrupt_lines"]:
        lines.append(f"- **Warning:** {data['corrupt_lines']} corrupt ledger line(s) were skipped")
    return lines + [""]


def _roles(roles: dict) -> str:
    return ", ".join(f"{n} {role}" for role, n in sorted(roles.items())) or "none"


def _champion_section(data: dict) -> list[str]:
    champ = data["champion"]
    headline = data['headline']
    lines = ["## Champion", "", f"**{md_cell(headline[0].upper() + headline[1:])}**", ""]
    if champ is None:
        return lines
    commit = f" (commit `{md_cell(champ['commit'][:7])}`)" if champ["commit"] else ""
    lines.append(f"`{md_cell(champ['run_id'])}`{commit}: {md_cell(champ['description'])}")
    verdict = data.get("verdict")
    if verdict:
        lines += ["", f"**{standing_phrase(verdict)}** — the promotion policy judges the next run against "
                      "this reference and σ."]
    start = data["champion_at_window_start"]
    if data["new_champion_in_window"] and start is not None:
        lines.append("")
        lines.append(f"Gained {fmt_number(data['champion_gain'], signed=True)} val_bpb in this window ({GAIN_SIGN}; "
                     f"from {fmt_number(start['val_bpb'])}, `{md_cell(start['run_id'])}`).")
    elif data["new_champion_in_window"] and (first := data.get("champion_gain_from")) and \
            first["run_id"] != champ["run_id"]:
        lines.append("")
        lines.append(f"Gained {fmt_number(data['champion_gain'], signed=True)} val_bpb in this window ({GAIN_SIGN}; "
                     f"from the arena's first champion, its baseline, {fmt_number(first['val_bpb'])}, "
                     f"`{md_cell(first['run_id'])}`, set in this window too).")
    elif data["new_champion_in_window"]:
        lines.append("")
        lines.append("First champion of this arena (its baseline) was set in this window.")
    else:
        lines.append("")
        lines.append("Unchanged in this window.")
    return lines + [""]


def _queue_section(data: dict) -> list[str]:
    lines = ["## Decision queue", ""]
    if not data["decision_queue"]:
        return lines + ["Nothing waiting.", ""]
    lines += ["| priority | action | run | why |", "|---|---|---|---|"]
    for item in data["decision_queue"]:
        lines.append(f"| {item['priority']} | `{item['next_action']}` | `{md_cell(item['run_id'])}` | "
                     f"{md_cell(item['rationale'])} |")
    return lines + [""]


def _challenger_section(data: dict) -> list[str]:
    lines = ["## Challenger board", ""]
    if not data["challengers"]:
        return lines + ["No challengers yet.", ""]
    lines += [f"| # | val_bpb (its reference: mean of its code's runs) | gain vs the champion's reference "
              f"({GAIN_SIGN}) | run | description |", "|---|---|---|---|---|"]
    for rank, ch in enumerate(data["challengers"], 1):
        vs_champion = fmt_number(challenger_gain(ch, data), signed=True)
        ref = ch.get("reference_val_bpb", ch["val_bpb"])
        lines.append(f"| {rank} | {fmt_number(ref)} ({plural(ch.get('reference_n', 1), 'run')}) | {vs_champion} | "
                     f"`{md_cell(ch['run_id'])}` | {md_cell(ch['description'])} |")
    return lines + [""]


def _lineage_section(data: dict) -> list[str]:
    lines = ["## Best lineages", ""]
    if not data["lineages"]:
        return lines + ["No lineages yet.", ""]
    for lin in data["lineages"]:
        chain = " → ".join(f"{md_cell(step['commit'] or step['run_id'])} ({fmt_number(step['val_bpb'], 4)})"
                           for step in lin["chain"][-6:])
        more = f"… {lin['length'] - 6} earlier, " if lin["length"] > 6 else ""
        gain = lineage_gain(lin)
        lines.append(f"- best {fmt_number(lin['best_val_bpb'])} ({gain}): {more}{chain}")
    return lines + [""]


def _failure_section(data: dict) -> list[str]:
    lines = ["## Repeated failure clusters", ""]
    if not data["failure_clusters"]:
        return lines + ["No repeated failures: no idea has failed twice.", ""]
    lines += ["| tries | crashes | idea | latest attempt |", "|---|---|---|---|"]
    for cl in data["failure_clusters"]:
        lines.append(f"| {cl['count']} | {cl['crashes']} | {md_cell(cl['key'])} | {md_cell(cl['example'])} |")
    return lines + [""]


def _recent_section(data: dict) -> list[str]:
    lines = [f"## Recent runs ({window_label(data)}, newest first)", ""]
    if not data["recent"]:
        return lines + ["No runs in this window.", ""]
    lines += ["| time (UTC) | run | status | val_bpb | gain over the reference | mem GB | next | description |",
              "|---|---|---|---|---|---|---|---|"]
    for row in data["recent"]:
        when = (row["timestamp_utc"] or "")[:16].replace("T", " ")
        desc = row["description"] if row["status"] != "crash" else f"{row['description']} — {row['error'] or ''}"
        lines.append(f"| {md_cell(when)} | `{md_cell(row['run_id'])}` | {row['status']} | "
                     f"{fmt_number(row['val_bpb'], missing='')} | {_gain_cell(row)} | "
                     f"{fmt_number(row['memory_gb'], 1, missing='')} | "
                     f"{md_cell(row['next_action'] or '')} | {md_cell(desc)} |")
    return lines + [""]


def _gain_cell(row: dict) -> str:
    """The verdict's gain over the champion's reference, else what the run is when it has none."""
    if row.get("gain") is not None:
        return fmt_number(row["gain"], signed=True)
    return "" if row.get("role") in (None, "idea") else md_cell(row["role"])
