"""Issue 24: a verdict that refuses what it cannot trust, driven through the CLI with the fake trainer.

Each ``run``/``replicate`` call of the fake trainer takes its sidecar fields from a programmed list
(``--extra-by-call``): the comparability fields of :data:`mlhelpers.CPU_SETUP`, and either a quiet
machine's contention signals or a starved run's (CPU share 0.3, a third of the throughput).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlhelpers import CPU_SETUP, FAKE, PY, commit_change, git, ledger, log_run, make_repo, ml, records

from memorylab_core.evidence.arenas import arena_key
from memorylab_core.index.journal_index import JournalIndex
from memorylab_core.ledger.store import Store

STARVED = {**CPU_SETUP, "tokens_per_sec": 2100.0, "num_steps": 60,
           "contention": {**CPU_SETUP["contention"], "cpu_share": 0.31, "loadavg_end": 6.5}}
ARENA = arena_key(CPU_SETUP)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    monkeypatch.delenv("AUTORESEARCH_SEED", raising=False)
    monkeypatch.delenv("MEMORYLAB_ARENA", raising=False)
    return make_repo(tmp_path / "repo")


class Trainer:
    """The fake trainer's programmed calls: ``quiet(val)``, ``starved(val)`` or ``crash(fields)``, in order."""

    def __init__(self, folder: Path):
        self.path = folder / "calls.json"
        self.calls: list[dict] = []

    def plan(self, *calls: dict, error: str | None = None) -> tuple[str, ...]:
        self.calls += calls
        self.path.write_text(json.dumps(self.calls))
        return "--", PY, FAKE, "--extra-by-call", str(self.path), "--error", error or SHAPE

    @property
    def started(self) -> int:
        counter = Path(str(self.path) + ".n")
        return int(counter.read_text()) if counter.exists() else 0


SHAPE = "RuntimeError: mat1 and mat2 shapes cannot be multiplied (4x384 and 512x512)"


def quiet(val: float) -> dict:
    return {**CPU_SETUP, "val_bpb": val}


def starved(val: float) -> dict:
    return {**STARVED, "val_bpb": val}


def result(res) -> dict:
    """The ``MEMORYLAB_RESULT {json}`` line of a run or replicate."""
    line = [x for x in res.out.splitlines() if x.startswith("MEMORYLAB_RESULT ")][-1]
    return json.loads(line.split(" ", 1)[1])


def runs(repo: Path) -> list[dict]:
    return [r for r in records(repo) if r.get("record_type") != "event"]


def events(repo: Path) -> list[dict]:
    return [r for r in records(repo) if r.get("record_type") == "event"]


def test_a_starved_first_run_then_a_valid_rerun_decides(repo, tmp_path):
    trainer = Trainer(tmp_path)
    assert ml("run", "-d", "baseline", *trainer.plan(quiet(1.0)), cwd=repo).code == 0
    baseline = runs(repo)[-1]["run_id"]
    commit_change(repo, "MATRIX_LR 0.04 -> 0.05", matrix_lr=0.05)
    res = ml("run", "--rerun-confounded", *trainer.plan(starved(0.90), quiet(0.997)), cwd=repo)
    assert res.code == 0, res.err
    first, second = runs(repo)[-2:]
    # the starved run: recorded, never kept, never champion, not judged; the branch stays on its commit
    assert first["validity"] == "confounded" and first["status"] == "discard"
    assert first["promotion"]["level"] == "confounded" and not first["promotion"]["accepted"]
    assert first["decision_packet"]["git"] == "stay" and first["decision_packet"]["next_action"] == "retry"
    assert first["decision_packet"]["verdict"] is None
    # the rerun is judged against the arena's champion from valid runs (the baseline), never its own first run
    assert second["role"] == "rerun" and second["rerun_of"] == first["run_id"]
    assert second["promotion"]["champion"] == baseline and second["status"] == "keep"
    assert second["promotion"]["metrics"]["reference_val_bpb"] == 1.0
    assert result(res)["run_id"] == second["run_id"] and result(res)["git"] == "advance"
    assert [e["run_id"] for e in events(repo)] == [baseline, second["run_id"]]  # none names the starved run
    standings = ml("champion", "--json", cwd=repo).json()
    assert standings["tip"]["run_id"] == second["run_id"]
    # a starved run whose rerun is worse: discarded against the baseline; the champion never moves to it
    commit_change(repo, "WARMDOWN 0.5 -> 0.6", matrix_lr=0.05, warmdown=0.6)
    res = ml("run", "--rerun-confounded", *trainer.plan(starved(0.80), quiet(1.02)), cwd=repo)
    assert res.code == 0 and result(res)["git"] == "reset" and result(res)["status"] == "discard"
    assert ml("champion", "--json", cwd=repo).json()["tip"]["run_id"] == second["run_id"]


