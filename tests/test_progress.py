"""Research progress per arena: velocity, phase, contradictions, memory creep and drift (built ledgers)."""

from __future__ import annotations

import json
import re

import pytest
from mlhelpers import make_repo, ml
from researchhelpers import T0, stamp


@pytest.fixture()
def repo(tmp_path, monkeypatch):
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    return make_repo(tmp_path / "repo")


def record(i: int, status: str, val: float | None, description: str, *, seconds: float = 300.0,
           memory_gb: float | None = None, signature: tuple = (), error_kind: str | None = None) -> dict:
    """One ledger record (a run at T0 + 400·i seconds that trained ``seconds``)."""
    out = {"run_id": f"run{i:05d}", "status": status, "description": description, "validity": "valid",
           "timestamp_utc": stamp(T0 + 400 * i), "commit": f"{i:07d}abc", "change_signature": list(signature),
           "metrics": {"val_bpb": None if status == "crash" else val, "training_seconds": seconds,
                       "memory_gb": memory_gb}}
    if status == "crash":
        out["error"] = {"summary": f"{error_kind} failure", "kind": error_kind}
    return out


def write_ledger(repo, records: list[dict]) -> None:
    path = repo / "results" / "memorylab" / "experiments.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def halving_ledger() -> list[dict]:
    """A baseline, 20 kept ideas gaining 0.002 each, then 20 gaining 0.001 each (300 s of training each)."""
    runs, val = [record(0, "keep", 1.0, "baseline")], 1.0
    for i in range(1, 41):
        val -= 0.002 if i <= 20 else 0.001
        runs.append(record(i, "keep", round(val, 6), f"idea number {i} widen layer {i}"))
    return runs


def test_velocity_on_a_cpu_arena_is_per_cpu_hour(repo):
    """The cpu profile's training_seconds are CPU seconds: its velocity says CPU-hour, never GPU-hour."""
    arena = "cpu/cpu/60cpu-s/seq256/eval131072/data-python-corpus-6cbaf3f31fcf"
    write_ledger(repo, [{**r, "arena": arena} for r in halving_ledger()])
    status = ml("status", "--json", "--arena", arena, cwd=repo).json()
    assert status["velocity"]["hour_unit"] == "CPU-hour"
    text = ml("status", "--arena", arena, cwd=repo).out
    assert "0.0120 val_bpb/CPU-hour" in text and "GPU-hour" not in text
    guide = ml("guide", "--json", "--arena", arena, cwd=repo).json()["text"]
    assert "val_bpb/CPU-hour" in guide and "GPU-hour" not in guide


def test_velocity_halves_in_status_guide_report_and_prometheus(repo):
    write_ledger(repo, halving_ledger())
    velocity = ml("status", "--json", cwd=repo).json()["velocity"]
    recent, before, history = velocity["recent"], velocity["previous_window"], velocity["history"]
    assert recent["experiments"] == 20 and recent["gpu_hours"] == pytest.approx(20 * 300 / 3600, abs=1e-4)
    assert recent["champion"]["per_gpu_hour"] == pytest.approx(0.012, abs=1e-6)
    assert before["champion"]["per_gpu_hour"] == pytest.approx(0.024, abs=1e-6)
    assert velocity["trend"] == pytest.approx(0.5)
    assert history["champion"]["per_gpu_hour"] == pytest.approx(0.018, abs=1e-6)
    assert history["champion"]["per_experiment"] == pytest.approx(0.0015)
    assert recent["tip"]["per_experiment"] == pytest.approx(0.001)
    text = ml("status", cwd=repo).out
    assert "last 20 ideas: 0.0120 val_bpb/GPU-hour, 0.00100 val_bpb/idea" in text
    assert "trend ×0.50" in text and "None" not in text and max(len(line) for line in text.splitlines()) <= 160
    guide = ml("guide", "--json", cwd=repo).json()
    assert guide["velocity"]["trend"] == pytest.approx(0.5)
    assert "VELOCITY last 20 ideas: 0.0120 val_bpb/GPU-hour" in guide["text"]
    assert ml("report", "--json", cwd=repo).json()["velocity"]["trend"] == pytest.approx(0.5)
    assert ml("report", cwd=repo).code == 0
    markdown = (repo / "results" / "memorylab" / "reports" / "latest.md").read_text()
    assert "**Velocity:** last 20 ideas: 0.0120 val_bpb/GPU-hour" in markdown
    metrics = ml("export", "--format", "prometheus", cwd=repo).out
    assert 'memorylab_velocity_val_bpb_per_gpu_hour{arena="' in metrics
    assert any(line.endswith(" 0.012") and 'window="recent",basis="champion"' in line for line in metrics.splitlines())


