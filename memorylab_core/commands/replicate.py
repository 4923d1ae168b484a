"""``memorylab replicate RUN_ID|COMMIT [--n 3] -- CMD``: re-run a logged run's code with new seeds."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..evidence import stats
from ..ingest import gitinfo
from ..ingest.experiment import TrainSpec, result_line
from ..ingest.launcher import Interrupted
from ..ingest.recording import replicate_hook
from ..ingest.runs import MAX_DESCRIPTION, RunRequest
from ..ledger.model import Run, plural
from ..ledger.store import MemoryLabError, warn
from ..novelty import changes
from ..policy.decisions import git_line, one_line
from ..policy.promotion import Decision, code_key, estimate_noise, excluded_runs, is_measured, sample_of
from ..policy.verdict import noise_words
from .champion import git_commands
from .common import Context, add_json_flag, replicate_count, seed_int
from .policy_options import add_policy_flags, load_policy
from .training import (
    EXIT_CRASHED,
    add_training_flags,
    announce,
    head_commit,
    interrupted,
    log_outcome,
    run_training,
    training_spec,
)

DEFAULT_SEED = 42  # train.py's default AUTORESEARCH_SEED


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replicate", help="re-run a logged run's code N times with new seeds; confirm or refute it",
        description="Re-run the code of a logged run (a run id, id prefix or commit) --n times, each with a new "
                    "AUTORESEARCH_SEED, logging every run linked to the original (replicate_of). The working tree "
                    "must hold that code (HEAD at its commit, train.py unchanged): check it out first, or use a "
                    "git worktree. Prints mean ± spread, feeds the noise estimate, and confirms the champion "
                    "(Welch test, docs/promotion.md) or recommends a rollback. Exit codes: 0 all logged, 3 some "
                    "replicate crashed, 1 error, 130/143 interrupted (finished replicates stay recorded).")
    p.add_argument("ref", metavar="RUN_ID|COMMIT", help="the run to replicate (id, unique id prefix, or commit prefix)")
    p.add_argument("--n", type=replicate_count, default=3, help="number of replicate runs (default 3, at most 100)")
    p.add_argument("--seed-start", type=seed_int, metavar="SEED",
                   help="first seed to try (default: the original's seed + 1); seeds already used are skipped")
    p.add_argument("--dry-run", action="store_true", help="print the plan (code check, seeds, command); run nothing")
    add_policy_flags(p)
    add_json_flag(p)
    add_training_flags(p)
    p.set_defaults(handler=run)


def original_run(ctx: Context, ref: str) -> Run:
    """The run to replicate: by id or id prefix, else by commit (a sha prefix or a git ref like HEAD)."""
    found = ctx.history.find(ref.strip())
    if found is None:
        commit = head_commit(ctx.cwd, ref.strip())
        found = ctx.history.find(commit) if commit else None
    if found is None:
        raise MemoryLabError(f"no logged run or commit matches {ref!r}: see 'memorylab list'")
    if found.replicate_of:
        root = ctx.history.get(found.replicate_of)
        return root or found
    return found


def check_code(ctx: Context, original: Run) -> None:
    """The working tree must run the original's code; never silently replicate something else."""
    prov = gitinfo.provenance(ctx.cwd)
    short = (original.commit or "")[:12]
    how = (f"check it out first (git checkout {short}), or use a worktree "
           f"(git worktree add ../replicate-{short[:7]} {short} && cd ../replicate-{short[:7]})")
    if original.commit and prov.get("commit") and prov["commit"] != original.commit:
        raise MemoryLabError(f"HEAD is {prov['commit'][:12]} but {original.run_id} ran commit {short}: {how}")
    if original.code_fingerprint:
        text = _read(ctx.cwd / "train.py")
        if text is None or changes.code_fingerprint(text) != original.code_fingerprint:
            raise MemoryLabError(f"train.py here differs from the code {original.run_id} ran: {how}")
    elif original.commit and prov.get("dirty"):
        raise MemoryLabError(f"train.py has uncommitted changes; {original.run_id} ran commit {short}: {how}")
    if not original.commit and not original.code_fingerprint:
        warn(f"{original.run_id} has no commit or code fingerprint: cannot check that this is the same code")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def plan_seeds(ctx: Context, original: Run, n: int, start: int | None) -> list[int]:
    """``n`` seeds not yet used by runs of this code, counting up from ``start`` (default: original's + 1)."""
    used = set()
    for run in ctx.history.runs:
        if code_key(run) == code_key(original):
            used.update(s for s in (run.seed, run.extra.get("seed_env")) if isinstance(s, int))
    seed = start if start is not None else (original.seed if original.seed is not None else DEFAULT_SEED) + 1
    seeds = []
    while len(seeds) < n:
        if seed not in used:
            seeds.append(seed)
        seed += 1
    return seeds


