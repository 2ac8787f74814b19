# Session 8 (2026-12-03): can the flat LSTM reach criterion 3's 0.85 on 2x5 at 100k frames with
# other PPO settings? 5 seeds per variant, LSTM only, from the frozen checkout /work/wt_s8
# (speed_2x5/run.sh made it; training code of b363f11), on the Intel VM, two 1-thread runs at
# a time. The defaults' 10 seeds on this machine are in ../speed_2x5/ (0.74 +- 0.18).
set -e
cd /work/wt_s8
run() { PYTHONPATH=/work/wt_s8 OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/compare_training.py --suites main \
    --archs lstm --grids 2x5 --seeds 5 --seed-start 0 --jobs 2 --out /work/main/benchmarks/results/lstm_tuning "$@"; }
[ "$1" = 2 ] || run --set ppo.lr=0.001
[ "$1" = 2 ] || run --set ppo.epochs=8
# second round (after lr 1e-3 gave 0.62 and 8 epochs 0.30 against the defaults' 0.82 on seeds 0-4)
if [ "$1" = 2 ]; then run --set policy.feature_dim=256; run --set ppo.minibatches=8; fi
