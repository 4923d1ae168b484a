"""Text normalisation for the novelty guard: outcome-note stripping and concept-aware tokens.

Agents write descriptions like ``exp5: MLP 6x->8x (near miss, +0.003)``. The guard compares *ideas*,
so :func:`strip_outcome_notes` removes what the description says about the result (the
parenthetical verdict, metric deltas, ``crashed: OOM``, ``exp5:`` prefixes) and keeps what it says
about the change. :func:`tokens` turns text into comparable tokens: lower case, Unicode-normalised
(``ReLU²`` reads as ``relu2``), stopwords dropped, lightly stemmed, and with concept aliases applied
so that "learning rate" and "LR", "cooldown" and "warmdown", "squared relu" and "ReLU^2" meet.
Standard library only.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from .lookup import Alternation
from .vocabulary import category_aliases, knob_aliases

# Characters of a text the novelty guard reads: the schema's cap on a stored description. Longer text
# (``check -d`` takes any length) is judged by its first MAX_EXAMINED characters, so no text can make a
# command slow; every pattern below is also linear in the length of what it reads.
MAX_EXAMINED = 10_000


def examined(text: object) -> str:
    """The part of ``text`` the guard reads: its first :data:`MAX_EXAMINED` characters."""
    return str(text or "")[:MAX_EXAMINED]


# Words that mark a note about the outcome rather than the change.
_OUTCOME_WORDS = (
    r"worse|worst|better|best|improv\w*|regress\w*|gains?|hurts?|hurt|helps?|helped|benefits?|"
    r"noise|noisy|slow\w*|fast\w*|crash\w*|oom|nan|diverg\w*|unstable|instabilit\w*|stuck|"
    r"undertrain\w*|overfit\w*|sweet\s+spot|near[\s-]+miss|waste\w*|crucial|dropped|too|tiny|"
    r"marginal\w*|slight\w*|significant\w*|much|bpb|val_bpb|val|loss|same|flat|neutral|fail\w*|"
    r"errors?|explod\w*|win|won|lost|beats?|kept|discarded|reverted|promising|confirm\w*|"
    r"no\s+effect|no\s+change|no\s+difference|nothing|beneficial|harmful|essential|critical|catastroph\w*|optimal"
)
_OUTCOME_RE = re.compile(rf"\b(?:{_OUTCOME_WORDS})\b", re.IGNORECASE)
_SIGNED_DELTA = r"(?<![\w.>=^*/])[+\-−±]\d*\.\d+(?:\s*(?:val_?bpb|bpb))?"
_DELTA_RE = re.compile(_SIGNED_DELTA, re.IGNORECASE)
_NUM = r"\d+(?:\.\d+)?"
_ARROW = r"(?:->|→|=>|⇒|⟶|➔|-->|\bto\b)"
_METRIC_RE = re.compile(
    rf"\b(?:val[_ ]?bpb|bpb|val[_ ]loss)\b\s*[:=]?\s*(?:{_NUM}\s*(?:{_ARROW}\s*{_NUM})?)?", re.IGNORECASE
)
# A dash that opens a report of the metric ("weight_decay 0.2->0.4 — val_bpb 2.014->1.960, subgroup gap 0.69->0.56"):
# the rest is how it went, every number in it a measurement, not a knob.
_METRIC_TAIL_RE = re.compile(r"\s(?:—|–|--|-)\s*(?:val[_ ]?bpb|bpb|val[_ ]loss)\b.*$", re.IGNORECASE | re.DOTALL)
_PREFIX_RE = re.compile(
    r"^\s*(?:\[?\s*(?:exp(?:eriment)?|run|trial|iter(?:ation)?|step|attempt)\s*[#-]?\s*\d+\s*\]?"
    r"\s*[:.)\]\-–—]\s*|#\d+\s*[:.)\-–—]\s*|\d+\s*[.)]\s+)",
    re.IGNORECASE,
)
# Starts only where a run of separators starts (the lookbehind): a match inside a run implies one at
# the run's start, which is found first anyway, so results are unchanged and a long run is scanned
# once instead of once per character. _crash_tail_start says where the search may begin.
_CRASH_TAIL_RE = re.compile(
    r"(?<![\s,;:(\[\-–—])[\s,;:(\[\-–—]*\b(?:crash(?:ed|es)?|oom(?:'?d)?|out\s+of\s+memory|diverged|"
    r"nan(?:'?d)?\s+loss|loss\s+(?:is\s+)?nan)\b[^()]*\)?\s*$",
    re.IGNORECASE,
)
_CRASH_LABEL_RE = re.compile(
    r"^\s*(?:crash(?:ed)?|failed)\s*[:\-–—]\s*(?:(?:cuda\s+)?oom|out\s+of\s+memory|nan(?:\s+loss)?)?"
    r"(?:\s*(?:[:\-–—]|\bwith\b|\bat\b))?\s*|^\s*(?:oom|nan)\s*[:\-–—]\s*",
    re.IGNORECASE,
)
_TAIL_RE = re.compile(  # (?<!\s): starts only where a run of spaces starts, as _CRASH_TAIL_RE (it ends at $)
    r"(?<!\s)\s*(?:(?:—|–|--|\s-\s)\s*(?:[a-z][\w-]*\s+){0,2}?|(?:;|,|:|=>|->|→)\s*)"  # a dash: a few words first
    r"(?:(?:slightly|much|a\s+bit|marginally|significantly|way|"
    r"clearly|no|not|tiny|small|big|large)\s+)*(?:worse|better|improv\w*|regress\w*|gain|hurt\w*|"
    r"help\w*|neutral|same|flat|noise|noisy|within\s+noise|kept|discarded|reverted|failed|crashed|"
    r"oom|nan|diverged|slower|faster|too\s+\w+)\b.*$",
    re.IGNORECASE,
)
# A verdict written straight after the change, with no separator ("LR=0.004 no improvement over LR=0.003"):
# "no" before these words removes nothing.
_BARE_VERDICT_RE = re.compile(r"(?<=\S)\s+(?:no|not)\s+(?:improv\w*|gains?|better|benefit\w*)\b.*$", re.IGNORECASE)
_SPACES_RE = re.compile(r"\s+")


def strip_outcome_notes(text: str) -> str:
    """``text`` without outcome notes: what the change was, not how it went.

    Removes ``exp3:``-style prefixes, parenthetical / bracketed notes that talk about the result
    ("(worse)", "(near miss, +0.003)", "[too slow]"), metric mentions ("val_bpb 1.26→1.27",
    "-0.01 bpb", "+0.003"), crash notes ("crashed: OOM") and verdict tails ("— worse than X",
    ", slightly better"). Parentheticals that describe the change ("(wider)", "(device batch 8)")
    stay. Never raises; returns a single-spaced, stripped string.
    """
    return _strip_cached(examined(text))


# A proposal written as a paragraph states its change first and argues for it after the first colon,
# dash, semicolon or sentence end ("Halve GPTQ Hessian damping 0.01→0.005: reduces Hinv bias ...").
PARAGRAPH_WORDS = 30  # a description longer than this is read as a paragraph
_HEAD_END_RE = re.compile(r":\s|\s[-–—]+\s|;\s|\.\s+(?=[A-Z(])")
_SENTENCE_END_RE = re.compile(r"\.\s+(?=[A-Z(])")
_HEAD_MIN_WORDS = 3


def is_paragraph(text: str | None) -> bool:
    """Whether a description is a paragraph (over :data:`PARAGRAPH_WORDS` words), read by its head."""
    return len(str(text or "").split()) > PARAGRAPH_WORDS


def proposal_parts(text: str) -> list[str]:
    """Where a description states its change, narrowest first: a short description whole; a paragraph
    (over :data:`PARAGRAPH_WORDS` words) by its head (up to the first colon, dash, semicolon or sentence
    end, at least three words), then its first sentence, then whole. The rationale after the head cites
    runs, current values and other knobs that are not moves (docs/novelty.md §2)."""
    if not is_paragraph(text):
        return [text]
    parts = [_head(text, _HEAD_END_RE), _head(text, _SENTENCE_END_RE), text]
    return [part for i, part in enumerate(parts) if part and part not in parts[:i]]


def proposal_core(text: str) -> str:
    """The narrowest part of a description that states its change (:func:`proposal_parts`)."""
    return proposal_parts(text)[0]


def _head(text: str, ends: re.Pattern) -> str | None:
    for end in ends.finditer(text):
        head = text[: end.start()]
        if len(head.split()) >= _HEAD_MIN_WORDS:
            return head
    return None


@lru_cache(maxsize=4096)
def _strip_cached(s: str) -> str:
    """:func:`strip_outcome_notes` proper (cached: the guard strips each description twice)."""
    s = s.lstrip()  # the anchored patterns below allow leading space, and the result is stripped anyway
    s = _PREFIX_RE.sub("", s, count=1)
    s = _CRASH_LABEL_RE.sub("", s, count=1)
    s = _drop_outcome_groups(s)
    s = _METRIC_TAIL_RE.sub("", s, count=1)
    s = _METRIC_RE.sub(" ", s)
    s = _DELTA_RE.sub(" ", s)
    tail = _CRASH_TAIL_RE.search(s, _crash_tail_start(s))
    if tail and tail.start() > 0:
        s = s[: tail.start()]
    s = _TAIL_RE.sub("", s)
    s = _BARE_VERDICT_RE.sub("", s)
    s = _SPACES_RE.sub(" ", s).strip()
    return s.strip(" ,;:-–—") or s


def _crash_tail_start(text: str) -> int:
    """Where a trailing crash note can begin: after the last bracket other than a final ``)`` (the note
    holds none), widened over the separators before it. Searching from here finds the same note as a
    search from 0, without rescanning the text to its end for every crash word."""
    core = text.rstrip()
    core = core[:-1] if core.endswith(")") else core
    start = max(core.rfind("("), core.rfind(")")) + 1
    while start > 0 and (text[start - 1].isspace() or text[start - 1] in ",;:([-–—"):
        start -= 1
    return start


def _drop_outcome_groups(text: str) -> str:
    """Remove top-level (...) / [...] groups whose content reads as an outcome note."""
    if "(" not in text and "[" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "([":
            end = _group_end(text, i)
            inner = text[i + 1 : end]
            if not _is_outcome_note(inner):
                out.append(text[i : end + 1])
            else:
                out.append(" ")
            i = end + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _group_end(text: str, start: int) -> int:
    """Index of the bracket closing the one at ``start`` (or the last index when unbalanced)."""
    depth = 0
    for j in range(start, len(text)):
        if text[j] in "([":
            depth += 1
        elif text[j] in ")]":
            depth -= 1
            if depth == 0:
                return j
    return len(text) - 1


def _is_outcome_note(inner: str) -> bool:
    return bool(_OUTCOME_RE.search(inner) or _DELTA_RE.search(inner) or _METRIC_RE.search(inner))


# --- tokens -------------------------------------------------------------------------------------

# Phrase aliases, applied to lower-cased NFKC text before splitting. Order matters: longer and more
# specific phrases first. Each becomes one concept token.
_PHRASES: tuple[tuple[str, str], ...] = (
    (r"squared[\s_-]?relu|relu[\s_-]?(?:\^|\*\*)?[\s_-]?2\b|relu[\s_-]?sq(?:uared?)?\b|relu-squared", "relu2"),
    (r"swi[\s_-]?glu|gated[\s_-]?(?:mlp|linear[\s_-]?units?)", "swiglu"),
    (r"\bswish\b|\bsilu\b", "silu"),
    (r"learning[\s_-]?rates?|\blrs?\b", "lr"),
    (r"warm[\s_-]?down|cool[\s_-]?down|\banneal(?:ing)?\b", "warmdown"),
    (r"warm[\s_-]?up", "warmup"),
    (r"newton[\s_-]?schulz|polar[\s_-]?express|\bns[\s_-]?steps\b", "newtonschulz"),
    (r"unembed(?:ding)?s?\b|\blm[\s_-]?head\b", "unembed"),
    (r"value[\s_-]?embed(?:ding)?s?\b|\bves?\b", "ve"),
    (r"\bembed(?:ding)?s?\b|\bwte\b", "embed"),
    # layers named by their attention window are where the windows are, not the depth
    (r"(?:short|local|sliding)[\s_-]?window(?:[\s_-]?attention)?[\s_-]?layers?\b|local[\s_-]?attention[\s_-]?layers?\b",
     "window"),
    (r"\bn[\s_-]?layers?\b|num[\s_-]?layers\b|\blayers?\b|\bdepth\b", "depth"),
    (r"batch[\s_-]?sizes?|\bbs\b|\bbatch(?:es)?\b", "batch"),
    (r"weight[\s_-]?decay|\bwd\b", "wd"),
    (r"rotary(?:[\s_-]?(?:position(?:al)?[\s_-]?)?embeddings?)?|\brope\b", "rope"),
    (r"qk[\s_-]?norm\w*|query[\s_-]?key[\s_-]?norm\w*", "qknorm"),
    (r"(?:logit[\s_-]?)?soft[\s_-]?cap\w*|logit[\s_-]?cap\w*", "softcap"),
    (r"sliding[\s_-]?windows?|window[\s_-]?pattern|attention[\s_-]?windows?|\bwindows?\b", "window"),
    (r"\b(?=[sl]*s)(?=[sl]*l)[sl]{3,8}\b", "window"),
    (r"head[\s_-]?dim\w*", "headdim"),
    (r"\bn[\s_-]?heads?\b|num[\s_-]?heads\b|\bheads?\b", "heads"),
    (r"seq(?:uence)?[\s_-]?len(?:gth)?|context[\s_-]?len(?:gth)?|max[\s_-]?seq[\s_-]?len", "seqlen"),
    (r"grad(?:ient)?[\s_-]?clip\w*", "gradclip"),
    (r"weight[\s_-]?tying|tied[\s_-]?(?:embeddings?|weights)|tie[\s_-]?embeddings?", "weighttying"),
    (r"\bbfloat16\b", "bf16"),
    (r"\battn\b", "attention"),
    (r"\bparams?\b|\bparameters?\b", "param"),
)
_PHRASE_RE = Alternation([(f"g{i}", pattern) for i, (pattern, _) in enumerate(_PHRASES)], start=r"\b(?=[a-z])")
_PHRASE_TOKENS = {f"g{i}": token for i, (_, token) in enumerate(_PHRASES)}

# Word-level aliases: directions and edit verbs collapse to one token each.
_WORD_ALIASES: dict[str, str] = {}
for _canon, _words in (
    ("up", "increase increased increases increasing raise raised raising higher more larger bigger longer "
           "wider widen widened grow boost double doubled triple deeper extend lengthen stronger heavier up"),
    ("down", "decrease decreased decreasing lower lowered lowering reduce reduced reducing smaller less fewer "
             "shorter shorten shortened narrower narrow shrink shrank shrunk halve halved cut shallower "
             "sharpen tighten tighter weaker lighter gentler down"),
    ("remove", "remove removed removing drop dropped disable disabled without delete deleted ablate no"),
    ("add", "add added adding enable enabled introduce introduced include"),
):
    for _word in _words.split():
        _WORD_ALIASES[_word] = _canon

def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


STOPWORDS = _wordset(
    "a an the of to for in on at by with from and or but is are be been it its this that these those as "
    "into than then so via per vs versus try trying tried test testing re check recheck rerun run again "
    "use using used set setting change changed changing exp experiment new also just only now still "
    "instead plain bit some like style would should could will may might we our my i"
)
_PROTECTED = _wordset(
    "relu2 swiglu silu lr warmdown warmup newtonschulz unembed ve embed depth batch wd rope qknorm softcap "
    "window headdim heads seqlen gradclip weighttying bf16 muon adamw mlp up down remove add param"
)
_WORD_RE = re.compile(r"[^\W_]+")


def tokens(text: str) -> list[str]:
    """Comparable tokens of ``text``: lower-cased, aliased, stemmed, no stopwords or bare numbers.

    Unicode-safe (NFKC first, so ``ReLU²`` is ``relu2``; letters of any script are kept). Order
    follows the text; duplicates are kept (callers that need a set make one).
    """
    s = unicodedata.normalize("NFKC", examined(text)).lower()
    s = _PHRASE_RE.sub(_phrase_token, s)
    out = []
    for word in _WORD_RE.findall(s):
        word = _WORD_ALIASES.get(word, word)
        if word in STOPWORDS or _is_number(word):
            continue
        out.append(word if word in _PROTECTED else stem(word))
    return out


def _phrase_token(match: re.Match) -> str:
    return f" {_PHRASE_TOKENS[match.lastgroup]} "


def _is_number(word: str) -> bool:
    """Bare numbers (and "4x"-style multipliers) carry no meaning without their knob."""
    return word.isdigit() or (word[:-1].isdigit() and word[-1] in "xk")


def stem(word: str) -> str:
    """A light suffix stripper: plural -s/-es/-ies, -ing, -ed, final -e (so share/shared/sharing meet)."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("eed"):
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


