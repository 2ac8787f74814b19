"""Architecture benchmark: the full actor-critic in training mode, as PPO runs it.

For each slot count N in ``--slots`` (grids 1x3, 2x5, 5x5, 5x10) and each row (``--archs``, each
``--variant`` of the transformer, and with ``--reference`` a naive ``nn.TransformerEncoder`` slot
transformer), the script

1. rolls the policy itself out (``TransformedEnv(env, Compose(*policy.transforms()))``, no_grad)
   for ``--seq-len`` T steps in ``--batch-size`` B envs, and adds ``"advantage"`` and
   ``"value_target"`` with torchrl's ``GAE(gamma=0.99, lmbda=0.95, deactivate_vmap=True,
   value_network=policy.value_network)`` (no_grad, recurrent mode);
2. times ``ClipPPOLoss(policy.actor, policy.critic)`` forward on the ``[B, T]`` batch and the
   backward of the summed ``loss_*`` terms (warm-up, then ``--iterations`` timed calls: median,
   IQR, min/max), and measures the extra memory of one forward+backward (CUDA: peak allocated
   minus allocated before; CPU: bytes of the tensors autograd saves for backward, see
   ``MEMORY_METHOD``);
3. times one collection step (``policy.actor`` under no_grad on ``--inference-envs`` envs) eager
   and with ``policy.compile(fullgraph=True)``, whose first call is ``compile_time_s`` (if dynamo
   refuses the full graph, the error is recorded and ``fullgraph=False`` is timed instead).

Ratios against the LSTM row of the same N (and speed-ups of every row against the reference row)
are added. Prints a table, writes JSON and a Markdown table (regenerated on every run): the JSON to
``--json`` (default ``benchmarks/results/benchmark_architectures_<device>.json``), the Markdown to
``--markdown``, or when only ``--json`` is given next to the JSON (same name, ``.md``), so a run
with ``--json X`` leaves the committed Markdown alone.

The parts: ``arch_measure.py`` (the timings and memory), ``arch_reference.py`` (the naive
reference row), ``arch_report.py`` (machine info, table, Markdown).

    python benchmarks/benchmark_architectures.py [--archs lstm,transformer] [--slots 3,10,25,50]
        [--batch-size 32] [--seq-len 64] [--iterations 10] [--warmup 2] [--device cpu|cuda] [--threads K]
        [--variant NAME:field=value,...]... [--enabled-slots K] [--reference] [--no-compile]
        [--json PATH] [--markdown PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tensordict import TensorDictBase
from torchrl.envs import Compose, EnvBase, TransformedEnv
from torchrl.modules import set_recurrent_mode
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import GAE

from torchrl_slots.envs import LifecycleConfig, SeedLifecycleEnv
from torchrl_slots.policy import PolicyConfig, SlotPolicy, create_policy, registered_policies

# The parts live beside this script; put its folder on the path also when it is loaded by file path (the tests).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from arch_measure import (MEMORY_METHOD, Settings, _stats, measure_inference, measure_memory_mb,  # noqa: E402
                          time_loss, time_trunk)
from arch_reference import register_reference  # noqa: E402
from arch_report import machine_info, markdown, print_table  # noqa: E402

GRIDS = {3: (1, 3), 10: (2, 5), 25: (5, 5), 50: (5, 10)}
TIMINGS = ("forward_time_ms", "backward_time_ms", "fwd_bwd_time_ms", "trunk_fwd_bwd_ms", "inference_ms",
           "inference_compiled_ms")
ADVANTAGE_METHOD = ("torchrl GAE(gamma=0.99, lmbda=0.95, deactivate_vmap=True, value_network=policy.value_network) "
                    "on the rollout, under no_grad and set_recurrent_mode(True)")


# ---------------------------------------------------------------------- rows and their settings
@dataclass
class RowSpec:
    """One benchmark row: a registered arch, optionally with PolicyConfig overrides."""

    name: str
    arch: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def config(self) -> PolicyConfig:
        """``PolicyConfig`` defaults updated with the overrides (unknown fields raise ValueError)."""
        return PolicyConfig.from_dict({**asdict(PolicyConfig()), **self.overrides})


def parse_value(text: str) -> Any:
    """``"32" -> 32``, ``"0.5" -> 0.5``, ``"true" -> True``, ``"none" -> None``, else the string."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    lowered = text.lower()
    return {"true": True, "false": False, "none": None, "null": None}.get(lowered, text)


