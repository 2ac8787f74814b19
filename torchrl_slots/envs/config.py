"""Configuration of :class:`~torchrl_slots.envs.SeedLifecycleEnv`.

Every reward term and every noise scale of the simulator (docs/simulator.md) is a field here, with its
default and its unit, so that a calibration change is one edit in one place.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any, Literal

from torchrl_slots.layout import MAX_GRID


def check_int(name: str, value: Any, *, minimum: int | None = None, what: str | None = None) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an int (not a bool) >= ``minimum``.

    Examples:
        >>> check_int("max_epochs", 2.0, minimum=2)
        Traceback (most recent call last):
        ...
        ValueError: max_epochs must be >= 2, got 2.0 (an int is needed, not float)
    """
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not is_int or (minimum is not None and value < minimum):
        expected = what or ("an int" if minimum is None else f">= {minimum}")
        kind = "" if is_int else f" (an int is needed, not {type(value).__name__})"
        raise ValueError(f"{name} must be {expected}, got {value!r}{kind}")


def check_real(name: str, value: Any, *, minimum: float | None = None) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a finite real number >= ``minimum``.

    Examples:
        >>> check_real("op_cost", -0.1, minimum=0.0)
        Traceback (most recent call last):
        ...
        ValueError: op_cost must be a finite number >= 0.0, got -0.1
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (minimum is not None and value < minimum):
        expected = "a finite number" + ("" if minimum is None else f" >= {minimum}")
        raise ValueError(f"{name} must be {expected}, got {value!r}")


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
            check_int(name, value, minimum=1, what="a positive int")
            if value > MAX_GRID:
                raise ValueError(f"{name} must be at most {MAX_GRID} (grid limit), got {value}")
        n = rows * cols
        check_int("max_epochs", self.max_epochs, minimum=2)
        check_int("task_seed", self.task_seed)
        if self.max_seeds is not None:
            check_int("max_seeds", self.max_seeds, minimum=1, what="positive or None")
        for name in ("scaffolding", "auto_advance"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        for name in ("affinity_std", "interaction_std", "gain_noise", "contribution_noise", "weak_signal_noise",
                     "val_noise", "rent_scale", "op_cost", "pbrs_scale", "fossil_bonus"):
            check_real(name, getattr(self, name), minimum=0.0)
        check_real("fossil_bonus_threshold", self.fossil_bonus_threshold)
        check_real("gamma", self.gamma)
        check_int("embargo_epochs", self.embargo_epochs, minimum=0)
        check_int("resetting_epochs", self.resetting_epochs, minimum=0)
        if self.enabled_slots is not None:
            if not isinstance(self.enabled_slots, (tuple, list)) or len(self.enabled_slots) != 2:
                raise ValueError(f"enabled_slots must be (min, max), got {self.enabled_slots!r}")
            for value in self.enabled_slots:
                check_int("enabled_slots", value, what="a pair of ints")
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
        if not isinstance(self.style_affinity, (tuple, list)) or len(self.style_affinity) != 2:
            raise ValueError(f"style_affinity must be (lo, hi), got {self.style_affinity!r}")
        for value in self.style_affinity:
            check_real("style_affinity", value)
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
