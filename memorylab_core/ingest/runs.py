"""Building a run record: inputs validated, metrics read, provenance gathered, artifacts archived.

``log`` (and later ``run``/``import``) work in two phases so that bad input never writes anything:

1. :func:`gather` reads and validates everything the user pointed at (status, description, the
   sidecar, run.log, git) and returns a :class:`RunInputs`; it raises :class:`MemoryLabError` with a
   one-line message on the first problem.
2. :func:`commit_run` allocates the run id, archives the artifacts, classifies novelty against the
   history before the run, decides the packet and appends the record, all under the ledger lock so
   concurrent agents see a consistent champion and never collide on an id.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..evidence import logparse
from ..evidence.arenas import arena_key, completes, is_partial, native_arena, setup_of
from ..evidence.validity import PEERS, judge
from ..index.journal_index import JournalIndex
from ..index.records import run_from_record
from ..ledger.model import SCHEMA_VERSION, STATUSES, TRAIN_FILE, Run, finite_float, is_val_bpb, utc_stamp
from ..ledger.schema import MAX_NAME
from ..ledger.store import (
    MemoryLabError,
    Store,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    interrupts_deferred,
    warn,
    write_derived,
)
from ..novelty import categories, changes
from ..novelty.guard import Proposal, idea_key
from ..policy.decisions import decide, packet_markdown
from ..policy.promotion import store_policy
from ..policy.registry import champion
from ..render.export import tsv_row
from . import gitinfo

METRIC_KEYS = (
    "val_bpb",
    "training_seconds",
    "wall_training_seconds",
    "total_seconds",
    "peak_vram_mb",
    "memory_gb",
    "mfu_percent",
    "total_tokens_M",
    "num_steps",
    "num_params_M",
    "depth",
    "tokens_per_sec",
)
SIDECAR_INFO_KEYS = ("device", "device_memory_mb", "profile")
MAX_DESCRIPTION = 2000


@dataclass
class RunRequest:
    """What the caller says about a run (the ``log`` flags)."""

    description: str
    status: str
    tags: tuple[str, ...] = ()
    family: str | None = None
    hypothesis: str | None = None
    notes: str | None = None
    mode: str = "explore"
    threshold: float | None = None
    log_path: Path | None = None
    summary_path: Path | None = None
    error_text: str | None = None
    skip_archive: bool = False
    cwd: Path = field(default_factory=Path.cwd)
    extra: dict = field(default_factory=dict)  # further record fields (e.g. replicate_of, promotion)
    watched: dict | None = None  # a run stopped early: the metrics read from its step lines (no val_bpb)


@dataclass
class RunInputs:
    """Everything read and validated for one run, before anything is written."""

    request: RunRequest
    metrics: dict
    info: dict
    error: dict | None
    run_token: str | None
    seed: int | None
    provenance: dict
    code_fingerprint: str | None
    change_signature: list[dict]
    patch: str
    log_text: str | None
    setup: dict = field(default_factory=dict)  # the sidecar's comparability fields (evidence/arenas.py)
    contention: dict = field(default_factory=dict)  # the sidecar's contention signals (evidence/validity.py)
    streamed: dict[str, bytes] = field(default_factory=dict)  # archive name → bytes of an input read from a pipe


def _read_inputs(req: RunRequest) -> tuple[str | None, dict | None, dict[str, bytes]]:
    """The log's text, the sidecar, and the bytes of those that came through a pipe (read once: a
    pipe cannot be read again when the archive copies it). Regular files are read by the bounded
    readers of logparse; a pipe or ``<(process substitution)`` is read whole up to a bound."""
    streamed: dict[str, bytes] = {}
    log_text = sidecar = None
    try:
        if req.log_path:
            data = _existing(req.log_path, "log", logparse.MAX_STREAM_BYTES)
            if data is not None:
                streamed["run.log"] = data
            log_text = logparse.read_text_lenient(req.log_path) if data is None else logparse.text_of(data)
        if req.summary_path:
            data = _existing(req.summary_path, "summary", logparse.MAX_SIDECAR_BYTES)
            if data is not None:
                streamed["summary.json"] = data
            sidecar = logparse.load_sidecar(req.summary_path) if data is None else \
                logparse.parse_sidecar(data, req.summary_path)
    except logparse.LogInputError as exc:
        raise MemoryLabError(str(exc)) from exc
    return log_text, sidecar, streamed


def _existing(path: Path, what: str, limit: int) -> bytes | None:
    """:func:`logparse.read_stream` with the one-line 'not found' of a mistyped path."""
    if not path.exists():
        raise MemoryLabError(f"{what} not found: {path}")
    return logparse.read_stream(path, what, limit)


def _metrics_from(sidecar: dict | None, log_text: str | None) -> tuple[dict, bool]:
    """Sidecar metrics first, the log's summary block for whatever the sidecar lacks.

    Also says whether a val_bpb was reported at all: the readers turn NaN/inf into None, and a
    reported-but-non-finite val_bpb (a diverged run) deserves its own message.
    """
    metrics: dict = {}
    block = logparse.parse_summary_block(log_text) if log_text else {}
    reported = "val_bpb" in block or bool(sidecar and "val_bpb" in sidecar)
    for key in METRIC_KEYS:
        value = sidecar.get(key) if sidecar else None
        if value is None:
            value = block.get(key)
        if value is not None:
            metrics[key] = value
    if "memory_gb" not in metrics and finite_float(metrics.get("peak_vram_mb")) is not None:
        metrics["memory_gb"] = round(float(metrics["peak_vram_mb"]) / 1024, 3)
    return metrics, reported


def _validate_metrics(status: str, metrics: dict, reported: bool) -> None:
    if status == "crash":
        return
    if "val_bpb" not in metrics and reported:
        raise MemoryLabError("val_bpb is null, NaN or infinite; log a diverged run with --status crash")
    if "val_bpb" not in metrics:
        raise MemoryLabError(f"status {status!r} needs a val_bpb: pass --summary or --log with the summary block")
    raw = metrics["val_bpb"]
    value = finite_float(raw)
    if value is None:
        raise MemoryLabError(f"val_bpb is not a finite number ({raw!r}); log a diverged run with --status crash")
    if value < 0:
        raise MemoryLabError(f"val_bpb cannot be negative ({value})")
    if not is_val_bpb(value):
        raise MemoryLabError(f"val_bpb {value:g} is not a measurement: it must be at least 0.000001 (what "
                             "results.tsv can show) and below 100")
    metrics["val_bpb"] = value


def _check_tokens(sidecar: dict | None, log_text: str | None, summary_path: Path | None) -> str | None:
    """The run token; refuses a sidecar left over from an earlier run (its token differs, or the log has none:
    the run stopped before printing it, so it wrote no sidecar and this one is an earlier run's)."""
    log_token = logparse.find_run_token(log_text) if log_text else None
    side_token = sidecar.get("run_token") if sidecar else None
    if log_text and log_text.strip() and not log_token and side_token:
        raise MemoryLabError(
            f"stale sidecar {summary_path}: the log has no run_token line (the run stopped before printing it, "
            f"so it wrote no sidecar) and the sidecar's {str(side_token)[:12]}… is an earlier run's; log this "
            "run with --status crash --log only")
    if log_token and side_token and str(side_token) != log_token:
        raise MemoryLabError(
            f"stale sidecar {summary_path}: its run_token {str(side_token)[:12]}… does not match the log's "
            f"{log_token[:12]}… (it is from an earlier run); rerun training or pass the matching files"
        )
    return log_token or (str(side_token) if side_token else None)


def _crash_error(req: RunRequest, sidecar: dict | None, log_text: str | None) -> dict:
    if req.error_text and req.error_text.strip():
        err = logparse.extract_error(req.error_text, "cli")
    elif log_text and log_text.strip():
        err = logparse.extract_error(log_text, req.log_path.name if req.log_path else "run.log")
        side_error = str(sidecar.get("error") or "").strip() if sidecar else ""
        if side_error:
            # train.py's own one-line verdict beats a guess from the log's last lines.
            err["summary"] = side_error.splitlines()[-1]
            err["kind"] = logparse.classify_error(err["summary"]) or err.get("kind")
    elif sidecar and sidecar.get("error"):
        err = logparse.extract_error(str(sidecar["error"]), "sidecar")
    else:
        err = {"summary": "no error details given (no --log, --summary or --error)", "tail": "", "source": "none",
               "kind": None}
    return err


def validate_request(req: RunRequest) -> None:
    """Checks that need no files: status, description, mode."""
    if req.status not in STATUSES:
        raise MemoryLabError(f"unknown status {req.status!r}: use one of {', '.join(STATUSES)}")
    if not req.description or not req.description.strip():
        raise MemoryLabError("description is empty: say what this run changed")
    if len(req.description) > MAX_DESCRIPTION:
        raise MemoryLabError(f"description is {len(req.description)} characters; keep it under {MAX_DESCRIPTION}")
    if req.threshold is not None and not 0 < req.threshold <= 1:
        raise MemoryLabError(f"--threshold must be in (0, 1], got {req.threshold}")


def gather(req: RunRequest) -> RunInputs:
    """Read and validate everything about a run. Raises MemoryLabError; writes nothing."""
    validate_request(req)
    log_text, sidecar, streamed = _read_inputs(req)
    if req.status != "crash" and sidecar is not None and sidecar.get("status") == "crash":
        raise MemoryLabError(
            f"{req.summary_path} says the run crashed ({sidecar.get('error') or 'no error text'}); "
            "log it with --status crash"
        )
    token = _check_tokens(sidecar, log_text, req.summary_path)
    metrics, reported = _metrics_from(sidecar, log_text)
    if req.watched is not None:  # stopped early (docs/early_abort.md): a discard that never reached eval
        metrics = {**req.watched, **metrics}
    else:
        _validate_metrics(req.status, metrics, reported)
    if req.status == "crash" or req.watched is not None:
        metrics["val_bpb"] = None
    error = _crash_error(req, sidecar, log_text) if req.status == "crash" else None
    info = {k: sidecar[k] for k in SIDECAR_INFO_KEYS if sidecar and sidecar.get(k) is not None}
    seed = sidecar.get("seed") if sidecar and isinstance(sidecar.get("seed"), int) else None
    if seed is None and log_text:
        seed = logparse.find_seed(log_text)
    prov, fingerprint, signature, patch = code_provenance(req.cwd, req.description)
    contention = sidecar.get("contention") if sidecar and isinstance(sidecar.get("contention"), dict) else {}
    return RunInputs(req, metrics, info, error, token, seed, prov, fingerprint, signature, patch, log_text,
                     setup_of(sidecar), _plain(contention), streamed)


def _plain(data: dict) -> dict:
    """The scalar (and short list) entries of a sidecar object: what a record may carry."""
    return {k: v for k, v in data.items() if isinstance(k, str) and len(k) <= 64
            and (isinstance(v, (int, float, str, bool)) or (isinstance(v, list) and len(v) <= 16))}


def code_provenance(cwd: Path, description: str) -> tuple[dict, str | None, list[dict], str]:
    """Git provenance, train.py fingerprint, change signature and patch (parent → commit)."""
    prov = gitinfo.provenance(cwd)
    root = gitinfo.repo_root(cwd)
    text_facts = changes.text_changes(description)
    if not prov.get("commit") or root is None:
        warn("not inside a git repository: branch/commit/parent are null and no train.py patch is archived")
        source = _read_optional(cwd / TRAIN_FILE)
        fingerprint = changes.code_fingerprint(source) if source is not None else None
        return prov, fingerprint, changes.merge_changes([], text_facts), ""
    commit, parent = prov["commit"], prov.get("parent_commit")
    current = gitinfo.working_file(root, TRAIN_FILE)
    if current is None:
        current = gitinfo.file_at(root, commit, TRAIN_FILE)
    before = gitinfo.file_at(root, parent, TRAIN_FILE) if parent else None
    fingerprint = changes.code_fingerprint(current) if current is not None else None
    # A root commit has no parent to differ from: it is a starting point, not a change.
    diff_facts = changes.diff_constants(before, current) if current is not None and before is not None else []
    patch = gitinfo.diff_patch(root, parent, commit, TRAIN_FILE) if parent else gitinfo.diff_patch(
        root, None, commit, TRAIN_FILE)
    if prov.get("dirty"):
        patch += "\n# uncommitted changes to train.py at log time (HEAD → working tree):\n"
        patch += gitinfo.working_diff(root, TRAIN_FILE)
    return prov, fingerprint, changes.merge_changes(diff_facts, text_facts), patch


def _read_optional(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def allocate_run_id(store: Store, history: JournalIndex, commit: str | None, now: datetime) -> str:
    """``<UTC stamp>-<short commit>``, suffixed ``-2``, ``-3`` ... when taken (mkdir is the arbiter)."""
    base = f"{utc_stamp(now)}-{(commit or 'nogit')[:7]}"
    store.inside(store.runs_dir)
    for n in range(1, 10_000):
        run_id = base if n == 1 else f"{base}-{n}"
        if history.has_run_id(run_id):
            continue
        try:
            (store.runs_dir / run_id).mkdir()
        except FileExistsError:
            continue
        return run_id
    raise MemoryLabError(f"could not allocate a run id for {base}")  # pragma: no cover


def build_record(inputs: RunInputs, run_id: str, now: datetime) -> dict:
    """The ledger record (without novelty verdict and packet, which need the history)."""
    req, prov = inputs.request, inputs.provenance
    record = {
        "schema_version": SCHEMA_VERSION,
        "record_type": "run",
        "run_id": run_id,
        "timestamp_utc": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "branch": prov.get("branch"),
        "commit": prov.get("commit"),
        "parent_commit": prov.get("parent_commit"),
        "family": req.family or None,
        "status": req.status,
        "mode": req.mode,
        "description": req.description.strip(),
        "hypothesis": req.hypothesis or None,
        "tags": list(req.tags),
        "notes": req.notes or None,
        "metrics": {**inputs.metrics, **inputs.info},
        "error": inputs.error,
        "artifacts": {},
        "code_fingerprint": inputs.code_fingerprint,
        "change_signature": inputs.change_signature,
        "categories": list(categories.classify(req.description, req.tags, inputs.change_signature)),
        "run_token": inputs.run_token,
        "seed": inputs.seed,
        "source": "native",
        "host": os.uname().nodename,
        "setup": inputs.setup or None,
        "contention": inputs.contention or None,
    }
    record.update(req.extra)
    return record


def assess(record: dict, history: JournalIndex) -> None:
    """Set the record's arena, validity (with its causes) and role from the history before it.

    The arena comes from the run's setup (else the newest native run's); validity compares its
    throughput with the arena's newest valid runs; a run whose arena has no champion yet is that
    arena's baseline (docs/evidence.md).
    """
    arena = record.get("arena") or arena_of(record, history)
    record["arena"] = arena
    peers = [r.extra.get("throughput") or {} for r in
             history.runs.where("arena = ? AND validity = 'valid'", (arena,), limit=PEERS)]
    setup = record.get("setup") or {}
    verdict = judge(setup.get("profile"), record.get("metrics") or {}, record.get("contention"), peers,
                    clock=setup.get("budget_clock"))
    if record.get("status") != "crash":
        record["validity"] = verdict.validity
        if verdict.causes:
            record["confound"] = verdict.to_dict()
    else:
        record["validity"] = "unknown"
    if not record.get("role"):
        draft = run_from_record(record, len(history.runs), -1)
        role = draft.role
        if role == "idea" and record.get("status") != "crash" and \
                champion(history.registry.notable_in(arena), history.events) is None:
            role = "baseline"
        record["role"] = role


def record_train_defaults(record: dict, history: JournalIndex) -> None:
    """On an arena's first run, record the operating point the arena starts from (``train_defaults``):
    train.py's constants, for the run's profile, at the run's commit. The novelty fold seeds the arena
    from this field (``novelty.guard.defaults_for``), so the index is derived from the journal alone:
    a rebuild in another checkout, a shallow clone or after a rebase gives the same verdicts."""
    commit = record.get("commit")
    if not commit or history.arena_count(record["arena"]):
        return
    source = gitinfo.file_at(history.store.workspace, commit, TRAIN_FILE)
    profile = (record.get("metrics") or {}).get("profile")
    defaults = changes.train_defaults(source, profile if isinstance(profile, str) else None) if source else {}
    kept = {k: v for k, v in defaults.items() if len(k) <= MAX_NAME and (not isinstance(v, str) or len(v) <= MAX_NAME)}
    if kept:
        record["train_defaults"] = kept


def never_kept_when_confounded(record: dict) -> None:
    """A confounded run is never kept (docs/evidence.md): a ``keep`` asked for one (``log --status keep``,
    ``run --status keep``, a replicate of a kept run) is recorded as ``discard``, and says so."""
    if record.get("validity") != "confounded" or record.get("status") != "keep":
        return
    record["status"] = "discard"
    if not record.get("replicate_of"):
        warn(f"{record['run_id']} is confounded (its training was starved): recorded as discard, not keep; it is "
             "no evidence either way: re-run the same commit on a quiet machine")


def arena_of(record: dict, history: JournalIndex) -> str:
    """A native run's arena: its setup's key; a key missing a comparability field (a crash sidecar written
    before train.py knew its eval tokens, an older train.py) joins the arena of the branch's (else the
    store's) latest runs that it fits, rather than inventing an arena of its own (docs/evidence.md)."""
    setup = record.get("setup") or {}
    key = arena_key(setup)
    if key is None or not is_partial(key):
        return native_arena(setup, history.newest_arena(native=True))
    return next((full for full in history.recent_arenas(record.get("branch")) if completes(key, full)), key)


def _planned_artifacts(run_id: str, inputs: RunInputs) -> dict:
    """Where the run's files go under runs/<run_id>/ (the record names them; they are written after it)."""
    req = inputs.request
    artifacts = {}
    if not req.skip_archive:
        if req.log_path:
            artifacts["run_log"] = f"runs/{run_id}/run.log"
        if req.summary_path:
            artifacts["summary"] = f"runs/{run_id}/summary.json"
        if inputs.patch:
            artifacts["train_patch"] = f"runs/{run_id}/train.patch"
    artifacts["decision_packet"] = f"runs/{run_id}/decision_packet.json"
    artifacts["decision_packet_md"] = f"runs/{run_id}/decision_packet.md"
    return artifacts


def _archive(store: Store, run_id: str, inputs: RunInputs, packet: dict, packet_md: str) -> bool:
    """Write the run's archive (run.log, summary.json, train.patch, decision packet) after the append.

    These are copies of what the record holds or points at: a failure is a warning naming the
    recorded run. Returns whether every file was written.
    """
    req = inputs.request
    folder = store.runs_dir / run_id
    writes: list[tuple[str, Callable[[], object]]] = []
    for name, source in (("run.log", req.log_path), ("summary.json", req.summary_path)):
        if not req.skip_archive and source:
            writes.append((name, _copier(source, folder / name, inputs.streamed.get(name))))
    if not req.skip_archive and inputs.patch:
        writes.append(("train.patch", lambda: atomic_write_text(folder / "train.patch", inputs.patch)))
    writes.append(("decision_packet.json", lambda: atomic_write_json(folder / "decision_packet.json", packet)))
    writes.append(("decision_packet.md", lambda: atomic_write_text(folder / "decision_packet.md", packet_md)))
    done = [write_derived(str(folder / name), write, f"run {run_id} is recorded") for name, write in writes]
    return all(done)


def _copier(source: Path, target: Path, streamed: bytes | None) -> Callable[[], object]:
    """What archives one input: a copy of the file, or the bytes already read from its pipe."""
    if streamed is not None:
        return lambda: atomic_write_bytes(target, streamed)
    return lambda: shutil.copyfile(source, target)


def artifact_files(inputs: RunInputs, packet: dict, packet_md: str) -> dict[str, bytes]:
    """The run's archive as bytes by file name: what travels with the record in a shared (PostgreSQL)
    journal, so ``show`` on any host has it. An unreadable input file is left out (the archive warns)."""
    req = inputs.request
    files: dict[str, bytes] = {}
    if not req.skip_archive:
        for name, source in (("run.log", req.log_path), ("summary.json", req.summary_path)):
            if name in inputs.streamed:
                files[name] = inputs.streamed[name]
            elif source:
                with contextlib.suppress(OSError):
                    files[name] = Path(source).read_bytes()
        if inputs.patch:
            files["train.patch"] = inputs.patch.encode("utf-8", "surrogateescape")
    files["decision_packet.json"] = (json.dumps(packet, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    files["decision_packet.md"] = packet_md.encode("utf-8", "surrogateescape")
    return files


def archived(store: Store, record: dict) -> bool:
    """Whether every file the record's ``artifacts`` name exists in the store (its archive was written)."""
    return all((store.root / rel).is_file() for rel in (record.get("artifacts") or {}).values())


def proposal_for(record: dict) -> Proposal:
    """The novelty question a record asks of the history before it."""
    return Proposal(
        description=record["description"],
        tags=tuple(record.get("tags") or ()),
        family=record.get("family"),
        hypothesis=record.get("hypothesis"),
        code_fingerprints=(record["code_fingerprint"],) if record.get("code_fingerprint") else (),
        changes=tuple(record.get("change_signature") or ()),
    )


RecordHook = Callable[[dict, JournalIndex], list[dict]]
TOKEN_SCAN = 1000  # runs of the same commit searched for an earlier record of the same run_token


class AlreadyLogged(Exception):
    """The run (its ``run_token``) is in the journal already: ``log`` of the same files twice records one run."""

    def __init__(self, run: Run):
        super().__init__(run.run_id)
        self.run = run


def logged_before(history: JournalIndex, inputs: RunInputs) -> Run | None:
    """The run already recorded with this run's ``run_token`` (train.py writes a fresh one per run), if any."""
    token = inputs.run_token
    if not token:
        return None
    commit = inputs.provenance.get("commit")
    where = ("commit_sha = ?", (commit,)) if commit else ("commit_sha IS NULL", ())  # "=" uses the index
    same_commit = history.runs.where(*where, limit=TOKEN_SCAN)
    return next((run for run in same_commit if run.extra.get("run_token") == token), None)


def commit_run(store: Store, history: JournalIndex, inputs: RunInputs, now: datetime | None = None,
               hook: RecordHook | None = None) -> tuple[dict, Run]:
    """Classify, decide and append one run, then write its derived files. Returns the record and its Run.

    Everything that can fail for a reason the user must fix happens before the append, under the lock
    (id allocation, the hook, novelty, the decision); if it fails, the run's folder is removed and
    nothing is recorded. After the append, the registry snapshot, the run archive and the results.tsv
    row are derived files: a failure to write one is a warning that says the run is recorded. Ctrl-C from
    the append on waits until they are written (``interrupts_deferred``), then reports the run recorded.

    A run whose ``run_token`` is already in the journal raises :class:`AlreadyLogged` (nothing written).

    ``hook(record, history)`` runs under the lock on the fresh history before anything is written: it
    may set fields (``run`` decides ``status`` and ``promotion`` there) and returns further records
    (champion events) to append right after the run's, in the same write.
    """
    now = now or datetime.now(timezone.utc)
    store.ensure()
    with contextlib.ExitStack() as recorded:
        with store.lock():
            history.refresh(locked=True)
            earlier = logged_before(history, inputs)
            if earlier is not None:
                raise AlreadyLogged(earlier)
            run_id = allocate_run_id(store, history, inputs.provenance.get("commit"), now)
            try:
                record, followers, draft = history.healing(
                    lambda: _decided_record(history, inputs, run_id, now, hook))
                packet_md = packet_markdown(record["decision_packet"], draft)
                carried = {run_id: artifact_files(inputs, record["decision_packet"], packet_md)} \
                    if store.journal.carries_artifacts else None
                recorded.enter_context(interrupts_deferred())  # from the append on, Ctrl-C waits for the files
                store.append_many_locked([record, *followers], carried)
            except BaseException:
                shutil.rmtree(store.runs_dir / run_id, ignore_errors=True)
                raise
            history.refresh(locked=True)
            store.write_registry(lambda: history.healing(history.snapshot), f"run {run_id} is recorded")
        run = history.healing(lambda: history.get(run_id)) or draft
        _archive(store, run_id, inputs, record["decision_packet"], packet_md)
        write_derived(str(store.tsv_path), lambda: store.append_tsv_row(tsv_row(record)),
                      f"run {run_id} is recorded", "rebuild it with 'memorylab export -f tsv -o results.tsv'")
    return record, run


def _decided_record(history: JournalIndex, inputs: RunInputs, run_id: str, now: datetime,
                    hook: RecordHook | None) -> tuple[dict, list[dict], Run]:
    """The run's record with its novelty verdict and decision packet, the hook's follower records, and
    the draft Run the packet was decided on. Pure: writes nothing."""
    req = inputs.request
    record = build_record(inputs, run_id, now)
    assess(record, history)
    record_train_defaults(record, history)
    followers = hook(record, history) if hook is not None else []
    never_kept_when_confounded(record)
    kwargs = {"mode": req.mode, "threshold": req.threshold} if req.threshold else {"mode": req.mode}
    novelty = history.novelty.classify(proposal_for(record), history.runs, **kwargs).to_dict()
    record["novelty_guard"] = novelty
    record["artifacts"] = _planned_artifacts(run_id, inputs)
    draft = run_from_record(record, len(history.runs), -1)
    draft.idea_key = idea_key(draft)
    record["decision_packet"] = decide(draft, history.runs, novelty, history.events, history.registry,
                                       store_policy(history.store.root))
    return record, followers, draft

