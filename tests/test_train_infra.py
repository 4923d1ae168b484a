"""Tests for the run infrastructure train.py imports from prepare.py: the budget clock, the device
identity and peak FLOP/s table, malloc tuning, the summary block and the sidecar writer.
(End-to-end runs of train.py, which exercise prepare.Run, are in test_train.py.)"""

import json
import platform
import threading
import time

import pytest
import torch

import prepare


def test_budget_clock_unit_by_profile_and_device():
    assert prepare.budget_clock_unit("cpu", "cpu") == "cpu"
    assert prepare.budget_clock_unit("gpu", "cuda") == "wall"  # upstream's clock on a GPU
    assert prepare.budget_clock_unit("cpu", "cuda") == "wall"
    assert prepare.budget_clock_unit("cpu", "mps") == "wall"  # the work is on the GPU, not the CPU


def test_cpu_clock_counts_cpu_time_per_thread_not_waiting():
    clock = prepare.BudgetClock("cpu", threads=1)
    assert clock.threads == 1
    t0, w0 = clock.now(), time.time()
    time.sleep(0.3)  # waiting (as when another process holds the core) costs no budget
    assert clock.now() - t0 < 0.05
    end = time.process_time() + 0.3
    while time.process_time() < end:  # 0.3 s of work on the main thread
        pass
    assert 0.3 <= clock.now() - t0 < 0.4 and time.time() - w0 >= 0.6


def test_cpu_clock_adds_every_thread_and_divides_by_the_pool():
    clock = prepare.BudgetClock("cpu", threads=2)
    if clock.threads != 2:
        pytest.skip("needs 2 usable CPUs")
    t0 = clock.now()
    cpu0 = time.process_time()

    def spin():
        end = time.thread_time() + 0.2
        while time.thread_time() < end:
            pass

    workers = [threading.Thread(target=spin) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    used = time.process_time() - cpu0
    assert used >= 0.4  # both threads' CPU time is counted ...
    assert clock.now() - t0 == pytest.approx(used / 2, abs=0.02)  # ... and shared by the pool's 2 threads


def test_cpu_clock_never_divides_by_more_threads_than_cpus(monkeypatch):
    monkeypatch.setattr(prepare, "usable_cpus", lambda: 2)
    assert prepare.BudgetClock("cpu", threads=16).threads == 2  # oversubscribing cannot slow the clock
    with pytest.raises(ValueError):
        prepare.BudgetClock("gpu-seconds")


def test_wall_clock_is_time_time():
    clock = prepare.BudgetClock("wall")
    assert abs(clock.now() - time.time()) < 0.01


def test_peak_flops_by_exact_device_name(monkeypatch):
    assert prepare.GPU_TABLE["NVIDIA H100 80GB HBM3"] == ("H100 SXM", 989.5e12)
    assert prepare.GPU_TABLE["NVIDIA H100 PCIe"][1] < prepare.GPU_TABLE["NVIDIA H100 80GB HBM3"][1]
    for name, expected in [("NVIDIA H100 PCIe", ("H100 PCIe", 756e12)), ("NVIDIA H200", ("H200 SXM", 989.5e12)),
                           ("NVIDIA H100 80GB HBM3 MIG 1g.10gb", ("H100 80GB HBM3 MIG 1g.10gb", None)),
                           ("NVIDIA GeForce RTX 3090", ("RTX 3090", None))]:
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None, name=name: name)
        assert prepare.device_identity("cuda") == (name, *expected)
    assert prepare.device_identity("cpu") == ("cpu", "cpu", None)


def test_tune_glibc_malloc_is_accepted_exactly_on_glibc():
    on_glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert prepare.tune_glibc_malloc() is on_glibc


def test_sample_curve_keeps_ends_and_limit():
    pts = [{"step": i} for i in range(1000)]
    s = prepare.sample_curve(pts)
    assert len(s) == 200 and s[0]["step"] == 0 and s[-1]["step"] == 999
    assert prepare.sample_curve(pts[:50]) == pts[:50]


def test_write_summary_is_atomic_and_json_safe(tmp_path):
    path = tmp_path / "sub" / "summary.json"
    prepare.write_summary(str(path), {"val_bpb": float("nan"), "loss_curve": [{"loss": float("inf")}], "x": 1})
    data = json.loads(path.read_text())
    assert data == {"val_bpb": None, "loss_curve": [{"loss": None}], "x": 1}
    assert [p.name for p in path.parent.iterdir()] == ["summary.json"]  # no temp file left behind


def test_print_summary_format(capsys):
    metrics = dict(val_bpb=0.9979, training_seconds=300.12, total_seconds=325.94, peak_vram_mb=45060.2,
                   mfu_percent=39.8, total_tokens_M=499.6, num_steps=953, num_params_M=50.3, depth=8,
                   budget_clock="wall", wall_training_seconds=300.12)
    prepare.print_summary(metrics)
    assert capsys.readouterr().out == (
        "---\n"
        "val_bpb:          0.997900\n"
        "training_seconds: 300.1\n"
        "total_seconds:    325.9\n"
        "peak_vram_mb:     45060.2\n"
        "mfu_percent:      39.80\n"
        "total_tokens_M:   499.6\n"
        "num_steps:        953\n"
        "num_params_M:     50.3\n"
        "depth:            8\n"
        "budget_clock:     wall\n"
        "wall_training_seconds: 300.1\n"
    )


def test_a_val_bpb_that_is_not_finite_is_a_crash(monkeypatch, tmp_path):
    """The last steps can diverge after the loss check: a NaN val_bpb from the evaluation is a crash (the FAIL
    path, exit 1, a crash sidecar), never a success with a null value."""
    import prepare

    monkeypatch.setenv("AUTORESEARCH_SUMMARY_PATH", str(tmp_path / "s.json"))
    with pytest.raises(SystemExit) as exit_info, prepare.Run(depth=2, total_batch_size=1024) as run:
        run.finish(val_bpb=float("nan"))
    assert exit_info.value.code == 1
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["status"] == "crash" and "diverged" in summary["error"] and summary["val_bpb"] is None
