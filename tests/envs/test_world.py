"""The hidden world (docs/simulator.md "The world"): fixed by ``task_seed``, the same at every grid size.

Same ``task_seed`` -> identical hidden tables, another -> different; ``V_b(u, v) = q_b + W[b].phi``
at normalized positions, so a 2x5 and a 3x9 grid (and a 1xN row at v = 0.5) agree where their
normalized positions match; ``S`` symmetric with a zero NOOP row; style affinity inside the
configured range; 4-neighbours; and a germinated seed's gain is ``m[b, alg] V_b(u, v)`` plus noise.
"""

from __future__ import annotations

import math

import pytest
import torch

from torchrl_slots import layout
from torchrl_slots.envs import LifecycleConfig, SeedLifecycleEnv, World
from torchrl_slots.envs.world import neighbour_index
from torchrl_slots.layout import HEADS, Op

TABLES = ("affinity_weights", "interaction", "style_affinity")


def test_same_task_seed_same_world_other_seed_other_world():
    a, b, c = World(7), World(7), World(8)
    for name in TABLES:
        assert torch.equal(getattr(a, name), getattr(b, name)), name
        assert not torch.equal(getattr(a, name), getattr(c, name)), name


def test_env_world_depends_on_task_seed_only():
    env_a = SeedLifecycleEnv(2, 2, 5, config=LifecycleConfig(task_seed=3), seed=0)
    env_b = SeedLifecycleEnv(2, 2, 5, config=LifecycleConfig(task_seed=3), seed=99)
    env_c = SeedLifecycleEnv(2, 2, 5, config=LifecycleConfig(task_seed=4), seed=0)
    assert torch.equal(env_a.sim.slot_value, env_b.sim.slot_value)
    assert not torch.equal(env_a.sim.slot_value, env_c.sim.slot_value)
    for name in TABLES:
        assert torch.equal(getattr(env_a.sim.world, name), getattr(env_b.sim.world, name))


def test_public_tables_match_layout():
    w = World(0)
    bps = layout.BLUEPRINTS
    assert w.quality.tolist() == pytest.approx([b.quality for b in bps])
    assert w.cost.tolist() == pytest.approx([b.cost for b in bps])
    assert w.rate.tolist() == pytest.approx([b.rate for b in bps])
    real = bps[1:]
    assert all(0.02 <= b.cost <= 0.3 and 0.3 <= b.quality <= 2.0 and 0.15 <= b.rate <= 0.4 for b in real)


def test_value_formula_at_explicit_points():
    w = World(1)
    u, v = torch.tensor([0.0, 0.25, 1.0]), torch.tensor([1.0, 0.5, 0.0])
    val = w.value(u, v)  # [3, 13]
    for i in range(3):
        phi = torch.tensor([1.0, u[i], v[i], math.cos(math.pi * u[i]), math.sin(math.pi * u[i]), u[i] * v[i]])
        expected = w.quality + w.affinity_weights @ phi
        expected[0] = 0.0  # NOOP has no value
        torch.testing.assert_close(val[i], expected)


def test_value_is_the_same_at_matching_normalized_positions_on_2x5_and_3x9():
    w = World(5)
    small, big = w.slot_values(2, 5), w.slot_values(3, 9)  # [10, 13], [27, 13]
    # 2x5: v in {0, 1}, u = col / 4; 3x9: v = row / 2, u = col / 8 -> rows {0, 2}, cols {0, 2, 4, 6, 8}
    for r_small, r_big in ((0, 0), (1, 2)):
        for c_small in range(5):
            torch.testing.assert_close(small[r_small * 5 + c_small], big[r_big * 9 + 2 * c_small])
    # a single row sits at v = 0.5: the middle row of the 3x9 grid
    row = w.slot_values(1, 5)
    for c in range(5):
        torch.testing.assert_close(row[c], big[1 * 9 + 2 * c])
    # a single slot sits at (0.5, 0.5): the centre of the 3x9 grid
    torch.testing.assert_close(w.slot_values(1, 1)[0], big[1 * 9 + 4])


