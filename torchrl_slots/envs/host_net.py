"""Batched host networks of :class:`~torchrl_slots.envs.HostTrainingEnv`: data, forward with grafted
seeds, one training epoch (Adam) and the batched counterfactual measurements.

Each env holds two hosts with the same initialisation and the same minibatches: the *seeded* host
(index 0), where the agent's seeds are grafted, and its *twin* (index 1), trained without seeds, the
reference of the score. All ``E`` envs run as batched matmuls on per-env weight tensors
(``[E, 2, ...]``); the Python loops run over host blocks and the blueprint families present in a
block, never over envs or slots.

Host: ``h = relu(x W_in + b_in)``; block ``c``: ``h = h + relu(h W_c + b_c)``, then the seeds of grid
column ``c`` are grafted on their lanes (row ``r`` = features ``r*w .. (r+1)*w``); logits ``h W_out``.
A seed's graft is ``h + alpha * phi`` with ``phi = z`` (ADD), ``h * tanh(z)`` (MULTIPLY) or
``sigmoid(h . w_g + b_g) * z`` (GATE), ``z`` the family's output. In TRAINING (``inc``) the seed reads
``h.detach()`` and adds ``phi - phi.detach()``: the value is exactly ``h`` (its output does not reach
the host) while the seed receives the host loss's gradient, and the host's gradient is untouched.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from torchrl_slots import layout
from torchrl_slots.envs.host_seeds import SeedFamilies

NUM_CLASSES = 10
IN_FEATURES = 64
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
#: smallest normal float32. Adam's ``sqrt(v_hat)`` is taken of ``max(v_hat, FLT_MIN)``: on this CPU
#: (AMD EPYC, torch 2.13) ``sqrt`` of exact zeros runs ~15x slower than of other values, and empty
#: seed slots keep ``v = 0``. The result is bit-identical: ``sqrt(FLT_MIN) ~ 1e-19`` is far below
#: the last bit of ``ADAM_EPS``, so ``sqrt(v_hat) + eps`` rounds to the same float either way.
FLT_MIN = torch.finfo(torch.float32).tiny


@functools.lru_cache(maxsize=4)
def digits_split(train_size: int | None, val_size: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's ``load_digits`` (1,797 8x8 images), pixels / 16, split once by a fixed
    permutation: the first ``val_size`` images validate, the next ``train_size`` (default: the
    rest) train. Returns ``(x_train, y_train, x_val, y_val)``."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("HostTrainingEnv needs scikit-learn: pip install 'torchrl_slots[real]'") from err
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    rest = x.shape[0] - val_size
    n_train = rest if train_size is None else train_size
    if not (0 < val_size < x.shape[0]) or not (0 < n_train <= rest):
        raise ValueError(f"train_size={train_size}, val_size={val_size} do not fit the {x.shape[0]} digits")
    return x[val_size:val_size + n_train], y[val_size:val_size + n_train], x[:val_size], y[:val_size]


def adam(p, g, m, v, t, lr: float, mask=None) -> None:
    """One Adam step, in place on ``p``, ``m``, ``v`` and the step counts ``t``, which are per env
    or per seed (an env or a seed restarts its optimizer state alone, which ``torch.optim.Adam``'s
    one step count per tensor cannot). ``mask`` (broadcastable bool) freezes entries."""
    b1, b2 = ADAM_BETAS
    if mask is not None:
        g = g * mask
        t += mask.long()
    else:
        t += 1
    m.mul_(b1).add_(g, alpha=1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    tf = t.clamp_min(1).float()
    denom = (v / (1 - b2**tf)).clamp_min_(FLT_MIN).sqrt_().add_(ADAM_EPS)
    step = (m * (lr / (1 - b1**tf))).div_(denom)
    if mask is not None:
        step.mul_(mask)
    p.sub_(step)


class HostNets:
    """Shapes, initial draws, forward, training and measurement of ``E`` host pairs.

    Examples:
        >>> nets = HostNets(rows=1, cols=3, lane_width=8)
        >>> nets.host_size, nets.families.total  # host weights; numbers per seed slot
        (826, 213)
        >>> layout.BLUEPRINTS[8].name, round(float(nets.cost[8]), 3)  # rent cost: seed params / host params
        ('mlp', 0.174)
    """

    def __init__(self, rows: int, cols: int, lane_width: int, block_init: float = 0.5) -> None:
        self.rows, self.cols, self.w = rows, cols, lane_width
        self.num_slots_per_env = rows * cols
        self.hidden = h = rows * lane_width
        self.families = SeedFamilies(lane_width)
        shapes = {"w_in": (IN_FEATURES, h), "b_in": (h,), "w_blk": (cols, h, h), "b_blk": (cols, h),
                  "w_out": (h, NUM_CLASSES), "b_out": (NUM_CLASSES,)}
        stds = {"w_in": math.sqrt(2.0 / IN_FEATURES), "w_blk": block_init * math.sqrt(2.0 / h),
                "w_out": 1.0 / math.sqrt(h)}
        self._host_layout, off, parts = {}, 0, []
        for name, shape in shapes.items():
            n = math.prod(shape)
            self._host_layout[name] = (off, n, shape)
            parts.append(torch.full((n,), stds.get(name, 0.0)))
            off += n
        self.host_size = off
        self.host_init_std = torch.cat(parts)
        #: rent cost of each blueprint: its real parameter count relative to the host's
        self.cost = self.families.sizes.float() / self.host_size
        self.gate_cost = (lane_width + 1) / self.host_size

    def host_params(self, flat: torch.Tensor, leaves: bool = False) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """The host weights ``flat`` ``[E, K, P_h]`` as ``[E, K, *shape]`` tensors, ``w_blk`` and
        ``b_blk`` as one tensor per block; ``leaves``: detached copies that require grad (one
        autograd leaf per weight, so no backward runs through slices of the flat tensor)."""
        out: dict[str, torch.Tensor | list[torch.Tensor]] = {}
        for k, (o, n, shape) in self._host_layout.items():
            t = flat[..., o:o + n].reshape(*flat.shape[:-1], *shape)
            if k in ("w_blk", "b_blk"):
                out[k] = [t[:, :, c].detach().requires_grad_() if leaves else t[:, :, c] for c in range(self.cols)]
            else:
                out[k] = t.detach().requires_grad_() if leaves else t
        return out

    def host_grad(self, p: dict[str, torch.Tensor | list[torch.Tensor]], grads: list[torch.Tensor]) -> torch.Tensor:
        """Gradients of :meth:`host_params` leaves (in ``self.leaf_list(p)`` order) back to ``[E, K, P_h]``."""
        lead = grads[0].shape[:2]
        parts, i = [], 0
        for k in self._host_layout:
            if k in ("w_blk", "b_blk"):
                parts.append(torch.stack(grads[i:i + self.cols], 2).reshape(*lead, -1))
                i += self.cols
            else:
                parts.append(grads[i].reshape(*lead, -1))
                i += 1
        return torch.cat(parts, -1)

    def leaf_list(self, p: dict[str, torch.Tensor | list[torch.Tensor]]) -> list[torch.Tensor]:
        out = []
        for k in self._host_layout:
            out.extend(p[k] if isinstance(p[k], list) else [p[k]])
        return out

    def seed_columns(self, seeds: torch.Tensor, leaves: bool = False) -> list[torch.Tensor]:
        """Per host column, its slots' seed parameters ``[E, 1, R, P_s]`` (``leaves``: autograd leaves)."""
        e = seeds.shape[0]
        cols = seeds.view(e, self.rows, self.cols, -1).unbind(2)
        return [(c.detach().requires_grad_() if leaves else c).unsqueeze(1) for c in cols]

    # ------------------------------------------------------------------ forward
    def forward(self, p: dict, x: torch.Tensor, seeds: dict | None = None) -> torch.Tensor:
        """Logits of hosts ``p`` (:meth:`host_params` of ``[E, K, P_h]``) on inputs ``x``
        ``[E or 1, 1, M, 64]`` (or ``[M, 64]``).

        ``seeds`` (grafted on host index 0 only): ``columns`` (:meth:`seed_columns`), ``coef`` ``[E, V, N]``
        (each seed's alpha in each of ``V`` variants), ``inc`` ``[E, N]`` bool or None (TRAINING
        incubator), ``blueprint`` and ``algorithm`` ``[E, N]``, and optionally ``plan`` (:meth:`plan`
        of these seeds, made here if absent). Returns ``[E, K - 1 + V, M, 10]``
        when seeds are given (the seeded variants first), else ``[E, K, M, 10]``.
        """
        hid = torch.relu(torch.matmul(x, p["w_in"]) + p["b_in"].unsqueeze(-2))  # [E, K, M, H]
        plan = (seeds.get("plan") or self.plan(seeds)) if seeds is not None else None
        own_only = p["w_in"].shape[1] == 1  # measurement: one host per env, seeds on it
        for c in range(self.cols):
            hid = hid + torch.relu(torch.matmul(hid, p["w_blk"][c]) + p["b_blk"][c].unsqueeze(-2))
            if plan is not None and plan[c] is not None:
                if own_only:
                    hid = self._graft(hid, c, seeds, plan[c])
                else:  # training: seeds on host 0, none on the twin (host 1)
                    hid = torch.cat([self._graft(hid[:, :1], c, seeds, plan[c]), hid[:, 1:]], 1)
        logits = torch.matmul(hid, p["w_out"]) + p["b_out"].unsqueeze(-2)
        if seeds is not None and own_only and logits.shape[1] != seeds["coef"].shape[1]:
            logits = logits.expand(-1, seeds["coef"].shape[1], -1, -1)  # no seed ran: variants equal
        return logits

    def plan(self, seeds: dict) -> list[dict | None]:
        """Per host column, what :meth:`_graft` needs, or None where no seed runs: the lanes
        (``e * R + r``) holding a seed that runs (alpha > 0 in some variant, or incubating), sorted
        by blueprint, the ``(blueprint, count)`` groups, and those lanes' alphas, styles and
        incubation flags. Constant over an epoch's minibatches, so :meth:`train_epoch` makes it once."""
        e, r, cols = seeds["coef"].shape[0], self.rows, self.cols
        need = seeds["coef"].amax(1) > 0
        inc = seeds.get("inc")
        if inc is not None:
            need = need | inc
        key = torch.where(need, seeds["blueprint"], 0).view(e, r, cols).permute(2, 0, 1).reshape(cols, e * r)
        order = torch.argsort(key, dim=1, stable=True)  # lanes grouped by blueprint, 0 (none) first
        counts = F.one_hot(key, layout.NUM_BLUEPRINTS).sum(1).tolist()  # [C][13]
        coef_flat = seeds["coef"].transpose(1, 2).reshape(e * self.num_slots_per_env, -1)  # [E * N, V]
        alg_flat, inc_flat = seeds["algorithm"].reshape(-1), None if inc is None else inc.reshape(-1)
        out: list[dict | None] = []
        for c in range(cols):
            n0 = counts[c][0]
            if n0 == e * r:
                out.append(None)
                continue
            lane = order[c, n0:]
            ei, ri = lane // r, lane % r
            n_idx = ei * self.num_slots_per_env + ri * cols + c
            alg = alg_flat[n_idx]
            styles = set(alg.tolist())
            inc_c = None if inc_flat is None else inc_flat[n_idx]
            out.append({"lane": lane, "ei": ei, "ri": ri, "coef": coef_flat[n_idx],
                        "groups": [(b, k) for b, k in enumerate(counts[c]) if b > 0 and k > 0],
                        "alg": alg[:, None, None], "styles": styles,
                        "inc": inc_c[:, None, None] if inc_c is not None and bool(inc_c.any()) else None})
        return out

    def _graft(self, hid: torch.Tensor, c: int, seeds: dict, pc: dict) -> torch.Tensor:
        """Seeds of column ``c`` (its :meth:`plan` entry ``pc``) on ``hid`` ``[E, Vin, M, H]`` ->
        ``[E, V, M, H]``. Only the K lanes that hold a seed are gathered (grouped by family, one
        split for inputs and one for parameters) and written back; the others are copied."""
        e, vin, m, h = hid.shape
        r, w = self.rows, self.w
        lane, ei, ri, coef, groups, alg, inc = (pc[k] for k in ("lane", "ei", "ri", "coef", "groups", "alg", "inc"))
        v, k = coef.shape[1], lane.shape[0]
        h5 = hid.view(e, vin, m, r, w)
        x = h5[ei, :, :, ri]  # [K, Vin, M, w]
        params = seeds["columns"][c].reshape(e * r, -1)[lane]  # [K, P_s]
        x_in = x.reshape(k, vin * m, w)  # rows folded: every family is row-wise
        if inc is not None:
            x_in = torch.where(inc, x_in.detach(), x_in)
        if len(groups) == 1:
            z = self.families.forward(groups[0][0], x_in, params)
        else:
            counts = [n for _, n in groups]
            xs, ps = x_in.split(counts), params.split(counts)
            z = torch.cat([self.families.forward(b, xb, pb) for (b, _), xb, pb in zip(groups, xs, ps)])
        styles = pc["styles"]
        if styles == {int(layout.Algorithm.ADD)}:
            phi = z
        else:  # only the styles present are computed
            mul = x_in * torch.tanh(z) if int(layout.Algorithm.MULTIPLY) in styles else z
            gate = self.families.gate(x_in, params) * z if int(layout.Algorithm.GATE) in styles else z
            phi = torch.where(alg == layout.Algorithm.ADD, z, torch.where(alg == layout.Algorithm.MULTIPLY, mul, gate))
        new = torch.addcmul(x, coef[..., None, None], phi.view(k, vin, m, w))  # [K, V, M, w]
        if inc is not None:
            new = new + inc[..., None] * (phi - phi.detach()).view(k, vin, m, w)
        out = h5.expand(e, v, m, r, w).clone()
        out[ei, :, :, ri] = new
        return out.view(e, v, m, h)

    # ------------------------------------------------------------------ training and measurement
    @staticmethod
    def losses(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy and accuracy (pp) over the last-but-one dim: ``[E, K, M, 10] -> [E, K]``."""
        return HostNets.loss(logits, y), HostNets.accuracy(logits, y)

    @staticmethod
    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the last-but-one dim: ``[E, K, M, 10] -> [E, K]``.

        Written as ``logsumexp - logit[y]`` with the max shift detached (its gradient is exactly
        zero) instead of ``F.cross_entropy``: on CPU, with 10 classes, ``log_softmax`` costs
        ~280 ns a row and was ~15 % of a wait-only env step; this form is ~3.5x cheaper forward
        and backward, and equal to it within float rounding (tested).
        """
        shift = logits.detach().amax(-1, keepdim=True)
        lse = (logits - shift).exp().sum(-1).log() + shift.squeeze(-1)
        picked = logits.gather(-1, y.expand(logits.shape[:-1]).unsqueeze(-1)).squeeze(-1)
        return (lse - picked).mean(-1)

    @staticmethod
    def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Accuracy (pp) over the last-but-one dim: ``[E, K, M, 10] -> [E, K]``."""
        return (logits.argmax(-1) == y).float().mean(-1) * 100.0

    @torch.enable_grad()  # the env trains its hosts even inside a no_grad rollout or collector
    def train_epoch(self, st, x: torch.Tensor, y: torch.Tensor, lr: float, seed_lr: float,
                    trainable: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One epoch in place on ``st`` (a :class:`~torchrl_slots.envs.host.HostState`): one Adam
        step per minibatch ``x`` ``[K, E, B, 64]``, ``y`` ``[K, E, B]``, for every host and for the
        seeds where ``trainable`` ``[E, N]``. Returns the seeded hosts' mean train loss and accuracy
        (pp) over the epoch, ``[E]`` each."""
        inc = st.stage == layout.Stage.TRAINING
        seed_mask = trainable[..., None]
        any_seed = bool((inc | (st.alpha > 0)).any())
        loss_sum = acc_sum = 0.0
        plan = self.plan({"coef": st.alpha[:, None], "inc": inc, "blueprint": st.blueprint,
                          "algorithm": st.algorithm}) if any_seed else None
        for k in range(x.shape[0]):
            p = self.host_params(st.host, leaves=True)
            leaves = self.leaf_list(p)
            cols = self.seed_columns(st.seeds, leaves=True) if any_seed else []
            seeds = {"columns": cols, "coef": st.alpha[:, None], "inc": inc, "blueprint": st.blueprint,
                     "algorithm": st.algorithm, "plan": plan} if any_seed else None
            logits = self.forward(p, x[k][:, None], seeds)  # [E, 2, B, 10]
            loss, acc = self.losses(logits, y[k][:, None])
            grads = torch.autograd.grad(loss.sum(), leaves + cols, allow_unused=True)
            adam(st.host, self.host_grad(p, list(grads[:len(leaves)])), st.host_m, st.host_v, st.host_t, lr)
            if any_seed:
                g_cols = [torch.zeros_like(c) if g is None else g for c, g in zip(cols, grads[len(leaves):])]
                g_seed = torch.cat(g_cols, 1).transpose(1, 2).reshape(st.seeds.shape)  # [E, C, R, P] -> [E, N, P]
                adam(st.seeds, g_seed, st.seed_m, st.seed_v, st.seed_t, seed_lr, seed_mask)
            loss_sum, acc_sum = loss_sum + loss[:, 0].detach(), acc_sum + acc[:, 0]
        return loss_sum / x.shape[0], acc_sum / x.shape[0]

    @torch.no_grad()
    def measure(self, st, coef: torch.Tensor, x: torch.Tensor, y: torch.Tensor, twin: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Validation loss of the seeded host (``[E]``, first variant) and its accuracy (pp) in each
        alpha variant ``coef`` ``[E, V, N]`` (``[E, V]``), and the twin's loss and accuracy (``[E]``
        each; None unless ``twin``), on ``x`` ``[M, 64]``."""
        seeds = {"columns": self.seed_columns(st.seeds), "coef": coef, "inc": None, "blueprint": st.blueprint,
                 "algorithm": st.algorithm}
        logits = self.forward(self.host_params(st.host[:, :1]), x, seeds)  # [E, V, M, 10]
        loss = self.loss(logits[:, :1], y)  # the loss of the base variant only
        acc = self.accuracy(logits, y)
        if not twin:
            return loss[:, 0], acc, None, None
        t_loss, t_acc = self.losses(self.forward(self.host_params(st.host[:, 1:]), x), y)
        return loss[:, 0], acc, t_loss[:, 0], t_acc[:, 0]
