"""The dashboard's sections as HTML fragments: headline, champion, queue, board, lineage, failures,
optional insights, and the runs table.

Each function takes plain data (the report data, runs, the champion's record) and returns markup.
Every value that came from the ledger goes through :func:`~memorylab_core.htmltext.esc`; numbers are
formatted here. The page skeleton and the charts live in :mod:`~memorylab_core.html_report` and
:mod:`~memorylab_core.charts`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from ..ledger.model import GAIN_SIGN, Run, gain, lineage_gain, plural
from ..policy.verdict import runs_phrase, verdict_noise, verdict_phrase
from ..research.health import is_busy
from . import svg
from .htmltext import clip, esc
from .report import challenger_gain, reference_val, verdict_gain, window_label
from .svg import glyph

DESCRIPTION_CHARS = 160
LINEAR_HEAD, LINEAR_TAIL = 2, 8  # a straight stretch of a lineage longer than this is shortened
EXTRA_ROWS = 50


def fmt_val(value: float | None, digits: int = 6) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def fmt_gain(value: float | None, digits: int = 4) -> str:
    """A signed val_bpb gain (``ledger.model.gain``: + = lower val_bpb), coloured: positive (better) green,
    negative (worse) red."""
    if value is None:
        return ''
    cls = "good" if value > 0 else "bad" if value < 0 else "muted"
    return f'<span class="{cls}">{value:+.{digits}f}</span>'


def pill(priority: str | None) -> str:
    value = priority or "low"
    return f'<span class="pill p-{esc(value)}">{esc(value)}</span>'


def section(anchor: str, heading: str, body: str, cls: str = "card") -> str:
    return f'<section id="{anchor}" class="{cls}"><h2>{esc(heading)}</h2>{body}</section>'


def table(head: str, rows: str) -> str:
    """A table from a header row and body rows (both already-safe markup)."""
    return f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>"


def empty(text: str) -> str:
    return f'<p class="empty">{esc(text)}</p>'


# -- headline ------------------------------------------------------------------------------------
def stats(data: dict, signals: dict, progress: tuple[float | None, str]) -> str:
    """The headline numbers as a row of tiles."""
    c = data["counts"]
    rate = "no ideas yet" if data["keep_rate"] is None else f"{data['keep_rate']:.0%} of ideas kept"
    tiles = [
        ("Experiments (ideas)", f"{data['experiments']:,}",
         f"{window_label(data)} · {plural(data['window_runs'], 'run')} of every role · "
         f"{data['total_runs']:,} in the arena"),
        ("Keep · discard · crash",
         f"{glyph('keep')} {c['keep']} {glyph('discard')} {c['discard']} {glyph('crash')} {c['crash']}",
         f"every run · {rate}"),
        _reference_tile(data),
        (f"Champion gain ({GAIN_SIGN})", fmt_gain(progress[0]), esc(progress[1])),
        ("Since last keep", f"{signals.get('since_last_keep', 0):,}",
         f"experiments (ideas) · crash streak {signals.get('crash_streak', 0)}"),
        ("Open decisions", str(sum(1 for q in data["decision_queue"] if q.get("priority") == "high")),
         f"high priority of {len(data['decision_queue'])} queued"),
        _abort_tile(data),
    ]
    cells = "".join(f'<div class="stat{" wide" if n == 1 else ""}"><div class="k">{esc(k)}</div>'
                    f'<div class="v">{v}</div><div class="d">{d}</div></div>' for n, (k, v, d) in enumerate(tiles))
    return f'<section id="headline" class="stats" aria-label="headline numbers">{cells}</section>'


def _abort_tile(data: dict) -> tuple[str, str, str]:
    """Training time the early abort saved in the window, the runs it stopped and its audit (false aborts)."""
    abort = data.get("early_abort") or {}
    audit = abort.get("all_time") or {}
    checked = (f"false aborts {audit['false_aborts']} of {audit['audited_finished']} left running"
               if audit.get("audited_finished") else "no would-be stop audited yet")
    return ("Training saved", f"{(abort.get('saved_training_seconds') or 0) / 60:.1f} min",
            f"{plural(abort.get('stopped') or 0, 'run')} stopped early · {checked}")


def warnings(data: dict) -> str:
    """Banners above the page: a busy machine (the report's first line too), the other alerts ``status`` raises
    (an open breaker, crash clusters, starved runs), corrupt ledger lines."""
    out = ""
    if data.get("busy_machine"):
        out += f'<p class="warn" role="alert"><strong>Busy machine.</strong> {esc(data["busy_machine"]["message"])}</p>'
    for alert in data.get("alerts") or []:
        if not is_busy(alert):
            out += (f'<p class="warn" role="alert"><strong>Alert ({esc(alert["severity"])}).</strong> '
                    f'{esc(alert["message"])}</p>')
    if data.get("corrupt_lines"):
        out += (f'<p class="warn" role="alert">{data["corrupt_lines"]} corrupt ledger line(s) were skipped; '
                "run any command to see their line numbers on stderr.</p>")
    return out


def _reference_tile(data: dict) -> tuple[str, str, str]:
    """The headline tile: the champion's reference (what the policy judges by), labelled with its n."""
    verdict = data.get("verdict")
    if not verdict:
        return "Champion reference", "none", "no kept run yet: the next is this arena's baseline"
    return ("Champion reference val_bpb", fmt_val(verdict["reference_val_bpb"]),
            esc(f"{runs_phrase(verdict['reference_n'])} · {verdict_noise(verdict)}"))


# -- champion ------------------------------------------------------------------------------------
def champion_card(data: dict, record: dict, progress: tuple[float | None, str]) -> str:
    champ = data["champion"]
    if champ is None:
        return section("champion", "Champion", empty(f"{data['headline'][0].upper()}{data['headline'][1:]}."))
    verdict = data.get("verdict") or {}
    tags = ", ".join(str(t) for t in record.get("tags") or [])
    facts = [("run", f"<code>{esc(champ['run_id'])}</code>"),
             ("confirmed", esc(data["headline"])),
             ("commit", f"<code>{esc((champ.get('commit') or 'unknown')[:12])}</code>"),
             ("branch", esc(champ.get("branch") or "unknown")),
             ("memory", f"{champ['memory_gb']:.1f} GB" if champ.get("memory_gb") is not None else "unknown"),
             ("logged", esc(champ.get("timestamp_utc") or "imported (no timestamp)")),
             (f"gain ({GAIN_SIGN})", f"{fmt_gain(progress[0])} {esc(progress[1])}")]
    if verdict:
        facts.insert(1, ("best single run", f"{fmt_val(verdict['best_single_val_bpb'])} "
                                            f"<code>{esc(verdict['best_single_run_id'])}</code>"))
        facts.insert(2, ("noise", esc(verdict_noise(verdict))))
    if record.get("hypothesis"):
        facts.append(("hypothesis", esc(record["hypothesis"])))
    if tags:
        facts.append(("tags", esc(tags)))
    big = verdict.get("reference_val_bpb", champ["val_bpb"])
    label = f"val_bpb reference: {runs_phrase(verdict.get('reference_n'))}" if verdict else "val_bpb"
    left = f'<div><div class="big">{fmt_val(big)}</div><div class="muted">{esc(label)}</div></div>'
    right = (f'<div><p class="desc">{esc(champ["description"])}</p>{_kv(facts)}'
             f"{_packet(record.get('decision_packet'))}</div>")
    return section("champion", "Champion", f'<div class="champ">{left}{right}</div>')


def _kv(pairs: Sequence[tuple[str, str]]) -> str:
    """A definition list; values are already-safe markup."""
    return '<dl class="kv">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _packet(packet: object) -> str:
    if not isinstance(packet, dict) or not packet:
        return ""
    comparison = packet.get("comparison") if isinstance(packet.get("comparison"), dict) else {}
    novelty = packet.get("novelty") if isinstance(packet.get("novelty"), dict) else {}
    prior = comparison.get("prior_champion") if isinstance(comparison.get("prior_champion"), dict) else None
    pairs = [("next action", f"<strong>{esc(packet.get('next_action') or 'none')}</strong> "
                             f"{pill(packet.get('priority'))} <span class='muted'>rule "
                             f"{esc(packet.get('rule') or 'unknown')}</span>"),
             ("rationale", esc(packet.get("rationale") or "none")),
             ("hypothesis", esc(packet.get("hypothesis_status") or "unknown"))]
    if isinstance(packet.get("verdict"), dict):
        pairs.append(("verdict", esc(verdict_phrase(packet["verdict"]))))
    if prior:
        pairs.append(("prior champion (its single run)", f"<code>{esc(prior.get('run_id'))}</code> "
                                        f"{fmt_val(prior.get('val_bpb') if _is_num(prior.get('val_bpb')) else None)}"))
    # No gain against the prior champion's single run: the verdict above is the policy's gain over its reference,
    # and a second number measured another way contradicted it (+0.002 vs -0.0015 for one promote)
    if novelty.get("classification"):
        pairs.append(("novelty", esc(f"{novelty['classification']} ({novelty.get('decision') or 'unknown'})")))
    return f"<h3>Decision packet</h3>{_kv(pairs)}"


def _is_num(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- queue and board -----------------------------------------------------------------------------
def queue_card(data: dict) -> str:
    items = data["decision_queue"]
    if not items:
        return section("queue", "Decision queue", empty("Nothing waiting."))
    rows = "".join(
        f"<tr><td>{pill(i['priority'])}</td><td>{esc(i['next_action'])}</td>"
        f"<td><code>{esc(i['run_id'])}</code><div>{esc(clip(i['description'], 90))}</div></td>"
        f"<td>{esc(i['rationale'])}</td></tr>" for i in items)
    head = "<tr><th>priority</th><th>action</th><th>run</th><th>why</th></tr>"
    return section("queue", "Decision queue", table(head, rows))


def board_card(data: dict) -> str:
    champ = data["champion"]
    board = ([champ] if champ else []) + list(data["challengers"])
    if not board:
        return section("board", "Champion & challengers", empty("No kept runs yet."))
    reference = reference_val(data)
    rows = []
    for rank, run in enumerate(board):
        vs_best = challenger_gain(run, data) if rank else None
        shown = reference if rank == 0 else run.get("reference_val_bpb", run["val_bpb"])
        rows.append(f"<tr><td>{'★' if rank == 0 else rank}</td><td class='n'>{fmt_val(shown)}</td>"
                    f"<td class='n'>{fmt_gain(vs_best) if rank else ''}</td><td>{_run_ref(run)}</td>"
                    f"<td>{esc(clip(run['description'], 90))}</td></tr>")
    head = (f"<tr><th>#</th><th class='n'>reference val_bpb (mean of its code's runs)</th>"
            f"<th class='n'>gain vs ★'s reference ({GAIN_SIGN})</th>"
            "<th>commit</th>"
            "<th>description</th></tr>")
    return section("board", "Champion & challengers", table(head, "".join(rows)))


def _run_ref(run: dict) -> str:
    """A short commit (the run id on hover), or the run id when there is no commit."""
    commit = (run.get("commit") or "")[:7]
    return f'<code title="{esc(run["run_id"])}">{esc(commit or run["run_id"])}</code>'


# -- lineage -------------------------------------------------------------------------------------
def lineage_card(lineages: Sequence[dict], descriptions: dict[str, str]) -> str:
    """The best lineages as trees of kept commits (shared roots merged), each step with its delta."""
    if not lineages:
        return section("lineage", "Lineage", empty("No kept runs yet."))
    trees = _merge_chains(lineages)
    blocks = []
    for number, (root, info) in enumerate(trees, 1):
        heading = f"Lineage {number}: best {fmt_val(info['best_val_bpb'])}, {lineage_gain(info)}"
        earlier = info.get("length", 0) - len(info.get("chain") or [])  # a long chain carries its newest steps
        gap = f'<li class="gap muted">… {earlier} earlier kept runs …</li>' if earlier > 0 else ""
        blocks.append(f'<div class="lineage"><h3>{esc(heading)}</h3><ul class="tree">{gap}'
                      f"{_branch(root, None, descriptions, info['best_run_id'])}</ul></div>")
    return section("lineage", "Lineage of kept commits", "".join(blocks))


def _merge_chains(lineages: Sequence[dict]) -> list[tuple[dict, dict]]:
    """Chains (root first) merged into trees keyed by run id; returns (root node, first lineage info)."""
    roots: dict[str, tuple[dict, dict]] = {}
    for lin in lineages:
        chain = lin.get("chain") or []
        if not chain:
            continue
        root_id = chain[0]["run_id"]
        if root_id not in roots:
            roots[root_id] = ({**chain[0], "children": []}, lin)
        node = roots[root_id][0]
        for step in chain[1:]:
            child = next((c for c in node["children"] if c["run_id"] == step["run_id"]), None)
            if child is None:
                child = {**step, "children": []}
                node["children"].append(child)
            node = child
    return list(roots.values())


def _branch(node: dict, parent_val: float | None, descriptions: dict[str, str], best_id: str) -> str:
    """One straight stretch as sibling items (shortened when long), then its forks as nested lists."""
    stretch = [node]
    while len(stretch[-1]["children"]) == 1:
        stretch.append(stretch[-1]["children"][0])
    shown = stretch
    out = []
    if len(stretch) > LINEAR_HEAD + LINEAR_TAIL + 1:
        hidden = len(stretch) - LINEAR_HEAD - LINEAR_TAIL
        shown = stretch[:LINEAR_HEAD] + [None] + stretch[-LINEAR_TAIL:]
    for item in shown:
        if item is None:
            out.append(f'<li class="gap muted">… {hidden} more kept runs …</li>')
            parent_val = stretch[-LINEAR_TAIL - 1].get("val_bpb")  # the last hidden run: deltas stay per step
            continue
        out.append(_node(item, parent_val, descriptions, best_id))
        parent_val = item.get("val_bpb")
    forks = stretch[-1]["children"]
    if forks:
        inner = "".join(f"<ul>{_branch(child, parent_val, descriptions, best_id)}</ul>" for child in forks)
        out.append(f'<li class="fork">{inner}</li>')
    return "".join(out)


def _node(node: dict, parent_val: float | None, descriptions: dict[str, str], best_id: str) -> str:
    value = node.get("val_bpb")
    delta = gain(value, parent_val)  # over its parent step
    best = node["run_id"] == best_id
    label = esc(node.get("commit") or node["run_id"])
    desc = esc(clip(descriptions.get(node["run_id"], ""), 100))
    star = ' <span class="pill">best</span>' if best else ""
    change = fmt_gain(delta) if delta is not None else ""
    return (f'<li class="{"best" if best else "step"}"><code title="{esc(node["run_id"])}">{label}</code> '
            f'<span class="val">{fmt_val(value)}</span> <span class="delta">{change}</span>{star} {desc}</li>')


# -- failures and optional insights --------------------------------------------------------------
def failures_card(clusters: Sequence[dict]) -> str:
    if not clusters:
        return section("failures", "Repeated failure clusters",
                       empty("No repeated failures: no idea has failed twice."))
    rows = "".join(
        f"<tr><td class='n'>{c['count']}</td><td class='n'>{c['crashes']}</td>"
        f"<td>{esc(', '.join(c.get('error_kinds') or []) or 'unknown')}</td>"
        f"<td><code>{esc(clip(c['key'], 60))}</code></td>"
        f"<td>{esc(clip(c['example'], 120))}</td></tr>" for c in clusters)
    head = ("<tr><th class='n'>tries</th><th class='n'>crashes</th><th>errors</th><th>idea</th>"
            "<th>latest attempt</th></tr>")
    return section("failures", "Repeated failure clusters", table(head, rows))


def extra_card(key: str, title: str, content: object) -> str:
    """An optional section (insights, mistake cards): a tailored view when the content has the shape
    of issue 5's views, else a generic rendering of the JSON-like content. Everything is escaped."""
    anchor = key.replace("_", "-")
    if key == "velocity_chart" and isinstance(content, dict) and isinstance(content.get("view"), dict):
        return section(anchor, title, _velocity(content["view"], content.get("points") or []))
    if key == "insights" and isinstance(content, dict) and isinstance(content.get("categories"), list):
        return section(anchor, title, _insights(content))
    if key == "mistake_cards" and isinstance(content, list) and all(isinstance(c, dict) for c in content):
        cards = "".join(_mistake(card) for card in content[:EXTRA_ROWS])
        return section(anchor, title, f'<div class="cards">{cards}</div>')
    return section(anchor, title, _generic(content))


def _velocity(view: dict, points: Sequence) -> str:
    """The champion's val_bpb against cumulative GPU-hours since the baseline (a small step chart, drawn
    at its own size), under the velocity line that status and guide print. Where GPU time is unknown
    (imported rows), the x axis is the experiment count instead: run order, never a column of zeros."""
    from ..research.progress import velocity_phrase

    phrase = velocity_phrase(view).removeprefix("velocity").strip()
    rows = [(p[0], p[1] / 3600, p[2]) for p in points if isinstance(p, (list, tuple)) and len(p) >= 3
            and all(isinstance(v, (int, float)) for v in p[:3])]
    if len(rows) < 2:
        return f'<p class="muted">{esc(phrase)}</p>'
    by_hours = max(r[1] for r in rows) > min(r[1] for r in rows)
    xs = [r[1] if by_hours else r[0] for r in rows]
    ys = [r[2] for r in rows]
    hours = view.get("hour_unit", "GPU-hour")
    unit, what = (hours.replace("-hour", "-h"), f"cumulative {hours}s") if by_hours \
        else ("", "experiments (training time unknown)")
    width, height, left, bottom = 420, 166, 56, 42
    x = svg.Scale(min(xs), max(xs), left, width - 8)
    y = svg.Scale(min(ys), max(ys), 8, height - bottom)
    y_ticks, x_ticks = svg.nice_ticks(min(ys), max(ys), 3), svg.nice_ticks(min(xs), max(xs), 4)
    x_ticks = [t for t in x_ticks if min(xs) <= t <= max(xs) and (by_hours or t == int(t))]  # no 0.25 experiment
    line = svg.step_line([(x(h), y(v)) for h, v in zip(xs, ys, strict=True)], x(max(xs)))
    x_title = f"{unit} since the baseline" if by_hours else "experiments since the baseline"
    chart = (f'<svg class="velocity" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'role="img" aria-label="champion val_bpb by {what}">'
             + svg.y_axis(y, [t for t in y_ticks if min(ys) <= t <= max(ys)], left, width - 8, lambda v: f"{v:.3f}")
             + svg.x_axis(x, x_ticks, 8, height - bottom, lambda h: f"{h:g}")
             + svg.text(width - 8, height - 4, x_title, "axis-title", "end")
             + f'<path class="frontier" d="{line}" fill="none"/></svg>')
    return (f'<p class="muted">{esc(phrase)}. Chart: the champion\'s val_bpb (lower is better, drawn '
            f'upward) by {what} since the baseline.</p>{chart}')


def _insights(view: dict) -> str:
    rows = [r for r in view["categories"] if isinstance(r, dict) and r.get("attempts")]
    plateau = view.get("plateau") if isinstance(view.get("plateau"), dict) else {}
    facts = [f"{plural(view.get('attempts', 0), 'experiment')} (ideas)",
             f"prior keep probability {_pct(view.get('prior_keep_rate'))}"]
    if plateau.get("experiments_since_improvement") is not None:
        facts.append(f"{plural(plateau['experiments_since_improvement'], 'experiment')} since the last improvement"
                     + (" — on a plateau" if plateau.get("on_plateau") else ""))
    lists = [("Promising next", view.get("promising")), ("Dead ends", view.get("dead_ends"))]
    chips = "".join(f"<p><strong>{esc(name)}:</strong> "
                    + (", ".join(esc(i.get("category", "other")) for i in items if isinstance(i, dict)) or "none")
                    + "</p>" for name, items in lists if isinstance(items, list))
    head = ("<tr><th>category</th><th class=n>attempts</th><th class=n>keep · discard · crash</th>"
            "<th>keep probability</th><th class=n>mean gain</th><th class=n>best gain</th><th class=n>weight</th></tr>")
    body = "".join(
        f"<tr><td>{esc(r.get('category'))}</td><td class=n>{r.get('attempts', 0)}</td>"
        f"<td class=n>{r.get('keeps', 0)} · {r.get('discards', 0)} · {r.get('crashes', 0)}</td>"
        f"<td>{_bar(r.get('keep_probability'))}</td><td class=n>{_signed(r.get('mean_gain'))}</td>"
        f"<td class=n>{_signed(r.get('best_gain'))}</td><td class=n>{_signed(r.get('weight'), 2)}</td></tr>"
        for r in rows)
    return f'<p class="muted">{esc(" · ".join(facts))}</p>{chips}{table(head, body)}'


def _mistake(card: dict) -> str:
    last = card.get("last_seen") if isinstance(card.get("last_seen"), dict) else {}
    kind = card.get("title") or card.get("type") or "lesson"
    lines = [f'<div class="muted">{esc(kind)} · {esc(card.get("change_class") or "")}</div>',
             f"<div><strong>{esc(clip(card.get('lesson'), 300))}</strong></div>",
             f"<div>{esc(clip(card.get('change'), 160))}</div>",
             f'<div class="muted">{esc(clip(card.get("evidence"), 200))}</div>',
             f'<div class="muted">seen {esc(card.get("seen", 1))}× · last '
             f'<code>{esc(last.get("run_id") or "unknown")}</code></div>']
    return f'<div class="mini">{"".join(lines)}</div>'


def _pct(value: object) -> str:
    return f"{value:.0%}" if _is_num(value) else ""


def _signed(value: object, digits: int = 4) -> str:
    return f"{value:+.{digits}f}" if _is_num(value) else ""


def _bar(value: object) -> str:
    """A probability as a small bar plus its number (the width is computed here, never user text)."""
    if not _is_num(value):
        return ""
    width = max(0.0, min(1.0, float(value))) * 100
    return f'<span class="bar"><span style="width:{width:.0f}%"></span></span> {value:.0%}'


def _generic(value: object, depth: int = 0) -> str:
    """JSON-like content as markup: a top-level dict becomes sub-sections, lists of dicts tables."""
    if isinstance(value, dict) and depth == 0:
        return "".join(f"<h3>{esc(str(k).replace('_', ' '))}</h3>{_generic(v, depth + 1)}"
                       for k, v in list(value.items())[:30])
    if isinstance(value, dict):
        return _kv([(str(k), _generic(v, depth + 1)) for k, v in list(value.items())[:30]])
    if isinstance(value, (list, tuple)):
        items = list(value)[:EXTRA_ROWS]
        if items and all(isinstance(i, dict) for i in items) and depth <= 1:
            return _dict_table(items)
        return "<ul>" + "".join(f"<li>{_generic(i, depth + 1)}</li>" for i in items) + "</ul>"
    if isinstance(value, float):
        return f"{value:.4g}"
    return esc(clip(value, 400))


def _dict_table(items: list[dict]) -> str:
    columns: list[str] = []
    for item in items:
        columns += [str(k) for k in item if str(k) not in columns]
    columns = columns[:8]
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    rows = "".join("<tr>" + "".join(f"<td>{_cell(item.get(c))}</td>" for c in columns) + "</tr>" for item in items)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list, tuple)):
        return esc(clip(json.dumps(value, ensure_ascii=False, default=str), 200))
    return esc(clip(value, 200))


