"""Training checkpoints: atomic writes, the last ``keep`` kept, a compatibility check on resume.

A checkpoint is one ``torch.save`` d dict readable with ``torch.load(weights_only=True)``::

    {"format": TRAINING_FORMAT, "run": {...what must match on resume...},
     "policy": <SlotPolicy.save payload>, "optimizer": ..., "frames": int, "batches": int,
     "rng": {...}, "history": [...], "baselines": {...},
     "return_scaler": <ReturnScaler.state_dict()> or None (PPOConfig.normalize_return)}

``"policy"`` is exactly :meth:`SlotPolicy.save`'s payload, so :func:`load_policy` (and
``examples/evaluate.py``) reads a policy out of either kind of file.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from torchrl.envs import EnvBase

from torchrl_slots._integrity import DamagedFileError, safe_load, with_checksum
from torchrl_slots.policy import CHECKPOINT_FORMAT, SlotPolicy, atomic_save

logger = logging.getLogger(__name__)

TRAINING_FORMAT = "torchrl_slots.TrainingCheckpoint/1"
_NAME = re.compile(r"^checkpoint_(\d{12})\.pt$")
# Fields of the run that may change between a run and its resumption.
RESUMABLE_CHANGES = ("ppo.total_frames", "ppo.max_bad_updates", "eval_interval", "eval_episodes",
                     "checkpoint_interval", "keep_checkpoints", "collector", "workers", "compile", "device")
# Settings added after checkpoints of this format were first written, with the value that a saved
# run without them ran with: such a run resumes when the setting still has that value.
ADDED_SETTINGS = {"ppo.normalize_return": False}


class CheckpointManager:
    """Writes ``checkpoint_<frames>.pt`` files into ``directory``; keeps the newest ``keep``.

    Examples:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> m = CheckpointManager(d, keep=2)
        >>> for frames in (100, 200, 300):
        ...     _ = m.save({"format": TRAINING_FORMAT, "frames": frames})
        >>> [p.name for p in m.list()]
        ['checkpoint_000000000200.pt', 'checkpoint_000000000300.pt']
        >>> m.load_latest()["frames"]
        300
    """

    def __init__(self, directory: str | os.PathLike, *, keep: int = 3) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory, self.keep = Path(directory), keep

    def list(self) -> list[Path]:
        """Checkpoint files, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if _NAME.match(p.name))

    def latest(self) -> Path | None:
        files = self.list()
        return files[-1] if files else None

    def save(self, payload: dict[str, Any]) -> Path:
        """Atomically write ``payload`` (needs ``"frames"``), then drop all but the newest ``keep``."""
        path = self.directory / f"checkpoint_{int(payload['frames']):012d}.pt"
        atomic_save(with_checksum(payload), path)
        for old in self.list()[: -self.keep]:
            old.unlink()
        logger.info("checkpoint written: %s", path)
        return path

    def load_latest(self) -> dict[str, Any]:
        """The newest intact checkpoint. A damaged newer one (bad checksum, truncated, unreadable)
        is skipped with a logged warning naming both files, and renamed to ``damaged_<name>`` (so
        that a later save of the same frame count cannot overwrite it, and pruning never deletes
        it); it is never deleted."""
        return self.load_latest_with_path()[0]

    def load_latest_with_path(self) -> tuple[dict[str, Any], Path]:
        """:meth:`load_latest` and the file it read."""
        files = self.list()
        if not files:
            raise FileNotFoundError(f"no checkpoint_*.pt in {self.directory}")
        damaged: list[tuple[Path, str]] = []
        for path in reversed(files):
            try:
                payload = load_training_checkpoint(path)
            except DamagedFileError as err:
                damaged.append((path, err.reason))
                continue
            for bad, reason in damaged:
                kept = bad.with_name(f"damaged_{bad.name}")
                os.replace(bad, kept)
                logger.warning("checkpoint %s is damaged (%s): resuming from %s instead; the damaged file is "
                               "kept as %s", bad, reason, path, kept)
            return payload, path
        raise DamagedFileError(files[-1], "every checkpoint in the folder is damaged: "
                               + "; ".join(f"{p.name}: {r}" for p, r in damaged))


def load_training_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training checkpoint (``weights_only=True``), its checksum checked.

    Raises:
        FileNotFoundError: no file at ``path``.
        DamagedFileError: (a ``ValueError``) ``"not a torchrl_slots checkpoint, or damaged: FILE
            (reason)"`` for an empty, truncated, random or altered file.
        ValueError: a readable file of another kind.
    """
    payload = safe_load(path)
    if not isinstance(payload, dict) or payload.get("format") != TRAINING_FORMAT:
        raise ValueError(f"{path} is not a training checkpoint (expected format {TRAINING_FORMAT!r})")
    return payload


def check_resumable(saved_run: dict[str, Any], run: dict[str, Any], path: str | os.PathLike) -> None:
    """Raise ``ValueError`` listing every setting that differs between the saved run and this one
    (other than :data:`RESUMABLE_CHANGES`; a setting the saved run lacks counts as its
    :data:`ADDED_SETTINGS` value)."""
    old, new = {**ADDED_SETTINGS, **_flatten(saved_run)}, _flatten(run)
    diffs = [f"{k}: saved {old.get(k)!r}, now {new.get(k)!r}"
             for k in sorted(set(old) | set(new))
             if k not in RESUMABLE_CHANGES and old.get(k) != new.get(k)]
    if diffs:
        raise ValueError(
            f"cannot resume from {path}: the run differs in " + "; ".join(diffs)
            + " (use another --output-dir for a new run; nothing was overwritten)"
        )


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def load_policy(path: str | os.PathLike, env: EnvBase) -> SlotPolicy:
    """Rebuild a :class:`SlotPolicy` for ``env`` from a policy file OR a training checkpoint
    (checksums checked; see :func:`load_training_checkpoint` for the errors)."""
    payload = safe_load(path)
    if isinstance(payload, dict) and payload.get("format") == TRAINING_FORMAT:
        payload = payload["policy"]
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is neither a SlotPolicy file ({CHECKPOINT_FORMAT!r}) nor a training checkpoint "
            f"({TRAINING_FORMAT!r})"
        )
    return SlotPolicy.from_payload(payload, env, source=str(path))
