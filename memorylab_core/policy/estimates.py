"""Honest gain estimates: what a champion is really worth, without the winner's curse.

A champion's own runs flatter it: it became champion *because* one of them came out low. Two
corrections keep the reported gain honest (docs/promotion.md):

1. With ``exclude_discovery``, once a code has replicates its estimate uses only them, not the
   run that won the keep decision.
2. Whatever selection the remaining runs went through (a single-run keep or confirmation, a Welch
   confirmation over the replicates) is recorded on the promotion decision; the estimate undoes the
   expected luck of that selection with :func:`memorylab_core.stats.selection_corrected`.

The report and ``memorylab champion`` show these estimates with a standard error and a 90% interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..evidence import stats
from ..ledger.model import Event, Run, plural
from .promotion import Noise, PromotionPolicy, code_key, estimate_noise, same_code_runs, sample_of
from .registry import champion, confirmed_champion


@dataclass(frozen=True)
class Value:
    """A code version's estimated val_bpb: its sample mean plus the luck its selection put into it."""

    mean: float  # corrected estimate of the true val_bpb
    raw_mean: float
    correction: float  # mean - raw_mean (>= 0: selection made the raw mean look better)
    group: stats.Group


def _latest_selection(run_ids: set[str], events: Sequence[Event]) -> dict | None:
    """The last recorded selection that picked any of ``run_ids``."""
    for event in reversed(events):
        promotion = event.data.get("promotion")
        sel = (promotion or {}).get("metrics", {}).get("selection") if isinstance(promotion, dict) else None
        if isinstance(sel, dict) and run_ids.intersection(sel.get("run_ids") or ()):
            return sel
    return None


def selection_luck(sel: dict) -> float:
    """How much the selected runs' mean is expected to flatter them (val_bpb units, >= 0)."""
    try:
        observed, se, threshold = float(sel["observed"]), float(sel["se"]), float(sel["threshold"])
        share = float(sel["share"])
    except (KeyError, TypeError, ValueError):
        return 0.0
    return max(0.0, observed - stats.selection_corrected(observed, se, threshold)) * share


def value_of(run: Run, runs: Sequence[Run], events: Sequence[Event], policy: PromotionPolicy,
             noise: Noise) -> Value:
    """The corrected val_bpb estimate of ``run``'s code."""
    sample = sample_of(run, runs, unbiased=policy.exclude_discovery)
    ids = set(sample.run_ids)
    sel = _latest_selection(ids, events)
    correction = 0.0
    if sel is not None:
        # Each selected run carries the selection's luck on average; the sample holds some of them.
        picked = ids.intersection(sel.get("run_ids") or ())
        correction = selection_luck(sel) * len(picked) / sample.n
    group = sample.group(noise)
    corrected = stats.Group(group.mean + correction, group.var, group.n, group.var_df)
    return Value(sample.mean + correction, sample.mean, correction, corrected)


def gain_estimate(new: Run, old: Run, runs: Sequence[Run], events: Sequence[Event], policy: PromotionPolicy,
                  noise: Noise | None = None) -> dict:
    """Gain of ``new`` over ``old`` (positive = ``new`` is better), standard error, 90% interval."""
    noise = noise or estimate_noise(runs, policy)
    a, b = value_of(old, runs, events, policy, noise), value_of(new, runs, events, policy, noise)
    test = stats.welch_greater(a.group, b.group)
    low, high = test.interval(0.9)
    return {"gain": round(test.diff, 6), "se": round(test.se, 6), "ci90": [round(low, 6), round(high, 6)],
            "raw_gain": round(a.raw_mean - b.raw_mean, 6),
            "selection_correction": round(b.correction - a.correction, 6),
            "n_new": b.group.n, "n_old": a.group.n}


def standings(runs: Sequence[Run], events: Sequence[Event], policy: PromotionPolicy) -> dict:
    """The confirmed champion and the (possibly unconfirmed) champion at the tip, with honest gains."""
    noise = estimate_noise(runs, policy)
    tip, confirmed = champion(runs, events), confirmed_champion(runs, events)
    baseline = confirmed_champion(runs, ())
    same = tip is not None and confirmed is not None and code_key(tip) == code_key(confirmed)
    out: dict = {"noise": noise.to_dict(), "policy": policy.to_dict(), "tip_is_confirmed": same,
                 "confirmed": None, "tip": None, "baseline_run_id": baseline.run_id if baseline else None}
    if confirmed is not None:
        out["confirmed"] = _standing(confirmed, runs, events, policy, noise)
        if baseline is not None and code_key(baseline) != code_key(confirmed):
            out["confirmed"]["vs_baseline"] = gain_estimate(confirmed, baseline, runs, events, policy, noise)
    if tip is not None:
        out["tip"] = _standing(tip, runs, events, policy, noise)
        if confirmed is not None and not same:
            out["tip"]["vs_confirmed"] = gain_estimate(tip, confirmed, runs, events, policy, noise)
    return out


