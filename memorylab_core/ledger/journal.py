"""The journal: the append-only sequence of records that is the store's truth, behind one interface.

Two backends implement :class:`Journal`:

* :class:`FileJournal` -- ``experiments.jsonl`` under the store root, guarded by ``flock`` (one host).
* :class:`~memorylab_core.ledger.pgjournal.PostgresJournal` -- one append-only table in PostgreSQL
  (several hosts; loaded only for a ``postgresql://`` home, so the file journal needs only the stdlib).

Every backend offers the same four operations. A *position* names one record: the byte offset of its
line for the file journal, its global sequence number (``seq``) for PostgreSQL.

``lock(shared=False)``
    Exclusive while a writer reads the fresh history, decides and appends: two writers never decide
    on the same state. Readers need no lock (appends are whole records; a shared lock is a no-op
    where the backend needs none).
``append_many(records, attachments=None)``
    All or nothing: every record is validated first, then written in one step. Returns the position
    of the first record. ``attachments`` (run id → {file name → bytes}) travel with the record on
    backends that carry artifacts (:attr:`Journal.carries_artifacts`); the file journal keeps them as
    files under ``runs/`` instead (the caller writes those).
``read_from(position, line_no, limit)``
    Complete records after ``position`` in journal order, as :class:`LedgerLine` (a record that is not
    valid comes back with its problem; readers skip it).
``read_record(position)``
    The full record at ``position``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import MemoryLabError
from .files import open_regular


@dataclass(frozen=True)
class LedgerLine:
    """One complete record of the journal as read back."""

    line_no: int  # 1-based line number in the file (the sequence number in PostgreSQL)
    offset: int  # the record's position: byte offset of the line start (the sequence number in PostgreSQL)
    record: dict | None  # None when the line is corrupt
    problem: str | None  # why the line was skipped


@dataclass(frozen=True)
class JournalStat:
    """A journal file's identity and size as ``stat`` sees them: what the index compares the journal with,
    and what each append records before and after it."""

    dev: int
    ino: int
    size: int
    ctime_ns: int

    @classmethod
    def of(cls, path: Path) -> JournalStat | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_ctime_ns)

    @classmethod
    def of_fd(cls, fd: int) -> JournalStat:
        st = os.fstat(fd)
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_ctime_ns)

    def key(self) -> str:
        return f"{self.dev}:{self.ino}:{self.size}:{self.ctime_ns}"


def encode_record(record: dict) -> bytes:
    """One ledger line. ``ensure_ascii`` keeps every line pure ASCII, so odd unicode (line or paragraph
    separators, lone surrogates from lenient decoding) can never split or corrupt a line."""
    return (json.dumps(record, ensure_ascii=True, separators=(",", ":"), allow_nan=False) + "\n").encode("ascii")


class Journal:
    """The interface every journal backend implements (see the module docstring)."""

    kind = "abstract"
    carries_artifacts = False  # whether run artifacts travel with the record (else: files under runs/)

    @property
    def label(self) -> str:
        """How to name the journal to the user (a path, or a URL without its password)."""
        raise NotImplementedError

    def where(self, line_no: int) -> str:
        """How to name one record's place in messages (``experiments.jsonl line 5``)."""
        return f"{self.label} record {line_no}"

    def exists(self) -> bool:
        raise NotImplementedError

    def init(self) -> list[str]:
        """Create the journal (idempotent); returns what was newly created."""
        raise NotImplementedError

    def lock(self, shared: bool = False) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def append_many(self, records: list[dict], attachments: dict[str, dict[str, bytes]] | None = None) -> int:
        raise NotImplementedError

    def read_from(self, position: int = 0, line_no: int = 0,
                  limit: int | None = None) -> tuple[list[LedgerLine], int, int]:
        raise NotImplementedError

    def read_record(self, position: int) -> dict | None:
        raise NotImplementedError

    def attachments(self, position: int) -> dict[str, bytes]:
        """The artifacts stored with the record at ``position`` ({} where the backend keeps none)."""
        del position
        return {}


