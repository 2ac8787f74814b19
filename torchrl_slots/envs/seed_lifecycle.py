"""``SeedLifecycleEnv``: a batched TorchRL env surrogate of Esper-style seed management."""

from __future__ import annotations

import logging
from dataclasses import fields
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Binary, Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from torchrl_slots import layout
from torchrl_slots.envs.config import LifecycleConfig, check_int
from torchrl_slots.envs.features import FEATURE_BOUND, base_features, slot_features
from torchrl_slots.envs.simulator import SeedSimulator, SimState
from torchrl_slots.layout import Op, Stage

logger = logging.getLogger(__name__)

INFO_KEYS = ("score", "val_acc", "live_seeds", "fossilized", "invalid_action")


#: Added to the env's seed for ``rand_action``'s own stream: separates the random policy's draws
#: from the env's dynamics stream (so every policy sees the same episodes for a seed).
ACTION_RNG_SEED_OFFSET = 0x5EED

class LifecycleEnvBase(EnvBase):
    """The TensorDict side shared by the lifecycle envs: specs, seeding, action checks, legality
    (from ``self.sim``, a :class:`~torchrl_slots.envs.lifecycle.SeedLifecycle`), the reward and
    score formulas (module docstring of :mod:`torchrl_slots.envs.simulator`), observations and
    ``rand_action``. A subclass sets ``config``, ``rows``, ``cols``, ``num_envs``, ``num_slots``,
    ``sim``, ``_state = None``, ``_masks = None`` and ``_relevance``, calls ``_make_specs()`` and
    ``set_seed()``, and implements the hooks below. Its state needs the lifecycle fields plus
    ``contribution``, ``val_acc`` and ``rent_total``.
    """

    # ------------------------------------------------------------------ specs
    def _make_specs(self) -> None:
        e, n, dev = self.num_envs, self.num_slots, self.device
        sizes = layout.head_sizes(n)
        obs = Composite(
            base=Unbounded((e, layout.BASE_FEATURES), device=dev),
            slots=Bounded(-FEATURE_BOUND, FEATURE_BOUND, (e, n, layout.SLOT_FEATURES), device=dev),
            slot_mask=Binary(n=n, shape=(e, n), dtype=torch.bool, device=dev),
            slot_row=Bounded(0, self.rows - 1, (e, n), dtype=torch.int64, device=dev),
            slot_col=Bounded(0, self.cols - 1, (e, n), dtype=torch.int64, device=dev),
            shape=(e,),
            device=dev,
        )
        masks = {"op": Binary(n=layout.NUM_OPS, shape=(e, layout.NUM_OPS), dtype=torch.bool, device=dev)}
        for h in layout.HEADS[1:]:
            masks[h] = Binary(n=sizes[h], shape=(e, layout.NUM_OPS, sizes[h]), dtype=torch.bool, device=dev)
        info = Composite(
            score=Unbounded((e,), device=dev),
            val_acc=Unbounded((e,), device=dev),
            live_seeds=Unbounded((e,), dtype=torch.int64, device=dev),
            fossilized=Unbounded((e,), dtype=torch.int64, device=dev),
            invalid_action=Categorical(2, (e,), dtype=torch.bool, device=dev),
            shape=(e,),
            device=dev,
        )
        self.observation_spec = Composite(
            observation=obs,
            action_mask=Composite(masks, shape=(e,), device=dev),
            info=info,
            shape=(e,),
            device=dev,
        )
        actions = {h: Categorical(sizes[h], (e,), dtype=torch.int64, device=dev) for h in layout.HEADS}
        self.action_spec = Composite(action=Composite(actions, shape=(e,), device=dev), shape=(e,), device=dev)
        self.reward_spec = Unbounded((e, 1), device=dev)
        self.done_spec = Composite(
            done=Categorical(2, (e, 1), dtype=torch.bool, device=dev),
            terminated=Categorical(2, (e, 1), dtype=torch.bool, device=dev),
            truncated=Categorical(2, (e, 1), dtype=torch.bool, device=dev),
            shape=(e,),
            device=dev,
        )

    # ------------------------------------------------------------------ seeding
    def _set_seed(self, seed: int | None) -> None:
        seed = 0 if seed is None else int(seed)
        self._rng = torch.Generator(device=self.device).manual_seed(seed)
        # rand_action has its own stream, so a random policy sees the same episodes (host curves,
        # noise) as any other policy run with the same seed: common random numbers.
        self._action_rng = torch.Generator(device=self.device).manual_seed(seed + ACTION_RNG_SEED_OFFSET)
        self._state = None

    # ------------------------------------------------------------------ reset / step
    def _fresh(self, mask: torch.Tensor) -> None:
        """Subclass: start new episodes in ``self._state`` where ``mask`` ([E] bool; all on the
        first reset, when ``self._state`` is None)."""
        raise NotImplementedError

    def _transition(self, s, action: dict[str, torch.Tensor], legal: torch.Tensor) -> None:
        """Subclass: apply the ops (``legal`` [E] marks the executed ones) and run one epoch."""
        raise NotImplementedError

    def _rent(self, s) -> torch.Tensor:
        """Subclass: this epoch's rent ``rent_scale * sum(alpha * cost_b)``, ``[E]``."""
        raise NotImplementedError

    def _final_gain(self, s, fossil: torch.Tensor) -> torch.Tensor:
        """Subclass: what the kept (fossilized) seeds are worth at the last step, ``[E]``."""
        raise NotImplementedError

    def _features(self, s) -> tuple[torch.Tensor, torch.Tensor]:
        """Subclass: ``(base [E, 23], slots [E, N, 39])``."""
        raise NotImplementedError

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        mask = None if tensordict is None else tensordict.get("_reset", None)
        mask = torch.ones(self.num_envs, dtype=torch.bool, device=self.device) if mask is None else mask.view(-1)
        if self._state is None:
            mask = torch.ones_like(mask)
        self._fresh(mask)
        zeros = torch.zeros(self.num_envs, 1, dtype=torch.bool, device=self.device)
        out = self._observation(self._state, score=torch.zeros(self.num_envs, device=self.device),
                                invalid=torch.zeros(self.num_envs, dtype=torch.bool, device=self.device))
        out.update({"done": zeros, "terminated": zeros.clone(), "truncated": zeros.clone()})
        return out

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        if self._state is None:
            raise RuntimeError(f"{type(self).__name__}.step() called before reset()")
        s, sim, cfg = self._state, self.sim, self.config
        finished = s.epoch >= cfg.max_epochs  # [E]
        if not torch.compiler.is_compiling() and bool(finished.any()):
            envs = finished.nonzero().flatten().tolist()
            raise RuntimeError(
                f"{type(self).__name__}.step() after the last epoch (max_epochs={cfg.max_epochs}) of envs {envs} "
                f"without a reset: reset them first (env.reset() or a '_reset' mask; collectors and "
                f"env.rollout do this themselves)"
            )
        action = self._read_action(tensordict)
        legal = self._legal(action)
        if cfg.invalid_action == "raise" and not bool(legal.all()):
            raise ValueError(self._explain_illegal(action, legal))
        phi_before, c_before = sim.potential(s), s.contribution.sum(-1)
        self._transition(s, action, legal)
        rent = self._rent(s)
        s.rent_total = s.rent_total + rent
        done = s.epoch >= cfg.max_epochs  # [E]
        fossil = s.stage == Stage.FOSSILIZED
        c = s.contribution
        score = torch.where(done, self._final_gain(s, fossil) - s.rent_total, 0.0)
        if cfg.reward == "sparse":
            reward = score
        else:
            executed_op = torch.where(legal, action["op"], 0)
            phi_after = torch.where(done, 0.0, sim.potential(s))
            reward = (c.sum(-1) - c_before) - rent - cfg.op_cost * (executed_op != Op.WAIT)
            reward = reward + cfg.pbrs_scale * (cfg.gamma * phi_after - phi_before)
            good = (fossil & (c >= cfg.fossil_bonus_threshold)).sum(-1)
            terminal = -(c * ~fossil).sum(-1) + cfg.fossil_bonus * good
            reward = reward + torch.where(done, terminal, 0.0)
        out = self._observation(s, score=score, invalid=~legal)
        out.update(
            {
                "reward": reward.unsqueeze(-1),
                "done": done.unsqueeze(-1),
                "terminated": done.unsqueeze(-1).clone(),
                "truncated": torch.zeros_like(done).unsqueeze(-1),
            }
        )
        return out

    def _observation(self, s, *, score: torch.Tensor, invalid: torch.Tensor) -> TensorDict:
        self._masks = self.sim.masks(s)
        live = self.sim.is_live(s)
        rows = self.sim.row_ids.expand(self.num_envs, -1)
        cols = self.sim.col_ids.expand(self.num_envs, -1)
        base, slots = self._features(s)
        return TensorDict(
            {
                "observation": {
                    "base": base,
                    "slots": slots,
                    "slot_mask": s.enabled.clone(),
                    "slot_row": rows.clone(),
                    "slot_col": cols.clone(),
                },
                "action_mask": dict(self._masks),
                "info": {
                    "score": score,
                    "val_acc": s.val_acc.clone(),
                    "live_seeds": live.sum(-1),
                    "fossilized": (s.stage == Stage.FOSSILIZED).sum(-1),
                    "invalid_action": invalid,
                },
            },
            batch_size=self.batch_size,
            device=self.device,
        )

    # ------------------------------------------------------------------ actions
    def _read_action(self, tensordict: TensorDictBase) -> dict[str, torch.Tensor]:
        sizes = layout.head_sizes(self.num_slots)
        action = {}
        for h in layout.HEADS:
            value = tensordict.get(("action", h), None)
            if value is None:
                raise KeyError(f"missing action key ('action', {h!r}); expected all of {layout.HEADS}")
            if value.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
                raise ValueError(f"action {h!r} must be an integer tensor, got dtype {value.dtype}")
            if value.shape != (self.num_envs,):
                raise ValueError(f"action {h!r} must have shape ({self.num_envs},), got {tuple(value.shape)}")
            if bool(((value < 0) | (value >= sizes[h])).any()):
                raise ValueError(
                    f"action {h!r} must be in [0, {sizes[h]}), got values {value.unique().tolist()}"
                )
            action[h] = value.to(device=self.device, dtype=torch.int64)
        return action

    def _legal(self, action: dict[str, torch.Tensor]) -> torch.Tensor:
        """[E] bool: op legal, slot legal for it, and every relevant head legal for it."""
        m, op = self._masks, action["op"]
        ar = torch.arange(self.num_envs, device=self.device)
        ok = m["op"][ar, op]
        rel = self._relevance[op]  # [E, 8]
        for i, h in enumerate(layout.HEADS[1:], start=1):
            ok = ok & (~rel[:, i] | m[h][ar, op, action[h]])
        return ok

    def _explain_illegal(self, action: dict[str, torch.Tensor], legal: torch.Tensor) -> str:
        i = int((~legal).nonzero()[0, 0])
        op, slot = Op(int(action["op"][i])), int(action["slot"][i])
        r, c = divmod(slot, self.cols)
        stage = Stage(int(self._state.stage[i, slot]))
        if not bool(self._masks["op"][i, op]):
            why = f"op {op.name} has no legal slot now"
        elif op != Op.WAIT and not bool(self._masks["slot"][i, op, slot]):
            enabled = bool(self._state.enabled[i, slot])
            why = f"slot {layout.slot_id(r, c)} is {'enabled' if enabled else 'disabled'} and in stage {stage.name}"
        else:
            bad = [h for h in layout.HEAD_RELEVANCE[op][1:] if not bool(self._masks[h][i, op, action[h][i]])]
            why = f"head(s) {bad} hold illegal values for {op.name}"
        return (
            f"illegal action in env {i}: op={op.name}, slot={slot} ({layout.slot_id(r, c)}): {why} "
            f"(set LifecycleConfig(invalid_action='wait') to execute illegal actions as WAIT)"
        )

    def rand_action(self, tensordict: TensorDictBase | None = None) -> TensorDictBase:
        """A uniformly random LEGAL factored action (op first, then that op's mask rows)."""
        from torchrl_slots.envs.reference import sample_legal

        if self._masks is None:
            raise RuntimeError("rand_action() needs a reset env")
        action = sample_legal(self._masks, self._action_rng)
        td = TensorDict({"action": action}, batch_size=self.batch_size, device=self.device)
        if tensordict is None:
            return td
        tensordict.update(td)
        return tensordict

    @property
    def state(self):
        """The env's state (hidden quantities included): for oracles and tests, not for policies."""
        if self._state is None:
            raise RuntimeError("the env has not been reset yet")
        return self._state


