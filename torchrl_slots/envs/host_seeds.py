"""The 12 seed module families of :class:`~torchrl_slots.envs.HostTrainingEnv`, batched.

A seed sits on one lane (a group of ``lane_width`` host features) after one host block. Its lane
vector ``x`` (width ``w``) is also read as ``w // 4`` tokens of 4 channels, so that the token-mixing
families (convolutions, attention) have a sequence to mix. Every family ends in a zero-initialised
projection, so a fresh seed outputs exactly 0 and germination cannot damage the host.

A slot's parameters live in one flat vector (``SeedFamilies.total`` numbers) read by the family
of the seed it holds. Every forward takes ``x`` ``[K, R, w]`` and parameters ``[K, total]``: ``K``
lanes that hold the same family (gathered over envs and rows of one host column), each with ``R``
rows (the samples of every measurement variant: all families are row-wise). One call runs a family
for every env, variant and lane of a column as 3-D batched products.

=================  ===========================================================================
family             module (``w`` lane width, ``d = 4`` channels per token, ``T = w // 4`` tokens)
=================  ===========================================================================
norm               layer norm of the lane with a zero-initialised affine
lora               rank-2 linear ``x A B`` (``B = 0``)
squeeze_excite     token-pooled channel gate ``x * tanh(W2 relu(W1 mean_t x))``
depthwise          per-channel convolution over tokens, kernel 3
conv_light         full convolution over tokens, kernel 3, ``d -> d``
attention_light    one head, key dim 2, over tokens
bottleneck         ``w -> w/4 -> w`` MLP
mlp                ``w -> w -> w`` MLP
gated_mlp          ``(x W1) * silu(x Wg) W2``
conv_heavy         two token convolutions ``d -> 2d -> d``
attention          two heads over tokens, full q/k/v
transformer_block  attention then a token MLP ``d -> 2d -> d``, each residual
=================  ===========================================================================
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from torchrl_slots import layout

CHANNELS = 4  # channels per token

#: family -> [(name, shape, init std factor or 0 for zeros)]; std = factor / sqrt(fan_in)
_Spec = list[tuple[str, tuple[int, ...], float]]


def _specs(w: int) -> dict[str, _Spec]:
    d = CHANNELS
    return {
        "norm": [("g", (w,), 0.0), ("b", (w,), 0.0)],
        "lora": [("a", (w, 2), 1.0), ("b", (2, w), 0.0)],
        "squeeze_excite": [("w1", (d, 2), 1.0), ("w2", (2, d), 0.0), ("b2", (d,), 0.0)],
        "depthwise": [("k", (3, d), 0.0), ("b", (d,), 0.0)],
        "conv_light": [("k", (3 * d, d), 0.0), ("b", (d,), 0.0)],
        "attention_light": [("q", (d, 2), 1.0), ("k", (d, 2), 1.0), ("v", (d, d), 1.0), ("o", (d, d), 0.0)],
        "bottleneck": [("w1", (w, w // 4), 1.4), ("b1", (w // 4,), 0.0), ("w2", (w // 4, w), 0.0), ("b2", (w,), 0.0)],
        "mlp": [("w1", (w, w), 1.4), ("b1", (w,), 0.0), ("w2", (w, w), 0.0), ("b2", (w,), 0.0)],
        "gated_mlp": [("w1", (w, w), 1.0), ("wg", (w, w), 1.0), ("w2", (w, w), 0.0), ("b2", (w,), 0.0)],
        "conv_heavy": [("k1", (3 * d, 2 * d), 1.4), ("b1", (2 * d,), 0.0), ("k2", (6 * d, d), 0.0), ("b2", (d,), 0.0)],
        "attention": [("qkv", (d, 3 * d), 1.0), ("o", (d, d), 0.0), ("bo", (d,), 0.0)],
        "transformer_block": [("qkv", (d, 3 * d), 1.0), ("o", (d, d), 0.0), ("w1", (d, 2 * d), 1.4),
                              ("b1", (2 * d,), 0.0), ("w2", (2 * d, d), 0.0), ("b2", (d,), 0.0)],
    }


def _lin(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """``x [K, R, i] @ w [K, i, j] (+ b [K, j])``: one ``bmm`` (``baddbmm`` with the bias).

    Written as 3-D batched products rather than broadcasting ``matmul``: a broadcast matmul adds
    expand/reshape nodes to the autograd graph, and on these tiny matrices the per-node overhead,
    not the arithmetic, is the cost of an env step."""
    return torch.bmm(x, w) if b is None else torch.baddbmm(b.unsqueeze(1), x, w)


def _window(tok: torch.Tensor, t: int) -> torch.Tensor:
    """Kernel-3 neighbourhoods over tokens (zero padding): ``[K, R, T, c] -> [K, R, T, 3 c]``."""
    pad = F.pad(tok, (0, 0, 1, 1))
    return torch.cat([pad[:, :, 0:t], pad[:, :, 1:t + 1], pad[:, :, 2:t + 2]], dim=-1)


def _shifts(x: torch.Tensor, t: int) -> torch.Tensor:
    """Kernel-3 neighbourhoods of lane tokens: ``[K, R, w] -> [K, R * T, 3 d]``."""
    k, r, _ = x.shape
    return _window(x.reshape(k, r, t, CHANNELS), t).reshape(k, r * t, 3 * CHANNELS)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, t: int) -> torch.Tensor:
    """Attention over the ``T`` tokens of each sample: ``q, k, v`` ``[K, R * T, h * dk]`` -> same shape."""
    lanes, rt, _ = q.shape

    def split(z: torch.Tensor) -> torch.Tensor:  # [K, R*T, h*dk] -> [K, R, h, T, dk]
        return z.reshape(lanes, rt // t, t, heads, -1).transpose(2, 3)

    qs, ks, vs = split(q), split(k), split(v)
    # softmax attention written out: on 2-4 tokens it is faster than scaled_dot_product_attention,
    # whose per-call dispatch dominates at this size (same values, tested against a reference)
    att = torch.softmax(torch.matmul(qs, ks.transpose(-1, -2)) * (qs.shape[-1] ** -0.5), dim=-1)
    return torch.matmul(att, vs).transpose(2, 3).reshape(lanes, rt, -1)  # [K, R*T, h*dv]


def _forward_fns(w: int) -> dict[str, Callable[[torch.Tensor, dict[str, torch.Tensor]], torch.Tensor]]:
    """Family forwards on ``x`` ``[K, R, w]`` (``K`` lanes, ``R`` rows: samples, or variants x
    samples) with parameters ``[K, *shape]``; every family is row-wise, so rows can be folded."""
    t, d = w // CHANNELS, CHANNELS

    def tokens(x: torch.Tensor) -> torch.Tensor:  # [K, R, w] -> [K, R * T, d]
        return x.reshape(x.shape[0], -1, d)

    def norm(x, p):
        return torch.addcmul(p["b"].unsqueeze(1), F.layer_norm(x, (w,)), p["g"].unsqueeze(1))

    def lora(x, p):
        return _lin(_lin(x, p["a"]), p["b"])

    def squeeze_excite(x, p):
        tok = x.reshape(x.shape[0], x.shape[1], t, d)
        u = _lin(torch.relu(_lin(tok.mean(2), p["w1"])), p["w2"], p["b2"])  # [K, R, d]
        return (tok * torch.tanh(u).unsqueeze(2)).reshape(x.shape)

    def depthwise(x, p):
        win = _shifts(x, t).reshape(x.shape[0], -1, 3, d)  # [K, R*T, 3, d]
        return ((win * p["k"].unsqueeze(1)).sum(-2) + p["b"].unsqueeze(1)).reshape(x.shape)

    def conv_light(x, p):
        return _lin(_shifts(x, t), p["k"], p["b"]).reshape(x.shape)

    def attention_light(x, p):
        z = tokens(x)
        y = _attend(_lin(z, p["q"]), _lin(z, p["k"]), _lin(z, p["v"]), heads=1, t=t)
        return _lin(y, p["o"]).reshape(x.shape)

    def bottleneck(x, p):
        return _lin(torch.relu(_lin(x, p["w1"], p["b1"])), p["w2"], p["b2"])

    def mlp(x, p):
        return _lin(torch.relu(_lin(x, p["w1"], p["b1"])), p["w2"], p["b2"])

    def gated_mlp(x, p):
        return _lin(_lin(x, p["w1"]) * F.silu(_lin(x, p["wg"])), p["w2"], p["b2"])

    def conv_heavy(x, p):
        k, r, _ = x.shape
        hid = torch.relu(_lin(_shifts(x, t), p["k1"], p["b1"]))  # [K, R*T, 2d]
        win = _window(hid.reshape(k, r, t, 2 * d), t).reshape(k, r * t, 6 * d)
        return _lin(win, p["k2"], p["b2"]).reshape(x.shape)

    def attention(x, p):
        q, k, v = _lin(tokens(x), p["qkv"]).chunk(3, dim=-1)
        return _lin(_attend(q, k, v, heads=2, t=t), p["o"], p["bo"]).reshape(x.shape)

    def transformer_block(x, p):
        z = tokens(x)
        q, k, v = _lin(z, p["qkv"]).chunk(3, dim=-1)
        a = _lin(_attend(q, k, v, heads=2, t=t), p["o"])
        m = _lin(torch.relu(_lin(z + a, p["w1"], p["b1"])), p["w2"], p["b2"])
        return (a + m).reshape(x.shape)

    return {f.__name__: f for f in (norm, lora, squeeze_excite, depthwise, conv_light, attention_light,
                                    bottleneck, mlp, gated_mlp, conv_heavy, attention, transformer_block)}


class SeedFamilies:
    """Layout, initialisation and forward of the 12 families for a lane of width ``lane_width``.

    A slot's seed is one flat vector of ``total`` numbers: its family's parameters first (family
    ``b`` uses the first ``sizes[b]``), the GATE style's gate (``w + 1`` numbers) at the end.

    Attributes:
        names: family names in blueprint order (``layout.BLUEPRINTS[1:]``).
        sizes: ``[13]`` parameter count of each blueprint (0 for NOOP).
        gate_offset: start of the gate.
        total: numbers per slot (the largest family plus the gate).
        init_std: ``[13, total]`` std of each number of a fresh seed of each blueprint (0 = zero
            initialised, and every unused number).

    Examples:
        >>> fam = SeedFamilies(8)
        >>> fam.sizes[1:4].tolist()  # norm, lora, squeeze_excite
        [16, 32, 20]
        >>> x = torch.randn(2, 5, 8)  # 2 lanes, 5 samples each
        >>> mlp = [b.name for b in layout.BLUEPRINTS].index("mlp")
        >>> seeds = fam.init_std[mlp] * torch.randn(2, fam.total)  # two fresh mlp seeds
        >>> bool((fam.forward(mlp, x, seeds) == 0).all())  # zero-initialised output
        True
    """

    def __init__(self, lane_width: int) -> None:
        if lane_width % (2 * CHANNELS) != 0 or lane_width <= 0:
            raise ValueError(f"lane_width must be a positive multiple of {2 * CHANNELS}, got {lane_width}")
        self.lane_width = lane_width
        specs, self._fns = _specs(lane_width), _forward_fns(lane_width)
        self.names = [b.name for b in layout.BLUEPRINTS[1:]]
        if set(self.names) != set(specs):
            raise RuntimeError(f"blueprint names {self.names} do not match the families {sorted(specs)}")
        self._layout: dict[str, list[tuple[str, tuple[int, ...], int, int]]] = {}
        sizes, stds = [0], [torch.zeros(0)]
        for name in self.names:
            entries, off, std = [], 0, []
            for pname, shape, factor in specs[name]:
                n = math.prod(shape)
                entries.append((pname, shape, off, n))
                std.append(torch.full((n,), factor / math.sqrt(shape[0] if len(shape) > 1 else 1)))
                off += n
            self._layout[name] = entries
            sizes.append(off)
            stds.append(torch.cat(std))
        self.gate_offset = max(sizes)
        self.total = self.gate_offset + lane_width + 1  # the gate starts at sigmoid(0) = 0.5
        self.sizes = torch.tensor(sizes)
        #: per blueprint, the split of a seed's ``total`` numbers into its parameters and the rest
        self._splits = [[]] + [[n for _, _, _, n in self._layout[name]] + [self.total - size]
                               for name, size in zip(self.names, sizes[1:])]
        self.init_std = torch.zeros(len(sizes), self.total)
        for b, std in enumerate(stds):
            self.init_std[b, : std.numel()] = std

    def params(self, blueprint: int, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """The named parameters of ``blueprint`` as ``[K, *shape]`` views of ``flat`` ``[K, total]``
        (one ``split``, so the backward is one node, not one per parameter)."""
        entries = self._layout[self.names[blueprint - 1]]
        parts = flat.split(self._splits[blueprint], dim=1)
        return {pname: part.reshape(flat.shape[0], *shape) for (pname, shape, _, _), part in zip(entries, parts)}

    def forward(self, blueprint: int, x: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
        """Family ``blueprint`` (1..12) on ``x`` ``[K, R, w]`` (``K`` lanes of ``R`` rows each) with
        the lanes' parameters ``flat`` ``[K, total]``; returns ``[K, R, w]``."""
        if x.dim() != 3 or flat.dim() != 2 or x.shape[0] != flat.shape[0]:
            raise ValueError(f"expected x [K, R, w] and flat [K, {self.total}] with the same K lanes, got "
                             f"{tuple(x.shape)} and {tuple(flat.shape)}")
        if x.shape[-1] != self.lane_width or flat.shape[1] != self.total:
            raise ValueError(f"expected lane width {self.lane_width} and {self.total} numbers per seed, got "
                             f"x {tuple(x.shape)} and flat {tuple(flat.shape)}")
        return self._fns[self.names[blueprint - 1]](x, self.params(blueprint, flat))

    def gate(self, x: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
        """GATE style's gate ``sigmoid(x . w_g + b_g)`` of ``x`` ``[K, R, w]``: ``[K, R, 1]``."""
        w = self.lane_width
        g = flat[:, self.gate_offset:self.total]
        return torch.sigmoid(torch.baddbmm(g[:, None, w:], x, g[:, :w, None]))
