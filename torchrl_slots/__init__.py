"""torchrl_slots: TorchRL-native policies over slots (the Slot Transformer) and SeedLifecycleEnv."""

from torchrl_slots.envs import LifecycleConfig, SeedLifecycleEnv
from torchrl_slots.policy import PolicyConfig, SlotPolicy, create_policy, register_policy

__version__ = "0.1.0"
__all__ = ["LifecycleConfig", "PolicyConfig", "SeedLifecycleEnv", "SlotPolicy", "create_policy", "register_policy"]
