"""FactoredActionDistribution: legality, stored-action log-probs, exact entropy, frequencies."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from tensordict import TensorDict

from torchrl_slots import layout
from torchrl_slots.modules.distribution import (
    ACTION_KEYS,
    ENTROPY_KEYS,
    LOG_PROB_KEYS,
    FactoredActionDistribution,
    independent_params,
)

HEADS = layout.HEADS
OPS = layout.NUM_OPS


def random_params(batch, n, seed, *, p_legal=0.5, p_single=0.2, scale=2.0, dtype=torch.float32):
    """Realistic random params: irrelevant heads and illegal ops' rows are the index-0-only
    placeholder; other rows are random non-empty subsets, some with exactly one legal value."""
    gen = torch.Generator().manual_seed(seed)
    sizes = layout.head_sizes(n)
    op_mask = torch.rand(*batch, OPS, generator=gen) < p_legal
    op_mask.scatter_(-1, torch.randint(0, OPS, (*batch, 1), generator=gen), True)
    rel = layout.relevance_matrix()
    params = {"op": {"logits": scale * torch.randn(*batch, OPS, generator=gen, dtype=dtype), "mask": op_mask}}
    for j, h in enumerate(HEADS[1:], start=1):
        k = sizes[h]
        forced = torch.randint(0, k, (*batch, OPS), generator=gen)
        mask = (torch.rand(*batch, OPS, k, generator=gen) < p_legal) | F.one_hot(forced, k).bool()
        single = torch.rand(*batch, OPS, 1, generator=gen) < p_single
        mask = torch.where(single, F.one_hot(forced, k).bool(), mask)
        placeholder = ~(rel[:, j] & op_mask)  # [*B, 6]
        mask = torch.where(placeholder[..., None], F.one_hot(torch.tensor(0), k).bool(), mask)
        shape = (*batch, OPS, k) if h == "slot" else (*batch, OPS, n, k)
        params[h] = {"logits": scale * torch.randn(*shape, generator=gen, dtype=dtype), "mask": mask}
    return TensorDict(params, batch_size=batch)


def assert_legal(params, action):
    """op in the op mask, slot in mask[op], each small head in mask[op] (any leading dims)."""
    a = {h: action["action", h] for h in HEADS}
    batch = params.batch_size
    lead = a["op"].shape[: a["op"].ndim - len(batch)]
    m = {h: params[h, "mask"].expand(*lead, *params[h, "mask"].shape) for h in HEADS}
    assert m["op"].gather(-1, a["op"][..., None]).all()
    for h in HEADS[1:]:
        row = m[h].gather(-2, a["op"][..., None, None].expand(*a["op"].shape, 1, m[h].shape[-1])).squeeze(-2)
        assert row.gather(-1, a[h][..., None]).all(), h


def manual_log_probs(params, action):
    """Reference: -inf masking, Python loop over the batch, plain indexing."""
    flat = params.reshape(-1)
    acts = {h: action["action", h].reshape(-1) for h in HEADS}
    out = {h: torch.empty(flat.shape[0], dtype=params["op", "logits"].dtype) for h in HEADS}
    for b in range(flat.shape[0]):
        o, s = int(acts["op"][b]), int(acts["slot"][b])
        for h in HEADS:
            logits, mask = flat[h, "logits"][b], flat[h, "mask"][b]
            if h == "slot":
                logits, mask = logits[o], mask[o]
            elif h != "op":
                logits, mask = logits[o, s], mask[o]
            lp = torch.log_softmax(logits.masked_fill(~mask, -math.inf), -1)
            out[h][b] = lp[acts[h][b]]
    return {h: v.reshape(params.batch_size) for h, v in out.items()}


def xlogx_entropy(p, dims):
    """Entropy of the marginal of ``p`` over the kept ``dims`` (others summed out), per batch row."""
    keep = [0] + [d + 1 for d in dims]
    drop = [d for d in range(1, p.ndim) if d not in keep]
    marg = p.sum(drop) if drop else p
    return -torch.where(marg > 0, marg * marg.log(), 0.0).flatten(1).sum(-1)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 5),
    batch=st.lists(st.integers(1, 3), max_size=2),
    p_legal=st.sampled_from([0.1, 0.5, 0.9]),
)
def test_samples_are_legal_and_log_prob_matches_manual(seed, n, batch, p_legal):
    params = random_params(tuple(batch), n, seed, p_legal=p_legal)
    dist = FactoredActionDistribution(params)
    torch.manual_seed(seed)
    action = dist.sample()
    assert all(action[k].dtype == torch.int64 and action[k].shape == torch.Size(batch) for k in ACTION_KEYS)
    assert_legal(params, action)
    lp = dist.log_prob(action)
    assert set(lp.keys(True, True)) == set(LOG_PROB_KEYS)
    ref = manual_log_probs(params, action)
    for h, key in zip(HEADS, LOG_PROB_KEYS):
        torch.testing.assert_close(lp[key], ref[h])
    ent = dist.entropy()
    assert set(ent.keys(True, True)) == set(ENTROPY_KEYS)
    total = sum(ent[k] for k in ENTROPY_KEYS)
    torch.testing.assert_close(total, dist.joint_entropy())
    assert all(bool((ent[k] >= 0).all() and ent[k].isfinite().all()) for k in ENTROPY_KEYS)


def test_sample_shape_prefix_is_legal_and_scored():
    params = random_params((3,), 4, seed=1)
    dist = FactoredActionDistribution(params)
    action = dist.sample((50,))
    assert action.batch_size == torch.Size([50, 3])
    assert_legal(params, action)
    lp = dist.log_prob(action)
    assert lp["action", "blueprint_log_prob"].shape == torch.Size([50, 3])
    one = action[7]
    torch.testing.assert_close(lp[7], dist.log_prob(one))


def test_entropy_matches_brute_force_enumeration():
    n, sizes = 2, layout.head_sizes(2)
    params = random_params((2,), n, seed=3, p_legal=0.7, p_single=0.1, dtype=torch.float64)
    dist = FactoredActionDistribution(params)
    grid = torch.cartesian_prod(*[torch.arange(sizes[h]) for h in HEADS])  # [C, 8], op slowest
    c = grid.shape[0]
    assert c == 6 * 2 * 13 * 4 * 3 * 3 * 4 * 3
    sample = TensorDict({k: grid[:, j, None].expand(c, 2) for j, k in enumerate(ACTION_KEYS)}, [c, 2])
    lp = dist.log_prob(sample).sum(dim="feature", reduce=True)  # [C, B]
    p = torch.where(lp > -1e300, lp.exp(), 0.0).T  # [B, C]
    torch.testing.assert_close(p.sum(-1), torch.ones(2, dtype=torch.float64))
    p = p.reshape(2, *sizes.values())  # [B, 6, N, 13, 4, 3, 3, 4, 3]
    ent = dist.entropy()
    torch.testing.assert_close(dist.joint_entropy(), xlogx_entropy(p, list(range(8))))
    torch.testing.assert_close(ent["action", "op_entropy"], xlogx_entropy(p, [0]))
    h_on = xlogx_entropy(p, [0, 1])
    torch.testing.assert_close(ent["action", "slot_entropy"], h_on - xlogx_entropy(p, [0]))
    for j, h in enumerate(HEADS[2:], start=2):  # H(h | op, slot) = H(op, slot, h) - H(op, slot)
        torch.testing.assert_close(ent["action", f"{h}_entropy"], xlogx_entropy(p, [0, 1, j]) - h_on)


def test_irrelevant_heads_contribute_exactly_zero():
    params = random_params((8,), 3, seed=4)
    params["alpha_curve", "mask"] = F.one_hot(torch.zeros(8, OPS, dtype=torch.long), 3).bool()
    params["op", "mask"][0] = F.one_hot(torch.tensor(layout.Op.WAIT), OPS).bool()  # row 0: WAIT only
    dist = FactoredActionDistribution(params)
    action = dist.sample((20,))
    lp, ent = dist.log_prob(action), dist.entropy()
    assert torch.equal(lp["action", "alpha_curve_log_prob"], torch.zeros(20, 8))
    assert torch.equal(ent["action", "alpha_curve_entropy"], torch.zeros(8))
    assert (action["action", "alpha_curve"] == 0).all()
    assert torch.equal(lp[:, 0].sum(dim="feature", reduce=True), torch.zeros(20))
    assert dist.joint_entropy()[0].item() == 0.0
    assert all(ent[k][0].item() == 0.0 and not math.copysign(1, ent[k][0].item()) < 0 for k in ENTROPY_KEYS)


def test_masked_logit_values_are_ignored():
    params = random_params((4,), 3, seed=5)
    noisy = params.clone()
    for h in HEADS:
        mask = params[h, "mask"] if h in ("op", "slot") else params[h, "mask"].unsqueeze(-2)
        noisy[h, "logits"] = torch.where(mask, params[h, "logits"], 1e30)
    a, b = FactoredActionDistribution(params), FactoredActionDistribution(noisy)
    action = a.sample((10,))
    assert (a.log_prob(action) == b.log_prob(action)).all()
    assert (a.entropy() == b.entropy()).all()
    assert (a.mode == b.mode).all()


def test_sampling_frequencies_match_probabilities():
    n, sizes = 3, layout.head_sizes(3)
    params = random_params((1,), n, seed=5, p_legal=0.5, p_single=0.5, scale=0.5)  # 94 outcomes
    dist = FactoredActionDistribution(params)
    grid = torch.cartesian_prod(*[torch.arange(sizes[h]) for h in HEADS])  # [C, 8]
    c = grid.shape[0]
    sample = TensorDict({k: grid[:, j, None] for j, k in enumerate(ACTION_KEYS)}, [c, 1])
    lp = dist.log_prob(sample).sum(dim="feature", reduce=True)[:, 0]
    probs = torch.where(lp > -1e30, lp.double().exp(), 0.0)
    probs = probs / probs.sum()
    m = 40_000
    torch.manual_seed(0)
    draws = dist.sample((m,))
    radix = torch.tensor([math.prod(list(sizes.values())[j + 1 :]) for j in range(8)])
    index = sum(draws[k][:, 0] * radix[j] for j, k in enumerate(ACTION_KEYS))
    counts = torch.bincount(index, minlength=c).double()
    assert counts[probs == 0].sum() == 0
    expected = m * probs
    big = expected >= 5
    f_obs, f_exp = counts[big], expected[big]
    if expected[~big].sum() > 0:  # pool the rare outcomes into one cell
        f_obs = torch.cat([f_obs, counts[~big].sum()[None]])
        f_exp = torch.cat([f_exp, expected[~big].sum()[None]])
    assert big.sum() >= 50  # a non-trivial test
    pvalue = stats.chisquare(f_obs.numpy(), f_exp.numpy()).pvalue
    assert pvalue > 1e-3


def test_deterministic_sample_is_argmax_chain():
    params = random_params((6,), 4, seed=7)
    dist = FactoredActionDistribution(params)
    mode = dist.deterministic_sample
    assert_legal(params, mode)
    for b in range(6):
        op_l = params["op", "logits"][b].masked_fill(~params["op", "mask"][b], -math.inf)
        o = int(op_l.argmax())
        s = int(params["slot", "logits"][b, o].masked_fill(~params["slot", "mask"][b, o], -math.inf).argmax())
        want = {"op": o, "slot": s}
        for h in layout.SMALL_HEADS:
            want[h] = int(params[h, "logits"][b, o, s].masked_fill(~params[h, "mask"][b, o], -math.inf).argmax())
        assert {h: int(mode["action", h][b]) for h in HEADS} == want
    assert (dist.mode == mode).all()


@pytest.mark.parametrize(
    ("head", "index", "match"),
    [
        ("op", (2,), r"head 'op' has an all-False mask row at batch index \(2,\)"),
        ("slot", (1, 3), r"head 'slot' has an all-False mask row at batch index \(1,\), op row 3"),
        ("tempo", (0, 0), r"head 'tempo' has an all-False mask row at batch index \(0,\), op row 0"),
    ],
)
def test_all_false_mask_row_raises_naming_head(head, index, match):
    params = random_params((3,), 4, seed=8)
    params[head, "mask"][index] = False
    with pytest.raises(ValueError, match=match):
        FactoredActionDistribution(params)


def test_wrong_shapes_raise():
    params = random_params((3,), 4, seed=9)
    params["blueprint", "mask"] = params["blueprint", "mask"][..., :5]
    with pytest.raises(ValueError, match=r"\('blueprint', 'mask'\): expected shape \(3, 6, 13\)"):
        FactoredActionDistribution(params)
    params = random_params((3,), 4, seed=9)
    params["slot", "mask"] = params["slot", "mask"].float()
    with pytest.raises(TypeError, match="must be bool"):
        FactoredActionDistribution(params)


def test_conditional_entropy_bonus_does_not_push_op_choice():
    """A head's entropy term must not pay for choosing an op that has many sub-heads (PPO learned a
    germinate-prune loop for it): its weights p(o), p(n|o) carry no gradient, its own logits do."""
    params = random_params((4,), 3, seed=10)
    op_logits = params["op", "logits"].clone().requires_grad_(True)
    bp_logits = params["blueprint", "logits"].clone().requires_grad_(True)
    params["op", "logits"], params["blueprint", "logits"] = op_logits, bp_logits
    dist = FactoredActionDistribution(params)
    ent = dist.entropy()
    (ent["action", "slot_entropy"].sum() + ent["action", "blueprint_entropy"].sum()).backward()
    assert op_logits.grad is None or (op_logits.grad == 0).all()
    assert bp_logits.grad.isfinite().all() and bp_logits.grad.abs().sum() > 0
    op_logits.grad = None
    dist2 = FactoredActionDistribution(params)
    dist2.entropy()["action", "op_entropy"].sum().backward()  # H(op) itself still trains the op head
    grad, legal = op_logits.grad, params["op", "mask"]
    assert grad.isfinite().all() and (grad[~legal] == 0).all() and grad[legal].abs().sum() > 0


def test_components_are_entropy_views_that_torchrl_reads_analytically():
    """composite_entropy (what ClipPPOLoss calls) takes each component's analytic entropy: no
    sampling, no warning, and per head exactly the distribution's own term."""
    import warnings

    from tensordict.nn import set_composite_lp_aggregate
    from torchrl.modules.distributions.utils import composite_entropy, has_analytic_entropy

    dist = FactoredActionDistribution(random_params((2,), 3, seed=11))
    assert list(dist.dists) == list(ACTION_KEYS)
    assert all(has_analytic_entropy(c) for c in dist.dists.values())
    assert not any(isinstance(c, torch.distributions.Distribution) for c in dist.dists.values())
    with pytest.raises(AttributeError):
        dist.dists["action", "slot"].sample()  # a head cannot be drawn without the op and slot
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torchrl warns when it falls back to Monte Carlo
        with set_composite_lp_aggregate(False):
            per_head = composite_entropy(dist)
        with set_composite_lp_aggregate(True):
            joint = composite_entropy(dist)
    with set_composite_lp_aggregate(False):
        expected = dist.entropy()
    for key in ENTROPY_KEYS:
        assert torch.equal(per_head[key], expected[key]), key
    torch.testing.assert_close(joint, dist.joint_entropy())


