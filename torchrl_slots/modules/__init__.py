"""Modules: plain ``nn.Module`` cores (tensors in, tensors out) and thin TensorDict wrappers."""

from torchrl_slots.modules.actor import make_factored_actor, make_factored_sampler
from torchrl_slots.modules.distribution import FactoredActionDistribution, independent_params
from torchrl_slots.modules.entity import EntityPointer, check_entity_mask, make_entity_actor, make_entity_critic
from torchrl_slots.modules.entity_encoder import EntityEncoder, EntityEncoderModule
from torchrl_slots.modules.entity_io import EntityPolicy, load_entity_policy, save_entity_policy
from torchrl_slots.modules.encoder import GlobalEncoder, SlotEncoderModule, SlotTransformerEncoder, TransformerBlock
from torchrl_slots.modules.heads import FactoredHeads, union_masks
from torchrl_slots.modules.init import init_lstm, init_output_layer, init_weights
from torchrl_slots.modules.pointer import PointerHead, PointerModule
from torchrl_slots.modules.positional import FourierPositionalEncoding, SlotPositionalEncoding, make_positional
from torchrl_slots.modules.trunks import FlatTrunk, TransformerTrunk

__all__ = [
    "EntityEncoder",
    "EntityEncoderModule",
    "EntityPointer",
    "EntityPolicy",
    "FactoredActionDistribution",
    "FactoredHeads",
    "FlatTrunk",
    "FourierPositionalEncoding",
    "GlobalEncoder",
    "PointerHead",
    "PointerModule",
    "SlotEncoderModule",
    "SlotPositionalEncoding",
    "SlotTransformerEncoder",
    "TransformerBlock",
    "TransformerTrunk",
    "check_entity_mask",
    "independent_params",
    "init_lstm",
    "init_output_layer",
    "init_weights",
    "load_entity_policy",
    "make_entity_actor",
    "make_entity_critic",
    "make_factored_actor",
    "make_factored_sampler",
    "make_positional",
    "save_entity_policy",
    "union_masks",
]
