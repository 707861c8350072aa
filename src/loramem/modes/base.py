"""The answer-mode interface: given the chosen memories and the question, what goes in context,
which adapters run, and whether the context is read through a compressed KV cache."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from loramem.errors import LoramemError
from loramem.registry import Registry
from loramem.store.records import MemoryRecord

MODES: Registry[type[AnswerMode]] = Registry("answer mode")


@dataclass
class Plan:
    """What the answerer does: `context` before the question, `adapters` active while decoding,
    and `kv` (KVSettings) when the context is prefilled into a compressed cache (the kv mode)."""

    context: str | None
    adapters: list[MemoryRecord]
    kv: object | None = None


class AnswerMode(ABC):
    name: str = ""
    needs_memory: bool = True
    options: tuple[str, ...] = ()  # the settings this mode takes (e.g. rag_top_k, press)

    def __init__(self, **options) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            valid = ", ".join(self.options) or "none"
            raise LoramemError(f"mode {self.name!r} takes no option {', '.join(unknown)} (its options: {valid})")
        self.settings = options

    @abstractmethod
    def plan(self, memories: list[MemoryRecord], question: str) -> Plan:
        """Decide context and adapters for an answer to `question` drawing on `memories`."""
