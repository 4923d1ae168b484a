"""The record schema: one validator that every journal line passes, on the way in and on the way out.

Writers call :func:`validate_record` (through :meth:`Store.append_many_locked`) before anything is
written, so a record a view could not read is never appended. Readers call :func:`record_problem`
on every parsed line, so a line written by an older version or by hand that breaks the rules is
skipped with a warning naming its line number instead of failing a command later.

The rules (docs/memorylab_api.md, "Record validation"):

* every known field has one type (strings or null, commit ids, ISO-8601 timestamps, ids with the
  run-id syntax, statuses keep|discard|crash, lists of short strings, known category names, objects
  where objects belong);
* every number anywhere is finite (no NaN or infinity) and of bounded size; metrics are in sane
  ranges (val_bpb in (0, 100), resource counts non-negative, every metric below :data:`MAX_METRIC`);
* strings, lists and nesting are capped (:data:`TEXT_CAPS`, :data:`MAX_STRING`, :data:`MAX_ITEMS`,
  :data:`MAX_DEPTH`); unknown top-level fields are allowed up to :data:`MAX_EXTRA_BYTES` each, and
  the encoded record up to :data:`MAX_RECORD_BYTES`.

The cost is linear in the size of the record: every journal line is checked when the history is
folded. Readers go through :func:`checked_line`, which bounds numbers while decoding and lets a short
line's own text prove most rules (no string or list can outgrow a short line, no nesting is deeper
than its brackets), so a typical line costs a few microseconds beyond its JSON decoding.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from .model import ABORT_ACTIONS, ABORT_MODES, CATEGORIES, STATUSES
from .store import MemoryLabError, is_safe_run_id

MAX_RECORD_BYTES = 1 << 20  # one encoded journal line, newline excluded
MAX_EXTRA_BYTES = 64 << 10  # one unknown top-level field, encoded
MAX_TOP_FIELDS = 200  # top-level fields of one record
MAX_DEPTH = 16  # objects and lists nested in the record (the record itself is level 1)
MAX_ITEMS = 10_000  # entries of any one list or object
MAX_STRING = 64 << 10  # characters of any string not capped more tightly (error.tail included)
MAX_KEY = 200  # characters of an object key
MAX_NAME = 200  # branch, family, mode, source, host, event_type, error.summary's neighbours ...
MAX_TEXT = 10_000  # description, hypothesis, notes, reason, error.summary, each reason
MAX_TAGS = 100  # entries of tags, categories, reasons
MAX_TAG = 100  # characters of one tag or category
MAX_FACTS = 1_000  # entries of change_signature
MAX_METRIC = 1e15  # |metric| bound; val_bpb is in (0, 100)
MAX_FLOAT = 1e100  # |number| bound anywhere else: squares and products stay finite
MAX_INT_BITS = 256  # integers anywhere (train.py constants may be large; float() never overflows)
NON_NEGATIVE_METRICS = frozenset((
    "training_seconds", "wall_training_seconds", "total_seconds", "peak_vram_mb", "memory_gb", "mfu_percent",
    "total_tokens_M", "num_steps", "num_params_M", "depth", "device_memory_mb",
))
_HEX = "0123456789abcdefABCDEF"
_CATEGORY_NAMES = frozenset(CATEGORIES)

Check = Callable[[str, object], "str | None"]


class RecordError(MemoryLabError):
    """A record breaks the schema; the message names the field and the rule."""


class _OutOfBounds(ValueError):
    """A number outside the schema's bounds, met while decoding (the line is decoded again for the message)."""


def _bounded_float(text: str) -> float:
    value = float(text)
    if -MAX_FLOAT < value < MAX_FLOAT:
        return value
    raise _OutOfBounds(text)


def _bounded_int(text: str) -> int:
    if len(text) <= 77:  # 10**77 < 2**256: no need to measure
        return int(text)
    value = int(text)
    if value.bit_length() > MAX_INT_BITS:
        raise _OutOfBounds(text)
    return value


