"""An LRU of loaded adapters, so repeated answers from the same memories skip the disk."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import torch

from loramem.adapters.files import LoraWeights, load_lora


class AdapterCache:
    """LRU of loaded adapters, keyed by folder, device and dtype (a replaced memory gets a new folder)."""

    def __init__(self, capacity: int = 16) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, LoraWeights] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, folder: Path, device: torch.device, dtype: torch.dtype, memory: str | None = None) -> LoraWeights:
        """The adapter in `folder`, loaded on a miss; `memory` names it in an AdapterFileError."""
        key = f"{folder.resolve()}|{device}|{dtype}"
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        weights = load_lora(folder, device, dtype, memory)
        with self._lock:
            self._items[key] = weights
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return weights
