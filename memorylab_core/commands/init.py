"""``memorylab init``: create the store layout (idempotent) and say where everything is."""

from __future__ import annotations

import argparse

from ..ledger.store import Store, atomic_write_json, os_reason, warn
from .common import Context, add_json_flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="create the store layout (safe to repeat)",
                       description="Create the store layout under the store root, and the compatibility "
                                   "results.tsv (upstream's header) in the workspace. Idempotent: existing "
                                   "files are never touched.")
    add_json_flag(p)
    p.set_defaults(handler=run)


def run(ctx: Context) -> int:
    store = ctx.store
    created = store.init()
    if _write_registry(ctx):
        created.append(store.registry_path)
    if _write_tsv(store):
        created.append(store.tsv_path)
    paths = {
        "root": str(store.root),
        "ledger": store.journal.label,
        "registry": str(store.registry_path),
        "reports": str(store.reports_dir),
        "runs": str(store.runs_dir),
        "results_tsv": str(store.tsv_path),
    }
    where = store.root if store.is_file else f"{store.journal.label} (this host's index and archive: {store.root})"
    lines = [f"MemoryLab store {'created' if created else 'already initialised'} at {where}"]
    lines += [f"  {name:<12} {path}" for name, path in paths.items() if name != "root"]
    ctx.emit("\n".join(lines), {"created": [str(p) for p in created], **paths})
    return 0


def _write_registry(ctx: Context) -> bool:
    """Write the registry snapshot if the store has none yet (DESIGN: ``init`` writes it too): empty for
    a new store, folded from the ledger for one that lost it. Returns whether it was written."""
    store = ctx.store
    if store.registry_path.exists():
        return False
    history = ctx.history
    with store.lock():
        history.refresh(locked=True)
        if store.registry_path.exists():
            return False
        atomic_write_json(store.registry_path, history.snapshot())
    return True


def _write_tsv(store: Store) -> bool:
    """Create the workspace's results.tsv when missing; a workspace that cannot be written only warns
    (the store is what ``init`` is for). Returns whether it was created."""
    try:
        return store.init_tsv()
    except OSError as exc:
        warn(f"results.tsv could not be created ({os_reason(exc)}); 'memorylab export -f tsv -o results.tsv' "
             "writes it later")
        return False