_FOLLOWUP_RE = re.compile(
    r"\b(?:further|again|even\s+(?:more|less|higher|lower|larger|smaller)|another\s+step|next\s+step|"
    r"follow[\s-]?up|continue\w*|extend\w*|push\w*|keep\s+(?:going|increasing|decreasing))\b",
    re.IGNORECASE,
)


def names_followup(text: str) -> bool:
    """Whether ``text`` says it continues an earlier change ("further", "again", "next step" ...)."""
    return bool(_FOLLOWUP_RE.search(examined(text)))


_BASELINE_RE = re.compile(r"\bbase[\s-]?line\b")
_FIRST_CLAUSE_RE = re.compile(r"[:;(\[,]|\s[-–—]+\s")


@lru_cache(maxsize=4096)
def is_baseline(text: str) -> bool:
    """Whether a description establishes a baseline (not an idea to compare against): its first clause
    names a baseline and nothing before that word changes anything ("baseline (no edits)", "Mac Mini
    baseline with eval batch 64", "re-baseline on new hardware", "apr20 baseline"). A baseline word
    elsewhere is not one: "raise depth to recover capacity lost in baseline", "... vs baseline 2.68",
    nor a technique's first run ("MoE baseline: AR=64": the change is MoE). Cached: a fold asks it
    of each run four times (role, tokens, idea key, operating point)."""
    clean = strip_outcome_notes(text).lower()
    if "base" not in clean:  # the baseline word is in the first clause, a part of ``clean``
        return False
    head = next((clause for clause in _FIRST_CLAUSE_RE.split(clean) if clause.strip()), "")
    found = _BASELINE_RE.search(head)
    if not found:
        return False
    before = head[: found.start()]
    return not (MENTIONS.search(before) or any(w in VERB_WORDS for w in _WORD_RE.findall(before)))


