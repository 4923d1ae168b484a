"""Re-run the issue-26 attacks on the store and its index; time the first command after the index is damaged.

    python benchmarks/attack_store.py [--timing-sizes 10000 100000] [--repeat 3] [--skip-timing]

Every attack drives ``python memorylab.py`` as separate processes, as an agent's shell would, on a
scratch store (tests/synthetic_store.py: 300 runs) and says whether the store *held*: the command
answered with the journal's truth or kept the CLI's promise (exit 1 before an append, a warning naming
the run after it), no traceback, nothing appended twice, nothing outside the store written. Attacks
that need a private mount namespace (a small tmpfs for a full disk) or root (a folder owned by someone
else) are reported as skipped where those are not available. Prints one markdown table of attacks
(tried / held) and one of timings: the first ``status`` after the index's first page was garbled
(healing: discard + full fold), beside a cold build (index deleted) and a warm ``status``, measured
alternately on ledgers of the given sizes (benchmarks/bench_memorylab.py's records).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from bench_memorylab import build_ledger  # noqa: E402
from mlhelpers import fake_run  # noqa: E402
from synthetic_store import write_store  # noqa: E402

ML = str(ROOT / "memorylab.py")
PAGE = 4096
READS = (["list", "--limit", "1000", "--json"], ["status", "--json"], ["check", "-d", "depth 8 -> 10", "--json"],
         ["report", "-o", "-", "--since-hours", "876000"], ["guide"], ["export", "-f", "tsv"])


def ml(home: Path, *args: str, cwd: Path | None = None, timeout: float = 120,
       env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, ML, "--home", str(home), *args], cwd=cwd or home.parent, text=True,
                          capture_output=True, timeout=timeout, env={**os.environ, **(env or {})})


def clean(res: subprocess.CompletedProcess) -> bool:
    return "Traceback" not in res.stderr + res.stdout


def lines(home: Path) -> list[str]:
    return (home / "experiments.jsonl").read_text().splitlines()


def answers(home: Path) -> list[tuple[int, str]]:
    """What the read commands print (the report's generation stamp cut out)."""
    out = []
    for args in READS:
        res = ml(home, *args)
        text = "\n".join(x for x in res.stdout.splitlines()  # what moves with the clock, not the index
                         if not x.startswith("# MemoryLab morning report") and "hours_since" not in x)
        out.append((res.returncode, text if clean(res) else "TRACEBACK"))
    return out


def truth(home: Path) -> list[tuple[int, str]]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{home}/index.sqlite{suffix}").unlink(missing_ok=True)
    return answers(home)


def log(home: Path, description: str, val: float = 0.97) -> subprocess.CompletedProcess:
    run_log, summary = fake_run(home.parent, val)
    return ml(home, "log", "-d", description, "--status", "discard", "--log", str(run_log), "--summary", str(summary))


def garble(path: Path, rng: random.Random, pages: list[int]) -> None:
    with open(path, "r+b") as fh:
        for page in pages:
            fh.seek(page * PAGE + (100 if page == 0 else 0))
            fh.write(bytes(rng.randrange(256) for _ in range(16)))


# -- the attacks: each gets a fresh copy of the store and returns (tried, held, note) ----------------------

def logged_once(home: Path, res: subprocess.CompletedProcess, before: int) -> bool:
    return res.returncode == 0 and clean(res) and len(lines(home)) == before + 1


def attack_page_headers(home: Path) -> tuple[int, int, str]:
    """Garble the 16-byte header of each page of the index in turn; every read and a log must hold."""
    expected = truth(home)
    pages = (home / "index.sqlite").stat().st_size // PAGE
    tried = held = 0
    rng = random.Random(1)
    for page in rng.sample(range(pages), min(pages, 12)):
        truth(home)
        garble(home / "index.sqlite", rng, [page])
        tried += 1
        held += answers(home) == expected
    before = len(lines(home))
    garble(home / "index.sqlite", rng, rng.sample(range(pages), min(pages, 20)))
    tried += 1
    held += logged_once(home, log(home, "after 20 garbled pages"), before)
    return tried, held, f"{pages} pages; 12 one-page hits, then 20 pages and a log"


def attack_random_pages(home: Path) -> tuple[int, int, str]:
    """Property: 10 seeded rounds of 1-6 garbled pages between commands."""
    expected = truth(home)
    rng = random.Random(26)
    tried = held = 0
    for _ in range(10):
        ml(home, "status")
        pages = (home / "index.sqlite").stat().st_size // PAGE
        garble(home / "index.sqlite", rng, rng.sample(range(pages), rng.randint(1, 6)))
        tried += 1
        held += answers(home) == expected
    return tried, held, "10 rounds, every read command compared with a fresh fold"


PLANTS = ("CREATE UNIQUE INDEX evil ON runs(arena) WHERE idx >= 299", "CREATE TRIGGER evil AFTER INSERT ON runs "
          "BEGIN DELETE FROM runs; END", "CREATE VIEW evil AS SELECT 1", "CREATE TABLE planted (x)",
          "CREATE INDEX evil ON runs(description)")


def attack_plants(home: Path) -> tuple[int, int, str]:
    """Plant constraints, triggers, views and tables in the index; then a log and the reads."""
    tried = held = 0
    for plant in (*PLANTS, "check"):
        ml(home, "status")
        db = sqlite3.connect(home / "index.sqlite")
        if plant == "check":  # a CHECK constraint written into a table's schema
            sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'arenas'").fetchone()[0]
            db.execute("PRAGMA writable_schema = ON")
            db.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'arenas'",
                       (sql.replace("last_idx INTEGER NOT NULL", "last_idx INTEGER NOT NULL CHECK (last_idx < 0)"),))
            db.commit()
        else:
            db.executescript(plant)
        db.close()
        before = len(lines(home))
        tried += 1
        res = log(home, f"after plant {tried}")
        held += logged_once(home, res, before) and answers(home) == truth(home)
    return tried, held, "unique index, trigger, view, table, index, CHECK constraint"


