# Session 4, second half: criterion 6 under the late entropy schedule default, from the same frozen
# checkout as run_suite3.sh. Lane c waits for lane a, lane d for lane b (pids given).
# The mixed run gets 400k frames, the sum of its four grids' specialist budgets (80k + 3 x 100k,
# rounded up): one run that must serve four grids is not starved against four runs of one grid each.
cd /work/wt_s4
git log -1 --format="suite code: %H"
OUT=/work/main/benchmarks/results/learning
run() { PYTHONPATH=/work/wt_s4 OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/compare_training.py --jobs 1 --out $OUT "$@"; }
wait_for() { while kill -0 "$1" 2>/dev/null; do sleep 20; done; }
case "$1" in
  c) wait_for "$2"; run --suites mixed --seeds 1 --frames mixed=400000 ;;
  d) wait_for "$2"; run --suites specialists --seeds 1 ;;
esac
