"""``train()``: PPO on :class:`~torchrl_slots.envs.SeedLifecycleEnv` from TorchRL parts.

One batch of the loop::

    Collector -> [E, T] batch (RewardSum / StepCounter / InitTracker / LSTM primer on the env)
      -> GAE (policy.value_network: trunk + value head, recurrent mode, deactivate_vmap=True)
      -> ReplayBuffer(LazyTensorStorage(E), SamplerWithoutReplacement): one item = one env's
         whole [T] sequence, so a minibatch is [E / minibatches, T] and the LSTM sees whole runs
      -> epochs x minibatches of ClipPPOLoss(policy.actor, policy.critic) + Adam (NaN guard)
      -> metrics to a torchrl.record.loggers logger; periodic deterministic evaluation against the
         reference policies on the same episodes; periodic atomic checkpoints.

TorchRL's ``PPOTrainer`` (torchrl.trainers.algorithms) was considered and not used: its replay
buffer hook flattens the batch (``flatten_tensordicts=True``), which cuts the time sequences the
LSTM core needs; its default GAE takes the loss's critic, which here is the value head alone
(one trunk pass per loss call); and it has no non-finite-update guard. It is also marked
experimental in 0.14.1.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

import torch
from torchrl.record.loggers import Logger

from torchrl_slots.envs import MixedGridEnv, make_env
from torchrl_slots.envs.config import check_int
from torchrl_slots.policy import PolicyConfig, SlotPolicy, create_policy
from torchrl_slots.training.checkpoint import TRAINING_FORMAT, CheckpointManager, check_resumable
from torchrl_slots.training.collection import clone_tree, collector_state, load_collector_state, make_collector
from torchrl_slots.training.config import Collection, EnvConfig, PPOConfig
from torchrl_slots.training.evaluation import EvalResult, evaluate_baselines, evaluate_policy, normalized_score
from torchrl_slots.training.loggers import make_logger
from torchrl_slots.training.metrics import batch_metrics
from torchrl_slots.training.updater import TrainingDivergedError, _Updater  # noqa: F401  (re-exported)

logger = logging.getLogger(__name__)


#: Evaluation episodes use ``seed + EVAL_SEED_OFFSET``: separates them from the training episodes.
EVAL_SEED_OFFSET = 10_000
#: A resumed run without a saved collector state reseeds its collector with
#: ``seed + RESUME_SEED_STRIDE * batches_done`` (a prime): separates its episodes from the first part's.
RESUME_SEED_STRIDE = 7919


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        policy: the trained policy (eager modules).
        history: one metrics dict per batch (``"frames"`` included); evaluation rows carry ``eval/*``.
        baselines: wait/random/heuristic/oracle on the evaluation episodes.
        final_eval: the last evaluation row (``eval/score``, ``eval/score_normalized``, ...).
        frames: env steps done in total (a resumed run counts its earlier part).
        wall_time_s: seconds spent in this call.
        interrupted: True when Ctrl-C stopped the run (a checkpoint was written first).
        checkpoint: the last checkpoint written (None without ``output_dir``).
    """

    policy: SlotPolicy
    history: list[dict[str, float]]
    baselines: dict[str, dict[str, float]]
    final_eval: dict[str, float]
    frames: int
    wall_time_s: float
    interrupted: bool = False
    checkpoint: Path | None = None


@dataclass
class RunOptions:
    """How :func:`train` runs (not what it learns); all but ``seed`` and ``eval_seed`` may change on
    resume. ``eval_seed`` fixes the evaluation episodes (default ``seed + 10000``); give runs the
    same one to compare them on the same episodes."""

    seed: int = 0
    device: str = "cpu"
    collector: Collection = "sync"
    workers: int = 2
    compile: bool = False
    eval_interval: int = 10
    eval_episodes: int = 64
    eval_seed: int | None = None
    checkpoint_interval: int = 10
    keep_checkpoints: int = 3


def _as_env_config(env: EnvConfig | Mapping[str, Any]) -> EnvConfig:
    return env if isinstance(env, EnvConfig) else EnvConfig.from_dict(env)


