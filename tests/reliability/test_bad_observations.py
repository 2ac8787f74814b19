"""Bad values in observations: padding never reaches anything, bad enabled values raise, the
critic works on its own (GAE, a plain call) while the loss still runs the trunk once, and the
encoder runs under vmap."""

import pytest
import torch
from tensordict import TensorDict
from torchrl.envs import Compose, TransformedEnv
from torchrl.modules import set_recurrent_mode
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import GAE

from torchrl_slots import layout
from torchrl_slots.envs import SeedLifecycleEnv
from torchrl_slots.modules import SlotTransformerEncoder, make_entity_actor, make_entity_critic
from torchrl_slots.policy import PolicyConfig, create_policy

SMALL = PolicyConfig(embed_dim=16, num_heads=2, num_layers=1, ffn_dim=32, feature_dim=16, lstm_hidden=16, key_dim=8)
BAD_PADDING = [float("nan"), float("inf"), -float("inf"), 1e30]


def _rollout(arch, rows=2, cols=3, num_envs=3, steps=6):
    torch.manual_seed(0)
    base = SeedLifecycleEnv(num_envs, rows, cols, seed=0)
    policy = create_policy(arch, base, SMALL)
    env = TransformedEnv(base, Compose(*policy.transforms()))
    with torch.no_grad():
        td = env.rollout(steps, policy.actor, break_when_any_done=False)
    return policy, td


def _mask_some_slots(td):
    """Disable slot 1 of every row (the env's padding is zeros; the test then poisons it)."""
    td = td.clone()
    mask = td["observation", "slot_mask"].clone()
    mask[..., 1] = False
    td["observation", "slot_mask"] = mask
    return td


@pytest.mark.parametrize("bad", BAD_PADDING)
@pytest.mark.parametrize("pack_slots", [True, False])
@pytest.mark.parametrize("positional", ["learned", "fourier"])
def test_padding_values_never_reach_encoder_outputs(bad, pack_slots, positional):
    torch.manual_seed(0)
    enc = SlotTransformerEncoder(embed_dim=16, num_heads=2, num_layers=2, ffn_dim=32, positional=positional,
                                 pack_slots=pack_slots, chunk_rows=3)
    feats = torch.randn(7, 5, layout.SLOT_FEATURES)
    mask = torch.rand(7, 5) > 0.4
    mask[:, 0] = True
    rows, cols = layout.grid_ids(1, 5)
    clean = feats.masked_fill(~mask[..., None], 0.0)
    poisoned = feats.masked_fill(~mask[..., None], bad)
    for return_attention in (False, True):
        a = enc(clean, mask, rows, cols, return_attention=return_attention)
        b = enc(poisoned, mask, rows, cols, return_attention=return_attention)
        for x, y in zip(a, b):
            assert torch.isfinite(y).all()
            assert torch.equal(x, y)


@pytest.mark.parametrize("bad", BAD_PADDING)
@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_padding_values_never_reach_policy_params_or_values(bad, arch):
    policy, td = _rollout(arch)
    td = _mask_some_slots(td)
    poisoned = td.clone()
    slots = poisoned["observation", "slots"].clone()
    slots[..., 1, :] = bad
    poisoned["observation", "slots"] = slots
    with torch.no_grad(), set_recurrent_mode(True):
        ref = policy.value_network(td.clone())
        got = policy.value_network(poisoned.clone())
        dist_ref = policy.actor.get_dist(td.clone())
        dist_got = policy.actor.get_dist(poisoned.clone())
    assert torch.equal(ref["state_value"], got["state_value"])
    assert torch.isfinite(got["state_value"]).all()
    actions = td.select(*[("action", h) for h in layout.HEADS])
    lp_ref, lp_got = dist_ref.log_prob(actions), dist_got.log_prob(actions)
    for h in layout.HEADS:
        key = ("action", f"{h}_log_prob")
        assert torch.equal(lp_ref.get(key), lp_got.get(key)), h


@pytest.mark.parametrize("bad", BAD_PADDING)
def test_padding_values_never_reach_the_entity_actor(bad):
    torch.manual_seed(0)
    enc = SlotTransformerEncoder(slot_dim=4, embed_dim=8, num_heads=2, num_layers=1, ffn_dim=16,
                                 positional="none", pack_slots=False)
    actor = make_entity_actor(enc, entity_key="x", mask_key="m", key_dim=8, extra_head_size=3)
    x, m = torch.randn(6, 5, 4), torch.rand(6, 5) > 0.5
    m[:, 0] = True
    td_clean = TensorDict({"x": x.masked_fill(~m[..., None], 0.0), "m": m}, [6])
    td_bad = TensorDict({"x": x.masked_fill(~m[..., None], bad), "m": m}, [6])
    p_clean = actor.get_dist_params(td_clean)
    p_bad = actor.get_dist_params(td_bad)
    for key in p_clean.keys(True, True):
        if key[0] == "params":
            assert torch.equal(p_clean[key], p_bad[key]), key


