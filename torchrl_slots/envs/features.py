"""Observation features of the seed-lifecycle simulator (docs/simulator.md).

Base features (23), all finite and clipped to |x| <= 3:

====  ===================================  ====  ===================================
idx   feature                              idx   feature
====  ===================================  ====  ===================================
0     epoch / max_epochs                   10    best_val_loss
1     epochs left / max_epochs             11-15 last 5 val losses (newest first)
2     train_loss                           16-20 last 5 val accs / 100 (newest first)
3     val_loss                             21    total seed params / host (clipped at 3)
4     loss_delta (val)                     22    live seeds / enabled slots
5     train_acc / 100
6     val_acc / 100
7     acc_delta / 10
8     plateau epochs / max_epochs
9     best_val_acc / 100
====  ===================================  ====  ===================================

Losses are a consistent companion of accuracy: ``loss = 2.5 * (1 - acc / 100)``.

Slot features (39); disabled/padding slots are all zero:

=====  ==============================================================================
idx    feature
=====  ==============================================================================
0      is_active (the slot holds a seed: GERMINATED..FOSSILIZED)
1-9    stage one-hot: DORMANT, GERMINATED, TRAINING, BLENDING, HOLDING, FOSSILIZED,
       PRUNED, EMBARGOED, RESETTING
10     pruning in progress
11     alpha
12     observed contribution / 5 (counterfactual once alpha > 0, else the weak signal)
13     contribution velocity / 5
14     tempo / 8
15     alpha_target
16     alpha mode (idle 0, up 0.5, down 1)
17     alpha steps total / 8
18     alpha steps done / 8
19     epochs in stage / max_epochs
20     alpha velocity
21     algorithm (ADD 0, MULTIPLY 0.5, GATE 1)
22     interaction_sum / 5: the slot's own pair terms, 1/2 sum_j a_i a_j p_i p_j S  [scaffolding]
23     boost_received / 5: sum of the positive pair terms                          [scaffolding]
24     upstream alpha sum / 5 (seeds to the left in the same row)                  [scaffolding]
25     downstream alpha sum / 5 (seeds to the right in the same row)               [scaffolding]
26-38  blueprint one-hot (13, NOOP first)
=====  ==============================================================================
"""

from __future__ import annotations

import torch

from torchrl_slots import layout
from torchrl_slots.envs.simulator import SeedSimulator, SimState
from torchrl_slots.layout import Stage

FEATURE_BOUND = 3.0


def _loss(acc: torch.Tensor) -> torch.Tensor:
    return 2.5 * (1.0 - acc / 100.0)


def base_features(sim: SeedSimulator, s: SimState) -> torch.Tensor:
    """Global features ``[E, 23]``."""
    t_max = float(sim.config.max_epochs)
    t = s.epoch.float()
    val_loss_hist = _loss(s.val_hist)  # [E, 5]
    n_enabled = s.enabled.sum(-1).clamp_min(1).float()
    live = sim.is_live(s)
    seeded = live | (s.stage == Stage.FOSSILIZED)
    params = (sim.world.cost[s.blueprint] * seeded).sum(-1)
    cols = [
        t / t_max,
        (t_max - t) / t_max,
        _loss(s.train_acc),
        val_loss_hist[:, 0],
        val_loss_hist[:, 0] - val_loss_hist[:, 1],
        s.train_acc / 100.0,
        s.val_acc / 100.0,
        (s.val_hist[:, 0] - s.val_hist[:, 1]) / 10.0,
        s.plateau.float() / t_max,
        s.best_acc / 100.0,
        _loss(s.best_acc),
    ]
    out = torch.cat(
        [torch.stack(cols, -1), val_loss_hist, s.val_hist / 100.0,
         torch.stack([params, live.sum(-1).float() / n_enabled], -1)],
        dim=-1,
    )  # [E, 23]
    return out.clamp(-FEATURE_BOUND, FEATURE_BOUND)


def slot_features(sim: SeedSimulator, s: SimState) -> torch.Tensor:
    """Per-slot features ``[E, N, 39]``; disabled slots are all zero.

    Written column by column into one preallocated tensor (the step's hot spot at 1024 x 50).
    """
    t_max = float(sim.config.max_epochs)
    e, n = s.stage.shape
    f = s.alpha.new_zeros(layout.SLOT_FEATURES, e, n)  # [39, E, N]: contiguous column writes
    seeded = (s.stage >= Stage.GERMINATED) & (s.stage <= Stage.FOSSILIZED)
    f[0] = seeded
    f.scatter_(0, (1 + s.stage)[None], 1.0)  # stage one-hot, features 1-9
    f[10] = s.pruning
    f[11] = s.alpha
    f[12] = s.observed / 5.0
    f[13] = (s.observed - s.prev_observed) / 5.0
    f[14] = s.tempo / 8.0
    f[15] = s.target
    ramp_on = s.ramp_mode > 0
    f[16] = s.ramp_mode * 0.5
    f[17] = s.ramp_total * ramp_on / 8.0
    f[18] = s.ramp_done * ramp_on / 8.0
    f[19] = s.in_stage / t_max
    f[20] = s.alpha - s.prev_alpha
    f[21] = s.algorithm * seeded * 0.5
    if sim.config.scaffolding:
        pairs = s.pairs  # [E, N, 4]
        f[22] = 0.5 * pairs.sum(-1) / 5.0
        f[23] = pairs.clamp_min(0).sum(-1) / 5.0
        f[24] = (s.alpha @ sim.upstream.T) / 5.0
        f[25] = (s.alpha @ sim.downstream.T) / 5.0
    f.scatter_(0, (26 + s.blueprint)[None], 1.0)  # blueprint one-hot, features 26-38
    f[10:26].clamp_(-FEATURE_BOUND, FEATURE_BOUND)
    f.masked_fill_(~s.enabled[None], 0.0)
    out = f.permute(1, 2, 0).contiguous()  # [E, N, 39]
    return out
