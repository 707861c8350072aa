"""A memory's adapter folder (PEFT's format) read into tensors, for the hook path and the merges.

The hook path and the vLLM export implement plain LoRA only (`scale * B A x` on linear layers),
so both ask `plain_lora_problems` what else an adapter config uses. A file that cannot be read
raises `AdapterFileError` naming the memory, so the CLI prints one line instead of a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load

from loramem.adapters.thresholds import THRESHOLDS_FILE, TIES_DENSITY, load_thresholds, write_thresholds
from loramem.errors import AdapterFileError, UnsupportedAdapter

PREFIX = "base_model.model."
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"


@dataclass
class LoraWeights:
    """One adapter's tensors: for each target module path, (A (r, in), B (out, r)) and the scale.

    `thresholds[m]` holds, for module m, the magnitude at which TIES trimming at TIES_DENSITY
    cuts its A and B factors: computed once when the memory is written, so a merge needs no
    selection over millions of values.
    """

    layers: dict[str, tuple[torch.Tensor, torch.Tensor]]
    scale: float
    thresholds: dict[str, tuple[float, float]] | None = None


def plain_lora_problems(config: dict) -> list[str]:
    """What a PEFT adapter config uses beyond plain LoRA (`scale * B A x`, per-adapter rank); [] if nothing."""
    problems = []
    if config.get("peft_type") != "LORA":
        problems.append(f"peft_type {config.get('peft_type')} (not LORA)")
    if config.get("use_dora"):
        problems.append("DoRA")
    if config.get("modules_to_save"):
        problems.append(f"modules_to_save {config['modules_to_save']}")
    if config.get("bias", "none") != "none":
        problems.append(f"bias {config['bias']!r}")
    if config.get("lora_bias"):
        problems.append("lora_bias")
    if config.get("fan_in_fan_out"):
        problems.append("fan_in_fan_out")
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        problems.append("per-layer ranks (rank_pattern)")
    return problems


@contextmanager
def reading(path: Path, memory: str | None) -> Iterator[None]:
    """Turn a failed read or parse of `path` into an AdapterFileError that says what to do."""
    try:
        yield
    except (OSError, SafetensorError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
        if memory is None:
            raise AdapterFileError(f"adapter file {path} is unreadable ({reason}); write the memory again or remove it") from e
        raise AdapterFileError(f"memory {memory}: its adapter file {path} is unreadable ({reason}); "
                               f"write it again or remove it with `loramem rm {memory}`") from e


def read_config(folder: Path, memory: str | None = None) -> dict:
    """The adapter's `adapter_config.json`, checked to hold a rank and an alpha."""
    path = folder / CONFIG_FILE
    with reading(path, memory):
        config = json.loads(path.read_text())
        int(config["r"]), float(config["lora_alpha"])
    return config


def check_adapter_files(folder: Path, memory: str | None = None) -> None:
    """Raise AdapterFileError unless the config parses and the weights file is whole (header and length).

    Run before PEFT loads the adapter: PEFT injects its layers into the model before it reads
    the file, so a read failing there would leave the caller's model changed.
    """
    read_config(folder, memory)
    path = folder / WEIGHTS_FILE
    with reading(path, memory), safe_open(str(path), "pt"):  # checks that the data covers the header's offsets
        pass


def load_lora(folder: Path, device: torch.device, dtype: torch.dtype, memory: str | None = None) -> LoraWeights:
    """The adapter in `folder` as tensors on `device`; UnsupportedAdapter if it is not plain LoRA.

    `memory` names the memory in the AdapterFileError raised for a missing, truncated or corrupt file.
    """
    config = read_config(folder, memory)
    problems = plain_lora_problems(config)
    if problems:
        raise UnsupportedAdapter(f"{folder}: not a plain LoRA adapter: {'; '.join(problems)}")
    r, alpha = config["r"], config["lora_alpha"]
    scale = alpha / (r**0.5) if config.get("use_rslora") else alpha / r
    path = folder / WEIGHTS_FILE
    with reading(path, memory):
        # One read of the whole file, then views: safetensors' mmap path pays a page fault per page.
        tensors = load(path.read_bytes())
    layers: dict[str, list] = {}
    for key, value in tensors.items():
        if not key.startswith(PREFIX) or not (key.endswith(".lora_A.weight") or key.endswith(".lora_B.weight")):
            raise UnsupportedAdapter(f"{folder}: unexpected tensor {key}")
        module, which = key[len(PREFIX):].rsplit(".lora_", 1)
        slot = 0 if which.startswith("A") else 1
        layers.setdefault(module, [None, None])[slot] = value.to(device=device, dtype=dtype)
    if any(a is None or b is None for a, b in layers.values()):
        raise UnsupportedAdapter(f"{folder}: incomplete A/B pairs")
    thresholds = load_thresholds(folder / THRESHOLDS_FILE, layers)
    return LoraWeights({k: (a, b) for k, (a, b) in layers.items()}, scale, thresholds)


def save_thresholds(folder: Path, density: float = TIES_DENSITY) -> None:
    """Precompute the TIES trimming thresholds of the adapter in `folder` (at write time)."""
    write_thresholds(load_lora(folder, torch.device("cpu"), torch.float32), folder, density)