def attack_commit_failure(home: Path) -> tuple[int, int, str]:
    """An injected `database or disk is full` at every COMMIT of the index file (sitecustomize)."""
    hook = home.parent / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import sqlite3\n"
        "class Full(sqlite3.Connection):\n"
        "    def execute(self, sql, *a):\n"
        "        if sql == 'COMMIT' and self.in_transaction and self.total_changes and ':memory:' not in self.path:\n"
        "            super().execute('ROLLBACK')\n"
        "            raise sqlite3.OperationalError('database or disk is full')\n"
        "        return super().execute(sql, *a)\n"
        "_connect = sqlite3.connect\n"
        "def connect(path, *a, **k):\n"
        "    k.setdefault('factory', Full)\n"
        "    conn = _connect(path, *a, **k)\n"
        "    conn.path = str(path)\n"
        "    return conn\n"
        "sqlite3.connect = connect\n")
    env = {"PYTHONPATH": str(hook)}
    run_log, summary = fake_run(home.parent, 0.97)
    before = len(lines(home))
    res = ml(home, "log", "-d", "commit fails", "--status", "discard", "--log", str(run_log), "--summary",
             str(summary), env=env)
    ok = logged_once(home, res, before) and "no transaction" not in res.stderr
    reads = all(r.returncode == 0 and clean(r) for r in (ml(home, "status", env=env), ml(home, "list", env=env)))
    return 2, ok + reads, "log exit 0 once, no ROLLBACK error; reads answer from memory"


