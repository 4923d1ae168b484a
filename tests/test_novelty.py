"""The novelty guard: classes and their precedence, mode policy, evidence, the index (incremental,
picklable), the labelled evaluation on real ledgers, and the tolerant results.tsv reader."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from mlhelpers import commit_change, git, ledger, log_run, make_repo, ml, records

from memorylab_core.ingest.results_tsv import read_results_tsv
from memorylab_core.ledger.model import Run
from memorylab_core.novelty.changes import code_fingerprint, diff_constants
from memorylab_core.novelty.guard import (
    DEFAULT_THRESHOLD,
    POLICY,
    Match,
    NoveltyIndex,
    NoveltyResult,
    Proposal,
    idea_key,
)

ROOT = Path(__file__).resolve().parent.parent


def make_run(index: int, description: str, status: str = "discard", **fields) -> Run:
    return Run(index=index, offset=0, run_id=f"r{index}", timestamp=None, ts=None, status=status,
               val_bpb=None if status == "crash" else 1.0, memory_gb=None, description=description, **fields)


def history(*rows) -> tuple[NoveltyIndex, list[Run]]:
    """An index over rows of (description, status) or (description, status, {fields})."""
    index, runs = NoveltyIndex(), []
    for i, row in enumerate(rows):
        fields = row[2] if len(row) > 2 else {}
        run = make_run(i, row[0], row[1], **fields)
        runs.append(run)
        index.add(run)
    return index, runs


def check(rows, description: str, mode: str = "explore", **proposal) -> NoveltyResult:
    index, runs = history(*rows)
    return index.classify(Proposal(description=description, **proposal), runs, mode=mode)


BASE = ("baseline (depth 8, matrix LR 0.04, batch 2^19)", "keep")


# --- policy --------------------------------------------------------------------------------------


def test_policy_is_design_section_5():
    assert POLICY == {
        "explore": {"novel": "allow", "known_success": "block", "incremental_followup": "block",
                    "repeat_failure": "block", "duplicate_run": "block"},
        "exploit": {"novel": "caution", "known_success": "allow", "incremental_followup": "allow",
                    "repeat_failure": "block", "duplicate_run": "block"},
        "replicate": {"novel": "block", "known_success": "allow", "incremental_followup": "allow",
                      "repeat_failure": "block", "duplicate_run": "allow"},
    }


SCENARIOS = {
    "novel": ([BASE], "SwiGLU instead of ReLU²", {}),
    "known_success": ([BASE, ("matrix LR 0.04 -> 0.05", "keep")], "matrix LR 0.04 -> 0.05", {}),
    "incremental_followup": ([BASE, ("matrix LR 0.04 -> 0.05", "keep")], "matrix LR 0.05 -> 0.06", {}),
    "repeat_failure": ([BASE, ("depth 8 -> 12", "discard")], "increase depth to 10", {}),
    "duplicate_run": ([BASE, ("depth 8 -> 12", "discard", {"code_fingerprint": "f" * 64})], "anything",
                      {"code_fingerprints": ("f" * 64,)}),
}


@pytest.mark.parametrize("mode", list(POLICY))
@pytest.mark.parametrize("cls", list(SCENARIOS))
def test_every_policy_cell(cls, mode):
    rows, description, proposal = SCENARIOS[cls]
    result = check(rows, description, mode=mode, **proposal)
    assert result.classification == cls
    assert result.decision == POLICY[mode][cls]
    assert result.mode == mode


def test_empty_history_is_novel_and_allowed():
    result = NoveltyIndex().classify(Proposal("increase depth to 10"), [])
    assert (result.classification, result.decision, result.matches) == ("novel", "allow", [])
    assert result.reasons


def test_bad_mode_is_an_error():
    with pytest.raises(ValueError):
        NoveltyIndex().classify(Proposal("x"), [], mode="yolo")


# --- change signature ----------------------------------------------------------------------------


def test_repeat_failure_is_direction_aware():
    rows = [BASE, ("depth 8 -> 12 (worse)", "discard")]
    repeat = check(rows, "deeper model: 12 layers")
    assert repeat.classification == "repeat_failure"
    assert repeat.matches[0].run_id == "r1" and "change_signature" in repeat.matches[0].signals
    assert repeat.matched_part and "DEPTH" in repeat.matched_part
    opposite = check(rows, "reduce depth to 6")
    assert opposite.classification == "novel"


def test_a_smaller_step_or_a_push_on_from_a_failed_value_repeats_but_other_starts_do_not():
    rows = [BASE, ("Muon LR 0.04 -> 0.02", "keep"), ("Muon LR 0.02 -> 0.01", "discard")]
    assert check(rows, "Muon LR 0.02 -> 0.015").classification == "repeat_failure"
    rows = [BASE, ("increase matrix LR to 0.06", "discard")]
    assert check(rows, "matrix LR 0.04 -> 0.05").classification == "repeat_failure"
    # the failed 0.06 was never undone where this runs: going on from it pushes the failed direction further
    assert check(rows, "matrix LR 0.06 -> 0.08").classification == "repeat_failure"
    assert check(rows, "matrix LR 0.07 -> 0.08").classification == "novel"  # from a value no run reached
    assert check(rows, "matrix LR 0.02 -> 0.03").classification == "novel"  # from behind the failed start
    assert check(rows, "matrix LR 0.06 -> 0.05").classification == "novel"  # the way back
    rows += [("matrix LR 0.06 -> 0.07", "discard")]  # a chain: each step went on from the last failed value
    assert check(rows, "matrix LR 0.07 -> 0.09").classification == "repeat_failure"


def test_a_value_between_two_failed_values_repeats_one_of_them_wherever_the_knob_stands():
    """A value set with no start (the operating point unknown) between two failed values set the same way moves
    the knob the way one of them did, on either side of it; outside them, or after a keep moved the knob, it is
    new ground. A coined generic name ("alpha=...") may name different things, so it is never bracketed."""
    rows = [("baseline", "keep"), ("smote_ratio=0.5", "discard"), ("smote_ratio=0.3", "discard")]
    between = check(rows, "smote_ratio=0.4")
    assert between.classification == "repeat_failure"
    assert {m.index for m in between.matches} == {1, 2} and "other side of 0.4" in between.matches[0].reason
    assert check(rows, "smote_ratio=0.2").classification == "novel"
    assert check(rows + [("smote_ratio=0.45", "keep")], "smote_ratio=0.4").classification != "repeat_failure"
    coined = [("baseline", "keep"), ("aux loss alpha=0.05", "discard"), ("EMA alpha=0.5", "discard")]
    assert check(coined, "mixing alpha=0.1").classification != "repeat_failure"


def test_upstream_muon_and_activation_words_name_their_own_knobs():
    """Muon's momentum ramp (start, length, end), Polar Express's norm factor, an attention softcap and
    ReLU cubed are each their own knob or value: a failure of one is no evidence against another."""
    assert check([BASE, ("Muon momentum ramp 300->600", "discard")],
                 "Muon momentum warmup 100 steps").classification == "novel"  # the way back, in steps
    assert check([BASE, ("Muon momentum 0.95->0.98", "discard")],
                 "Muon momentum ramp start 0.85->0.90").classification == "novel"
    assert check([BASE, ("remove Polar Express norm factor (1.02 -> 1.0)", "discard")],
                 "PE norm factor=1.01").classification == "repeat_failure"
    assert check([BASE, ("NS steps 5 -> 4", "discard")], "PE norm factor=1.01").classification == "novel"
    assert check([BASE, ("softcap=30", "discard")], "attn logit softcap=50.0").classification == "novel"
    assert check([BASE, ("plain ReLU activation", "discard")], "ReLU-cubed activation").classification == "novel"


def test_a_setting_of_a_technique_not_in_place_adds_it():
    """"EMA decay=0.99" where no EMA is in place adds EMA: after "EMA decay=0.999" failed, it is the same
    technique added again; once EMA is kept, a new decay is a re-tune of it."""
    rows = [BASE, ("EMA decay=0.999 (too slow)", "discard")]
    assert check(rows, "EMA decay=0.99 start at 50%").classification == "repeat_failure"
    kept = [BASE, ("add EMA of the weights", "keep")]
    assert check(kept, "EMA decay=0.99").classification == "incremental_followup"


def test_another_value_of_a_kept_category_is_a_re_tune_except_a_gated_mlp():
    """After a kept activation switch, another plain activation re-tunes the kept choice; a gated MLP
    (SwiGLU) after a kept plain activation is a technique of its own."""
    kept = [BASE, ("MLP activation ReLU^2 -> GELU", "keep")]
    assert check(kept, "gelu->silu").classification == "incremental_followup"
    assert check(kept, "SwiGLU-style gated MLP instead of plain GELU").classification == "novel"


def test_a_number_removed_moves_down_to_zero():
    """"no warmdown" sets the warmdown ratio to zero: the way a failed "warmdown 0.5 -> 0.3" went."""
    rows = [BASE, ("WARMDOWN_RATIO 0.5->0.3", "discard")]
    result = check(rows, "Muon constant LR no warmdown")
    assert result.classification == "repeat_failure" and "WARMDOWN_RATIO down" in (result.matched_part or "")
    assert check([BASE, ("WARMDOWN_RATIO 0.5->0.7", "discard")], "no warmdown").classification == "novel"


def test_removing_a_component_moves_its_strength_to_the_end_one_way():
    """"remove the logit softcap" after a failed "softcap 15 -> 30" loosens the cap the same way again;
    a failed removal says the cap is needed, not that a slightly looser cap hurts."""
    raised = [BASE, ("softcap 15 -> 30", "discard")]
    result = check(raised, "remove logit softcap entirely")
    assert result.classification == "repeat_failure" and "SOFTCAP_VALUE up" in (result.matched_part or "")
    assert check([BASE, ("softcap 15 -> 10", "discard")], "remove logit softcap").classification == "novel"
    assert check([BASE, ("softcap 15 -> 20", "keep")], "no softcap").classification == "incremental_followup"
    assert check([BASE, ("remove logit softcap", "discard")], "softcap 15 -> 20").classification == "novel"
    # a scaled path removed is its strength set to zero: the way a failed weakening went
    weakened = [BASE, ("reduce x0_lambdas init from 0.1 to 0.05", "discard")]
    assert check(weakened, "disable x0 residual connection").classification == "repeat_failure"
    assert check([BASE, ("x0_lambdas 0.1 -> 0.2", "discard")], "remove x0_lambdas skip").classification == "novel"


def test_a_weight_decay_floor_is_its_own_knob():
    """"WD floor 20%" is the share of the weight decay left at the end, not the weight decay: after a failed
    "constant weight decay" (all of it left) a floor raises it the same way again, and "WEIGHT_DECAY=0.06
    with 20% WD floor" where the floor is kept moves only the weight decay."""
    rows = [BASE, ("constant weight decay (no decay schedule)", "discard")]
    result = check(rows, "WD decay to 10% residual")
    assert result.classification == "repeat_failure" and "WD_FINAL_FRAC up" in (result.matched_part or "")
    kept = [BASE, ("WEIGHT_DECAY 0.2 -> 0.05", "keep"), ("WEIGHT_DECAY=0.06", "discard"),
            ("WD floor 20%", "keep")]
    result = check(kept, "WEIGHT_DECAY=0.06 with 20% WD floor")
    assert result.classification == "repeat_failure" and "WEIGHT_DECAY up" in (result.matched_part or "")
    assert check(kept, "WD floor 15%").classification == "incremental_followup"


