"""``memorylab init``: create the store layout (idempotent) and say where everything is."""

from __future__ import annotations

import argparse

from .common import Context, add_json_flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="create the store layout (safe to repeat)",
                       description="Create the store layout under the store root. Idempotent: existing "
                                   "files are never touched.")
    add_json_flag(p)
    p.set_defaults(handler=run)


def run(ctx: Context) -> int:
    store = ctx.store
    created = store.init()
    paths = {
        "root": str(store.root),
        "ledger": str(store.ledger_path),
        "registry": str(store.registry_path),
        "reports": str(store.reports_dir),
        "runs": str(store.runs_dir),
        "results_tsv": str(store.tsv_path),
    }
    lines = [f"MemoryLab store {'created' if created else 'already initialised'} at {store.root}"]
    lines += [f"  {name:<12} {path}" for name, path in paths.items() if name != "root"]
    ctx.emit("\n".join(lines), {"created": [str(p) for p in created], **paths})
    return 0
