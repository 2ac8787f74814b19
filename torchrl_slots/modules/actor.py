"""The actor: a params module followed by :class:`FactoredActionDistribution` (recipe (b)).

:func:`make_factored_actor` chains ``params_module`` (anything that writes the params entries
under ``"params"``) and a tensordict ``ProbabilisticTensorDictModule`` over
:class:`~torchrl_slots.modules.distribution.FactoredActionDistribution` in a
``ProbabilisticTensorDictSequential``.

Why recipe (b) (docs/torchrl-notes.md "Composite (factored) discrete actions") and not torchrl's
``ProbabilisticActor``: tensordict's ``ProbabilisticTensorDictModule.forward`` samples through
the distribution's own ``sample()`` (``_dist_sample``), so the op -> slot -> rest chain runs in
one place, statelessly. torchrl's ``SafeProbabilisticModule.forward`` (the module inside
``ProbabilisticActor``) instead calls ``torchrl.modules.distributions.utils.sample_and_log_prob``
under RANDOM interaction with ``return_log_prob=True``, which samples a composite component by
component (recipe (a)); that needs an op component that remembers its draw for the others, i.e.
state hidden in the distribution. The price of (b): the actor is not a ``ProbabilisticActor``
instance and has no action ``spec``. ``ClipPPOLoss`` only needs ``get_dist``,
``log_prob_keys`` and ``dist_sample_keys``, which the sequence provides.

The distribution reads its params as leaf keys (``("params", h, "logits")``, ...), not the
``"params"`` sub-tensordict, so the actor's ``in_keys`` are exactly ``params_module.in_keys``.

Defaults differ from ``ProbabilisticActor``'s: ``default_interaction_type`` is RANDOM (a plain
``actor(td)`` or ``env.rollout(actor)`` samples); under
``set_exploration_type(ExplorationType.DETERMINISTIC)`` (or MODE) the actor returns the argmax
chain. ``Collector`` sets RANDOM itself.

The params module must never read ``("action", ...)``: the collector's carrier tensordict still
holds the previous step's action (docs/torchrl-notes.md); :func:`make_factored_actor` refuses it.

Examples:
    >>> import torch
    >>> from tensordict import TensorDict
    >>> from tensordict.nn import TensorDictModule
    >>> from torchrl_slots.modules.distribution import ACTION_KEYS, uniform_params
    >>> class Uniform(torch.nn.Module):
    ...     def forward(self, obs):
    ...         p = uniform_params(batch=obs.shape[:-1], num_slots=3)
    ...         return tuple(p[k[1:]] for k in param_keys().values())
    >>> params_module = TensorDictModule(Uniform(), in_keys=["obs"], out_keys=list(param_keys().values()))
    >>> actor = make_factored_actor(params_module)
    >>> td = actor(TensorDict({"obs": torch.randn(4, 2)}, batch_size=[4]))
    >>> td["action", "op"].shape, ("action", "slot_log_prob") in td.keys(True)
    (torch.Size([4]), True)
"""

from __future__ import annotations

from tensordict.nn import (
    InteractionType,
    ProbabilisticTensorDictModule,
    ProbabilisticTensorDictSequential,
    TensorDictModuleBase,
    composite_lp_aggregate,
)
from tensordict.utils import NestedKey, unravel_key

from torchrl_slots import layout
from torchrl_slots.modules.distribution import ACTION_KEY, ACTION_KEYS, FactoredActionDistribution

#: Default root key of the params entries.
PARAMS_KEY = "params"


def param_keys(params_key: NestedKey = PARAMS_KEY, *, additive: bool = False) -> dict[str, NestedKey]:
    """The params entries: ``{"op_logits": ("params", "op", "logits"), "op_mask": ..., ...}``.

    16 entries (logits and mask of every head); with ``additive=True`` also
    ``("params", h, "slot_logits")`` for the 6 small heads, whose logits are then in the additive
    form (op term ``[*B, 6, n_h]`` + slot term ``[*B, N, n_h]``, see
    :mod:`~torchrl_slots.modules.distribution`). The names are the keyword arguments of
    :meth:`FactoredActionDistribution.from_flat`; the values are where the params module writes.

    Examples:
        >>> keys = param_keys()
        >>> len(keys), keys["slot_mask"]
        (16, ('params', 'slot', 'mask'))
        >>> len(param_keys(additive=True)), param_keys(additive=True)["blueprint_slot_logits"]
        (22, ('params', 'blueprint', 'slot_logits'))
    """
    keys = {
        f"{h}_{part}": unravel_key((params_key, h, part)) for h in layout.HEADS for part in ("logits", "mask")
    }
    if additive:
        keys.update({f"{h}_slot_logits": unravel_key((params_key, h, "slot_logits")) for h in layout.SMALL_HEADS})
    return keys


