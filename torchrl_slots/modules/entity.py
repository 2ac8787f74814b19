"""Pick-one-entity actors and critics for any env whose observation is a set of entities.

The Esper policy (:mod:`torchrl_slots.policy`) owns a factored action over a fixed grid. Other
envs often only need "pick one of these entities" (plus, maybe, one extra categorical choice such
as a verb). :func:`make_entity_actor` builds that as a plain TorchRL ``ProbabilisticActor`` from
the same parts:

``(entities, mask[, context]) -> EntityEncoderModule -> (cls, entity_repr) -> EntityPointer``
``-> logits -> MaskedCategorical`` (one head), or ``CompositeDistribution`` of one
``MaskedCategorical`` per head (two heads, independent given the state; see docs/torchrl-notes.md
"Composite").

* ``context_key`` (optional): a state vector that belongs to no entity (a step counter, a budget,
  the agent's own state) is embedded and fused with the CLS, as the slot policy fuses its global
  features (:class:`~torchrl_slots.modules.trunks.TransformerTrunk`); the fused CLS feeds the
  pointer query, the extra head and the value.
* ``query_entity_key`` (optional, actor only): int64 entity indices ``[*B]`` (or ``[*B, K]``)
  whose ``entity_repr`` rows are concatenated to the CLS in the pointer query, as pointer
  networks do in routing ("pick the next entity given the last one picked"). ``-1`` = no entity
  (a zero row), e.g. before the first pick.

:func:`make_entity_critic` is a ``ValueOperator``: its own encoder pass and an MLP on the (fused)
CLS. Save and load both with :func:`torchrl_slots.modules.entity_io.save_entity_policy`.

Keys are the caller's: the encoder reads ``entity_key`` and ``mask_key`` (and two grid-position
keys only when the encoder has positions). The pointer's legality mask defaults to ``mask_key``.
A state with no legal entity raises a ``ValueError`` naming the mask key and the batch index
(``MaskedCategorical`` would give NaN there); the checks that read tensor values are skipped
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
from torchrl_slots.modules.entity_encoder import EntityEncoder, EntityEncoderModule, PositionKeys
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
        >>> check_entity_mask(torch.tensor([[True, False], [False, False]]), ("items", "mask"))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: no valid entity in ('items', 'mask') at batch index (1,) (1 of 2 states have none): every state ...
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
    """:class:`PointerHead` from the CLS (and chosen entities) to the entities, with the checks.

    Args:
        embed_dim: ``D``, width of the CLS and of each entity's representation.
        key_dim: query/key width of the pointer. Default 64.
        mask_key: the key the mask comes from (error messages only). Default ``"mask"``.
        num_query_entities: ``K``, how many chosen entities' rows join the query (0: CLS only).
        query_entity_key: the key of their indices (error messages only).

    The query is ``concat(cls, entity_repr[i_1], ..., entity_repr[i_K])`` (``D (1 + K)`` wide);
    an index of ``-1`` contributes a zero row. The query layer starts at orthogonal gain 0.01, so
    the initial policy is near uniform.

    Examples:
        >>> ptr = EntityPointer(embed_dim=8, key_dim=4)
        >>> cls, entity_repr = torch.randn(3, 8), torch.randn(3, 5, 8)
        >>> mask = torch.tensor([True, True, False, True, False]).expand(3, 5)
        >>> logits, out_mask = ptr(cls, entity_repr, mask)
        >>> logits.shape, bool((logits.softmax(-1)[~mask] == 0).all()), out_mask is mask
        (torch.Size([3, 5]), True, True)
        >>> ptr = EntityPointer(embed_dim=8, key_dim=4, num_query_entities=1, query_entity_key="last")
        >>> ptr(cls, entity_repr, mask, torch.tensor([0, 4, -1]))[0].shape
        torch.Size([3, 5])
        >>> ptr(cls, entity_repr, mask, torch.tensor([0, 5, -1]))
        Traceback (most recent call last):
        ...
        ValueError: query entity 'last' must hold indices in [-1, 5) (-1 = none), got values in [-1, 5]
    """

    def __init__(
        self,
        *,
        embed_dim: int,
        key_dim: int = 64,
        mask_key: NestedKey = "mask",
        num_query_entities: int = 0,
        query_entity_key: NestedKey | None = None,
    ) -> None:
        super().__init__()
        if isinstance(num_query_entities, bool) or not isinstance(num_query_entities, int) or num_query_entities < 0:
            raise ValueError(f"num_query_entities must be an int >= 0, got {num_query_entities!r}")
        self.mask_key, self.query_entity_key, self.num_query_entities = mask_key, query_entity_key, num_query_entities
        self.head = PointerHead(context_dim=embed_dim * (1 + num_query_entities), slot_dim=embed_dim, key_dim=key_dim)
        init_weights(self.head)
        init_output_layer(self.head.query, std=0.01)

    def query_rows(self, entity_repr: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """``entity_repr [*B, N, D]`` at ``index`` (int64 ``[*B]`` or ``[*B, K]``) -> ``[*B, K * D]``."""
        batch, (n, d), k = entity_repr.shape[:-2], entity_repr.shape[-2:], self.num_query_entities
        key = self.query_entity_key
        if index.dtype != torch.int64:
            raise ValueError(f"query entity {key!r} must be int64 entity indices, got dtype {index.dtype}")
        if k == 1 and tuple(index.shape) == tuple(batch):
            index = index[..., None]  # [*B, 1]
        if tuple(index.shape) != (*batch, k):
            expected = f"{tuple(batch)} or {(*batch, 1)}" if k == 1 else f"{(*batch, k)}"
            raise ValueError(f"query entity {key!r} must have shape {expected} ([*B, K] with K = {k}), "
                             f"got {tuple(index.shape)}")
        if not torch.compiler.is_compiling() and index.numel() and (index.min() < -1 or index.max() >= n):
            raise ValueError(f"query entity {key!r} must hold indices in [-1, {n}) (-1 = none), "
                             f"got values in [{int(index.min())}, {int(index.max())}]")
        rows = entity_repr.gather(-2, index.clamp(min=0)[..., None].expand(*batch, k, d))  # [*B, K, D]
        rows = rows * (index >= 0)[..., None].to(rows.dtype)  # [*B, K, D], -1 -> zeros
        return rows.flatten(-2)  # [*B, K * D]

    def forward(
        self, cls: torch.Tensor, entity_repr: torch.Tensor, mask: torch.Tensor, query_index: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``cls [*B, D], entity_repr [*B, N, D], mask [*B, N][, query_index]`` -> ``(logits [*B, N], mask)``."""
        check_entity_mask(mask, self.mask_key)
        if (query_index is None) != (self.num_query_entities == 0):
            raise ValueError(f"the pointer was built for {self.num_query_entities} query entities "
                             f"({self.query_entity_key!r}), got {'none' if query_index is None else 'an index'}")
        query = cls if query_index is None else torch.cat([cls, self.query_rows(entity_repr, query_index)], dim=-1)
        return self.head(query, entity_repr, mask=mask), mask  # [*B, N], [*B, N]


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
    encoder: EncoderLike | EntityEncoderModule,
    entity_key: NestedKey | None,
    mask_key: NestedKey | None,
    position_keys: PositionKeys | None,
    context_key: NestedKey | None,
    context_dim: int | None,
    out_keys: Sequence[NestedKey],
) -> SlotEncoderModule | EntityEncoderModule:
    """Wrap a bare encoder with the caller's keys, or check a ready module against them."""
    if isinstance(encoder, EntityEncoderModule):
        given = [("entity_key", entity_key, encoder.in_keys[0]), ("mask_key", mask_key, encoder.in_keys[1])]
        if encoder.net.context is not None:
            given.append(("context_key", context_key, encoder.in_keys[-1]))
        elif context_key is not None:
            raise ValueError(f"context_key {context_key!r} given, but the encoder module reads no context")
        for name, key, have in given:
            if key is not None and unravel_key(key) != unravel_key(have):
                raise ValueError(f"{name} {key!r} differs from the encoder module's {have!r}")
        if context_dim is not None and context_dim != encoder.net.context_dim:
            raise ValueError(f"context_dim={context_dim} differs from the encoder module's {encoder.net.context_dim}")
        if position_keys is not None and [unravel_key(k) for k in position_keys] != [
            unravel_key(k) for k in encoder.position_keys or ()
        ]:
            raise ValueError(
                f"position_keys {position_keys!r} differ from the encoder module's {encoder.position_keys!r}"
            )
        return encoder
    if isinstance(encoder, SlotEncoderModule):
        if position_keys is not None and len(encoder.in_keys) != 4:
            raise ValueError(f"position_keys given, but the encoder module reads no positions: {encoder.in_keys!r}")
        given = [entity_key, mask_key, *(position_keys or (None, None))]
        for i, (key, have) in enumerate(zip(given, encoder.in_keys)):
            if key is not None and unravel_key(key) != unravel_key(have):
                raise ValueError(f"key {key!r} differs from the encoder module's in_keys[{i}] = {have!r}")
        if context_key is None and context_dim is None:
            return encoder
        entity_key, mask_key = encoder.in_keys[:2]
        position_keys = tuple(encoder.in_keys[2:4]) or None
        out_keys, encoder = encoder.out_keys[:2], encoder.encoder
    if not isinstance(encoder, SlotTransformerEncoder):
        raise TypeError(
            "encoder must be a SlotTransformerEncoder, SlotEncoderModule or EntityEncoderModule, "
            f"got {type(encoder).__name__}"
        )
    if entity_key is None or mask_key is None:
        raise ValueError("entity_key and mask_key are required with a bare SlotTransformerEncoder, got None")
    return EntityEncoderModule(encoder, entity_key=entity_key, mask_key=mask_key, position_keys=position_keys,
                               context_key=context_key, context_dim=context_dim, out_keys=out_keys)


