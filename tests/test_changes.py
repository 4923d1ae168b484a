"""Change facts: code fingerprints, constant diffs of train.py, facts from agent descriptions, and the
text normalisation behind them (outcome-note stripping, concept tokens)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memorylab_core.novelty.changes import code_fingerprint, diff_constants, merge_changes, text_changes
from memorylab_core.novelty.textnorm import is_baseline, names_followup, strip_outcome_notes, tokens

TRAIN = '''"""train.py (upstream-style constants)."""
import torch

DEPTH = 8                   # number of transformer blocks
ASPECT_RATIO = 64
HEAD_DIM = 128
WINDOW_PATTERN = "SSSL"
TOTAL_BATCH_SIZE = 2**19    # tokens per optimizer step
DEVICE_BATCH_SIZE = 128
MATRIX_LR = 0.04
WEIGHT_DECAY = 0.2
ADAM_BETAS = (0.8, 0.95)
WARMDOWN_RATIO = 0.5
DEVICE = torch.device("cuda")
PEAK_FLOPS = {"H100": 989.5e12}


def main():
    return DEPTH
'''


def edit(source: str, **values: str) -> str:
    """``source`` with the named constants' right-hand sides replaced."""
    lines = []
    for line in source.splitlines():
        name = line.split("=")[0].strip()
        if name in values and line.startswith(name):
            line = f"{name} = {values[name]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def by_name(facts: list[dict]) -> dict[str, dict]:
    return {f["name"]: f for f in facts}


# --- code_fingerprint ---------------------------------------------------------------------------


def test_fingerprint_ignores_whitespace_noise():
    crlf = TRAIN.replace("\n", "\r\n")
    trailing = "\n".join(line + "   " for line in TRAIN.splitlines())
    blank_lines = TRAIN.replace("\n\n", "\n\n\n\n") + "\n\n"
    no_final_newline = TRAIN.rstrip("\n")
    fingerprints = {code_fingerprint(s) for s in (TRAIN, crlf, trailing, blank_lines, no_final_newline)}
    assert len(fingerprints) == 1
    assert len(next(iter(fingerprints))) == 64


def test_fingerprint_sees_real_edits_and_indentation():
    assert code_fingerprint(TRAIN) != code_fingerprint(edit(TRAIN, DEPTH="10"))
    assert code_fingerprint("if x:\n    y = 1\n") != code_fingerprint("if x:\n  y = 1\n")


# --- diff_constants -----------------------------------------------------------------------------


def test_diff_numeric_up_and_down_with_arithmetic():
    new = edit(TRAIN, MATRIX_LR="0.05", TOTAL_BATCH_SIZE="2**18", DEPTH="4 * 2")
    facts = by_name(diff_constants(TRAIN, new))
    assert facts["MATRIX_LR"] == {"name": "MATRIX_LR", "old": 0.04, "new": 0.05, "direction": "up", "source": "diff"}
    assert facts["TOTAL_BATCH_SIZE"]["old"] == 524288
    assert facts["TOTAL_BATCH_SIZE"]["new"] == 262144
    assert facts["TOTAL_BATCH_SIZE"]["direction"] == "down"
    assert "DEPTH" not in facts  # 4 * 2 == 8: not a change


def test_diff_tuples_strings_dicts_are_changed():
    new = edit(TRAIN, ADAM_BETAS="(0.9, 0.95)", WINDOW_PATTERN='"SL"', PEAK_FLOPS='{"H100": 900e12}')
    facts = by_name(diff_constants(TRAIN, new))
    assert "ADAM_BETAS" not in facts  # split into its knobs: Adam's beta1 moved, beta2 did not
    beta1 = facts["ADAM_BETA1"]
    assert (beta1["old"], beta1["new"], beta1["direction"]) == (0.8, 0.9, "up")
    assert facts["WINDOW_PATTERN"]["old"] == "SSSL" and facts["WINDOW_PATTERN"]["new"] == "SL"
    assert facts["PEAK_FLOPS"]["direction"] == "changed"
    json.dumps(list(facts.values()))  # JSON-serialisable


def test_diff_added_removed_and_annotated():
    new = TRAIN.replace("WEIGHT_DECAY = 0.2\n", "") + "GRAD_CLIP: float = 1.0\n"
    facts = by_name(diff_constants(TRAIN, new))
    assert facts["WEIGHT_DECAY"] == {"name": "WEIGHT_DECAY", "old": 0.2, "new": None, "direction": "removed",
                                     "source": "diff"}
    assert facts["GRAD_CLIP"]["direction"] == "added" and facts["GRAD_CLIP"]["new"] == 1.0


def test_diff_ignores_non_literals_and_lowercase_names():
    new = edit(TRAIN, DEVICE='torch.device("cpu")') + "lr_scale = 3\nSCALE = DEPTH * 2\n"
    assert diff_constants(TRAIN, new) == []


def test_diff_does_not_evaluate_code_or_huge_powers():
    new = edit(TRAIN, DEPTH="__import__('os').system('echo pwned')", MATRIX_LR="10**10**10")
    assert diff_constants(TRAIN, new) == []  # both become opaque: ignored, nothing executed


def test_diff_unparseable_or_no_parent_gives_nothing():
    assert diff_constants(TRAIN, "DEPTH = (\n") == []
    assert diff_constants("def broken(:\n", TRAIN) == []
    assert diff_constants(None, TRAIN) == []


def test_diff_type_change_int_to_float_is_not_a_change_but_bool_is():
    assert diff_constants("A = 8\n", "A = 8.0\n") == []
    assert by_name(diff_constants("FLAG = True\n", "FLAG = False\n"))["FLAG"]["direction"] == "changed"


# --- text_changes: the patterns agents write ----------------------------------------------------

