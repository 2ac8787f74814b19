"""Train both architectures over seeds and compare them on the SAME evaluation episodes.

The seed plan's Phase-4 table and more. Each run is ``torchrl_slots.training.train`` (one torch
thread, ``--jobs`` runs in parallel), then a final deterministic evaluation on ``--final-episodes``
episodes with one fixed seed, scored between random (0) and oracle (1) on those same episodes.
Every finished run is written to ``<out>/runs/<name>.json``; a rerun skips finished runs, so the
suite can be stopped and continued. ``--aggregate-only`` just rebuilds the tables and the plot.

Suites:
    main         1x3 and 2x5, lstm and transformer, --seeds seeds (the cutover decision: 10 slots)
    scaffolding  2x5 with scaffolding=False, both archs, min(3, seeds) seeds
    large        5x10 with auto_advance=True and 40-epoch episodes, transformer (lstm with --large-lstm)
    zeroshot     transformer trained on 2x5 (auto_advance, 40 epochs), positional learned and fourier,
                 evaluated on 5x5 and 5x10 against the one trained on 5x10 (suite "large")

    python benchmarks/compare_training.py --suites main --seeds 5 --jobs 2
    python benchmarks/compare_training.py --aggregate-only
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from torchrl_slots.envs import LifecycleConfig
from torchrl_slots.policy import PolicyConfig
from torchrl_slots.training import EnvConfig, PPOConfig, RunOptions, evaluate_baselines, evaluate_policy, train
from torchrl_slots.training.evaluation import normalized_score

#: Per grid; the mixed run gets 400k, about the sum of its four grids' specialist budgets (80k + 3 x 100k):
#: one run that serves four grids is not starved against four runs of one grid each.
DEFAULT_FRAMES = {"1x3": 80_000, "2x5": 100_000, "5x5": 100_000, "5x10": 100_000, "2x4": 100_000, "3x6": 100_000,
                  "4x8": 100_000, "mixed": 400_000}
MIXED_GRIDS = ("1x3", "2x5", "3x6", "5x10")  # trained together in one run (suite "mixed")
UNSEEN_GRIDS = ("2x4", "4x8")  # never trained by the mixed run; specialists trained there
EVAL_SEED, FINAL_SEED = 20_000, 30_000
AUTO40 = {"auto_advance": True, "max_epochs": 40}
SMALL = {"embed_dim": 16, "num_heads": 2, "num_layers": 1, "ffn_dim": 32, "feature_dim": 16, "lstm_hidden": 16,
         "key_dim": 8}


def grid(text: str) -> tuple[int, int]:
    rows, cols = (int(x) for x in text.split("x"))
    return rows, cols


def parse_overrides(text: str) -> tuple[dict, dict]:
    """``"ppo.op_floor=0.2,policy.positional=fourier"`` -> ``({"op_floor": 0.2}, {"positional": "fourier"})``
    (values: int, float, true/false, none, else string)."""
    ppo, pol = {}, {}
    for item in filter(None, text.split(",")):
        key, _, raw = item.partition("=")
        where, _, name = key.partition(".")
        if where not in ("ppo", "policy") or not name or not raw:
            raise SystemExit(f"--set takes ppo.FIELD=VALUE or policy.FIELD=VALUE items, got {item!r}")
        low = raw.lower()
        value = {"true": True, "false": False, "none": None}.get(low, raw)
        if value is raw:
            for cast in (int, float):
                try:
                    value = cast(raw)
                    break
                except ValueError:
                    pass
        (ppo if where == "ppo" else pol)[name] = value
    return ppo, pol


def make_specs(args: argparse.Namespace) -> list[dict]:
    seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    few = seeds[: min(3, len(seeds))]
    frames = {**DEFAULT_FRAMES, **dict(kv.split("=") for kv in args.frames.split(",") if kv)}
    specs = []

    set_ppo, set_policy = parse_overrides(args.set)

    def add(suite, arch, g, seed, lifecycle=None, policy=None, zero_shot=(), grids=None):
        policy = {**set_policy, **(policy or {})}
        pol = {**(SMALL if args.small_policy else {}), **policy}
        tag = "".join(f"_{k}-{v}" for k, v in sorted((lifecycle or {}).items())) + "".join(
            f"_{k}-{v}" for k, v in sorted(policy.items())) + "".join(
            f"_ppo.{k}-{v}" for k, v in sorted(set_ppo.items()))
        specs.append({"name": f"{suite}_{arch}_{g}{tag}_s{seed}", "suite": suite, "arch": arch, "grid": g,
                      "seed": seed, "lifecycle": lifecycle or {}, "policy": pol, "ppo": dict(set_ppo),
                      "frames": int(frames[g]),
                      "zero_shot": list(zero_shot), "grids": list(grids) if grids else None,
                      "num_envs": args.num_envs,
                      "frames_per_batch": args.frames_per_batch, "eval_episodes": args.eval_episodes,
                      "final_episodes": args.final_episodes, "eval_interval": args.eval_interval})

    suites = args.suites.split(",")
    archs = args.archs.split(",")
    known = {"main", "scaffolding", "large", "zeroshot", "mixed", "specialists"}
    unknown = set(suites) - known
    if unknown:
        raise SystemExit(f"unknown suites {sorted(unknown)}; known: {sorted(known)}")
    for suite in suites:  # in the order given: a stopped run has the first suites complete
        if suite == "main":
            for g in args.grids.split(","):  # seed-major: every arch at the low seeds first
                for s in seeds:
                    for arch in archs:
                        add("main", arch, g, s)
        elif suite == "scaffolding":
            for s in seeds:
                for arch in archs:
                    add("scaffolding", arch, "2x5", s, {"scaffolding": False})
        elif suite == "large":
            for s in seeds:
                # the transformer always (when --archs names it), the LSTM with --large-lstm
                for arch in [a for a in ("transformer", "lstm") if a in archs and (a != "lstm" or args.large_lstm)]:
                    add("large", arch, "5x10", s, AUTO40)
        elif suite == "mixed":  # one transformer on every grid of MIXED_GRIDS at once
            for s in few:
                # fourier is PolicyConfig's default now; named here so that the run keeps the name of
                # the runs made while "learned" was (a learned row/col table means nothing across grids)
                add("mixed", "transformer", "mixed", s, policy={"positional": "fourier"},
                    zero_shot=MIXED_GRIDS + UNSEEN_GRIDS, grids=MIXED_GRIDS)
        elif suite == "specialists":  # transformers trained on one grid each (1x3 and 2x5: suite main)
            for s in few:
                for g in ("3x6", "5x10") + UNSEEN_GRIDS:
                    add("specialists", "transformer", g, s)
        else:
            for s in few:
                for pos in ("learned", "fourier"):
                    add("zeroshot", "transformer", "2x5", s, AUTO40, {"positional": pos},
                        zero_shot=("5x5", "5x10"))
    return specs


def ppo_kwargs(spec: dict) -> dict:
    """PPOConfig arguments of a spec; ``"entropy_coeff.HEAD": c`` items set one head's coefficient
    (the others keep PPOConfig's default for the spec's env), and ``"entropy_coeff_end.HEAD": c``
    one head's coefficient at the end of the run (the others stay constant).

    Examples:
        >>> ppo_kwargs({"frames_per_batch": 800, "frames": 1600, "ppo": {"entropy_coeff.op": 0.2}})["entropy_coeff"]["op"]
        0.2
        >>> end = ppo_kwargs({"frames_per_batch": 800, "frames": 1600, "ppo": {"entropy_coeff_end.op": 0.05}})
        >>> end["entropy_coeff_end"]["op"], end["entropy_coeff_end"]["slot"], "entropy_coeff" in end
        (0.05, 0.05, False)
    """
    kw = {"frames_per_batch": spec["frames_per_batch"], "total_frames": spec["frames"]}
    per_head: dict[str, dict[str, float]] = {"entropy_coeff": {}, "entropy_coeff_end": {}}
    for key, value in spec.get("ppo", {}).items():
        field, _, head = key.partition(".")
        if head and field in per_head:
            per_head[field][head] = value
        else:
            kw[key] = value
    # The other heads keep the default of this spec's env (at the start: the schedule's end
    # moves only the heads it names).
    auto = bool(spec.get("lifecycle", {}).get("auto_advance", False))
    if per_head["entropy_coeff"]:
        kw["entropy_coeff"] = {**PPOConfig(**kw).entropy_coeffs(auto), **per_head["entropy_coeff"]}
    if per_head["entropy_coeff_end"]:
        kw["entropy_coeff_end"] = {**PPOConfig(**kw).entropy_coeffs(auto), **per_head["entropy_coeff_end"]}
    return kw


def run_one(spec: dict, out_dir: str) -> dict:
    """Train one run, evaluate it (and zero-shot grids), write ``runs/<name>.json``."""
    torch.set_num_threads(1)
    lifecycle = LifecycleConfig(**spec["lifecycle"])
    if spec.get("grids"):  # evaluated during training on the largest grid
        grids = tuple(grid(g) for g in spec["grids"])
        rows, cols = max(grids, key=lambda rc: rc[0] * rc[1])
        env = EnvConfig(num_envs=spec["num_envs"], rows=rows, cols=cols, lifecycle=lifecycle, grids=grids)
    else:
        rows, cols = grid(spec["grid"])
        env = EnvConfig(num_envs=spec["num_envs"], rows=rows, cols=cols, lifecycle=lifecycle)
    ppo = PPOConfig(**ppo_kwargs(spec))
    opts = RunOptions(seed=spec["seed"], eval_interval=spec["eval_interval"], eval_episodes=spec["eval_episodes"],
                      eval_seed=EVAL_SEED)
    t0 = time.perf_counter()
    res = train(spec["arch"], env, PolicyConfig(**spec["policy"]), ppo, options=opts, log=None)
    wall = time.perf_counter() - t0
    evals = {}
    for g in dict.fromkeys([*([] if spec.get("grids") else [spec["grid"]]), *spec["zero_shot"]]):
        r, c = grid(g)
        base = evaluate_baselines(rows=r, cols=c, config=lifecycle, episodes=spec["final_episodes"], seed=FINAL_SEED)
        pol = evaluate_policy(res.policy, rows=r, cols=c, config=lifecycle, episodes=spec["final_episodes"],
                              seed=FINAL_SEED)
        evals[g] = {"policy": pol.to_dict(), "normalized": normalized_score(pol.score, base),
                    "baselines": {k: v.to_dict() for k, v in base.items()}}
    curve = [{"frames": h["frames"], "score": h["eval/score"], "normalized": h["eval/score_normalized"],
              "return": h["eval/return"]} for h in res.history if "eval/score" in h]
    record = {**spec, "train_wall_s": wall, "frames_done": res.frames, "evals": evals, "curve": curve,
              "parameters": sum(p.numel() for p in res.policy.parameters()), "machine": run_machine()}
    path = Path(out_dir) / "runs" / f"{spec['name']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)
    return record


def run_machine() -> dict:
    """Where a run's wall time was measured: CPU model, platform string and the kernel's boot id.

    Two runs share a machine (and their wall times may be compared) only when all three agree:
    the boot id changes with every boot, so runs of two sessions on look-alike VMs do not compare.
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = "unknown"
    return {"cpu": _cpu_model(), "platform": platform.platform(), "boot_id": boot,
            "torch_threads": torch.get_num_threads()}


