"""Fixed-work cpu-profile step benchmark of two train.py checkouts (issue 15), alternating runs.

    python benchmarks/train_step_bench.py DIR_OLD DIR_NEW [--steps 40] [--rounds 3]

Each round runs, in a fresh subprocess per checkout, the cpu profile's model (vocab 4096, the
checkout's own constants) for --steps optimizer steps of DEVICE_BATCH_SIZE x 256 random tokens,
after 3 warm-up steps, exactly as train.py's loop does them (forward, backward, optimizer step,
zero_grad). The new checkout's start-up malloc tuning is applied if it has one. Prints per step:
wall ms, process CPU ms, minor page faults, system-time ms; and tokens/s. CPU time and page faults
hardly depend on other load on the machine, so they show the allocator effect even on a busy host.
"""

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, os, resource, sys, time
os.environ["AUTORESEARCH_PROFILE"] = "cpu"
sys.path.insert(0, os.getcwd())
import torch, train, prepare
# malloc tuning lives in prepare.py since issue 22 (train.py before it; neither before issue 15)
tune = getattr(train, "tune_glibc_malloc", None) or getattr(prepare, "tune_glibc_malloc", None)
tuned = tune() if tune else None
torch.manual_seed(0)
V, T, B = 4096, 256, train.DEVICE_BATCH_SIZE
dim = -(-train.DEPTH * train.ASPECT_RATIO // train.HEAD_DIM) * train.HEAD_DIM
cfg = train.GPTConfig(sequence_len=T, vocab_size=V, n_layer=train.DEPTH, n_head=dim // train.HEAD_DIM,
                      n_embd=dim, window_pattern=train.WINDOW_PATTERN)
model = train.GPT(cfg); model.init_weights(); opt = train.setup_optimizer(model)
def step():
    x = torch.randint(0, V, (B, T)); y = torch.randint(0, V, (B, T))
    model(x, y).backward(); opt.step(); model.zero_grad(set_to_none=True)
for _ in range(3):
    step()
r0 = resource.getrusage(resource.RUSAGE_SELF); t0 = time.time(); c0 = time.process_time()
for _ in range(STEPS):
    step()
wall = time.time() - t0; cpu = time.process_time() - c0; r1 = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps(dict(wall_ms=1000 * wall / STEPS, cpu_ms=1000 * cpu / STEPS,
                      minflt=(r1.ru_minflt - r0.ru_minflt) / STEPS, sys_ms=1000 * (r1.ru_stime - r0.ru_stime) / STEPS,
                      tok_s=B * T * STEPS / wall, threads=torch.get_num_threads(), malloc_tuned=tuned)))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    for r in range(args.rounds):
        for label, d in (("old", args.old), ("new", args.new)):
            load = os.getloadavg()[0]
            out = subprocess.run([sys.executable, "-c", CHILD.replace("STEPS", str(args.steps))], cwd=d, env=env,
                                 capture_output=True, text=True, check=True).stdout
            m = json.loads(out.strip().splitlines()[-1])
            print(f"round {r} {label}: {m['tok_s']:.0f} tok/s, wall {m['wall_ms']:.0f} ms/step, cpu "
                  f"{m['cpu_ms']:.0f} ms/step, sys {m['sys_ms']:.0f} ms/step, minor faults {m['minflt']:.0f}/step "
                  f"(threads {m['threads']}, malloc tuned {m['malloc_tuned']}, load {load:.2f})", flush=True)


if __name__ == "__main__":
    main()
