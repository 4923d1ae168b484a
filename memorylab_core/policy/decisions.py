"""Decision packets: what to do after each run, and why.

The rules are an ordered table; the first rule whose condition holds decides ``next_action`` and
``priority``. They are written for the overnight agent (act on it now) and the morning reader (why).

====  ========================================================  ===================  ========
rule  condition                                                 next_action          priority
====  ========================================================  ===================  ========
C1    crash that repeats a known crash (same idea, or the        abandon              medium
      novelty guard matched an earlier crash; never an ``infra``
      crash: the machine's fault is no evidence)
C2    crash with a fixable error kind (syntax, import, shape,    fix_and_retry        high
      assertion, OOM: a code edit fixes it) -- git ``stay``: fix
      it in the same commit and re-run
CK    the third run in a row of one code that a signal           fix_and_retry        high
      MemoryLab did not send ended (the kernel's OOM killer, most
      often): lower its memory use in the same commit (git stay)
CM    any other crash the machine or the setup caused (``infra``:  retry                high
      a kill, the prepared data missing) -- git ``stay``: re-run
      the same commit unchanged; no evidence either way
C3    any other crash (timeout, NaN, unknown)                    investigate_crash    high
V1    a confounded run (starved training, evidence/validity.py)  retry                high
      -- git ``stay``: re-run the same commit, unchanged
R1    replicate run whose replicates confirm the champion         promote              medium
R2    replicate run showing the kept run was noise (significantly  abandon              high
      worse than the champion it displaced): roll back
R3    any other replicate run                                    branch_followup      low
A1    a discard stopped early: its loss curve could not catch    abandon              medium
      the champion's reference (policy/early_abort.py)
K1    keep, first kept run (baseline)                            promote              high
KN    keep that beats the prior champion inside the noise        replicate            high
K2    keep that beats the prior champion                         promote              high
K3    keep, not champion, novel idea                             replicate            medium
K4    keep, not champion                                         branch_followup      low
D0    discard with nothing kept in its arena to compare against  retry                medium
D1    discard that repeats a known failure                       abandon              high
D2    discard within the noise band of the champion: a           branch_followup      medium
      variation may win (never ``retry``: that re-runs a commit)
D3    any other discard                                          abandon              low
D4    discard that beats the champion's reference (an override)  replicate            medium
====  ========================================================  ===================  ========

Every comparison is the promotion policy's own (:mod:`.verdict`): the gain over the champion's
*reference* (the mean of the champion code's runs in the run's arena, with n) read against the
noise sigma the policy measured (its ``default_noise`` only while the arena has no replicates). The
packet stores these numbers as ``verdict``; every view shows them from there. "Inside the noise" (KN)
is a kept gain under ``replicate_below`` sigma; "within the noise" (D2) is a discard less than one
sigma worse than the reference. ``NOISE_BAND`` (0.002 val_bpb, the typical seed-to-seed spread of a
5-minute run) is only a scale for the research views' scores (insights, mistakes), never a rule here.
Rules R1-R3 apply to non-crashed runs of ``memorylab replicate``.

Every packet also says what to do with git (``git``, :func:`git_action`): ``advance`` after a keep
(the commit stays), ``reset`` after a discard, an ``abandon`` crash or an ``investigate_crash``
(``git reset --hard HEAD~1``: the idea failed, or nobody knows how to fix it), and ``stay`` when the
commit is neither kept nor given up: after a confounded run (it measured nothing: re-run it unchanged,
``run --rerun-confounded`` does so at once) and after a ``fix_and_retry`` crash (a plain bug: fix it
in the same commit, ``git commit -a --amend --no-edit``, and re-run). The next valid run decides.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..evidence.crashes import crash_class, crash_kind, is_fixable
from ..ledger.model import GAIN_SIGN, Event, Run, fmt_number, plural
from .promotion import PromotionPolicy
from .registry import RegistryFold, champion, code_key, run_brief
from .verdict import judge, verdict_phrase

NOISE_BAND = 0.002  # a scale for research scores (insights, mistakes); the rules use the verdict's sigma

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
    """An earlier crash this crash repeats: the guard's match was a crash, or the same idea key crashed. A crash
    the machine caused (OOM-killed, SIGKILL: class ``infra``) is no evidence about the idea, so none repeats it."""
    if novelty.get("classification") in ("repeat_failure", "duplicate_run"):
        for match in novelty.get("matches") or []:
            index = match.get("index")
            earlier = prior[index] if isinstance(index, int) and 0 <= index < len(prior) else None
            if earlier is not None and earlier.status == "crash" and earlier.run_id == match.get("run_id") \
                    and not _machine_crash(earlier):
                return earlier
    like = fold.crash_like(run.idea_key, run.arena) if run.idea_key else None
    return like if like is not None and not _machine_crash(like) else None


MACHINE_KILLS_TO_FIX = 3  # runs of one code the machine killed in a row before "re-run it unchanged" stops


def _killed_in_a_row(run: Run, prior: Sequence[Run]) -> int:
    """How many runs of ``run``'s code in a row, ending with ``run``, a signal MemoryLab did not send ended."""
    key, kills = code_key(run), 1
    for earlier in reversed(prior):
        if code_key(earlier) != key:
            continue
        if earlier.status != "crash" or crash_kind(earlier.error_kind, earlier.error_summary) != "infra":
            break
        kills += 1
    return kills


