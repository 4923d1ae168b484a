"""Decision packets: what to do after each run, and why.

The rules are an ordered table; the first rule whose condition holds decides ``next_action`` and
``priority``. They are written for the overnight agent (act on it now) and the morning reader (why).

====  ========================================================  ===================  ========
rule  condition                                                 next_action          priority
====  ========================================================  ===================  ========
C1    crash that repeats a known crash (same idea, or the        abandon              medium
      novelty guard matched an earlier crash)
C2    crash with a fixable error kind (syntax, import, shape,    fix_and_retry        high
      assertion, OOM: a code edit fixes it)
C3    any other crash (timeout, NaN, unknown)                    investigate_crash    high
V1    a confounded run (starved training, evidence/validity.py)  retry                high
R1    replicate run whose replicates confirm the champion         promote              medium
R2    replicate run showing the kept run was noise (significantly  abandon              high
      worse than the champion it displaced): roll back
R3    any other replicate run                                    branch_followup      low
K1    keep, first kept run (baseline)                            promote              high
KN    keep that beats the prior champion inside the noise        replicate            high
K2    keep that beats the prior champion                         promote              high
K3    keep, not champion, novel idea                             replicate            medium
K4    keep, not champion                                         branch_followup      low
D1    discard that repeats a known failure                       abandon              high
D2    discard within the noise band of the champion              retry                medium
D3    any other discard                                          abandon              low
====  ========================================================  ===================  ========

The noise band (``NOISE_BAND`` = 0.002 val_bpb) is the typical seed-to-seed spread of a 5-minute run.
"Inside the noise" (KN) is the promotion policy's call when the run carries a ``promotion`` decision
(``memorylab run``: its gain over the champion's reference is under ``replicate_below`` sigma); for
runs logged by hand it is a gain under ``replicate_below`` times the default noise level (see
docs/promotion.md). Rules R1-R3 apply to non-crashed runs of ``memorylab replicate``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..ingest.logparse import is_fixable_error
from ..ledger.model import Event, Run, fmt_number
from .promotion import DEFAULT_NOISE, PromotionPolicy
from .registry import RegistryFold, champion, run_brief

NOISE_BAND = 0.002
LOGGED_NOISE_GAIN = PromotionPolicy().replicate_below * DEFAULT_NOISE  # KN for runs without a promotion decision

HYPOTHESIS_STATUS = {
    "promote": "supported",
    "replicate": "inconclusive",
    "branch_followup": "inconclusive",
    "retry": "inconclusive",
    "abandon": "refuted",
    "fix_and_retry": "untested",
    "investigate_crash": "untested",
}


def _repeats_crash(run: Run, prior: Sequence[Run], novelty: dict, fold: RegistryFold) -> Run | None:
    """An earlier crash this crash repeats: the guard's match was a crash, or the same idea key crashed."""
    if novelty.get("classification") in ("repeat_failure", "duplicate_run"):
        for match in novelty.get("matches") or []:
            index = match.get("index")
            earlier = prior[index] if isinstance(index, int) and 0 <= index < len(prior) else None
            if earlier is not None and earlier.status == "crash" and earlier.run_id == match.get("run_id"):
                return earlier
    return fold.crash_like(run.idea_key, run.arena) if run.idea_key else None


def _first_failure_match(novelty: dict) -> dict | None:
    if novelty.get("classification") != "repeat_failure":
        return None
    matches = novelty.get("matches") or []
    return matches[0] if matches else None


def _crash_rule(run: Run, prior: Sequence[Run], novelty: dict, fold: RegistryFold) -> tuple[str, str, str, str]:
    repeated = _repeats_crash(run, prior, novelty, fold)
    kind = run.error_kind or "unknown"
    if repeated is not None:
        return "C1", "abandon", "medium", (
            f"crashed again like {repeated.run_id} ({repeated.error_summary or repeated.description}); "
            "this idea keeps failing: drop it"
        )
    if is_fixable_error(run.error_kind):
        return "C2", "fix_and_retry", "high", f"first crash of this idea with a fixable {kind} error: fix and rerun"
    return "C3", "investigate_crash", "high", f"crash ({kind}) without a known fix: read the log tail"