def attack_disk_full(home: Path) -> tuple[int, int, str]:
    """A small tmpfs in a private mount namespace: a cold build and a log at 0 KiB to 2 MiB free."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        return 0, 0, "skipped: no private mount namespaces (unshare -rm)"
    run_log, summary = fake_run(home.parent, 0.97)
    tried = held = 0
    for free in (0, 16, 48, 64, 96, 256, 512, 1024, 2048):
        res = subprocess.run(["unshare", "-rm", "sh", str(ROOT / "tests" / "full_disk.sh"), str(home), str(free),
                              sys.executable, ML, str(run_log), str(summary)], capture_output=True, text=True,
                             timeout=600)
        tried += 1
        held += f"RESULT status=0 runs=300 log=0 recorded={len(lines(home)) + 1}" in res.stdout and clean(res)
    return tried, held, "free KiB: 0 16 48 64 96 256 512 1024 2048 (6 MiB tmpfs)"


def attack_index_symlinks(home: Path) -> tuple[int, int, str]:
    """index.sqlite (and -wal) symlinked to another store's index and to an empty file outside."""
    outside = home.parent / "outside"
    outside.mkdir()
    ml(home, "status")
    other = outside / "other-index.sqlite"
    shutil.copy(home / "index.sqlite", other)
    empty = outside / "empty"
    empty.write_bytes(b"")
    tried = held = 0
    for target in (other, empty):
        before = target.read_bytes()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{home}/index.sqlite{suffix}").unlink(missing_ok=True)
        (home / "index.sqlite").symlink_to(target)
        res = ml(home, "status", "--json")
        tried += 1
        held += (res.returncode == 0 and json.loads(res.stdout)["runs"] == 300 and target.read_bytes() == before
                 and not (home / "index.sqlite").is_symlink())
    return tried, held, "another store's index; an empty file outside the store"


def attack_results_tsv(home: Path) -> tuple[int, int, str]:
    """results.tsv as a symlink or hard link to the journal, a FIFO, a symlink outside, a directory."""
    work = home.parent / "work"
    work.mkdir()
    tried = held = 0
    for plant in ("symlink", "hardlink", "fifo", "outside", "dir"):
        tsv = work / "results.tsv"
        if tsv.is_dir() and not tsv.is_symlink():
            tsv.rmdir()
        else:
            tsv.unlink(missing_ok=True)
        target = home.parent / "elsewhere.tsv"
        target.write_text("untouched\n")
        _plant_tsv(plant, tsv, home / "experiments.jsonl", target)
        run_log, summary = fake_run(work, 0.97)
        before = len(lines(home))
        tried += 1
        try:
            res = ml(home, "log", "-d", f"tsv {plant}", "--status", "discard", "--log", str(run_log), "--summary",
                     str(summary), cwd=work, timeout=60)
        except subprocess.TimeoutExpired:
            continue
        held += (logged_once(home, res, before) and all(x.startswith("{") for x in lines(home))
                 and target.read_text() == "untouched\n" and "results.tsv" in res.stderr)
    return tried, held, "each: exit 0, one journal line, a warning naming the run, nothing else written"


def _plant_tsv(plant: str, tsv: Path, journal: Path, outside: Path) -> None:
    if plant == "symlink":
        tsv.symlink_to(journal)
    elif plant == "hardlink":
        os.link(journal, tsv)
    elif plant == "fifo":
        os.mkfifo(tsv)
    elif plant == "outside":
        tsv.symlink_to(outside)
    else:
        tsv.mkdir()


def attack_tsv_forgery(home: Path) -> tuple[int, int, str]:
    """A description holding a Unicode line boundary that would start a forged keep row."""
    tried = held = 0
    for sep in ("\u2028", "\u2029", "\x85", "\r", "\x1c", "\x1d", "\x1e", "\x0b", "\x0c"):
        store = home.parent / f"forged{tried}"
        source = home.parent / f"forged{tried}.tsv"
        source.write_bytes(("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
                            "abc1234\t1.000000\t44.0\tkeep\tbaseline\n"
                            f"bcd2345\t1.050000\t44.0\tdiscard\tharmless idea{sep}deadbee\t0.1\t1.0\tkeep\tINJECTED\n")
                           .encode())
        res = ml(store, "import", str(source), "--json")
        tried += 1
        rows = json.loads(ml(store, "list", "--json").stdout) if res.returncode == 0 else []
        held += sorted(r["val_bpb"] for r in rows) == [1.0, 1.05]
    return tried, held, "U+2028 U+2029 NEL CR FS GS RS VT FF"


