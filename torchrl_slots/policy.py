"""Spec-driven policy factory: ``create_policy(arch, env, config) -> SlotPolicy``.

A :class:`SlotPolicy` is an actor (the factored action distribution over op -> slot -> rest) and
a critic (a TorchRL ``ValueOperator`` head) that share one trunk + LSTM core:

``observation -> trunk -> LSTMModule -> LayerNorm -> "core" -> heads -> params -> distribution``
and ``"core" -> value head -> "state_value"``.

Two architectures are registered: ``"transformer"`` (Slot Transformer trunk, pointer slot head;
any N) and ``"lstm"`` (the flat-concatenation baseline; one N). ``register_policy`` adds more.

Trunk passes: with ``critic_mode="shared"`` (default) the critic is only the value head and reads
the ``"core"`` that the actor's ``get_dist`` (which ``ClipPPOLoss`` calls) has just written into
the tensordict, so one loss call runs the trunk once; GAE needs the critic on its own and calls
:attr:`SlotPolicy.value_network` (trunk + value head) outside the loss.
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Literal

import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule, TensorDictModuleBase, TensorDictSequential
from torch import nn
from torchrl.envs import EnvBase, InitTracker, Transform
from torchrl.modules import LSTMModule, ValueOperator
from torchrl.modules.tensordict_module.rnn import recurrent_mode

from torchrl_slots import layout
from torchrl_slots._integrity import DamagedFileError, atomic_save, safe_load, verify_checksum, with_checksum
from torchrl_slots.modules._guards import host_checks_possible, under_functorch
from torchrl_slots.modules.actor import make_factored_actor, param_keys
from torchrl_slots.modules.heads import FactoredHeads
from torchrl_slots.modules.init import init_lstm, init_output_layer, init_weights
from torchrl_slots.modules.trunks import FlatTrunk, TransformerTrunk
from torchrl_slots.policy_config import POLICY_CONFIG_VERSION, PolicyConfig  # noqa: F401  (re-exported)

logger = logging.getLogger(__name__)

OBS_KEYS = [("observation", k) for k in ("base", "slots", "slot_mask", "slot_row", "slot_col")]
MASK_KEYS = [("action_mask", h) for h in layout.HEADS]
#: What the heads write: every head's logits and mask, and the small heads' slot terms (the
#: distribution's additive form).
PARAM_KEYS = list(param_keys(additive=True).values())
CHECKPOINT_FORMAT = "torchrl_slots.SlotPolicy/1"

class _TrunkAdapter(nn.Module):
    """Checks the observation at the policy's input, then runs the trunk.

    In eager mode a non-finite value in ``("observation", "base")`` or in an ENABLED slot of
    ``("observation", "slots")`` raises a ``ValueError`` naming the key and the first batch index
    (otherwise sampling fails deep inside torch and the value is NaN); masked slots may hold
    anything. Under ``torch.compile`` and ``torch.vmap`` the check is skipped (it needs a host
    read): non-finite inputs then give NaN logits and values, and sampling raises torch's
    "probability tensor contains inf, nan" error.
    """

    def __init__(self, trunk: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk

    def forward(self, base, slots, slot_mask, slot_row, slot_col):
        _check_observation(base, slots, slot_mask, self.trunk)
        return self.trunk(base, slots, slot_mask, slot_row, slot_col)


def _check_observation(base: torch.Tensor, slots: torch.Tensor, slot_mask: torch.Tensor, trunk: nn.Module) -> None:
    dtype = next(trunk.parameters()).dtype
    for key, value in ((("observation", "base"), base), (("observation", "slots"), slots)):
        if value.dtype != dtype:
            raise ValueError(
                f"{key} must have dtype {dtype} (the policy's parameters), got {value.dtype}; "
                f"cast the observation (e.g. with torchrl's DTypeCastTransform) or the policy"
            )
    if slot_mask.dtype != torch.bool:
        raise ValueError(f"('observation', 'slot_mask') must have dtype torch.bool, got {slot_mask.dtype}")
    if not host_checks_possible(base, slots, slot_mask):
        return
    bad_base = ~torch.isfinite(base).all(-1)  # [*B]
    bad_slots = (~torch.isfinite(slots).all(-1) & slot_mask).any(-1)  # [*B], enabled slots only
    for key, bad in ((("observation", "base"), bad_base), (("observation", "slots"), bad_slots)):
        if bool(bad.any()):
            index = tuple(int(i) for i in bad.nonzero()[0])
            where = "" if key[1] == "base" else " (in an enabled slot)"
            raise ValueError(f"{key} holds NaN or inf{where} at batch index {index}; expected finite values")


#: Keys the trunk writes on its way to the heads; kept out of the collected data.
_TRUNK_INTERMEDIATES = ("trunk_out", "slot_repr", "core_raw", "core")


class _SharedCritic(TensorDictModuleBase):
    """Value head on ``"core"`` when the tensordict has one, else trunk + value head.

    Its ``in_keys`` are the trunk's (``"core"`` is not one): ``GAE`` selects ``in_keys`` from the
    data and its ``("next", ...)`` part, so it always runs the trunk on both; ``ClipPPOLoss``
    passes the whole tensordict, in which ``get_dist`` has just written a fresh ``"core"``.
    """

    def __init__(self, trunk: TensorDictSequential, value_head: TensorDictModuleBase) -> None:
        super().__init__()
        self.trunk, self.value_head = trunk, value_head
        self.in_keys = list(trunk.in_keys)
        self.out_keys = list(value_head.out_keys)

    def forward(self, tensordict):
        if "core" not in tensordict.keys():
            base = tensordict.get(OBS_KEYS[0], None)
            if base is not None and under_functorch(base) and recurrent_mode():
                raise RuntimeError(
                    "policy.critic cannot run the LSTM core in recurrent mode under torch.vmap (TorchRL's "
                    "LSTMModule splits the sequences at resets on the host): pass deactivate_vmap=True to "
                    "GAE (or ClipPPOLoss.make_value_estimator), or use policy.value_network"
                )
            tensordict = self.trunk(tensordict)
        return self.value_head(tensordict)


class _HeadsAdapter(nn.Module):
    """Tensors in, the whole ``"params"`` sub-tensordict out (``PARAM_KEYS`` are its leaves).

    One entry rather than 22 tensors: tensordict 0.14.3's ``TensorDictModule`` passes every
    output through ``TensorDict.from_any``, which for a plain tensor calls
    ``importlib.util.find_spec("pandas")`` (a ``sys.path`` search when pandas is not installed):
    22 of those were ~20 % of a collection step."""

    def __init__(self, heads: FactoredHeads) -> None:
        super().__init__()
        self.heads = heads

    def forward(self, core, slot_repr, *masks):
        params = self.heads(core, slot_repr, dict(zip(layout.HEADS, masks)))
        return TensorDict(params, batch_size=core.shape[:-1], device=core.device)


class SlotPolicy(nn.Module):
    """Actor + critic sharing one trunk and LSTM core. Build with :func:`create_policy`.

    Attributes:
        actor: the probabilistic actor (writes ``("action", h)`` and per-head log-probs).
        critic: the value head for ``ClipPPOLoss`` (reads ``"core"`` from the actor's pass when
            ``critic_mode="shared"``; runs the whole trunk when ``"full"``).
        value_network: trunk + value head, for GAE and evaluation.
        arch, config, num_slots: what it was built with (``num_slots`` matters for ``"lstm"``).
    """

    def __init__(self, arch: str, trunk: nn.Module, heads: FactoredHeads, config: PolicyConfig,
                 num_slots: int, critic_mode: Literal["shared", "full"] = "shared") -> None:
        super().__init__()
        self.arch, self.config, self.num_slots = arch, config, num_slots
        self.trunk_net, self.heads_net = trunk, heads
        lstm = nn.LSTM(trunk.feature_dim, config.lstm_hidden, batch_first=True)
        self.value_net = nn.Linear(config.lstm_hidden, 1)
        self.core_norm = nn.LayerNorm(config.lstm_hidden)
        init_weights(self)
        init_lstm(lstm)
        for layer in heads.output_layers(pointer_query=config.pointer_init == "output"):
            init_output_layer(layer, std=0.01)
        init_output_layer(self.value_net, std=1.0)
        self.lstm = LSTMModule(
            lstm=lstm,
            in_keys=["trunk_out", "recurrent_state_h", "recurrent_state_c"],
            out_keys=["core_raw", ("next", "recurrent_state_h"), ("next", "recurrent_state_c")],
        )
        trunk_seq = TensorDictSequential(
            TensorDictModule(_TrunkAdapter(trunk), in_keys=OBS_KEYS, out_keys=["trunk_out", "slot_repr"]),
            self.lstm,
            TensorDictModule(self.core_norm, in_keys=["core_raw"], out_keys=["core"]),
        )
        params = TensorDictSequential(
            trunk_seq,
            TensorDictModule(_HeadsAdapter(heads), in_keys=["core", "slot_repr", *MASK_KEYS], out_keys=["params"]),
        )
        value_head = ValueOperator(self.value_net, in_keys=["core"])
        actor = make_factored_actor(params, additive=True)
        # Collected data keeps no trunk intermediates: a "core" stored at collection time would be
        # stale after the first update, and GAE stacks td and td["next"], which must have the same
        # keys. get_dist (what ClipPPOLoss calls) still writes them, for the shared critic.
        actor.select_out_keys(*[k for k in actor.out_keys if k not in _TRUNK_INTERMEDIATES])
        # The TensorDict wrappers reuse the modules registered above. They are kept out of
        # ``_modules`` so that ``state_dict`` names every tensor once (``trunk_net.*``, ``heads_net.*``,
        # ``lstm.lstm.*``, ``core_norm.*``, ``value_net.*``); ``.to()`` and friends reach the tensors
        # through those registered modules, and :meth:`train` passes the mode on to the wrappers.
        self._wrappers = {
            "trunk": trunk_seq,
            "actor": actor,
            "value_head": value_head,
            "value_network": TensorDictSequential(trunk_seq, value_head),
            "_shared_critic": _SharedCritic(trunk_seq, value_head),
        }
        self.__dict__.update(self._wrappers)
        self._legacy_keys = self._wrapper_key_aliases()
        self.register_load_state_dict_pre_hook(_map_legacy_keys)
        self.critic_mode = critic_mode

    def _wrapper_key_aliases(self) -> dict[str, str]:
        """``{old key: key}``: where the wrappers' names (the layout of files saved before each tensor
        had one key, e.g. ``actor.module.0.module.0.module.0.module.trunk.encoder.cls_token``) put
        each tensor, and its one key now (``trunk_net.encoder.cls_token``)."""
        canonical = {id(t): k for k, t in self.state_dict(keep_vars=True).items()}
        aliases = {}
        for name, wrapper in self._wrappers.items():
            if name.startswith("_"):  # the shared critic came later: no old file names it
                continue
            for key, tensor in wrapper.state_dict(keep_vars=True).items():
                if id(tensor) not in canonical:  # a tensor outside the registered modules
                    raise RuntimeError(f"SlotPolicy wrapper {name!r} holds an unregistered tensor {key!r}")
                aliases[f"{name}.{key}"] = canonical[id(tensor)]
        return aliases

    def train(self, mode: bool = True) -> "SlotPolicy":
        super().train(mode)
        for wrapper in self._wrappers.values():
            wrapper.train(mode)
        return self

    @property
    def critic_mode(self) -> Literal["shared", "full"]:
        return self._critic_mode

    @critic_mode.setter
    def critic_mode(self, mode: Literal["shared", "full"]) -> None:
        if mode not in ("shared", "full"):
            raise ValueError(f"critic_mode must be 'shared' or 'full', got {mode!r}")
        self._critic_mode = mode

    @property
    def critic(self) -> TensorDictModuleBase:
        """The critic for ``ClipPPOLoss``, derived from :attr:`critic_mode`.

        ``"shared"``: the value head on the ``"core"`` that the actor's ``get_dist`` has just
        written (one trunk pass per loss call); on a tensordict without ``"core"`` (collected
        data, ``GAE(value_network=policy.critic)``, a plain ``policy.critic(td)``) it runs the
        trunk first. ``"full"``: always trunk + value head (:attr:`value_network`).
        """
        return self._shared_critic if self._critic_mode == "shared" else self.value_network

    def transforms(self) -> list[Transform]:
        """What the env needs for this policy: ``InitTracker`` and the LSTM state primer."""
        return [InitTracker(), self.lstm.make_tensordict_primer()]

    def forward(self, tensordict):
        return self.actor(tensordict)

    # ------------------------------------------------------------------ persistence
    def payload(self) -> dict:
        """Config + weights as a plain dict (what :meth:`save` writes; also stored inside training
        checkpoints)."""
        payload = {
            "format": CHECKPOINT_FORMAT,
            "arch": self.arch,
            "config": self.config.to_dict(),
            "num_slots": self.num_slots,
            "state_dict": self.state_dict(),
        }
        grid = getattr(self, "grid", None)
        if grid is not None:  # the grid it was built on (older files have none)
            payload["grid"] = [int(grid[0]), int(grid[1])]
        return with_checksum(payload)

    def save(self, path: str | os.PathLike) -> None:
        """Write config + weights atomically (temp file + rename); readable with
        ``torch.load(weights_only=True)``."""
        atomic_save(self.payload(), path)

    @classmethod
    def load(cls, path: str | os.PathLike, env: EnvBase, *, arch: str | None = None) -> "SlotPolicy":
        """Rebuild a saved policy for ``env`` (a transformer checkpoint fits any grid size).

        Raises ``ValueError`` when the file is not a SlotPolicy checkpoint, or is damaged (its
        sha256 checksum, when it has one, does not match; ``"not a torchrl_slots checkpoint, or
        damaged: FILE (reason)"``), when ``arch`` is given and differs from the saved one, or when
        the saved weights do not fit this env (the flat LSTM on another N, missing or unexpected
        keys); ``FileNotFoundError`` when there is no file.
        """
        payload = safe_load(path)
        return cls.from_payload(payload, env, arch=arch, source=str(path))

    @classmethod
    def from_payload(cls, payload: dict, env: EnvBase, *, arch: str | None = None,
                     source: str = "the payload") -> "SlotPolicy":
        """Rebuild a policy from :meth:`payload`'s dict (same checks as :meth:`load`)."""
        path = source
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a SlotPolicy checkpoint (expected format {CHECKPOINT_FORMAT!r})")
        verify_checksum(payload, path)
        absent = [k for k in ("arch", "config", "num_slots", "state_dict") if k not in payload]
        if absent:
            raise DamagedFileError(path, f"the policy payload lacks the entries {absent}")
        saved_arch = payload["arch"]
        if arch is not None and arch != saved_arch:
            raise ValueError(f"{path} holds a {saved_arch!r} policy, but arch={arch!r} was asked for")
        policy = create_policy(saved_arch, env, PolicyConfig.from_dict(payload["config"]))
        state = dict(payload["state_dict"])
        _map_legacy_keys(policy, state, "")  # a file of the old layout (every tensor under up to four names)
        expected = set(policy.state_dict())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise ValueError(
                f"the {saved_arch!r} checkpoint {path} does not match this policy's parameters: missing keys "
                f"{missing}, unexpected keys {unexpected}"
            )
        try:
            policy.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(
                f"the {saved_arch!r} checkpoint {path} (built for {payload['num_slots']} slots) does not fit "
                f"this env ({policy.num_slots} slots): {err}"
            ) from err
        return policy.to(_env_device(env))

    def compile(self, mode: str | None = None, fullgraph: bool = False) -> Callable:
        """Return a ``torch.compile`` d actor for collection (LSTM included: sets dynamo's
        ``allow_rnn``). The eager modules are unchanged."""
        torch._dynamo.config.allow_rnn = True
        return torch.compile(self.actor, mode=mode, fullgraph=fullgraph)


def _map_legacy_keys(policy: SlotPolicy, state_dict: dict, prefix: str, *args) -> None:
    """``load_state_dict`` pre-hook: rename the old layout's wrapper keys to each tensor's one key.

    A file saved before each tensor had one key holds every tensor under its module's key and again
    under each wrapper that reaches it (the same values: ``torch.save`` kept them one storage);
    the first is kept, the copies are dropped.
    """
    for key in [k for k in state_dict if k.startswith(prefix)]:
        new = policy._legacy_keys.get(key[len(prefix):])
        if new is not None:
            value = state_dict.pop(key)
            state_dict.setdefault(prefix + new, value)


def _env_device(env: EnvBase) -> torch.device:
    return env.device if env.device is not None else torch.device("cpu")


# ---------------------------------------------------------------------- registry
PolicyBuilder = Callable[[EnvBase, PolicyConfig], SlotPolicy]
_REGISTRY: dict[str, PolicyBuilder] = {}


def register_policy(name: str) -> Callable[[PolicyBuilder], PolicyBuilder]:
    """Decorator: register ``builder(env, config) -> SlotPolicy`` under ``name``."""

    def deco(builder: PolicyBuilder) -> PolicyBuilder:
        if name in _REGISTRY:
            raise ValueError(f"a policy named {name!r} is already registered")
        _REGISTRY[name] = builder
        return builder

    return deco


def registered_policies() -> list[str]:
    """Names accepted by :func:`create_policy`."""
    return sorted(_REGISTRY)


def env_num_slots(env: EnvBase) -> int:
    """N from the env's specs, checking the docs/design.md contract on the way."""
    spec = env.observation_spec
    keys = set(spec.keys(True, True))
    missing = [k for k in OBS_KEYS + MASK_KEYS if k not in keys]
    if missing:
        raise ValueError(f"the env's observation spec lacks the slot contract keys {missing}")
    slots = spec["observation", "slots"].shape
    base = spec["observation", "base"].shape
    if slots[-1] != layout.SLOT_FEATURES or base[-1] != layout.BASE_FEATURES:
        raise ValueError(
            f"expected observation base [..., {layout.BASE_FEATURES}] and slots [..., N, {layout.SLOT_FEATURES}], "
            f"got {tuple(base)} and {tuple(slots)}"
        )
    n = slots[-2]
    for h, size in layout.head_sizes(n).items():
        got = spec["action_mask", h].shape[-1]
        if got != size:
            raise ValueError(f"action_mask {h!r} has {got} values, expected {size}")
    return n


def _check_conditioning(env: EnvBase, config: PolicyConfig) -> None:
    env_cfg = getattr(getattr(env, "base_env", env), "config", None)
    if config.conditioning == "none" and getattr(env_cfg, "invalid_action", "wait") == "raise":
        raise ValueError(
            "conditioning='none' samples heads independently and can pick illegal (op, slot) pairs; "
            "the env must run with LifecycleConfig(invalid_action='wait'), got invalid_action='raise'"
        )


def create_policy(arch: str, env: EnvBase, config: PolicyConfig | None = None,
                  *, critic_mode: Literal["shared", "full"] = "shared") -> SlotPolicy:
    """Build a registered policy for ``env``; sizes come from the env's specs.

    Examples:
        >>> from torchrl_slots.envs import SeedLifecycleEnv
        >>> env = SeedLifecycleEnv(2, 1, 3, seed=0)
        >>> policy = create_policy("transformer", env)
        >>> policy.arch, policy.num_slots
        ('transformer', 3)
        >>> create_policy("mlp", env)
        Traceback (most recent call last):
        ...
        ValueError: unknown policy 'mlp'; known: ['lstm', 'transformer']
    """
    if arch not in _REGISTRY:
        raise ValueError(f"unknown policy {arch!r}; known: {registered_policies()}")
    config = PolicyConfig() if config is None else config
    config.validate()
    _check_conditioning(env, config)
    policy = _REGISTRY[arch](env, config)
    policy.critic_mode = critic_mode
    base = getattr(env, "base_env", env)
    rows, cols = getattr(base, "rows", None), getattr(base, "cols", None)
    policy.grid = (rows, cols) if isinstance(rows, int) and isinstance(cols, int) else None
    return policy.to(_env_device(env))


@register_policy("transformer")
def _build_transformer(env: EnvBase, config: PolicyConfig) -> SlotPolicy:
    n = env_num_slots(env)
    trunk = TransformerTrunk(
        embed_dim=config.embed_dim, num_heads=config.num_heads, num_layers=config.num_layers,
        ffn_dim=config.ffn_dim, dropout=config.dropout, max_rows=config.max_rows,
        max_cols=config.max_cols, positional=config.positional, feature_dim=config.feature_dim,
        pack_slots=config.pack_slots, chunk_rows=config.chunk_rows, checkpoint_chunk=config.checkpoint_chunk,
        autocast=config.autocast,
    )
    heads = FactoredHeads(core_dim=config.lstm_hidden, slot_dim=config.embed_dim, slot_head="pointer",
                          key_dim=config.key_dim, op_embed_dim=config.op_embed_dim,
                          conditioning=config.conditioning, op_from_slots=config.op_from_slots,
                          op_slot_pool=config.op_slot_pool)
    return SlotPolicy("transformer", trunk, heads, config, num_slots=n)


@register_policy("lstm")
def _build_lstm(env: EnvBase, config: PolicyConfig) -> SlotPolicy:
    n = env_num_slots(env)
    trunk = FlatTrunk(num_slots=n, feature_dim=config.feature_dim, slot_dim=config.embed_dim)
    heads = FactoredHeads(core_dim=config.lstm_hidden, slot_dim=config.embed_dim, slot_head="linear",
                          num_slots=n, conditioning=config.conditioning, op_from_slots=config.op_from_slots,
                          op_slot_pool=config.op_slot_pool)
    return SlotPolicy("lstm", trunk, heads, config, num_slots=n)