def test_corners_agree_between_grids_through_the_env():
    cfg = LifecycleConfig(task_seed=2)
    v_small = SeedLifecycleEnv(1, 2, 5, config=cfg, seed=0).sim.slot_value.view(2, 5, -1)
    v_big = SeedLifecycleEnv(1, 3, 9, config=cfg, seed=0).sim.slot_value.view(3, 9, -1)
    for (rs, cs), (rb, cb) in (((0, 0), (0, 0)), ((0, 4), (0, 8)), ((1, 0), (2, 0)), ((1, 4), (2, 8))):
        torch.testing.assert_close(v_small[rs, cs], v_big[rb, cb])
    # the world is position-dependent: the corners are not all equal
    assert not torch.allclose(v_small[0, 0], v_small[1, 4])


def test_value_is_smooth_in_position():
    w = World(0)
    u = torch.linspace(0, 1, 201)
    v = torch.full_like(u, 0.3)
    val = w.value(u, v)  # [201, 13]
    step = (val[1:] - val[:-1]).abs().max()
    assert step < 0.1, f"value jumps by {step} pp between neighbouring depths 0.005 apart"


def test_interaction_symmetric_with_zero_noop():
    for seed in (0, 1, 2):
        s = World(seed).interaction
        assert s.shape == (13, 13)
        assert torch.equal(s, s.T)
        assert (s[0] == 0).all() and (s[:, 0] == 0).all()
        assert s[1:, 1:].std() > 0.1


@pytest.mark.parametrize("lo_hi", [(0.7, 1.2), (0.9, 1.0)])
def test_style_affinity_within_configured_range(lo_hi):
    lo, hi = lo_hi
    m = World(4, style_affinity=lo_hi).style_affinity
    assert m.shape == (13, len(layout.Algorithm))
    assert (m[0] == 0).all()
    assert ((m[1:] >= lo) & (m[1:] <= hi)).all()
    assert m[1:].max() - m[1:].min() > 0.5 * (hi - lo)  # actually spread over the range


def test_affinity_std_scales_the_hidden_weights():
    w1, w2 = World(0, affinity_std=0.6), World(0, affinity_std=1.2)
    torch.testing.assert_close(w2.affinity_weights, 2 * w1.affinity_weights)
    assert (w1.affinity_weights[0] == 0).all()


def test_neighbour_index_on_2x3():
    n = 6
    nb = neighbour_index(2, 3)
    expected = {0: {1, 3}, 1: {0, 2, 4}, 2: {1, 5}, 3: {0, 4}, 4: {1, 3, 5}, 5: {2, 4}}
    for i in range(n):
        got = set(nb[i].tolist()) - {n}
        assert got == expected[i], (i, got)
        assert (nb[i] == n).sum() == 4 - len(expected[i])


def test_germinated_gain_is_style_affinity_times_value_plus_noise():
    """256 episodes germinate blueprint b with style s in slot n: the mean gain is
    m[b, alg(s)] * V_b(u, v) and its spread is ``gain_noise``."""
    e, slot, bp, style = 256, 7, 6, int(layout.Style.LINEAR_MULTIPLY)
    env = SeedLifecycleEnv(e, 2, 5, config=LifecycleConfig(task_seed=1), seed=0)
    td = env.reset()
    for h in HEADS:
        td.set(("action", h), torch.zeros(e, dtype=torch.long))
    td["action", "op"].fill_(int(Op.GERMINATE))
    td["action", "slot"].fill_(slot)
    td["action", "blueprint"].fill_(bp)
    td["action", "style"].fill_(style)
    env.step(td)
    gain = env.state.gain[:, slot]
    w = env.sim.world
    r, c = divmod(slot, 5)
    expected = w.style_affinity[bp, layout.Algorithm.MULTIPLY] * w.value(torch.tensor(c / 4), torch.tensor(r / 1.0))[bp]
    sd = env.config.gain_noise
    assert abs(gain.mean() - expected) < 4 * sd / math.sqrt(e)
    assert 0.8 * sd < gain.std() < 1.2 * sd
