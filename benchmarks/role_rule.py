"""Measure how ``import`` finds baselines: the structural rule against the keyword rule it replaced.

    python benchmarks/role_rule.py [LEDGER ...] [--truth FILE:ROW,ROW ...]

Each ledger (an upstream results.tsv, or a MemoryLab / fork ``experiments.jsonl``) is imported into a
fresh temporary store through the CLI, and the role ``list --json`` reports for each row is compared
with the reference: a row is a baseline when it is the first row of its file or a re-baseline (the
current configuration measured again on new hardware, a new budget or new data), judged by reading
the rows. The keyword rule it replaced ("baseline" anywhere in the description makes a baseline) is
scored on the same rows. Without arguments it reads the shared fixtures (../shared/fixtures), whose
reference baselines are listed in :data:`TRUTH`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memorylab_core.cli import main  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"
# 0-based data rows that are baselines, judged by reading every row of these files: the first row of
# each, and BobMolt's row 5 ("Mac Mini baseline with final eval batch size 64": the best config re-run
# on new hardware, labelled a re-baseline in real-ledgers/labels.tsv).
TRUTH = {"06_isque03__autoresearch-mlx.tsv": {0}, "08_BobMolt__autoresearch-mlx.tsv": {0, 5},
         "09_Bervaso__autoresearch-macos.tsv": {0}, "results.tsv": {0}, "experiments.jsonl": {0}}
_WORD = re.compile(r"\bbase[\s-]?line\b", re.IGNORECASE)


def _cli(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        main(list(args))
    return out.getvalue()


def roles(path: Path) -> list[dict]:
    """The rows of ``path`` as ``list --json`` shows them after an import into an empty store, in file order."""
    with tempfile.TemporaryDirectory() as home:
        _cli("--home", home, "import", str(path))
        return json.loads(_cli("--home", home, "list", "--limit", "1000000", "--json"))[::-1]


def score(path: Path, truth: set[int]) -> dict:
    """Hits and misses of both rules on one ledger."""
    rows = roles(path)
    structural = {i for i, r in enumerate(rows) if r["role"] == "baseline"}
    keyword = {i for i, r in enumerate(rows) if i == 0 or _WORD.search(r["description"])}
    mentions = sum(1 for r in rows if _WORD.search(r["description"]))
    return {"file": path.name, "rows": len(rows), "mention_baseline": mentions, "truth": sorted(truth),
            "arenas": len({r["arena"] for r in rows}),
            **{f"{name}_{kind}": value for name, found in (("structural", structural), ("keyword", keyword))
               for kind, value in (("hits", len(found & truth)), ("false", sorted(found - truth)),
                                   ("missed", sorted(truth - found)))}}


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ledgers", nargs="*", type=Path)
    parser.add_argument("--truth", nargs="*", default=[], help="FILE:ROW,ROW baselines of extra ledgers")
    args = parser.parse_args()
    truth = dict(TRUTH)
    for item in args.truth:
        name, _, rows = item.partition(":")
        truth[name] = {int(r) for r in rows.split(",") if r}
    ledgers = args.ledgers or [*sorted((SHARED / "real-ledgers").glob("0*.tsv")),
                               SHARED / "fork-store" / "results.tsv", SHARED / "fork-store" / "experiments.jsonl"]
    totals = {"structural": [0, 0, 0], "keyword": [0, 0, 0]}
    for path in ledgers:
        result = score(path, truth.get(path.name, {0}))
        print(json.dumps(result))
        for name in totals:
            hits, false, missed = (result[f"{name}_{k}"] for k in ("hits", "false", "missed"))
            totals[name] = [totals[name][0] + hits, totals[name][1] + len(false), totals[name][2] + len(missed)]
    for name, (hits, false, missed) in totals.items():
        print(f"{name}: {hits} baselines found, {false} false baselines, {missed} missed")


if __name__ == "__main__":
    main_cli()