def _promotion(run: Run) -> dict | None:
    promo = run.extra.get("promotion")
    return promo if isinstance(promo, dict) else None


def _inside_noise(run: Run, delta: float) -> bool:
    """A kept gain too small to build on without replicates (the promotion policy's call when it made one)."""
    promo = _promotion(run)
    if promo is not None and promo.get("accepted"):
        return promo.get("recommendation") == "replicate"
    return -delta < LOGGED_NOISE_GAIN


def _replicate_rule(run: Run) -> tuple[str, str, str, str]:
    promo = _promotion(run) or {}
    metrics = promo.get("metrics") or {}
    if promo.get("recommendation") == "rollback":
        return "R2", "abandon", "high", (
            f"replicates of {run.replicate_of} say the keep was noise: roll back to {promo.get('rollback_to')} "
            f"(memorylab champion --rollback {promo.get('rollback_to')} --reason ...)")
    mean, n = metrics.get("val_bpb_mean"), metrics.get("n")
    measured = f"mean {mean:.6f} over {n} run(s)" if isinstance(mean, (int, float)) else "measured"
    if promo.get("level") == "confirmed":
        return "R1", "promote", "medium", f"replicates of {run.replicate_of} confirm it ({measured})"
    return "R3", "branch_followup", "low", f"replicate of {run.replicate_of}: {measured}, not confirmed yet"


def _confounded_rule(run: Run) -> tuple[str, str, str, str]:
    """V1: a starved run measured the machine, not the idea: re-run it (evidence/validity.py)."""
    causes = "; ".join(run.extra.get("confound") or []) or "its training was starved"
    return "V1", "retry", "high", f"confounded, not evidence: {causes}; re-run it on a quiet machine"


def _keep_rule(run: Run, prior_champ: Run | None, novelty: dict) -> tuple[str, str, str, str]:
    if prior_champ is None:
        return "K1", "promote", "high", "first kept run: it is the baseline champion"
    delta, reference = run.val_bpb - prior_champ.val_bpb, prior_champ.val_bpb
    metrics = (_promotion(run) or {}).get("metrics") or {}
    if (_promotion(run) or {}).get("accepted") and metrics.get("gain") is not None:
        delta, reference = -metrics["gain"], metrics.get("reference_val_bpb", reference)  # vs the reference mean
    if delta < 0 and _inside_noise(run, delta):
        return "KN", "replicate", "high", (
            f"beats champion {prior_champ.run_id} by only {-delta:.6f} val_bpb, inside the noise: replicate it "
            f"(memorylab replicate {run.run_id}) before building on it"
        )
    if delta < 0:
        return "K2", "promote", "high", (
            f"beats champion {prior_champ.run_id} by {-delta:.6f} val_bpb ({reference:.6f} → {run.val_bpb:.6f})"
        )
    if novelty.get("classification") == "novel":
        return "K3", "replicate", "medium", (
            f"kept but {delta:+.6f} vs champion {prior_champ.run_id}; a novel idea: replicate before building on it"
        )
    return "K4", "branch_followup", "low", f"kept but {delta:+.6f} vs champion; follow up on a branch if promising"


def _discard_rule(run: Run, prior_champ: Run | None, novelty: dict) -> tuple[str, str, str, str]:
    match = _first_failure_match(novelty)
    if match is not None:
        return "D1", "abandon", "high", (
            f"repeats failed run {match.get('run_id')} ({match.get('reason') or match.get('description')}): "
            "stop spending runs on it"
        )
    if prior_champ is not None and run.val_bpb is not None and run.val_bpb - prior_champ.val_bpb <= NOISE_BAND:
        return "D2", "retry", "medium", (
            f"within the noise band ({run.val_bpb - prior_champ.val_bpb:+.6f} vs champion, band {NOISE_BAND}): "
            "a variation or a combination may win"
        )
    return "D3", "abandon", "low", "worse than the champion beyond noise: move on"


