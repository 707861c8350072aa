"""`qa`: N question–answer pairs per chunk, written by the generator and checked against the chunk.

Generators (small local ones especially) write noisy pairs, so the output is parsed leniently and
de-duplicated. A pair is kept when most words of its answer occur in the chunk; when they do not
but the pair clearly concerns one sentence of the chunk, that sentence becomes the answer.

The questions are asked at PaperQA's three levels (facts; understanding; the argument and
structure), four facets per level, one prompt per facet, all at once: a dozen short completions
per chunk keep a batching generator's slots full, where three long ones leave most of them idle
at the end. Every prompt opens with the same rules and then the chunk, so a batching generator
reads the rules once per process and the chunk once per round. More rounds are sampled until N
pairs are kept or the rounds are spent. Sentences that no kept answer comes from get a cloze
example, so every part of the chunk is supervised.
"""

from __future__ import annotations

import re

from loramem.supervision.chunking import split_sentences
from loramem.supervision.examples import Example
from loramem.supervision.formats.base import FORMATS, Format, Made, supported
from loramem.supervision.formats.cloze import cloze_examples
from loramem.supervision.templates import load_template

_Q = re.compile(r"^\s*(?:\d+[.)]\s*)?Q(?:uestion)?\s*\d*\s*[:.)]\s*(.+?)\s*$", re.I)
_A = re.compile(r"^\s*(?:\d+[.)]\s*)?A(?:nswer)?\s*\d*\s*[:.)]\s*(.*?)\s*$", re.I)
PAIRS_PER_CALL = 10


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """(question, answer) pairs from `Q: ... / A: ...` lines, numbered or not; junk around is ignored.

    A question is one line ending in "?"; its answer is the next non-empty line, if it is an A: line.
    """
    pairs = []
    question = None
    for line in text.replace("**", "").splitlines():
        if not line.strip():
            continue
        q, a = _Q.match(line), _A.match(line)
        if q:
            question = q.group(1) if q.group(1).endswith("?") else None
        elif a and question and a.group(1):
            pairs.append((question, a.group(1)))
            question = None
        else:
            question = None
    return pairs


_CONTENT = re.compile(r"[a-z0-9][a-z0-9-]{3,}")
_STOP = {"what", "which", "when", "where", "does", "that", "this", "with", "from", "have", "about", "passage",
         "text", "article", "paper", "question", "answer", "their", "there", "these", "they", "were", "into"}


def _content_words(text: str) -> set[str]:
    return set(_CONTENT.findall(text.lower())) - _STOP


_INFORMATIVE = re.compile(r"[A-Za-z]{3,}|\d{2,}")


def grounded_answer(question: str, answer: str, passage: str) -> str | None:
    """The generated answer when the passage supports it; else the passage sentence that shares the
    most content words with the pair (at least 3), so a pair about a real part of the passage is kept
    with a true answer; else None."""
    if supported(answer, passage) and _INFORMATIVE.search(answer):  # "2" or "A" is not an answer
        return answer
    asked = _content_words(question) | _content_words(answer)
    best, overlap = None, 2
    for sentence in split_sentences(passage):
        shared = len(asked & _content_words(sentence))
        if shared > overlap:
            best, overlap = sentence, shared
    return best


def _parts() -> list[str]:
    """The template's sections: the rules, the passage, then the facet requests in level order (four per level)."""
    return load_template("qa").text.split("\n---\n")


def facets() -> list[str]:
    return _parts()[2:]


def facet_prompts(title: str, passage: str, counts: list[int]) -> list[str]:
    """One prompt per facet asking for its count of pairs: the rules, the passage, the request."""
    rules, head, *requests = _parts()
    start = f"{rules}\n\n{head.format(title=title, passage=passage)}"
    return [f"{start}\n\n{request.format(questions=_questions(n))}"
            for request, n in zip(requests, counts) if n > 0]


def _questions(n: int) -> str:
    return "1 question with its answer" if n == 1 else f"{n} questions, each with its answer,"


def split_count(n: int, parts: int) -> list[int]:
    """n questions over `parts` facets, the first taking the remainder: 16 over 12 -> [2, 2, 2, 2, 1, ...]."""
    return [n // parts + (i < n % parts) for i in range(parts)]


def round_prompts(title: str, passage: str, missing: int) -> list[str]:
    """The facet prompts of one round that asks for `missing` more pairs.

    A round asks for a sixth more than it needs: some pairs fail the support check or repeat.
    """
    n = len(facets())
    asked = min(n * PAIRS_PER_CALL, missing + -(-missing // 6))
    return facet_prompts(title, passage, split_count(asked, n))


@FORMATS.register("qa")
class QAFormat(Format):
    name = "qa"
    default_count = 12
    template = "qa"
    version = 4
    rounds = 3  # a round asks every facet at once; later rounds sample, for pairs the first did not give

    def make(self, part, n, generator, seed):
        passage = part.chunk.text
        kept: list[Example] = []
        seen: set[str] = set()
        for round in range(self.rounds):
            missing = n - len(kept)
            if missing <= 0:
                break
            prompts = round_prompts(part.title, passage, missing)
            for text in generator.complete_many(prompts, seed=seed + round, sample=round > 0):
                for q, a in parse_pairs(text):
                    answer = grounded_answer(q, a, passage)
                    if answer is None or len(kept) >= n:
                        continue
                    keys = {" ".join(q.lower().split()), " ".join(answer.lower().split())}
                    if keys & seen:  # the same question, or one more question to the same answer
                        continue
                    seen |= keys
                    kept.append(Example(prompt=q, target=answer, kind="qa", chunk=passage))
        # A sentence is covered when some kept answer is drawn from it.
        uncovered = [s for s in split_sentences(passage) if not any(supported(e.target, s) for e in kept)]
        fallback = cloze_examples(uncovered, part, passage)
        note = ""
        if len(kept) < n:
            note = f"{part.label()}: made {len(kept)} of {n} QA pairs"
            if fallback:
                note += f", plus {len(fallback)} cloze examples for sentences no pair covers"
        return Made(kept + fallback, note)
