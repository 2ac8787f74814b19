"""Reuse outside seed management: the wrappers with custom keys, and torchrl_slots.modules.entity."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import InteractionType, set_interaction_type
from torchrl.collectors import Collector
from torchrl.modules import ProbabilisticActor, ValueOperator
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import GAE

from torchrl_slots import layout
from torchrl_slots.envs.items import FEATURES, FEATURES_KEY, MASK_KEY, ItemsEnv
from torchrl_slots.modules import (
    PointerHead,
    PointerModule,
    SlotEncoderModule,
    SlotTransformerEncoder,
    check_entity_mask,
    make_entity_actor,
    make_entity_critic,
)

F, D = 11, 16  # a feature width that is not the Esper one (39)
ENTITY, MASK = ("world", "enemies", "features"), ("world", "enemies", "alive")


def make_encoder(positional="none", slot_dim=F, seed=0):
    torch.manual_seed(seed)
    return SlotTransformerEncoder(
        slot_dim=slot_dim, embed_dim=D, num_heads=2, num_layers=2, ffn_dim=32, positional=positional
    )


def params_net(actor):
    """The actor's TensorDictSequential (encoder, pointer[, extra head]) before the distribution."""
    return actor.module[0]


def pointer_head(actor):
    return params_net(actor)[1].module.head


def make_obs(batch=(6,), n=7, seed=1, min_valid=1):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(*batch, n, F, generator=g)
    mask = torch.rand(*batch, n, generator=g) > 0.4
    mask[..., :min_valid] = True
    return TensorDict({"world": {"enemies": {"features": feats, "alive": mask}}}, batch_size=list(batch))


def test_encoder_module_any_width_and_deep_nested_keys_match_the_core():
    enc = make_encoder()
    module = SlotEncoderModule(enc, in_keys=[ENTITY, MASK], out_keys=[("z", "a", "cls"), ("z", "a", "repr")])
    td = module(make_obs(batch=(2, 3)))
    cls, rep = enc(td[ENTITY], td[MASK])
    torch.testing.assert_close(td["z", "a", "cls"], cls, atol=0, rtol=0)
    torch.testing.assert_close(td["z", "a", "repr"], rep, atol=0, rtol=0)
    assert rep.shape == (2, 3, 7, D)
    with pytest.raises(ValueError, match=r"slot_features must be \[\*B, N, 11\], got shape \(2, 3, 7, 12\)"):
        enc(torch.randn(2, 3, 7, 12), td[MASK])


def test_pointer_module_custom_nested_keys_match_the_head():
    head = PointerHead(context_dim=D, slot_dim=5, key_dim=8)
    module = PointerModule(head, in_keys=[("agent", "ctx"), ("world", "repr")], out_keys=[("out", "logits")],
                           mask_key=("world", "legal"))
    mask = torch.tensor([[True, False, True], [False, False, True]])
    td = TensorDict({"agent": {"ctx": torch.randn(2, D)}, "world": {"repr": torch.randn(2, 3, 5), "legal": mask}},
                    batch_size=[2])
    logits = module(td)["out", "logits"]
    torch.testing.assert_close(logits, head(td["agent", "ctx"], td["world", "repr"], mask=mask))
    assert (logits.softmax(-1)[~mask] == 0).all()


def test_without_positions_encoder_is_permutation_equivariant_and_cls_invariant():
    enc = make_encoder().eval()
    td = make_obs(batch=(4,), n=9, seed=3)
    feats, mask = td[ENTITY], td[MASK]
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(7))
    cls, rep = enc(feats, mask)
    cls_p, rep_p = enc(feats[:, perm], mask[:, perm])
    torch.testing.assert_close(rep_p, rep[:, perm], atol=1e-5, rtol=0)
    torch.testing.assert_close(cls_p, cls, atol=1e-5, rtol=0)
    # the actor's pointer logits permute with the entities too
    actor = make_entity_actor(enc, entity_key=ENTITY, mask_key=MASK, key_dim=8)
    logits = params_net(actor)(td.clone())["params", "entity", "logits"]
    permuted = td.clone()
    permuted[ENTITY], permuted[MASK] = feats[:, perm], mask[:, perm]
    permuted_logits = params_net(actor)(permuted)["params", "entity", "logits"]
    torch.testing.assert_close(permuted_logits, logits[:, perm], atol=1e-5, rtol=0)


