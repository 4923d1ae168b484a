"""Early abort (issue 27): ``memorylab run`` stops a run whose loss curve cannot catch the champion's reference.

The trainer is tests/fake_train.py printing programmable curves in train.py's step-line format; the
arena's history is logged with ``log`` and sidecars carrying loss curves.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mlhelpers import CPU_SETUP, FAKE, PY, commit_change, log_run, make_repo, ml, records
from test_run import wait_dead

from memorylab_core.ingest.watch import LineSplitter, Watcher, arena_fits, parse_step
from memorylab_core.policy import early_abort as ea

STEPS = 40


def ref_loss(p: float) -> float:
    return 4.0 + 4.0 * (1.0 - p) ** 2


def knots(offset, points: int = 21) -> list[list[float]]:
    """[[progress, loss]] of the reference curve shifted by ``offset(p)``."""
    return [[i / (points - 1), round(ref_loss(i / (points - 1)) + offset(i / (points - 1)), 6)]
            for i in range(points)]


def sidecar_curve(offset, lrm=None) -> list[dict]:
    """A sidecar's loss_curve along the reference shifted by ``offset``; with ``lrm(p)``, train.py's lr multipliers."""
    return [{"step": i, "progress": p, "loss": loss, "tokens_per_sec": 6500.0, **({"lrm": lrm(p)} if lrm else {})}
            for i, (p, loss) in enumerate(knots(offset))]


def crosser(p: float) -> float:
    """A shorter-warmdown idea: 0.3 behind at high lr, overtaking the reference in the last fifth."""
    return 0.3 if p <= 0.8 else 0.3 - 0.32 * (p - 0.8) / 0.2


def log_history(repo: Path, ordinary: int, crossers: int = 0) -> None:
    """The champion (val 1.0 on the reference curve), ``ordinary`` runs behind by d all along that finish
    0.5 d behind, and ``crossers`` late-crossing runs that finish 0.01 ahead."""
    setup = {**CPU_SETUP, "loss_curve": sidecar_curve(lambda p: 0.0)}
    assert log_run(repo, "baseline", "keep", 1.0, setup=setup).code == 0
    for i in range(ordinary):
        d = 0.02 + 0.58 * i / max(ordinary - 1, 1)
        commit_change(repo, f"idea {i}", matrix_lr=0.05 + i / 1000)
        setup = {**CPU_SETUP, "loss_curve": sidecar_curve(lambda p, d=d: d)}
        val = 1.0 + 0.5 * d + 0.001 * (i % 3 - 1)
        assert log_run(repo, f"idea {i}: matrix lr {0.05 + i / 1000:.3f}", "discard", val, setup=setup).code == 0
    for i in range(crossers):
        commit_change(repo, f"warmdown {i}", warmdown=0.2 + i / 100)
        setup = {**CPU_SETUP, "loss_curve": sidecar_curve(crosser)}
        assert log_run(repo, f"warmdown ratio {0.2 + i / 100:.2f}", "discard", 0.99, setup=setup).code == 0


def configure(repo: Path, **settings) -> None:
    (repo / "results" / "memorylab" / "early_abort.json").write_text(json.dumps(settings))


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A repo whose arena has a champion and 24 valid runs with curves (built once, copied per test)."""
    repo = make_repo(tmp_path_factory.mktemp("ea") / "repo")
    log_history(repo, 24)
    return repo


@pytest.fixture()
def env(monkeypatch):
    for name in ("MEMORYLAB_HOME", "AUTORESEARCH_SEED", "MEMORYLAB_EARLY_ABORT", "MEMORYLAB_ARENA",
                 "AUTORESEARCH_TIME_BUDGET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTORESEARCH_PROFILE", "cpu")
    return monkeypatch


@pytest.fixture()
def repo(template, tmp_path, env) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(template, copy)
    shutil.rmtree(copy / "results" / "memorylab" / "index.sqlite", ignore_errors=True)
    configure(copy, audit_every=0)
    return copy


