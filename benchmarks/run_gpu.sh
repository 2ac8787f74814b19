#!/usr/bin/env bash
# The GPU benchmark in one call, for a session that is lent a device (see benchmarks/README.md,
# "On a lent GPU (one call)"). Writes benchmarks/results/benchmark_architectures_cuda*.{json,md}
# (the JSON names the GPU) and a log, benchmarks/results/run_gpu_cuda.log.
# Usage: bash benchmarks/run_gpu.sh (it runs from the repo root)
#   here: .venv/bin/python is used if .venv exists (it needs a CUDA torch);
#   on the lent machine: PY=python3 (its torch 2.11 + cu130), torchrl/tensordict from carried wheels.
# Overrides: R=DIR writes the results and the log there (R=$OUT on the lent machine: only $OUT comes
# back); for a CPU smoke test of this script: DEVICE=cpu R=/tmp/out BENCH_ARGS="--iterations 1 ...".
set -euo pipefail
cd "$(dirname "$0")/.."
# torchrl_slots from this checkout (no compiled parts), also where it is not pip-installed
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
DEVICE=${DEVICE:-cuda}
R=${R:-benchmarks/results}
BENCH_ARGS=${BENCH_ARGS:-}
B=benchmarks/benchmark_architectures.py
mkdir -p "$R"
LOG=$R/run_gpu_$DEVICE.log
export PYTHONUNBUFFERED=1

main() {
  echo "run_gpu.sh $(date -u +%FT%TZ) PY=$PY DEVICE=$DEVICE"
  $PY - "$DEVICE" <<'EOF'
import sys, torch, tensordict, torchrl, torchrl_slots
print(f"python {sys.version.split()[0]}, torch {torch.__version__} (cuda {torch.version.cuda}), "
      f"torchrl {torchrl.__version__}, tensordict {tensordict.__version__}, torchrl_slots {torchrl_slots.__file__}")
if sys.argv[1].startswith("cuda"):
    assert torch.cuda.is_available(), "no CUDA device"
    print("GPU:", torch.cuda.get_device_name(), torch.cuda.get_device_properties(0).total_memory // 2**20, "MiB")
EOF
  t0=$SECONDS
  # default mode (chunk_rows=None is the GPU setting: one pass over all B*T rows), memory-lean modes, reference
  # shellcheck disable=SC2086
  $PY $B --device "$DEVICE" --threads 4 --archs lstm,transformer --slots 3,10,25,50 --iterations 10 --warmup 3 \
    --reference --no-compile \
    --variant gpu:chunk_rows=none \
    --variant bf16:chunk_rows=none,autocast=bf16 \
    --variant ckpt256:checkpoint_chunk=256,key_dim=32 \
    --variant ckpt256_bf16:checkpoint_chunk=256,key_dim=32,autocast=bf16 \
    --variant ckpt64_bf16:checkpoint_chunk=64,key_dim=32,autocast=bf16 \
    $BENCH_ARGS \
    --json "$R/benchmark_architectures_$DEVICE.json" --markdown "$R/benchmark_architectures_$DEVICE.md"
  echo "main table: $((SECONDS - t0)) s"
  t1=$SECONDS
  # shellcheck disable=SC2086
  $PY $B --device "$DEVICE" --threads 4 --archs lstm,transformer --slots 10,50 --enabled-slots 10 --iterations 10 \
    --warmup 3 --no-compile \
    --variant gpu:chunk_rows=none \
    $BENCH_ARGS \
    --json "$R/benchmark_architectures_${DEVICE}_enabled10.json" \
    --markdown "$R/benchmark_architectures_${DEVICE}_enabled10.md"
  echo "enabled10 table: $((SECONDS - t1)) s; total $((SECONDS - t0)) s"
}

main 2>&1 | tee "$LOG"