def parse_variant(spec: str) -> RowSpec:
    """``"ckpt:checkpoint_chunk=256,key_dim=32"`` -> a transformer RowSpec named ``transformer[ckpt]``."""
    name, sep, body = spec.partition(":")
    if not sep or not name or not body:
        raise ValueError(f"a variant is NAME:field=value[,field=value...], got {spec!r}")
    overrides = {}
    for item in body.split(","):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"variant {name!r}: expected field=value, got {item!r}")
        overrides[key.strip()] = parse_value(value.strip())
    row = RowSpec(f"transformer[{name}]", "transformer", overrides)
    row.config()  # fail now, before any benchmark ran, on an unknown or invalid field
    return row

def make_env(num_envs: int, slots: int, s: Settings, policy: SlotPolicy | None = None) -> EnvBase:
    rows, cols = GRIDS[slots]
    enabled = None if s.enabled_slots is None else (s.enabled_slots, s.enabled_slots)
    env = SeedLifecycleEnv(num_envs, rows, cols, config=LifecycleConfig(enabled_slots=enabled), seed=0,
                           device=s.device)
    return env if policy is None else TransformedEnv(env, Compose(*policy.transforms()))


def build_batch(policy: SlotPolicy, slots: int, s: Settings) -> TensorDictBase:
    """A ``[B, T]`` PPO batch rolled out by the policy itself, with GAE advantages."""
    env = make_env(s.batch_size, slots, s, policy)
    gae = GAE(gamma=0.99, lmbda=0.95, value_network=policy.value_network, deactivate_vmap=True)
    with torch.no_grad():
        td = env.rollout(s.seq_len, policy.actor, break_when_any_done=False)
        with set_recurrent_mode(True):
            td = gae(td)
    return td


def bench_row(row: RowSpec, slots: int, s: Settings) -> dict[str, Any]:
    """Every metric of one (row, N) pair."""
    torch.manual_seed(0)
    policy = create_policy(row.arch, make_env(1, slots, s), row.config()).train()
    td = build_batch(policy, slots, s)
    loss = ClipPPOLoss(policy.actor, policy.critic)
    fwd, bwd = time_loss(loss, td, s)
    trunk = time_trunk(policy, td, s)
    memory = measure_memory_mb(loss, td, s.device)
    inf = measure_inference(policy, make_env(s.inference_envs, slots, s, policy).reset(), s)
    spread = {"forward_time_ms": _stats(fwd), "backward_time_ms": _stats(bwd),
              "fwd_bwd_time_ms": _stats([f + b for f, b in zip(fwd, bwd)]), "trunk_fwd_bwd_ms": _stats(trunk),
              "inference_ms": inf["inference"],
              "inference_compiled_ms": inf["inference_compiled"]}
    compiled_ms = None if inf["inference_compiled"] is None else inf["inference_compiled"]["median"]
    return {
        "name": row.name, "arch": row.arch, "overrides": row.overrides, "config": asdict(policy.config),
        "slots": slots, "grid": "x".join(map(str, GRIDS[slots])), "enabled_slots": s.enabled_slots or slots,
        "parameters": sum(p.numel() for p in policy.parameters()),
        **{k: (None if v is None else v["median"]) for k, v in spread.items()},
        "memory_mb": memory, "compile_time_s": inf["compile_time_s"], "compile_fullgraph": inf["compile_fullgraph"],
        "compile_fullgraph_error": inf["compile_fullgraph_error"],
        "inference_compiled_speedup": None if compiled_ms is None else spread["inference_ms"]["median"] / compiled_ms,
        "spread": {k: v for k, v in spread.items() if v is not None},
    }


