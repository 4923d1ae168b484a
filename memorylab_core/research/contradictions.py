"""Contradictions: the same change kept in one context and failed in another, within one arena.

A *change* is the run's idea key (``novelty.guard.idea_key``: its knobs and directions, e.g.
``MATRIX_LR:up``, or its technique words); its *context* is the champion it was tried on (the arena's
champion before the run). When one change was kept on top of one champion and failed on top of
another, the result depends on the context: an ablation (the change alone, on each champion) tells
which. A failure is a discard worse than the champion at the time by more than the noise band, or a
crash that counts against the idea (not a bug crash); noise-level discards prove nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from ..evidence.crashes import is_no_evidence_crash
from ..ledger.model import Run
from ..policy.decisions import NOISE_BAND

CHANGES_KEPT = 200  # distinct changes remembered (least recently tried forgotten first)
CONTEXTS_KEPT = 4  # contexts remembered per change and outcome
CONTRADICTIONS_SHOWN = 8
NOTE = "context-dependent: worth an ablation"


def change_key(run: Run) -> str:
    """The run's change: its idea key (set by the history fold, else computed)."""
    if run.idea_key:
        return run.idea_key
    from ..novelty.guard import idea_key  # the guard module is large; only folds of bare runs need it

    return idea_key(run)


def verdict_of(outcome) -> str | None:
    """``kept``, ``failed`` or None (not evidence either way) for one attempt."""
    run = outcome.run
    if run.status == "keep" and not run.replicate_of:
        return "kept"
    if run.status == "crash":
        return None if is_no_evidence_crash(run) else "failed"
    if run.status == "discard" and (outcome.gain is None or outcome.gain < -NOISE_BAND):
        return "failed"
    return None


@dataclass
class ContradictionBook:
    """Per change: the latest kept and failed run in each context (champion run id)."""

    changes: OrderedDict = field(default_factory=OrderedDict)  # key -> {"kept": {ctx: brief}, "failed": {...}}

    def add(self, outcome, context: str | None, label: str) -> None:
        """Fold one valid attempt tried on top of champion ``context``."""
        verdict = verdict_of(outcome)
        if verdict is None or context is None:
            return
        run = outcome.run
        key = change_key(run)
        if key in ("baseline", "misc"):
            return
        entry = self.changes.pop(key, None) or {"kept": {}, "failed": {}}
        side = entry[verdict]
        side.pop(context, None)
        side[context] = {"run_id": run.run_id, "position": outcome.position, "status": run.status,
                         "val_bpb": run.val_bpb, "gain": None if outcome.gain is None else round(outcome.gain, 6),
                         "context": context, "label": label}
        while len(side) > CONTEXTS_KEPT:
            side.pop(next(iter(side)))
        self.changes[key] = entry
        while len(self.changes) > CHANGES_KEPT:
            self.changes.popitem(last=False)

    def contradictions(self, limit: int = CONTRADICTIONS_SHOWN) -> list[dict]:
        """Changes kept in one context and failed in another, latest first, each with both runs."""
        out = []
        for key, entry in self.changes.items():
            pairs = [(k, f) for k in entry["kept"].values() for f in entry["failed"].values()
                     if k["context"] != f["context"]]
            if pairs:
                kept, failed = max(pairs, key=lambda p: max(p[0]["position"], p[1]["position"]))
                out.append({"change": key, "label": kept["label"], "kept": kept, "failed": failed, "note": NOTE})
        out.sort(key=lambda c: -max(c["kept"]["position"], c["failed"]["position"]))
        return out[:limit]


def contradiction_line(item: dict) -> str:
    """One line naming the change and both runs, each with its own move and context: the failed run made the
    same kind of change (the same knob and direction), not necessarily the kept run's exact move."""
    kept, failed = item["kept"], item["failed"]
    if kept["label"] == failed["label"]:
        return (f"{item['label']}: kept in {kept['run_id']} (on champion {kept['context']}), "
                f"{failed['status']} in {failed['run_id']} (on champion {failed['context']}) — {item['note']}")
    return (f"{item['change'].replace(':', ' ').replace('+', ' + ')}: kept in {kept['run_id']} ({kept['label']}, on "
            f"champion {kept['context']}), {failed['status']} in {failed['run_id']} ({failed['label']}, on champion "
            f"{failed['context']}) — {item['note']}")
