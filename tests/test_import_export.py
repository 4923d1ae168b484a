"""Bringing history in and out: import of real results.tsv files, exports, show and list."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from mlhelpers import REAL_LEDGERS, log_run, make_repo, ml

FIXTURES = REAL_LEDGERS
needs_fixtures = pytest.mark.skipif(not FIXTURES, reason="shared/fixtures/real-ledgers not present")


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMORYLAB_HOME", str(tmp_path / "store"))
    work = tmp_path / "work"
    work.mkdir()
    return work


def _rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()[1:] if line.strip()]


@needs_fixtures
@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_import_fixture_counts_match_the_file(home, fixture):
    res = ml("import", str(fixture), "--json", cwd=home)
    assert res.code == 0, res.err
    data = res.json()
    expected = Counter(row[3] for row in _rows(fixture))
    assert data["imported"] == data["rows_read"] == sum(expected.values())
    assert data["status_counts"] == dict(expected)
    listed = ml("list", "--limit", "1000", "--json", cwd=home).json()
    assert Counter(r["status"] for r in listed) == expected
    # Crashes have no val_bpb; everything else keeps its number.
    for row in listed:
        assert (row["val_bpb"] is None) == (row["status"] == "crash")


@needs_fixtures
def test_reimport_is_idempotent_and_order_is_the_timeline(home):
    first = ml("import", *map(str, FIXTURES), "--json", cwd=home).json()
    again = ml("import", *map(str, FIXTURES), "--json", cwd=home).json()
    assert again["imported"] == 0 and again["skipped"]["already_imported"] == first["imported"]
    listed = ml("list", "--limit", "1000", "--json", cwd=home).json()[::-1]  # oldest first
    expected = [row[4] for f in FIXTURES for row in _rows(f)]
    assert [r["description"] for r in listed] == expected


def test_a_value_that_is_no_measurement_is_imported_without_it_and_said(home):
    """A kept or discarded row whose val_bpb is out of (0, 100) or not finite, or whose memory is negative, is
    imported without the value and one warning each; a crash's upstream 0.000000 is none, silently."""
    path = home / "odd.tsv"
    path.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
                    "a000001\t1.0\t4\tkeep\tbaseline\na000002\t-0.5\t4\tkeep\tneg\na000003\tnan\t4\tdiscard\tnan\n"
                    "a000004\t150\t4\tdiscard\tbig\na000005\t1.1\t-3\tdiscard\tneg mem\n"
                    "a000006\t0.000000\t0.0\tcrash\tboom\n")
    res = ml("import", str(path), "--json", cwd=home).json()
    assert res["imported"] == 6
    said = [w for w in res["warnings"] if "is not a measurement" in w]
    assert len(said) == 4 and not any("line 7" in w for w in said), said
    values = {r["description"]: r["val_bpb"] for r in ml("list", "--json", cwd=home).json()}
    assert values == {"baseline": 1.0, "neg": None, "nan": None, "big": None, "neg mem": 1.1, "boom": None}


def test_another_tools_jsonl_with_val_bpb_at_the_top_level_is_measured(home):
    """A JSONL line with val_bpb (and memory_gb) beside its status, not under "metrics", is a measured run:
    list shows its value and a kept one is the champion; a value that is no measurement is a warning."""
    path = home / "other.jsonl"
    path.write_text('{"commit":"abc1234","val_bpb":0.99,"status":"keep","description":"baseline"}\n'
                    '{"commit":"abc1235","val_bpb":0.98,"memory_gb":4.5,"status":"keep","description":"lr up"}\n'
                    '{"commit":"abc1236","val_bpb":-1,"status":"discard","description":"neg"}\n'
                    '{"commit":"abc1237","val_bpb":"x","status":"discard","description":"word"}\n')
    res = ml("import", str(path), "--json", cwd=home).json()
    assert res["imported"] == 4 and sum("val_bpb" in w for w in res["warnings"]) == 2, res["warnings"]
    listed = {r["description"]: (r["val_bpb"], r["memory_gb"]) for r in ml("list", "--json", cwd=home).json()}
    assert listed == {"baseline": (0.99, None), "lr up": (0.98, 4.5), "neg": (None, None), "word": (None, None)}
    assert ml("status", "--json", cwd=home).json()["champion"]["val_bpb"] == 0.98


