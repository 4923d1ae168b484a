"""Research memory: categories, insights formulas, mistake cards, consolidation, and replay on real ledgers."""

from __future__ import annotations

import math

import pytest
from mlhelpers import REAL_LEDGERS, log_run, make_repo, ml, records
from researchhelpers import T0, make_run, sig

from memorylab_core.index.journal_index import JournalIndex
from memorylab_core.ledger.schema import record_problem
from memorylab_core.ledger.store import Store
from memorylab_core.novelty import categories
from memorylab_core.policy.decisions import NOISE_BAND
from memorylab_core.research import consolidation, insights, mistakes
from memorylab_core.research.memory import fold, load_state


def view(state):
    return insights.insights_view(state.book, state.runs, state.timeline.plateau())


def row(state, name):
    return next(r for r in view(state)["categories"] if r["category"] == name)


# -- categories ------------------------------------------------------------------------------------

def test_every_category_is_reachable_and_every_name_the_classifier_gives_is_one():
    """Each category can be assigned (its own name as a tag gives it), and the tables the classifier
    reads (tag aliases, knob categories, meta categories) name only categories a record may hold."""
    for name in categories.CATEGORIES:
        assert categories.classify("", (name,)) == (name,)
        assert record_problem({"run_id": "r1", "status": "keep", "categories": [name]}) is None
    named = set(categories.TAG_ALIASES.values()) | categories.META_CATEGORIES
    named |= {c for cats in categories.KNOB_CATEGORIES.values() for c in cats}
    assert named <= set(categories.CATEGORIES)
    assert "categories" in record_problem({"run_id": "r1", "status": "keep", "categories": ["vibes"]})


def test_agent_tags_map_onto_the_taxonomy_and_win():
    assert categories.classify("depth 8 -> 10", ("LR", "Optim", "arch")) == ("architecture", "optimizer",
                                                                           "learning_rate")
    assert categories.classify("anything", ("combo",)) == ("combination",)
    # Unknown tags do not stop the classifier; their words are read too.
    assert categories.classify("tweak", ("warmup-sweep",)) == ("schedule",)


def test_keywords_match_whole_words_only():
    assert categories.classify("room for a bigger zoom") == ()
    assert categories.classify("normal run, abnormal batches of cookies") == ("batch_size",)
    assert categories.classify("add RMSNorm before the MLP") == ("architecture", "normalization")
    assert categories.classify("SwiGLU instead of ReLU²") == ("activation",)


def test_outcome_notes_do_not_assign_categories():
    assert categories.classify("depth 4 -> 6 (worse, nan loss, too many params)") == ("architecture",)


def test_change_signature_names_the_knobs():
    moved = (sig("MATRIX_LR", "up", 0.04, 0.05),)
    assert categories.classify("raise it", (), moved) == ("learning_rate",)
    assert categories.classify("x", (), (sig("WARMDOWN_RATIO", "down"),)) == ("schedule",)
    assert categories.classify("x", (), (sig("SOFTCAP", "removed"),)) == ("numerical", "simplification")
    both = (sig("DEPTH", "up"), sig("WEIGHT_DECAY", "down"))
    assert categories.classify("x", (), both) == ("architecture", "regularization", "combination")
    # Two knobs of one area are one change, not a combination.
    assert categories.classify("x", (), (sig("N_HEAD", "up"), sig("HEAD_DIM", "down"))) == ("attention",)
    # An unknown constant is read by name fragments.
    assert categories.classify("x", (), (sig("MY_INIT_SCALE", "up"),)) == ("initialization",)


def test_signature_wins_over_context_words():
    moved = (sig("SCALAR_LR", "down", 0.4, 0.3),)
    assert categories.classify("lower scalar lr to 0.3 after 3x MLP", (), moved) == ("learning_rate",)


def test_a_word_baseline_is_no_role_for_categories():
    """Baselines count in no category by their role (structure); an experiment that mentions one is categorised."""
    assert categories.classify("wd 0.1 vs baseline 2.681") == ("regularization",)


def test_log_stores_categories_on_the_record(tmp_path, monkeypatch):
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    repo = make_repo(tmp_path / "repo")
    assert log_run(repo, "raise matrix LR 0.04 -> 0.05", "discard", 1.0).code == 0
    assert log_run(repo, "anything", "discard", 1.0, "--tags", "attn").code == 0
    first, second = records(repo)
    assert first["categories"] == ["learning_rate"]
    assert second["categories"] == ["attention"]