def _reject_constant(name: str) -> float:
    """JSON's NaN / Infinity extensions are not numbers a record may hold."""
    raise ValueError(f"{name} is not a finite number")


_PLAIN = json.JSONDecoder(parse_constant=_reject_constant)
_BOUNDED = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_bounded_float, parse_int=_bounded_int)


def checked_line(raw: bytes) -> tuple[dict | None, str | None]:
    """Decode and check one journal line: ``(record, None)`` when it is valid, else ``(None, why)``.

    Same verdict as :func:`record_problem`, cheaper: numbers are bounded while decoding, and for a
    line of at most :data:`MAX_ITEMS` characters and no ``\\uD...`` escape, the text itself proves
    that no string or list breaks a cap and that no lone surrogate is inside (strict UTF-8 decoding
    admits none), so only keys, nesting depth and field rules remain to check (one walk over the
    containers, :func:`_needs_walk`).
    """
    try:
        text = raw.decode("utf-8")
        try:
            record, bounded = _BOUNDED.decode(text), True
        except _OutOfBounds:  # decode it as it is: the full check names the field
            record, bounded = _PLAIN.decode(text), False
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, f"not valid JSON ({type(exc).__name__})"
    as_written(record)
    if not bounded or type(record) is not dict or len(raw) > MAX_ITEMS \
            or "\\ud" in text or "\\uD" in text:
        problem = record_problem(record, len(raw))
    elif len(record) > MAX_TOP_FIELDS:
        problem = f"{len(record)} top-level fields (at most {MAX_TOP_FIELDS})"
    else:  # an unknown field re-encodes to at most 6 bytes per byte of the line (``\u007f``)
        unknown = _fits if 6 * len(raw) <= MAX_EXTRA_BYTES else _extra
        problem = _fields_problem(record, unknown) or (_walk_problem(record) if _needs_walk(record) else None)
    return (None, problem) if problem else (record, None)


def as_written(record: object) -> object:
    """``record`` with the published fork's shapes read as this schema's (in place), meaning unchanged.

    The fork writes a crash's ``error.tail`` as a list of lines; it is joined with newlines, the
    string this schema holds. Anything else is left for the rules to judge. Readers and ``import``
    call this before checking, so a fork's store is read in place and imported whole.
    """
    error = record.get("error") if type(record) is dict else None
    if type(error) is dict:
        tail = error.get("tail")
        if type(tail) is list and all(type(line) is str for line in tail):
            error["tail"] = "\n".join(tail)
    return record


def validate_record(record: dict) -> None:
    """Raise :class:`RecordError` when ``record`` may not be appended to the journal."""
    problem = record_problem(record)
    if problem is not None:
        raise RecordError(f"invalid record: {problem}")


def record_problem(record: object, encoded_size: int | None = None) -> str | None:
    """Why ``record`` breaks the schema (one line naming the field), or None when it is valid.

    ``encoded_size``: the length of the journal line when the caller has it (readers), which saves
    encoding the record again to measure it.
    """
    if not isinstance(record, dict):
        return "not a JSON object"
    if len(record) > MAX_TOP_FIELDS:
        return f"{len(record)} top-level fields (at most {MAX_TOP_FIELDS})"
    problem = _fields_problem(record) or _walk_problem(record)  # field rules first: their messages say more
    if problem is None and encoded_size is None:
        encoded_size = len(json.dumps(record, ensure_ascii=True, separators=(",", ":")))
    if problem is None and encoded_size > MAX_RECORD_BYTES:
        problem = f"the encoded record is {encoded_size} bytes (at most {MAX_RECORD_BYTES})"
    return problem


# -- the generic walk: numbers, strings and containers anywhere -----------------------------------------

def _walk_problem(record: dict) -> str | None:
    found = _walk(record, 1)
    if found is None:
        return None
    path, message = found
    return f"{''.join(reversed(path)).lstrip('.')} {message}"


