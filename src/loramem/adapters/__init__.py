"""Adapters: a memory's LoRA files read into tensors, an LRU of them, and hooks that apply them."""

import lazy_loader

# Names load with their module on first use, so importing the package (for a registry's names,
# the command line's light commands) imports no torch.
__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "cache": ["AdapterCache"],
    "files": ["LoraWeights", "UnsupportedAdapter", "check_adapter_files", "load_lora", "plain_lora_problems",
              "read_config", "save_thresholds"],
    "hooks": ["hooked"],
    "thresholds": ["THRESHOLDS_FILE", "TIES_DENSITY"],
})