def attack_duplicates(home: Path) -> tuple[int, int, str]:
    """`cat a.jsonl b.jsonl`: the journal appended to itself (partly)."""
    journal = home / "experiments.jsonl"
    data = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(data) + b"".join(data[:50]))
    status = json.loads(ml(home, "status", "--json").stdout)
    listed = json.loads(ml(home, "list", "--limit", "1000", "--json").stdout)
    first = json.loads(data[0])
    shown = json.loads(ml(home, "show", first["run_id"], "--json").stdout)["record"]
    ids = [r["run_id"] for r in listed]
    return 3, ((status["runs"] == 300) + (len(ids) == len(set(ids)) == 300)
               + (shown["description"] == first["description"])), "status, list, show"


def attack_mistyped_home(home: Path) -> tuple[int, int, str]:
    typo = home.parent / (home.name + "x")
    checks = [ml(typo, "check", "-d", "depth 8 -> 10", "--fail-on-similar"), ml(typo, "list"), ml(typo, "guide")]
    held = sum(r.returncode == 1 and "no MemoryLab store" in r.stderr for r in checks) + (not typo.exists())
    return 4, held, "check --fail-on-similar, list, guide: exit 1, one line; nothing created"


def attack_piped_summary(home: Path) -> tuple[int, int, str]:
    run_log, summary = fake_run(home.parent, 0.97)
    before = len(lines(home))
    res = subprocess.run(["bash", "-c", f"{sys.executable} {ML} --home {home} log -d piped --status discard "
                          f"--summary <(cat {summary}) --log <(cat {run_log})"], capture_output=True, text=True,
                         timeout=120, cwd=home.parent)
    endless = ml(home, "log", "-d", "endless", "--status", "discard", "--summary", "/dev/zero")
    return 2, logged_once(home, res, before) + (endless.returncode == 1 and len(lines(home)) == before + 1), \
        "<(cat summary) accepted; /dev/zero refused in one line"


