"""The PostgreSQL journal (issue 13) against a real server (tests/pg_fixture.py): every main command,
several hosts with their own index, faults (SIGKILL, server restart, server down, wrong credentials),
migrate round trips, and the optional driver."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlhelpers import PROJECT, commit_change, log_run, make_repo, ml, ml_proc

WRITER = Path(__file__).resolve().parent / "pg_writer.py"


@pytest.fixture(params=["file", "postgres"])
def backend(request, tmp_path, monkeypatch) -> str:
    """A store of each kind as MEMORYLAB_HOME (the PostgreSQL one with this host's index under tmp_path)."""
    if request.param == "file":
        home = str(tmp_path / "store")
    else:
        home = request.getfixturevalue("pg_url")
        monkeypatch.setenv("MEMORYLAB_INDEX_DIR", str(tmp_path / "host-a"))
    monkeypatch.setenv("MEMORYLAB_HOME", home)
    return request.param


@pytest.fixture()
def repo(tmp_path):
    return make_repo(tmp_path / "repo")


def _ids(res) -> list[str]:
    return [r["run_id"] for r in res.json()]


def test_main_commands_work_unchanged_on_each_backend(backend, repo, monkeypatch, tmp_path):
    assert ml("init", cwd=repo).code == 0
    commit_change(repo, "raise matrix lr", matrix_lr=0.06)
    kept = log_run(repo, "baseline", "keep", 0.990)
    assert kept.code == 0, kept.err
    commit_change(repo, "raise matrix lr more", matrix_lr=0.08)
    assert log_run(repo, "raise matrix lr more", "discard", 0.995).code == 0
    assert ml("check", "-d", "raise matrix lr more", "--fail-on-similar", cwd=repo).code == 2
    listed = ml("list", "--json", cwd=repo)
    assert listed.code == 0 and len(_ids(listed)) == 2
    shown = ml("show", kept.json()["run_id"], "--json", cwd=repo).json()
    assert shown["record"]["description"] == "baseline"
    assert all(info["exists"] for info in shown["artifact_files"].values())
    for command in (["report"], ["status"], ["guide"], ["insights"], ["champion"], ["export", "-f", "csv"],
                    ["export", "-f", "tsv"], ["export", "-f", "prometheus"]):
        res = ml(*command, cwd=repo)
        assert res.code == 0, (command, res.err)
    exported = ml("export", cwd=repo).out.splitlines()
    assert [json.loads(line)["run_id"] for line in exported if '"run_id"' in line][:2] == list(reversed(_ids(listed)))
    if backend == "postgres":  # another host, its own index: sees the same runs and the artifacts
        monkeypatch.setenv("MEMORYLAB_INDEX_DIR", str(tmp_path / "host-b"))
        assert _ids(ml("list", "--json", cwd=repo)) == _ids(listed)
        other = ml("show", kept.json()["run_id"], "--json", cwd=repo).json()
        assert other["artifact_files"]["run_log"]["exists"]
        assert str(tmp_path / "host-b") in other["artifact_files"]["run_log"]["path"]
        assert "s3cret" not in json.dumps(other) and "s3cret" not in ml("init", cwd=repo).out


def test_appends_are_idempotent_and_the_table_is_append_only(pg_url, tmp_path):
    import psycopg

    from memorylab_core.ledger.store import open_store

    store = open_store(pg_url, tmp_path, str(tmp_path / "idx"))
    store.init()
    record = {"schema_version": 2, "record_type": "event", "event_id": "ev-1", "event_type": "breaker_reset",
              "timestamp_utc": "2026-01-01T00:00:00Z"}
    with store.lock():
        first = store.append_many_locked([record])
        again = store.append_many_locked([record])  # a retry of the same append
    assert first == again
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM memorylab_journal").fetchone()[0] == 1
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute("DELETE FROM memorylab_journal")


def _start_writers(url: str, hosts: list[Path], per_host: int, count: int) -> list[subprocess.Popen]:
    procs = []
    for h, host in enumerate(hosts):
        for w in range(per_host):
            env = {**os.environ, "MEMORYLAB_HOME": url, "MEMORYLAB_INDEX_DIR": str(host / "index")}
            procs.append(subprocess.Popen([sys.executable, str(WRITER), str(host / "repo"), str(count), f"h{h}w{w}"],
                                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def _hosts(tmp_path: Path, n: int) -> list[Path]:
    hosts = []
    for i in range(n):
        host = tmp_path / f"host{i}"
        make_repo(host / "repo")
        hosts.append(host)
    return hosts


def _host_ml(url: str, host: Path, *args: str):
    return ml_proc(*args, cwd=host / "repo", env={"MEMORYLAB_HOME": url, "MEMORYLAB_INDEX_DIR": str(host / "index")},
                   timeout=300)


def _journal_ids(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT record_id FROM memorylab_journal WHERE record_type = 'run' "
                                           "ORDER BY seq")]


@pytest.mark.slow
def test_four_hosts_eight_writers_each_800_unique_runs_and_every_host_agrees(pg_url, tmp_path):
    hosts = _hosts(tmp_path, 4)
    assert _host_ml(pg_url, hosts[0], "init").code == 0
    procs = _start_writers(pg_url, hosts, 8, 25)
    outputs = [p.communicate(timeout=1800)[0] for p in procs]
    confirmed = [line.split()[1] for out in outputs for line in out.splitlines() if line.startswith("OK ")]
    assert len(confirmed) == 800, [line for out in outputs for line in out.splitlines() if line.startswith("ERR")][:5]
    ids = _journal_ids(pg_url)
    assert len(ids) == len(set(ids)) == 800 and set(ids) == set(confirmed)
    listings = [_host_ml(pg_url, host, "list", "--limit", "1000", "--json") for host in hosts]
    assert all(res.code == 0 for res in listings)
    assert len({json.dumps(_ids(res)) for res in listings}) == 1 and len(_ids(listings[0])) == 800
    reports = [_host_ml(pg_url, host, "report", "--json") for host in hosts]
    assert all(res.code == 0 for res in reports), reports[0].err
    assert len({json.dumps(res.json()["experiments"] if "experiments" in res.json() else sorted(res.json()))
                for res in reports}) == 1


def test_sigkill_of_writers_mid_append_loses_and_doubles_nothing(pg_url, tmp_path):
    hosts = _hosts(tmp_path, 2)
    assert _host_ml(pg_url, hosts[0], "init").code == 0
    procs = _start_writers(pg_url, hosts, 2, 40)
    time.sleep(4)
    rng = random.Random(13)
    for proc in procs:
        time.sleep(rng.uniform(0.1, 1.0))
        proc.send_signal(signal.SIGKILL)
    confirmed = [line.split()[1] for p in procs for line in p.communicate()[0].splitlines() if line.startswith("OK ")]
    ids = _journal_ids(pg_url)
    assert len(ids) == len(set(ids))
    assert set(confirmed) <= set(ids) and len(ids) - len(confirmed) <= len(procs)  # at most one unconfirmed each
    after = _host_ml(pg_url, hosts[1], "list", "--limit", "1000", "--json")
    assert after.code == 0 and sorted(_ids(after)) == sorted(ids)
    assert _host_ml(pg_url, hosts[0], "log", "-d", "after the kills", "--status", "crash", "--error", "x").code == 0


def test_server_restart_during_a_write_loop_loses_and_doubles_nothing(pg_server, pg_url, tmp_path):
    hosts = _hosts(tmp_path, 1)
    assert _host_ml(pg_url, hosts[0], "init").code == 0
    procs = _start_writers(pg_url, hosts, 2, 20)
    time.sleep(3)
    pg_server.pg_ctl("restart")
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    lines = [line for out in outputs for line in out.splitlines()]
    confirmed = [line.split()[1] for line in lines if line.startswith("OK ")]
    assert len(confirmed) == 40, [line for line in lines if line.startswith("ERR")]
    ids = _journal_ids(pg_url)
    assert len(ids) == len(set(ids)) == 40 and set(ids) == set(confirmed)


def test_server_down_reads_work_from_the_local_index_and_writes_fail_in_one_line(pg_server, pg_url, repo,
                                                                                 monkeypatch, tmp_path):
    monkeypatch.setenv("MEMORYLAB_HOME", pg_url)
    monkeypatch.setenv("MEMORYLAB_INDEX_DIR", str(tmp_path / "idx"))
    monkeypatch.setenv("MEMORYLAB_PG_TRIES", "2")
    assert ml("init", cwd=repo).code == 0
    assert log_run(repo, "baseline", "keep", 0.99).code == 0
    pg_server.pg_ctl("stop")
    try:
        listed = ml_proc("list", "--json", cwd=repo)
        assert listed.code == 0 and len(_ids(listed)) == 1
        assert "possibly stale" in listed.err and "s3cret" not in listed.err
        failed = ml_proc("log", "-d", "while down", "--status", "crash", "--error", "boom", cwd=repo)
        assert failed.code == 1 and len(failed.err.strip().splitlines()) == 1, failed.err
        assert "unreachable" in failed.err and "s3cret" not in failed.err
    finally:
        pg_server.pg_ctl("start")
    assert len(_ids(ml_proc("list", "--json", cwd=repo))) == 1


def test_the_guard_never_passes_on_a_database_it_cannot_read(pg_server, repo, tmp_path):
    """A server that cannot be reached, with no local copy of its journal on this host, or a database
    where 'init' never ran, is no empty history: check --fail-on-similar exits 1 in one line, not 0."""
    down = f"postgresql://memorylab@127.0.0.1:{pg_server.port + 1 if pg_server.port < 65535 else 1}/x"
    bare = pg_server.url("postgres")
    for url, why in ((down, "no local copy"), (bare, "no MemoryLab journal")):
        res = ml_proc("--home", url, "--index-dir", str(tmp_path / "i"), "check", "-d", "increase depth",
                      "--fail-on-similar", cwd=repo, env={"MEMORYLAB_PG_TRIES": "1"})
        assert res.code == 1 and len(res.err.strip().splitlines()) == 1 and why in res.err, (url, res.err)
        assert "ALLOW" not in res.out


@pytest.mark.parametrize("case", ["password", "database", "port"])
def test_wrong_url_or_credentials_is_one_line_saying_what_to_fix(pg_server, repo, tmp_path, case):
    url = {"password": pg_server.url(password="wrong-pw"), "database": pg_server.url("no_such_db"),
           "port": f"postgresql://memorylab:wrong-pw@127.0.0.1:{pg_server.port + 1 if pg_server.port < 65535 else 1}/x"}
    res = ml_proc("--home", url[case], "--index-dir", str(tmp_path / "i"), "log", "-d", "x", "--status", "crash",
                  "--error", "y", cwd=repo, env={"MEMORYLAB_PG_TRIES": "1"})
    assert res.code == 1 and len(res.err.strip().splitlines()) == 1, res.err
    assert "wrong-pw" not in res.err
    expected = {"password": "PGPASSWORD", "database": "createdb", "port": "unreachable"}[case]
    assert expected in res.err


def test_migrate_file_to_postgres_to_file_round_trip_is_identical(pg_url, repo, monkeypatch, tmp_path):
    store = tmp_path / "store"
    monkeypatch.setenv("MEMORYLAB_HOME", str(store))
    base = log_run(repo, "baseline", "keep", 0.99).json()["run_id"]
    commit_change(repo, "more lr", matrix_lr=0.07)
    assert log_run(repo, "more lr", "keep", 0.985).code == 0
    assert ml("champion", "--rollback", base, "--reason", "test", cwd=repo).code == 0
    assert '"record_type":"event"' in (store / "experiments.jsonl").read_text()
    first = ml("migrate", "--to", pg_url, "--to-index-dir", str(tmp_path / "pgidx"), "--json", cwd=repo)
    assert first.code == 0, first.err
    assert first.json()["copied"] == first.json()["records"] > 0
    again = ml("migrate", "--to", pg_url, "--to-index-dir", str(tmp_path / "pgidx"), "--json", cwd=repo).json()
    assert again["copied"] == 0 and again["already_there"] == first.json()["records"]
    back = tmp_path / "back"
    res = ml("--home", pg_url, "--index-dir", str(tmp_path / "pgidx2"), "migrate", "--to", str(back), cwd=repo)
    assert res.code == 0, res.err
    assert (back / "experiments.jsonl").read_bytes() == (store / "experiments.jsonl").read_bytes()
    for run_dir in (store / "runs").iterdir():
        for path in run_dir.iterdir():
            assert (back / "runs" / run_dir.name / path.name).read_bytes() == path.read_bytes()


BLOCK_PSYCOPG = ("import sys; sys.modules['psycopg'] = None; sys.path.insert(0, {project!r}); "
                 "from memorylab_core.cli import main; rc = main(sys.argv[1:]); "
                 "assert 'psycopg' not in [m for m in sys.modules if sys.modules[m] is not None]; sys.exit(rc)")


def _blocked(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    code = BLOCK_PSYCOPG.format(project=str(PROJECT))
    return subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "MEMORYLAB_HOME": str(tmp_path / "store")})


def test_file_journal_needs_only_the_standard_library(tmp_path):
    assert _blocked(tmp_path, "init").returncode == 0
    res = _blocked(tmp_path, "log", "-d", "no driver needed", "--status", "crash", "--error", "boom")
    assert res.returncode == 0, res.stderr
    assert _blocked(tmp_path, "list").returncode == 0


def test_missing_driver_with_a_postgresql_home_is_one_line_naming_the_extra(tmp_path):
    res = _blocked(tmp_path, "--home", "postgresql://me:pw@127.0.0.1:1/db", "--index-dir", str(tmp_path / "i"), "list")
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "pip install -e '.[postgres]'" in res.stderr and ":pw@" not in res.stderr


def test_urls_are_masked_and_the_index_path_has_no_password(tmp_path, monkeypatch):
    from memorylab_core.ledger.pgjournal import local_root, mask_url

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert mask_url("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert local_root("postgresql://u:one@h/db") == local_root("postgresql://u:two@h/db")
    assert "one" not in str(local_root("postgresql://u:one@h/db"))


def test_a_journal_without_init_says_to_run_init(pg_url, repo, tmp_path):
    res = ml_proc("--home", pg_url, "--index-dir", str(tmp_path / "i"), "log", "-d", "x", "--status", "crash",
                  "--error", "y", cwd=repo)
    assert res.code == 1 and "init" in res.err and len(res.err.strip().splitlines()) == 1, res.err
    listed = ml_proc("--home", pg_url, "--index-dir", str(tmp_path / "i"), "list", cwd=repo)
    assert listed.code == 1 and "init" in listed.err, listed.err  # as a file store without its ledger


def test_a_large_run_log_travels_truncated_with_a_note(pg_url, repo, monkeypatch, tmp_path):
    from memorylab_core.ledger.pgjournal import ARTIFACT_CAP

    monkeypatch.setenv("MEMORYLAB_HOME", pg_url)
    monkeypatch.setenv("MEMORYLAB_INDEX_DIR", str(tmp_path / "a"))
    assert ml("init", cwd=repo).code == 0
    log = repo / "big.log"
    log.write_text("x" * (ARTIFACT_CAP + 1000) + "\n---\nval_bpb:          0.990000\npeak_vram_mb:     10.0\n")
    run_id = ml("log", "-d", "big log", "--status", "discard", "--log", str(log), "--json", cwd=repo).json()["run_id"]
    monkeypatch.setenv("MEMORYLAB_INDEX_DIR", str(tmp_path / "b"))
    path = Path(ml("show", run_id, "--json", cwd=repo).json()["artifact_files"]["run_log"]["path"])
    text = path.read_text()
    assert text.startswith("[memorylab: run.log truncated") and text.endswith("peak_vram_mb:     10.0\n")


def test_a_password_anywhere_in_the_url_is_never_printed_and_a_bad_url_is_one_line(pg_server, repo, tmp_path):
    """The password given as a ``password=`` parameter is masked like one in the user info (outputs, errors, the
    index folder's name); a URL libpq cannot read (a bad %-escape, an unclosed "[") is one line, no traceback."""
    from pg_fixture import PASSWORD

    from memorylab_core.ledger.pgjournal import local_root

    db = pg_server.create_database().rsplit("/", 1)[1]
    url = f"postgresql://memorylab@127.0.0.1:{pg_server.port}/{db}?password={PASSWORD}"
    env = {"MEMORYLAB_PG_TRIES": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    for args in (("init",), ("list", "--json"), ("status",)):
        res = ml_proc("--home", url, *args, cwd=repo, env=env)
        assert res.code == 0 and PASSWORD not in res.out + res.err, (args, res.out + res.err)
    assert "password=***" in ml_proc("--home", url, "status", "--json", cwd=repo, env=env).json()["store"]
    assert PASSWORD not in str(local_root(url)) and local_root(url) == local_root(url.split("?")[0])
    wrong = url.replace(PASSWORD, "wr0ng-in-query")
    res = ml_proc("--home", wrong, "list", cwd=repo, env=env)
    assert res.code == 1 and "wr0ng-in-query" not in res.err and "password=***" in res.err, res.err
    for bad in (f"postgresql://memorylab:s3cret%ZZPw@127.0.0.1:{pg_server.port}/{db}",
                "postgresql://memorylab:s3cret-Pw@[::1/x", f"{pg_server.url(db)}?sslmode=bogus"):
        started = time.monotonic()
        res = ml_proc("--home", bad, "status", cwd=repo, env={**env, "MEMORYLAB_PG_TRIES": "7"})
        assert time.monotonic() - started < 10  # not retried as if the server were down
        assert res.code == 1 and len(res.err.strip().splitlines()) == 1 and "invalid PostgreSQL URL" in res.err, \
            res.err
        assert "s3cret" not in res.err and "Traceback" not in res.err


def test_a_read_only_role_reads_and_its_writes_are_one_line(pg_server, pg_url, repo, tmp_path):
    import psycopg

    env = {"MEMORYLAB_PG_TRIES": "1"}
    owner = ("--home", pg_url, "--index-dir", str(tmp_path / "a"))
    assert ml_proc(*owner, "init", cwd=repo, env=env).code == 0
    assert ml_proc(*owner, "log", "-d", "baseline", "--status", "crash", "--error", "x", cwd=repo, env=env).code == 0
    db = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'reader') THEN "
                     "CREATE ROLE reader LOGIN PASSWORD 'reader-pw'; END IF; END $$")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader")
    reader = pg_server.url(db, password="reader-pw", user="reader")
    at = ("--home", reader, "--index-dir", str(tmp_path / "b"))
    assert ml_proc(*at, "list", cwd=repo, env=env).code == 0
    for args in (("log", "-d", "x", "--status", "crash", "--error", "y"), ("init",)):
        res = ml_proc(*at, *args, cwd=repo, env=env)
        assert res.code == 1 and len(res.err.strip().splitlines()) == 1, (args, res.err)
        assert "may not do this" in res.err and "reader-pw" not in res.err


def test_artifacts_that_are_not_utf8_travel_byte_for_byte():
    from memorylab_core.ledger.pgjournal import pack_artifacts, unpack_artifacts

    files = {"run.log": b"step 1\ncaf\xe9 (a latin-1 line)\n", "summary.json": b'{"val_bpb": 1.0}', "x.patch": b"\xff"}
    assert unpack_artifacts(pack_artifacts(files)) == files
    capped = unpack_artifacts(pack_artifacts({"run.log": b"\xfe" * 50}, cap=10))["run.log"]
    assert capped.startswith(b"[memorylab: run.log truncated") and capped.endswith(b"\n" + b"\xfe" * 10)
