"""Pointer head: score each slot by a scaled dot product between a query and per-slot keys.

``logits[n] = <q, k_n> / sqrt(key_dim)`` with ``q = W_c context (+ W_e cond)`` and
``k_n = W_k slot_repr[n]``. Its parameters do not depend on the number of slots ``N``, so one
head serves every slot count, and permuting the slots permutes the logits.

The optional conditioning ``cond`` (e.g. an op embedding, docs/design.md "Data flow") either
has the context's batch shape ``[*B, E]`` (one query, logits ``[*B, N]``) or one more dim
``[*B, K, E]`` (one query per option, logits ``[*B, K, N]``: the slot logits for every op at once).

Masked logits are set to ``torch.finfo(dtype).min``, not ``-inf``: a softmax then gives them
probability 0 (``exp`` underflows) without ever producing NaN, and ``MaskedCategorical`` accepts
them. A row with no legal entry raises ``ValueError`` (checked in eager mode only: the check reads
tensor values, so it is skipped while ``torch.compile`` traces).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey
from torch import nn

__all__ = ["PointerHead", "PointerModule"]


class PointerHead(nn.Module):
    """Scaled dot-product pointer over slots, optionally conditioned (see module docstring).

    Args:
        context_dim: ``C``, width of the context (e.g. the LSTM core).
        slot_dim: ``D``, width of ``slot_repr``.
        key_dim: width of queries and keys. Default 64.
        cond_dim: ``E``, width of the conditioning embedding; ``None`` (default) for a head that
            takes no ``cond``.

    Examples:
        >>> head = PointerHead(context_dim=16, slot_dim=8, key_dim=4, cond_dim=3)
        >>> context, slot_repr = torch.randn(2, 16), torch.randn(2, 5, 8)
        >>> head(context, slot_repr).shape  # no conditioning
        torch.Size([2, 5])
        >>> head(context, slot_repr, torch.randn(2, 3)).shape  # cond [*B, E]
        torch.Size([2, 5])
        >>> head(context, slot_repr, torch.randn(2, 6, 3)).shape  # cond [*B, K, E]: per option
        torch.Size([2, 6, 5])
        >>> mask = torch.tensor([True, False, True, False, False]).expand(2, 5)
        >>> head(context, slot_repr, mask=mask).softmax(-1)[:, 1].max().item()
        0.0
    """

    def __init__(self, *, context_dim: int, slot_dim: int, key_dim: int = 64, cond_dim: int | None = None) -> None:
        super().__init__()
        self.context_dim, self.slot_dim, self.key_dim, self.cond_dim = context_dim, slot_dim, key_dim, cond_dim
        self.query = nn.Linear(context_dim, key_dim)
        self.cond_query = nn.Linear(cond_dim, key_dim, bias=False) if cond_dim is not None else None
        self.key = nn.Linear(slot_dim, key_dim)

    def _check(self, context: torch.Tensor, slot_repr: torch.Tensor, cond: torch.Tensor | None) -> None:
        if context.dim() < 1 or context.shape[-1] != self.context_dim:
            raise ValueError(f"context must be [*B, {self.context_dim}], got shape {tuple(context.shape)}")
        batch = tuple(context.shape[:-1])
        if slot_repr.dim() < 2 or slot_repr.shape[-1] != self.slot_dim or tuple(slot_repr.shape[:-2]) != batch:
            raise ValueError(
                f"slot_repr must be [*B, N, {self.slot_dim}] with *B = {batch}, got shape {tuple(slot_repr.shape)}"
            )
        if cond is None:
            return
        if self.cond_query is None:
            raise ValueError("this PointerHead was built with cond_dim=None (expected cond=None), got a cond tensor")
        ok_dims = cond.dim() in (context.dim(), context.dim() + 1)
        if not ok_dims or cond.shape[-1] != self.cond_dim or tuple(cond.shape[: len(batch)]) != batch:
            raise ValueError(
                f"cond must be [*B, {self.cond_dim}] or [*B, K, {self.cond_dim}] with *B = {batch}, "
                f"got shape {tuple(cond.shape)}"
            )

    def forward(
        self,
        context: torch.Tensor,
        slot_repr: torch.Tensor,
        cond: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Slot logits.

        Args:
            context: ``[*B, C]``.
            slot_repr: ``[*B, N, D]``.
            cond: ``None``, ``[*B, E]`` or ``[*B, K, E]``.
            mask: optional bool, broadcastable to the logits (``[*B, N]`` or ``[*B, K, N]``);
                True = legal. Illegal logits become ``finfo(dtype).min``.

        Returns:
            ``[*B, N]``, or ``[*B, K, N]`` when ``cond`` is ``[*B, K, E]``.

        Raises:
            ValueError: for mis-shaped inputs, a non-bool mask, or a mask row with no legal entry.
        """
        self._check(context, slot_repr, cond)
        q = self.query(context)  # [*B, Kd]
        per_option = cond is not None and cond.dim() == context.dim() + 1
        if per_option:
            q = q[..., None, :] + self.cond_query(cond)  # [*B, K, Kd]
        else:
            if cond is not None:
                q = q + self.cond_query(cond)  # [*B, Kd]
            q = q[..., None, :]  # [*B, 1, Kd]
        k = self.key(slot_repr)  # [*B, N, Kd]
        logits = (q @ k.transpose(-2, -1)) / math.sqrt(self.key_dim)  # [*B, K or 1, N]
        if not per_option:
            logits = logits.squeeze(-2)  # [*B, N]
        return logits if mask is None else self.apply_mask(logits, mask)

    @staticmethod
    def apply_mask(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Set illegal entries to ``finfo(logits.dtype).min``; ValueError for a row with none legal."""
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must have dtype torch.bool, got {mask.dtype}")
        if mask.dim() > logits.dim() or any(m not in (1, s) for m, s in zip(mask.shape[::-1], logits.shape[::-1])):
            raise ValueError(f"mask must broadcast to the logits' shape {tuple(logits.shape)}, got {tuple(mask.shape)}")
        if not torch.compiler.is_compiling() and not bool(mask.any(dim=-1).all()):
            raise ValueError("mask has a row with no legal slot (expected at least one True per row over N)")
        return logits.masked_fill(~mask, torch.finfo(logits.dtype).min)  # [*B, (K,) N]


class _PointerAdapter(nn.Module):
    """Positional tensors in (context, slot_repr[, cond][, mask]); routes them to the head."""

    def __init__(self, head: PointerHead, has_cond: bool, has_mask: bool) -> None:
        super().__init__()
        self.head, self.has_cond, self.has_mask = head, has_cond, has_mask

    def forward(self, context: torch.Tensor, slot_repr: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        cond = rest[0] if self.has_cond else None
        mask = rest[-1] if self.has_mask else None
        return self.head(context, slot_repr, cond, mask)


class PointerModule(TensorDictModule):
    """``TensorDictModule`` around a :class:`PointerHead` that owns the (nested) keys.

    Args:
        head: the pointer head.
        in_keys: ``(context, slot_repr)`` or ``(context, slot_repr, cond)``.
            Default ``("core", "slot_repr")``.
        out_keys: one key for the logits. Default ``("slot_logits",)``.
        mask_key: optional key of a bool legality mask (see :meth:`PointerHead.forward`).

    Examples:
        >>> from tensordict import TensorDict
        >>> head = PointerHead(context_dim=4, slot_dim=3, key_dim=8)
        >>> module = PointerModule(head, mask_key=("action_mask", "slot"))
        >>> td = TensorDict({"core": torch.randn(2, 4), "slot_repr": torch.randn(2, 5, 3),
        ...                  "action_mask": {"slot": torch.ones(2, 5, dtype=torch.bool)}}, batch_size=[2])
        >>> module(td)["slot_logits"].shape
        torch.Size([2, 5])
    """

    def __init__(
        self,
        head: PointerHead,
        *,
        in_keys: Sequence[NestedKey] = ("core", "slot_repr"),
        out_keys: Sequence[NestedKey] = ("slot_logits",),
        mask_key: NestedKey | None = None,
    ) -> None:
        in_keys, out_keys = list(in_keys), list(out_keys)
        if len(in_keys) not in (2, 3):
            raise ValueError(f"in_keys must be (context, slot_repr[, cond]): 2 or 3 keys, got {len(in_keys)}")
        if len(out_keys) != 1:
            raise ValueError(f"out_keys must hold exactly 1 key (the logits), got {len(out_keys)}")
        adapter = _PointerAdapter(head, has_cond=len(in_keys) == 3, has_mask=mask_key is not None)
        if mask_key is not None:
            in_keys.append(mask_key)
        super().__init__(adapter, in_keys=in_keys, out_keys=out_keys)

    @property
    def head(self) -> PointerHead:
        """The wrapped :class:`PointerHead`."""
        return self.module.head
