"""The change taxonomy: which kind of change an experiment made (15 categories).

Insights, mistake cards and rules are aggregated per category, so every run needs categories. They
come, in order of trust, from:

1. **the agent's tags** — a tag that names a category or a known alias ("lr", "optim", "combo") is
   taken as the agent's own label, and then only tags decide;
2. **the change signature** — knob names of the train.py diff (``MATRIX_LR`` → learning_rate,
   ``WARMDOWN_RATIO`` → schedule, a removed component → simplification, knobs of two areas moved
   at once → combination); with a signature, the description adds only the shape categories
   (simplification, combination, radical), since context words ("lower LR *at batch 2^13*") would
   otherwise add categories that did not move;
3. **a keyword classifier** — whole-word patterns over the description (outcome notes such as
   "(much worse)" are stripped first, so they cannot assign a category).

Baselines are not ideas and count in no category, but that is their *role* (evidence/roles.py, read
from structure), not a word: "wd 0.1 vs baseline 2.681" is a weight-decay experiment.
Standard library only; results are memoised because imported ledgers repeat descriptions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache

from ..ledger.model import CATEGORIES
from .lookup import Alternation
from .textnorm import strip_outcome_notes

_ORDER = {name: i for i, name in enumerate(CATEGORIES)}
# Categories about the shape of a change rather than the part of the model it touches.
META_CATEGORIES = frozenset({"simplification", "combination", "radical"})

# Tag spellings (after lower-casing, "-" and " " read as "_") that name a category.
TAG_ALIASES: dict[str, str] = {
    **{name: name for name in CATEGORIES},
    "arch": "architecture", "model": "architecture", "width": "architecture", "depth": "architecture",
    "mlp": "architecture",
    "attn": "attention", "heads": "attention", "window": "attention", "rope": "attention",
    "act": "activation", "nonlinearity": "activation",
    "optim": "optimizer", "opt": "optimizer", "optimiser": "optimizer", "muon": "optimizer", "adam": "optimizer",
    "adamw": "optimizer", "momentum": "optimizer",
    "lr": "learning_rate", "learning_rates": "learning_rate", "learningrate": "learning_rate",
    "sched": "schedule", "lr_schedule": "schedule", "warmup": "schedule", "warmdown": "schedule",
    "curriculum": "schedule",
    "batch": "batch_size", "bs": "batch_size", "batchsize": "batch_size",
    "init": "initialization", "initialisation": "initialization",
    "reg": "regularization", "regularisation": "regularization", "weight_decay": "regularization",
    "wd": "regularization", "dropout": "regularization",
    "norm": "normalization", "normalisation": "normalization",
    "embed": "embedding", "embeddings": "embedding", "vocab": "embedding",
    "numerics": "numerical", "numeric": "numerical", "precision": "numerical", "stability": "numerical",
    "simplify": "simplification", "simpler": "simplification", "ablation": "simplification",
    "combo": "combination", "combine": "combination", "combined": "combination",
    "wild": "radical", "moonshot": "radical",
}

# Knob names of change facts (see memorylab_core.changes / textnorm.KNOB_ALIASES) → categories.
KNOB_CATEGORIES: dict[str, tuple[str, ...]] = {
    "MATRIX_LR": ("learning_rate",), "EMBEDDING_LR": ("learning_rate", "embedding"),
    "UNEMBEDDING_LR": ("learning_rate", "embedding"), "SCALAR_LR": ("learning_rate",), "LR": ("learning_rate",),
    "FINAL_LR_FRAC": ("schedule",), "WARMDOWN_RATIO": ("schedule",), "WARMUP_RATIO": ("schedule",),
    "WEIGHT_DECAY": ("regularization",), "DROPOUT": ("regularization",),
    "ADAM_BETAS": ("optimizer",), "MUON_MOMENTUM": ("optimizer",), "NS_STEPS": ("optimizer",),
    "OPTIMIZER": ("optimizer",), "GRAD_CLIP": ("optimizer",),
    "TOTAL_BATCH_SIZE": ("batch_size",), "DEVICE_BATCH_SIZE": ("batch_size",), "EVAL_BATCH_SIZE": ("batch_size",),
    "DEPTH": ("architecture",), "ASPECT_RATIO": ("architecture",), "MODEL_DIM": ("architecture",),
    "MLP_RATIO": ("architecture",), "KERNEL_SIZE": ("architecture",), "SEQ_LEN": ("architecture",),
    "HEAD_DIM": ("attention",), "N_HEAD": ("attention",), "N_KV_HEAD": ("attention",),
    "WINDOW_PATTERN": ("attention",), "ROPE": ("attention",), "ROPE_BASE": ("attention",),
    "QK_NORM": ("attention", "normalization"),
    "ACTIVATION": ("activation",),
    "SOFTCAP": ("numerical",), "PRECISION": ("numerical",),
    "VALUE_EMBEDS": ("embedding",), "WEIGHT_TYING": ("embedding",), "VOCAB_SIZE": ("embedding",),
}
# Name fragments for knobs not in the table (e.g. a new constant the agent added to train.py).
_KNOB_FRAGMENTS: tuple[tuple[str, str], ...] = (
    ("WARMUP", "schedule"), ("WARMDOWN", "schedule"), ("SCHEDULE", "schedule"), ("LR", "learning_rate"),
    ("BATCH", "batch_size"), ("DECAY", "regularization"), ("DROPOUT", "regularization"),
    ("INIT", "initialization"), ("NORM", "normalization"), ("EMBED", "embedding"), ("VOCAB", "embedding"),
    ("HEAD", "attention"), ("WINDOW", "attention"), ("ATTN", "attention"), ("ROPE", "attention"),
    ("MOMENTUM", "optimizer"), ("BETA", "optimizer"), ("MUON", "optimizer"), ("ADAM", "optimizer"),
    ("CAP", "numerical"), ("EPS", "numerical"), ("DTYPE", "numerical"),
    ("DEPTH", "architecture"), ("LAYER", "architecture"), ("DIM", "architecture"), ("MLP", "architecture"),
)

# Whole-word keyword patterns over lower-cased, NFKC-normalised text (outcome notes removed).
_KEYWORDS: dict[str, str] = {
    "architecture": r"depth|n ?layers?|layers?|width|wider|widen\w*|narrow\w*|aspect ratio|model dim|"
                    r"mlp|hidden dim|expansion|params?|parameters|residual|skip connections?|x0|"
                    r"conv\w*|mixer|moe|experts?|blocks?|architecture|deeper|shallower",
    "attention": r"attention|attn|heads?|head dim|n head|kv heads?|gqa|mqa|sliding window\w*|"
                 r"windows?|window pattern|(?=[sl]*s)(?=[sl]*l)[sl]{3,8}|rope|rotary|flash|causal|"
                 r"global context|qk ?norm",
    "activation": r"activation|relu\^?2?|relu²|squared relu|gelu|silu|swish|swiglu|geglu|reglu|glu",
    "optimizer": r"optimi[sz]er|muon|normuon|adamw?|sgd|lion|shampoo|soap|momentum|betas?[12]?|"
                 r"newton ?schulz|polar express|ns steps|nesterov|grad(?:ient)? clip\w*|"
                 r"orthogonali[sz]\w*",
    "learning_rate": r"lrs?|learning rates?",
    "schedule": r"warm ?up|warm ?down|cool ?down|anneal\w*|schedul\w*|cosine|wsd|"
                r"final lr frac|curriculum|decay phase",
    "batch_size": r"batch(?:es)?|batch size|bs|grad(?:ient)? accum\w*|micro ?batch\w*|tokens per step",
    "initialization": r"init|initiali[sz]\w*|zero ?init\w*|xavier|kaiming|init std",
    "regularization": r"weight decay|wd|dropout|label smoothing|regulari[sz]\w*|stochastic depth",
    "normalization": r"norm|norms|rms ?norm|layer ?norm|qk ?norm|pre ?norm|post ?norm|"
                     r"normali[sz]\w*",
    "embedding": r"embed\w*|value embeds?|ves?|wte|unembed\w*|lm head|vocab\w*|weight tying|"
                 r"tied embeddings?|tie embeddings?|token embeddings?",
    "numerical": r"precision|bf16|bfloat16|fp16|fp32|fp8|float\d*|tf32|soft ?cap\w*|logit cap\w*|"
                 r"eps|epsilon|z ?loss|dtype|stabil\w*|overflow",
    "simplification": r"simplif\w*|remov\w*|delet\w*|drop(?:ped)?|without|ablat\w*|dead|clean ?up|"
                      r"fewer lines",
    "combination": r"combo|combin\w*|together|merg\w*|both",
    "radical": r"radical|rewrite|overhaul|from scratch|ssm|mamba|rwkv|hyena|retnet|state space|"
               r"replaces? (?:\d+/\d+ )?attention",
}
_KEYWORD_RE = Alternation(list(_KEYWORDS.items()), start=r"(?<![\w])", end=r"(?![\w])")
_TAGGED_RE = re.compile(r"\[(\w+)\]")
_PLUS_RE = re.compile(r"\s\+\s")


def ordered(categories: Iterable[str]) -> tuple[str, ...]:
    """Known categories, de-duplicated, in taxonomy order."""
    return tuple(sorted({c for c in categories if c in _ORDER}, key=_ORDER.__getitem__))


def from_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Categories named by the agent's tags (aliases included); unknown tags are ignored."""
    found = []
    for tag in tags:
        key = re.sub(r"[\s\-]+", "_", str(tag).strip().lower())
        if key in TAG_ALIASES:
            found.append(TAG_ALIASES[key])
    return ordered(found)


