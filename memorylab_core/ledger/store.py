"""The store: where MemoryLab keeps things, and the only module that touches the ledger file.

Layout under the store root (``$MEMORYLAB_HOME`` or ``<repo>/results/memorylab``)::

    experiments.jsonl          the ledger: one JSON record per line, append-only (the truth)
    experiments.jsonl.lock     advisory lock file guarding appends
    champion_challenger.json   registry snapshot (derived)
    reports/latest.md          morning report (derived), plus reports/<UTC stamp>.md
    runs/<run_id>/             run.log, summary.json, train.patch, decision_packet.{json,md}
    index.sqlite               the derived index every view reads (ledger/index.py), safe to delete

Appends happen under an exclusive ``flock`` and write one whole line with a single ``write`` call
followed by ``fsync``. A writer killed mid-line leaves a line without a newline; the next append
starts on a fresh line and readers report the broken line and skip it. An append that fails (disk
full, I/O error) truncates the ledger back to its size before the append, so it is all or nothing.
Derived files are written to a temporary file in the same directory and renamed over the target, so
readers never see half a file; they get the permissions the umask allows, like any file the user makes.

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
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..lazyre import lazy

LEDGER_NAME = "experiments.jsonl"
REGISTRY_NAME = "champion_challenger.json"
INDEX_NAME = "index.sqlite"
TSV_HEADER = "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"


class MemoryLabError(Exception):
    """An expected failure with a one-line message for the user; the CLI exits 1 with it."""


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


def encode_record(record: dict) -> bytes:
    """One ledger line. ``ensure_ascii`` keeps every line pure ASCII, so odd unicode (line or paragraph
    separators, lone surrogates from lenient decoding) can never split or corrupt a line."""
    return (json.dumps(record, ensure_ascii=True, separators=(",", ":"), allow_nan=False) + "\n").encode("ascii")


@dataclass(frozen=True)
class LedgerLine:
    """One complete line of the ledger as read back."""

    line_no: int  # 1-based line number in the file
    offset: int  # byte offset of the line start
    record: dict | None  # None when the line is corrupt
    problem: str | None  # why the line was skipped


class Store:
    """Paths of one store and the ledger's locked append / tolerant read."""

    def __init__(self, root: Path, workspace: Path | None = None):
        self.root = Path(root)
        self.workspace = Path(workspace) if workspace else workspace_root()
        self.appended: list[str] = []  # ids of the records this process appended (exit-code promise)
        # (stat before, stat after) of each append this process made: handed to the index, which
        # then knows the new bytes are whole new lines and need not re-hash the journal
        self.appends: list[tuple] = []

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

    def read_run_json(self, run_id: str, name: str, max_bytes: int = 4_000_000) -> dict | None:
        """A JSON object archived under ``runs/<run_id>/`` (e.g. ``summary.json``), or None when it is
        missing, too big, unreadable or not an object: archives are optional extras for the views."""
        if not is_safe_run_id(run_id) or not is_safe_run_id(name):
            return None
        path = self.runs_dir / run_id / name
        try:
            if path.stat().st_size > max_bytes:
                return None
            data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def exists(self) -> bool:
        return self.ledger_path.exists()

    def init(self) -> list[Path]:
        """Create the layout (idempotent). Returns the paths that were newly created."""
        created = []
        for directory in (self.root, self.reports_dir, self.runs_dir):
            if not directory.exists():
                directory.mkdir(parents=True, exist_ok=True)
                created.append(directory)
        for path in (self.ledger_path, self.lock_path):
            if not path.exists():
                with open(path, "ab"):
                    pass
                created.append(path)
        return created

    def ensure(self) -> None:
        """Make sure the layout exists before a write (commands other than init create it lazily)."""
        if not (self.ledger_path.exists() and self.runs_dir.exists() and self.reports_dir.exists()):
            self.init()

    # -- locking --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, shared: bool = False) -> Iterator[None]:
        """Hold the ledger lock (exclusive for writers, shared for readers of new bytes).

        Readers open an existing lock file read-only and never create one; when it cannot be opened
        (missing, another user's, a read-only mount) they read without it, which is safe because
        appends write whole lines and a trailing line without its newline is never read.
        """
        fd = self._open_lock_shared() if shared else self._open_lock_exclusive()
        if fd is None:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _open_lock_shared(self) -> int | None:
        try:
            return os.open(self.lock_path, os.O_RDONLY)
        except OSError:
            return None

    def _open_lock_exclusive(self) -> int:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            return os.open(self.lock_path, os.O_RDWR | os.O_CREAT, umask_mode())
        except OSError as exc:
            raise MemoryLabError(f"cannot write to the store {self.root}: {exc.strerror or exc} "
                                 "(read commands still work)") from exc

    # -- ledger ---------------------------------------------------------------------------------
    def ledger_size(self) -> int:
        try:
            return self.ledger_path.stat().st_size
        except FileNotFoundError:
            return 0

    def append_locked(self, record: dict) -> int:
        """Append one record; the caller holds :meth:`lock`. Returns the byte offset of the new line."""
        return self.append_many_locked([record])

    def append_many_locked(self, records: list[dict]) -> int:
        """Append records with one write and one fsync; the caller holds :meth:`lock`.

        Returns the byte offset of the first new line. If a writer was killed mid-line, the broken
        line is terminated first so the new records start on a fresh line. Every record passes the
        schema first (:func:`memorylab_core.ledger.schema.validate_record`): nothing is written
        unless all of them are valid.
        """
        from .index import JournalStat

        _validate_all(records)
        payload = b"".join(encode_record(r) for r in records)
        try:
            fd = os.open(self.ledger_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, umask_mode())
        except OSError as exc:
            raise MemoryLabError(f"cannot write the ledger {self.ledger_path}: {exc.strerror or exc}; "
                                 "nothing was recorded") from exc
        try:
            before = JournalStat.of_fd(fd)
            size = start = before.size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                payload = b"\n" + payload
                start += 1
            self._write_all_or_nothing(fd, payload, size)
            self.appends.append((before, JournalStat.of_fd(fd)))
        finally:
            os.close(fd)
        self.appended.extend(str(r.get("run_id") or r.get("event_id") or "?") for r in records)
        return start

    def _write_all_or_nothing(self, fd: int, payload: bytes, size: int) -> None:
        """Write and fsync ``payload`` at the end of the ledger; on failure (ENOSPC, EIO, EFBIG ...) cut
        the ledger back to ``size`` so it is exactly as before, and raise a one-line error."""
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as exc:
            undone = _truncate(fd, size)
            raise MemoryLabError(
                f"could not append to the ledger {self.ledger_path}: {exc.strerror or exc}; nothing was recorded"
                + ("" if undone else " (a partial line may remain; readers skip it)")) from exc

    def append(self, record: dict) -> int:
        """Append one record under the exclusive lock."""
        with self.lock():
            return self.append_locked(record)

    def read_lines(self, offset: int = 0, line_no: int = 0) -> tuple[list[LedgerLine], int, int]:
        """Read complete lines from byte ``offset`` (``line_no`` lines precede it).

        Returns the lines, the offset just past the last complete line, and the line count so far.
        A trailing line without a newline is left unread (a writer may be mid-append, or one was
        killed; the next append terminates it and it is then reported as corrupt).
        """
        try:
            with open(self.ledger_path, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except FileNotFoundError:
            return [], offset, line_no
        lines = []
        end = data.rfind(b"\n") + 1
        pos = 0
        while pos < end:
            nl = data.index(b"\n", pos)
            raw = data[pos:nl]
            line_no += 1
            if raw.strip():
                lines.append(_parse_line(raw, line_no, offset + pos))
            pos = nl + 1
        return lines, offset + end, line_no

    def read_new_lines(self, offset: int = 0, line_no: int = 0) -> tuple[list[LedgerLine], int, int]:
        """:meth:`read_lines` for readers: under the shared lock, and creating nothing when the store
        has no ledger yet (a read-only command must not leave a store behind)."""
        if not self.exists():
            return [], offset, line_no
        with self.lock(shared=True):
            return self.read_lines(offset, line_no)

    def read_record_at(self, offset: int) -> dict | None:
        """The full record whose line starts at ``offset`` (None if it is not a valid record)."""
        with open(self.ledger_path, "rb") as fh:
            fh.seek(offset)
            raw = fh.readline()
        parsed = _parse_line(raw.rstrip(b"\n"), 0, offset)
        return parsed.record

    def write_registry(self, snapshot: Callable[[], dict], recorded: str) -> bool:
        """Rewrite ``champion_challenger.json`` with ``snapshot()`` after an append (the caller holds the
        lock, so snapshots land in ledger order). Derived: a failure is a warning saying what
        ``recorded``; see :func:`write_derived`."""
        return write_derived(str(self.registry_path), lambda: atomic_write_json(self.registry_path, snapshot()),
                             recorded)

    # -- results.tsv ----------------------------------------------------------------------------
    def append_tsv_row(self, row: str) -> None:
        """Append one upstream-format row to ``results.tsv`` (creating it with its header)."""
        path = self.tsv_path
        with self.lock():
            new = not path.exists() or path.stat().st_size == 0
            with open(path, "a", encoding="utf-8", newline="") as fh:
                if new:
                    fh.write(TSV_HEADER)
                fh.write(row)
                fh.flush()
                os.fsync(fh.fileno())


def _truncate(fd: int, size: int) -> bool:
    """Cut the file back to ``size`` bytes and flush that; False when even that failed."""
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    except OSError:
        return False
    return True


def _validate_all(records: list[dict]) -> None:
    """Raise RecordError for the first record that breaks the schema (imported here: schema imports us)."""
    from .schema import validate_record

    for record in records:
        validate_record(record)


def _reject_constant(name: str) -> float:
    """JSON's NaN / Infinity extensions are not numbers a record may hold."""
    raise ValueError(f"{name} is not a finite number")


def _parse_line(raw: bytes, line_no: int, offset: int) -> LedgerLine:
    """One journal line: a valid record, or None with the reason (not JSON, or breaks the schema)."""
    from .schema import record_problem  # imported here: schema imports this module

    try:
        record = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return LedgerLine(line_no, offset, None, f"not valid JSON ({type(exc).__name__})")
    problem = record_problem(record, len(raw))
    if problem is not None:
        return LedgerLine(line_no, offset, None, problem)
    return LedgerLine(line_no, offset, record, None)


_SAFE_ID = lazy(r"[A-Za-z0-9_.-]{1,128}")


def is_safe_run_id(run_id: str) -> bool:
    """Run ids are plain names: 1-128 ASCII letters, digits, ``-``, ``_``, ``.`` and never ``.``/``..``."""
    return isinstance(run_id, str) and _SAFE_ID.fullmatch(run_id) is not None and run_id not in (".", "..")


def warn(message: str) -> None:
    """A one-line warning on stderr (never on stdout, which may be JSON for a machine)."""
    print(f"memorylab: warning: {message}", file=sys.stderr)


def os_reason(exc: OSError) -> str:
    """An OSError as a short phrase: ``Read-only file system: /path``."""
    reason = exc.strerror or errno.errorcode.get(exc.errno or 0) or str(exc)
    return f"{reason}: {exc.filename}" if exc.filename else reason


def write_derived(what: str, write: Callable[[], object], recorded: str, hint: str = "") -> bool:
    """Run ``write`` (a derived file after an append); a failure is a warning, never an error.

    Exit 1 promises that nothing was appended, so once records are in the ledger a derived file that
    cannot be written (disk full, read-only, a directory in the way) must not fail the command: the
    warning says what ``recorded`` (e.g. ``run X is recorded``), which file is missing, and ``hint``
    (how to get it back). Returns whether the write succeeded.
    """
    try:
        write()
    except OSError as exc:
        warn(f"{recorded}, but {what} could not be written ({os_reason(exc)}){'; ' + hint if hint else ''}")
        return False
    return True
