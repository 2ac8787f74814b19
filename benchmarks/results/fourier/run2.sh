# Session 5, phase 2 (after run.sh): with Fourier positions, criterion 4's suite at 200k frames
# (results/fourier_200k/: run names do not carry the budget) and criterion 5's scaffolding-off suite
# (transformer only; the LSTM's runs are in ../learning/) and criterion 6's specialists. 200k: seeds 0-3
# only (the session's time). Frozen checkout /work/wt_s5, one torch
# thread per lane, two lanes. Lane c waits for lane a (pid $2), lane d for lane b (pid $2).
cd /work/wt_s5
git log -1 --format="suite code: %H"
run() { PYTHONPATH=/work/wt_s5 OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/compare_training.py --jobs 1 --set policy.positional=fourier "$@"; }
big() { run --out /work/main/benchmarks/results/fourier_200k --suites large --frames 5x10=200000 --seeds 1 --seed-start "$1"; }
wait_for() { while kill -0 "$1" 2>/dev/null; do sleep 20; done; }
case "$1" in
  c) wait_for "$2"; big 0; big 2; run --out /work/main/benchmarks/results/fourier --suites specialists --seeds 1 ;;
  d) wait_for "$2"; big 1; big 3; run --out /work/main/benchmarks/results/fourier --suites scaffolding --archs transformer --seeds 3
     # the LSTM on 2x5 on this machine, beside lane c's transformer runs: criterion 7's wall-time ratio
     PYTHONPATH=/work/wt_s5 OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/compare_training.py --jobs 1 --out /work/main/benchmarks/results/fourier --suites main --grids 2x5 --archs lstm --seeds 2 ;;
esac
