"""Crash lessons: THE rule of which crashes are evidence against their idea and which the agent fixes.

Every reader asks this module: the decision rules (``policy.decisions`` C2), the research fold
(mistake cards, failure clusters, dead ends, "tried and failed"), the registry's failure clusters and
the novelty guard (``repeat_failure``). No other list of crash kinds exists.

* ``bug`` (:data:`PLAIN_BUG_KINDS`) -- the code did not run as written: syntax, import, name
  (``NameError``, ``UnboundLocalError``, ``AttributeError``, read from the error line), shape (tensor
  size mismatch) and assertion errors (an ``assert`` in train.py, or a device-side assert, is the code
  refusing its own inputs: an inconsistent edit, e.g. ``n_embd`` not divisible by ``n_head``). Fixing
  it says nothing about whether the idea works: a lesson about code, never evidence against the idea.
* ``resource`` (:data:`RESOURCE_KINDS`) -- out of memory. Gradient accumulation computes the same
  update with a smaller ``DEVICE_BATCH_SIZE`` (``TOTAL_BATCH_SIZE`` kept), so an OOM says how the
  idea was run, not whether it helps: the agent fixes it (smaller device batch) and the fixed run
  decides. Not evidence against the idea, or the fixed re-run would be refused as a repeat failure;
  an idea that crashes again is dropped by rule C1 of the decisions.
* ``infra`` (:data:`INFRA_KINDS`) -- the machine or the operator stopped the run: Ctrl-C
  (``keyboard_interrupt``), a signal memorylab did not send (``infra``: the kernel's OOM killer, a
  pre-emption), or a writer's own ``infrastructure``/``environment`` label. Not the idea's fault, and
  not a code edit's to fix.
* ``fundamental`` (:data:`IDEA_FAILURE_KINDS`) -- the idea ran and failed: NaN / divergence, the time
  budget exceeded. Evidence against the idea.
* ``unknown`` -- any other crash (an unexplained ``runtime`` error): the idea ran and crashed, so it
  counts against the idea too, if less surely (a weaker learning signal in ``research.insights``).
"""

from __future__ import annotations

import re

PLAIN_BUG_KINDS = frozenset(("syntax", "import", "name", "shape", "assertion"))
RESOURCE_KINDS = frozenset(("oom",))
INFRA_KINDS = frozenset(("keyboard_interrupt", "infra", "infrastructure", "environment"))
IDEA_FAILURE_KINDS = frozenset(("nan", "timeout"))
_CLASSES = (("bug", PLAIN_BUG_KINDS), ("resource", RESOURCE_KINDS), ("infra", INFRA_KINDS),
            ("fundamental", IDEA_FAILURE_KINDS))
_NAME_ERROR = re.compile(r"\b(?:NameError|UnboundLocalError|AttributeError)\b")


def crash_kind(kind: str | None, summary: str | None = None) -> str:
    """A crash's kind, lower case, with name errors (recognised from the error line) as ``name``."""
    kind = (kind or "").lower()
    if kind in ("", "runtime") and summary and _NAME_ERROR.search(summary):
        return "name"
    return kind


def stated_crash_kind(kind: str | None, summary: str | None, description: str | None) -> str | None:
    """The kind a crash is shown with: its recorded kind, else the one its words name (an imported row says
    "(OOM)" or "(NaN loss)" in its description), else None. Every view uses this one."""
    from .logparse import classify_error  # the log parser is larger; only an unknown kind needs it

    return crash_kind(kind, summary) or classify_error(description or "") or None


def crash_class(kind: str | None, summary: str | None = None) -> str:
    """``bug``, ``resource``, ``infra``, ``fundamental`` or ``unknown`` for a crash's error kind (and line)."""
    kind = crash_kind(kind, summary)
    for cls, kinds in _CLASSES:
        if kind in kinds:
            return cls
    return "unknown"


