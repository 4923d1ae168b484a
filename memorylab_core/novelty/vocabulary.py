"""The guard's vocabulary of knobs and techniques, kept as data.

Each row is one entry; adding a knob or a technique is one line here (and its example is its test:
``tests/test_vocabulary.py`` checks every row). These rows are matched *before* the older alias
tables in :mod:`textnorm` at the same text position, so a specific name ("muon beta2", "ve gate
channels", "softcap 15 -> 30", "cosine warmdown") wins over a generic one ("beta2", "value
embeddings", "softcap", "warmdown").

**A knob's identity includes what it belongs to**: Muon's beta2 is not Adam's beta2, the
value-embedding *gate* is not the value-embedding *tables*, an init scale of a parameter group is not
that group's learning rate, Adam's epsilon, the softcap *value* and the warmdown *exponent* are knobs
of their own.

Rows:

* :data:`KNOBS` -- ``(name, group, kind, pattern, example, expected_direction)``. ``kind`` is
  ``num`` (a number that moves up or down) or ``comp`` (a technique or component that is added or
  removed: EMA, GQA, zero-init projections ...). ``group`` is the parameter group or part of the model
  the knob belongs to (documentation, and :data:`GROUP_OF`).
* :data:`TECHNIQUE_VALUES` -- ``(name, value, pattern, example)``: categorical knobs whose values are
  named techniques (an LR schedule shape, mixed precision). Two spellings of one value ("cosine
  decay", "cosine warmdown") are the same idea; two values of one knob (``cosine`` vs ``linear``) are
  distinct techniques of the same family.
* :data:`ORDERED_VALUES` -- categorical knobs whose values have an order (window patterns: the share
  of short windows), so a change of value has a direction like a number's.
* :data:`PARENT` -- knob → technique it tunes: a first move of a knob inside a *kept* technique is a
  follow-up of that technique (a new kernel size inside a kept conv mixer).
* :data:`UPSTREAM_DEFAULTS` -- the operating point of an imported history before its first row:
  upstream autoresearch ``train.py``'s defaults (its constants, plus values written inside its code).

Patterns are lower-case regex fragments over NFKC text; ``_S`` is an optional separator. They use
letters and bounded repeats only (no nested unbounded quantifiers), so matching stays linear.
"""

from __future__ import annotations

from collections.abc import Callable

_S = r"[\s_-]*"
_LR = rf"(?:lr|learning{_S}rate)"
_INIT = rf"init(?:iali[sz](?:ation|ed|e))?(?:{_S}(?:scale|std|value))?"
_ASSIGNED = r"\s*=\s*-?\.?\d"  # a number assigned right after the name