def machine_key(run: dict) -> tuple[str, str, str] | None:
    """The run's machine as a comparable key; ``None`` for a run that recorded none (made before
    runs recorded it) or whose boot id is unknown."""
    m = run.get("machine")
    if not m or m.get("boot_id", "unknown") == "unknown":
        return None
    return (m["cpu"], m["platform"], m["boot_id"])


def wall_ratio(transformer: list[dict], lstm: list[dict]) -> tuple[float | None, str]:
    """Mean wall per frame of the transformer runs over the LSTM runs, when every run was timed on
    ONE machine (``machine_key``); otherwise ``None`` and why: a ratio across machines measures
    the machines, not the architectures."""
    if not transformer or not lstm:
        return None, "no runs"
    keys = [machine_key(r) for r in transformer + lstm]
    if None in keys:
        return None, f"{keys.count(None)} of {len(keys)} runs record no machine"
    if len(set(keys)) > 1:
        cpus = sorted({k[0] for k in keys})
        return None, f"runs timed on {len(set(keys))} machines/boots ({'; '.join(cpus)})"
    wt = [r["train_wall_s"] / r["frames_done"] for r in transformer]
    wl = [r["train_wall_s"] / r["frames_done"] for r in lstm]
    return statistics.fmean(wt) / statistics.fmean(wl), f"one machine: {keys[0][0]}"


