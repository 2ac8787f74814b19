"""Shared set-up of the training tests."""

import pytest
import torch
from torchrl.envs import Compose, TransformedEnv

from torchrl_slots.envs import SeedLifecycleEnv
from torchrl_slots.policy import create_policy


@pytest.fixture
def rollout_batch():
    """``make(arch, config) -> (policy, batch)``: a fresh policy on a 4-env 1x3 env (seed 0, torch
    seed 0) and its 40-step rollout ``[4, 40]``, which crosses episode ends."""

    def make(arch, config):
        torch.manual_seed(0)
        base = SeedLifecycleEnv(4, 1, 3, seed=0)
        policy = create_policy(arch, base, config)
        env = TransformedEnv(base, Compose(*policy.transforms()))
        with torch.no_grad():
            batch = env.rollout(40, policy.actor, break_when_any_done=False)
        return policy, batch

    return make
