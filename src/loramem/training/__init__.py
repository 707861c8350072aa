"""Writing knowledge into a LoRA adapter: batching, the fast loss, verified read-back."""

from loramem.training.config import TrainConfig
from loramem.training.trainer import TrainResult, train_memory

__all__ = ["TrainConfig", "TrainResult", "train_memory"]
