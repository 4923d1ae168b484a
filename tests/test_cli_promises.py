"""The CLI's promises (DESIGN §5), driven as users drive it.

Exit 1 means nothing was appended; derived files written after an append fail as a warning that names
the recorded run; output paths never clobber the store; a store the user cannot write serves every
read command; derived files honour the umask; terminal output escapes control characters; Ctrl-C
and a closed pipe are quiet; absurd numbers are one-line errors. Every refused input leaves the
journal's sha256 unchanged.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from mlhelpers import MEMORYLAB, PROJECT, fake_run, ledger, log_run, make_repo, ml, records

from memorylab_core.ledger import store as store_module


@pytest.fixture()
def repo(tmp_path, monkeypatch):
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    return make_repo(tmp_path / "repo")


def store_dir(repo: Path) -> Path:
    return repo / "results" / "memorylab"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "missing"


def one_line_error(res) -> bool:
    return res.code == 1 and res.err.startswith("memorylab: error:") and res.err.count("\n") == 1


def warnings(res) -> list[str]:
    return [line for line in res.err.splitlines() if line.startswith("memorylab: warning:")]


# -- 1. exit codes keep their promise -------------------------------------------------------------------

def test_results_tsv_that_cannot_be_written_is_a_warning_and_the_run_is_recorded_once(repo):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    (repo / "results.tsv").unlink()
    (repo / "results.tsv").mkdir()  # a directory in the way: every write fails
    res = log_run(repo, "lower lr", "discard", 1.01)
    assert res.code == 0, res.err
    run_id = res.json()["run_id"]
    [warning] = [w for w in warnings(res) if "results.tsv" in w]
    assert f"run {run_id} is recorded" in warning and "export -f tsv" in warning
    assert [r["run_id"] for r in records(repo)].count(run_id) == 1
    assert ml("list", "--json", cwd=repo).json()[0]["run_id"] == run_id


def test_disk_full_after_the_append_is_a_warning_for_every_derived_file(repo, monkeypatch):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    lines_before = len(records(repo))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store_module, "atomic_write_bytes", full)  # packets, registry, reports, caches
    monkeypatch.setattr(store_module.Store, "append_tsv_row", full)
    log, summary = fake_run(repo, 0.99)
    res = ml("log", "-d", "deeper model", "--status", "keep", "--log", str(log), "--summary", str(summary),
             "--report", "--json", cwd=repo)
    assert res.code == 0, res.err
    run_id = res.json()["run_id"]
    assert "Traceback" not in res.err
    found = warnings(res)
    for name in ("champion_challenger.json", "decision_packet.json", "results.tsv", "latest.md"):
        assert any(name in w and "No space left" in w for w in found), (name, found)
    assert all(f"run {run_id} is recorded" in w for w in found if "latest.md" not in w)
    assert len(records(repo)) == lines_before + 1


def test_any_error_after_the_append_is_a_warning_not_exit_1(repo, monkeypatch):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    from memorylab_core.commands import log as log_command

    def broken(packet):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(log_command, "one_line", broken)  # used only after the run is recorded
    res = log_run(repo, "second idea", "discard", 1.02)
    assert res.code == 0
    [warning] = warnings(res)
    assert "Input/output error" in warning and f"after recording {records(repo)[-1]['run_id']}" in warning
    assert "results.tsv" in warning and "export -f tsv -o results.tsv" in warning  # what may lag, and the fix
    assert records(repo)[-1]["description"] == "second idea"


@pytest.mark.parametrize("error", ["disk I/O error", "database is locked"])
def test_an_index_that_keeps_failing_before_the_append_is_one_line_and_nothing_recorded(repo, monkeypatch, error):
    """Issue 26: an SQLite error escaped as a traceback. Before the append it is one line, exit 1, the
    journal untouched; a damaged index is discarded (after one rebuild and retry), a locked one kept."""
    import sqlite3

    from memorylab_core.novelty import guard

    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    journal = digest(ledger(repo))

    def failing(*args, **kwargs):
        raise sqlite3.OperationalError(error)

    monkeypatch.setattr(guard.NoveltyIndex, "classify", failing)
    res = log_run(repo, "second idea", "discard", 1.01)
    errors = [line for line in res.err.splitlines() if line.startswith("memorylab: error:")]
    assert res.code == 1 and len(errors) == 1 and res.err.splitlines()[-1] == errors[0], res.err
    assert digest(ledger(repo)) == journal and "Traceback" not in res.err
    index = store_dir(repo) / "index.sqlite"
    if "lock" in error:
        assert "the index is busy (database is locked); try again" in res.err and index.exists()
    else:
        assert "it is discarded and the next command rebuilds it from the journal" in res.err
        assert not index.exists()
    monkeypatch.undo()
    assert ml("list", "--json", cwd=repo).json()[0]["description"] == "baseline"


def test_a_read_command_whose_index_fails_runs_once_more_on_a_fresh_index(repo, monkeypatch):
    import sqlite3

    from memorylab_core.commands import listing

    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    calls = []
    real = listing.select

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.DatabaseError("database disk image is malformed")
        return real(*args, **kwargs)

    monkeypatch.setattr(listing, "select", flaky)
    res = ml("list", "--json", cwd=repo)
    assert res.code == 0 and len(calls) == 2 and res.json()[0]["description"] == "baseline"
    [warning] = warnings(res)
    assert "running the command again on an index folded afresh" in warning


def test_import_whose_registry_snapshot_fails_is_recorded_and_exit_0(repo):
    (repo / "old.tsv").write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
                                  "abc1234\t1.000000\t44.0\tkeep\tbaseline\n")
    assert ml("init", cwd=repo).code == 0
    registry = store_dir(repo) / "champion_challenger.json"
    registry.unlink()
    registry.mkdir()  # the snapshot's rename fails after the rows are appended
    res = ml("import", str(repo / "old.tsv"), cwd=repo)
    assert res.code == 0 and "Traceback" not in res.err
    assert any("kept" in w or "is recorded" in w for w in warnings(res)), res.err
    assert len(records(repo)) == 1
    again = ml("import", str(repo / "old.tsv"), "--json", cwd=repo)  # idempotent: the retry adds nothing
    assert again.json()["imported"] == 0 and len(records(repo)) == 1


def test_explicit_output_that_cannot_be_written_is_one_line_exit_1(repo, tmp_path, monkeypatch):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    journal = digest(ledger(repo))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store_module, "atomic_write_bytes", full)
    for command in (("report", "-o"), ("export", "-o")):
        res = ml(*command, str(tmp_path / "out.txt"), cwd=repo)
        assert one_line_error(res) and "No space left" in res.err, res.err
    assert digest(ledger(repo)) == journal


def _failing_ledger_syscall(monkeypatch, ledger_path: Path, name: str, code: int) -> None:
    """Make ``os.<name>`` on the ledger fail with ``code``; ``write`` first writes half the bytes."""
    real = getattr(os, name)
    calls = {"n": 0}

    def on_ledger(fd: int) -> bool:
        try:
            return os.readlink(f"/proc/self/fd/{fd}") == str(ledger_path)
        except OSError:
            return False

    def fake(fd, *args):
        if not on_ledger(fd):
            return real(fd, *args)
        calls["n"] += 1
        if name == "write" and calls["n"] == 1:
            return real(fd, args[0][: max(1, len(args[0]) // 2)])
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, name, fake)


@pytest.mark.parametrize("syscall, code", [("write", errno.ENOSPC), ("fsync", errno.EIO), ("write", errno.EFBIG)])
def test_failed_journal_append_is_one_line_and_leaves_the_journal_as_it_was(repo, monkeypatch, syscall, code):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    path = ledger(repo).resolve()
    before, runs_before = digest(path), sorted(os.listdir(store_dir(repo) / "runs"))
    tsv_before = digest(repo / "results.tsv")
    log, summary = fake_run(repo, 0.99)
    with monkeypatch.context() as patch:
        _failing_ledger_syscall(patch, path, syscall, code)
        res = ml("log", "-d", "deeper model", "--status", "keep", "--log", str(log), "--summary", str(summary),
                 cwd=repo)
    assert one_line_error(res), res.err
    assert os.strerror(code) in res.err and "nothing was recorded" in res.err
    assert digest(path) == before
    assert sorted(os.listdir(store_dir(repo) / "runs")) == runs_before
    assert digest(repo / "results.tsv") == tsv_before
    listed = ml("list", "--json", cwd=repo)
    assert listed.code == 0 and "warning" not in listed.err and len(listed.json()) == 1
    assert log_run(repo, "deeper model", "keep", 0.99).code == 0  # the retry records it once
    assert [r["description"] for r in records(repo)] == ["baseline", "deeper model"]


# -- 2. outputs never clobber the store -----------------------------------------------------------------

def _refused_targets(repo: Path, tmp_path: Path) -> list[Path]:
    root = store_dir(repo)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "ledger-link").symlink_to(root / "experiments.jsonl")
    os.link(root / "experiments.jsonl", tmp_path / "ledger-hardlink")
    os.link(root / "champion_challenger.json", tmp_path / "registry-hardlink")
    run_id = records(repo)[0]["run_id"]
    return [root / "experiments.jsonl", root / "experiments.jsonl.lock", root / "champion_challenger.json",
            root / "index.sqlite", root / "index.sqlite-wal", root / "index.sqlite-shm",
            root / "cache" / "x.json", root / "runs" / run_id / "run.log", root / "reports" / "latest.md",
            root / "reports" / "new.md", root / "new-file.md", root, tmp_path / "ledger-link",
            tmp_path / "ledger-hardlink", tmp_path / "registry-hardlink", fifo, tmp_path, Path("/dev/full"),
            Path("/dev/null")]


@pytest.mark.parametrize("command", [("report",), ("report", "--html"), ("export",), ("export", "-f", "csv")])
def test_output_paths_never_name_the_store_or_a_non_regular_file(repo, tmp_path, command):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    assert ml("report", cwd=repo).code == 0
    (tmp_path / "links").mkdir()
    targets = _refused_targets(repo, tmp_path / "links")
    for target in targets:
        before = digest(target) if target.is_file() else None
        journal = digest(ledger(repo))
        res = ml(*command, "-o", str(target), cwd=repo)
        assert one_line_error(res), (target, res.err)
        assert digest(ledger(repo)) == journal
        if before is not None and not target.name.startswith("index.sqlite"):  # the index may be refreshed
            assert digest(target) == before, target
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    assert not (store_dir(repo) / "new-file.md").exists() and not (store_dir(repo) / "reports" / "new.md").exists()
    ok = ml(*command, "-o", str(tmp_path / "out" / "file.txt"), cwd=repo)
    assert ok.code == 0 and (tmp_path / "out" / "file.txt").stat().st_size > 0


def test_export_may_rebuild_results_tsv(repo):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    (repo / "results.tsv").unlink()
    assert ml("export", "-f", "tsv", "-o", "results.tsv", cwd=repo).code == 0
    assert (repo / "results.tsv").read_text().count("\n") == 2


@pytest.mark.parametrize("plant", ["symlink to the journal", "hard link to the journal", "fifo", "symlink elsewhere"])
def test_results_tsv_is_no_side_door_into_the_journal(repo, tmp_path, plant):
    """Issue 26: a results.tsv symlink to experiments.jsonl made `log` write a TSV row into the journal; a
    FIFO made it hang after the append, holding the writers' lock. Now the row goes through the output
    guard, opens without following links or blocking, after the journal lock is released."""
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    tsv = repo / "results.tsv"
    tsv.unlink()
    outside = tmp_path / "outside.tsv"
    outside.write_text("untouched\n")
    if plant == "symlink to the journal":
        tsv.symlink_to(ledger(repo))
    elif plant == "hard link to the journal":
        os.link(ledger(repo), tsv)
    elif plant == "fifo":
        os.mkfifo(tsv)
    else:
        tsv.symlink_to(outside)
    res = subprocess.run([sys.executable, str(MEMORYLAB), "log", "-d", "second idea", "--status", "discard",
                          *_run_files(repo, 1.01), "--json"], cwd=repo, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    run_id = json.loads(res.stdout)["run_id"]
    [warning] = [w for w in res.stderr.splitlines() if "results.tsv" in w]
    assert f"run {run_id} is recorded" in warning and "export -f tsv" in warning
    assert all(line.startswith("{") for line in ledger(repo).read_text().splitlines())  # no TSV row in it
    assert [r["run_id"] for r in records(repo)][-1] == run_id
    assert outside.read_text() == "untouched\n"


def _run_files(repo: Path, val: float) -> list[str]:
    log, summary = fake_run(repo, val)
    return ["--log", str(log), "--summary", str(summary)]


def test_a_stuck_results_tsv_never_holds_the_journal_lock(repo, monkeypatch):
    """The results.tsv row is written after the journal lock is released (and under no journal lock)."""
    import fcntl

    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    real_fsync, free = os.fsync, []

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("results.tsv"):
            with open(store_dir(repo) / "experiments.jsonl.lock", "rb") as fh:  # fails if a writer holds it
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                free.append(True)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    assert log_run(repo, "second", "discard", 1.01).code == 0
    assert free == [True]


def test_summary_and_log_may_come_through_a_pipe_when_bounded(repo):
    """`--summary <(...)` was refused ("summary is not a file: /dev/fd/63"); a pipe is read once, and
    its bytes are what the archive keeps. An endless stream is refused in one line."""
    if shutil.which("bash") is None:
        pytest.skip("needs bash for process substitution")
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    log, summary = fake_run(repo, 0.99)
    script = (f'{sys.executable} {MEMORYLAB} log -d "piped inputs" --status keep --json '
              f'--summary <(cat {summary}) --log <(cat {log})')
    res = subprocess.run(["bash", "-c", script], cwd=repo, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    run_id = json.loads(res.stdout)["run_id"]
    archive = store_dir(repo) / "runs" / run_id
    assert (archive / "summary.json").read_bytes() == summary.read_bytes()
    assert (archive / "run.log").read_bytes() == log.read_bytes()
    assert records(repo)[-1]["metrics"]["val_bpb"] == 0.99
    journal = digest(ledger(repo))
    endless = ml("log", "-d", "endless", "--status", "keep", "--summary", "/dev/zero", cwd=repo)
    assert one_line_error(endless) and "streams more than" in endless.err
    assert digest(ledger(repo)) == journal


def _hostile_call(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """A CLI call that must end on its own (a FIFO in the store once made commands wait forever)."""
    return subprocess.run([sys.executable, str(MEMORYLAB), *args], cwd=repo, capture_output=True, text=True,
                          timeout=60)


def test_a_fifo_or_device_in_the_store_fails_fast_and_never_hangs(repo):
    """A FIFO where the journal belongs is a one-line error for every command; a FIFO or device where a policy or
    an archived summary belongs is a warning (the default policy, no loss curve), never a wait or a memory blow-up."""
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    store = store_dir(repo)
    journal = ledger(repo)
    kept = journal.read_bytes()
    journal.unlink()
    os.mkfifo(journal)
    for args in (("status",), ("list",), ("check", "-d", "depth 9"), ("log", "-d", "x", "--status", "keep",
                                                                       *_run_files(repo, 0.99))):
        res = _hostile_call(repo, *args)
        assert res.returncode == 1 and "experiments.jsonl: not a regular file" in res.stderr, (args, res.stderr)
        assert "Traceback" not in res.stderr
    journal.unlink()
    journal.write_bytes(kept)
    run_id = records(repo)[0]["run_id"]
    (store / "runs" / run_id / "summary.json").unlink()
    os.mkfifo(store / "runs" / run_id / "summary.json")
    (store / "promotion.json").symlink_to("/dev/zero")
    res = _hostile_call(repo, "log", "-d", "depth 9", "--status", "keep", *_run_files(repo, 0.99))
    assert res.returncode == 0 and "promotion.json: not a regular file" in res.stderr, res.stderr
    assert _hostile_call(repo, "report", "--html", "--output", str(repo / "page.html")).returncode == 0
    (store / "promotion.json").unlink()
    (store / "promotion.json").write_text('{"x": ' + "[" * 50_000 + "]" * 50_000 + "}")
    res = _hostile_call(repo, "champion")
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "nested too deeply" in res.stderr, res.stderr


def test_links_planted_in_a_shared_store_are_never_followed_by_writers(repo, tmp_path):
    """reports/ or runs/ replaced by a link to somewhere else, or a dangling lock-file link: writers refuse
    (a warning for a derived report, an error before an append) and nothing outside the store changes."""
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    store, outside = store_dir(repo), tmp_path / "outside"
    outside.mkdir()
    (outside / "latest.md").write_text("mine\n")
    shutil.rmtree(store / "reports")
    (store / "reports").symlink_to(outside)
    res = _hostile_call(repo, "report")
    assert res.returncode == 0 and "leads outside the store" in res.stderr, res.stderr
    shutil.rmtree(store / "runs")
    (store / "runs").symlink_to(outside)
    before = digest(ledger(repo))
    res = _hostile_call(repo, "log", "-d", "depth 9", "--status", "keep", *_run_files(repo, 0.99))
    assert res.returncode == 1 and "leads outside the store" in res.stderr and digest(ledger(repo)) == before
    (store / "runs").unlink()
    (store / "experiments.jsonl.lock").unlink()
    (store / "experiments.jsonl.lock").symlink_to(outside / "planted.lock")
    res = _hostile_call(repo, "log", "-d", "depth 9", "--status", "keep", *_run_files(repo, 0.99))
    assert res.returncode == 1 and digest(ledger(repo)) == before, res.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["latest.md"]
    assert (outside / "latest.md").read_text() == "mine\n"


# -- 3. read-only use, umask, init ---------------------------------------------------------------------------

def _unprivileged_python() -> list[str]:
    """A command prefix running Python as ``nobody`` with this checkout importable, or skip."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user (as a non-root user, chmod alone suffices)")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    prefix = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    probe = f"import sys; sys.path.insert(0, {str(PROJECT)!r}); import memorylab_core.cli"
    for python in (sys.executable, "/usr/bin/python3", shutil.which("python3") or ""):
        if python and subprocess.run([*prefix, python, "-c", probe], capture_output=True).returncode == 0:
            return [*prefix, python]
    pytest.skip("no Python interpreter that the user nobody can run with this checkout")


