"""Noise-aware promotion: when a run may become champion, and when a champion counts as confirmed.

A 5-minute run's val_bpb moves by ~0.001-0.003 between identical runs, so "lower than the best run so
far" promotes noise and reports lucky numbers. The policy here has two levels (docs/promotion.md):

* **keep** (the branch advances, as upstream): the run did not crash, beats the champion's
  *reference* -- the mean of every run measured on the champion's code, not its luckiest run -- by
  more than ``min_gain``, and its peak memory grew by at most ``max_memory_growth``.
* **confirmed**: a kept champion whose gain over the previous confirmed champion holds across
  replicates (one-sided Welch t-test at ``alpha``), or whose single-run gain exceeds ``confirm_k``
  times the noise level.

The noise level sigma (the standard deviation of one run's val_bpb) pools the within-group variance
of replicate groups in the ledger (runs of the same train.py) with ``default_noise``, which counts as
``noise_prior_df`` degrees of freedom: the default rules an empty ledger, replicates take over.

A kept run whose gain over the champion's reference is under ``replicate_below`` * sigma is inside
the noise: the decision recommends ``replicates`` replicate runs. Each decision records the selection
it made (observed gain, its standard error, the bar it cleared), so that :mod:`.estimates` can report
gains corrected for the winner's curse.

Everything here is pure: the CLI (``run``, ``replicate``, ``champion``) and the simulation in
``benchmarks/promotion_sim.py`` call the same functions on lists of :class:`~memorylab_core.model.Run`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from ..evidence import stats
from ..ledger.files import read_regular
from ..ledger.model import Event, Run, plural
from ..ledger.store import warn
from .registry import CHAMPION_EVENT, champion, code_key, confirmed_champion, is_candidate, is_evidence, is_measured

DEFAULT_NOISE = 0.002
CONFIG_NAME = "promotion.json"


class PolicyError(ValueError):
    """A policy value or config file that makes no sense (the CLI turns it into exit 1)."""


@dataclass(frozen=True)
class PromotionPolicy:
    """The promotion rules' parameters. Override per command, or in ``<store>/promotion.json``."""

    min_gain: float = 0.0  # keep: gain over the champion's reference must exceed this (val_bpb)
    max_memory_growth: float = 0.15  # keep: peak memory may grow at most this fraction over the reference
    confirm_k: float = 3.0  # confirmed: a single-run gain above confirm_k * sigma
    alpha: float = 0.05  # confirmed: one-sided Welch p-value below alpha across replicates
    default_noise: float = DEFAULT_NOISE  # sigma of one run before the ledger has replicates
    noise_prior_df: int = 4  # weight of default_noise, in degrees of freedom, against the ledger's replicates
    exclude_discovery: bool = True  # estimate gains from replicates only, not the run that won the keep
    replicate_below: float = 0.25  # a kept gain under this many sigma is inside the noise: replicate it
    replicates: int = 1  # replicate runs the decision asks for when a kept gain is inside the noise

    @classmethod
    def from_mapping(cls, data: Mapping, base: PromotionPolicy | None = None) -> PromotionPolicy:
        """A policy from a JSON object (unknown keys and bad values are refused), on top of ``base``."""
        if not isinstance(data, Mapping):
            raise PolicyError("promotion policy must be a JSON object")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise PolicyError(f"unknown promotion policy key(s): {', '.join(unknown)}")
        values = {name: _coerce(name, known[name].type, value) for name, value in data.items() if value is not None}
        policy = replace(base or cls(), **values)
        policy.validate()
        return policy

    def validate(self) -> None:
        checks = [
            (self.min_gain >= 0, "min_gain must be >= 0"),
            (self.max_memory_growth >= 0, "max_memory_growth must be >= 0"),
            (self.confirm_k > 0, "confirm_k must be > 0"),
            (0 < self.alpha < 1, "alpha must be in (0, 1)"),
            (self.default_noise > 0, "default_noise must be > 0"),
            (self.noise_prior_df >= 1, "noise_prior_df must be >= 1"),
            (self.replicates >= 1, "replicates must be >= 1"),
            (self.replicate_below >= 0, "replicate_below must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise PolicyError(message)

    def to_dict(self) -> dict:
        return asdict(self)


def _coerce(name: str, kind: str, value: object) -> object:
    if kind == "bool":
        if not isinstance(value, bool):
            raise PolicyError(f"{name} must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PolicyError(f"{name} must be a finite number, got {value!r}")
    if kind == "int":
        if int(value) != value:
            raise PolicyError(f"{name} must be an integer, got {value!r}")
        return int(value)
    return float(value)


# -- samples and noise ------------------------------------------------------------------------------

_GROUPS: dict = {"token": None, "groups": {}, "excluded": {}}


def _group(runs: Sequence[Run]) -> None:
    """Fill :data:`_GROUPS` for ``runs``: valid measured runs by code key, and the confounded ones apart.

    One decision asks for several groups of the same run list; on a 100,000-run ledger the grouping
    pass dominates, so the grouping of the latest list seen is kept (keyed by the list's identity,
    length and last run: appending a run, or a new list, regroups).
    """
    token = (id(runs), len(runs), id(runs[-1]) if runs else None)
    if _GROUPS["token"] == token:
        return
    groups: dict[str, list[Run]] = {}
    excluded: dict[str, list[Run]] = {}
    for run in runs:
        if is_measured(run):  # a confounded run is no measurement of its code: kept apart, never pooled
            (groups if is_evidence(run) else excluded).setdefault(code_key(run), []).append(run)
    _GROUPS.update(token=token, groups=groups, excluded=excluded)


def code_groups(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """Valid measured runs by :func:`code_key`, in ledger order."""
    _group(runs)
    return _GROUPS["groups"]


def excluded_runs(run: Run, runs: Sequence[Run]) -> list[Run]:
    """The measured runs of ``run``'s code that were confounded: left out of its reference and of sigma."""
    _group(runs)
    return list(_GROUPS["excluded"].get(code_key(run), ()))


def same_code_runs(run: Run, runs: Sequence[Run]) -> list[Run]:
    """Valid measured runs of ``run``'s code, in ledger order (``run`` itself included when it is one)."""
    found = list(code_groups(runs).get(code_key(run), ()))
    if is_measured(run) and is_evidence(run) and all(r.index != run.index for r in found):
        found.append(run)
    return found


@dataclass(frozen=True)
class Noise:
    """The noise level: standard deviation of one run's val_bpb, and where it came from.

    ``source``: ``ledger`` (measured: valid replicate groups contributed), ``default`` (a prior: no
    code was run twice yet) or ``unknown`` (codes were run more than once but every replicate that
    would have measured the noise was confounded: ``sigma`` is then the prior, used but not measured).
    """

    sigma: float
    df: float  # degrees of freedom: the ledger's replicate df plus the default's noise_prior_df
    groups: int  # replicate groups that contributed
    source: str  # "ledger", "default" or "unknown"
    excluded: int = 0  # confounded runs of codes run more than once: left out of sigma
    replicates: int = 0  # measured runs (valid or not) of codes run more than once

    @property
    def kind(self) -> str:
        """Where σ came from, in the words every decision reason uses."""
        return {"ledger": "σ measured", "unknown": "σ unknown: the prior"}.get(self.source, "σ a prior")

    def to_dict(self) -> dict:
        return {"sigma": round(self.sigma, 6), "df": self.df, "groups": self.groups, "source": self.source,
                "excluded": self.excluded, "replicates": self.replicates}


def estimate_noise(runs: Sequence[Run], policy: PromotionPolicy) -> Noise:
    """Pooled within-group variance of valid replicate groups, shrunk toward the default (noise_prior_df
    weight). Confounded runs never enter it; when they were the only replicates, the noise is unknown."""
    groups = code_groups(runs)
    excluded = _GROUPS["excluded"]
    multi = [[r.val_bpb for r in group] for group in groups.values() if len(group) >= 2]
    repeated = [k for k in groups.keys() | excluded.keys() if len(groups.get(k, ())) + len(excluded.get(k, ())) >= 2]
    dropped = sum(len(excluded.get(k, ())) for k in repeated)
    total = dropped + sum(len(groups.get(k, ())) for k in repeated)
    sd, df = stats.pooled_sd(multi)
    prior_df = float(policy.noise_prior_df)
    if sd is None:
        return Noise(policy.default_noise, prior_df, 0, "unknown" if dropped else "default", dropped, total)
    variance = (sd * sd * df + policy.default_noise ** 2 * prior_df) / (df + prior_df)
    return Noise(math.sqrt(variance), df + prior_df, len(multi), "ledger", dropped, total)


@dataclass(frozen=True)
class Sample:
    """The runs of one code version used for an estimate."""

    run_ids: tuple[str, ...]
    values: tuple[float, ...]
    memory: tuple[float, ...]
    dropped: str | None = None  # the discovery run left out of the estimate, if any

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return stats.mean(self.values)

    @property
    def memory_mean(self) -> float | None:
        return stats.mean(self.memory) if self.memory else None

    def group(self, noise: Noise) -> stats.Group:
        """The Welch group. Its run variance pools the group's own scatter (n - 1 df) with the noise
        level (``noise.df``): two or three replicates alone say little about a variance."""
        own = stats.sample_var(self.values)
        own_df = self.n - 1
        pooled = ((own or 0.0) * own_df + noise.sigma ** 2 * noise.df) / (own_df + noise.df)
        return stats.Group(self.mean, pooled, self.n, own_df + noise.df)

    def to_dict(self) -> dict:
        return {"n": self.n, "mean": round(self.mean, 6), "run_ids": list(self.run_ids), "dropped": self.dropped}

    def words(self) -> str:
        """What the mean is over: ``2 runs``, ``1 run, the discovery run left out``."""
        return plural(self.n, "run") + (", the discovery run left out" if self.dropped else "")


def sample_of(run: Run, runs: Sequence[Run], unbiased: bool = False) -> Sample:
    """All measured runs of ``run``'s code; ``unbiased`` leaves out the first (discovery) run once replicated."""
    group = same_code_runs(run, runs)
    dropped = None
    if unbiased and len(group) >= 2:
        dropped, group = group[0].run_id, group[1:]
    return Sample(
        run_ids=tuple(r.run_id for r in group),
        values=tuple(r.val_bpb for r in group),
        memory=tuple(r.memory_gb for r in group if r.memory_gb is not None and r.memory_gb > 0),
        dropped=dropped,
    )


# -- decisions --------------------------------------------------------------------------------------

_LEVEL_LABELS = {"confirmed": "keep (confirmed)", "keep": "keep (unconfirmed)",
                 "confounded": "not judged (confounded)"}


@dataclass
class Decision:
    """What the policy says about one run (``evaluate_run``) or one replicated champion (``evaluate_replicates``)."""

    accepted: bool
    level: str  # "confirmed", "keep", "discard", "confounded" (a starved run: recorded as a discard) or "crash"
    reasons: list[str]
    metrics: dict = field(default_factory=dict)
    thresholds: dict = field(default_factory=dict)
    champion: str | None = None  # run id of the champion compared against
    confirmed_champion: str | None = None  # run id of the confirmed champion compared against
    recommendation: str | None = None  # "replicate", "rollback" or None
    rollback_to: str | None = None
    overridden: str | None = None  # status forced by the caller (--status), when it differs
    baseline: bool = False  # "confirmed" only as the arena's baseline: nothing was confirmed over it

    @property
    def status(self) -> str:
        if self.level == "crash":
            return "crash"
        return "keep" if self.accepted else "discard"

    def summary(self) -> str:
        """One line: ``keep (confirmed): beats ...``, and the status a caller forced over it. The baseline is
        never called confirmed (docs/promotion.md)."""
        forced = f" (overridden: recorded as {self.overridden})" if self.overridden else ""
        label = "keep (the baseline)" if self.baseline else _LEVEL_LABELS.get(self.level, self.level)
        return f"{label}: {'; '.join(self.reasons)}{forced}"

    @property
    def shown_level(self) -> str:
        """The level users read (JSON, the stored record): the baseline's is "baseline", never "confirmed"."""
        return "baseline" if self.baseline else self.level

    def to_dict(self) -> dict:
        return {
            "accepted": self.accepted,
            "level": self.shown_level,
            "status": self.status,
            "reasons": list(self.reasons),
            "metrics": self.metrics,
            "thresholds": self.thresholds,
            "champion": self.champion,
            "confirmed_champion": self.confirmed_champion,
            "recommendation": self.recommendation,
            "rollback_to": self.rollback_to,
            "overridden": self.overridden,
            "baseline": self.baseline,
        }


def _thresholds(policy: PromotionPolicy, noise: Noise) -> dict:
    return {
        "min_gain": policy.min_gain,
        "max_memory_growth": policy.max_memory_growth,
        "confirm_k": policy.confirm_k,
        "alpha": policy.alpha,
        "noise": noise.to_dict(),
        "confirm_gain": round(policy.confirm_k * noise.sigma, 6),
    }


def _r6(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def selection(observed: float, se: float, threshold: float, share: float, run_ids: Sequence[str]) -> dict:
    """What a promotion selected on: ``observed`` gain (standard error ``se``) cleared ``threshold``.

    ``share`` is the fraction of the gain's variance that comes from the promoted runs (``run_ids``):
    the part of the selection's luck that sits in their mean. :mod:`.estimates` uses it to correct the
    winner's curse.
    """
    return {"observed": _r6(observed), "se": _r6(se), "threshold": _r6(threshold), "share": round(share, 4),
            "run_ids": list(run_ids)}


def _memory_check(run: Run, ref: Sample, policy: PromotionPolicy) -> tuple[bool, float | None, str | None]:
    """(ok, growth fraction, reason when not ok). Unknown memory on either side passes."""
    ref_mem = ref.memory_mean
    if run.memory_gb is None or not ref_mem:
        return True, None, None
    growth = run.memory_gb / ref_mem - 1.0
    if growth > policy.max_memory_growth:
        return False, growth, (f"peak memory grew {growth:+.0%} ({ref_mem:.1f} → {run.memory_gb:.1f} GB), "
                               f"over the {policy.max_memory_growth:.0%} limit")
    return True, growth, None


def evaluate_run(candidate: Run, prior: Sequence[Run], events: Sequence[Event], policy: PromotionPolicy,
                 noise: Noise | None = None) -> Decision:
    """Keep or discard ``candidate`` (not yet in ``prior``), and whether a keep is confirmed at once."""
    noise = noise or estimate_noise(prior, policy)
    thresholds = _thresholds(policy, noise)
    if not is_measured(candidate):
        return Decision(False, "crash", ["the run crashed or reported no val_bpb"], {"val_bpb": None}, thresholds)
    if not is_evidence(candidate):
        return Decision(False, "confounded", [confounded_reason(candidate)], {"val_bpb": candidate.val_bpb},
                        thresholds, champion=getattr(champion(prior, events), "run_id", None))
    tip = champion(prior, events)
    if tip is None:
        return Decision(True, "confirmed", ["first kept run: it is the baseline champion"],
                        {"val_bpb": candidate.val_bpb}, thresholds, recommendation="replicate", baseline=True)
    ref = sample_of(tip, prior)
    gain = ref.mean - candidate.val_bpb
    mem_ok, growth, mem_reason = _memory_check(candidate, ref, policy)
    metrics = {"val_bpb": candidate.val_bpb, "reference_val_bpb": _r6(ref.mean), "reference_n": ref.n,
               "gain": _r6(gain), "memory_growth": _r6(growth)}
    decision = Decision(False, "discard", [], metrics, thresholds, champion=tip.run_id)
    if gain <= policy.min_gain:
        decision.reasons.append(f"does not beat champion {tip.run_id}'s reference {ref.mean:.6f} "
                                f"(mean of {ref.n} run{'s' if ref.n != 1 else ''}) by more than "
                                f"{policy.min_gain:g}: gain {gain:+.6f}")
    if not mem_ok:
        decision.reasons.append(mem_reason)
    if decision.reasons:
        return decision
    decision.accepted, decision.level = True, "keep"
    decision.reasons.append(f"beats champion {tip.run_id}'s reference {ref.mean:.6f} (mean of {ref.n}) by {gain:.6f}")
    se = noise.sigma * math.sqrt(1 + 1 / ref.n)
    metrics["selection"] = selection(gain, se, policy.min_gain, ref.n / (ref.n + 1), [candidate.run_id])
    _confirm_single(decision, candidate, prior, events, policy, noise)
    return decision


def _is_baseline(run: Run, runs: Sequence[Run]) -> bool:
    """Whether ``run``'s code is the arena's baseline (its first kept run)."""
    first = confirmed_champion(runs, ())
    return first is not None and code_key(first) == code_key(run)


def anchor_words(confirmed: Run, runs: Sequence[Run]) -> str:
    """How reasons name what a gain is confirmed over: ``confirmed champion X``, or ``the baseline X`` when
    nothing was ever confirmed over the arena's first kept run (the baseline is never called confirmed)."""
    return f"{'the baseline' if _is_baseline(confirmed, runs) else 'confirmed champion'} {confirmed.run_id}"


def confounded_reason(run: Run) -> str:
    """Why a starved run is not judged: it measured the machine, so it is never kept, promoted or confirmed."""
    causes = "; ".join(run.extra.get("confound") or []) or "its training was starved"
    return (f"confounded, not evidence ({causes}): never kept, promoted or confirmed; the branch stays on its "
            "commit until a valid run of it decides (docs/evidence.md)")


def _confirm_single(decision: Decision, candidate: Run, prior: Sequence[Run], events: Sequence[Event],
                    policy: PromotionPolicy, noise: Noise) -> None:
    """Confirmed at once when the single-run gain over the confirmed champion exceeds k * sigma."""
    confirmed = confirmed_champion(prior, events)
    anchor = anchor_words(confirmed, prior)
    ref = sample_of(confirmed, prior, unbiased=policy.exclude_discovery)
    gain = ref.mean - candidate.val_bpb
    bar = policy.confirm_k * noise.sigma
    se = noise.sigma * math.sqrt(1 + 1 / ref.n)
    decision.confirmed_champion = confirmed.run_id
    decision.metrics.update({"confirmed_reference_val_bpb": _r6(ref.mean), "confirmed_reference_n": ref.n,
                             "gain_vs_confirmed": _r6(gain), "gain_se": _r6(se)})
    if gain > bar:
        decision.level = "confirmed"
        decision.metrics["selection"] = selection(gain, se, bar, ref.n / (ref.n + 1), [candidate.run_id])
        decision.reasons.append(f"confirmed: single-run gain {gain:.6f} over {anchor} "
                                f"exceeds {policy.confirm_k:g}×σ = {bar:.6f} ({noise.kind})")
        return
    decision.reasons.append(f"not confirmed: gain {gain:.6f} over {anchor} is "
                            f"under {policy.confirm_k:g}×σ = {bar:.6f} ({noise.kind})")
    if decision.metrics["gain"] < policy.replicate_below * noise.sigma:
        decision.recommendation = "replicate"
        band = policy.replicate_below * noise.sigma
        decision.reasons.append(f"the gain over the champion is inside the noise (< {policy.replicate_below:g}×σ = "
                                f"{band:.6f}, {noise.kind}): replicate it ({plural(policy.replicates, 'run')})")


def evaluate_replicates(target: Run, runs: Sequence[Run], events: Sequence[Event], policy: PromotionPolicy,
                        noise: Noise | None = None) -> Decision:
    """After replicates of ``target``'s code: is it confirmed over the confirmed champion, or a false keep?

    ``runs`` holds everything logged so far (the replicates included). ``accepted`` says the target
    still beats the champion it displaced; ``level`` is ``confirmed`` when the Welch test says so.
    """
    noise = noise or estimate_noise(runs, policy)
    thresholds = _thresholds(policy, noise)
    confirmed = confirmed_champion(runs, events)
    sample = sample_of(target, runs, unbiased=policy.exclude_discovery)
    if not sample.n:  # every run of the code was starved: nothing measured it
        starved = excluded_runs(target, runs)
        return Decision(False, "discard", [exclusion_phrase(len(starved), len(starved), noise),
                                           "no valid run of its code: nothing to confirm; re-run it on a quiet "
                                           "machine (a valid run decides)"],
                        {"n": 0, "excluded": [r.run_id for r in starved]}, thresholds, champion=target.run_id)
    metrics = {"val_bpb_mean": _r6(sample.mean), "n": sample.n, "sample": sample.to_dict(),
               "sd": _r6(math.sqrt(v)) if (v := stats.sample_var(sample.values)) is not None else None}
    decision = Decision(True, "keep", [], metrics, thresholds, champion=target.run_id,
                        confirmed_champion=confirmed.run_id if confirmed else None)
    starved = excluded_runs(target, runs)
    if starved:
        metrics["excluded"] = [{"run_id": r.run_id, "causes": list(r.extra.get("confound") or [])} for r in starved]
        decision.reasons.append(exclusion_phrase(len(starved), len(starved) + len(same_code_runs(target, runs)),
                                                 noise))
    if not is_candidate(target):
        decision.accepted, decision.level = False, "discard"
        decision.reasons.append(f"{target.run_id} is not a kept run: replicates measure it but cannot promote it")
        return decision
    if confirmed is None or code_key(confirmed) == code_key(target):
        decision.level = "confirmed"
        decision.baseline = confirmed is not None and _is_baseline(confirmed, runs)
        decision.reasons.append(("the baseline: nothing to confirm it over; its replicates measure the noise"
                                 if decision.baseline else "already the confirmed champion") if confirmed
                                else "no kept run to compare with")
        return decision
    ref = sample_of(confirmed, runs, unbiased=policy.exclude_discovery)
    test = stats.welch_greater(ref.group(noise), sample.group(noise))
    low, high = test.interval(0.9)
    metrics.update({"confirmed_reference_val_bpb": _r6(ref.mean), "confirmed_reference_n": ref.n,
                    "gain_vs_confirmed": _r6(test.diff), "gain_se": _r6(test.se), "gain_ci90": [_r6(low), _r6(high)],
                    "t": _r6(test.t), "df": None if math.isinf(test.df) else round(test.df, 2),
                    "p_value": _r6(test.p_value)})
    if test.p_value < policy.alpha and test.diff > policy.min_gain:
        decision.level = "confirmed"
        new = sample.group(noise)
        bar = stats.t_ppf(1 - policy.alpha, test.df) * test.se if test.se > 0 else 0.0
        share = (new.var / new.n) / (test.se ** 2) if test.se > 0 else 0.0
        metrics["selection"] = selection(test.diff, test.se, max(bar, policy.min_gain), share, sample.run_ids)
        decision.reasons.append(f"confirmed: gain {test.diff:.6f} ± {test.se:.6f} over "
                                f"{anchor_words(confirmed, runs)} holds across {sample.n} runs (Welch p = "
                                f"{test.p_value:.4f} < {policy.alpha:g})")
        return decision
    decision.reasons.append(f"not confirmed: gain {test.diff:+.6f} ± {test.se:.6f} ({sample.words()}) over "
                            f"{anchor_words(confirmed, runs)} (Welch p = {test.p_value:.4f}, needs < {policy.alpha:g})")
    _check_displaced(decision, target, runs, events, policy, noise)
    return decision


def exclusion_phrase(excluded: int, total: int, noise: Noise) -> str:
    """``3 of 4 runs of its code starved (confounded): excluded; noise unknown``."""
    tail = "noise unknown (no valid replicate)" if noise.source == "unknown" else "they measured nothing"
    return f"{excluded} of {total} runs of its code starved (confounded): excluded from its mean and from σ; {tail}"


def _check_displaced(decision: Decision, target: Run, runs: Sequence[Run], events: Sequence[Event],
                     policy: PromotionPolicy, noise: Noise) -> None:
    """Roll back a replicated tip only on evidence: it is significantly worse than the champion it displaced.

    Rolling back on a worse point estimate alone undoes as many real small gains as noise keeps (see
    docs/benchmarks.md), so the bar is the same one-sided Welch test at ``alpha`` that confirms.
    """
    displaced = displaced_champion(target, runs, events)
    if displaced is None or code_key(displaced) == code_key(target):
        return
    sample, ref = sample_of(target, runs), sample_of(displaced, runs)  # the keep rule's references: every run
    test = stats.welch_greater(sample.group(noise), ref.group(noise))
    decision.metrics.update({"displaced_champion": displaced.run_id, "displaced_reference_val_bpb": _r6(ref.mean),
                             "worse_than_displaced_p": _r6(test.p_value)})
    if test.p_value >= policy.alpha:
        verdict = "still beats" if sample.mean < ref.mean else "is no better than, but not significantly worse than,"
        decision.reasons.append(f"replicated mean {sample.mean:.6f} ({sample.words()}, the discovery run included) "
                                f"{verdict} {displaced.run_id} ({ref.mean:.6f}, {ref.words()}): keep building on it")
        return
    decision.accepted, decision.level = False, "discard"
    tip = champion(runs, events)
    if tip is not None and code_key(tip) == code_key(target):
        decision.recommendation, decision.rollback_to = "rollback", displaced.run_id
    decision.reasons.append(f"replicated mean {sample.mean:.6f} ({sample.words()}, the discovery run included) is "
                            f"worse than {displaced.run_id} ({ref.mean:.6f}, {ref.words()}; Welch p = "
                            f"{test.p_value:.4f} < {policy.alpha:g}): the keep was noise; roll back")


def displaced_champion(target: Run, runs: Sequence[Run], events: Sequence[Event]) -> Run | None:
    """The champion ``target`` took over from: the event's ``prior_champion``, else the champion before it."""
    by_id = {r.run_id: r for r in runs}
    for event in reversed(events):
        if event.event_type == CHAMPION_EVENT and event.data.get("run_id") == target.run_id:
            prior = by_id.get(str(event.data.get("prior_champion") or ""))
            if prior is not None and is_candidate(prior):  # an older store's event may name a confounded run
                return prior
    before = [e for e in events if e.runs_before <= target.index]
    return champion([r for r in runs if r.index < target.index], before)


def read_policy_file(path: Path) -> PromotionPolicy:
    """The policy in a ``promotion.json`` (defaults when the file does not exist). Raises PolicyError."""
    if not path.exists():
        return PromotionPolicy()
    try:
        data = json.loads(read_regular(path).decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise PolicyError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    except RecursionError:
        raise PolicyError(f"cannot read {path}: nested too deeply") from None
    try:
        return PromotionPolicy.from_mapping(data)
    except PolicyError as exc:
        raise PolicyError(f"{path}: {exc}") from exc


def store_policy(root: Path) -> PromotionPolicy:
    """The store's configured policy for read-only views (report): a broken file warns and falls back."""
    try:
        return read_policy_file(root / CONFIG_NAME)
    except PolicyError as exc:
        warn(f"{exc}; using the default promotion policy")
        return PromotionPolicy()
