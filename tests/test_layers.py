"""The folders of memorylab_core are layers and imports only go down (issue 23).

The contract lives in pyproject.toml (``[tool.importlinter]``) and is checked by import-linter, a dev
dependency; docs/architecture.md draws the same order. These tests run the contract on the package as
it is, prove that it catches an upward import hidden inside a function, and keep the doc's list equal
to the contract's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")

ROOT = Path(__file__).resolve().parents[1]


def _contract() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = config["tool"]["importlinter"]["contracts"]
    return contract


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` over the package under ``cwd`` (its pyproject.toml), no cache."""
    pytest.importorskip("importlinter", reason="import-linter is a dev dependency: pip install -e '.[dev]'")
    script = Path(sys.executable).with_name("lint-imports")
    command = [str(script)] if script.exists() else [shutil.which("lint-imports") or "lint-imports"]
    return subprocess.run([*command, "--no-cache", "--no-logo"], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_the_package_keeps_its_layers() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_inside_a_function_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "memorylab_core", tmp_path / "memorylab_core",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "memorylab_core" / "ledger" / "upward.py").write_text(
        '"""A ledger module that reaches up to the commands."""\n\n\n'
        "def usage() -> object:\n"
        '    """Imported on call only: still an import the contract must see."""\n'
        "    from ..commands import common\n\n"
        "    return common\n")
    result = _lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "memorylab_core.ledger is not allowed to import memorylab_core.commands" in result.stdout
    assert "memorylab_core.ledger.upward -> memorylab_core.commands.common" in result.stdout


def test_a_folder_outside_the_layers_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "memorylab_core", tmp_path / "memorylab_core",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "memorylab_core" / "misc").mkdir()
    (tmp_path / "memorylab_core" / "misc" / "__init__.py").write_text('"""Belongs to no layer."""\n')
    result = _lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "memorylab_core.misc" in result.stdout


def test_the_architecture_doc_draws_the_contracts_order() -> None:
    """docs/architecture.md's "Layers" block lists one layer a line, top first, as the contract does."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"^## Layers.*?^```\n(.*?)^```", doc, re.S | re.M)
    assert block, "docs/architecture.md has no '## Layers' section with a code block"
    drawn = [line.split()[0].rstrip("/").removesuffix(".py") for line in block.group(1).splitlines() if line.strip()]
    assert drawn == _contract()["layers"]
    assert (ROOT / "memorylab_core" / "cli.py").exists()
    assert all((ROOT / "memorylab_core" / name / "__init__.py").exists() for name in drawn if name != "cli")
