"""``memorylab guide``: the agent's context before it picks the next idea, within a fixed budget.

The guide is assembled from the research state (:mod:`memorylab_core.research`) into sections —
champion, alerts, plateau advice, the latest runs, what works, dead ends, near-misses to combine,
mistake cards, ideas not to repeat, promising directions. The text must fit ``max_chars`` (a prompt
budget), so lines are granted round-robin in priority order: every section gets its first line
before any section gets its second, and a section's title is spent only with its first line. The
result is deterministic (no wall-clock times) and safe on an empty ledger.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..evidence.crashes import stated_crash_kind
from ..evidence.roles import account_line
from ..ledger.model import plural
from ..policy.verdict import noise_alert, runs_phrase, verdict_noise
from .contradictions import contradiction_line
from .health import PLATEAU_RUNS, alerts, is_busy
from .insights import insights_view
from .memory import ResearchState
from .progress import phase_of, velocity_phrase

DEFAULT_MAX_CHARS = 1500
RECENT = 5
LIST_ITEMS = 6
LINE_CHARS = 110
EMPTY_TEXT = ("MemoryLab guide: no runs yet.\n"
              "Start with the baseline: train.py unchanged, python memorylab.py run --description baseline "
              "(program.md's setup), then python memorylab.py replicate HEAD to measure the noise.")
# Display order; PRIORITY decides who gets budget first.
ORDER = ("busy", "arena", "champion", "alerts", "account", "plateau", "recent", "works", "dead_ends", "contradictions",
         "near_misses", "mistakes", "do_not_repeat", "promising")
PRIORITY = ("busy", "arena", "champion", "alerts", "account", "plateau", "works", "dead_ends", "recent",
            "contradictions", "mistakes", "near_misses", "do_not_repeat", "promising")
TITLES = {"busy": "", "arena": "", "champion": "", "account": "", "alerts": "ALERTS", "plateau": "",
          "recent": "LAST RUNS (val_bpb, gain over the champion's reference then, + = better)",
          "works": "WORKS", "dead_ends": "DEAD ENDS / AVOID",
          "contradictions": "CONTEXT-DEPENDENT (worth an ablation)",
          "near_misses": "NEAR-MISSES (gain over the reference then, + = better: each alone repeats a failure; "
                         "a combination of two is a deliberate re-try: run it with --allow-blocked)",
          "mistakes": "MISTAKES", "do_not_repeat": "TRIED AND FAILED (do not repeat)",
          "promising": "PROMISING DIRECTIONS"}


def _clip(text: str, width: int = LINE_CHARS) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def guide_data(state: ResearchState, curve_for: Callable[[str], list | None] | None = None,
               standing: dict | None = None, headline: str | None = None) -> dict:
    """Everything the guide shows, as data (bounded lists); ``curve_for`` reads archived loss curves;
    ``standing``: the arena's champion as the promotion policy sees it (policy.verdict.standing);
    ``headline``: the champion sentence every view leads with (policy.estimates.champion_headline)."""
    timeline = state.timeline
    view = insights_view(state.book, state.runs, timeline.plateau(), timeline.account.to_dict())
    champ = timeline.champion
    rules = state.consolidator.rules
    return {
        "runs": state.runs,
        "arena": state.arena,
        "champion": None if champ is None else {"run_id": champ.run_id, "commit": champ.commit,
                                                "val_bpb": champ.val_bpb, "description": champ.description},
        "verdict": standing,
        "headline": headline,
        "account": timeline.account.to_dict(),
        "alerts": [a for a in alerts(timeline, curve_for, noise_alert(standing, state.arena), time.time())
                   if not a["id"].startswith("plateau:")],  # the plateau has its own section
        "breaker": timeline.breaker(),
        "plateau": view["plateau"],
        "velocity": (velocity := state.velocity.view(state.arena)),
        "phase": phase_of(timeline, velocity),
        "recent": [_recent(o) for o in list(timeline.recent)[-RECENT:]][::-1],
        "works": [r for r in rules if r["kind"] == "works"],
        "avoid": [r for r in rules if r["kind"] == "avoid"],
        "rules_made_at_run": state.consolidator.point,
        "dead_ends": view["dead_ends"],
        "near_misses": view["near_misses"][:LIST_ITEMS],
        "contradictions": state.contradictions.contradictions(LIST_ITEMS),
        "mistakes": state.deck.ranked(state.runs - 1, LIST_ITEMS),
        "do_not_repeat": [dict(v) for v in reversed(state.failed_ideas.values())][: LIST_ITEMS + 2],
        "promising": view["promising"],
    }


def _recent(outcome) -> dict:
    run = outcome.run
    verdict = run.extra.get("verdict") or {}
    return {"run_id": run.run_id, "commit": run.short_commit or None, "status": run.status, "val_bpb": run.val_bpb,
            "gain": verdict.get("gain"), "role": run.role,
            "error_kind": stated_crash_kind(run.error_kind, run.error_summary, run.description),
            "description": run.description}


def _sections(data: dict) -> dict[str, list[str]]:
    """Each section's lines, most important first."""
    sections = {
        "busy": [f"!! {_clip(a['message'], 3 * LINE_CHARS)}" for a in data["alerts"] if is_busy(a)],
        "arena": [_clip(f"ARENA {data['arena']} (runs of other arenas are never compared)")] if data["arena"] else [],
        "champion": _champion_lines(data),
        "account": [account_line(data["account"])],
        "alerts": [f"! {_clip(a['message'], 2 * LINE_CHARS)}" for a in data["alerts"] if not is_busy(a)],
        "plateau": _plateau_lines(data),
        "recent": [_recent_line(r) for r in data["recent"]],
        "works": [_clip(r["text"]) for r in data["works"]],
        "dead_ends": [f"{d['category']}: {d['attempts']} attempts, no keep" for d in data["dead_ends"]]
        + [_clip(r["text"]) for r in data["avoid"]],
        "near_misses": [_clip(f"{_delta(n['gain'])} {n['commit'] or n['run_id']}: "
                              f"{n['description']}") for n in data["near_misses"]],
        "mistakes": [_clip(f"[{m['type']} ×{m['seen']}] {m['lesson']}") for m in data["mistakes"]],
        "contradictions": [_clip(contradiction_line(c), 2 * LINE_CHARS) for c in data.get("contradictions", [])],
        "do_not_repeat": [_clip(f"{d['label']} ({d['status']}{_times(d['count'])})") for d in data["do_not_repeat"]],
        "promising": [_promising_line(p) for p in data["promising"]],
    }
    return {name: lines for name, lines in sections.items() if lines}


