"""ItemsEnv: specs, episodes, reward = own quality + neighbours' qualities, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torchrl.envs.utils import check_env_specs

from torchrl_slots.envs.items import FEATURES, FEATURES_KEY, MASK_KEY, ItemsEnv, item_values


@pytest.mark.parametrize("num_items,min_items", [(1, None), (6, None), (12, 12), (12, 1)])
def test_check_env_specs_and_random_rollouts_pick_valid_items(num_items, min_items):
    env = ItemsEnv(8, num_items, min_items=min_items, seed=0)
    check_env_specs(env)
    td = env.rollout(5, break_when_any_done=False)
    assert td[FEATURES_KEY].shape == (8, 5, num_items, FEATURES)
    assert td[MASK_KEY].gather(-1, td["action"][..., None]).all()
    assert td["next", "done"].all() and td["next", "terminated"].all()


def brute_force_values(features, mask, radius):
    n = features.shape[0]
    out = []
    for i in range(n):
        if not mask[i]:
            out.append(-math.inf)
            continue
        total = 0.0
        for j in range(n):
            d = math.dist(features[i, :2].tolist(), features[j, :2].tolist())
            if mask[j] and d <= radius:
                total += float(features[j, 2])
        out.append(total)
    return torch.tensor(out)


def test_reward_is_the_picked_items_value_and_matches_a_brute_force_count():
    env = ItemsEnv(6, 9, radius=0.6, seed=3)
    td = env.reset()
    values = env.values()
    for e in range(6):
        expected = brute_force_values(td[FEATURES_KEY][e], td[MASK_KEY][e], 0.6)
        torch.testing.assert_close(values[e], expected, atol=1e-5, rtol=0)
    action = values.argmax(-1)
    out = env.step(td.set("action", action))
    torch.testing.assert_close(out["next", "reward"].squeeze(-1), values.max(-1).values)
    assert (values[~td[MASK_KEY]] == -math.inf).all()


def test_valid_counts_cover_min_to_n_and_features_have_the_documented_ranges():
    env = ItemsEnv(2000, 10, min_items=3, seed=1)
    td = env.reset()
    counts = td[MASK_KEY].sum(-1)
    assert set(counts.unique().tolist()) == set(range(3, 11))
    pos = td[FEATURES_KEY][..., :2]
    assert pos.min() >= -1 and pos.max() <= 1 and pos.min() < -0.99 and pos.max() > 0.99
    assert abs(td[FEATURES_KEY][..., 2:].std().item() - 1) < 0.05
    first_valid = td[MASK_KEY].float().argmax(-1)
    assert (first_valid > 0).any(), "valid items are a random subset, not a prefix"


def test_same_seed_same_episodes_and_partial_reset_only_redraws_reset_envs():
    a, b = ItemsEnv(4, 5, seed=7), ItemsEnv(4, 5, seed=7)
    ta, tb = a.reset(), b.reset()
    torch.testing.assert_close(ta[FEATURES_KEY], tb[FEATURES_KEY], atol=0, rtol=0)
    before = ta[FEATURES_KEY].clone()
    ta["_reset"] = torch.tensor([True, False, True, False])[:, None]  # as a collector passes it
    after = a.reset(ta)[FEATURES_KEY]
    assert (after[[1, 3]] == before[[1, 3]]).all()
    assert (after[[0, 2]] != before[[0, 2]]).any(-1).any(-1).all()


def test_invalid_pick_and_bad_config_raise():
    env = ItemsEnv(3, 4, min_items=1, seed=0)
    td = env.reset()
    bad = (~td[MASK_KEY]).float().argmax(-1)
    env_idx = int((~td[MASK_KEY]).any(-1).float().argmax())
    with pytest.raises(ValueError, match=rf"env {env_idx} picked item \d, which is not valid"):
        env.step(td.set("action", torch.where((~td[MASK_KEY]).any(-1), bad, 0)))
    with pytest.raises(ValueError, match=r"item index in \[0, 4\)"):
        env.step(td.set("action", torch.full((3,), 4)))
    with pytest.raises(ValueError, match="1 <= min_items <= num_items"):
        ItemsEnv(3, 4, min_items=5)


def test_item_values_handles_extra_batch_dims():
    f = torch.rand(2, 3, 5, FEATURES)
    m = torch.rand(2, 3, 5) > 0.3
    v = item_values(f, m, 0.4)
    assert v.shape == (2, 3, 5)
    torch.testing.assert_close(v[1, 2], item_values(f[1, 2], m[1, 2], 0.4))