def test_independent_params_factorise():
    gen = torch.Generator().manual_seed(12)
    b, sizes = 5, layout.head_sizes(4)
    logits = {h: torch.randn(b, k, generator=gen) for h, k in sizes.items()}
    masks = {h: (torch.rand(b, k, generator=gen) < 0.5) | F.one_hot(torch.zeros(b, dtype=torch.long), k).bool()
             for h, k in sizes.items()}
    params = independent_params(
        logits["op"], masks["op"], logits["slot"], masks["slot"],
        {h: logits[h] for h in layout.SMALL_HEADS}, {h: masks[h] for h in layout.SMALL_HEADS},
    )
    dist = FactoredActionDistribution(params)
    action = dist.sample((30,))
    lp = dist.log_prob(action)
    joint_h = torch.zeros(b)
    for h in HEADS:
        ind = torch.distributions.Categorical(logits=logits[h].masked_fill(~masks[h], -math.inf))
        torch.testing.assert_close(lp["action", f"{h}_log_prob"], ind.log_prob(action["action", h]))
        joint_h = joint_h + torch.where(masks[h], ind.probs * ind.logits, 0.0).sum(-1).neg()
    torch.testing.assert_close(dist.joint_entropy(), joint_h)


def additive_params(batch, n, seed, **kwargs):
    """``random_params`` with every small head in the additive form, and its dense twin."""
    params = random_params(batch, n, seed, **kwargs)
    gen = torch.Generator().manual_seed(seed + 1)
    dense = params.clone()
    for h in layout.SMALL_HEADS:
        k = params[h, "mask"].shape[-1]
        op_term = 2.0 * torch.randn(*batch, OPS, k, generator=gen, dtype=params["op", "logits"].dtype)
        slot_term = 2.0 * torch.randn(*batch, n, k, generator=gen, dtype=op_term.dtype)
        params[h] = {"logits": op_term, "slot_logits": slot_term, "mask": params[h, "mask"]}
        dense[h, "logits"] = op_term.unsqueeze(-2) + slot_term.unsqueeze(-3)
    return params, dense


