"""The index (index.sqlite): always equal to a fresh fold of the journal, whatever happened to either."""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from mlhelpers import CPU_SETUP, GPU_SETUP, MEMORYLAB, commit_change, ledger, log_run, make_repo

from memorylab_core.index import db as ix
from memorylab_core.index import journal_index
from memorylab_core.index.journal_index import JournalIndex
from memorylab_core.ledger import codec
from memorylab_core.ledger.store import INDEX_NAME, Store, encode_record
from memorylab_core.policy import registry
from memorylab_core.policy.estimates import standings
from memorylab_core.policy.promotion import PromotionPolicy
from memorylab_core.research import folds, health, memory
from memorylab_core.research.memory import load_state


def _record(i: int, rng: random.Random, parent: str | None) -> dict:
    status = rng.choice(["keep", "keep", "discard", "discard", "discard", "crash"])
    fingerprint = f"fp{rng.randrange(12)}" if rng.random() < 0.5 else f"fp-unique-{i}"
    knob = rng.choice(["MATRIX_LR", "DEPTH", "WARMDOWN_RATIO"])
    return {
        "record_type": "run", "run_id": f"run{i:03d}", "timestamp_utc": f"2026-11-30T{i // 60:02d}:{i % 60:02d}:00Z",
        "status": status, "description": f"{knob.lower()} tweak {i % 5} \t\u00e9\u2028",
        "commit": f"{i:04x}{'c' * 36}", "parent_commit": parent, "branch": "main", "code_fingerprint": fingerprint,
        "metrics": {"val_bpb": None if status == "crash" else round(1.0 - rng.random() * 0.05, 6)},
        "error": {"summary": "CUDA out of memory", "kind": "oom"} if status == "crash" else None,
        "change_signature": [{"name": knob, "direction": rng.choice(["up", "down"])}],
    }


def _build(root: Path, n: int, seed: int = 3, arenas: tuple[str, ...] = ()) -> Store:
    """A journal of ``n`` varied runs with champion events and corrupt lines mixed in; ``arenas``:
    spread the runs over these arenas (else all in the default one)."""
    store = Store(root, root)
    store.init()
    rng = random.Random(seed)
    lines, parent = [], None
    for i in range(n):
        record = _record(i, rng, parent)
        if arenas:
            record["arena"] = arenas[i % 7 == 0]
        if record["status"] == "keep" and rng.random() < 0.7:
            parent = record["commit"]
        lines.append(encode_record(record))
        if i % 9 == 8:
            lines.append(b'{"half a record\n')
        if i % 13 == 12:
            kept = f"run{rng.randrange(i):03d}"
            lines.append(encode_record({"record_type": "event", "event_type": "champion_change", "run_id": kept,
                                        "confirmed_run_id": kept, "event_id": f"ev{i}"}))
    store.ledger_path.write_bytes(b"".join(lines))
    return store


def _fields(history: JournalIndex) -> list[tuple]:
    return [(r.index, r.offset, r.run_id, r.status, r.val_bpb, r.idea_key, r.description, r.change_signature)
            for r in history.runs]


def _view(history: JournalIndex) -> tuple:
    """Everything the views read, in comparable form."""
    novelty = history.novelty
    return (_fields(history), [(e.event_id, e.runs_before, e.offset) for e in history.events], history.corrupt,
            history.arenas(),
            len(novelty), novelty.n_docs, novelty.state, [novelty.outcome(i) for i in range(len(history.runs))],
            {a: [r.index for r in history.registry.notable_in(a)] for a, _, _ in history.arenas()},
            {a: [lin.to_dict() for lin in history.registry.lineages(a)] for a, _, _ in history.arenas()},
            [c.to_dict() for c in history.registry.clusters(1)])


def _fresh(store: Store) -> tuple:
    return _view(JournalIndex.load(store, use_cache=False, quiet=True))