# Re-runs of the same configuration: re-verify / clean retest / no logic change / "log:" rows.
_RERUN_RE = re.compile(
    r"\bre[\s-]?(?:run|try|tried|verif(?:y|ied|ication)|test|produc(?:e|tion)|peat(?:ed)?\s+(?:run|baseline))\b|"
    r"\bclean\s+re[\s-]?(?:test|run|check)\b|\b(?:verification|confirmation)\s+(?:re-?)?run\b|"
    r"^\s*(?:final\s+)?verif(?:y|ication)\b(?!\s+(?:that|whether|if)\b)|\bno[\s-]+(?:logic|code|model)[\s-]+changes?\b|"
    r"\bnoise[\s-]+(?:floor|check|run)\b|\bsame\s+config(?:uration)?\b|\bseed\s+(?:check|variance)\b|^\s*log\s*:|"
    r"\b(?:another|different|new|other)\s+seed\b|\bseed\s*(?:from\s+)?[=:]?\s*\d+\b",
    re.IGNORECASE,
)


def is_rerun(text: str) -> bool:
    """Whether a description re-runs the current configuration. A paragraph is read by its first
    sentence: "SEED=42 confirm next" at the end of a lab note plans a later run, it is not this one (and
    at most 2,000 characters are read: the phrase comes early, and the cost stays bounded)."""
    text = str(text or "")[:2000]
    if is_paragraph(text):
        text = _head(text, _SENTENCE_END_RE) or text
    return bool(_RERUN_RE.search(text))