def test_a_row_is_known_by_its_text_not_its_line(home, tmp_path):
    """Blank lines, or rows added or removed elsewhere in results.tsv, never make a row new on a second
    import; a store whose keys were written with the row's line number (before round 3 session 10) is
    recognised too."""
    header = "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
    rows = ["a1b2c3d\t1.000000\t4.0\tkeep\tbaseline\n", "b2c3d4e\t1.010000\t4.0\tdiscard\tdepth 10\n",
            "c3d4e5f\t0.990000\t4.0\tkeep\tmatrix lr 0.05\n"]
    path = home / "results.tsv"
    path.write_text(header + "".join(rows))
    assert ml("import", str(path), "--json", cwd=home).json()["imported"] == 3
    path.write_text(header + "\n" + rows[0] + "\n" + rows[2] + "e4f5a6b\t0.980000\t4.0\tkeep\tnew row\n")
    again = ml("import", str(path), "--json", cwd=home).json()
    assert again["imported"] == 1 and again["skipped"]["already_imported"] == 2
    # a store written with line-numbered keys: the same rows are still the same rows
    journal = tmp_path / "store" / "experiments.jsonl"
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    for rec, line_no, raw in zip(lines, (2, 3, 4), rows, strict=False):
        rec["import_key"] = hashlib.sha256(f"results.tsv\0{line_no}\0{raw.rstrip(chr(10))}".encode()).hexdigest()
        rec["run_id"] = f"imp-{rec['import_key'][:10]}-{rec['commit']}"  # the run id an old import derived
    journal.write_text("".join(json.dumps(rec) + "\n" for rec in lines))
    path.write_text(header + "".join(rows))
    old = ml("import", str(path), "--json", cwd=home)
    assert old.code == 0 and old.json()["imported"] == 0, old.out


@needs_fixtures
@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_export_tsv_round_trips_imported_rows(home, fixture):
    assert ml("import", str(fixture), cwd=home).code == 0
    out = ml("export", "--format", "tsv", cwd=home)
    assert out.code == 0
    assert out.out.splitlines() == [line for line in fixture.read_text().splitlines() if line.strip()]


def test_malformed_rows_are_reported_not_fatal(home):
    messy = home / "messy.tsv"
    messy.write_bytes(
        "\ufeffstatus\tcommit\tval_bpb\tdescription\tmemory_gb\tcomment\r\n"
        "keep\tabc1234\t1.100000\tbaseline\t10.0\tfirst\r\n"
        "\r\n"
        "this row has no tabs at all\r\n"
        "reverted\tdef5678\t1.200000\tdepth 10 (worse)\t10.1\t\r\n"
        "OOM\t9999999\t0.000000\tbatch 2^20\t0.0\t\r\n"
        "improved\t1234abc\t1.050000\tmatrix lr 0.04 -> 0.05\t10.0\t\r\n".encode()
    )
    res = ml("import", str(messy), "--json", cwd=home)
    assert res.code == 0, res.err
    data = res.json()
    assert data["imported"] == 4 and data["skipped"] == {"malformed": 1}
    assert data["status_counts"] == {"keep": 2, "discard": 1, "crash": 1}
    assert data["mapped_statuses"] == {"reverted -> discard": 1, "OOM -> crash": 1, "improved -> keep": 1}
    assert any("line 4" in w for w in data["warnings"])
    best = ml("list", "--sort", "val_bpb", "--limit", "1", "--json", cwd=home).json()[0]
    assert best["description"] == "matrix lr 0.04 -> 0.05"
    shown = ml("show", best["run_id"], "--json", cwd=home).json()["record"]
    assert shown["original_status"] == "improved" and shown["import"]["extra"] == {"comment": ""}


def test_dry_run_writes_nothing(home, tmp_path):
    tsv = home / "r.tsv"
    tsv.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\nabc1234\t1.0\t1.0\tkeep\tbase\n")
    res = ml("import", str(tsv), "--dry-run", "--json", cwd=home)
    assert res.code == 0 and res.json()["imported"] == 1
    assert not (tmp_path / "store" / "experiments.jsonl").exists()


def test_import_missing_file_is_a_clear_error(home):
    res = ml("import", str(home / "nope.tsv"), cwd=home)
    assert res.code == 1 and "not a file" in res.err


