"""The seed lifecycle shared by every env: stages, ops, gates, masks, legality and alpha ramps.

Pure tensor code on ``[num_envs, N]`` tensors (docs/simulator.md, "Lifecycle, controls and
legality"). :class:`SeedLifecycle` holds the grid and action tables and moves the lifecycle fields
of a state (:class:`LifecycleState` or any dataclass with those fields) in place. What a seed is
worth is not its business: the surrogate (:class:`~torchrl_slots.envs.simulator.SeedSimulator`)
and the real host (:class:`~torchrl_slots.envs.host.HostTrainingEnv`) subclass or use it and add
their own dynamics through two hooks, :meth:`SeedLifecycle._on_germinate` and
:meth:`SeedLifecycle._on_style_change`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from torchrl_slots import layout
from torchrl_slots.envs.config import LifecycleConfig
from torchrl_slots.layout import Op, Stage

_POTENTIAL = torch.zeros(layout.NUM_STAGES)
for _stage, _phi in layout.STAGE_POTENTIAL.items():
    _POTENTIAL[_stage] = _phi


@dataclass
class LifecycleState:
    """Lifecycle fields of ``E`` episodes: per slot ``[E, N]``, ``epoch`` ``[E]``."""

    enabled: torch.Tensor  # bool
    stage: torch.Tensor  # int64, layout.Stage
    blueprint: torch.Tensor  # int64, 0 = none
    algorithm: torch.Tensor  # int64, layout.Algorithm
    blend_curve: torch.Tensor  # int64, curve of the germination style (used at BLENDING)
    tempo: torch.Tensor  # int64, blend length in epochs
    target: torch.Tensor  # float, the seed's alpha target
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
    observed: torch.Tensor  # float, observed contribution (or the pre-alpha signal)
    prev_observed: torch.Tensor  # float
    prev_alpha: torch.Tensor  # float
    epoch: torch.Tensor  # int64 [E]

    def where_(self, mask: torch.Tensor, other: "LifecycleState") -> None:
        """In place: take ``other``'s values for the envs where ``mask`` ([E] bool) is True."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            m = mask.view(-1, *([1] * (mine.dim() - 1)))
            setattr(self, f.name, torch.where(m, theirs, mine))


def lifecycle_fields(enabled: torch.Tensor) -> dict[str, torch.Tensor]:
    """Fresh (all DORMANT) values of every :class:`LifecycleState` field for ``enabled`` ``[E, N]``."""
    e, n = enabled.shape
    dev = enabled.device
    zf, zi = torch.zeros(e, n, device=dev), torch.zeros(e, n, dtype=torch.long, device=dev)
    out = {f.name: zi for f in fields(LifecycleState)}
    for name in ("target", "alpha", "ramp_start", "ramp_goal", "observed", "prev_observed", "prev_alpha"):
        out[name] = zf
    out["enabled"] = enabled
    out["pruning"] = torch.zeros(e, n, dtype=torch.bool, device=dev)
    out["epoch"] = torch.zeros(e, dtype=torch.long, device=dev)
    return out


def ramp_value(frac: torch.Tensor, curve: torch.Tensor) -> torch.Tensor:
    """Ramp shape in [0, 1] at progress ``frac`` in [0, 1] for each curve id."""
    lin = frac
    cos = 0.5 - 0.5 * torch.cos(math.pi * frac)
    sig_raw = torch.sigmoid(10.0 * (frac - 0.5))
    lo, hi = 1.0 / (1.0 + math.exp(5.0)), 1.0 / (1.0 + math.exp(-5.0))
    sig = (sig_raw - lo) / (hi - lo)
    return torch.where(curve == layout.Curve.LINEAR, lin, torch.where(curve == layout.Curve.COSINE, cos, sig))


