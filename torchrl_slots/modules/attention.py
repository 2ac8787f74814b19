"""The pre-LN transformer block of :class:`~torchrl_slots.modules.encoder.SlotTransformerEncoder`:
masked multi-head self-attention (one ``scaled_dot_product_attention`` call; on CPU below
``SMALL_TOKENS`` tokens an explicit ``exp``/sum form of the same softmax, which is faster there;
or an explicit softmax that returns the weights) and a GELU feed-forward net."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SMALL_TOKENS", "TransformerBlock"]

#: On CPU, attention over fewer tokens than this is written out (``_explicit``) instead of calling
#: ``scaled_dot_product_attention``: torch 2.13's CPU kernel is slow below 16 tokens (its cost grows
#: with T^2 up to T = 15, then drops at 16). [200 rows, 4 heads, T, 16], fwd+bwd, 1 thread (Intel
#: Xeon with AMX): T = 4 1.5 vs 1.7 ms (a tie), T = 11 3.7 vs 2.3 ms, T = 15 5.5 vs 3.1 ms; at
#: T = 16 the kernel wins (2.4 vs 3.7 ms) and at T = 51 by far (17 vs 28 ms). T = N + 1 (the CLS
#: token): 1x3 and 2x5 grids run the explicit form, 5x10 the kernel.
SMALL_TOKENS = 16


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor, dropout_p: float) -> torch.Tensor:
    """``F.scaled_dot_product_attention``; under CPU autocast it runs in fp32: the CPU kernel's
    bf16 backward was ~6x slower than fp32 (1.2 s vs 0.19 s for [2048, 4, 51, 16], 1 thread)."""
    if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return F.scaled_dot_product_attention(
                q.float(), k.float(), v.float(), attn_mask=attn_mask, dropout_p=dropout_p
            )
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)


def _explicit(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
    """Masked ``softmax(q k^T / sqrt(d)) v`` as ``(e @ v) / e.sum(-1)`` with
    ``e = exp(s - max(s))``: the kernel's values (to float rounding) without a softmax call (a
    softmax over a last dim under 16 is slow on CPU too). The max is taken without grad (the
    softmax does not depend on the shift). Every row has an unmasked key (CLS), so the sum is
    at least 1. Under CPU autocast it runs in fp32, like ``_sdpa``."""
    if torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return _explicit(q.float(), k.float(), v.float(), attn_mask)
    s = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5  # [B, nh, T, T]
    s = s.masked_fill(~attn_mask, float("-inf"))
    e = (s - s.detach().amax(dim=-1, keepdim=True)).exp()  # [B, nh, T, T], masked keys exactly 0
    return (e @ v) / e.sum(dim=-1, keepdim=True)  # [B, nh, T, hs]


def _attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor, dropout_p: float
) -> torch.Tensor:
    """``_explicit`` on CPU below ``SMALL_TOKENS`` tokens without dropout, else ``_sdpa``."""
    if q.device.type == "cpu" and q.shape[-2] < SMALL_TOKENS and dropout_p == 0.0:
        return _explicit(q, k, v, attn_mask)
    return _sdpa(q, k, v, attn_mask, dropout_p)


class TransformerBlock(nn.Module):
    """Pre-LN block: ``x = x + attn(ln1(x)); x = x + ffn(ln2(x))`` with a fused QKV ``Linear``.

    Args:
        embed_dim: token width ``D``; divisible by ``num_heads``.
        num_heads: attention heads.
        ffn_dim: hidden width of the GELU feed-forward net.
        dropout: dropout on attention weights and on both residual branches.
    """

    def __init__(self, *, embed_dim: int, num_heads: int, ffn_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_heads, self.dropout = num_heads, dropout
        self.ln1 = nn.LayerNorm(embed_dim)
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.ln2 = nn.LayerNorm(embed_dim)
        self.ffn = nn.Sequential(
            nn.Linear(embed_dim, ffn_dim), nn.GELU(), nn.Linear(ffn_dim, embed_dim), nn.Dropout(dropout)
        )
        self.resid_dropout = nn.Dropout(dropout)

    def attention(
        self, x: torch.Tensor, attn_mask: torch.Tensor, return_attention: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Masked multi-head self-attention; ``attn_mask`` is bool ``[B, 1, 1, T]`` (True = attend)."""
        B, T, C = x.shape
        nh = self.num_heads
        q, k, v = self.qkv(x).split(C, dim=2)  # [B, T, D] each
        q = q.view(B, T, nh, C // nh).transpose(1, 2)  # [B, nh, T, hs]
        k = k.view(B, T, nh, C // nh).transpose(1, 2)  # [B, nh, T, hs]
        v = v.view(B, T, nh, C // nh).transpose(1, 2)  # [B, nh, T, hs]
        p = self.dropout if self.training else 0.0
        weights = None
        if return_attention:
            scores = (q @ k.transpose(-2, -1)) * (C // nh) ** -0.5  # [B, nh, T, T]
            scores = scores.masked_fill(~attn_mask, float("-inf"))  # [B, nh, T, T]
            weights = scores.softmax(dim=-1)  # [B, nh, T, T]
            y = F.dropout(weights, p=p, training=self.training) @ v  # [B, nh, T, hs]
        else:
            y = _attend(q, k, v, attn_mask, p)  # [B, nh, T, hs]
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # [B, T, D]
        return self.resid_dropout(self.proj(y)), weights

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor, return_attention: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x`` ``[B, T, D]`` -> (``[B, T, D]``, weights ``[B, nh, T, T]`` or ``None``)."""
        attn, weights = self.attention(self.ln1(x), attn_mask, return_attention)
        x = x + attn
        x = x + self.ffn(self.ln2(x))
        return x, weights
