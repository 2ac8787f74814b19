"""make_factored_actor: sampling, exploration types, and TorchRL's unmodified ClipPPOLoss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tensordict import TensorDict
from tensordict.nn import InteractionType, TensorDictModule, set_composite_lp_aggregate
from tensordict.utils import unravel_key
from torch import nn
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import ValueOperator
from torchrl.objectives import ClipPPOLoss

from torchrl_slots import layout
from torchrl_slots.modules.actor import make_factored_actor, param_keys
from torchrl_slots.modules.distribution import (
    ACTION_KEYS,
    ENTROPY_KEYS,
    LOG_PROB_KEYS,
    FactoredActionDistribution,
    independent_params,
)

HEADS, SMALL, OPS = layout.HEADS, layout.SMALL_HEADS, layout.NUM_OPS
N, OBS = 4, 5
SIZES = layout.head_sizes(N)
MASK_KEYS = [("action_mask", h) for h in HEADS]


class TinyParams(nn.Module):
    """obs ``[*B, 5]`` + masks -> the 16 params (conditioned on op and slot by construction)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = sum(SIZES[h] for h in SMALL)
        self.op = nn.Linear(OBS, OPS)
        self.slot = nn.Linear(OBS, OPS * N)
        self.small = nn.Linear(OBS, OPS * N * self.total)

    def forward(self, obs, *masks):
        out = [self.op(obs), masks[0], self.slot(obs).unflatten(-1, (OPS, N)), masks[1]]  # [*B,6], [*B,6,N]
        small = self.small(obs).unflatten(-1, (OPS, N, self.total))  # [*B, 6, N, total]
        for logits, mask in zip(small.split([SIZES[h] for h in SMALL], -1), masks[2:]):
            out += [logits, mask]
        return tuple(out)


class IndependentParams(TinyParams):
    """The "none" conditioning: one logit set per head, masks = union of the legal ops' rows."""

    def forward(self, obs, *masks):
        legal = masks[0]
        union = [(m & legal[..., None]).any(-2) for m in masks[1:]]  # [*B, n_h]
        small = self.small(obs)[..., : self.total].split([SIZES[h] for h in SMALL], -1)
        params = independent_params(
            self.op(obs), legal, self.slot(obs)[..., :N], union[0],
            dict(zip(SMALL, small)), dict(zip(SMALL, union[1:])),
        )
        return tuple(params[k[1:]] for k in param_keys().values())


class AdditiveParams(TinyParams):
    """Small heads in the additive form: an op term ``[*B, 6, n_h]`` and a slot term ``[*B, N, n_h]``."""

    additive = True

    def __init__(self) -> None:
        super().__init__()
        self.small = nn.Linear(OBS, (OPS + N) * self.total)

    def forward(self, obs, *masks):
        out = {"op_logits": self.op(obs), "op_mask": masks[0],
               "slot_logits": self.slot(obs).unflatten(-1, (OPS, N)), "slot_mask": masks[1]}
        small = self.small(obs).unflatten(-1, (OPS + N, self.total))
        for h, logits, mask in zip(SMALL, small.split([SIZES[h] for h in SMALL], -1), masks[2:]):
            out[f"{h}_logits"], out[f"{h}_slot_logits"] = logits[..., :OPS, :], logits[..., OPS:, :]
            out[f"{h}_mask"] = mask
        return tuple(out[name] for name in param_keys(additive=True))


def make_actor(module_cls=TinyParams, **kwargs):
    keys = param_keys(additive=getattr(module_cls, "additive", False))
    module = TensorDictModule(module_cls(), in_keys=["obs", *MASK_KEYS], out_keys=list(keys.values()))
    return make_factored_actor(module, **kwargs)


def random_masks(batch, gen):
    op = (torch.rand(*batch, OPS, generator=gen) < 0.5) | F.one_hot(torch.zeros(batch, dtype=torch.long), OPS).bool()
    rel = layout.relevance_matrix()
    masks = {"op": op}
    for j, h in enumerate(HEADS[1:], start=1):
        k = SIZES[h]
        first_legal = F.one_hot(torch.zeros(batch, dtype=torch.long), k)[..., None, :].bool()
        m = (torch.rand(*batch, OPS, k, generator=gen) < 0.5) | first_legal
        masks[h] = torch.where(~(rel[:, j] & op)[..., None], F.one_hot(torch.tensor(0), k).bool(), m)
    return masks


