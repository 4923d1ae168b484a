"""Arenas: the one home of "which runs are comparable".

val_bpb compares only between runs that measured the same thing: the same profile, the same kind of
device, the same time budget, sequence length and evaluation set, on the same data. An *arena* is
that set of facts written as one short key; every view (champion, reference, noise, registry,
insights, health, report) is computed per arena and never pools two (docs/evidence.md).

* **Native runs with a sidecar**: :func:`arena_key` of the comparability fields train.py records
  (:data:`COMPARABLE`), e.g. ``cpu/cpu/60s/seq256/eval262144/data-3f2a1c9e``. Fields the sidecar
  lacks are left out of the key, so an older train.py still gets an arena of what it did record.
* **Native runs without those fields** (``log`` without ``--summary``, or a sidecar with no profile):
  the arena of the newest native run in the store (:data:`DEFAULT_ARENA` in an empty one): a run
  logged by hand in a checkout is taken to be the same setup as the checkout's last run.
* **Imports**: one arena per imported file (its ``--family``, else the file's stem); a re-baseline row
  inside it (:func:`is_rebaseline`: by structure, a kept row far worse than the arena's best kept row,
  which only a new yardstick explains) starts a new arena ``<family>#2``, ``#3`` ... (:func:`split_points`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

COMPARABLE = ("profile", "device_class", "time_budget", "budget_clock", "max_seq_len", "eval_tokens", "data_id")
DEFAULT_ARENA = "default"
ALL_ARENAS = "all"  # the --arena value that asks a view for every arena, each apart
MAX_ARENA = 120  # characters of an arena key

REBASELINE_MARGIN = 0.01  # a kept row this much (relative) worse than its arena's best kept row re-baselines


def _slug(value: object) -> str:
    """A key part: lowercase, spaces as dashes, only safe characters."""
    text = re.sub(r"[^a-z0-9.+_-]+", "-", str(value).strip().lower()).strip("-")
    return text[:32]


def _number(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return f"{value:g}"


def device_class_of(setup: Mapping) -> str | None:
    """The device kind: train.py's ``device_class``, else its ``device_name``, else ``device``."""
    for key in ("device_class", "device_name", "device"):
        value = setup.get(key)
        if isinstance(value, str) and value.strip():
            return _slug(value.replace("NVIDIA", "").replace("GeForce", ""))
    return None


def setup_of(sidecar: Mapping | None) -> dict:
    """The comparability fields a sidecar (or a record's ``setup``) holds, by :data:`COMPARABLE` name."""
    if not sidecar:
        return {}
    setup = {key: sidecar[key] for key in ("profile", "device", "device_name", "device_class", "data_id",
                                           "time_budget", "budget_clock", "max_seq_len", "eval_tokens")
             if sidecar.get(key) not in (None, "")}
    return setup


def arena_key(setup: Mapping) -> str | None:
    """The arena of a run's comparability fields; None when not even the profile is known."""
    profile = setup.get("profile")
    if not isinstance(profile, str) or not profile.strip():
        return None
    parts = [_slug(profile)]
    device = device_class_of(setup)
    if device:
        parts.append(device)
    # A budget of CPU seconds (train.py's cpu profile since issue 22) trains longer than the same number of
    # wall seconds on a busy machine: "60cpu-s" and "60s" are different arenas.
    budget_unit = "cpu-s" if setup.get("budget_clock") == "cpu" else "s"
    for key, prefix, suffix in (("time_budget", "", budget_unit), ("max_seq_len", "seq", ""),
                                ("eval_tokens", "eval", "")):
        number = _number(setup.get(key))
        if number is not None:
            parts.append(f"{prefix}{number}{suffix}")
    data_id = setup.get("data_id")
    if isinstance(data_id, str) and data_id.strip():
        # prepare.py writes "<source>:<content hash>": keep the source and enough of the hash that two
        # different corpora never share an arena
        source, _, digest = data_id.strip().rpartition(":")
        parts.append("data-" + (_slug(source) + "-" if source else "") + _slug(digest)[:12])
    return "/".join(parts)[:MAX_ARENA]


def training_hour_unit(arena: str | None) -> str:
    """What an hour of ``training_seconds`` is in ``arena``: a CPU-hour where the runs trained on a CPU (the cpu
    profile's budget counts the training process's CPU seconds), else a GPU-hour."""
    return "CPU-hour" if arena and arena.split("/")[1:2] == ["cpu"] else "GPU-hour"


def is_partial(key: str) -> bool:
    """Whether an arena key lacks one of the :data:`COMPARABLE` fields (an older or crashed run's sidecar
    left it out): such a key must not start an arena of its own when a complete one fits it."""
    return len(key.split("/")) < len(COMPARABLE)


def completes(partial: str, full: str) -> bool:
    """Whether ``full`` is an arena a run with the ``partial`` key can belong to: the same profile, and
    every field the partial key states is in ``full`` (``cpu/cpu/60s/seq256`` fits
    ``cpu/cpu/60s/seq256/eval131072/data-...``)."""
    mine, theirs = partial.split("/"), full.split("/")
    return len(mine) < len(theirs) and mine[0] == theirs[0] and set(mine) <= set(theirs)


