"""Speed/memory options of the Slot Transformer: ``pack_slots``, ``chunk_rows``,
``checkpoint_chunk``, ``autocast``. Each must give the plain path's values (and gradients); the
plain path is ``pack_slots=False, chunk_rows=None``."""

from __future__ import annotations

import pytest
import torch
from torchrl.envs import Compose, TransformedEnv
from torchrl.objectives import ClipPPOLoss

from torchrl_slots import layout
from torchrl_slots.envs import LifecycleConfig, SeedLifecycleEnv
from torchrl_slots.modules import encoder as encoder_module
from torchrl_slots.modules.encoder import SlotTransformerEncoder
from torchrl_slots.policy import PolicyConfig, SlotPolicy, create_policy

D = 32
SMALL = dict(embed_dim=32, num_heads=2, num_layers=1, ffn_dim=64, feature_dim=32, lstm_hidden=32, key_dim=16)


PLAIN = {"pack_slots": False, "chunk_rows": None}


def make_encoder(**kw):
    torch.manual_seed(0)
    kw = {"embed_dim": D, "num_heads": 4, "num_layers": 2, "ffn_dim": 64, **kw}
    return SlotTransformerEncoder(**kw)


def make_inputs(batch=(3, 7), rows=3, cols=4, max_enabled=9, seed=1):
    """Ragged masks: each row enables a random subset of at most ``max_enabled`` of ``N`` slots,
    one row enables none."""
    g = torch.Generator().manual_seed(seed)
    n = rows * cols
    feats = torch.randn(*batch, n, layout.SLOT_FEATURES, generator=g)
    mask = torch.rand(*batch, n, generator=g) < torch.rand(*batch, 1, generator=g)
    mask &= torch.randperm(n, generator=g) < max_enabled  # [N]: the same slots may never be enabled
    mask.view(-1, n)[0] = False
    r, c = layout.grid_ids(rows, cols)
    return feats, mask, r, c


def run_with_grads(enc, feats, mask, r, c, weight):
    feats = feats.clone().requires_grad_()
    cls, slot_repr = enc(feats, mask, r, c)
    (cls.sum() + (slot_repr * weight).sum()).backward()
    return cls, slot_repr, feats.grad, {k: p.grad for k, p in enc.named_parameters()}


@pytest.mark.parametrize("positional", ["learned", "fourier", "none"])
def test_packing_equals_unpacked_values_and_gradients(positional):
    plain = make_encoder(positional=positional, **PLAIN)
    packed = make_encoder(positional=positional, pack_slots=True, chunk_rows=None)
    feats, mask, r, c = make_inputs()
    assert 0 < mask.sum(-1).max() < mask.shape[-1]  # the token axis is really cut
    weight = torch.randn(*mask.shape, D)
    ref, got = run_with_grads(plain, feats, mask, r, c, weight), run_with_grads(packed, feats, mask, r, c, weight)
    for a, b in zip(ref[:3], got[:3]):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0)
    assert torch.equal(got[1][~mask], torch.zeros_like(got[1][~mask]))
    for name, g in ref[3].items():
        torch.testing.assert_close(got[3][name], g, atol=1e-5, rtol=1e-5, msg=name)


def test_packing_with_every_slot_enabled_and_with_none_enabled():
    plain, packed = make_encoder(**PLAIN), make_encoder()
    feats, mask, r, c = make_inputs()
    for m in (torch.ones_like(mask), torch.zeros_like(mask)):
        for a, b in zip(plain(feats, m, r, c), packed(feats, m, r, c)):
            torch.testing.assert_close(b, a, atol=1e-5, rtol=0)
            assert torch.isfinite(b).all()
    _, slot_repr = packed(feats, torch.zeros_like(mask), r, c)
    assert torch.equal(slot_repr, torch.zeros_like(slot_repr))