def test_a_confounded_keep_asked_for_by_hand_is_recorded_as_discard(repo):
    assert log_run(repo, "baseline", "keep", 1.0, setup=CPU_SETUP).code == 0
    commit_change(repo, "depth 9", depth=9)
    res = log_run(repo, "DEPTH 8 -> 9", "keep", 0.9, setup=STARVED)
    assert res.code == 0 and "recorded as discard" in res.err
    assert res.json()["status"] == "discard" and res.json()["decision_packet"]["git"] == "stay"
    assert ml("champion", "--json", cwd=repo).json()["tip"]["val_bpb"] == 1.0


def _as_before_issue_24(repo: Path, starved_id: str) -> None:
    """Rewrite the journal as MemoryLab wrote it before issue 24: the starved run kept and named by a
    champion event (the index notices the rewrite and rebuilds)."""
    lines = []
    for rec in records(repo):
        if rec.get("run_id") == starved_id and rec.get("record_type") != "event":
            rec["status"] = "keep"
        lines.append(rec)
    first_event = next(r for r in lines if r.get("record_type") == "event")
    starved = next(r for r in lines if r.get("run_id") == starved_id)
    lines.append({**first_event, "event_id": "ev-20261201T000000Z-0ld0ld00", "source": "run", "run_id": starved_id,
                  "commit": starved["commit"], "val_bpb": starved["metrics"]["val_bpb"], "level": "confirmed",
                  "confirmed_run_id": starved_id, "prior_champion": first_event["run_id"]})
    ledger(repo).write_text("".join(json.dumps(r) + "\n" for r in lines))


def test_an_older_stores_event_naming_a_confounded_run_moves_no_view(repo, tmp_path):
    """One champion rule everywhere (policy.registry.designated): champion, status, guide and the report
    name the same champion on a store whose latest champion event names a confounded run."""
    trainer = Trainer(tmp_path)
    assert ml("run", "-d", "baseline", *trainer.plan(quiet(1.0)), cwd=repo).code == 0
    commit_change(repo, "MATRIX_LR 0.04 -> 0.05", matrix_lr=0.05)
    assert result(ml("run", *trainer.plan(starved(0.9)), cwd=repo))["git"] == "stay"
    baseline, starved_run = (r["run_id"] for r in runs(repo))
    _as_before_issue_24(repo, starved_run)
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    commit_change(repo, "WARMDOWN 0.5 -> 0.6", warmdown=0.6)
    assert result(ml("run", *trainer.plan(quiet(1.01)), cwd=repo))["status"] == "discard"
    assert [e["run_id"] for e in events(repo)][-1] == starved_run and runs(repo)[1]["status"] == "keep"
    standings = ml("champion", "--json", cwd=repo).json()
    status = ml("status", "--json", cwd=repo).json()
    guide = ml("guide", "--json", cwd=repo).json()
    report = ml("report", "--json", "--since-hours", "1000", "--output", "-", cwd=repo).json()
    named = [standings["tip"]["run_id"], standings["confirmed"]["run_id"], status["champion"]["run_id"],
             guide["champion"]["run_id"], report["champion"]["run_id"]]
    assert named == [baseline] * 5
    assert standings["headline"] == status["headline"] == guide["headline"] == report["headline"]
    champion_lines = [x for x in guide["text"].splitlines() + ml("status", cwd=repo).out.splitlines()
                      if x.lstrip().lower().startswith("champion")]
    assert champion_lines and all(baseline in x and starved_run not in x for x in champion_lines), champion_lines
    assert status["confounded"] == 1


