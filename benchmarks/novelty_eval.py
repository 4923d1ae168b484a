"""Evaluate the novelty guard on hand-labelled real ledgers, and time ``classify`` on big histories.

    python benchmarks/novelty_eval.py [--ledgers DIR | --dev]
                                      [--split tuning|held-out|held-out-2|held-out-3|held-out-4|tuning-5|
                                               held-out-5|held-out-6|held-out-7|held-out-8|held-out-9|
                                               held-out-10 ... held-out-41]
                                      [--labels FILE] [--sizes 1000 100000] [--no-timing] [--show-errors]

Each fixture ledger (an upstream results.tsv) is replayed in order: row i becomes a Run (no code
fingerprint; change signature from its description), and is first classified in mode ``explore``
against rows < i, then added to the index. Predictions are compared with the
reference labels (``labels.tsv`` beside the ledgers, conventions in ``LABELS.md`` there; a copy in
``tests/data/novelty_labels.tsv`` is the fallback) and summarised as per-class precision / recall and
a confusion matrix, overall and per ledger, plus how often the guard's matches include an earlier row
the label rests on. Timing builds synthetic histories and reports classify latency percentiles.

The three reference-labelled ledgers are *tuning* data: the guard's rules were adjusted after looking
at its errors on them, so their scores say nothing about unseen ledgers. ``--dev`` scores the
development set in ``tests/data/dev-ledgers`` (public ledgers labelled the same way, see its
README); its ``SOURCES.tsv`` splits it by ledger into a ``tuning``, a ``held-out``, ``held-out-2`` to ``held-out-4``,
a ``tuning-5``, ``held-out-5`` to ``held-out-27``, ``held-out-29`` to ``held-out-31``, ``held-out-34`` to
``held-out-36``, ``held-out-38``, ``held-out-40`` and ``held-out-41`` part (there is no ``held-out-28``,
``held-out-32``, ``held-out-33``, ``held-out-37`` or ``held-out-39``: their searches found nothing), and
``--split`` scores one part. Rows are read by the import's own code (status words, description column, crash
causes, roles, never-ran rows).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memorylab_core.index.records import run_from_record  # noqa: E402
from memorylab_core.ingest.importer import ImportSummary, assign_arenas, tsv_record  # noqa: E402
from memorylab_core.ingest.results_tsv import read_results_tsv  # noqa: E402
from memorylab_core.ledger.model import Run  # noqa: E402
from memorylab_core.novelty.guard import CLASSES, DEFAULT_THRESHOLD, NoveltyIndex, Proposal  # noqa: E402

LABELS = ROOT / "tests" / "data" / "novelty_labels.tsv"  # fallback copy of the reference labels
DEV_LEDGERS = ROOT / "tests" / "data" / "dev-ledgers"  # the development set: ledgers, labels.tsv, SOURCES.tsv
REFERENCE_LABELS_NAME = "labels.tsv"
SPLITS = ("tuning", "held-out", "held-out-2", "held-out-3", "held-out-4", "tuning-5", "held-out-5", "held-out-6",
          "held-out-7", "held-out-8", "held-out-9", "held-out-10", "held-out-11", "held-out-12", "held-out-13",
          "held-out-14", "held-out-15", "held-out-16", "held-out-17", "held-out-18", "held-out-19", "held-out-20",
          "held-out-21", "held-out-22", "held-out-23", "held-out-24", "held-out-25", "held-out-26", "held-out-27",
          "held-out-29", "held-out-30", "held-out-31", "held-out-34", "held-out-35",
          "held-out-36", "held-out-38", "held-out-40", "held-out-41")
TARGETS = {"repeat_failure_recall": 0.85, "repeat_failure_precision": 0.85, "novel_precision": 0.92}


def find_ledgers() -> Path | None:
    """The fixture ledgers: $MEMORYLAB_LEDGER_FIXTURES, or shared/fixtures/real-ledgers in or beside the repo."""
    candidates = [os.environ.get("MEMORYLAB_LEDGER_FIXTURES"), ROOT / "shared" / "fixtures" / "real-ledgers",
                  ROOT.parent / "shared" / "fixtures" / "real-ledgers"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir() and any(Path(candidate).glob("*.tsv")):
            return Path(candidate)
    return None


def ledger_runs(path: Path) -> list[Run]:
    """Rows of a results.tsv as Runs, read by the import's own code (``memorylab import``): its status
    words, description column, crash causes and never-ran rows, and its arenas and roles (the file's first
    row and each re-baseline start an arena as its baseline). Every data row is kept (an import leaves out
    a row logged twice; the labels number every row)."""
    rows, _ = read_results_tsv(path)
    summary, now = ImportSummary(), "9999-12-31T00:00:00.000000Z"
    records = [tsv_record(row, path, None, None, now, summary) for row in rows]
    assign_arenas(records, path, None, "auto", (), summary)
    return [run_from_record(record, i, 0) for i, record in enumerate(records)]


def replay(runs: list[Run], mode: str = "explore", threshold: float = DEFAULT_THRESHOLD) -> list:
    """Classify every run against the runs before it (ledger order). Returns the NoveltyResults."""
    index, results = NoveltyIndex(), []
    for run in runs:
        proposal = Proposal(description=run.description, commit=run.commit)
        results.append(index.classify(proposal, runs, mode=mode, threshold=threshold))
        index.add(run)
    return results


@dataclass
class Row:
    ledger: str
    row: int
    expected: str
    expected_rows: set[int]
    predicted: str
    matched_rows: list[int]
    description: str


def labels_for(ledger_dir: Path) -> Path:
    """The reference ``labels.tsv`` beside the ledgers when present, else the copy in tests/data."""
    reference = ledger_dir / REFERENCE_LABELS_NAME
    return reference if reference.is_file() else LABELS


def load_labels(path: Path = LABELS) -> dict[tuple[str, int], tuple[str, set[int]]]:
    """Labels keyed by (ledger stem, row). Reads the reference format (``file, row_index, label,
    matched_row``) and the older one (``ledger, row, expected_class, matched_rows``)."""
    with open(path, encoding="utf-8", newline="") as handle:
        out = {}
        for r in csv.DictReader(handle, delimiter="\t"):
            ledger = (r.get("file") or r.get("ledger") or "").removesuffix(".tsv")
            row = int(r.get("row_index") or r.get("row"))
            label = r.get("label") or r.get("expected_class")
            matched = r.get("matched_row") if "matched_row" in r else r.get("matched_rows")
            out[(ledger, row)] = (label, {int(x) for x in re.split(r"[;,/ ]+", matched or "") if x.strip()})
        return out


def split_files(ledger_dir: Path, split: str) -> set[str]:
    """Stems of the ledgers in one part (``tuning`` / ``held-out``) of a set's ``SOURCES.tsv``."""
    with open(ledger_dir / "SOURCES.tsv", encoding="utf-8", newline="") as handle:
        return {r["file"].removesuffix(".tsv") for r in csv.DictReader(handle, delimiter="\t") if r["split"] == split}


