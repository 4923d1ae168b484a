"""Start-up cost guards: one command imports one command module.

The CLI parses with a parser holding only the named command when it can (cli.parse_args); these tests
check that this gives exactly the full parser's result, and that the cheap path stays cheap.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from memorylab_core import cli
from memorylab_core.commands import COMMANDS

ROOT = Path(__file__).resolve().parent.parent


def _subcommands(parser: argparse.ArgumentParser) -> list[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def test_command_table_matches_what_the_modules_register():
    assert _subcommands(cli.build_parser()) == list(COMMANDS)
    for name in COMMANDS:
        assert _subcommands(cli.build_parser([name])) == [name]


@pytest.mark.parametrize("argv", [
    ["check", "-d", "raise matrix lr"],
    ["--home", "/tmp/x", "check", "-d", "depth 8 -> 10", "--json", "--mode", "exploit"],
    ["--home=/tmp/x", "report", "--json"],
    ["--home", "report", "list"],
    ["log", "-d", "x", "--status", "keep", "--summary", "s.json"],
    ["list"],
    ["status", "--json"],
])
def test_one_command_parser_gives_the_full_parsers_result(argv):
    assert cli._named_command(argv) in COMMANDS
    assert vars(cli.parse_args(argv)) == vars(cli.build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["chek"], [], ["--home"], ["-x", "check"]])
def test_arguments_without_a_leading_command_go_to_the_full_parser(argv):
    assert cli._named_command(argv) is None


@pytest.mark.parametrize("argv", [["check"], ["check", "--bogus"], ["log", "-d", "x"], ["chek"], ["--home"]])
def test_usage_errors_are_reported_by_the_full_parser(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(argv)
    err = capsys.readouterr().err
    with pytest.raises(SystemExit) as full:
        cli.build_parser().parse_args(argv)
    assert (exc.value.code, err) == (full.value.code, capsys.readouterr().err)
    assert exc.value.code == 1


def _probe(code: str) -> object:
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def test_parsing_one_command_imports_only_its_module():
    loaded = _probe(
        "import json, sys\n"
        "from memorylab_core.cli import parse_args\n"
        "parse_args(['check', '-d', 'x'])\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('memorylab_core.commands.'))))\n"
    )
    assert "memorylab_core.commands.check" in loaded
    assert not {"memorylab_core.commands.log", "memorylab_core.commands.report",
                "memorylab_core.commands.run"} & set(loaded)


@pytest.mark.parametrize(("argv", "absent"), [
    (["check", "-d", "x"], {"memorylab_core.render", "memorylab_core.ingest.runs", "memorylab_core.research.memory"}),
    (["report"], {"memorylab_core.ingest.runs", "memorylab_core.render.html_report", "memorylab_core.render.charts"}),
    (["log", "-d", "x", "--status", "keep"], {"memorylab_core.render.report", "memorylab_core.render.html_report"}),
])
def test_a_command_imports_only_the_layers_it_uses(argv, absent):
    """Start-up pays for what a command runs: the markdown report skips the dashboard and the log
    machinery, check skips rendering, log skips the report stack unless --report asks for it."""
    loaded = _probe(
        "import json, sys\n"
        "from memorylab_core.cli import parse_args\n"
        f"parse_args({argv!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    assert not absent & set(loaded), absent & set(loaded)
