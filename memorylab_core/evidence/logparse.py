"""Reading what a training run left behind: run.log text and the JSON summary sidecar.

Standard library only. Everything here is tolerant of damaged input (invalid UTF-8, partial
files, huge logs) because crash logs are exactly the logs worth reading; the one exception is
``load_sidecar``, which raises :class:`LogInputError` so callers can fall back to the log.

Error kinds (``classify_error``), in precedence order — the first kind whose pattern matches
wins, and the exception summary line is tried before the rest of the tail:

1. ``syntax``             SyntaxError / IndentationError / TabError
2. ``import``             ModuleNotFoundError / ImportError / "No module named"
3. ``keyboard_interrupt`` KeyboardInterrupt (an operator action, whatever else is in the log)
4. ``oom``                CUDA out of memory, OutOfMemoryError, MemoryError, whole-word OOM,
                          the shell's "Killed" line, SIGKILL/137 next to the word "memory"
5. ``infra``              "training was killed by SIGTERM" and the like: a signal memorylab did not
                          send (the kernel's OOM killer, a pre-emption, an operator's kill)
6. ``nan``                whole-word NaN, "loss is nan", inf loss, non-finite loss, diverged,
                          explosion / exploding loss
7. ``timeout``            TimeoutExpired / TimeoutError, "timed out", "time budget exceeded"
8. ``shape``              size mismatch, shape(s), "must match the size", mat1/mat2, etc.
9. ``assertion``          AssertionError, device-side assert, "Assertion `...` failed"
10. ``runtime``            any other error signal (traceback, exception line, "error", "FAIL")

Exception types that name the failure class outright come first; causes (OOM, NaN) beat the
mechanism that reported them ("AssertionError: loss is nan" is ``nan``, not ``assertion``).
All patterns are whole words / phrases: "room", "zoom", "bloom" are not OOM; "nancy",
"finance", ``isnan`` are not NaN. Source-code lines quoted inside traceback frames are ignored
when classifying, since code such as ``float("nan")`` or ``x.shape`` says nothing about the
failure. Which kinds are evidence against an idea and which a code edit fixes is
``evidence.crashes``' rule, not this module's.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

# A log is read whole up to this size. Above it, only the first HEAD_BYTES (where train.py
# prints run_token and seed) and the last bytes up to the cap (summary block, traceback) are
# read, so a 2 GB log costs two seeks and ~8 MiB of memory.
MAX_LOG_BYTES = 8 * 1024 * 1024
HEAD_BYTES = 64 * 1024
OMITTED_MARKER = "[memorylab: {n} bytes of log omitted]"

MAX_SIDECAR_BYTES = 16 * 1024 * 1024
MAX_STREAM_BYTES = 64 * 1024 * 1024  # a log read from a pipe is held whole before it is cut like a big file
TAIL_LINES = 40
MAX_TAIL_CHARS = 6000
MAX_SUMMARY_CHARS = 500
# Error extraction looks only at the end of the text: the fatal traceback is there, and
# scanning a capped 8 MiB log line by line for every call would be wasted work.
ERROR_WINDOW_CHARS = 256 * 1024

FLOAT_KEYS = (
    "val_bpb",
    "training_seconds",
    "wall_training_seconds",
    "total_seconds",
    "peak_vram_mb",
    "mfu_percent",
    "total_tokens_M",
    "num_params_M",
)
INT_KEYS = ("num_steps", "depth")
KNOWN_KEYS = FLOAT_KEYS + INT_KEYS


class LogInputError(ValueError):
    """A run artifact (sidecar or log) is missing or unusable; the message is one line."""


# --------------------------------------------------------------------------- reading


def read_text_lenient(path: str | os.PathLike[str], max_bytes: int = MAX_LOG_BYTES) -> str:
    """Return a log's text, decoding invalid UTF-8 as U+FFFD and capping memory use.

    Logs up to ``max_bytes`` are read whole. Larger logs keep their first ``HEAD_BYTES``
    and their last ``max_bytes - HEAD_BYTES`` bytes (cut at line boundaries), joined by a
    one-line ``[memorylab: N bytes of log omitted]`` marker: the run token and seed are printed
    first and the summary block and traceback last, so both survive. Raises
    :class:`LogInputError` when the file is missing or unreadable.
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size <= max_bytes:
                return _decode(fh.read())
            return _read_head_and_tail(fh, size, max_bytes)
    except OSError as exc:
        raise LogInputError(f"cannot read log {os.fspath(path)}: {exc.strerror or exc}") from None


