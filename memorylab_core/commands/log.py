"""``memorylab log``: record a finished run (metrics, provenance, novelty, decision packet)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..ingest.runs import AlreadyLogged, RunRequest, commit_run, gather
from ..ledger.model import MODES, STATUSES, clean_tags
from ..policy.decisions import one_line
from .common import Context, add_json_flag, hours, unit_float


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "log", help="record a finished run in the ledger",
        description="Record one run: metrics from the JSON sidecar (--summary) or the summary block of "
                    "run.log (--log), git provenance, archived artifacts, novelty verdict against earlier "
                    "runs, a decision packet, the registry snapshot and a results.tsv row. Input is "
                    "validated first; on any error nothing is written and the exit code is 1.")
    p.add_argument("--description", "-d", required=True, help="what this run changed (one line)")
    p.add_argument("--status", required=True, help=f"outcome: {' | '.join(STATUSES)}")
    p.add_argument("--tags", help="comma-separated tags")
    p.add_argument("--mode", choices=MODES, default="explore", help="research mode of the run (default explore)")
    p.add_argument("--family", help="idea family / research direction")
    p.add_argument("--hypothesis", help="why it was expected to help")
    p.add_argument("--notes", help="free-form notes")
    p.add_argument("--log", dest="log_path", type=Path, help="training log (run.log)")
    p.add_argument("--summary", dest="summary_path", type=Path, help="JSON sidecar written by train.py")
    p.add_argument("--threshold", type=unit_float, help="novelty text-similarity threshold in (0, 1]")
    p.add_argument("--error", dest="error_text", help="error text for a crash (overrides the log's)")
    p.add_argument("--skip-archive", action="store_true", help="do not copy run.log/summary/patch into the store")
    p.add_argument("--report", action="store_true", help="refresh reports/latest.md afterwards")
    p.add_argument("--since-hours", type=hours, default=16.0,
                   help="report window with --report (default 16)")
    add_json_flag(p)
    p.set_defaults(handler=run)


def run(ctx: Context) -> int:
    args = ctx.args
    request = RunRequest(
        description=args.description,
        status=args.status.strip().lower(),
        tags=clean_tags(args.tags),
        family=args.family,
        hypothesis=args.hypothesis,
        notes=args.notes,
        mode=args.mode,
        threshold=args.threshold,
        log_path=args.log_path,
        summary_path=args.summary_path,
        error_text=args.error_text,
        skip_archive=args.skip_archive,
        cwd=ctx.cwd,
    )
    inputs = gather(request)
    try:
        record, run_ = commit_run(ctx.store, ctx.history, inputs)
    except AlreadyLogged as done:
        ctx.emit(f"already logged as {done.run.run_id} (run_token {inputs.run_token[:12]}…): nothing recorded",
                 {"run_id": done.run.run_id, "already_logged": True, "status": done.run.status,
                  "val_bpb": done.run.val_bpb})
        return 0
    report_paths = []
    if args.report:
        from .report import write_report  # the report stack loads only when asked for

        report_paths = write_report(ctx, args.since_hours)
    packet = record["decision_packet"]
    val = run_.val_bpb
    text = (f"logged {run_.run_id}: {run_.status}"
            f"{'' if val is None else f' val_bpb {val:.6f}'} · novelty {record['novelty_guard']['classification']}\n"
            f"next: {one_line(packet)}")
    if report_paths:
        text += f"\nreport: {report_paths[0]}"
    data = {
        "run_id": run_.run_id,
        "status": run_.status,
        "val_bpb": val,
        "novelty_guard": record["novelty_guard"],
        "decision_packet": packet,
        "artifacts": record["artifacts"],
        "reports": [str(p) for p in report_paths],
    }
    ctx.emit(text, data)
    return 0
