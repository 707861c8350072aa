"""A training example: the model sees `prompt` and must produce `target`."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Example:
    prompt: str
    target: str
    kind: str = "qa"  # record | qa | summary | rewrite | raw | cloze
    chunk: str = ""  # the passage it was drawn from (the teacher's context in distillation)

    def to_dict(self) -> dict:
        return asdict(self)
