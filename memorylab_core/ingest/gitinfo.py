"""Git provenance for run records, through the git CLI.

Standard library only: every query is one ``git -C <cwd> ...`` subprocess with a timeout,
``GIT_TERMINAL_PROMPT=0`` (never wait for credentials), ``LC_ALL=C`` (stable messages) and
``GIT_OPTIONAL_LOCKS=0`` (read-only queries never take the index lock that a concurrent
agent's ``git commit`` needs). Inherited ``GIT_DIR``/``GIT_WORK_TREE``/``GIT_INDEX_FILE`` are
dropped so the repository is always the one at ``cwd`` (they are set inside git hooks).

Nothing here raises for "not a repository", "git is not installed", a bad revision or a
timeout: such queries return None (or ``""`` for diffs), and the caller records that the
provenance is unknown. Paths are relative to ``cwd``, as git pathspecs are.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

GIT_TIMEOUT_S = 10.0
DIFF_TIMEOUT_S = 30.0
_DROPPED_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX", "GIT_OBJECT_DIRECTORY")
_DIFF_FLAGS = ("--no-color", "--no-ext-diff", "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/")


def _git_env() -> dict[str, str]:
    """Environment for git: no prompts, C locale, no optional locks, no inherited repo."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", LANG="C", GIT_OPTIONAL_LOCKS="0")
    return env


def _run(
    cwd: str | os.PathLike[str], *args: str, timeout: float = GIT_TIMEOUT_S, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes] | None:
    """Run ``git -C cwd args``; None when git is missing, cannot start, or times out."""
    cmd = ["git", "-C", os.fspath(cwd), *args]
    try:
        return subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, env=_git_env())
    except (OSError, subprocess.SubprocessError):
        return None


def _out(cwd: str | os.PathLike[str], *args: str, timeout: float = GIT_TIMEOUT_S) -> str | None:
    """Stdout of a successful git command (UTF-8, invalid bytes replaced), else None."""
    proc = _run(cwd, *args, timeout=timeout)
    if proc is None or proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", errors="replace")


def _line(cwd: str | os.PathLike[str], *args: str) -> str | None:
    """First output line of a successful git command, stripped; None when empty or failed."""
    out = _out(cwd, *args)
    value = out.strip().splitlines()[0] if out and out.strip() else None
    return value or None


def _safe_rev(rev: str | None) -> bool:
    """Reject empty revisions and ones that git would parse as an option."""
    return bool(rev) and not rev.startswith("-")


def repo_root(cwd: str | os.PathLike[str]) -> Path | None:
    """Top-level directory of the work tree containing ``cwd``, or None outside a repo."""
    top = _line(cwd, "rev-parse", "--show-toplevel")
    return Path(top) if top else None


def provenance(cwd: str | os.PathLike[str], path: str = "train.py") -> dict[str, Any]:
    """Where a run's code came from: ``branch, commit, parent_commit, short_commit, dirty``.

    ``branch`` is None on a detached HEAD (rather than the pseudo-name ``HEAD``, which would
    lump every detached run into one fake branch). ``parent_commit`` is the first parent, None
    for a root commit. ``dirty`` says whether ``path`` differs from HEAD (staged, unstaged,
    deleted or untracked). In a repository with no commits the commit fields are None. Outside
    a repository, or without git, every field is None.
    """
    info: dict[str, Any] = dict.fromkeys(("branch", "commit", "parent_commit", "short_commit", "dirty"))
    if repo_root(cwd) is None:
        return info
    info["branch"] = _line(cwd, "symbolic-ref", "--quiet", "--short", "HEAD")
    head = _line(cwd, "log", "-1", "--format=%H %h %P", "HEAD", "--")
    if head:
        fields = head.split()
        info["commit"], info["short_commit"] = fields[0], fields[1]
        info["parent_commit"] = fields[2] if len(fields) > 2 else None
    info["dirty"] = _is_dirty(cwd, path)
    return info


def _is_dirty(cwd: str | os.PathLike[str], path: str) -> bool | None:
    """Whether ``path`` has any change against HEAD, including being untracked."""
    out = _out(cwd, "status", "--porcelain=v1", "--untracked-files=all", "--", path)
    return None if out is None else bool(out.strip())


def file_at(cwd: str | os.PathLike[str], commit: str, path: str) -> str | None:
    """Content of ``path`` at ``commit`` (UTF-8, invalid bytes replaced); None if absent."""
    if not _safe_rev(commit):
        return None
    return _out(cwd, "cat-file", "blob", f"{commit}:./{path}")


def working_file(cwd: str | os.PathLike[str], path: str) -> str | None:
    """Content of ``path`` in the working tree (UTF-8, lenient); None if missing/unreadable."""
    try:
        return (Path(cwd) / path).read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return None


def empty_tree(cwd: str | os.PathLike[str]) -> str | None:
    """Id of the empty tree in this repo's hash (differs between SHA-1 and SHA-256 repos)."""
    proc = _run(cwd, "hash-object", "-t", "tree", "--stdin")
    if proc is None or proc.returncode != 0:
        return None
    return proc.stdout.decode("ascii", errors="replace").strip() or None


def diff_patch(
    cwd: str | os.PathLike[str], old_commit: str | None, new_commit: str, path: str = "train.py"
) -> str:
    """Unified diff of ``path`` from ``old_commit`` to ``new_commit``.

    ``old_commit=None`` diffs against the empty tree (a root commit's patch adds the whole
    file). Returns ``""`` when the file is identical, and also when git cannot answer (not a
    repository, unknown commit): a missing patch must not stop a run from being logged.
    """
    old = old_commit if old_commit is not None else empty_tree(cwd)
    if not (_safe_rev(old) and _safe_rev(new_commit)):
        return ""
    out = _out(cwd, "diff", *_DIFF_FLAGS, old, new_commit, "--", path, timeout=DIFF_TIMEOUT_S)
    return out or ""


def working_diff(cwd: str | os.PathLike[str], path: str = "train.py") -> str:
    """Diff of ``path`` from HEAD to the working tree (staged and unstaged), for ``check``.

    An untracked file (or any file in a repository with no commits yet) is shown as wholly
    added. Returns ``""`` when unchanged or when git cannot answer.
    """
    if repo_root(cwd) is None:
        return ""
    head = _line(cwd, "rev-parse", "--verify", "--quiet", "HEAD")
    in_index = _out(cwd, "ls-files", "--error-unmatch", "--", path) is not None
    if not in_index and (head is None or file_at(cwd, head, path) is None):
        return _untracked_diff(cwd, path)
    base = head or empty_tree(cwd)
    if not base:
        return ""
    return _out(cwd, "diff", *_DIFF_FLAGS, base, "--", path, timeout=DIFF_TIMEOUT_S) or ""


def _untracked_diff(cwd: str | os.PathLike[str], path: str) -> str:
    """Diff of an untracked file against nothing (``git diff --no-index`` exits 1 on change)."""
    if not (Path(cwd) / path).is_file():
        return ""
    proc = _run(cwd, "diff", "--no-index", *_DIFF_FLAGS, "--", os.devnull, path, timeout=DIFF_TIMEOUT_S)
    if proc is None or proc.returncode not in (0, 1):
        return ""
    return proc.stdout.decode("utf-8", errors="replace")