def test_records_without_categories_are_classified_at_fold_time():
    run = make_run(1, "discard", 1.0, "warmdown 0.5 -> 0.7")
    assert run.categories == ()
    state = fold([make_run(0, "keep", 1.0, "baseline"), run])
    assert row(state, "schedule")["attempts"] == 1


# -- formulas --------------------------------------------------------------------------------------

def test_signal_is_bounded_for_any_outcome():
    for status in ("keep", "discard", "crash"):
        for gain in (-1e9, -50.0, -0.01, 0.0, None, 0.001, 0.5, 1e9):
            assert -1.0 <= insights.outcome_signal(status, gain, "oom") <= 1.0
    assert insights.outcome_signal("keep", 0.0) == pytest.approx(0.25)
    assert insights.outcome_signal("keep", 1e9) == pytest.approx(1.0)
    assert insights.outcome_signal("discard", -1e9) == pytest.approx(-0.75)
    assert insights.outcome_signal("crash", None, "nan") == -0.75
    assert insights.outcome_signal("crash", None, "syntax") == -0.5


def test_weight_update_is_tanh_soft_capped():
    w = 0.0
    for _ in range(1000):
        w = insights.update_weight(w, 1.0)
        assert w < insights.WEIGHT_MAX
    assert w > 0.75 * insights.WEIGHT_MAX
    expected = insights.WEIGHT_MAX * math.tanh((0.3 * insights.DECAY ** 3 + insights.LEARNING_RATE * -0.5)
                                               / insights.WEIGHT_MAX)
    assert insights.update_weight(0.3, -0.5, since=3) == pytest.approx(expected)


def test_keep_probability_and_shrunk_gain():
    assert insights.keep_probability(0, 0, 0.25) == pytest.approx(0.25)
    assert insights.keep_probability(3, 4, 0.25) == pytest.approx((3 + 1) / 8)
    assert insights.shrunk_gain(0.0, 0, 0.01) == pytest.approx(0.01)
    assert insights.shrunk_gain(0.06, 2, 0.0) == pytest.approx(0.02)
    assert insights.exploration_bonus(0, 100, 1.0) > insights.exploration_bonus(10, 100, 1.0) > 0


def _ledger(n_keeps=5, gain=0.003, start=1.0):
    runs = [make_run(0, "keep", start, "baseline")]
    val = start
    for i in range(1, n_keeps + 1):
        val -= gain
        runs.append(make_run(i, "keep", val, "tweak", categories=("optimizer",)))
    return runs


def test_fault_one_outlier_run_cannot_dominate_a_weight():
    runs = _ledger()
    base = fold(runs)
    broken = fold(runs + [make_run(len(runs), "discard", 51.0, "broken", categories=("optimizer",))])
    w_before, w_after = row(base, "optimizer")["weight"], row(broken, "optimizer")["weight"]
    assert w_after > 0, "five good keeps must outweigh one absurd run"
    assert w_before - w_after <= insights.LEARNING_RATE
    # ... and it moves the weight no more than an ordinary clearly-bad run would.
    ordinary = fold(runs + [make_run(len(runs), "discard", 1.5, "bad", categories=("optimizer",))])
    assert row(ordinary, "optimizer")["weight"] == pytest.approx(w_after, abs=1e-6)


def test_fault_reading_twice_does_not_compound_decay(tmp_path):
    runs = _ledger() + [make_run(6, "discard", 1.2, "other", categories=("schedule",)) for _ in range(1)]
    state = fold(runs)
    first, second = view(state), view(state)
    assert first == second
    assert view(fold(runs)) == first


def test_fault_decay_is_per_experiment_not_per_hour():
    quick = _ledger()
    weekend = [make_run(r.index, r.status, r.val_bpb, r.description, categories=r.categories,
                        ts=T0 + r.index * 3 * 86400) for r in quick]
    assert row(fold(quick), "optimizer")["weight"] == row(fold(weekend), "optimizer")["weight"]
    # Experiments in other categories do decay it: λ per experiment.
    later = fold(quick + [make_run(6 + k, "discard", 1.2, "x", categories=("schedule",)) for k in range(10)])
    w0 = row(fold(quick), "optimizer")["weight"]
    assert row(later, "optimizer")["weight"] == pytest.approx(w0 * insights.DECAY ** 10, abs=2e-4)