KNOBS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("MLP_RATIO", "mlp", "num", rf"mlp{_S}hidden{_S}(?:width|dim|size)|mlp{_S}width", "MLP hidden width 4x -> 3x",
     "down"),
    # Muon's learning rate is the matrix LR, whatever it is called
    ("MATRIX_LR", "muon", "num", rf"(?:matrix|matrices|muon){_S}step{_S}size|"
     rf"step{_S}size{_S}(?:for|of){_S}(?:the{_S})?(?:orthogonali[sz]ed|muon|matrix)(?:{_S}optimi[sz]er)?|"
     rf"(?:orthogonali[sz]ed|muon){_S}optimi[sz]er(?:'?s)?{_S}(?:lr|learning{_S}rate|step{_S}size)",
     "bigger step size for the orthogonalized optimizer", "up"),
    # a learning rate "for" / "of" a parameter group is that group's learning rate
    ("EMBEDDING_LR", "embedding", "num", rf"{_LR}{_S}(?:for|of|on){_S}(?:the{_S})?(?:token{_S}|input{_S})?"
     rf"(?:embed(?:ding)?s?|wte)", "raise the learning rate for the embeddings to 0.8", "up"),
    ("UNEMBEDDING_LR", "lm_head", "num", rf"{_LR}{_S}(?:for|of|on){_S}(?:the{_S})?(?:lm{_S}head|unembed(?:ding)?s?|"
     rf"output{_S}(?:layer|head|projection))", "lower the lr of the lm head to 0.002", "down"),
    ("SCALAR_LR", "scalars", "num", rf"{_LR}{_S}(?:for|of|on){_S}(?:the{_S})?(?:per{_S}layer{_S})?scalars?",
     "raise LR for scalars to 0.8", "up"),
    ("MATRIX_LR", "muon", "num", rf"{_LR}{_S}(?:for|of|on){_S}(?:the{_S})?(?:(?:block|hidden|2d){_S})?(?:weight{_S})?"
     rf"matri(?:x|ces)", "lower the learning rate for the weight matrices", "down"),
    # optimizer internals: Muon vs Adam
    ("MUON_BETA2", "muon", "num", rf"muon{_S}(?:beta{_S}2|second{_S}moment(?:{_S}beta)?)", "muon beta2 0.95 -> 0.99",
     "up"),
    # Muon's momentum ramps from a start value (0.85) to its end (MUON_MOMENTUM, 0.95) over a warmup of steps
    ("MUON_MOMENTUM_WARMUP", "muon", "num",
     rf"(?:muon{_S})?(?:momentum|mom){_S}warm{_S}up(?:{_S}steps)?|muon{_S}warm{_S}up(?:{_S}steps)?|"
     rf"(?:muon{_S})?momentum{_S}ramp(?:{_S}(?:length|steps))?(?!{_S}(?:start|end|begin|final|initial))",
     "muon momentum ramp 300 -> 600", "up"),
    ("MUON_MOMENTUM_START", "muon", "num",
     rf"(?:muon{_S})?momentum{_S}(?:(?:ramp|warm{_S}up){_S})?(?:start(?:ing)?|init(?:ial)?)(?:{_S}value)?|"
     rf"(?:initial|start(?:ing)?){_S}(?:muon{_S})?momentum",
     "muon momentum ramp start 0.85 -> 0.90", "up"),
    # the factor Polar Express divides the matrix norm by before its iterations (1.02 in upstream's Muon)
    ("PE_NORM_FACTOR", "muon", "num",
     rf"(?:polar{_S}express|pe|ns){_S}norm(?:ali[sz]ation)?(?:{_S}(?:factor|scale|divisor))?",
     "polar express norm factor 1.02 -> 1.01", "down"),
    ("NS_STEPS", "muon", "num",
     rf"(?:orthogonali[sz]ation|ortho|newton{_S}schulz|polar{_S}express|ns){_S}(?:steps|iter(?:ation)?s)",
     "fewer orthogonalisation steps", "down"),
    ("ADAM_BETA1", "adam", "num", rf"(?:adam(?:w)?{_S})?beta{_S}1|adam{_S}momentum", "adam beta1 0.8 -> 0.9", "up"),
    ("ADAM_BETA2", "adam", "num", rf"(?:adam(?:w)?{_S})?beta{_S}2", "adam beta2 0.95 -> 0.99", "up"),
    ("ADAM_EPS", "adam", "num", rf"(?:adam(?:w)?{_S})?eps(?:ilon)?", "adam eps 1e-10 -> 1e-8", "up"),
    # initialisation scales: not the learning rate of the same group
    ("EMBEDDING_INIT", "embedding", "num", rf"(?:token{_S})?(?:embed(?:ding)?s?|emb|wte){_S}(?:{_INIT}|std)|"
     rf"{_INIT}{_S}(?:for|of){_S}(?:the{_S})?(?:token{_S})?(?:embed(?:ding)?s?|wte)",
     "embedding init std 1.0 -> 0.5", "down"),
    ("LM_HEAD_INIT", "lm_head", "num", rf"(?:lm{_S}head|unembed(?:ding)?s?|output{_S}layer){_S}(?:{_INIT}|std)",
     "lm head init 0.001 -> 0.01", "up"),
    # (the lambdas assigned a number, "x0_lambdas=0.15", are their init: they are parameters, trained from it)
    ("X0_LAMBDA_INIT", "scalars", "num", rf"x0{_S}lambdas?{_S}{_INIT}|x0{_S}{_INIT}|x0{_S}lambdas?(?={_ASSIGNED})",
     "x0 lambda init 0.1 -> 0.2", "up"),
    ("RESID_LAMBDA_INIT", "scalars", "num",
     rf"resid(?:ual)?{_S}lambdas?{_S}{_INIT}|resid(?:ual)?{_S}lambdas?(?={_ASSIGNED})", "resid lambda init 1.0 -> 0.9",
     "down"),
    # the init of one part of the model is that part's own knob, not the global init scale
    ("QK_INIT", "attention", "num", rf"(?:qk|q{_S}k|query{_S}key|queries{_S}and{_S}keys){_S}{_INIT}",
     "scaled-down QK init 0.7x", "down"),
    ("MLP_INIT", "mlp", "num", rf"mlp(?:{_S}(?:up|down|in|out){_S}proj(?:ection)?)?{_S}{_INIT}|"
     rf"(?:c{_S}fc|up{_S}proj(?:ection)?){_S}{_INIT}", "smaller MLP up-proj init", "down"),
    ("VE_GATE_INIT", "ve_gate", "num", rf"(?:ve|value{_S}embed(?:ding)?s?){_S}gate{_S}{_INIT}",
     "VE gate init 0 -> 0.1", "up"),
    ("INIT_SCALE", "model", "num", rf"(?:weight{_S})?{_INIT}", "raise init scale to 1.5", "up"),
    # value embeddings: the gate is not the tables
    ("VE_GATE_CHANNELS", "ve_gate", "num", rf"(?:ve|value{_S}embed(?:ding)?s?){_S}gate{_S}(?:channels|width|dim)|"
                                          rf"gate{_S}channels", "ve gate channels 32 -> 64", "up"),
    ("VE_GATE", "ve_gate", "comp", rf"(?:ve|value{_S}embed(?:ding)?s?){_S}gat(?:e|ing)", "remove the ve gate",
     "removed"),
    # a softcap on the attention scores is not the output logits' softcap
    ("ATTN_SOFTCAP", "attention", "num",
     rf"(?:attn|attention){_S}(?:logits?{_S}|scores?{_S})?soft{_S}cap(?:ping)?|qk{_S}soft{_S}cap(?:ping)?|"
     rf"soft{_S}cap(?:ping)?{_S}(?:on|of|for){_S}(?:the{_S})?(?:attn|attention)(?:{_S}(?:logits|scores))?",
     "attention logit softcap 30 -> 50", "up"),
    # the logit softcap: its value is a knob, the cap itself a component
    ("SOFTCAP_VALUE", "head", "num",
     rf"(?:logits?{_S})?soft{_S}cap(?:ping)?(?:{_S}(?:the{_S})?logits?)?{_S}(?:value|at)|"
     rf"(?:logits?{_S})?soft{_S}cap(?:ping)?(?=\s*(?:[:=]|from|of|to|at)?\s*\d)",
     "softcap 15 -> 30", "up"),
    # schedule shape knobs
    ("WARMDOWN_EXPONENT", "schedule", "num",
     rf"(?:warm{_S}down|cool{_S}down|decay|anneal(?:ing)?){_S}(?:exponent|power|curvature)",
     "warmdown exponent 1 -> 2", "up"),
    ("SEQ_LEN_CURRICULUM", "data", "comp",
     rf"(?:seq(?:uence)?{_S}len(?:gth)?{_S}|context{_S}(?:len(?:gth)?{_S})?|\d{_S}phase{_S})?curriculum|"
     rf"progressive{_S}(?:seq(?:uence)?|context){_S}len(?:gth)?", "sequence length curriculum", "added"),
    # a warmup of something other than the learning rate is that thing's own knob
    ("WEIGHT_DECAY_WARMUP", "schedule", "num", rf"(?:wd|weight{_S}decay){_S}warm{_S}up", "WD warmup 10% -> 5%",
     "down"),
    # upstream decays the Muon weight decay linearly to zero; its floor is the share it ends at ("WD floor 20%",
    # "WD decay to 10% residual"); a constant weight decay keeps all of it (changes' shorthand: floor 100%)
    ("WD_FINAL_FRAC", "schedule", "num",
     rf"(?:wd|weight{_S}decay){_S}(?:floor|residual)|(?:wd|weight{_S}decay){_S}decay(?={_S}to\b)|"
     rf"final{_S}(?:wd|weight{_S}decay)(?:{_S}(?:frac(?:tion)?|ratio))?", "WD floor 10% -> 20%", "up"),
    ("COMPILE_WARMUP", "runtime", "num", rf"compil(?:e|ation){_S}warm{_S}up(?:{_S}steps)?",
     "reduce compile warmup from 10 to 5 steps", "down"),
    ("BATCH_WARMUP", "batch", "comp", rf"batch{_S}(?:size{_S})?(?:warm{_S}up|ramp(?:{_S}up)?|schedule)",
     "add batch size warmup", "added"),
    # architecture techniques (component present / absent)
    ("CONV_MIXER", "architecture", "comp",
     rf"conv(?:olution(?:al)?)?{_S}(?:token{_S})?(?:mixer|mixing|model|layers?|blocks?)|"
     rf"(?:causal|depthwise|multi{_S}scale){_S}conv(?:olution(?:al)?)?s?",
     "add a conv mixer", "added"),
    ("GQA", "attention", "comp", rf"gqa|grouped{_S}query(?:{_S}attention)?|multi{_S}query{_S}attention|mqa",
     "grouped-query attention with 2 kv heads", "added"),
    ("ZERO_INIT_PROJ", "initialization", "comp",
     rf"zero{_S}init(?:iali[sz](?:ation|ed|e))?(?:{_S}(?:of{_S})?(?:the{_S})?(?:output|out|residual|attn|"
     rf"attention|mlp|c){_S}proj(?:ection)?s?|{_S}proj(?:ection)?s?)|zero{_S}(?:init(?:iali[sz]ed)?{_S})?"
     rf"(?:output{_S}|residual{_S})?proj(?:ection)?s?", "zero-init projections", "added"),
    ("EMA_DECAY", "averaging", "num", rf"(?:ema|polyak){_S}(?:decay|beta|momentum|rate)", "EMA decay 0.997 -> 0.995",
     "down"),
    ("EMA", "averaging", "comp",
     rf"ema(?:{_S}of{_S}(?:the{_S})?(?:model{_S})?weights)?|exponential{_S}moving{_S}averag(?:e|ing)|"
     rf"weight{_S}(?:ema|averaging)|polyak(?:{_S}averaging)?|swa", "EMA of weights now with the dtype fixed",
     "added"),
    ("LABEL_SMOOTHING", "loss", "comp", rf"label{_S}smooth(?:ing)?|ls(?=\s*(?:=|:)?\s*\d)", "add label smoothing",
     "added"),
    ("Z_LOSS", "loss", "comp", rf"z{_S}loss", "add z-loss", "added"),
    ("MTP", "loss", "comp", rf"multi{_S}token{_S}prediction|mtp", "multi-token prediction head", "added"),
    ("UNET_SKIPS", "architecture", "comp", rf"u{_S}net(?:{_S}(?:style|skips?|connections?))?",
     "u-net skip connections", "added"),
    ("TOKEN_SHIFT", "architecture", "comp", rf"token{_S}shift(?:ing)?|smear(?:{_S}gate)?", "add token shift",
     "added"),
    ("BIGRAM_EMBED", "embedding", "comp", rf"bigram{_S}(?:hash{_S})?embed(?:ding)?s?|bigram{_S}hash(?:{_S}(?:buckets?|"
                                           rf"table|vocab(?:{_S}size)?))?", "bigram hash embeddings", "added"),
    ("PARTIAL_ROPE", "attention", "comp", rf"partial{_S}(?:rope|rotary)(?:{_S}dims?)?", "use partial RoPE",
     "added"),
    ("PARALLEL_BLOCK", "architecture", "comp",
     rf"parallel{_S}(?:(?:attn|attention)(?:{_S}(?:and|\+|&|/){_S}(?:mlp|ffn))?|blocks?|residuals?)",
     "parallel attn+MLP (GPT-J style)", "added"),
    ("STOCHASTIC_DEPTH", "regularization", "comp", rf"stochastic{_S}depth|layer{_S}drop|drop{_S}path",
     "add stochastic depth (linear drop schedule)", "added"),
    ("DIFF_ATTN", "attention", "comp", rf"diff(?:erential)?{_S}(?:attn|attention)",
     "differential attention (noise-cancelling head pairs)", "added"),
    ("MOE", "architecture", "comp", rf"moe|mixture{_S}of{_S}experts", "mixture of experts mlp", "added"),
    ("MOE_TOP_K", "moe", "num", rf"top{_S}k|experts{_S}per{_S}token", "raise MoE top_k from 1 to 2", "up"),
    ("MOE_EXPERTS", "moe", "num", rf"(?:num{_S})?experts", "more experts: 8 -> 16", "up"),
    ("MOE_AUX_LOSS", "moe", "num", rf"aux(?:iliary)?{_S}loss(?:{_S}(?:weight|coef(?:ficient)?))?|"
                                   rf"load{_S}balanc(?:e|ing){_S}loss", "aux_loss 0.01 -> 0.001", "down"),
    ("TTT", "evaluation", "comp", rf"ttt|test{_S}time{_S}training", "TTT 3 steps at eval", "added"),
    ("TIME_BUDGET", "budget", "num", rf"time{_S}budget|wall{_S}clock(?:{_S}(?:budget|limit|time))?|"
                                     rf"training{_S}time{_S}budget", "wallclock 1200s -> 1800s", "up"),
    # optimizer variants and norm placements: techniques of their own, not a learning rate or the MLP
    ("NORMUON", "muon", "comp", rf"nor{_S}muon", "NorMuon (per-neuron second moment)", "added"),
    ("HYBRID_NORM", "normalization", "comp", rf"hybrid{_S}norm", "HybridNorm: post-norm MLP", "added"),
    ("BATCH_NORM", "normalization", "comp", rf"batch{_S}norm(?:ali[sz]ation)?", "add batch norm after attention",
     "added"),
    ("NESTEROV", "muon", "comp", r"nesterov", "disable nesterov", "removed"),
    ("CAUTIOUS_WD", "muon", "comp", rf"cautious{_S}(?:weight{_S}decay|wd)", "remove cautious weight decay",
     "removed"),
    ("TORCH_COMPILE", "numerics", "comp", rf"torch{_S}\.?{_S}compile", "disable torch.compile", "removed"),
    ("FLASH_ATTENTION", "attention", "comp", rf"flash{_S}attn|flash{_S}attention|sdpa",
     "use flash attention", "added"),
    ("XSA", "attention", "comp", rf"xsa|exclusive{_S}self{_S}attention", "XSA on the last 4 layers", "added"),
    ("KERNEL_SIZE", "conv_mixer", "num", rf"(?:conv(?:olution)?{_S})?kernels?(?:{_S}sizes?)?",
     "conv kernel 15->31", "up"),
)