def test_index_equals_a_fresh_fold_and_is_reused(tmp_path):
    store = _build(tmp_path, 37)
    first = JournalIndex.load(store, quiet=True)
    assert (tmp_path / INDEX_NAME).exists()
    assert _view(first) == _fresh(store)
    assert len(first.corrupt) == 4
    again = JournalIndex.load(store, quiet=True)
    assert again.refresh() is False  # nothing new: the stat matched, nothing was re-read
    assert _view(again) == _fresh(store)


def test_appends_are_folded_incrementally(tmp_path):
    store = _build(tmp_path, 20)
    JournalIndex.load(store, quiet=True)
    for i in range(20, 26):
        store.append(_record(i, random.Random(i), None))
    history = JournalIndex.load(store, quiet=True)
    assert len(history.runs) == 26
    assert _view(history) == _fresh(store)


def test_a_foreign_append_is_verified_and_folded(tmp_path):
    store = _build(tmp_path, 20)
    JournalIndex.load(store, quiet=True)
    with open(store.ledger_path, "ab") as fh:  # not through MemoryLab: the index re-hashes the prefix
        fh.write(encode_record(_record(20, random.Random(1), None)))
    history = JournalIndex.load(store, quiet=True)
    assert [r.run_id for r in history.runs][-1] == "run020"
    assert _view(history) == _fresh(store)


