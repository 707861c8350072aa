"""A training example: the model sees `prompt` and must produce `target`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    prompt: str
    target: str
    kind: str = "qa"
