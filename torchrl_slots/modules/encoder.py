"""The Slot Transformer encoder, the global-feature encoder, and their tensordict wrapper.

:class:`SlotTransformerEncoder` treats each slot as a token (docs/design.md): one shared ``Linear``
embeds every slot, a positional term adds its grid position, a learnable CLS token is prepended
at position 0, and pre-LN transformer blocks mix the tokens. Masked slots' features are replaced
by zeros before the embedding (so NaN, inf or 1e30 in padding cannot reach anything: attention's
``0 * NaN`` would otherwise spread it), and masked slots are excluded as attention KEYS (nothing
reads from them); the CLS key is never masked, so every query row has a legal key and no softmax
is ever taken over an empty set (``nn.TransformerEncoder`` gives NaN there on some paths,
docs/torchrl-notes.md). Masked slots' outputs are zeroed.

Attention is one call to :func:`torch.nn.functional.scaled_dot_product_attention` with a boolean
``attn_mask`` (True = attend); on CPU below ``attention.SMALL_TOKENS`` (16) tokens the same
softmax is written out (``exp``/sum), which is faster there. ``return_attention=True`` takes an explicit
``softmax(Q K^T / sqrt(d))`` path instead, with the same outputs, to return the weights.

Speed options (for 50+ slots; all give the plain path's values, see the tests):

* ``pack_slots`` (default True): the enabled slots of each row are gathered to the front (a
  stable sort on the mask) and the token axis is cut to the largest number of enabled slots in
  the chunk of rows (``chunk_rows``), so absent slots cost no attention or FFN work. Outputs
  are scattered back to ``[*B, N, D]``; absent slots get zeros, as on the plain path. It reads
  the counts on the host (one sync), so it is skipped while ``torch.compile`` traces, under
  ``torch.vmap`` (e.g. TorchRL's ``GAE`` without ``deactivate_vmap``: a batched tensor has no
  host value) and with ``return_attention=True``; a chunk whose rows enable every slot is not
  gathered.
* ``chunk_rows`` (default 256): the rows ``B' = prod(*B)`` (no row attends to another) go
  through the transformer in chunks of this many rows. Same values. On CPU it is much faster than
  one big batch (at 2048 rows x 51 tokens fwd+bwd: ~1.23 s vs ~1.7 s, 1 thread): every
  activation stays under glibc's 32 MB mmap threshold, so it is reused from the heap instead of
  being page-faulted in afresh (~250k page faults per step). ``None`` = one chunk (e.g. on GPU).
* ``checkpoint_chunk`` (default None): in training with grad enabled, chunks of this many rows
  (instead of ``chunk_rows``) run under :func:`torch.utils.checkpoint.checkpoint`
  (non-reentrant): activations are recomputed in the backward instead of stored, so memory
  scales with the chunk, not with ``B'``.
* ``autocast`` (default None): ``"bf16"`` runs the encoder under ``torch.autocast`` with
  bfloat16: the Linear layers in bf16 (AMX on recent Xeons), the residual stream and LayerNorms
  in fp32, and on CPU the attention kernel in fp32 too (its bf16 backward is ~6x slower there);
  outputs are cast back to the input dtype.

:class:`SlotEncoderModule` is the thin ``TensorDictModule`` that owns the keys. The transformer
block is in :mod:`torchrl_slots.modules.attention`; chunking and packing helpers are in
:mod:`torchrl_slots.modules.slot_batching`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Literal

import torch
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey
from torch import nn
from torch.utils.checkpoint import checkpoint

from torchrl_slots import layout
from torchrl_slots.modules.attention import TransformerBlock
from torchrl_slots.modules.positional import SlotPositionalEncoding, make_positional
from torchrl_slots.modules.slot_batching import enabled_first, pack_sizes, scatter_back, split_rows

__all__ = ["GlobalEncoder", "SlotEncoderModule", "SlotTransformerEncoder", "TransformerBlock"]

AutocastKind = Literal["bf16"] | None
EncoderOutput = tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class SlotTransformerEncoder(nn.Module):
    """Set/grid encoder over slots: shared slot embedding + position + CLS + pre-LN transformer.

    Args:
        slot_dim: ``F``, width of one slot's features. Default 39 (:data:`layout.SLOT_FEATURES`).
        embed_dim: ``D``, token width; even and divisible by ``num_heads``. Default 64.
        num_heads: attention heads. Default 4.
        num_layers: transformer blocks. Default 2.
        ffn_dim: feed-forward hidden width. Default 256.
        dropout: dropout in the blocks. Default 0.0.
        max_rows, max_cols: grid limits of the ``"learned"`` positional table. Default 16 each.
        positional: ``"learned"`` (row/col tables), ``"fourier"`` (normalized position) or
            ``"none"`` (no positions: the encoder is then permutation-equivariant over slots).
            Default ``"learned"``.
        pack_slots: gather enabled slots to the front and drop the all-absent tail of the token
            axis (see the module docstring). Default True.
        chunk_rows: rows per chunk of the transformer, or ``None`` (all rows at once). Default 256.
        checkpoint_chunk: rows per activation-checkpointed chunk in training, or ``None`` (off,
            default).
        autocast: ``None`` (fp32, default) or ``"bf16"`` (``torch.autocast`` with bfloat16).

    Raises:
        ValueError: for an odd ``embed_dim`` or one not divisible by ``num_heads``, a
            ``chunk_rows`` or ``checkpoint_chunk`` < 1, an unknown ``autocast``; in ``forward``
            for a wrong feature width, a mask that is not bool or not shaped ``features[..., 0]``,
            ``N == 0``, missing or mis-shaped row/col ids, an id outside the learned table.

    Examples:
        >>> enc = SlotTransformerEncoder(embed_dim=16, num_heads=2, num_layers=1, ffn_dim=32)
        >>> feats = torch.randn(2, 4, 5, 39)  # [*B, N, F] with *B = (2, 4)
        >>> mask = torch.rand(2, 4, 5) > 0.3
        >>> rows, cols = layout.grid_ids(1, 5)  # [N] ids broadcast over *B
        >>> cls, slot_repr = enc(feats, mask, rows, cols)
        >>> cls.shape, slot_repr.shape
        (torch.Size([2, 4, 16]), torch.Size([2, 4, 5, 16]))
        >>> bool((slot_repr[~mask] == 0).all())
        True
        >>> _, _, attn = enc(feats, mask, rows, cols, return_attention=True)
        >>> attn.shape  # [*B, num_layers, num_heads, N + 1, N + 1]
        torch.Size([2, 4, 1, 2, 6, 6])
    """

    def __init__(
        self,
        *,
        slot_dim: int = layout.SLOT_FEATURES,
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
    ) -> None:
        super().__init__()
        for name, rows in (("chunk_rows", chunk_rows), ("checkpoint_chunk", checkpoint_chunk)):
            if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 1):
                raise ValueError(f"{name} must be None or a positive number of rows, got {rows!r}")
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive int (transformer blocks), got {num_layers!r}")
        if autocast not in (None, "bf16"):
            raise ValueError(f"autocast must be None or 'bf16', got {autocast!r}")
        if embed_dim <= 0 or embed_dim % 2:
            raise ValueError(f"embed_dim must be a positive even number, got {embed_dim}")
        if num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(
                f"embed_dim must be divisible by num_heads (expected embed_dim % num_heads == 0), "
                f"got embed_dim={embed_dim}, num_heads={num_heads}"
            )
        self.slot_dim, self.embed_dim, self.num_heads, self.num_layers = slot_dim, embed_dim, num_heads, num_layers
        self.positional_kind = positional
        self.pack_slots, self.chunk_rows = pack_slots, chunk_rows
        self.checkpoint_chunk, self.autocast = checkpoint_chunk, autocast
        self.slot_embed = nn.Linear(slot_dim, embed_dim)
        self.positional = make_positional(positional, embed_dim=embed_dim, max_rows=max_rows, max_cols=max_cols)
        self.cls_token = nn.Parameter(torch.empty(embed_dim))
        nn.init.normal_(self.cls_token, std=0.02)
        self.blocks = nn.ModuleList(
            TransformerBlock(embed_dim=embed_dim, num_heads=num_heads, ffn_dim=ffn_dim, dropout=dropout)
            for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(embed_dim)

    @classmethod
    def for_entities(cls, feature_dim: int, **overrides: object) -> "SlotTransformerEncoder":
        """An encoder for a set of ``feature_dim``-wide entities: no positions, generic sizes.

        ``slot_dim=feature_dim``, ``positional="none"`` (permutation-equivariant over entities),
        ``embed_dim=64``, ``num_heads=4``, ``num_layers=2`` and ``ffn_dim=2 * embed_dim``; any
        other constructor argument (``positional`` included) may be given in ``overrides``.

        Raises:
            ValueError: for a ``feature_dim`` that is not a positive int, or ``slot_dim`` in
                ``overrides`` (``feature_dim`` is the slot width).
            TypeError: for an override the constructor does not take.

        Examples:
            >>> enc = SlotTransformerEncoder.for_entities(7, embed_dim=32, num_heads=2)
            >>> enc.slot_dim, enc.embed_dim, enc.positional_kind, enc.blocks[0].ffn[0].out_features
            (7, 32, 'none', 64)
            >>> cls, entity_repr = enc(torch.randn(3, 5, 7), torch.ones(3, 5, dtype=torch.bool))
            >>> cls.shape, entity_repr.shape
            (torch.Size([3, 32]), torch.Size([3, 5, 32]))
        """
        if isinstance(feature_dim, bool) or not isinstance(feature_dim, int) or feature_dim < 1:
            raise ValueError(f"feature_dim must be a positive int (features per entity), got {feature_dim!r}")
        if "slot_dim" in overrides:
            raise ValueError(
                f"for_entities takes the slot width as feature_dim={feature_dim}; "
                f"got slot_dim={overrides['slot_dim']!r} too"
            )
        kwargs: dict = {"embed_dim": 64, "num_heads": 4, "num_layers": 2, "positional": "none", **overrides}
        kwargs.setdefault("ffn_dim", 2 * kwargs["embed_dim"])
        return cls(slot_dim=feature_dim, **kwargs)

    def _check_inputs(
        self,
        slot_features: torch.Tensor,
        slot_mask: torch.Tensor,
        row_ids: torch.Tensor | None,
        col_ids: torch.Tensor | None,
    ) -> None:
        if slot_features.dim() < 2 or slot_features.shape[-1] != self.slot_dim:
            raise ValueError(
                f"slot_features must be [*B, N, {self.slot_dim}], got shape {tuple(slot_features.shape)}"
            )
        if not slot_features.dtype.is_floating_point:
            raise ValueError(f"slot_features must be floating point, got {slot_features.dtype}")
        if slot_features.shape[-2] == 0:
            raise ValueError("slot_features must have N >= 1 slots (expected shape [*B, N>=1, F]), got N = 0")
        if slot_mask.dtype != torch.bool:
            raise ValueError(f"slot_mask must have dtype torch.bool, got {slot_mask.dtype}")
        if slot_mask.shape != slot_features.shape[:-1]:
            raise ValueError(
                f"slot_mask must have shape {tuple(slot_features.shape[:-1])} (features' [*B, N]), "
                f"got {tuple(slot_mask.shape)}"
            )
        if self.positional is None:
            return
        n = slot_features.shape[-2]
        for name, ids in (("row_ids", row_ids), ("col_ids", col_ids)):
            if ids is None:
                raise ValueError(f"{name} is required with positional={self.positional_kind!r}, got None")
            if ids.shape != (n,) and ids.shape != slot_mask.shape:
                raise ValueError(
                    f"{name} must have shape ({n},) or {tuple(slot_mask.shape)}, got {tuple(ids.shape)}"
                )

    def forward(
        self,
        slot_features: torch.Tensor,
        slot_mask: torch.Tensor,
        row_ids: torch.Tensor | None = None,
        col_ids: torch.Tensor | None = None,
        return_attention: bool = False,
    ) -> EncoderOutput:
        """Encode a (batched) set of slots.

        Args:
            slot_features: float ``[*B, N, F]``; ``*B`` may be any shape, empty included.
            slot_mask: bool ``[*B, N]``, True = the slot exists/is enabled.
            row_ids, col_ids: integer ``[N]`` or ``[*B, N]``; ignored (may be ``None``) with
                ``positional="none"``.
            return_attention: also return the attention weights (explicit softmax path).

        Returns:
            ``(cls [*B, D], slot_repr [*B, N, D])``, plus the attention weights
            ``[*B, num_layers, num_heads, N + 1, N + 1]`` (token 0 is CLS) when
            ``return_attention``. Masked slots' ``slot_repr`` rows are exactly zero.
        """
        self._check_inputs(slot_features, slot_mask, row_ids, col_ids)
        batch, n, d = slot_features.shape[:-2], slot_features.shape[-2], self.embed_dim
        flat = batch.numel()
        feats = slot_features.reshape(flat, n, self.slot_dim)  # [B', N, F]
        mask = slot_mask.reshape(flat, n)  # [B', N]
        ids = None
        if self.positional is not None:  # each [N] (shared by every row) or [B', N]
            ids = tuple(i if i.ndim == 1 else i.reshape(flat, n) for i in (row_ids, col_ids))
        with self._autocast_context(slot_features.device.type):
            if return_attention:
                cls_out, slot_repr, attn = self._encode_rows(feats, mask, ids, None, return_attention=True)
            else:
                cls_out, slot_repr = self._encode_chunks(feats, mask, ids)  # [B', D], [B', N, D]
        dtype = slot_features.dtype
        cls_out = cls_out.to(dtype).reshape(*batch, d)  # [*B, D]
        slot_repr = slot_repr.to(dtype).reshape(*batch, n, d)  # [*B, N, D]
        if not return_attention:
            return cls_out, slot_repr
        return cls_out, slot_repr, attn.to(dtype).reshape(*batch, *attn.shape[1:])  # [*B, L, nh, N+1, N+1]

    def _autocast_context(self, device_type: str) -> contextlib.AbstractContextManager:
        if self.autocast == "bf16":
            return torch.autocast(device_type=device_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()  # (not autocast(enabled=False): an outer autocast stays on)

    def _encode_chunks(
        self, feats: torch.Tensor, mask: torch.Tensor, ids: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``feats [B', N, F]``, ``mask [B', N]``, ``ids`` (each ``[N]`` or ``[B', N]``) ->
        ``(cls [B', D], slot_repr [B', N, D])``, by chunks of ``chunk_rows`` rows (of
        ``checkpoint_chunk`` rows, checkpointed, in training with grad), each packed to its own
        most enabled slots when ``pack_slots``. A checkpointed chunk starts at the raw features,
        which the caller holds anyway: only its ``[b, N, D]`` output is stored."""
        rows, n = mask.shape
        use_checkpoint = (
            self.checkpoint_chunk is not None and self.training and torch.is_grad_enabled() and rows > 0
        )
        chunk = self.checkpoint_chunk if use_checkpoint else max(self.chunk_rows or rows, 1)
        f_chunks, mask_chunks, id_chunks = split_rows(feats, mask, ids, chunk)
        packs = pack_sizes(mask_chunks, n) if self.pack_slots else [None] * len(f_chunks)
        if len(f_chunks) == 1 and not use_checkpoint:
            return self._encode_rows(feats, mask, ids, packs[0])
        outs = [
            checkpoint(self._encode_rows, f_c, m_c, i_c, k, use_reentrant=False) if use_checkpoint
            else self._encode_rows(f_c, m_c, i_c, k)
            for f_c, m_c, i_c, k in zip(f_chunks, mask_chunks, id_chunks, packs)
        ]
        return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])  # [B', D], [B', N, D]

    def _encode_rows(
        self,
        feats: torch.Tensor,
        mask: torch.Tensor,
        ids: tuple[torch.Tensor, torch.Tensor] | None,
        pack: int | None,
        return_attention: bool = False,
    ) -> EncoderOutput:
        """Embed and encode rows ``feats [b, N, F]`` (``mask [b, N]``, ``ids`` each ``[N]`` or
        ``[b, N]``): ``(cls [b, D], slot_repr [b, N, D])`` (+ weights ``[b, L, nh, N+1, N+1]``).
        ``pack=K``: only the first ``K`` slots of each row after a stable sort that puts enabled
        slots first take part (a learned position table is looked up on the packed ids; Fourier
        positions are computed over all N first, since their extent counts every slot)."""
        b, n, d = mask.shape[0], mask.shape[1], self.embed_dim
        # padding must not be able to influence anything, whatever its value (NaN, inf, 1e30)
        feats = feats.masked_fill(~mask[..., None], 0.0)  # [b, N, F]
        # a learned table looks each slot up on its own: it can run on the packed ids; the Fourier
        # encoding's extent counts all N ids, so it runs before packing
        per_slot = isinstance(self.positional, SlotPositionalEncoding)
        pos = None if ids is None or (per_slot and pack is not None) else self.positional(*ids)  # [N or b, N, D]
        order = None
        if pack is not None:
            order, take = enabled_first(mask, pack)  # [b, K], and a gather over the slot axis
            feats, mask = take(feats), take(mask)  # [b, K, F], [b, K]
            if pos is not None:
                pos = take(pos.expand(b, n, d))  # [b, K, D]
            elif ids is not None:
                pos = self.positional(*(take(i.expand(b, n)) for i in ids))  # [b, K, D]
        x = self.slot_embed(feats)  # [b, K, D]
        if pos is not None:
            x = x + pos
        x = x.to(feats.dtype)  # the residual stream in the input dtype (fp32 under autocast)
        k = x.shape[1]
        cls = self.cls_token.to(x.dtype).expand(b, 1, d)  # [b, 1, D]
        x = torch.cat([cls, x], dim=1)  # [b, K+1, D]
        keep = torch.cat([mask.new_ones(b, 1), mask], dim=1)  # [b, K+1], CLS never masked
        attn_mask = keep[:, None, None, :]  # [b, 1, 1, K+1] (heads, queries broadcast)
        weights = []
        for block in self.blocks:
            x, w = block(x, attn_mask, return_attention)  # [b, K+1, D]
            weights.append(w)
        cls_out, tokens = self.final_norm(x).split([1, k], dim=1)  # [b, 1, D], [b, K, D]
        tokens = tokens.masked_fill(~mask[..., None], 0.0)  # [b, K, D]
        if order is not None:
            tokens = scatter_back(tokens, order, n)  # [b, N, D], absent slots 0
        if not return_attention:
            return cls_out[:, 0], tokens
        return cls_out[:, 0], tokens, torch.stack(weights, dim=1)  # [b, L, nh, N+1, N+1]