def _worker(item):
    spec, out_dir = item
    t0 = time.perf_counter()
    try:
        run_one(spec, out_dir)
        return spec["name"], None, time.perf_counter() - t0
    except Exception as err:  # a failed run is reported, the others go on
        return spec["name"], f"{type(err).__name__}: {err}", time.perf_counter() - t0


def run_all(specs: list[dict], out_dir: Path, jobs: int) -> None:
    todo = [s for s in specs if not (out_dir / "runs" / f"{s['name']}.json").exists()]
    print(f"{len(specs)} runs, {len(specs) - len(todo)} already done, {len(todo)} to run with {jobs} jobs", flush=True)
    if not todo:
        return
    items = [(s, str(out_dir)) for s in todo]
    if jobs == 1:
        results = map(_worker, items)
    else:
        pool = mp.get_context("spawn").Pool(jobs, maxtasksperchild=1)
        results = pool.imap_unordered(_worker, items)
    for name, err, secs in results:
        print(f"  {'FAILED' if err else 'done'} {name} ({secs:.0f} s){': ' + err if err else ''}", flush=True)


# ---------------------------------------------------------------------- aggregation
def _stats(xs: list[float]) -> dict[str, float]:
    xs = [x for x in xs if math.isfinite(x)]
    n = len(xs)
    if n == 0:
        return {"n": 0, "mean": float("nan"), "std": float("nan"), "ci95": float("nan")}
    mean = statistics.fmean(xs)
    std = statistics.stdev(xs) if n > 1 else 0.0
    t = _t_quantile(n - 1) if n > 1 else float("nan")
    return {"n": n, "mean": mean, "std": std, "ci95": t * std / math.sqrt(n) if n > 1 else float("nan")}


