"""Factored action heads shared by both architectures (docs/design.md "One distribution owns the factored action").

:class:`FactoredHeads` turns the LSTM core ``[*B, H]`` and a per-slot representation
``[*B, N, D]`` into the parameters of
:class:`~torchrl_slots.modules.distribution.FactoredActionDistribution`:

* ``op``: ``Linear(H -> 6)``.
* ``slot`` for every op ``[*B, 6, N]``: the pointer head (transformer: the query is the core plus
  a learned op embedding, keys from ``slot_repr``) or ``Linear(H -> 6 N)`` (flat baseline).
* the six small heads for every (op, slot), additive logits ``A_h(core)[op] + C_h(slot_repr[slot])``:
  one set per op from the core, plus a term from the chosen slot's representation, so the
  blueprint is chosen knowing the op AND where the seed will sit. (Additive in logit space: a
  product of an op-expert and a slot-expert.) They are returned in the distribution's additive
  form, ``"logits"`` ``[*B, 6, n_h]`` and ``"slot_logits"`` ``[*B, N, n_h]``: the
  ``[*B, 6, N, n_h]`` sum is never built (the distribution gathers it at the pairs it needs).

With ``conditioning="none"`` (the seed's independent heads, for parity experiments) the same
logits are used for every op and slot (the slot term is zero), and the masks are the union of
the legal ops' rows; the joint then factorises into independent heads.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from torchrl_slots import layout
from torchrl_slots.modules.pointer import PointerHead

_SMALL_SIZES = [layout.FIXED_HEAD_SIZES[h] for h in layout.SMALL_HEADS]


def union_masks(masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Masks for independent heads: for each head, the union of the rows of the legal ops
    ``[*B, n]`` (``op`` is returned as is)."""
    legal = masks["op"]  # [*B, 6]
    out = {"op": legal}
    for h in layout.HEADS[1:]:
        out[h] = (masks[h] & legal[..., None]).any(-2)  # [*B, n]
    return out