def from_signature(signature: Sequence[dict]) -> tuple[str, ...]:
    """Categories implied by a change signature: knob names, removals, several knobs at once."""
    found: list[str] = []
    areas = set()
    for fact in signature:
        name = str(fact.get("name") or "").upper()
        if not name:
            continue
        knob = KNOB_CATEGORIES.get(name) or _fragment_categories(name)
        found += knob
        areas.add(knob[0] if knob else name)
        if fact.get("direction") == "removed":
            found.append("simplification")
    if len(areas) >= 2:  # knobs of two different areas moved together (heads + head_dim is one change)
        found.append("combination")
    return ordered(found)


def _fragment_categories(name: str) -> list[str]:
    return [category for fragment, category in _KNOB_FRAGMENTS if fragment in name][:1]


def from_text(text: str) -> tuple[str, ...]:
    """Categories found by whole-word keywords in ``text`` (outcome notes ignored)."""
    return _from_text_cached(str(text or ""))


@lru_cache(maxsize=16384)
def _from_text_cached(text: str) -> tuple[str, ...]:
    bracketed = [TAG_ALIASES.get(m.group(1).lower()) for m in _TAGGED_RE.finditer(text)]
    # "_" and "-" separate words here, so knob names (WARMDOWN_RATIO) and compounds (zero-init) match.
    clean = re.sub(r"[_\-]+", " ", unicodedata.normalize("NFKC", strip_outcome_notes(text)).lower())
    found = [c for c in bracketed if c]
    found += [m.lastgroup for m in _KEYWORD_RE.finditer(clean) if m.lastgroup]
    if _PLUS_RE.search(clean):
        found.append("combination")
    return ordered(found)


def classify(description: str, tags: Iterable[str] = (), signature: Sequence[dict] = ()) -> tuple[str, ...]:
    """The categories of one run (see the module docstring for the order of evidence)."""
    moves = tuple((str(f.get("name") or ""), f.get("direction")) for f in signature)
    return _classify_cached(str(description or ""), tuple(str(t) for t in tags), moves)


@lru_cache(maxsize=16384)
def _classify_cached(description: str, tags: tuple[str, ...], moves: tuple[tuple[str, str | None], ...]):
    signature = [{"name": name, "direction": direction} for name, direction in moves]
    tagged = from_tags(tags)
    if tagged:
        return tagged
    text = from_text(" ".join([description, *(str(t) for t in tags)]))
    knobs = from_signature(signature)
    if knobs:  # the diff says what moved; text adds only what a diff cannot show (removal, combo, radical)
        return ordered(knobs + tuple(c for c in text if c in META_CATEGORIES))
    return text


def run_categories(run) -> tuple[str, ...]:
    """A folded run's categories: as stored on its record, else classified now (imports, old records)."""
    return run.categories or classify(run.description, run.tags, run.change_signature)