def _t_quantile(dof: int) -> float:
    try:
        from scipy import stats

        return float(stats.t.ppf(0.975, dof))
    except ImportError:
        return 1.96


def welch(a: list[float], b: list[float]) -> dict[str, float]:
    """Welch's t-test of mean(a) > mean(b), two-sided p (scipy)."""
    if len(a) < 2 or len(b) < 2:
        return {"t": float("nan"), "p": float("nan")}
    from scipy import stats

    t, p = stats.ttest_ind(a, b, equal_var=False)
    return {"t": float(t), "p": float(p)}


LEARNED = 0.5  # a run "learns" when its final normalized score is at least this


def _main_grid(run: dict) -> str:
    """The grid a run's headline number is on: its own, or the largest grid of a mixed run."""
    if run.get("grids"):
        return max(run["grids"], key=lambda g: grid(g)[0] * grid(g)[1])
    return run["grid"]


def _first_frames(curve: list[dict], level: float) -> float:
    """Frames of the first training evaluation at or above ``level`` (inf if never)."""
    return next((c["frames"] for c in curve if c["normalized"] >= level), float("inf"))


def _median_or_none(xs: list[float]) -> float | None:
    m = statistics.median(xs) if xs else float("inf")
    return m if math.isfinite(m) else None


def _curve_at(curve: list[dict], frames: float, key: str) -> float:
    best = [c for c in curve if c["frames"] <= frames]
    return best[-1][key] if best else float("nan")


