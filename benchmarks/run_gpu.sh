#!/usr/bin/env bash
# The GPU benchmark in one call, for a session that is lent a device (see benchmarks/README.md).
# Writes benchmarks/results/benchmark_architectures_cuda*.{json,md}; the JSON names the GPU.
# Usage (repo root, with a CUDA torch in .venv): bash benchmarks/run_gpu.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
B=benchmarks/benchmark_architectures.py
R=benchmarks/results
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
# default mode (chunk_rows=None is the GPU setting: one pass over all B*T rows), memory-lean modes, reference
$PY $B --device cuda --archs lstm,transformer --slots 3,10,25,50 --iterations 10 --warmup 3 --reference --no-compile \
  --variant gpu:chunk_rows=none \
  --variant bf16:chunk_rows=none,autocast=bf16 \
  --variant ckpt256:checkpoint_chunk=256,key_dim=32 \
  --variant ckpt256_bf16:checkpoint_chunk=256,key_dim=32,autocast=bf16 \
  --variant ckpt64_bf16:checkpoint_chunk=64,key_dim=32,autocast=bf16 \
  --json $R/benchmark_architectures_cuda.json --markdown $R/benchmark_architectures_cuda.md
$PY $B --device cuda --archs lstm,transformer --slots 10,50 --enabled-slots 10 --iterations 10 --warmup 3 --no-compile \
  --variant gpu:chunk_rows=none \
  --json $R/benchmark_architectures_cuda_enabled10.json --markdown $R/benchmark_architectures_cuda_enabled10.md
