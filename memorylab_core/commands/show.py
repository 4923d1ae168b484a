"""``memorylab show RUN_ID``: one run in full (record, packet, artifacts)."""

from __future__ import annotations

import argparse

from ..ledger.model import shown_status
from ..ledger.store import MemoryLabError, is_safe_run_id
from ..novelty.changes import fact_text
from .common import Context, add_json_flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="show one run in full",
                       description="Show one run: its ledger record, decision packet and archived artifacts. "
                                   "RUN_ID may be a full id, a unique id prefix, or a commit (prefix).")
    p.add_argument("run_id", metavar="RUN_ID", help="run id, unique run-id prefix, or commit sha prefix")
    add_json_flag(p)
    p.set_defaults(handler=run)


def artifact_paths(ctx: Context, record: dict) -> dict[str, dict]:
    """Archived files of a record, resolved inside the store only (a doctored path is refused);
    the fork's repository-relative paths are read as the store's (:meth:`Store.artifact_file`)."""
    found = {}
    for name, rel in (record.get("artifacts") or {}).items():
        path = ctx.store.artifact_file(rel)
        found[name] = {"path": str(path) if path else None, "exists": bool(path) and path.exists(),
                       "outside_store": path is None}
    return found


def run(ctx: Context) -> int:
    ref = ctx.args.run_id.strip()
    if not is_safe_run_id(ref):
        raise MemoryLabError(f"invalid run id {ref!r}: ids are letters, digits, '-', '_' and '.'")
    found = ctx.history.find(ref)
    if found is None:
        count, matches = ctx.history.prefix_matches(ref)
        if count > 1:
            raise MemoryLabError(f"run id prefix {ref!r} is ambiguous: {count} runs match "
                                 f"({', '.join(matches)}{', …' if count > 3 else ''}); give more of the id")
        raise MemoryLabError(f"no run {ref!r} in {ctx.store.journal.label} (see 'memorylab list')")
    record = ctx.history.record(found)
    if record.get("run_id") != found.run_id:  # the line at its place no longer holds it (edited by hand)
        raise MemoryLabError(f"run {found.run_id}'s line in {ctx.store.journal.label} no longer reads as that run "
                             "(was the journal edited by hand?): nothing to show")
    ctx.store.materialize_artifacts(found.run_id, found.offset)  # a shared journal carries them
    artifacts = artifact_paths(ctx, record)
    ctx.emit(render(record, artifacts), {"record": record, "artifact_files": artifacts})
    return 0


def _git_line(record: dict) -> str:
    """``branch @ commit (parent p)``, each part only when known."""
    commit = (record.get("commit") or "")[:12]
    if not commit:
        return "unknown (no commit recorded)"
    branch = f"{record['branch']} @ " if record.get("branch") else ""
    parent = f" (parent {record['parent_commit'][:12]})" if record.get("parent_commit") else ""
    return f"{branch}{commit}{parent}"


def render(record: dict, artifacts: dict) -> str:
    metrics = record.get("metrics") or {}
    packet = record.get("decision_packet") or {}
    novelty = record.get("novelty_guard") or {}
    val = metrics.get("val_bpb")
    lines = [
        f"run {record.get('run_id')}  [{shown_status(record.get('status'), record.get('role'))}]  "
        f"{record.get('timestamp_utc') or ''}",
        f"  description: {record.get('description')}",
        f"  val_bpb:     {'none (no measurement)' if val is None else f'{val:.6f}'}"
        + ("" if metrics.get("memory_gb") is None else f"   memory: {metrics['memory_gb']} GB"),
        f"  git:         {_git_line(record)}",
    ]
    for key in ("family", "hypothesis", "notes"):
        if record.get(key):
            lines.append(f"  {key + ':':<12} {record[key]}")
    if record.get("tags"):
        lines.append(f"  tags:        {', '.join(record['tags'])}")
    if record.get("error"):
        error = record["error"]
        lines.append(f"  error:       [{error.get('kind') or 'unknown kind'}] {error.get('summary') or 'no message'}")
    if novelty:
        policy = novelty.get("policy")  # the fork nests the decision there
        decision = novelty.get("decision") or (policy.get("decision") if isinstance(policy, dict) else None)
        lines.append(f"  novelty:     {novelty.get('classification')} ({decision or 'no policy decision'})")
    if packet:
        lines.append(f"  decision:    {packet.get('next_action')} ({packet.get('priority')}): "
                     f"{packet.get('rationale')}")
    changes = record.get("change_signature") or []
    if changes:
        lines.append("  changes:     " + ", ".join(fact_text(c) for c in changes if isinstance(c, dict)))
    for name, info in artifacts.items():
        state = "outside store, refused" if info["outside_store"] else ("ok" if info["exists"] else "missing")
        lines.append(f"  {name + ':':<12} {info['path'] or '—'} ({state})")
    lines.append("  (--json prints the whole record)")
    return "\n".join(lines)
