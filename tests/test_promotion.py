"""The promotion policy, its statistics, champion events and honest estimates, on in-memory runs."""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path

import pytest

from memorylab_core.evidence import stats
from memorylab_core.ingest import champion_events, timebudget
from memorylab_core.ledger.model import Event, Run, event_from_record
from memorylab_core.policy import decisions, estimates
from memorylab_core.policy.promotion import (
    PolicyError,
    PromotionPolicy,
    estimate_noise,
    evaluate_replicates,
    evaluate_run,
    read_policy_file,
    sample_of,
)
from memorylab_core.policy.registry import challengers, champion, confirmed_champion

POLICY = PromotionPolicy()


class Ledger:
    """Runs and events in ledger order, the way the history fold hands them to views."""

    def __init__(self) -> None:
        self.runs: list[Run] = []
        self.events: list[Event] = []

    def draft(self, commit: str, val: float | None, mem: float | None = None, replicate_of: str | None = None,
              status: str = "discard") -> Run:
        n = len(self.runs)
        return Run(index=n, offset=n, run_id=f"r{n}", timestamp=None, ts=None, status=status, val_bpb=val,
                   memory_gb=mem, description=f"run {n}", commit=commit, replicate_of=replicate_of)

    def add(self, run: Run) -> Run:
        self.runs.append(run)
        return run

    def event(self, body: dict | None) -> None:
        if body is not None:
            event = event_from_record({**body, "event_id": f"e{len(self.events)}"}, len(self.events), -1)
            event.runs_before = len(self.runs)
            self.events.append(event)

    def run(self, commit: str, val: float | None, mem: float | None = None, policy: PromotionPolicy = POLICY):
        """What ``memorylab run`` does: evaluate, record, append the champion event."""
        draft = self.draft(commit, val, mem, status="crash" if val is None else "discard")
        decision = evaluate_run(draft, self.runs, self.events, policy)
        draft.status = decision.status
        body = champion_events.event_after_run(draft, decision, self.runs, self.events)
        self.add(draft)
        self.event(body)
        return draft, decision

    def replicate(self, original: Run, val: float, policy: PromotionPolicy = POLICY):
        """What one ``memorylab replicate`` run does."""
        rep = self.draft(original.commit, val, replicate_of=original.run_id, status=original.status)
        self.add(rep)
        decision = evaluate_replicates(original, self.runs, self.events, policy)
        self.event(champion_events.event_after_replicates(original, decision, self.runs, self.events))
        return rep, decision


# -- statistics ----------------------------------------------------------------------------------

@pytest.mark.parametrize("t,df,expected", [(1.0, 1, 0.75), (2.0, 2, 0.908248), (-3.0, 2, 0.047733),
                                           (1.812461, 10, 0.95), (2.0, math.inf, 0.977250)])
def test_t_cdf_matches_tables(t, df, expected):
    assert stats.t_cdf(t, df) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("p,df,expected", [(0.95, 1, 6.313752), (0.975, 2, 4.302653), (0.95, 10, 1.812461),
                                           (0.05, 5, -2.015048)])
def test_t_ppf_matches_tables(p, df, expected):
    assert stats.t_ppf(p, df) == pytest.approx(expected, abs=1e-4)


def test_incomplete_beta_known_values():
    assert stats.betainc(2, 3, 0.4) == pytest.approx(0.5248, abs=1e-10)
    assert stats.betainc(0.5, 0.5, 0.5) == pytest.approx(0.5, abs=1e-10)
    assert stats.betainc(1, 1, 0.3) == pytest.approx(0.3, abs=1e-12)


def test_welch_against_a_hand_computation():
    # a = (1.00, 1.02, 1.01), b = (0.99, 0.98): Welch t and df worked out by hand.
    a = stats.Group(1.01, 1e-4, 3, 2)
    b = stats.Group(0.985, 5e-5, 2, 1)
    res = stats.welch_greater(a, b)
    se = math.sqrt(1e-4 / 3 + 5e-5 / 2)
    df = se ** 4 / ((1e-4 / 3) ** 2 / 2 + (5e-5 / 2) ** 2 / 1)
    assert res.se == pytest.approx(se) and res.df == pytest.approx(df)
    assert res.p_value == pytest.approx(1 - stats.t_cdf(0.025 / se, df))


