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
user cannot write (another user's, a read-only mount) a per-user copy in a private folder
(:func:`private_dir`: the temp directory's, else the user's cache folder), keyed by the store's path;
in memory for a store that does not exist yet (so read commands create nothing).

**A cache, and what it trusts.** It trusts its journal key to say which prefix of the journal its
rows fold, and those rows to be that fold. It does not trust its schema (a file whose objects are not
exactly the ones created here -- a planted trigger, view, unique index, CHECK constraint or table --
is rebuilt), its pages (any error but a lock rebuilds it: journal_index.py ``JournalIndex.heal``), or its file
(never opened through a symlink). **Safety.** No pickle: folded state is JSON (codec.py) decoded
into named classes only, and ``trusted_schema`` is off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import stat
import tempfile
import time
from pathlib import Path

from ..ledger.journal import JournalStat
from ..ledger.store import INDEX_NAME, Store, os_reason, warn

INDEX_VERSION = 25  # bump when a table or a fold changes: older indexes are rebuilt (25: "LS" needs context)
BLOCK = 1 << 20  # bytes per verification hash
PRIVATE_PREFIX = "memorylab-index-"  # + uid: the temp-dir folder of indexes of stores this user cannot write
BUSY_TIMEOUT_MS = 120_000  # another command syncing the index: wait for it
SQLITE_BUSY, SQLITE_LOCKED = 5, 6  # SQLite's primary result codes for a lock held elsewhere

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
CREATE INDEX IF NOT EXISTS runs_native_arena ON runs(arena, branch, idx) WHERE source = 'native';
CREATE INDEX IF NOT EXISTS runs_early_abort ON runs(arena, idx) WHERE data LIKE '%"early_abort"%';
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
    """Where this user keeps the index of ``store``; None when it lives in memory (no store yet, or no
    private folder this user can trust: then with one warning)."""
    if not store.exists():
        return None
    primary = store.index_path
    if _writable_dir(store.root) and (primary.is_symlink() or not primary.exists() or os.access(primary, os.W_OK)):
        return primary  # a symlink there is replaced by a file of our own (_open_file), never followed
    folder = private_dir()
    if folder is None:
        warn(f"no private folder for the index of the read-only store {store.root} (tried "
             f"{', '.join(map(str, private_dirs()))}); using an in-memory index for this command")
        return None
    digest = hashlib.sha256(str(store.root.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return folder / f"{digest}.sqlite"


def private_dirs() -> list[Path]:
    """Where indexes of stores this user cannot write may live, in order: the temp directory's
    ``memorylab-index-<uid>``, else ``$XDG_CACHE_HOME/memorylab/index-<uid>`` (``~/.cache``), which no
    other user can plant anything in."""
    uid = os.getuid()
    folders = [Path(tempfile.gettempdir()) / f"{PRIVATE_PREFIX}{uid}"]
    with contextlib.suppress(RuntimeError, KeyError):  # no home directory: the temp folder only
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        folders.append(Path(cache) / "memorylab" / f"index-{uid}")
    return folders


def private_dir() -> Path | None:
    """The first of :func:`private_dirs` that is (or is now made) a real directory of this user that
    only this user can enter; None when none is. A planted file, symlink, foreign or lax directory is
    left alone and the next candidate is tried."""
    for folder in private_dirs():
        with contextlib.suppress(OSError):
            folder.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder, 0o700)
            st = os.lstat(folder)
            if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077:
                return folder
    return None


def _writable_dir(path: Path) -> bool:
    if not os.access(path, os.W_OK):
        return False
    try:  # os.access says yes to root even on a read-only mount: ask statvfs
        return not (os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def is_busy(exc: BaseException) -> bool:
    """Whether an SQLite error is another connection holding a lock (wait or retry; never discard)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def open_db(store: Store, components_ddl: str) -> tuple[sqlite3.Connection, Path | None]:
    """The index database of ``store`` with every table created, and its file (None: in memory).

    A file that is not an index of this version and schema, or that fails in any way but a lock, is
    discarded and made afresh once; if that fails too (disk full, read-only), the index lives in
    memory for this command, with one warning. A lock held elsewhere past the busy timeout keeps the
    file and uses memory."""
    location = index_location(store)
    if location is None:
        return fresh_db(components_ddl), None
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    attempt = 0
    while attempt < 2:
        conn = None
        try:
            conn = _open_file(location)
            if _made_or_valid(conn, components_ddl):
                return conn, location
            conn.close()
        except (sqlite3.DatabaseError, OSError) as exc:
            if conn is not None:
                conn.close()
            if is_busy(exc) and time.monotonic() < deadline:  # switching to WAL does not wait by itself
                time.sleep(0.05)
                continue
            if attempt or is_busy(exc):
                warn(f"index {location} unusable ({_reason(exc)}); using an in-memory index for this command")
                break
        discard(location)
        attempt += 1
    return fresh_db(components_ddl), None


def fresh_db(components_ddl: str) -> sqlite3.Connection:
    """A private in-memory index with every table created."""
    conn = memory_db()
    conn.executescript(components_ddl)
    return conn


def _reason(exc: BaseException) -> str:
    return os_reason(exc) if isinstance(exc, OSError) else str(exc)


INDEX_FILES = ("", "-wal", "-shm", "-journal")  # the index and the files SQLite keeps beside it


def _open_file(location: Path) -> sqlite3.Connection:
    """A connection to the index file at ``location``, never through a symlink: a link (or anything
    but a regular file) at the index's or its side files' names is removed first (the link, never
    its target), and the file is checked again once SQLite has opened it."""
    private = location.name != INDEX_NAME  # this user's copy of a read-only store's index: ours alone
    for suffix in INDEX_FILES:
        path = f"{location}{suffix}"
        with contextlib.suppress(FileNotFoundError):
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or (private and st.st_uid != os.getuid()):
                os.unlink(path)
    conn = connect(location)
    try:
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # derived data: a power cut costs a rebuild, never the truth
        if not stat.S_ISREG(os.lstat(location).st_mode):
            raise sqlite3.DatabaseError(f"{location} is not a regular file")
    except BaseException:
        conn.close()
        raise
    return conn


_EXPECTED: dict[str, set[tuple]] = {}


def _schema(conn: sqlite3.Connection) -> set[tuple]:
    """Every object of a database (type, name, table, SQL) but SQLite's statistics tables."""
    return {tuple(row) for row in conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")
            if not str(row[1]).startswith("sqlite_stat")}


def _made_or_valid(conn: sqlite3.Connection, components_ddl: str) -> bool:
    """Whether the file is an index of this version and schema (:func:`_valid`), every table made first when it
    is empty. Judged and made inside one write transaction: a command making the same new file at the same
    moment is waited for (the busy timeout), never judged half-made and its file discarded under it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        empty = not _schema(conn)
        if not empty and not _valid(conn, components_ddl):
            conn.execute("ROLLBACK")
            return False
        for statement in _statements(CORE_DDL + components_ddl):
            conn.execute(statement)
        if empty:
            reset(conn)
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return True


def _statements(script: str) -> list[str]:
    """The SQL statements of a DDL script, one by one (``executescript`` would commit the transaction)."""
    out, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    return out


def _valid(conn: sqlite3.Connection, components_ddl: str) -> bool:
    """An index of this version whose schema is exactly the one MemoryLab creates: a planted trigger, view,
    unique index, CHECK constraint or extra table makes it a file to rebuild."""
    found = _schema(conn)
    if components_ddl not in _EXPECTED:
        with contextlib.closing(memory_db()) as fresh:
            fresh.executescript(components_ddl)
            _EXPECTED[components_ddl] = _schema(fresh)
    if found != _EXPECTED[components_ddl]:
        return False
    row = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
    return row is not None and row[0] == INDEX_VERSION


def discard(location: Path) -> None:
    """Remove an index file and its side files (links are removed, never followed)."""
    for suffix in INDEX_FILES:
        with contextlib.suppress(OSError):
            os.unlink(f"{location}{suffix}")


def rollback(conn: sqlite3.Connection) -> None:
    """End the open transaction, if any: SQLite may already have rolled back after a failed statement
    or COMMIT (disk full), and a second error here would hide the first."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


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