def test_grid_positions_are_optional_and_required_when_the_encoder_has_them():
    with pytest.raises(ValueError, match=r"positional='learned' needs two position_keys .*got None"):
        make_entity_actor(make_encoder("learned"), entity_key=ENTITY, mask_key=MASK)
    with pytest.raises(ValueError, match=r"positional='none' needs no position_keys"):
        make_entity_actor(make_encoder(), entity_key=ENTITY, mask_key=MASK, position_keys=("r", "c"))
    td = make_obs(batch=(3,), n=4)
    rows, cols = layout.grid_ids(2, 2)
    td["pos", "row"], td["pos", "col"] = rows.expand(3, 4), cols.expand(3, 4)
    actor = make_entity_actor(make_encoder("learned"), entity_key=ENTITY, mask_key=MASK,
                              position_keys=(("pos", "row"), ("pos", "col")))
    out = actor(td)
    assert td[MASK].gather(-1, out["action"][:, None]).all()


def test_ready_encoder_module_is_used_with_its_keys_and_mismatches_raise():
    module = SlotEncoderModule(make_encoder(), in_keys=[ENTITY, MASK], out_keys=[("e", "cls"), ("e", "rep")])
    actor = make_entity_actor(module)
    td = actor(make_obs())
    assert ("e", "cls") in td.keys(True) and params_net(actor)[0] is module
    with pytest.raises(ValueError, match=r"differs from the encoder module's in_keys\[1\]"):
        make_entity_actor(module, mask_key=("world", "other"))
    with pytest.raises(ValueError, match="entity_key and mask_key are required"):
        make_entity_actor(make_encoder())


@pytest.mark.parametrize("extra", [None, 4])
def test_actor_never_picks_a_masked_entity(extra):
    enc = make_encoder()
    actor = make_entity_actor(enc, entity_key=ENTITY, mask_key=MASK, extra_head_size=extra,
                              extra_mask_key=None if extra is None else ("world", "verbs"))
    with torch.no_grad():  # sharpen the policy so masked entities would be likely if unmasked
        pointer_head(actor).query.weight.mul_(300.0)
    td = make_obs(batch=(64,), n=7, seed=5)
    verbs = torch.zeros(64, 4, dtype=torch.bool)
    verbs[:, 2] = True
    verbs[::2, 0] = True
    td["world", "verbs"] = verbs
    hidden = params_net(actor)(td.clone())
    raw = pointer_head(actor)(hidden["hidden", "cls"], hidden["hidden", "entity_repr"])  # unmasked logits
    favoured = ~td[MASK].gather(-1, raw.argmax(-1, keepdim=True))
    assert favoured.sum() >= 10, "the unmasked pointer must favour masked entities in many states"
    many = td.expand(50, 64).clone()  # 3200 samples of the same 64 states, in one call
    out = actor(many)
    key = "action" if extra is None else ("action", "entity")
    assert many[MASK].gather(-1, out[key][..., None]).all()
    if extra is not None:
        assert many["world", "verbs"].gather(-1, out["action", "extra"][..., None]).all()
        assert set(out["action", "extra"].unique().tolist()) == {0, 2}
    assert len(out[key].unique()) == 7


def test_state_without_a_valid_entity_raises_naming_key_and_batch_index():
    actor = make_entity_actor(make_encoder(), entity_key=ENTITY, mask_key=MASK)
    td = make_obs(batch=(5,))
    td[MASK][3] = False
    match = r"no valid entity in \('world', 'enemies', 'alive'\) at batch index \(3,\) \(1 of 5"
    with pytest.raises(ValueError, match=match):
        actor(td)
    pick = ("world", "pickable")
    td2 = make_obs(batch=(2, 3))
    td2[pick] = td2[MASK].clone()
    td2[pick][1, 2] = False
    actor2 = make_entity_actor(make_encoder(), entity_key=ENTITY, mask_key=MASK, action_mask_key=pick)
    with pytest.raises(ValueError, match=r"\('world', 'pickable'\) at batch index \(1, 2\)"):
        actor2(td2)
    actor3 = make_entity_actor(make_encoder(), entity_key=ENTITY, mask_key=MASK, extra_head_size=3,
                               extra_mask_key=("world", "verbs"))
    td3 = make_obs(batch=(4,))
    td3["world", "verbs"] = torch.ones(4, 3, dtype=torch.bool)
    td3["world", "verbs"][2] = False
    with pytest.raises(ValueError, match=r"no valid choice in \('world', 'verbs'\) at batch index \(2,\)"):
        actor3(td3)
    with pytest.raises(ValueError, match="must be a bool tensor"):
        check_entity_mask(torch.ones(2, 3), "m")


