"""The PostgreSQL journal: one append-only table shared by agents on several hosts (DESIGN §6).

Selected by a ``postgresql://`` (or ``postgres://``) home: ``MEMORYLAB_HOME`` or ``--home``. The driver,
``psycopg`` 3, is an optional extra (``pip install -e '.[postgres]'``) imported on first use only, so a
file journal needs nothing beyond the standard library.

**Tables** (created by ``memorylab init``, idempotent)::

    memorylab_journal(seq BIGSERIAL PRIMARY KEY,    -- the global order: a record's position
                      key TEXT NOT NULL UNIQUE,      -- idempotency key: sha256 of the exact line
                      record_type TEXT, record_id TEXT,
                      line TEXT NOT NULL,            -- the exact JSON line the file journal would hold
                      record JSONB NOT NULL,         -- the same record, for SQL queries
                      attachments BYTEA,             -- run artifacts: zlib-compressed JSON, capped
                      appended_at TIMESTAMPTZ NOT NULL DEFAULT now())
    memorylab_meta(key TEXT PRIMARY KEY, value TEXT)  -- journal_id: a random id made by init

A trigger refuses UPDATE, DELETE and TRUNCATE on the journal: it is append-only.

**Appends** are one transaction that takes the advisory lock (``pg_advisory_xact_lock``) and inserts
with ``ON CONFLICT (key) DO NOTHING``: a retry after a lost connection (server down, restarted)
finds its rows already there instead of doubling them, and appends commit in ``seq`` order, so a
reader that folds ``seq > last`` never skips a row committed late. Writers hold the same advisory
lock (session level) for their whole read-decide-append step, like the file journal's flock; it is
released by the server when a writer dies. Connection failures are retried with a bounded backoff
(about 15 s) before a one-line error.

**Security.** Credentials come only from the URL, ``PGPASSWORD``, ``~/.pgpass`` or a service file
(libpq reads them); the password is masked wherever a URL is shown (:func:`mask_url`) and never part
of the local index path. Every statement passes values as parameters.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .errors import MemoryLabError
from .journal import Journal, LedgerLine, encode_record, parse_line, validate_all

TABLE = "memorylab_journal"
META = "memorylab_meta"
LOCK_KEY = 0x4D4C_4A4E_4C00  # the advisory lock every writer of one database takes
CONNECT_TIMEOUT_S = 5
# backoff 0.25, 0.5, 1, 2, 4, 4 s between tries: ~12 s of waiting for a restart ($MEMORYLAB_PG_TRIES overrides)
WRITE_TRIES = max(1, int(os.environ.get("MEMORYLAB_PG_TRIES") or 7))
READ_TRIES = 2  # a reader falls back to its local index quickly
ARTIFACT_CAP = 2 << 20  # bytes of one artifact kept with the record (a run.log keeps its tail)
READ_BATCH = 5000  # rows fetched per query while folding
DRIVER_HINT = "install the PostgreSQL driver: pip install -e '.[postgres]' (psycopg 3)"

DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    seq BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    record_type TEXT NOT NULL,
    record_id TEXT,
    line TEXT NOT NULL,
    record JSONB NOT NULL,
    attachments BYTEA,
    appended_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS {TABLE}_record_id ON {TABLE}(record_id);
CREATE TABLE IF NOT EXISTS {META} (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO {META}(key, value) VALUES ('journal_id', md5(random()::text || clock_timestamp()::text))
    ON CONFLICT (key) DO NOTHING;
INSERT INTO {META}(key, value) VALUES ('schema', '1') ON CONFLICT (key) DO NOTHING;
CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '{TABLE} is append-only'; END $$;
CREATE OR REPLACE TRIGGER {TABLE}_no_change BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only();
CREATE OR REPLACE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_append_only();
"""
INSERT = (f"INSERT INTO {TABLE}(key, record_type, record_id, line, record, attachments) "
          "VALUES (%s, %s, %s, %s, %s::jsonb, %s) ON CONFLICT (key) DO NOTHING")


class PostgresUnreachable(MemoryLabError):
    """The server could not be reached (down, restarting, network): reads fall back to the local index."""


# -- URLs -------------------------------------------------------------------------------------------

# Read as text, never parsed, so that a URL libpq would refuse (a bad %-escape, an unclosed "[") is masked too.
# The user-info password runs to the last "@" before the path (masking too much is safe); ``password=`` may also
# come as a parameter.
_USERINFO_PASSWORD = re.compile(r"^([A-Za-z][\w+.-]*://[^:/?#@]*:)([^/]*)@", re.S)
_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&#]*)", re.I)


