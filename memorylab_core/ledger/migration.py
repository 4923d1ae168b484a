"""Copying a journal into another backend (``memorylab migrate``): file ↔ PostgreSQL, idempotent.

Every valid record of the source is copied in journal order, runs and events alike, with its run
archive (the files under ``runs/<id>/`` of a file store, or the artifacts stored with the record in
PostgreSQL). A record is identified by its idempotency key (``pgjournal.record_key``: the SHA-256 of
its line, numbered for repeated identical lines), so a second migrate copies nothing and an
interrupted one resumes where it stopped. Lines the source skips as corrupt are not copied.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .errors import MemoryLabError
from .journal import FileJournal, LedgerLine, encode_record
from .pgjournal import PostgresJournal, record_key
from .store import Store, atomic_write_bytes, is_safe_run_id

BATCH = 2000  # records per append into the target


@dataclass
class MigrationSummary:
    source: str
    target: str
    records: int = 0
    copied: int = 0
    already_there: int = 0
    skipped_corrupt: int = 0
    artifact_files: int = 0
    copied_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data.pop("copied_ids")
        return data


def line_keys(records: list[dict]) -> list[str]:
    """The idempotency key of each record, in order (the n-th identical line gets ``#n``)."""
    seen: Counter = Counter()
    keys = []
    for record in records:
        line = encode_record(record)[:-1].decode("ascii")
        seen[line] += 1
        keys.append(record_key(line, seen[line]))
    return keys


def migrate(source: Store, target: Store) -> MigrationSummary:
    """Copy every record of ``source`` missing from ``target`` into it, in order, with its artifacts."""
    if source.journal.label == target.journal.label:
        raise MemoryLabError(f"the source and the target are the same journal: {target.journal.label}")
    summary = MigrationSummary(source.journal.label, target.journal.label)
    lines, _, _ = source.read_new_lines(0, 0)
    valid = [line for line in lines if line.record is not None]
    summary.records, summary.skipped_corrupt = len(valid), len(lines) - len(valid)
    keys = line_keys([line.record for line in valid])
    target.init()  # idempotent: creates the target journal (a table) when missing
    with target.lock():
        present = _present_keys(target)
        todo = [(line, key) for line, key in zip(valid, keys, strict=True) if key not in present]
        summary.already_there = len(valid) - len(todo)
        for start in range(0, len(todo), BATCH):
            _copy_batch(source, target, todo[start:start + BATCH], summary)
    return summary


def _present_keys(target: Store) -> set[str]:
    if isinstance(target.journal, PostgresJournal):
        return target.journal.keys()
    lines, _, _ = target.read_lines(0, 0)
    return set(line_keys([line.record for line in lines if line.record is not None]))


def _copy_batch(source: Store, target: Store, batch: list[tuple[LedgerLine, str]],
                summary: MigrationSummary) -> None:
    records = [line.record for line, _ in batch]
    files = _artifacts_of(source, [line for line, _ in batch])
    if isinstance(target.journal, PostgresJournal):
        target.journal.append_many(records, files, keys=[key for _, key in batch])
    else:
        target.journal.append_many(records)
        write_archive(target, files)
    target.appended.extend(str(r.get("run_id") or r.get("event_id") or "?") for r in records)
    summary.copied += len(records)
    summary.artifact_files += sum(len(f) for f in files.values())


def _artifacts_of(source: Store, lines: list[LedgerLine]) -> dict[str, dict[str, bytes]]:
    """run id → {file name → bytes} of the runs among ``lines``, from the source's archive."""
    found: dict[str, dict[str, bytes]] = {}
    for line in lines:
        record = line.record or {}
        run_id = str(record.get("run_id") or "")
        if record.get("record_type") == "event" or not is_safe_run_id(run_id):
            continue
        files = source.journal.attachments(line.offset) if not isinstance(source.journal, FileJournal) \
            else archived_files(source, run_id)
        if files:
            found[run_id] = files
    return found


def archived_files(store: Store, run_id: str) -> dict[str, bytes]:
    """The regular files (no symlinks) of a run's ``runs/<run_id>/`` folder in a file store, by name."""
    folder = store.runs_dir / run_id
    files = {}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.is_symlink() and is_safe_run_id(path.name):
                try:
                    files[path.name] = path.read_bytes()
                except OSError:
                    continue
    return files


def write_archive(target: Store, files: dict[str, dict[str, bytes]]) -> None:
    """Write run id → {file name → bytes} into ``target``'s ``runs/`` (files already there are kept)."""
    for run_id, named in files.items():
        folder = target.inside(target.runs_dir / run_id)
        for name, data in named.items():
            path: Path = folder / name
            if not path.exists():
                atomic_write_bytes(path, data, durable=False)
