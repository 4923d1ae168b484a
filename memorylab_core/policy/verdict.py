"""One verdict: the reference, gain and noise sigma the promotion policy judged a run by, for every view.

The promotion policy (:mod:`.promotion`) judges a run against the champion's *reference* -- the mean of
every run measured on the champion's code in the run's arena, with ``n`` -- and reads the gain against
the measured noise sigma. Every view (the decision packet, ``guide``, ``status``, the report and the
dashboard) states those same numbers, taken from here:

* :func:`judge` -- one run's verdict: the numbers its recorded ``promotion`` decision used, else (runs
  logged by hand with ``log``) the numbers the policy computes for it now. Stored in the decision
  packet as ``verdict`` and read back by every view, so no view recomputes a gain its own way.
* :func:`standing` -- the arena's champion now: reference (mean of n runs), the best single run of the
  champion's code beside it (labelled as such: it is the luckiest run, not the reference) and sigma.
* :func:`noise_alert` -- a measured sigma far above the policy's ``default_noise`` (``NOISE_ALERT_RATIO``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..ledger.model import Event, Run, plural
from .promotion import PromotionPolicy, estimate_noise, evaluate_run, same_code_runs, sample_of
from .registry import champion, is_measured

# A measured sigma above this multiple of the policy's default_noise is a status alert. The default is the
# seed-to-seed spread of a quiet run; sigma is shrunk toward it (noise_prior_df), so 3x the default means
# the ledger's own replicate scatter is well over 3x: a busy or unstable machine, where every keep needs a
# gain three times larger to mean anything. Below 3x, seed and data-order noise explain it.
NOISE_ALERT_RATIO = 3.0


def _promotion(run: Run) -> dict:
    promo = run.extra.get("promotion")
    return promo if isinstance(promo, dict) else {}


def _from_decision(decision: dict, source: str) -> dict | None:
    """The verdict fields of a promotion decision (``Decision.to_dict()``); None without a reference."""
    metrics = decision.get("metrics") or {}
    if not isinstance(metrics.get("reference_val_bpb"), (int, float)) or metrics.get("gain") is None:
        return None
    noise = (decision.get("thresholds") or {}).get("noise") or {}
    return {"champion": decision.get("champion"), "reference_val_bpb": metrics["reference_val_bpb"],
            "reference_n": metrics.get("reference_n"), "gain": metrics["gain"], "sigma": noise.get("sigma"),
            "noise_source": noise.get("source"), "noise_groups": noise.get("groups"),
            "noise_excluded": noise.get("excluded") or 0, "source": source}


def judge(run: Run, arena_runs: Sequence[Run], events: Sequence[Event],
          policy: PromotionPolicy | None = None) -> dict | None:
    """``run``'s verdict against its arena's champion (``arena_runs``: the runs logged before it).

    None for a crash, a replicate (a confirmation, judged by :func:`.promotion.evaluate_replicates`)
    and an arena's first run (its baseline: nothing to compare with).
    """
    if run.replicate_of or not is_measured(run):
        return None
    recorded = _promotion(run)
    if recorded:
        return _from_decision(recorded, "promotion")
    decision = evaluate_run(run, arena_runs, events, policy or PromotionPolicy())
    return _from_decision(decision.to_dict(), "policy")


def standing(arena_runs: Sequence[Run], events: Sequence[Event], policy: PromotionPolicy) -> dict | None:
    """The arena's champion as the policy sees it now: reference (mean of n), best single run, sigma."""
    champ = champion(arena_runs, events)
    if champ is None:
        return None
    sample = sample_of(champ, arena_runs)
    best = min(same_code_runs(champ, arena_runs) or [champ], key=lambda r: r.val_bpb)
    noise = estimate_noise(arena_runs, policy)
    ratio = noise.sigma / policy.default_noise
    return {"champion": champ.run_id, "commit": champ.commit, "description": champ.description,
            "reference_val_bpb": round(sample.mean, 6), "reference_n": sample.n,
            "best_single_val_bpb": best.val_bpb, "best_single_run_id": best.run_id,
            "sigma": round(noise.sigma, 6), "noise_source": noise.source, "noise_groups": noise.groups,
            "noise_excluded": noise.excluded, "noise_replicates": noise.replicates,
            "default_noise": policy.default_noise, "noise_ratio": round(ratio, 2),
            "noisy": noise.source == "ledger" and ratio > NOISE_ALERT_RATIO}