def test_every_replicate_starved_leaves_the_noise_unknown(repo, tmp_path):
    trainer = Trainer(tmp_path)
    assert ml("run", "-d", "baseline", *trainer.plan(quiet(1.0)), cwd=repo).code == 0
    res = ml("replicate", "HEAD", "--n", "3", *trainer.plan(starved(1.05), starved(0.97), starved(1.02)), cwd=repo)
    assert res.code == 0, res.err
    assert "excluded: 3 of 4 runs of its code starved (confounded)" in res.out
    assert "noise σ unknown (3 replicate runs starved, none valid" in res.out
    data = result(res)
    assert data["n"] == 1 and len(data["excluded"]) == 3 and data["noise"]["source"] == "unknown"
    status = ml("status", "--json", cwd=repo).json()
    assert status["verdict"]["noise_source"] == "unknown" and status["verdict"]["reference_n"] == 1
    assert f"noise_unknown:{ARENA}" in [a["id"] for a in status["alerts"]]
    assert "noise σ unknown" in ml("status", cwd=repo).out and "noise σ unknown" in ml("guide", cwd=repo).out
    assert "noise σ unknown" in ml("champion", cwd=repo).out
    assert "noise σ unknown" in ml("report", "--output", "-", cwd=repo).out
    # one valid replicate measures it
    res = ml("replicate", "HEAD", "--n", "1", *trainer.plan(quiet(1.002)), cwd=repo)
    assert result(res)["noise"]["source"] == "ledger" and "3 starved runs excluded" in res.out


def test_a_valid_replicate_of_a_starved_baseline_decides_it(repo, tmp_path):
    trainer = Trainer(tmp_path)
    res = ml("run", "-d", "baseline", *trainer.plan(starved(1.0)), cwd=repo)
    assert result(res)["git"] == "stay" and ml("champion", "--json", cwd=repo).json()["tip"] is None
    res = ml("replicate", "HEAD", "--n", "1", *trainer.plan(quiet(1.01)), cwd=repo)
    assert res.code == 0, res.err
    first, second = runs(repo)
    assert second["role"] == "rerun" and second["rerun_of"] == first["run_id"] and "replicate_of" not in second
    assert second["status"] == "keep" and result(res)["git"] == "advance"
    assert ml("champion", "--json", cwd=repo).json()["tip"]["run_id"] == second["run_id"]


def _busy_night(repo: Path, trainer: Trainer) -> None:
    """8 runs, 6 of them starved: a baseline, a starved replicate, then six ideas of which one is valid."""
    assert ml("run", "-d", "baseline", *trainer.plan(quiet(1.0)), cwd=repo).code == 0
    assert ml("replicate", "HEAD", "--n", "1", *trainer.plan(starved(1.04)), cwd=repo).code == 0
    ideas = [("DEPTH 8 -> 9", {"depth": 9}, starved(0.95)), ("MATRIX_LR 0.04 -> 0.05", {"matrix_lr": 0.05},
             starved(0.96)), ("WARMDOWN 0.5 -> 0.6", {"warmdown": 0.6}, quiet(0.999)),
             ("ACTIVATION relu2 -> gelu", {"activation": "gelu"}, starved(0.93)),
             ("TOTAL_BATCH_SIZE 2**19 -> 2**18", {"batch": "2**18"}, starved(0.97)),
             ("DEPTH 8 -> 7", {"depth": 7}, starved(0.94))]
    kept: dict = {}
    for message, change, call in ideas:
        commit_change(repo, message, **{**kept, **change})
        res = ml("run", *trainer.plan(call), cwd=repo)
        assert res.code == 0, res.err
        if result(res)["git"] == "advance":
            kept.update(change)
        elif result(res)["git"] == "reset":
            git(repo, "reset", "-q", "--hard", "HEAD~1")


