"""Sim-to-real: the Slot Transformer on the real host env (HostTrainingEnv), trained two ways.

1. ``surrogate``: trained on the surrogate (SeedLifecycleEnv, 2x5, the main suite's budget) and
   evaluated zero-shot on the real host: the same keys, features and lifecycle, but every number
   is now a real measurement.
2. ``host``: the same architecture and defaults trained on the real host itself, for a budget that
   fits one benchmark run (``--host-frames``).

Each policy is evaluated deterministically on the same fixed host episodes as wait-only, random,
the heuristic and the best fixed plan (``evaluate_baselines(env="host")``); the normalized score is
0 = random, 1 = best plan. The surrogate policies are also scored on the surrogate (their home).
Every part writes its own JSON under ``<out>/runs/`` and is skipped when present, so a stopped run
resumes; ``<out>/sim_to_real.json`` and ``.md`` are rebuilt from whatever is there.

    python benchmarks/sim_to_real.py [--seeds 2] [--host-frames 40000] [--out benchmarks/results/sim_to_real]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from torchrl_slots.envs import HostConfig, LifecycleConfig
from torchrl_slots.policy import PolicyConfig, SlotPolicy
from torchrl_slots.training import EnvConfig, PPOConfig, RunOptions, evaluate_baselines, evaluate_policy, train
from torchrl_slots.training.evaluation import EvalResult, normalized_score

ROWS, COLS = 2, 5
SURROGATE_FRAMES = 100_000  # the main suite's 2x5 budget
EVAL_SEED = 1  # host episodes of benchmarks/host_baselines.py


def _write(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)


def _eval(policy: SlotPolicy, kind: str, cfg: LifecycleConfig, episodes: int, base: dict) -> dict:
    res = evaluate_policy(policy, rows=ROWS, cols=COLS, config=cfg, episodes=episodes, seed=EVAL_SEED, env=kind)
    return {**res.to_dict(), "normalized": normalized_score(res.score, base)}


def baselines(out: Path, episodes: int) -> dict:
    path = out / "runs" / "baselines.json"
    if not path.exists():
        host = evaluate_baselines(rows=ROWS, cols=COLS, config=HostConfig(), episodes=episodes, seed=EVAL_SEED,
                                  env="host")
        sur = evaluate_baselines(rows=ROWS, cols=COLS, config=LifecycleConfig(), episodes=episodes, seed=EVAL_SEED)
        _write(path, {"host": {k: v.to_dict() for k, v in host.items()},
                      "surrogate": {k: v.to_dict() for k, v in sur.items()}})
    return json.loads(path.read_text())


def _as_results(d: dict) -> dict[str, EvalResult]:
    return {k: EvalResult.from_dict(v) for k, v in d.items()}


def run_part(out: Path, kind: str, seed: int, frames: int, episodes: int, base: dict) -> dict:
    """Train on ``kind`` ("surrogate" or "host"), evaluate on the host (and the surrogate)."""
    path = out / "runs" / f"{kind}_s{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    lifecycle = HostConfig() if kind == "host" else LifecycleConfig()
    env = EnvConfig(num_envs=16, rows=ROWS, cols=COLS, lifecycle=lifecycle, env=kind)
    ppo = PPOConfig(frames_per_batch=800, total_frames=frames)
    opts = RunOptions(seed=seed, eval_interval=10 if kind == "host" else 4, eval_episodes=32 if kind == "host" else 64)
    t0 = time.perf_counter()
    res = train("transformer", env, PolicyConfig(), ppo, options=opts, log=None)
    wall = time.perf_counter() - t0
    res.policy.save(out / "runs" / f"{kind}_s{seed}.pt")
    hb, sb = _as_results(base["host"]), _as_results(base["surrogate"])
    record = {"trained_on": kind, "seed": seed, "frames": res.frames, "train_wall_s": wall,
              "eval_host": _eval(res.policy, "host", HostConfig(), episodes, hb)}
    if kind == "surrogate":
        record["eval_surrogate"] = _eval(res.policy, "surrogate", LifecycleConfig(), episodes, sb)
    record["curve"] = [{k: h[k] for k in ("frames", "eval/score", "eval/score_normalized") if k in h}
                       for h in res.history if "eval/score" in h]
    _write(path, record)
    return record


def aggregate(out: Path) -> dict:
    base = json.loads((out / "runs" / "baselines.json").read_text())
    hb = _as_results(base["host"])
    rows = {name: {"score": r.score, "score_se": r.score_se, "normalized": normalized_score(r.score, hb)}
            for name, r in hb.items()}
    groups: dict[str, list[dict]] = {}
    for f in sorted((out / "runs").glob("*_s*.json")):
        rec = json.loads(f.read_text())
        groups.setdefault(rec["trained_on"], []).append(rec)
    policies = {}
    for kind, recs in groups.items():
        norms = [r["eval_host"]["normalized"] for r in recs]
        scores = [r["eval_host"]["score"] for r in recs]
        policies[kind] = {
            "seeds": [r["seed"] for r in recs], "frames": recs[0]["frames"],
            "host_scores": scores, "host_normalized": norms,
            "host_normalized_mean": statistics.fmean(norms),
            "host_normalized_std": statistics.stdev(norms) if len(norms) > 1 else 0.0,
            "beats_heuristic": sum(s > hb["heuristic"].score for s in scores),
            "beats_wait": sum(s > hb["wait"].score for s in scores),
            "train_wall_s": [r["train_wall_s"] for r in recs],
        }
        if kind == "surrogate":
            policies[kind]["surrogate_normalized"] = [r["eval_surrogate"]["normalized"] for r in recs]
    summary = {"machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": 1},
               "grid": f"{ROWS}x{COLS}", "eval_seed": EVAL_SEED, "episodes": hb["wait"].episodes,
               "baselines": rows, "policies": policies}
    _write(out / "sim_to_real.json", summary)
    (out / "sim_to_real.md").write_text(markdown(summary))
    return summary


def markdown(s: dict) -> str:
    lines = [f"Real host (HostTrainingEnv {s['grid']}, defaults), {s['episodes']} fixed episodes (seed "
             f"{s['eval_seed']}); normalized: random 0, best fixed plan 1.", "",
             "| policy | host score | normalized |", "|---|---|---|"]
    for name, r in s["baselines"].items():
        lines.append(f"| {name} | {r['score']:.2f} ± {r['score_se']:.2f} | {r['normalized']:.2f} |")
    for kind, p in s["policies"].items():
        n = len(p["seeds"])
        scores = ", ".join(f"{x:.2f}" for x in p["host_scores"])
        lines.append(f"| transformer trained on the {kind} ({p['frames']} frames, {n} seed{'s' * (n > 1)}) | "
                     f"{scores} | {p['host_normalized_mean']:.2f} ± {p['host_normalized_std']:.2f} |")
    if "surrogate" in s["policies"]:
        sn = s["policies"]["surrogate"]["surrogate_normalized"]
        lines += ["", f"The surrogate-trained policies score {', '.join(f'{x:.2f}' for x in sn)} normalized on the "
                  "surrogate itself (its oracle = 1)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=2, help="training seeds per arm (0 .. seeds-1)")
    p.add_argument("--host-frames", type=int, default=40_000, help="training frames on the real host")
    p.add_argument("--surrogate-frames", type=int, default=SURROGATE_FRAMES, help="training frames on the surrogate")
    p.add_argument("--episodes", type=int, default=64, help="fixed evaluation episodes")
    p.add_argument("--parts", default="surrogate,host", help="which arms to run, in order")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/sim_to_real"))
    args = p.parse_args(argv)
    if args.seeds < 1 or args.host_frames < 800 or args.episodes < 2:
        raise SystemExit(f"need --seeds >= 1, --host-frames >= 800, --episodes >= 2; got {args.seeds}, "
                         f"{args.host_frames}, {args.episodes}")
    torch.set_num_threads(1)
    base = baselines(args.out, args.episodes)
    frames = {"surrogate": args.surrogate_frames, "host": args.host_frames}
    for seed in range(args.seeds):  # seed-major: a stopped run has both arms at the low seeds
        for kind in args.parts.split(","):
            run_part(args.out, kind, seed, frames[kind], args.episodes, base)
    summary = aggregate(args.out)
    print(markdown(summary))
    return summary


if __name__ == "__main__":
    main()
