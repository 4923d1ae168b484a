"""``memorylab guide``: budgeted, deterministic context for the agent's next idea."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlhelpers import log_run, make_repo, ml
from researchhelpers import make_run, sig

from memorylab_core.research import guide as guide_mod
from memorylab_core.research.health import PLATEAU_RUNS
from memorylab_core.research.memory import fold

PROGRAM = Path(__file__).resolve().parent.parent / "program.md"


def rich_runs() -> list:
    """A night with keeps, near-misses, regressions, crashes and repeated failures."""
    runs = [make_run(0, "keep", 1.0, "baseline", commit="c0ffee1234")]
    val = 1.0
    for i in range(1, 41):
        if i % 5 == 0:
            val -= 0.004
            runs.append(make_run(i, "keep", val, f"matrix lr step {i}", commit=f"keep{i:03d}abc",
                                 signature=(sig("MATRIX_LR", "down", 0.04, 0.03),)))
        elif i % 7 == 0:
            runs.append(make_run(i, "crash", None, f"batch up {i}", error_kind="oom",
                                 signature=(sig("DEVICE_BATCH_SIZE", "up", 64, 128),)))
        elif i % 3 == 0:
            runs.append(make_run(i, "discard", val + 0.001, f"warmdown tweak {i}",
                                 signature=(sig("WARMDOWN_RATIO", "up", 0.5, 0.6),)))
        else:
            runs.append(make_run(i, "discard", val + 0.03, f"depth up {i}", signature=(sig("DEPTH", "up", 8, 10),)))
    return runs


def test_empty_history_is_safe(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMORYLAB_HOME", str(tmp_path / "store"))
    missing = ml("guide", cwd=tmp_path)  # program.md: init first; a missing store is not an empty history
    assert missing.code == 1 and "no MemoryLab store at" in missing.err
    assert ml("init", cwd=tmp_path).code == 0
    res = ml("guide", cwd=tmp_path)
    assert res.code == 0 and "no runs yet" in res.out and "baseline" in res.out
    data = ml("guide", "--json", cwd=tmp_path).json()
    assert data["runs"] == 0 and data["champion"] is None and data["chars"] <= data["max_chars"]


@pytest.mark.parametrize("budget", [40, 120, 400, 800, 1500, 4000])
def test_text_fits_the_budget(budget):
    data = guide_mod.guide(fold(rich_runs()), budget)
    assert len(data["text"]) <= budget and data["chars"] == len(data["text"])


def test_every_section_gets_a_line_before_any_gets_two():
    text = guide_mod.guide(fold(rich_runs()), 1500)["text"]
    for title in ("CHAMPION", "WORKS", "DEAD ENDS / AVOID", "LAST RUNS", "MISTAKES", "NEAR-MISSES",
                  "TRIED AND FAILED", "PROMISING"):
        assert title in text, title
    sections = {"champion": ["c" * 9], "works": ["w" * 9] * 5, "dead_ends": ["d" * 9] * 5, "recent": ["r" * 9] * 5}
    # title lines cost len(title)+1 once; each line costs 10 (+2 indent under a title)
    titles = sum(len(guide_mod.TITLES[name]) + 1 for name in ("works", "dead_ends", "recent"))
    granted = guide_mod._allocate(sections, 10 + titles + 12 * 5)
    assert granted == {"champion": 1, "works": 2, "dead_ends": 2, "recent": 1}


def test_contents_champion_near_misses_mistakes_rules():
    data = guide_mod.guide(fold(rich_runs()), 4000)
    text = data["text"]
    assert data["champion"]["commit"].startswith("keep040") and "keep040" in text
    assert "warmdown tweak" in text  # a near-miss to combine
    assert "[oom ×" in text and "DEVICE_BATCH_SIZE up" in text  # a mistake card with its count
    assert "works: MATRIX_LR down" in text and "avoid: DEPTH up" in text  # consolidated rules
    assert "DEPTH 8→10 (discard ×" in text  # tried and failed, not to repeat
    assert data["rules_made_at_run"] == 40


def test_deterministic():
    runs = rich_runs()
    assert guide_mod.guide(fold(runs)) == guide_mod.guide(fold(runs))


def test_plateau_advice_grows_with_the_plateau():
    base = [make_run(0, "keep", 1.0, "baseline"), make_run(1, "keep", 0.99, "a")]
    flat = [make_run(2 + k, "discard", 1.01, f"x{k}") for k in range(2 * PLATEAU_RUNS)]
    mid = guide_mod.guide(fold(base + flat[:PLATEAU_RUNS]))["text"]
    assert f"PLATEAU {PLATEAU_RUNS} experiments" in mid and "larger or combined change" in mid
    late = guide_mod.guide(fold(base + flat))["text"]
    assert "radical" in late


def test_breaker_alert_comes_first(tmp_path):
    runs = [make_run(0, "keep", 1.0, "baseline", commit="deadbeef99")]
    runs += [make_run(1 + k, "crash", None, f"x{k}", error_kind="nan") for k in range(5)]
    text = guide_mod.guide(fold(runs), 400)["text"]
    lines = text.splitlines()
    assert lines[0].startswith("ARENA ") and lines[2] == "ALERTS"  # the arena, the champion, then the alerts
    assert "circuit breaker HALF-OPEN" in text and "deadbeef99" in text  # no crash times: cool-down over, as check says


def test_cli_guide_with_budget_and_json(tmp_path, monkeypatch):
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    repo = make_repo(tmp_path / "repo")
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    assert log_run(repo, "matrix lr 0.04 -> 0.03", "discard", 1.001).code == 0
    res = ml("guide", "--max-chars", "300", cwd=repo)
    assert res.code == 0 and len(res.out.rstrip("\n")) <= 300
    assert "CHAMPION reference 1.000500 (mean of 2 runs)" in res.out
    assert "unconfirmed: the baseline, nothing confirmed yet" in ml("guide", cwd=repo).out  # as every view says
    data = ml("guide", "--json", cwd=repo).json()
    status = ml("status", "--json", cwd=repo).json()
    assert data["arena"] == status["arena"] and f"ARENA {status['arena']}" in ml("guide", cwd=repo).out  # as status
    for key in ("text", "arena", "champion", "recent", "works", "dead_ends", "near_misses", "mistakes", "do_not_repeat",
                "plateau", "alerts", "promising"):
        assert key in data, key
    assert data["near_misses"][0]["description"] == "matrix lr 0.04 -> 0.03"
    assert ml("guide", "--max-chars", "0", cwd=repo).code == 1


def test_program_tells_the_agent_to_read_the_guide_every_loop():
    text = PROGRAM.read_text()
    loop = text[text.index("LOOP FOREVER"):]
    first_step = loop[: loop.index("2. ")]
    assert "memorylab.py guide" in first_step