def train(repo: Path, offset, val: float, *flags: str, tps: float = 6500.0, sleep: float = 0.03,
          description: str = "a clear loser", fake: tuple[str, ...] = ()):
    commit_change(repo, description, depth=9, activation=description)
    extra = json.dumps({**CPU_SETUP, "tokens_per_sec": tps})
    return ml("run", *flags, "--json", "--description", description, "--", PY, FAKE, "--val", str(val),
              "--curve", json.dumps(knots(offset)), "--steps", str(STEPS), "--step-sleep", str(sleep),
              "--tps", str(tps), "--sidecar-extra", extra, *fake, cwd=repo)


def last_run(repo: Path) -> dict:
    return [r for r in records(repo) if r.get("record_type") != "event"][-1]


# -- memorylab run -------------------------------------------------------------------------------------------

def test_clear_loser_is_stopped_at_the_first_checkpoint_and_recorded(repo, tmp_path):
    pidfile = tmp_path / "pids"
    res = train(repo, lambda p: 1.5, 1.75, fake=("--pidfile", str(pidfile)))
    assert res.code == 0, res.err
    assert not wait_dead([int(pid) for pid in pidfile.read_text().split()])  # the trainer's group is killed
    assert "early abort armed" in res.err
    data = res.json()
    rec = last_run(repo)
    info = rec["early_abort"]
    assert rec["status"] == "discard" and rec["metrics"]["val_bpb"] is None
    assert info["action"] == "stopped" and info["mode"] == "on" and info["progress"] == 0.25
    assert info["gap"] == pytest.approx(1.5, abs=0.01) and 0 < info["bound"] < info["gap"]
    assert info["saved_training_seconds"] == 45.0 and info["history_runs"] == 25
    assert info["reference_run"] == records(repo)[0]["run_id"]
    assert rec["launch"]["stopped_early"] and not rec["launch"]["timed_out"]
    assert rec["metrics"]["num_steps"] >= STEPS // 4 and rec["validity"] != "confounded"
    assert rec["arena"] == records(repo)[0]["arena"]
    packet = rec["decision_packet"]
    assert packet["next_action"] == "abandon" and packet["rule"] == "A1" and "stopped early" in packet["rationale"]
    assert data["status"] == "discard" and data["git"] == "reset" and data["early_abort"]["action"] == "stopped"
    assert "val_bpb:" not in (repo / "results" / "memorylab" / "runs" / rec["run_id"] / "run.log").read_text()
    # the novelty guard now treats the idea as failed
    check = ml("check", "--description", "a clear loser", "--json", cwd=repo)
    assert check.json()["classification"] == "repeat_failure"


def test_late_crossing_run_is_not_stopped_when_history_shows_crossings(tmp_path, env):
    repo = make_repo(tmp_path / "crossing")
    log_history(repo, 24, crossers=3)
    configure(repo, audit_every=0)
    res = train(repo, crosser, 0.99, description="warmdown ratio 0.25")
    assert res.code == 0, res.err
    rec = last_run(repo)
    assert "early_abort" not in rec and rec["status"] == "keep" and rec["metrics"]["val_bpb"] == 0.99


def test_the_same_crossing_run_is_stopped_without_crossings_in_history(repo):
    """The contrast: the bound comes from the arena's history, not from a fixed gap."""
    res = train(repo, crosser, 0.99, description="warmdown ratio 0.25")
    assert res.code == 0, res.err
    assert last_run(repo)["early_abort"]["action"] == "stopped"


def test_starved_run_is_never_stopped_for_being_behind(repo):
    res = train(repo, lambda p: 1.5, 1.75, tps=2000.0)
    assert res.code == 0, res.err
    rec = last_run(repo)
    assert "early_abort" not in rec and rec["metrics"]["val_bpb"] == 1.75


