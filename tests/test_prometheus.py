"""Prometheus text exposition (0.0.4), read back by a strict parser written for these tests (and promtool)."""

from __future__ import annotations

import math
import re
import shutil
import subprocess

import pytest
from mlhelpers import log_run, make_repo, ml
from researchhelpers import T0, make_event, make_run

from memorylab_core.render.prometheus import exposition
from memorylab_core.research import health
from memorylab_core.research.memory import fold

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
OOM = "torch.OutOfMemoryError: CUDA out of memory"


class ExpositionError(ValueError):
    pass


def _unescape(text: str, allowed: str) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text) or text[i + 1] not in allowed:
                raise ExpositionError(f"bad escape in {text!r}")
            out.append("\n" if text[i + 1] == "n" else text[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _labels(text: str, pos: int) -> tuple[dict, int]:
    """Parse ``{a="x",b="y"}`` starting at ``text[pos] == '{'``; returns labels and the index after '}'."""
    labels, pos = {}, pos + 1
    while text[pos] != "}":
        match = _LABEL.match(text, pos)
        if not match or text[match.end()] != "=" or text[match.end() + 1] != '"':
            raise ExpositionError(f"bad label at {text[pos:]!r}")
        name, pos = match.group(), match.end() + 2
        if name.startswith("__") or name in labels:
            raise ExpositionError(f"reserved or repeated label {name}")
        end = pos
        while text[end] != '"':
            end += 2 if text[end] == "\\" else 1
        labels[name] = _unescape(text[pos:end], '\\"n')
        pos = end + 1
        if text[pos] == ",":
            pos += 1
        elif text[pos] != "}":
            raise ExpositionError(f"expected , or }} in {text!r}")
    return labels, pos + 1


def _value(token: str) -> float:
    if token in ("+Inf", "-Inf", "NaN"):
        return float(token.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", token):
        raise ExpositionError(f"bad value {token!r}")
    return float(token)


def parse_exposition(text: str) -> dict[str, dict]:
    """A strict reader of the text format: returns ``{family: {type, help, samples: {labels: value}}}``.

    Rejects: a missing final newline, blank lines, HELP/TYPE repeated or after the family's samples, a
    family's samples split up, unknown types, sample names other than the family's, invalid metric or
    label names, bad escapes, unparseable values or timestamps, duplicate series, samples without a TYPE.
    """
    if not text.endswith("\n"):
        raise ExpositionError("document must end with a newline")
    families: dict[str, dict] = {}
    current = None
    for line in text[:-1].split("\n"):
        if not line:
            raise ExpositionError("blank line")
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                fam = families.setdefault(name, {"type": None, "help": None, "samples": {}})
                if not _NAME.fullmatch(name) or fam["samples"] or (current not in (None, name) and fam["type"]):
                    raise ExpositionError(f"{parts[1]} for {name} out of place")
                key = parts[1].lower()
                if fam[key] is not None:
                    raise ExpositionError(f"repeated {parts[1]} for {name}")
                value = parts[3] if len(parts) == 4 else ""
                fam[key] = _unescape(value, "\\n") if key == "help" else value
                if key == "type" and value not in TYPES:
                    raise ExpositionError(f"unknown type {value!r}")
                current = name
            continue
        match = _NAME.match(line)
        if not match:
            raise ExpositionError(f"bad sample line {line!r}")
        name, pos = match.group(), match.end()
        labels = {}
        if pos < len(line) and line[pos] == "{":
            labels, pos = _labels(line, pos)
        rest = line[pos:].split(" ")
        if rest[0] != "" or len(rest) not in (2, 3):
            raise ExpositionError(f"bad sample line {line!r}")
        value = _value(rest[1])
        if len(rest) == 3 and not re.fullmatch(r"-?\d+", rest[2]):
            raise ExpositionError(f"bad timestamp in {line!r}")
        fam = families.get(name)
        if fam is None or fam["type"] is None or name != current:
            raise ExpositionError(f"sample {name} without its TYPE line just before its family")
        key = tuple(sorted(labels.items()))
        if key in fam["samples"]:
            raise ExpositionError(f"duplicate series {name}{labels}")
        fam["samples"][key] = value
    for name, fam in families.items():
        if fam["type"] is None or fam["help"] is None:
            raise ExpositionError(f"{name} lacks HELP or TYPE")
        if fam["type"] == "counter" and not name.endswith("_total"):
            raise ExpositionError(f"counter {name} should end in _total")
    return families


def test_the_strict_parser_rejects_malformed_text():
    good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 3\n"
    assert parse_exposition(good)["a_total"]["samples"] == {(("x", "1"),): 3.0}
    for bad in (good[:-1], good + "\n", good + good, "a 1\n", good.replace("counter", "gauges"),
                good.replace('"1"', '"\\q"'), good.replace(" 3", " three"), good.replace("a_total{", "a_total {"),
                "# HELP b B.\n# TYPE b gauge\nb 1\nb 2\n", "# HELP b B.\n# TYPE b gauge\nc 1\n"):
        with pytest.raises(ExpositionError):
            parse_exposition(bad)


def _ledger():
    runs = [make_run(0, "keep", 1.0, "baseline", memory_gb=40.0, ts=T0),
            make_run(1, "keep", 0.99, "matrix lr down", memory_gb=41.0, ts=T0 + 300),
            make_run(2, "discard", 0.995, "depth up", memory_gb=44.0, ts=T0 + 600)]
    runs += [make_run(3 + k, "crash", None, f"idea {k}", error_kind="oom", ts=T0 + 900 + k) for k in range(5)]
    return runs


def test_exposition_has_the_required_metrics_and_parses():
    runs = _ledger()
    state = fold(runs)
    text = exposition(runs, corrupt_lines=1, now=T0 + 3600, events=(), alerts=health.alerts(state.timeline),
                      plateau=state.timeline.plateau(), breaker=state.timeline.breaker())
    fams = parse_exposition(text)

    def value(name, **labels):
        return fams[name]["samples"][tuple(sorted(labels.items()))]

    assert value("memorylab_runs_total", status="keep") == 2 and value("memorylab_runs_total", status="crash") == 5
    assert value("memorylab_best_val_bpb", run_id="run00001") == pytest.approx(0.99)
    assert value("memorylab_last_val_bpb", run_id="run00002", status="discard") == pytest.approx(0.995)
    assert value("memorylab_keep_rate") == pytest.approx(round(1 / 7, 4))  # experiments: the baseline is none
    assert value("memorylab_crash_streak") == 5 and value("memorylab_experiments_since_last_keep") == 6
    assert value("memorylab_experiments_since_last_improvement") == 6
    assert value("memorylab_seconds_since_last_improvement") == pytest.approx(3300)
    assert value("memorylab_last_peak_memory_bytes", run_id="run00002") == round(44.0 * 1024**3)
    assert value("memorylab_ledger_corrupt_lines") == 1
    breaker = {dict(k)["state"]: v for k, v in fams["memorylab_breaker_state"]["samples"].items()}
    # five crashes, the last 45 min before "now": open, and past its 10-minute probe cool-down
    assert breaker == {"closed": 0, "warning": 0, "open": 0, "half_open": 1}
    alerts = {dict(k)["severity"]: v for k, v in fams["memorylab_alerts"]["samples"].items()}
    assert alerts["critical"] == 1 and sum(alerts.values()) == len(health.alerts(state.timeline))
    assert fams["memorylab_runs_total"]["type"] == "counter"
    # a recorded reset closes the breaker in the export too
    reset = [make_event(7)]
    closed = parse_exposition(exposition(runs, events=reset, breaker=fold(runs, reset).timeline.breaker()))
    assert closed["memorylab_breaker_state"]["samples"][(("state", "closed"),)] == 1


def test_empty_ledger_and_awkward_labels_parse():
    fams = parse_exposition(exposition([], now=T0))
    assert "memorylab_best_val_bpb" not in fams  # no value yet: omitted, not NaN
    odd = make_run(0, "keep", 1.0, "baseline")
    odd.run_id = 'imp-"quoted"\\back\nline'
    fams = parse_exposition(exposition([odd], now=T0))
    ((labels, _),) = fams["memorylab_best_val_bpb"]["samples"].items()
    assert dict(labels)["run_id"] == odd.run_id
    assert all(math.isfinite(v) for f in fams.values() for v in f["samples"].values())


def _export(tmp_path, monkeypatch) -> str:
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    repo = make_repo(tmp_path / "repo")
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    assert log_run(repo, "matrix lr 0.04 -> 0.03", "discard", 1.01).code == 0
    assert log_run(repo, "depth 8 -> 16", "crash", crash=OOM).code == 0
    out = tmp_path / "metrics.prom"
    res = ml("export", "--format", "prometheus", "--output", str(out), cwd=repo)
    assert res.code == 0, res.err
    assert parse_exposition(ml("export", "--format", "prometheus", cwd=repo).out).keys() == parse_exposition(
        out.read_text()).keys()
    return out.read_text()


def test_cli_export_parses_strictly(tmp_path, monkeypatch):
    fams = parse_exposition(_export(tmp_path, monkeypatch))
    for name in ("memorylab_runs_total", "memorylab_best_val_bpb", "memorylab_last_val_bpb", "memorylab_keep_rate",
                 "memorylab_crash_streak", "memorylab_experiments_since_last_keep",
                 "memorylab_seconds_since_last_improvement", "memorylab_last_peak_memory_bytes",
                 "memorylab_breaker_state", "memorylab_alerts", "memorylab_experiments_since_last_improvement"):
        assert name in fams, name


def test_a_new_store_exports_its_arena_at_zero_not_nothing(tmp_path):
    """An alert on absent() must tell a store with no run yet from a broken exporter."""
    home = tmp_path / "store"
    assert ml("--home", str(home), "init").code == 0
    fams = parse_exposition(ml("--home", str(home), "export", "-f", "prometheus").out)
    breaker = fams["memorylab_breaker_state"]["samples"]
    assert any(dict(labels).get("state") == "closed" and value == 1 for labels, value in breaker.items()), breaker
    assert all(value == 0 for value in fams["memorylab_runs_total"]["samples"].values())


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_check_metrics(tmp_path, monkeypatch):
    text = _export(tmp_path, monkeypatch)
    proc = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not proc.stdout.strip() and not proc.stderr.strip(), proc.stdout + proc.stderr  # no lint warnings either
