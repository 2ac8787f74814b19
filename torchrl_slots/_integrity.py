"""Checkpoint integrity: a sha256 over every tensor (and every plain value) of a saved payload,
and a ``torch.load`` that reports a damaged file in this library's own words.

A payload is written as ``{..., "sha256": digest(payload without "sha256")}`` and checked at load;
files written before the checksum existed (no ``"sha256"`` entry) still load. The error for an
unreadable file never repeats torch's advice to retry with ``weights_only=False``: that would
run arbitrary code from the file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

CHECKSUM_KEY = "sha256"


class DamagedFileError(ValueError):
    """A file that is not a torchrl_slots checkpoint, or is damaged (truncated, flipped bytes)."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"not a torchrl_slots checkpoint, or damaged: {path} ({reason})")
        self.path, self.reason = str(path), reason


def digest(obj: Any) -> str:
    """sha256 over every tensor (dtype, shape and bytes) and plain value in ``obj``, walked in a
    fixed order (mapping keys sorted by their ``repr``).

    Examples:
        >>> a = {"w": torch.ones(2), "step": 3}
        >>> digest(a) == digest({"step": 3, "w": torch.ones(2)})
        True
        >>> digest(a) == digest({"w": torch.tensor([1.0, 1.0 + 2**-20]), "step": 3})
        False
    """
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _feed(h: "hashlib._Hash", obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)  # (a 0-d tensor cannot be viewed as bytes)
        h.update(f"T{t.dtype}{tuple(obj.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, Mapping):
        h.update(b"{")
        for key in sorted(obj, key=repr):
            h.update(repr(key).encode())
            _feed(h, obj[key])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[" if isinstance(obj, list) else b"(")
        for item in obj:
            _feed(h, item)
        h.update(b"]")
    else:
        h.update(repr(obj).encode())


def with_checksum(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` plus its ``"sha256"`` entry (the digest of everything else)."""
    body = {k: v for k, v in payload.items() if k != CHECKSUM_KEY}
    return {**body, CHECKSUM_KEY: digest(body)}


def verify_checksum(payload: Any, path: str | os.PathLike) -> None:
    """Raise :class:`DamagedFileError` when ``payload`` has a ``"sha256"`` that does not match; a
    payload without one (an older file) passes."""
    if not isinstance(payload, dict) or CHECKSUM_KEY not in payload:
        return
    body = {k: v for k, v in payload.items() if k != CHECKSUM_KEY}
    if digest(body) != payload[CHECKSUM_KEY]:
        raise DamagedFileError(path, "sha256 checksum mismatch: the stored tensors changed after saving")


def safe_load(path: str | os.PathLike) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``, with the checksum checked.

    Raises:
        FileNotFoundError: no file at ``path``.
        DamagedFileError: empty, truncated, random bytes, objects a weights-only load refuses, or
            a checksum mismatch.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such checkpoint file: {path}")
    if os.path.isdir(path):
        raise DamagedFileError(path, "a directory, not a file")
    if os.path.getsize(path) == 0:
        raise DamagedFileError(path, "empty file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many kinds here; all mean "unreadable"
        raise DamagedFileError(path, _reason(err)) from None
    verify_checksum(payload, path)
    return payload


def _reason(err: BaseException) -> str:
    text = str(err)
    if "weights_only" in text or "Unsupported global" in text or "WeightsUnpickler" in text:
        return "it holds objects other than tensors and plain values, which are refused"
    first = text.strip().splitlines()[0] if text.strip() else ""
    if len(first) > 160:
        first = first[:160] + "..."
    if not first:
        return f"{type(err).__name__}, the file is truncated or not a torch file"
    return f"{type(err).__name__}: {first}"


def atomic_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` to a temp file in the same folder, then ``os.replace`` it over ``path``: a reader
    never sees a half-written file (policy files, entity policy files and training checkpoints)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