# --- knob aliases (used by changes.text_changes) ------------------------------------------------

# (canonical name, kind, pattern). Kinds: "num" numeric knob (a fact needs a value or a direction
# word), "comp" component that is present or absent (softcap, value embeddings ...). Alternatives are
# tried in this order at each position, so specific phrases come before generic ones ("muon lr" before
# "muon", "lr warmup" before "lr").
_S = r"[\s_-]*"
KNOB_ALIASES: tuple[tuple[str, str, str], ...] = (
    ("UNEMBEDDING_LR", "num", rf"(?:unembed(?:ding)?s?|unemb|lm{_S}head|output{_S}layer){_S}"
                              rf"(?:(?:muon|adamw?){_S})?(?:lr|learning{_S}rate)"),  # "lm_head Muon LR": the head's
    ("EMBEDDING_LR", "num", rf"(?:token{_S})?(?:embed(?:ding)?s?|emb|wte){_S}(?:lr|learning{_S}rate)"),
    ("SCALAR_LR", "num", rf"scalars?{_S}(?:lr|learning{_S}rate)"),
    ("MATRIX_LR", "num", rf"(?:matrix|matrices|muon){_S}(?:lr|learning{_S}rate)|mlr"),  # "MLR=0.034"
    ("FINAL_LR_FRAC", "num", rf"final{_S}lr{_S}frac(?:tion)?|min(?:imum)?{_S}lr{_S}(?:frac(?:tion)?|ratio)"),
    ("WARMDOWN_RATIO", "num",
     rf"(?:lr{_S})?(?:warm{_S}down|cool{_S}down|anneal(?:ing)?|decay{_S}phase)(?:{_S}(?:ratio|frac(?:tion)?))?"),
    ("WARMUP_RATIO", "num", rf"(?:lr{_S})?warm{_S}up(?:{_S}(?:ratio|frac(?:tion)?|steps))?"),
    ("WEIGHT_DECAY", "num", rf"(?:(?:matrix|muon|adam){_S})?weight{_S}decay|(?:muon{_S})?wd"),  # "MuonWD=0.04"
    ("ADAM_BETAS", "num", rf"adam{_S}betas?|beta[12]"),
    ("MUON_MOMENTUM", "num", rf"(?:muon{_S})?momentum|mom(?=\s*[=:]\s*0?\.\d)"),  # "mom=0.99"
    ("NS_STEPS", "num", rf"(?:newton{_S}schulz|polar{_S}express|ns)(?:{_S}(?:steps|iter(?:ation)?s?))|"
                        rf"muon{_S}backend{_S}steps|ns(?=\s*[=:]\s*\d)|"
                        rf"newton{_S}schulz|polar{_S}express"),
    ("EVAL_BATCH_SIZE", "num", rf"eval(?:uation)?{_S}batch(?:{_S}size)?"),
    ("DEVICE_BATCH_SIZE", "num", rf"(?:device|micro|per{_S}device){_S}(?:batch(?:{_S}size)?|bs)"),
    ("TOTAL_BATCH_SIZE", "num", rf"(?:total{_S})?batch(?:{_S}size)?|bs|tokens{_S}per{_S}(?:step|batch|update)"),
    ("DEPTH", "num", rf"depth|n{_S}layers?|num{_S}layers|layers"),
    ("ASPECT_RATIO", "num", rf"aspect{_S}ratio|(?:aspect|ar)(?=\s*[=:]?\s*\d)"),
    ("MODEL_DIM", "num", rf"model{_S}dim|n{_S}embd|d{_S}model|hidden{_S}(?:dim|size)|width"),
    ("HEAD_DIM", "num", rf"head{_S}dim(?:ension)?"),
    ("N_KV_HEAD", "num", rf"kv{_S}heads?"),
    ("N_HEAD", "num", rf"n{_S}heads?|num{_S}heads|heads"),
    # the hidden width of a gated or plain feed-forward block ("SwiGLU hidden 2x -> 3x", "FFN ratio 4")
    ("MLP_RATIO", "num", rf"mlp(?:{_S}(?:ratio|expansion|mult(?:iplier)?|hidden|width))?|"
                         rf"(?:swiglu|ge{_S}glu|glu|ffn|feed{_S}forward){_S}(?:ratio|expansion|mult(?:iplier)?|"
                         rf"hidden(?:{_S}(?:dim|size|width))?|width)|ffn|feed{_S}forward"),
    ("SEQ_LEN", "num",
     rf"seq(?:uence)?{_S}len(?:gth)?|context{_S}(?:len(?:gth)?|size|window)|max{_S}seq{_S}len|block{_S}size|"
     rf"context(?=\s*[:=]?\s*\d)"),
    ("KERNEL_SIZE", "num", rf"(?:conv(?:olution)?{_S})?kernel(?:{_S}size)?"),
    ("GRAD_CLIP", "num", rf"grad(?:ient)?{_S}(?:norm{_S})?clip(?:ping)?(?:{_S}norm)?|"
                         rf"clip(?:ping)?{_S}(?:the{_S})?grad(?:ient)?s?(?:{_S}(?:at|to){_S}(?:norm|max{_S}norm))?"),
    ("DROPOUT", "num", r"dropout"),
    ("ROPE_BASE", "num", rf"(?:rope|rotary){_S}(?:base|theta)"),
    ("VOCAB_SIZE", "num", rf"(?:tokenizer{_S})?vocab(?:ulary)?(?:{_S}size)?"),
    ("SOFTCAP", "comp", rf"(?:logits?{_S})?soft{_S}cap(?:ping)?|logits?{_S}cap(?:ping)?"),
    ("X0_LAMBDAS", "comp", rf"x0{_S}(?:lambdas?|params)(?:{_S}(?:skip|residual))?(?:{_S}connections?)?|"
                           rf"x0{_S}(?:skip|residual)(?:{_S}connections?)?|x0(?={_S}(?:adam{_S})?betas?[12]?\b)"),
    ("VALUE_EMBEDS", "comp", rf"value{_S}embed(?:ding)?s?|ves?"),
    ("QK_NORM", "comp", rf"qk{_S}norm(?:ali[sz]ation)?"),
    ("WEIGHT_TYING", "comp", rf"weight{_S}tying|"
                             rf"tied{_S}(?:(?:input{_S}/?{_S}output|in{_S}/?{_S}out){_S})?(?:embeddings?|weights)|"
                             rf"tie{_S}(?:the{_S})?(?:token{_S})?embeddings?(?:{_S}and{_S}unembedding(?:{_S}weights)?)?"),
    ("ROPE", "comp", rf"rope|rotary(?:{_S}(?:position(?:al)?{_S})?embeddings?)?"),
    ("LR", "num", rf"lr|learning{_S}rate"),
)