CASES = [
    ("matrix LR 0.04 → 0.05", "MATRIX_LR", 0.04, 0.05, "up"),
    # Parameter Golf's spellings of upstream's knobs: Muon's weight decay, momentum and Newton-Schulz steps
    ("MuonWD=0.04 mom=0.99 (9L baseline arch)", "WEIGHT_DECAY", None, 0.04, "changed"),
    ("muon_wd=0.02 scalar_lr=0.06", "WEIGHT_DECAY", None, 0.02, "changed"),
    ("MuonWD=0.04 mom=0.99 (9L baseline arch)", "MUON_MOMENTUM", None, 0.99, "changed"),
    ("mom_warmup=300", "MUON_MOMENTUM_WARMUP", None, 300, "changed"),
    ("9L Muon NS=3", "NS_STEPS", None, 3, "changed"),
    ("muon_backend_steps=3", "NS_STEPS", None, 3, "changed"),
    ("muon_wd_mlp=0.115", "MUON_WD_MLP", None, 0.115, "changed"),
    # a value glued to a knob's name the vocabulary knows
    ("seq2048 + warmdown300 on 1xA100", "WARMDOWN_RATIO", None, 300, "changed"),
    ("model_dim544 + warmdown200", "MODEL_DIM", None, 544, "changed"),
    ("MLP3x + BigramHash8192", "BIGRAM_EMBED", None, 8192, "added"),
    ("depth 8→12 same width 512-dim — 100.9M params", "DEPTH", 8, 12, "up"),
    ("fixed Muon momentum 0.95 (warmup helps)", "MUON_MOMENTUM_WARMUP", None, None, "removed"),
    ("constant Muon momentum 0.90", "MUON_MOMENTUM", None, 0.9, "changed"),
    ("Exp58: SwiGLU 4x — 1.454, 37.9M params", "MLP_RATIO", None, 4, "changed"),
    ("ReluSquared 6x MLP", "MLP_RATIO", None, 6, "changed"),
    # Parameter Golf's night: slashed and glued configurations, Muon's momentum after its name, iterations
    ("11L 3xMLP LeakyReLU(0.5)^2", "MLP_RATIO", None, 3, "changed"),
    ("7L/3x + MATRIX_LR=0.10", "DEPTH", None, 7, "changed"),
    ("9L/384d/3x (too narrow)", "MODEL_DIM", None, 384, "changed"),
    ("Lower LRs + Muon 0.99 + grad clip 0.3", "MUON_MOMENTUM", None, 0.99, "changed"),
    ("WARMDOWN_ITERS=30 (worse than 50)", "WARMDOWN_RATIO", None, 30, "changed"),
    ("LeakyReLU(0.3)^2 (0.5 still better)", "LEAKY_SLOPE", None, 0.3, "changed"),
    ("2KV + no skip (4KV still better)", "N_KV_HEAD", None, 2, "changed"),
    ("Late decay with 9e-4 peak LR", "LR", None, 9e-4, "changed"),
    # the weight decay's floor: the share of it left at the end (upstream decays it to zero)
    ("WD decay to 20% residual (new best!)", "WD_FINAL_FRAC", None, 0.2, "changed"),
    ("constant WD=0.05 (worse, linear decay better)", "WD_FINAL_FRAC", None, 1.0, "changed"),
    ("constant WD=0.05 (worse, linear decay better)", "WEIGHT_DECAY", None, 0.05, "changed"),
    ("with constant Muon weight decay throughout training", "WD_FINAL_FRAC", None, 1.0, "changed"),
    # a window pattern beside a window size: both ("SSSL" alone says nothing of the size)
    ("SSSL short_window=512 (quarter context)", "SHORT_WINDOW", None, 512, "changed"),
    ("SSSL short_window=512 (quarter context)", "WINDOW_PATTERN", None, "SSSL", "changed"),
    ("Cosine LR scheduler with warmup", "LR_SCHEDULE", None, "cosine", "changed"),
    ("lm_head Muon LR 0.02→0.01 (too low)", "UNEMBEDDING_LR", 0.02, 0.01, "down"),  # the head's LR, not Muon's
    ("MLR=0.034 with tying - worse", "MATRIX_LR", None, 0.034, "changed"),  # MLR: the matrix LR
    ("muon lr down 25%", "MATRIX_LR", None, None, "down"),  # relative: a factor of 0.75, not a value of 0.25
    ("matrix lr +20%", "MATRIX_LR", None, None, "up"),
    # plain-English comparatives an agent writes
    ("make the model deeper", "DEPTH", None, None, "up"),
    ("use a shallower network", "DEPTH", None, None, "down"),
    ("make the warmdown shorter", "WARMDOWN_RATIO", None, None, "down"),
    ("clip gradients at norm 1.0", "GRAD_CLIP", None, 1.0, "changed"),
    ("x0 beta1=0.90 - close but worse", "X0_LAMBDAS_ADAM_BETA1", None, 0.9, "changed"),  # the x0 group's own beta
    ("cosine learning rate schedule", "LR_SCHEDULE", None, "cosine", "changed"),
    ("MATRIX_LR 0.02->0.03 (too aggressive)", "MATRIX_LR", 0.02, 0.03, "up"),
    ("Muon LR 0.04 -> 0.02", "MATRIX_LR", 0.04, 0.02, "down"),
    ("bump the matrix learning rate from 0.04 up to 0.05", "MATRIX_LR", 0.04, 0.05, "up"),
    ("increase depth to 10", "DEPTH", None, 10, "up"),
    ("DEPTH 4->6", "DEPTH", 4, 6, "up"),
    ("reduce depth from 8 to 4", "DEPTH", 8, 4, "down"),
    ("cut layers 8 → 6", "DEPTH", 8, 6, "down"),
    ("n_layer=12", "DEPTH", None, 12, "changed"),
    ("lower weight decay to 0.1", "WEIGHT_DECAY", None, 0.1, "down"),
    ("lower matrix weight decay 0.2 -> 0.05 for Muon", "WEIGHT_DECAY", 0.2, 0.05, "down"),
    ("wd 0.2→0.1", "WEIGHT_DECAY", 0.2, 0.1, "down"),
    ("longer LR anneal, warmdown 0.5 -> 0.8", "WARMDOWN_RATIO", 0.5, 0.8, "up"),
    ("cooldown 40%", "WARMDOWN_RATIO", None, 0.4, "changed"),
    ("shorten warmdown to 30 percent", "WARMDOWN_RATIO", None, 0.3, "down"),
    ("add small LR warmup 0.0 -> 0.05", "WARMUP_RATIO", 0.0, 0.05, "up"),
    ("increase embedding LR 0.6 -> 0.9", "EMBEDDING_LR", 0.6, 0.9, "up"),
    ("double unembedding LR 0.004 -> 0.008", "UNEMBEDDING_LR", 0.004, 0.008, "up"),
    ("lower scalar lr to 0.3 after 3x MLP", "SCALAR_LR", None, 0.3, "down"),
    ("aspect ratio 64 -> 96 (wider)", "ASPECT_RATIO", 64, 96, "up"),
    ("model width 768", "MODEL_DIM", None, 768, "changed"),
    ("more heads, head_dim 128 -> 64", "HEAD_DIM", 128, 64, "down"),
    ("MLP expansion 4x -> 3x", "MLP_RATIO", 4, 3, "down"),
    ("shrink MLP to 2x", "MLP_RATIO", None, 2, "down"),
    ("Muon momentum 0.95 -> 0.9", "MUON_MOMENTUM", 0.95, 0.9, "down"),
    ("Newton-Schulz steps 5 -> 6", "NS_STEPS", 5, 6, "up"),
    ("2^17 → 2^16", "TOTAL_BATCH_SIZE", 131072, 65536, "down"),
    ("batch 16K->8K", "TOTAL_BATCH_SIZE", 16384, 8192, "down"),
    ("halve total batch size to 2^16", "TOTAL_BATCH_SIZE", None, 65536, "down"),
    ("device batch 128 -> 64", "DEVICE_BATCH_SIZE", 128, 64, "down"),
    ("seq len curriculum 512->2048", "SEQ_LEN_CURRICULUM", 512, 2048, "up"),
    ("sharpen sliding window to 1/4 context", "SHORT_WINDOW", None, 0.25, "down"),
    ("x0 lambda init 0.1 -> 0.2", "X0_LAMBDA_INIT", 0.1, 0.2, "up"),
    ("grad clip 1.0 (Muon already normalizes)", "GRAD_CLIP", None, 1.0, "changed"),
]


