"""Backward compatibility between the flat observation and the nested slot keys.

Esper-lite's policies read one flat vector ``[*B, 23 + N*39]`` (base features, then each slot's
39 features) and split it by hand (its ``_extract_structured_features``). These two TorchRL
transforms do that split, and its inverse, as env transforms:

* :class:`FlatToSlots`: flat key -> ``("observation", "base" | "slots" | "slot_mask" |
  "slot_row" | "slot_col")``; the mask comes from a given key or is all True; rows/cols come
  from the grid.
* :class:`SlotsToFlat`: the nested keys -> one flat key, for tools that want the flat vector.
"""

from __future__ import annotations

import torch
from tensordict import TensorDictBase
from tensordict.utils import NestedKey
from torchrl.data import Binary, Bounded, Composite, Unbounded
from torchrl.envs.transforms import Transform

from torchrl_slots import layout

_OBS = "observation"


def _check_grid(rows: int, cols: int) -> None:
    if rows <= 0 or cols <= 0 or rows > layout.MAX_GRID or cols > layout.MAX_GRID:
        raise ValueError(f"rows and cols must be in [1, {layout.MAX_GRID}], got rows={rows}, cols={cols}")


class FlatToSlots(Transform):
    """Split a flat observation ``[*B, 23 + N*39]`` into the nested slot keys.

    Args:
        rows: grid rows; ``N = rows * cols``.
        cols: grid columns.
        in_key: the flat observation key (kept unless ``del_in_key``).
        mask_key: optional bool ``[*B, N]`` key holding which slots are enabled (all True if None).
        prefix: the nested key the slot keys are written under (default ``"observation"``).
        del_in_key: remove the flat key after splitting.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> t = FlatToSlots(rows=1, cols=2, in_key="flat")
        >>> td = t(TensorDict({"flat": torch.randn(4, 23 + 2 * 39)}, batch_size=[4]))
        >>> td["observation", "slots"].shape, td["observation", "slot_mask"].all().item()
        (torch.Size([4, 2, 39]), True)
    """

    def __init__(
        self,
        rows: int,
        cols: int,
        *,
        in_key: NestedKey = "observation_flat",
        mask_key: NestedKey | None = None,
        prefix: str = _OBS,
        del_in_key: bool = False,
    ) -> None:
        _check_grid(rows, cols)
        self.rows, self.cols, self.num_slots = rows, cols, rows * cols
        self.prefix, self.mask_key, self.del_in_key = prefix, mask_key, del_in_key
        out_keys = [(prefix, k) for k in ("base", "slots", "slot_mask", "slot_row", "slot_col")]
        in_keys = [in_key] + ([mask_key] if mask_key is not None else [])
        super().__init__(in_keys=in_keys, out_keys=out_keys)
        row_ids, col_ids = layout.grid_ids(rows, cols)
        self.register_buffer("row_ids", row_ids, persistent=False)
        self.register_buffer("col_ids", col_ids, persistent=False)

    @property
    def flat_dim(self) -> int:
        return layout.BASE_FEATURES + self.num_slots * layout.SLOT_FEATURES

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        flat = next_tensordict.get(self.in_keys[0], None)
        if flat is None:
            if self.missing_tolerance:
                return next_tensordict
            raise KeyError(f"FlatToSlots: missing key {self.in_keys[0]!r}")
        if flat.shape[-1] != self.flat_dim:
            raise ValueError(
                f"FlatToSlots: expected the last dim of {self.in_keys[0]!r} to be 23 + {self.num_slots}*39 = "
                f"{self.flat_dim}, got shape {tuple(flat.shape)}"
            )
        batch = flat.shape[:-1]
        base = flat[..., : layout.BASE_FEATURES]
        slots = flat[..., layout.BASE_FEATURES:].reshape(*batch, self.num_slots, layout.SLOT_FEATURES)
        if self.mask_key is not None:
            mask = next_tensordict.get(self.mask_key)
            if mask.dtype != torch.bool or mask.shape != (*batch, self.num_slots):
                raise ValueError(
                    f"FlatToSlots: mask {self.mask_key!r} must be bool {(*batch, self.num_slots)}, "
                    f"got {mask.dtype} {tuple(mask.shape)}"
                )
        else:
            mask = torch.ones(*batch, self.num_slots, dtype=torch.bool, device=flat.device)
        rows = self.row_ids.to(flat.device).expand(*batch, self.num_slots)
        cols = self.col_ids.to(flat.device).expand(*batch, self.num_slots)
        for key, value in zip(self.out_keys, (base, slots, mask, rows, cols)):
            next_tensordict.set(key, value.clone())
        if self.del_in_key:
            next_tensordict.exclude(self.in_keys[0], inplace=True)
        return next_tensordict

    forward = _call

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        return self._call(tensordict_reset)

    def transform_observation_spec(self, observation_spec: Composite) -> Composite:
        spec = observation_spec[self.in_keys[0]]
        if spec.shape[-1] != self.flat_dim:
            raise ValueError(
                f"FlatToSlots: expected the spec of {self.in_keys[0]!r} to end in {self.flat_dim}, "
                f"got shape {tuple(spec.shape)}"
            )
        batch, dev, n = spec.shape[:-1], spec.device, self.num_slots
        observation_spec[self.out_keys[0]] = Unbounded((*batch, layout.BASE_FEATURES), device=dev)
        observation_spec[self.out_keys[1]] = Unbounded((*batch, n, layout.SLOT_FEATURES), device=dev)
        observation_spec[self.out_keys[2]] = Binary(n=n, shape=(*batch, n), dtype=torch.bool, device=dev)
        observation_spec[self.out_keys[3]] = Bounded(0, self.rows - 1, (*batch, n), dtype=torch.int64, device=dev)
        observation_spec[self.out_keys[4]] = Bounded(0, self.cols - 1, (*batch, n), dtype=torch.int64, device=dev)
        if self.del_in_key:
            del observation_spec[self.in_keys[0]]
        return observation_spec


