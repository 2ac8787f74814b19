"""Signal check on the real host: reference policies on HostTrainingEnv, same episode seeds.

Plays ``--episodes`` episodes (one batched env per policy, the same ``--seed``, so every policy
sees the same hosts, initialisations and minibatches) with wait-only, random legal, the heuristic
and every fixed plan of ``PLAN_GRID``, and reports the score (pp of validation accuracy over the
seedless twin, minus rent) as mean +- standard error, the heuristic's margins over wait and random
in standard errors, and scores normalised between random (0) and the best plan (1). One thread.

    python benchmarks/host_baselines.py [--episodes 64] [--grid 2x5] [--seed 0] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch

from torchrl_slots.envs import (
    PLAN_GRID,
    HeuristicPolicy,
    HostConfig,
    HostTrainingEnv,
    PlanPolicy,
    RandomPolicy,
    WaitPolicy,
)


def run(policy_fn, episodes: int, rows: int, cols: int, seed: int) -> dict:
    env = HostTrainingEnv(episodes, rows, cols, config=HostConfig(), seed=seed)
    t0 = time.perf_counter()
    with torch.no_grad():
        td = env.rollout(env.config.max_epochs, policy_fn(env), break_when_any_done=False)
    score = td["next", "info", "score"][:, -1].double()
    last = td["next"][:, -1]
    return {
        "score": float(score.mean()), "score_se": float(score.std() / math.sqrt(episodes)),
        "val_acc": float(last["info", "val_acc"].mean()), "twin_acc": float(env.state.twin_acc.mean()),
        "fossilized": float(last["info", "fossilized"].float().mean()), "seconds": time.perf_counter() - t0,
        "scores": score.tolist(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=64)
    p.add_argument("--grid", default="2x5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="benchmarks/results/host_baselines.json")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows, cols = (int(v) for v in args.grid.split("x"))
    policies = {"wait": WaitPolicy, "random": RandomPolicy, "heuristic": HeuristicPolicy}
    policies.update({f"plan:{b}:{s.name}": (lambda e, b=b, s=s: PlanPolicy(e, b, s)) for b, s in PLAN_GRID})
    res = {}
    for name, fn in policies.items():
        res[name] = run(fn, args.episodes, rows, cols, args.seed)
        print(f"{name:>32}: score {res[name]['score']:+.3f} +- {res[name]['score_se']:.3f}  "
              f"val {res[name]['val_acc']:.1f} (twin {res[name]['twin_acc']:.1f})  "
              f"fossilized {res[name]['fossilized']:.2f}  {res[name]['seconds']:.0f} s", flush=True)
    plans = {k: v for k, v in res.items() if k.startswith("plan:")}
    best = max(plans, key=lambda k: plans[k]["score"])
    h, w, r = res["heuristic"], res["wait"], res["random"]

    def margin(a: dict, b: dict) -> float:
        se = math.sqrt(a["score_se"] ** 2 + b["score_se"] ** 2)
        return (a["score"] - b["score"]) / se if se > 0 else float("inf")

    gap = plans[best]["score"] - r["score"]
    summary = {
        "best_plan": best,
        "heuristic_minus_wait_in_se": margin(h, w),
        "heuristic_minus_random_in_se": margin(h, r),
        "normalized": {k: (v["score"] - r["score"]) / gap if gap > 0 else float("nan") for k, v in res.items()},
    }
    print(f"best plan {best}; heuristic - wait = {summary['heuristic_minus_wait_in_se']:.1f} SE, "
          f"heuristic - random = {summary['heuristic_minus_random_in_se']:.1f} SE; normalised heuristic "
          f"{summary['normalized']['heuristic']:.2f}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads()}
    settings = {"episodes": args.episodes, "grid": args.grid, "seed": args.seed, "config": HostConfig().to_dict()}
    out.write_text(json.dumps({"machine": machine, "settings": settings, "summary": summary, "results": res},
                              indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