def test_a_failed_component_named_again_without_its_strength_repeats_it():
    """"add label smoothing" after "add label smoothing 0.1" failed, "add z-loss" after a crashed "add z-loss
    1e-4": the component was never in place (a failure from strength zero leaves it off), so naming it again is
    the same idea; dropout at another strength too (upstream has none: 0)."""
    rows = [BASE, ("add label smoothing 0.1", "discard"), ("add z-loss 1e-4 (NaN loss)", "crash"),
            ("add dropout 0.1", "discard")]
    for text in ("add label smoothing", "add z-loss", "add dropout 0.2", "dropout=0.05"):
        assert check(rows, text).classification == "repeat_failure", text
    assert check(rows, "remove dropout").classification == "novel"


def test_raising_a_knob_to_the_value_a_kept_run_set_is_a_re_run():
    """"raise the embedding LR to 0.8" where a kept run set it to 0.8 moves nothing (as "set it to 0.8"):
    a re-run, not a follow-up; a value only upstream's defaults give stays a move (another branch)."""
    rows = [BASE, ("EMBEDDING_LR 0.6 -> 0.8", "keep")]
    for text in ("raise the embedding LR to 0.8", "set EMBEDDING_LR to 0.8"):
        assert check(rows, text).classification == "duplicate_run", text
    assert check(rows, "raise the embedding LR to 0.9").classification == "incremental_followup"
    assert check(rows, "raise scalar_lr to 0.5").classification == "novel"  # upstream's 0.5: a stale start


def test_where_windows_go_and_whose_optimizer_are_not_model_changes():
    """"use more short-window layers" says where the windows are, not more depth; "ScheduleFree AdamW for
    embeddings" is that group's optimizer, so switching the model's optimizer to AdamW was never tried."""
    rows = [BASE, ("increase DEPTH 8 -> 10", "discard"), ("ScheduleFree AdamW for embeddings", "discard")]
    assert check(rows, "use more short-window layers").classification == "novel"
    assert check(rows, "switch the optimizer to AdamW").classification == "novel"


def test_reasons_say_what_the_rule_saw():
    """A push that goes on from where a failed one left the knob is not "from the same operating point"; a
    proposal whose closest words move the other way says so, not that nothing came close."""
    pushed = check([BASE, ("ROPE_BASE 10000 -> 50000", "discard")], "ROPE_BASE 50000 -> 100000")
    assert pushed.classification == "repeat_failure" and "from where it left the knob" in pushed.matches[0].reason
    rows = [BASE, ("raise the qk gain on attention logits", "discard"), ("sharper attention schedule", "keep")]
    other = check(rows, "lower the qk gain on attention logits")
    assert other.classification == "novel" and "move the other way" in other.reasons[-1]


def test_a_ramp_cut_to_zero_starts_at_its_end():
    """"no Muon momentum warmup (constant 0.95)" also raises the ramp's start from 0.85 to 0.95: after it
    failed, "momentum start 0.85 -> 0.90" moves that knob the same way again, and the other way round;
    lowering the start is the other way."""
    cut = [BASE, ("no Muon momentum warmup (constant 0.95)", "discard")]
    result = check(cut, "increase Muon momentum start from 0.85 to 0.90")
    assert result.classification == "repeat_failure" and "MUON_MOMENTUM_START up" in (result.matched_part or "")
    assert check(cut, "lower Muon momentum start from 0.85 to 0.80").classification == "novel"
    raised = [BASE, ("Muon momentum start 0.85 -> 0.9", "discard")]
    assert check(raised, "remove the Muon momentum warmup").classification == "repeat_failure"
    assert check([BASE, ("muon momentum warmup 300 -> 150", "keep")],
                 "no momentum warmup at all").classification == "incremental_followup"
    # with no ramp left the start is the momentum itself: moving one moves both
    flat = [BASE, ("muon momentum start 0.90 - worse than 0.85", "discard"), ("constant momentum 0.85", "keep")]
    result = check(flat, "momentum=0.87")
    assert result.classification == "repeat_failure" and result.matches[0].index == 1


def test_the_hidden_width_of_a_gated_mlp_is_the_mlp_ratio():
    """"wider SwiGLU MLP" and "SwiGLU hidden 2x -> 3x" size the MLP where SwiGLU is in place: not the
    activation named again (a re-run), so widening after a kept widening follows it up and after a failed
    one repeats it."""
    swiglu = [BASE, ("SwiGLU MLP (gated linear unit with SiLU)", "keep")]
    assert check(swiglu, "increase SwiGLU hidden from 2x to 3x n_embd").classification == "novel"
    kept = [*swiglu, ("increase SwiGLU hidden from 2x to 3x n_embd", "keep")]
    assert check(kept, "increase SwiGLU hidden from 3x to 4x n_embd").classification == "incremental_followup"
    failed = [*swiglu, ("wider SwiGLU MLP (4x instead of 8/3x hidden)", "discard")]
    result = check(failed, "slightly wider SwiGLU MLP (3/4 ratio)")
    assert result.classification == "repeat_failure" and "MLP_RATIO up" in (result.matched_part or "")
    assert check(failed, "smaller SwiGLU MLP (3x instead of 4x base)").classification == "novel"


def test_a_stated_start_note_gives_the_move_its_start_and_is_no_knob():
    """A sweep daemon's "QK_GAIN_INIT=1.45 (base=1.5)" moves QK_GAIN_INIT down from 1.5: "(base=V)",
    "(was V)" and "(from V)" after a value state its start, and "base" is never a knob of its own."""
    from memorylab_core.novelty.changes import text_changes
    assert [(f["name"], f["old"], f["new"]) for f in text_changes("daemon TIED_EMBED_LR=0.03774 (base=0.03786)")] \
        == [("TIED_EMBED_LR", 0.03786, 0.03774)]
    assert [(f["name"], f["old"]) for f in text_changes("lr 0.05 (from 0.04) and depth 10 (was 8)")] \
        == [("LR", 0.04), ("DEPTH", 8)]
    assert [(f["name"], f["old"]) for f in text_changes("BIGRAM_VOCAB=8192 (vs 4096 in 0018): val 2.0865")] \
        == [("BIGRAM_VOCAB", 4096)]
    assert text_changes("EXPERTS=3 (vs 0009 mean)")[0]["old"] is None  # a zero-led number cites a run
    kept = [BASE, ("daemon TIED_EMBED_LR=0.0379 (base=0.0378)", "keep"),
            ("daemon TIED_EMBED_LR=0.0380 (base=0.0379)", "discard")]
    assert check(kept, "daemon TIED_EMBED_LR=0.0378 (base=0.0379)").classification == "incremental_followup"


def test_an_operating_point_the_text_contradicts_is_stale():
    """"raise scalar_lr to 0.05" where upstream's default is 0.5 raises it from a value this history has
    not shown: a later raise from 0.04 towards 0.05 repeats it, not the way down from 0.5."""
    rows = [BASE, ("raise scalar_lr to 0.05", "discard")]
    assert check(rows, "daemon SCALAR_LR=0.041 (base=0.04)").classification == "repeat_failure"
    assert check(rows, "lower scalar_lr to 0.038").classification == "novel"


def test_going_on_from_any_failed_step_the_same_way_repeats():
    """1.5 → 1.45 and 1.5 → 1.4 failed: going on down from 1.4 pushes a failed direction on, whatever
    step the failures took; going up from 1.4 is new ground."""
    rows = [BASE, ("QK_GAIN_INIT=1.45 (base=1.5)", "discard"), ("QK_GAIN_INIT=1.4 (base=1.5)", "discard")]
    assert check(rows, "QK_GAIN_INIT=1.35 (base=1.4)").classification == "repeat_failure"
    assert check(rows, "QK_GAIN_INIT=1.42 (base=1.4)").classification == "novel"


def test_a_lab_note_that_plans_a_seed_re_run_is_not_one():
    """A long lab note whose last sentence plans "SEED=42 confirm next" is its own change, not a re-run;
    a description that opens as a seed re-run still is one."""
    from memorylab_core.novelty.textnorm import is_rerun
    note = ("Mamba-2 at 2 of 3 unique blocks (positions 0,1; ATTN at 2): val 2.0399 single-seed, a new best for "
            "the hybrid family at this budget, five sigma past the last one. SEED=42 confirm next.")
    assert not is_rerun(note)
    assert is_rerun("SEED=42 of 0006 confirms (and exceeds): val 2.155, vs 0006 1337 2.171, cross-seed spread "
                    "wider than the pure model's; the mean of both seeds is the family's best so far. Next: more.")


def test_another_random_seed_is_a_re_run_not_a_knob():
    """"change random seed from 42 to 137", "random seed 42→0": the same configuration again (LABELS.md's
    no-logic-change re-run), never a move of a RANDOM_SEED knob."""
    from memorylab_core.novelty.changes import text_changes
    kept = [BASE, ("increase unembedding LR from 0.004 to 0.008", "keep")]
    for text in ("change random seed from 42 to 137", "Exp207: random seed 42→0 (worse; seed 42 better)"):
        assert text_changes(text) == [] and check(kept, text).classification == "duplicate_run", text


