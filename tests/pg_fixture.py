"""A real PostgreSQL server for the tests: initdb + pg_ctl on a temp dir and a free localhost port.

Run as an unprivileged user (``nobody``) when the tests run as root, since initdb refuses root. The
superuser ``memorylab`` has a password and TCP connections need it (scram-sha-256), so the tests can
check what a wrong password gives. Tests that need the server skip only where the binaries are missing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

SUPERUSER = "memorylab"
PASSWORD = "s3cret-Pw"


def server_bin() -> Path | None:
    """The directory holding initdb and pg_ctl (Debian keeps them out of PATH), or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name),
                        reverse=True)
    found = shutil.which("initdb")
    if found:
        candidates.insert(0, str(Path(found).parent))
    for directory in candidates:
        if (Path(directory) / "initdb").exists() and (Path(directory) / "pg_ctl").exists():
            return Path(directory)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgServer:
    """One throwaway cluster; :meth:`url` names a database on it."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="memorylab-pg-"))
        self.data = self.base / "data"
        self.port = free_port()
        self.runas = "nobody" if os.geteuid() == 0 else None

    def _cmd(self, *args: str) -> list[str]:
        if self.runas is None:
            return list(args)
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", *args]

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(self._cmd(*args), capture_output=True, text=True, check=check, timeout=120,
                              cwd=self.base, env={**os.environ, "LC_ALL": "C", "HOME": str(self.base)})

    def start(self) -> None:
        pwfile = self.base / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.runas:
            os.chown(self.base, 65534, 65534)
            os.chown(pwfile, 65534, 65534)
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER, f"--pwfile={pwfile}",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.base}'\n"
                     "fsync = off\nmax_connections = 200\nshared_buffers = 64MB\n")
        self.pg_ctl("start")

    def pg_ctl(self, action: str) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "server.log"),
                  "-w", "-t", "60", "-m", "fast", action)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop",
                      check=False)
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, db: str = "postgres", password: str = PASSWORD, user: str = SUPERUSER) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{db}"

    def create_database(self) -> str:
        """A fresh database for one test; returns its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def pg_server():
    """The session's PostgreSQL server (skipped where initdb/pg_ctl or psycopg are missing)."""
    pytest.importorskip("psycopg")
    bindir = server_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    server = PgServer(bindir)
    try:
        server.start()
    except Exception:
        log = server.base / "server.log"
        server.stop()
        raise RuntimeError(f"could not start PostgreSQL: {log.read_text() if log.exists() else ''}") from None
    deadline = time.time() + 30
    while time.time() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", server.port)) == 0:
                break
        time.sleep(0.1)
    yield server
    server.stop()


@pytest.fixture()
def pg_url(pg_server) -> str:
    """The URL of a fresh, empty database on the session's server."""
    return pg_server.create_database()