def text_of(data: bytes, max_bytes: int = MAX_LOG_BYTES) -> str:
    """:func:`read_text_lenient` for a log already read into memory (from a pipe)."""
    if len(data) <= max_bytes:
        return _decode(data)
    return _read_head_and_tail(io.BytesIO(data), len(data), max_bytes)


def read_stream(path: str | os.PathLike[str], what: str, limit: int) -> bytes | None:
    """The bytes of an input that is not a regular file -- a pipe, ``<(process substitution)``, a FIFO --
    read once and at most ``limit`` of them; None for a regular file (its readers bound it by seeking).

    Opening does not block on a FIFO no one writes to (it then reads as empty). Raises
    :class:`LogInputError` for a missing path, a directory, a read error or a stream over ``limit``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise LogInputError(f"cannot read {what} {os.fspath(path)}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise LogInputError(f"{what} is a directory, not a file: {os.fspath(path)}")
        if stat.S_ISREG(mode):
            return None
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > limit:
                raise LogInputError(f"{what} {os.fspath(path)} streams more than {limit} bytes; write it to a file")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise LogInputError(f"cannot read {what} {os.fspath(path)}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _read_head_and_tail(fh: Any, size: int, max_bytes: int) -> str:
    """Read the start and the end of a big binary file, dropping partial edge lines."""
    head_len = min(HEAD_BYTES, max_bytes // 2)
    head = fh.read(head_len)
    cut = head.rfind(b"\n")
    head = head[: cut + 1] if cut >= 0 else b""
    tail_start = size - (max_bytes - head_len)
    fh.seek(tail_start)
    tail = fh.read()
    nl = tail.find(b"\n")
    tail = tail[nl + 1 :] if nl >= 0 else tail
    omitted = size - len(head) - len(tail)
    marker = OMITTED_MARKER.format(n=omitted).encode() + b"\n"
    return _decode(head + marker + tail)


def _decode(data: bytes) -> str:
    """Decode bytes as UTF-8, replacing what is not valid rather than failing."""
    return data.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- summary block

_KV_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*?)\s*$")
_NUMBER_RE = re.compile(r"[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf(?:inity)?)\b", re.I)


def parse_summary_block(text: str) -> dict[str, Any]:
    """Return the metrics of the last ``---`` summary block in ``text``, or ``{}``.

    A block is a line that is exactly ``---`` followed by ``key: value`` lines; it ends at
    the first line of another shape. The last block holding at least one known key wins (a
    stray ``---`` after it is ignored). Known keys become float (``num_steps``, ``depth``:
    int); extra keys are kept, as numbers when they parse. Non-finite values (``nan``) become
    ``None`` so records stay strict JSON. Adds ``memory_gb = peak_vram_mb / 1024``.
    """
    lines = text.splitlines()
    for idx in range(len(lines) - 1, -1, -1):
        if lines[idx].strip() != "---":
            continue
        block = _parse_block_lines(lines[idx + 1 :])
        if any(key in block for key in KNOWN_KEYS):
            return _with_derived(block)
    return {}


def _parse_block_lines(lines: list[str]) -> dict[str, Any]:
    """Parse consecutive ``key: value`` lines; stop at the first line that is not one."""
    block: dict[str, Any] = {}
    for line in lines:
        match = _KV_RE.match(line)
        if not match or not match.group(2):
            break
        key, raw = match.group(1), match.group(2)
        block[key] = _convert(key, raw)
    return block


def _convert(key: str, raw: str) -> Any:
    """Convert one summary value: known keys by their type, others as number-or-string."""
    if key in KNOWN_KEYS:
        number = _leading_number(raw)
        if number is None or not math.isfinite(number):
            return None
        return int(round(number)) if key in INT_KEYS else number
    number = _leading_number(raw) if _NUMBER_RE.fullmatch(raw) else None
    if number is None:
        return raw
    if not math.isfinite(number):
        return None
    return int(number) if re.fullmatch(r"[-+]?\d+", raw) else number


def _leading_number(raw: str) -> float | None:
    """Return the first number in ``raw`` (``1,024.5 MB`` -> 1024.5), or None."""
    match = _NUMBER_RE.search(raw)
    if not match:
        return None
    try:
        return float(match.group(0).replace(",", ""))
    except ValueError:
        return None


def _with_derived(block: dict[str, Any]) -> dict[str, Any]:
    """Add derived metrics (``memory_gb``) to a parsed block."""
    vram = block.get("peak_vram_mb")
    if isinstance(vram, (int, float)):
        block["memory_gb"] = vram / 1024
    return block


# --------------------------------------------------------------------------- run token / seed

_TOKEN_RE = re.compile(r"^[ \t]*run_token:[ \t]*([0-9A-Za-z][0-9A-Za-z_-]*)[ \t]*$", re.M)
_SEED_RE = re.compile(r"^[ \t]*seed:[ \t]*([-+]?\d+)[ \t]*$", re.M)


def find_run_token(text: str) -> str | None:
    """Return the value of the last ``run_token: <hex>`` line (a rerun appends a new one)."""
    matches = _TOKEN_RE.findall(text)
    return matches[-1] if matches else None


def find_seed(text: str) -> int | None:
    """Return the integer of the last ``seed: N`` line, or None."""
    matches = _SEED_RE.findall(text)
    return int(matches[-1]) if matches else None


# --------------------------------------------------------------------------- sidecar


def load_sidecar(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load the JSON summary sidecar written by train.py.

    Raises :class:`LogInputError` (one-line message) when the file is missing, unreadable,
    too large, not UTF-8 JSON, or not a JSON object. ``NaN``/``Infinity`` (which Python's
    json writes but JSON forbids) are read as ``None``.
    """
    p = Path(path)
    return parse_sidecar(_read_sidecar_bytes(p), p)


