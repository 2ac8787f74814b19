"""PPO training on TorchRL parts: :func:`train`, its configs, evaluation and checkpoints."""

from torchrl_slots.training.checkpoint import CheckpointManager, load_policy, load_training_checkpoint
from torchrl_slots.training.config import EnvConfig, PPOConfig
from torchrl_slots.training.evaluation import evaluate_baselines, evaluate_policy, normalized_score
from torchrl_slots.training.trainer import RunOptions, TrainingDivergedError, TrainResult, train

__all__ = [
    "CheckpointManager",
    "EnvConfig",
    "PPOConfig",
    "RunOptions",
    "TrainResult",
    "TrainingDivergedError",
    "evaluate_baselines",
    "evaluate_policy",
    "load_policy",
    "load_training_checkpoint",
    "normalized_score",
    "train",
]
