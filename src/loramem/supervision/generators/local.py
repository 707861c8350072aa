"""Question–answer pairs written by the local base model itself.

Small models write noisy pairs, so the output is parsed leniently, de-duplicated, and a pair is
kept only when most words of its answer occur in the passage. Sentences no kept pair covers get
a cloze example, so every part of the document is supervised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from loramem.supervision.examples import Example
from loramem.supervision.generators.base import GENERATORS, QAGenerator, split_sentences
from loramem.supervision.generators.cloze import ClozeGenerator

PROMPT = (
    "Read the passage and write {n} questions about its facts, each followed by a short answer "
    "copied from the passage.\nUse exactly this format:\nQ: <question>\nA: <answer>\n\n"
    "Passage:\n{passage}"
)
_PAIR = re.compile(r"Q\s*\d*[:.)]\s*(.+?)\s*\n+\s*A\s*\d*[:.)]\s*(.+?)\s*(?=\n\s*Q|\Z)", re.S)
_WORD = re.compile(r"[a-z0-9]+")


def supported(answer: str, passage: str, threshold: float = 0.7) -> bool:
    """True when at least `threshold` of the answer's words occur in the passage."""
    words = _WORD.findall(answer.lower())
    if not words:
        return False
    vocab = set(_WORD.findall(passage.lower()))
    return sum(w in vocab for w in words) / len(words) >= threshold


def parse_pairs(text: str) -> list[tuple[str, str]]:
    return [(q.strip(), a.strip().splitlines()[0].strip()) for q, a in _PAIR.findall(text + "\n")]


def chunk_sentences(sentences: list[str], max_words: int) -> list[list[str]]:
    chunks: list[list[str]] = [[]]
    for s in sentences:
        if chunks[-1] and sum(len(x.split()) for x in chunks[-1]) + len(s.split()) > max_words:
            chunks.append([])
        chunks[-1].append(s)
    return [c for c in chunks if c]


@GENERATORS.register("local")
@dataclass
class LocalModelGenerator(QAGenerator):
    """QA pairs generated greedily by the base model (`loramem.models.BaseModel`)."""

    base: object = None
    pairs_per_chunk: int = 4
    chunk_words: int = 120
    max_new_tokens: int = 256
    name: str = "local"
    fallback: QAGenerator = field(default_factory=ClozeGenerator)

    @torch.no_grad()
    def _complete(self, prompt: str) -> str:
        tok, model = self.base.tokenizer, self.base.model
        from loramem.prompts import PromptFormat

        fmt = PromptFormat(tok)
        ids = torch.tensor([fmt.prompt_ids(prompt)], device=self.base.device)
        out = model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=self.max_new_tokens,
            do_sample=False, eos_token_id=fmt.stop_ids, pad_token_id=fmt.end_id,
        )
        return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)

    def generate(self, text: str, title: str) -> list[Example]:
        examples: list[Example] = []
        seen: set[str] = set()
        for chunk in chunk_sentences(split_sentences(text), self.chunk_words):
            passage = " ".join(chunk)
            kept = []
            for q, a in parse_pairs(self._complete(PROMPT.format(n=self.pairs_per_chunk, passage=passage))):
                key = q.lower()
                if key in seen or not supported(a, passage):
                    continue
                seen.add(key)
                kept.append(Example(prompt=q, target=a, kind="qa"))
            examples.extend(kept)
            covered = " ".join(e.target.lower() for e in kept)
            uncovered = [s for s in chunk if not supported(s, covered, threshold=0.5)]
            examples.extend(self.fallback.generate(" ".join(uncovered), title))
        return examples