def _champion_lines(data: dict) -> list[str]:
    """The champion and the numbers the promotion policy judges the next run by (policy.verdict)."""
    champ, verdict = data["champion"], data.get("verdict")
    headline = [f"  {data['headline']}"] if data.get("headline") else []  # every view's words (champion_headline)
    if champ is None or verdict is None:
        return ["CHAMPION none yet: the next kept run is this arena's baseline"]
    commit = f"commit {champ['commit'][:7]} " if champ["commit"] else ""
    head = (f"CHAMPION reference {verdict['reference_val_bpb']:.6f} ({runs_phrase(verdict['reference_n'])}) "
            f"{commit}({verdict['champion']}): {champ['description']}")
    best = (f"best single run {verdict['best_single_val_bpb']:.6f} · " if verdict["reference_n"] > 1 else "")
    return [_clip(head), *headline, f"  {best}{verdict_noise(verdict)}"]


def _times(count: int) -> str:
    return f" ×{count}" if count > 1 else ""


def _delta(value: float | None) -> str:
    return "  n/a  " if value is None else f"{value:+.4f}"


def _promising_line(p: dict) -> str:
    tried = "untried" if not p["attempts"] else f"{p['keeps']} of {plural(p['attempts'], 'try', 'tries')} kept"
    return f"{p['category']} (E[gain] {p['expected_gain']:.4f} val_bpb per try, {tried})"


