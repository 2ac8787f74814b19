"""PPO on the seed-lifecycle env with a Slot Transformer (or the flat-LSTM baseline) policy.

Reads top to bottom: flags -> configs -> ``torchrl_slots.training.train`` (Collector, GAE,
ClipPPOLoss, a sequence-keeping replay buffer, a torchrl logger, evaluation against wait-only /
random / heuristic / oracle on the same episodes, checkpoints) -> plots -> a one-screen summary.

    python examples/ppo_slots.py                       # the `make demo` run: 1x3 grid, transformer
    python examples/ppo_slots.py --arch lstm --rows 2 --cols 5 --total-frames 400000
    python examples/ppo_slots.py --output-dir runs/x --resume   # continue an interrupted run
    python examples/ppo_slots.py --grids 1x3,2x5,3x6,5x10 --total-frames 400000   # one policy, every grid

Ctrl-C writes a checkpoint first; ``--resume`` continues the same curve.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from tqdm import tqdm

from torchrl_slots.envs import HostConfig, LifecycleConfig, parse_grids
from torchrl_slots.policy import PolicyConfig
from torchrl_slots.training import EnvConfig, PPOConfig, RunOptions, train


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--arch", choices=["transformer", "lstm"], default="transformer", help="policy architecture")
    a("--env", choices=["surrogate", "host"], default="surrogate",
      help="surrogate: SeedLifecycleEnv; host: HostTrainingEnv, real host networks on load_digits (CPU)")
    a("--rows", type=int, default=1, help="slot grid rows")
    a("--cols", type=int, default=3, help="slot grid columns")
    a("--grids", default=None, help="train ONE policy on several grids at once, e.g. 1x3,2x5,3x6,5x10 "
      "(--num-envs split evenly; evaluated during training on the largest; transformer only)")
    a("--positional", choices=["learned", "fourier", "none"], default=None,
      help="slot positions of the transformer (default: PolicyConfig's, fourier: a position means the same "
      "on every grid)")
    a("--enabled-slots", type=int, nargs=2, metavar=("MIN", "MAX"), default=None,
      help="enable a random number of slots in [MIN, MAX] per episode (default: all)")
    a("--no-scaffolding", action="store_true", help="zero the interaction-summary slot features")
    a("--auto-advance", action="store_true", help="seeds advance through the stages by themselves")
    a("--max-epochs", type=int, default=25, help="host epochs (env steps) per episode")
    a("--num-envs", type=int, default=16, help="parallel envs (split over --workers)")
    a("--frames-per-batch", type=int, default=800, help="env steps per PPO batch (a multiple of --num-envs)")
    a("--total-frames", type=int, default=120_000, help="env steps of the whole run")
    a("--epochs", type=int, default=4, help="PPO epochs per batch")
    a("--minibatches", type=int, default=4, help="minibatches per epoch (each holds whole env sequences)")
    a("--lr", type=float, default=3e-4, help="Adam learning rate")
    a("--entropy-coeff", type=float, default=None,
      help="one entropy coefficient for every head, constant (default: PPOConfig's per-head defaults and schedule)")
    a("--seed", type=int, default=0, help="seed of the weights and the training episodes")
    a("--task-seed", type=int, default=0, help="hidden world of the env (the same in evaluation)")
    a("--device", default="cpu", help="torch device of the env and the policy")
    a("--compile", action="store_true", help="torch.compile the collection policy (LSTM included)")
    a("--collector", choices=["sync", "multisync", "ray"], default="sync",
      help="sync: one process; multisync: --workers processes; ray: needs the [ray] extra")
    a("--workers", type=int, default=2, help="collector processes for multisync / ray")
    a("--logger", choices=["csv", "tensorboard"], default="csv", help="torchrl logger")
    a("--output-dir", type=Path, default=None, help="logs, checkpoints, plots (default runs/<arch>_<grid>_s<seed>)")
    a("--resume", action="store_true", help="continue from the newest checkpoint in --output-dir")
    a("--eval-interval", type=int, default=10, help="batches between deterministic evaluations")
    a("--eval-episodes", type=int, default=128, help="episodes per evaluation (the same seeds each time)")
    a("--checkpoint-interval", type=int, default=10, help="batches between checkpoints")
    a("--no-plots", action="store_true", help="skip learning_curve.png and attention.png")
    a("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def configs(args: argparse.Namespace) -> tuple[EnvConfig, PolicyConfig, PPOConfig, RunOptions]:
    lifecycle = (HostConfig if args.env == "host" else LifecycleConfig)(
        max_epochs=args.max_epochs, task_seed=args.task_seed, scaffolding=not args.no_scaffolding,
        auto_advance=args.auto_advance,
        enabled_slots=tuple(args.enabled_slots) if args.enabled_slots else None,
    )
    if args.grids:
        grids = tuple(parse_grids(args.grids))
        rows, cols = max(grids, key=lambda rc: rc[0] * rc[1])
        env = EnvConfig(num_envs=args.num_envs, rows=rows, cols=cols, lifecycle=lifecycle, grids=grids)
    else:
        env = EnvConfig(num_envs=args.num_envs, rows=args.rows, cols=args.cols, lifecycle=lifecycle, env=args.env)
    extra = {} if args.entropy_coeff is None else {"entropy_coeff": args.entropy_coeff}
    ppo = PPOConfig(lr=args.lr, frames_per_batch=args.frames_per_batch, total_frames=args.total_frames,
                    epochs=args.epochs, minibatches=args.minibatches, **extra)
    opts = RunOptions(seed=args.seed, device=args.device, collector=args.collector, workers=args.workers,
                      compile=args.compile, eval_interval=args.eval_interval, eval_episodes=args.eval_episodes,
                      checkpoint_interval=args.checkpoint_interval)
    return env, PolicyConfig(**({} if args.positional is None else {"positional": args.positional})), ppo, opts


class ProgressBar:
    """tqdm over frames showing the training return, env steps/s and the policy entropy."""

    def __init__(self, total: int, disable: bool) -> None:
        self.bar = tqdm(total=total, unit="frames", disable=disable, dynamic_ncols=True)

    def __call__(self, row: dict[str, float]) -> None:
        self.bar.update(int(row["frames"]) - self.bar.n)
        post = {"return": row["train/episode_return"], "sps": row["time/env_steps_per_s"],
                "entropy": row.get("loss/entropy", float("nan"))}
        if "eval/score" in row:
            post["eval_score"] = row["eval/score"]
        self.bar.set_postfix({k: f"{v:.3g}" for k, v in post.items() if math.isfinite(v)})


def write_plots(result, env: EnvConfig, out: Path, arch: str) -> list[str]:
    from torchrl_slots.plotting import plot_attention, plot_learning_curve
    from torchrl_slots.training import evaluate_policy

    title = f"{arch} on {env.rows}x{env.cols}"
    plot_learning_curve(result.history, result.baselines, out / "learning_curve.png", title=title)
    written = ["learning_curve.png"]
    if arch != "transformer":
        print("attention.png skipped: the flat-LSTM policy has no attention to draw")
        return written
    _, rollout = evaluate_policy(result.policy, rows=env.rows, cols=env.cols, config=env.lifecycle,
                                 episodes=1, seed=12345, return_rollout=True, env=env.env)
    plot_attention(result.policy.trunk_net.encoder, rollout[0], env.rows, env.cols, out / "attention.png")
    return written + ["attention.png"]


LEARNED = 0.5  # the bar of benchmarks/compare_training.py: a run "learns" at this normalized score


def summary(result, out: Path, files: list[str]) -> str:
    ev, base = result.final_eval, result.baselines
    lines = [f"\n{'policy':>12} {'eval score':>11} {'normalized':>11}   (same {base['random']['episodes']} episodes)"]
    top = "oracle" if "oracle" in base else "plan"  # the real host has no oracle: its best fixed plan
    gap = base[top]["score"] - base["random"]["score"]
    score, normalized = ev.get("eval/score", float("nan")), ev.get("eval/score_normalized", float("nan"))
    lines.append(f"{'this run':>12} {score:>11.2f} {normalized:>11.2f}")
    for name in ("wait", "random", "heuristic", top):
        s = base[name]["score"]
        lines.append(f"{name:>12} {s:>11.2f} {(s - base['random']['score']) / gap:>11.2f}")
    if normalized == normalized:  # not NaN
        verdict = "learned" if normalized >= LEARNED else "did not learn"
        lines.append(f"\n{verdict}: normalized {normalized:.2f} (the learning suites count a run as learned "
                     f"at >= {LEARNED}; see benchmarks/README.md for how often each setting does, over seeds)")
    fps = result.frames / result.wall_time_s if result.wall_time_s > 0 else float("nan")
    lines.append(f"\n{result.frames} frames in {result.wall_time_s:.0f} s ({fps:.0f} frames/s)"
                 + (" (interrupted; rerun with --resume to continue)" if result.interrupted else ""))
    lines.append(f"outputs in {out}/: logs/ (CSV or TensorBoard), checkpoint_*.pt, {', '.join(files)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        env, pcfg, ppo, opts = configs(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.grids and args.arch != "transformer":
        print("error: --grids needs --arch transformer (the flat LSTM fits one slot count)", file=sys.stderr)
        return 2
    grid_name = args.grids.replace(",", "+") if args.grids else f"{args.rows}x{args.cols}"
    out = args.output_dir or Path("runs") / f"{args.arch}_{grid_name}_s{args.seed}"
    bar = ProgressBar(ppo.total_frames, disable=args.quiet)
    try:
        result = train(args.arch, env, pcfg, ppo, options=opts, output_dir=out, resume=args.resume,
                       log=args.logger, callback=bar)
    except ValueError as err:
        bar.bar.close()
        print(f"error: {err}", file=sys.stderr)
        return 2
    bar.bar.close()
    files = [] if args.no_plots else write_plots(result, env, out, args.arch)
    print(summary(result, out, files))
    return 130 if result.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
