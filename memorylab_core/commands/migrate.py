"""``memorylab migrate --to TARGET``: copy this store's journal into another backend (idempotent)."""

from __future__ import annotations

import argparse

from ..ledger.store import open_store
from .common import Context, add_json_flag, location


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "migrate", help="copy the journal to PostgreSQL or a directory",
        description="Copy every record of this store (--home / $MEMORYLAB_HOME), runs and events in order, "
                    "with its run archive, into TARGET: a postgresql:// URL or a store directory. Idempotent: "
                    "records already in TARGET are skipped, so it is safe to repeat or resume.")
    p.add_argument("--to", required=True, metavar="URL|DIR", type=location,
                   help="target: postgresql://user@host:port/db or a directory")
    p.add_argument("--to-index-dir", metavar="DIR", type=location,
                   help="this host's local directory for a PostgreSQL target (default under $XDG_CACHE_HOME)")
    add_json_flag(p)
    p.set_defaults(handler=run)


def run(ctx: Context) -> int:
    from ..index.journal_index import JournalIndex
    from ..ledger.migration import migrate

    target = open_store(ctx.args.to, ctx.cwd, ctx.args.to_index_dir)
    summary = migrate(ctx.store, target)
    history = JournalIndex.load(target, quiet=True)
    target.write_registry(history.snapshot, "the copy is done")
    text = (f"migrated {summary.source} → {summary.target}: {summary.copied} records copied, "
            f"{summary.already_there} already there, {summary.artifact_files} artifact files"
            + (f"; {summary.skipped_corrupt} corrupt lines skipped" if summary.skipped_corrupt else ""))
    ctx.emit(text, summary.to_dict())
    return 0