def test_welch_false_positive_rate_is_alpha():
    rng = random.Random(3)
    hits = 0
    for _ in range(2000):
        xs = [rng.gauss(0, 1) for _ in range(4)]
        ys = [rng.gauss(0, 1) for _ in range(3)]
        a = stats.Group(stats.mean(xs), stats.sample_var(xs), 4, 3)
        b = stats.Group(stats.mean(ys), stats.sample_var(ys), 3, 2)
        hits += stats.welch_greater(a, b).p_value < 0.05
    assert 0.03 < hits / 2000 < 0.07


def test_selection_correction_removes_most_of_the_winners_curse():
    rng = random.Random(5)
    for mu in (0.0, 1.0, 2.0, 3.0):
        picked = [x for x in (rng.gauss(mu, 1.0) for _ in range(15000)) if x > 1.5]
        naive = stats.mean(picked)
        corrected = stats.mean([stats.selection_corrected(x, 1.0, 1.5) for x in picked])
        if mu <= 2.0:  # the selection binds: the naive mean is far off, the corrected one much closer
            assert abs(corrected - mu) < 0.5 * abs(naive - mu)
        else:  # the selection hardly binds: both are close
            assert abs(corrected - mu) < 0.2


# -- policy object -------------------------------------------------------------------------------

def test_policy_from_mapping_validates(tmp_path):
    assert PromotionPolicy.from_mapping({"confirm_k": 2, "alpha": 0.1}).confirm_k == 2.0
    for bad in ({"nope": 1}, {"alpha": 1.5}, {"confirm_k": "x"}, {"replicates": 1.5}, {"exclude_discovery": 1},
                {"min_gain": -0.1}, {"default_noise": float("nan")}):
        with pytest.raises(PolicyError):
            PromotionPolicy.from_mapping(bad)
    path = tmp_path / "promotion.json"
    assert read_policy_file(path) == PromotionPolicy()
    path.write_text(json.dumps({"min_gain": 0.001}))
    assert read_policy_file(path).min_gain == 0.001
    path.write_text("{oops")
    with pytest.raises(PolicyError, match="promotion.json"):
        read_policy_file(path)


# -- noise -----------------------------------------------------------------------------------------

def test_noise_is_the_default_until_replicates_then_pools_them():
    led = Ledger()
    base, _ = led.run("c0", 1.000)
    assert estimate_noise(led.runs, POLICY).source == "default"
    for val in (1.004, 0.996, 1.002):
        led.replicate(base, val)
    noise = estimate_noise(led.runs, POLICY)
    values = [1.0, 1.004, 0.996, 1.002]
    own = stats.sample_var(values)
    expected = math.sqrt((own * 3 + 0.002 ** 2 * POLICY.noise_prior_df) / (3 + POLICY.noise_prior_df))
    assert noise.source == "ledger" and noise.groups == 1 and noise.sigma == pytest.approx(expected)
    assert noise.df == 3 + POLICY.noise_prior_df


# -- keep / discard / confirmed -------------------------------------------------------------------

def test_baseline_is_confirmed_and_asks_for_replicates():
    led = Ledger()
    base, decision = led.run("c0", 1.0)
    assert decision.accepted and decision.level == "confirmed" and decision.recommendation == "replicate"
    assert champion(led.runs, led.events) is base and confirmed_champion(led.runs, led.events) is base
    assert led.events[0].data["source"] == "run" and led.events[0].data["level"] == "baseline"  # never "confirmed"
    assert decision.to_dict()["level"] == "baseline" and decision.summary().startswith("keep (the baseline)")


