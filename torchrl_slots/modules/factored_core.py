"""The plain-tensor math of the factored action: log-probs, the op -> slot -> rest chain, and the
exact per-head entropies (:class:`FactoredCore`; tensors and dicts keyed by head, no TensorDict).

The entropy is exact, ``H(op) + sum_o p(o) [H(slot|o) + sum_n p(n|o) sum_h H(h|o,n)]``, split
per head: op ``H(op)``; slot ``sum_o p(o) H(slot|o)``; small head h
``sum_o p(o) sum_n p(n|o) H(h|o,n)``. The terms sum to the joint entropy. For the gradient the
weights ``p(o)`` and ``p(n|o)`` are constants: a head's entropy bonus spreads that head's own
conditional distributions and does not favour ops that have more relevant sub-heads (with live
weights, an entropy bonus per head paid PPO for germinating, whatever the seed did).

The small heads' entropy is computed only at the (op, slot) pairs that can contribute: ``p(o, n)
> 0`` and head h has more than one legal value in row o (elsewhere the term is exactly 0, and so is
its gradient). Those pairs are gathered into one flat ``[P, n_h]`` tensor, so the cost grows with
the legal pairs, not with ``6 N``: at 50 slots with 10 enabled it is the cost of 10 slots. Same
values (up to summation order) and gradients as the dense sum, which runs instead under
``torch.compile`` (the gather has a data-dependent size) and with ``dense=True``.

Masked logits are filled with ``finfo(dtype).min`` (finite, so nothing becomes NaN), masked
entries add exactly 0 to the entropy, and a row with one legal value has log-prob and entropy
exactly 0.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import torch
from torch import distributions as D

from torchrl_slots import layout

Tensor = torch.Tensor


def _masked_logits(logits: Tensor, mask: Tensor) -> Tensor:
    return logits.masked_fill(~mask, torch.finfo(logits.dtype).min)


def _masked_log_softmax(logits: Tensor, mask: Tensor) -> Tensor:
    return torch.log_softmax(_masked_logits(logits, mask), dim=-1)


def _entropy(logp: Tensor, mask: Tensor) -> Tensor:
    """``-sum p log p`` over the last dim; masked entries add exactly 0 (``+ 0.0``: no ``-0.0``)."""
    return 0.0 - torch.where(mask, logp.exp() * logp, 0.0).sum(-1)


def _take(x: Tensor, idx: Tensor, dim: int) -> Tensor:
    """Index ``x`` ``[*B, K, ...]`` (``K`` at ``dim`` < 0, right after the batch dims) with ``idx``
    ``[*S, *B]`` along ``dim``. Returns ``[*S, *B, ...]``; ``*S`` are extra sample dims.

    Advanced indexing, not ``gather``/``take_along_dim``: their backward saves the whole of ``x``
    (for the small heads' slot terms at ``[32, 64]`` x 50 slots, ~12 MB of the loss's activations),
    indexing's saves only the indices."""
    nb = x.ndim + dim  # batch dims of x
    rows = x.reshape(-1, *x.shape[nb:])  # [B', K, ...]
    row_ids = torch.arange(rows.shape[0], device=x.device).reshape(x.shape[:nb])  # [*B]
    return rows[row_ids.expand(idx.shape), idx]  # [*S, *B, ...]


def draw_masked(logits: Tensor, mask: Tensor) -> Tensor:
    return D.Categorical(logits=_masked_logits(logits, mask), validate_args=False).sample()


def argmax_masked(logits: Tensor, mask: Tensor) -> Tensor:
    return _masked_logits(logits, mask).argmax(-1)


def sum_heads(per_head: Mapping[str, Tensor]) -> Tensor:
    return torch.stack(list(per_head.values())).sum(0)


