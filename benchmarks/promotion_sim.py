#!/usr/bin/env python3
"""Simulated nights of 100 GPU runs: upstream's greedy rule vs MemoryLab's noise-aware promotion policy.

Model (defaults; docs/benchmarks.md has the table this prints):

* A night is a budget of ``runs`` training runs on one GPU. Run 1 is the baseline.
* Every other run tests a new idea on top of the current branch tip. An idea has a true effect on
  val_bpb: with probability ``p_help`` it helps by Exp(mean ``help_mean``), otherwise it hurts by
  |N(0, ``hurt_sd``)|. A run observes the true val_bpb of its code plus seed noise N(0, ``noise_sd``).
* **naive** (upstream): keep when the observed val_bpb is below the best kept observation so far.
* **policy**: every decision comes from :mod:`memorylab_core.policy.promotion` (the same functions the CLI
  calls, on the same ``Run``/``Event`` objects). The simulated agent does what the decision packet
  says: it replicates the baseline ``baseline_replicates`` times (program.md's setup step), and
  after a keep whose gain is inside the noise it spends ``policy.replicates`` runs on replicates of
  the tip, then acts on ``evaluate_replicates``: a confirmation event, or a rollback when the
  replicated mean no longer beats the champion it displaced. Replicates come out of the same budget.

Measured per night and averaged over ``nights`` (fixed seeds; both rules see the same ideas and the
same seed noise on each idea's first run):

* true gain: true val_bpb of the baseline minus that of the final branch tip (and, for the policy,
  of the final confirmed champion);
* false promotions: keeps of ideas whose true effect is >= 0 (naive, policy keep level); for the
  confirmed level, changes of the confirmed champion to code that is not truly better than the
  previous confirmed champion;
* overstatement: reported gain / true gain - 1, as a ratio of sums over nights. Naive reports the
  baseline's observation minus the best kept observation; the policy reports its gain estimate of the
  confirmed champion over the baseline (``estimates.gain_estimate``, what ``report`` shows).

Run: ``python benchmarks/promotion_sim.py`` (about a minute; ``--nights`` to change, ``--json``).

**Contention** (``--contention``, issue 12): a share ``starve_p`` of runs is starved -- its throughput
falls by U(``starve_low``, ``starve_high``) and, having trained that much less, its val_bpb is worse by
``starve_cost`` x the lost fraction (an assumption: a run that loses 40% of its steps loses 0.02 val_bpb
at the default). Tokens/s of a run jitter by ``tps_jitter`` otherwise. With ``detect`` the agent judges
every run with :func:`memorylab_core.evidence.validity.judge` (the CLI's confound detector, against the
arena's newest valid runs) and, as rule V1 says, re-runs a confounded run once; confounded runs are no
evidence (the policy leaves them out of the reference and sigma, and never keeps one: an idea whose every
measurement was starved is *unresolved*, not a dead end). A fourth setting follows program.md's ``git: stay``:
the agent re-runs a starved commit until a run is valid (at most ``RERUNS_UNTIL_VALID`` times).
``--contention`` prints, for no contention / contention without detection / contention with detection
(and with ``git: stay``): true gain, false keeps, false
dead ends (discarded ideas that truly help), lost true gain (vs the same nights without contention)
and the detector's hits and false alarms.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memorylab_core.evidence import validity
from memorylab_core.ingest import champion_events
from memorylab_core.ledger.model import Event, Run, event_from_record  # noqa: E402
from memorylab_core.policy import (
    estimates,
    promotion,  # noqa: E402
)
from memorylab_core.policy.registry import champion, confirmed_champion  # noqa: E402


@dataclass(frozen=True)
class Model:
    runs: int = 100
    p_help: float = 0.30
    help_mean: float = 0.002
    hurt_sd: float = 0.003
    noise_sd: float = 0.002
    base_val: float = 1.0
    baseline_replicates: int = 3
    starve_p: float = 0.0  # share of runs starved by other load
    starve_low: float = 0.2  # a starved run loses U(starve_low, starve_high) of its throughput
    starve_high: float = 0.6
    starve_cost: float = 0.05  # val_bpb lost per unit of lost throughput (fewer steps trained)
    tps_jitter: float = 0.02  # relative tokens/s spread of unstarved runs
    detect: bool = False  # judge runs with evidence.validity and re-run confounded ones (rule V1)
    reruns: int = 1  # re-runs of a confounded idea: 1 = run --rerun-confounded; more = program.md's "git: stay"


@dataclass
class Night:
    """One night's outcome under one rule."""

    true_gain: float = 0.0
    reported_gain: float = 0.0
    false_promotions: int = 0
    keeps: int = 0
    ideas: int = 0
    replicate_runs: int = 0
    rollbacks: int = 0
    confirmed_true_gain: float = 0.0
    confirmed_reported_gain: float = 0.0
    false_confirmed: int = 0
    confirmations: int = 0
    false_dead_ends: int = 0  # discarded ideas whose true effect helps
    starved: int = 0  # starved measurements
    detected: int = 0  # starved measurements judged confounded
    false_alarms: int = 0  # unstarved measurements judged confounded
    reruns: int = 0
    unresolved: int = 0  # ideas whose every measurement was confounded: no verdict (git stay), not a dead end
    confounded_keeps: int = 0  # keeps of a confounded measurement (the policy refuses them: always 0 now)


