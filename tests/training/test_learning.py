"""A short 1x3 run escapes wait-only: the transformer's SCORE (the unshaped objective, which PBRS
cannot inflate) beats wait-only and random on the same evaluation episodes after a fixed budget.
How often that happens over seeds is a benchmark (benchmarks/compare_training.py), not a test."""

import pytest
import torch

from torchrl_slots.training import EnvConfig, PPOConfig, RunOptions, train


@pytest.mark.slow
def test_transformer_beats_wait_and_random_on_score_1x3():
    torch.set_num_threads(2)
    res = train("transformer", EnvConfig(num_envs=16, rows=1, cols=3), None,
                PPOConfig(frames_per_batch=800, total_frames=32_000),
                options=RunOptions(seed=1, eval_episodes=128, eval_interval=100), log=None)
    score = res.final_eval["eval/score"]
    wait, random = res.baselines["wait"]["score"], res.baselines["random"]["score"]
    # Seed 1 left the wait-only plateau (normalized 0.02) at ~19k frames in the benchmark runs
    # (seed 0 only at ~45k: a fixed short budget needs a seed that escapes early). 1.0 is far
    # outside the noise of the 128-episode mean (se ~0.1); a wait-only policy scores exactly 0.
    assert score > wait + 1.0 and score > random + 1.0, (score, wait, random)