def _check_configs(env: EnvConfig, ppo: PPOConfig, opts: RunOptions) -> None:
    env.validate()
    ppo.validate(env.num_envs)
    if not math.isclose(ppo.gamma, env.lifecycle.gamma):
        raise ValueError(
            f"PPOConfig.gamma={ppo.gamma} must equal the env's PBRS LifecycleConfig.gamma={env.lifecycle.gamma} "
            f"(potential-based shaping keeps the optimal policy only under the same discount)"
        )
    if opts.collector not in ("sync", "multisync", "ray"):
        raise ValueError(f"collector must be 'sync', 'multisync' or 'ray', got {opts.collector!r}")
    if opts.collector != "sync" and (opts.workers < 1 or env.num_envs % opts.workers):
        raise ValueError(f"workers={opts.workers} must divide num_envs={env.num_envs}")
    for name in ("eval_interval", "checkpoint_interval", "eval_episodes", "keep_checkpoints", "workers"):
        check_int(f"RunOptions.{name}", getattr(opts, name), minimum=1)
    check_int("RunOptions.seed", opts.seed)
    if opts.eval_seed is not None:
        check_int("RunOptions.eval_seed", opts.eval_seed, what="None or an int")


def _check_output_dir(output_dir: Path | None, resume: bool) -> None:
    """Refuse, before any work, an ``output_dir`` that is a file, or (without ``resume``) one that
    holds another run's logs; a folder with checkpoints is refused by the resume check."""
    if output_dir is None:
        return
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"output_dir {output_dir} exists and is not a directory")
    logs = output_dir / "logs"
    has_checkpoints = any(output_dir.glob("checkpoint_*.pt")) if output_dir.is_dir() else False
    if not resume and not has_checkpoints and logs.is_dir() and any(logs.iterdir()):
        raise ValueError(
            f"{output_dir} already holds another run's logs ({logs}); the logger would append to them. Pass "
            f"resume=True (--resume) to continue that run, or choose another output directory (nothing was "
            f"overwritten)"
        )


def _run_dict(arch: str, env: EnvConfig, pcfg: PolicyConfig, ppo: PPOConfig, opts: RunOptions) -> dict[str, Any]:
    # The entropy coefficients as resolved for this env (entropy_coeff=None depends on auto_advance).
    auto = env.lifecycle.auto_advance
    ppo_dict = {**ppo.to_dict(), "entropy_coeff": ppo.entropy_coeffs(auto),
                "entropy_coeff_end": ppo.entropy_coeffs_at(ppo.total_frames, auto)}
    return {"arch": arch, "env": env.to_dict(), "policy": asdict(pcfg), "ppo": ppo_dict, **asdict(opts)}


def _eval_row(policy: SlotPolicy, env: EnvConfig, opts: RunOptions, eval_seed: int,
              baselines: dict[str, EvalResult]) -> dict[str, float]:
    res = evaluate_policy(policy, rows=env.rows, cols=env.cols, config=env.lifecycle,
                          episodes=opts.eval_episodes, seed=eval_seed, env=env.env)
    return {"eval/score": res.score, "eval/score_se": res.score_se, "eval/return": res.ret,
            "eval/score_normalized": normalized_score(res.score, baselines)}


