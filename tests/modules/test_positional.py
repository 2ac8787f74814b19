"""Tests of torchrl_slots.modules.positional."""

from __future__ import annotations

import pytest
import torch

from torchrl_slots import layout
from torchrl_slots.modules.positional import (
    FourierPositionalEncoding,
    SlotPositionalEncoding,
    make_positional,
)


@pytest.fixture(params=["learned", "fourier"])
def pos(request):
    torch.manual_seed(0)
    return make_positional(request.param, embed_dim=16)


def test_shapes_and_broadcast(pos):
    rows, cols = layout.grid_ids(3, 4)  # [12]
    assert pos(rows, cols).shape == (12, 16)
    assert pos(rows.expand(2, 5, 12), cols).shape == (2, 5, 12, 16)


def test_distinct_positions_get_distinct_encodings(pos):
    rows, cols = layout.grid_ids(4, 4)
    enc = pos(rows, cols)  # [16, 16]
    dist = torch.cdist(enc, enc) + torch.eye(16) * 1e9
    assert dist.min() > 1e-4


def test_learned_is_row_table_concat_col_table():
    pos = SlotPositionalEncoding(max_rows=3, max_cols=5, embed_dim=8)
    out = pos(torch.tensor([2]), torch.tensor([4]))[0]
    assert torch.equal(out[:4], pos.row_embed.weight[2])
    assert torch.equal(out[4:], pos.col_embed.weight[4])


def test_gradients_reach_parameters(pos):
    rows, cols = layout.grid_ids(2, 3)
    pos(rows, cols).pow(2).sum().backward()
    for name, p in pos.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_fourier_depends_on_normalized_position_only():
    torch.manual_seed(0)
    pos = FourierPositionalEncoding(embed_dim=16, num_frequencies=6)
    small = pos(*layout.grid_ids(2, 5)).view(2, 5, 16)
    large = pos(*layout.grid_ids(3, 9)).view(3, 9, 16)
    for (rs, cs), (rl, cl) in [((0, 0), (0, 0)), ((0, 4), (0, 8)), ((1, 0), (2, 0)), ((1, 4), (2, 8))]:
        torch.testing.assert_close(small[rs, cs], large[rl, cl], rtol=0, atol=1e-6)
    # column 2 of 5 and column 4 of 9 are both the middle (0.5)
    torch.testing.assert_close(small[0, 2], large[0, 4], rtol=0, atol=1e-6)
    # but different normalized points differ
    assert (small[0, 1] - large[0, 1]).abs().max() > 1e-3


def test_fourier_extent_includes_every_id_and_is_per_batch_row():
    pos = FourierPositionalEncoding(embed_dim=8, num_frequencies=3)
    rows = torch.tensor([[0, 1, 2], [0, 0, 0]])
    torch.testing.assert_close(pos.normalize(rows), torch.tensor([[0.0, 0.5, 1.0], [0.5, 0.5, 0.5]]))
    # same semantics as layout.normalized_position on a full grid
    ids = torch.arange(7)
    torch.testing.assert_close(pos.normalize(ids), layout.normalized_position(ids, 7))


@pytest.mark.parametrize(
    ("rows", "cols", "match"),
    [
        (torch.tensor([0, 4]), torch.tensor([0, 1]), r"row_ids must be < 4.*got a maximum of 4"),
        (torch.tensor([0, 1]), torch.tensor([0, 5]), r"col_ids must be < 5.*got a maximum of 5"),
        (torch.tensor([-1, 1]), torch.tensor([0, 1]), r"row_ids must be >= 0, got a minimum of -1"),
        (torch.tensor([0.0, 1.0]), torch.tensor([0, 1]), r"integer dtype .*got torch.float32"),
        (torch.tensor([True]), torch.tensor([0]), r"integer dtype .*got torch.bool"),
    ],
)
def test_learned_bad_ids_raise(rows, cols, match):
    pos = SlotPositionalEncoding(max_rows=4, max_cols=5, embed_dim=8)
    with pytest.raises(ValueError, match=match):
        pos(rows, cols)


def test_fourier_bad_ids_raise():
    pos = FourierPositionalEncoding(embed_dim=8)
    with pytest.raises(ValueError, match=r"col_ids must be >= 0, got a minimum of -2"):
        pos(torch.tensor([0, 1]), torch.tensor([0, -2]))
    with pytest.raises(ValueError, match=r"got torch.float32"):
        pos(torch.tensor([0.5]), torch.tensor([0]))


def test_bad_constructor_arguments_raise():
    with pytest.raises(ValueError, match=r"even.*got 7"):
        SlotPositionalEncoding(embed_dim=7)
    with pytest.raises(ValueError, match=r"positional must be one of .*got 'sine'"):
        make_positional("sine")  # type: ignore[arg-type]
    assert make_positional("none") is None