@pytest.mark.parametrize("where", [0.05, 0.5, 0.95])
def test_a_same_length_edit_anywhere_is_seen_by_the_next_command(tmp_path, where):
    store = _build(tmp_path, 40)
    before = _view(JournalIndex.load(store, quiet=True))
    data = bytearray(store.ledger_path.read_bytes())
    pos = data.index(b'"discard"', int(len(data) * where))
    data[pos:pos + 9] = b'"keep"   '  # same length, still valid JSON
    stat = os.stat(store.ledger_path)
    store.ledger_path.write_bytes(bytes(data))
    os.utime(store.ledger_path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the mtime put back
    after = JournalIndex.load(store, quiet=True)
    assert _view(after) == _fresh(store)
    assert _view(after) != before


def test_a_garbled_middle_line_is_counted_and_warned(tmp_path, capsys):
    store = _build(tmp_path, 30)
    JournalIndex.load(store, quiet=True)
    data = bytearray(store.ledger_path.read_bytes())
    start = data.index(b"run010")
    data[start:start + 6] = b"\xff\xfe{{{{"
    store.ledger_path.write_bytes(bytes(data))
    history = JournalIndex.load(store)
    assert "line" in capsys.readouterr().err
    assert _view(history) == _fresh(store)
    assert "run010" not in [r.run_id for r in history.runs]


def test_truncated_or_replaced_journals_rebuild(tmp_path):
    store = _build(tmp_path, 30)
    JournalIndex.load(store, quiet=True)
    data = store.ledger_path.read_bytes()
    store.ledger_path.write_bytes(data[: len(data) // 2])
    assert _view(JournalIndex.load(store, quiet=True)) == _fresh(store)
    other = _build(tmp_path / "other", 12, seed=9)
    os.replace(other.ledger_path, store.ledger_path)  # another inode
    assert _view(JournalIndex.load(store, quiet=True)) == _fresh(store)
    store.ledger_path.unlink()
    assert len(JournalIndex.load(store, quiet=True).runs) == 0


def test_a_damaged_or_foreign_index_file_is_rebuilt(tmp_path):
    store = _build(tmp_path, 25)
    JournalIndex.load(store, quiet=True)
    path = tmp_path / INDEX_NAME
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"garbage, not a database" * 100)
    assert _view(JournalIndex.load(store, quiet=True)) == _fresh(store)
    db = sqlite3.connect(path)  # someone plants a trigger: the index is not trusted, it is rebuilt
    db.execute("CREATE TRIGGER evil AFTER INSERT ON runs BEGIN DELETE FROM runs; END")
    db.commit()
    db.close()
    store.append(_record(25, random.Random(2), None))
    history = JournalIndex.load(store, quiet=True)
    assert _view(history) == _fresh(store)
    triggers = history.db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").fetchone()[0]
    assert triggers == 0


def test_doctored_folded_state_cannot_run_code(tmp_path):
    """The old pickle cache let `memorylab_core.store` + `os.system` through; the index holds JSON only."""
    store = _build(tmp_path, 20)
    state = load_state(store)
    marker = tmp_path / "pwned"
    db = sqlite3.connect(tmp_path / INDEX_NAME)
    payload = ('{"~":"o","c":"system","v":{"command":"touch ' + str(marker) + '"}}')
    db.execute("UPDATE folds SET data = ? WHERE name GLOB 'research:*'", (payload,))
    db.execute("UPDATE registry_failures SET data = ?", (payload,))
    db.commit()
    db.close()
    res = subprocess.run([sys.executable, str(MEMORYLAB), "--home", str(tmp_path), "status"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert not marker.exists()
    assert load_state(store).runs == state.runs  # the bad fold was refolded from the runs


def _lineages_by_scan(runs: list) -> list[dict]:
    """The best lineages by brute force: each kept run extends the latest earlier kept run on its parent
    commit (or, without one, of its branch and family); chains ranked by their best run, then leaf."""
    kept = [r for r in runs if registry.is_candidate(r)]
    parent = {}
    for i, run in enumerate(kept):
        earlier = kept[:i]
        if run.parent_commit:
            match = [r for r in earlier if r.commit == run.parent_commit]
        else:
            match = [r for r in earlier if (r.branch, r.family, r.source if not r.commit else None)
                     == (run.branch, run.family, run.source if not run.commit else None)]
        if match:
            parent[run.index] = match[-1]
    chains = []
    for leaf in (r for r in kept if r not in parent.values()):
        chain = [leaf]
        while chain[-1].index in parent:
            chain.append(parent[chain[-1].index])
        chains.append(registry.Lineage.of(chain[::-1]))
    chains.sort(key=lambda lin: (lin.best.val_bpb, lin.best.index, lin.runs[-1].index))
    return [lin.to_dict() for lin in chains[:registry.LINEAGES]]


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_registry_fold_matches_a_scan_of_every_run(tmp_path, seed):
    """The few notable runs the views read answer every registry question -- now and at every earlier
    moment -- exactly as a scan of all the arena's runs does."""
    store = _build(tmp_path, 160, seed=seed, arenas=("a", "b"))
    history = JournalIndex.load(store, quiet=True)
    every, events = list(history.runs), history.events
    policy = PromotionPolicy()
    for arena in ("a", "b"):
        notable, runs = history.registry.notable_in(arena), [r for r in every if r.arena == arena]
        assert [r.index for r in notable] == sorted(r.index for r in notable)
        assert registry.champion(notable, events) == registry.champion(runs, events)
        assert registry.confirmed_champion(notable, events) == registry.confirmed_champion(runs, events)
        assert registry.challengers(notable, events=events) == registry.challengers(runs, events=events)
        assert standings(notable, events, policy) == standings(runs, events, policy)
        assert [lin.to_dict() for lin in history.registry.lineages(arena)] == _lineages_by_scan(runs)
        for moment in range(0, len(every) + 1, 3):  # the champion at the start of any report window
            before = [e for e in events if e.runs_before <= moment]
            assert registry.champion([r for r in notable if r.index < moment], before) == \
                registry.champion([r for r in runs if r.index < moment], before)
    failing = [r for r in every if r.status in ("discard", "crash") and registry.counts_against_idea(r)]
    failed = Counter((r.arena, r.idea_key) for r in failing)
    clusters = history.registry.clusters()
    assert {(c.arena, c.idea): c.count for c in clusters} == {k: n for k, n in failed.items() if n >= 2}
    assert [c.count for c in clusters] == sorted((c.count for c in clusters), reverse=True)
    for cluster in clusters:
        members = [r for r in failing if (r.arena, r.idea_key) == (cluster.arena, cluster.idea)]
        assert cluster.run_ids == [r.run_id for r in members][-registry.CLUSTER_RUN_IDS:]
        assert cluster.crashes == sum(r.status == "crash" for r in members)
        last_crash = next((r for r in reversed(members) if r.status == "crash"), None)
        assert history.registry.crash_like(cluster.key) == last_crash


def test_notable_runs_grow_with_champion_changes_not_with_kept_runs(tmp_path):
    """300 kept runs of distinct code that never beat the first: the views read the champion and its 5 challengers."""
    store = Store(tmp_path, tmp_path)
    store.init()
    store.ledger_path.write_bytes(b"".join(encode_record(
        {"record_type": "run", "run_id": f"k{i:03d}", "status": "keep", "code_fingerprint": f"fp{i}",
         "metrics": {"val_bpb": 0.9 if i == 0 else 1.0 + i / 1000}}) for i in range(300)))
    history = JournalIndex.load(store, quiet=True)
    notable = history.registry.notable_in("default")
    assert [r.run_id for r in notable] == [f"k{i:03d}" for i in range(6)]
    assert registry.champion(notable).run_id == "k000"
    assert [r.run_id for r in registry.challengers(notable)] == ["k001", "k002", "k003", "k004", "k005"]


def test_research_state_in_the_index_equals_a_fresh_fold(tmp_path):
    store = _build(tmp_path, 50)
    load_state(store)
    for i in range(50, 55):
        store.append(_record(i, random.Random(i), None))
    stored, fresh = load_state(store), load_state(store, use_cache=False)
    assert stored.runs == fresh.runs == 55
    name = f"{memory.FOLD_NAME}:{stored.arena}"
    kept, runs, _ = folds.stored(JournalIndex.load(store, quiet=True).db, name, memory.ResearchState,
                                 memory._STATE_CLASSES)  # the next command decodes it, no refold
    assert runs == 55 and codec.dumps(kept) == codec.dumps(stored)
    assert codec.dumps(stored) == codec.dumps(fresh)


def test_readers_of_a_store_without_a_journal_say_so_and_create_nothing(tmp_path):
    home = tmp_path / "nothing-here"
    res = subprocess.run([sys.executable, str(MEMORYLAB), "--home", str(home), "list"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and res.stderr == (f"memorylab: error: no MemoryLab store at {home} (no "
                                                  "experiments.jsonl): check --home / $MEMORYLAB_HOME, or create "
                                                  "it with 'memorylab init'\n"), res.stderr
    assert not home.exists()


def test_another_users_planted_temp_folder_is_not_trusted(tmp_path, monkeypatch):
    """A read-only store's index goes to a private temp folder; one that is not private is left alone
    and the index goes to this user's cache folder instead."""
    store = _build(tmp_path / "store", 5)
    monkeypatch.setattr(ix, "_writable_dir", lambda path: False)  # as if the store were read-only
    monkeypatch.setattr(ix.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    planted = tmp_path / f"{ix.PRIVATE_PREFIX}{os.getuid()}"
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)  # world-writable: someone else could swap files in it
    history = JournalIndex.load(store, quiet=True)
    assert len(history.runs) == 5
    assert not list(planted.iterdir())
    assert history.location.parent == tmp_path / "cache" / "memorylab" / f"index-{os.getuid()}"
    planted.chmod(0o700)
    assert len(JournalIndex.load(store, quiet=True).runs) == 5
    assert any(p.suffix == ".sqlite" for p in planted.iterdir())


def _plant(kind: str, path: Path, tmp_path: Path) -> None:
    """Something in the way of the private temp folder: what another user of /tmp could leave there."""
    if kind == "file":
        path.write_text("planted")
    elif kind == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        path.symlink_to(tmp_path / "elsewhere")
    elif kind == "foreign dir":
        path.mkdir(mode=0o700)
        os.chown(path, 65534, 65534)
    else:  # a directory of ours that others may write into
        path.mkdir(mode=0o733)
        path.chmod(0o733)


@pytest.mark.parametrize("kind", ["file", "symlink", "foreign dir", "lax dir"])
def test_a_planted_temp_folder_of_any_kind_costs_no_refold(tmp_path, monkeypatch, kind):
    """Issue 26: a regular file there made every read exit 1; the other plants re-folded the whole
    journal on every command. Now the index lives in this user's cache folder and is reused."""
    if kind == "foreign dir" and os.getuid() != 0:
        pytest.skip("only root can make a folder owned by someone else")
    store = _build(tmp_path / "store", 30)
    monkeypatch.setattr(ix, "_writable_dir", lambda path: False)
    monkeypatch.setattr(ix.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _plant(kind, tmp_path / f"{ix.PRIVATE_PREFIX}{os.getuid()}", tmp_path)
    folds = []
    real = JournalIndex._fold_bytes
    monkeypatch.setattr(JournalIndex, "_fold_bytes", lambda self, *a, **k: folds.append(a) or real(self, *a, **k))
    first = JournalIndex.load(store, quiet=True)
    assert _view(first) == _fresh(store)
    assert first.location is not None and first.location.is_file() and not first.location.is_symlink()
    folds.clear()
    second = JournalIndex.load(store, quiet=True)
    assert second.location == first.location and len(second.runs) == len(first.runs)
    assert folds == []  # the journal was not folded again
    if kind == "symlink":
        assert not list((tmp_path / "elsewhere").iterdir())


# -- big folds, folds in pieces and folds that stop midway -------------------------------------------------

def _tables(history: JournalIndex) -> dict[str, list[str]]:
    """Every row of every table of an index but its random generation stamp: what two folds must share."""
    db = history.db
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    rows = {name: sorted(map(repr, db.execute(f"SELECT * FROM {name}"))) for name in names}
    rows["meta"] = [r for r in rows["meta"] if "generation" not in r]
    return rows


def _padded(store: Store) -> Store:
    """The journal with a 1.5 KB note on every run, so it spans several verification blocks."""
    lines = []
    for line in store.ledger_path.read_bytes().splitlines(keepends=True):
        try:
            record = json.loads(line)
        except ValueError:
            lines.append(line)
            continue
        if record.get("record_type") != "event":
            record["notes"] = f"note {record['run_id']} " + "n" * 1500
        lines.append(encode_record(record))
    store.ledger_path.write_bytes(b"".join(lines))
    return store


def test_a_fold_read_in_small_steps_builds_the_index_one_step_builds(tmp_path, monkeypatch):
    """Chunk edges (64 KiB steps over a journal of several verification blocks) change nothing, and
    later folds go on from where the big one ended."""
    store = _padded(_build(tmp_path, 800, arenas=("a", "b")))
    assert store.ledger_path.stat().st_size > ix.BLOCK
    expected = _tables(JournalIndex.load(store, use_cache=False, quiet=True))
    monkeypatch.setattr(journal_index, "READ_CHUNK", 64 << 10)
    stepped = JournalIndex.load(store, quiet=True)
    assert _tables(stepped) == expected
    assert len(stepped.corrupt) == 88
    for i in range(800, 805):
        store.append(_record(i, random.Random(i), None))
    assert _view(JournalIndex.load(store, quiet=True)) == _fresh(store)


def test_a_fold_that_stops_midway_leaves_nothing_half_done(tmp_path, monkeypatch):
    """An error (or Ctrl-C) in the middle of a cold build rolls the whole fold back; the next command
    folds again from the start and gets the index a fresh fold gets."""
    store = _padded(_build(tmp_path, 600))
    expected = _tables(JournalIndex.load(store, use_cache=False, quiet=True))
    monkeypatch.setattr(journal_index, "READ_CHUNK", 64 << 10)
    real, calls = journal_index.prepared, []

    def failing(lines, first_run):
        calls.append(first_run)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(lines, first_run)

    monkeypatch.setattr(journal_index, "prepared", failing)
    with pytest.raises(KeyboardInterrupt):
        JournalIndex.load(store, quiet=True)
    assert calls[-1] > 0  # three steps were folded before it stopped
    with sqlite3.connect(store.index_path) as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    monkeypatch.setattr(journal_index, "prepared", real)
    history = JournalIndex.load(store, quiet=True)
    assert _tables(history) == expected
    assert JournalIndex.load(store, quiet=True).refresh() is False


def _breaker_journal(root: Path, n: int, seed: int) -> Store:
    """Long crash streaks, replicates of kept runs, baselines and breaker resets, over two arenas."""
    store = Store(root, root)
    store.init()
    rng, lines = random.Random(seed), []
    for i in range(n):
        status = rng.choice(["crash"] * 5 + ["discard"] * 3 + ["keep"])
        record = {"record_type": "run", "run_id": f"b{i:03d}", "status": status, "arena": rng.choice("ab"),
                  "commit": f"{i:04x}{'d' * 36}", "timestamp_utc": f"2026-11-30T{i // 60:02d}:{i % 60:02d}:00Z",
                  "description": "baseline" if rng.random() < 0.05 else f"idea {i}",
                  "metrics": {"val_bpb": None if status == "crash" else 1.0 - rng.random() * 0.01}}
        if status == "keep" and rng.random() < 0.4:
            record["replicate_of"] = f"b{rng.randrange(i + 1):03d}"
        lines.append(encode_record(record))
        if rng.random() < 0.04:
            lines.append(encode_record({"record_type": "event", "event_type": health.RESET_EVENT,
                                        "event_id": f"reset{i}", "arena": rng.choice("ab"), "reason": "fixed"}))
    store.ledger_path.write_bytes(b"".join(lines))
    return store


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_fresh_breaker_starts_at_the_last_keep_and_equals_folding_every_run(tmp_path, seed):
    store = _breaker_journal(tmp_path, 300, seed)
    history = JournalIndex.load(store, quiet=True)
    kept = {r[0] for r in history.db.execute(f"SELECT idx FROM runs WHERE {health.KEEP_OF_IDEA_SQL}")}
    assert kept == {r.index for r in history.runs if health.is_keep_of_idea(r)}  # the SQL says what the rule says
    for arena in "ab":
        every = health.Breaker()
        folds.fold_into(every, history.arena_runs(arena), history.events_in(arena))
        assert health.load_breaker(history, arena).info() == every.info()
        assert health.load_breaker(JournalIndex.load(store, quiet=True), arena).info() == every.info()  # stored


def test_a_long_lineage_carries_its_newest_steps_and_counts_them_all(tmp_path):
    """400 kept runs on one branch make one lineage; its document stays small whatever its length."""
    store = Store(tmp_path, tmp_path)
    store.init()
    store.ledger_path.write_bytes(b"".join(encode_record(
        {"record_type": "run", "run_id": f"k{i:03d}", "status": "keep", "branch": "main",
         "metrics": {"val_bpb": 1.0 - i / 10_000}}) for i in range(400)))
    (lineage,) = [lin.to_dict() for lin in JournalIndex.load(store, quiet=True).registry.lineages("default")]
    assert lineage["length"] == 400 and len(lineage["chain"]) == registry.CHAIN_STEPS
    assert (lineage["root"], lineage["tip"], lineage["best_run_id"]) == ("k000", "k399", "k399")
    assert lineage["chain"][-1]["run_id"] == "k399" and lineage["chain"][0]["run_id"] == "k350"
    assert lineage["improvement"] == round(399 / 10_000, 6)


# -- the index is derived from the journal alone ----------------------------------------------------------

def test_the_same_journal_folds_alike_in_checkouts_with_different_git_histories(tmp_path, monkeypatch):
    """The fold reads the journal alone: the journal of one checkout, folded in another whose git history
    holds none of its commits (another host, a shallow clone, a rebase), gives the same tables, the same
    operating points (recorded on the arena's first run) and the same registry snapshot."""
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    repo = make_repo(tmp_path / "a")
    commit_change(repo, "lower lr", matrix_lr=0.02)  # not upstream's 0.04: the recorded defaults must matter
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    commit_change(repo, "deeper", matrix_lr=0.02, depth=10)
    assert log_run(repo, "depth 8 -> 10", "keep", 0.99).code == 0
    commit_change(repo, "lr up", matrix_lr=0.03, depth=10)
    assert log_run(repo, "matrix lr 0.02 -> 0.03", "discard", 1.01).code == 0
    other = make_repo(tmp_path / "b")
    commit_change(other, "an unrelated history", depth=12)
    ledger(other).parent.mkdir(parents=True)
    shutil.copy(ledger(repo), ledger(other))

    folded = [JournalIndex.load(Store(r / "results" / "memorylab", r), use_cache=False, quiet=True)
              for r in (repo, other)]
    tables = [_tables(index) for index in folded]
    for table in tables:
        del table["meta"]  # the journal file's device and inode
    assert tables[0] == tables[1]
    arena = folded[1].newest_arena()
    assert folded[1].novelty.operating_point(arena)["MATRIX_LR"] == 0.02
    snapshots = [{k: v for k, v in index.snapshot().items() if k != "generated_utc"} for index in folded]
    assert snapshots[0] == snapshots[1] and snapshots[0]["arenas"][arena]["champion"]["val_bpb"] == 0.99


def test_the_registry_snapshot_is_computed_for_every_arena_not_carried_over(tmp_path, monkeypatch):
    """champion_challenger.json is derived from the index: a log rewrites every arena's standing, so a
    damaged or stale standing of an arena the log did not touch does not survive it."""
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    repo = make_repo(tmp_path / "repo")
    assert log_run(repo, "baseline", "keep", 1.0, setup=CPU_SETUP).code == 0
    assert log_run(repo, "baseline on the gpu", "keep", 0.9, setup=GPU_SETUP).code == 0
    path = ledger(repo).parent / "champion_challenger.json"
    written = json.loads(path.read_text())
    cpu = next(a for a in written["arenas"] if a.startswith("cpu/"))
    path.write_text(json.dumps({**written, "arenas": {**written["arenas"], cpu: {"arena": cpu, "champion": None}}}))
    assert log_run(repo, "depth 8 -> 10 on the gpu", "discard", 0.95, setup=GPU_SETUP).code == 0
    rewritten = json.loads(path.read_text())
    assert rewritten["arenas"][cpu] == written["arenas"][cpu]
    assert rewritten["arenas"][cpu]["champion"]["val_bpb"] == 1.0


def test_a_run_id_twice_in_the_journal_counts_once_and_the_first_wins(tmp_path):
    """Issue 26: a naive `cat a.jsonl b.jsonl` merge folded 11 runs for 9 ids; `show` returned the first
    and `list` both. Now the first record of an id counts, every later one is skipped with a warning
    naming both lines, and status, list and show agree."""
    store = _build(tmp_path / "store", 40)
    lines = store.ledger_path.read_bytes().splitlines(keepends=True)
    first = json.loads(lines[0])
    copy = encode_record({**first, "description": "the second copy", "metrics": {"val_bpb": 0.5}})
    store.ledger_path.write_bytes(b"".join(lines) + copy + b"".join(lines[1:4]))
    home = str(store.root)
    status = subprocess.run([sys.executable, str(MEMORYLAB), "--home", home, "status", "--json"],
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert f"run id {first['run_id']} is already recorded at line 1 (the first record counts); line skipped" \
        in status.stderr
    listed = subprocess.run([sys.executable, str(MEMORYLAB), "--home", home, "list", "--limit", "1000", "--json"],
                            capture_output=True, text=True, timeout=60)
    ids = [r["run_id"] for r in json.loads(listed.stdout)]
    assert len(ids) == len(set(ids)) == 40 == json.loads(status.stdout)["runs"]
    shown = subprocess.run([sys.executable, str(MEMORYLAB), "--home", home, "show", first["run_id"], "--json"],
                           capture_output=True, text=True, timeout=60)
    assert json.loads(shown.stdout)["record"]["description"] == first["description"]
    history = JournalIndex.load(store, quiet=True)
    assert [r.index for r in history.runs] == list(range(40))
    assert _view(history) == _fresh(store)
    tables, fresh = (_tables(i) for i in (history, JournalIndex.load(store, use_cache=False, quiet=True)))
    del tables["folds"], fresh["folds"]  # the commands above stored their research folds
    assert tables == fresh
