# Session 9 (2026-12-03): PPO settings that do LESS per batch, 5 seeds each on 2x5 (100k frames,
# manual ADVANCE), from the frozen checkout /work/wt_s9 (training code of b363f11 + f5e7cd7),
# on the 2-core Intel Xeon VM with AMX, two 1-thread runs at a time.
# - LSTM with 2 epochs and with lr 1.5e-4: session 8's lstm_tuning found every setting that does
#   MORE per batch (lr 1e-3, 8 epochs, 8 minibatches) worse than the defaults; criterion 3 needs
#   the LSTM at 0.85 on 2x5.
# - transformer with 3 epochs: 3/4 of the update's arithmetic, which is what puts its wall time
#   per frame at 1.83-1.89x the LSTM's (criterion 7: <= 1.6x).
# The defaults on the same seeds, same machine: ../speed_2x5/ (seeds 0-4 of its 10).
set -e
WT=/work/wt_s9
test -d $WT || git -C /work/main worktree add -f $WT HEAD
cd $WT
git log -1 --format="suite code: %H"
run() { PYTHONPATH=$WT OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/compare_training.py --suites main \
    --grids 2x5 --seeds 5 --seed-start 0 --jobs 2 --out /work/main/benchmarks/results/tuning_s9 "$@"; }
run --archs lstm --set ppo.epochs=2
run --archs transformer --set ppo.epochs=3
# not run: stopped before it started, to give the CPU to ../epochs2/ (2 epochs for both archs)
# run --archs lstm --set ppo.lr=0.00015
