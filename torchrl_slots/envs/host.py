"""``HostTrainingEnv``: the seed lifecycle on a real host network that really trains.

Same TensorDict contract, lifecycle (:class:`~torchrl_slots.envs.lifecycle.SeedLifecycle`), reward
and score formulas as :class:`~torchrl_slots.envs.SeedLifecycleEnv`, but every number is measured:
``E`` small residual MLPs learn scikit-learn's ``load_digits`` (fixed train/validation split), one
env step = one epoch of ``batches_per_epoch`` Adam minibatches, and a seed is one of the 12 real
module families of :mod:`~torchrl_slots.envs.host_seeds` grafted on a lane of the host
(:mod:`~torchrl_slots.envs.host_net`). Grid: ``col`` = depth (after host block ``col``), ``row`` =
lane (a group of ``lane_width`` features); the host is ``rows * lane_width`` wide and ``cols`` deep.

Measurements, batched over envs and seeds (one validation forward per alpha variant):

* contribution ``c_i`` = validation accuracy (pp) with the seed minus with its alpha set to 0;
  before alpha > 0 (TRAINING) the pre-alpha signal is the accuracy with the seed at alpha 1 minus
  without it (the seed learns, its output does not reach the host);
* scaffolding (features 22-23): the real pair interaction of two live neighbours,
  ``acc(all) - acc(-i) - acc(-j) + acc(-i-j)``; zeros with ``scaffolding=False``;
* rent cost of a seed = its real parameter count / the host's (plus the GATE style's gate);
* score (last step) = validation accuracy of the host with only its fossilized seeds (the others
  are discarded) minus the accuracy of its twin, the same host trained without seeds on the same
  episode seed (same init, same minibatches), minus the summed rent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from torchrl_slots import layout
from torchrl_slots.envs.config import LifecycleConfig, check_int
from torchrl_slots.envs.features import FEATURE_BOUND, slot_features
from torchrl_slots.envs.host_net import HostNets, digits_split
from torchrl_slots.envs.lifecycle import LifecycleState, SeedLifecycle, lifecycle_fields
from torchrl_slots.envs.seed_lifecycle import LifecycleEnvBase
from torchrl_slots.envs.world import neighbour_index
from torchrl_slots.layout import Stage

HISTORY = 5


@dataclass
class HostConfig(LifecycleConfig):
    """:class:`LifecycleConfig` plus the real host's settings (the surrogate's world and noise
    fields, ``affinity_std`` .. ``val_noise``, are unused here).

    Args:
        lane_width: features per lane (a multiple of 8); the host is ``rows * lane_width`` wide.
        train_size: training images (None = all 1,497 not in the validation split).
        val_size: validation images (the first ``val_size`` of the fixed permutation): accuracy,
            loss and score.
        measure_size: the first ``measure_size`` validation images measure the per-seed
            counterfactuals (contributions, pre-alpha probes, pair interactions), one forward
            per variant (all of them if ``val_size`` is smaller).
        batch_size: images per minibatch.
        batches_per_epoch: minibatches (Adam steps) per env step.
        lr: Adam learning rate of the host.
        seed_lr: Adam learning rate of the seeds.
        block_init: scale of the host blocks' initial weights.

    Examples:
        >>> cfg = HostConfig(train_size=200, val_size=100)
        >>> cfg.validate(rows=2, cols=5)
        >>> HostConfig.from_dict(cfg.to_dict()) == cfg
        True
    """

    lane_width: int = 8
    train_size: int | None = None
    val_size: int = 300
    measure_size: int = 128
    batch_size: int = 64
    batches_per_epoch: int = 4
    lr: float = 1.5e-3
    seed_lr: float = 5e-3
    block_init: float = 0.5

    def validate(self, rows: int, cols: int) -> None:
        super().validate(rows, cols)
        if self.lane_width <= 0 or self.lane_width % 8:
            raise ValueError(f"lane_width must be a positive multiple of 8, got {self.lane_width}")
        for name in ("batch_size", "batches_per_epoch", "val_size", "measure_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.train_size is not None and self.train_size <= 0:
            raise ValueError(f"train_size must be positive or None, got {self.train_size}")
        if not (self.lr > 0 and self.seed_lr > 0):
            raise ValueError(f"lr and seed_lr must be > 0, got {self.lr}, {self.seed_lr}")


@dataclass
class HostState(LifecycleState):
    """Lifecycle fields plus measurements and the networks (``host`` ``[E, 2, P_h]``: seeded host
    and twin; ``seeds`` ``[E, N, P_s]``; ``bank``: each slot's initial seed weights this episode)."""

    contribution: torch.Tensor  # [E, N] measured c_i (pp)
    pairs: torch.Tensor  # [E, N, 4] measured pair interactions with each neighbour (pp)
    val_acc: torch.Tensor  # [E]
    val_loss: torch.Tensor
    train_acc: torch.Tensor
    train_loss: torch.Tensor
    val_hist: torch.Tensor  # [E, 5] newest first
    loss_hist: torch.Tensor  # [E, 5]
    best_acc: torch.Tensor
    best_loss: torch.Tensor
    plateau: torch.Tensor  # int64
    rent_total: torch.Tensor
    twin_acc: torch.Tensor  # [E] the seedless twin's validation accuracy (at reset and the last step)
    final_gain: torch.Tensor  # [E] fossil-only accuracy - twin accuracy (last step only)
    host: torch.Tensor
    host_m: torch.Tensor
    host_v: torch.Tensor
    host_t: torch.Tensor  # [E, 1, 1]
    seeds: torch.Tensor
    seed_m: torch.Tensor
    seed_v: torch.Tensor
    seed_t: torch.Tensor  # [E, N, 1]
    bank: torch.Tensor


class HostLifecycle(SeedLifecycle):
    """:class:`SeedLifecycle` whose germination initialises the slot's seed from the bank (this
    episode's standard normal draws for the slot, scaled by the family's ``init_std``)."""

    init_std: torch.Tensor  # [13, P_s], set by the env

    def _on_germinate(self, s: HostState, m: torch.Tensor, action: dict[str, torch.Tensor], *extra) -> None:
        m3 = m[..., None]
        fresh = s.bank * self.init_std[action["blueprint"]][:, None, :]  # [E, N, P_s]
        s.seeds = torch.where(m3, fresh, s.seeds)
        s.seed_m = s.seed_m.masked_fill(m3, 0.0)
        s.seed_v = s.seed_v.masked_fill(m3, 0.0)
        s.seed_t = s.seed_t.masked_fill(m3, 0)


class HostTrainingEnv(LifecycleEnvBase):
    """Batched real host training with seeds: one step = one epoch of ``E`` host networks.

    See the module docstring for what is measured. Keys, specs, masks, reward and score follow
    :class:`~torchrl_slots.envs.SeedLifecycleEnv`, so the same policies run on it.

    Args:
        num_envs: parallel episodes (host pairs).
        rows: lanes of the host (1..16).
        cols: host blocks, the depth (1..16).
        config: :class:`HostConfig` (defaults if None).
        seed: seed of the episodes (host init, seed weights, minibatch order).

    Examples:
        >>> env = HostTrainingEnv(2, 1, 2, config=HostConfig(max_epochs=3, train_size=64, val_size=64), seed=0)
        >>> td = env.rollout(3, break_when_any_done=False)
        >>> td["next", "info", "score"][:, :-1].abs().sum().item(), bool(td["next", "terminated"][:, -1].all())
        (0.0, True)
    """

    def __init__(self, num_envs: int = 8, rows: int = 1, cols: int = 3, *, config: HostConfig | None = None,
                 seed: int | None = None) -> None:
        check_int("num_envs", num_envs, minimum=1, what="a positive int")
        config = HostConfig() if config is None else config
        if not isinstance(config, HostConfig):
            raise TypeError(f"config must be a HostConfig, got {type(config).__name__}")
        config.validate(rows, cols)
        super().__init__(device=torch.device("cpu"), batch_size=torch.Size([num_envs]))
        self.config, self.rows, self.cols = config, rows, cols
        self.num_envs, self.num_slots = num_envs, rows * cols
        self.sim = HostLifecycle(num_envs, rows, cols, config)
        self.nets = HostNets(rows, cols, config.lane_width, config.block_init)
        self.sim.init_std = self.nets.families.init_std
        self.x_train, self.y_train, self.x_val, self.y_val = digits_split(config.train_size, config.val_size)
        self._edges, self._edge_of = _edges(rows, cols)
        self._state: HostState | None = None
        self._masks = None
        self._relevance = layout.relevance_matrix()
        self._make_specs()
        if seed is None:
            seed = int(torch.empty((), dtype=torch.int64).random_().item())
        self.set_seed(seed)

    # ------------------------------------------------------------------ lifecycle hooks
    def _fresh(self, mask: torch.Tensor) -> None:
        e, n, gen, nets = self.num_envs, self.num_slots, self._rng, self.nets
        enabled = self.sim.draw_enabled(gen)
        host0 = torch.randn(e, 1, nets.host_size, generator=gen) * nets.host_init_std
        bank = torch.randn(e, n, nets.families.total, generator=gen)
        zf, zs = torch.zeros(e), torch.zeros(e, n, nets.families.total)
        host = host0.expand(e, 2, -1).clone()  # the twin starts as the same network
        fresh = HostState(
            **lifecycle_fields(enabled), contribution=torch.zeros(e, n), pairs=torch.zeros(e, n, 4),
            val_acc=zf, val_loss=zf, train_acc=zf, train_loss=zf, val_hist=torch.zeros(e, HISTORY),
            loss_hist=torch.zeros(e, HISTORY), best_acc=zf, best_loss=zf,
            plateau=torch.zeros(e, dtype=torch.long), rent_total=zf, twin_acc=zf, final_gain=zf,
            host=host, host_m=torch.zeros_like(host), host_v=torch.zeros_like(host),
            host_t=torch.zeros(e, 1, 1, dtype=torch.long), seeds=zs, seed_m=zs.clone(), seed_v=zs.clone(),
            seed_t=torch.zeros(e, n, 1, dtype=torch.long), bank=bank,
        )
        loss, acc, _, t_acc = nets.measure(fresh, fresh.alpha[:, None], self.x_val, self.y_val)
        acc = acc[:, 0]
        fresh.val_acc, fresh.val_loss, fresh.train_acc, fresh.train_loss = acc, loss, acc, loss
        fresh.twin_acc, fresh.best_acc, fresh.best_loss = t_acc, acc, loss
        fresh.val_hist = acc[:, None].expand(e, HISTORY).clone()
        fresh.loss_hist = loss[:, None].expand(e, HISTORY).clone()
        if self._state is None:
            self._state = fresh
        else:
            self._state.where_(mask, fresh)

    def _transition(self, s: HostState, action: dict[str, torch.Tensor], legal: torch.Tensor) -> None:
        cfg, e = self.config, self.num_envs
        self.sim.apply(s, action, legal)
        k, b = cfg.batches_per_epoch, cfg.batch_size
        idx = torch.randint(self.x_train.shape[0], (k, e, b), generator=self._rng)
        trainable = (s.stage >= Stage.TRAINING) & (s.stage <= Stage.HOLDING)
        s.train_loss, s.train_acc = self.nets.train_epoch(s, self.x_train[idx], self.y_train[idx], cfg.lr,
                                                          cfg.seed_lr, trainable)
        s.prev_alpha, s.prev_observed = s.alpha, s.observed
        s.epoch = s.epoch + 1
        self.sim.step_lifecycle(s)
        self._measure(s, done=s.epoch >= cfg.max_epochs)

    def _measure(self, s: HostState, done: torch.Tensor) -> None:
        """Measure what the features, reward and score need: the counterfactual variants (each live
        seed ablated, each TRAINING seed probed at alpha 1, each pair of live neighbours ablated) in
        one batched forward on the first ``measure_size`` validation images; the host as it is, the
        host with only its fossils, and the twin on the whole validation split."""
        e, n = self.num_envs, self.num_slots
        a = s.alpha
        active, probe = a > 0, s.stage == Stage.TRAINING
        eye = torch.eye(n, dtype=torch.bool)
        coefs = [a[:, None], torch.where(eye, 0.0, a[:, None]), torch.where(eye, 1.0, a[:, None])]
        valid = [torch.ones(e, 1, dtype=torch.bool), active, probe]
        use_pairs = self.config.scaffolding and self._edges.shape[0] > 0
        if use_pairs:
            i, j = self._edges[:, 0], self._edges[:, 1]
            both = eye[i] | eye[j]  # [P, N]
            coefs.append(torch.where(both, 0.0, a[:, None]))
            valid.append(active[:, i] & active[:, j])
        coef_all, valid_all = torch.cat(coefs, 1), torch.cat(valid, 1)  # [E, Vall, N], [E, Vall]
        acc_all = torch.zeros(valid_all.shape)
        v_max = int(valid_all.sum(-1).max())
        if v_max > 1:  # some seed to measure
            sel = torch.argsort((~valid_all).to(torch.int8), dim=1, stable=True)[:, :v_max]
            coef = coef_all.gather(1, sel[..., None].expand(-1, -1, n))
            m = min(self.config.measure_size, self.config.val_size)
            _, acc, _, _ = self.nets.measure(s, coef, self.x_val[:m], self.y_val[:m], twin=False)
            acc_all = acc_all.scatter(1, sel, acc)
        cf_base = acc_all[:, :1]
        abl, prb = acc_all[:, 1:1 + n], acc_all[:, 1 + n:1 + 2 * n]
        s.contribution = torch.where(active, cf_base - abl, 0.0)
        s.observed = torch.where(active, s.contribution, torch.where(probe, prb - cf_base, 0.0))
        if use_pairs:
            k = i.shape[0]
            edge = acc_all[:, 1 + 2 * n:1 + 2 * n + k]
            inter = torch.where(valid_all[:, 1 + 2 * n:], cf_base - abl[:, i] - abl[:, j] + edge, 0.0)
            s.pairs = torch.cat([inter, torch.zeros(e, 1)], 1)[:, self._edge_of]  # [E, N, 4]; pad = no neighbour
        last = bool(done.any())  # the score needs the fossils-only host and the twin, at the end only
        coef = torch.stack([a, torch.where(s.stage == Stage.FOSSILIZED, a, 0.0)], 1) if last else a[:, None]
        loss, acc, _, t_acc = self.nets.measure(s, coef, self.x_val, self.y_val, twin=last)
        base = acc[:, 0]
        if last:
            s.final_gain = torch.where(done, acc[:, 1] - t_acc, 0.0)
            s.twin_acc = torch.where(done, t_acc, s.twin_acc)
        else:
            s.final_gain = torch.zeros_like(base)
        val_loss = loss
        improved = base > s.best_acc + 0.1
        s.plateau = torch.where(improved, 0, s.plateau + 1)
        s.best_acc, s.best_loss = torch.maximum(s.best_acc, base), torch.minimum(s.best_loss, val_loss)
        s.val_acc, s.val_loss = base, val_loss
        s.val_hist = torch.cat([base[:, None], s.val_hist[:, :-1]], 1)
        s.loss_hist = torch.cat([val_loss[:, None], s.loss_hist[:, :-1]], 1)

    def _rent(self, s: HostState) -> torch.Tensor:
        return self.config.rent_scale * (s.alpha * self._seed_cost(s)).sum(-1)

    def _seed_cost(self, s: HostState) -> torch.Tensor:
        """Real parameter count of each slot's seed relative to the host, ``[E, N]``."""
        gate = (s.algorithm == layout.Algorithm.GATE) & (s.blueprint > 0)
        return self.nets.cost[s.blueprint] + self.nets.gate_cost * gate

    def _final_gain(self, s: HostState, fossil: torch.Tensor) -> torch.Tensor:
        return s.final_gain

    def _features(self, s: HostState) -> tuple[torch.Tensor, torch.Tensor]:
        t_max = float(self.config.max_epochs)
        t = s.epoch.float()
        live = self.sim.is_live(s)
        params = (self._seed_cost(s) * (live | (s.stage == Stage.FOSSILIZED))).sum(-1)
        n_enabled = s.enabled.sum(-1).clamp_min(1).float()
        cols = [t / t_max, (t_max - t) / t_max, s.train_loss, s.val_loss, s.loss_hist[:, 0] - s.loss_hist[:, 1],
                s.train_acc / 100.0, s.val_acc / 100.0, (s.val_hist[:, 0] - s.val_hist[:, 1]) / 10.0,
                s.plateau.float() / t_max, s.best_acc / 100.0, s.best_loss]
        base = torch.cat([torch.stack(cols, -1), s.loss_hist, s.val_hist / 100.0,
                          torch.stack([params, live.sum(-1).float() / n_enabled], -1)], dim=-1)
        return base.clamp(-FEATURE_BOUND, FEATURE_BOUND), slot_features(self.sim, s)

    @property
    def state(self) -> HostState:
        """The env state (networks and measurements): for tests and diagnostics, not for policies."""
        return super().state


def _edges(rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Undirected 4-neighbour pairs ``[P, 2]`` (i < j) and, per slot and neighbour direction, the
    pair's index (``P`` = no neighbour): ``[N, 4]``."""
    nbr = neighbour_index(rows, cols)
    n = rows * cols
    pairs = sorted({(min(a, b), max(a, b)) for a in range(n) for b in nbr[a].tolist() if b < n})
    index = {p: k for k, p in enumerate(pairs)}
    edge_of = torch.full((n, 4), len(pairs), dtype=torch.long)
    for a in range(n):
        for k, b in enumerate(nbr[a].tolist()):
            if b < n:
                edge_of[a, k] = index[(min(a, b), max(a, b))]
    return torch.tensor(pairs, dtype=torch.long).view(-1, 2), edge_of
