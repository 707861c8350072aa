"""Each memory's optimizer and learning-rate schedule."""

from __future__ import annotations

import math

import torch


def adamw(params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """AdamW as one fused kernel over all LoRA tensors where the device has it (CPU and CUDA do),
    in place of a few ops per tensor; the per-tensor loop elsewhere."""
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warmup, then cosine down to a tenth of the learning rate at the last step."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def schedule(optimizer: torch.optim.Optimizer, total: int, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, warmup))
