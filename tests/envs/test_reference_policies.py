"""Reference policies (docs/simulator.md): wait-only, random legal, heuristic, oracle.

Over 256 seeded episodes (one batched env) per grid, on the score: wait-only is exactly 0,
random < heuristic < oracle with margins of more than 5 standard errors, and the heuristic lies
20-70 % of the way from random to oracle; the shaped return ranks the policies the same way.
The heuristic and the oracle never take an illegal action (the env runs with
``invalid_action="raise"``). The heuristic reads public knowledge only: its actions do not
depend on the hidden world, while the oracle's do.
"""

from __future__ import annotations

import math
from itertools import combinations

import pytest
import torch

from torchrl_slots.envs import HeuristicPolicy, LifecycleConfig, OraclePolicy, SeedLifecycleEnv, WaitPolicy
from torchrl_slots.layout import HEADS

EPISODES = 256
SEED = 2024
#: name -> (rows, cols, LifecycleConfig overrides)
GRIDS = {
    "1x3": (1, 3, {}),
    "2x5": (2, 5, {}),
    "5x10": (5, 10, {}),
    "5x10-auto-advance": (5, 10, {"auto_advance": True}),
}
POLICIES = {"wait": WaitPolicy, "random": None, "heuristic": HeuristicPolicy, "oracle": OraclePolicy}


def evaluate(rows: int, cols: int, overrides: dict) -> dict[str, dict[str, torch.Tensor]]:
    """Per policy: score and shaped return of each of the EPISODES episodes (same env seed)."""
    out = {}
    for name, cls in POLICIES.items():
        env = SeedLifecycleEnv(EPISODES, rows, cols, config=LifecycleConfig(**overrides), seed=SEED)
        assert env.config.invalid_action == "raise"
        with torch.no_grad():
            td = env.rollout(env.config.max_epochs, None if cls is None else cls(env), break_when_any_done=False)
        assert td["next", "terminated"][:, -1].all()
        out[name] = {
            "score": td["next", "info", "score"][:, -1],
            "return": td["next", "reward"].sum((1, 2)),
            "invalid": td["next", "info", "invalid_action"].any(),
        }
    return out


@pytest.fixture(scope="module", params=list(GRIDS), ids=list(GRIDS))
def results(request) -> dict[str, dict[str, torch.Tensor]]:
    return evaluate(*GRIDS[request.param])


def _gap_in_se(a: torch.Tensor, b: torch.Tensor) -> float:
    """(mean(b) - mean(a)) in standard errors of the difference of means."""
    se = math.sqrt(a.var().item() / a.numel() + b.var().item() / b.numel())
    diff = (b.mean() - a.mean()).item()
    return diff / se if se > 0 else math.copysign(math.inf, diff) if diff else 0.0


def test_wait_only_scores_and_earns_exactly_zero(results):
    assert (results["wait"]["score"] == 0).all()
    assert (results["wait"]["return"] == 0).all(), "host progress must never be rewarded"


def test_no_policy_takes_an_illegal_action(results):
    for name, r in results.items():
        assert not r["invalid"], name


def test_random_below_heuristic_below_oracle_on_the_score(results):
    s = {k: v["score"] for k, v in results.items()}
    assert _gap_in_se(s["random"], s["heuristic"]) > 5, "heuristic must beat random clearly"
    assert _gap_in_se(s["heuristic"], s["oracle"]) > 5, "oracle must beat heuristic clearly"
    assert _gap_in_se(s["wait"], s["heuristic"]) > 5, "heuristic must beat wait-only clearly"
    frac = (s["heuristic"].mean() - s["random"].mean()) / (s["oracle"].mean() - s["random"].mean())
    assert 0.2 <= frac.item() <= 0.7, f"heuristic at {100 * frac:.0f}% of the way from random to oracle"


