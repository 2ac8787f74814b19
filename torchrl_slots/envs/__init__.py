"""Environments: the batched :class:`SeedLifecycleEnv` (a surrogate), :class:`HostTrainingEnv` (a
real host network that trains), their reference policies and transforms, and :class:`ItemsEnv`
(a small set-of-entities env for reusing the encoder)."""

from torchrl_slots.envs.config import LifecycleConfig
from torchrl_slots.envs.factory import ENV_KINDS, make_env
from torchrl_slots.envs.flat import FlatToSlots, SlotsToFlat
from torchrl_slots.envs.host import HostConfig, HostTrainingEnv
from torchrl_slots.envs.items import ItemsEnv
from torchrl_slots.envs.lifecycle import LifecycleState, SeedLifecycle
from torchrl_slots.envs.plans import PLAN_GRID, PlanPolicy
from torchrl_slots.envs.mixed import MixedGridEnv, parse_grids
from torchrl_slots.envs.reference import (
    HeuristicPolicy,
    OraclePolicy,
    RandomPolicy,
    WaitPolicy,
    sample_legal,
)
from torchrl_slots.envs.seed_lifecycle import SeedLifecycleEnv
from torchrl_slots.envs.simulator import SeedSimulator, SimState
from torchrl_slots.envs.world import World

__all__ = [
    "ENV_KINDS",
    "FlatToSlots",
    "HeuristicPolicy",
    "HostConfig",
    "HostTrainingEnv",
    "ItemsEnv",
    "LifecycleConfig",
    "LifecycleState",
    "MixedGridEnv",
    "OraclePolicy",
    "PLAN_GRID",
    "PlanPolicy",
    "RandomPolicy",
    "SeedLifecycle",
    "SeedLifecycleEnv",
    "SeedSimulator",
    "SimState",
    "SlotsToFlat",
    "WaitPolicy",
    "World",
    "make_env",
    "parse_grids",
    "sample_legal",
]