def test_a_run_with_another_lr_schedule_is_never_stopped(repo):
    """A warmup/warmdown edit shows in the step lines' lrm: its curve may cross late, so it is left to finish."""
    baseline = records(repo)[0]["run_id"]
    lines = "".join(f"\rstep {i:05d} ({100 * i / STEPS:.1f}%) | loss: {ref_loss(i / STEPS):.6f} | lrm: 1.00 | dt: 9ms"
                    for i in range(STEPS))
    (repo / "results" / "memorylab" / "runs" / baseline / "run.log").write_text(f"seed: 42\n{lines}\n")
    assert train(repo, lambda p: 1.5, 1.75, fake=("--lrm", "0.5")).code == 0
    rec = last_run(repo)
    assert "early_abort" not in rec and rec["metrics"]["val_bpb"] == 1.75
    assert train(repo, lambda p: 1.5, 1.75, description="same schedule, a loser").code == 0
    assert last_run(repo)["early_abort"]["action"] == "stopped"


def test_the_champions_schedule_comes_from_its_sidecar_curve(repo):
    """train.py's sidecar records lrm at every curve point: the champion's schedule is read from there (no run.log
    needed), so a run whose lrm leaves it is never stopped, and a loser on the same schedule still is."""
    baseline = records(repo)[0]["run_id"]
    summary_path = repo / "results" / "memorylab" / "runs" / baseline / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["loss_curve"] = sidecar_curve(lambda p: 0.0, lambda p: 1.0)
    summary_path.write_text(json.dumps(summary))
    assert "lrm:" not in (summary_path.parent / "run.log").read_text()  # its run.log cannot say
    assert train(repo, lambda p: 1.5, 1.75, fake=("--lrm", "0.5")).code == 0
    assert "early_abort" not in last_run(repo) and last_run(repo)["metrics"]["val_bpb"] == 1.75
    assert train(repo, lambda p: 1.5, 1.75, description="same schedule, a loser").code == 0
    assert last_run(repo)["early_abort"]["action"] == "stopped"


def test_shadow_decides_but_never_kills(repo):
    res = train(repo, lambda p: 1.5, 1.75, "--early-abort", "shadow")
    assert res.code == 0, res.err
    rec = last_run(repo)
    info = rec["early_abort"]
    assert info["mode"] == "shadow" and info["action"] == "shadow" and info["saved_training_seconds"] == 0
    assert info["would_save_training_seconds"] == 45.0
    assert rec["metrics"]["val_bpb"] == 1.75 and rec["status"] == "discard" and not rec["launch"]["stopped_early"]
    assert "shadow" in ml("run", "--help").out


def test_environment_setting_and_off(repo, env):
    env.setenv("MEMORYLAB_EARLY_ABORT", "shadow")
    assert train(repo, lambda p: 1.5, 1.75).code == 0
    assert last_run(repo)["early_abort"]["action"] == "shadow"
    assert train(repo, lambda p: 1.5, 1.75, "--early-abort", "off", description="loser 2").code == 0
    assert "early_abort" not in last_run(repo)
    env.setenv("MEMORYLAB_EARLY_ABORT", "sometimes")
    before = len(records(repo))
    res = train(repo, lambda p: 1.5, 1.75, description="loser 3")
    assert res.code == 1 and "early abort mode must be one of off|shadow|on" in res.err
    assert len(records(repo)) == before


def test_too_little_history_never_stops_anything(tmp_path, env):
    repo = make_repo(tmp_path / "young")
    log_history(repo, 10)
    configure(repo, audit_every=0)
    res = train(repo, lambda p: 3.0, 2.5)
    assert res.code == 0, res.err
    assert "early abort inactive: too little history: 11 valid finished runs with curves, needs 20" in res.err
    rec = last_run(repo)
    assert "early_abort" not in rec and rec["metrics"]["val_bpb"] == 2.5


