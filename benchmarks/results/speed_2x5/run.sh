# Session 8 (2026-12-03): the main suite's 2x5 cell again, 10 seeds of each arch, all 20 runs on
# ONE machine and boot (a 2-core Intel Xeon VM with AMX), two 1-thread runs at a time, from a
# frozen checkout of the training code after the speed work of b363f11 (explicit attention
# below 16 tokens, shifted GAE, fused Adam). Two purposes: criterion 7's wall ratio from runs
# that compare_training.py may divide (same machine, same boot), and a check that the speed
# work (same values up to float rounding, but not bit for bit) left learning where it was
# (../learning/: transformer 0.92 +- 0.10, LSTM 0.78 +- 0.12 on the same seeds).
set -e
WT=/work/wt_s8
test -d $WT || git -C /work/main worktree add -f $WT HEAD
cd $WT
git log -1 --format="suite code: %H"
PYTHONPATH=$WT OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/compare_training.py --suites main \
    --grids 2x5 --seeds 10 --seed-start 0 --jobs 2 --out /work/main/benchmarks/results/speed_2x5