def test_a_row_that_opens_by_verifying_is_a_re_run():
    """"Verify best config (...)" and "Final verification" re-run the configuration; "verify that X helps"
    proposes X."""
    from memorylab_core.novelty.textnorm import is_rerun
    assert is_rerun("Verify best config (9L/256seq/rope250/lr0.08/wd0.01)")
    assert is_rerun("Final verification (reproducible)")
    assert not is_rerun("verify that XSA on the last 3 layers helps")


def test_a_kind_named_in_place_re_runs_in_a_line_but_is_a_placement_in_a_paragraph():
    """"switch to SwiGLU" where SwiGLU is kept re-runs the configuration; a paragraph that adds an
    RMSNorm somewhere where RMSNorm is the model's norm says where a change goes, so it is no re-run."""
    rows = [BASE, ("switch activation relu2 -> swiglu", "keep"), ("switch norm layernorm -> rmsnorm", "keep")]
    assert check(rows, "switch to SwiGLU").classification == "duplicate_run"
    paragraph = ("Full QKV-norm: add F.rms_norm on V in CausalSelfAttention.forward, symmetric with the existing "
                 "Q/K norm, which decouples the attention output magnitude from the input scale and makes the "
                 "value path as well conditioned as the score path.")
    assert check(rows, paragraph).classification == "novel"


def test_a_knob_put_back_where_a_move_failed_makes_that_failure_hold_again():
    """Muon LR 0.04 → 0.06 failed, then 0.04 → 0.03 was kept; a new machine's baseline puts it back at 0.04:
    "0.04 → 0.06" there repeats the old failure, while going on from the kept 0.03 does not."""
    rows = [BASE, ("Muon LR 0.04→0.06", "discard"), ("Muon LR 0.04→0.03", "keep")]
    assert check(rows, "Muon LR 0.04→0.06 — retune for the new machine").classification == "repeat_failure"
    assert check(rows, "Muon LR 0.03→0.025").classification == "incremental_followup"


def test_glued_config_shorthand_and_a_compared_setting_name_their_moves():
    """A config-restating line "9L MLP3.5x d576" names depth, MLP ratio and width; an outcome note that
    compares with a named setting ("worse than gain=1.5") names where the run started."""
    from memorylab_core.novelty.changes import text_changes
    facts = {f["name"]: f["new"] for f in text_changes("9L MLP3.5x d576 int6 EMA (artifact 17.1MB over limit)")}
    assert facts["DEPTH"] == 9 and facts["MLP_RATIO"] == 3.5 and facts["MODEL_DIM"] == 576
    fact = text_changes("VRL qk_gain=2.25 (1.1855 worse than gain=1.5=1.1846)")[0]
    assert (fact["name"], fact["old"], fact["direction"]) == ("QK_GAIN", 1.5, "up")
    rows = [BASE, ("9L MLP3x (baseline arch)", "keep"), ("9L MLP4x int6 EMA (hard timeout)", "discard")]
    assert check(rows, "9L MLP3.5x int6 EMA").classification == "repeat_failure"


def test_a_failure_that_turned_back_ends_the_chain_of_pushes():
    """"0.5 -> 0.2" failed, then "0.2 -> 0.22" (turning back) failed: going on up from 0.22 towards the
    start is not a push of a failed direction (the first move went down), and the way down overlaps the
    first failure."""
    rows = [BASE, ("warmdown 0.5 -> 0.2", "discard"), ("warmdown 0.2 -> 0.22", "discard")]
    assert check(rows, "warmdown 0.22 -> 0.5").classification == "novel"
    assert check(rows, "warmdown 0.22 -> 0.1").classification == "repeat_failure"


def test_combination_names_the_failed_part():
    rows = [BASE, ("lower weight decay to 0.1", "discard")]
    result = check(rows, "warmdown 0.5 -> 0.7 + weight decay 0.2 -> 0.1")
    assert result.classification == "repeat_failure"
    assert result.matched_part.startswith("WEIGHT_DECAY down")
    assert any("WARMDOWN_RATIO" in reason and "no earlier run" in reason for reason in result.reasons)


def test_incremental_followup_and_known_success():
    rows = [BASE, ("warmdown 0.5 -> 0.8", "keep")]
    result = check(rows, "full anneal, warmdown 0.8 -> 1.0")
    assert result.classification == "incremental_followup" and result.matches[0].index == 1
    assert check(rows, "warmdown 0.5 -> 0.8").classification == "known_success"


def test_state_replay_reads_set_values_as_moves():
    rows = [BASE, ("lower matrix lr to 0.03", "keep")]  # state: 0.03
    assert check(rows, "set matrix lr to 0.02").classification == "incremental_followup"
    assert check(rows + [("raise matrix lr to 0.035", "discard")], "set matrix LR to 0.032").classification \
        == "repeat_failure"


def test_retuning_a_kept_knob_is_a_followup_in_either_direction():
    rows = [("baseline", "keep"), ("depth 4 -> 3", "keep")]
    result = check(rows, "re-check depth 4 with Muon")  # reference 06/26: back towards the start
    assert result.classification == "incremental_followup" and result.matches[0].index == 1
    assert "further" in result.matches[0].signals
    assert check(rows, "revert depth 4 -> 3").classification == "incremental_followup"
    stale = [BASE, ("Muon LR 0.04 -> 0.02", "keep"), ("Muon LR 0.02 -> 0.03", "keep")]
    assert check(stale, "Muon LR 0.03 -> 0.04").classification == "incremental_followup"


def test_a_later_keep_makes_older_failures_of_the_knob_stale():
    rows = [BASE, ("lower matrix lr to 0.03", "discard"), ("lower matrix lr to 0.03 at batch 2^13", "keep")]
    result = check(rows, "matrix lr 0.04 -> 0.03")
    assert result.classification == "known_success" and [m.index for m in result.matches] == [2]
    # reference 06/39: "matrix LR up from 0.04" failed long ago; a kept sweep since came back to 0.04
    sweep = [BASE, ("increase matrix LR to 0.06", "discard"), ("Muon LR 0.04 -> 0.02", "keep"),
             ("Muon LR 0.02 -> 0.03", "keep"), ("Muon LR 0.03 -> 0.04", "keep")]
    result = check(sweep, "Muon LR 0.04 -> 0.05")
    assert result.classification == "incremental_followup" and result.matches[0].index == 4


def test_turning_back_to_where_a_failure_started_repeats_it():
    """A keep that brings the knob back to a value an older failure started from makes that failure hold
    again for a move that turns back from the keep (the same move from the same operating point); a move
    that goes on the kept way still builds on the keep (reference 06/39)."""
    rows = [BASE, ("Muon LR 0.04 -> 0.055", "keep"), ("Muon LR 0.055 -> 0.065", "discard"),
            ("Muon LR 0.055 -> 0.07 at depth 10", "keep"), ("Muon LR 0.07 -> 0.055 at depth 12", "keep")]
    result = check(rows, "Muon LR 0.055 -> 0.06")
    assert result.classification == "repeat_failure" and result.matches[0].index == 2
    assert check(rows, "Muon LR 0.055 -> 0.05").classification == "incremental_followup"


def test_categorical_changes():
    rows = [BASE, ("SwiGLU instead of ReLU² (worse)", "discard"), ("remove logit softcap", "keep")]
    assert check(rows, "replace squared relu with swiglu").classification == "repeat_failure"
    assert check(rows, "GELU instead of ReLU²").classification == "novel"
    assert check(rows, "drop the softcap").classification == "known_success"
    assert check(rows, "add logit softcap back").classification == "incremental_followup"  # re-tunes a kept knob


def test_window_patterns_are_ordered_by_their_short_share_and_other_categories_compare_exactly():
    old = 'WINDOW_PATTERN = "SSSL"\nACTIVATION = "relu2"\n'
    failed = tuple(diff_constants(old, 'WINDOW_PATTERN = "SL"\nACTIVATION = "relu2"\n'))
    rows = [BASE, ("shorter pattern", "discard", {"change_signature": failed})]
    assert check(rows, "window pattern SSSL -> SSLL").classification == "repeat_failure"  # fewer short again
    assert check(rows, "window pattern SSSL -> LSSS").classification == "novel"  # as many, elsewhere
    assert check(rows, "SL pattern").classification == "repeat_failure"
    swapped = tuple(diff_constants(old, 'WINDOW_PATTERN = "SSSL"\nACTIVATION = "ReLU^2"\n'))
    assert swapped and check([BASE], "relu² -> relu^2").classification == "novel"


def test_diff_facts_from_the_caller_are_used():
    old = "DEPTH = 8\nMATRIX_LR = 0.04\n"
    rows = [BASE, ("try a new lr", "discard", {"change_signature": tuple(
        diff_constants(old, "DEPTH = 8\nMATRIX_LR = 0.06\n"))})]
    diff = tuple(diff_constants(old, "DEPTH = 8\nMATRIX_LR = 0.05\n"))
    result = check(rows, "some idea", changes=diff)
    assert result.classification == "repeat_failure" and "MATRIX_LR" in result.matched_part


def test_duplicate_run_beats_everything_and_is_whitespace_insensitive():
    source = "DEPTH = 8\nMATRIX_LR = 0.04\n"
    rows = [BASE, ("matrix LR 0.04 -> 0.05", "keep", {"code_fingerprint": code_fingerprint(source)})]
    result = check(rows, "matrix LR 0.04 -> 0.05",
                   code_fingerprints=(code_fingerprint(source.replace("\n", "  \r\n") + "\n\n"),))
    assert result.classification == "duplicate_run" and result.matches[0].signals == ["code_identity"]


@pytest.mark.parametrize("error", [{"error_kind": "keyboard_interrupt"}, {"error_kind": "infra"}, {"error_kind": "oom"},
                                   {"error_kind": "assertion"},
                                   {"error_kind": "runtime", "error_summary": "NameError: name 'x' is not defined"}])
def test_crashes_the_agent_fixes_or_the_machine_caused_are_not_failures(error):
    """evidence.crashes is the guard's rule: a plain bug, an OOM or a killed machine says nothing about the idea."""
    assert check([BASE, ("depth 8 -> 12", "crash", error)], "depth 8 -> 12").classification == "novel"