@pytest.mark.parametrize("text,name,old,new,direction", CASES)
def test_text_changes_numeric(text, name, old, new, direction):
    fact = by_name(text_changes(text))[name]
    assert (fact["old"], fact["new"], fact["direction"], fact["source"]) == (old, new, direction, "text")


@pytest.mark.parametrize("text,factor,direction,name", [
    ("halve batch size", 0.5, "down", "TOTAL_BATCH_SIZE"),
    ("double the LR", 2.0, "up", "LR"),
    ("decrease LR by 20%", 0.8, "down", "LR"),
    ("half batch", 0.5, "down", "TOTAL_BATCH_SIZE"),  # a multiple before the knob, not its value
    ("quarter batch", 0.25, "down", "TOTAL_BATCH_SIZE"),
    ("2x batch", 2, "up", "TOTAL_BATCH_SIZE"),
    ("LR x0.25", 0.25, "down", "LR"),
])
def test_text_changes_ratios(text, factor, direction, name):
    fact = by_name(text_changes(text))[name]
    assert fact["direction"] == direction and fact["factor"] == pytest.approx(factor)
    assert fact["old"] is None and fact["new"] is None


def test_a_multiple_before_the_mlp_is_its_ratio():
    assert by_name(text_changes("4x MLP"))["MLP_RATIO"]["new"] == 4


def test_shared_verb_and_head_noun_across_and():
    facts = by_name(text_changes("halve device and total batch"))
    assert facts["DEVICE_BATCH_SIZE"]["direction"] == facts["TOTAL_BATCH_SIZE"]["direction"] == "down"


@pytest.mark.parametrize("text,old,new", [
    ("SwiGLU instead of ReLU²", "relu2", "swiglu"),
    ("ReLU^2 -> SiLU", "relu2", "silu"),
    ("MLP activation ReLU^2 -> SiLU", "relu2", "silu"),
    ("SwiGLU-style gated MLP instead of plain SiLU", "silu", "swiglu"),
    ("replace squared ReLU with GELU in the MLP", "relu2", "gelu"),
    ("swap relu2 for geglu", "relu2", "geglu"),
    ("exp1: SwiGLU MLP (worse than ReLU² at small scale)", None, "swiglu"),
    ("Exp111: ReluSquared gating -- worse", None, "reglu"),  # the activation inside a gate: a gated MLP
    ("GELU-gated MLP", None, "geglu"),
    ("11L 3xMLP LeakyReLU(0.5)^2", None, "leaky_relu2"),
])
def test_text_changes_activation(text, old, new):
    fact = by_name(text_changes(text))["ACTIVATION"]
    assert (fact["old"], fact["new"], fact["direction"]) == (old, new, "changed")


@pytest.mark.parametrize("text,name,direction", [
    ("remove logit softcap (15*tanh(logits/15))", "SOFTCAP", "removed"),
    ("turn off the logit soft-cap", "SOFTCAP", "removed"),
    ("remove value embeds, use x0", "VALUE_EMBEDS", "removed"),
    ("exp17: remove dead VE (no benefit)", "VALUE_EMBEDS", "removed"),
    ("enable QK norm", "QK_NORM", "added"),
    ("weight tying (loss stuck, conflicting LR needs)", "WEIGHT_TYING", "added"),
])
def test_text_changes_components(text, name, direction):
    assert by_name(text_changes(text))[name]["direction"] == direction


@pytest.mark.parametrize("text,new", [
    ("all-long attention windows (simplification, no sliding window)", "L"),
    ("SL pattern (2 attn layers, speed loss > quality gain)", "SL"),
    ("window pattern SSSL -> SSLL", "SSLL"),
    ("set WINDOW_PATTERN to L", "L"),
])
def test_text_changes_window_pattern(text, new):
    assert by_name(text_changes(text))["WINDOW_PATTERN"]["new"] == new