def test_a_busy_night_is_one_alert_with_no_confounded_keep(repo, tmp_path):
    _busy_night(repo, Trainer(tmp_path))
    night = runs(repo)
    assert len(night) == 8 and sum(r["validity"] == "confounded" for r in night) == 6
    assert not [r for r in night if r["validity"] == "confounded" and r["status"] == "keep"]
    named = {e["run_id"] for e in events(repo)} | {e.get("confirmed_run_id") for e in events(repo)}
    assert not named & {r["run_id"] for r in night if r["validity"] == "confounded"}
    status = ml("status", "--json", cwd=repo).json()
    ids = [a["id"] for a in status["alerts"]]
    assert len([i for i in ids if i.startswith("busy_machine:")]) == 1 and not [i for i in ids if
                                                                                i.startswith("confounded:")]
    busy = next(a for a in status["alerts"] if a["id"].startswith("busy_machine:"))
    assert busy["confounded"] == 6 and busy["cpu_shares"] == [0.31] * 6 and "6 of the last 8 runs" in busy["message"]
    assert status["verdict"]["noise_source"] == "unknown"
    assert ml("status", cwd=repo).out.splitlines()[1].startswith("!! busy machine: 6 of the last 8 runs")
    assert ml("guide", cwd=repo).out.startswith("!! busy machine")
    report = ml("report", "--output", "-", cwd=repo).out
    headline = report.split("## Headline", 1)[1].split("\n## ", 1)[0]
    assert headline.splitlines()[2].startswith("- **Busy machine:** busy machine: 6 of the last 8 runs")
    assert "**Confounded (re-run it):**" not in headline
    queue = ml("report", "--json", "--output", "-", cwd=repo).json()["decision_queue"]
    commits = [next(r["commit"] for r in night if r["run_id"] == q["run_id"]) for q in queue]
    assert len(commits) == len(set(commits))  # one row per commit
    # the registry, champion, the report and the dashboard name the same champion: a valid run
    valid_keep = next(r["run_id"] for r in night if r["role"] == "idea" and r["status"] == "keep")
    assert ml("champion", "--json", cwd=repo).json()["tip"]["run_id"] == valid_keep
    assert ml("report", "--json", "--output", "-", cwd=repo).json()["champion"]["run_id"] == valid_keep
    html = tmp_path / "dashboard.html"
    assert ml("report", "--html", "--output", str(html), cwd=repo).code == 0
    page = html.read_text()
    assert "Busy machine." in page and valid_keep in page.split('id="champion"', 1)[1][:4000]


def test_the_views_count_the_night_alike(repo, tmp_path):
    trainer = Trainer(tmp_path)
    _busy_night(repo, trainer)
    commit_change(repo, "DEPTH 8 -> 12", warmdown=0.6, depth=12)
    assert ml("run", *trainer.plan({**CPU_SETUP, "mode": "crash"}), cwd=repo).code == 3
    status = ml("status", "--json", cwd=repo).json()
    insights = ml("insights", "--json", cwd=repo).json()
    guide = ml("guide", "--json", cwd=repo).json()
    report = ml("report", "--json", "--since-hours", "1000", "--output", "-", cwd=repo).json()
    keys = ("runs", "counts", "experiments", "idea_counts", "keep_rate", "roles", "confounded")
    accounts = [{k: view[k] for k in keys} for view in (status, insights, guide["account"], report["account"])]
    assert accounts[0] == accounts[1] == accounts[2] == accounts[3]
    # 9 runs: the starved ones and the replicate are no experiments; the valid idea and the crash are
    assert status["experiments"] == 2 and status["idea_counts"] == {"keep": 1, "discard": 0, "crash": 1}
    assert report["experiments"] == 2 and status["confounded"] == 6
    line = "experiments (ideas) 2 · keep 1 · discard 0 · crash 1 · keep rate 50.0% · 6 confounded runs (no evidence)"
    for text in (ml("status", cwd=repo).out, ml("insights", cwd=repo).out, ml("guide", cwd=repo).out,
                 ml("report", "--since-hours", "1000", "--output", "-", cwd=repo).out):
        assert line in text


def test_run_refuses_a_blocked_idea_before_training(repo, tmp_path):
    trainer = Trainer(tmp_path)
    assert ml("run", "-d", "baseline", *trainer.plan(quiet(1.0)), cwd=repo).code == 0
    commit_change(repo, "DEPTH 8 -> 10", depth=10)
    res = ml("run", *trainer.plan(quiet(1.02)), cwd=repo)
    assert result(res)["status"] == "discard" and result(res)["git"] == "reset"
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    commit_change(repo, "DEPTH 8 -> 10 with a longer warmdown", depth=10, warmdown=0.55)
    check = ml("check", "-d", "DEPTH 8 -> 10 with a longer warmdown", "--fail-on-similar", cwd=repo)
    before = trainer.started
    refused = ml("run", *trainer.plan(quiet(1.03)), cwd=repo)
    assert check.code == 2 and refused.code == 2 and trainer.started == before and len(runs(repo)) == 2
    assert refused.out == check.out and refused.out.startswith("repeat_failure → BLOCK (mode explore")
    assert "refused before training" in refused.err and "--allow-blocked" in refused.err
    forced = ml("run", "--allow-blocked", *trainer.plan(quiet(1.03)), cwd=repo)
    assert forced.code == 0 and trainer.started == before + 1
    packet = runs(repo)[-1]["decision_packet"]
    assert packet["novelty"]["classification"] == "repeat_failure" and packet["next_action"] == "abandon"