def attack_planted_temp_dir(home: Path) -> tuple[int, int, str]:
    """A read-only store (run as `nobody`) with $TMPDIR/memorylab-index-<uid> planted: reads answer and
    the second command reuses an index (no re-fold)."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        return 0, 0, "skipped: needs root and setpriv to run as nobody"
    shared = Path(tempfile.mkdtemp(prefix="ml-attack-ro-"))
    tried = held = 0
    try:
        shared.chmod(0o755)
        store = shared / "store"
        shutil.copytree(home, store)
        subprocess.run(["chmod", "-R", "a+rX,a-w", str(store)], check=True)
        for kind in ("file", "symlink", "foreign dir", "lax dir"):
            tmp, cache = shared / f"tmp-{tried}", shared / f"cache-{tried}"
            tmp.mkdir(mode=0o777)
            tmp.chmod(0o1777)
            cache.mkdir()
            os.chown(cache, 65534, 65534)
            planted = tmp / "memorylab-index-65534"
            {"file": lambda p: p.write_text("x"), "symlink": lambda p: p.symlink_to(shared),
             "foreign dir": lambda p: p.mkdir(mode=0o700), "lax dir": lambda p: (p.mkdir(), os.chown(p, 65534, 65534),
                                                                                 p.chmod(0o777))}[kind](planted)
            env = {**os.environ, "TMPDIR": str(tmp), "XDG_CACHE_HOME": str(cache), "HOME": str(cache)}
            command = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, ML,
                       "--home", str(store), "status", "--json"]
            first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, cwd=shared)
            second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, cwd=shared)
            reused = any(cache.rglob("*.sqlite"))
            tried += 1
            held += (first.returncode == second.returncode == 0 and reused and "in-memory" not in second.stderr)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(shared)], check=False)
        shutil.rmtree(shared, ignore_errors=True)
    return tried, held, "file, symlink, root's folder, world-writable folder"


ATTACKS: dict[str, Callable[[Path], tuple[int, int, str]]] = {
    "index page headers garbled (one page at a time, then 20)": attack_page_headers,
    "random pages garbled between commands (property)": attack_random_pages,
    "planted constraints, triggers, views, tables in index.sqlite": attack_plants,
    "COMMIT fails (injected OperationalError)": attack_commit_failure,
    "disk full: cold build and log on a small tmpfs": attack_disk_full,
    "index.sqlite symlinked": attack_index_symlinks,
    "results.tsv as a side door": attack_results_tsv,
    "TSV row forged through a Unicode line boundary": attack_tsv_forgery,
    "duplicate run ids (cat a.jsonl b.jsonl)": attack_duplicates,
    "mistyped --home": attack_mistyped_home,
    "--summary/--log through a pipe": attack_piped_summary,
    "planted per-user temp index folder (read-only store)": attack_planted_temp_dir,
}


def run_attacks(work: Path) -> list[tuple[str, int, int, str]]:
    pristine = write_store(work / "pristine" / "store", 300, seed=4)
    results = []
    for i, (name, attack) in enumerate(ATTACKS.items()):
        home = work / f"a{i}" / "store"
        shutil.copytree(pristine, home)
        tried, held, note = attack(home)
        results.append((name, tried, held, note))
        print(f"  {name}: {held}/{tried}", file=sys.stderr)
    return results


# -- timing: the first command after the index is damaged ------------------------------------------------

def timed_status(home: Path) -> float:
    start = time.perf_counter()
    res = ml(home, "status", timeout=3600)
    if res.returncode != 0 or not clean(res):
        raise SystemExit(f"status failed: {res.stderr}")
    return (time.perf_counter() - start) * 1000


def time_size(n: int, repeat: int, work: Path) -> dict[str, list[float]]:
    """Alternating: the first `status` after page 1 of the index is garbled, after the index is deleted,
    and with the index intact."""
    home = work / f"timing{n}" / "store"
    build_ledger(home, n)
    timed_status(home)
    out: dict[str, list[float]] = {"damaged": [], "deleted": [], "warm": []}
    rng = random.Random(n)
    for _ in range(repeat):
        garble(home / "index.sqlite", rng, [0])  # sqlite_master's page: every command meets it
        out["damaged"].append(timed_status(home))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{home}/index.sqlite{suffix}").unlink(missing_ok=True)
        out["deleted"].append(timed_status(home))
        out["warm"].append(timed_status(home))
    shutil.rmtree(home.parent)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timing-sizes", type=int, nargs="*", default=[10000, 100000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-attacks", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ml-attack-") as tmp:
        work = Path(tmp)
        print(f"load before: {os.getloadavg()[0]:.2f} (1-min), {os.cpu_count()} CPUs")
        if not args.skip_attacks:
            rows = run_attacks(work)
            print("\n| attack | tried | held | what |\n|---|---:|---:|---|")
            for name, tried, held, note in rows:
                print(f"| {name} | {tried} | {held} | {note} |")
            print(f"| **total** | {sum(r[1] for r in rows)} | {sum(r[2] for r in rows)} | |")
        if not args.skip_timing:
            print("\n| runs | first `status` after damage (ms) | after the index was deleted (ms) | warm (ms) |\n"
                  "|---:|---|---|---|")
            for n in args.timing_sizes:
                t = time_size(n, args.repeat, work)
                cell = {k: f"{statistics.median(v):,.0f} (max {max(v):,.0f})" for k, v in t.items()}
                print(f"| {n:,} | {cell['damaged']} | {cell['deleted']} | {cell['warm']} |")
        print(f"\nload after: {os.getloadavg()[0]:.2f} (1-min)")


if __name__ == "__main__":
    main()
