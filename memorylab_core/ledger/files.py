"""Opening the store's own files safely. A shared store may hold a FIFO, a device or a huge file where the
journal or a small JSON file belongs (by accident or planted): opening one must fail at once with an
``OSError`` every reader already handles, never block on a pipe no one writes or read a device forever."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

SMALL_FILE_LIMIT = 4_000_000  # bytes: a policy, a config, an archived summary.json


def open_regular(path: Path | str, flags: int = os.O_RDONLY, mode: int = 0o666) -> int:
    """A file descriptor of ``path`` opened with ``flags``, which must be a regular file (OSError EINVAL
    otherwise). Opening never blocks: a FIFO is opened non-blocking, seen for what it is and closed."""
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, a device or a socket)", os.fspath(path))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: Path | str, limit: int = SMALL_FILE_LIMIT) -> bytes:
    """The bytes of a small regular file: OSError (EFBIG) when it holds more than ``limit`` bytes."""
    with os.fdopen(open_regular(path), "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit:,} bytes", os.fspath(path))
    return data