def test_keep_compares_with_the_reference_mean_not_the_luckiest_run():
    led = Ledger()
    base, _ = led.run("c0", 0.990)  # a lucky baseline run
    led.replicate(base, 1.000)
    led.replicate(base, 1.002)  # reference = mean = 0.997333
    run, decision = led.run("c1", 0.995)  # worse than the lucky 0.990, better than the reference
    assert decision.accepted and decision.status == "keep"
    assert decision.metrics["reference_val_bpb"] == pytest.approx(0.997333, abs=1e-6)
    assert decision.metrics["reference_n"] == 3
    assert champion(led.runs, led.events) is run  # the event beats "lowest single val_bpb"


def test_discard_when_not_better_than_the_reference_or_memory_grew():
    led = Ledger()
    led.run("c0", 1.0, mem=40.0)
    _, worse = led.run("c1", 1.0001, mem=40.0)
    assert not worse.accepted and worse.status == "discard" and "does not beat" in worse.reasons[0]
    _, fat = led.run("c2", 0.98, mem=47.0)  # +17.5% memory
    assert not fat.accepted and "peak memory grew" in fat.reasons[-1]
    _, ok = led.run("c3", 0.98, mem=45.0)  # +12.5%: inside the 15% limit
    assert ok.accepted
    _, floor = led.run("c4", 0.9799, policy=PromotionPolicy(min_gain=0.001))
    assert not floor.accepted


def test_crash_is_never_promoted():
    led = Ledger()
    led.run("c0", 1.0)
    run, decision = led.run("c1", None)
    assert decision.level == "crash" and decision.status == "crash" and not decision.accepted
    assert len(led.events) == 1


def test_single_run_confirmation_needs_k_sigma():
    led = Ledger()
    led.run("c0", 1.0)
    _, small = led.run("c1", 0.9996)  # gain 0.0004 < 0.25 sigma: inside the noise
    assert small.level == "keep" and small.recommendation == "replicate"
    _, mid = led.run("c2", 0.9970)  # gain over the confirmed baseline 0.003 < 3 sigma = 0.006
    assert mid.level == "keep" and mid.recommendation is None
    big, confirmed = led.run("c3", 0.9930)  # 0.007 > 0.006 over the confirmed baseline
    assert confirmed.level == "confirmed" and confirmed.metrics["selection"]["threshold"] == pytest.approx(0.006)
    assert confirmed_champion(led.runs, led.events) is big


def test_replicates_confirm_with_welch():
    led = Ledger()
    base, _ = led.run("c0", 1.0)
    for val in (1.001, 0.999):
        led.replicate(base, val)
    tip, decision = led.run("c1", 0.996)
    assert decision.level == "keep"
    results = [led.replicate(tip, val)[1] for val in (0.9955, 0.9962, 0.9958)]
    first = results[0]
    assert first.level == "confirmed" and first.metrics["p_value"] < 0.05 and "Welch" in first.reasons[0]
    assert first.metrics["selection"]["run_ids"] == [led.runs[4].run_id]  # the replicate, not the discovery run
    assert [r.reasons[0] for r in results[1:]] == ["already the confirmed champion"] * 2
    assert confirmed_champion(led.runs, led.events) is tip
    assert led.events[-1].data["source"] == "replicate" and led.events[-1].data["confirmed_run_id"] == tip.run_id


def test_replicates_that_show_noise_recommend_a_rollback():
    led = Ledger()
    base, _ = led.run("c0", 1.0)
    for val in (1.0005, 0.9995):
        led.replicate(base, val)
    tip, decision = led.run("c1", 0.9999)
    assert decision.accepted
    for val in (1.0060, 1.0070, 1.0065):
        _, rep = led.replicate(tip, val)
    assert rep.recommendation == "rollback" and rep.rollback_to == base.run_id and not rep.accepted


def test_replicates_of_a_discarded_run_never_promote():
    led = Ledger()
    led.run("c0", 1.0)
    loser, _ = led.run("c1", 1.01)
    _, rep = led.replicate(loser, 0.95)
    assert rep.level == "discard" and not rep.accepted and len(led.events) == 1


# -- registry with events --------------------------------------------------------------------------