class Ideas:
    """The night's idea stream and first-run noise, shared by both rules (common random numbers)."""

    def __init__(self, model: Model, seed: int):
        rng = random.Random(seed)
        self.effects = [self._effect(rng, model) for _ in range(model.runs)]
        self.noise = [rng.gauss(0.0, model.noise_sd) for _ in range(model.runs)]
        self.replicate_rng = random.Random(seed ^ 0x5EED)
        self.starve_rng = random.Random(seed ^ 0xC0FFEE)  # its own stream: contention leaves ideas and noise alone
        self.model = model

    def starvation(self) -> float:
        """The lost throughput fraction of the next measurement (0 for most runs)."""
        m = self.model
        hit = self.starve_rng.random() < m.starve_p
        return self.starve_rng.uniform(m.starve_low, m.starve_high) if hit else 0.0

    @staticmethod
    def _effect(rng: random.Random, model: Model) -> float:
        if rng.random() < model.p_help:
            return -rng.expovariate(1.0 / model.help_mean)
        return abs(rng.gauss(0.0, model.hurt_sd))


def naive_night(model: Model, ideas: Ideas) -> Night:
    """Upstream: keep whatever observes lower than the best kept observation."""
    out = Night()
    tip_true = model.base_val
    base_obs = best_obs = model.base_val + ideas.noise[0]
    for i in range(1, model.runs):
        out.ideas += 1
        starve = ideas.starvation()
        out.starved += starve > 0
        obs = tip_true + ideas.effects[i] + ideas.noise[i] + model.starve_cost * starve
        out.false_dead_ends += obs >= best_obs and ideas.effects[i] < 0
        if obs < best_obs:
            out.keeps += 1
            out.false_promotions += ideas.effects[i] >= 0
            tip_true += ideas.effects[i]
            best_obs = obs
    out.true_gain = model.base_val - tip_true
    out.reported_gain = base_obs - best_obs
    return out


@dataclass
class Ledger:
    """In-memory runs and events, shaped exactly like the history fold's."""

    runs: list[Run] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    truth: dict[str, float] = field(default_factory=dict)  # commit -> true val_bpb

    def add_run(self, commit: str, val: float, replicate_of: str | None = None) -> Run:
        n = len(self.runs)
        run = Run(index=n, offset=n, run_id=f"r{n}", timestamp=None, ts=None, status="discard", val_bpb=val,
                  memory_gb=None, description="", commit=commit, replicate_of=replicate_of)
        return run

    def append(self, run: Run) -> None:
        self.runs.append(run)

    def add_event(self, body: dict | None) -> None:
        if body is None:
            return
        event = event_from_record({**body, "event_id": f"e{len(self.events)}"}, len(self.events), -1)
        event.runs_before = len(self.runs)
        self.events.append(event)


