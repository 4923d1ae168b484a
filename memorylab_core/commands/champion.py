"""``memorylab champion``: the confirmed champion, the tip, their honest gains, and the champion history.

``--rollback RUN_ID --reason TEXT`` restores an earlier champion as a new ``champion_change`` event
(nothing in the ledger is rewritten) and prints the git commands that return the branch to it.
"""

from __future__ import annotations

import argparse

from ..index.journal_index import JournalIndex
from ..ingest import gitinfo
from ..ingest.champion_events import append_event, champion_history, rollback_event
from ..ledger.model import Run, plural
from ..ledger.store import MemoryLabError
from ..policy.estimates import anchor_label, champion_headline, gain_phrase, standings
from ..policy.registry import champion, confirmed_champion, is_candidate
from ..policy.verdict import noise_words
from .common import Context, add_arena_flag, add_json_flag, shown_count
from .policy_options import add_policy_flags, load_policy

HISTORY_ROWS = 10


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "champion", help="show the confirmed champion, the tip and the champion history; roll back",
        description="Show the confirmed champion and the (possibly unconfirmed) champion at the tip, with gain "
                    "estimates corrected for the winner's curse, the noise level, and the champion history "
                    "(champion_change events). With --rollback, record an earlier run as champion again and print "
                    "the git commands that return the branch to it.")
    p.add_argument("--limit", type=shown_count, default=HISTORY_ROWS,
                   help="history events to show (default 10, at most 10000)")
    p.add_argument("--rollback", metavar="RUN_ID", help="make this earlier kept run the champion again")
    p.add_argument("--reason", help="why (required with --rollback; stored in the event)")
    p.add_argument("--dry-run", action="store_true", help="with --rollback: show the event and commands, write nothing")
    add_arena_flag(p, all_allowed=True)
    add_policy_flags(p)
    add_json_flag(p)
    p.set_defaults(handler=run)


def run(ctx: Context) -> int:
    if ctx.args.rollback:
        return _rollback(ctx)
    if ctx.args.reason or ctx.args.dry_run:
        raise MemoryLabError("--reason and --dry-run go with --rollback RUN_ID")
    return _show(ctx)


# -- show -----------------------------------------------------------------------------------------

def _show(ctx: Context) -> int:
    history = ctx.history
    policy = load_policy(ctx)
    if ctx.all_arenas:
        per = [_arena_data(history, arena, policy, ctx.args.limit) for arena, _, _ in history.arenas()]
        ctx.emit("\n\n".join(_text(d) for d in per) or "No runs yet.", {"arenas": per})
        return 0
    data = _arena_data(history, ctx.arena, policy, ctx.args.limit)
    ctx.emit(_text(data), data)
    return 0


def _arena_data(history: JournalIndex, arena: str, policy, limit: int) -> dict:
    """One arena's standings and champion history (arenas are never compared with each other)."""
    events = history.events_in(arena)
    data = {"arena": arena, **standings(history.registry.notable_in(arena), events, policy)}
    data["headline"] = champion_headline(data)
    changes = champion_history(events)
    for change in changes:  # the baseline is never called confirmed (events before round 3 stored "confirmed")
        if change["run_id"] == data.get("baseline_run_id") and change["level"] == "confirmed":
            change["level"] = "baseline"
    data["history"] = changes[::-1][:limit]
    data["history_total"] = len(changes)
    return data


def _gain_text(gain: dict | None, against: str) -> str:
    return f"  {gain_phrase(gain, against)}" if gain else ""


def _champ_line(label: str, item: dict) -> str:
    return (f"{label}: {item['run_id']} val_bpb {item['val_bpb']:.6f} (estimate {item['estimate_val_bpb']:.6f} "
            f"from {item['estimate_runs']} of {plural(item['runs'], 'run')}) commit {(item['commit'] or 'n/a')[:7]} — "
            f"{item['description']}")