def parse_sidecar(data: bytes, p: Path) -> dict[str, Any]:
    """A sidecar's bytes as its JSON object (see :func:`load_sidecar`)."""
    if len(data) > MAX_SIDECAR_BYTES:
        raise LogInputError(f"summary sidecar is larger than {MAX_SIDECAR_BYTES} bytes: {p}")
    try:
        obj = json.loads(data.decode("utf-8"), parse_constant=lambda _name: None)
    except UnicodeDecodeError:
        raise LogInputError(f"summary sidecar is not UTF-8: {p}") from None
    except json.JSONDecodeError as exc:
        raise LogInputError(
            f"summary sidecar is not valid JSON: {p} (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(obj, dict):
        raise LogInputError(f"summary sidecar is not a JSON object: {p} (got {type(obj).__name__})")
    return obj


def _read_sidecar_bytes(p: Path) -> bytes:
    """Read a sidecar's bytes, mapping every I/O failure to a one-line LogInputError."""
    try:
        with open(p, "rb") as fh:
            data = fh.read(MAX_SIDECAR_BYTES + 1)
    except FileNotFoundError:
        raise LogInputError(f"summary sidecar not found: {p}") from None
    except OSError as exc:
        raise LogInputError(f"cannot read summary sidecar {p}: {exc.strerror or exc}") from None
    return data


# --------------------------------------------------------------------------- error extraction

_RANK_PREFIX_RE = re.compile(r"^\[(?:rank|default)\d+\]:[ ]?")
_FRAME_RE = re.compile(r'^(\s*)File "[^"]*", line \d+')
_TRACEBACK_RE = re.compile(r"^\s*Traceback \(most recent call last\):\s*$")


def extract_error(text: str, source: str) -> dict[str, Any]:
    """Build a crash record's ``error``: ``{"summary", "tail", "source", "kind"}``.

    ``summary`` is the exception line ending the last Python traceback (see
    :func:`error_summary`); ``tail`` the last ``TAIL_LINES`` lines, capped at
    ``MAX_TAIL_CHARS``; ``source`` says where the text came from (``run.log``, ``sidecar``,
    ``cli``); ``kind`` is :func:`classify_error`.
    """
    return {
        "summary": error_summary(text),
        "tail": error_tail(text),
        "source": source,
        "kind": classify_error(text),
    }


def error_tail(text: str, max_lines: int = TAIL_LINES, max_chars: int = MAX_TAIL_CHARS) -> str:
    """Return the last ``max_lines`` non-trailing-blank lines, keeping at most ``max_chars``."""
    lines = _window(text).rstrip().splitlines()[-max_lines:]
    tail = "\n".join(line.rstrip() for line in lines)
    if len(tail) > max_chars:
        tail = "…" + tail[-(max_chars - 1) :]
    return tail


def error_summary(text: str) -> str:
    """Return the line that best says what went wrong.

    The exception line after the last traceback frame (``File "...", line N``) — this covers
    chained tracebacks ("During handling of the above exception..."), bare KeyboardInterrupt,
    and SyntaxError's header-less caret layout. An exception line ending in ``:`` gets its
    next line appended (multi-line messages). Without frames: the last non-empty line.
    ``(no error text)`` for blank input.
    """
    lines = [_RANK_PREFIX_RE.sub("", line).rstrip() for line in _window(text).splitlines()]
    summary = _exception_line(lines) or _last_nonempty(lines) or "(no error text)"
    return _clip(summary.strip(), MAX_SUMMARY_CHARS)


def _exception_line(lines: list[str]) -> str | None:
    """Find the exception line following the last traceback frame, with its continuation."""
    frame_idx = _last_frame_index(lines)
    if frame_idx is None:
        return None
    for idx in range(frame_idx + 1, len(lines)):
        line = lines[idx]
        if not line.strip() or line[0] in " \t":
            continue
        return _with_continuation(line, lines[idx + 1 :])
    return None


def _last_frame_index(lines: list[str]) -> int | None:
    """Index of the last ``File "...", line N`` frame line, or None."""
    for idx in range(len(lines) - 1, -1, -1):
        if _FRAME_RE.match(lines[idx]):
            return idx
    return None


def _with_continuation(line: str, rest: list[str]) -> str:
    """Join an exception header whose message starts on the next line (``Foo: ...:``)."""
    header = line.rstrip()
    if not header.endswith(":"):
        return header
    nxt = next((r.strip() for r in rest if r.strip()), "")
    return f"{header} {nxt}" if nxt else header


def _window(text: str) -> str:
    """The last ``ERROR_WINDOW_CHARS`` of ``text``, starting at a line boundary when possible."""
    if len(text) <= ERROR_WINDOW_CHARS:
        return text
    window = text[-ERROR_WINDOW_CHARS:]
    nl = window.find("\n")
    return window[nl + 1 :] if 0 <= nl < len(window) - 1 else window


def _last_nonempty(lines: list[str]) -> str | None:
    """The last line with visible content, or None."""
    return next((line for line in reversed(lines) if line.strip()), None)


def _clip(text: str, limit: int) -> str:
    """Shorten ``text`` to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- classification


def _rx(*patterns: str, flags: int = re.I) -> re.Pattern[str]:
    """Alternatives as one pattern (case-insensitive unless told), compiled on first use."""
    return re.compile("|".join(f"(?:{p})" for p in patterns), flags | re.M)


_KIND_PATTERNS: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...] = (
    ("syntax", (_rx(r"\b(?:SyntaxError|IndentationError|TabError)\b", flags=0),)),
    ("import", (_rx(r"\b(?:ModuleNotFoundError|ImportError)\b", flags=0), _rx(r"\bno module named\b"))),
    ("keyboard_interrupt", (_rx(r"\bKeyboardInterrupt\b", flags=0),)),
    (
        "oom",
        (
            _rx(
                r"\bout of memory\b",
                r"\boom\b",
                r"\boom[-_ ]?kill(?:er|ed)?\b",
                r"\bcannot allocate memory\b",
            ),
            _rx(r"\b(?:OutOfMemoryError|MemoryError)\b", r"^\s*Killed\s*$", r"\b\d+\s+Killed\b", flags=0),
        ),
    ),
    ("infra", (_rx(r"\btraining was killed by SIG[A-Z]+\b", flags=0),)),
    # prepare.py's own failure at train time (no prepared data, a broken tokenizer): the setup, not the idea
    ("environment", (_rx(r"\bPrepareError\b", flags=0),)),
    (
        "nan",
        (
            _rx(
                r"\bnan\b",
                r"\binf(?:inite)? loss\b",
                r"\bloss\s*(?:is|=|:|became|of)\s*[-+]?inf\b",
                r"\bnon-?finite (?:loss|values?|gradients?)\b",
                r"\bdiverg(?:ed|ence|ing)\b",
                r"\bexplo(?:sion|ded|ding)\b",
            ),
        ),
    ),
    (
        "timeout",
        (
            _rx(r"\b(?:TimeoutExpired|TimeoutError)\b", flags=0),
            _rx(r"\btimed out\b", r"\btime budget exceeded\b", r"\btimeout (?:expired|exceeded|reached)\b"),
        ),
    ),
    (
        "shape",
        (
            _rx(
                r"\bsize mismatch\b",
                r"\bshapes?\b",
                r"\bmust match the size\b",
                r"\bsizes? of tensors? must match\b",
                r"\bmat1 and mat2\b",
                r"\bdimension out of range\b",
            ),
        ),
    ),
    (
        "assertion",
        (
            _rx(r"\bAssertionError\b", flags=0),
            _rx(r"\bdevice-side assert(?:ion)?\b", r"\bassertion\b.*\bfailed\b"),
        ),
    ),
)

_SIGKILL_RE = _rx(r"\bsignal 9\b", r"\bSIGKILL\b", r"\b(?:exit|return) ?(?:code|status)\s*(?:137|-9)\b")
_MEMORY_RE = _rx(r"\bmemory\b")
_ERROR_SIGNAL_RE = _rx(
    r"^\s*Traceback \(most recent call last\):",
    r"\b[A-Za-z_]\w*(?:Error|Exception)\b",
    r"\b(?:error|fail(?:ed|ure)?|fatal|abort(?:ed)?|crash(?:ed)?|exception|segmentation fault|core dumped)\b",
)


def stated_kind(error: dict) -> str | None:
    """A record's error kind: the ``kind`` it states (MemoryLab always writes the key, null when
    unknown), else, for a writer that records none (the published fork), the one its text shows."""
    if "kind" in error:
        return error.get("kind") or None
    return classify_error("\n".join(str(error.get(key) or "") for key in ("tail", "summary")))


def classify_error(text: str) -> str | None:
    """Classify crash text into one error kind (see the module docstring), or None.

    Tries the exception summary line first, then the tail with quoted source lines removed;
    returns ``runtime`` when nothing specific matches but the text shows an error, and None
    for text with no error signal at all.
    """
    if not text or not text.strip():
        return None
    summary = error_summary(text)
    tail = _strip_code_lines(_window(text).splitlines()[-200:])
    for piece in (summary, tail):
        kind = _match_kind(piece)
        if kind:
            return kind
    return "runtime" if _ERROR_SIGNAL_RE.search(tail) else None


def _match_kind(piece: str) -> str | None:
    """Return the first kind, in precedence order, whose patterns match ``piece``."""
    for kind, patterns in _KIND_PATTERNS:
        if any(p.search(piece) for p in patterns):
            return kind
    if _SIGKILL_RE.search(piece) and _MEMORY_RE.search(piece):
        return "oom"
    return None


def _strip_code_lines(lines: list[str]) -> str:
    """Drop traceback frame lines and the source/caret lines indented beneath them."""
    kept: list[str] = []
    frame_indent: int | None = None
    for raw in lines:
        line = _RANK_PREFIX_RE.sub("", raw)
        indent = len(line) - len(line.lstrip())
        if frame_indent is not None and line.strip() and indent > frame_indent:
            continue
        frame = _FRAME_RE.match(line)
        frame_indent = len(frame.group(1)) if frame else None
        if not frame:
            kept.append(line)
    return "\n".join(kept)

