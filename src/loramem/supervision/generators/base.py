"""The generator interface and its registry."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod

from loramem.registry import Registry
from loramem.supervision.examples import Example

GENERATORS: Registry[type["QAGenerator"]] = Registry("generator")

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def split_sentences(text: str) -> list[str]:
    """Sentences of a document, headings and list items kept as their own lines."""
    out = []
    for block in re.split(r"\n\s*\n|\n(?=\s*[-*#])", text):
        block = " ".join(block.split()).lstrip("#-* ").strip()
        out.extend(s.strip() for s in _SENTENCE_END.split(block) if s.strip())
    return out


class QAGenerator(ABC):
    """Turns one document into training examples."""

    name: str = ""

    @abstractmethod
    def generate(self, text: str, title: str) -> list[Example]:
        """Examples (prompt, target) drawn from `text`; `title` names the document in prompts."""