def _text(data: dict) -> str:
    head = f"arena {data['arena']}"
    if data["confirmed"] is None:
        return f"{head}\n{data['headline']}"
    anchor = anchor_label(data)
    lines = [head, data["headline"], _champ_line(anchor, data["confirmed"])]
    lines += [x for x in [_gain_text(data["confirmed"].get("vs_baseline"), "the baseline")] if x]
    if data["tip_is_confirmed"]:
        lines.append(f"tip: the {anchor} (nothing on top of it)")
    elif data["tip"] is not None:
        lines.append(_champ_line("unconfirmed tip", data["tip"]))
        lines += [x for x in [_gain_text(data["tip"].get("vs_confirmed"), f"the {anchor}")] if x]
    noise = data["noise"]
    lines.append(f"noise level: {noise_words(noise)}; {noise['df']:g} df incl. the default's prior")
    if data["history"]:
        lines.append(f"history ({len(data['history'])} of {data['history_total']}, newest first):")
        for ev in data["history"]:
            when = (ev["timestamp_utc"] or "")[:16].replace("T", " ")
            val = "" if ev["val_bpb"] is None else f" {ev['val_bpb']:.6f}"
            was = f"was {ev['prior_champion']}" if ev["prior_champion"] else "the arena's first champion"
            lines.append(f"  {when}  {ev['source'] or 'unknown':9} {ev['level'] or 'keep':9} {ev['run_id']}{val} "
                         f"({was}) — {'; '.join(ev['reasons'])[:160]}")
    else:
        lines.append("history: no champion_change events yet (they come from 'run', 'replicate' and rollbacks)")
    return "\n".join(lines)


# -- rollback -------------------------------------------------------------------------------------

def _target(history: JournalIndex, ref: str) -> Run:
    found = history.find(ref.strip())
    if found is None:
        raise MemoryLabError(f"no logged run matches {ref!r}: see 'memorylab champion' or 'memorylab list'")
    if found.replicate_of:
        found = history.get(found.replicate_of) or found
    if not is_candidate(found):
        raise MemoryLabError(f"{found.run_id} is a {found.status} run without a champion's standing: "
                             "roll back to a kept run with a val_bpb")
    return found


def _rollback(ctx: Context) -> int:
    reason = (ctx.args.reason or "").strip()
    if not reason:
        raise MemoryLabError("--rollback needs --reason: say why the current champion is abandoned")
    history = ctx.history
    target = _target(history, ctx.args.rollback)
    arena = target.arena  # a rollback changes the champion of the target's own arena only
    current = _current_champion(history, target)
    if ctx.args.dry_run:
        body = rollback_event(target, history.registry.notable_in(arena), history.events, reason)
    else:
        def build(fresh: JournalIndex) -> dict:
            _current_champion(fresh, target)  # again under the lock: a rollback meanwhile may have made it so
            return rollback_event(fresh.get(target.run_id) or target, fresh.registry.notable_in(arena),
                                  fresh.events, reason)

        body = append_event(ctx.store, history, build)
    commands = git_commands(ctx, target, current)
    data = {"dry_run": bool(ctx.args.dry_run), "event": body, "git_commands": commands}
    verb = "would record" if ctx.args.dry_run else "recorded"
    baseline = confirmed_champion(history.registry.notable_in(arena), ())
    confirmed = body["confirmed_run_id"]
    named = (f"nothing confirmed (the baseline {confirmed})" if baseline is not None and confirmed == baseline.run_id
             else f"confirmed champion → {confirmed}")
    text = [f"{verb} rollback: champion {current.run_id if current else 'none'} → {target.run_id} "
            f"(val_bpb {target.val_bpb:.6f}); {named}"]
    text += ["to return the branch to it:"] + [f"  {c}" for c in commands]
    ctx.emit("\n".join(text), data)
    return 0


def _current_champion(history: JournalIndex, target: Run) -> Run | None:
    """The champion of ``target``'s arena, which a rollback to ``target`` replaces; an error when that is
    ``target`` itself."""
    current = champion(history.registry.notable_in(target.arena), history.events)
    if current is not None and current.run_id == target.run_id:
        raise MemoryLabError(f"{target.run_id} is already the champion of arena {target.arena}")
    return current


def git_commands(ctx: Context, target: Run, current: Run | None) -> list[str]:
    """Commands that put the branch back on ``target``'s commit, keeping the abandoned tip reachable."""
    if not target.commit:
        return [f"# {target.run_id} has no commit recorded: restore train.py from runs/{target.run_id}/train.patch"]
    here = gitinfo.provenance(ctx.cwd)
    out = []
    if here.get("commit"):
        out.append(f"git branch memorylab/before-rollback-{here['commit'][:7]} {here['commit'][:12]}"
                   "   # keeps the abandoned tip reachable")
    if target.branch and here.get("branch") and target.branch != here["branch"]:
        out.append(f"git checkout {target.branch}")
    out.append(f"git reset --hard {target.commit[:12]}")
    if current is not None and current.commit == target.commit:
        out = [f"# HEAD's commit already is {target.commit[:12]}: nothing to move"]
    return out
