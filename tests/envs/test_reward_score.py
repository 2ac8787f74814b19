"""Reward and score accounting (docs/simulator.md "Reward and score"), recomputed from the hidden state.

Every step of heuristic, oracle and random episodes:
``r_t = C(s_{t+1}) - C(s_t) - rent_t - op_cost [op != WAIT] + pbrs (gamma phi(s_{t+1}) - phi(s_t))``
with ``phi(s_T) := 0``, plus at the last step ``-sum_{not fossilized} c_i + bonus #{fossilized,
c_i >= 1}``, where ``C`` is the seeds' total contribution recomputed here from alpha, progress,
gain and the pair table. The score is ``sum_{fossilized} c_i(T) - sum_t rent_t``. Without op cost,
PBRS and bonus the return equals the score; ``reward="sparse"`` pays the score at the end; the
host's own progress is never rewarded; parking seeds without fossilizing them does not pay.
"""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDictBase

from torchrl_slots import layout
from torchrl_slots.envs import HeuristicPolicy, LifecycleConfig, OraclePolicy, SeedLifecycleEnv, WaitPolicy
from torchrl_slots.layout import Op, Stage

E = 32
POTENTIAL = torch.tensor([layout.STAGE_POTENTIAL.get(s, 0.0) for s in Stage])


def contributions(state: dict, env: SeedLifecycleEnv) -> torch.Tensor:
    """``c_i = a_i p_i g_i + 1/2 sum_{j 4-neighbour} a_i a_j p_i p_j S[b_i, b_j]``, ``[E, N]``,
    written out slot by slot (independent of the simulator's vectorized version)."""
    s_table, rows, cols = env.sim.world.interaction, env.rows, env.cols
    ap = state["alpha"] * state["progress"]
    c = ap * state["gain"]
    for i in range(rows * cols):
        r, col = divmod(i, cols)
        for dr, dc in ((0, -1), (0, 1), (-1, 0), (1, 0)):
            rr, cc = r + dr, col + dc
            if 0 <= rr < rows and 0 <= cc < cols:
                j = rr * cols + cc
                c[:, i] += 0.5 * ap[:, i] * ap[:, j] * s_table[state["blueprint"][:, i], state["blueprint"][:, j]]
    return c


def rent(state: dict, env: SeedLifecycleEnv) -> torch.Tensor:
    cost = torch.tensor([b.cost for b in layout.BLUEPRINTS])
    return env.config.rent_scale * (state["alpha"] * cost[state["blueprint"]]).sum(-1)


def potential(state: dict) -> torch.Tensor:
    return POTENTIAL[state["stage"]].sum(-1)


class _RandomLegal:
    def __init__(self, env: SeedLifecycleEnv) -> None:
        self.env = env

    def __call__(self, td: TensorDictBase) -> TensorDictBase:
        return self.env.rand_action(td)


class _NeverFossilize:
    """The heuristic with every FOSSILIZE replaced by WAIT: seeds are parked until discarded."""

    def __init__(self, env: SeedLifecycleEnv) -> None:
        self.heuristic = HeuristicPolicy(env)

    def __call__(self, td: TensorDictBase) -> TensorDictBase:
        td = self.heuristic(td)
        foss = td["action", "op"] == Op.FOSSILIZE
        for h in layout.HEADS:
            td.set(("action", h), td["action", h].masked_fill(foss, 0))
        return td