# Knobs the vocabulary does not know, written the way agents name them: each is a knob of its own,
# named after itself, moved the way its verb or values say.
UNKNOWN_KNOBS = [
    ("Increase grad_accum_steps to 16; still killed with exit 137", "GRAD_ACCUM_STEPS", None, 16, "up"),
    ("Increase INT8_KEEP_FLOAT_MAX_NUMEL to 131072", "INT8_KEEP_FLOAT_MAX_NUMEL", None, 131072, "up"),
    ("Halve val_batch_size to 262144", "VAL_BATCH_SIZE", None, 262144, "down"),
    ("bump ROUTER_TEMP up to 1.5", "ROUTER_TEMP", None, 1.5, "up"),
    ("lower smear_gate_init to 0.5", "SMEAR_GATE_INIT", None, 0.5, "down"),
    ("increase attn_temperature", "ATTN_TEMPERATURE", None, None, "up"),
    ("A/B with MUON_NS_STEPS=0 at same config", "MUON_NS_STEPS", None, 0, "changed"),
    ("DEPTH=4 AR=128: n_embd went 384->512", "ASPECT_RATIO", None, 128, "changed"),
    ("LZMA compression+7200s wallclock", "TIME_BUDGET", None, 7200, "changed"),
    ("increase Adam β2 to 0.98", "ADAM_BETA2", None, 0.98, "up"),
    ("ε 1e-10 → 1e-9", "ADAM_EPS", 1e-10, 1e-9, "up"),
    ("EMA decay 0.997 -> 0.996", "EMA_DECAY", 0.997, 0.996, "down"),
    ("shorter window (256)", "SHORT_WINDOW", None, 256, "down"),
    ("tighter logit softcap of 12", "SOFTCAP_VALUE", None, 12, "down"),
    ("emb lr 0.8", "EMBEDDING_LR", None, 0.8, "changed"),
    ("unemb lr 0.008", "UNEMBEDDING_LR", None, 0.008, "changed"),
    ("rope 100k", "ROPE_BASE", None, 100000, "changed"),
    ("num_kv_heads 4 -> 2", "N_KV_HEAD", 4, 2, "down"),
    ("num_layers 8 -> 10", "DEPTH", 8, 10, "up"),
    ("undo the depth increase", "DEPTH", None, None, "down"),
    ("bigram hash 4096 -> 8192 buckets", "BIGRAM_EMBED", 4096, 8192, "up"),
    ("partial RoPE 16/64 dims", "PARTIAL_ROPE", None, 0.25, "added"),
    ("10L 512d", "MODEL_DIM", None, 512, "changed"),
    ("vocab 8192 -> 16384", "VOCAB_SIZE", 8192, 16384, "up"),
    ("eval tokens 2^20 -> 2^21", "EVAL_TOKENS", 2**20, 2**21, "up"),
    ("context 1024 -> 2048", "SEQ_LEN", 1024, 2048, "up"),
    ("tokens per step 2^19 -> 2^18", "TOTAL_BATCH_SIZE", 2**19, 2**18, "down"),
    ("restore value embeddings", "VALUE_EMBEDS", None, None, "added"),
    ("label smoothing 0.1 (way too aggressive)", "LABEL_SMOOTHING", None, 0.1, "added"),
    ("grad clip max_norm=5.0 (overhead not worth it)", "GRAD_CLIP", None, 5.0, "changed"),
    ("gradient norm clipping max_norm=1.0", "GRAD_CLIP", None, 1.0, "changed"),
    ("ns_steps=6 (5 still better)", "NS_STEPS", 5, 6, "up"),
    ("emb init std=0.5 (0.6 still better)", "EMBEDDING_INIT", 0.6, 0.5, "down"),
    ("x0_lambdas=0.15 (too high)", "X0_LAMBDA_INIT", None, 0.15, "changed"),
    ("resid_lambdas=0.90 for depth=5 model", "RESID_LAMBDA_INIT", None, 0.9, "changed"),
    ("x0_params LR=0.5", "X0_LAMBDAS_LR", None, 0.5, "changed"),
    ("resid_params Adam beta1 0.8 -> 0.9", "RESID_LAMBDAS_ADAM_BETA1", 0.8, 0.9, "up"),
    ("WD warmup 10% (worse)", "WEIGHT_DECAY_WARMUP", None, 0.1, "changed"),
    ("reduce compile warmup from 10 to 5 steps", "COMPILE_WARMUP", 10, 5, "down"),
    ("scaled-down QK init 0.7x", "QK_INIT", None, 0.7, "down"),
    ("embedding_std=0.7 (0.6 still better)", "EMBEDDING_INIT", 0.6, 0.7, "up"),
    ("emb_std=0.5", "EMBEDDING_INIT", None, 0.5, "changed"),
    ("lm_head_std=0.002", "LM_HEAD_INIT", None, 0.002, "changed"),
    ("init std for the embeddings 1.0 -> 0.5", "EMBEDDING_INIT", 1.0, 0.5, "down"),
    ("Adam (0.48,0.97)", "ADAM_BETA2", None, 0.97, "changed"),
    ("lm_head Adam (0.9, 0.95)", "LM_HEAD_ADAM_BETA1", None, 0.9, "changed"),
    ("8 heads at dim 64", "HEAD_DIM", None, 64, "changed"),
    ("8 heads x 64d", "HEAD_DIM", None, 64, "changed"),
    ("wider model depth=5 dim=640", "MODEL_DIM", None, 640, "changed"),
]


@pytest.mark.parametrize("text,name,old,new,direction", UNKNOWN_KNOBS)
def test_identifiers_and_spellings_the_vocabulary_lacks(text, name, old, new, direction):
    fact = by_name(text_changes(text))[name]
    assert (fact["old"], fact["new"], fact["direction"]) == (old, new, direction)


def test_names_that_are_no_knob_moves():
    """Attributes, calls and reported metrics are not knobs; a verb whose object ended before a knob's
    name does not move it; a kept setting names no change."""
    assert text_changes("Keep tok_emb.weight in float16 during quantization") == []
    assert text_changes("call apply_rotary_emb(x) twice") == []
    assert [f["name"] for f in text_changes("improved val_bpb 1.23 -> 1.22 by raising matrix lr")] == ["MATRIX_LR"]
    assert text_changes("add bias to linear layers") == []
    assert text_changes("remove bias from all layers") == []
    assert [f["name"] for f in text_changes("add batch norm after attention")] == ["BATCH_NORM"]
    assert by_name(text_changes("VE off"))["VALUE_EMBEDS"]["direction"] == "removed"
    assert by_name(text_changes("qk-norm on"))["QK_NORM"]["direction"] == "added"
    assert by_name(text_changes("untie embeddings"))["WEIGHT_TYING"]["direction"] == "removed"
    assert "MAX_NORM" not in by_name(text_changes("grad clip max_norm=1.0"))  # the clip's own parameter
    # a value "is better" without "still" may be another candidate (a paired run's), not the start
    assert by_name(text_changes("MATRIX_LR=0.04 GPU0 (0.05 is better)"))["MATRIX_LR"]["old"] is None


def test_compensating_moves_and_means_are_incidental():
    """A move made to hold something else fixed, or as the means of another, is marked incidental
    (the guard does not count a failure against it); alone, it is the change itself."""
    facts = by_name(text_changes("DEPTH 8→10, ASPECT_RATIO 64→52 to keep width"))
    assert not facts["DEPTH"].get("incidental") and facts["ASPECT_RATIO"]["incidental"]
    facts = by_name(text_changes("more heads from 2 to 4 by reducing HEAD_DIM to 64 and raising ASPECT_RATIO to 96"))
    assert not facts["N_HEAD"].get("incidental") and facts["HEAD_DIM"]["incidental"]
    assert facts["ASPECT_RATIO"]["incidental"]
    assert "incidental" not in text_changes("reduce HEAD_DIM to 64 to keep the width")[0]
    assert not any(f.get("incidental") for f in text_changes("lower LR and add warmup to keep training stable"))
    facts = by_name(text_changes("increase batch size to 2^20 and lr x1.4 to compensate"))
    assert not facts["TOTAL_BATCH_SIZE"].get("incidental") and facts["LR"]["incidental"]


@pytest.mark.parametrize("text,name", [
    ("raise the learning rate for the embeddings to 0.8", "EMBEDDING_LR"),
    ("Adam learning rate for embeddings 0.6 -> 0.8", "EMBEDDING_LR"),
    ("lower the lr of the lm head to 0.002", "UNEMBEDDING_LR"),
    ("raise LR for scalars to 0.8", "SCALAR_LR"),
    ("Adam's epsilon 1e-10 -> 1e-8", "ADAM_EPS"),
    ("increase Muon final momentum from 0.95 to 0.98", "MUON_MOMENTUM"),
    ("Lower Muon peak momentum from 0.97→0.95", "MUON_MOMENTUM"),
])
def test_a_learning_rate_for_a_group_is_the_group_s_and_an_optimizer_owning_a_knob_is_no_switch(text, name):
    assert [f["name"] for f in text_changes(text)] == [name]