def _standing(run: Run, runs: Sequence[Run], events: Sequence[Event], policy: PromotionPolicy,
              noise: Noise) -> dict:
    everything = sample_of(run, runs)
    value = value_of(run, runs, events, policy, noise)
    measured = [r.val_bpb for r in same_code_runs(run, runs) or [run] if r.val_bpb is not None]
    return {"run_id": run.run_id, "commit": run.commit, "description": run.description, "val_bpb": run.val_bpb,
            "best_single_val_bpb": min(measured, default=run.val_bpb),  # of its code: what every view calls so
            "reference_val_bpb": round(everything.mean, 6), "runs": everything.n,
            "estimate_val_bpb": round(value.mean, 6), "estimate_runs": value.group.n,
            "selection_correction": round(value.correction, 6)}


def policy_confirmed(promo: dict) -> bool:
    """Whether the arena's confirmed champion was confirmed by the promotion policy (a gain over k·σ
    or one that held across replicates), not merely its first kept run, the baseline by default."""
    confirmed = promo.get("confirmed")
    return confirmed is not None and confirmed["run_id"] != promo.get("baseline_run_id")


def anchor_label(promo: dict) -> str:
    """What the run gains are measured against is called: ``confirmed champion`` only when the policy
    confirmed it, else ``baseline`` (the arena's first kept run is never called confirmed)."""
    return "confirmed champion" if policy_confirmed(promo) else "baseline"


def champion_headline(promo: dict | None) -> str:
    """The one sentence every view leads with about an arena's champion (``champion``, ``status``,
    ``guide``, the report and the dashboard print it as it is): which run it is and whether the
    promotion policy confirmed it. Without replicates (or a gain over k·σ) it is unconfirmed, and a
    baseline nothing has been confirmed over is unconfirmed too. ``promo``: :func:`standings`."""
    tip = (promo or {}).get("tip")
    if tip is None:
        return "no champion yet: the next kept run is this arena's baseline"
    head = f"champion {tip['run_id']} (best single run {tip['best_single_val_bpb']:.6f})"
    if promo.get("tip_is_confirmed") and policy_confirmed(promo):
        return f"{head}: confirmed by the promotion policy"
    if tip["runs"] <= 1:
        state = "unconfirmed: no replicates yet"
    elif tip["run_id"] == promo.get("baseline_run_id"):
        state = "unconfirmed: the baseline, nothing confirmed yet"
    else:
        state = f"unconfirmed: its {tip['runs']} runs have not confirmed it"
    confirmed = promo.get("confirmed")
    if policy_confirmed(promo) and not promo.get("tip_is_confirmed"):
        state += f"; last confirmed champion {confirmed['run_id']}"
    return f"{head}: {state}"


def history_headline(history, arena: str) -> str:
    """:func:`champion_headline` of one arena of a :class:`~memorylab_core.index.journal_index.JournalIndex`,
    under the store's configured promotion policy (``promotion.json``)."""
    from ..policy.promotion import store_policy

    notable = history.registry.notable_in(arena)
    return champion_headline(standings(notable, history.events_in(arena), store_policy(history.store.root)))


def gain_phrase(gain: dict, against: str, strong: Callable[[str], str] = str) -> str:
    """A gain estimate (``Standing`` ``vs_*`` dict) in words, for the CLI and the report alike.

    ``strong`` wraps the headline number (the report makes it bold).
    """
    low, high = gain["ci90"]
    fix = gain.get("selection_correction") or 0.0
    luck = f"; {fix:.6f} of selection luck removed" if fix > 0 else ""
    headline = strong(f"{gain['gain']:+.6f} ± {gain['se']:.6f}")
    return (f"gain over {against}: {headline} (90% CI {low:+.6f} … {high:+.6f}; "
            f"{gain['n_new']} vs {plural(gain['n_old'], 'run')}{luck})")
