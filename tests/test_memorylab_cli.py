"""MemoryLab core, driven through the CLI in a scratch git repo the way an agent uses it."""

from __future__ import annotations

import json

import pytest
from mlhelpers import (
    commit_change,
    fake_run,
    git,
    ledger,
    log_run,
    make_repo,
    ml,
    records,
    write_train,
)


@pytest.fixture()
def repo(tmp_path, monkeypatch):
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    return make_repo(tmp_path / "repo")


# -- init ---------------------------------------------------------------------------------------

def test_init_is_idempotent_and_says_where_things_are(repo):
    first = ml("init", cwd=repo)
    assert first.code == 0 and "created" in first.out
    store = repo / "results" / "memorylab"
    for name in ("experiments.jsonl", "reports", "runs"):
        assert (store / name).exists()
    ledger(repo).write_text('{"run_id": "x"}\n')
    second = ml("init", "--json", cwd=repo)
    assert second.code == 0
    data = second.json()
    assert data["created"] == [] and data["root"] == str(store)
    assert ledger(repo).read_text() == '{"run_id": "x"}\n'


# -- log ----------------------------------------------------------------------------------------

def test_log_keep_with_sidecar_builds_full_record(repo):
    res = log_run(repo, "baseline", "keep", 0.9979, "--tags", "baseline, Base", "--hypothesis", "h")
    assert res.code == 0, res.err
    (rec,) = records(repo)
    assert rec["status"] == "keep" and rec["metrics"]["val_bpb"] == pytest.approx(0.9979)
    assert rec["metrics"]["memory_gb"] == pytest.approx(45060.2 / 1024, abs=1e-3)
    assert rec["tags"] == ["baseline", "base"]
    assert rec["branch"] == "autoresearch/test" and rec["commit"] == git(repo, "rev-parse", "HEAD")
    assert rec["schema_version"] == 1 and rec["run_token"]
    assert rec["run_id"].endswith(rec["commit"][:7])
    for key in ("novelty_guard", "decision_packet", "code_fingerprint", "change_signature", "error", "artifacts"):
        assert key in rec
    assert rec["decision_packet"]["next_action"] == "promote"
    assert res.json()["decision_packet"]["rule"] == "K1"


def test_a_discard_with_nothing_kept_to_compare_against_names_no_champion(repo):
    """The first run of an empty store, logged as a discard, has no champion to be worse than: rule D0 asks
    for the baseline first, and never calls the idea refuted."""
    packet = log_run(repo, "first idea", "discard", 1.2).json()["decision_packet"]
    assert (packet["rule"], packet["next_action"], packet["hypothesis_status"]) == ("D0", "retry", "inconclusive")
    assert "champion" not in packet["rationale"] and packet["comparison"]["prior_champion"] is None
    assert log_run(repo, "baseline", "keep", 1.0).json()["decision_packet"]["rule"] == "K1"
    assert log_run(repo, "second idea", "discard", 1.2).json()["decision_packet"]["rule"] in ("D1", "D2", "D3")


def test_log_from_run_log_only(repo):
    res = log_run(repo, "baseline from log", "keep", 1.0123, sidecar=False)
    assert res.code == 0, res.err
    (rec,) = records(repo)
    assert rec["metrics"]["val_bpb"] == pytest.approx(1.0123)
    assert rec["metrics"]["num_steps"] == 953


def test_log_crash_extracts_error_and_nulls_val_bpb(repo):
    res = log_run(repo, "giant batch", "crash", crash="torch.OutOfMemoryError: CUDA out of memory. Tried 2 GiB")
    assert res.code == 0, res.err
    (rec,) = records(repo)
    assert rec["metrics"]["val_bpb"] is None
    assert rec["error"]["summary"].startswith("torch.OutOfMemoryError")
    assert rec["error"]["kind"] == "oom" and "Traceback" in rec["error"]["tail"]
    assert rec["decision_packet"]["next_action"] == "fix_and_retry"
    row = (repo / "results.tsv").read_text().splitlines()[-1].split("\t")
    assert row[1:4] == ["0.000000", "0.0", "crash"]