def test_a_component_s_optimizer_is_its_own_not_the_model_s():
    """Test-time training runs its own optimizer: "TTT SGD" and its momentum are TTT's knobs, so a kept
    TTT row does not make SGD the model's optimizer (and "Muon" after it a switch back). An optimizer
    named in passing is no switch at all."""
    facts = by_name(text_changes("Switch TTT optimizer from SGD to AdamW"))
    assert list(facts) == ["TTT_OPTIMIZER"] and (facts["TTT_OPTIMIZER"]["old"], facts["TTT_OPTIMIZER"]["new"]) == (
        "sgd", "adamw")
    facts = by_name(text_changes("Increase TTT SGD momentum from 0.9 to 0.95"))
    assert facts["TTT_MOMENTUM"]["direction"] == "up" and "MUON_MOMENTUM" not in facts and "OPTIMIZER" not in facts
    assert list(by_name(text_changes("TTT inner SGD learning rate 0.005 -> 0.01"))) == ["TTT_LR", "TTT_OPTIMIZER"]
    assert text_changes("Set batch_seqs=1 so each chunk runs ~6 SGD steps instead of ~3")[0]["name"] == "BATCH_SEQS"
    assert [f["name"] for f in text_changes("Set batch_seqs=1 so each chunk runs ~6 SGD steps")] == ["BATCH_SEQS"]
    assert by_name(text_changes("switch to AdamW"))["OPTIMIZER"]["new"] == "adamw"
    assert by_name(text_changes("Lion optimizer - much worse"))["OPTIMIZER"]["new"] == "lion"


@pytest.mark.parametrize("text,names", [
    ("Since depth 10 worked, try wd 0.1", ["WEIGHT_DECAY"]),
    ("Given MATRIX_LR=0.05 is best, lower EMBEDDING_LR to 0.5", ["EMBEDDING_LR"]),
    ("Instead of raising LR, lower weight decay to 0.1", ["WEIGHT_DECAY"]),
    ("On top of the SwiGLU change, halve the batch", ["TOTAL_BATCH_SIZE"]),
    ("with value embeddings removed", ["VALUE_EMBEDS"]),  # nothing else: the clause is the change
])
def test_a_leading_clause_that_states_the_situation_is_no_change(text, names):
    assert [f["name"] for f in text_changes(text)] == names


def test_a_qualifier_after_a_bare_setting_is_the_change():
    """"with ..." qualifies a change stated before it; after a bare setting ("Muon", what is in place)
    it is the change."""
    assert by_name(text_changes("Muon with momentum 0.97"))["MUON_MOMENTUM"]["new"] == 0.97
    assert list(by_name(text_changes("raise matrix lr to 0.05 with Muon"))) == ["MATRIX_LR"]


def test_context_qualifiers_are_not_changes():
    facts = by_name(text_changes("remove logit cap after 3x MLP and scalar lr 0.3"))
    assert list(facts) == ["SOFTCAP"]
    facts = by_name(text_changes("lower matrix lr to 0.03 at batch 2^13"))
    assert list(facts) == ["MATRIX_LR"]
    assert list(by_name(text_changes("re-check depth 4 with Muon"))) == ["DEPTH"]


def test_revert_flips_the_move():
    fact = by_name(text_changes("revert matrix LR 0.04 -> 0.05"))["MATRIX_LR"]
    assert (fact["old"], fact["new"], fact["direction"]) == (0.05, 0.04, "down")


def test_outcome_notes_do_not_become_facts():
    facts = text_changes("exp12: DEPTH 10 (OOM at batch 128), val_bpb 0.998 → 1.004 — worse than baseline")
    assert [(f["name"], f["new"]) for f in facts] == [("DEPTH", 10)]
    assert text_changes("crashed: OOM with depth 16")[0]["new"] == 16


def test_no_facts_from_free_text_or_junk():
    assert text_changes("causal global context in a new mixer") == []
    assert [f["name"] for f in text_changes("causal global context in conv mixer")] == ["CONV_MIXER"]
    assert text_changes("add checkpoint saving; no logic change, re-run confirms noise floor") == []
    assert text_changes("Muon optimizer (Newton-Schulz orthogonalized momentum)")[0]["name"] == "OPTIMIZER"
    assert text_changes("") == [] and text_changes("((((") == [] and text_changes("→→ 0.1 ->") == []


def test_every_text_fact_is_json_and_one_per_knob():
    for text, *_ in CASES:
        facts = text_changes(text)
        json.dumps(facts)
        assert len({f["name"] for f in facts}) == len(facts)


# --- merge_changes ------------------------------------------------------------------------------


def test_merge_diff_wins_text_fills():
    diff = [{"name": "MATRIX_LR", "old": 0.04, "new": 0.05, "direction": "up", "source": "diff"}]
    text = text_changes("matrix LR to 0.06 and SwiGLU instead of ReLU²")
    merged = by_name(merge_changes(diff, text))
    assert merged["MATRIX_LR"]["new"] == 0.05 and merged["MATRIX_LR"]["source"] == "diff"
    assert merged["ACTIVATION"]["source"] == "text"
    assert merge_changes([], []) == []


# --- textnorm -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ("exp3: 5% warmup + warmdown 0.5->0.3 (slightly worse)", "5% warmup + warmdown 0.5->0.3"),
    ("exp5: MLP 6x->8x (near miss, +0.003)", "MLP 6x->8x"),
    ("depth 10 (worse)", "depth 10"),
    ("matrix LR 0.05, val_bpb 1.26→1.27", "matrix LR 0.05"),
    ("lower wd to 0.1 -0.01 bpb", "lower wd to 0.1"),
    ("increase depth to 16, crashed: OOM", "increase depth to 16"),
    ("SwiGLU — worse than ReLU² at this scale", "SwiGLU"),
    ("halve batch size, slightly better", "halve batch size"),
    ("grad clip 1.0 + LR=0.004 no improvement over LR=0.003", "grad clip 1.0 + LR=0.004"),  # no separator
    ("no improvement", "no improvement"),
    ("aspect ratio 64 -> 96 (wider)", "aspect ratio 64 -> 96 (wider)"),
    ("halve total batch size to 2^14 (device batch 8)", "halve total batch size to 2^14 (device batch 8)"),
    ("remove logit softcap (15*tanh(logits/15))", "remove logit softcap (15*tanh(logits/15))"),
    ("[exp 7] lower LR", "lower LR"),
    ("WINDOW_PATTERN SSSS - all-short worse than SLSL", "WINDOW_PATTERN SSSS"),  # a dash: a few words first
    ("depth 8 - with SwiGLU", "depth 8 - with SwiGLU"),
    # a dash that opens a report of the metric: every number after it is a measurement
    ("weight_decay 0.2->0.4 — val_bpb 2.014->1.960, subgroup gap 0.69->0.56, adversarial gap up 1.55->1.67",
     "weight_decay 0.2->0.4"),
    ("SwiGLU MLP — val_bpb regressed 1.832->2.101, architecture change needs LR re-tuning", "SwiGLU MLP"),
    # a verdict that says what is good is an outcome too, not a second change
    ("constant Muon momentum=0.95 (warmup ramp 0.85→0.95 is beneficial)", "constant Muon momentum=0.95"),
    ("WARMUP_RATIO=0.01 (any warmup is catastrophic; 0.0 confirmed)", "WARMUP_RATIO=0.01"),
])
def test_strip_outcome_notes(text, expected):
    assert strip_outcome_notes(text) == expected


