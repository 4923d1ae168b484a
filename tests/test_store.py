"""The ledger's durability: locked appends, tolerant reads, concurrent writers, killed writers."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from mlhelpers import PROJECT

from memorylab_core.index.journal_index import JournalIndex
from memorylab_core.ledger.store import INDEX_NAME, Store, atomic_write_json, encode_record, is_safe_run_id


@pytest.fixture()
def store(tmp_path):
    s = Store(tmp_path / "store", tmp_path)
    s.init()
    return s


def test_append_and_read_back(store):
    store.append({"run_id": "a", "status": "keep", "metrics": {"val_bpb": 1.0}})
    store.append({"run_id": "b", "status": "discard", "description": "tab\tnew\nline \u2028 sep \u00e9 \U0001f600"})
    lines, offset, count = store.read_lines()
    assert [line.record["run_id"] for line in lines] == ["a", "b"]
    assert offset == store.ledger_size() and count == 2
    assert lines[1].record["description"] == "tab\tnew\nline \u2028 sep \u00e9 \U0001f600"
    assert store.ledger_path.read_bytes().count(b"\n") == 2  # odd unicode never splits a line


def test_partial_trailing_line_is_left_unread_then_cut_off(store, capsys):
    store.append({"run_id": "a", "status": "keep"})
    with open(store.ledger_path, "ab") as fh:
        fh.write(b'{"run_id": "half')  # a writer killed mid-line
    lines, offset, _ = store.read_lines()
    assert [line.record["run_id"] for line in lines] == ["a"]
    assert offset < store.ledger_size()
    store.append({"run_id": "c", "status": "keep"})
    lines, _, _ = store.read_lines()
    assert [line.record["run_id"] for line in lines] == ["a", "c"]
    assert b"half" not in store.ledger_path.read_bytes()
    assert "cut off" in capsys.readouterr().err


def test_a_broken_line_inside_the_journal_is_reported_and_skipped(store):
    store.append({"run_id": "a", "status": "keep"})
    with open(store.ledger_path, "ab") as fh:
        fh.write(b'{"run_id": "half\n')  # a whole line that is not a record
    store.append({"run_id": "c", "status": "keep"})
    lines, _, _ = store.read_lines()
    assert [line.record["run_id"] if line.record else None for line in lines] == ["a", None, "c"]
    assert lines[1].line_no == 2 and "JSON" in lines[1].problem


def test_index_folds_incrementally_and_detects_rewrites(store):
    for i in range(3):
        store.append({"run_id": f"r{i}", "status": "keep", "metrics": {"val_bpb": 1 - i / 100}})
    first = JournalIndex.load(store)
    assert len(first.runs) == 3 and (store.root / INDEX_NAME).exists()
    store.append({"run_id": "r3", "status": "discard", "metrics": {"val_bpb": 2}})
    second = JournalIndex.load(store)
    assert [r.run_id for r in second.runs] == ["r0", "r1", "r2", "r3"]
    # Replace the ledger with different content of the same length: the index must not be trusted.
    text = store.ledger_path.read_text().replace('"r0"', '"x0"')
    store.ledger_path.write_text(text)
    third = JournalIndex.load(store)
    assert third.runs[0].run_id == "x0"


def test_garbage_index_is_rebuilt(store):
    store.append({"run_id": "a", "status": "keep"})
    (store.root / INDEX_NAME).write_bytes(b"\x00garbage")
    assert len(JournalIndex.load(store).runs) == 1


def test_encode_record_rejects_nan_and_stays_ascii():
    assert encode_record({"d": "é\u2029"}).isascii()
    with pytest.raises(ValueError):
        encode_record({"v": float("nan")})


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "x.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"b": 2})
    assert json.loads(target.read_text()) == {"b": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


@pytest.mark.parametrize("run_id", ["../etc/passwd", "..", ".", "a/b", "a\\b", "", "x" * 200, "é"])
def test_unsafe_run_ids_rejected(run_id):
    assert not is_safe_run_id(run_id)


WRITER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from memorylab_core.cli import main
    work = Path(sys.argv[1]); n = int(sys.argv[2]); name = sys.argv[3]
    print("ready", flush=True)
    log = work / f"{name}.log"; summary = work / f"{name}.json"
    for i in range(n):
        val = 1.0 + (hash((name, i)) % 1000) / 1e5
        summary.write_text(json.dumps({"status": "ok", "val_bpb": val, "peak_vram_mb": 1000.0}))
        log.write_text("step 1\\n---\\nval_bpb: %f\\n" % val)
        status = "keep" if i % 3 == 0 else "discard"
        code = main(["log", "-d", f"{name} idea {i}", "--status", status, "--summary", str(summary),
                     "--log", str(log), "--skip-archive"])
        assert code == 0, code
        print("done", i, flush=True)
""")


