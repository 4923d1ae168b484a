"""The one error type commands turn into a one-line message (kept apart so every ledger module can raise it)."""

from __future__ import annotations


class MemoryLabError(Exception):
    """An expected failure with a one-line message for the user; the CLI exits 1 with it."""
