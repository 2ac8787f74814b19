"""One distribution over the whole factored action (docs/design.md "One distribution for the factored action").

:class:`FactoredActionDistribution` samples ``op``; then ``slot`` from row ``op`` of the pointer
logits; then each small head from its logits at ``(op, slot)`` with mask row ``op``. Its
``log_prob`` evaluates every head at the **stored** op and slot, so TorchRL's unmodified
``ClipPPOLoss`` scores a stored action exactly (ratio 1 at unchanged parameters).

The params (every head's logits and mask, dense or additive small heads) are described, checked
and built in :mod:`torchrl_slots.modules.params`; the tensor math (log-probs, the sampling chain,
the exact per-head entropies and their sparse evaluation) is :mod:`torchrl_slots.modules.factored_core`.

Keys: actions ``("action", h)`` int64 ``[*B]`` (:data:`ACTION_KEYS`), log-probs
``("action", h + "_log_prob")`` (:data:`LOG_PROB_KEYS`, TorchRL's per-head default), entropies
``("action", h + "_entropy")`` (:data:`ENTROPY_KEYS`).

The entropy is exact and split per head (op ``H(op)``; slot ``sum_o p(o) H(slot|o)``; small head
h ``sum_o p(o) sum_n p(n|o) H(h|o,n)``), with ``p(o)`` and ``p(n|o)`` constant for the gradient
(see :mod:`~torchrl_slots.modules.factored_core`). An all-False mask row raises.

Why ``dists`` holds :class:`HeadEntropy` objects: ``ClipPPOLoss`` does not call ``entropy()`` on a
composite; it calls ``torchrl.modules.distributions.utils.composite_entropy``, which, for each value
of ``dist.dists``, asks ``has_analytic_entropy(component)`` (true when the component's class has an
``entropy`` other than ``torch.distributions.Distribution.entropy``), calls ``component.entropy()``
and keeps it when finite. It samples a component (``sample_and_log_prob`` / ``rsample``) only when
that entropy is missing or not finite, or under dynamo (compiling the loss is therefore not
supported; compiling the actor is). Our terms are always finite, so a component needs exactly an
``entropy()`` method and nothing else: :class:`HeadEntropy` has that (plus ``batch_shape``), and is
no ``Distribution``, since one head cannot be sampled or scored without the op and slot. Sampling
goes through :meth:`FactoredActionDistribution.sample`, e.g. in
:func:`torchrl_slots.modules.actor.make_factored_actor` (torchrl's ``ProbabilisticActor`` samples
component by component and is not supported).

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

from collections.abc import Mapping

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import CompositeDistribution, composite_lp_aggregate
from torch import distributions as D

from torchrl_slots import layout
from torchrl_slots.modules.factored_core import FactoredCore, argmax_masked, draw_masked, sum_heads
from torchrl_slots.modules.params import independent_params, split_params, uniform_params

__all__ = [
    "ACTION_KEY",
    "ACTION_KEYS",
    "ENTROPY_KEYS",
    "LOG_PROB_KEYS",
    "FactoredActionDistribution",
    "HeadEntropy",
    "independent_params",
    "uniform_params",
]

#: Root key of the action entries.
ACTION_KEY = "action"
#: ``("action", h)`` for every head, in sampling order.
ACTION_KEYS: tuple[tuple[str, str], ...] = tuple((ACTION_KEY, h) for h in layout.HEADS)
#: ``("action", h + "_log_prob")`` for every head (TorchRL's per-head log-prob keys).
LOG_PROB_KEYS: tuple[tuple[str, str], ...] = tuple((ACTION_KEY, f"{h}_log_prob") for h in layout.HEADS)
#: ``("action", h + "_entropy")`` for every head (what ``ClipPPOLoss`` reports per head).
ENTROPY_KEYS: tuple[tuple[str, str], ...] = tuple((ACTION_KEY, f"{h}_entropy") for h in layout.HEADS)

Tensor = torch.Tensor


class HeadEntropy:
    """One head's exact term of the joint entropy, as ``ClipPPOLoss``'s entropy helper reads it.

    Exactly what ``torchrl.modules.distributions.utils.composite_entropy`` (torchrl 0.14) uses of a
    component: a class-level ``entropy`` method (its ``has_analytic_entropy`` check) returning a
    finite ``[*B]`` tensor. Not a ``torch.distributions.Distribution``: a head has no ``sample`` or
    ``log_prob`` of its own (it depends on the op and slot drawn before it).

    Examples:
        >>> dist = FactoredActionDistribution(uniform_params(batch=(2,), num_slots=3))
        >>> view = dist.dists["action", "op"]
        >>> view, view.entropy().shape, hasattr(view, "sample")
        (HeadEntropy(head='op'), torch.Size([2]), False)
    """

    __slots__ = ("_core", "head")

    def __init__(self, core: FactoredCore, head: str) -> None:
        self._core, self.head = core, head

    @property
    def batch_shape(self) -> torch.Size:
        return self._core.batch_shape

    def entropy(self) -> Tensor:
        return self._core.entropies[self.head]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(head={self.head!r})"


class FactoredActionDistribution(CompositeDistribution):
    """Joint distribution of the factored action: op -> slot -> the small heads.

    Args:
        params: a TensorDict (or nested mapping) with ``(h, "logits")`` and ``(h, "mask")`` for
            every head in :data:`torchrl_slots.layout.HEADS`, shaped as in
            :mod:`torchrl_slots.modules.params`.

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
        logits, masks, slot_logits = split_params(params)
        self._core = FactoredCore(logits, masks, slot_logits)
        D.Distribution.__init__(self, self._core.batch_shape, validate_args=False)
        self.dists = {(ACTION_KEY, h): HeadEntropy(self._core, h) for h in layout.HEADS}
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
        return self._to_td(self._core.chain(draw_masked, shape), "", shape + self.batch_shape)

    @property
    def mode(self) -> TensorDictBase:
        """Argmax op, then argmax slot in that op's row, then argmax heads at (op, slot)."""
        return self._to_td(self._core.chain(argmax_masked, torch.Size()), "", self.batch_shape)

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
            return sum_heads(self._core.log_probs(self._actions(sample)))
        return self.log_prob_composite(sample, include_sum=False)

    def log_prob_composite(self, sample: TensorDictBase, *, include_sum: bool | None = None) -> TensorDictBase:
        """Per-head log-probs as a TensorDict, plus ``log_prob_key`` if ``include_sum``."""
        if include_sum is None:
            include_sum = composite_lp_aggregate()
        actions = self._actions(sample)
        lps = self._core.log_probs(actions)
        out = self._to_td(lps, "_log_prob", actions["op"].shape)
        if include_sum:
            out.set(self.log_prob_key, sum_heads(lps))
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
        return sum_heads(self._core.entropies)

    def dense_small_entropy(self, head: str) -> Tensor:
        """Small head ``head``'s entropy term ``[*B]`` as the plain dense sum over all ``6 N``
        (op, slot) pairs: the reference for the sparse path that :meth:`entropy` uses."""
        if head not in layout.SMALL_HEADS:
            raise ValueError(f"dense_small_entropy: expected one of {layout.SMALL_HEADS}, got {head!r}")
        return self._core.small_entropy(head, self._core.op_slot_log_probs()[2], dense=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_shape={tuple(self.batch_shape)}, num_slots={self.num_slots})"
