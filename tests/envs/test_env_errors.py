"""Bad input: each a clear error naming what was expected and what was given.

Constructor arguments (num_envs, rows, cols, grid limit, enabled_slots, max_seeds), actions of the
wrong shape/dtype/range or missing, illegal actions under ``invalid_action="raise"`` (env index,
op, slot and why) and under ``invalid_action="wait"`` (executed as WAIT, reported in
``("info", "invalid_action")``, state otherwise identical to a WAIT), and irrelevant head values
being ignored.
"""

from __future__ import annotations

import re

import pytest
import torch
from tensordict import TensorDictBase

from torchrl_slots import layout
from torchrl_slots.envs import LifecycleConfig, SeedLifecycleEnv
from torchrl_slots.layout import HEADS, Op

E = 4


def _action(td: TensorDictBase, **heads: int | list[int]) -> TensorDictBase:
    """Set every head (default 0 = WAIT everywhere); an int applies to every env."""
    n = td.batch_size[0]
    for h in HEADS:
        v = heads.get(h, 0)
        td.set(("action", h), torch.tensor(v if isinstance(v, list) else [v] * n, dtype=torch.int64))
    return td


# ---------------------------------------------------------------------------------- constructor


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"num_envs": 0}, r"num_envs must be a positive int, got 0"),
        ({"num_envs": -3}, r"num_envs must be a positive int, got -3"),
        ({"rows": 0}, r"rows must be a positive int, got 0"),
        ({"cols": -1}, r"cols must be a positive int, got -1"),
        ({"rows": 17, "cols": 1}, r"rows must be at most 16 \(grid limit\), got 17"),
        ({"rows": 1, "cols": 20}, r"cols must be at most 16 \(grid limit\), got 20"),
    ],
)
def test_bad_sizes_raise(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        SeedLifecycleEnv(**{"num_envs": 2, "rows": 1, "cols": 3, **kwargs})


def test_largest_grid_is_accepted():
    env = SeedLifecycleEnv(1, 16, 16, seed=0)
    assert env.reset()["observation", "slots"].shape == (1, 256, layout.SLOT_FEATURES)


@pytest.mark.parametrize(
    ("enabled", "shown"),
    [((0, 2), "(0, 2)"), ((2, 4), "(2, 4)"), ((3, 2), "(3, 2)"), ((-1, 3), "(-1, 3)")],
)
def test_bad_enabled_slots_raise(enabled, shown):
    with pytest.raises(ValueError, match=re.escape(f"1 <= min <= max <= rows*cols=3, got {shown}")):
        SeedLifecycleEnv(2, 1, 3, config=LifecycleConfig(enabled_slots=enabled))


@pytest.mark.parametrize("max_seeds", [0, -2])
def test_non_positive_max_seeds_raises(max_seeds):
    with pytest.raises(ValueError, match=f"max_seeds must be positive or None, got {max_seeds}"):
        SeedLifecycleEnv(2, 1, 3, config=LifecycleConfig(max_seeds=max_seeds))


# ---------------------------------------------------------------------------------- malformed actions


@pytest.fixture
def env_td():
    env = SeedLifecycleEnv(E, 1, 3, seed=0)
    return env, _action(env.reset())


def _assert_not_stepped(env: SeedLifecycleEnv) -> None:
    assert (env.state.epoch == 0).all(), "a rejected action must not advance the env"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bool])
def test_action_of_wrong_dtype_raises(env_td, dtype):
    env, td = env_td
    td.set(("action", "op"), torch.zeros(E, dtype=dtype))
    with pytest.raises(ValueError, match=re.escape(f"action 'op' must be an integer tensor, got dtype {dtype}")):
        env.step(td)
    _assert_not_stepped(env)


@pytest.mark.parametrize("shape", [(E, 1), (E, 2)])
def test_action_of_wrong_shape_raises(env_td, shape):
    env, td = env_td
    td.set(("action", "slot"), torch.zeros(shape, dtype=torch.int64))
    with pytest.raises(ValueError, match=re.escape(f"action 'slot' must have shape ({E},), got {shape}")):
        env.step(td)
    _assert_not_stepped(env)


