"""Subcommands, one module each; ``COMMANDS`` fixes their order in ``--help``."""

from . import check, export, importing, init, listing, log, report, show

COMMANDS = (init, check, log, report, importing, show, listing, export)
