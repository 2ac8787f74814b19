"""Deterministic evaluation of a policy against the reference policies on the SAME episodes.

The env draws its noise with fixed shapes whatever the actions, so two envs built with the same
``seed`` play the same episodes (host curves, gains, noise): common random numbers. Scores are the
env's unshaped objective (``("next", "info", "score")`` at the last step), and
:func:`normalized_score` places a score between random (0) and oracle (1); on the real host
(``env="host"``), which has no oracle, between random and the best fixed plan of ``PLAN_GRID``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tensordict import TensorDictBase
from torchrl.envs import Compose, TransformedEnv
from torchrl.envs.utils import ExplorationType, set_exploration_type

from torchrl_slots.envs import (
    PLAN_GRID,
    HeuristicPolicy,
    LifecycleConfig,
    OraclePolicy,
    PlanPolicy,
    RandomPolicy,
    WaitPolicy,
    make_env,
)
from torchrl_slots.policy import SlotPolicy

BASELINES = {"wait": WaitPolicy, "random": RandomPolicy, "heuristic": HeuristicPolicy, "oracle": OraclePolicy}
#: The real host has no oracle; its upper reference is the best fixed plan of PLAN_GRID ("plan").
HOST_BASELINES = ("wait", "random", "heuristic", "plan")


@dataclass
class EvalResult:
    """Mean and standard error over episodes of the score and the shaped return."""

    score: float
    score_se: float
    ret: float
    ret_se: float
    episodes: int

    def to_dict(self) -> dict[str, float]:
        return {"score": self.score, "score_se": self.score_se, "return": self.ret,
                "return_se": self.ret_se, "episodes": self.episodes}

    @classmethod
    def from_dict(cls, d: dict[str, float]) -> "EvalResult":
        return cls(score=d["score"], score_se=d["score_se"], ret=d["return"], ret_se=d["return_se"],
                   episodes=int(d["episodes"]))


def _summarise(td: TensorDictBase) -> EvalResult:
    score = td["next", "info", "score"][:, -1].double()
    ret = td["next", "reward"].sum((1, 2)).double()
    n = score.numel()

    def se(x: torch.Tensor) -> float:
        return float(x.std() / math.sqrt(n)) if n > 1 else 0.0

    return EvalResult(float(score.mean()), se(score), float(ret.mean()), se(ret), n)


def evaluate_policy(policy: SlotPolicy, *, rows: int, cols: int, config: LifecycleConfig,
                    episodes: int, seed: int, deterministic: bool = True,
                    return_rollout: bool = False, env: str = "surrogate"
                    ) -> EvalResult | tuple[EvalResult, TensorDictBase]:
    """Play ``episodes`` whole episodes (one batched env, one rollout) and summarise them.

    Args:
        policy: the policy (any grid for the transformer; its own N for the flat LSTM).
        rows, cols, config: the evaluation env; ``config.task_seed`` should be the training one.
        episodes: episodes (= parallel envs).
        seed: the episode seed; the baselines use the same one in :func:`evaluate_baselines`.
        deterministic: take each head's mode (True) or sample.
        return_rollout: also return the rollout tensordict ``[episodes, max_epochs]``.
        env: the env kind, ``"surrogate"`` or ``"host"`` (:func:`~torchrl_slots.envs.make_env`).
    """
    device = next(policy.parameters()).device
    base = make_env(env, episodes, rows, cols, config=config, seed=seed, device=device)
    env = TransformedEnv(base, Compose(*policy.transforms()))
    kind = ExplorationType.DETERMINISTIC if deterministic else ExplorationType.RANDOM
    was_training = policy.training
    policy.eval()
    try:
        with torch.no_grad(), set_exploration_type(kind):
            td = env.rollout(config.max_epochs, policy.actor, break_when_any_done=False)
    finally:
        policy.train(was_training)
    result = _summarise(td)
    return (result, td) if return_rollout else result


def evaluate_baselines(*, rows: int, cols: int, config: LifecycleConfig, episodes: int, seed: int,
                       names: tuple[str, ...] | None = None, env: str = "surrogate") -> dict[str, EvalResult]:
    """Score the reference policies on the episodes that :func:`evaluate_policy` plays with ``seed``.

    ``names`` default: :data:`BASELINES` on the surrogate, :data:`HOST_BASELINES` on the host, where
    ``"plan"`` is the best (highest mean score) of the fixed plans of ``PLAN_GRID``.

    Examples:
        >>> res = evaluate_baselines(rows=1, cols=3, config=LifecycleConfig(), episodes=8, seed=0)
        >>> res["wait"].score, res["oracle"].score > res["random"].score
        (0.0, True)
    """
    kind = env
    names = (tuple(BASELINES) if kind == "surrogate" else HOST_BASELINES) if names is None else names
    out = {}
    for name in names:
        policies = [(BASELINES[name], ())] if name != "plan" else [(PlanPolicy, plan) for plan in PLAN_GRID]
        results = []
        for cls, args in policies:
            base = make_env(kind, episodes, rows, cols, config=config, seed=seed)
            with torch.no_grad():
                results.append(_summarise(base.rollout(config.max_epochs, cls(base, *args), break_when_any_done=False)))
        out[name] = max(results, key=lambda r: r.score)
    return out


def normalized_score(score: float, baselines: dict[str, EvalResult]) -> float:
    """``(score - random) / (oracle - random)``: 0 = random, 1 = oracle (NaN if they tie); without an
    oracle (the real host) the best fixed plan, ``baselines["plan"]``, takes its place."""
    lo, hi = baselines["random"].score, baselines["oracle" if "oracle" in baselines else "plan"].score
    return (score - lo) / (hi - lo) if hi > lo else float("nan")
