"""What the HTML dashboard shows, gathered from one history fold.

:func:`build_dashboard` starts from :func:`~memorylab_core.report.report_data` (the morning report's
headline, champion, queue, challengers, lineages and failure clusters: the same numbers as the
markdown report) and adds what only the page draws: every run of the window for the chart and the
table, the champion's full decision packet, loss curves from archived sidecars, and optional
insight sections.

Optional insights hook. Category insights and mistake cards belong to other modules (issue 5); the
dashboard shows them when those exist at import time and never fails because of them. For each key
(``insights``, ``mistake_cards``) the first source that has it wins:

1. the report data (when :func:`report_data` carries the key, markdown and ``--json`` have it too);
2. ``memorylab_core.insights.dashboard_view(history)``, an explicit hook returning a dict;
3. the research fold, if ``memorylab_core.research.load_state`` and ``insights.insights_view`` exist:
   ``insights_view(state.book, state.runs, state.timeline.plateau())`` and
   ``state.deck.ranked(state.runs, limit)``.

A source that is missing (import or attribute error) is skipped quietly; one that raises anything
else costs a warning on stderr and its sections, never the page.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..index.journal_index import JournalIndex
from ..ledger.model import Run
from ..ledger.store import warn
from ..policy.registry import champion, champion_changes
from ..research.health import crash_streak, ideas_since_last_keep
from .charts import Curve, curve_points
from .report import report_data, window_runs

TABLE_ROWS = 2500  # newest runs of the window listed in the table (the chart shows up to CHART_RUNS)
CHART_RUNS = 20000
RECENT_CURVES = 4  # loss curves of the latest runs besides the champion's
CURVE_SCAN = 40  # how many of the latest runs to look at for archived sidecars
EXTRA_SECTIONS = (("velocity_chart", "Improvement velocity"), ("insights", "Category insights"),
                  ("mistake_cards", "Mistake cards"))
MISTAKE_CARDS = 12


@dataclass
class Extra:
    """An optional section: a title and JSON-like content rendered generically."""

    key: str
    title: str
    content: object


@dataclass
class Dashboard:
    """Everything the page renders."""

    data: dict  # report_data(): headline, champion, queue, challengers, lineages, failure clusters
    runs: list[Run]  # the window's runs in ledger order (chart), at most CHART_RUNS
    table: list[Run]  # the newest TABLE_ROWS of them (runs table)
    champion: Run | None
    champion_record: dict  # full ledger record of the champion (decision packet, hypothesis, tags)
    start_best: float | None  # champion val_bpb when the window started
    progress: tuple[float | None, str] = (None, "")  # champion's val_bpb change over the window, and from what
    signals: dict = field(default_factory=dict)  # loop health: crash streak, runs since the last keep
    descriptions: dict[str, str] = field(default_factory=dict)  # run id -> description, for lineage nodes
    curves: list[Curve] = field(default_factory=list)
    extras: list[Extra] = field(default_factory=list)
    numbers: dict[int, int] = field(default_factory=dict)  # run index -> experiment number in its arena
    changes: list[tuple[Run, Run]] = field(default_factory=list)  # (where, new champion): registry.champion_changes

    def number(self, run: Run) -> int:
        """A run's experiment number in its arena (1-based), as the chart, its caption and the loss curves say."""
        return self.numbers.get(run.index, run.index + 1)


def build_dashboard(history: JournalIndex, since_hours: float | None = 16.0, now: datetime | None = None,
                    data: dict | None = None) -> Dashboard:
    """Gather the dashboard for the last ``since_hours`` (all time when None)."""
    now = now or datetime.now(timezone.utc)
    data = data if data is not None else report_data(history, since_hours, now)
    if "arenas" in data:  # the page shows one arena: the most recently used one of an all-arenas report
        data = data["arenas"][0] if data["arenas"] else report_data(history, since_hours, now)
    arena = data["arena"]
    window = window_runs(history, arena, data.get("since_hours"), now)  # all time when the report widened it
    arena_runs = history.arena_runs(arena)
    numbers = {run.index: n for n, run in enumerate(arena_runs, 1)}  # run numbers per arena, never store-wide
    champ = champion(history.registry.notable_in(arena), history.events_in(arena))
    start = data.get("champion_at_window_start") or {}
    return Dashboard(
        data=data,
        runs=window[-CHART_RUNS:],
        table=window[-TABLE_ROWS:],
        champion=champ,
        champion_record=history.record(champ) if champ is not None else {},
        start_best=start.get("val_bpb"),
        progress=champion_progress(data),
        signals={"crash_streak": crash_streak(arena_runs), "since_last_keep": ideas_since_last_keep(arena_runs)},
        descriptions=_lineage_descriptions(history, data.get("lineages") or []),
        curves=loss_curves(history, champ, window),
        extras=optional_extras(history, data),
        numbers={run.index: numbers[run.index] for run in window[-max(CHART_RUNS, TABLE_ROWS):]
                 if run.index in numbers},
        changes=champion_changes(arena_runs, history.events_in(arena)),
    )


