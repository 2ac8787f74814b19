"""FactoredHeads options: op_from_slots makes p(op, slot) one softmax over the legal pairs."""

import pytest
import torch

from torchrl_slots import layout
from torchrl_slots.modules.heads import FactoredHeads


def masks(batch=4, n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {"op": torch.rand(batch, 6, generator=g) > 0.3}
    out["op"][:, 0] = True
    for h, size in layout.head_sizes(n).items():
        if h != "op":
            m = torch.rand(batch, 6, size, generator=g) > 0.4
            m[..., 0] = True
            out[h] = m
    return out


@pytest.mark.parametrize("slot_head", ["pointer", "linear"])
def test_op_from_slots_gives_one_softmax_over_legal_op_slot_pairs(slot_head):
    torch.manual_seed(0)
    heads = FactoredHeads(core_dim=8, slot_dim=4, slot_head=slot_head, num_slots=5, op_from_slots=True,
                          op_slot_pool="sum")
    for p in heads.parameters():
        torch.nn.init.normal_(p, std=1.0)
    m = masks()
    core, slot_repr = torch.randn(4, 8), torch.randn(4, 5, 4)
    params = heads(core, slot_repr, m)
    op_lp = torch.log_softmax(params["op"]["logits"].masked_fill(~m["op"], float("-inf")), -1)
    slot_lp = torch.log_softmax(params["slot"]["logits"].masked_fill(~m["slot"], float("-inf")), -1)
    joint = (op_lp[..., None] + slot_lp).exp()  # [B, 6, N]: p(op) p(slot | op)
    # Expected: softmax over legal (op, slot) of op_head(core)[o] + slot_logit[o, n]
    raw = heads.op_head(core)[..., None] + params["slot"]["logits"]
    legal = m["op"][..., None] & m["slot"]
    want = torch.softmax(raw.masked_fill(~legal, float("-inf")).flatten(-2), -1).view_as(joint)
    assert torch.allclose(joint, want, atol=1e-5)


def test_op_from_slots_off_leaves_op_logits_to_the_core_and_needs_op_conditioning():
    heads = FactoredHeads(core_dim=8, slot_dim=4)
    core = torch.randn(3, 8)
    params = heads(core, torch.randn(3, 5, 4), masks(3))
    assert torch.equal(params["op"]["logits"], heads.op_head(core))
    with pytest.raises(ValueError, match="op_from_slots=True needs conditioning='op'"):
        FactoredHeads(core_dim=8, slot_dim=4, conditioning="none", op_from_slots=True)


@pytest.mark.parametrize("slot_head", ["pointer", "linear"])
def test_mean_pool_adds_the_log_mean_exp_of_the_legal_slot_logits(slot_head):
    torch.manual_seed(0)
    heads = FactoredHeads(core_dim=8, slot_dim=4, slot_head=slot_head, num_slots=5, op_from_slots=True)
    assert heads.op_slot_pool == "mean"
    for p in heads.parameters():
        torch.nn.init.normal_(p, std=1.0)
    m = masks()
    core, slot_repr = torch.randn(4, 8), torch.randn(4, 5, 4)
    params = heads(core, slot_repr, m)
    s = params["slot"]["logits"]
    lme = torch.stack([torch.stack([s[b, o][m["slot"][b, o]].exp().mean().log() for o in range(6)])
                       for b in range(4)])
    torch.testing.assert_close(params["op"]["logits"], heads.op_head(core) + lme)
    # equal slot logits add exactly nothing, however many slots are legal
    flat = FactoredHeads(core_dim=8, slot_dim=4, slot_head="linear", num_slots=5, op_from_slots=True)
    torch.nn.init.zeros_(flat.slot_head.weight)
    torch.nn.init.zeros_(flat.slot_head.bias)
    out = flat(core, slot_repr, m)
    torch.testing.assert_close(out["op"]["logits"], flat.op_head(core), atol=1e-6, rtol=0)


def test_floors_mix_in_uniform_over_legal_and_keep_the_argmax():
    from torchrl_slots.modules.heads import floored_logits

    torch.manual_seed(0)
    logits = torch.randn(7, 6, 5) * 4
    mask = torch.rand(7, 6, 5) > 0.4
    mask[..., 0] = True
    plain = logits.masked_fill(~mask, float("-inf")).softmax(-1)
    for floor in (0.05, 0.3):
        got = floored_logits(logits, mask, torch.tensor(floor)).masked_fill(~mask, float("-inf")).softmax(-1)
        want = (1 - floor) * plain + floor * mask / mask.sum(-1, keepdim=True)
        torch.testing.assert_close(got, want)
        assert bool((got[mask] >= floor / 5 - 1e-7).all())
        assert torch.equal(got.argmax(-1), plain.argmax(-1))
    assert floored_logits(logits, mask, torch.tensor(0.0)) is logits  # exactly the plain head at 0


def test_heads_apply_the_floors_to_op_and_slot_only():
    torch.manual_seed(0)
    heads = FactoredHeads(core_dim=8, slot_dim=4, op_from_slots=True)
    for p in heads.parameters():
        torch.nn.init.normal_(p, std=3.0)
    m = masks()
    core, slot_repr = torch.randn(4, 8), torch.randn(4, 5, 4)
    before = heads(core, slot_repr, m)
    heads.set_floors(op=0.2, slot=0.1)
    after = heads(core, slot_repr, m)
    p_op = after["op"]["logits"].masked_fill(~m["op"], float("-inf")).softmax(-1)
    assert bool((p_op[m["op"]] >= 0.2 / 6 - 1e-7).all())
    p_slot = after["slot"]["logits"].masked_fill(~m["slot"], float("-inf")).softmax(-1)
    assert bool((p_slot[m["slot"]] >= 0.1 / 5 - 1e-7).all())
    torch.testing.assert_close(after["blueprint"]["logits"], before["blueprint"]["logits"])
    assert "floors" not in heads.state_dict()  # a training setting, not saved with the weights
    with pytest.raises(ValueError, match=r"op floor must be a number in \[0, 1\), got 1.5"):
        heads.set_floors(op=1.5)