def _machine_crash(run: Run) -> bool:
    return crash_class(crash_kind(run.error_kind, run.error_summary) or "unknown") == "infra"


def _first_failure_match(novelty: dict) -> dict | None:
    if novelty.get("classification") != "repeat_failure":
        return None
    matches = novelty.get("matches") or []
    return matches[0] if matches else None


def _crash_rule(run: Run, prior: Sequence[Run], novelty: dict, fold: RegistryFold) -> tuple[str, str, str, str]:
    kind = crash_kind(run.error_kind, run.error_summary) or "unknown"
    # A crash the machine or the setup caused says nothing about the code, whatever crashed before it: CM.
    repeated = None if crash_class(kind) == "infra" else _repeats_crash(run, prior, novelty, fold)
    if repeated is not None:
        return "C1", "abandon", "medium", (
            f"crashed again like {repeated.run_id} ({repeated.error_summary or repeated.description}); "
            "this idea keeps failing: drop it"
        )
    if is_fixable(run.error_kind, run.error_summary):
        return "C2", "fix_and_retry", "high", (
            f"first crash of this idea with a fixable {kind} error; git stay: fix it in this commit "
            "(git commit -a --amend --no-edit) and run again; that run decides")
    if kind == "environment":
        return "CM", "retry", "high", (
            "the setup failed (environment: prepared data or tokenizer missing or broken), not the code: no "
            "evidence either way; fix it (python prepare.py), then git stay: re-run this commit unchanged")
    if kind == "infra" and (kills := _killed_in_a_row(run, prior)) >= MACHINE_KILLS_TO_FIX:
        return "CK", "fix_and_retry", "high", (
            f"the machine ended {kills} runs of this code in a row (infra): when it is always this code, its own "
            "memory use is the likely cause (the kernel's OOM killer ends the largest process): lower "
            "DEVICE_BATCH_SIZE (TOTAL_BATCH_SIZE kept), git commit -a --amend --no-edit, and run again; if other "
            "code is killed too, the machine is failing: check it before more runs")
    if crash_class(kind) == "infra":
        return "CM", "retry", "high", (
            f"the machine ended the run ({kind}), not its code: no evidence either way; git stay: re-run this "
            "commit unchanged; that run decides")
    return "C3", "investigate_crash", "high", f"crash ({kind}) without a known fix: read the log tail"


def _promotion(run: Run) -> dict | None:
    promo = run.extra.get("promotion")
    return promo if isinstance(promo, dict) else None


def _inside_noise(run: Run, verdict: dict, policy: PromotionPolicy) -> bool:
    """A kept gain too small to build on without replicates (the promotion policy's call when it made one)."""
    promo = _promotion(run)
    if promo is not None and promo.get("accepted"):
        return promo.get("recommendation") == "replicate"
    return verdict["gain"] < policy.replicate_below * (verdict.get("sigma") or policy.default_noise)


def _below_confirmed(run: Run) -> str:
    """A note for a keep that beats the champion's reference yet is worse than the confirmed champion: the
    champion is an unconfirmed keep whose reference may be lucky (``champion`` shows both)."""
    over = ((_promotion(run) or {}).get("metrics") or {}).get("gain_vs_confirmed")
    if not isinstance(over, (int, float)) or over >= 0:
        return ""
    return (f"; but {over:+.6f} against the confirmed champion: the champion is unconfirmed and its reference may be "
            "lucky (memorylab champion shows both)")


def _replicate_rule(run: Run) -> tuple[str, str, str, str]:
    promo = _promotion(run) or {}
    metrics = promo.get("metrics") or {}
    if promo.get("recommendation") == "rollback":
        return "R2", "abandon", "high", (
            f"replicates of {run.replicate_of} say the keep was noise: roll back to {promo.get('rollback_to')} "
            f"(memorylab champion --rollback {promo.get('rollback_to')} --reason ...)")
    mean, n = metrics.get("val_bpb_mean"), metrics.get("n")
    left_out = ", the discovery run left out" if (metrics.get("sample") or {}).get("dropped") else ""
    measured = f"mean {mean:.6f} over {plural(n, 'run')}{left_out}" if isinstance(mean, (int, float)) else "measured"
    if promo.get("baseline"):  # stored as level "baseline" (before round 3: "confirmed" with this flag)
        return "R3", "branch_followup", "low", (
            f"replicates of the baseline {run.replicate_of}: {measured}; they measure the noise, nothing to confirm")
    if promo.get("level") == "confirmed":
        return "R1", "promote", "medium", f"replicates of {run.replicate_of} confirm it ({measured})"
    return "R3", "branch_followup", "low", f"replicate of {run.replicate_of}: {measured}, not confirmed yet"