class PolicyAgent:
    """An agent that follows MemoryLab's decisions (promotion.evaluate_* and the packet's recommendation)."""

    def __init__(self, model: Model, ideas: Ideas, policy: promotion.PromotionPolicy):
        self.model, self.ideas, self.policy = model, ideas, policy
        self.ledger = Ledger()
        self.night = Night()
        self.used = 0
        self.tip_commit = "c0"

    def measure(self, commit: str, noise: float, replicate_of: str | None = None) -> Run:
        self.used += 1
        starve = self.ideas.starvation()
        run = self.ledger.add_run(commit, self.ledger.truth[commit] + noise + self.model.starve_cost * starve,
                                  replicate_of)
        rng = self.ideas.starve_rng
        tps = 1.6e6 * (1 - starve) * (1 + rng.gauss(0.0, self.model.tps_jitter))
        run.extra["throughput"] = {"tokens_per_sec": tps}
        self.night.starved += starve > 0
        if self.model.detect:
            peers = [r.extra["throughput"] for r in self.ledger.runs if r.validity == "valid"][-validity.PEERS:]
            run.validity = validity.judge("gpu", {"tokens_per_sec": tps}, None, peers).validity
            self.night.detected += starve > 0 and run.validity == "confounded"
            self.night.false_alarms += starve == 0 and run.validity == "confounded"
        return run

    def first_valid(self, commit: str, noise: float) -> Run:
        """A measurement of ``commit``; a confounded one is logged as no evidence and re-run (V1), up to
        ``model.reruns`` times while the budget lasts."""
        run = self.measure(commit, noise)
        for _ in range(self.model.reruns):
            if run.validity != "confounded" or self.used >= self.model.runs:
                break
            run.status = "discard"
            self.ledger.append(run)  # status discard, validity confounded: evidence for nothing
            self.night.reruns += 1
            run = self.measure(commit, self.ideas.replicate_rng.gauss(0.0, self.model.noise_sd))
        return run

    def run_idea(self, i: int) -> None:
        commit = f"c{i}"
        effect = self.ideas.effects[i] if i else 0.0  # run 0 is the baseline: no change
        self.ledger.truth[commit] = self.ledger.truth.get(self.tip_commit, self.model.base_val) + effect
        run = self.first_valid(commit, self.ideas.noise[i])
        decision = promotion.evaluate_run(run, self.ledger.runs, self.ledger.events, self.policy)
        run.status = decision.status
        if decision.level == "confounded":  # every measurement starved: no verdict, the idea is no dead end
            self.ledger.append(run)
            self.night.unresolved += i > 0
            return
        self.night.confounded_keeps += decision.accepted and run.validity == "confounded"
        event = champion_events.event_after_run(run, decision, self.ledger.runs, self.ledger.events, "run")
        prior_confirmed = confirmed_champion(self.ledger.runs, self.ledger.events)
        self.ledger.append(run)
        self.ledger.add_event(event)
        if i > 0:
            self.night.ideas += 1
        if not decision.accepted:
            self.night.false_dead_ends += i > 0 and self.ideas.effects[i] < 0
            return
        self.tip_commit = commit
        if i > 0:
            self.night.keeps += 1
            self.night.false_promotions += self.ideas.effects[i] >= 0
            if decision.level == "confirmed":
                self._count_confirmation(prior_confirmed, run)
        if decision.recommendation == "replicate":
            self.replicate(run, self.model.baseline_replicates if i == 0 else self.policy.replicates)

    def replicate(self, original: Run, count: int) -> None:
        for _ in range(count):
            if self.used >= self.model.runs:
                return
            rep = self.measure(original.commit, self.ideas.replicate_rng.gauss(0.0, self.model.noise_sd),
                               original.run_id)
            rep.status = original.status if rep.validity != "confounded" else "discard"
            self.ledger.append(rep)
            self.night.replicate_runs += 1
        runs, events = self.ledger.runs, self.ledger.events
        decision = promotion.evaluate_replicates(original, runs, events, self.policy)
        prior_confirmed = confirmed_champion(runs, events)
        confirm = champion_events.event_after_replicates(original, decision, runs, events)
        if confirm is not None:
            self.ledger.add_event(confirm)
            self._count_confirmation(prior_confirmed, original)
        if decision.recommendation == "rollback":
            target = next(r for r in runs if r.run_id == decision.rollback_to)
            self.ledger.add_event(champion_events.rollback_event(target, runs, events, "replicates"))
            self.tip_commit = target.commit
            self.night.rollbacks += 1

    def _count_confirmation(self, previous: Run | None, new: Run) -> None:
        self.night.confirmations += 1
        if previous is not None and self.ledger.truth[new.commit] >= self.ledger.truth[previous.commit]:
            self.night.false_confirmed += 1

    def play(self) -> Night:
        i = 0
        while self.used < self.model.runs:
            self.run_idea(i)
            i += 1
        self._finish()
        return self.night

    def _finish(self) -> None:
        runs, events, base = self.ledger.runs, self.ledger.events, self.model.base_val
        tip, confirmed = champion(runs, events), confirmed_champion(runs, events)
        baseline = runs[0]
        self.night.true_gain = base - self.ledger.truth[tip.commit]
        self.night.confirmed_true_gain = base - self.ledger.truth[confirmed.commit]
        noise = promotion.estimate_noise(runs, self.policy)
        if tip.run_id != baseline.run_id:
            estimate = estimates.gain_estimate(tip, baseline, runs, events, self.policy, noise)
            self.night.reported_gain = estimate["gain"]
        if confirmed.run_id != baseline.run_id:
            estimate = estimates.gain_estimate(confirmed, baseline, runs, events, self.policy, noise)
            self.night.confirmed_reported_gain = estimate["gain"]