class FileJournal(Journal):
    """``experiments.jsonl``: flock-guarded whole-line appends, tolerant reads (see ledger/store.py)."""

    kind = "file"

    def __init__(self, root: Path):
        self.root = Path(root)
        # (stat before, stat after) of each append this process made: handed to the index, which
        # then knows the new bytes are whole new lines and need not re-hash the journal
        self.appends: list[tuple] = []

    @property
    def path(self) -> Path:
        from .store import LEDGER_NAME

        return self.root / LEDGER_NAME

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    @property
    def label(self) -> str:
        return str(self.path)

    def where(self, line_no: int) -> str:
        return f"{self.path.name} line {line_no}"

    def exists(self) -> bool:
        return self.path.exists()

    def init(self) -> list[str]:
        created = []
        for path in (self.path, self.lock_path):
            if not path.exists():  # O_NOFOLLOW: a dangling link planted there is refused, never followed
                os.close(open_regular(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW))
                created.append(str(path))
        return created

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
            return open_regular(self.lock_path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None

    def _open_lock_exclusive(self) -> int:
        from .store import umask_mode

        try:
            self.root.mkdir(parents=True, exist_ok=True)
            return open_regular(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, umask_mode())
        except OSError as exc:
            raise MemoryLabError(f"cannot write to the store {self.root}: {exc.strerror or exc} "
                                 "(read commands still work)") from exc

    # -- appending ------------------------------------------------------------------------------
    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def append_many(self, records: list[dict], attachments: dict[str, dict[str, bytes]] | None = None) -> int:
        """Append records with one write and one fsync; the caller holds :meth:`lock`.

        Returns the byte offset of the first new line. A journal that does not end in a newline holds
        the torn tail of a writer killed mid-write (:meth:`_mend_tail`): it is cut off, or terminated
        when it is a whole record, so the new records start on a fresh line. Every record passes the
        schema first (:func:`memorylab_core.ledger.schema.validate_record`): nothing is written
        unless all of them are valid. ``attachments`` are ignored: the archive under ``runs/`` holds them.
        """
        from .store import umask_mode

        del attachments
        validate_all(records)
        payload = b"".join(encode_record(r) for r in records)
        try:
            fd = open_regular(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, umask_mode())
        except OSError as exc:
            raise MemoryLabError(f"cannot write the ledger {self.path}: {exc.strerror or exc}; "
                                 "nothing was recorded") from exc
        try:
            if self._mend_tail(fd):
                payload = b"\n" + payload
            before = JournalStat.of_fd(fd)
            size = start = before.size
            start += payload.startswith(b"\n")
            self._write_all_or_nothing(fd, payload, size)
            self.appends.append((before, JournalStat.of_fd(fd)))
        finally:
            os.close(fd)
        return start

    def _mend_tail(self, fd: int) -> bool:
        """Deal with a tail that has no newline; True when it is kept and must be terminated.

        Writers append whole lines under the exclusive lock, which the caller holds, so such a tail is
        what a writer killed mid-``write`` left (Linux lets SIGKILL end a large write part-way): a
        record never acknowledged to anyone. It is cut back to the last newline, with a warning.
        A tail that is a whole JSON object (a record appended by hand without its newline) is kept.
        """
        size = os.fstat(fd).st_size
        if not size or os.pread(fd, 1, size - 1) == b"\n":
            return False
        start = size - min(size, 1 << 22)
        chunk = os.pread(fd, size - start, start)
        cut = start + chunk.rfind(b"\n") + 1 if b"\n" in chunk else (0 if start == 0 else None)
        if cut is None:  # a tail of over 4 MiB without a newline: no writer of ours wrote that
            return True
        try:
            whole = isinstance(json.loads(os.pread(fd, size - cut, cut)), dict)
        except ValueError:
            whole = False
        if whole or not _truncate(fd, cut):
            return True
        from .store import warn

        warn(f"the ledger {self.path} ended in {size - cut} bytes of a record whose writer was killed mid-write; "
             "they were cut off (that run was never recorded)")
        return False

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
                f"could not append to the ledger {self.path}: {exc.strerror or exc}; nothing was recorded"
                + ("" if undone else " (a partial line may remain; readers skip it)")) from exc

    # -- reading --------------------------------------------------------------------------------
    def read_from(self, position: int = 0, line_no: int = 0,
                  limit: int | None = None) -> tuple[list[LedgerLine], int, int]:
        """Complete lines from byte ``position`` (``line_no`` lines precede it); ``limit`` is ignored.

        Returns the lines, the offset just past the last complete line, and the line count so far.
        A trailing line without a newline is left unread (a writer may be mid-append, or one was
        killed; the next append cuts it off, see :meth:`FileJournal._mend_tail`).
        """
        del limit
        try:
            with os.fdopen(open_regular(self.path), "rb") as fh:
                fh.seek(position)
                data = fh.read()
        except FileNotFoundError:
            return [], position, line_no
        end = data.rfind(b"\n") + 1
        lines, line_no = split_lines(data[:end], position, line_no)
        return lines, position + end, line_no

    def read_record(self, position: int) -> dict | None:
        """The full record whose line starts at byte ``position`` (None if it is not a valid record)."""
        with os.fdopen(open_regular(self.path), "rb") as fh:
            fh.seek(position)
            raw = fh.readline()
        return parse_line(raw.rstrip(b"\n"), 0, position).record


