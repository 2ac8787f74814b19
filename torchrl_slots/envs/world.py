"""The hidden world of a task: what a seed is worth where, and next to whom.

Fixed by ``task_seed`` alone (docs/simulator.md, "The world"), the same for every episode and every
grid size: position affinity is a smooth function of the slot's NORMALIZED position, so a 2x5
and a 5x10 grid of one task are the same world at two resolutions.
"""

from __future__ import annotations

import math

import torch

from torchrl_slots import layout

#: Number of position basis functions: (1, u, v, cos(pi u), sin(pi u), u v).
NUM_BASIS = 6


def position_basis(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Basis ``phi_k(u, v)``, ``[..., 6]``, for normalized depth ``u`` and row ``v``."""
    return torch.stack(
        [torch.ones_like(u), u, v, torch.cos(math.pi * u), torch.sin(math.pi * u), u * v], dim=-1
    )


class World:
    """Hidden tables of one task, plus the public blueprint table as tensors.

    Attributes (all on ``device``):
        quality, cost, rate: public ``[13]`` blueprint tables (index 0 = NOOP, zeros).
        affinity_weights: hidden ``W`` ``[13, 6]``; ``V_b(u, v) = q_b + W[b] . phi(u, v)``.
        interaction: hidden symmetric ``S`` ``[13, 13]`` (zero row/col for NOOP).
        style_affinity: hidden ``m`` ``[13, 3]`` (blueprint x algorithm) in the configured range.

    Examples:
        >>> w = World(task_seed=0)
        >>> w.interaction.shape, bool((w.interaction == w.interaction.T).all())
        (torch.Size([13, 13]), True)
        >>> v = w.value(torch.tensor([0.0, 1.0]), torch.tensor([0.5, 0.5]))
        >>> v.shape  # [positions, blueprints]
        torch.Size([2, 13])
    """

    def __init__(
        self,
        task_seed: int,
        *,
        affinity_std: float = 0.6,
        interaction_std: float = 0.5,
        style_affinity: tuple[float, float] = (0.7, 1.2),
        device: torch.device | str | None = None,
    ) -> None:
        gen = torch.Generator().manual_seed(int(task_seed))
        nb = layout.NUM_BLUEPRINTS
        w = torch.randn(nb, NUM_BASIS, generator=gen) * affinity_std
        w[0] = 0.0
        s = torch.randn(nb, nb, generator=gen) * interaction_std
        s = torch.triu(s) + torch.triu(s, 1).T
        s[0, :] = 0.0
        s[:, 0] = 0.0
        lo, hi = style_affinity
        m = lo + (hi - lo) * torch.rand(nb, len(layout.Algorithm), generator=gen)
        m[0] = 0.0
        bps = layout.BLUEPRINTS
        self.quality = torch.tensor([b.quality for b in bps], device=device)
        self.cost = torch.tensor([b.cost for b in bps], device=device)
        self.rate = torch.tensor([b.rate for b in bps], device=device)
        self.affinity_weights = w.to(device)
        self.interaction = s.to(device)
        self.style_affinity = m.to(device)

    def value(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Expected seed value ``V_b(u, v)`` for every blueprint: ``[..., 13]`` (NOOP = 0)."""
        phi = position_basis(u, v)  # [..., 6]
        val = self.quality + phi @ self.affinity_weights.T  # [..., 13]
        return val * (self.quality > 0)

    def slot_values(self, rows: int, cols: int) -> torch.Tensor:
        """``V_b`` at each slot of a ``rows x cols`` grid: ``[rows*cols, 13]``."""
        r, c = layout.grid_ids(rows, cols)
        u = layout.normalized_position(c, cols).to(self.quality.device)
        v = layout.normalized_position(r, rows).to(self.quality.device)
        return self.value(u, v)


def neighbour_index(rows: int, cols: int) -> torch.Tensor:
    """4-neighbours of each slot, ``[N, 4]`` int64, padded with ``N`` (a dummy slot).

    Examples:
        >>> neighbour_index(1, 3).tolist()
        [[3, 1, 3, 3], [0, 2, 3, 3], [1, 3, 3, 3]]
    """
    n = rows * cols
    r, c = layout.grid_ids(rows, cols)
    out = torch.full((n, 4), n, dtype=torch.long)
    offsets = ((0, -1), (0, 1), (-1, 0), (1, 0))
    for k, (dr, dc) in enumerate(offsets):
        rr, cc = r + dr, c + dc
        ok = (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
        out[:, k] = torch.where(ok, rr * cols + cc, torch.full_like(rr, n))
    return out
