"""Tests of torchrl_slots.modules.init."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from torchrl_slots.modules.encoder import SlotTransformerEncoder
from torchrl_slots.modules.init import init_lstm, init_output_layer, init_weights


def assert_orthogonal(w: torch.Tensor, gain: float) -> None:
    """Rows orthogonal for wide/square weights, columns for tall ones, each of norm ``gain``."""
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    torch.testing.assert_close(gram, gain**2 * torch.eye(gram.shape[0]), atol=1e-5 * max(gain**2, 1), rtol=0)


def test_init_weights_every_linear_orthogonal_zero_bias():
    torch.manual_seed(0)
    enc = init_weights(SlotTransformerEncoder(embed_dim=16, num_heads=2, num_layers=2, ffn_dim=48))
    linears = [m for m in enc.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1 + 2 * 4  # slot embedding + (qkv, proj, ffn x2) per block
    shapes = {tuple(m.weight.shape) for m in linears}
    assert (48, 16) in shapes and (16, 48) in shapes and (16, 16) in shapes  # tall, wide, square
    for m in linears:
        assert_orthogonal(m.weight, math.sqrt(2))
        assert torch.equal(m.bias, torch.zeros_like(m.bias))


def test_init_weights_leaves_embeddings_layernorm_and_cls_alone():
    torch.manual_seed(0)
    enc = SlotTransformerEncoder(embed_dim=16, num_heads=2, num_layers=1, ffn_dim=32)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    init_weights(enc, gain=1.0)
    for key in ("cls_token", "positional.row_embed.weight", "final_norm.weight", "blocks.0.ln1.bias"):
        assert torch.equal(enc.state_dict()[key], before[key]), key


@pytest.mark.parametrize("std", [0.01, 1.0])
def test_init_output_layer(std):
    layer = init_output_layer(nn.Linear(32, 6), std=std)
    assert_orthogonal(layer.weight, std)
    assert torch.equal(layer.bias, torch.zeros(6))
    with pytest.raises(ValueError, match="expects an nn.Linear, got LSTM"):
        init_output_layer(nn.LSTM(2, 2))  # type: ignore[arg-type]


@pytest.mark.parametrize("lstm", [nn.LSTM(5, 4, num_layers=2, batch_first=True), nn.LSTMCell(5, 4)])
def test_init_lstm_forget_gate_bias_sums_to_one(lstm):
    init_lstm(lstm)
    h = 4
    params = dict(lstm.named_parameters())
    suffixes = [n.removeprefix("bias_ih") for n in params if n.startswith("bias_ih")]
    assert suffixes
    for sfx in suffixes:
        total = params["bias_ih" + sfx] + params["bias_hh" + sfx]  # gates (i, f, g, o)
        torch.testing.assert_close(total[h:2 * h], torch.ones(h))
        assert torch.equal(total[:h], torch.zeros(h)) and torch.equal(total[2 * h:], torch.zeros(2 * h))
    for name, p in params.items():
        if name.startswith("weight"):
            assert_orthogonal(p.detach(), 1.0)


def test_init_lstm_forget_gate_is_open_at_start():
    """With zero input and state the forget gate is sigmoid(1) and the cell keeps most of c."""
    lstm = init_lstm(nn.LSTMCell(3, 2))
    c0 = torch.ones(1, 2)
    _, c1 = lstm(torch.zeros(1, 3), (torch.zeros(1, 2), c0))
    torch.testing.assert_close(c1, torch.sigmoid(torch.tensor(1.0)) * c0)


def test_init_lstm_rejects_other_modules():
    with pytest.raises(ValueError, match="got Linear"):
        init_lstm(nn.Linear(2, 2))  # type: ignore[arg-type]
