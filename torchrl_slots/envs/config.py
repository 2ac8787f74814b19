"""Configuration of :class:`~torchrl_slots.envs.SeedLifecycleEnv`.

Every reward term and every noise scale of the simulator (docs/simulator.md) is a field here, with its
default and its unit, so that a calibration change is one edit in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from torchrl_slots.layout import MAX_GRID


@dataclass
class LifecycleConfig:
    """Settings of the seed-lifecycle simulator.

    Args:
        max_epochs: host epochs per episode (one env step = one epoch). The last step is
            ``terminated=True``.
        task_seed: fixes the hidden world (blueprint x position values, pair interactions, style
            affinities). Envs with the same ``task_seed`` and different ``seed`` are the same task.
        max_seeds: limit on live seeds (GERMINATED..HOLDING); ``None`` = unlimited.
        enabled_slots: ``(lo, hi)``: each episode enables a random number of slots in that range
            (a random subset; the others are padding with ``slot_mask=False``). ``None`` = all.
        scaffolding: when False, slot features 22-25 (interaction summaries) are zeroed.
        auto_advance: seeds advance GERMINATED -> TRAINING -> BLENDING -> HOLDING by themselves as
            soon as the gates pass; ADVANCE is then never legal.
        gamma: the PBRS discount; a trainer must use the same discount (it checks).
        reward: ``"shaped"`` (docs/simulator.md's shaped reward) or ``"sparse"`` (the score, at the
            last step only).
        invalid_action: ``"raise"`` (ValueError naming env, op, slot and why) or ``"wait"``
            (executed as WAIT and reported in ``("info", "invalid_action")``).
        affinity_std: std of the hidden position-affinity weights ``W`` (pp).
        interaction_std: std of the hidden pair interactions ``S`` (pp).
        style_affinity: range of the hidden style multipliers ``m[b, algorithm]``.
        gain_noise: std of a seed's true gain around its expected value (pp).
        contribution_noise: std of the observed counterfactual contribution once alpha > 0 (pp).
        weak_signal_noise: std of the weak pre-alpha "improvement" signal (pp).
        val_noise: std of the validation-accuracy noise (pp).
        rent_scale: rent per epoch = ``rent_scale * sum(alpha * cost_b)`` (pp).
        op_cost: cost of any op other than WAIT (pp).
        pbrs_scale: weight of the stage-potential shaping term.
        fossil_bonus: terminal bonus per fossilized seed whose contribution is at least
            ``fossil_bonus_threshold`` pp.
        fossil_bonus_threshold: see ``fossil_bonus`` (pp).
        embargo_epochs: epochs in EMBARGOED after PRUNED.
        resetting_epochs: epochs in RESETTING before DORMANT.

    Examples:
        >>> cfg = LifecycleConfig(max_seeds=2, enabled_slots=(1, 3))
        >>> cfg.validate(rows=1, cols=3)
        >>> LifecycleConfig.from_dict(cfg.to_dict()) == cfg
        True
    """

    max_epochs: int = 25
    task_seed: int = 0
    max_seeds: int | None = None
    enabled_slots: tuple[int, int] | None = None
    scaffolding: bool = True
    auto_advance: bool = False
    gamma: float = 0.995
    reward: Literal["shaped", "sparse"] = "shaped"
    invalid_action: Literal["raise", "wait"] = "raise"
    affinity_std: float = 0.6
    interaction_std: float = 0.5
    style_affinity: tuple[float, float] = (0.7, 1.2)
    gain_noise: float = 0.5
    contribution_noise: float = 0.3
    weak_signal_noise: float = 0.5
    val_noise: float = 0.2
    rent_scale: float = 0.2
    op_cost: float = 0.02
    pbrs_scale: float = 0.3
    fossil_bonus: float = 0.5
    fossil_bonus_threshold: float = 1.0
    embargo_epochs: int = 5
    resetting_epochs: int = 1

    def validate(self, rows: int, cols: int) -> None:
        """Raise ``ValueError`` for a setting that cannot work on a ``rows x cols`` grid."""
        for name, value in (("rows", rows), ("cols", cols)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
            if value > MAX_GRID:
                raise ValueError(f"{name} must be at most {MAX_GRID} (grid limit), got {value}")
        n = rows * cols
        if self.max_epochs < 2:
            raise ValueError(f"max_epochs must be >= 2, got {self.max_epochs}")
        if self.max_seeds is not None and self.max_seeds <= 0:
            raise ValueError(f"max_seeds must be positive or None, got {self.max_seeds}")
        if self.enabled_slots is not None:
            if len(self.enabled_slots) != 2:
                raise ValueError(f"enabled_slots must be (min, max), got {self.enabled_slots!r}")
            lo, hi = self.enabled_slots
            if not (1 <= lo <= hi <= n):
                raise ValueError(
                    f"enabled_slots must satisfy 1 <= min <= max <= rows*cols={n}, "
                    f"got {tuple(self.enabled_slots)}"
                )
        if self.reward not in ("shaped", "sparse"):
            raise ValueError(f"reward must be 'shaped' or 'sparse', got {self.reward!r}")
        if self.invalid_action not in ("raise", "wait"):
            raise ValueError(f"invalid_action must be 'raise' or 'wait', got {self.invalid_action!r}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        lo_m, hi_m = self.style_affinity
        if not 0.0 < lo_m <= hi_m:
            raise ValueError(f"style_affinity must be 0 < lo <= hi, got {self.style_affinity}")
        if self.embargo_epochs < 0 or self.resetting_epochs < 0:
            raise ValueError("embargo_epochs and resetting_epochs must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (for checkpoints read with ``torch.load(weights_only=True)``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LifecycleConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown LifecycleConfig fields {sorted(unknown)}; known: {sorted(known)}")
        data = dict(data)
        for key in ("enabled_slots", "style_affinity"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)
