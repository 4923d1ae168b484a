"""Subcommands, one module each; ``COMMANDS`` fixes their order in ``--help``."""

from . import (
    champion,
    check,
    export,
    guide,
    importing,
    init,
    insights,
    listing,
    log,
    replicate,
    report,
    run,
    show,
    status,
)

COMMANDS = (init, check, log, run, replicate, champion, report, importing, show, listing, export, guide, insights,
            status)
