"""``MixedGridEnv``: several grid sizes in one batch, padded to the largest slot count.

One policy for every slot count is trained on a mixture: the batch holds ``envs_per_grid``
episodes of each grid, each a :class:`~torchrl_slots.envs.SeedLifecycleEnv` of its own, and their
observations are padded to the largest ``N`` with the slot mask (the contract's way of saying
"no slot here"):

* ``("observation", "slots")`` ``[E, N_max, 39]``: the padding rows are zero;
* ``("observation", "slot_mask")``: False on the padding;
* ``("observation", "slot_row" / "slot_col")``: 0 on the padding, so the largest id of an env's
  row is its own grid's extent (the Fourier encoding normalises positions by it: a corner of a
  2x5 grid in the mixture means what it means on a 2x5 grid alone);
* ``("action_mask", "slot")`` ``[E, 6, N_max]``: False on the padding (an op with no relevant slot
  keeps index 0 legal, as every env does).

A slot index ``n < N_g`` means the same slot in the padded and in the sub-env's own layout
(padding is appended), so actions pass through unchanged. Every sub-env shares ``config``
(``task_seed`` included: the world's values depend on the normalised position, so each grid is
the same task at another resolution) and draws its episode noise from ``seed + i *
GRID_SEED_STRIDE``.

A flat (fixed-``N``) policy cannot take it; the Slot Transformer can.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.envs import EnvBase

from torchrl_slots import layout
from torchrl_slots.envs.config import LifecycleConfig, check_int
from torchrl_slots.envs.seed_lifecycle import SeedLifecycleEnv

#: Seed offset between the sub-envs' episode noise (keeps their streams apart).
GRID_SEED_STRIDE = 104_729

__all__ = ["MixedGridEnv", "parse_grids"]


def parse_grids(text: str | Sequence[str] | Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``"1x3,2x5"`` (or ``["1x3", "2x5"]`` or ``[(1, 3), (2, 5)]``) -> ``[(1, 3), (2, 5)]``.

    Examples:
        >>> parse_grids("1x3,2x5")
        [(1, 3), (2, 5)]
        >>> parse_grids("1x0")
        Traceback (most recent call last):
        ...
        ValueError: a grid must be ROWSxCOLS with positive ints (e.g. 2x5), got '1x0'
    """
    items = [t for t in text.split(",") if t.strip()] if isinstance(text, str) else list(text)
    if not items:
        raise ValueError("expected at least one grid (e.g. '1x3,2x5'), got none")
    out = []
    for item in items:
        if isinstance(item, str):
            try:
                rows, cols = (int(x) for x in item.strip().lower().split("x"))
            except ValueError:
                rows = cols = 0
        else:
            rows, cols = item
        if not (isinstance(rows, int) and isinstance(cols, int) and rows > 0 and cols > 0):
            raise ValueError(f"a grid must be ROWSxCOLS with positive ints (e.g. 2x5), got {item!r}")
        out.append((rows, cols))
    return out