def evaluate(ledger_dir: Path, labels_path: Path | None = None, threshold: float = DEFAULT_THRESHOLD,
             only: set[str] | None = None) -> list[Row]:
    """Replay every labelled ledger (or those whose stem is in ``only``); one Row per labelled data row."""
    labels = load_labels(labels_path or labels_for(ledger_dir))
    if only is not None:
        labels = {key: value for key, value in labels.items() if key[0] in only}
    out = []
    for path in sorted(p for p in ledger_dir.glob("*.tsv") if p.name not in (REFERENCE_LABELS_NAME, "SOURCES.tsv")):
        if only is not None and path.stem not in only:
            continue
        runs = ledger_runs(path)
        for run, result in zip(runs, replay(runs, threshold=threshold), strict=True):
            key = (path.stem, run.index)
            if key not in labels:
                continue
            expected, rows = labels[key]
            out.append(Row(path.stem, run.index, expected, rows, result.classification,
                           [m.index for m in result.matches], run.description))
    missing = set(labels) - {(r.ledger, r.row) for r in out}
    if missing:
        raise SystemExit(f"labels without a ledger row: {sorted(missing)[:5]}")
    return out


def scores(rows: list[Row]) -> dict[str, dict[str, float]]:
    """Per-class precision, recall, support (expected count) and predicted count."""
    table = {}
    for cls in CLASSES:
        tp = sum(r.expected == cls and r.predicted == cls for r in rows)
        predicted = sum(r.predicted == cls for r in rows)
        support = sum(r.expected == cls for r in rows)
        table[cls] = {"precision": tp / predicted if predicted else float("nan"),
                      "recall": tp / support if support else float("nan"),
                      "support": support, "predicted": predicted}
    return table