def test_jsonl_export_import_round_trip(home, tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    monkeypatch.setenv("MEMORYLAB_HOME", str(tmp_path / "a"))
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    assert log_run(repo, 'comma, "quotes"\nand newline', "discard", 1.1).code == 0
    dump = tmp_path / "dump.jsonl"
    assert ml("export", "--format", "jsonl", "--output", str(dump), cwd=repo).code == 0
    monkeypatch.setenv("MEMORYLAB_HOME", str(tmp_path / "b"))
    assert ml("import", str(dump), "--json", cwd=repo).json()["imported"] == 2
    assert ml("import", str(dump), "--json", cwd=repo).json()["imported"] == 0
    runs = ml("list", "--json", cwd=repo).json()
    assert [r["description"] for r in runs] == ['comma, "quotes"\nand newline', "baseline"]


def test_native_tsv_export_matches_results_tsv(tmp_path, monkeypatch):
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    repo = make_repo(tmp_path / "repo")
    assert log_run(repo, "baseline", "keep", 0.9979).code == 0
    assert log_run(repo, "tabs\tand\nlines", "discard", 1.0).code == 0
    assert log_run(repo, "boom", "crash", crash="RuntimeError: x").code == 0
    exported = ml("export", "--format", "tsv", cwd=repo).out
    assert exported == (repo / "results.tsv").read_text()


def test_csv_export_survives_commas_quotes_newlines(tmp_path, monkeypatch):
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    repo = make_repo(tmp_path / "repo")
    text = 'a, "b"\nc'
    assert log_run(repo, text, "keep", 1.0, "--tags", "x,y").code == 0
    rows = list(csv.DictReader(io.StringIO(ml("export", "-f", "csv", cwd=repo).out)))
    assert rows[0]["description"] == text and rows[0]["tags"] == "x,y" and rows[0]["val_bpb"] == "1.000000"


def test_show_and_list_filters(tmp_path, monkeypatch):
    monkeypatch.delenv("MEMORYLAB_HOME", raising=False)
    repo = make_repo(tmp_path / "repo")
    assert log_run(repo, "baseline", "keep", 1.0, "--family", "base", "--tags", "a").code == 0
    assert log_run(repo, "lr up", "discard", 1.1, "--family", "opt", "--tags", "a,b").code == 0
    assert log_run(repo, "crash", "crash", crash="RuntimeError: x").code == 0
    assert log_run(repo, "lr down", "keep", 0.9, "--family", "opt", "--tags", "b").code == 0

    def listed(*args):
        return [r["description"] for r in ml("list", "--json", *args, cwd=repo).json()]

    assert listed() == ["lr down", "crash", "lr up", "baseline"]
    assert listed("--status", "keep") == ["lr down", "baseline"]
    assert listed("--family", "opt", "--sort", "val_bpb") == ["lr down", "lr up"]
    assert listed("--tag", "a", "--tag", "b") == ["lr up"]
    assert listed("--sort", "val_bpb", "--limit", "2") == ["lr down", "baseline"]
    assert listed("--since-hours", "1") == listed()
    run_id = ml("list", "--json", "--limit", "1", cwd=repo).json()[0]["run_id"]
    shown = ml("show", run_id, cwd=repo)
    assert shown.code == 0 and "lr down" in shown.out and "decision_packet" in shown.out
    ambiguous = ml("show", run_id[:2], cwd=repo)  # every id starts with the year
    assert ambiguous.code == 1 and ambiguous.err.count("\n") == 1
    assert f"run id prefix '{run_id[:2]}' is ambiguous: 4 runs match" in ambiguous.err


@pytest.mark.parametrize("bad", ["../../etc/passwd", "..", "runs/../../x", "a b", "é"])
def test_show_rejects_path_traversal(tmp_path, monkeypatch, bad):
    monkeypatch.setenv("MEMORYLAB_HOME", str(tmp_path / "store"))
    res = ml("show", bad, cwd=tmp_path)
    assert res.code == 1 and res.err.startswith("memorylab: error:") and res.err.count("\n") == 1


def test_show_refuses_artifact_paths_outside_the_store(tmp_path, monkeypatch):
    store = tmp_path / "store"
    monkeypatch.setenv("MEMORYLAB_HOME", str(store))
    store.mkdir()
    record = {"run_id": "evil", "status": "keep", "description": "x", "metrics": {"val_bpb": 1.0},
              "artifacts": {"run_log": "../../../etc/passwd"}}
    (store / "experiments.jsonl").write_text(json.dumps(record) + "\n")
    data = ml("show", "evil", "--json", cwd=tmp_path).json()
    assert data["artifact_files"]["run_log"] == {"path": None, "exists": False, "outside_store": True}


def test_unknown_run_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMORYLAB_HOME", str(tmp_path / "store"))
    assert ml("init", cwd=tmp_path).code == 0
    res = ml("show", "20990101T000000Z-abc1234", cwd=tmp_path)
    assert res.code == 1 and "no run" in res.err


def test_export_rejects_bad_format_and_directory_output(home, tmp_path):
    assert ml("init", cwd=home).code == 0
    before = sorted(p.name for p in tmp_path.iterdir())
    bad_format = ml("export", "--format", "xml", cwd=home)
    assert bad_format.code == 1 and bad_format.err.startswith("memorylab: error:")
    to_dir = ml("export", "--format", "tsv", "--output", str(home), cwd=home)
    assert to_dir.code == 1 and "is a directory" in to_dir.err and to_dir.err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("command", [["list"], ["report", "--output", "-"], ["export", "-f", "prometheus"],
                                     ["check", "-d", "an idea"], ["guide"], ["status"], ["champion"]])
def test_read_only_commands_on_a_missing_store_say_so_and_create_nothing(home, tmp_path, command):
    """Issue 26: a mistyped home is not an empty history (`check` would pass a guard it never ran)."""
    res = ml(*command, cwd=home)
    assert res.code == 1 and res.err.count("\n") == 1, res.err
    assert res.err.startswith(f"memorylab: error: no MemoryLab store at {tmp_path / 'store'} ")
    assert not (tmp_path / "store").exists()


def test_check_never_passes_a_guard_it_could_not_run(home, tmp_path):
    assert ml("init", cwd=home).code == 0
    (home / "old.tsv").write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
                                  "abc1234\t1.000000\t44.0\tdiscard\traise matrix lr to 0.05\n")
    assert ml("import", str(home / "old.tsv"), cwd=home).code == 0
    blocked = ml("check", "-d", "raise matrix lr to 0.05", "--fail-on-similar", "--json", cwd=home)
    assert blocked.code == 2 and blocked.json()["store"] == str(tmp_path / "store")
    typo = ml("--home", str(tmp_path / "stor"), "check", "-d", "raise matrix lr to 0.05", "--fail-on-similar",
              cwd=home)
    assert typo.code == 1 and "no MemoryLab store at" in typo.err


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\r", "\x1c", "\x1d", "\x1e", "\x0b", "\x0c"])
def test_tsv_rows_end_at_newline_only(home, tmp_path, separator):
    """Issue 26: a Unicode line boundary inside a description ended the row, so the rest imported as a
    forged keep that became the arena's champion. Rows end at \\n or \\r\\n only, as csv reads them."""
    forged = (f"commit\tval_bpb\tmemory_gb\tstatus\tdescription\r\n"
              f"abc1234\t1.000000\t44.0\tkeep\tbaseline\r\n"
              f"bcd2345\t1.050000\t44.0\tdiscard\tharmless idea{separator}deadbee\t0.1\t1.0\tkeep\tINJECTED\r\n")
    (home / "forged.tsv").write_bytes(forged.encode("utf-8"))
    res = ml("import", str(home / "forged.tsv"), "--json", cwd=home)
    assert res.code == 0, res.err
    assert res.json()["imported"] == 2
    rows = ml("list", "--json", cwd=home).json()
    assert sorted(r["val_bpb"] for r in rows) == [1.0, 1.05]
    assert "INJECTED" in rows[0]["description"] and rows[0]["status"] == "discard"