def _walk(value: object, depth: int) -> tuple[list[str], str] | None:
    """Depth, sizes, finite bounded numbers and encodable strings anywhere inside a container.

    Returns (path from the innermost key outwards, message) for the first problem: paths are only
    built on failure, so a valid record costs one visit per value.
    """
    if depth > MAX_DEPTH:
        return [], f"is nested deeper than {MAX_DEPTH} levels"
    if len(value) > MAX_ITEMS:
        return [], f"has {len(value)} entries (at most {MAX_ITEMS})"
    items = value.items() if type(value) is dict else enumerate(value)
    for key, item in items:
        kind = type(item)
        if kind is str:
            message = None if len(item) <= MAX_STRING and item.isascii() else _string_problem(item, MAX_STRING)
        elif kind is float:
            message = None if -MAX_FLOAT < item < MAX_FLOAT else f"is {item} (must be finite, |x| < {MAX_FLOAT:g})"
        elif kind is int:
            message = None if item.bit_length() <= MAX_INT_BITS else f"is an integer of over {MAX_INT_BITS} bits"
        elif kind is dict or kind is list or kind is tuple:  # tuples: writers' lists, encoded as lists
            found = _walk(item, depth + 1)
            if found is not None:
                found[0].append(f".{key}" if type(key) is str else f"[{key}]")
                return found
            message = None
        elif item is None or kind is bool:
            message = None
        else:
            message = f"has unsupported type {kind.__name__}"
        if message is None and type(key) is str and len(key) > MAX_KEY:
            message = f"is a key of {len(key)} characters (at most {MAX_KEY})"
        if message is not None:
            return [f".{key[:MAX_KEY]}" if type(key) is str else f"[{key}]"], message
    return None


def _needs_walk(value: dict | list, depth: int = 1) -> bool:
    """Whether any object key inside ``value`` breaks :data:`MAX_KEY` or its nesting passes
    :data:`MAX_DEPTH` (``value`` is at level ``depth``): the full walk then names the problem."""
    if depth > MAX_DEPTH:
        return True
    if type(value) is dict:
        if value and max(map(len, value)) > MAX_KEY:
            return True
        value = value.values()
    for item in value:  # noqa: SIM110 - a plain loop: any() over a generator costs twice as much here
        if (type(item) is dict or type(item) is list) and _needs_walk(item, depth + 1):
            return True
    return False


def _string_problem(text: str, cap: int) -> str | None:
    if len(text) > cap:
        return f"is {len(text)} characters (at most {cap})"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "holds a lone surrogate (not valid Unicode text)"
    return None


# -- the known fields -----------------------------------------------------------------------------------

def _fields_problem(record: dict, unknown: Check | None = None) -> str | None:
    """The known fields' rules, and ``unknown`` (default :func:`_extra`) for every other field."""
    kind = record.get("record_type", "run")
    if kind not in ("run", "event"):
        return f"record_type must be 'run' or 'event', got {_shown(kind)}"
    event = kind == "event"
    checks, caps, not_null = (_EVENT_FIELDS, _EVENT_CAPS, _EVENT_NOT_NULL) if event else \
        (_RUN_FIELDS, _RUN_CAPS, _RUN_NOT_NULL)
    unknown = unknown or _extra
    for name in _EVENT_REQUIRED if event else _RUN_REQUIRED:
        if name not in record:
            return f"{name} is missing"
    for name, value in record.items():
        if value is None:  # null is allowed in every field but a few
            if name not in not_null:
                continue
        elif type(value) is str and len(value) <= caps.get(name, -1):  # the common text field, inline
            continue  # (lone surrogates are the generic walk's to find)
        problem = checks.get(name, unknown)(name, value)
        if problem:
            return problem
    return None


class _Text:
    """A string of at most ``cap`` characters, or null."""

    def __init__(self, cap: int) -> None:
        self.cap = cap

    def __call__(self, name: str, value: object) -> str | None:
        if value is None:
            return None
        if type(value) is not str:
            return f"{name} must be a string or null, got {_shown(value)}"
        problem = _string_problem(value, self.cap)
        return f"{name} {problem}" if problem else None