@pytest.mark.parametrize(
    ("head", "value", "size"),
    [("op", 6, 6), ("op", -1, 6), ("slot", 3, 3), ("blueprint", 13, 13), ("style", 4, 4),
     ("tempo", 3, 3), ("alpha_target", 3, 3), ("alpha_speed", 4, 4), ("alpha_curve", -1, 3)],
)
def test_action_out_of_range_raises(env_td, head, value, size):
    env, td = env_td
    td.set(("action", head), torch.tensor([0, value, 0, 0]))
    values = sorted({0, value})
    with pytest.raises(ValueError, match=re.escape(f"action {head!r} must be in [0, {size}), got values {values}")):
        env.step(td)
    _assert_not_stepped(env)


@pytest.mark.parametrize("head", ["op", "alpha_curve"])
def test_missing_action_key_raises(env_td, head):
    env, td = env_td
    del td["action", head]
    with pytest.raises(KeyError, match=re.escape(f"missing action key ('action', {head!r})")):
        env.step(td)
    _assert_not_stepped(env)


def test_step_before_reset_raises():
    td = _action(SeedLifecycleEnv(E, 1, 3, seed=0).reset())
    env = SeedLifecycleEnv(E, 1, 3, seed=0)
    with pytest.raises(RuntimeError, match=re.escape("step() called before reset()")):
        env.step(td.clone())
    env.reset()
    env.set_seed(1)  # a new seed starts from a new reset
    with pytest.raises(RuntimeError, match=re.escape("step() called before reset()")):
        env.step(td.clone())


# ---------------------------------------------------------------------------------- illegal actions


@pytest.mark.parametrize(
    ("heads", "why"),
    [
        ({"op": int(Op.FOSSILIZE), "slot": 1}, "op FOSSILIZE has no legal slot now"),
        ({"op": int(Op.PRUNE), "slot": 2}, "op PRUNE has no legal slot now"),
        ({"op": int(Op.GERMINATE), "slot": 1, "blueprint": 0},
         "head(s) ['blueprint'] hold illegal values for GERMINATE"),
    ],
)
def test_illegal_action_raises_naming_env_op_slot_and_why(env_td, heads, why):
    env, td = env_td
    wait = {h: [0] * E for h in HEADS}
    for h, v in heads.items():
        wait[h][2] = v  # only env 2 is illegal
    with pytest.raises(ValueError) as err:
        env.step(_action(td, **wait))
    msg = str(err.value)
    op = Op(heads["op"]).name
    assert f"illegal action in env 2: op={op}, slot={heads['slot']} (r0c{heads['slot']})" in msg
    assert why in msg
    assert "invalid_action='wait'" in msg
    _assert_not_stepped(env)


def test_germinate_on_an_occupied_slot_names_its_stage(env_td):
    env, td = env_td
    td = env.step(_action(td, op=int(Op.GERMINATE), slot=1, blueprint=3))["next"]
    with pytest.raises(ValueError, match=re.escape(
            "illegal action in env 0: op=GERMINATE, slot=1 (r0c1): slot r0c1 is enabled and in stage GERMINATED")):
        env.step(_action(td, op=int(Op.GERMINATE), slot=1, blueprint=3))
    assert (env.state.epoch == 1).all()


def test_germinate_on_a_disabled_slot_is_illegal():
    env = SeedLifecycleEnv(16, 1, 3, config=LifecycleConfig(enabled_slots=(1, 1)), seed=0)
    td = env.reset()
    mask = td["observation", "slot_mask"]
    i = int((~mask[:, 0]).nonzero()[0, 0])  # an env whose slot 0 is disabled
    assert not td["action_mask", "slot"][i, Op.GERMINATE, 0]
    heads = {h: [0] * 16 for h in HEADS}
    heads["op"][i], heads["blueprint"][i] = int(Op.GERMINATE), 1
    with pytest.raises(ValueError, match=re.escape(f"env {i}: op=GERMINATE, slot=0 (r0c0): slot r0c0 is disabled")):
        env.step(_action(td, **heads))


def test_germinate_at_the_live_seed_limit_is_illegal():
    env = SeedLifecycleEnv(1, 1, 3, config=LifecycleConfig(max_seeds=1), seed=0)
    td = env.step(_action(env.reset(), op=int(Op.GERMINATE), slot=0, blueprint=1))["next"]
    assert not td["action_mask", "op"][0, Op.GERMINATE]
    with pytest.raises(ValueError, match="op GERMINATE has no legal slot now"):
        env.step(_action(td, op=int(Op.GERMINATE), slot=1, blueprint=1))