def test_a_retry_of_a_starved_commit_is_not_blocked(repo, tmp_path):
    trainer = Trainer(tmp_path)
    assert ml("run", "-d", "baseline", *trainer.plan(quiet(1.0)), cwd=repo).code == 0
    commit_change(repo, "DEPTH 8 -> 9", depth=9)
    assert result(ml("run", *trainer.plan(starved(1.1)), cwd=repo))["git"] == "stay"
    res = ml("run", *trainer.plan(quiet(0.998)), cwd=repo)  # git stay: the same commit, re-run as is
    assert res.code == 0, res.out + res.err
    assert result(res)["status"] == "keep" and runs(repo)[-1]["novelty_guard"]["classification"] == "novel"


def test_a_crash_without_eval_fields_stays_in_its_arena(repo, tmp_path):
    trainer = Trainer(tmp_path)
    assert ml("run", "-d", "baseline", *trainer.plan(quiet(1.0)), cwd=repo).code == 0
    commit_change(repo, "DEPTH 8 -> 6", depth=6)
    partial = {k: v for k, v in CPU_SETUP.items() if k not in ("eval_tokens", "max_seq_len", "tokens_per_sec")}
    res = ml("run", *trainer.plan({**partial, "eval_tokens": None, "mode": "crash"}), cwd=repo)
    assert res.code == 3, res.err
    crash = runs(repo)[-1]
    assert crash["arena"] == ARENA and crash["decision_packet"]["next_action"] == "fix_and_retry"
    status = ml("status", "--json", cwd=repo).json()
    assert status["arena"] == ARENA and status["idea_counts"]["crash"] == 1 and status["champion"] is not None
    queue = ml("report", "--json", "--output", "-", cwd=repo).json()["decision_queue"]
    assert (crash["run_id"], "fix_and_retry") in [(q["run_id"], q["next_action"]) for q in queue]
    assert crash["decision_packet"]["git"] == "stay"  # fixed in place (program.md step 8)
    train_py = repo / "train.py"
    train_py.write_text(train_py.read_text().replace("DEPTH * MATRIX_LR", "MATRIX_LR * DEPTH"))  # the fix
    git(repo, "commit", "-q", "-a", "--amend", "-m", "DEPTH 8 -> 6 (shapes fixed)")
    fixed = ml("run", *trainer.plan(quiet(1.01)), cwd=repo)  # a bug crash blocks no fix
    assert fixed.code == 0, fixed.out + fixed.err
    queue = ml("report", "--json", "--output", "-", cwd=repo).json()["decision_queue"]
    assert "fix_and_retry" not in [q["next_action"] for q in queue]


NAME_ERROR = "NameError: name 'mlp_ratio' is not defined"
OOM = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"


@pytest.mark.parametrize("error", [SHAPE, "SyntaxError: invalid syntax", NAME_ERROR, OOM])
def test_a_bug_crash_keeps_its_commit_and_the_fixed_commit_decides(repo, tmp_path, error):
    """fix_and_retry is git stay: the commit to fix is not thrown away; fixed in place (amended), its run
    decides and clears the queued fix, and a reset after it returns to the last kept commit."""
    trainer = Trainer(tmp_path)
    assert ml("run", "-d", "baseline", *trainer.plan(quiet(1.0)), cwd=repo).code == 0
    kept = git(repo, "rev-parse", "HEAD")
    commit_change(repo, "DEPTH 8 -> 6", depth=6)
    res = ml("run", *trainer.plan({**CPU_SETUP, "mode": "crash"}, error=error), cwd=repo)
    assert res.code == 3, res.err
    crash = runs(repo)[-1]
    assert crash["error"]["summary"] == error and crash["decision_packet"]["git"] == "stay"
    assert result(res)["next_action"] == "fix_and_retry" and result(res)["git"] == "stay"
    assert "git: stay (keep this commit: fix the bug in it (git commit -a --amend --no-edit)" in res.out
    train_py = repo / "train.py"
    train_py.write_text(train_py.read_text().replace("DEPTH * MATRIX_LR", "MATRIX_LR * DEPTH"))  # the fix
    git(repo, "commit", "-q", "-a", "--amend", "--no-edit")
    assert git(repo, "rev-parse", "HEAD~1") == kept
    fixed = ml("run", *trainer.plan(quiet(1.02)), cwd=repo)
    assert fixed.code == 0, fixed.out + fixed.err
    assert result(fixed)["status"] == "discard" and result(fixed)["git"] == "reset"
    assert "git: reset (git reset --hard HEAD~1" in fixed.out
    queue = ml("report", "--json", "--output", "-", cwd=repo).json()["decision_queue"]
    assert "fix_and_retry" not in [q["next_action"] for q in queue]
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    assert git(repo, "rev-parse", "HEAD") == kept  # the idea is gone whole: its crashed and its fixed code


