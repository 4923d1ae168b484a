"""Tests for train.py: model pieces, optimizer, schedules, summary sidecar, and end-to-end CPU runs.

The unit tests use tiny random-token models and take a few seconds. The end-to-end tests run
train.py as a subprocess on the cpu profile with a shortened time budget; they need prepared data
(the `prepared_cache` fixture in conftest.py).
"""

import ast
import json
import math
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch

import train  # the repo root is on sys.path via conftest.py

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    # The unit tests use tiny tensors: a second thread only adds synchronisation, and on a busy machine
    # OpenMP's spinning threads stall each other (a 1 s test took 37 s). Restored afterwards.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(**overrides):
    cfg = dict(sequence_len=32, vocab_size=64, n_layer=4, n_head=2, n_embd=64, window_pattern="SSSL")
    cfg.update(overrides)
    return train.GPTConfig(**cfg)


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    model = train.GPT(tiny_config(**overrides))
    model.init_weights()
    return model


def randomize_zero_inits(model):
    # c_proj and the gates start at zero, which would hide attention from the output; perturb them so
    # that information-flow tests see every path.
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2 and p.abs().max() == 0:
                p.normal_(std=0.05)


# ---------------------------------------------------------------------------------------------
# Model


def test_forward_backward_shapes_and_per_token_loss():
    model = tiny_model()
    B, T, V = 3, 32, 64
    x = torch.randint(0, V, (B, T))
    y = torch.randint(0, V, (B, T))
    logits = model(x)
    assert logits.shape == (B, T, V)
    loss = model(x, y)
    assert loss.ndim == 0 and math.isfinite(loss.item())
    # At init lm_head is ~0, so predictions are ~uniform: loss ~ ln(V).
    assert abs(loss.item() - math.log(V)) < 0.1
    per_token = model(x, y, reduction="none")
    assert per_token.shape == (B * T,)
    assert torch.allclose(per_token.mean(), loss, atol=1e-6)
    # ignore_index=-1 positions contribute exactly zero.
    y_masked = y.clone()
    y_masked[:, :5] = -1
    assert (model(x, y_masked, reduction="none").view(B, T)[:, :5] == 0).all()

    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


def test_value_embeddings_on_alternating_layers_including_last():
    model = tiny_model(n_layer=5)
    assert sorted(int(k) for k in model.value_embeds) == [0, 2, 4]
    assert [b.attn.ve_gate is not None for b in model.transformer.h] == [True, False, True, False, True]
    model = tiny_model(n_layer=4)
    assert sorted(int(k) for k in model.value_embeds) == [1, 3]


def test_init_scalars():
    model = tiny_model()
    assert torch.all(model.resid_lambdas == 1.0)
    assert torch.allclose(model.x0_lambdas, torch.full_like(model.x0_lambdas, 0.1))
    assert model.lm_head.weight is not model.transformer.wte.weight  # untied


def test_logit_softcap_bounds_logits():
    model = tiny_model()
    with torch.no_grad():
        model.lm_head.weight.mul_(1e5)  # raw logits in the thousands
    logits = model(torch.randint(0, 64, (2, 32)))
    assert logits.abs().max().item() <= 15.0
    assert logits.abs().max().item() > 14.0  # and the cap is actually reached