def test_velocity_falls_back_to_timestamps(repo):
    runs = halving_ledger()[:3]
    for r in runs:
        del r["metrics"]["training_seconds"]
    write_ledger(repo, runs)
    history = ml("status", "--json", cwd=repo).json()["velocity"]["history"]
    assert history["gpu_hours"] == pytest.approx(800 / 3600, abs=1e-4)  # two gaps of 400 s
    assert history["champion"]["gained"] == pytest.approx(0.004)


# -- phase -------------------------------------------------------------------------------------------

def plateau_ledger(discards: int) -> list[dict]:
    """A baseline, 5 kept follow-ups, then ``discards`` discarded follow-ups."""
    runs = [record(0, "keep", 1.0, "baseline")]
    for i in range(1, 6):
        runs.append(record(i, "keep", 1.0 - 0.003 * i, f"follow up {i} lower lr"))
    for i in range(6, 6 + discards):
        runs.append(record(i, "discard", 1.1, f"follow up {i} raise lr"))
    for r in runs[1:]:
        r["novelty_guard"] = {"classification": "incremental_followup"}
    return runs


def test_a_ledger_that_plateaus_turns_the_phase_to_plateaued(repo):
    write_ledger(repo, plateau_ledger(2))
    phase = ml("status", "--json", cwd=repo).json()["phase"]
    assert phase["phase"] == "exploiting" and phase["signals"]["novel"] == 0
    write_ledger(repo, plateau_ledger(16))
    data = ml("status", "--json", cwd=repo).json()
    assert data["phase"]["phase"] == "plateaued" and data["phase"]["signals"]["experiments_since_improvement"] == 16
    text = ml("status", cwd=repo).out
    line = next(ln for ln in text.splitlines() if ln.startswith("phase"))
    assert "plateaued: 16 ideas since the last improvement" in line and "structural change" in line
    guide = ml("guide", cwd=repo).out
    assert "PHASE plateaued" in guide and "structural change" in guide


def test_phase_rule_recovering_and_exploring():
    from researchhelpers import make_run

    from memorylab_core.research.memory import fold
    from memorylab_core.research.progress import phase_of

    def phase(runs):
        state = fold(runs)
        return phase_of(state.timeline, state.velocity.view())["phase"]

    base = [make_run(0, "keep", 1.0, "baseline")]
    assert phase(base) == "starting"  # not "exploiting: 0% kept of the last 0 ideas"
    crashed = base + [make_run(i, "crash", None, f"idea {i}", error_kind="oom") for i in range(1, 4)]
    assert phase(crashed) == "recovering"
    novel = base + [make_run(i, "discard", 1.01, f"idea {i}") for i in range(1, 5)]
    for run in novel[1:]:
        run.novelty_class = "novel"
    assert phase(novel) == "exploring"
    novel[-1].novelty_class = novel[-2].novelty_class = novel[-3].novelty_class = "known_success"
    assert phase(novel) == "exploiting"


# -- contradictions -------------------------------------------------------------------------------------

def fact(name: str, old, new) -> dict:
    return {"name": name, "old": old, "new": new, "direction": "up" if new > old else "down", "source": "diff"}


