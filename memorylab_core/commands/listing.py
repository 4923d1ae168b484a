"""``memorylab list``: runs as a table, filtered and sorted."""

from __future__ import annotations

import argparse
import heapq
import itertools
import time
from collections.abc import Sequence

from ..ledger.model import STATUSES, Run
from .common import Context, add_arena_flag, add_json_flag, hours, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list runs (filters, sorting)",
                       description="List runs, newest first by default, from every arena unless --arena "
                                   "names one ('all' adds an arena column).")
    p.add_argument("--status", choices=STATUSES, help="only runs with this status")
    p.add_argument("--family", help="only runs of this family")
    p.add_argument("--tag", action="append", help="only runs carrying this tag (repeat for all of several)")
    p.add_argument("--since-hours", type=hours, help="only runs logged in the last H hours")
    p.add_argument("--limit", type=positive_int, default=20, help="at most N runs (default 20, at most 1000000)")
    p.add_argument("--sort", choices=("time", "val_bpb"), default="time",
                   help="time: newest first (default); val_bpb: best first, unmeasured last")
    add_arena_flag(p, all_allowed=True, help_text="only this arena's runs (default: every arena's; 'all' adds an "
                                                  "arena column)")
    add_json_flag(p)
    p.set_defaults(handler=run)


def select(runs: Sequence[Run], args: argparse.Namespace, now: float | None = None,
           arena: str | None = None) -> list[Run]:
    """Apply the filters and the sort of ``args`` to ``runs`` (only ``arena``'s when given).

    Newest first reads runs from the end and stops at ``--limit``, so a long ledger costs nothing
    extra (its older runs are never decoded); ``--sort val_bpb`` has to look at every run.
    """
    now = time.time() if now is None else now
    tags = {t.strip().lower() for t in args.tag or [] if t.strip()}
    cutoff = now - args.since_hours * 3600 if args.since_hours else None

    def wanted(r: Run) -> bool:
        return ((args.status is None or r.shown_status == args.status)
                and (arena is None or r.arena == arena)
                and (args.family is None or r.family == args.family)
                and tags <= set(r.tags)
                and (cutoff is None or (r.ts is not None and r.ts >= cutoff)))

    if args.sort == "val_bpb":
        return heapq.nsmallest(args.limit, filter(wanted, runs), key=_best_first)
    return list(itertools.islice(filter(wanted, reversed(runs)), args.limit))


def _best_first(r: Run) -> tuple:
    return (r.val_bpb is None, r.val_bpb if r.val_bpb is not None else 0.0, r.index)


def run(ctx: Context) -> int:
    arena = ctx.arena if ctx.args.arena and not ctx.all_arenas else None
    chosen = select(ctx.history.runs, ctx.args, arena=arena)
    rows = [{"run_id": r.run_id, "timestamp_utc": r.timestamp, "status": r.status, "val_bpb": r.val_bpb,
             "memory_gb": r.memory_gb, "commit": r.commit, "family": r.family, "tags": list(r.tags),
             "description": r.description, "next_action": r.next_action, "arena": r.arena, "role": r.role}
            for r in chosen]
    ctx.emit(render(chosen, ctx.all_arenas), rows)
    return 0


def render(runs: list[Run], arenas: bool = False) -> str:
    """The table; ``arenas`` adds each run's arena (``--arena all``); statuses as ``Run.shown_status``."""
    if not runs:
        return "no runs match"
    width = max((len(r.arena) for r in runs), default=5) if arenas else 0
    arena_head = f"{'arena':<{width}}  " if arenas else ""
    lines = [f"{'run_id':<28} {arena_head}{'status':<8} {'val_bpb':>9} {'mem_gb':>7}  description"]
    for r in runs:
        val = "—" if r.val_bpb is None else f"{r.val_bpb:.6f}"
        mem = "—" if r.memory_gb is None else f"{r.memory_gb:.1f}"
        desc = " ".join(r.description.split())
        status = r.shown_status
        where = f"{r.arena:<{width}}  " if arenas else ""
        lines.append(f"{r.run_id:<28} {where}{status:<8} {val:>9} {mem:>7}  {desc[:80]}")
    return "\n".join(lines)
