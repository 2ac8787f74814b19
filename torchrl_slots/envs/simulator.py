"""Surrogate dynamics of the seed lifecycle on tensors ``[num_envs, N]`` (docs/simulator.md).

Pure tensor code, no TorchRL: :class:`SeedSimulator` owns the state of ``E`` episodes and moves
them one host epoch at a time. The lifecycle itself (stages, ops, gates, masks, alpha ramps) is
:class:`~torchrl_slots.envs.lifecycle.SeedLifecycle`, shared with the real host env; this module
adds the surrogate's world: gains, training progress, contributions, the host curve and rent.
No Python loop runs over envs or slots; the few loops here run over a fixed number of fields.

Reward terms (``reward="shaped"``), all in accuracy points (pp), per step ``t``:

=================  ==========================================================================
term               meaning and scale
=================  ==========================================================================
``delta_contrib``  ``sum_i c_i(t+1) - sum_i c_i(t)``: change of the seeds' total contribution
                   (the host's own progress is never rewarded)
``-rent``          ``rent_scale * sum_{alpha_i > 0} alpha_i * cost_{b_i}`` (0.2 x cost x alpha)
``-op_cost``       ``op_cost`` (0.02) when the executed op is not WAIT
``pbrs``           ``pbrs_scale * (gamma * phi(s') - phi(s))`` with stage potentials summed over
                   seeds (GERMINATED 1, TRAINING 2, BLENDING 3.5, HOLDING 5.5, FOSSILIZED 6);
                   ``phi(s_T) := 0`` at the last step
``terminal``       last step only: ``-sum_{not fossilized} c_i(T)`` (discarded seeds) plus
                   ``fossil_bonus`` (0.5) per fossilized seed with ``c_i >= 1`` pp
=================  ==========================================================================

The unshaped score (``("info", "score")``, last step only) is
``sum_{fossilized} c_i(T) - sum_t rent_t``. ``reward="sparse"`` pays the score at the last step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from torchrl_slots import layout
from torchrl_slots.envs.config import LifecycleConfig
from torchrl_slots.envs.lifecycle import LifecycleState, SeedLifecycle, lifecycle_fields, ramp_value
from torchrl_slots.envs.world import World, neighbour_index
from torchrl_slots.layout import Stage

__all__ = ["HISTORY", "SeedSimulator", "SimState", "ramp_value"]

HISTORY = 5  # last val losses / accs kept in the base features


@dataclass
class SimState(LifecycleState):
    """State of ``E`` episodes: the lifecycle fields plus the surrogate's. Per-slot fields are
    ``[E, N]``, per-env fields ``[E]``."""

    # per slot
    gain: torch.Tensor  # float, true gain g_i (hidden)
    progress: torch.Tensor  # float, p_i in [0, 1]
    contribution: torch.Tensor  # float, c_i (hidden, true)
    pairs: torch.Tensor  # float [E, N, 4], a_i a_j p_i p_j S[b_i, b_j] per neighbour (hidden)
    # per env
    host_a0: torch.Tensor  # float
    host_inf: torch.Tensor  # float
    host_tau: torch.Tensor  # float
    val_acc: torch.Tensor  # float
    train_acc: torch.Tensor  # float
    val_hist: torch.Tensor  # float [E, HISTORY], most recent first
    best_acc: torch.Tensor  # float
    plateau: torch.Tensor  # int64
    rent_total: torch.Tensor  # float


class SeedSimulator(SeedLifecycle):
    """Dynamics of ``num_envs`` episodes on a ``rows x cols`` grid (see module docstring).

    Examples:
        >>> sim = SeedSimulator(4, 1, 3, LifecycleConfig())
        >>> g = torch.Generator().manual_seed(0)
        >>> state = sim.reset(None, torch.ones(4, dtype=torch.bool), g)
        >>> masks = sim.masks(state)
        >>> masks["op"][:, layout.Op.GERMINATE].all().item()
        True
    """

    germinate_zero_fields = ("progress",) + SeedLifecycle.germinate_zero_fields
    dormant_zero_fields = ("gain", "progress") + SeedLifecycle.dormant_zero_fields

    def __init__(
        self,
        num_envs: int,
        rows: int,
        cols: int,
        config: LifecycleConfig,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(num_envs, rows, cols, config, device)
        self.world = World(
            config.task_seed,
            affinity_std=config.affinity_std,
            interaction_std=config.interaction_std,
            style_affinity=tuple(config.style_affinity),
            device=self.device,
        )
        self.slot_value = self.world.slot_values(rows, cols)  # [N, 13]
        self.neighbours = neighbour_index(rows, cols).to(self.device)  # [N, 4], N = padding

    # ------------------------------------------------------------------ reset
    def reset(self, state: SimState | None, mask: torch.Tensor, gen: torch.Generator) -> SimState:
        """New episodes where ``mask`` ([E] bool); other envs keep ``state``.

        Random draws have fixed shapes whatever the mask, so an env's episode depends only on
        the generator's stream, not on which other envs reset.
        """
        e, n, dev = self.num_envs, self.num_slots, self.device
        u = torch.rand(e, 4, generator=gen, device=dev)
        a0, a_inf, tau = 20 + 10 * u[:, 0], 55 + 15 * u[:, 1], 4 + 4 * u[:, 2]
        enabled = self.draw_enabled(gen)
        zeros_f = torch.zeros(e, n, device=dev)
        val0 = a0 + self.config.val_noise * torch.randn(e, generator=gen, device=dev)
        fresh = SimState(
            **lifecycle_fields(enabled), gain=zeros_f, progress=zeros_f, contribution=zeros_f,
            pairs=torch.zeros(e, n, 4, device=dev), host_a0=a0, host_inf=a_inf, host_tau=tau,
            val_acc=val0, train_acc=val0 + 1.0, val_hist=val0[:, None].expand(e, HISTORY).clone(),
            best_acc=val0, plateau=torch.zeros(e, dtype=torch.long, device=dev),
            rent_total=torch.zeros(e, device=dev),
        )
        if state is None:
            return fresh
        state.where_(mask, fresh)
        return state

    # ------------------------------------------------------------------ lifecycle hooks
    def _on_germinate(self, s: SimState, m: torch.Tensor, action: dict[str, torch.Tensor],
                      gain_draw: torch.Tensor) -> None:
        """A new seed draws its true gain ``m[b, alg] V_b(u, v) + gain_draw`` ([E, N] noise)."""
        bp, slot = action["blueprint"], action["slot"]
        alg = self.style_alg[action["style"]]
        expected = self.world.style_affinity[bp, alg] * self.slot_value[slot, bp]  # [E]: m[b, alg] V_b(u, v)
        s.gain = torch.where(m, expected[:, None] + gain_draw, s.gain)

    def _on_style_change(self, s: SimState, m: torch.Tensor, new_alg: torch.Tensor) -> None:
        bp = s.blueprint
        ratio = self.world.style_affinity[bp, new_alg] / self.world.style_affinity[bp, s.algorithm].clamp_min(1e-6)
        s.gain = torch.where(m, s.gain * ratio, s.gain)  # the style may change the algorithm

    # ------------------------------------------------------------------ one epoch
    def epoch(self, s: SimState, noise: dict[str, torch.Tensor]) -> None:
        """Advance every env by one host epoch in place: training progress, the lifecycle (alpha
        ramps, stage timers, auto-advance), contributions, observations and accuracy history.

        ``noise``: standard normal draws ``obs`` [E, N], ``weak`` [E, N], ``val`` [E],
        ``train`` [E] (drawn by the caller with fixed shapes, for common random numbers).
        """
        s.prev_alpha = s.alpha
        s.prev_observed = s.observed
        s.epoch = s.epoch + 1
        learning = (s.stage == Stage.TRAINING) | (s.stage == Stage.BLENDING) | (s.stage == Stage.HOLDING)
        rate = self.world.rate[s.blueprint]
        s.progress = torch.where(learning, s.progress + (1.0 - s.progress) * rate, s.progress)
        self.step_lifecycle(s)
        s.pairs = self.pair_terms(s)
        s.contribution = self.contributions(s, s.pairs)
        self._observe(s, noise)

    def contributions(self, s: SimState, pairs: torch.Tensor | None = None) -> torch.Tensor:
        """``c_i = a_i p_i g_i + 1/2 sum_{j in nbr(i)} a_i a_j p_i p_j S[b_i, b_j]``: ``[E, N]``."""
        ap = s.alpha * s.progress  # [E, N]
        pairs = self.pair_terms(s, ap) if pairs is None else pairs
        return ap * s.gain + 0.5 * pairs.sum(-1)

    def pair_terms(self, s: SimState, ap: torch.Tensor | None = None) -> torch.Tensor:
        """``a_i a_j p_i p_j S[b_i, b_j]`` for each slot's 4 neighbours: ``[E, N, 4]``."""
        if ap is None:
            ap = s.alpha * s.progress
        e = ap.shape[0]
        pad_f = torch.cat([ap, ap.new_zeros(e, 1)], dim=1)  # [E, N+1]
        pad_b = torch.cat([s.blueprint, s.blueprint.new_zeros(e, 1)], dim=1)
        nb_ap = pad_f[:, self.neighbours]  # [E, N, 4]
        pair_id = s.blueprint[..., None] * layout.NUM_BLUEPRINTS + pad_b[:, self.neighbours]  # [E, N, 4]
        strength = self.world.interaction.view(-1).take(pair_id)  # S[b_i, b_j], [E, N, 4]
        return ap[..., None] * nb_ap * strength

    def _observe(self, s: SimState, noise: dict[str, torch.Tensor]) -> None:
        cfg = self.config
        live = self.is_live(s)
        strong = s.contribution + cfg.contribution_noise * noise["obs"]
        weak = s.progress * s.gain / 3.0 + cfg.weak_signal_noise * noise["weak"]
        s.observed = torch.where(s.alpha > 0, strong, torch.where(live, weak, torch.zeros_like(weak)))
        t = s.epoch.float()
        host = s.host_inf - (s.host_inf - s.host_a0) * torch.exp(-t / s.host_tau)
        s.val_acc = host + s.contribution.sum(-1) + cfg.val_noise * noise["val"]
        s.train_acc = s.val_acc + 1.0 + 2.0 * (1 - torch.exp(-t / s.host_tau)) + 0.2 * noise["train"]
        improved = s.val_acc > s.best_acc + 0.1
        s.plateau = torch.where(improved, 0, s.plateau + 1)
        s.best_acc = torch.maximum(s.best_acc, s.val_acc)
        s.val_hist = torch.cat([s.val_acc[:, None], s.val_hist[:, :-1]], dim=1)

    # ------------------------------------------------------------------ reward
    def potential(self, s: SimState) -> torch.Tensor:
        """PBRS potential ``phi(s)``: stage potentials summed over slots, ``[E]``."""
        return self.stage_potential[s.stage].sum(-1)

    def rent(self, s: SimState) -> torch.Tensor:
        """``rent_scale * sum_{alpha > 0} alpha * cost_b``: ``[E]``."""
        return self.config.rent_scale * (s.alpha * self.world.cost[s.blueprint]).sum(-1)
