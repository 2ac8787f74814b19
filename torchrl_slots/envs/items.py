"""``ItemsEnv``: pick the item with the best neighbourhood (a set-of-entities bandit, not Esper).

A small second env for reusing the encoder outside seed management. Each episode shows ``N``
item slots in the square ``[-1, 1]^2``, of which a random subset of ``k`` (``min_items <= k <= N``) is
valid. Every item has ``FEATURES = 7`` features::

    [x, y, quality, d0, d1, d2, d3]      x, y ~ U(-1, 1); quality, d* ~ N(0, 1)

where ``d*`` are distractors. Every feature is at unit scale on purpose: the encoder embeds a slot
with one shared ``Linear``, and locations squeezed into ``[0, 1]`` (std 0.29, next to std-1
qualities) made learning who is near whom about 3x slower in a supervised check. The policy picks one valid item
``i`` and the episode ends
(one step: a contextual bandit) with reward

    value_i = quality_i + sum of quality_j over valid j != i with |p_i - p_j| <= radius.

An item's worth thus depends on its neighbours, which are knowable from the features alone
(no grid rows/cols: use ``positional="none"``). "Pick the highest own quality" is the best rule
that looks at one item at a time; it is beaten by looking at the neighbourhood.

Keys: ``("items", "features")`` float ``[E, N, 7]``, ``("items", "mask")`` bool ``[E, N]``,
``"action"`` int64 ``[E]`` (an item index), ``"reward"`` ``[E, 1]``, ``"done"``/``"terminated"``
``[E, 1]``. Picking an invalid item raises ``ValueError`` naming the env.
"""

from __future__ import annotations

import logging

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Binary, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

__all__ = ["FEATURES", "ItemsEnv", "item_values"]

logger = logging.getLogger(__name__)

#: Width of one item's features: x, y, quality and four distractors.
FEATURES = 7
FEATURES_KEY = ("items", "features")
MASK_KEY = ("items", "mask")


def item_values(features: torch.Tensor, mask: torch.Tensor, radius: float) -> torch.Tensor:
    """Own quality plus the qualities of the valid items within ``radius`` (see module docstring).

    Args:
        features: ``[*B, N, 7]``.
        mask: bool ``[*B, N]``.
        radius: neighbourhood radius (Euclidean, inclusive).

    Returns:
        ``[*B, N]``; invalid items get ``-inf``.

    Examples:
        >>> f = torch.zeros(3, 7)
        >>> f[:, :3] = torch.tensor([[0.0, 0.0, 1.0], [0.1, 0.0, 2.0], [0.9, 0.9, 5.0]])
        >>> item_values(f, torch.tensor([True, True, True]), radius=0.2)
        tensor([3., 3., 5.])
        >>> item_values(f, torch.tensor([True, False, True]), radius=0.2)
        tensor([1., -inf, 5.])
    """
    pos, quality = features[..., :2], features[..., 2]  # [*B, N, 2], [*B, N]
    dist = torch.cdist(pos, pos)  # [*B, N, N]
    near = (dist <= radius) & mask[..., None, :]  # [*B, N, N]: j near i and valid (i itself included)
    values = (near * quality[..., None, :]).sum(-1)  # [*B, N]
    return values.masked_fill(~mask, float("-inf"))