@pytest.mark.parametrize("key", ["base", "slots"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_enabled_slot_or_base_raises_naming_key_and_batch_index(key, bad):
    policy, td = _rollout("transformer")
    td = td[:, 0].clone()  # [E]
    value = td["observation", key].clone()
    if key == "base":
        value[2, 5] = bad
    else:
        value[2, 0, 5] = bad  # slot 0 is enabled
    td["observation", key] = value
    for net in (policy.actor, policy.value_network, policy.critic):
        with pytest.raises(ValueError, match=rf"'{key}'\).*NaN or inf.*batch index \(2,\)"):
            net(td.clone())


def test_float64_observation_names_key_and_expected_dtype():
    policy, td = _rollout("transformer")
    td = td[:, 0].clone()
    td["observation", "slots"] = td["observation", "slots"].double()
    expected = r"\('observation', 'slots'\) must have dtype torch.float32.*got torch.float64"
    with pytest.raises(ValueError, match=expected):
        policy.actor(td)


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_gae_with_policy_critic_and_a_plain_critic_call_work(arch):
    policy, td = _rollout(arch)
    assert "core" not in td.keys() and "slot_repr" not in td.keys(), "collected data holds no trunk intermediates"
    with torch.no_grad(), set_recurrent_mode(True):
        alone = policy.critic(td.clone())["state_value"]
        full = policy.value_network(td.clone())["state_value"]
        a = GAE(gamma=0.9, lmbda=0.9, value_network=policy.critic, deactivate_vmap=True)(td.clone())
        b = GAE(gamma=0.9, lmbda=0.9, value_network=policy.value_network, deactivate_vmap=True)(td.clone())
    assert torch.equal(alone, full)
    assert torch.allclose(a["advantage"], b["advantage"]) and torch.isfinite(a["advantage"]).all()


def test_loss_with_policy_critic_still_runs_the_trunk_once_after_gae():
    policy, td = _rollout("transformer")
    with torch.no_grad(), set_recurrent_mode(True):
        GAE(gamma=0.9, lmbda=0.9, value_network=policy.critic, deactivate_vmap=True)(td)
    calls = []
    hook = policy.trunk_net.register_forward_hook(lambda *a: calls.append(1))
    out = ClipPPOLoss(policy.actor, policy.critic)(td)
    hook.remove()
    assert len(calls) == 1
    assert torch.isfinite(out["loss_critic"])


def test_policy_critic_under_vmap_in_recurrent_mode_names_deactivate_vmap():
    policy, td = _rollout("transformer")
    with pytest.raises(RuntimeError, match="deactivate_vmap=True"), torch.no_grad(), set_recurrent_mode(True):
        GAE(gamma=0.9, lmbda=0.9, value_network=policy.critic)(td)


def _items_setup():
    from torchrl_slots.envs.items import FEATURES, FEATURES_KEY, MASK_KEY, ItemsEnv

    torch.manual_seed(0)
    env = ItemsEnv(4, 6, min_items=2, seed=0)

    def enc():
        return SlotTransformerEncoder(slot_dim=FEATURES, embed_dim=8, num_heads=2, num_layers=1, ffn_dim=16,
                                      positional="none")  # pack_slots=True (default)

    keys = {"entity_key": FEATURES_KEY, "mask_key": MASK_KEY}
    actor = make_entity_actor(enc(), **keys, key_dim=8)
    critic = make_entity_critic(enc(), **keys, num_cells=(8,))
    with torch.no_grad():
        td = env.rollout(3, actor, break_when_any_done=False)
    return actor, critic, td, MASK_KEY


@pytest.mark.filterwarnings("ignore:There is a performance drop")
def test_encoder_under_vmap_gae_without_deactivate_vmap_matches_the_loop():
    actor, critic, td, mask_key = _items_setup()
    assert not td[mask_key].all(), "some items absent: the packed path would be taken outside vmap"
    with torch.no_grad():
        a = GAE(gamma=0.9, lmbda=0.9, value_network=critic)(td.clone())
        b = GAE(gamma=0.9, lmbda=0.9, value_network=critic, deactivate_vmap=True)(td.clone())
    assert torch.allclose(a["advantage"], b["advantage"], atol=1e-5)


@pytest.mark.filterwarnings("ignore:There is a performance drop")
def test_clip_ppo_loss_builtin_value_estimator_runs_the_encoder_under_vmap():
    actor, critic, td, _ = _items_setup()
    out = ClipPPOLoss(actor, critic)(td.clone())  # no "advantage": the loss's own GAE (vmap) runs
    assert torch.isfinite(out["loss_critic"]) and torch.isfinite(out["loss_objective"])


@pytest.mark.parametrize("size", [0, -1, 2.0, True])
def test_entity_actor_extra_head_size_zero_refused_at_build(size):
    enc = SlotTransformerEncoder(slot_dim=4, embed_dim=8, num_heads=2, num_layers=1, ffn_dim=16, positional="none")
    with pytest.raises(ValueError, match="extra_head_size must be None or a positive int"):
        make_entity_actor(enc, entity_key="x", mask_key="m", extra_head_size=size)