def test_window_sizes_pattern_and_last_layer_full():
    model = tiny_model(n_layer=6, window_pattern="SSSL")
    T = model.config.sequence_len
    assert model.window_sizes == [T // 2, T // 2, T // 2, T, T // 2, T]
    model = tiny_model(n_layer=3, window_pattern="S")
    assert model.window_sizes == [T // 2, T // 2, T]


def test_window_mask_definition():
    m = train.window_mask(10, 3, "cpu")
    for i in range(10):
        for j in range(10):
            assert m[i, j].item() == (0 <= i - j <= 3)


@pytest.mark.parametrize("window", [4, 31])
def test_attention_cannot_see_beyond_its_window(window):
    torch.manual_seed(0)
    cfg = tiny_config(n_layer=2)  # layer 0 has no value embedding
    attn = train.CausalSelfAttention(cfg, layer_idx=0)
    T = cfg.sequence_len
    model = train.GPT(cfg)
    cos_sin = model.cos[:, :T], model.sin[:, :T]
    mask = None if window >= T - 1 else train.window_mask(T, window, "cpu")
    x = torch.randn(1, T, cfg.n_embd)
    base = attn(x, None, cos_sin, mask)
    p = 5
    x2 = x.clone()
    x2[:, p] += torch.randn(cfg.n_embd)
    changed = (attn(x2, None, cos_sin, mask) - base).abs().amax(dim=-1)[0] > 1e-6
    for q in range(T):
        assert changed[q].item() == (0 <= q - p <= window), (q, p, window)


def test_model_is_causal_and_last_layer_sees_whole_context():
    model = tiny_model(n_layer=2, window_pattern="S")  # layer 0: window 16, layer 1 (last): full
    randomize_zero_inits(model)
    x = torch.randint(0, 64, (1, 32))
    base = model(x)
    x2 = x.clone()
    x2[0, 0] = (x[0, 0] + 1) % 64
    diff = (model(x2) - base).abs().amax(dim=-1)[0]
    # Position 31 is 31 tokens after position 0 (> window 16): it still sees it through the full last layer.
    assert (diff > 1e-6).all()
    x3 = x.clone()
    x3[0, 20] = (x[0, 20] + 1) % 64
    diff = (model(x3) - base).abs().amax(dim=-1)[0]
    assert (diff[:20] < 1e-6).all()  # causal: the past does not see the future
    assert (diff[20:] > 1e-6).all()


@pytest.mark.parametrize("window", [3, 20])
def test_flex_attention_path_matches_reference_attention(window):
    # The CUDA path (FlexAttention + a sliding-window BlockMask), run eagerly on CPU (forward only:
    # flex has no CPU backward), against explicit softmax attention with the window written out.
    torch.manual_seed(0)
    B, H, T, D = 2, 2, 48, 16
    q, k, v = (torch.randn(B, H, T, D) for _ in range(3))
    block_mask = train.window_block_mask(T, window, "cpu")
    with torch.no_grad():
        flex = train.flex_attention(q, k, v, block_mask=block_mask)
    scores = (q @ k.transpose(-1, -2)) / D**0.5
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    allowed = (j <= i) & (i - j <= window)  # causal, and at most `window` keys back
    reference = scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ v
    assert torch.allclose(flex, reference, atol=1e-5)
    dense = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=train.window_mask(T, window, "cpu"))
    assert torch.allclose(flex, dense, atol=1e-5)  # and the CPU path computes the same thing


def test_model_with_flex_masks_equals_model_with_dense_masks():
    model = tiny_model(n_layer=4, window_pattern="SSSL")
    randomize_zero_inits(model)
    x = torch.randint(0, 64, (2, 32))
    with torch.no_grad():
        dense = model(x)
        masks = model.attention_masks(32, x.device, flex=True)  # what CUDA uses
        assert all(m is None or not isinstance(m, torch.Tensor) for m in masks.values())
        model._attn_masks[(32, "cpu", False)] = masks  # make the CPU forward use them
        flex = model(x)
    assert torch.allclose(dense, flex, atol=1e-5)


def test_masks_are_built_once_per_sequence_length():
    model = tiny_model()
    a = model.attention_masks(32, "cpu")
    assert model.attention_masks(32, "cpu") is a and model.attention_masks(16, "cpu") is not a
    # One entry whatever the device string: train() builds with torch.device("cuda"), forward reads
    # with the tensor's "cuda:0" (a miss there was a graph break in the compiled forward).
    assert model.attention_masks(32, torch.device("cpu", 0)) is a
    assert a[32] is None  # the full window is plain causal attention: no mask (SDPA's flash path)


def test_flops_estimate_matches_upstream_formula():
    model = tiny_model()
    cfg = model.config
    matmul_params = model.num_params() - model.transformer.wte.weight.numel() - sum(
        v.weight.numel() for v in model.value_embeds.values()) - 2 * cfg.n_layer
    attn = sum(12 * cfg.n_head * (cfg.n_embd // cfg.n_head) * w for w in model.window_sizes)
    assert model.estimate_flops_per_token() == 6 * matmul_params + attn


# ---------------------------------------------------------------------------------------------
# Optimizer


@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (4, 96, 48)])
def test_polar_express_is_near_orthogonal(shape):
    torch.manual_seed(0)
    G = torch.randn(*shape)
    X = train.polar_express(G)
    assert X.shape == G.shape and X.dtype == torch.float32
    s = torch.linalg.svdvals(X)
    # Polar express does not converge to exactly 1; it lands every singular value in a band around it.
    assert s.min().item() > 0.75 and s.max().item() < 1.25
    U, _, Vh = torch.linalg.svd(G, full_matrices=False)
    polar = U @ Vh
    assert ((X - polar).norm() / polar.norm()).item() < 0.15


def test_polar_express_coefficients_are_upstreams():
    assert len(train.POLAR_EXPRESS_COEFFS) == 5
    assert train.POLAR_EXPRESS_COEFFS[0] == (8.156554524902461, -22.48329292557795, 15.878769915207462)
    assert train.POLAR_EXPRESS_COEFFS[-1] == (2.3465413258596377, -1.7097828382687081, 0.42323551169305323)


def test_cautious_weight_decay_only_where_update_agrees_with_param():
    # Gradient diag(1, -1) orthogonalises to diag(1, -1); params all ones. Decay applies where
    # update * param >= 0: (0,0) (same sign) and the zero off-diagonals, but not (1,1).
    def run(wd):
        params = torch.ones(1, 2, 2)
        grads = torch.tensor([[[1.0, 0.0], [0.0, -1.0]]])
        train.muon_step(grads, params, torch.zeros(1, 2, 2), torch.zeros(1, 2, 1),
                        0.9, 0.01, wd, 0.95, 5, -1)
        return params

    decay = run(0.0) - run(1.0)
    assert torch.allclose(decay, 0.01 * torch.tensor([[[1.0, 1.0], [1.0, 0.0]]]), atol=1e-6)


def test_optimizer_groups_cover_every_parameter_once():
    model = tiny_model()
    opt = train.setup_optimizer(model)
    seen = [p for g in opt.param_groups for p in g["params"]]
    assert len(seen) == len({id(p) for p in seen}) == len(list(model.parameters()))
    kinds = {id(p): g["kind"] for g in opt.param_groups for p in g["params"]}
    assert kinds[id(model.lm_head.weight)] == "adamw"
    assert kinds[id(model.transformer.wte.weight)] == "adamw"
    assert kinds[id(model.resid_lambdas)] == "adamw"
    assert all(kinds[id(p)] == "muon" for p in model.transformer.h.parameters())
    for g in opt.param_groups:
        if g["kind"] == "muon":
            assert len({tuple(p.shape) for p in g["params"]}) == 1
    # AdamW lrs for the embeddings scale with 1/sqrt(model_dim / 768).
    lm = next(g for g in opt.param_groups if g["params"][0] is model.lm_head.weight)
    assert lm["lr"] == pytest.approx(train.UNEMBEDDING_LR * (64 / 768) ** -0.5)


def test_optimizer_overfits_a_fixed_batch():
    model = tiny_model(seed=1)
    opt = train.setup_optimizer(model)
    torch.manual_seed(1)
    x = torch.randint(0, 64, (4, 32))
    y = torch.randint(0, 64, (4, 32))
    losses = []
    for step in range(30):
        for g in opt.param_groups:
            if g["kind"] == "muon":
                g["momentum"] = train.get_muon_momentum(step)
        loss = model(x, y)
        loss.backward()
        opt.step()
        model.zero_grad(set_to_none=True)
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0], losses


