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
are added. Prints a table, writes JSON and a Markdown table (regenerated on every run).

    python benchmarks/benchmark_architectures.py [--archs lstm,transformer] [--slots 3,10,25,50]
        [--batch-size 32] [--seq-len 64] [--iterations 10] [--warmup 2] [--device cpu|cuda] [--threads K]
        [--variant NAME:field=value,...]... [--enabled-slots K] [--reference] [--no-compile]
        [--json PATH] [--markdown PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import tensordict
import torch
import torchrl
from tensordict import TensorDictBase
from torch import nn
from torchrl.envs import Compose, EnvBase, TransformedEnv
from torchrl.modules import set_recurrent_mode
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import GAE

from torchrl_slots import layout
from torchrl_slots.envs import LifecycleConfig, SeedLifecycleEnv
from torchrl_slots.modules.encoder import GlobalEncoder
from torchrl_slots.modules.heads import FactoredHeads
from torchrl_slots.modules.positional import make_positional
from torchrl_slots.policy import (PolicyConfig, SlotPolicy, create_policy, env_num_slots, register_policy,
                                  registered_policies)

GRIDS = {3: (1, 3), 10: (2, 5), 25: (5, 5), 50: (5, 10)}
TIMINGS = ("forward_time_ms", "backward_time_ms", "fwd_bwd_time_ms", "trunk_fwd_bwd_ms", "inference_ms",
           "inference_compiled_ms")
ADVANTAGE_METHOD = ("torchrl GAE(gamma=0.99, lmbda=0.95, deactivate_vmap=True, value_network=policy.value_network) "
                    "on the rollout, under no_grad and set_recurrent_mode(True)")
MEMORY_METHOD = {
    "cuda": "torch.cuda.max_memory_allocated() after reset_peak_memory_stats() minus memory_allocated() before "
            "one ClipPPOLoss forward + backward (grads set to None first, so gradient buffers are included)",
    "cpu": "bytes of the tensors autograd saves for backward during one ClipPPOLoss forward, counted with "
           "torch.autograd.graph.saved_tensors_hooks, unique storages by data_ptr, excluding storages of "
           "parameters, buffers and the input batch (activations only: no gradient buffers, no transient "
           "temporaries)",
}


# ---------------------------------------------------------------------- the naive reference row
class ReferenceTrunk(nn.Module):
    """Naive slot transformer on ``nn.TransformerEncoder``: the "before" row of the benchmark.

    Same interface and dims as :class:`~torchrl_slots.modules.trunks.TransformerTrunk` (shared
    slot ``Linear``, learned row/col positions, CLS token, pre-LN GELU blocks, final LayerNorm,
    global encoder, ``Linear(2D -> F) -> LayerNorm -> ReLU`` fusion), but attention is
    ``nn.MultiheadAttention`` inside ``nn.TransformerEncoderLayer(batch_first=True,
    norm_first=True)`` with a ``src_key_padding_mask`` (True = ignore; CLS never ignored).
    """

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        d = config.embed_dim
        self.slot_embed = nn.Linear(layout.SLOT_FEATURES, d)
        self.positional = make_positional("learned", embed_dim=d, max_rows=config.max_rows, max_cols=config.max_cols)
        self.cls_token = nn.Parameter(torch.randn(d) * 0.02)
        block = nn.TransformerEncoderLayer(d, config.num_heads, config.ffn_dim, config.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(block, config.num_layers, norm=nn.LayerNorm(d),
                                             enable_nested_tensor=False)
        self.global_encoder = GlobalEncoder(base_dim=layout.BASE_FEATURES, embed_dim=d)
        self.fusion = nn.Sequential(nn.Linear(2 * d, config.feature_dim), nn.LayerNorm(config.feature_dim), nn.ReLU())
        self.slot_dim, self.feature_dim = d, config.feature_dim

    def forward(self, base: torch.Tensor, slots: torch.Tensor, slot_mask: torch.Tensor,
                slot_row: torch.Tensor, slot_col: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, n, d = slots.shape[:-2], slots.shape[-2], self.slot_dim
        x = self.slot_embed(slots) + self.positional(slot_row, slot_col)  # [*B, N, D]
        x = x.reshape(-1, n, d)  # [B', N, D]
        mask = slot_mask.reshape(-1, n)  # [B', N]
        x = torch.cat([self.cls_token.expand(x.shape[0], 1, d), x], dim=1)  # [B', N+1, D]
        pad = torch.cat([mask.new_zeros(mask.shape[0], 1), ~mask], dim=1)  # [B', N+1], True = ignore
        x = self.encoder(x, src_key_padding_mask=pad)  # [B', N+1, D]
        cls = x[:, 0].reshape(*batch, d)  # [*B, D]
        slot_repr = x[:, 1:].masked_fill(~mask[..., None], 0.0).reshape(*batch, n, d)  # [*B, N, D]
        return self.fusion(torch.cat([cls, self.global_encoder(base)], dim=-1)), slot_repr  # [*B, F], [*B, N, D]


def _build_reference(env: EnvBase, config: PolicyConfig) -> SlotPolicy:
    """Like policy.py's ``_build_transformer``, with :class:`ReferenceTrunk` as the trunk."""
    heads = FactoredHeads(core_dim=config.lstm_hidden, slot_dim=config.embed_dim, slot_head="pointer",
                          key_dim=config.key_dim, op_embed_dim=config.op_embed_dim, conditioning=config.conditioning)
    return SlotPolicy("reference", ReferenceTrunk(config), heads, config, num_slots=env_num_slots(env))


def register_reference() -> None:
    """Register :func:`_build_reference` as policy ``"reference"`` (once; called by :func:`main`, not at
    import, so that importing this module leaves the policy registry as it was)."""
    if "reference" not in registered_policies():
        register_policy("reference")(_build_reference)


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


@dataclass
class Settings:
    batch_size: int
    seq_len: int
    iterations: int
    warmup: int
    inference_envs: int
    inference_iterations: int
    device: str
    compile: bool
    enabled_slots: int | None


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


# ---------------------------------------------------------------------- measurements
def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _stats(xs: list[float]) -> dict[str, float]:
    q1, med, q3 = np.percentile(xs, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3), "min": float(min(xs)), "max": float(max(xs)),
            "n": len(xs)}


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


def _loss_total(out: TensorDictBase) -> torch.Tensor:
    return sum(v for k, v in out.items() if isinstance(k, str) and k.startswith("loss_"))


def time_loss(loss: ClipPPOLoss, td: TensorDictBase, s: Settings) -> tuple[list[float], list[float]]:
    """Forward and backward times (ms) of ``s.iterations`` calls after ``s.warmup`` untimed ones."""
    fwd, bwd = [], []
    for i in range(s.warmup + s.iterations):
        loss.zero_grad(set_to_none=True)
        batch = td.clone(False)
        _sync(s.device)
        t0 = time.perf_counter()
        total = _loss_total(loss(batch))
        _sync(s.device)
        t1 = time.perf_counter()
        total.backward()
        _sync(s.device)
        t2 = time.perf_counter()
        if i >= s.warmup:
            fwd.append(1e3 * (t1 - t0))
            bwd.append(1e3 * (t2 - t1))
    return fwd, bwd


def _time_calls(step: Callable[[TensorDictBase], Any], td: TensorDictBase, s: Settings, iterations: int,
                setup: Callable[[], None] | None = None) -> list[float]:
    """Times (ms) of ``step`` on fresh shallow copies of ``td``: ``iterations`` calls after
    ``s.warmup`` untimed ones (``setup`` runs before each call, untimed)."""
    times = []
    for i in range(s.warmup + iterations):
        if setup is not None:
            setup()
        batch = td.clone(False)
        _sync(s.device)
        t0 = time.perf_counter()
        step(batch)
        _sync(s.device)
        if i >= s.warmup:
            times.append(1e3 * (time.perf_counter() - t0))
    return times


def time_trunk(policy: SlotPolicy, td: TensorDictBase, s: Settings) -> list[float]:
    """Forward + backward times (ms) of the trunk and LSTM core alone (``policy.trunk`` in
    recurrent mode, backward of ``core.sum() + slot_repr.sum()``): what the architectures differ
    in, without the heads, distribution and loss they share."""

    def step(batch: TensorDictBase) -> None:
        with set_recurrent_mode(True):
            out = policy.trunk(batch)
        (out["core"].sum() + out["slot_repr"].sum()).backward()

    return _time_calls(step, td, s, s.iterations, setup=lambda: policy.zero_grad(set_to_none=True))


def measure_memory_mb(loss: ClipPPOLoss, td: TensorDictBase, device: str) -> float:
    """Extra memory of one forward + backward, in MiB (see ``MEMORY_METHOD``)."""
    loss.zero_grad(set_to_none=True)
    batch = td.clone(False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        _loss_total(loss(batch)).backward()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    known = {t.untyped_storage().data_ptr() for t in [*loss.parameters(), *loss.buffers()]}
    known |= {t.untyped_storage().data_ptr() for t in batch.values(True, True) if isinstance(t, torch.Tensor)}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in known:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        total = _loss_total(loss(batch))
    total.backward()
    return sum(saved.values()) / 2**20


def time_inference(actor: Callable, td: TensorDictBase, s: Settings) -> list[float]:
    """Times (ms) of one collection step, no_grad, on fresh shallow copies of ``td``."""
    with torch.no_grad():
        return _time_calls(actor, td, s, s.inference_iterations)


def _first_compiled_call(policy: SlotPolicy, td: TensorDictBase, s: Settings,
                         fullgraph: bool) -> tuple[Callable, float]:
    torch._dynamo.reset()  # a cold dynamo cache for every row (inductor's on-disk cache may still hit)
    compiled = policy.compile(fullgraph=fullgraph)
    _sync(s.device)
    t0 = time.perf_counter()
    with torch.no_grad():
        compiled(td.clone(False))
    _sync(s.device)
    return compiled, time.perf_counter() - t0


def measure_inference(policy: SlotPolicy, slots: int, s: Settings) -> dict[str, Any]:
    """Eager and compiled collection-step times; ``compile_time_s`` is the compiled actor's first call.

    ``policy.compile(fullgraph=True)`` is tried first; if dynamo refuses the whole graph, the
    error is recorded (``compile_fullgraph_error``) and ``fullgraph=False`` is timed instead.
    """
    td = make_env(s.inference_envs, slots, s, policy).reset()
    out: dict[str, Any] = {"inference": _stats(time_inference(policy.actor, td, s)), "compile_time_s": None,
                           "inference_compiled": None, "compile_fullgraph": None, "compile_fullgraph_error": None}
    if not s.compile:
        return out
    try:
        compiled, seconds = _first_compiled_call(policy, td, s, fullgraph=True)
        out["compile_fullgraph"] = True
    except Exception as err:  # dynamo raises several types (Unsupported, UserError, ...)
        out["compile_fullgraph"] = False
        out["compile_fullgraph_error"] = f"{type(err).__name__}: {str(err).splitlines()[0]}"
        compiled, seconds = _first_compiled_call(policy, td, s, fullgraph=False)
    out["compile_time_s"] = seconds
    out["inference_compiled"] = _stats(time_inference(compiled, td, s))
    return out


def bench_row(row: RowSpec, slots: int, s: Settings) -> dict[str, Any]:
    """Every metric of one (row, N) pair."""
    torch.manual_seed(0)
    policy = create_policy(row.arch, make_env(1, slots, s), row.config()).train()
    td = build_batch(policy, slots, s)
    loss = ClipPPOLoss(policy.actor, policy.critic)
    fwd, bwd = time_loss(loss, td, s)
    trunk = time_trunk(policy, td, s)
    memory = measure_memory_mb(loss, td, s.device)
    inf = measure_inference(policy, slots, s)
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


# ---------------------------------------------------------------------- reporting
def machine_info(device: str) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "device": device, "device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else cpu,
        "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
        "torchrl": torchrl.__version__, "tensordict": tensordict.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def _timing(row: dict[str, Any], key: str) -> str:
    st = row["spread"].get(key)
    return "-" if st is None else f"{st['median']:.1f} [{st['q1']:.1f}-{st['q3']:.1f}]"


COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("N", lambda r: str(r["slots"])), ("grid", lambda r: r["grid"]), ("on", lambda r: str(r["enabled_slots"])),
    ("row", lambda r: r["name"]), ("params", lambda r: str(r["parameters"])),
    ("fwd ms [IQR]", lambda r: _timing(r, "forward_time_ms")),
    ("bwd ms [IQR]", lambda r: _timing(r, "backward_time_ms")),
    ("fwd+bwd ms [IQR]", lambda r: _timing(r, "fwd_bwd_time_ms")),
    ("mem MB", lambda r: _fmt(r["memory_mb"])),
    ("time/lstm", lambda r: _fmt(r["vs_lstm"] and r["vs_lstm"]["fwd_bwd_time"], ".2f")),
    ("trunk fwd+bwd ms", lambda r: _timing(r, "trunk_fwd_bwd_ms")),
    ("trunk/lstm", lambda r: _fmt(r["vs_lstm"] and r["vs_lstm"]["trunk_time"], ".2f")),
    ("mem/lstm", lambda r: _fmt(r["vs_lstm"] and r["vs_lstm"]["memory"], ".2f")),
    ("speed-up vs ref", lambda r: _fmt(r["speedup_vs_reference"] and r["speedup_vs_reference"]["fwd_bwd_time"], ".2f")),
    ("compile s", lambda r: _fmt(r["compile_time_s"])),
    ("infer ms", lambda r: _fmt(r["inference_ms"], ".2f")),
    ("infer compiled ms", lambda r: _fmt(r["inference_compiled_ms"], ".2f")),
    ("eager/compiled", lambda r: _fmt(r["inference_compiled_speedup"], ".2f")),
]


def _header(results: dict[str, Any]) -> str:
    m, s = results["machine"], results["settings"]
    return (f"ClipPPOLoss forward/backward on a [{s['batch_size']}, {s['seq_len']}] batch, training mode; "
            f"collection step on {s['inference_envs']} envs. {m['device_name']} ({m['cores']} cores, "
            f"{m['torch_threads']} threads), torch {m['torch']}, torchrl {m['torchrl']}, tensordict "
            f"{m['tensordict']}, {m['date']}. Timings: median [IQR] of {s['iterations']} iterations after "
            f"{s['warmup']} warm-up. Memory: {results['memory_method']}.")


def print_table(results: dict[str, Any]) -> None:
    cells = [[c[0] for c in COLUMNS]] + [[f(r) for _, f in COLUMNS] for r in results["results"]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    print(_header(results))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))


def markdown(results: dict[str, Any]) -> str:
    lines = ["# benchmark_architectures", "", _header(results), "",
             "| " + " | ".join(c[0] for c in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(f(r) for _, f in COLUMNS) + " |" for r in results["results"]]
    return "\n".join(lines) + "\n"


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
    p.add_argument("--markdown", default=None, help="default benchmarks/results/benchmark_architectures_<device>.md")
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
    args.markdown = Path(args.markdown or f"benchmarks/results/benchmark_architectures_{device}.md")
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
