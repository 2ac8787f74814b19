"""Build a lifecycle env by kind: ``"surrogate"`` (:class:`SeedLifecycleEnv`) or ``"host"``
(:class:`HostTrainingEnv`), so that training, evaluation and the examples take either."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from torchrl_slots.envs.config import LifecycleConfig
from torchrl_slots.envs.host import HostConfig, HostTrainingEnv
from torchrl_slots.envs.seed_lifecycle import LifecycleEnvBase, SeedLifecycleEnv

#: env kind -> (env class, its config class)
ENV_KINDS: dict[str, tuple[type, type]] = {
    "surrogate": (SeedLifecycleEnv, LifecycleConfig),
    "host": (HostTrainingEnv, HostConfig),
}


def config_class(kind: str) -> type:
    """The config class of env ``kind``.

    Examples:
        >>> config_class("host").__name__
        'HostConfig'
    """
    if kind not in ENV_KINDS:
        raise ValueError(f"env kind must be one of {sorted(ENV_KINDS)}, got {kind!r}")
    return ENV_KINDS[kind][1]


def config_from_dict(kind: str, data: Mapping[str, Any]) -> LifecycleConfig:
    """``config_class(kind).from_dict(data)``."""
    return config_class(kind).from_dict(dict(data))


def make_env(kind: str, num_envs: int, rows: int, cols: int, *, config: LifecycleConfig | None = None,
             seed: int | None = None, device: torch.device | str | None = None) -> LifecycleEnvBase:
    """A ``kind`` env; ``config`` must be that kind's config class (its defaults if None).

    Examples:
        >>> env = make_env("surrogate", 2, 1, 3, seed=0)
        >>> type(env).__name__
        'SeedLifecycleEnv'
    """
    cls, cfg_cls = ENV_KINDS[kind] if kind in ENV_KINDS else (None, config_class(kind))
    config = cfg_cls() if config is None else config
    if not isinstance(config, cfg_cls):
        raise TypeError(f"env {kind!r} needs a {cfg_cls.__name__}, got {type(config).__name__}")
    if kind == "host":
        if device is not None and torch.device(device).type != "cpu":
            raise ValueError(f"HostTrainingEnv runs on the CPU only, got device={device!r}")
        return cls(num_envs, rows, cols, config=config, seed=seed)
    return cls(num_envs, rows, cols, config=config, seed=seed, device=device)
