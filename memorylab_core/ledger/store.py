"""The store: where MemoryLab keeps things, and the only module that touches the ledger file.

Layout under the store root (``$MEMORYLAB_HOME`` or ``<repo>/results/memorylab``)::

    experiments.jsonl          the ledger: one JSON record per line, append-only (the truth)
    experiments.jsonl.lock     advisory lock file guarding appends
    champion_challenger.json   registry snapshot (derived)
    reports/latest.md          morning report (derived), plus reports/<UTC stamp>.md
    runs/<run_id>/             run.log, summary.json, train.patch, decision_packet.{json,md}
    index.sqlite               the derived index every view reads (index/db.py), safe to delete

Appends happen under an exclusive ``flock`` and write one whole line with a single ``write`` call
followed by ``fsync``. A writer killed mid-line leaves a line without a newline; the next append
starts on a fresh line and readers report the broken line and skip it. An append that fails (disk
full, I/O error) truncates the ledger back to its size before the append, so it is all or nothing.
Derived files are written to a temporary file in the same directory and renamed over the target, so
readers never see half a file; they get the permissions the umask allows, like any file the user makes.

The journal itself is a :class:`~memorylab_core.ledger.journal.Journal`: the file journal above
(:class:`~memorylab_core.ledger.journal.FileJournal`) or, for a ``postgresql://`` home, one table in
PostgreSQL (ledger/pgjournal.py), whose store root is then a per-host local directory holding the
index, reports and the run archive (see :func:`open_store`).

Readers never need write access: the shared lock opens the lock file read-only, and a store whose
lock file cannot be opened (another user's, a read-only mount) is read without it (appends write
whole lines, so a reader never sees a half-written record either way).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import MemoryLabError
from .files import read_regular
from .journal import FileJournal, Journal, LedgerLine, encode_record

__all__ = ["LedgerLine", "MemoryLabError", "Store", "encode_record", "open_store"]

LEDGER_NAME = "experiments.jsonl"
REGISTRY_NAME = "champion_challenger.json"
INDEX_NAME = "index.sqlite"
FORK_PREFIX = "results/memorylab/"  # the published fork's artifact paths start here (its store, from the repo root)
TSV_HEADER = "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"


def git_toplevel(cwd: Path) -> Path | None:
    """The enclosing git work tree of ``cwd``, or None outside one (or without git)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(cwd), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            timeout=10,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


def workspace_root(cwd: Path | None = None) -> Path:
    """The directory results.tsv belongs in: the git work tree of ``cwd``, else ``cwd`` itself."""
    cwd = Path(cwd or Path.cwd()).resolve()
    return git_toplevel(cwd) or cwd


