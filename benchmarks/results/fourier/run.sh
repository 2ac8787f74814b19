# Session 5: the transformer with Fourier positions (policy.positional=fourier) on the main suite
# (1x3 80k and 2x5 100k frames, manual ADVANCE), from the frozen checkout /work/wt_s5 (commit printed
# below), one torch thread per lane, two lanes at a time. The 5x10 runs (criterion 4) were made by
# run_5x10.sh and moved here. The learned-position runs of the same seeds are in
# ../learning/.
cd /work/wt_s5
git log -1 --format="suite code: %H"
OUT=/work/main/benchmarks/results/fourier
run() { PYTHONPATH=/work/wt_s5 OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/compare_training.py --jobs 1 --out $OUT --archs transformer --set policy.positional=fourier "$@"; }
wait_for() { while kill -0 "$1" 2>/dev/null; do sleep 20; done; }
case "$1" in
  a) wait_for "$2"; run --suites main --grids 1x3 --seeds 5 --seed-start 0; run --suites main --grids 2x5 --seeds 5 --seed-start 5 ;;
  b) run --suites main --grids 2x5 --seeds 5 --seed-start 0; run --suites main --grids 1x3 --seeds 5 --seed-start 5 ;;
esac