_LR = rf"(?:lr|learning{_S}rate)"  # "cosine LR scheduler", "cosine learning rate schedule"
_SCHEDULE = r"schedul(?:e|er|ing)"
_DECAY = rf"decay|warm{_S}down|cool{_S}down"
# Categorical knobs whose values name techniques: (name, value, pattern, example).
TECHNIQUE_VALUES: tuple[tuple[str, str, str, str], ...] = (
    ("LR_SCHEDULE", "cosine", rf"cos(?:ine)?{_S}(?:{_LR}{_S})?(?:{_DECAY}|anneal(?:ing)?|{_SCHEDULE})", "cosine decay"),
    ("LR_SCHEDULE", "linear", rf"linear{_S}(?:{_LR}{_S})?(?:{_DECAY}|anneal(?:ing)?|{_SCHEDULE})",
     "linear decay to zero"),
    ("LR_SCHEDULE", "sqrt", rf"(?:1{_S})?sqrt{_S}(?:{_LR}{_S})?(?:{_DECAY}|{_SCHEDULE})",
     "1-sqrt warmdown"),
    ("LR_SCHEDULE", "exponential", rf"exp(?:onential)?{_S}(?:{_LR}{_S})?(?:decay|warm{_S}down|{_SCHEDULE})",
     "exponential lr decay"),
    ("LR_SCHEDULE", "wsd", rf"wsd|trapezoid(?:al)?(?:{_S}schedule)?|warmup{_S}stable{_S}decay", "WSD schedule"),
    ("LR_SCHEDULE", "constant", rf"constant{_S}(?:lr|learning{_S}rate)(?:{_S}schedule)?", "constant lr"),
    ("PRECISION", "mixed", rf"mixed{_S}precision|autocast|amp", "mixed precision training"),
    ("NORM", "layernorm", rf"layer{_S}norm", "layernorm instead of rmsnorm"),
    ("NORM", "rmsnorm", rf"rms{_S}norm", "rmsnorm"),
    ("WINDOW_PATTERN", "L", r"l{2,8}|l(?=[\"'])", 'window pattern "SLLL" -> "LLLL"'),
    # how a parameter-golf artifact is compressed
    ("COMPRESSION", "lzma", r"lzma|xz", "LZMA compression of the artifact"),
    ("COMPRESSION", "zstd", rf"zstd(?:{_S}\d+)?|zstandard", "zstd-22"),
    ("COMPRESSION", "brotli", rf"brotli(?:{_S}\d+)?", "brotli-11 instead of zlib"),
    ("COMPRESSION", "zlib", r"zlib", "back to zlib"),
)

