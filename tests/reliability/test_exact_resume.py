"""A run stopped at a checkpoint (or by Ctrl-C in the middle of a batch) and resumed is
bit-identical, on CPU, to the same run done in one go: the checkpoint holds the env's full tensor
state, the collector's carrier (next observation, LSTM state) and every RNG."""

import torch

from torchrl_slots.policy import PolicyConfig
from torchrl_slots.training import EnvConfig, PPOConfig, RunOptions, train
from torchrl_slots.training import trainer as trainer_mod

TINY = PolicyConfig(embed_dim=8, num_heads=2, num_layers=1, ffn_dim=16, feature_dim=8, lstm_hidden=8, key_dim=8)
ENV = EnvConfig(num_envs=4, rows=1, cols=3)
OPTS = RunOptions(seed=3, eval_episodes=2, eval_interval=1, checkpoint_interval=1)


def _ppo(total):
    return PPOConfig(frames_per_batch=40, total_frames=total, minibatches=2, epochs=1)


def _same(a, b):
    assert a.frames == b.frames
    for (k, x), y in zip(a.policy.state_dict().items(), b.policy.state_dict().values()):
        assert torch.equal(x, y), k
    for ra, rb in zip(a.history, b.history):
        for k in ra:
            if not k.startswith("time/"):
                assert ra[k] == rb[k] or (ra[k] != ra[k] and rb[k] != rb[k]), k


def test_resumed_run_is_bit_identical_to_a_straight_one(tmp_path):
    straight = train("transformer", ENV, TINY, _ppo(120), options=OPTS, log=None)
    first = train("transformer", ENV, TINY, _ppo(80), options=OPTS, output_dir=tmp_path, log=None)
    assert first.frames == 80
    resumed = train("transformer", ENV, TINY, _ppo(120), options=OPTS, output_dir=tmp_path, resume=True, log=None)
    assert len(resumed.history) == len(straight.history)
    _same(straight, resumed)


def test_ctrl_c_in_the_middle_of_a_batch_keeps_the_last_complete_batch_and_resumes_exactly(tmp_path, monkeypatch):
    straight = train("transformer", ENV, TINY, _ppo(120), options=OPTS, log=None)
    original = trainer_mod._Updater.__call__
    calls = []

    def interrupted_update(self, batch):
        calls.append(1)
        if len(calls) == 3:  # the third batch: a partial update, then Ctrl-C
            with torch.no_grad():
                for p in self.params:
                    p.add_(0.5)
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(trainer_mod._Updater, "__call__", interrupted_update)
    stopped = train("transformer", ENV, TINY, _ppo(120), options=OPTS, output_dir=tmp_path, log=None)
    monkeypatch.setattr(trainer_mod._Updater, "__call__", original)
    assert stopped.interrupted and stopped.frames == 80
    assert stopped.checkpoint.name == "checkpoint_000000000080.pt"
    saved = torch.load(stopped.checkpoint, weights_only=True)["policy"]["state_dict"]
    for k, v in stopped.policy.state_dict().items():
        assert torch.equal(v, saved[k]), f"{k}: the partial update must be rolled back"
    resumed = train("transformer", ENV, TINY, _ppo(120), options=OPTS, output_dir=tmp_path, resume=True, log=None)
    _same(straight, resumed)


def test_resume_with_return_normalisation_is_bit_identical(tmp_path):
    ppo = lambda total: PPOConfig(frames_per_batch=40, total_frames=total, minibatches=2, epochs=1,  # noqa: E731
                                  normalize_return=True)
    straight = train("transformer", ENV, TINY, ppo(120), options=OPTS, log=None)
    first = train("transformer", ENV, TINY, ppo(80), options=OPTS, output_dir=tmp_path, log=None)
    saved = torch.load(first.checkpoint, weights_only=True)["return_scaler"]
    assert saved["returns"].shape == (4,) and float(saved["rms.count"]) > 80  # every G_t of 80 frames
    resumed = train("transformer", ENV, TINY, ppo(120), options=OPTS, output_dir=tmp_path, resume=True, log=None)
    _same(straight, resumed)
    assert "loss/return_std" in straight.history[-1]