@pytest.mark.parametrize("batch", [(), (5,), (3, 4)])
def test_additive_form_is_the_dense_form_with_the_sum(batch):
    params, dense = additive_params(batch, 4, seed=13)
    a, d = FactoredActionDistribution(params), FactoredActionDistribution(dense)
    torch.manual_seed(0)
    sa = a.sample((40,))
    torch.manual_seed(0)
    sd = d.sample((40,))
    assert (sa == sd).all()
    assert_legal(dense, sa)
    torch.testing.assert_close(a.log_prob(sa), d.log_prob(sa))
    ref = manual_log_probs(dense, sa[0])
    for h, key in zip(HEADS, LOG_PROB_KEYS):
        torch.testing.assert_close(a.log_prob(sa[0])[key], ref[h])
    torch.testing.assert_close(a.entropy(), d.entropy())
    assert (a.mode == d.mode).all()


@pytest.mark.parametrize("form", ["dense", "additive"])
def test_sparse_small_entropy_matches_the_dense_sum_in_value_and_gradient(form):
    """The entropy gathers only pairs with p(o, n) > 0 where the head has a choice: same value and
    same gradients as the plain sum over all 6 N pairs (rows with a single legal slot included)."""
    additive, dense = additive_params((6, 3), 7, seed=14, p_legal=0.4)
    params = additive if form == "additive" else dense
    params["slot", "mask"][0] = F.one_hot(torch.zeros(3, OPS, dtype=torch.long), 7).bool()  # one slot each
    leaves = {}
    for h in layout.SMALL_HEADS:
        for part in ("logits", "slot_logits") if form == "additive" else ("logits",):
            leaves[h, part] = params[h, part].clone().requires_grad_(True)
            params[h, part] = leaves[h, part]
    dist = FactoredActionDistribution(params)
    ent = dist.entropy()
    for h in layout.SMALL_HEADS:
        sparse, ref = ent["action", f"{h}_entropy"], dist.dense_small_entropy(h)
        torch.testing.assert_close(sparse, ref)
        parts = [leaves[k] for k in leaves if k[0] == h]
        g_sparse = torch.autograd.grad(sparse.sum(), parts, retain_graph=True)
        g_ref = torch.autograd.grad(ref.sum(), parts, retain_graph=True)
        for gs, gr in zip(g_sparse, g_ref):
            torch.testing.assert_close(gs, gr)
        assert any(g.abs().sum() > 0 for g in g_sparse), h  # the test can fail: some pairs are active
    assert (ent["action", "blueprint_entropy"] > 0).any()


