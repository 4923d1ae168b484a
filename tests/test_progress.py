"""Research progress per arena: velocity, phase, contradictions, memory creep and drift (built ledgers)."""

from __future__ import annotations

import json

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
    assert "0.0120 val_bpb/GPU-hour, 0.00100 val_bpb/experiment (last 20 ideas)" in text
    assert "trend ×0.50" in text and "None" not in text
    guide = ml("guide", "--json", cwd=repo).json()
    assert guide["velocity"]["trend"] == pytest.approx(0.5) and "VELOCITY 0.0120 val_bpb/GPU-hour" in guide["text"]
    assert ml("report", "--json", cwd=repo).json()["velocity"]["trend"] == pytest.approx(0.5)
    assert ml("report", cwd=repo).code == 0
    markdown = (repo / "results" / "memorylab" / "reports" / "latest.md").read_text()
    assert "**Velocity:** 0.0120 val_bpb/GPU-hour" in markdown
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
