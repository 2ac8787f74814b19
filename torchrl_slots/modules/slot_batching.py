"""How :class:`~torchrl_slots.modules.encoder.SlotTransformerEncoder` batches its rows: split the
flattened batch into chunks, and pack each chunk's enabled slots to the front (and back).

Rows never attend to each other, so chunking gives the same values; packing cuts the token axis
to the most enabled slots of a chunk, so absent slots cost no attention or FFN work. Activation
checkpointing is applied per chunk by the encoder (it owns the module to recompute).
"""

from __future__ import annotations

from typing import Callable

import torch

from torchrl_slots.modules._guards import host_checks_possible

__all__ = ["enabled_first", "pack_sizes", "scatter_back", "split_rows"]

Ids = tuple[torch.Tensor, torch.Tensor] | None


def split_rows(
    feats: torch.Tensor, mask: torch.Tensor, ids: Ids, chunk: int
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...], list[Ids]]:
    """Chunks of ``chunk`` rows of ``feats [B', N, F]``, ``mask [B', N]`` and ``ids`` (each
    ``[N]``, shared by every chunk, or ``[B', N]``, split with the rows).

    Examples:
        >>> f, m, i = split_rows(torch.zeros(5, 3, 2), torch.ones(5, 3, dtype=torch.bool), None, 2)
        >>> [c.shape[0] for c in f], i
        ([2, 2, 1], [None, None, None])
    """
    f_chunks, mask_chunks = feats.split(chunk), mask.split(chunk)
    id_chunks: list[Ids] = [None] * len(f_chunks)
    if ids is not None:
        split = [[i] * len(f_chunks) if i.ndim == 1 else list(i.split(chunk)) for i in ids]
        id_chunks = list(zip(*split))
    return f_chunks, mask_chunks, id_chunks


def pack_sizes(mask_chunks: tuple[torch.Tensor, ...], n: int) -> list[int | None]:
    """Per chunk, the most enabled slots of its rows (``None`` when a row enables all ``n``: no
    gather). One host sync for all chunks; ``None`` everywhere while ``torch.compile`` traces and
    under ``torch.vmap`` (no host values there), i.e. the unpacked path.

    Examples:
        >>> m = torch.tensor([[True, False, False], [True, True, False], [True, True, True]])
        >>> pack_sizes(m.split(2), 3)
        [2, None]
    """
    if not mask_chunks or mask_chunks[0].shape[0] == 0 or not host_checks_possible(*mask_chunks):
        return [None] * len(mask_chunks)
    maxima = torch.stack([m.sum(-1).amax() for m in mask_chunks]).tolist()  # one host sync
    return [k if k < n else None for k in maxima]


def enabled_first(mask: torch.Tensor, pack: int) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """``order [b, K]``: each row's slot indices, enabled ones first (a stable sort, so in slot
    order), cut to ``K = pack``; and ``take(x [b, N, ...]) -> [b, K, ...]`` that gathers by it."""
    order = torch.sort(~mask, dim=-1, stable=True).indices[:, :pack]  # [b, K], enabled first
    row = torch.arange(mask.shape[0], device=mask.device)[:, None]  # [b, 1]

    def take(x: torch.Tensor) -> torch.Tensor:
        return x[row, order]  # advanced indexing, not gather: its backward keeps only the indices

    return order, take


def scatter_back(tokens: torch.Tensor, order: torch.Tensor, n: int) -> torch.Tensor:
    """``tokens [b, K, D]`` back to ``[b, N, D]`` at ``order``'s slots; the others are zeros."""
    b, k, d = tokens.shape
    index = order[..., None].expand(b, k, d)  # [b, K, D]
    return tokens.new_zeros(b, n, d).scatter(1, index, tokens)  # [b, N, D]
