"""create_policy / SlotPolicy: both architectures on the env, with TorchRL's ClipPPOLoss."""

from dataclasses import asdict

import pytest
import torch
from tensordict.nn import InteractionType, set_interaction_type
from torchrl.envs import Compose, TransformedEnv
from torchrl.modules import set_recurrent_mode
from torchrl.objectives import ClipPPOLoss

from torchrl_slots import layout
from torchrl_slots.envs import LifecycleConfig, SeedLifecycleEnv
from torchrl_slots.policy import PolicyConfig, SlotPolicy, create_policy, register_policy, registered_policies

SMALL = PolicyConfig(embed_dim=32, num_heads=2, num_layers=1, ffn_dim=64, feature_dim=32, lstm_hidden=32, key_dim=16)


def make(arch, rows=1, cols=3, num_envs=4, config=SMALL, env_config=None, seed=0):
    torch.manual_seed(seed)
    base = SeedLifecycleEnv(num_envs, rows, cols, seed=seed, config=env_config)
    policy = create_policy(arch, base, config)
    return TransformedEnv(base, Compose(*policy.transforms())), policy


def rollout(env, policy, steps=12):
    with torch.no_grad():
        return env.rollout(steps, policy.actor, break_when_any_done=False)


def assert_legal(td):
    """Every head of every stored action lies in its mask row at the stored op."""
    op = td["action", "op"]
    assert td["action_mask", "op"].gather(-1, op[..., None]).all()
    rel = layout.relevance_matrix()[op]  # [..., 8]
    for i, h in enumerate(layout.HEADS[1:], start=1):
        rows = td["action_mask", h].gather(-2, op[..., None, None].expand(*op.shape, 1, td["action_mask", h].shape[-1]))
        ok = rows.squeeze(-2).gather(-1, td["action", h][..., None]).squeeze(-1)
        assert (ok | ~rel[..., i]).all(), h


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_policy_acts_legally_on_the_env(arch):
    env, policy = make(arch)
    td = rollout(env, policy, steps=25)
    assert td.shape == (4, 25)
    assert_legal(td)
    assert not td["next", "info", "invalid_action"].any()


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_clip_ppo_loss_ratio_one_single_trunk_pass_and_gradients(arch):
    env, policy = make(arch)
    td = rollout(env, policy)
    td["advantage"] = torch.randn(*td.shape, 1)
    td["value_target"] = torch.randn(*td.shape, 1)
    calls = []
    hook = policy.trunk_net.register_forward_hook(lambda *a: calls.append(1))
    loss = ClipPPOLoss(policy.actor, policy.critic)
    out = loss(td)
    hook.remove()
    assert len(calls) == 1, "the loss must run the trunk once (critic reads the actor's core)"
    assert abs(out["mean_ratio"].item() - 1.0) < 1e-5
    assert abs(out["kl_approx"].item()) < 1e-5
    assert out["clip_fraction"].item() == 0.0
    heads = out["composite_entropy"]
    assert set(heads.keys(True, True)) == {("action", f"{h}_entropy") for h in layout.HEADS}
    total = out["loss_objective"] + out["loss_critic"] + out["loss_entropy"]
    assert torch.isfinite(total)
    total.backward()
    for name, p in policy.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_critic_uses_the_fresh_core_not_the_stored_one():
    env, policy = make("transformer")
    td = rollout(env, policy)
    td["core"] = torch.full((*td.shape, policy.config.lstm_hidden), 100.0)  # a stale core must not be used
    td["advantage"] = torch.zeros(*td.shape, 1)
    td["value_target"] = torch.zeros(*td.shape, 1)
    ClipPPOLoss(policy.actor, policy.critic, entropy_coeff=0.0)(td)["loss_critic"].backward()
    # value gradients reach the encoder: the critic read the core recomputed in this loss call
    grads = [p.grad for p in policy.trunk_net.encoder.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_step_by_step_equals_sequence_mode_with_resets(arch):
    env, policy = make(arch, num_envs=3)
    with torch.no_grad():
        td = env.rollout(30, policy.actor, break_when_any_done=False)  # 25-epoch episodes: a reset inside
    assert td["is_init"][:, 1:].any()
    with torch.no_grad(), set_recurrent_mode(True):
        dist = policy.actor.get_dist(td.clone())
        lp = dist.log_prob(td.select(*[("action", h) for h in layout.HEADS]))
    for h in layout.HEADS:
        key = ("action", f"{h}_log_prob")
        assert torch.allclose(lp.get(key), td.get(key), atol=1e-5), h


def test_transformer_built_for_10_slots_acts_on_3_and_50():
    base10 = SeedLifecycleEnv(2, 2, 5, seed=0)
    policy = create_policy("transformer", base10, SMALL)
    n_params = sum(p.numel() for p in policy.parameters())
    for rows, cols in [(1, 3), (5, 10)]:
        env = TransformedEnv(SeedLifecycleEnv(2, rows, cols, seed=1), Compose(*policy.transforms()))
        td = rollout(env, policy, steps=10)
        assert_legal(td)
        assert td["action", "slot"].max() < rows * cols
    assert sum(p.numel() for p in policy.parameters()) == n_params


def test_lstm_refuses_another_slot_count():
    base = SeedLifecycleEnv(2, 1, 3, seed=0)
    policy = create_policy("lstm", base, SMALL)
    env = TransformedEnv(SeedLifecycleEnv(2, 2, 5, seed=0), Compose(*policy.transforms()))
    with pytest.raises(ValueError, match="built for 3 slots"):
        rollout(env, policy, steps=2)


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_save_load_gives_identical_deterministic_actions_and_values(arch, tmp_path):
    env, policy = make(arch)
    path = tmp_path / "policy.pt"
    policy.save(path)
    loaded = SlotPolicy.load(path, env.base_env)
    td = env.reset()
    with torch.no_grad(), set_interaction_type(InteractionType.DETERMINISTIC):
        a = policy.actor(td.clone())
        b = loaded.actor(td.clone())
        va = policy.value_network(td.clone())["state_value"]
        vb = loaded.value_network(td.clone())["state_value"]
    for h in layout.HEADS:
        assert torch.equal(a["action", h], b["action", h])
    assert torch.equal(va, vb)
    payload = torch.load(path, weights_only=True)
    assert payload["arch"] == arch


def test_transformer_checkpoint_loads_for_another_grid_and_lstm_does_not(tmp_path):
    env, policy = make("transformer")
    policy.save(tmp_path / "t.pt")
    other = SeedLifecycleEnv(2, 5, 10, seed=0)
    assert SlotPolicy.load(tmp_path / "t.pt", other).arch == "transformer"
    env, lstm = make("lstm")
    lstm.save(tmp_path / "l.pt")
    with pytest.raises(ValueError, match="built for 3 slots"):
        SlotPolicy.load(tmp_path / "l.pt", other)
    with pytest.raises(ValueError, match="holds a 'lstm' policy"):
        SlotPolicy.load(tmp_path / "l.pt", env.base_env, arch="transformer")


def test_conditioning_none_needs_wait_env_and_then_acts():
    none = PolicyConfig(**{**SMALL.__dict__, "conditioning": "none", "op_from_slots": False})
    with pytest.raises(ValueError, match="invalid_action='wait'"):
        make("transformer", config=none)
    env, policy = make("transformer", config=none,
                       env_config=LifecycleConfig(invalid_action="wait"))
    td = rollout(env, policy, steps=25)
    # independent heads pick illegal (op, slot) pairs sometimes; the env reports them
    assert td["next", "info", "invalid_action"].dtype == torch.bool
    # the joint factorises: log-prob of the slot does not depend on the op
    params = td["params", "slot", "logits"]
    assert torch.equal(params[..., 0, :], params[..., 3, :])


def test_registry_and_unknown_arch():
    assert {"lstm", "transformer"} <= set(registered_policies())
    with pytest.raises(ValueError, match=r"unknown policy 'gru'; known: \['lstm', 'transformer'"):
        create_policy("gru", SeedLifecycleEnv(1, 1, 3, seed=0))
    with pytest.raises(ValueError, match="already registered"):
        register_policy("lstm")(lambda env, cfg: None)


def test_not_a_checkpoint_is_refused(tmp_path):
    torch.save({"hello": 1}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a SlotPolicy checkpoint"):
        SlotPolicy.load(tmp_path / "x.pt", SeedLifecycleEnv(1, 1, 3, seed=0))


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_compiled_actor_fullgraph_matches_eager_deterministic_actions(arch):
    env, policy = make(arch)
    td = env.reset()
    compiled = policy.compile(fullgraph=True)  # raises on any graph break
    with torch.no_grad(), set_interaction_type(InteractionType.DETERMINISTIC):
        a = compiled(td.clone())
        b = policy.actor(td.clone())
    for h in layout.HEADS:
        assert torch.equal(a["action", h], b["action", h]), h
    # no "core" to compare (collected data keeps no trunk intermediates): the op distribution instead
    # (compiled, the floor mixture always runs and returns log-probs; eager at floor 0, raw logits)
    mask = a["params", "op", "mask"]
    lp_a, lp_b = (x["params", "op", "logits"].masked_fill(~mask, float("-inf")).log_softmax(-1) for x in (a, b))
    assert torch.allclose(lp_a[mask], lp_b[mask], atol=1e-5)


def test_a_config_saved_before_op_from_slots_loads_with_the_old_head():
    saved = asdict(SMALL)
    del saved["op_from_slots"]
    assert PolicyConfig.from_dict(saved).op_from_slots is False
    assert PolicyConfig.from_dict(asdict(SMALL)).op_from_slots is True


def test_policy_config_format_versions():
    from torchrl_slots.policy import POLICY_CONFIG_VERSION

    saved = SMALL.to_dict()
    assert saved["format_version"] == POLICY_CONFIG_VERSION
    assert PolicyConfig.from_dict(saved) == SMALL
    v1 = asdict(SMALL)  # a version-1 dict: no format_version, written before op_slot_pool existed
    del v1["op_slot_pool"], v1["pointer_init"]
    old = PolicyConfig.from_dict(v1)
    assert (old.op_slot_pool, old.pointer_init) == ("sum", "hidden")
    for version in (1, 2):  # written while "learned" was the default: a dict without the field keeps it
        v = {k: val for k, val in saved.items() if k != "positional"} | {"format_version": version}
        assert PolicyConfig.from_dict(v).positional == "learned"
    assert PolicyConfig().positional == "fourier"
    assert PolicyConfig.from_dict({k: v for k, v in saved.items() if k != "positional"}
                                  | {"format_version": POLICY_CONFIG_VERSION}).positional == "fourier"
    assert (PolicyConfig().num_layers, PolicyConfig().ffn_dim) == (1, 128)
    for version in (1, 2, 3):  # written while two 256-wide blocks were the default
        v = {k: val for k, val in saved.items() if k not in ("num_layers", "ffn_dim")} | {"format_version": version}
        assert (PolicyConfig.from_dict(v).num_layers, PolicyConfig.from_dict(v).ffn_dim) == (2, 256)
    v4 = {k: val for k, val in saved.items() if k not in ("num_layers", "ffn_dim")}
    assert (PolicyConfig.from_dict(v4).num_layers, PolicyConfig.from_dict(v4).ffn_dim) == (1, 128)
    with pytest.raises(ValueError, match="unknown PolicyConfig format_version 9"):
        PolicyConfig.from_dict({**saved, "format_version": 9})


def test_op_from_slots_with_independent_heads_is_refused_in_every_path():
    with pytest.raises(ValueError, match="op_from_slots=True needs conditioning='op'"):
        PolicyConfig(**{**SMALL.__dict__, "conditioning": "none"})  # refused at construction
    from torchrl_slots.modules.heads import FactoredHeads

    with pytest.raises(ValueError, match="op_from_slots=True needs conditioning='op'"):
        FactoredHeads(core_dim=8, slot_dim=4, conditioning="none", op_from_slots=True)