@pytest.fixture()
def shared_dir():
    """A temp folder other users can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="memorylab-ro-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["chmod", "-R", "u+w", str(path)], check=False)
    shutil.rmtree(path, ignore_errors=True)


READ_COMMANDS = [("list", "--json"), ("status",), ("guide",), ("insights",), ("champion",),
                 ("check", "-d", "raise the learning rate"), ("export", "-f", "csv"), ("report", "-o", "-")]


def test_read_commands_work_on_a_store_the_user_cannot_write(shared_dir):
    python = _unprivileged_python()
    repo = make_repo(shared_dir / "repo")
    for i, val in enumerate((1.0, 0.99, 1.01)):
        assert log_run(repo, f"idea {i}", "keep" if val < 1.01 else "discard", val).code == 0
    root = store_dir(repo)
    (root / "experiments.jsonl.lock").unlink()  # readers must not create it
    subprocess.run(["chmod", "-R", "a-w", str(root)], check=True)
    subprocess.run(["chmod", "-R", "a+rX", str(shared_dir)], check=True)
    journal = digest(root / "experiments.jsonl")
    run_id = records(repo)[0]["run_id"]
    env = {**os.environ, "MEMORYLAB_HOME": str(root), "HOME": str(shared_dir), "PYTHONPATH": str(PROJECT)}

    def as_nobody(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*python, str(MEMORYLAB), *args], cwd=shared_dir, env=env, capture_output=True,
                              text=True, timeout=60)

    for command in [*READ_COMMANDS, ("show", run_id)]:
        res = as_nobody(*command)
        assert res.returncode == 0 and "Traceback" not in res.stderr, (command, res.stderr)
        assert res.stdout.strip(), command
    report = as_nobody("report")
    assert report.returncode == 0 and "the report was built" in report.stderr
    refused = as_nobody("log", "-d", "x", "--status", "crash", "--error", "boom")
    assert refused.returncode == 1 and refused.stderr.strip().splitlines()[-1].startswith("memorylab: error:")
    assert "Traceback" not in refused.stderr
    assert digest(root / "experiments.jsonl") == journal
    assert not (root / "experiments.jsonl.lock").exists()


def test_readers_never_create_the_lock_file(repo):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    lock = store_dir(repo) / "experiments.jsonl.lock"
    lock.unlink()
    for command in (("list",), ("status",), ("check", "-d", "x"), ("export",), ("report", "-o", "-")):
        assert ml(*command, cwd=repo).code == 0
        assert not lock.exists(), command


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_derived_files_honour_the_umask(repo, umask, mode):
    old = os.umask(umask)
    try:
        assert log_run(repo, "baseline", "keep", 1.0).code == 0
        assert ml("report", "--html", cwd=repo).code == 0
    finally:
        os.umask(old)
    root = store_dir(repo)
    run_dir = root / "runs" / records(repo)[0]["run_id"]
    derived = [root / "champion_challenger.json", root / "reports" / "latest.md", root / "reports" / "latest.html",
               run_dir / "decision_packet.json", run_dir / "decision_packet.md", run_dir / "train.patch",
               *(root / "cache").glob("*.pickle")]
    for path in derived:
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


def test_init_writes_an_empty_registry_snapshot(repo):
    res = ml("init", "--json", cwd=repo)
    registry = store_dir(repo) / "champion_challenger.json"
    assert res.code == 0 and str(registry) in res.json()["created"]
    snapshot = json.loads(registry.read_text())
    assert snapshot["runs"] == 0 and snapshot["champion"] is None
    before = digest(registry)
    assert ml("init", cwd=repo).code == 0 and digest(registry) == before  # idempotent


# -- 4. terminal hygiene -------------------------------------------------------------------------------------

HOSTILE = "lr \x1b[2J\x1b]0;pwned\x07 up\rX \u202egnp.exe\u2066 \x9b31m end"
RAW = ("\x1b", "\r", "\x07", "\u202e", "\u2066", "\x9b")


def test_control_characters_are_escaped_in_terminal_output_and_exact_in_json(repo):
    assert log_run(repo, HOSTILE, "keep", 1.0, "--notes", HOSTILE, "--hypothesis", HOSTILE, "--tags",
                   "a\x1bb").code == 0
    run_id = records(repo)[0]["run_id"]
    for command in (("list",), ("show", run_id), ("check", "-d", HOSTILE), ("guide",), ("status",), ("insights",),
                    ("champion",), ("report", "-o", "-")):
        res = ml(*command, cwd=repo)
        assert res.code in (0, 2), (command, res.err)
        for raw in RAW:
            assert raw not in res.out and raw not in res.err, (command, raw)
    shown = ml("show", run_id, cwd=repo).out
    assert "\\x1b[2J" in shown and "\\u202e" in shown
    assert ml("list", "--json", cwd=repo).json()[0]["description"] == HOSTILE
    exported = ml("export", cwd=repo).out
    assert json.loads(exported.splitlines()[0])["description"] == HOSTILE  # data stays byte-exact
    # the markdown report on disk is read with `cat` too: it holds escapes, never the raw characters
    assert ml("report", cwd=repo).code == 0
    latest = (repo / "results" / "memorylab" / "reports" / "latest.md").read_text()
    assert "\\x1b\\[2J" in latest and not any(raw in latest for raw in RAW)  # ("[" escaped: no markdown link)


def test_interrupt_is_one_line_and_exit_130(repo, monkeypatch):
    from memorylab_core.commands import listing

    def interrupted(ctx):
        raise KeyboardInterrupt

    monkeypatch.setattr(listing, "run", interrupted)
    monkeypatch.setattr(listing, "register", _registering(listing.register, interrupted))
    assert ml("init", cwd=repo).code == 0
    res = ml("list", cwd=repo)
    assert (res.code, res.err, res.out) == (130, "memorylab: interrupted\n", "")


def _registering(register, handler):
    def wrapped(sub):
        register(sub)
        sub.choices["list"].set_defaults(handler=handler)
    return wrapped


INTERRUPT_AT = """
import runpy, sys
target, argv = sys.argv[1], sys.argv[2:]  # argv: memorylab.py and its arguments
class Interrupting:  # Ctrl-C arrives just as the target module is being imported
    def find_spec(self, name, path=None, module=None):
        if name == target:
            raise KeyboardInterrupt