# Categorical knobs: each alternative names a value. (canonical name, value or None for the bare
# keyword, pattern). Checked before KNOB_ALIASES at the same position.
CATEGORY_ALIASES: tuple[tuple[str, str | None, str], ...] = (
    # a leaky ReLU squared, its slope in brackets or not ("LeakyReLU(0.5)^2"): an activation of its own
    ("ACTIVATION", "leaky_relu2", rf"leaky{_S}relu(?:\(\s*[\d.]+\s*\))?{_S}(?:(?:\^|\*\*){_S}2|²|squared|sq)"),
    ("ACTIVATION", "leaky_relu", rf"leaky{_S}relu"),
    ("ACTIVATION", "relu2", rf"squared{_S}relu|relu{_S}(?:\^|\*\*)?{_S}2|relu{_S}sq(?:uared?)?|relu²"),
    ("ACTIVATION", "swiglu", rf"swi{_S}glu(?:{_S}style)?|gated{_S}(?:mlp|linear{_S}units?)"),
    ("ACTIVATION", "geglu", rf"ge{_S}glu"),
    ("ACTIVATION", "reglu", rf"re{_S}glu"),
    ("ACTIVATION", "gelu", r"gelu"),
    ("ACTIVATION", "silu", r"silu|swish"),
    ("ACTIVATION", "relu3", rf"cubed{_S}relu|relu{_S}cubed|relu{_S}(?:\^|\*\*){_S}3|relu³"),
    ("ACTIVATION", "relu", r"relu"),
    ("ACTIVATION", None, rf"activation(?:{_S}function)?"),
    ("OPTIMIZER", "muon", rf"muon(?:{_S}optimi[sz]er)?"),
    ("OPTIMIZER", "adamw", r"adamw"),
    ("OPTIMIZER", "adam", r"adam"),
    ("OPTIMIZER", "sgd", r"sgd"),
    ("OPTIMIZER", "lion", r"lion"),
    ("OPTIMIZER", "shampoo", r"shampoo"),
    ("OPTIMIZER", "soap", r"soap"),
    ("PRECISION", "bf16", r"bf16|bfloat16"),
    ("PRECISION", "fp16", rf"fp16|float16|half{_S}precision"),
    ("PRECISION", "fp32", rf"fp32|float32|full{_S}precision"),
    ("PRECISION", "fp8", r"fp8|float8"),
    ("WINDOW_PATTERN", "L", rf"all{_S}(?:long|global|full)(?:{_S}attention)?(?:{_S}windows?)?"),
    # a two-letter pattern ("LS", "SL") only beside the word pattern or window, or an arrow: alone it is too
    # often a word ("... and LS", "ls=0.1" for label smoothing)
    ("WINDOW_PATTERN", "*", r"(?=[sl]*s)(?=[sl]*l)[sl]{3,8}(?:[\s_-]*pattern)?|(?:sl|ls)[\s_-]*(?:pattern|windows?)"
                            r"|(?<=->)(?:sl|ls)\b|(?<=-> )(?:sl|ls)\b|(?<=→)(?:sl|ls)\b|(?<=→ )(?:sl|ls)\b"
                            r"|\b(?:sl|ls)(?=\s*(?:->|→))"),
    ("WINDOW_PATTERN", None,
     rf"(?:short|local|sliding){_S}window(?:{_S}attention)?{_S}layers?|local{_S}attention{_S}layers?|"  # not depth
     rf"window{_S}pattern|sliding{_S}windows?|attention{_S}windows?|short{_S}windows?|window{_S}size|"
     rf"(?:full|global|long|local){_S}attention(?:{_S}layers?)?|windows?"),
)

