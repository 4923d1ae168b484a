"""The CLI reference must keep up with the parser: every command and option is documented."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from memorylab_core.cli import build_parser

DOC = Path(__file__).resolve().parent.parent / "docs" / "memorylab_api.md"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_and_option_is_documented():
    text = DOC.read_text()
    missing = []
    for name, sub in _subcommands().items():
        if f"## `{name}" not in text:
            missing.append(f"section for {name}")
        for action in sub._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help" and f"`{option}" not in text:
                    missing.append(f"{name} {option}")
    assert not missing, f"undocumented in docs/memorylab_api.md: {missing}"


def test_every_source_file_the_docs_name_exists():
    """A reader who opens the file a doc names finds it."""
    root = DOC.parent.parent
    texts = {p: p.read_text() for p in [*root.glob("docs/*.md"), root / "README.md", root / "program.md"]}
    missing = []
    for path, text in texts.items():
        for name in set(re.findall(r"memorylab_core/[\w/]+\.py", text)):
            if not (root / name).exists():
                missing.append(f"{path.name}: {name}")
    assert not missing, missing
