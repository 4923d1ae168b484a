"""The record schema at the boundary: writers never append an invalid record, readers skip one.

Every bad input: exit 1, one line on stderr, the journal's sha256 unchanged. A journal that already
holds a bad line (older version, hand edit) serves every command and warns with the line number.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path

import pytest
from mlhelpers import ledger, log_run, make_repo, ml

from memorylab_core.ledger.schema import (
    MAX_RECORD_BYTES,
    RecordError,
    checked_line,
    record_problem,
    validate_record,
)
from memorylab_core.ledger.store import MemoryLabError, Store

READ_COMMANDS = (("list",), ("report",), ("status",), ("check", "-d", "depth 8 -> 10"), ("guide",),
                 ("insights",), ("champion",), ("export", "-f", "jsonl"), ("export", "-f", "csv"),
                 ("export", "-f", "tsv"), ("export", "-f", "prometheus"))


def _run(**fields) -> dict:
    return {"schema_version": 1, "record_type": "run", "run_id": "r1", "timestamp_utc": "2026-01-01T00:00:00Z",
            "status": "keep", "description": "depth 8 -> 10", "metrics": {"val_bpb": 1.0}, **fields}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def repo(tmp_path):
    repo = make_repo(tmp_path / "repo")
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    return repo


# -- the validator ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "named"), [
    ({"timestamp_utc": 12345}, "timestamp_utc"),
    ({"timestamp_utc": "yesterday"}, "timestamp_utc"),
    ({"tags": "a,b"}, "tags"),
    ({"tags": [1, 2]}, "tags[0]"),
    ({"family": ["x"]}, "family"),
    ({"commit": 1234567}, "commit"),
    ({"commit": "not-hex!"}, "commit"),
    ({"categories": {"a": 1}}, "categories"),
    ({"status": "maybe"}, "status"),
    ({"run_id": "../etc"}, "run_id"),
    ({"metrics": {"val_bpb": 1e200}}, "metrics.val_bpb"),
    ({"metrics": {"val_bpb": 0}}, "metrics.val_bpb"),
    ({"metrics": {"val_bpb": "-5"}}, "metrics.val_bpb"),  # a string is no measurement, whatever it spells
    ({"metrics": {"val_bpb": True}}, "metrics.val_bpb"),
    ({"metrics": {"memory_gb": "12"}}, "metrics.memory_gb"),
    ({"metrics": {"peak_vram_mb": -1}}, "metrics.peak_vram_mb"),
    ({"metrics": {"num_steps": 1e16}}, "metrics.num_steps"),
    ({"metrics": [1.0]}, "metrics"),
    ({"error": {"summary": 3}}, "error.summary"),
    ({"error": {"tail": "x" * 70_000}}, "error.tail"),
    ({"description": "x" * 10_001}, "description"),
    ({"novelty_guard": "novel"}, "novelty_guard"),
    ({"change_signature": ["DEPTH"]}, "change_signature[0]"),
    ({"seed": 1.5}, "seed"),
    ({"train_defaults": [8]}, "train_defaults"),
    ({"train_defaults": {"DEPTH": [8]}}, "train_defaults.DEPTH"),
    ({"train_defaults": {"WINDOW_PATTERN": "S" * 201}}, "train_defaults.WINDOW_PATTERN"),
    ({"schema_version": "1"}, "schema_version"),
    ({"extra": {"deep": [1, {"x": float("nan")}]}}, "extra.deep[1].x"),
    ({"extra": {"inf": float("-inf")}}, "extra.inf"),
    ({"extra": json.loads("[" * 20 + "]" * 20)}, "nested deeper"),
    ({"extra": "\ud800"}, "extra"),
    ({"extra": "x" * (70 << 10)}, "extra"),
])
def test_each_rule_names_its_field(fields, named):
    problem = record_problem(_run(**fields))
    assert problem is not None and named in problem and "\n" not in problem
    with pytest.raises(RecordError) as err:
        validate_record(_run(**fields))
    assert isinstance(err.value, MemoryLabError)


def test_valid_records_pass_and_size_is_capped():
    assert record_problem(_run()) is None
    assert record_problem(_run(timestamp_utc=None, commit="abc1234", tags=["x"], error=None, extra={"k": [1]})) is None
    assert record_problem(_run(train_defaults={"DEPTH": 8, "MATRIX_LR": 0.04, "WINDOW_PATTERN": "SSSL"})) is None
    event = {"schema_version": 1, "record_type": "event", "event_id": "ev-1", "event_type": "champion_change",
             "timestamp_utc": "2026-01-01T00:00:00.000000Z", "run_id": "r1", "val_bpb": 0.99, "reasons": ["x"]}
    assert record_problem(event) is None
    assert "event_id" in record_problem({**event, "event_id": None})
    assert "val_bpb" in record_problem({**event, "val_bpb": float("inf")})
    many = {f"f{i}": "x" * 60_000 for i in range(20)}
    assert str(MAX_RECORD_BYTES) in record_problem(_run(**many))


# -- writers ----------------------------------------------------------------------------------------

def test_log_of_an_absurd_val_bpb_is_refused_with_one_line(repo):
    before = sha(ledger(repo))
    res = log_run(repo, "huge", "discard", 1e200)
    assert res.code == 1 and len(res.err.strip().splitlines()) == 1 and "val_bpb" in res.err
    assert sha(ledger(repo)) == before
    for args in READ_COMMANDS[:4]:
        assert ml(*args, cwd=repo).code == 0


def test_append_refuses_before_writing(tmp_path):
    store = Store(tmp_path / "s", tmp_path)
    store.init()
    with pytest.raises(RecordError), store.lock():
        store.append_many_locked([_run(), _run(run_id="r2", metrics={"val_bpb": float("nan")})])
    assert store.ledger_path.read_bytes() == b""


# -- readers ----------------------------------------------------------------------------------------

BAD_LINES = (
    {"run_id": "bad", "status": "keep", "timestamp_utc": 12345},
    {"run_id": "bad2", "status": "keep", "tags": 7, "family": {"x": 1}, "commit": 99, "categories": "c"},
    {"run_id": "bad3", "status": "discard", "metrics": {"val_bpb": 1e200}},
    {"run_id": "bad4", "status": "keep", "metrics": {"val_bpb": "-5"}},  # would lead every view as champion
)


@pytest.mark.parametrize("bad", BAD_LINES, ids=("timestamp", "types", "huge", "string-val"))
def test_a_hand_written_bad_line_is_skipped_by_every_command(repo, bad):
    with open(ledger(repo), "a") as fh:
        fh.write(json.dumps(bad) + "\n")
        fh.write('{"run_id": "nan", "status": "keep", "metrics": {"val_bpb": NaN}}\n')
    assert log_run(repo, "depth 8 -> 10", "discard", 1.01).code == 0  # appends keep working
    for args in READ_COMMANDS:
        res = ml(*args, cwd=repo)
        assert res.code == 0, (args, res.err)
        assert "line 2:" in res.err and "line 3:" in res.err, (args, res.err)
    listed = ml("list", "--json", cwd=repo).json()
    assert len(listed) == 2 and not {r["run_id"] for r in listed} & {"bad", "bad2", "bad3", "bad4", "nan"}


# -- the property test --------------------------------------------------------------------------------

def _junk(rng: random.Random, depth: int = 0):
    """A random JSON-ish value: wrong types, huge / tiny / non-finite numbers, nesting, odd text."""
    choice = rng.randrange(12 if depth < 30 else 8)
    texts = ("", "x" * rng.choice((1, 300, 20_000)), "\x00\x1b[31mred\x07", "\ud83d\ude00 é \u2028 \u202e",
             "2026-13-45T99:00:00Z", "../..", "<script>alert(1)</script>")
    numbers = (0, -1, 1e200, -1e308, 5e-324, 2**70, 2**300, 1.5, float("nan"), float("inf"), 10**30)
    if choice < 3:
        return rng.choice(texts)
    if choice < 6:
        return rng.choice(numbers)
    if choice < 8:
        return rng.choice((None, True, False))
    if choice < 10:
        return [_junk(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(("a", "val_bpb", "tail", "summary", "x" * 300)): _junk(rng, depth + 1)
            for _ in range(rng.randrange(4))}


FIELDS = ("run_id", "timestamp_utc", "status", "description", "tags", "family", "commit", "parent_commit",
          "categories", "metrics", "error", "novelty_guard", "decision_packet", "change_signature", "seed",
          "record_type", "event_id", "event_type", "schema_version", "promotion", "artifacts", "hypothesis")


def _junk_record(rng: random.Random, i: int) -> dict:
    record = _run(run_id=f"p{i}", description=f"idea {i}")
    for _ in range(rng.randrange(1, 4)):
        record[rng.choice(FIELDS)] = _junk(rng)
    if rng.random() < 0.3:
        record["metrics"] = {"val_bpb": rng.choice((1.0, 1e200, -3, None, 99.9)), "num_steps": _junk(rng)}
    return record


def _encode(record: dict) -> str:
    return json.dumps(record, ensure_ascii=True)


def test_random_records_never_break_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMORYLAB_HOME", str(tmp_path / "store"))
    rng = random.Random(11)
    records = [_junk_record(rng, i) for i in range(200)]
    source = tmp_path / "junk.jsonl"
    deep = '{"run_id": "deep", "status": "keep", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    source.write_text("\n".join([*map(_encode, records), deep]) + "\n")
    started = time.perf_counter()
    res = ml("import", str(source), "--json", cwd=tmp_path)
    assert res.code == 0, res.err
    data = res.json()
    assert 0 < data["imported"] < 200 and data["skipped"]["invalid"] + data["skipped"]["malformed"] > 0
    assert ml("import", str(source), "--json", cwd=tmp_path).json()["imported"] == 0
    for args in (("list", "--limit", "500"), ("report",), ("status",), ("check", "-d", "idea 3")):
        out = ml(*args, cwd=tmp_path)
        assert out.code == 0, (args, out.err)
    assert time.perf_counter() - started < 20
    for line in (tmp_path / "store" / "experiments.jsonl").read_text().splitlines():
        assert record_problem(json.loads(line)) is None


def _reader_verdict(line: str) -> str | None:
    """What a reader of the journal line makes of it by the full check (decode, then record_problem)."""
    try:
        record = json.loads(line, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
    except ValueError as exc:
        return f"not valid JSON ({type(exc).__name__})"
    return record_problem(record, len(line.encode()))


SHORT_LINE_CASES = [  # lines the fast path proves from their own text: each rule must still be caught
    '{"run_id": "r1", "status": "keep", "extra": {"k": {"' + "k" * 201 + '": 1}}}',
    '{"run_id": "r1", "status": "keep", "' + "k" * 201 + '": 1}',
    '{"run_id": "r1", "status": "keep", "extra": ["\\ud800"]}',
    '{"run_id": "r1", "status": "keep", "extra": "\\uD83D\\uDE00 fine pair"}',
    '{"run_id": "r1", "status": "keep", "extra": {"x": [1e200]}}',
    '{"run_id": "r1", "status": "keep", "extra": {"x": [-1e100]}}',
    '{"run_id": "r1", "status": "keep", "extra": {"x": 99999.9e96}}',
    '{"run_id": "r1", "status": "keep", "extra": ' + str(2**300) + '}',
    '{"run_id": "r1", "status": "keep", "extra": ' + str(10**76) + '}',
    '{"run_id": "r1", "status": "keep", "x": ' + "[" * 16 + "]" * 16 + '}',
    '{"run_id": "r1", "status": "keep", "x": ' + "[" * 15 + "]" * 15 + '}',
    '{"run_id": "r1", "status": "keep", "metrics": {"val_bpb": 1e200}, "extra": {"x": 1e200}}',
    '{"run_id": "r1", "status": "keep", "metrics": {"num_steps": -2, "val_bpb": 1.5}}',
    '{"run_id": "r1", "status": "keep", "metrics": {"val_bpb": "1.0"}}',
    '{"run_id": "r1", "status": "keep", "description": "' + "d" * 10_001 + '"}',
    '{"run_id": "r1", "status": "keep", "extra": {"x": NaN}}',
    '[1, 2]',
    '"just a string"',
    # unknown fields of a short line are not re-encoded: the most an encoding can grow them (6 bytes a
    # byte: DEL as \u007f; 1e15 as 1000000000000000.0) stays under the cap
    '{"run_id": "r1", "status": "keep", "extra": "' + "\x7f" * 9_950 + '"}',
    '{"run_id": "r1", "status": "keep", "extra": [' + ",".join(["1e15"] * 1_990) + ']}',
]


@pytest.mark.parametrize("line", SHORT_LINE_CASES)
def test_the_readers_fast_check_agrees_with_the_full_check(line):
    record, problem = checked_line(line.encode())
    assert problem == _reader_verdict(line)
    assert (record is None) == (problem is not None)


def test_the_readers_fast_check_agrees_on_random_records():
    rng = random.Random(5)
    for i in range(400):
        line = _encode(_junk_record(rng, i))
        record, problem = checked_line(line.encode())
        assert problem == _reader_verdict(line), line[:200]
        assert record == (json.loads(line) if problem is None else None)


# -- long text costs little ------------------------------------------------------------------------------

LONG_SHAPES = {
    "one_word": "a" * 100_000,
    "numbers": " ".join(str(i) for i in range(30_000))[:100_000],
    "arrows": ("x -> y " * 15_000)[:100_000],
    "knobs": ("matrix lr depth batch size warmdown " * 3_000)[:100_000],
    "unicode": ("ReLU² → SwiGLU é \u2028 ¨ \u202e " * 5_000)[:100_000],
    "spaces_dashes_parens": " " * 40_000 + "-" * 30_000 + "(" * 15_000 + "crashed " * 1_800 + ")",
}


@pytest.mark.parametrize("text", LONG_SHAPES.values(), ids=LONG_SHAPES.keys())
def test_a_100k_character_description_is_cheap_in_check_and_import(repo, text):
    started = time.perf_counter()
    res = ml("check", "-d", text, "--json", cwd=repo)
    assert res.code == 0, res.err
    assert time.perf_counter() - started < 2.0  # measured ~0.1 s; docs/benchmarks.md
    tsv = repo / "long.tsv"
    tsv.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\nabc1234\t1.0\t1.0\tdiscard\t"
                   + text.replace("\t", " ").replace("\n", " ").replace("\u2028", " ") + "\n")
    started = time.perf_counter()
    res = ml("import", str(tsv), "--json", cwd=repo)
    assert res.code == 0 and res.json()["imported"] == 1, res.err
    assert time.perf_counter() - started < 2.0
