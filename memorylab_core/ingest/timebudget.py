"""The training time budget and ``memorylab run``'s default wall-clock limit, without importing torch.

prepare.py picks its profile with torch (``gpu`` when CUDA is available, else ``cpu``) and keeps each
profile's ``time_budget`` in its ``PROFILES`` table. MemoryLab must not import torch, so it asks
prepare.py itself, with the interpreter that will train, so the run timeout and the training use
one GPU detection:

1. profile: ``$AUTORESEARCH_PROFILE`` when set, else what ``<python> prepare.py --print-profile``
   says (prepare.py's own detection), else -- no prepare.py, or it could not answer -- ``gpu`` when
   an NVIDIA driver is visible (``/proc/driver/nvidia/version`` or ``nvidia-smi`` on PATH), else
   ``cpu``;
2. budget: ``$AUTORESEARCH_TIME_BUDGET`` when set (train.py honours it too), else the profile's
   ``time_budget`` read from prepare.py's ``PROFILES`` literal with :mod:`ast` (no code is run),
   else upstream's numbers (gpu 300 s, cpu 60 s);
3. limit: ``2 * budget + STARTUP_MARGIN_S`` -- the budget covers training only, and startup,
   compilation and the final evaluation come on top. ``--timeout`` overrides it.
4. clock: the cpu profile's budget counts the training process's CPU seconds (train.py, issue 22),
   so a run on a busy machine takes longer in wall time and is slow, not hung: its default limit is
   on the same clock (``"cpu"``: launcher.Deadline). The gpu profile keeps wall seconds, and so does
   an explicit ``--timeout``.
"""

from __future__ import annotations

import ast
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

STARTUP_MARGIN_S = 120.0
ASK_TIMEOUT_S = 120.0  # prepare.py --print-profile imports torch: seconds, rarely more
FALLBACK_BUDGETS = {"gpu": 300.0, "cpu": 60.0}
PROFILES = ("gpu", "cpu")


@dataclass(frozen=True)
class Budget:
    profile: str
    budget_s: float
    source: str  # where the budget came from

    @property
    def timeout_s(self) -> float:
        return 2.0 * self.budget_s + STARTUP_MARGIN_S

    @property
    def clock(self) -> str:
        """The clock of the default limit: ``cpu`` on the cpu profile (train.py counts its budget in CPU
        seconds there), else ``wall``."""
        return "cpu" if self.profile == "cpu" else "wall"


def nvidia_visible() -> bool:
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def detect_profile(env: Mapping[str, str], workspace: Path | None = None, python: str | None = None) -> str:
    wanted = (env.get("AUTORESEARCH_PROFILE") or "").strip()
    if wanted in PROFILES:
        return wanted
    asked = ask_prepare(workspace, python) if workspace is not None else None
    if asked is not None:
        return asked
    return "gpu" if nvidia_visible() else "cpu"


def ask_prepare(workspace: Path, python: str | None = None) -> str | None:
    """The profile ``prepare.py --print-profile`` reports (None when there is no prepare.py or no answer)."""
    if not (workspace / "prepare.py").is_file():
        return None
    try:
        out = subprocess.run([python or sys.executable, "prepare.py", "--print-profile"], cwd=workspace,
                             capture_output=True, text=True, timeout=ASK_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in reversed(out.stdout.splitlines()):
        try:
            answer = json.loads(line)
        except ValueError:
            continue
        profile = answer.get("profile") if isinstance(answer, dict) else None
        return profile if profile in PROFILES else None
    return None


def profile_budgets(prepare_py: Path) -> dict[str, float]:
    """``{profile: time_budget}`` from prepare.py's ``PROFILES = {...: dict(time_budget=...)}``, or {}."""
    try:
        tree = ast.parse(prepare_py.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "PROFILES" for t in node.targets):
            return _budgets_from(node.value)
    return {}


def _budgets_from(node: ast.expr) -> dict[str, float]:
    if not isinstance(node, ast.Dict):
        return {}
    out = {}
    for key, value in zip(node.keys, node.values, strict=True):
        name = key.value if isinstance(key, ast.Constant) else None
        budget = _keyword(value, "time_budget")
        if isinstance(name, str) and budget is not None:
            out[name] = budget
    return out


def _keyword(node: ast.expr, name: str) -> float | None:
    """``name``'s literal value in ``dict(name=...)`` or ``{"name": ...}``."""
    pairs: list[tuple[object, ast.expr]] = []
    if isinstance(node, ast.Call):
        pairs = [(kw.arg, kw.value) for kw in node.keywords]
    elif isinstance(node, ast.Dict):
        keys = [k.value if isinstance(k, ast.Constant) else None for k in node.keys]
        pairs = list(zip(keys, node.values, strict=True))
    for key, value in pairs:
        if key == name:
            try:
                number = ast.literal_eval(value)
            except ValueError:
                return None
            if isinstance(number, (int, float)) and not isinstance(number, bool) and number > 0:
                return float(number)
    return None


def resolve(env: Mapping[str, str], workspace: Path, python: str | None = None) -> Budget:
    """The profile and training budget the next run will use (see module docstring); ``python`` is
    the interpreter of the training command, which is the one asked."""
    profile = detect_profile(env, workspace, python)
    raw = env.get("AUTORESEARCH_TIME_BUDGET")
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value > 0:
            return Budget(profile, value, "AUTORESEARCH_TIME_BUDGET")
    budgets = profile_budgets(workspace / "prepare.py")
    if profile in budgets:
        return Budget(profile, budgets[profile], "prepare.py")
    return Budget(profile, FALLBACK_BUDGETS[profile], "default")