def test_log_crash_with_invalid_utf8_log(repo):
    log = repo / "run.log"
    log.write_bytes(b"step 1 \xff\xfe garbage \xc3\x28\nTraceback (most recent call last):\n"
                    b'  File "train.py", line 3, in <module>\nRuntimeError: bad \xff byte\n')
    res = ml("log", "-d", "weird bytes", "--status", "crash", "--log", str(log), cwd=repo)
    assert res.code == 0, res.err
    assert "RuntimeError: bad" in records(repo)[0]["error"]["summary"]


def test_provenance_and_artifacts_archived(repo):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    parent = git(repo, "rev-parse", "HEAD")
    commit = commit_change(repo, "raise matrix lr", matrix_lr=0.05)
    res = log_run(repo, "matrix lr 0.04 -> 0.05", "discard", 1.01)
    assert res.code == 0, res.err
    rec = records(repo)[-1]
    assert rec["commit"] == commit and rec["parent_commit"] == parent
    run_dir = repo / "results" / "memorylab" / "runs" / rec["run_id"]
    patch = (run_dir / "train.patch").read_text()
    assert "-MATRIX_LR = 0.04" in patch and "+MATRIX_LR = 0.05" in patch
    assert (run_dir / "run.log").read_text() == (repo / "run.log").read_text()
    assert json.loads((run_dir / "summary.json").read_text())["val_bpb"] == 1.01
    assert json.loads((run_dir / "decision_packet.json").read_text())["run_id"] == rec["run_id"]
    assert "# Decision packet" in (run_dir / "decision_packet.md").read_text()
    assert rec["change_signature"][0]["name"] == "MATRIX_LR"
    assert rec["change_signature"][0]["direction"] == "up"
    assert set(rec["artifacts"]) >= {"run_log", "summary", "train_patch", "decision_packet"}


def test_skip_archive_keeps_only_the_packet(repo):
    assert log_run(repo, "baseline", "keep", 1.0, "--skip-archive").code == 0
    rec = records(repo)[0]
    run_dir = repo / "results" / "memorylab" / "runs" / rec["run_id"]
    assert sorted(p.name for p in run_dir.iterdir()) == ["decision_packet.json", "decision_packet.md"]


