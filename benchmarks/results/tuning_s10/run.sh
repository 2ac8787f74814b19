# Session 10 (2026-12-04): a cheaper transformer for criterion 7's wall part (<= 1.6x the LSTM per
# frame). bench_train.py (../bench_train_s10.json, same VM, side by side) put the default at 1.86x,
# num_layers=1 at 1.55x and num_layers=1 + ffn_dim=128 at 1.40x. Does either learn as well?
# 5 seeds each on 2x5 (100k frames, manual ADVANCE), from the frozen checkout /work/wt_s10,
# on a 2-core Intel Xeon VM with AMX, two 1-thread runs at a time.
set -e
WT=/work/wt_s10
test -d $WT || git -C /work/main worktree add -f $WT HEAD
cd $WT
git log -1 --format="suite code: %H"
run() { PYTHONPATH=$WT OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/compare_training.py \
    --jobs 2 --out /work/main/benchmarks/results/tuning_s10 "$@"; }
if [ -z "$1" ]; then
  run --suites main --grids 2x5 --seeds 5 --archs transformer --set policy.num_layers=1
  run --suites main --grids 2x5 --seeds 5 --archs transformer --set policy.num_layers=1,policy.ffn_dim=128
fi
# second round: PPOConfig.normalize_return (rewards / running std of the discounted return; value
# targets ~10 otherwise, with the critic sharing the trunk and max_grad_norm 0.5), both archs,
# 2x5 then 1x3, seeds 0-4, from the frozen checkout /work/wt_s10b (the commit that added it)
if [ "$1" = 2 ]; then
  WT=/work/wt_s10b
  test -d $WT || git -C /work/main worktree add -f $WT HEAD
  cd $WT
  git log -1 --format="suite code: %H"
  run() { PYTHONPATH=$WT OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/compare_training.py \
      --jobs 2 --out /work/main/benchmarks/results/tuning_s10 "$@"; }
  run --suites main --grids 2x5 --seeds 5 --set ppo.normalize_return=true
  run --suites main --grids 1x3 --seeds 5 --set ppo.normalize_return=true
fi
# third round: the compact transformer (1 block, 128-wide FFN: 0.91 +- 0.07 on 2x5 seeds 0-4, the
# default's 0.92 on the same seeds, at 1.40x the LSTM's wall per frame) on 2x5 seeds 5-9 and 1x3
# seeds 0-9 (same frozen checkout as round 1; the training code is that of round 2 with
# normalize_return off)
if [ "$1" = 3 ]; then
  run --suites main --grids 2x5 --seeds 5 --seed-start 5 --archs transformer --set policy.num_layers=1,policy.ffn_dim=128
  run --suites main --grids 1x3 --seeds 10 --archs transformer --set policy.num_layers=1,policy.ffn_dim=128
fi
# fourth round: seeds 10-19 on 2x5 for the three groups that decide criterion 3 and the compact
# model's collapse rate: the default transformer, the LSTM with 2 epochs (the stronger LSTM there)
# and the compact transformer; seeds 0-9 of the first two are ../speed_2x5/ and ../tuning_s9/.
# From the frozen checkout of round 2 (its training code with normalize_return off = the defaults).
if [ "$1" = 4 ]; then
  WT=/work/wt_s10b
  test -d $WT || git -C /work/main worktree add -f $WT d510888
  cd $WT
  git log -1 --format="suite code: %H"
  run() { PYTHONPATH=$WT OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/compare_training.py \
      --jobs 2 --out /work/main/benchmarks/results/tuning_s10 --suites main --grids 2x5 --seeds 5 "$@"; }
  for start in 10 15; do
    run --seed-start $start --archs transformer
    run --seed-start $start --archs lstm --set ppo.epochs=2
    run --seed-start $start --archs transformer --set policy.num_layers=1,policy.ffn_dim=128
  done
fi
# fifth round: the compact transformer on the other suites (5x10 auto-advance, 5 seeds; the mixed
# run, 1 seed, 400k frames; scaffolding off, 3 seeds), two lanes of one job each; the mixed run
# and scaffolding in ../tuning_s10_mixed/ so that two processes never write one folder's logs
if [ "$1" = 5 ]; then
  WT=/work/wt_s10b
  cd $WT
  git log -1 --format="suite code: %H"
  C=policy.num_layers=1,policy.ffn_dim=128
  lane() { PYTHONPATH=$WT OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/compare_training.py --jobs 1 \
      --archs transformer --set $C "$@"; }
  lane --out /work/main/benchmarks/results/tuning_s10 --suites large --seeds 5 &
  (lane --out /work/main/benchmarks/results/tuning_s10_mixed --suites mixed --seeds 1 &&
   lane --out /work/main/benchmarks/results/tuning_s10_mixed --suites scaffolding --seeds 3) &
  wait
fi
