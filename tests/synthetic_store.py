"""A synthetic but realistic MemoryLab store for dashboard tests and benchmarks.

``write_store(root, n)`` writes ``experiments.jsonl`` with ``n`` runs of an overnight loop (a champion
frontier that improves in ever smaller steps, discards scattered above it, ~8% crashes with error
text, a few exploded runs, decision packets, commit ancestry for lineages, five-minute spacing ending
now) plus ``runs/<run_id>/summary.json`` sidecars with loss curves for the champion and the latest
runs. With ``hostile=True`` user-visible fields carry markup/script payloads (``HOSTILE``) so tests
can check that nothing executes.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

HOSTILE = (
    "<script>alert(1)</script>",
    '"><img src=x onerror="window.__pwned=1;alert(2)">',
    "</script><script>window.__pwned=2</script>",
    "<svg onload=alert(3)>",
    "' onmouseover='window.__pwned=4' x='",
    "<!-- --><b>bold</b>&amp;\u2028line\u2029para",
    "javascript:alert(5)",
)
IDEAS = ("matrix LR 0.04 -> 0.05", "depth 8 -> 10", "warmdown 0.5 -> 0.6", "weight decay 0.2 -> 0.1",
         "SwiGLU instead of ReLU^2", "remove value embeddings", "rotary base 10000 -> 50000", "untie embeddings",
         "embedding LR 0.6 -> 0.9", "logit softcap 15 -> 30", "batch 2^19 -> 2^18", "QK-norm off",
         "sliding window SSSL -> SSLL", "Muon momentum 0.95 -> 0.97", "x0 scalars init 0.1")
ERRORS = (("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "oom"),
          ("FAIL: loss is nan at step 120", "nan"),
          ("RuntimeError: mat1 and mat2 shapes cannot be multiplied (64x512 and 768x512)", "shape"))


def _hex(rng: random.Random, digits: int = 40) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def _status_and_value(rng: random.Random, best: float, i: int) -> tuple[str, float | None]:
    roll = rng.random()
    if roll < 0.08:
        return "crash", None
    if roll < 0.085:
        return "discard", round(3 + 4 * rng.random(), 6)  # exploded run
    floor = 0.955 + 0.06 * math.exp(-i / 600)  # what the current code could reach; improves through the night
    value = round(floor + abs(rng.gauss(0, 0.012)), 6)
    if value < best:
        return "keep", value
    return ("keep" if rng.random() < 0.03 else "discard"), value  # the odd keep that is not a new best


def records(n: int, seed: int = 0, now: float | None = None, hostile: bool = False) -> list[dict]:
    """``n`` run records in ledger order."""
    rng = random.Random(seed)
    now = now or time.time()
    best, parent = 1.02, _hex(rng)
    out = []
    for i in range(n):
        status, value = _status_and_value(rng, best, i) if i else ("keep", best)
        stamp = now - (n - i) * 300 + 60
        commit = _hex(rng)
        out.append(_record(i, rng, stamp, commit, parent, status, value, best))
        if status == "keep":
            parent = commit
            best = min(best, value)
    if hostile:
        _inject(out)
    return out


def _record(i: int, rng: random.Random, stamp: float, commit: str, parent: str, status: str,
            value: float | None, best: float) -> dict:
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(stamp)) + f"-{commit[:7]}"
    error = None
    if status == "crash":
        summary, kind = rng.choice(ERRORS)
        error = {"summary": summary, "tail": summary, "source": "run.log", "kind": kind}
    action = {"keep": "promote" if value is not None and value < best else "replicate",
              "discard": "abandon", "crash": "fix_and_retry"}[status]
    return {
        "schema_version": 1, "record_type": "run", "run_id": run_id,
        "timestamp_utc": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + ".000000Z",
        "branch": "autoresearch/night", "commit": commit, "parent_commit": parent,
        "family": rng.choice(("optimizer", "architecture", "schedule")), "status": status, "mode": "explore",
        "description": f"{rng.choice(IDEAS)} (try {i})", "hypothesis": "should lower val_bpb", "tags": ["synthetic"],
        "notes": None, "metrics": {"val_bpb": value, "memory_gb": round(40 + 8 * rng.random(), 1)},
        "error": error, "artifacts": {}, "source": "native",
        "decision_packet": {"run_id": run_id, "status": status, "next_action": action,
                            "priority": "high" if status != "discard" else "low", "rule": "K2",
                            "rationale": f"{status}: synthetic rationale", "hypothesis_status": "supported",
                            "comparison": {"delta_val_bpb": None if value is None else round(value - best, 6)}},
    }


def _inject(recs: list[dict]) -> None:
    """Put a hostile payload into every user-visible field of a few runs, the champion included."""
    kept = [r for r in recs if r["status"] == "keep"]
    champion = min(kept, key=lambda r: r["metrics"]["val_bpb"])
    crash = next((r for r in reversed(recs) if r["status"] == "crash"), None)
    targets = [champion, recs[-1], recs[len(recs) // 2]] + ([crash] if crash else [])
    for k, rec in enumerate(targets):
        payload = HOSTILE[k % len(HOSTILE)]
        rec["description"] = f"{payload} desc {k}"
        rec["hypothesis"] = HOSTILE[(k + 1) % len(HOSTILE)]
        rec["notes"] = HOSTILE[(k + 2) % len(HOSTILE)]
        rec["tags"] = [HOSTILE[(k + 3) % len(HOSTILE)], "x</style><style>body{display:none}"]
        rec["family"] = HOSTILE[(k + 4) % len(HOSTILE)]
        rec["decision_packet"]["rationale"] = HOSTILE[(k + 5) % len(HOSTILE)]
        if rec["error"]:
            rec["error"]["summary"] = HOSTILE[(k + 6) % len(HOSTILE)]
    # Markup in run_id or commit never reaches a view: the schema refuses such lines (tests/test_schema.py).


def loss_curve(final: float, points: int = 120, seed: int = 0) -> list[dict]:
    """A sampled, smoothed training-loss curve ending near ``final`` (sidecar ``loss_curve`` shape)."""
    rng = random.Random(seed)
    curve = []
    for k in range(points):
        progress = k / (points - 1)
        loss = final * 3.1 + 6.5 * math.exp(-9 * progress) + rng.gauss(0, 0.01)
        curve.append({"step": k * 8, "progress": round(progress, 4), "loss": round(loss, 4),
                      "tokens_per_sec": 1.6e6})
    return curve


def write_store(root: Path, n: int, seed: int = 0, hostile: bool = False, curves: int = 6) -> Path:
    """Write the ledger and sidecars under ``root`` (the store root); returns ``root``."""
    recs = records(n, seed, hostile=hostile)
    (root / "runs").mkdir(parents=True, exist_ok=True)
    (root / "reports").mkdir(exist_ok=True)
    with open(root / "experiments.jsonl", "w", encoding="utf-8") as fh:
        for rec in recs:
            fh.write(json.dumps(rec, ensure_ascii=True, separators=(",", ":")) + "\n")
    measured = [r for r in recs if r["metrics"]["val_bpb"] is not None]
    champion = min((r for r in measured if r["status"] == "keep"), key=lambda r: r["metrics"]["val_bpb"])
    for k, rec in enumerate([champion] + measured[-curves:]):
        folder = root / "runs" / rec["run_id"]
        if "<" in rec["run_id"]:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        summary = {"status": "ok", "val_bpb": rec["metrics"]["val_bpb"],
                   "loss_curve": loss_curve(rec["metrics"]["val_bpb"], seed=k)}
        (folder / "summary.json").write_text(json.dumps(summary))
    return root
