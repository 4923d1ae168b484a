"""Histories as people wrote them (issue 25): the published fork's stores read in place and imported
whole, the fork's own scenarios through the CLI, roles read from structure, never-ran and duplicate rows,
one champion headline in every view, and imported history visible in every view."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from mlhelpers import PROJECT, make_repo, ml, records

FORK_STORE = PROJECT.parent / "shared" / "fixtures" / "fork-store"
needs_fork = pytest.mark.skipif(not (FORK_STORE / "experiments.jsonl").is_file(),
                                reason="the shared fork-store fixture (../shared) is absent")
CRASH_IDS = ("20261204T222836Z-0ca3ff1", "20261204T222838Z-9585962", "20261204T222846Z-139bd84")
HEADER = "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"


def _fork_copy(tmp_path: Path) -> Path:
    """A writable copy of the fork's store (the fixture itself is read-only)."""
    home = tmp_path / "fork"
    shutil.copytree(FORK_STORE, home)
    for path in [home, *home.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return home


def _digests(root: Path) -> dict[str, str]:
    """sha256 of every file the fork wrote (MemoryLab's own index excluded)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith("index.sqlite")}


def _tsv(path: Path, rows: list[tuple[str, ...]]) -> Path:
    path.write_text(HEADER + "".join("\t".join(row) + "\n" for row in rows))
    return path


def _imported(tmp_path: Path, name: str, rows: list[tuple[str, ...]]) -> tuple[tuple[str, str], dict]:
    """``--home`` of a new store holding ``rows`` imported from a results.tsv named ``name``, and the
    import's ``--json`` summary."""
    at = ("--home", str(tmp_path / "store"))
    res = ml(*at, "import", str(_tsv(tmp_path / name, rows)), "--json", cwd=tmp_path)
    assert res.code == 0, res.err
    return at, res.json()


# -- the fork's store, read in place -------------------------------------------------------------

@needs_fork
def test_fork_store_in_place_reads_every_run_and_damages_nothing(tmp_path):
    home = _fork_copy(tmp_path)
    before = _digests(home)
    at = ("--home", str(home))
    listed = ml(*at, "list", "--json", cwd=tmp_path)
    assert listed.code == 0 and "skipped" not in listed.err and len(listed.json()) == 10
    status = ml(*at, "status", "--json", cwd=tmp_path).json()
    assert status["counts"] == {"keep": 3, "discard": 4, "crash": 3} and status["corrupt_lines"] == 0
    assert not [a for a in status["alerts"] if "unknown" in a["id"]]  # kinds read from the crash text (OOM, shape)
    shown = ml(*at, "show", CRASH_IDS[1], "--json", cwd=tmp_path).json()
    tail = shown["record"]["error"]["tail"]
    assert isinstance(tail, str) and tail.startswith("step 00000") and tail.endswith("size 41943040")
    files = shown["artifact_files"]
    assert all(files[name]["exists"] for name in ("archived_log_path", "train_diff_path", "decision_packet_json_path"))
    assert files["source_log_path"]["outside_store"]  # where the fork was logged from: never read
    for command in (("champion",), ("guide",), ("insights",), ("report", "-o", "-"), ("report", "--html", "-o", "-"),
                    ("export", "-f", "jsonl")):
        assert ml(*at, *command, cwd=tmp_path).code == 0, command
    assert _digests(home) == before  # champion_challenger.json, results.tsv, runs/ and the journal untouched


@needs_fork
def test_fork_store_imported_whole_with_its_archive(tmp_path):
    at = ("--home", str(tmp_path / "store"))
    res = ml(*at, "import", str(FORK_STORE / "experiments.jsonl"), "--json", cwd=tmp_path)
    assert res.code == 0, res.err
    summary = res.json()
    assert summary["imported"] == 10 and summary["status_counts"] == {"keep": 3, "discard": 4, "crash": 3}
    assert summary["artifact_files"] == sum(1 for p in (FORK_STORE / "runs").rglob("*") if p.is_file())
    crashes = [r for r in ml(*at, "list", "--status", "crash", "--json", cwd=tmp_path).json()]
    assert sorted(r["run_id"] for r in crashes) == sorted(CRASH_IDS)
    shown = ml(*at, "show", CRASH_IDS[1], "--json", cwd=tmp_path).json()
    assert "is invalid for input of size" in shown["record"]["error"]["tail"]
    assert shown["record"]["error"]["kind"] == "shape"  # read from its text, as log would
    assert shown["artifact_files"]["archived_log_path"]["exists"]
    assert Path(shown["artifact_files"]["archived_log_path"]["path"]).is_relative_to(tmp_path / "store")
    assert ml(*at, "import", str(FORK_STORE / "experiments.jsonl"), "--json", cwd=tmp_path).json()["imported"] == 0


def test_a_fork_crash_line_with_a_list_tail_is_read_everywhere(tmp_path):
    """Runs everywhere (no shared fixture): the fork's crash shape, in place and through import."""
    home = tmp_path / "fork"
    home.mkdir()
    crash = {"run_id": "20261204T222838Z-9585962", "timestamp_utc": "2026-12-04T22:28:38Z", "commit": "9585962",
             "status": "crash", "description": "n_head 4 -> 5", "metrics": {"val_bpb": None},
             "error": {"source": "run.log", "summary": "RuntimeError: shape '[32]' is invalid",
                       "tail": ["Traceback (most recent call last):", "RuntimeError: shape '[32]' is invalid"]},
             "artifacts": {"archived_log_path": "results/memorylab/runs/20261204T222838Z-9585962/run.log"}}
    (home / "experiments.jsonl").write_text(json.dumps(crash) + "\n")
    (home / "runs" / crash["run_id"]).mkdir(parents=True)
    (home / "runs" / crash["run_id"] / "run.log").write_text("Traceback ...\n")
    shown = ml("--home", str(home), "show", crash["run_id"], "--json", cwd=tmp_path)
    assert shown.code == 0 and shown.err == ""
    assert shown.json()["record"]["error"]["tail"] == "\n".join(crash["error"]["tail"])
    assert shown.json()["artifact_files"]["archived_log_path"]["exists"]
    res = ml("--home", str(tmp_path / "new"), "import", str(home / "experiments.jsonl"), "--json", cwd=tmp_path)
    assert res.json()["imported"] == 1 and res.json()["artifact_files"] == 1


# -- the fork's own scenarios, through the CLI ----------------------------------------------------

def _fork_record(run_id: str, commit: str, status: str, val: float, description: str, **extra) -> str:
    """A ledger line as the fork's tests write it (their commits are labels like ``best111``)."""
    return json.dumps({"run_id": run_id, "timestamp_utc": "2026-03-11T03:30:00Z", "branch": "autoresearch/test",
                       "commit": commit, "parent_commit": "base000", "family": "baseline", "status": status,
                       "description": description, "hypothesis": "", "tags": ["baseline"], "notes": "",
                       "metrics": {"val_bpb": val, "peak_vram_mb": 4096.0}, "error": None, "artifacts": {},
                       "novelty_guard": {"classification": "novel", "counts": {}, "match_count": 0,
                                         "top_matches": []}, **extra}) + "\n"


def test_fork_scenario_init_creates_results_tsv(tmp_path):
    repo = make_repo(tmp_path / "repo")
    assert ml("init", cwd=repo).code == 0
    assert (repo / "results.tsv").read_text() == HEADER
    (repo / "results.tsv").write_text(HEADER + "abc1234\t1.0\t1.0\tkeep\tmine\n")
    assert ml("init", "--json", cwd=repo).json()["results_tsv"] == str(repo / "results.tsv")
    assert (repo / "results.tsv").read_text().endswith("mine\n")  # never touched once it exists


def test_fork_scenario_kept_novel_run_that_is_not_the_champion_is_replicated(tmp_path):
    repo = make_repo(tmp_path / "repo")
    store = repo / "results" / "memorylab"
    store.mkdir(parents=True)
    (store / "experiments.jsonl").write_text(_fork_record("run-champion", "best111", "keep", 0.991, "baseline winner"))
    summary = tmp_path / "s.json"
    summary.write_text(json.dumps({"val_bpb": 0.994, "peak_vram_mb": 4096.0}))
    res = ml("log", "-d", "invent a new attention schedule", "--status", "keep", "--mode", "exploit",
             "--tags", "architecture,schedule", "--family", "new-sweep", "--summary", str(summary),
             "--skip-archive", "--json", cwd=repo)
    assert res.code == 0 and "skipped" not in res.err, res.err
    packet = res.json()["decision_packet"]
    assert (packet["next_action"], packet["priority"], packet["rule"]) == ("replicate", "medium", "K3")
    assert packet["comparison"]["current_champion"]["run_id"] == "run-champion"


def test_fork_scenario_report_queues_the_fork_packets(tmp_path):
    home = tmp_path / "store"
    home.mkdir()
    (home / "experiments.jsonl").write_text(
        _fork_record("run-1", "aaa1111", "keep", 0.999, "baseline", decision_packet={
            "summary": "Promote run run-1: new champion at 0.999000 val_bpb.", "next_action": "promote",
            "priority": "high"})
        + _fork_record("run-2", "bbb2222", "discard", 1.003, "increase matrix lr", decision_packet={
            "summary": "Abandon run run-2: discarded follow-up in a weak line.", "next_action": "abandon",
            "priority": "low"}))
    text = ml("--home", str(home), "report", "--since-hours", "24", "-o", "-", cwd=tmp_path).out
    queue = text.split("## Decision queue", 1)[1].split("\n## ", 1)[0]
    assert "| high | `promote` | `run-1` | Promote run run-1: new champion at 0.999000 val_bpb. |" in queue
    assert "| low | `abandon` | `run-2` |" in queue and "`aaa1111`" in text


# -- roles from structure, never-ran rows, duplicates ---------------------------------------------

def test_vs_baseline_in_a_description_is_no_baseline_and_no_split(tmp_path):
    at, res = _imported(tmp_path, "vs.tsv", [
        ("a000001", "2.681000", "8.0", "keep", "baseline"),
        ("a000002", "2.650000", "8.0", "keep", "lower lr (vs baseline 2.681)"),
        ("a000003", "2.700000", "8.0", "discard", "depth 10 vs baseline 2.681 on the new gpu, 10 min budget"),
        ("a000004", "2.640000", "8.0", "keep", "wd 0.1 vs baseline 2.681"),
        ("a000005", "2.700000", "8.0", "discard", "baseline RTX 4090 re-check vs baseline 2.681")])
    assert res["splits"] == [] and res["arenas"] == {"vs.tsv": ["vs"]}
    roles = {r["description"]: r["role"] for r in ml(*at, "list", "--json", cwd=tmp_path).json()}
    assert roles["baseline"] == "baseline"
    assert [role for text, role in roles.items() if text != "baseline"] == ["import"] * 4
    status = ml(*at, "status", "--json", cwd=tmp_path).json()
    assert status["experiments"] == 4 and status["idea_counts"]["keep"] == 2
    insights = {c["category"]: c for c in ml(*at, "insights", "--json", cwd=tmp_path).json()["categories"]}
    assert insights["regularization"]["keeps"] == 1  # "wd 0.1 vs baseline 2.681" counts as the experiment it is


def test_a_kept_row_far_above_the_best_starts_a_new_arena(tmp_path):
    at, res = _imported(tmp_path, "mac.tsv", [
        ("b000001", "2.667000", "26.9", "keep", "baseline (AdamW, default config)"),
        ("b000002", "1.807902", "20.7", "keep", "reduce depth from 8 to 4"),
        ("b000003", "2.322967", "10.8", "keep", "rerun the current config on the small machine"),
        ("b000004", "2.266713", "10.3", "keep", "shrink MLP to 3x")])
    assert [(s["row"], s["arena"]) for s in res["splits"]] == [(3, "mac#2")]
    roles = [(r["arena"], r["role"]) for r in ml(*at, "list", "--json", cwd=tmp_path).json()][::-1]
    assert roles == [("mac", "baseline"), ("mac", "import"), ("mac#2", "baseline"), ("mac#2", "import")]


def test_missing_rows_are_visible_but_never_evidence(tmp_path):
    rows = [("c000001", "1.500000", "8.0", "keep", "baseline")]
    rows += [(f"c00001{i}", "0.000000", "0.0", "missing", "swap in SwiGLU MLP") for i in range(5)]
    rows += [("c000020", "1.490000", "8.0", "keep", "lower lr")]
    at, res = _imported(tmp_path, "m.tsv", rows)
    assert res["status_counts"] == {"keep": 2, "not run": 5} and res["skipped"] == {}
    listed = ml(*at, "list", cwd=tmp_path).out
    assert listed.count(" not run ") == 5
    assert ml(*at, "list", "--status", "discard", cwd=tmp_path).out == "no runs match\n"
    metrics = ml(*at, "export", "-f", "prometheus", cwd=tmp_path).out
    assert 'memorylab_runs_total{arena="m",status="not_run"} 5' in metrics
    assert ml(*at, "show", "c000012", "--json", cwd=tmp_path).json()["record"]["original_status"] == "missing"
    # every view says "not run", never "discard" (the record stores a discard without a value)
    assert "[not run]" in ml(*at, "show", "c000012", cwd=tmp_path).out.splitlines()[0]
    assert ml(*at, "export", "-f", "csv", cwd=tmp_path).out.count(",not run,") == 5
    assert "| not run |" in ml(*at, "report", "--all", "-o", "-", cwd=tmp_path).out
    assert ml(*at, "report", "--all", "--html", cwd=tmp_path).code == 0
    page = (tmp_path / "store" / "reports" / "latest.html").read_text()
    assert page.count('data-status="not_run"') == 5 and 'data-status="discard"' not in page
    status = ml(*at, "status", "--json", cwd=tmp_path).json()
    assert status["experiments"] == 1 and status["roles"]["not_run"] == 5 and status["idea_counts"]["discard"] == 0
    report = ml(*at, "report", "--all", "--json", "-o", "-", cwd=tmp_path).json()
    assert report["failure_clusters"] == []
    insights = ml(*at, "insights", "--json", cwd=tmp_path).json()
    assert insights["dead_ends"] == [] and "swiglu" not in json.dumps(insights).lower()
    guide = ml(*at, "guide", "--json", cwd=tmp_path).json()
    assert guide["avoid"] == [] and guide["do_not_repeat"] == []
    assert ml(*at, "champion", "--json", cwd=tmp_path).json()["noise"]["groups"] == 0
    verdict = ml(*at, "check", "-d", "swap in SwiGLU MLP", "--json", cwd=tmp_path).json()
    assert verdict["classification"] == "novel"  # the guard never reads a row that never ran as a failure


def _imported_blackboard(tmp_path, lines: list[str]):
    """A cxcscmu-style blackboard ledger (``hypothesis`` and ``notes`` columns) of ``lines``, imported into a
    fresh store: the store's ``--home`` arguments and the import's JSON summary."""
    path = tmp_path / "blackboard.tsv"
    path.write_text("exp_id\tparent_exp\thypothesis\tstatus\tval_bpb\tnotes\n" + "".join(lines), encoding="utf-8")
    at = ("--home", str(tmp_path / "store"))
    res = ml(*at, "import", str(path), "--json", cwd=tmp_path)
    assert res.code == 0, res.err
    return at, res.json()


def test_a_multi_agent_ledger_is_described_by_its_hypothesis_and_its_notes_name_a_crash_cause(tmp_path):
    """A harness that writes the proposal as ``hypothesis`` and what was implemented as ``notes`` (cxcscmu's
    blackboard ledgers): the hypothesis is the description, the notes stay as an extra column, a
    ``preflight_crash`` is a crash, and notes that blame the infrastructure make it no evidence."""
    at, summary = _imported_blackboard(tmp_path, [
        "000\t\tseed stack (TTT LR=1e-3)\tbaseline\t1.081\tseed\n",
        "001\t000\tswap in SwiGLU MLP\tpreflight_crash\t\tinfrastructure sync failure\n",
        "002\t000\tlower the TTT LR to 5e-4\tdiscard\t1.083\tone-line edit of ttt_lr\n"])
    assert summary["status_counts"] == {"keep": 1, "crash": 1, "discard": 1}
    runs = ml(*at, "list", "--json", cwd=tmp_path).json()  # newest first
    assert [r["description"] for r in runs] == ["lower the TTT LR to 5e-4", "swap in SwiGLU MLP",
                                               "seed stack (TTT LR=1e-3)"]
    crash = ml(*at, "show", runs[1]["run_id"], "--json", cwd=tmp_path).json()["record"]
    assert crash["error"]["kind"] == "infra" and crash["import"]["extra"]["notes"] == "infrastructure sync failure"
    verdict = ml(*at, "check", "-d", "swap in SwiGLU MLP", "--json", cwd=tmp_path).json()
    assert verdict["classification"] == "novel"  # an infrastructure failure says nothing about the idea


def _imported_two_columns(tmp_path, header: str, lines: list[str]):
    path = tmp_path / "golf.tsv"
    path.write_text(header + "".join(lines), encoding="utf-8")
    at = ("--home", str(tmp_path / "store"))
    res = ml(*at, "import", str(path), "--json", cwd=tmp_path)
    assert res.code == 0, res.err
    return at, res.json()


def test_the_text_column_that_states_the_changes_describes_the_run(tmp_path):
    """A ledger whose ``reasoning`` column holds the proposal and whose ``description`` says how it came out
    (sofiabod's Parameter Golf run): the proposals describe the runs, the outcomes stay as an extra column,
    the import says which column it read, and a failed idea proposed again is a repeat."""
    at, summary = _imported_two_columns(tmp_path, "commit\tval_bpb\tstatus\treasoning\tdescription\n", [
        "a1\t1.228\tkeep\testablish baseline ground truth\tbaseline: unmodified train_gpt.py\n",
        "a2\t1.244\tdiscard\tmatrix_lr=0.06 + muon_backend_steps=3\tworse convergence\n",
        "a3\t1.227\tkeep\tlonger warmdown=2500\t0.0012 improvement over baseline\n",
        "a4\t1.231\tdiscard\tSwiGLU MLP\tslower steps, fewer total steps\n"])
    assert any("'reasoning'" in w for w in summary["warnings"]), summary["warnings"]
    runs = ml(*at, "list", "--json", cwd=tmp_path).json()  # newest first
    assert [r["description"] for r in runs][:2] == ["SwiGLU MLP", "longer warmdown=2500"]
    record = ml(*at, "show", runs[0]["run_id"], "--json", cwd=tmp_path).json()["record"]
    assert record["import"]["extra"]["description"] == "slower steps, fewer total steps"
    verdict = ml(*at, "check", "-d", "swap in a SwiGLU MLP", "--json", cwd=tmp_path).json()
    assert verdict["classification"] == "repeat_failure"


def test_a_why_column_beside_a_description_that_states_the_change_is_left_as_an_extra(tmp_path):
    """Where ``description`` states the changes and ``reasoning`` only says why, the description stays."""
    at, summary = _imported_two_columns(tmp_path, "commit\tval_bpb\tstatus\tdescription\treasoning\n", [
        "a1\t1.228\tkeep\tbaseline\tground truth first\n",
        "a2\t1.244\tdiscard\tmatrix_lr 0.04 -> 0.06\tfaster convergence might help\n",
        "a3\t1.227\tkeep\twarmdown 0.5 -> 0.6\tsmoother decay\n"])
    assert not any("reasoning" in w for w in summary["warnings"])
    assert [r["description"] for r in ml(*at, "list", "--json", cwd=tmp_path).json()] == [
        "warmdown 0.5 -> 0.6", "matrix_lr 0.04 -> 0.06", "baseline"]


def test_a_short_row_in_a_ledger_read_by_its_second_text_column_is_imported_with_a_warning(tmp_path):
    """The proposal column is the last one and a row stops before it: the row is imported, described by
    nothing, with the usual short-row warning; nothing raises."""
    at, summary = _imported_two_columns(tmp_path, "commit\tval_bpb\tstatus\tdescription\treasoning\n", [
        "a1\t1.2\tkeep\tbaseline run\tbaseline\n",
        "a2\t1.3\tdiscard\tworse\tmatrix_lr=0.06\n",
        "a3\t1.3\tdiscard\tcrashed early\n",
        "a4\t1.3\tdiscard\tbetter\twarmdown=2500\n"])
    assert summary["imported"] == 4
    assert any("4 of 5 columns" in w for w in summary["warnings"])
    assert any("'reasoning'" in w for w in summary["warnings"])
    runs = ml(*at, "list", "--json", cwd=tmp_path).json()
    assert [r["description"] for r in runs][:2] == ["warmdown=2500", "(no description)"]


def test_a_status_that_blames_the_harness_is_no_evidence_and_a_plain_abort_is_a_crash(tmp_path):
    """``harness_abort`` (the harness quarantined the run) is an infrastructure crash: imported as a crash of
    kind infra, so checking its idea again is novel; ``aborted`` alone is a crash whose cause is unknown."""
    at, summary = _imported_blackboard(tmp_path, [
        "000\t\tseed stack\tbaseline\t1.081\tseed\n",
        "001\t000\tswap in SwiGLU MLP\tharness_abort\t\t[QUARANTINED: supervisor lost the job]\n",
        "002\t000\tadd z-loss 1e-4\taborted\t\t\n"])
    assert summary["status_counts"] == {"keep": 1, "crash": 2}
    runs = {r["description"]: r for r in ml(*at, "list", "--json", cwd=tmp_path).json()}
    harness = ml(*at, "show", runs["swap in SwiGLU MLP"]["run_id"], "--json", cwd=tmp_path).json()["record"]
    assert harness["error"]["kind"] == "infra" and harness["original_status"] == "harness_abort"
    assert ml(*at, "show", runs["add z-loss 1e-4"]["run_id"], "--json", cwd=tmp_path).json()["record"]["error"] is None
    assert ml(*at, "check", "-d", "swap in SwiGLU MLP", "--json", cwd=tmp_path).json()["classification"] == "novel"
    again = ml(*at, "check", "-d", "add z-loss 1e-4", "--json", cwd=tmp_path).json()
    assert again["classification"] == "repeat_failure"


def test_the_guard_remembers_across_a_files_re_baseline_and_reads_a_first_experiment_as_a_move(tmp_path):
    """A re-baseline (new hardware: a keep far above the best) starts a new arena for the numbers, but the
    ideas tried before it are still the file's history: a failed idea repeated after it is a repeat. A file
    whose first row is already an experiment ("MATRIX_LR 0.04->0.05", kept) has that move kept, so taking it
    further is a follow-up; a later "re-baseline" that changes something is a run, not a new start."""
    at, data = _imported(tmp_path, "night.tsv", [
        ("a000001", "1.300000", "8.0", "keep", "MATRIX_LR 0.04->0.05"),
        ("a000002", "1.310000", "8.0", "discard", "raise depth from 8 to 10"),
        ("a000003", "1.650000", "8.0", "keep", "baseline on the new GPU"),
        ("a000004", "1.660000", "8.0", "discard", "lower weight decay to 0.1")])
    assert [s["row"] for s in data["splits"]] == [3]  # the re-baseline split the numbers (1-based row)
    repeat = ml(*at, "check", "-d", "raise depth from 8 to 12", "--json", cwd=tmp_path).json()
    assert repeat["classification"] == "repeat_failure"
    assert repeat["matches"][0]["description"] == "raise depth from 8 to 10"
    further = ml(*at, "check", "-d", "MATRIX_LR 0.05->0.06", "--json", cwd=tmp_path).json()
    assert further["classification"] == "incremental_followup"


def test_a_row_logged_twice_is_imported_once(tmp_path):
    at, data = _imported(tmp_path, "d.tsv", [("d000001", "1.500000", "8.0", "keep", "baseline"),
                                             ("d000002", "1.480000", "8.0", "keep", "lower lr"),
                                             ("d000002", "1.480000", "8.0", "keep", "lower lr"),
                                             ("d000003", "1.480000", "8.0", "discard", "lower lr")])
    assert data["imported"] == 3 and data["skipped"] == {"duplicate": 1}
    assert any("d.tsv line 4 repeats line 3" in w for w in data["warnings"])
    assert ml(*at, "champion", "--json", cwd=tmp_path).json()["noise"]["groups"] == 0  # no false replicate group


def test_rows_that_differ_in_a_column_of_their_own_are_separate_runs(tmp_path):
    """A multi-agent ledger without commits: two crashes with one description but their own experiment ids and
    timestamps are two runs (an agent resubmitted), not one run logged twice; a whole row repeated still is."""
    path = tmp_path / "m.tsv"
    path.write_text("exp_id\ttimestamp\tval_bpb\tstatus\tdescription\n"
                    "000\t2026-04-28T05:00:00Z\t1.500000\tkeep\tbaseline\n"
                    "001\t2026-04-28T05:10:00Z\t\tcrash\tenable fp8 matmuls\n"
                    "002\t2026-04-28T05:11:00Z\t\tcrash\tenable fp8 matmuls\n"
                    "002\t2026-04-28T05:11:00Z\t\tcrash\tenable fp8 matmuls\n", encoding="utf-8")
    at = ("--home", str(tmp_path / "store"))
    data = ml(*at, "import", str(path), "--json", cwd=tmp_path).json()
    assert data["imported"] == 3 and data["skipped"] == {"duplicate": 1}, data
    assert any("m.tsv line 5 repeats line 4" in w for w in data["warnings"])
    assert ml(*at, "status", "--json", cwd=tmp_path).json()["idea_counts"]["crash"] == 2


# -- one champion headline; imports in every view -------------------------------------------------

def test_one_champion_headline_in_every_view(tmp_path):
    at, _ = _imported(tmp_path, "h.tsv", [("e000001", "1.879000", "8.0", "keep", "baseline"),
                                          ("e000002", "1.500000", "8.0", "keep", "lower lr"),
                                          ("e000003", "1.227000", "8.0", "keep", "depth 6")])
    champion = ml(*at, "champion", "--json", cwd=tmp_path).json()
    headline = champion["headline"]
    assert "e000003" in headline and "unconfirmed: no replicates yet" in headline and "1.227000" in headline
    views = {"champion": ml(*at, "champion", cwd=tmp_path).out, "status": ml(*at, "status", cwd=tmp_path).out,
             "guide": ml(*at, "guide", cwd=tmp_path).out,
             "report": ml(*at, "report", "-o", "-", cwd=tmp_path).out.replace("**C", "c", 1),
             "html": ml(*at, "report", "--html", "-o", "-", cwd=tmp_path).out}
    for name, text in views.items():
        assert headline in text, name
        assert "confirmed champion" not in text.lower().replace("unconfirmed", ""), name  # the baseline is no such


def test_report_window_shows_a_timestamp_less_import(tmp_path):
    at, _ = _imported(tmp_path, "w.tsv", [(f"f00000{i}", f"1.{50 - i}0000", "8.0", "keep", f"idea {i}")
                                          for i in range(6)])
    data = ml(*at, "report", "--json", "-o", "-", cwd=tmp_path).json()
    assert data["window_runs"] == 6 and data["since_hours"] is None and data["widened_from_hours"] == 16
    text = ml(*at, "report", "-o", "-", cwd=tmp_path).out
    assert "## Headline (all time, none in the last 16 h)" in text and "No runs in this window" not in text


def test_a_timestamp_column_dates_imported_rows(tmp_path):
    """Some agents add a time column: its rows are dated (offsets honoured, stored as UTC), so tonight's rows
    fill tonight's report window; a cell that does not parse, or that lies after the import, stays undated."""
    now = datetime.now(timezone.utc)
    stamps = [(now - timedelta(hours=30)).isoformat(), (now - timedelta(hours=2)).astimezone(
        timezone(timedelta(hours=9))).isoformat(), str(int((now - timedelta(hours=1)).timestamp())), "soon",
        (now + timedelta(days=3)).isoformat()]
    path = tmp_path / "t.tsv"
    path.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\ttimestamp\n" + "".join(
        f"c00000{i}\t1.{90 - i}0000\t8.0\tkeep\tidea {i}\t{stamp}\n" for i, stamp in enumerate(stamps)))
    at = ("--home", str(tmp_path / "store"))
    assert ml(*at, "import", str(path), cwd=tmp_path).code == 0
    runs = {r["description"]: r for r in ml(*at, "list", "--json", cwd=tmp_path).json()}
    assert runs["idea 0"]["timestamp_utc"].startswith((now - timedelta(hours=30)).strftime("%Y-%m-%dT%H"))
    assert runs["idea 1"]["timestamp_utc"].startswith((now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    assert runs["idea 1"]["timestamp_utc"].endswith("Z") and runs["idea 2"]["timestamp_utc"].endswith("Z")
    assert runs["idea 3"]["timestamp_utc"] is None and runs["idea 4"]["timestamp_utc"] is None
    data = ml(*at, "report", "--json", "-o", "-", cwd=tmp_path).json()
    assert data["since_hours"] == 16 and data["window_runs"] == 2  # ideas 1 and 2 ran in the last 16 h


def test_an_imported_crash_is_shown_with_the_cause_its_words_name(tmp_path):
    """"depth 24 (OOM)" imported as a crash: status's last-run line and guide's recent runs say oom, as the
    mistake cards do, never "unknown" or a bare dash."""
    at, _ = _imported(tmp_path, "c.tsv", [("a000001", "1.000000", "8.0", "keep", "baseline"),
                                          ("a000002", "0.000000", "0.0", "crash", "depth 24 (OOM)")])
    assert "last run   crash (oom)" in ml(*at, "status", cwd=tmp_path).out
    recent = ml(*at, "guide", "--json", cwd=tmp_path).json()["recent"]
    assert [r["error_kind"] for r in recent if r["status"] == "crash"] == ["oom"]


def test_list_by_arena_and_run_numbers_per_arena(tmp_path):
    at = ("--home", str(tmp_path / "store"))
    first = _tsv(tmp_path / "one.tsv", [(f"a10000{i}", f"1.{90 - i}0000", "8.0", "keep", f"one {i}")
                                        for i in range(4)])
    second = _tsv(tmp_path / "two.tsv", [(f"b20000{i}", f"2.{90 - i}0000", "8.0", "keep", f"two {i}")
                                         for i in range(3)])
    assert ml(*at, "import", str(first), str(second), cwd=tmp_path).code == 0
    two = ml(*at, "list", "--arena", "two", "--json", cwd=tmp_path).json()
    assert [r["description"] for r in two] == ["two 2", "two 1", "two 0"] and {r["arena"] for r in two} == {"two"}
    table = ml(*at, "list", "--arena", "all", cwd=tmp_path).out.splitlines()
    assert table[0].split()[:3] == ["run_id", "arena", "status"] and table[1].split()[1] == "two"
    assert ml(*at, "list", "--arena", "three", cwd=tmp_path).code == 1
    for command in ("status", "guide", "insights"):  # one arena at a time: 'all' is an error, not the default
        res = ml(*at, command, "--arena", "all", cwd=tmp_path)
        assert res.code == 1 and "one arena at a time" in res.err and "two, one" in res.err, (command, res.err)
    page = ml(*at, "report", "--html", "--arena", "two", "-o", "-", cwd=tmp_path).out
    assert "Experiments #1–#3 (3 runs)" in page  # not #5–#7 counted across the store


def test_log_into_a_fork_store_keeps_its_journal_readable_as_written(tmp_path):
    """A native run appended to a store holding fork lines: the fork's lines stay byte-identical."""
    repo = make_repo(tmp_path / "repo")
    store = repo / "results" / "memorylab"
    store.mkdir(parents=True)
    line = _fork_record("run-old", "abc1234", "keep", 1.0, "baseline", error={"tail": ["a", "b"]})
    (store / "experiments.jsonl").write_text(line)
    summary = tmp_path / "s.json"
    summary.write_text(json.dumps({"val_bpb": 0.99}))
    assert ml("log", "-d", "lower lr", "--status", "keep", "--summary", str(summary), cwd=repo).code == 0
    assert (store / "experiments.jsonl").read_text().startswith(line) and len(records(repo)) == 2
