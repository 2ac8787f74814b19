"""The trainer's collector: its construction (sync, multi-process or Ray workers) and the state a
sync collector carries between batches, saved in checkpoints for an exact resume."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import torch
from tensordict import TensorDict
from torchrl.collectors import Collector, MultiSyncCollector
from torchrl.envs import Compose, EnvBase, RewardSum, StepCounter, TransformedEnv

from torchrl_slots.envs import MixedGridEnv, make_env
from torchrl_slots.policy import SlotPolicy
from torchrl_slots.training.config import EnvConfig, PPOConfig

if TYPE_CHECKING:
    from torchrl_slots.training.trainer import RunOptions

#: Worker ``i`` of a multi-process collector seeds its envs with ``seed + WORKER_SEED_STRIDE * i``:
#: separates the workers' episodes (a stride larger than any worker count times envs per seed).
WORKER_SEED_STRIDE = 1000

def env_factory(env: EnvConfig, policy: SlotPolicy, num_envs: int, seed: int, device: str) -> Callable[[], EnvBase]:
    transforms = policy.transforms()

    def make() -> EnvBase:
        if env.grids is not None:
            base = MixedGridEnv(num_envs // len(env.grids), env.grids, config=env.lifecycle, seed=seed, device=device)
        else:
            base = make_env(env.env, num_envs, env.rows, env.cols, config=env.lifecycle, seed=seed, device=device)
        return TransformedEnv(base, Compose(*[t.clone() for t in transforms], RewardSum(), StepCounter()))

    return make


def make_collector(env: EnvConfig, policy: SlotPolicy, actor, ppo: PPOConfig, opts: RunOptions,
                    frames_left: int, seed: int):
    common = dict(frames_per_batch=ppo.frames_per_batch, total_frames=frames_left)
    if opts.collector == "sync":
        return Collector(env_factory(env, policy, env.num_envs, seed, opts.device), actor, **common)
    per_worker = env.num_envs // opts.workers
    fns = [env_factory(env, policy, per_worker, seed + WORKER_SEED_STRIDE * i, opts.device)
           for i in range(opts.workers)]
    if opts.collector == "multisync":
        return MultiSyncCollector(fns, actor, **common)
    try:
        import ray  # noqa: F401
    except ImportError as err:
        raise ImportError("collector='ray' needs the optional extra: pip install 'torchrl_slots[ray]'") from err
    from torchrl.collectors.distributed import RayCollector

    return RayCollector(
        fns, actor, collector_class=Collector, **common,
        ray_init_config={"num_cpus": opts.workers + 1, "include_dashboard": False},
        remote_configs={"num_cpus": 1, "memory": 1024**3},
    )


def clone_tree(obj: Any) -> Any:
    """A copy of nested dicts/lists whose tensors are cloned (state dicts hold live references)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: clone_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(clone_tree(v) for v in obj)
    return obj


def collector_state(collector, opts: RunOptions) -> dict[str, Any] | None:
    """The sync collector's env (simulator state, masks, both env RNGs) and its carrier (the next
    observation, LSTM state, episode counters): with these a resumed run continues the same
    episodes. Multi-process collectors are not captured (their resume draws fresh episodes)."""
    if opts.collector != "sync" or not hasattr(collector.env.base_env, "state_tensors"):
        return None  # e.g. the host env (its networks' state is not captured): a resume draws fresh episodes
    carrier = collector._carrier  # private in torchrl 0.14.1: the rollout state kept between batches
    return {"env": collector.env.base_env.state_tensors(), "carrier": carrier.to_dict(),
            "carrier_batch_size": list(carrier.batch_size)}


def load_collector_state(collector, saved: dict[str, Any]) -> None:
    collector.env.base_env.load_state_tensors(saved["env"])
    carrier = TensorDict(saved["carrier"], batch_size=saved["carrier_batch_size"], device=collector._carrier.device)
    collector._carrier = carrier
