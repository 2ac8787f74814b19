"""benchmark_architectures' report: the machine it ran on, the printed table and the Markdown file."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path
from typing import Any, Callable

import tensordict
import torch
import torchrl


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else what ``platform`` knows; every
    benchmark names its machine with this."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str) -> dict[str, Any]:
    cpu = cpu_model()
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
