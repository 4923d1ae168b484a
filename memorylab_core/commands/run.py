"""``memorylab run -- CMD``: one experiment in one command (train, judge, decide, log, report back)."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone

from ..index.records import run_from_record
from ..ingest import gitinfo, timebudget
from ..ingest.experiment import Outcome, WatcherFactory, result_line
from ..ingest.launcher import Interrupted
from ..ingest.recording import run_hook
from ..ingest.runs import RunRequest, build_record, gather, validate_request
from ..ingest.watch import Watcher, arena_fits, plan_for
from ..ledger.model import ABORT_MODES, MODES, STATUSES, clean_tags
from ..ledger.store import MemoryLabError, warn
from ..novelty.guard import Proposal
from ..policy.decisions import git_line, one_line
from ..policy.early_abort import ENV_MODE, read_config, resolve_mode
from ..policy.promotion import Decision, PromotionPolicy, evaluate_run
from .check import code_signals, render, verdict
from .common import Context, add_json_flag, hours, unit_float
from .policy_options import add_policy_flags, load_policy
from .report import write_report
from .training import (
    EXIT_BLOCKED,
    EXIT_CRASHED,
    add_training_flags,
    announce,
    head_subject,
    interrupted,
    log_outcome,
    run_training,
    training_spec,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="train, decide keep/discard with the promotion policy, and log: one experiment",
        description="Run the training command (default: python train.py) with the summary sidecar, stream its "
                    "output to run.log, kill its process group on timeout, tell crash from success, decide keep "
                    "or discard with the noise-aware promotion policy (docs/promotion.md), log the run like "
                    "'log', and print the decision plus a 'MEMORYLAB_RESULT {json}' line. Exit codes: 0 logged "
                    "keep/discard, 2 refused before training (the novelty guard blocks the idea in --mode; nothing "
                    "recorded), 3 logged crash, 1 error (nothing recorded), 130/143 interrupted (nothing recorded).")
    p.add_argument("--description", "-d", help="what this run changed (default: HEAD's commit subject)")
    p.add_argument("--status", choices=STATUSES, help="override the policy's keep/discard/crash decision")
    p.add_argument("--tags", help="comma-separated tags")
    p.add_argument("--mode", choices=MODES, default="explore", help="research mode of the run (default explore)")
    p.add_argument("--family", help="idea family / research direction")
    p.add_argument("--hypothesis", help="why it should help")
    p.add_argument("--notes", help="free-form notes")
    p.add_argument("--threshold", type=unit_float, help="novelty text-similarity threshold in (0, 1]")
    p.add_argument("--dry-run", action="store_true",
                   help="train and evaluate, but record nothing (the run's files stay in a temp folder)")
    p.add_argument("--rerun-confounded", action="store_true",
                   help="when the run comes out confounded (its training was starved, docs/evidence.md), train it "
                        "once more at once and log the second run as role 'rerun' (rerun_of: the first); the "
                        "printed result is the second run's")
    p.add_argument("--allow-blocked", action="store_true",
                   help="train even when the novelty guard's --mode policy blocks the idea (by default 'run' "
                        "checks the description and the committed diff first, like 'check', and refuses a blocked "
                        "idea with exit 2 before training)")
    p.add_argument("--early-abort", choices=ABORT_MODES,
                   help=f"stop a run whose loss curve cannot catch the champion's (docs/early_abort.md): 'on' stops "
                        f"it, 'shadow' only records what it would have done, 'off'; default ${ENV_MODE}, else the "
                        f"store's early_abort.json, else on")
    p.add_argument("--report", action="store_true", help="refresh reports/latest.md afterwards")
    p.add_argument("--since-hours", type=hours, default=16.0, help="report window with --report")
    add_policy_flags(p)
    add_json_flag(p)
    add_training_flags(p)
    p.set_defaults(handler=run)


def _request(ctx: Context, outcome_status: str) -> RunRequest:
    args = ctx.args
    description = args.description
    if not description:
        if gitinfo.provenance(ctx.cwd).get("dirty"):
            raise MemoryLabError("train.py has uncommitted changes, so HEAD's commit message does not describe "
                                 "this run: commit first (git commit -am ...) or pass --description")
        description = head_subject(ctx.cwd)
    if not description:
        raise MemoryLabError("no --description and no git commit to take one from: pass --description")
    status = args.status or outcome_status
    if outcome_status == "crash" and status != "crash":  # a crash is a crash: it is recorded, never lost
        warn(f"the training crashed: --status {status} does not apply, the run is recorded as a crash")
        status = "crash"
    return RunRequest(description=description, status=status, tags=clean_tags(args.tags),
                      family=args.family, hypothesis=args.hypothesis, notes=args.notes, mode=args.mode,
                      threshold=args.threshold, cwd=ctx.cwd)


def run(ctx: Context) -> int:
    args = ctx.args
    policy = load_policy(ctx)
    request = _request(ctx, "keep")
    validate_request(request)  # bad flags fail before hours of training, not after
    if not args.allow_blocked and _blocked(ctx, request):
        return EXIT_BLOCKED
    spec, budget = training_spec(ctx)
    watch = _watch(ctx, budget)
    announce(spec, budget, args.timeout is not None)
    try:
        outcome = run_training(ctx, spec, dry_run=args.dry_run, watch=watch)
    except Interrupted as exc:
        return interrupted(exc)
    request = _request(ctx, "crash" if outcome.crashed else "keep")
    if args.dry_run:
        return _dry_run(ctx, outcome, request, policy)
    logged = _train_and_log(ctx, policy, outcome, request)
    if logged[0] is not None and args.rerun_confounded and logged[0].get("validity") == "confounded":
        logged = _rerun(ctx, spec, policy, logged, watch)
    record, run_id, decision, outcome = logged
    if record is None:
        return run_id  # interrupted: the exit code
    reports = write_report(ctx, args.since_hours) if args.report else []
    _print(ctx, record, run_id, outcome, decision, reports)
    return EXIT_CRASHED if record["status"] == "crash" else 0


def _watch(ctx: Context, budget: timebudget.Budget) -> WatcherFactory | None:
    """The early-abort watcher for this run (docs/early_abort.md), or None when the rule is off or cannot judge it.

    Calibrated once, before training, on the current arena's history; a dry run is never stopped.
    """
    try:
        stored, rule = read_config(ctx.store.root)
        mode = resolve_mode(ctx.args.early_abort, os.environ, stored)
    except ValueError as exc:
        raise MemoryLabError(str(exc)) from None
    if mode == "off" or ctx.args.dry_run:
        return None
    arena = ctx.arena
    if not ctx.history.arenas():
        print(f"memorylab: early abort inactive: no finished runs to calibrate on yet (it needs {rule.min_history} "
              "in this run's arena)", file=sys.stderr)
        return None
    if not arena_fits(arena, budget.profile, budget.budget_s):
        print(f"memorylab: early abort inactive: a {budget.profile} run with a {budget.budget_s:g} s budget is not "
              f"in arena {arena}", file=sys.stderr)
        return None
    plan = plan_for(ctx.history, arena, rule)
    print(f"memorylab: {plan.describe()}{' (shadow: records, never stops)' if mode == 'shadow' else ''}",
          file=sys.stderr)
    if not plan.engaged:
        return None
    return lambda token: Watcher(plan, mode, token, budget.budget_s, arena)


def _blocked(ctx: Context, request: RunRequest) -> bool:
    """Novelty before training: the proposal (description + the committed diff) judged as ``check`` judges
    it; a block in the run's ``--mode`` prints ``check``'s text and refuses the run (docs/novelty.md)."""
    fingerprints, signature, note = code_signals(request.cwd, ctx.history, request.mode, request.description)
    proposal = Proposal(description=request.description, tags=request.tags, family=request.family,
                        hypothesis=request.hypothesis, code_fingerprints=fingerprints, changes=tuple(signature))
    data = verdict(ctx, proposal, note, request.mode, request.threshold)
    if data["decision"] != "block":
        return False
    ctx.emit(render(data), {**data, "refused": True, "exit_code": EXIT_BLOCKED})
    warn(f"refused before training: the novelty guard blocks this idea in mode {request.mode} "
         "(the same verdict as 'memorylab check'); change the idea, pass --mode exploit|replicate when that mode "
         "allows it, or --allow-blocked to train it anyway")
    return True


def _rerun(ctx: Context, spec, policy: PromotionPolicy, first: tuple, watch: WatcherFactory | None) -> tuple:
    """``--rerun-confounded``: train a confounded run once more and log it as role ``rerun`` (rerun_of)."""
    record, run_id, decision, outcome = first
    if not ctx.json:
        _print(ctx, record, run_id, outcome, decision, [])
    causes = "; ".join((record.get("confound") or {}).get("causes") or []) or "starved training"
    warn(f"{run_id} is confounded ({causes}): re-running it once (--rerun-confounded)")
    try:
        outcome = run_training(ctx, spec, dry_run=False, watch=watch)
    except Interrupted as exc:
        return None, interrupted(exc, f"the confounded run {run_id} was recorded first"), None, outcome
    request = _request(ctx, "crash" if outcome.crashed else "keep")
    request.extra = {"role": "rerun", "rerun_of": run_id}
    return _train_and_log(ctx, policy, outcome, request)


def _train_and_log(ctx: Context, policy: PromotionPolicy, outcome: Outcome, request: RunRequest):
    """Log a finished training run with the promotion policy's decision: (record, run_id, decision, outcome);
    (None, exit code, None, outcome) when interrupted while recording."""
    decisions: list[Decision] = []
    hook = run_hook(policy, ctx.args.status, outcome.failure, decisions)
    if outcome.watcher is not None and outcome.watcher.record() is not None:
        request.extra["early_abort"] = outcome.watcher.record()
        if outcome.stopped:  # a discard that never reached its evaluation: nothing for the promotion policy
            request.status, request.watched, hook = "discard", outcome.watcher.metrics(), _no_decision
            request.extra["arena"] = outcome.watcher.arena
    try:
        record, logged = log_outcome(ctx, outcome, request, hook)
    except Interrupted as exc:
        return None, interrupted(exc, "the finished run was recorded first"), None, outcome
    return record, logged.run_id, decisions[0] if decisions else None, outcome


def _no_decision(record: dict, history) -> list[dict]:
    """The record hook of a run stopped early: its status is discard and no champion event follows."""
    return []


def _print(ctx: Context, record: dict, run_id: str, outcome: Outcome, decision: Decision | None, reports) -> None:
    packet = record["decision_packet"]
    val = record["metrics"].get("val_bpb")
    result = {
        "run_id": run_id, "status": record["status"], "val_bpb": val,
        "level": decision.shown_level if decision else None,
        "confirmed": bool(decision and decision.level == "confirmed" and record["status"] == "keep"
                          and not decision.baseline),
        "next_action": packet["next_action"], "git": packet["git"],
        "recommendation": decision.recommendation if decision else None,
        "exit_code": outcome.result.returncode, "timed_out": outcome.result.timed_out,
        "early_abort": record.get("early_abort"),
    }
    if ctx.json:
        ctx.emit("", {**result, "promotion": record.get("promotion"), "decision_packet": packet,
                      "novelty_guard": record["novelty_guard"], "artifacts": record["artifacts"],
                      "launch": record.get("launch"), "error": record.get("error"),
                      "reports": [str(p) for p in reports]})
        return
    lines = [f"logged {run_id}: {record['status']}{'' if val is None else f' val_bpb {val:.6f}'} · "
             f"novelty {record['novelty_guard']['classification']}"]
    if record["status"] == "crash":
        lines.append(f"crash: {(record.get('error') or {}).get('summary')}")
    if decision is not None:
        lines.append(f"promotion: {decision.summary()}")
    if record.get("early_abort"):
        lines.append(_abort_line(record["early_abort"]))
    lines.append(f"next: {one_line(packet)}")
    lines.append(git_line(packet))
    if reports:
        lines.append(f"report: {reports[0]}")
    lines.append(result_line(result))
    print("\n".join(lines))


def _abort_line(info: dict) -> str:
    """``early abort: stopped ...`` / ``... (shadow): would have stopped ...`` for the terminal."""
    if info["action"] == "stopped":
        return f"early abort: stopped: {info['reason']}; saved {info['saved_training_seconds']:g} s of training"
    left = "shadow mode" if info["action"] == "shadow" else "kept running to audit the rule"
    return f"early abort ({left}): would have stopped: {info['reason']}"


def _dry_run(ctx: Context, outcome: Outcome, request: RunRequest, policy: PromotionPolicy) -> int:
    """Evaluate the finished run against the ledger; nothing is written to the store."""
    request.log_path, request.summary_path = outcome.log_path, outcome.summary_path
    inputs = gather(request)
    record = build_record(inputs, "dry-run", datetime.now(timezone.utc))
    draft = run_from_record(record, len(ctx.history.runs), -1)
    decision = evaluate_run(draft, ctx.history.registry.notable_in(draft.arena), ctx.history.events, policy)
    status = ctx.args.status or decision.status
    result = {"run_id": None, "dry_run": True, "status": status, "val_bpb": draft.val_bpb,
              "level": decision.shown_level, "recommendation": decision.recommendation, "files": str(outcome.folder),
              "exit_code": outcome.result.returncode, "timed_out": outcome.result.timed_out}
    if ctx.json:
        ctx.emit("", {**result, "promotion": decision.to_dict()})
    else:
        print(f"dry run (nothing recorded): {decision.summary()}\nfiles: {outcome.folder}\n{result_line(result)}")
    return EXIT_CRASHED if status == "crash" else 0
