"""Configuration of a PPO run: :class:`EnvConfig` (what to train on) and :class:`PPOConfig`
(how). Both are plain dataclasses that round-trip through ``to_dict``/``from_dict`` so that a
training checkpoint can be read with ``torch.load(weights_only=True)`` and compared on resume."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Mapping

from torchrl_slots import layout
from torchrl_slots.envs import LifecycleConfig
from torchrl_slots.envs.config import check_int, check_real
from torchrl_slots.envs.factory import config_class, config_from_dict


def _from_dict(cls, data: Mapping[str, Any]):
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}; known: {sorted(known)}")
    return cls(**data)


@dataclass
class EnvConfig:
    """The training env: ``num_envs`` parallel episodes of ``SeedLifecycleEnv(rows, cols, lifecycle)``.

    Args:
        num_envs: parallel episodes per collector (in total: split over ``workers`` processes).
        rows: grid rows.
        cols: grid columns.
        lifecycle: the simulator's :class:`~torchrl_slots.envs.LifecycleConfig` (a
            :class:`~torchrl_slots.envs.HostConfig` when ``env="host"``).
        env: ``"surrogate"`` (:class:`~torchrl_slots.envs.SeedLifecycleEnv`) or ``"host"``
            (:class:`~torchrl_slots.envs.HostTrainingEnv`, a real host network).
        grids: ``None`` (default: every env plays ``rows x cols``), or several grids
            ``((rows, cols), ...)`` trained in one batch by a
            :class:`~torchrl_slots.envs.MixedGridEnv` (``num_envs / len(grids)`` episodes each,
            padded to the largest slot count). ``(rows, cols)`` must then be one of them: the grid
            of the periodic evaluation.

    Examples:
        >>> cfg = EnvConfig(num_envs=8, rows=2, cols=5, lifecycle=LifecycleConfig(auto_advance=True))
        >>> EnvConfig.from_dict(cfg.to_dict()) == cfg
        True
        >>> EnvConfig(num_envs=16, rows=5, cols=10, grids=((1, 3), (5, 10))).validate()
    """

    num_envs: int = 16
    rows: int = 1
    cols: int = 3
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    grids: tuple[tuple[int, int], ...] | None = None
    env: str = "surrogate"

    def __post_init__(self) -> None:
        if self.grids is not None:
            self.grids = tuple(tuple(g) for g in self.grids)

    def validate(self) -> None:
        """Raise ``ValueError`` for settings the env cannot take."""
        if not isinstance(self.num_envs, int) or self.num_envs <= 0:
            raise ValueError(f"num_envs must be a positive int, got {self.num_envs!r}")
        if not isinstance(self.lifecycle, config_class(self.env)):
            raise ValueError(f"env={self.env!r} needs lifecycle to be a {config_class(self.env).__name__}, "
                             f"got {type(self.lifecycle).__name__}")
        self.lifecycle.validate(self.rows, self.cols)
        if self.grids is not None:
            if self.env != "surrogate":
                raise ValueError(f"grids (a MixedGridEnv) needs env='surrogate', got env={self.env!r}")
            if not self.grids or self.num_envs % len(self.grids):
                raise ValueError(f"num_envs={self.num_envs} must be a multiple of the number of grids "
                                 f"({len(self.grids)}: {list(self.grids)})")
            for r, c in self.grids:
                self.lifecycle.validate(r, c)
            if (self.rows, self.cols) not in self.grids:
                raise ValueError(f"rows x cols = {self.rows}x{self.cols} (the evaluation grid) must be one of "
                                 f"grids {list(self.grids)}")

    def to_dict(self) -> dict[str, Any]:
        out = {"num_envs": self.num_envs, "rows": self.rows, "cols": self.cols,
               "lifecycle": self.lifecycle.to_dict()}
        if self.grids is not None:
            out["grids"] = [list(g) for g in self.grids]
        if self.env != "surrogate":  # older run dicts (and resume checks) stay as they were
            out["env"] = self.env
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EnvConfig":
        data = dict(data)
        if isinstance(data.get("lifecycle"), Mapping):
            data["lifecycle"] = config_from_dict(data.get("env", "surrogate"), data["lifecycle"])
        return _from_dict(cls, data)


#: PPOConfig's default per-head entropy coefficients with manual ADVANCE.
DEFAULT_ENTROPY_COEFFS: dict[str, float] = {h: (0.2 if h == "op" else 0.05) for h in layout.HEADS}

#: PPOConfig's default per-head entropy coefficients under ``LifecycleConfig.auto_advance``: the
#: larger op bonus is there to keep PPO off manual ADVANCE's wait-only plateau, and with
#: auto-advance it held the 5x10 transformer back (0.49 against 0.65 at 0.05 on the same 4 seeds;
#: ``benchmarks/README.md``, ablation).
AUTO_ADVANCE_ENTROPY_COEFFS: dict[str, float] = {h: 0.05 for h in layout.HEADS}

#: Where the default coefficients end (``PPOConfig.entropy_coeff_end=None`` with the default
#: ``entropy_coeff``): 0.05 for every head, reached at ``total_frames``.
DEFAULT_ENTROPY_COEFFS_END: dict[str, float] = {h: 0.05 for h in layout.HEADS}


def _coeff_map(name: str, value: float | Mapping[str, float]) -> dict[str, float]:
    """One float per head of ``layout.HEADS`` from a float or a map; a map that misses a head (or
    names an unknown one) raises, and so does a negative or non-finite value."""
    if not isinstance(value, Mapping):
        check_real(f"PPOConfig.{name}", value, minimum=0.0)
        return {h: float(value) for h in layout.HEADS}
    missing = [h for h in layout.HEADS if h not in value]
    unknown = sorted(set(value) - set(layout.HEADS))
    if missing or unknown:
        raise ValueError(
            f"{name} map must give a value for every head {list(layout.HEADS)}; missing {missing}, unknown {unknown}"
        )
    for h in layout.HEADS:
        check_real(f"PPOConfig.{name}[{h!r}]", value[h], minimum=0.0)
    return {h: float(value[h]) for h in layout.HEADS}


@dataclass
class PPOConfig:
    """PPO hyper-parameters; the defaults follow the Esper seed plan.

    Args:
        lr: Adam learning rate (3e-4).
        anneal_lr: decay the learning rate linearly to 0 over ``total_frames``.
        clip_epsilon: PPO ratio clip (0.2).
        gamma: discount (0.995). Must equal the env's PBRS ``LifecycleConfig.gamma``, or the
            shaping term changes the optimal policy: :func:`~torchrl_slots.training.train` checks.
        gae_lambda: GAE lambda (0.98).
        normalize_advantage: normalise advantages per minibatch (True).
        entropy_coeff: a map with a coefficient for EVERY head, or one float for every head of
            :data:`torchrl_slots.layout.HEADS`, or ``None`` (the default) for a default that
            depends on the env: with manual ADVANCE ``op`` 0.2 and 0.05 for the others
            (:data:`DEFAULT_ENTROPY_COEFFS`; a larger op bonus keeps PPO off the wait-only
            plateau: on seeds where 0.05 ended wait-only, 0.2 escaped), and 0.05 for every head
            under ``auto_advance`` (:data:`AUTO_ADVANCE_ENTROPY_COEFFS`), where there is no
            ADVANCE to learn and the larger bonus cost the 5x10 transformer a quarter of its score.
        critic_coeff: value-loss weight (0.5).
        max_grad_norm: gradient clipping norm (0.5).
        epochs: passes over each collected batch (4).
        minibatches: minibatches per epoch; each holds whole ``[T]`` sequences of
            ``num_envs / minibatches`` envs (the LSTM needs whole sequences).
        frames_per_batch: env steps per collected batch; must divide by ``num_envs``.
        total_frames: env steps of the whole run.
        max_bad_updates: consecutive non-finite loss/gradient updates tolerated before stopping.
        op_floor: probability floor of the op head during training: the op is drawn from
            ``(1 - op_floor) p + op_floor u`` with ``u`` uniform over the legal ops (see
            :meth:`~torchrl_slots.modules.heads.FactoredHeads.set_floors`). Evaluation and the
            saved policy are not affected (floors are not saved; the argmax is unchanged).
        slot_floor: the same for each row of the slot head.
        floor_decay_to: the floors decay linearly from their value at frame 0 to
            ``floor_decay_to`` times that value at ``total_frames`` (1.0 = constant).
        entropy_coeff_end: the entropy coefficients at ``total_frames`` (a float for every head or a
            map for every head): from ``entropy_decay_start`` on they move linearly from
            ``entropy_coeff`` to this. ``None`` (the default): with the default ``entropy_coeff``,
            0.05 for every head (:data:`DEFAULT_ENTROPY_COEFFS_END`), so with manual ADVANCE the
            op bonus goes 0.2 -> 0.05 over the second half of the run (nothing moves under
            ``auto_advance``, where every head starts at 0.05); with an ``entropy_coeff`` that was
            set, constant. The large early bonus gets PPO off the wait-only plateau; the small
            late one lets the policy settle (higher means on 1x3 and 2x5 for both architectures,
            same seeds, in ``benchmarks/README.md``'s ablation).
        entropy_decay_start: the fraction of ``total_frames`` before which the coefficients stay
            at ``entropy_coeff`` (default 0.5; 0.0: the move starts at frame 0). With 0.5 a run
            is the constant-coefficient run until half-way, so the escape from the wait-only
            plateau, which happens early, is not put at risk: from frame 0 the smaller bonus
            left the transformer wait-only on one 2x5 seed that escapes with it constant.
        normalize_return: divide the rewards the update sees (GAE's and the critic's, not the
            logged scores) by a running std of the discounted return, as gymnasium's
            ``NormalizeReward`` and SB3's ``VecNormalize(norm_reward=True)`` do (not centred, so
            the task is unchanged; see :class:`~torchrl_slots.training.updater.ReturnScaler`).
            The value head then learns returns of about unit scale. Default False: it got both
            architectures to 0.8 sooner on 1x3 and made both worse on 2x5 (``benchmarks/README.md``,
            "Session 10").
        target_kl: stop a batch's epochs early once the mean ``kl_approx`` of the minibatches of
            an epoch exceeds ``1.5 * target_kl``; ``None`` = off.

    Examples:
        >>> PPOConfig(frames_per_batch=1000).validate(num_envs=16)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: frames_per_batch=1000 must be a multiple of num_envs=16 (each env contributes ...
    """

    lr: float = 3e-4
    anneal_lr: bool = False
    clip_epsilon: float = 0.2
    gamma: float = 0.995
    gae_lambda: float = 0.98
    normalize_advantage: bool = True
    entropy_coeff: float | dict[str, float] | None = None
    critic_coeff: float = 0.5
    max_grad_norm: float = 0.5
    epochs: int = 4
    minibatches: int = 4
    frames_per_batch: int = 16 * 50
    total_frames: int = 200_000
    max_bad_updates: int = 5
    op_floor: float = 0.0
    slot_floor: float = 0.0
    floor_decay_to: float = 1.0
    target_kl: float | None = None
    entropy_coeff_end: float | dict[str, float] | None = None
    entropy_decay_start: float = 0.5
    normalize_return: bool = False

    def validate(self, num_envs: int) -> None:
        """Raise ``ValueError`` naming the field for settings that cannot work with ``num_envs``."""
        for name in ("epochs", "minibatches", "frames_per_batch", "total_frames", "max_bad_updates"):
            check_int(f"PPOConfig.{name}", getattr(self, name), minimum=1)
        for name in ("anneal_lr", "normalize_advantage", "normalize_return"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"PPOConfig.{name} must be a bool, got {getattr(self, name)!r}")
        for name in ("lr", "clip_epsilon", "critic_coeff", "max_grad_norm", "gamma", "gae_lambda"):
            check_real(f"PPOConfig.{name}", getattr(self, name))
        if not 0.0 < self.clip_epsilon < 1.0:
            raise ValueError(f"PPOConfig.clip_epsilon must be in (0, 1) (a ratio clip), got {self.clip_epsilon}")
        if self.critic_coeff <= 0:
            raise ValueError(
                f"PPOConfig.critic_coeff must be > 0, got {self.critic_coeff}: the value head is trained only "
                f"through the critic loss, and GAE needs it"
            )
        if self.frames_per_batch <= 0 or self.frames_per_batch % num_envs:
            raise ValueError(
                f"frames_per_batch={self.frames_per_batch} must be a multiple of num_envs={num_envs} "
                f"(each env contributes frames_per_batch / num_envs steps to a batch)"
            )
        if self.minibatches <= 0 or num_envs % self.minibatches:
            raise ValueError(
                f"minibatches={self.minibatches} must divide num_envs={num_envs} "
                f"(a minibatch holds the whole sequences of num_envs / minibatches envs)"
            )
        if self.total_frames < self.frames_per_batch:
            raise ValueError(f"total_frames={self.total_frames} is less than one batch ({self.frames_per_batch})")
        if self.total_frames % self.frames_per_batch:
            raise ValueError(
                f"PPOConfig.total_frames={self.total_frames} must be a multiple of frames_per_batch="
                f"{self.frames_per_batch} (the collector runs whole batches: it would run "
                f"{-(-self.total_frames // self.frames_per_batch) * self.frames_per_batch} frames)"
            )
        for name in ("lr", "clip_epsilon", "max_grad_norm", "epochs", "max_bad_updates"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 < self.gamma <= 1.0 or not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError(f"gamma must be in (0, 1] and gae_lambda in [0, 1], got {self.gamma}, {self.gae_lambda}")
        for name in ("op_floor", "slot_floor"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
        if not (isinstance(self.floor_decay_to, (int, float)) and 0.0 <= self.floor_decay_to <= 1.0):
            raise ValueError(f"floor_decay_to must be in [0, 1], got {self.floor_decay_to!r}")
        if self.target_kl is not None:
            check_real("PPOConfig.target_kl", self.target_kl)
            if not self.target_kl > 0:
                raise ValueError(f"target_kl must be positive or None, got {self.target_kl!r}")
        self.entropy_coeffs()
        if self.entropy_coeff_end is not None:
            _coeff_map("entropy_coeff_end", self.entropy_coeff_end)
        check_real("PPOConfig.entropy_decay_start", self.entropy_decay_start, minimum=0.0)
        if not self.entropy_decay_start < 1.0:
            raise ValueError(f"PPOConfig.entropy_decay_start must be in [0, 1), got {self.entropy_decay_start!r}")

    def floors_at(self, frames: int) -> tuple[float, float]:
        """``(op, slot)`` floors after ``frames`` env steps (the linear schedule).

        Examples:
            >>> PPOConfig(op_floor=0.2, slot_floor=0.1, floor_decay_to=0.5, total_frames=1000).floors_at(500)
            (0.15, 0.075)
        """
        frac = min(max(frames / self.total_frames, 0.0), 1.0)
        scale = 1.0 - (1.0 - self.floor_decay_to) * frac
        return (round(self.op_floor * scale, 12), round(self.slot_floor * scale, 12))

    def entropy_coeffs(self, auto_advance: bool = False) -> dict[str, float]:
        """One coefficient per head. A map that misses a head (or names an unknown one) raises.

        ``auto_advance`` (the env's ``LifecycleConfig.auto_advance``) picks the default when
        ``entropy_coeff`` is ``None``; a value that was set is used as it is.

        Examples:
            >>> PPOConfig().entropy_coeffs()["op"], PPOConfig().entropy_coeffs(auto_advance=True)["op"]
            (0.2, 0.05)
            >>> PPOConfig(entropy_coeff=0.1).entropy_coeffs(auto_advance=True)["op"]
            0.1
        """
        if self.entropy_coeff is None:
            return dict(AUTO_ADVANCE_ENTROPY_COEFFS if auto_advance else DEFAULT_ENTROPY_COEFFS)
        return _coeff_map("entropy_coeff", self.entropy_coeff)

    def entropy_coeffs_at(self, frames: int, auto_advance: bool = False) -> dict[str, float]:
        """The coefficients after ``frames`` env steps: :meth:`entropy_coeffs` until
        ``entropy_decay_start * total_frames``, then moved linearly toward the end map, reached
        at ``total_frames``: ``entropy_coeff_end``, or when it is ``None``
        :data:`DEFAULT_ENTROPY_COEFFS_END` with the default ``entropy_coeff`` and no move at all
        with an ``entropy_coeff`` that was set.

        Examples:
            >>> cfg = PPOConfig(total_frames=1000)  # the defaults, manual ADVANCE
            >>> [cfg.entropy_coeffs_at(f)["op"] for f in (0, 500, 750, 1000)]
            [0.2, 0.2, 0.125, 0.05]
            >>> cfg.entropy_coeffs_at(0, auto_advance=True) == cfg.entropy_coeffs_at(1000, auto_advance=True)
            True
            >>> early = PPOConfig(entropy_coeff_end=0.05, entropy_decay_start=0.0, total_frames=1000)
            >>> early.entropy_coeffs_at(500)["op"], PPOConfig(entropy_coeff=0.1).entropy_coeffs_at(10**9)["op"]
            (0.125, 0.1)
        """
        start = self.entropy_coeffs(auto_advance)
        if self.entropy_coeff_end is not None:
            end = _coeff_map("entropy_coeff_end", self.entropy_coeff_end)
        elif self.entropy_coeff is None:
            end = dict(DEFAULT_ENTROPY_COEFFS_END)
        else:
            return start
        begin = self.entropy_decay_start
        frac = min(max((frames / self.total_frames - begin) / (1.0 - begin), 0.0), 1.0)
        return {h: round(start[h] + (end[h] - start[h]) * frac, 12) for h in layout.HEADS}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PPOConfig":
        return _from_dict(cls, data)


Collection = Literal["sync", "multisync", "ray"]
