"""Tests for memorylab_core.evidence.logparse: summary blocks, tokens, sidecars, crash extraction."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from memorylab_core.evidence import logparse
from memorylab_core.evidence.logparse import (
    LogInputError,
    classify_error,
    extract_error,
    find_run_token,
    find_seed,
    load_sidecar,
    parse_summary_block,
    read_text_lenient,
)

SUMMARY = """---
val_bpb:          0.997900
training_seconds: 300.1
total_seconds:    325.9
peak_vram_mb:     45060.2
mfu_percent:      39.80
total_tokens_M:   499.6
num_steps:        953
num_params_M:     50.3
depth:            8
"""

CUDA_OOM = """step 00010 (3.3%) | loss: 7.123456 | lrm: 1.00 | dt: 310ms
Traceback (most recent call last):
  File "/work/train.py", line 612, in <module>
    loss = model(x, y)
           ^^^^^^^^^^^
  File "/venv/lib/python3.11/site-packages/torch/nn/modules/module.py", line 1751, in _wrapped_call_impl
    return self._call_impl(*args, **kwargs)
  File "/work/train.py", line 301, in forward
    logits = logits.float()
             ^^^^^^^^^^^^^^
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 4.00 GiB. GPU 0 has a total capacity \
of 79.19 GiB of which 1.02 GiB is free. Of the allocated memory 74.1 GiB is allocated by PyTorch.
"""

NAN_FAST_FAIL = """step 00120 (12.0%) | loss: 3.200000 | lrm: 1.00
step 00121 (12.1%) | loss: nan | lrm: 1.00
FAIL: loss is nan at step 121, aborting
"""

SYNTAX_CARET = """  File "/work/train.py", line 88
    x = (1 +
        ^
SyntaxError: '(' was never closed
"""

IMPORT_ERR = """Traceback (most recent call last):
  File "/work/train.py", line 12, in <module>
    import flash_attn_shapes
ModuleNotFoundError: No module named 'flash_attn_shapes'
"""

SHAPE_ERR = """Traceback (most recent call last):
  File "/work/train.py", line 400, in <module>
    y = self.proj(x)
  File "/venv/lib/python3.11/site-packages/torch/nn/modules/linear.py", line 125, in forward
    return F.linear(input, self.weight, self.bias)
RuntimeError: mat1 and mat2 shapes cannot be multiplied (4096x512 and 768x512)
"""

CHAINED = """Traceback (most recent call last):
  File "/work/train.py", line 50, in load
    data = read_shard(path)
FileNotFoundError: [Errno 2] No such file or directory: 'shard_00001.parquet'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/work/train.py", line 60, in <module>
    load()
  File "/work/train.py", line 53, in load
    raise RuntimeError("could not load data; run prepare.py first")
RuntimeError: could not load data; run prepare.py first
"""

KEYBOARD = """step 00200 (20.0%) | loss: 3.1
Traceback (most recent call last):
  File "/work/train.py", line 700, in <module>
    torch.cuda.synchronize()
KeyboardInterrupt
"""

MULTILINE_MSG = """Traceback (most recent call last):
  File "/work/train.py", line 20, in <module>
    model.load_state_dict(sd)
RuntimeError: Error(s) in loading state_dict for GPT:
\tsize mismatch for wte.weight: copying a param with shape torch.Size([8192, 512]) from checkpoint.
"""


# --------------------------------------------------------------------------- summary block


def test_summary_block_parses_known_keys_with_types() -> None:
    metrics = parse_summary_block("startup\n" + SUMMARY)
    assert metrics["val_bpb"] == pytest.approx(0.9979)
    assert metrics["num_steps"] == 953 and isinstance(metrics["num_steps"], int)
    assert metrics["depth"] == 8 and isinstance(metrics["depth"], int)
    assert isinstance(metrics["total_tokens_M"], float)
    assert metrics["memory_gb"] == pytest.approx(45060.2 / 1024)


def test_summary_block_last_block_wins() -> None:
    first = SUMMARY.replace("0.997900", "1.100000")
    text = first + "more training\n" + SUMMARY.replace("0.997900", "0.950000")
    assert parse_summary_block(text)["val_bpb"] == pytest.approx(0.95)


def test_summary_block_tolerates_spacing_extra_keys_and_stray_separator() -> None:
    text = "---\n  val_bpb :0.9\r\nnum_steps:   12  \nextra_key: hello\nnew_metric: 4\n\nafter: 1\n---\n"
    metrics = parse_summary_block(text)
    assert metrics["val_bpb"] == pytest.approx(0.9)
    assert metrics["num_steps"] == 12
    assert metrics["extra_key"] == "hello" and metrics["new_metric"] == 4
    assert "after" not in metrics and "memory_gb" not in metrics


def test_summary_block_missing_or_nan() -> None:
    assert parse_summary_block("no block here\nval_bpb: 1.0\n") == {}
    assert parse_summary_block("") == {}
    assert parse_summary_block("---\nval_bpb: nan\n")["val_bpb"] is None


def test_summary_block_after_carriage_return_progress() -> None:
    text = "step 1 | loss 3.0\rstep 2 | loss 2.9\r\n" + SUMMARY
    assert parse_summary_block(text)["num_steps"] == 953


# --------------------------------------------------------------------------- token / seed


def test_run_token_and_seed_last_wins() -> None:
    text = "run_token: abc123\nseed: 42\n...\nrun_token: DEADbeef01\nseed: 7\n"
    assert find_run_token(text) == "DEADbeef01"
    assert find_seed(text) == 7


def test_run_token_and_seed_absent() -> None:
    assert find_run_token("my run_token is x\nrun_token:\n") is None
    assert find_seed("seed: abc\nseeds: 4\n") is None


# --------------------------------------------------------------------------- sidecar


def test_load_sidecar_ok_and_nan_becomes_none(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text('{"val_bpb": NaN, "status": "crash", "loss_curve": []}')
    data = load_sidecar(path)
    assert data == {"val_bpb": None, "status": "crash", "loss_curve": []}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_load_sidecar_errors(tmp_path: Path, content: str | bytes | None, message: str) -> None:
    path = tmp_path / "summary.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(LogInputError, match=message) as info:
        load_sidecar(path)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_load_sidecar_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(LogInputError):
        load_sidecar(tmp_path)


# --------------------------------------------------------------------------- error extraction


def test_extract_cuda_oom() -> None:
    err = extract_error(CUDA_OOM, "run.log")
    assert err["summary"].startswith("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 4.00 GiB")
    assert err["kind"] == "oom" and err["source"] == "run.log"
    assert err["tail"].endswith("74.1 GiB is allocated by PyTorch.")


def test_extract_nan_fast_fail_uses_last_line() -> None:
    err = extract_error(NAN_FAST_FAIL, "run.log")
    assert err["summary"] == "FAIL: loss is nan at step 121, aborting"
    assert err["kind"] == "nan"


def test_extract_syntax_error_caret_layout() -> None:
    err = extract_error(SYNTAX_CARET, "run.log")
    assert err["summary"] == "SyntaxError: '(' was never closed"
    assert err["kind"] == "syntax"
    with_header = "Traceback (most recent call last):\n" + SYNTAX_CARET.replace(
        "SyntaxError", "IndentationError"
    )
    assert classify_error(with_header) == "syntax"


def test_extract_import_error_beats_word_in_module_name() -> None:
    err = extract_error(IMPORT_ERR, "run.log")
    assert err["summary"] == "ModuleNotFoundError: No module named 'flash_attn_shapes'"
    assert err["kind"] == "import"


def test_extract_shape_mismatch() -> None:
    err = extract_error(SHAPE_ERR, "run.log")
    assert err["summary"].startswith("RuntimeError: mat1 and mat2 shapes cannot be multiplied")
    assert err["kind"] == "shape"


def test_extract_chained_exceptions_takes_final_one() -> None:
    err = extract_error(CHAINED, "run.log")
    assert err["summary"] == "RuntimeError: could not load data; run prepare.py first"
    assert err["kind"] == "runtime"


def test_extract_keyboard_interrupt() -> None:
    err = extract_error(KEYBOARD, "run.log")
    assert err["summary"] == "KeyboardInterrupt"
    assert err["kind"] == "keyboard_interrupt"


def test_extract_multiline_message_joins_continuation() -> None:
    err = extract_error(MULTILINE_MSG, "run.log")
    assert err["summary"].startswith("RuntimeError: Error(s) in loading state_dict for GPT: size mismatch")
    assert err["kind"] == "shape"


def test_extract_rank_prefixed_traceback() -> None:
    text = "\n".join(f"[rank0]: {line}" for line in CUDA_OOM.splitlines())
    assert extract_error(text, "run.log")["summary"].startswith("torch.OutOfMemoryError")


def test_extract_fallback_last_nonempty_line_and_blank() -> None:
    err = extract_error("starting\nsomething odd happened\n\n   \n", "cli")
    assert err["summary"] == "something odd happened"
    assert err["source"] == "cli"
    blank = extract_error("", "sidecar")
    assert blank["summary"] == "(no error text)" and blank["tail"] == "" and blank["kind"] is None


def test_tail_is_last_40_lines_and_capped() -> None:
    text = "\n".join(f"line {i}" for i in range(100)) + "\n\n"
    tail = extract_error(text, "run.log")["tail"].splitlines()
    assert len(tail) == logparse.TAIL_LINES and tail[-1] == "line 99"
    huge = extract_error("x" * 100_000, "run.log")
    assert len(huge["tail"]) <= logparse.MAX_TAIL_CHARS
    assert len(huge["summary"]) <= logparse.MAX_SUMMARY_CHARS


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    "text",
    [
        "RuntimeError: no room left in the buffer",
        "ValueError: zoom level out of range",
        "RuntimeError: bloom filter failed",
        "ValueError: bad oom_score_adj",
    ],
)
def test_oom_needs_whole_words(text: str) -> None:
    assert classify_error(text) == "runtime"


@pytest.mark.parametrize(
    "text",
    [
        "RuntimeError: CUDA error: out of memory",
        "torch.cuda.OutOfMemoryError: boom",
        "worker died: OOM",
        "python train.py\nKilled\n",
        "bash: line 1: 4242 Killed    python train.py",
        "process exited with signal 9 (SIGKILL); memory limit reached",
        "MemoryError",
    ],
)
def test_oom_recognised(text: str) -> None:
    assert classify_error(text) == "oom"


@pytest.mark.parametrize("text", ["KeyError: 'finance'", "ValueError: user nancy not found"])
def test_nan_needs_whole_words(text: str) -> None:
    assert classify_error(text) == "runtime"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("loss is nan", "nan"),
        ("AssertionError: loss is NaN", "nan"),
        ("inf loss detected", "nan"),
        ("training diverged at step 5", "nan"),
        ("FAIL: loss explosion", "nan"),
        ("subprocess.TimeoutExpired: Command 'python train.py' timed out after 600 seconds", "timeout"),
        ("error: time budget exceeded", "timeout"),
        ("RuntimeError: The size of tensor a (3) must match the size of tensor b (4)", "shape"),
        ("size mismatch for lm_head.weight", "shape"),
        ("AssertionError", "assertion"),
        ("RuntimeError: CUDA error: device-side assert triggered", "assertion"),
        ("ImportError: cannot import name 'foo'", "import"),
        ("TabError: inconsistent use of tabs", "syntax"),
        ("Segmentation fault (core dumped)", "runtime"),
        ("all good, val_bpb 0.99", None),
        ("   \n", None),
    ],
)
def test_classify_kinds(text: str, kind: str | None) -> None:
    assert classify_error(text) == kind


def test_classify_ignores_quoted_source_lines() -> None:
    text = """Traceback (most recent call last):
  File "/work/train.py", line 9, in <module>
    best = float("nan") if x.shape[0] else timeout
ZeroDivisionError: division by zero
"""
    assert classify_error(text) == "runtime"


def test_classify_prefers_summary_over_tail() -> None:
    text = "warning: loss is nan at step 3 (recovered)\n" + IMPORT_ERR
    assert classify_error(text) == "import"


def test_a_signal_memorylab_did_not_send_is_the_machines_fault() -> None:
    assert classify_error("RuntimeError: training was killed by SIGKILL (exit -9)") == "infra"
    assert classify_error("RuntimeError: training was killed by SIGTERM (exit -15)") == "infra"
    assert classify_error("TimeoutError: training exceeded the wall-clock limit of 300 s; "
                          "memorylab killed its process group") == "timeout"


# --------------------------------------------------------------------------- reading files


def test_read_text_lenient_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    path.write_bytes(b"run_token: ab12\nbad bytes \xff\xfe\xc3 here\n" + CUDA_OOM.encode())
    text = read_text_lenient(path)
    assert "\ufffd" in text and find_run_token(text) == "ab12"
    assert extract_error(text, "run.log")["kind"] == "oom"


def test_read_text_lenient_missing(tmp_path: Path) -> None:
    with pytest.raises(LogInputError, match="cannot read log"):
        read_text_lenient(tmp_path / "nope.log")


def test_read_text_lenient_big_log_keeps_head_and_tail(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    filler = (b"step 00001 (0.1%) | loss: 3.141592 | lrm: 1.00 | dt: 310ms | tok/sec: 1,234,567\n") * 10_000
    with open(path, "wb") as fh:
        fh.write(b"run_token: cafe01\nseed: 1337\n")
        for _ in range(66):  # ~53 MB
            fh.write(filler)
        fh.write(SUMMARY.encode() + CUDA_OOM.encode())
    assert path.stat().st_size > 50 * 1024 * 1024
    start = time.perf_counter()
    text = read_text_lenient(path)
    err = extract_error(text, "run.log")
    metrics = parse_summary_block(text)
    elapsed = time.perf_counter() - start
    assert len(text) <= logparse.MAX_LOG_BYTES + 100
    assert "bytes of log omitted]" in text
    assert find_run_token(text) == "cafe01" and find_seed(text) == 1337
    assert metrics["num_steps"] == 953
    assert err["kind"] == "oom" and err["summary"].startswith("torch.OutOfMemoryError")
    assert elapsed < 5.0


def test_read_text_lenient_small_cap_cuts_at_lines(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    path.write_bytes(b"".join(f"line {i:05d}\n".encode() for i in range(5000)))
    text = read_text_lenient(path, max_bytes=4096)
    lines = text.splitlines()
    assert lines[0] == "line 00000" and lines[-1] == "line 04999"
    body = [line for line in lines if not line.startswith("[memorylab:")]
    assert len(body) == len(lines) - 1
    assert all(len(line) == 10 and line.startswith("line ") for line in body)


def test_sidecar_roundtrip_with_loss_curve(tmp_path: Path) -> None:
    payload = {
        "val_bpb": 0.99,
        "status": "ok",
        "run_token": "ab",
        "seed": 3,
        "loss_curve": [{"step": 1, "progress": 0.1, "loss": 3.0, "tokens_per_sec": 1e6}],
    }
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(payload))
    assert load_sidecar(path) == payload
