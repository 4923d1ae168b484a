"""Subcommands, one module each, imported on demand.

``COMMANDS`` maps each command name to its module and fixes the order in ``--help``. A process runs
one command, so the CLI imports only that command's module (and what it imports) unless it needs the
whole parser; importing every module eagerly was a large share of each command's start-up.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

COMMANDS: dict[str, str] = {
    "init": "init",
    "check": "check",
    "log": "log",
    "run": "run",
    "replicate": "replicate",
    "champion": "champion",
    "report": "report",
    "import": "importing",
    "show": "show",
    "list": "listing",
    "export": "export",
    "guide": "guide",
    "insights": "insights",
    "status": "status",
    "migrate": "migrate",
}


def load(name: str) -> ModuleType:
    """The module that registers command ``name`` (it exposes ``register(subparsers)``)."""
    return import_module(f"{__name__}.{COMMANDS[name]}")