GROUP_OF: dict[str, str] = {name: group for name, group, *_ in KNOBS}
KIND_OF: dict[str, str] = {name: kind for name, _, kind, *_ in KNOBS}

PARENT: dict[str, str] = {
    "KERNEL_SIZE": "CONV_MIXER",
    "XSA_LAYERS": "XSA",
    "VE_GATE_CHANNELS": "VE_GATE",
    "N_KV_HEAD": "GQA",
    "MUON_MOMENTUM_WARMUP": "OPTIMIZER",
    "MOE_TOP_K": "MOE",
    "MOE_EXPERTS": "MOE",
    "MOE_AUX_LOSS": "MOE",
    "EMA_DECAY": "EMA",
}


# A component upstream has, named with a number, means its value: "rope 100k" is the RoPE base, "softcap
# 30" the cap's value (not the component added again). (A component upstream lacks, "EMA 0.999", is added.)
VALUE_KNOB: dict[str, str] = {"ROPE": "ROPE_BASE", "SOFTCAP": "SOFTCAP_VALUE", "X0_LAMBDAS": "X0_LAMBDA_INIT"}

# A component removed is its strength moved to the end of its range: a cap raised without bound ("remove
# the logit softcap" after "softcap 15 -> 30" failed loosens it the same way again), a scaled path set to
# zero ("remove the x0 skip" after "x0 lambda init 0.1 -> 0.05" failed weakens it the same way again):
# LABELS.md's same knob, same direction, same point. One way only: a failed removal says the component is
# needed, not that a slightly looser or weaker one hurts.
REMOVED_AS_VALUE: dict[str, tuple[str, str]] = {"SOFTCAP": ("SOFTCAP_VALUE", "up"),
                                                "X0_LAMBDAS": ("X0_LAMBDA_INIT", "down")}

