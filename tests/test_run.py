"""``memorylab run`` / ``replicate`` / ``champion`` end to end, with tests/fake_train.py as the trainer."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlhelpers import FAKE, MEMORYLAB, PY, commit_change, git, ledger, make_repo, ml


@pytest.fixture()
def repo(tmp_path, monkeypatch):
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    monkeypatch.delenv("AUTORESEARCH_SEED", raising=False)
    return make_repo(tmp_path / "repo")


def lines(repo: Path) -> list[dict]:
    path = ledger(repo)
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def run_records(repo: Path) -> list[dict]:
    return [r for r in lines(repo) if r.get("record_type") != "event"]


def events(repo: Path) -> list[dict]:
    return [r for r in lines(repo) if r.get("record_type") == "event"]


def train(repo: Path, *fake_args: str, flags: tuple[str, ...] = ()):
    """``memorylab run --allow-blocked [flags] --json -- python fake_train.py [fake_args]`` in-process.

    These tests re-run one commit with other programmed results: the novelty guard would (rightly) refuse
    most of them before training; its refusal is tested on its own (test_run_refuses_a_blocked_idea...)."""
    return ml("run", "--allow-blocked", *flags, "--json", "--", PY, FAKE, *fake_args, cwd=repo)


def alive(pid: int) -> bool:
    """A process that still runs (a zombie waiting to be reaped is dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def wait_dead(pids: list[int], seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def pending(repo: Path) -> list[Path]:
    folder = repo / "results" / "memorylab" / "pending"
    return list(folder.iterdir()) if folder.exists() else []


# -- success -----------------------------------------------------------------------------------------

def test_run_success_logs_the_run_and_a_champion_event(repo):
    res = train(repo, "--val", "1.0")
    assert res.code == 0, res.err
    data = res.json()
    (rec,) = run_records(repo)
    assert rec["run_id"] == data["run_id"] and rec["status"] == "keep" and rec["description"] == "baseline"
    assert rec["metrics"]["val_bpb"] == 1.0 and rec["promotion"]["level"] == "baseline"  # never "confirmed"
    assert data["level"] == "baseline" and data["confirmed"] is False
    assert "early abort inactive: no finished runs to calibrate on yet" in res.err  # not "not in arena default"
    assert rec["launch"]["exit_code"] == 0 and not rec["launch"]["timed_out"] and rec["launch"]["command"][1] == FAKE
    assert rec["run_token"] and rec["decision_packet"]["rule"] == "K1"
    run_dir = repo / "results" / "memorylab" / "runs" / rec["run_id"]
    log = (run_dir / "run.log").read_text()
    assert f"run_token: {rec['run_token']}" in log and "val_bpb:" in log
    assert json.loads((run_dir / "summary.json").read_text())["run_token"] == rec["run_token"]
    (event,) = events(repo)
    assert event["event_type"] == "champion_change" and event["run_id"] == rec["run_id"]
    assert event["source"] == "run" and event["prior_champion"] is None and event["reasons"]
    # the baseline is the champion but never "confirmed" to the user (docs/promotion.md)
    assert data["git"] == "advance" and not data["confirmed"] and rec["promotion"]["baseline"] and not pending(repo)
    registry = json.loads((repo / "results" / "memorylab" / "champion_challenger.json").read_text())
    assert registry["champion"]["run_id"] == rec["run_id"] == registry["confirmed_champion"]["run_id"]


def test_run_prints_summary_and_a_machine_readable_last_line(repo):
    res = ml("run", "-d", "baseline run", "--", PY, FAKE, "--val", "1.0", cwd=repo)
    assert res.code == 0, res.err
    out = res.out.strip().splitlines()
    assert out[0].startswith("logged ") and any(x.startswith("next: promote") for x in out)
    assert out[-1].startswith("MEMORYLAB_RESULT ")
    result = json.loads(out[-1].split(" ", 1)[1])
    assert result["status"] == "keep" and result["val_bpb"] == 1.0 and result["next_action"] == "promote"
    assert "memorylab: training:" in res.err


def test_keep_and_discard_follow_the_policy(repo):
    assert train(repo, "--val", "1.0").code == 0
    commit_change(repo, "depth 9", depth=9)
    better = train(repo, "--val", "0.998").json()
    assert better["status"] == "keep" and better["level"] == "keep" and better["git"] == "advance"
    commit_change(repo, "depth 10", depth=10)
    worse = train(repo, "--val", "0.9985")
    assert worse.code == 0 and worse.json()["status"] == "discard" and worse.json()["git"] == "reset"
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    commit_change(repo, "wider", depth=9, matrix_lr=0.05)
    fat = train(repo, "--val", "0.99", "--mem", "2048").json()  # 2x the peak memory
    assert fat["status"] == "discard" and "peak memory grew" in fat["promotion"]["reasons"][-1]
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    commit_change(repo, "tiny", depth=9, warmdown=0.6)
    tiny = train(repo, "--val", "0.9979").json()  # gain 0.0001 over 0.998: inside the noise
    assert tiny["status"] == "keep" and tiny["recommendation"] == "replicate"
    assert tiny["decision_packet"]["rule"] == "KN" and tiny["next_action"] == "replicate"
    forced = train(repo, "--val", "1.5", flags=("--status", "keep")).json()
    assert forced["status"] == "keep" and forced["promotion"]["overridden"] == "keep"
    assert [e["run_id"] for e in events(repo)] == [r["run_id"] for r in run_records(repo)
                                                   if r.get("promotion", {}).get("accepted")]


def test_a_winner_discarded_by_hand_says_so_and_is_not_called_worse(repo):
    """``--status discard`` over a run the policy keeps: the summary says the decision was overridden, and the
    packet never calls a +5σ gain "less than one σ worse" (D4: replicate before giving the idea up)."""
    assert train(repo, "--val", "1.0").code == 0
    commit_change(repo, "lr 0.03", matrix_lr=0.03)
    res = ml("run", "--allow-blocked", "--status", "discard", "--", PY, FAKE, "--val", "0.99", cwd=repo)
    assert res.code == 0 and "(overridden: recorded as discard)" in res.out, res.out
    packet = run_records(repo)[-1]["decision_packet"]
    assert (packet["rule"], packet["next_action"]) == ("D4", "replicate") and "worse" not in packet["rationale"]


def test_a_sidecar_written_for_another_run_is_set_aside(repo):
    """The trainer is given a fresh run token; a sidecar carrying another one is not this run's: it is set
    aside with a warning and the log's own summary block gives the result (never the foreign 0.5)."""
    res = ml("run", "--allow-blocked", "--json", "--", PY, FAKE, "--val", "0.97",
             "--sidecar-extra", '{"run_token": "deadbeefdeadbeef", "val_bpb": 0.5}', cwd=repo)
    assert res.code == 0, res.err
    assert "is not the one this run was given" in res.err and res.json()["val_bpb"] == 0.97


def test_a_crash_under_a_forced_status_is_still_recorded_as_a_crash(repo):
    """``run --status keep`` whose training crashes: the crash is recorded (exit 3), with a warning that the
    forced status does not apply; nothing is lost in the pending folder."""
    assert train(repo, "--val", "1.0").code == 0
    res = ml("run", "--allow-blocked", "--status", "keep", "--", PY, FAKE, "--mode", "crash", "--error",
             "RuntimeError: boom", cwd=repo)
    assert res.code == 3 and "--status keep does not apply" in res.err, res.out + res.err
    assert run_records(repo)[-1]["status"] == "crash" and not pending(repo)


def test_policy_flags_and_store_config(repo):
    assert train(repo, "--val", "1.0").code == 0
    commit_change(repo, "depth 9", depth=9)
    assert train(repo, "--val", "0.999", flags=("--min-gain", "0.002")).json()["status"] == "discard"
    (repo / "results" / "memorylab" / "promotion.json").write_text(json.dumps({"min_gain": 0.0005}))
    assert train(repo, "--val", "0.9996").json()["status"] == "discard"
    assert train(repo, "--val", "0.9990").json()["status"] == "keep"
    (repo / "results" / "memorylab" / "promotion.json").write_text(json.dumps({"confirm_k": "high"}))
    before = ledger(repo).read_bytes()
    bad = train(repo, "--val", "0.9")
    assert bad.code == 1 and "promotion.json" in bad.err and ledger(repo).read_bytes() == before


def test_dry_run_records_nothing(repo):
    assert train(repo, "--val", "1.0").code == 0
    before = ledger(repo).read_bytes()
    res = train(repo, "--val", "0.99", flags=("--dry-run",))
    assert res.code == 0, res.err
    data = res.json()
    assert data["dry_run"] and data["status"] == "keep" and data["level"] == "confirmed"
    assert Path(data["files"], "run.log").exists()
    assert ledger(repo).read_bytes() == before and not pending(repo)


# -- crashes -----------------------------------------------------------------------------------------

def test_crash_is_logged_with_its_error_and_exit_code_3(repo):
    assert train(repo, "--val", "1.0").code == 0
    res = train(repo, "--mode", "crash")
    assert res.code == 3, res.err
    rec = run_records(repo)[-1]
    assert rec["status"] == "crash" and rec["metrics"]["val_bpb"] is None
    assert rec["error"]["summary"] == "RuntimeError: fake failure at step 3"
    assert rec["launch"]["exit_code"] == 1 and res.json()["git"] == "reset"
    assert len(events(repo)) == 1


@pytest.mark.parametrize("mode,expected", [("noval", "without reporting a finite val_bpb"),
                                           ("nan", "without reporting a finite val_bpb")])
def test_exit_zero_without_a_metric_is_a_crash(repo, mode, expected):
    res = train(repo, "--mode", mode)
    assert res.code == 3, res.err
    rec = run_records(repo)[-1]
    assert rec["status"] == "crash" and expected in rec["error"]["summary"]


def test_timeout_kills_the_whole_process_group(repo, tmp_path):
    pidfile = tmp_path / "pids"
    started = time.monotonic()
    res = train(repo, "--mode", "spawn-hang", "--pidfile", str(pidfile), flags=("--timeout", "1.5", "--grace", "1"))
    assert res.code == 3, res.err
    assert time.monotonic() - started < 10
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) == 2 and wait_dead(pids) == []  # the trainer and its grandchild
    rec = run_records(repo)[-1]
    assert rec["status"] == "crash" and rec["error"]["kind"] == "timeout" and rec["launch"]["timed_out"]
    assert "wall-clock limit of 1.5 s" in rec["error"]["summary"]
    assert "[memorylab] TimeoutError" in (repo / "results" / "memorylab" / rec["artifacts"]["run_log"]).read_text()


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(repo, tmp_path):
    pidfile = tmp_path / "pids"
    started = time.monotonic()
    res = train(repo, "--mode", "ignore-term", "--pidfile", str(pidfile), flags=("--timeout", "1", "--grace", "1"))
    assert res.code == 3 and time.monotonic() - started < 10
    assert wait_dead([int(p) for p in pidfile.read_text().split()]) == []
    assert run_records(repo)[-1]["launch"]["signal"] == "SIGKILL"


def test_stragglers_are_killed_after_a_normal_exit(repo, tmp_path):
    pidfile = tmp_path / "pids"
    res = train(repo, "--mode", "spawn-exit", "--pidfile", str(pidfile))
    assert res.code == 0, res.err
    assert wait_dead([int(p) for p in pidfile.read_text().split()]) == []


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_interrupt_kills_the_run_and_records_nothing(repo, tmp_path, sig, code):
    pidfile, ready = tmp_path / "pids", tmp_path / "ready"
    proc = subprocess.Popen([PY, str(MEMORYLAB), "run", "-d", "hangs", "--grace", "1", "--", PY, FAKE,
                             "--mode", "spawn-hang", "--pidfile", str(pidfile), "--ready", str(ready)],
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists(), proc.communicate(timeout=5)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "nothing was recorded" in err and "MEMORYLAB_RESULT" not in out
    assert wait_dead([int(p) for p in pidfile.read_text().split()]) == []
    assert run_records(repo) == [] and events(repo) == [] and not pending(repo)
    assert not any((repo / "results" / "memorylab" / "runs").iterdir())


def test_unstartable_command_is_an_error_and_records_nothing(repo):
    res = ml("run", "--", str(repo / "no-such-trainer"), cwd=repo)
    assert res.code == 1 and "cannot start" in res.err
    assert run_records(repo) == [] and not pending(repo)


def test_uncommitted_edit_needs_a_description(repo):
    (repo / "train.py").write_text((repo / "train.py").read_text().replace("DEPTH = 8", "DEPTH = 9"))
    res = ml("run", "--", PY, FAKE, cwd=repo)
    assert res.code == 1 and "uncommitted changes" in res.err and run_records(repo) == []
    assert ml("run", "-d", "depth 9, not committed yet", "--", PY, FAKE, cwd=repo).code == 0


# -- replicates ----------------------------------------------------------------------------------------

def test_replicates_are_linked_seeded_and_summarised(repo):
    base = train(repo, "--val", "1.0").json()["run_id"]
    seeds = json.dumps({"43": 1.002, "44": 0.998})
    res = ml("replicate", "HEAD", "--n", "2", "--json", "--", PY, FAKE, "--val-by-seed", seeds, cwd=repo)
    assert res.code == 0, res.err
    data = res.json()
    reps = run_records(repo)[1:]
    assert [r["replicate_of"] for r in reps] == [base, base]
    assert [r["seed_env"] for r in reps] == [43, 44] and [r["seed"] for r in reps] == [43, 44]
    assert all(r["mode"] == "replicate" and r["status"] == "keep" and "replicate" in r["tags"] for r in reps)
    assert data["n"] == 3 and data["mean"] == pytest.approx(1.0) and data["sd"] == pytest.approx(0.002)
    assert data["replicates"] == [r["run_id"] for r in reps] and data["level"] == "baseline"
    champ = ml("champion", "--json", cwd=repo).json()
    assert champ["noise"]["source"] == "ledger" and champ["confirmed"]["run_id"] == base
    again = ml("replicate", base, "--n", "1", "--dry-run", "--json", "--", PY, FAKE, cwd=repo).json()
    assert again["seeds"] == [45]  # used seeds are skipped


def test_the_baseline_is_never_called_confirmed(repo):
    """Replicating the baseline measures the noise; nothing is confirmed over it: the promotion line, the JSON,
    the packet, the champion history and a rollback to it all say "baseline", never "confirmed"."""
    first = train(repo, "--val", "1.0").json()
    assert not first["confirmed"]
    res = ml("replicate", first["run_id"], "--n", "2", "--", PY, FAKE, "--val-by-seed", '{"43": 1.001, "44": 0.999}',
             cwd=repo)
    assert res.code == 0, res.err
    assert "promotion: keep (the baseline)" in res.out and "confirmed champion" not in res.out, res.out
    result = json.loads(res.out.strip().splitlines()[-1].split(" ", 1)[1])
    assert not result["confirmed"] and run_records(repo)[-1]["decision_packet"]["rule"] == "R3"
    history = ml("champion", cwd=repo).out
    assert f"baseline  {first['run_id']}" in history and f"confirmed {first['run_id']}" not in history, history
    commit_change(repo, "depth 9", depth=9)
    assert train(repo, "--val", "0.99").code == 0
    back = ml("champion", "--rollback", first["run_id"], "--reason", "noise", cwd=repo).out
    assert f"nothing confirmed (the baseline {first['run_id']})" in back, back


def test_a_refuted_keep_prints_the_rollback_and_the_git_commands_on_one_line(repo):
    """Replicates that show a keep was noise: the output's last lines (what `tail -n 3` shows, program.md step
    7) hold the rollback command and the git commands that put the branch back, as one line."""
    base = train(repo, "--val", "1.0").json()["run_id"]
    seeds = '{"43": 1.001, "44": 0.999, "45": 1.0005}'
    assert ml("replicate", base, "--n", "3", "--", PY, FAKE, "--val-by-seed", seeds, cwd=repo).code == 0
    commit_change(repo, "depth 10", depth=10)
    assert train(repo, "--val", "0.9995").json()["status"] == "keep"
    res = ml("replicate", "HEAD", "--n", "2", "--", PY, FAKE, "--val-by-seed", '{"43": 1.004, "44": 1.005}', cwd=repo)
    assert res.code == 0, res.err
    git_step, line, result = res.out.strip().splitlines()[-3:]
    base_commit = git(repo, "rev-parse", "HEAD~1")[:12]
    assert line.startswith(f"next: memorylab champion --rollback {base} ") and line.endswith(
        f"&& git reset --hard {base_commit}"), line
    # git: rollback, never a bare reset that would leave MemoryLab's champion on the abandoned code
    assert git_step.startswith("git: rollback (run the next line whole") and '"git":"rollback"' in result


def test_replicates_that_all_crash_still_say_sigma_and_that_nothing_was_judged(repo):
    base = train(repo, "--val", "1.0").json()["run_id"]
    res = ml("replicate", base, "--n", "1", "--", PY, FAKE, "--mode", "crash", "--error", "RuntimeError: x", cwd=repo)
    assert res.code == 3, res.err
    assert "noise σ 0.002000 (a prior" in res.out and "promotion: not judged: no replicate measured anything" in res.out
    result = json.loads(res.out.strip().splitlines()[-1].split(" ", 1)[1])
    assert result["noise"]["sigma"] == 0.002 and result["crashed"] == 1


def test_replicates_confirm_an_unconfirmed_champion(repo):
    base = train(repo, "--val", "1.0").json()["run_id"]
    assert ml("replicate", base, "--n", "2", "--", PY, FAKE, "--val-by-seed", '{"43": 1.001, "44": 0.999}',
              cwd=repo).code == 0
    commit_change(repo, "depth 9", depth=9)
    tip = train(repo, "--val", "0.996").json()
    assert tip["level"] == "keep"
    res = ml("replicate", tip["run_id"], "--n", "2", "--", PY, FAKE, "--val-by-seed", '{"43": 0.9958, "44": 0.9961}',
             cwd=repo)
    assert res.code == 0, res.err
    result = json.loads(res.out.strip().splitlines()[-1].split(" ", 1)[1])
    assert result["confirmed"] and result["original"] == tip["run_id"]
    confirm = events(repo)[-1]
    assert confirm["source"] == "replicate" and confirm["confirmed_run_id"] == tip["run_id"]
    report = ml("report", "--json", "--output", "-", cwd=repo).json()
    assert report["promotion"]["confirmed"]["run_id"] == tip["run_id"] and report["promotion"]["tip_is_confirmed"]
    # "best single run": the best of its code (the replicate 0.9958), as the reference line says
    headline = f"champion {tip['run_id']} (best single run 0.995800): confirmed by the promotion policy"
    assert report["headline"] == headline and headline in ml("status", cwd=repo).out  # one headline everywhere


def test_report_shows_the_confirmed_champion_and_the_unconfirmed_tip_apart(repo):
    assert train(repo, "--val", "1.0").code == 0
    commit_change(repo, "depth 9", depth=9)
    assert train(repo, "--val", "0.998").json()["level"] == "keep"
    text = ml("report", "--output", "-", cwd=repo).out
    section = text.split("## Baseline and tip", 1)[1].split("\n## ", 1)[0]  # nothing confirmed over the baseline
    assert "**Baseline:**" in section and "**Unconfirmed tip:**" in section and "onfirmed champion" not in section
    assert "Gain over the baseline: **+" in section and "±" in section and "90% CI" in section
    assert "**Noise level:** noise σ 0.002000 (a prior" in section


def test_replicate_refuses_code_that_is_not_checked_out(repo):
    base = train(repo, "--val", "1.0").json()["run_id"]
    commit_change(repo, "depth 9", depth=9)
    before = ledger(repo).read_bytes()
    res = ml("replicate", base, "--n", "1", "--", PY, FAKE, cwd=repo)
    assert res.code == 1 and "check it out first" in res.err and "git worktree add" in res.err
    (repo / "train.py").write_text((repo / "train.py").read_text() + "\n# edit\n")
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    (repo / "train.py").write_text((repo / "train.py").read_text().replace("DEPTH = 8", "DEPTH = 7"))
    res = ml("replicate", base, "--n", "1", "--", PY, FAKE, cwd=repo)
    assert res.code == 1 and "differs" in res.err
    assert ledger(repo).read_bytes() == before
    assert ml("replicate", "nope", cwd=repo).code == 1


# -- champion history and rollback ---------------------------------------------------------------------

def test_champion_history_and_rollback(repo):
    base = train(repo, "--val", "1.0").json()["run_id"]
    base_commit = git(repo, "rev-parse", "HEAD")
    commit_change(repo, "depth 9", depth=9)
    mid = train(repo, "--val", "0.998").json()["run_id"]
    commit_change(repo, "depth 10", depth=10)
    top = train(repo, "--val", "0.99").json()["run_id"]
    shown = ml("champion", "--json", cwd=repo).json()
    assert shown["tip"]["run_id"] == top and [h["run_id"] for h in shown["history"]] == [top, mid, base]
    assert ml("champion", "--rollback", mid, cwd=repo).code == 1  # --reason is required
    dry = ml("champion", "--rollback", mid, "--reason", "depth 10 leaks", "--dry-run", "--json", cwd=repo)
    assert dry.code == 0 and len(events(repo)) == 3
    res = ml("champion", "--rollback", mid, "--reason", "depth 10 leaks memory", cwd=repo)
    assert res.code == 0, res.err
    assert f"git reset --hard {git(repo, 'rev-parse', 'HEAD~1')[:12]}" in res.out
    assert "git branch memorylab/before-rollback-" in res.out
    event = events(repo)[-1]
    assert event["source"] == "rollback" and event["run_id"] == mid and event["prior_champion"] == top
    assert event["reason"] == "depth 10 leaks memory"
    registry = json.loads((repo / "results" / "memorylab" / "champion_challenger.json").read_text())
    assert registry["champion"]["run_id"] == mid
    text = ml("champion", cwd=repo).out
    assert "rollback" in text and mid in text
    assert ml("champion", "--rollback", mid, "--reason", "again", cwd=repo).code == 1  # already champion
    crash = train(repo, "--mode", "crash").json()["run_id"]
    assert ml("champion", "--rollback", crash, "--reason", "x", cwd=repo).code == 1
    back = ml("champion", "--rollback", base, "--reason", "start over", "--json", cwd=repo).json()
    assert back["git_commands"][-1] == f"git reset --hard {base_commit[:12]}"
    assert back["event"]["confirmed_run_id"] == base


def test_rollbacks_to_one_run_at_once_record_one_event(repo):
    """Five operators roll back to the same run together: the check "already the champion" is made again under
    the store's lock, so one event is recorded and the others are refused (never "X → X" events)."""
    base = train(repo, "--val", "1.0").json()["run_id"]
    commit_change(repo, "depth 9", depth=9)
    train(repo, "--val", "0.99")
    procs = [subprocess.Popen([sys.executable, str(MEMORYLAB), "champion", "--rollback", base, "--reason", f"op{i}"],
                              cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for i in range(5)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert sorted(p.returncode for p in procs) == [0, 1, 1, 1, 1], errors
    assert all("already the champion" in e for p, e in zip(procs, errors, strict=True) if p.returncode)
    rollbacks = [e for e in events(repo) if e["source"] == "rollback"]
    assert len(rollbacks) == 1 and rollbacks[0]["prior_champion"] != base


# -- the real trainer (slow: prepares data and trains twice on the cpu profile) -----------------------

@pytest.mark.slow
def test_run_and_replicate_the_real_train_py(tmp_path, monkeypatch):
    import shutil

    import prepare

    project = Path(__file__).resolve().parent.parent
    cache = tmp_path / "cache"
    prepare.prepare("python-corpus", "cpu", cache_root=cache, num_shards=1)
    repo = make_repo(tmp_path / "repo")
    for name in ("train.py", "prepare.py"):
        shutil.copy(project / name, repo / name)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "real trainer")
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    monkeypatch.setenv("AUTORESEARCH_CACHE", str(cache))
    monkeypatch.setenv("AUTORESEARCH_PROFILE", "cpu")
    monkeypatch.setenv("AUTORESEARCH_TIME_BUDGET", "3")
    res = ml("run", "-d", "baseline", "--json", cwd=repo)  # the default command: this Python running train.py
    assert res.code == 0, res.err
    data = res.json()
    assert data["status"] == "keep" and 0 < data["val_bpb"] < 20
    rec = run_records(repo)[0]
    assert rec["metrics"]["profile"] == "cpu" and rec["seed"] == 42 and rec["launch"]["timeout_s"] == 126.0
    rep = ml("replicate", "HEAD", "--n", "1", "--json", cwd=repo)
    assert rep.code == 0, rep.err
    assert run_records(repo)[1]["seed"] == 43 and run_records(repo)[1]["replicate_of"] == rec["run_id"]
