"""Reference policies, the anchors of every learning result (docs/simulator.md).

* :class:`WaitPolicy` - always WAIT (score 0).
* :class:`RandomPolicy` - uniformly random legal actions (op first, then that op's rows).
* :class:`HeuristicPolicy` - public knowledge only, reads the observation: germinate the best
  public ``q_b / cost_b`` blueprint in free slots in depth order, advance as soon as the gates
  allow with target 1.0, fossilize when the observed contribution passes a threshold, prune when
  it is clearly negative.
* :class:`OraclePolicy` - reads the env's hidden world and each seed's true gain: germinates the
  blueprint and style with the best expected value net of rent given its neighbours, best
  positions first and never a negative one, fast ramps, prunes seeds that turned out bad, and
  fossilizes late enough to let slow learners train. An upper reference, not the optimum.

All are ``TensorDictModuleBase`` s that write ``("action", h)`` for every head, vectorized over envs.
"""

from __future__ import annotations

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase

from torchrl_slots import layout
from torchrl_slots.layout import Op, Stage

ACTION_KEYS = [("action", h) for h in layout.HEADS]
MASK_KEYS = [("action_mask", h) for h in layout.HEADS]
#: Epochs a seed needs from GERMINATE to FOSSILIZE with the fastest tempo (one op per epoch).
MIN_EPOCHS_TO_FOSSILIZE = 7


