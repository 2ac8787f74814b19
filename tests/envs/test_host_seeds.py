"""The 12 seed families of HostTrainingEnv against a naive reference: one sample at a time, tokens
by explicit loops, written from the family table in ``host_seeds``'s docstring and nothing else.

The batched implementation is optimised for speed (grouped ``bmm``, rows folded, parameters split
in one op); this file is what keeps it computing the modules the docs describe.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from torchrl_slots import layout
from torchrl_slots.envs.host_seeds import CHANNELS, SeedFamilies

W = 16  # lane width: 4 tokens of 4 channels
D, T = CHANNELS, W // CHANNELS


def _conv3(tok: torch.Tensor, k: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Kernel-3 convolution over tokens with zero padding; ``k`` rows are (shift, channel)."""
    pad = torch.cat([torch.zeros(1, tok.shape[1]), tok, torch.zeros(1, tok.shape[1])])
    return torch.stack([torch.cat([pad[t], pad[t + 1], pad[t + 2]]) @ k + b for t in range(tok.shape[0])])


def _heads(tok: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head softmax attention over the tokens of one sample; head ``i`` uses columns ``i*dk..``."""
    out = []
    for i in range(heads):
        dk, dv = q.shape[1] // heads, v.shape[1] // heads
        qi, ki, vi = q[:, i * dk:(i + 1) * dk], k[:, i * dk:(i + 1) * dk], v[:, i * dv:(i + 1) * dv]
        att = torch.softmax(qi @ ki.T / math.sqrt(dk), dim=-1)
        out.append(att @ vi)
    return torch.cat(out, dim=1)


def reference(name: str, x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """Family ``name`` on one lane vector ``x`` ``[W]`` with unbatched parameters ``p``."""
    tok = x.view(T, D)
    if name == "norm":
        return (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-5) * p["g"] + p["b"]
    if name == "lora":
        return x @ p["a"] @ p["b"]
    if name == "squeeze_excite":
        u = torch.tanh(torch.relu(tok.mean(0) @ p["w1"]) @ p["w2"] + p["b2"])
        return (tok * u).reshape(W)
    if name == "depthwise":
        pad = torch.cat([torch.zeros(1, D), tok, torch.zeros(1, D)])
        return torch.stack([sum(pad[t + s] * p["k"][s] for s in range(3)) + p["b"] for t in range(T)]).reshape(W)
    if name == "conv_light":
        return _conv3(tok, p["k"], p["b"]).reshape(W)
    if name == "attention_light":
        return (_heads(tok, tok @ p["q"], tok @ p["k"], tok @ p["v"], 1) @ p["o"]).reshape(W)
    if name in ("bottleneck", "mlp"):
        return torch.relu(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
    if name == "gated_mlp":
        return ((x @ p["w1"]) * F.silu(x @ p["wg"])) @ p["w2"] + p["b2"]
    if name == "conv_heavy":
        return _conv3(torch.relu(_conv3(tok, p["k1"], p["b1"])), p["k2"], p["b2"]).reshape(W)
    if name == "attention":
        q, k, v = (tok @ p["qkv"]).chunk(3, dim=1)
        return (_heads(tok, q, k, v, 2) @ p["o"] + p["bo"]).reshape(W)
    if name == "transformer_block":
        q, k, v = (tok @ p["qkv"]).chunk(3, dim=1)
        a = _heads(tok, q, k, v, 2) @ p["o"]
        m = torch.relu((tok + a) @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
        return (a + m).reshape(W)
    raise KeyError(name)


FAMILIES = [b.name for b in layout.BLUEPRINTS[1:]]


@pytest.mark.parametrize("name", FAMILIES)
def test_family_matches_the_naive_reference(name):
    fam = SeedFamilies(W)
    b = FAMILIES.index(name) + 1
    gen = torch.Generator().manual_seed(b)
    lanes, rows = 3, 5  # 3 lanes (each its own parameters), 5 samples each
    flat = torch.randn(lanes, fam.total, generator=gen)  # every weight nonzero: a "trained" seed
    x = torch.randn(lanes, rows, W, generator=gen)
    out = fam.forward(b, x, flat)
    assert out.shape == x.shape
    for k in range(lanes):
        p = {name_: t for name_, t in fam.params(b, flat[k:k + 1]).items()}
        p = {n: t[0] for n, t in p.items()}
        for r in range(rows):
            torch.testing.assert_close(out[k, r], reference(name, x[k, r], p), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", FAMILIES)
def test_fresh_seed_outputs_exact_zero(name):
    fam = SeedFamilies(W)
    b = FAMILIES.index(name) + 1
    flat = fam.init_std[b] * torch.randn(4, fam.total, generator=torch.Generator().manual_seed(0))
    assert torch.equal(fam.forward(b, torch.randn(4, 7, W), flat), torch.zeros(4, 7, W))


def test_gate_and_parameter_layout():
    fam = SeedFamilies(W)
    flat = torch.randn(2, fam.total)
    x = torch.randn(2, 3, W)
    g = flat[:, fam.gate_offset:]
    expected = torch.sigmoid(torch.einsum("krw,kw->kr", x, g[:, :W]) + g[:, W:])[..., None]
    torch.testing.assert_close(fam.gate(x, flat), expected)
    for b, name in enumerate(FAMILIES, start=1):  # parameters tile the family's first sizes[b] numbers
        p = fam.params(b, flat)
        assert sum(t[0].numel() for t in p.values()) == int(fam.sizes[b]), name
        assert int(fam.sizes[b]) <= fam.gate_offset


def test_non_contiguous_input_gives_the_same_output():
    fam = SeedFamilies(W)
    flat = torch.randn(3, fam.total)
    x = torch.randn(5, 3, W).transpose(0, 1)  # [3, 5, W], not contiguous
    for b in range(1, len(FAMILIES) + 1):
        torch.testing.assert_close(fam.forward(b, x, flat), fam.forward(b, x.contiguous(), flat))


def test_forward_rejects_mismatched_shapes():
    fam = SeedFamilies(W)
    with pytest.raises(ValueError, match="lanes"):
        fam.forward(1, torch.randn(3, 5, W), torch.randn(2, fam.total))
    with pytest.raises(ValueError, match="width"):
        fam.forward(1, torch.randn(3, 5, W + 8), torch.randn(3, fam.total))
