"""Per-batch metrics from a collected ``[E, T]`` batch and from the loss outputs."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Mapping

import torch
from tensordict import TensorDictBase

from torchrl_slots import layout
from torchrl_slots.layout import Op


def batch_metrics(batch: TensorDictBase, *, random_score: float, oracle_score: float) -> dict[str, float]:
    """Episode and behaviour statistics of one collected batch (``RewardSum``/``StepCounter``
    keys needed). Episode stats are over the episodes that ended in this batch (NaN if none)."""
    done = batch["next", "done"].squeeze(-1)  # [E, T]
    ended = int(done.sum())
    nan = float("nan")
    score = batch["next", "info", "score"][done]
    out = {
        "train/episodes": float(ended),
        "train/episode_return": float(batch["next", "episode_reward"].squeeze(-1)[done].mean()) if ended else nan,
        "train/episode_score": float(score.mean()) if ended else nan,
        "train/episode_length": float(batch["next", "step_count"].squeeze(-1)[done].float().mean()) if ended else nan,
        "train/final_val_acc": float(batch["next", "info", "val_acc"][done].mean()) if ended else nan,
        "train/live_seeds": float(batch["next", "info", "live_seeds"].float().mean()),
        "train/invalid_action_rate": float(batch["next", "info", "invalid_action"].float().mean()),
        "train/reward_mean": float(batch["next", "reward"].mean()),
    }
    gap = oracle_score - random_score
    out["train/score_normalized"] = (out["train/episode_score"] - random_score) / gap if ended and gap > 0 else nan
    ops = torch.bincount(batch["action", "op"].reshape(-1), minlength=layout.NUM_OPS).double()
    ops = ops / ops.sum()
    for op in Op:
        out[f"actions/{op.name}"] = float(ops[int(op)])
    return out


class LossAverager:
    """Mean of the loss module's scalar outputs over the minibatches of one batch."""

    KEYS = ("loss_objective", "loss_critic", "loss_entropy", "entropy", "kl_approx", "clip_fraction", "ESS")

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, name: str, value: float) -> None:
        if math.isfinite(value):
            self.sums[name] += value
            self.counts[name] += 1

    def add_loss(self, out: TensorDictBase) -> None:
        for k in self.KEYS:
            if k in out.keys():
                self.add(f"loss/{k}", float(out[k].detach().float().mean()))
        if "composite_entropy" in out.keys():
            ent = out["composite_entropy"]
            for h in layout.HEADS:
                key = ("action", f"{h}_entropy")
                if key in ent.keys(True, True):
                    self.add(f"entropy/{h}", float(ent[key].detach().float().mean()))

    def means(self) -> Mapping[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums}
