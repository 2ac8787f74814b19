# Session 2: the suites of criteria 4-6, from a frozen checkout (/work/wt_suite at the commit below,
# bit-identical in training to cd206b9, the code of the main suite). Two lanes, one torch thread each.
cd /work/wt_suite
git log -1 --format="suite code: %H"
OUT=/work/main/benchmarks/results/learning
run() { PYTHONPATH=/work/wt_suite OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/compare_training.py --jobs 1 --out $OUT "$@"; }
lane_a() {  # criterion 4: 5x10, auto_advance, 40 epochs, 5 seeds of each arch
  run --suites large --large-lstm --seeds 5
}
lane_b() {  # criterion 5 (scaffolding off, 3 seeds), then criterion 6 (mixed run and specialists, 1 seed)
  run --suites scaffolding --seeds 3
  run --suites mixed --seeds 1
  run --suites specialists --seeds 1
}
case "$1" in a) lane_a ;; b) lane_b ;; *) lane_a & lane_b & wait ;; esac