def test_rollback_event_restores_an_earlier_champion_and_later_keeps_still_win():
    led = Ledger()
    base, _ = led.run("c0", 1.0)
    mid, _ = led.run("c1", 0.999)
    top, _ = led.run("c2", 0.990)
    assert champion(led.runs, led.events) is top
    led.event(champion_events.rollback_event(base, led.runs, led.events, "the depth change was a bug"))
    assert champion(led.runs, led.events) is base
    assert confirmed_champion(led.runs, led.events) is base  # the baseline was always confirmed
    assert led.events[-1].data["prior_champion"] == top.run_id and led.events[-1].data["source"] == "rollback"
    assert top in challengers(led.runs, events=led.events)
    # A kept run logged by hand after the rollback (no event) still wins when it beats the champion.
    led.add(led.draft("c3", 0.995, status="keep"))
    assert champion(led.runs, led.events).run_id == "r3"
    history = champion_events.champion_history(led.events)
    assert [h["source"] for h in history] == ["run", "run", "run", "rollback"]


def test_rollback_to_an_unconfirmed_run_restores_the_confirmed_champion_of_its_time():
    led = Ledger()
    base, _ = led.run("c0", 1.0)
    small, _ = led.run("c1", 0.999)  # kept, unconfirmed
    big, _ = led.run("c2", 0.990)  # confirmed
    assert confirmed_champion(led.runs, led.events) is big
    led.event(champion_events.rollback_event(small, led.runs, led.events, "bug in c2"))
    assert champion(led.runs, led.events) is small and confirmed_champion(led.runs, led.events) is base


def test_legacy_ledgers_without_events_keep_the_best_kept_run():
    led = Ledger()
    for i, val in enumerate((1.0, 0.99, 0.995)):
        led.add(led.draft(f"c{i}", val, status="keep"))
    led.add(led.draft("c1", 0.90, replicate_of="r1", status="keep"))  # a replicate never is champion itself
    assert champion(led.runs).run_id == "r1" and confirmed_champion(led.runs).run_id == "r0"


# -- honest estimates ------------------------------------------------------------------------------

def test_estimates_drop_the_discovery_run_and_undo_selection_luck():
    led = Ledger()
    base, _ = led.run("c0", 1.0)
    for val in (1.0, 1.0):
        led.replicate(base, val)
    tip, decision = led.run("c1", 0.9935)  # confirmed by a single, selected run
    assert decision.level == "confirmed"
    noise = estimate_noise(led.runs, POLICY)
    value = estimates.value_of(tip, led.runs, led.events, POLICY, noise)
    assert value.correction > 0 and value.mean > tip.val_bpb  # luck removed: the estimate is worse
    led.replicate(tip, 0.9940)
    assert sample_of(tip, led.runs, unbiased=True).values == (0.9940,)  # only the replicate now
    gain = estimates.gain_estimate(tip, base, led.runs, led.events, POLICY)
    assert gain["gain"] == pytest.approx(1.0 - 0.9940, abs=1e-6) and gain["se"] > 0
    assert gain["ci90"][0] < gain["gain"] < gain["ci90"][1]
    board = estimates.standings(led.runs, led.events, POLICY)
    assert board["tip_is_confirmed"] and board["confirmed"]["run_id"] == tip.run_id


# -- decision packet rules ---------------------------------------------------------------------------

def _packet(run: Run, prior: list[Run], promotion: dict | None = None, events=()) -> dict:
    if promotion is not None:
        run.extra["promotion"] = promotion
    return decisions.decide(run, prior, {"classification": "novel"}, events)


def test_packet_recommends_replicate_inside_the_noise():
    led = Ledger()
    led.run("c0", 1.0)
    run, decision = led.run("c1", 0.9998)
    packet = _packet(run, led.runs[:-1], decision.to_dict(), led.events[:1])
    assert packet["rule"] == "KN" and packet["next_action"] == "replicate"
    assert f"replicate {run.run_id} --n {PromotionPolicy().replicates})" in packet["rationale"]  # runs what it says
    assert packet["comparison"]["is_new_champion"]
    # A hand-logged keep (no promotion decision) with a tiny gain: the default band applies.
    hand = led.draft("c2", 0.9997, status="keep")
    assert _packet(hand, led.runs, None, led.events)["rule"] == "KN"
    clear = led.draft("c3", 0.99, status="keep")
    assert _packet(clear, led.runs, None, led.events)["rule"] == "K2"


