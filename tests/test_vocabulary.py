"""One test per vocabulary entry (its example phrase must read as that knob), plus the identity rules
the vocabulary exists for: a knob belongs to its group (Muon vs Adam, VE gate vs VE tables, init vs lr)."""

from __future__ import annotations

import random
import re

import pytest

from memorylab_core.ledger.model import Run
from memorylab_core.novelty.changes import text_changes
from memorylab_core.novelty.guard import NoveltyIndex, Proposal
from memorylab_core.novelty.lookup import Alternation, first_chars
from memorylab_core.novelty.vocabulary import KNOBS, TECHNIQUE_VALUES


def by_name(facts):
    return {f["name"]: f for f in facts}


@pytest.mark.parametrize("name,group,kind,pattern,example,direction", KNOBS, ids=[k[0] for k in KNOBS])
def test_knob_entry(name, group, kind, pattern, example, direction):
    facts = by_name(text_changes(example))
    assert name in facts, (example, facts)
    assert facts[name]["direction"] == direction


@pytest.mark.parametrize("name,value,pattern,example", TECHNIQUE_VALUES,
                         ids=[f"{t[0]}={t[1]}" for t in TECHNIQUE_VALUES])
def test_technique_value_entry(name, value, pattern, example):
    facts = by_name(text_changes(example))
    assert name in facts and facts[name]["new"] == value, (example, facts)


def verdict(rows, description):
    index, runs = NoveltyIndex(), []
    for i, (text, status) in enumerate(rows):
        run = Run(index=i, offset=0, run_id=f"r{i}", timestamp=None, ts=None, status=status, val_bpb=1.0,
                  memory_gb=None, description=text, source="import:x.tsv")
        runs.append(run)
        index.add(run)
    return index.classify(Proposal(description), runs)