def test_tokens_apply_concept_aliases_and_unicode():
    assert tokens("ReLU² MLP") == tokens("squared relu mlp") == tokens("relu^2 MLP") == ["relu2", "mlp"]
    assert tokens("learning rate") == tokens("LR") == ["lr"]
    assert tokens("cooldown") == tokens("warm-down") == ["warmdown"]
    assert tokens("weight decay") == tokens("wd") == ["wd"]
    assert tokens("rotary embeddings") == tokens("RoPE") == ["rope"]
    assert tokens("value embeddings") == tokens("VE") == ["ve"]
    assert tokens("logit soft-cap") == tokens("softcap") == ["softcap"]
    assert tokens("sliding window") == tokens("SSSL") == ["window"]
    assert tokens("QK-norm") == ["qknorm"]
    assert tokens("increase the batch size") == ["up", "batch"]
    assert tokens("Größere Modelle, größer") == ["größer", "modell", "größer"]  # unicode letters kept
    assert tokens("") == [] and tokens("0.04 -> 0.05 2^19") == []


def test_baseline_and_followup_cues():
    assert is_baseline("baseline (AdamW, default config)") and is_baseline("Mac Mini baseline")
    assert not is_baseline("depth 10")
    assert names_followup("increase LR further") and not names_followup("increase LR")


# --- code changes anywhere in train.py -----------------------------------------------------------

REPO_TRAIN = (Path(__file__).resolve().parent.parent / "train.py").read_text(encoding="utf-8")


def test_profile_branch_edits_take_the_active_profiles_value():
    edited = REPO_TRAIN.replace("    DEPTH = 4\n", "    DEPTH = 3\n    WINDOW_PATTERN = \"L\"\n")
    cpu = by_name(diff_constants(REPO_TRAIN, edited, profile="cpu"))
    assert (cpu["DEPTH"]["old"], cpu["DEPTH"]["new"], cpu["DEPTH"]["direction"]) == (4, 3, "down")
    assert (cpu["WINDOW_PATTERN"]["old"], cpu["WINDOW_PATTERN"]["new"]) == ("SSSL", "L")
    assert diff_constants(REPO_TRAIN, edited, profile="gpu") == []  # the GPU profile never runs that block


def test_literals_inside_classes_and_functions_are_named_by_the_vocabulary():
    edited = (REPO_TRAIN.replace("4 * config.n_embd", "3 * config.n_embd").replace("softcap = 15.0", "softcap = 30.0")
              .replace("ve_gate_channels = 32", "ve_gate_channels = 64"))
    facts = by_name(diff_constants(REPO_TRAIN, edited))
    assert (facts["MLP_RATIO"]["old"], facts["MLP_RATIO"]["new"], facts["MLP_RATIO"]["direction"]) == (4, 3, "down")
    assert facts["SOFTCAP_VALUE"]["direction"] == "up" and facts["VE_GATE_CHANNELS"]["new"] == 64
    assert "MODEL_DIM" not in facts and "DEPTH" not in facts
    merged = by_name(merge_changes(list(facts.values()), text_changes("MLP hidden width 4x -> 3x")))
    assert set(merged) == set(facts)  # the text's reading of the same change adds nothing


def test_split_tuples_and_unknown_literals_are_readable():
    edited = REPO_TRAIN.replace("ADAM_BETAS = (0.8, 0.95)", "ADAM_BETAS = (0.9, 0.95)")
    facts = by_name(diff_constants(REPO_TRAIN, edited))
    assert list(facts) == ["ADAM_BETA1"] and facts["ADAM_BETA1"]["direction"] == "up"
    src = "class Block:\n    def __init__(self):\n        self.scale = 0.5\n"
    facts = diff_constants(src, src.replace("0.5", "0.25"))
    assert [(f["name"], f["old"], f["new"]) for f in facts] == [("Block.scale", 0.5, 0.25)]


def test_train_defaults_read_the_profile():
    from memorylab_core.novelty.changes import train_defaults
    gpu, cpu = train_defaults(REPO_TRAIN, "gpu"), train_defaults(REPO_TRAIN, "cpu")
    assert (gpu["DEPTH"], cpu["DEPTH"], gpu["MLP_RATIO"], gpu["SOFTCAP_VALUE"]) == (8, 4, 4, 15.0)
    assert gpu["ADAM_BETA1"] == 0.8 and cpu["TOTAL_BATCH_SIZE"] == 2**11


def test_counts_of_other_things_are_not_knob_values():
    assert text_changes("layers trained 1525 steps") == []
    assert [f["name"] for f in text_changes("depth 12, training completed 1525 steps")] == ["DEPTH"]


def test_long_descriptions_stay_linear():
    import time
    text = "lower matrix lr to 0.03 and " + "x" * 50_000 + " (worse) " + "depth 4 -> 6 " * 3000
    start = time.perf_counter()
    text_changes(text)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("text,moves", [
    ("lower embedding, matrix, and scalar learning rates on depth-3 checkpoint",
     [("EMBEDDING_LR", "down"), ("MATRIX_LR", "down"), ("SCALAR_LR", "down")]),
    ("raise the matrix and scalar LRs", [("MATRIX_LR", "up"), ("SCALAR_LR", "up")]),
    ("increase depth, width and heads", [("DEPTH", "up"), ("MODEL_DIM", "up"), ("N_HEAD", "up")]),
    ("lower EMBEDDING_LR, MATRIX_LR, and SCALAR_LR", [("EMBEDDING_LR", "down"), ("MATRIX_LR", "down"),
                                                     ("SCALAR_LR", "down")]),
    ("halve device and total batch", [("DEVICE_BATCH_SIZE", "down"), ("TOTAL_BATCH_SIZE", "down")]),
    # not lists: clauses with verbs or values of their own keep their own moves
    ("raise matrix lr on depth-3, and lower wd", [("MATRIX_LR", "up"), ("WEIGHT_DECAY", "down")]),
    ("lower lr, wd 0.1", [("LR", "down"), ("WEIGHT_DECAY", "changed")]),
    ("raise matrix LR to 0.05, depth 6, and width 512", [("MATRIX_LR", "up"), ("DEPTH", "changed"),
                                                         ("MODEL_DIM", "changed")]),
])
def test_a_coordinated_list_is_one_move_per_item_with_the_shared_verb_and_noun(text, moves):
    """"lower A, B, and C <noun>" lowers all three: the list's commas are no clause breaks, the verb
    reaches every item and the head noun ("learning rates") is each item's."""
    assert [(f["name"], f["direction"]) for f in text_changes(text)] == moves