def test_a_kept_then_failed_change_is_context_dependent(repo):
    write_ledger(repo, [
        record(0, "keep", 1.0, "baseline"),
        record(1, "keep", 0.99, "raise matrix lr", signature=(fact("MATRIX_LR", 0.04, 0.05),)),
        record(2, "keep", 0.98, "deeper model", signature=(fact("DEPTH", 8, 12),)),
        record(3, "discard", 1.0, "raise matrix lr again", signature=(fact("MATRIX_LR", 0.05, 0.06),)),
        record(4, "discard", 0.981, "wider mlp", signature=(fact("MLP_RATIO", 4, 5),)),  # noise: no failure
        record(5, "keep", 0.975, "wider mlp", signature=(fact("MLP_RATIO", 4, 6),)),
    ])
    data = ml("insights", "--json", cwd=repo).json()["contradictions"]
    assert len(data) == 1, data
    item = data[0]
    assert item["change"] == "MATRIX_LR:up" and item["note"] == "context-dependent: worth an ablation"
    assert (item["kept"]["run_id"], item["kept"]["context"]) == ("run00001", "run00000")
    assert (item["failed"]["run_id"], item["failed"]["context"]) == ("run00003", "run00002")
    assert item["failed"]["gain"] == pytest.approx(-0.02)
    text = ml("insights", cwd=repo).out
    # each run with its own move: the discard raised the LR from 0.05, it never made the kept 0.04→0.05
    assert ("contradiction MATRIX_LR up: kept in run00001 (MATRIX_LR 0.04→0.05, on champion run00000), discard in "
            "run00003 (MATRIX_LR 0.05→0.06, on champion run00002) — context-dependent: worth an ablation") in text
    guide = ml("guide", "--json", cwd=repo).json()
    assert guide["contradictions"][0]["change"] == "MATRIX_LR:up"
    assert "CONTEXT-DEPENDENT (worth an ablation)" in guide["text"] and "kept in run00001" in guide["text"]


# -- memory creep and drift ------------------------------------------------------------------------------

def creep_ledger(kept: int) -> list[dict]:
    """A 10 GB baseline, then ``kept`` kept ideas each 1 GB larger and a little better (a discard between)."""
    runs = [record(0, "keep", 1.0, "baseline", memory_gb=10.0)]
    for k in range(1, kept + 1):
        runs.append(record(2 * k - 1, "discard", 1.05, f"noise idea {k}", memory_gb=30.0))
        runs.append(record(2 * k, "keep", 1.0 - 0.003 * k, f"wider model {k}", memory_gb=10.0 + k))
    return runs


def test_monotone_memory_growth_raises_one_creep_alert(repo):
    write_ledger(repo, creep_ledger(2))
    assert not [a for a in ml("status", "--json", cwd=repo).json()["alerts"] if a["id"].startswith("memory_creep")]
    write_ledger(repo, creep_ledger(4))
    alerts = [a for a in ml("status", "--json", cwd=repo).json()["alerts"] if a["id"].startswith("memory_creep")]
    assert len(alerts) == 1 and alerts[0]["id"] == "memory_creep:run00000"
    assert alerts[0]["rises"] == 4 and alerts[0]["growth_since_baseline_gb"] == pytest.approx(4.0)
    assert "+4.00 GB (+40%) since the baseline run00000" in alerts[0]["message"]
    write_ledger(repo, creep_ledger(6))  # the same cause: the same id
    ids = [a["id"] for a in ml("status", "--json", cwd=repo).json()["alerts"]]
    assert "memory_creep:run00000" in ids
    shrink = creep_ledger(6) + [record(13, "keep", 0.9, "smaller model", memory_gb=9.0)]
    write_ledger(repo, shrink)
    assert not [a for a in ml("status", "--json", cwd=repo).json()["alerts"] if a["id"].startswith("memory_creep")]


def test_worsening_ideas_raise_a_drift_alert(repo):
    runs = [record(0, "keep", 1.0, "baseline")]
    runs += [record(i, "discard", 1.0 + 0.01 * i, f"idea {i} drifting") for i in range(1, 6)]
    write_ledger(repo, runs[:5])
    assert not [a for a in ml("status", "--json", cwd=repo).json()["alerts"] if a["id"].startswith("val_drift")]
    write_ledger(repo, runs)
    alerts = [a for a in ml("status", "--json", cwd=repo).json()["alerts"] if a["id"].startswith("val_drift")]
    assert len(alerts) == 1 and alerts[0]["id"] == "val_drift:run00001" and alerts[0]["worsenings"] == 4
    assert "val_bpb worsened over 5 experiments in a row, 1.010000 (run00001) to 1.050000 (run00005)" in (
        alerts[0]["message"])
    assert "val_drift:run00001" in ml("status", cwd=repo).out


