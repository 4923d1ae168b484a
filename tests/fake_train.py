#!/usr/bin/env python3
"""A stand-in for train.py in tests of ``memorylab run`` / ``replicate``: same env vars, same outputs.

It prints ``run_token:``/``seed:`` lines, a few ``\\r``-separated step lines and upstream's summary
block, and writes the JSON sidecar to ``$AUTORESEARCH_SUMMARY_PATH`` (atomically), like train.py.
``--mode`` picks the behaviour under test:

  ok           finish normally (default)
  crash        raise after the first step; the sidecar says ``status: crash``
  noval        exit 0 without a summary block or sidecar
  nan          finish with val_bpb NaN
  killed       SIGKILL itself after the first steps (the machine's kill: OOM killer, pre-emption)
  hang         never finish
  ignore-term  ignore SIGTERM, then never finish (only SIGKILL stops it)
  spawn-hang   start a grandchild that sleeps, then never finish
  spawn-exit   start a grandchild that sleeps, then finish normally (a straggler)

``--pidfile`` gets this process's pid (and the grandchild's); ``--ready`` is created once running.

Programmable curves (the early abort's tests): ``--curve '[[0, 8.0], [0.5, 5.0], [1, 4.0]]'`` prints
``--steps`` step lines in train.py's format, the loss interpolated between the knots at progress
``i / steps``, ``--step-sleep`` seconds apart, at ``--tps`` tokens/s and lr multiplier ``--lrm``, after a
``parameters: N`` line (``--params``); the sidecar's ``loss_curve`` holds the same points. ``--sidecar-extra`` (JSON) is
merged into the sidecar (e.g. the comparability fields of an arena).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def write_sidecar(data: dict) -> None:
    path = os.environ.get("AUTORESEARCH_SUMMARY_PATH")
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh, allow_nan=True)
    os.replace(tmp, path)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", default="ok")
    p.add_argument("--val", type=float, default=1.0)
    p.add_argument("--val-by-seed", default="{}", help='JSON {"seed": val} overriding --val')
    p.add_argument("--mem", type=float, default=1024.0, help="peak_vram_mb")
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--pidfile")
    p.add_argument("--ready")
    p.add_argument("--curve", help="JSON list of [progress, loss] knots: print step lines along it")
    p.add_argument("--steps", type=int, default=20, help="step lines printed along --curve")
    p.add_argument("--step-sleep", type=float, default=0.0, help="seconds between step lines along --curve")
    p.add_argument("--tps", type=float, default=6500.0, help="tokens/s printed on the step lines of --curve")
    p.add_argument("--params", type=int, default=3_400_000, help="the parameters: line printed before --curve")
    p.add_argument("--lrm", type=float, default=1.0, help="the lr multiplier printed on the step lines of --curve")
    p.add_argument("--sidecar-extra", default="{}", help="JSON object merged into the sidecar")
    p.add_argument("--extra-by-call", help="JSON file with a list of dicts: call i merges entry i into its sidecar "
                                           "(the call count is kept in FILE.n); an entry's val_bpb is the run's "
                                           "result, its mode ('crash') how the call ends")
    p.add_argument("--error", default="RuntimeError: fake failure at step 3", help="the crash's error line")
    return p.parse_args()


def extra_fields(path: str | None) -> dict:
    """This call's extra sidecar fields (``--extra-by-call``), counting calls in ``path + '.n'``."""
    if not path:
        return {}
    counter = Path(path + ".n")
    call = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(call + 1))
    entries = json.loads(Path(path).read_text())
    return entries[call] if call < len(entries) else {}


def loss_on(knots: list, progress: float) -> float:
    """The loss at ``progress`` on the polyline through ``knots`` ([[progress, loss], ...], sorted)."""
    for (x0, y0), (x1, y1) in zip(knots, knots[1:], strict=False):
        if x0 <= progress <= x1:
            return y0 + (y1 - y0) * (progress - x0) / ((x1 - x0) or 1.0)
    return knots[-1][1]


def print_curve(args: argparse.Namespace) -> list[dict]:
    """Step lines along ``--curve`` in train.py's format; returns the sidecar's loss_curve points."""
    knots = json.loads(args.curve)
    print(f"parameters: {args.params:,} (embedding 0, value embeddings 0)", flush=True)
    points = []
    for step in range(args.steps):
        progress = step / args.steps
        loss = loss_on(knots, progress)
        points.append({"step": step, "progress": round(progress, 5), "loss": round(loss, 6), "lrm": args.lrm,
                       "tokens_per_sec": args.tps})
        print(f"\rstep {step:05d} ({100 * progress:.1f}%) | loss: {loss:.6f} | lrm: {args.lrm:.2f} | dt: 10ms | "
              f"tok/sec: {args.tps:,.0f} | mfu: n/a | epoch: 1 | remaining: 1s    ", end="", flush=True)
        time.sleep(args.step_sleep)
    return points


def main() -> int:
    args = parse_args()
    token = os.environ.get("AUTORESEARCH_RUN_TOKEN", "no-token")
    seed = int(os.environ.get("AUTORESEARCH_SEED", "42"))
    pids = [os.getpid()]
    if args.mode.startswith("spawn"):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        pids.append(child.pid)
    if args.pidfile:
        Path(args.pidfile).write_text(" ".join(map(str, pids)))
    if args.mode == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"run_token: {token}")
    print(f"seed: {seed}", flush=True)
    if args.ready:
        Path(args.ready).write_text("ready")
    curve = print_curve(args) if args.curve else []
    if not args.curve:
        for step in range(3):
            print(f"\rstep {step:05d} ({step * 33.3:.1f}%) | loss: {9.0 - step:.6f}", end="", flush=True)
    print()
    if args.mode in ("hang", "ignore-term", "spawn-hang"):
        while True:
            time.sleep(0.1)
    time.sleep(args.sleep)
    base = {"run_token": token, "seed": seed, "device": "cpu", "profile": "cpu"}
    extra = extra_fields(args.extra_by_call)
    mode = extra.pop("mode", args.mode)
    if mode == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "crash":
        write_sidecar({**base, "status": "crash", "error": args.error, **extra})
        print("Traceback (most recent call last):")
        print(args.error, flush=True)
        return 1
    if args.mode == "noval":
        return 0
    val = extra.pop("val_bpb", json.loads(args.val_by_seed).get(str(seed), args.val))
    if args.mode == "nan":
        val = math.nan
    print("---")
    print(f"val_bpb:          {val:.6f}")
    print(f"peak_vram_mb:     {args.mem:.1f}")
    print("num_steps:        3")
    write_sidecar({**base, "status": "ok", "val_bpb": val, "peak_vram_mb": args.mem, "num_steps": 3,
                   "training_seconds": 0.1, "loss_curve": curve, **json.loads(args.sidecar_extra), **extra})
    return 0


if __name__ == "__main__":
    sys.exit(main())