sys.modules.pop(target, None)
sys.meta_path.insert(0, Interrupting())
sys.argv = argv
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("target", ["memorylab_core.cli", "memorylab_core.commands.listing",
                                    "memorylab_core.index.journal_index"])
def test_interrupt_during_start_up_is_one_line_and_exit_130(repo, target):
    assert ml("init", cwd=repo).code == 0
    proc = subprocess.run([sys.executable, "-c", INTERRUPT_AT, target, str(MEMORYLAB), "list"], cwd=repo,
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(PROJECT)})
    assert (proc.returncode, proc.stderr) == (130, "memorylab: interrupted\n")


INTERRUPT_AFTER_WRITE = """
import os, runpy, signal, sys
from memorylab_core.ledger import journal
written = journal.FileJournal.append_many
def append_many(self, records, attachments=None):  # Ctrl-C lands the moment the record is on disk
    start = written(self, records, attachments)
    os.kill(os.getpid(), signal.SIGINT)
    return start
journal.FileJournal.append_many = append_many
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_interrupt_right_after_the_write_reports_the_run_recorded_with_its_files(repo):
    """Ctrl-C between the journal write and the rest of `log` never says "interrupted" alone for a run that
    is in the ledger, nor deletes its archive: the run is finished, then the interrupt is reported."""
    assert ml("init", cwd=repo).code == 0
    log, summary = fake_run(repo, 0.99)
    proc = subprocess.run([sys.executable, "-c", INTERRUPT_AFTER_WRITE, str(MEMORYLAB), "log", "-d", "baseline",
                           "--status", "keep", "--log", str(log), "--summary", str(summary)], cwd=repo,
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(PROJECT)})
    [record] = records(repo)
    assert proc.returncode == 130 and f"after recording {record['run_id']}: kept" in proc.stderr, proc.stderr
    shown = ml("show", record["run_id"], cwd=repo).out
    assert "(missing)" not in shown and "run_log" in shown, shown
    assert (repo / "results.tsv").read_text().count("baseline") == 1


def test_closed_pipe_exits_quietly(repo):
    rows = "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n" + "".join(
        f"{i:07x}\t{1 + i / 1e5:.6f}\t44.0\tdiscard\tidea number {i} with a longer description\n" for i in range(1500))
    (repo / "big.tsv").write_text(rows)
    assert ml("import", str(repo / "big.tsv"), cwd=repo).code == 0
    for command in ("list --limit 1500", "export"):
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", f"{sys.executable} {MEMORYLAB} {command} | head -c 10"],
                              cwd=repo, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and proc.stderr == "", (command, proc.stderr)
    # a verdict's exit code survives a reader that leaves early: `check ... | head -1` must not turn a block into 0
    assert log_run(repo, "DEPTH 8 -> 12", "discard", 1.5).code == 0
    script = (f"{sys.executable} {MEMORYLAB} check -d 'DEPTH 8 -> 12' --fail-on-similar --json | true; "
              "exit ${PIPESTATUS[0]}")
    proc = subprocess.run(["bash", "-c", script], cwd=repo, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, (proc.returncode, proc.stderr)


# -- 4b. absurd numeric arguments ------------------------------------------------------------------------------

ABSURD = [
    ("list", "--limit", str(10**30)), ("list", "--limit", "-5"), ("list", "--limit", "0"), ("list", "--limit", "1e3"),
    ("list", "--since-hours", "1e400"), ("list", "--since-hours", "nan"), ("list", "--since-hours", "-1"),
    ("list", "--since-hours", "inf"), ("report", "--since-hours", "nan"), ("report", "--since-hours", "1e300"),
    ("check", "-d", "x", "--threshold", "1.5"), ("check", "-d", "x", "--threshold", "nan"),
    ("check", "-d", "x", "--threshold", "0"), ("check", "-d", "x", "--limit", str(10**9)),
    ("champion", "--limit", str(10**12)), ("guide", "--max-chars", str(10**15)),
    ("log", "-d", "x", "--status", "keep", "--threshold", "nan"),
    ("log", "-d", "x", "--status", "keep", "--since-hours", "-3"),
    ("replicate", "HEAD", "--n", str(10**9)), ("replicate", "HEAD", "--n", "101"),
    ("replicate", "HEAD", "--seed-start", "-1"),
    ("run", "--timeout", "nan"), ("run", "--timeout", "-1"), ("run", "--timeout", "1e30"),
    ("run", "--grace", "inf"), ("run", "--noise", "nan"), ("run", "--alpha", "2"),
]


def test_absurd_numeric_arguments_are_one_line_errors(repo):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    journal = digest(ledger(repo))
    for argv in ABSURD:
        res = ml(*argv, cwd=repo)
        assert one_line_error(res), (argv, res.err)
        assert digest(ledger(repo)) == journal, argv


def test_json_output_is_valid_utf8_when_the_store_path_is_not(tmp_path):
    """A store folder whose name holds a byte that is not UTF-8: --json escapes it (\\udcff), so the output
    still decodes and parses, and the name round-trips to the folder."""
    home = os.fsencode(tmp_path) + b"/store\xff"
    log, summary = fake_run(tmp_path, 1.0)
    cmd = [sys.executable, str(MEMORYLAB), "--home", home]
    assert subprocess.run([*cmd, "log", "-d", "baseline", "--status", "keep", "--log", str(log), "--summary",
                           str(summary)], cwd=tmp_path, capture_output=True, timeout=60).returncode == 0
    out = subprocess.run([*cmd, "status", "--json"], cwd=tmp_path, capture_output=True, timeout=60).stdout
    store = json.loads(out.decode("utf-8"))["store"]
    assert os.fsencode(store) == home


def test_an_error_naming_an_arena_with_a_line_break_stays_one_line(repo, tmp_path):
    tsv = tmp_path / "nr.tsv"
    tsv.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\na1b2c3d\t0.997900\t44.0\tkeep\tbaseline\n")
    assert ml("import", "--family", "bad\nname", str(tsv), cwd=repo).code == 0
    res = ml("status", "--arena", "nope", cwd=repo)
    assert one_line_error(res) and "bad\\nname" in res.err, res.err
