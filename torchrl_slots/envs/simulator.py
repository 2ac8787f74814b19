"""Batched seed-lifecycle dynamics on tensors ``[num_envs, N]`` (docs/simulator.md).

Pure tensor code, no TorchRL: :class:`SeedSimulator` owns the state of ``E`` episodes and moves
them one host epoch at a time. No Python loop runs over envs or slots; the few loops here run
over a fixed number of state fields or ops.

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

import math
from dataclasses import dataclass, fields

import torch

from torchrl_slots import layout
from torchrl_slots.envs.config import LifecycleConfig
from torchrl_slots.envs.world import World, neighbour_index
from torchrl_slots.layout import Op, Stage

_POTENTIAL = torch.zeros(layout.NUM_STAGES)
for _stage, _phi in layout.STAGE_POTENTIAL.items():
    _POTENTIAL[_stage] = _phi
HISTORY = 5  # last val losses / accs kept in the base features


@dataclass
class SimState:
    """State of ``E`` episodes. Per-slot fields are ``[E, N]``, per-env fields ``[E]``."""

    # per slot
    enabled: torch.Tensor  # bool
    stage: torch.Tensor  # int64, layout.Stage
    blueprint: torch.Tensor  # int64, 0 = none
    algorithm: torch.Tensor  # int64, layout.Algorithm
    blend_curve: torch.Tensor  # int64, curve of the germination style (used at BLENDING)
    tempo: torch.Tensor  # int64, blend length in epochs
    target: torch.Tensor  # float, the seed's alpha target
    gain: torch.Tensor  # float, true gain g_i (hidden)
    progress: torch.Tensor  # float, p_i in [0, 1]
    alpha: torch.Tensor  # float in [0, 1]
    ramp_start: torch.Tensor  # float
    ramp_goal: torch.Tensor  # float
    ramp_total: torch.Tensor  # int64, steps of the current ramp
    ramp_done: torch.Tensor  # int64
    ramp_mode: torch.Tensor  # int64: 0 idle, 1 up, 2 down
    ramp_curve: torch.Tensor  # int64, layout.Curve
    pruning: torch.Tensor  # bool
    in_stage: torch.Tensor  # int64, epochs in the current stage
    age: torch.Tensor  # int64, epochs since germination
    trained: torch.Tensor  # int64, epochs spent in TRAINING
    contribution: torch.Tensor  # float, c_i (hidden, true)
    pairs: torch.Tensor  # float [E, N, 4], a_i a_j p_i p_j S[b_i, b_j] per neighbour (hidden)
    observed: torch.Tensor  # float, noisy observed contribution (or weak pre-alpha signal)
    prev_observed: torch.Tensor  # float
    prev_alpha: torch.Tensor  # float
    # per env
    epoch: torch.Tensor  # int64
    host_a0: torch.Tensor  # float
    host_inf: torch.Tensor  # float
    host_tau: torch.Tensor  # float
    val_acc: torch.Tensor  # float
    train_acc: torch.Tensor  # float
    val_hist: torch.Tensor  # float [E, HISTORY], most recent first
    best_acc: torch.Tensor  # float
    plateau: torch.Tensor  # int64
    rent_total: torch.Tensor  # float

    def where_(self, mask: torch.Tensor, other: "SimState") -> None:
        """In place: take ``other``'s values for the envs where ``mask`` ([E] bool) is True."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            m = mask.view(-1, *([1] * (mine.dim() - 1)))
            setattr(self, f.name, torch.where(m, theirs, mine))


def ramp_value(frac: torch.Tensor, curve: torch.Tensor) -> torch.Tensor:
    """Ramp shape in [0, 1] at progress ``frac`` in [0, 1] for each curve id."""
    lin = frac
    cos = 0.5 - 0.5 * torch.cos(math.pi * frac)
    sig_raw = torch.sigmoid(10.0 * (frac - 0.5))
    lo, hi = 1.0 / (1.0 + math.exp(5.0)), 1.0 / (1.0 + math.exp(-5.0))
    sig = (sig_raw - lo) / (hi - lo)
    return torch.where(curve == layout.Curve.LINEAR, lin, torch.where(curve == layout.Curve.COSINE, cos, sig))


