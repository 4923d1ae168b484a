#!/usr/bin/env bash
# GPU device check for the training side (issue 15): on one lent H100/H200 with NO network,
# prepare a local corpus (the installed .py files) for the gpu profile, train for a short budget, and print
# tokens/s, MFU, peak memory, val_bpb, and torch.compile's recompiles and graph breaks (TORCH_LOGS;
# expected: 0 graph breaks; recompiles only for the model's eval graph and new parameter shapes). Designed to finish
# within 8 minutes wall clock.
#
#   bash benchmarks/gpu_check.sh                 # on the GPU machine, from the repo root
#   GPU_CHECK_BUDGET=90 bash benchmarks/gpu_check.sh
#   GPU_CHECK_TESTS=1 bash benchmarks/gpu_check.sh   # also run the @pytest.mark.gpu tests first
#   GPU_CHECK_ALLOW_CPU=1 AUTORESEARCH_PROFILE=cpu GPU_CHECK_BUDGET=5 bash benchmarks/gpu_check.sh
#                                                # dry run of the same steps on a CPU machine
#
# Needs a Python with torch (CUDA build), numpy, pyarrow, rustbpe, tiktoken already installed
# ($PYTHON, default python3): nothing is downloaded. Everything it writes goes to a fresh temp dir
# ($GPU_CHECK_DIR), so it never touches ~/.cache/autoresearch. The numbers come from a shortened
# budget: they are a throughput/health check, not a result comparable with 300 s runs.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET:-60}
WORK=${GPU_CHECK_DIR:-$(mktemp -d /tmp/gpu-check.XXXXXX)}
export AUTORESEARCH_PROFILE=${AUTORESEARCH_PROFILE:-gpu}
export AUTORESEARCH_CACHE="$WORK/cache"
export AUTORESEARCH_SOURCE=local
export PYTHONUNBUFFERED=1
T0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - T0 ))s"; }

echo "gpu_check: work dir $WORK, profile $AUTORESEARCH_PROFILE, budget ${BUDGET}s"
"$PYTHON" - <<'PY'
import importlib, os, sys
missing = [m for m in ("torch", "numpy", "pyarrow", "rustbpe", "tiktoken") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_check: error: {sys.executable} lacks {', '.join(missing)} (this check installs nothing)")
import torch
if not torch.cuda.is_available() and os.environ.get("GPU_CHECK_ALLOW_CPU") != "1":
    sys.exit(f"gpu_check: error: torch {torch.__version__} sees no CUDA device (set GPU_CHECK_ALLOW_CPU=1 for a dry run)")
name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
print(f"gpu_check: python {sys.version.split()[0]}, torch {torch.__version__}, device {name}")
PY
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv,noheader || true
"$PYTHON" prepare.py --print-profile

if [ "${GPU_CHECK_TESTS:-0}" = "1" ]; then
    echo "gpu_check: gpu-marked tests [$(elapsed)]"
    timeout 240 "$PYTHON" -m pytest -q -m gpu tests/test_train.py -p no:cacheprovider
fi

# The python-corpus (the standard library, ~3M tokens) is smaller than one gpu-profile eval batch's
# share of a val split, so the check trains on a local corpus of the .py files this Python has
# installed (torch's own among them), copied as .txt documents: offline, and big enough.
echo "gpu_check: build a local corpus from site-packages [$(elapsed)]"
"$PYTHON" - "$WORK/corpus" <<'PY'
import os, sys, sysconfig
out, n, size = sys.argv[1], 0, 0
os.makedirs(out, exist_ok=True)
for dirpath, dirnames, filenames in os.walk(sysconfig.get_paths()["purelib"]):
    dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
    for fn in sorted(filenames):
        path = os.path.join(dirpath, fn)
        if fn.endswith(".py") and 0 < os.path.getsize(path) <= 500_000 and size < 60_000_000:
            try:
                text = open(path, encoding="utf-8").read()
            except (UnicodeDecodeError, OSError):
                continue
            with open(os.path.join(out, f"{n:06d}.txt"), "w", encoding="utf-8") as f:
                f.write(text)
            n, size = n + 1, size + len(text)
print(f"gpu_check: {n} files, {size / 1e6:.1f}M chars")
PY
timeout 240 "$PYTHON" prepare.py --source local --data-dir "$WORK/corpus"

echo "gpu_check: train for ${BUDGET}s [$(elapsed)]"
SUMMARY="$WORK/summary.json"
set +e
TORCH_LOGS="recompiles,graph_breaks" AUTORESEARCH_TIME_BUDGET=$BUDGET AUTORESEARCH_SUMMARY_PATH=$SUMMARY \
    timeout 330 "$PYTHON" train.py > "$WORK/train.log" 2>&1
RC=$?
set -e
tr '\r' '\n' < "$WORK/train.log" | grep -E '^step' | awk 'NR % 25 == 1' | tail -n 12 || true
tr '\r' '\n' < "$WORK/train.log" | grep -v -E '^step' | tail -n 25
BREAKS=$(grep -c -i "graph break" "$WORK/train.log" || true)
RECOMPILES=$(grep -c "Recompiling function" "$WORK/train.log" || true)
echo "gpu_check: graph_breaks     $BREAKS"
echo "gpu_check: recompiles       $RECOMPILES (expected: the model's eval graph, and the optimizer steps once per new parameter shape)"
grep -i -E "graph break|Recompiling function|triggered by|guard" "$WORK/train.log" | head -n 12 || true
if [ ! -f "$SUMMARY" ]; then
    echo "gpu_check: error: train.py exited $RC without a summary (log: $WORK/train.log)" >&2
    exit 1
fi
"$PYTHON" - "$SUMMARY" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
mfu = "n/a (device not in GPU_TABLE)" if s.get("mfu_percent") is None else f"{s['mfu_percent']:.2f}%"
print("gpu_check: ---")
for label, value in [("status", s["status"]), ("device", s.get("device_name")), ("device_class", s.get("device_class")),
                     ("data_id", s.get("data_id")), ("tokens_per_sec", s.get("tokens_per_sec")), ("mfu", mfu),
                     ("peak_vram_mb", s.get("peak_vram_mb")), ("val_bpb", s.get("val_bpb")),
                     ("eval_tokens", s.get("eval_tokens")), ("num_steps", s.get("num_steps")),
                     ("training_seconds", s.get("training_seconds")), ("total_seconds", s.get("total_seconds")),
                     ("contention", s.get("contention")), ("error", s.get("error"))]:
    if value is not None:
        print(f"gpu_check: {label:16s} {value}")
sys.exit(0 if s["status"] == "ok" else 1)
PY
echo "gpu_check: done in $(elapsed) (train.py exit $RC)"
exit $RC
