"""
One-time data + tokenizer preparation for autoresearch, and the fixed runtime utilities that
train.py imports: profile constants, the tokenizer, the dataloader and the evaluation metric.

Usage:
    python prepare.py                                   # default source for the profile
    python prepare.py --source climbmix --num-shards 8  # download 8 train shards + the val shard
    python prepare.py --source python-corpus            # offline: .py files already on this machine
    python prepare.py --source local --data-dir DIR     # your own .parquet / .txt / .jsonl files

Everything lands in the cache dir (see docs/prepare.md):
    $AUTORESEARCH_CACHE (default ~/.cache/autoresearch)/
        active.json                     which source was prepared last, per profile
        <profile>-<source>/data/        parquet shards (a `text` column) + manifest.json
        <profile>-<source>/tokenizer/   tokenizer.pkl, token_bytes.pt, meta.json

This file is fixed infrastructure: the agent edits train.py, never this file (the metric lives here).
"""

import os

# CPU: idle OpenMP threads sleep instead of spinning. libgomp reads this when torch loads it, so it is
# set before the first `import torch` (train.py sets it too, for the same reason). A spinning thread
# burns CPU seconds while it waits: the cpu profile's budget counts them, and any other load on the
# machine stalls every parallel region (measured on 2 cores with one busy process: steps 2.5-10x
# slower). Sleeping costs ~2% on an idle machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import bisect
import ctypes
import hashlib
import io
import json
import math
import pickle
import queue
import random
import sys
import sysconfig
import tempfile
import threading
import time
import traceback
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

# -----------------------------------------------------------------------------
# Profiles: the fixed constants of an experiment. The metric is only comparable between runs of
# the same profile, so these never change within a profile.

PROFILES = {
    # Upstream constants, so results compare with published numbers on one H100.
    "gpu": dict(
        max_seq_len=2048,
        time_budget=300,  # wall seconds of training, excluding startup/compilation and eval
        eval_tokens=40 * 524288,
        eval_batch_size=128,  # upstream's DEVICE_BATCH_SIZE: 80 batches of 128 x 2048 = eval_tokens
        packing="upstream",  # crop the shortest document and drop its tail; train shards in file order
        vocab_size=8192,
        tokenizer_max_chars=400_000_000,  # a few hundred MB of text is plenty for an 8k vocab
        num_shards=10,  # climbmix train shards downloaded by default
    ),
    # A real, measurable run in about a minute on 2 CPU cores.
    "cpu": dict(
        max_seq_len=256,
        time_budget=60,  # CPU seconds of the training process per thread (see BudgetClock)
        # 128k tokens (~1,900 files' worth of python-corpus documents, ~6% of its val split): the
        # same fixed set every run, so comparisons are paired; see docs/benchmarks.md for the spread.
        eval_tokens=512 * 256,
        eval_batch_size=8,  # 64 batches of 8 x 256
        packing="tails",  # a cropped document's tail continues in a later row; train reshuffled per epoch
        # A tiny CPU model would otherwise spend most of its parameters and FLOPs in the
        # embedding and the LM head (V x d each); 4096 still gives ~3.2 bytes/token on Python.
        vocab_size=4096,
        tokenizer_max_chars=30_000_000,  # ~6 s of BPE training on 2 cores
        num_shards=2,
    ),
}
SOURCES = ("climbmix", "python-corpus", "local")
DEFAULT_SOURCE = {"gpu": "climbmix", "cpu": "python-corpus"}


def detect_device_type():
    """"cuda", "mps" or "cpu": the one device detection used by prepare.py, train.py and (through
    `python prepare.py --print-profile`) MemoryLab's run timeout. Asks torch, not driver files, so a
    container whose GPU torch can use is always seen as one."""
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _detect_profile():
    profile = os.environ.get("AUTORESEARCH_PROFILE") or ("gpu" if detect_device_type() == "cuda" else "cpu")
    if profile not in PROFILES:
        raise SystemExit(f"prepare.py: error: AUTORESEARCH_PROFILE must be 'gpu' or 'cpu', got {profile!r}")
    return profile


def budget_clock_unit(profile, device_type):
    """The clock the time budget is counted on: "cpu" for the cpu profile on a CPU, else "wall".

    On a CPU that other programs share, wall seconds measure the machine's load as much as the idea
    (measured: 0.28 bpb between a run alone and one beside two busy processes), so the cpu profile
    counts the CPU time its training process got (BudgetClock). A GPU is not shared that way, the
    CPU mostly waits for it, and upstream's results are wall-clock: the gpu profile (and any run on
    CUDA or MPS) keeps wall seconds."""
    return "cpu" if profile == "cpu" and device_type == "cpu" else "wall"


def _time_budget(profile):
    raw = os.environ.get("AUTORESEARCH_TIME_BUDGET")
    if not raw:
        return PROFILES[profile]["time_budget"]
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise SystemExit(f"prepare.py: error: AUTORESEARCH_TIME_BUDGET must be a positive number of seconds, "
                         f"got {raw!r}")
    return value


PROFILE = _detect_profile()
MAX_SEQ_LEN = PROFILES[PROFILE]["max_seq_len"]  # context length
# Training time budget in seconds on BUDGET_CLOCK. AUTORESEARCH_TIME_BUDGET overrides the profile's,
# for tests and smoke runs only: a run with another budget is not comparable with real ones.
TIME_BUDGET = _time_budget(PROFILE)
BUDGET_CLOCK = budget_clock_unit(PROFILE, detect_device_type())
EVAL_TOKENS = PROFILES[PROFILE]["eval_tokens"]  # number of validation tokens for evaluate_bpb
EVAL_BATCH_SIZE = PROFILES[PROFILE]["eval_batch_size"]  # evaluate_bpb's batch: fixed, whatever train.py does
PACKING = PROFILES[PROFILE]["packing"]  # how make_dataloader packs rows (see _packed_rows)
VOCAB_SIZE = PROFILES[PROFILE]["vocab_size"]  # including the special tokens

# -----------------------------------------------------------------------------
# Tokenizer constants (upstream's, so gpu-profile token counts match published ones)

# GPT-4's split pattern, except numbers are split into groups of at most 2 digits (not 3): with a
# small vocab, 3-digit groups could spend up to ~1000 merges on numbers alone.
SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|"""
    r"""\s+(?!\S)|\s+"""
)
SPECIAL_TOKENS = [f"<|reserved_{i}|>" for i in range(4)]
BOS_TOKEN = SPECIAL_TOKENS[0]  # every document starts with it
TOKENIZER_DOC_CAP = 10_000  # chars per document fed to BPE training, so huge docs don't dominate

# -----------------------------------------------------------------------------
# Data source constants

CLIMBMIX_URL = "https://huggingface.co/datasets/karpathy/climbmix-400b-shuffle/resolve/main"
CLIMBMIX_MAX_SHARD = 6542  # shards are shard_00000 .. shard_06542
CLIMBMIX_VAL_SHARD = f"shard_{CLIMBMIX_MAX_SHARD:05d}.parquet"  # the last shard, pinned as validation
DOWNLOAD_ATTEMPTS = 5  # per shard; env AUTORESEARCH_DOWNLOAD_RETRIES overrides
DOWNLOAD_BACKOFF = 2.0  # seconds before the 2nd attempt, doubling after; env AUTORESEARCH_DOWNLOAD_BACKOFF
DOWNLOAD_TIMEOUT = (15, 60)  # (connect, read) seconds; a stalled connection counts as a failed attempt

VAL_MOD = 20  # local: a document is validation iff sha1(its id) % VAL_MOD == 0 (~5%)
# python-corpus: ~10%. The standard library alone is ~10M chars, and 5% of it packs into fewer rows than
# the cpu profile's EVAL_TOKENS.
PYTHON_VAL_MOD = 10
MAX_FILE_BYTES = 500_000  # python-corpus: bigger .py files are generated tables, not code people write
SHARD_CHARS = 32_000_000  # python-corpus / local: text per train shard
ROW_GROUP_DOCS = 1024  # documents per parquet row group (the dataloader's read unit)
DOC_TARGET_CHARS = 3000  # python-corpus: long files are cut into documents of about this many chars
NEAR_DUP_MIN_SHARED = 0.5  # python-corpus: files sharing half their distinctive lines are one group

# -----------------------------------------------------------------------------
# Where things live. Tests and tools pass explicit paths; these are the defaults for train.py.

CACHE_ROOT = Path(os.environ.get("AUTORESEARCH_CACHE") or Path.home() / ".cache" / "autoresearch")


def cache_dir_for(profile, source, cache_root=None):
    return Path(cache_root or CACHE_ROOT) / f"{profile}-{source}"


def _active_sources(cache_root):
    try:
        return json.loads((Path(cache_root) / "active.json").read_text())
    except (OSError, ValueError):
        return {}


def _detect_source(profile, cache_root=None):
    # Explicit env var > the source `prepare.py` last prepared for this profile > profile default.
    cache_root = Path(cache_root or CACHE_ROOT)
    source = os.environ.get("AUTORESEARCH_SOURCE") or _active_sources(cache_root).get(profile)
    source = source or DEFAULT_SOURCE[profile]
    if source not in SOURCES:
        raise SystemExit(f"prepare.py: error: unknown source {source!r} (AUTORESEARCH_SOURCE or "
                         f"{cache_root / 'active.json'}); choose one of {', '.join(SOURCES)}")
    return source


SOURCE = _detect_source(PROFILE)
CACHE_DIR = cache_dir_for(PROFILE, SOURCE)
DATA_DIR = CACHE_DIR / "data"
TOKENIZER_DIR = CACHE_DIR / "tokenizer"


class PrepareError(RuntimeError):
    """An expected failure (network, bad input, missing data): reported as one line, no traceback."""


def _atomic_write_bytes(path, data):
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _atomic_write_json(path, obj):
    _atomic_write_bytes(Path(path), (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def _stable_hash(key):
    return int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big")


def _write_manifest(data_dir, source, train_names, val_name, **extra):
    # The manifest is written last: its presence means "this data dir is complete". The dataloader
    # reads the shard lists from it rather than guessing from file names.
    rows = {name: pq.read_metadata(data_dir / name).num_rows for name in [*train_names, val_name]}
    manifest = dict(source=source, train=list(train_names), val=val_name,
                    train_docs=sum(rows[n] for n in train_names), val_docs=rows[val_name], **extra)
    _atomic_write_json(data_dir / "manifest.json", manifest)
    return manifest


def read_manifest(data_dir=None):
    data_dir = Path(data_dir or DATA_DIR)
    try:
        return json.loads((data_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        raise PrepareError(f"no prepared data in {data_dir}: run `python prepare.py` first "
                           f"(profile {PROFILE}, source {SOURCE})") from None


def shard_paths(split, data_dir=None):
    """Parquet files of a split ("train" or "val"), in their fixed order."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    data_dir = Path(data_dir or DATA_DIR)
    manifest = read_manifest(data_dir)
    names = manifest["train"] if split == "train" else [manifest["val"]]
    paths = [data_dir / name for name in names]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise PrepareError(f"{data_dir} is missing {', '.join(missing)}: re-run `python prepare.py`")
    return paths


