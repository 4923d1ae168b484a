"""Tests for prepare.py: tokenizer, dataloader, metric, and the three data sources.

Everything runs against small temp caches: the `prepared_cache` fixture (conftest.py) for the
tokenizer/dataloader/metric, a local http.server for the climbmix downloader, and fake directory trees
for python-corpus. CLI tests run prepare.py as a subprocess with AUTORESEARCH_CACHE pointing at tmp.
"""

import hashlib
import io
import json
import math
import os
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import prepare

REPO = Path(__file__).resolve().parents[1]


def run_cli(args, cache, **env):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTORESEARCH_")}
    full_env.update(AUTORESEARCH_CACHE=str(cache), AUTORESEARCH_PROFILE="cpu", PYTHONUNBUFFERED="1")
    full_env.update(env)
    return subprocess.run([sys.executable, str(REPO / "prepare.py"), *args], env=full_env, cwd=cache,
                          capture_output=True, text=True, timeout=120)


def assert_clean_failure(proc, *needles):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "prepare.py: error:" in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def table_bytes(**columns):
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


def parquet_bytes(texts):
    return table_bytes(text=texts)


def write_shards(data_dir, train_texts, val_texts):
    """A data dir by hand: one train shard, one val shard, and the manifest."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "shard_00000.parquet").write_bytes(parquet_bytes(train_texts))
    (data_dir / "val.parquet").write_bytes(parquet_bytes(val_texts))
    prepare._write_manifest(data_dir, "test", ["shard_00000.parquet"], "val.parquet")
    return data_dir


@pytest.fixture(scope="module")
def paths(prepared_cache):
    cache_dir = prepare.cache_dir_for("cpu", "local", prepared_cache)
    return cache_dir / "data", cache_dir / "tokenizer"


@pytest.fixture(scope="module")
def tokenizer(paths):
    return prepare.Tokenizer.from_directory(paths[1])


# ---------------------------------------------------------------------------------------------
# Profiles and the cache layout


def test_import_time_constants_and_clean_import_errors(tmp_path):
    code = ("import json, prepare as p; print(json.dumps([p.PROFILE, p.MAX_SEQ_LEN, p.TIME_BUDGET, "
            "p.EVAL_TOKENS, p.VOCAB_SIZE, p.SOURCE, str(p.DATA_DIR), str(p.TOKENIZER_DIR)]))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTORESEARCH_")}
    env.update(AUTORESEARCH_CACHE=str(tmp_path), AUTORESEARCH_PROFILE="gpu", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    cache_dir = tmp_path / "gpu-climbmix"
    assert json.loads(proc.stdout) == ["gpu", 2048, 300, 40 * 524288, 8192, "climbmix",
                                       str(cache_dir / "data"), str(cache_dir / "tokenizer")]
    proc = subprocess.run([sys.executable, "-c", code], env={**env, "AUTORESEARCH_PROFILE": "tpu"},
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "prepare.py: error: AUTORESEARCH_PROFILE must be 'gpu' or 'cpu'" in proc.stderr


def test_profile_and_source_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("AUTORESEARCH_SOURCE", raising=False)
    cpu = prepare.PROFILES["cpu"]
    assert cpu["max_seq_len"] == 256 and cpu["time_budget"] == 60
    assert cpu["eval_tokens"] < prepare.PROFILES["gpu"]["eval_tokens"] and cpu["vocab_size"] < 8192
    for profile in ("gpu", "cpu"):
        monkeypatch.setenv("AUTORESEARCH_PROFILE", profile)
        assert prepare._detect_profile() == profile
    monkeypatch.delenv("AUTORESEARCH_PROFILE")
    assert prepare._detect_profile() == ("gpu" if torch.cuda.is_available() else "cpu")
    # Profile default, then the source prepared last (per profile), then AUTORESEARCH_SOURCE.
    assert prepare._detect_source("cpu", tmp_path) == "python-corpus"
    assert prepare._detect_source("gpu", tmp_path) == "climbmix"
    (tmp_path / "active.json").write_text(json.dumps({"cpu": "local"}))
    assert prepare._detect_source("cpu", tmp_path) == "local"
    assert prepare._detect_source("gpu", tmp_path) == "climbmix"
    monkeypatch.setenv("AUTORESEARCH_SOURCE", "climbmix")
    assert prepare._detect_source("cpu", tmp_path) == "climbmix"
    monkeypatch.setenv("AUTORESEARCH_SOURCE", "bogus")
    with pytest.raises(SystemExit, match="unknown source 'bogus'"):
        prepare._detect_source("cpu", tmp_path)
    assert prepare.cache_dir_for("cpu", "local", tmp_path) == tmp_path / "cpu-local"


def test_unknown_source_and_misplaced_data_dir_fail_cleanly(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(prepare, "CACHE_ROOT", tmp_path)
    with pytest.raises(SystemExit) as info:
        prepare.main(["--source", "nope"])
    assert info.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err
    assert prepare.main(["--source", "python-corpus", "--data-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == "prepare.py: error: --data-dir is only used with --source local"
    with pytest.raises(prepare.PrepareError, match="unknown source"):
        prepare.prepare("nope", "cpu", cache_root=tmp_path)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Tokenizer

UNICODE_SAMPLES = [
    "",
    "hello world",
    "emoji 🦙🚀 and a family 👨‍👩‍👧 with a skin tone 👍🏽",
    "日本語のテキストと中文字符，한국어도 있어요。",
    "combining: e\u0301 a\u0308 n\u0303 \u0915\u094d\u0937",  # decomposed accents, Devanagari conjunct
    "tabs\tand\nnewlines\r\n\n\n   trailing spaces   \n\t\t",
    "digits 1234567890 3.14159 0xDEADBEEF",
    "<|reserved_0|> looks special but is just text",
    "\x00\x01 control \ufeff bom \U0001f600\U000e0001",
]


def test_tokenizer_roundtrip_and_specials(tokenizer, paths):
    n_vocab = tokenizer.get_vocab_size()
    assert n_vocab == prepare.VOCAB_SIZE == 4096  # the corpus is big enough for the full cpu vocab
    bos = tokenizer.get_bos_token_id()
    assert bos == n_vocab - 4  # the 4 special tokens come last
    token_bytes = prepare.get_token_bytes("cpu", paths[1])
    assert token_bytes.shape == (n_vocab,) and token_bytes.dtype in (torch.int32, torch.int64)
    assert token_bytes[-4:].tolist() == [0, 0, 0, 0] and bool((token_bytes[:-4] > 0).all())
    for text in UNICODE_SAMPLES:
        ids = tokenizer.encode(text)
        assert tokenizer.decode(ids) == text
        assert bos not in ids  # special-token text is never parsed as a special token
        assert int(token_bytes[ids].sum()) == len(text.encode("utf-8"))
    batch = tokenizer.encode(UNICODE_SAMPLES, prepend=bos)
    assert [row[0] for row in batch] == [bos] * len(UNICODE_SAMPLES)
    assert [tokenizer.decode(row[1:]) for row in batch] == UNICODE_SAMPLES
    assert tokenizer.encode("x", prepend="<|reserved_0|>", append="<|reserved_1|>")[::2] == [bos, bos + 1]
    assert tokenizer.decode(torch.tensor(tokenizer.encode("tensor ids"))) == "tensor ids"


def test_tokenizer_is_kept_when_up_to_date_and_retrained_when_data_changes(tmp_path):
    data_dir = write_shards(tmp_path / "data", ["alpha beta gamma " * 50, "delta epsilon " * 40], ["zeta"])
    tok_dir = tmp_path / "tok"
    meta = prepare.train_tokenizer(data_dir, tok_dir, vocab_size=300, max_chars=10_000)
    pkl = tok_dir / "tokenizer.pkl"
    stamp = pkl.stat().st_mtime_ns
    assert prepare.train_tokenizer(data_dir, tok_dir, vocab_size=300, max_chars=10_000) == meta
    assert pkl.stat().st_mtime_ns == stamp
    write_shards(data_dir, ["completely different text, with more words " * 30, "x"], ["zeta"])
    prepare.train_tokenizer(data_dir, tok_dir, vocab_size=300, max_chars=10_000)
    assert pkl.stat().st_mtime_ns != stamp
    tok = prepare.Tokenizer.from_directory(tok_dir)
    assert tok.decode(tok.encode("completely different")) == "completely different"
    with pytest.raises(prepare.PrepareError, match="run `python prepare.py`"):
        prepare.Tokenizer.from_directory(tmp_path / "missing")


@pytest.mark.parametrize("damage", [b"", b"not a pickle", b"\x80\x04K\x01."])
def test_a_damaged_tokenizer_is_one_line_at_train_time_and_retrained_by_prepare(tmp_path, damage):
    data_dir = write_shards(tmp_path / "data", ["alpha beta gamma " * 50, "delta epsilon " * 40], ["zeta"])
    tok_dir = tmp_path / "tok"
    prepare.train_tokenizer(data_dir, tok_dir, vocab_size=300, max_chars=10_000)
    good = (tok_dir / "tokenizer.pkl").read_bytes()
    (tok_dir / "tokenizer.pkl").write_bytes(damage)  # truncated, overwritten, or a pickled int
    with pytest.raises(prepare.PrepareError, match=r"tokenizer.pkl is unreadable .*re-run `python prepare.py`"):
        prepare.Tokenizer.from_directory(tok_dir)
    prepare.train_tokenizer(data_dir, tok_dir, vocab_size=300, max_chars=10_000)
    assert (tok_dir / "tokenizer.pkl").read_bytes() == good  # the same settings give the same tokenizer


def test_a_damaged_byte_table_or_val_shard_fails_before_the_budget(tmp_path):
    data_dir = write_shards(tmp_path / "data", ["alpha beta gamma " * 50, "delta epsilon " * 40], ["zeta"])
    tok_dir = tmp_path / "tok"
    prepare.train_tokenizer(data_dir, tok_dir, vocab_size=300, max_chars=10_000)
    prepare.check_metric_inputs(data_dir, tok_dir)
    table = tok_dir / "token_bytes.pt"
    good = table.read_bytes()
    table.write_bytes(good[: len(good) // 2])
    with pytest.raises(prepare.PrepareError, match=r"token_bytes.pt is unreadable"):
        prepare.check_metric_inputs(data_dir, tok_dir)
    torch.save(torch.zeros(4), table)  # loads, but is not a byte-length table
    with pytest.raises(prepare.PrepareError, match=r"does not hold a table of token byte lengths"):
        prepare.check_metric_inputs(data_dir, tok_dir)
    table.write_bytes(good)
    val = data_dir / "val.parquet"
    val.write_bytes(val.read_bytes()[:-20])  # a cut-off footer
    with pytest.raises(prepare.PrepareError, match=r"val.parquet is not a readable parquet file"):
        prepare.check_metric_inputs(data_dir, tok_dir)
    with pytest.raises(prepare.PrepareError, match=r"val.parquet is not a readable parquet file"):
        next(prepare._document_batches([val], "val", seed=0))


# ---------------------------------------------------------------------------------------------
# Dataloader


class CharTokenizer:
    """'a' -> 1, 'b' -> 2, ...; BOS is 0. Enough for make_dataloader."""

    def get_bos_token_id(self):
        return 0

    def encode(self, texts, prepend=None, num_threads=1):
        return [[prepend] + [ord(c) - 96 for c in text] for text in texts]


@pytest.mark.parametrize("packing", ["tails", "upstream"])
def test_best_fit_packing_by_hand(tmp_path, packing):
    # Token lengths including BOS: a5 b4 c9 d2 e3 f7 g12. Rows hold T+1 = 10 tokens; the buffer is
    # refilled with whole tokenizer batches of 3 documents while it holds fewer than 3.
    docs = ["aaaa", "bbb", "cccccccc", "d", "ee", "ffffff", "g" * 11]
    data_dir = write_shards(tmp_path / "data", ["unused"], docs)
    loader = prepare.make_dataloader(CharTokenizer(), 3, 9, "val", device="cpu", buffer_size=3,
                                     tokenizer_batch_size=3, data_dir=data_dir, packing=packing)
    x, y, epoch = next(loader)
    rows = torch.cat([x, y[:, -1:]], dim=1).tolist()
    assert rows[:2] == [
        [0, 3, 3, 3, 3, 3, 3, 3, 3] + [0],  # c9 fits best; nothing fits 1 slot -> d2 is cropped to its BOS
        [0, 6, 6, 6, 6, 6, 6] + [0, 5, 5],  # f7 (g12 never fits whole); e3 fills the last 3 slots
    ]
    if packing == "tails":  # a5, b4, then d's tail (the single token d), which went back into the buffer
        assert rows[2] == [0, 1, 1, 1, 1] + [0, 2, 2, 2] + [4]
    else:  # upstream drops d's tail: a5, then the best fit for 5 is the second pass's a5
        assert rows[2] == [0, 1, 1, 1, 1] + [0, 1, 1, 1, 1]
    assert epoch == 2  # the third row's refill already drew a document from the second pass
    assert torch.equal(x[:, 1:], y[:, :-1])


def upstream_rows(token_docs, row_len, buffer_size, batch, n_rows):
    """Upstream autoresearch's val packing, written plainly: a list buffer refilled a tokenizer batch at a
    time while it holds fewer than buffer_size documents; the first longest document that fits; else the
    first shortest, cropped, its tail dropped. The documents repeat (the val split, pass after pass)."""
    batches = (token_docs[i:i + batch] for _ in iter(int, 1) for i in range(0, len(token_docs), batch))
    buffer, rows = [], []
    while len(rows) < n_rows:
        row = []
        while len(row) < row_len:
            while len(buffer) < buffer_size:
                buffer.extend(next(batches))
            remaining = row_len - len(row)
            fitting = [i for i, d in enumerate(buffer) if len(d) <= remaining]
            if fitting:
                best = max(fitting, key=lambda i: (len(buffer[i]), -i))
                row += buffer.pop(best)
            else:
                shortest = min(range(len(buffer)), key=lambda i: (len(buffer[i]), i))
                row += buffer.pop(shortest)[:remaining]
        rows.append(row)
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_upstream_packing_matches_upstreams_algorithm(tmp_path, seed):
    rng = np.random.default_rng(seed)
    docs = ["".join(chr(97 + int(c)) for c in rng.integers(0, 26, int(n))) for n in rng.integers(0, 40, 200)]
    data_dir = write_shards(tmp_path / "data", ["unused"], docs)
    T, B, buffer_size, batch = 31, 4, 20, 16
    loader = prepare.make_dataloader(CharTokenizer(), B, T, "val", device="cpu", buffer_size=buffer_size,
                                     tokenizer_batch_size=batch, data_dir=data_dir, packing="upstream")
    rows = []
    for _ in range(10):
        x, y, _ = next(loader)
        rows += torch.cat([x, y[:, -1:]], dim=1).tolist()
    assert rows == upstream_rows(CharTokenizer().encode(docs, prepend=0), T + 1, buffer_size, batch, len(rows))


def test_one_pass_packs_every_token_exactly_once(tmp_path):
    docs = ["aaaa", "bbb", "cccccccc", "d", "ee", "ffffff", "g" * 11, "a" * 30, "bb"]
    data_dir = write_shards(tmp_path / "data", ["unused"], docs)
    loader = prepare.make_dataloader(CharTokenizer(), 1, 9, "val", device="cpu", buffer_size=3,
                                     data_dir=data_dir, epochs=1)
    rows = [torch.cat([x, y[:, -1:]], dim=1)[0].tolist() for x, y, _ in loader]  # the loader ends
    packed = [t for row in rows for t in row]
    total = sum(len(d) + 1 for d in docs)  # + BOS each
    assert len(packed) == 10 * (total // 10)  # only the last partial row is dropped
    everything = [t for ids in CharTokenizer().encode(docs, prepend=0) for t in ids]
    assert all(packed.count(t) <= everything.count(t) for t in set(packed))  # nothing twice
    # The 31-token document spans rows: none of it is cropped away (beyond the dropped partial row).
    assert packed.count(1) >= 4 + 30 - (total - len(packed))


def test_dataloader_invariants_on_real_data(tokenizer, paths):
    data_dir = paths[0]
    B, T = 4, 64
    bos = tokenizer.get_bos_token_id()
    loader = prepare.make_dataloader(tokenizer, B, T, "train", device="cpu", data_dir=data_dir)
    texts = pq.read_table(data_dir / "shard_00000.parquet").column("text").to_pylist()
    whole = [tuple(ids) for ids in tokenizer.encode(texts, prepend=bos)]
    by_head = {}
    for doc in whole:
        by_head.setdefault(doc[:3], []).append(doc)
    for n in range(20):
        x, y, epoch = next(loader)
        assert x.shape == y.shape == (B, T) and x.dtype == y.dtype == torch.int64
        assert x.device.type == "cpu" and x.is_contiguous() and y.is_contiguous()
        assert torch.equal(x[:, 1:], y[:, :-1])
        assert n or int(x[0, 0]) == bos  # the very first row starts a document
        assert int(x.min()) >= 0 and int(x.max()) < tokenizer.get_vocab_size()
        for row in torch.cat([x, y[:, -1:]], dim=1).tolist():
            # Every BOS starts a real document: the tokens after it are that document's head (a row
            # may then continue with the tail of a document begun in an earlier row).
            for i in (i for i, t in enumerate(row) if t == bos):
                seg = tuple(row[i:])
                candidates = by_head.get(seg[:3], []) if len(seg) >= 3 else whole
                assert any(doc[:len(seg)] == seg or seg[:len(doc)] == doc for doc in candidates)
        assert epoch >= 1


def take(loader, n):
    return [(x.clone(), y.clone(), e) for x, y, e in (next(loader) for _ in range(n))]


def test_dataloader_is_deterministic(tokenizer, paths):
    def batches(split, seed):
        # A buffer smaller than the split (refilled 8 documents at a time), so the order matters.
        return take(prepare.make_dataloader(tokenizer, 2, 32, split, device="cpu", seed=seed, buffer_size=16,
                                            tokenizer_batch_size=8, data_dir=paths[0], packing="tails"), 5)

    def same(a, b):
        return all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a, b, strict=True))

    assert same(batches("train", 0), batches("train", 0))
    assert not same(batches("train", 0), batches("train", 1))  # the seed reshuffles the train split
    assert same(batches("val", 0), batches("val", 1))  # the eval set never depends on the seed
    with pytest.raises(ValueError, match="split"):
        next(prepare.make_dataloader(tokenizer, 2, 32, "test", data_dir=paths[0]))


def test_dataloader_epochs_advance_and_a_finite_pass_ends(tokenizer, paths):
    val = pq.read_table(paths[0] / "val.parquet").column("text").to_pylist()
    total = sum(len(ids) for ids in tokenizer.encode(val, prepend=tokenizer.get_bos_token_id()))
    B, T = 2, 63
    one_pass = list(prepare.make_dataloader(tokenizer, B, T, "val", device="cpu", data_dir=paths[0], epochs=1))
    assert len(one_pass) == total // (B * (T + 1))  # every token once; only the last partial batch dropped
    assert {e for _, _, e in one_pass} == {1}
    forever = prepare.make_dataloader(tokenizer, B, T, "val", device="cpu", data_dir=paths[0])
    epochs = [e for _, _, e in take(forever, 2 * len(one_pass) + 2)]
    # The buffer and the text queues read ahead of the rows (on a small split, by whole passes).
    assert epochs[0] == 1 and epochs == sorted(epochs) and epochs[-1] >= 3


def test_prefetching_loader_yields_the_same_batches(tokenizer, paths):
    def batches(prefetch):
        loader = prepare.make_dataloader(tokenizer, 2, 32, "train", device="cpu", data_dir=paths[0],
                                         buffer_size=64, prefetch=prefetch)
        out = take(loader, 6)
        loader.close()
        return out

    inline, threaded = batches(0), batches(3)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]
               for a, b in zip(inline, threaded, strict=True))
    for _ in range(50):  # closing the loader stops its thread within its 0.1 s queue timeout
        if not [t for t in threading.enumerate() if t.name == "dataloader-prefetch"]:
            break
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "dataloader-prefetch"]


def test_prefetch_thread_errors_reach_the_consumer():
    def broken():
        yield 1
        raise PrepareError_("boom")

    class PrepareError_(RuntimeError):
        pass

    gen = prepare._prefetched(broken(), 2)
    assert next(gen) == 1
    with pytest.raises(PrepareError_, match="boom"):
        next(gen)


# ---------------------------------------------------------------------------------------------
# evaluate_bpb


class TableLoss(torch.nn.Module):
    """Per-token loss looked up from the target id: a model with known losses."""

    def __init__(self, table, flat=True):
        super().__init__()
        self.table = torch.tensor(table, dtype=torch.float32)
        self.flat = flat

    def forward(self, x, y, reduction="mean"):
        assert reduction == "none" and not torch.is_grad_enabled()
        loss = self.table[y]
        return loss.reshape(-1) if self.flat else loss


class FakeTokenizer:
    def get_vocab_size(self):
        return 6


@pytest.mark.parametrize("flat", [True, False])
def test_evaluate_bpb_by_hand(monkeypatch, flat):
    # Token 5 is special (0 bytes): neither its loss nor its bytes count.
    token_bytes = torch.tensor([1, 2, 3, 1, 4, 0], dtype=torch.int32)
    losses = [0.5, 1.0, 2.0, 0.25, 1.5, 9.0]
    ys = [torch.tensor([[0, 1, 5], [2, 3, 4]]), torch.tensor([[4, 4, 5], [5, 0, 1]])]

    def fake_loader(tokenizer, B, T, split, device=None, data_dir=None, epochs=None, packing=None):
        assert (B, T, split, epochs) == (2, 3, "val", 1)
        for y in ys:
            yield torch.zeros_like(y), y, 1

    monkeypatch.setattr(prepare, "make_dataloader", fake_loader)
    monkeypatch.setattr(prepare, "get_token_bytes", lambda device, tokenizer_dir=None: token_bytes.to(device))
    bpb = prepare.evaluate_bpb(TableLoss(losses, flat), FakeTokenizer(), batch_size=2, seq_len=3,
                               eval_tokens=12)
    # batch 1: nats 0.5 + 1.0 + 2.0 + 0.25 + 1.5 = 5.25 over 1+2+3+1+4 = 11 bytes
    # batch 2: nats 1.5 + 1.5 + 0.5 + 1.0 = 4.5 over 4+4+1+2 = 11 bytes
    assert bpb == pytest.approx((5.25 + 4.5) / (math.log(2) * 22), rel=1e-12)
    assert bpb == pytest.approx(0.6393762, abs=1e-7)


def test_evaluate_bpb_on_real_data(tokenizer, paths):
    # A uniform model: every token costs ln(V) nats. The expected value is computed independently of
    # token_bytes.pt, from the bytes each target token decodes to.
    vocab = tokenizer.get_vocab_size()
    model = TableLoss([math.log(vocab)] * vocab)
    B, T, tokens = 4, 32, 4 * 32 * 3
    bpb = prepare.evaluate_bpb(model, tokenizer, batch_size=B, seq_len=T, eval_tokens=tokens, data_dir=paths[0],
                               tokenizer_dir=paths[1])
    loader = prepare.make_dataloader(tokenizer, B, T, "val", device="cpu", data_dir=paths[0])
    nats = nbytes = 0
    for _ in range(3):
        _, y, _ = next(loader)
        for t in y.reshape(-1).tolist():
            if t < vocab - 4:
                nats += math.log(vocab)
                nbytes += len(tokenizer.enc.decode_single_token_bytes(t))
    assert bpb == pytest.approx(nats / (math.log(2) * nbytes), rel=1e-6)  # the model's losses are float32


def test_evaluate_bpb_never_loops_over_the_val_split(tokenizer, paths):
    vocab = tokenizer.get_vocab_size()
    model = TableLoss([math.log(vocab)] * vocab)
    B, T = 4, 32
    one_pass = len(list(prepare.make_dataloader(tokenizer, B, T, "val", device="cpu", data_dir=paths[0],
                                                epochs=1)))
    stats = {}
    prepare.evaluate_bpb(model, tokenizer, batch_size=B, seq_len=T, eval_tokens=10**9, data_dir=paths[0],
                         tokenizer_dir=paths[1], stats=stats)
    assert stats["eval_tokens"] == one_pass * B * T  # capped at what the split holds
    small = {}
    prepare.evaluate_bpb(model, tokenizer, batch_size=B, seq_len=T, eval_tokens=3 * B * T + 5, data_dir=paths[0],
                         tokenizer_dir=paths[1], stats=small)
    assert small["eval_tokens"] == 3 * B * T and small["eval_bytes"] > 0


# ---------------------------------------------------------------------------------------------
# climbmix downloader, against a local http server


class ShardServer(ThreadingHTTPServer):
    """plan: {shard name: [action, ...]}; the n-th request for a name gets the n-th action (the last
    one repeats). Actions: ("ok", body), ("status", code), ("cut", body): the connection drops halfway,
    ("short", body): a well-formed response whose body is only the first half of the file."""

    daemon_threads = True

    def __init__(self, plan):
        super().__init__(("127.0.0.1", 0), ShardHandler)
        self.plan = plan
        self.requests = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}/datasets"

    def handle_error(self, request, client_address):
        pass  # the "cut" action breaks connections on purpose


class ShardHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        self.server.requests.append(name)
        actions = self.server.plan.get(name, [("status", 404)])
        kind, payload = actions[min(self.server.requests.count(name), len(actions)) - 1]
        if kind == "status":
            self.send_response(payload)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = payload[: len(payload) // 2] if kind == "short" else payload
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) if kind == "short" else len(payload)))
        self.end_headers()
        if kind == "cut":
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        else:
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def shard_server():
    servers = []

    def start(plan):
        server = ShardServer(plan)
        threading.Thread(target=server.serve_forever, kwargs=dict(poll_interval=0.02), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


SHARD = {i: parquet_bytes([f"document {i}.{j} " * (j + 1) for j in range(40)]) for i in (0, 1, 6542)}


def good_plan():
    return {f"shard_{i:05d}.parquet": [("ok", SHARD[i])] for i in SHARD}


def leftovers(data_dir):
    return sorted(p.name for p in data_dir.iterdir()) if data_dir.exists() else []


def test_download_success_then_resume_skips_existing(shard_server, tmp_path):
    server = shard_server(good_plan())
    data_dir = tmp_path / "data"
    manifest = prepare.download_climbmix(data_dir, 2, workers=3, base_url=server.url, attempts=2, backoff=0)
    assert manifest["train"] == ["shard_00000.parquet", "shard_00001.parquet"]
    assert manifest["val"] == "shard_06542.parquet" and manifest["val_docs"] == 40
    for i in SHARD:
        assert (data_dir / f"shard_{i:05d}.parquet").read_bytes() == SHARD[i]
    assert leftovers(data_dir) == ["manifest.json", "shard_00000.parquet", "shard_00001.parquet",
                                   "shard_06542.parquet"]
    assert sorted(server.requests) == ["shard_00000.parquet", "shard_00001.parquet", "shard_06542.parquet"]
    prepare.download_climbmix(data_dir, 2, workers=3, base_url=server.url, attempts=2, backoff=0)
    assert len(server.requests) == 3  # nothing downloaded twice


@pytest.mark.parametrize("failure", [("status", 500), ("status", 429), ("cut", SHARD[0]),
                                     ("short", SHARD[0])])
def test_download_retries_transient_failures(shard_server, tmp_path, failure):
    plan = good_plan()
    plan["shard_00000.parquet"] = [failure, ("ok", SHARD[0])]
    server = shard_server(plan)
    prepare.download_climbmix(tmp_path, 1, workers=2, base_url=server.url, attempts=3, backoff=0)
    assert server.requests.count("shard_00000.parquet") == 2
    assert (tmp_path / "shard_00000.parquet").read_bytes() == SHARD[0]


@pytest.mark.parametrize("kind, message", [("cut", "ChunkedEncodingError"), ("short", "not a valid parquet")])
def test_broken_download_leaves_no_shard(shard_server, tmp_path, kind, message):
    plan = good_plan()
    plan["shard_00000.parquet"] = [(kind, SHARD[0])]
    server = shard_server(plan)
    with pytest.raises(prepare.PrepareError) as info:
        prepare.download_climbmix(tmp_path / "data", 1, workers=1, base_url=server.url, attempts=2, backoff=0)
    text = str(info.value)
    assert "shard_00000.parquet" in text and "after 2 attempts" in text and message in text
    assert "re-run `python prepare.py --source climbmix --num-shards 1`" in text
    assert server.requests.count("shard_00000.parquet") == 2
    assert "shard_00000.parquet" not in leftovers(tmp_path / "data")
    assert not [n for n in leftovers(tmp_path / "data") if n.endswith(".tmp") or n == "manifest.json"]


def test_no_network_gives_a_clear_error(tmp_path):
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(prepare.PrepareError, match="ConnectionError.*re-run"):
        prepare.download_climbmix(tmp_path, 1, workers=1, base_url=url, attempts=2, backoff=0)
    assert leftovers(tmp_path) == []


def test_stale_tmp_files_of_dead_processes_are_removed(shard_server, tmp_path):
    dead = tmp_path / "shard_00000.parquet.999999999.tmp"
    dead.write_bytes(b"partial")
    server = shard_server(good_plan())
    prepare.download_climbmix(tmp_path, 1, workers=1, base_url=server.url, attempts=1, backoff=0)
    assert not dead.exists()


def test_cli_404_is_a_clear_error_without_retries(shard_server, tmp_path):
    plan = good_plan()
    del plan["shard_00000.parquet"]
    server = shard_server(plan)
    proc = run_cli(["--source", "climbmix", "--num-shards", "1", "--download-workers", "1"], tmp_path,
                   AUTORESEARCH_DATA_URL=server.url, AUTORESEARCH_DOWNLOAD_BACKOFF="0")
    assert_clean_failure(proc, "404", "shard_00000.parquet", "--source climbmix --num-shards 1")
    assert server.requests.count("shard_00000.parquet") == 1
    assert not (tmp_path / "cpu-climbmix" / "data" / "shard_00000.parquet").exists()
    assert proc.stderr.count("\n") == 1  # one line


def test_cli_climbmix_end_to_end(shard_server, tmp_path):
    plan = good_plan()
    plan["shard_00001.parquet"] = [("status", 500), ("ok", SHARD[1])]
    server = shard_server(plan)
    proc = run_cli(["--source", "climbmix", "--num-shards", "2"], tmp_path,
                   AUTORESEARCH_DATA_URL=server.url, AUTORESEARCH_DOWNLOAD_BACKOFF="0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cache_dir = tmp_path / "cpu-climbmix"
    assert json.loads((tmp_path / "active.json").read_text()) == {"cpu": "climbmix"}
    assert (cache_dir / "tokenizer" / "tokenizer.pkl").exists()
    assert (cache_dir / "tokenizer" / "token_bytes.pt").exists()
    assert prepare.read_manifest(cache_dir / "data")["train_docs"] == 80


# ---------------------------------------------------------------------------------------------
# python-corpus


def make_fake_install(root):
    """A fake stdlib + site-packages with the awkward cases the collector must handle."""
    stdlib, site = root / "lib", root / "site"
    for i in range(60):
        (stdlib / f"pkg{i % 3}").mkdir(parents=True, exist_ok=True)
        (stdlib / f"pkg{i % 3}" / f"mod{i}.py").write_text(f"def f{i}():\n    return {i} * 'x'\n")
    (stdlib / "dup.py").write_text("def f0():\n    return 0 * 'x'\n")  # same content as pkg0/mod0.py
    (stdlib / "latin1.py").write_bytes(b"# -*- coding: latin-1 -*-\nx = '\xe9'\n")  # not UTF-8
    (stdlib / "empty.py").write_text("\n")
    (stdlib / "huge.py").write_text("x = 1\n" * 200_000)
    (stdlib / "notes.txt").write_text("not python")
    # Not the same in every installation of one Python version: distribution-split packages (test,
    # idlelib, ...), build settings (_sysconfigdata_*, config-3.X-*), installed packages.
    for skipped in ("__pycache__", "site-packages", ".hidden", "test", "idlelib", "config-3.11-x86_64-linux-gnu"):
        (stdlib / skipped).mkdir()
        (stdlib / skipped / "skipme.py").write_text(f"# {skipped}\n")
    (stdlib / "_sysconfigdata__linux_x86_64-linux-gnu_skipme.py").write_text("build_time_vars = {}\n")
    (stdlib / "pkg1" / "test").mkdir()
    (stdlib / "pkg1" / "test" / "kept.py").write_text("# a nested test dir is the package's own\n")
    (site / "lib_a").mkdir(parents=True)
    (site / "lib_a" / "core.py").write_text("import os\nprint(os.sep)\n")
    (site / "cache").mkdir()
    (site / "cache" / "cached.py").write_text("# inside the cache dir\n")
    return [("stdlib", str(stdlib)), ("site-packages", str(site))], site / "cache"


def test_python_corpus_collection_rules(tmp_path):
    roots, cache = make_fake_install(tmp_path)
    ids = [doc_id for doc_id, _ in prepare.collect_python_files(roots, exclude=[cache])]
    assert ids == sorted(ids) and len(ids) == 62 and "stdlib/pkg1/test/kept.py" in ids
    assert "stdlib/dup.py" in ids and "stdlib/pkg0/mod0.py" not in ids  # same content: first id wins
    skipped = ("skipme", "latin1", "huge", "empty", "cached", "notes")
    assert not [i for i in ids if any(s in i for s in skipped)]
    assert "site-packages/lib_a/core.py" in ids


def test_python_corpus_is_deterministic_with_disjoint_val(tmp_path):
    roots, cache = make_fake_install(tmp_path)
    a = prepare.build_python_corpus(tmp_path / "a", roots=roots, exclude=[cache])
    b = prepare.build_python_corpus(tmp_path / "b", roots=roots, exclude=[cache])
    assert a == b
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert names == ["manifest.json", "shard_00000.parquet", "val.parquet"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    train_ids = set(pq.read_table(tmp_path / "a" / "shard_00000.parquet").column("id").to_pylist())
    val_ids = set(pq.read_table(tmp_path / "a" / "val.parquet").column("id").to_pylist())
    assert val_ids and train_ids and not train_ids & val_ids and len(train_ids | val_ids) == 62
    for doc_id in val_ids:  # validation = stable hash of the relative path
        assert int.from_bytes(hashlib.sha1(doc_id.encode()).digest()[:8], "big") % prepare.PYTHON_VAL_MOD == 0


def test_split_python_source_cuts_at_top_level_definitions():
    body = "".join(f"# helper {i}\n@decorator\ndef f{i}(x):\n    return x + {i}\n" + "    # pad\n" * 40 + "\n"
                   for i in range(60))
    text = '"""module docstring"""\nimport os\n\n' + body + "class C:\n" + "    x = 1\n\n" * 2000
    pieces = prepare.split_python_source(text, target=1000)
    assert "".join(pieces) == text and len(pieces) > 10  # contiguous: nothing lost, nothing repeated
    for piece in pieces[1:-1]:
        # Each cut lands before a definition's comment + decorator lines, or (inside the huge
        # class) at a blank line.
        assert piece.startswith("# helper") or piece.startswith("    x = 1") or piece.startswith("class C")
    assert max(len(p) for p in pieces) <= 2 * 1000
    assert prepare.split_python_source("x = 1\n" * 10) == ["x = 1\n" * 10]  # short: whole


def test_near_duplicates_never_straddle_the_split(tmp_path):
    parser = "".join(f"def parse_item_{i}(src, pos):  # a distinctive line of code {i}\n"
                     f"    return src[pos:pos + {i}], pos + {i}  # and another one here\n" for i in range(40))
    docs = [("stdlib/tomllib/_parser.py", "from . import _re\n" + parser),
            ("site-packages/pip/_vendor/tomli/_parser.py", "from ._re import x\n" + parser + "# vendored\n"),
            ("site-packages/rich/text.py", "class Text:\n    pass  # rich's own text module, long line\n"),
            ("site-packages/pip/_vendor/rich/text.py", "class Text:\n    pass  # an older copy\n"),
            ("site-packages/other/__init__.py", "x = 1\n"), ("site-packages/more/__init__.py", "y = 2\n")]
    groups = prepare.near_duplicate_groups(docs)
    assert groups["stdlib/tomllib/_parser.py"] == groups["site-packages/pip/_vendor/tomli/_parser.py"]
    assert groups["site-packages/rich/text.py"] == groups["site-packages/pip/_vendor/rich/text.py"]
    assert groups["site-packages/other/__init__.py"] != groups["site-packages/more/__init__.py"]  # generic name
    # Whatever the hash says, a group lands on one side: make many copies and check the split.
    many = [(f"stdlib/pkg{i}/mod{i}.py", f"v = {i}\n") for i in range(200)] + docs
    prepare._write_text_shards(tmp_path, many, "test", groups=prepare.near_duplicate_groups(many))
    val_ids = set(pq.read_table(tmp_path / "val.parquet").column("id").to_pylist())
    assert ("stdlib/tomllib/_parser.py" in val_ids) == ("site-packages/pip/_vendor/tomli/_parser.py" in val_ids)
    assert ("site-packages/rich/text.py" in val_ids) == ("site-packages/pip/_vendor/rich/text.py" in val_ids)


def test_data_id_is_a_content_hash_in_the_manifest(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(200):  # enough that the ~5% val split holds one cpu eval batch (8 x 257 tokens)
        (corpus / f"doc{i}.txt").write_text(f"document number {i} " * 50)
    cache_dir = prepare.prepare("local", "cpu", cache_root=tmp_path / "a", input_dir=corpus, vocab_size=300)
    again = prepare.prepare("local", "cpu", cache_root=tmp_path / "b", input_dir=corpus, vocab_size=300)
    first = prepare.read_data_id(cache_dir / "data")
    assert first.startswith("local:") and len(first) == len("local:") + 16
    assert prepare.read_data_id(again / "data") == first  # same bytes, same tokenizer: same id
    (corpus / "doc0.txt").write_text("changed " * 50)
    changed = prepare.prepare("local", "cpu", cache_root=tmp_path / "a", input_dir=corpus, vocab_size=300)
    assert prepare.read_data_id(changed / "data") != first


def test_prepare_refuses_a_val_split_smaller_than_one_eval_batch(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(40):
        (corpus / f"doc{i}.txt").write_text(f"document number {i} " * 50)
    with pytest.raises(prepare.PrepareError, match=r"fewer tokens than one eval batch of the cpu profile \(8 x 257\)"):
        prepare.prepare("local", "cpu", cache_root=tmp_path / "a", input_dir=corpus, vocab_size=300)


def test_print_profile_is_one_json_line_and_builds_nothing(tmp_path):
    proc = run_cli(["--print-profile"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout.strip())
    device_type = prepare.detect_device_type()
    assert line == {"profile": "cpu", "device_type": device_type, "time_budget": 60,
                    "budget_clock": "cpu" if device_type == "cpu" else "wall"}
    assert list(tmp_path.iterdir()) == []
    budget = json.loads(run_cli(["--print-profile"], tmp_path, AUTORESEARCH_TIME_BUDGET="5").stdout.strip())
    assert budget["time_budget"] == 5.0  # what train.py would use, the override included
    proc = run_cli(["--print-profile"], tmp_path, AUTORESEARCH_PROFILE="gpu")
    line = json.loads(proc.stdout)
    assert line["profile"] == "gpu" and line["time_budget"] == 300 and line["budget_clock"] == "wall"


def test_python_corpus_default_roots_are_the_stdlib_only():
    assert prepare.python_corpus_roots() == [("stdlib", sysconfig.get_paths()["stdlib"])]


CORPUS_IDS = """
import json, prepare
try:
    import corpus_probe_extra  # only installed in the second venv
    extra = True