@pytest.mark.parametrize("kind", ["nan", "timeout", "runtime"])
def test_a_crash_of_the_idea_itself_is_a_failure(kind):
    rows = [BASE, ("depth 8 -> 12", "crash", {"error_kind": kind, "error_summary": "RuntimeError: boom"})]
    assert check(rows, "depth 8 -> 12").classification == "repeat_failure"


def test_re_baselines_and_re_runs_are_duplicate_runs():
    rows = [("baseline (AdamW, default config)", "keep"), ("Mac Mini baseline", "keep")]
    first = check([], "baseline")
    assert first.classification == "novel"
    rebase = check(rows, "baseline on new hardware")
    assert rebase.classification == "duplicate_run" and rebase.matches[0].index == 1
    for text in ("re-verify the current best", "clean retest of the best config",
                 "add checkpoint saving; no logic change, re-run confirms noise floor"):
        assert check(rows, text).classification == "duplicate_run", text
    sweep = [("baseline (batch 2^16)", "keep"), ("halve total batch size", "discard")]
    same = check(sweep, "re-check batch size 2^16 with Muon")  # reference 06/34: the current value
    assert same.classification == "duplicate_run" and same.matches[0].index == 0


# --- text similarity -----------------------------------------------------------------------------


def test_text_similarity_for_ideas_without_knobs():
    rows = [BASE, ("sandwich ordering of the sublayers (much worse)", "discard"),
            ("hashed trigram features added to the input", "keep")]
    repeat = check(rows, "reorder the sublayers sandwich style")
    assert repeat.classification == "repeat_failure" and repeat.matches[0].signals == ["text_similarity"]
    assert check(rows, "hashed trigram features on the input").classification == "known_success"
    assert check(rows, "hashed trigram features on the input, further").classification == "incremental_followup"
    assert check(rows, "multi-token prediction head").classification == "novel"


def test_threshold_controls_text_matches():
    rows = [BASE, ("sandwich ordering of sublayers", "discard")]
    loose = check(rows, "sandwich ordering of most sublayers")
    index, runs = history(*rows)
    strict = index.classify(Proposal("sandwich ordering of most sublayers"), runs, threshold=0.95)
    assert loose.classification == "repeat_failure" and strict.classification == "novel"
    assert strict.threshold == 0.95 and loose.threshold == DEFAULT_THRESHOLD


def test_a_long_hypothesis_meets_a_lower_threshold_than_a_terse_description():
    """Two wordings of one idea share its few words however long they are: the threshold falls with the
    length of the description (to 0.3), and holds whole for a terse one."""
    from memorylab_core.novelty.guard import length_threshold
    assert length_threshold(0.5, 6) == 0.5 and length_threshold(0.5, 8) == 0.5
    assert 0.3 < length_threshold(0.5, 12) < 0.5 and length_threshold(0.5, 40) == 0.3
    assert length_threshold(0.95, 40) > 0.4  # a strict caller stays stricter than the default
    assert length_threshold(0.2, 40) == 0.2  # never above the threshold given
    rows = [BASE, ("Frequency-weighted GPTQ Hessians (top-100 tokens get 2x weight) plus halved damping to reduce "
                   "quantization error on common tokens that dominate BPB", "discard")]
    again = check(rows, "Frequency-weighted GPTQ Hessian calibration: top-100 most frequent tokens receive sqrt(2) "
                        "activation scaling, biasing GPTQ to minimize quantization error on common tokens")
    assert again.classification == "repeat_failure" and again.threshold == 0.5  # the caller's, as given
    assert "(threshold 0.3" in again.reasons[-1]  # the reason names the lower threshold the length gave
    assert check(rows, "GPTQ on common tokens").classification == "novel"  # terse: the whole threshold


def test_structured_facts_beat_text_overlap():
    rows = [BASE, ("lower scalar lr to 0.2 at batch 2^13", "discard")]
    assert check(rows, "lower embedding lr to 0.4 at batch 2^13").classification == "novel"


def test_ties_go_to_the_most_recent_run():
    rows = [BASE, ("zloss regularisation on logits", "discard"), ("zloss regularisation on logits", "keep")]
    result = check(rows, "zloss regularisation on logits")
    assert result.classification == "known_success" and result.matches[0].index == 2


HELD_OUT = [  # phrasing that appears nowhere in the fixtures
    ([BASE, ("bump the matrix learning rate from 0.04 up to 0.06", "discard")],
     "MATRIX_LR=0.05", "repeat_failure"),
    ([BASE, ("cut layers 8 → 6", "keep")], "go down to 4 layers", "incremental_followup"),
    ([BASE, ("cut layers 8 → 6", "keep")], "go back to 8 layers", "incremental_followup"),
    ([BASE, ("use GeLU in place of squared ReLU", "discard")], "swap relu² for gelu", "repeat_failure"),
    ([BASE, ("turn off the logit soft-cap", "keep")], "no logit capping", "known_success"),
    ([BASE, ("cooldown 40% of the budget", "discard")], "warmdown ratio 0.5 -> 0.4", "repeat_failure"),
    ([BASE, ("weight decay 0.2 -> 0.1 (hurt)", "discard")], "weight decay 0.2 -> 0.3", "novel"),
    ([BASE, ("decrease total batch by 50%", "keep")], "halve the batch once more", "incremental_followup"),
    ([BASE, ("qk norm removed", "discard")], "disable QK-norm", "repeat_failure"),
]


@pytest.mark.parametrize("rows,description,expected", HELD_OUT)
def test_held_out_phrasing(rows, description, expected):
    assert check(rows, description).classification == expected


# --- evidence and serialisation ------------------------------------------------------------------


def test_every_verdict_names_its_runs_and_serialises():
    for cls, (rows, description, proposal) in SCENARIOS.items():
        result = check(rows, description, **proposal)
        data = result.to_dict()
        json.dumps(data)
        assert data["classification"] == cls and data["reasons"]
        if cls != "novel":
            assert data["matches"] and all(m["reason"] and m["signals"] for m in data["matches"])
            assert {"run_id", "index", "score", "status", "val_bpb", "description"} <= set(data["matches"][0])


def test_limit_caps_matches():
    rows = [BASE] + [(f"depth 8 -> {d}", "discard") for d in (10, 11, 12, 13)]
    index, runs = history(*rows)
    assert len(index.classify(Proposal("depth 8 -> 12"), runs, limit=2).matches) == 2
    assert index.classify(Proposal("depth 8 -> 12"), runs, limit=0).matches == []


def test_match_to_dict():
    match = Match("r1", 1, 0.9, "keep", 1.0, "d", ["text_similarity"], "why")
    assert match.to_dict()["signals"] == ["text_similarity"]


# --- the index -----------------------------------------------------------------------------------


def test_index_reopened_from_its_tables_gives_the_same_verdicts():
    index, runs = history(BASE, ("depth 8 -> 12", "discard", {"code_fingerprint": "a" * 64}),
                          ("SwiGLU instead of ReLU²", "keep"), ("conv mixer replaces attention", "discard"))
    index.flush()  # the end of a fold
    copy = NoveltyIndex(index.db)  # a later command: only the SQLite tables carry over
    for description in ("depth 8 -> 10", "SwiGLU instead of ReLU²", "conv mixer replaces attention", "x"):
        assert copy.classify(Proposal(description), runs).to_dict() == \
            index.classify(Proposal(description), runs).to_dict()
    copy.add(make_run(4, "depth 8 -> 6", "keep"))
    assert len(copy) == 5


def test_add_rejects_going_backwards():
    index, _ = history(BASE)
    with pytest.raises(ValueError):
        index.add(make_run(0, "again"))


def test_idea_key():
    assert idea_key(make_run(0, "baseline")) == "baseline"
    assert idea_key(make_run(0, "increase matrix LR to 0.06 (worse)")) == "MATRIX_LR:up"
    assert idea_key(make_run(0, "SwiGLU instead of ReLU²")) == "ACTIVATION=swiglu"
    assert idea_key(make_run(0, "conv mixer replaces attention")) == idea_key(
        make_run(1, "exp8: conv mixer replaces attention (much worse)"))


# --- paragraph hypotheses, own knob names, baselines by role ------------------------------------

PARAGRAPH_FAIL = ("Lower peak Muon momentum from 0.99 to 0.95 (canonical modded-nanogpt value): velocity timescale "
                  "shortens, giving late-warmdown steps more on-policy recent-gradient signal instead of stale "
                  "accumulated velocity over the long 72% cosine warmdown that the current schedule runs with.")


def test_a_paragraphs_rationale_names_no_move():
    """A paragraph states its change first; the knobs its rationale cites (the cosine warmdown it runs
    with) are not moves, so a later cosine-schedule idea is no repeat of it."""
    assert check([BASE, (PARAGRAPH_FAIL, "discard")], "switch the LR schedule to cosine warmdown").classification \
        == "novel"
    assert check([BASE, (PARAGRAPH_FAIL, "discard")], "lower muon momentum 0.99 -> 0.95").classification \
        == "repeat_failure"


def test_a_paragraph_whose_head_names_a_technique_is_read_by_its_first_sentence():
    """ "Name: specifics" (the head names no knob) is read by its first sentence, where the change is;
    the second sentence's rationale adds nothing."""
    from memorylab_core.novelty.changes import text_changes
    facts = text_changes("Sharper GPTQ calibration: Hessian damping 0.01→0.005. Together with the raised warmdown "
                         "ratio of the last keep this pushes the post-quant weights closer to the full-precision "
                         "optimum, which the literature on optimal brain quantization suggests matters most for the "
                         "int6 matrices that dominate the artifact.")
    assert [(f["name"], f["direction"]) for f in facts] == [("HESSIAN_DAMPING", "down")]


def test_two_spellings_of_a_knob_outside_the_vocabulary_are_one_knob():
    rows = [BASE, ("Halve GPTQ Hessian damping 0.01→0.005", "discard")]
    found = check(rows, "Reduce the damping factor from 0.01 to 0.005")
    assert found.classification == "repeat_failure" and found.matches[0].index == 1
    assert check(rows, "raise the damping factor 0.01 -> 0.02").classification == "novel"  # the other way


