"""The index is a cache in fact (issue 26): whatever happens to index.sqlite -- damaged pages, a planted
constraint, a symlink, a full disk, a failing COMMIT -- every command answers with the journal's truth
or keeps the CLI's promise (exit 1 before an append, a warning naming the run after it), and the next
command heals it without anyone deleting a file by hand."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from mlhelpers import MEMORYLAB, PROJECT, fake_run, ml
from synthetic_store import write_store

from memorylab_core.index import db as ix

READS = (("list", "--limit", "500", "--json"), ("status", "--json"), ("report", "--json", "--since-hours", "876000"),
         ("check", "-d", "matrix LR 0.04 -> 0.05", "--json"), ("guide", "--json"), ("insights", "--json"),
         ("champion", "--json"), ("export", "-f", "tsv"))
PAGE = 4096


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """A 300-run store, its index built once."""
    root = write_store(tmp_path_factory.mktemp("pristine") / "store", 300, seed=4)
    assert ml("--home", str(root), "status").code == 0
    return root


@pytest.fixture()
def home(pristine, tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    root = tmp_path / "store"
    shutil.copytree(pristine, root)
    return root


def answers(home: Path, reads: tuple = READS) -> dict[str, tuple[int, str]]:
    """What every read command prints (times that move with the clock left out)."""
    return {args[0]: answer(home, args) for args in reads}


def answer(home: Path, args: tuple) -> tuple[int, str]:
    res = ml("--home", str(home), *args)
    assert "Traceback" not in res.err, (args, res.err)
    if args[0] not in ("report", "status"):
        return res.code, res.out
    data = res.json()  # what moves with the clock, not with the index, is left out
    for key in ("generated_utc", "written", "hours_since_last_improvement"):
        data.pop(key, None)
    return res.code, json.dumps(data, sort_keys=True)


def truth(home: Path) -> dict[str, tuple[int, str]]:
    """The answers of a fresh fold of the journal (the index deleted first)."""
    ix.discard(home / "index.sqlite")
    return answers(home)


def garble_pages(path: Path, rng: random.Random, pages: int) -> list[int]:
    """Overwrite the 16-byte header of ``pages`` random pages (the attack that broke 20 of 36 pages)."""
    count = path.stat().st_size // PAGE
    chosen = sorted(rng.sample(range(count), min(pages, count)))
    with open(path, "r+b") as fh:
        for page in chosen:
            fh.seek(page * PAGE + (100 if page == 0 else 0))
            fh.write(bytes(rng.randrange(256) for _ in range(16)))
    return chosen


def test_every_command_answers_the_journals_truth_after_random_page_damage(home):
    """Property: seeded, bounded. Between commands, random pages of index.sqlite are garbled; every read
    command still answers exactly what a fresh fold answers, and no command needs a hand-deleted file."""
    expected = truth(home)
    rng = random.Random(26)
    index = home / "index.sqlite"
    for _ in range(6):
        assert ml("--home", str(home), "status").code == 0  # the index exists and is current
        for suffix in ("-wal", "-shm"):  # damage the file itself, as a crash or a bad disk would
            Path(f"{index}{suffix}").unlink(missing_ok=True)
        garble_pages(index, rng, rng.randint(1, 6))
        assert answers(home) == expected


def test_the_root_page_of_every_table_garbled_in_turn_never_changes_an_answer(home):
    """Each table's root page (where SQLite meets it first) garbled alone: the reads still answer
    exactly what a fresh fold does, wherever the damage is met (opening, folding, reporting skipped
    lines, or mid-command)."""
    reads = READS[:2] + READS[3:4] + READS[-1:]  # list, status, check, export
    expected = answers(home, reads)
    index = home / "index.sqlite"
    db = sqlite3.connect(index)
    roots = db.execute("SELECT name, rootpage FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall()
    db.close()
    assert len(roots) > 15
    rng = random.Random(5)
    for name, root in roots:
        ix.discard(index)
        assert ml("--home", str(home), "status").code == 0
        Path(f"{index}-wal").unlink(missing_ok=True)  # the damage lands in the file itself
        Path(f"{index}-shm").unlink(missing_ok=True)
        with open(index, "r+b") as fh:
            fh.seek((root - 1) * PAGE + (100 if root == 1 else 0))
            fh.write(bytes(rng.randrange(256) for _ in range(16)))
        assert answers(home, reads) == expected, name


def test_a_garbled_page_header_no_longer_wedges_log(home):
    index = home / "index.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    garble_pages(index, random.Random(1), 20)
    repo = home.parent
    log, summary = fake_run(repo, 0.97)
    res = ml("--home", str(home), "log", "-d", "after damage", "--status", "discard", "--log", str(log),
             "--summary", str(summary), "--json", cwd=repo)
    assert res.code == 0 and "Traceback" not in res.err, res.err
    run_id = res.json()["run_id"]
    assert [r["run_id"] for r in records_of(home)].count(run_id) == 1
    listed = ml("--home", str(home), "list", "--limit", "1", "--json").json()
    assert listed[0]["run_id"] == run_id


def listed(home: Path) -> list[dict]:
    res = ml("--home", str(home), "list", "--limit", "100000", "--json")
    assert res.code == 0, res.err
    return res.json()


def records_of(home: Path) -> list[dict]:
    return [json.loads(line) for line in (home / "experiments.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("plant", [
    "CREATE UNIQUE INDEX evil ON runs(arena) WHERE idx >= 299",  # refuses the next run's row
    "CREATE TRIGGER evil AFTER INSERT ON runs BEGIN DELETE FROM runs; END",
    "CREATE VIEW evil AS SELECT 1",
    "CREATE TABLE planted (x)",
])
def test_a_planted_constraint_trigger_or_table_never_wedges_the_store(home, plant):
    assert ml("--home", str(home), "status").code == 0
    db = sqlite3.connect(home / "index.sqlite")
    db.executescript(plant)
    db.close()
    repo = home.parent
    log, summary = fake_run(repo, 0.97)
    before = len(records_of(home))
    res = ml("--home", str(home), "log", "-d", "after the plant", "--status", "discard", "--log", str(log),
             "--summary", str(summary), "--json", cwd=repo)
    assert res.code == 0 and "Traceback" not in res.err, res.err
    assert len(records_of(home)) == before + 1
    schema = {r[1] for r in sqlite3.connect(home / "index.sqlite").execute("SELECT type, name FROM sqlite_master")}
    assert not schema & {"evil", "planted"}
    assert answers(home) == truth(home)


def test_a_check_constraint_planted_in_a_table_is_rebuilt(home):
    """A CHECK constraint that refuses every new row (written into a table's schema) makes the index a
    file to rebuild, not an IntegrityError."""
    assert ml("--home", str(home), "status").code == 0
    db = sqlite3.connect(home / "index.sqlite")
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'arenas'").fetchone()[0]
    db.execute("PRAGMA writable_schema = ON")
    db.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'arenas'",
               (sql.replace("last_idx INTEGER NOT NULL", "last_idx INTEGER NOT NULL CHECK (last_idx < 0)"),))
    db.commit()
    db.close()
    repo = home.parent
    log, summary = fake_run(repo, 0.97)
    res = ml("--home", str(home), "log", "-d", "after the check", "--status", "discard", "--log", str(log),
             "--summary", str(summary), "--json", cwd=repo)
    assert res.code == 0 and "Traceback" not in res.err, res.err
    assert len(listed(home)) == 301


def test_a_commit_that_fails_is_rebuilt_and_never_rolls_back_twice(home, monkeypatch):
    """An injected OperationalError at COMMIT (what a full disk gives): the fold's ROLLBACK does not raise
    a second error, the index is rebuilt (in memory if it fails again, with one warning), and a `log`
    whose post-append refresh hits it still exits 0 with its run recorded once."""
    real = ix.connect
    failures = {"left": 2}

    class Full(sqlite3.Connection):
        def execute(self, sql, *args):
            if sql == "COMMIT" and self.in_transaction and failures["left"] > 0 and self.total_changes:
                failures["left"] -= 1
                super().execute("ROLLBACK")  # what SQLite does itself on SQLITE_FULL at commit
                raise sqlite3.OperationalError("database or disk is full")
            return super().execute(sql, *args)

    def connect(path):
        conn = real(path)
        if path == ":memory:":
            return conn
        conn.close()
        full = sqlite3.connect(str(path), timeout=1, isolation_level=None, check_same_thread=False, factory=Full)
        full.execute("PRAGMA journal_mode = WAL")
        return full

    monkeypatch.setattr(ix, "connect", connect)
    repo = home.parent
    log, summary = fake_run(repo, 0.97)
    before = len(records_of(home))
    res = ml("--home", str(home), "log", "-d", "disk is full", "--status", "discard", "--log", str(log),
             "--summary", str(summary), "--json", cwd=repo)
    assert res.code == 0 and "Traceback" not in res.err and "no transaction" not in res.err, res.err
    assert len(records_of(home)) == before + 1
    [warning] = [line for line in res.err.splitlines() if "index" in line]  # one warning, whatever happened
    assert "database or disk is full" in warning, res.err  # rebuilt on disk, or in memory when that fails too
    assert "rebuilt it from the journal" in warning or "using an in-memory index for this command" in warning
    monkeypatch.setattr(ix, "connect", real)
    assert len(listed(home)) == 301


def test_a_symlinked_index_is_replaced_and_its_target_untouched(home, tmp_path):
    other = tmp_path / "other-store-index.sqlite"
    shutil.copy(home / "index.sqlite", other)
    before = other.read_bytes()
    ix.discard(home / "index.sqlite")
    (home / "index.sqlite").symlink_to(other)
    empty = tmp_path / "empty-outside"
    empty.write_bytes(b"")
    (home / "index.sqlite-wal").symlink_to(empty)
    assert ml("--home", str(home), "status", "--json").json()["runs"] == 300
    assert not (home / "index.sqlite").is_symlink() and (home / "index.sqlite").stat().st_size > 0
    assert other.read_bytes() == before and empty.read_bytes() == b""


def test_disk_full_in_a_small_tmpfs_gives_the_same_outcome_at_any_free_space(tmp_path):
    """A real full disk (a tmpfs in a private mount namespace): with little or some space left, a cold
    build and a `log` both answer (exit 0, one warning at most), and the run is recorded once."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("no private mount namespaces here (unshare -rm)")
    source = write_store(tmp_path / "source", 400, seed=2)
    log, summary = fake_run(tmp_path, 0.97)
    script = PROJECT / "tests" / "full_disk.sh"
    for fill_kib in (0, 64, 256, 1024):
        res = subprocess.run(["unshare", "-rm", "sh", str(script), str(source), str(fill_kib), sys.executable,
                              str(MEMORYLAB), str(log), str(summary)], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, (fill_kib, res.stdout, res.stderr)
        assert "Traceback" not in res.stdout + res.stderr, (fill_kib, res.stdout)
        assert "RESULT status=0 runs=400 log=0 recorded=401" in res.stdout, (fill_kib, res.stdout)




@pytest.mark.slow
def test_commands_that_build_a_missing_index_at_once_never_discard_each_others(home):
    """Sixteen commands that find no index make it together: each waits for the one making it (its write lock)
    instead of judging a half-made file broken and deleting it under the others (which warned "unusable",
    fell back to memory, or left the registry snapshot unwritten)."""
    for _ in range(4):
        for suffix in ix.INDEX_FILES:
            (home / f"index.sqlite{suffix}").unlink(missing_ok=True)
        procs = [subprocess.Popen([sys.executable, str(MEMORYLAB), "--home", str(home), "list", "--limit", "1"],
                                  cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for _ in range(16)]
        errors = [p.communicate(timeout=300)[1] for p in procs]
        assert all(p.returncode == 0 for p in procs)
        assert not [e for e in errors if "index" in e], [e for e in errors if e][:2]