def test_a_hyphen_after_a_knob_s_name_is_no_minus_sign():
    assert [(f["name"], f["new"]) for f in text_changes("try depth-3")] == [("DEPTH", 3)]


@pytest.mark.parametrize("text,names", [
    ("set WARMDOWN_RATIO from 0.5 to 0.4 while keeping no warmup and zero final LR", ["WARMDOWN_RATIO"]),
    ("set warmdown to 0.4, keeping no warmup and zero final LR", ["WARMDOWN_RATIO"]),
    ("keeping no warmup, set warmdown to 0.4", ["WARMDOWN_RATIO"]),
    ("warmdown 0.4 keeping warmup 0", ["WARMDOWN_RATIO"]),
    ("raise matrix LR but keep depth 8", ["MATRIX_LR"]),
    ("raise matrix LR, holding weight decay at 0.1", ["MATRIX_LR"]),
    ("raise matrix LR; depth stays 8", ["MATRIX_LR"]),
    ("keep depth 8 and raise matrix LR", ["MATRIX_LR"]),
    ("raise matrix LR with warmup unchanged", ["MATRIX_LR"]),
    ("depth 8 unchanged", []),
    ("keep the cosine warmdown shape but lower min_lr from 0.02 to 0.004", ["MIN_LR"]),
    ("re-apply exp_003's kept EMA decay 0.9965 -> 0.998 on top of exp_088", ["EMA_DECAY"]),
    ("bring back the kept EMA decay 0.9965 -> 0.998", ["EMA_DECAY"]),
    ("revive orphaned exp_003 keep on current best lineage: EMA_DECAY 0.9965 to 0.998", ["EMA_DECAY"]),
])
def test_what_a_description_keeps_is_context_not_a_change(text, names):
    """"keeping X", "hold X at", "X stays", "X unchanged" say what did not move: no move of X, and no move
    of the items coordinated after it ("keeping no warmup and zero final LR"); the change before stays.
    After "keep X but", the rest is the change; "exp_003's kept X" / "the kept X" names an earlier keep."""
    assert [f["name"] for f in text_changes(text)] == names


def test_more_or_less_of_a_manner_is_no_length_of_a_schedule_phase():
    """"a less aggressive cooldown" may be longer or gentler: no known direction of WARMDOWN_RATIO; of a size
    ("less aggressive weight decay") it is the size."""
    assert [f["name"] for f in text_changes("add warmup and less aggressive cooldown")] == ["WARMUP_RATIO"]
    assert [(f["name"], f["direction"]) for f in text_changes("less aggressive weight decay")] == [
        ("WEIGHT_DECAY", "down")]
    assert [(f["name"], f["direction"]) for f in text_changes("longer cooldown")] == [("WARMDOWN_RATIO", "up")]


@pytest.mark.parametrize("text,name,old,new,direction", [
    ("delay LR warmdown from 50% of run to final 20%", "WARMDOWN_RATIO", 0.5, 0.2, "down"),
    ("delay the warmdown further to the final 10%", "WARMDOWN_RATIO", None, 0.1, "down"),
    ("warmdown over the last 30% of training", "WARMDOWN_RATIO", None, 0.3, "changed"),
    ("DEPTH=2 batch=32 GPU0", "DEVICE_BATCH_SIZE", None, 32, "changed"),
    ("batch size 16 -> 8", "DEVICE_BATCH_SIZE", 16, 8, "down"),
    ("total batch 512", "TOTAL_BATCH_SIZE", None, 512, "changed"),
    ("batch 2^18", "TOTAL_BATCH_SIZE", None, 2**18, "changed"),
    ("aspect 128", "ASPECT_RATIO", None, 128, "changed"),
    ("two layer model", "DEPTH", None, 2, "changed"),
    ("4-layer net", "DEPTH", None, 4, "changed"),
    ("increase depth from 3 to 6 layers", "DEPTH", 3, 6, "up"),
    ("reduce depth 8 → 6 layers (faster)", "DEPTH", 8, 6, "down"),
    ("speed up MPS path but eval timed out with batch_size=1", "DEVICE_BATCH_SIZE", None, 1, "changed"),
])
def test_shares_of_the_run_batches_of_sequences_and_layer_counts(text, name, old, new, direction):
    """A share "of the run" / "the final N%" is the phase's ratio, and delaying a warmdown shortens it; a
    plain "batch" under 1024 counts sequences (the device batch), not tokens; "aspect 128" is the aspect
    ratio; "two layer model" the depth, and "depth from 3 to 6 layers" a move from 3; a verb in a clause
    before "but" is not the setting's ("speed up ... but ... batch_size=1")."""
    fact = by_name(text_changes(text))[name]
    assert (fact["old"], fact["new"], fact["direction"]) == (old, new, direction)


def test_glued_digits_split_only_from_a_knob_s_name():
    """"int8", "float16" are no knob with a value; "ema997" is a decay of 0.997, not an EMA of 997."""
    assert text_changes("int8 quant") == [] and text_changes("rtx3090 run") == []
    assert "EMA" not in by_name(text_changes("ema997 init01"))
    assert "MLP_RATIO" not in by_name(text_changes("gelu 2x slower"))  # a multiple of speed, not of the MLP


def test_the_model_a_change_is_made_in_is_no_change():
    """"... in the 5-layer 384-dim full-attention stack" names the model the change goes into: only the change
    is a fact ("tie token embedding and unembedding weights" is weight tying)."""
    assert [(f["name"], f["old"], f["new"]) for f in text_changes(
        "reduce FFN expansion from 5x to 4x in the 1/16 alternating local/global attention stack")] == [
        ("MLP_RATIO", 5, 4)]
    assert [f["name"] for f in text_changes(
        "tie token embedding and unembedding weights in the 5-layer 384-dim full-attention stack")] == ["WEIGHT_TYING"]


def test_a_layer_count_of_a_part_is_no_depth():
    assert "DEPTH" not in by_name(text_changes("2-layer MLP head")), text_changes("2-layer MLP head")