class GlobalEncoder(nn.Module):
    """MLP for the global ("base") features: ``Linear -> LayerNorm -> ReLU``.

    Args:
        base_dim: input width. Default 23 (:data:`layout.BASE_FEATURES`).
        embed_dim: output width. Default 64.

    Examples:
        >>> GlobalEncoder(embed_dim=16)(torch.randn(3, 7, 23)).shape
        torch.Size([3, 7, 16])
    """

    def __init__(self, *, base_dim: int = layout.BASE_FEATURES, embed_dim: int = 64) -> None:
        super().__init__()
        self.base_dim, self.embed_dim = base_dim, embed_dim
        self.net = nn.Sequential(nn.Linear(base_dim, embed_dim), nn.LayerNorm(embed_dim), nn.ReLU())

    def forward(self, base: torch.Tensor) -> torch.Tensor:
        """``[*B, base_dim]`` -> ``[*B, embed_dim]``."""
        if base.dim() < 1 or base.shape[-1] != self.base_dim:
            raise ValueError(f"base must be [*B, {self.base_dim}], got shape {tuple(base.shape)}")
        return self.net(base)  # [*B, D]


class _EncoderAdapter(nn.Module):
    """Positional tensors in (2 or 4), tuple out; lets ``TensorDictModule`` own the keys."""

    def __init__(self, encoder: SlotTransformerEncoder, return_attention: bool) -> None:
        super().__init__()
        self.encoder, self.return_attention = encoder, return_attention

    def forward(self, *tensors: torch.Tensor) -> EncoderOutput:
        return self.encoder(*tensors, return_attention=self.return_attention)