def evidence_rate(rows: list[Row]) -> float:
    """Among correct non-novel predictions, how often the matches include a row the label rests on."""
    judged = [r for r in rows if r.expected == r.predicted and r.expected_rows]
    if not judged:
        return float("nan")
    return sum(bool(r.expected_rows & set(r.matched_rows)) for r in judged) / len(judged)


def target_metrics(rows: list[Row]) -> dict[str, float]:
    table = scores(rows)
    return {"repeat_failure_recall": table["repeat_failure"]["recall"],
            "repeat_failure_precision": table["repeat_failure"]["precision"],
            "novel_precision": table["novel"]["precision"]}


def format_table(title: str, rows: list[Row]) -> str:
    table = scores(rows)
    accuracy = sum(r.expected == r.predicted for r in rows) / len(rows) if rows else float("nan")
    lines = [f"### {title}  (rows {len(rows)}, accuracy {accuracy:.2f}, evidence {evidence_rate(rows):.2f})",
             "| class | precision | recall | expected | predicted |", "|---|---|---|---|---|"]
    for cls, s in table.items():
        lines.append(f"| {cls} | {_pct(s['precision'])} | {_pct(s['recall'])} | {s['support']} | {s['predicted']} |")
    return "\n".join(lines)


def confusion_table(rows: list[Row]) -> str:
    """Expected class (rows) × predicted class (columns), as a markdown table."""
    counts = Counter((r.expected, r.predicted) for r in rows)
    short = {"novel": "novel", "known_success": "known", "incremental_followup": "followup",
             "repeat_failure": "repeat", "duplicate_run": "dup"}
    lines = ["| expected \\ predicted | " + " | ".join(short[c] for c in CLASSES) + " |",
             "|---|" + "---|" * len(CLASSES)]
    for e in CLASSES:
        lines.append(f"| {e} | " + " | ".join(str(counts.get((e, p), 0)) for p in CLASSES) + " |")
    return "\n".join(lines)


def _pct(value: float) -> str:
    return "—" if value != value else f"{value:.2f}"


# --- timing ------------------------------------------------------------------------------------

_KNOB_PHRASES = ["matrix LR", "embedding LR", "unembedding LR", "scalar LR", "weight decay", "warmdown", "warmup",
                 "depth", "aspect ratio", "head_dim", "total batch", "device batch", "Muon momentum",
                 "Newton-Schulz steps", "MLP expansion", "grad clip", "softcap", "seq len"]
_FREE_WORDS = tuple(str.split(
               "conv mixer attention gating residual scalars x0 lambda bigram hash embeddings rotary base "
               "curriculum schedule zloss label smoothing dropout token shift smear gate ortho init zero "
               "init muon nesterov polar express tied embeddings swiglu relu2 gelu parallel block norm "
               "layernorm rmsnorm qk clip logit bias untie lm head value residual skip connection unet "
               "mixture experts router sparse dense local global window pattern sssl mtp multi token "
               "prediction distillation ema weights sliding ladder depth scaling"))


def synthetic_runs(n: int, seed: int = 0) -> list[Run]:
    """A varied history of ``n`` runs: knob moves in real phrasing, free-text ideas, crashes."""
    rng = random.Random(seed)
    runs = []
    for i in range(n):
        if rng.random() < 0.6:
            knob = rng.choice(_KNOB_PHRASES)
            a = round(rng.uniform(0.01, 2.0), 3)
            b = round(a * rng.choice((0.5, 0.8, 1.25, 2.0)), 3)
            desc = rng.choice([f"{knob} {a} -> {b}", f"increase {knob} to {b}", f"lower {knob} to {b}",
                               f"halve {knob}", f"{knob} {a}→{b} (worse)"])
        else:
            desc = " ".join(rng.sample(_FREE_WORDS, rng.randint(3, 7)))
        status = rng.choices(("keep", "discard", "crash"), (0.25, 0.65, 0.10))[0]
        runs.append(Run(index=i, offset=0, run_id=f"syn-{i}", timestamp=None, ts=None, status=status,
                        val_bpb=None if status == "crash" else 1.0 + rng.random() / 10, memory_gb=None,
                        description=desc, error_kind=rng.choice(("oom", "nan", None)) if status == "crash" else None,
                        code_fingerprint=f"{rng.getrandbits(64):016x}"))
    return runs


