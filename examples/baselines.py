"""Score the reference policies (wait-only, random, heuristic, oracle) on SeedLifecycleEnv.

Every policy plays the SAME episodes (same env seed: host curves and noise are drawn with fixed
shapes, independent of the actions), and the table reports the unshaped score and the shaped
return, mean +- std over the episodes, plus how far the heuristic gets from random (0) to
oracle (1). This is the command behind the README's table:

    python examples/baselines.py --episodes 256 --grids 1x3,2x5,5x10 --auto-advance-grids 5x10
"""

from __future__ import annotations

import argparse
import time

from torchrl_slots.envs import LifecycleConfig
from torchrl_slots.training import evaluate_baselines


def evaluate(rows: int, cols: int, config: LifecycleConfig, episodes: int, seed: int) -> dict[str, dict[str, float]]:
    """Mean/std of score and shaped return per policy over ``episodes`` episodes."""
    res = evaluate_baselines(rows=rows, cols=cols, config=config, episodes=episodes, seed=seed)
    sd = episodes**0.5  # EvalResult holds standard errors; the table shows standard deviations
    return {name: {"score": r.score, "score_std": r.score_se * sd, "return": r.ret, "return_std": r.ret_se * sd}
            for name, r in res.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=256, help="episodes per policy and grid")
    p.add_argument("--grids", default="1x3,2x5", help="comma-separated ROWSxCOLS grids")
    p.add_argument("--auto-advance-grids", default="", help="grids also run with auto_advance=True")
    p.add_argument("--seed", type=int, default=1, help="episode seed (the same for every policy)")
    p.add_argument("--task-seed", type=int, default=0, help="hidden world")
    args = p.parse_args()
    runs = [(g, False) for g in args.grids.split(",") if g]
    runs += [(g, True) for g in args.auto_advance_grids.split(",") if g]
    print(f"{'grid':>5} {'auto':>5} {'policy':>10} {'score':>15} {'shaped return':>15}")
    for grid, auto in runs:
        rows, cols = (int(x) for x in grid.split("x"))
        cfg = LifecycleConfig(task_seed=args.task_seed, auto_advance=auto)
        t0 = time.perf_counter()
        res = evaluate(rows, cols, cfg, args.episodes, args.seed)
        for name, r in res.items():
            print(f"{grid:>5} {str(auto):>5} {name:>10} {r['score']:>7.2f} ± {r['score_std']:<5.2f} "
                  f"{r['return']:>7.2f} ± {r['return_std']:<5.2f}")
        gap = res["oracle"]["score"] - res["random"]["score"]
        frac = (res["heuristic"]["score"] - res["random"]["score"]) / gap if gap > 0 else float("nan")
        print(f"{'':>5} {'':>5} heuristic at {100 * frac:.0f}% of the way from random to oracle "
              f"({args.episodes} episodes, {time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
