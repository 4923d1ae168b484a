"""Champion history as ledger events: promotions, confirmations and rollbacks.

Every change of champion is a ``champion_change`` event appended to the ledger under the store lock
(nothing is ever rewritten). An event names the champion after it (``run_id``) and the confirmed
champion after it (``confirmed_run_id``), plus where it came from (``source``: ``run``,
``replicate`` or ``rollback``), the reasons, the prior champion and prior confirmed champion, and
the promotion decision behind it. :func:`memorylab_core.registry.champion` reads them back.

The functions building event bodies are pure (the simulation uses them on in-memory runs);
:func:`append_event` is the one that writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..index.journal_index import JournalIndex
from ..ledger.model import Event, Run, event_record
from ..ledger.store import Store
from ..policy.promotion import Decision, code_key
from ..policy.registry import CHAMPION_EVENT, champion, confirmed_champion


def champion_event(new_champion: Run, confirmed: Run | None, prior: Run | None, prior_confirmed: Run | None,
                   source: str, reasons: Sequence[str], decision: Decision | None = None,
                   reason: str | None = None) -> dict:
    """The body of a ``champion_change`` event (:func:`event_record` adds id, time and schema)."""
    return {
        "record_type": "event",
        "event_type": CHAMPION_EVENT,
        "source": source,
        "run_id": new_champion.run_id,
        "arena": new_champion.arena,
        "commit": new_champion.commit,
        "branch": new_champion.branch,
        "val_bpb": new_champion.val_bpb,
        "level": ("baseline" if decision is not None and decision.baseline else "confirmed")
        if confirmed is not None and confirmed.run_id == new_champion.run_id else "keep",
        "confirmed_run_id": confirmed.run_id if confirmed else None,
        "prior_champion": prior.run_id if prior else None,
        "prior_confirmed": prior_confirmed.run_id if prior_confirmed else None,
        "reasons": list(reasons),
        "reason": reason,
        "promotion": decision.to_dict() if decision else None,
    }


def event_after_run(run: Run, decision: Decision, prior: Sequence[Run], events: Sequence[Event],
                    source: str = "run") -> dict | None:
    """The champion change a newly logged run causes: only an accepted keep changes anything."""
    if not decision.accepted or decision.status != "keep":
        return None
    old_tip, old_confirmed = champion(prior, events), confirmed_champion(prior, events)
    confirmed = run if decision.level == "confirmed" else old_confirmed
    return champion_event(run, confirmed, old_tip, old_confirmed, source, decision.reasons, decision)


def event_after_replicates(target: Run, decision: Decision, runs: Sequence[Run], events: Sequence[Event],
                           source: str = "replicate") -> dict | None:
    """A confirmation event when replicates confirmed ``target`` (the champion itself stays as it is)."""
    old_confirmed = confirmed_champion(runs, events)
    if decision.level != "confirmed" or old_confirmed is None or code_key(old_confirmed) == code_key(target):
        return None
    tip = champion(runs, events) or target
    return champion_event(tip, target, tip, old_confirmed, source, decision.reasons, decision)


def was_confirmed(run: Run, runs: Sequence[Run], events: Sequence[Event]) -> bool:
    """Whether ``run`` was ever the confirmed champion (the baseline always was)."""
    baseline = confirmed_champion(runs, ())
    if baseline is not None and baseline.run_id == run.run_id:
        return True
    return any(e.event_type == CHAMPION_EVENT and e.data.get("confirmed_run_id") == run.run_id for e in events)


def confirmed_when_promoted(run: Run, runs: Sequence[Run], events: Sequence[Event]) -> Run | None:
    """The confirmed champion in force right after ``run`` was last designated champion."""
    for event in reversed(events):
        if event.event_type == CHAMPION_EVENT and event.data.get("run_id") == run.run_id:
            wanted = event.data.get("confirmed_run_id")
            return next((r for r in runs if r.run_id == wanted), None)
    return None


def rollback_event(target: Run, runs: Sequence[Run], events: Sequence[Event], reason: str) -> dict:
    """Restore ``target`` as champion. The confirmed champion becomes ``target`` if it was ever confirmed,
    else the confirmed champion in force when ``target`` was promoted (else it stays as it is)."""
    old_tip, old_confirmed = champion(runs, events), confirmed_champion(runs, events)
    if was_confirmed(target, runs, events):
        confirmed = target
    else:
        confirmed = confirmed_when_promoted(target, runs, events) or old_confirmed
    reasons = [f"rollback to {target.run_id}: {reason}"]
    return champion_event(target, confirmed, old_tip, old_confirmed, "rollback", reasons, reason=reason)


def champion_history(events: Sequence[Event]) -> list[dict]:
    """Every champion change, oldest first, as plain data."""
    keys = ("source", "level", "run_id", "commit", "branch", "val_bpb", "confirmed_run_id", "prior_champion",
            "prior_confirmed", "reason")
    out = []
    for event in events:
        if event.event_type == CHAMPION_EVENT:
            item = {"event_id": event.event_id, "timestamp_utc": event.timestamp}
            item.update({key: event.data.get(key) for key in keys})
            item["reasons"] = event.data.get("reasons") or []
            out.append(item)
    return out


# -- writing --------------------------------------------------------------------------------------

def append_event(store: Store, history: JournalIndex, build: Callable[[JournalIndex], dict | None]) -> dict | None:
    """Under the store lock: fold new lines, let ``build`` decide on the fresh history, append its event.

    Returns the appended record (None when ``build`` returned None). The registry snapshot is
    rewritten afterwards, since the champion may have changed.
    """
    store.ensure()
    with store.lock():
        history.refresh(locked=True)
        body = build(history)
        if body is None:
            return None
        record = event_record(body)
        store.append_locked(record)
        history.refresh(locked=True)
        store.write_registry(history.snapshot, f"event {record.get('event_id')} is recorded")
    return record