def resolve_root(explicit: str | os.PathLike | None = None, cwd: Path | None = None) -> Path:
    """Store root: an explicit path, else ``$MEMORYLAB_HOME``, else ``<repo>/results/memorylab``."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get("MEMORYLAB_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return workspace_root(cwd) / "results" / "memorylab"


DATABASE_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(home: str | os.PathLike | None) -> bool:
    """Whether a home names a PostgreSQL journal (``postgresql://`` or ``postgres://``) rather than a directory."""
    return isinstance(home, str) and home.lower().startswith(DATABASE_SCHEMES)


def open_store(explicit: str | None = None, cwd: Path | None = None, index_dir: str | None = None) -> Store:
    """The store a command works on: ``explicit`` (``--home``), else ``$MEMORYLAB_HOME``, else the repo's.

    A ``postgresql://`` home is a PostgreSQL journal (ledger/pgjournal.py); its store root is this host's
    local directory (``index_dir``, else ``$MEMORYLAB_INDEX_DIR``, else under ``$XDG_CACHE_HOME``), which
    holds the index, reports and the run archive. Nothing connects here: the driver loads on first use.
    """
    home = explicit or os.environ.get("MEMORYLAB_HOME")
    workspace = workspace_root(cwd)
    if is_database_url(home):
        from .pgjournal import PostgresJournal, local_root

        root = local_root(home, index_dir or os.environ.get("MEMORYLAB_INDEX_DIR"))
        with contextlib.suppress(OSError):
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return Store(root, workspace, PostgresJournal(home))
    return Store(resolve_root(explicit, cwd), workspace)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block is done, then let it land as usual: a record written and its
    id noted, or a recorded run's archive and results.tsv row, are never cut apart by an interrupt (which
    would report "nothing recorded" for a recorded run, or leave it without its files). Only the main
    thread receives signals; elsewhere, and where the platform cannot mask them, this does nothing."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (after a rename) so the rename survives a power cut."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def umask_mode(mode: int = 0o666) -> int:
    """``mode`` as the process umask lets a newly created file have it (what ``open`` would give)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mode & ~mask


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory and an atomic rename.

    The file gets the mode the umask allows (``mkstemp`` alone would leave it 0600, unreadable to
    teammates sharing the store). ``durable``: fsync the file and its directory so the write survives
    a power cut (skipped for disposable caches, where a lost write only costs a rebuild).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, umask_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: object) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


class Store:
    """Paths of one store and the ledger's locked append / tolerant read."""

    def __init__(self, root: Path, workspace: Path | None = None, journal: Journal | None = None):
        self.root = Path(root)
        self.workspace = Path(workspace) if workspace else workspace_root()
        self.journal: Journal = journal or FileJournal(self.root)
        self.appended: list[str] = []  # ids of the records this process appended (exit-code promise)
        self.notes: list[str] = []  # warnings printed once the command succeeds (a possibly stale index)

    @property
    def appends(self) -> list[tuple]:
        """(stat before, stat after) of each file append this process made (the index trusts those bytes)."""
        return getattr(self.journal, "appends", [])

    @appends.setter
    def appends(self, value: list[tuple]) -> None:
        if isinstance(self.journal, FileJournal):
            self.journal.appends = value

    @property
    def is_file(self) -> bool:
        """Whether the journal is the local file (else a database: the root is this host's local cache)."""
        return isinstance(self.journal, FileJournal)

    # -- layout ---------------------------------------------------------------------------------
    @property
    def ledger_path(self) -> Path:
        return self.root / LEDGER_NAME

    @property
    def lock_path(self) -> Path:
        return self.root / (LEDGER_NAME + ".lock")

    @property
    def registry_path(self) -> Path:
        return self.root / REGISTRY_NAME

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def tsv_path(self) -> Path:
        return self.workspace / "results.tsv"

    @property
    def index_path(self) -> Path:
        return self.root / INDEX_NAME

    def owned_files(self) -> list[Path]:
        """The files at the store root that MemoryLab owns (an output path may never name one)."""
        index = self.index_path
        return [self.ledger_path, self.lock_path, self.registry_path, index,
                index.with_name(index.name + "-wal"), index.with_name(index.name + "-shm"),
                index.with_name(index.name + "-journal"), self.root / "promotion.json"]

    def check_output_path(self, path: Path) -> Path:
        """``path`` if a command may write its output there, else a one-line :class:`MemoryLabError`.

        Refused: anything at or under the store root (the journal, its lock, the registry, the index,
        reports/, runs/, cache/ ...), also when reached through a symlink or as a hard link of an owned
        file (same device and inode), and anything that exists but is not a regular file (a directory,
        /dev/full, a FIFO): the write is a temp file renamed over the target, which would replace it.
        """
        target = Path(os.path.abspath(path))
        real = Path(os.path.realpath(target))
        root = Path(os.path.realpath(self.root))
        if real == root or root in real.parents:
            raise MemoryLabError(f"output {path} is inside the store {self.root}; write it somewhere else")
        try:
            st = os.stat(real)
        except FileNotFoundError:
            return target
        except OSError as exc:
            raise MemoryLabError(f"output {path}: {exc.strerror or exc}") from exc
        if stat.S_ISDIR(st.st_mode):
            raise MemoryLabError(f"output {path} is a directory; give a file path")
        if not stat.S_ISREG(st.st_mode):
            raise MemoryLabError(f"output {path} exists and is not a regular file (a device, FIFO or socket); "
                                 "give a file path")
        if (st.st_dev, st.st_ino) in self._owned_inodes():
            raise MemoryLabError(f"output {path} is a link to a file of the store {self.root}; "
                                 "write it somewhere else")
        return target

    def _owned_inodes(self) -> set[tuple[int, int]]:
        """(device, inode) of every owned file that exists (catches hard links to them)."""
        found = set()
        for owned in self.owned_files():
            with contextlib.suppress(OSError):
                st = os.stat(owned)
                found.add((st.st_dev, st.st_ino))
        return found

    def run_dir(self, run_id: str) -> Path:
        """The archive folder of a run; refuses ids that could point outside ``runs/``."""
        if not is_safe_run_id(run_id):
            raise MemoryLabError(f"invalid run id {run_id!r}: use the id printed by 'memorylab list'")
        return self.runs_dir / run_id

    def artifact_file(self, rel: object) -> Path | None:
        """Where a record's archived artifact path points inside the store, or None when it points
        outside (a doctored path is never followed).

        MemoryLab writes store-relative paths (``runs/<id>/run.log``); the published fork writes them
        relative to its repository root (:data:`FORK_PREFIX` + ``runs/<id>/...``), which is this
        store read in place or the archive an import copied, so the prefix is dropped when the
        store-relative reading names nothing.
        """
        root = self.root.resolve()
        text = str(rel)
        readings = [text[len(FORK_PREFIX):], text] if text.startswith(FORK_PREFIX) else [text]
        inside = [path for path in ((root / reading).resolve() for reading in readings)
                  if path == root or root in path.parents]
        return next((path for path in inside if path.exists()), inside[0] if inside else None)

    def inside(self, directory: Path) -> Path:
        """``directory`` under the store, made if missing, once it is sure to lie inside the store: a writer
        never follows a link someone planted in a shared store (``runs/`` or ``reports/`` pointing elsewhere)."""
        if not self._leads_inside(directory):
            raise MemoryLabError(f"refusing to write in {directory}: a link there leads outside the store")
        directory.mkdir(parents=True, exist_ok=True)
        if not self._leads_inside(directory):  # made while we looked
            raise MemoryLabError(f"refusing to write in {directory}: a link there leads outside the store")
        return directory

    def _leads_inside(self, path: Path) -> bool:
        root, real = os.path.realpath(self.root), os.path.realpath(path)
        return real == root or real.startswith(root.rstrip(os.sep) + os.sep)

    def read_run_file(self, run_id: str, name: str, max_bytes: int) -> bytes | None:
        """A file archived under ``runs/<run_id>/``, or None when it is missing, bigger than ``max_bytes``,
        not a regular file, unreadable or reached through a link that leads outside the store: archives are
        optional extras for the views."""
        if not is_safe_run_id(run_id) or not is_safe_run_id(name):
            return None
        path = self.runs_dir / run_id / name
        if not self._leads_inside(path):
            return None
        try:
            return read_regular(path, max_bytes)
        except OSError:
            return None

    def read_run_json(self, run_id: str, name: str, max_bytes: int = 4_000_000) -> dict | None:
        """A JSON object archived under ``runs/<run_id>/`` (e.g. ``summary.json``), or None as for
        :meth:`read_run_file`, or when it is no JSON object."""
        raw = self.read_run_file(run_id, name, max_bytes)
        try:
            data = json.loads(raw.decode("utf-8", "replace")) if raw is not None else None
        except (ValueError, RecursionError):
            return None
        return data if isinstance(data, dict) else None

    def exists(self) -> bool:
        return self.journal.exists()

    def init(self) -> list[Path]:
        """Create the layout and the journal (idempotent). Returns what was newly created."""
        created = []
        for directory in (self.root, self.reports_dir, self.runs_dir):
            if not directory.exists():
                self.inside(directory)
                created.append(directory)
        created += [Path(p) for p in self.journal.init()]
        return created

    def ensure(self) -> None:
        """Make sure the layout exists before a write (commands other than init create it lazily). A
        database journal is created by ``init`` only; here just this host's local folders are made."""
        self.root.mkdir(parents=True, exist_ok=True)
        for directory in (self.reports_dir, self.runs_dir):
            self.inside(directory)
        if self.is_file and not self.ledger_path.exists():
            self.init()

    # -- the journal (ledger/journal.py) -----------------------------------------------------------
    def lock(self, shared: bool = False) -> contextlib.AbstractContextManager[None]:
        """Hold the journal lock: exclusive for writers (across hosts for PostgreSQL), shared for readers."""
        return self.journal.lock(shared)

    def ledger_size(self) -> int:
        return self.journal.size() if isinstance(self.journal, FileJournal) else 0

    def append_locked(self, record: dict) -> int:
        """Append one record; the caller holds :meth:`lock`. Returns the position of the new record."""
        return self.append_many_locked([record])

    def append_many_locked(self, records: list[dict], attachments: dict[str, dict[str, bytes]] | None = None) -> int:
        """Append records all or nothing (validated first); the caller holds :meth:`lock`.

        Returns the position of the first new record. ``attachments`` (run id → {file name → bytes})
        travel with the records where the journal carries artifacts (PostgreSQL).
        """
        with interrupts_deferred():  # written and noted together: the exit code's promise depends on it
            start = self.journal.append_many(records, attachments)
            self.appended.extend(str(r.get("run_id") or r.get("event_id") or "?") for r in records)
        return start

    def append(self, record: dict) -> int:
        """Append one record under the exclusive lock."""
        with self.lock():
            return self.append_locked(record)

    def read_lines(self, offset: int = 0, line_no: int = 0) -> tuple[list[LedgerLine], int, int]:
        """Complete records after position ``offset`` (see :meth:`Journal.read_from`)."""
        return self.journal.read_from(offset, line_no)

    def read_new_lines(self, offset: int = 0, line_no: int = 0) -> tuple[list[LedgerLine], int, int]:
        """:meth:`read_lines` for readers: under the shared lock, and creating nothing when the store
        has no ledger yet (a read-only command must not leave a store behind)."""
        if not self.exists():
            return [], offset, line_no
        with self.lock(shared=True):
            return self.read_lines(offset, line_no)

    def read_record_at(self, offset: int) -> dict | None:
        """The full record at position ``offset`` (None if it is not a valid record)."""
        return self.journal.read_record(offset)

    def materialize_artifacts(self, run_id: str, position: int) -> list[Path]:
        """Write the artifacts stored with a database record into this host's ``runs/<run_id>/`` (those
        not there yet), so ``show`` and the views find them as files. Returns the files written."""
        if self.is_file or not is_safe_run_id(run_id):
            return []
        written = []
        folder = self.inside(self.runs_dir / run_id)
        for name, data in self.journal.attachments(position).items():
            path = folder / name
            if is_safe_run_id(name) and not path.exists():
                atomic_write_bytes(path, data, durable=False)
                written.append(path)
        return written

    def write_registry(self, snapshot: Callable[[], dict], recorded: str) -> bool:
        """Rewrite ``champion_challenger.json`` with ``snapshot()`` after an append (the caller holds the
        lock, so snapshots land in ledger order). Derived: a failure is a warning saying what
        ``recorded``; see :func:`write_derived`."""
        return write_derived(str(self.registry_path), lambda: atomic_write_json(self.registry_path, snapshot()),
                             recorded)

    # -- results.tsv ----------------------------------------------------------------------------
    def init_tsv(self) -> bool:
        """Create the compatibility ``results.tsv`` with upstream's header when it is missing (``init``,
        as the fork does). Returns whether it was created; a file with anything in it is never touched."""
        with self._tsv_file() as fd:
            if os.fstat(fd).st_size:
                return False
            _write_all(fd, TSV_HEADER)
        return True

    def append_tsv_row(self, row: str) -> None:
        """Append one upstream-format row to ``results.tsv`` (creating it with its header)."""
        with self._tsv_file() as fd:
            _write_all(fd, (TSV_HEADER if os.fstat(fd).st_size == 0 else "") + row)

    @contextlib.contextmanager
    def _tsv_file(self) -> Iterator[int]:
        """The workspace's ``results.tsv``, open for appending and locked, as a file descriptor.

        The workspace file is an output like any other: it must pass :meth:`check_output_path` (not in
        the store, not a link to one of its files), is opened without following a symlink or blocking
        on a FIFO, and must then be a regular file that is not a file of the store (a refusal is a
        one-line :class:`MemoryLabError`). Writers serialise on a lock of the file itself, never the
        journal's: callers write it after the journal lock is released, so a stuck results.tsv cannot
        hold up another agent's append.
        """
        path = self.check_output_path(self.tsv_path)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, umask_mode())
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO):
                raise MemoryLabError(f"{path} is a symlink or a FIFO; not written") from exc
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in self._owned_inodes():
                raise MemoryLabError(f"{path} is not a regular file of the workspace; not written")
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_all(fd: int, text: str) -> None:
    """Write all of ``text`` (UTF-8) to ``fd``."""
    view = memoryview(text.encode("utf-8"))
    while view:
        view = view[os.write(fd, view):]


