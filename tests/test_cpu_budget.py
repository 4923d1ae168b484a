"""MemoryLab and the cpu profile's CPU-seconds budget (issue 22): its own arenas, a low CPU share is
slow rather than starved, the run limit counts CPU time, and old wall-clock sidecars read as before."""

from __future__ import annotations

import sys
import time

import pytest
from mlhelpers import CPU_SETUP, commit_change, log_run, make_repo, records

from memorylab_core.evidence import logparse
from memorylab_core.evidence.arenas import arena_key
from memorylab_core.evidence.validity import judge
from memorylab_core.ingest import launcher, timebudget

CPU_CLOCK = {**CPU_SETUP, "budget_clock": "cpu", "wall_training_seconds": 66.0}
# Beside two busy loops on 2 cores: the same CPU seconds of training, three times the wall time.
BUSY = {**CPU_CLOCK, "tokens_per_sec": 6300.0, "num_steps": 172, "wall_training_seconds": 190.0,
        "contention": {**CPU_SETUP["contention"], "cpu_share": 0.31, "loadavg_end": 5.0}}


def test_a_cpu_seconds_budget_is_its_own_arena():
    assert arena_key(CPU_CLOCK) == "cpu/cpu/60cpu-s/seq256/eval262144/data-3f2a1c9e77"
    assert arena_key(CPU_SETUP) == "cpu/cpu/60s/seq256/eval262144/data-3f2a1c9e77"  # sidecars without the clock
    assert arena_key({**CPU_SETUP, "budget_clock": "wall"}) == arena_key(CPU_SETUP)


def test_low_cpu_share_confounds_a_wall_clock_run_only():
    contention = {"cpu_threads": 2, "cpu_share": 0.31}
    assert judge("cpu", {"tokens_per_sec": 6300.0}, contention, []).validity == "confounded"
    assert judge("cpu", {"tokens_per_sec": 6300.0}, contention, [], clock="wall").validity == "confounded"
    assert judge("cpu", {"tokens_per_sec": 6300.0}, contention, [], clock="cpu").validity == "valid"
    # What load can still do on the cpu clock: each CPU second does less work. Throughput catches it.
    peers = [{"tokens_per_sec": 6500.0, "num_params_M": 3.4}] * 3
    slow = judge("cpu", {"tokens_per_sec": 3000.0, "num_params_M": 3.4}, contention, peers, clock="cpu")
    assert slow.validity == "confounded" and "throughput" in slow.causes[0] and len(slow.causes) == 1


def test_a_busy_machine_run_on_the_cpu_clock_is_evidence(tmp_path):
    repo = make_repo(tmp_path / "repo")
    assert log_run(repo, "baseline", "keep", 1.830, setup=CPU_CLOCK).code == 0
    assert log_run(repo, "baseline again", "keep", 1.829, setup=CPU_CLOCK).code == 0
    commit_change(repo, "raise matrix lr", matrix_lr=0.05)
    assert log_run(repo, "MATRIX_LR 0.04 -> 0.05", "discard", 1.835, setup=BUSY).code == 0
    rec = records(repo)[-1]
    assert rec["validity"] == "valid" and "confound" not in rec
    assert rec["arena"].startswith("cpu/cpu/60cpu-s/") and rec["setup"]["budget_clock"] == "cpu"
    assert rec["metrics"]["wall_training_seconds"] == 190.0


def test_summary_block_reads_the_new_lines_and_the_old_block():
    new = ("---\nval_bpb:          1.830000\ntraining_seconds: 60.1\nbudget_clock:     cpu\n"
           "wall_training_seconds: 181.4\n")
    block = logparse.parse_summary_block(new)
    assert block["training_seconds"] == 60.1 and block["wall_training_seconds"] == 181.4
    assert block["budget_clock"] == "cpu"
    old = logparse.parse_summary_block("---\nval_bpb:          1.866000\ntraining_seconds: 60.0\n")
    assert old == {"val_bpb": 1.866, "training_seconds": 60.0}


def test_the_default_limit_is_on_the_budgets_clock(tmp_path):
    assert timebudget.resolve({"AUTORESEARCH_PROFILE": "cpu"}, tmp_path).clock == "cpu"
    assert timebudget.resolve({"AUTORESEARCH_PROFILE": "gpu"}, tmp_path).clock == "wall"


def spin_and_sleep(seconds: float, duty: float) -> list[str]:
    """A process busy `duty` of the time on one CPU for `seconds` of wall time: slowed, not hung."""
    code = (f"import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n"
            f"    t = time.time() + {0.05 * duty}\n    while time.time() < t: pass\n"
            f"    time.sleep({0.05 * (1 - duty)})\n")
    return [sys.executable, "-c", code]


@pytest.mark.skipif(launcher.group_cpu_seconds(0) is None, reason="needs /proc")
def test_cpu_clock_limit_lets_a_slow_run_finish(tmp_path):
    # 3 s of wall time at half of one CPU: far less than 1 s of CPU per usable CPU, and clearly working.
    result = launcher.launch(spin_and_sleep(3.0, 0.5), env={}, cwd=tmp_path, log_path=tmp_path / "log",
                             timeout_s=1.0, clock="cpu")
    assert not result.timed_out and result.returncode == 0 and result.duration_s >= 3.0
    wall = launcher.launch(spin_and_sleep(3.0, 0.5), env={}, cwd=tmp_path, log_path=tmp_path / "log",
                           timeout_s=1.0, grace_s=1.0)
    assert wall.timed_out and wall.duration_s < 2.9  # the wall clock would have killed it


@pytest.mark.skipif(launcher.group_cpu_seconds(0) is None, reason="needs /proc")
def test_cpu_clock_limit_kills_a_hung_run(tmp_path, monkeypatch):
    monkeypatch.setattr(launcher, "CHECK_S", 0.5)
    started = time.monotonic()
    result = launcher.launch([sys.executable, "-c", "import time; time.sleep(60)"], env={}, cwd=tmp_path,
                             log_path=tmp_path / "log", timeout_s=1.0, grace_s=1.0, clock="cpu")
    assert result.timed_out and time.monotonic() - started < 5  # no CPU used since the last check: hung


@pytest.mark.skipif(launcher.group_cpu_seconds(0) is None, reason="needs /proc")
def test_cpu_clock_limit_kills_a_run_that_used_its_cpu_time(tmp_path, monkeypatch):
    monkeypatch.setattr(launcher, "CHECK_S", 0.2)
    monkeypatch.setattr(launcher, "usable_cpus", lambda: 1)
    result = launcher.launch([sys.executable, "-c", "while True: pass"], env={}, cwd=tmp_path,
                             log_path=tmp_path / "log", timeout_s=1.0, grace_s=1.0, clock="cpu")
    assert result.timed_out and result.duration_s < 9  # 1 CPU second (at most 10 wall seconds)
