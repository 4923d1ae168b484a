"""The index: ``index.sqlite``, a derived SQLite database that every view reads instead of the journal.

The journal (``experiments.jsonl``) is the truth; the index holds what views filter and sort on (one
row per run and per event, with the fields as columns) plus the folded state the views need (the
novelty guard's postings and moves, the registry's notable runs and failure clusters, the research
memory), brought up to date from the last indexed journal position at the start of each command.
Delete it at any time: the next command rebuilds it. Users may open it with ``sqlite3`` or Datasette
as a read-only surface (schema in docs/memorylab_api.md).

**Keyed to the journal's bytes.** The index records the journal's device and inode, how many bytes it
folded, and a SHA-256 of every :data:`BLOCK` bytes of that range (the last block partial), kept
incrementally as lines are folded. It also records the journal's size and ``st_ctime_ns`` as last
seen. A command whose ``stat`` of the journal shows exactly that (size, ctime, inode) skips all
checks. Any other change -- an append by another program, an edit of any length anywhere -- makes it
re-hash the indexed range: equal hashes mean only new lines were added (they are folded); any
difference, a shorter journal or another inode rebuilds the index from scratch. MemoryLab's own
appends hand their before/after ``stat`` to the index (:meth:`Index.trust_appends`), so the common
case never re-reads the journal. ``st_ctime`` cannot be set by a user program, so a same-length
edit that restores the mtime is still seen.

**Where it lives.** ``<store>/index.sqlite`` (WAL mode) when the store is writable; for a store this
user cannot write (another user's, a read-only mount) a per-user copy under the temp directory,
keyed by the store's path; in memory for a store that does not exist yet (so read commands create
nothing). **Safety.** No pickle: folded state is JSON (codec.py) decoded into named classes only; a
file that is not an index of this version, or that holds triggers or views, is rebuilt, and
``trusted_schema`` is off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import stat
import tempfile
from pathlib import Path

from ..ledger.journal import JournalStat
from ..ledger.store import Store, warn

INDEX_VERSION = 12  # bump when a table or a fold changes: older indexes are rebuilt (12: issues 24 and 25)
BLOCK = 1 << 20  # bytes per verification hash
PRIVATE_PREFIX = "memorylab-index-"  # + uid: the temp-dir folder of indexes of stores this user cannot write
BUSY_TIMEOUT_MS = 120_000  # another command syncing the index: wait for it

CORE_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocks (block INTEGER PRIMARY KEY, sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    idx INTEGER PRIMARY KEY, line_no INTEGER NOT NULL, offset INTEGER NOT NULL, run_id TEXT NOT NULL,
    timestamp_utc TEXT, ts REAL, status TEXT NOT NULL, val_bpb REAL, memory_gb REAL, family TEXT,
    branch TEXT, commit_sha TEXT, parent_commit TEXT, code_fingerprint TEXT, idea_key TEXT,
    novelty_class TEXT, next_action TEXT, source TEXT, replicate_of TEXT, description TEXT,
    arena TEXT NOT NULL, role TEXT NOT NULL, validity TEXT NOT NULL,
    tags TEXT, categories TEXT, knobs TEXT, import_key TEXT, data TEXT NOT NULL);  -- data: the run's other fields, JSON
CREATE INDEX IF NOT EXISTS runs_run_id ON runs(run_id);
CREATE INDEX IF NOT EXISTS runs_commit ON runs(commit_sha) WHERE commit_sha IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_arena ON runs(arena, idx);
CREATE INDEX IF NOT EXISTS runs_arena_ts ON runs(arena, ts);
CREATE INDEX IF NOT EXISTS runs_arena_valid ON runs(arena, idx) WHERE validity = 'valid';
CREATE INDEX IF NOT EXISTS runs_import_key ON runs(import_key) WHERE import_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (
    idx INTEGER PRIMARY KEY, line_no INTEGER NOT NULL, offset INTEGER NOT NULL, event_id TEXT NOT NULL,
    event_type TEXT NOT NULL, timestamp_utc TEXT, ts REAL, runs_before INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS arenas (arena TEXT PRIMARY KEY, runs INTEGER NOT NULL, last_idx INTEGER NOT NULL)
    WITHOUT ROWID;  -- per arena: its run count and newest run (folded with the runs)
CREATE TABLE IF NOT EXISTS skipped (line_no INTEGER PRIMARY KEY, offset INTEGER NOT NULL, problem TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS folds (name TEXT PRIMARY KEY, runs INTEGER NOT NULL, events INTEGER NOT NULL,
    data TEXT NOT NULL) WITHOUT ROWID;
"""


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with MemoryLab's pragmas."""
    uri = path == ":memory:"
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False, uri=uri)
    conn.execute("PRAGMA trusted_schema = OFF")
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA cache_size = -65536")  # up to 64 MiB of pages, used only by big folds (~7% faster)
    return conn


def memory_db() -> sqlite3.Connection:
    """A private in-memory index (fresh folds, tests, a store that does not exist yet)."""
    conn = connect(":memory:")
    conn.executescript(CORE_DDL)
    return conn