# ---------------------------------------------------------------------------------------------
# Schedules and summary helpers


def test_schedules():
    assert train.get_lr_multiplier(0.0) == 1.0
    assert train.get_lr_multiplier(1.0 - train.WARMDOWN_RATIO - 1e-9) == 1.0
    assert train.get_lr_multiplier(1.0) == pytest.approx(train.FINAL_LR_FRAC)
    mid = 1.0 - train.WARMDOWN_RATIO / 2
    assert train.get_lr_multiplier(mid) == pytest.approx(0.5 * (1 + train.FINAL_LR_FRAC))
    assert train.get_muon_momentum(0) == pytest.approx(0.85)
    assert train.get_muon_momentum(150) == pytest.approx(0.90)
    assert train.get_muon_momentum(10_000) == pytest.approx(0.95)
    assert train.get_weight_decay(0.0) == train.WEIGHT_DECAY
    assert train.get_weight_decay(1.0) == 0.0


# ---------------------------------------------------------------------------------------------
# End to end: train.py as a subprocess on the cpu profile

SUMMARY_KEYS = ["val_bpb", "training_seconds", "total_seconds", "peak_vram_mb", "mfu_percent",
                "total_tokens_M", "num_steps", "num_params_M", "depth", "budget_clock", "wall_training_seconds"]