# A ramp of zero steps starts where it ends: "no Muon momentum warmup (constant 0.95)" also raises the ramp's
# start (0.85) to its end, so a later "momentum start 0.85 -> 0.90" moves the same knob the same way from
# the same point (LABELS.md's repeat), and the other way round. Ramp length → (start knob, end knob).
RAMPS: dict[str, tuple[str, str]] = {"MUON_MOMENTUM_WARMUP": ("MUON_MOMENTUM_START", "MUON_MOMENTUM")}


def window_short_share(pattern: object) -> float | None:
    """The share of short-window layers in a window pattern ("sssl" → 0.75, "l" → 0.0), or None."""
    text = str(pattern or "").lower()
    return text.count("s") / len(text) if text and set(text) <= {"s", "l"} else None


# Categorical knobs whose values are ordered, so that a change has a direction: more or fewer short
# windows ("SLLL" → "SSLL" and "SLLL" → "SSSL" move the same way; "SLLL" → "LLSL" only moves one).
ORDERED_VALUES: dict[str, Callable[[object], float | None]] = {"WINDOW_PATTERN": window_short_share}

# Upstream autoresearch train.py (karpathy/autoresearch): its top-level constants, plus values that
# live inside its code (MLP 4x, softcap 15, Muon momentum 0.95 warmed up from 0.85 over 300 steps,
# 5 Newton-Schulz steps after dividing by 1.02 times the norm, Muon beta2 0.95, Adam eps 1e-10, value-embedding
# gate on 32 channels, RoPE base 10000).
UPSTREAM_DEFAULTS: dict[str, object] = {
    "DEPTH": 8, "ASPECT_RATIO": 64, "HEAD_DIM": 128, "WINDOW_PATTERN": "SSSL", "TOTAL_BATCH_SIZE": 2**19,
    "DEVICE_BATCH_SIZE": 128, "EMBEDDING_LR": 0.6, "UNEMBEDDING_LR": 0.004, "MATRIX_LR": 0.04, "SCALAR_LR": 0.5,
    "WEIGHT_DECAY": 0.2, "ADAM_BETA1": 0.8, "ADAM_BETA2": 0.95, "WARMUP_RATIO": 0.0, "WARMDOWN_RATIO": 0.5,
    "FINAL_LR_FRAC": 0.0, "MLP_RATIO": 4, "SOFTCAP_VALUE": 15, "MUON_MOMENTUM": 0.95, "NS_STEPS": 5,
    "MUON_BETA2": 0.95, "ADAM_EPS": 1e-10, "SEQ_LEN": 2048, "VE_GATE_CHANNELS": 32, "MUON_MOMENTUM_WARMUP": 300,
    "ACTIVATION": "relu2", "OPTIMIZER": "muon", "ROPE_BASE": 10000, "X0_LAMBDA_INIT": 0.1, "RESID_LAMBDA_INIT": 1.0,
    "MUON_MOMENTUM_START": 0.85, "PE_NORM_FACTOR": 1.02, "WD_FINAL_FRAC": 0.0, "DROPOUT": 0.0,
}