def make_batch(actor, batch=(4, 5), seed=0):
    gen = torch.Generator().manual_seed(seed)
    td = TensorDict({"obs": torch.randn(*batch, OBS, generator=gen)}, batch_size=batch)
    td["action_mask"] = TensorDict(random_masks(batch, gen), batch_size=batch)
    with torch.no_grad():
        torch.manual_seed(seed)
        actor(td)
    td["advantage"] = torch.randn(*batch, 1, generator=gen)
    td["value_target"] = torch.randn(*batch, 1, generator=gen)
    return td.exclude("params")


def assert_legal(td):
    masks = {h: td["action_mask", h] for h in HEADS}
    a = {h: td["action", h] for h in HEADS}
    assert masks["op"].gather(-1, a["op"][..., None]).all()
    for h in HEADS[1:]:
        row = masks[h].gather(-2, a["op"][..., None, None].expand(*a["op"].shape, 1, masks[h].shape[-1]))
        assert row.squeeze(-2).gather(-1, a[h][..., None]).all(), h


def critic():
    return ValueOperator(nn.Linear(OBS, 1), in_keys=["obs"])


def test_actor_keys_and_legal_samples():
    actor = make_actor()
    assert actor.in_keys == ["obs", *MASK_KEYS]
    assert actor.dist_sample_keys == list(ACTION_KEYS)
    assert actor.log_prob_keys == list(LOG_PROB_KEYS)
    assert actor.default_interaction_type == InteractionType.RANDOM
    td = make_batch(actor, batch=(64,))
    assert_legal(td)
    assert all(td[k].dtype == torch.int64 and td[k].shape == (64,) for k in ACTION_KEYS)
    with torch.no_grad():
        lp = actor.get_dist(td).log_prob(td)
    for key in LOG_PROB_KEYS:
        torch.testing.assert_close(lp[key], td[key])


def test_stale_action_in_carrier_is_ignored():
    actor = make_actor()
    td = make_batch(actor, batch=(16,)).exclude("action")
    stale = td.clone()
    stale["action"] = TensorDict({h: torch.full((16,), 99) for h in HEADS}, [16])  # illegal garbage
    with torch.no_grad():
        torch.manual_seed(1)
        fresh_out = actor(td.clone())
        torch.manual_seed(1)
        stale_out = actor(stale)
    assert (fresh_out.select(*ACTION_KEYS) == stale_out.select(*ACTION_KEYS)).all()
    assert_legal(stale_out)


@pytest.mark.parametrize("module_cls", [TinyParams, IndependentParams, AdditiveParams])
def test_clip_ppo_loss_ratio_one_and_finite_grads(module_cls):
    actor, value = make_actor(module_cls), critic()
    batch = make_batch(actor)
    loss = ClipPPOLoss(actor_network=actor, critic_network=value)
    assert list(loss.tensor_keys.action) == list(ACTION_KEYS)
    assert list(loss.tensor_keys.sample_log_prob) == list(LOG_PROB_KEYS)
    out = loss(batch)
    assert abs(out["kl_approx"].item()) < 1e-6
    assert out["clip_fraction"].item() == 0.0
    assert out["mean_ratio"].item() == pytest.approx(1.0, abs=1e-6)
    assert out["max_ratio"].item() == pytest.approx(1.0, abs=1e-6)
    for key in ("loss_objective", "loss_critic", "loss_entropy", "entropy"):
        assert out[key].isfinite().all(), key
    per_head = out["composite_entropy"]
    assert set(per_head.keys(True, True)) == set(ENTROPY_KEYS)
    with torch.no_grad():
        dist = actor.get_dist(batch.clone())
    assert isinstance(dist, FactoredActionDistribution)
    joint = dist.joint_entropy().mean()
    total = sum(per_head[k].mean() for k in ENTROPY_KEYS)
    torch.testing.assert_close(total, joint)
    torch.testing.assert_close(out["entropy"], joint)
    (out["loss_objective"] + out["loss_critic"] + out["loss_entropy"]).backward()
    grads = [p.grad for p in actor.parameters()] + [p.grad for p in value.parameters()]
    assert all(g is not None and g.isfinite().all() for g in grads)
    assert all(g.abs().sum() > 0 for g in grads)