def _no_evidence_against(repo: Path, description: str) -> None:
    """The idea of ``description`` is not tried-and-failed anywhere: guard, failure clusters, guide, insights."""
    check = ml("check", "-d", description, "--json", cwd=repo).json()
    assert check["classification"] != "repeat_failure", check
    history = JournalIndex.load(Store(repo / "results" / "memorylab", repo), quiet=True)
    assert all(c.crashes == 0 for c in history.registry.clusters(min_count=1))
    assert "avoid: DEPTH" not in ml("guide", cwd=repo).out
    assert not ml("insights", "--json", cwd=repo).json()["dead_ends"]


@pytest.mark.parametrize("error", [NAME_ERROR, OOM, "AssertionError: n_embd must divide by n_head"])
def test_a_crash_the_agent_fixes_is_no_evidence_against_its_idea(repo, tmp_path, error):
    """One rule (evidence/crashes.py): a plain-bug or out-of-memory crash is fix_and_retry, git stay, and no
    failure of the idea: crashing again and again leaves no repeat_failure, failure cluster or dead end."""
    trainer = Trainer(tmp_path)
    assert ml("run", "-d", "baseline", *trainer.plan(quiet(1.0)), cwd=repo).code == 0
    commit_change(repo, "DEPTH 8 -> 6", depth=6)
    train_py = repo / "train.py"
    for attempt in range(4):
        res = ml("run", *trainer.plan({**CPU_SETUP, "mode": "crash"}, error=error), cwd=repo)
        assert res.code == 3, res.out + res.err
        assert (result(res)["next_action"], result(res)["git"]) == ("fix_and_retry", "stay")
        train_py.write_text(train_py.read_text() + f"# fix attempt {attempt}\n")  # a fix that fails again
        git(repo, "commit", "-q", "-a", "--amend", "--no-edit")
    _no_evidence_against(repo, "DEPTH 8 -> 6")


def test_a_run_the_machine_killed_is_no_evidence_and_its_rerun_trains(repo, tmp_path):
    """A signal memorylab did not send (the kernel's OOM killer, a pre-emption) is the machine's fault (kind
    ``infra``): no failure of the idea, so running the same commit again is not refused and decides."""
    trainer = Trainer(tmp_path)
    assert ml("run", "-d", "baseline", *trainer.plan(quiet(1.0)), cwd=repo).code == 0
    commit_change(repo, "DEPTH 8 -> 6", depth=6)
    killed = ml("run", *trainer.plan({**CPU_SETUP, "mode": "killed"}), cwd=repo)
    assert killed.code == 3, killed.out + killed.err
    assert runs(repo)[-1]["error"]["kind"] == "infra"
    assert runs(repo)[-1]["error"]["summary"] == "RuntimeError: training was killed by SIGKILL (exit -9)"
    # the machine's fault: re-run the same commit (git stay), never give the unjudged idea up (reset)
    assert (result(killed)["next_action"], result(killed)["git"]) == ("retry", "stay")
    assert runs(repo)[-1]["decision_packet"]["rule"] == "CM"
    assert "git: stay (keep this commit and re-run it unchanged)" in killed.out
    _no_evidence_against(repo, "DEPTH 8 -> 6")
    rerun = ml("run", *trainer.plan(quiet(0.98)), cwd=repo)
    assert rerun.code == 0, rerun.out + rerun.err
    assert result(rerun)["status"] == "keep"



