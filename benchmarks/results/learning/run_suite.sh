# The learning suite runs from a frozen checkout (/work/wt_suite at the commit below), so merges into
# /work/main during the run cannot change the code under it; results go to main's results folder.
cd /work/wt_suite
git log -1 --format="suite code: %H" 
OUT=/work/main/benchmarks/results/learning
run() { PYTHONPATH=/work/wt_suite OMP_NUM_THREADS=1 nice -n -5 /work/main/.venv/bin/python benchmarks/compare_training.py --suites main --jobs 2 --out $OUT "$@"; }
run --grids 1x3 --seeds 5 --seed-start 0
run --grids 2x5 --seeds 5 --seed-start 0
run --grids 1x3 --seeds 5 --seed-start 5
run --grids 2x5 --seeds 5 --seed-start 5