class SlotsToFlat(Transform):
    """Concatenate ``(prefix, "base")`` and ``(prefix, "slots")`` into one flat key
    ``[*B, 23 + N*39]`` (the inverse of :class:`FlatToSlots`; masked slots are already zero).

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> td = TensorDict({"observation": {"base": torch.zeros(2, 23), "slots": torch.ones(2, 3, 39)}}, [2])
        >>> SlotsToFlat(out_key="flat")(td)["flat"].shape
        torch.Size([2, 140])
    """

    def __init__(self, *, out_key: NestedKey = "observation_flat", prefix: str = _OBS) -> None:
        super().__init__(in_keys=[(prefix, "base"), (prefix, "slots")], out_keys=[out_key])

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        base = next_tensordict.get(self.in_keys[0])
        slots = next_tensordict.get(self.in_keys[1])
        if base.shape[-1] != layout.BASE_FEATURES or slots.shape[-1] != layout.SLOT_FEATURES:
            raise ValueError(
                f"SlotsToFlat: expected base [..., {layout.BASE_FEATURES}] and slots [..., N, "
                f"{layout.SLOT_FEATURES}], got {tuple(base.shape)} and {tuple(slots.shape)}"
            )
        flat = torch.cat([base, slots.flatten(-2)], dim=-1)  # [*B, 23 + N*39]
        next_tensordict.set(self.out_keys[0], flat)
        return next_tensordict

    forward = _call

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        return self._call(tensordict_reset)

    def transform_observation_spec(self, observation_spec: Composite) -> Composite:
        base, slots = observation_spec[self.in_keys[0]], observation_spec[self.in_keys[1]]
        width = base.shape[-1] + slots.shape[-2] * slots.shape[-1]
        observation_spec[self.out_keys[0]] = Unbounded((*base.shape[:-1], width), device=base.device)
        return observation_spec