def timing_proposals(runs: list[Run], queries: int) -> list[Proposal]:
    """Half of them descriptions of earlier runs (knob moves, free text), half new free-text ideas (seeded)."""
    rng = random.Random(1)
    proposals = [Proposal(description=rng.choice(runs).description) for _ in range(queries // 2)]
    return proposals + [Proposal(description=" ".join(rng.sample(_FREE_WORDS, 5)))
                        for _ in range(queries - len(proposals))]


def time_classify(n: int, queries: int = 30) -> dict[str, float]:
    """Build an index of ``n`` synthetic runs, then time ``queries`` classify calls (ms)."""
    runs = synthetic_runs(n)
    start = time.perf_counter()
    index = NoveltyIndex()
    for run in runs:
        index.add(run)
    build = time.perf_counter() - start
    latencies = []
    for proposal in timing_proposals(runs, queries):
        t0 = time.perf_counter()
        index.classify(proposal, runs)
        latencies.append((time.perf_counter() - t0) * 1000)
    latencies.sort()
    return {"runs": n, "build_s": build, "median_ms": statistics.median(latencies),
            "p95_ms": latencies[int(0.95 * (len(latencies) - 1))], "max_ms": latencies[-1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ledgers", type=Path, default=None, help="folder of results.tsv fixtures")
    parser.add_argument("--dev", action="store_true", help="score the development set (tests/data/dev-ledgers)")
    parser.add_argument("--split", choices=SPLITS, help="score one part of the set (its SOURCES.tsv)")
    parser.add_argument("--labels", type=Path, default=None,
                        help="label file (default: labels.tsv beside the ledgers, else tests/data)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 100_000])
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--show-errors", action="store_true", help="list rows where the guard disagrees")
    args = parser.parse_args(argv)
    ledger_dir = DEV_LEDGERS if args.dev else args.ledgers or find_ledgers()
    if ledger_dir is None:
        print("fixture ledgers not found (set MEMORYLAB_LEDGER_FIXTURES)", file=sys.stderr)
        return 1
    if args.split and not (ledger_dir / "SOURCES.tsv").is_file():
        print(f"--split needs a SOURCES.tsv in {ledger_dir}", file=sys.stderr)
        return 1
    only = split_files(ledger_dir, args.split) if args.split else None
    rows = evaluate(ledger_dir, args.labels, args.threshold, only)
    print(format_table("all ledgers", rows))
    for ledger in sorted({r.ledger for r in rows}):
        print()
        print(format_table(ledger, [r for r in rows if r.ledger == ledger]))
    metrics = target_metrics(rows)
    print("\ntargets: " + ", ".join(f"{k} {metrics[k]:.2f} (≥ {v})" for k, v in TARGETS.items()))
    print("\nconfusion matrix (all ledgers):\n" + confusion_table(rows))
    if args.show_errors:
        for r in rows:
            if r.expected != r.predicted:
                print(f"  {r.ledger}/{r.row}: expected {r.expected} {sorted(r.expected_rows)}, got {r.predicted} "
                      f"{r.matched_rows[:3]}  | {r.description}")
    if not args.no_timing:
        print("\n| history runs | index build (s) | classify median (ms) | p95 (ms) | max (ms) |")
        print("|---|---|---|---|---|")
        for n in args.sizes:
            t = time_classify(n)
            print(f"| {n} | {t['build_s']:.2f} | {t['median_ms']:.1f} | {t['p95_ms']:.1f} | {t['max_ms']:.1f} |")
    return 0 if all(metrics[k] >= v for k, v in TARGETS.items()) else 2


if __name__ == "__main__":
    sys.exit(main())