def champion_progress(data: dict) -> tuple[float | None, str]:
    """The champion's gain over the window (``ledger.model.gain``: + = lower val_bpb) and what it is measured
    from, as the markdown report states it (``champion_gain``: the champion at the window start)."""
    champ, start = data.get("champion"), data.get("champion_at_window_start")
    if champ is None:
        return None, "no kept run yet"
    first = data.get("champion_gain_from")
    if data.get("new_champion_in_window") and start is not None:
        return data.get("champion_gain"), f"from {start['val_bpb']:.6f} at window start"
    if data.get("new_champion_in_window") and first is not None and first["run_id"] != champ["run_id"]:
        return data.get("champion_gain"), f"from the baseline {first['val_bpb']:.6f}, set in this window"
    if data.get("new_champion_in_window"):
        return None, "the arena's first champion (its baseline) was set in this window"
    return 0.0, "unchanged in this window"


def _lineage_descriptions(history: JournalIndex, lineages: Sequence[dict]) -> dict[str, str]:
    ids = {step["run_id"] for lin in lineages for step in lin.get("chain") or []}
    return {run_id: run.description for run_id in ids if (run := history.get(run_id)) is not None}


def loss_curves(history: JournalIndex, champ: Run | None, window: Sequence[Run]) -> list[Curve]:
    """The champion's loss curve and the latest few runs' (where their sidecars were archived)."""
    curves = []
    if champ is not None:
        points = _sidecar_points(history, champ)
        if points:
            curves.append(Curve(champ, points, champion=True))
    for run in reversed(window[-CURVE_SCAN:]):
        if len(curves) >= RECENT_CURVES + (1 if curves and curves[0].champion else 0):
            break
        if champ is not None and run.run_id == champ.run_id:
            continue
        points = _sidecar_points(history, run)
        if points:
            curves.append(Curve(run, points))
    return curves


def _sidecar_points(history: JournalIndex, run: Run) -> list[tuple[float, float]]:
    summary = history.store.read_run_json(run.run_id, "summary.json")
    return curve_points(summary.get("loss_curve")) if summary else []


def optional_extras(history: JournalIndex, data: dict) -> list[Extra]:
    """Insight sections from the first source that has them (see the module docstring)."""
    found = {key: data.get(key) for key, _ in EXTRA_SECTIONS}
    for source in (_hook_view, _research_view):
        if all(value is not None for value in found.values()):
            break
        view = _guarded(source, history, data.get("arena"))
        found = {key: value if value is not None else view.get(key) for key, value in found.items()}
    return [Extra(key, title, found[key]) for key, title in EXTRA_SECTIONS if found[key]]


def _guarded(source, history: JournalIndex, arena: str | None) -> dict:
    try:
        view = source(history, arena)
    except (ImportError, AttributeError):
        return {}
    except Exception as exc:  # noqa: BLE001 - an optional section must never break the morning page
        warn(f"dashboard: insights unavailable ({type(exc).__name__}: {exc}); section left out")
        return {}
    return view if isinstance(view, dict) else {}


def _hook_view(history: JournalIndex, arena: str | None) -> dict:
    del arena  # the hook's contract: dashboard_view(history)
    return importlib.import_module("memorylab_core.research.insights").dashboard_view(history)


def _research_view(history: JournalIndex, arena: str | None) -> dict:
    research = importlib.import_module("memorylab_core.research.memory")
    insights = importlib.import_module("memorylab_core.research.insights")
    state = research.load_state(history.store, history=history, arena=arena)
    return {"insights": insights.insights_view(state.book, state.runs, state.timeline.plateau(),
                                                  state.timeline.account.to_dict()),
            "mistake_cards": state.deck.ranked(state.runs, MISTAKE_CARDS),
            "velocity_chart": {"view": state.velocity.view(state.arena),
                               "points": [list(p) for p in state.velocity.points]}}
