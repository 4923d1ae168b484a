"""The history cache: chunked run table, registry fold, cache lag — all must agree with a fresh replay."""

from __future__ import annotations

import json
import pickle
import random
from collections import Counter
from pathlib import Path

import pytest

from memorylab_core.evidence.estimates import standings
from memorylab_core.ledger import runtable
from memorylab_core.ledger.history import CACHE_NAME, History
from memorylab_core.ledger.store import MemoryLabError, Store, encode_record
from memorylab_core.policy import registry
from memorylab_core.policy.promotion import PromotionPolicy


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Chunks of 4 runs, so a few dozen runs cross many chunk boundaries."""
    monkeypatch.setattr(runtable, "CHUNK_RUNS", 4)


def _record(i: int, rng: random.Random, parent: str | None) -> dict:
    status = rng.choice(["keep", "keep", "discard", "discard", "discard", "crash"])
    fingerprint = f"fp{rng.randrange(12)}" if rng.random() < 0.5 else f"fp-unique-{i}"
    knob = rng.choice(["MATRIX_LR", "DEPTH", "WARMDOWN_RATIO"])
    return {
        "record_type": "run", "run_id": f"run{i:03d}",
        "timestamp_utc": f"2026-11-{1 + i // 1440:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00Z",
        "status": status, "description": f"{knob.lower()} tweak {i % 5} \t\u00e9\u2028",
        "commit": f"{i:04x}{'c' * 36}", "parent_commit": parent, "branch": "main", "code_fingerprint": fingerprint,
        "metrics": {"val_bpb": None if status == "crash" else round(1.0 - rng.random() * 0.05, 6)},
        "error": {"summary": "CUDA out of memory", "kind": "oom"} if status == "crash" else None,
        "change_signature": [{"name": knob, "direction": rng.choice(["up", "down"])}],
    }


def _build(root: Path, n: int, seed: int = 3) -> Store:
    """A ledger of ``n`` varied runs with champion events and corrupt lines mixed in."""
    store = Store(root, root)
    store.init()
    rng = random.Random(seed)
    lines, parent = [], None
    for i in range(n):
        record = _record(i, rng, parent)
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


def _fields(history: History) -> list[tuple]:
    return [(r.index, r.offset, r.run_id, r.status, r.val_bpb, r.idea_key, r.description) for r in history.runs]


def test_cached_history_equals_a_fresh_replay(tmp_path):
    store = _build(tmp_path, 37)
    History.load(store, quiet=True)  # writes the cache and the chunk files
    assert sorted(p.name.split("-")[1] for p in (store.cache_dir / "runs").iterdir()) == [
        f"{k}.pickle" for k in range(9)]
    cached, fresh = History.load(store, quiet=True), History.load(store, use_cache=False, quiet=True)
    assert _fields(cached) == _fields(fresh) and len(cached.runs) == 37
    assert cached.runs[-1].run_id == "run036" and cached.runs[5].run_id == "run005"
    assert [r.run_id for r in cached.runs[3:9]] == [f"run{i:03d}" for i in range(3, 9)]
    assert [r.index for r in reversed(cached.runs)] == list(range(36, -1, -1))
    assert len(cached.corrupt) == len(fresh.corrupt) == 4
    assert cached.find("run01") is None and cached.find("run012").run_id == "run012"
    assert cached.find(f"{30:04x}cc").run_id == "run030"
    with pytest.raises(IndexError):
        cached.runs[37]


@pytest.mark.parametrize("damage", ["delete", "garbage", "other_chunk"])
def test_lost_or_damaged_chunk_files_are_decoded_from_the_ledger(tmp_path, damage):
    store = _build(tmp_path, 30)
    fresh = _fields(History.load(store, use_cache=False, quiet=True))
    History.load(store, quiet=True)
    chunk = next((store.cache_dir / "runs").glob("*-2.pickle"))
    if damage == "delete":
        chunk.unlink()
    elif damage == "garbage":
        chunk.write_bytes(b"\x80\x05not a pickle")
    else:  # a well-formed chunk file holding the wrong runs
        chunk.write_bytes(next((store.cache_dir / "runs").glob("*-1.pickle")).read_bytes())
    assert _fields(History.load(store, quiet=True)) == fresh
    assert _fields(History.load(store, quiet=True)) == fresh  # and the rewritten file is good


def test_a_replaced_ledger_is_replayed_and_old_chunk_files_go(tmp_path):
    store = _build(tmp_path, 30, seed=1)
    History.load(store, quiet=True)
    old = {p.name for p in (store.cache_dir / "runs").iterdir()}
    _build(tmp_path, 20, seed=2)  # same path, different content
    history = History.load(store, quiet=True)
    assert _fields(history) == _fields(History.load(store, use_cache=False, quiet=True))
    assert not old & {p.name for p in (store.cache_dir / "runs").iterdir()}


def test_cache_lags_a_long_ledger_by_a_fixed_fraction(tmp_path):
    store = _build(tmp_path, 2100)
    History.load(store, quiet=True)
    cache = store.cache_dir / CACHE_NAME
    before = cache.read_bytes()
    store.append(json.loads(json.dumps(_record(2100, random.Random(0), None))))
    history = History.load(store, quiet=True)
    assert history.runs[-1].run_id == "run2100"  # folded from the ledger ...
    assert cache.read_bytes() == before  # ... without rewriting a cache that is one line behind
    assert _sections(history) == _sections(History.load(store, use_cache=False, quiet=True))
    for i in range(2101, 2103):
        store.append(_record(i, random.Random(i), None))
    history = History.load(store, quiet=True)
    assert cache.read_bytes() != before  # 3 lines behind a 2,500-line ledger: rewritten
    assert _fields(history) == _fields(History.load(store, use_cache=False, quiet=True))


def _sections(history: History) -> tuple:
    """What the lazily decoded sections say, in comparable form."""
    return (history.by_id, history.commits, len(history.novelty), history.novelty.outcomes, history.novelty.moves,
            [r.index for r in history.registry.notable], {k: c.to_dict() for k, c in history.registry.failures.items()})


def test_damaged_sections_are_rebuilt_from_the_runs(tmp_path):
    store = _build(tmp_path, 40)
    History.load(store, quiet=True)
    cache = store.cache_dir / CACHE_NAME
    state = pickle.loads(cache.read_bytes())
    state["sections"]["registry"] = b"garbage"
    state["sections"]["novelty"] = pickle.dumps({"not": "an index"})
    cache.write_bytes(pickle.dumps(state))
    store.append(_record(40, random.Random(40), None))  # and a line the cache has not seen
    assert _sections(History.load(store, quiet=True)) == _sections(History.load(store, use_cache=False, quiet=True))


def test_registry_fold_matches_a_scan_of_every_run(tmp_path):
    store = _build(tmp_path, 160, seed=11)
    history = History.load(store, quiet=True)
    every = list(history.runs)
    notable, events = history.registry.notable, history.events
    assert [r.index for r in notable] == sorted(r.index for r in notable)
    assert registry.champion(notable, events) is registry.champion(every, events)
    assert registry.confirmed_champion(notable, events) is registry.confirmed_champion(every, events)
    assert registry.challengers(notable, events=events) == registry.challengers(every, events=events)
    assert [lin.to_dict() for lin in registry.lineages(notable)] == [lin.to_dict() for lin in registry.lineages(every)]
    policy = PromotionPolicy()
    assert standings(notable, events, policy) == standings(every, events, policy)
    failed = Counter(r.idea_key for r in every if r.status in ("discard", "crash"))
    clusters = registry.failure_clusters(history.registry.failures)
    assert {c.key: c.count for c in clusters} == {k: n for k, n in failed.items() if n >= 2}
    assert [c.count for c in clusters] == sorted((c.count for c in clusters), reverse=True)
    for cluster in clusters:
        members = [r for r in every if r.status in ("discard", "crash") and r.idea_key == cluster.key]
        assert cluster.run_ids == [r.run_id for r in members][-registry.CLUSTER_RUN_IDS:]
        assert cluster.crashes == sum(r.status == "crash" for r in members)
        assert cluster.last_crash is next((r for r in reversed(members) if r.status == "crash"), None)


def test_a_ledger_rewritten_under_a_running_command_is_a_clear_error(tmp_path):
    store = _build(tmp_path, 30)
    History.load(store, quiet=True)
    history = History.load(store, quiet=True)  # holds offsets; its chunk files are now lost ...
    for chunk in (store.cache_dir / "runs").iterdir():
        chunk.unlink()
    data = store.ledger_path.read_bytes()
    store.ledger_path.write_bytes(b"x" * 7 + data)  # ... and the ledger shifted under it
    with pytest.raises(MemoryLabError, match="no longer matches the history cache"):
        list(history.runs)
