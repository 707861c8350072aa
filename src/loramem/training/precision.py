"""Training precision: bf16 matmuls where the hardware has them, fp32 everywhere answers are read.

On CPUs with AVX512-BF16/AMX (and on GPUs) a bf16 matmul runs ~2.5x faster than fp32. Training
runs on a bf16 *copy* of the base model (the caller's model is never cast), with the LoRA
weights and optimizer state kept in fp32; the final read-back runs on the fp32 model that
answers questions, so the recorded recall is what users get.
"""

from __future__ import annotations

import copy

import torch

from loramem.models import BaseModel


def fast_bf16_available(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return _native_cpu_bf16() and _onednn_bf16()
    return False


def _native_cpu_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 dot products in hardware. oneDNN also runs bf16 on plain AVX512
    (and reports it as supported) by converting to fp32, which is ~2x slower than fp32 itself."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def _onednn_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def training_dtype(precision: str, base: BaseModel) -> torch.dtype:
    if precision == "fp32":
        return torch.float32
    if precision == "bf16" or fast_bf16_available(base.device):
        return torch.bfloat16
    return torch.float32


def training_model(base: BaseModel, dtype: torch.dtype) -> torch.nn.Module:
    """The model to train on: the base model itself, or a cached copy in `dtype`."""
    if next(base.model.parameters()).dtype == dtype:
        return base.model
    cache = base.__dict__.setdefault("_training_copies", {})
    if dtype not in cache:
        model = copy.deepcopy(base.model).to(dtype)
        if base.device.type == "cpu":
            # CPU SDPA backward in bf16 is slow for short sequences; eager attention is faster.
            model.set_attn_implementation("eager")
        cache[dtype] = model
    return cache[dtype]
