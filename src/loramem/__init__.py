"""loramem: store knowledge in LoRA adapters, read it back, and measure it like a storage chip."""

from loramem.api import Answer, Memory, WriteResult
from loramem.errors import LoramemError

__all__ = ["Answer", "LoramemError", "Memory", "WriteResult"]
__version__ = "0.1.0"