class SeedLifecycle:
    """Lifecycle mechanics of ``num_envs`` episodes on a ``rows x cols`` grid.

    Examples:
        >>> lc = SeedLifecycle(2, 1, 3, LifecycleConfig())
        >>> s = LifecycleState(**lifecycle_fields(torch.ones(2, 3, dtype=torch.bool)))
        >>> lc.masks(s)["op"][:, layout.Op.GERMINATE].tolist()
        [True, True]
    """

    #: fields zeroed where a seed germinates / where a slot returns to DORMANT (subclasses extend)
    germinate_zero_fields: tuple[str, ...] = ("alpha", "prev_alpha", "observed", "prev_observed",
                                              "in_stage", "age", "trained", "ramp_mode")
    dormant_zero_fields: tuple[str, ...] = ("target", "observed", "prev_observed")

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

    def draw_enabled(self, gen: torch.Generator) -> torch.Tensor:
        """``[E, N]`` enabled slots (``config.enabled_slots``); always draws the same shapes."""
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

    def slot_legality(self, s: LifecycleState) -> torch.Tensor:
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

    def masks(self, s: LifecycleState) -> dict[str, torch.Tensor]:
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
    def is_live(s: LifecycleState) -> torch.Tensor:
        """``[E, N]``: GERMINATED..HOLDING (what ``max_seeds`` counts)."""
        return (s.stage >= Stage.GERMINATED) & (s.stage <= Stage.HOLDING)

    # ------------------------------------------------------------------ ops
    def apply(self, s: LifecycleState, action: dict[str, torch.Tensor], executed: torch.Tensor, *extra) -> None:
        """Apply the (already validated) ops in place.

        ``executed`` [E] bool marks envs whose op runs (invalid actions under
        ``invalid_action="wait"`` are False); ``extra`` is handed to :meth:`_on_germinate`.
        """
        op = torch.where(executed, action["op"], torch.zeros_like(action["op"]))
        sel = torch.nn.functional.one_hot(action["slot"], self.num_slots).bool()  # [E, N]
        per = {o: sel & (op == o)[:, None] for o in Op if o != Op.WAIT}
        self._germinate(s, per[Op.GERMINATE], action, *extra)
        self._advance(s, per[Op.ADVANCE])
        self._set_alpha(s, per[Op.SET_ALPHA_TARGET], action)
        self._prune(s, per[Op.PRUNE], action)
        f = per[Op.FOSSILIZE]
        s.stage = torch.where(f, Stage.FOSSILIZED, s.stage)
        s.alpha = torch.where(f, 1.0, s.alpha)
        s.in_stage = torch.where(f, 0, s.in_stage)

    def _on_germinate(self, s: LifecycleState, m: torch.Tensor, action: dict[str, torch.Tensor], *extra) -> None:
        """Hook: a seed of ``action["blueprint"]`` was germinated where ``m`` ([E, N])."""

    def _on_style_change(self, s: LifecycleState, m: torch.Tensor, new_alg: torch.Tensor) -> None:
        """Hook: SET_ALPHA_TARGET is about to switch ``s.algorithm`` to ``new_alg`` where ``m``."""

    def _germinate(self, s: LifecycleState, m: torch.Tensor, action: dict[str, torch.Tensor], *extra) -> None:
        if not bool(m.any()):
            return
        bp, style = action["blueprint"], action["style"]  # [E]
        alg = self.style_alg[style]  # [E]
        s.stage = s.stage.masked_fill(m, int(Stage.GERMINATED))
        s.blueprint = torch.where(m, bp[:, None], s.blueprint)
        s.algorithm = torch.where(m, alg[:, None], s.algorithm)
        s.blend_curve = torch.where(m, self.style_curve[style][:, None], s.blend_curve)
        s.tempo = torch.where(m, self.tempo_epochs[action["tempo"]][:, None], s.tempo)
        s.target = torch.where(m, self.alpha_targets[action["alpha_target"]][:, None], s.target)
        self._on_germinate(s, m, action, *extra)
        for name in self.germinate_zero_fields:
            setattr(s, name, getattr(s, name).masked_fill(m, 0))
        s.pruning = s.pruning & ~m

    def _start_ramp(self, s: LifecycleState, m: torch.Tensor, goal: torch.Tensor, steps: torch.Tensor,
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

    def _advance(self, s: LifecycleState, m: torch.Tensor) -> None:
        if not bool(m.any()):
            return
        to_train = m & (s.stage == Stage.GERMINATED)
        to_blend = m & (s.stage == Stage.TRAINING)
        to_hold = m & (s.stage == Stage.BLENDING)
        self._move(s, to_train, Stage.TRAINING)
        self._move(s, to_blend, Stage.BLENDING)
        self._move(s, to_hold, Stage.HOLDING)
        self._start_ramp(s, to_blend, s.target, s.tempo, s.blend_curve, mode=1)

    def _set_alpha(self, s: LifecycleState, m: torch.Tensor, action: dict[str, torch.Tensor]) -> None:
        if not bool(m.any()):
            return
        style = action["style"][:, None].expand_as(m)
        new_alg = self.style_alg[style]
        self._on_style_change(s, m, new_alg)
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

    def _prune(self, s: LifecycleState, m: torch.Tensor, action: dict[str, torch.Tensor]) -> None:
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
    def _move(s: LifecycleState, m: torch.Tensor, stage: Stage) -> None:
        s.stage = s.stage.masked_fill(m, int(stage))
        s.in_stage = s.in_stage.masked_fill(m, 0)

    def _remove(self, s: LifecycleState, m: torch.Tensor) -> None:
        """PRUNED: the seed leaves the host at once."""
        self._move(s, m, Stage.PRUNED)
        s.alpha = s.alpha.masked_fill(m, 0.0)
        s.ramp_mode = s.ramp_mode.masked_fill(m, 0)
        s.pruning = s.pruning & ~m

    # ------------------------------------------------------------------ one epoch
    def step_lifecycle(self, s: LifecycleState) -> None:
        """The lifecycle part of one epoch, in place: TRAINING epochs, alpha ramps, stage timers,
        and auto-advance (when configured)."""
        s.trained = s.trained + (s.stage == Stage.TRAINING).long()
        self._step_ramps(s)
        self._step_timers(s)
        if self.config.auto_advance:
            self._advance(s, self.advance_gates(s))

    def _step_ramps(self, s: LifecycleState) -> None:
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

    def _step_timers(self, s: LifecycleState) -> None:
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
        for name in self.dormant_zero_fields:
            setattr(s, name, getattr(s, name).masked_fill(to_dormant, 0.0))

    def advance_gates(self, s: LifecycleState) -> torch.Tensor:
        """``[E, N]``: where ADVANCE's gates pass (ignores ``auto_advance``, which uses it)."""
        idle = (s.ramp_mode == 0) & ~s.pruning
        return (
            (s.stage == Stage.GERMINATED)
            | ((s.stage == Stage.TRAINING) & (s.trained >= 1))
            | ((s.stage == Stage.BLENDING) & (s.target >= 1.0) & (s.alpha >= 1.0 - 1e-6))
        ) & idle

    def potential(self, s: LifecycleState) -> torch.Tensor:
        """PBRS potential ``phi(s)``: stage potentials summed over slots, ``[E]``."""
        return self.stage_potential[s.stage].sum(-1)
