"""The HTML dashboard without a browser: escaping, page structure, chart marks and scales, the CLI,
the optional insights hook, and render time / size at 2,000 runs."""

from __future__ import annotations

import json
import sys
import time
import types
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from mlhelpers import REAL_LEDGERS, ml
from synthetic_store import HOSTILE, write_store

from memorylab_core.index.journal_index import JournalIndex
from memorylab_core.ledger.model import Run
from memorylab_core.ledger.store import Store
from memorylab_core.render import charts, svg
from memorylab_core.render.html_assets import JS
from memorylab_core.render.html_report import html_report
from memorylab_core.render.htmltext import clip, esc, script_json
from memorylab_core.render.report import report_data

ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "main", "header", "h1", "h2", "h3", "span", "nav",
                "a", "section", "div", "p", "strong", "code", "dl", "dt", "dd", "table", "thead", "tbody", "tr",
                "th", "td", "svg", "rect", "text", "line", "path", "circle", "g", "clippath", "ul", "li", "footer",
                "script", "input", "select", "option"}


class Page(HTMLParser):
    """A parsed page: tag counts, every attribute, script blocks, visible text, progress-chart marks."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: Counter = Counter()
        self.attrs: list[tuple[str, str, str | None]] = []
        self.scripts: list[list[str]] = []
        self.text: list[str] = []
        self.marks: Counter = Counter()
        self._script = False
        self._in_progress = 0
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags[tag] += 1
        self.attrs += [(tag, k, v) for k, v in attrs]
        values = dict(attrs)
        if tag == "script":
            self._script = True
            self.scripts.append([values.get("type") or "", ""])
        if tag == "svg" and values.get("id") == "progress":
            self._in_progress = 1
        elif self._in_progress and tag == "svg":
            self._in_progress += 1
        if self._in_progress and (values.get("class") or "").startswith("mark "):
            self.marks[values["class"].split()[1]] += 1

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = False
        if tag == "svg" and self._in_progress:
            self._in_progress -= 1

    def handle_data(self, data):
        if self._script:
            self.scripts[-1][1] += data
        else:
            self.text.append(data)

    @property
    def body_text(self) -> str:
        return "".join(self.text)


def load(root: Path) -> JournalIndex:
    return JournalIndex.load(Store(root, root), use_cache=False, quiet=True)


def run(index: int, status: str, val: float | None, description: str = "idea") -> Run:
    return Run(index=index, offset=index, run_id=f"r{index}", timestamp=None, ts=None, status=status, val_bpb=val,
               memory_gb=None, description=description)


def assert_safe(page_text: str) -> Page:
    """The structural safety contract of every rendered page."""
    page = Page(page_text)
    assert set(page.tags) <= ALLOWED_TAGS, set(page.tags) - ALLOWED_TAGS
    assert page.tags["style"] == 1 and page.tags["script"] == 2
    assert [kind for kind, _ in page.scripts] == ["application/json", ""]
    assert page.scripts[1][1] == JS
    for tag, name, value in page.attrs:
        assert not name.startswith("on"), (tag, name, value)
        assert name not in ("src", "srcdoc", "action", "formaction"), (tag, name)
        if name == "href":
            assert (value or "").startswith("#"), value
    assert "http:" not in page_text and "https:" not in page_text
    return page


# -- escaping ------------------------------------------------------------------------------------
def test_esc_neutralises_markup_quotes_and_control_characters():
    assert esc('<a href="x">&\'</a>') == "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;&lt;/a&gt;"
    assert esc("a\x00b\x1bc\td\ne") == "a\\x00b\\x1bc\td\ne"  # shown as escapes, as the terminal shows them
    assert esc("bell\x07 \u202eevil\u202c") == "bell\\x07 \\u202eevil\\u202c"  # no reordering what a reader sees
    assert esc(None) == "" and esc(1.5) == "1.5"
    assert clip("  many   words here ", 9) == "many wor…" and clip("short", 9) == "short"


def test_script_json_cannot_break_out_and_round_trips():
    data = {"d": "</script><script>alert(1)</script><!-- & \u2028\u2029", "n": [1.5, None, float("nan")]}
    text = script_json(data)
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text
    assert json.loads(text) == {"d": data["d"], "n": [1.5, None, None]}


# -- scales and marks ----------------------------------------------------------------------------
def test_nice_ticks_scales_and_decimals():
    assert svg.nice_ticks(0.951, 1.032, 5) == [0.96, 0.98, 1.0, 1.02]
    assert svg.decimals_for(0.025) == 3 and svg.decimals_for(0.02) == 2 and svg.decimals_for(5) == 0
    scale = svg.Scale(0, 10, 100, 0)
    assert scale(2.5) == 75 and scale.clamp(20) == 0 and scale.clamp(-5) == 100
    assert svg.step_line([(0, 10), (5, 4)], 9) == "M0 10H5V4H9"


def test_robust_extent_keeps_outliers_from_squashing_the_scale():
    values = [1.0 + i * 0.0005 for i in range(100)] + [7.0]
    lo, hi = svg.robust_extent(values, must_include=[1.02])
    assert lo < 1.0 and 1.02 < hi < 1.2


def test_progress_chart_one_mark_per_run_shape_by_status():
    runs = [run(i, ("keep", "discard", "discard", "crash")[i % 4], None if i % 4 == 3 else 1 - i * 1e-5)
            for i in range(2000)]
    page = Page(charts.progress_chart(runs))
    assert sum(page.marks.values()) == 2000
    assert page.marks == Counter(keep=500, discard=1000, crash=500)
    assert page.tags["circle"] >= 500 and page.tags["rect"] >= 1000  # keep ● circles, discard ■ squares


def test_crashes_and_outliers_do_not_change_the_value_axis():
    base = [run(i, "keep" if i % 5 == 0 else "discard", 1.0 - i * 0.001 + (i % 3) * 0.002) for i in range(40)]
    crashes = base + [run(40 + i, "crash", None) for i in range(30)]
    with_noise = crashes + [run(70, "discard", 6.5)]
    assert charts.off_scale(crashes)[1] == charts.off_scale(base)[1]  # crashes live on their own band
    hi2 = charts.off_scale(with_noise)[1]
    assert hi2 < 1.1  # the exploded run is pinned to the top edge, not plotted to scale
    count, limit, worst = charts.off_scale(with_noise)
    assert count == 1 and worst == 6.5 and limit == pytest.approx(hi2)
    chart = charts.progress_chart(with_noise)
    assert chart.count('class="band"') == 1 and chart.count('class="mark crash"') == 30


def test_frontier_starts_from_the_window_start_champion():
    runs = [run(10, "keep", 0.99), run(11, "keep", 0.97), run(12, "keep", 0.98)]
    front = charts.frontier(runs, start=0.985)
    assert [value for _, value in front.steps] == [0.97]
    chart = charts.progress_chart(runs, start=0.985)
    assert "★ champion 0.9700" in chart


@pytest.mark.parametrize("runs", [
    [run(0, "keep", 1.0)],
    [run(0, "crash", None), run(1, "crash", None)],
    [run(5, "discard", 1.2), run(6, "discard", 1.2)],
], ids=["one-keep", "only-crashes", "flat-discards"])
def test_degenerate_runs_still_chart(runs):
    page = Page(charts.progress_chart(runs))
    assert sum(page.marks.values()) == len(runs)
    count, top, _ = charts.off_scale(runs)
    assert count == 0 and top is not None


# -- pages ---------------------------------------------------------------------------------------
def test_empty_store_page(tmp_path):
    root = tmp_path / "store"
    assert ml("--home", str(root), "init").code == 0
    page = assert_safe(html_report(load(root), None))
    assert "No champion yet: the next kept run is this arena's baseline" in page.body_text  # champion_headline
    assert "No runs in this window" in page.body_text
    assert sum(page.marks.values()) == 0


def test_hostile_store_page_is_inert(tmp_path):
    root = write_store(tmp_path / "store", 300, seed=3, hostile=True)
    history = load(root)
    text = html_report(history, None)
    page = assert_safe(text)
    assert "b" not in page.tags and "img" not in page.tags
    for payload in HOSTILE[:4]:
        assert payload in page.body_text  # shown as text, verbatim
    island = json.loads(page.scripts[0][1])
    assert island == json.loads(json.dumps(report_data(history, None, _now(island)), default=str))
    assert sum(page.marks.values()) == 300


def _now(island: dict):
    from datetime import datetime, timezone

    return datetime.strptime(island["generated_utc"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


@pytest.mark.parametrize("ledger", REAL_LEDGERS, ids=lambda p: p.stem)
def test_real_ledger_pages(tmp_path, ledger):
    root = tmp_path / "store"
    imported = ml("--home", str(root), "import", str(ledger), "--json")
    assert imported.code == 0, imported.err
    arenas = imported.json()["arenas"][ledger.name]
    history = load(root)
    rows = history.arena_count(arenas[-1])  # the page shows the newest arena; a re-baseline starts one
    page = assert_safe(html_report(history, None))
    assert sum(page.marks.values()) == rows
    first = history.arena_runs(arenas[-1])[0].description
    assert clip(first, 160) in page.body_text


def test_window_view_and_all_time(tmp_path):
    root = write_store(tmp_path / "store", 400, seed=1)
    history = load(root)
    window = Page(html_report(history, 2.0))
    everything = Page(html_report(history, None))
    assert 20 <= sum(window.marks.values()) <= 26  # five-minute spacing: 24 runs in two hours
    assert sum(everything.marks.values()) == 400
    assert "last 2 h" in window.body_text and "all time" in everything.body_text


def test_loss_curves_and_lineage_rendered(tmp_path):
    root = write_store(tmp_path / "store", 200, seed=2, curves=3)
    text = html_report(load(root), None)
    # each curve appears twice: its line in the chart and its swatch in the legend
    assert text.count('class="curve champ n0"') == 2 and text.count('class="curve other') == 6
    assert 'class="tree"' in text and "Lineage 1: best" in text


def test_render_2000_runs_under_a_second_and_2mb(tmp_path):
    root = write_store(tmp_path / "store", 2000, seed=0, hostile=True)
    history = load(root)
    times = []
    for _ in range(2):  # the first render also folds the optional insights without their cache
        start = time.perf_counter()
        text = html_report(history, None)
        times.append(time.perf_counter() - start)
    assert min(times) <= 1.0, times
    assert len(text.encode("utf-8")) <= 2 * 1024 * 1024
    assert sum(Page(text).marks.values()) == 2000


# -- optional insights hook ----------------------------------------------------------------------
def _fake_insights(monkeypatch, view=None, error=None):
    module = types.ModuleType("memorylab_core.research.insights")

    def dashboard_view(history):
        if error:
            raise error
        return view

    module.dashboard_view = dashboard_view
    monkeypatch.setitem(sys.modules, "memorylab_core.research.insights", module)
    memory = "memorylab_core.research.memory"
    monkeypatch.setitem(sys.modules, memory, types.ModuleType(memory))


def test_insights_hook_renders_escaped_sections(tmp_path, monkeypatch):
    root = write_store(tmp_path / "store", 50, seed=4)
    view = {"insights": {"categories": [{"category": "<script>alert(7)</script>", "attempts": 3, "keeps": 1,
                                         "discards": 2, "crashes": 0, "keep_probability": 0.4}],
                         "promising": [{"category": "optimizer"}], "dead_ends": []},
            "mistake_cards": [{"title": "regression", "lesson": "<img src=x onerror=alert(8)>", "seen": 2}]}
    _fake_insights(monkeypatch, view)
    page = assert_safe(html_report(load(root), None))
    assert "Category insights" in page.body_text and "Mistake cards" in page.body_text
    assert "<script>alert(7)</script>" in page.body_text and "<img src=x onerror=alert(8)>" in page.body_text


def test_insights_hook_failure_costs_only_the_section(tmp_path, monkeypatch, capsys):
    root = write_store(tmp_path / "store", 50, seed=5)
    _fake_insights(monkeypatch, error=RuntimeError("boom"))
    page = assert_safe(html_report(load(root), None))
    assert "Category insights" not in page.body_text and "Champion" in page.body_text
    assert "insights unavailable (RuntimeError: boom)" in capsys.readouterr().err


# -- CLI -----------------------------------------------------------------------------------------
def test_report_html_writes_beside_markdown(tmp_path):
    root = write_store(tmp_path / "store", 30, seed=6)
    out = ml("--home", str(root), "report", "--all", "--html", "--json")
    assert out.code == 0, out.err
    written = {Path(p).name for p in out.json()["written"]}
    assert {"latest.md", "latest.html"} <= written and len(written) == 4
    html_files = sorted((root / "reports").glob("*.html"))
    assert len(html_files) == 2 and html_files[0].read_text() == html_files[1].read_text()
    assert_safe((root / "reports" / "latest.html").read_text())


def test_report_html_output_and_stdout(tmp_path):
    root = write_store(tmp_path / "store", 30, seed=7)
    target = tmp_path / "dash.html"
    assert ml("--home", str(root), "report", "--since-hours", "1", "--html", "--output", str(target)).code == 0
    assert target.read_text().startswith("<!DOCTYPE html>") and not (root / "reports" / "latest.md").exists()
    printed = ml("--home", str(root), "report", "--all", "--html", "-o", "-")
    assert printed.code == 0 and printed.out.startswith("<!DOCTYPE html>")
    plain = ml("--home", str(root), "report", "--all", "-o", "-")
    assert plain.out.startswith("# MemoryLab morning report")


def test_a_long_lineage_says_how_many_earlier_kept_runs_it_leaves_out():
    from memorylab_core.render.html_sections import lineage_card

    chain = [{"run_id": f"r{i}", "commit": f"c{i:06d}", "val_bpb": 1.0 - i / 1000} for i in range(350, 400)]
    lineage = {"root": "r0", "tip": "r399", "length": 400, "best_val_bpb": 0.601, "best_run_id": "r399",
               "start_val_bpb": 1.0, "improvement": 0.399, "chain": chain}
    html = lineage_card([lineage], {})
    assert "… 350 earlier kept runs …" in html and "c000399" in html
    assert "earlier kept runs" not in lineage_card([{**lineage, "length": 50}], {})


def test_the_progress_chart_stars_the_policys_champion_not_the_best_single_run():
    """A champion kept on its reference (0.9915 beats the replicated 0.9935 of a run whose single value was 0.990)
    is the one the chart stars and its frontier ends on, as every other view names it."""
    from test_promotion import Ledger

    from memorylab_core.policy.registry import champion, champion_changes

    led = Ledger()
    led.run("c0", 1.000)
    lucky, _ = led.run("c1", 0.990)
    for val in (0.995, 0.993, 0.996):
        led.replicate(lucky, val)
    tip, decision = led.run("c2", 0.9915)
    assert decision.accepted and champion(led.runs, led.events) is tip
    changes = champion_changes(led.runs, led.events)
    assert [champ.run_id for _, champ in changes] == ["r0", "r1", tip.run_id]
    svg = charts.progress_chart(led.runs, changes=changes)
    assert "★ champion 0.9915" in svg and "★ champion 0.9900" not in svg


def test_a_challenger_is_measured_by_its_reference_not_its_luckiest_run():
    from test_promotion import Ledger

    from memorylab_core.render.report import _with_reference, challenger_gain

    led = Ledger()
    led.run("c0", 1.000)
    lucky, _ = led.run("c1", 0.990)
    for val in (0.995, 0.993, 0.996):
        led.replicate(lucky, val)
    ch = _with_reference(lucky, led.runs)
    assert ch["val_bpb"] == 0.990 and ch["reference_val_bpb"] == pytest.approx(0.9935) and ch["reference_n"] == 4
    data = {"verdict": {"reference_val_bpb": 0.9915}, "champion": {"val_bpb": 0.9915}}
    assert challenger_gain(ch, data) == pytest.approx(-0.002)  # behind the champion, not "+0.0015" ahead of it