def _schema_version(name: str, value: object) -> str | None:
    if type(value) is not int or not 1 <= value <= 1000:
        return f"{name} must be an integer from 1 to 1000, got {_shown(value)}"
    return None


def _timestamp(name: str, value: object) -> str | None:
    if value is None:
        return None
    if type(value) is str and 10 <= len(value) <= 40:
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
            return None
        except ValueError:
            pass
    return f"{name} must be an ISO-8601 time string or null, got {_shown(value)}"


def is_commit(value: object) -> bool:
    """Whether ``value`` is a git commit id: 4-64 hex digits."""
    return type(value) is str and 4 <= len(value) <= 64 and not value.strip(_HEX)


def _commit(name: str, value: object) -> str | None:
    """A git commit id, or the short letters-and-digits label another tool wrote there (the fork's
    own tests write ``best111``): read as written, it simply matches no git object."""
    if value is None or (type(value) is str and 4 <= len(value) <= 64 and value.isascii() and value.isalnum()):
        return None
    return f"{name} must be a commit id (4-64 ASCII letters and digits) or null, got {_shown(value)}"


def _id(name: str, value: object) -> str | None:
    """A required id (run_id of a run, event_id of an event)."""
    if is_safe_run_id(value):
        return None
    return f"{name} must be 1-128 letters, digits, '-', '_' or '.', got {_shown(value)}"


def _optional_id(name: str, value: object) -> str | None:
    return None if value is None else _id(name, value)


def _object(name: str, value: object) -> str | None:
    if value is None or type(value) is dict:
        return None
    return f"{name} must be an object or null, got {_shown(value)}"


def _strings(cap: int, width: int) -> Check:
    """A list of at most ``cap`` strings of at most ``width`` characters, or null."""
    def check(name: str, value: object) -> str | None:
        if value is None:
            return None
        if type(value) is not list:
            return f"{name} must be a list of strings, got {_shown(value)}"
        if len(value) > cap:
            return f"{name} has {len(value)} entries (at most {cap})"
        for i, item in enumerate(value):
            if type(item) is not str:
                return f"{name}[{i}] must be a string, got {_shown(item)}"
            if len(item) > width:
                return f"{name}[{i}] is {len(item)} characters (at most {width})"
        return None
    return check


def _categories(name: str, value: object) -> str | None:
    """Category names from :data:`memorylab_core.ledger.model.CATEGORIES` (the views count by them)."""
    problem = _strings(MAX_TAGS, MAX_TAG)(name, value)
    if problem or value is None:
        return problem
    unknown = next((item for item in value if item not in _CATEGORY_NAMES), None)
    return None if unknown is None else f"{name} holds unknown category {_clip(repr(unknown))}"


def _seed(name: str, value: object) -> str | None:
    if value is None or (type(value) is int and value.bit_length() <= 64):
        return None
    return f"{name} must be an integer (64 bits) or null, got {_shown(value)}"


def _status(name: str, value: object) -> str | None:
    if value in STATUSES:
        return None
    return f"{name} must be one of {'|'.join(STATUSES)}, got {_shown(value)}"


def _val_bpb(name: str, value: object) -> str | None:
    if value is None or (type(value) in (int, float) and 0 < value < 100):
        return None
    return f"{name} must be a number in (0, 100) or null, got {_shown(value)}"


def _metrics(name: str, value: object) -> str | None:
    """val_bpb in (0, 100) or null; other metrics |x| < 1e15 (resource counts >= 0), labels or null."""
    if value is None:
        return None
    if type(value) is not dict:
        return f"{name} must be an object, got {_shown(value)}"
    for key, metric in value.items():
        kind = type(metric)
        if (kind is float or kind is int) and key != "val_bpb" and (  # the common metric, inline
                0 <= metric < MAX_METRIC or (-MAX_METRIC < metric < 0 and key not in NON_NEGATIVE_METRICS)):
            continue
        problem = _metric_problem(f"{name}.{key}", key, metric)
        if problem:
            return problem
    return None


