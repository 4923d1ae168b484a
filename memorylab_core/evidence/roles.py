"""Run roles: what a run is evidence *of*, so that counts and rates count ideas only.

* ``baseline`` -- establishes the arena's starting point: the first kept run of an arena, or a run
  described as a baseline. Not an experiment.
* ``idea`` -- a native run that tries something: the only role counted as an experiment (keep
  rates, "since the last keep", the plateau detector).
* ``replicate`` -- a re-run of existing code (``memorylab replicate``): feeds the reference mean and
  the noise level, shown as a confirmation, never as a promotion.
* ``rerun`` -- a re-run of a confounded run (``--role rerun``, or ``run --rerun-confounded``): it
  replaces the confounded measurement; it is an experiment in the confounded run's place (the
  confounded run is none, so the idea counts once: :func:`is_experiment`).
* ``import`` -- a row imported from another ledger; counted as an idea of that ledger's arena. Its
  role comes from structure, never from words: the first row of a file, and a re-baseline row
  (evidence/arenas.py), are its arenas' ``baseline`` rows; "... vs baseline 2.681" is an experiment.
* ``not_run`` -- an imported row whose status says it never ran (``missing``, ``skipped`` ...): shown in
  ``list`` and ``show``, never an experiment, never a failure, and evidence for nothing (its
  validity is ``not_run``: no noise, cluster, dead end, rule or insight); counted apart as ``not_run``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ROLES = ("baseline", "idea", "replicate", "rerun", "import", "not_run")
IDEA_ROLES = frozenset(("idea", "rerun", "import"))  # roles that count as experiments (see is_experiment)
OUTCOMES = ("keep", "discard", "crash")


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


def is_experiment(run) -> bool:
    """THE experiment count's rule: an idea tried and measured (or crashed). Ideas, imported rows and the
    valid re-run of a confounded run count; a baseline, a replicate, a confounded run (it measured
    nothing: its valid re-run is the experiment, so one idea counts once) and an interrupted run do not."""
    return (is_idea(run.role) and not run.replicate_of and run.validity != "confounded"
            and run.error_kind != "keyboard_interrupt")


@dataclass(slots=True)
class Account:
    """One account of a night (any run list of one arena, in ledger order): the counts every view shows.

    ``status``, ``insights``, ``guide``, the report and the dashboard all read their run, experiment,
    keep/discard/crash, keep-rate and confounded counts from an ``Account`` (the research fold keeps
    one per arena; the report folds one over its window), so they cannot disagree.
    """

    runs: int = 0
    statuses: dict = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))  # every run
    experiments: dict = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))  # experiments only
    roles: dict = field(default_factory=dict)  # role -> runs
    confounded: int = 0  # runs that measured nothing (starved): never experiments

    def add(self, run) -> None:
        """Count one run."""
        self.runs += 1
        status = "not_run" if run.role == "not_run" else run.status  # a row that never ran is no discard
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.roles[run.role] = self.roles.get(run.role, 0) + 1
        self.confounded += run.validity == "confounded"
        if is_experiment(run):
            self.experiments[run.status] = self.experiments.get(run.status, 0) + 1

    @property
    def tried(self) -> int:
        """Experiments (ideas tried)."""
        return sum(self.experiments.values())

    @property
    def keep_rate(self) -> float | None:
        return round(self.experiments.get("keep", 0) / self.tried, 4) if self.tried else None

    def to_dict(self) -> dict:
        return {"runs": self.runs, "counts": dict(self.statuses), "experiments": self.tried,
                "idea_counts": dict(self.experiments), "keep_rate": self.keep_rate, "roles": dict(self.roles),
                "confounded": self.confounded}


def account_line(data: dict) -> str:
    """The account in words, the same in every text view: ``experiments (ideas) 9 · keep 3 · discard 5 ·
    crash 1 · keep rate 33.3% · 2 confounded runs (no evidence)``."""
    ideas = data["idea_counts"]
    rate = "no ideas yet" if data["keep_rate"] is None else f"keep rate {100 * data['keep_rate']:.1f}%"
    starved = f" · {data['confounded']} confounded run{'s' if data['confounded'] != 1 else ''} (no evidence)" \
        if data.get("confounded") else ""
    return (f"experiments (ideas) {data['experiments']} · keep {ideas.get('keep', 0)} · discard "
            f"{ideas.get('discard', 0)} · crash {ideas.get('crash', 0)} · {rate}{starved}")
