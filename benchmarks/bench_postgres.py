"""Measure the PostgreSQL journal (issue 13) against a throwaway local server (tests/pg_fixture.py).

    python benchmarks/bench_postgres.py [--runs 100000] [--repeat 5] [--writers 8 32]

1. Appends per second: W writer processes (tests/pg_writer.py), each ``log``-ging runs in a loop
   against one database (4 simulated hosts, each with its own index dir), wall time from start to the
   last exit; and raw ``append_many`` of one record under the advisory lock, W processes.
2. ``check`` / ``log`` / ``report`` latency (whole processes) at ``--runs`` runs: the same synthetic
   ledger (bench_memorylab.build_ledger) as a file journal, and migrated into PostgreSQL.
3. Index sync: time for a host's index to fold 1,000 records another host appended.
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from bench_memorylab import build_ledger, synthetic_record, timed  # noqa: E402
from mlhelpers import fake_run, make_repo  # noqa: E402
from pg_fixture import PgServer, server_bin  # noqa: E402

RAW_APPEND = """
import sys, time
sys.path.insert(0, {root!r})
from memorylab_core.ledger.store import open_store
store = open_store({url!r}, None, {idx!r})
for i in range({n}):
    rec = {{"schema_version": 2, "record_type": "event", "event_id": f"bench-{{sys.argv[1]}}-{{i}}",
           "event_type": "breaker_reset", "timestamp_utc": "2026-01-01T00:00:00Z"}}
    with store.lock():
        store.append_many_locked([rec])
"""


def log_rate(server: PgServer, work: Path, writers: int, per_writer: int) -> float:
    """Runs recorded per second by ``writers`` processes running ``log`` in a loop."""
    url = server.create_database()
    hosts = []
    for h in range(4):
        make_repo(work / f"w{writers}-host{h}" / "repo")
        hosts.append(work / f"w{writers}-host{h}")
    env0 = {**os.environ, "MEMORYLAB_HOME": url}
    subprocess.run([sys.executable, str(ROOT / "memorylab.py"), "init"], cwd=hosts[0] / "repo", check=True,
                   env={**env0, "MEMORYLAB_INDEX_DIR": str(hosts[0] / "index")}, capture_output=True)
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, str(ROOT / "tests" / "pg_writer.py"), str(hosts[w % 4] / "repo"),
                               str(per_writer), f"w{w}"], stdout=subprocess.PIPE, text=True,
                              env={**env0, "MEMORYLAB_INDEX_DIR": str(hosts[w % 4] / "index")})
             for w in range(writers)]
    ok = sum(out.count("OK ") for out in (p.communicate()[0] for p in procs))
    elapsed = time.perf_counter() - start
    assert ok == writers * per_writer, f"only {ok} of {writers * per_writer} logs succeeded"
    return ok / elapsed


def raw_rate(server: PgServer, work: Path, writers: int, per_writer: int) -> float:
    """Records per second appended by ``writers`` processes calling append_many directly (no ``log``)."""
    url = server.create_database()
    from memorylab_core.ledger.store import open_store

    open_store(url, None, str(work / "raw-idx")).init()
    code = RAW_APPEND.format(root=str(ROOT), url=url, idx=str(work / "raw-idx"), n=per_writer)
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", code, str(w)]) for w in range(writers)]
    assert all(p.wait() == 0 for p in procs)
    return writers * per_writer / (time.perf_counter() - start)


def latencies(home: str, repo: Path, env: dict, repeat: int, work: Path) -> dict[str, list[float]]:
    env = {**env, "MEMORYLAB_HOME": home}
    check = ["check", "-d", "increase matrix LR 0.04 -> 0.05", "--tags", "optimizer"]
    rows = {"check (cold index)": [timed(check, repo, env)]}
    rows["check"] = [timed(check, repo, env) for _ in range(repeat)]
    rows["report"] = [timed(["report", "--output", str(work / "r.md")], repo, env) for _ in range(repeat)]
    logs = []
    for i in range(repeat):
        log, summary = fake_run(repo, 0.99 + i * 1e-4)
        logs.append(timed(["log", "-d", f"bench run {i}", "--status", "discard", "--log", str(log), "--summary",
                           str(summary)], repo, env))
    rows["log"] = logs
    return rows


def sync_time(url: str, work: Path, repo: Path, env: dict) -> tuple[float, float]:
    """(ms of a ``list`` that folds 1,000 records another host appended, ms of the same ``list`` with none new)."""
    from memorylab_core.ledger.store import open_store

    other = open_store(url, None, str(work / "other-host"))
    rng = random.Random(7)
    t0 = time.time() + 10**8  # after every existing run: fresh run ids
    records = [synthetic_record(i, rng, t0) for i in range(1000)]
    for r in records:
        r["schema_version"] = 2
    env = {**env, "MEMORYLAB_HOME": url}
    timed(["list", "--limit", "1"], repo, env)
    idle = statistics.median(timed(["list", "--limit", "1"], repo, env) for _ in range(3))
    with other.lock():
        other.append_many_locked(records)
    return timed(["list", "--limit", "1"], repo, env), idle


def table(title: str, rows: dict[str, list[float]]) -> str:
    lines = [f"**{title}**", "", "| command | median ms | max ms | n |", "|---|---|---|---|"]
    lines += [f"| {name} | {statistics.median(v):.0f} | {max(v):.0f} | {len(v)} |" for name, v in rows.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--writers", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--per-writer", type=int, default=10)
    args = parser.parse_args()
    server = PgServer(server_bin())
    server.start()
    try:
        work = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        print(f"load average at start: {os.getloadavg()}, cpus: {os.cpu_count()}")
        for w in args.writers:
            print(f"{w} writers: log {log_rate(server, work, w, args.per_writer):.1f} runs/s, "
                  f"raw append {raw_rate(server, work, w, 50):.0f} records/s, load {os.getloadavg()[0]:.1f}")
        store = work / "file-store"
        build_ledger(store, args.runs)
        repo = make_repo(work / "repo")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["MEMORYLAB_INDEX_DIR"] = str(work / "pg-host")
        url = server.create_database()
        start = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "memorylab.py"), "--home", str(store), "migrate", "--to", url,
                        "--to-index-dir", str(work / "migrate-idx")], cwd=repo, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        print(f"migrate {args.runs} runs file → PostgreSQL (incl. the target's index build): "
              f"{time.perf_counter() - start:.1f} s")
        print(table(f"file journal, {args.runs} runs", latencies(str(store), repo, env, args.repeat, work)))
        print(table(f"PostgreSQL journal, {args.runs} runs", latencies(url, repo, env, args.repeat, work)))
        synced, idle = sync_time(url, work, repo, env)
        print(f"index sync: `list` folding 1,000 new remote records {synced:.0f} ms (nothing new: {idle:.0f} ms)")
        print(f"load average at end: {os.getloadavg()}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