class ItemsEnv(EnvBase):
    """Batched one-step bandit: pick one of a variable set of items (module docstring).

    Args:
        num_envs: parallel episodes (the batch size).
        num_items: ``N``, item slots per episode.
        min_items: fewest valid items; the count is uniform in ``[min_items, N]``. Default
            ``max(1, N // 2)``.
        radius: neighbourhood radius (the square has side 2). Default 0.6.
        device: torch device.
        seed: seed of the episodes; ``rand_action`` has its own stream.

    Examples:
        >>> from torchrl.envs.utils import check_env_specs
        >>> env = ItemsEnv(num_envs=4, num_items=6, seed=0)
        >>> check_env_specs(env)
        >>> td = env.rollout(3, break_when_any_done=False)  # random valid picks
        >>> td["items", "features"].shape, bool(td["next", "done"].all())
        (torch.Size([4, 3, 6, 7]), True)
        >>> picked = td["items", "mask"].gather(-1, td["action"][..., None])
        >>> bool(picked.all())
        True
    """

    def __init__(
        self,
        num_envs: int = 64,
        num_items: int = 10,
        *,
        min_items: int | None = None,
        radius: float = 0.6,
        device: torch.device | str | None = None,
        seed: int | None = None,
    ) -> None:
        min_items = max(1, num_items // 2) if min_items is None else min_items
        if num_envs <= 0 or num_items <= 0 or not 1 <= min_items <= num_items or radius < 0:
            raise ValueError(
                f"expected num_envs >= 1, num_items >= 1, 1 <= min_items <= num_items, radius >= 0; got "
                f"num_envs={num_envs}, num_items={num_items}, min_items={min_items}, radius={radius}"
            )
        device = torch.device(device) if device is not None else torch.device("cpu")
        super().__init__(device=device, batch_size=torch.Size([num_envs]))
        self.num_envs, self.num_items, self.min_items, self.radius = num_envs, num_items, min_items, radius
        self._features: torch.Tensor | None = None
        self._mask: torch.Tensor | None = None
        self._make_specs()
        self.set_seed(int(torch.empty((), dtype=torch.int64).random_().item()) if seed is None else seed)

    def _make_specs(self) -> None:
        e, n, dev = self.num_envs, self.num_items, self.device
        items = Composite(
            features=Unbounded((e, n, FEATURES), device=dev),
            mask=Binary(n=n, shape=(e, n), dtype=torch.bool, device=dev),
            shape=(e,),
            device=dev,
        )
        self.observation_spec = Composite(items=items, shape=(e,), device=dev)
        self.action_spec = Categorical(n, (e,), dtype=torch.int64, device=dev)
        self.reward_spec = Unbounded((e, 1), device=dev)
        self.done_spec = Composite(
            done=Categorical(2, (e, 1), dtype=torch.bool, device=dev),
            terminated=Categorical(2, (e, 1), dtype=torch.bool, device=dev),
            shape=(e,),
            device=dev,
        )

    def _set_seed(self, seed: int | None) -> None:
        seed = 0 if seed is None else int(seed)
        self._rng = torch.Generator(device=self.device).manual_seed(seed)
        self._action_rng = torch.Generator(device=self.device).manual_seed(seed + 0x17E5)
        self._features = self._mask = None

    def _draw(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` fresh episodes: features ``[count, N, 7]`` and a random valid subset."""
        n, dev, gen = self.num_items, self.device, self._rng
        pos = torch.rand(count, n, 2, generator=gen, device=dev) * 2 - 1  # [c, N, 2] in [-1, 1]
        rest = torch.randn(count, n, FEATURES - 2, generator=gen, device=dev)  # [c, N, 5]
        k = torch.randint(self.min_items, n + 1, (count, 1), generator=gen, device=dev)  # [c, 1]
        rank = torch.rand(count, n, generator=gen, device=dev).argsort(-1).argsort(-1)  # [c, N] random ranks
        return torch.cat([pos, rest], dim=-1), rank < k

    def _observation(self) -> TensorDict:
        items = {"features": self._features.clone(), "mask": self._mask.clone()}
        return TensorDict({"items": items}, batch_size=self.batch_size, device=self.device)

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        reset = None if tensordict is None else tensordict.get("_reset", None)
        if reset is None or self._features is None:
            self._features, self._mask = self._draw(self.num_envs)
        else:
            idx = reset.view(-1).nonzero().squeeze(-1)  # [r]
            self._features[idx], self._mask[idx] = self._draw(idx.numel())
        out = self._observation()
        zeros = torch.zeros(self.num_envs, 1, dtype=torch.bool, device=self.device)
        out.update({"done": zeros, "terminated": zeros.clone()})
        return out

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        if self._features is None:
            raise RuntimeError("ItemsEnv.step() called before reset()")
        action = tensordict.get("action").view(-1).long()  # [E]
        if bool(((action < 0) | (action >= self.num_items)).any()):
            raise ValueError(f"action must be an item index in [0, {self.num_items}), got {action.tolist()}")
        legal = self._mask.gather(-1, action[:, None]).squeeze(-1)  # [E]
        if not bool(legal.all()):
            i = int((~legal).nonzero()[0])
            raise ValueError(f"env {i} picked item {int(action[i])}, which is not valid ({MASK_KEY} is False there)")
        values = item_values(self._features, self._mask, self.radius)  # [E, N]
        reward = values.gather(-1, action[:, None])  # [E, 1]
        out = self._observation()
        ones = torch.ones(self.num_envs, 1, dtype=torch.bool, device=self.device)
        out.update({"reward": reward, "done": ones, "terminated": ones.clone()})
        return out

    def rand_action(self, tensordict: TensorDictBase | None = None) -> TensorDictBase:
        """A uniformly random VALID item per env (its own random stream)."""
        if self._mask is None:
            raise RuntimeError("rand_action() needs a reset env")
        weights = self._mask.float()  # [E, N]
        action = torch.multinomial(weights, 1, generator=self._action_rng).squeeze(-1)  # [E]
        td = TensorDict({"action": action}, batch_size=self.batch_size, device=self.device)
        if tensordict is None:
            return td
        tensordict.update(td)
        return tensordict

    def values(self) -> torch.Tensor:
        """Current item values ``[E, N]`` (``-inf`` for invalid items): for baselines and tests."""
        if self._features is None:
            raise RuntimeError("the env has not been reset yet")
        return item_values(self._features, self._mask, self.radius)