def _recent_line(r: dict) -> str:
    outcome = r["status"] if r["status"] != "crash" else f"crash[{r['error_kind'] or 'unknown'}]"
    gain = f" gain {r['gain']:+.6f}" if r["gain"] is not None else (f" ({r['role']})" if r["role"] != "idea" else "")
    commit = f" {r['commit']}" if r["commit"] else ""
    val = f" {r['val_bpb']:.6f}" if r["val_bpb"] is not None else ""
    return _clip(f"{outcome:<8}{val}{gain}{commit} {r['description']}")


def _plateau_lines(data: dict) -> list[str]:
    """Plateau advice (or the experiments since the last improvement), then the velocity."""
    phase = [data["phase"]["line"].replace("phase      ", "PHASE ", 1)] if data.get("phase") else []
    return phase + _plateau_head(data) + _velocity_lines(data)


def _plateau_head(data: dict) -> list[str]:
    plateau = data["plateau"]
    since = plateau["experiments_since_improvement"]
    rate = plateau["improvement_per_hour"]
    rate_text = f"; {rate:.4f} bpb/h over the last {plateau['window_runs']} runs" if rate is not None else ""
    if since >= 2 * PLATEAU_RUNS:
        untried = [p["category"] for p in data["promising"] if p["attempts"] == 0][:2]
        hint = f" (untried: {', '.join(untried)})" if untried else ""
        return [f"PLATEAU {plural(since, 'experiment')} without improvement{rate_text}: step back — try a radical "
                f"change{hint} or combine two near-misses on the champion"]
    if since >= PLATEAU_RUNS:
        return [f"PLATEAU {plural(since, 'experiment')} without improvement{rate_text}: small tweaks are "
                "exhausted — try a larger or combined change (combine near-misses)"]
    if data["champion"] and since:
        return [f"{plural(since, 'experiment')} since the last improvement{rate_text}"]
    return []


def _velocity_lines(data: dict) -> list[str]:
    """The champion's velocity (val_bpb per GPU-hour and per experiment), when there is one to show."""
    velocity = data.get("velocity")
    if not velocity or (velocity["recent"] is None and velocity["history"] is None):
        return []
    return [velocity_phrase(velocity).replace("velocity   ", "VELOCITY ", 1)]


def _allocate(sections: dict[str, list[str]], max_chars: int) -> dict[str, int]:
    """Lines granted per section: round-robin in PRIORITY order while the total fits."""
    granted = {name: 0 for name in sections}
    used = 0
    progress = True
    while progress:
        progress = False
        for name in PRIORITY:
            lines = sections.get(name)
            if not lines or granted[name] >= len(lines):
                continue
            cost = len(lines[granted[name]]) + 1
            if TITLES[name]:
                cost += 2 + (len(TITLES[name]) + 1 if granted[name] == 0 else 0)
            if used + cost <= max_chars:
                granted[name] += 1
                used += cost
                progress = True
    return granted


def render(data: dict, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The guide text, at most ``max_chars`` characters."""
    if not data["runs"]:
        return EMPTY_TEXT[:max_chars]
    sections = _sections(data)
    granted = _allocate(sections, max_chars)
    out: list[str] = []
    for name in ORDER:
        count = granted.get(name, 0)
        if not count:
            continue
        if TITLES[name]:
            out.append(TITLES[name])
        indent = "  " if TITLES[name] else ""
        out += [indent + line for line in sections[name][:count]]
    return "\n".join(out)[:max_chars]


def guide(state: ResearchState, max_chars: int = DEFAULT_MAX_CHARS,
          curve_for: Callable[[str], list | None] | None = None, standing: dict | None = None,
          headline: str | None = None) -> dict:
    """The guide as data plus its budgeted ``text``."""
    data = guide_data(state, curve_for, standing, headline)
    text = render(data, max_chars)
    return {**data, "text": text, "chars": len(text), "max_chars": max_chars}