def native_arena(setup: Mapping, newest_native: str | None) -> str:
    """The arena of a run logged here: its own key, else the newest native run's, else the default."""
    return arena_key(setup) or newest_native or DEFAULT_ARENA


def record_arena(record: Mapping) -> str:
    """The arena a journal record belongs to: its ``arena`` field (every record written now has one);
    for older records, the key of their ``setup`` / metrics, the family of an import, else the default."""
    stated = record.get("arena")
    if isinstance(stated, str) and stated.strip():
        return stated
    setup = record.get("setup") if isinstance(record.get("setup"), Mapping) else None
    metrics = record.get("metrics") if isinstance(record.get("metrics"), Mapping) else {}
    key = arena_key(setup or metrics)
    if key:
        return key
    source = str(record.get("source") or "native")
    if source.startswith("import:"):
        return import_base(record.get("family"), source[len("import:"):])
    return DEFAULT_ARENA


def import_base(family: object, file_name: str) -> str:
    """An imported file's first arena: its family, else the file's name without the extension."""
    if isinstance(family, str) and family.strip():
        return family.strip()[:MAX_ARENA]
    stem = file_name.rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    return (stem or "import")[:MAX_ARENA]


def is_rebaseline(status: str, val_bpb: float | None, best_kept: float | None) -> bool:
    """Whether an imported row starts a new arena: a ``keep`` worse than its arena's best kept val_bpb by
    more than :data:`REBASELINE_MARGIN` (relative). Upstream's loop keeps a run only when it beats the
    best so far, so a kept row far above the best can only be a new yardstick: the current configuration
    measured again on new hardware, a new budget or new data. The margin leaves room for a
    simplification kept at equal or slightly worse val_bpb. Words in the description are never read:
    "... vs baseline 2.681" is an experiment, and a re-baseline need not say "baseline"."""
    return status == "keep" and val_bpb is not None and best_kept is not None and \
        val_bpb > best_kept * (1 + REBASELINE_MARGIN)


@dataclass(frozen=True)
class Split:
    """Where an imported file starts a new arena."""

    row: int  # 0-based position among the file's run rows
    arena: str
    description: str

    def to_dict(self) -> dict:
        return {"row": self.row, "arena": self.arena, "description": self.description}


def split_points(rows: Sequence[tuple[str, float | None, str]], base: str, mode: str = "auto",
                 at: Sequence[int] = ()) -> list[Split]:
    """The arenas of one imported file's rows (``(status, val_bpb, description)`` each) after its first:
    ``auto`` splits at each re-baseline row (:func:`is_rebaseline`, against the best kept row of the
    arena the row would belong to), ``none`` never, ``rows`` at the given 0-based rows (``--split-at``)."""
    wanted = set(at) if mode == "rows" else set()
    splits: list[Split] = []
    best: float | None = None
    for i, (status, val, text) in enumerate(rows):
        if i and ((mode == "auto" and is_rebaseline(status, val, best)) or i in wanted):
            splits.append(Split(i, f"{base}#{len(splits) + 2}", text))
            best = None
        if status == "keep" and val is not None and (best is None or val < best):
            best = val
    return splits


_SPLIT_SUFFIX = re.compile(r"#\d+$")


def lineage(arena: str) -> str:
    """The arena an imported file's re-baselines split from (``results#2`` → ``results``): one history of
    ideas, measured on several yardsticks. Numbers stay per arena; what was tried, and how it went, is the
    lineage's (the novelty guard's context)."""
    return _SPLIT_SUFFIX.sub("", arena)


def arenas_by_row(count: int, base: str, splits: Sequence[Split]) -> list[str]:
    """The arena of each of ``count`` rows given the file's splits (in row order)."""
    out, current, pending = [], base, list(splits)
    for i in range(count):
        if pending and pending[0].row == i:
            current = pending.pop(0).arena
        out.append(current)
    return out


def context_label(arena: str) -> str:
    """The arena as shown to people: ``arena cpu/cpu/60s``."""
    return f"arena {arena}"


def current_arena(history, requested: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The arena a command shows by default (docs/evidence.md, "Current arena"):

    ``--arena`` when given; else ``$MEMORYLAB_ARENA``; else the newest native run on this machine's
    profile (``$AUTORESEARCH_PROFILE``, the variable prepare.py and train.py obey); else the newest
    native run's arena; else the newest run's; else :data:`DEFAULT_ARENA`. ``history`` is a
    :class:`~memorylab_core.index.journal_index.JournalIndex` (only its index is read).
    """
    if requested:
        return requested
    env = env if env is not None else {}
    if env.get("MEMORYLAB_ARENA"):
        return env["MEMORYLAB_ARENA"]
    profile = (env.get("AUTORESEARCH_PROFILE") or "").strip()
    found = history.newest_arena(native=True, prefix=profile) if profile else None
    return found or history.newest_arena(native=True) or history.newest_arena() or DEFAULT_ARENA