# -- import refuses junk (exit 1, one line, journal unchanged) ------------------------------------------

def _junk_files(tmp_path: Path) -> dict[str, Path]:
    import gzip
    import random
    import zipfile

    rng = random.Random(5)
    files = {"random.tsv": bytes(rng.randrange(256) for _ in range(4096)),
             "nul.tsv": b"commit\tval_bpb\tmemory_gb\tstatus\tdescription\nabc1234\t1.0\t1.0\tkeep\tx\x00y\n",
             "results.tsv.gz": gzip.compress(b"commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"),
             "no_header.tsv": b"abc1234\t1.0\t1.0\tkeep\tbase\n",
             "prose.txt": b"just some notes\nabout runs\n",
             "empty.jsonl": b"\n\nnot json at all\n[1, 2]\n"}
    paths = {}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths[name] = tmp_path / name
    with zipfile.ZipFile(tmp_path / "r.zip", "w") as archive:
        archive.writestr("results.tsv", "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n")
    paths["r.zip"] = tmp_path / "r.zip"
    paths["ls"] = Path("/bin/ls")
    return paths


def test_import_refuses_files_that_are_not_text_in_a_known_format(home, tmp_path):
    tsv = home / "ok.tsv"
    tsv.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\nabc1234\t1.0\t1.0\tkeep\tbase\n")
    assert ml("import", str(tsv), cwd=home).code == 0
    journal = tmp_path / "store" / "experiments.jsonl"
    before = hashlib.sha256(journal.read_bytes()).hexdigest()
    for name, path in _junk_files(tmp_path).items():
        res = ml("import", str(path), cwd=home)
        assert res.code == 1 and len(res.err.strip().splitlines()) == 1, (name, res.err)
        assert "cannot import" in res.err, (name, res.err)
        assert hashlib.sha256(journal.read_bytes()).hexdigest() == before, name
    assert ml("list", cwd=home).code == 0


