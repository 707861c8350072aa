"""The answer-mode interface: given the chosen memories, what goes in context, which adapters run."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from loramem.registry import Registry
from loramem.store.records import MemoryRecord

MODES: Registry[type["AnswerMode"]] = Registry("answer mode")


@dataclass
class Plan:
    """What the answerer does: `context` before the question, `adapters` active while decoding."""

    context: str | None
    adapters: list[MemoryRecord]


class AnswerMode(ABC):
    name: str = ""
    needs_memory: bool = True

    @abstractmethod
    def plan(self, memories: list[MemoryRecord]) -> Plan:
        """Decide context and adapters for an answer drawing on `memories`."""