def _confounded_rule(run: Run) -> tuple[str, str, str, str]:
    """V1: a starved run measured the machine, not the idea: re-run the same commit (evidence/validity.py)."""
    causes = "; ".join(run.extra.get("confound") or []) or "its training was starved"
    return "V1", "retry", "high", (f"confounded, not evidence: {causes}; git stay: re-run this commit unchanged "
                                   "once the machine is quiet (memorylab run --rerun-confounded); a valid run "
                                   "of it decides")


def git_action(run: Run, action: str) -> str:
    """What the agent does with git after ``run`` whose packet says ``action`` (docs/promotion.md,
    program.md step 6): ``advance`` (kept); ``stay`` (a confounded run: re-run the same commit; a
    ``fix_and_retry`` crash: fix the bug in the same commit and re-run, since resetting would throw away
    the very commit to fix; a crash the machine caused, ``retry``: re-run it unchanged); ``reset`` (a
    discard, or a crash whose idea failed or has no known fix)."""
    if run.status == "keep":
        return "advance"
    if action == "fix_and_retry" or (run.status == "crash" and action == "retry") or \
            (run.status != "crash" and run.validity == "confounded"):
        return "stay"
    return "reset"


GIT_STEPS = {
    "advance": "the commit stays: build on it",
    "reset": "git reset --hard HEAD~1 (back to the last kept commit)",
    "stay": "keep this commit and re-run it unchanged",
    "rollback": "run the next line whole, memorylab champion --rollback ... && git ...: MemoryLab's champion and "
                "the branch go back together",
}
FIX_STEP = "keep this commit: fix the bug in it (git commit -a --amend --no-edit) and run again"


def git_line(packet: dict) -> str:
    """The terminal's ``git: ...`` line for a packet: the action and the command that carries it out."""
    git = packet.get("git") or "reset"
    step = FIX_STEP if git == "stay" and packet.get("next_action") == "fix_and_retry" else GIT_STEPS.get(git, "")
    return f"git: {git} ({step})" if step else f"git: {git}"


def _stopped_rule(run: Run) -> tuple[str, str, str, str]:
    """A1: stopped early by the abort rule: evidence that the idea loses (it feeds no noise estimate)."""
    info = run.extra["early_abort"]
    saved = info.get("saved_training_seconds")
    reason = info.get("reason") or "its loss curve could not catch the champion's reference"
    return "A1", "abandon", "medium", f"stopped early: {reason}" + (f"; saved {saved:g} s of training" if saved else "")


def _keep_rule(run: Run, prior_champ: Run | None, novelty: dict, verdict: dict | None,
               policy: PromotionPolicy) -> tuple[str, str, str, str]:
    if prior_champ is None or verdict is None:
        return "K1", "promote", "high", "first kept run: it is the baseline champion"
    gain, champ = verdict["gain"], verdict.get("champion") or prior_champ.run_id
    if gain > 0 and _inside_noise(run, verdict, policy):
        return "KN", "replicate", "high", (
            f"beats champion {champ} inside the noise ({verdict_phrase(verdict)}): replicate it "
            f"(memorylab replicate {run.run_id} --n {policy.replicates}) before building on it")
    if gain > 0:
        return "K2", "promote", "high", f"beats champion {champ}: {verdict_phrase(verdict)}{_below_confirmed(run)}"
    if novelty.get("classification") == "novel":
        return "K3", "replicate", "medium", (
            f"kept but not better than champion {champ} ({verdict_phrase(verdict)}); a novel idea: replicate "
            "before building on it")
    return "K4", "branch_followup", "low", (
        f"kept but not better than champion {champ} ({verdict_phrase(verdict)}); follow up on a branch if promising")


