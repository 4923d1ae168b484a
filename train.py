"""
Autoresearch pretraining script: one GPT, one device, one fixed time budget.

This is the single file the research agent edits. It is meant to be read top to bottom:
hyperparameters, model, optimizer, training loop, final evaluation. Everything that defines the
*metric* (data, tokenizer, context length, time budget and its clock, evaluate_bpb) and the run's
bookkeeping (summary block, JSON sidecar for MemoryLab, device identity, contention signals) lives
in prepare.py and is never edited, so runs stay comparable.

Run:   python prepare.py && python train.py
CPU:   AUTORESEARCH_PROFILE=cpu python train.py   (small model, ~1 minute on 2 idle cores)
Environment variables: docs/train.md (none of them changes the model or the metric).
"""

import os

# Fewer fragmentation OOMs on CUDA; read when the allocator starts.
os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
# CPU: idle OpenMP threads sleep instead of spinning (see prepare.py); must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# A sidecar an earlier run left must never pass for this run's: a start-up failure (a bad profile, no prepared
# data) writes none, so it goes before anything can fail.
if os.path.isfile(os.environ.get("AUTORESEARCH_SUMMARY_PATH") or ""):
    os.remove(os.environ["AUTORESEARCH_SUMMARY_PATH"])

import gc
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

from prepare import (
    BUDGET_CLOCK,
    MAX_SEQ_LEN,
    PROFILE,
    TIME_BUDGET,
    Run,
    Tokenizer,
    detect_device_type,
    evaluate_bpb,
    make_dataloader,
)

# ---------------------------------------------------------------------------------------------
# Hyperparameters (edit these directly; there are no CLI flags)

# gpu profile: upstream autoresearch defaults (one H100, 300 s), so results compare with published ones.
DEPTH = 8                   # number of transformer blocks; the main knob for model size
ASPECT_RATIO = 64           # model_dim = DEPTH * ASPECT_RATIO, rounded up to a multiple of HEAD_DIM
HEAD_DIM = 128              # channels per attention head
WINDOW_PATTERN = "SSSL"     # per-layer attention span, tiled over the layers: S = short window, L = full
TOTAL_BATCH_SIZE = 2**19    # tokens per optimizer step (reached by gradient accumulation)
DEVICE_BATCH_SIZE = 128     # sequences per forward/backward pass; lower it if you run out of memory
EMBEDDING_LR = 0.6          # AdamW lr for token and value embeddings
UNEMBEDDING_LR = 0.004      # AdamW lr for lm_head
MATRIX_LR = 0.04            # Muon lr for the 2-D matrices inside the blocks
SCALAR_LR = 0.5             # AdamW lr for the per-layer residual / x0 scalars
WEIGHT_DECAY = 0.2          # cautious weight decay for Muon matrices, decays linearly to 0 over training
ADAM_BETAS = (0.8, 0.95)
WARMUP_RATIO = 0.0          # fraction of the time budget spent ramping the lr up
WARMDOWN_RATIO = 0.5        # fraction of the time budget spent ramping the lr down to FINAL_LR_FRAC
FINAL_LR_FRAC = 0.0
UNTIMED_STEPS = 10          # the first steps pay for torch.compile and autotuning; the budget ignores them

if PROFILE == "cpu":
    # ~1 minute on 2 CPU cores is only ~250k tokens (~4-5k tok/s), so: a small model, and small
    # steps, because at this scale the number of optimizer steps matters more than gradient noise
    # (measured at equal tokens: 4k tokens/step -> val_bpb 1.80, 2k -> 1.72, 1k -> 1.69, but 1k pays
    # more per-step overhead). A 3-layer dim-192 model learns more per token but runs slower: a wash.
    DEPTH = 4
    ASPECT_RATIO = 32       # -> model_dim 128, 2 heads of 64
    HEAD_DIM = 64
    TOTAL_BATCH_SIZE = 2**11
    DEVICE_BATCH_SIZE = 8   # 8 x 256 tokens: one forward/backward per step, no accumulation
    UNTIMED_STEPS = 1       # no compilation on CPU; only the first step (allocations) is slow

