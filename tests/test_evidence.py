"""Comparable evidence (docs/evidence.md): arenas, roles, validity, driven through the CLI."""

from __future__ import annotations

import json

import pytest
from mlhelpers import CPU_SETUP, GPU_SETUP, REAL_LEDGERS, commit_change, log_run, make_repo, ml, records

from memorylab_core.evidence.arenas import arena_key, is_rebaseline, lineage, split_points
from memorylab_core.evidence.crashes import crash_class, is_evidence_against_idea, is_fixable
from memorylab_core.index.journal_index import JournalIndex
from memorylab_core.ledger.store import Store

STARVED = {**CPU_SETUP, "tokens_per_sec": 2500.0, "num_steps": 75,
           "contention": {**CPU_SETUP["contention"], "cpu_share": 0.38, "loadavg_end": 5.2}}


def _two_arenas(tmp_path):
    repo = make_repo(tmp_path / "repo")
    assert log_run(repo, "baseline", "keep", 2.84, setup=CPU_SETUP).code == 0
    assert log_run(repo, "baseline", "keep", 0.95, setup=GPU_SETUP).code == 0  # the same commit on a GPU
    commit_change(repo, "raise matrix lr", matrix_lr=0.05)
    assert log_run(repo, "MATRIX_LR 0.04 -> 0.05", "keep", 2.80, setup=CPU_SETUP).code == 0
    return repo


def test_arena_key_names_the_comparability_fields():
    assert arena_key(CPU_SETUP) == "cpu/cpu/60s/seq256/eval262144/data-3f2a1c9e77"
    # prepare.py's form "<source>:<hash>": two corpora of one source never share an arena
    one = arena_key({**CPU_SETUP, "data_id": "python-corpus:34f53a69013c8f55"})
    other = arena_key({**CPU_SETUP, "data_id": "python-corpus:7d0e11aa0b2c4e6f"})
    assert one.endswith("data-python-corpus-34f53a69013c") and one != other
    assert arena_key(GPU_SETUP).startswith("gpu/h100-sxm/300s/seq2048/")
    assert arena_key({"device": "cpu"}) is None  # no profile: the documented fallback applies


def test_a_re_baselines_arena_keeps_its_files_lineage():
    """``night#2`` (the arena a re-baseline split off) is of the lineage ``night``: one history of ideas on
    two yardsticks; a native arena key has no split suffix and is its own lineage."""
    splits = split_points([("keep", 1.30, "base"), ("keep", 1.65, "new GPU")], "night")
    assert [s.arena for s in splits] == ["night#2"] and lineage("night#2") == "night" == lineage("night")
    assert lineage("gpu/H100/300s") == "gpu/H100/300s"


def test_cpu_and_gpu_runs_are_two_arenas_with_their_own_champions(tmp_path):
    repo = _two_arenas(tmp_path)
    cpu, gpu = arena_key(CPU_SETUP), arena_key(GPU_SETUP)
    assert [r["arena"] for r in records(repo)] == [cpu, gpu, cpu]
    both = ml("champion", "--arena", "all", "--json", cwd=repo).json()["arenas"]
    by_arena = {a["arena"]: a for a in both}
    assert by_arena[cpu]["tip"]["val_bpb"] == 2.80 and by_arena[gpu]["confirmed"]["val_bpb"] == 0.95
    # one commit on two profiles is never one replicate group: the gpu reference is its own run
    assert by_arena[gpu]["confirmed"]["runs"] == 1 and by_arena[cpu]["confirmed"]["runs"] == 1
    gpu_status = ml("status", "--arena", gpu, "--json", cwd=repo).json()
    assert gpu_status["arena"] == gpu and gpu_status["runs"] == 1 and gpu_status["champion"]["val_bpb"] == 0.95
    cpu_status = ml("status", "--json", cwd=repo).json()  # default: the newest native run's arena
    assert cpu_status["arena"] == cpu and cpu_status["runs"] == 2
    assert "arena " + gpu in ml("status", "--arena", gpu, cwd=repo).out
    assert ml("guide", "--arena", gpu, cwd=repo).code == 0
    assert ml("status", "--arena", "nowhere", cwd=repo).code == 1


def test_first_run_of_an_arena_is_its_baseline(tmp_path):
    repo = make_repo(tmp_path / "repo")
    assert log_run(repo, "first try", "keep", 1.5, setup=GPU_SETUP).code == 0
    assert records(repo)[-1]["role"] == "baseline"
    assert "baseline" in ml("report", "-o", "-", cwd=repo).out


