"""Evaluate a saved policy against wait-only, random, heuristic and oracle on the same episodes.

Reads a training checkpoint (``checkpoint_*.pt`` from ``examples/ppo_slots.py``) or a policy file
(``SlotPolicy.save``). The grid may differ from the training one: a transformer policy then plays
zero-shot (the flat LSTM is built for one slot count and is refused on another).

    python examples/evaluate.py --checkpoint runs/transformer_1x3_s0/checkpoint_000000300000.pt
    python examples/evaluate.py --checkpoint runs/.../checkpoint_....pt --rows 2 --cols 5   # zero-shot
    python examples/evaluate.py --checkpoint runs/.../checkpoint_....pt --env host  # on a real host

On ``--env host`` (HostTrainingEnv) there is no oracle: the upper reference is the best fixed plan.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from torchrl_slots.envs import LifecycleConfig, make_env
from torchrl_slots.envs.factory import config_class
from torchrl_slots.training import evaluate_baselines, evaluate_policy, load_policy, normalized_score
from torchrl_slots.training.checkpoint import TRAINING_FORMAT, safe_load


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="training checkpoint or SlotPolicy file")
    p.add_argument("--rows", type=int, default=None, help="grid rows (default: the training grid)")
    p.add_argument("--cols", type=int, default=None, help="grid columns (default: the training grid)")
    p.add_argument("--episodes", type=int, default=256, help="evaluation episodes")
    p.add_argument("--seed", type=int, default=20_000, help="episode seed (the same for every policy)")
    p.add_argument("--auto-advance", action="store_true", default=None,
                   help="force auto_advance on (default: as trained)")
    p.add_argument("--sample", action="store_true", help="sample actions instead of each head's mode")
    p.add_argument("--env", choices=["surrogate", "host"], default=None,
                   help="env to evaluate on (default: the training env); host = HostTrainingEnv (real host)")
    return p.parse_args(argv)


def training_env(path: Path, kind: str | None = None) -> tuple[int, int, LifecycleConfig, str]:
    """The grid, env settings and env kind a checkpoint was trained with: a training checkpoint's
    run, or a policy file's saved grid (an older policy file without one: ``1 x num_slots``);
    ``kind`` switches the env, keeping the lifecycle settings both envs share."""
    payload = safe_load(path)
    if isinstance(payload, dict) and payload.get("format") == TRAINING_FORMAT:
        env = payload["run"]["env"]
        rows, cols, trained, data = env["rows"], env["cols"], env.get("env", "surrogate"), env["lifecycle"]
    elif isinstance(payload, dict) and payload.get("grid") is not None:
        (rows, cols), trained, data = payload["grid"], "surrogate", {}
    else:
        rows, cols, trained, data = 1, payload.get("num_slots", 3) if isinstance(payload, dict) else 3, "surrogate", {}
    kind = kind or trained
    cls = config_class(kind)
    return int(rows), int(cols), cls.from_dict({k: v for k, v in data.items() if k in cls.__dataclass_fields__}), kind


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    try:
        for name in ("rows", "cols", "episodes"):
            value = getattr(args, name)
            if value is not None and value <= 0:
                raise ValueError(f"--{name} must be a positive int, got {value}")
        rows, cols, config, kind = training_env(args.checkpoint, args.env)
        trained_on = f"{rows}x{cols}"
        rows = args.rows if args.rows is not None else rows
        cols = args.cols if args.cols is not None else cols
        if args.auto_advance:
            config.auto_advance = True
        if config.enabled_slots is not None and config.enabled_slots[1] > rows * cols:
            config.enabled_slots = None
        policy = load_policy(args.checkpoint, make_env(kind, 1, rows, cols, config=config, seed=0))
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from err
    res = evaluate_policy(policy, rows=rows, cols=cols, config=config, episodes=args.episodes,
                          seed=args.seed, deterministic=not args.sample, env=kind)
    base = evaluate_baselines(rows=rows, cols=cols, config=config, episodes=args.episodes, seed=args.seed, env=kind)
    zero_shot = " (zero-shot)" if f"{rows}x{cols}" != trained_on else ""
    print(f"{policy.arch} policy trained on {trained_on}, evaluated on {rows}x{cols}{zero_shot} ({kind} env), "
          f"{args.episodes} episodes, seed {args.seed}")
    print(f"{'policy':>12} {'score':>16} {'normalized':>11} {'shaped return':>16}")
    rows_out = {"policy": res, **base}
    for name, r in rows_out.items():
        print(f"{name:>12} {r.score:>8.2f} ± {r.score_se:<5.2f} {normalized_score(r.score, base):>11.2f} "
              f"{r.ret:>8.2f} ± {r.ret_se:<5.2f}")
    return {name: r.score for name, r in rows_out.items()} | {"normalized": normalized_score(res.score, base)}


if __name__ == "__main__":
    main()