# ---------------------------------------------------------------------------------------------
# Device: CUDA (bf16 autocast + torch.compile) -> Apple MPS -> CPU (both float32, eager)

DEVICE_TYPE = detect_device_type()  # the same detection prepare.py uses to pick the profile
DEVICE = torch.device(DEVICE_TYPE)
USE_COMPILE = DEVICE_TYPE == "cuda"
# Windowed ("S") layers on CUDA go through FlexAttention with a block mask, so the kernel skips
# every fully masked block (an S layer costs about half an L layer). On CPU/MPS the fused flex
# kernel does not exist (eager flex materialises the scores and has no CPU backward), so there a
# dense boolean mask with SDPA is the fast path. Never a dense mask on CUDA: it rules out flash.
USE_FLEX = DEVICE_TYPE == "cuda"
# Polar express runs in bf16 on CUDA (fast tensor cores, and the iteration tolerates the rounding);
# elsewhere bf16 matmuls are slow or emulated, so float32.
ORTHO_DTYPE = torch.bfloat16 if DEVICE_TYPE == "cuda" else torch.float32


def maybe_compile(fn):
    """torch.compile on CUDA only: the optimizer's elementwise chains fuse into a few kernels."""
    return torch.compile(fn, dynamic=False, fullgraph=True) if USE_COMPILE else fn


# ---------------------------------------------------------------------------------------------
# GPT model


@dataclass
class GPTConfig:
    sequence_len: int
    vocab_size: int
    n_layer: int
    n_head: int
    n_embd: int
    window_pattern: str = "SSSL"


def norm(x):
    # RMSNorm without a learnable weight: the residual scalars and the next matrix carry the scale.
    return F.rms_norm(x, (x.size(-1),))


def has_ve(layer_idx, n_layer):
    # Value embeddings on alternating layers, always including the last one (upstream's choice).
    return layer_idx % 2 == (n_layer - 1) % 2


def apply_rotary_emb(x, cos, sin):
    # x: (B, T, H, D). Rotate the two halves of each head as pairs of coordinates by a position-
    # dependent angle, so q.k depends only on the relative offset of the two positions.
    d = x.shape[-1] // 2
    x1, x2 = x[..., :d], x[..., d:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos + x2 * sin, x2 * cos - x1 * sin], dim=-1)


def window_mask(seq_len, window, device):
    """Boolean (T, T) mask, True where query i may attend key j: causal and at most `window` back.

    Same convention as flash-attention's window_size=(window, 0): keys i-window .. i, so window+1 keys.
    """
    pos = torch.arange(seq_len, device=device)
    offset = pos[:, None] - pos[None, :]
    return (offset >= 0) & (offset <= window)