def train(
    arch: str,
    env_config: EnvConfig | Mapping[str, Any],
    policy_config: PolicyConfig | None = None,
    ppo_config: PPOConfig | None = None,
    *,
    options: RunOptions | None = None,
    output_dir: str | Path | None = None,
    resume: bool = False,
    log: Literal["csv", "tensorboard"] | Logger | None = "csv",
    callback: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train a ``arch`` policy with PPO; returns the policy and its metrics history.

    Args:
        arch: a registered policy (``"transformer"`` or ``"lstm"``).
        env_config: :class:`EnvConfig` (or its dict).
        policy_config: :class:`~torchrl_slots.policy.PolicyConfig` (defaults if None).
        ppo_config: :class:`PPOConfig` (defaults if None).
        options: :class:`RunOptions` (seed, device, collector, evaluation and checkpoint cadence).
        output_dir: where logs and checkpoints go; None = nothing written (and no resume).
        resume: continue from the newest checkpoint in ``output_dir`` (optimizer, RNG, frame
            counter, logger step and history); the run's settings must match (``ValueError`` if not).
            Without ``resume``, an ``output_dir`` that already holds checkpoints is refused.
        log: ``"csv"``, ``"tensorboard"``, a TorchRL ``Logger``, or None.
        callback: called with each batch's metrics dict (e.g. to drive a progress bar).

    Raises:
        ValueError: inconsistent settings (gamma != the env's PBRS gamma, frames_per_batch not a
            multiple of num_envs, an incomplete per-head entropy map, an incompatible resume).
        TrainingDivergedError: too many non-finite updates in a row (the last checkpoint is kept).

    Examples:
        >>> from torchrl_slots.training import EnvConfig, PPOConfig, RunOptions, train
        >>> res = train("transformer", EnvConfig(num_envs=4),
        ...             PolicyConfig(embed_dim=16, num_heads=2, num_layers=1, ffn_dim=32,
        ...                          feature_dim=16, lstm_hidden=16, key_dim=8),
        ...             PPOConfig(frames_per_batch=100, total_frames=200, minibatches=2, epochs=1),
        ...             options=RunOptions(eval_episodes=4), log=None)
        >>> res.frames, len(res.history)  # an evaluation row at 0 frames, then one row per batch
        (200, 3)
        >>> sorted(res.baselines)
        ['heuristic', 'oracle', 'random', 'wait']
    """
    env_cfg = _as_env_config(env_config)
    pcfg = policy_config or PolicyConfig()
    ppo = ppo_config or PPOConfig()
    opts = options or RunOptions()
    _check_configs(env_cfg, ppo, opts)
    pcfg.validate()
    _check_output_dir(Path(output_dir) if output_dir is not None else None, resume)
    run = _run_dict(arch, env_cfg, pcfg, ppo, opts)
    ckpts = CheckpointManager(output_dir, keep=opts.keep_checkpoints) if output_dir is not None else None
    saved = _load_for_resume(ckpts, run, resume)
    torch.manual_seed(opts.seed)
    if env_cfg.grids is not None:  # the padded layout of the mixture
        probe = MixedGridEnv(1, env_cfg.grids, config=env_cfg.lifecycle, seed=0, device=opts.device)
    else:
        probe = make_env(env_cfg.env, 1, env_cfg.rows, env_cfg.cols, config=env_cfg.lifecycle, seed=0,
                         device=opts.device)
    policy = create_policy(arch, probe, pcfg)
    updater = _Updater(policy, ppo, env_cfg.num_envs, auto_advance=env_cfg.lifecycle.auto_advance)
    eval_seed = opts.seed + EVAL_SEED_OFFSET if opts.eval_seed is None else opts.eval_seed
    state = _State(frames=0, batches=0, history=[])
    if saved is not None:
        state = _restore(saved, policy, updater)
        baselines = {k: EvalResult.from_dict(d) for k, d in saved["baselines"].items()}
    else:
        baselines = evaluate_baselines(rows=env_cfg.rows, cols=env_cfg.cols, config=env_cfg.lifecycle,
                                       episodes=opts.eval_episodes, seed=eval_seed, env=env_cfg.env)
    log_obj = make_logger(log, output_dir) if output_dir is not None or isinstance(log, Logger) else None
    ctx = _RunContext(run=run, env=env_cfg, ppo=ppo, opts=opts, policy=policy, updater=updater, state=state,
                      baselines=baselines, eval_seed=eval_seed, ckpts=ckpts, log=log_obj, callback=callback,
                      resume_from=saved)
    return _loop(ctx)


@dataclass
class _State:
    frames: int
    batches: int
    history: list[dict[str, float]] = field(default_factory=list)


def _load_for_resume(ckpts: CheckpointManager | None, run: dict[str, Any], resume: bool) -> dict | None:
    if ckpts is None:
        if resume:
            raise ValueError("resume=True needs an output_dir holding checkpoints")
        return None
    latest = ckpts.latest()
    if not resume:
        if latest is not None:
            raise ValueError(
                f"{ckpts.directory} already holds checkpoints ({latest.name}); pass resume=True (--resume) "
                f"to continue that run, or choose another output directory (nothing was overwritten)"
            )
        return None
    if latest is None:
        raise ValueError(f"resume=True but {ckpts.directory} holds no checkpoint_*.pt")
    saved, path = ckpts.load_latest_with_path()
    check_resumable(saved["run"], run, path)
    logger.info("resuming from %s at %d frames", path, saved["frames"])
    return saved


@dataclass
class _RunContext:
    """Everything one call of :func:`train` carries through its loop."""

    run: dict[str, Any]  # what must match on resume (see check_resumable)
    env: EnvConfig
    ppo: PPOConfig
    opts: RunOptions
    policy: SlotPolicy
    updater: _Updater
    state: _State
    baselines: dict[str, EvalResult]
    eval_seed: int
    ckpts: CheckpointManager | None
    log: Logger | None
    callback: Callable[[dict[str, float]], None] | None
    resume_from: dict[str, Any] | None = None  # the checkpoint resumed from


def _load_learner(saved: dict, policy: SlotPolicy, updater: _Updater) -> None:
    """Weights, optimizer and return scaler from a checkpoint payload (on resume and on Ctrl-C)."""
    policy.load_state_dict(saved["policy"]["state_dict"])
    updater.optim.load_state_dict(saved["optimizer"])
    if updater.return_scaler is not None:  # check_resumable: the saved run normalised its returns too
        updater.return_scaler.load_state_dict(saved["return_scaler"])


def _restore(saved: dict, policy: SlotPolicy, updater: _Updater) -> _State:
    _load_learner(saved, policy, updater)
    torch.set_rng_state(saved["rng"]["torch"])
    return _State(frames=int(saved["frames"]), batches=int(saved["batches"]), history=list(saved["history"]))


def _payload(ctx: _RunContext, collector_state: dict[str, Any] | None) -> dict[str, Any]:
    """The checkpoint of the run as it is now (tensors cloned: it may be kept in memory)."""
    payload = {
        "format": TRAINING_FORMAT,
        "run": ctx.run,
        "policy": ctx.policy.payload(),
        "optimizer": ctx.updater.optim.state_dict(),
        "return_scaler": None if ctx.updater.return_scaler is None else ctx.updater.return_scaler.state_dict(),
        "frames": ctx.state.frames,
        "batches": ctx.state.batches,
        "rng": {"torch": torch.get_rng_state()},
        "history": ctx.state.history,
        "baselines": {k: v.to_dict() for k, v in ctx.baselines.items()},
    }
    if collector_state is not None:
        payload["collector"] = collector_state
    return clone_tree(payload)


def _loop(ctx: _RunContext) -> TrainResult:
    t_start = time.perf_counter()
    state, ppo, opts, policy, updater = ctx.state, ctx.ppo, ctx.opts, ctx.policy, ctx.updater
    if state.frames + ppo.frames_per_batch > ppo.total_frames:  # a finished run resumed as is
        logger.warning("nothing to do: %d of total_frames=%d done", state.frames, ppo.total_frames)
        return _result(policy, state, ctx.baselines, t_start, False, None)
    upper = "oracle" if "oracle" in ctx.baselines else "plan"  # the host env has no oracle: its best plan
    rnd, orc = ctx.baselines["random"].score, ctx.baselines[upper].score
    if state.batches == 0:
        row = {"frames": 0.0, **_eval_row(policy, ctx.env, opts, ctx.eval_seed, ctx.baselines),
               **{f"baseline/{k}": v.score for k, v in ctx.baselines.items()}}
        state.history.append(row)
        _log(ctx.log, row, 0)
    ctx.policy.heads_net.set_floors(*ctx.ppo.floors_at(state.frames))
    actor = policy.compile() if opts.compile else policy.actor
    saved = ctx.resume_from
    # A resumed run without a saved collector state draws fresh episodes from a seed derived from
    # where it stopped; with one (sync collector), the episodes continue exactly.
    collector = make_collector(ctx.env, policy, actor, ppo, opts, ppo.total_frames - state.frames,
                                seed=opts.seed + RESUME_SEED_STRIDE * state.batches)
    if saved is not None and saved.get("collector") is not None and opts.collector == "sync":
        load_collector_state(collector, saved["collector"])
        torch.set_rng_state(saved["rng"]["torch"])  # again: building the collector may have drawn
    interrupted, last_ckpt = False, None
    # The run as of the last completed batch: what Ctrl-C in the middle of a batch writes.
    last_complete, last_saved_frames = None, state.frames if saved is not None else -1
    try:
        t_collect = time.perf_counter()
        for batch in collector:
            collect_s = time.perf_counter() - t_collect
            batch = batch.reshape(-1, batch.shape[-1])  # multi-worker batches: [W, E, T] -> [W*E, T]
            lr = updater.set_lr(state.frames)
            op_entropy = updater.set_entropy_coeffs(state.frames)["op"]
            floors = policy.heads_net.floors.tolist()  # what this batch was collected with
            t_update = time.perf_counter()
            row = {**batch_metrics(batch, random_score=rnd, oracle_score=orc), **updater(batch)}
            update_s = time.perf_counter() - t_update
            state.frames += batch.numel()
            state.batches += 1
            policy.heads_net.set_floors(*ppo.floors_at(state.frames))  # for the next batch and its update
            if opts.collector != "sync":
                collector.update_policy_weights_()
            row.update({"frames": float(state.frames), "optim/lr": lr, "optim/op_entropy_coeff": op_entropy,
                        "optim/op_floor": floors[0], "optim/slot_floor": floors[1], "time/collect_s": collect_s,
                        "time/update_s": update_s, "time/env_steps_per_s": batch.numel() / max(collect_s, 1e-9)})
            final = state.frames >= ppo.total_frames
            if state.batches % opts.eval_interval == 0 or final:
                row.update(_eval_row(policy, ctx.env, opts, ctx.eval_seed, ctx.baselines))
            state.history.append(row)
            _log(ctx.log, row, state.frames)
            if ctx.ckpts is not None:
                last_complete = _payload(ctx, collector_state(collector, opts))
                if state.batches % opts.checkpoint_interval == 0 or final:
                    last_ckpt = ctx.ckpts.save(last_complete)
                    last_saved_frames = state.frames
            if ctx.callback is not None:
                ctx.callback(row)
            t_collect = time.perf_counter()
    except KeyboardInterrupt:
        interrupted = True
        logger.warning("interrupted at %d frames (the last completed batch)", state.frames if last_complete is None
                       else last_complete["frames"])
        if last_complete is not None:
            # the interrupted batch's partial update is dropped: weights, optimizer, RNG and
            # history go back to the end of the last completed batch, which is what is saved
            _load_learner(last_complete, policy, updater)
            state.frames, state.batches = int(last_complete["frames"]), int(last_complete["batches"])
            del state.history[len(last_complete["history"]):]
            if last_complete["frames"] > last_saved_frames:
                last_ckpt = ctx.ckpts.save(last_complete)
    finally:
        collector.shutdown()
    return _result(policy, state, ctx.baselines, t_start, interrupted, last_ckpt)


def _result(policy, state: _State, baselines, t_start: float, interrupted: bool, ckpt: Path | None) -> TrainResult:
    final_eval = next((r for r in reversed(state.history) if "eval/score" in r), {})
    return TrainResult(policy=policy, history=state.history, baselines={k: v.to_dict() for k, v in baselines.items()},
                       final_eval=final_eval, frames=state.frames, wall_time_s=time.perf_counter() - t_start,
                       interrupted=interrupted, checkpoint=ckpt)


def _log(log_obj: Logger | None, row: Mapping[str, float], step: int) -> None:
    if log_obj is None:
        return
    for k, v in row.items():
        if k != "frames" and isinstance(v, float) and math.isfinite(v):
            log_obj.log_scalar(k, v, step=step)
