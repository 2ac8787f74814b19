"""Env throughput: steps/s of SeedLifecycleEnv with random legal actions.

For num_envs in {64, 1024} x N in {3, 10, 50} (grids 1x3, 2x5, 5x10): warm-up, then timed
``env.step`` calls (the action sampling is outside the timer), median and spread. Prints a table
and writes JSON (default ``benchmarks/results/bench_env.json``). Target: one step of
1024 envs x 50 slots under 10 ms on the 2-core CPU.

``--env host`` times HostTrainingEnv instead (real host networks; default 16 envs on 2x5, with
wait-only actions (the host alone: the floor), random legal actions (every family, the slowest)
and the heuristic, whose steps train and measure seeds all episode long)
and writes its rows under ``"host_results"`` of the same JSON, keeping the surrogate's rows.
Target: at most 50 ms per step for 16 envs on 2x5 on one CPU thread.

    python benchmarks/bench_env.py [--num-envs 64,1024] [--slots 3,10,50] [--steps 50] [--json PATH]
    python benchmarks/bench_env.py --env host [--num-envs 16] [--slots 10] [--steps 50] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from torchrl_slots.envs import HeuristicPolicy, HostTrainingEnv, SeedLifecycleEnv, WaitPolicy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arch_report import cpu_model  # noqa: E402  (a sibling script of this folder)

GRIDS = {3: (1, 3), 10: (2, 5), 25: (5, 5), 50: (5, 10)}


def _time_steps(env, act, steps: int, warmup: int, device: str = "cpu") -> dict:
    """Median/p10/p90 of ``env.step`` over ``steps`` steps after ``warmup`` (episodes run on and reset
    when done); ``act(td)`` writes the action."""
    td = env.reset()
    times = []
    for i in range(steps + warmup):
        td = act(td)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = env.step(td)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
        td = out["next"]
        if bool(td["done"].any()):
            td = env.reset()
    med = statistics.median(times)
    q = statistics.quantiles(times, n=10)
    return {"step_ms_median": 1e3 * med, "step_ms_p10": 1e3 * q[0], "step_ms_p90": 1e3 * q[-1],
            "env_steps_per_s": env.batch_size[0] / med}


def bench(num_envs: int, slots: int, steps: int, device: str) -> dict:
    rows, cols = GRIDS[slots]
    env = SeedLifecycleEnv(num_envs, rows, cols, seed=0, device=device)
    return {"num_envs": num_envs, "slots": slots, "grid": f"{rows}x{cols}",
            **_time_steps(env, env.rand_action, steps, warmup=10, device=device)}


def bench_host(num_envs: int, slots: int, steps: int, policy: str) -> dict:
    """Median ``env.step`` time of HostTrainingEnv (episodes run on, resetting when done)."""
    rows, cols = GRIDS[slots]
    env = HostTrainingEnv(num_envs, rows, cols, seed=0)
    act = {"heuristic": HeuristicPolicy, "wait": WaitPolicy}.get(policy, lambda e: e.rand_action)(env)
    return {"env": "host", "policy": policy, "num_envs": num_envs, "slots": slots, "grid": f"{rows}x{cols}",
            **_time_steps(env, act, steps, warmup=5)}


def main_host(args) -> None:
    torch.set_num_threads(args.threads)
    rows = [bench_host(int(e), int(n), args.steps, policy) for e in args.num_envs.split(",")
            for n in args.slots.split(",") for policy in ("wait", "random", "heuristic")]
    machine = {"platform": platform.platform(), "processor": cpu_model(), "torch": torch.__version__,
               "threads": torch.get_num_threads(), "device": "cpu", "note": args.note}
    print(f"HostTrainingEnv.step, cpu, torch {machine['torch']}, {machine['threads']} thread(s). {args.note}")
    print(f"{'policy':>9} {'envs':>5} {'grid':>5} {'step ms (median)':>17} {'p10-p90':>15} {'env steps/s':>12}")
    for r in rows:
        print(f"{r['policy']:>9} {r['num_envs']:>5} {r['grid']:>5} {r['step_ms_median']:>17.1f} "
              f"{r['step_ms_p10']:>7.1f}-{r['step_ms_p90']:<7.1f} {r['env_steps_per_s']:>12.0f}")
    out = Path(args.json)
    data = json.loads(out.read_text()) if out.exists() else {}
    data.update({"host_machine": machine, "host_results": rows})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2))
    print(f"wrote {out} (host rows; the surrogate rows are kept)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-envs", default="64,1024", help="comma-separated batch sizes")
    p.add_argument("--slots", default="3,10,50", help="comma-separated slot counts (3, 10, 25, 50)")
    p.add_argument("--steps", type=int, default=50, help="timed steps per setting")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default="benchmarks/results/bench_env.json", help="output JSON path")
    p.add_argument("--env", choices=("surrogate", "host"), default="surrogate")
    p.add_argument("--threads", type=int, default=1, help="torch threads (host only)")
    p.add_argument("--note", default="", help="free text stored with the host rows (e.g. machine load)")
    args = p.parse_args()
    if args.env == "host":
        if args.num_envs == "64,1024":
            args.num_envs = "16"
        if args.slots == "3,10,50":
            args.slots = "10"
        main_host(args)
        return
    rows = [bench(int(e), int(n), args.steps, args.device)
            for e in args.num_envs.split(",") for n in args.slots.split(",")]
    machine = {"platform": platform.platform(), "processor": cpu_model(),
               "torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device}
    print(f"SeedLifecycleEnv.step, random legal actions, {machine['device']}, torch {machine['torch']}, "
          f"{machine['threads']} threads")
    print(f"{'envs':>6} {'slots':>5} {'grid':>5} {'step ms (median)':>17} {'p10-p90':>15} {'env steps/s':>12}")
    for r in rows:
        print(f"{r['num_envs']:>6} {r['slots']:>5} {r['grid']:>5} {r['step_ms_median']:>17.2f} "
              f"{r['step_ms_p10']:>7.2f}-{r['step_ms_p90']:<7.2f} {r['env_steps_per_s']:>12.0f}")
    out = Path(args.json)
    data = json.loads(out.read_text()) if out.exists() else {}
    data.update({"machine": machine, "results": rows})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2))
    print(f"wrote {out} (surrogate rows; the host rows are kept)")


if __name__ == "__main__":
    main()