def _trunk(module: SlotEncoderModule | EntityEncoderModule) -> EntityEncoder:
    """The tensors-in module of an encoder module (a fresh, parameter-free wrapper for a SlotEncoderModule)."""
    if isinstance(module, EntityEncoderModule):
        return module.net
    entity_key, mask_key = module.in_keys[:2]
    return EntityEncoder(module.encoder, entity_key=entity_key, mask_key=mask_key)


def make_entity_actor(
    encoder: EncoderLike | EntityEncoderModule,
    *,
    entity_key: NestedKey | None = None,
    mask_key: NestedKey | None = None,
    position_keys: PositionKeys | None = None,
    context_key: NestedKey | None = None,
    context_dim: int | None = None,
    query_entity_key: NestedKey | None = None,
    num_query_entities: int = 1,
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
        encoder: a :class:`SlotTransformerEncoder` (wrapped here with the keys below), a ready
            :class:`EntityEncoderModule` or :class:`SlotEncoderModule` (their in/out keys are used;
            keys given here must match).
        entity_key: float ``[*B, N, F]`` entity features; ``F`` = ``encoder.slot_dim``.
        mask_key: bool ``[*B, N]``, True = the entity exists (the encoder's mask).
        position_keys: ``(row, col)`` integer ids; only for an encoder with grid positions, and
            required there. Default ``None`` (``positional="none"``: permutation-equivariant).
        context_key: optional float ``[*B, context_dim]`` state vector that belongs to no entity;
            embedded and fused with the CLS (for the pointer query and the extra head).
        context_dim: the context width; required with ``context_key``.
        query_entity_key: optional int64 ``[*B]`` (or ``[*B, K]``) entity indices whose
            ``entity_repr`` rows join the pointer query (e.g. the last entity picked); ``-1`` = none.
        num_query_entities: ``K``, indices per state at ``query_entity_key``. Default 1.
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
        ``actor.entity_kwargs`` holds the arguments above other than the encoder keys and ``spec``
        as plain values (what :func:`~torchrl_slots.modules.entity_io.save_entity_policy` stores).

    Raises:
        ValueError: for missing entity/mask keys with a bare encoder, keys that differ from a
            ready module's, position keys given to (or missing from) an encoder without (with)
            positions, ``context_key`` without ``context_dim``, or bad ``head_names``; in forward,
            for a mis-shaped context or query index (naming the key, the expected and the given
            shape), or a state with no legal entity or extra choice (:func:`check_entity_mask`).
        TypeError: for an ``encoder`` of another type.

    Examples:
        >>> from tensordict import TensorDict
        >>> enc = SlotTransformerEncoder.for_entities(5, embed_dim=8, num_heads=2, num_layers=1)
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
        >>> td["obs", "budget"], td["obs", "last"] = torch.rand(4, 2), torch.tensor([0, 2, -1, 1])
        >>> actor3 = make_entity_actor(enc, entity_key=("obs", "units"), mask_key=("obs", "alive"),
        ...                            context_key=("obs", "budget"), context_dim=2,
        ...                            query_entity_key=("obs", "last"))
        >>> actor3(td)["params", "entity", "logits"].shape
        torch.Size([4, 6])
    """
    cls_key, repr_key = unravel_key((hidden_key, "cls")), unravel_key((hidden_key, "entity_repr"))
    enc_module = _encoder_module(encoder, entity_key, mask_key, position_keys, context_key, context_dim,
                                 (cls_key, repr_key))
    cls_key, repr_key = enc_module.out_keys[:2]
    pick_mask_key = action_mask_key if action_mask_key is not None else enc_module.in_keys[1]
    embed_dim = enc_module.encoder.embed_dim
    entity_name = head_names[0]
    k = num_query_entities if query_entity_key is not None else 0
    pointer = TensorDictModule(
        EntityPointer(embed_dim=embed_dim, key_dim=key_dim, mask_key=pick_mask_key, num_query_entities=k,
                      query_entity_key=query_entity_key),
        in_keys=[cls_key, repr_key, pick_mask_key, *([query_entity_key] if k else [])],
        out_keys=[(params_key, entity_name, "logits"), (params_key, entity_name, "mask")],
    )
    logger.debug("entity actor: %s -> %s (extra head: %s)", enc_module.in_keys, action_key, extra_head_size)
    common = {"return_log_prob": return_log_prob, "default_interaction_type": default_interaction_type}
    kwargs = {
        "query_entity_key": query_entity_key, "num_query_entities": num_query_entities,
        "action_mask_key": action_mask_key, "extra_head_size": extra_head_size, "extra_mask_key": extra_mask_key,
        "action_key": action_key, "head_names": tuple(head_names), "key_dim": key_dim, "params_key": params_key,
        "return_log_prob": return_log_prob, "default_interaction_type": InteractionType(default_interaction_type).name,
    }
    if extra_head_size is None:
        actor = ProbabilisticActor(
            TensorDictSequential(enc_module, pointer),
            in_keys={"logits": (params_key, entity_name, "logits"), "mask": (params_key, entity_name, "mask")},
            out_keys=[action_key],
            spec=spec,
            distribution_class=MaskedCategorical,
            **common,
        )
        actor.entity_kwargs = kwargs
        return actor
    if len(head_names) != 2 or head_names[0] == head_names[1]:
        raise ValueError(f"head_names must be two distinct names (entity, extra), got {head_names!r}")
    extra_name = head_names[1]
    extra = TensorDictModule(
        _ExtraHead(embed_dim, extra_head_size, extra_mask_key),
        in_keys=[cls_key] + ([extra_mask_key] if extra_mask_key is not None else []),
        out_keys=[(params_key, extra_name, "logits"), (params_key, extra_name, "mask")],
    )
    actor = ProbabilisticActor(
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
    actor.entity_kwargs = kwargs
    return actor


class _CLSValueNet(nn.Module):
    """Encoder (+ context) + MLP on its CLS: the tensors of the encoder's in_keys in, ``[*B, 1]`` out."""

    def __init__(self, encoder: EntityEncoder, num_cells: Sequence[int]) -> None:
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
    encoder: EncoderLike | EntityEncoderModule,
    *,
    entity_key: NestedKey | None = None,
    mask_key: NestedKey | None = None,
    position_keys: PositionKeys | None = None,
    context_key: NestedKey | None = None,
    context_dim: int | None = None,
    num_cells: Sequence[int] = (64,),
    out_key: NestedKey = "state_value",
) -> ValueOperator:
    """A ``ValueOperator``: the encoder's (context-fused) CLS through an MLP (``Tanh``) to ``[*B, 1]``.

    The critic runs its own encoder pass, so GAE can call it alone. Pass a different encoder
    from the actor's for separate actor/critic networks (the usual PPO choice), or the same one
    (or the same :class:`EntityEncoderModule`, to share the context fusion too) to share it. A shared
    encoder learns from both the policy and the value loss in ``ClipPPOLoss``; with
    ``separate_losses=True`` the loss detaches the critic's copies of shared parameters, and the
    encoder then learns from the policy loss only.

    Args:
        encoder: a :class:`SlotTransformerEncoder`, :class:`EntityEncoderModule` or
            :class:`SlotEncoderModule` (their in_keys).
        entity_key, mask_key, position_keys, context_key, context_dim: as in :func:`make_entity_actor`.
        num_cells: hidden widths of the MLP. Default ``(64,)``.
        out_key: where the value goes. Default ``"state_value"``.

    Returns:
        The critic; ``critic.entity_kwargs`` holds ``num_cells`` and ``out_key``.

    Examples:
        >>> from tensordict import TensorDict
        >>> enc = SlotTransformerEncoder.for_entities(5, embed_dim=8, num_heads=2, num_layers=1)
        >>> critic = make_entity_critic(enc, entity_key=("obs", "units"), mask_key=("obs", "alive"),
        ...                             context_key=("obs", "budget"), context_dim=2)
        >>> td = TensorDict({"obs": {"units": torch.randn(4, 6, 5), "budget": torch.rand(4, 2),
        ...                          "alive": torch.ones(4, 6, dtype=torch.bool)}}, batch_size=[4])
        >>> critic(td)["state_value"].shape, critic.in_keys[-1]
        (torch.Size([4, 1]), ('obs', 'budget'))
    """
    module = _encoder_module(encoder, entity_key, mask_key, position_keys, context_key, context_dim,
                             ("cls", "entity_repr"))
    net = _CLSValueNet(_trunk(module), num_cells)
    critic = ValueOperator(net, in_keys=list(module.in_keys), out_keys=[out_key])
    critic.entity_kwargs = {"num_cells": tuple(num_cells), "out_key": out_key}
    return critic
