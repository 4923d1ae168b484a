"""``memorylab insights``: per-category statistics, promising directions, dead ends, near-misses, plateau."""

from __future__ import annotations

import argparse

from ..evidence.roles import account_line
from ..ledger.model import GAIN_SIGN, plural
from ..research.contradictions import contradiction_line
from ..research.insights import insights_view
from ..research.memory import load_state
from .common import Context, add_arena_flag, add_json_flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "insights", help="what kinds of change pay off (per-category statistics)",
        description="Per change category: attempts, keeps, crashes, smoothed keep probability, mean/best gain, "
                    "expected gain per attempt, association weight, last tried; then promising directions, dead "
                    "ends, near-misses, plateau and surprises. Formulas: docs/insights.md.")
    add_arena_flag(p)
    add_json_flag(p)
    p.set_defaults(handler=run)


def run(ctx: Context) -> int:
    state = load_state(ctx.store, history=ctx.history, arena=ctx.arena)
    data = insights_view(state.book, state.runs, state.timeline.plateau(), state.timeline.account.to_dict())
    data["contradictions"] = state.contradictions.contradictions()
    ctx.emit(render(data), data)
    return 0


def _num(value: float | None, digits: int = 4) -> str:
    return "none" if value is None else f"{value:+.{digits}f}"


def _ago(last: dict | None) -> str:
    if last is None:
        return "never"
    ago = last["experiments_ago"]
    return "the latest experiment" if ago == 0 else f"{plural(ago, 'experiment')} ago"


def render(data: dict) -> str:
    """The category table and the rankings, for a terminal."""
    if not data["runs"]:
        return "no runs yet: log the baseline first"
    lines = [f"{plural(data['runs'], 'run')} · {account_line(data)}",
             f"categories score {plural(data['attempts'], 'experiment')} ({data['uncategorized_attempts']} "
             f"uncategorised; bug crashes are lessons about code, not scored) · prior keep probability "
             f"{data['prior_keep_rate']:.0%} · mean gain of a keep {data['mean_keep_gain']:.4f} val_bpb",
             "columns: p(keep) = keep probability; mean/best = gain of its keeps (val_bpb); E[gain] = expected "
             "gain per try (val_bpb); weight = recent outcome signal (-2 … +2)",
             f"{'category':<15} {'tries':>5} {'keep':>4} {'crash':>5} {'p(keep)':>7} {'mean':>8} {'best':>8} "
             f"{'E[gain]':>8} {'weight':>7}  last"]
    for row in data["categories"]:
        last = row["last_tried"]
        lines.append(f"{row['category']:<15} {row['attempts']:>5} {row['keeps']:>4} {row['crashes']:>5} "
                     f"{row['keep_probability']:>7.2f} {_num(row['mean_gain']):>8} {_num(row['best_gain']):>8} "
                     f"{row['expected_gain']:>8.5f} {row['weight']:>+7.3f}  "
                     f"{_ago(last)}")
    lines.append("promising (score = E[gain] weighted by the signal, plus an exploration bonus): "
                 + (", ".join(f"{p['category']} (score {p['score']:.4f})" for p in data["promising"]) or "none"))
    lines.append("dead ends: " + (", ".join(f"{d['category']} ({plural(d['attempts'], 'try', 'tries')})"
                                            for d in data["dead_ends"]) or "none"))
    for near in data["near_misses"][:5]:
        lines.append(f"near-miss gain {_num(near['gain'])} val_bpb ({GAIN_SIGN}) "
                     f"{near['run_id']}: {near['description'][:70]}")
    plateau = data["plateau"] or {}
    if plateau:
        rate = plateau.get("improvement_per_hour")
        since = plural(plateau["experiments_since_improvement"], "experiment")
        lines.append(f"plateau: {since} since the last improvement"
                     + ("" if rate is None else f" · {rate:.4f} bpb/h over the last {plateau['window_runs']} runs"))
    for surprise in data["surprises"][:3]:
        lines.append(f"surprise {surprise['run_id']}: {surprise['reason']}")
    lines += [f"contradiction {contradiction_line(c)}" for c in data.get("contradictions") or []]
    return "\n".join(lines)