def decide(run: Run, prior: Sequence[Run], novelty: dict, events: Sequence[Event] = (),
           fold: RegistryFold | None = None) -> dict:
    """The decision packet for ``run`` given the runs (and champion events) logged before it.

    ``fold``: the :class:`RegistryFold` of ``prior`` when the caller keeps one (the history does),
    so that no rule has to scan every earlier run.
    """
    fold = fold if fold is not None else RegistryFold.of(prior)
    arena_runs = fold.notable_in(run.arena)  # only the run's arena is comparable with it
    prior_champ = champion(arena_runs, events)
    if run.status == "crash":
        rule, action, priority, rationale = _crash_rule(run, prior, novelty, fold)
    elif run.validity == "confounded":
        rule, action, priority, rationale = _confounded_rule(run)
    elif run.replicate_of:
        rule, action, priority, rationale = _replicate_rule(run)
    elif run.status == "keep":
        rule, action, priority, rationale = _keep_rule(run, prior_champ, novelty)
    else:
        rule, action, priority, rationale = _discard_rule(run, prior_champ, novelty)
    promo = _promotion(run)
    if promo is not None and promo.get("accepted") and run.status == "keep" and not run.replicate_of:
        current = run  # the promotion policy made it champion (its event follows the record)
    else:
        current = champion([*arena_runs, run], events)
    comparison = {
        "prior_champion": run_brief(prior_champ),
        "current_champion": run_brief(current),
        "is_new_champion": current is run,
        "delta_val_bpb": _delta(run.val_bpb, prior_champ.val_bpb if prior_champ else None),
        "delta_memory_gb": _delta(run.memory_gb, prior_champ.memory_gb if prior_champ else None),
    }
    packet = {
        "run_id": run.run_id,
        "status": run.status,
        "next_action": action,
        "priority": priority,
        "rule": rule,
        "rationale": rationale,
        "hypothesis_status": "untested" if run.status == "crash" else HYPOTHESIS_STATUS[action],
        "comparison": comparison,
        "novelty": {
            "classification": novelty.get("classification"),
            "decision": novelty.get("decision"),
            "matched_runs": [m.get("run_id") for m in novelty.get("matches") or []][:3],
            "reasons": (novelty.get("reasons") or [])[:3],
        },
    }
    if run.status == "crash":
        packet["error"] = {"summary": run.error_summary, "kind": run.error_kind}
    return packet


def _delta(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None:
        return None
    return round(value - reference, 6)


def one_line(packet: dict) -> str:
    """A single line for terminals and agents: ``promote (high): beats champion ...``."""
    return f"{packet['next_action']} ({packet['priority']}): {packet['rationale']}"


def packet_markdown(packet: dict, run: Run) -> str:
    """The packet as a short markdown document (``runs/<run_id>/decision_packet.md``)."""
    comp = packet["comparison"]
    prior = comp.get("prior_champion") or {}
    lines = [
        f"# Decision packet: {run.run_id}",
        "",
        f"- **Next action:** {packet['next_action']} (priority {packet['priority']}, rule {packet['rule']})",
        f"- **Rationale:** {packet['rationale']}",
        f"- **Hypothesis:** {packet['hypothesis_status']}",
        f"- **Status:** {run.status}; val_bpb {_fmt(run.val_bpb)}; memory {_fmt(run.memory_gb, 1)} GB",
        f"- **Description:** {run.description}",
        f"- **Prior champion:** {prior.get('run_id') or 'none'} ({_fmt(prior.get('val_bpb'))}); "
        f"delta val_bpb {_fmt(comp.get('delta_val_bpb'), signed=True)}, "
        f"delta memory {_fmt(comp.get('delta_memory_gb'), 2, signed=True)} GB",
        f"- **New champion:** {'yes' if comp.get('is_new_champion') else 'no'}",
        f"- **Novelty:** {packet['novelty']['classification']} ({packet['novelty']['decision']})",
    ]
    for reason in packet["novelty"].get("reasons") or []:
        lines.append(f"  - {reason}")
    if packet.get("error"):
        lines.append(f"- **Error ({packet['error'].get('kind') or 'unknown'}):** {packet['error'].get('summary')}")
    return "\n".join(lines) + "\n"


def _fmt(value: float | None, digits: int = 6, signed: bool = False) -> str:
    return fmt_number(value, digits, signed, missing="n/a")