# -- runs table ----------------------------------------------------------------------------------
RUN_COLUMNS = (("#", "num"), ("time (UTC)", "text"), ("status", "text"), ("val_bpb", "num"),
               (f"gain over the reference ({GAIN_SIGN})", "num"),
               ("mem GB", "num"), ("commit", "text"), ("run", "text"), ("next", "text"), ("description", "text"))


def runs_card(table: Sequence[Run], total: int, data: dict,
              number: Callable[[Run], int] = lambda run: run.index + 1) -> str:
    """The runs table; ``number`` gives a run's experiment number in its arena (the ``#`` column)."""
    if not table:
        hint = "" if data.get("since_hours") is None else " Use --all (or a larger --since-hours) for older runs."
        return section("runs", "Runs", empty(f"No runs in this window ({window_label(data)}).{hint}"))
    head = "".join(f'<th data-type="{kind}"{" class=n" if kind == "num" else ""}>{esc(name)}</th>'
                   for name, kind in RUN_COLUMNS)
    body = "".join(_run_row(run, number(run)) for run in reversed(table))
    note = (f'<p class="muted">Newest {len(table):,} of {total:,} runs in this window; '
            "<code>memorylab list</code> or <code>memorylab export</code> have the rest.</p>"
            if len(table) < total else "")
    controls = ('<div id="runs-controls" class="controls" hidden>'
                '<input id="runs-query" type="search" placeholder="filter: description, run id, commit, tag…" '
                'aria-label="filter runs">'
                '<select id="runs-status" aria-label="status"><option value="">all statuses</option>'
                '<option value="keep">keep</option><option value="discard">discard</option>'
                '<option value="crash">crash</option>'
                + ('<option value="not_run">not run</option>' if any(r.role == "not_run" for r in table) else "")
                + '</select><span id="runs-shown" class="muted"></span></div>')
    return section("runs", f"Runs ({window_label(data)}, newest first)",
                   f'{controls}{note}<div class="scroll"><table id="runs-table"><thead><tr>{head}</tr></thead>'
                   f"<tbody>{body}</tbody></table></div>")