def _writer_env(tmp_path):
    return {**os.environ, "MEMORYLAB_HOME": str(tmp_path / "store"), "PYTHONPATH": str(PROJECT)}


def test_eight_concurrent_writers(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    env = _writer_env(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(work), "25", f"w{k}"], cwd=work, env=env,
                              stderr=subprocess.PIPE, text=True) for k in range(8)]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    store = Store(tmp_path / "store", work)
    raw = store.ledger_path.read_text().splitlines()
    recs = [json.loads(line) for line in raw]
    assert len(recs) == 200 and len({r["run_id"] for r in recs}) == 200
    history = JournalIndex.load(store, use_cache=False)
    assert not history.corrupt
    registry = json.loads(store.registry_path.read_text())
    best = min((r for r in recs if r["status"] == "keep"), key=lambda r: r["metrics"]["val_bpb"])
    assert registry["runs"] == 200
    assert registry["champion"]["val_bpb"] == best["metrics"]["val_bpb"]
    tsv = (work / "results.tsv").read_text().splitlines()
    assert len(tsv) == 201 and all(len(row.split("\t")) == 5 for row in tsv)


def test_sigkill_during_log_never_breaks_the_ledger(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    env = _writer_env(tmp_path)
    rng = random.Random(7)
    store = Store(tmp_path / "store", work)
    for attempt in range(20):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(work), "1000", f"k{attempt}"], cwd=work,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout.readline().strip() == "ready"  # imports done
        while not proc.stdout.readline().startswith("done"):  # one run logged, however slow the machine
            pass
        time.sleep(rng.uniform(0.0, 0.5))  # the kill lands at a random point of a later log
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        history = JournalIndex.load(store, quiet=True)  # must never raise
        data = store.ledger_path.read_bytes() if store.ledger_path.exists() else b""
        complete = data[: data.rfind(b"\n") + 1]
        assert len(history.runs) + len(history.corrupt) == complete.count(b"\n")
    final = subprocess.run([sys.executable, "-c", WRITER, str(work), "1", "final"], cwd=work, env=env,
                           capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    history = JournalIndex.load(store, use_cache=False, quiet=True)
    assert history.runs[-1].description == "final idea 0"
    assert history.corrupt == []  # whole-line writes: a kill never left half a record
    assert len(history.runs) > 10


def test_the_torn_tail_of_a_killed_writer_is_cut_off_by_the_next_log(tmp_path):
    """A SIGKILL can end a large write part-way; the next append (under the lock) cuts that tail off, so
    the journal holds no broken line and every command reads every recorded run."""
    from mlhelpers import log_run, make_repo, ml
    from mlhelpers import records as read_records

    repo = make_repo(tmp_path / "repo")
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    journal = repo / "results" / "memorylab" / "experiments.jsonl"
    whole = journal.read_bytes()
    with journal.open("ab") as f:
        f.write(whole[: len(whole) // 2])  # half of a record, as a killed writer leaves it
    second = log_run(repo, "wider mlp", "discard", 1.01)
    assert second.code == 0 and "cut off" in second.err, second.err
    assert [r["description"] for r in read_records(repo)] == ["baseline", "wider mlp"]
    status = ml("status", "--json", cwd=repo).json()
    assert status["corrupt_lines"] == 0 and status["runs"] == 2


def test_a_whole_record_appended_without_its_newline_is_kept(tmp_path):
    from mlhelpers import log_run, make_repo
    from mlhelpers import records as read_records

    repo = make_repo(tmp_path / "repo")
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    journal = repo / "results" / "memorylab" / "experiments.jsonl"
    first = json.loads(journal.read_text().splitlines()[0])
    by_hand = {**first, "run_id": "by-hand-1", "description": "added by hand"}
    with journal.open("a") as f:
        f.write(json.dumps(by_hand))  # no trailing newline
    assert log_run(repo, "wider mlp", "discard", 1.01).code == 0
    assert [r["description"] for r in read_records(repo)] == ["baseline", "added by hand", "wider mlp"]
