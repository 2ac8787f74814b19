"""The Ray collector path (for users who outgrow one machine) really runs: 2 workers, a few
batches, the same metrics as the sync collector. Needs the ``ray`` extra (``make test`` installs
it); it starts a local Ray cluster, so it takes tens of seconds."""

import math

import pytest

from torchrl_slots.policy import PolicyConfig
from torchrl_slots.training import EnvConfig, PPOConfig, RunOptions, load_training_checkpoint, train

ray = pytest.importorskip("ray", reason="the Ray collector needs the 'ray' extra: pip install 'torchrl_slots[ray]'")

TINY = PolicyConfig(embed_dim=8, num_heads=2, num_layers=1, ffn_dim=16, feature_dim=8, lstm_hidden=8, key_dim=8)


def test_ray_collector_two_workers_runs_batches_with_the_sync_metrics(tmp_path):
    env, ppo = EnvConfig(num_envs=4), PPOConfig(frames_per_batch=40, total_frames=120, minibatches=2, epochs=1)
    common = dict(eval_episodes=2, eval_interval=1, checkpoint_interval=1)
    sync = train("transformer", env, TINY, ppo, options=RunOptions(**common), log=None)
    try:
        res = train("transformer", env, TINY, ppo, options=RunOptions(collector="ray", workers=2, **common),
                    output_dir=tmp_path, log=None)
    finally:
        if ray.is_initialized():
            ray.shutdown()
    assert res.frames == 120 and [r["frames"] for r in res.history] == [0.0, 40.0, 80.0, 120.0]
    assert set(res.history[-1]) == set(sync.history[-1]), "the same metrics as the sync collector"
    for row in res.history[1:]:
        for key in ("loss/loss_objective", "loss/loss_critic", "eval/score", "optim/grad_norm"):
            assert math.isfinite(row[key]), key
    payload = load_training_checkpoint(tmp_path / "checkpoint_000000000120.pt")
    assert payload["frames"] == 120 and "collector" not in payload  # multi-process: no exact-resume state