def test_gain_is_measured_against_the_champion_at_the_time():
    runs = [make_run(0, "keep", 1.00, "baseline"),
            make_run(1, "keep", 0.99, "a", categories=("optimizer",)),
            make_run(2, "keep", 0.995, "b", categories=("optimizer",)),  # kept but not a new best
            make_run(3, "discard", 0.991, "c", categories=("schedule",))]
    r = row(fold(runs), "optimizer")
    assert r["best_gain"] == pytest.approx(0.01)
    assert r["mean_gain"] == pytest.approx((0.01 - 0.005) / 2)
    assert r["keeps"] == 2 and r["attempts"] == 2


def test_a_rebaseline_starts_a_new_reference():
    runs = [make_run(0, "keep", 1.0, "baseline"), make_run(1, "keep", 0.9, "a", categories=("optimizer",)),
            make_run(2, "keep", 2.3, "new machine baseline"),
            make_run(3, "keep", 2.2, "b", categories=("architecture",))]
    state = fold(runs)
    assert row(state, "architecture")["best_gain"] == pytest.approx(0.1)
    assert state.timeline.reference == pytest.approx(2.2)
    assert state.timeline.champion.val_bpb == pytest.approx(0.9)  # the registry's champion is unchanged


def test_dead_ends_need_enough_attempts_and_no_keeps():
    runs = _ledger()
    for k in range(4):
        runs.append(make_run(len(runs), "discard", 1.1, f"e{k}", categories=("embedding",)))
    for k in range(3):
        runs.append(make_run(len(runs), "discard", 1.1, f"n{k}", categories=("normalization",)))
    dead = {d["category"] for d in view(fold(runs))["dead_ends"]}
    assert dead == {"embedding"}
    runs.append(make_run(len(runs), "keep", 0.5, "finally", categories=("embedding",)))
    assert "embedding" not in {d["category"] for d in view(fold(runs))["dead_ends"]}


def test_crashes_whose_notes_blame_the_environment_make_no_dead_end():
    """An imported row has no recorded crash kind, only its note: crashes that say the machine killed them
    (exit 137, another process) are no evidence against their idea, here as in the novelty guard; crashes of
    the idea itself (NaN) still count."""
    runs = _ledger()
    for k in range(4):
        runs.append(make_run(len(runs), "crash", None, f"embedding tweak {k}: killed with exit 137 by another process",
                             categories=("embedding",)))
    assert "embedding" not in {d["category"] for d in view(fold(runs))["dead_ends"]}
    for k in range(4):
        runs.append(make_run(len(runs), "crash", None, f"norm tweak {k}: loss went NaN", categories=("normalization",)))
    assert "normalization" in {d["category"] for d in view(fold(runs))["dead_ends"]}


def test_near_misses_are_discards_within_the_noise_band():
    runs = [make_run(0, "keep", 1.0, "baseline"),
            make_run(1, "discard", 1.0 + NOISE_BAND / 2, "close", categories=("schedule",)),
            make_run(2, "discard", 1.0 + 5 * NOISE_BAND, "far", categories=("schedule",))]
    near = view(fold(runs))["near_misses"]
    assert [n["description"] for n in near] == ["close"]
    assert near[0]["gain"] == pytest.approx(-NOISE_BAND / 2)


def test_promising_ranks_expected_gain_and_explores_untried():
    runs = _ledger(gain=0.01)
    runs += [make_run(len(runs) + k, "discard", 1.5, "x", categories=("embedding",)) for k in range(6)]
    promising = view(fold(runs))["promising"]
    names = [p["category"] for p in promising]
    assert names[0] == "optimizer"
    assert "embedding" not in names  # a dead end
    assert any(p["attempts"] == 0 and p["exploration_bonus"] > 0 for p in promising)


def test_plateau_counts_experiments_and_rate_per_hour():
    runs = [make_run(0, "keep", 1.0, "baseline", ts=T0), make_run(1, "keep", 0.99, "a", ts=T0 + 3600)]
    runs += [make_run(2 + k, "discard", 1.1, "x", ts=T0 + 7200 + k) for k in range(16)]
    plateau = fold(runs).timeline.plateau()
    assert plateau["experiments_since_improvement"] == 16 and plateau["on_plateau"]
    assert plateau["last_improvement"]["run_id"] == "run00001"
    assert plateau["improvement_in_window"] == pytest.approx(0.01)
    assert plateau["improvement_per_hour"] == pytest.approx(0.01 / ((7215) / 3600), rel=1e-3)


def test_surprise_when_a_rarely_kept_category_wins():
    runs = [make_run(0, "keep", 1.0, "baseline")]
    runs += [make_run(1 + k, "discard", 1.2, "x", categories=("embedding",)) for k in range(8)]
    runs.append(make_run(9, "keep", 0.98, "finally", categories=("embedding",)))
    surprises = view(fold(runs))["surprises"]
    assert surprises and surprises[0]["run_id"] == "run00009"


