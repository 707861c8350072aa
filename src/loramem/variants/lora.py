"""`lora`: plain LoRA, W + (alpha / r) B A (Hu et al., 2021): PEFT's default."""

from loramem.variants.base import VARIANTS, LoraVariant

VARIANTS.register("lora")(LoraVariant(summary="plain LoRA, scaled alpha / r",
                                      reference="https://arxiv.org/abs/2106.09685"))
