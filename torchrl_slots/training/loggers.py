"""``torchrl.record.loggers`` for a run directory: CSV by default, TensorBoard when installed."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from torchrl.record.loggers import Logger
from torchrl.record.loggers.csv import CSVLogger


def make_logger(kind: Literal["csv", "tensorboard"] | Logger | None, output_dir: str | Path | None) -> Logger | None:
    """A TorchRL logger writing under ``output_dir/logs`` (CSV files append, so a resumed run
    continues the same files); a ``Logger`` instance is returned as is."""
    if kind is None or isinstance(kind, Logger):
        return kind
    if output_dir is None:
        raise ValueError(f"logger {kind!r} needs an output_dir")
    if kind == "csv":
        return CSVLogger(exp_name="logs", log_dir=str(output_dir))
    if kind == "tensorboard":
        try:
            import tensorboard  # noqa: F401
        except ImportError as err:
            raise ImportError(
                "logger='tensorboard' needs the optional extra: pip install 'torchrl_slots[tensorboard]'"
            ) from err
        from torchrl.record.loggers.tensorboard import TensorboardLogger

        return TensorboardLogger(exp_name="logs", log_dir=str(output_dir))
    raise ValueError(f"logger must be 'csv', 'tensorboard', a torchrl Logger or None, got {kind!r}")
