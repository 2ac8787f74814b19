"""Pick-one-entity actors and critics for any env whose observation is a set of entities.

The Esper policy (:mod:`torchrl_slots.policy`) owns a factored action over a fixed grid. Other
envs often only need "pick one of these entities" (plus, maybe, one extra categorical choice such
as a verb). :func:`make_entity_actor` builds that as a plain TorchRL ``ProbabilisticActor`` from
the same parts:

``(entities, mask) -> SlotEncoderModule -> (cls, entity_repr) -> EntityPointer -> logits``
``-> MaskedCategorical`` (one head), or ``CompositeDistribution`` of one ``MaskedCategorical`` per
head (two heads, independent given the state; see TORCHRL_NOTES.md "Composite").

:func:`make_entity_critic` is a ``ValueOperator``: its own encoder pass and an MLP on the CLS.

Keys are the caller's: the encoder reads ``entity_key`` and ``mask_key`` (and two grid-position
keys only when the encoder has positions). The pointer's legality mask defaults to ``mask_key``.
A state with no legal entity raises a ``ValueError`` naming the mask key and the batch index
(``MaskedCategorical`` would give NaN there); the check reads tensor values, so it is skipped
while ``torch.compile`` traces.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from tensordict.nn import CompositeDistribution, InteractionType, TensorDictModule, TensorDictSequential
from tensordict.utils import NestedKey, unravel_key
from torch import nn
from torchrl.data import TensorSpec
from torchrl.modules import MaskedCategorical, ProbabilisticActor, ValueOperator

from torchrl_slots.modules.encoder import SlotEncoderModule, SlotTransformerEncoder
from torchrl_slots.modules.init import init_output_layer, init_weights
from torchrl_slots.modules.pointer import PointerHead

__all__ = ["EntityPointer", "check_entity_mask", "make_entity_actor", "make_entity_critic"]

logger = logging.getLogger(__name__)

EncoderLike = SlotTransformerEncoder | SlotEncoderModule


def check_entity_mask(mask: torch.Tensor, mask_key: NestedKey = "mask", what: str = "entity") -> None:
    """Raise ``ValueError`` unless every row of ``mask`` ``[*B, N]`` has a True entry.

    Args:
        mask: bool ``[*B, N]``, True = the entity may be picked.
        mask_key: the key the mask was read from, for the message only.
        what: what one entry is, for the message only. Default ``"entity"``.

    Raises:
        ValueError: naming ``mask_key``, the first batch index with no legal entity and how many
            rows have none; or for a non-bool / 0-dim mask.

    Examples:
        >>> check_entity_mask(torch.tensor([[True, False], [False, True]]))
        >>> check_entity_mask(torch.tensor([[True, False], [False, False]]), ("items", "mask"))
        Traceback (most recent call last):
        ...
        ValueError: no valid entity in ('items', 'mask') at batch index (1,) (1 of 2 states have none): every state needs at least one True entry (MaskedCategorical gives NaN otherwise)
    """
    if mask.dtype != torch.bool or mask.dim() < 1:
        raise ValueError(f"{mask_key!r} must be a bool tensor [*B, N], got {mask.dtype} {tuple(mask.shape)}")
    if torch.compiler.is_compiling():
        return
    empty = ~mask.any(dim=-1)  # [*B]
    if bool(empty.any()):
        first = tuple(int(i) for i in empty.nonzero()[0])
        raise ValueError(
            f"no valid {what} in {mask_key!r} at batch index {first} ({int(empty.sum())} of {empty.numel()} "
            "states have none): every state needs at least one True entry (MaskedCategorical gives NaN otherwise)"
        )


class EntityPointer(nn.Module):
    """:class:`PointerHead` from the CLS to the entities, with the empty-mask check.

    Args:
        embed_dim: ``D``, width of the CLS and of each entity's representation.
        key_dim: query/key width of the pointer. Default 64.
        mask_key: the key the mask comes from (error messages only). Default ``"mask"``.

    The query layer starts at orthogonal gain 0.01, so the initial policy is near uniform.

    Examples:
        >>> ptr = EntityPointer(embed_dim=8, key_dim=4)
        >>> cls, entity_repr = torch.randn(3, 8), torch.randn(3, 5, 8)
        >>> mask = torch.tensor([True, True, False, True, False]).expand(3, 5)
        >>> logits, out_mask = ptr(cls, entity_repr, mask)
        >>> logits.shape, bool((logits.softmax(-1)[~mask] == 0).all()), out_mask is mask
        (torch.Size([3, 5]), True, True)
    """

    def __init__(self, *, embed_dim: int, key_dim: int = 64, mask_key: NestedKey = "mask") -> None:
        super().__init__()
        self.mask_key = mask_key
        self.head = PointerHead(context_dim=embed_dim, slot_dim=embed_dim, key_dim=key_dim)
        init_weights(self.head)
        init_output_layer(self.head.query, std=0.01)

    def forward(
        self, cls: torch.Tensor, entity_repr: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``cls [*B, D], entity_repr [*B, N, D], mask [*B, N]`` -> ``(logits [*B, N], mask)``."""
        check_entity_mask(mask, self.mask_key)
        return self.head(cls, entity_repr, mask=mask), mask  # [*B, N], [*B, N]