def test_conditional_entropy_terms_do_not_train_the_op_head_but_h_op_does():
    """With ClipPPOLoss: the conditional heads' entropy bonus leaves the op head alone (its
    weights p(o) are constants: a bonus per sub-head paid PPO for germinating), H(op) trains it."""
    actor = make_actor()
    batch = make_batch(actor, seed=2)
    op_head = actor.module[0].module.op
    for op_weight, moves in ((0.0, False), (1.0, True)):
        coeff = {k: (op_weight if k == ("action", "op_entropy") else 1.0) for k in ENTROPY_KEYS}
        loss = ClipPPOLoss(actor_network=actor, critic_network=critic(), entropy_coeff=coeff)
        op_head.weight.grad = None
        loss(batch.clone())["loss_entropy"].backward()
        grad = op_head.weight.grad
        assert (grad is not None and grad.abs().sum() > 0) == moves, op_weight


def test_deterministic_exploration_gives_the_mode():
    actor = make_actor()
    td = make_batch(actor, batch=(32,), seed=3).exclude("action")
    with torch.no_grad():
        mode = actor.get_dist(td.clone()).mode
        for kind in (ExplorationType.DETERMINISTIC, ExplorationType.MODE):
            with set_exploration_type(kind):
                out = actor(td.clone())
            assert (out.select(*ACTION_KEYS) == mode).all()
        draws = [actor(td.clone()).select(*ACTION_KEYS) for _ in range(3)]  # default: RANDOM
    assert any((d != mode).any() for d in draws)


def test_default_interaction_type_is_configurable():
    actor = make_actor(default_interaction_type=InteractionType.DETERMINISTIC, return_log_prob=False)
    assert actor.log_prob_keys == list(LOG_PROB_KEYS)  # declared; not written
    td = make_batch(actor, batch=(8,), seed=4)
    assert ("action", "op_log_prob") not in td.keys(True)
    with torch.no_grad():
        assert (td.select(*ACTION_KEYS) == actor.get_dist(td.clone()).mode).all()


def test_params_module_reading_action_is_refused():
    module = TensorDictModule(TinyParams(), in_keys=["obs", ("action", "op"), *MASK_KEYS[1:]],
                              out_keys=list(param_keys().values()))
    with pytest.raises(ValueError, match="must not depend on"):
        make_factored_actor(module)


def test_params_module_missing_entries_is_refused():
    module = TensorDictModule(nn.Linear(OBS, OPS), in_keys=["obs"], out_keys=[("params", "op", "logits")])
    with pytest.raises(ValueError, match=r"does not write the params entries \[\('params', 'op', 'mask'\)"):
        make_factored_actor(module)


def test_additive_form_is_detected_and_a_partial_one_refused():
    actor = make_actor(AdditiveParams)
    td = make_batch(actor)
    sampler_keys = {unravel_key(k) for k in actor[-1].in_keys}
    assert sampler_keys == set(param_keys(additive=True).values())
    assert_legal(td)
    with torch.no_grad():
        dist = actor.get_dist(td.clone())
    assert dist._core.slot_logits.keys() == set(SMALL)
    keys = list(param_keys().values()) + [("params", "tempo", "slot_logits")]
    module = TensorDictModule(AdditiveParams(), in_keys=["obs", *MASK_KEYS], out_keys=keys)
    with pytest.raises(ValueError, match=r"writes \[\('params', 'tempo', 'slot_logits'\)\] but not"):
        make_factored_actor(module)


def test_legacy_aggregate_mode_is_refused():
    module = TensorDictModule(TinyParams(), in_keys=["obs", *MASK_KEYS], out_keys=list(param_keys().values()))
    with set_composite_lp_aggregate(True), pytest.raises(ValueError, match="legacy aggregate"):
        make_factored_actor(module)