# Identifiers that name a vocabulary owner another way: upstream train.py's optimizer groups ``x0_params`` and
# ``resid_params`` hold the two lambda vectors, so "x0_params LR" is the x0 lambdas' LR; a bare ``dim=640`` is the
# model's width.
IDENTIFIER_ALIASES: dict[str, str] = {"X0_PARAMS": "X0_LAMBDAS", "RESID_PARAMS": "RESID_LAMBDAS", "DIM": "MODEL_DIM",
                                      # Parameter Golf's schedule phases, counted in iterations
                                      "WARMDOWN_ITERS": "WARMDOWN_RATIO", "WARMDOWN_STEPS": "WARMDOWN_RATIO",
                                      "WARMUP_STEPS": "WARMUP_RATIO", "WARMUP_ITERS": "WARMUP_RATIO"}

# Tuple constants whose elements are knobs of their own.
SPLIT_CONSTANTS: dict[str, tuple[str, ...]] = {"ADAM_BETAS": ("ADAM_BETA1", "ADAM_BETA2")}

# Numbers inside train.py's code that are knobs: (scope regex, "scope:target" regex, keyword or None, name),
# matched on lower-case text; the first row that matches names the literal.
CODE_LITERALS: tuple[tuple[str, str, str | None, str], ...] = (
    (r"mlp", r"c_fc|c_proj|fc|w_?in|w_?out|hidden|up_proj|down_proj", None, "MLP_RATIO"),
    (r"", r"softcap", None, "SOFTCAP_VALUE"),
    (r"", r"ve_gate_channels|gate_channels", None, "VE_GATE_CHANNELS"),
    (r"muon_momentum|momentum", r":frac", None, "MUON_MOMENTUM_WARMUP"),
    (r"", r"", "ns_steps", "NS_STEPS"),
    (r"", r"adam", "eps", "ADAM_EPS"),
)

# train.py spellings of knobs whose canonical name differs (constants read by ``changes.train_defaults``).
CONSTANT_ALIASES: dict[str, str] = {"MAX_SEQ_LEN": "SEQ_LEN"}


def knob_aliases() -> tuple[tuple[str, str, str], ...]:
    """``(name, kind, pattern)`` rows in the format of ``textnorm.KNOB_ALIASES``."""
    return tuple((name, kind, pattern) for name, _, kind, pattern, _, _ in KNOBS)


def category_aliases() -> tuple[tuple[str, str, str], ...]:
    """``(name, value, pattern)`` rows in the format of ``textnorm.CATEGORY_ALIASES``."""
    return tuple((name, value, pattern) for name, value, pattern, _ in TECHNIQUE_VALUES)