def simulate(model: Model, policy: promotion.PromotionPolicy, nights: int, seed: int) -> dict:
    """Average per-night outcomes of both rules over ``nights`` seeded nights."""
    naive, smart = [], []
    for night in range(nights):
        ideas_seed = seed * 1_000_003 + night
        naive.append(naive_night(model, Ideas(model, ideas_seed)))
        smart.append(PolicyAgent(model, Ideas(model, ideas_seed), policy).play())
    return {"naive": summarize(naive, "true_gain", "reported_gain"),
            "policy": summarize(smart, "true_gain", "reported_gain"),
            "policy_confirmed": summarize(smart, "confirmed_true_gain", "confirmed_reported_gain")}


def summarize(nights: list[Night], true_key: str, reported_key: str) -> dict:
    n = len(nights)

    def avg(key: str) -> float:
        return sum(getattr(x, key) for x in nights) / n

    true_sum = sum(getattr(x, true_key) for x in nights)
    reported_sum = sum(getattr(x, reported_key) for x in nights)
    return {
        "nights": n,
        "true_gain": avg(true_key),
        "reported_gain": avg(reported_key),
        "overstatement": reported_sum / true_sum - 1 if true_sum else None,
        "false_promotions": avg("false_promotions"),
        "false_confirmed": avg("false_confirmed"),
        "confirmations": avg("confirmations"),
        "keeps": avg("keeps"),
        "ideas": avg("ideas"),
        "replicate_runs": avg("replicate_runs"),
        "rollbacks": avg("rollbacks"),
        "false_dead_ends": avg("false_dead_ends"),
        "starved": avg("starved"), "detected": avg("detected"), "false_alarms": avg("false_alarms"),
        "reruns": avg("reruns"), "unresolved": avg("unresolved"), "confounded_keeps": avg("confounded_keeps"),
    }


