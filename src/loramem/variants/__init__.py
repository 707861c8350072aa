"""LoRA variants, one file each, registered by name in VARIANTS (`write --variant NAME`).

Every module of this package is imported here so that its registration runs: a new variant is
one new file (and its test against PEFT's implementation of it).
"""

from loramem.registry import discover
from loramem.variants.base import DEFAULT_VARIANT, VARIANTS, LoraVariant

discover(__name__, __path__)

__all__ = ["DEFAULT_VARIANT", "VARIANTS", "LoraVariant"]
