"""``memorylab check``: has this idea been tried, and did it fail? Exit 2 when the policy blocks it.

Code signals come from the repository: when train.py has uncommitted edits, the working tree is
fingerprinted and its constants diffed against HEAD; when it is clean and HEAD has not been logged
yet, HEAD is compared with its parent. When it is clean and HEAD was already logged, the agent has
not edited anything yet, so only the description is judged (except in ``--mode replicate``, where
re-running the logged code is the point and code identity is used).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..index.journal_index import JournalIndex
from ..ingest import gitinfo
from ..ledger.model import MODES, TRAIN_FILE, clean_tags
from ..ledger.store import MemoryLabError, warn
from ..novelty import changes
from ..novelty.guard import Proposal
from ..research.health import breaker_message, half_open, load_breaker
from .common import Context, add_json_flag, shown_count, unit_float


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check", help="classify a proposed idea against history (novelty guard)",
        description="Classify an idea as novel, known_success, incremental_followup, repeat_failure or "
                    "duplicate_run against every logged run, and apply the mode policy "
                    "(allow / caution / block).")
    p.add_argument("--description", "-d", required=True, help="what the next experiment changes")
    p.add_argument("--tags", help="comma-separated tags (e.g. 'optimizer,lr')")
    p.add_argument("--family", help="idea family / research direction")
    p.add_argument("--hypothesis", help="why it should help")
    p.add_argument("--mode", choices=MODES, default="explore",
                   help="policy: explore (new ideas only), exploit (follow-ups allowed), replicate "
                        "(re-runs allowed); default explore")
    p.add_argument("--threshold", type=unit_float, default=None,
                   help="text-similarity threshold in (0, 1] (default: the guard's built-in)")
    p.add_argument("--limit", type=shown_count, default=5, help="closest prior runs to show (default 5, at most 10000)")
    p.add_argument("--fail-on-similar", action="store_true",
                   help="exit 2 when the mode policy blocks the idea")
    add_json_flag(p)
    p.set_defaults(handler=run)


def code_signals(cwd: Path, history: JournalIndex, mode: str,
                 description: str) -> tuple[tuple[str, ...], list[dict], str]:
    """Fingerprints and change signature of the idea as it stands in the repository, plus a note."""
    text_facts = changes.text_changes(description)
    root = gitinfo.repo_root(cwd)
    if root is None:
        return (), changes.merge_changes([], text_facts), "not in a git repository: judged on the description"
    prov = gitinfo.provenance(root)
    head, parent = prov.get("commit"), prov.get("parent_commit")
    working = gitinfo.working_file(root, TRAIN_FILE)
    head_src = gitinfo.file_at(root, head, TRAIN_FILE) if head else None
    if working is None:
        return (), changes.merge_changes([], text_facts), f"no {TRAIN_FILE}: judged on the description"
    fp_work = changes.code_fingerprint(working)
    if head_src is None or changes.code_fingerprint(head_src) != fp_work:
        diff = changes.diff_constants(head_src, working) if head_src is not None else []
        return (fp_work,), changes.merge_changes(diff, text_facts), f"{TRAIN_FILE} edits vs HEAD"
    if history.latest_on_commit(head) is None:
        before = gitinfo.file_at(root, parent, TRAIN_FILE) if parent else None
        diff = changes.diff_constants(before, head_src) if before is not None else []
        return (fp_work,), changes.merge_changes(diff, text_facts), "HEAD (not yet logged) vs its parent"
    if mode == "replicate":
        return (fp_work,), changes.merge_changes([], text_facts), "replicate: HEAD's code as logged"
    return (), changes.merge_changes([], text_facts), (
        f"{TRAIN_FILE} unchanged since a logged run: judged on the description")


def run(ctx: Context) -> int:
    args = ctx.args
    if not args.description.strip():
        raise MemoryLabError("description is empty: say what the next experiment changes")
    fingerprints, signature, note = code_signals(ctx.cwd, ctx.history, args.mode, args.description)
    data = verdict(ctx, Proposal(description=args.description, tags=clean_tags(args.tags), family=args.family,
                                 hypothesis=args.hypothesis, code_fingerprints=fingerprints,
                                 changes=tuple(signature)), note, args.mode, args.threshold, args.limit)
    ctx.emit(render(data), data)
    if ctx.json and data["breaker"]["message"]:
        warn(data["breaker"]["message"])
    blocked = data["breaker"]["state"] == "open" and not data["breaker"]["half_open"]
    if args.fail_on_similar and (data["decision"] == "block" or blocked):
        return 2
    return 0


def verdict(ctx: Context, proposal: Proposal, note: str, mode: str, threshold: float | None = None,
            limit: int = 5) -> dict:
    """The guard's verdict on ``proposal`` in ``mode``, with the breaker: what ``check`` prints, and what
    ``run`` asks before it trains (the same text, so a refusal reads the same in both)."""
    history = ctx.history
    kwargs = {"threshold": threshold} if threshold else {}
    result = history.novelty.classify(proposal, history.runs, mode=mode, limit=limit, **kwargs)
    data = {**result.to_dict(), "code_signals": note, "change_signature": list(proposal.changes),
            "history_runs": len(history.runs), "breaker": load_breaker(history, ctx.arena).info()}
    now = time.time()
    data["breaker"]["half_open"] = half_open(data["breaker"], now)  # an open breaker lets one probe through
    data["breaker"]["message"] = breaker_message(data["breaker"], now)
    return data


def render(data: dict) -> str:
    """Human text: verdict line, reasons, closest runs."""
    breaker = data["breaker"]
    held = " — but the circuit breaker is OPEN: BLOCK until it half-opens" if breaker["state"] == "open" \
        and not breaker.get("half_open") and data["decision"] != "block" else ""
    lines = [f"{data['classification']} → {data['decision'].upper()}{held} (mode {data['mode']}, "
             f"{data['history_runs']} runs in history)"]
    if data["breaker"].get("message"):
        lines.insert(0, data["breaker"]["message"])
    if data.get("matched_part"):
        lines.append(f"  contains an earlier failed change: {data['matched_part']}")
    lines += [f"  - {reason}" for reason in data.get("reasons") or []]
    lines.append(f"  code signals: {data['code_signals']}")
    if data.get("change_signature"):
        moves = ", ".join(changes.fact_text(c) for c in data["change_signature"])
        lines.append(f"  change signature: {moves}")
    matches = data.get("matches") or []
    if matches:
        lines.append("closest prior runs:")
        for m in matches:
            val = "—" if m.get("val_bpb") is None else f"{m['val_bpb']:.6f}"
            lines.append(f"  {m['score']:.2f}  {m['status']:<7} {val:>9}  {m['run_id']}  "
                         f"[{'+'.join(m.get('signals') or [])}] {_one_line(m.get('description'))}")
    return "\n".join(lines)


def _one_line(text: str | None, width: int = 90) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