def _sample_rows(mask: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """Uniform index among the True entries of each row of ``mask`` ``[E, n]`` (each row needs
    one): legal entries score in [1, 2), illegal ones in [0, 1), and the argmax is uniform among
    the legal ones (cheaper than ``multinomial``)."""
    u = torch.rand(mask.shape, generator=gen, device=mask.device)
    return (u + mask).argmax(-1)


def sample_legal(masks: dict[str, torch.Tensor] | TensorDictBase, gen: torch.Generator | None = None
                 ) -> dict[str, torch.Tensor]:
    """Uniformly random legal factored action from the ``action_mask`` entries.

    Examples:
        >>> from torchrl_slots.envs import SeedLifecycleEnv
        >>> env = SeedLifecycleEnv(2, 1, 3, seed=0)
        >>> td = env.reset()
        >>> a = sample_legal(td["action_mask"], torch.Generator().manual_seed(0))
        >>> sorted(a) == sorted(layout.HEADS)
        True
    """
    op = _sample_rows(masks["op"], gen)  # [E]
    ar = torch.arange(op.shape[0], device=op.device)
    out = {"op": op}
    for h in layout.HEADS[1:]:
        out[h] = _sample_rows(masks[h][ar, op], gen)
    return out


def _first(mask: torch.Tensor, key: torch.Tensor | None = None) -> torch.Tensor:
    """Index of the True entry with the smallest ``key`` (default: index) per row; 0 if none."""
    if key is None:
        key = torch.arange(mask.shape[-1], device=mask.device).expand_as(mask)
    big = torch.iinfo(torch.int64).max
    return torch.where(mask, key, big).argmin(-1)


def _legal_slots(masks: TensorDictBase, op: Op) -> torch.Tensor:
    """``[E, N]``: slots ``op`` may act on (the mask row AND'ed with the op being legal, since an
    illegal op's row is the index-0 placeholder)."""
    return masks["slot"][:, op] & masks["op"][:, op, None]


class _ActionWriter(TensorDictModuleBase):
    """Base: subclasses compute ``dict(head -> [E] int64)`` from the tensordict."""

    in_keys = MASK_KEYS
    out_keys = ACTION_KEYS

    def act(self, td: TensorDictBase) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        for h, v in self.act(tensordict).items():
            tensordict.set(("action", h), v)
        return tensordict


def _compose(td: TensorDictBase, choices: list[tuple[torch.Tensor, int, torch.Tensor, dict[str, int]]]
             ) -> dict[str, torch.Tensor]:
    """First-match priority list -> action. Each choice: (want [E] bool, op, slot [E], heads).

    Heads not given default to index 0; ``want`` must only be True where the action is legal.
    """
    e = td.batch_size[0]
    dev = td["action_mask", "op"].device
    action = {h: torch.zeros(e, dtype=torch.long, device=dev) for h in layout.HEADS}
    taken = torch.zeros(e, dtype=torch.bool, device=dev)
    for want, op, slot, heads in choices:
        pick = want & ~taken
        action["op"] = torch.where(pick, op, action["op"])
        action["slot"] = torch.where(pick, slot, action["slot"])
        for h, v in heads.items():
            action[h] = torch.where(pick, v, action[h])
        taken = taken | pick
    return action


class WaitPolicy(_ActionWriter):
    """Always WAIT. ``WaitPolicy(env)``."""

    def __init__(self, env=None) -> None:
        super().__init__()

    def act(self, td: TensorDictBase) -> dict[str, torch.Tensor]:
        op_mask = td["action_mask", "op"]
        return {h: torch.zeros(op_mask.shape[0], dtype=torch.long, device=op_mask.device) for h in layout.HEADS}


class RandomPolicy(_ActionWriter):
    """Uniformly random legal actions with its own generator. ``RandomPolicy(env, seed=0)``."""

    def __init__(self, env=None, seed: int = 0) -> None:
        super().__init__()
        self._seed = seed
        self._gen: torch.Generator | None = None

    def act(self, td: TensorDictBase) -> dict[str, torch.Tensor]:
        masks = td["action_mask"]
        if self._gen is None or self._gen.device != masks.device:
            self._gen = torch.Generator(device=masks.device).manual_seed(self._seed)
        return sample_legal(masks, self._gen)


class HeuristicPolicy(_ActionWriter):
    """Public-knowledge heuristic (see module docstring). ``HeuristicPolicy(env)``.

    Args:
        env: the env (only its public layout is read: grid size and ``max_epochs``).
        fossilize_threshold: observed contribution (pp) above which a HOLDING seed is fossilized.
        prune_threshold: observed contribution (pp) below which a blended seed is pruned.
    """

    in_keys = MASK_KEYS + [("observation", "base"), ("observation", "slots")]

    def __init__(self, env, *, fossilize_threshold: float = 0.5, prune_threshold: float = -0.5) -> None:
        super().__init__()
        self.max_epochs = env.config.max_epochs
        self.fossilize_threshold, self.prune_threshold = fossilize_threshold, prune_threshold
        ratio = [b.quality / b.cost if b.cost > 0 else -1.0 for b in layout.BLUEPRINTS]
        self.blueprint = int(torch.tensor(ratio).argmax())
        rows, cols = layout.grid_ids(env.rows, env.cols)
        self.register_buffer("depth_key", cols * env.rows + rows, persistent=False)

    def act(self, td: TensorDictBase) -> dict[str, torch.Tensor]:
        m = td["action_mask"]
        slots = td["observation", "slots"]  # [E, N, 39]
        contrib = slots[..., 12] * 5.0
        alpha = slots[..., 11]
        # epochs left, rounded: the float32 feature times max_epochs can miss the integer
        # (7/23 * 23 = 6.9999995), which flipped the ">= 7 epochs left" test
        left = (td["observation", "base"][:, 1] * self.max_epochs).round()  # [E]
        key = self.depth_key.to(slots.device).expand_as(contrib)
        foss_ok = _legal_slots(m, Op.FOSSILIZE) & (
            (contrib > self.fossilize_threshold) | ((left <= 2)[:, None] & (contrib > 0))
        )
        prune_ok = _legal_slots(m, Op.PRUNE) & (alpha > 0) & (contrib < self.prune_threshold)
        adv_ok = _legal_slots(m, Op.ADVANCE)
        germ_ok = _legal_slots(m, Op.GERMINATE) & (left >= MIN_EPOCHS_TO_FOSSILIZE)[:, None]
        full = torch.full_like(left, len(layout.ALPHA_TARGETS) - 1, dtype=torch.long)
        bp = torch.full_like(full, self.blueprint)
        return _compose(td, [
            (foss_ok.any(-1), Op.FOSSILIZE, _first(foss_ok), {}),
            (prune_ok.any(-1), Op.PRUNE, _first(prune_ok), {}),
            (adv_ok.any(-1), Op.ADVANCE, _first(adv_ok, key), {}),
            (germ_ok.any(-1), Op.GERMINATE, _first(germ_ok, key), {"blueprint": bp, "alpha_target": full}),
        ])


#: Ops a live seed still needs before it is fossilized, by stage (ADVANCEs, then FOSSILIZE).
OPS_TO_FOSSILIZE = {Stage.GERMINATED: 4, Stage.TRAINING: 3, Stage.BLENDING: 2, Stage.HOLDING: 1}
#: Steps of a new seed's remaining episode in which it makes no training progress, as the oracle
#: counts them: the GERMINATE step (GERMINATED does not learn) and the FOSSILIZE step (FOSSILIZED
#: does not learn; an episode's last step is the latest one). A live seed has only the latter.
GERMINATE_STEPS, FOSSILIZE_STEPS = 1, 1
#: Steps after GERMINATE before a new seed pays rent, as the oracle counts them: GERMINATE, ADVANCE
#: into TRAINING, ADVANCE into BLENDING (the blend's first step already has a small alpha and rent;
#: the oracle leaves it out).
RENT_FREE_STEPS = 3
#: Progress at which a live seed has little left to learn, so fossilizing it now loses little.
NEARLY_LEARNED = 0.9
#: Slack (steps beyond the pending ops) at which the oracle fossilizes a HOLDING seed in the
#: first, priority rule, and in the last-resort rule after germination was declined.
LATE_SLACK, LAST_CALL_SLACK = 1, 3
#: Expected contributions (pp) are ranked as integers ``round-towards-zero(-expect * KEY_SCALE)``:
#: highest first, ties below 0.001 pp broken by slot index.
KEY_SCALE = 1000


class OraclePolicy(_ActionWriter):
    """Greedy oracle reading the env's hidden state (see module docstring). ``OraclePolicy(env)``.

    It reads ``env.state`` at call time, so it must act on the env it was built with, in step.
    Priorities, first match per env: fossilize a worthwhile seed that is late (few steps left for
    its pending ops, or nearly learned); prune a seed expected to end negative; advance the most
    valuable seed; germinate the best (slot, blueprint, style) if its value net of rent beats
    ``min_gain`` and there is room to bring it to FOSSILIZED; fossilize a worthwhile seed when
    only a few steps are left beyond the pending ops; else WAIT.
    """

    def __init__(self, env, *, min_gain: float = 0.1) -> None:
        super().__init__()
        self.env = env
        self.min_gain = min_gain
        sim = env.sim
        w = sim.world
        # best style per (slot, blueprint): argmax_s m[b, alg(s)] * V[n, b] (sign of V matters)
        styled = w.style_affinity[:, sim.style_alg].T[None] * sim.slot_value[:, None, :]  # [N, 4, 13]
        self.best_value, self.best_style = styled.max(dim=1)  # [N, 13]

    def _final_progress(self, rate: torch.Tensor, epochs: torch.Tensor) -> torch.Tensor:
        """Progress a fresh seed reaches in ``epochs`` epochs of learning: ``1 - (1 - rate)^epochs``."""
        return 1.0 - (1.0 - rate) ** epochs.clamp_min(0).float()

    def _pending_ops(self, s) -> torch.Tensor:
        """``[E]``: ops the live seeds still need before FOSSILIZED (only FOSSILIZE under auto_advance)."""
        need = torch.zeros_like(s.stage)
        for stage, ops in OPS_TO_FOSSILIZE.items():
            need = torch.where(s.stage == stage, ops, need)
        if self.env.config.auto_advance:
            need = (need > 0).long()
        return (need * self.env.sim.is_live(s)).sum(-1)

    def _expected_final(self, s, left: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each seed's expected final contribution from its true gain, its progress at the end and its
        neighbours: ``(expect [E, N], neighbours' final progress p_nb [E, N, 4], their blueprints
        bp_nb [E, N, 4])`` (padding neighbours have progress and blueprint 0)."""
        sim, w = self.env.sim, self.env.sim.world
        live = sim.is_live(s)
        final = self._final_progress(w.rate[s.blueprint], left[:, None] - FOSSILIZE_STEPS)
        p_end = torch.where(live, s.progress + (1 - s.progress) * final, s.progress)
        seeded = live | (s.stage == Stage.FOSSILIZED)
        p_nb = torch.cat([p_end * seeded, p_end.new_zeros(p_end.shape[0], 1)], 1)[:, sim.neighbours]  # [E, N, 4]
        bp_nb = torch.cat([s.blueprint, s.blueprint.new_zeros(s.blueprint.shape[0], 1)], 1)[:, sim.neighbours]
        pair_now = (p_end[..., None] * p_nb * w.interaction[s.blueprint[..., None], bp_nb]).sum(-1)
        return p_end * s.gain + pair_now, p_nb, bp_nb

    def _best_germination(self, m: TensorDictBase, left: torch.Tensor, p_nb: torch.Tensor,
                          bp_nb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The best legal germination per env: ``(value net of rent [E], slot [E], blueprint [E],
        style [E])``, valued with the neighbours that are there now."""
        w, cfg = self.env.sim.world, self.env.config
        learning_epochs = (left - GERMINATE_STEPS - FOSSILIZE_STEPS).clamp_min(0)[:, None]
        p_new = self._final_progress(w.rate, learning_epochs)  # [E, 13]
        pair = torch.einsum("enk,enkb->enb", p_nb, w.interaction[bp_nb])  # [E, N, 13]
        rent_epochs = (left[:, None] - RENT_FREE_STEPS).clamp_min(0).float()
        net = p_new[:, None] * (self.best_value + pair) - cfg.rent_scale * w.cost * rent_epochs[..., None]
        net[..., 0] = -float("inf")  # blueprint 0 is NOOP
        net = torch.where(_legal_slots(m, Op.GERMINATE)[..., None], net, -float("inf"))
        best_net, best_bp = net.max(-1)  # [E, N]
        value, slot = best_net.max(-1)  # [E]
        bp = best_bp[torch.arange(slot.shape[0], device=slot.device), slot]
        return value, slot, bp, self.best_style[slot, bp]

    def act(self, td: TensorDictBase) -> dict[str, torch.Tensor]:
        s, m = self.env.state, td["action_mask"]
        left = self.env.config.max_epochs - s.epoch  # [E] steps left including this one
        pending = self._pending_ops(s)  # [E]
        expect, p_nb, bp_nb = self._expected_final(s, left)  # [E, N]
        foss_ok = _legal_slots(m, Op.FOSSILIZE) & (expect > 0)
        late = (left <= pending + LATE_SLACK)[:, None] | (s.progress >= NEARLY_LEARNED)
        prune_ok = _legal_slots(m, Op.PRUNE) & (expect < 0)
        adv_ok = _legal_slots(m, Op.ADVANCE) & (expect > 0)
        germ_value, germ_slot, bp, style = self._best_germination(m, left, p_nb, bp_nb)
        germ_want = (germ_value > self.min_gain) & (left >= pending + MIN_EPOCHS_TO_FOSSILIZE)
        target = torch.full_like(bp, len(layout.ALPHA_TARGETS) - 1)  # alpha target 1.0
        best_first = (-expect * KEY_SCALE).long()
        return _compose(td, [
            ((foss_ok & late).any(-1), Op.FOSSILIZE, _first(foss_ok & late, best_first), {}),
            (prune_ok.any(-1), Op.PRUNE, _first(prune_ok), {}),
            (adv_ok.any(-1), Op.ADVANCE, _first(adv_ok, best_first), {}),
            (germ_want, Op.GERMINATE, germ_slot, {"blueprint": bp, "style": style, "alpha_target": target}),
            (foss_ok.any(-1) & (left <= pending + LAST_CALL_SLACK), Op.FOSSILIZE, _first(foss_ok, best_first), {}),
        ])