def assert_same_outputs_and_grads(ref, got):
    """``run_with_grads`` results: the three outputs, then the gradient of every parameter."""
    for a, b in zip(ref[:3], got[:3]):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0)
    for name, g in ref[3].items():
        torch.testing.assert_close(got[3][name], g, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("pack_slots", [True, False])
def test_chunked_rows_equal_plain_path(pack_slots):
    plain, chunked = make_encoder(**PLAIN), make_encoder(pack_slots=pack_slots, chunk_rows=4)
    feats, mask, r, c = make_inputs()
    weight = torch.randn(*mask.shape, D)
    ref, got = run_with_grads(plain, feats, mask, r, c, weight), run_with_grads(chunked, feats, mask, r, c, weight)
    assert_same_outputs_and_grads(ref, got)
    with torch.no_grad():
        for a, b in zip(plain(feats, mask, r, c), chunked(feats, mask, r, c)):
            torch.testing.assert_close(b, a, atol=1e-5, rtol=0)


def test_checkpoint_values_and_gradients_equal_plain_path():
    plain = make_encoder(**PLAIN)
    chunked = make_encoder(checkpoint_chunk=5)  # 21 rows: chunks of 5, 5, 5, 5, 1; packed per chunk
    feats, mask, r, c = make_inputs()
    weight = torch.randn(*mask.shape, D)
    ref, got = run_with_grads(plain, feats, mask, r, c, weight), run_with_grads(chunked, feats, mask, r, c, weight)
    assert_same_outputs_and_grads(ref, got)


def test_checkpoint_runs_only_in_training_with_grad_and_saves_less(monkeypatch):
    calls = []
    real = encoder_module.checkpoint
    monkeypatch.setattr(encoder_module, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    enc = make_encoder(checkpoint_chunk=8)
    feats, mask, r, c = make_inputs()
    with torch.no_grad():
        enc(feats, mask, r, c)
    enc.eval()
    enc(feats, mask, r, c)
    assert calls == []
    enc.train()

    def saved_bytes(module):
        total = []

        def pack(t):
            total.append(t.numel() * t.element_size())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            cls, _ = module(feats.requires_grad_(), mask, r, c)
        return sum(total)

    with_ckpt, without = saved_bytes(enc), saved_bytes(make_encoder())
    assert len(calls) == 3  # 21 rows in chunks of 8
    assert with_ckpt < without / 3


def test_bf16_autocast_is_close_finite_and_returns_fp32():
    plain, bf16 = make_encoder(), make_encoder(autocast="bf16", checkpoint_chunk=8)
    feats, mask, r, c = make_inputs()
    weight = torch.randn(*mask.shape, D)
    ref, got = run_with_grads(plain, feats, mask, r, c, weight), run_with_grads(bf16, feats, mask, r, c, weight)
    for a, b in zip(ref[:2], got[:2]):
        assert b.dtype == torch.float32 and torch.isfinite(b).all()
        torch.testing.assert_close(b, a, atol=0.1, rtol=0.05)
    assert torch.isfinite(got[2]).all() and all(torch.isfinite(g).all() for g in got[3].values())
    assert torch.equal(got[1][~mask], torch.zeros_like(got[1][~mask]))


@pytest.mark.parametrize(
    "options", [{}, PLAIN, {"chunk_rows": 3}, {"checkpoint_chunk": 4}, {"autocast": "bf16"}], ids=str
)
def test_fully_masked_row_gives_finite_cls_in_train_and_eval(options):
    enc = make_encoder(**options)
    feats, mask, r, c = make_inputs()
    mask[1] = False  # a whole row of *B with no slot
    for mode in ("train", "eval"):
        getattr(enc, mode)()
        cls, slot_repr = enc(feats, mask, r, c)
        assert torch.isfinite(cls).all() and torch.isfinite(slot_repr).all()
        assert torch.equal(slot_repr[1], torch.zeros_like(slot_repr[1]))


def test_option_errors():
    with pytest.raises(ValueError, match=r"checkpoint_chunk must be None or a positive number of rows, got 0"):
        SlotTransformerEncoder(checkpoint_chunk=0)
    with pytest.raises(ValueError, match=r"chunk_rows must be None or a positive number of rows, got 2.5"):
        SlotTransformerEncoder(chunk_rows=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"autocast must be None or 'bf16', got 'fp16'"):
        SlotTransformerEncoder(autocast="fp16")  # type: ignore[arg-type]


def make_env_policy(config, num_envs=4, seed=0):
    torch.manual_seed(seed)
    base = SeedLifecycleEnv(num_envs, 2, 3, seed=seed, config=LifecycleConfig(enabled_slots=(1, 4)))
    policy = create_policy("transformer", base, config)
    return TransformedEnv(base, Compose(*policy.transforms())), policy


def test_options_reach_the_encoder_and_survive_save_load(tmp_path):
    config = PolicyConfig(**SMALL, pack_slots=False, chunk_rows=None, checkpoint_chunk=64, autocast="bf16")
    env, policy = make_env_policy(config)
    enc = policy.trunk_net.encoder
    assert (enc.pack_slots, enc.chunk_rows, enc.checkpoint_chunk, enc.autocast) == (False, None, 64, "bf16")
    assert policy.heads_net.slot_head.key.out_features == 16  # key_dim is honoured
    policy.save(tmp_path / "p.pt")
    loaded = SlotPolicy.load(tmp_path / "p.pt", env.base_env)
    assert loaded.config == config
    enc = loaded.trunk_net.encoder
    assert (enc.pack_slots, enc.chunk_rows, enc.checkpoint_chunk, enc.autocast) == (False, None, 64, "bf16")


def test_clip_ppo_gradients_with_packing_and_checkpointing_equal_plain_policy():
    plain_env, plain = make_env_policy(PolicyConfig(**SMALL, pack_slots=False, chunk_rows=None))
    _, fast = make_env_policy(PolicyConfig(**SMALL, checkpoint_chunk=7))
    fast.load_state_dict(plain.state_dict())
    with torch.no_grad():
        td = plain_env.rollout(10, plain.actor, break_when_any_done=False)
    assert (~td["observation", "slot_mask"]).any()
    td["advantage"] = torch.randn(*td.shape, 1)
    td["value_target"] = torch.randn(*td.shape, 1)
    grads = []
    for policy in (plain, fast):
        out = ClipPPOLoss(policy.actor, policy.critic)(td.clone())
        assert abs(out["mean_ratio"].item() - 1.0) < 1e-5
        (out["loss_objective"] + out["loss_critic"] + out["loss_entropy"]).backward()
        grads.append({k: p.grad for k, p in policy.named_parameters()})
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, atol=1e-6, rtol=1e-4, msg=name)


def saved_float_storages(fn, *keep):
    """Float storages autograd saves for backward while ``fn()`` runs, other than those of
    ``keep`` (parameters, inputs): ``{data_ptr: (shape, nbytes)}``."""
    known = {t.untyped_storage().data_ptr() for t in keep}
    saved = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        # torch 2.11's checkpoint saves an empty one
        if t.is_floating_point() and ptr not in known and t.untyped_storage().nbytes() > 0:
            saved[ptr] = (tuple(t.shape), t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return saved


def test_checkpointed_chunks_store_only_their_outputs():
    """A checkpointed chunk starts from the raw features: nothing of the encoder's inside (not even
    the embedded input) is kept for backward; the plain path keeps every layer's activations."""
    feats, mask, r, c = make_inputs(batch=(4, 4))
    for ckpt, expect_empty in ((4, True), (None, False)):
        enc = make_encoder(checkpoint_chunk=ckpt).train()
        saved = saved_float_storages(lambda: enc(feats, mask, r, c), feats, *enc.parameters())
        assert (not saved) == expect_empty, (ckpt, sorted(saved.values())[:3])


def test_take_and_broadcast_slot_repr_save_no_float_tensor():
    """Picking the (op, slot) row must keep only indices for backward, and a slot_repr broadcast
    over the batch (the flat trunk's learned slot embedding) must not be copied to [B', N, D]."""
    from torchrl_slots.modules.factored_core import _take
    from torchrl_slots.modules.heads import FactoredHeads

    leaf = torch.randn(5, 6, 7, 3, requires_grad=True)
    idx = torch.randint(0, 6, (2, 5))  # a sample dim in front
    out = {}
    x = leaf * 2.0  # a non-leaf, like the heads' outputs (x 2.0 itself saves nothing)
    saved = saved_float_storages(lambda: out.setdefault("y", _take(x, idx, -3)), leaf)
    assert out["y"].shape == (2, 5, 7, 3) and not saved
    torch.testing.assert_close(out["y"], x[torch.arange(5), idx])
    heads = FactoredHeads(core_dim=8, slot_dim=4, slot_head="linear", num_slots=3)  # the flat arch's heads
    emb = torch.randn(3, 4, requires_grad=True)  # [N, D]
    masks = {h: torch.ones(64, 6, n, dtype=torch.bool) for h, n in layout.head_sizes(3).items() if h != "op"}
    masks["op"] = torch.ones(64, 6, dtype=torch.bool)
    core = torch.randn(64, 8)
    saved = saved_float_storages(lambda: out.setdefault("p", heads(core, emb.expand(64, 3, 4), masks)),
                                 emb, core, *heads.parameters())
    copies = [shape for shape, _ in saved.values() if shape in ((64, 3, 4), (64 * 3, 4))]
    assert not copies, saved
    ref = heads(core, emb.expand(64, 3, 4).clone(), masks)  # the same values from a materialized copy
    torch.testing.assert_close(out["p"]["tempo"]["slot_logits"], ref["tempo"]["slot_logits"])
