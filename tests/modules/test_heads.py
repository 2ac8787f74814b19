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
    heads = FactoredHeads(core_dim=8, slot_dim=4, slot_head=slot_head, num_slots=5, op_from_slots=True)
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