def test_irrelevant_head_values_are_ignored(state_snapshot):
    """WAIT with arbitrary other heads, and GERMINATE with arbitrary alpha_speed/curve, are legal
    and act exactly like the same action with those heads at 0."""
    results = []
    for junk in (0, 1):
        env = SeedLifecycleEnv(2, 1, 3, seed=0)
        td = env.reset()
        td = env.step(_action(td, op=[0, int(Op.GERMINATE)], slot=[2 * junk, 1], blueprint=[12 * junk, 4],
                              style=[3 * junk, 1], alpha_speed=3 * junk, alpha_curve=2 * junk))
        assert not td["next", "info", "invalid_action"].any()
        results.append((td["next"].exclude("action"), state_snapshot(env.state)))
    (td0, s0), (td1, s1) = results
    for k in td0.keys(True, True):
        assert torch.equal(td0[k], td1[k]), k
    for k in s0:
        assert torch.equal(s0[k], s1[k]), k


def test_invalid_action_wait_executes_wait_and_reports_it(state_snapshot):
    """Under ``invalid_action="wait"`` an illegal action is a WAIT: the step's output and the
    hidden state equal those of a twin env (same seed, same history) that WAITed, except the flag."""
    cfg = LifecycleConfig(invalid_action="wait")
    env, twin = SeedLifecycleEnv(E, 1, 3, config=cfg, seed=0), SeedLifecycleEnv(E, 1, 3, config=cfg, seed=0)
    td, td_twin = env.reset(), twin.reset()
    for _ in range(3):  # the same legal history on both, so there is state to keep
        td = env.rand_action(td)
        td_twin.set("action", td["action"].clone())
        td, td_twin = env.step(td)["next"].clone(), twin.step(td_twin)["next"].clone()
    before = state_snapshot(env.state)
    illegal = {h: [0] * E for h in HEADS}
    illegal["op"][1], illegal["slot"][1] = int(Op.FOSSILIZE), 0  # nothing is HOLDING after 3 epochs
    illegal["op"][3], illegal["slot"][3], illegal["blueprint"][3] = int(Op.GERMINATE), 0, 0  # NOOP blueprint
    assert not td["action_mask", "op"][1, Op.FOSSILIZE]
    out = env.step(_action(td, **illegal))["next"]
    ref = twin.step(_action(td_twin))["next"]  # everyone WAITs
    assert out["info", "invalid_action"].tolist() == [False, True, False, True]
    assert not ref["info", "invalid_action"].any()
    for k in out.keys(True, True):
        if k != ("info", "invalid_action"):
            assert torch.equal(out[k], ref[k]), f"{k}: an invalid action must act exactly as WAIT"
    after, ref_state = state_snapshot(env.state), state_snapshot(twin.state)
    for k in after:
        assert torch.equal(after[k], ref_state[k]), f"state {k} differs from a WAIT"
    assert torch.equal(after["epoch"], before["epoch"] + 1)
    for k in ("blueprint", "gain", "algorithm", "target", "enabled"):
        assert torch.equal(after[k], before[k]), f"{k} changed under an invalid action"
    # the flag resets on the next legal step
    nxt = env.step(_action(out.clone()))["next"]
    assert not nxt["info", "invalid_action"].any()


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("max_epochs", 1, "max_epochs must be >= 2, got 1"),
        ("gamma", 0.0, r"gamma must be in \(0, 1\], got 0.0"),
        ("gamma", 1.5, r"gamma must be in \(0, 1\], got 1.5"),
        ("reward", "dense", "reward must be 'shaped' or 'sparse', got 'dense'"),
        ("invalid_action", "ignore", "invalid_action must be 'raise' or 'wait', got 'ignore'"),
        ("enabled_slots", (1, 2, 3), r"enabled_slots must be \(min, max\), got \(1, 2, 3\)"),
    ],
)
def test_bad_config_fields_raise(field, value, pattern):
    with pytest.raises(ValueError, match=pattern):
        SeedLifecycleEnv(2, 1, 3, config=LifecycleConfig(**{field: value}))


def test_rand_action_before_reset_raises():
    with pytest.raises(RuntimeError, match="needs a reset env"):
        SeedLifecycleEnv(2, 1, 3, seed=0).rand_action()
