"""The dashboard in a real browser (headless Chromium via Selenium + the system chromedriver).

Each page is produced by the CLI (``memorylab report --all --html``), opened from disk and checked for:
no console errors, no network request but the file itself, one chart mark per run, hostile ledger text
that did not execute (no dialog, no injected element, no global set), working sort/filter, a readable
page without JavaScript, dark mode and print styles. Screenshots go to ``artifacts/screenshots/``.
Skipped when chromium, chromedriver or selenium is missing.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from headless import available, browser
from mlhelpers import PROJECT, REAL_LEDGERS, ml
from synthetic_store import HOSTILE, write_store

pytestmark = [pytest.mark.browser, pytest.mark.skipif(available() is not None, reason=str(available()))]

SHOTS = PROJECT / "artifacts" / "screenshots"
# Real imported history in one store: the shared ledgers when they sit beside the clone, else three public
# ledgers of the novelty development set, so a clone with nothing beside it renders real history too.
COMBINED = REAL_LEDGERS or sorted((PROJECT / "tests" / "data" / "dev-ledgers").glob("0[5-7]_*.tsv"))

INJECTED = """return {
  pwned: window.__pwned === undefined ? null : String(window.__pwned),
  scripts: document.scripts.length,
  styles: document.querySelectorAll('style').length,
  injected: document.querySelectorAll('img, iframe, object, embed, b, form, link, base, meta[http-equiv=refresh]')
    .length,
  handlers: Array.prototype.filter.call(document.querySelectorAll('*'), function (el) {
    return Array.prototype.some.call(el.attributes, function (a) { return a.name.indexOf('on') === 0; });
  }).length,
  bodyVisible: getComputedStyle(document.body).display !== 'none'
};"""


@pytest.fixture(scope="module")
def chrome():
    with browser(width=1280, height=900) as session:
        yield session


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, tuple[Path, int]]:
    """name -> (dashboard file, runs in the ledger), all written by the CLI."""
    work = tmp_path_factory.mktemp("dashboards")
    out = {}
    empty = work / "empty"
    assert ml("--home", str(empty), "init").code == 0
    out["empty"] = (_report(empty), 0)
    for ledger in REAL_LEDGERS:
        root = work / ledger.stem
        assert ml("--home", str(root), "import", str(ledger)).code == 0
        out[ledger.stem] = (_report(root), _count(root))
    combined = work / "real-combined"
    for ledger in COMBINED:
        assert ml("--home", str(combined), "import", str(ledger), "--family", ledger.stem).code == 0
    out["real-combined"] = (_report(combined), _count(combined))
    synthetic = write_store(work / "synthetic-2000", 2000, seed=11, hostile=True)
    out["synthetic-2000"] = (_report(synthetic), 2000)
    return out


def _report(root: Path) -> Path:
    result = ml("--home", str(root), "report", "--all", "--html")
    assert result.code == 0, result.err
    return root / "reports" / "latest.html"


def _count(root: Path) -> int:
    """Runs of the arena the page shows: the newest one (imports split at re-baselines; arenas never pool)."""
    from memorylab_core.index.journal_index import JournalIndex
    from memorylab_core.ledger.store import Store

    history = JournalIndex.load(Store(root, root), quiet=True)
    return history.arena_count(history.arenas()[0][0])


def _open_and_check(chrome, path: Path, runs: int) -> None:
    loaded = chrome.open(path)
    assert loaded.errors == [], loaded.errors
    assert loaded.requests == [path.resolve().as_uri()], loaded.requests
    assert chrome.alert_text() is None
    assert chrome.js("return document.querySelectorAll('#progress .mark').length") == runs
    state = chrome.js(INJECTED)
    assert state == {"pwned": None, "scripts": 2, "styles": 1, "injected": 0, "handlers": 0, "bodyVisible": True}
    broken = chrome.js("return Array.prototype.filter.call(document.querySelectorAll('a[href^=\"#\"]'),"
                       "function (a) { return !document.getElementById(a.getAttribute('href').slice(1)); }).length")
    assert broken == 0


@pytest.mark.parametrize("name", ["empty", *[p.stem for p in REAL_LEDGERS], "real-combined", "synthetic-2000"])
def test_dashboard_loads_clean(chrome, pages, name):
    path, runs = pages[name]
    _open_and_check(chrome, path, runs)
    chrome.screenshot(SHOTS / f"dashboard-{name}.png")
    if name == "synthetic-2000":
        _hostile_text_is_shown_not_run(chrome)


def _hostile_text_is_shown_not_run(chrome) -> None:
    """The synthetic store carries HOSTILE payloads: they must read as text everywhere."""
    text = chrome.js("return document.body.innerText")
    for payload in HOSTILE[:4]:
        assert payload in text
    island = json.loads(chrome.js("return document.getElementById('memorylab-data').textContent"))
    assert island["champion"]["description"].startswith(HOSTILE[0])
    assert island["recent"][0]["description"].startswith(HOSTILE[1])
    titles = chrome.js("return Array.prototype.map.call(document.querySelectorAll('#progress title'),"
                       "function (t) { return t.textContent; }).join('\\n')")
    assert HOSTILE[0] in titles


def test_runs_table_sorts_and_filters(chrome, pages):
    path, _ = pages["synthetic-2000"]
    chrome.open(path)
    assert chrome.js("return document.getElementById('runs-controls').hidden") is False
    crashes = chrome.js("return document.querySelectorAll('#runs-table tbody tr[data-status=crash]').length")
    chrome.js("var s = document.getElementById('runs-status'); s.value = 'crash';"
              "s.dispatchEvent(new Event('change'));")
    visible = chrome.js("return Array.prototype.filter.call(document.querySelectorAll('#runs-table tbody tr'),"
                        "function (r) { return !r.hidden; }).length")
    assert visible == crashes > 0
    chrome.js("var s = document.getElementById('runs-status'); s.value = '';"
              "s.dispatchEvent(new Event('change'));")
    chrome.js("document.querySelectorAll('#runs-table thead th')[3].querySelector('button').click()")
    values = chrome.js("return Array.prototype.slice.call(document.querySelectorAll('#runs-table tbody tr'), 0, 50)"
                       ".map(function (r) { return parseFloat(r.cells[3].textContent); })")
    assert values == sorted(values) and all(v == v for v in values)  # ascending, no blanks first
    chrome.js("var q = document.getElementById('runs-query'); q.value = 'alert(1)';"
              "q.dispatchEvent(new Event('input'));")
    shown = chrome.js("return document.getElementById('runs-shown').textContent")
    assert shown.startswith("1 of ") or shown.startswith("2 of ")


def test_dark_mode_and_print_styles(chrome, pages):
    path, _ = pages[REAL_LEDGERS[0].stem] if REAL_LEDGERS else pages["synthetic-2000"]
    chrome.driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                  {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    chrome.open(path)
    dark = chrome.js("return getComputedStyle(document.body).backgroundColor")
    chrome.screenshot(SHOTS / "dashboard-dark.png")
    chrome.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print", "features": []})
    printed = chrome.js("return [getComputedStyle(document.body).backgroundColor,"
                        "getComputedStyle(document.querySelector('nav.toc')).display]")
    pdf = chrome.driver.execute_cdp_cmd("Page.printToPDF", {"printBackground": True})
    chrome.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "", "features": []})
    assert dark == "rgb(14, 17, 23)"
    assert printed == ["rgb(255, 255, 255)", "none"]
    data = base64.b64decode(pdf["data"])
    assert data.startswith(b"%PDF") and len(data) > 10_000
    (SHOTS / "dashboard-print.pdf").write_bytes(data)


def test_readable_without_javascript(chrome, pages):
    path, runs = pages["synthetic-2000"]
    chrome.driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        loaded = chrome.open(path)
        assert loaded.errors == []
        driver = chrome.driver
        assert driver.find_elements("css selector", "#runs-table th button") == []  # the page script did not run
        assert driver.find_element("id", "runs-controls").is_displayed() is False
        assert len(driver.find_elements("css selector", "#runs-table tbody tr")) == runs
        assert driver.find_element("id", "champion").text.startswith("Champion")
        chrome.screenshot(SHOTS / "dashboard-nojs.png", full_page=False)
    finally:
        chrome.driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})


@pytest.mark.parametrize("width", [375, 1280])
def test_no_card_spills_out_of_the_page_or_under_another(pages, width):
    """Wide tables and long descriptions scroll inside their own card: the page is never wider than the window
    (375 px: a phone), and no card's content runs under its neighbour (the board beside the failure clusters)."""
    path, _ = pages["synthetic-2000"]
    with browser(width=max(width, 800), height=900) as session:
        # a desktop window is at least ~500 px wide: a phone's width is emulated, as Chrome's device mode does
        session.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                       {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 800})
        session.open(path)
        assert session.js("return document.documentElement.clientWidth") == width
        page_width = session.js("return document.documentElement.scrollWidth")
        spills = session.js("return Array.prototype.filter.call(document.querySelectorAll('.card'), function (c) {"
                            " var r = c.getBoundingClientRect(); return r.right > document.documentElement.clientWidth"
                            " + 1; }).length")
        session.screenshot(SHOTS / f"dashboard-synthetic-{width}px.png")
    assert page_width <= width and spills == 0, (page_width, spills)