def test_rebaseline_row_splits_an_imported_ledger(tmp_path):
    rows = ["commit\tval_bpb\tmemory_gb\tstatus\tdescription",
            "a000001\t1.500000\t8.0\tkeep\tbaseline",
            "a000002\t1.400000\t8.0\tkeep\tlower lr",
            "a000003\t1.900000\t8.0\tkeep\tbaseline RTX 4090: 812 steps",
            "a000004\t1.800000\t8.0\tkeep\tdepth 8 -> 6",
            "a000005\t1.850000\t8.0\tdiscard\tdepth 6 -> 4"]
    path = tmp_path / "results.tsv"
    path.write_text("\n".join(rows) + "\n")
    home = ("--home", str(tmp_path / "store"))
    res = ml(*home, "import", str(path), cwd=tmp_path)
    assert res.code == 0 and "split results.tsv at row 3" in res.out
    standings = ml(*home, "champion", "--json", cwd=tmp_path).json()
    assert standings["arena"] == "results#2" and standings["tip"]["val_bpb"] == 1.8
    first = ml(*home, "champion", "--arena", "results", "--json", cwd=tmp_path).json()
    assert first["tip"]["val_bpb"] == 1.4
    again = tmp_path / "again"
    assert ml("--home", str(again), "import", "--no-split", str(path), cwd=tmp_path).code == 0
    assert ml("--home", str(again), "champion", "--json", cwd=tmp_path).json()["tip"]["val_bpb"] == 1.4


def test_rebaseline_is_read_from_structure_not_words():
    assert is_rebaseline("keep", 1.9, 1.4)  # a kept row far above the best kept: a new yardstick
    assert not is_rebaseline("keep", 1.401, 1.4)  # kept at (nearly) equal: a simplification
    assert not is_rebaseline("discard", 2.5, 1.4) and not is_rebaseline("keep", 1.9, None)
    rows = [("keep", 2.681, "baseline"), ("keep", 2.65, "lower lr vs baseline 2.681 on a new gpu, 10 min budget"),
            ("keep", 3.1, "depth 4"), ("keep", 3.0, "x"), ("keep", 3.2, "y")]
    assert [(s.row, s.arena) for s in split_points(rows, "f")] == [(2, "f#2"), (4, "f#3")]
    assert split_points(rows, "f", "none") == []
    assert [s.row for s in split_points(rows, "f", "rows", [1])] == [1]


@pytest.mark.skipif(not REAL_LEDGERS, reason="the shared fixtures (../shared) are absent")
def test_real_ledgers_imported_together_keep_per_file_champions(tmp_path):
    home = ("--home", str(tmp_path / "store"))
    res = ml(*home, "import", *map(str, REAL_LEDGERS), "--json", cwd=tmp_path)
    assert res.code == 0, res.err
    arenas = res.json()["arenas"]
    shown = ml(*home, "champion", "--arena", "all", "--json", cwd=tmp_path).json()["arenas"]
    standings = {a["arena"]: a for a in shown}
    for path in REAL_LEDGERS:
        kept = [float(line.split("\t")[1]) for line in path.read_text().splitlines()[1:]
                if line.split("\t")[3] == "keep"]
        newest = standings[arenas[path.name][-1]]
        assert newest["tip"]["val_bpb"] == min(kept), path.name


def test_starved_run_is_confounded_and_rerun(tmp_path):
    repo = make_repo(tmp_path / "repo")
    assert log_run(repo, "baseline", "keep", 1.80, setup=CPU_SETUP).code == 0
    commit_change(repo, "warmdown", warmdown=0.6)
    assert log_run(repo, "WARMDOWN_RATIO 0.5 -> 0.6", "discard", 1.81, setup=CPU_SETUP).code == 0
    commit_change(repo, "matrix lr up", matrix_lr=0.05)
    res = log_run(repo, "MATRIX_LR 0.04 -> 0.05", "discard", 2.30, setup=STARVED)
    assert res.code == 0, res.err
    record = records(repo)[-1]
    assert record["validity"] == "confounded" and record["confound"]["causes"]
    assert record["decision_packet"]["next_action"] == "retry" and "re-run" in record["decision_packet"]["rationale"]
    insights = ml("insights", "--json", cwd=repo).json()
    assert "MATRIX_LR" not in json.dumps(insights.get("dead_ends"))
    rules = [line for line in ml("guide", cwd=repo).out.splitlines() if "avoid" in line.lower() or "not repeat" in line]
    assert not [line for line in rules if "MATRIX_LR" in line]
    status = ml("status", "--json", cwd=repo).json()
    assert any(a["id"].startswith("confounded:") for a in status["alerts"])
    # a valid run of the same commit decides: the alert asking to re-run the starved one goes away
    assert log_run(repo, "MATRIX_LR 0.04 -> 0.05", "discard", 1.81, setup=CPU_SETUP).code == 0
    status = ml("status", "--json", cwd=repo).json()
    assert not any(a["id"].startswith("confounded:") for a in status["alerts"]), status["alerts"]
    assert "is confounded" not in ml("guide", cwd=repo).out