def index_location(store: Store) -> Path | None:
    """Where this user keeps the index of ``store``; None when it should live in memory only."""
    if not store.exists():
        return None
    primary = store.index_path
    if _writable_dir(store.root) and (not primary.exists() or os.access(primary, os.W_OK)):
        return primary
    digest = hashlib.sha256(str(store.root.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"{PRIVATE_PREFIX}{os.getuid()}" / f"{digest}.sqlite"


def _writable_dir(path: Path) -> bool:
    if not os.access(path, os.W_OK):
        return False
    try:  # os.access says yes to root even on a read-only mount: ask statvfs
        return not (os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def open_db(store: Store, components_ddl: str) -> sqlite3.Connection:
    """The index database of ``store`` with every table created; rebuilt when it is not a valid index."""
    location = index_location(store)
    if location is None:
        conn = memory_db()
        conn.executescript(components_ddl)
        return conn
    for attempt in range(2):
        try:
            conn = _open_file(location)
            if _valid(conn):
                conn.executescript(CORE_DDL + components_ddl)
                return conn
            conn.close()
        except sqlite3.OperationalError as exc:  # locked, read-only, cannot open: keep the file, use memory
            warn(f"index {location} unusable ({exc}); using an in-memory index for this command")
            break
        except sqlite3.DatabaseError as exc:  # not a database, malformed: derived, so rebuild it
            if attempt:
                warn(f"index {location} unusable ({exc}); using an in-memory index for this command")
                break
        _discard(location)
    conn = memory_db()
    conn.executescript(components_ddl)
    return conn


def _open_file(location: Path) -> sqlite3.Connection:
    if location.parent.name.startswith(PRIVATE_PREFIX):  # this user's copy of another store's index
        location.parent.mkdir(mode=0o700, exist_ok=True)
        st = os.stat(location.parent, follow_symlinks=False)
        if st.st_uid != os.getuid() or st.st_mode & 0o077 or not stat.S_ISDIR(st.st_mode):
            raise sqlite3.OperationalError(f"{location.parent} is not a private folder of this user")
    conn = connect(location)
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")  # derived data: a power cut costs a rebuild, never the truth
    return conn


def _valid(conn: sqlite3.Connection) -> bool:
    """A fresh file, or an index of this version with nothing executable (triggers, views) in it."""
    objects = conn.execute("SELECT type, name FROM sqlite_master").fetchall()
    if not objects:
        return True
    if any(kind in ("trigger", "view") for kind, _ in objects):
        return False
    if ("table", "meta") not in objects:
        return False
    row = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
    return row is not None and row[0] == INDEX_VERSION


def _discard(location: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            os.unlink(f"{location}{suffix}")


# -- meta -------------------------------------------------------------------------------------------

def get_meta(conn: sqlite3.Connection, key: str, default=None):
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row is not None else default


def set_meta(conn: sqlite3.Connection, **values) -> None:
    conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     list(values.items()))


def reset(conn: sqlite3.Connection) -> None:
    """Empty every table (the caller holds a write transaction): the next fold starts at byte 0."""
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        conn.execute(f'DELETE FROM "{table}"')
    set_meta(conn, version=INDEX_VERSION, offset=0, line_no=0, seen="", journal="", generation=os.urandom(8).hex())


# -- the journal key --------------------------------------------------------------------------------

def verify_prefix(conn: sqlite3.Connection, store: Store, offset: int) -> bool:
    """Whether the journal's first ``offset`` bytes still hash to the stored blocks."""
    stored = dict(conn.execute("SELECT block, sha256 FROM blocks"))
    if len(stored) != -(-offset // BLOCK):
        return False
    try:
        with open(store.ledger_path, "rb") as fh:
            for block in range(len(stored)):
                data = fh.read(min(BLOCK, offset - block * BLOCK))
                if hashlib.sha256(data).hexdigest() != stored.get(block):
                    return False
    except OSError:
        return False
    return True


def extend_blocks(conn: sqlite3.Connection, store: Store, old: int, new: int, data: bytes) -> None:
    """Hash the blocks that bytes ``old..new`` touch; ``data`` holds exactly those bytes."""
    conn.executemany("INSERT OR REPLACE INTO blocks(block, sha256) VALUES (?, ?)",
                     block_rows(store.ledger_path, old, new, data))


def block_rows(path: Path | str, old: int, new: int, data: bytes) -> list[tuple[int, str]]:
    """(block, SHA-256) of every block that journal bytes ``old..new`` touch (``data``: those bytes;
    the start of a block before ``old`` is read from ``path``)."""
    first = old // BLOCK
    head = b""
    if old % BLOCK:
        with open(path, "rb") as fh:
            fh.seek(first * BLOCK)
            head = fh.read(old - first * BLOCK)
    rows, pos, block = [], 0, first
    carry = head
    while block * BLOCK < new:
        take = min(BLOCK - len(carry), new - block * BLOCK - len(carry))
        piece = carry + data[pos:pos + take]
        rows.append((block, hashlib.sha256(piece).hexdigest()))
        pos += take
        carry = b""
        block += 1
    return rows


def journal_identity(stat: JournalStat) -> str:
    return f"{stat.dev}:{stat.ino}"
