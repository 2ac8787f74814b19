"""benchmark_architectures' measurements: loss forward/backward, trunk, memory and collection-step times."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from tensordict import TensorDictBase
from torchrl.modules import set_recurrent_mode
from torchrl.objectives import ClipPPOLoss

from torchrl_slots.policy import SlotPolicy

MEMORY_METHOD = {
    "cuda": "torch.cuda.max_memory_allocated() after reset_peak_memory_stats() minus memory_allocated() before "
            "one ClipPPOLoss forward + backward (grads set to None first, so gradient buffers are included)",
    "cpu": "bytes of the tensors autograd saves for backward during one ClipPPOLoss forward, counted with "
           "torch.autograd.graph.saved_tensors_hooks, unique storages by data_ptr, excluding storages of "
           "parameters, buffers and the input batch (activations only: no gradient buffers, no transient "
           "temporaries)",
}


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


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _stats(xs: list[float]) -> dict[str, float]:
    q1, med, q3 = np.percentile(xs, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3), "min": float(min(xs)), "max": float(max(xs)),
            "n": len(xs)}


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


def measure_inference(policy: SlotPolicy, td: TensorDictBase, s: Settings) -> dict[str, Any]:
    """Eager and compiled collection-step times; ``compile_time_s`` is the compiled actor's first call.

    ``policy.compile(fullgraph=True)`` is tried first; if dynamo refuses the whole graph, the
    error is recorded (``compile_fullgraph_error``) and ``fullgraph=False`` is timed instead. ``td`` is
    the env's reset state on ``s.inference_envs`` envs.
    """
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