def test_packet_rules_for_replicates():
    led = Ledger()
    base, _ = led.run("c0", 1.0)
    rep = led.draft("c0", 1.001, replicate_of=base.run_id, status="keep")
    confirmed = {"accepted": True, "level": "confirmed", "metrics": {"val_bpb_mean": 1.0005, "n": 2}}
    assert _packet(rep, led.runs, confirmed, led.events)["rule"] == "R1"
    rollback = {"accepted": False, "level": "discard", "recommendation": "rollback", "rollback_to": "r0",
                "metrics": {}}
    packet = _packet(led.draft("c0", 1.01, replicate_of=base.run_id, status="keep"), led.runs, rollback, led.events)
    assert packet["rule"] == "R2" and packet["next_action"] == "abandon" and "--rollback r0" in packet["rationale"]


# -- time budget ------------------------------------------------------------------------------------

def test_time_budget_from_env_prepare_py_or_defaults(tmp_path):
    prepare = tmp_path / "prepare.py"
    prepare.write_text("PROFILES = {'gpu': dict(time_budget=300, eval_tokens=40 * 524288),\n"
                       "            'cpu': {'time_budget': 45}}\n")
    assert timebudget.profile_budgets(prepare) == {"gpu": 300.0, "cpu": 45.0}
    cpu = timebudget.resolve({"AUTORESEARCH_PROFILE": "cpu"}, tmp_path)
    assert (cpu.budget_s, cpu.source, cpu.timeout_s) == (45.0, "prepare.py", 2 * 45 + timebudget.STARTUP_MARGIN_S)
    env = {"AUTORESEARCH_PROFILE": "gpu", "AUTORESEARCH_TIME_BUDGET": "12"}
    assert timebudget.resolve(env, tmp_path).budget_s == 12.0
    assert timebudget.resolve({"AUTORESEARCH_PROFILE": "gpu"}, tmp_path / "missing").budget_s == 300.0
    real = Path(__file__).resolve().parent.parent / "prepare.py"
    assert timebudget.profile_budgets(real) == {"gpu": 300.0, "cpu": 60.0}


def test_run_timeout_uses_prepare_py_own_gpu_detection(tmp_path, monkeypatch):
    """No NVIDIA driver files (a container), but the training stack sees a GPU: the limit is the gpu one."""
    monkeypatch.setattr(timebudget, "nvidia_visible", lambda: False)
    (tmp_path / "prepare.py").write_text(
        "import json, sys\n"
        "PROFILES = {'gpu': dict(time_budget=300), 'cpu': dict(time_budget=60)}\n"
        "if '--print-profile' in sys.argv:\n"
        "    print(json.dumps({'profile': 'gpu', 'device_type': 'cuda', 'time_budget': 300}))\n")
    budget = timebudget.resolve({}, tmp_path)
    assert (budget.profile, budget.budget_s) == ("gpu", 300.0)
    (tmp_path / "prepare.py").write_text("raise SystemExit('broken')\n")  # no answer: the driver check decides
    assert timebudget.resolve({}, tmp_path).profile == "cpu"


# -- the simulation uses this very code --------------------------------------------------------------

def test_promotion_sim_runs_on_the_policy_code():
    bench = Path(__file__).resolve().parent.parent / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        import promotion_sim
    finally:
        sys.path.remove(str(bench))
    assert promotion_sim.promotion is sys.modules["memorylab_core.policy.promotion"]
    result = promotion_sim.simulate(promotion_sim.Model(), POLICY, nights=5, seed=1)
    assert result["naive"]["ideas"] == 99 and result["policy"]["replicate_runs"] >= 3
    assert "| true val_bpb gain per night |" in promotion_sim.table(result)