_DEFAULT_IN_KEYS: tuple[NestedKey, ...] = (
    ("observation", "slots"),
    ("observation", "slot_mask"),
    ("observation", "slot_row"),
    ("observation", "slot_col"),
)


class SlotEncoderModule(TensorDictModule):
    """``TensorDictModule`` around a :class:`SlotTransformerEncoder` that owns the (nested) keys.

    Args:
        encoder: the encoder to run.
        in_keys: ``(features, mask)`` or ``(features, mask, row, col)``. Default: the
            ``("observation", ...)`` keys of docs/design.md, ``slots``, ``slot_mask``, ``slot_row``,
            ``slot_col``; without the last two when the encoder has ``positional="none"``.
        out_keys: ``(cls, slot_repr)`` or ``(cls, slot_repr, attention)``; with three keys the
            attention weights are written too. Default ``("cls", "slot_repr")``.

    Examples:
        >>> from tensordict import TensorDict
        >>> enc = SlotTransformerEncoder(slot_dim=6, embed_dim=8, num_heads=2, num_layers=1,
        ...                              ffn_dim=16, positional="none")
        >>> module = SlotEncoderModule(enc, in_keys=[("agents", "features"), ("agents", "mask")],
        ...                            out_keys=[("agents", "summary"), ("agents", "repr")])
        >>> td = TensorDict({"agents": {"features": torch.randn(3, 4, 6),
        ...                             "mask": torch.ones(3, 4, dtype=torch.bool)}}, batch_size=[3])
        >>> td = module(td)
        >>> td["agents", "summary"].shape, td["agents", "repr"].shape
        (torch.Size([3, 8]), torch.Size([3, 4, 8]))
    """

    def __init__(
        self,
        encoder: SlotTransformerEncoder,
        *,
        in_keys: Sequence[NestedKey] | None = None,
        out_keys: Sequence[NestedKey] = ("cls", "slot_repr"),
    ) -> None:
        if in_keys is None:
            in_keys = _DEFAULT_IN_KEYS if encoder.positional is not None else _DEFAULT_IN_KEYS[:2]
        in_keys, out_keys = list(in_keys), list(out_keys)
        if len(in_keys) not in (2, 4):
            raise ValueError(f"in_keys must be (features, mask[, row, col]): 2 or 4 keys, got {len(in_keys)}")
        if len(in_keys) == 2 and encoder.positional is not None:
            raise ValueError(
                f"an encoder with positional={encoder.positional_kind!r} needs 4 in_keys "
                f"(features, mask, row, col), got 2"
            )
        if len(out_keys) not in (2, 3):
            raise ValueError(f"out_keys must be (cls, slot_repr[, attention]): 2 or 3 keys, got {len(out_keys)}")
        adapter = _EncoderAdapter(encoder, return_attention=len(out_keys) == 3)
        super().__init__(adapter, in_keys=in_keys, out_keys=out_keys)

    @property
    def encoder(self) -> SlotTransformerEncoder:
        """The wrapped :class:`SlotTransformerEncoder`."""
        return self.module.encoder
