"""The 12 seed module families of :class:`~torchrl_slots.envs.HostTrainingEnv`, batched.

A seed sits on one lane (a group of ``lane_width`` host features) after one host block. Its lane
vector ``x`` (width ``w``) is also read as ``w // 4`` tokens of 4 channels, so that the token-mixing
families (convolutions, attention) have a sequence to mix. Every family ends in a zero-initialised
projection, so a fresh seed outputs exactly 0 and germination cannot damage the host.

A slot's parameters live in one flat vector (``SeedFamilies.total`` numbers) read by the family
of the seed it holds. Every forward takes ``x`` ``[*L, M, w]`` and parameter
segments ``[*L', P_b]`` whose leading dims broadcast against ``L`` (env, variant, row), so that one
call runs a family for every env, measurement variant and lane of a host column at once.

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
    """``x [*L, M, i] @ w [*L', i, j] (+ b [*L', j])`` with broadcast leading dims."""
    y = torch.matmul(x, w)
    return y if b is None else y + b.unsqueeze(-2)


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """``[*L, M, w] -> [*L, M * T, d]`` (tokens as rows)."""
    return x.reshape(*x.shape[:-2], -1, CHANNELS)


def _untokens(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return y.reshape(like.shape)


def _window(tok: torch.Tensor, t: int) -> torch.Tensor:
    """Kernel-3 neighbourhoods over tokens (zero padding): ``[*L, T, c] -> [*L, T, 3 c]``."""
    pad = F.pad(tok, (0, 0, 1, 1))
    return torch.cat([pad[..., 0:t, :], pad[..., 1:t + 1, :], pad[..., 2:t + 2, :]], dim=-1)


def _shifts(x: torch.Tensor, t: int) -> torch.Tensor:
    """Kernel-3 neighbourhoods of lane tokens: ``[*L, M, w] -> [*L, M * T, 3 d]``."""
    win = _window(x.reshape(*x.shape[:-1], t, CHANNELS), t)  # [*L, M, T, 3d]
    return win.reshape(*x.shape[:-2], -1, 3 * CHANNELS)


def _attend(x: torch.Tensor, qkv: tuple[torch.Tensor, torch.Tensor, torch.Tensor], heads: int, t: int) -> torch.Tensor:
    """Attention over the ``T`` tokens of each sample: ``q, k, v`` ``[*L, M * T, h * dk]`` -> same shape."""
    q, k, v = qkv
    lead, m = x.shape[:-2], x.shape[-2]

    def split(z: torch.Tensor) -> torch.Tensor:  # [*L, M*T, h*dk] -> [*L, M, h, T, dk]
        return z.reshape(*lead, m, t, heads, -1).transpose(-2, -3)

    out = F.scaled_dot_product_attention(split(q), split(k), split(v))  # [*L, M, h, T, dv]
    return out.transpose(-2, -3).reshape(*lead, m * t, -1)


def _forward_fns(w: int) -> dict[str, Callable[[torch.Tensor, dict[str, torch.Tensor]], torch.Tensor]]:
    t, d = w // CHANNELS, CHANNELS

    def norm(x, p):
        return F.layer_norm(x, (w,)) * p["g"].unsqueeze(-2) + p["b"].unsqueeze(-2)

    def lora(x, p):
        return _lin(_lin(x, p["a"]), p["b"])

    def squeeze_excite(x, p):
        tok = x.reshape(*x.shape[:-1], t, d)
        u = _lin(torch.relu(_lin(tok.mean(-2), p["w1"])), p["w2"], p["b2"])  # [*L, M, d]
        return (tok * torch.tanh(u).unsqueeze(-2)).reshape(x.shape)

    def depthwise(x, p):
        win = _shifts(x, t).reshape(*x.shape[:-2], -1, 3, d)  # [*L, M*T, 3, d]
        y = (win * p["k"].unsqueeze(-3)).sum(-2) + p["b"].unsqueeze(-2)
        return _untokens(y, x)

    def conv_light(x, p):
        return _untokens(_lin(_shifts(x, t), p["k"], p["b"]), x)

    def attention_light(x, p):
        z = _tokens(x)
        y = _attend(x, (_lin(z, p["q"]), _lin(z, p["k"]), _lin(z, p["v"])), heads=1, t=t)
        return _untokens(_lin(y, p["o"]), x)

    def bottleneck(x, p):
        return _lin(torch.relu(_lin(x, p["w1"], p["b1"])), p["w2"], p["b2"])

    def mlp(x, p):
        return _lin(torch.relu(_lin(x, p["w1"], p["b1"])), p["w2"], p["b2"])

    def gated_mlp(x, p):
        return _lin(_lin(x, p["w1"]) * F.silu(_lin(x, p["wg"])), p["w2"], p["b2"])

    def conv_heavy(x, p):
        hid = torch.relu(_lin(_shifts(x, t), p["k1"], p["b1"]))  # [*L, M*T, 2d]
        win = _window(hid.reshape(*x.shape[:-1], t, 2 * d), t)  # [*L, M, T, 6d]
        return _untokens(_lin(win.reshape(*x.shape[:-2], -1, 6 * d), p["k2"], p["b2"]), x)

    def attention(x, p):
        z = _tokens(x)
        q, k, v = _lin(z, p["qkv"]).chunk(3, dim=-1)
        return _untokens(_lin(_attend(x, (q, k, v), heads=2, t=t), p["o"], p["bo"]), x)

    def transformer_block(x, p):
        z = _tokens(x)
        q, k, v = _lin(z, p["qkv"]).chunk(3, dim=-1)
        a = _lin(_attend(x, (q, k, v), heads=2, t=t), p["o"])
        m = _lin(torch.relu(_lin(z + a, p["w1"], p["b1"])), p["w2"], p["b2"])
        return _untokens(a + m, x)

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
        >>> x = torch.randn(2, 5, 8)
        >>> mlp = [b.name for b in layout.BLUEPRINTS].index("mlp")
        >>> seed = fam.init_std[mlp] * torch.randn(fam.total)  # a fresh mlp seed
        >>> bool((fam.forward(mlp, x, seed) == 0).all())  # zero-initialised output
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
        self.init_std = torch.zeros(len(sizes), self.total)
        for b, std in enumerate(stds):
            self.init_std[b, : std.numel()] = std

    def params(self, blueprint: int, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """The named parameters of ``blueprint`` as views of ``flat`` ``[*L, total]``."""
        out = {}
        for pname, shape, off, n in self._layout[self.names[blueprint - 1]]:
            out[pname] = flat[..., off:off + n].reshape(*flat.shape[:-1], *shape)
        return out

    def forward(self, blueprint: int, x: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
        """Family ``blueprint`` (1..12) on lanes ``x`` ``[*L, M, w]`` with parameters ``flat``."""
        return self._fns[self.names[blueprint - 1]](x, self.params(blueprint, flat))

    def gate(self, x: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
        """GATE style's gate ``sigmoid(x . w_g + b_g)``: ``[*L, M, 1]``."""
        g = flat[..., self.gate_offset:self.total]
        return torch.sigmoid(_lin(x, g[..., :-1].unsqueeze(-1), g[..., -1:]))
