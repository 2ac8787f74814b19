"""SlotPolicy files in the old state_dict layout (every tensor also under its TensorDict wrappers'
names) still load, and give the outputs recorded when they were written.

The files in ``tests/data`` were made by ``tests/data/make_policy_v1_files.py`` before the policy's
``state_dict`` had one key per tensor.
"""

from pathlib import Path

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import InteractionType, set_interaction_type

from torchrl_slots.envs import SeedLifecycleEnv
from torchrl_slots.policy import SlotPolicy

DATA = Path(__file__).parent / "data"
RECORDED = torch.load(DATA / "policy_v1_outputs.pt", weights_only=True)


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_an_old_layout_file_loads_and_gives_the_recorded_outputs(arch):
    rec = RECORDED[arch]
    policy = SlotPolicy.load(DATA / f"policy_v1_{arch}.pt", SeedLifecycleEnv(2, 1, 3, seed=0))
    inputs = TensorDict(rec["inputs"], batch_size=rec["state_value"].shape[:-1])
    with torch.no_grad(), set_interaction_type(InteractionType.DETERMINISTIC):
        acted = policy.actor(inputs.clone())
        value = policy.value_network(inputs.clone())["state_value"]
    torch.testing.assert_close(value, rec["state_value"])
    for head, entries in rec["params"].items():
        for name, expected in entries.items():
            torch.testing.assert_close(acted["params", head, name], expected, msg=f"params {head} {name}")
    for head, expected in rec["action"].items():
        if expected.is_floating_point():  # log-probs: the last bits differ between CPUs (Intel vs AMD: 7e-7)
            torch.testing.assert_close(acted["action", head], expected, msg=head)
        else:  # the chosen actions themselves: exactly the recorded ones
            assert torch.equal(acted["action", head], expected), head


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_one_key_per_tensor_and_the_old_keys_map_onto_them(arch):
    old = torch.load(DATA / f"policy_v1_{arch}.pt", weights_only=True)["state_dict"]
    policy = SlotPolicy.load(DATA / f"policy_v1_{arch}.pt", SeedLifecycleEnv(2, 1, 3, seed=0))
    new = policy.state_dict(keep_vars=True)
    assert len({id(t) for t in new.values()}) == len(new)  # no tensor under two keys
    non_persistent = sum(len(m._non_persistent_buffers_set) for m in policy.modules())  # e.g. the heads' floors
    assert len(new) == len(list(policy.parameters())) + len(list(policy.buffers())) - non_persistent
    assert len(old) > len(new) and set(new) < set(old)  # the old file had every key and its copies
    assert set(policy._legacy_keys.values()) == set(new)
    assert set(policy._legacy_keys) | set(new) == set(old)
    # a plain load_state_dict (as the trainer's resume does) takes the old layout too
    fresh = SlotPolicy.load(DATA / f"policy_v1_{arch}.pt", SeedLifecycleEnv(2, 1, 3, seed=0))
    for p in fresh.parameters():
        p.data.zero_()
    fresh.load_state_dict(old)
    for key, tensor in fresh.state_dict().items():
        assert torch.equal(tensor, old[key]), key


def test_a_load_error_names_each_problem_once():
    """The flat LSTM on another N: every mismatched tensor is reported under its one key."""
    with pytest.raises(ValueError, match="built for 3 slots") as err:
        SlotPolicy.load(DATA / "policy_v1_lstm.pt", SeedLifecycleEnv(2, 2, 5, seed=0))
    message = str(err.value)
    mismatched = [line for line in message.splitlines() if "size mismatch for" in line]
    names = [line.split("size mismatch for ")[1].split(":")[0] for line in mismatched]
    assert names and len(names) == len(set(names))
    assert all(not n.startswith(("actor.", "trunk.", "value_network.", "value_head.")) for n in names), names
