"""What folding needs of each journal line, computed from the line alone -- in a helper process for big folds.

A fold (journal_index.py) spends about half its time on work that depends on nothing but the line itself:
decoding the JSON, checking the record against the schema, reducing a run to its index row, reading
its change facts and idea key. :func:`prepared` does that work for a list of parsed lines. For a fold
of at least :data:`HELPER_MIN_BYTES` (a cold index build, a long-unread journal) on a machine with two
or more cores, :func:`helper_batches` runs it in a helper process (a fresh interpreter reading the
same journal bytes, started with ``-I``) and streams the results back, so the main process only folds
them into the index and the fold costs about the larger half instead of the sum.

The helper's results are the same values :func:`prepared` gives in-process (runs travel as their
index rows and are decoded with ``Run.from_row``, as every later command reads them). Anything that
goes wrong with the helper -- it cannot start, dies, or sends something unexpected -- raises
:class:`HelperFailed`; the caller rolls its transaction back and folds in-process. Set
``MEMORYLAB_FOLD_HELPER=0`` to never use the helper.
"""

from __future__ import annotations

import contextlib
import fcntl
import marshal
import os
import struct
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..ledger.journal import LedgerLine, iter_lines, line_chunks
from ..ledger.model import Run
from ..novelty.guard import idea_key, run_facts, run_words
from .records import run_from_record

HELPER_MIN_BYTES = 8 << 20  # folds smaller than this stay in-process (the helper costs ~0.1 s to start)
CHUNK = 4 << 20  # journal bytes the helper reads and prepares per step
BATCH = 250  # prepared lines per message
MAX_MESSAGE = 1 << 30  # no batch comes near this: a longer one means the stream is broken
PIPE_BYTES = 1 << 20  # the pipe's capacity where the system lets us set it: the main process may lag a while
_LENGTH = struct.Struct("<Q")
_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding memorylab_core
RUN_FIELDS = len(Run.ROW_COLUMNS) + 1  # the part of a run's index row that Run.from_row reads


class HelperFailed(Exception):
    """The helper process did not deliver the whole range (the caller folds in-process instead)."""


def run_row(run: Run, line_no: int) -> tuple:
    """A run's row in the index's ``runs`` table: :meth:`Run.row_values`, then the query-only columns."""
    knobs = ",".join(dict.fromkeys(str(c.get("name")) for c in run.change_signature if c.get("name"))) or None
    key = run.extra.get("import_key")
    return (*run.row_values(), line_no, ",".join(run.tags) or None, ",".join(run.categories) or None, knobs,
            key if isinstance(key, str) else None)


def prepared(lines: Iterable[LedgerLine], first_run: int) -> Iterator[tuple]:
    """Per line, what the fold needs (``first_run``: the index the first run among them gets):

    * ``("run", row, facts, words, run)`` -- the run's index row (:func:`run_row`), its change facts
      and text tokens (``novelty.run_facts``, ``novelty.run_words``) and the :class:`Run` with its
      idea key set;
    * ``("event", line_no, offset, record)``;
    * ``("skip", line_no, offset, problem)`` for a line that is not a valid record.
    """
    index = first_run
    for line in lines:
        record = line.record
        if record is None:
            yield ("skip", line.line_no, line.offset, line.problem or "unreadable")
        elif record.get("record_type") == "event":
            yield ("event", line.line_no, line.offset, record)
        else:
            run = run_from_record(record, index, line.offset)
            facts = run_facts(run)
            run.idea_key = idea_key(run, facts)
            yield ("run", run_row(run, line.line_no), facts, run_words(run), run)
            index += 1


# -- the main process's side ------------------------------------------------------------------------

def helper_wanted(nbytes: int) -> bool:
    """Whether a fold of ``nbytes`` journal bytes should use the helper process."""
    if nbytes < HELPER_MIN_BYTES or os.environ.get("MEMORYLAB_FOLD_HELPER", "1") == "0" or not sys.executable:
        return False
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores >= 2


def helper_batches(path: Path, offset: int, size: int, line_no: int, first_run: int) -> Iterator[tuple]:
    """Messages from a helper preparing journal bytes ``offset..size`` of ``path``, in order:
    ``("items", [item, ...])`` (items as :func:`prepared` gives them, runs without the Run),
    ``("blocks", [(block, sha256), ...])`` and finally ``("end", offset, line_no)``: the position
    after the last complete line and the line count there. Raises :class:`HelperFailed`."""
    command = [sys.executable, "-I", "-c",
               "import sys; sys.path.insert(0, sys.argv[1]); from memorylab_core.index.prepare import serve; serve()",
               _ROOT, str(path), str(offset), str(size), str(line_no), str(first_run), str(CHUNK)]
    try:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, bufsize=1 << 20)
    except OSError as exc:
        raise HelperFailed(f"cannot start the fold helper: {exc}") from None
    with contextlib.suppress(AttributeError, OSError):  # Linux: let the helper run ~1 MiB ahead
        fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    try:
        while True:
            message = _receive(proc.stdout)
            yield message
            if message[0] == "end":
                break
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def _receive(stream) -> tuple:
    head = stream.read(_LENGTH.size)
    if len(head) != _LENGTH.size:
        raise HelperFailed("the fold helper stopped early")
    (length,) = _LENGTH.unpack(head)
    if length > MAX_MESSAGE:
        raise HelperFailed(f"the fold helper announced a message of {length} bytes")
    body = stream.read(length)
    if len(body) != length:
        raise HelperFailed("the fold helper stopped early")
    try:
        message = marshal.loads(body)
    except (EOFError, ValueError, TypeError) as exc:
        raise HelperFailed(f"the fold helper sent an unreadable message: {exc}") from None
    if not (isinstance(message, tuple) and message and message[0] in ("items", "blocks", "end")):
        raise HelperFailed("the fold helper sent an unexpected message")
    return message


# -- the helper's side ---------------------------------------------------------------------------------

def serve() -> None:
    """The helper process: prepare ``argv[2]``'s bytes ``argv[3]..argv[4]`` and stream the messages
    (``argv[5]``: lines before them, ``argv[6]``: runs before them, ``argv[7]``: bytes read per step)."""
    from .db import block_rows

    path, offset, size, line_no, run_index, step = sys.argv[2], *map(int, sys.argv[3:8])
    out = sys.stdout.buffer

    def send(message: tuple) -> None:
        body = marshal.dumps(message)
        out.write(_LENGTH.pack(len(body)) + body)

    for start, data in line_chunks(path, offset, size, step):
        lines = iter_lines(data, start, line_no)  # lazily: batches leave at an even pace
        line_no += data.count(b"\n")
        items = []
        for item in prepared(lines, run_index):
            items.append(item[:4])
            run_index += item[0] == "run"
            if len(items) == BATCH:
                send(("items", items))
                items = []
        if items:
            send(("items", items))
        send(("blocks", block_rows(path, start, start + len(data), data)))
        offset = start + len(data)
    send(("end", offset, line_no))
    out.flush()