def history_standing(history, arena: str) -> dict | None:
    """:func:`standing` of one arena of a :class:`~memorylab_core.index.journal_index.JournalIndex`, under the
    store's configured policy (``promotion.json``)."""
    from .promotion import store_policy

    return standing(history.registry.notable_in(arena), history.events_in(arena), store_policy(history.store.root))


def runs_phrase(n: int | None) -> str:
    """``mean of 3 runs`` / ``its single run`` (the reference's sample size, in words)."""
    if not n or n == 1:
        return "a single run"
    return f"mean of {n} runs"


def noise_phrase(sigma: float | None, source: str | None, groups: int | None = None, excluded: int = 0) -> str:
    """σ with where it came from, everywhere it is shown: ``noise σ 0.002100 (measured, 2 replicate
    groups)``, ``noise σ 0.002000 (a prior: the policy's default, no replicates yet)`` or ``noise σ unknown
    (3 replicate runs starved, none valid; the prior 0.002000 is used)``."""
    if sigma is None:
        return "noise σ unknown"
    if source == "unknown":
        return (f"noise σ unknown ({plural(excluded, 'replicate run')} starved, none valid; "
                f"the prior {sigma:.6f} is used)")
    if source == "ledger":
        many = f", {groups} replicate group{'s' if groups != 1 else ''}" if groups else ""
        left = f", {excluded} starved run{'s' if excluded != 1 else ''} excluded" if excluded else ""
        return f"noise σ {sigma:.6f} (measured{many}{left})"
    return f"noise σ {sigma:.6f} (a prior: the policy's default, no replicates yet)"


def noise_words(noise: dict) -> str:
    """:func:`noise_phrase` of a :meth:`~.promotion.Noise.to_dict`."""
    return noise_phrase(noise.get("sigma"), noise.get("source"), noise.get("groups"), noise.get("excluded") or 0)


def verdict_noise(v: dict) -> str:
    """:func:`noise_phrase` of a verdict or standing dict (its ``sigma``/``noise_*`` fields)."""
    return noise_phrase(v.get("sigma"), v.get("noise_source"), v.get("noise_groups"), v.get("noise_excluded") or 0)


def standing_phrase(s: dict) -> str:
    """The champion line every text view uses: reference, best single run, sigma, each labelled."""
    ref = f"reference {s['reference_val_bpb']:.6f} ({runs_phrase(s['reference_n'])})"
    best = (f" · best single run {s['best_single_val_bpb']:.6f}" if s["reference_n"] and s["reference_n"] > 1
            else "")
    return f"{ref}{best} · {verdict_noise(s)}"


def verdict_phrase(v: dict) -> str:
    """One run's verdict in words: ``gain +0.001000 over reference 1.000000 (mean of 3 runs), noise σ …``."""
    return (f"gain {v['gain']:+.6f} val_bpb over reference {v['reference_val_bpb']:.6f} "
            f"({runs_phrase(v.get('reference_n'))}), {verdict_noise(v)}")


def noise_alert(s: dict | None, arena: str) -> dict | None:
    """The status alert for a measured sigma above NOISE_ALERT_RATIO x the default, or for a noise level
    no valid replicate measured (every replicate was starved); None otherwise."""
    if s and s["noise_source"] == "unknown":
        return {"id": f"noise_unknown:{arena}", "severity": "warning",
                "message": (f"noise unknown: {s['noise_excluded']} of {s['noise_replicates']} replicate runs "
                            f"starved (confounded), none valid; decisions use the prior σ {s['sigma']:.6f}, "
                            "which nothing measured: replicate the champion on a quiet machine"),
                "sigma": s["sigma"], "excluded": s["noise_excluded"]}
    if not s or not s["noisy"]:
        return None
    return {"id": f"noise_high:{arena}", "severity": "warning",
            "message": (f"noise σ {s['sigma']:.6f} is {s['noise_ratio']:g}× the default {s['default_noise']:g} "
                        f"(alert above {NOISE_ALERT_RATIO:g}×): runs on this machine measure little; quiet it "
                        "(other load, throttling) or replicate before trusting any gain"),
            "sigma": s["sigma"], "ratio": s["noise_ratio"]}
