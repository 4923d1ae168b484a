"""Record hooks of ``run`` and ``replicate``: status, promotion and champion events, decided under the lock.

:func:`memorylab_core.runs.commit_run` calls a hook with the new record and the history refreshed
under the ledger's exclusive lock, so the promotion decision sees every run other agents logged up to
that instant and two agents can never both displace the same champion. The hook sets ``status`` and
``promotion`` on the record and returns the ``champion_change`` event to append right after it.
"""

from __future__ import annotations

from ..index.journal_index import JournalIndex
from ..index.records import run_from_record
from ..ledger.model import Run, event_record
from ..policy.promotion import Decision, PromotionPolicy, evaluate_replicates, evaluate_run, same_code_runs
from .champion_events import event_after_replicates, event_after_run
from .experiment import apply_failure
from .runs import RecordHook


def run_hook(policy: PromotionPolicy, forced_status: str | None, failure: str | None,
             sink: list[Decision]) -> RecordHook:
    """Hook for ``memorylab run``: the policy decides keep/discard (``--status`` overrides it).

    A champion event is written only when the policy accepted the run and its recorded status is
    keep: a forced keep the policy rejected advances the branch but does not displace the champion
    (the registry still lets it win if its val_bpb beats the champion's).
    """
    def hook(record: dict, history: JournalIndex) -> list[dict]:
        apply_failure(record, failure)
        return judged_as_run(record, history, policy, forced_status, sink)
    return hook


def judged_as_run(record: dict, history: JournalIndex, policy: PromotionPolicy, forced_status: str | None,
                  sink: list[Decision]) -> list[dict]:
    """Decide ``record`` as a run of its own (keep/discard against the arena's champion) and return the
    champion event it causes, if any."""
    draft = run_from_record(record, len(history.runs), -1)
    evidence = history.registry.notable_in(draft.arena)  # the arena's champions and replicate groups
    decision = evaluate_run(draft, evidence, history.events, policy)
    if decision.status == "crash":  # nothing measured: no status can be forced over a crash
        forced_status = None
    status = forced_status or decision.status
    if forced_status and forced_status != decision.status:
        decision.overridden = forced_status
    record["status"] = status
    record["promotion"] = decision.to_dict()
    sink.append(decision)
    draft.status = status
    event = event_after_run(draft, decision, evidence, history.events, "run") if status == "keep" else None
    return [event_record(event)] if event else []


def replicate_hook(policy: PromotionPolicy, root_id: str, failure: str | None, crashed: bool,
                   sink: list[Decision]) -> RecordHook:
    """Hook for one ``memorylab replicate`` run: linked to its original, evaluated as a replicate.

    The replicate takes its original's status (it is the same code, kept or not), or crash. After it,
    the replicates so far are tested against the confirmed champion; a confirmation is an event.
    """
    def hook(record: dict, history: JournalIndex) -> list[dict]:
        apply_failure(record, failure)
        root = history.get(root_id)
        if root is not None and not crashed and unmeasured(root, record, history):
            record.update(role="rerun", rerun_of=root_id)  # the code's first valid measurement decides it
            return judged_as_run(record, history, policy, None, sink)
        record["replicate_of"] = root_id
        record["role"] = "replicate"  # a re-run of existing code, whatever its description says
        record["status"] = "crash" if crashed or root is None else ("keep" if root.status == "keep" else "discard")
        draft = run_from_record(record, len(history.runs), -1)
        if root is None or crashed:
            return []
        runs = [*history.registry.notable_in(draft.arena), draft]
        decision = evaluate_replicates(root, runs, history.events, policy)
        record["promotion"] = decision.to_dict()
        sink.append(decision)
        event = event_after_replicates(root, decision, runs, history.events)
        return [event_record(event)] if event else []
    return hook


def unmeasured(root: Run, record: dict, history: JournalIndex) -> bool:
    """Whether a valid replicate of ``root`` is its code's first measurement: ``root`` was confounded and no
    valid run of the code exists. Such a run is no confirmation but the run that decides, as a rerun."""
    if root.validity != "confounded" or record.get("validity") == "confounded":
        return False
    return not same_code_runs(root, history.registry.notable_in(root.arena))