def _truncate(fd: int, size: int) -> bool:
    """Cut the file back to ``size`` bytes and flush that; False when even that failed."""
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    except OSError:
        return False
    return True


def validate_all(records: list[dict]) -> None:
    """Raise RecordError for the first record that breaks the schema (imported here: schema imports us)."""
    from .schema import validate_record

    for record in records:
        validate_record(record)


def line_chunks(path: Path | str, offset: int, size: int, step: int) -> Iterator[tuple[int, bytes]]:
    """Journal bytes ``offset..size`` of ``path`` as successive ``(start, data)``: about ``step`` bytes
    each, cut after their last newline, so every ``data`` holds whole lines (a last line without its
    newline is left for a later fold). The position after the last chunk is the new offset."""
    with os.fdopen(open_regular(path), "rb") as fh:
        fh.seek(offset)
        carry, pos = b"", offset
        while pos < size:
            chunk = fh.read(min(step, size - pos))
            if not chunk:
                break
            data = carry + chunk
            end = data.rfind(b"\n") + 1
            if end:
                yield pos - len(carry), data[:end]
            pos += len(chunk)
            carry = data[end:]


def split_lines(data: bytes, base: int, line_no: int) -> tuple[list[LedgerLine], int]:
    """The non-blank lines of ``data`` (whole lines of the journal from byte ``base``, ``line_no``
    lines before it), parsed; and the line count after them."""
    return list(iter_lines(data, base, line_no)), line_no + data.count(b"\n")


def iter_lines(data: bytes, base: int, line_no: int) -> Iterator[LedgerLine]:
    """:func:`split_lines`'s lines, parsed one at a time as they are taken."""
    pos = 0
    while pos < len(data):
        nl = data.index(b"\n", pos)
        raw = data[pos:nl]
        line_no += 1
        if raw.strip():
            yield parse_line(raw, line_no, base + pos)
        pos = nl + 1


def parse_line(raw: bytes, line_no: int, offset: int) -> LedgerLine:
    """One journal line: a valid record, or None with the reason (not JSON, or breaks the schema)."""
    from .schema import checked_line  # imported here: schema imports the store

    record, problem = checked_line(raw)
    return LedgerLine(line_no, offset, record, problem)
