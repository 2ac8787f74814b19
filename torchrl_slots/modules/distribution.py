"""One distribution over the whole factored action (DESIGN.md "Policy: one joint distribution").

:class:`FactoredActionDistribution` samples ``op``; then ``slot`` from row ``op`` of the pointer
logits; then each small head from its logits at ``(op, slot)`` with mask row ``op``. Its
``log_prob`` evaluates every head at the **stored** op and slot, so TorchRL's unmodified
``ClipPPOLoss`` scores a stored action exactly (ratio 1 at unchanged parameters).

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

Keys: actions ``("action", h)`` int64 ``[*B]`` (:data:`ACTION_KEYS`), log-probs
``("action", h + "_log_prob")`` (:data:`LOG_PROB_KEYS`, TorchRL's per-head default), entropies
``("action", h + "_entropy")`` (:data:`ENTROPY_KEYS`).

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
``torch.compile`` (the gather has a data-dependent size) and in :func:`dense_small_entropy`.

Masked logits are filled with ``finfo(dtype).min`` (finite, so nothing becomes NaN), masked
entries add exactly 0 to the entropy, and a row with one legal value has log-prob and entropy
exactly 0 (DESIGN.md: an irrelevant head allows only index 0). An all-False row raises.

Why the components: ``ClipPPOLoss`` does not call ``entropy()`` on a composite; it calls
``torchrl.modules.distributions.utils.composite_entropy``, which calls ``entropy()`` on each
value of ``dist.dists``. So ``dists`` holds one read-only view per head whose ``entropy()`` is
that head's exact term. The views cannot ``sample``/``log_prob`` on their own (a head depends on
the op and slot): torchrl's ``ProbabilisticActor`` samples component by component, so use
:func:`torchrl_slots.modules.actor.make_factored_actor`, whose module calls this class's
:meth:`~FactoredActionDistribution.sample`.

Examples:
    >>> import torch
    >>> from torchrl_slots.modules.distribution import FactoredActionDistribution, uniform_params
    >>> _ = torch.manual_seed(0)
    >>> dist = FactoredActionDistribution(uniform_params(batch=(2,), num_slots=3))
    >>> action = dist.sample()
    >>> action["action", "slot"].shape, action["action", "op"].dtype
    (torch.Size([2]), torch.int64)
    >>> lp = dist.log_prob(action)
    >>> sorted(lp["action"].keys())[:2]
    ['alpha_curve_log_prob', 'alpha_speed_log_prob']
    >>> bool(torch.isclose(dist.joint_entropy(), dist.entropy().sum(dim="feature", reduce=True)).all())
    True
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import CompositeDistribution, composite_lp_aggregate
from torch import distributions as D

from torchrl_slots import layout

#: Root key of the action entries.
ACTION_KEY = "action"
#: ``("action", h)`` for every head, in sampling order.
ACTION_KEYS: tuple[tuple[str, str], ...] = tuple((ACTION_KEY, h) for h in layout.HEADS)
#: ``("action", h + "_log_prob")`` for every head (TorchRL's per-head log-prob keys).
LOG_PROB_KEYS: tuple[tuple[str, str], ...] = tuple((ACTION_KEY, f"{h}_log_prob") for h in layout.HEADS)
#: ``("action", h + "_entropy")`` for every head (what ``ClipPPOLoss`` reports per head).
ENTROPY_KEYS: tuple[tuple[str, str], ...] = tuple((ACTION_KEY, f"{h}_entropy") for h in layout.HEADS)

Tensor = torch.Tensor
_COMPONENT_ERROR = (
    "a FactoredActionDistribution head cannot be sampled or scored on its own (it depends on "
    "the op and slot); call sample()/log_prob() on the FactoredActionDistribution, e.g. through "
    "torchrl_slots.modules.actor.make_factored_actor (torchrl's ProbabilisticActor samples "
    "composite components one by one and is not supported)."
)


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


def _draw(logits: Tensor, mask: Tensor) -> Tensor:
    return D.Categorical(logits=_masked_logits(logits, mask), validate_args=False).sample()


def _argmax(logits: Tensor, mask: Tensor) -> Tensor:
    return _masked_logits(logits, mask).argmax(-1)


def _total(per_head: Mapping[str, Tensor]) -> Tensor:
    return torch.stack(list(per_head.values())).sum(0)


def _check_shape(name: str, t: Tensor, expected: tuple[int, ...]) -> None:
    if tuple(t.shape) != expected:
        raise ValueError(f"{name}: expected shape {expected}, got {tuple(t.shape)}")


def _split_params(
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
    _check_nonempty(masks)
    return logits, masks, slot_logits


def _check_nonempty(masks: dict[str, Tensor]) -> None:
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


class _FactoredCore:
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


class _HeadComponent(D.Distribution):
    """Read-only view of one head: ``entropy()`` is its exact term of the joint entropy."""

    arg_constraints: dict = {}

    def __init__(self, core: _FactoredCore, head: str) -> None:
        self._core, self.head = core, head
        super().__init__(core.batch_shape, validate_args=False)

    def entropy(self) -> Tensor:
        return self._core.entropies[self.head]

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        raise NotImplementedError(_COMPONENT_ERROR)

    def log_prob(self, value: Tensor) -> Tensor:
        raise NotImplementedError(_COMPONENT_ERROR)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(head={self.head!r})"


class FactoredActionDistribution(CompositeDistribution):
    """Joint distribution of the factored action: op -> slot -> the small heads.

    Args:
        params: a TensorDict (or nested mapping) with ``(h, "logits")`` and ``(h, "mask")`` for
            every head in :data:`torchrl_slots.layout.HEADS`, shaped as in the module docstring.

    Raises:
        ValueError: on a wrong shape, or an all-False mask row (naming head and batch index).

    Examples:
        >>> import math, torch
        >>> params = uniform_params(batch=(), num_slots=2)
        >>> params["op", "mask"] = torch.tensor([True, False, False, False, False, False])
        >>> dist = FactoredActionDistribution(params)  # only WAIT is legal, the rest uniform
        >>> dist.mode["action", "op"].item(), dist.entropy()["action", "op_entropy"].item()
        (0, 0.0)
        >>> round(dist.joint_entropy().item(), 4) == round(math.log(2 * 13 * 4 * 3 * 3 * 4 * 3), 4)
        True
        >>> params["slot", "mask"][1] = False
        >>> FactoredActionDistribution(params)
        Traceback (most recent call last):
        ...
        ValueError: FactoredActionDistribution: head 'slot' has an all-False mask row at batch index (), op row 1; ...
    """

    def __init__(self, params: TensorDictBase | Mapping) -> None:
        logits, masks, slot_logits = _split_params(params)
        self._core = _FactoredCore(logits, masks, slot_logits)
        D.Distribution.__init__(self, self._core.batch_shape, validate_args=False)
        self.dists = {(ACTION_KEY, h): _HeadComponent(self._core, h) for h in layout.HEADS}
        self.log_prob_key = None
        self.entropy_key = None
        self.aggregate_probabilities = None

    @classmethod
    def from_flat(cls, **flat: Tensor | None) -> FactoredActionDistribution:
        """Build from keyword arguments ``<head>_logits`` / ``<head>_mask`` and, for small heads
        in the additive form, ``<head>_slot_logits`` (what a ``ProbabilisticTensorDictModule``
        with dict ``in_keys`` passes)."""
        known = {f"{h}_{part}" for h in layout.HEADS for part in ("logits", "mask")}
        known |= {f"{h}_slot_logits" for h in layout.SMALL_HEADS}
        unknown = sorted(set(flat) - known)
        if unknown:
            raise KeyError(f"FactoredActionDistribution.from_flat: unknown entries {unknown}")
        params: dict[str, dict[str, Tensor]] = {}
        for h in layout.HEADS:
            for part in ("logits", "mask"):
                value = flat.get(f"{h}_{part}")
                if value is None:
                    raise KeyError(f"FactoredActionDistribution.from_flat: missing {h}_{part}")
                params.setdefault(h, {})[part] = value
            if flat.get(f"{h}_slot_logits") is not None:
                params[h]["slot_logits"] = flat[f"{h}_slot_logits"]
        return cls(params)

    @property
    def num_slots(self) -> int:
        """N, the number of slots."""
        return self._core.logits["slot"].shape[-1]

    def _to_td(self, values: Mapping[str, Tensor], suffix: str, shape: torch.Size) -> TensorDict:
        return TensorDict({(ACTION_KEY, f"{h}{suffix}"): v for h, v in values.items()}, batch_size=shape)

    def sample(self, sample_shape: torch.Size | tuple[int, ...] | None = None) -> TensorDictBase:
        """Draw ``("action", h)`` for every head; always legal. Batch ``[*sample_shape, *B]``."""
        shape = torch.Size(sample_shape or ())
        return self._to_td(self._core.chain(_draw, shape), "", shape + self.batch_shape)

    @property
    def mode(self) -> TensorDictBase:
        """Argmax op, then argmax slot in that op's row, then argmax heads at (op, slot)."""
        return self._to_td(self._core.chain(_argmax, torch.Size()), "", self.batch_shape)

    @property
    def deterministic_sample(self) -> TensorDictBase:
        """Same as :attr:`mode` (used under ``InteractionType.DETERMINISTIC``)."""
        return self.mode

    def _actions(self, sample: TensorDictBase) -> dict[str, Tensor]:
        return {h: sample.get(key) for h, key in zip(layout.HEADS, ACTION_KEYS)}

    def log_prob(self, sample: TensorDictBase) -> TensorDictBase | Tensor:
        """Per-head log-probs ``("action", h + "_log_prob")`` of a stored action, every head
        scored at the stored op and slot (their sum under the legacy aggregate mode)."""
        if composite_lp_aggregate():
            return _total(self._core.log_probs(self._actions(sample)))
        return self.log_prob_composite(sample, include_sum=False)

    def log_prob_composite(self, sample: TensorDictBase, *, include_sum: bool | None = None) -> TensorDictBase:
        """Per-head log-probs as a TensorDict, plus ``log_prob_key`` if ``include_sum``."""
        if include_sum is None:
            include_sum = composite_lp_aggregate()
        actions = self._actions(sample)
        lps = self._core.log_probs(actions)
        out = self._to_td(lps, "_log_prob", actions["op"].shape)
        if include_sum:
            out.set(self.log_prob_key, _total(lps))
        return out

    def entropy(
        self, samples_mc: int = 1, *, aggregate_probabilities: bool | None = None, include_sum: bool | None = None
    ) -> TensorDictBase | Tensor:
        """Exact per-head entropies ``("action", h + "_entropy")`` (their sum under the legacy
        aggregate mode). ``samples_mc`` is ignored (nothing is estimated)."""
        if composite_lp_aggregate():
            return self.joint_entropy()
        return self.entropy_composite(samples_mc, include_sum=include_sum)

    def entropy_composite(self, samples_mc: int = 1, *, include_sum: bool | None = None) -> TensorDictBase:
        """Exact per-head entropies as a TensorDict, plus ``entropy_key`` if ``include_sum``."""
        if include_sum is None:
            include_sum = composite_lp_aggregate()
        out = self._to_td(self._core.entropies, "_entropy", self.batch_shape)
        if include_sum:
            out.set(self.entropy_key, self.joint_entropy())
        return out

    def joint_entropy(self) -> Tensor:
        """Entropy of the whole factored action ``[*B]`` (the sum of the per-head terms)."""
        return _total(self._core.entropies)

    def dense_small_entropy(self, head: str) -> Tensor:
        """Small head ``head``'s entropy term ``[*B]`` as the plain dense sum over all ``6 N``
        (op, slot) pairs: the reference for the sparse path that :meth:`entropy` uses."""
        if head not in layout.SMALL_HEADS:
            raise ValueError(f"dense_small_entropy: expected one of {layout.SMALL_HEADS}, got {head!r}")
        return self._core.small_entropy(head, self._core.op_slot_log_probs()[2], dense=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_shape={tuple(self.batch_shape)}, num_slots={self.num_slots})"


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
