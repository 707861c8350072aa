"""`rslora`: rank-stabilized LoRA, W + (alpha / sqrt(r)) B A (Kalajdzievski, 2023): PEFT's
`use_rslora`. Its adapter is plain LoRA at another scale, which adapter_config.json records."""

from loramem.variants.base import VARIANTS, LoraVariant

VARIANTS.register("rslora")(LoraVariant(summary="rank-stabilized LoRA, scaled alpha / sqrt(r)",
                                        reference="https://arxiv.org/abs/2312.03732",
                                        peft={"use_rslora": True}, rank_scaled=False))
