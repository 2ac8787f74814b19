"""Save and load an entity actor and critic (:func:`~torchrl_slots.modules.entity.make_entity_actor`).

One file, written atomically (temp file in the same folder + ``os.replace``) by ``torch.save`` and
read back by ``torch.load(weights_only=True)``: plain dicts, lists, tuples, strings, numbers and
tensors only, no pickled classes. It holds::

    {"format": "torchrl_slots.entity_policy/1",
     "actor": {"encoder": {...}, "module": {...}, "kwargs": {...}},   # how to rebuild the actor
     "critic": {...} | None,                                          # the same for the critic
     "sharing": "none" | "transformer" | "module",                    # what the critic shares
     "state_dict": {"actor": {...}, "critic": {...}},
     "sha256": "..."}                                                 # over config and state

``sharing`` says whether the critic had its own encoder, the actor's transformer (its own
context fusion) or the actor's whole encoder module; the loaded pair shares the same parts. The
checksum covers every config value and every tensor's name, dtype, shape and bytes; a file whose
checksum does not match is refused. ``spec`` (a ``TensorSpec``) is not stored: pass it again to
:func:`load_entity_policy`.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any, NamedTuple

import torch
from tensordict.nn import InteractionType
from torchrl.data import TensorSpec
from torchrl.modules import ProbabilisticActor, ValueOperator

from torchrl_slots import layout
from torchrl_slots._integrity import atomic_save
from torchrl_slots.modules.encoder import SlotTransformerEncoder
from torchrl_slots.modules.entity import make_entity_actor, make_entity_critic
from torchrl_slots.modules.entity_encoder import EntityEncoder, EntityEncoderModule

__all__ = ["ENTITY_POLICY_FORMAT", "EntityPolicy", "load_entity_policy", "save_entity_policy"]

ENTITY_POLICY_FORMAT = "torchrl_slots.entity_policy/1"


class EntityPolicy(NamedTuple):
    """What :func:`load_entity_policy` returns."""

    actor: ProbabilisticActor
    critic: ValueOperator | None


def _encoder_config(enc: SlotTransformerEncoder) -> dict[str, Any]:
    """The constructor arguments of ``enc``, read back from its modules."""
    block = enc.blocks[0] if len(enc.blocks) else None
    positional = enc.positional
    return {
        "slot_dim": enc.slot_dim, "embed_dim": enc.embed_dim, "num_heads": enc.num_heads,
        "num_layers": enc.num_layers,
        "ffn_dim": block.ffn[0].out_features if block is not None else 256,
        "dropout": float(block.dropout) if block is not None else 0.0,
        "max_rows": getattr(positional, "max_rows", layout.MAX_GRID),
        "max_cols": getattr(positional, "max_cols", layout.MAX_GRID),
        "positional": enc.positional_kind, "pack_slots": enc.pack_slots, "chunk_rows": enc.chunk_rows,
        "checkpoint_chunk": enc.checkpoint_chunk, "autocast": enc.autocast,
    }


def _encoder_module(network: ProbabilisticActor) -> Any:
    """The actor's first module: its encoder (an ``EntityEncoderModule`` or ``SlotEncoderModule``)."""
    return network.module[0][0]


def _trunk(critic: ValueOperator) -> EntityEncoder:
    return critic.module.encoder


def _module_config(in_keys: list, out_keys: list, net: EntityEncoder | None, has_positions: bool) -> dict[str, Any]:
    context = net is not None and net.context is not None
    return {
        "entity_key": in_keys[0], "mask_key": in_keys[1],
        "position_keys": tuple(in_keys[2:4]) if has_positions else None,
        "context_key": in_keys[-1] if context else None, "context_dim": net.context_dim if context else None,
        "out_keys": tuple(out_keys[:2]),
    }


def _checked_kwargs(network: Any, what: str) -> dict[str, Any]:
    kwargs = getattr(network, "entity_kwargs", None)
    if not isinstance(kwargs, dict):
        raise TypeError(f"the {what} was not built by make_entity_{what} (it has no entity_kwargs to save)")
    return dict(kwargs)


