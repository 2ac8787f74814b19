# Session 4: the 10th 2x5 seed of the main suite and criterion 5 (scaffolding off, 3 seeds) under the
# late entropy schedule default, from a frozen checkout (/work/wt_s4 at the commit below, training code
# identical to e63c6ca). Two lanes, one torch thread each.
cd /work/wt_s4
git log -1 --format="suite code: %H"
OUT=/work/main/benchmarks/results/learning
run() { PYTHONPATH=/work/wt_s4 OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/compare_training.py --jobs 1 --out $OUT "$@"; }
lane_a() {
  run --suites main --grids 2x5 --seeds 1 --seed-start 9
  run --suites scaffolding --seeds 1 --seed-start 2
}
lane_b() {
  run --suites scaffolding --seeds 2 --seed-start 0
}
case "$1" in a) lane_a ;; b) lane_b ;; *) lane_a & lane_b & wait ;; esac
