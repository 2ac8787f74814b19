"""The policy's hyper-parameters, :class:`PolicyConfig`, and its saved layout's version.

Kept apart from :mod:`torchrl_slots.policy` (which re-exports both) so that the config, its
validation and its format versions read on their own."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from torchrl_slots import layout
from torchrl_slots.envs.config import check_int, check_real

#: Version of :meth:`PolicyConfig.to_dict`'s layout (see :class:`PolicyConfig`).
POLICY_CONFIG_VERSION = 4


@dataclass
class PolicyConfig:
    """Hyper-parameters of a :class:`SlotPolicy` (defaults follow the seed plan).

    Args:
        embed_dim: transformer width D (also the flat trunk's per-slot embedding width).
        num_heads: attention heads.
        num_layers: transformer blocks. Default 1 since format 4 (was 2).
        ffn_dim: transformer feed-forward width. Default 128 since format 4 (was 256). One block
            with a 128-wide feed-forward net trains at 1.40-1.43x the flat LSTM's wall time per
            frame on 2x5 (two blocks, 256 wide: 1.86-1.92x; two side-by-side measurements) and
            learned as well on every suite; the runs are in ``benchmarks/README.md`` ("Session 10").
        dropout: transformer dropout.
        feature_dim: width fed to the LSTM (the flat trunk's Linear width).
        lstm_hidden: LSTM hidden size H.
        conditioning: ``"op"`` (op -> slot -> rest) or ``"none"`` (independent heads; needs an env
            with ``invalid_action="wait"``).
        positional: ``"fourier"`` (default: sin/cos features of the normalized grid position, so
            a position means the same on every grid and one policy serves them all),
            ``"learned"`` (row/col tables indexed by integer ids, up to ``max_rows`` x
            ``max_cols``) or ``"none"``. The default was ``"learned"`` before format 3; see
            ``benchmarks/README.md`` for the runs behind the change.
        key_dim: pointer key/query width.
        op_embed_dim: op embedding width (pointer query conditioning).
        max_rows: largest grid rows the learned positional table supports.
        max_cols: largest grid cols the learned positional table supports.
        pack_slots: the encoder runs on the enabled slots only (gathered to the front, token axis
            cut to the most enabled slots in the batch; absent slots' ``slot_repr`` is zero as
            on the plain path). Same values; skipped under ``torch.compile``. Default True.
        chunk_rows: the encoder runs over the flattened batch ``B*T`` in chunks of this many rows
            (same values; on CPU ~30% faster than one chunk: no page faults, see the encoder's
            docstring); ``None`` = all rows at once (try it on GPU). Default 256.
        checkpoint_chunk: rows (of the flattened batch ``B*T``) per activation-checkpointed
            encoder chunk in training with grad enabled (then used instead of ``chunk_rows``);
            ``None`` = off (default). Same values and gradients, less memory, one more encoder
            forward of compute.
        autocast: ``None`` (fp32, default) or ``"bf16"``: the slot encoder runs under
            ``torch.autocast(dtype=torch.bfloat16)`` (its Linear layers in bf16: AMX on recent
            Xeons; on CPU attention stays fp32); its outputs are cast back to fp32 before the
            fusion, LSTM and heads. Values within ~1e-2 of fp32.
        op_from_slots: the op logits also get the op's legal slot logits, pooled by
            ``op_slot_pool`` (see ``FactoredHeads``), so a slot that stands out raises its op's
            probability. Default True; ``False`` reads the op from the core alone. One rule:
            it needs ``conditioning="op"`` (independent heads have no joint), and
            ``conditioning="none"`` with ``op_from_slots=True`` is refused.
        op_slot_pool: ``"mean"`` (default: ``log mean exp``; adds 0 when the slot logits are
            equal, so the initial policy is uniform over the legal ops) or ``"sum"``
            (``logsumexp``: one softmax over the legal (op, slot) pairs; an op with k legal
            slots starts k times likelier, which on 1x3 started GERMINATE at 3/8).

    Saved configs carry ``format_version`` (:data:`POLICY_CONFIG_VERSION`). A config without it
    is version 1, written before ``op_slot_pool`` and ``pointer_init`` existed: it loads with
    ``op_slot_pool="sum"`` and ``pointer_init="hidden"`` (what it was built with) and, if it also
    lacks ``op_from_slots``, with ``op_from_slots=False`` (older still). A version 1 or 2 config
    without ``positional`` loads with ``positional="learned"``, the default of those versions
    (:meth:`to_dict` always writes every field, so only hand-written dicts lack it). A version
    1 to 3 config without ``num_layers`` or ``ffn_dim`` loads with 2 and 256, the sizes of
    those versions.

    Examples:
        >>> cfg = PolicyConfig(num_layers=1)
        >>> PolicyConfig.from_dict(cfg.to_dict()) == cfg
        True
        >>> PolicyConfig.from_dict({"embed_dim": 64}).op_slot_pool  # version 1: the old head
        'sum'
        >>> PolicyConfig.from_dict({"format_version": 2}).positional, PolicyConfig().positional
        ('learned', 'fourier')
        >>> PolicyConfig.from_dict({"format_version": 3}).num_layers, PolicyConfig().num_layers
        (2, 1)
        >>> PolicyConfig(conditioning="none").validate()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: op_from_slots=True needs conditioning='op' (independent heads have no joint ...
    """

    embed_dim: int = 64
    num_heads: int = 4
    num_layers: int = 1
    ffn_dim: int = 128
    dropout: float = 0.0
    feature_dim: int = 128
    lstm_hidden: int = 128
    conditioning: Literal["op", "none"] = "op"
    positional: Literal["learned", "fourier", "none"] = "fourier"
    key_dim: int = 64
    op_embed_dim: int = 32
    max_rows: int = layout.MAX_GRID
    max_cols: int = layout.MAX_GRID
    pack_slots: bool = True
    chunk_rows: int | None = 256
    checkpoint_chunk: int | None = None
    autocast: Literal["bf16"] | None = None
    op_from_slots: bool = True
    op_slot_pool: Literal["mean", "sum"] = "mean"
    pointer_init: Literal["output", "hidden"] = "output"

    def to_dict(self) -> dict:
        """Plain dict with ``format_version`` (what checkpoints store)."""
        return {"format_version": POLICY_CONFIG_VERSION, **asdict(self)}

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field for a value no policy can be built with (sizes
        that are not positive ints, a dropout outside ``[0, 1)``, unknown choices). Runs at
        construction; the encoder checks the combinations (``embed_dim % num_heads``).

        Examples:
            >>> PolicyConfig(num_layers=0)
            Traceback (most recent call last):
            ...
            ValueError: PolicyConfig.num_layers must be >= 1, got 0
        """
        for name in ("embed_dim", "num_heads", "num_layers", "ffn_dim", "feature_dim", "lstm_hidden", "key_dim",
                     "op_embed_dim", "max_rows", "max_cols"):
            check_int(f"PolicyConfig.{name}", getattr(self, name), minimum=1)
        for name in ("chunk_rows", "checkpoint_chunk"):
            if getattr(self, name) is not None:
                check_int(f"PolicyConfig.{name}", getattr(self, name), minimum=1, what="None or an int >= 1")
        check_real("PolicyConfig.dropout", self.dropout, minimum=0.0)
        if self.dropout >= 1.0:
            raise ValueError(f"PolicyConfig.dropout must be in [0, 1), got {self.dropout}")
        choices = {"conditioning": ("op", "none"), "positional": ("learned", "fourier", "none"),
                   "autocast": (None, "bf16"), "pack_slots": (True, False), "op_from_slots": (True, False),
                   "op_slot_pool": ("mean", "sum"), "pointer_init": ("output", "hidden")}
        for name, allowed in choices.items():
            value = getattr(self, name)
            if not any(value is a or (isinstance(a, str) and value == a) for a in allowed):
                raise ValueError(f"PolicyConfig.{name} must be one of {list(allowed)}, got {value!r}")
        if self.op_from_slots and self.conditioning != "op":  # one rule, here and in FactoredHeads
            raise ValueError(
                "op_from_slots=True needs conditioning='op' (independent heads have no joint (op, slot) softmax); "
                "pass op_from_slots=False with conditioning='none'"
            )

    @classmethod
    def from_dict(cls, data: dict) -> "PolicyConfig":
        """Inverse of :meth:`to_dict`. A dict without ``format_version`` is version 1 (see the
        class docstring): the options added or changed since then get the values it was trained with."""
        data = dict(data)
        version = data.pop("format_version", 1)
        if version not in (1, 2, 3, POLICY_CONFIG_VERSION):
            raise ValueError(f"unknown PolicyConfig format_version {version!r} (this library reads 1, 2, 3 and "
                             f"{POLICY_CONFIG_VERSION})")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown PolicyConfig fields {sorted(unknown)}")
        if version == 1:
            data = {"op_from_slots": False, "op_slot_pool": "sum", "pointer_init": "hidden", **data}
        if version in (1, 2):
            data = {"positional": "learned", **data}
        if version in (1, 2, 3):
            data = {"num_layers": 2, "ffn_dim": 256, **data}
        return cls(**data)