def _discard_rule(novelty: dict, verdict: dict | None, prior_champ: Run | None) -> tuple[str, str, str, str]:
    if prior_champ is None:
        return "D0", "retry", "medium", (
            "discarded with nothing kept in its arena to compare against: keep the unchanged baseline first "
            "(memorylab log --status keep), then judge ideas against it")
    if verdict is not None and verdict["gain"] > 0:
        return "D4", "replicate", "medium", (
            f"discarded although it beats the champion's reference ({verdict_phrase(verdict)}): if it was dropped "
            "for another reason (memory, time), say so in its notes; else replicate it before giving the idea up")
    match = _first_failure_match(novelty)
    if match is not None:
        return "D1", "abandon", "high", (
            f"repeats failed run {match.get('run_id')} ({match.get('reason') or match.get('description')}): "
            "stop spending runs on it"
        )
    sigma = (verdict or {}).get("sigma")
    if verdict is not None and sigma and -verdict["gain"] <= sigma:
        return "D2", "branch_followup", "medium", (
            f"within the noise ({verdict_phrase(verdict)}: less than one σ worse): the commit is dropped, but a "
            "variation or a combination of it may win")
    why = f" ({verdict_phrase(verdict)})" if verdict is not None else ""
    how = "more than one σ worse than" if sigma else "worse than (noise unknown)"
    return "D3", "abandon", "low", f"{how} the champion's reference{why}: move on"


def decide(run: Run, prior: Sequence[Run], novelty: dict, events: Sequence[Event] = (),
           fold: RegistryFold | None = None, policy: PromotionPolicy | None = None) -> dict:
    """The decision packet for ``run`` given the runs (and champion events) logged before it.

    ``fold``: the :class:`RegistryFold` of ``prior`` when the caller keeps one (the history does),
    so that no rule has to scan every earlier run. ``policy``: the store's promotion policy (it judges
    runs logged without a promotion decision; default: the default policy).
    """
    policy = policy or PromotionPolicy()
    fold = fold if fold is not None else RegistryFold.of(prior)
    arena_runs = fold.notable_in(run.arena)  # only the run's arena is comparable with it
    prior_champ = champion(arena_runs, events)
    verdict = judge(run, arena_runs, events, policy)
    if run.status == "crash":
        rule, action, priority, rationale = _crash_rule(run, prior, novelty, fold)
    elif run.validity == "confounded":
        rule, action, priority, rationale = _confounded_rule(run)
    elif (run.extra.get("early_abort") or {}).get("action") == "stopped":
        rule, action, priority, rationale = _stopped_rule(run)
    elif run.replicate_of:
        rule, action, priority, rationale = _replicate_rule(run)
    elif run.status == "keep":
        rule, action, priority, rationale = _keep_rule(run, prior_champ, novelty, verdict, policy)
    else:
        rule, action, priority, rationale = _discard_rule(novelty, verdict, prior_champ)
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
        "git": git_action(run, action),
        "hypothesis_status": "untested" if run.status == "crash" else HYPOTHESIS_STATUS[action],
        "verdict": verdict,
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


def queued(run: Run, packet: dict, fixed: bool) -> tuple[str, str] | None:
    """What a run's packet puts in the decision queue: (action, priority), or None when nothing waits.

    * a baseline's K1 ``promote`` is no decision (the arena's first kept run is its champion); a packet
      another tool wrote (the fork's, without a ``rule``) is queued as it was written;
    * a replicate never promotes: its R1 ``promote`` is shown as a ``confirmation`` (low priority);
    * a ``fix_and_retry`` is cleared once a later run of the same idea did not crash (``fixed``).
    """
    action, priority = packet.get("next_action"), packet.get("priority", "low")
    if not action or (action == "fix_and_retry" and fixed):
        return None
    if run.replicate_of or run.role == "replicate":
        return ("confirmation", "low") if action == "promote" else (action, priority)
    if run.role == "baseline" and action == "promote" and run.extra.get("rule"):
        return None
    return action, priority


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
        f"- **Verdict:** {_verdict_line(packet.get('verdict'))}",
        f"- **Prior champion:** {prior.get('run_id') or 'none'} (best single run {_fmt(prior.get('val_bpb'))}); "
        f"gain vs that run {_fmt(_neg(comp.get('delta_val_bpb')), signed=True)} val_bpb ({GAIN_SIGN}), "
        f"delta memory {_fmt(comp.get('delta_memory_gb'), 2, signed=True)} GB",
        f"- **New champion:** {'yes' if comp.get('is_new_champion') else 'no'}",
        f"- **Novelty:** {packet['novelty']['classification']} ({packet['novelty']['decision']})",
    ]
    for reason in packet["novelty"].get("reasons") or []:
        lines.append(f"  - {reason}")
    if packet.get("error"):
        lines.append(f"- **Error ({packet['error'].get('kind') or 'unknown'}):** {packet['error'].get('summary')}")
    return "\n".join(lines) + "\n"


def _verdict_line(verdict: dict | None) -> str:
    if not verdict:
        return "no reference to compare with (a baseline, a replicate or a crash)"
    return f"{verdict_phrase(verdict)}; champion {verdict.get('champion') or 'unknown'}"


def _neg(value: float | None) -> float | None:
    """The packet stores ``delta_val_bpb`` (run − prior champion); views show its gain (the one sign)."""
    return None if value is None else -value


def _fmt(value: float | None, digits: int = 6, signed: bool = False) -> str:
    return fmt_number(value, digits, signed, missing="n/a")
