"""Disposable pickle caches beside the ledger: safe to load, cheap to write, keyed by ledger bytes.

Every cache under ``cache/`` is derived from ``experiments.jsonl`` and can be deleted at any time.
A cache file is only trusted when its key matches the ledger: the byte offset it covers plus SHA-1
fingerprints of the ledger's first and last bytes before that offset, so a replaced, truncated or
edited ledger is replayed instead of read through a stale cache. Loading uses an unpickler that
resolves only plain containers and MemoryLab's own classes, so a doctored cache file cannot run code.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import pickle
from pathlib import Path

from .store import Store, atomic_write_bytes

FINGERPRINT_BYTES = 4096

_BUILTINS = frozenset({"set", "frozenset", "dict", "list", "tuple", "int", "float", "str", "bytes", "bool"})
_COLLECTIONS = frozenset({"defaultdict", "Counter", "OrderedDict", "deque"})


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401 - pickle hook
        if (module == "builtins" and name in _BUILTINS) or (module == "collections" and name in _COLLECTIONS):
            return super().find_class(module, name)
        if module.startswith("memorylab_core.") and not name.startswith("_"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"forbidden global {module}.{name} in a MemoryLab cache")


def loads(data: bytes) -> object | None:
    """The object pickled in ``data``, or None when it is not a safe, readable pickle."""
    try:
        return _SafeUnpickler(io.BytesIO(data)).load()
    except Exception:  # noqa: BLE001 - any unreadable cache simply means "rebuild from the ledger"
        return None


def dumps(obj: object) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def load(path: Path) -> object | None:
    """The object pickled at ``path``, or None when it is missing, unreadable or not a safe pickle."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return loads(data)


def save(path: Path, obj: object) -> None:
    """Pickle ``obj`` to ``path`` atomically, best effort and without fsync (a lost cache costs time only)."""
    with contextlib.suppress(OSError):
        atomic_write_bytes(path, dumps(obj), durable=False)


def ledger_key(store: Store, offset: int) -> tuple[int, str, str]:
    """What a cache covering the ledger up to ``offset`` must match: the offset and head/tail fingerprints."""
    head = store.head_bytes(min(offset, FINGERPRINT_BYTES))
    tail = store.bytes_before(offset, FINGERPRINT_BYTES)
    return offset, hashlib.sha1(head).hexdigest(), hashlib.sha1(tail).hexdigest()


def matches_ledger(store: Store, key: object) -> bool:
    """Whether a stored :func:`ledger_key` still describes the ledger's first ``offset`` bytes."""
    if not isinstance(key, tuple) or len(key) != 3 or not isinstance(key[0], int):
        return False
    return 0 <= key[0] <= store.ledger_size() and key == ledger_key(store, key[0])
