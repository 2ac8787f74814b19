"""The two trunks: what runs between the observation and the LSTM core.

* :class:`TransformerTrunk` - SlotTransformerEncoder over the slots + GlobalEncoder over the base
  features, the CLS summary fused with the global embedding. Parameters do not depend on N.
* :class:`FlatTrunk` - the seed's "current architecture" (esper-lite's
  FactoredRecurrentActorCritic): concat(base, flattened slots) -> Linear -> LayerNorm -> ReLU.
  Built for one N; a per-slot learned embedding stands in for ``slot_repr`` so that the shared
  heads can condition on the chosen slot the same way in both architectures.

Both return ``(trunk_out [*B, F], slot_repr [*B, N, D])``; the LSTM core follows (TorchRL's
``LSTMModule``, in :mod:`torchrl_slots.policy`).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from torchrl_slots import layout
from torchrl_slots.modules.encoder import AutocastKind, GlobalEncoder, SlotTransformerEncoder


class TransformerTrunk(nn.Module):
    """Slot encoder + global encoder, fused: ``Linear(2D -> F) -> LayerNorm -> ReLU``.

    Args:
        embed_dim: D, the encoder width.
        num_heads, num_layers, ffn_dim, dropout, max_rows, max_cols, positional: the encoder's.
        pack_slots, chunk_rows, checkpoint_chunk, autocast: the encoder's speed options (see
            :class:`~torchrl_slots.modules.encoder.SlotTransformerEncoder`); ``autocast`` covers
            the slot encoder only, whose outputs come back in fp32.
        feature_dim: F, the width fed to the LSTM.

    Examples:
        >>> trunk = TransformerTrunk(embed_dim=32, num_heads=2, num_layers=1, ffn_dim=64, feature_dim=48)
        >>> base, slots = torch.randn(5, 23), torch.randn(5, 4, 39)
        >>> mask = torch.ones(5, 4, dtype=torch.bool)
        >>> rows, cols = torch.zeros(4, dtype=torch.long), torch.arange(4)
        >>> out, slot_repr = trunk(base, slots, mask, rows, cols)
        >>> out.shape, slot_repr.shape
        (torch.Size([5, 48]), torch.Size([5, 4, 32]))
    """

    def __init__(
        self,
        *,
        embed_dim: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        ffn_dim: int = 256,
        dropout: float = 0.0,
        max_rows: int = layout.MAX_GRID,
        max_cols: int = layout.MAX_GRID,
        positional: Literal["learned", "fourier", "none"] = "learned",
        pack_slots: bool = True,
        chunk_rows: int | None = 256,
        checkpoint_chunk: int | None = None,
        autocast: AutocastKind = None,
        feature_dim: int = 128,
    ) -> None:
        super().__init__()
        self.encoder = SlotTransformerEncoder(
            slot_dim=layout.SLOT_FEATURES, embed_dim=embed_dim, num_heads=num_heads,
            num_layers=num_layers, ffn_dim=ffn_dim, dropout=dropout, max_rows=max_rows,
            max_cols=max_cols, positional=positional, pack_slots=pack_slots, chunk_rows=chunk_rows,
            checkpoint_chunk=checkpoint_chunk, autocast=autocast,
        )
        self.global_encoder = GlobalEncoder(base_dim=layout.BASE_FEATURES, embed_dim=embed_dim)
        self.fusion = nn.Sequential(nn.Linear(2 * embed_dim, feature_dim), nn.LayerNorm(feature_dim), nn.ReLU())
        self.slot_dim = embed_dim
        self.feature_dim = feature_dim

    def forward(
        self,
        base: torch.Tensor,
        slots: torch.Tensor,
        slot_mask: torch.Tensor,
        slot_row: torch.Tensor | None,
        slot_col: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cls, slot_repr = self.encoder(slots, slot_mask, slot_row, slot_col)  # [*B, D], [*B, N, D]
        glob = self.global_encoder(base)  # [*B, D]
        return self.fusion(torch.cat([cls, glob], dim=-1)), slot_repr  # [*B, F], [*B, N, D]


class FlatTrunk(nn.Module):
    """Flat-concatenation trunk for exactly ``num_slots`` slots (the baseline).

    ``concat(base, slots.flatten) -> Linear(23 + 39 N, F) -> LayerNorm -> ReLU``. Raises
    ``ValueError`` when given another N: the flat layout cannot run on a slot count it was not
    built for, which is the problem the transformer solves.

    Examples:
        >>> trunk = FlatTrunk(num_slots=3, feature_dim=16, slot_dim=8)
        >>> out, slot_repr = trunk(torch.randn(2, 23), torch.randn(2, 3, 39))
        >>> out.shape, slot_repr.shape
        (torch.Size([2, 16]), torch.Size([2, 3, 8]))
    """

    def __init__(self, *, num_slots: int, feature_dim: int = 128, slot_dim: int = 64) -> None:
        super().__init__()
        if num_slots <= 0:
            raise ValueError(f"num_slots must be positive, got {num_slots}")
        self.num_slots, self.feature_dim, self.slot_dim = num_slots, feature_dim, slot_dim
        in_dim = layout.BASE_FEATURES + num_slots * layout.SLOT_FEATURES
        self.net = nn.Sequential(nn.Linear(in_dim, feature_dim), nn.LayerNorm(feature_dim), nn.ReLU())
        self.slot_embedding = nn.Parameter(torch.randn(num_slots, slot_dim) * 0.1)  # [N, D]

    def forward(
        self,
        base: torch.Tensor,
        slots: torch.Tensor,
        slot_mask: torch.Tensor | None = None,
        slot_row: torch.Tensor | None = None,
        slot_col: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if slots.shape[-2:] != (self.num_slots, layout.SLOT_FEATURES):
            raise ValueError(
                f"FlatTrunk was built for {self.num_slots} slots of {layout.SLOT_FEATURES} features "
                f"(input width {layout.BASE_FEATURES + self.num_slots * layout.SLOT_FEATURES}), got slots "
                f"of shape {tuple(slots.shape)}: the flat LSTM cannot run on another slot count; use the "
                f"transformer architecture for that"
            )
        if base.shape[-1] != layout.BASE_FEATURES:
            raise ValueError(f"expected base [..., {layout.BASE_FEATURES}], got {tuple(base.shape)}")
        if slot_mask is not None:  # padding must not be able to influence anything (NaN, inf, 1e30)
            slots = slots.masked_fill(~slot_mask[..., None], 0.0)  # [*B, N, F]
        x = torch.cat([base, slots.flatten(-2)], dim=-1)  # [*B, 23 + 39 N]
        slot_repr = self.slot_embedding.expand(*slots.shape[:-2], -1, -1)  # [*B, N, D]
        return self.net(x), slot_repr
