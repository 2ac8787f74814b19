"""Weight initialisation shared by both architectures (docs/design.md, "Data flow").

The PPO recipe of CleanRL / esper-lite: orthogonal weights with gain ``sqrt(2)`` for hidden
``nn.Linear`` layers and zero biases, a small gain (0.01) for policy output layers so the initial
policy is near uniform, gain 1.0 for the value output, and an LSTM with orthogonal weights, zero
biases and forget-gate bias 1 (so the cell remembers by default at the start of training).

``nn.Embedding``, ``nn.LayerNorm`` and raw ``nn.Parameter`` tokens (the CLS token) are left as
their modules initialise them.
"""

from __future__ import annotations

import math
from typing import TypeVar

import torch
from torch import nn

__all__ = ["init_lstm", "init_output_layer", "init_weights"]

M = TypeVar("M", bound=nn.Module)


def init_weights(module: M, *, gain: float = math.sqrt(2)) -> M:
    """Orthogonal(``gain``) weights and zero biases for every ``nn.Linear`` inside ``module``.

    Args:
        module: any module; its ``nn.Linear`` submodules (itself included) are re-initialised.
        gain: orthogonal gain. Default ``sqrt(2)`` (ReLU/GELU hidden layers).

    Returns:
        ``module`` (initialised in place).

    Examples:
        >>> net = init_weights(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)))
        >>> w = net[0].weight
        >>> torch.allclose(w @ w.T, 2 * torch.eye(4), atol=1e-5), bool((net[2].bias == 0).all())
        (True, True)
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def init_output_layer(linear: nn.Linear, *, std: float = 0.01) -> nn.Linear:
    """Orthogonal weights with gain ``std`` and a zero bias, for an output layer.

    Args:
        linear: the layer.
        std: orthogonal gain; 0.01 for policy logits (default), 1.0 for the value head.

    Returns:
        ``linear`` (initialised in place).

    Examples:
        >>> layer = init_output_layer(nn.Linear(8, 3), std=0.01)
        >>> torch.allclose(layer.weight @ layer.weight.T, 1e-4 * torch.eye(3), atol=1e-8)
        True
    """
    if not isinstance(linear, nn.Linear):
        raise ValueError(f"init_output_layer expects an nn.Linear, got {type(linear).__name__}")
    nn.init.orthogonal_(linear.weight, gain=std)
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)
    return linear


def init_lstm(lstm: nn.LSTM | nn.LSTMCell, *, forget_bias: float = 1.0) -> nn.LSTM | nn.LSTMCell:
    """Orthogonal (gain 1) weights, zero biases, forget-gate bias ``forget_bias``.

    PyTorch's gate order in ``bias_ih`` / ``bias_hh`` is ``(i, f, g, o)``; the forget slice
    ``[H:2H]`` of ``bias_ih`` is set to ``forget_bias`` and that of ``bias_hh`` to 0, so the
    SUM that the cell uses is ``forget_bias``. Every layer (and direction) is initialised.

    Args:
        lstm: an ``nn.LSTM`` or ``nn.LSTMCell``.
        forget_bias: the forget gates' total bias. Default 1.0.

    Returns:
        ``lstm`` (initialised in place).

    Examples:
        >>> lstm = init_lstm(nn.LSTM(4, 3, num_layers=2))
        >>> (lstm.bias_ih_l1 + lstm.bias_hh_l1).tolist()
        [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """
    if not isinstance(lstm, (nn.LSTM, nn.LSTMCell)):
        raise ValueError(f"init_lstm expects an nn.LSTM or nn.LSTMCell, got {type(lstm).__name__}")
    hidden = lstm.hidden_size
    with torch.no_grad():
        for name, param in lstm.named_parameters():
            if name.startswith("weight"):
                nn.init.orthogonal_(param, gain=1.0)
            elif name.startswith("bias"):
                param.zero_()
                if name.startswith("bias_ih"):
                    param[hidden : 2 * hidden] = forget_bias
    return lstm