except ImportError:
    extra = False
print(json.dumps({"extra": extra, "ids": [doc_id for doc_id, _ in prepare.collect_python_files()]}))
"""


def make_venv(path, extra_module=False):
    """A venv of this Python seeing the project's dependencies through a .pth file; optionally with one
    more package of its own in its site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    ask = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([str(path / "bin" / "python"), "-c", ask], capture_output=True, text=True,
                               check=True).stdout.strip())
    (site / "project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    if extra_module:
        (site / "corpus_probe_extra").mkdir()
        (site / "corpus_probe_extra" / "__init__.py").write_text("def probe():\n    return 'only in venv b'\n")
    return path / "bin" / "python"


def test_python_corpus_is_identical_in_two_venvs_with_different_packages(tmp_path):
    """The default corpus is the interpreter's standard library: two environments of one Python with
    different packages installed prepare the same data, down to the data_id (each in its own process
    and cache, as two checkouts would)."""
    seen = []
    for name, extra in (("a", False), ("b", True)):
        python = make_venv(tmp_path / name, extra_module=extra)
        env = {**os.environ, "AUTORESEARCH_CACHE": str(tmp_path / f"cache-{name}"), "AUTORESEARCH_PROFILE": "cpu"}
        ids = subprocess.run([str(python), "-c", CORPUS_IDS], cwd=REPO, capture_output=True, text=True, timeout=300,
                             env=env)
        assert ids.returncode == 0, ids.stderr[-2000:]
        prep = subprocess.run([str(python), "prepare.py", "--source", "python-corpus"], cwd=REPO, capture_output=True,
                              text=True, timeout=600, env=env)
        assert prep.returncode == 0, prep.stderr[-2000:]
        data_id = prepare.read_data_id(tmp_path / f"cache-{name}" / "cpu-python-corpus" / "data")
        seen.append((json.loads(ids.stdout.strip().splitlines()[-1]), data_id))
    (a, id_a), (b, id_b) = seen
    assert not a["extra"] and b["extra"]  # the environments really differ
    assert a["ids"] == b["ids"] and len(a["ids"]) > 300 and all(i.startswith("stdlib/") for i in a["ids"])
    assert id_a == id_b and id_a.startswith("python-corpus:")


@pytest.mark.slow
def test_python_corpus_real_build_is_deterministic(tmp_path):
    a = prepare.build_python_corpus(tmp_path / "a")
    b = prepare.build_python_corpus(tmp_path / "b")
    assert a == b and a["train_docs"] > 1000 and a["val_docs"] > 50
    for name in [*a["train"], a["val"]]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


# ---------------------------------------------------------------------------------------------
# local


def test_local_source_reads_txt_jsonl_parquet(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    expected = set()
    for i in range(20):
        (src / f"doc{i}.txt").write_text(f"text file {i}\n\nsecond paragraph stays in the same document")
        expected.add(f"text file {i}\n\nsecond paragraph stays in the same document")
    lines = [json.dumps({"text": f"json record {i}", "meta": i}) for i in range(20)]
    (src / "sub" / "records.jsonl").write_text("\n".join(lines[:10]) + "\n\n" + "\n".join(lines[10:]) + "\n")
    expected |= {f"json record {i}" for i in range(20)}
    (src / "table.parquet").write_bytes(parquet_bytes([f"parquet row {i}" for i in range(20)] + ["", None]))
    expected |= {f"parquet row {i}" for i in range(20)}
    (src / "ignored.csv").write_text("a,b\n")
    (src / ".hidden.txt").write_text("hidden")
    manifest = prepare.build_local(src, tmp_path / "data")
    data = tmp_path / "data"
    train = pq.read_table(data / manifest["train"][0]).column("text").to_pylist()
    val = pq.read_table(data / manifest["val"]).column("text").to_pylist()
    assert set(train) | set(val) == expected and len(train) + len(val) == 60
    assert val and not set(train) & set(val)
    assert manifest["source"] == "local" and manifest["input_dir"] == str(src.resolve())


@pytest.mark.parametrize("files, message", [
    ({}, "no usable documents"),
    ({"a.csv": "x,y"}, "no usable documents"),
    ({"only.txt": "one document"}, "need at least 2"),
    ({"bad.jsonl": '{"text": "ok"}\nnot json\n'}, "bad.jsonl:2: invalid JSON"),
    ({"bad.jsonl": '{"title": "no text"}\n'}, "bad.jsonl:1: expected an object"),
    ({"t.parquet": table_bytes(body=["x"])}, "no 'text' column"),
    ({"t.parquet": b"PAR1 garbage"}, "cannot read"),
    ({"latin1.jsonl": b'{"text": "caf\xe9"}\n'}, "latin1.jsonl is not UTF-8"),
])
def test_local_source_errors(tmp_path, files, message):
    src = tmp_path / "src"
    src.mkdir()
    for name, content in files.items():
        (src / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(prepare.PrepareError, match=message):
        prepare.build_local(src, tmp_path / "data")


def test_cli_local_errors(monkeypatch, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    proc = run_cli(["--source", "local", "--data-dir", str(tmp_path / "empty")], tmp_path)
    assert_clean_failure(proc, "no usable documents in", str(tmp_path / "empty"))
    monkeypatch.setattr(prepare, "CACHE_ROOT", tmp_path / "cache")
    assert prepare.main(["--source", "local"]) == 1
    assert "needs --data-dir DIR" in capsys.readouterr().err
    assert prepare.main(["--source", "local", "--data-dir", str(tmp_path / "missing")]) == 1
    assert "is not a directory" in capsys.readouterr().err
