"""``memorylab export``: the ledger as JSONL, CSV, upstream TSV or Prometheus text, to stdout or a file."""

from __future__ import annotations

import argparse
import sys
import time

from ..ledger.store import MemoryLabError, atomic_write_text, os_reason
from ..render.export import export_csv, export_jsonl, export_tsv
from ..render.prometheus import arena_samples, exposition_of
from ..research.health import alerts
from ..research.memory import curve_loader, load_state
from .common import Context, is_stdout, output_path

FORMATS = ("jsonl", "csv", "tsv", "prometheus")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export the ledger (jsonl, csv, tsv, prometheus)",
        description="Export every run. jsonl: the journal's records, runs and events (import rebuilds the "
                    "store from it); csv: flat columns; tsv: upstream results.tsv (identical rows for native "
                    "runs and imported rows); prometheus: text exposition 0.0.4 of the headline metrics "
                    "(for node_exporter's textfile collector).")
    p.add_argument("--format", "-f", choices=FORMATS, default="jsonl", help="output format (default jsonl)")
    p.add_argument("--output", "-o", type=output_path, help="write to this file atomically instead of stdout")
    p.set_defaults(handler=run, raw_stdout=True)  # the export is data: printed byte-exact


def _arena_metrics(ctx: Context, arena: str) -> list:
    """One arena's Prometheus samples, labelled ``arena``."""
    history = ctx.history
    state = load_state(ctx.store, history=history, arena=arena)
    return arena_samples(history.arena_runs(arena), history.events_in(arena),
                         alerts=alerts(state.timeline, curve_loader(ctx.store), now=time.time()),
                         plateau=state.timeline.plateau(),
                         breaker=state.timeline.breaker(), arena=arena, velocity=state.velocity.view(state.arena))


def render(ctx: Context, fmt: str) -> str:
    history = ctx.history
    if fmt == "prometheus":
        # a store with no run yet still reports its (default) arena: 0 runs, the breaker closed, so an alert on
        # absent() tells a new store from a broken exporter
        arenas = [arena for arena, _, _ in history.arenas()] or [ctx.arena]
        return exposition_of([_arena_metrics(ctx, arena) for arena in arenas], len(history.corrupt))
    if fmt == "csv":
        return export_csv(history.runs)
    if fmt == "tsv":
        return export_tsv(history.run_records())
    return export_jsonl(journal_records(ctx))


def journal_records(ctx: Context) -> list[dict]:
    """Every valid record, runs and events, in journal order: what ``import`` needs to rebuild the store
    (champion history, rollbacks and breaker resets are events)."""
    lines, _, _ = ctx.store.read_new_lines(0, 0)
    return [line.record for line in lines if line.record is not None]


def run(ctx: Context) -> int:
    output = ctx.args.output
    target = None if output is None or is_stdout(output) else ctx.store.check_output_path(output)
    text = render(ctx, ctx.args.format)
    if target is None:
        sys.stdout.write(text)
        return 0
    try:
        atomic_write_text(target, text)
    except OSError as exc:
        raise MemoryLabError(f"cannot write the export to {output}: {os_reason(exc)}") from exc
    if sys.stderr.isatty():  # a person sees where it went; cron (no terminal) mails nothing on success
        print(f"exported {ctx.args.format} to {target}", file=sys.stderr)
    return 0