def test_bigger_model_is_not_confounded_by_its_cost(tmp_path):
    repo = make_repo(tmp_path / "repo")
    assert log_run(repo, "baseline", "keep", 1.80, setup=CPU_SETUP).code == 0
    assert log_run(repo, "baseline again", "keep", 1.80, setup=CPU_SETUP).code == 0
    commit_change(repo, "deeper", depth=12)
    bigger = {**CPU_SETUP, "tokens_per_sec": 3000.0, "num_steps": 80, "num_params_M": 7.9}
    assert log_run(repo, "DEPTH 8 -> 12", "discard", 1.83, setup=bigger).code == 0
    assert records(repo)[-1]["validity"] == "valid"


def test_index_holds_the_arena_column(tmp_path):
    repo = _two_arenas(tmp_path)
    history = JournalIndex.load(Store(repo / "results" / "memorylab", repo), quiet=True)
    assert {a for a, _, _ in history.arenas()} == {arena_key(CPU_SETUP), arena_key(GPU_SETUP)}
    assert [r.extra["arena"] for r in history.runs] == [r.arena for r in history.runs]


def test_shape_crash_then_fixed_run_leaves_no_avoid_rule(tmp_path):
    repo = make_repo(tmp_path / "repo")
    assert log_run(repo, "baseline", "keep", 1.80, setup=CPU_SETUP).code == 0
    commit_change(repo, "smaller model", depth=6)
    shape = "RuntimeError: mat1 and mat2 shapes cannot be multiplied (4x384 and 512x512)"
    assert log_run(repo, "DEPTH 8 -> 6", "crash", crash=shape, setup=CPU_SETUP).code == 0
    assert records(repo)[-1]["decision_packet"]["next_action"] == "fix_and_retry"
    crash_id = records(repo)[-1]["run_id"]
    queue = ml("report", "--json", "--output", "-", cwd=repo).json()["decision_queue"]
    assert (crash_id, "fix_and_retry") in [(q["run_id"], q["next_action"]) for q in queue]
    assert log_run(repo, "DEPTH 8 -> 6", "crash", crash=shape, setup=CPU_SETUP).code == 0
    assert log_run(repo, "DEPTH 8 -> 6 (fixed shapes)", "discard", 1.81, setup=CPU_SETUP).code == 0
    guide = ml("guide", cwd=repo).out
    assert "avoid: DEPTH" not in guide and "DEPTH 8→6 (2 failures" not in guide
    queue = ml("report", "--json", "--output", "-", cwd=repo).json()["decision_queue"]
    assert "fix_and_retry" not in [q["next_action"] for q in queue]  # the fixed run supersedes it
    history = JournalIndex.load(Store(repo / "results" / "memorylab", repo), quiet=True)
    clusters = history.registry.clusters(min_count=1)  # bug crashes are no evidence against the idea
    assert [(c.count, c.crashes) for c in clusters] == [(1, 0)]


def test_a_log_rewrites_only_its_arena_in_the_registry_snapshot(tmp_path, monkeypatch):
    """champion_challenger.json after a log equals a full recompute, though only the run's arena was
    recomputed (the other arenas' standings are carried over from the file)."""
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    repo = _two_arenas(tmp_path)
    commit_change(repo, "depth up", depth=10)
    assert log_run(repo, "DEPTH 8 -> 10", "keep", 0.93, setup=GPU_SETUP).code == 0
    root = repo / "results" / "memorylab"
    on_disk = json.loads((root / "champion_challenger.json").read_text())
    full = JournalIndex.load(Store(root, repo), quiet=True).snapshot()
    assert len(full["arenas"]) == 2
    assert {k: v for k, v in on_disk.items() if k != "generated_utc"} == \
        {k: v for k, v in full.items() if k != "generated_utc"}
    assert full["arenas"][arena_key(GPU_SETUP)]["champion"]["val_bpb"] == 0.93


@pytest.mark.parametrize(("kind", "summary", "cls", "evidence", "fixable"), [
    ("syntax", None, "bug", False, True),
    ("runtime", "NameError: name 'mlp_ratio' is not defined", "bug", False, True),
    (None, "AttributeError: 'GPT' object has no attribute 'mlp'", "bug", False, True),
    ("assertion", None, "bug", False, True),
    ("oom", None, "resource", False, True),
    ("KEYBOARD_INTERRUPT", None, "infra", False, False),
    ("infra", "RuntimeError: training was killed by SIGKILL (exit -9)", "infra", False, False),
    ("nan", "AttributeError in a hook after the loss went nan", "fundamental", True, False),
    ("timeout", None, "fundamental", True, False),
    ("runtime", "RuntimeError: CUDA error: unspecified launch failure", "unknown", True, False),
])
def test_the_one_crash_rule(kind, summary, cls, evidence, fixable):
    """evidence/crashes.py: a crash the agent fixes is never evidence against its idea (or the fixed
    re-run would be refused as a repeat failure); only fundamental and unexplained crashes are."""
    assert crash_class(kind, summary) == cls
    assert is_evidence_against_idea(kind, summary) is evidence
    assert is_fixable(kind, summary) is fixable