def test_shaped_return_ranks_the_policies_like_the_score(results):
    for a, b in combinations(POLICIES, 2):
        gap = _gap_in_se(results[a]["score"], results[b]["score"])
        if abs(gap) > 3:  # a clear order on the score must be the same order on the return
            ret_gap = _gap_in_se(results[a]["return"], results[b]["return"])
            assert math.copysign(1, ret_gap) == math.copysign(1, gap) and abs(ret_gap) > 3, (
                f"{a} vs {b}: score gap {gap:.1f} SE but return gap {ret_gap:.1f} SE")
    r = {k: v["return"] for k, v in results.items()}
    assert _gap_in_se(r["random"], r["heuristic"]) > 5 and _gap_in_se(r["heuristic"], r["oracle"]) > 5
    # random must not beat wait-only through PBRS alone
    assert r["random"].mean() <= 0.0


def _first_action(policy_cls, env: SeedLifecycleEnv):
    td = env.reset()
    return td, policy_cls(env)(td.clone())["action"]


def test_heuristic_reads_public_knowledge_only():
    """Envs of two different hidden worlds, same episode seed: same first observation, so the
    same first heuristic action; the oracle, which reads the world, acts differently."""
    env_a = SeedLifecycleEnv(64, 2, 5, config=LifecycleConfig(task_seed=0), seed=5)
    env_b = SeedLifecycleEnv(64, 2, 5, config=LifecycleConfig(task_seed=1), seed=5)
    assert not torch.equal(env_a.sim.slot_value, env_b.sim.slot_value)
    obs_a, act_a = _first_action(HeuristicPolicy, env_a)
    obs_b, act_b = _first_action(HeuristicPolicy, env_b)
    for key in obs_a.keys(True, True):
        assert torch.equal(obs_a[key], obs_b[key]), f"first observation {key} differs"
    for h in HEADS:
        assert torch.equal(act_a[h], act_b[h]), h
    _, or_a = _first_action(OraclePolicy, env_a)
    _, or_b = _first_action(OraclePolicy, env_b)
    assert any(not torch.equal(or_a[h], or_b[h]) for h in HEADS), "the oracle should see the world"


def test_heuristic_is_a_function_of_the_observation():
    """On every observation of a rollout, heuristics built on envs of different worlds agree."""
    env_a = SeedLifecycleEnv(32, 2, 5, config=LifecycleConfig(task_seed=0), seed=1)
    env_b = SeedLifecycleEnv(32, 2, 5, config=LifecycleConfig(task_seed=3), seed=8)
    pol_a, pol_b = HeuristicPolicy(env_a), HeuristicPolicy(env_b)
    td = env_a.rollout(env_a.config.max_epochs, pol_a, break_when_any_done=False)
    for t in range(td.shape[1]):
        again = pol_b(td[:, t].exclude("action").clone())
        for h in HEADS:
            assert torch.equal(again["action", h], td["action", h][:, t]), (t, h)


def test_heuristic_epochs_left_is_exact_for_every_episode_length():
    """Regression: the heuristic read "epochs left" as ``base[1] * max_epochs`` in float32, which
    is 6.9999995 for 7 of 23 epochs left, so it skipped a germination it should make."""
    from torchrl.envs.utils import step_mdp

    from torchrl_slots.envs.reference import MIN_EPOCHS_TO_FOSSILIZE
    from torchrl_slots.layout import Op

    for max_epochs in range(MIN_EPOCHS_TO_FOSSILIZE + 1, 41):
        env = SeedLifecycleEnv(1, 1, 1, config=LifecycleConfig(max_epochs=max_epochs), seed=0)
        wait, heuristic = WaitPolicy(env), HeuristicPolicy(env)
        td = env.reset()
        for _ in range(max_epochs - MIN_EPOCHS_TO_FOSSILIZE):
            td = step_mdp(env.step(wait(td)))
        assert int(heuristic(td.clone())["action", "op"]) == Op.GERMINATE, f"max_epochs={max_epochs}: 7 left"
        td = step_mdp(env.step(wait(td)))
        assert int(heuristic(td.clone())["action", "op"]) == Op.WAIT, f"max_epochs={max_epochs}: 6 left"