def make_factored_sampler(
    *,
    params_key: NestedKey = PARAMS_KEY,
    additive: bool = False,
    return_log_prob: bool = True,
    default_interaction_type: InteractionType = InteractionType.RANDOM,
) -> ProbabilisticTensorDictModule:
    """The probabilistic module alone: reads :func:`param_keys`, writes ``("action", h)`` and,
    with ``return_log_prob``, ``("action", h + "_log_prob")``.

    Args:
        params_key: root key of the params entries. Defaults to ``"params"``.
        additive: also read ``(params_key, h, "slot_logits")`` of the small heads (the additive
            form, see :func:`param_keys`). Defaults to ``False``.
        return_log_prob: write the per-head log-probs of the sample. Defaults to ``True``.
        default_interaction_type: used when no ``set_exploration_type`` context is active.
            Defaults to ``InteractionType.RANDOM``.

    Raises:
        ValueError: if tensordict's legacy aggregate log-prob mode is on
            (``set_composite_lp_aggregate(True)``): ``ClipPPOLoss`` would then see one action key.
    """
    if composite_lp_aggregate(nowarn=True):
        raise ValueError(
            "composite_lp_aggregate() is True: the factored actor needs per-head log-probs; "
            "do not enable tensordict's legacy aggregate mode"
        )
    return ProbabilisticTensorDictModule(
        in_keys=param_keys(params_key, additive=additive),
        out_keys=list(ACTION_KEYS),
        distribution_class=FactoredActionDistribution.from_flat,
        return_log_prob=return_log_prob,
        default_interaction_type=default_interaction_type,
    )


def _check_params_module(params_module: TensorDictModuleBase, params_key: NestedKey,
                         additive: bool | None = None) -> bool:
    """Refuse a params module that reads actions or misses entries; return whether it writes
    the small heads in the additive form (``additive`` when given: a module that writes the whole
    ``params_key`` sub-tensordict at once does not list its leaves)."""
    for key in params_module.in_keys:
        key = unravel_key(key)
        if (key if isinstance(key, str) else key[0]) == ACTION_KEY:
            raise ValueError(
                f"params_module reads {key!r}: the params must not depend on ('action', ...) "
                "keys (the collector's carrier tensordict still holds the previous action)"
            )
    produced = {unravel_key(k) for k in params_module.out_keys}

    def is_produced(key: NestedKey) -> bool:
        key = (key,) if isinstance(key, str) else key
        return any(unravel_key(key[:i]) in produced for i in range(1, len(key) + 1))

    missing = [k for k in param_keys(params_key).values() if not is_produced(k)]
    if missing:
        raise ValueError(f"params_module does not write the params entries {missing}")
    if additive is not None:
        return additive
    additive = [unravel_key((params_key, h, "slot_logits")) for h in layout.SMALL_HEADS]
    written = [k for k in additive if k in produced]
    if written and len(written) != len(additive):
        raise ValueError(
            f"params_module writes {written} but not {[k for k in additive if k not in produced]}: "
            "the additive form needs a slot term for every small head (or none for the dense form)"
        )
    return bool(written)


def make_factored_actor(
    params_module: TensorDictModuleBase,
    *,
    return_log_prob: bool = True,
    default_interaction_type: InteractionType = InteractionType.RANDOM,
    params_key: NestedKey = PARAMS_KEY,
    additive: bool | None = None,
) -> ProbabilisticTensorDictSequential:
    """Chain ``params_module`` and the factored action distribution into one actor.

    If ``params_module`` writes ``(params_key, h, "slot_logits")`` for every small head, the
    distribution reads the additive form (see :func:`param_keys`), else the dense form; a module
    that writes the whole ``params_key`` sub-tensordict as one entry says which with ``additive``.

    The result samples ``("action", h)`` for every head (and their per-head log-probs), and its
    ``get_dist(td)`` returns a :class:`FactoredActionDistribution`; pass it to
    ``torchrl.objectives.ClipPPOLoss(actor_network=actor, critic_network=critic)`` as is.

    Args:
        params_module: writes the entries of :func:`param_keys` (``("params", h, "logits")``
            and ``("params", h, "mask")``, plus ``("params", h, "slot_logits")`` of the small
            heads in the additive form); may read anything but ``("action", ...)``.
        return_log_prob: write per-head log-probs when sampling. Defaults to ``True``.
        default_interaction_type: interaction type outside any ``set_exploration_type``
            context. Defaults to ``InteractionType.RANDOM`` (``ProbabilisticActor``'s default is
            DETERMINISTIC).
        params_key: root key of the params entries. Defaults to ``"params"``.
        additive: the params form, when ``params_module`` writes ``params_key`` as one
            sub-tensordict (its ``out_keys`` then do not name the leaves). ``None`` (default):
            read it from ``out_keys``.

    Raises:
        ValueError: if ``params_module`` reads an ``("action", ...)`` key, does not write all
            params entries, writes the slot term of only some small heads, or the legacy
            aggregate log-prob mode is on.
    """
    additive = _check_params_module(params_module, params_key, additive)
    sampler = make_factored_sampler(
        params_key=params_key,
        additive=additive,
        return_log_prob=return_log_prob,
        default_interaction_type=default_interaction_type,
    )
    return ProbabilisticTensorDictSequential(params_module, sampler)
