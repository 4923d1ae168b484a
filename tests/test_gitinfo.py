"""Tests for memorylab_core.ingest.gitinfo against real git repositories in tmp dirs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from memorylab_core.ingest import gitinfo

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")

V1 = "LR = 0.04\nDEPTH = 8\n"
V2 = "LR = 0.02\nDEPTH = 8\n"


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` for test setup and return stripped stdout."""
    cmd = ["git", "-c", "init.defaultBranch=main", "-C", str(repo), *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def commit_file(repo: Path, content: str, message: str, path: str = "train.py") -> str:
    """Write ``path``, commit it and return the new commit sha."""
    (repo / path).write_text(content)
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty repository on branch ``main`` with a local identity."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "commit.gpgsign", "false")
    return root


@pytest.fixture
def two_commits(repo: Path) -> tuple[Path, str, str]:
    """The repo with train.py committed twice (V1, then V2)."""
    first = commit_file(repo, V1, "first")
    second = commit_file(repo, V2, "second")
    return repo, first, second


def test_repo_root(two_commits: tuple[Path, str, str]) -> None:
    repo, _, _ = two_commits
    sub = repo / "sub"
    sub.mkdir()
    assert gitinfo.repo_root(sub).resolve() == repo.resolve()


def test_provenance_two_commits(two_commits: tuple[Path, str, str]) -> None:
    repo, first, second = two_commits
    info = gitinfo.provenance(repo)
    assert info == {
        "branch": "main",
        "commit": second,
        "parent_commit": first,
        "short_commit": info["short_commit"],
        "dirty": False,
    }
    assert second.startswith(info["short_commit"]) and len(info["short_commit"]) >= 7
    (repo / "train.py").write_text(V1 + "# edit\n")
    assert gitinfo.provenance(repo)["dirty"] is True


def test_provenance_root_commit_and_patch_vs_empty_tree(repo: Path) -> None:
    root = commit_file(repo, V1, "root")
    info = gitinfo.provenance(repo)
    assert info["commit"] == root and info["parent_commit"] is None
    patch = gitinfo.diff_patch(repo, None, root)
    assert "--- /dev/null" in patch and "+++ b/train.py" in patch
    assert "+LR = 0.04" in patch


def test_provenance_detached_head(two_commits: tuple[Path, str, str]) -> None:
    repo, first, _ = two_commits
    git(repo, "checkout", "-q", "--detach", first)
    info = gitinfo.provenance(repo)
    assert info["branch"] is None and info["commit"] == first and info["parent_commit"] is None


def test_provenance_untracked_and_no_commits(repo: Path) -> None:
    (repo / "train.py").write_text(V1)
    info = gitinfo.provenance(repo)
    assert info["branch"] == "main" and info["commit"] is None and info["dirty"] is True
    assert "+LR = 0.04" in gitinfo.working_diff(repo)


def test_outside_repo_all_none(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "train.py").write_text(V1)
    info = gitinfo.provenance(plain)
    assert set(info) == {"branch", "commit", "parent_commit", "short_commit", "dirty"}
    assert all(value is None for value in info.values())
    assert gitinfo.repo_root(plain) is None
    assert gitinfo.file_at(plain, "HEAD", "train.py") is None
    assert gitinfo.diff_patch(plain, "HEAD~1", "HEAD") == ""
    assert gitinfo.working_diff(plain) == ""
    assert gitinfo.repo_root(tmp_path / "does-not-exist") is None


def test_git_missing_from_path(two_commits: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    repo, _, _ = two_commits
    monkeypatch.setenv("PATH", str(repo / "no-bin-here"))
    assert all(value is None for value in gitinfo.provenance(repo).values())
    assert gitinfo.diff_patch(repo, None, "HEAD") == ""


def test_file_at_and_working_file(two_commits: tuple[Path, str, str]) -> None:
    repo, first, second = two_commits
    assert gitinfo.file_at(repo, first, "train.py") == V1
    assert gitinfo.file_at(repo, second, "train.py") == V2
    assert gitinfo.file_at(repo, first, "missing.py") is None
    assert gitinfo.file_at(repo, "0" * 40, "train.py") is None
    assert gitinfo.file_at(repo, "--output=x", "train.py") is None
    assert gitinfo.working_file(repo, "train.py") == V2
    assert gitinfo.working_file(repo, "missing.py") is None


def test_diff_patch_content(two_commits: tuple[Path, str, str]) -> None:
    repo, first, second = two_commits
    patch = gitinfo.diff_patch(repo, first, second)
    assert "--- a/train.py" in patch and "+++ b/train.py" in patch
    assert "-LR = 0.04" in patch and "+LR = 0.02" in patch
    assert " DEPTH = 8" in patch
    assert gitinfo.diff_patch(repo, second, second) == ""
    assert gitinfo.diff_patch(repo, first, "no-such-rev") == ""


def test_diff_patch_ignores_user_diff_config(two_commits: tuple[Path, str, str]) -> None:
    repo, first, second = two_commits
    git(repo, "config", "diff.noprefix", "true")
    git(repo, "config", "color.diff", "always")
    patch = gitinfo.diff_patch(repo, first, second)
    assert "--- a/train.py" in patch and "\x1b[" not in patch


def test_working_diff(two_commits: tuple[Path, str, str]) -> None:
    repo, _, _ = two_commits
    assert gitinfo.working_diff(repo) == ""
    (repo / "train.py").write_text(V2.replace("DEPTH = 8", "DEPTH = 12"))
    diff = gitinfo.working_diff(repo)
    assert "-DEPTH = 8" in diff and "+DEPTH = 12" in diff
    git(repo, "add", "train.py")
    assert "+DEPTH = 12" in gitinfo.working_diff(repo)


def test_inherited_git_dir_is_ignored(
    two_commits: tuple[Path, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _, second = two_commits
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    assert gitinfo.provenance(repo)["commit"] == second