def is_evidence_against_idea(kind: str | None, summary: str | None = None) -> bool:
    """Whether a crash of this kind is evidence that its idea fails (a ``fundamental`` or ``unknown`` one)."""
    return crash_class(kind, summary) in ("fundamental", "unknown")


# Words of a crash note that blame the environment, not the idea: another process or contention, a
# pre-emption, the host, disk or network, the operator.
_EXTERNAL_RE = re.compile(
    r"\b(?:pre[\s-]?empt(?:ed|ion)|(?:another|other|external|competing|concurrent)\s+(?:process|job|run|user|workload)e?s?|"
    r"contention|gpu\s+(?:was\s+)?(?:busy|in\s+use|occupied|unavailable)|shared\s+gpu|"
    r"(?:node|machine|host|server|system)\s+(?:failure|down|died|crash(?:ed)?|reboot(?:ed)?|restart(?:ed)?)|"
    r"reboot(?:ed)?|power\s+(?:loss|outage|cut)|disk\s+(?:full|quota)|no\s+space\s+left|"
    r"network\s+(?:error|failure|issue|outage)|connection\s+(?:lost|reset|refused|dropped)|lost\s+(?:the\s+)?connection|"
    r"ssh\s+(?:disconnect\w*|dropped)|nccl|went\s+to\s+sleep|suspended|"
    r"keyboard\s*interrupt|interrupted|ctrl[\s-]?c|cancell?ed|(?:manually|operator)\s+(?:stopped|killed|aborted)|"
    r"stopped\s+by\s+(?:me|the\s+user|user|the\s+operator)|infra(?:structure)?|"
    r"(?:harness|supervisor|scheduler|orchestrator)\s+(?:abort\w*|fail\w*|error|crash\w*)|"
    r"environment(?:al)?\s+(?:issue|problem|error|crash|failure)|driver\s+(?:error|crash|issue|failure)|"
    r"hardware\s+(?:failure|fault|error))\b",
    re.IGNORECASE,
)
# A kill the run did not ask for (exit 137, SIGKILL) blames the environment too, unless the note says the
# run ran out of memory itself or diverged ("OOM-killed", "killed it: loss went NaN").
_KILLED_RE = re.compile(r"\b(?:exit(?:ed)?(?:\s+(?:code|status|with))?\s*137|sigkill|signal\s*9|killed)\b",
                        re.IGNORECASE)
_OWN_FAILURE_RE = re.compile(r"\boom\b|out\s+of\s+memory|\bmemory\b|\bnan\b|\bdiverg\w*|\bexplod\w*|"
                             r"\binf(?:inite)?\s+loss\b", re.IGNORECASE)


def described_kind(text: str | None) -> str | None:
    """``infra`` when a crash's note blames the environment ("still killed with exit 137", "OOM from another
    process", "pre-empted"), else None: the kind of a crash recorded without one (an imported ledger row has
    only its description). Any other note leaves the kind unknown, evidence like any unexplained crash."""
    note = str(text or "")[:2000]
    if _EXTERNAL_RE.search(note):
        return "infra"
    return "infra" if _KILLED_RE.search(note) and not _OWN_FAILURE_RE.search(note) else None


def is_fixable(kind: str | None, summary: str | None = None) -> bool:
    """Whether the agent fixes a crash of this kind with a code edit in the same commit (a plain bug or
    out of memory: ``fix_and_retry``, git stay); such a crash is never evidence against the idea."""
    return crash_class(kind, summary) in ("bug", "resource")


def run_crash_kind(run) -> str | None:
    """A crashed run's kind: the one recorded, else what its description blames (:func:`described_kind`; an
    imported row has only its text). The novelty guard, the research fold and the registry all read this."""
    return run.error_kind or described_kind(run.description)


def is_no_evidence_crash(run) -> bool:
    """Whether a folded run is a crash that is no evidence against its idea (bug, resource or infra)."""
    return run.status == "crash" and not is_evidence_against_idea(run_crash_kind(run), run.error_summary)
