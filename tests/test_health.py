"""Health: circuit breaker, plateau, anomaly detectors, alerts (one per cause), and the status dashboard."""

from __future__ import annotations

import json

import pytest
from mlhelpers import git, log_run, make_repo, ml, ml_proc, records
from researchhelpers import T0, make_event, make_run, stamp

from memorylab_core.research import health
from memorylab_core.research.memory import fold

OOM = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"


@pytest.fixture()
def repo(tmp_path, monkeypatch):
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    return make_repo(tmp_path / "repo")


def crashes(start: int, n: int, kind: str = "oom") -> list:
    return [make_run(start + k, "crash", None, f"idea {start + k}", error_kind=kind) for k in range(n)]


# -- breaker ---------------------------------------------------------------------------------------

def breaker(runs, events=()):
    """The breaker as every command sees it: the research memory's fold of runs and events."""
    return fold(runs, events).timeline.breaker()


def test_breaker_states_follow_the_streak_in_experiments():
    runs = [make_run(0, "keep", 1.0, "baseline", commit="good1234")]
    assert breaker(runs)["state"] == "closed"
    for n, state in ((2, "closed"), (3, "warning"), (4, "warning"), (5, "open"), (9, "open")):
        info = breaker(runs + crashes(1, n))
        assert info["state"] == state and info["streak"] == n
        assert info["last_good_commit"] == "good1234" and info["first_crash_run_id"] == "run00001"
    assert "good1234" in health.breaker_message(breaker(runs + crashes(1, 3)))


def test_after_a_rollback_the_breaker_resets_to_the_champion_it_chose():
    """A champion rollback since the last kept idea moves the reset target to the rolled-back-to champion's
    commit (not the keep the rollback gave up); a later kept idea is the target again."""
    from memorylab_core.ledger.model import event_from_record
    runs = [make_run(0, "keep", 1.0, "baseline", commit="base1234"),
            make_run(1, "keep", 0.99, "idea", commit="idea5678")]
    rollback = event_from_record({"record_type": "event", "event_type": "champion_change", "event_id": "evt1",
                                  "source": "rollback", "run_id": "run00000", "commit": "base1234",
                                  "timestamp_utc": stamp(T0 + 301)}, 0, 150)
    info = breaker(runs + crashes(2, 5), [rollback])
    assert info["state"] == "open" and (info["last_good_commit"], info["last_good_run_id"]) == ("base1234", "run00000")
    assert "git reset --hard base1234" in health.breaker_message(info)
    later = runs + [make_run(2, "keep", 0.98, "other idea", commit="othr9999")] + crashes(3, 5)
    assert breaker(later, [rollback])["last_good_commit"] == "othr9999"


def test_a_success_or_a_recorded_reset_closes_the_breaker():
    runs = [make_run(0, "keep", 1.0, "baseline")] + crashes(1, 6)
    assert breaker(runs + [make_run(7, "discard", 1.1)])["state"] == "closed"
    reset = make_event(6)
    assert breaker(runs, [reset])["state"] == "closed"
    more = runs + crashes(7, 3)
    info = breaker(more, [reset])
    assert info["streak"] == 3 and info["first_crash_run_id"] == "run00007"
    assert info["last_reset"]["reason"] == "fixed"


def test_check_blocks_when_open_even_in_a_fresh_process(repo):
    """The fault: a breaker kept in memory lets runs through after a restart. Ours is in the ledger."""
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    good = git(repo, "rev-parse", "HEAD")
    for k in range(health.BREAKER_WARN):
        assert log_run(repo, f"bigger batch {k}", "crash", crash=OOM).code == 0
    warned = ml("check", "-d", "a genuinely new idea about rotary base", "--fail-on-similar", cwd=repo)
    assert warned.code == 0 and "circuit breaker WARNING" in warned.out and good[:12] in warned.out
    for k in range(health.BREAKER_OPEN - health.BREAKER_WARN):
        assert log_run(repo, f"deeper {k}", "crash", crash=OOM).code == 0
    blocked = ml_proc("check", "-d", "a genuinely new idea about rotary base", "--fail-on-similar", "--json", cwd=repo)
    assert blocked.code == 2
    assert json.loads(blocked.out)["breaker"]["state"] == "open"
    assert "circuit breaker OPEN" in blocked.err
    advisory = ml("check", "-d", "a genuinely new idea about rotary base", cwd=repo)  # no flag: advisory
    assert advisory.code == 0 and "novel → ALLOW — but the circuit breaker is OPEN: BLOCK" in advisory.out