def table(result: dict) -> str:
    naive, pol, conf = result["naive"], result["policy"], result["policy_confirmed"]
    rows = [
        ("ideas tested per night", f"{naive['ideas']:.1f}", f"{pol['ideas']:.1f}", ""),
        ("replicate runs per night", "0", f"{pol['replicate_runs']:.1f}", ""),
        ("keeps per night", f"{naive['keeps']:.1f}", f"{pol['keeps']:.1f}", ""),
        ("rollbacks per night", "0", f"{pol['rollbacks']:.2f}", ""),
        ("true val_bpb gain per night", f"{naive['true_gain']:.4f}", f"{pol['true_gain']:.4f}",
         f"{conf['true_gain']:.4f}"),
        ("true gain vs naive", "100%", f"{pol['true_gain'] / naive['true_gain']:.0%}",
         f"{conf['true_gain'] / naive['true_gain']:.0%}"),
        ("false promotions per night", f"{naive['false_promotions']:.2f}", f"{pol['false_promotions']:.2f}",
         f"{conf['false_confirmed']:.2f}"),
        ("false promotions vs naive", "100%", f"{pol['false_promotions'] / naive['false_promotions']:.0%}",
         f"{conf['false_confirmed'] / naive['false_promotions']:.0%}"),
        ("confirmations per night", "", "", f"{conf['confirmations']:.2f}"),
        ("reported gain per night", f"{naive['reported_gain']:.4f}", f"{pol['reported_gain']:.4f}",
         f"{conf['reported_gain']:.4f}"),
        ("overstatement of the gain", _pct(naive["overstatement"]), _pct(pol["overstatement"]),
         _pct(conf["overstatement"])),
    ]
    lines = ["| metric (mean per night) | naive (upstream) | policy: branch tip | policy: confirmed |",
             "|---|---:|---:|---:|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"


SWEEP = (
    # (label, policy overrides, model overrides): what the defaults are chosen against (docs/benchmarks.md)
    ("shipped defaults", {}, {}),
    ("replicate every unconfirmed keep (replicate_below 1e9)", {"replicate_below": 1e9}, {}),
    ("replicate gains under 1 sigma", {"replicate_below": 1.0}, {}),
    ("never replicate keeps (replicate_below 0)", {"replicate_below": 0.0}, {}),
    ("2 replicates per noisy keep", {"replicates": 2}, {}),
    ("confirm_k 2", {"confirm_k": 2.0}, {}),
    ("keep the discovery run in estimates", {"exclude_discovery": False}, {}),
    ("true noise 0.003 (default 0.002 too low)", {}, {"noise_sd": 0.003}),
)


def sweep_table(nights: int, seed: int) -> str:
    """One row per variant: the metrics the targets are about, relative to the naive rule on the same nights."""
    lines = ["| variant | tip gain vs naive | confirmed gain vs naive | false confirmed / naive false promotions | "
             "confirmed overstatement | naive overstatement | replicate runs |", "|---|---:|---:|---:|---:|---:|---:|"]
    for label, policy_over, model_over in SWEEP:
        policy = promotion.PromotionPolicy.from_mapping(policy_over)
        result = simulate(Model(**model_over), policy, nights, seed)
        naive, tip, conf = result["naive"], result["policy"], result["policy_confirmed"]
        lines.append(f"| {label} | {tip['true_gain'] / naive['true_gain']:.0%} | "
                     f"{conf['true_gain'] / naive['true_gain']:.0%} | "
                     f"{conf['false_confirmed'] / naive['false_promotions']:.1%} | {_pct(conf['overstatement'])} | "
                     f"{_pct(naive['overstatement'])} | {tip['replicate_runs']:.1f} |")
    return "\n".join(lines)


RERUNS_UNTIL_VALID = 8  # program.md step 6, "git: stay": re-run a starved commit until a run is valid (capped)


def contention_table(nights: int, seed: int, starve_p: float = 0.10) -> str:
    """No contention vs contention without / with the confound detector (the real validity.judge)."""
    policy = promotion.PromotionPolicy()
    quiet = simulate(Model(), policy, nights, seed)
    busy = simulate(Model(starve_p=starve_p), policy, nights, seed)
    detected = simulate(Model(starve_p=starve_p, detect=True), policy, nights, seed)
    staying = simulate(Model(starve_p=starve_p, detect=True, reruns=RERUNS_UNTIL_VALID), policy, nights, seed)
    cols = (("no contention", quiet, quiet), ("contention, no detection", busy, quiet),
            ("contention + detection", detected, quiet), ("contention + detection, git stay", staying, quiet))
    lines = ["| rule / setting | true gain per night | lost true gain | false keeps | false dead ends | "
             "starved runs | detected | false alarms | re-runs | unresolved ideas | confounded keeps |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, res, base in cols:
        for rule in ("naive", "policy"):
            if rule == "naive" and name.startswith("contention + detection"):
                continue  # upstream has no detector
            r, b = res[rule], base[rule]
            lost = (b["true_gain"] - r["true_gain"]) / b["true_gain"] if b["true_gain"] else 0.0
            lines.append(f"| {rule}: {name} | {r['true_gain']:.4f} | {lost:+.1%} | {r['false_promotions']:.2f} | "
                         f"{r['false_dead_ends']:.2f} | {r['starved']:.1f} | {r['detected']:.1f} | "
                         f"{r['false_alarms']:.2f} | {r['reruns']:.1f} | {r['unresolved']:.2f} | "
                         f"{r['confounded_keeps']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=400, help="simulated nights (default 400)")
    parser.add_argument("--seed", type=int, default=2024, help="base seed (default 2024)")
    parser.add_argument("--policy", metavar="JSON", default="{}",
                        help='policy overrides as JSON, e.g. \'{"confirm_k": 2.5}\' (default: the shipped policy)')
    parser.add_argument("--noise-sd", type=float, default=Model.noise_sd, help="true seed noise of one run")
    parser.add_argument("--sweep", action="store_true", help="print the sensitivity table of SWEEP instead")
    parser.add_argument("--json", action="store_true", help="print the raw numbers as JSON")
    parser.add_argument("--contention", type=float, metavar="P", nargs="?", const=0.10,
                        help="print the contention table: a share P (default 0.10) of runs starved by 20-60%%")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.contention is not None:
        print(contention_table(args.nights, args.seed, args.contention))
        print(f"\n{args.nights} nights per setting, seed {args.seed}, {time.perf_counter() - started:.0f} s")
        return 0
    if args.sweep:
        print(sweep_table(args.nights, args.seed))
        print(f"\n{args.nights} nights per variant, seed {args.seed}, {time.perf_counter() - started:.0f} s")
        return 0
    policy = promotion.PromotionPolicy.from_mapping(json.loads(args.policy))
    model = Model(noise_sd=args.noise_sd)
    result = simulate(model, policy, args.nights, args.seed)
    result.update({"model": model.__dict__, "policy_used": policy.to_dict(), "seed": args.seed,
                   "seconds": round(time.perf_counter() - started, 1)})
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(table(result))
        print(f"\n{args.nights} nights, seed {args.seed}, {result['seconds']} s; policy {json.dumps(policy.to_dict())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