def test_same_own_knob_needs_a_shared_word_that_names_a_thing():
    from memorylab_core.novelty.guard import same_own_knob
    assert same_own_knob("GPTQ_HESSIAN_DAMPING", "HESSIAN_DAMPING_FACTOR")
    assert same_own_knob("INNER_BATCH_SEQS", "BATCH_SEQS")
    assert not same_own_knob("TTT_LR", "LR") and not same_own_knob("CLIP_SCALE", "INIT_SCALE")
    assert not same_own_knob("MUON_WD_MLP", "MUON_WD_ATTN")
    assert not same_own_knob("X0_LAMBDAS", "X0_LAMBDAS_LR")  # the learning rate of x0_lambdas
    assert same_own_knob("DAGGER_TRIGGER", "DAGGER_TRIGGER_FRAC")  # the trigger, as a fraction
    assert same_own_knob("QK_GAIN", "QK_GAIN_INIT")  # a learned gain is set by its initial value
    assert not same_own_knob("STD", "TIED_EMBED_INIT_STD")  # a bare unit names no thing


def test_a_cited_run_is_no_knob():
    from memorylab_core.novelty.changes import text_changes
    names = {f["name"] for f in text_changes("rebase on exp_081 and raise ema_decay 0.99 -> 0.995")}
    assert names == {"EMA_DECAY"}


def test_a_baseline_by_role_sets_the_operating_point_whatever_its_words():
    """An imported file's first row is its baseline by structure ("PR #1758 seed ..." has no baseline word):
    the technique its settings belong to (TTT, from "TTT LR=1e-3") is in place, so naming TTT later is
    context, not TTT added again, and a failure that named it is no failure of TTT."""
    seed = ("PR #1758 seed (CaseOps + PreQuant TTT LR=1e-3 Unfrozen)", "keep", {"role": "baseline"})
    rows = [seed, ("flat LR in TTT instead of the cosine decay", "discard")]
    assert check(rows, "add z-loss 1e-4 to the TTT objective").classification == "novel"
    # read as an idea, the seed's TTT setting adds TTT (a kept move: absent_owners), so TTT is in place too
    plain = [(seed[0], "keep"), rows[1]]
    assert check(plain, "add z-loss 1e-4 to the TTT objective").classification == "novel"


def test_a_row_that_never_ran_is_invisible_to_the_guard():
    rows = [BASE, ("swap in SwiGLU MLP", "discard", {"validity": "not_run", "role": "not_run"})]
    assert check(rows, "swap in SwiGLU MLP").classification == "novel"


# --- labelled evaluation on real ledgers ---------------------------------------------------------