# Known before training, so a crash's sidecar lands in the same arena as its successful runs.
COMPARABILITY_KEYS = ["profile", "device", "device_class", "data_id", "time_budget", "budget_clock", "max_seq_len",
                      "eval_tokens"]


def run_train(cache, tmp_path, **env):
    full_env = dict(os.environ)
    full_env.update(
        AUTORESEARCH_CACHE=str(cache),
        AUTORESEARCH_PROFILE="cpu",
        AUTORESEARCH_SUMMARY_PATH=str(tmp_path / "summary.json"),
        AUTORESEARCH_RUN_TOKEN=uuid.uuid4().hex,
        PYTHONUNBUFFERED="1",
    )
    full_env.update(env)
    proc = subprocess.run([sys.executable, str(REPO / "train.py")], cwd=tmp_path, env=full_env,
                          capture_output=True, text=True, timeout=300)
    summary_file = tmp_path / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else None
    return proc, summary, full_env["AUTORESEARCH_RUN_TOKEN"]


def parse_summary_block(stdout):
    block = stdout.split("\n---\n", 1)[1]
    values = {}
    for line in block.strip().splitlines():
        m = re.fullmatch(r"(\w+):\s+(\S+)", line)
        assert m, line
        raw = m.group(2)
        values[m.group(1)] = None if raw == "n/a" else raw if m.group(1) == "budget_clock" else float(raw)
    return values


@pytest.fixture
def cpu_hog():
    """Two busy-looping processes (this machine's cores, and more): the training process gets at most
    about half of its CPU capacity while they run."""
    hog = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    yield
    for proc in hog:
        proc.kill()
        proc.wait()


def manifest_of(cache):
    return json.loads((cache / "cpu-local" / "data" / "manifest.json").read_text())