@pytest.mark.parametrize("field", [{"timestamp_utc": 12345}, {"tags": "a,b"}, {"family": 7}, {"commit": 1234},
                                   {"categories": "optimizer"}, {"metrics": {"val_bpb": 1e200}}])
def test_import_skips_mistyped_records_with_the_line_number(home, tmp_path, field):
    good = {"schema_version": 1, "record_type": "run", "run_id": "good1", "status": "keep",
            "timestamp_utc": "2026-01-01T00:00:00Z", "description": "baseline", "metrics": {"val_bpb": 1.0}}
    source = tmp_path / "fork.jsonl"
    source.write_text(json.dumps(good) + "\n" + json.dumps({**good, "run_id": "bad1", **field}) + "\n")
    res = ml("import", str(source), "--json", cwd=home)
    assert res.code == 0, res.err
    data = res.json()
    assert data["imported"] == 1 and data["skipped"] == {"invalid": 1}
    assert any("line 2" in w and next(iter(field)) in w for w in data["warnings"])
    for args in (("list",), ("report",), ("status",), ("check", "-d", "depth 8 -> 10"), ("show", "good1")):
        out = ml(*args, cwd=home)
        assert out.code == 0 and "Traceback" not in out.err, (args, out.err)
    assert [r["run_id"] for r in ml("list", "--json", cwd=home).json()] == ["good1"]


def test_long_tsv_fields_are_cut_with_a_warning(home):
    tsv = home / "long.tsv"
    tsv.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\nabc1234\t1.0\t1.0\tkeep\t" + "w" * 20_000 + "\n")
    data = ml("import", str(tsv), "--json", cwd=home).json()
    assert data["imported"] == 1 and any("cut to 10000" in w for w in data["warnings"])
    assert len(ml("list", "--json", cwd=home).json()[0]["description"]) == 10_000