class SeedSimulator:
    """Dynamics of ``num_envs`` episodes on a ``rows x cols`` grid (see module docstring).

    Examples:
        >>> sim = SeedSimulator(4, 1, 3, LifecycleConfig())
        >>> g = torch.Generator().manual_seed(0)
        >>> state = sim.reset(None, torch.ones(4, dtype=torch.bool), g)
        >>> masks = sim.masks(state)
        >>> masks["op"][:, layout.Op.GERMINATE].all().item()
        True
    """

    def __init__(
        self,
        num_envs: int,
        rows: int,
        cols: int,
        config: LifecycleConfig,
        device: torch.device | str | None = None,
    ) -> None:
        self.num_envs, self.rows, self.cols, self.num_slots = num_envs, rows, cols, rows * cols
        self.config = config
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.world = World(
            config.task_seed,
            affinity_std=config.affinity_std,
            interaction_std=config.interaction_std,
            style_affinity=tuple(config.style_affinity),
            device=self.device,
        )
        self.slot_value = self.world.slot_values(rows, cols)  # [N, 13]
        self.neighbours = neighbour_index(rows, cols).to(self.device)  # [N, 4], N = padding
        row_ids, col_ids = layout.grid_ids(rows, cols)
        self.row_ids, self.col_ids = row_ids.to(self.device), col_ids.to(self.device)
        self.slot_arange = torch.arange(self.num_slots, device=self.device)
        same_row = self.row_ids[:, None] == self.row_ids[None, :]
        self.upstream = (same_row & (self.col_ids[None, :] < self.col_ids[:, None])).float()  # [N, N]
        self.downstream = (same_row & (self.col_ids[None, :] > self.col_ids[:, None])).float()
        self.stage_potential = _POTENTIAL.to(self.device)
        styles = sorted(layout.STYLE_TABLE)
        self.style_curve = torch.tensor([int(layout.STYLE_TABLE[s][0]) for s in styles], device=self.device)
        self.style_alg = torch.tensor([int(layout.STYLE_TABLE[s][1]) for s in styles], device=self.device)
        self.tempo_epochs = torch.tensor(layout.TEMPO_EPOCHS, device=self.device)
        self.alpha_targets = torch.tensor(layout.ALPHA_TARGETS, device=self.device)
        self.speed_epochs = torch.tensor(layout.ALPHA_SPEED_EPOCHS, device=self.device)
        self._static_rows = self._build_static_head_rows()

    # ------------------------------------------------------------------ reset
    def reset(self, state: SimState | None, mask: torch.Tensor, gen: torch.Generator) -> SimState:
        """New episodes where ``mask`` ([E] bool); other envs keep ``state``.

        Random draws have fixed shapes whatever the mask, so an env's episode depends only on
        the generator's stream, not on which other envs reset.
        """
        e, n, dev = self.num_envs, self.num_slots, self.device
        u = torch.rand(e, 4, generator=gen, device=dev)
        a0, a_inf, tau = 20 + 10 * u[:, 0], 55 + 15 * u[:, 1], 4 + 4 * u[:, 2]
        enabled = self._draw_enabled(gen)
        zeros_f, zeros_i = torch.zeros(e, n, device=dev), torch.zeros(e, n, dtype=torch.long, device=dev)
        val0 = a0 + self.config.val_noise * torch.randn(e, generator=gen, device=dev)
        fresh = SimState(
            enabled=enabled, stage=zeros_i, blueprint=zeros_i, algorithm=zeros_i, blend_curve=zeros_i,
            tempo=zeros_i, target=zeros_f, gain=zeros_f, progress=zeros_f, alpha=zeros_f,
            ramp_start=zeros_f, ramp_goal=zeros_f, ramp_total=zeros_i, ramp_done=zeros_i,
            ramp_mode=zeros_i, ramp_curve=zeros_i, pruning=torch.zeros(e, n, dtype=torch.bool, device=dev),
            in_stage=zeros_i, age=zeros_i, trained=zeros_i, contribution=zeros_f,
            pairs=torch.zeros(e, n, 4, device=dev), observed=zeros_f,
            prev_observed=zeros_f, prev_alpha=zeros_f,
            epoch=torch.zeros(e, dtype=torch.long, device=dev), host_a0=a0, host_inf=a_inf, host_tau=tau,
            val_acc=val0, train_acc=val0 + 1.0, val_hist=val0[:, None].expand(e, HISTORY).clone(),
            best_acc=val0, plateau=torch.zeros(e, dtype=torch.long, device=dev),
            rent_total=torch.zeros(e, device=dev),
        )
        if state is None:
            return fresh
        state.where_(mask, fresh)
        return state

    def _draw_enabled(self, gen: torch.Generator) -> torch.Tensor:
        e, n, dev = self.num_envs, self.num_slots, self.device
        keys = torch.rand(e, n, generator=gen, device=dev)
        count_u = torch.rand(e, generator=gen, device=dev)
        if self.config.enabled_slots is None:
            return torch.ones(e, n, dtype=torch.bool, device=dev)
        lo, hi = self.config.enabled_slots
        k = lo + (count_u * (hi - lo + 1)).long().clamp(max=hi - lo)  # [E] uniform in lo..hi
        rank = keys.argsort(dim=1).argsort(dim=1)  # [E, N] random permutation ranks
        return rank < k[:, None]

    # ------------------------------------------------------------------ masks
    def _build_static_head_rows(self) -> dict[str, torch.Tensor]:
        """For each small head: ``[2, 6, n_h]`` rows: index 0 = placeholder rows (only value 0
        legal), index 1 = the rows when the op is legal (all values if relevant, blueprint != 0)."""
        out = {}
        for h in layout.SMALL_HEADS:
            size = layout.FIXED_HEAD_SIZES[h]
            placeholder = torch.zeros(layout.NUM_OPS, size, dtype=torch.bool)
            placeholder[:, 0] = True
            legal = placeholder.clone()
            for op, heads in layout.HEAD_RELEVANCE.items():
                if h in heads:
                    legal[op] = True
                    if h == "blueprint":
                        legal[op, 0] = False  # NOOP is never a legal germination
            out[h] = torch.stack([placeholder, legal]).to(self.device)
        return out

    def slot_legality(self, s: SimState) -> torch.Tensor:
        """Bool ``[E, 6, N]``: which slots each op may act on now (WAIT row all False)."""
        live = self.is_live(s)
        idle = (s.ramp_mode == 0) & ~s.pruning
        n_live = live.sum(-1, keepdim=True)
        cap = self.config.max_seeds
        room = torch.ones_like(n_live, dtype=torch.bool) if cap is None else n_live < cap
        germ = s.enabled & (s.stage == Stage.DORMANT) & room
        adv = self.advance_gates(s)
        if self.config.auto_advance:
            adv = torch.zeros_like(adv)
        set_a = ((s.stage == Stage.BLENDING) | (s.stage == Stage.HOLDING)) & idle
        prune = live & (s.age >= 1) & idle
        foss = (s.stage == Stage.HOLDING) & idle
        wait = torch.zeros_like(germ)
        return torch.stack([wait, germ, set_a, prune, foss, adv], dim=1)

    def masks(self, s: SimState) -> dict[str, torch.Tensor]:
        """The ``action_mask`` entries: ``op`` ``[E, 6]``; every other head ``[E, 6, n]``."""
        legal_slots = self.slot_legality(s)  # [E, 6, N]
        op = legal_slots.any(-1)  # [E, 6]
        op[:, Op.WAIT] = True
        placeholder = torch.zeros_like(legal_slots)
        placeholder[..., 0] = True
        slot = torch.where(legal_slots.any(-1, keepdim=True), legal_slots, placeholder)
        out = {"op": op, "slot": slot}
        for h, rows in self._static_rows.items():
            out[h] = torch.where(op[..., None], rows[1], rows[0])  # [E, 6, n_h]
        return out

    @staticmethod
    def is_live(s: SimState) -> torch.Tensor:
        """``[E, N]``: GERMINATED..HOLDING (what ``max_seeds`` counts)."""
        return (s.stage >= Stage.GERMINATED) & (s.stage <= Stage.HOLDING)

    # ------------------------------------------------------------------ ops
    def apply(
        self, s: SimState, action: dict[str, torch.Tensor], executed: torch.Tensor, gain_draw: torch.Tensor
    ) -> None:
        """Apply the (already validated) ops in place.

        ``executed`` [E] bool marks envs whose op runs (invalid actions under
        ``invalid_action="wait"`` are False); ``gain_draw`` [E, N] is the gain noise a seed
        germinated in that slot gets.
        """
        op = torch.where(executed, action["op"], torch.zeros_like(action["op"]))
        sel = torch.nn.functional.one_hot(action["slot"], self.num_slots).bool()  # [E, N]
        per = {o: sel & (op == o)[:, None] for o in Op if o != Op.WAIT}
        self._germinate(s, per[Op.GERMINATE], action, gain_draw)
        self._advance(s, per[Op.ADVANCE])
        self._set_alpha(s, per[Op.SET_ALPHA_TARGET], action)
        self._prune(s, per[Op.PRUNE], action)
        f = per[Op.FOSSILIZE]
        s.stage = torch.where(f, Stage.FOSSILIZED, s.stage)
        s.alpha = torch.where(f, 1.0, s.alpha)
        s.in_stage = torch.where(f, 0, s.in_stage)

    def _germinate(
        self, s: SimState, m: torch.Tensor, action: dict[str, torch.Tensor], gain_draw: torch.Tensor
    ) -> None:
        if not bool(m.any()):
            return
        bp, style, slot = action["blueprint"], action["style"], action["slot"]  # [E]
        alg = self.style_alg[style]  # [E]
        s.stage = s.stage.masked_fill(m, int(Stage.GERMINATED))
        s.blueprint = torch.where(m, bp[:, None], s.blueprint)
        s.algorithm = torch.where(m, alg[:, None], s.algorithm)
        s.blend_curve = torch.where(m, self.style_curve[style][:, None], s.blend_curve)
        s.tempo = torch.where(m, self.tempo_epochs[action["tempo"]][:, None], s.tempo)
        s.target = torch.where(m, self.alpha_targets[action["alpha_target"]][:, None], s.target)
        expected = self.world.style_affinity[bp, alg] * self.slot_value[slot, bp]  # [E]: m[b, alg] V_b(u, v)
        s.gain = torch.where(m, expected[:, None] + gain_draw, s.gain)
        for name in ("progress", "alpha", "prev_alpha", "observed", "prev_observed",
                     "in_stage", "age", "trained", "ramp_mode"):
            setattr(s, name, getattr(s, name).masked_fill(m, 0))
        s.pruning = s.pruning & ~m

    def _start_ramp(self, s: SimState, m: torch.Tensor, goal: torch.Tensor, steps: torch.Tensor,
                    curve: torch.Tensor, mode: int) -> None:
        """Start an alpha ramp on ``m``; 0 steps jumps to the goal at once."""
        instant = m & (steps <= 0)
        ramp = m & (steps > 0)
        s.alpha = torch.where(instant, goal, s.alpha)
        s.ramp_start = torch.where(ramp, s.alpha, s.ramp_start)
        s.ramp_goal = torch.where(m, goal, s.ramp_goal)
        s.ramp_total = torch.where(ramp, steps, s.ramp_total)
        s.ramp_done = torch.where(m, 0, s.ramp_done)
        s.ramp_curve = torch.where(m, curve, s.ramp_curve)
        s.ramp_mode = torch.where(ramp, mode, torch.where(instant, 0, s.ramp_mode))

    def _advance(self, s: SimState, m: torch.Tensor) -> None:
        if not bool(m.any()):
            return
        to_train = m & (s.stage == Stage.GERMINATED)
        to_blend = m & (s.stage == Stage.TRAINING)
        to_hold = m & (s.stage == Stage.BLENDING)
        self._move(s, to_train, Stage.TRAINING)
        self._move(s, to_blend, Stage.BLENDING)
        self._move(s, to_hold, Stage.HOLDING)
        self._start_ramp(s, to_blend, s.target, s.tempo, s.blend_curve, mode=1)

    def _set_alpha(self, s: SimState, m: torch.Tensor, action: dict[str, torch.Tensor]) -> None:
        if not bool(m.any()):
            return
        style = action["style"][:, None].expand_as(m)
        new_alg = self.style_alg[style]
        bp = s.blueprint
        ratio = self.world.style_affinity[bp, new_alg] / self.world.style_affinity[bp, s.algorithm].clamp_min(1e-6)
        s.gain = torch.where(m, s.gain * ratio, s.gain)  # the style may change the algorithm
        s.algorithm = torch.where(m, new_alg, s.algorithm)
        goal = self.alpha_targets[action["alpha_target"]][:, None].expand_as(s.alpha)
        s.target = torch.where(m, goal, s.target)
        back = m & (s.stage == Stage.HOLDING) & (goal < 1.0)
        self._move(s, back, Stage.BLENDING)
        steps = self.speed_epochs[action["alpha_speed"]][:, None].expand_as(m)
        curve = action["alpha_curve"][:, None].expand_as(m)
        mode = torch.where(goal >= s.alpha, 1, 2)
        self._start_ramp(s, m & (mode == 1), goal, steps, curve, mode=1)
        self._start_ramp(s, m & (mode == 2), goal, steps, curve, mode=2)

    def _prune(self, s: SimState, m: torch.Tensor, action: dict[str, torch.Tensor]) -> None:
        if not bool(m.any()):
            return
        steps = self.speed_epochs[action["alpha_speed"]][:, None].expand_as(m)
        now = m & (steps <= 0)
        slow = m & (steps > 0)
        self._remove(s, now)
        s.pruning = s.pruning | slow
        curve = action["alpha_curve"][:, None].expand_as(m)
        self._start_ramp(s, slow, torch.zeros_like(s.alpha), steps, curve, mode=2)

    @staticmethod
    def _move(s: SimState, m: torch.Tensor, stage: Stage) -> None:
        s.stage = s.stage.masked_fill(m, int(stage))
        s.in_stage = s.in_stage.masked_fill(m, 0)

    def _remove(self, s: SimState, m: torch.Tensor) -> None:
        """PRUNED: the seed leaves the host at once."""
        self._move(s, m, Stage.PRUNED)
        s.alpha = s.alpha.masked_fill(m, 0.0)
        s.ramp_mode = s.ramp_mode.masked_fill(m, 0)
        s.pruning = s.pruning & ~m

    # ------------------------------------------------------------------ one epoch
    def epoch(self, s: SimState, noise: dict[str, torch.Tensor]) -> None:
        """Advance every env by one host epoch in place: training progress, alpha ramps,
        stage timers, auto-advance, contributions, observations and accuracy history.

        ``noise``: standard normal draws ``obs`` [E, N], ``weak`` [E, N], ``val`` [E],
        ``train`` [E] (drawn by the caller with fixed shapes, for common random numbers).
        """
        cfg = self.config
        s.prev_alpha = s.alpha
        s.prev_observed = s.observed
        s.epoch = s.epoch + 1
        learning = (s.stage == Stage.TRAINING) | (s.stage == Stage.BLENDING) | (s.stage == Stage.HOLDING)
        rate = self.world.rate[s.blueprint]
        s.progress = torch.where(learning, s.progress + (1.0 - s.progress) * rate, s.progress)
        s.trained = s.trained + (s.stage == Stage.TRAINING).long()
        self._step_ramps(s)
        self._step_timers(s)
        if cfg.auto_advance:
            self._auto_advance(s)
        s.pairs = self.pair_terms(s)
        s.contribution = self.contributions(s, s.pairs)
        self._observe(s, noise)

    def _step_ramps(self, s: SimState) -> None:
        active = s.ramp_mode > 0
        done = torch.where(active, s.ramp_done + 1, s.ramp_done)
        frac = (done.float() / s.ramp_total.clamp_min(1).float()).clamp(max=1.0)
        value = s.ramp_start + (s.ramp_goal - s.ramp_start) * ramp_value(frac, s.ramp_curve)
        finished = active & (done >= s.ramp_total)
        s.alpha = torch.where(finished, s.ramp_goal, torch.where(active, value, s.alpha)).clamp(0.0, 1.0)
        s.ramp_done = done
        s.ramp_mode = torch.where(finished, 0, s.ramp_mode)
        pruned = finished & s.pruning
        self._remove(s, pruned)

    def _step_timers(self, s: SimState) -> None:
        cfg = self.config
        seeded = (s.stage != Stage.DORMANT) & (s.stage != Stage.EMBARGOED) & (s.stage != Stage.RESETTING)
        s.age = s.age + (seeded & (s.stage != Stage.PRUNED)).long()
        in_stage = s.in_stage + 1
        to_embargo = (s.stage == Stage.PRUNED) & (in_stage >= 1)
        to_reset = (s.stage == Stage.EMBARGOED) & (in_stage >= cfg.embargo_epochs)
        to_dormant = (s.stage == Stage.RESETTING) & (in_stage >= cfg.resetting_epochs)
        s.in_stage = in_stage
        self._move(s, to_embargo, Stage.EMBARGOED)
        self._move(s, to_reset, Stage.RESETTING)
        self._move(s, to_dormant, Stage.DORMANT)
        s.blueprint = s.blueprint.masked_fill(to_dormant, 0)
        for name in ("gain", "progress", "target", "observed", "prev_observed"):
            setattr(s, name, getattr(s, name).masked_fill(to_dormant, 0.0))

    def _auto_advance(self, s: SimState) -> None:
        self._advance(s, self.advance_gates(s))

    def advance_gates(self, s: SimState) -> torch.Tensor:
        """``[E, N]``: where ADVANCE's gates pass (ignores ``auto_advance``, which uses it)."""
        idle = (s.ramp_mode == 0) & ~s.pruning
        return (
            (s.stage == Stage.GERMINATED)
            | ((s.stage == Stage.TRAINING) & (s.trained >= 1))
            | ((s.stage == Stage.BLENDING) & (s.target >= 1.0) & (s.alpha >= 1.0 - 1e-6))
        ) & idle

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
