"""`cloze`: deterministic supervision without a generator; each sentence is asked back from its start.

The answer is the whole sentence, not just its end, so a memory trained on it answers in full
sentences drawn from the document (a fragment answer reads badly and scores badly).

Used by tests, offline, and by `qa` for sentences its generated pairs leave uncovered.
"""

from __future__ import annotations

from loramem.supervision.chunking import split_sentences
from loramem.supervision.examples import Example
from loramem.supervision.formats.base import FORMATS, Format, Made, Part

MIN_WORDS = 4


def cloze_examples(sentences: list[str], part: Part, passage: str) -> list[Example]:
    """For each sentence: 'In TITLE, what does the sentence starting "<first words>" say?' → the sentence."""
    out = []
    for sentence in sentences:
        words = sentence.split()
        if len(words) < MIN_WORDS:
            continue
        cut = max(2, len(words) // 3)
        prompt = f'In "{part.title}", what does the sentence starting "{" ".join(words[:cut])}" say?'
        out.append(Example(prompt=prompt, target=sentence, kind="cloze", chunk=passage))
    return out


@FORMATS.register("cloze")
class ClozeFormat(Format):
    name = "cloze"
    takes_count = False
    uses_generator = False

    def make(self, part, n, generator, seed):
        return Made(cloze_examples(split_sentences(part.chunk.text), part, part.chunk.text))