@pytest.mark.parametrize("text,old,new", [
    ("window pattern L->SL", "L", "SL"), ("window pattern SSSL to L", "SSSL", "L"),
    ("set WINDOW_PATTERN from 'L' to 'LS'", "L", "LS"), ("WINDOW_PATTERN=SL", None, "SL"),
])
def test_a_one_letter_window_pattern_beside_an_arrow_is_the_other_side(text, old, new):
    fact = by_name(text_changes(text))["WINDOW_PATTERN"]
    assert (fact["old"], fact["new"]) == (old, new)


def test_a_word_that_names_a_knob_with_the_head_of_another_is_that_knob():
    """"3x LR increase (matrix 0.001->0.003, scalar 0.01->0.03)": the items are the matrix and scalar LRs."""
    facts = by_name(text_changes("3x LR increase (matrix 0.001->0.003, scalar 0.01->0.03)"))
    assert (facts["MATRIX_LR"]["new"], facts["SCALAR_LR"]["new"]) == (0.003, 0.03)
    assert "ROUTER" in by_name(text_changes("router 0.1 -> 0.2 with lr 0.04"))


def test_a_comparative_of_one_dimension_does_not_move_another():
    """"wider two layer model": wider is no more layers; "shallower model depth 3" is the depth."""
    facts = by_name(text_changes("wider two layer model aspect 128"))
    assert (facts["DEPTH"]["direction"], facts["ASPECT_RATIO"]["new"]) == ("changed", 128)
    assert by_name(text_changes("shallower model depth 3"))["DEPTH"]["direction"] == "down"
    assert by_name(text_changes("wider MLP"))["MLP_RATIO"]["direction"] == "up"


@pytest.mark.parametrize("text,name,old,new", [
    ("increase x0_lambdas LR from 1.0 to 1.5", "X0_LAMBDAS_LR", 1.0, 1.5),
    ("increase x0_params Adam beta2 from 0.95 to 0.99", "X0_LAMBDAS_ADAM_BETA2", 0.95, 0.99),
    ("halve value embedding LR (0.8 -> 0.4)", "VALUE_EMBEDS_LR", 0.8, 0.4),
    ("lower Muon momentum init from 0.85 to 0.80", "MUON_MOMENTUM_START", 0.85, 0.8),  # the ramp's start value
    ("value embeddings normal init std=0.7", "VALUE_EMBEDS_INIT_SCALE", None, 0.7),
])
def test_a_group_setting_named_after_its_owner_is_the_owner_s_own_knob(text, name, old, new):
    """A learning rate, Adam beta / epsilon, weight decay or init named right after the knob or component
    that owns it (a word of manner may stand between) is that owner's setting: neither the model-wide
    setting nor the owner moves; a verb between ("depth higher lr") keeps them apart. Muon's momentum
    "init" is the vocabulary's knob for where its ramp starts, not an init scale."""
    assert list(by_name(text_changes("depth higher lr"))) == ["LR"]
    facts = by_name(text_changes(text))
    assert list(facts) == [name], facts
    assert (facts[name]["old"], facts[name]["new"]) == (old, new)


@pytest.mark.parametrize("text,expected", [
    ("add weight decay 0.01 to embeddings", {"EMBEDDING_WEIGHT_DECAY": 0.01}),
    ("WD=0.01 on embeddings", {"EMBEDDING_WEIGHT_DECAY": 0.01}),
    ("add small WD (0.01) to lm_head", {"LM_HEAD_WEIGHT_DECAY": 0.01}),
    ("use betas (0.9, 0.95) for resid_params", {"RESID_LAMBDAS_ADAM_BETA1": 0.9, "RESID_LAMBDAS_ADAM_BETA2": 0.95}),
    ("raise wd to 0.2", {"WEIGHT_DECAY": 0.2}),
])
def test_a_group_setting_named_before_its_owner_is_the_owner_s_own_knob(text, expected):
    """"weight decay 0.01 to embeddings", "betas (...) for resid_params": the group's setting, not the
    model-wide one (a failed global weight-decay cut says nothing about decaying the embeddings)."""
    assert {name: fact["new"] for name, fact in by_name(text_changes(text)).items()} == expected


def test_a_parenthesised_gloss_of_a_move_is_no_second_move():
    """"warmdown ratio 1.0 (pure cosine decay)": the aside says what the move amounts to; without a verb of
    its own it sets no schedule, so a later "cosine decay" is not already in place. Alone it is the change."""
    assert list(by_name(text_changes("warmdown ratio 1.0 (pure cosine decay)"))) == ["WARMDOWN_RATIO"]
    assert by_name(text_changes("(cosine decay)"))["LR_SCHEDULE"]["new"] == "cosine"
    assert by_name(text_changes("depth 8 (cosine schedule instead of linear)"))["LR_SCHEDULE"]["new"] == "cosine"


@pytest.mark.parametrize("text,width", [("depth=4 640-dim", 640), ("depth 5 640 dim", 640), ("64-dim heads", None),
                                        ("head dim 64", None)])
def test_a_number_of_dimensions_is_the_model_width(text, width):
    """"640-dim" is the model width (as "512d" is); "64-dim heads" is a head size, no width."""
    assert by_name(text_changes(text)).get("MODEL_DIM", {}).get("new") == width


@pytest.mark.parametrize("text,name,old,new", [
    ("HEAD_DIM 64 -> 32, four heads instead of two", "N_HEAD", 2, 4),
    ("use 4 heads instead of 2", "N_HEAD", 2, 4),
    ("depth 8 instead of 6", "DEPTH", 6, 8),
    ("matrix lr 0.05 rather than 0.04", "MATRIX_LR", 0.04, 0.05),
])
def test_a_value_instead_of_another_is_the_new_one(text, name, old, new):
    """"X instead of Y": X is the new value and Y the old, on either side of the knob's name (it once read
    "four heads instead of two" as N_HEAD set to 2)."""
    fact = by_name(text_changes(text))[name]
    assert (fact["old"], fact["new"], fact["direction"]) == (old, new, "up")


@pytest.mark.parametrize("text,expected", [
    ("notes on the run and LS", {}),                                   # a word, not a window pattern
    ("window pattern L->SL", {"WINDOW_PATTERN": ("L", "SL")}),
    ("switch to LS windows", {"WINDOW_PATTERN": (None, "LS")}),
    ("use SSSL pattern", {"WINDOW_PATTERN": (None, "SSSL")}),
    ("41ep + ls=0.15 on the base", {"LABEL_SMOOTHING": (None, 0.15)}),  # "ls" with a value is label smoothing
])
def test_a_two_letter_window_pattern_needs_its_context(text, expected):
    facts = {f["name"]: (f["old"], f["new"]) for f in text_changes(text) if f["name"] in ("WINDOW_PATTERN",
                                                                                         "LABEL_SMOOTHING")}
    assert facts == expected