# -- mistake cards ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,card", [("oom", "oom"), ("nan", "nan"), ("timeout", "time_budget"),
                                       ("syntax", "syntax"), ("import", "import"), ("shape", "shape"),
                                       ("runtime", "crash"), (None, "crash")])
def test_card_types_follow_error_kinds(kind, card):
    state = fold([make_run(0, "keep", 1.0, "baseline"), make_run(1, "crash", None, "x", error_kind=kind)])
    (only,) = state.deck.ranked(1)
    assert only["type"] == card and only["lesson"] and only["evidence"]


def test_interrupts_and_noise_make_no_card_but_regressions_do():
    runs = [make_run(0, "keep", 1.0, "baseline"),
            make_run(1, "crash", None, "x", error_kind="keyboard_interrupt"),
            make_run(2, "discard", 1.001, "noise", signature=(sig("DEPTH", "up"),)),
            make_run(3, "discard", 1.05, "depth 8 -> 12", signature=(sig("DEPTH", "up", 8, 12),))]
    (card,) = fold(runs).deck.ranked(3)
    assert card["type"] == "regression" and card["change_class"] == "DEPTH up"
    assert "worse by 0.0500" in card["lesson"] and "val_bpb 1.050000 vs champion 1.000000" in card["evidence"]
    assert "(gain -0.050000, + = lower val_bpb, better)" in card["evidence"]  # one sign convention everywhere


def test_cards_deduplicate_with_seen_count_and_first_last_seen():
    runs = [make_run(0, "keep", 1.0, "baseline")]
    for i in (1, 5, 9):
        runs.append(make_run(i, "crash", None, "bigger batch", error_kind="oom",
                             signature=(sig("TOTAL_BATCH_SIZE", "up"),), error=f"CUDA out of memory #{i}"))
    runs = [make_run(k, r.status, r.val_bpb, r.description, signature=r.change_signature, error_kind=r.error_kind,
                     error=r.error_summary) for k, r in enumerate(runs)]
    (card,) = fold(runs).deck.ranked(len(runs) - 1)
    assert card["seen"] == 3 and card["key"] == "oom|TOTAL_BATCH_SIZE up"
    assert card["first_seen"]["run_id"] == "run00001" and card["last_seen"]["run_id"] == "run00003"
    assert card["evidence"] == "CUDA out of memory #9"


def test_syntax_errors_are_one_card_whatever_the_change():
    runs = [make_run(0, "keep", 1.0, "baseline")]
    runs += [make_run(1 + k, "crash", None, f"idea {k}", error_kind="syntax", signature=(sig(f"K{k}", "up"),))
             for k in range(3)]
    (card,) = fold(runs).deck.ranked(3)
    assert card["key"] == "syntax" and card["seen"] == 3


def test_cards_rank_by_recency_weighted_score():
    runs = [make_run(0, "keep", 1.0, "baseline")]
    # an old card seen three times, then a newer one seen once, then many quiet runs
    for _ in range(3):
        runs.append(make_run(len(runs), "crash", None, "old", error_kind="oom", signature=(sig("DEPTH", "up"),)))
    for _ in range(40):
        runs.append(make_run(len(runs), "keep", 1.0 - len(runs) * 1e-4, "fine"))
    runs.append(make_run(len(runs), "crash", None, "new", error_kind="nan", signature=(sig("MATRIX_LR", "up"),)))
    ranked = fold(runs).deck.ranked(len(runs) - 1)
    assert [c["type"] for c in ranked] == ["nan", "oom"]
    assert ranked[1]["score"] == pytest.approx(sum(mistakes.RECENCY_DECAY ** (41 + k) for k in range(3)), abs=1e-4)


def test_fault_a_full_deck_still_takes_new_lessons():
    runs = [make_run(0, "keep", 1.0, "baseline")]
    for k in range(mistakes.MAX_CARDS):  # fill the deck, each card seen many times
        for _ in range(5):
            runs.append(make_run(len(runs), "crash", None, f"knob {k}", error_kind="oom",
                                 signature=(sig(f"KNOB{k}", "up"),)))
    state = fold(runs)
    assert len(state.deck.cards) == mistakes.MAX_CARDS
    state.add_run(make_run(len(runs), "crash", None, "brand new", error_kind="nan", signature=(sig("NEW", "up"),)))
    keys = set(state.deck.cards)
    assert "nan|NEW up" in keys, "a new lesson must get in when the deck is full"
    assert "oom|KNOB0 up" not in keys, "the stalest card is the one evicted"
    assert len(keys) == mistakes.MAX_CARDS and state.deck.evicted == 1