def test_additive_form_shape_and_head_errors():
    params, _ = additive_params((3,), 4, seed=15)
    bad = params.clone()
    bad["tempo", "slot_logits"] = bad["tempo", "slot_logits"][:, :3]
    with pytest.raises(ValueError, match=r"\('tempo', 'slot_logits'\): expected shape \(3, 4, 3\), got \(3, 3, 3\)"):
        FactoredActionDistribution(bad)
    bad = params.clone()
    bad["style", "logits"] = bad["style", "logits"].unsqueeze(-2).expand(3, OPS, 4, 4)
    with pytest.raises(ValueError, match=r"\('style', 'logits'\) \(additive form\): expected shape \(3, 6, 4\)"):
        FactoredActionDistribution(bad)
    bad = params.to_dict()
    bad["slot"]["slot_logits"] = torch.zeros(3, 4, 4)
    with pytest.raises(ValueError, match=r"\('slot', 'slot_logits'\): only the small heads"):
        FactoredActionDistribution(bad)
    flat = {f"{h}_{part}": params[h, part] for h in HEADS for part in ("logits", "mask")}
    with pytest.raises(KeyError, match=r"unknown entries \['op_slot_logits'\]"):
        FactoredActionDistribution.from_flat(**flat, op_slot_logits=torch.zeros(3, 4, 6))
    with pytest.raises(ValueError, match="dense_small_entropy: expected one of"):
        FactoredActionDistribution(params).dense_small_entropy("slot")