# -----------------------------------------------------------------------------
# Source 1: climbmix, downloaded over HTTP(S)


def _env_number(name, default, kind):
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        raise PrepareError(f"{name} must be a number, got {value!r}") from None


class _GiveUp(Exception):
    """A failure that retrying cannot fix (404, 403, ...)."""


class _Stopped(Exception):
    """Another shard failed for good, or the user pressed Ctrl-C: stop this download quietly."""


def _validate_shard(path):
    # A truncated parquet file has no footer, so reading the metadata catches cut-off downloads even
    # when the server sent no Content-Length. Also insist on the column the dataloader reads.
    try:
        meta = pq.read_metadata(path)
        names = pq.read_schema(path).names
    except (pa.ArrowException, OSError) as e:
        raise ValueError(f"not a valid parquet file ({e})") from None
    if "text" not in names:
        raise ValueError(f"parquet file has no 'text' column (columns: {names})")
    if meta.num_rows == 0:
        raise ValueError("parquet file has no rows")


def _download_shard(name, data_dir, base_url, attempts, backoff, stop):
    import requests  # only needed for this source

    final = data_dir / name
    if final.exists():  # only ever created by os.replace after validation, so it is complete
        return False
    url = f"{base_url.rstrip('/')}/{name}"
    tmp = data_dir / f"{name}.{os.getpid()}.tmp"
    last_error = None
    for attempt in range(1, attempts + 1):
        if stop.is_set():
            raise _Stopped()
        try:
            with requests.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT) as response:
                status = response.status_code
                if status == 404:
                    raise _GiveUp(f"{url} returned 404 Not Found")
                if 400 <= status < 500 and status not in (408, 429):
                    raise _GiveUp(f"{url} returned HTTP {status} {response.reason}")
                response.raise_for_status()  # 5xx, 408, 429: worth another attempt
                expected = response.headers.get("Content-Length")
                with open(tmp, "wb") as f:
                    for chunk in response.iter_content(chunk_size=1 << 20):
                        if stop.is_set():
                            raise _Stopped()
                        f.write(chunk)
                size = tmp.stat().st_size
                # Content-Length counts encoded bytes, so only compare when the body was not encoded.
                if expected and not response.headers.get("Content-Encoding") and size != int(expected):
                    raise ValueError(f"truncated download: got {size} of {expected} bytes")
            _validate_shard(tmp)
            os.replace(tmp, final)
            return True
        except (_GiveUp, _Stopped):
            tmp.unlink(missing_ok=True)
            raise
        except (requests.RequestException, OSError, ValueError) as e:
            tmp.unlink(missing_ok=True)
            last_error = f"{type(e).__name__}: {e}"
            if attempt < attempts:
                delay = backoff * 2 ** (attempt - 1)
                print(f"  {name}: attempt {attempt}/{attempts} failed ({last_error}); retrying in {delay:g}s",
                      flush=True)
                stop.wait(delay)
    raise _GiveUp(f"{url} failed after {attempts} attempts; last error: {last_error}")


def _remove_stale_tmp_files(data_dir):
    # A killed download leaves <name>.<pid>.tmp behind; remove those whose process is gone (another
    # live prepare.py may share this cache and still be writing its own).
    for tmp in data_dir.glob("*.tmp"):
        pid = tmp.suffixes[-2].lstrip(".") if len(tmp.suffixes) >= 2 else ""
        alive = False
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
                alive = True
            except ProcessLookupError:
                pass
            except PermissionError:
                alive = True
        if not alive:
            tmp.unlink(missing_ok=True)


def download_climbmix(data_dir, num_shards, workers=8, base_url=None, attempts=None, backoff=None):
    """Download train shards 0..num_shards-1 plus the pinned val shard; resumable. Returns the manifest."""
    if num_shards == -1:
        num_shards = CLIMBMIX_MAX_SHARD
    if not 1 <= num_shards <= CLIMBMIX_MAX_SHARD:
        raise PrepareError(f"--num-shards must be between 1 and {CLIMBMIX_MAX_SHARD} (or -1 for all), "
                           f"got {num_shards}")
    base_url = base_url or os.environ.get("AUTORESEARCH_DATA_URL") or CLIMBMIX_URL
    attempts = attempts or max(1, _env_number("AUTORESEARCH_DOWNLOAD_RETRIES", DOWNLOAD_ATTEMPTS, int))
    if backoff is None:
        backoff = _env_number("AUTORESEARCH_DOWNLOAD_BACKOFF", DOWNLOAD_BACKOFF, float)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp_files(data_dir)

    names = [f"shard_{i:05d}.parquet" for i in range(num_shards)] + [CLIMBMIX_VAL_SHARD]
    todo = [n for n in names if not (data_dir / n).exists()]
    print(f"climbmix: {len(names) - len(todo)}/{len(names)} shards already in {data_dir}; "
          f"downloading {len(todo)} from {base_url} with {workers} workers", flush=True)
    stop = threading.Event()  # set on the first permanent failure so the other workers stop early
    failures = []
    done = 0
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        futures = {pool.submit(_download_shard, name, data_dir, base_url, attempts, backoff, stop): name
                   for name in todo}
        for future in as_completed(futures):
            try:
                future.result()
                done += 1
                size_mb = (data_dir / futures[future]).stat().st_size / 1e6
                print(f"  {futures[future]} ({size_mb:.1f} MB) [{done}/{len(todo)}]", flush=True)
            except _GiveUp as e:
                failures.append(f"{futures[future]}: {e}")
                stop.set()
            except _Stopped:
                pass
    except KeyboardInterrupt:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if failures:
        retry = f"python prepare.py --source climbmix --num-shards {num_shards}"
        raise PrepareError(f"download failed: {failures[0]}"
                           + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else "")
                           + f". Shards already downloaded are kept; check the network or "
                           f"AUTORESEARCH_DATA_URL and re-run `{retry}` to resume "
                           "(or use `--source python-corpus`, which needs no network)")
    # Use every complete train shard present, including ones from an earlier, larger download.
    train = sorted(p.name for p in data_dir.glob("shard_*.parquet") if p.name != CLIMBMIX_VAL_SHARD)
    return _write_manifest(data_dir, "climbmix", train, CLIMBMIX_VAL_SHARD, url=base_url)


# -----------------------------------------------------------------------------
# Sources 2 and 3: text already on this machine, written as pre-shuffled parquet shards