def test_smoke_run_beside_a_cpu_hog_counts_cpu_seconds(prepared_cache, tmp_path, cpu_hog):
    budget = 3.0
    proc, summary, token = run_train(prepared_cache, tmp_path, AUTORESEARCH_TIME_BUDGET=str(budget),
                                     AUTORESEARCH_SEED="7")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"run_token: {token}" in proc.stdout.splitlines()
    assert "seed: 7" in proc.stdout.splitlines()
    printed = parse_summary_block(proc.stdout)
    assert list(printed) == SUMMARY_KEYS
    assert summary["status"] == "ok" and summary["run_token"] == token and summary["seed"] == 7
    assert summary["profile"] == "cpu" and summary["device"] == "cpu" and summary["device_memory_mb"] is None
    for key in SUMMARY_KEYS:
        assert summary[key] == (pytest.approx(printed[key], abs=1e-6) if key != "budget_clock" else printed[key]), key
    assert 0 < summary["val_bpb"] < 20
    # No peak FLOP/s for a CPU: MFU is omitted (n/a, null), never 0.
    assert summary["num_steps"] >= 2 and summary["peak_vram_mb"] == 0.0 and summary["mfu_percent"] is None
    # The budget is CPU seconds per thread: the loop stopped once it had counted the budget (plus at
    # most one step), while the hog stretched the wall time it took.
    step_cost = summary["training_seconds"] / (summary["num_steps"] - 1)
    assert summary["budget_clock"] == "cpu"
    assert budget <= summary["training_seconds"] <= budget + step_cost + 0.1
    c = summary["contention"]
    assert c["cpu_share"] < 0.75
    assert summary["wall_training_seconds"] >= 1.3 * summary["training_seconds"]
    # Comparability fields (MemoryLab reads these names).
    manifest = manifest_of(prepared_cache)
    assert summary["data_id"] == manifest["data_id"] and summary["data_id"].startswith("local:")
    assert summary["time_budget"] == budget and summary["max_seq_len"] == 256
    assert summary["eval_tokens"] == manifest["eval_tokens"] > 0 and summary["eval_tokens"] % (8 * 256) == 0
    assert summary["device_name"] == "cpu" and summary["device_class"] == "cpu" and summary["tokens_per_sec"] > 0
    assert set(c) == {"cpu_threads", "budget_threads", "process_cpu_percent", "cpu_share", "loadavg_start",
                      "loadavg_end", "cpu_count", "omp_wait_policy"}
    assert c["cpu_threads"] >= 1 and c["cpu_count"] >= 1 and c["process_cpu_percent"] > 0
    assert c["omp_wait_policy"] == "PASSIVE" and 1 <= c["budget_threads"] <= c["cpu_threads"]
    assert c["cpu_share"] == pytest.approx(c["process_cpu_percent"] / (100 * c["budget_threads"]), abs=2e-3)
    curve = summary["loss_curve"]
    assert 1 <= len(curve) <= 200 and len(curve) == summary["num_steps"]
    assert set(curve[0]) == {"step", "progress", "loss", "lrm", "tokens_per_sec"}
    assert curve[0]["lrm"] == 1.0 and 0.0 <= curve[-1]["lrm"] < 1.0  # no warmup; the warmdown has begun by the end
    assert "error" not in summary


@pytest.mark.parametrize("mode,message", [("nan", "diverged"), ("exception", "forced crash")])
def test_forced_crash_writes_crash_sidecar(prepared_cache, tmp_path, mode, message):
    proc, summary, token = run_train(prepared_cache, tmp_path, AUTORESEARCH_FORCE_CRASH=mode)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr
    assert "\n---\n" not in proc.stdout  # no success block on a crash
    assert summary["status"] == "crash" and summary["run_token"] == token
    assert summary["error"].startswith("RuntimeError:") and message in summary["error"]
    assert summary["val_bpb"] is None
    assert summary["num_params_M"] > 0  # what was known before the crash is still reported
    missing = [key for key in COMPARABILITY_KEYS if summary.get(key) in (None, "")]
    assert not missing, missing
    assert summary["eval_tokens"] == manifest_of(prepared_cache)["eval_tokens"] and summary["budget_clock"] == "cpu"


