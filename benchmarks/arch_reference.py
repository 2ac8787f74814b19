"""benchmark_architectures' ``"reference"`` row: a naive slot transformer on ``nn.TransformerEncoder``."""

from __future__ import annotations

import torch
from torch import nn
from torchrl.envs import EnvBase

from torchrl_slots import layout
from torchrl_slots.modules.encoder import GlobalEncoder
from torchrl_slots.modules.heads import FactoredHeads
from torchrl_slots.modules.positional import make_positional
from torchrl_slots.policy import PolicyConfig, SlotPolicy, env_num_slots, register_policy, registered_policies


class ReferenceTrunk(nn.Module):
    """Naive slot transformer on ``nn.TransformerEncoder``: the "before" row of the benchmark.

    Same interface and dims as :class:`~torchrl_slots.modules.trunks.TransformerTrunk` (shared
    slot ``Linear``, learned row/col positions, CLS token, pre-LN GELU blocks, final LayerNorm,
    global encoder, ``Linear(2D -> F) -> LayerNorm -> ReLU`` fusion), but attention is
    ``nn.MultiheadAttention`` inside ``nn.TransformerEncoderLayer(batch_first=True,
    norm_first=True)`` with a ``src_key_padding_mask`` (True = ignore; CLS never ignored).
    """

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        d = config.embed_dim
        self.slot_embed = nn.Linear(layout.SLOT_FEATURES, d)
        self.positional = make_positional("learned", embed_dim=d, max_rows=config.max_rows, max_cols=config.max_cols)
        self.cls_token = nn.Parameter(torch.randn(d) * 0.02)
        block = nn.TransformerEncoderLayer(d, config.num_heads, config.ffn_dim, config.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(block, config.num_layers, norm=nn.LayerNorm(d),
                                             enable_nested_tensor=False)
        self.global_encoder = GlobalEncoder(base_dim=layout.BASE_FEATURES, embed_dim=d)
        self.fusion = nn.Sequential(nn.Linear(2 * d, config.feature_dim), nn.LayerNorm(config.feature_dim), nn.ReLU())
        self.slot_dim, self.feature_dim = d, config.feature_dim

    def forward(self, base: torch.Tensor, slots: torch.Tensor, slot_mask: torch.Tensor,
                slot_row: torch.Tensor, slot_col: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, n, d = slots.shape[:-2], slots.shape[-2], self.slot_dim
        x = self.slot_embed(slots) + self.positional(slot_row, slot_col)  # [*B, N, D]
        x = x.reshape(-1, n, d)  # [B', N, D]
        mask = slot_mask.reshape(-1, n)  # [B', N]
        x = torch.cat([self.cls_token.expand(x.shape[0], 1, d), x], dim=1)  # [B', N+1, D]
        pad = torch.cat([mask.new_zeros(mask.shape[0], 1), ~mask], dim=1)  # [B', N+1], True = ignore
        x = self.encoder(x, src_key_padding_mask=pad)  # [B', N+1, D]
        cls = x[:, 0].reshape(*batch, d)  # [*B, D]
        slot_repr = x[:, 1:].masked_fill(~mask[..., None], 0.0).reshape(*batch, n, d)  # [*B, N, D]
        return self.fusion(torch.cat([cls, self.global_encoder(base)], dim=-1)), slot_repr  # [*B, F], [*B, N, D]


def _build_reference(env: EnvBase, config: PolicyConfig) -> SlotPolicy:
    """Like policy.py's ``_build_transformer``, with :class:`ReferenceTrunk` as the trunk."""
    heads = FactoredHeads(core_dim=config.lstm_hidden, slot_dim=config.embed_dim, slot_head="pointer",
                          key_dim=config.key_dim, op_embed_dim=config.op_embed_dim, conditioning=config.conditioning)
    return SlotPolicy("reference", ReferenceTrunk(config), heads, config, num_slots=env_num_slots(env))


def register_reference() -> None:
    """Register :func:`_build_reference` as policy ``"reference"`` (once; called by :func:`main`, not at
    import, so that importing this module leaves the policy registry as it was)."""
    if "reference" not in registered_policies():
        register_policy("reference")(_build_reference)