_SAFE_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def is_safe_run_id(run_id: str) -> bool:
    """Run ids are plain names: 1-128 ASCII letters, digits, ``-``, ``_``, ``.`` and never ``.``/``..``."""
    return isinstance(run_id, str) and _SAFE_ID.fullmatch(run_id) is not None and run_id not in (".", "..")


def warn(message: str) -> None:
    """A one-line warning on stderr (never on stdout, which may be JSON for a machine)."""
    print(f"memorylab: warning: {on_one_line(message)}", file=sys.stderr)


def on_one_line(message: str) -> str:
    """A message kept to one line: a line break inside it (an arena or file name) is shown as ``\\n``."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


def os_reason(exc: OSError) -> str:
    """An OSError as a short phrase: ``Read-only file system: /path``."""
    reason = exc.strerror or errno.errorcode.get(exc.errno or 0) or str(exc)
    return f"{reason}: {exc.filename}" if exc.filename else reason


def storage_reason(exc: BaseException) -> str | None:
    """A storage failure as one line: a :class:`MemoryLabError`, an OS error (disk full, read-only) or
    an SQLite error (the index); None for anything else (a bug, which should raise)."""
    if isinstance(exc, MemoryLabError):
        return str(exc)
    if isinstance(exc, OSError):
        return os_reason(exc)
    return f"the index failed ({exc})" if is_sqlite_error(exc) else None


def is_sqlite_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an SQLite error (without importing sqlite3: if it is not loaded, none happened)."""
    sqlite3 = sys.modules.get("sqlite3")
    return sqlite3 is not None and isinstance(exc, sqlite3.Error)


def write_derived(what: str, write: Callable[[], object], recorded: str, hint: str = "") -> bool:
    """Run ``write`` (a derived file after an append); a failure is a warning, never an error.

    Exit 1 promises that nothing was appended, so once records are in the ledger a derived file that
    cannot be written (disk full, read-only, a directory in the way, a refused path, a failing index)
    must not fail the command: the warning says what ``recorded`` (e.g. ``run X is recorded``), which
    file is missing, and ``hint`` (how to get it back). Returns whether the write succeeded.
    """
    try:
        write()
    except Exception as exc:
        reason = storage_reason(exc)
        if reason is None or isinstance(exc, BrokenPipeError):
            raise
        warn(f"{recorded}, but {what} could not be written ({reason}){'; ' + hint if hint else ''}")
        return False
    return True
