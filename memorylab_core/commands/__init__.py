"""Subcommands, one module each; ``COMMANDS`` fixes their order in ``--help``."""

from . import check, export, guide, importing, init, insights, listing, log, report, show, status

COMMANDS = (init, check, log, report, importing, show, listing, export, guide, insights, status)
