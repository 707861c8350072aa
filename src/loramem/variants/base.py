"""What a LoRA variant changes: the LoraConfig options PEFT trains and saves it with, and the scale
its product B A is applied at. A variant whose adapter is plain LoRA once saved (`scale * B A x`,
which every loramem path applies: answering, merging, batched serving, export) needs nothing more.

Variants whose saved adapter is not plain LoRA (DoRA's magnitude vector) need the execution layer
to apply them and are not registered yet: `write --variant` offers what is registered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loramem.registry import Registry

DEFAULT_VARIANT = "lora"


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


VARIANTS: Registry[LoraVariant] = Registry("LoRA variant")