def aggregate(out_dir: Path) -> dict:
    runs = [json.loads(p.read_text()) for p in sorted((out_dir / "runs").glob("*.json"))]
    groups: dict[str, list[dict]] = {}
    for r in runs:
        key = r["name"].rsplit("_s", 1)[0]
        groups.setdefault(key, []).append(r)
    table = []
    for key, rs in sorted(groups.items()):
        g = _main_grid(rs[0])
        base = rs[0]["evals"][g]["baselines"]
        row = {"group": key, "suite": rs[0]["suite"], "arch": rs[0]["arch"], "grid": g,
               "lifecycle": rs[0]["lifecycle"], "policy": rs[0]["policy"], "frames": rs[0]["frames"],
               "seeds": sorted(r["seed"] for r in rs),
               "normalized": _stats([r["evals"][g]["normalized"] for r in rs]),
               "per_seed": {r["seed"]: r["evals"][g]["normalized"] for r in rs},
               "learned": sum(r["evals"][g]["normalized"] >= LEARNED for r in rs),
               "frames_to_0.8": _median_or_none([_first_frames(r["curve"], 0.8) for r in rs]),
               "wall_s_per_kframe": _stats([1000 * r["train_wall_s"] / r["frames_done"] for r in rs]),
               "score": _stats([r["evals"][g]["policy"]["score"] for r in rs]),
               "return": _stats([r["evals"][g]["policy"]["return"] for r in rs]),
               "normalized_at_12500_frames": _stats([_curve_at(r["curve"], 12_800, "normalized") for r in rs]),
               "train_wall_s": _stats([r["train_wall_s"] for r in rs]),
               "parameters": rs[0]["parameters"],
               "baselines": {k: v["score"] for k, v in base.items()},
               "baseline_returns": {k: v["return"] for k, v in base.items()}}
        zs = {}
        for zg in rs[0]["zero_shot"]:
            zs[zg] = {"normalized": _stats([r["evals"][zg]["normalized"] for r in rs]),
                      "score": _stats([r["evals"][zg]["policy"]["score"] for r in rs]),
                      "baselines": {k: v["score"] for k, v in rs[0]["evals"][zg]["baselines"].items()}}
        if zs:
            row["zero_shot"] = zs
        table.append(row)
    tests = {}
    for g in ("1x3", "2x5"):
        tr = [r["evals"][g]["normalized"] for r in groups.get(f"main_transformer_{g}", [])]
        ls = [r["evals"][g]["normalized"] for r in groups.get(f"main_lstm_{g}", [])]
        tests[g] = {"transformer_minus_lstm": (statistics.fmean(tr) - statistics.fmean(ls)) if tr and ls else None,
                    **welch(tr, ls), "n_transformer": len(tr), "n_lstm": len(ls)}
    summary = {"benchmark": "compare_training", "machine": _machine(), "table": table, "welch": tests,
               "criteria": criteria(groups), "eval_seed": EVAL_SEED, "final_seed": FINAL_SEED, "runs": len(runs)}
    (out_dir / "compare_training.json").write_text(json.dumps(summary, indent=1))
    (out_dir / "compare_training.md").write_text(markdown(summary))
    try:
        plot_curves(groups, out_dir / "learning_curves.png")
    except ImportError as err:
        print(f"learning_curves.png skipped: {err}")
    return summary


def _norms(groups: dict[str, list[dict]], key: str, g: str | None = None) -> list[float]:
    return [r["evals"][g or _main_grid(r)]["normalized"] for r in groups.get(key, [])]


def _mean(xs: list[float]) -> float:
    return statistics.fmean(xs) if xs else float("nan")


