# Session 4: criterion 4's suite (5x10, auto_advance, 40 epochs, 5 seeds of each arch) with twice the
# frames (200k instead of 100k; both archs' curves were still rising at 100k), from the frozen
# checkout /work/wt_s4 (training code of e63c6ca). Its own folder: the run names do not carry the
# budget, so these must not mix with the 100k runs of results/learning/. Lane e waits for the
# specialists lane (pid $2), lane f for the mixed lane (pid $2).
cd /work/wt_s4
git log -1 --format="suite code: %H"
OUT=/work/main/benchmarks/results/large_200k
run() { PYTHONPATH=/work/wt_s4 OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/compare_training.py --jobs 1 --out $OUT --suites large --large-lstm --frames 5x10=200000 "$@"; }
wait_for() { while kill -0 "$1" 2>/dev/null; do sleep 20; done; }
case "$1" in
  e) wait_for "$2"; run --seeds 3 --seed-start 0 ;;
  f) wait_for "$2"; run --seeds 2 --seed-start 3 ;;
esac
