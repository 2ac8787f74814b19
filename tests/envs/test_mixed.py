"""MixedGridEnv: several grids in one batch, padded to the largest slot count with the mask."""

from __future__ import annotations

import pytest
import torch
from torchrl.envs.utils import check_env_specs

from torchrl_slots import layout
from torchrl_slots.envs import MixedGridEnv, SeedLifecycleEnv, parse_grids
from torchrl_slots.envs.mixed import GRID_SEED_STRIDE

GRIDS = "1x3,2x5,5x10"


def test_specs_and_padding_invariants():
    env = MixedGridEnv(2, GRIDS, seed=0)
    check_env_specs(env)
    td = env.rollout(30, break_when_any_done=False)  # crosses an episode end (25 epochs)
    assert td.shape == (6, 30)
    obs = td["observation"]
    n_real = torch.tensor([3, 3, 10, 10, 50, 50])
    assert torch.equal(obs["slot_mask"].sum(-1), n_real[:, None].expand(6, 30))
    pad = torch.arange(50)[None, :] >= n_real[:, None]  # [6, 50]: padding positions
    pad_t = pad[:, None, :].expand(6, 30, 50)
    assert not obs["slot_mask"][pad_t].any()
    assert obs["slots"][pad_t].abs().sum() == 0
    assert obs["slot_row"][pad_t].abs().sum() == 0 and obs["slot_col"][pad_t].abs().sum() == 0
    assert not td["action_mask", "slot"].transpose(-1, -2)[pad_t].any()  # no op may pick a padded slot
    # each env's largest row/col id is its own grid's extent (what the Fourier encoding normalises by)
    assert obs["slot_row"].amax(-1)[:, 0].tolist() == [0, 0, 1, 1, 4, 4]
    assert obs["slot_col"].amax(-1)[:, 0].tolist() == [2, 2, 4, 4, 9, 9]


def test_each_part_plays_exactly_its_own_grid_env():
    """The 2x5 rows of the mixture are the episodes a plain 2x5 env plays with the same seed (random
    legal actions: each sub-env draws them from its own stream, as the plain env does)."""
    mixed = MixedGridEnv(3, GRIDS, seed=7)
    plain = SeedLifecycleEnv(3, 2, 5, seed=7 + 1 * GRID_SEED_STRIDE)
    td_m = mixed.rollout(25, break_when_any_done=False)
    td_p = plain.rollout(25, break_when_any_done=False)
    part = td_m[3:6]
    torch.testing.assert_close(part["observation", "slots"][..., :10, :], td_p["observation", "slots"])
    torch.testing.assert_close(part["next", "reward"], td_p["next", "reward"])
    torch.testing.assert_close(part["next", "info", "score"], td_p["next", "info", "score"])
    assert torch.equal(part["action", "slot"], td_p["action", "slot"])
    assert td_m["next", "info", "score"][:, -1].abs().sum() > 0


def test_bad_grids_are_refused():
    with pytest.raises(ValueError, match="ROWSxCOLS"):
        parse_grids("2x")
    with pytest.raises(ValueError, match="at least one grid"):
        parse_grids("")
    with pytest.raises(ValueError, match="most rows and the most cols"):
        MixedGridEnv(2, "1x10,3x3")
    with pytest.raises(ValueError, match="envs_per_grid"):
        MixedGridEnv(0, "1x3")


def test_transformer_policy_acts_on_the_mixture_and_only_picks_real_slots():
    from torchrl.envs import Compose, TransformedEnv

    from torchrl_slots.policy import PolicyConfig, create_policy

    env = MixedGridEnv(2, GRIDS, seed=1)
    cfg = PolicyConfig(embed_dim=16, num_heads=2, num_layers=1, ffn_dim=32, feature_dim=16, lstm_hidden=16,
                       key_dim=8, positional="fourier")
    policy = create_policy("transformer", env, cfg)
    tenv = TransformedEnv(env, Compose(*policy.transforms()))
    td = tenv.rollout(25, policy.actor, break_when_any_done=False)
    n_real = torch.tensor([3, 3, 10, 10, 50, 50])[:, None]
    op = td["action", "op"]
    picked = td["action", "slot"]
    real = op != layout.Op.WAIT
    assert bool((picked[real] < n_real.expand_as(picked)[real]).all())