def test_jsonl_round_trip_keeps_runs_events_and_ids(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    monkeypatch.setenv("MEMORYLAB_HOME", str(tmp_path / "a"))
    assert log_run(repo, "baseline", "keep", 1.0).code == 0
    assert log_run(repo, "depth 8 -> 10", "keep", 0.98).code == 0
    assert log_run(repo, "boom", "crash", crash="RuntimeError: x").code == 0
    first = ml("list", "--json", cwd=repo).json()[-1]["run_id"]
    assert ml("champion", "--rollback", first, "--reason", "regressed", cwd=repo).code == 0
    assert ml("status", "--reset-breaker", "--reason", "fixed", cwd=repo).code == 0
    dump_a, dump_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert ml("export", "-f", "jsonl", "-o", str(dump_a), cwd=repo).code == 0
    exported = [json.loads(line) for line in dump_a.read_text().splitlines()]
    kinds = Counter(r.get("event_type", "run") for r in exported)
    assert kinds["run"] == 3 and kinds["champion_change"] == 1 and kinds["breaker_reset"] == 1
    champion_a = ml("champion", "--json", cwd=repo).json()
    assert champion_a.pop("store") == str(tmp_path / "a")
    monkeypatch.setenv("MEMORYLAB_HOME", str(tmp_path / "b"))
    res = ml("import", str(dump_a), "--json", cwd=repo)
    assert res.code == 0 and res.json()["imported"] == 3 and res.json()["events"] == len(exported) - 3, res.out
    again = ml("import", str(dump_a), "--json", cwd=repo).json()
    assert again["imported"] == again["events"] == 0 and again["skipped"] == {"already_imported": len(exported)}
    assert ml("export", "-f", "jsonl", "-o", str(dump_b), cwd=repo).code == 0
    assert dump_b.read_text() == dump_a.read_text()
    champion_b = ml("champion", "--json", cwd=repo).json()
    assert champion_b.pop("store") == str(tmp_path / "b") and champion_b == champion_a


def _tsv(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    path.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
                    + "".join(f"{c}\t{v}\t1.0\t{s}\t{d}\n" for c, v, s, d in rows))
    return path


def test_imports_in_turn_keep_every_arena_standing_and_add_only_new_rows(home, tmp_path):
    a = _tsv(tmp_path / "alpha.tsv", [("aaaaaa1", "1.00", "keep", "baseline"), ("aaaaaa2", "0.98", "keep", "lr up"),
                                      ("aaaaaa3", "0.99", "discard", "depth up")])
    b = _tsv(tmp_path / "beta.tsv", [("bbbbbb1", "1.20", "keep", "baseline"), ("bbbbbb2", "1.10", "keep", "wd")])
    assert ml("import", str(a), cwd=home).code == 0
    assert ml("import", str(b), cwd=home).code == 0
    registry = json.loads((tmp_path / "store" / "champion_challenger.json").read_text())
    best = {arena: s["champion"]["val_bpb"] for arena, s in registry["arenas"].items()}
    assert sorted(best.values()) == [0.98, 1.10] and registry["runs"] == 5
    again = ml("import", str(a), str(b), "--json", cwd=home).json()
    assert again["imported"] == 0 and again["skipped"]["already_imported"] == 5
    _tsv(b, [("bbbbbb1", "1.20", "keep", "baseline"), ("bbbbbb2", "1.10", "keep", "wd"),
             ("bbbbbb3", "1.05", "keep", "warmdown")])  # the file grew by one row
    grown = ml("import", str(b), "--json", cwd=home).json()
    assert grown["imported"] == 1
    registry = json.loads((tmp_path / "store" / "champion_challenger.json").read_text())
    best = {arena: s["champion"]["val_bpb"] for arena, s in registry["arenas"].items()}
    assert sorted(best.values()) == [0.98, 1.05] and registry["runs"] == 6


def test_lines_with_their_own_run_ids_and_top_level_values_are_measured_and_none_is_dropped(home):
    """Another tool's lines that already carry a run id and a valid status pass the schema as they are, yet their
    top-level val_bpb still moves under metrics; a run id used twice for two different runs keeps both."""
    path = home / "tool.jsonl"
    path.write_text('{"run_id":"t1","commit":"a1b2c3d","val_bpb":0.9979,"status":"keep","description":"baseline"}\n'
                    '{"run_id":"t2","commit":"b2c3d4e","val_bpb":0.99,"status":"keep","description":"depth 10"}\n'
                    '{"run_id":"t2","commit":"c3d4e5f","val_bpb":0.98,"status":"keep","description":"other run"}\n')
    res = ml("import", str(path), "--json", cwd=home).json()
    assert res["imported"] == 3 and any("used by two different rows" in w for w in res["warnings"]), res
    listed = {r["description"]: r["val_bpb"] for r in ml("list", "--json", cwd=home).json()}
    assert listed == {"baseline": 0.9979, "depth 10": 0.99, "other run": 0.98}
    assert ml("status", "--json", cwd=home).json()["champion"]["val_bpb"] == 0.98


def test_an_export_of_native_and_imported_runs_imports_whole_into_a_new_store(home, tmp_path):
    """A store that holds runs logged here (no import key) and imported rows: its JSONL export rebuilds it
    whole (a run without an import key once made every later keyed row read as already imported)."""
    log = home / "run.log"
    log.write_text("run_token: t\nseed: 42\n---\nval_bpb:          0.997900\npeak_vram_mb:     45060.2\n")
    assert ml("log", "-d", "native baseline", "--status", "keep", "--log", str(log), cwd=home).code == 0
    tsv = home / "results.tsv"
    tsv.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n" + "".join(
        f"{i:07x}\t{1 + i / 100:.6f}\t44.0\tdiscard\tidea {i}\n" for i in range(1, 5)))
    assert ml("import", str(tsv), cwd=home).code == 0
    exported = home / "all.jsonl"
    assert ml("export", "-f", "jsonl", "-o", str(exported), cwd=home).code == 0
    res = ml("--home", str(tmp_path / "rebuilt"), "import", str(exported), "--json", cwd=home).json()
    assert not res["skipped"].get("already_imported"), res
    assert len(ml("--home", str(tmp_path / "rebuilt"), "list", "--json", cwd=home).json()) == 5
    tsv_out = ml("export", "-f", "tsv", cwd=home).out.splitlines()
    assert tsv_out[1].split("\t")[2] == "44.0"  # peak_vram_mb alone gives memory_gb, as list shows it


