"""Hypothesis fuzz: >= 2,000 random actions (legal ones drawn from the masks, and arbitrary ones,
in range or not) on random env configs, checking the env's invariants after every step and that
every refusal is a ValueError naming the action key; and random config fields, each either
accepted (the env then runs) or refused with a ValueError naming the field."""

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torchrl_slots import layout
from torchrl_slots.envs import LifecycleConfig, SeedLifecycleEnv
from torchrl_slots.envs.features import FEATURE_BOUND
from torchrl_slots.policy import PolicyConfig
from torchrl_slots.training import PPOConfig

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
NUM_ENVS = 4


@st.composite
def env_configs(draw):
    rows, cols = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    n = rows * cols
    lo = draw(st.integers(1, n))
    cfg = LifecycleConfig(
        max_epochs=draw(st.integers(2, 8)),
        max_seeds=draw(st.none() | st.integers(1, 4)),
        enabled_slots=draw(st.none() | st.just((lo, draw(st.integers(lo, n))))),
        auto_advance=draw(st.booleans()),
        invalid_action=draw(st.sampled_from(["raise", "wait"])),
        reward=draw(st.sampled_from(["shaped", "sparse"])),
        embargo_epochs=draw(st.integers(0, 3)),
    )
    return rows, cols, cfg


def _check_invariants(env, td, cfg):
    obs = td["observation"]
    assert torch.isfinite(obs["base"]).all() and torch.isfinite(obs["slots"]).all()
    assert obs["slots"].abs().max() <= FEATURE_BOUND + 1e-6 and obs["base"].abs().max() <= FEATURE_BOUND + 1e-6
    mask = obs["slot_mask"]
    assert mask.any(-1).all(), "every env has at least one enabled slot"
    assert (obs["slots"][~mask] == 0).all(), "padding is zeros"
    masks = td["action_mask"]
    assert masks["op"][:, layout.Op.WAIT].all(), "WAIT is always legal"
    slot_ops = layout.relevance_matrix()[:, 1]  # [ops]: the ops that act on a slot
    # (an illegal op's slot row is all True, so that no row is empty: only legal ops count)
    on_disabled = masks["slot"] & ~mask[:, None, :] & masks["op"][..., None] & slot_ops[None, :, None]
    assert not on_disabled.any(), "no legal slot op on a disabled slot"
    s = env.state
    assert ((s.alpha >= 0) & (s.alpha <= 1)).all()
    assert (s.epoch <= cfg.max_epochs).all()
    if cfg.max_seeds is not None:
        assert (env.sim.is_live(s).sum(-1) <= cfg.max_seeds).all()
    if "reward" in td.keys():
        assert torch.isfinite(td["reward"]).all()
        assert torch.equal(td["done"].squeeze(-1), s.epoch >= cfg.max_epochs)


COUNT = {"actions": 0, "refused": 0}


@settings(FAST, max_examples=40)
@given(setup=env_configs(), data=st.data())
def _fuzz_episode(setup, data):
    rows, cols, cfg = setup
    env = SeedLifecycleEnv(NUM_ENVS, rows, cols, config=cfg, seed=data.draw(st.integers(0, 2**16)))
    sizes = layout.head_sizes(rows * cols)
    td = env.reset()
    _check_invariants(env, td, cfg)
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    for kind in data.draw(st.lists(st.sampled_from(["legal", "legal", "any", "out_of_range"]), min_size=15,
                                   max_size=30)):
        if kind == "legal":
            action = env.rand_action(td.clone())
        else:  # arbitrary values: in range (mostly illegal) or partly out of range
            action = td.clone()
            for h in layout.HEADS:
                lo, hi = (0, sizes[h]) if kind == "any" else (-2, sizes[h] + 2)
                action["action", h] = torch.randint(lo, hi, (NUM_ENVS,), generator=gen)
        COUNT["actions"] += NUM_ENVS
        try:
            out = env.step(action)["next"]
        except ValueError as err:
            COUNT["refused"] += 1
            msg = str(err)
            assert kind != "legal", f"a legal action was refused: {msg}"
            assert any(f"'{h}'" in msg or f"{h}=" in msg for h in layout.HEADS), msg
            continue
        assert kind != "out_of_range" or not bool(
            torch.stack([((action["action", h] < 0) | (action["action", h] >= sizes[h])).any()
                         for h in layout.HEADS]).any()
        ), "an out-of-range action was accepted"
        _check_invariants(env, out, cfg)
        td = out
        if out["done"].any():
            td = env.reset(out.exclude("reward", "done", "terminated", "truncated").set(
                "_reset", out["done"].clone()))
            _check_invariants(env, td, cfg)


@pytest.mark.slow  # ~10-25 s on 2 busy cores
def test_fuzz_random_legal_and_illegal_actions_keep_env_invariants():
    COUNT.update(actions=0, refused=0)
    _fuzz_episode()
    assert COUNT["actions"] >= 2000, COUNT
    assert COUNT["refused"] > 0, "some illegal or out-of-range actions were drawn and refused"


BAD_VALUES = st.sampled_from([math.nan, math.inf, -math.inf, -1, -1.5, 0, 0.5, 2.5, True, "x", None, 3, 100])
LIFECYCLE_FIELDS = [f for f in LifecycleConfig.__dataclass_fields__ if f not in ("style_affinity", "enabled_slots")]
POLICY_FIELDS = list(PolicyConfig.__dataclass_fields__)
PPO_FIELDS = list(PPOConfig.__dataclass_fields__)


def _accepted_or_named(make, field):
    try:
        make()
    except ValueError as err:
        assert field in str(err), f"{field}: {err}"
        return False
    return True


@settings(FAST, max_examples=150)
@given(field=st.sampled_from(LIFECYCLE_FIELDS), value=BAD_VALUES)
def test_fuzz_random_lifecycle_fields_are_accepted_or_refused_by_name(field, value):
    def make():
        env = SeedLifecycleEnv(2, 1, 3, config=LifecycleConfig(**{field: value}), seed=0)
        td = env.reset()
        out = env.step(env.rand_action(td))["next"]
        assert torch.isfinite(out["reward"]).all(), f"{field}={value!r} accepted but rewards are not finite"

    _accepted_or_named(make, field)


@settings(FAST, max_examples=150)
@given(field=st.sampled_from(POLICY_FIELDS + PPO_FIELDS), value=BAD_VALUES)
def test_fuzz_random_policy_and_ppo_fields_are_accepted_or_refused_by_name(field, value):
    if field in POLICY_FIELDS:
        _accepted_or_named(lambda: PolicyConfig(**{field: value}), field)
    if field in PPO_FIELDS:
        _accepted_or_named(lambda: PPOConfig(**{field: value}).validate(num_envs=16), field)