def _request(original: Run, i: int, n: int, seed: int, cwd: Path, crashed: bool) -> RunRequest:
    """The replicate's record fields; the hook replaces the placeholder status with the original's."""
    description = f"replicate {i}/{n} of {original.run_id} (seed {seed}): {original.description}"
    return RunRequest(description=description[:MAX_DESCRIPTION], status="crash" if crashed else "keep",
                      tags=tuple(dict.fromkeys([*original.tags, "replicate"])), family=original.family,
                      hypothesis=original.hypothesis, mode="replicate", cwd=cwd)


def run(ctx: Context) -> int:
    args = ctx.args
    policy = load_policy(ctx)
    original = original_run(ctx, args.ref)
    check_code(ctx, original)
    seeds = plan_seeds(ctx, original, args.n, args.seed_start)
    spec, budget = training_spec(ctx)
    if args.dry_run:
        return _print_plan(ctx, original, seeds, spec)
    announce(spec, budget, args.timeout is not None)
    logged, crashed, decisions, outcome = [], 0, [], None
    for i, seed in enumerate(seeds, 1):
        try:
            outcome = run_training(ctx, spec, seed)
        except Interrupted as exc:
            return interrupted(exc, f"{len(logged)} finished replicate(s) stay recorded")
        request = _request(original, i, len(seeds), seed, ctx.cwd, outcome.crashed)
        sink: list[Decision] = []
        hook = replicate_hook(policy, original.run_id, outcome.failure, outcome.crashed, sink)
        try:
            record, _ = log_outcome(ctx, outcome, request, hook)
        except Interrupted as exc:
            return interrupted(exc, f"{len(logged) + 1} finished replicate(s) stay recorded")
        logged.append(record)
        crashed += record["status"] == "crash"
        decisions.extend(sink)
        if not ctx.json:
            val = record["metrics"].get("val_bpb")
            print(f"replicate {i}/{len(seeds)} (seed {seed}): {record['run_id']} "
                  f"{'crash' if val is None else f'val_bpb {val:.6f}'}")
    _summarize(ctx, original, logged, decisions[-1] if decisions else None, outcome, policy)
    return EXIT_CRASHED if crashed else 0


def git_hint(decision: Decision | None) -> str:
    """What to do with git after replicates: ``rollback`` when a rollback is recommended (run the printed
    ``memorylab champion --rollback ... && git ...`` line whole: a bare ``git reset`` would leave MemoryLab's
    champion on the abandoned code), else ``stay``: replicates change no code, so the branch stays where it is.
    (A valid replicate of a code whose only runs were confounded is its deciding rerun: its packet's ``git``
    applies.)"""
    return "rollback" if decision is not None and decision.recommendation == "rollback" else "stay"


def _run_fields(logged: list[dict], decision: Decision | None, outcome) -> dict:
    """The fields ``run`` prints in MEMORYLAB_RESULT, for the last replicate (docs/promotion.md)."""
    last = logged[-1] if logged else {}
    packet = last.get("decision_packet") or {}
    return {"run_id": last.get("run_id"), "status": last.get("status"), "val_bpb": (last.get("metrics") or {}).get(
        "val_bpb"), "next_action": packet.get("next_action"),
        "git": packet.get("git") if last.get("role") == "rerun" else git_hint(decision),
        "exit_code": outcome.result.returncode if outcome else None,
        "timed_out": outcome.result.timed_out if outcome else False,
        "early_abort": None}  # replicates measure noise: the early-abort rule never stops one (docs/early_abort.md)


