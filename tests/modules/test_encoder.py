"""Tests of torchrl_slots.modules.encoder."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from torchrl_slots import layout
from torchrl_slots.modules.encoder import GlobalEncoder, SlotEncoderModule, SlotTransformerEncoder

D = 32


def make_encoder(positional="learned", **kw):
    torch.manual_seed(0)
    kw = {"embed_dim": D, "num_heads": 4, "num_layers": 2, "ffn_dim": 64, "positional": positional, **kw}
    return SlotTransformerEncoder(**kw)


def make_inputs(batch=(2, 4), rows=1, cols=5, p_mask=0.4, seed=1):
    g = torch.Generator().manual_seed(seed)
    n = rows * cols
    feats = torch.randn(*batch, n, layout.SLOT_FEATURES, generator=g)
    mask = torch.rand(*batch, n, generator=g) > p_mask
    r, c = layout.grid_ids(rows, cols)
    return feats, mask, r, c


@pytest.fixture(params=["learned", "fourier", "none"])
def encoder(request):
    return make_encoder(request.param)


def test_output_shapes(encoder):
    feats, mask, r, c = make_inputs()
    cls, slot_repr = encoder(feats, mask, r, c)
    assert cls.shape == (2, 4, D) and slot_repr.shape == (2, 4, 5, D)
    _, _, attn = encoder(feats, mask, r, c, return_attention=True)
    assert attn.shape == (2, 4, 2, 4, 6, 6)


def test_unbatched_and_per_batch_ids(encoder):
    feats, mask, r, c = make_inputs()
    cls, slot_repr = encoder(feats[0, 0], mask[0, 0], r, c)  # *B empty
    assert cls.shape == (D,) and slot_repr.shape == (5, D)
    ref_cls, ref_repr = encoder(feats, mask, r, c)
    torch.testing.assert_close(cls, ref_cls[0, 0], atol=1e-5, rtol=0)
    full_cls, _ = encoder(feats, mask, r.expand(2, 4, 5), c.expand(2, 4, 5))
    torch.testing.assert_close(full_cls, ref_cls, atol=1e-6, rtol=0)


def test_masked_slot_features_do_not_leak(encoder):
    feats, mask, r, c = make_inputs()
    cls, slot_repr = encoder(feats, mask, r, c)
    noisy = torch.where(mask[..., None], feats, 100 * torch.randn_like(feats))
    cls2, slot_repr2 = encoder(noisy, mask, r, c)
    assert (noisy != feats).any()
    torch.testing.assert_close(cls2, cls, atol=1e-5, rtol=0)
    torch.testing.assert_close(slot_repr2, slot_repr, atol=1e-5, rtol=0)


def test_masked_slot_outputs_are_exactly_zero(encoder):
    feats, mask, r, c = make_inputs()
    _, slot_repr = encoder(feats, mask, r, c)
    assert (~mask).any() and mask.any()
    assert torch.equal(slot_repr[~mask], torch.zeros_like(slot_repr[~mask]))
    assert (slot_repr[mask].abs().sum(-1) > 0).all()


def test_all_masked_row_is_finite(encoder):
    feats, mask, r, c = make_inputs()
    mask[0, 0] = False
    for mode in ("train", "eval"):
        getattr(encoder, mode)()
        cls, slot_repr, attn = encoder(feats, mask, r, c, return_attention=True)
        cls_s, slot_repr_s = encoder(feats, mask, r, c)
        for t in (cls, slot_repr, attn, cls_s, slot_repr_s):
            assert torch.isfinite(t).all()
        # the CLS query of an all-masked row attends to itself only
        torch.testing.assert_close(attn[0, 0, :, :, 0, 0], torch.ones(2, 4))


@pytest.mark.parametrize("positional", ["learned", "fourier"])
def test_permuting_slots_with_positions_permutes_outputs(positional):
    enc = make_encoder(positional)
    feats, mask, r, c = make_inputs(batch=(3,), rows=2, cols=3)
    r, c = r.expand(3, 6), c.expand(3, 6)
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(3))
    cls, slot_repr = enc(feats, mask, r, c)
    cls_p, slot_repr_p = enc(feats[:, perm], mask[:, perm], r[:, perm], c[:, perm])
    torch.testing.assert_close(cls_p, cls, atol=1e-5, rtol=0)
    torch.testing.assert_close(slot_repr_p, slot_repr[:, perm], atol=1e-5, rtol=0)


def test_without_positions_encoder_is_permutation_equivariant():
    enc = make_encoder("none")
    feats, mask, _, _ = make_inputs(batch=(3,), rows=2, cols=3)
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(4))
    cls, slot_repr = enc(feats, mask)
    cls_p, slot_repr_p = enc(feats[:, perm], mask[:, perm])
    torch.testing.assert_close(cls_p, cls, atol=1e-5, rtol=0)
    torch.testing.assert_close(slot_repr_p, slot_repr[:, perm], atol=1e-5, rtol=0)


def test_positions_matter_with_learned_encoding():
    enc = make_encoder("learned")
    feats, mask, r, c = make_inputs(batch=(2,))
    cls, _ = enc(feats, mask, r, c)
    cls_moved, _ = enc(feats, mask, r + 1, c)
    assert (cls - cls_moved).abs().max() > 1e-4


def test_gradients_reach_slot_embedding_cls_and_positions(encoder):
    feats, mask, r, c = make_inputs()
    cls, slot_repr = encoder(feats, mask, r, c)
    (cls.sum() + slot_repr.pow(2).sum()).backward()
    assert encoder.slot_embed.weight.grad.abs().sum() > 0
    assert encoder.cls_token.grad.abs().sum() > 0
    if encoder.positional is not None:
        assert all(p.grad.abs().sum() > 0 for p in encoder.positional.parameters())


def test_any_slot_count_with_same_parameters():
    enc = make_encoder("learned")
    n_params = sum(p.numel() for p in enc.parameters())
    for rows, cols in [(1, 3), (5, 10)]:
        feats, mask, r, c = make_inputs(batch=(2,), rows=rows, cols=cols)
        cls, slot_repr = enc(feats, mask, r, c)
        assert slot_repr.shape == (2, rows * cols, D) and torch.isfinite(cls).all()
    assert sum(p.numel() for p in enc.parameters()) == n_params


def test_attention_path_equals_sdpa_path_and_weights_are_masked(encoder):
    feats, mask, r, c = make_inputs()
    cls, slot_repr = encoder(feats, mask, r, c)
    cls_a, slot_repr_a, attn = encoder(feats, mask, r, c, return_attention=True)
    torch.testing.assert_close(cls_a, cls, atol=1e-5, rtol=0)
    torch.testing.assert_close(slot_repr_a, slot_repr, atol=1e-5, rtol=0)
    torch.testing.assert_close(attn.sum(-1), torch.ones(attn.shape[:-1]), atol=1e-5, rtol=0)
    key_masked = ~mask[..., None, None, None, :]  # [*B, 1, 1, 1, N]
    slot_keys = attn[..., 1:]  # [*B, L, nh, N+1, N]
    at_masked_keys = slot_keys[key_masked.expand_as(slot_keys)]
    assert at_masked_keys.numel() > 0 and (at_masked_keys == 0).all()
    assert (attn[..., 0] > 0).all()  # the CLS key is always attended


def test_train_eval_no_grad_agree(encoder):
    feats, mask, r, c = make_inputs()
    encoder.train()
    cls_train, repr_train = encoder(feats, mask, r, c)
    encoder.eval()
    cls_eval, repr_eval = encoder(feats, mask, r, c)
    with torch.no_grad():
        cls_ng, repr_ng = encoder(feats, mask, r, c)
    for a, b in [(cls_train, cls_eval), (cls_train, cls_ng), (repr_train, repr_eval), (repr_train, repr_ng)]:
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_compile_fullgraph_matches_eager_without_graph_breaks():
    enc = make_encoder("learned").eval()
    feats, mask, r, c = make_inputs(batch=(3,), rows=2, cols=3)
    explained = torch._dynamo.explain(enc)(feats, mask, r, c)
    assert explained.graph_break_count == 0, explained.break_reasons
    compiled = torch.compile(enc, fullgraph=True)
    for got, want in zip(compiled(feats, mask, r, c), enc(feats, mask, r, c)):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda f, m, r, c: (f[..., :38], m, r, c), r"slot_features must be \[\*B, N, 39\], got shape \(2, 5, 38\)"),
        (lambda f, m, r, c: (f, m.float(), r, c), r"slot_mask must have dtype torch.bool, got torch.float32"),
        (lambda f, m, r, c: (f, m[:, :4], r, c), r"slot_mask must have shape \(2, 5\).*got \(2, 4\)"),
        (lambda f, m, r, c: (f, m, None, c), r"row_ids is required with positional='learned', got None"),
        (lambda f, m, r, c: (f, m, r[:4], c), r"row_ids must have shape \(5,\) or \(2, 5\), got \(4,\)"),
        (lambda f, m, r, c: (f, m, r + 16, c), r"row_ids must be < 16.*got a maximum of 16"),
        (lambda f, m, r, c: (f, m, r, c + 20), r"col_ids must be < 16.*got a maximum of 24"),
        (lambda f, m, r, c: (f[:, :0], m[:, :0], r[:0], c[:0]), r"N >= 1 slots.*got N = 0"),
        (lambda f, m, r, c: (f.long(), m, r, c), r"floating point, got torch.int64"),
    ],
)
def test_forward_errors_name_expected_and_actual(mutate, match):
    enc = make_encoder("learned")
    feats, mask, r, c = make_inputs(batch=(2,))
    with pytest.raises(ValueError, match=match):
        enc(*mutate(feats, mask, r, c))


def test_constructor_errors():
    with pytest.raises(ValueError, match=r"embed_dim must be a positive even number, got 33"):
        SlotTransformerEncoder(embed_dim=33, num_heads=3)
    with pytest.raises(ValueError, match=r"divisible by num_heads.*embed_dim=30, num_heads=4"):
        SlotTransformerEncoder(embed_dim=30, num_heads=4)
    with pytest.raises(ValueError, match=r"got 'grid'"):
        SlotTransformerEncoder(positional="grid")  # type: ignore[arg-type]


def test_global_encoder():
    torch.manual_seed(0)
    enc = GlobalEncoder(embed_dim=16)
    out = enc(torch.randn(4, 3, layout.BASE_FEATURES))
    assert out.shape == (4, 3, 16) and (out >= 0).all()
    # LayerNorm before ReLU: every row is normalised, so about half the units are active
    assert ((out > 0).float().mean(-1) > 0.2).all()
    with pytest.raises(ValueError, match=r"base must be \[\*B, 23\], got shape \(4, 22\)"):
        enc(torch.randn(4, 22))


def test_slot_encoder_module_default_keys_match_core():
    enc = make_encoder("learned")
    module = SlotEncoderModule(enc)
    feats, mask, r, c = make_inputs(batch=(3,))
    obs = {"slots": feats, "slot_mask": mask, "slot_row": r.expand(3, 5), "slot_col": c.expand(3, 5)}
    td = module(TensorDict({"observation": obs}, batch_size=[3]))
    cls, slot_repr = enc(feats, mask, r, c)
    torch.testing.assert_close(td["cls"], cls)
    torch.testing.assert_close(td["slot_repr"], slot_repr)
    assert module.encoder is enc
    assert module.in_keys[0] == ("observation", "slots") and len(module.in_keys) == 4


def test_slot_encoder_module_nested_keys_attention_and_no_positions():
    enc = make_encoder("none")
    module = SlotEncoderModule(
        enc, in_keys=[("agents", "features"), ("agents", "mask")],
        out_keys=[("out", "cls"), ("out", "repr"), ("out", "attn")],
    )
    feats, mask, _, _ = make_inputs(batch=(2, 3))
    td = TensorDict({"agents": {"features": feats, "mask": mask}}, batch_size=[2, 3])
    td = module(td)
    assert td["out", "repr"].shape == (2, 3, 5, D) and td["out", "attn"].shape == (2, 3, 2, 4, 6, 6)
    torch.testing.assert_close(td["out", "cls"], enc(feats, mask)[0])


def test_slot_encoder_module_key_errors():
    with pytest.raises(ValueError, match=r"needs 4 in_keys .*got 2"):
        SlotEncoderModule(make_encoder("learned"), in_keys=["a", "b"])
    with pytest.raises(ValueError, match=r"2 or 3 keys, got 1"):
        SlotEncoderModule(make_encoder("none"), out_keys=["cls"])
