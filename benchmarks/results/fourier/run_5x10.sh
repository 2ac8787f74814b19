# (moved here from results/large_variants/ in session 5; its runs are in ./runs)
# Session 5: screening transformer variants for criterion 4 (5x10, auto_advance, 40 epochs, 100k
# frames), from the frozen checkout /work/wt_s5 (the commit printed below). Each lane is one torch
# thread; at most two lanes at a time. Defaults at 100k for the same seeds are in results/learning/.
cd /work/wt_s5
git log -1 --format="suite code: %H"
OUT=/work/main/benchmarks/results/large_variants
run() { PYTHONPATH=/work/wt_s5 OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/compare_training.py --jobs 1 --out $OUT --suites large "$@"; }
case "$1" in
  fourier) run --set policy.positional=fourier --seeds 1 --seed-start "$2" ;;
  *) run --set "$1" --seeds 1 --seed-start "$2" ;;
esac