def criteria(groups: dict[str, list[dict]]) -> list[dict]:
    """The learning targets, each ``{"name", "result", "met"}`` (``met`` None = not run)."""
    out = []

    def add(name, result, met):
        out.append({"name": name, "result": result, "met": met})

    auto = "_auto_advance-True_max_epochs-40"
    for g, need in (("1x3", 10), ("2x5", 9)):
        for arch in ("lstm", "transformer"):
            xs = _norms(groups, f"main_{arch}_{g}")
            n_ok = sum(x >= LEARNED for x in xs)
            failed = len(xs) - n_ok
            met = False if failed > 10 - need else (n_ok >= need if len(xs) >= 10 else None)
            note = "" if len(xs) >= 10 else " (10 seeds needed)"
            add(f"1. no collapse: {arch} learns on {g} in >= {need} of 10 seeds", f"{n_ok} of {len(xs)}{note}", met)
    tr, ls = _norms(groups, "main_transformer_1x3"), _norms(groups, "main_lstm_1x3")
    add("2. 1x3: transformer mean >= 0.9 x LSTM mean", f"{_mean(tr):.2f} vs {_mean(ls):.2f} (n = {len(tr)}, {len(ls)})",
        _mean(tr) >= 0.9 * _mean(ls) if tr and ls else None)
    tr, ls = _norms(groups, "main_transformer_2x5"), _norms(groups, "main_lstm_2x5")
    add("3. 2x5: transformer mean >= LSTM mean, both >= 0.85",
        f"{_mean(tr):.2f} vs {_mean(ls):.2f} (n = {len(tr)}, {len(ls)}), Welch p = {welch(tr, ls)['p']:.3g}",
        (_mean(tr) >= _mean(ls) and min(_mean(tr), _mean(ls)) >= 0.85) if tr and ls else None)
    tr, ls = _norms(groups, f"large_transformer_5x10{auto}"), _norms(groups, f"large_lstm_5x10{auto}")
    w = welch(tr, ls)
    add("4. 5x10 (auto_advance, 40 epochs): transformer beats LSTM, Welch p < 0.05",
        f"{_mean(tr):.2f} vs {_mean(ls):.2f} (n = {len(tr)}, {len(ls)}), p = {w['p']:.3g}",
        (_mean(tr) > _mean(ls) and w["p"] < 0.05) if len(tr) > 1 and len(ls) > 1 else None)
    off_t = _norms(groups, "scaffolding_transformer_2x5_scaffolding-False")
    off_l = _norms(groups, "scaffolding_lstm_2x5_scaffolding-False")
    on_t = _norms(groups, "main_transformer_2x5")
    add("5. 2x5 scaffolding off: transformer >= 0.9 x its scaffolding-on score and > LSTM off",
        f"{_mean(off_t):.2f} vs on {_mean(on_t):.2f}; LSTM off {_mean(off_l):.2f} (n = {len(off_t)}, {len(off_l)})",
        (_mean(off_t) >= 0.9 * _mean(on_t) and _mean(off_t) > _mean(off_l)) if off_t and off_l and on_t else None)
    mixed = groups.get("mixed_transformer_mixed_positional-fourier", [])
    for g in MIXED_GRIDS + UNSEEN_GRIDS:
        spec_key = f"main_transformer_{g}" if g in ("1x3", "2x5") else f"specialists_transformer_{g}"
        m, sp = [r["evals"][g]["normalized"] for r in mixed if g in r["evals"]], _norms(groups, spec_key, g)
        seen = "trained" if g in MIXED_GRIDS else "never seen"
        add(f"6. one policy for every grid: mixed run on {g} ({seen}) >= 0.8 x specialist",
            f"{_mean(m):.2f} vs {_mean(sp):.2f} (n = {len(m)}, {len(sp)})",
            _mean(m) >= 0.8 * _mean(sp) if m and sp else None)
    ft = [_first_frames(r["curve"], 0.8) for r in groups.get("main_transformer_2x5", [])]
    fl = [_first_frames(r["curve"], 0.8) for r in groups.get("main_lstm_2x5", [])]
    name7 = "7. 2x5: frames to 0.8 (median over seeds) transformer <= LSTM, wall per frame <= 1.6x"
    if ft and fl:
        mt, ml = statistics.median(ft), statistics.median(fl)
        ratio, why = wall_ratio(groups.get("main_transformer_2x5", []), groups.get("main_lstm_2x5", []))
        if ratio is None:  # a frames pass alone is no verdict (both halves must hold); a frames miss is a miss
            add(name7, f"{mt:.0f} vs {ml:.0f} frames; wall per frame not comparable: {why}",
                False if mt > ml else None)
        else:
            add(name7, f"{mt:.0f} vs {ml:.0f} frames; wall per frame {ratio:.2f}x ({why})",
                mt <= ml and ratio <= 1.6)
    else:
        add(name7, "-", None)
    return out


def _fmt(s: dict) -> str:
    if s["n"] == 0:
        return "-"
    ci = f" [±{s['ci95']:.2f}]" if math.isfinite(s["ci95"]) else ""
    return f"{s['mean']:.2f} ± {s['std']:.2f}{ci}"