def add_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per N: every row / the LSTM row (time, memory) and the reference row / every row (speed-up)."""
    ratios = []
    for row in rows:
        same_n = {r["name"]: r for r in rows if r["slots"] == row["slots"]}
        for base, key, invert in (("lstm", "vs_lstm", False), ("reference", "speedup_vs_reference", True)):
            other = same_n.get(base)
            if other is None or other is row:
                row[key] = None
                continue
            a, b = (other, row) if invert else (row, other)
            row[key] = {"fwd_bwd_time": a["fwd_bwd_time_ms"] / b["fwd_bwd_time_ms"],
                        "trunk_time": a["trunk_fwd_bwd_ms"] / b["trunk_fwd_bwd_ms"],
                        "memory": a["memory_mb"] / b["memory_mb"]}
            ratios.append({"slots": row["slots"], "row": row["name"], "against": base, **row[key]})
    return ratios


# ---------------------------------------------------------------------- CLI
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", default="lstm,transformer", help="comma-separated registered archs")
    p.add_argument("--slots", default="3,10,25,50", help=f"comma-separated slot counts from {sorted(GRIDS)}")
    p.add_argument("--batch-size", type=int, default=32, help="B: envs in the rollout = loss batch rows")
    p.add_argument("--seq-len", type=int, default=64, help="T: rollout steps = loss batch columns")
    p.add_argument("--iterations", type=int, default=10, help="timed loss calls per row")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls before timing")
    p.add_argument("--inference-envs", type=int, default=64, help="envs in the timed collection step")
    p.add_argument("--inference-iterations", type=int, default=50, help="timed collection steps per row")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads (default: torch's); 1 is far less noisy on a shared CPU")
    p.add_argument("--variant", "--variants", dest="variants", action="append", default=[],
                   metavar="NAME:FIELD=VALUE[,...]", help="a transformer row with PolicyConfig overrides (repeatable)")
    p.add_argument("--enabled-slots", type=int, default=None, metavar="K",
                   help="enable exactly K slots per episode (LifecycleConfig(enabled_slots=(K, K)))")
    p.add_argument("--reference", action="store_true", help="add the naive nn.TransformerEncoder row")
    p.add_argument("--no-compile", dest="compile", action="store_false", help="skip compile (compile_time_s null)")
    p.add_argument("--json", default=None, help="default benchmarks/results/benchmark_architectures_<device>.json")
    p.add_argument("--markdown", default=None,
                   help="default: next to --json (same name, .md); without --json "
                        "benchmarks/results/benchmark_architectures_<device>.md")
    args = p.parse_args(argv)
    register_reference()
    args.slots = [int(n) for n in args.slots.split(",")]
    if unknown := [n for n in args.slots if n not in GRIDS]:
        p.error(f"--slots must be among {sorted(GRIDS)}, got {unknown}")
    if args.enabled_slots is not None and not 1 <= args.enabled_slots <= min(args.slots):
        p.error(f"--enabled-slots must be in 1..{min(args.slots)} (the smallest --slots), got {args.enabled_slots}")
    if min(args.iterations, args.inference_iterations, args.batch_size, args.seq_len) < 1 or args.warmup < 0:
        p.error("--iterations, --inference-iterations, --batch-size and --seq-len must be >= 1, --warmup >= 0")
    try:
        rows = [RowSpec(a, a) for a in args.archs.split(",")] + [parse_variant(v) for v in args.variants]
    except ValueError as err:
        p.error(str(err))
    rows += [RowSpec("reference", "reference")] if args.reference else []
    if unknown := [r.arch for r in rows if r.arch not in registered_policies()]:
        p.error(f"unknown arch {unknown}; registered: {registered_policies()}")
    args.rows = rows
    device = args.device.split(":")[0]
    args.json = Path(args.json or f"benchmarks/results/benchmark_architectures_{device}.json")
    args.markdown = Path(args.markdown) if args.markdown else args.json.with_suffix(".md")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every (N, row) measurement plus machine, settings and ratios: the JSON dict."""
    s = Settings(args.batch_size, args.seq_len, args.iterations, args.warmup, args.inference_envs,
                 args.inference_iterations, args.device, args.compile, args.enabled_slots)
    rows = []
    for n in args.slots:
        for row in args.rows:
            print(f"N={n} {row.name} ...", file=sys.stderr, flush=True)
            rows.append(bench_row(row, n, s))
    return {
        "benchmark": "benchmark_architectures", "machine": machine_info(args.device), "settings": asdict(s),
        "rows": [asdict(r) for r in args.rows], "advantage_method": ADVANTAGE_METHOD,
        "memory_method": MEMORY_METHOD["cuda" if args.device.startswith("cuda") else "cpu"],
        "results": rows, "ratios": add_ratios(rows),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, write JSON + Markdown; return the JSON dict."""
    args = parse_args(argv)
    threads = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        results = run(args)
    finally:
        torch.set_num_threads(threads)
    print_table(results)
    for path, text in ((args.json, json.dumps(results, indent=2)), (args.markdown, markdown(results))):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
