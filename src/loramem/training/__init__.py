"""Writing knowledge into LoRA adapters: batching, the fast loss, one trainer for 1 to N memories,
verified read-back."""

import lazy_loader

# Names load with their module on first use, so importing the package (for a registry's names,
# the command line's light commands) imports no torch.
__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "config": ["TrainConfig"],
    "run": ["MemoryJob", "TrainResult"],
    "trainer": ["train_memories", "train_memory"],
})
