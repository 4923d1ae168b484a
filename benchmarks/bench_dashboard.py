"""Time and size the HTML dashboard on synthetic stores of 2,000 and 10,000 runs.

    python benchmarks/bench_dashboard.py [--sizes 2000 10000] [--repeat 5] [--browser]

For each size a realistic store (tests/synthetic_store.py: frontier, discards, crashes, exploded
runs, hostile strings, loss-curve sidecars) is written to a temp dir, then measured:

* ``render, no insights``: gathering + rendering the page with the optional insight sections left out
  (the dashboard's own cost), median of ``--repeat``;
* ``insights fold (cold)``: the optional sections' source (issue 5's research fold) with no cache;
* ``render (warm)``: the full page, insights included, median of ``--repeat`` (their cache warm);
* ``report --all --html``: the whole CLI command as a separate process (python start-up, ledger fold
  from the history cache, report data, markdown and dashboard written);
* page size in bytes, and with ``--browser`` the time headless Chromium takes to load it.

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from synthetic_store import write_store  # noqa: E402

from memorylab_core.index.journal_index import JournalIndex  # noqa: E402
from memorylab_core.ledger.store import Store  # noqa: E402
from memorylab_core.render import dashboard  # noqa: E402
from memorylab_core.render.html_report import html_report, render_html  # noqa: E402


def _ms(action) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def _without_extras(history: JournalIndex) -> dashboard.Dashboard:
    """The dashboard with the optional insight sources switched off."""
    original = dashboard.optional_extras
    dashboard.optional_extras = lambda history, data: []
    try:
        return dashboard.build_dashboard(history, None)
    finally:
        dashboard.optional_extras = original


def cli_ms(root: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "memorylab.py"), "--home", str(root), "report", "--all",
                           "--html"], capture_output=True, text=True, cwd=root)
    if proc.returncode:
        raise SystemExit(f"report failed: {proc.stderr.strip()}")
    return (time.perf_counter() - start) * 1000


def browser_ms(path: Path) -> float | None:
    from headless import available, browser

    if available() is not None:
        return None
    with browser() as session:
        start = time.perf_counter()
        loaded = session.open(path)
        elapsed = (time.perf_counter() - start) * 1000
        if loaded.errors:
            raise SystemExit(f"console errors: {loaded.errors}")
    return elapsed


def bench(n: int, repeat: int, work: Path, with_browser: bool) -> list[tuple[str, str]]:
    root = write_store(work / f"store{n}", n, seed=n, hostile=True)
    history = JournalIndex.load(Store(root, root), quiet=True)
    own = [_ms(lambda: render_html(_without_extras(history))) for _ in range(repeat)]
    fold = _ms(lambda: dashboard._research_view(history))
    warm = [_ms(lambda: html_report(history, None)) for _ in range(repeat)]
    page = html_report(history, None)
    rows = [("render, no insights (median)", f"{statistics.median(own):.0f} ms"),
            ("insights fold (issue 5, cold cache)", f"{fold:.0f} ms"),
            ("render with insights (warm, median)", f"{statistics.median(warm):.0f} ms"),
            ("report --all --html (process)", f"{cli_ms(root):.0f} ms"),
            ("page size", f"{len(page.encode('utf-8')):,} B")]
    if with_browser:
        out = work / f"dash{n}.html"
        out.write_text(page, encoding="utf-8")
        loaded = browser_ms(out)
        rows.append(("chromium load", "n/a (no chromium)" if loaded is None else f"{loaded:.0f} ms"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--browser", action="store_true", help="also time the page load in headless Chromium")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]} · {os.cpu_count()} cores · {sys.platform}")
    print("| runs | measure | value |\n|---:|---|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            for name, value in bench(n, args.repeat, Path(tmp), args.browser):
                print(f"| {n:,} | {name} | {value} |", flush=True)


if __name__ == "__main__":
    main()
