"""The promotion policy of one command: defaults, then ``<store>/promotion.json``, then flags."""

from __future__ import annotations

import argparse

from ..ledger.store import MemoryLabError
from ..policy.promotion import CONFIG_NAME, PolicyError, PromotionPolicy, read_policy_file
from .common import Context, positive_float, unit_float

FLAGS = (
    # (flag, policy field, type, help)
    ("--min-gain", "min_gain", float, "keep only if the gain over the champion's reference exceeds this (default 0)"),
    ("--max-memory-growth", "max_memory_growth", float,
     "keep only if peak memory grew at most this fraction over the champion's (default 0.15)"),
    ("--confirm-k", "confirm_k", positive_float, "confirm a single-run gain above K × noise level (default 3)"),
    ("--alpha", "alpha", unit_float, "confirm replicated gains at Welch p < ALPHA (default 0.05)"),
    ("--noise", "default_noise", positive_float,
     "noise level (sd of one run's val_bpb) before the ledger has replicates (default 0.002)"),
    ("--replicate-below", "replicate_below", float,
     "a kept gain under this many noise levels asks for replicates (default 0.25)"),
)


def add_policy_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("promotion policy (overrides <store>/promotion.json; docs/promotion.md)")
    for flag, dest, kind, text in FLAGS:
        group.add_argument(flag, dest=f"policy_{dest}", type=kind, metavar="X", help=text)


def load_policy(ctx: Context) -> PromotionPolicy:
    """Defaults, overridden by the store's promotion.json, overridden by this command's flags."""
    flags = {dest: getattr(ctx.args, f"policy_{dest}", None) for _, dest, _, _ in FLAGS}
    try:
        policy = read_policy_file(ctx.store.root / CONFIG_NAME)
        return PromotionPolicy.from_mapping({k: v for k, v in flags.items() if v is not None}, base=policy)
    except PolicyError as exc:
        raise MemoryLabError(f"bad promotion policy: {exc}") from exc
