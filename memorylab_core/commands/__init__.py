"""Subcommands, one module each; ``COMMANDS`` fixes their order in ``--help``."""

from . import check, init, log, report

COMMANDS = (init, check, log, report)
