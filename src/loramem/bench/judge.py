"""A rubric LLM judge, as the seed paper scores PaperQA answers: the embedded generator, or any URL.

With no URL the judge runs offline on the embedded generator (Qwen2.5-Coder-1.5B by llama.cpp);
with one, on any OpenAI-compatible endpoint.

The judge model grades factual alignment, completeness and relevance from 0 to 10 against the
reference answer (prompt: `supervision/templates/judge.txt`); `overall` is their mean. Replies
are parsed leniently (a JSON object, or `name: score` lines); an unusable reply is asked again,
sampled, a bounded number of times before a clear error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from loramem.errors import LoramemError
from loramem.supervision.generators import Generator, HTTPGenerator, make_generator
from loramem.supervision.templates import load_template

CRITERIA = ("factual_alignment", "completeness", "relevance")


class JudgeError(LoramemError):
    """The judge's replies could not be read as scores."""


def parse_scores(text: str) -> dict[str, float] | None:
    found: dict[str, float] = {}
    match = re.search(r"\{.*?\}", text, re.S)
    if match:
        try:
            found = {k: float(v) for k, v in json.loads(match.group()).items() if k in CRITERIA}
        except (ValueError, TypeError, AttributeError):
            found = {}
    for name in CRITERIA:
        if name not in found:
            m = re.search(rf"{name.replace('_', '[ _]')}\W*(\d+(?:\.\d+)?)", text, re.I)
            if m:
                found[name] = float(m.group(1))
    if set(found) != set(CRITERIA) or not all(0 <= v <= 10 for v in found.values()):
        return None
    return {**found, "overall": sum(found.values()) / len(CRITERIA)}


@dataclass
class Judge:
    url: str | None = None  # None: the embedded generator, offline
    model: str | None = None
    api_key: str | None = None
    attempts: int = 3
    client: Generator | None = None  # any generator; default from `url`
    _client: Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.client is not None:
            self._client = self.client
        elif self.url:
            self._client = HTTPGenerator(self.url, model=self.model, api_key=self.api_key, max_tokens=128)
        else:
            self._client = make_generator("embedded", lambda: None, {"max_new_tokens": 64})

    @property
    def name(self) -> str:
        return self.url or self._client.label

    def score(self, question: str, prediction: str, reference: str) -> dict[str, float]:
        """Scores 0-10 per criterion and `overall`."""
        return self.score_many([(question, prediction, reference)])[0]

    def score_many(self, items: list[tuple[str, str, str]]) -> list[dict[str, float]]:
        """Scores for (question, prediction, reference) items; a batching generator grades them together."""
        prompts = [load_template("judge").render(question=q, prediction=p or "(no answer)", reference=r)
                   for q, p, r in items]
        scores: list[dict[str, float] | None] = [None] * len(items)
        first_reply = ""
        for attempt in range(self.attempts):
            todo = [i for i, s in enumerate(scores) if s is None]
            if not todo:
                break
            replies = self._client.complete_many([prompts[i] for i in todo], seed=attempt, sample=attempt > 0)
            for i, reply in zip(todo, replies):
                scores[i] = parse_scores(reply)
                first_reply = first_reply or ("" if scores[i] else reply[:80])
        if any(s is None for s in scores):
            raise JudgeError(f"judge {self.name}: no scores in {self.attempts} replies, e.g. {first_reply!r}")
        return scores  # type: ignore[return-value]