def markdown(summary: dict) -> str:
    out = ["| group | frames | seeds | normalized score (mean ± std [95% CI]) | score | shaped return | "
           "normalized at 12.5k frames (~500 episodes) | train wall s | wait / random / heuristic / oracle score |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in summary["table"]:
        b = r["baselines"]
        out.append(f"| {r['group']} | {r['frames']} | {len(r['seeds'])} | {_fmt(r['normalized'])} | {_fmt(r['score'])} | "
                   f"{_fmt(r['return'])} | {_fmt(r['normalized_at_12500_frames'])} | {r['train_wall_s']['mean']:.0f} | "
                   f"{b['wait']:.2f} / {b['random']:.2f} / {b['heuristic']:.2f} / {b['oracle']:.2f} |")
    zs = [r for r in summary["table"] if "zero_shot" in r]
    if zs:
        out += ["", "Zero-shot (trained on the group's grid, evaluated on another; normalized score):", "",
                "| group | grid | normalized | score | heuristic normalized |", "|---|---|---|---|---|"]
        for r in zs:
            for g, z in r["zero_shot"].items():
                b = z["baselines"]
                h = (b["heuristic"] - b["random"]) / (b["oracle"] - b["random"])
                out.append(f"| {r['group']} | {g} | {_fmt(z['normalized'])} | {_fmt(z['score'])} | {h:.2f} |")
    out += ["", "Targets:", "", "| target | result | met? |", "|---|---|---|"]
    for c in summary.get("criteria", []):
        met = {True: "yes", False: "**no**", None: "no verdict" if "not comparable" in c["result"] else
               "not run" if c["result"].startswith(("-", "nan")) or
               "(n = 0" in c["result"] else "open (too few runs)"}[c["met"]]
        out.append(f"| {c['name']} | {c['result']} | {met} |")
    out += ["", "Welch t-test, transformer vs lstm normalized score (main suite):", ""]
    for g, t in summary["welch"].items():
        out.append(f"- {g}: difference {t['transformer_minus_lstm']}, t = {t['t']:.3g}, p = {t['p']:.3g} "
                   f"(n = {t['n_transformer']} vs {t['n_lstm']})")
    return "\n".join(out) + "\n"


def plot_curves(groups: dict[str, list[dict]], path: Path) -> None:
    from torchrl_slots.plotting import _pyplot

    plt = _pyplot()
    keys = sorted(groups)
    fig, ax = plt.subplots(1, 1, figsize=(9, 5))
    for i, key in enumerate(keys):
        rs = groups[key]
        frames = sorted({c["frames"] for r in rs for c in r["curve"]})
        vals = [[_curve_at(r["curve"], f, "normalized") for r in rs] for f in frames]
        mean = [statistics.fmean(v) for v in vals]
        std = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in vals]
        ax.plot(frames, mean, color=f"C{i % 10}", label=f"{key} (n={len(rs)})")
        ax.fill_between(frames, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                        color=f"C{i % 10}", alpha=0.15)
    ax.axhline(0.0, color="k", lw=0.5)
    ax.axhline(1.0, color="k", lw=0.5, ls="--")
    ax.set_xlabel("frames")
    ax.set_ylabel("eval score, normalized (random 0, oracle 1)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cpu_model() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine() or "unknown"


def _machine() -> dict:
    cpu = _cpu_model()
    import tensordict
    import torchrl

    return {"cpu": cpu, "cores": mp.cpu_count(), "torch": torch.__version__, "torchrl": torchrl.__version__,
            "tensordict": tensordict.__version__, "python": platform.python_version(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def build_parser() -> argparse.ArgumentParser:
    """The command line of this script."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suites", default="main", help="comma-separated: main,scaffolding,large,zeroshot")
    p.add_argument("--archs", default="lstm,transformer",
                   help="architectures of the main, scaffolding and large suites (large: the lstm only with --large-lstm)")
    p.add_argument("--grids", default="2x5,1x3", help="grids of the main suite (in run order)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per group (3 at most for the other suites)")
    p.add_argument("--seed-start", type=int, default=0, help="first seed (seeds are seed-start .. seed-start+seeds-1)")
    p.add_argument("--set", default="", help="overrides for every run: ppo.FIELD=VALUE,policy.FIELD=VALUE,... "
                   "(part of the run names, so an ablation sits beside the defaults)")
    p.add_argument("--frames", default="", help="budget overrides, e.g. 1x3=60000,2x5=100000")
    p.add_argument("--num-envs", type=int, default=16, help="parallel envs per run")
    p.add_argument("--frames-per-batch", type=int, default=800, help="frames per PPO batch")
    p.add_argument("--eval-interval", type=int, default=4, help="batches between evaluations (the curves)")
    p.add_argument("--eval-episodes", type=int, default=64, help="episodes per evaluation during training")
    p.add_argument("--final-episodes", type=int, default=256, help="episodes of the final evaluation")
    p.add_argument("--large-lstm", action="store_true", help="also train the flat LSTM in the large suite")
    p.add_argument("--small-policy", action="store_true", help="tiny policy widths (for tests)")
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (one torch thread each)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/compare_training"), help="results folder")
    p.add_argument("--aggregate-only", action="store_true", help="only rebuild tables/plot from finished runs")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    if not args.aggregate_only:
        specs = make_specs(args)
        args.out.mkdir(parents=True, exist_ok=True)
        log = args.out / "invocations.json"  # every invocation of this results folder, appended
        past = json.loads(log.read_text()) if log.exists() else []
        past.append({"argv": sys.argv[1:] if argv is None else argv, "specs": [s["name"] for s in specs],
                     "date": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        log.write_text(json.dumps(past, indent=1))
        run_all(specs, args.out, args.jobs)
    summary = aggregate(args.out)
    print(markdown(summary))
    return summary


if __name__ == "__main__":
    main()
