"""Env throughput: steps/s of SeedLifecycleEnv with random legal actions.

For num_envs in {64, 1024} x N in {3, 10, 50} (grids 1x3, 2x5, 5x10): warm-up, then timed
``env.step`` calls (the action sampling is outside the timer), median and spread. Prints a table
and writes JSON (default ``benchmarks/results/bench_env.json``). Target: one step of
1024 envs x 50 slots under 10 ms on the 2-core CPU.

    python benchmarks/bench_env.py [--num-envs 64,1024] [--slots 3,10,50] [--steps 50] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from torchrl_slots.envs import SeedLifecycleEnv

GRIDS = {3: (1, 3), 10: (2, 5), 25: (5, 5), 50: (5, 10)}


def bench(num_envs: int, slots: int, steps: int, device: str) -> dict:
    rows, cols = GRIDS[slots]
    env = SeedLifecycleEnv(num_envs, rows, cols, seed=0, device=device)
    td = env.reset()
    times = []
    for i in range(steps + 10):
        td = env.rand_action(td)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = env.step(td)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= 10:  # warm-up
            times.append(time.perf_counter() - t0)
        td = out["next"]
        if bool(td["done"].any()):
            td = env.reset()
    med = statistics.median(times)
    q = statistics.quantiles(times, n=10)
    return {
        "num_envs": num_envs, "slots": slots, "grid": f"{rows}x{cols}",
        "step_ms_median": 1e3 * med, "step_ms_p10": 1e3 * q[0], "step_ms_p90": 1e3 * q[-1],
        "env_steps_per_s": num_envs / med,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-envs", default="64,1024", help="comma-separated batch sizes")
    p.add_argument("--slots", default="3,10,50", help="comma-separated slot counts (3, 10, 25, 50)")
    p.add_argument("--steps", type=int, default=50, help="timed steps per setting")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default="benchmarks/results/bench_env.json", help="output JSON path")
    args = p.parse_args()
    rows = [bench(int(e), int(n), args.steps, args.device)
            for e in args.num_envs.split(",") for n in args.slots.split(",")]
    machine = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
               "torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device}
    print(f"SeedLifecycleEnv.step, random legal actions, {machine['device']}, torch {machine['torch']}, "
          f"{machine['threads']} threads")
    print(f"{'envs':>6} {'slots':>5} {'grid':>5} {'step ms (median)':>17} {'p10-p90':>15} {'env steps/s':>12}")
    for r in rows:
        print(f"{r['num_envs']:>6} {r['slots']:>5} {r['grid']:>5} {r['step_ms_median']:>17.2f} "
              f"{r['step_ms_p10']:>7.2f}-{r['step_ms_p90']:<7.2f} {r['env_steps_per_s']:>12.0f}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
