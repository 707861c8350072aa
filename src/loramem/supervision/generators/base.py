"""Generators write text (QA pairs, summaries, rewrites) from a prompt.

Picked by `--generator`: `auto` (default: the embedded strong generator when it is installed,
else the base model), `embedded` (Qwen2.5-Coder-1.5B-Instruct, shipped as wheels, run by
llama.cpp), `local` (the base model itself), a `.gguf` file (any GGUF chat model, by llama.cpp),
or an `http://`/`https://` URL of an OpenAI-compatible chat endpoint (vLLM, llama.cpp server,
Ollama, a hosted API).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from loramem.registry import Registry

# name -> factory(base, options): `base()` loads the base model (only `local` needs it).
GeneratorFactory = Callable[[Callable[[], object], dict], "Generator"]
GENERATORS: Registry[GeneratorFactory] = Registry("generator")


class Generator(ABC):
    """Completes prompts. `id` names the generator in the supervision cache key."""

    note: str = ""  # why this generator was picked, when `auto` picked it

    @property
    @abstractmethod
    def id(self) -> str: ...

    @property
    def label(self) -> str:
        """What to tell the user wrote the supervision."""
        return self.id

    @property
    def concurrency(self) -> int:
        """How many callers may wait on `complete` at once to be served together (1: one at a time)."""
        return 1

    @abstractmethod
    def complete(self, prompt: str, n: int = 1, seed: int = 0, sample: bool = False) -> list[str]:
        """`n` completions of `prompt`, sampled with `seed`; unless `sample`, the first is greedy."""

    def complete_many(self, prompts: list[str], seed: int = 0, sample: bool = False) -> list[str]:
        """One completion of each prompt; a batching generator runs them together."""
        return [self.complete(p, n=1, seed=seed, sample=sample)[0] for p in prompts]


def is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def is_gguf(spec: str) -> bool:
    return spec.lower().endswith(".gguf")


def check_generator(spec: str) -> None:
    """Raise the registry's error for an unknown generator name, before any work starts."""
    if not (is_url(spec) or is_gguf(spec)):
        GENERATORS.get(spec)


def make_generator(spec: str, base: Callable[[], object], options: dict | None = None) -> Generator:
    """The generator named by `spec`: a registered name, a .gguf file or an OpenAI-compatible URL."""
    options = options or {}
    if is_url(spec):
        from loramem.supervision.generators.http import HTTPGenerator

        return HTTPGenerator(spec, **options)
    if is_gguf(spec):
        from loramem.supervision.generators.llamacpp import GGUFGenerator

        return GGUFGenerator(spec)
    return GENERATORS.get(spec)(base, options)