def test_start_up_failures_are_one_line_and_leave_no_stale_sidecar(prepared_cache, tmp_path):
    """A bad seed or profile fails before training in one line; a sidecar an earlier run left is removed first,
    so `memorylab log` can never read it as this run's; missing prepared data is one FAIL line, no traceback."""
    for env, words in (({"AUTORESEARCH_SEED": "abc"}, "AUTORESEARCH_SEED must be an integer"),
                       ({"AUTORESEARCH_PROFILE": "tpu"}, "AUTORESEARCH_PROFILE must be")):
        (tmp_path / "summary.json").write_text('{"status": "ok", "val_bpb": 1.0, "run_token": "old"}')
        proc, summary, _ = run_train(prepared_cache, tmp_path, **env)
        assert proc.returncode == 1 and words in proc.stdout + proc.stderr, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr and summary is None
    proc, summary, _ = run_train(tmp_path / "empty-cache", tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-2000:]
    assert "FAIL: prepare.PrepareError" in proc.stdout and summary["status"] == "crash"
    damaged = tmp_path / "damaged-cache"
    shutil.copytree(prepared_cache, damaged)
    table = next(damaged.glob("*/tokenizer/token_bytes.pt"))
    table.write_bytes(table.read_bytes()[:100])  # the eval's byte table is cut off: fail before training
    proc, summary, _ = run_train(damaged, tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-2000:]
    assert "token_bytes.pt is unreadable" in proc.stdout and summary["num_steps"] == 0


def test_eval_is_fixed_by_prepare_not_by_train(prepared_cache):
    """evaluate_bpb takes no batch size from train.py, and train.py passes none: the scored tokens and
    the batch shape are prepare.py's (EVAL_BATCH_SIZE x MAX_SEQ_LEN), whatever DEVICE_BATCH_SIZE is."""
    import prepare

    calls = [node for node in ast.walk(ast.parse((REPO / "train.py").read_text()))
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "evaluate_bpb"]
    assert len(calls) == 1 and len(calls[0].args) == 2 and [k.arg for k in calls[0].keywords] == ["stats"]
    with pytest.raises(TypeError):
        prepare.evaluate_bpb(tiny_model(), None, train.DEVICE_BATCH_SIZE)  # no positional batch size

    cache = prepared_cache / "cpu-local"
    tokenizer = prepare.Tokenizer.from_directory(cache / "tokenizer")
    model = tiny_model(sequence_len=256, vocab_size=tokenizer.get_vocab_size())
    shapes = []
    original = model.forward

    def recording_forward(x, y=None, reduction="mean"):
        shapes.append(tuple(x.shape))
        return original(x, y, reduction=reduction)

    model.forward = recording_forward
    stats = {}
    with torch.no_grad():
        prepare.evaluate_bpb(model, tokenizer, stats=stats, data_dir=cache / "data", tokenizer_dir=cache / "tokenizer")
    batch = prepare.PROFILES["cpu"]["eval_batch_size"]
    assert set(shapes) == {(batch, 256)}
    assert stats["eval_tokens"] == len(shapes) * batch * 256 == manifest_of(prepared_cache)["eval_tokens"]


# ---------------------------------------------------------------------------------------------
# torch.compile on CPU: the CUDA path's graph, without a GPU


@pytest.fixture
def fresh_dynamo():
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    yield counters
    torch._dynamo.reset()


@pytest.mark.slow
def test_compiled_training_and_eval_compile_twice_without_graph_breaks(prepared_cache, fresh_dynamo):
    """As train() does on CUDA: masks built before torch.compile (with a device string that differs from
    the tensors': "cpu:0" vs "cpu", like "cuda" vs "cuda:0"), training steps, then evaluate_bpb in eval
    mode with its own batch shape. Expected: one graph for training, one for eval, no graph break."""
    import prepare

    cache = prepared_cache / "cpu-local"
    tokenizer = prepare.Tokenizer.from_directory(cache / "tokenizer")
    model = tiny_model(sequence_len=256, vocab_size=tokenizer.get_vocab_size(), n_layer=2, window_pattern="SL")
    optimizer = train.setup_optimizer(model)
    model.attention_masks(256, torch.device("cpu", 0))
    compiled = torch.compile(model, dynamic=False)
    loader = prepare.make_dataloader(tokenizer, 4, 256, "train", device="cpu", data_dir=cache / "data")
    for _ in range(3):
        x, y, _ = next(loader)
        compiled(x, y).backward()
        optimizer.step()
        model.zero_grad(set_to_none=True)
    compiled.eval()
    prepare.evaluate_bpb(compiled, tokenizer, eval_tokens=3 * 8 * 256, data_dir=cache / "data",
                         tokenizer_dir=cache / "tokenizer")
    assert dict(fresh_dynamo["graph_break"]) == {}
    assert fresh_dynamo["frames"]["ok"] == 2 and fresh_dynamo["stats"]["unique_graphs"] == 2