def _metric_problem(path: str, key: str, value: object) -> str | None:
    kind = type(value)
    if value is None:
        return None
    if key == "val_bpb":
        return _val_bpb(path, value)
    if kind is str and key not in NON_NEGATIVE_METRICS:  # a count or a duration is a number, never a label
        problem = _string_problem(value, MAX_NAME)
        return f"{path} {problem}" if problem else None
    if kind is not int and kind is not float:
        allowed = "a number or null" if key in NON_NEGATIVE_METRICS else "a number, a short label or null"
        return f"{path} must be {allowed}, got {_shown(value)}"
    if not -MAX_METRIC < value < MAX_METRIC:
        return f"{path} must be finite with |value| < {MAX_METRIC:g}, got {_shown(value)}"
    if value < 0 and key in NON_NEGATIVE_METRICS:
        return f"{path} cannot be negative, got {_shown(value)}"
    return None


_NAME, _LONG = _Text(MAX_NAME), _Text(MAX_TEXT)
_ERROR_FIELDS = {"summary": _Text(MAX_TEXT), "tail": _Text(MAX_STRING), "source": _Text(MAX_NAME),
                 "kind": _Text(MAX_NAME)}


def _error(name: str, value: object) -> str | None:
    """A crash's error: ``summary``, ``tail``, ``source``, ``kind`` strings (or null)."""
    problem = _object(name, value)
    if problem or value is None:
        return problem
    for key, check in _ERROR_FIELDS.items():
        problem = check(f"{name}.{key}", value.get(key))
        if problem:
            return problem
    return None


def _change_signature(name: str, value: object) -> str | None:
    """A list of change facts: objects whose ``name``, ``direction`` and ``source`` are short strings."""
    if value is None:
        return None
    if type(value) is not list or len(value) > MAX_FACTS:
        return f"{name} must be a list of at most {MAX_FACTS} objects, got {_shown(value)}"
    for i, fact in enumerate(value):
        if type(fact) is not dict:
            return f"{name}[{i}] must be an object, got {_shown(fact)}"
        for key in ("name", "direction", "source"):
            problem = _NAME(f"{name}[{i}].{key}", fact.get(key))
            if problem:
                return problem
    return None


_ABORT_NUMBERS = ("progress", "loss", "reference_loss", "gap", "bound", "predicted_gap", "reference_val_bpb",
                  "saved_training_seconds", "would_save_training_seconds", "budget_seconds")


def _early_abort(name: str, value: object) -> str | None:
    """What the early abort did (docs/early_abort.md): a known mode and action, progress in [0, 1],
    finite numbers (the saved seconds non-negative), short ids and a reason."""
    problem = _object(name, value)
    if problem or value is None:
        return problem
    if value.get("mode") not in ABORT_MODES or value.get("action") not in ABORT_ACTIONS:
        return (f"{name} needs mode {'|'.join(ABORT_MODES)} and action {'|'.join(ABORT_ACTIONS)}, got "
                f"{_shown(value.get('mode'))} / {_shown(value.get('action'))}")
    for key in _ABORT_NUMBERS:
        number = value.get(key)
        if number is not None and (type(number) not in (int, float) or not -MAX_METRIC < number < MAX_METRIC):
            return f"{name}.{key} must be a finite number or null, got {_shown(number)}"
    progress = value.get("progress")
    if not (type(progress) in (int, float) and 0 <= progress <= 1):
        return f"{name}.progress must be a number in [0, 1], got {_shown(progress)}"
    for key in ("saved_training_seconds", "would_save_training_seconds", "budget_seconds"):
        if (value.get(key) or 0) < 0:
            return f"{name}.{key} cannot be negative, got {_shown(value.get(key))}"
    return _optional_id(f"{name}.reference_run", value.get("reference_run")) or \
        _LONG(f"{name}.reason", value.get("reason"))
