"""Training wall time per frame, side by side: the flat LSTM against the Slot Transformer.

Issue 12's criterion 7 asks for the transformer's wall-clock per frame to be at most 1.6x the
LSTM's. ``compare_training.py`` can only divide its runs' wall times when every run was timed on
one machine and boot; this script measures the ratio directly, in one process: each round trains
every arm once for ``--frames`` frames (``train()`` with the default ``PolicyConfig`` and
``PPOConfig`` on a 2x5 grid, 16 envs, one torch thread, no evaluation during training), arms
interleaved (A B A B ...) so that a slow phase of a noisy VM hits both. Reported per arm: the
median over rounds of ms per frame (collection + update, the parts that scale with frames; set-up
excluded) and its split; then the median of the per-round ratios to the first arm.

Each invocation appends one entry (machine, date, arguments, rows) to the JSON file (default
``benchmarks/results/bench_train.json``); earlier entries are kept.

    python benchmarks/bench_train.py [--rounds 5] [--frames 8000] [--grid 2x5] \
        [--arms lstm,transformer,transformer:autocast=bf16] [--json PATH]
    python benchmarks/bench_train.py --arm lstm --arm transformer:num_layers=1,ffn_dim=128

An arm is ``arch`` or ``arch:field=value,...`` with ``PolicyConfig`` overrides (values parsed
as JSON, else strings); a field written ``ppo.FIELD`` goes to ``PPOConfig`` instead
(``lstm:ppo.epochs=2``). ``--arms`` splits on commas, so each of its arms takes one override;
repeat ``--arm`` for arms with several (it replaces ``--arms``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

import torch

import torchrl_slots
from torchrl_slots.policy import PolicyConfig
from torchrl_slots.training import EnvConfig, PPOConfig, RunOptions, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_training import run_machine  # noqa: E402  (a sibling script of this folder)

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "bench_train.json"


def parse_arm(text: str) -> tuple[str, dict]:
    """``"transformer:autocast=bf16"`` -> ``("transformer", {"autocast": "bf16"})``; ``ppo.`` fields
    keep their prefix (``time_arm`` sends them to ``PPOConfig``)."""
    arch, _, rest = text.partition(":")
    overrides = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"arm {text!r}: expected field=value after ':', got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return arch, overrides


def time_arm(arch: str, overrides: dict, rows: int, cols: int, frames: int, seed: int) -> dict:
    """Train one arm for ``frames`` frames; ms per frame of collection, update and both."""
    env = EnvConfig(num_envs=16, rows=rows, cols=cols)
    ppo_kw = {k.removeprefix("ppo."): v for k, v in overrides.items() if k.startswith("ppo.")}
    overrides = {k: v for k, v in overrides.items() if not k.startswith("ppo.")}
    ppo = PPOConfig(frames_per_batch=800, total_frames=frames, **ppo_kw)
    opts = RunOptions(seed=seed, eval_interval=10 * frames, eval_episodes=4)
    t0 = time.perf_counter()
    res = train(arch, env, PolicyConfig(**overrides), ppo, options=opts, log=None)
    wall = time.perf_counter() - t0
    hist = [h for h in res.history if "time/collect_s" in h]
    collect = sum(h["time/collect_s"] for h in hist)
    update = sum(h["time/update_s"] for h in hist)
    return {"frames": res.frames, "wall_s": wall, "collect_ms_per_frame": 1e3 * collect / res.frames,
            "update_ms_per_frame": 1e3 * update / res.frames,
            "ms_per_frame": 1e3 * (collect + update) / res.frames}


def bench(arms: list[str], rounds: int, frames: int, rows: int, cols: int) -> list[dict]:
    """Interleaved rounds; one summary row per arm (the first arm is the ratios' denominator)."""
    parsed = [parse_arm(a) for a in arms]
    times: dict[str, list[dict]] = {a: [] for a in arms}
    for r in range(rounds):
        for name, (arch, overrides) in zip(arms, parsed):
            times[name].append(time_arm(arch, overrides, rows, cols, frames, seed=r))
    base = [t["ms_per_frame"] for t in times[arms[0]]]
    out = []
    for name in arms:
        ms = [t["ms_per_frame"] for t in times[name]]
        ratios = [m / b for m, b in zip(ms, base)]
        out.append({"arm": name, "ms_per_frame_median": statistics.median(ms),
                    "collect_ms_per_frame_median": statistics.median(t["collect_ms_per_frame"] for t in times[name]),
                    "update_ms_per_frame_median": statistics.median(t["update_ms_per_frame"] for t in times[name]),
                    f"ratio_to_{arms[0]}_median": statistics.median(ratios),
                    f"ratio_to_{arms[0]}_min": min(ratios), f"ratio_to_{arms[0]}_max": max(ratios),
                    "rounds": times[name]})
    return out


def markdown(rows: list[dict], machine: dict) -> str:
    base = rows[0]["arm"]
    lines = [f"machine: {machine['cpu']}, {machine['torch_threads']} torch thread(s)", "",
             f"| arm | ms/frame (median) | collect | update | ratio to {base} (median [min, max] over rounds) |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['arm']} | {r['ms_per_frame_median']:.3f} | {r['collect_ms_per_frame_median']:.3f} | "
                     f"{r['update_ms_per_frame_median']:.3f} | {r[f'ratio_to_{base}_median']:.2f} "
                     f"[{r[f'ratio_to_{base}_min']:.2f}, {r[f'ratio_to_{base}_max']:.2f}] |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arms", default="lstm,transformer")
    ap.add_argument("--arm", action="append", default=None,
                    help="one arm, arch[:field=value,...]; repeat it; replaces --arms")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--frames", type=int, default=8000)
    ap.add_argument("--grid", default="2x5")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--label", default="", help="stored with the entry (e.g. which checkout ran)")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.frames < 800:
        ap.error(f"--rounds must be >= 1 and --frames >= 800 (one batch); got {args.rounds}, {args.frames}")
    rows_, _, cols_ = args.grid.partition("x")
    torch.set_num_threads(args.threads)
    arms = args.arm if args.arm else args.arms.split(",")
    rows = bench(arms, args.rounds, args.frames, int(rows_), int(cols_))
    machine = run_machine()
    entry = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "machine": machine, "args": {**vars(args), "json": str(args.json)},
             "library": str(Path(torchrl_slots.__file__).resolve().parent), "rows": rows}
    history = json.loads(args.json.read_text()) if args.json.exists() else []
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(".tmp")
    tmp.write_text(json.dumps([*history, entry], indent=1))
    tmp.replace(args.json)
    print(markdown(rows, machine))
    return entry


if __name__ == "__main__":
    main()
