"""The timing rules of docs/simulator.md ("Timing rules"), step by step on a one-slot env."""

import pytest
import torch
from tensordict import TensorDict

from torchrl_slots.envs import LifecycleConfig, SeedLifecycleEnv
from torchrl_slots.layout import HEADS, Op, Stage


def step(env, op, **heads):
    """One step with ``op`` on slot 0; returns (observed stage, in_stage, FOSSILIZE legal next)."""
    action = {h: torch.zeros(1, dtype=torch.long) for h in HEADS}
    action["op"][:] = op
    for h, v in heads.items():
        action[h][:] = v
    out = env.step(TensorDict({"action": action}, batch_size=[1]))["next"]
    observed = Stage(int(out["observation", "slots"][0, 0, 1:10].argmax()))
    assert observed == Stage(int(env.state.stage[0, 0]))  # the one-hot shows the state's stage
    return observed, int(env.state.in_stage[0, 0]), bool(out["action_mask", "op"][0, Op.FOSSILIZE])


def germinated_env(**cfg):
    env = SeedLifecycleEnv(1, 1, 1, config=LifecycleConfig(max_epochs=40, **cfg), seed=0)
    env.reset()
    return env, step(env, Op.GERMINATE, blueprint=1, alpha_target=2)  # target 1.0


@pytest.mark.parametrize("embargo, resetting", [(5, 1), (0, 1), (1, 0), (2, 3)])
def test_pruned_is_never_observed_and_embargo_resetting_last_max_1_k(embargo, resetting):
    env, _ = germinated_env(embargo_epochs=embargo, resetting_epochs=resetting)
    step(env, Op.ADVANCE)
    stages = [step(env, Op.PRUNE)[0]] + [step(env, Op.WAIT)[0] for _ in range(10)]
    assert Stage.PRUNED not in stages
    expected = [Stage.EMBARGOED] * max(1, embargo) + [Stage.RESETTING] * max(1, resetting)
    assert stages[:len(expected) + 1] == expected + [Stage.DORMANT]


def test_germinated_is_never_observed_under_auto_advance():
    env, first = germinated_env(auto_advance=True)
    assert first[:2] == (Stage.TRAINING, 0)
    assert float(env.state.progress[0, 0]) == 0.0  # the germination epoch brings no progress
    assert step(env, Op.WAIT)[0] == Stage.BLENDING
    env, first = germinated_env()
    assert first[0] == Stage.GERMINATED


def test_fossilize_needs_an_idle_controller():
    env, _ = germinated_env()
    step(env, Op.ADVANCE)  # TRAINING
    step(env, Op.ADVANCE)  # BLENDING, tempo 3 epochs
    for _ in range(3):
        stage, _, _ = step(env, Op.WAIT)
    stage, _, can_fossilize = step(env, Op.ADVANCE)
    assert stage == Stage.HOLDING and can_fossilize
    # a ramp to 1.0 while HOLDING (speed index 3: 8 epochs) keeps the controller busy
    stage, _, can_fossilize = step(env, Op.SET_ALPHA_TARGET, alpha_target=2, alpha_speed=3)
    assert stage == Stage.HOLDING and not can_fossilize
    # the ramp's 8 epochs include the SET_ALPHA_TARGET step's own: idle again after 7 more
    legal = [step(env, Op.WAIT)[2] for _ in range(8)]
    assert legal == [False] * 6 + [True] * 2