class MixedGridEnv(EnvBase):
    """``envs_per_grid`` episodes of each grid in ``grids``, padded to the largest ``N``.

    Args:
        envs_per_grid: episodes per grid (the batch is ``envs_per_grid * len(grids)``).
        grids: ``[(rows, cols), ...]`` or ``"1x3,2x5"``; the batch holds them in this order.
        config: one :class:`LifecycleConfig` for every grid.
        device: torch device.
        seed: episode-noise seed (sub-env ``i`` uses ``seed + i * GRID_SEED_STRIDE``).

    Attributes:
        envs: the sub-envs, one per grid.
        grid_index: ``[E]`` int64, which grid each batch row plays.

    Examples:
        >>> env = MixedGridEnv(2, "1x3,2x5", seed=0)
        >>> td = env.rollout(25, break_when_any_done=False)
        >>> td.shape, td["observation", "slots"].shape[-2]
        (torch.Size([4, 25]), 10)
        >>> td["observation", "slot_mask"][:, 0].sum(-1).tolist()  # 3 slots, then 10
        [3, 3, 10, 10]
    """

    def __init__(
        self,
        envs_per_grid: int,
        grids: str | Sequence[tuple[int, int]] | Sequence[str],
        *,
        config: LifecycleConfig | None = None,
        device: torch.device | str | None = None,
        seed: int | None = None,
    ) -> None:
        check_int("envs_per_grid", envs_per_grid, minimum=1, what="a positive int")
        self.grids = parse_grids(grids)
        config = LifecycleConfig() if config is None else config
        if seed is None:
            seed = int(torch.empty((), dtype=torch.int64).random_().item())
        self.envs = [
            SeedLifecycleEnv(envs_per_grid, r, c, config=config, device=device, seed=seed + i * GRID_SEED_STRIDE)
            for i, (r, c) in enumerate(self.grids)
        ]
        device = self.envs[0].device
        super().__init__(device=device, batch_size=torch.Size([envs_per_grid * len(self.grids)]))
        self.config, self.envs_per_grid = config, envs_per_grid
        self.num_envs = envs_per_grid * len(self.grids)
        self.num_slots = max(r * c for r, c in self.grids)
        self.grid_index = torch.arange(len(self.grids), device=device).repeat_interleave(envs_per_grid)
        self._make_specs()
        self._seed = seed

    def _make_specs(self) -> None:
        # The largest grid's specs over the whole batch (its row/col bounds cover every grid).
        rows, cols = max(r for r, _ in self.grids), max(c for _, c in self.grids)
        if rows * cols != self.num_slots:
            raise ValueError(
                f"the largest grid must have the most rows and the most cols (expected a grid of {rows}x{cols} "
                f"among {self.grids}, the padded layout's extents)"
            )
        ref = SeedLifecycleEnv(self.num_envs, rows, cols, config=self.config, device=self.device, seed=0)
        self.observation_spec = ref.observation_spec.clone()
        self.action_spec = ref.action_spec.clone()
        self.reward_spec = ref.reward_spec.clone()
        self.done_spec = ref.done_spec.clone()

    def _set_seed(self, seed: int | None) -> None:
        seed = 0 if seed is None else int(seed)
        for i, env in enumerate(self.envs):
            env.set_seed(seed + i * GRID_SEED_STRIDE)

    def _split(self, td: TensorDictBase | None, i: int) -> TensorDictBase | None:
        if td is None:
            return None
        k = self.envs_per_grid
        return td[i * k:(i + 1) * k]

    def _pad(self, out: TensorDictBase, n: int) -> TensorDictBase:
        """Pad one sub-env's output from ``n`` to ``num_slots`` slots."""
        extra = self.num_slots - n
        if extra == 0:
            return out
        k = out.batch_size[0]
        obs, masks = out["observation"], out["action_mask"]
        dev = self.device
        obs["slots"] = torch.cat([obs["slots"], obs["slots"].new_zeros(k, extra, layout.SLOT_FEATURES)], -2)
        obs["slot_mask"] = torch.cat([obs["slot_mask"], torch.zeros(k, extra, dtype=torch.bool, device=dev)], -1)
        for key in ("slot_row", "slot_col"):
            obs[key] = torch.cat([obs[key], torch.zeros(k, extra, dtype=torch.int64, device=dev)], -1)
        masks["slot"] = torch.cat(
            [masks["slot"], torch.zeros(k, layout.NUM_OPS, extra, dtype=torch.bool, device=dev)], -1)
        return out

    def _gather(self, outs: list[TensorDictBase]) -> TensorDictBase:
        padded = [self._pad(o, env.num_slots) for o, env in zip(outs, self.envs)]
        return TensorDict.cat(padded, 0)

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        outs = []
        for i, env in enumerate(self.envs):
            part = self._split(tensordict, i)
            if part is not None and "_reset" in part.keys():
                sub = TensorDict({"_reset": part["_reset"]}, batch_size=part.batch_size, device=self.device)
            else:
                sub = None
            outs.append(env._reset(sub))
        return self._gather(outs)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        outs = []
        for i, env in enumerate(self.envs):
            part = self._split(tensordict, i)
            action = part.select("action").clone()
            outs.append(env._step(action))
        return self._gather(outs)

    def state_tensors(self) -> dict:
        """Every sub-env's full state (see ``SeedLifecycleEnv.state_tensors``), for exact resume."""
        return {"grids": [env.state_tensors() for env in self.envs]}

    def load_state_tensors(self, saved: dict) -> None:
        """Inverse of :meth:`state_tensors`."""
        parts = saved.get("grids") if isinstance(saved, dict) else None
        if not isinstance(parts, list) or len(parts) != len(self.envs):
            raise ValueError(f"expected the state of {len(self.envs)} grids {self.grids}, got "
                             f"{len(parts) if isinstance(parts, list) else type(saved).__name__}")
        for env, part in zip(self.envs, parts):
            env.load_state_tensors(part)

    def rand_action(self, tensordict: TensorDictBase | None = None) -> TensorDictBase:
        """A uniformly random legal action for every env (each sub-env's own rule)."""
        td = TensorDict({"action": torch.cat([e.rand_action()["action"] for e in self.envs], 0)},
                        batch_size=self.batch_size, device=self.device)
        if tensordict is None:
            return td
        tensordict.update(td)
        return tensordict
