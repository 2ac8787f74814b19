"""The entity encoder: a :class:`SlotTransformerEncoder` plus an optional context fused with its CLS.

Used by :func:`torchrl_slots.modules.entity.make_entity_actor` and
:func:`~torchrl_slots.modules.entity.make_entity_critic`. A context is a state vector that belongs
to no entity (a step counter, a budget, the agent's own state); it is embedded with a
:class:`GlobalEncoder` and fused with the CLS as the slot policy's trunk fuses its global features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey, unravel_key
from torch import nn

from torchrl_slots.modules.encoder import GlobalEncoder, SlotTransformerEncoder

__all__ = ["EntityEncoder", "EntityEncoderModule", "PositionKeys"]

PositionKeys = tuple[NestedKey, NestedKey]


class EntityEncoder(nn.Module):
    """A :class:`SlotTransformerEncoder`, plus an optional context vector fused with its CLS.

    Args:
        encoder: the transformer over the entities (shared when another module holds it too).
        entity_key, mask_key: the keys the entities and their mask come from (messages only).
        context_key: the key of the context, or ``None`` (no context: the CLS passes unchanged).
        context_dim: ``C``, the context width; required with ``context_key``.

    With a context, ``cls' = ReLU(LayerNorm(Linear(concat(cls, GlobalEncoder(context)))))``, of
    width ``D``, the same fusion as the slot policy's trunk.

    ``forward(features, mask[, row, col][, context])`` -> ``(cls [*B, D], entity_repr [*B, N, D])``.

    Examples:
        >>> enc = SlotTransformerEncoder.for_entities(5, embed_dim=8, num_heads=2, num_layers=1)
        >>> net = EntityEncoder(enc, entity_key="units", mask_key="alive", context_key="me", context_dim=3)
        >>> cls, entity_repr = net(torch.randn(4, 6, 5), torch.ones(4, 6, dtype=torch.bool), torch.randn(4, 3))
        >>> cls.shape, entity_repr.shape
        (torch.Size([4, 8]), torch.Size([4, 6, 8]))
        >>> net(torch.randn(4, 6, 5), torch.ones(4, 6, dtype=torch.bool), torch.randn(4, 2))
        Traceback (most recent call last):
        ...
        ValueError: context 'me' must have shape (4, 3) ([*B, context_dim], *B = the entities' (4,)), got (4, 2)
    """

    def __init__(
        self,
        encoder: SlotTransformerEncoder,
        *,
        entity_key: NestedKey = "entities",
        mask_key: NestedKey = "mask",
        context_key: NestedKey | None = None,
        context_dim: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, SlotTransformerEncoder):
            raise TypeError(f"encoder must be a SlotTransformerEncoder, got {type(encoder).__name__}")
        if (context_key is None) != (context_dim is None):
            raise ValueError(
                f"context_key and context_dim go together (both or neither), got context_key={context_key!r}, "
                f"context_dim={context_dim!r}"
            )
        if context_dim is not None and (isinstance(context_dim, bool) or not isinstance(context_dim, int)
                                        or context_dim < 1):
            raise ValueError(f"context_dim must be a positive int, got {context_dim!r}")
        self.encoder = encoder
        self.entity_key, self.mask_key = entity_key, mask_key
        self.context_key, self.context_dim = context_key, context_dim
        self.has_positions = encoder.positional is not None
        d = encoder.embed_dim
        self.context = GlobalEncoder(base_dim=context_dim, embed_dim=d) if context_dim is not None else None
        self.fusion = (
            nn.Sequential(nn.Linear(2 * d, d), nn.LayerNorm(d), nn.ReLU()) if context_dim is not None else None
        )

    @property
    def embed_dim(self) -> int:
        """``D``, the width of the CLS and of each entity's representation."""
        return self.encoder.embed_dim

    def forward(self, features: torch.Tensor, mask: torch.Tensor, *rest: torch.Tensor) -> tuple[torch.Tensor, ...]:
        f = self.encoder.slot_dim
        if features.dim() < 2 or features.shape[-1] != f or not features.dtype.is_floating_point:
            raise ValueError(
                f"entities {self.entity_key!r} must be float [*B, N, {f}], got {features.dtype} {tuple(features.shape)}"
            )
        if mask.dtype != torch.bool or mask.shape != features.shape[:-1]:
            raise ValueError(
                f"mask {self.mask_key!r} must be bool of shape {tuple(features.shape[:-1])} (the entities' [*B, N]), "
                f"got {mask.dtype} {tuple(mask.shape)}"
            )
        want = (2 if self.has_positions else 0) + (self.context is not None)
        if len(rest) != want:
            raise ValueError(f"expected {want} tensors after (features, mask) (positions, context), got {len(rest)}")
        positions = rest[:2] if self.has_positions else ()
        cls, entity_repr = self.encoder(features, mask, *positions)  # [*B, D], [*B, N, D]
        if self.context is None:
            return cls, entity_repr
        context = rest[-1]
        batch = tuple(features.shape[:-2])
        if tuple(context.shape) != (*batch, self.context_dim) or not context.dtype.is_floating_point:
            raise ValueError(
                f"context {self.context_key!r} must have shape {(*batch, self.context_dim)} ([*B, context_dim], "
                f"*B = the entities' {batch}), got {tuple(context.shape)}"
                + ("" if context.dtype.is_floating_point else f" of dtype {context.dtype} (expected floating point)")
            )
        glob = self.context(context.to(cls.dtype))  # [*B, D]
        return self.fusion(torch.cat([cls, glob], dim=-1)), entity_repr  # [*B, D], [*B, N, D]


class EntityEncoderModule(TensorDictModule):
    """``TensorDictModule`` around an :class:`EntityEncoder` that owns the (nested) keys.

    Args:
        encoder: a :class:`SlotTransformerEncoder` (wrapped here) or a ready :class:`EntityEncoder`.
        entity_key: float ``[*B, N, F]`` entity features; ``F`` = ``encoder.slot_dim``.
        mask_key: bool ``[*B, N]``, True = the entity exists.
        position_keys: ``(row, col)`` ids, only for an encoder with grid positions. Default ``None``.
        context_key: optional float ``[*B, context_dim]`` state vector fused with the CLS.
        context_dim: the context width; required with ``context_key``.
        out_keys: ``(cls, entity_repr)``. Default ``(("hidden", "cls"), ("hidden", "entity_repr"))``.

    Pass one module to both :func:`make_entity_actor` and :func:`make_entity_critic` to share the
    encoder, context fusion included.

    Examples:
        >>> from tensordict import TensorDict
        >>> enc = SlotTransformerEncoder.for_entities(5, embed_dim=8, num_heads=2, num_layers=1)
        >>> module = EntityEncoderModule(enc, entity_key="units", mask_key="alive", context_key="me", context_dim=3)
        >>> td = module(TensorDict({"units": torch.randn(4, 6, 5), "alive": torch.ones(4, 6, dtype=torch.bool),
        ...                         "me": torch.randn(4, 3)}, batch_size=[4]))
        >>> module.in_keys, td["hidden", "cls"].shape
        (['units', 'alive', 'me'], torch.Size([4, 8]))
    """

    def __init__(
        self,
        encoder: SlotTransformerEncoder | EntityEncoder,
        *,
        entity_key: NestedKey,
        mask_key: NestedKey,
        position_keys: PositionKeys | None = None,
        context_key: NestedKey | None = None,
        context_dim: int | None = None,
        out_keys: Sequence[NestedKey] = (("hidden", "cls"), ("hidden", "entity_repr")),
    ) -> None:
        if isinstance(encoder, EntityEncoder):
            if context_key is not None and unravel_key(context_key) != unravel_key(encoder.context_key):
                raise ValueError(
                    f"context_key {context_key!r} differs from the EntityEncoder's {encoder.context_key!r}"
                )
            net = encoder
        else:
            net = EntityEncoder(encoder, entity_key=entity_key, mask_key=mask_key, context_key=context_key,
                                context_dim=context_dim)
        if net.has_positions == (position_keys is None):
            raise ValueError(
                f"an encoder with positional={net.encoder.positional_kind!r} needs "
                f"{'two' if net.has_positions else 'no'} position_keys (row, col), got {position_keys!r}"
            )
        if len(out_keys) != 2:
            raise ValueError(f"out_keys must be (cls, entity_repr), got {len(out_keys)} keys")
        context_keys = [net.context_key] if net.context is not None else []
        in_keys = [entity_key, mask_key, *(position_keys or ()), *context_keys]
        super().__init__(net, in_keys=in_keys, out_keys=list(out_keys))
        self.position_keys = tuple(position_keys) if position_keys is not None else None

    @property
    def net(self) -> EntityEncoder:
        """The wrapped :class:`EntityEncoder`."""
        return self.module

    @property
    def encoder(self) -> SlotTransformerEncoder:
        """The wrapped :class:`SlotTransformerEncoder`."""
        return self.module.encoder
