"""Run roles: what a run is evidence *of*, so that counts and rates count ideas only.

* ``baseline`` -- establishes the arena's starting point: the first kept run of an arena, or a run
  described as a baseline. Not an experiment.
* ``idea`` -- a native run that tries something: the only role counted as an experiment (keep
  rates, "since the last keep", the plateau detector).
* ``replicate`` -- a re-run of existing code (``memorylab replicate``): feeds the reference mean and
  the noise level, shown as a confirmation, never as a promotion.
* ``rerun`` -- a re-run of a confounded run (``--role rerun``, or ``run --rerun-confounded``): it
  replaces the confounded measurement; it is an experiment in the confounded run's place.
* ``import`` -- a row imported from another ledger; counted as an idea of that ledger's arena. Its
  role comes from structure, never from words: the first row of a file, and a re-baseline row
  (evidence/arenas.py), are its arenas' ``baseline`` rows; "... vs baseline 2.681" is an experiment.
* ``not_run`` -- an imported row whose status says it never ran (``missing``, ``skipped`` ...): shown in
  ``list`` and ``show``, never an experiment, never a failure, and evidence for nothing (its
  validity is ``not_run``: no noise, cluster, dead end, rule or insight).
"""

from __future__ import annotations

from collections.abc import Mapping

ROLES = ("baseline", "idea", "replicate", "rerun", "import", "not_run")
IDEA_ROLES = frozenset(("idea", "rerun", "import"))  # roles that count as experiments


def role_of(record: Mapping, is_baseline_text: bool) -> str:
    """The role of a record: its ``role`` field, else what its fields say (replicate, import, baseline).

    ``is_baseline_text`` (a native run described as a baseline) is read for native runs only: an
    imported row's role is set by ``import`` from the file's structure."""
    stated = record.get("role")
    if stated in ROLES:
        return str(stated)
    if record.get("replicate_of"):
        return "replicate"
    if str(record.get("source") or "native").startswith("import:"):
        return "import"
    if is_baseline_text:
        return "baseline"
    return "idea"


def is_idea(role: str) -> bool:
    """Whether a run of ``role`` counts as an experiment (an idea tried)."""
    return role in IDEA_ROLES
