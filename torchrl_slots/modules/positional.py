"""Grid positional encodings for slots.

A slot sits at ``(row, col)`` on a grid. Two encodings map the integer ids to an
``embed_dim``-wide vector that the encoder adds to each slot's embedding:

* :class:`SlotPositionalEncoding` (``"learned"``): factorized learnable row and column tables,
  concatenated (``embed_dim / 2`` each). Exact per position, but only for grids up to
  ``max_rows x max_cols``, and a position never seen in training keeps its initial vector.
* :class:`FourierPositionalEncoding` (``"fourier"``): fixed sin/cos features of the *normalized*
  position ``id / (extent - 1)`` and a learned projection. It depends on the normalized position
  only, so a corner of a 2x5 grid and a corner of a 3x9 grid get the same vector.

:func:`make_positional` builds either from a ``Literal`` choice, or returns ``None`` for ``"none"``
(the encoder is then permutation-equivariant over slots).

Value checks on the ids (range, sign) read tensor values; they are skipped while
``torch.compile`` traces (they would break the graph), shape and dtype checks always run.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from torchrl_slots import layout
from torchrl_slots.modules._guards import host_checks_possible

__all__ = ["FourierPositionalEncoding", "SlotPositionalEncoding", "make_positional"]

PositionalKind = Literal["learned", "fourier", "none"]


def _check_ids(name: str, ids: torch.Tensor, limit: int | None) -> None:
    """Raise ``ValueError`` unless ``ids`` is an integer tensor with values in ``[0, limit)``."""
    if ids.dtype == torch.bool or ids.dtype.is_floating_point or ids.dtype.is_complex:
        raise ValueError(f"{name} must have an integer dtype (expected torch.int64), got {ids.dtype}")
    if ids.dim() == 0:
        raise ValueError(f"{name} must have at least one dim [..., N], got a scalar")
    if not host_checks_possible(ids) or ids.numel() == 0:
        return
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0:
        raise ValueError(f"{name} must be >= 0, got a minimum of {lo}")
    if limit is not None and hi >= limit:
        raise ValueError(f"{name} must be < {limit} (expected ids in [0, {limit})), got a maximum of {hi}")


class SlotPositionalEncoding(nn.Module):
    """Learned factorized row/column embedding: ``concat(row_table[r], col_table[c])``.

    Args:
        max_rows: number of row ids the table holds (ids ``0 .. max_rows - 1``). Default 16
            (:data:`torchrl_slots.layout.MAX_GRID`).
        max_cols: number of column ids the table holds. Default 16.
        embed_dim: output width; must be even (half rows, half columns). Default 64.

    The tables start at ``N(0, 0.02)`` (GPT-2's position table scale), so the position term is
    small next to the slot embedding at initialisation.

    Raises:
        ValueError: for an odd ``embed_dim`` or non-positive sizes; in ``forward`` for a
            non-integer dtype, a negative id, or an id ``>= max_rows`` / ``>= max_cols``.

    Examples:
        >>> from torchrl_slots.layout import grid_ids
        >>> pos = SlotPositionalEncoding(max_rows=4, max_cols=4, embed_dim=8)
        >>> rows, cols = grid_ids(2, 3)
        >>> pos(rows, cols).shape
        torch.Size([6, 8])
        >>> pos(rows.expand(5, 6), cols).shape  # ids broadcast against each other
        torch.Size([5, 6, 8])
    """

    def __init__(
        self, *, max_rows: int = layout.MAX_GRID, max_cols: int = layout.MAX_GRID, embed_dim: int = 64
    ) -> None:
        super().__init__()
        if embed_dim <= 0 or embed_dim % 2:
            raise ValueError(f"embed_dim must be a positive even number (expected embed_dim % 2 == 0), got {embed_dim}")
        if max_rows <= 0 or max_cols <= 0:
            raise ValueError(f"max_rows and max_cols must be positive, got {max_rows} and {max_cols}")
        self.max_rows, self.max_cols, self.embed_dim = max_rows, max_cols, embed_dim
        self.row_embed = nn.Embedding(max_rows, embed_dim // 2)
        self.col_embed = nn.Embedding(max_cols, embed_dim // 2)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw both tables from ``N(0, 0.02)``."""
        nn.init.normal_(self.row_embed.weight, std=0.02)
        nn.init.normal_(self.col_embed.weight, std=0.02)

    def forward(self, row_ids: torch.Tensor, col_ids: torch.Tensor) -> torch.Tensor:
        """Encode positions.

        Args:
            row_ids: integer ``[..., N]``.
            col_ids: integer ``[..., N]``, broadcastable with ``row_ids``.

        Returns:
            ``[..., N, embed_dim]`` (the broadcast shape of the ids, plus ``embed_dim``).
        """
        _check_ids("row_ids", row_ids, self.max_rows)
        _check_ids("col_ids", col_ids, self.max_cols)
        row_ids, col_ids = torch.broadcast_tensors(row_ids, col_ids)  # [..., N] each
        rows = self.row_embed(row_ids)  # [..., N, D/2]
        cols = self.col_embed(col_ids)  # [..., N, D/2]
        return torch.cat([rows, cols], dim=-1)  # [..., N, D]


class FourierPositionalEncoding(nn.Module):
    """Fixed sin/cos features of the normalized grid position, then a learned ``Linear``.

    The normalized position of a row id is ``id / (extent - 1)`` (``0.5`` when ``extent == 1``,
    as :func:`torchrl_slots.layout.normalized_position`), where ``extent = max id + 1`` over ALL
    the ``N`` ids given along the last dim (masked slots included, so the encoding does not move
    with which slots are enabled). Columns likewise. Each normalized coordinate ``p`` gives
    ``sin(2^k pi p), cos(2^k pi p)`` for ``k = 0 .. num_frequencies - 1``; the ``4 K`` features
    are projected to ``embed_dim``.

    Args:
        embed_dim: output width. Default 64.
        num_frequencies: ``K``, octaves per coordinate. Default 8.

    Raises:
        ValueError: for non-positive sizes; in ``forward`` for a non-integer dtype or a negative id.

    Examples:
        >>> from torchrl_slots.layout import grid_ids
        >>> pos = FourierPositionalEncoding(embed_dim=8, num_frequencies=4)
        >>> small, large = grid_ids(2, 5), grid_ids(3, 9)
        >>> a, b = pos(*small), pos(*large)
        >>> a.shape, b.shape
        (torch.Size([10, 8]), torch.Size([27, 8]))
        >>> torch.allclose(a[-1], b[-1])  # bottom-right corner of both grids
        True
    """

    def __init__(self, *, embed_dim: int = 64, num_frequencies: int = 8) -> None:
        super().__init__()
        if embed_dim <= 0 or num_frequencies <= 0:
            raise ValueError(
                f"embed_dim and num_frequencies must be positive, got {embed_dim} and {num_frequencies}"
            )
        self.embed_dim, self.num_frequencies = embed_dim, num_frequencies
        freqs = math.pi * 2.0 ** torch.arange(num_frequencies, dtype=torch.float32)  # [K]
        self.register_buffer("freqs", freqs, persistent=False)
        self.proj = nn.Linear(4 * num_frequencies, embed_dim)

    @staticmethod
    def normalize(ids: torch.Tensor) -> torch.Tensor:
        """Float ``[..., N]`` in ``[0, 1]``: ``id / (extent - 1)`` with ``extent`` from the last dim."""
        extent = ids.amax(dim=-1, keepdim=True) + 1  # [..., 1]
        norm = ids.to(torch.float32) / (extent - 1).clamp_min(1).to(torch.float32)  # [..., N]
        return torch.where(extent > 1, norm, torch.full_like(norm, 0.5))  # [..., N]

    def forward(self, row_ids: torch.Tensor, col_ids: torch.Tensor) -> torch.Tensor:
        """Encode positions.

        Args:
            row_ids: integer ``[..., N]``; its extent is taken per leading index.
            col_ids: integer ``[..., N]``, broadcastable with ``row_ids``.

        Returns:
            ``[..., N, embed_dim]``.
        """
        _check_ids("row_ids", row_ids, None)
        _check_ids("col_ids", col_ids, None)
        rows, cols = torch.broadcast_tensors(self.normalize(row_ids), self.normalize(col_ids))  # [..., N]
        coords = torch.stack([rows, cols], dim=-1)  # [..., N, 2]
        angles = (coords[..., None] * self.freqs).flatten(-2)  # [..., N, 2K]
        feats = torch.cat([angles.sin(), angles.cos()], dim=-1)  # [..., N, 4K]
        return self.proj(feats.to(self.proj.weight.dtype))  # [..., N, D]


def make_positional(
    kind: PositionalKind,
    *,
    embed_dim: int = 64,
    max_rows: int = layout.MAX_GRID,
    max_cols: int = layout.MAX_GRID,
    num_frequencies: int = 8,
) -> SlotPositionalEncoding | FourierPositionalEncoding | None:
    """Build the positional encoding named by ``kind`` (``None`` for ``"none"``).

    Args:
        kind: ``"learned"`` (:class:`SlotPositionalEncoding`), ``"fourier"``
            (:class:`FourierPositionalEncoding`) or ``"none"``.
        embed_dim: output width. Default 64.
        max_rows, max_cols: table sizes for ``"learned"``. Default 16 each.
        num_frequencies: octaves for ``"fourier"``. Default 8.

    Examples:
        >>> type(make_positional("fourier", embed_dim=8)).__name__
        'FourierPositionalEncoding'
        >>> make_positional("none") is None
        True
    """
    if kind == "learned":
        return SlotPositionalEncoding(max_rows=max_rows, max_cols=max_cols, embed_dim=embed_dim)
    if kind == "fourier":
        return FourierPositionalEncoding(embed_dim=embed_dim, num_frequencies=num_frequencies)
    if kind == "none":
        return None
    raise ValueError(f"positional must be one of 'learned', 'fourier', 'none', got {kind!r}")