class _ExtraHead(nn.Module):
    """``Linear`` from the CLS to ``size`` logits, with an all-legal mask unless one is given."""

    def __init__(self, embed_dim: int, size: int, mask_key: NestedKey | None) -> None:
        super().__init__()
        self.mask_key = mask_key
        self.linear = init_output_layer(nn.Linear(embed_dim, size), std=0.01)

    def forward(self, cls: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.linear(cls)  # [*B, K]
        if mask is None:
            return logits, torch.ones_like(logits, dtype=torch.bool)  # [*B, K]
        check_entity_mask(mask, self.mask_key, what="choice")
        return PointerHead.apply_mask(logits, mask), mask  # [*B, K]


def _encoder_module(
    encoder: EncoderLike,
    entity_key: NestedKey | None,
    mask_key: NestedKey | None,
    position_keys: tuple[NestedKey, NestedKey] | None,
    out_keys: Sequence[NestedKey],
) -> SlotEncoderModule:
    """Wrap a bare encoder with the caller's keys, or check a ready module against them."""
    if isinstance(encoder, SlotEncoderModule):
        if position_keys is not None and len(encoder.in_keys) != 4:
            raise ValueError(f"position_keys given, but the encoder module reads no positions: {encoder.in_keys!r}")
        given = [entity_key, mask_key, *(position_keys or (None, None))]
        for i, (key, have) in enumerate(zip(given, encoder.in_keys)):
            if key is not None and unravel_key(key) != unravel_key(have):
                raise ValueError(f"key {key!r} differs from the encoder module's in_keys[{i}] = {have!r}")
        return encoder
    if not isinstance(encoder, SlotTransformerEncoder):
        raise TypeError(f"encoder must be a SlotTransformerEncoder or SlotEncoderModule, got {type(encoder).__name__}")
    if entity_key is None or mask_key is None:
        raise ValueError("entity_key and mask_key are required with a bare SlotTransformerEncoder, got None")
    if (encoder.positional is None) != (position_keys is None):
        raise ValueError(
            f"an encoder with positional={encoder.positional_kind!r} needs "
            f"{'no' if encoder.positional is None else 'two'} position_keys (row, col), got {position_keys!r}"
        )
    in_keys = [entity_key, mask_key, *(position_keys or ())]
    return SlotEncoderModule(encoder, in_keys=in_keys, out_keys=out_keys)


def make_entity_actor(
    encoder: EncoderLike,
    *,
    entity_key: NestedKey | None = None,
    mask_key: NestedKey | None = None,
    position_keys: tuple[NestedKey, NestedKey] | None = None,
    action_mask_key: NestedKey | None = None,
    extra_head_size: int | None = None,
    extra_mask_key: NestedKey | None = None,
    action_key: NestedKey = "action",
    head_names: tuple[str, str] = ("entity", "extra"),
    key_dim: int = 64,
    hidden_key: NestedKey = "hidden",
    params_key: NestedKey = "params",
    spec: TensorSpec | None = None,
    return_log_prob: bool = True,
    default_interaction_type: InteractionType = InteractionType.RANDOM,
) -> ProbabilisticActor:
    """A ``ProbabilisticActor`` that picks one entity (and optionally one extra categorical).

    Args:
        encoder: a :class:`SlotTransformerEncoder` (wrapped here with the keys below) or a ready
            :class:`SlotEncoderModule` (its in/out keys are used; keys given here must match).
        entity_key: float ``[*B, N, F]`` entity features; ``F`` = ``encoder.slot_dim``.
        mask_key: bool ``[*B, N]``, True = the entity exists (the encoder's mask).
        position_keys: ``(row, col)`` integer ids; only for an encoder with grid positions, and
            required there. Default ``None`` (``positional="none"``: permutation-equivariant).
        action_mask_key: bool ``[*B, N]``, which entities may be picked. Default: ``mask_key``.
        extra_head_size: ``K`` for a second categorical head on the CLS (e.g. a verb). Default
            ``None``: one head, the action is the entity index at ``action_key``.
        extra_mask_key: optional bool ``[*B, K]`` legality mask of the extra head.
        action_key: where the action goes: the entity index ``[*B]`` (one head), or the root of
            ``(action_key, head_names[i])`` (two heads). Default ``"action"``.
        head_names: names of the entity and extra heads (two heads only). Default
            ``("entity", "extra")``.
        key_dim: pointer query/key width. Default 64.
        hidden_key: root of the encoder outputs ``(hidden_key, "cls")`` and
            ``(hidden_key, "entity_repr")`` for a bare encoder. Default ``"hidden"``.
        params_key: root of the distribution params ``(params_key, head, "logits" | "mask")``.
            Default ``"params"``.
        spec: optional action spec for the actor (e.g. ``env.full_action_spec[action_key]``).
        return_log_prob: write the sample's log-prob(s). Default ``True``.
        default_interaction_type: outside any ``set_exploration_type`` context. Default
            ``InteractionType.RANDOM`` (``ProbabilisticActor``'s own default is DETERMINISTIC).

    Returns:
        The actor; pass it to ``ClipPPOLoss(actor_network=actor, ...)`` as is. Log-probs go to
        ``actor.log_prob_keys`` (``"action_log_prob"`` for one head, one per head for two).

    Raises:
        ValueError: for missing entity/mask keys with a bare encoder, keys that differ from a
            ready module's in_keys, position keys given to (or missing from) an encoder without
            (with) positions, or bad ``head_names``; in forward, for a state with no legal entity
            or no legal extra choice (:func:`check_entity_mask`).
        TypeError: for an ``encoder`` of another type.

    Examples:
        >>> from tensordict import TensorDict
        >>> enc = SlotTransformerEncoder(slot_dim=5, embed_dim=8, num_heads=2, num_layers=1,
        ...                              ffn_dim=16, positional="none")
        >>> actor = make_entity_actor(enc, entity_key=("obs", "units"), mask_key=("obs", "alive"))
        >>> td = TensorDict({"obs": {"units": torch.randn(4, 6, 5),
        ...                          "alive": torch.arange(6).expand(4, 6) < 3}}, batch_size=[4])
        >>> td = actor(td)
        >>> bool((td["action"] < 3).all()), td["action_log_prob"].shape
        (True, torch.Size([4]))
        >>> actor2 = make_entity_actor(enc, entity_key=("obs", "units"), mask_key=("obs", "alive"),
        ...                            extra_head_size=3, head_names=("target", "verb"))
        >>> td = actor2(td)
        >>> td["action", "target"].shape, td["action", "verb"].shape, actor2.log_prob_keys
        (torch.Size([4]), torch.Size([4]), [('action', 'target_log_prob'), ('action', 'verb_log_prob')])
    """
    cls_key, repr_key = unravel_key((hidden_key, "cls")), unravel_key((hidden_key, "entity_repr"))
    enc_module = _encoder_module(encoder, entity_key, mask_key, position_keys, (cls_key, repr_key))
    cls_key, repr_key = enc_module.out_keys[:2]
    if extra_head_size is not None and (
        isinstance(extra_head_size, bool) or not isinstance(extra_head_size, int) or extra_head_size < 1
    ):
        raise ValueError(f"extra_head_size must be None or a positive int (categories), got {extra_head_size!r}")
    pick_mask_key = action_mask_key if action_mask_key is not None else enc_module.in_keys[1]
    embed_dim = enc_module.encoder.embed_dim
    entity_name = head_names[0]
    pointer = TensorDictModule(
        EntityPointer(embed_dim=embed_dim, key_dim=key_dim, mask_key=pick_mask_key),
        in_keys=[cls_key, repr_key, pick_mask_key],
        out_keys=[(params_key, entity_name, "logits"), (params_key, entity_name, "mask")],
    )
    logger.debug("entity actor: %s -> %s (extra head: %s)", enc_module.in_keys, action_key, extra_head_size)
    common = {"return_log_prob": return_log_prob, "default_interaction_type": default_interaction_type}
    if extra_head_size is None:
        return ProbabilisticActor(
            TensorDictSequential(enc_module, pointer),
            in_keys={"logits": (params_key, entity_name, "logits"), "mask": (params_key, entity_name, "mask")},
            out_keys=[action_key],
            spec=spec,
            distribution_class=MaskedCategorical,
            **common,
        )
    if len(head_names) != 2 or head_names[0] == head_names[1]:
        raise ValueError(f"head_names must be two distinct names (entity, extra), got {head_names!r}")
    extra_name = head_names[1]
    extra = TensorDictModule(
        _ExtraHead(embed_dim, extra_head_size, extra_mask_key),
        in_keys=[cls_key] + ([extra_mask_key] if extra_mask_key is not None else []),
        out_keys=[(params_key, extra_name, "logits"), (params_key, extra_name, "mask")],
    )
    return ProbabilisticActor(
        TensorDictSequential(enc_module, pointer, extra),
        in_keys=[params_key],
        out_keys=[(action_key, n) for n in head_names],
        spec=spec,
        distribution_class=CompositeDistribution,
        distribution_kwargs={
            "distribution_map": {n: MaskedCategorical for n in head_names},
            "name_map": {n: unravel_key((action_key, n)) for n in head_names},
        },
        **common,
    )


class _CLSValueNet(nn.Module):
    """Encoder + MLP on its CLS: the tensors of the encoder's in_keys in, ``[*B, 1]`` out."""

    def __init__(self, encoder: SlotTransformerEncoder, num_cells: Sequence[int]) -> None:
        super().__init__()
        self.encoder = encoder
        layers: list[nn.Module] = []
        width = encoder.embed_dim
        for cells in num_cells:
            layers += [nn.Linear(width, cells), nn.Tanh()]
            width = cells
        self.mlp = init_weights(nn.Sequential(*layers))
        self.out = init_output_layer(nn.Linear(width, 1), std=1.0)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        cls, _ = self.encoder(*tensors)  # [*B, D]
        return self.out(self.mlp(cls))  # [*B, 1]


def make_entity_critic(
    encoder: EncoderLike,
    *,
    entity_key: NestedKey | None = None,
    mask_key: NestedKey | None = None,
    position_keys: tuple[NestedKey, NestedKey] | None = None,
    num_cells: Sequence[int] = (64,),
    out_key: NestedKey = "state_value",
) -> ValueOperator:
    """A ``ValueOperator``: the encoder's CLS through an MLP (``Tanh``) to ``[*B, 1]``.

    The critic runs its own encoder pass, so GAE can call it alone. Pass a different encoder
    from the actor's for separate actor/critic networks (the usual PPO choice), or the same one
    to share it.

    Args:
        encoder: a :class:`SlotTransformerEncoder` or :class:`SlotEncoderModule` (its in_keys).
        entity_key, mask_key, position_keys: as in :func:`make_entity_actor`.
        num_cells: hidden widths of the MLP. Default ``(64,)``.
        out_key: where the value goes. Default ``"state_value"``.

    Examples:
        >>> from tensordict import TensorDict
        >>> enc = SlotTransformerEncoder(slot_dim=5, embed_dim=8, num_heads=2, num_layers=1,
        ...                              ffn_dim=16, positional="none")
        >>> critic = make_entity_critic(enc, entity_key=("obs", "units"), mask_key=("obs", "alive"))
        >>> td = TensorDict({"obs": {"units": torch.randn(4, 6, 5),
        ...                          "alive": torch.ones(4, 6, dtype=torch.bool)}}, batch_size=[4])
        >>> critic(td)["state_value"].shape
        torch.Size([4, 1])
    """
    module = _encoder_module(encoder, entity_key, mask_key, position_keys, ("cls", "entity_repr"))
    net = _CLSValueNet(module.encoder, num_cells)
    return ValueOperator(net, in_keys=list(module.in_keys), out_keys=[out_key])
