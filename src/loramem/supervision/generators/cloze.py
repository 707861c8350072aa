"""Deterministic supervision without an LLM: each sentence becomes a continuation question.

Used by tests, and as the fallback when the local model produces no usable pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

from loramem.supervision.examples import Example
from loramem.supervision.generators.base import GENERATORS, QAGenerator, split_sentences


@GENERATORS.register("cloze")
@dataclass
class ClozeGenerator(QAGenerator):
    """For each sentence: "In TITLE, how does '<first words>' continue?" → the rest of it."""

    min_words: int = 4
    name: str = "cloze"

    def generate(self, text: str, title: str) -> list[Example]:
        examples = []
        for sentence in split_sentences(text):
            words = sentence.split()
            if len(words) < self.min_words:
                continue
            cut = max(2, len(words) // 3)
            head, tail = " ".join(words[:cut]), " ".join(words[cut:])
            prompt = f'In "{title}", how does the sentence starting "{head}" continue?'
            examples.append(Example(prompt=prompt, target=tail, kind="cloze"))
        return examples
