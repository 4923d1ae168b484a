"""Folded state as tagged JSON: what the index stores instead of pickles.

Some derived state (the research memory, a failure cluster) is a small tree of dataclasses. The
index keeps it as JSON text with a type tag on each object, and decoding builds only the classes a
caller names: a doctored ``index.sqlite`` can make a view show wrong numbers (as a doctored journal
could), but it can never make MemoryLab import a module or call a function it did not choose.

Encoded forms: JSON scalars as themselves; ``list`` as a list; ``tuple``, ``set``, ``deque`` and
``OrderedDict`` as ``{"~": kind, "v": items}``; a dict with string keys as ``{"~": "d", "v": {...}}``
and with other keys as ``{"~": "kv", "v": [[k, v], ...]}``; an instance of a named class as
``{"~": "o", "c": name, "v": {field: value}}``.
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import fields, is_dataclass


class CodecError(ValueError):
    """Stored state that does not decode with the classes allowed (the caller rebuilds it)."""


def dumps(obj: object) -> str:
    """``obj`` as tagged JSON text (see the module docstring)."""
    return json.dumps(_enc(obj), ensure_ascii=True, separators=(",", ":"))


def loads(text: str, classes: Iterable[type]) -> object:
    """The object encoded in ``text``; only the dataclasses in ``classes`` may be built."""
    allowed = {cls.__name__: cls for cls in classes}
    try:
        return _dec(json.loads(text), allowed)
    except CodecError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise CodecError(f"undecodable state ({type(exc).__name__})") from None


def _enc(obj: object) -> object:
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [_enc(v) for v in obj]
    if isinstance(obj, tuple):
        return {"~": "t", "v": [_enc(v) for v in obj]}
    if isinstance(obj, (set, frozenset)):
        return {"~": "s", "v": sorted((_enc(v) for v in obj), key=repr)}
    if isinstance(obj, deque):
        return {"~": "q", "v": [_enc(v) for v in obj], "m": obj.maxlen}
    if isinstance(obj, OrderedDict):
        return {"~": "od", "v": [[_enc(k), _enc(v)] for k, v in obj.items()]}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {"~": "d", "v": {k: _enc(v) for k, v in obj.items()}}
        return {"~": "kv", "v": [[_enc(k), _enc(v)] for k, v in obj.items()]}
    if is_dataclass(obj) and not isinstance(obj, type):
        return {"~": "o", "c": type(obj).__name__, "v": {f.name: _enc(getattr(obj, f.name)) for f in fields(obj)}}
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _dec(data: object, allowed: dict[str, type]) -> object:
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [_dec(v, allowed) for v in data]
    if not isinstance(data, dict):
        raise CodecError("unexpected JSON value")
    kind, value = data.get("~"), data.get("v")
    if kind == "t":
        return tuple(_dec(v, allowed) for v in value)
    if kind == "s":
        return {_hashable(_dec(v, allowed)) for v in value}
    if kind == "q":
        maxlen = data.get("m")
        return deque((_dec(v, allowed) for v in value), maxlen=maxlen if isinstance(maxlen, int) else None)
    if kind == "od":
        return OrderedDict((_hashable(_dec(k, allowed)), _dec(v, allowed)) for k, v in value)
    if kind == "d":
        return {str(k): _dec(v, allowed) for k, v in value.items()}
    if kind == "kv":
        return {_hashable(_dec(k, allowed)): _dec(v, allowed) for k, v in value}
    if kind == "o":
        return _build(str(data.get("c")), value, allowed)
    raise CodecError(f"unknown tag {kind!r}")


def _build(name: str, values: dict, allowed: dict[str, type]) -> object:
    cls = allowed.get(name)
    if cls is None:
        raise CodecError(f"class {name!r} is not allowed here")
    names = {f.name for f in fields(cls)}
    if not isinstance(values, dict) or set(values) != names:
        raise CodecError(f"stored {name} does not match its fields")
    obj = object.__new__(cls)
    for key, value in values.items():
        object.__setattr__(obj, key, _dec(value, allowed))
    return obj


def _hashable(value: object) -> object:
    if isinstance(value, (list, dict, set)):
        raise CodecError("unhashable key")
    return value
