"""Adapters: a memory's LoRA files read into tensors, an LRU of them, and hooks that apply them."""

from loramem.adapters.cache import AdapterCache
from loramem.adapters.files import (
    LoraWeights,
    UnsupportedAdapter,
    check_adapter_files,
    load_lora,
    plain_lora_problems,
    read_config,
    save_thresholds,
)
from loramem.adapters.hooks import hooked
from loramem.adapters.thresholds import THRESHOLDS_FILE, TIES_DENSITY

__all__ = ["THRESHOLDS_FILE", "TIES_DENSITY", "AdapterCache", "LoraWeights", "UnsupportedAdapter",
           "check_adapter_files", "hooked", "load_lora", "plain_lora_problems", "read_config",
           "save_thresholds"]