def test_audited_share_keeps_running_and_status_shows_the_false_abort_rate(repo):
    configure(repo, audit_every=1)  # every would-be stop is audited
    assert train(repo, lambda p: 1.5, 1.75).code == 0
    info = last_run(repo)["early_abort"]
    assert info["action"] == "audit" and info["mode"] == "on" and last_run(repo)["metrics"]["val_bpb"] == 1.75
    status = ml("status", "--json", cwd=repo).json()["early_abort"]
    assert status["all_time"]["audits"] == 1 and status["all_time"]["false_aborts"] == 0
    assert status["all_time"]["false_abort_rate"] == 0.0
    assert "0 of 1 finished ahead (false aborts)" in ml("status", cwd=repo).out


def test_saved_time_adds_up_in_status_report_and_dashboard(repo):
    assert train(repo, lambda p: 1.5, 1.75).code == 0
    assert train(repo, lambda p: 2.0, 2.0, description="another loser").code == 0
    stopped = [r["early_abort"]["saved_training_seconds"] for r in records(repo) if "early_abort" in r]
    assert stopped == [45.0, 45.0]
    status = ml("status", "--json", cwd=repo).json()["early_abort"]
    assert status["stopped"] == 2 and status["saved_training_seconds"] == sum(stopped)
    text = ml("status", cwd=repo).out
    assert "stopped 2 runs early, saving 1.5 min of training" in text
    assert "last run   discard (stopped early at 25% of its budget, 45 s saved)" in text
    last = ml("status", "--json", cwd=repo).json()["last_run"]
    assert last["stopped_early"] == {"progress": 0.25, "saved_training_seconds": 45.0} and last["val_bpb"] is None
    report = ml("report", "-o", "-", cwd=repo)
    assert report.code == 0, report.err
    assert "**Early abort:** stopped 2 runs early, saving 1.5 min of training" in report.out
    html = ml("report", "--html", "-o", "-", cwd=repo)
    assert "Training saved" in html.out and "1.5 min" in html.out and "2 runs stopped early" in html.out


# -- the rule and the watcher, directly -------------------------------------------------------------------------

def test_parse_step_reads_train_py_lines():
    line = ("step 00042 (25.3%) | loss: 5.123456 | lrm: 1.00 | dt: 365ms | tok/sec: 5,608 | mfu: n/a | "
            "epoch: 1 | remaining: 34s    ")
    assert parse_step(line) == (42, 0.253, 5.123456, 1.0, 5608.0)
    assert parse_step("step 00001 (0.0%) | loss: 9.01") == (1, 0.0, 9.01, None, None)
    assert parse_step("step 00001 | loss 9.01") is None and parse_step("val_bpb: 1.0") is None
    splitter = LineSplitter()
    assert splitter.feed(b"\rstep 1 (1.0%) | lo") == [""] and splitter.feed(b"ss: 2\r") == ["step 1 (1.0%) | loss: 2"]


def test_bound_is_above_every_history_winner_gap():
    history = [ea.HistoryRun(f"r{i}", [(0.0, 8.0 + d), (1.0, 4.0 + d)], 1.0 + 0.5 * d)
               for i, d in enumerate([0.01 * k for k in range(25)])]
    history.append(ea.HistoryRun("late", [(0.0, 8.3), (0.5, 6.3), (1.0, 3.98)], 0.99))
    reference = [ea.HistoryRun("champ", [(0.0, 8.0), (1.0, 4.0)], 1.0)]
    checkpoint = ea.calibrate_at(0.5, [r.curve for r in reference], 1.0, history, ea.AbortRule())
    assert checkpoint.n == 26 and checkpoint.bound > 0.3  # the late crosser was 0.3 behind at 50% and won
    winners = [ea.loss_at(r.curve, 0.5) - checkpoint.reference_loss for r in history if r.val_bpb < 1.0]
    assert all(checkpoint.bound > gap for gap in winners)
    assert ea.judge(checkpoint, checkpoint.reference_loss + checkpoint.bound + 0.01, 10, 26) is not None
    assert ea.judge(checkpoint, checkpoint.reference_loss + checkpoint.bound - 0.01, 10, 26) is None


