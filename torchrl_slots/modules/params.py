"""The params of :class:`~torchrl_slots.modules.distribution.FactoredActionDistribution`: their
shapes, their checks, and two builders (independent heads, uniform).

Params (``*B`` any batch shape, N slots, ``n_h`` the size of small head h):

============================  ===================  =============================================
entry                         shape                meaning
============================  ===================  =============================================
``("op", "logits"/"mask")``   ``[*B, 6]``          op logits, legal ops
``("slot", "logits"/"mask")`` ``[*B, 6, N]``       row o: slot logits / legal slots if op == o
``(h, "logits")``             ``[*B, 6, N, n_h]``  small head h given (op, slot) (dense form)
``(h, "mask")``               ``[*B, 6, n_h]``     row o: legal values of h if op == o
============================  ===================  =============================================

**Additive form** of a small head (what :class:`~torchrl_slots.modules.heads.FactoredHeads`
writes): ``(h, "logits")`` ``[*B, 6, n_h]`` (the op term) plus ``(h, "slot_logits")``
``[*B, N, n_h]`` (the slot term); the logits at (o, n) are ``logits[o] + slot_logits[n]``. Same
distribution as the dense form with that sum, without the ``[*B, 6, N, n_h]`` tensor (at
``[32, 64]`` x 50 slots that is 74 MB per head set, and its log-softmax was most of the loss's
time). A params set may mix the two forms head by head.

Every mask row needs at least one legal value (docs/design.md: an irrelevant head allows only
index 0); :func:`split_params` raises on an all-False row, naming the head and batch index.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from tensordict import TensorDict, TensorDictBase

from torchrl_slots import layout

Tensor = torch.Tensor


def _check_shape(name: str, t: Tensor, expected: tuple[int, ...]) -> None:
    if tuple(t.shape) != expected:
        raise ValueError(f"{name}: expected shape {expected}, got {tuple(t.shape)}")


def split_params(
    params: TensorDictBase | Mapping,
) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
    """Read and validate the entries; returns ``(logits, masks, slot_logits)`` keyed by head
    (``slot_logits`` holds the small heads given in the additive form)."""
    logits: dict[str, Tensor] = {}
    masks: dict[str, Tensor] = {}
    slot_logits: dict[str, Tensor] = {}
    for h in layout.HEADS:
        try:
            logits[h], masks[h] = params[h]["logits"], params[h]["mask"]
        except KeyError as err:
            raise KeyError(f"FactoredActionDistribution params need ({h!r}, 'logits'/'mask'): {err}") from err
        if masks[h].dtype != torch.bool:
            raise TypeError(f"({h!r}, 'mask') must be bool, got {masks[h].dtype}")
        if "slot_logits" in params[h].keys() and params[h]["slot_logits"] is not None:
            if h not in layout.SMALL_HEADS:
                raise ValueError(
                    f"({h!r}, 'slot_logits'): only the small heads {layout.SMALL_HEADS} take an additive slot term"
                )
            slot_logits[h] = params[h]["slot_logits"]
    ops = layout.NUM_OPS
    op = logits["op"]
    if op.ndim < 1 or op.shape[-1] != ops:
        raise ValueError(f"('op', 'logits'): expected shape [*B, {ops}], got {tuple(op.shape)}")
    batch = tuple(op.shape[:-1])
    _check_shape("('op', 'mask')", masks["op"], batch + (ops,))
    n = logits["slot"].shape[-1]
    _check_shape("('slot', 'logits')", logits["slot"], batch + (ops, n))
    _check_shape("('slot', 'mask')", masks["slot"], batch + (ops, n))
    for h in layout.SMALL_HEADS:
        k = logits[h].shape[-1]
        if h in slot_logits:
            _check_shape(f"({h!r}, 'logits') (additive form)", logits[h], batch + (ops, k))
            _check_shape(f"({h!r}, 'slot_logits')", slot_logits[h], batch + (n, k))
        else:
            _check_shape(f"({h!r}, 'logits')", logits[h], batch + (ops, n, k))
        _check_shape(f"({h!r}, 'mask')", masks[h], batch + (ops, k))
    check_nonempty(masks)
    return logits, masks, slot_logits


def check_nonempty(masks: dict[str, Tensor]) -> None:
    """Raise a ValueError naming the head and batch index of an all-False mask row (one sync).

    Skipped inside ``torch.compile``: the data-dependent branch would break ``fullgraph=True``
    (the eager path, which tests and evaluation run, keeps the check)."""
    if torch.compiler.is_compiling():
        return
    empty = {h: ~m.any(-1) for h, m in masks.items()}  # op: [*B]; others: [*B, 6]
    if not bool(torch.stack([e.any() for e in empty.values()]).any()):
        return
    for h, e in empty.items():
        if e.any():
            idx = tuple(e.nonzero()[0].tolist())
            where = f"batch index {idx}" if h == "op" else f"batch index {idx[:-1]}, op row {idx[-1]}"
            raise ValueError(
                f"FactoredActionDistribution: head {h!r} has an all-False mask row at {where}; "
                "every row needs at least one legal value (an irrelevant head allows index 0 only)"
            )


def independent_params(
    op_logits: Tensor,
    op_mask: Tensor,
    slot_logits: Tensor,
    slot_mask_union: Tensor,
    small_logits: Mapping[str, Tensor],
    small_mask_union: Mapping[str, Tensor],
) -> TensorDict:
    """Params for independent heads (``conditioning="none"``) in the full shapes.

    The same slot logits/mask ``[*B, N]`` serve every op and the same small-head logits
    ``[*B, n_h]`` every (op, slot) (expanded, not copied). The joint then factorises: log-prob
    = sum of the independent heads' log-probs, entropy = sum of their entropies.

    Examples:
        >>> import torch
        >>> small = {h: torch.zeros(4, n) for h, n in layout.FIXED_HEAD_SIZES.items() if h != "op"}
        >>> params = independent_params(
        ...     torch.zeros(4, 6), torch.ones(4, 6, dtype=torch.bool),
        ...     torch.zeros(4, 3), torch.ones(4, 3, dtype=torch.bool),
        ...     small, {h: torch.ones_like(v, dtype=torch.bool) for h, v in small.items()})
        >>> params["blueprint", "logits"].shape, params["blueprint", "mask"].shape
        (torch.Size([4, 6, 3, 13]), torch.Size([4, 6, 13]))
    """
    batch, ops, n = op_logits.shape[:-1], layout.NUM_OPS, slot_logits.shape[-1]
    params: dict[str, dict[str, Tensor]] = {
        "op": {"logits": op_logits, "mask": op_mask},
        "slot": {
            "logits": slot_logits.unsqueeze(-2).expand(*batch, ops, n),  # [*B, 6, N]
            "mask": slot_mask_union.unsqueeze(-2).expand(*batch, ops, n),
        },
    }
    for h in layout.SMALL_HEADS:
        logits, k = small_logits[h], small_logits[h].shape[-1]
        params[h] = {
            "logits": logits[..., None, None, :].expand(*batch, ops, n, k),  # [*B, 6, N, n_h]
            "mask": small_mask_union[h].unsqueeze(-2).expand(*batch, ops, k),  # [*B, 6, n_h]
        }
    return TensorDict(params, batch_size=batch)


def uniform_params(*, batch: tuple[int, ...] = (), num_slots: int = 1) -> TensorDict:
    """Zero logits and all-True masks in the full shapes (a uniform policy; for tests and docs).

    Examples:
        >>> uniform_params(batch=(2,), num_slots=4)["slot", "logits"].shape
        torch.Size([2, 6, 4])
    """
    ops, sizes = layout.NUM_OPS, layout.head_sizes(num_slots)
    params = {
        "op": {"logits": torch.zeros(*batch, ops), "mask": torch.ones(*batch, ops, dtype=torch.bool)},
        "slot": {
            "logits": torch.zeros(*batch, ops, num_slots),
            "mask": torch.ones(*batch, ops, num_slots, dtype=torch.bool),
        },
    }
    for h in layout.SMALL_HEADS:
        params[h] = {
            "logits": torch.zeros(*batch, ops, num_slots, sizes[h]),
            "mask": torch.ones(*batch, ops, sizes[h], dtype=torch.bool),
        }
    return TensorDict(params, batch_size=batch)
