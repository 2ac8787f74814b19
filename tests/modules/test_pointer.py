"""Tests of torchrl_slots.modules.pointer."""

from __future__ import annotations

import math

import pytest
import torch
from tensordict import TensorDict

from torchrl_slots.modules.pointer import PointerHead, PointerModule


def make_head(cond_dim=None):
    torch.manual_seed(0)
    return PointerHead(context_dim=12, slot_dim=8, key_dim=16, cond_dim=cond_dim)


def test_shapes_without_cond():
    head = make_head()
    assert head(torch.randn(12), torch.randn(5, 8)).shape == (5,)
    assert head(torch.randn(3, 4, 12), torch.randn(3, 4, 7, 8)).shape == (3, 4, 7)


def test_logits_are_scaled_dot_products():
    head = make_head(cond_dim=6)
    ctx, slots, cond = torch.randn(2, 12), torch.randn(2, 5, 8), torch.randn(2, 6)
    q = head.query(ctx) + head.cond_query(cond)  # [2, 16]
    k = head.key(slots)  # [2, 5, 16]
    want = torch.einsum("bd,bnd->bn", q, k) / math.sqrt(16)
    torch.testing.assert_close(head(ctx, slots, cond), want)


def test_per_option_cond_gives_one_query_per_option():
    head = make_head(cond_dim=6)
    ctx, slots, cond = torch.randn(2, 3, 12), torch.randn(2, 3, 5, 8), torch.randn(2, 3, 4, 6)
    logits = head(ctx, slots, cond)
    assert logits.shape == (2, 3, 4, 5)
    for k in range(4):
        torch.testing.assert_close(logits[..., k, :], head(ctx, slots, cond[..., k, :]), atol=1e-6, rtol=0)


def test_parameters_independent_of_slot_count():
    head = make_head(cond_dim=6)
    n_params = sum(p.numel() for p in head.parameters())
    for n in (1, 3, 50):
        assert head(torch.randn(2, 12), torch.randn(2, n, 8), torch.randn(2, 6, 6)).shape == (2, 6, n)
    assert sum(p.numel() for p in head.parameters()) == n_params


def test_masked_entries_are_never_chosen():
    head = make_head(cond_dim=6)
    g = torch.Generator().manual_seed(1)
    mask = torch.rand(4, 6, 10, generator=g) > 0.5
    mask[..., 0] = True
    logits = head(torch.randn(4, 12) * 50, torch.randn(4, 10, 8) * 50, torch.randn(4, 6, 6), mask=mask)
    probs = logits.softmax(-1)
    assert torch.isfinite(logits).all() and torch.isfinite(probs).all()
    assert torch.equal(probs[~mask], torch.zeros_like(probs[~mask]))
    assert (logits[~mask] == torch.finfo(logits.dtype).min).all()
    samples = torch.distributions.Categorical(probs=probs).sample((200,))  # [200, 4, 6]
    assert mask.gather(-1, samples.permute(1, 2, 0)).all()


def test_mask_broadcasts_over_options():
    head = make_head(cond_dim=6)
    mask = torch.tensor([True, False, True]).expand(2, 3)
    logits = head(torch.randn(2, 12), torch.randn(2, 3, 8), torch.randn(2, 4, 6), mask=mask[:, None])
    assert logits.shape == (2, 4, 3) and (logits[..., 1] == torch.finfo(torch.float32).min).all()


def test_row_without_legal_entry_raises():
    head = make_head()
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1] = False
    with pytest.raises(ValueError, match="no legal slot"):
        head(torch.randn(3, 12), torch.randn(3, 5, 8), mask=mask)


def test_permuting_slots_permutes_logits():
    head = make_head(cond_dim=6)
    ctx, slots, cond = torch.randn(2, 12), torch.randn(2, 7, 8), torch.randn(2, 6, 6)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(head(ctx, slots[:, perm], cond), head(ctx, slots, cond)[..., perm])


def test_gradients_reach_all_parameters():
    head = make_head(cond_dim=6)
    head(torch.randn(2, 12), torch.randn(2, 5, 8), torch.randn(2, 3, 6)).pow(2).sum().backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((torch.randn(2, 11), torch.randn(2, 5, 8)), r"context must be \[\*B, 12\], got shape \(2, 11\)"),
        ((torch.randn(2, 12), torch.randn(2, 5, 9)), r"slot_repr must be \[\*B, N, 8\].*got shape \(2, 5, 9\)"),
        ((torch.randn(2, 12), torch.randn(3, 5, 8)), r"with \*B = \(2,\), got shape \(3, 5, 8\)"),
        ((torch.randn(2, 12), torch.randn(2, 5, 8), torch.randn(2, 5)), r"cond must be .*got shape \(2, 5\)"),
        ((torch.randn(2, 12), torch.randn(2, 5, 8), None, torch.ones(2, 5)), r"dtype torch.bool, got torch.float32"),
        ((torch.randn(2, 12), torch.randn(2, 5, 8), None, torch.ones(2, 4, dtype=torch.bool)),
         r"broadcast to the logits' shape \(2, 5\), got \(2, 4\)"),
    ],
)
def test_shape_errors_name_expected_and_actual(args, match):
    with pytest.raises(ValueError, match=match):
        make_head(cond_dim=6)(*args)


def test_cond_without_cond_dim_raises():
    with pytest.raises(ValueError, match="cond_dim=None"):
        make_head()(torch.randn(2, 12), torch.randn(2, 5, 8), torch.randn(2, 6))


def test_pointer_module_nested_keys_cond_and_mask():
    head = make_head(cond_dim=6)
    module = PointerModule(head, in_keys=[("a", "ctx"), ("a", "slots"), "op_emb"],
                           out_keys=[("params", "slot", "logits")], mask_key=("m", "slot"))
    mask = torch.ones(2, 4, 5, dtype=torch.bool)
    mask[..., 3] = False
    td = TensorDict({"a": {"ctx": torch.randn(2, 12), "slots": torch.randn(2, 5, 8)},
                     "op_emb": torch.randn(2, 4, 6), "m": {"slot": mask}}, batch_size=[2])
    out = module(td)["params", "slot", "logits"]
    want = head(td["a", "ctx"], td["a", "slots"], td["op_emb"], mask)
    torch.testing.assert_close(out, want)
    assert module.head is head


def test_pointer_module_key_errors():
    with pytest.raises(ValueError, match="2 or 3 keys, got 1"):
        PointerModule(make_head(), in_keys=["core"])
    with pytest.raises(ValueError, match="exactly 1 key.*got 2"):
        PointerModule(make_head(), out_keys=["a", "b"])