BASE = ("baseline", "keep")
IDENTITY = [
    # different knobs are not conflated (false blocks on unseen ledgers)
    ([BASE, ("adam beta2 0.95 -> 0.99", "discard")], "muon beta2 0.95 -> 0.99", "novel"),
    ([BASE, ("remove value embeddings", "discard")], "ve gate channels 32 -> 64", "novel"),
    ([BASE, ("remove value embeddings", "discard")], "remove the ve gate", "novel"),
    ([BASE, ("scalar lr 0.5 -> 0.8", "discard")], "x0 lambda init 0.1 -> 0.2", "novel"),
    ([BASE, ("embedding lr 0.6 -> 0.9", "discard")], "embedding init std 1.0 -> 2.0", "novel"),
    ([BASE, ("remove logit softcap", "discard")], "softcap 15 -> 30", "novel"),
    ([BASE, ("warmdown 0.5 -> 0.7", "discard")], "warmdown exponent 1 -> 2", "novel"),
    ([BASE, ("weight decay 0.2 -> 0.3", "discard")], "adam eps 1e-10 -> 1e-8", "novel"),
    ([BASE, ("increase warmup ratio to 0.05", "discard")], "muon momentum warmup steps 300 -> 150", "novel"),
    # the same technique written differently, or "fixed", is the same idea
    ([BASE, ("drop the logit cap", "discard")], "no soft-capping", "repeat_failure"),
    ([BASE, ("cosine warmdown", "discard")], "cosine decay", "repeat_failure"),
    ([BASE, ("cosine warmdown", "discard")], "linear decay to zero", "novel"),
    ([BASE, ("EMA of weights", "discard")], "EMA of weights now with the dtype fixed", "repeat_failure"),
    ([BASE, ("grouped-query attention", "discard")], "GQA with 2 kv heads", "repeat_failure"),
    ([BASE, ("zero-init projections", "crash")], "zero init the output projections", "repeat_failure"),
    ([BASE, ("mixed precision", "discard")], "autocast mixed precision again", "repeat_failure"),
    ([BASE, ("newton-schulz steps 5 -> 4", "discard")], "fewer orthogonalisation steps", "repeat_failure"),
    ([BASE, ("newton-schulz steps 5 -> 4", "discard")], "more orthogonalization steps", "novel"),
    # operating point: a bare value has the direction from the current value
    ([BASE, ("SCALAR_LR 0.9", "discard")], "SCALAR_LR 0.7", "repeat_failure"),
    ([BASE, ("SCALAR_LR 0.9", "discard")], "SCALAR_LR 0.3", "novel"),
    ([BASE, ("WARMDOWN_RATIO=0.7", "discard")], "WARMDOWN_RATIO=0.6", "repeat_failure"),
    ([BASE, ("beta1=0.9", "discard")], "beta1=0.85", "repeat_failure"),
    ([BASE, ("beta1=0.9", "discard")], "beta1=0.7", "novel"),
    # a first move of a knob inside a kept technique builds on it
    ([BASE, ("conv mixer replaces 3/4 attention", "keep")], "conv kernel 15->7", "incremental_followup"),
    # follow-ups of a kept direction even when an older move failed before the keep
    ([BASE, ("SCALAR_LR 0.9", "discard"), ("SCALAR_LR 0.4", "keep"), ("SCALAR_LR 0.3", "keep")],
     "SCALAR_LR 0.6", "incremental_followup"),
    # Muon's learning rate has many names; "cooldown" is the warmdown (issue 25)
    ([BASE, ("raise muon step size", "discard")], "increase the matrix learning rate", "repeat_failure"),
    ([BASE, ("matrix lr 0.04 -> 0.05", "discard")],
     "bigger step size for the orthogonalized optimizer on the block weight matrices: 0.04 to 0.055", "repeat_failure"),
    ([BASE, ("shorten cooldown", "discard")], "reduce warmdown ratio", "repeat_failure"),
    # NorMuon is a Muon variant (not a learning rate), HybridNorm a norm placement (not the MLP's size)
    ([BASE, ("lower the learning rate to 0.2", "discard")], "NorMuon with lr 0.2", "novel"),
    ([BASE, ("shrink MLP to 3x", "discard")], "HybridNorm: post-norm on the MLP", "novel"),
    ([BASE, ("NorMuon", "discard")], "NorMuon with variance reduction", "repeat_failure"),
    # naming what is in place is context: Muon when Muon is the optimizer, a kept MoE
    ([BASE, ("Muon optimizer with 3 NS steps", "discard")], "Muon: disable nesterov", "novel"),
    ([BASE, ("MoE 4 experts", "keep")], "MoE HEAD_DIM=64", "novel"),
    ([BASE, ("MoE 4 experts", "keep")], "MoE top-1 routing", "incremental_followup"),
    ([BASE, ("MoE 4 experts", "keep"), ("MoE top_k=2", "keep")], "MoE top_k=2, new best", "duplicate_run"),
    # a purpose clause says why, not what changed; a baseline word elsewhere is not a baseline
    ([BASE, ("lower final lr frac to 0.0 to raise the learning rate", "discard")], "raise lr", "novel"),
    ([BASE, ("increase depth 8 -> 10", "discard")], "increase depth 8 -> 12 to recover capacity lost in baseline",
     "repeat_failure"),
    # shorthand: 6L 768w, Adam's betas as a tuple, an ordered window pattern
    ([BASE, ("4L 768w shallower wider model", "discard")], "6L 768w", "repeat_failure"),
    ([BASE, ("beta1 0.8 -> 0.9", "discard")], "ADAM_BETAS from (0.8, 0.95) to (0.9, 0.98)", "repeat_failure"),
    ([BASE, ('window pattern "SSSL" -> "L"', "keep")], 'window pattern "L" -> "SLLL"', "incremental_followup"),
    # an identifier is one name (leaky_relu_slope is not the activation); seconds are a time budget's unit
    ([BASE, ("swap ReLU^2 for ReLU", "discard")], "leaky_relu_slope 0.5 -> 0.3", "novel"),
    ([BASE, ("wallclock 1200s -> 1800s", "discard")], "muon_wd 0.04 -> 0.02 + wallclock 1800s", "repeat_failure"),
    ([BASE, ("LZMA compression test", "discard")], "LZMA + 3600s budget", "repeat_failure"),
    # a change named beside "same config" is a change, not a re-run
    ([BASE, ("NS steps 5 -> 3", "discard")], "NS_STEPS=0, same config otherwise", "repeat_failure"),
]


@pytest.mark.parametrize("rows,description,expected", IDENTITY, ids=[r[1] for r in IDENTITY])
def test_identity_and_operating_point(rows, description, expected):
    result = verdict(rows, description)
    assert result.classification == expected, result.reasons
    if expected != "novel":
        assert result.matches, "a verdict names the runs it rests on"


def test_upstream_defaults_match_this_repos_gpu_profile():
    from pathlib import Path

    from memorylab_core.novelty.changes import train_defaults
    from memorylab_core.novelty.vocabulary import UPSTREAM_DEFAULTS
    ours = train_defaults((Path(__file__).resolve().parent.parent / "train.py").read_text(encoding="utf-8"), "gpu")
    shared = set(ours) & set(UPSTREAM_DEFAULTS)
    assert len(shared) >= 15
    assert {k: ours[k] for k in shared} == {k: UPSTREAM_DEFAULTS[k] for k in shared}