def _write_text_shards(data_dir, docs, source, max_train_shards=None, groups=None, splitter=None, val_mod=VAL_MOD,
                       **extra):
    """docs: list of (id, text), ids unique. Splits train/val by a stable hash of each document's
    group (groups: id -> group key, default the id itself, so near-duplicates that share a group
    always land on the same side), then cuts each text into documents with `splitter` (default:
    none), orders each split by a stable hash of the document ids (so shards are pre-shuffled like
    climbmix and the first EVAL_TOKENS of val are a random sample rather than one package), and
    writes the shards + manifest atomically."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    if len(docs) < 2:
        raise PrepareError(f"{source}: found {len(docs)} usable document(s); need at least 2 "
                           "(one goes to validation)")
    groups = groups or {}
    in_val = {doc_id: _stable_hash(groups.get(doc_id, doc_id)) % val_mod == 0 for doc_id, _ in docs}
    if not any(in_val.values()) or all(in_val.values()):
        # Tiny corpora: still pin a (deterministic) validation document, and keep one for training.
        first = min(in_val, key=_stable_hash)
        in_val = {doc_id: doc_id == first for doc_id in in_val}
    train, val = [], []
    for doc_id, text in docs:
        pieces = splitter(text) if splitter else [text]
        for k, piece in enumerate(pieces):
            piece_id = doc_id if len(pieces) == 1 else f"{doc_id}#{k}"
            (val if in_val[doc_id] else train).append((_stable_hash(piece_id), piece_id, piece))
    train.sort()
    val.sort()

    # Remove the old manifest first: if we are interrupted, the data dir reads as "not prepared"
    # rather than as a mix of old and new shards.
    (data_dir / "manifest.json").unlink(missing_ok=True)
    shards, current, chars = [], [], 0
    for doc in train:
        current.append(doc)
        chars += len(doc[2])
        if chars >= SHARD_CHARS:
            shards.append(current)
            current, chars = [], 0
    if current:
        shards.append(current)
    if max_train_shards:
        shards = shards[:max_train_shards]
    train_names = [f"shard_{i:05d}.parquet" for i in range(len(shards))]
    for name, group in [*zip(train_names, shards, strict=True), ("val.parquet", val)]:
        table = pa.table({"text": [d[2] for d in group], "id": [d[1] for d in group]})
        tmp = data_dir / f"{name}.{os.getpid()}.tmp"
        pq.write_table(table, tmp, row_group_size=ROW_GROUP_DOCS, compression="zstd")
        os.replace(tmp, data_dir / name)
    keep = {*train_names, "val.parquet"}
    for stale in data_dir.glob("*.parquet"):
        if stale.name not in keep:
            stale.unlink()
    return _write_manifest(data_dir, source, train_names, "val.parquet", **extra)


_TOP_LEVEL_STARTS = ("def ", "class ", "async def ", "@")


def split_python_source(text, target=DOC_TARGET_CHARS):
    """Cut one .py file into documents of about `target` chars, at top-level definition boundaries.

    A boundary is a line that starts a top-level `def`, `class` or decorator (with the comment lines
    right above it). Consecutive definitions are merged until a document would pass `target`; one
    definition longer than 2 x target (a big class) is cut further at blank lines. The pieces are
    contiguous: "".join(pieces) == text. Short files come back whole."""
    if len(text) <= 2 * target:
        return [text]
    lines = text.splitlines(keepends=True)
    starts = [0]
    for i, line in enumerate(lines):
        if i and line.startswith(_TOP_LEVEL_STARTS) and not lines[i - 1].startswith("@"):
            j = i
            while j > 0 and lines[j - 1].startswith("#"):
                j -= 1  # a comment block above a definition belongs to it
            if j > starts[-1]:
                starts.append(j)
    segments = ["".join(lines[a:b]) for a, b in zip(starts, [*starts[1:], len(lines)], strict=True)]
    pieces = []
    for seg in segments:
        if len(seg) > 2 * target:
            pieces.extend(_split_at_blank_lines(seg, target))
        else:
            pieces.append(seg)
    docs, current = [], ""
    for piece in pieces:
        if current and len(current) + len(piece) > target:
            docs.append(current)
            current = ""
        current += piece
    if current:
        docs.append(current)
    return docs


def _split_at_blank_lines(text, target):
    out, current = [], ""
    for block in text.split("\n\n"):
        if current and len(current) + len(block) + 2 > target:
            out.append(current)
            current = ""
        current += block + "\n\n"
    out.append(current)
    out[-1] = out[-1][:-2]  # the last block had no "\n\n" after it
    return [piece for piece in out if piece]


_GENERIC_FILES = {"__init__.py", "__main__.py", "conftest.py", "setup.py", "utils.py", "util.py", "compat.py",
                  "_compat.py", "version.py", "_version.py", "base.py", "core.py", "main.py", "types.py"}


def _module_key(doc_id):
    """The module a file is, wherever it is installed: its last two path parts without leading
    underscores (stdlib/distutils/command/build.py, site-packages/setuptools/_distutils/command/build.py
    and pip/_vendor/... copies -> distutils... "command/build.py"). None for names too generic to mean
    the same module (__init__.py, utils.py, ...), which would chain unrelated packages together."""
    parts = doc_id.split("/")[1:]
    if parts[-1] in _GENERIC_FILES or len(parts) < 2:
        return None
    return "/".join(part.lstrip("_") for part in parts[-2:])


def near_duplicate_groups(docs, min_shared=NEAR_DUP_MIN_SHARED):
    """{id: group key} for documents that must share a split: the same module installed twice
    (vendored copies), or files sharing at least `min_shared` of their distinctive lines (renamed
    copies such as stdlib tomllib vs a vendored tomli). Distinctive lines: stripped lines of >= 30
    chars that occur in at most 8 files (boilerplate such as license headers occurs in more); a
    deterministic 1-in-4 sample of them keeps this at a few seconds on the whole corpus."""
    parent = list(range(len(docs)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i, j):
        i, j = find(i), find(j)
        if i != j:
            parent[max(i, j)] = min(i, j)

    by_module = {}
    for i, (doc_id, _) in enumerate(docs):
        key = _module_key(doc_id)
        if key is not None:
            union(i, by_module.setdefault(key, i))
    owners = {}  # line hash -> indices of the files holding it (up to 9)
    sizes = []
    for i, (_, text) in enumerate(docs):
        hashes = set()
        for line in text.splitlines():
            line = line.strip()
            if len(line) >= 30:
                h = zlib.crc32(line.encode("utf-8", "surrogatepass"))
                if h % 4 == 0:
                    hashes.add(h)
        sizes.append(len(hashes))
        for h in hashes:
            holders = owners.setdefault(h, [])
            if len(holders) < 9:
                holders.append(i)
    shared = {}
    for holders in owners.values():
        if 2 <= len(holders) <= 8:
            for a in range(len(holders)):
                for b in range(a + 1, len(holders)):
                    pair = (holders[a], holders[b])
                    shared[pair] = shared.get(pair, 0) + 1
    for (i, j), n in shared.items():
        if n >= 2 and n >= min_shared * min(sizes[i], sizes[j]):
            union(i, j)
    return {doc_id: docs[find(i)][0] for i, (doc_id, _) in enumerate(docs)}


# Parts of the standard library that distributions ship as separate packages (Debian/Ubuntu:
# libpython3.X-testsuite, idle, python3-tk, python3-lib2to3, python3-distutils, python3-venv) or that
# hold build-specific files: left out, so the corpus is the same wherever this Python version is.
STDLIB_SKIP_DIRS = {"test", "idlelib", "tkinter", "turtledemo", "lib2to3", "distutils", "ensurepip",
                    "site-packages", "dist-packages"}


def python_corpus_roots():
    """(label, directory) pairs the python-corpus reads: the running Python's standard library only.
    Never site-packages, so the corpus (and data_id) depends on the Python version, not on what
    happens to be installed in the environment."""
    return [("stdlib", sysconfig.get_paths()["stdlib"])]


def _skipped_stdlib_path(label, rel_dir, name):
    """Stdlib entries that are not the same in every installation of one Python version: the
    directories of STDLIB_SKIP_DIRS, config-3.X-<platform>/ and _sysconfigdata_*.py (build settings)."""
    if label != "stdlib":
        return False
    if rel_dir == ".":
        return name in STDLIB_SKIP_DIRS or name.startswith(("config-", "_sysconfigdata_"))
    return name in ("site-packages", "dist-packages")


def collect_python_files(roots=None, exclude=()):
    """Yield (id, text) for every usable .py file under the roots, in sorted id order, deduplicated
    by content (the first id wins). ids are '<label>/<path relative to the root>'."""
    roots = [(label, os.path.realpath(d)) for label, d in (roots or python_corpus_roots())
             if os.path.isdir(d)]
    # Never descend into another root, into a nested virtualenv, or into the cache we are writing to.
    skip_dirs = {d for _, d in roots} | {os.path.realpath(e) for e in exclude}
    files = []
    for label, root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            kept = []
            for d in dirnames:
                full = os.path.join(dirpath, d)
                if (d.startswith(".") or d == "__pycache__" or os.path.realpath(full) in skip_dirs
                        or _skipped_stdlib_path(label, rel_dir, d)
                        or os.path.exists(os.path.join(full, "pyvenv.cfg"))):
                    continue
                kept.append(d)
            dirnames[:] = kept
            for fn in filenames:
                if fn.endswith(".py") and not _skipped_stdlib_path(label, rel_dir, fn):
                    full = os.path.join(dirpath, fn)
                    files.append((f"{label}/{Path(os.path.relpath(full, root)).as_posix()}", full))
    files.sort()
    seen = set()
    for doc_id, path in files:
        try:
            if os.path.getsize(path) > MAX_FILE_BYTES:
                continue
            data = Path(path).read_bytes()
        except OSError:
            continue  # vanished or unreadable: this corpus is best-effort by nature
        digest = hashlib.sha1(data).digest()
        if digest in seen:
            continue
        seen.add(digest)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # a few stdlib test files are deliberately in other encodings
        if text.strip():
            yield doc_id, text


def build_python_corpus(data_dir, roots=None, max_train_shards=None, exclude=()):
    docs = list(collect_python_files(roots, exclude=[*exclude, CACHE_ROOT]))
    groups = near_duplicate_groups(docs)
    print(f"python-corpus: {len(docs)} unique .py files, {sum(len(t) for _, t in docs) / 1e6:.1f}M chars, "
          f"{len(set(groups.values()))} near-duplicate groups", flush=True)
    return _write_text_shards(data_dir, docs, "python-corpus", max_train_shards, groups=groups,
                              splitter=split_python_source, val_mod=PYTHON_VAL_MOD)


def _read_local_file(path, rel):
    """Documents of one user file: .parquet rows (text column), .jsonl records (text field), or a
    whole .txt file as one document."""
    suffix = path.suffix.lower()
    if suffix in (".txt", ".jsonl"):
        try:
            content = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise PrepareError(f"{path} is not UTF-8 text") from None
    if suffix == ".txt":
        return [(rel, content)]
    if suffix == ".jsonl":
        docs = []
        for lineno, line in enumerate(content.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as e:
                raise PrepareError(f"{path}:{lineno}: invalid JSON ({e})") from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise PrepareError(f"{path}:{lineno}: expected an object with a string 'text' field")
            docs.append((f"{rel}:{lineno}", record["text"]))
        return docs
    try:
        names = pq.read_schema(path).names
        if "text" not in names:
            raise PrepareError(f"{path} has no 'text' column (columns: {names})")
        texts = pq.read_table(path, columns=["text"]).column("text").to_pylist()
    except (pa.ArrowException, OSError) as e:
        raise PrepareError(f"cannot read {path} as parquet ({e})") from None
    return [(f"{rel}:{i}", t) for i, t in enumerate(texts) if isinstance(t, str)]


def build_local(input_dir, data_dir, max_train_shards=None):
    input_dir = Path(input_dir).expanduser()
    if not input_dir.is_dir():
        raise PrepareError(f"local source: {input_dir} is not a directory (pass --data-dir DIR)")
    docs = []
    data_dir_real = Path(data_dir).resolve()
    for path in sorted(input_dir.rglob("*")):
        rel = path.relative_to(input_dir).as_posix()
        if (path.suffix.lower() not in (".parquet", ".txt", ".jsonl") or not path.is_file()
                or any(part.startswith(".") for part in Path(rel).parts)
                or data_dir_real in path.resolve().parents):
            continue
        docs.extend((doc_id, text) for doc_id, text in _read_local_file(path, rel) if text.strip())
    if not docs:
        raise PrepareError(f"local source: no usable documents in {input_dir} (looked for .parquet files "
                           "with a 'text' column, .txt files, .jsonl files with a 'text' field)")
    print(f"local: {len(docs)} documents, {sum(len(t) for _, t in docs) / 1e6:.1f}M chars from {input_dir}",
          flush=True)
    return _write_text_shards(data_dir, docs, "local", max_train_shards, input_dir=str(input_dir.resolve()))


# -----------------------------------------------------------------------------
# Tokenizer: BPE trained with rustbpe, used through tiktoken (fast, multi-threaded encoding)


def _iter_shard_texts(path, doc_cap):
    pf = pq.ParquetFile(path)
    for rg in range(pf.num_row_groups):
        for text in pf.read_row_group(rg, columns=["text"]).column("text").to_pylist():
            if text:
                yield text[:doc_cap]


def train_tokenizer(data_dir, tokenizer_dir, vocab_size, max_chars, doc_cap=TOKENIZER_DOC_CAP):
    """Train BPE on up to max_chars of the train split; write tokenizer.pkl, token_bytes.pt, meta.json.
    Skipped when the existing tokenizer was trained with the same settings on the same files (so
    downloading more shards later does not silently change every token id)."""
    import rustbpe  # only needed here
    import tiktoken

    data_dir, tokenizer_dir = Path(data_dir), Path(tokenizer_dir)
    n_special = len(SPECIAL_TOKENS)
    if vocab_size < 256 + n_special:
        raise PrepareError(f"vocab_size must be at least {256 + n_special}, got {vocab_size}")
    train_paths = shard_paths("train", data_dir)
    settings = dict(vocab_size=vocab_size, pattern=SPLIT_PATTERN, max_chars=max_chars, doc_cap=doc_cap,
                    special_tokens=SPECIAL_TOKENS)
    try:
        meta = json.loads((tokenizer_dir / "meta.json").read_text())
        unchanged = meta["settings"] == settings and all(
            (data_dir / name).exists() and (data_dir / name).stat().st_size == size
            for name, size in meta["trained_on"])
        if unchanged:
            Tokenizer.from_directory(tokenizer_dir)  # both files must also load: a damaged one is retrained
            get_token_bytes("cpu", tokenizer_dir)
            print(f"tokenizer: up to date in {tokenizer_dir} (vocab {meta['n_vocab']})", flush=True)
            return meta
    except (OSError, ValueError, KeyError, TypeError, PrepareError):
        pass

    t0 = time.time()
    used = []  # the shards the iterator actually opened, for the up-to-date check above

    def text_iterator():
        total = 0
        for path in train_paths:
            used.append([path.name, path.stat().st_size])
            for text in _iter_shard_texts(path, doc_cap):
                yield text
                total += len(text)
                if total >= max_chars:
                    return

    bpe = rustbpe.Tokenizer()
    bpe.train_from_iterator(text_iterator(), vocab_size - n_special, pattern=SPLIT_PATTERN)
    mergeable_ranks = {bytes(token): rank for token, rank in bpe.get_mergeable_ranks()}
    n_ranks = len(mergeable_ranks)
    if n_ranks < vocab_size - n_special:
        print(f"tokenizer: warning: the training text only supports {n_ranks} of "
              f"{vocab_size - n_special} tokens; the vocab is smaller than requested", flush=True)
    enc = tiktoken.Encoding(
        name=f"autoresearch-{vocab_size}",
        pat_str=bpe.get_pattern(),
        mergeable_ranks=mergeable_ranks,
        special_tokens={tok: n_ranks + i for i, tok in enumerate(SPECIAL_TOKENS)},
    )
    tokenizer = Tokenizer(enc)

    # token -> UTF-8 byte length, 0 for special tokens (they are not text, so not counted by the metric).
    token_bytes = torch.tensor([len(enc.decode_single_token_bytes(i)) for i in range(n_ranks)]
                               + [0] * n_special, dtype=torch.int32)

    # Sanity checks: fail loudly now rather than train on a broken tokenizer.
    sample = ("Hello world! naïve café, 日本語のテキスト, emoji 🦙🚀, e\u0301 Ωμέγα\n"
              "\tdef f(x):\n\t\treturn x ** 123456\n")
    ids = tokenizer.encode(sample)
    if tokenizer.decode(ids) != sample:
        raise PrepareError("tokenizer round-trip check failed (decode(encode(text)) != text)")
    if int(token_bytes[ids].sum()) != len(sample.encode("utf-8")):
        raise PrepareError("token byte-length table does not match the tokenizer")
    if tokenizer.encode(sample, prepend=BOS_TOKEN)[0] != tokenizer.get_bos_token_id():
        raise PrepareError("BOS token check failed")

    tokenizer_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write_bytes(tokenizer_dir / "tokenizer.pkl", pickle.dumps(enc))
    # Saved through memory: torch.save names the zip's records after the file it writes, so saving to
    # a per-process temp name made token_bytes.pt (and with it data_id) differ on every prepare.
    buffer = io.BytesIO()
    torch.save(token_bytes, buffer)
    _atomic_write_bytes(tokenizer_dir / "token_bytes.pt", buffer.getvalue())
    meta = dict(settings=settings, n_vocab=enc.n_vocab, trained_on=used, seconds=round(time.time() - t0, 1))
    _atomic_write_json(tokenizer_dir / "meta.json", meta)
    print(f"tokenizer: trained vocab {enc.n_vocab} in {time.time() - t0:.1f}s -> {tokenizer_dir}", flush=True)
    return meta


class Tokenizer:
    """A thin wrapper around a tiktoken Encoding with our special tokens."""

    def __init__(self, enc):
        self.enc = enc
        self.bos_token_id = enc.encode_single_token(BOS_TOKEN)

    @classmethod
    def from_directory(cls, dir=None):
        path = Path(dir or TOKENIZER_DIR) / "tokenizer.pkl"
        try:
            with open(path, "rb") as f:
                return cls(pickle.load(f))
        except FileNotFoundError:
            raise PrepareError(f"no tokenizer at {path}: run `python prepare.py` first "
                               f"(profile {PROFILE}, source {SOURCE})") from None
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError, TypeError,
                KeyError, IndexError) as e:  # truncated, overwritten or not a tiktoken Encoding
            raise PrepareError(f"{path} is unreadable ({type(e).__name__}): re-run `python prepare.py`") from None

    def get_vocab_size(self):
        return self.enc.n_vocab

    def get_bos_token_id(self):
        return self.bos_token_id

    def _token_id(self, token):
        return token if isinstance(token, int) else self.enc.encode_single_token(token)

    def encode(self, text, prepend=None, append=None, num_threads=8):
        """str -> list of ids; list of str -> list of lists. prepend/append: a token id or special token
        string added to each text. Special-token strings inside the text are encoded as plain text."""
        prefix = [] if prepend is None else [self._token_id(prepend)]
        suffix = [] if append is None else [self._token_id(append)]
        if isinstance(text, str):
            return prefix + self.enc.encode_ordinary(text) + suffix
        if isinstance(text, list):
            ids = self.enc.encode_ordinary_batch(text, num_threads=num_threads)
            return [prefix + row + suffix for row in ids]
        raise TypeError(f"encode expects a str or a list of str, got {type(text).__name__}")

    def decode(self, ids):
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return self.enc.decode(list(ids))


def get_token_bytes(device="cpu", tokenizer_dir=None):
    """int32 tensor: UTF-8 byte length of each token id (0 for special tokens)."""
    path = Path(tokenizer_dir or TOKENIZER_DIR) / "token_bytes.pt"
    try:
        token_bytes = torch.load(path, map_location="cpu")
    except FileNotFoundError:
        raise PrepareError(f"no {path}: run `python prepare.py` first") from None
    except (OSError, EOFError, RuntimeError, pickle.UnpicklingError, ValueError) as e:  # truncated or overwritten
        raise PrepareError(f"{path} is unreadable ({type(e).__name__}): re-run `python prepare.py`") from None
    if not (isinstance(token_bytes, torch.Tensor) and token_bytes.ndim == 1 and not token_bytes.is_floating_point()):
        raise PrepareError(f"{path} does not hold a table of token byte lengths: re-run `python prepare.py`")
    return token_bytes.to(device)


def check_metric_inputs(data_dir=None, tokenizer_dir=None):
    """Read what the final evaluation needs (the byte-length table, the val shard's footer) so a broken
    preparation fails before the time budget is spent rather than after it."""
    get_token_bytes("cpu", tokenizer_dir)
    for path in shard_paths("val", data_dir):
        _row_groups(path)


def _row_groups(path):
    """How many row groups a prepared shard has; a damaged file is one PrepareError line."""
    try:
        return pq.ParquetFile(path).num_row_groups
    except (pa.ArrowException, OSError) as e:
        raise PrepareError(f"{path} is not a readable parquet file ({e}): re-run `python prepare.py`") from None


# -----------------------------------------------------------------------------
# Dataloader: best-fit packing of whole documents into rows, no padding


def _document_batches(paths, split, seed, epochs=None, shuffle=True, batch_size=128):
    """Yield (list of at most `batch_size` texts, epoch): each parquet row group in turn, cut into
    tokenizer batches (upstream's reading), for `epochs` passes (None: forever). With `shuffle` the
    train split is reshuffled every epoch (row-group order and documents within each group) from
    (seed, epoch); the val split is always read in file order so the eval set does not depend on the
    seed."""
    units = []
    for path in paths:
        units.extend((path, rg) for rg in range(_row_groups(path)))
    epoch = 1
    while epochs is None or epoch <= epochs:
        yielded = 0
        order = list(range(len(units)))
        rng = np.random.default_rng([seed, epoch]) if shuffle and split == "train" else None
        if rng is not None:
            rng.shuffle(order)
        for i in order:
            path, rg = units[i]
            try:
                texts = pq.ParquetFile(path).read_row_group(rg, columns=["text"]).column("text").to_pylist()
            except (pa.ArrowException, OSError) as e:
                raise PrepareError(f"{path}: row group {rg} is unreadable ({e}): re-run `python prepare.py`") from None
            texts = [t if isinstance(t, str) else "" for t in texts]
            if rng is not None:
                texts = [texts[j] for j in rng.permutation(len(texts))]
            yielded += len(texts)
            for k in range(0, len(texts), batch_size):
                yield texts[k:k + batch_size], epoch
        if not yielded:
            raise PrepareError(f"the {split} split has no documents: re-run `python prepare.py`")
        epoch += 1


def _packed_rows(tokenizer, row_len, split, seed, data_dir, buffer_size, tokenizer_batch_size, epochs, packing):
    """Yield (row, epoch): int64 numpy rows of row_len tokens, by best-fit packing (see make_dataloader).
    Ends, dropping the last partial row, when `epochs` passes over the split have been packed.

    packing "upstream" is upstream autoresearch's packer token for token: whole tokenizer batches
    refill the buffer while it holds fewer than buffer_size documents, the longest fitting document
    goes in (the earliest buffered among equals), else the shortest is cropped to fill the row and
    its tail is dropped; train shards are read in file order. "tails" differs only in that the tail
    goes back into the buffer (so no token is lost) and the train split is reshuffled every epoch."""
    bos = tokenizer.get_bos_token_id()
    keep_tails = packing == "tails"
    batches = _document_batches(shard_paths(split, data_dir), split, seed, epochs, shuffle=keep_tails,
                                batch_size=tokenizer_batch_size)
    # A buffer bigger than the split would only hold several copies of the same documents (the
    # python-corpus val split has a few thousand), so cap it at the split's size.
    buffer_size = max(1, min(buffer_size, read_manifest(data_dir).get(f"{split}_docs") or buffer_size))
    # The buffer, kept sorted by length so best-fit is a bisect; equal lengths stay in arrival order.
    lengths, docs = [], []
    epoch = 1
    exhausted = False

    def insert(doc):
        i = bisect.bisect_right(lengths, len(doc))
        lengths.insert(i, len(doc))
        docs.insert(i, doc)

    def refill():
        nonlocal epoch, exhausted
        while len(docs) < buffer_size and not exhausted:
            try:
                texts, epoch = next(batches)
            except StopIteration:
                exhausted = True
                return
            for doc in tokenizer.encode(texts, prepend=bos):
                insert(doc)

    while True:
        row = np.empty(row_len, dtype=np.int64)
        pos = 0
        while pos < row_len:
            refill()
            if not docs:
                return  # the last passes are used up; a partial row is dropped
            remaining = row_len - pos
            i = bisect.bisect_right(lengths, remaining) - 1  # the longest doc that fits ...
            if i >= 0:
                i = bisect.bisect_left(lengths, lengths[i])  # ... the earliest of that length
                doc = docs.pop(i)
                lengths.pop(i)
                row[pos:pos + len(doc)] = doc
                pos += len(doc)
            else:  # nothing fits: fill the row with the head of the shortest document
                doc = docs.pop(0)
                lengths.pop(0)
                row[pos:] = doc[:remaining]
                pos = row_len
                if keep_tails:  # its tail continues in a later row, without a BOS
                    insert(doc[remaining:])
        yield row, epoch


def make_dataloader(tokenizer, B, T, split, device=None, buffer_size=1000, seed=0, data_dir=None,
                    tokenizer_batch_size=128, epochs=None, prefetch=None, packing=None):
    """Yield (x, y, epoch): x, y are (B, T) int64 tensors on `device` (y is x shifted by one).

    Each row holds T+1 tokens built by best-fit packing: every document is BOS + its tokens; from a
    buffer of about `buffer_size` tokenized documents we repeatedly place the longest one that still
    fits in the row. When none fits, the shortest fills the rest of the row; with packing "tails"
    (the cpu profile) its tail goes back into the buffer, to continue in a later row, so every token
    of the split is used once per pass; with "upstream" (the gpu profile, default PACKING) the tail is
    dropped, exactly as upstream autoresearch. There is no padding. The rows are a pure function of
    (data, seed, T, buffer_size, packing), whatever the device and B.

    epochs: None = forever; N = stop after N passes over the split (the last partial batch is
    dropped), which is how evaluate_bpb reads each validation token at most once.
    prefetch: batches built ahead by a background thread (tokenizing and packing off the training
    thread, into pinned memory on CUDA). Default: 4 on CUDA, 0 (build inline) elsewhere, where the
    thread would only compete with the compute threads for the same cores.
    """
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    device = torch.device(device or detect_device_type())
    use_cuda = device.type == "cuda"
    prefetch = (4 if use_cuda else 0) if prefetch is None else prefetch
    rows = _packed_rows(tokenizer, T + 1, split, seed, data_dir, buffer_size, tokenizer_batch_size, epochs,
                        packing or PACKING)

    def host_batches():
        while True:
            block = [next(rows, None) for _ in range(B)]
            if block[-1] is None:
                return
            # x and y as one contiguous (2, B, T) block: a single host->device copy, and both halves
            # are contiguous (callers may .view(-1) them). Pinned memory + non_blocking only helps on
            # CUDA; the caching host allocator keeps each pinned block alive until its copy is done.
            packed = torch.from_numpy(np.stack([r for r, _ in block]))
            xy = torch.empty((2, B, T), dtype=torch.int64, pin_memory=use_cuda)
            xy[0].copy_(packed[:, :-1])
            xy[1].copy_(packed[:, 1:])
            yield xy, block[-1][1]

    source = host_batches() if prefetch <= 0 else _prefetched(host_batches(), prefetch)
    for xy, epoch in source:
        xy = xy.to(device, non_blocking=use_cuda)
        yield xy[0], xy[1], epoch


_DONE = object()


def _prefetched(generator, depth):
    """Run `generator` in a daemon thread, `depth` items ahead; re-raise its errors here. One producer
    and a FIFO queue, so the items (and the data order) are exactly those of the generator."""
    items = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for item in generator:
                while not stop.is_set():
                    try:
                        items.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put((_DONE, None))
        except BaseException as e:  # handed to the consumer, which raises it
            items.put((_DONE, e))

    thread = threading.Thread(target=produce, name="dataloader-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = items.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()  # the consumer stopped (or was closed): let the producer exit


# -----------------------------------------------------------------------------
# Evaluation: bits per byte, independent of the vocab size (fixed metric, do not edit)


@torch.no_grad()
def evaluate_bpb(model, tokenizer, *, stats=None, batch_size=None, seq_len=None, eval_tokens=None,
                 data_dir=None, tokenizer_dir=None, packing=None):
    """Validation bits per byte: the summed cross-entropy (nats) of every target token that is text,
    divided by ln(2) times the number of UTF-8 bytes those targets decode to. Targets that are special
    tokens (BOS) count neither loss nor bytes. `model(x, y, reduction='none')` must return the
    per-token loss in nats, shape (B*T,) or (B, T).

    What is scored is fixed here, never by train.py: batches of EVAL_BATCH_SIZE x MAX_SEQ_LEN, the
    first EVAL_TOKENS // (EVAL_BATCH_SIZE * MAX_SEQ_LEN) of them, from one pass over the val split,
    never more: when the split holds fewer, every one of its rows is scored once. With the gpu
    profile's constants this is upstream's evaluate_bpb (80 batches of 128 x 2048). Pass a dict as
    `stats` to get back `eval_tokens` (tokens actually scored) and `eval_bytes`. The other keywords
    are for prepare.py's own tests: a run that passes them is not comparable with other runs."""
    batch_size = batch_size or EVAL_BATCH_SIZE
    seq_len = seq_len or MAX_SEQ_LEN
    eval_tokens = eval_tokens or EVAL_TOKENS
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    token_bytes = get_token_bytes(device, tokenizer_dir)
    if token_bytes.numel() != tokenizer.get_vocab_size():
        raise PrepareError(f"token_bytes.pt has {token_bytes.numel()} entries but the tokenizer has "
                           f"{tokenizer.get_vocab_size()} tokens: re-run `python prepare.py`")
    loader = make_dataloader(tokenizer, batch_size, seq_len, "val", device=device, data_dir=data_dir, epochs=1,
                             packing=packing)
    steps = max(1, eval_tokens // (batch_size * seq_len))
    total_nats = torch.zeros((), dtype=torch.float64, device=device)
    total_bytes = torch.zeros((), dtype=torch.int64, device=device)
    done = 0
    for x, y, _ in loader:
        loss = model(x, y, reduction="none").reshape(-1)
        nbytes = token_bytes[y.reshape(-1)]
        # Summed in the loss's dtype per batch, accumulated in float64: upstream's arithmetic (it adds
        # each batch's .item() to a Python float), without a host sync per batch. where(): NaN stays NaN.
        total_nats += torch.where(nbytes > 0, loss, 0.0).sum().double()
        total_bytes += nbytes.sum()
        done += 1
        if done == steps:
            break
    loader.close()  # stops a prefetching thread now rather than at garbage collection
    if done == 0:
        raise PrepareError(f"the val split holds fewer than {batch_size} x {seq_len + 1} tokens: "
                           "use more data, or a smaller eval batch")
    if stats is not None:
        stats.update(eval_tokens=done * batch_size * seq_len, eval_bytes=int(total_bytes.item()))
    return total_nats.item() / (math.log(2) * total_bytes.item())


def count_eval_tokens(tokenizer, data_dir, profile):
    """The tokens evaluate_bpb will score on this data with the profile's constants, found by packing
    the val split without a model (at most EVAL_TOKENS' worth of it). prepare() records it in the
    manifest, so a run that crashes before its evaluation still knows its eval set."""
    settings = PROFILES[profile]
    batch, seq_len = settings["eval_batch_size"], settings["max_seq_len"]
    steps = max(1, settings["eval_tokens"] // (batch * seq_len))
    loader = make_dataloader(tokenizer, batch, seq_len, "val", device="cpu", data_dir=data_dir, epochs=1,
                             packing=settings["packing"])
    done = sum(1 for _ in zip(range(steps), loader, strict=False))
    loader.close()
    return done * batch * seq_len


# -----------------------------------------------------------------------------
# Run infrastructure for train.py (fixed, like the metric): the budget clock, the device's identity
# and peak FLOP/s, contention signals, crash injection, the printed summary block and the JSON
# sidecar MemoryLab reads (docs/train.md, "Summary sidecar").

# Dense (no sparsity) bf16 tensor-core peak FLOP/s by the exact name torch.cuda.get_device_name()
# reports, from the vendors' datasheets; -> (device_class, peak). A name not listed gets no MFU
# (null), never a guess: "NVIDIA H100 PCIe" must not be rated as an SXM card.
GPU_TABLE = {
    "NVIDIA H100 80GB HBM3": ("H100 SXM", 989.5e12),  # upstream's figure for H100 SXM
    "NVIDIA H100 PCIe": ("H100 PCIe", 756.0e12),
    "NVIDIA H100 NVL": ("H100 NVL", 835.0e12),
    "NVIDIA H800": ("H800 SXM", 989.5e12),
    "NVIDIA H200": ("H200 SXM", 989.5e12),
    "NVIDIA H200 NVL": ("H200 NVL", 835.0e12),
    "NVIDIA GH200 480GB": ("GH200", 989.5e12),
    "NVIDIA B200": ("B200", 2250e12),
    "NVIDIA A100-SXM4-80GB": ("A100 SXM", 312e12),
    "NVIDIA A100-SXM4-40GB": ("A100 SXM", 312e12),
    "NVIDIA A100 80GB PCIe": ("A100 PCIe", 312e12),
    "NVIDIA A100-PCIE-40GB": ("A100 PCIe", 312e12),
    "NVIDIA L40S": ("L40S", 362.05e12),
    "NVIDIA L4": ("L4", 121.0e12),
    "NVIDIA A10": ("A10", 125.0e12),
    "NVIDIA RTX A6000": ("RTX A6000", 154.8e12),
    "NVIDIA GeForce RTX 4090": ("RTX 4090", 165.2e12),  # bf16 with fp32 accumulate (what torch uses)
    "NVIDIA GeForce RTX 5090": ("RTX 5090", 209.5e12),
}


def device_identity(device_type=None):
    """(device_name, device_class, peak_flops or None) for this process's device."""
    device_type = device_type or detect_device_type()
    if device_type != "cuda":
        return device_type, device_type, None
    name = torch.cuda.get_device_name()
    if name in GPU_TABLE:
        device_class, peak = GPU_TABLE[name]
        return name, device_class, peak
    # Unknown (or a MIG slice, e.g. "... MIG 1g.10gb"): a readable class, and no MFU.
    return name, " ".join(name.replace("NVIDIA", "").replace("GeForce", "").split()), None


def tune_glibc_malloc():
    """CPU: keep big tensors in the heap. glibc serves allocations above its mmap threshold (at most
    32 MiB by default) with a fresh mmap and returns them with munmap on free, so the ~32 MiB logits
    buffers of the cpu profile were mapped, page-faulted in and unmapped every step (measured: 3.4M
    page faults and 6 s of system time per minute). A high fixed threshold, and a trim threshold
    that keeps freed heap memory instead of giving it back, make the next step reuse the pages.
    Returns True if glibc accepted both settings (False off glibc, e.g. macOS)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
        return bool(libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 31))
    except (OSError, AttributeError):
        return False


def usable_cpus():
    """CPUs this process may run on (its affinity mask; os.cpu_count() where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class BudgetClock:
    """Seconds on the time budget's clock, for the training loop's `dt`.

    unit "wall": time.time(), upstream's clock (the gpu profile).
    unit "cpu": this process's CPU time, user + system, summed over all its threads
    (time.process_time, i.e. CLOCK_PROCESS_CPUTIME_ID: nanosecond resolution, where getrusage's
    counters may tick coarsely), divided by `threads` = min(torch.get_num_threads(), usable CPUs).
    So one budget second is one second of the whole compute thread pool: alone on an idle machine
    it runs at ~0.9-1.0 x wall time; when other programs take the cores the process simply gets its
    CPU seconds later, and the run does the same work in more wall time. Capping at the usable CPUs
    means more threads than cores cannot slow the clock down; CPU spent by extra threads (a data
    thread, numpy) is still counted, as is CPU spent spinning (see OMP_WAIT_POLICY at the top).
    Work done in other processes is not counted, which is why train.py must not start any.
    """

    def __init__(self, unit=None, threads=None):
        self.unit = unit or BUDGET_CLOCK
        if self.unit not in ("cpu", "wall"):
            raise ValueError(f"budget clock unit must be 'cpu' or 'wall', got {self.unit!r}")
        self.threads = max(1, min(threads or torch.get_num_threads(), usable_cpus()))

    def now(self):
        if self.unit == "cpu":
            return time.process_time() / self.threads
        return time.time()


# nvidia-smi's clocks_event_reasons bits (nvml.h), minus "gpu_idle", which is only the moment we ask.
THROTTLE_BITS = {0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
                 0x10: "sync_boost", 0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown",
                 0x80: "hw_power_brake_slowdown", 0x100: "display_clock_setting"}


def _nvidia_smi(*args):
    import subprocess

    try:
        proc = subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def gpu_contention():
    """{gpu_other_processes, gpu_throttle_reasons} from nvidia-smi, each only where the driver
    answers; {} without nvidia-smi. In a container nvidia-smi may list processes by host pid, so
    'other' is every compute process on this GPU but one (this one holds a context by now)."""
    out = {}
    try:
        gpu = f"GPU-{torch.cuda.get_device_properties(torch.cuda.current_device()).uuid}"
    except (AttributeError, RuntimeError):
        return out
    apps = _nvidia_smi("--query-compute-apps=gpu_uuid,pid", "--format=csv,noheader")
    if apps is not None:
        pids = [line.split(",")[1].strip() for line in apps.splitlines() if line.split(",")[0].strip() == gpu]
        out["gpu_other_processes"] = max(0, len(pids) - 1)
    for field in ("clocks_event_reasons.active", "clocks_throttle_reasons.active"):  # new, old name
        mask = _nvidia_smi("-i", gpu, f"--query-gpu={field}", "--format=csv,noheader")
        if mask:
            try:
                bits = int(mask.split()[0], 16)
            except ValueError:
                continue
            out["gpu_throttle_reasons"] = [name for bit, name in THROTTLE_BITS.items() if bits & bit]
            break
    return out


def sample_curve(points, limit=200):
    """At most `limit` points, evenly spaced over the run, always keeping the first and the last."""
    if len(points) <= limit:
        return list(points)
    idx = sorted({round(i * (len(points) - 1) / (limit - 1)) for i in range(limit)})
    return [points[i] for i in idx]


def _json_safe(value):
    # JSON has no NaN/inf: a diverged loss becomes null rather than an unparseable file.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_summary(path, summary):
    """Atomic write: temp file in the same directory, fsync, rename. Readers never see half a file."""
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".summary-", suffix=".tmp", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_json_safe(summary), f, indent=2, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def print_summary(m):
    """Upstream's block after `---` (what the agent greps), plus the budget's clock and wall seconds."""
    print("---")
    print(f"val_bpb:          {m['val_bpb']:.6f}")
    print(f"training_seconds: {m['training_seconds']:.1f}")
    print(f"total_seconds:    {m['total_seconds']:.1f}")
    print(f"peak_vram_mb:     {m['peak_vram_mb']:.1f}")
    # No peak FLOP/s known for the device (CPU, MPS, a GPU not in GPU_TABLE): n/a rather than 0.
    mfu = m["mfu_percent"]
    print(f"mfu_percent:      {mfu:.2f}" if mfu is not None else "mfu_percent:      n/a")
    print(f"total_tokens_M:   {m['total_tokens_M']:.1f}")
    print(f"num_steps:        {m['num_steps']}")
    print(f"num_params_M:     {m['num_params_M']:.1f}")
    print(f"depth:            {m['depth']}")
    print(f"budget_clock:     {m['budget_clock']}")
    print(f"wall_training_seconds: {m['wall_training_seconds']:.1f}")


def _planned_eval_tokens():
    try:
        return read_manifest().get("eval_tokens")
    except PrepareError:
        return None


def _seed():
    """AUTORESEARCH_SEED (default 42): an integer numpy can seed with, else a one-line error."""
    raw = os.environ.get("AUTORESEARCH_SEED", "42")
    try:
        seed = int(raw)
    except ValueError:
        seed = -1
    if not 0 <= seed < 2**32:
        raise SystemExit(f"prepare.py: error: AUTORESEARCH_SEED must be an integer from 0 to 2**32 - 1, got {raw!r}")
    return seed


class Run:
    """One execution of train.py as MemoryLab sees it. Created at start-up, it reads the run's
    environment (AUTORESEARCH_RUN_TOKEN, _SEED, _SUMMARY_PATH, _FORCE_CRASH), tunes malloc, seeds
    random / numpy / torch, and prints `run_token:` and `seed:`. Used as a context manager around the
    experiment: on success it prints the summary block; on any exception (Ctrl-C included) the
    traceback and one `FAIL: <error>` line, and the process exits 1. Either way it writes the JSON
    sidecar, whose comparability fields (profile, device, data_id, budget and clock, sequence
    length, eval tokens) are known before training, so even a crash lands in its arena."""

    def __init__(self, depth, total_batch_size):
        self.t_start = time.time()
        self.token = os.environ.get("AUTORESEARCH_RUN_TOKEN") or uuid.uuid4().hex
        self.seed = _seed()
        self.summary_path = os.environ.get("AUTORESEARCH_SUMMARY_PATH")
        self.force_crash = os.environ.get("AUTORESEARCH_FORCE_CRASH", "")
        self.device_type = detect_device_type()
        self.device_name, self.device_class, self.peak_flops = device_identity(self.device_type)
        self.malloc_tuned = tune_glibc_malloc()
        self.metrics = dict(val_bpb=None, training_seconds=0.0, total_seconds=0.0, peak_vram_mb=0.0,
                            mfu_percent=None, total_tokens_M=0.0, num_steps=0, num_params_M=None, depth=depth,
                            budget_clock=BUDGET_CLOCK, wall_training_seconds=0.0, tokens_per_sec=None)
        self.settings = dict(time_budget=float(TIME_BUDGET), max_seq_len=MAX_SEQ_LEN,
                             total_batch_size=total_batch_size, eval_tokens=_planned_eval_tokens())
        self.curve, self.contention = [], {}
        self._cpu_t0 = self._wall_t0 = None
        print(f"run_token: {self.token}")
        print(f"seed: {self.seed}")
        random.seed(self.seed)
        np.random.seed(self.seed)
        torch.manual_seed(self.seed)  # also seeds CUDA. The data order is fixed by prepare.py, not the seed.

    def start_clock(self):
        """The training loop starts: checks the final evaluation's inputs (check_metric_inputs), then returns
        its BudgetClock and starts the contention measurement."""
        check_metric_inputs()
        clock = BudgetClock()
        self.contention.update(cpu_threads=torch.get_num_threads(), budget_threads=clock.threads,
                               cpu_count=os.cpu_count(), loadavg_start=round(os.getloadavg()[0], 2),
                               omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"))
        self._cpu_t0, self._wall_t0 = time.process_time(), time.time()
        return clock

    def stop_clock(self):
        """The training loop ended: how much CPU the process got while it ran (and, on CUDA, the GPU's
        other processes and clock throttling, asked right after the last step)."""
        cpu_percent = 100 * (time.process_time() - self._cpu_t0) / max(time.time() - self._wall_t0, 1e-9)
        self.contention.update(process_cpu_percent=round(cpu_percent, 1),
                               cpu_share=round(cpu_percent / (100 * self.contention["budget_threads"]), 3),
                               loadavg_end=round(os.getloadavg()[0], 2))
        if self.device_type == "cuda":
            self.contention.update(gpu_contention())

    def loss_value(self, loss):
        """The step's loss as a float; AUTORESEARCH_FORCE_CRASH ("nan", "exception") exercises the
        crash path at the first step."""
        if self.force_crash == "exception":
            raise RuntimeError("forced crash (AUTORESEARCH_FORCE_CRASH=exception)")
        return float("nan") if self.force_crash == "nan" else loss.item()

    def record_step(self, step, progress, loss, lrm, tokens_per_sec, training_seconds, wall_training_seconds):
        """One optimizer step done: a loss-curve point (with the schedule's lr multiplier: early abort reads the
        champion's schedule from it), and the counts a crash record reports."""
        self.curve.append({"step": step, "progress": round(progress, 5), "loss": round(loss, 6),
                           "lrm": round(lrm, 4), "tokens_per_sec": round(tokens_per_sec, 1)})
        self.metrics.update(num_steps=step + 1, training_seconds=training_seconds,
                            wall_training_seconds=wall_training_seconds)

    def finish(self, **metrics):
        """The experiment's results: val_bpb, num_params_M, tokens_per_sec, eval_tokens, ... A val_bpb that is
        not a finite number (the last steps diverged after the loss check) is a crash, never a success."""
        if "val_bpb" in metrics and not math.isfinite(metrics["val_bpb"]):
            raise RuntimeError(f"evaluation gave val_bpb {metrics['val_bpb']}: the model diverged")
        self.settings["eval_tokens"] = metrics.pop("eval_tokens", self.settings["eval_tokens"])
        self.metrics.update(metrics)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        status, error = "ok", None
        if exc is not None:
            print()
            if not isinstance(exc, PrepareError):  # a missing or broken preparation is one line, no traceback
                traceback.print_exception(exc_type, exc, tb)
            status, error = "crash", traceback.format_exception_only(exc_type, exc)[-1].strip()
        self.metrics.update(total_seconds=time.time() - self.t_start)
        if self.device_type == "cuda":
            self.metrics["peak_vram_mb"] = torch.cuda.max_memory_allocated() / 1024**2
        if status == "ok":
            print_summary(self.metrics)
        else:
            print(f"FAIL: {error}")
        written = self._write_sidecar(status, error)
        if status != "ok" or not written:
            sys.exit(1)
        return False

    def _write_sidecar(self, status, error):
        """The JSON sidecar at AUTORESEARCH_SUMMARY_PATH (if set); False if it could not be written."""
        if not self.summary_path:
            return True
        # Rounded like the printed block, so the log and the sidecar always agree.
        digits = {"val_bpb": 6, "mfu_percent": 2}
        summary = {k: (round(v, digits.get(k, 1)) if isinstance(v, float) else v) for k, v in self.metrics.items()}
        try:
            data_id = read_data_id()
        except Exception:  # no prepared data: the crash record says so in `error`
            data_id = None
        device_memory_mb = None
        if self.device_type == "cuda":
            device_memory_mb = round(torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
                                     / 1024**2, 1)
        summary.update(
            self.settings,
            device=f"cuda:{self.device_name}" if self.device_type == "cuda" else self.device_type,
            device_name=self.device_name, device_class=self.device_class, data_id=data_id,
            device_memory_mb=device_memory_mb, profile=PROFILE, status=status, run_token=self.token,
            seed=self.seed, contention=self.contention, malloc_tuned=self.malloc_tuned,
            loss_curve=sample_curve(self.curve))
        if error is not None:
            summary["error"] = error
        try:
            write_summary(self.summary_path, summary)
        except OSError as e:
            print(f"warning: could not write summary to {self.summary_path}: {e}", file=sys.stderr)
            return status != "ok"
        return True


# -----------------------------------------------------------------------------
# CLI


def _file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def compute_data_id(data_dir, tokenizer_dir):
    """A content hash of what the metric depends on: every train shard, the val shard (by role and
    content) and the tokenizer. Two runs with the same data_id trained and were scored on the same
    bytes and the same token ids, whatever machine prepared them."""
    manifest = read_manifest(data_dir)
    h = hashlib.sha256()
    for role, name in [*(("train", n) for n in manifest["train"]), ("val", manifest["val"])]:
        h.update(f"{role} {name} {_file_sha256(Path(data_dir) / name)}\n".encode())
    for name in ("tokenizer.pkl", "token_bytes.pt"):
        h.update(f"tokenizer {name} {_file_sha256(Path(tokenizer_dir) / name)}\n".encode())
    return f"{manifest['source']}:{h.hexdigest()[:16]}"


def read_data_id(data_dir=None):
    """The prepared data's data_id (see compute_data_id), or None for data prepared before it existed."""
    return read_manifest(data_dir).get("data_id")


def prepare(source, profile=None, cache_root=None, input_dir=None, num_shards=None, workers=8,
            vocab_size=None, tokenizer_max_chars=None):
    """Prepare data + tokenizer for (profile, source) under cache_root; remember the source."""
    profile = profile or PROFILE
    cache_root = Path(cache_root or CACHE_ROOT)
    settings = PROFILES[profile]
    if source not in SOURCES:
        raise PrepareError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    if input_dir is not None and source != "local":
        raise PrepareError("--data-dir is only used with --source local")
    if num_shards is not None and num_shards != -1 and num_shards < 1:
        raise PrepareError(f"--num-shards must be at least 1 (or -1 for all), got {num_shards}")
    if num_shards == -1 and source != "climbmix":
        num_shards = None  # all
    cache_dir = cache_dir_for(profile, source, cache_root)
    data_dir, tokenizer_dir = cache_dir / "data", cache_dir / "tokenizer"
    print(f"prepare: profile={profile} source={source} cache={cache_dir}", flush=True)
    t0 = time.time()
    if source == "climbmix":
        manifest = download_climbmix(data_dir, num_shards or settings["num_shards"], workers=workers)
    elif source == "python-corpus":
        manifest = build_python_corpus(data_dir, max_train_shards=num_shards)
    else:
        if input_dir is None:
            raise PrepareError("--source local needs --data-dir DIR (a directory of .parquet/.txt/.jsonl)")
        manifest = build_local(input_dir, data_dir, max_train_shards=num_shards)
    print(f"data: {len(manifest['train'])} train shards ({manifest['train_docs']} docs), val "
          f"{manifest['val']} ({manifest['val_docs']} docs) in {time.time() - t0:.1f}s", flush=True)
    train_tokenizer(data_dir, tokenizer_dir, vocab_size or settings["vocab_size"],
                    tokenizer_max_chars or settings["tokenizer_max_chars"])
    manifest = read_manifest(data_dir)
    manifest["data_id"] = compute_data_id(data_dir, tokenizer_dir)
    manifest["eval_tokens"] = count_eval_tokens(Tokenizer.from_directory(tokenizer_dir), data_dir, profile)
    if not manifest["eval_tokens"]:
        raise PrepareError(f"the val split holds fewer tokens than one eval batch of the {profile} profile "
                           f"({settings['eval_batch_size']} x {settings['max_seq_len'] + 1}): use more data "
                           "(--source climbmix, or a bigger --source local)")
    _atomic_write_json(data_dir / "manifest.json", manifest)
    print(f"data_id: {manifest['data_id']}, eval_tokens: {manifest['eval_tokens']}", flush=True)
    active = _active_sources(cache_root)
    active[profile] = source
    cache_root.mkdir(parents=True, exist_ok=True)
    _atomic_write_json(cache_root / "active.json", active)
    print(f"done in {time.time() - t0:.1f}s: train.py (profile {profile}) will use {cache_dir}", flush=True)
    return cache_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description="Prepare data and tokenizer for autoresearch.")
    parser.add_argument("--source", choices=SOURCES, default=None,
                        help="data source (default: climbmix for the gpu profile, python-corpus for cpu; "
                             "or $AUTORESEARCH_SOURCE)")
    parser.add_argument("--data-dir", default=None, help="input directory for --source local")
    parser.add_argument("--num-shards", type=int, default=None,
                        help="climbmix: train shards to download (-1 = all); others: cap on train shards")
    parser.add_argument("--download-workers", type=int, default=8, help="parallel downloads (climbmix)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help=f"constants profile (default: {PROFILE}: $AUTORESEARCH_PROFILE or the device)")
    parser.add_argument("--print-profile", action="store_true",
                        help="print {profile, device_type, time_budget, budget_clock} as one JSON line and exit "
                             "(builds nothing; what train.py would use)")
    args = parser.parse_args(argv)
    if args.print_profile:
        profile = args.profile or PROFILE
        device_type = detect_device_type()
        print(json.dumps({"profile": profile, "device_type": device_type,
                          "time_budget": _time_budget(profile),  # AUTORESEARCH_TIME_BUDGET included
                          "budget_clock": budget_clock_unit(profile, device_type)}))
        return 0
    profile = args.profile or PROFILE
    source = args.source or os.environ.get("AUTORESEARCH_SOURCE") or DEFAULT_SOURCE[profile]
    try:
        prepare(source, profile, input_dir=args.data_dir, num_shards=args.num_shards,
                workers=args.download_workers)
    except PrepareError as e:
        print(f"prepare.py: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # disk full, permissions, ...
        print(f"prepare.py: error: {e}; fix the cause and re-run `python prepare.py`", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("prepare.py: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