def test_a_real_crash_after_the_machine_killed_the_run_is_the_first_crash_of_the_idea(repo, tmp_path):
    """The machine's crash is no evidence, so the next run's own crash does not "crash again like" it: a fixable
    error is still the first crash of the idea (fix_and_retry, git stay), never "drop it"; nor is the machine
    killing the re-run of that crashed commit (CM: retry, git stay)."""
    trainer = Trainer(tmp_path)
    assert ml("run", "-d", "baseline", *trainer.plan(quiet(1.0)), cwd=repo).code == 0
    commit_change(repo, "DEPTH 8 -> 6", depth=6)
    assert ml("run", *trainer.plan({**CPU_SETUP, "mode": "killed"}), cwd=repo).code == 3
    res = ml("run", *trainer.plan({**CPU_SETUP, "mode": "crash"}, error="SyntaxError: invalid syntax"), cwd=repo)
    assert (result(res)["next_action"], result(res)["git"]) == ("fix_and_retry", "stay"), res.out
    assert runs(repo)[-1]["decision_packet"]["rule"] == "C2"
    # and the other way round: the machine killing the re-run of a crashed commit is not "crashed again like" it
    killed = ml("run", "--allow-blocked", *trainer.plan({**CPU_SETUP, "mode": "killed"}), cwd=repo)
    assert (result(killed)["next_action"], result(killed)["git"]) == ("retry", "stay"), killed.out
    assert runs(repo)[-1]["decision_packet"]["rule"] == "CM" and "crashed again" not in killed.out


def test_a_diverging_idea_is_evidence_against_it(repo, tmp_path):
    """A NaN loss is the idea failing (class ``fundamental``): the same idea again is a repeat_failure, its
    crash a failure cluster; run refuses it before training."""
    trainer = Trainer(tmp_path)
    assert ml("run", "-d", "baseline", *trainer.plan(quiet(1.0)), cwd=repo).code == 0
    commit_change(repo, "DEPTH 8 -> 6", depth=6)
    nan = ml("run", *trainer.plan({**CPU_SETUP, "mode": "crash"}, error="RuntimeError: loss is nan at step 3"),
             cwd=repo)
    assert nan.code == 3 and result(nan)["next_action"] == "investigate_crash" and result(nan)["git"] == "reset"
    assert ml("check", "-d", "DEPTH 8 -> 6", "--json", cwd=repo).json()["classification"] == "repeat_failure"
    history = JournalIndex.load(Store(repo / "results" / "memorylab", repo), quiet=True)
    assert [c.crashes for c in history.registry.clusters(min_count=1)] == [1]
    started = trainer.started
    again = ml("run", *trainer.plan(quiet(0.98)), cwd=repo)
    assert again.code == 2 and trainer.started == started, again.out + again.err  # refused before training


def test_log_of_the_same_run_twice_records_one_run(repo):
    from mlhelpers import fake_run

    log, summary = fake_run(repo, 1.0, setup=CPU_SETUP)
    args = ("log", "-d", "baseline", "--status", "keep", "--log", str(log), "--summary", str(summary))
    first = ml(*args, cwd=repo)
    again = ml(*args, cwd=repo)
    assert first.code == 0 and again.code == 0 and len(runs(repo)) == 1
    assert again.out.startswith(f"already logged as {runs(repo)[0]['run_id']}")
    assert ml(*args, "--json", cwd=repo).json()["already_logged"] is True


def test_the_third_machine_kill_of_one_code_in_a_row_asks_for_a_fix_not_another_rerun(repo, tmp_path):
    """Re-running a commit the machine killed is right once or twice (a pre-emption, a neighbour's memory), but
    the same code killed three times running is most likely its own memory use: fix_and_retry (git stay), so an
    agent that does what it is told does not loop on the OOM killer all night."""
    trainer = Trainer(tmp_path)
    assert ml("run", "-d", "baseline", *trainer.plan(quiet(1.0)), cwd=repo).code == 0
    commit_change(repo, "TOTAL_BATCH_SIZE 2**19 -> 2**21", batch="2**21")
    actions = []
    for _ in range(3):
        res = ml("run", "--allow-blocked", *trainer.plan({**CPU_SETUP, "mode": "killed"}), cwd=repo)
        actions.append((result(res)["next_action"], result(res)["git"], runs(repo)[-1]["decision_packet"]["rule"]))
    assert actions == [("retry", "stay", "CM"), ("retry", "stay", "CM"), ("fix_and_retry", "stay", "CK")], actions
    assert "lower DEVICE_BATCH_SIZE" in runs(repo)[-1]["decision_packet"]["rationale"]
