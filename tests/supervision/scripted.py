"""A generator that answers every prompt with fixed text, counting calls (formats and caching under test)."""

from __future__ import annotations

from loramem.supervision.generators import Generator


class ScriptedGenerator(Generator):
    def __init__(self, replies: dict[str, str] | None = None, default: str = "") -> None:
        self.replies = replies or {}  # first matching substring of the prompt → reply
        self.default = default
        self.calls = 0

    @property
    def id(self) -> str:
        return "scripted:" + repr(sorted(self.replies.items())) + self.default

    def complete(self, prompt: str, n: int = 1, seed: int = 0, sample: bool = False) -> list[str]:
        self.calls += n
        for needle, reply in self.replies.items():
            if needle in prompt:
                return [reply] * n
        return [self.default] * n