def test_log_outside_git_repo_warns_and_nulls_provenance(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMORYLAB_HOME", str(tmp_path / "store"))
    work = tmp_path / "plain"
    work.mkdir()
    write_train(work)
    res = log_run(work, "baseline", "keep", 1.0)
    assert res.code == 0, res.err
    assert "not inside a git repository" in res.err
    rec = json.loads((tmp_path / "store" / "experiments.jsonl").read_text())
    assert rec["commit"] is None and rec["branch"] is None and rec["code_fingerprint"]


def test_run_ids_unique_within_one_second(repo):
    for _ in range(3):
        assert log_run(repo, "same commit again", "keep", 1.0).code == 0
    ids = [r["run_id"] for r in records(repo)]
    assert len(set(ids)) == 3


def test_tsv_row_has_five_fields_even_with_tabs_and_newlines(repo):
    assert log_run(repo, "tab\there\nnewline\r\nand\u2028sep", "keep", 0.99).code == 0
    lines = (repo / "results.tsv").read_text().split("\n")
    assert lines[0] == "commit\tval_bpb\tmemory_gb\tstatus\tdescription"
    fields = lines[1].split("\t")
    assert len(fields) == 5 and fields[1:4] == ["0.990000", "44.0", "keep"]
    assert fields[4] == "tab here newline and sep"


# -- bad input: exit 1, one line, nothing written ------------------------------------------------

def _bad(repo, *args):
    before = ledger(repo).read_bytes()
    tsv_before = (repo / "results.tsv").read_bytes()
    runs_before = sorted(p.name for p in (repo / "results" / "memorylab" / "runs").iterdir())
    res = ml("log", *args, cwd=repo)
    assert res.code == 1, (res.out, res.err)
    assert res.err.count("\n") == 1 and res.err.startswith("memorylab: error:")
    assert ledger(repo).read_bytes() == before
    assert (repo / "results.tsv").read_bytes() == tsv_before
    assert sorted(p.name for p in (repo / "results" / "memorylab" / "runs").iterdir()) == runs_before
    return res.err


def test_bad_inputs_rejected_and_ledger_untouched(repo, tmp_path):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    log, summary = fake_run(repo, 0.98)
    assert "unknown status" in _bad(repo, "-d", "x", "--status", "kept", "--summary", str(summary))
    assert "empty" in _bad(repo, "-d", "   ", "--status", "keep", "--summary", str(summary))
    assert "not found" in _bad(repo, "-d", "x", "--status", "keep", "--summary", str(tmp_path / "nope.json"))
    assert "not a file" in _bad(repo, "-d", "x", "--status", "keep", "--log", str(tmp_path))
    assert "needs a val_bpb" in _bad(repo, "-d", "x", "--status", "discard")
    summary.write_text(json.dumps({"val_bpb": float("nan"), "status": "ok"}))
    assert "NaN" in _bad(repo, "-d", "x", "--status", "keep", "--summary", str(summary))
    summary.write_text(json.dumps({"val_bpb": -0.5, "status": "ok"}))
    assert "negative" in _bad(repo, "-d", "x", "--status", "keep", "--summary", str(summary))
    summary.write_text(json.dumps({"val_bpb": 1e-320, "status": "ok"}))  # prints as 0.000000: no measurement
    assert "at least 0.000001" in _bad(repo, "-d", "x", "--status", "keep", "--summary", str(summary))
    summary.write_text("{not json")
    _bad(repo, "-d", "x", "--status", "keep", "--summary", str(summary))
    summary.write_text(json.dumps({"status": "crash", "error": "RuntimeError: x"}))
    assert "--status crash" in _bad(repo, "-d", "x", "--status", "keep", "--summary", str(summary))
    assert "--threshold" in _bad(repo, "-d", "x", "--status", "keep", "--log", str(log), "--threshold", "7")
    # a log that stopped before its run_token line wrote no sidecar: one carrying a token is an earlier run's
    log.write_text("prepare.py: error: AUTORESEARCH_PROFILE must be 'gpu' or 'cpu', got 'tpu'\n")
    summary.write_text(json.dumps({"val_bpb": 0.98, "status": "ok", "run_token": "feedface"}))
    assert "stale sidecar" in _bad(repo, "-d", "x", "--status", "keep", "--log", str(log), "--summary", str(summary))


def test_an_empty_store_or_target_is_refused_not_read_as_the_default(repo):
    """An empty --home or migrate --to (an unset shell variable) would mean the repository's default store:
    a one-line error instead, and nothing written there."""
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    for args in (["--home", "", "status"], ["--home", " ", "list"], ["migrate", "--to", ""],
                 ["--index-dir", "", "status"]):
        res = ml(*args, cwd=repo)
        assert res.code == 1 and "empty path or URL" in res.err and len(res.err.strip().splitlines()) == 1, res.err
    for args, words in ((["export", "-o", ""], "an empty path"), (["report", "--output", ""], "an empty path"),
                        (["status", "--arena", ""], "an empty arena"), (["list", "--arena", " "], "an empty arena")):
        res = ml(*args, cwd=repo)
        assert res.code == 1 and words in res.err and len(res.err.strip().splitlines()) == 1, (args, res.err)


def test_stale_sidecar_is_refused(repo):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    _, summary = fake_run(repo, 0.97, token="a" * 32)
    log, _ = fake_run(repo, 0.95, token="b" * 32, sidecar=False)
    summary.write_text(json.dumps({"status": "ok", "val_bpb": 0.97, "run_token": "a" * 32}))
    err = _bad(repo, "-d", "x", "--status", "keep", "--log", str(log), "--summary", str(summary))
    assert "stale sidecar" in err


# -- check: novelty guard through the CLI ---------------------------------------------------------

def test_duplicate_run_by_code_identity(repo):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    commit_change(repo, "depth 10", depth=10)
    assert log_run(repo, "depth 10", "discard", 1.02).code == 0
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    # Same code as the discarded run, retyped with different whitespace and a new description.
    text = (repo / "train.py").read_text().replace("DEPTH = 8", "DEPTH = 10   ") + "\n\n\n"
    (repo / "train.py").write_text(text)
    res = ml("check", "-d", "a completely fresh idea about optimizers", "--json", cwd=repo)
    data = res.json()
    assert data["classification"] == "duplicate_run", data
    assert data["matches"][0]["run_id"] == records(repo)[1]["run_id"]
    assert "code_identity" in data["matches"][0]["signals"]


def test_repeat_failure_by_change_signature_with_different_words(repo):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    commit_change(repo, "lr", matrix_lr=0.05)
    assert log_run(repo, "MATRIX_LR 0.04 -> 0.05", "discard", 1.01).code == 0
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    write_train(repo, matrix_lr=0.06)  # uncommitted edit, the same knob moved the same way
    res = ml("check", "-d", "make the muon step size bigger", "--json", "--fail-on-similar", cwd=repo)
    data = res.json()
    assert data["classification"] == "repeat_failure" and res.code == 2
    assert "change_signature" in data["matches"][0]["signals"]
    # The opposite direction is a different idea.
    write_train(repo, matrix_lr=0.03)
    res = ml("check", "-d", "make the muon step size smaller", "--json", cwd=repo)
    assert res.json()["classification"] != "repeat_failure"


def test_check_clean_tree_after_logged_head_judges_description(repo):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    res = ml("check", "-d", "swap ReLU squared for SwiGLU", "--json", cwd=repo)
    data = res.json()
    assert res.code == 0 and data["classification"] == "novel" and data["decision"] == "allow"
    assert "unchanged since a logged run" in data["code_signals"]


@pytest.mark.parametrize("mode,expected", [("explore", 2), ("exploit", 2), ("replicate", 2)])
def test_fail_on_similar_exit_code_for_repeat_failure(repo, mode, expected):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    assert log_run(repo, "increase depth to 12", "discard", 1.05).code == 0
    write_train(repo, depth=12)  # the agent re-applies the failed edit
    res = ml("check", "-d", "deeper model: 12 layers", "--mode", mode, "--fail-on-similar", cwd=repo)
    assert res.code == expected, res.out
    assert "repeat_failure" in res.out and "BLOCK" in res.out


def test_known_success_is_allowed_in_exploit_but_blocked_in_explore(repo):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    assert log_run(repo, "halve total batch size to 2^18", "keep", 0.99).code == 0
    explore = ml("check", "-d", "halve total batch size to 2^18", "--fail-on-similar", "--json", cwd=repo)
    exploit = ml("check", "-d", "halve total batch size to 2^18", "--mode", "exploit", "--fail-on-similar",
                 "--json", cwd=repo)
    assert explore.json()["classification"] in ("known_success", "incremental_followup")
    assert explore.code == 2 and exploit.code == 0


def test_check_rejects_bad_arguments(repo):
    res = ml("check", "-d", "x", "--mode", "yolo", cwd=repo)
    assert res.code == 1 and res.err.startswith("memorylab: error:") and res.err.count("\n") == 1
    assert ml("check", "-d", "  ", cwd=repo).code == 1


# -- registry -----------------------------------------------------------------------------------

def test_registry_is_run_centric_and_champion_is_best_keep(repo):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    assert log_run(repo, "baseline replicate", "keep", 0.99).code == 0  # same commit, second run
    assert log_run(repo, "a lucky discard", "discard", 0.90).code == 0
    assert log_run(repo, "crash", "crash", crash="RuntimeError: x").code == 0
    assert log_run(repo, "tie with champion", "keep", 0.99).code == 0
    reg = json.loads((repo / "results" / "memorylab" / "champion_challenger.json").read_text())
    recs = records(repo)
    assert reg["runs"] == 5
    assert reg["champion"]["run_id"] == recs[1]["run_id"]  # tie → earlier
    assert [c["run_id"] for c in reg["challengers"]] == [recs[4]["run_id"], recs[0]["run_id"]]
    assert recs[0]["commit"] == recs[1]["commit"] and recs[0]["run_id"] != recs[1]["run_id"]


def test_lineage_follows_commit_ancestry(repo):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    commit_change(repo, "depth", depth=9)
    assert log_run(repo, "depth 9", "keep", 0.98).code == 0
    commit_change(repo, "lr", depth=9, matrix_lr=0.05)
    assert log_run(repo, "lr up", "keep", 0.97).code == 0
    reg = json.loads((repo / "results" / "memorylab" / "champion_challenger.json").read_text())
    (lin,) = reg["lineages"]
    assert lin["length"] == 3 and lin["improvement"] == pytest.approx(0.03)


# -- report -------------------------------------------------------------------------------------

def test_report_sections_and_counts(repo):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    assert log_run(repo, "depth 12 <script>alert(1)</script>", "discard", 1.02).code == 0
    assert log_run(repo, "depth 12 again", "discard", 1.03).code == 0
    assert log_run(repo, "oom run", "crash", crash="torch.OutOfMemoryError: CUDA out of memory").code == 0
    assert log_run(repo, "better lr | pipes", "keep", 0.99, "--report").code == 0
    text = (repo / "results" / "memorylab" / "reports" / "latest.md").read_text()
    for section in ("## Headline", "## Champion", "## Decision queue", "## Challenger board",
                    "## Best lineages", "## Repeated failure clusters", "## Recent runs"):
        assert section in text
    assert "5 in this window (2 keep · 2 discard · 1 crash" in text
    assert "<script>" not in text and "better lr \\| pipes" in text
    from memorylab_core.render.report import md_cell
    assert md_cell("[x](javascript:alert(7))") == "\\[x\\](javascript:alert(7))"  # never a live link
    stamped = [p for p in (repo / "results" / "memorylab" / "reports").iterdir() if p.name != "latest.md"]
    assert len(stamped) == 1
    data = ml("report", "--json", "--output", "-", cwd=repo).json()
    assert data["counts"] == {"keep": 2, "discard": 2, "crash": 1}
    assert data["champion"]["val_bpb"] == pytest.approx(0.99)
    assert data["champion_gain"] == pytest.approx(0.01) and data["new_champion_in_window"]  # from the baseline


def test_report_output_and_empty_store(repo, tmp_path):
    assert ml("init", cwd=repo).code == 0
    out = tmp_path / "r.md"
    res = ml("report", "--output", str(out), cwd=repo)
    assert res.code == 0 and "No champion yet: the next kept run is this arena's baseline" in out.read_text()
    assert ml("report", "--output", str(tmp_path), cwd=repo).code == 1


def test_corrupt_middle_line_is_skipped_with_warning(repo):
    for i, val in enumerate((1.0, 0.99, 0.98)):
        assert log_run(repo, f"run {i}", "keep", val).code == 0
    lines = ledger(repo).read_text().splitlines(keepends=True)
    lines[1] = lines[1][: len(lines[1]) // 2] + "\n"
    ledger(repo).write_text("".join(lines))
    res = ml("report", "--json", "--output", "-", cwd=repo)
    assert res.code == 0
    assert "line 2" in res.err and "skipped" in res.err
    data = res.json()
    assert data["total_runs"] == 2 and data["champion"]["val_bpb"] == pytest.approx(0.98)
    # Logging still works and the ledger keeps its bytes.
    before = ledger(repo).read_bytes()
    assert log_run(repo, "run 3", "keep", 0.97).code == 0
    assert ledger(repo).read_bytes().startswith(before)


def test_help_lists_commands_and_exit_codes():
    res = ml("--help")
    assert res.code == 0
    for command in ("init", "check", "log", "report"):
        assert command in res.out


def test_a_first_night_report_says_how_far_the_champion_moved_from_the_baseline(repo):
    """No champion at the window start (a first night, --all, an import): the move is measured from the arena's
    first champion, its baseline, set in the window too, never left blank."""
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    assert log_run(repo, "matrix lr 0.04 -> 0.05", "keep", 0.99).code == 0
    data = ml("report", "--json", cwd=repo).json()
    assert data["champion_gain"] == pytest.approx(0.01) and data["champion_gain_from"]["val_bpb"] == 1.0
    text = ml("report", "--output", "-", cwd=repo).out
    assert "Gained +0.010000 val_bpb in this window" in text and "from the arena's first champion" in text


def test_the_morning_report_leads_with_the_alerts_status_raises(repo):
    """An open breaker (five crashes in a row) stops the loop: the report says so, as status does."""
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    for k in range(5):
        assert log_run(repo, f"crash idea {k}", "crash", crash="torch.OutOfMemoryError: CUDA out of memory").code == 0
    status = ml("status", "--json", cwd=repo).json()
    report = ml("report", "--json", cwd=repo).json()
    assert [a["id"] for a in report["alerts"]] == [a["id"] for a in status["alerts"]] and report["alerts"]
    text = ml("report", "--output", "-", cwd=repo).out
    assert all(f"**Alert ({a['severity']}):**" in text for a in status["alerts"]), text
    assert "breaker" in text.lower()
    page = repo / "page.html"
    assert ml("report", "--html", "--output", str(page), cwd=repo).code == 0
    assert all(f"Alert ({a['severity']})." in page.read_text() for a in status["alerts"])