def _run_row(run: Run, number: int) -> str:
    delta = verdict_gain(run)  # the packet's gain over the reference, as the markdown report's column
    when = (run.timestamp or "")[:16].replace("T", " ") or "no time (imported)"  # minutes are enough; sorts as text
    desc = esc(clip(run.description, DESCRIPTION_CHARS))
    if run.tags:
        desc += f' <span class="muted">[{esc(", ".join(run.tags))}]</span>'
    if run.status == "crash" and run.error_summary:
        desc += f'<div class="err">{esc(clip(run.error_summary, DESCRIPTION_CHARS))}</div>'
    mem = f"{run.memory_gb:.1f}" if run.memory_gb is not None else ""
    status, key = esc(run.shown_status), esc(run.shown_status.replace(" ", "_"))
    return (f'<tr id="r{run.index}" class="s-{key}" data-status="{key}"><td class="n">{number}</td>'
            f"<td class=nw>{esc(when)}</td><td class=st>{status}</td><td class=n>{fmt_val(run.val_bpb)}</td>"
            f"<td class=n>{'' if delta is None else f'{delta:+.4f}'}</td><td class=n>{mem}</td>"
            f"<td><code>{esc(run.short_commit or '')}</code></td><td><code>{esc(run.run_id)}</code></td>"
            f"<td>{esc(run.next_action or '')}</td><td class=desc>{desc}</td></tr>")