class FactoredCore:
    """Plain-tensor core: per-head log-probs at given actions, the op -> slot -> rest chain, and
    exact per-head entropies. Dicts are keyed by head name."""

    def __init__(
        self, logits: dict[str, Tensor], masks: dict[str, Tensor], slot_logits: dict[str, Tensor] | None = None
    ) -> None:
        self.logits, self.masks = logits, masks
        self.slot_logits = slot_logits or {}
        self.batch_shape = logits["op"].shape[:-1]

    def row(self, h: str, op: Tensor, slot: Tensor | None) -> tuple[Tensor, Tensor]:
        """Logits and mask of head ``h`` given op (and slot) ``[*S, *B]`` -> ``[*S, *B, n_h]``."""
        if h == "op":
            return self.logits["op"], self.masks["op"]
        if h == "slot":
            return _take(self.logits["slot"], op, -2), _take(self.masks["slot"], op, -2)
        if h in self.slot_logits:  # additive: op term [*B, 6, n] + slot term [*B, N, n]
            logits = _take(self.logits[h], op, -2) + _take(self.slot_logits[h], slot, -2)
        else:
            logits = _take(_take(self.logits[h], op, -3), slot, -2)  # [*S, *B, N, n] -> [*S, *B, n]
        return logits, _take(self.masks[h], op, -2)

    def op_slot_log_probs(self) -> tuple[Tensor, Tensor, Tensor]:
        """``log p(op)`` ``[*B, 6]``, ``log p(slot | op)`` ``[*B, 6, N]`` and the weights
        ``p(o, n)`` ``[*B, 6, N]``.

        The weights are constants for the gradient: each head's entropy bonus spreads that head's
        own distribution, and does not push p(op) towards ops with more relevant sub-heads
        (GERMINATE has 7: with live weights a 0.05 bonus per head paid ~0.4 per germination, and
        PPO learned a germinate-prune loop for it)."""
        lp_op = _masked_log_softmax(self.logits["op"], self.masks["op"])  # [*B, 6]
        lp_slot = _masked_log_softmax(self.logits["slot"], self.masks["slot"])  # [*B, 6, N]
        p_on = lp_op.exp().detach()[..., None] * lp_slot.exp().detach()  # [*B, 6, N]: p(o, n)
        return lp_op, lp_slot, p_on

    def dense_logits(self, h: str) -> Tensor:
        """Small head ``h``'s logits at every (op, slot): ``[*B, 6, N, n_h]``."""
        if h in self.slot_logits:
            return self.logits[h].unsqueeze(-2) + self.slot_logits[h].unsqueeze(-3)
        return self.logits[h]

    def small_entropy(self, h: str, p_on: Tensor, *, dense: bool = False) -> Tensor:
        """``sum_o sum_n p(o, n) H(h | o, n)`` ``[*B]`` for small head ``h`` (``p_on`` ``[*B, 6, N]``).

        Sparse by default: only pairs with ``p(o, n) > 0`` where row o of h's mask has more than
        one legal value (every other term is exactly 0 with a zero gradient), gathered into one
        flat ``[P, n_h]`` tensor and summed back per batch element with ``index_add``."""
        mask = self.masks[h]  # [*B, 6, n]
        if dense or torch.compiler.is_compiling():
            m = mask.unsqueeze(-2)  # [*B, 6, 1, n]
            h_on = _entropy(_masked_log_softmax(self.dense_logits(h), m), m)  # [*B, 6, N]
            return (p_on * h_on).sum((-2, -1))
        ops, n_slots, k = mask.shape[-2], p_on.shape[-1], mask.shape[-1]
        active = ((p_on > 0) & (mask.sum(-1) > 1).unsqueeze(-1)).reshape(-1, ops, n_slots)  # [B', 6, N]
        b, o, n = active.nonzero(as_tuple=True)  # P pairs
        if h in self.slot_logits:
            logits = self.logits[h].reshape(-1, ops, k)[b, o] + self.slot_logits[h].reshape(-1, n_slots, k)[b, n]
        else:
            logits = self.logits[h].reshape(-1, ops, n_slots, k)[b, o, n]  # [P, n]
        m = mask.reshape(-1, ops, k)[b, o]  # [P, n]
        h_p = _entropy(_masked_log_softmax(logits, m), m)  # [P]
        w = p_on.reshape(-1, ops, n_slots)[b, o, n]  # [P]
        total = torch.zeros(active.shape[0], dtype=h_p.dtype, device=h_p.device)
        return total.index_add(0, b, w * h_p).reshape(self.batch_shape)

    def log_probs(self, actions: Mapping[str, Tensor]) -> dict[str, Tensor]:
        op, slot = actions["op"], actions["slot"]
        return {
            h: _take(_masked_log_softmax(*self.row(h, op, slot)), actions[h], -1)  # [*S, *B]
            for h in layout.HEADS
        }

    def chain(self, pick: Callable[[Tensor, Tensor], Tensor], sample_shape: torch.Size) -> dict[str, Tensor]:
        """Pick op, then slot in that op's row, then each small head at (op, slot)."""
        shape = sample_shape + self.logits["op"].shape
        out = {"op": pick(self.logits["op"].expand(shape), self.masks["op"].expand(shape))}
        out["slot"] = pick(*self.row("slot", out["op"], None))
        for h in layout.SMALL_HEADS:
            out[h] = pick(*self.row(h, out["op"], out["slot"]))
        return out

    @functools.cached_property
    def entropies(self) -> dict[str, Tensor]:
        lp_op, lp_slot, p_on = self.op_slot_log_probs()
        p_op_w = lp_op.exp().detach()  # [*B, 6]: p(o), a constant weight like p(o, n)
        out = {
            "op": _entropy(lp_op, self.masks["op"]),
            "slot": (p_op_w * _entropy(lp_slot, self.masks["slot"])).sum(-1),
        }
        for h in layout.SMALL_HEADS:
            out[h] = self.small_entropy(h, p_on)
        return out