def test_watcher_interpolates_the_checkpoint_and_audits_by_token():
    rule = ea.AbortRule(min_history=3, audit_every=0)
    history = [ea.HistoryRun(f"r{i}", [(0.0, 8.0 + d), (1.0, 4.0 + d)], 1.0 + d) for i, d in enumerate((0, .1, .2))]
    plan = ea.plan(rule, "r0", history[:1], history)
    watcher = Watcher(plan, "on", "tok", 60.0)
    watcher.feed(b"step 00001 (20.0%) | loss: 9.0\rstep 00002 (30.0%) | loss: 11.0\r")
    assert watcher.stop_requested and watcher.verdict.progress == 0.25
    assert watcher.verdict.loss == pytest.approx(10.0)  # halfway between the two lines around 25%
    assert watcher.record()["saved_training_seconds"] == 45.0
    audit = ea.AbortRule(audit_every=10)
    tokens = [f"t{i}" for i in range(1000)]
    share = sum(ea.audited(t, audit) for t in tokens) / len(tokens)
    assert 0.06 < share < 0.14 and ea.audited("t1", audit) == ea.audited("t1", audit)


def test_a_run_just_past_its_bound_runs_on_as_an_audit_and_one_far_past_is_stopped():
    """audit_near: in "on" mode a run first past its bound by less than 1.5x the bound finishes (an audit whose
    outcome joins the history; a stopped run never would); one well past it is stopped."""
    rule = ea.AbortRule(min_history=3, audit_every=0)
    history = [ea.HistoryRun(f"r{i}", [(0.0, 8.0 + d), (1.0, 4.0 + d)], 1.0 + d / 2 - r)
               for i, (d, r) in enumerate(((0, 0), (.1, .02), (.2, 0), (.3, 0)))]
    plan = ea.plan(rule, "r0", history[:1], history)
    first = plan.checkpoints[0]
    assert first.bound > 0
    lines = {gap: f"step 00001 (25.0%) | loss: {first.reference_loss + gap:.6f}\r".encode()
             for gap in (1.2 * first.bound, 2.0 * first.bound)}
    near, far = (Watcher(plan, "on", "tok", 60.0) for _ in range(2))
    near.feed(lines[1.2 * first.bound])
    far.feed(lines[2.0 * first.bound])
    assert not near.stop_requested and near.action == "audit" and near.verdict.near
    assert near.record()["near_bound"] and near.record()["saved_training_seconds"] == 0.0
    assert "runs on as an audit" in near.record()["reason"]
    assert far.stop_requested and not far.verdict.near and far.record()["saved_training_seconds"] == 45.0


def test_arena_fits_budget_and_profile():
    arena = "cpu/cpu/60s/seq256/eval65536/data-python-corpus-34f53a69013c"
    assert arena_fits(arena, "cpu", 60.0) and not arena_fits(arena, "cpu", 3.0) and not arena_fits(arena, "gpu", 60)
    assert arena_fits("cpu", "cpu", 5.0) and not arena_fits("default", "cpu", 60.0)


def test_store_setting_is_validated(tmp_path):
    (tmp_path / "early_abort.json").write_text('{"mode": "shadow", "min_history": 30}')
    mode, rule = ea.read_config(tmp_path)
    assert mode == "shadow" and rule.min_history == 30 and rule.margin == ea.AbortRule.margin
    (tmp_path / "early_abort.json").write_text('{"margin": 0.5}')
    with pytest.raises(ValueError, match="margin >= 1"):
        ea.read_config(tmp_path)
    (tmp_path / "early_abort.json").write_text('{"audit_near": 0.9}')
    with pytest.raises(ValueError, match="audit_near >= 1"):
        ea.read_config(tmp_path)
    (tmp_path / "early_abort.json").write_text('{"speed": 1}')
    with pytest.raises(ValueError, match="unknown key"):
        ea.read_config(tmp_path)
