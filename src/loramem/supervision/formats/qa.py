"""`qa`: N question–answer pairs per chunk, written by the generator and checked against the chunk.

Generators (small local ones especially) write noisy pairs, so the output is parsed leniently,
de-duplicated, and a pair is kept only when most words of its answer occur in the chunk. More
completions are sampled until N pairs are kept or a bounded number of calls is spent. Sentences
that no kept answer comes from get a cloze example, so every part of the chunk is supervised.
"""

from __future__ import annotations

import math
import re

from loramem.supervision.examples import Example
from loramem.supervision.formats.base import FORMATS, Format, Made, Part, supported
from loramem.supervision.formats.cloze import cloze_examples
from loramem.supervision.chunking import split_sentences
from loramem.supervision.templates import load_template

_PAIR = re.compile(r"Q\s*\d*\s*[:.)]\s*(.+?)\s*\n+\s*A\s*\d*\s*[:.)]\s*(.+?)\s*(?=\n\s*Q\s*\d*\s*[:.)]|\Z)", re.S)
PAIRS_PER_CALL = 10


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """(question, answer) pairs from `Q: ... / A: ...` text, numbered or not; junk around is ignored."""
    text = text.replace("**", "") + "\n"
    pairs = ((q.strip(), a.strip().splitlines()[0].strip() if a.strip() else "") for q, a in _PAIR.findall(text))
    return [(q, a) for q, a in pairs if q and a]


@FORMATS.register("qa")
class QAFormat(Format):
    name = "qa"
    default_count = 8
    template = "qa"

    def make(self, part, n, generator, seed):
        passage = part.chunk.text
        per_call = min(n, PAIRS_PER_CALL)
        prompt = load_template("qa").render(title=part.title, n=per_call, passage=passage)
        kept: list[Example] = []
        seen: set[str] = set()
        budget = 1 + 2 * math.ceil(n / per_call)  # completions; bounded whatever the generator writes
        calls = 0
        while len(kept) < n and calls < budget:
            batch = 1 if calls == 0 else 2
            for text in generator.complete(prompt, n=batch, seed=seed + calls)[-batch:]:
                for q, a in parse_pairs(text):
                    key = " ".join(q.lower().split())
                    if key in seen or not supported(a, passage) or len(kept) >= n:
                        continue
                    seen.add(key)
                    kept.append(Example(prompt=q, target=a, kind="qa", chunk=passage))
            calls += batch
        # A sentence is covered when some kept answer is drawn from it.
        uncovered = [s for s in split_sentences(passage) if not any(supported(e.target, s) for e in kept)]
        fallback = cloze_examples(uncovered, part, passage)
        note = ""
        if len(kept) < n:
            note = f"{part.label()}: made {len(kept)} of {n} QA pairs"
            if fallback:
                note += f", plus {len(fallback)} cloze examples for sentences no pair covers"
        return Made(kept + fallback, note)
