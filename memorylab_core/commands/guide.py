"""``memorylab guide``: the agent's context before choosing the next idea (fits a character budget)."""

from __future__ import annotations

import argparse

from ..policy.estimates import history_headline
from ..policy.verdict import history_standing
from ..research.guide import DEFAULT_MAX_CHARS, guide
from ..research.memory import curve_loader, load_state
from .common import Context, add_arena_flag, add_json_flag, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "guide", help="context for choosing the next experiment",
        description="Champion and commit, alerts, plateau advice, the last runs, what works, dead ends, "
                    "near-misses to combine, mistake cards and ideas not to repeat, within --max-chars. "
                    "Deterministic; read it at the start of every loop.")
    p.add_argument("--max-chars", type=positive_int, default=DEFAULT_MAX_CHARS,
                   help=f"character budget of the text (default {DEFAULT_MAX_CHARS})")
    add_arena_flag(p)
    add_json_flag(p)
    p.set_defaults(handler=run)


def run(ctx: Context) -> int:
    state = load_state(ctx.store, history=ctx.history, arena=ctx.arena)
    data = guide(state, ctx.args.max_chars, curve_loader(ctx.store), history_standing(ctx.history, state.arena),
                 history_headline(ctx.history, state.arena))
    ctx.emit(data["text"], data)
    return 0
