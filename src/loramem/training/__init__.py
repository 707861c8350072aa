"""Writing knowledge into LoRA adapters: batching, the fast loss, one trainer for 1 to N memories,
verified read-back."""

from loramem.training.config import TrainConfig
from loramem.training.run import MemoryJob, TrainResult
from loramem.training.trainer import train_memories, train_memory

__all__ = ["MemoryJob", "TrainConfig", "TrainResult", "train_memories", "train_memory"]