def test_native_runs_can_start_from_their_own_train_py():
    from memorylab_core.novelty.changes import train_defaults
    src = "DEPTH = 8\nif PROFILE == 'cpu':\n    DEPTH = 4\n"
    index = NoveltyIndex()
    run = Run(index=0, offset=0, run_id="r0", timestamp=None, ts=None, status="keep", val_bpb=1.0, memory_gb=None,
              description="first run", extra={"arena": "cpu-2core", "train_defaults": train_defaults(src, "cpu")})
    index.add(run)
    assert index.operating_point("cpu-2core")["DEPTH"] == 4
    result = index.classify(Proposal("depth 6", context="cpu-2core"), [run])
    assert result.classification == "novel" and "DEPTH up 4→6" in result.reasons[0]


# --- the vocabulary's alternations (novelty/lookup.py) -----------------------------------------

def _alternations():
    from memorylab_core.novelty import categories, guard, textnorm
    return {"mentions": textnorm.MENTIONS, "phrases": textnorm._PHRASE_RE,
            "keywords": categories._KEYWORD_RE, "category values": guard._CATEGORY_VALUES}


def _joined(alternation) -> re.Pattern:
    """The one big pattern an Alternation stands for."""
    body = "|".join(f"(?P<{name}>{pattern})" for name, pattern in alternation._fragments)
    return re.compile(f"{alternation._start}(?:{body}){alternation._end}")


def _texts() -> list[str]:
    """Vocabulary examples, and seeded random mixes of their words with separators, digits and symbols."""
    examples = [k[4] for k in KNOBS] + [t[3] for t in TECHNIQUE_VALUES]
    words = sorted({w for e in examples for w in re.split(r"\s+", e.lower())} | {
        "relu²", "relu^2", "sssl", "ssll", "x0", "2", "phase", "matrixlr", "lm_head", "warm-down", "no", "qk",
        "norm", "(", ")", "->", "+", "1e-3", "b200", "normuon", "torch.compile", "fp8", "4x"})
    rng = random.Random(7)
    mixes = [rng.choice(("", " ", "_", "-")).join(rng.sample(words, rng.randint(1, 6))) for _ in range(600)]
    return examples + mixes


@pytest.mark.parametrize("kind", ["mentions", "phrases", "keywords", "category values"])
def test_alternation_matches_exactly_as_the_joined_pattern(kind):
    alternation = _alternations()[kind]
    joined = _joined(alternation)
    for text in _texts():
        assert [(m.span(), m.lastgroup) for m in alternation.finditer(text)] == \
               [(m.span(), m.lastgroup) for m in joined.finditer(text)], text
        full, expected = alternation.fullmatch(text), joined.fullmatch(text)
        assert (full and full.lastgroup) == (expected and expected.lastgroup), text


def test_alternation_compiles_only_the_starting_letters_a_text_needs():
    mentions = _alternations()["mentions"]
    fresh = Alternation(mentions._fragments, mentions._start, mentions._end)
    assert [m.group() for m in fresh.finditer("raise matrix lr")] == ["matrix lr"]
    assert set(fresh._compiled) == {"r", "m"}  # the words' first letters ("lr" is inside the match)
    assert all(p.pattern.count("(?P<") < len(mentions._fragments) / 4 for p in fresh._compiled.values())


@pytest.mark.parametrize("fragment,expected", [
    ("abc", "a"), (r"(?:x[\s_-]*)?y", "xy"), ("a|b?c", "abc"), ("[sl]{2,8}", "sl"),
    ("(?=[sl]*s)(?=[sl]*l)[sl]{2}", "sl"),
    (r"(?:\d[\s_-]*phase)?curriculum", "0123456789c"), ("x*y{0,3}z", "xyz"), ("(?P<n>q)r", "q"), (r"\.?e", ".e"),
    (r"(?<![a-z])\bm", "m"), ("u{1,2}v", "u"), ("[a-c]d", "abc"),
])
def test_first_chars_reads_where_a_fragment_can_start(fragment, expected):
    assert first_chars(fragment) == frozenset(expected)


@pytest.mark.parametrize("fragment", [r"\w+", "[^a]b", "(?i)a", ".b", r"\sb", "(a"])
def test_first_chars_gives_up_on_what_it_cannot_bound(fragment):
    assert first_chars(fragment) is None
