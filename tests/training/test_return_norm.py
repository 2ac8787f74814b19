"""PPOConfig.normalize_return: rewards divided by a running std of the discounted return
(gymnasium's NormalizeReward), on the update's copy of the batch only, with its state in the
checkpoint."""

import pytest
import torch
from torchrl_slots.policy import PolicyConfig
from torchrl_slots.training import PPOConfig
from torchrl_slots.training.updater import ReturnScaler, _Updater

SMALL = PolicyConfig(embed_dim=16, num_heads=2, num_layers=1, ffn_dim=32, feature_dim=16, lstm_hidden=16, key_dim=8)


def _returns_by_hand(rewards, dones, gamma):
    """Every G_t of a [R, T] stream, the running return reset after each done (gymnasium's rule)."""
    g, out = [0.0] * len(rewards), []
    for row, (rs, ds) in enumerate(zip(rewards, dones)):
        for r, d in zip(rs, ds):
            g[row] = gamma * g[row] + r
            out.append(g[row])
            if d:
                g[row] = 0.0
    return out


def test_scaler_divides_by_the_std_of_every_discounted_return_seen_across_batches():
    torch.manual_seed(0)
    gamma, scaler = 0.9, ReturnScaler(0.9)
    r1, r2 = torch.randn(3, 6, 1), torch.randn(3, 6, 1)
    d1 = torch.zeros(3, 6, 1, dtype=torch.bool)
    d2 = torch.zeros(3, 6, 1, dtype=torch.bool)
    d1[0, 2], d1[2, 5], d2[1, 0] = True, True, True  # one done on a batch's last step: reset next batch
    scaler(r1, d1)
    out = scaler(r2, d2)
    stream_r = torch.cat([r1, r2], 1)[..., 0].tolist()
    stream_d = torch.cat([d1, d2], 1)[..., 0].tolist()
    seen = torch.tensor(_returns_by_hand(stream_r, stream_d, gamma))
    # RunningMeanStd starts from var 1 with a weight of 1e-4 samples: negligible next to 36
    torch.testing.assert_close(scaler.rms.var, seen.var(unbiased=False), rtol=1e-4, atol=0)
    torch.testing.assert_close(out, r2 / torch.sqrt(scaler.rms.var + 1e-8))
    assert (out.sign() == r2.sign()).all()  # scaled, never shifted


def test_scaler_state_round_trips_into_a_fresh_one():
    torch.manual_seed(1)
    a = ReturnScaler(0.99)
    a(torch.randn(4, 5, 1), torch.zeros(4, 5, 1, dtype=torch.bool))
    b = ReturnScaler(0.99)
    b.load_state_dict(a.state_dict())  # b's per-env returns are still unsized
    nxt, done = torch.randn(4, 5, 1), torch.zeros(4, 5, 1, dtype=torch.bool)
    assert torch.equal(a(nxt, done), b(nxt, done)) and torch.equal(a.returns, b.returns)


def test_scaler_refuses_bad_shapes_and_a_changed_env_count():
    scaler = ReturnScaler(0.99)
    with pytest.raises(ValueError, match=r"one shape \[R, T, 1\], got \(2, 3\) and \(2, 3\)"):
        scaler(torch.ones(2, 3), torch.zeros(2, 3, dtype=torch.bool))
    scaler(torch.ones(2, 3, 1), torch.zeros(2, 3, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="a batch of 4 rows after batches of 2"):
        scaler(torch.ones(4, 3, 1), torch.zeros(4, 3, 1, dtype=torch.bool))


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_update_sees_scaled_rewards_and_the_callers_batch_keeps_the_envs(arch, monkeypatch, rollout_batch):
    policy, batch = rollout_batch(arch, SMALL)
    raw = batch["next", "reward"].clone()
    assert raw.abs().sum() > 0
    up = _Updater(policy, PPOConfig(frames_per_batch=160, total_frames=160, epochs=1, minibatches=2,
                                    normalize_return=True), 4)
    seen = []
    est = up.gae_shifted
    monkeypatch.setattr(up, "gae_shifted", lambda td: seen.append(td["next", "reward"].clone()) or est(td))
    row = up(batch)
    std = torch.sqrt(up.return_scaler.rms.var)
    assert row["loss/return_std"] == pytest.approx(float(std)) and float(std) != pytest.approx(1.0)
    torch.testing.assert_close(seen[0], raw / torch.sqrt(up.return_scaler.rms.var + 1e-8))
    assert torch.equal(batch["next", "reward"], raw) and "advantage" not in batch.keys()
    assert "return_std" not in str(_Updater(policy, PPOConfig(frames_per_batch=160, total_frames=160, epochs=1,
                                                                minibatches=2), 4)(batch.clone()).keys())


def test_normalize_return_must_be_a_bool():
    with pytest.raises(ValueError, match="PPOConfig.normalize_return must be a bool, got 1"):
        PPOConfig(normalize_return=1).validate(num_envs=16)


def test_a_run_saved_before_normalize_return_existed_resumes_only_with_it_off(tmp_path):
    from torchrl_slots.training.checkpoint import check_resumable

    saved = {"arch": "transformer", "ppo": {"lr": 3e-4}}  # a run dict written before the field
    check_resumable(saved, {"arch": "transformer", "ppo": {"lr": 3e-4, "normalize_return": False}}, tmp_path)
    with pytest.raises(ValueError, match="ppo.normalize_return: saved False, now True"):
        check_resumable(saved, {"arch": "transformer", "ppo": {"lr": 3e-4, "normalize_return": True}}, tmp_path)