def test_reset_breaker_records_an_event_and_unblocks(repo):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    for k in range(health.BREAKER_OPEN):
        assert log_run(repo, f"idea {k}", "crash", crash=OOM).code == 0
    before = (repo / "results/memorylab/experiments.jsonl").read_bytes()
    refused = ml("status", "--reset-breaker", cwd=repo)
    assert refused.code == 1 and "--reason" in refused.err
    assert ml("status", "--reason", "x", cwd=repo).code == 1
    assert (repo / "results/memorylab/experiments.jsonl").read_bytes() == before
    res = ml("status", "--reset-breaker", "--reason", "fixed the OOM in the dataloader", "--json", cwd=repo)
    assert res.code == 0, res.err
    assert res.json()["breaker"]["state"] == "closed"
    event = records(repo)[-1]
    assert event["record_type"] == "event" and event["event_type"] == "breaker_reset"
    assert event["reason"] == "fixed the OOM in the dataloader" and event["breaker_before"]["state"] == "open"
    check = ml_proc("check", "-d", "a genuinely new idea about rotary base", "--fail-on-similar", cwd=repo)
    assert check.code == 0, check.out
    lines = len(records(repo))  # a second reset finds nothing to reset: nothing recorded (a cron job may repeat it)
    again = ml("status", "--reset-breaker", "--reason", "cron", cwd=repo)
    assert again.code == 0 and "nothing to reset, nothing recorded" in again.err and len(records(repo)) == lines


# -- alerts: one per cause ---------------------------------------------------------------------------

def _alert_ids_over(runs: list, events=()) -> list[set[str]]:
    """The set of active alert ids after each prefix of ``runs`` (as each run is logged)."""
    out, state = [], fold([])
    for run in runs:
        state.add_run(run)
        out.append({a["id"] for a in health.alerts(state.timeline)})
    return out


def test_fault_a_plateau_alert_is_raised_once_not_every_run():
    runs = [make_run(0, "keep", 1.0, "baseline"), make_run(1, "keep", 0.99, "a")]
    runs += [make_run(2 + k, "discard", 1.01, f"x{k}") for k in range(40)]
    seen = set().union(*_alert_ids_over(runs))
    assert seen == {"plateau:run00001"}


def test_crash_streak_alert_keeps_its_id_and_escalates():
    runs = [make_run(0, "keep", 1.0, "baseline")] + crashes(1, 30, "runtime")
    state = fold(runs)
    ids = set().union(*_alert_ids_over(runs))
    streak_ids = {i for i in ids if i.startswith("crash_streak:")}
    assert streak_ids == {"crash_streak:run00001"}
    (streak,) = [a for a in health.alerts(state.timeline) if a["id"].startswith("crash_streak")]
    assert streak["severity"] == "critical"


def test_crash_cluster_id_is_stable_while_the_window_slides():
    runs = [make_run(0, "keep", 1.0, "baseline")]
    for i in range(1, 60):  # an OOM every fourth run: never a streak, always a cluster
        runs.append(make_run(i, "crash", None, f"x{i}", error_kind="oom") if i % 4 == 0 else
                    make_run(i, "discard", 1.01, f"x{i}"))
    clusters = {i for ids in _alert_ids_over(runs) for i in ids if i.startswith("crash_cluster")}
    assert clusters == {"crash_cluster:oom:run00004"}