def test_two_ledgers_with_one_name_are_refused_not_merged(home):
    """gpu0/results.tsv and gpu1/results.tsv would share an arena and lose gpu1's repeated baseline row as
    "already imported": one line, nothing imported, and the way out."""
    rows = "commit\tval_bpb\tmemory_gb\tstatus\tdescription\na1b2c3d\t0.997900\t44.0\tkeep\tbaseline\n"
    for gpu in ("gpu0", "gpu1"):
        (home / gpu).mkdir()
        (home / gpu / "results.tsv").write_text(rows)
    res = ml("import", str(home / "gpu0" / "results.tsv"), str(home / "gpu1" / "results.tsv"), cwd=home)
    assert res.code == 1 and "two files are named results.tsv" in res.err and "gpu1-results.tsv" in res.err


def test_a_dry_run_import_writes_nothing_not_even_a_store(tmp_path):
    tsv = tmp_path / "b.tsv"
    tsv.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\na1b2c3d\t0.997900\t44.0\tkeep\tbaseline\n")
    res = ml("--home", str(tmp_path / "G"), "import", "--dry-run", str(tsv), cwd=tmp_path)
    assert res.code == 0 and "would import 1 of 1 rows" in res.out and not (tmp_path / "G").exists()


def test_imported_experiments_under_one_commit_are_not_replicates(home):
    """A ledger whose author never committed gives every experiment one commit: those rows measured different
    things, so they form no replicate group (σ stays the prior) and the champion is the best kept row."""
    rows = [("baseline", "keep", 0.9973), ("exp1 depth 10", "discard", 1.0010), ("exp2 lr up", "keep", 0.9969),
            ("exp3 warmdown", "keep", 0.9964), ("exp4 wd", "discard", 1.0040)]
    path = home / "one-commit.tsv"
    path.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n" + "".join(
        f"228791f\t{val:.6f}\t44.0\t{status}\t{desc}\n" for desc, status, val in rows))
    assert ml("import", str(path), cwd=home).code == 0
    champ = ml("champion", "--json", cwd=home).json()
    assert champ["noise"]["source"] == "default", champ["noise"]
    status = ml("status", "--json", cwd=home).json()
    assert status["champion"]["val_bpb"] == 0.9964 and status["verdict"]["reference_n"] == 1


def test_import_warnings_go_to_stderr_like_every_commands(home):
    """`import ... > log` in a cron job: the summary on stdout, each warning on stderr with its prefix."""
    path = home / "w.tsv"
    path.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
                    "a1b2c3d\t0.997900\t44.0\tkeep\tbaseline\nb2c3d4e\tnan\t44.0\tdiscard\tbroke\n")
    res = ml("import", str(path), cwd=home)
    assert res.code == 0 and "warning" not in res.out
    assert "memorylab: warning: w.tsv line 3: val_bpb 'nan' is not a measurement" in res.err, res.err
