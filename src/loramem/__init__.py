"""loramem: store knowledge in LoRA adapters, read it back, and measure it like a storage chip.

`Memory`, `Answer` and `WriteResult` load on first use (PEP 562), so the command line's light
commands (`--help`, `ls`, `show`, `log`) never import torch.
"""

from loramem.errors import LoramemError

__all__ = ["Answer", "LoramemError", "Memory", "WriteResult"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in ("Answer", "Memory", "WriteResult"):
        from loramem import api

        return getattr(api, name)
    raise AttributeError(f"module 'loramem' has no attribute {name!r}")
