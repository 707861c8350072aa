"""Generators write text (QA pairs, summaries, rewrites) from a prompt.

`local` is the base model itself; any `http://` or `https://` URL is an OpenAI-compatible chat
endpoint (vLLM, llama.cpp server, Ollama, a hosted API).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from loramem.registry import Registry

GENERATORS: Registry[type["Generator"]] = Registry("generator")


class Generator(ABC):
    """Completes prompts. `id` names the generator in the supervision cache key."""

    @property
    @abstractmethod
    def id(self) -> str: ...

    @abstractmethod
    def complete(self, prompt: str, n: int = 1, seed: int = 0, sample: bool = False) -> list[str]:
        """`n` completions of `prompt`, sampled with `seed`; unless `sample`, the first is greedy."""


def is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))