def floored_logits(logits: torch.Tensor, mask: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of ``(1 - floor) softmax(logits) + floor * uniform(legal)`` over the last
    dim (illegal entries keep their logits: the distribution masks them). ``floor == 0`` returns
    ``logits`` unchanged (checked in eager mode; under ``torch.compile`` the mixture is always
    computed, which at 0 equals the log-softmax).

    Examples:
        >>> logits, mask = torch.tensor([5.0, 0.0, 0.0]), torch.tensor([True, True, False])
        >>> floored_logits(logits, mask, torch.tensor(0.2)).exp()[:2]  # >= 0.2 / 2 each
        tensor([0.8946, 0.1054])
    """
    if not torch.compiler.is_compiling() and not bool(floor > 0):
        return logits
    masked = logits.masked_fill(~mask, float("-inf"))
    logp = masked.log_softmax(-1)
    n_legal = mask.sum(-1, keepdim=True).clamp_min(1).to(logits.dtype)
    mixed = torch.logaddexp(logp + torch.log1p(-floor), torch.log(floor) - n_legal.log())
    return torch.where(mask, mixed, logits)


class FactoredHeads(nn.Module):
    """Parameters of the factored action distribution (see module docstring).

    Args:
        core_dim: H, the LSTM core width.
        slot_dim: D, the width of ``slot_repr``.
        slot_head: ``"pointer"`` (any N) or ``"linear"`` (needs ``num_slots``).
        num_slots: N for the linear slot head.
        op_embed_dim: width of the learned op embedding that conditions the pointer query.
        key_dim: pointer key/query width.
        conditioning: ``"op"`` (op -> slot -> rest) or ``"none"`` (independent heads).
        op_from_slots: add a pooled ``slot_logits[o, n]`` over op o's legal slots to op o's
            logit, so a slot that stands out (e.g. a seed ready to fossilize) raises its op's
            probability; otherwise the op is chosen from the core alone. Needs
            ``conditioning="op"``.
        op_slot_pool: how the slot logits are pooled for ``op_from_slots``: ``"mean"``
            (default), ``log mean_n exp(slot_logits[o, n])``: with equal slot logits it adds 0,
            so an op is not favoured for having more legal slots and the initial policy is
            uniform over the legal ops; ``"sum"``, ``logsumexp``: ``p(op, slot)`` is one softmax
            over all legal (op, slot) pairs (an op with k legal slots starts k times likelier).

    Examples:
        >>> heads = FactoredHeads(core_dim=16, slot_dim=8)
        >>> masks = {"op": torch.ones(2, 6, dtype=torch.bool)}
        >>> masks.update({h: torch.ones(2, 6, n, dtype=torch.bool)
        ...               for h, n in layout.head_sizes(3).items() if h != "op"})
        >>> params = heads(torch.randn(2, 16), torch.randn(2, 3, 8), masks)
        >>> params["slot"]["logits"].shape, params["blueprint"]["logits"].shape
        (torch.Size([2, 6, 3]), torch.Size([2, 6, 13]))
        >>> params["blueprint"]["slot_logits"].shape  # logits at (o, n): logits[o] + slot_logits[n]
        torch.Size([2, 3, 13])
    """

    def __init__(
        self,
        *,
        core_dim: int,
        slot_dim: int,
        slot_head: Literal["pointer", "linear"] = "pointer",
        num_slots: int | None = None,
        op_embed_dim: int = 32,
        key_dim: int = 64,
        conditioning: Literal["op", "none"] = "op",
        op_from_slots: bool = False,
        op_slot_pool: Literal["mean", "sum"] = "mean",
    ) -> None:
        super().__init__()
        if op_from_slots and conditioning != "op":
            raise ValueError("op_from_slots=True needs conditioning='op'")
        if op_slot_pool not in ("mean", "sum"):
            raise ValueError(f"op_slot_pool must be 'mean' or 'sum', got {op_slot_pool!r}")
        self.op_from_slots, self.op_slot_pool = op_from_slots, op_slot_pool
        # Probability floors of the op and slot heads (see set_floors); a training-time
        # exploration setting, not a parameter: not saved with the weights.
        self.register_buffer("floors", torch.zeros(2), persistent=False)
        if conditioning not in ("op", "none"):
            raise ValueError(f"conditioning must be 'op' or 'none', got {conditioning!r}")
        if slot_head not in ("pointer", "linear"):
            raise ValueError(f"slot_head must be 'pointer' or 'linear', got {slot_head!r}")
        if slot_head == "linear" and not num_slots:
            raise ValueError("slot_head='linear' needs num_slots")
        self.conditioning, self.slot_head_kind, self.num_slots = conditioning, slot_head, num_slots
        n_ops = layout.NUM_OPS if conditioning == "op" else 1
        self.n_ops = n_ops
        self.op_head = nn.Linear(core_dim, layout.NUM_OPS)
        if slot_head == "pointer":
            self.op_embedding = nn.Embedding(n_ops, op_embed_dim)
            self.slot_head = PointerHead(context_dim=core_dim, slot_dim=slot_dim, key_dim=key_dim,
                                         cond_dim=op_embed_dim)
        else:
            self.slot_head = nn.Linear(core_dim, n_ops * num_slots)
        total = sum(_SMALL_SIZES)
        self.small_from_core = nn.Linear(core_dim, n_ops * total)
        self.small_from_slot = nn.Linear(slot_dim, total) if conditioning == "op" else None

    def output_layers(self, pointer_query: bool = True) -> list[nn.Linear]:
        """The policy output layers (initialised with std 0.01, so the initial policy is near
        uniform over the legal actions). For the pointer head these are its query layers: the
        slot logits are ``<q, k_n>``, so a small query gives near-equal logits whatever the keys
        (the keys stay hidden-layer sized, so the slots' differences can be learned quickly).
        ``pointer_query=False`` leaves the query out (it is then initialised as a hidden layer:
        slot logits with a std of ~2 at the start, the earlier behaviour)."""
        layers = [self.op_head, self.small_from_core]
        if self.small_from_slot is not None:
            layers.append(self.small_from_slot)
        if isinstance(self.slot_head, nn.Linear):
            layers.append(self.slot_head)
        elif pointer_query:
            layers.append(self.slot_head.query)
            if self.slot_head.cond_query is not None:
                layers.append(self.slot_head.cond_query)
        return layers

    def set_floors(self, op: float = 0.0, slot: float = 0.0) -> None:
        """Probability floors: the op head's distribution becomes ``(1 - op) p + op u`` and each
        row of the slot head's ``(1 - slot) p + slot u``, with ``u`` uniform over the legal values.

        Every legal value then keeps a probability of at least ``floor / #legal``, so PPO cannot
        collapse to a deterministic policy (e.g. wait-only) while the floor is on; the argmax,
        and so the deterministic policy, is unchanged. ``0`` (default) is exactly the plain
        softmax. The trainer sets them per batch from ``PPOConfig`` (the same floor for the
        collection and the update of a batch, so PPO's ratio stays exact).

        Examples:
            >>> heads = FactoredHeads(core_dim=4, slot_dim=4)
            >>> heads.set_floors(op=0.1)
            >>> heads.floors.tolist()
            [0.10000000149011612, 0.0]
        """
        for name, value in (("op", op), ("slot", slot)):
            if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
                raise ValueError(f"{name} floor must be a number in [0, 1), got {value!r}")
        self.floors.copy_(torch.tensor([float(op), float(slot)]))

    def _slot_logits(self, core: torch.Tensor, slot_repr: torch.Tensor) -> torch.Tensor:
        """``[*B, n_ops, N]``."""
        n = slot_repr.shape[-2]
        if self.slot_head_kind == "pointer":
            cond = self.op_embedding.weight.expand(*core.shape[:-1], -1, -1)  # [*B, n_ops, E]
            return self.slot_head(core, slot_repr, cond)  # [*B, n_ops, N]
        if n != self.num_slots:
            raise ValueError(f"the linear slot head was built for {self.num_slots} slots, got {n}")
        return self.slot_head(core).unflatten(-1, (self.n_ops, n))  # [*B, n_ops, N]

    def _slot_terms(self, slot_repr: torch.Tensor) -> torch.Tensor:
        """``small_from_slot(slot_repr)`` ``[*B, N, total]``. A ``slot_repr`` broadcast over the
        batch (stride 0, e.g. the flat trunk's learned slot embedding) is projected once and the
        result broadcast the same way: ``Linear`` would otherwise copy the expanded input to
        ``[B', N, D]`` and save it (25 MB at ``[32, 64]`` x 50 slots)."""
        batch_dims = slot_repr.ndim - 2
        if batch_dims > 0 and all(st == 0 for st in slot_repr.stride()[:batch_dims]):
            one = self.small_from_slot(slot_repr[(0,) * batch_dims])  # [N, total]
            return one.expand(*slot_repr.shape[:-1], one.shape[-1])
        return self.small_from_slot(slot_repr)

    def forward(
        self, core: torch.Tensor, slot_repr: torch.Tensor, masks: dict[str, torch.Tensor]
    ) -> dict[str, dict[str, torch.Tensor]]:
        """Return ``{head: {"logits": ..., "mask": ...}}`` with the distribution's shapes (the
        small heads in the additive form, with ``"slot_logits"`` too)."""
        batch, n = core.shape[:-1], slot_repr.shape[-2]
        ops = layout.NUM_OPS
        slot_logits = self._slot_logits(core, slot_repr)  # [*B, n_ops, N]
        small = self.small_from_core(core).unflatten(-1, (self.n_ops, -1))  # [*B, n_ops, total]
        core_terms = small.split(_SMALL_SIZES, dim=-1)  # [*B, n_ops, n_h] per head
        if self.conditioning == "op":
            slot_terms = self._slot_terms(slot_repr).split(_SMALL_SIZES, dim=-1)  # [*B, N, n_h] per head
            out_masks = masks
        else:
            core_terms = [t.expand(*batch, ops, -1) for t in core_terms]  # the same for every op
            slot_terms = [core.new_zeros(()).expand(*batch, n, k) for k in _SMALL_SIZES]  # no slot term
            slot_logits = slot_logits.expand(*batch, ops, n)
            union = union_masks(masks)
            out_masks = {"op": masks["op"]}
            out_masks.update({h: union[h][..., None, :].expand(*batch, ops, -1) for h in layout.HEADS[1:]})
        op_logits = self.op_head(core)  # [*B, 6]
        if self.op_from_slots:
            legal = out_masks["slot"]  # [*B, 6, N]; every row has a legal entry (index 0 if irrelevant)
            pooled = slot_logits.masked_fill(~legal, float("-inf")).logsumexp(-1)  # [*B, 6]
            if self.op_slot_pool == "mean":
                pooled = pooled - legal.sum(-1).to(pooled.dtype).log()
            op_logits = op_logits + pooled
        op_logits = floored_logits(op_logits, out_masks["op"], self.floors[0])
        slot_logits = floored_logits(slot_logits, out_masks["slot"], self.floors[1])
        params = {
            "op": {"logits": op_logits, "mask": out_masks["op"]},
            "slot": {"logits": slot_logits, "mask": out_masks["slot"]},
        }
        for h, op_term, slot_term in zip(layout.SMALL_HEADS, core_terms, slot_terms):
            # [*B, 6, n_h], [*B, N, n_h], [*B, 6, n_h]
            params[h] = {"logits": op_term, "slot_logits": slot_term, "mask": out_masks[h]}
        return params
