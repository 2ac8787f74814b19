#!/bin/bash
# A/B of two checkouts ($1 old, $2 new): bench_env.bench_host medians, interleaved; run with the training jobs stopped (SIGSTOP).
# A/B host step timing: $1 = old tree, $2 = new tree
for rep in 1 2 3; do for tree in "$1" "$2"; do
  for pol in heuristic random; do
    echo -n "$(basename $tree) $pol "; (cd $tree && PYTHONPATH=$tree OMP_NUM_THREADS=1 /work/main/.venv/bin/python -c "
import sys; sys.path.insert(0, 'benchmarks'); import torch; torch.set_num_threads(1)
from bench_env import bench_host
r = bench_host(16, 10, 100, '$pol'); print(round(r['step_ms_median'], 1))" 2>&1 | tail -1)
  done; done; done