@pytest.mark.slow
def test_compiled_flex_forward_compiles_once_without_graph_breaks(monkeypatch, fresh_dynamo):
    """The windowed layers' FlexAttention path (CUDA's) compiled on CPU, forward only (flex has no CPU
    backward): flex_attention is bound at import, so repeated calls reuse the one graph."""
    monkeypatch.setattr(train, "USE_FLEX", True)
    model = tiny_model(sequence_len=256, vocab_size=512, n_layer=2, window_pattern="SL").eval()
    model.attention_masks(256, torch.device("cpu", 0))
    compiled = torch.compile(model, dynamic=False)
    with torch.no_grad():
        for _ in range(3):
            x = torch.randint(0, 512, (2, 256))
            compiled(x, x, reduction="none")
    assert dict(fresh_dynamo["graph_break"]) == {}
    assert fresh_dynamo["frames"]["ok"] == 1 and fresh_dynamo["stats"]["unique_graphs"] == 1


# ---------------------------------------------------------------------------------------------
# CUDA only (skipped without a GPU): `python -m pytest -m gpu tests/test_train.py`

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@needs_cuda
def test_gpu_flex_path_matches_dense_reference_in_bf16():
    torch.manual_seed(0)
    B, H, T, D = 2, 4, 1024, 128
    q, k, v = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    block_mask = train.window_block_mask(T, 300, "cuda")
    flex = train.flex_attention(q, k, v, block_mask=block_mask)
    mask = train.window_mask(T, 300, "cuda")
    reference = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask)
    assert (flex.float() - reference).abs().max().item() < 2e-2


@pytest.mark.gpu
@needs_cuda
def test_gpu_compiled_bf16_model_trains():
    torch.manual_seed(0)
    cfg = tiny_config(sequence_len=256, vocab_size=512, n_embd=256, n_head=2)
    with torch.device("cuda"):
        model = train.GPT(cfg)
    model.init_weights()
    opt = train.setup_optimizer(model)
    model.attention_masks(256, torch.device("cuda"))
    compiled = torch.compile(model, dynamic=False)
    x = torch.randint(0, 512, (4, 256), device="cuda")
    losses = []
    for _ in range(20):
        with torch.amp.autocast(device_type="cuda", dtype=torch.bfloat16):
            loss = compiled(x, x)
        loss.backward()
        opt.step()
        model.zero_grad(set_to_none=True)
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    masks = model.attention_masks(256, torch.device("cuda"))
    assert not any(isinstance(m, torch.Tensor) for m in masks.values())  # no dense mask on CUDA


@pytest.mark.gpu
@needs_cuda
def test_gpu_short_training_run(prepared_cache, tmp_path):
    # The cpu profile's constants on a CUDA device: the whole CUDA path (compile, bf16, flex,
    # prefetching loader, sidecar) in well under a minute.
    proc, summary, _ = run_train(prepared_cache, tmp_path, AUTORESEARCH_TIME_BUDGET="10")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert summary["device"].startswith("cuda:") and summary["device_name"] == summary["device"][5:]
    assert summary["peak_vram_mb"] > 0 and 0 < summary["val_bpb"] < 20
    assert summary["mfu_percent"] is None or summary["mfu_percent"] > 0
    assert "gpu_other_processes" not in summary["contention"] or summary["contention"]["gpu_other_processes"] >= 0
