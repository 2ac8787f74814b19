"""OraclePolicy gives the same actions as the recording in ``tests/data/oracle_actions_v1.pt``.

The file was written by :func:`oracle_rollouts` (below) before ``OraclePolicy.act`` was split into
helpers with named constants; the refactor must not change a single action or score.
"""

from pathlib import Path

import pytest
import torch

from torchrl_slots.envs import LifecycleConfig, OraclePolicy, SeedLifecycleEnv
from torchrl_slots.layout import HEADS

RECORDED = Path(__file__).resolve().parents[1] / "data" / "oracle_actions_v1.pt"
CASES = {
    "default_2x5": (LifecycleConfig(), (2, 5)),
    "auto_advance_5x10": (LifecycleConfig(auto_advance=True, enabled_slots=(5, 20)), (5, 10)),
    "max_seeds_1x3": (LifecycleConfig(max_seeds=2, max_epochs=12), (1, 3)),
}


def oracle_rollouts(name: str) -> dict:
    """30 steps (past a reset) of the oracle in 8 envs with seed 3."""
    cfg, grid = CASES[name]
    env = SeedLifecycleEnv(8, *grid, config=cfg, seed=3)
    with torch.no_grad():
        td = env.rollout(30, OraclePolicy(env), break_when_any_done=False)
    return {"action": td["action"].to_dict(), "score": td["next", "info", "score"]}


@pytest.mark.parametrize("name", sorted(CASES))
def test_oracle_actions_match_the_recording(name):
    expected = torch.load(RECORDED, weights_only=True)[name]
    got = oracle_rollouts(name)
    for h in HEADS:
        assert torch.equal(got["action"][h], expected["action"][h]), h
    assert torch.equal(got["score"], expected["score"])
    assert (expected["action"]["op"] != 0).any()  # the recording is not all WAIT