def _digest(config: dict[str, Any], state: dict[str, dict[str, torch.Tensor]]) -> str:
    """sha256 over ``repr(config)`` and every tensor's name, dtype, shape and bytes (sorted by name)."""
    h = hashlib.sha256(repr(config).encode())
    for part in sorted(state):
        for name in sorted(state[part]):
            t = state[part][name].detach().cpu().contiguous()
            h.update(f"{part}/{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_entity_policy(path: str | os.PathLike, actor: ProbabilisticActor, critic: ValueOperator | None = None) -> Path:
    """Write an entity actor (and critic) with their config to ``path``, atomically.

    Args:
        path: the file to write (its folder is created).
        actor: from :func:`~torchrl_slots.modules.entity.make_entity_actor`.
        critic: optional, from :func:`~torchrl_slots.modules.entity.make_entity_critic`.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        TypeError: for an actor or critic not built by those factories.

    Examples:
        >>> import tempfile
        >>> from tensordict import TensorDict
        >>> enc = SlotTransformerEncoder.for_entities(5, embed_dim=8, num_heads=2, num_layers=1)
        >>> keys = {"entity_key": "units", "mask_key": "alive", "context_key": "me", "context_dim": 3}
        >>> actor, critic = make_entity_actor(enc, **keys), make_entity_critic(enc, **keys)
        >>> path = save_entity_policy(Path(tempfile.mkdtemp()) / "policy.pt", actor, critic)
        >>> loaded = load_entity_policy(path)
        >>> td = TensorDict({"units": torch.randn(4, 6, 5), "alive": torch.ones(4, 6, dtype=torch.bool),
        ...                  "me": torch.randn(4, 3)}, batch_size=[4])
        >>> key = ("params", "entity", "logits")
        >>> bool((loaded.actor(td.clone())[key] == actor(td.clone())[key]).all())
        True
        >>> _encoder_module(loaded.actor).encoder is _trunk(loaded.critic).encoder  # still shared
        True
    """
    actor_kwargs = _checked_kwargs(actor, "actor")
    enc_module = _encoder_module(actor)
    actor_net = enc_module.net if isinstance(enc_module, EntityEncoderModule) else None
    transformer = enc_module.encoder
    has_positions = transformer.positional is not None
    config: dict[str, Any] = {
        "actor": {
            "encoder": _encoder_config(transformer),
            "module": _module_config(list(enc_module.in_keys), list(enc_module.out_keys), actor_net, has_positions),
            "kwargs": actor_kwargs,
        },
        "critic": None,
        "sharing": "none",
    }
    state = {"actor": actor.state_dict()}
    if critic is not None:
        critic_kwargs = _checked_kwargs(critic, "critic")
        trunk = _trunk(critic)
        shared = "transformer" if trunk.encoder is transformer else "none"
        config["sharing"] = "module" if trunk is actor_net else shared
        config["critic"] = {
            "encoder": _encoder_config(trunk.encoder),
            "module": _module_config(list(critic.in_keys), ["cls", "entity_repr"], trunk,
                                     trunk.encoder.positional is not None),
            "kwargs": critic_kwargs,
        }
        state["critic"] = critic.state_dict()
    payload = {"format": ENTITY_POLICY_FORMAT, **config, "state_dict": state, "sha256": _digest(config, state)}
    path = Path(path)
    atomic_save(payload, path)
    return path


def _read(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as err:
        # torch's own message for this case points at an unsafe way out; say what it means here instead
        raise ValueError(
            f"{path} is not a readable entity policy file: it holds objects other than plain dicts, lists, "
            f"numbers, strings and tensors, or it is damaged ({type(err).__name__})"
        ) from None
    except Exception as err:  # zip/pickle damage surfaces as RuntimeError, EOFError, KeyError, ...
        first = str(err).splitlines()[0] if str(err) else ""
        raise ValueError(f"{path} is damaged or not a torch file ({type(err).__name__}: {first[:200]})") from None
    if not isinstance(payload, dict) or payload.get("format") != ENTITY_POLICY_FORMAT:
        got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path} is not an entity policy file (expected format {ENTITY_POLICY_FORMAT!r}, got {got!r})")
    missing = {"actor", "critic", "sharing", "state_dict", "sha256"} - set(payload)
    if missing:
        raise ValueError(f"{path} is an incomplete entity policy file: missing {sorted(missing)}")
    return payload


def _build_module(part: dict[str, Any], encoder: SlotTransformerEncoder | None = None) -> EntityEncoderModule:
    module = part["module"]
    return EntityEncoderModule(
        encoder if encoder is not None else SlotTransformerEncoder(**part["encoder"]),
        entity_key=module["entity_key"], mask_key=module["mask_key"], position_keys=module["position_keys"],
        context_key=module["context_key"], context_dim=module["context_dim"], out_keys=module["out_keys"],
    )


def load_entity_policy(path: str | os.PathLike, *, spec: TensorSpec | None = None) -> EntityPolicy:
    """Rebuild the actor (and critic) that :func:`save_entity_policy` wrote, weights and sharing included.

    Args:
        path: the file.
        spec: optional action spec for the actor (not stored in the file).

    Returns:
        ``EntityPolicy(actor, critic)``; ``critic`` is ``None`` when none was saved.

    Raises:
        ValueError: naming the file, for a damaged file or one of another kind, a checksum that
            does not match its contents, or weights that do not fit the stored config.
        FileNotFoundError: for a missing file.
    """
    path = Path(path)
    payload = _read(path)
    config = {k: payload[k] for k in ("actor", "critic", "sharing")}
    state = payload["state_dict"]
    try:
        digest = _digest(config, state)
    except Exception as err:
        raise ValueError(f"{path} holds a malformed state ({type(err).__name__}: {err})") from None
    if digest != payload["sha256"]:
        raise ValueError(
            f"{path} failed its checksum (sha256 of config and weights {digest[:12]}..., stored "
            f"{str(payload['sha256'])[:12]}...): the file is damaged or was changed after saving; refusing to load it"
        )
    try:
        actor_part = config["actor"]
        actor_module = _build_module(actor_part)
        kwargs = dict(actor_part["kwargs"])
        kwargs["default_interaction_type"] = InteractionType[kwargs["default_interaction_type"]]
        actor = make_entity_actor(actor_module, spec=spec, **kwargs)
        actor.load_state_dict(state["actor"])
        critic = None
        if config["critic"] is not None:
            part, sharing = config["critic"], config["sharing"]
            if sharing == "module":
                critic_encoder = actor_module
            else:
                critic_encoder = _build_module(part, actor_module.encoder if sharing == "transformer" else None)
            critic = make_entity_critic(critic_encoder, **part["kwargs"])
            critic.load_state_dict(state["critic"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path} does not rebuild into an entity actor/critic ({type(err).__name__}: {err})") from err
    return EntityPolicy(actor, critic)
