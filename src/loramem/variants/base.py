"""What a LoRA variant changes: the LoraConfig options PEFT trains and saves it with, the scale its
product B A is applied at, the factors a write starts from, which of them train, and the settings
its adapter is saved under. A variant whose saved adapter is plain LoRA (`scale * B A x`, which
every loramem path applies: answering, merging, batched serving, export) needs nothing more.

Variants whose saved adapter is not plain LoRA (DoRA's magnitude vector) need the execution layer
to apply them and are not registered yet: `write --variant` offers what is registered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loramem.registry import Registry

if TYPE_CHECKING:
    import torch

    from loramem.training.config import TrainConfig

DEFAULT_VARIANT = "lora"
Layers = dict  # {module path: (A, B)}, as loramem.training.lora_state holds them


@dataclass(frozen=True)
class LoraVariant:
    """One variant: `peft` are the LoraConfig keywords that make PEFT train it (and write them into
    adapter_config.json); `rank_scaled` applies alpha / r, else alpha / sqrt(r) (rsLoRA)."""

    summary: str
    reference: str
    peft: dict = field(default_factory=dict)
    rank_scaled: bool = True

    def scale(self, alpha: float, rank: int) -> float:
        """The factor on B A (PEFT's `scaling`)."""
        return alpha / rank if self.rank_scaled else alpha / rank**0.5

    def initial(self, model: torch.nn.Module, config: TrainConfig, peft_init: Layers) -> Layers:
        """The factors a write starts from, given PEFT's own initial LoRA for `config`."""
        return peft_init

    def trained_rank(self, config: TrainConfig) -> int | None:
        """How many leading rows of A (columns of B) train; None: all of them."""
        return None

    def saved(self, config: TrainConfig) -> TrainConfig:
        """The settings its PEFT folder is written with (adapter_config.json)."""
        return config


VARIANTS: Registry[LoraVariant] = Registry("LoRA variant")
