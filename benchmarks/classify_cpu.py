"""CPU time of the novelty guard's ``classify`` on a 20,000-run synthetic history, for A/B comparisons of two
checkouts on a busy machine (process time, not wall time): ``python benchmarks/classify_cpu.py CHECKOUT``.

300 proposals (``novelty_eval.timing_proposals``): 150 descriptions of earlier runs (knob moves, free text) and
150 new free-text ideas. A CHECKOUT older than that function (round 3 session 10) needs it copied in first."""

import statistics
import sys
import time

root = sys.argv[1] if len(sys.argv) > 1 else "."
sys.path[:0] = [root, root + "/benchmarks"]

import novelty_eval as ne  # noqa: E402  (from the checkout named above)

from memorylab_core.novelty.guard import NoveltyIndex  # noqa: E402

runs = ne.synthetic_runs(20_000)
index = NoveltyIndex()
for run in runs:
    index.add(run)
cpu_ms = []
for proposal in ne.timing_proposals(runs, 300):
    start = time.process_time()
    index.classify(proposal, runs)
    cpu_ms.append((time.process_time() - start) * 1000)
cpu_ms.sort()
print(f"classify CPU ms over {len(cpu_ms)} proposals: median {statistics.median(cpu_ms):.2f}, "
      f"p90 {cpu_ms[int(0.9 * len(cpu_ms))]:.2f}, mean {statistics.mean(cpu_ms):.2f}")