def _eval_module():
    spec = importlib.util.spec_from_file_location("novelty_eval", ROOT / "benchmarks" / "novelty_eval.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_labelled_ledgers_meet_the_targets():
    ev = _eval_module()
    ledgers = ev.find_ledgers()
    if ledgers is None:
        pytest.skip("fixture ledgers (shared/fixtures/real-ledgers) not found")
    rows = ev.evaluate(ledgers)
    assert len(rows) == len(ev.LABELS.read_text(encoding="utf-8").splitlines()) - 1  # every label used
    metrics = ev.target_metrics(rows)
    for key, target in ev.TARGETS.items():
        assert metrics[key] >= target, (key, metrics, ev.format_table("all", rows))
    assert ev.evidence_rate(rows) >= 0.9


def test_the_development_set_is_labelled_row_for_row_and_split_by_ledger():
    """tests/data/dev-ledgers: every row of every ledger has a label, each ledger sits in one part,
    and the guard holds what the tuning part was tuned to (a regression guard, not a generalisation
    claim: the held-out part is reported in docs/novelty.md, not asserted)."""
    ev = _eval_module()
    parts = [ev.split_files(ev.DEV_LEDGERS, split) for split in ev.SPLITS]
    assert all(parts) and sum(map(len, parts)) == len(set().union(*parts))  # each ledger in one part
    assert set().union(*parts) == {p.stem for p in ev.DEV_LEDGERS.glob("*.tsv")} - {"labels", "SOURCES"}
    sizes = [len(ev.evaluate(ev.DEV_LEDGERS, only=part)) for part in parts]
    assert sizes == [165, 116, 125, 409, 264, 250, 291, 250, 359, 339, 201, 201, 201, 200, 81, 98, 250, 85, 192,
                     116, 196, 200, 92, 107, 179, 144, 107, 59, 163, 127, 130, 100, 222, 82, 250, 247, 250, 64]
    rows = ev.evaluate(ev.DEV_LEDGERS, only=parts[0])
    metrics = ev.target_metrics(rows)
    assert metrics["repeat_failure_recall"] >= 0.95 and metrics["novel_precision"] >= 0.95, metrics


def test_label_agreement_scores_a_second_labelling_like_the_guard(tmp_path):
    """benchmarks/label_agreement.py: the first labels are the reference, the second are scored with the
    guard's metrics, only rows both files label count, and a missing file is a one-line error."""
    header = "file\trow_index\tstatus\tlabel\tmatched_row\tjustification\n"
    first = tmp_path / "first.tsv"
    second = tmp_path / "second.tsv"
    first.write_text(header + "".join(f"a.tsv\t{i}\tdiscard\t{label}\t{m}\tj\n" for i, (label, m) in enumerate(
        [("novel", ""), ("repeat_failure", "0"), ("repeat_failure", "0"), ("novel", ""), ("duplicate_run", "3")])))
    second.write_text(header + "".join(f"a.tsv\t{i}\tdiscard\t{label}\t{m}\tj\n" for i, (label, m) in enumerate(
        [("novel", ""), ("repeat_failure", "0"), ("novel", ""), ("repeat_failure", "1")])))
    spec = importlib.util.spec_from_file_location("label_agreement", ROOT / "benchmarks" / "label_agreement.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    rows = module.paired_rows(first, second)
    assert [(r.row, r.expected, r.predicted) for r in rows] == [
        (0, "novel", "novel"), (1, "repeat_failure", "repeat_failure"), (2, "repeat_failure", "novel"),
        (3, "novel", "repeat_failure")]
    metrics = module.target_metrics(rows)
    assert metrics == {"repeat_failure_recall": 0.5, "repeat_failure_precision": 0.5, "novel_precision": 0.5}
    assert module.main(["--first", str(first), "--second", str(tmp_path / "absent.tsv")]) == 2


# --- results.tsv reader --------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "results.tsv", raw: bytes | None = None) -> Path:
    path = tmp_path / name
    path.write_bytes(raw if raw is not None else text.encode("utf-8"))
    return path


def test_reads_upstream_file(tmp_path):
    rows, warnings = read_results_tsv(write(tmp_path, (
        "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
        "a1b2c3d\t0.997900\t44.0\tkeep\tbaseline\n"
        "b2c3d4e\t0.000000\t0.0\tcrash\tdouble the width (OOM)\n")))
    assert warnings == []
    assert rows[0] == {"commit": "a1b2c3d", "val_bpb": 0.9979, "memory_gb": 44.0, "status": "keep",
                       "description": "baseline", "extra": {}, "line": 2,
                       "raw": {"line": "a1b2c3d\t0.997900\t44.0\tkeep\tbaseline",
                               "fields": {"commit": "a1b2c3d", "val_bpb": "0.997900", "memory_gb": "44.0",
                                          "status": "keep", "description": "baseline"}}}
    assert rows[1]["val_bpb"] is None and rows[1]["status"] == "crash"


def test_tolerates_bom_crlf_blank_lines_reordered_and_extra_columns(tmp_path):
    text = ("\ufeffstatus\tdescription\tcommit\tval_bpb\tmemory_gb\tseed\r\n\r\n"
            "keep\tbaseline\ta1b2c3d\t1.0\t10\t42\r\n\r\n"
            "discard\tlower LR\tb2c3d4e\t1.01\t10\t43\r\n")
    rows, warnings = read_results_tsv(write(tmp_path, text))
    assert warnings == []
    assert [r["commit"] for r in rows] == ["a1b2c3d", "b2c3d4e"]
    assert rows[1]["extra"] == {"seed": "43"} and rows[1]["line"] == 5 and rows[1]["val_bpb"] == 1.01


def test_malformed_rows_warn_but_do_not_stop(tmp_path):
    text = ("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
            "a1\tnot-a-number\t1\tdiscard\tx\n"
            "garbage line without tabs\n"
            "b2\t1.0\n"
            "c3\t1.0\t1\tkeep\tdesc with\ta tab\n"
            "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
            "d4\t0.99\t1\tkeep\tlast\n")
    rows, warnings = read_results_tsv(write(tmp_path, text))
    assert [r["commit"] for r in rows] == ["a1", "b2", "c3", "d4"]
    assert rows[0]["val_bpb"] is None and rows[2]["description"] == "desc with\ta tab"
    joined = "\n".join(warnings)
    for fragment in ("line 2: val_bpb", "line 3: not tab-separated", "line 4: 2 of 5 columns", "line 4: no status",
                     "line 5: description contains tabs", "line 6: repeated header"):
        assert fragment in joined


def test_headerless_and_unreadable_files(tmp_path):
    rows, warnings = read_results_tsv(write(tmp_path, "a1\t1.0\t2\tkeep\tbaseline\n"))
    assert rows[0]["description"] == "baseline" and "no header" in warnings[0]
    rows, warnings = read_results_tsv(tmp_path / "missing.tsv")
    assert rows == [] and "cannot read" in warnings[0]
    rows, warnings = read_results_tsv(write(tmp_path, "", raw=b"commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
                                            b"a1\t1.0\t1\tkeep\tbad \xff byte\n"))
    assert rows[0]["description"] == "bad \ufffd byte" and "invalid UTF-8" in warnings[0]


@pytest.mark.parametrize("name", ["06_isque03__autoresearch-mlx.tsv", "08_BobMolt__autoresearch-mlx.tsv",
                                  "09_Bervaso__autoresearch-macos.tsv"])
def test_reads_the_real_fixture_ledgers_cleanly(name):
    ev = _eval_module()
    ledgers = ev.find_ledgers()
    if ledgers is None or not (ledgers / name).exists():
        pytest.skip("fixture ledgers not found")
    rows, warnings = read_results_tsv(ledgers / name)
    assert warnings == [] and len(rows) >= 25
    assert all(r["status"] in ("keep", "discard", "crash") for r in rows)


def test_a_native_arena_starts_from_the_train_py_it_ran_for_its_profile(tmp_path, monkeypatch):
    """The cpu branch of train.py sets MATRIX_LR 0.02: "MATRIX_LR 0.03" is a move up from there, not
    down from upstream's 0.04. ``log`` records those defaults on the arena's first run
    (``train_defaults``) and the fold reads them from the journal; a record without the field (logged
    before it existed) starts the arena from upstream's defaults."""
    repo = make_repo(tmp_path / "repo")
    (repo / "train.py").write_text('PROFILE = "cpu"\nMATRIX_LR = 0.04\nif PROFILE == "cpu":\n    MATRIX_LR = 0.02\n')
    git(repo, "commit", "-qam", "cpu branch")
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    assert log_run(repo, "baseline", "keep", 1.0).code == 0  # fake_run's sidecar says profile cpu
    assert log_run(repo, "depth 10", "discard", 1.1).code == 0
    first, second = records(repo)
    assert first["metrics"]["profile"] == "cpu" and first["train_defaults"] == {"PROFILE": "cpu", "MATRIX_LR": 0.02}
    assert "train_defaults" not in second  # only an arena's first run carries them
    reasons = " ".join(ml("check", "-d", "MATRIX_LR 0.03", "--json", cwd=repo).json()["reasons"])
    assert "MATRIX_LR up 0.02→0.03" in reasons, reasons

    del first["train_defaults"]  # an older journal: the index folds it from upstream's defaults
    ledger(repo).write_text("".join(json.dumps(r) + "\n" for r in (first, second)))
    reasons = " ".join(ml("check", "-d", "MATRIX_LR 0.03", "--json", cwd=repo).json()["reasons"])
    assert "MATRIX_LR down 0.04→0.03" in reasons, reasons

# --- the fork's paraphrase scenarios (issue 25), driven through the CLI ---------------------------

def _scenario(tmp_path, monkeypatch, description: str, status: str, **change) -> Path:
    """A repo with a kept baseline and one logged experiment (train.py edited and committed, then
    reverted after a discard, as the agent does)."""
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    repo = make_repo(tmp_path / "repo")
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    commit_change(repo, description, **change)
    assert log_run(repo, description, status, 0.99 if status == "keep" else 1.01).code == 0
    if status != "keep":
        git(repo, "reset", "-q", "--hard", "HEAD~1")
    return repo


def test_a_paraphrase_of_a_kept_move_is_a_follow_up_and_explore_blocks_it(tmp_path, monkeypatch):
    repo = _scenario(tmp_path, monkeypatch, "increase matrix lr", "keep", matrix_lr=0.05)
    idea = "raise matrix learning rate and reduce cooldown"
    verdict = ml("check", "-d", idea, "--json", "--mode", "exploit", cwd=repo).json()
    assert (verdict["classification"], verdict["decision"]) == ("incremental_followup", "allow"), verdict["reasons"]
    assert verdict["matches"][0]["description"] == "increase matrix lr"
    explore = ml("check", "-d", idea, "--mode", "explore", "--fail-on-similar", cwd=repo)
    assert explore.code == 2 and explore.out.startswith("incremental_followup → BLOCK"), explore.out


def test_a_paraphrase_of_a_discarded_move_is_a_repeat_failure(tmp_path, monkeypatch):
    repo = _scenario(tmp_path, monkeypatch, "raise muon step size and reduce cooldown", "discard",
                     matrix_lr=0.05, warmdown=0.3)
    for idea in ("increase muon learning rate and shorten warmdown",
                 "bigger step size for the orthogonalized optimizer on the block weight matrices: 0.04 to 0.055"):
        verdict = ml("check", "-d", idea, "--json", "--mode", "exploit", cwd=repo).json()
        assert verdict["classification"] == "repeat_failure", (idea, verdict["reasons"])
        assert "MATRIX_LR" in verdict["matched_part"]
    assert ml("check", "-d", "lower the muon learning rate", "--json", cwd=repo).json()["classification"] == "novel"


def _imported_then_checked(tmp_path: Path, monkeypatch, ledger_text: str, ideas) -> dict[str, dict]:
    """What an operator does with a ledger from elsewhere: import it into a fresh repo's store, then ask
    ``check`` about each idea; each idea's ``--json`` verdict."""
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    repo = make_repo(tmp_path / "repo")
    (tmp_path / "results.tsv").write_text(ledger_text, encoding="utf-8")
    assert ml("import", str(tmp_path / "results.tsv"), cwd=repo).code == 0
    return {idea: ml("check", "-d", idea, "--json", cwd=repo).json() for idea in ideas}


def test_paraphrases_are_recognised_in_an_imported_ledger_from_its_words_alone(tmp_path, monkeypatch):
    """No train.py diffs behind imported rows: the vocabulary alone must see that "muon step size",
    "muon learning rate" and "matrix learning rate" are MATRIX_LR, and "cooldown" the warmdown."""
    verdicts = _imported_then_checked(tmp_path, monkeypatch, (
        "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
        "a1b2c3d\t1.000000\t44.0\tkeep\tbaseline\n"
        "b2c3d4e\t0.990000\t44.0\tkeep\tincrease matrix lr\n"
        "c3d4e5f\t1.010000\t44.0\tdiscard\tshorten cooldown\n"
        "d4e5f6a\t1.020000\t44.0\tdiscard\traise muon step size\n"),
        ("reduce warmdown", "increase the muon learning rate", "lower matrix learning rate"))
    assert [(v["classification"], v["matched_part"]) for v in verdicts.values()] == [
        ("repeat_failure", "WARMDOWN_RATIO down from 0.5"), ("repeat_failure", "MATRIX_LR up"),
        ("incremental_followup", None)], verdicts


# --- a ledger the guard was never tuned on (issue 25): read through import, asked through check ----

UNSEEN_LEDGER = """commit\tval_bpb\tmemory_gb\tstatus\tdescription
a000001\t0.000000\t0.0\tcrash\tbaseline (no changes): killed with exit 137 after warmup
a000002\t0.000000\t0.0\tcrash\tIncrease grad_accum_steps to 16; died at step 3 like the baseline
a000003\t1.100000\t40.0\tkeep\tbaseline rerun after freeing the GPU
a000004\t0.000000\t0.0\tcrash\traise MATRIX_LR to 0.06 (OOM: another process held the GPU)
a000005\t0.000000\t0.0\tcrash\tDEPTH 8 -> 10 - loss went NaN at step 400
a000006\t1.120000\t40.0\tdiscard\tbump ROUTER_TEMP up to 1.5
a000007\t1.130000\t40.0\tdiscard\tmore heads by reducing HEAD_DIM to 64 and raising ASPECT_RATIO to 96 to keep the width
a000008\t1.090000\t40.0\tkeep\tQK_GAIN_INIT=1.75
a000009\t1.100000\t40.0\tdiscard\tAdam β2 0.95 -> 0.99
a000010\t1.110000\t40.0\tdiscard\tset LABEL_SMOOTHING_EPS to 0.1
"""

UNSEEN_CHECKS = [  # (idea, class, the knob of the failed part)
    # crashes that say nothing about the idea: the baseline died the same way, or another process did it
    ("increase grad_accum_steps to 32", "novel", None),
    ("MATRIX_LR 0.04 -> 0.05", "novel", None),
    # a crash of the idea itself still counts
    ("depth 8 -> 9", "repeat_failure", "DEPTH"),
    # identifiers the vocabulary does not know are knobs, in either spelling
    ("raise router_temp to 1.3", "repeat_failure", "ROUTER_TEMP"),
    ("lower ROUTER_TEMP to 0.8", "novel", None),
    ("qk_gain_init 1.75 -> 2.0", "incremental_followup", None),
    ("label_smoothing_eps 0.0 -> 0.05", "repeat_failure", "LABEL_SMOOTHING_EPS"),
    # Greek letters spelled out
    ("increase Adam beta2 to 0.98", "repeat_failure", "ADAM_BETA2"),
    # a compensating move of a failed row is not a failure of its own
    ("ASPECT_RATIO 64 -> 80", "novel", None),
]


def test_an_unseen_ledger_is_read_right_through_import_and_check(tmp_path, monkeypatch):
    """Phrasings of the kinds the guard missed on ledgers it had not seen: identifiers it has no entry for,
    crashes of the environment, a compensating move, a Greek letter. An operator imports the ledger and
    asks ``check`` about the next ideas."""
    verdicts = _imported_then_checked(tmp_path, monkeypatch, UNSEEN_LEDGER, [idea for idea, _, _ in UNSEEN_CHECKS])
    got = []
    for idea, _, knob in UNSEEN_CHECKS:
        verdict = verdicts[idea]
        part = verdict["matched_part"]
        got.append((idea, verdict["classification"], knob if knob and part and part.startswith(knob) else part))
    assert got == UNSEEN_CHECKS


def test_a_crashed_baseline_takes_the_environment_down_until_a_run_completes():
    """What killed the unchanged configuration kills the ideas too: crashes after a crashed baseline say
    nothing about their ideas, until a run completes; later crashes count again."""
    rows = [("baseline, crashed at step 2", "crash"), ("raise matrix lr to 0.05, crashed at step 2", "crash"),
            ("baseline rerun", "keep"), ("depth 8 -> 10, crashed at step 2", "crash")]
    assert check(rows, "matrix lr 0.04 -> 0.06").classification == "novel"
    assert check(rows, "depth 8 -> 12").classification == "repeat_failure"


def test_a_failure_with_an_unknown_start_moved_from_where_the_proposal_starts():
    """"set X to 0.1" with no value of X known: failures are read back to the knob's last keep, so the
    failure started where the proposal starts, and its direction is known once the proposal's start is."""
    rows = [BASE, ("set LABEL_SMOOTHING_EPS to 0.1", "discard")]
    assert check(rows, "label_smoothing_eps 0.0 -> 0.05").classification == "repeat_failure"
    assert check(rows, "label_smoothing_eps 0.2 -> 0.15").classification == "repeat_failure"
    assert check(rows, "label_smoothing_eps 0.2 -> 0.3").classification == "novel"


@pytest.mark.parametrize("note,cls", [
    ("killed with exit 137", "novel"), ("OOM: another process held the GPU", "novel"),
    ("pre-empted by the scheduler", "novel"), ("node failure", "novel"), ("interrupted (ctrl-c)", "novel"),
    ("loss went NaN at step 400", "repeat_failure"), ("timed out", "repeat_failure"), ("crashed", "repeat_failure"),
    ("OOM-killed", "repeat_failure"), ("killed: out of memory", "repeat_failure"), ("OOM", "repeat_failure"),
])
def test_an_imported_crash_is_no_evidence_when_its_note_blames_the_environment(note, cls):
    """An imported row has no error kind, only its words: a note that blames the machine, another process
    or the operator says nothing about the idea; any other crash of the idea still counts against it."""
    assert check([BASE, (f"depth 8 -> 10 ({note})", "crash")], "depth 8 -> 12").classification == cls


def test_techniques_named_in_camel_case_are_components_of_their_own():
    """A technique the vocabulary has no entry for ("DeepNorm", "ScheduleFree") is still one idea under
    its name, whatever words surround it; a name in passing (in parentheses, no verb) is no change."""
    assert check([BASE, ("try DeepNorm residual scaling", "discard")], "DeepNorm").classification == "repeat_failure"
    assert check([BASE, ("try DeepNorm residual scaling", "discard")],
                 "LayerScale on the residual branches").classification == "novel"
    assert check([BASE, ("ScheduleFree AdamW for embeddings", "discard")],
                 "use ScheduleFree optimizer").classification == "repeat_failure"
    assert check([BASE, ("Switch data to FineWeb-Edu", "discard")],
                 "raise matrix lr to 0.05 (FineWeb-Edu)").classification == "novel"


def test_text_similarity_does_not_repeat_a_failure_in_the_opposite_direction():
    """Knobs without a vocabulary entry, in prose: the opposite direction of a failure is new ground, the
    same direction a repeat, and a kept move may be re-tuned either way (a follow-up)."""
    failed = [BASE, ("raise the qk gain from 1.5 to 2", "discard")]
    assert check(failed, "lower the qk gain to 1.2").classification == "novel"
    assert check(failed, "increase the qk gain to 1.8").classification == "repeat_failure"
    failed = [BASE, ("stronger weight decay on the gates", "discard")]
    assert check(failed, "weaker weight decay on the gates").classification == "novel"
    kept = [BASE, ("increase the router temperature a little", "keep")]
    assert check(kept, "decrease the router temperature a little").classification == "incremental_followup"


def test_a_crash_note_that_says_the_run_diverged_is_the_idea_s_failure_even_if_killed():
    rows = [BASE, ("depth 8 -> 10 (killed it: loss went NaN)", "crash")]
    assert check(rows, "depth 8 -> 12").classification == "repeat_failure"


def test_a_terse_ledger_s_abbreviations_move_the_knobs_they_name():
    """"rope 100k" tunes the RoPE base (upstream's 10000), "emb lr" is the embedding LR, not the LR."""
    assert check([BASE, ("rope base 50k", "discard")], "rope 100k").classification == "repeat_failure"
    assert check([BASE, ("rope base 50k", "discard")], "rope 5k").classification == "novel"
    rows = [BASE, ("lr .03", "keep"), ("lr .025", "discard")]
    assert check(rows, "emb lr 0.8").classification == "novel"


def test_a_crashed_change_that_names_its_seed_does_not_take_the_environment_down():
    rows = [BASE, ("depth 8 -> 12 (seed 42), crashed", "crash"), ("matrix lr 0.04 -> 0.06, crashed", "crash")]
    assert check(rows, "matrix lr 0.04 -> 0.05").classification == "repeat_failure"


def test_a_kept_coordinated_list_makes_each_of_its_knobs_a_follow_up():
    """"lower embedding, matrix, and scalar learning rates" kept moves three knobs: re-tuning any of
    them later builds on that keep, in either direction; a knob the list did not name is new."""
    rows = [BASE, ("lower embedding, matrix, and scalar learning rates", "keep")]
    for idea in ("lower MATRIX_LR from 0.03 to 0.028", "raise MATRIX_LR from 0.03 to 0.032", "lower SCALAR_LR to 0.3",
                 "lower embedding LR to 0.40"):
        assert check(rows, idea).classification == "incremental_followup", idea
    assert check(rows, "lower UNEMBEDDING_LR to 0.003").classification == "novel"


def test_a_setting_kept_beside_a_change_is_no_repeat_of_a_failure_of_that_setting():
    """"while keeping no warmup" names what stays: a failed warmup change does not make the warmdown move a
    repeat, and a failed "less aggressive cooldown" says nothing about which way the warmdown ratio went."""
    rows = [BASE, ("remove warmup", "discard"), ("add warmup and less aggressive cooldown", "discard")]
    assert check(rows, "set WARMDOWN_RATIO from 0.5 to 0.4 while keeping no warmup and zero final LR"
                 ).classification == "novel"
    assert check(rows, "add warmup, warmdown 0.5 -> 0.4").classification == "repeat_failure"


# --- the same run again: a second machine on the same commit, or an explicit retry ------------------

PAIRED = [("baseline", "keep", {"commit": "c000000"}),
          ("WARMDOWN_RATIO 0.5->0.3: GPU0", "keep", {"commit": "c111111"}),
          ("MATRIX_LR=0.06 GPU0", "discard", {"commit": "c222222"})]


def test_the_same_change_on_the_same_new_commit_is_the_same_run_on_another_machine():
    """A ledger row carries no code fingerprint: its commit, new at the earlier row and run again right
    after with the same moves, is that run again (kept or not); other moves on it, or a proposal with
    code fingerprints (a native check), are judged as ideas."""
    again = check(PAIRED, "MATRIX_LR=0.06 GPU1 (new best)", commit="c222222")
    assert (again.classification, again.matches[0].index, again.matches[0].signals) == (
        "duplicate_run", 2, ["commit_identity"])
    kept = check(PAIRED[:2], "WARMDOWN_RATIO 0.5->0.3: GPU1 result (best)", commit="c111111")
    assert (kept.classification, kept.matches[0].index) == ("duplicate_run", 1)
    assert check(PAIRED, "MATRIX_LR=0.06 WD=0.1 GPU1", commit="c222222").classification == "repeat_failure"
    assert check(PAIRED, "MATRIX_LR=0.06 GPU1", commit="c999999").classification == "repeat_failure"
    assert check(PAIRED, "MATRIX_LR=0.06 GPU1", commit="c222222",
                 code_fingerprints=("f" * 64,)).classification == "repeat_failure"


def test_a_commit_that_stays_while_the_changes_differ_names_no_code():
    """An agent that commits rarely runs many changes on one commit: the same change there later is the
    idea again (a repeat), not the same run; a kept move since also ends the pair."""
    stale = [(text, status, {"commit": "c000000"}) for text, status in (
        ("baseline", "keep"), ("reduce DEPTH from 3 to 2", "discard"), ("increase DEPTH from 3 to 4", "discard"))]
    assert check(stale, "reduce DEPTH from 3 to 2 again", commit="c000000").classification == "repeat_failure"
    moved = [*PAIRED, ("lower weight decay to 0.1", "keep", {"commit": "c222222"})]
    assert check(moved, "MATRIX_LR=0.06 GPU1", commit="c222222").classification == "repeat_failure"


def test_an_explicit_retry_of_the_same_change_is_a_duplicate_run():
    """"retry" / "re-run" with the same moves as an earlier run, nothing kept since that moved the
    operating point (a kept verification re-run moves nothing), is that run again; without those words,
    or with other moves, it is the idea again."""
    rows = [BASE, ("WARMDOWN_RATIO=0.7 (battery throttle, invalid)", "discard"),
            ("verification run on power adapter: baseline confirmed", "keep")]
    retry = check(rows, "WARMDOWN_RATIO=0.7 retry on power adapter")
    assert (retry.classification, retry.matches[0].index, retry.matches[0].signals) == ("duplicate_run", 1, ["rerun"])
    assert check(rows, "WARMDOWN_RATIO=0.7 on power adapter").classification == "repeat_failure"
    assert check(rows, "WARMDOWN_RATIO=0.8 retry").classification == "repeat_failure"
    moved = [*rows, ("matrix lr 0.04 -> 0.05", "keep")]
    assert check(moved, "WARMDOWN_RATIO=0.7 retry").classification == "repeat_failure"
    verify = check(rows[:2] + [("matrix lr 0.04 -> 0.05", "keep")], "verification run on power adapter")
    assert (verify.classification, verify.matches[0].index) == ("duplicate_run", 2)


def test_an_imported_ledger_s_coordinated_lists_kept_settings_and_retries_read_right_through_check(
        tmp_path, monkeypatch):
    """Held-out-3's general misses, asked the way an operator does: import a ledger, then ``check``."""
    verdicts = _imported_then_checked(tmp_path, monkeypatch, (
        "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
        "a000001\t1.000000\t10.0\tkeep\tbaseline\n"
        "a000002\t0.990000\t10.0\tkeep\tlower embedding, matrix, and scalar learning rates\n"
        "a000003\t1.010000\t10.0\tdiscard\tadd warmup and less aggressive cooldown\n"
        "a000004\t1.020000\t10.0\tdiscard\tWARMDOWN_RATIO=0.7 (battery throttle, invalid)\n"
        "a000005\t0.990000\t10.0\tkeep\tverification run on power adapter: baseline confirmed\n"),
        ("lower SCALAR_LR from 0.35 to 0.30", "set WARMDOWN_RATIO from 0.5 to 0.4 while keeping no warmup",
         "WARMDOWN_RATIO=0.7 retry on power adapter"))
    got = {idea: verdict["classification"] for idea, verdict in verdicts.items()}
    assert got == {"lower SCALAR_LR from 0.35 to 0.30": "incremental_followup",
                   "set WARMDOWN_RATIO from 0.5 to 0.4 while keeping no warmup": "novel",
                   "WARMDOWN_RATIO=0.7 retry on power adapter": "duplicate_run"}, got


def test_a_window_pattern_from_all_long_repeats_a_failed_move_to_more_short_layers():
    rows = [BASE, ("window pattern L->SL", "discard")]
    assert check(rows, "window pattern L->SSSL").classification == "repeat_failure"


def test_the_words_of_a_kept_run_with_other_numbers_take_it_further():
    """A knob the guard cannot read ("short window seq_len/4") matched by words alone: the same words as a
    kept run with other numbers continue it (a follow-up); the same words and numbers are that idea again."""
    rows = [BASE, ("reduce short window from seq_len/2 to seq_len/4", "keep")]
    further = check(rows, "reduce short window from seq_len/4 to seq_len/8")
    assert (further.classification, further.matches[0].index) == ("incremental_followup", 1)
    assert check(rows, "reduce short window from seq_len/2 to seq_len/4").classification == "known_success"


def test_tuning_5_s_general_misses_read_right_through_import_and_check(tmp_path, monkeypatch):
    """tuning-5's general misses, asked the way an operator does: a group's own setting is not the
    model-wide one, an aside glosses its move, kept words with new numbers go further, "640-dim" is a width."""
    verdicts = _imported_then_checked(tmp_path, monkeypatch, (
        "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
        "a000001\t1.000000\t10.0\tkeep\tbaseline\n"
        "a000002\t1.010000\t10.0\tdiscard\treduce weight decay from 0.2 to 0.1\n"
        "a000003\t1.010000\t10.0\tdiscard\tincrease resid_lambdas LR from 0.01 to 0.1\n"
        "a000004\t0.990000\t10.0\tkeep\twarmdown ratio 1.0 (pure cosine decay)\n"
        "a000005\t0.980000\t10.0\tkeep\treduce short window from seq_len/2 to seq_len/4\n"
        "a000006\t1.010000\t10.0\tdiscard\tincrease model dim from 512 to 640\n"),
        ("add weight decay 0.01 to embeddings", "increase x0_lambdas LR from 1.0 to 1.5",
         "cosine LR decay instead of linear", "reduce short window from seq_len/4 to seq_len/8", "depth 8 640-dim"))
    got = {idea: (v["classification"], v["matched_part"]) for idea, v in verdicts.items()}
    assert got == {"add weight decay 0.01 to embeddings": ("novel", None),
                   "increase x0_lambdas LR from 1.0 to 1.5": ("novel", None),
                   "cosine LR decay instead of linear": ("novel", None),
                   "reduce short window from seq_len/4 to seq_len/8": ("incremental_followup", None),
                   "depth 8 640-dim": ("repeat_failure", "MODEL_DIM up 512→640")}, got


def test_naming_a_component_a_kept_run_removed_as_absent_is_context():
    """"matrix LR up (without NorMuon)" after a kept "disable NorMuon": NorMuon is already off, so the
    failed row failed the LR move only; removing NorMuon's code later is the kept idea, no repeat."""
    rows = [BASE, ("disable NorMuon", "keep"), ("increase matrix LR from 0.04 to 0.05 (without NorMuon)", "discard")]
    again = check(rows, "remove NorMuon code entirely")
    assert (again.classification, again.matches[0].index) == ("known_success", 1), again.reasons
    assert check(rows, "increase matrix LR from 0.04 to 0.06").classification == "repeat_failure"


def test_adding_a_failed_technique_again_at_another_strength_repeats_it():
    """"label smoothing 0.01" after "label smoothing 0.1" failed: the technique is absent at the operating
    point, so both add it (up from off) and the second is the same idea at a smaller dose; once a run kept
    it at 0.1, a new strength re-tunes the kept technique instead."""
    rows = [BASE, ("label smoothing 0.1 (way too aggressive)", "discard")]
    again = check(rows, "label smoothing 0.01")
    assert (again.classification, again.matches[0].index) == ("repeat_failure", 1), again.reasons
    assert again.matched_part == "LABEL_SMOOTHING up 0→0.01"
    kept = [BASE, ("label smoothing 0.1", "keep")]
    assert check(kept, "label smoothing 0.05").classification == "incremental_followup"
    assert check(rows, "z-loss 1e-4").classification == "novel"


def test_a_technique_in_place_named_in_another_form_is_not_a_failed_setting_of_it():
    """"softplus VE gate" where a VE gate is in place (the failed row says its scale is 2.0): another form of
    the gate, not the failed setting of its scale, which "VE gate scale 1.2" repeats. Once that form failed, its
    words are the evidence: the same form again repeats it, another form ("scalar VE gate") is new."""
    rows = [BASE, ("VE gate scale 1.5 (2.0 still better)", "discard")]
    form = check(rows, "softplus VE gate")
    assert form.classification == "novel", form.reasons
    assert check(rows, "VE gate scale 1.2").classification == "repeat_failure"
    rows.append(("softplus VE gate (dtype mismatch)", "discard"))
    again = check(rows, "softplus VE gate, in fp32")
    assert (again.classification, again.matches[0].index) == ("repeat_failure", 2), again.reasons
    assert check(rows, "scalar VE gate").classification == "novel"
    assert check([BASE, ("add VE gate", "discard")], "VE gate scale 1.2").classification == "repeat_failure"


def test_a_clip_parameter_and_a_still_better_note_give_a_move_its_knob_and_start():
    """"grad clip max_norm=1.0" clips gradients (the identifier is the clip's own parameter), so after
    "gradient clipping max_norm=1.0" failed it repeats that; "x0_gate=0.3 (0.5 still better)" moved down from 0.5,
    so after it failed "x0_gate=0.2" repeats it and "x0_gate=0.7" is the other way."""
    rows = [BASE, ("gradient clipping max_norm=1.0", "discard")]
    again = check(rows, "grad clip max_norm=1.0 (too aggressive)")
    assert (again.classification, again.matches[0].index) == ("repeat_failure", 1), again.reasons
    rows = [BASE, ("x0_gate=0.3 (0.5 still better)", "discard")]
    assert check(rows, "x0_gate=0.2").classification == "repeat_failure"
    assert check(rows, "x0_gate=0.7").classification == "novel"
    assert check([BASE, ("x0_gate=0.3", "discard")], "x0_gate=0.2").classification == "novel"  # no start known


def test_upstream_s_lambda_inits_and_group_weight_decays_give_moves_their_start():
    """Upstream train.py starts the x0 lambdas at 0.1 and gives its AdamW groups no weight decay, so
    "x0_lambdas=0.15" repeats a failed "increase x0_lambdas init from 0.1 to 0.15", and "lm_head WD=0.004"
    repeats a failed "add small WD (0.01) to lm_head" (both up from 0); "x0_params LR" is the x0 lambdas' LR."""
    rows = [BASE, ("increase x0_lambdas init from 0.1 to 0.15", "discard"),
            ("add small WD (0.01) to lm_head", "discard"), ("double x0_lambdas LR from 0.5 to 1.0", "discard")]
    assert [check(rows, idea).classification for idea in ("x0_lambdas=0.2", "x0_lambdas=0.05", "lm_head WD=0.004",
                                                          "x0_params LR=2.0")] == \
        ["repeat_failure", "novel", "repeat_failure", "repeat_failure"]


def test_settings_already_in_place_beside_a_failed_idea_repeat_it():
    """A row that restates settings the configuration already has ("warmdown5k lr0.07") beside an idea that
    failed ("late QAT") re-tries that idea: the restated settings are its context, not a re-run of the best."""
    rows = [BASE, ("warmdown=5000 lr=0.07 (new best)", "keep"), ("late QAT only, no gain over no-QAT", "discard")]
    result = check(rows, "late QAT 0.15 + warmdown=5000 lr=0.07")
    assert result.classification == "repeat_failure", result.reasons
    assert [m.index for m in result.matches][:1] == [2]
    assert check(rows, "warmdown=5000 lr=0.07 again").classification == "duplicate_run"


def test_a_re_baseline_s_stated_config_is_the_operating_point_not_a_kept_move():
    """A later "baseline: ..." row lists the configuration a new session starts from: the values become the
    operating point, but moving one of them afterwards is new ground, not a re-tune of a kept move."""
    rows = [BASE, ("increase depth from 8 to 10", "keep"),
            ("baseline: DEPTH=8, MATRIX_LR=0.02, WEIGHT_DECAY=0.4", "keep")]
    result = check(rows, "reduce weight_decay 0.4->0.1")
    assert result.classification == "novel", result.reasons
    assert check(rows, "MATRIX_LR 0.02 -> 0.03").classification == "novel"


def test_a_setting_of_a_kept_technique_it_belongs_to_is_a_follow_up():
    """`PARENT`: the number of XSA layers after XSA was kept re-tunes XSA; before any XSA it is new."""
    kept = [BASE, ("XSA on last 3 layers (new best)", "keep")]
    assert check(kept, "XSA_LAYERS=7").classification == "incremental_followup"
    assert check([BASE], "XSA_LAYERS=7").classification == "novel"


def test_a_kept_technique_named_alone_in_other_words_is_a_variant_of_it():
    """After value embeddings were kept, "RMS-normalize the value embeddings before injection" reshapes them
    (a follow-up); the kept row's own words again re-propose it (known_success)."""
    rows = [BASE, ("add value embeddings on alternate layers", "keep")]
    assert check(rows, "RMS-normalize the value embeddings before injection").classification == \
        "incremental_followup"
    assert check(rows, "add value embeddings on alternate layers").classification == "known_success"


def test_a_paragraph_that_names_only_techniques_in_place_is_judged_by_its_words():
    """In a paragraph, a kept technique named alone says where the change goes ("... during TTT"): a
    re-worded retry of a failed TTT tweak repeats it; a different tweak of TTT is new, not a follow-up."""
    why = (" The validation stream spans many topics, so state carried across chunk boundaries points the"
           " adaptation the wrong way for the next document and costs more than it brings in practice.")
    rows = [BASE, ("add TTT (test-time training) at eval", "keep"),
            ("Reset the SGD momentum buffer between TTT chunks:" + why, "discard")]
    assert check(rows, "Reset SGD momentum buffers at each TTT chunk boundary:" + why).classification == \
        "repeat_failure"
    assert check(rows, "Shuffle the TTT inner-loop batch order each epoch with a chunk-seeded generator so the"
                       " updates see decorrelated batches and the adaptation is less sensitive to the order of"
                       " sequences inside one chunk of the validation stream.").classification == "novel"
