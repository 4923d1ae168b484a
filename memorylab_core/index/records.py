"""A journal record reduced to a :class:`~memorylab_core.ledger.model.Run`: what every fold and view reads.

The reduction applies the evidence rules (the record's arena, role and validity) and the novelty
layer's baseline test to the record's own fields, so it sits above both; the ``Run`` it builds is a
plain ledger-layer value that every layer may read.
"""

from __future__ import annotations

from ..evidence.arenas import record_arena
from ..evidence.logparse import stated_kind
from ..evidence.roles import role_of
from ..evidence.validity import VALIDITIES, throughput_facts
from ..ledger.model import Run, finite_float, memory_gb_of, parse_utc
from ..novelty.textnorm import is_baseline


def run_from_record(record: dict, index: int, offset: int) -> Run:
    """Reduce a full ledger record to a :class:`Run`. Tolerates missing and mistyped fields."""
    get = record.get  # every journal line passes here: one lookup per field
    metrics, error, novelty, packet = (value if isinstance(value, dict) else {} for value in (
        get("metrics"), get("error"), get("novelty_guard"), get("decision_packet")))
    mget = metrics.get
    memory_gb = memory_gb_of(metrics)
    arena = record_arena(record)
    description = str(get("description") or "")
    timestamp, seed, validity = get("timestamp_utc"), get("seed"), get("validity")
    return Run(
        index=index,
        offset=offset,
        run_id=str(get("run_id") or f"line-{offset}"),
        timestamp=timestamp,
        ts=parse_utc(timestamp),
        status=str(get("status") or "discard"),
        val_bpb=finite_float(mget("val_bpb")),
        memory_gb=memory_gb,
        description=description,
        tags=tuple(str(t) for t in (get("tags") or []) if t),
        family=get("family") or None,
        hypothesis=get("hypothesis") or None,
        branch=get("branch") or None,
        commit=get("commit") or None,
        parent_commit=get("parent_commit") or None,
        code_fingerprint=get("code_fingerprint") or None,
        change_signature=tuple(c for c in (get("change_signature") or []) if isinstance(c, dict)),
        categories=tuple(str(c) for c in (get("categories") or [])),
        error_summary=error.get("summary") or None,
        error_kind=stated_kind(error) if error else None,
        novelty_class=novelty.get("classification") or None,
        next_action=packet.get("next_action") or None,
        source=str(get("source") or "native"),
        replicate_of=get("replicate_of") or None,
        seed=seed if isinstance(seed, int) else None,
        extra=_extra(record, metrics, packet, arena),
        arena=arena,
        role=role_of(record, is_baseline(description)),
        validity=validity if validity in VALIDITIES else "unknown",
    )


def _extra(record: dict, metrics: dict, packet: dict, arena: str) -> dict:
    """The small, view-specific fields a :class:`Run` carries in ``extra`` (each says who reads it)."""
    get, mget = record.get, metrics.get
    extra = {key: record[key] for key in ("original_status", "import_key", "promotion", "seed_env", "early_abort")
             if key in record}
    seconds = finite_float(mget("training_seconds"))
    if seconds is not None:  # GPU time of the run (research.progress: velocity per GPU-hour)
        extra["training_seconds"] = seconds
    defaults = get("train_defaults")
    if isinstance(defaults, dict) and defaults:  # an arena's starting operating point (novelty.defaults_for)
        extra["train_defaults"] = defaults
    contention = get("contention")
    facts = throughput_facts(metrics, contention if isinstance(contention, dict) else None)
    if facts:  # what later runs of the arena compare their throughput with (evidence/validity.py)
        extra["throughput"] = facts
    priority, verdict, rule = packet.get("priority"), packet.get("verdict"), packet.get("rule")
    if isinstance(priority, str):  # the decision queue's order (render.report)
        extra["priority"] = priority[:16]
    if isinstance(rule, str):  # MemoryLab's rule (another tool's packet has none: policy.decisions.queued)
        extra["rule"] = rule[:16]
    if isinstance(verdict, dict):  # the promotion policy's reference, gain and sigma (policy.verdict)
        extra["verdict"] = verdict
    token = get("run_token")
    if isinstance(token, str) and token:  # log is idempotent on it (ingest.runs.logged_before)
        extra["run_token"] = token[:128]
    confound = get("confound")
    if isinstance(confound, dict):
        extra["confound"] = confound.get("causes") or []
    extra["arena"] = arena  # the novelty guard's operating points read it (novelty.context_of)
    device_mb = finite_float(mget("device_memory_mb"))
    if device_mb:  # the accelerator's capacity, from train.py's sidecar (health: memory near capacity)
        extra["device_memory_mb"] = device_mb
    return extra
