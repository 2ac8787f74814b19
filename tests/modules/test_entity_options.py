"""Entity actor/critic options: a context input, query entities, save/load, for_entities."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import InteractionType, set_interaction_type
from torchrl.objectives import ClipPPOLoss

from torchrl_slots.modules import (
    EntityEncoderModule,
    EntityPointer,
    SlotEncoderModule,
    SlotTransformerEncoder,
    load_entity_policy,
    make_entity_actor,
    make_entity_critic,
    save_entity_policy,
)

F, D, C = 6, 16, 3
ENT, MASK, CTX, LAST = ("obs", "units"), ("obs", "alive"), ("obs", "budget"), ("obs", "last")
LOGITS = ("params", "entity", "logits")
KEYS = {"entity_key": ENT, "mask_key": MASK}


def encoder(seed=0, **overrides):
    torch.manual_seed(seed)
    return SlotTransformerEncoder.for_entities(F, **{"embed_dim": D, "num_heads": 2, "num_layers": 2, **overrides})


def obs(batch=(5,), n=7, seed=1, k=None):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(*batch, n, generator=g) > 0.3
    mask[..., 0] = True
    last = torch.randint(-1, n, (*batch, *((k,) if k else ())), generator=g)
    return TensorDict({"obs": {"units": torch.randn(*batch, n, F, generator=g), "alive": mask,
                               "budget": torch.randn(*batch, C, generator=g), "last": last}}, batch_size=list(batch))


def actor_critic(sharing="none", extra=None, seed=0):
    opts = {**KEYS, "context_key": CTX, "context_dim": C}
    enc = encoder(seed)
    actor_enc = EntityEncoderModule(enc, **opts) if sharing == "module" else enc
    actor = make_entity_actor(actor_enc, **({} if sharing == "module" else opts), query_entity_key=LAST, key_dim=8,
                              extra_head_size=extra)
    critic_enc = {"none": encoder(seed + 1), "transformer": enc, "module": actor_enc}[sharing]
    critic = make_entity_critic(critic_enc, **({} if sharing == "module" else opts), num_cells=(8,))
    with torch.no_grad():  # a sharp, non-uniform policy
        actor.module[0][1].module.head.query.weight.mul_(100.0)
    return actor, critic


def test_for_entities_has_no_positions_and_generic_sizes():
    enc = SlotTransformerEncoder.for_entities(11)
    assert (enc.slot_dim, enc.embed_dim, enc.num_heads, enc.num_layers) == (11, 64, 4, 2)
    assert enc.positional is None and enc.blocks[0].ffn[0].out_features == 128
    small = SlotTransformerEncoder.for_entities(3, embed_dim=8, num_heads=2, ffn_dim=10, positional="fourier")
    assert (small.embed_dim, small.blocks[0].ffn[0].out_features, small.positional_kind) == (8, 10, "fourier")
    with pytest.raises(ValueError, match=r"feature_dim=3; got slot_dim=4 too"):
        SlotTransformerEncoder.for_entities(3, slot_dim=4)
    with pytest.raises(ValueError, match=r"feature_dim must be a positive int .*got 0"):
        SlotTransformerEncoder.for_entities(0)
    with pytest.raises(TypeError):
        SlotTransformerEncoder.for_entities(3, no_such_option=1)


def test_shape_and_dtype_errors_name_the_key_the_expected_and_the_given():
    actor, critic = actor_critic()
    td = obs(batch=(4,))
    bad = td.clone()
    bad["obs", "budget"] = torch.randn(4, 2)
    with pytest.raises(ValueError, match=r"context \('obs', 'budget'\) must have shape \(4, 3\) .*got \(4, 2\)"):
        actor(bad)
    with pytest.raises(ValueError, match=r"context \('obs', 'budget'\) must have shape \(4, 3\)"):
        critic(bad)
    bad = td.clone()
    bad["obs", "last"] = td["obs", "last"].int()
    with pytest.raises(ValueError, match=r"query entity \('obs', 'last'\) must be int64 .*got dtype torch.int32"):
        actor(bad)
    bad["obs", "last"] = torch.zeros(4, 2, dtype=torch.long)
    shape = r"query entity \('obs', 'last'\) must have shape \(4,\) or \(4, 1\) .*got \(4, 2\)"
    with pytest.raises(ValueError, match=shape):
        actor(bad)
    bad["obs", "last"] = torch.tensor([0, 1, 7, -1])
    with pytest.raises(ValueError, match=r"query entity \('obs', 'last'\) must hold indices in \[-1, 7\) .*\[-1, 7\]"):
        actor(bad)
    bad = td.clone()
    bad["obs", "units"] = torch.randn(4, 7, F + 1)
    with pytest.raises(ValueError, match=r"entities \('obs', 'units'\) must be float \[\*B, N, 6\], got .*\(4, 7, 7\)"):
        actor(bad)
    with pytest.raises(ValueError, match=r"context_key and context_dim go together .*context_dim=None"):
        make_entity_actor(encoder(), **KEYS, context_key=CTX)
    module = EntityEncoderModule(encoder(), **KEYS)
    with pytest.raises(ValueError, match=r"context_key \('obs', 'budget'\) given, but the encoder module reads no"):
        make_entity_critic(module, context_key=CTX, context_dim=C)


def test_context_and_query_entity_change_the_outputs():
    actor, critic = actor_critic()
    td = obs(batch=(6,))
    logits, value = actor.module[0](td.clone())[LOGITS], critic(td.clone())["state_value"]
    other = td.clone()
    other["obs", "budget"] = td["obs", "budget"] + 1.0
    assert (actor.module[0](other.clone())[LOGITS] - logits).abs().max() > 1e-3
    assert (critic(other)["state_value"] - value).abs().max() > 1e-4
    moved = td.clone()
    moved["obs", "last"] = (td["obs", "last"] + 1) % 7
    assert (actor.module[0](moved)[LOGITS] - logits).abs().max() > 1e-3


def test_query_rows_gather_each_index_and_minus_one_is_zero():
    ptr = EntityPointer(embed_dim=4, key_dim=4, num_query_entities=2, query_entity_key="picks")
    entity_repr = torch.randn(2, 3, 5, 4)
    index = torch.tensor([[[0, 4], [-1, 2], [3, 3]], [[1, -1], [2, 0], [-1, -1]]])  # [2, 3, K=2]
    rows = ptr.query_rows(entity_repr, index).view(2, 3, 2, 4)
    for b in range(2):
        for t in range(3):
            for j in range(2):
                i = int(index[b, t, j])
                want = torch.zeros(4) if i < 0 else entity_repr[b, t, i]
                torch.testing.assert_close(rows[b, t, j], want, atol=0, rtol=0)
    assert ptr.head.query.in_features == 12
    logits, _ = ptr(torch.randn(2, 3, 4), entity_repr, torch.ones(2, 3, 5, dtype=torch.bool), index)
    assert logits.shape == (2, 3, 5) and torch.isfinite(logits).all()


@pytest.mark.parametrize("sharing", ["none", "module"])
def test_permutation_equivariance_with_context_and_query_entity(sharing):
    actor, critic = actor_critic(sharing)
    actor.eval(), critic.eval()
    td = obs(batch=(4,), n=9, seed=3)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(7))
    inv = perm.argsort()
    permuted = td.clone()
    permuted[ENT], permuted[MASK] = td[ENT][:, perm], td[MASK][:, perm]
    last = td[LAST]
    permuted[LAST] = torch.where(last >= 0, inv[last.clamp(min=0)], last)  # the same entities, new places
    with torch.no_grad():
        logits, logits_p = actor.module[0](td.clone())[LOGITS], actor.module[0](permuted.clone())[LOGITS]
        value, value_p = critic(td.clone())["state_value"], critic(permuted.clone())["state_value"]
    torch.testing.assert_close(logits_p, logits[:, perm], atol=1e-4, rtol=0)
    torch.testing.assert_close(value_p, value, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("sharing", "extra"), [("none", None), ("module", None), ("transformer", 3)])
def test_clip_ppo_loss_ratio_is_one_with_context_and_query_entity(sharing, extra):
    actor, critic = actor_critic(sharing, extra)
    with torch.no_grad(), set_interaction_type(InteractionType.RANDOM):
        data = actor(obs(batch=(64,), seed=9))
    data["advantage"], data["value_target"] = torch.randn(64, 1), torch.randn(64, 1)
    loss = ClipPPOLoss(actor, critic, entropy_coeff=0.01)
    with torch.no_grad():
        out = loss(data)
    assert out["kl_approx"].abs().max() < 1e-5 and out["clip_fraction"].max() == 0
    assert (out["ESS"].mean() - 1).abs() < 1e-5
    assert torch.isfinite(out["loss_objective"]) and torch.isfinite(out["loss_critic"])
    if extra is None:
        assert out["entropy"].mean() < 0.9 * torch.log(data[MASK].sum(-1).float()).mean()  # not uniform


@pytest.mark.parametrize(("sharing", "extra"), [("none", None), ("transformer", 3), ("module", None)])
def test_save_load_round_trip_gives_equal_outputs_and_keeps_sharing(tmp_path, sharing, extra):
    actor, critic = actor_critic(sharing, extra)
    path = save_entity_policy(tmp_path / "sub" / "policy.pt", actor, critic)
    assert sorted(p.name for p in path.parent.iterdir()) == ["policy.pt"]  # no temp file left behind
    loaded = load_entity_policy(path)
    assert loaded.actor.entity_kwargs == actor.entity_kwargs and loaded.critic.in_keys == critic.in_keys
    td = obs(batch=(2, 3), seed=4)
    for key in (LOGITS, ("params", "extra", "logits")) if extra else (LOGITS,):
        torch.testing.assert_close(loaded.actor.module[0](td.clone())[key], actor.module[0](td.clone())[key],
                                   atol=0, rtol=0)
    torch.testing.assert_close(loaded.critic(td.clone())["state_value"], critic(td.clone())["state_value"],
                               atol=0, rtol=0)
    enc_a, trunk_c = loaded.actor.module[0][0], loaded.critic.module.encoder
    assert (trunk_c is enc_a.net) == (sharing == "module")
    assert (trunk_c.encoder is enc_a.encoder) == (sharing != "none")
    n_params = len(list(torch.nn.ModuleList([loaded.actor, loaded.critic]).parameters()))
    assert n_params == len(list(torch.nn.ModuleList([actor, critic]).parameters()))


def test_save_load_an_actor_on_a_slot_encoder_module_without_a_critic(tmp_path):
    module = SlotEncoderModule(encoder(), in_keys=[ENT, MASK], out_keys=[("e", "cls"), ("e", "rep")])
    actor = make_entity_actor(module, extra_head_size=2, head_names=("who", "how"), params_key="p")
    loaded = load_entity_policy(save_entity_policy(tmp_path / "a.pt", actor))
    assert loaded.critic is None
    td = obs(seed=5)
    for head in ("who", "how"):
        torch.testing.assert_close(loaded.actor.module[0](td.clone())["p", head, "logits"],
                                   actor.module[0](td.clone())["p", head, "logits"], atol=0, rtol=0)


def test_a_flipped_weight_byte_fails_the_checksum_with_the_file_named(tmp_path):
    actor, critic = actor_critic()
    weight = actor.module[0][1].module.head.key.weight  # a [8, 16] float tensor, stored raw in the file
    path = save_entity_policy(tmp_path / "policy.pt", actor, critic)
    raw = bytearray(path.read_bytes())
    at = raw.find(weight.detach().numpy().tobytes())
    assert at > 0
    raw[at + 5] ^= 0x10
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"policy\.pt failed its checksum .*refusing to load it") as err:
        load_entity_policy(path)
    assert "weights_only=False" not in str(err.value)


def test_damaged_or_foreign_files_are_refused_with_clear_errors(tmp_path):
    actor, critic = actor_critic()
    path = save_entity_policy(tmp_path / "policy.pt", actor, critic)
    good = path.read_bytes()
    reference = torch.load(path, weights_only=True)["state_dict"]
    # a flipped byte anywhere: a ValueError naming the file, or (padding) the very same weights
    for at in range(0, len(good), max(1, len(good) // 40)):
        raw = bytearray(good)
        raw[at] ^= 0xFF
        path.write_bytes(bytes(raw))
        try:
            loaded = load_entity_policy(path)
        except ValueError as err:
            assert "policy.pt" in str(err) and "weights_only=False" not in str(err)
            continue
        for name, value in loaded.actor.state_dict().items():
            assert torch.equal(value, reference["actor"][name]), (at, name)
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"policy\.pt is damaged or not a torch file"):
        load_entity_policy(path)
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other\.pt is not an entity policy file .*got 'something else'"):
        load_entity_policy(tmp_path / "other.pt")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
    with pytest.raises(ValueError, match=r"module\.pt is not a readable entity policy file") as err:
        load_entity_policy(tmp_path / "module.pt")
    assert "weights_only" not in str(err.value)
    with pytest.raises(FileNotFoundError):
        load_entity_policy(tmp_path / "missing.pt")
    with pytest.raises(TypeError, match="not built by make_entity_actor"):
        save_entity_policy(tmp_path / "x.pt", torch.nn.Linear(2, 2))


@pytest.mark.parametrize("separate_losses", [False, True])
def test_clip_ppo_loss_value_gradient_reaches_a_shared_encoder_unless_separate_losses(separate_losses):
    actor, critic = actor_critic("module")
    with torch.no_grad(), set_interaction_type(InteractionType.RANDOM):
        data = actor(obs(batch=(16,), seed=2))
    data["advantage"], data["value_target"] = torch.randn(16, 1), torch.randn(16, 1)
    loss = ClipPPOLoss(actor, critic, separate_losses=separate_losses)
    loss(data)["loss_critic"].backward()
    shared = actor.module[0][0].encoder.cls_token
    own = critic.module.out.weight  # the critic's own output layer
    assert own.grad is not None and own.grad.abs().sum() > 0
    reached = shared.grad is not None and bool(shared.grad.abs().sum() > 0)
    assert reached == (not separate_losses)  # separate_losses=True detaches the critic's shared params


def test_save_load_an_encoder_with_grid_positions_and_a_context(tmp_path):
    torch.manual_seed(0)
    enc = SlotTransformerEncoder.for_entities(F, embed_dim=D, num_heads=2, num_layers=1, positional="learned",
                                              max_rows=3, max_cols=4)
    pos = (("grid", "row"), ("grid", "col"))
    actor = make_entity_actor(enc, **KEYS, position_keys=pos, context_key=CTX, context_dim=C)
    critic = make_entity_critic(enc, **KEYS, position_keys=pos, context_key=CTX, context_dim=C)
    td = obs(batch=(4,), n=6)
    td["grid", "row"], td["grid", "col"] = torch.arange(6).expand(4, 6) // 4 % 3, torch.arange(6).expand(4, 6) % 4
    loaded = load_entity_policy(save_entity_policy(tmp_path / "grid.pt", actor, critic))
    assert loaded.actor.module[0][0].encoder.positional.max_rows == 3
    torch.testing.assert_close(loaded.actor.module[0](td.clone())[LOGITS], actor.module[0](td.clone())[LOGITS],
                               atol=0, rtol=0)
    torch.testing.assert_close(loaded.critic(td.clone())["state_value"], critic(td.clone())["state_value"],
                               atol=0, rtol=0)
