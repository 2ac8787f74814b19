"""Constants and tables shared by the whole library.

One home for feature sizes, the factored action (ops, heads, head relevance), the seed lifecycle
stages, the public blueprint table and grid slot ids. Everything else imports from here, so a
number is written once.

Examples:
    >>> from torchrl_slots import layout
    >>> layout.BASE_FEATURES, layout.SLOT_FEATURES
    (23, 39)
    >>> layout.Op.GERMINATE.value
    1
    >>> layout.head_sizes(num_slots=5)["slot"]
    5
    >>> layout.slot_id(1, 2)
    'r1c2'
    >>> layout.HEAD_RELEVANCE[layout.Op.PRUNE]
    ('slot', 'alpha_speed', 'alpha_curve')
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

import torch

#: Width of the global ("base") feature vector.
BASE_FEATURES: Final[int] = 23
#: Width of one slot's feature vector.
SLOT_FEATURES: Final[int] = 39
#: Largest grid the library supports (rows and cols each).
MAX_GRID: Final[int] = 16


class Op(enum.IntEnum):
    """The lifecycle operation chosen by the ``op`` head."""

    WAIT = 0
    GERMINATE = 1
    SET_ALPHA_TARGET = 2
    PRUNE = 3
    FOSSILIZE = 4
    ADVANCE = 5


NUM_OPS: Final[int] = len(Op)


class Stage(enum.IntEnum):
    """Seed lifecycle stages (Esper's), in the order of the slot feature one-hot (features 1-9)."""

    DORMANT = 0
    GERMINATED = 1
    TRAINING = 2
    BLENDING = 3
    HOLDING = 4
    FOSSILIZED = 5
    PRUNED = 6
    EMBARGOED = 7
    RESETTING = 8


NUM_STAGES: Final[int] = len(Stage)
#: Stages that count as a "live" seed for ``max_seeds`` (fossilized seeds do not).
LIVE_STAGES: Final[tuple[Stage, ...]] = (
    Stage.GERMINATED,
    Stage.TRAINING,
    Stage.BLENDING,
    Stage.HOLDING,
)
#: PBRS stage potentials (docs/simulator.md); stages not listed have potential 0.
STAGE_POTENTIAL: Final[dict[Stage, float]] = {
    Stage.GERMINATED: 1.0,
    Stage.TRAINING: 2.0,
    Stage.BLENDING: 3.5,
    Stage.HOLDING: 5.5,
    Stage.FOSSILIZED: 6.0,
}


class Curve(enum.IntEnum):
    """Alpha ramp curves (the ``alpha_curve`` head and the curve part of a style)."""

    LINEAR = 0
    COSINE = 1
    SIGMOID = 2


class Algorithm(enum.IntEnum):
    """Blending algorithm (the algorithm part of a style); slot feature 21 is value / 2."""

    ADD = 0
    MULTIPLY = 1
    GATE = 2


class Style(enum.IntEnum):
    """Germination/blend style: a (curve, algorithm) pair."""

    LINEAR_ADD = 0
    LINEAR_MULTIPLY = 1
    SIGMOID_ADD = 2
    GATED_GATE = 3


#: Style -> (curve used for the blend ramp, blending algorithm).
STYLE_TABLE: Final[dict[Style, tuple[Curve, Algorithm]]] = {
    Style.LINEAR_ADD: (Curve.LINEAR, Algorithm.ADD),
    Style.LINEAR_MULTIPLY: (Curve.LINEAR, Algorithm.MULTIPLY),
    Style.SIGMOID_ADD: (Curve.SIGMOID, Algorithm.ADD),
    Style.GATED_GATE: (Curve.COSINE, Algorithm.GATE),
}

#: ``tempo`` head index -> blend length in epochs.
TEMPO_EPOCHS: Final[tuple[int, ...]] = (3, 5, 8)
#: ``alpha_target`` head index -> target alpha.
ALPHA_TARGETS: Final[tuple[float, ...]] = (0.5, 0.7, 1.0)
#: ``alpha_speed`` head index -> ramp length in epochs (0 = at once).
ALPHA_SPEED_EPOCHS: Final[tuple[int, ...]] = (0, 3, 5, 8)


@dataclass(frozen=True)
class Blueprint:
    """A public blueprint: name, parameter cost (fraction of the host), prior quality (pp),
    and per-epoch training rate ``r_b`` (large blueprints learn slower)."""

    name: str
    cost: float
    quality: float
    rate: float


#: Index 0 is NOOP (never germinated); 1..12 are the germinable blueprints.
BLUEPRINTS: Final[tuple[Blueprint, ...]] = (
    Blueprint("noop", 0.0, 0.0, 0.0),
    Blueprint("norm", 0.02, 0.30, 0.40),
    Blueprint("lora", 0.03, 0.45, 0.38),
    Blueprint("squeeze_excite", 0.05, 0.60, 0.36),
    Blueprint("depthwise", 0.06, 0.80, 0.35),
    Blueprint("conv_light", 0.06, 1.10, 0.33),
    Blueprint("attention_light", 0.10, 1.20, 0.30),
    Blueprint("bottleneck", 0.12, 1.30, 0.28),
    Blueprint("mlp", 0.15, 1.35, 0.26),
    Blueprint("gated_mlp", 0.18, 1.50, 0.22),
    Blueprint("conv_heavy", 0.22, 1.70, 0.20),
    Blueprint("attention", 0.25, 1.85, 0.18),
    Blueprint("transformer_block", 0.30, 2.00, 0.15),
)
NUM_BLUEPRINTS: Final[int] = len(BLUEPRINTS)  # 13, NOOP included

#: Head names in sampling order: op first, then slot, then the rest.
HEADS: Final[tuple[str, ...]] = (
    "op",
    "slot",
    "blueprint",
    "style",
    "tempo",
    "alpha_target",
    "alpha_speed",
    "alpha_curve",
)
#: Heads other than op and slot ("the small heads").
SMALL_HEADS: Final[tuple[str, ...]] = HEADS[2:]
#: Sizes of every head but ``slot`` (whose size is the number of slots N).
FIXED_HEAD_SIZES: Final[dict[str, int]] = {
    "op": NUM_OPS,
    "blueprint": NUM_BLUEPRINTS,
    "style": len(Style),
    "tempo": len(TEMPO_EPOCHS),
    "alpha_target": len(ALPHA_TARGETS),
    "alpha_speed": len(ALPHA_SPEED_EPOCHS),
    "alpha_curve": len(Curve),
}

#: Which heads matter for which op (docs/design.md). A head not listed has one legal value, index 0.
HEAD_RELEVANCE: Final[dict[Op, tuple[str, ...]]] = {
    Op.WAIT: (),
    Op.GERMINATE: ("slot", "blueprint", "style", "tempo", "alpha_target"),
    Op.SET_ALPHA_TARGET: ("slot", "style", "alpha_target", "alpha_speed", "alpha_curve"),
    Op.PRUNE: ("slot", "alpha_speed", "alpha_curve"),
    Op.FOSSILIZE: ("slot",),
    Op.ADVANCE: ("slot",),
}


def head_sizes(num_slots: int) -> dict[str, int]:
    """Sizes of all eight heads, in :data:`HEADS` order, for ``num_slots`` slots.

    Examples:
        >>> list(head_sizes(3).values())
        [6, 3, 13, 4, 3, 3, 4, 3]
    """
    if num_slots <= 0:
        raise ValueError(f"num_slots must be positive, got {num_slots}")
    sizes = dict(FIXED_HEAD_SIZES)
    sizes["slot"] = num_slots
    return {h: sizes[h] for h in HEADS}


def relevance_matrix() -> torch.Tensor:
    """Bool ``[NUM_OPS, len(HEADS)]``: entry (o, h) is True when head h matters for op o.

    The ``op`` column is always True (the op itself always matters).

    Examples:
        >>> m = relevance_matrix()
        >>> bool(m[Op.WAIT, HEADS.index("slot")]), bool(m[Op.GERMINATE, HEADS.index("blueprint")])
        (False, True)
    """
    m = torch.zeros(NUM_OPS, len(HEADS), dtype=torch.bool)
    m[:, 0] = True
    for op, heads in HEAD_RELEVANCE.items():
        for h in heads:
            m[op, HEADS.index(h)] = True
    return m


def slot_id(row: int, col: int) -> str:
    """Grid slot id ``"r{row}c{col}"``."""
    return f"r{row}c{col}"


def grid_ids(rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column ids (int64 ``[rows*cols]``) of a grid, slot index ``n = row * cols + col``.

    Examples:
        >>> r, c = grid_ids(2, 3)
        >>> r.tolist(), c.tolist()
        ([0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2])
    """
    if rows <= 0 or cols <= 0:
        raise ValueError(f"rows and cols must be positive, got rows={rows}, cols={cols}")
    idx = torch.arange(rows * cols)
    return idx // cols, idx % cols


def normalized_position(ids: torch.Tensor, extent: int) -> torch.Tensor:
    """Map grid ids to [0, 1]: ``id / (extent - 1)``, or 0.5 when ``extent == 1``.

    Examples:
        >>> normalized_position(torch.tensor([0, 1, 2]), 3).tolist()
        [0.0, 0.5, 1.0]
        >>> normalized_position(torch.tensor([0]), 1).tolist()
        [0.5]
    """
    if extent <= 1:
        return torch.full(ids.shape, 0.5, dtype=torch.float32, device=ids.device)
    return ids.to(torch.float32) / float(extent - 1)