def test_memory_alert_uses_the_device_capacity_and_one_id_per_episode():
    near = [make_run(i, "discard", 1.0, f"x{i}", memory_gb=74.0, device_memory_mb=81559.0) for i in range(1, 6)]
    ids = set().union(*_alert_ids_over([make_run(0, "keep", 1.0, "baseline")] + near))
    assert ids == {"memory_near_capacity:run00001"}
    # The same peak on a bigger device is fine: nothing is hard-coded.
    roomy = [make_run(1, "discard", 1.0, "x", memory_gb=74.0, device_memory_mb=143771.0)]
    assert set().union(*_alert_ids_over(roomy)) == set()
    # No capacity known (CPU, imports): no guess.
    assert set().union(*_alert_ids_over([make_run(1, "discard", 1.0, "x", memory_gb=74.0)])) == set()


def test_loss_spikes_found_and_smooth_curves_clean():
    smooth = [{"step": s, "progress": s / 100, "loss": 9.0 - 5.0 * s / 100} for s in range(100)]
    assert health.loss_spikes(smooth) == []
    spiky = [dict(p) for p in smooth]
    for s in (50, 51):
        spiky[s]["loss"] = 6.5 + (s - 49)
    (spike,) = health.loss_spikes(spiky)
    assert spike["step"] == 51 and spike["loss"] == pytest.approx(8.5)
    early = [dict(p) for p in smooth]
    early[1]["loss"] = 20.0  # the first 2% of training is ignored
    assert health.loss_spikes(early) == []
    assert health.loss_spikes([{"loss": float("nan")}, {"step": 1}, "junk"]) == []


def test_status_reports_a_loss_spike_from_the_archived_sidecar(repo):
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    rec = records(repo)[-1]
    curve = [{"step": s, "progress": s / 100, "loss": 9.0 - s / 50, "tokens_per_sec": 1.0} for s in range(100)]
    curve[60]["loss"] = 12.0
    path = repo / "results/memorylab" / rec["artifacts"]["summary"]
    path.write_text(json.dumps({**json.loads(path.read_text()), "loss_curve": curve}))
    res = ml("status", "--json", cwd=repo)
    ids = [a["id"] for a in res.json()["alerts"]]
    assert ids == [f"loss_spike:{rec['run_id']}"]
    assert ml("status", "--json", cwd=repo).json()["alerts"] == res.json()["alerts"]


# -- the dashboard ---------------------------------------------------------------------------------

def test_status_dashboard_fits_one_screen_and_has_the_numbers(repo):
    assert ml("init", cwd=repo).code == 0
    assert ml("status", cwd=repo).code == 0  # empty store
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    assert log_run(repo, "matrix lr 0.04 -> 0.03", "discard", 1.004).code == 0
    assert log_run(repo, "depth 8 -> 16", "crash", crash=OOM).code == 0
    res = ml("status", cwd=repo)
    assert res.code == 0
    lines = res.out.splitlines()
    assert len(lines) <= 24 and max(len(line) for line in lines) <= 160
    for word in ("3 runs of every role (1 baseline, 2 idea)", "experiments (ideas) 2", "keep rate 0.0%", "champion",
                 "last run", "crash streak 1", "2 experiments (ideas) since the last keep", "breaker", "alerts"):
        assert word in res.out, word
    data = ml("status", "--json", cwd=repo).json()
    assert data["counts"] == {"keep": 1, "discard": 1, "crash": 1}
    assert data["experiments_since_last_keep"] == 2 and data["crash_streak"] == 1
    assert data["hours_since_last_improvement"] is not None and data["breaker"]["state"] == "closed"
    assert data["memory"] is None  # the toy sidecar names no device capacity


def test_the_plateau_counts_ideas_not_replicates():
    """Twenty replicates of the champion after it are confirmations, not twenty failed experiments."""
    from dataclasses import replace

    runs = [make_run(0, "keep", 1.0, "baseline"), make_run(1, "keep", 0.99, "depth 8 -> 10")]
    runs += [replace(make_run(2 + k, "keep", 0.99 + k * 1e-5, f"replicate {k}"), role="replicate",
                     replicate_of="run00001") for k in range(20)]
    plateau = fold(runs).timeline.plateau()
    assert plateau["experiments_since_improvement"] == 0 and not plateau["on_plateau"]
    runs += [make_run(22 + k, "discard", 1.01, f"idea {k}") for k in range(15)]
    plateau = fold(runs).timeline.plateau()
    assert plateau["experiments_since_improvement"] == 15 and plateau["on_plateau"]