def _summarize(ctx: Context, original: Run, logged: list[dict], decision: Decision | None, outcome=None,
               policy=None) -> None:
    ctx.history.refresh()
    group = sample_of(original, ctx.history.runs)
    starved = excluded_runs(original, ctx.history.runs)
    values = list(group.values)
    sd = math.sqrt(v) if (v := stats.sample_var(values)) is not None else None
    result = {
        **_run_fields(logged, decision, outcome),
        "original": original.run_id, "replicates": [r["run_id"] for r in logged], "n": group.n,
        "mean": round(group.mean, 6) if values else None, "sd": None if sd is None else round(sd, 6),
        "se": None if sd is None else round(sd / math.sqrt(group.n), 6),
        "crashed": sum(1 for r in logged if r["status"] == "crash"),
        "excluded": [{"run_id": r.run_id, "causes": list(r.extra.get("confound") or [])} for r in starved],
        "noise": _noise(ctx, original, policy) if decision is None else decision.thresholds.get("noise"),
        "level": decision.shown_level if decision else None,
        "confirmed": bool(decision and decision.level == "confirmed" and decision.accepted and not decision.baseline),
        "recommendation": decision.recommendation if decision else None,
        "rollback_to": decision.rollback_to if decision else None,
    }
    if ctx.json:
        ctx.emit("", {**result, "promotion": decision.to_dict() if decision else None, "values": values})
        return
    spread = "" if sd is None else f" ± {sd:.6f} (sd; se {sd / math.sqrt(group.n):.6f})"
    lines = [f"{original.run_id}: val_bpb {group.mean:.6f}{spread} over {plural(group.n, 'valid run')} of its code"
             if values else f"{original.run_id}: no valid measured run of its code"]
    if starved:
        causes = "; ".join(dict.fromkeys(c for r in starved for c in r.extra.get("confound") or [])) or "starved"
        lines.append(f"excluded: {len(starved)} of {len(starved) + group.n} runs of its code starved (confounded): "
                     f"{', '.join(r.run_id for r in starved)} ({causes[:300]})")
    if result["noise"]:
        lines.append(noise_words(result["noise"]))
    if decision is not None:
        lines.append(f"promotion: {decision.summary()}")
    elif logged:
        lines.append(f"promotion: not judged: no replicate measured anything ({result['crashed']} crashed)")
    packet = (logged[-1].get("decision_packet") if logged else None) or {}
    if packet.get("next_action"):
        lines.append(f"next: {one_line(packet)}")
    if packet.get("next_action"):  # replicates change no code: not the packet's own git line (it would say reset)
        lines.append(git_line({"git": result["git"], "next_action": packet["next_action"]}))
    if decision is not None and decision.recommendation == "rollback":
        target = ctx.history.get(decision.rollback_to)
        git = [c for c in (git_commands(ctx, target, original) if target else []) if not c.startswith("#")]
        lines.append(" && ".join([f"next: memorylab champion --rollback {decision.rollback_to} --reason "
                                  f"\"replicates of {original.run_id} say its keep was noise\"",
                                  *(c.split("   #")[0] for c in git)]))  # one line: `tail -n 3` shows it whole
    lines.append(result_line(result))
    print("\n".join(lines))


def _noise(ctx: Context, original: Run, policy) -> dict | None:
    """The arena's noise level when no replicate was judged (all crashed): σ and where it came from, still."""
    if policy is None:
        return None
    return estimate_noise(ctx.history.registry.notable_in(original.arena), policy).to_dict()


def _print_plan(ctx: Context, original: Run, seeds: list[int], spec: TrainSpec) -> int:
    plan = {"original": original.run_id, "commit": original.commit, "seeds": seeds, "command": spec.command,
            "timeout_s": spec.timeout_s, "measured_runs": sum(1 for r in ctx.history.runs
                                                               if is_measured(r) and code_key(r) == code_key(original))}
    ctx.emit(f"dry run: would replicate {original.run_id} (commit {(original.commit or 'n/a')[:12]}) "
             f"{len(seeds)} time(s) with seeds {', '.join(map(str, seeds))}: {' '.join(spec.command)} "
             f"(limit {spec.timeout_s:g} s each)", plan)
    return 0