def url_secrets(url: str) -> list[str]:
    """The password(s) written in ``url``, as written and %-decoded, longest first (what messages must hide)."""
    found = [m.group(2) for m in (_USERINFO_PASSWORD.match(url),) if m] + \
        [m.group(2) for m in _QUERY_PASSWORD.finditer(url)]
    with_decoded = {s for s in found if s} | {unquote(s) for s in found if s}
    return sorted(with_decoded, key=len, reverse=True)


def redact(text: str, url: str) -> str:
    """``text`` with every password of ``url`` replaced by ``***``."""
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return text


def mask_url(url: str) -> str:
    """``url`` with its password (if any, in the user info or as a ``password=`` parameter) shown as ``***``:
    the only form of a URL MemoryLab prints."""
    return _QUERY_PASSWORD.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1***@", url))


def url_without_password(url: str) -> str:
    """``url`` with no password at all (what the local index directory is keyed by)."""
    without = _USERINFO_PASSWORD.sub(lambda m: m.group(1)[:-1] + "@", url)
    without = re.sub(r"([?&])password=[^&#]*&?", r"\1", without, flags=re.I)
    return re.sub(r"[?&]$", "", without)


def local_root(url: str, override: str | None = None) -> Path:
    """This host's local directory for a PostgreSQL store (index, reports, run archive).

    ``override`` (``--index-dir`` / ``$MEMORYLAB_INDEX_DIR``) wins; else
    ``$XDG_CACHE_HOME/memorylab/<16 hex of sha256 of the URL without password>`` (``~/.cache`` by default).
    """
    if override:
        return Path(override).expanduser().resolve()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(url_without_password(url).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return cache / "memorylab" / digest


def record_key(line: str, occurrence: int = 1) -> str:
    """The idempotency key of a journal line: the SHA-256 of its exact text (``#n`` for the n-th copy)."""
    digest = hashlib.sha256(line.encode("utf-8", "surrogateescape")).hexdigest()
    return digest if occurrence == 1 else f"{digest}#{occurrence}"


def _driver() -> Any:
    try:
        import psycopg
    except ImportError:
        raise MemoryLabError(f"a postgresql:// home needs psycopg, which is not installed: {DRIVER_HINT}") from None
    return psycopg


# -- artifacts --------------------------------------------------------------------------------------

def pack_artifacts(files: dict[str, bytes], cap: int = ARTIFACT_CAP) -> bytes | None:
    """Run artifacts as stored with the record: zlib-compressed JSON, each file capped at ``cap`` bytes
    (a log keeps its tail, other files their head) with a note saying what was dropped."""
    if not files:
        return None
    packed = {}
    for name, data in files.items():
        kept = data if len(data) <= cap else (data[-cap:] if name.endswith(".log") else data[:cap])
        truncated = len(kept) < len(data)
        if truncated:
            where = "first" if name.endswith(".log") else "last"
            note = (f"[memorylab: {name} truncated for the shared journal: the {where} "
                    f"{len(data) - len(kept)} of {len(data)} bytes were dropped]").encode()
            kept = note + b"\n" + kept if name.endswith(".log") else kept + b"\n" + note + b"\n"
        item: dict[str, object] = {"size": len(data), "truncated": truncated}
        try:
            item["text"] = kept.decode("utf-8")
        except UnicodeDecodeError:  # bytes that are not UTF-8 (a latin-1 log line) travel exactly, as base64
            item["base64"] = base64.b64encode(kept).decode("ascii")
        packed[name] = item
    return zlib.compress(json.dumps(packed, ensure_ascii=True).encode("ascii"), 6)


def unpack_artifacts(blob: bytes | None) -> dict[str, bytes]:
    """The files :func:`pack_artifacts` stored ({} for none or an unreadable blob)."""
    if not blob:
        return {}
    try:
        packed = json.loads(zlib.decompress(bytes(blob)).decode("ascii"))
    except (zlib.error, ValueError, UnicodeDecodeError):
        return {}
    files = {}
    for name, item in packed.items() if isinstance(packed, dict) else ():
        if not isinstance(item, dict):
            continue
        try:
            files[str(name)] = base64.b64decode(str(item["base64"]), validate=True) if "base64" in item else \
                str(item.get("text", "")).encode("utf-8", "surrogateescape")
        except ValueError:  # a damaged base64 field: that file is left out
            continue
    return files


# -- errors -----------------------------------------------------------------------------------------

def describe_failure(exc: Exception, url: str) -> tuple[str, bool]:
    """A one-line message for a connection failure, and whether retrying can help (server down: yes;
    wrong password or database: no). The password never appears (libpq's messages omit it)."""
    parts = _split(url)
    text = redact(str(exc), url)
    where = mask_url(url)
    lowered = text.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered \
            or "authentication failed" in lowered:
        return (f"PostgreSQL refused the credentials of user {parts.username or '(default)'!r} at {where}: "
                "fix the password in the URL, PGPASSWORD or ~/.pgpass"), False
    if "does not exist" in lowered and "database" in lowered:
        db = unquote(parts.path.lstrip("/")) or "(default)"
        return f"database {db!r} does not exist at {where}: create it (createdb {db}) or fix the URL", False
    if "role" in lowered and "does not exist" in lowered:
        return f"user {parts.username or '(default)'!r} does not exist at {where}: fix the user in the URL", False
    if "invalid" in lowered and ("dsn" in lowered or "connection option" in lowered or "uri" in lowered
                                 or "value" in lowered):
        return f"invalid PostgreSQL URL {where}: {_last_line(text)}", False
    return f"PostgreSQL at {where} is unreachable ({_last_line(text)})", True


def _split(url: str):
    """``urlsplit(url)``, or that of the URL with its host cut off when the host does not parse (an unclosed
    "["): only the user name and the database are read from it."""
    try:
        return urlsplit(url)
    except ValueError:
        return urlsplit(re.sub(r"@[^/?#]*", "@", url, count=1))


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    detail = lines[-1] if lines else "no reason given"
    return detail.replace("FATAL:", "").strip()[:200]


# -- the journal ------------------------------------------------------------------------------------

class PostgresJournal(Journal):
    """A journal in one PostgreSQL table (see the module docstring)."""

    kind = "postgres"
    carries_artifacts = True

    def __init__(self, url: str, sleep: Callable[[float], None] = time.sleep):
        self.url = url
        self._conn: Any = None
        self._depth = 0  # nesting of lock(): the session lock is held while > 0
        self._sleep = sleep
        self.journal_id: str | None = None

    @property
    def label(self) -> str:
        return mask_url(self.url)

    def where(self, line_no: int) -> str:
        return f"journal seq {line_no}"

    def exists(self) -> bool:
        """Always: the database is the journal (one without the table reads as empty)."""
        return True

    def initialised(self) -> bool:
        """Whether ``init`` made the journal's table here. A server that cannot be reached counts as
        initialised: the reader then shows this host's local copy, or says why it has none."""
        try:
            return bool(self._call(lambda c: c.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()[0]))
        except PostgresUnreachable:
            return True

    # -- connections ----------------------------------------------------------------------------
    def _connection(self) -> Any:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        psycopg = _driver()
        try:
            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                         application_name="memorylab")
        except psycopg.ProgrammingError as exc:  # libpq could not read the URL itself
            raise MemoryLabError(f"invalid PostgreSQL URL {self.label}: {_last_line(redact(str(exc), self.url))}") \
                from None
        if self._depth:  # reconnected inside a writer's step: take the lock again before going on
            self._conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        self._drop()

    def _call(self, work: Callable[[Any], Any], tries: int | None = None, what: str = "") -> Any:
        """``work(connection)`` with bounded retries while the server cannot be reached."""
        psycopg = _driver()
        tries = tries or (WRITE_TRIES if self._depth else READ_TRIES)
        delay = 0.25
        for attempt in range(tries):
            try:
                return work(self._connection())
            except psycopg.errors.UndefinedTable:
                raise MemoryLabError(f"no MemoryLab journal in {self.label}: run 'memorylab --home URL init' "
                                     "first") from None
            except psycopg.errors.InsufficientPrivilege as exc:
                raise MemoryLabError(f"the database user may not do this at {self.label} "
                                     f"({_last_line(redact(str(exc), self.url))}): a read-only role serves the read "
                                     "commands only; nothing was recorded") from None
            except psycopg.OperationalError as exc:
                self._drop()
                message, retryable = describe_failure(exc, self.url)
                if not retryable:
                    raise MemoryLabError(message) from None
                if attempt == tries - 1:
                    raise PostgresUnreachable(f"{message}{'; ' + what if what else ''}") from None
                self._sleep(delay)
                delay = min(delay * 2, 4.0)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the interface --------------------------------------------------------------------------
    def init(self) -> list[str]:
        """Create the tables and trigger (idempotent, serialised by the advisory lock)."""
        def create(conn: Any) -> bool:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                existed = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()[0]
                conn.execute(DDL)
            return not existed
        return [f"{self.label} (table {TABLE})"] if self._call(create, WRITE_TRIES) else []

    @contextlib.contextmanager
    def lock(self, shared: bool = False) -> Iterator[None]:
        """The writers' advisory lock, held by this process's session (readers need none)."""
        if shared:
            yield
            return
        if not self._depth:
            self._call(lambda c: c.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,)), WRITE_TRIES,
                       "nothing was recorded")
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth and self._conn is not None:
                try:
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
                except Exception:  # the session is gone, and its lock with it
                    self._drop()

    def append_many(self, records: list[dict], attachments: dict[str, dict[str, bytes]] | None = None,
                    keys: list[str] | None = None) -> int:
        """Insert ``records`` in one transaction (validated first); returns the first one's ``seq``.

        ``keys``: idempotency keys (default: :func:`record_key` of each line). Rows whose key is already
        there are not inserted again, so a retry after a lost connection cannot double a record.
        """
        validate_all(records)
        rows = [_row(record, key, attachments or {}) for record, key in
                zip(records, keys or [None] * len(records), strict=True)]
        keys = [row[0] for row in rows]

        def insert(conn: Any) -> int:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                with conn.cursor() as cur:
                    for start in range(0, len(rows), 1000):
                        cur.executemany(INSERT, rows[start:start + 1000])
                found = conn.execute(f"SELECT min(seq) FROM {TABLE} WHERE key = ANY(%s)", (keys[:1],)).fetchone()
            return int(found[0]) if found and found[0] is not None else -1

        return self._call(insert, WRITE_TRIES, "the records were not confirmed: 'memorylab list' shows whether "
                                               "they are in (a retried append never doubles one)")

    def head(self) -> tuple[str | None, int]:
        """(journal id, highest seq) of the journal; (None, 0) when it has no table yet."""
        def query(conn: Any) -> tuple[str | None, int]:
            if conn.execute("SELECT to_regclass(%s) IS NULL", (TABLE,)).fetchone()[0]:
                return None, 0
            row = conn.execute(f"SELECT (SELECT value FROM {META} WHERE key = 'journal_id'), "
                               f"(SELECT coalesce(max(seq), 0) FROM {TABLE})").fetchone()
            return row[0], int(row[1])
        self.journal_id, top = self._call(query)
        return self.journal_id, top

    def count_upto(self, seq: int) -> int:
        """How many rows have ``seq`` at most ``seq`` (what the index checks its folded prefix by)."""
        return int(self._call(lambda c: c.execute(f"SELECT count(*) FROM {TABLE} WHERE seq <= %s",
                                                  (seq,)).fetchone()[0]))

    def read_from(self, position: int = 0, line_no: int = 0,
                  limit: int | None = None) -> tuple[list[LedgerLine], int, int]:
        """Records with ``seq > position`` in order (at most ``limit``); line numbers are the seqs."""
        del line_no

        def query(conn: Any) -> list[tuple]:
            if limit is None:
                return conn.execute(f"SELECT seq, line FROM {TABLE} WHERE seq > %s ORDER BY seq",
                                    (position,)).fetchall()
            return conn.execute(f"SELECT seq, line FROM {TABLE} WHERE seq > %s ORDER BY seq LIMIT %s",
                                (position, limit)).fetchall()
        rows = self._call(query)
        lines = [parse_line(line.encode("utf-8", "surrogateescape"), seq, seq) for seq, line in rows]
        end = rows[-1][0] if rows else position
        return lines, end, end

    def read_record(self, position: int) -> dict | None:
        row = self._call(lambda c: c.execute(f"SELECT line FROM {TABLE} WHERE seq = %s", (position,)).fetchone())
        return None if row is None else parse_line(row[0].encode("utf-8", "surrogateescape"), position,
                                                   position).record

    def attachments(self, position: int) -> dict[str, bytes]:
        row = self._call(lambda c: c.execute(f"SELECT attachments FROM {TABLE} WHERE seq = %s",
                                             (position,)).fetchone())
        return unpack_artifacts(row[0]) if row else {}

    def keys(self) -> set[str]:
        """Every idempotency key in the journal (what ``migrate`` skips)."""
        return {r[0] for r in self._call(lambda c: c.execute(f"SELECT key FROM {TABLE}").fetchall())}


def _row(record: dict, key: str | None, attachments: dict[str, dict[str, bytes]]) -> tuple:
    """The insert parameters of one record."""
    line = encode_record(record)[:-1].decode("ascii")
    record_id = record.get("run_id") or record.get("event_id")
    record_type = str(record.get("record_type") or "run")
    files = attachments.get(str(record_id)) if record_type != "event" else None
    queryable = line.replace("\\u0000", "\\ufffd")  # JSONB holds no NUL; the exact line keeps it
    return (key or record_key(line), record_type, None if record_id is None else str(record_id), line, queryable,
            pack_artifacts(files) if files else None)