# -- consolidation ---------------------------------------------------------------------------------

def _rule_ledger(n: int):
    runs = [make_run(0, "keep", 1.0, "baseline")]
    val = 1.0
    for i in range(1, n):
        if i % 3 == 0:
            val -= 0.003
            runs.append(make_run(i, "keep", val, "lower lr", signature=(sig("MATRIX_LR", "down"),)))
        else:
            runs.append(make_run(i, "discard", val + 0.02, "deeper", signature=(sig("DEPTH", "up"),)))
    return runs


def test_rules_are_made_at_consolidation_points_only():
    every = consolidation.CONSOLIDATE_EVERY
    assert fold(_rule_ledger(every - 1)).consolidator.rules == []
    at_point = fold(_rule_ledger(every)).consolidator
    assert at_point.point == every
    later = fold(_rule_ledger(every + every // 2)).consolidator
    assert later.point == every and later.rules == at_point.rules  # unchanged between points
    assert fold(_rule_ledger(2 * every)).consolidator.point == 2 * every


def test_rules_have_provenance_and_replay_identically():
    state = fold(_rule_ledger(20))
    works = [r for r in state.consolidator.rules if r["kind"] == "works"]
    avoid = [r for r in state.consolidator.rules if r["kind"] == "avoid"]
    assert works[0]["subject"] == "MATRIX_LR down" and works[0]["run_ids"]
    assert all(rid.startswith("run") for rid in works[0]["run_ids"])
    assert avoid[0]["subject"] == "DEPTH up" and avoid[0]["failures"] >= 2
    assert fold(_rule_ledger(20)).consolidator.rules == state.consolidator.rules
    one_by_one = fold([])
    for run in _rule_ledger(25):  # run by run (every point consolidated) == one batch (last point only)
        one_by_one.add_run(run)
    assert one_by_one.consolidator.rules == fold(_rule_ledger(25)).consolidator.rules


def test_repeated_crash_cards_become_avoid_rules():
    runs = [make_run(0, "keep", 1.0, "baseline")]
    runs += [make_run(i, "crash", None, "huge batch", error_kind="oom", signature=(sig("DEVICE_BATCH_SIZE", "up"),))
             for i in (1, 2)]
    runs += [make_run(i, "keep", 1.0 - i * 1e-3, "fine") for i in range(3, 10)]
    rules = fold(runs).consolidator.rules
    assert any(r["kind"] == "avoid" and "DEVICE_BATCH_SIZE up" in r["subject"] for r in rules)


# -- the stored fold and a fresh fold agree ----------------------------------------------------------

def test_cached_incremental_fold_equals_history_fold(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    store = Store(tmp_path / "store", repo)
    monkeypatch.setenv("MEMORYLAB_HOME", str(store.root))
    for i, (status, val, desc) in enumerate([("keep", 1.0, "baseline"), ("discard", 1.01, "depth 8 -> 10"),
                                              ("keep", 0.99, "matrix lr 0.04 -> 0.03"),
                                              ("crash", None, "batch 2**19 -> 2**21")]):
        crash = "torch.OutOfMemoryError: CUDA out of memory" if status == "crash" else None
        assert log_run(repo, desc, status, val, crash=crash).code == 0, i
        cached = load_state(store)
        history = JournalIndex.load(store, use_cache=False, quiet=True)
        assert view(cached) == view(fold(history.runs, history.events))
        assert cached.deck.ranked(cached.runs - 1) == fold(history.runs).deck.ranked(cached.runs - 1)
        assert view(load_state(store)) == view(cached)  # read again (from the cache): nothing compounds
    assert (store.root / "index.sqlite").exists()


# -- replay over the real ledgers ------------------------------------------------------------------

@pytest.mark.skipif(not REAL_LEDGERS, reason="real-ledger fixtures not present")
@pytest.mark.parametrize("path", REAL_LEDGERS, ids=lambda p: p.stem)
def test_replay_real_ledger(path, tmp_path):
    home = ("--home", str(tmp_path / "store"))
    imported = ml(*home, "import", str(path), "--json", cwd=tmp_path)
    assert imported.code == 0, imported.err
    data = ml(*home, "insights", "--json", cwd=tmp_path)
    assert data.code == 0, data.err
    report = data.json()
    newest = imported.json()["arenas"][path.name][-1]  # the views show the newest arena (re-baselines split)
    index = JournalIndex.load(Store(tmp_path / "store", tmp_path), quiet=True)
    assert report["runs"] == index.arena_count(newest)
    for command in (("guide",), ("guide", "--json"), ("status",), ("status", "--json"), ("insights",)):
        res = ml(*home, *command, cwd=tmp_path)
        assert res.code == 0 and res.out.strip(), (command, res.err)
    assert len(ml(*home, "guide", cwd=tmp_path).out.rstrip("\n")) <= 1500
    # The categories behind the ledger's three biggest real gains are never called dead ends.
    store = Store(tmp_path / "store", tmp_path)
    state = load_state(store)
    history = JournalIndex.load(store, quiet=True)
    outcomes = []
    replay = fold([])
    for run in history.arena_runs(newest):
        outcomes.append(replay.add_run(run))
    best = sorted((o for o in outcomes if o.run.status == "keep" and o.gain and o.categories),
                  key=lambda o: -o.gain)[:3]
    assert best, "each fixture has kept improvements"
    dead = {d["category"] for d in report["dead_ends"]}
    for outcome in best:
        assert not dead & set(outcome.categories), (outcome.run.description, dead)
    assert view(state)["categories"] == view(replay)["categories"]


def test_replicates_are_evidence_not_attempts_or_champions():
    runs = [make_run(0, "keep", 1.0, "baseline"), make_run(1, "keep", 0.99, "a", categories=("optimizer",))]
    rep = make_run(2, "keep", 0.98, "replicate of run00001", categories=("optimizer",))
    rep.replicate_of = "run00001"
    state = fold(runs + [rep])
    assert row(state, "optimizer")["attempts"] == 1
    assert state.timeline.champion.run_id == "run00001" and state.timeline.reference == pytest.approx(0.99)


def test_a_champion_change_event_moves_champion_and_reference():
    from memorylab_core.ledger.model import event_from_record
    from memorylab_core.policy import registry

    runs = [make_run(0, "keep", 1.0, "baseline"), make_run(1, "keep", 0.99, "a"), make_run(2, "keep", 0.98, "b"),
            make_run(3, "discard", 0.985, "c", categories=("schedule",))]
    rollback = event_from_record({"record_type": "event", "event_type": "champion_change", "run_id": "run00001",
                                  "event_id": "e1"}, 0, 250)
    rollback.runs_before = 3
    state = fold(runs, [rollback])
    assert state.timeline.champion.run_id == "run00001"
    assert view(state)["near_misses"][0]["gain"] == pytest.approx(0.005)  # measured against the rollback
    if "events" in __import__("inspect").signature(registry.champion).parameters:
        assert registry.champion(runs, [rollback]).run_id == state.timeline.champion.run_id


def test_timeline_and_registry_agree_on_an_event_designated_champion():
    """A promotion can name a kept run that never had the lowest val_bpb; both folds follow the event."""
    from memorylab_core.ledger.model import event_from_record
    from memorylab_core.policy import registry

    def designate(run, runs_before, offset):
        event = event_from_record({"record_type": "event", "event_type": "champion_change", "run_id": run.run_id,
                                   "val_bpb": run.val_bpb, "commit": run.commit, "event_id": f"e{offset}"}, 0, offset)
        event.runs_before = runs_before
        return event

    runs = [make_run(0, "keep", 1.0, "baseline"), make_run(1, "keep", 0.98, "a"), make_run(2, "keep", 0.99, "b")]
    runs += [make_run(i, "keep", 1.01, f"filler {i}") for i in range(3, 90)]  # pushes run 2 out of the recent kept
    runs += [make_run(90, "keep", 0.995, "c")]
    promoted = designate(runs[2], 3, runs[2].offset + 1)  # logged right after run 2, as `run` does
    state = fold(runs[:3], [promoted])
    assert state.timeline.champion.run_id == registry.champion(runs[:3], [promoted]).run_id == runs[2].run_id
    old = designate(runs[2], 91, runs[-1].offset + 1)  # a rollback to it, far past the latest candidates
    state = fold(runs, [old])
    assert registry.champion(runs, [old]).run_id == runs[2].run_id
    assert state.timeline.champion.run_id == runs[2].run_id and state.timeline.reference == pytest.approx(0.99)
    state = fold(runs + [make_run(91, "keep", 0.97, "d")], [old])  # a better kept run still takes over
    assert state.timeline.champion.run_id == "run00091"
