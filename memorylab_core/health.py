"""Health signals of an unattended loop, counted in experiments (not hours)."""

from __future__ import annotations

from collections.abc import Sequence

from .model import Run


def crash_streak(runs: Sequence[Run]) -> int:
    """Consecutive crashes at the end of the ledger."""
    streak = 0
    for run in reversed(runs):
        if run.status != "crash":
            break
        streak += 1
    return streak


def runs_since_last_keep(runs: Sequence[Run]) -> int:
    """Runs logged after the last kept run (every run when nothing was kept)."""
    for distance, run in enumerate(reversed(runs)):
        if run.status == "keep":
            return distance
    return len(runs)