def _train_defaults(name: str, value: object) -> str | None:
    """An arena's starting operating point: knob name -> number, boolean or short string (or null)."""
    if value is None:
        return None
    if type(value) is not dict or len(value) > MAX_FACTS:
        return f"{name} must be an object of at most {MAX_FACTS} entries, got {_shown(value)}"
    for key, item in value.items():
        if len(key) > MAX_NAME:
            return f"{name} has a key of {len(key)} characters (at most {MAX_NAME})"
        if type(item) is str:
            problem = _string_problem(item, MAX_NAME)
            if problem:
                return f"{name}.{key} {problem}"
        elif type(item) not in (int, float, bool):
            return f"{name}.{key} must be a number, a boolean or a short string, got {_shown(item)}"
    return None


def _record_type(name: str, value: object) -> str | None:
    return None  # checked first, in _fields_problem


def _event_type(name: str, value: object) -> str | None:
    if type(value) is str and 0 < len(value) <= MAX_NAME:
        return None
    return f"{name} must be a non-empty string of at most {MAX_NAME} characters, got {_shown(value)}"


def _extra(name: str, value: object) -> str | None:
    """Unknown top-level fields are kept, but each is capped so none can swell a line."""
    if value is None or type(value) in (bool, int, float):
        return None
    size = len(value) if type(value) is str else len(json.dumps(value, ensure_ascii=True))
    if size > MAX_EXTRA_BYTES:
        return f"unknown field {_clip(name)} is {size} bytes (at most {MAX_EXTRA_BYTES})"
    return None


def _fits(name: str, value: object) -> None:
    """An unknown field of a line too short to hold one over :data:`MAX_EXTRA_BYTES` (readers' fast check)."""
    return None


def _shown(value: object) -> str:
    """A value for a one-line message: its type, and a short repr for scalars."""
    if isinstance(value, (dict, list)):
        return f"{type(value).__name__} of {len(value)} entries"
    return f"{type(value).__name__} {_clip(repr(value))}"


def _clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


_COMMON_FIELDS: dict[str, Check] = {
    "schema_version": _schema_version, "record_type": _record_type, "timestamp_utc": _timestamp,
    "imported_utc": _timestamp, "commit": _commit, "parent_commit": _commit, "branch": _NAME, "family": _NAME,
    "mode": _NAME, "source": _NAME, "host": _NAME, "run_token": _NAME, "code_fingerprint": _NAME,
    "original_status": _NAME, "import_key": _NAME, "arena": _NAME, "role": _NAME, "validity": _NAME,
    "description": _LONG, "hypothesis": _LONG, "notes": _LONG, "reason": _LONG,
    "tags": _strings(MAX_TAGS, MAX_TAG), "categories": _categories,
    "novelty_guard": _object, "decision_packet": _object, "artifacts": _object, "promotion": _object,
    "import": _object, "launch": _object, "error": _error, "seed": _seed, "replicate_of": _optional_id,
}
_RUN_FIELDS: dict[str, Check] = {
    **_COMMON_FIELDS, "run_id": _id, "status": _status, "metrics": _metrics, "change_signature": _change_signature,
    "early_abort": _early_abort,
    "train_defaults": _train_defaults,
}
_EVENT_FIELDS: dict[str, Check] = {
    **_COMMON_FIELDS, "event_id": _id, "event_type": _event_type, "run_id": _optional_id, "val_bpb": _val_bpb,
    "level": _NAME, "confirmed_run_id": _optional_id, "prior_champion": _optional_id,
    "prior_confirmed": _optional_id, "reasons": _strings(MAX_TAGS, MAX_TEXT), "breaker_before": _object,
}
_RUN_REQUIRED = ("run_id", "status")
_EVENT_REQUIRED = ("event_id", "event_type")
_RUN_CAPS = {name: check.cap for name, check in _RUN_FIELDS.items() if isinstance(check, _Text)}
_EVENT_CAPS = {name: check.cap for name, check in _EVENT_FIELDS.items() if isinstance(check, _Text)}
_RUN_NOT_NULL = frozenset(name for name, check in _RUN_FIELDS.items() if check(name, None))
_EVENT_NOT_NULL = frozenset(name for name, check in _EVENT_FIELDS.items() if check(name, None))