@pytest.mark.parametrize("policy", [HeuristicPolicy, OraclePolicy, _RandomLegal, _NeverFossilize])
@pytest.mark.parametrize(("rows", "cols", "auto"), [(2, 5, False), (1, 3, True)])
def test_every_shaped_reward_is_the_change_of_contribution_minus_rent_and_costs(policy, rows, cols, auto, play_episode):
    env = SeedLifecycleEnv(E, rows, cols, config=LifecycleConfig(auto_advance=auto), seed=11)
    cfg = env.config
    records = play_episode(env, policy(env))
    rent_total = torch.zeros(E)
    for t, rec in enumerate(records):
        before, after = rec["before"], rec["after"]
        c_before, c_after = contributions(before, env), contributions(after, env)
        torch.testing.assert_close(after["contribution"], c_after, atol=1e-5, rtol=0)
        done = t == cfg.max_epochs - 1
        assert bool(rec["next"]["terminated"].all()) == done
        op = rec["td"]["action", "op"]
        r_t = rent(after, env)
        rent_total += r_t
        phi_after = torch.zeros(E) if done else potential(after)
        expected = (c_after.sum(-1) - c_before.sum(-1) - r_t - cfg.op_cost * (op != Op.WAIT).float()
                    + cfg.pbrs_scale * (cfg.gamma * phi_after - potential(before)))
        fossil = after["stage"] == Stage.FOSSILIZED
        if done:
            good = (fossil & (c_after >= cfg.fossil_bonus_threshold)).sum(-1)
            expected = expected - (c_after * ~fossil).sum(-1) + cfg.fossil_bonus * good
            score = (c_after * fossil).sum(-1) - rent_total
            torch.testing.assert_close(rec["next"]["info", "score"], score, atol=1e-4, rtol=0)
            torch.testing.assert_close(after["rent_total"], rent_total, atol=1e-4, rtol=0)
        else:
            assert (rec["next"]["info", "score"] == 0).all()
        torch.testing.assert_close(rec["next"]["reward"].squeeze(-1), expected, atol=1e-4, rtol=0,
                                   msg=lambda m: f"step {t}: {m}")
    if policy is _NeverFossilize:
        score = records[-1]["next"]["info", "score"]
        torch.testing.assert_close(score, -rent_total, atol=1e-4, rtol=0)
        ret = torch.stack([r["next"]["reward"].squeeze(-1) for r in records]).sum(0)
        assert (ret < 0).all(), "parking seeds without fossilizing them must not pay (PBRS phi_T = 0)"


@pytest.mark.parametrize("policy", [HeuristicPolicy, OraclePolicy, _RandomLegal])
def test_unshaped_return_equals_the_score(policy):
    """With no op cost, no PBRS and no bonus, the shaped reward telescopes to the score."""
    cfg = LifecycleConfig(pbrs_scale=0.0, op_cost=0.0, fossil_bonus=0.0)
    env = SeedLifecycleEnv(64, 2, 5, config=cfg, seed=3)
    td = env.rollout(cfg.max_epochs, policy(env), break_when_any_done=False)
    ret = td["next", "reward"].sum((1, 2))
    score = td["next", "info", "score"][:, -1]
    torch.testing.assert_close(ret, score, atol=1e-4, rtol=0)
    if policy is not _RandomLegal:
        assert (score != 0).all()


@pytest.mark.parametrize("policy", [HeuristicPolicy, _RandomLegal])
def test_sparse_reward_is_the_score_at_the_last_step(policy):
    env = SeedLifecycleEnv(32, 2, 5, config=LifecycleConfig(reward="sparse"), seed=4)
    td = env.rollout(env.config.max_epochs, policy(env), break_when_any_done=False)
    reward, score = td["next", "reward"].squeeze(-1), td["next", "info", "score"]
    assert torch.equal(reward, score)
    assert (reward[:, :-1] == 0).all()
    shaped_env = SeedLifecycleEnv(32, 2, 5, seed=4)  # same seed and policy: the same score
    shaped = shaped_env.rollout(shaped_env.config.max_epochs, policy(shaped_env), break_when_any_done=False)
    torch.testing.assert_close(shaped["next", "info", "score"][:, -1], score[:, -1], atol=0, rtol=0)


def test_host_progress_is_never_rewarded():
    env = SeedLifecycleEnv(16, 2, 5, seed=0)
    td = env.rollout(env.config.max_epochs, WaitPolicy(env), break_when_any_done=False)
    val = td["next", "info", "val_acc"]
    assert (val[:, -1] - val[:, 0] > 10).all(), "the host should improve a lot over an episode"
    assert (td["next", "reward"] == 0).all()
