"""The block's two attention paths: ``_explicit`` (CPU, under ``SMALL_TOKENS`` tokens) and the
``scaled_dot_product_attention`` kernel give the same values and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from torchrl_slots.modules.attention import SMALL_TOKENS, TransformerBlock, _attend, _explicit


def _qkv_mask(b: int, t: int, dtype=torch.float64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, 4, t, 16, generator=g, dtype=dtype, requires_grad=True) for _ in range(3))
    mask = torch.rand(b, 1, 1, t, generator=g) > 0.4
    mask[..., 0] = True  # the CLS key
    return q, k, v, mask


@pytest.mark.parametrize("t", [1, 2, 4, 11, 15, 16, 17])
def test_explicit_equals_kernel_values_and_gradients(t):
    q, k, v, mask = _qkv_mask(8, t)
    y = _explicit(q, k, v, mask)
    y_ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(y, y_ref, atol=1e-12, rtol=0)
    w = torch.randn_like(y)
    grads = torch.autograd.grad((y * w).sum(), (q, k, v))
    grads_ref = torch.autograd.grad((y_ref * w).sum(), (q, k, v))
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_masked_keys_get_no_weight_even_with_huge_values():
    q, k, v, mask = _qkv_mask(4, 11)
    with torch.no_grad():
        v[(~mask[:, 0, 0, :])[:, None, :, None].expand_as(v)] = 1e30  # masked keys' values
    y = _explicit(q, k, v, mask)
    assert torch.isfinite(y).all() and y.abs().max() < 100
    assert (~mask).any()


def test_attend_picks_the_path_by_token_count(monkeypatch):
    calls = []
    monkeypatch.setattr("torchrl_slots.modules.attention._explicit", lambda *a: calls.append("explicit") or a[2])
    monkeypatch.setattr("torchrl_slots.modules.attention._sdpa", lambda *a: calls.append("sdpa") or a[2])
    for t in (SMALL_TOKENS - 1, SMALL_TOKENS):
        q, k, v, mask = _qkv_mask(2, t)
        _attend(q, k, v, mask, 0.0)
    q, k, v, mask = _qkv_mask(2, 4)
    _attend(q, k, v, mask, 0.1)  # dropout: the kernel's
    assert calls == ["explicit", "sdpa", "sdpa"]


def test_block_small_and_large_token_counts_match_the_weights_path():
    torch.manual_seed(0)
    block = TransformerBlock(embed_dim=64, num_heads=4, ffn_dim=128).double()
    for t in (6, 40):
        x = torch.randn(3, t, 64, dtype=torch.float64)
        keep = torch.rand(3, t) > 0.3
        keep[:, 0] = True
        y, _ = block(x, keep[:, None, None, :])
        y_w, weights = block(x, keep[:, None, None, :], return_attention=True)
        torch.testing.assert_close(y, y_w, atol=1e-12, rtol=0)
        assert weights.shape == (3, 4, t, t)


def test_explicit_under_cpu_autocast_runs_in_fp32():
    q, k, v, mask = _qkv_mask(2, 5, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = _explicit(q.bfloat16(), k.bfloat16(), v.bfloat16(), mask)
    assert y.dtype == torch.float32
    ref = F.scaled_dot_product_attention(*(x.bfloat16().float() for x in (q, k, v)), attn_mask=mask)
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=0)
