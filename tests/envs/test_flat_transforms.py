"""FlatToSlots / SlotsToFlat: the flat esper-lite observation <-> the nested slot keys."""

import pytest
import torch
from tensordict import TensorDict
from torchrl.envs import Compose, TransformedEnv
from torchrl.envs.utils import check_env_specs

from torchrl_slots import layout
from torchrl_slots.envs import FlatToSlots, SeedLifecycleEnv, SlotsToFlat


def test_round_trip_on_env_rollout_is_exact():
    env = SeedLifecycleEnv(3, 2, 2, seed=0)
    tenv = TransformedEnv(env, Compose(SlotsToFlat(out_key="flat"), FlatToSlots(2, 2, in_key="flat", prefix="rebuilt")))
    check_env_specs(tenv)
    td = tenv.rollout(6)
    nxt = td["next"]
    assert nxt["flat"].shape == (3, 6, 23 + 4 * 39)
    assert torch.equal(nxt["rebuilt", "base"], nxt["observation", "base"])
    assert torch.equal(nxt["rebuilt", "slots"], nxt["observation", "slots"])
    assert torch.equal(nxt["rebuilt", "slot_row"], nxt["observation", "slot_row"])
    assert torch.equal(nxt["rebuilt", "slot_col"], nxt["observation", "slot_col"])
    assert nxt["rebuilt", "slot_mask"].all()


def test_flat_layout_is_base_then_slot_major():
    flat = torch.arange(23 + 2 * 39, dtype=torch.float32)[None]
    td = FlatToSlots(1, 2, in_key="flat")(TensorDict({"flat": flat}, [1]))
    assert td["observation", "base"][0, -1].item() == 22
    assert td["observation", "slots"][0, 1, 0].item() == 23 + 39
    assert td["observation", "slot_col"].tolist() == [[0, 1]]


def test_mask_key_is_used_and_checked():
    flat = torch.randn(2, 23 + 3 * 39)
    mask = torch.tensor([[True, False, True], [True, True, False]])
    td = FlatToSlots(1, 3, in_key="flat", mask_key="m")(TensorDict({"flat": flat, "m": mask}, [2]))
    assert torch.equal(td["observation", "slot_mask"], mask)
    with pytest.raises(ValueError, match="must be bool"):
        FlatToSlots(1, 3, in_key="flat", mask_key="m")(TensorDict({"flat": flat, "m": mask.float()}, [2]))


def test_wrong_width_raises_with_expected_and_actual():
    with pytest.raises(ValueError, match=r"23 \+ 3\*39 = 140, got shape \(2, 139\)"):
        FlatToSlots(1, 3, in_key="flat")(TensorDict({"flat": torch.randn(2, 139)}, [2]))
    td = TensorDict({"observation": {"base": torch.zeros(2, 22), "slots": torch.zeros(2, 3, 39)}}, [2])
    with pytest.raises(ValueError, match="expected base"):
        SlotsToFlat()(td)


def test_bad_grid_raises():
    with pytest.raises(ValueError, match="rows and cols"):
        FlatToSlots(0, 3)
    with pytest.raises(ValueError, match="rows and cols"):
        FlatToSlots(1, layout.MAX_GRID + 1)
