"""A rubric LLM judge through any OpenAI-compatible URL, as the seed paper scores PaperQA answers.

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
from loramem.supervision.generators.http import HTTPGenerator
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
    url: str
    model: str | None = None
    api_key: str | None = None
    attempts: int = 3
    _client: HTTPGenerator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._client = HTTPGenerator(self.url, model=self.model, api_key=self.api_key, max_tokens=128)

    def score(self, question: str, prediction: str, reference: str) -> dict[str, float]:
        """Scores 0-10 per criterion and `overall`."""
        prompt = load_template("judge").render(question=question, prediction=prediction or "(no answer)",
                                               reference=reference)
        replies = []
        for attempt in range(self.attempts):
            reply = self._client.complete(prompt, n=1, seed=attempt, sample=attempt > 0)[0]
            scores = parse_scores(reply)
            if scores is not None:
                return scores
            replies.append(reply[:80])
        raise JudgeError(f"judge {self.url}: no scores in {self.attempts} replies, e.g. {replies[0]!r}")
