"""One verdict (issue 12, item 4): every view states the reference, gain and sigma the promotion policy used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlhelpers import FAKE, PY, commit_change, make_repo, ml


@pytest.fixture()
def repo(tmp_path, monkeypatch):
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    monkeypatch.delenv("AUTORESEARCH_SEED", raising=False)
    return make_repo(tmp_path / "repo")


def _train(repo: Path, val: float) -> dict:
    res = ml("run", "--allow-blocked", "--json", "--", PY, FAKE, "--val", str(val), cwd=repo)
    assert res.code == 0, res.err
    return res.json()


def _replicate(repo: Path, target: str, seeds: dict) -> None:
    res = ml("replicate", target, "--n", str(len(seeds)), "--", PY, FAKE, "--val-by-seed", json.dumps(seeds), cwd=repo)
    assert res.code == 0, res.err


def test_packet_guide_status_report_and_dashboard_agree_on_reference_and_gain(repo, tmp_path):
    _train(repo, 1.0)
    _replicate(repo, "HEAD", {"43": 1.004, "44": 0.996})  # reference 1.0 = mean of 3 runs; sigma measured
    commit_change(repo, "depth 9", depth=9)
    run = _train(repo, 1.001)
    verdict = run["decision_packet"]["verdict"]
    sigma = run["promotion"]["thresholds"]["noise"]["sigma"]
    assert run["status"] == "discard" and run["decision_packet"]["rule"] == "D2"
    # never "retry" (program.md: re-run the same commit) beside git: reset
    assert run["decision_packet"]["next_action"] == "branch_followup" and run["decision_packet"]["git"] == "reset"
    assert verdict["reference_val_bpb"] == pytest.approx(1.0) and verdict["reference_n"] == 3
    assert verdict["gain"] == pytest.approx(-0.001) and verdict["sigma"] == sigma
    assert verdict["noise_source"] == "ledger"
    assert "band 0.002" not in run["decision_packet"]["rationale"]
    assert f"noise σ {sigma:.6f} (measured" in run["decision_packet"]["rationale"]
    phrase = "reference 1.000000 (mean of 3 runs)"

    guide = ml("guide", "--json", cwd=repo).json()
    assert guide["verdict"]["reference_val_bpb"] == verdict["reference_val_bpb"]
    assert guide["verdict"]["sigma"] == sigma and guide["recent"][0]["gain"] == verdict["gain"]
    assert phrase in guide["text"] and "best single run 0.996000" in guide["text"]
    assert "gain -0.001000" in guide["text"]

    status = ml("status", cwd=repo).out
    assert phrase in status and "best single run 0.996000" in status and f"noise σ {sigma:.6f}" in status
    # the headline's "best single run" is the best run of the champion's code, as the reference line's
    assert "(best single run 0.996000)" in status and "best single run 1.000000" not in status
    assert "gain -0.001000 over the reference" in status

    report = ml("report", "--json", "--output", "-", cwd=repo).json()
    assert report["verdict"]["reference_val_bpb"] == verdict["reference_val_bpb"]
    assert report["verdict"]["sigma"] == sigma
    assert report["recent"][0]["gain"] == verdict["gain"]
    text = ml("report", "--output", "-", cwd=repo).out
    assert phrase in text and "| -0.001000 |" in text and "best single run 0.996000" in text

    html = tmp_path / "report.html"
    assert ml("report", "--html", "--output", str(html), cwd=repo).code == 0
    page = html.read_text()
    assert "reference: mean of 3 runs" in page and "best single run" in page and "confirmed" in page


def test_the_dashboard_shows_the_policys_gains_not_its_own(repo, tmp_path):
    """Runs table: each run's gain is its packet's verdict (over the reference then), as the markdown report's
    column; the challenger board measures from the champion's reference (the mean of its code's runs), never
    from its best single run; the champion-gain tile says what the markdown report says."""
    _train(repo, 1.0)
    commit_change(repo, "depth 9", depth=9)
    depth9 = _train(repo, 0.99)
    commit_change(repo, "lr 0.05", matrix_lr=0.05)
    _train(repo, 0.985)
    _replicate(repo, "HEAD", {"43": 0.989, "44": 0.990})  # reference 0.988, best single run 0.985
    html = tmp_path / "report.html"
    assert ml("report", "--html", "--all", "--output", str(html), cwd=repo).code == 0
    page = html.read_text()
    row = page[page.index('<tr id="r1" '):]  # the second run: depth 9
    row = row[:row.index("</tr>")]
    assert depth9["run_id"] in row and f"{depth9['decision_packet']['verdict']['gain']:+.4f}" in row  # +0.0100
    board = page[page.index('id="board"'):]
    board = board[:board.index("</section>")]
    assert '<span class="bad">-0.0020</span>' in board  # 0.990 against the reference 0.988
    markdown = ml("report", "--all", "--output", "-", cwd=repo).out
    assert "| -0.002000 |" in markdown.split("## Challenger board")[1]


def test_noise_far_above_the_default_is_a_status_alert(repo):
    _train(repo, 1.0)
    _replicate(repo, "HEAD", {"43": 1.1, "44": 0.9})  # sigma ~0.058: a busy machine
    data = ml("status", "--json", cwd=repo).json()
    alert = next(a for a in data["alerts"] if a["id"].startswith("noise_high:"))
    assert alert["ratio"] > 3 and "the default 0.002" in alert["message"]
    assert "noise_high" in ml("status", cwd=repo).out
    quiet = make_repo(repo.parent / "quiet")
    _train(quiet, 1.0)
    _replicate(quiet, "HEAD", {"43": 1.001, "44": 0.999})
    assert not [a for a in ml("status", "--json", cwd=quiet).json()["alerts"] if a["id"].startswith("noise_high")]


# -- roles (issue 12, item 2) -------------------------------------------------------------------------------

def test_replicates_and_the_baseline_are_no_experiments_and_no_promotions(repo):
    _train(repo, 1.0)
    _replicate(repo, "HEAD", {"43": 1.001, "44": 0.999, "45": 1.0})
    commit_change(repo, "depth 9", depth=9)
    _train(repo, 1.01)  # a discard: the only idea so far
    status = ml("status", "--json", cwd=repo).json()
    assert status["experiments"] == 1 and status["keep_rate"] == 0.0 and status["experiments_since_last_keep"] == 1
    assert status["roles"] == {"baseline": 1, "replicate": 3, "idea": 1}
    text = ml("status", cwd=repo).out
    assert "experiments (ideas) 1 · keep 0 · discard 1" in text and "1 experiment (ideas) since the last keep" in text
    report = ml("report", "--json", "--output", "-", cwd=repo).json()
    actions = [(q["run_id"], q["next_action"]) for q in report["decision_queue"]]
    assert not [a for a in actions if a[1] == "promote"]
    assert report["experiments"] == 1 and report["keep_rate"] == 0.0


def test_replicate_prints_the_same_result_fields_as_run(repo):
    run = ml("run", "--", PY, FAKE, "--val", "1.0", cwd=repo)
    run_fields = json.loads(run.out.strip().splitlines()[-1].split(" ", 1)[1])
    rep = ml("replicate", "HEAD", "--n", "1", "--", PY, FAKE, "--val", "1.001", cwd=repo)
    assert rep.code == 0, rep.err
    result = json.loads(rep.out.strip().splitlines()[-1].split(" ", 1)[1])
    assert set(run_fields) - {"level", "confirmed", "recommendation"} <= set(result)
    assert result["git"] == "stay" and result["next_action"] and result["run_id"] != run_fields["run_id"]
    assert any(line.startswith("next: ") for line in rep.out.splitlines())


# -- confound re-run (issue 12, item 3) -----------------------------------------------------------------------

def test_rerun_confounded_reruns_a_starved_run_once_as_role_rerun(repo, tmp_path):
    from mlhelpers import CPU_SETUP, records

    def runs():
        return [r for r in records(repo) if r.get("record_type") != "event"]

    starved = {**CPU_SETUP, "tokens_per_sec": 2500.0, "num_steps": 75,
               "contention": {**CPU_SETUP["contention"], "cpu_share": 0.38}}
    calls = tmp_path / "calls.json"
    calls.write_text(json.dumps([CPU_SETUP, CPU_SETUP, starved, CPU_SETUP, starved, starved]))
    fake = ("--", PY, FAKE, "--extra-by-call", str(calls))
    assert ml("run", *fake, "--val", "1.0", cwd=repo).code == 0
    commit_change(repo, "depth 9", depth=9)
    assert ml("run", *fake, "--val", "1.01", cwd=repo).code == 0
    commit_change(repo, "matrix lr", matrix_lr=0.05)
    res = ml("run", "--rerun-confounded", "--json", *fake, "--val", "0.999", cwd=repo)
    assert res.code == 0, res.err
    first, second = runs()[-2:]
    assert first["validity"] == "confounded" and "--rerun-confounded" in first["decision_packet"]["rationale"]
    assert second["role"] == "rerun" and second["rerun_of"] == first["run_id"] and second["validity"] == "valid"
    assert res.json()["run_id"] == second["run_id"] and "re-running it once" in res.err
    commit_change(repo, "warmdown", matrix_lr=0.05, warmdown=0.7)
    res = ml("run", "--rerun-confounded", *fake, "--val", "0.999", cwd=repo)  # starved twice: re-run once only
    assert res.code == 0 and [r["validity"] for r in runs()[-2:]] == ["confounded", "confounded"]
    assert len(runs()) == 6