def test_critic_is_a_value_operator_over_its_own_encoder_pass():
    enc = make_encoder()
    critic = make_entity_critic(enc, entity_key=ENTITY, mask_key=MASK, num_cells=(8, 8))
    assert isinstance(critic, ValueOperator) and critic.in_keys == [ENTITY, MASK]
    td = critic(make_obs(batch=(2, 3)))
    assert td["state_value"].shape == (2, 3, 1) and set(td.keys()) == {"world", "state_value"}
    td["state_value"].sum().backward()
    assert enc.cls_token.grad is not None and enc.cls_token.grad.abs().sum() > 0


def ppo_first_step(actor, critic, data):
    loss = ClipPPOLoss(actor, critic, entropy_coeff=0.01)
    with torch.no_grad():
        out = loss(data)
    return out


def test_clip_ppo_loss_at_unchanged_params_has_ratio_one_on_collected_data():
    torch.manual_seed(0)
    keys = {"entity_key": FEATURES_KEY, "mask_key": MASK_KEY}
    enc = SlotTransformerEncoder(slot_dim=FEATURES, embed_dim=D, num_heads=2, num_layers=1, ffn_dim=32,
                                 positional="none")
    actor = make_entity_actor(enc, **keys, key_dim=8)
    with torch.no_grad():
        pointer_head(actor).query.weight.mul_(50.0)  # a non-uniform policy
    critic = make_entity_critic(make_encoder(slot_dim=FEATURES), **keys)
    assert isinstance(actor, ProbabilisticActor)
    collector = Collector(ItemsEnv(16, 6, seed=0), actor, frames_per_batch=64, total_frames=64,
                          auto_register_policy_transforms=False)
    data = next(iter(collector))
    collector.shutdown()
    with torch.no_grad():
        GAE(gamma=1.0, lmbda=1.0, value_network=critic, deactivate_vmap=True)(data)
    out = ppo_first_step(actor, critic, data)
    assert out["kl_approx"].abs().max() < 1e-5
    assert out["clip_fraction"].max() == 0
    assert (out["ESS"].mean() - 1).abs() < 1e-5
    assert torch.isfinite(out["loss_objective"]) and torch.isfinite(out["entropy"]).all()
    stored = data["action_log_prob"]
    recomputed = actor.get_dist(data.clone()).log_prob(data["action"])
    torch.testing.assert_close(recomputed, stored, atol=1e-5, rtol=0)


def test_two_head_actor_log_probs_per_head_and_ratio_one():
    actor = make_entity_actor(make_encoder(), entity_key=ENTITY, mask_key=MASK, extra_head_size=3,
                              head_names=("target", "verb"))
    critic = make_entity_critic(make_encoder(seed=1), entity_key=ENTITY, mask_key=MASK)
    with torch.no_grad(), set_interaction_type(InteractionType.RANDOM):
        data = actor(make_obs(batch=(32,), seed=9))
    data["advantage"], data["value_target"] = torch.randn(32, 1), torch.randn(32, 1)
    lp = data["action", "target_log_prob"] + data["action", "verb_log_prob"]
    assert (lp <= 0).all() and torch.isfinite(lp).all()
    out = ppo_first_step(actor, critic, data)
    assert out["kl_approx"].abs().max() < 1e-5 and out["clip_fraction"].max() == 0
    assert set(out["composite_entropy"].keys(True, True)) == {("action", "target_entropy"), ("action", "verb_entropy")}
    assert (out["composite_entropy", "action", "verb_entropy"] - torch.log(torch.tensor(3.0))).abs().max() < 1e-2