class SeedLifecycleEnv(LifecycleEnvBase):
    """Batched surrogate of morphogenetic training: one step = one host epoch.

    ``num_envs`` independent episodes on a ``rows x cols`` slot grid, all tensors (no Python loop
    over envs or slots). Keys follow docs/design.md's TensorDict contract: ``("observation", "base" |
    "slots" | "slot_mask" | "slot_row" | "slot_col")``, ``("action_mask", head)``,
    ``("action", head)``, ``("info", k)``, ``reward``/``done``/``terminated``/``truncated``.
    Dynamics and reward: :mod:`torchrl_slots.envs.simulator`; features:
    :mod:`torchrl_slots.envs.features`.

    Args:
        num_envs: number of parallel episodes (the env's batch size).
        rows: grid rows (1..16).
        cols: grid columns (1..16); the column is the depth through the host.
        config: :class:`LifecycleConfig` (defaults if None).
        device: torch device of every tensor.
        seed: seed of the episode noise (``config.task_seed`` fixes the world).

    Examples:
        >>> env = SeedLifecycleEnv(num_envs=4, rows=1, cols=3, seed=0)
        >>> td = env.rollout(25, break_when_any_done=False)  # random legal actions
        >>> td.shape
        torch.Size([4, 25])
        >>> td["next", "info", "score"][:, :-1].abs().sum().item()  # score only at the last step
        0.0
        >>> bool(td["next", "terminated"][:, -1].all())
        True
    """

    def __init__(
        self,
        num_envs: int = 8,
        rows: int = 1,
        cols: int = 3,
        *,
        config: LifecycleConfig | None = None,
        device: torch.device | str | None = None,
        seed: int | None = None,
    ) -> None:
        check_int("num_envs", num_envs, minimum=1, what="a positive int")
        config = LifecycleConfig() if config is None else config
        config.validate(rows, cols)
        device = torch.device(device) if device is not None else torch.device("cpu")
        super().__init__(device=device, batch_size=torch.Size([num_envs]))
        self.config, self.rows, self.cols = config, rows, cols
        self.num_envs, self.num_slots = num_envs, rows * cols
        self.sim = SeedSimulator(num_envs, rows, cols, config, device=device)
        self._state: SimState | None = None
        self._masks: dict[str, torch.Tensor] | None = None
        self._relevance = layout.relevance_matrix().to(device)  # [6, 8]
        self._make_specs()
        if seed is None:
            seed = int(torch.empty((), dtype=torch.int64).random_().item())
        self.set_seed(seed)

    def _fresh(self, mask: torch.Tensor) -> None:
        self._state = self.sim.reset(self._state, mask, self._rng)

    def _transition(self, s: SimState, action: dict[str, torch.Tensor], legal: torch.Tensor) -> None:
        cfg, sim = self.config, self.sim
        e, n, dev, gen = self.num_envs, self.num_slots, self.device, self._rng
        noise = {
            "gain": torch.randn(e, n, generator=gen, device=dev) * cfg.gain_noise,
            "obs": torch.randn(e, n, generator=gen, device=dev),
            "weak": torch.randn(e, n, generator=gen, device=dev),
            "val": torch.randn(e, generator=gen, device=dev),
            "train": torch.randn(e, generator=gen, device=dev),
        }
        sim.apply(s, action, legal, noise["gain"])
        sim.epoch(s, noise)

    def _rent(self, s: SimState) -> torch.Tensor:
        return self.sim.rent(s)

    def _final_gain(self, s: SimState, fossil: torch.Tensor) -> torch.Tensor:
        return (s.contribution * fossil).sum(-1)

    def _features(self, s: SimState) -> tuple[torch.Tensor, torch.Tensor]:
        return base_features(self.sim, s), slot_features(self.sim, s)

    @property
    def state(self) -> SimState:
        """The simulator state (hidden world included): for oracles and tests, not for policies."""
        if self._state is None:
            raise RuntimeError("the env has not been reset yet")
        return self._state

    def state_tensors(self) -> dict[str, Any]:
        """Everything the next steps depend on, as plain tensors (for an exact resume): the
        simulator state, the last masks and both random streams.

        Examples:
            >>> env = SeedLifecycleEnv(2, 1, 3, seed=0)
            >>> _ = env.reset()
            >>> saved = env.state_tensors()
            >>> a = env.step(env.rand_action())["next", "observation", "base"]
            >>> env.load_state_tensors(saved)
            >>> torch.equal(env.step(env.rand_action())["next", "observation", "base"], a)
            True
        """
        if self._state is None or self._masks is None:
            raise RuntimeError("state_tensors() needs a reset env")
        return {
            "sim": {f.name: getattr(self._state, f.name).clone() for f in fields(self._state)},
            "masks": {k: v.clone() for k, v in self._masks.items()},
            "rng": self._rng.get_state(),
            "action_rng": self._action_rng.get_state(),
        }

    def load_state_tensors(self, saved: dict[str, Any]) -> None:
        """Inverse of :meth:`state_tensors`; raises ``ValueError`` for a state of another shape."""
        names = {f.name for f in fields(SimState)}
        if set(saved.get("sim", {})) != names:
            raise ValueError(f"saved env state has fields {sorted(saved.get('sim', {}))}, expected {sorted(names)}")
        sim = {k: v.to(self.device) for k, v in saved["sim"].items()}
        if sim["epoch"].shape != (self.num_envs,) or sim["enabled"].shape != (self.num_envs, self.num_slots):
            raise ValueError(
                f"saved env state is for {tuple(sim['enabled'].shape)} (envs, slots), this env is "
                f"{(self.num_envs, self.num_slots)}"
            )
        self._state = SimState(**sim)
        self._masks = {k: v.to(self.device) for k, v in saved["masks"].items()}
        self._rng.set_state(saved["rng"])
        self._action_rng.set_state(saved["action_rng"])
