"""Validity: was a run's training starved by a busy machine? A starved (``confounded``) run measured the
machine, not the idea, so it is evidence for nothing (docs/evidence.md, "Validity").

A run is ``confounded`` when either signal says its training got far less compute than its arena's
comparable runs:

* **throughput** -- its tokens/s (or, without tokens/s, its optimizer steps) is under
  :data:`THROUGHPUT_FLOOR` of the median of its arena's last :data:`PEERS` valid runs *of the same
  model cost* (``num_params_M`` within :data:`SAME_COST` of each other). Seed-to-seed and
  code-to-code throughput of one model on one machine moves by a few percent; a 30 % drop is a
  busy machine, not an idea. A bigger model is slower by design: runs of another cost are not its
  peers, so a bigger model is never confounded by its own cost.
* **CPU share** -- for a run whose budget is wall seconds on a CPU (train.py before issue 22),
  ``contention.cpu_share`` (CPU time the process got over its threads' capacity) under
  :data:`CPU_SHARE_FLOOR`: alone on a machine train.py gets 0.9 or more; under 0.6, other load took
  at least a third of its cores, and so a third of its training. A run whose budget counts CPU
  seconds (``budget_clock: cpu``, the cpu profile now) got its whole budget however busy the
  machine was -- it was slow, not starved -- so its share is no cause (measured: share 0.11 beside
  a CPU hog, 301 steps and val_bpb +0.0035 against 303 steps alone). What load can still do to it
  is make each CPU second do less work (caches, memory bandwidth, SMT siblings): that is the
  throughput rule, in tokens per budget second. Not used on CUDA, where the CPU mostly waits for
  the GPU and a low share is normal. Other compute processes on the same GPU
  (``gpu_other_processes``) or clock throttling for power or heat are causes there.

A run with no signal at all (no sidecar) is ``unknown``: counted as evidence, as before. An imported row
whose status says it never ran (``missing``) is ``not_run``: no measurement at all (:data:`NOT_EVIDENCE`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

VALIDITIES = ("valid", "confounded", "unknown", "not_run")
NOT_EVIDENCE = frozenset(("confounded", "not_run"))  # starved, or never ran (an imported "missing" row)
THROUGHPUT_FLOOR = 0.70  # under 70 % of the peers' median tokens/s (or steps): starved
CPU_SHARE_FLOOR = 0.60  # cpu profile: under 60 % of the threads' capacity: other load took the cores
SAME_COST = 0.10  # peers: num_params_M within 10 % (the same model cost)
PEERS = 20  # newest valid runs of the arena compared with
MIN_PEERS = 2  # fewer comparable runs: no throughput judgement
THROTTLES = ("hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown")


@dataclass
class Verdict:
    """A run's validity and the causes that made it confounded (empty when valid or unknown)."""

    validity: str
    causes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"validity": self.validity, "causes": list(self.causes)}


def throughput_facts(metrics: Mapping, contention: Mapping | None = None) -> dict:
    """The throughput numbers a run is judged on (and that later runs compare with)."""
    facts = {key: metrics[key] for key in ("tokens_per_sec", "num_steps", "num_params_M")
             if isinstance(metrics.get(key), (int, float)) and not isinstance(metrics.get(key), bool)}
    share = (contention or {}).get("cpu_share")
    if isinstance(share, (int, float)) and not isinstance(share, bool):
        facts["cpu_share"] = share
    return facts


def _same_cost(a: Mapping, b: Mapping) -> bool:
    pa, pb = a.get("num_params_M"), b.get("num_params_M")
    if pa is None or pb is None:
        return True  # cost unknown on a side: compare as the same model
    return abs(pa - pb) <= SAME_COST * max(pa, pb, 1e-9)


def _throughput_cause(facts: Mapping, peers: Sequence[Mapping]) -> str | None:
    from statistics import median  # only a log judges validity: the other commands skip the import

    for key, unit in (("tokens_per_sec", "tok/s"), ("num_steps", "steps")):
        mine = facts.get(key)
        values = [p[key] for p in peers if p.get(key) and _same_cost(facts, p)]
        if mine is None or len(values) < MIN_PEERS:
            continue
        typical = median(values)
        if typical > 0 and mine < THROUGHPUT_FLOOR * typical:
            return (f"throughput {mine:,.0f} {unit} is {mine / typical:.0%} of the arena's typical "
                    f"{typical:,.0f} {unit} for this model size (median of {len(values)} runs; floor "
                    f"{THROUGHPUT_FLOOR:.0%})")
        return None
    return None


def _contention_causes(profile: str | None, contention: Mapping, clock: str | None) -> list[str]:
    causes = []
    share = contention.get("cpu_share")
    if profile == "cpu" and clock != "cpu" and isinstance(share, (int, float)) and share < CPU_SHARE_FLOOR:
        threads = contention.get("cpu_threads")
        load = contention.get("loadavg_end")
        causes.append(f"the training process got {share:.0%} of its "
                      f"{f'{threads} threads' if threads else 'threads'}' CPU capacity (floor {CPU_SHARE_FLOOR:.0%}"
                      f"{f'; load average {load}' if load is not None else ''}): other load took the cores")
    others = contention.get("gpu_other_processes")
    if isinstance(others, int) and others > 0:
        causes.append(f"{others} other compute process{'es' if others != 1 else ''} shared the GPU")
    throttled = [r for r in contention.get("gpu_throttle_reasons") or () if r in THROTTLES]
    if throttled:
        causes.append("the GPU clocks were throttled (" + ", ".join(throttled) + ")")
    return causes


def judge(profile: str | None, metrics: Mapping, contention: Mapping | None, peers: Sequence[Mapping],
          clock: str | None = None) -> Verdict:
    """The validity of one run from its metrics, its sidecar's contention signals and its peers' facts;
    ``clock`` is the run's ``budget_clock`` ("cpu", "wall", or None for a sidecar without one: wall)."""
    contention = contention or {}
    facts = throughput_facts(metrics, contention)
    causes = _contention_causes(profile, contention, clock)
    cause = _throughput_cause(facts, peers)
    if cause:
        causes.insert(0, cause)
    if causes:
        return Verdict("confounded", causes)
    return Verdict("valid" if facts or contention else "unknown")


def is_confounded(run) -> bool:
    """Whether a folded run was starved (it is evidence for nothing)."""
    return getattr(run, "validity", "unknown") == "confounded"