# -- half-open breaker probe -----------------------------------------------------------------------------

def crash_ledger(crashes: int, last_ago_s: float) -> list[dict]:
    """A baseline, then ``crashes`` OOM crashes 60 s apart, the last ``last_ago_s`` seconds before now."""
    import time

    end = time.time() - last_ago_s
    runs = [record(0, "keep", 1.0, "baseline")]
    for k in range(1, crashes + 1):
        r = record(k, "crash", None, f"bigger batch {k}", error_kind="oom")
        r["timestamp_utc"] = stamp(end - 60 * (crashes - k))
        runs.append(r)
    return runs


def probe_check(repo) -> int:
    return ml("check", "-d", "a genuinely new idea about rotary base", "--fail-on-similar", cwd=repo).code


def test_probe_cooldown_grows_with_each_failed_probe():
    from memorylab_core.research.health import PROBE_COOLDOWN_S, half_open, probe_schedule

    assert probe_schedule(4, 0.0) is None
    assert [probe_schedule(n, 0.0)["cooldown_seconds"] for n in (5, 6, 7)] == [PROBE_COOLDOWN_S * m for m in (1, 2, 4)]
    info = {"state": "open", "probe": probe_schedule(6, 1000.0)}
    assert not half_open(info, 1000.0 + 1199) and half_open(info, 1000.0 + 1200)
    assert not half_open({"state": "open", "probe": probe_schedule(5, None)}, 1e12)  # undated: no probe


def test_an_open_breaker_lets_one_probe_through_after_the_cooldown(repo):
    write_ledger(repo, crash_ledger(5, 10))  # just opened: cooling down
    assert probe_check(repo) == 2
    status = ml("status", "--json", cwd=repo).json()["breaker"]
    assert status["state"] == "open" and not status["half_open"] and status["probe"]["cooldown_seconds"] == 600
    assert "one probe run from " in ml("status", cwd=repo).out
    write_ledger(repo, crash_ledger(5, 1000))  # the 600 s cool-down has passed: one probe may go
    res = ml("check", "-d", "a genuinely new idea about rotary base", "--fail-on-similar", cwd=repo)
    assert res.code == 0 and "circuit breaker HALF-OPEN" in res.out
    assert ml("status", "--json", cwd=repo).json()["breaker"]["half_open"] is True
    metrics = ml("export", "-f", "prometheus", cwd=repo).out
    assert 'memorylab_breaker_state{arena="' in metrics
    assert [line for line in metrics.splitlines() if line.startswith("memorylab_breaker_state")
            and 'state="half_open"' in line][0].endswith(" 1")
    write_ledger(repo, crash_ledger(7, 1000))  # two failed probes: the cool-down is 2400 s now
    assert probe_check(repo) == 2
    write_ledger(repo, crash_ledger(7, 2500))
    assert probe_check(repo) == 0
    reset = ml("status", "--reset-breaker", "--reason", "fixed the OOM", "--json", cwd=repo).json()
    assert reset["breaker"]["state"] == "closed" and reset["reset"]["event_type"] == "breaker_reset"


def test_the_dashboard_charts_velocity(repo):
    """report --html has an 'Improvement velocity' card: the velocity line and a step chart of the
    champion's val_bpb against cumulative GPU-hours."""
    write_ledger(repo, halving_ledger())
    assert ml("report", "--html", cwd=repo).code == 0
    page = (repo / "results" / "memorylab" / "reports" / "latest.html").read_text()
    card = page[page.index('id="velocity-chart"'):]
    card = card[:card.index("</section>")]
    assert "Improvement velocity" in page and "0.0120 val_bpb/GPU-hour" in card
    assert 'class="frontier"' in card and "GPU-h since the baseline<" in card and "GPU-hh" not in card
    assert "None" not in card
    # every gain shown is + = lower val_bpb: the champion's improvement is green, not red
    gains = re.findall(r'<span class="(good|bad)">([+-][0-9.]+)</span>', page)
    assert gains and all((cls == "good") == (float(v) > 0) for cls, v in gains), gains