# Edit verbs: word -> (meaning, factor). Meanings: up, down, remove, add, set, revert, keep.
VERB_WORDS: dict[str, tuple[str, float | None]] = {}
for _meaning, _factor, _words in (
    ("up", None, "increase increased increasing raise raised raising higher more larger bigger longer wider "
                 "widen widened grow grew boost boosted deeper extend extended lengthen lengthened bump bumped "
                 "stronger heavier up"),
    ("down", None, "decrease decreased decreasing lower lowered lowering reduce reduced reducing smaller less "
                   "fewer shorter shorten shortened narrower narrow shrink shrank shrunk cut shallower sharpen "
                   "sharpened tighten tightened tighter weaker lighter down"),
    ("up", 2.0, "double doubled doubling"),
    ("up", 3.0, "triple tripled"),
    ("up", 4.0, "quadruple quadrupled"),
    ("down", 0.5, "halve halved halving"),
    ("remove", None, "remove removed removing drop dropped disable disabled delete deleted ablate ablated "
                     "without no kill killed off"),
    ("add", None, "add added adding enable enabled introduce introduced include included restore restored "
                  "reinstate reinstated"),
    ("set", None, "set use used switch switched change try replace replaced swap"),
    ("revert", None, "revert reverted undo undid"),
    ("keep", None, "keep keeps keeping kept hold holds holding retain retains retaining preserve preserving "
                   "unchanged same already stays stay"),
):
    for _word in _words.split():
        VERB_WORDS[_word] = (_meaning, _factor)

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "sixteen": 16, "half": 0.5, "quarter": 0.25,
}


# --- knob mentions (read by changes.text_changes and is_baseline) --------------------------------

_B, _E = r"(?<![a-z0-9_])", r"(?![a-z0-9_])"  # an identifier (leaky_relu_slope) is one name


def _mentions() -> tuple[Alternation, dict[str, tuple[str, str, str | None]]]:
    """Every alias, in priority order, as one :class:`Alternation` (a knob mention starts at a word's
    first letter and ends at a word's end); and what each group names: (knob, kind, category value)."""
    parts, meta = [], {}
    for i, (name, kind, pattern) in enumerate((*knob_aliases(), *KNOB_ALIASES)):
        parts.append((f"k{i}", pattern))
        meta[f"k{i}"] = (name, kind, None)
    for i, (name, value, pattern) in enumerate((*category_aliases(), *CATEGORY_ALIASES)):
        parts.append((f"c{i}", pattern))
        meta[f"c{i}"] = (name, "cat", value)
    return Alternation(parts, start=f"{_B}(?=[a-z])", end=_E), meta


MENTIONS, MENTION_META = _mentions()