def test_from_flat_reads_the_additive_form():
    params, dense = additive_params((2,), 3, seed=16)
    flat = {f"{h}_{part}": params[h, part] for h in HEADS for part in ("logits", "mask")}
    flat.update({f"{h}_slot_logits": params[h, "slot_logits"] for h in layout.SMALL_HEADS})
    torch.testing.assert_close(FactoredActionDistribution.from_flat(**flat).entropy(),
                               FactoredActionDistribution(dense).entropy())


def test_sparse_entropy_with_no_active_pair_is_zero_with_zero_gradient():
    """Only WAIT legal everywhere: no (op, slot) pair gives a small head a choice (P = 0)."""
    params, _ = additive_params((4,), 3, seed=17)
    params["op", "mask"] = F.one_hot(torch.zeros(4, dtype=torch.long), OPS).bool()
    leaf = params["blueprint", "slot_logits"].clone().requires_grad_(True)
    params["blueprint", "slot_logits"] = leaf
    ent = FactoredActionDistribution(params).entropy()
    assert all(torch.equal(ent["action", f"{h}_entropy"], torch.zeros(4)) for h in layout.SMALL_HEADS)
    ent["action", "blueprint_entropy"].sum().backward()
    assert torch.equal(leaf.grad, torch.zeros_like(leaf))
