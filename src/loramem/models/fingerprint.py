"""A fingerprint of a base model's weights, recorded with every memory written on it."""

from __future__ import annotations

import hashlib

import torch


def model_fingerprint(model: torch.nn.Module, samples: int = 256) -> str:
    """Hash of every parameter's name, shape and a strided sample of its values.

    Sampling keeps this fast (milliseconds on a 135M model) while any change of architecture,
    checkpoint or quantization shows up. LoRA parameters are skipped, so a model wearing an
    adapter has the same fingerprint as its base.
    """
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        if "lora_" in name:
            continue
        name = name.replace("base_model.model.", "").replace(".base_layer", "")
        flat = p.detach().reshape(-1)
        step = max(1, flat.numel() // samples)
        sample = flat[::step][:samples].to(torch.float32).cpu().contiguous()
        h.update(name.encode())
        h.update(str(tuple(p.shape)).encode())
        h.update(sample.numpy().tobytes())
    return h.hexdigest()[:16]
