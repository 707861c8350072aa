"""Generators write text (QA pairs, summaries, rewrites) from a prompt.

The contract every generator meets, and the registry of named ones; `spec.py` turns what a user
picks with `--generator` into one.
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