def window_block_mask(seq_len, window, device):
    """The same mask as window_mask, as a FlexAttention BlockMask: per 128x128 tile it records
    whether the tile is empty (skipped), full (no masking inside) or partial (mask_mod evaluated)."""

    def sliding_window_causal(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (q_idx - kv_idx <= window)

    return create_block_mask(sliding_window_causal, B=None, H=None, Q_LEN=seq_len, KV_LEN=seq_len,
                             device=device)


class CausalSelfAttention(nn.Module):
    ve_gate_channels = 32  # the value-embedding gate looks at only the first channels of the input

    def __init__(self, config, layer_idx):
        super().__init__()
        self.n_head = config.n_head
        self.head_dim = config.n_embd // config.n_head
        self.c_q = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.c_k = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.c_v = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        # Per-head, input-dependent gate deciding how much of the value embedding enters V.
        self.ve_gate = None
        if has_ve(layer_idx, config.n_layer):
            self.ve_gate = nn.Linear(self.ve_gate_channels, self.n_head, bias=False)

    def forward(self, x, ve, cos_sin, attn_mask):
        B, T, C = x.size()
        q = self.c_q(x).view(B, T, self.n_head, self.head_dim)
        k = self.c_k(x).view(B, T, self.n_head, self.head_dim)
        v = self.c_v(x).view(B, T, self.n_head, self.head_dim)
        if ve is not None:
            # 2*sigmoid: starts at 1 (gate weights init to zero) and can range over (0, 2).
            gate = 2 * torch.sigmoid(self.ve_gate(x[..., : self.ve_gate_channels]))
            v = v + gate.unsqueeze(-1) * ve.view(B, T, self.n_head, self.head_dim)
        cos, sin = cos_sin
        q, k = apply_rotary_emb(q, cos, sin), apply_rotary_emb(k, cos, sin)
        q, k = norm(q), norm(k)  # QK-norm keeps attention logits bounded, so high lrs stay stable
        # (B, H, T, D) for the kernels; one dtype (under autocast the norms may return float32).
        q, k, v = q.transpose(1, 2).to(v.dtype), k.transpose(1, 2).to(v.dtype), v.transpose(1, 2)
        if attn_mask is None:
            # Full causal attention: no mask tensor, so PyTorch can pick its fused flash kernel.
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif isinstance(attn_mask, torch.Tensor):  # CPU / MPS: dense boolean window mask
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        else:  # CUDA: a FlexAttention BlockMask, fully masked tiles skipped (compiled with the model)
            y = flex_attention(q, k, v, block_mask=attn_mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x):
        # ReLU^2: as cheap as ReLU, smoother, and empirically better than GELU for this setup.
        return self.c_proj(F.relu(self.c_fc(x)).square())


class Block(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.attn = CausalSelfAttention(config, layer_idx)
        self.mlp = MLP(config)

    def forward(self, x, ve, cos_sin, attn_mask):
        x = x + self.attn(norm(x), ve, cos_sin, attn_mask)
        x = x + self.mlp(norm(x))
        return x


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.window_sizes = self._compute_window_sizes(config)
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(config.vocab_size, config.n_embd),
                "h": nn.ModuleList([Block(config, i) for i in range(config.n_layer)]),
            }
        )
        # Untied: the input embedding wants a large lr, the output projection a tiny one.
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Before block i: x = resid_lambdas[i] * x + x0_lambdas[i] * x0, where x0 is the normed token
        # embedding. Gives every layer direct access to the input tokens and a learnable residual scale.
        self.resid_lambdas = nn.Parameter(torch.ones(config.n_layer))
        self.x0_lambdas = nn.Parameter(torch.zeros(config.n_layer))
        # Value embeddings: a second token table per (alternate) layer, added into the attention values.
        self.value_embeds = nn.ModuleDict({
            str(i): nn.Embedding(config.vocab_size, config.n_embd)
            for i in range(config.n_layer)
            if has_ve(i, config.n_layer)
        })
        cos, sin = self._precompute_rotary(config.sequence_len, config.n_embd // config.n_head)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self._attn_masks = {}  # (T, device type, flex) -> {window: mask}; see attention_masks

    @staticmethod
    def _compute_window_sizes(config):
        # Returns, per layer, how many previous tokens a query may see. S = half the context (what
        # upstream uses: local layers are cheaper and the L layers still carry long-range information),
        # L = the whole context. The last layer is always L so the output sees everything.
        assert all(c in "SL" for c in config.window_pattern), config.window_pattern
        long_window = config.sequence_len
        short_window = long_window // 2
        sizes = [short_window if config.window_pattern[i % len(config.window_pattern)] == "S" else long_window
                 for i in range(config.n_layer)]
        sizes[-1] = long_window
        return sizes

    @staticmethod
    def _precompute_rotary(seq_len, head_dim, base=10000):
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        freqs = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
        return freqs.cos()[None, :, None, :], freqs.sin()[None, :, None, :]  # (1, T, 1, D/2)

    @torch.no_grad()
    def init_weights(self):
        n_embd = self.config.n_embd
        # Uniform with the std of N(0, 1/n_embd): same variance, no outliers.
        s = 3**0.5 * n_embd**-0.5
        nn.init.normal_(self.transformer.wte.weight, std=1.0)  # normed right after lookup; scale is free
        nn.init.normal_(self.lm_head.weight, std=0.001)  # near-uniform predictions at the start
        for block in self.transformer.h:
            for lin in (block.attn.c_q, block.attn.c_k, block.attn.c_v, block.mlp.c_fc):
                nn.init.uniform_(lin.weight, -s, s)
            # Output projections start at zero: every block begins as the identity on the residual.
            nn.init.zeros_(block.attn.c_proj.weight)
            nn.init.zeros_(block.mlp.c_proj.weight)
            if block.attn.ve_gate is not None:
                nn.init.zeros_(block.attn.ve_gate.weight)
        self.resid_lambdas.fill_(1.0)
        self.x0_lambdas.fill_(0.1)
        for ve in self.value_embeds.values():
            nn.init.uniform_(ve.weight, -s, s)
        if self.transformer.wte.weight.device.type == "cuda":
            # Embedding tables are large and only gathered from: bf16 halves their memory and AdamW copes.
            self.transformer.wte.to(dtype=torch.bfloat16)
            for ve in self.value_embeds.values():
                ve.to(dtype=torch.bfloat16)

    def num_params(self):
        return sum(p.numel() for p in self.parameters())

    def estimate_flops_per_token(self):
        """Training FLOPs per token as upstream counts them: 6 * (matmul params) + attention.

        Embedding lookups are gathers, not matmuls, so their tables (and the scalars) are excluded.
        The attention term (QK^T and AV, forward + backward) uses each layer's visible key span.
        """
        nparams = self.num_params()
        exclude = (
            self.transformer.wte.weight.numel()
            + sum(ve.weight.numel() for ve in self.value_embeds.values())
            + self.resid_lambdas.numel()
            + self.x0_lambdas.numel()
        )
        h = self.config.n_head
        q = self.config.n_embd // self.config.n_head
        t = self.config.sequence_len
        attn_flops = sum(12 * h * q * min(w, t) for w in self.window_sizes)
        return 6 * (nparams - exclude) + attn_flops

    @torch.compiler.disable
    def _build_attention_masks(self, T, device, flex):
        make = window_block_mask if flex else window_mask
        # A window covering the whole sequence is plain causal attention: mask None (flash path).
        return {w: (None if w >= T - 1 else make(T, w, device)) for w in set(self.window_sizes)}

    def attention_masks(self, T, device, flex=None):
        """{window: mask} for sequences of length T, built once and cached: a BlockMask per window
        with FlexAttention (CUDA), a dense boolean mask otherwise. train() builds the training
        length's masks before torch.compile, so the compiled forward only reads the cache. Keyed by the
        device *type*: train() passes torch.device("cuda") and forward sees "cuda:0"; one process
        trains on one device, and a miss inside the compiled forward would be a graph break."""
        flex = USE_FLEX if flex is None else flex
        key = (T, torch.device(device).type, flex)
        masks = self._attn_masks.get(key)
        if masks is None:
            masks = self._attn_masks[key] = self._build_attention_masks(T, device, flex)
        return masks

    def forward(self, idx, targets=None, reduction="mean"):
        B, T = idx.size()
        assert self.config.sequence_len >= T, f"sequence length {T} > {self.config.sequence_len}"
        cos_sin = self.cos[:, :T], self.sin[:, :T]
        masks = self.attention_masks(T, idx.device)

        x = norm(self.transformer.wte(idx))
        x0 = x
        for i, block in enumerate(self.transformer.h):
            x = self.resid_lambdas[i] * x + self.x0_lambdas[i] * x0
            ve = self.value_embeds[str(i)](idx) if str(i) in self.value_embeds else None
            x = block(x, ve, cos_sin, masks[self.window_sizes[i]])
        x = norm(x)

        softcap = 15.0  # smooth cap on logits: |logit| < 15 keeps the softmax from saturating early on
        logits = self.lm_head(x).float()
        logits = softcap * torch.tanh(logits / softcap)
        if targets is None:
            return logits
        loss = F.cross_entropy(
            logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1, reduction=reduction
        )
        # reduction="none": per-token loss in nats, flattened to (B*T,) like upstream (evaluate_bpb).
        return loss


# ---------------------------------------------------------------------------------------------
# Optimizer: Muon for the 2-D matrices inside the blocks, AdamW for everything else

# Polar express (Amsel et al., 2025): 5 odd-polynomial steps X <- a X + b (X X^T) X + c (X X^T)^2 X
# whose coefficients are tuned per step to push every singular value of X towards 1 as fast as
# possible, i.e. X -> U V^T (the orthogonal polar factor). Same job as Newton-Schulz, fewer steps.
POLAR_EXPRESS_COEFFS = [
    (8.156554524902461, -22.48329292557795, 15.878769915207462),
    (4.042929935166739, -2.808917465908714, 0.5000178451051316),
    (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
    (3.285753657755655, -2.3681294933425376, 0.46449024233003106),
    (2.3465413258596377, -1.7097828382687081, 0.42323551169305323),
]


def polar_express(G, steps=5):
    """Approximately orthogonalise the last two dims of G (batched), in ORTHO_DTYPE."""
    X = G.to(ORTHO_DTYPE)
    # The iteration converges only for singular values in (0, 1]. The Frobenius norm bounds the
    # spectral norm from above, so dividing by it (with a 2% safety margin for rounding) is a cheap,
    # safe spectral-norm estimate.
    X = X / (X.norm(dim=(-2, -1), keepdim=True) * 1.02 + 1e-6)
    if X.size(-2) > X.size(-1):
        # Tall: work with the small (n x n) Gram matrix X^T X.
        for a, b, c in POLAR_EXPRESS_COEFFS[:steps]:
            A = X.mT @ X
            X = a * X + X @ (b * A + c * (A @ A))
    else:
        for a, b, c in POLAR_EXPRESS_COEFFS[:steps]:
            A = X @ X.mT
            X = a * X + (b * A + c * (A @ A)) @ X
    return X


@maybe_compile
def adamw_step(p, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, wd):
    p.mul_(1 - lr * wd)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.lerp_(grad.square(), 1 - beta2)
    bias1 = 1 - beta1**step
    bias2 = 1 - beta2**step
    denom = (exp_avg_sq / bias2).sqrt() + eps
    p.add_(exp_avg / denom * (-lr / bias1))


@maybe_compile
def muon_step(grads, params, momentum_buffer, second_moment, momentum, lr, wd, beta2, ns_steps, red_dim):
    """One Muon update for a stack of same-shaped matrices: params, grads are (N, rows, cols)."""
    # Nesterov momentum: step along the gradient blended with the updated momentum.
    momentum_buffer.lerp_(grads, 1 - momentum)
    g = grads.lerp_(momentum_buffer, momentum)
    g = polar_express(g, ns_steps)
    # NorMuon variance reduction: after orthogonalisation every direction has the same size, but
    # some neurons (rows; columns for wide matrices) keep getting noisier updates than others. Track a
    # second moment per neuron, divide by its root (Adam-like), then rescale so the update's total
    # Frobenius norm is what orthogonalisation gave.
    red_dim_size = g.size(red_dim)
    v_mean = g.float().square().mean(dim=red_dim, keepdim=True)
    v_norm = (v_mean.sum(dim=(-2, -1), keepdim=True) * red_dim_size).sqrt()
    second_moment.lerp_(v_mean.to(second_moment.dtype), 1 - beta2)
    step_size = second_moment.clamp_min(1e-10).rsqrt()
    v_norm_new = ((v_mean * red_dim_size) * step_size.float().square()).sum(dim=(-2, -1), keepdim=True).sqrt()
    g = g * (step_size * (v_norm / v_norm_new.clamp_min(1e-10))).to(g.dtype)
    # Cautious weight decay: decay only the coordinates the update is already pushing towards zero
    # (sign(update) == sign(param)), so decay never fights the gradient.
    mask = (g * params) >= 0
    params.sub_(lr * g + lr * wd * params * mask)


class MuonAdamW(torch.optim.Optimizer):
    """One optimizer, two kinds of param group: group["kind"] is "adamw" or "muon".

    Muon groups hold same-shaped matrices so each group is updated as one stacked batch.
    Hyperparameters live in the groups as plain floats; the training loop edits lr / momentum /
    weight_decay in place. On CUDA the compiled step functions receive them as 0-D CPU tensors so
    that a changed value does not trigger a recompile.
    """

    def __init__(self, param_groups):
        super().__init__(param_groups, defaults={})
        self._scalars = {}

    def _s(self, name, value):
        if not USE_COMPILE:
            return value
        t = self._scalars.get(name)
        if t is None:
            t = self._scalars[name] = torch.tensor(0.0, dtype=torch.float32)
        t.fill_(value)
        return t

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            if group["kind"] == "adamw":
                self._adamw(group)
            else:
                self._muon(group)

    def _adamw(self, group):
        beta1, beta2 = group["betas"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
            state["step"] += 1
            adamw_step(
                p, p.grad, state["exp_avg"], state["exp_avg_sq"], self._s("step", state["step"]),
                self._s("lr", group["lr"]), self._s("beta1", beta1), self._s("beta2", beta2),
                self._s("eps", group["eps"]), self._s("wd", group["weight_decay"]),
            )

    def _muon(self, group):
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            return
        rows, cols = params[0].shape
        state = self.state[params[0]]  # the stacked buffers live on the group's first param
        if not state:
            device = params[0].device
            state["momentum_buffer"] = torch.zeros(len(params), rows, cols, device=device)
            # Second moment per row for tall/square matrices, per column for wide ones (the longer side).
            shape = (len(params), rows, 1) if rows >= cols else (len(params), 1, cols)
            state["second_moment"] = torch.zeros(shape, dtype=torch.float32, device=device)
        red_dim = -1 if rows >= cols else -2
        # Orthogonalised updates have RMS ~ 1/sqrt(max side); scaling by sqrt(rows/cols) for tall
        # matrices keeps the per-element update size comparable across shapes.
        lr = group["lr"] * max(1.0, rows / cols) ** 0.5
        stacked_grads = torch.stack([p.grad for p in params]).float()
        stacked_params = torch.stack(params)
        muon_step(
            stacked_grads, stacked_params, state["momentum_buffer"], state["second_moment"],
            self._s("momentum", group["momentum"]), self._s("muon_lr", lr),
            self._s("muon_wd", group["weight_decay"]), self._s("muon_beta2", group["beta2"]),
            group["ns_steps"], red_dim,
        )
        for p, new in zip(params, stacked_params.unbind(0), strict=True):
            p.copy_(new)


def setup_optimizer(model):
    """Param groups (each documented below). Returns the optimizer; every group remembers initial_lr."""
    model_dim = model.config.n_embd
    # AdamW lrs were tuned at model_dim 768; wider models need smaller steps for the same change in
    # output (~1/sqrt(width)). The scalars are width-independent and keep their lr.
    dmodel_lr_scale = (model_dim / 768) ** -0.5
    adam = dict(kind="adamw", betas=ADAM_BETAS, eps=1e-10, weight_decay=0.0)
    embedding_lr = EMBEDDING_LR * dmodel_lr_scale
    param_groups = [
        # lm_head: the output projection is sensitive; a tiny lr.
        dict(adam, params=[model.lm_head.weight], lr=UNEMBEDDING_LR * dmodel_lr_scale),
        # token embedding: each row sees few gradients; a large lr.
        dict(adam, params=[model.transformer.wte.weight], lr=embedding_lr),
        # value embeddings: same role as the token embedding, same lr.
        dict(adam, params=[ve.weight for ve in model.value_embeds.values()], lr=embedding_lr),
        # residual scalars: multiply the whole stream, so a much smaller lr than the x0 scalars.
        dict(adam, params=[model.resid_lambdas], lr=SCALAR_LR * 0.01),
        # x0 scalars: higher beta1 (smoother) as upstream.
        dict(adam, params=[model.x0_lambdas], lr=SCALAR_LR, betas=(0.96, 0.95)),
    ]
    # Muon: every matrix inside the blocks (q, k, v, proj, mlp, value-embedding gates), grouped by
    # shape so that each group is orthogonalised as one batched matmul chain.
    matrix_params = list(model.transformer.h.parameters())
    assert all(p.ndim == 2 for p in matrix_params)
    for shape in sorted({tuple(p.shape) for p in matrix_params}):
        group_params = [p for p in matrix_params if tuple(p.shape) == shape]
        param_groups.append(
            dict(kind="muon", params=group_params, lr=MATRIX_LR, momentum=0.95, beta2=0.95, ns_steps=5,
                 weight_decay=WEIGHT_DECAY)
        )
    n_assigned = sum(p.numel() for g in param_groups for p in g["params"])
    assert n_assigned == model.num_params(), "every parameter must be in exactly one group"
    optimizer = MuonAdamW(param_groups)
    for group in optimizer.param_groups:
        group["initial_lr"] = group["lr"]
    return optimizer


# ---------------------------------------------------------------------------------------------
# Schedules (progress = training seconds so far / time budget, in [0, 1])


def get_lr_multiplier(progress):
    if progress < WARMUP_RATIO:
        return progress / WARMUP_RATIO
    if progress < 1.0 - WARMDOWN_RATIO:
        return 1.0
    cooldown = (1.0 - progress) / WARMDOWN_RATIO
    return cooldown + (1.0 - cooldown) * FINAL_LR_FRAC


def get_muon_momentum(step):
    # Low momentum while the weights move fast at the start, then the usual 0.95.
    frac = min(step / 300, 1.0)
    return (1 - frac) * 0.85 + frac * 0.95


def get_weight_decay(progress):
    return WEIGHT_DECAY * (1.0 - progress)


# ---------------------------------------------------------------------------------------------
# Training


def train(run):
    """The experiment. Reports to `run` (prepare.Run) as it goes, so a crash can report what exists."""
    if DEVICE_TYPE == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 for the few float32 matmuls left
    autocast_ctx = nullcontext()
    if DEVICE_TYPE == "cuda":
        autocast_ctx = torch.amp.autocast(device_type="cuda", dtype=torch.bfloat16)

    tokenizer = Tokenizer.from_directory()
    vocab_size = tokenizer.get_vocab_size()
    base_dim = DEPTH * ASPECT_RATIO
    model_dim = -(-base_dim // HEAD_DIM) * HEAD_DIM
    config = GPTConfig(sequence_len=MAX_SEQ_LEN, vocab_size=vocab_size, n_layer=DEPTH,
                       n_head=model_dim // HEAD_DIM, n_embd=model_dim, window_pattern=WINDOW_PATTERN)
    print(f"profile: {PROFILE}  device: {DEVICE_TYPE}  time budget: {TIME_BUDGET:g}s ({BUDGET_CLOCK} clock)")
    print(f"model config: {asdict(config)}")
    print(f"window sizes: {GPT._compute_window_sizes(config)}")

    with torch.device(DEVICE):
        model = GPT(config)
    model.init_weights()
    num_params = model.num_params()
    flops_per_token = model.estimate_flops_per_token()
    n_ve = sum(v.weight.numel() for v in model.value_embeds.values())
    n_blocks = sum(p.numel() for p in model.transformer.h.parameters())
    print(f"parameters: {num_params:,} (embedding {model.transformer.wte.weight.numel():,}, value embeddings "
          f"{n_ve:,}, lm_head {model.lm_head.weight.numel():,}, blocks {n_blocks:,})")
    print(f"estimated FLOPs per token: {flops_per_token:e}")
    run.finish(num_params_M=num_params / 1e6)

    optimizer = setup_optimizer(model)
    model.attention_masks(MAX_SEQ_LEN, DEVICE)  # built once, outside the compiled graph
    if USE_COMPILE:
        model = torch.compile(model, dynamic=False)

    tokens_per_fwdbwd = DEVICE_BATCH_SIZE * MAX_SEQ_LEN
    assert TOTAL_BATCH_SIZE % tokens_per_fwdbwd == 0, "TOTAL_BATCH_SIZE must be a multiple of B*T"
    grad_accum_steps = TOTAL_BATCH_SIZE // tokens_per_fwdbwd
    print(f"tokens per step: {TOTAL_BATCH_SIZE:,} = {DEVICE_BATCH_SIZE} x {MAX_SEQ_LEN} "
          f"x {grad_accum_steps} accumulation steps")

    # On CUDA the loader tokenizes and packs in a background thread, a few batches ahead.
    train_loader = make_dataloader(tokenizer, DEVICE_BATCH_SIZE, MAX_SEQ_LEN, "train")
    x, y, epoch = next(train_loader)
    # The budget's clock: wall seconds on a GPU, the process's CPU seconds per thread on the cpu profile.
    clock = run.start_clock()

    step = 0
    total_training_time = 0.0  # on the budget's clock
    wall_training_time = 0.0
    smooth_train_loss = 0.0
    ema_beta = 0.9
    while True:
        if DEVICE_TYPE == "cuda":
            torch.cuda.synchronize()
        t0, wall_t0 = clock.now(), time.time()
        for _ in range(grad_accum_steps):
            with autocast_ctx:
                loss = model(x, y)
            train_loss = loss.detach()
            (loss / grad_accum_steps).backward()
            x, y, epoch = next(train_loader)  # fetch the next batch while the GPU works

        progress = min(total_training_time / TIME_BUDGET, 1.0)
        lrm = get_lr_multiplier(progress)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * lrm
            if group["kind"] == "muon":
                group["momentum"] = get_muon_momentum(step)
                group["weight_decay"] = get_weight_decay(progress)
        optimizer.step()
        model.zero_grad(set_to_none=True)

        train_loss_f = run.loss_value(train_loss)  # .item() (AUTORESEARCH_FORCE_CRASH can make it NaN)
        # Fast fail: a NaN or exploded loss never recovers; stop now instead of burning the budget.
        if not math.isfinite(train_loss_f) or train_loss_f > 100:
            raise RuntimeError(f"training diverged: loss {train_loss_f} at step {step}")

        if DEVICE_TYPE == "cuda":
            torch.cuda.synchronize()
        dt, wall_dt = clock.now() - t0, time.time() - wall_t0
        if step >= UNTIMED_STEPS:
            total_training_time += dt
            wall_training_time += wall_dt

        smooth_train_loss = ema_beta * smooth_train_loss + (1 - ema_beta) * train_loss_f
        debiased = smooth_train_loss / (1 - ema_beta ** (step + 1))
        tok_per_sec = TOTAL_BATCH_SIZE / dt
        mfu = 100 * flops_per_token * tok_per_sec / run.peak_flops if run.peak_flops else float("nan")
        remaining = max(0.0, TIME_BUDGET - total_training_time)
        run.record_step(step, progress, debiased, lrm, tok_per_sec, total_training_time, wall_training_time)
        mfu_text = f"{mfu:.1f}%" if run.peak_flops else "n/a"
        print(f"\rstep {step:05d} ({100 * progress:.1f}%) | loss: {debiased:.6f} | lrm: {lrm:.2f} | "
              f"dt: {dt * 1000:.0f}ms | tok/sec: {tok_per_sec:,.0f} | mfu: {mfu_text} | epoch: {epoch} | "
              f"remaining: {remaining:.0f}s    ", end="", flush=True)

        # Python's cyclic GC pauses grow with the number of live objects and land at random steps.
        # Everything long-lived exists after the first step: freeze it, and collect by hand rarely.
        if step == 0:
            gc.collect()
            gc.freeze()
            gc.disable()
        elif (step + 1) % 5000 == 0:
            gc.collect()

        step += 1
        if step > UNTIMED_STEPS and total_training_time >= TIME_BUDGET:
            break
    print()
    train_loader.close()
    run.stop_clock()

    model.eval()
    eval_stats = {}
    with torch.no_grad(), autocast_ctx:
        val_bpb = evaluate_bpb(model, tokenizer, stats=eval_stats)  # batch shape and tokens: prepare.py's
    # Steady-state throughput: only the timed steps, per second of the budget's clock.
    timed_steps = step - UNTIMED_STEPS
    tokens_per_sec = TOTAL_BATCH_SIZE * timed_steps / total_training_time if total_training_time > 0 else 0.0
    mfu = 100 * flops_per_token * tokens_per_sec / run.peak_flops if run.peak_flops else None
    run.finish(val_bpb=val_bpb, mfu_percent=mfu, tokens_per_sec=tokens_per_sec, eval_tokens=eval_stats["eval_tokens"],
               total_tokens_M=step * TOTAL_BATCH_SIZE / 1e6)


def main():
    with Run(depth=DEPTH, total_batch_size=TOTAL_BATCH_SIZE) as run:
        train(run)


if __name__ == "__main__":
    main()
