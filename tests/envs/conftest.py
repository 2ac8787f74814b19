"""Shared helpers of the SeedLifecycleEnv tests.

The tests step the env by hand (not ``env.rollout``) wherever they need the hidden simulator state
before and after each step: :func:`play` records, for every step, the tensordict the policy acted
on, the env's answer and snapshots of :class:`~torchrl_slots.envs.SimState` on both sides. The
helpers are handed out as session fixtures (tests do not import from conftest).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import pytest
import torch
from tensordict import TensorDictBase
from torchrl.envs.utils import step_mdp

from torchrl_slots.envs import SeedLifecycleEnv, SimState


def snapshot(state: SimState) -> dict[str, torch.Tensor]:
    """A detached copy of every field of a :class:`SimState`."""
    return {f.name: getattr(state, f.name).clone() for f in dataclasses.fields(state)}


def play(
    env: SeedLifecycleEnv,
    policy: Callable[[TensorDictBase], TensorDictBase] | None = None,
    steps: int | None = None,
) -> list[dict[str, Any]]:
    """Reset ``env`` and run ``steps`` steps (default: one episode) by hand.

    ``policy=None`` uses ``env.rand_action``. Each record holds ``td`` (observation and action),
    ``next`` (the env's answer), ``before`` and ``after`` (state snapshots around the step).
    """
    steps = env.config.max_epochs if steps is None else steps
    td = env.reset()
    records = []
    for _ in range(steps):
        before = snapshot(env.state)
        td = env.rand_action(td) if policy is None else policy(td)
        td = env.step(td)
        records.append({"td": td.exclude("next").clone(), "next": td["next"].clone(),
                        "before": before, "after": snapshot(env.state)})
        td = step_mdp(td)
    return records


@pytest.fixture(scope="session")
def play_episode() -> Callable[..., list[dict[str, Any]]]:
    """:func:`play`: run an env by hand, recording observations, actions and hidden states."""
    return play


@pytest.fixture(scope="session")
def state_snapshot() -> Callable[[SimState], dict[str, torch.Tensor]]:
    """:func:`snapshot`: copy every field of a SimState."""
    return snapshot
