"""Every number says what it is (issue 12, item 7): no ``None``, ``?`` or bad plurals in any text output.

A varied store is built through the CLI (runs and replicates with the fake trainer, logged crashes of
both classes, a near-miss, an imported ledger with an "(OOM)" crash row) and every text view is
rendered and searched for the leaks users reported.
"""

from __future__ import annotations

import html
import re

import pytest
from mlhelpers import FAKE, PY, commit_change, log_run, make_repo, ml

IMPORTED = ("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
            "a1b2c3d\t1.500000\t8.0\tkeep\tbaseline\n"
            "b2c3d4e\t0.000000\t0.0\tcrash\tdepth 16 (OOM)\n"
            "c3d4e5f\t1.490000\t8.1\tkeep\tmatrix lr 0.04 -> 0.05\n"
            "d4e5f6a\t1.495000\t8.1\tdiscard\tembedding lr up\n"
            "e5f6a7b\t1.496000\t8.1\tdiscard\tDEPTH=10 ASPECT_RATIO=86\n")
# Leaks seen in the field: an unknown value printed raw, a bad plural, an unlabelled or empty gain.
FORBIDDEN = (r"\bNone\b", r" \? ", r"\?→", r"\b1 experiments\b", r"\b1 runs\b", r"\b0 runs ago\b",
             r"\b1 kept runs\b", r"improved 0\.000000", r"\b1 crashes\b", r"unknown error", r"\(s\)",
             r"\b1 tries\b", r"\b1 files\b", r"\b1 (?:[a-z]+ ){1,2}runs\b", r"\bNone →")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("words")
    repo = make_repo(root / "repo")
    ledger = root / "other.tsv"
    ledger.write_text(IMPORTED)

    def cli(*args: str) -> str:
        res = ml(*args, cwd=repo)
        assert res.code in (0, 3), (args, res.err)
        return res.out + res.err

    out = {"run": cli("run", "--", PY, FAKE, "--val", "1.0"),
           "replicate": cli("replicate", "HEAD", "--n", "2", "--", PY, FAKE, "--val-by-seed",
                            '{"43": 1.002, "44": 0.998}')}
    commit_change(repo, "matrix lr up", matrix_lr=0.05)
    out["keep"] = cli("run", "--", PY, FAKE, "--val", "0.99")
    commit_change(repo, "depth 9", matrix_lr=0.05, depth=9)
    out["discard"] = cli("run", "--", PY, FAKE, "--val", "0.9905")
    out["oom"] = log_run(repo, "DEPTH 9 -> 16", "crash", crash="torch.OutOfMemoryError: CUDA out of memory").out
    out["shape"] = log_run(repo, "DEPTH 9 -> 7", "crash",
                           crash="RuntimeError: mat1 and mat2 shapes cannot be multiplied (4x384 and 512x512)").out
    out["import"] = cli("import", str(ledger))
    for args in (("status",), ("guide",), ("insights",), ("champion",), ("champion", "--arena", "all"),
                 ("check", "-d", "depth 9 -> 10"), ("list",), ("report", "--output", "-"),
                 ("report", "--arena", "all", "--output", "-"), ("status", "--arena", "other"),
                 ("guide", "--arena", "other"), ("insights", "--arena", "other")):
        out[" ".join(args)] = cli(*args)
    run_id = next(line.split()[0] for line in out["list"].splitlines()[1:] if line.strip())
    out["show"] = cli("show", run_id)
    out["show imported"] = cli("show", "e5f6a7b")  # changes with no known start: "DEPTH changed → 10", never None
    page = root / "all.html"
    cli("report", "--arena", "all", "--html", "--output", str(page))
    out["html"] = _visible_text(page.read_text())
    return out


def _visible_text(page: str) -> str:
    body = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "\n", body))


@pytest.mark.parametrize("pattern", FORBIDDEN)
def test_no_output_leaks(outputs, pattern):
    leaks = [(name, line.strip()) for name, text in outputs.items() for line in text.splitlines()
             if re.search(pattern, line)]
    assert not leaks, leaks[:5]


def test_no_bare_dash_for_an_unknown_value(outputs):
    for name in ("status", "guide", "insights", "show", "html"):
        bare = [line for line in outputs[name].splitlines() if line.strip() == "—" or line.rstrip().endswith(": —")]
        assert not bare, (name, bare[:3])


def test_numbers_are_labelled(outputs):
    assert "E[gain]" in outputs["guide"] and "keep probability" in outputs["insights"]
    assert "(score " in outputs["insights"]
    assert "reference 0.990000 (a single run)" in outputs["status"]
    assert "crash (oom)" in outputs["guide --arena other"] or "(OOM)" in outputs["guide --arena other"]
    assert "confirmed" in outputs["html"]
    assert "changes:     DEPTH changed → 10" in outputs["show imported"]


def test_the_dashboard_shows_one_section_per_arena(outputs):
    text = outputs["html"]
    assert "Arena other" in text and "Arena cpu/cpu" in text
