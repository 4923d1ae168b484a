"""How far two labellers agree: score a second labelling of the development set against the first.

    python benchmarks/label_agreement.py [--first FILE] [--second FILE] [--show-disagreements]

Both files use the reference format (``file, row_index, label, matched_row``; see
tests/data/dev-ledgers/README.md). The first labels are the reference and the second labeller is scored
against them exactly as the guard is scored (``benchmarks/novelty_eval.py``): per-class precision and
recall, a confusion matrix, and the issue's three targets (repeat_failure precision and recall, novel
precision), per ledger and pooled. Only rows both files label are compared.

Why: a guard is judged against one labeller. When two careful labellers following the same conventions
agree only to some level, no guard can be expected to score above it against either of them; this
script measures that level.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from novelty_eval import (  # noqa: E402 (the benchmark folder is put on the path above)
    DEV_LEDGERS,
    TARGETS,
    Row,
    confusion_table,
    format_table,
    load_labels,
    target_metrics,
)

SECOND_LABELS = DEV_LEDGERS / "second" / "labels.tsv"  # a folder, so the ledger glob never reads it


def paired_rows(first: Path, second: Path) -> list[Row]:
    """One Row per (ledger, row) both files label: the first labels as expected, the second as predicted."""
    reference, other = load_labels(first), load_labels(second)
    rows = []
    for key in sorted(reference.keys() & other.keys()):
        (expected, expected_rows), (predicted, predicted_rows) = reference[key], other[key]
        rows.append(Row(key[0], key[1], expected, expected_rows, predicted, sorted(predicted_rows), ""))
    return rows


def report(rows: list[Row], show_disagreements: bool = False) -> str:
    """Tables per ledger and pooled, the targets line, and optionally every disagreement."""
    parts = [format_table("all rows both labellings cover", rows), "", "confusion matrix (first \\ second):",
             confusion_table(rows), ""]
    for ledger in sorted({r.ledger for r in rows}):
        parts += [format_table(ledger, [r for r in rows if r.ledger == ledger]), ""]
    metrics = target_metrics(rows)
    parts.append("agreement on the guard's targets: " + ", ".join(
        f"{name} {value:.2f} (guard target ≥ {TARGETS[name]:.2f})" for name, value in metrics.items()))
    for ledger in sorted({r.ledger for r in rows}):
        ledger_metrics = target_metrics([r for r in rows if r.ledger == ledger])
        parts.append(f"  {ledger}: " + ", ".join(f"{name} {value:.2f}" for name, value in ledger_metrics.items()))
    if show_disagreements:
        parts += ["", "disagreements:"]
        parts += [f"  {r.ledger}/{r.row}: first {r.expected} {sorted(r.expected_rows)}, "
                  f"second {r.predicted} {r.matched_rows}" for r in rows if r.expected != r.predicted]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--first", type=Path, default=DEV_LEDGERS / "labels.tsv", help="reference labels")
    parser.add_argument("--second", type=Path, default=SECOND_LABELS, help="the second labelling")
    parser.add_argument("--show-disagreements", action="store_true")
    args = parser.parse_args(argv)
    for path in (args.first, args.second):
        if not path.is_file():
            print(f"error: no label file at {path}", file=sys.stderr)
            return 2
    rows = paired_rows(args.first, args.second)
    if not rows:
        print("error: the two files label no row in common", file=sys.stderr)
        return 2
    print(report(rows, args.show_disagreements))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
